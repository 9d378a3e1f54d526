//! Fine-tuning a MiniLM embedder for one yes/no task with LoRA, and applying the result.
//!
//! A linear head on frozen sentence embeddings cannot tell "this presentation is killing me"
//! from a real crisis as well as an encoder that has itself seen the task: mean pooling of
//! frozen features averages away the few words that decide. LoRA (Hu et al., 2021) trains a
//! low-rank update `scale · B·A` beside each weight matrix of the upper layers, together with a
//! logistic head on the pooled, normalised output; the base weights stay frozen. What is kept
//! is small (the `A` and `B` matrices: about a megabyte at rank 8), so it ships inside the
//! binary, and applying it merges `W + scale · B·A` into the weights once at load time: the
//! adapted embedder runs exactly as fast as the base one.
//!
//! Training runs on candle's autograd over a padded batch (the inference path packs texts and
//! uses plain loops, which autograd cannot see). The layers below [`LoraOptions::first_layer`]
//! are frozen without LoRA, so their output is computed once, by the fast packed path, and
//! cached. Why by hand and not a crate: no maintained Rust crate trains LoRA adapters for
//! candle's BERT on CPU.

use std::collections::HashMap;

use anyhow::{Context, Result, anyhow, bail};
use candle_core::{D, DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand_distr::{Distribution, Normal};

use super::minilm::MiniLmEmbedder;

/// Which weight matrix of a layer a delta belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Matrix {
    /// Query, key and value stacked (`[3 * hidden, hidden]`).
    Qkv,
    /// The attention output projection.
    AttnOut,
    /// The feed-forward up projection.
    Inter,
    /// The feed-forward down projection.
    Out,
}

impl Matrix {
    const ALL: [Matrix; 4] = [Matrix::Qkv, Matrix::AttnOut, Matrix::Inter, Matrix::Out];

    fn key(self) -> &'static str {
        match self {
            Matrix::Qkv => "qkv",
            Matrix::AttnOut => "attn_out",
            Matrix::Inter => "inter",
            Matrix::Out => "out",
        }
    }
}

/// Low-rank deltas for a MiniLM: per (layer, matrix), `A` `[rank, in]` and `B` `[out, rank]`.
#[derive(Debug, Clone)]
pub struct Adapter {
    /// Multiplies every `B·A` (LoRA's `alpha / rank`).
    pub scale: f32,
    /// The deltas.
    pub deltas: Vec<(usize, Matrix, Tensor, Tensor)>,
    /// The trained head on the adapted, normalised embedding: weights, then bias.
    pub head: (Vec<f32>, f32),
}

impl Adapter {
    /// The head's logit for a row of the adapted embedder (positive: yes).
    pub fn logit(&self, row: &[f32]) -> f32 {
        row.iter()
            .zip(&self.head.0)
            .map(|(x, w)| x * w)
            .sum::<f32>()
            + self.head.1
    }

