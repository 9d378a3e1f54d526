//! Ingest: real text files → a dataset of `source: real` records.
//!
//! Streams every input row by row: a row that cannot be read goes to the output's
//! `quarantine.jsonl` with file, line and reason (or, with `strict`, fails the run with that
//! message). Cleaning, PII scrubbing and language identification build on this (issue #5).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use rayon::prelude::*;
use serde::Serialize;

use aligndata_core::{Record, SourceKind};
use aligndata_dataset::{
    BadRow, DatasetWriter, Format, InputRow, InputSpec, ManifestFields, QuarantineEntry, RawRow,
    ShardSpec, WriterOptions, read_input,
};

use crate::clean::{self, CleanConfig, CleanCounts};
use crate::pii::{self, PiiCounts};

/// What to ingest and how.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Input files, read in order.
    pub inputs: Vec<PathBuf>,
    /// How to find the text and id in each row.
    pub spec: InputSpec,
    /// Fail on the first bad row instead of quarantining it.
    pub strict: bool,
    /// Storage format of the output dataset.
    pub format: Format,
    /// Cleaning rules and the language keep-list.
    pub clean: CleanConfig,
    /// Replace PII by typed placeholders before anything is written.
    pub scrub_pii: bool,
    /// Only the raw rows of this shard (by file and line): `--shard I/N`.
    pub shard: Option<ShardSpec>,
}

/// Counts of what went where, per run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IngestSummary {
    /// Rows read successfully, over all inputs.
    pub records: u64,
    /// Rows sent to quarantine.
    pub quarantined: u64,
    /// Quarantine reasons (the reason's kind, before the first colon) and their counts.
    pub quarantine_reasons: BTreeMap<String, u64>,
    /// Per input file: records and quarantined rows.
    pub files: Vec<FileSummary>,
    /// The output dataset directory.
    pub out: PathBuf,
    /// Cleaning: records per flag kind (set aside, not dropped), per language, normalised.
    pub clean: CleanCounts,
    /// PII placeholders written, per type.
    pub pii: PiiCounts,
}

/// Counts for one input file.
#[derive(Debug, Clone, Serialize)]
pub struct FileSummary {
    /// The input file.
    pub file: PathBuf,
    /// Rows read into records.
    pub records: u64,
    /// Rows quarantined.
    pub quarantined: u64,
}

/// Rows per parallel chunk: big enough to amortise the fan-out, small enough to keep memory flat.
const CHUNK_ROWS: usize = 4096;

/// One raw row → a cleaned, scrubbed record with its own counts.
fn prepare(raw: &RawRow, config: &IngestConfig) -> (Record, CleanCounts, PiiCounts) {
    let mut clean_counts = CleanCounts::default();
    let mut pii_counts = PiiCounts::default();
    let mut record = Record::new(SourceKind::Real, raw.text.clone());
    record.provenance.file = Some(raw.file.clone());
    record.provenance.line = Some(raw.line);
    record.provenance.original_id = raw.original_id.clone();
    // Clean first (markup links go with their markup), then scrub what is left.
    clean::clean(&mut record, &config.clean, &mut clean_counts);
    if config.scrub_pii {
        pii_counts = pii::scrub_record(&mut record);
    }
    // The id hashes the text as stored: cleaned and scrubbed, so it never fingerprints the PII
    // that was removed.
    record.id = aligndata_core::record::record_id(record.source, &record.text);
    (record, clean_counts, pii_counts)
}

