//! Select: outliers by embedding density, then a budget of records balanced across taxonomy
//! cells, representative and diverse within each cell.
//!
//! # What it does
//!
//! `select(input, out, taxonomy, config, embedder)` reads one dataset in two streaming passes.
//!
//! 1. **Eligibility.** A record that already carries a flag from an earlier stage (`duplicate`,
//!    `language`, `too_short`, `pii`, …) is not eligible: those flags are the rule-based outliers,
//!    and the summary counts them per kind. Flags this stage sets (`outlier`, `not_selected`) are
//!    dropped on input, so a re-run decides afresh.
//! 2. **Outliers.** Every eligible record is embedded and scored by density
//!    ([`outlier`]: mean k-NN cosine distance, or LOF). The score goes on the record as
//!    `outlier` with a reason a reviewer can check (`knn distance 0.62 (mean cosine distance to
//!    10 nearest), 99.1th percentile`); records at or above the percentile (or an absolute
//!    threshold) get the flag `outlier`. Outliers are kept, scored and listed, never selected.
//! 3. **Cells.** A record's cell is its top label per dimension, falling back to `intended`
//!    (synthetic records before labelling). A dimension with no known value puts the record in
//!    the `unlabelled` bucket, which gets no quota unless `include_unlabelled` is set (a cell
//!    nobody can name cannot be balanced).
//! 4. **Quotas** ([`quota`]): the budget shared across cells — equally (balanced), in proportion
//!    to the taxonomy's cell weights, or to each cell's population — capped by what each cell
//!    holds, with what a small cell cannot use redistributed to the others.
//! 5. **Within a cell** ([`diverse`]): greedy facility location mixed with k-center, `tradeoff`
//!    sliding from representative to diverse. Deterministic for a seed.
//!
//! # What is written
//!
//! By default only the selected records: the output feeds `respond`, and a user who asked for
//! 200 records expects a dataset of 200. Nothing is lost by that: the input dataset is unchanged
//! and the summary (also in the output manifest) counts every record that was not selected, per
//! reason. With `keep_all` every input record is written, each unselected eligible one with a
//! `not_selected` flag naming its cell and quota, so "set aside" stays visible per record.
//!
//! # Memory
//!
//! Pass 1 keeps, per eligible record, a cell and its position; texts are not kept. Embeddings
//! (`dim` × 4 bytes each: 1 KB for WordLlama's 256-d, 4 KB for the hashed embedder's 1024-d) stay
//! in memory up to `brute_force_limit` eligible records, where every pair is compared exactly
//! ([`decide`]). Past it they go to an anonymous temporary file ([`spill`]) and
//! [`decide_spilled`] streams them: outlier scores against a seeded reference sample of
//! `reference_size` rows (see [`outlier`] for why a sample is enough), then each cell loads only
//! its sampled candidates. Peak memory is then the sample, one block of rows, one cell's
//! candidates and about 60 bytes per record, whatever the input size. Pass 2 re-reads and writes.

pub mod diverse;
pub mod outlier;
pub mod quota;
pub mod spill;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use rayon::prelude::*;
use serde::Serialize;

use aligndata_core::{Cell, Record, Taxonomy};
use aligndata_dataset::{Dataset, DatasetWriter, Format, ManifestFields, WriterOptions};
use aligndata_models::embed::Embedder;

pub use diverse::{DiverseConfig, mean_pairwise_similarity, pick, pick_among, pick_with};
pub use outlier::{
    Neighbours, OutlierMethod, ReferenceScorer, Rows, SearchConfig, dot_matrix, knn, knn_scores,
    lof_scores, percentiles,
};
pub use quota::allocate;
pub use spill::{Spill, SpillWriter, Stored};

/// The flag kind for density outliers.
pub const OUTLIER_FLAG: &str = "outlier";
/// The flag kind for eligible records left out by the quotas (with `keep_all`).
pub const NOT_SELECTED_FLAG: &str = "not_selected";
/// The name of the bucket for records without a known value in some dimension.
pub const UNLABELLED: &str = "unlabelled";

