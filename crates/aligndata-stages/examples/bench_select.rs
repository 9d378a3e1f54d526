//! Outlier scoring and selection benchmark, side by side with scikit-learn
//! (`scripts/bench_select_sklearn.py`), and the 1M-record selection.
//!
//! Reads texts from a TSV (default: GoEmotions train comments, first label as the cell), embeds
//! them, writes the embeddings to `--dir/embeddings.npy` (float32, n × dim) so scikit-learn sees
//! exactly the same vectors, times exact k-NN, the k-NN score and LOF, writes both scores
//! (`knn.npy`, `lof.npy`, float64), measures how well a reference sample of each
//! `--reference-sizes` ranks the rows against the exact scores (Spearman, top-1 % overlap), then
//! times a balanced selection of `--budget` over the GoEmotions labels as cells and writes the
//! figures to `--dir/rust.json`.
//!
//! With `--docs` above the file's rows (or `--scale`), the corpus is generated instead: the TSV's
//! comments drawn at random and lightly perturbed (as `bench_dedup` does), each keeping its
//! source's first label as its cell, streamed in batches (never all held), embedded and written
//! to the selection's on-disk store exactly as `aligndata select` does past
//! `--brute-force-limit`, then decided by `decide_spilled`: outlier scores against the reference
//! sample, lazy-greedy facility location + k-center per cell. No `.npy` is written in that mode.
//!
//! ```text
//! cargo run --release -p aligndata-stages --example bench_select -- --docs 20000 --dir /tmp/bench_select
//! python3 scripts/bench_select_sklearn.py --dir /tmp/bench_select
//! /usr/bin/time -v target/release/examples/bench_select --docs 1000000 --budget 10000 --embedder static --dir /tmp/bench_select_1m
//! ```
#![allow(clippy::print_stdout)]

use std::io::Write;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use aligndata_core::{Cell, Taxonomy};
use aligndata_models::embed::{Embedder, EmbedderKind, load_embedder};
use aligndata_stages::select::{
    ReferenceScorer, Rows, SearchConfig, SelectConfig, SpillWriter, Stored, decide, decide_spilled,
    knn, knn_scores, lof_scores,
};

struct Args {
    input: String,
    docs: usize,
    k: usize,
    budget: usize,
    embedder: String,
    dir: String,
    reference_sizes: Vec<usize>,
    reference_size: usize,
    brute_force_limit: usize,
    scale: bool,
    seed: u64,
}

