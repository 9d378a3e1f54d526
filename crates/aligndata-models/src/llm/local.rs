//! In-process GGUF inference on the CPU with candle, with ragged batched decoding.
//!
//! Why our own forward pass instead of `candle_transformers::models::quantized_llama`:
//! data generation needs throughput, and throughput on a CPU comes from running many sequences
//! through each pass over the weights. `quantized_llama` keeps one KV cache with one shared
//! position, so sequences of different prompt lengths cannot share a pass. Here:
//! - **Ragged batches, no padding.** Each step concatenates the new tokens of every active
//!   sequence (a whole prompt for a sequence just admitted, one token for one that is decoding)
//!   into one matrix, so the weight matmuls see `sum(new tokens)` rows. Attention, the only
//!   per-sequence part, runs per (sequence, head) over each sequence's own KV cache, in parallel
//!   with rayon. No pad tokens are computed and nothing needs masking.
//! - **Continuous batching.** A finished sequence's slot is refilled from the queue at the next
//!   step, so the batch stays full until the queue drains.
//! - **Batch-invariant results.** Every row of a quantized matmul is computed independently of the
//!   other rows, RoPE uses each sequence's own positions, and each sequence samples with its own
//!   RNG seeded from its request: a request gives bit-identical output alone or in a batch
//!   (with the f32 path off, see [`LocalConfig::dense_min_rows`]; with it on, only the same batch
//!   gives the same output).
//! - **Our own kernels for decoding.** Q4_1 and Q8_0 weights stay as they are in the file and
//!   are multiplied by Q8_1-quantized activations with AVX512-VNNI / AVX2 / portable kernels
//!   ([`super::qmat`]), each weight row against every sequence of the step while it is in cache:
//!   one pass over the weights serves the whole batch. candle's CPU backend has no SIMD kernel
//!   for Q4_1 (SmolLM2's default file), and one activation row at a time for the others. Formats
//!   that no SIMD kernel handles (Q5_0, Q5_1, f16) are re-quantized once at load to Q8_0 (finer
//!   than the source grid, so the model is essentially unchanged); Q4_0 and the k-quants use
//!   candle's kernels. q/k/v and gate/up are fused into single matmuls (fewer, larger passes
//!   over the weights; it matters for a model as small as SmolLM2-135M).
//! - **f32 GEMM for long prompts.** A step with hundreds of prompt rows is compute-bound, where
//!   candle's f32 GEMM is fastest; small models keep an f32 copy of the weights for steps of at
//!   least `dense_min_rows` rows (`dense_max_bytes`). Decode steps (one row per sequence) stay on
//!   the quantized kernels.
//!
//! Supported: `general.architecture` `llama` (also Mistral and SmolLM2 files, which use it) and
//! `qwen2` (q/k/v biases, NEOX RoPE); tokenizers of the byte-level BPE ("gpt2") kind. The chat
//! template comes from `tokenizer.chat_template`, rendered with minijinja (ChatML if absent).
//! `json_mode` is not enforced by constrained decoding; a reply that parses after the same repair
//! as the OpenAI backend's is returned repaired.
//!
//! Threads: the quantized matmuls, attention and candle's f32 GEMM all use rayon's pool, sized by
//! `RAYON_NUM_THREADS` (default: all cores); each forward pass runs on a pool thread.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use candle_core::quantized::{GgmlDType, QMatMul, QTensor, gguf_file};
use candle_core::{Device, Module, Tensor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

use super::qmat::{BlockQ8_1, QK, QMat, WeightKind, quantize_rows};
use super::tokenizer::GgufTokenizer;
use super::{
    Completion, CompletionRequest, FinishReason, Llm, Stats, Usage, apply_stop, cut_after_line,
};

/// Options for [`LocalLlm`].
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// Sequences decoded together in each forward pass.
    pub max_batch: usize,
    /// Cap on prompt tokens admitted into one step (bounds activation memory).
    pub max_prefill_tokens: usize,
    /// Keep generating past end-of-generation tokens (benchmarks: fixed output lengths).
    pub ignore_eos: bool,
    /// Also keep f32 copies of the weights, used when a step has at least `dense_min_rows`
    /// rows (long prompts, many prompts admitted together): there candle's f32 GEMM is faster
    /// than the quantized kernels, at 4 bytes per weight. Off for models whose f32 copy would
    /// exceed `dense_max_bytes`. 0 turns it off.
    ///
    /// Trade-off: with it on, a prompt's prefill uses the f32 or the quantized kernels depending
    /// on how many rows its step has (decode steps of up to `dense_min_rows - 1` sequences always
    /// use the quantized ones), so a request's text alone and in a batch can differ (both are
    /// samples of the same model; the rows of one step are still independent of each other).
    /// With it off, output is bit-identical alone or batched.
    pub dense_min_rows: usize,
    pub dense_max_bytes: u64,
}

impl Default for LocalConfig {
    fn default() -> Self {
        Self {
            max_batch: 16,
            max_prefill_tokens: 4096,
            ignore_eos: false,
            dense_min_rows: 64,
            dense_max_bytes: 2 << 30,
        }
    }
}

/// A GGUF model running in-process.
pub struct LocalLlm {
    model: Model,
    tok: GgufTokenizer,
    template: Option<String>,
    model_id: String,
    cfg: LocalConfig,
    stats: std::sync::Mutex<Stats>,
}

