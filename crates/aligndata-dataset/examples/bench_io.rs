//! Record IO benchmark: write and read JSONL, JSONL + zstd and Parquet, and time the round trip
//! JSONL → dataset → Parquet → JSONL.
//!
//! ```text
//! cargo run --release -p aligndata-dataset --example bench_io -- --records 1000000 [--dir DIR]
//! ```
//!
//! Peak memory is the process's VmHWM, reset before each phase through /proc/self/clear_refs.
#![allow(clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use aligndata_core::{Flag, Label, Record, Score, SourceKind};
use aligndata_dataset::{
    Dataset, DatasetWriter, Format, ManifestFields, RecordWriter, WriterOptions, read_records,
    write_records,
};

const WORDS: &[&str] = &[
    "I",
    "feel",
    "like",
    "everyone",
    "at",
    "work",
    "thinks",
    "I'm",
    "not",
    "good",
    "enough",
    "and",
    "my",
    "presentation",
    "tomorrow",
    "is",
    "making",
    "me",
    "anxious",
    "because",
    "last",
    "time",
    "froze",
    "in",
    "front",
    "of",
    "the",
    "whole",
    "team",
    "sometimes",
    "wonder",
    "if",
    "should",
    "even",
    "try",
    "anymore",
    "friends",
    "say",
    "it's",
    "fine",
    "but",
    "can't",
    "stop",
    "thinking",
    "about",
    "every",
    "mistake",
    "made",
    "exam",
    "results",
    "came",
    "back",
    "parents",
    "are",
    "disappointed",
    "really",
    "tired",
    "of",
    "pretending",
    "okay",
    "when",
    "inside",
    "worthless",
    "maybe",
    "just",
    "need",
    "someone",
    "to",
    "talk",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: deterministic and dependency-free.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn make_record(rng: &mut Rng, idx: u64) -> Record {
    let target = 100 + rng.below(301) as usize;
    let mut text = String::with_capacity(target + 16);
    while text.len() < target {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
    }
    text.push_str(&format!(" #{idx}"));
    let source = match idx % 3 {
        0 => SourceKind::Synthetic,
        _ => SourceKind::Real,
    };
    let mut record = Record::new(source, text);
    record.provenance.file = Some("data/raw/posts.jsonl".into());
    record.provenance.line = Some(idx + 1);
    record.provenance.original_id = Some(format!("t3_{idx:x}"));
    if source == SourceKind::Synthetic {
        record.provenance.model = Some("SmolLM2-135M-Instruct".into());
        record.provenance.seed = Some(rng.next());
        record.intended.insert("theme".into(), "self-doubt".into());
        record.intended.insert("situation".into(), "work".into());
    }
    for dimension in ["theme", "emotion", "situation"]
        .iter()
        .take(2 + rng.below(2) as usize)
    {
        record.labels.push(Label {
            dimension: (*dimension).into(),
            value: WORDS[rng.below(WORDS.len() as u64) as usize].into(),
            confidence: rng.unit(),
            method: "prototype".into(),
        });
    }
    record.scores.push(Score {
        name: "quality".into(),
        value: rng.unit(),
        reason: "length and language ok".into(),
    });
    record.scores.push(Score {
        name: "novelty".into(),
        value: rng.unit(),
        reason: String::new(),
    });
    if rng.below(10) == 0 {
        record.flags.push(Flag {
            kind: "duplicate".into(),
            reason: "near duplicate".into(),
            other_id: Some(record.id.clone()),
        });
    }
    record
}

struct Phase {
    name: &'static str,
    secs: f64,
    bytes: u64,
    records: u64,
    peak_mb: f64,
    cpu_secs: f64,
}

/// User + system CPU seconds of this process so far (all threads), from /proc/self/stat.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    // Clock ticks are 100 per second on Linux in practice.
    (ticks(11) + ticks(12)) / 100.0
}

