#!/usr/bin/env python3
"""datasketch side of the near-dedup benchmark (see crates/aligndata-stages/examples/bench_dedup.rs).

Reads the corpus the Rust bench wrote (one document per line), normalises and shingles it the
same way aligndata does (NFKC, lower-case, keep letters/digits/whitespace, collapse whitespace;
word or char n-grams, a text shorter than one shingle is one shingle), builds MinHash signatures
with `MinHash.bulk` (datasketch's fastest path) and streams them through `MinHashLSH` with the
same threshold and permutation count: each document is queried against the earlier ones and
counts as a duplicate when a candidate's estimated Jaccard is >= the threshold, then inserted.

With --rust-json/--rust-dups it prints the side-by-side: seconds, docs/s per core, peak memory,
the ratio, and the agreement of the two duplicate sets (|both| / |either|).

    python3 -m pip install datasketch
    python3 scripts/bench_dedup_datasketch.py --corpus /tmp/corpus.txt --shingle word:5 \
        --rust-json /tmp/rust.json --rust-dups /tmp/rust_dups.txt
"""

import argparse
import json
import resource
import time
import unicodedata


def normalise(text):
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    kept = "".join(c for c in text.lower() if c.isalnum() or c.isspace())
    return " ".join(kept.split())


def shingles(normal, unit, n):
    if unit == "word":
        words = normal.split(" ")
        if len(words) <= n:
            return {" ".join(words).encode()}
        return {" ".join(words[i:i + n]).encode() for i in range(len(words) - n + 1)}
    if len(normal) <= n:
        return {normal.encode()}
    return {normal[i:i + n].encode() for i in range(len(normal) - n + 1)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--shingle", default="word:5")
    ap.add_argument("--num-perm", type=int, default=128)
    ap.add_argument("--threshold", type=float, default=0.8)
    ap.add_argument("--rust-json")
    ap.add_argument("--rust-dups")
    ap.add_argument("--dups-out")
    args = ap.parse_args()

    from datasketch import MinHash, MinHashLSH

    unit, n = args.shingle.split(":")
    n = int(n)
    with open(args.corpus, encoding="utf-8") as f:
        docs = f.read().split("\n")
    if docs and docs[-1] == "":
        docs.pop()

    start = time.perf_counter()
    cpu_start = time.process_time()
    normals = [normalise(d) for d in docs]
    idx = [i for i, t in enumerate(normals) if t]
    sets = [shingles(normals[i], unit, n) for i in idx]
    sigs = MinHash.bulk(sets, num_perm=args.num_perm)
    lsh = MinHashLSH(threshold=args.threshold, num_perm=args.num_perm)
    dups = []
    store = {}
    for i, m in zip(idx, sigs):
        for j in lsh.query(m):
            if m.jaccard(store[j]) >= args.threshold:
                dups.append(i)
                break
        lsh.insert(i, m)
        store[i] = m
    secs = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    result = {
        "tool": "datasketch",
        "docs": len(docs),
        "shingle": args.shingle,
        "num_perm": args.num_perm,
        "threshold": args.threshold,
        "bands_rows": [lsh.b, lsh.r],
        "threads": 1,
        "seconds": secs,
        "docs_per_s": len(docs) / secs,
        "cpu_seconds": cpu,
        "docs_per_cpu_s": len(docs) / cpu,
        "duplicates": len(dups),
        "peak_rss_mb": peak_mb,
    }
    print(json.dumps(result))
    if args.dups_out:
        with open(args.dups_out, "w") as f:
            f.writelines(f"{d}\n" for d in dups)

    if args.rust_json and args.rust_dups:
        with open(args.rust_json) as f:
            rust = json.load(f)
        with open(args.rust_dups) as f:
            rust_dups = {int(line) for line in f if line.strip()}
        ours = set(dups)
        both, either = len(ours & rust_dups), len(ours | rust_dups)
        rust_per_core = rust["docs_per_s"] / rust["threads"]
        print(f"corpus: {len(docs)} docs, shingle {args.shingle}, num_perm {args.num_perm}, "
              f"threshold {args.threshold}, bands x rows: datasketch {lsh.b}x{lsh.r}, "
              f"aligndata {rust['bands']}x{rust['rows']}")
        print(f"datasketch: {secs:8.2f} s  {len(docs) / secs:10.0f} docs/s (1 core)  peak {peak_mb:7.0f} MB  "
              f"duplicates {len(ours)}")
        print(f"aligndata : {rust['seconds']:8.2f} s  {rust['docs_per_s']:10.0f} docs/s ({rust['threads']} threads, "
              f"{rust_per_core:.0f}/thread)  peak {rust['peak_rss_mb']:7.0f} MB  duplicates {len(rust_dups)}")
        print(f"speed-up: {secs / rust['seconds']:.1f}x wall, {rust_per_core / (len(docs) / secs):.1f}x per core")
        if rust.get("docs_per_cpu_s"):
            print(f"per CPU-second (user + system, robust to a shared machine): datasketch "
                  f"{len(docs) / cpu:.0f} docs/s, aligndata {rust['docs_per_cpu_s']:.0f} docs/s, "
                  f"ratio {rust['docs_per_cpu_s'] / (len(docs) / cpu):.1f}x")
        print(f"agreement: both {both}, only datasketch {len(ours - rust_dups)}, only aligndata "
              f"{len(rust_dups - ours)}, Jaccard of the duplicate sets {both / max(either, 1):.4f}")


if __name__ == "__main__":
    main()