/// One weight matrix: our own kernels for Q4_1/Q8_0 (see [`super::qmat`]), candle's for the
/// rest (k-quants, f16, f32).
enum Mat {
    Own(QMat),
    Candle(QMatMul),
}

impl Mat {
    fn width(&self) -> Result<usize> {
        Ok(match self {
            Mat::Own(q) => q.rows(),
            Mat::Candle(QMatMul::QTensor(q)) => q.shape().dims2()?.0,
            Mat::Candle(QMatMul::Tensor(t) | QMatMul::TensorF16(t)) => t.dims2()?.0,
        })
    }
}

/// One or more weight matrices applied to the same input; fused into one matmul when they have
/// the same format (see the module docs).
struct Proj {
    mats: Vec<Mat>,
    /// f32 copies of `mats` for steps with many rows (see [`LocalConfig::dense_min_rows`]).
    dense: Vec<QMatMul>,
    /// For each logical output (e.g. q, k, v): (index in `mats`, column offset, width).
    parts: Vec<(usize, usize, usize)>,
    /// Output width of each matrix in `mats`.
    widths: Vec<usize>,
    in_dim: usize,
}

/// A read-only view of columns `[off, off + width)` of a row-major buffer.
#[derive(Clone, Copy)]
struct View<'a> {
    data: &'a [f32],
    stride: usize,
    off: usize,
    width: usize,
}

impl<'a> View<'a> {
    fn row(&self, r: usize) -> &'a [f32] {
        let s = r * self.stride + self.off;
        &self.data[s..s + self.width]
    }
}

/// Formats with a SIMD kernel in candle's CPU backend (kept as they are when not ours).
fn fast_on_cpu(dt: GgmlDType) -> bool {
    matches!(
        dt,
        GgmlDType::Q4_0
            | GgmlDType::Q8_0
            | GgmlDType::Q2K
            | GgmlDType::Q3K
            | GgmlDType::Q4K
            | GgmlDType::Q5K
            | GgmlDType::Q6K
            | GgmlDType::F32
    )
}

/// Converts a tensor to one of our kernels' formats: Q4_1 and Q8_0 as they are; formats that no
/// SIMD kernel handles (Q5_0, Q5_1, f16, ...) re-quantized to Q8_0 once at load (finer than
/// the 4/5-bit source grids, so the model is essentially unchanged). `None`: left to candle
/// (Q4_0, the k-quants, f32), or a width that is not a multiple of 32.
fn to_own(q: &QTensor) -> Result<Option<QMat>> {
    let (rows, cols) = q.shape().dims2()?;
    if !cols.is_multiple_of(QK) {
        return Ok(None);
    }
    let (kind, raw) = match q.dtype() {
        GgmlDType::Q4_1 => (WeightKind::Q4_1, q.data()?.into_owned()),
        GgmlDType::Q8_0 => (WeightKind::Q8_0, q.data()?.into_owned()),
        dt if !fast_on_cpu(dt) => {
            let t = q.dequantize(&Device::Cpu)?;
            let q8 = QTensor::quantize(&t, GgmlDType::Q8_0)?;
            (WeightKind::Q8_0, q8.data()?.into_owned())
        }
        _ => return Ok(None),
    };
    Ok(Some(QMat::from_gguf(kind, rows, cols, &raw)?))
}

impl Proj {
    fn load(qts: Vec<QTensor>, dense: bool) -> Result<Self> {
        let dev = Device::Cpu;
        let mut outs = Vec::new();
        let mut in_dim = 0;
        for q in &qts {
            let (o, i) = q.shape().dims2()?;
            outs.push(o);
            in_dim = i;
        }
        let own = qts.iter().map(to_own).collect::<Result<Vec<_>>>()?;
        let fusable = own.iter().all(|o| o.is_some()) && {
            let kinds: Vec<_> = own.iter().flatten().map(|o| o.kind()).collect();
            kinds.windows(2).all(|w| w[0] == w[1])
        };
        // Each group of source tensors becomes one matrix of `mats`.
        let groups: Vec<Vec<usize>> = if fusable {
            vec![(0..qts.len()).collect()]
        } else {
            (0..qts.len()).map(|i| vec![i]).collect()
        };
        let dense_mats = if dense {
            groups
                .iter()
                .map(|g| {
                    let deq = g
                        .iter()
                        .map(|&i| qts[i].dequantize(&dev))
                        .collect::<candle_core::Result<Vec<_>>>()?;
                    Ok(QMatMul::Tensor(Tensor::cat(&deq, 0)?))
                })
                .collect::<Result<Vec<_>>>()?
        } else {
            Vec::new()
        };
        let mut own: Vec<Option<QMat>> = own;
        let mut qts: Vec<Option<QTensor>> = qts.into_iter().map(Some).collect();
        let mut mats = Vec::new();
        let mut parts = vec![(0, 0, 0); outs.len()];
        for (gi, g) in groups.iter().enumerate() {
            let mut off = 0;
            for &i in g {
                parts[i] = (gi, off, outs[i]);
                off += outs[i];
            }
            let mine: Vec<QMat> = g.iter().filter_map(|&i| own[i].take()).collect();
            if mine.len() == g.len() {
                mats.push(Mat::Own(QMat::concat(mine)?));
            } else {
                let q = qts[g[0]].take().context("internal: tensor used twice")?;
                mats.push(Mat::Candle(QMatMul::from_qtensor(q)?));
            }
        }
        let widths = mats.iter().map(Mat::width).collect::<Result<Vec<_>>>()?;
        Ok(Self {
            mats,
            dense: dense_mats,
            parts,
            widths,
            in_dim,
        })
    }

