//! `aligndata inspect` and `aligndata stats`: look inside a dataset.

use std::collections::BTreeMap;
use std::io::BufRead;

use anyhow::{Context, Result};
use serde_json::json;

use aligndata_core::Record;
use aligndata_dataset::Dataset;

use crate::cli::{InspectArgs, StatsArgs};
use crate::ui::{Outcome, Ui};

pub fn inspect(args: InspectArgs, ui: &Ui) -> Result<Outcome> {
    let dataset = Dataset::open(&args.dataset)?;
    let mut printed = 0u64;
    let limit = if args.limit == 0 {
        u64::MAX
    } else {
        args.limit
    };
    if args.quarantine {
        let path = args.dataset.join("quarantine.jsonl");
        if path.exists() {
            let file = std::fs::File::open(&path)
                .with_context(|| format!("could not open {}", path.display()))?;
            for line in std::io::BufReader::new(file).lines() {
                if printed >= limit {
                    break;
                }
                let line = line.with_context(|| format!("could not read {}", path.display()))?;
                if !ui.data_line(&line) {
                    break;
                }
                printed += 1;
            }
        }
    } else {
        for record in dataset.records() {
            if printed >= limit {
                break;
            }
            let record = record?;
            if !matches_filters(&record, &args) {
                continue;
            }
            if !ui.data_line(&serde_json::to_string(&record)?) {
                break;
            }
            printed += 1;
        }
    }
    let human = vec![format!("{printed} printed from {}", args.dataset.display())];
    let mut outcome = Outcome::new(human, json!({ "printed": printed }));
    outcome.produced = printed > 0;
    Ok(outcome)
}

fn matches_filters(record: &Record, args: &InspectArgs) -> bool {
    if let Some(source) = &args.source
        && record.source.as_str() != source
    {
        return false;
    }
    match args.flag.as_deref() {
        None => true,
        Some("any") => !record.flags.is_empty(),
        Some("none") => record.flags.is_empty(),
        Some(kind) => record.flags.iter().any(|f| f.kind == kind),
    }
}

pub fn stats(args: StatsArgs, _ui: &Ui) -> Result<Outcome> {
    let dataset = Dataset::open(&args.dataset)?;
    let mut total = 0u64;
    let mut kept = 0u64;
    let mut by_source: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut by_flag: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_label: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let mut lengths: Vec<u32> = Vec::new();
    let mut with_responses = 0u64;
    for record in dataset.records() {
        let record = record?;
        total += 1;
        if record.is_kept() {
            kept += 1;
        }
        *by_source.entry(record.source.as_str()).or_default() += 1;
        for flag in &record.flags {
            *by_flag.entry(flag.kind.clone()).or_default() += 1;
        }
        let mut seen_dims: Vec<&str> = Vec::new();
        for label in &record.labels {
            if seen_dims.contains(&label.dimension.as_str()) {
                continue;
            }
            seen_dims.push(&label.dimension);
            if let Some(top) = record.top_label(&label.dimension) {
                *by_label
                    .entry(top.dimension.clone())
                    .or_default()
                    .entry(top.value.clone())
                    .or_default() += 1;
            }
        }
        if !record.responses.is_empty() {
            with_responses += 1;
        }
        lengths.push(record.text.chars().count().min(u32::MAX as usize) as u32);
    }
    lengths.sort_unstable();
    let pct = |p: f64| -> u32 {
        if lengths.is_empty() {
            return 0;
        }
        lengths[((lengths.len() - 1) as f64 * p).round() as usize]
    };
    let quarantined = dataset.manifest.counts.quarantined;
    let mut human = vec![
        format!("dataset     {}", args.dataset.display()),
        format!(
            "stage       {}  (created {})",
            dataset.manifest.stage, dataset.manifest.created_at
        ),
        format!(
            "records     {total} ({kept} kept, {} flagged), {quarantined} quarantined",
            total - kept
        ),
    ];
    for (source, n) in &by_source {
        human.push(format!("  source    {source:<10} {n}"));
    }
    for (flag, n) in &by_flag {
        human.push(format!("  flag      {flag:<20} {n}"));
    }
    for (dimension, values) in &by_label {
        let mut values: Vec<_> = values.iter().collect();
        values.sort_by(|a, b| b.1.cmp(a.1));
        let top: Vec<String> = values
            .iter()
            .take(6)
            .map(|(v, n)| format!("{v} {n}"))
            .collect();
        human.push(format!("  {dimension:<10}{}", top.join(", ")));
    }
    human.push(format!(
        "length      chars p10 {} / p50 {} / p90 {} / max {}",
        pct(0.1),
        pct(0.5),
        pct(0.9),
        lengths.last().copied().unwrap_or(0)
    ));
    if with_responses > 0 {
        human.push(format!(
            "responses   {with_responses} records have responses"
        ));
    }
    let json = json!({
        "dataset": args.dataset,
        "records": total,
        "kept": kept,
        "quarantined": quarantined,
        "by_source": by_source,
        "by_flag": by_flag,
        "by_label": by_label,
        "length_chars": { "p10": pct(0.1), "p50": pct(0.5), "p90": pct(0.9), "max": lengths.last().copied().unwrap_or(0) },
        "with_responses": with_responses,
    });
    Ok(Outcome::new(human, json))
}
