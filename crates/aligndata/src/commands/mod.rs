//! One module per command. Each turns raw flags into settings, calls the stage crates, and
//! returns an [`Outcome`]; none prints directly except through [`Ui`].

use anyhow::Result;

use crate::cli::Command;
use crate::ui::{Outcome, Ui};

mod dataset;
mod dedup;
mod generate;
mod ingest;
mod keys;
mod models;
mod plan;
mod run;
mod serve;
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
        Command::Label(_) => not_built("label", 5),
        Command::Dedup(args) => dedup::run(args, ui),
        Command::Select(_) => not_built("select", 5),
        Command::Respond(_) => not_built("respond", 6),
        Command::Judge(_) => not_built("judge", 6),
        Command::Export(_) => not_built("export", 6),
        Command::Report(_) => not_built("report", 6),
        Command::Serve(args) => serve::run(args, ui),
        Command::Keys(cmd) => keys::run(cmd, ui),
    }
}

/// The answer of a subcommand whose issue has not landed yet.
pub fn not_built(name: &str, issue: u32) -> Result<Outcome> {
    anyhow::bail!(
        "`aligndata {name}` is not built yet (tracked in issue #{issue})\n\
         hint: `aligndata --help` lists what works today"
    )
}