    /// Applies every matrix to the `rows` rows of `x`; `scratch` holds the quantized input.
    fn forward(
        &self,
        x: &[f32],
        rows: usize,
        dense_min_rows: usize,
        scratch: &mut Vec<BlockQ8_1>,
    ) -> Result<Vec<Vec<f32>>> {
        if rows >= dense_min_rows && !self.dense.is_empty() {
            let t = Tensor::from_slice(x, (rows, self.in_dim), &Device::Cpu)?;
            return self
                .dense
                .iter()
                .map(|m| Ok(m.forward(&t)?.flatten_all()?.to_vec1::<f32>()?))
                .collect();
        }
        let mut quantized = false;
        let mut tensor = None;
        self.mats
            .iter()
            .map(|m| match m {
                Mat::Own(q) => {
                    if !quantized {
                        quantize_rows(x, rows, scratch);
                        quantized = true;
                    }
                    let mut out = vec![0f32; rows * q.rows()];
                    q.matmul(scratch, rows, &mut out);
                    Ok(out)
                }
                Mat::Candle(c) => {
                    if tensor.is_none() {
                        tensor = Some(Tensor::from_slice(x, (rows, self.in_dim), &Device::Cpu)?);
                    }
                    let t = tensor.as_ref().context("internal: no input tensor")?;
                    Ok(c.forward(t)?.flatten_all()?.to_vec1::<f32>()?)
                }
            })
            .collect()
    }

    fn view<'a>(&self, bufs: &'a [Vec<f32>], part: usize) -> View<'a> {
        let (m, off, width) = self.parts[part];
        View {
            data: &bufs[m],
            stride: self.widths[m],
            off,
            width,
        }
    }
}

struct Layer {
    attn_norm: Vec<f32>,
    qkv: Proj,
    bias: Option<[Vec<f32>; 3]>,
    wo: Proj,
    ffn_norm: Vec<f32>,
    gate_up: Proj,
    down: Proj,
}

struct Model {
    embed: Vec<f32>,
    layers: Vec<Layer>,
    norm: Vec<f32>,
    output: Proj,
    dim: usize,
    n_head: usize,
    n_kv: usize,
    head_dim: usize,
    rope_dim: usize,
    neox: bool,
    eps: f32,
    vocab: usize,
    n_ctx: usize,
    dense_min_rows: usize,
    /// cos/sin per position and frequency, `[pos * rope_dim/2 + i]`.
    cos: Vec<f32>,
    sin: Vec<f32>,
}

/// Per-sequence KV cache: per layer, `[pos][kv_head][head_dim]` appended as tokens arrive.
struct SeqKv {
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    len: usize,
}

fn rmsnorm(x: &[f32], w: &[f32], eps: f32, rows: usize) -> Vec<f32> {
    let d = w.len();
    let mut out = vec![0f32; rows * d];
    let norm = |(o, xr): (&mut [f32], &[f32])| {
        let ss: f32 = xr.iter().map(|v| v * v).sum::<f32>() / d as f32;
        let s = 1.0 / (ss + eps).sqrt();
        for ((o, &xv), &wv) in o.iter_mut().zip(xr).zip(w) {
            *o = xv * s * wv;
        }
    };
    // Handing tiny jobs to the thread pool costs more than it saves (decode steps).
    if rows < 32 {
        out.chunks_mut(d).zip(x.chunks(d)).for_each(norm);
    } else {
        out.par_chunks_mut(d)
            .zip(x.par_chunks(d))
            .with_min_len(8)
            .for_each(norm);
    }
    out
}

#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

fn md<'a>(ct: &'a gguf_file::Content, key: &str) -> Result<&'a gguf_file::Value> {
    ct.metadata
        .get(key)
        .with_context(|| format!("GGUF metadata has no {key}"))
}

