//! `aligndata dedup`: flags → `DedupConfig` (+ an embedder for `--semantic`) → the dedup stage.

use anyhow::{Context, Result, bail};
use serde_json::json;

use aligndata_models::embed::{EmbedderKind, load_embedder};
use aligndata_stages::dedup::{DedupConfig, NearConfig, SemanticConfig, Shingle, dedup};

use crate::cli::DedupArgs;
use crate::commands::ingest::dataset_format;
use crate::ui::{Outcome, Ui};

pub fn run(args: DedupArgs, ui: &Ui) -> Result<Outcome> {
    let shingle: Shingle = args
        .shingle
        .parse()
        .map_err(|e: String| anyhow::anyhow!("--shingle {e}\nhint: e.g. --shingle char:5"))?;
    let config = DedupConfig {
        exact: !args.no_exact,
        near: (!args.no_near).then(|| NearConfig {
            shingle,
            num_perm: args.num_perm,
            bands: args.bands.zip(args.rows),
            threshold: args.threshold,
            seed: args.seed,
        }),
        semantic: args.semantic.then_some(SemanticConfig {
            threshold: args.cosine,
            brute_force_limit: args.brute_force_limit,
            seed: args.seed,
        }),
        format: dataset_format(args.out.format),
    };
    if !config.exact && config.near.is_none() && config.semantic.is_none() {
        bail!("--no-exact and --no-near leave nothing to do\nhint: keep one, or add --semantic");
    }
    config.validate().context("invalid dedup settings")?;
    let embedder = if args.semantic {
        let kind: EmbedderKind = args.embedder.parse()?;
        Some(load_embedder(kind, ui.offline, &|msg: &str| {
            ui.note(&format!("  {msg}"))
        })?)
    } else {
        None
    };

    let sharded = super::shard::narrow(&args.datasets, args.shard, &args.out.out)?;
    let total: u64 = sharded
        .paths
        .iter()
        .filter_map(|p| aligndata_dataset::Dataset::open(p).ok())
        .map(|d| d.manifest.counts.total)
        .sum();
    let bar = ui.bar(Some(total.saturating_mul(2).max(1)), "dedup");
    let summary = dedup(
        &sharded.paths,
        &args.out.out,
        &config,
        embedder.as_deref(),
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
        "dedup: {} records written to {}, {} flagged duplicate in {} clusters",
        summary.records,
        summary.out.display(),
        summary.duplicates,
        summary.clusters
    )];
    for (method, n) in &summary.by_method {
        human.push(format!("  {method:>8}: {n}"));
    }
    if summary.empty_text > 0 {
        human.push(format!(
            "  {} records had no letters or digits and were not compared",
            summary.empty_text
        ));
    }
    for input in &summary.inputs {
        let mut line = format!(
            "  {}: {} records, {} duplicates",
            input.dataset.display(),
            input.records,
            input.duplicates
        );
        for (other, n) in &input.keepers_in {
            line.push_str(&format!(", {n} of them kept in {other}"));
        }
        human.push(line);
    }
    if !summary.biggest.is_empty() {
        human.push("  biggest clusters:".to_string());
        for c in summary.biggest.iter().take(5) {
            human.push(format!(
                "    {:>5} × {} ({}) \"{}\"",
                c.size, c.keeper_id, c.keeper_dataset, c.excerpt
            ));
        }
    }
    let produced = summary.records > 0;
    let mut outcome = Outcome::new(human, json!({ "ok": true, "dedup": summary }));
    outcome.produced = produced;
    Ok(outcome)
}
