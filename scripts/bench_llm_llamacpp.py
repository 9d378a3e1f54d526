#!/usr/bin/env python3
"""llama.cpp reference numbers for bench_llm (same GGUF, same prompts, same thread count).

Uses llama-cpp-python's low-level API so that B sequences are decoded together in each
llama_decode call (one sequence id each), like aligndata's local backend. Greedy decoding, EOS
ignored, so every sequence generates exactly --new-tokens tokens.

Install: python3 -m pip install llama-cpp-python==0.3.16   (builds llama.cpp; needs cmake)
Usage:   bench_llm_llamacpp.py --model M.gguf --prompts prompts.json --threads 2 --new-tokens 128
Prints one JSON object on the last line of stdout.
"""
import argparse
import ctypes
import json
import time

import numpy as np
import llama_cpp as L


def tokenize(vocab, text):
    data = text.encode()
    buf = (L.llama_token * (len(data) + 16))()
    n = L.llama_tokenize(vocab, data, len(data), buf, len(buf), False, True)
    if n < 0:
        raise RuntimeError("tokenize failed")
    return list(buf[:n])


def run(ctx, vocab, n_vocab, prompts, new_tokens):
    """Prefill all prompts in one batch, then decode new_tokens steps for all of them.
    Returns (prompt_tokens, prefill_seconds, generated_tokens, decode_seconds, ids per sequence,
    decode CPU seconds of this process)."""
    L.llama_memory_clear(L.llama_get_memory(ctx), True)
    B = len(prompts)
    total = sum(len(p) for p in prompts)
    batch = L.llama_batch_init(max(total, B), 0, B)
    try:
        t0 = time.perf_counter()
        c0 = time.process_time()
        i = 0
        last_idx = []
        for s, p in enumerate(prompts):
            for pos, tok in enumerate(p):
                batch.token[i] = tok
                batch.pos[i] = pos
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = s
                batch.logits[i] = 1 if pos == len(p) - 1 else 0
                i += 1
            last_idx.append(i - 1)
        batch.n_tokens = i
        if L.llama_decode(ctx, batch) != 0:
            raise RuntimeError("llama_decode (prefill) failed")
        nxt = []
        for idx in last_idx:
            lg = np.ctypeslib.as_array(L.llama_get_logits_ith(ctx, idx), shape=(n_vocab,))
            nxt.append(int(lg.argmax()))
        t1 = time.perf_counter()
        c1 = time.process_time()
        out = [[t] for t in nxt]
        pos = [len(p) for p in prompts]
        for _ in range(new_tokens - 1):
            for s in range(B):
                batch.token[s] = nxt[s]
                batch.pos[s] = pos[s]
                batch.n_seq_id[s] = 1
                batch.seq_id[s][0] = s
                batch.logits[s] = 1
                pos[s] += 1
            batch.n_tokens = B
            if L.llama_decode(ctx, batch) != 0:
                raise RuntimeError("llama_decode failed")
            for s in range(B):
                lg = np.ctypeslib.as_array(L.llama_get_logits_ith(ctx, s), shape=(n_vocab,))
                nxt[s] = int(lg.argmax())
                out[s].append(nxt[s])
        t2 = time.perf_counter()
        c2 = time.process_time()
        return total, t1 - t0, B * (new_tokens - 1), t2 - t1, out, c2 - c1
    finally:
        L.llama_batch_free(batch)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--prompts", required=True, help="JSON list of prompt strings (already templated)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--b1-prompts", type=int, default=2, help="prompts run one at a time for batch 1")
    args = ap.parse_args()
    texts = json.load(open(args.prompts))
    L.llama_backend_init()
    model = L.llama_model_load_from_file(args.model.encode(), L.llama_model_default_params())
    vocab = L.llama_model_get_vocab(model)
    n_vocab = L.llama_vocab_n_tokens(vocab)
    prompts = [tokenize(vocab, t) for t in texts][: args.batch]
    longest = max(len(p) for p in prompts)
    cp = L.llama_context_default_params()
    cp.n_ctx = args.batch * (longest + args.new_tokens + 8)
    cp.n_batch = max(sum(len(p) for p in prompts), 512)
    cp.n_ubatch = 512
    cp.n_seq_max = args.batch
    cp.n_threads = args.threads
    cp.n_threads_batch = args.threads
    cp.kv_unified = False
    ctx = L.llama_init_from_model(model, cp)
    # Warm-up.
    run(ctx, vocab, n_vocab, prompts[:1], 4)
    res = {"prompt_tokens": [len(p) for p in prompts]}
    # Batch 1: prompts one at a time.
    pt = pf = gt = gd = gc = 0.0
    for p in prompts[: args.b1_prompts]:
        a, b, c, d, ids, e = run(ctx, vocab, n_vocab, [p], args.new_tokens)
        pt, pf, gt, gd, gc = pt + a, pf + b, gt + c, gd + d, gc + e
        if "first_ids" not in res:
            res["first_ids"] = ids[0][:32]
    res["b1_prompt_tps"] = pt / pf
    res["b1_gen_tps"] = gt / gd
    res["b1_gen_cpu_s"] = gc / gd  # CPUs busy while decoding (spin-waits count)
    a, b, c, d, ids, e = run(ctx, vocab, n_vocab, prompts, args.new_tokens)
    # Greedy continuations of every prompt, to compare with aligndata's.
    res["batch_ids"] = [x[:32] for x in ids]
    res[f"b{args.batch}_prompt_tps"] = a / b
    res[f"b{args.batch}_gen_tps"] = c / d
    res[f"b{args.batch}_gen_cpu_s"] = e / d
    res["threads"] = args.threads
    L.llama_free(ctx)
    L.llama_model_free(model)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
