//! The trained labeller's model: one-vs-rest L2-regularised logistic regression on sparse TF-IDF
//! features, embeddings, or both side by side (mini-batch Adam for embeddings alone, full-batch
//! L-BFGS when TF-IDF features are in; see [`Solver`]).
//!
//! Why this and not a fine-tuned transformer: the embedder is already the expensive, general part;
//! a linear head per label trains in seconds on a laptop's cores, needs no ML framework, is a few
//! kilobytes of JSON, and is what "a linear multi-label classifier per dimension" asks. Features
//! are standardised (per-feature mean and scale, stored in the model) so one learning rate fits
//! every embedder; training is mini-batch Adam, each label independently and in parallel.
//!
//! Labels are rare and unbalanced (GoEmotions' `grief` is 0.2% of texts), so a fixed 0.5 cut-off
//! would predict almost nothing: each label's threshold is tuned on a held-out split of the
//! training data to maximise that label's F1, and positives are up-weighted by √(neg/pos).

use anyhow::{Result, bail};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::tfidf::TfidfConfig;

/// How to train.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Passes over the training split.
    pub epochs: usize,
    /// Adam step size.
    pub learning_rate: f32,
    /// L2 penalty on the weights (not the bias), per example.
    pub l2: f32,
    /// Mini-batch size.
    pub batch: usize,
    /// Share of the examples held out to tune the thresholds (0 keeps 0.5 for every label).
    /// Ignored when `folds` ≥ 2.
    pub holdout: f64,
    /// When ≥ 2 (and there are at least two examples per fold): tune the thresholds on
    /// out-of-fold predictions of a `folds`-fold cross-validation over all examples, then refit
    /// on all of them (`folds` + 1 fits instead of one; every example both trains the model and
    /// tunes the thresholds).
    #[serde(default)]
    pub folds: usize,
    /// Up-weight positives by √(negatives / positives).
    pub balance: bool,
    /// Seed of the shuffles and the split.
    pub seed: u64,
    /// Multiplier of the standardised embedding features when TF-IDF features sit beside them
    /// (a TF-IDF row has unit length, a standardised embedding row has length √dim).
    #[serde(default = "one")]
    pub dense_weight: f32,
    /// TF-IDF word features beside (or instead of) the embedding; `None` = embedding only.
    #[serde(default)]
    pub tfidf: Option<TfidfConfig>,
    /// How to minimise the loss.
    #[serde(default)]
    pub solver: Solver,
}

/// The optimiser of the logistic loss.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Solver {
    /// Mini-batch Adam for `epochs` passes: fast on dense embeddings, and stops early, which
    /// regularises them.
    #[default]
    Adam,
    /// Full-batch L-BFGS to the optimum of the L2-penalised loss (`epochs` = at most this many
    /// iterations): what many sparse TF-IDF features need, since Adam's per-feature steps
    /// overfit rare words (measured: 0.43 against 0.47 on GoEmotions).
    Lbfgs,
}

fn one() -> f32 {
    1.0
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 12,
            learning_rate: 0.01,
            l2: 1e-4,
            batch: 256,
            holdout: 0.15,
            folds: 0,
            balance: true,
            seed: 1,
            dense_weight: 1.0,
            tfidf: None,
            solver: Solver::Adam,
        }
    }
}

impl TrainConfig {
    /// What `aligndata label train` uses: TF-IDF word features beside the embedding, with the
    /// settings chosen on GoEmotions' held-out train rows (BENCHMARKS.md).
    pub fn shipped() -> TrainConfig {
        TrainConfig {
            tfidf: Some(TfidfConfig::default()),
            dense_weight: 0.015,
            epochs: 100,
            // Chosen on GoEmotions' held-out train rows over 3.5e-6 … 5.6e-5 (0.486, 0.494,
            // 0.500, 0.505, 0.499): the peak; dev was only read afterwards (BENCHMARKS.md).
            l2: 2.8e-5,
            // Thresholds from out-of-fold scores, then a refit on every example: +0.010 macro-F1
            // on GoEmotions dev at this L2, for six fits instead of one.
            folds: 5,
            balance: false,
            solver: Solver::Lbfgs,
            ..TrainConfig::default()
        }
    }
}

