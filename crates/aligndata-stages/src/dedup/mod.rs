//! Dedup: exact, near and semantic duplicates, within and across datasets.
//!
//! # What it does
//!
//! `dedup(inputs, out)` reads one or more datasets and writes **one** output dataset holding
//! every record of every input, in input order (first dataset's records first). That is what the
//! next stage wants (one pool to label and select from), and listing `earlier/` first is how a user
//! says "what I already have wins". Nothing is dropped: a duplicate keeps all its fields and gets a
//! flag `{kind: "duplicate", other_id: <keeper id>, reason}`; the reason names the method and
//! score, the input dataset the keeper came from, and the record it was matched with when that is
//! not the keeper (clusters are transitive):
//!
//! ```text
//! exact duplicate of 9c1f… from real/
//! near duplicate (jaccard≈0.87) of 9c1f… from real/
//! semantic duplicate (cos≈0.95 with 77aa…) of 9c1f… from earlier/
//! ```
//!
//! An existing `duplicate` flag (from an earlier run) is replaced when this run finds the record a
//! duplicate, and left alone otherwise.
//!
//! # Methods
//!
//! - **exact** — xxh3-128 of the normal form ([`normalize`]: NFKC, case-folded, punctuation
//!   removed, whitespace collapsed). Texts with an empty normal form are never duplicates.
//! - **near** — b-bit MinHash + LSH over shingles of the normal form ([`minhash`]); a candidate
//!   pair counts when its estimated Jaccard is ≥ the threshold.
//! - **semantic** — embedding cosine ≥ the threshold ([`semantic`]): exact all pairs up to a limit,
//!   random-hyperplane LSH beyond.
//!
//! Near and semantic run only over the first record of each exact group.
//!
//! # Keeper
//!
//! Every record is linked to its best verified *earlier* match; clusters are the connected
//! components; the keeper is the earliest record of the cluster that had no flag on input (so a
//! record already set aside for PII or language does not become the keeper of a clean one), or
//! the earliest record when all had flags. Same input order → same output, whatever the thread
//! count.
//!
//! # Memory and passes
//!
//! Two streaming passes: the first keeps per record its id (≈ 40 B), one flag bit, and for each
//! distinct normal form a 16-byte exact key, a `num_perm`-byte signature and (semantic only) a
//! `dim`-byte vector; the second re-reads the inputs and writes them with their flags. 2M records
//! at 128 permutations, no semantic: ≈ 2M × (40 + 16 + 128) B ≈ 370 MB plus one LSH band's sort
//! buffer (16 B/record) per thread.
//!
//! # Sharding (not built)
//!
//! Everything the decision needs is per record and small (exact key, signature, vector); a shard
//! `i/N` could write those to a side file, and a merge step could run [`Deduper::finish`] over the
//! concatenation in global input order, which gives exactly the single-machine result. Exact
//! dedup alone shards by key (`key mod N`) with no merge at all.

pub mod engine;
pub mod minhash;
pub mod normalize;
pub mod semantic;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use aligndata_core::{Flag, Record};
use aligndata_dataset::{Dataset, DatasetWriter, Format, ManifestFields, WriterOptions};
use aligndata_models::embed::Embedder;

pub use engine::{Decisions, Deduper, Duplicate, Edge};
pub use minhash::{MinHasher, Shingle, optimal_bands};
pub use normalize::normalize;

/// The flag kind dedup sets.
pub const FLAG_KIND: &str = "duplicate";

/// How a duplicate was found. Ordered by strength: exact < near < semantic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Same normal form.
    Exact,
    /// MinHash Jaccard over shingles.
    Near,
    /// Embedding cosine.
    Semantic,
}

impl Method {
    /// `exact`, `near` or `semantic`.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Exact => "exact",
            Method::Near => "near",
            Method::Semantic => "semantic",
        }
    }
}

/// Near-duplicate settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NearConfig {
    /// How texts are cut into shingles.
    pub shingle: Shingle,
    /// MinHash permutations (signature bytes per record).
    pub num_perm: usize,
    /// LSH bands and rows per band; `None` picks what datasketch would for the threshold.
    pub bands: Option<(usize, usize)>,
    /// Minimum estimated Jaccard for a pair to count.
    pub threshold: f64,
    /// Seed of the permutations.
    pub seed: u64,
}

