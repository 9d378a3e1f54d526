//! The `aligndata` binary: parse flags, run one command, print its summary, exit.
//!
//! This crate is glue, not a library: flags live in `cli`, terminal output in `ui`, and each
//! command in `commands/`, which calls into the stage crates.

use std::process::ExitCode;

use clap::Parser;

mod cli;
mod commands;
mod ui;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let ui = ui::Ui::new(&cli.global);
    match commands::dispatch(cli.command, &ui) {
        Ok(outcome) => ui.finish(outcome),
        Err(err) => ui.fail(&err),
    }
}
