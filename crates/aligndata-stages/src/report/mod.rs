//! Report: what is in the data, at a glance — one self-contained HTML file (inline CSS, JS and
//! SVG; no network, so it opens from a mail attachment or an air-gapped box) and `report.json`
//! with the same numbers, for scripts and for diffs between rounds.
//!
//! Why each figure (story 1: "what is in my data?"):
//! - coverage heatmaps (first dimension × second, third × second, …) per source show empty and
//!   crowded cells;
//! - counts by source and flag show what was set aside and why;
//! - diversity (distinct-1/2, mean pairwise cosine) catches repetitive generators;
//! - the synthetic-vs-real gap — the cross-validated AUC of a logistic regression telling
//!   synthetic from real on embeddings, overall and per value of the first dimension — says how
//!   realistic the synthetic data is (0.5 indistinguishable; the higher, the less realistic);
//! - judge score distributions show what the judge thought of the responses;
//! - a 2-D PCA map of the embeddings coloured by source shows where sources do not overlap;
//! - a few examples per cell let a reader check labels by eye.
//!
//! Bounded cost and a page that opens in well under a second: counts stream over every record;
//! everything that needs text or embeddings uses a deterministic sample (the `sample_per_source`
//! records with the smallest id hashes per source, so the sample does not depend on input order);
//! the map draws at most `max_points` points and the page at most `max_example_cells` cells of
//! examples. Flagged records count in the flag table only; every other figure is over kept records.

pub mod html;
pub mod stats;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use aligndata_core::{Record, SourceKind, Taxonomy};
use aligndata_dataset::{Dataset, write_atomic};
use aligndata_models::embed::Embedder;

/// Settings of one report.
#[derive(Debug, Clone, Serialize)]
pub struct ReportConfig {
    /// Records per source used for diversity, the gap and the map.
    pub sample_per_source: usize,
    /// Points drawn on the map.
    pub max_points: usize,
    /// Examples shown per cell.
    pub examples_per_cell: usize,
    /// Cells with examples (the largest).
    pub max_example_cells: usize,
    /// Folds of the gap classifier's cross-validation.
    pub folds: usize,
    /// Heatmaps: pairs of dimensions drawn (first × second, third × second, …), at most this many.
    pub max_heatmaps: usize,
    /// Title of the page.
    pub title: String,
}

impl Default for ReportConfig {
    fn default() -> Self {
        ReportConfig {
            sample_per_source: 1000,
            max_points: 1500,
            examples_per_cell: 3,
            max_example_cells: 40,
            folds: 5,
            max_heatmaps: 3,
            title: "aligndata report".to_string(),
        }
    }
}

/// Counts of one heatmap, per source (`all` included).
#[derive(Debug, Clone, Serialize)]
pub struct Heatmap {
    /// Dimension along the rows.
    pub row_dim: String,
    /// Dimension along the columns.
    pub col_dim: String,
    /// Row values (`?` for records with no value).
    pub rows: Vec<String>,
    /// Column values.
    pub cols: Vec<String>,
    /// Source → rows × cols counts.
    pub counts: BTreeMap<String, Vec<Vec<u64>>>,
}

/// Diversity of one source's sample.
#[derive(Debug, Clone, Serialize)]
pub struct Diversity {
    /// Kept records of this source.
    pub records: u64,
    /// Records in the sample.
    pub sample: usize,
    /// Distinct unigrams / unigrams.
    pub distinct_1: f64,
    /// Distinct bigrams / bigrams.
    pub distinct_2: f64,
    /// Mean cosine over all pairs of the sample's embeddings (higher = more alike).
    pub mean_pairwise_cosine: Option<f64>,
}

