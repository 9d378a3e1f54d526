//! Sparse TF-IDF word unigram + bigram features for the trained labeller.
//!
//! Why: frozen small sentence embeddings blur the words that carry an emotion ("thanks", "lol",
//! "sorry for your loss"); a linear model over the words themselves reads them directly. On
//! GoEmotions this feature set alone beats MiniLM ⊕ WordLlama (BENCHMARKS.md). It follows
//! scikit-learn's `TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)` so the two can be
//! compared feature for feature: lowercased tokens of two or more word characters, bigrams of
//! adjacent tokens joined by a space, terms kept when at least `min_df` texts have them,
//! smoothed idf `ln((1 + n) / (1 + df)) + 1`, tf `1 + ln(count)`, rows scaled to unit length.
//! Optionally (`char_ngrams`) a second block of character n-grams inside word boundaries follows
//! the words, like `TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True)`
//! beside the word vectorizer in a `FeatureUnion`: each word padded with one space on each side,
//! its n-grams by Unicode character (a padded word shorter than n counted once, whole), the block
//! weighted and scaled to unit length on its own, so a row has both blocks at length one. Spelling
//! variants and word pieces ("thank", "thx", "sorrry") then share features.
//! Written by hand because it is 150 lines and no maintained crate does exactly this.

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
    /// Character n-gram lengths `[min, max]` inside word boundaries, in a block after the words;
    /// `None` for words only. Kept under the same `min_df`.
    #[serde(default)]
    pub char_ngrams: Option<[usize; 2]>,
    /// At most this many character n-grams (the most frequent), 0 for no limit.
    #[serde(default)]
    pub max_char_terms: usize,
}

impl Default for TfidfConfig {
    fn default() -> Self {
        TfidfConfig {
            min_df: 5,
            max_terms: 50_000,
            char_ngrams: Some([2, 4]),
            max_char_terms: 50_000,
        }
    }
}