/// How the budget is shared across cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum QuotaMode {
    /// The same share for every cell.
    Balanced,
    /// In proportion to the taxonomy's cell weights (product of value weights).
    Weights,
    /// In proportion to each cell's eligible population.
    Proportional,
}

impl std::str::FromStr for QuotaMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "balanced" | "equal" => Ok(QuotaMode::Balanced),
            "weights" | "weighted" => Ok(QuotaMode::Weights),
            "proportional" | "population" => Ok(QuotaMode::Proportional),
            other => Err(format!(
                "unknown quota mode `{other}` (choose balanced, weights or proportional)"
            )),
        }
    }
}

/// Outlier settings.
#[derive(Debug, Clone, Serialize)]
pub struct OutlierConfig {
    /// k-NN distance or LOF.
    pub method: OutlierMethod,
    /// Neighbour search.
    pub search: SearchConfig,
    /// Flag records whose score is at or above this percentile of all eligible scores.
    pub percentile: f64,
    /// Flag records whose score is at or above this value instead (overrides the percentile).
    pub threshold: Option<f64>,
}

impl Default for OutlierConfig {
    fn default() -> Self {
        OutlierConfig {
            method: OutlierMethod::Knn,
            search: SearchConfig::default(),
            percentile: 99.0,
            threshold: None,
        }
    }
}

/// Settings of the select stage.
#[derive(Debug, Clone, Serialize)]
pub struct SelectConfig {
    /// How many records to select.
    pub budget: usize,
    /// How the budget is shared across cells.
    pub quota: QuotaMode,
    /// Outlier scoring and flagging.
    pub outlier: OutlierConfig,
    /// Within-cell picking.
    pub diverse: DiverseConfig,
    /// Give the `unlabelled` bucket a quota like a cell.
    pub include_unlabelled: bool,
    /// Write every input record (unselected ones flagged) instead of only the selection.
    pub keep_all: bool,
    /// Seed of every sample (reference set, candidates, the random baseline).
    pub seed: u64,
    /// Storage format of the output dataset.
    #[serde(skip)]
    pub format: Format,
}

impl Default for SelectConfig {
    fn default() -> Self {
        SelectConfig {
            budget: 1000,
            quota: QuotaMode::Balanced,
            outlier: OutlierConfig::default(),
            diverse: DiverseConfig::default(),
            include_unlabelled: false,
            keep_all: false,
            seed: 0,
            format: Format::Jsonl,
        }
    }
}

impl SelectConfig {
    /// Checks the settings; the error names the setting and what is allowed.
    pub fn validate(&self) -> Result<()> {
        if self.outlier.search.k == 0 {
            bail!("k (neighbours for the outlier score) must be at least 1");
        }
        if !(self.outlier.percentile > 0.0 && self.outlier.percentile <= 100.0) {
            bail!(
                "the outlier percentile must be in (0, 100], got {}",
                self.outlier.percentile
            );
        }
        if let Some(t) = self.outlier.threshold
            && !t.is_finite()
        {
            bail!("the outlier threshold must be a number, got {t}");
        }
        if !(0.0..=1.0).contains(&self.diverse.tradeoff) {
            bail!(
                "the tradeoff is in [0, 1] (0 = representative, 1 = diverse), got {}",
                self.diverse.tradeoff
            );
        }
        if self.outlier.search.reference_size == 0 {
            bail!("the reference size must be at least 1");
        }
        Ok(())
    }
}

/// One cell's figures.
#[derive(Debug, Clone, Serialize)]
pub struct CellSummary {
    /// The cell key (`dim=value|…`) or `unlabelled`.
    pub cell: String,
    /// Eligible, non-outlier records in the cell.
    pub available: u64,
    /// Its share of the budget.
    pub quota: u64,
    /// Records selected.
    pub selected: u64,
    /// The balanced (or weighted) share it would have had with enough records; `selected` is
    /// below it when the cell is short.
    pub fair_share: f64,
}