fn main() -> Result<()> {
    let mut a = Args {
        input: "../shared/data/goemotions/train.tsv".to_string(),
        docs: 20_000,
        k: 10,
        budget: 1000,
        embedder: "hashed".to_string(),
        dir: "/tmp/bench_select".to_string(),
        reference_sizes: vec![1000, 2000, 5000],
        reference_size: SearchConfig::default().reference_size,
        brute_force_limit: SearchConfig::default().brute_force_limit,
        scale: false,
        seed: 0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--input" => a.input = value()?,
            "--docs" => a.docs = value()?.parse()?,
            "--k" => a.k = value()?.parse()?,
            "--budget" => a.budget = value()?.parse()?,
            "--embedder" => a.embedder = value()?,
            "--dir" => a.dir = value()?,
            "--reference-sizes" => {
                a.reference_sizes = value()?
                    .split(',')
                    .filter(|x| !x.is_empty())
                    .map(str::parse)
                    .collect::<Result<_, _>>()?
            }
            "--reference-size" => a.reference_size = value()?.parse()?,
            "--brute-force-limit" => a.brute_force_limit = value()?.parse()?,
            "--scale" => a.scale = true,
            "--seed" => a.seed = value()?.parse()?,
            other => bail!("unknown flag {other}"),
        }
    }
    std::fs::create_dir_all(&a.dir)?;
    let raw = std::fs::read_to_string(&a.input).with_context(|| format!("reading {}", a.input))?;
    let mut texts: Vec<&str> = Vec::new();
    let mut labels: Vec<usize> = Vec::new();
    for line in raw.lines().filter(|l| !l.trim().is_empty()) {
        let mut cols = line.split('\t');
        let text = cols.next().unwrap_or("");
        let label = cols
            .next()
            .and_then(|c| c.split(',').next())
            .and_then(|c| c.parse().ok())
            .unwrap_or(27);
        texts.push(text);
        labels.push(label);
    }
    let kind: EmbedderKind = a.embedder.parse()?;
    let model = load_embedder(kind, true, &|_| {})?;
    let taxonomy = goemotions_taxonomy()?;
    if a.scale || a.docs > texts.len() {
        return scale(&a, &texts, &labels, model.as_ref(), &taxonomy);
    }
    texts.truncate(a.docs);
    labels.truncate(a.docs);
    let n = texts.len();
    let (k, budget, dir) = (a.k, a.budget, &a.dir);
    let dim = model.dim();
    let t = Instant::now();
    let mut data: Vec<f32> = Vec::with_capacity(n * dim);
    for chunk in texts.chunks(1024) {
        for row in model.embed(chunk)? {
            data.extend_from_slice(&row);
        }
    }
    let embed_s = t.elapsed().as_secs_f64();
    write_npy(
        &format!("{dir}/embeddings.npy"),
        "<f4",
        &[n, dim],
        bytemuck_f32(&data),
    )?;
    let rows = Rows { data: &data, dim };

    let search = SearchConfig {
        k,
        brute_force_limit: usize::MAX,
        reference_size: 1,
        seed: 0,
    };
    let t = Instant::now();
    let nb = knn(rows, &search);
    let knn_search_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let knn_s = knn_scores(&nb);
    let knn_score_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let lof_s = lof_scores(&nb);
    let lof_score_s = t.elapsed().as_secs_f64();
    write_npy(&format!("{dir}/knn.npy"), "<f8", &[n], bytemuck_f64(&knn_s))?;
    write_npy(&format!("{dir}/lof.npy"), "<f8", &[n], bytemuck_f64(&lof_s))?;

    // How well a reference sample ranks the rows, against the exact scores.
    let mut agreement = Vec::new();
    for &m in &a.reference_sizes {
        if m >= n {
            continue;
        }
        let ids = aligndata_stages::select::outlier::sample_indices(n, m, 0, "outlier-reference");
        let sample = aligndata_stages::select::outlier::gather(rows, &ids);
        let mut entry = serde_json::json!({ "reference_size": m });
        for (name, method, exact) in [
            ("knn", aligndata_stages::select::OutlierMethod::Knn, &knn_s),
            ("lof", aligndata_stages::select::OutlierMethod::Lof, &lof_s),
        ] {
            let t = Instant::now();
            let scorer = ReferenceScorer::new(method, k, sample.clone(), ids.clone(), dim);
            let approx = scorer.score(rows, 0);
            let secs = t.elapsed().as_secs_f64();
            entry[name] = serde_json::json!({
                "seconds": secs,
                "spearman": spearman(exact, &approx),
                "top1pct_overlap": top_overlap(exact, &approx, 0.01),
            });
        }
        agreement.push(entry);
    }

    // Selection over the GoEmotions labels as one dimension of 28 values.
    let cells: Vec<Option<Cell>> = labels
        .iter()
        .map(|&l| (l < 28).then(|| Cell(vec![l])))
        .collect();
    let mut config = SelectConfig {
        budget,
        ..SelectConfig::default()
    };
    config.outlier.search.k = k;
    let t = Instant::now();
    let d = decide(rows, &cells, &taxonomy, &config)?;
    let select_s = t.elapsed().as_secs_f64();

    let threads = rayon::current_num_threads();
    let json = serde_json::json!({
        "docs": n, "dim": dim, "k": k, "embedder": model.name(), "threads": threads,
        "embed_s": embed_s, "knn_search_s": knn_search_s, "knn_score_s": knn_score_s,
        "lof_score_s": lof_score_s, "select_total_s": select_s, "budget": budget,
        "selected": d.summary.selected, "outliers": d.summary.outliers,
        "balance_ratio": d.summary.balance_ratio, "short_cells": d.summary.short_cells.len(),
        "selected_mean_similarity": d.summary.diversity.selected_mean_similarity,
        "random_mean_similarity": d.summary.diversity.random_mean_similarity,
        "reference_agreement": agreement,
        "peak_rss_mb": peak_rss_mb(),
    });
    std::fs::write(
        format!("{dir}/rust.json"),
        serde_json::to_string_pretty(&json)?,
    )?;
    println!("{}", serde_json::to_string_pretty(&json)?);
    Ok(())
}

fn goemotions_taxonomy() -> Result<Taxonomy> {
    let mut yaml = String::from("name: goemotions\ndimensions:\n  - id: emotion\n    values:\n");
    for i in 0..28 {
        yaml.push_str(&format!(
            "      - id: l{i}\n        description: label {i}\n"
        ));
    }
    Taxonomy::parse(&yaml, "bench.yaml").map_err(|e| anyhow::anyhow!("{e}"))
}