impl TfidfConfig {
    /// Word unigrams and bigrams only (the format-2 feature set before character n-grams).
    pub fn words_only() -> TfidfConfig {
        TfidfConfig {
            char_ngrams: None,
            ..TfidfConfig::default()
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
    /// Character n-gram lengths `[min, max]` of the block after the words (absent: words only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub char_ngrams: Option<[usize; 2]>,
    /// Character n-grams, in feature order after the words.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub char_terms: Vec<String>,
    /// Per character n-gram, its idf.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub char_idf: Vec<f32>,
    #[serde(skip)]
    index: HashMap<String, u32>,
    #[serde(skip)]
    char_index: HashMap<String, u32>,
}

/// The lowercased unigrams and bigrams of `text`, in order, with repeats.
fn terms(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    let tokens: Vec<&str> = TOKEN.find_iter(&lower).map(|m| m.as_str()).collect();
    let mut out: Vec<String> = tokens.iter().map(|t| t.to_string()).collect();
    out.extend(tokens.windows(2).map(|w| format!("{} {}", w[0], w[1])));
    out
}

/// The character n-grams of `text` as scikit-learn's `char_wb` analyzer makes them: lowercased,
/// split on whitespace, each word padded with a space on both sides, n-grams of `min..=max`
/// characters; a padded word shorter than n gives itself once and stops the longer lengths.
pub fn char_wb_ngrams(text: &str, [min, max]: [usize; 2]) -> Vec<String> {
    let lower = text.to_lowercase();
    let mut out = Vec::new();
    for word in lower.split_whitespace() {
        let padded: Vec<char> = std::iter::once(' ')
            .chain(word.chars())
            .chain(std::iter::once(' '))
            .collect();
        for n in min.max(1)..=max {
            let mut offset = 0;
            out.push(
                padded[offset..(offset + n).min(padded.len())]
                    .iter()
                    .collect(),
            );
            while offset + n < padded.len() {
                offset += 1;
                out.push(padded[offset..offset + n].iter().collect());
            }
            if offset == 0 {
                break;
            }
        }
    }
    out
}

/// Terms kept from `texts` (each text's terms by `analyse`): in at least `min_df` texts, the
/// `max_terms` most frequent (0: all), with their smoothed idf.
fn fit_block(
    texts: &[&str],
    analyse: impl Fn(&str) -> Vec<String>,
    min_df: usize,
    max_terms: usize,
) -> (Vec<String>, Vec<f32>) {
    let mut df: HashMap<String, usize> = HashMap::new();
    for text in texts {
        let mut seen = analyse(text);
        seen.sort_unstable();
        seen.dedup();
        for t in seen {
            *df.entry(t).or_default() += 1;
        }
    }
    let mut kept: Vec<(String, usize)> = df
        .into_iter()
        .filter(|(_, n)| *n >= min_df.max(1))
        .collect();
    // Most frequent first, then alphabetical, so the cut and the order are deterministic.
    kept.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    if max_terms > 0 {
        kept.truncate(max_terms);
    }
    let n = texts.len() as f32;
    let idf = kept
        .iter()
        .map(|(_, d)| ((1.0 + n) / (1.0 + *d as f32)).ln() + 1.0)
        .collect();
    (kept.into_iter().map(|(t, _)| t).collect(), idf)
}

/// Sublinear tf × idf of the `terms` found in `index`, at `base` + index, scaled to unit length.
fn weigh(
    terms: Vec<String>,
    index: &HashMap<String, u32>,
    idf: &[f32],
    base: u32,
) -> Vec<(u32, f32)> {
    let mut counts: HashMap<u32, u32> = HashMap::new();
    for t in terms {
        if let Some(&i) = index.get(&t) {
            *counts.entry(i).or_default() += 1;
        }
    }
    let mut row: Vec<(u32, f32)> = counts
        .into_iter()
        .map(|(i, c)| (base + i, (1.0 + (c as f32).ln()) * idf[i as usize]))
        .collect();
    row.sort_unstable_by_key(|p| p.0);
    let norm = row.iter().map(|p| p.1 * p.1).sum::<f32>().sqrt();
    if norm > 0.0 {
        row.iter_mut().for_each(|p| p.1 /= norm);
    }
    row
}

fn index_of(terms: &[String]) -> HashMap<String, u32> {
    terms
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect()
}

impl Tfidf {
    /// Fits the vocabulary and idf on `texts`.
    pub fn fit(texts: &[&str], config: &TfidfConfig) -> Result<Tfidf> {
        if texts.is_empty() {
            bail!("no texts to build a vocabulary from");
        }
        if let Some([min, max]) = config.char_ngrams
            && (min == 0 || min > max)
        {
            bail!("character n-gram lengths {min}..{max}: expected 1 <= min <= max");
        }
        let (terms, idf) = fit_block(texts, terms, config.min_df, config.max_terms);
        let (char_terms, char_idf) = match config.char_ngrams {
            Some(range) => fit_block(
                texts,
                |x| char_wb_ngrams(x, range),
                config.min_df,
                config.max_char_terms,
            ),
            None => (Vec::new(), Vec::new()),
        };
        Ok(Tfidf::new(
            terms,
            idf,
            config.char_ngrams,
            char_terms,
            char_idf,
        ))
    }

    fn new(
        terms: Vec<String>,
        idf: Vec<f32>,
        char_ngrams: Option<[usize; 2]>,
        char_terms: Vec<String>,
        char_idf: Vec<f32>,
    ) -> Tfidf {
        Tfidf {
            index: index_of(&terms),
            char_index: index_of(&char_terms),
            terms,
            idf,
            char_ngrams,
            char_terms,
            char_idf,
        }
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
        if self.char_terms.len() != self.char_idf.len() {
            bail!(
                "the vocabulary has {} character n-grams but {} idf values",
                self.char_terms.len(),
                self.char_idf.len()
            );
        }
        if !self.char_terms.is_empty() && self.char_ngrams.is_none() {
            bail!("the vocabulary has character n-grams but no `char_ngrams` lengths");
        }
        Ok(Tfidf::new(
            self.terms,
            self.idf,
            self.char_ngrams,
            self.char_terms,
            self.char_idf,
        ))
    }

    /// Number of features (words, then character n-grams).
    pub fn len(&self) -> usize {
        self.terms.len() + self.char_terms.len()
    }

    /// Whether the vocabulary is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The TF-IDF row of `text` as `(feature, value)` pairs, by feature: the word block at unit
    /// length, then (with character n-grams) the character block at unit length.
    pub fn transform(&self, text: &str) -> Vec<(u32, f32)> {
        let mut row = weigh(terms(text), &self.index, &self.idf, 0);
        if let Some(range) = self.char_ngrams
            && !self.char_terms.is_empty()
        {
            row.extend(weigh(
                char_wb_ngrams(text, range),
                &self.char_index,
                &self.char_idf,
                self.terms.len() as u32,
            ));
        }
        row
    }
}