fn reset_peak() {
    // "5" resets VmHWM to the current RSS (Linux 4.0+); best effort elsewhere.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn timed(name: &'static str, phases: &mut Vec<Phase>, f: impl FnOnce() -> (u64, u64)) {
    reset_peak();
    let cpu_start = cpu_secs();
    let start = Instant::now();
    let (bytes, records) = f();
    let secs = start.elapsed().as_secs_f64();
    phases.push(Phase {
        name,
        secs,
        bytes,
        records,
        peak_mb: peak_mb(),
        cpu_secs: cpu_secs() - cpu_start,
    });
    let p = phases.last().unwrap();
    println!(
        "{:<32} {:>6.2} s (cpu {:>5.2} s) {:>7.1} MB {:>6.0} MB/s {:>8.0} rec/s  peak RSS {:>4.0} MB",
        p.name,
        p.secs,
        p.cpu_secs,
        p.bytes as f64 / 1e6,
        p.bytes as f64 / 1e6 / p.secs,
        p.records as f64 / p.secs,
        p.peak_mb
    );
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn read_all(path: &Path) -> u64 {
    let mut n = 0u64;
    for record in read_records(path).expect("open") {
        let record = record.expect("record");
        n += (!record.text.is_empty()) as u64;
    }
    n
}

fn sha256_file(path: &Path) -> String {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    let mut file = std::fs::File::open(path).expect("open");
    std::io::copy(&mut file, &mut hasher).expect("read");
    hex::encode(hasher.finalize())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut n_records: u64 = 1_000_000;
    let mut dir: Option<PathBuf> = None;
    let mut i = 1;
    while i < args.len() {
        match args[i].as_str() {
            "--records" => {
                n_records = args
                    .get(i + 1)
                    .and_then(|v| v.parse().ok())
                    .expect("--records N");
                i += 1;
            }
            "--dir" => {
                dir = args.get(i + 1).map(PathBuf::from);
                i += 1;
            }
            other => panic!("unknown argument {other}; usage: bench_io [--records N] [--dir DIR]"),
        }
        i += 1;
    }
    let tmp = tempfile::tempdir_in(dir.as_deref().unwrap_or(Path::new("."))).expect("temp dir");
    let root = tmp.path();
    println!(
        "bench_io: {n_records} records in {}, {} threads",
        root.display(),
        rayon::current_num_threads()
    );
    let jsonl = root.join("records.jsonl");
    let zst = root.join("records.jsonl.zst");
    let parquet = root.join("records.parquet");
    let mut phases = Vec::new();

    timed("generate only", &mut phases, || {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut bytes = 0;
        for idx in 0..n_records {
            bytes += make_record(&mut rng, idx).text.len() as u64;
        }
        std::hint::black_box(bytes);
        (0, n_records)
    });
    timed("generate + write jsonl", &mut phases, || {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let summary = write_records(
            &jsonl,
            Format::Jsonl,
            (0..n_records).map(|idx| make_record(&mut rng, idx)),
        )
        .expect("write jsonl");
        (summary.bytes, summary.records)
    });
    let jsonl_bytes = file_size(&jsonl);
    timed("read jsonl", &mut phases, || {
        (jsonl_bytes, read_all(&jsonl))
    });
    for (name_w, name_r, path, format) in [
        (
            "jsonl -> jsonl.zst",
            "read jsonl.zst",
            &zst,
            Format::JsonlZst,
        ),
        (
            "jsonl -> parquet",
            "read parquet",
            &parquet,
            Format::Parquet,
        ),
    ] {
        timed(name_w, &mut phases, || {
            let mut writer = RecordWriter::create(path, format).expect("create");
            for record in read_records(&jsonl).expect("open") {
                writer.write(&record.expect("record")).expect("write");
            }
            let summary = writer.finish().expect("finish");
            (summary.bytes, summary.records)
        });
        let size = file_size(path);
        timed(name_r, &mut phases, || (size, read_all(path)));
    }

    // The round trip a pipeline does: raw JSONL → dataset → Parquet export → JSONL, lossless.
    let ds = root.join("dataset");
    let out_parquet = root.join("export.parquet");
    let out_jsonl = root.join("back.jsonl");
    let start = Instant::now();
    timed("round trip: jsonl -> dataset", &mut phases, || {
        let mut writer =
            DatasetWriter::create(&ds, WriterOptions::default()).expect("create dataset");
        for record in read_records(&jsonl).expect("open") {
            writer.push(&record.expect("record")).expect("push");
        }
        let manifest = writer
            .finish(ManifestFields {
                stage: "bench".into(),
                ..Default::default()
            })
            .expect("finish");
        (
            manifest.shards.iter().map(|s| s.bytes).sum(),
            manifest.counts.total,
        )
    });
    timed("round trip: dataset -> parquet", &mut phases, || {
        let dataset = Dataset::open(&ds).expect("open dataset");
        let mut writer = RecordWriter::create(&out_parquet, Format::Parquet).expect("create");
        for record in dataset.records() {
            writer.write(&record.expect("record")).expect("write");
        }
        let summary = writer.finish().expect("finish");
        (summary.bytes, summary.records)
    });
    timed("round trip: parquet -> jsonl", &mut phases, || {
        let mut writer = RecordWriter::create(&out_jsonl, Format::Jsonl).expect("create");
        for record in read_records(&out_parquet).expect("open") {
            writer.write(&record.expect("record")).expect("write");
        }
        let summary = writer.finish().expect("finish");
        (summary.bytes, summary.records)
    });
    let round_trip = start.elapsed().as_secs_f64();
    let same = sha256_file(&jsonl) == sha256_file(&out_jsonl);
    let peak = phases.iter().map(|p| p.peak_mb).fold(0.0, f64::max);
    println!(
        "round trip total {round_trip:.2} s for {n_records} records; output JSONL identical to input: {same}; \
         sizes: jsonl {:.1} MB, jsonl.zst {:.1} MB, parquet {:.1} MB; max phase peak RSS {peak:.0} MB",
        jsonl_bytes as f64 / 1e6,
        file_size(&zst) as f64 / 1e6,
        file_size(&parquet) as f64 / 1e6,
    );
    assert!(same, "round trip changed the bytes");
}