/// One label's fit: (weights, bias), and the scores and truth its threshold is tuned on.
type FittedLabel = ((Vec<f32>, f32), Vec<f32>, Vec<bool>);

/// Feature rows in compressed sparse row form (one row per example, `(feature, value)` pairs).
#[derive(Debug, Clone, Default)]
pub struct Rows {
    indptr: Vec<usize>,
    indices: Vec<u32>,
    values: Vec<f32>,
}

impl Rows {
    /// No rows.
    pub fn new() -> Rows {
        Rows {
            indptr: vec![0],
            ..Rows::default()
        }
    }

    /// Appends a row.
    pub fn push(&mut self, row: &[(u32, f32)]) {
        if self.indptr.is_empty() {
            self.indptr.push(0);
        }
        for &(i, v) in row {
            self.indices.push(i);
            self.values.push(v);
        }
        self.indptr.push(self.indices.len());
    }

    /// Row count.
    pub fn len(&self) -> usize {
        self.indptr.len().saturating_sub(1)
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row `i` as feature indices and values.
    pub fn row(&self, i: usize) -> (&[u32], &[f32]) {
        let (a, b) = (self.indptr[i], self.indptr[i + 1]);
        (&self.indices[a..b], &self.values[a..b])
    }
}

/// A one-vs-rest linear classifier. Its input is `sparse` leading features used as they are
/// (TF-IDF; 0 for an embedding-only model) followed by `dim - sparse` dense features
/// (embeddings), standardised and multiplied by `dense_weight`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearClassifier {
    /// Label names, in output order.
    pub labels: Vec<String>,
    /// Feature count (sparse + dense).
    pub dim: usize,
    /// Leading features that are not standardised (TF-IDF). Absent in format-1 models.
    #[serde(default)]
    pub sparse: usize,
    /// Multiplier of the standardised dense features. Absent in format-1 models.
    #[serde(default = "one")]
    pub dense_weight: f32,
    /// Per dense feature, the mean subtracted before scaling.
    pub mean: Vec<f32>,
    /// Per dense feature, the multiplier (1 / standard deviation).
    pub scale: Vec<f32>,
    /// Per label, `dim` weights. Written as base64 of little-endian f16 (a quarter of the size
    /// of JSON numbers; the F1 it costs is measured in BENCHMARKS.md); read as either that or
    /// a list of numbers (format 1).
    #[serde(with = "packed")]
    pub weights: Vec<Vec<f32>>,
    /// Per label, the bias.
    pub bias: Vec<f32>,
    /// Per label, the probability at or above which the label is predicted.
    pub thresholds: Vec<f32>,
    /// Per label, F1 at its threshold on the held-out split, or out of fold with
    /// [`TrainConfig::folds`] (`None` without positives there).
    #[serde(default)]
    pub heldout_f1: Vec<Option<f32>>,
}

/// Weight vectors as base64 f16 strings (written) or number lists (format 1, read only).
mod packed {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Packed {
        Floats(Vec<f32>),
        F16(String),
    }

