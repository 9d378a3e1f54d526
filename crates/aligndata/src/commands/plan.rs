//! `aligndata plan`: taxonomy + budget → per-cell quotas in plan.json.

use anyhow::{Context, Result};
use serde_json::json;

use aligndata_core::Taxonomy;
use aligndata_stages::plan::{PlanConfig, build_plan};

use crate::cli::PlanArgs;
use crate::ui::{Outcome, Ui};

/// Parses `--cell KEY=N` (KEY itself contains `=`, so N follows the last one).
pub fn parse_cells(cells: &[String]) -> Result<Vec<(String, u64)>> {
    cells
        .iter()
        .map(|c| {
            let (key, n) = c.rsplit_once('=').with_context(|| {
                format!("--cell {c}: expected KEY=N\nhint: e.g. --cell 'theme=a|situation=b=10'")
            })?;
            let n: u64 = n
                .trim()
                .parse()
                .with_context(|| format!("--cell {c}: N must be a whole number"))?;
            Ok((key.trim().to_string(), n))
        })
        .collect()
}

pub fn run(args: PlanArgs, _ui: &Ui) -> Result<Outcome> {
    let taxonomy = Taxonomy::load(&args.taxonomy)?;
    let config = PlanConfig {
        count: args.count,
        proportional: args.proportional,
        explicit: parse_cells(&args.cells)?,
        seed: args.seed,
    };
    let plan = build_plan(&taxonomy, &config)?;
    plan.save(&args.out)?;
    let mut human = plan.summary(&taxonomy);
    human.push(format!("  written to {}", args.out.display()));
    let mut outcome = Outcome::new(
        human,
        json!({ "ok": true, "plan": args.out, "total": plan.total, "cells": plan.cells.len(),
                "grid_cells": plan.grid_cells, "sampled": plan.sampled, "uncovered_values": plan.uncovered_values }),
    );
    outcome.produced = plan.total > 0;
    Ok(outcome)
}