/// How one value of one dimension is covered.
#[derive(Debug, Clone, Serialize)]
pub struct ValueCoverage {
    /// Dimension id.
    pub dimension: String,
    /// Value id.
    pub value: String,
    /// Eligible, non-outlier records with this value.
    pub available: u64,
    /// Selected records with this value.
    pub selected: u64,
}

/// One of the top outliers.
#[derive(Debug, Clone, Serialize)]
pub struct OutlierEntry {
    /// Record id.
    pub id: String,
    /// The score.
    pub score: f64,
    /// Its percentile among eligible records.
    pub percentile: f64,
    /// The reason stored on the record.
    pub reason: String,
    /// The text, cut to about 80 characters.
    pub excerpt: String,
}

/// Mean pairwise cosine similarity of the selection and of a random sample the same size.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DiversitySummary {
    /// Of the selection (lower = more diverse).
    pub selected_mean_similarity: Option<f64>,
    /// Of a seeded random sample of the same size from the same pool.
    pub random_mean_similarity: Option<f64>,
}

/// What select did, for people and for `--json`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SelectSummary {
    /// Records read.
    pub records: u64,
    /// Records without a flag from an earlier stage.
    pub eligible: u64,
    /// Records not eligible, by the kind of their first flag.
    pub excluded_by_flag: BTreeMap<String, u64>,
    /// Eligible records flagged `outlier`.
    pub outliers: u64,
    /// `knn` or `lof`.
    pub outlier_method: String,
    /// The score at and above which a record was flagged.
    pub outlier_cutoff: Option<f64>,
    /// How neighbours were searched (`exact` or `reference sample of N`).
    pub outlier_search: String,
    /// The highest-scoring outliers (up to 10).
    pub top_outliers: Vec<OutlierEntry>,
    /// Eligible non-outliers in the `unlabelled` bucket.
    pub unlabelled: u64,
    /// The budget asked for.
    pub budget: u64,
    /// Records selected (= budget when enough are available).
    pub selected: u64,
    /// Per cell, largest first by available.
    pub cells: Vec<CellSummary>,
    /// Cells whose quota is below their fair share because they hold too few records.
    pub short_cells: Vec<String>,
    /// Per dimension and value.
    pub coverage: Vec<ValueCoverage>,
    /// `dim=value` present among available records but absent from the selection.
    pub values_missing_from_selection: Vec<String>,
    /// Diversity of the selection against random.
    pub diversity: DiversitySummary,
    /// Max/min selected count over cells that got their full quota and are not short.
    pub balance_ratio: Option<f64>,
    /// Records written to the output.
    pub written: u64,
    /// Eligible records that were not selected (outliers and unlabelled included).
    pub not_selected: u64,
    /// The embedder used.
    pub embedder: String,
    /// The output dataset directory.
    pub out: PathBuf,
}

/// Progress of a run: which pass, and records handled in it.
pub type Progress<'a> = &'a dyn Fn(&str, u64);

const EMBED_BATCH: usize = 1024;
const TOP_OUTLIERS: usize = 10;
const PAIRWISE_LIMIT: usize = 2000;
/// Rows scored per block on the spilled path (16k × 1024-d = 64 MB at most).
const SCORE_BLOCK: usize = 16_384;

/// The decisions for the eligible rows, in input order of eligible records.
#[derive(Debug, Clone)]
pub struct Decisions {
    /// Outlier score per eligible row.
    pub scores: Vec<f64>,
    /// Percentile per eligible row.
    pub percentiles: Vec<f64>,
    /// Flagged outlier.
    pub outlier: Vec<bool>,
    /// Selected.
    pub selected: Vec<bool>,
    /// Cell index per row (`cells[i]`), or `None` for unlabelled.
    pub cell: Vec<Option<u32>>,
    /// Summary figures (everything but the counts of pass 2).
    pub summary: SelectSummary,
}