    pub fn serialize<S: Serializer>(weights: &[Vec<f32>], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(weights.iter().map(|w| {
            let bytes: Vec<u8> = w
                .iter()
                .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
                .collect();
            STANDARD.encode(bytes)
        }))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<f32>>, D::Error> {
        let rows: Vec<Packed> = Vec::deserialize(d)?;
        rows.into_iter()
            .map(|row| match row {
                Packed::Floats(f) => Ok(f),
                Packed::F16(text) => {
                    let bytes = STANDARD
                        .decode(text.as_bytes())
                        .map_err(serde::de::Error::custom)?;
                    if bytes.len() % 2 != 0 {
                        return Err(serde::de::Error::custom("packed weights of odd length"));
                    }
                    Ok(bytes
                        .chunks_exact(2)
                        .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                        .collect())
                }
            })
            .collect()
    }
}

/// Splitmix64: a tiny deterministic generator for shuffles and splits.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub(crate) fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}

/// The held-out and training example indices of `n` examples (the split `train` uses).
pub fn holdout_split(n: usize, holdout: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut order: Vec<usize> = (0..n).collect();
    Rng::new(seed).shuffle(&mut order);
    let n_held = if holdout > 0.0 && n > 1 {
        (((n as f64) * holdout).round() as usize).clamp(1, n - 1)
    } else {
        0
    };
    let train = order.split_off(n_held);
    (order, train)
}

fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

impl LinearClassifier {
    /// Trains on dense `features` (one row per example, all of length `dim`) and `targets` (per
    /// example, the indices into `labels` that apply; empty = none). Holds out
    /// `config.holdout` of the examples to tune each label's threshold.
    pub fn train(
        labels: Vec<String>,
        features: &[Vec<f32>],
        targets: &[Vec<usize>],
        config: &TrainConfig,
    ) -> Result<LinearClassifier> {
        LinearClassifier::train_mixed(labels, None, Some(features), targets, config)
    }

