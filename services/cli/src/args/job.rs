//! `inpaint job`: follow or manage one job on a gateway.

use clap::Subcommand;

/// How long batch and job watch keep retrying through an outage by default.
pub const DEFAULT_RETRY_SECS: u64 = inpaint_cli::retry::DEFAULT_PATIENCE.as_secs();

#[derive(Subcommand)]
pub enum JobCommand {
    /// Print a job's progress events until it ends (resuming after a
    /// dropped connection from the last event seen).
    Watch {
        id: String,
        #[arg(
            long,
            env = "INPAINT_GATEWAY",
            default_value = "http://127.0.0.1:50051"
        )]
        gateway: String,
        /// Seconds to keep retrying while the gateway is unavailable.
        #[arg(long, env = "INPAINT_RETRY_SECS", default_value_t = DEFAULT_RETRY_SECS)]
        retry_secs: u64,
    },
    /// Print a job's record.
    Get {
        id: String,
        #[arg(
            long,
            env = "INPAINT_GATEWAY",
            default_value = "http://127.0.0.1:50051"
        )]
        gateway: String,
    },
    /// Cancel a job at its next stage boundary.
    Cancel {
        id: String,
        #[arg(
            long,
            env = "INPAINT_GATEWAY",
            default_value = "http://127.0.0.1:50051"
        )]
        gateway: String,
    },
}
