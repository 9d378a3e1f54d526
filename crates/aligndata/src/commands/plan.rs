//! `aligndata plan`: taxonomy + budget → per-cell quotas in plan.json.

use anyhow::{Context, Result};
use serde_json::json;

use aligndata_core::Taxonomy;
use aligndata_stages::plan::{CellFeedback, PlanConfig, build_feedback_plan, build_plan};

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
    let (plan, feedback) = match &args.from_feedback {
        Some(db) => {
            let (plan, report) = build_feedback_plan(&taxonomy, &config, &read_feedback(db)?)?;
            (plan, Some(report))
        }
        None => (build_plan(&taxonomy, &config)?, None),
    };
    plan.save(&args.out)?;
    let mut human = plan.summary(&taxonomy);
    if let Some(report) = &feedback {
        human.push(format!(
            "  from feedback: {} cells of the taxonomy have turns; {} other cells ignored{}",
            report.matched_cells,
            report.unmatched_cells.len(),
            if report.unmatched_cells.is_empty() {
                String::new()
            } else {
                " (not cells of this taxonomy: was `serve --labeller` used with it?)".to_string()
            }
        ));
        human.push("  neediest cells (need = 1 - reward + 1/sqrt(1 + turns)):".to_string());
        for (cell, need, reward, turns) in &report.neediest {
            human.push(format!(
                "    {need:.2}  reward {reward:.2}  {turns:>5} turns  {cell}"
            ));
        }
    }
    human.push(format!("  written to {}", args.out.display()));
    let mut outcome = Outcome::new(
        human,
        json!({ "ok": true, "plan": args.out, "total": plan.total, "cells": plan.cells.len(),
                "grid_cells": plan.grid_cells, "sampled": plan.sampled, "uncovered_values": plan.uncovered_values }),
    );
    if let Some(report) = feedback {
        outcome.json["feedback"] = serde_json::to_value(report)?;
    }
    outcome.produced = plan.total > 0;
    Ok(outcome)
}

/// Per-cell turns and rewards from the feedback service's database.
fn read_feedback(db: &str) -> Result<Vec<CellFeedback>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let store = super::feedback::open(db).await?;
        let cells = store.cell_feedback().await?;
        store.close().await;
        Ok(cells
            .into_iter()
            .map(|c| CellFeedback {
                cell: c.cell,
                turns: c.turns.max(0) as u64,
                successes: c.successes.max(0) as u64,
                failures: c.failures.max(0) as u64,
            })
            .collect())
    })
}
