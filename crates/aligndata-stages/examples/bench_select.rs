//! Outlier scoring and selection benchmark, side by side with scikit-learn
//! (`scripts/bench_select_sklearn.py`).
//!
//! Reads texts from a TSV (default: GoEmotions train comments, first label as the cell), embeds
//! them, writes the embeddings to `--dir/embeddings.npy` (float32, n × dim) so scikit-learn sees
//! exactly the same vectors, times exact k-NN, the k-NN score and LOF, writes both scores
//! (`knn.npy`, `lof.npy`, float64), then times a balanced selection of `--budget` over the
//! GoEmotions labels as cells and writes the figures to `--dir/rust.json`.
//!
//! ```text
//! cargo run --release -p aligndata-stages --example bench_select -- --docs 20000 --dir /tmp/bench_select
//! python3 scripts/bench_select_sklearn.py --dir /tmp/bench_select
//! ```
#![allow(clippy::print_stdout)]

use std::io::Write;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use aligndata_core::{Cell, Taxonomy};
use aligndata_models::embed::{EmbedderKind, load_embedder};
use aligndata_stages::select::{
    Rows, SearchConfig, SelectConfig, decide, knn, knn_scores, lof_scores,
};

fn main() -> Result<()> {
    let mut input = "../shared/data/goemotions/train.tsv".to_string();
    let mut docs = 20_000usize;
    let mut k = 10usize;
    let mut budget = 1000usize;
    let mut embedder = "hashed".to_string();
    let mut dir = "/tmp/bench_select".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--input" => input = value()?,
            "--docs" => docs = value()?.parse()?,
            "--k" => k = value()?.parse()?,
            "--budget" => budget = value()?.parse()?,
            "--embedder" => embedder = value()?,
            "--dir" => dir = value()?,
            other => bail!("unknown flag {other}"),
        }
    }
    std::fs::create_dir_all(&dir)?;
    let raw = std::fs::read_to_string(&input).with_context(|| format!("reading {input}"))?;
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
        if texts.len() == docs {
            break;
        }
    }
    let n = texts.len();
    let kind: EmbedderKind = embedder.parse()?;
    let model = load_embedder(kind, true, &|_| {})?;
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

    // Selection over the GoEmotions labels as one dimension of 28 values.
    let mut yaml = String::from("name: goemotions\ndimensions:\n  - id: emotion\n    values:\n");
    for i in 0..28 {
        yaml.push_str(&format!(
            "      - id: l{i}\n        description: label {i}\n"
        ));
    }
    let taxonomy = Taxonomy::parse(&yaml, "bench.yaml").map_err(|e| anyhow::anyhow!("{e}"))?;
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
        "peak_rss_mb": peak_rss_mb(),
    });
    std::fs::write(
        format!("{dir}/rust.json"),
        serde_json::to_string_pretty(&json)?,
    )?;
    println!("{}", serde_json::to_string_pretty(&json)?);
    Ok(())
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