/// The 1M path: generated corpus, streamed, spilled, decided as `select` does at scale.
fn scale(
    a: &Args,
    texts: &[&str],
    labels: &[usize],
    model: &dyn Embedder,
    taxonomy: &Taxonomy,
) -> Result<()> {
    let dim = model.dim();
    let mut rng = Rng(a.seed | 1);
    let mut store = SpillWriter::new(dim, a.brute_force_limit, std::path::Path::new(&a.dir));
    let mut cells: Vec<Option<Cell>> = Vec::with_capacity(a.docs);
    let t = Instant::now();
    let mut batch: Vec<String> = Vec::with_capacity(1024);
    let mut made = 0;
    while made < a.docs {
        batch.clear();
        while batch.len() < 1024 && made < a.docs {
            let i = rng.below(texts.len());
            batch.push(if made < texts.len() {
                texts[made].to_string()
            } else {
                perturb(texts[i], &mut rng)
            });
            let label = labels[if made < texts.len() { made } else { i }];
            cells.push((label < 28).then(|| Cell(vec![label])));
            made += 1;
        }
        let refs: Vec<&str> = batch.iter().map(String::as_str).collect();
        for row in model.embed(&refs)? {
            store.push(&row)?;
        }
    }
    let embed_s = t.elapsed().as_secs_f64();
    let rss_after_embed = peak_rss_mb();
    let Stored::Spilled(spill) = store.finish()? else {
        bail!(
            "--docs {} is within --brute-force-limit; nothing spilled",
            a.docs
        );
    };
    let mut config = SelectConfig {
        budget: a.budget,
        seed: a.seed,
        ..SelectConfig::default()
    };
    config.outlier.search.k = a.k;
    config.outlier.search.brute_force_limit = a.brute_force_limit;
    config.outlier.search.reference_size = a.reference_size;
    let scored = std::cell::Cell::new(0.0f64);
    let t = Instant::now();
    let d = decide_spilled(&spill, &cells, taxonomy, &config, &|pass, _| {
        if pass == "score" {
            scored.set(t.elapsed().as_secs_f64());
        }
    })?;
    let decide_s = t.elapsed().as_secs_f64();
    let json = serde_json::json!({
        "docs": a.docs, "dim": dim, "k": a.k, "embedder": model.name(),
        "threads": rayon::current_num_threads(), "budget": a.budget,
        "reference_size": a.reference_size,
        "generate_and_embed_s": embed_s, "outlier_scores_s": scored.get(),
        "pick_and_summary_s": decide_s - scored.get(), "decide_s": decide_s,
        "total_s": embed_s + decide_s,
        "selected": d.summary.selected, "outliers": d.summary.outliers,
        "balance_ratio": d.summary.balance_ratio, "short_cells": d.summary.short_cells.len(),
        "selected_mean_similarity": d.summary.diversity.selected_mean_similarity,
        "random_mean_similarity": d.summary.diversity.random_mean_similarity,
        "peak_rss_after_embed_mb": rss_after_embed,
        "peak_rss_mb": peak_rss_mb(),
    });
    std::fs::write(
        format!("{}/rust_scale.json", a.dir),
        serde_json::to_string_pretty(&json)?,
    )?;
    println!("{}", serde_json::to_string_pretty(&json)?);
    Ok(())
}

/// xorshift64*, so the corpus is the same on every machine (as in `bench_dedup`).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A light edit: case and punctuation, or one word appended, replaced or deleted.
fn perturb(text: &str, rng: &mut Rng) -> String {
    const WORDS: [&str; 8] = [
        "really", "honestly", "today", "again", "lol", "though", "still", "now",
    ];
    let mut words: Vec<&str> = text.split_whitespace().collect();
    match rng.below(4) {
        0 => {
            let mut t = if rng.below(2) == 0 {
                text.to_uppercase()
            } else {
                text.to_lowercase()
            };
            t.push_str("!!");
            return t;
        }
        1 => words.push(WORDS[rng.below(WORDS.len())]),
        2 if !words.is_empty() => {
            let i = rng.below(words.len());
            words[i] = WORDS[rng.below(WORDS.len())];
        }
        _ if words.len() > 1 => {
            let i = rng.below(words.len());
            words.remove(i);
        }
        _ => words.push(WORDS[0]),
    }
    words.join(" ")
}

fn ranks(x: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut r = vec![0.0; x.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && x[order[j + 1]] == x[order[i]] {
            j += 1;
        }
        for &o in &order[i..=j] {
            r[o] = (i + j) as f64 / 2.0;
        }
        i = j + 1;
    }
    r
}

fn spearman(a: &[f64], b: &[f64]) -> f64 {
    let (ra, rb) = (ranks(a), ranks(b));
    let n = ra.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let (mut cov, mut va, mut vb) = (0.0, 0.0, 0.0);
    for (x, y) in ra.iter().zip(&rb) {
        cov += (x - ma) * (y - mb);
        va += (x - ma) * (x - ma);
        vb += (y - mb) * (y - mb);
    }
    cov / (va * vb).sqrt()
}

fn top_overlap(a: &[f64], b: &[f64], frac: f64) -> f64 {
    let m = ((a.len() as f64 * frac) as usize).max(1);
    let top = |x: &[f64]| {
        let mut o: Vec<usize> = (0..x.len()).collect();
        o.sort_by(|&i, &j| x[j].total_cmp(&x[i]));
        o.truncate(m);
        o.into_iter().collect::<std::collections::HashSet<_>>()
    };
    top(a).intersection(&top(b)).count() as f64 / m as f64
}

fn bytemuck_f32(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn bytemuck_f64(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Writes a NumPy `.npy` (format 1.0, C order).
fn write_npy(path: &str, descr: &str, shape: &[usize], bytes: Vec<u8>) -> Result<()> {
    let shape_s = match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_s}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    f.write_all(b"\x93NUMPY\x01\x00")?;
    f.write_all(&(header.len() as u16).to_le_bytes())?;
    f.write_all(header.as_bytes())?;
    f.write_all(&bytes)?;
    f.flush()?;
    Ok(())
}

fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}
