//! Zero-shot labelling by similarity to prototypes built from the label's own words.
//!
//! Each label (a taxonomy value) is described by a few texts: its description, its keywords
//! joined, and its examples. They are embedded once; a record scores against a label either by
//! cosine to the **mean** of those unit vectors ([`PrototypeMode::Mean`]) or by its **max** cosine
//! over them ([`PrototypeMode::Max`]); `eval_label` measures which is better per embedder.
//!
//! Raw cosines mean different things under different embedders (hashed n-grams rarely pass 0.3,
//! MiniLM rarely falls below 0.1), so the "none of these" cut-off is calibrated from the label
//! texts themselves, with no labelled data: for each label text, its leave-one-out similarity to
//! its own label (how close a true member looks) and its similarity to the other labels (how close
//! a non-member looks); the threshold is the midpoint of the lower quartile of the first and the
//! upper quartile of the second. Confidences are a softmax over the labels' cosines with a
//! temperature, so they sum to one within a dimension.

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use aligndata_models::embed::{Embedder, dot, l2_normalize};

/// How a label's texts become a score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrototypeMode {
    /// Cosine to the normalised mean of the label's text embeddings.
    #[default]
    Mean,
    /// Highest cosine to any one of the label's texts.
    Max,
}

impl std::str::FromStr for PrototypeMode {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "mean" => Ok(PrototypeMode::Mean),
            "max" => Ok(PrototypeMode::Max),
            other => bail!("unknown prototype mode `{other}`\nhint: mean or max"),
        }
    }
}

/// Settings of the prototype labeller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrototypeConfig {
    /// Mean or max.
    pub mode: PrototypeMode,
    /// Softmax temperature over cosines (smaller = more peaked confidences).
    pub temperature: f32,
    /// A fixed "none of these" cut-off instead of the calibrated one.
    pub min_similarity: Option<f32>,
    /// Besides the best label, also give labels within this cosine of it (and above the cut-off).
    pub margin: f32,
}

impl Default for PrototypeConfig {
    fn default() -> Self {
        PrototypeConfig {
            mode: PrototypeMode::Mean,
            temperature: 0.05,
            min_similarity: None,
            margin: 0.0,
        }
    }
}

/// The prototypes of one group of mutually exclusive-ish labels (one taxonomy dimension).
#[derive(Debug, Clone)]
pub struct Prototypes {
    /// Label names, in score order.
    pub labels: Vec<String>,
    /// Per label, the unit vectors of its texts.
    texts: Vec<Vec<Vec<f32>>>,
    /// Per label, the normalised mean.
    means: Vec<Vec<f32>>,
    /// The settings.
    pub config: PrototypeConfig,
    /// The "none of these" cut-off in effect.
    pub threshold: f32,
}

impl Prototypes {
    /// Embeds each label's texts (empty texts skipped) and calibrates the cut-off.
    pub fn build(
        embedder: &dyn Embedder,
        labels: &[(String, Vec<String>)],
        config: PrototypeConfig,
    ) -> Result<Self> {
        if labels.is_empty() {
            bail!("no labels to build prototypes for");
        }
        let mut flat: Vec<&str> = Vec::new();
        let mut owner: Vec<usize> = Vec::new();
        for (i, (name, texts)) in labels.iter().enumerate() {
            let usable: Vec<&str> = texts
                .iter()
                .map(|t| t.trim())
                .filter(|t| !t.is_empty())
                .collect();
            if usable.is_empty() {
                // Fall back to the label's name.
                flat.push(name.as_str());
                owner.push(i);
            }
            for t in usable {
                flat.push(t);
                owner.push(i);
            }
        }
        let vectors = embedder.embed(&flat)?;
        let mut texts: Vec<Vec<Vec<f32>>> = vec![Vec::new(); labels.len()];
        for (v, &o) in vectors.into_iter().zip(&owner) {
            texts[o].push(v);
        }
        let means = texts.iter().map(|vs| mean_unit(vs)).collect();
        let mut protos = Prototypes {
            labels: labels.iter().map(|(n, _)| n.clone()).collect(),
            texts,
            means,
            config: config.clone(),
            threshold: 0.0,
        };
        protos.threshold = match config.min_similarity {
            Some(t) => t,
            None => protos.calibrate(),
        };
        Ok(protos)
    }