    /// Serialises to safetensors bytes (f16 for the matrices: half the size, and the merged
    /// weights differ from f32 ones by far less than the training noise).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut map: HashMap<String, Tensor> = HashMap::new();
        map.insert(
            "scale".into(),
            Tensor::from_vec(vec![self.scale], 1, &Device::Cpu)?,
        );
        let (w, b) = &self.head;
        map.insert(
            "head.weight".into(),
            Tensor::from_vec(w.clone(), w.len(), &Device::Cpu)?,
        );
        map.insert(
            "head.bias".into(),
            Tensor::from_vec(vec![*b], 1, &Device::Cpu)?,
        );
        for (layer, m, a, bm) in &self.deltas {
            map.insert(
                format!("layer.{layer}.{}.lora_a", m.key()),
                a.to_dtype(DType::F16)?,
            );
            map.insert(
                format!("layer.{layer}.{}.lora_b", m.key()),
                bm.to_dtype(DType::F16)?,
            );
        }
        let dir = tempfile::tempdir().context("a temporary directory for the adapter")?;
        let path = dir.path().join("adapter.safetensors");
        candle_core::safetensors::save(&map, &path)?;
        Ok(std::fs::read(&path)?)
    }

    /// Reads what [`Adapter::to_bytes`] wrote; `what` names it in errors.
    pub fn from_bytes(bytes: &[u8], what: &str) -> Result<Adapter> {
        let map = candle_core::safetensors::load_buffer(bytes, &Device::Cpu)
            .with_context(|| format!("{what} is not a safetensors adapter"))?;
        let get = |k: &str| -> Result<Tensor> {
            map.get(k)
                .with_context(|| format!("{what} has no tensor {k}"))?
                .to_dtype(DType::F32)
                .map_err(Into::into)
        };
        let scale = get("scale")?
            .to_vec1::<f32>()?
            .first()
            .copied()
            .unwrap_or(1.0);
        let head = (
            get("head.weight")?.to_vec1::<f32>()?,
            get("head.bias")?
                .to_vec1::<f32>()?
                .first()
                .copied()
                .unwrap_or(0.0),
        );
        let mut deltas = Vec::new();
        for layer in 0..64 {
            for m in Matrix::ALL {
                let ka = format!("layer.{layer}.{}.lora_a", m.key());
                if map.contains_key(&ka) {
                    let kb = format!("layer.{layer}.{}.lora_b", m.key());
                    deltas.push((layer, m, get(&ka)?, get(&kb)?));
                }
            }
        }
        Ok(Adapter {
            scale,
            deltas,
            head,
        })
    }
}

impl MiniLmEmbedder {
    /// Merges `adapter` into the weights (`W += scale · B·A`) and renames the embedder
    /// `NAME+SUFFIX`, so that nothing keyed by the base model's name (caches, shipped heads)
    /// is mistaken for the adapted one's.
    pub fn apply_adapter(&mut self, adapter: &Adapter, suffix: &str) -> Result<()> {
        for (layer, m, a, b) in &adapter.deltas {
            let n_layers = self.layers.len();
            let l = self.layers.get_mut(*layer).with_context(|| {
                format!("adapter names layer {layer}; the model has {n_layers}")
            })?;
            let w = match m {
                Matrix::Qkv => &mut l.qkv_w,
                Matrix::AttnOut => &mut l.attn_out_w,
                Matrix::Inter => &mut l.inter_w,
                Matrix::Out => &mut l.out_w,
            };
            let delta = b.matmul(a)?.affine(f64::from(adapter.scale), 0.0)?;
            if delta.dims() != w.dims() {
                bail!(
                    "adapter delta for layer {layer} {} has shape {:?}, the weight {:?}",
                    m.key(),
                    delta.dims(),
                    w.dims()
                );
            }
            *w = (&*w + delta)?;
        }
        self.name = format!("{}+{suffix}", self.name);
        Ok(())
    }
}

/// How to fine-tune.
#[derive(Debug, Clone, Copy)]
pub struct LoraOptions {
    /// Rank of each update.
    pub rank: usize,
    /// LoRA's alpha: updates are scaled by `alpha / rank`.
    pub alpha: f32,
    /// Layers from this one up get updates; those below stay frozen (and are run once).
    pub first_layer: usize,
    /// Passes over the training texts.
    pub epochs: usize,
    /// Learning rate of the updates (AdamW).
    pub lr: f64,
    /// Learning rate of the head.
    pub head_lr: f64,
    /// Texts per step.
    pub batch: usize,
    /// Longest text in tokens (longer ones are cut).
    pub max_tokens: usize,
    /// Seed of the initialisation and the order.
    pub seed: u64,
}

impl LoraOptions {
    /// Rank 8 (alpha 16) on the upper four of six layers, three passes of 16 texts a step.
    pub const DEFAULT: LoraOptions = LoraOptions {
        rank: 8,
        alpha: 16.0,
        first_layer: 2,
        epochs: 3,
        lr: 5e-4,
        head_lr: 1e-2,
        batch: 16,
        max_tokens: 128,
        seed: 7,
    };
}