impl Model {
    fn load(ct: &gguf_file::Content, r: &mut BufReader<File>, cfg: &LocalConfig) -> Result<Self> {
        let dev = Device::Cpu;
        let n_params: u64 = ct
            .tensor_infos
            .values()
            .map(|t| t.shape.elem_count() as u64)
            .sum();
        let dense = cfg.dense_min_rows > 0 && n_params.saturating_mul(4) <= cfg.dense_max_bytes;
        let dense_min_rows = if dense {
            cfg.dense_min_rows
        } else {
            usize::MAX
        };
        let arch = md(ct, "general.architecture")?.to_string()?.clone();
        let (bias, neox) = match arch.as_str() {
            "llama" | "mistral" => (false, false),
            "qwen2" => (true, true),
            other => bail!(
                "GGUF architecture {other:?} is not supported in-process (llama, mistral, qwen2 are)"
            ),
        };
        let u =
            |k: &str| -> Result<usize> { Ok(md(ct, &format!("{arch}.{k}"))?.to_u32()? as usize) };
        let n_head = u("attention.head_count")?;
        let n_kv = u("attention.head_count_kv").unwrap_or(n_head);
        let n_layers = u("block_count")?;
        let dim = u("embedding_length")?;
        let n_ctx = u("context_length").unwrap_or(4096);
        let eps = md(ct, &format!("{arch}.attention.layer_norm_rms_epsilon"))?.to_f32()?;
        let freq_base = md(ct, &format!("{arch}.rope.freq_base"))
            .and_then(|v| Ok(v.to_f32()?))
            .unwrap_or(10000.0);
        if n_head == 0 || n_kv == 0 || n_head % n_kv != 0 || dim % n_head != 0 {
            bail!("inconsistent GGUF head counts: {n_head} heads, {n_kv} kv heads, dim {dim}");
        }
        let head_dim = dim / n_head;
        let rope_dim = u("rope.dimension_count").unwrap_or(head_dim).min(head_dim);

        let t = |name: &str, r: &mut BufReader<File>| -> Result<QTensor> {
            ct.tensor(r, name, &dev)
                .with_context(|| format!("GGUF tensor {name}"))
        };
        let vecf = |q: QTensor| -> Result<Vec<f32>> {
            Ok(q.dequantize(&dev)?.flatten_all()?.to_vec1::<f32>()?)
        };

        // RoPE tables; Llama 3 style frequency factors when the file has them.
        let freq_factors = match ct.tensor(r, "rope_freqs.weight", &dev) {
            Ok(q) => Some(vecf(q)?),
            Err(_) => None,
        };
        let half = rope_dim / 2;
        let table_len = n_ctx.max(1);
        let mut cos = vec![0f32; table_len * half];
        let mut sin = vec![0f32; table_len * half];
        for i in 0..half {
            let mut theta = 1f32 / freq_base.powf(2.0 * i as f32 / rope_dim as f32);
            if let Some(ff) = &freq_factors {
                theta /= ff.get(i).copied().unwrap_or(1.0);
            }
            for p in 0..table_len {
                let a = p as f32 * theta;
                cos[p * half + i] = a.cos();
                sin[p * half + i] = a.sin();
            }
        }

        let embd_q = t("token_embd.weight", r)?;
        let (vocab, edim) = embd_q.shape().dims2()?;
        if edim != dim {
            bail!("token_embd has width {edim}, expected {dim}");
        }
        let embed = vecf(embd_q)?;
        let output = match ct.tensor(r, "output.weight", &dev) {
            Ok(q) => q,
            Err(_) => t("token_embd.weight", r)?,
        };
        let output = Proj::load(vec![output], dense)?;
        let norm = vecf(t("output_norm.weight", r)?)?;
        let mut layers = Vec::with_capacity(n_layers);
        for l in 0..n_layers {
            let p = format!("blk.{l}");
            let n = |s: &str| format!("{p}.{s}");
            let qkv = Proj::load(
                vec![
                    t(&n("attn_q.weight"), r)?,
                    t(&n("attn_k.weight"), r)?,
                    t(&n("attn_v.weight"), r)?,
                ],
                dense,
            )?;
            let bias = if bias {
                Some([
                    vecf(t(&n("attn_q.bias"), r)?)?,
                    vecf(t(&n("attn_k.bias"), r)?)?,
                    vecf(t(&n("attn_v.bias"), r)?)?,
                ])
            } else {
                None
            };
            layers.push(Layer {
                attn_norm: vecf(t(&n("attn_norm.weight"), r)?)?,
                qkv,
                bias,
                wo: Proj::load(vec![t(&n("attn_output.weight"), r)?], dense)?,
                ffn_norm: vecf(t(&n("ffn_norm.weight"), r)?)?,
                gate_up: Proj::load(
                    vec![t(&n("ffn_gate.weight"), r)?, t(&n("ffn_up.weight"), r)?],
                    dense,
                )?,
                down: Proj::load(vec![t(&n("ffn_down.weight"), r)?], dense)?,
            });
        }
        Ok(Self {
            embed,
            layers,
            norm,
            output,
            dim,
            n_head,
            n_kv,
            head_dim,
            rope_dim,
            neox,
            dense_min_rows,
            eps,
            vocab,
            n_ctx,
            cos,
            sin,
        })
    }

    fn new_kv(&self) -> SeqKv {
        SeqKv {
            k: vec![Vec::new(); self.layers.len()],
            v: vec![Vec::new(); self.layers.len()],
            len: 0,
        }
    }

    fn rope(&self, x: &mut [f32], pos: usize) {
        let half = self.rope_dim / 2;
        let cs = &self.cos[pos * half..(pos + 1) * half];
        let sn = &self.sin[pos * half..(pos + 1) * half];
        for head in x.chunks_mut(self.head_dim) {
            for i in 0..half {
                let (a, b) = if self.neox {
                    (i, i + half)
                } else {
                    (2 * i, 2 * i + 1)
                };
                let (x0, x1) = (head[a], head[b]);
                head[a] = x0 * cs[i] - x1 * sn[i];
                head[b] = x0 * sn[i] + x1 * cs[i];
            }
        }
    }

