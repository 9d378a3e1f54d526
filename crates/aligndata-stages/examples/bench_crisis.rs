//! Throughput of crisis detection: the rules alone, and the rules with the shipped classifier
//! (MiniLM fine-tuned by two LoRA adapters, so two MiniLM passes over each input and each of
//! its sentences), against one plain MiniLM pass over the same texts for scale.
//!
//! `RAYON_NUM_THREADS=2 cargo run --release -p aligndata-stages --example bench_crisis [-- --n N]`
//!
//! Reads the first N (default 1,000) distinct `questionText` cells of
//! `../shared/data/counsel-chat/counsel_chat.csv` (relative to the workspace root, or
//! `$ALIGNDATA_SHARED_DATA`): real questions to therapists, a few sentences each. Needs MiniLM
//! installed (`aligndata models install minilm-l6-v2`). Prints inputs/s and how many were
//! flagged. `--labels PATH` scores a labelled JSONL (`text`, `crisis`) instead and adds
//! precision and recall; `--base-model PATH` adds a crisis model trained on plain MiniLM (an
//! earlier shipped `crisis-minilm.json`); `--show K` prints K inputs the classifier alone
//! flagged.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::time::Instant;

use aligndata_models::embed::{EmbedderKind, load_embedder};
use aligndata_stages::safety::Detection;
use aligndata_stages::safety::{ClassifierCheck, Detector, crisis_embedder};

fn data_dir() -> PathBuf {
    match std::env::var_os("ALIGNDATA_SHARED_DATA") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"),
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args
        .iter()
        .position(|a| a == "--n")
        .and_then(|i| args.get(i + 1))
        .map_or(Ok(1000), |v| v.parse())?;
    let path = data_dir().join("counsel-chat/counsel_chat.csv");
    let mut reader =
        csv::Reader::from_path(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let col = reader
        .headers()?
        .iter()
        .position(|h| h == "questionText")
        .ok_or_else(|| anyhow::anyhow!("{}: no questionText column", path.display()))?;
    let texts: Vec<String> = reader
        .records()
        .filter_map(Result::ok)
        .filter_map(|r| r.get(col).map(str::to_string))
        .filter(|t| !t.trim().is_empty())
        .collect();
    // The file repeats each question once per answer: keep the first of each.
    let mut seen = std::collections::HashSet::new();
    let texts: Vec<String> = texts
        .into_iter()
        .filter(|t| seen.insert(t.clone()))
        .take(n)
        .collect();
    // `--labels PATH`: JSONL of {"text", "crisis"} to score instead (precision and recall).
    let labels_path = args
        .iter()
        .position(|a| a == "--labels")
        .and_then(|i| args.get(i + 1));
    let (texts, truth): (Vec<String>, Option<Vec<bool>>) = match labels_path {
        Some(path) => {
            let mut t = Vec::new();
            let mut y = Vec::new();
            for (i, line) in std::fs::read_to_string(path)?.lines().enumerate() {
                let v: serde_json::Value = serde_json::from_str(line)
                    .map_err(|e| anyhow::anyhow!("{path}:{}: {e}", i + 1))?;
                let (Some(text), Some(crisis)) = (v["text"].as_str(), v["crisis"].as_bool()) else {
                    anyhow::bail!("{path}:{}: expected \"text\" and \"crisis\"", i + 1);
                };
                t.push(text.to_string());
                y.push(crisis);
            }
            (t, Some(y))
        }
        None => (texts, None),
    };
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let figures = |dets: &[Detection]| -> String {
        let Some(truth) = &truth else {
            return String::new();
        };
        let (mut tp, mut fp, mut fneg) = (0u32, 0u32, 0u32);
        for (d, y) in dets.iter().zip(truth) {
            match (d.crisis, *y) {
                (true, true) => tp += 1,
                (true, false) => fp += 1,
                (false, true) => fneg += 1,
                _ => {}
            }
        }
        format!(
            "; precision {:.3}, recall {:.3} (tp {tp}, fp {fp}, fn {fneg})",
            f64::from(tp) / f64::from((tp + fp).max(1)),
            f64::from(tp) / f64::from((tp + fneg).max(1))
        )
    };
    let bytes: usize = refs.iter().map(|t| t.len()).sum();
    println!(
        "{} texts, {:.0} bytes on average",
        refs.len(),
        bytes as f64 / refs.len().max(1) as f64
    );

    let rules = Detector::default();
    let t = Instant::now();
    let dets = rules.detect_batch(&refs)?;
    let s = t.elapsed().as_secs_f64();
    println!(
        "rules only:                        {:>8.0} inputs/s, {} flagged{}",
        refs.len() as f64 / s,
        dets.iter().filter(|d| d.crisis).count(),
        figures(&dets)
    );

    let base = load_embedder(EmbedderKind::MiniLm, true, &|_| {})?;
    let t = Instant::now();
    base.embed(&refs)?;
    let s = t.elapsed().as_secs_f64();
    println!(
        "one MiniLM pass (whole texts):     {:>8.1} inputs/s",
        refs.len() as f64 / s
    );

    // `--base-model PATH`: a crisis model JSON trained on plain MiniLM (an earlier shipped one),
    // for comparison on the same texts.
    if let Some(path) = args
        .iter()
        .position(|a| a == "--base-model")
        .and_then(|i| args.get(i + 1))
    {
        let model: aligndata_stages::safety::CrisisModel =
            serde_json::from_slice(&std::fs::read(path)?)?;
        let det = Detector::with_classifier(ClassifierCheck::with_model(base.as_ref(), model));
        let t = Instant::now();
        let dets = det.detect_batch(&refs)?;
        let s = t.elapsed().as_secs_f64();
        let alone = dets
            .iter()
            .filter(|d| d.crisis && d.cues.iter().all(|c| c.rule == "classifier"))
            .count();
        println!(
            "rules + classifier of {path}: {:>8.1} inputs/s, {} flagged ({alone} by the classifier alone){}",
            refs.len() as f64 / s,
            dets.iter().filter(|d| d.crisis).count(),
            figures(&dets)
        );
    }

    let t = Instant::now();
    let encoder = crisis_embedder(true, &|_| {})?;
    let check = ClassifierCheck::new(&encoder)?;
    let det = Detector::with_classifier(check);
    let load = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let dets = det.detect_batch(&refs)?;
    let s = t.elapsed().as_secs_f64();
    let flagged = dets.iter().filter(|d| d.crisis).count();
    println!(
        "rules + fine-tuned classifier:     {:>8.1} inputs/s, {flagged} flagged (load and merge {load:.2} s){}",
        refs.len() as f64 / s,
        figures(&dets)
    );
    // `--show K`: K flagged inputs, for a precision check by eye.
    if let Some(k) = args
        .iter()
        .position(|a| a == "--show")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse::<usize>().ok())
    {
        let only_classifier = |d: &&aligndata_stages::safety::Detection| {
            d.crisis && d.cues.iter().all(|c| c.rule == "classifier")
        };
        println!(
            "flagged by the classifier alone: {}",
            dets.iter().filter(only_classifier).count()
        );
        for (t, d) in refs
            .iter()
            .zip(&dets)
            .filter(|(_, d)| only_classifier(d))
            .take(k)
        {
            let short: String = t.chars().take(300).collect();
            println!("---\n{short}\n  => {}", d.reason());
        }
    }
    Ok(())
}
