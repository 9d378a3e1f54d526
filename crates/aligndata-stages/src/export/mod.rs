//! Export: the judged dataset as the files trainers read, split, with a dataset card.
//!
//! Why this stage exists: a dataset is only useful once a trainer loads it without conversion
//! code (story 3) and a reviewer can see what is in it and what was removed (story 5).
//!
//! What it does, in order:
//! 1. Reads every input dataset. Flagged records are left out and counted per flag kind (a
//!    flag kind named in [`ExportConfig::keep_flags`] does not exclude). Kept records without a
//!    response are counted as `no_response`.
//! 2. Picks responses by the judge contract: each response may carry `judge.total`; the record
//!    carries `judge.chosen` (index of the SFT response) and `judge.rejected` (index of the
//!    rejected one, set only when the margin passed). Without judge scores the first response
//!    is the SFT response and there is no preference pair.
//! 3. Splits train / validation / test by taxonomy cell with near-duplicate groups kept whole
//!    ([`split`]).
//! 4. Writes `<format>/<split>.jsonl` and `<format>/<split>.parquet` per format
//!    ([`formats`]), `splits.jsonl` (id → split, cell) for audits, `export.json` (the summary)
//!    and `README.md`, the dataset card ([`card`]), whose YAML header declares one Hugging Face
//!    `datasets` config per format.
//!
//! The output directory is written as a temp sibling and renamed into place: a crash leaves the
//! old export or the new one. Records are held in memory (prompt, responses, cell): export runs
//! on a selected dataset (tens of thousands of records), not the raw pool.

pub mod card;
pub mod formats;
pub mod split;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use aligndata_core::{Record, Taxonomy};
use aligndata_dataset::Dataset;

pub use formats::{ExportFormat, FormatKind};
pub use split::{SPLIT_NAMES, SplitItem, SplitPlan, assign_splits};

/// Score names of the judge contract.
pub const JUDGE_TOTAL: &str = "judge.total";
/// Record score: index of the SFT response.
pub const JUDGE_CHOSEN: &str = "judge.chosen";
/// Record score: index of the rejected response (only when the margin passed).
pub const JUDGE_REJECTED: &str = "judge.rejected";

/// Settings of one export.
#[derive(Debug, Clone, Serialize)]
pub struct ExportConfig {
    /// Formats to write (all when empty).
    pub formats: Vec<ExportFormat>,
    /// Train, validation, test shares (normalised; a zero share gives an empty split).
    pub ratios: [f64; 3],
    /// Seed of the split order.
    pub seed: u64,
    /// MinHash Jaccard at or above which two inputs must share a split.
    pub near_threshold: f64,
    /// A system message put first in every conversation.
    pub system_prompt: Option<String>,
    /// License of the exported dataset (SPDX id or words), for the card.
    pub license: Option<String>,
    /// Licenses of sources: (substring of a source file path or a source kind, license).
    pub source_licenses: Vec<(String, String)>,
    /// Flag kinds that do not exclude a record (for example `crisis`, when crisis inputs with
    /// their safety responses belong in the training data).
    pub keep_flags: Vec<String>,
    /// Dimension ids that make a cell, in order; from the taxonomy when one is given, else
    /// every dimension found in labels or `intended`, sorted.
    pub dimensions: Vec<String>,
    /// Dataset name for the card.
    pub name: String,
}

impl Default for ExportConfig {
    fn default() -> Self {
        ExportConfig {
            formats: Vec::new(),
            ratios: [0.8, 0.1, 0.1],
            seed: 1,
            near_threshold: 0.7,
            system_prompt: None,
            license: None,
            source_licenses: Vec::new(),
            keep_flags: Vec::new(),
            dimensions: Vec::new(),
            name: "aligndata export".to_string(),
        }
    }
}

impl ExportConfig {
    /// Uses the taxonomy's dimensions (in file order) for cells and its name for the card.
    pub fn with_taxonomy(mut self, taxonomy: &Taxonomy) -> Self {
        self.dimensions = taxonomy.dimensions.iter().map(|d| d.id.clone()).collect();
        if self.name == ExportConfig::default().name {
            self.name = format!("{} (aligndata)", taxonomy.name);
        }
        self
    }

