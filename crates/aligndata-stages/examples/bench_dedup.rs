//! MinHash near-dedup benchmark, side by side with datasketch (`scripts/bench_dedup_datasketch.py`).
//!
//! Builds a corpus from a TSV column (default: GoEmotions train comments), replicated with light
//! perturbations (case/punctuation changes, one word appended, replaced or deleted) up to
//! `--docs`, writes it one document per line to `--corpus` so that datasketch reads exactly the
//! same text, then times near dedup (exact matcher off, so MinHash does all the work) and
//! reports docs/s, docs/s per thread, peak memory (VmHWM) and the duplicate set: the documents
//! that have a verified earlier match, written to `--dups` (one index per line).
//!
//! ```text
//! cargo run --release -p aligndata-stages --example bench_dedup -- \
//!     --docs 200000 --shingle word:5 --corpus /tmp/corpus.txt --dups /tmp/rust_dups.txt --json /tmp/rust.json
//! python3 scripts/bench_dedup_datasketch.py --corpus /tmp/corpus.txt --shingle word:5 \
//!     --rust-json /tmp/rust.json --rust-dups /tmp/rust_dups.txt
//! ```
#![allow(clippy::print_stdout)]

use std::io::Write;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use aligndata_stages::dedup::{DedupConfig, NearConfig, Shingle, dedup_texts};

struct Args {
    input: String,
    column: usize,
    docs: usize,
    shingle: Shingle,
    num_perm: usize,
    threshold: f64,
    corpus: Option<String>,
    dups: Option<String>,
    json: Option<String>,
    seed: u64,
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        input: "../shared/data/goemotions/train.tsv".into(),
        column: 1,
        docs: 200_000,
        shingle: Shingle::Word(5),
        num_perm: 128,
        threshold: 0.8,
        corpus: None,
        dups: None,
        json: None,
        seed: 42,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--input" => a.input = value()?,
            "--column" => a.column = value()?.parse()?,
            "--docs" => a.docs = value()?.parse()?,
            "--shingle" => a.shingle = value()?.parse().map_err(anyhow::Error::msg)?,
            "--num-perm" => a.num_perm = value()?.parse()?,
            "--threshold" => a.threshold = value()?.parse()?,
            "--corpus" => a.corpus = Some(value()?),
            "--dups" => a.dups = Some(value()?),
            "--json" => a.json = Some(value()?),
            "--seed" => a.seed = value()?.parse()?,
            other => bail!("unknown flag {other}"),
        }
    }
    Ok(a)
}

/// xorshift64*: a tiny deterministic generator, so the corpus is the same on every machine.
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

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let raw =
        std::fs::read_to_string(&args.input).with_context(|| format!("read {}", args.input))?;
    let base: Vec<String> = raw
        .lines()
        .filter_map(|l| l.split('\t').nth(args.column - 1))
        .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|t| !t.is_empty())
        .collect();
    if base.is_empty() {
        bail!("no text in column {} of {}", args.column, args.input);
    }
    let mut rng = Rng(args.seed | 1);
    let mut docs: Vec<String> = base.iter().take(args.docs).cloned().collect();
    while docs.len() < args.docs {
        let src = &base[rng.below(base.len())];
        docs.push(perturb(src, &mut rng));
    }
    // Shuffle so copies are not all after their originals.
    for i in (1..docs.len()).rev() {
        let j = rng.below(i + 1);
        docs.swap(i, j);
    }
    if let Some(path) = &args.corpus {
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        for d in &docs {
            writeln!(out, "{d}")?;
        }
        out.flush()?;
    }
    drop(raw);
    let rss_before = peak_rss_mb();

    let config = DedupConfig {
        exact: false,
        near: Some(NearConfig {
            shingle: args.shingle,
            num_perm: args.num_perm,
            bands: None,
            threshold: args.threshold,
            seed: 1,
        }),
        semantic: None,
        ..DedupConfig::default()
    };
    let refs: Vec<&str> = docs.iter().map(String::as_str).collect();
    let threads = rayon::current_num_threads();
    let start = Instant::now();
    let cpu_start = cpu_seconds();
    let decisions = dedup_texts(&refs, &config, None)?;
    let secs = start.elapsed().as_secs_f64();
    // CPU time (user + system) of the dedup alone: on a shared machine, docs per CPU-second is
    // the per-core rate that does not depend on what else the cores were doing.
    let cpu = cpu_seconds().zip(cpu_start).map(|(b, a)| b - a);
    let dups: Vec<u32> = decisions.duplicates.iter().map(|d| d.record).collect();
    let (bands, rows) = decisions.bands.unwrap_or((0, 0));
    let docs_per_s = docs.len() as f64 / secs;
    let result = serde_json::json!({
        "tool": "aligndata",
        "docs": docs.len(),
        "shingle": args.shingle.to_string(),
        "num_perm": args.num_perm,
        "threshold": args.threshold,
        "bands": bands,
        "rows": rows,
        "threads": threads,
        "seconds": secs,
        "docs_per_s": docs_per_s,
        "docs_per_s_per_thread": docs_per_s / threads as f64,
        "cpu_seconds": cpu,
        "docs_per_cpu_s": cpu.map(|c| docs.len() as f64 / c),
        "duplicates": dups.len(),
        "peak_rss_mb": peak_rss_mb(),
        "rss_before_dedup_mb": rss_before,
    });
    println!("{result}");
    if let Some(path) = &args.json {
        std::fs::write(path, result.to_string())?;
    }
    if let Some(path) = &args.dups {
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        for d in &dups {
            writeln!(out, "{d}")?;
        }
        out.flush()?;
    }
    Ok(())
}

/// User + system CPU seconds of this process so far, from `/proc/self/stat` (Linux; `None`
/// elsewhere). Clock ticks are 100 Hz on every Linux this runs on.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}
