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
//!
//! Fast path: this tokenizer has no pre-tokenizer, so the BPE model sees a whole sentence as one
//! "word" and its own cache (keyed by that string) never hits. But no token in its vocabulary has a
//! `▁` after another character, so no merge can cross the start of a `▁word`: the sentence splits
//! exactly at those points, and each piece is tokenized once and cached (a sharded map of piece to
//! ids). [`StaticEmbedder::load_files`] turns this on only after checking that the tokenizer has
//! exactly that shape (normalizer `Prepend("▁")` + `Replace(" ", "▁")`, no pre-tokenizer, BPE,
//! no such vocabulary entry); texts that contain a special token's text take the full tokenizer.

use std::collections::HashMap;
use std::path::Path;
use std::sync::RwLock;

use anyhow::{Context, Result, anyhow, bail};
use candle_core::{DType, Device};
use rayon::prelude::*;
use tokenizers::{Model, Tokenizer};

use super::{Embedder, l2_normalize};

/// The default model this embedder loads.
pub const MODEL_NAME: &str = "wordllama-256";
const WEIGHTS: &str = "l2_supercat_256.safetensors";
const TOKENIZER: &str = "l2_supercat_tokenizer_config.json";
const SPACE: char = '\u{2581}';
const SHARDS: usize = 64;
/// Pieces cached at most (per shard), bounding memory on huge, diverse corpora.
const SHARD_CAP: usize = 8192;

/// Averaged static token vectors (WordLlama).
pub struct StaticEmbedder {
    name: String,
    tokenizer: Tokenizer,
    /// Row-major `[vocab, dim]`, f32.
    table: Vec<f32>,
    vocab: usize,
    dim: usize,
    /// Set when the piece-wise fast path is exact for this tokenizer (see the module docs).
    fast: Option<FastPath>,
}

struct FastPath {
    specials: Vec<String>,
    shards: Vec<RwLock<HashMap<String, Box<[u32]>>>>,
}

/// Whether the tokenizer file has the shape that makes splitting at `▁word` starts exact.
fn fast_path_for(json: &serde_json::Value) -> Option<FastPath> {
    let norm = json.get("normalizer")?;
    let steps = norm.get("normalizers")?.as_array()?;
    let [prepend, replace] = steps.as_slice() else {
        return None;
    };
    let space = SPACE.to_string();
    let ok = norm.get("type")?.as_str()? == "Sequence"
        && prepend.get("type")?.as_str()? == "Prepend"
        && prepend.get("prepend")?.as_str()? == space
        && replace.get("type")?.as_str()? == "Replace"
        && replace.get("pattern")?.get("String")?.as_str()? == " "
        && replace.get("content")?.as_str()? == space
        && json.get("pre_tokenizer").is_none_or(|p| p.is_null())
        && json.get("model")?.get("type")?.as_str()? == "BPE";
    if !ok {
        return None;
    }
    let vocab = json.get("model")?.get("vocab")?.as_object()?;
    let crosses = vocab.keys().any(|tok| {
        let mut prev_other = false;
        tok.chars().any(|c| {
            let bad = c == SPACE && prev_other;
            prev_other = c != SPACE;
            bad
        })
    });
    if crosses {
        return None;
    }
    let specials = json
        .get("added_tokens")?
        .as_array()?
        .iter()
        .filter_map(|t| {
            t.get("content")
                .and_then(|c| c.as_str())
                .map(str::to_string)
        })
        .collect();
    Some(FastPath {
        specials,
        shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
    })
}

impl StaticEmbedder {
    /// Loads `l2_supercat_256.safetensors` and `l2_supercat_tokenizer_config.json` from `dir`.
    pub fn load(dir: &Path) -> Result<Self> {
        Self::load_files(&dir.join(WEIGHTS), &dir.join(TOKENIZER), MODEL_NAME)
    }

    /// Loads a WordLlama-style model from a weights file (one 2-D tensor, preferably named
    /// `embedding.weight`) and a Hugging Face tokenizer file.
    pub fn load_files(weights: &Path, tokenizer: &Path, name: &str) -> Result<Self> {
        let tok_bytes = std::fs::read(tokenizer)
            .with_context(|| format!("reading the tokenizer {}", tokenizer.display()))?;
        let fast = serde_json::from_slice::<serde_json::Value>(&tok_bytes)
            .ok()
            .and_then(|j| fast_path_for(&j));
        let mut tokenizer = Tokenizer::from_bytes(&tok_bytes)
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
        let table = tensor
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        if vocab == 0 || dim == 0 {
            bail!("{} has an empty embedding table", weights.display());
        }
        Ok(Self {
            name: name.to_string(),
            tokenizer,
            table,
            vocab,
            dim,
            fast,
        })
    }

    /// Token ids of `text` as wordllama gets them (no special tokens, no truncation).
    pub fn token_ids(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = Vec::new();
        match &self.fast {
            Some(fast) if !fast.specials.iter().any(|s| text.contains(s.as_str())) => {
                self.fast_ids(fast, text, &mut |piece| ids.extend_from_slice(piece))?;
            }
            _ => ids = self.slow_ids(text)?,
        }
        Ok(ids)
    }