    /// One step: feeds `tokens[s]` to sequence `s` and returns each sequence's next-token logits.
    fn forward(&self, seqs: &mut [&mut SeqKv], tokens: &[&[u32]]) -> Result<Vec<Vec<f32>>> {
        let dim = self.dim;
        let rows: usize = tokens.iter().map(|t| t.len()).sum();
        let mut starts = Vec::with_capacity(tokens.len());
        let mut acc = 0;
        for t in tokens {
            if t.is_empty() {
                bail!("internal: empty step for a sequence");
            }
            starts.push(acc);
            acc += t.len();
        }
        for (s, t) in seqs.iter().zip(tokens) {
            if s.len + t.len() > self.n_ctx {
                bail!("context window of {} tokens exceeded", self.n_ctx);
            }
        }
        let mut scratch = Vec::new();
        let mut x = vec![0f32; rows * dim];
        for (row, &tok) in tokens.iter().flat_map(|t| t.iter()).enumerate() {
            let tok = tok as usize;
            if tok >= self.vocab {
                bail!("token id {tok} out of range");
            }
            x[row * dim..(row + 1) * dim].copy_from_slice(&self.embed[tok * dim..(tok + 1) * dim]);
        }
        let hd = self.head_dim;
        let kvw = self.n_kv * hd;
        let qw = self.n_head * hd;
        let n_rep = self.n_head / self.n_kv;
        let scale = 1.0 / (hd as f32).sqrt();

        for (li, layer) in self.layers.iter().enumerate() {
            let h = rmsnorm(&x, &layer.attn_norm, self.eps, rows);
            let bufs = layer
                .qkv
                .forward(&h, rows, self.dense_min_rows, &mut scratch)?;
            let (qv, kv, vv) = (
                layer.qkv.view(&bufs, 0),
                layer.qkv.view(&bufs, 1),
                layer.qkv.view(&bufs, 2),
            );
            // RoPE'd queries for all rows; keys/values appended to each sequence's cache.
            let mut q = vec![0f32; rows * qw];
            for (si, seq) in seqs.iter_mut().enumerate() {
                let base = seq.len;
                for i in 0..tokens[si].len() {
                    let row = starts[si] + i;
                    let pos = base + i;
                    let qr = &mut q[row * qw..(row + 1) * qw];
                    qr.copy_from_slice(qv.row(row));
                    let mut kr = kv.row(row).to_vec();
                    let mut vr = vv.row(row).to_vec();
                    if let Some([bq, bk, bv]) = &layer.bias {
                        qr.iter_mut().zip(bq).for_each(|(a, b)| *a += b);
                        kr.iter_mut().zip(bk).for_each(|(a, b)| *a += b);
                        vr.iter_mut().zip(bv).for_each(|(a, b)| *a += b);
                    }
                    self.rope(qr, pos);
                    self.rope(&mut kr, pos);
                    seq.k[li].extend_from_slice(&kr);
                    seq.v[li].extend_from_slice(&vr);
                }
            }
            // Attention per (sequence, head), in parallel.
            let seqs_ro: Vec<&SeqKv> = seqs.iter().map(|s| &**s).collect();
            let tasks: Vec<(usize, usize)> = (0..seqs.len())
                .flat_map(|s| (0..self.n_head).map(move |h| (s, h)))
                .collect();
            let q_ref = &q;
            let work: usize = tokens
                .iter()
                .zip(seqs_ro.iter())
                .map(|(t, s)| t.len() * (s.len + t.len()))
                .sum();
            let attend = |&(si, head): &(usize, usize)| {
                let seq = seqs_ro[si];
                let n_new = tokens[si].len();
                let base = seq.len;
                let g = head / n_rep;
                let kc = &seq.k[li];
                let vc = &seq.v[li];
                let mut out = vec![0f32; n_new * hd];
                let mut scores = Vec::with_capacity(base + n_new);
                for i in 0..n_new {
                    let row = starts[si] + i;
                    let qh = &q_ref[row * qw + head * hd..row * qw + (head + 1) * hd];
                    let upto = base + i + 1;
                    scores.clear();
                    let mut mx = f32::NEG_INFINITY;
                    for j in 0..upto {
                        let s = dot(qh, &kc[j * kvw + g * hd..j * kvw + (g + 1) * hd]) * scale;
                        mx = mx.max(s);
                        scores.push(s);
                    }
                    let mut sum = 0f32;
                    for s in scores.iter_mut() {
                        *s = (*s - mx).exp();
                        sum += *s;
                    }
                    let o = &mut out[i * hd..(i + 1) * hd];
                    for (j, &w) in scores.iter().enumerate() {
                        let w = w / sum;
                        let vr = &vc[j * kvw + g * hd..j * kvw + (g + 1) * hd];
                        for (a, &b) in o.iter_mut().zip(vr) {
                            *a += w * b;
                        }
                    }
                }
                out
            };
            let outs: Vec<Vec<f32>> = if work * self.n_head < 1 << 12 {
                tasks.iter().map(attend).collect()
            } else {
                tasks.par_iter().map(attend).collect()
            };
            drop(seqs_ro);
            let mut attn = vec![0f32; rows * qw];
            for (&(si, head), out) in tasks.iter().zip(&outs) {
                for i in 0..tokens[si].len() {
                    let row = starts[si] + i;
                    attn[row * qw + head * hd..row * qw + (head + 1) * hd]
                        .copy_from_slice(&out[i * hd..(i + 1) * hd]);
                }
            }
            let o = layer
                .wo
                .forward(&attn, rows, self.dense_min_rows, &mut scratch)?;
            x.iter_mut().zip(&o[0]).for_each(|(a, b)| *a += b);

            let h = rmsnorm(&x, &layer.ffn_norm, self.eps, rows);
            let bufs = layer
                .gate_up
                .forward(&h, rows, self.dense_min_rows, &mut scratch)?;
            let (gv, uv) = (layer.gate_up.view(&bufs, 0), layer.gate_up.view(&bufs, 1));
            let ff = gv.width;
            let mut act = vec![0f32; rows * ff];
            let silu_mul = |(r, a): (usize, &mut [f32])| {
                for ((a, &g), &u) in a.iter_mut().zip(gv.row(r)).zip(uv.row(r)) {
                    *a = g / (1.0 + (-g).exp()) * u;
                }
            };
            if rows < 32 {
                act.chunks_mut(ff).enumerate().for_each(silu_mul);
            } else {
                act.par_chunks_mut(ff)
                    .enumerate()
                    .with_min_len(4)
                    .for_each(silu_mul);
            }
            let d = layer
                .down
                .forward(&act, rows, self.dense_min_rows, &mut scratch)?;
            x.iter_mut().zip(&d[0]).for_each(|(a, b)| *a += b);
        }
        for (s, t) in seqs.iter_mut().zip(tokens) {
            s.len += t.len();
        }
        // Logits for the last new token of each sequence only.
        let mut last = Vec::with_capacity(tokens.len() * dim);
        for (si, t) in tokens.iter().enumerate() {
            let row = starts[si] + t.len() - 1;
            last.extend_from_slice(&x[row * dim..(row + 1) * dim]);
        }
        let h = rmsnorm(&last, &self.norm, self.eps, tokens.len());
        let logits = self
            .output
            .forward(&h, tokens.len(), self.dense_min_rows, &mut scratch)?;
        let lv = self.output.view(&logits, 0);
        Ok((0..tokens.len()).map(|i| lv.row(i).to_vec()).collect())
    }
}

