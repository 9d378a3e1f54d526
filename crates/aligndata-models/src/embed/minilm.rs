//! The MiniLM embedder: sentence-transformers all-MiniLM-L6-v2 run in-process
//! (default model `minilm-l6-v2`; any BERT safetensors directory in the same layout works).
//!
//! What sentence-transformers does, reproduced: WordPiece tokenizer from `tokenizer.json`
//! (lower-casing, `[CLS] … [SEP]`), truncation at `max_seq_length` from
//! `sentence_bert_config.json` (256 for this model; 128 if the file is absent), BERT with the
//! shape from `config.json` and the weights from `model.safetensors` (names as in
//! `candle_transformers::models::bert`), mean pooling of the last hidden states over the real
//! tokens, L2 normalisation. The shipped `tokenizer.json` pads every text to 128 tokens; we switch
//! its padding off.
//!
//! The forward pass is our own, on candle tensors for the matrix products only (candle's gemm)
//! and plain loops for the rest, because of how it batches: texts are *packed*, not padded. Every
//! BERT op except attention works row by row, and attention only mixes the rows of one text, so a
//! batch is the concatenation of its texts' tokens (up to [`MiniLmEmbedder::batch_tokens`] rows)
//! and attention runs per text: no padding at all, hence nothing to mask and nothing wasted.
//! Batches run on rayon's pool (`RAYON_NUM_THREADS` bounds it); candle's own element-wise
//! thread pool is never entered (on 2 cores its spinning workers halved throughput), and GELU
//! uses an erf approximation with 1.5e-7 absolute error. Checked against an independent numpy
//! forward pass in the tests.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use candle_core::{DType, Device, Tensor};
use candle_transformers::models::bert::{Config, HiddenAct};
use rayon::prelude::*;
use tokenizers::Tokenizer;

use super::{Embedder, l2_normalize};

/// The default model this embedder loads.
pub const MODEL_NAME: &str = "minilm-l6-v2";

#[derive(Clone)]
pub(crate) struct Layer {
    /// Query, key and value weights stacked: `[3 * hidden, hidden]`.
    pub(crate) qkv_w: Tensor,
    pub(crate) qkv_b: Vec<f32>,
    pub(crate) attn_out_w: Tensor,
    pub(crate) attn_out_b: Vec<f32>,
    pub(crate) ln1_w: Vec<f32>,
    pub(crate) ln1_b: Vec<f32>,
    pub(crate) inter_w: Tensor,
    pub(crate) inter_b: Vec<f32>,
    pub(crate) out_w: Tensor,
    pub(crate) out_b: Vec<f32>,
    pub(crate) ln2_w: Vec<f32>,
    pub(crate) ln2_b: Vec<f32>,
}

/// A BERT sentence embedder with mean pooling.
#[derive(Clone)]
pub struct MiniLmEmbedder {
    pub(crate) name: String,
    pub(crate) tokenizer: Tokenizer,
    pub(crate) hidden: usize,
    pub(crate) heads: usize,
    pub(crate) eps: f32,
    act: HiddenAct,
    max_len: usize,
    word_emb: Vec<f32>,
    pos_emb: Vec<f32>,
    type0_emb: Vec<f32>,
    emb_ln_w: Vec<f32>,
    emb_ln_b: Vec<f32>,
    pub(crate) layers: Vec<Layer>,
    vocab: usize,
    /// Tokens (rows) per forward pass; texts are packed, not padded.
    pub batch_tokens: usize,
}

struct Weights {
    map: HashMap<String, Tensor>,
    prefix: String,
    path: String,
}

impl Weights {
    fn tensor(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let full = format!("{}{name}", self.prefix);
        let t = self
            .map
            .get(&full)
            .with_context(|| format!("{} has no tensor {full}", self.path))?
            .to_dtype(DType::F32)?;
        if t.dims() != shape {
            bail!(
                "{}: {full} has shape {:?}, expected {shape:?}",
                self.path,
                t.dims()
            );
        }
        Ok(t)
    }

    fn vec(&self, name: &str, len: usize) -> Result<Vec<f32>> {
        Ok(self.tensor(name, &[len])?.to_vec1::<f32>()?)
    }

    fn flat(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        Ok(self.tensor(name, shape)?.flatten_all()?.to_vec1::<f32>()?)
    }
}

