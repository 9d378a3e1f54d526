//! GoEmotions evaluation of the labellers: train on train.tsv, evaluate on dev.tsv.
//!
//! ```text
//! cargo run --release -p aligndata-stages --example eval_label
//! EVAL_LABEL_FEATURES=tfidf,minilm,tfidf+minilm+static   (which feature sets to train on)
//! EVAL_LABEL_DATA=/path/to/goemotions                     (default ../shared/data/goemotions)
//! EVAL_LABEL_PROTOTYPE=0                                  (skip the zero-shot rows)
//! EVAL_LABEL_SKLEARN=1        (also run scripts/eval_label_sklearn.py on the same holdout)
//! EVAL_LABEL_{EPOCHS,LR,L2,DENSE_WEIGHT,MIN_DF,BALANCE,FOLDS}   (override the training settings)
//! EVAL_LABEL_CHAR_MAX=0       (TF-IDF words only; N: character n-grams 2..=N, default 4)
//! ```
//!
//! `tfidf` is the stage's own TF-IDF word unigram + bigram features, with character 2–4-grams
//! inside word boundaries in a second block unless EVAL_LABEL_CHAR_MAX=0 (fitted on train); a `+`
//! joins feature sets side by side in one classifier, as `label train --features` does. Every
//! trained row is scored with the classifier after a JSON round trip (weights packed as f16),
//! i.e. what a saved model file gives.
//!
//! Why this file exists: the issue asks how well each labeller recovers human labels on real
//! text, beside the published BERT-base baseline (macro-F1 0.46 on the 28 labels). Reported:
//! macro-F1 over the 28 labels, per-label F1, and macro-F1 over the nine labels nearest the
//! self-doubt taxonomy's emotions. The trained labeller is the stage's own `LinearClassifier`
//! (thresholds tuned on 15% of train, never on dev); the prototype labeller is the stage's own
//! `Prototypes`, built only from the label names and the one-line descriptions below, with
//! "none of these" read as `neutral` (GoEmotions' own name for no emotion).
//!
//! Embeddings are cached under `target/eval_label_cache/` so a rerun only trains.

#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use aligndata_models::embed::{Embedder, EmbedderKind, load_embedder};
use aligndata_stages::label::{
    LinearClassifier, PrototypeConfig, PrototypeMode, Prototypes, Rows, Tfidf, TfidfConfig,
    TrainConfig, f1_scores, holdout_split,
};

const NEAR_TAXONOMY: [&str; 9] = [
    "anger",
    "sadness",
    "confusion",
    "fear",
    "nervousness",
    "embarrassment",
    "disappointment",
    "remorse",
    "grief",
];

