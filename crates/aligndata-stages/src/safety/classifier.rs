//! The trained half of crisis detection: logistic regression on sentence embeddings.
//!
//! Why: hand-written rules match the phrasings their author thought of; people in crisis say it
//! in ways no rule list anticipates ("I keep picturing my own funeral and feeling relieved"). An
//! embedding carries the meaning, and a linear head trained on several hundred hand-written,
//! labelled examples (`test_data/safety/train.jsonl`: direct and indirect crisis inputs, and
//! look-alikes and ordinary distress as negatives, in many registers) separates the two far
//! better than similarity to a handful of exemplars did (see BENCHMARKS.md).
//!
//! The head is a binary logistic regression on standardised features ([`LogisticHead`]), trained
//! here rather than through the label stage's multi-label `LinearClassifier`: a few dozen lines of
//! full-batch Adam, and a shipped model whose JSON format does not move when the labeller's
//! does. Two thresholds:
//! [`CrisisModel::threshold`] makes a detection on its own, [`CrisisModel::weak_threshold`]
//! (lower) confirms a weak rule cue. Both are chosen from out-of-fold probabilities on the
//! training file (k-fold cross-validation), never on the evaluation sets, and those probabilities
//! are scored exactly as detection scores an input (whole text and best sentence, [`combine`]):
//! thresholds picked on whole texts and applied to the maximum over sentences let short,
//! out-of-context sentences through on their own.
//!
//! **Shipped, not trained at load, for MiniLM.** The MiniLM model is small (384 weights plus the
//! standardisation, ~20 kB of JSON, [`BUILTIN_MINILM`]) and embedding the training file takes a
//! few seconds on two cores, which every `respond` run would pay; so it is committed, with the
//! hash of the training file it came from. A test fails when `train.jsonl` changes and the shipped
//! model was not retrained (it says how). Any other embedder (static, hashed) is trained at load
//! from the same file: those embed the whole file in milliseconds.

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use aligndata_models::embed::Embedder;

/// The training file, built in (see the module docs).
pub const TRAIN_JSONL: &str = include_str!("../../test_data/safety/train.jsonl");

/// The shipped MiniLM model (see the module docs).
pub const BUILTIN_MINILM: &str = include_str!("crisis-minilm.json");

/// One labelled example of the training file.
#[derive(Debug, Clone, Deserialize)]
pub struct Example {
    /// The input.
    pub text: String,
    /// Whether it is a crisis input.
    pub crisis: bool,
    /// `direct`, `indirect`, `lookalike` or `distress`.
    pub kind: String,
}

/// Parses a labelled JSONL file (`{"text", "crisis", "kind"}` per line); errors name the line.
pub fn parse_examples(text: &str, file: &str) -> Result<Vec<Example>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let ex: Example = serde_json::from_str(line).with_context(|| {
            format!(
                "{file}:{}: expected {{\"text\": string, \"crisis\": bool, \"kind\": string}}",
                i + 1
            )
        })?;
        out.push(ex);
    }
    Ok(out)
}

/// Hash of a training file's text (xxh3, hex): ties a shipped model to the file it came from.
pub fn train_hash(text: &str) -> String {
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(text.as_bytes()))
}

/// A trained crisis classifier for one embedder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrisisModel {
    /// The embedder it was trained on ([`Embedder::name`]).
    pub embedder: String,
    /// [`train_hash`] of the training file.
    pub train_hash: String,
    /// Examples it was trained on.
    pub examples: usize,
    /// Probability at or above which the classifier alone detects a crisis.
    pub threshold: f32,
    /// Probability at or above which it confirms a weak rule cue.
    pub weak_threshold: f32,
    /// Out-of-fold precision and recall on the training file at `threshold`.
    pub cv_precision: f32,
    pub cv_recall: f32,
    /// The logistic head.
    pub head: LogisticHead,
}

/// Binary logistic regression on standardised features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogisticHead {
    /// Per-feature mean subtracted first.
    pub mean: Vec<f32>,
    /// Per-feature multiplier (1 / standard deviation).
    pub scale: Vec<f32>,
    /// One weight per feature.
    pub weights: Vec<f32>,
    /// The bias.
    pub bias: f32,
}

