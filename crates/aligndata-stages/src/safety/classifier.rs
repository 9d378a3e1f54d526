//! The trained half of crisis detection: logistic regression on sentence embeddings.
//!
//! Why: hand-written rules match the phrasings their author thought of; people in crisis say it
//! in ways no rule list anticipates ("I keep picturing my own funeral and feeling relieved"). An
//! embedding carries the meaning, and a linear head trained on hand-written, labelled examples
//! (`test_data/safety/train.jsonl`: direct and indirect crisis inputs, and look-alikes and
//! ordinary distress as negatives, in many registers) separates the two far better than
//! similarity to a handful of exemplars did (see BENCHMARKS.md).
//!
//! The head is a binary logistic regression ([`LogisticHead`]) on the embedding joined with
//! hashed word and character n-grams ([`Lexical`]), trained here rather than through the label
//! stage's multi-label `LinearClassifier`: a few dozen lines of full-batch Adam, and a shipped
//! model whose JSON format does not move when the labeller's does. For MiniLM the embedding is
//! that of the crisis encoder ([`super::crisis_embedder`]): MiniLM fine-tuned on the same file by
//! two LoRA adapters, side by side. Three thresholds: [`CrisisModel::threshold`] makes a
//! detection on its own, [`CrisisModel::weak_threshold`] (lower) confirms a weak rule cue, and
//! below [`CrisisModel::strong_threshold`] a strong rule cue is cancelled. All are chosen on a
//! calibration set written apart from the training file, with the rules in the loop
//! ([`calibrate`]), never on a blind set; the probabilities there are scored exactly as
//! detection scores an input (whole text and best sentence, [`combine`]). Out-of-fold figures
//! on the training file are kept in the model for reference only (the fine-tuned encoder saw
//! every fold).
//!
//! **Shipped, not trained at load, for MiniLM.** The head is small (~100 kB of JSON,
//! [`BUILTIN_MINILM`]), the adapters too (~1 MB of f16), and training them takes minutes on two
//! cores, which every `respond` run would pay; so they are committed, the head with the hash of
//! what it came from ([`builtin_hash`]: the training file, the calibration set, the fitting and
//! adapter settings). A test fails when those change and the shipped model was not retrained
//! (it says how). Any other embedder (static, hashed) is trained and calibrated at load from
//! the same files: those embed them in milliseconds.

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use aligndata_models::embed::{Embedder, HashedEmbedder, l2_normalize};

/// The training file, built in (see the module docs).
pub const TRAIN_JSONL: &str = include_str!("../../test_data/safety/train.jsonl");

/// The calibration set, built in: labelled cases written apart from the training file (the
/// second to fifth blind sets, each spent as a test once measured), on which the thresholds are
/// chosen ([`calibrate`]).
pub const CALIBRATION_JSONL: &str = include_str!("../../test_data/safety/calibration.jsonl");

/// The shipped MiniLM model (see the module docs).
pub const BUILTIN_MINILM: &str = include_str!("crisis-minilm.json");

/// What the built-in model depends on: the training file, the calibration set, the fitting
/// settings and the adapters' training settings. A shipped model whose hash differs is stale.
pub fn builtin_hash() -> String {
    train_hash(&format!(
        "{TRAIN_JSONL}\n{CALIBRATION_JSONL}\n{:?}\n{:?}",
        FitOptions::default(),
        super::ADAPTERS
    ))
}