    fn calibrate(&self) -> f32 {
        let mut inside = Vec::new();
        let mut outside = Vec::new();
        for (i, vs) in self.texts.iter().enumerate() {
            for (k, v) in vs.iter().enumerate() {
                if vs.len() > 1 {
                    let own = match self.config.mode {
                        PrototypeMode::Mean => {
                            let others: Vec<Vec<f32>> = vs
                                .iter()
                                .enumerate()
                                .filter(|(j, _)| *j != k)
                                .map(|(_, x)| x.clone())
                                .collect();
                            dot(v, &mean_unit(&others))
                        }
                        PrototypeMode::Max => vs
                            .iter()
                            .enumerate()
                            .filter(|(j, _)| *j != k)
                            .map(|(_, x)| dot(v, x))
                            .fold(f32::MIN, f32::max),
                    };
                    inside.push(own);
                }
                for j in 0..self.labels.len() {
                    if j != i {
                        outside.push(self.score_one(v, j));
                    }
                }
            }
        }
        match (quantile(&mut inside, 0.25), quantile(&mut outside, 0.75)) {
            (Some(a), Some(b)) => (a + b) / 2.0,
            (None, Some(b)) => b,
            (Some(a), None) => a / 2.0,
            (None, None) => 0.0,
        }
    }

    fn score_one(&self, x: &[f32], label: usize) -> f32 {
        match self.config.mode {
            PrototypeMode::Mean => dot(x, &self.means[label]),
            PrototypeMode::Max => self.texts[label]
                .iter()
                .map(|t| dot(x, t))
                .fold(f32::MIN, f32::max),
        }
    }

    /// Cosine score per label for one unit vector.
    pub fn scores(&self, x: &[f32]) -> Vec<f32> {
        (0..self.labels.len())
            .map(|l| self.score_one(x, l))
            .collect()
    }

    /// The labels given to one unit vector as `(index, confidence)`, best first; empty = none.
    pub fn predict(&self, x: &[f32]) -> Vec<(usize, f32)> {
        let scores = self.scores(x);
        let probs = softmax(&scores, self.config.temperature);
        let Some((best, &top)) = scores.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)) else {
            return Vec::new();
        };
        if top < self.threshold {
            return Vec::new();
        }
        let mut out = vec![(best, probs[best])];
        if self.config.margin > 0.0 {
            for (i, &s) in scores.iter().enumerate() {
                if i != best && s >= self.threshold && top - s <= self.config.margin {
                    out.push((i, probs[i]));
                }
            }
            out[1..].sort_by(|a, b| b.1.total_cmp(&a.1));
        }
        out
    }
}

fn mean_unit(vs: &[Vec<f32>]) -> Vec<f32> {
    let dim = vs.first().map_or(0, Vec::len);
    let mut m = vec![0f32; dim];
    for v in vs {
        for (a, b) in m.iter_mut().zip(v) {
            *a += b;
        }
    }
    l2_normalize(&mut m);
    m
}

fn quantile(xs: &mut [f32], q: f64) -> Option<f32> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f32::total_cmp);
    let idx = ((xs.len() - 1) as f64 * q).round() as usize;
    xs.get(idx).copied()
}

/// Softmax of `scores / temperature`.
pub fn softmax(scores: &[f32], temperature: f32) -> Vec<f32> {
    let t = temperature.max(1e-4);
    let max = scores.iter().copied().fold(f32::MIN, f32::max);
    let exps: Vec<f32> = scores.iter().map(|s| ((s - max) / t).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.iter()
        .map(|e| e / sum.max(f32::MIN_POSITIVE))
        .collect()
}