/// Names and short descriptions written for the prototype labeller (not taken from the data).
fn description(label: &str) -> (&'static str, &'static str) {
    match label {
        "admiration" => (
            "admiration, impressed, respect",
            "Finding something or someone impressive, great or worthy of respect.",
        ),
        "amusement" => (
            "amusement, funny, haha, lol",
            "Finding something funny or entertaining; laughing.",
        ),
        "anger" => (
            "anger, angry, furious, rage",
            "A strong feeling of displeasure or hostility; being mad at someone.",
        ),
        "annoyance" => (
            "annoyance, annoyed, irritated",
            "Mild anger; being irritated or bothered by something.",
        ),
        "approval" => (
            "approval, agree, yes, that's right",
            "Agreeing with, accepting or supporting an opinion or action.",
        ),
        "caring" => (
            "caring, take care, hope you're ok",
            "Showing kindness and concern for someone's wellbeing; wanting to help.",
        ),
        "confusion" => (
            "confusion, confused, don't understand",
            "Not understanding something; being puzzled or unsure what is meant.",
        ),
        "curiosity" => (
            "curiosity, curious, wondering, question",
            "Wanting to know or learn more; asking out of interest.",
        ),
        "desire" => (
            "desire, want, wish, I'd love to have",
            "A strong wish or want for something or for something to happen.",
        ),
        "disappointment" => (
            "disappointment, disappointed, let down",
            "Sadness because hopes or expectations were not met.",
        ),
        "disapproval" => (
            "disapproval, disagree, that's wrong",
            "Thinking something is wrong or bad; disagreeing or rejecting it.",
        ),
        "disgust" => (
            "disgust, gross, disgusting, revolting",
            "Revulsion or strong distaste at something offensive or unpleasant.",
        ),
        "embarrassment" => (
            "embarrassment, embarrassed, awkward, cringe",
            "Self-conscious discomfort, shame or awkwardness about oneself.",
        ),
        "excitement" => (
            "excitement, excited, can't wait, hyped",
            "Eager enthusiasm and energy about something.",
        ),
        "fear" => (
            "fear, afraid, scared, terrified",
            "Being afraid or frightened of danger or a threat.",
        ),
        "gratitude" => (
            "gratitude, thank you, thanks, grateful",
            "Thankfulness and appreciation for something received.",
        ),
        "grief" => (
            "grief, mourning, loss, passed away",
            "Intense sorrow, especially over someone's death.",
        ),
        "joy" => (
            "joy, happy, delighted, glad",
            "A feeling of pleasure and happiness.",
        ),
        "love" => (
            "love, I love this, adore",
            "Strong affection or fondness for someone or something.",
        ),
        "nervousness" => (
            "nervousness, nervous, anxious, worried",
            "Apprehension, worry or anxiety about what may happen.",
        ),
        "optimism" => (
            "optimism, hopeful, it will get better",
            "Hopefulness and confidence about the future.",
        ),
        "pride" => (
            "pride, proud, I did it",
            "Pleasure and satisfaction from one's own or a close one's achievements.",
        ),
        "realization" => (
            "realization, I just realized, now I see",
            "Becoming aware of something; suddenly understanding.",
        ),
        "relief" => (
            "relief, relieved, phew, thank goodness",
            "Reassurance and relaxation after worry or distress ends.",
        ),
        "remorse" => (
            "remorse, sorry, I regret, my fault",
            "Regret or guilt for a wrong one has done; apologising.",
        ),
        "sadness" => (
            "sadness, sad, unhappy, heartbroken",
            "Emotional pain, sorrow or unhappiness.",
        ),
        "surprise" => (
            "surprise, wow, I didn't expect that, shocked",
            "Being astonished by something unexpected.",
        ),
        _ => (
            "neutral, okay, fine, a plain statement",
            "No particular emotion; a factual or neutral remark.",
        ),
    }
}

/// Train and dev embeddings of one embedder.
type TrainDev = (Vec<Vec<f32>>, Vec<Vec<f32>>);

struct Split {
    texts: Vec<String>,
    labels: Vec<Vec<usize>>,
}

fn read_split(path: &Path, n_labels: usize) -> Result<Split> {
    let raw =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut split = Split {
        texts: Vec::new(),
        labels: Vec::new(),
    };
    for (i, line) in raw.lines().enumerate() {
        let mut cols = line.split('\t');
        let (Some(text), Some(ids)) = (cols.next(), cols.next()) else {
            bail!("{}:{}: expected text<TAB>labels", path.display(), i + 1);
        };
        let labels: Vec<usize> = ids
            .split(',')
            .map(|s| s.trim().parse::<usize>())
            .collect::<Result<_, _>>()
            .with_context(|| format!("{}:{}: bad label list {ids:?}", path.display(), i + 1))?;
        if labels.iter().any(|&l| l >= n_labels) {
            bail!("{}:{}: label index out of range", path.display(), i + 1);
        }
        split.texts.push(text.to_string());
        split.labels.push(labels);
    }
    Ok(split)
}

fn cache_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/eval_label_cache")
}