/// The synthetic-vs-real gap.
#[derive(Debug, Clone, Serialize)]
pub struct Gap {
    /// Cross-validated AUC over the balanced sample; `None` when one side is missing.
    pub auc: Option<f64>,
    /// Synthetic records in the balanced sample.
    pub synthetic: usize,
    /// Real (and feedback) records in it.
    pub real: usize,
    /// Folds.
    pub folds: usize,
    /// The dimension the per-cell figures use.
    pub cell_dim: String,
    /// Per value of `cell_dim`: (value, AUC of the out-of-fold scores, records) where both sides
    /// have at least 5.
    pub per_cell: Vec<(String, f64, usize)>,
    /// How to read it, or why it is missing.
    pub note: String,
}

/// One judge score's distribution.
#[derive(Debug, Clone, Serialize)]
pub struct ScoreHistogram {
    /// Score name.
    pub name: String,
    /// Values seen.
    pub count: u64,
    /// Mean.
    pub mean: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Counts in 10 equal bins from min to max.
    pub bins: Vec<u64>,
}

/// The 2-D map.
#[derive(Debug, Clone, Serialize)]
pub struct Map {
    /// How the coordinates were made.
    pub method: String,
    /// Share of variance the two axes explain.
    pub explained: [f64; 2],
    /// (x, y, source).
    pub points: Vec<(f32, f32, String)>,
}

/// A few examples of one cell.
#[derive(Debug, Clone, Serialize)]
pub struct CellExamples {
    /// Cell key (first dimension × second).
    pub cell: String,
    /// Kept records in the cell.
    pub records: u64,
    /// (source, text cut to 300 characters).
    pub examples: Vec<(String, String)>,
}

/// Everything the report shows; `report.json` is this.
#[derive(Debug, Clone, Serialize)]
pub struct ReportData {
    /// Page title.
    pub title: String,
    /// Input datasets.
    pub datasets: Vec<String>,
    /// Embedder used for diversity, the gap and the map.
    pub embedder: String,
    /// Records read.
    pub records: u64,
    /// Records without flags.
    pub kept: u64,
    /// Records per source.
    pub by_source: BTreeMap<String, u64>,
    /// Records per flag kind.
    pub by_flag: BTreeMap<String, u64>,
    /// Source → flag kind → records.
    pub by_source_flag: BTreeMap<String, BTreeMap<String, u64>>,
    /// The dimensions, in order.
    pub dimensions: Vec<String>,
    /// Coverage heatmaps.
    pub heatmaps: Vec<Heatmap>,
    /// Per source.
    pub diversity: BTreeMap<String, Diversity>,
    /// Synthetic vs real.
    pub gap: Gap,
    /// Judge scores.
    pub judge: Vec<ScoreHistogram>,
    /// The map.
    pub map: Map,
    /// Examples per cell.
    pub examples: Vec<CellExamples>,
}

struct Sampled {
    hash: u64,
    text: String,
    source: String,
    dim0: String,
}

fn value_of(record: &Record, dim: &str) -> String {
    record
        .top_label(dim)
        .map(|l| l.value.clone())
        .or_else(|| record.intended.get(dim).cloned())
        .unwrap_or_else(|| "?".to_string())
}

fn bottom_k<T>(v: &mut Vec<T>, k: usize, key: impl Fn(&T) -> u64) {
    if v.len() > 2 * k.max(1) {
        v.sort_by_key(|x| key(x));
        v.truncate(k);
    }
}

fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(max).collect();
        s.push('…');
        s
    }
}