/// Samples a token: greedy at temperature 0, else temperature + nucleus (top-p) sampling.
fn sample(logits: &[f32], temperature: f32, top_p: f32, rng: &mut StdRng) -> u32 {
    let argmax = || {
        let mut best = 0usize;
        for (i, &v) in logits.iter().enumerate() {
            if v > logits[best] {
                best = i;
            }
        }
        best as u32
    };
    if temperature <= 0.0 || !temperature.is_finite() {
        return argmax();
    }
    let mx = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let inv_t = 1.0 / temperature;
    let probs: Vec<f32> = logits.iter().map(|&l| ((l - mx) * inv_t).exp()).collect();
    let total: f32 = probs.iter().sum();
    if total.is_nan() || total <= 0.0 || total.is_infinite() {
        return argmax();
    }
    let top_p = if top_p > 0.0 && top_p < 1.0 {
        top_p
    } else {
        1.0
    };
    if top_p >= 1.0 {
        let mut u = rng.random::<f32>() * total;
        for (i, &p) in probs.iter().enumerate() {
            u -= p;
            if u <= 0.0 {
                return i as u32;
            }
        }
        return argmax();
    }
    // Nucleus: the smallest set of most likely tokens whose mass reaches top_p. Look at the top
    // k first (cheap partial selection) and widen only if their mass falls short: exact.
    let mut idx: Vec<u32> = (0..probs.len() as u32).collect();
    let by_prob_desc = |a: &u32, b: &u32| {
        probs[*b as usize]
            .total_cmp(&probs[*a as usize])
            .then(a.cmp(b))
    };
    let mut k = 64.min(idx.len());
    loop {
        if k < idx.len() {
            idx.select_nth_unstable_by(k, by_prob_desc);
        }
        idx[..k].sort_unstable_by(by_prob_desc);
        let mut cum = 0f32;
        let mut cut = None;
        for (n, &i) in idx[..k].iter().enumerate() {
            cum += probs[i as usize];
            if cum >= top_p * total {
                cut = Some(n + 1);
                break;
            }
        }
        if let Some(cut) = cut.or(if k == idx.len() { Some(k) } else { None }) {
            let mass: f32 = idx[..cut].iter().map(|&i| probs[i as usize]).sum();
            let mut u = rng.random::<f32>() * mass;
            for &i in &idx[..cut] {
                u -= probs[i as usize];
                if u <= 0.0 {
                    return i;
                }
            }
            return idx[cut - 1];
        }
        k = (k * 8).min(idx.len());
    }
}

struct Active {
    idx: usize,
    kv: SeqKv,
    feed: Vec<u32>,
    prompt_len: usize,
    generated: Vec<u32>,
    rng: StdRng,
    checked: usize,
    stopped: bool,
    /// The output so far has a non-space character (see `CompletionRequest::require_text`).
    has_text: bool,
}

impl LocalLlm {
    /// Loads a GGUF file (weights, tokenizer and chat template).
    pub fn load(path: &Path, cfg: LocalConfig) -> Result<Self> {
        let file = File::open(path).with_context(|| format!("opening GGUF {}", path.display()))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let mut r = BufReader::new(file);
        let ct = gguf_file::Content::read(&mut r)
            .with_context(|| format!("reading GGUF {}", path.display()))?;
        let tok = GgufTokenizer::from_gguf(&ct)?;
        let template = ct
            .metadata
            .get("tokenizer.chat_template")
            .and_then(|v| v.to_string().ok())
            .cloned();
        let model = Model::load(&ct, &mut r, &cfg)
            .with_context(|| format!("loading GGUF {}", path.display()))?;
        let name = ct
            .metadata
            .get("general.name")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_default();
        let file_name = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let model_id = format!("gguf:{file_name}:{size}:{name}");
        let cfg = LocalConfig {
            max_batch: cfg.max_batch.max(1),
            max_prefill_tokens: cfg.max_prefill_tokens.max(1),
            ..cfg
        };
        Ok(Self {
            model,
            tok,
            template,
            model_id,
            cfg,
            stats: Default::default(),
        })
    }