/// Embeds with a cache file per (embedder, split).
fn embed_cached(
    embedder: &dyn Embedder,
    name: &str,
    texts: &[String],
) -> Result<(Vec<Vec<f32>>, f64)> {
    let path = cache_dir().join(format!("{}-{name}-{}.f32", embedder.name(), texts.len()));
    let dim = embedder.dim();
    if let Ok(bytes) = std::fs::read(&path)
        && bytes.len() == texts.len() * dim * 4
    {
        let floats: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        return Ok((floats.chunks(dim).map(<[f32]>::to_vec).collect(), 0.0));
    }
    let start = Instant::now();
    let mut out = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(2048) {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        out.extend(embedder.embed(&refs)?);
        eprint!(
            "\r  {} {name}: {}/{}",
            embedder.name(),
            out.len(),
            texts.len()
        );
    }
    eprintln!();
    let secs = start.elapsed().as_secs_f64();
    std::fs::create_dir_all(cache_dir())?;
    let bytes: Vec<u8> = out.iter().flatten().flat_map(|f| f.to_le_bytes()).collect();
    std::fs::write(&path, bytes)?;
    Ok((out, secs))
}

struct Row {
    method: String,
    macro_f1: f64,
    near_f1: f64,
    per_label: Vec<f64>,
    note: String,
}

