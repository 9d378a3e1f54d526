//! The trained labeller's model: one-vs-rest L2-regularised logistic regression on embeddings.
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
    pub holdout: f64,
    /// Up-weight positives by √(negatives / positives).
    pub balance: bool,
    /// Seed of the shuffles and the split.
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 12,
            learning_rate: 0.01,
            l2: 1e-4,
            batch: 256,
            holdout: 0.15,
            balance: true,
            seed: 1,
        }
    }
}

/// A one-vs-rest linear classifier over fixed-length feature vectors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearClassifier {
    /// Label names, in output order.
    pub labels: Vec<String>,
    /// Feature count.
    pub dim: usize,
    /// Per-feature mean subtracted before scaling.
    pub mean: Vec<f32>,
    /// Per-feature multiplier (1 / standard deviation).
    pub scale: Vec<f32>,
    /// Per label, `dim` weights.
    pub weights: Vec<Vec<f32>>,
    /// Per label, the bias.
    pub bias: Vec<f32>,
    /// Per label, the probability at or above which the label is predicted.
    pub thresholds: Vec<f32>,
    /// Per label, F1 on the held-out split at its threshold (`None` without positives there).
    #[serde(default)]
    pub heldout_f1: Vec<Option<f32>>,
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

fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

impl LinearClassifier {
    /// Trains on `features` (one row per example, all of length `dim`) and `targets` (per example,
    /// the indices into `labels` that apply; empty = none). Holds out `config.holdout` of the
    /// examples to tune each label's threshold.
    pub fn train(
        labels: Vec<String>,
        features: &[Vec<f32>],
        targets: &[Vec<usize>],
        config: &TrainConfig,
    ) -> Result<LinearClassifier> {
        if labels.is_empty() {
            bail!("no labels to train");
        }
        if features.len() != targets.len() {
            bail!(
                "{} feature rows but {} target rows",
                features.len(),
                targets.len()
            );
        }
        if features.len() < 2 {
            bail!("need at least 2 labelled examples, got {}", features.len());
        }
        let dim = features[0].len();
        if dim == 0 || features.iter().any(|f| f.len() != dim) {
            bail!("feature rows must all have the same non-zero length");
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
        // Split.
        let mut order: Vec<usize> = (0..features.len()).collect();
        Rng::new(config.seed).shuffle(&mut order);
        let n_held = ((features.len() as f64) * config.holdout).round() as usize;
        let n_held = if config.holdout > 0.0 {
            n_held.clamp(1, features.len() - 1)
        } else {
            0
        };
        let (held, train) = order.split_at(n_held);

        // Standardise on the training split.
        let mut mean = vec![0f32; dim];
        for &i in train {
            for (m, x) in mean.iter_mut().zip(&features[i]) {
                *m += x;
            }
        }
        mean.iter_mut().for_each(|m| *m /= train.len() as f32);
        let mut var = vec![0f32; dim];
        for &i in train {
            for ((v, x), m) in var.iter_mut().zip(&features[i]).zip(&mean) {
                *v += (x - m) * (x - m);
            }
        }
        let scale: Vec<f32> = var
            .iter()
            .map(|v| 1.0 / ((v / train.len() as f32).sqrt() + 1e-6))
            .collect();
        let standardise = |row: &[f32]| -> Vec<f32> {
            row.iter()
                .zip(&mean)
                .zip(&scale)
                .map(|((x, m), s)| (x - m) * s)
                .collect()
        };
        let x_train: Vec<Vec<f32>> = train.iter().map(|&i| standardise(&features[i])).collect();
        let x_held: Vec<Vec<f32>> = held.iter().map(|&i| standardise(&features[i])).collect();

        let trained: Vec<(Vec<f32>, f32, f32, Option<f32>)> = (0..labels.len())
            .into_par_iter()
            .map(|label| {
                let y_train: Vec<bool> =
                    train.iter().map(|&i| targets[i].contains(&label)).collect();
                let y_held: Vec<bool> = held.iter().map(|&i| targets[i].contains(&label)).collect();
                let (w, b) = fit_binary(&x_train, &y_train, config, label as u64);
                let probs: Vec<f32> = x_held.iter().map(|x| sigmoid(dot(&w, x) + b)).collect();
                let (threshold, f1) = best_threshold(&probs, &y_held);
                (w, b, threshold, f1)
            })
            .collect();
        let mut model = LinearClassifier {
            labels,
            dim,
            mean,
            scale,
            weights: Vec::new(),
            bias: Vec::new(),
            thresholds: Vec::new(),
            heldout_f1: Vec::new(),
        };
        for (w, b, t, f1) in trained {
            model.weights.push(w);
            model.bias.push(b);
            model.thresholds.push(t);
            model.heldout_f1.push(f1);
        }
        Ok(model)
    }

    /// Checks that the shapes agree (a model read from a file may not).
    pub fn validate(&self) -> Result<()> {
        let k = self.labels.len();
        if self.mean.len() != self.dim
            || self.scale.len() != self.dim
            || self.weights.len() != k
            || self.bias.len() != k
            || self.thresholds.len() != k
            || self.weights.iter().any(|w| w.len() != self.dim)
        {
            bail!(
                "inconsistent classifier: {k} labels, dim {}, but the arrays disagree",
                self.dim
            );
        }
        Ok(())
    }

    /// Per label, the probability for one feature row (of length `dim`).
    pub fn probabilities(&self, features: &[f32]) -> Vec<f32> {
        let x: Vec<f32> = features
            .iter()
            .zip(&self.mean)
            .zip(&self.scale)
            .map(|((x, m), s)| (x - m) * s)
            .collect();
        self.weights
            .iter()
            .zip(&self.bias)
            .map(|(w, b)| sigmoid(dot(w, &x) + b))
            .collect()
    }

    /// Like [`LinearClassifier::predict`], but when no label reaches its threshold, the one
    /// closest to it (highest probability ÷ threshold): for label sets where every text has at
    /// least one label (GoEmotions has `neutral`), never for taxonomies where "none" is an answer.
    pub fn predict_at_least_one(&self, features: &[f32]) -> Vec<(usize, f32)> {
        let probs = self.probabilities(features);
        let found: Vec<(usize, f32)> = probs
            .iter()
            .enumerate()
            .filter(|(i, p)| self.thresholds.get(*i).is_some_and(|t| *p >= t))
            .map(|(i, p)| (i, *p))
            .collect();
        if !found.is_empty() {
            return found;
        }
        let ratio = |i: usize| probs[i] / self.thresholds.get(i).copied().unwrap_or(0.5).max(1e-6);
        (0..probs.len())
            .max_by(|&a, &b| ratio(a).total_cmp(&ratio(b)))
            .map(|i| vec![(i, probs[i])])
            .unwrap_or_default()
    }

    /// The labels whose probability reaches their threshold, as `(index, probability)`.
    pub fn predict(&self, features: &[f32]) -> Vec<(usize, f32)> {
        self.probabilities(features)
            .into_iter()
            .enumerate()
            .filter(|(i, p)| self.thresholds.get(*i).is_some_and(|t| p >= t))
            .collect()
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Mini-batch Adam on the weighted logistic loss with L2.
fn fit_binary(x: &[Vec<f32>], y: &[bool], config: &TrainConfig, salt: u64) -> (Vec<f32>, f32) {
    let dim = x.first().map_or(0, Vec::len);
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
                let (xi, yi) = (&x[i], y[i]);
                let p = sigmoid(dot(&w, xi) + b);
                let weight = if yi { pos_weight } else { 1.0 };
                let err = weight * (p - if yi { 1.0 } else { 0.0 });
                total_weight += weight;
                for (g, xv) in grad.iter_mut().zip(xi) {
                    *g += err * xv;
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