/// Sets `model`'s three thresholds (steps of 0.05) to those with which the whole detector,
/// rules and classifier ([`super::Detector::decide`]), reaches the most recall on `cases` at
/// precision ≥ [`CALIBRATION_PRECISION`]; among equals, the higher precision, then the higher
/// thresholds. When none reaches that precision, the most precise.
///
/// Why a separate set: out-of-fold scores on the training file are pessimistic in a way that
/// moves the cut-off, since that file is full of deliberately hard twins (a crisis message and
/// the same story without the crisis sentence), and with the fine-tuned encoder they are
/// optimistic (it saw every fold); a set written apart, like the inputs the detector will meet,
/// is the better judge of where to cut. Why a bar above the 0.9 target: every fresh blind set
/// so far scored lower than the calibration set (the rules' look-alike guards were written with
/// the calibration set in view), so the cut-off keeps a margin.
pub fn calibrate(
    model: &mut CrisisModel,
    embedder: &dyn Embedder,
    cases: &[Example],
) -> Result<()> {
    let check = super::ClassifierCheck::with_model(embedder, model.clone());
    let texts: Vec<&str> = cases.iter().map(|c| c.text.as_str()).collect();
    let probs = check.probabilities(&texts)?;
    let detector = super::Detector::default();
    let rules: Vec<_> = texts.iter().map(|t| detector.rules_for(t)).collect();
    // Compared in order: feasible, recall (or precision when not feasible), precision, solo
    // step, weak step.
    type Key = (bool, f64, f64, u32, u32, u32);
    let mut best: Option<(Key, f64, f64)> = None;
    let grid = (6..=19u32).flat_map(|solo| {
        (1..=solo).flat_map(move |weak| (0..=solo).map(move |strong| (solo, weak, strong)))
    });
    for (solo, weak, strong) in grid {
        let m = CrisisModel {
            threshold: solo as f32 * 0.05,
            weak_threshold: weak as f32 * 0.05,
            strong_threshold: strong as f32 * 0.05,
            ..model.clone()
        };
        let (mut tp, mut fp, mut fneg) = (0u32, 0u32, 0u32);
        for ((case, r), p) in cases.iter().zip(&rules).zip(&probs) {
            match (detector.decide_from(r.clone(), *p, &m).crisis, case.crisis) {
                (true, true) => tp += 1,
                (true, false) => fp += 1,
                (false, true) => fneg += 1,
                _ => {}
            }
        }
        let precision = f64::from(tp) / f64::from((tp + fp).max(1));
        let recall = f64::from(tp) / f64::from((tp + fneg).max(1));
        let feasible = precision >= CALIBRATION_PRECISION;
        let key = (
            feasible,
            if feasible { recall } else { precision },
            precision,
            solo,
            weak,
            strong,
        );
        if best
            .as_ref()
            .is_none_or(|(k, _, _)| key.partial_cmp(k) == Some(std::cmp::Ordering::Greater))
        {
            best = Some((key, precision, recall));
        }
    }
    if let Some(((_, _, _, solo, weak, strong), precision, recall)) = best {
        model.threshold = solo as f32 * 0.05;
        model.weak_threshold = weak as f32 * 0.05;
        model.strong_threshold = strong as f32 * 0.05;
        model.calibration = Some(Calibration {
            cases: cases.len(),
            precision: precision as f32,
            recall: recall as f32,
        });
    }
    Ok(())
}

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
    /// Probability below which it cancels a strong rule cue (0: never). With a classifier
    /// fine-tuned on the task, a strong cue it scores near zero is far more often a look-alike
    /// the guards missed than a crisis (see [`calibrate`]).
    #[serde(default)]
    pub strong_threshold: f32,
    /// Out-of-fold precision and recall on the training file at the classifier-alone cut-off
    /// chosen out of fold (before calibration; a reference for how separable the file is).
    pub cv_precision: f32,
    pub cv_recall: f32,
    /// Lexical features joined to the embedding, if any ([`features`]).
    #[serde(default)]
    pub lexical: Option<Lexical>,
    /// Where the thresholds came from when a calibration set chose them ([`calibrate`]).
    #[serde(default)]
    pub calibration: Option<Calibration>,
    /// The logistic head.
    pub head: LogisticHead,
}

/// Feature-hashed word and character n-grams ([`HashedEmbedder`] with `dim` buckets), scaled by
/// `weight` and joined to the embedding, the joined row renormalised.
///
/// Why: the embedding of a whole message carries its meaning but blurs the few words that decide
/// some inputs ("better off without me" against "better off without this job"); the n-grams keep
/// them, and the head weighs both.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Lexical {
    pub dim: usize,
    pub weight: f32,
}

/// Thresholds chosen on a labelled calibration set with the whole detector (rules and
/// classifier): the thresholds with the most recall at precision ≥ [`CALIBRATION_PRECISION`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Cases in the calibration set.
    pub cases: usize,
    /// The whole detector's precision and recall there at the chosen thresholds.
    pub precision: f32,
    pub recall: f32,
}

/// The feature rows of `texts`: the embedding, joined with [`Lexical`] features when given.
pub fn features(
    embedder: &dyn Embedder,
    lexical: Option<Lexical>,
    texts: &[&str],
) -> Result<Vec<Vec<f32>>> {
    let rows = embedder.embed(texts)?;
    let Some(lex) = lexical else {
        return Ok(rows);
    };
    let hashed = HashedEmbedder::new(lex.dim);
    let mut grams = vec![0f32; hashed.dim()];
    Ok(rows
        .into_iter()
        .zip(texts)
        .map(|(mut row, text)| {
            hashed.embed_into(text, &mut grams);
            row.extend(grams.iter().map(|x| x * lex.weight));
            l2_normalize(&mut row);
            row
        })
        .collect())
}

/// Binary logistic regression on (optionally, [`FitOptions::standardise`]) standardised
/// features.
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
/// L2 penalty with standardised features: 384 features, a few hundred examples; a weak penalty
/// memorises phrasings.
pub const L2: f32 = 0.02;