fn main() -> Result<()> {
    let data = std::env::var("EVAL_LABEL_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/goemotions")
        });
    if !data.join("train.tsv").exists() {
        eprintln!(
            "SKIP: {} has no train.tsv (GoEmotions is not here)",
            data.display()
        );
        return Ok(());
    }
    let names: Vec<String> = std::fs::read_to_string(data.join("labels.txt"))?
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    let k = names.len();
    let train = read_split(&data.join("train.tsv"), k)?;
    let dev = read_split(&data.join("dev.tsv"), k)?;
    let near: Vec<usize> = NEAR_TAXONOMY
        .iter()
        .filter_map(|n| names.iter().position(|x| x == n))
        .collect();
    let neutral = names.iter().position(|n| n == "neutral");
    eprintln!(
        "GoEmotions: {} labels, {} train, {} dev",
        k,
        train.texts.len(),
        dev.texts.len()
    );
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    eprintln!("load average at start: {}", load.trim());

    let features: Vec<String> = std::env::var("EVAL_LABEL_FEATURES")
        .unwrap_or_else(|_| "hashed,static,minilm,minilm+static+hashed".to_string())
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    let mut kinds: Vec<EmbedderKind> = Vec::new();
    for f in &features {
        for part in f.split('+').filter(|p| *p != "tfidf") {
            let kind: EmbedderKind = part.parse()?;
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
    }
    let mut embedded: BTreeMap<String, TrainDev> = BTreeMap::new();
    let mut embedders: BTreeMap<String, Box<dyn Embedder>> = BTreeMap::new();
    let mut rows: Vec<Row> = Vec::new();
    let score = |predicted: &[Vec<usize>]| {
        let (per, macro_f1) = f1_scores(k, predicted, &dev.labels);
        let near_f1 = near.iter().map(|&i| per[i]).sum::<f64>() / near.len().max(1) as f64;
        (per, macro_f1, near_f1)
    };
    for kind in &kinds {
        let embedder = load_embedder(*kind, false, &|m| eprintln!("  {m}"))?;
        let (tr, t1) = embed_cached(embedder.as_ref(), "train", &train.texts)?;
        let (dv, t2) = embed_cached(embedder.as_ref(), "dev", &dev.texts)?;
        if t1 + t2 > 0.0 {
            eprintln!(
                "  embedded with {}: {:.0} texts/s",
                embedder.name(),
                (train.texts.len() + dev.texts.len()) as f64 / (t1 + t2)
            );
        }
        embedded.insert(kind.to_string(), (tr, dv));
        if std::env::var("EVAL_LABEL_PROTOTYPE").is_ok_and(|v| v == "0") {
            embedders.insert(kind.to_string(), embedder);
            continue;
        }

        // Prototype (zero-shot), both modes.
        let labels: Vec<(String, Vec<String>)> = names
            .iter()
            .map(|n| {
                let (kw, desc) = description(n);
                (n.clone(), vec![n.clone(), kw.to_string(), desc.to_string()])
            })
            .collect();
        // Calibrated cut-off ("none" → neutral), and none at all (always the best label).
        for (mode, cutoff) in [
            (PrototypeMode::Mean, None),
            (PrototypeMode::Max, None),
            (PrototypeMode::Mean, Some(f32::MIN)),
            (PrototypeMode::Max, Some(f32::MIN)),
        ] {
            let start = Instant::now();
            let protos = Prototypes::build(
                embedder.as_ref(),
                &labels,
                PrototypeConfig {
                    mode,
                    min_similarity: cutoff,
                    ..PrototypeConfig::default()
                },
            )?;
            let dv = &embedded[&kind.to_string()].1;
            let predicted: Vec<Vec<usize>> = dv
                .iter()
                .map(|v| {
                    let p: Vec<usize> = protos.predict(v).into_iter().map(|x| x.0).collect();
                    if p.is_empty() {
                        neutral.into_iter().collect()
                    } else {
                        p
                    }
                })
                .collect();
            let (per, macro_f1, near_f1) = score(&predicted);
            rows.push(Row {
                method: format!(
                    "prototype ({mode:?}, {kind}{})",
                    if cutoff.is_some() {
                        ", best label always"
                    } else {
                        ""
                    }
                )
                .to_lowercase(),
                macro_f1,
                near_f1,
                per_label: per,
                note: format!(
                    "cut-off {}, {:.2}s",
                    if cutoff.is_some() {
                        "none".to_string()
                    } else {
                        format!("{:.3}", protos.threshold)
                    },
                    start.elapsed().as_secs_f64()
                ),
            });
        }
        embedders.insert(kind.to_string(), embedder);
    }

    let config = train_config()?;
    // The split `train` makes, written for the scikit-learn script to tune on the same rows.
    let (held, _) = holdout_split(train.texts.len(), config.holdout, config.seed);
    std::fs::create_dir_all(cache_dir())?;
    let held_path = cache_dir().join("holdout.txt");
    let held_text: Vec<String> = held.iter().map(usize::to_string).collect();
    std::fs::write(&held_path, held_text.join("\n"))?;
    let mut tfidf: Option<(Tfidf, Rows, Rows)> = None;
    for f in &features {
        let parts: Vec<&str> = f.split('+').filter(|p| *p != "tfidf").collect();
        let with_tfidf = f.split('+').any(|p| p == "tfidf");
        if with_tfidf && tfidf.is_none() {
            let start = Instant::now();
            let texts: Vec<&str> = train.texts.iter().map(String::as_str).collect();
            let t = Tfidf::fit(
                &texts,
                config.tfidf.as_ref().unwrap_or(&TfidfConfig::default()),
            )?;
            let mut tr = Rows::new();
            for x in &train.texts {
                tr.push(&t.transform(x));
            }
            let mut dv = Rows::new();
            for x in &dev.texts {
                dv.push(&t.transform(x));
            }
            eprintln!(
                "  tf-idf: {} terms in {:.1}s",
                t.len(),
                start.elapsed().as_secs_f64()
            );
            tfidf = Some((t, tr, dv));
        }
        let concat = |which: usize| -> Vec<Vec<f32>> {
            let n = if which == 0 {
                train.texts.len()
            } else {
                dev.texts.len()
            };
            (0..n)
                .map(|i| {
                    parts
                        .iter()
                        .flat_map(|p| {
                            let kind: EmbedderKind = p.parse().unwrap_or_default();
                            let (tr, dv) = &embedded[&kind.to_string()];
                            if which == 0 {
                                tr[i].clone()
                            } else {
                                dv[i].clone()
                            }
                        })
                        .collect()
                })
                .collect()
        };
        let (xtr, xdv) = if parts.is_empty() {
            (None, None)
        } else {
            (Some(concat(0)), Some(concat(1)))
        };
        let sparse = if with_tfidf { tfidf.as_ref() } else { None };
        let start = Instant::now();
        let mut config = config.clone();
        if !with_tfidf {
            // Embedding-only rows: the format-1 labeller's settings (mini-batch Adam).
            config = TrainConfig::default();
        }
        let model = LinearClassifier::train_mixed(
            names.clone(),
            sparse.map(|(t, tr, _)| (tr, t.len())),
            xtr.as_deref(),
            &train.labels,
            &config,
        )?;
        let train_s = start.elapsed().as_secs_f64();
        // Score what a saved model file gives: the weights after the JSON (f16) round trip.
        let json = serde_json::to_vec(&model)?;
        let vocab_bytes =
            sparse.map_or(0, |(t, _, _)| serde_json::to_vec(t).map_or(0, |v| v.len()));
        let model: LinearClassifier = serde_json::from_slice(&json)?;
        let inputs: Vec<Vec<(u32, f32)>> = (0..dev.texts.len())
            .map(|i| {
                let s: Vec<(u32, f32)> = sparse.map_or_else(Vec::new, |(_, _, dv)| {
                    let (idx, val) = dv.row(i);
                    idx.iter().copied().zip(val.iter().copied()).collect()
                });
                model.input(&s, xdv.as_ref().map_or(&[][..], |d| &d[i]))
            })
            .collect();
        let fallback: Vec<Vec<usize>> = inputs
            .iter()
            .map(|x| {
                model
                    .predict_at_least_one_of(x)
                    .into_iter()
                    .map(|p| p.0)
                    .collect()
            })
            .collect();
        let (per, macro_f1, near_f1) = score(&fallback);
        rows.push(Row {
            method: format!("trained ({f}, {} d), at least one label", model.dim),
            macro_f1,
            near_f1,
            per_label: per,
            note: "when no label passes its threshold, the nearest one".to_string(),
        });
        let predicted: Vec<Vec<usize>> = inputs
            .iter()
            .map(|x| model.predict_of(x).into_iter().map(|p| p.0).collect())
            .collect();
        let (per, macro_f1, near_f1) = score(&predicted);
        rows.push(Row {
            method: format!("trained ({f}, {} d)", model.dim),
            macro_f1,
            near_f1,
            per_label: per,
            note: format!(
                "held-out (train) macro-F1 {:.3}; train {train_s:.1}s ({} epochs, {:?}); model {:.1} MB JSON",
                model.heldout_f1.iter().map(|f| f.unwrap_or(0.0)).sum::<f32>()
                    / model.heldout_f1.len().max(1) as f32,
                config.epochs,
                config.solver,
                (json.len() + vocab_bytes) as f64 / 1e6
            ),
        });
        eprintln!("  trained on {f}: macro-F1 {macro_f1:.3} in {train_s:.1}s");
    }

    if std::env::var("EVAL_LABEL_SKLEARN").is_ok_and(|v| v == "1") {
        rows.extend(sklearn(&data, &held_path, &config, &names, &dev, &near)?);
    }

    let synthetic_rows = match std::env::var("EVAL_LABEL_SYNTHETIC") {
        Ok(dir) => synthetic(Path::new(&dir), &names, &dev, &embedders, &embedded, &rows)?,
        Err(_) => Vec::new(),
    };

    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at end: {}\n", load.trim());
    if !synthetic_rows.is_empty() {
        println!(
            "Trained only on synthetic records ({} GoEmotions labels the taxonomy's emotions map to):\n",
            SYN_MAP.len()
        );
        print!("| training data |");
        for (_, g) in SYN_MAP {
            print!(" {g} |");
        }
        println!(" macro-F1 |");
        println!("|---|{}---:|", "---:|".repeat(SYN_MAP.len()));
        for line in &synthetic_rows {
            println!("{line}");
        }
        println!();
    }
    println!("| method | macro-F1 (28) | macro-F1 (9 near taxonomy) | notes |");
    println!("|---|---:|---:|---|");
    println!("| BERT-base fine-tuned (published) | 0.46 | | Demszky et al. 2020 |");
    for r in &rows {
        println!(
            "| {} | {:.3} | {:.3} | {} |",
            r.method, r.macro_f1, r.near_f1, r.note
        );
    }
    println!("\nPer-label F1:\n");
    print!("| label |");
    for r in &rows {
        print!(" {} |", r.method);
    }
    println!();
    println!("|---|{}", "---:|".repeat(rows.len()));
    for (i, n) in names.iter().enumerate() {
        let mark = if near.contains(&i) { " *" } else { "" };
        print!("| {n}{mark} |");
        for r in &rows {
            print!(" {:.2} |", r.per_label[i]);
        }
        println!();
    }
    Ok(())
}

