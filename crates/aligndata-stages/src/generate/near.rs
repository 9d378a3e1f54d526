//! Near-duplicate rejection while generating: each candidate is checked against everything
//! accepted so far (this run, and any texts seeded in first), then added if accepted.
//!
//! Reuses the dedup stage's normal form and b-bit MinHash signatures (word shingles), with an
//! incremental LSH band index so a check costs O(bands) lookups plus a few signature
//! comparisons, not a scan of everything accepted. Exact duplicates (same normal form) are
//! caught by a hash map first.

use std::collections::HashMap;

use crate::dedup::minhash::{band_key, estimate_jaccard};
use crate::dedup::normalize::exact_key;
use crate::dedup::{MinHasher, Shingle, normalize, optimal_bands};

/// What a check found.
#[derive(Debug, Clone, PartialEq)]
pub enum Match {
    /// Same normal form as an earlier text (its index).
    Exact(usize),
    /// Estimated Jaccard ≥ threshold with an earlier text.
    Near(usize, f64),
}

/// The index of accepted texts.
pub struct NearDupIndex {
    hasher: MinHasher,
    threshold: f64,
    bands: usize,
    rows: usize,
    sigs: Vec<Vec<u8>>,
    buckets: HashMap<(usize, u64), Vec<usize>>,
    exact: HashMap<u128, usize>,
    mins: Vec<u32>,
}

impl NearDupIndex {
    /// An empty index: word `shingle`-grams, `num_perm` permutations, Jaccard `threshold`.
    pub fn new(shingle: usize, num_perm: usize, threshold: f64, seed: u64) -> NearDupIndex {
        let (bands, rows) = optimal_bands(threshold, num_perm);
        NearDupIndex {
            hasher: MinHasher::new(Shingle::Word(shingle.max(1)), num_perm, seed),
            threshold,
            bands,
            rows,
            sigs: Vec::new(),
            buckets: HashMap::new(),
            exact: HashMap::new(),
            mins: Vec::new(),
        }
    }

    /// Texts indexed so far.
    pub fn len(&self) -> usize {
        self.sigs.len()
    }

    /// True when nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.sigs.is_empty()
    }

    fn signature(&mut self, normal: &str) -> Vec<u8> {
        let mut sig = vec![0u8; self.hasher.num_perm()];
        self.hasher.signature_into(normal, &mut self.mins, &mut sig);
        sig
    }

    /// The closest earlier text at or above the threshold, if any.
    pub fn check(&mut self, text: &str) -> Option<Match> {
        let normal = normalize(text);
        if let Some(k) = exact_key(&normal)
            && let Some(&i) = self.exact.get(&k)
        {
            return Some(Match::Exact(i));
        }
        let sig = self.signature(&normal);
        let mut best: Option<(usize, f64)> = None;
        for b in 0..self.bands {
            if let Some(ids) = self.buckets.get(&(b, band_key(&sig, b, self.rows))) {
                for &i in ids {
                    let j = estimate_jaccard(&sig, &self.sigs[i]);
                    if j >= self.threshold && best.is_none_or(|(_, bj)| j > bj) {
                        best = Some((i, j));
                    }
                }
            }
        }
        best.map(|(i, j)| Match::Near(i, j))
    }

    /// Adds a text; returns its index.
    pub fn insert(&mut self, text: &str) -> usize {
        let normal = normalize(text);
        let i = self.sigs.len();
        if let Some(k) = exact_key(&normal) {
            self.exact.entry(k).or_insert(i);
        }
        let sig = self.signature(&normal);
        for b in 0..self.bands {
            self.buckets
                .entry((b, band_key(&sig, b, self.rows)))
                .or_default()
                .push(i);
        }
        self.sigs.push(sig);
        i
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_near_are_caught_distinct_pass() {
        let mut idx = NearDupIndex::new(2, 128, 0.6, 7);
        let a = "I rewrote the first paragraph of my cover letter eleven times last night and it still reads wrong.";
        assert_eq!(idx.check(a), None);
        idx.insert(a);
        assert_eq!(idx.check(&a.to_uppercase()), Some(Match::Exact(0)));
        let near = "I rewrote the first paragraph of my cover letter eleven times last night and it still reads wrong to me.";
        assert!(matches!(idx.check(near), Some(Match::Near(0, j)) if j >= 0.6));
        assert_eq!(
            idx.check("My sister never calls me back and I think she is ashamed of me."),
            None
        );
    }
}
