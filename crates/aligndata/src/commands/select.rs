//! `aligndata select`: flags → `SelectConfig` + taxonomy + embedder → the select stage, and a
//! summary that says where every record went.

use anyhow::{Context, Result, anyhow};
use serde_json::json;

use aligndata_core::Taxonomy;
use aligndata_models::embed::{EmbedderKind, load_embedder};
use aligndata_stages::select::{
    DiverseConfig, OutlierConfig, OutlierMethod, QuotaMode, SearchConfig, SelectConfig, select,
};

use crate::cli::SelectArgs;
use crate::commands::ingest::dataset_format;
use crate::ui::{Outcome, Ui};

pub fn run(args: SelectArgs, ui: &Ui) -> Result<Outcome> {
    let quota: QuotaMode = args
        .quota
        .parse()
        .map_err(|e: String| anyhow!("--quota: {e}"))?;
    let method: OutlierMethod = args
        .outlier_method
        .parse()
        .map_err(|e: String| anyhow!("--outlier-method: {e}"))?;
    let budget = usize::try_from(args.budget).context("--budget is too large for this machine")?;
    let config = SelectConfig {
        budget,
        quota,
        outlier: OutlierConfig {
            method,
            search: SearchConfig {
                k: args.k,
                brute_force_limit: args.brute_force_limit,
                reference_size: args.reference_size,
                seed: args.seed,
            },
            percentile: args.outlier_percentile,
            threshold: args.outlier_threshold,
        },
        diverse: DiverseConfig {
            tradeoff: args.tradeoff,
            seed: args.seed,
            ..DiverseConfig::default()
        },
        include_unlabelled: args.include_unlabelled,
        keep_all: args.keep_all,
        seed: args.seed,
        format: dataset_format(args.out.format),
    };
    config.validate().context("invalid select settings")?;
    let taxonomy = Taxonomy::load(&args.taxonomy)?;
    let kind: EmbedderKind = args.embedder.parse()?;
    let embedder = load_embedder(kind, ui.offline, &|msg: &str| ui.note(&format!("  {msg}")))?;

    let total = aligndata_dataset::Dataset::open(&args.dataset)
        .map(|d| d.manifest.counts.total)
        .unwrap_or(0);
    let bar = ui.bar(Some(total.saturating_mul(2).max(1)), "select");
    let summary = select(
        &args.dataset,
        &args.out.out,
        &taxonomy,
        &config,
        embedder.as_ref(),
        &|pass, n| {
            bar.set_message(pass.to_string());
            bar.set_position(if pass == "write" {
                total + n
            } else {
                n.min(total)
            });
        },
    );
    bar.finish_and_clear();
    let summary = summary?;

    let mut human = vec![format!(
        "select: {} of {} records selected (budget {}), {} written to {}",
        summary.selected,
        summary.records,
        summary.budget,
        summary.written,
        summary.out.display()
    )];
    let excluded: u64 = summary.excluded_by_flag.values().sum();
    if excluded > 0 {
        let kinds: Vec<String> = summary
            .excluded_by_flag
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        human.push(format!(
            "  not eligible (flagged earlier): {excluded} ({})",
            kinds.join(", ")
        ));
    }
    human.push(format!(
        "  outliers: {} flagged by {} ({}{})",
        summary.outliers,
        summary.outlier_method,
        summary.outlier_search,
        summary
            .outlier_cutoff
            .map(|c| format!(", score ≥ {c:.3}"))
            .unwrap_or_default()
    ));
    for o in summary.top_outliers.iter().take(5) {
        human.push(format!("    {} {}: \"{}\"", o.id, o.reason, o.excerpt));
    }
    if summary.unlabelled > 0 {
        human.push(format!(
            "  unlabelled: {}{}",
            summary.unlabelled,
            if args.include_unlabelled {
                " (given a quota)"
            } else {
                " (no known cell; not selected)"
            }
        ));
    }
    human.push(format!(
        "  cells: {} with records, {} short of their share",
        summary.cells.len(),
        summary.short_cells.len()
    ));
    for c in summary.cells.iter().take(12) {
        human.push(format!(
            "    {:>6} avail {:>6} quota {:>6} sel  {}",
            c.available, c.quota, c.selected, c.cell
        ));
    }
    if summary.cells.len() > 12 {
        human.push(format!(
            "    … {} more cells (--json lists all)",
            summary.cells.len() - 12
        ));
    }
    let mut dims: Vec<&str> = Vec::new();
    for v in &summary.coverage {
        if !dims.contains(&v.dimension.as_str()) {
            dims.push(&v.dimension);
        }
    }
    let per_dim: Vec<String> = dims
        .iter()
        .map(|d| {
            let values = summary.coverage.iter().filter(|v| v.dimension == *d);
            let present = values.clone().filter(|v| v.available > 0).count();
            let covered = values.filter(|v| v.selected > 0).count();
            format!("{d} {covered}/{present}")
        })
        .collect();
    if !per_dim.is_empty() {
        human.push(format!(
            "  values covered (selected/present): {}",
            per_dim.join(", ")
        ));
    }
    if !summary.values_missing_from_selection.is_empty() {
        human.push(format!(
            "  values present but not selected: {}",
            summary.values_missing_from_selection.join(", ")
        ));
    }
    if let (Some(s), Some(r)) = (
        summary.diversity.selected_mean_similarity,
        summary.diversity.random_mean_similarity,
    ) {
        human.push(format!(
            "  mean pairwise similarity: selection {s:.3}, random sample of the same size {r:.3}"
        ));
    }
    if summary.selected < summary.budget {
        human.push(format!(
            "  hint: only {} eligible records outside outliers{}; the budget could not be met",
            summary.selected,
            if args.include_unlabelled {
                ""
            } else {
                " with a known cell"
            }
        ));
    }
    let produced = summary.written > 0;
    let mut outcome = Outcome::new(human, json!({ "ok": true, "select": summary }));
    outcome.produced = produced;
    Ok(outcome)
}