impl MiniLmEmbedder {
    /// Loads `config.json`, `tokenizer.json`, `model.safetensors` (and, if present,
    /// `sentence_bert_config.json`) from `dir`.
    pub fn load(dir: &Path) -> Result<Self> {
        let name = dir
            .file_name()
            .map_or_else(|| "bert".into(), |n| n.to_string_lossy().into_owned());
        let config_path = dir.join("config.json");
        let config: Config = serde_json::from_slice(
            &std::fs::read(&config_path)
                .with_context(|| format!("reading {}", config_path.display()))?,
        )
        .with_context(|| format!("{} is not a BERT config", config_path.display()))?;
        let (h, inter, heads) = (
            config.hidden_size,
            config.intermediate_size,
            config.num_attention_heads,
        );
        if heads == 0 || h % heads != 0 {
            bail!(
                "{}: hidden_size {h} is not a multiple of {heads} heads",
                config_path.display()
            );
        }

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

        let path = dir.join("model.safetensors");
        let map: HashMap<String, Tensor> = candle_core::safetensors::load(&path, &Device::Cpu)
            .with_context(|| format!("reading {}", path.display()))?;
        let prefix = if map.keys().any(|k| k.starts_with("bert.")) {
            "bert."
        } else {
            ""
        };
        let w = Weights {
            map,
            prefix: prefix.into(),
            path: path.display().to_string(),
        };
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let p = format!("encoder.layer.{i}.");
            let t = |n: &str, shape: &[usize]| w.tensor(&format!("{p}{n}"), shape);
            let v = |n: &str, len: usize| w.vec(&format!("{p}{n}"), len);
            let qkv_w = Tensor::cat(
                &[
                    t("attention.self.query.weight", &[h, h])?,
                    t("attention.self.key.weight", &[h, h])?,
                    t("attention.self.value.weight", &[h, h])?,
                ],
                0,
            )?;
            let mut qkv_b = v("attention.self.query.bias", h)?;
            qkv_b.extend(v("attention.self.key.bias", h)?);
            qkv_b.extend(v("attention.self.value.bias", h)?);
            layers.push(Layer {
                qkv_w,
                qkv_b,
                attn_out_w: t("attention.output.dense.weight", &[h, h])?,
                attn_out_b: v("attention.output.dense.bias", h)?,
                ln1_w: v("attention.output.LayerNorm.weight", h)?,
                ln1_b: v("attention.output.LayerNorm.bias", h)?,
                inter_w: t("intermediate.dense.weight", &[inter, h])?,
                inter_b: v("intermediate.dense.bias", inter)?,
                out_w: t("output.dense.weight", &[h, inter])?,
                out_b: v("output.dense.bias", h)?,
                ln2_w: v("output.LayerNorm.weight", h)?,
                ln2_b: v("output.LayerNorm.bias", h)?,
            });
        }
        let types = w.flat(
            "embeddings.token_type_embeddings.weight",
            &[config.type_vocab_size, h],
        )?;
        Ok(Self {
            name,
            tokenizer,
            hidden: h,
            heads,
            eps: config.layer_norm_eps as f32,
            act: config.hidden_act,
            max_len,
            word_emb: w.flat("embeddings.word_embeddings.weight", &[config.vocab_size, h])?,
            pos_emb: w.flat(
                "embeddings.position_embeddings.weight",
                &[config.max_position_embeddings, h],
            )?,
            type0_emb: types.get(..h).map(<[f32]>::to_vec).unwrap_or_default(),
            emb_ln_w: w.vec("embeddings.LayerNorm.weight", h)?,
            emb_ln_b: w.vec("embeddings.LayerNorm.bias", h)?,
            layers,
            vocab: config.vocab_size,
            batch_tokens: 512,
        })
    }

    /// The longest input in tokens; longer texts are truncated.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// `x[t, in] @ w[out, in]^T + b`, the product by candle's gemm.
    fn linear(&self, x: Vec<f32>, t: usize, w: &Tensor, b: &[f32]) -> Result<Vec<f32>> {
        let (out, inp) = w.dims2()?;
        let xt = Tensor::from_vec(x, (t, inp), &Device::Cpu)?;
        let mut y = xt.matmul(&w.t()?)?.flatten_all()?.to_vec1::<f32>()?;
        for row in y.chunks_exact_mut(out) {
            row.iter_mut().zip(b).for_each(|(v, b)| *v += b);
        }
        Ok(y)
    }

    fn layer_norm(&self, x: &mut [f32], w: &[f32], b: &[f32]) {
        let h = self.hidden as f32;
        for row in x.chunks_exact_mut(self.hidden) {
            let mean = row.iter().sum::<f32>() / h;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / h;
            let inv = 1.0 / (var + self.eps).sqrt();
            for ((v, w), b) in row.iter_mut().zip(w).zip(b) {
                *v = (*v - mean) * inv * w + b;
            }
        }
    }

    /// Self-attention over each text's own rows; `qkv` is `[t, 3 * hidden]`.
    fn attention(&self, qkv: &[f32], lens: &[usize]) -> Vec<f32> {
        let h = self.hidden;
        let d = h / self.heads;
        let scale = 1.0 / (d as f32).sqrt();
        let t: usize = lens.iter().sum();
        let mut ctx = vec![0.0f32; t * h];
        let mut scores = Vec::new();
        let mut start = 0;
        for &len in lens {
            scores.resize(len, 0.0);
            for head in 0..self.heads {
                let (qo, ko, vo) = (head * d, h + head * d, 2 * h + head * d);
                for i in 0..len {
                    let qrow = (start + i) * 3 * h;
                    let q = qkv.get(qrow + qo..qrow + qo + d).unwrap_or(&[]);
                    let mut max = f32::NEG_INFINITY;
                    for (j, s) in scores.iter_mut().enumerate() {
                        let krow = (start + j) * 3 * h;
                        let k = qkv.get(krow + ko..krow + ko + d).unwrap_or(&[]);
                        *s = q.iter().zip(k).map(|(a, b)| a * b).sum::<f32>() * scale;
                        max = max.max(*s);
                    }
                    let mut sum = 0.0;
                    for s in scores.iter_mut() {
                        *s = (*s - max).exp();
                        sum += *s;
                    }
                    let inv = 1.0 / sum;
                    let orow = (start + i) * h + head * d;
                    if let Some(out) = ctx.get_mut(orow..orow + d) {
                        for (j, p) in scores.iter().enumerate() {
                            let vrow = (start + j) * 3 * h;
                            let v = qkv.get(vrow + vo..vrow + vo + d).unwrap_or(&[]);
                            let p = p * inv;
                            out.iter_mut().zip(v).for_each(|(o, v)| *o += p * v);
                        }
                    }
                }
            }
            start += len;
        }
        ctx
    }

    fn activation(&self, x: &mut [f32]) {
        match self.act {
            HiddenAct::Gelu => x.iter_mut().for_each(|v| *v = gelu_erf(*v)),
            HiddenAct::GeluApproximate => x.iter_mut().for_each(|v| {
                let u = 0.797_884_6 * (*v + 0.044_715 * *v * *v * *v);
                *v = 0.5 * *v * (1.0 + u.tanh());
            }),
            HiddenAct::Relu => x.iter_mut().for_each(|v| *v = v.max(0.0)),
        }
    }

    /// Token rows of one packed batch after the embedding layer and the first `upto`
    /// transformer layers: `[sum of lengths, hidden]`, text after text.
    pub(crate) fn hidden_states(&self, texts: &[&[u32]], upto: usize) -> Result<Vec<f32>> {
        let h = self.hidden;
        let lens: Vec<usize> = texts.iter().map(|ids| ids.len()).collect();
        let t: usize = lens.iter().sum();
        let mut x = Vec::with_capacity(t * h);
        for ids in texts {
            for (pos, &id) in ids.iter().enumerate() {
                let id = (id as usize).min(self.vocab - 1);
                let word = self.word_emb.get(id * h..(id + 1) * h).unwrap_or(&[]);
                let posv = self.pos_emb.get(pos * h..(pos + 1) * h).unwrap_or(&[]);
                x.extend(
                    word.iter()
                        .zip(posv)
                        .zip(&self.type0_emb)
                        .map(|((a, b), c)| a + b + c),
                );
            }
        }
        if x.len() != t * h {
            bail!("token id or position out of range for {}", self.name);
        }
        if t == 0 {
            return Ok(x);
        }
        self.layer_norm(&mut x, &self.emb_ln_w, &self.emb_ln_b);
        for l in self.layers.iter().take(upto) {
            let qkv = self.linear(x.clone(), t, &l.qkv_w, &l.qkv_b)?;
            let ctx = self.attention(&qkv, &lens);
            let attn = self.linear(ctx, t, &l.attn_out_w, &l.attn_out_b)?;
            x.iter_mut().zip(&attn).for_each(|(a, b)| *a += b);
            self.layer_norm(&mut x, &l.ln1_w, &l.ln1_b);
            let mut inter = self.linear(x.clone(), t, &l.inter_w, &l.inter_b)?;
            self.activation(&mut inter);
            let out = self.linear(inter, t, &l.out_w, &l.out_b)?;
            x.iter_mut().zip(&out).for_each(|(a, b)| *a += b);
            self.layer_norm(&mut x, &l.ln2_w, &l.ln2_b);
        }
        Ok(x)
    }

    /// Runs one packed batch; returns one normalised row per text.
    fn forward_packed(&self, texts: &[&[u32]]) -> Result<Vec<Vec<f32>>> {
        let h = self.hidden;
        let lens: Vec<usize> = texts.iter().map(|ids| ids.len()).collect();
        if lens.iter().sum::<usize>() == 0 {
            return Ok(vec![vec![0.0; h]; texts.len()]);
        }
        let x = self.hidden_states(texts, self.layers.len())?;
        let mut rows = Vec::with_capacity(texts.len());
        let mut start = 0;
        for &len in &lens {
            let mut pooled = vec![0.0f32; h];
            for r in start..start + len {
                let row = x.get(r * h..(r + 1) * h).unwrap_or(&[]);
                pooled.iter_mut().zip(row).for_each(|(p, v)| *p += v);
            }
            if len > 0 {
                let inv = 1.0 / len as f32;
                pooled.iter_mut().for_each(|p| *p *= inv);
            }
            l2_normalize(&mut pooled);
            rows.push(pooled);
            start += len;
        }
        Ok(rows)
    }
}