/// The cell key of a record, or why it has none (the dimension without a known value).
pub fn cell_of(record: &Record, taxonomy: &Taxonomy) -> std::result::Result<Cell, String> {
    let mut cell = Vec::with_capacity(taxonomy.dimensions.len());
    for dimension in &taxonomy.dimensions {
        let value = record
            .top_label(&dimension.id)
            .map(|l| l.value.as_str())
            .or_else(|| record.intended.get(&dimension.id).map(String::as_str));
        match value.and_then(|v| dimension.value_index(v)) {
            Some(i) => cell.push(i),
            None => {
                return Err(match value {
                    Some(v) => format!("unknown value `{v}` for dimension `{}`", dimension.id),
                    None => format!("no label for dimension `{}`", dimension.id),
                });
            }
        }
    }
    Ok(Cell(cell))
}

/// Decides outliers and the selection for eligible rows already embedded (`rows`) whose cells
/// are `cells_of_rows` (`None` = unlabelled). The in-memory core of [`select`], for tests and
/// benchmarks.
pub fn decide(
    rows: Rows<'_>,
    cells_of_rows: &[Option<Cell>],
    taxonomy: &Taxonomy,
    config: &SelectConfig,
) -> Result<Decisions> {
    config.validate()?;
    let n = rows.len();
    if cells_of_rows.len() != n {
        bail!("{} cells for {} rows", cells_of_rows.len(), n);
    }
    let mut search = config.outlier.search.clone();
    search.seed = config.seed;
    let nb = knn(rows, &search);
    let described = match &nb.reference {
        None => "exact (all pairs)".to_string(),
        Some(r) => format!("reference sample of {}", r.len()),
    };
    let scores = match config.outlier.method {
        OutlierMethod::Knn => knn_scores(&nb),
        OutlierMethod::Lof => lof_scores(&nb),
    };
    drop(nb);
    let fetch = |idx: &[u32]| -> Result<Vec<f32>> { Ok(outlier::gather(rows, idx)) };
    finish(
        scores,
        described,
        rows.dim,
        &fetch,
        cells_of_rows,
        taxonomy,
        config,
    )
}

/// [`decide`] for embeddings that stay on disk (`spill`): outlier scores against a seeded
/// reference sample of `reference_size` rows, streamed block by block past it, and only the
/// sampled rows of each cell loaded to pick from. Memory: the sample, one block, one cell's
/// candidates, and a few numbers per row.
pub fn decide_spilled(
    spill: &Spill,
    cells_of_rows: &[Option<Cell>],
    taxonomy: &Taxonomy,
    config: &SelectConfig,
    progress: Progress<'_>,
) -> Result<Decisions> {
    config.validate()?;
    let n = spill.len();
    if cells_of_rows.len() != n {
        bail!("{} cells for {} rows", cells_of_rows.len(), n);
    }
    let search = &config.outlier.search;
    let m = search.reference_size.clamp(1, n.max(1));
    let ids = outlier::sample_indices(n, m, config.seed, "outlier-reference");
    let sample = spill.fetch(&ids)?;
    let scorer = ReferenceScorer::new(config.outlier.method, search.k, sample, ids, spill.dim());
    let mut scores = Vec::with_capacity(n);
    let mut start = 0;
    while start < n {
        let count = SCORE_BLOCK.min(n - start);
        let block = spill.read_block(start, count)?;
        scores.extend(scorer.score(
            Rows {
                data: &block,
                dim: spill.dim(),
            },
            start as u32,
        ));
        start += count;
        progress("score", start as u64);
    }
    let described = format!("reference sample of {}", scorer.len());
    drop(scorer);
    let fetch = |idx: &[u32]| spill.fetch(idx);
    finish(
        scores,
        described,
        spill.dim(),
        &fetch,
        cells_of_rows,
        taxonomy,
        config,
    )
}