/// Runs ingest into `out`. `progress` is called with the number of rows handled so far.
pub fn ingest(config: &IngestConfig, out: &Path, progress: &dyn Fn(u64)) -> Result<IngestSummary> {
    let mut writer = DatasetWriter::create(
        out,
        WriterOptions {
            format: config.format,
            ..WriterOptions::default()
        },
    )
    .with_context(|| format!("could not create dataset {}", out.display()))?;
    let mut summary = IngestSummary {
        out: out.to_path_buf(),
        ..IngestSummary::default()
    };
    let mut handled = 0u64;
    for input in &config.inputs {
        let rows = read_input(input, &config.spec)?.filter(|row| {
            let (file, line) = match row {
                Ok(raw) => (&raw.file, raw.line),
                Err(bad) => (&bad.file, bad.line),
            };
            config.shard.is_none_or(|s| s.contains_row(file, line))
        });
        let mut file_summary = FileSummary {
            file: input.clone(),
            records: 0,
            quarantined: 0,
        };
        // Rows are cleaned and scrubbed in parallel chunks, then written in input order, so the
        // output does not depend on the number of threads.
        let mut chunk: Vec<InputRow> = Vec::with_capacity(CHUNK_ROWS);
        let mut rows = rows.peekable();
        while rows.peek().is_some() {
            chunk.clear();
            chunk.extend(rows.by_ref().take(CHUNK_ROWS));
            handled += chunk.len() as u64;
            let processed: Vec<Result<(Record, CleanCounts, PiiCounts), &BadRow>> = chunk
                .par_iter()
                .map(|row| match row {
                    Ok(raw) => Ok(prepare(raw, config)),
                    Err(bad) => Err(bad),
                })
                .collect();
            for item in processed {
                match item {
                    Ok((record, clean_counts, pii_counts)) => {
                        summary.clean.merge(&clean_counts);
                        summary.pii.merge(&pii_counts);
                        writer.push(&record)?;
                        file_summary.records += 1;
                    }
                    Err(bad) => {
                        if config.strict {
                            bail!(
                                "{}:{}: {}\nhint: drop --strict to send such rows to quarantine.jsonl and go on",
                                bad.file,
                                bad.line,
                                bad.reason
                            );
                        }
                        let kind = bad
                            .reason
                            .split(':')
                            .next()
                            .unwrap_or("")
                            .trim()
                            .to_string();
                        *summary.quarantine_reasons.entry(kind).or_default() += 1;
                        writer.quarantine(QuarantineEntry::from(bad.clone()))?;
                        file_summary.quarantined += 1;
                    }
                }
            }
            progress(handled);
        }
        summary.records += file_summary.records;
        summary.quarantined += file_summary.quarantined;
        summary.files.push(file_summary);
    }
    progress(handled);
    writer.finish(ManifestFields {
        stage: "ingest".into(),
        config: config_json(config),
        parents: Vec::new(),
        extra: serde_json::to_value(&summary)?,
    })?;
    Ok(summary)
}

/// The config as recorded in the manifest: settings plus each input's size and modification
/// time, so that a rerun can tell whether anything changed.
pub fn config_json(config: &IngestConfig) -> serde_json::Value {
    let inputs: Vec<serde_json::Value> = config
        .inputs
        .iter()
        .map(|path| {
            let meta = std::fs::metadata(path).ok();
            let modified = meta
                .as_ref()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_nanos().to_string());
            serde_json::json!({
                "path": path,
                "bytes": meta.map(|m| m.len()),
                "modified": modified,
            })
        })
        .collect();
    let mut json = serde_json::json!({
        "inputs": inputs,
        "text_field": config.spec.text_field,
        "id_field": config.spec.id_field,
        "max_line_bytes": config.spec.max_line_bytes,
        "has_header": config.spec.has_header,
        "strict": config.strict,
        "format": format!("{:?}", config.format),
        "clean": config.clean,
        "scrub_pii": config.scrub_pii,
    });
    // Only when sharded, so unsharded manifests written before `--shard` existed still match.
    if let (Some(shard), Some(map)) = (config.shard, json.as_object_mut()) {
        map.insert("shard".into(), shard.to_string().into());
    }
    json
}

/// True when `out` holds a finished ingest of exactly this config and these input files.
pub fn is_up_to_date(config: &IngestConfig, out: &Path) -> bool {
    match aligndata_dataset::Dataset::open(out) {
        Ok(dataset) => {
            dataset.manifest.stage == "ingest" && dataset.manifest.config == config_json(config)
        }
        Err(_) => false,
    }
}