    /// Token ids through the full `tokenizers` pipeline (the slow path; for checking the fast
    /// one, which [`StaticEmbedder::token_ids`] takes when it can).
    pub fn slow_ids(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .tokenizer
            .encode_fast(text, false)
            .map_err(|e| anyhow!("tokenizing for {}: {e}", self.name))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Calls `each` with the ids of every `▁word` piece of `text`, in order.
    fn fast_ids(&self, fast: &FastPath, text: &str, each: &mut dyn FnMut(&[u32])) -> Result<()> {
        if text.is_empty() {
            return Ok(());
        }
        let mut norm = String::with_capacity(text.len() + 8);
        norm.push(SPACE);
        for c in text.chars() {
            norm.push(if c == ' ' { SPACE } else { c });
        }
        let mut start = 0;
        let mut prev_other = false;
        for (i, c) in norm.char_indices() {
            if c == SPACE && prev_other {
                self.piece_ids(fast, norm.get(start..i).unwrap_or(""), each)?;
                start = i;
            }
            prev_other = c != SPACE;
        }
        self.piece_ids(fast, norm.get(start..).unwrap_or(""), each)
    }

    fn piece_ids(&self, fast: &FastPath, piece: &str, each: &mut dyn FnMut(&[u32])) -> Result<()> {
        if piece.is_empty() {
            return Ok(());
        }
        let shard_ix = (xxhash_rust::xxh3::xxh3_64(piece.as_bytes()) % SHARDS as u64) as usize;
        let Some(shard) = fast.shards.get(shard_ix) else {
            return Ok(());
        };
        if let Ok(map) = shard.read()
            && let Some(ids) = map.get(piece)
        {
            each(ids);
            return Ok(());
        }
        let ids: Box<[u32]> = self
            .tokenizer
            .get_model()
            .tokenize(piece)
            .map_err(|e| anyhow!("tokenizing for {}: {e}", self.name))?
            .into_iter()
            .map(|t| t.id)
            .collect();
        each(&ids);
        if let Ok(mut map) = shard.write()
            && map.len() < SHARD_CAP
        {
            map.insert(piece.to_string(), ids);
        }
        Ok(())
    }

    fn embed_one(&self, text: &str) -> Result<Vec<f32>> {
        let mut out = vec![0.0f32; self.dim];
        let mut add = |ids: &[u32]| {
            for &id in ids {
                let row = (id as usize).min(self.vocab - 1) * self.dim;
                if let Some(v) = self.table.get(row..row + self.dim) {
                    out.iter_mut().zip(v).for_each(|(o, x)| *o += x);
                }
            }
        };
        match &self.fast {
            Some(fast) if !fast.specials.iter().any(|s| text.contains(s.as_str())) => {
                self.fast_ids(fast, text, &mut add)?;
            }
            _ => add(&self.slow_ids(text)?),
        }
        l2_normalize(&mut out);
        Ok(out)
    }

    /// Whether the cached piece-wise tokenization is in use (see the module docs).
    pub fn uses_fast_path(&self) -> bool {
        self.fast.is_some()
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
        texts
            .par_iter()
            .with_min_len(64)
            .map(|t| self.embed_one(t))
            .collect()
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

    /// `test_data/embed/wordllama_reference.json` was written by
    /// `python3 scripts/embed_reference.py static-reference MODEL_DIR OUT`, which runs
    /// wordllama's own `WordLlamaInference.embed(texts, norm=True)` on the same files.
    #[test]
    fn matches_wordllama_python() {
        let e = model();
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data/embed/wordllama_reference.json");
        let doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let sentences = doc["sentences"].as_array().unwrap();
        let texts: Vec<&str> = sentences
            .iter()
            .map(|s| s["text"].as_str().unwrap())
            .collect();
        let got = e.embed(&texts).unwrap();
        for (s, row) in sentences.iter().zip(&got) {
            let want = s["embedding"].as_array().unwrap();
            assert_eq!(want.len(), row.len());
            let max_err = want
                .iter()
                .zip(row)
                .map(|(a, b)| (a.as_f64().unwrap() as f32 - b).abs())
                .fold(0f32, f32::max);
            assert!(max_err < 1e-4, "{}: max abs diff {max_err}", s["text"]);
        }
    }

    #[test]
    fn fast_path_matches_full_tokenizer() {
        let e = model();
        assert!(e.uses_fast_path());
        let texts = [
            "I'm terrified of my presentation tomorrow",
            "  two  leading spaces,   three inside and trailing  ",
            "tabs\tand\nnewlines\r\n too",
            "Ça va très BIEN 😊 naïve café — “quotes” ½ 東京 🇫🇷",
            "▁already▁marked ▁▁ text",
            "a <s> special </s> and <unk> inside",
            "x",
            "",
            "URL https://example.com/a_b?c=d&e=f #hashtag @user [NAME]",
            "WHY THE FUCK IS BAYLESS ISOING",
        ];
        for t in texts {
            for _ in 0..2 {
                // Twice: the second time the pieces come from the cache.
                assert_eq!(e.token_ids(t).unwrap(), e.slow_ids(t).unwrap(), "{t:?}");
            }
        }
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