/// How the head is fitted, and on which features.
#[derive(Debug, Clone, Copy)]
pub struct FitOptions {
    /// L2 penalty on the weights.
    pub l2: f32,
    /// Standardise each feature (mean 0, variance 1) first; off, features are used as they are.
    /// Off suits hashed n-grams: standardising blows a rare bucket up to the weight of a common
    /// one.
    pub standardise: bool,
    /// Lexical features joined to the embedding.
    pub lexical: Option<Lexical>,
}

impl Default for FitOptions {
    /// The shipped model's settings, chosen on the calibration set (BENCHMARKS.md): the MiniLM
    /// embedding joined with 4,096 hashed n-gram buckets at weight 0.5, unstandardised, with a
    /// light penalty.
    fn default() -> Self {
        FitOptions {
            l2: 1e-4,
            standardise: false,
            lexical: Some(Lexical {
                dim: 4096,
                weight: 0.5,
            }),
        }
    }
}

impl LogisticHead {
    /// Fits on `rows` (all the same length) and `truth`, positives up-weighted by
    /// √(negatives / positives); full-batch Adam, deterministic.
    pub fn fit(rows: &[Vec<f32>], truth: &[bool]) -> Result<LogisticHead> {
        Self::fit_with(rows, truth, FitOptions::default())
    }

    /// [`LogisticHead::fit`] with explicit options.
    pub fn fit_with(rows: &[Vec<f32>], truth: &[bool], opts: FitOptions) -> Result<LogisticHead> {
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
        let (mean, scale): (Vec<f32>, Vec<f32>) = if opts.standardise {
            let scale = var.iter().map(|v| 1.0 / (v.sqrt() + 1e-6)).collect();
            (mean, scale)
        } else {
            (vec![0.0; dim], vec![1.0; dim])
        };
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
                *g = *g / total + opts.l2 * wv;
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
/// The precision [`calibrate`] holds the whole detector to on the calibration set: the target
/// (0.9) plus a margin for fresh text (see there).
pub const CALIBRATION_PRECISION: f64 = 0.95;
/// `weak_threshold`: the highest cut-off whose out-of-fold recall reaches this: a weak cue plus
/// a classifier that does not rule crisis out.
const WEAK_TARGET_RECALL: f64 = 0.95;

impl CrisisModel {
    /// Trains on `examples` embedded by `embedder`; thresholds from `FOLDS`-fold out-of-fold
    /// probabilities.
    pub fn train(embedder: &dyn Embedder, examples: &[Example], hash: &str) -> Result<CrisisModel> {
        Self::train_with(embedder, examples, hash, FitOptions::default())
    }

    /// [`CrisisModel::train`] with explicit fitting options.
    pub fn train_with(
        embedder: &dyn Embedder,
        examples: &[Example],
        hash: &str,
        opts: FitOptions,
    ) -> Result<CrisisModel> {
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
        let mut rows = features(embedder, opts.lexical, &texts)
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
            let m = LogisticHead::fit_with(&xtr, &ytr, opts)?;
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
        let head = LogisticHead::fit_with(&features, &truth, opts)?;
        Ok(CrisisModel {
            embedder: embedder.name().to_string(),
            train_hash: hash.to_string(),
            examples: examples.len(),
            threshold,
            weak_threshold,
            strong_threshold: 0.0,
            cv_precision: cv_precision as f32,
            cv_recall: cv_recall as f32,
            lexical: opts.lexical,
            calibration: None,
            head,
        })
    }

    /// Trains on the built-in training file, thresholds from the built-in calibration set.
    pub fn train_builtin(embedder: &dyn Embedder) -> Result<CrisisModel> {
        let examples = parse_examples(TRAIN_JSONL, "built-in safety/train.jsonl")?;
        let cases = parse_examples(CALIBRATION_JSONL, "built-in safety/calibration.jsonl")?;
        let mut model = Self::train(embedder, &examples, &builtin_hash())?;
        calibrate(&mut model, embedder, &cases)?;
        Ok(model)
    }

    /// The shipped model when it was trained on `embedder`, else one trained now.
    pub fn for_embedder(embedder: &dyn Embedder) -> Result<CrisisModel> {
        let shipped: CrisisModel =
            serde_json::from_str(BUILTIN_MINILM).context("the shipped crisis-minilm.json")?;
        shipped.head.validate()?;
        let dim = embedder.dim()
            + shipped
                .lexical
                .map_or(0, |l| HashedEmbedder::new(l.dim).dim());
        if shipped.embedder == embedder.name() && shipped.head.dim() == dim {
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