/// The self-doubt taxonomy's emotions with a clear GoEmotions counterpart.
const SYN_MAP: [(&str, &str); 7] = [
    ("angry", "anger"),
    ("sad", "sadness"),
    ("confused", "confusion"),
    ("anxious", "nervousness"),
    ("embarrassed", "embarrassment"),
    ("frustrated", "annoyance"),
    ("ashamed", "remorse"),
];

/// Trains on a synthetic dataset's `intended` emotions (mapped by [`SYN_MAP`]; the other emotions
/// are negatives) and scores on dev over the mapped labels, beside the GoEmotions-trained rows.
fn synthetic(
    dir: &Path,
    names: &[String],
    dev: &Split,
    embedders: &BTreeMap<String, Box<dyn Embedder>>,
    embedded: &BTreeMap<String, TrainDev>,
    rows: &[Row],
) -> Result<Vec<String>> {
    let dataset = aligndata_dataset::Dataset::open(dir)?;
    let mut texts = Vec::new();
    let mut targets = Vec::new();
    for r in dataset.records() {
        let r = r?;
        if !r.flags.is_empty() {
            continue;
        }
        let Some(emotion) = r.intended.get("emotion") else {
            continue;
        };
        let target: Vec<usize> = SYN_MAP
            .iter()
            .position(|(e, _)| e == emotion)
            .into_iter()
            .collect();
        texts.push(r.text);
        targets.push(target);
    }
    let labels: Vec<String> = SYN_MAP.iter().map(|(_, g)| g.to_string()).collect();
    let gold_idx: Vec<usize> = SYN_MAP
        .iter()
        .filter_map(|(_, g)| names.iter().position(|n| n == g))
        .collect();
    if gold_idx.len() != SYN_MAP.len() {
        bail!("labels.txt lacks one of the mapped labels");
    }
    let truth: Vec<Vec<usize>> = dev
        .labels
        .iter()
        .map(|ls| {
            gold_idx
                .iter()
                .enumerate()
                .filter(|(_, g)| ls.contains(g))
                .map(|(i, _)| i)
                .collect()
        })
        .collect();
    let mut out = Vec::new();
    for (kind, embedder) in embedders {
        let start = Instant::now();
        let (x, _) = embed_cached(
            embedder.as_ref(),
            &format!("synthetic-{}", dir.display().to_string().replace('/', "_")),
            &texts,
        )?;
        let model = LinearClassifier::train(labels.clone(), &x, &targets, &TrainConfig::default())?;
        let dv = &embedded[kind].1;
        let predicted: Vec<Vec<usize>> = dv
            .iter()
            .map(|v| model.predict(v).into_iter().map(|p| p.0).collect())
            .collect();
        let (per, m) = f1_scores(labels.len(), &predicted, &truth);
        let cells: Vec<String> = per.iter().map(|f| format!("{f:.2}")).collect();
        out.push(format!(
            "| synthetic only ({} records, {kind}; {:.0}s) | {} | {m:.3} |",
            texts.len(),
            start.elapsed().as_secs_f64(),
            cells.join(" | ")
        ));
        for r in rows.iter().filter(|r| {
            r.method.starts_with(&format!("trained ({kind},")) && !r.method.contains("at least")
        }) {
            let per: Vec<f64> = gold_idx.iter().map(|&g| r.per_label[g]).collect();
            let m = per.iter().sum::<f64>() / per.len() as f64;
            let cells: Vec<String> = per.iter().map(|f| format!("{f:.2}")).collect();
            out.push(format!(
                "| GoEmotions train ({kind}) | {} | {m:.3} |",
                cells.join(" | ")
            ));
        }
    }
    Ok(out)
}

