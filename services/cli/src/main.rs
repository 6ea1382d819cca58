//! `inpaint`: repaint parts of a photo, through a remote gateway or an
//! embedded cluster started in this process.

mod args;
mod commands;

use args::{Cli, Command};
use clap::{CommandFactory, FromArgMatches};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Parsed by hand rather than `Cli::parse`: `mask` needs the raw matches
    // to apply its operations in the order they were typed.
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches)?;
    match cli.command {
        Command::Run(args) => commands::run(args).await,
        Command::Mask(args) => {
            let sub = matches.subcommand_matches("mask").expect("mask subcommand");
            commands::mask(args, args::ops_in_order(sub)?)
        }
        Command::Serve(args) => commands::serve(args).await,
        Command::Batch(args) => commands::batch(args).await,
        Command::Job(command) => commands::job(command).await,
        Command::Health(args) => commands::health(args).await,
    }
}
