#!/usr/bin/env python3
"""scikit-learn side of the outlier benchmark (see crates/aligndata-stages/examples/bench_select.rs).

Loads the embeddings the Rust example wrote, times NearestNeighbors (brute force, cosine) and
LocalOutlierFactor (brute force, cosine) with the same k, and compares the scores with the Rust
ones by Spearman rank correlation and by the overlap of the top 1%.

    python3 -m pip install scikit-learn
    python3 scripts/bench_select_sklearn.py --dir /tmp/bench_select
"""
import argparse
import json
import os
import time

import numpy as np
from scipy.stats import spearmanr
from sklearn.neighbors import LocalOutlierFactor, NearestNeighbors


def top_overlap(a, b, frac=0.01):
    m = max(1, int(len(a) * frac))
    ta, tb = set(np.argsort(-a)[:m]), set(np.argsort(-b)[:m])
    return len(ta & tb) / m


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dir", default="/tmp/bench_select")
    args = p.parse_args()
    x = np.load(os.path.join(args.dir, "embeddings.npy"))
    rust = json.load(open(os.path.join(args.dir, "rust.json")))
    k = rust["k"]
    n_jobs = rust["threads"]

    t = time.perf_counter()
    nn = NearestNeighbors(n_neighbors=k, algorithm="brute", metric="cosine", n_jobs=n_jobs).fit(x)
    dist, _ = nn.kneighbors()  # X=None: each point's neighbours exclude itself
    knn = dist.mean(axis=1)
    knn_s = time.perf_counter() - t

    t = time.perf_counter()
    lof = LocalOutlierFactor(n_neighbors=k, algorithm="brute", metric="cosine", n_jobs=n_jobs).fit(x)
    lof_scores = -lof.negative_outlier_factor_
    lof_s = time.perf_counter() - t

    rk, rl = np.load(os.path.join(args.dir, "knn.npy")), np.load(os.path.join(args.dir, "lof.npy"))
    rust_knn_s = rust["knn_search_s"] + rust["knn_score_s"]
    rust_lof_s = rust["knn_search_s"] + rust["lof_score_s"]
    out = {
        "docs": int(x.shape[0]), "dim": int(x.shape[1]), "k": k, "threads": n_jobs,
        "knn": {"sklearn_s": knn_s, "rust_s": rust_knn_s, "speedup": knn_s / rust_knn_s,
                "spearman": float(spearmanr(knn, rk)[0]), "max_abs_diff": float(np.abs(knn - rk).max()),
                "top1pct_overlap": top_overlap(knn, rk)},
        "lof": {"sklearn_s": lof_s, "rust_s": rust_lof_s, "speedup": lof_s / rust_lof_s,
                "spearman": float(spearmanr(lof_scores, rl)[0]),
                "max_abs_diff": float(np.abs(lof_scores - rl).max()),
                "top1pct_overlap": top_overlap(lof_scores, rl)},
    }
    print(json.dumps(out, indent=2))
    print()
    print("| score | docs | dim | k | sklearn s | aligndata s | speed-up | Spearman | top-1% overlap |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in ("knn", "lof"):
        r = out[name]
        print(f"| {name} | {out['docs']} | {out['dim']} | {k} | {r['sklearn_s']:.2f} | {r['rust_s']:.2f} | "
              f"{r['speedup']:.1f}× | {r['spearman']:.4f} | {r['top1pct_overlap']:.2f} |")


if __name__ == "__main__":
    main()