fn env<T: std::str::FromStr>(name: &str) -> Result<Option<T>> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .map(Some)
            .map_err(|_| anyhow::anyhow!("{name}={v:?} does not parse")),
        Err(_) => Ok(None),
    }
}

/// The shipped settings (`aligndata label train`'s defaults), with EVAL_LABEL_* overrides.
fn train_config() -> Result<TrainConfig> {
    let mut c = TrainConfig::shipped();
    if let Some(v) = env("EVAL_LABEL_EPOCHS")? {
        c.epochs = v;
    }
    if let Some(v) = env("EVAL_LABEL_LR")? {
        c.learning_rate = v;
    }
    if let Some(v) = env("EVAL_LABEL_L2")? {
        c.l2 = v;
    }
    if let Some(v) = env("EVAL_LABEL_DENSE_WEIGHT")? {
        c.dense_weight = v;
    }
    if let Some(v) = env("EVAL_LABEL_BALANCE")? {
        c.balance = v;
    }
    if let Some(v) = env("EVAL_LABEL_FOLDS")? {
        c.folds = v;
    }
    if let Some(v) = env("EVAL_LABEL_MIN_DF")? {
        c.tfidf.get_or_insert_with(TfidfConfig::default).min_df = v;
    }
    if let Some(v) = env::<usize>("EVAL_LABEL_CHAR_MAX")? {
        // 0: words only; otherwise character n-grams of 2..=v beside the words.
        let t = c.tfidf.get_or_insert_with(TfidfConfig::default);
        t.char_ngrams = (v >= 2).then_some([2, v]);
    }
    Ok(c)
}

