//! Throughput of cleaning and PII scrubbing on real text, single thread.
//!
//! `cargo run --release -p aligndata-stages --example bench_clean [-- --passes N --show-pii N]`
//!
//! Reads `../shared/data/goemotions/train.tsv` (column 1) and the `questionText` column of
//! `../shared/data/counsel-chat/counsel_chat.csv` (relative to the workspace root, or
//! `$ALIGNDATA_SHARED_DATA`), and times, per corpus: normalisation alone, `clean` (normalise +
//! rules + language), `pii::scrub` alone, and clean + scrub as ingest runs them. Prints MB/s
//! (input bytes) and rows/s, then what was flagged and replaced, so the rates can be read
//! against what the rules actually did. `--show-pii N` prints N replaced spans in context for
//! a precision check by eye.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::time::Instant;

use aligndata_core::{Record, SourceKind};
use aligndata_stages::clean::{self, CleanConfig, CleanCounts};
use aligndata_stages::pii::{self, PiiCounts};

fn data_dir() -> PathBuf {
    match std::env::var_os("ALIGNDATA_SHARED_DATA") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"),
    }
}

fn goemotions(dir: &std::path::Path) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(dir.join("goemotions/train.tsv")).ok()?;
    Some(
        text.lines()
            .filter_map(|l| l.split('\t').next())
            .map(str::to_string)
            .collect(),
    )
}

fn counsel(dir: &std::path::Path) -> Option<Vec<String>> {
    let mut reader = csv::Reader::from_path(dir.join("counsel-chat/counsel_chat.csv")).ok()?;
    let col = reader
        .headers()
        .ok()?
        .iter()
        .position(|h| h == "questionText")?;
    Some(
        reader
            .records()
            .filter_map(|r| r.ok())
            .filter_map(|r| r.get(col).map(str::to_string))
            .collect(),
    )
}

fn rate(label: &str, bytes: usize, rows: usize, secs: f64) {
    println!(
        "  {label:<22} {:>8.1} MB/s {:>10.0} rows/s  ({:.3} s)",
        bytes as f64 / secs / 1e6,
        rows as f64 / secs,
        secs
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let passes = arg("--passes", 5).max(1);
    let show = arg("--show-pii", 0);
    let dir = data_dir();
    let config = CleanConfig::default();
    let mut any = false;
    for (name, rows) in [
        ("goemotions/train.tsv", goemotions(&dir)),
        ("counsel_chat.csv questionText", counsel(&dir)),
    ] {
        let Some(rows) = rows else {
            println!("{name}: not found under {} — skipped", dir.display());
            continue;
        };
        any = true;
        let bytes: usize = rows.iter().map(String::len).sum::<usize>() * passes;
        let n = rows.len() * passes;
        println!(
            "{name}: {} rows, {:.2} MB per pass, {passes} passes",
            rows.len(),
            bytes as f64 / passes as f64 / 1e6
        );

        let t = Instant::now();
        let mut sink = 0usize;
        for _ in 0..passes {
            for r in &rows {
                sink += clean::normalize(r).text.len();
            }
        }
        rate("normalize", bytes, n, t.elapsed().as_secs_f64());

        let mut counts = CleanCounts::default();
        let mut secs = 0.0;
        for _ in 0..passes {
            let mut records: Vec<Record> = rows
                .iter()
                .map(|r| Record::new(SourceKind::Real, r.clone()))
                .collect();
            counts = CleanCounts::default();
            let t = Instant::now();
            for rec in &mut records {
                clean::clean(rec, &config, &mut counts);
            }
            secs += t.elapsed().as_secs_f64();
        }
        rate("clean (+language)", bytes, n, secs);

        let no_lang = CleanConfig {
            languages: Vec::new(),
            ..config.clone()
        };
        let mut secs = 0.0;
        for _ in 0..passes {
            let mut records: Vec<Record> = rows
                .iter()
                .map(|r| Record::new(SourceKind::Real, r.clone()))
                .collect();
            let mut c = CleanCounts::default();
            let t = Instant::now();
            for rec in &mut records {
                clean::clean(rec, &no_lang, &mut c);
            }
            secs += t.elapsed().as_secs_f64();
        }
        rate("clean (no language)", bytes, n, secs);

        let t = Instant::now();
        let mut pii_counts = PiiCounts::default();
        for _ in 0..passes {
            pii_counts = PiiCounts::default();
            for r in &rows {
                let (s, c) = pii::scrub(r);
                sink += s.len();
                pii_counts.merge(&c);
            }
        }
        rate("pii::scrub", bytes, n, t.elapsed().as_secs_f64());

        let mut secs = 0.0;
        for _ in 0..passes {
            let mut records: Vec<Record> = rows
                .iter()
                .map(|r| Record::new(SourceKind::Real, r.clone()))
                .collect();
            let mut c = CleanCounts::default();
            let t = Instant::now();
            for rec in &mut records {
                clean::clean(rec, &config, &mut c);
                let _ = pii::scrub_record(rec);
            }
            secs += t.elapsed().as_secs_f64();
        }
        rate("clean + scrub", bytes, n, secs);

        println!("  flags: {:?}", counts.flags);
        println!("  languages: {:?}", counts.languages);
        println!(
            "  changed by normalisation: {}, markup stripped: {}",
            counts.changed, counts.markup_stripped
        );
        println!("  pii: {}", pii_counts.describe());
        if show > 0 {
            let mut shown = 0;
            for r in &rows {
                for span in pii::find(r) {
                    if shown >= show {
                        break;
                    }
                    let from = r[..span.start]
                        .char_indices()
                        .rev()
                        .nth(30)
                        .map_or(0, |(i, _)| i);
                    let to = r[span.end..]
                        .char_indices()
                        .nth(30)
                        .map_or(r.len(), |(i, _)| span.end + i);
                    println!(
                        "    {:<9} {:?} in …{}…",
                        span.kind.placeholder(),
                        &r[span.start..span.end],
                        r[from..to].replace('\n', " ")
                    );
                    shown += 1;
                }
            }
        }
        if sink == 0 {
            println!("(nothing)");
        }
    }
    if !any {
        println!(
            "no data found; set ALIGNDATA_SHARED_DATA to the folder holding goemotions/ and counsel-chat/"
        );
    }
}