/// Training settings of the head.
const EPOCHS: usize = 400;
const LEARNING_RATE: f32 = 0.01;
/// Strong: 384 features, a few hundred examples; a weak penalty memorises phrasings.
const L2: f32 = 0.02;

impl LogisticHead {
    /// Fits on `rows` (all the same length) and `truth`, positives up-weighted by
    /// √(negatives / positives); full-batch Adam, deterministic.
    pub fn fit(rows: &[Vec<f32>], truth: &[bool]) -> Result<LogisticHead> {
        let dim = rows.first().map_or(0, Vec::len);
        if dim == 0 || rows.len() != truth.len() || rows.iter().any(|r| r.len() != dim) {
            bail!("feature rows must be non-empty, of one length, one per label");
        }
        let n = rows.len() as f32;
        let mut mean = vec![0f32; dim];
        for r in rows {
            for (m, x) in mean.iter_mut().zip(r) {
                *m += x / n;
            }
        }
        let mut var = vec![0f32; dim];
        for r in rows {
            for ((v, x), m) in var.iter_mut().zip(r).zip(&mean) {
                *v += (x - m) * (x - m) / n;
            }
        }
        let scale: Vec<f32> = var.iter().map(|v| 1.0 / (v.sqrt() + 1e-6)).collect();
        let x: Vec<Vec<f32>> = rows.iter().map(|r| standardise(r, &mean, &scale)).collect();
        let pos = truth.iter().filter(|t| **t).count().max(1) as f32;
        let pos_weight = ((n - pos) / pos).sqrt().max(1.0);
        let (mut w, mut b) = (vec![0f32; dim], 0f32);
        let (mut m1, mut m2) = (vec![0f32; dim + 1], vec![0f32; dim + 1]);
        let (beta1, beta2) = (0.9f32, 0.999f32);
        let mut grad = vec![0f32; dim + 1];
        for step in 1..=EPOCHS {
            grad.iter_mut().for_each(|g| *g = 0.0);
            let mut total = 0f32;
            for (xi, &yi) in x.iter().zip(truth) {
                let p = sigmoid(dot(&w, xi) + b);
                let weight = if yi { pos_weight } else { 1.0 };
                let err = weight * (p - if yi { 1.0 } else { 0.0 });
                total += weight;
                for (g, v) in grad.iter_mut().zip(xi) {
                    *g += err * v;
                }
                grad[dim] += err;
            }
            for (g, wv) in grad.iter_mut().zip(&w) {
                *g = *g / total + L2 * wv;
            }
            grad[dim] /= total;
            let (c1, c2) = (1.0 - beta1.powi(step as i32), 1.0 - beta2.powi(step as i32));
            for j in 0..=dim {
                m1[j] = beta1 * m1[j] + (1.0 - beta1) * grad[j];
                m2[j] = beta2 * m2[j] + (1.0 - beta2) * grad[j] * grad[j];
                let delta = LEARNING_RATE * (m1[j] / c1) / ((m2[j] / c2).sqrt() + 1e-8);
                if j == dim {
                    b -= delta;
                } else {
                    w[j] -= delta;
                }
            }
        }
        Ok(LogisticHead {
            mean,
            scale,
            weights: w,
            bias: b,
        })
    }

    /// Checks the shapes agree (a model read from a file may not).
    pub fn validate(&self) -> Result<()> {
        let d = self.weights.len();
        if d == 0 || self.mean.len() != d || self.scale.len() != d {
            bail!(
                "inconsistent crisis classifier: {d} weights, {} means, {} scales",
                self.mean.len(),
                self.scale.len()
            );
        }
        Ok(())
    }

    /// Feature count.
    pub fn dim(&self) -> usize {
        self.weights.len()
    }

    /// The probability of the positive class for one row.
    pub fn probability(&self, row: &[f32]) -> f32 {
        sigmoid(dot(&self.weights, &standardise(row, &self.mean, &self.scale)) + self.bias)
    }
}

