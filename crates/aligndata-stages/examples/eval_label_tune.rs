//! A small sweep of the trained labeller's settings on GoEmotions (train → dev), over the
//! embeddings `eval_label` cached: which L2, epochs, step size and positive weighting to ship.
//!
//! `cargo run --release -p aligndata-stages --example eval_label_tune` (after `eval_label`).

#![allow(clippy::print_stdout)]

use std::path::Path;

use anyhow::Result;

use aligndata_stages::label::{LinearClassifier, TrainConfig, f1_scores};

fn read_floats(path: &Path, dim: usize) -> Option<Vec<Vec<f32>>> {
    let bytes = std::fs::read(path).ok()?;
    let floats: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Some(floats.chunks(dim).map(<[f32]>::to_vec).collect())
}

fn labels(path: &Path) -> Result<Vec<Vec<usize>>> {
    Ok(std::fs::read_to_string(path)?
        .lines()
        .map(|l| {
            l.split('\t')
                .nth(1)
                .unwrap_or("")
                .split(',')
                .filter_map(|s| s.trim().parse().ok())
                .collect()
        })
        .collect())
}

fn main() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let data = root.join("../shared/data/goemotions");
    let cache = root.join("target/eval_label_cache");
    let (ytr, ydv) = (
        labels(&data.join("train.tsv"))?,
        labels(&data.join("dev.tsv"))?,
    );
    let name = std::env::var("TUNE_EMBEDDER").unwrap_or_else(|_| "wordllama-256".into());
    let dim: usize = std::env::var("TUNE_DIM")
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(256);
    let (Some(xtr), Some(xdv)) = (
        read_floats(&cache.join(format!("{name}-train-{}.f32", ytr.len())), dim),
        read_floats(&cache.join(format!("{name}-dev-{}.f32", ydv.len())), dim),
    ) else {
        println!("SKIP: run eval_label first (no cached {name} embeddings)");
        return Ok(());
    };
    let names: Vec<String> = (0..28).map(|i| i.to_string()).collect();
    let base = TrainConfig::default();
    let grid = [
        base.clone(),
        TrainConfig {
            balance: false,
            ..base.clone()
        },
        TrainConfig {
            l2: 1e-3,
            ..base.clone()
        },
        TrainConfig {
            l2: 1e-5,
            ..base.clone()
        },
        TrainConfig {
            epochs: 30,
            learning_rate: 0.003,
            ..base.clone()
        },
        TrainConfig {
            epochs: 4,
            ..base.clone()
        },
        TrainConfig {
            holdout: 0.25,
            ..base.clone()
        },
    ];
    println!("| {name} config | macro-F1 dev |");
    println!("|---|---:|");
    for c in grid {
        let m = LinearClassifier::train(names.clone(), &xtr, &ytr, &c)?;
        let p: Vec<Vec<usize>> = xdv
            .iter()
            .map(|x| m.predict(x).into_iter().map(|p| p.0).collect())
            .collect();
        let (_, f1) = f1_scores(28, &p, &ydv);
        println!(
            "| epochs {} lr {} l2 {} balance {} holdout {} | {f1:.3} |",
            c.epochs, c.learning_rate, c.l2, c.balance, c.holdout
        );
    }
    Ok(())
}
