//! Embeddings per second for each embedder on the same real sentences.
//!
//! ```text
//! cargo run --release -p aligndata-models --example bench_embed -- \
//!     [--tsv /work/shared/data/goemotions/train.tsv] [--n 5000] [--threads 2] \
//!     [--only hashed,static,minilm] [--batch-tokens 512] \
//!     [--python python3 | --no-python]
//! ```
//!
//! Sentences: the first `--n` rows of the TSV, column 1 (GoEmotions comments). `--threads` sizes
//! rayon's global pool; candle's matrix products read `RAYON_NUM_THREADS` (or use every core), so
//! set that too when limiting threads below the core count. The Python reference for MiniLM is
//! `scripts/embed_reference.py bench` (a numpy forward pass: torch and sentence-transformers are
//! not installed from PyPI here, torch being gigabytes); it needs numpy, safetensors and
//! tokenizers in the chosen Python, and is skipped with a note otherwise.
#![allow(clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use aligndata_models::embed::{
    Embedder, EmbedderKind, MiniLmEmbedder, StaticEmbedder, load_embedder,
};
use aligndata_models::registry;
use anyhow::{Context, Result, bail};

struct Args {
    tsv: PathBuf,
    n: usize,
    threads: usize,
    only: Vec<EmbedderKind>,
    batch_tokens: Option<usize>,
    python: Option<String>,
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        tsv: PathBuf::from("/work/shared/data/goemotions/train.tsv"),
        n: 5000,
        threads: 2,
        only: EmbedderKind::ALL.to_vec(),
        batch_tokens: None,
        python: Some("python3".into()),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--tsv" => a.tsv = PathBuf::from(val()?),
            "--n" => a.n = val()?.parse()?,
            "--threads" => a.threads = val()?.parse()?,
            "--only" => {
                a.only = val()?.split(',').map(str::parse).collect::<Result<_>>()?;
            }
            "--batch-tokens" => a.batch_tokens = Some(val()?.parse()?),
            "--python" => a.python = Some(val()?),
            "--no-python" => a.python = None,
            other => bail!("unknown flag {other}; see the header of examples/bench_embed.rs"),
        }
    }
    Ok(a)
}

fn read_sentences(tsv: &Path, n: usize) -> Result<Vec<String>> {
    let text =
        std::fs::read_to_string(tsv).with_context(|| format!("reading {}", tsv.display()))?;
    Ok(text
        .lines()
        .filter_map(|l| l.split('\t').next())
        .filter(|s| !s.is_empty())
        .take(n)
        .map(str::to_string)
        .collect())
}

/// Best of `reps` timed runs after one warm-up on a slice; returns sentences per second.
fn time_it(e: &dyn Embedder, texts: &[&str], reps: usize) -> Result<f64> {
    e.embed(&texts[..texts.len().min(64)])?;
    let mut best = f64::MAX;
    for _ in 0..reps {
        let t = Instant::now();
        let rows = e.embed(texts)?;
        let dt = t.elapsed().as_secs_f64();
        if rows.len() != texts.len() || rows.iter().any(|r| r.len() != e.dim()) {
            bail!("{} returned the wrong shape", e.name());
        }
        best = best.min(dt);
    }
    Ok(texts.len() as f64 / best)
}

fn load_avg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn main() -> Result<()> {
    let args = parse_args()?;
    rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build_global()?;
    let sentences = read_sentences(&args.tsv, args.n)?;
    let texts: Vec<&str> = sentences.iter().map(String::as_str).collect();
    let chars: usize = texts.iter().map(|t| t.len()).sum();
    println!(
        "{} sentences ({:.0} bytes avg) from {}, {} rayon threads, RAYON_NUM_THREADS={}, load avg {}",
        texts.len(),
        chars as f64 / texts.len().max(1) as f64,
        args.tsv.display(),
        args.threads,
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "unset".into()),
        load_avg()
    );
    let progress = |m: &str| println!("  {m}");
    let mut minilm_rate = None;
    for kind in &args.only {
        let t = Instant::now();
        let rate = if *kind == EmbedderKind::MiniLm {
            let dir = registry::ensure(registry_name(*kind), false, &progress)?;
            let mut e = MiniLmEmbedder::load(&dir)?;
            if let Some(b) = args.batch_tokens {
                e.batch_tokens = b;
            }
            let load = t.elapsed().as_secs_f64();
            let r = time_it(&e, &texts, 1)?;
            println!(
                "{kind:>7} ({}, dim {}, {} tokens per batch): {r:>10.0} sentences/s  (load {load:.2}s)",
                e.name(),
                e.dim(),
                e.batch_tokens
            );
            minilm_rate = Some(r);
            r
        } else {
            if *kind == EmbedderKind::Static {
                // The cached piece-wise tokenization must equal the full tokenizer's.
                let dir = registry::ensure(registry_name(*kind), false, &progress)?;
                let s = StaticEmbedder::load(&dir)?;
                let mismatches = texts
                    .iter()
                    .filter(|t| s.token_ids(t).ok() != s.slow_ids(t).ok())
                    .count();
                println!(
                    "  static fast path {}: {mismatches} of {} texts tokenize differently",
                    if s.uses_fast_path() { "on" } else { "off" },
                    texts.len()
                );
            }
            let e = load_embedder(*kind, false, &progress)?;
            let load = t.elapsed().as_secs_f64();
            let r = time_it(e.as_ref(), &texts, 5)?;
            println!(
                "{kind:>7} ({}, dim {}): {r:>10.0} sentences/s  (load {load:.2}s)",
                e.name(),
                e.dim()
            );
            r
        };
        let _ = rate;
    }
    if let (Some(rust), Some(python)) = (minilm_rate, &args.python) {
        let dir = registry::ensure("minilm-l6-v2", true, &progress)?;
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/embed_reference.py");
        println!(
            "python reference (numpy forward pass, {} BLAS threads), load avg {}",
            args.threads,
            load_avg()
        );
        let out = Command::new(python)
            .arg(&script)
            .arg("bench")
            .arg(&dir)
            .arg(&args.tsv)
            .arg(texts.len().to_string())
            .arg(args.threads.to_string())
            .output()
            .with_context(|| format!("running {python} {}", script.display()))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let parsed = stdout
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .and_then(|v| v.get("per_second").and_then(|p| p.as_f64()));
        match parsed {
            Some(py) if out.status.success() => println!(
                "  python numpy MiniLM: {py:.1} sentences/s; Rust/candle is {:.2}x that",
                rust / py
            ),
            _ => println!(
                "  python reference skipped: {}\n  hint: pip install numpy safetensors tokenizers, or pass --python PATH",
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or("no output")
            ),
        }
    }
    Ok(())
}

fn registry_name(kind: EmbedderKind) -> &'static str {
    kind.model_name().unwrap_or("")
}
