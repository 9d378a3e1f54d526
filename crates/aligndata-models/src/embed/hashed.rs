//! The hashed embedder: feature hashing of character and word n-grams. No model, instant.
//!
//! A text is lower-cased and split into words (runs of alphanumerics and apostrophes). Features:
//! - character 3-, 4- and 5-grams of each word wrapped in boundary marks (`<word>`, as fastText
//!   does), so `panic` and `panicking` share `<pa`, `pan`, `ani`, …;
//! - word unigrams (weight 2) and bigrams (weight 1.5).
//!
//! Each feature is hashed with xxh3 (a different seed per feature family) into one of `dim`
//! buckets with a sign taken from another bit of the hash (signed feature hashing keeps collisions
//! unbiased), and the row is L2-normalised. It captures lexical overlap only: "terrified" and
//! "panic" are unrelated to it.

use anyhow::Result;
use rayon::prelude::*;
use xxhash_rust::xxh3::xxh3_64_with_seed;

use super::{Embedder, l2_normalize};

const SEED_CHAR: u64 = 0x9e37_79b9_7f4a_7c15;
const SEED_WORD: u64 = 0xc2b2_ae3d_27d4_eb4f;
const SEED_BIGRAM: u64 = 0x1656_67b1_9e37_79f9;
const WORD_WEIGHT: f32 = 2.0;
const BIGRAM_WEIGHT: f32 = 1.5;
const CHAR_WEIGHT: f32 = 1.0;

/// Feature-hashed character and word n-grams.
#[derive(Debug, Clone)]
pub struct HashedEmbedder {
    dim: usize,
}

impl Default for HashedEmbedder {
    fn default() -> Self {
        Self::new(1024)
    }
}

impl HashedEmbedder {
    /// An embedder with `dim` buckets (rounded up to a power of two, at least 16).
    pub fn new(dim: usize) -> Self {
        Self {
            dim: dim.max(16).next_power_of_two(),
        }
    }

    /// Embeds one text into `out` (length `dim`, overwritten), unit length unless empty.
    pub fn embed_into(&self, text: &str, out: &mut [f32]) {
        out.iter_mut().for_each(|x| *x = 0.0);
        let mask = (self.dim - 1) as u64;
        let mut add = |h: u64, w: f32| {
            let i = (h & mask) as usize;
            let sign = if h >> 63 == 0 { w } else { -w };
            if let Some(slot) = out.get_mut(i) {
                *slot += sign;
            }
        };
        let lower = text.to_lowercase();
        // `<word>` buffer for the character n-grams, reused across words.
        let mut wrapped: Vec<u8> = Vec::with_capacity(64);
        let mut bounds: Vec<usize> = Vec::with_capacity(64);
        let mut prev_word: Option<&str> = None;
        for word in lower
            .split(|c: char| !(c.is_alphanumeric() || c == '\''))
            .map(|w| w.trim_matches('\''))
            .filter(|w| !w.is_empty())
        {
            add(xxh3_64_with_seed(word.as_bytes(), SEED_WORD), WORD_WEIGHT);
            if let Some(prev) = prev_word {
                let h = xxh3_64_with_seed(prev.as_bytes(), SEED_BIGRAM);
                add(xxh3_64_with_seed(word.as_bytes(), h), BIGRAM_WEIGHT);
            }
            prev_word = Some(word);

            wrapped.clear();
            wrapped.push(b'<');
            wrapped.extend_from_slice(word.as_bytes());
            wrapped.push(b'>');
            // Char boundaries (byte offsets) of the wrapped word, plus its end.
            bounds.clear();
            bounds.push(0);
            bounds.extend(word.char_indices().map(|(i, _)| i + 1));
            bounds.push(word.len() + 1);
            bounds.push(word.len() + 2);
            let chars = bounds.len() - 1;
            for n in 3..=5usize {
                if chars < n {
                    break;
                }
                for s in 0..=chars - n {
                    if let (Some(&a), Some(&b)) = (bounds.get(s), bounds.get(s + n))
                        && let Some(gram) = wrapped.get(a..b)
                    {
                        add(xxh3_64_with_seed(gram, SEED_CHAR ^ n as u64), CHAR_WEIGHT);
                    }
                }
            }
        }
        l2_normalize(out);
    }
}

impl Embedder for HashedEmbedder {
    fn name(&self) -> &str {
        "hashed"
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        Ok(texts
            .par_iter()
            .with_min_len(256)
            .map(|t| {
                let mut v = vec![0.0f32; self.dim];
                self.embed_into(t, &mut v);
                v
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed::dot;

    #[test]
    fn identical_texts_identical_vectors_and_unit_norm() {
        let e = HashedEmbedder::default();
        let v = e
            .embed(&[
                "I can't sleep before exams",
                "I can't sleep before exams",
                "",
            ])
            .unwrap();
        assert_eq!(v[0], v[1]);
        assert_eq!(v[0].len(), 1024);
        assert!((dot(&v[0], &v[0]) - 1.0).abs() < 1e-5);
        assert!(v[2].iter().all(|&x| x == 0.0));
    }

    #[test]
    fn similar_texts_closer_than_unrelated() {
        let e = HashedEmbedder::default();
        let v = e
            .embed(&[
                "I'm so anxious about my exam tomorrow",
                "so anxious about the exams tomorrow",
                "the soup needs more salt and pepper",
            ])
            .unwrap();
        let near = dot(&v[0], &v[1]);
        let far = dot(&v[0], &v[2]);
        assert!(near > far + 0.3, "near {near} far {far}");
    }

    #[test]
    fn handles_unicode_and_case() {
        let e = HashedEmbedder::new(256);
        let v = e
            .embed(&[
                "Ça va très BIEN, naïve café 😊",
                "ça va très bien, naïve café 😊",
            ])
            .unwrap();
        assert_eq!(e.dim(), 256);
        assert!((dot(&v[0], &v[1]) - 1.0).abs() < 1e-5);
    }
}