/// scikit-learn's `TfidfVectorizer` + one-vs-rest `LogisticRegression`, thresholds tuned on the
/// same held-out rows, run now so the two are compared under the same load.
fn sklearn(
    data: &Path,
    held: &Path,
    config: &TrainConfig,
    names: &[String],
    dev: &Split,
    near: &[usize],
) -> Result<Vec<Row>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/eval_label_sklearn.py");
    let out_path = cache_dir().join("sklearn-dev-predictions.txt");
    let tfidf = config.tfidf.clone().unwrap_or_default();
    let start = Instant::now();
    let status = std::process::Command::new("python3")
        .arg(&script)
        .arg("--data")
        .arg(data)
        .arg("--holdout")
        .arg(held)
        .arg("--min-df")
        .arg(tfidf.min_df.to_string())
        .arg("--max-terms")
        .arg(tfidf.max_terms.to_string())
        .arg("--out")
        .arg(&out_path)
        .status()
        .with_context(|| format!("running {}", script.display()))?;
    if !status.success() {
        bail!("{} failed ({status})", script.display());
    }
    let secs = start.elapsed().as_secs_f64();
    let text = std::fs::read_to_string(&out_path)?;
    let mut rows = Vec::new();
    // One line per prediction variant: `name<TAB>row;row;...` with rows as comma-separated ids.
    for line in text.lines() {
        let Some((name, preds)) = line.split_once('\t') else {
            continue;
        };
        let predicted: Vec<Vec<usize>> = preds
            .split(';')
            .map(|r| r.split(',').filter_map(|x| x.parse().ok()).collect())
            .collect();
        if predicted.len() != dev.labels.len() {
            bail!(
                "{}: {name} has {} rows, dev has {}",
                out_path.display(),
                predicted.len(),
                dev.labels.len()
            );
        }
        let (per, macro_f1) = f1_scores(names.len(), &predicted, &dev.labels);
        let near_f1 = near.iter().map(|&i| per[i]).sum::<f64>() / near.len().max(1) as f64;
        rows.push(Row {
            method: format!("scikit-learn {name}"),
            macro_f1,
            near_f1,
            per_label: per,
            note: format!("{secs:.0}s (both variants, with the vectoriser)"),
        });
    }
    Ok(rows)
}