impl Default for NearConfig {
    fn default() -> Self {
        NearConfig {
            shingle: Shingle::Char(5),
            num_perm: 128,
            bands: None,
            threshold: 0.8,
            seed: 1,
        }
    }
}

impl NearConfig {
    /// The (bands, rows) in effect.
    pub fn bands_rows(&self) -> (usize, usize) {
        self.bands
            .unwrap_or_else(|| optimal_bands(self.threshold, self.num_perm))
    }
}

/// Semantic-duplicate settings (the embedder is passed beside the config).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SemanticConfig {
    /// Minimum cosine for a pair to count.
    pub threshold: f32,
    /// Up to this many distinct texts, compare all pairs; beyond, SimHash LSH.
    pub brute_force_limit: usize,
    /// Seed of the LSH hyperplanes.
    pub seed: u64,
}

impl Default for SemanticConfig {
    fn default() -> Self {
        SemanticConfig {
            threshold: 0.95,
            brute_force_limit: 20_000,
            seed: 1,
        }
    }
}

/// Which matchers run, and how the output is stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DedupConfig {
    /// Exact (normal-form) duplicates.
    pub exact: bool,
    /// Near duplicates, when set.
    pub near: Option<NearConfig>,
    /// Semantic duplicates, when set (needs an embedder).
    pub semantic: Option<SemanticConfig>,
    /// Storage format of the output dataset.
    #[serde(skip)]
    pub format: Format,
}

impl Default for DedupConfig {
    fn default() -> Self {
        DedupConfig {
            exact: true,
            near: Some(NearConfig::default()),
            semantic: None,
            format: Format::Jsonl,
        }
    }
}

impl DedupConfig {
    /// Checks the settings; the error says which one and what is allowed.
    pub fn validate(&self) -> Result<()> {
        if let Some(near) = &self.near {
            if near.num_perm == 0 || near.num_perm > 1024 {
                bail!("num_perm must be between 1 and 1024, got {}", near.num_perm);
            }
            if !(near.threshold > 0.0 && near.threshold <= 1.0) {
                bail!(
                    "the near threshold is a Jaccard in (0, 1], got {}",
                    near.threshold
                );
            }
            if let Some((b, r)) = near.bands
                && (b == 0 || r == 0 || b * r > near.num_perm)
            {
                bail!(
                    "bands × rows must be at least 1 and at most num_perm ({}), got {b} × {r}",
                    near.num_perm
                );
            }
        }
        if let Some(sem) = &self.semantic
            && !(sem.threshold > -1.0 && sem.threshold <= 1.0)
        {
            bail!(
                "the semantic threshold is a cosine in (-1, 1], got {}",
                sem.threshold
            );
        }
        Ok(())
    }
}

/// Counts for one input dataset.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InputSummary {
    /// The dataset directory, as given.
    pub dataset: PathBuf,
    /// Its records.
    pub records: u64,
    /// Of them, flagged duplicate in this run.
    pub duplicates: u64,
    /// Of the duplicates, those whose keeper came from another input, by that input.
    pub keepers_in: BTreeMap<String, u64>,
}

/// One of the biggest clusters.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterSummary {
    /// The keeper's id.
    pub keeper_id: String,
    /// The input the keeper came from.
    pub keeper_dataset: String,
    /// Records in the cluster, keeper included.
    pub size: u64,
    /// The keeper's text, cut to about 80 characters.
    pub excerpt: String,
}

/// What dedup found and where it went.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DedupSummary {
    /// Records read over all inputs (= records written).
    pub records: u64,
    /// Records flagged duplicate in this run.
    pub duplicates: u64,
    /// Duplicates per method (`exact`, `near`, `semantic`), by the link that set them aside.
    pub by_method: BTreeMap<String, u64>,
    /// Clusters of two or more records.
    pub clusters: u64,
    /// The largest clusters (up to 10).
    pub biggest: Vec<ClusterSummary>,
    /// Records whose normal form was empty (only punctuation or emoji): never compared.
    pub empty_text: u64,
    /// Per input dataset.
    pub inputs: Vec<InputSummary>,
    /// LSH bands × rows of the near matcher, when it ran.
    pub near_bands: Option<(usize, usize)>,
    /// How semantic pairs were searched (`brute force` or `simhash lsh`), when it ran.
    pub semantic_search: Option<String>,
    /// The output dataset directory.
    pub out: PathBuf,
}