    /// Trains on sparse features (`sparse`: the rows and their feature count, e.g. TF-IDF),
    /// dense features, or both side by side; see [`LinearClassifier::train`].
    pub fn train_mixed(
        labels: Vec<String>,
        sparse: Option<(&Rows, usize)>,
        dense: Option<&[Vec<f32>]>,
        targets: &[Vec<usize>],
        config: &TrainConfig,
    ) -> Result<LinearClassifier> {
        if labels.is_empty() {
            bail!("no labels to train");
        }
        let n = match (sparse, dense) {
            (Some((rows, _)), Some(d)) if rows.len() != d.len() => {
                bail!("{} sparse rows but {} dense rows", rows.len(), d.len())
            }
            (Some((rows, _)), _) => rows.len(),
            (None, Some(d)) => d.len(),
            (None, None) => bail!("no features to train on"),
        };
        if n != targets.len() {
            bail!("{n} feature rows but {} target rows", targets.len());
        }
        if n < 2 {
            bail!("need at least 2 labelled examples, got {n}");
        }
        let n_sparse = sparse.map_or(0, |s| s.1);
        let n_dense = dense.map_or(0, |d| d[0].len());
        if let Some(d) = dense
            && (n_dense == 0 || d.iter().any(|f| f.len() != n_dense))
        {
            bail!("feature rows must all have the same non-zero length");
        }
        if let Some((rows, dim)) = sparse
            && rows.indices.iter().any(|&i| i as usize >= dim)
        {
            bail!("a sparse feature index is out of range for {dim} features");
        }
        if let Some(bad) = targets.iter().flatten().find(|&&t| t >= labels.len()) {
            bail!(
                "target index {bad} is out of range for {} labels",
                labels.len()
            );
        }
        if config.epochs == 0 || config.batch == 0 || !(0.0..1.0).contains(&config.holdout) {
            bail!("epochs and batch must be ≥ 1 and holdout in [0, 1)");
        }
        // Too few examples for every fold to hold two: the held-out split instead (a tiny set
        // trains either way; folds of one example would tune nothing).
        let cross_validate = config.folds >= 2 && n >= 2 * config.folds;
        // With cross-validation every example trains the final model; otherwise the held-out
        // share only tunes the thresholds.
        let (held, train) = if cross_validate {
            (Vec::new(), (0..n).collect())
        } else {
            holdout_split(n, config.holdout, config.seed)
        };

        // Standardise the dense features on the training split.
        let mut mean = vec![0f32; n_dense];
        let mut scale = vec![1f32; n_dense];
        if let Some(d) = dense {
            for &i in &train {
                for (m, x) in mean.iter_mut().zip(&d[i]) {
                    *m += x;
                }
            }
            mean.iter_mut().for_each(|m| *m /= train.len() as f32);
            let mut var = vec![0f32; n_dense];
            for &i in &train {
                for ((v, x), m) in var.iter_mut().zip(&d[i]).zip(&mean) {
                    *v += (x - m) * (x - m);
                }
            }
            scale = var
                .iter()
                .map(|v| 1.0 / ((v / train.len() as f32).sqrt() + 1e-6))
                .collect();
        }
        let k = labels.len();
        let mut model = LinearClassifier {
            labels,
            dim: n_sparse + n_dense,
            sparse: n_sparse,
            dense_weight: if sparse.is_some() {
                config.dense_weight
            } else {
                1.0
            },
            mean,
            scale,
            weights: Vec::new(),
            bias: Vec::new(),
            thresholds: Vec::new(),
            heldout_f1: Vec::new(),
        };
        let input_of = |i: usize| -> Vec<(u32, f32)> {
            let s: Vec<(u32, f32)> = sparse.map_or_else(Vec::new, |(rows, _)| {
                let (idx, val) = rows.row(i);
                idx.iter().copied().zip(val.iter().copied()).collect()
            });
            model.input(&s, dense.map_or(&[][..], |d| &d[i]))
        };
        let rows_of = |ids: &[usize]| -> Rows {
            let mut rows = Rows::new();
            for &i in ids {
                rows.push(&input_of(i));
            }
            rows
        };
        let x_train = rows_of(&train);
        let dim = model.dim;
        let truth = |label: usize, ids: &[usize]| -> Vec<bool> {
            ids.iter().map(|&i| targets[i].contains(&label)).collect()
        };
        // One label's fit, rounded to what the model file keeps (f16), so the thresholds are
        // tuned on, and a reloaded model gives, exactly these weights.
        let fit = |x: &Rows, y: &[bool], label: usize| -> (Vec<f32>, f32) {
            let (mut w, b) = match config.solver {
                Solver::Adam => fit_binary(x, dim, y, config, label as u64),
                Solver::Lbfgs => fit_lbfgs(x, dim, y, config),
            };
            w.iter_mut()
                .for_each(|x| *x = half::f16::from_f32(*x).to_f32());
            (w, b)
        };
        let predict = |(w, b): &(Vec<f32>, f32), x: &Rows| -> Vec<f32> {
            (0..x.len())
                .map(|r| sigmoid(sparse_dot(w, x.row(r)) + b))
                .collect()
        };

        // Per label: the final weights, and the scores and truth its threshold is tuned on.
        let trained: Vec<FittedLabel> = if cross_validate {
            let mut order: Vec<usize> = (0..n).collect();
            Rng::new(config.seed).shuffle(&mut order);
            let mut out_of_fold = vec![vec![0f32; n]; k];
            for fold in 0..config.folds {
                let (mut held_ids, mut fit_ids) = (Vec::new(), Vec::new());
                for (pos, &i) in order.iter().enumerate() {
                    if pos % config.folds == fold {
                        held_ids.push(i);
                    } else {
                        fit_ids.push(i);
                    }
                }
                let (x_fit, x_held) = (rows_of(&fit_ids), rows_of(&held_ids));
                let scores: Vec<Vec<f32>> = (0..k)
                    .into_par_iter()
                    .map(|label| predict(&fit(&x_fit, &truth(label, &fit_ids), label), &x_held))
                    .collect();
                for (label, s) in scores.into_iter().enumerate() {
                    for (&i, p) in held_ids.iter().zip(s) {
                        out_of_fold[label][i] = p;
                    }
                }
            }
            let all: Vec<usize> = (0..n).collect();
            out_of_fold
                .into_par_iter()
                .enumerate()
                .map(|(label, scores)| {
                    let final_fit = fit(&x_train, &truth(label, &train), label);
                    (final_fit, scores, truth(label, &all))
                })
                .collect()
        } else {
            let x_held = rows_of(&held);
            (0..k)
                .into_par_iter()
                .map(|label| {
                    let w = fit(&x_train, &truth(label, &train), label);
                    let scores = predict(&w, &x_held);
                    (w, scores, truth(label, &held))
                })
                .collect()
        };
        for ((w, b), scores, y) in trained {
            let (threshold, f1) = best_threshold(&scores, &y);
            model.weights.push(w);
            model.bias.push(b);
            model.thresholds.push(threshold);
            model.heldout_f1.push(f1);
        }
        Ok(model)
    }

