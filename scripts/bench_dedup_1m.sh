#!/usr/bin/env bash
# MinHash near-dedup of 1M documents: aligndata (1 and 2 threads) and datasketch on the same corpus,
# each under /usr/bin/time, with the load average between runs (see BENCHMARKS.md).
set -e
cd "$(dirname "$0")/.."
B=target/release/examples/bench_dedup
echo "load before: $(uptime)"
RAYON_NUM_THREADS=1 /usr/bin/time -f "rust1 wall %e s, user %U s, sys %S s, maxrss %M KB" $B --input ../shared/data/goemotions/train.tsv \
  --docs 1000000 --shingle word:5 --corpus /tmp/corpus_1m.txt --dups /tmp/rust_dups_1m_t1.txt --json /tmp/rust_1m_t1.json
echo "load: $(uptime)"
RAYON_NUM_THREADS=2 /usr/bin/time -f "rust2 wall %e s, user %U s, sys %S s, maxrss %M KB" $B --input ../shared/data/goemotions/train.tsv \
  --docs 1000000 --shingle word:5 --dups /tmp/rust_dups_1m_t2.txt --json /tmp/rust_1m_t2.json
echo "load: $(uptime)"
cmp /tmp/rust_dups_1m_t1.txt /tmp/rust_dups_1m_t2.txt && echo "1 and 2 threads: same duplicate set"
/usr/bin/time -f "datasketch wall %e s, user %U s, sys %S s, maxrss %M KB" python3 scripts/bench_dedup_datasketch.py --corpus /tmp/corpus_1m.txt --shingle word:5 \
  --rust-json /tmp/rust_1m_t1.json --rust-dups /tmp/rust_dups_1m_t1.txt
echo "load after: $(uptime)"