/// Rows fetched by index, contiguous.
type Fetch<'a> = dyn Fn(&[u32]) -> Result<Vec<f32>> + Sync + 'a;

/// Everything after the outlier scores: flags, cells, quotas, picks, the summary.
fn finish(
    scores: Vec<f64>,
    described_search: String,
    dim: usize,
    fetch: &Fetch<'_>,
    cells_of_rows: &[Option<Cell>],
    taxonomy: &Taxonomy,
    config: &SelectConfig,
) -> Result<Decisions> {
    let n = scores.len();
    let mut summary = SelectSummary {
        budget: config.budget as u64,
        outlier_method: config.outlier.method.as_str().to_string(),
        outlier_search: described_search,
        ..SelectSummary::default()
    };
    let pct = percentiles(&scores);
    let outlier: Vec<bool> = (0..n)
        .map(|i| match config.outlier.threshold {
            Some(t) => scores[i] >= t,
            None => n > 1 && pct[i] >= config.outlier.percentile,
        })
        .collect();
    summary.outliers = outlier.iter().filter(|&&o| o).count() as u64;
    summary.outlier_cutoff = (0..n)
        .filter(|&i| outlier[i])
        .map(|i| scores[i])
        .min_by(f64::total_cmp)
        .or(config.outlier.threshold);

    // Cells of the pool (eligible, not outliers).
    let mut keys: Vec<String> = Vec::new();
    let mut cell_cells: Vec<Option<Cell>> = Vec::new();
    let mut index: HashMap<Cell, u32> = HashMap::new();
    let mut unlabelled_id: Option<u32> = None;
    let mut cell = vec![None; n];
    for i in 0..n {
        let id = match &cells_of_rows[i] {
            Some(c) => *index.entry(c.clone()).or_insert_with(|| {
                keys.push(taxonomy.cell_key(c));
                cell_cells.push(Some(c.clone()));
                (keys.len() - 1) as u32
            }),
            None => *unlabelled_id.get_or_insert_with(|| {
                keys.push(UNLABELLED.to_string());
                cell_cells.push(None);
                (keys.len() - 1) as u32
            }),
        };
        cell[i] = Some(id);
    }
    let mut members: Vec<Vec<u32>> = vec![Vec::new(); keys.len()];
    for i in 0..n {
        if outlier[i] {
            continue;
        }
        if let Some(c) = cell[i] {
            if Some(c) == unlabelled_id {
                summary.unlabelled += 1;
                if !config.include_unlabelled {
                    continue;
                }
            }
            members[c as usize].push(i as u32);
        }
    }
    let available: Vec<usize> = members.iter().map(Vec::len).collect();
    let weights: Vec<f64> = (0..keys.len())
        .map(|c| match (config.quota, &cell_cells[c]) {
            (QuotaMode::Balanced, _) => 1.0,
            (QuotaMode::Proportional, _) => available[c] as f64,
            (QuotaMode::Weights, Some(cell)) => taxonomy.cell_weight(cell),
            (QuotaMode::Weights, None) => 1.0,
        })
        .collect();
    let quotas = allocate(&available, &weights, config.budget);
    // Fair share: the split with no caps, to tell short cells from the rest.
    let open: Vec<usize> = (0..keys.len()).filter(|&c| available[c] > 0).collect();
    let wsum: f64 = open.iter().map(|&c| weights[c].max(0.0)).sum();

    // Within each cell, in parallel over cells (each pick is itself parallel).
    let mut diverse = config.diverse.clone();
    diverse.seed = config.seed;
    let picks: Vec<Vec<u32>> = (0..keys.len())
        .into_par_iter()
        .map(|c| pick_with(&members[c], quotas[c], dim, &diverse, &keys[c], fetch))
        .collect::<Result<_>>()?;
    let mut selected = vec![false; n];
    for p in &picks {
        for &i in p {
            selected[i as usize] = true;
        }
    }
    summary.selected = selected.iter().filter(|&&s| s).count() as u64;

    for c in 0..keys.len() {
        if available[c] == 0 {
            continue;
        }
        let fair = if wsum > 0.0 {
            config.budget as f64 * weights[c].max(0.0) / wsum
        } else {
            0.0
        };
        summary.cells.push(CellSummary {
            cell: keys[c].clone(),
            available: available[c] as u64,
            quota: quotas[c] as u64,
            selected: picks[c].len() as u64,
            fair_share: (fair * 100.0).round() / 100.0,
        });
        if (quotas[c] as f64) < fair.floor() && quotas[c] == available[c] {
            summary.short_cells.push(keys[c].clone());
        }
    }
    summary.cells.sort_by(|a, b| {
        b.available
            .cmp(&a.available)
            .then_with(|| a.cell.cmp(&b.cell))
    });
    let full: Vec<u64> = summary
        .cells
        .iter()
        .filter(|c| c.cell != UNLABELLED && !summary.short_cells.contains(&c.cell))
        .map(|c| c.selected)
        .collect();
    if let (Some(max), Some(min)) = (full.iter().max(), full.iter().min())
        && *min > 0
        && config.quota == QuotaMode::Balanced
    {
        summary.balance_ratio = Some(*max as f64 / *min as f64);
    }

    // Coverage per dimension and value.
    for (d, dimension) in taxonomy.dimensions.iter().enumerate() {
        let mut avail = vec![0u64; dimension.values.len()];
        let mut sel = vec![0u64; dimension.values.len()];
        for (c, m) in members.iter().enumerate() {
            let Some(Some(cell)) = cell_cells.get(c) else {
                continue;
            };
            let Some(&v) = cell.0.get(d) else { continue };
            avail[v] += m.len() as u64;
            sel[v] += picks[c].len() as u64;
        }
        for (v, value) in dimension.values.iter().enumerate() {
            if avail[v] > 0 && sel[v] == 0 {
                summary
                    .values_missing_from_selection
                    .push(format!("{}={}", dimension.id, value.id));
            }
            summary.coverage.push(ValueCoverage {
                dimension: dimension.id.clone(),
                value: value.id.clone(),
                available: avail[v],
                selected: sel[v],
            });
        }
    }

    // Diversity against a random sample of the same size from the same pool.
    let chosen: Vec<u32> = (0..n as u32).filter(|&i| selected[i as usize]).collect();
    let pool: Vec<u32> = members.iter().flatten().copied().collect::<Vec<_>>();
    let mut pool = pool;
    pool.sort_unstable();
    let random: Vec<u32> =
        outlier::sample_indices(pool.len(), chosen.len(), config.seed, "random baseline")
            .into_iter()
            .map(|i| pool[i as usize])
            .collect();
    let pairwise = |idx: &[u32]| -> Result<Option<f64>> {
        // The same sample `mean_pairwise_similarity` would draw, fetched first.
        let idx: Vec<u32> = if idx.len() > PAIRWISE_LIMIT {
            outlier::sample_indices(idx.len(), PAIRWISE_LIMIT, config.seed, "pairwise")
                .into_iter()
                .map(|i| idx[i as usize])
                .collect()
        } else {
            idx.to_vec()
        };
        let data = fetch(&idx)?;
        let local: Vec<u32> = (0..idx.len() as u32).collect();
        Ok(mean_pairwise_similarity(
            Rows { data: &data, dim },
            &local,
            PAIRWISE_LIMIT,
            config.seed,
        ))
    };
    summary.diversity = DiversitySummary {
        selected_mean_similarity: pairwise(&chosen)?,
        random_mean_similarity: pairwise(&random)?,
    };

    let cell = cell
        .into_iter()
        .map(|c| c.filter(|&c| Some(c) != unlabelled_id))
        .collect();
    Ok(Decisions {
        scores,
        percentiles: pct,
        outlier,
        selected,
        cell,
        summary,
    })
}

