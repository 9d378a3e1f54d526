//! `aligndata report`: loads the taxonomy and the embedder, builds the figures, writes
//! report.html and report.json.

use anyhow::{Result, bail};
use serde_json::json;

use aligndata_core::Taxonomy;
use aligndata_models::embed::{EmbedderKind, load_embedder};
use aligndata_stages::report::{ReportConfig, build_report, write_report};

use crate::cli::ReportArgs;
use crate::ui::{Outcome, Ui};

pub fn run(args: ReportArgs, ui: &Ui) -> Result<Outcome> {
    if args.sample < 2 {
        bail!("--sample must be at least 2, got {}", args.sample);
    }
    let taxonomy = match &args.taxonomy {
        Some(path) => Some(Taxonomy::load(path)?),
        None => None,
    };
    let kind: EmbedderKind = args.embedder.parse()?;
    let embedder = load_embedder(kind, ui.offline, &|msg: &str| ui.note(&format!("  {msg}")))?;
    let mut config = ReportConfig {
        sample_per_source: args.sample,
        max_points: args.max_points,
        ..ReportConfig::default()
    };
    if let Some(title) = &args.title {
        config.title = title.clone();
    } else if let Some(t) = &taxonomy {
        config.title = format!("{}: aligndata report", t.name);
    }
    let bar = ui.bar(None, "report");
    let data = build_report(
        &args.datasets,
        taxonomy.as_ref(),
        embedder.as_ref(),
        &config,
        &|pass, n| {
            bar.set_message(pass.to_string());
            bar.set_position(n);
        },
    );
    bar.finish_and_clear();
    let data = data?;
    let (html, json_path) = write_report(&data, &args.out)?;
    let gap = data
        .gap
        .auc
        .map_or("n/a".to_string(), |a| format!("{a:.3}"));
    let human = vec![
        format!(
            "report: {} ({} records, {} kept)",
            html.display(),
            data.records,
            data.kept
        ),
        format!("  same numbers as JSON: {}", json_path.display()),
        format!(
            "  synthetic-vs-real AUC: {gap} (0.5 = indistinguishable; higher = less realistic)"
        ),
    ];
    let mut outcome = Outcome::new(
        human,
        json!({
            "ok": true,
            "report": { "html": html, "json": json_path, "records": data.records, "kept": data.kept, "gap_auc": data.gap.auc }
        }),
    );
    outcome.produced = data.records > 0;
    Ok(outcome)
}