/// Reads `inputs` and computes every figure; see the module docs.
pub fn build_report(
    inputs: &[PathBuf],
    taxonomy: Option<&Taxonomy>,
    embedder: &dyn Embedder,
    config: &ReportConfig,
    progress: &dyn Fn(&str, u64),
) -> Result<ReportData> {
    if inputs.is_empty() {
        bail!("report needs at least one input dataset");
    }
    let mut records = 0u64;
    let mut kept = 0u64;
    let mut by_source: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_flag: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_source_flag: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let mut kept_by_source: BTreeMap<String, u64> = BTreeMap::new();
    // Values per record along every dimension (for heatmaps), counted as tuples.
    let mut dims: Vec<String> = taxonomy
        .map(|t| t.dimensions.iter().map(|d| d.id.clone()).collect())
        .unwrap_or_default();
    let mut dims_fixed = !dims.is_empty();
    let mut tuples: BTreeMap<(String, Vec<String>), u64> = BTreeMap::new();
    let mut pending: Vec<(String, Record)> = Vec::new();
    let mut samples: BTreeMap<String, Vec<Sampled>> = BTreeMap::new();
    let mut cell_examples: BTreeMap<String, (u64, Vec<Sampled>)> = BTreeMap::new();
    let mut judge: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let k = config.sample_per_source.max(2);

    let mut handle =
        |record: Record, dims: &[String], tuples: &mut BTreeMap<(String, Vec<String>), u64>| {
            let source = record.source.as_str().to_string();
            let values: Vec<String> = dims.iter().map(|d| value_of(&record, d)).collect();
            *tuples.entry((source.clone(), values.clone())).or_default() += 1;
            let hash = xxhash_rust::xxh3::xxh3_64(record.id.as_bytes());
            let dim0 = values.first().cloned().unwrap_or_else(|| "?".to_string());
            let cell = values
                .iter()
                .take(2)
                .cloned()
                .collect::<Vec<_>>()
                .join(" × ");
            let sample = samples.entry(source.clone()).or_default();
            sample.push(Sampled {
                hash,
                text: record.text.clone(),
                source: source.clone(),
                dim0: dim0.clone(),
            });
            bottom_k(sample, k, |s| s.hash);
            let entry = cell_examples.entry(cell).or_default();
            entry.0 += 1;
            entry.1.push(Sampled {
                hash,
                text: cut(&record.text, 300),
                source: source.clone(),
                dim0,
            });
            bottom_k(&mut entry.1, config.examples_per_cell, |s| s.hash);
            for response in &record.responses {
                for score in &response.scores {
                    if score.name.starts_with("judge.") && score.value.is_finite() {
                        let v = judge.entry(score.name.clone()).or_default();
                        if v.len() < 1_000_000 {
                            v.push(score.value);
                        }
                    }
                }
            }
        };

    for input in inputs {
        let dataset =
            Dataset::open(input).with_context(|| format!("cannot open {}", input.display()))?;
        for record in dataset.records() {
            let record = record.with_context(|| format!("cannot read {}", input.display()))?;
            records += 1;
            if records.is_multiple_of(4096) {
                progress("read", records);
            }
            let source = record.source.as_str().to_string();
            *by_source.entry(source.clone()).or_default() += 1;
            for flag in &record.flags {
                *by_flag.entry(flag.kind.clone()).or_default() += 1;
                *by_source_flag
                    .entry(source.clone())
                    .or_default()
                    .entry(flag.kind.clone())
                    .or_default() += 1;
            }
            if !record.is_kept() {
                continue;
            }
            kept += 1;
            *kept_by_source.entry(source.clone()).or_default() += 1;
            if !dims_fixed {
                // Without a taxonomy the dimensions come from the first records' labels.
                pending.push((source, record));
                if pending.len() == 10_000 {
                    dims = found_dims(pending.iter().map(|(_, r)| r));
                    dims_fixed = true;
                    for (_, r) in std::mem::take(&mut pending) {
                        handle(r, &dims, &mut tuples);
                    }
                }
                continue;
            }
            handle(record, &dims, &mut tuples);
        }
    }
    if !pending.is_empty() {
        dims = found_dims(pending.iter().map(|(_, r)| r));
        for (_, r) in std::mem::take(&mut pending) {
            handle(r, &dims, &mut tuples);
        }
    }
    for v in samples.values_mut() {
        v.sort_by_key(|s| s.hash);
        v.truncate(k);
    }

    // Heatmaps.
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    if dims.len() >= 2 {
        pairs.push((0, 1));
        for i in 2..dims.len() {
            pairs.push((i, 1));
        }
    }
    pairs.truncate(config.max_heatmaps);
    let axis_values = |d: usize| -> Vec<String> {
        let mut values: Vec<String> = taxonomy
            .and_then(|t| t.dimension(&dims[d]))
            .map(|dim| dim.values.iter().map(|v| v.id.clone()).collect())
            .unwrap_or_default();
        let seen: BTreeSet<&String> = tuples.keys().map(|(_, v)| &v[d]).collect();
        for v in seen {
            if !values.contains(v) {
                values.push(v.clone());
            }
        }
        values
    };
    let mut heatmaps = Vec::new();
    for (r, c) in pairs {
        let rows = axis_values(r);
        let cols = axis_values(c);
        let mut counts: BTreeMap<String, Vec<Vec<u64>>> = BTreeMap::new();
        for ((source, values), n) in &tuples {
            let (Some(ri), Some(ci)) = (
                rows.iter().position(|x| *x == values[r]),
                cols.iter().position(|x| *x == values[c]),
            ) else {
                continue;
            };
            for key in [source.as_str(), "all"] {
                counts
                    .entry(key.to_string())
                    .or_insert_with(|| vec![vec![0; cols.len()]; rows.len()])[ri][ci] += n;
            }
        }
        heatmaps.push(Heatmap {
            row_dim: dims[r].clone(),
            col_dim: dims[c].clone(),
            rows,
            cols,
            counts,
        });
    }

    // Embeddings of the samples.
    progress("embed", 0);
    let all: Vec<&Sampled> = samples.values().flatten().collect();
    let texts: Vec<&str> = all.iter().map(|s| s.text.as_str()).collect();
    let vectors = if texts.is_empty() {
        Vec::new()
    } else {
        embedder.embed(&texts)?
    };

    let mut diversity = BTreeMap::new();
    for (source, sample) in &samples {
        let texts: Vec<&str> = sample.iter().map(|s| s.text.as_str()).collect();
        let rows: Vec<Vec<f32>> = all
            .iter()
            .zip(&vectors)
            .filter(|(s, _)| &s.source == source)
            .map(|(_, v)| v.clone())
            .collect();
        diversity.insert(
            source.clone(),
            Diversity {
                records: kept_by_source.get(source).copied().unwrap_or(0),
                sample: sample.len(),
                distinct_1: stats::distinct_n(&texts, 1),
                distinct_2: stats::distinct_n(&texts, 2),
                mean_pairwise_cosine: stats::mean_pairwise_cosine(&rows),
            },
        );
    }

    progress("gap", 0);
    let gap = synthetic_gap(
        &all,
        &vectors,
        dims.first().cloned().unwrap_or_default(),
        config.folds,
    );

    // Map: up to max_points, shared evenly between sources.
    let per_source = config.max_points / samples.len().max(1);
    let mut chosen: Vec<usize> = Vec::new();
    let mut taken: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, s) in all.iter().enumerate() {
        let t = taken.entry(s.source.as_str()).or_default();
        if *t < per_source {
            *t += 1;
            chosen.push(i);
        }
    }
    let map_rows: Vec<Vec<f32>> = chosen.iter().map(|&i| vectors[i].clone()).collect();
    let (coords, explained) = stats::pca_2d(&map_rows);
    let map = Map {
        method: format!("PCA (power iteration) of {} embeddings", embedder.name()),
        explained,
        points: chosen
            .iter()
            .zip(coords)
            .map(|(&i, c)| (c[0] as f32, c[1] as f32, all[i].source.clone()))
            .collect(),
    };

    let judge = judge
        .into_iter()
        .map(|(name, values)| {
            let min = values.iter().copied().fold(f64::INFINITY, f64::min);
            let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mut bins = vec![0u64; 10];
            for v in &values {
                let b = if max > min {
                    (((v - min) / (max - min)) * 10.0).floor() as usize
                } else {
                    0
                };
                bins[b.min(9)] += 1;
            }
            let mean = values.iter().sum::<f64>() / values.len().max(1) as f64;
            ScoreHistogram {
                name,
                count: values.len() as u64,
                mean,
                min,
                max,
                bins,
            }
        })
        .collect();

    let mut examples: Vec<CellExamples> = cell_examples
        .into_iter()
        .map(|(cell, (n, mut items))| {
            items.sort_by_key(|s| s.hash);
            items.truncate(config.examples_per_cell);
            CellExamples {
                cell,
                records: n,
                examples: items.into_iter().map(|s| (s.source, s.text)).collect(),
            }
        })
        .collect();
    examples.sort_by(|a, b| b.records.cmp(&a.records).then(a.cell.cmp(&b.cell)));
    examples.truncate(config.max_example_cells);

    Ok(ReportData {
        title: config.title.clone(),
        datasets: inputs.iter().map(|p| p.display().to_string()).collect(),
        embedder: embedder.name().to_string(),
        records,
        kept,
        by_source,
        by_flag,
        by_source_flag,
        dimensions: dims,
        heatmaps,
        diversity,
        gap,
        judge,
        map,
        examples,
    })
}