/// The reason stored with an outlier score.
pub fn outlier_reason(method: OutlierMethod, k: usize, score: f64, percentile: f64) -> String {
    match method {
        OutlierMethod::Knn => {
            format!(
                "knn distance {score:.2} (mean cosine distance to {k} nearest), {percentile:.1}th percentile"
            )
        }
        OutlierMethod::Lof => format!("lof {score:.2} (k={k}), {percentile:.1}th percentile"),
    }
}

/// Reads `input`, decides, and writes `out`; see the module docs.
pub fn select(
    input: &Path,
    out: &Path,
    taxonomy: &Taxonomy,
    config: &SelectConfig,
    embedder: &dyn Embedder,
    progress: Progress<'_>,
) -> Result<SelectSummary> {
    config.validate()?;
    let dataset = Dataset::open(input)
        .with_context(|| format!("could not open dataset {}", input.display()))?;
    let name = input.display().to_string();
    let dim = embedder.dim();

    // Pass 1: eligibility, cells, embeddings (on disk past the brute-force limit).
    let mut records = 0u64;
    let mut excluded: BTreeMap<String, u64> = BTreeMap::new();
    let mut eligible_pos: Vec<u64> = Vec::new();
    let mut cells: Vec<Option<Cell>> = Vec::new();
    // Why each unlabelled record has no cell, interned: a few distinct reasons for any number of
    // records.
    let mut reasons: Vec<String> = Vec::new();
    let mut unlabelled_reason: HashMap<u64, u32> = HashMap::new();
    let spill_dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut store = SpillWriter::new(dim, config.outlier.search.brute_force_limit, &spill_dir);
    let mut batch: Vec<String> = Vec::with_capacity(EMBED_BATCH);
    let embed = |batch: &mut Vec<String>, store: &mut SpillWriter| -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let texts: Vec<&str> = batch.iter().map(String::as_str).collect();
        let rows = embedder.embed(&texts).context("embedding the records")?;
        for row in rows {
            store.push(&row)?;
        }
        batch.clear();
        Ok(())
    };
    for record in dataset.records() {
        let mut record: Record = record.with_context(|| format!("reading {name}"))?;
        strip_own_flags(&mut record);
        if let Some(flag) = record.flags.first() {
            *excluded.entry(flag.kind.clone()).or_default() += 1;
        } else {
            match cell_of(&record, taxonomy) {
                Ok(c) => cells.push(Some(c)),
                Err(why) => {
                    let r = match reasons.iter().position(|x| *x == why) {
                        Some(r) => r,
                        None => {
                            reasons.push(why);
                            reasons.len() - 1
                        }
                    };
                    unlabelled_reason.insert(records, r as u32);
                    cells.push(None);
                }
            }
            eligible_pos.push(records);
            batch.push(record.text);
            if batch.len() == EMBED_BATCH {
                embed(&mut batch, &mut store)?;
            }
        }
        records += 1;
        if records.is_multiple_of(4096) {
            progress("embed", records);
        }
    }
    embed(&mut batch, &mut store)?;
    progress("embed", records);

    progress("select", 0);
    let decisions = match store.finish()? {
        Stored::Memory(vectors) => decide(
            Rows {
                data: &vectors,
                dim,
            },
            &cells,
            taxonomy,
            config,
        )?,
        Stored::Spilled(spill) => decide_spilled(&spill, &cells, taxonomy, config, progress)?,
    };
    let mut summary = decisions.summary.clone();
    summary.records = records;
    summary.eligible = eligible_pos.len() as u64;
    summary.excluded_by_flag = excluded;
    summary.embedder = embedder.name().to_string();
    summary.out = out.to_path_buf();

    // Top outliers (ids and excerpts filled in pass 2).
    let mut top: Vec<usize> = (0..decisions.scores.len())
        .filter(|&i| decisions.outlier[i])
        .collect();
    top.sort_by(|&a, &b| {
        decisions.scores[b]
            .total_cmp(&decisions.scores[a])
            .then(a.cmp(&b))
    });
    top.truncate(TOP_OUTLIERS);
    let mut top_entries: BTreeMap<usize, OutlierEntry> = BTreeMap::new();

    // Pass 2: write.
    let mut writer = DatasetWriter::create(
        out,
        WriterOptions {
            format: config.format,
            ..WriterOptions::default()
        },
    )
    .with_context(|| format!("could not create dataset {}", out.display()))?;
    let cell_quota: HashMap<&str, (u64, u64)> = summary
        .cells
        .iter()
        .map(|c| (c.cell.as_str(), (c.selected, c.available)))
        .collect();
    let k = config.outlier.search.k;
    let mut pos = 0u64;
    let mut e = 0usize;
    for record in dataset.records() {
        let mut record: Record = record.with_context(|| format!("reading {name} again"))?;
        strip_own_flags(&mut record);
        let is_eligible = eligible_pos.get(e) == Some(&pos);
        if is_eligible != record.flags.is_empty() {
            bail!(
                "{name} changed while select was reading it\nhint: run select again when nothing writes to it"
            );
        }
        let mut keep = config.keep_all;
        if is_eligible {
            let (score, pct) = (decisions.scores[e], decisions.percentiles[e]);
            let reason = outlier_reason(config.outlier.method, k, score, pct);
            record.set_score(OUTLIER_FLAG, score, reason.clone());
            if decisions.outlier[e] {
                if top.contains(&e) {
                    top_entries.insert(
                        e,
                        OutlierEntry {
                            id: record.id.clone(),
                            score,
                            percentile: pct,
                            reason: reason.clone(),
                            excerpt: excerpt(&record.text),
                        },
                    );
                }
                record.flag(OUTLIER_FLAG, reason);
            } else if decisions.selected[e] {
                keep = true;
            } else {
                let why = match (&cells[e], unlabelled_reason.get(&pos)) {
                    (Some(c), _) => {
                        let key = taxonomy.cell_key(c);
                        let (sel, avail) = cell_quota.get(key.as_str()).copied().unwrap_or((0, 0));
                        format!("cell {key} over its quota ({sel} of {avail} available selected)")
                    }
                    (None, Some(&why)) if !config.include_unlabelled => {
                        format!("{UNLABELLED}: {}", reasons[why as usize])
                    }
                    (None, _) => format!("{UNLABELLED} bucket over its quota"),
                };
                record.flag(NOT_SELECTED_FLAG, why);
            }
            e += 1;
        }
        if keep {
            writer.push(&record)?;
            summary.written += 1;
        }
        pos += 1;
        if pos.is_multiple_of(4096) {
            progress("write", pos);
        }
    }
    if pos != records || e != eligible_pos.len() {
        bail!(
            "{name} changed while select was reading it\nhint: run select again when nothing writes to it"
        );
    }
    progress("write", pos);
    summary.not_selected = summary.eligible - summary.selected;
    summary.top_outliers = top.iter().filter_map(|i| top_entries.remove(i)).collect();
    writer.finish(ManifestFields {
        stage: "select".into(),
        config: serde_json::to_value(config)?,
        parents: vec![name],
        extra: serde_json::to_value(&summary)?,
    })?;
    Ok(summary)
}

/// Drops the flags this stage sets, so a re-run decides afresh.
fn strip_own_flags(record: &mut Record) {
    record
        .flags
        .retain(|f| f.kind != OUTLIER_FLAG && f.kind != NOT_SELECTED_FLAG);
}

fn excerpt(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}

#[cfg(test)]
mod tests;