/// Progress of a run: which pass, and records handled in it.
pub type Progress<'a> = &'a dyn Fn(&str, u64);

const BATCH: usize = 8192;
const BIGGEST: usize = 10;

/// Deduplicates `inputs` (dataset directories) into one dataset at `out`; see the module docs.
pub fn dedup(
    inputs: &[PathBuf],
    out: &Path,
    config: &DedupConfig,
    embedder: Option<&dyn Embedder>,
    progress: Progress<'_>,
) -> Result<DedupSummary> {
    if inputs.is_empty() {
        bail!("dedup needs at least one input dataset");
    }
    let datasets: Vec<Dataset> = inputs
        .iter()
        .map(|p| {
            Dataset::open(p).with_context(|| format!("could not open dataset {}", p.display()))
        })
        .collect::<Result<_>>()?;
    let names: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();

    // Pass 1: ids, flags, keys, signatures, vectors.
    let mut deduper = Deduper::new(config, embedder)?;
    let mut ids = IdArena::default();
    let mut ends: Vec<u32> = Vec::with_capacity(datasets.len());
    let mut batch: Vec<(String, bool)> = Vec::with_capacity(BATCH);
    let flush = |deduper: &mut Deduper<'_>, batch: &mut Vec<(String, bool)>| -> Result<()> {
        let items: Vec<(&str, bool)> = batch.iter().map(|(t, f)| (t.as_str(), *f)).collect();
        deduper.push_batch(&items)?;
        batch.clear();
        Ok(())
    };
    let mut seen = 0u64;
    for (dataset, name) in datasets.iter().zip(&names) {
        for record in dataset.records() {
            let record = record.with_context(|| format!("reading {name}"))?;
            ids.push(&record.id);
            batch.push((record.text, !record.flags.is_empty()));
            if batch.len() == BATCH {
                flush(&mut deduper, &mut batch)?;
                seen += BATCH as u64;
                progress("read", seen);
            }
        }
        seen += batch.len() as u64;
        flush(&mut deduper, &mut batch)?;
        ends.push(deduper.len());
    }
    progress("read", seen);
    progress("match", 0);
    let decisions = deduper.finish();
    let input_of = |idx: u32| ends.partition_point(|&end| end <= idx);

    // Which keepers' texts to show in the summary.
    let biggest: Vec<(u32, u32)> = decisions.clusters.iter().take(BIGGEST).copied().collect();
    let mut excerpts: BTreeMap<u32, String> = BTreeMap::new();

    // Pass 2: write every record, flagging the duplicates.
    let mut writer = DatasetWriter::create(
        out,
        WriterOptions {
            format: config.format,
            ..WriterOptions::default()
        },
    )
    .with_context(|| format!("could not create dataset {}", out.display()))?;
    let mut summary = DedupSummary {
        records: decisions.records as u64,
        clusters: decisions.clusters.len() as u64,
        empty_text: decisions.empty as u64,
        near_bands: decisions.bands,
        semantic_search: decisions.semantic_search.map(str::to_string),
        out: out.to_path_buf(),
        ..DedupSummary::default()
    };
    let mut dups = decisions.duplicates.iter().peekable();
    let mut idx = 0u32;
    for (d, (dataset, name)) in datasets.iter().zip(&names).enumerate() {
        let mut input = InputSummary {
            dataset: inputs[d].clone(),
            ..InputSummary::default()
        };
        for record in dataset.records() {
            let mut record: Record = record.with_context(|| format!("reading {name} again"))?;
            if idx >= ends.get(d).copied().unwrap_or(0) || ids.get(idx) != Some(record.id.as_str())
            {
                bail!(
                    "{name} changed while dedup was reading it\nhint: run dedup again when nothing writes to it"
                );
            }
            if biggest.iter().any(|&(k, _)| k == idx) {
                excerpts.insert(idx, excerpt(&record.text));
            }
            input.records += 1;
            if let Some(dup) = dups.next_if(|dup| dup.record == idx) {
                let keeper_input = input_of(dup.keeper);
                let keeper_name = names.get(keeper_input).cloned().unwrap_or_default();
                let keeper_id = ids.get(dup.keeper).unwrap_or("").to_string();
                let matched_id = ids.get(dup.matched).unwrap_or("");
                record.flags.retain(|f| f.kind != FLAG_KIND);
                record.flags.push(Flag {
                    kind: FLAG_KIND.to_string(),
                    reason: reason(dup, &keeper_id, matched_id, &keeper_name),
                    other_id: Some(keeper_id),
                });
                input.duplicates += 1;
                summary.duplicates += 1;
                *summary
                    .by_method
                    .entry(dup.method.as_str().to_string())
                    .or_default() += 1;
                if keeper_input != d {
                    *input.keepers_in.entry(keeper_name).or_default() += 1;
                }
            }
            writer.push(&record)?;
            idx += 1;
            if idx.is_multiple_of(4096) {
                progress("write", idx as u64);
            }
        }
        if idx != ends.get(d).copied().unwrap_or(0) {
            bail!(
                "{name} changed while dedup was reading it\nhint: run dedup again when nothing writes to it"
            );
        }
        summary.inputs.push(input);
    }
    progress("write", idx as u64);
    summary.biggest = biggest
        .iter()
        .map(|&(k, size)| ClusterSummary {
            keeper_id: ids.get(k).unwrap_or("").to_string(),
            keeper_dataset: names.get(input_of(k)).cloned().unwrap_or_default(),
            size: size as u64,
            excerpt: excerpts.get(&k).cloned().unwrap_or_default(),
        })
        .collect();
    writer.finish(ManifestFields {
        stage: "dedup".into(),
        config: serde_json::to_value(config)?,
        parents: names.clone(),
        extra: serde_json::to_value(&summary)?,
    })?;
    Ok(summary)
}

