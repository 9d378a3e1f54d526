//! The MiniLM embedder: sentence-transformers all-MiniLM-L6-v2 run in-process with candle
//! (default model `minilm-l6-v2`; any BERT safetensors directory in the same layout works).
//!
//! What sentence-transformers does, reproduced: WordPiece tokenizer from `tokenizer.json`
//! (lower-casing, `[CLS] … [SEP]`), truncation at `max_seq_length` from
//! `sentence_bert_config.json` (256 for this model; 128 if the file is absent), BERT
//! (`candle_transformers::models::bert`, weights from `model.safetensors`, shape from
//! `config.json`), mean pooling of the last hidden states over the attention mask, L2
//! normalisation. The shipped `tokenizer.json` pads every text to 128 tokens; we switch its padding
//! off and pad each batch to its own longest text instead, and pool with the mask, so padding never
//! changes a vector.
//!
//! Speed: texts are tokenized in parallel, sorted by token count and cut into batches of similar
//! length (little padding); batches run on rayon's pool, [`MiniLmEmbedder::batch_threads`] at a
//! time, and candle's matrix products use the same pool (`RAYON_NUM_THREADS` bounds both).

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result, anyhow};
use candle_core::{D, DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use rayon::prelude::*;
use tokenizers::Tokenizer;

use super::Embedder;

/// The default model this embedder loads.
pub const MODEL_NAME: &str = "minilm-l6-v2";

/// A BERT sentence embedder with mean pooling.
pub struct MiniLmEmbedder {
    name: String,
    model: BertModel,
    tokenizer: Tokenizer,
    dim: usize,
    max_len: usize,
    /// Texts per forward pass.
    pub batch_size: usize,
    /// How many batches run at once (each also splits its matrix products over the pool).
    pub batch_threads: usize,
}

impl MiniLmEmbedder {
    /// Loads `config.json`, `tokenizer.json`, `model.safetensors` (and, if present,
    /// `sentence_bert_config.json`) from `dir`.
    pub fn load(dir: &Path) -> Result<Self> {
        let name = if dir.file_name().is_some_and(|n| n == MODEL_NAME) {
            MODEL_NAME.to_string()
        } else {
            dir.file_name().map_or_else(|| "bert".into(), |n| n.to_string_lossy().into_owned())
        };
        let config_path = dir.join("config.json");
        let config: Config = serde_json::from_slice(
            &std::fs::read(&config_path)
                .with_context(|| format!("reading {}", config_path.display()))?,
        )
        .with_context(|| format!("{} is not a BERT config", config_path.display()))?;

        let max_len = std::fs::read(dir.join("sentence_bert_config.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v.get("max_seq_length").and_then(|m| m.as_u64()))
            .map_or(128, |m| m as usize)
            .min(config.max_position_embeddings);

        let tok_path = dir.join("tokenizer.json");
        let mut tokenizer = Tokenizer::from_file(&tok_path)
            .map_err(|e| anyhow!("{e}"))
            .with_context(|| format!("loading the tokenizer {}", tok_path.display()))?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(tokenizers::TruncationParams {
                max_length: max_len,
                ..Default::default()
            }))
            .map_err(|e| anyhow!("{e}"))
            .context("setting truncation")?;

        let weights = dir.join("model.safetensors");
        let tensors: HashMap<String, Tensor> =
            candle_core::safetensors::load(&weights, &Device::Cpu)
                .with_context(|| format!("reading {}", weights.display()))?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
        let model = BertModel::load(vb, &config)
            .with_context(|| format!("loading BERT weights from {}", weights.display()))?;
        let threads = rayon::current_num_threads().max(1);
        Ok(Self {
            name,
            model,
            tokenizer,
            dim: config.hidden_size,
            max_len,
            batch_size: 32,
            batch_threads: threads,
        })
    }

    /// The longest input in tokens; longer texts are truncated.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Runs one batch of tokenized texts; returns `ids.len()` normalised rows.
    fn forward_batch(&self, ids: &[&[u32]]) -> Result<Vec<Vec<f32>>> {
        let b = ids.len();
        let n = ids.iter().map(|x| x.len()).max().unwrap_or(0).max(1);
        let mut flat_ids = vec![0u32; b * n];
        let mut flat_mask = vec![0f32; b * n];
        for (r, row) in ids.iter().enumerate() {
            let base = r * n;
            if let Some(dst) = flat_ids.get_mut(base..base + row.len()) {
                dst.copy_from_slice(row);
            }
            if let Some(dst) = flat_mask.get_mut(base..base + row.len()) {
                dst.iter_mut().for_each(|m| *m = 1.0);
            }
        }
        let dev = &Device::Cpu;
        let input_ids = Tensor::from_vec(flat_ids, (b, n), dev)?;
        let type_ids = input_ids.zeros_like()?;
        let mask = Tensor::from_vec(flat_mask, (b, n), dev)?;
        let hidden = self.model.forward(&input_ids, &type_ids, Some(&mask))?; // (b, n, h)
        let summed = hidden.broadcast_mul(&mask.unsqueeze(2)?)?.sum(1)?; // (b, h)
        let counts = mask.sum_keepdim(1)?.clamp(1e-9f32, f32::MAX)?; // (b, 1)
        let pooled = summed.broadcast_div(&counts)?;
        let norms = pooled.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?.clamp(1e-12f32, f32::MAX)?;
        Ok(pooled.broadcast_div(&norms)?.to_vec2::<f32>()?)
    }
}

impl Embedder for MiniLmEmbedder {
    fn name(&self) -> &str {
        &self.name
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encoded: Vec<Vec<u32>> = texts
            .par_iter()
            .with_min_len(64)
            .map(|t| {
                self.tokenizer
                    .encode_fast(*t, true)
                    .map(|e| e.get_ids().to_vec())
                    .map_err(|e| anyhow!("tokenizing for {}: {e}", self.name))
            })
            .collect::<Result<_>>()?;
        // Longest first, so the costly batches start early and the tail is short.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(encoded.get(i).map_or(0, |e| e.len())));
        let batch = self.batch_size.max(1);
        let batches: Vec<&[usize]> = order.chunks(batch).collect();
        let run = |idx: &&[usize]| -> Result<Vec<Vec<f32>>> {
            let ids: Vec<&[u32]> =
                idx.iter().filter_map(|&i| encoded.get(i).map(|e| e.as_slice())).collect();
            self.forward_batch(&ids)
        };
        let results: Vec<Vec<Vec<f32>>> = if self.batch_threads > 1 {
            batches.par_iter().with_max_len(1).map(run).collect::<Result<_>>()?
        } else {
            batches.iter().map(run).collect::<Result<_>>()?
        };
        let mut out = vec![Vec::new(); texts.len()];
        for (idx, rows) in batches.iter().zip(results) {
            for (&i, row) in idx.iter().zip(rows) {
                if let Some(slot) = out.get_mut(i) {
                    *slot = row;
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed::dot;
    use crate::registry;

    fn model() -> MiniLmEmbedder {
        let dir = registry::ensure(MODEL_NAME, false, &|_| {})
            .unwrap_or_else(|e| panic!("installing {MODEL_NAME}: {e:#}"));
        MiniLmEmbedder::load(&dir).unwrap()
    }

    #[test]
    fn semantic_order() {
        let e = model();
        let v = e
            .embed(&[
                "I'm terrified of my presentation tomorrow",
                "public speaking makes me panic",
                "the soup needs more salt",
            ])
            .unwrap();
        assert_eq!(e.dim(), 384);
        let near = dot(&v[0], &v[1]);
        let far = dot(&v[0], &v[2]);
        assert!(near > far, "near {near} far {far}");
        for row in &v {
            assert!((dot(row, row) - 1.0).abs() < 1e-4);
        }
    }

    /// `test_data/embed/minilm_reference.json` was written by
    /// `python3 scripts/embed_reference.py reference MODEL_DIR OUT`: an independent numpy
    /// forward pass of BERT in float64 over the same installed safetensors and tokenizer.json,
    /// mean pooling, L2 normalisation. Here the same sentences go through candle, batched
    /// together with other texts of different lengths, so padding and masking are exercised too.
    #[test]
    fn matches_numpy_reference() {
        let e = model();
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data/embed/minilm_reference.json");
        let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let sentences = doc["sentences"].as_array().unwrap();
        let mut texts: Vec<&str> = sentences.iter().map(|s| s["text"].as_str().unwrap()).collect();
        let n_ref = texts.len();
        texts.push("a much longer filler sentence so that the reference sentences get padded in their batch, which must not change them at all");
        texts.push("ok");
        let got = e.embed(&texts).unwrap();
        for (s, row) in sentences.iter().zip(&got[..n_ref]) {
            let want: Vec<f32> =
                s["embedding"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
            assert_eq!(want.len(), row.len());
            let max_err = want.iter().zip(row).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(max_err < 1e-3, "{}: max abs diff {max_err}", s["text"]);
        }
        // And the same rows with batch size 1 (no padding at all).
        let mut single = model();
        single.batch_size = 1;
        let alone = single.embed(&texts[..n_ref]).unwrap();
        for (a, b) in alone.iter().zip(&got) {
            let max_err = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
            assert!(max_err < 1e-4, "padding changed a vector by {max_err}");
        }
    }

    #[test]
    fn empty_input() {
        let e = model();
        assert!(e.embed(&[]).unwrap().is_empty());
        let v = e.embed(&[""]).unwrap();
        assert_eq!(v[0].len(), 384);
    }
}