    /// Changes the batching options of a loaded model.
    pub fn set_config(&mut self, cfg: LocalConfig) {
        self.model.dense_min_rows = if cfg.dense_min_rows == 0 {
            usize::MAX
        } else {
            cfg.dense_min_rows
        };
        self.cfg = LocalConfig {
            max_batch: cfg.max_batch.max(1),
            max_prefill_tokens: cfg.max_prefill_tokens.max(1),
            ..cfg
        };
    }

    pub fn context_length(&self) -> usize {
        self.model.n_ctx
    }

    /// Encodes text with the model's tokenizer (no special tokens added).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.tok.encode(text)
    }

    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.tok.decode(ids)
    }

    /// The text the model is given for a request: the rendered chat template, or the raw prompt.
    pub fn render_prompt(&self, req: &CompletionRequest) -> Result<String> {
        if let Some(p) = &req.raw_prompt {
            return Ok(p.clone());
        }
        let tok_text = |id: Option<u32>| {
            id.and_then(|i| self.tok.token_text(i))
                .unwrap_or("")
                .to_string()
        };
        match &self.template {
            Some(tpl) => {
                let messages: Vec<minijinja::Value> = req
                    .messages
                    .iter()
                    .map(|m| {
                        minijinja::Value::from_pairs([
                            ("role", m.role.as_str()),
                            ("content", m.content.as_str()),
                        ])
                    })
                    .collect();
                let mut env = minijinja::Environment::new();
                env.add_function(
                    "raise_exception",
                    |msg: String| -> std::result::Result<String, minijinja::Error> {
                        Err(minijinja::Error::new(
                            minijinja::ErrorKind::InvalidOperation,
                            msg,
                        ))
                    },
                );
                env.add_template("chat", tpl)
                    .map_err(|e| anyhow!("chat template: {e}"))?;
                let t = env
                    .get_template("chat")
                    .map_err(|e| anyhow!("chat template: {e}"))?;
                t.render(minijinja::context! {
                    messages => minijinja::Value::from(messages),
                    add_generation_prompt => true,
                    bos_token => tok_text(self.tok.bos),
                    eos_token => tok_text(self.tok.eos),
                })
                .map_err(|e| anyhow!("rendering chat template: {e}"))
            }
            None => {
                let mut s = String::new();
                for m in &req.messages {
                    s.push_str(&format!(
                        "<|im_start|>{}\n{}<|im_end|>\n",
                        m.role, m.content
                    ));
                }
                s.push_str("<|im_start|>assistant\n");
                Ok(s)
            }
        }
    }

    /// Prompt token ids for a request.
    pub fn prompt_tokens(&self, req: &CompletionRequest) -> Result<Vec<u32>> {
        let text = self.render_prompt(req)?;
        let mut ids = self.tok.encode(&text)?;
        if self.tok.add_bos
            && let Some(b) = self.tok.bos
            && ids.first() != Some(&b)
        {
            ids.insert(0, b);
        }
        if ids.is_empty() {
            bail!("empty prompt");
        }
        if ids.len() >= self.model.n_ctx {
            bail!(
                "prompt of {} tokens does not fit the context window of {}",
                ids.len(),
                self.model.n_ctx
            );
        }
        Ok(ids)
    }

    fn finish(
        &self,
        req: &CompletionRequest,
        a: &Active,
        reason: FinishReason,
    ) -> Result<Completion> {
        let ids: Vec<u32> = a
            .generated
            .iter()
            .copied()
            .filter(|t| !self.tok.end_of_generation.contains(t))
            .collect();
        let mut text = self.tok.decode(&ids)?;
        let mut reason = reason;
        // Both cuts apply (a stop string can end the text after its first message line).
        let stopped = apply_stop(&mut text, &req.stop, 0);
        let line_cut = req
            .stop_after_line
            .is_some_and(|n| cut_after_line(&mut text, n, 0));
        if stopped || line_cut {
            reason = FinishReason::Stop;
        }
        if req.json_mode
            && let Some(fixed) = super::openai::repair_json(&text)
        {
            text = fixed;
        }
        Ok(Completion {
            text,
            finish_reason: reason,
            usage: Usage {
                prompt_tokens: a.prompt_len as u32,
                completion_tokens: a.generated.len() as u32,
            },
            cached: false,
        })
    }
}