fn standardise(row: &[f32], mean: &[f32], scale: &[f32]) -> Vec<f32> {
    row.iter()
        .zip(mean)
        .zip(scale)
        .map(|((x, m), s)| (x - m) * s)
        .collect()
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

/// How thresholds are chosen from out-of-fold probabilities.
const FOLDS: usize = 5;
/// `threshold`: the lowest cut-off whose out-of-fold precision is at least this. The classifier
/// alone cannot tell "I want to disappear" from "I want to disappear for a week" as well as the
/// rules can, so on its own it must be precise; the rules carry recall.
const TARGET_PRECISION: f64 = 0.9;
/// `weak_threshold`: the highest cut-off whose out-of-fold recall reaches this: a weak cue plus
/// a classifier that does not rule crisis out.
const WEAK_TARGET_RECALL: f64 = 0.95;

impl CrisisModel {
    /// Trains on `examples` embedded by `embedder`; thresholds from `FOLDS`-fold out-of-fold
    /// probabilities.
    pub fn train(embedder: &dyn Embedder, examples: &[Example], hash: &str) -> Result<CrisisModel> {
        if examples.len() < 20
            || examples.iter().all(|e| e.crisis)
            || !examples.iter().any(|e| e.crisis)
        {
            bail!("the crisis classifier needs at least 20 examples of both classes");
        }
        // The head is fitted on whole texts; the sentences of multi-sentence examples are embedded
        // too, so that the out-of-fold probabilities the thresholds come from are scored exactly
        // as `ClassifierCheck` scores at detection time (see `combine`).
        let whole: Vec<&str> = examples.iter().map(|e| e.text.as_str()).collect();
        let (texts, owner) = with_sentences(&whole);
        let mut rows = embedder
            .embed(&texts)
            .context("embedding the crisis training examples")?;
        let sentence_rows = rows.split_off(examples.len().min(rows.len()));
        let features = rows;
        let truth: Vec<bool> = examples.iter().map(|e| e.crisis).collect();
        // Out-of-fold probabilities; fold = index mod FOLDS, so that every fold holds every kind
        // (the file is grouped by kind).
        let mut oof = vec![0f32; examples.len()];
        for fold in 0..FOLDS {
            let (mut xtr, mut ytr) = (Vec::new(), Vec::new());
            for (i, (x, y)) in features.iter().zip(&truth).enumerate() {
                if i % FOLDS != fold {
                    xtr.push(x.clone());
                    ytr.push(*y);
                }
            }
            let m = LogisticHead::fit(&xtr, &ytr)?;
            let best = best_sentence(&sentence_rows, &owner, examples.len(), |i, row| {
                (i % FOLDS == fold).then(|| m.probability(row))
            });
            for (i, x) in features.iter().enumerate() {
                if i % FOLDS == fold {
                    oof[i] = combine(m.probability(x), best[i]);
                }
            }
        }
        let threshold = cut_for_precision(&oof, &truth, TARGET_PRECISION);
        let weak_threshold = cut_for_recall(&oof, &truth, WEAK_TARGET_RECALL).min(threshold);
        let (cv_precision, cv_recall) = precision_recall(&oof, &truth, threshold);
        let head = LogisticHead::fit(&features, &truth)?;
        Ok(CrisisModel {
            embedder: embedder.name().to_string(),
            train_hash: hash.to_string(),
            examples: examples.len(),
            threshold,
            weak_threshold,
            cv_precision: cv_precision as f32,
            cv_recall: cv_recall as f32,
            head,
        })
    }

    /// Trains on the built-in training file.
    pub fn train_builtin(embedder: &dyn Embedder) -> Result<CrisisModel> {
        let examples = parse_examples(TRAIN_JSONL, "built-in safety/train.jsonl")?;
        Self::train(embedder, &examples, &train_hash(TRAIN_JSONL))
    }

    /// The shipped model when it was trained on `embedder`, else one trained now.
    pub fn for_embedder(embedder: &dyn Embedder) -> Result<CrisisModel> {
        let shipped: CrisisModel =
            serde_json::from_str(BUILTIN_MINILM).context("the shipped crisis-minilm.json")?;
        shipped.head.validate()?;
        if shipped.embedder == embedder.name() && shipped.head.dim() == embedder.dim() {
            return Ok(shipped);
        }
        Self::train_builtin(embedder)
    }

    /// The crisis probability of each embedded row.
    pub fn probability(&self, row: &[f32]) -> f32 {
        self.head.probability(row)
    }
}

/// Sentences of at least three words (split on `.`, `!`, `?`, `;` and newlines).
pub fn sentences(text: &str) -> Vec<&str> {
    text.split(['.', '!', '?', ';', '\n'])
        .map(str::trim)
        .filter(|s| s.split_whitespace().count() >= 3)
        .collect()
}

/// `texts`, followed by the sentences of each text that has several ([`sentences`]), and for
/// each of those sentences the index of its text.
pub fn with_sentences<'t>(texts: &[&'t str]) -> (Vec<&'t str>, Vec<usize>) {
    let mut all = texts.to_vec();
    let mut owner = Vec::new();
    for (i, t) in texts.iter().enumerate() {
        let parts = sentences(t);
        if parts.len() >= 2 {
            owner.extend(std::iter::repeat_n(i, parts.len()));
            all.extend(parts);
        }
    }
    (all, owner)
}