    /// Checks that the shapes agree (a model read from a file may not).
    pub fn validate(&self) -> Result<()> {
        let k = self.labels.len();
        let n_dense = self.dim.checked_sub(self.sparse);
        if n_dense.is_none_or(|d| self.mean.len() != d || self.scale.len() != d)
            || self.weights.len() != k
            || self.bias.len() != k
            || self.thresholds.len() != k
            || self.weights.iter().any(|w| w.len() != self.dim)
        {
            bail!(
                "inconsistent classifier: {k} labels, dim {} ({} sparse), but the arrays disagree",
                self.dim,
                self.sparse
            );
        }
        Ok(())
    }

    /// Dense features this classifier expects (the embedding's length; 0 for TF-IDF only).
    pub fn dense_dim(&self) -> usize {
        self.dim - self.sparse
    }

    /// The classifier's input row from sparse features (indices below `sparse`) and dense
    /// features (of length [`LinearClassifier::dense_dim`]).
    pub fn input(&self, sparse: &[(u32, f32)], dense: &[f32]) -> Vec<(u32, f32)> {
        let mut row = Vec::with_capacity(sparse.len() + dense.len());
        row.extend(sparse.iter().filter(|p| (p.0 as usize) < self.sparse));
        row.extend(
            dense
                .iter()
                .zip(&self.mean)
                .zip(&self.scale)
                .enumerate()
                .map(|(j, ((x, m), s))| {
                    ((self.sparse + j) as u32, (x - m) * s * self.dense_weight)
                }),
        );
        row
    }

    /// Per label, the probability for one input row (from [`LinearClassifier::input`]).
    pub fn probabilities_of(&self, input: &[(u32, f32)]) -> Vec<f32> {
        self.weights
            .iter()
            .zip(&self.bias)
            .map(|(w, b)| {
                let z: f32 = input.iter().map(|&(i, v)| w[i as usize] * v).sum();
                sigmoid(z + b)
            })
            .collect()
    }

    /// Per label, the probability for dense features only (an embedding-only model).
    pub fn probabilities(&self, features: &[f32]) -> Vec<f32> {
        self.probabilities_of(&self.input(&[], features))
    }

    /// Like [`LinearClassifier::predict_of`], but when no label reaches its threshold, the one
    /// closest to it (highest probability ÷ threshold): for label sets where every text has at
    /// least one label (GoEmotions has `neutral`), never for taxonomies where "none" is an answer.
    pub fn predict_at_least_one_of(&self, input: &[(u32, f32)]) -> Vec<(usize, f32)> {
        let probs = self.probabilities_of(input);
        let found = self.over_threshold(&probs);
        if !found.is_empty() {
            return found;
        }
        let ratio = |i: usize| probs[i] / self.thresholds.get(i).copied().unwrap_or(0.5).max(1e-6);
        (0..probs.len())
            .max_by(|&a, &b| ratio(a).total_cmp(&ratio(b)))
            .map(|i| vec![(i, probs[i])])
            .unwrap_or_default()
    }

    /// [`LinearClassifier::predict_at_least_one_of`] for dense features only.
    pub fn predict_at_least_one(&self, features: &[f32]) -> Vec<(usize, f32)> {
        self.predict_at_least_one_of(&self.input(&[], features))
    }