    /// Checks the settings; the error names the setting.
    pub fn validate(&self) -> Result<()> {
        if self.ratios.iter().any(|r| !(r.is_finite() && *r >= 0.0)) || self.ratios[0] <= 0.0 {
            bail!(
                "split ratios must be non-negative with a positive train share, got {:?}",
                self.ratios
            );
        }
        if !(self.near_threshold > 0.0 && self.near_threshold <= 1.0) {
            bail!(
                "the near-duplicate threshold is a Jaccard in (0, 1], got {}",
                self.near_threshold
            );
        }
        Ok(())
    }

    fn formats(&self) -> Vec<ExportFormat> {
        if self.formats.is_empty() {
            ExportFormat::ALL.to_vec()
        } else {
            self.formats.clone()
        }
    }
}

/// Rows written for one format.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FormatSummary {
    /// The format.
    pub format: String,
    /// Who reads it.
    pub description: String,
    /// Top-level fields of a row.
    pub fields: Vec<String>,
    /// Rows per split: train, validation, test.
    pub rows: BTreeMap<String, u64>,
}

/// One input dataset.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InputInfo {
    /// Directory.
    pub dataset: String,
    /// Stage that wrote it.
    pub stage: String,
    /// Its records.
    pub records: u64,
    /// Its manifest's flag counts (records set aside by earlier stages).
    pub by_flag: BTreeMap<String, u64>,
    /// Rows its stage quarantined.
    pub quarantined: u64,
}

/// What export did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExportSummary {
    /// The output directory.
    pub out: PathBuf,
    /// Records read.
    pub records: u64,
    /// Records exported (in some split).
    pub exported: u64,
    /// Records left out, by reason (a flag kind, or `no_response`); a record with two flags
    /// counts under both.
    pub excluded: BTreeMap<String, u64>,
    /// Records left out because of a flag (each counted once).
    pub excluded_flagged: u64,
    /// Exported records per split.
    pub splits: BTreeMap<String, u64>,
    /// Exported records per source kind.
    pub by_source: BTreeMap<String, u64>,
    /// Exported records per source file (real) or generator model (synthetic).
    pub by_origin: BTreeMap<String, u64>,
    /// Exported records per cell, per split (cell → [train, validation, test]).
    pub cells: BTreeMap<String, [u64; 3]>,
    /// The dimensions a cell is made of.
    pub dimensions: Vec<String>,
    /// Models that wrote inputs (`input:<model>`) or responses (`response:<model>`), with counts.
    pub models: BTreeMap<String, u64>,
    /// Exported records with a preference pair.
    pub preference_pairs: u64,
    /// Exported records whose SFT response the judge picked.
    pub judged: u64,
    /// Near-duplicate groups kept inside one split, and the records in them.
    pub duplicate_groups: u64,
    /// Records in near-duplicate groups.
    pub grouped_records: u64,
    /// Per format.
    pub formats: Vec<FormatSummary>,
    /// The inputs.
    pub inputs: Vec<InputInfo>,
    /// Source licenses as given (source → license), plus `unknown` for sources without one.
    pub licenses: BTreeMap<String, String>,
}

struct Kept {
    id: String,
    text: String,
    cell: String,
    duplicate_of: Vec<String>,
    source: String,
    origin: String,
    example: formats::Example,
    judged: bool,
}

/// The cell key of a record: top label per dimension, else the intended value, else `?`.
pub fn cell_key(record: &Record, dimensions: &[String]) -> String {
    let parts: Vec<&str> = dimensions
        .iter()
        .map(|d| {
            record
                .top_label(d)
                .map(|l| l.value.as_str())
                .or_else(|| record.intended.get(d).map(String::as_str))
                .unwrap_or("?")
        })
        .collect();
    parts.join(" × ")
}

/// Which responses make the SFT example and the rejected one, by the judge contract.
/// Returns (sft index, rejected index, judged).
pub fn pick_responses(record: &Record) -> Option<(usize, Option<usize>, bool)> {
    let n = record.responses.len();
    if n == 0 {
        return None;
    }
    let index = |name: &str| {
        record
            .score(name)
            .filter(|v| v.is_finite() && *v >= 0.0 && (*v as usize) < n && v.fract() == 0.0)
            .map(|v| v as usize)
    };
    match index(JUDGE_CHOSEN) {
        Some(chosen) => {
            let rejected = index(JUDGE_REJECTED).filter(|&r| r != chosen);
            Some((chosen, rejected, true))
        }
        None => Some((0, None, false)),
    }
}