/// Runs the matchers over texts in memory (no datasets): for tests, benchmarks and callers that
/// hold their records already. Index `i` in the result is `texts[i]`.
pub fn dedup_texts(
    texts: &[&str],
    config: &DedupConfig,
    embedder: Option<&dyn Embedder>,
) -> Result<Decisions> {
    let mut deduper = Deduper::new(config, embedder)?;
    for chunk in texts.chunks(BATCH) {
        let items: Vec<(&str, bool)> = chunk.iter().map(|t| (*t, false)).collect();
        deduper.push_batch(&items)?;
    }
    Ok(deduper.finish())
}

/// The flag reason for one duplicate.
pub fn reason(dup: &Duplicate, keeper_id: &str, matched_id: &str, keeper_dataset: &str) -> String {
    let via = if dup.matched != dup.keeper {
        format!(" with {matched_id}")
    } else {
        String::new()
    };
    let detail = match dup.method {
        Method::Exact if via.is_empty() => String::new(),
        Method::Exact => format!(" ({})", via.trim_start()),
        Method::Near => format!(" (jaccard≈{:.2}{via})", dup.score),
        Method::Semantic => format!(" (cos≈{:.2}{via})", dup.score),
    };
    format!(
        "{} duplicate{detail} of {keeper_id} from {keeper_dataset}",
        dup.method.as_str()
    )
}

fn excerpt(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}

/// Record ids, packed in one buffer (≈ id length + 8 bytes each).
#[derive(Default)]
struct IdArena {
    bytes: String,
    ends: Vec<u64>,
}

impl IdArena {
    fn push(&mut self, id: &str) {
        self.bytes.push_str(id);
        self.ends.push(self.bytes.len() as u64);
    }

    fn get(&self, i: u32) -> Option<&str> {
        let i = i as usize;
        let end = *self.ends.get(i)? as usize;
        let start = if i == 0 {
            0
        } else {
            *self.ends.get(i - 1)? as usize
        };
        self.bytes.get(start..end)
    }
}

#[cfg(test)]
mod tests;