impl Llm for LocalLlm {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn stats(&self) -> Stats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn complete_each(
        &self,
        requests: &[CompletionRequest],
        on_result: &mut dyn FnMut(usize, &Result<Completion>),
    ) -> Vec<Result<Completion>> {
        let mut results: Vec<Option<Result<Completion>>> =
            (0..requests.len()).map(|_| None).collect();
        let mut queue = std::collections::VecDeque::new();
        let mut prompt_toks = 0u64;
        let mut completion_toks = 0u64;
        let mut failures = 0u64;
        for (i, req) in requests.iter().enumerate() {
            match self.prompt_tokens(req) {
                Ok(ids) if req.max_tokens == 0 => {
                    let r = Ok(Completion {
                        text: String::new(),
                        finish_reason: FinishReason::Length,
                        usage: Usage {
                            prompt_tokens: ids.len() as u32,
                            completion_tokens: 0,
                        },
                        cached: false,
                    });
                    on_result(i, &r);
                    results[i] = Some(r);
                }
                Ok(ids) => queue.push_back((i, ids)),
                Err(e) => {
                    failures += 1;
                    let r = Err(e);
                    on_result(i, &r);
                    results[i] = Some(r);
                }
            }
        }
        let mut active: Vec<Active> = Vec::new();
        loop {
            let mut prefill = 0usize;
            while active.len() < self.cfg.max_batch {
                let Some((_, ids)) = queue.front() else { break };
                if prefill > 0 && prefill + ids.len() > self.cfg.max_prefill_tokens {
                    break;
                }
                let Some((i, ids)) = queue.pop_front() else {
                    break;
                };
                prefill += ids.len();
                active.push(Active {
                    idx: i,
                    kv: self.model.new_kv(),
                    prompt_len: ids.len(),
                    feed: ids,
                    generated: Vec::new(),
                    rng: StdRng::seed_from_u64(requests[i].seed),
                    checked: 0,
                    stopped: false,
                    has_text: false,
                });
            }
            if active.is_empty() {
                break;
            }
            let step = {
                let (mut kvs, feeds): (Vec<&mut SeqKv>, Vec<&[u32]>) = active
                    .iter_mut()
                    .map(|a| (&mut a.kv, a.feed.as_slice()))
                    .unzip();
                // On a pool thread: the matmuls' parallel loops then start from inside the pool
                // instead of each handing work over from outside it and sleeping until it is done
                // (about 120 hand-overs per step).
                rayon::scope(|_| self.model.forward(&mut kvs, &feeds))
            };
            let logits = match step {
                Ok(l) => l,
                Err(e) => {
                    // A failed step fails every sequence in it.
                    let msg = format!("{e:#}");
                    for a in active.drain(..) {
                        failures += 1;
                        let r = Err(anyhow!("local generation failed: {msg}"));
                        on_result(a.idx, &r);
                        results[a.idx] = Some(r);
                    }
                    continue;
                }
            };
            let mut still = Vec::with_capacity(active.len());
            for (mut a, mut lg) in active.drain(..).zip(logits) {
                let req = &requests[a.idx];
                if req.require_text && !a.has_text {
                    for &t in &self.tok.end_of_generation {
                        if let Some(l) = lg.get_mut(t as usize) {
                            *l = f32::NEG_INFINITY;
                        }
                    }
                }
                let mut tok = sample(&lg, req.temperature, req.top_p, &mut a.rng);
                if req.require_text && !a.has_text && !req.stop.is_empty() {
                    // A stop string before any text ends the reply as surely as an end token
                    // (a continuation whose first line is the next tag, "\n["): such a token is
                    // masked and the step sampled again, a few times at most.
                    for _ in 0..4 {
                        a.generated.push(tok);
                        let empty_stop = self.tok.decode(&a.generated).is_ok_and(|mut t| {
                            apply_stop(&mut t, &req.stop, 0) && t.trim().is_empty()
                        });
                        a.generated.pop();
                        if !empty_stop {
                            break;
                        }
                        if let Some(l) = lg.get_mut(tok as usize) {
                            *l = f32::NEG_INFINITY;
                        }
                        tok = sample(&lg, req.temperature, req.top_p, &mut a.rng);
                    }
                }
                a.generated.push(tok);
                let mut done = None;
                let watch_text = !req.stop.is_empty()
                    || req.stop_after_line.is_some()
                    || (req.require_text && !a.has_text);
                if !self.cfg.ignore_eos && self.tok.end_of_generation.contains(&tok) {
                    done = Some(FinishReason::Stop);
                } else if watch_text && let Ok(mut text) = self.tok.decode(&a.generated) {
                    let from = a.checked;
                    a.checked = text.len();
                    a.has_text = a.has_text || text.contains(|c: char| !c.is_whitespace());
                    if apply_stop(&mut text, &req.stop, from)
                        || req
                            .stop_after_line
                            .is_some_and(|n| cut_after_line(&mut text, n, from))
                    {
                        a.stopped = true;
                        done = Some(FinishReason::Stop);
                    }
                }
                if done.is_none() && a.generated.len() >= req.max_tokens as usize {
                    done = Some(FinishReason::Length);
                }
                if done.is_none() && a.kv.len + 1 >= self.model.n_ctx {
                    done = Some(FinishReason::Length);
                }
                match done {
                    Some(reason) => {
                        prompt_toks += a.prompt_len as u64;
                        completion_toks += a.generated.len() as u64;
                        let r = self.finish(req, &a, reason);
                        if r.is_err() {
                            failures += 1;
                        }
                        on_result(a.idx, &r);
                        results[a.idx] = Some(r);
                    }
                    None => {
                        a.feed = vec![tok];
                        still.push(a);
                    }
                }
            }
            active = still;
        }
        if let Ok(mut s) = self.stats.lock() {
            s.requests += requests.len() as u64;
            s.failures += failures;
            s.prompt_tokens += prompt_toks;
            s.completion_tokens += completion_toks;
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(anyhow!("internal: request was never completed"))))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nucleus_sampling_is_deterministic_and_respects_mass() {
        let mut logits = vec![-10f32; 1000];
        logits[7] = 5.0;
        logits[3] = 4.9;
        let mut a = StdRng::seed_from_u64(1);
        let mut b = StdRng::seed_from_u64(1);
        for _ in 0..50 {
            let x = sample(&logits, 1.0, 0.9, &mut a);
            assert_eq!(x, sample(&logits, 1.0, 0.9, &mut b));
            assert!(x == 7 || x == 3);
        }
        assert_eq!(sample(&logits, 0.0, 1.0, &mut a), 7);
        assert_eq!(sample(&logits, 1.0, 0.01, &mut a), 7);
    }
}
