//! `aligndata export`: flags → `ExportConfig` → the export stage; prints where the files are.

use anyhow::{Context, Result, bail};
use serde_json::json;

use aligndata_core::Taxonomy;
use aligndata_stages::export::{ExportConfig, ExportFormat, export};

use crate::cli::ExportArgs;
use crate::ui::{Outcome, Ui};

pub fn run(args: ExportArgs, ui: &Ui) -> Result<Outcome> {
    let ratios: Vec<f64> = args
        .split
        .split(',')
        .map(|p| p.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|e| {
            anyhow::anyhow!(
                "--split `{}`: {e}\nhint: three shares, e.g. --split 0.8,0.1,0.1",
                args.split
            )
        })?;
    let [train, validation, test] = ratios[..] else {
        bail!(
            "--split needs three shares (train, validation, test), got `{}`\nhint: e.g. --split 0.8,0.1,0.1",
            args.split
        );
    };
    let formats = args
        .formats
        .iter()
        .filter(|f| !f.trim().is_empty())
        .map(|f| f.parse::<ExportFormat>())
        .collect::<Result<Vec<_>>>()?;
    let mut source_licenses = Vec::new();
    for spec in &args.source_license {
        let Some((pattern, license)) = spec.split_once('=') else {
            bail!(
                "--source-license `{spec}` is not PATTERN=LICENSE\nhint: e.g. --source-license counsel_chat=MIT"
            );
        };
        source_licenses.push((pattern.trim().to_string(), license.trim().to_string()));
    }
    let system_prompt = match (&args.system_prompt, &args.system_prompt_file) {
        (Some(text), _) => Some(text.clone()),
        (None, Some(path)) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the system prompt file {}", path.display()))?
                .trim()
                .to_string(),
        ),
        (None, None) => None,
    };
    let mut config = ExportConfig {
        formats,
        ratios: [train, validation, test],
        seed: args.seed,
        near_threshold: args.near_threshold,
        system_prompt,
        license: args.license.clone(),
        source_licenses,
        keep_flags: args.keep_flag.clone(),
        ..ExportConfig::default()
    };
    if let Some(path) = &args.taxonomy {
        let taxonomy = Taxonomy::load(path)?;
        config = config.with_taxonomy(&taxonomy);
    }
    if let Some(name) = &args.name {
        config.name = name.clone();
    }
    config.validate().context("invalid export settings")?;

    let bar = ui.bar(None, "export");
    let summary = export(&args.datasets, &args.out, &config, &|n| bar.set_position(n));
    bar.finish_and_clear();
    let summary = summary?;

    let mut human = vec![format!(
        "export: {} of {} records written to {} (train {}, validation {}, test {}), card: {}",
        summary.exported,
        summary.records,
        summary.out.display(),
        summary.splits.get("train").copied().unwrap_or(0),
        summary.splits.get("validation").copied().unwrap_or(0),
        summary.splits.get("test").copied().unwrap_or(0),
        summary.out.join("README.md").display()
    )];
    for (reason, n) in &summary.excluded {
        human.push(format!("  left out: {n} {reason}"));
    }
    human.push(format!(
        "  {} preference pairs; {} near-duplicate groups kept inside one split",
        summary.preference_pairs, summary.duplicate_groups
    ));
    for f in &summary.formats {
        let rows: u64 = f.rows.values().sum();
        human.push(format!(
            "  {:<22} {rows:>7} rows  {}",
            format!("{}/", f.format),
            f.description
        ));
    }
    let produced = summary.exported > 0;
    let mut outcome = Outcome::new(human, json!({ "ok": true, "export": summary }));
    outcome.produced = produced;
    Ok(outcome)
}
