//! Sparse TF-IDF word unigram + bigram features for the trained labeller.
//!
//! Why: frozen small sentence embeddings blur the words that carry an emotion ("thanks", "lol",
//! "sorry for your loss"); a linear model over the words themselves reads them directly. On
//! GoEmotions this feature set alone beats MiniLM ⊕ WordLlama (BENCHMARKS.md). It follows
//! scikit-learn's `TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)` so the two can be
//! compared feature for feature: lowercased tokens of two or more word characters, bigrams of
//! adjacent tokens joined by a space, terms kept when at least `min_df` texts have them,
//! smoothed idf `ln((1 + n) / (1 + df)) + 1`, tf `1 + ln(count)`, rows scaled to unit length.
//! Written by hand because it is 100 lines and no maintained crate does exactly this.

use std::collections::HashMap;
use std::sync::LazyLock;

use anyhow::{Result, bail};
use regex::Regex;
use serde::{Deserialize, Serialize};

static TOKEN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b\w\w+\b").expect("the token pattern is valid"));

/// How to build the vocabulary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TfidfConfig {
    /// A term is kept when at least this many training texts contain it.
    pub min_df: usize,
    /// At most this many terms (the most frequent), 0 for no limit.
    pub max_terms: usize,
}

impl Default for TfidfConfig {
    fn default() -> Self {
        TfidfConfig {
            min_df: 5,
            max_terms: 50_000,
        }
    }
}

/// A fitted vocabulary with its inverse document frequencies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tfidf {
    /// Terms (unigrams and space-joined bigrams), in feature order.
    pub terms: Vec<String>,
    /// Per term, its idf.
    pub idf: Vec<f32>,
    #[serde(skip)]
    index: HashMap<String, u32>,
}

/// The lowercased unigrams and bigrams of `text`, in order, with repeats.
fn terms(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    let tokens: Vec<&str> = TOKEN.find_iter(&lower).map(|m| m.as_str()).collect();
    let mut out: Vec<String> = tokens.iter().map(|t| t.to_string()).collect();
    out.extend(tokens.windows(2).map(|w| format!("{} {}", w[0], w[1])));
    out
}

impl Tfidf {
    /// Fits the vocabulary and idf on `texts`.
    pub fn fit(texts: &[&str], config: &TfidfConfig) -> Result<Tfidf> {
        if texts.is_empty() {
            bail!("no texts to build a vocabulary from");
        }
        let mut df: HashMap<String, usize> = HashMap::new();
        for text in texts {
            let mut seen = terms(text);
            seen.sort_unstable();
            seen.dedup();
            for t in seen {
                *df.entry(t).or_default() += 1;
            }
        }
        let mut kept: Vec<(String, usize)> = df
            .into_iter()
            .filter(|(_, n)| *n >= config.min_df.max(1))
            .collect();
        // Most frequent first, then alphabetical, so the cut and the order are deterministic.
        kept.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        if config.max_terms > 0 {
            kept.truncate(config.max_terms);
        }
        let n = texts.len() as f32;
        let idf = kept
            .iter()
            .map(|(_, d)| ((1.0 + n) / (1.0 + *d as f32)).ln() + 1.0)
            .collect();
        let terms = kept.into_iter().map(|(t, _)| t).collect();
        Ok(Tfidf::new(terms, idf))
    }

    fn new(terms: Vec<String>, idf: Vec<f32>) -> Tfidf {
        let index = terms
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        Tfidf { terms, idf, index }
    }

    /// Rebuilds the term index after deserialising, and checks the shapes.
    pub fn ready(self) -> Result<Tfidf> {
        if self.terms.len() != self.idf.len() {
            bail!(
                "the vocabulary has {} terms but {} idf values",
                self.terms.len(),
                self.idf.len()
            );
        }
        Ok(Tfidf::new(self.terms, self.idf))
    }

    /// Number of features.
    pub fn len(&self) -> usize {
        self.terms.len()
    }

    /// Whether the vocabulary is empty.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The unit-length TF-IDF row of `text` as `(feature, value)` pairs, by feature.
    pub fn transform(&self, text: &str) -> Vec<(u32, f32)> {
        let mut counts: HashMap<u32, u32> = HashMap::new();
        for t in terms(text) {
            if let Some(&i) = self.index.get(&t) {
                *counts.entry(i).or_default() += 1;
            }
        }
        let mut row: Vec<(u32, f32)> = counts
            .into_iter()
            .map(|(i, c)| (i, (1.0 + (c as f32).ln()) * self.idf[i as usize]))
            .collect();
        row.sort_unstable_by_key(|p| p.0);
        let norm = row.iter().map(|p| p.1 * p.1).sum::<f32>().sqrt();
        if norm > 0.0 {
            row.iter_mut().for_each(|p| p.1 /= norm);
        }
        row
    }
}