impl Default for LoraOptions {
    fn default() -> Self {
        LoraOptions::DEFAULT
    }
}

/// One trainable update: `A` `[rank, in]`, `B` `[out, rank]` (zero at the start, so training
/// starts from the base model).
struct Update {
    layer: usize,
    matrix: Matrix,
    a: Var,
    b: Var,
}

/// Fine-tunes `base` on `texts` with yes/no `labels`; `progress(step, steps, loss)` after each
/// step. Returns the adapter (with its head).
pub fn train(
    base: &MiniLmEmbedder,
    texts: &[&str],
    labels: &[bool],
    opts: LoraOptions,
    progress: &dyn Fn(usize, usize, f32),
) -> Result<Adapter> {
    if texts.len() != labels.len() || texts.is_empty() {
        bail!(
            "need one label per text and at least one text ({} texts, {} labels)",
            texts.len(),
            labels.len()
        );
    }
    let h = base.hidden;
    let n_layers = base.layers.len();
    if opts.first_layer >= n_layers || opts.rank == 0 || opts.batch == 0 {
        bail!("first_layer must be below {n_layers}, rank and batch above 0");
    }
    let dev = Device::Cpu;
    let mut rng = StdRng::seed_from_u64(opts.seed);

    // Token ids, cut to max_tokens (keeping the final [SEP]).
    let ids: Vec<Vec<u32>> = texts
        .iter()
        .map(|t| {
            base.tokenizer
                .encode_fast(*t, true)
                .map(|e| {
                    let mut v = e.get_ids().to_vec();
                    if v.len() > opts.max_tokens {
                        let last = v.last().copied();
                        v.truncate(opts.max_tokens.saturating_sub(1));
                        v.extend(last);
                    }
                    v
                })
                .map_err(|e| anyhow!("tokenizing: {e}"))
        })
        .collect::<Result<_>>()?;
    // The frozen lower layers, once.
    let frozen: Vec<Vec<f32>> = ids
        .iter()
        .map(|v| base.hidden_states(&[v.as_slice()], opts.first_layer))
        .collect::<Result<_>>()?;

    // Trainable updates for every matrix of the upper layers.
    let mut updates = Vec::new();
    for layer in opts.first_layer..n_layers {
        let l = &base.layers[layer];
        for m in Matrix::ALL {
            let w = match m {
                Matrix::Qkv => &l.qkv_w,
                Matrix::AttnOut => &l.attn_out_w,
                Matrix::Inter => &l.inter_w,
                Matrix::Out => &l.out_w,
            };
            let (out, inp) = w.dims2()?;
            let normal =
                Normal::new(0.0f32, (1.0 / inp as f32).sqrt()).map_err(|e| anyhow!("{e}"))?;
            let a: Vec<f32> = (0..opts.rank * inp)
                .map(|_| normal.sample(&mut rng))
                .collect();
            updates.push(Update {
                layer,
                matrix: m,
                a: Var::from_tensor(&Tensor::from_vec(a, (opts.rank, inp), &dev)?)?,
                b: Var::zeros((out, opts.rank), DType::F32, &dev)?,
            });
        }
    }
    let head_w = Var::zeros((h, 1), DType::F32, &dev)?;
    let head_b = Var::zeros(1, DType::F32, &dev)?;
    let scale = opts.alpha / opts.rank as f32;

    let lora_vars: Vec<Var> = updates
        .iter()
        .flat_map(|u| [u.a.clone(), u.b.clone()])
        .collect();
    let mut opt = AdamW::new(
        lora_vars,
        ParamsAdamW {
            lr: opts.lr,
            weight_decay: 0.0,
            ..Default::default()
        },
    )?;
    let mut head_opt = AdamW::new(
        vec![head_w.clone(), head_b.clone()],
        ParamsAdamW {
            lr: opts.head_lr,
            weight_decay: 0.0,
            ..Default::default()
        },
    )?;

    // Batches of similar lengths (little padding), in a new random order each epoch.
    let mut order: Vec<usize> = (0..texts.len()).collect();
    order.sort_by_key(|&i| ids[i].len());
    let batches: Vec<Vec<usize>> = order.chunks(opts.batch).map(<[usize]>::to_vec).collect();
    let steps = batches.len() * opts.epochs;
    let mut step = 0;
    for _ in 0..opts.epochs {
        let mut epoch = batches.clone();
        epoch.shuffle(&mut rng);
        for batch in &epoch {
            let t = batch
                .iter()
                .map(|&i| ids[i].len())
                .max()
                .unwrap_or(1)
                .max(1);
            let bsz = batch.len();
            let mut x = vec![0.0f32; bsz * t * h];
            let mut mask = vec![0.0f32; bsz * t];
            for (row, &i) in batch.iter().enumerate() {
                let len = ids[i].len();
                if let Some(dst) = x.get_mut(row * t * h..row * t * h + len * h) {
                    dst.copy_from_slice(frozen[i].get(..len * h).unwrap_or(&[]));
                }
                mask[row * t..row * t + len]
                    .iter_mut()
                    .for_each(|m| *m = 1.0);
            }
            let x = Tensor::from_vec(x, (bsz * t, h), &dev)?;
            let mask = Tensor::from_vec(mask, (bsz, t), &dev)?;
            let logits = forward(base, &updates, scale, &head_w, &head_b, x, &mask, opts)?;
            let y: Vec<f32> = batch
                .iter()
                .map(|&i| if labels[i] { 1.0 } else { 0.0 })
                .collect();
            let y = Tensor::from_vec(y, bsz, &dev)?;
            let loss = bce_with_logits(&logits, &y)?;
            let grads = loss.backward()?;
            opt.step(&grads)?;
            head_opt.step(&grads)?;
            step += 1;
            progress(step, steps, loss.to_scalar::<f32>()?);
        }
    }

    let mut deltas = Vec::new();
    for u in updates {
        deltas.push((
            u.layer,
            u.matrix,
            u.a.as_tensor().clone(),
            u.b.as_tensor().clone(),
        ));
    }
    let head = (
        head_w.as_tensor().flatten_all()?.to_vec1::<f32>()?,
        head_b
            .as_tensor()
            .to_vec1::<f32>()?
            .first()
            .copied()
            .unwrap_or(0.0),
    );
    Ok(Adapter {
        scale,
        deltas,
        head,
    })
}