/// Per text (of `n`), the highest probability among its sentences' rows (`owner` as from
/// [`with_sentences`]); `score` returns `None` for a row to leave out. `None`: scored whole only.
pub fn best_sentence(
    rows: &[Vec<f32>],
    owner: &[usize],
    n: usize,
    score: impl Fn(usize, &[f32]) -> Option<f32>,
) -> Vec<Option<f32>> {
    let mut best: Vec<Option<f32>> = vec![None; n];
    for (row, &i) in rows.iter().zip(owner) {
        if let (Some(p), Some(b)) = (score(i, row), best.get_mut(i)) {
            *b = Some(b.map_or(p, |x| x.max(p)));
        }
    }
    best
}

/// The probability of a text from its whole-text probability and, for a text of several
/// sentences, its best sentence's: the whole text's, raised towards the best sentence by half the
/// gap. A crisis sentence inside a long message about work is not averaged away, and a short,
/// out-of-context sentence ("He promised he'd be there.") does not decide alone: scored on its own,
/// such a sentence is where the embedding is least reliable.
pub fn combine(whole: f32, best_sentence: Option<f32>) -> f32 {
    match best_sentence {
        Some(b) if b > whole => (whole + b) / 2.0,
        _ => whole,
    }
}

/// The highest cut-off at which at least `target` of the positives score at or above it.
pub fn cut_for_recall(probs: &[f32], truth: &[bool], target: f64) -> f32 {
    let mut pos: Vec<f32> = probs
        .iter()
        .zip(truth)
        .filter(|(_, t)| **t)
        .map(|(p, _)| *p)
        .collect();
    if pos.is_empty() {
        return 0.5;
    }
    pos.sort_by(|a, b| b.total_cmp(a));
    let need = ((target * pos.len() as f64).ceil() as usize).clamp(1, pos.len());
    pos[need - 1]
}

/// The lowest cut-off (a score in `probs`) at which the precision of `probs ≥ cut` is at least
/// `target`; the highest score when none is.
pub fn cut_for_precision(probs: &[f32], truth: &[bool], target: f64) -> f32 {
    let mut pairs: Vec<(f32, bool)> = probs.iter().copied().zip(truth.iter().copied()).collect();
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut best = pairs.first().map_or(0.5, |p| p.0);
    let (mut tp, mut n) = (0u32, 0u32);
    for (i, (p, t)) in pairs.iter().enumerate() {
        n += 1;
        if *t {
            tp += 1;
        }
        // Only cut between distinct scores.
        if pairs.get(i + 1).is_some_and(|next| next.0 == *p) {
            continue;
        }
        if f64::from(tp) / f64::from(n) >= target {
            best = *p;
        }
    }
    best
}

/// Precision and recall of `probs ≥ cut` against `truth`.
pub fn precision_recall(probs: &[f32], truth: &[bool], cut: f32) -> (f64, f64) {
    let (mut tp, mut fp, mut fneg) = (0u32, 0u32, 0u32);
    for (p, t) in probs.iter().zip(truth) {
        match (*p >= cut, *t) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fneg += 1,
            _ => {}
        }
    }
    (
        f64::from(tp) / f64::from((tp + fp).max(1)),
        f64::from(tp) / f64::from((tp + fneg).max(1)),
    )
}