    fn over_threshold(&self, probs: &[f32]) -> Vec<(usize, f32)> {
        probs
            .iter()
            .enumerate()
            .filter(|(i, p)| self.thresholds.get(*i).is_some_and(|t| *p >= t))
            .map(|(i, p)| (i, *p))
            .collect()
    }

    /// The labels whose probability reaches their threshold, as `(index, probability)`.
    pub fn predict_of(&self, input: &[(u32, f32)]) -> Vec<(usize, f32)> {
        self.over_threshold(&self.probabilities_of(input))
    }

    /// [`LinearClassifier::predict_of`] for dense features only.
    pub fn predict(&self, features: &[f32]) -> Vec<(usize, f32)> {
        self.predict_of(&self.input(&[], features))
    }
}

fn sparse_dot(w: &[f32], (idx, val): (&[u32], &[f32])) -> f32 {
    idx.iter().zip(val).map(|(&i, v)| w[i as usize] * v).sum()
}

/// Mini-batch Adam on the weighted logistic loss with L2, over sparse rows (a dense row is a
/// sparse row with every index).
fn fit_binary(
    x: &Rows,
    dim: usize,
    y: &[bool],
    config: &TrainConfig,
    salt: u64,
) -> (Vec<f32>, f32) {
    let pos = y.iter().filter(|&&v| v).count();
    let neg = y.len() - pos;
    let pos_weight = if config.balance && pos > 0 {
        ((neg as f32) / (pos as f32)).sqrt().max(1.0)
    } else {
        1.0
    };
    let mut w = vec![0f32; dim];
    let prior = ((pos as f32 + 0.5) / (y.len() as f32 + 1.0)).clamp(1e-4, 1.0 - 1e-4);
    let mut b = (prior / (1.0 - prior)).ln();
    let (mut m, mut v) = (vec![0f32; dim + 1], vec![0f32; dim + 1]);
    let (beta1, beta2, eps) = (0.9f32, 0.999f32, 1e-8f32);
    let mut grad = vec![0f32; dim + 1];
    let mut order: Vec<usize> = (0..x.len()).collect();
    let mut rng = Rng::new(config.seed.wrapping_mul(31).wrapping_add(salt));
    let mut step = 0i32;
    for _ in 0..config.epochs {
        rng.shuffle(&mut order);
        for chunk in order.chunks(config.batch) {
            grad.iter_mut().for_each(|g| *g = 0.0);
            let mut total_weight = 0f32;
            for &i in chunk {
                let row = x.row(i);
                let yi = y[i];
                let p = sigmoid(sparse_dot(&w, row) + b);
                let weight = if yi { pos_weight } else { 1.0 };
                let err = weight * (p - if yi { 1.0 } else { 0.0 });
                total_weight += weight;
                for (&j, xv) in row.0.iter().zip(row.1) {
                    grad[j as usize] += err * xv;
                }
                grad[dim] += err;
            }
            let inv = 1.0 / total_weight.max(1.0);
            for (g, wv) in grad.iter_mut().zip(&w) {
                *g = *g * inv + config.l2 * wv;
            }
            grad[dim] *= inv;
            step += 1;
            let (c1, c2) = (1.0 - beta1.powi(step), 1.0 - beta2.powi(step));
            for j in 0..=dim {
                m[j] = beta1 * m[j] + (1.0 - beta1) * grad[j];
                v[j] = beta2 * v[j] + (1.0 - beta2) * grad[j] * grad[j];
                let delta = config.learning_rate * (m[j] / c1) / ((v[j] / c2).sqrt() + eps);
                if j == dim {
                    b -= delta;
                } else {
                    w[j] -= delta;
                }
            }
        }
    }
    (w, b)
}

/// The positive weight and the loss and gradient of the weighted logistic loss with L2
/// (mean over examples, penalty `l2 / 2 · |w|²`), at `theta` = weights then bias.
fn loss_and_grad(
    x: &Rows,
    y: &[bool],
    pos_weight: f32,
    l2: f32,
    theta: &[f32],
    grad: &mut [f32],
) -> f64 {
    let dim = theta.len() - 1;
    let (w, b) = (&theta[..dim], theta[dim]);
    grad.iter_mut().for_each(|g| *g = 0.0);
    let mut loss = 0f64;
    let mut total = 0f64;
    for (i, &yi) in y.iter().enumerate() {
        let row = x.row(i);
        let z = sparse_dot(w, row) + b;
        let weight = if yi { pos_weight } else { 1.0 };
        // log(1 + e^-z) for positives, log(1 + e^z) for negatives, computed stably.
        let m = if yi { -z } else { z };
        loss += weight as f64 * (m.max(0.0) + (-m.abs()).exp().ln_1p()) as f64;
        total += weight as f64;
        let err = weight * (sigmoid(z) - if yi { 1.0 } else { 0.0 });
        for (&j, v) in row.0.iter().zip(row.1) {
            grad[j as usize] += err * v;
        }
        grad[dim] += err;
    }
    let inv = (1.0 / total.max(1.0)) as f32;
    let mut penalty = 0f64;
    for (g, wv) in grad[..dim].iter_mut().zip(w) {
        *g = *g * inv + l2 * wv;
        penalty += (wv * wv) as f64;
    }
    grad[dim] *= inv;
    loss / total.max(1.0) + 0.5 * l2 as f64 * penalty
}

/// Full-batch L-BFGS (memory 10, backtracking Armijo line search) on the L2-penalised
/// weighted logistic loss. Hand-written: 60 lines, and the optimisation crates want dense
/// matrices of their own types.
fn fit_lbfgs(x: &Rows, dim: usize, y: &[bool], config: &TrainConfig) -> (Vec<f32>, f32) {
    const MEMORY: usize = 10;
    let pos = y.iter().filter(|&&v| v).count();
    let neg = y.len() - pos;
    let pos_weight = if config.balance && pos > 0 {
        ((neg as f32) / (pos as f32)).sqrt().max(1.0)
    } else {
        1.0
    };
    let dot64 = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x * y) as f64).sum::<f64>();
    let mut theta = vec![0f32; dim + 1];
    let prior = ((pos as f32 + 0.5) / (y.len() as f32 + 1.0)).clamp(1e-4, 1.0 - 1e-4);
    theta[dim] = (prior / (1.0 - prior)).ln();
    let mut grad = vec![0f32; dim + 1];
    let mut loss = loss_and_grad(x, y, pos_weight, config.l2, &theta, &mut grad);
    let mut history: std::collections::VecDeque<(Vec<f32>, Vec<f32>, f64)> =
        std::collections::VecDeque::new();
    let mut new_grad = vec![0f32; dim + 1];
    let mut candidate = vec![0f32; dim + 1];
    for _ in 0..config.epochs {
        // Two-loop recursion: direction = -H·grad.
        let mut q: Vec<f32> = grad.clone();
        let mut alphas = Vec::with_capacity(history.len());
        for (s, yv, rho) in history.iter().rev() {
            let a = rho * dot64(s, &q);
            q.iter_mut()
                .zip(yv)
                .for_each(|(qi, yi)| *qi -= (a as f32) * yi);
            alphas.push(a);
        }
        if let Some((s, yv, _)) = history.back() {
            let gamma = (dot64(s, yv) / dot64(yv, yv).max(1e-30)) as f32;
            q.iter_mut().for_each(|qi| *qi *= gamma);
        }
        for ((s, yv, rho), a) in history.iter().zip(alphas.iter().rev()) {
            let bcoef = rho * dot64(yv, &q);
            q.iter_mut()
                .zip(s)
                .for_each(|(qi, si)| *qi += ((a - bcoef) as f32) * si);
        }
        let direction: Vec<f32> = q.iter().map(|v| -v).collect();
        let mut slope = dot64(&grad, &direction);
        let direction = if slope >= 0.0 {
            // Not a descent direction: restart from the gradient.
            history.clear();
            slope = -dot64(&grad, &grad);
            grad.iter().map(|g| -g).collect()
        } else {
            direction
        };
        let mut step = if history.is_empty() {
            (1.0 / dot64(&grad, &grad).sqrt().max(1e-12)).min(1.0) as f32
        } else {
            1.0
        };
        let mut accepted = false;
        for _ in 0..30 {
            candidate
                .iter_mut()
                .zip(&theta)
                .zip(&direction)
                .for_each(|((c, t), d)| *c = t + step * d);
            let new_loss = loss_and_grad(x, y, pos_weight, config.l2, &candidate, &mut new_grad);
            if new_loss <= loss + 1e-4 * step as f64 * slope {
                let s: Vec<f32> = candidate.iter().zip(&theta).map(|(c, t)| c - t).collect();
                let yv: Vec<f32> = new_grad.iter().zip(&grad).map(|(n, g)| n - g).collect();
                let sy = dot64(&s, &yv);
                if sy > 1e-12 {
                    if history.len() == MEMORY {
                        history.pop_front();
                    }
                    history.push_back((s, yv, 1.0 / sy));
                }
                let improvement = loss - new_loss;
                std::mem::swap(&mut theta, &mut candidate);
                std::mem::swap(&mut grad, &mut new_grad);
                loss = new_loss;
                accepted = improvement > 1e-9 * loss.abs().max(1e-12);
                break;
            }
            step *= 0.5;
        }
        if !accepted {
            break;
        }
    }
    let b = theta.pop().unwrap_or(0.0);
    (theta, b)
}