/// Mean of `softplus(x) - y·x`: binary cross-entropy on logits, stable for any `x`.
fn bce_with_logits(x: &Tensor, y: &Tensor) -> Result<Tensor> {
    let softplus = (x.relu()? + (x.abs()?.neg()?.exp()? + 1.0)?.log()?)?;
    Ok((softplus - (y * x)?)?.mean_all()?)
}

/// The upper layers on a padded batch (`x`: `[batch * t, hidden]`), mean pooling over `mask`,
/// L2 normalisation and the head: one logit per text.
#[allow(clippy::too_many_arguments)]
fn forward(
    base: &MiniLmEmbedder,
    updates: &[Update],
    scale: f32,
    head_w: &Var,
    head_b: &Var,
    mut x: Tensor,
    mask: &Tensor,
    opts: LoraOptions,
) -> Result<Tensor> {
    let dev = Device::Cpu;
    let (bsz, t) = mask.dims2()?;
    let h = base.hidden;
    let heads = base.heads;
    let d = h / heads;
    // Padding keys get -1e4 before the softmax: no attention to them.
    let key_bias = ((mask - 1.0)? * 1e4)?.reshape((bsz, 1, 1, t))?;
    let linear = |x: &Tensor, w: &Tensor, b: &[f32], layer: usize, m: Matrix| -> Result<Tensor> {
        let bias = Tensor::from_slice(b, b.len(), &dev)?;
        let mut y = x.matmul(&w.t()?)?.broadcast_add(&bias)?;
        if let Some(u) = updates.iter().find(|u| u.layer == layer && u.matrix == m) {
            let low = x.matmul(&u.a.as_tensor().t()?)?;
            y = (y + low
                .matmul(&u.b.as_tensor().t()?)?
                .affine(f64::from(scale), 0.0)?)?;
        }
        Ok(y)
    };
    let layer_norm = |x: &Tensor, w: &[f32], b: &[f32]| -> Result<Tensor> {
        let mean = x.mean_keepdim(1)?;
        let xc = x.broadcast_sub(&mean)?;
        let var = xc.sqr()?.mean_keepdim(1)?;
        let xn = xc.broadcast_div(&(var + f64::from(base.eps))?.sqrt()?)?;
        let w = Tensor::from_slice(w, w.len(), &dev)?;
        let b = Tensor::from_slice(b, b.len(), &dev)?;
        Ok(xn.broadcast_mul(&w)?.broadcast_add(&b)?)
    };
    for (layer, l) in base.layers.iter().enumerate().skip(opts.first_layer) {
        let qkv = linear(&x, &l.qkv_w, &l.qkv_b, layer, Matrix::Qkv)?;
        let split = |k: usize| -> Result<Tensor> {
            Ok(qkv
                .narrow(1, k * h, h)?
                .reshape((bsz, t, heads, d))?
                .transpose(1, 2)?
                .contiguous()?)
        };
        let (q, k, v) = (split(0)?, split(1)?, split(2)?);
        let scores = (q.matmul(&k.t()?)? / (d as f64).sqrt())?.broadcast_add(&key_bias)?;
        let probs = candle_nn::ops::softmax(&scores, D::Minus1)?;
        let ctx = probs
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((bsz * t, h))?;
        let attn = linear(&ctx, &l.attn_out_w, &l.attn_out_b, layer, Matrix::AttnOut)?;
        x = layer_norm(&(x + attn)?, &l.ln1_w, &l.ln1_b)?;
        let inter = linear(&x, &l.inter_w, &l.inter_b, layer, Matrix::Inter)?.gelu_erf()?;
        let out = linear(&inter, &l.out_w, &l.out_b, layer, Matrix::Out)?;
        x = layer_norm(&(x + out)?, &l.ln2_w, &l.ln2_b)?;
    }
    let x = x.reshape((bsz, t, h))?;
    let m3 = mask.reshape((bsz, t, 1))?;
    let summed = x.broadcast_mul(&m3)?.sum(1)?;
    let lens = mask.sum_keepdim(1)?;
    let pooled = summed.broadcast_div(&lens)?;
    let norm = pooled.sqr()?.sum_keepdim(1)?.sqrt()?;
    let unit = pooled.broadcast_div(&(norm + 1e-12)?)?;
    Ok(unit
        .matmul(head_w.as_tensor())?
        .broadcast_add(head_b.as_tensor())?
        .reshape(bsz)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed::Embedder;
    use crate::embed::minilm::MODEL_NAME;
    use crate::registry;

    fn base() -> MiniLmEmbedder {
        let dir = registry::ensure(MODEL_NAME, false, &|_| {})
            .unwrap_or_else(|e| panic!("installing {MODEL_NAME}: {e:#}"));
        MiniLmEmbedder::load(&dir).unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// A small task the base embedding cannot separate with a zero head: after fine-tuning,
    /// the adapter's head, applied to the *merged* embedder's output (the inference path, not
    /// the training one), gets every training text right, and the adapter survives a round
    /// trip through its file format.
    #[test]
    fn learns_a_small_task_and_the_merged_model_agrees() {
        let base = base();
        let yes = [
            "I keep thinking about my cat today",
            "my kitten knocked the glass off the table",
            "the cat sleeps on my keyboard all afternoon",
            "we adopted a grey tabby from the shelter",
            "she purrs every time I come home",
            "the vet said our cat needs a diet",
            "my cat brought a mouse to the door",
            "kittens are chaos but I love them",
        ];
        let no = [
            "the train was late again this morning",
            "I need to fix the brakes on my bike",
            "our car failed its inspection today",
            "the bus driver waited for me, which was kind",
            "I bought new tyres for the van",
            "traffic on the motorway was terrible",
            "my scooter battery died halfway home",
            "the taxi took the long way round",
        ];
        let texts: Vec<&str> = yes.iter().chain(&no).copied().collect();
        let labels: Vec<bool> = (0..texts.len()).map(|i| i < yes.len()).collect();
        let opts = LoraOptions {
            rank: 4,
            first_layer: 4,
            epochs: 12,
            batch: 4,
            lr: 2e-3,
            head_lr: 5e-2,
            ..LoraOptions::default()
        };
        let adapter = train(&base, &texts, &labels, opts, &|_, _, _| {}).unwrap();
        assert_eq!(
            adapter.deltas.len(),
            2 * 4,
            "two layers, four matrices each"
        );
        let bytes = adapter.to_bytes().unwrap();
        let adapter = Adapter::from_bytes(&bytes, "round trip").unwrap();
        // The training path's logits with the round-tripped adapter, to compare below.
        let updates: Vec<Update> = adapter
            .deltas
            .iter()
            .map(|(layer, matrix, a, b)| Update {
                layer: *layer,
                matrix: *matrix,
                a: Var::from_tensor(a).unwrap(),
                b: Var::from_tensor(b).unwrap(),
            })
            .collect();
        let h = base.hidden;
        let head_w = Var::from_tensor(
            &Tensor::from_vec(adapter.head.0.clone(), (h, 1), &Device::Cpu).unwrap(),
        )
        .unwrap();
        let head_b =
            Var::from_tensor(&Tensor::new(&[adapter.head.1], &Device::Cpu).unwrap()).unwrap();
        let mut training_path = Vec::new();
        for t in &texts {
            let ids = base
                .tokenizer
                .encode_fast(*t, true)
                .unwrap()
                .get_ids()
                .to_vec();
            let x = base
                .hidden_states(&[ids.as_slice()], opts.first_layer)
                .unwrap();
            let x = Tensor::from_vec(x, (ids.len(), h), &Device::Cpu).unwrap();
            let mask = Tensor::ones((1, ids.len()), DType::F32, &Device::Cpu).unwrap();
            let z = forward(
                &base,
                &updates,
                adapter.scale,
                &head_w,
                &head_b,
                x,
                &mask,
                opts,
            )
            .unwrap();
            training_path.push(z.to_vec1::<f32>().unwrap()[0]);
        }
        let mut merged = base;
        merged.apply_adapter(&adapter, "test").unwrap();
        assert_eq!(merged.name(), "minilm-l6-v2+test");
        let rows = merged.embed(&texts).unwrap();
        for (((t, row), truth), want) in texts.iter().zip(&rows).zip(&labels).zip(&training_path) {
            let z = adapter.logit(row);
            assert_eq!(z > 0.0, *truth, "{t}: logit {z}");
            assert!(
                (z - want).abs() < 1e-2 * want.abs().max(1.0),
                "{t}: merged {z}, training path {want}"
            );
        }
    }

    #[test]
    fn bad_input_is_an_error() {
        let base = base();
        let err = train(
            &base,
            &["a"],
            &[true, false],
            LoraOptions::default(),
            &|_, _, _| {},
        )
        .unwrap_err();
        assert!(err.to_string().contains("one label per text"), "{err}");
        assert!(Adapter::from_bytes(b"not safetensors", "x.safetensors").is_err());
    }
}