/// GELU with erf (BERT's "gelu"); erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7).
fn gelu_erf(x: f32) -> f32 {
    let z = x.abs() * std::f32::consts::FRAC_1_SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_8 + t * (-1.453_152 + t * 1.061_405_4))));
    let erf_abs = 1.0 - poly * (-z * z).exp();
    let erf = if x >= 0.0 { erf_abs } else { -erf_abs };
    0.5 * x * (1.0 + erf)
}

impl Embedder for MiniLmEmbedder {
    fn name(&self) -> &str {
        &self.name
    }

    fn dim(&self) -> usize {
        self.hidden
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
        // Pack consecutive texts into batches of at most `batch_tokens` rows (a longer text
        // gets a batch of its own).
        let budget = self.batch_tokens.max(1);
        let mut batches: Vec<std::ops::Range<usize>> = Vec::new();
        let (mut start, mut rows) = (0, 0);
        for (i, e) in encoded.iter().enumerate() {
            if rows > 0 && rows + e.len() > budget {
                batches.push(start..i);
                (start, rows) = (i, 0);
            }
            rows += e.len();
        }
        batches.push(start..encoded.len());
        let results: Vec<Vec<Vec<f32>>> = batches
            .par_iter()
            .with_max_len(1)
            .map(|r| {
                let ids: Vec<&[u32]> = encoded
                    .get(r.clone())
                    .unwrap_or(&[])
                    .iter()
                    .map(Vec::as_slice)
                    .collect();
                self.forward_packed(&ids)
            })
            .collect::<Result<_>>()?;
        Ok(results.into_iter().flatten().collect())
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
    /// mean pooling, L2 normalisation. Here the same sentences are packed into one batch with
    /// other texts of different lengths, and also run alone.
    #[test]
    fn matches_numpy_reference() {
        let e = model();
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data/embed/minilm_reference.json");
        let doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let sentences = doc["sentences"].as_array().unwrap();
        let mut texts: Vec<&str> = sentences
            .iter()
            .map(|s| s["text"].as_str().unwrap())
            .collect();
        let n_ref = texts.len();
        texts.push("a much longer filler sentence so that the reference sentences get padded in their batch, which must not change them at all");
        texts.push("ok");
        let got = e.embed(&texts).unwrap();
        for (s, row) in sentences.iter().zip(&got[..n_ref]) {
            let want: Vec<f32> = s["embedding"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect();
            assert_eq!(want.len(), row.len());
            let max_err = want
                .iter()
                .zip(row)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            eprintln!(
                "{}: max abs diff to the numpy reference {max_err:e}",
                s["text"]
            );
            assert!(max_err < 1e-3, "{}: max abs diff {max_err}", s["text"]);
        }
        // And the same rows with batch size 1 (no padding at all).
        let mut single = model();
        single.batch_tokens = 1;
        let alone = single.embed(&texts[..n_ref]).unwrap();
        for (a, b) in alone.iter().zip(&got) {
            let max_err = a
                .iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs())
                .fold(0f32, f32::max);
            assert!(max_err < 1e-4, "packing changed a vector by {max_err}");
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