/// Exports `inputs` into `out`; see the module docs.
pub fn export(
    inputs: &[PathBuf],
    out: &Path,
    config: &ExportConfig,
    progress: &dyn Fn(u64),
) -> Result<ExportSummary> {
    config.validate()?;
    if inputs.is_empty() {
        bail!("export needs at least one input dataset");
    }
    let mut summary = ExportSummary {
        out: out.to_path_buf(),
        ..ExportSummary::default()
    };
    let mut kept: Vec<Kept> = Vec::new();
    let mut dims: Vec<String> = config.dimensions.clone();
    let mut found_dims: std::collections::BTreeSet<String> = Default::default();
    let mut records_seen: Vec<Record> = Vec::new();

    for input in inputs {
        let dataset =
            Dataset::open(input).with_context(|| format!("cannot open {}", input.display()))?;
        summary.inputs.push(InputInfo {
            dataset: input.display().to_string(),
            stage: dataset.manifest.stage.clone(),
            records: dataset.manifest.counts.total,
            by_flag: dataset.manifest.counts.by_flag.clone(),
            quarantined: dataset.manifest.counts.quarantined,
        });
        for record in dataset.records() {
            let record = record.with_context(|| format!("cannot read {}", input.display()))?;
            summary.records += 1;
            progress(summary.records);
            let excluding: Vec<&str> = record
                .flags
                .iter()
                .map(|f| f.kind.as_str())
                .filter(|k| !config.keep_flags.iter().any(|keep| keep == k))
                .collect();
            if !excluding.is_empty() {
                let mut kinds = excluding.clone();
                kinds.sort_unstable();
                kinds.dedup();
                for kind in kinds {
                    *summary.excluded.entry(kind.to_string()).or_default() += 1;
                }
                summary.excluded_flagged += 1;
                continue;
            }
            if record.responses.is_empty() {
                *summary
                    .excluded
                    .entry("no_response".to_string())
                    .or_default() += 1;
                continue;
            }
            if dims.is_empty() {
                found_dims.extend(record.labels.iter().map(|l| l.dimension.clone()));
                found_dims.extend(record.intended.keys().cloned());
            }
            records_seen.push(record);
        }
    }
    if dims.is_empty() {
        dims = found_dims.into_iter().collect();
    }
    summary.dimensions = dims.clone();

    for record in records_seen {
        let Some((sft, rejected, judged)) = pick_responses(&record) else {
            continue;
        };
        let mut prompt = Vec::new();
        if let Some(system) = &config.system_prompt {
            prompt.push(formats::Message::new("system", system));
        }
        prompt.push(formats::Message::new("user", &record.text));
        let origin = match (&record.provenance.file, &record.provenance.model) {
            (Some(file), _) => format!("{}: {file}", record.source.as_str()),
            (None, Some(model)) => format!("{}: {model}", record.source.as_str()),
            (None, None) => record.source.as_str().to_string(),
        };
        if let Some(model) = &record.provenance.model {
            *summary.models.entry(format!("input: {model}")).or_default() += 1;
        }
        for idx in std::iter::once(sft).chain(rejected) {
            let model = &record.responses[idx].model;
            let model = if model.is_empty() {
                "unknown"
            } else {
                model.as_str()
            };
            *summary
                .models
                .entry(format!("response: {model}"))
                .or_default() += 1;
        }
        kept.push(Kept {
            id: record.id.clone(),
            cell: cell_key(&record, &dims),
            duplicate_of: record
                .flags
                .iter()
                .filter_map(|f| f.other_id.clone())
                .collect(),
            source: record.source.as_str().to_string(),
            origin,
            example: formats::Example {
                prompt,
                sft: record.responses[sft].text.clone(),
                rejected: rejected.map(|r| record.responses[r].text.clone()),
            },
            judged,
            text: record.text,
        });
    }

    let items: Vec<SplitItem> = kept
        .iter()
        .map(|k| SplitItem {
            id: k.id.clone(),
            text: k.text.clone(),
            stratum: k.cell.clone(),
            duplicate_of: k.duplicate_of.clone(),
        })
        .collect();
    let plan = assign_splits(&items, config.ratios, config.near_threshold, config.seed)?;
    summary.duplicate_groups = plan.duplicate_groups;
    summary.grouped_records = plan.grouped_records;

    let mut per_split: [Vec<&formats::Example>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    let mut splits_jsonl = Vec::new();
    for (k, &s) in kept.iter().zip(&plan.assignment) {
        per_split[s].push(&k.example);
        summary.exported += 1;
        *summary
            .splits
            .entry(SPLIT_NAMES[s].to_string())
            .or_default() += 1;
        *summary.by_source.entry(k.source.clone()).or_default() += 1;
        *summary.by_origin.entry(k.origin.clone()).or_default() += 1;
        summary.cells.entry(k.cell.clone()).or_default()[s] += 1;
        if k.example.rejected.is_some() {
            summary.preference_pairs += 1;
        }
        if k.judged {
            summary.judged += 1;
        }
        serde_json::to_writer(
            &mut splits_jsonl,
            &serde_json::json!({ "id": k.id, "split": SPLIT_NAMES[s], "cell": k.cell, "source": k.source }),
        )?;
        splits_jsonl.push(b'\n');
    }
    for name in SPLIT_NAMES {
        summary.splits.entry(name.to_string()).or_default();
    }
    summary.licenses = source_licenses(&summary.by_origin, &config.source_licenses);

    // Write everything to a temp sibling, then swap it in.
    let tmp = temp_sibling(out, "partial")?;
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let result = (|| -> Result<()> {
        for format in config.formats() {
            let dir = tmp.join(format.as_str());
            fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
            let mut fs_summary = FormatSummary {
                format: format.as_str().to_string(),
                description: format.describe().to_string(),
                fields: format.fields().iter().map(|f| f.to_string()).collect(),
                rows: BTreeMap::new(),
            };
            for (s, name) in SPLIT_NAMES.iter().enumerate() {
                let rows = formats::write_split(&dir, name, format, &per_split[s])?;
                fs_summary.rows.insert(name.to_string(), rows);
            }
            summary.formats.push(fs_summary);
        }
        write_file(&tmp.join("splits.jsonl"), &splits_jsonl)?;
        let mut summary_for_file = summary.clone();
        summary_for_file.out = PathBuf::from(".");
        write_file(
            &tmp.join("export.json"),
            &serde_json::to_vec_pretty(&summary_for_file)?,
        )?;
        write_file(
            &tmp.join("README.md"),
            card::render(&summary, config).as_bytes(),
        )?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    swap_into_place(&tmp, out)?;
    Ok(summary)
}

fn source_licenses(
    by_origin: &BTreeMap<String, u64>,
    given: &[(String, String)],
) -> BTreeMap<String, String> {
    by_origin
        .keys()
        .map(|origin| {
            let license = given
                .iter()
                .find(|(pattern, _)| origin.contains(pattern.as_str()))
                .map(|(_, l)| l.clone())
                .unwrap_or_else(|| "unknown".to_string());
            (origin.clone(), license)
        })
        .collect()
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file =
        fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.sync_all()
        .with_context(|| format!("cannot sync {}", path.display()))?;
    Ok(())
}

/// `.<name>.<what>-<pid>` beside `out`.
pub(crate) fn temp_sibling(out: &Path, what: &str) -> Result<PathBuf> {
    let name = out.file_name().with_context(|| {
        format!(
            "{} has no directory name\nhint: give --out a directory path",
            out.display()
        )
    })?;
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).with_context(|| format!("cannot create {}", parent.display()))?;
    Ok(parent.join(format!(
        ".{}.{what}-{}",
        name.to_string_lossy(),
        std::process::id()
    )))
}

/// Renames `tmp` to `out`, moving an old `out` aside first and deleting it after.
pub(crate) fn swap_into_place(tmp: &Path, out: &Path) -> Result<()> {
    let old = temp_sibling(out, "old")?;
    let had_old = out.exists();
    if had_old {
        let _ = fs::remove_dir_all(&old);
        fs::rename(out, &old)
            .with_context(|| format!("cannot move the old {} aside", out.display()))?;
    }
    fs::rename(tmp, out)
        .with_context(|| format!("cannot move the new export to {}", out.display()))?;
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty())
        && let Ok(dir) = fs::File::open(parent)
    {
        let _ = dir.sync_all();
    }
    if had_old {
        let _ = fs::remove_dir_all(&old);
    }
    Ok(())
}
