//! One module per command. Each turns raw flags into settings, calls the stage crates, and
//! returns an [`Outcome`]; none prints directly except through [`Ui`].

use anyhow::Result;

use crate::cli::Command;
use crate::ui::{Outcome, Ui};

mod dataset;
mod dedup;
mod export;
mod feedback;
mod generate;
mod ingest;
mod judge;
mod keys;
mod label;
mod models;
mod online_labeller;
mod plan;
mod report;
mod respond;
mod run;
mod select;
mod serve;
mod serve_bench;
mod shard;
mod taxonomy;

pub fn dispatch(command: Command, ui: &Ui) -> Result<Outcome> {
    match command {
        Command::Taxonomy(cmd) => taxonomy::run(cmd, ui),
        Command::Ingest(args) => ingest::run(args, ui),
        Command::Models(cmd) => models::run(cmd, ui),
        Command::Inspect(args) => dataset::inspect(args, ui),
        Command::Stats(args) => dataset::stats(args, ui),
        Command::Run(args) => run::run(args, ui),
        Command::Plan(args) => plan::run(args, ui),
        Command::Generate(args) => generate::run(args, ui),
        Command::Label(args) => label::run(args, ui),
        Command::Dedup(args) => dedup::run(args, ui),
        Command::Select(args) => select::run(args, ui),
        Command::Respond(args) => respond::run(args, ui),
        Command::Judge(args) => judge::run(args, ui),
        Command::Export(args) => export::run(args, ui),
        Command::Report(args) => report::run(args, ui),
        Command::Serve(args) => serve::run(args, ui),
        Command::Keys(cmd) => keys::run(cmd, ui),
        Command::Feedback(cmd) => feedback::run(cmd, ui),
    }
}
