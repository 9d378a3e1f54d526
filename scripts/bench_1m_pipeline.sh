#!/usr/bin/env bash
# 1M short documents through ingest -> dedup -> label -> select with the release binary, each
# stage under /usr/bin/time -v: wall time and peak RSS per stage (BENCHMARKS.md, "1M rows end to
# end"). The corpus is GoEmotions train (../shared/data/goemotions/train.tsv) drawn at random
# and lightly perturbed (case and punctuation, one word appended, replaced or deleted: the same
# edits as bench_dedup), so about a quarter of the rows are near or exact copies.
#
#   cargo build --release -p aligndata
#   scripts/bench_1m_pipeline.sh [DOCS] [WORKDIR]      # defaults: 1000000 /tmp/bench_1m
set -euo pipefail

DOCS=${1:-1000000}
WORK=${2:-/tmp/bench_1m}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${ALIGNDATA_BIN:-$ROOT/target/release/aligndata}
SRC=${GOEMOTIONS:-$ROOT/../shared/data/goemotions/train.tsv}
TAXONOMY=$ROOT/examples/self-doubt/taxonomy.yaml
mkdir -p "$WORK"
cd "$WORK"

CORPUS=corpus-$DOCS.jsonl
[ -s "$CORPUS" ] || python3 - "$SRC" "$DOCS" "$CORPUS" <<'EOF'
import json, random, sys
src, docs, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
base = [l.split("\t")[0].strip() for l in open(src, encoding="utf-8") if l.strip()]
base = [b for b in base if b]
rng = random.Random(1)
words = ["really", "honestly", "today", "again", "lol", "though", "still", "now"]
def perturb(t):
    w = t.split()
    r = rng.randrange(4)
    if r == 0:
        return (t.upper() if rng.randrange(2) else t.lower()) + "!!"
    if r == 1:
        w.append(rng.choice(words))
    elif r == 2 and w:
        w[rng.randrange(len(w))] = rng.choice(words)
    elif len(w) > 1:
        del w[rng.randrange(len(w))]
    else:
        w.append(words[0])
    return " ".join(w)
with open(out, "w", encoding="utf-8") as f:
    for i in range(docs):
        text = base[i] if i < len(base) else perturb(rng.choice(base))
        f.write(json.dumps({"id": f"g{i}", "text": text}) + "\n")
EOF

stage() {
    local name=$1
    shift
    echo "== $name: $*" >&2
    /usr/bin/time -v "$@" 2> "$name.time" > "$name.json" || {
        cat "$name.time" >&2
        exit 1
    }
    local wall rss
    wall=$(grep "Elapsed (wall clock)" "$name.time" | awk '{print $NF}')
    rss=$(grep "Maximum resident set size" "$name.time" | awk '{print $NF}')
    printf '| %s | %s | %d MB | %s |\n' "$name" "$wall" $((rss / 1024)) "$(uptime | sed 's/.*load average: //')" | tee -a results.md
}

echo "| stage | wall (m:ss) | peak RSS | load average (1, 5, 15 min) at the end |" > results.md
echo "|---|---|---|---|" >> results.md
stage ingest "$BIN" --json -q ingest "$CORPUS" --id-field id --out ingested
stage dedup "$BIN" --json -q dedup ingested --out deduped
stage label "$BIN" --json -q label deduped --taxonomy "$TAXONOMY" --embedder static --out labelled
stage select "$BIN" --json -q select labelled --taxonomy "$TAXONOMY" --budget 10000 \
    --embedder static --include-unlabelled --out selected
cat results.md
