//! The static embedder: WordLlama token vectors, averaged (default model `wordllama-256`).
//!
//! WordLlama (<https://github.com/dleemiller/WordLlama>) keeps only a token-embedding matrix
//! distilled from a large LLM's: `l2_supercat_256.safetensors` holds one F16 tensor,
//! `embedding.weight` `[32000, 256]`, and `l2_supercat_tokenizer_config.json` is a Hugging Face
//! `tokenizer.json` (the Llama-2 sentencepiece BPE: `▁` prepended and for spaces, byte fallback,
//! no pre-tokenizer). Inference mirrors wordllama's `WordLlamaInference.embed`: encode without
//! special tokens and without truncation, clamp ids into the vocabulary, average the token vectors
//! over the real (non-pad) tokens, and L2-normalise (`norm=True`); averaging before normalising is
//! the same as summing, which is what we do. Texts are spread over rayon's pool.

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use candle_core::{DType, Device};
use rayon::prelude::*;
use tokenizers::Tokenizer;

use super::{Embedder, l2_normalize};

/// The default model this embedder loads.
pub const MODEL_NAME: &str = "wordllama-256";
const WEIGHTS: &str = "l2_supercat_256.safetensors";
const TOKENIZER: &str = "l2_supercat_tokenizer_config.json";

/// Averaged static token vectors (WordLlama).
pub struct StaticEmbedder {
    name: String,
    tokenizer: Tokenizer,
    /// Row-major `[vocab, dim]`, f32.
    table: Vec<f32>,
    vocab: usize,
    dim: usize,
}

impl StaticEmbedder {
    /// Loads `l2_supercat_256.safetensors` and `l2_supercat_tokenizer_config.json` from `dir`.
    pub fn load(dir: &Path) -> Result<Self> {
        Self::load_files(&dir.join(WEIGHTS), &dir.join(TOKENIZER), MODEL_NAME)
    }

    /// Loads a WordLlama-style model from a weights file (one 2-D tensor, preferably named
    /// `embedding.weight`) and a Hugging Face tokenizer file.
    pub fn load_files(weights: &Path, tokenizer: &Path, name: &str) -> Result<Self> {
        let mut tokenizer = Tokenizer::from_file(tokenizer)
            .map_err(|e| anyhow!("{e}"))
            .with_context(|| format!("loading the tokenizer {}", tokenizer.display()))?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(None)
            .map_err(|e| anyhow!("{e}"))
            .context("disabling truncation")?;
        let tensors = candle_core::safetensors::load(weights, &Device::Cpu)
            .with_context(|| format!("reading {}", weights.display()))?;
        let tensor = match tensors.get("embedding.weight") {
            Some(t) => t,
            None => match tensors.values().find(|t| t.rank() == 2) {
                Some(t) => t,
                None => bail!("{} has no 2-D embedding tensor", weights.display()),
            },
        };
        let (vocab, dim) = tensor.dims2()?;
        let table = tensor.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        if vocab == 0 || dim == 0 {
            bail!("{} has an empty embedding table", weights.display());
        }
        Ok(Self { name: name.to_string(), tokenizer, table, vocab, dim })
    }

    fn embed_one(&self, text: &str) -> Result<Vec<f32>> {
        let enc = self
            .tokenizer
            .encode_fast(text, false)
            .map_err(|e| anyhow!("tokenizing for {}: {e}", self.name))?;
        let mut out = vec![0.0f32; self.dim];
        for &id in enc.get_ids() {
            let row = (id as usize).min(self.vocab - 1) * self.dim;
            if let Some(v) = self.table.get(row..row + self.dim) {
                out.iter_mut().zip(v).for_each(|(o, x)| *o += x);
            }
        }
        l2_normalize(&mut out);
        Ok(out)
    }
}

impl Embedder for StaticEmbedder {
    fn name(&self) -> &str {
        &self.name
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        texts.par_iter().with_min_len(64).map(|t| self.embed_one(t)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed::dot;
    use crate::registry;

    fn model() -> StaticEmbedder {
        let dir = registry::ensure(MODEL_NAME, false, &|_| {})
            .unwrap_or_else(|e| panic!("installing {MODEL_NAME}: {e:#}"));
        StaticEmbedder::load(&dir).unwrap()
    }

    #[test]
    fn dimension_norm_and_semantic_order() {
        let e = model();
        assert_eq!(e.dim(), 256);
        let v = e
            .embed(&[
                "I'm terrified of my presentation tomorrow",
                "public speaking makes me panic",
                "the soup needs more salt",
                "",
            ])
            .unwrap();
        for row in &v[..3] {
            assert_eq!(row.len(), 256);
            assert!((dot(row, row) - 1.0).abs() < 1e-4);
        }
        let near = dot(&v[0], &v[1]);
        let far = dot(&v[0], &v[2]);
        assert!(near > far, "near {near} far {far}");
        assert!(v[3].iter().all(|&x| x == 0.0));
    }

    #[test]
    fn tokenizer_matches_wordllama_setup() {
        // `<s>` must not be added (wordllama encodes with add_special_tokens=False).
        let e = model();
        let enc = e.tokenizer.encode_fast("hello world", false).unwrap();
        assert!(!enc.get_ids().contains(&1), "{:?}", enc.get_ids());
        assert!(!enc.get_ids().is_empty());
    }
}