/// The cut-off that maximises F1 on `(probs, truth)`, and that F1; (0.5, None) without positives.
pub fn best_threshold(probs: &[f32], truth: &[bool]) -> (f32, Option<f32>) {
    let positives = truth.iter().filter(|&&t| t).count();
    if positives == 0 {
        return (0.5, None);
    }
    let mut pairs: Vec<(f32, bool)> = probs.iter().copied().zip(truth.iter().copied()).collect();
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (mut tp, mut fp) = (0usize, 0usize);
    let (mut best_f1, mut best_t) = (0f32, 0.5f32);
    for (i, &(p, t)) in pairs.iter().enumerate() {
        if t {
            tp += 1;
        } else {
            fp += 1;
        }
        // Only cut between distinct scores.
        if pairs.get(i + 1).is_some_and(|next| next.0 == p) {
            continue;
        }
        let f1 = 2.0 * tp as f32 / (2 * tp + fp + (positives - tp)) as f32;
        if f1 > best_f1 {
            best_f1 = f1;
            let next = pairs.get(i + 1).map_or(0.0, |n| n.0);
            best_t = (p + next) / 2.0;
        }
    }
    (best_t, Some(best_f1))
}

/// Per-label F1 and their mean, for predictions and truths given as label-index sets.
pub fn f1_scores(
    n_labels: usize,
    predicted: &[Vec<usize>],
    truth: &[Vec<usize>],
) -> (Vec<f64>, f64) {
    let mut tp = vec![0u64; n_labels];
    let mut fp = vec![0u64; n_labels];
    let mut fn_ = vec![0u64; n_labels];
    for (p, t) in predicted.iter().zip(truth) {
        for l in 0..n_labels {
            match (p.contains(&l), t.contains(&l)) {
                (true, true) => tp[l] += 1,
                (true, false) => fp[l] += 1,
                (false, true) => fn_[l] += 1,
                _ => {}
            }
        }
    }
    let f1: Vec<f64> = (0..n_labels)
        .map(|l| {
            let denom = 2 * tp[l] + fp[l] + fn_[l];
            if denom == 0 {
                0.0
            } else {
                2.0 * tp[l] as f64 / denom as f64
            }
        })
        .collect();
    let macro_f1 = if n_labels == 0 {
        0.0
    } else {
        f1.iter().sum::<f64>() / n_labels as f64
    };
    (f1, macro_f1)
}
