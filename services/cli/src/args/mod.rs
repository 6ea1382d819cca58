//! The `inpaint` command line: one module per subcommand's flags, the
//! flag groups several share (models, Stable Diffusion), value parsers, and
//! the choice enums with their proto mappings.

mod batch;
mod enums;
mod job;
mod mask;
mod model;
mod parse;
mod run;
mod sd;
mod serve;

use clap::{Parser, Subcommand};

pub use batch::BatchArgs;
pub use job::JobCommand;
pub use mask::{MaskArgs, ops_in_order};
pub use run::RunArgs;
pub use serve::ServeArgs;

// No doc comments on these two: clap would turn them into help text.
#[derive(Parser)]
#[command(version, about = "Repaint parts of photos with the inpainting cluster")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Repaint one photo and write the result as PNG.
    Run(RunArgs),
    /// Process masks with the mask service's operator pipeline, locally.
    /// Operations apply in the order given on the command line.
    Mask(MaskArgs),
    /// Run all four services in this process until Ctrl+C / SIGTERM.
    Serve(ServeArgs),
    /// Repaint a folder of photos through the job API, resuming where an
    /// earlier run stopped (finished outputs are skipped).
    Batch(BatchArgs),
    /// Follow or manage one job on a gateway.
    #[command(subcommand)]
    Job(JobCommand),
    /// Ask a service's gRPC health; exits 0 when SERVING (an exec probe
    /// for TLS ports).
    Health(inpaint_cli::probe::HealthArgs),
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// clap's own consistency checks (ids, groups, `requires`) over every
    /// subcommand, which otherwise only fail when that subcommand is run.
    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
