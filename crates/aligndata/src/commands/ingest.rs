//! `aligndata ingest`: flags → `IngestConfig` → the ingest stage.

use anyhow::Result;
use serde_json::json;

use aligndata_dataset::{Format, InputFormat, InputSpec};
use aligndata_stages::clean::CleanConfig;
use aligndata_stages::ingest::{IngestConfig, ingest};

use crate::cli::{self, IngestArgs};
use crate::ui::{Outcome, Ui};

pub fn run(args: IngestArgs, ui: &Ui) -> Result<Outcome> {
    let config = IngestConfig {
        inputs: args.inputs,
        spec: InputSpec {
            format: args.input_format.map(input_format),
            text_field: args.text_field,
            id_field: args.id_field,
            max_line_bytes: args.max_line_bytes,
            has_header: !args.no_header,
        },
        strict: args.strict,
        format: dataset_format(args.out.format),
        clean: CleanConfig {
            languages: if args.lang.iter().any(|l| l == "all") {
                Vec::new()
            } else {
                args.lang
            },
            min_chars: args.min_chars,
            ..CleanConfig::default()
        },
        scrub_pii: !args.keep_pii,
        shard: args.shard,
    };
    let bar = ui.bar(None, "ingest");
    let summary = ingest(&config, &args.out.out, &|n| bar.set_position(n));
    bar.finish_and_clear();
    let summary = summary?;
    let mut human = vec![format!(
        "ingest: {} records written to {}, {} rows quarantined",
        summary.records,
        summary.out.display(),
        summary.quarantined
    )];
    for file in &summary.files {
        human.push(format!(
            "  {}: {} records, {} quarantined",
            file.file.display(),
            file.records,
            file.quarantined
        ));
    }
    if summary.clean.changed > 0 {
        human.push(format!(
            "  cleaned     {} texts changed by normalisation or markup stripping",
            summary.clean.changed
        ));
    }
    for (flag, n) in &summary.clean.flags {
        human.push(format!("  flagged {n:>6} × {flag} (kept, set aside)"));
    }
    if summary.pii.total() > 0 {
        human.push(format!("  pii         replaced {}", summary.pii.describe()));
    }
    for (reason, n) in &summary.quarantine_reasons {
        human.push(format!("  quarantined {n:>6} × {reason}"));
    }
    if summary.quarantined > 0 {
        human.push(format!(
            "  see them with: aligndata inspect {} --quarantine",
            summary.out.display()
        ));
    }
    let produced = summary.records > 0;
    let mut outcome = Outcome::new(human, json!({ "ok": true, "ingest": summary }));
    outcome.produced = produced;
    Ok(outcome)
}

pub fn dataset_format(format: cli::DatasetFormat) -> Format {
    match format {
        cli::DatasetFormat::Jsonl => Format::Jsonl,
        cli::DatasetFormat::JsonlZst => Format::JsonlZst,
        cli::DatasetFormat::Parquet => Format::Parquet,
    }
}

fn input_format(format: cli::InputFormat) -> InputFormat {
    match format {
        cli::InputFormat::Jsonl => InputFormat::Jsonl,
        cli::InputFormat::JsonlZst => InputFormat::JsonlZst,
        cli::InputFormat::Csv => InputFormat::Csv,
        cli::InputFormat::Tsv => InputFormat::Tsv,
        cli::InputFormat::Parquet => InputFormat::Parquet,
    }
}