fn found_dims<'a>(records: impl Iterator<Item = &'a Record>) -> Vec<String> {
    let mut dims = BTreeSet::new();
    for r in records {
        dims.extend(r.labels.iter().map(|l| l.dimension.clone()));
        dims.extend(r.intended.keys().cloned());
    }
    dims.into_iter().collect()
}

fn synthetic_gap(all: &[&Sampled], vectors: &[Vec<f32>], cell_dim: String, folds: usize) -> Gap {
    let synthetic = SourceKind::Synthetic.as_str();
    let syn: Vec<usize> = (0..all.len())
        .filter(|&i| all[i].source == synthetic)
        .collect();
    let real: Vec<usize> = (0..all.len())
        .filter(|&i| all[i].source != synthetic)
        .collect();
    let n = syn.len().min(real.len());
    let mut gap = Gap {
        auc: None,
        synthetic: n,
        real: n,
        folds,
        cell_dim,
        per_cell: Vec::new(),
        note: String::new(),
    };
    if n < folds.max(2) {
        gap.note = format!(
            "needs synthetic and real records ({} synthetic, {} real/feedback in the sample)",
            syn.len(),
            real.len()
        );
        return gap;
    }
    // Interleave the two sides (each already in hash order) so every fold is balanced.
    let mut idx = Vec::with_capacity(2 * n);
    for i in 0..n {
        idx.push(syn[i]);
        idx.push(real[i]);
    }
    let x: Vec<Vec<f32>> = idx.iter().map(|&i| vectors[i].clone()).collect();
    let y: Vec<bool> = idx.iter().map(|&i| all[i].source == synthetic).collect();
    let scores = stats::cross_val_scores(&x, &y, folds);
    gap.auc = stats::auc(&scores, &y);
    let mut cells: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (j, &i) in idx.iter().enumerate() {
        cells.entry(all[i].dim0.as_str()).or_default().push(j);
    }
    for (cell, members) in cells {
        let s: Vec<f64> = members.iter().map(|&j| scores[j]).collect();
        let l: Vec<bool> = members.iter().map(|&j| y[j]).collect();
        let pos = l.iter().filter(|b| **b).count();
        if pos >= 5
            && l.len() - pos >= 5
            && let Some(a) = stats::auc(&s, &l)
        {
            gap.per_cell.push((cell.to_string(), a, members.len()));
        }
    }
    gap.note = "AUC of a logistic regression telling synthetic from real on embeddings, cross-validated: \
                0.5 = indistinguishable, 1.0 = trivially told apart; the higher, the less realistic the synthetic data."
        .to_string();
    gap
}

/// Writes `report.html` and `report.json` into `out` (created if needed); returns their paths.
pub fn write_report(data: &ReportData, out: &Path) -> Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let html_path = out.join("report.html");
    let json_path = out.join("report.json");
    write_atomic(&json_path, &serde_json::to_vec_pretty(data)?)?;
    write_atomic(&html_path, html::render(data).as_bytes())?;
    Ok((html_path, json_path))
}
