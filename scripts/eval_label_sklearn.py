#!/usr/bin/env python3
"""scikit-learn side of the GoEmotions label benchmark (crates/aligndata-stages/examples/eval_label.rs
runs it with EVAL_LABEL_SKLEARN=1 and scores its predictions beside its own rows).

TfidfVectorizer (word unigrams + bigrams, sublinear tf, min_df and max_features as the Rust
TF-IDF features) fitted on train.tsv, a one-vs-rest LogisticRegression (liblinear) per label
trained on train minus the held-out rows the Rust example wrote, each label's threshold tuned on
those held-out rows to maximise its F1, C chosen among a few by held-out macro-F1. dev.tsv is only
predicted, never used to choose anything.

    python3 -m pip install scikit-learn
    python3 scripts/eval_label_sklearn.py --data ../shared/data/goemotions \
        --holdout target/eval_label_cache/holdout.txt --out /tmp/sklearn-preds.txt
"""
import argparse
import sys
import time

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier


def read(path):
    texts, labels = [], []
    with open(path, encoding="utf8") as f:
        for line in f:
            cols = line.rstrip("\n").split("\t")
            texts.append(cols[0])
            labels.append([int(x) for x in cols[1].split(",")])
    return texts, labels


def onehot(labels, k):
    m = np.zeros((len(labels), k), bool)
    for i, ls in enumerate(labels):
        m[i, ls] = True
    return m


def best_threshold(p, y):
    """The cut-off with the best F1 on (p, y), midway between two distinct scores."""
    if not y.any():
        return 0.5, None
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order]
    tp, fp = np.cumsum(ys), np.cumsum(~ys)
    f1 = 2 * tp / (tp + fp + ys.sum())
    distinct = np.append(ps[1:] != ps[:-1], True)
    f1 = np.where(distinct, f1, -1)
    i = int(np.argmax(f1))
    nxt = ps[i + 1] if i + 1 < len(ps) else 0.0
    return (ps[i] + nxt) / 2, f1[i]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--holdout", required=True, help="held-out train row indices, one a line")
    ap.add_argument("--min-df", type=int, default=5)
    ap.add_argument("--max-terms", type=int, default=50000)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    names = [l.strip() for l in open(f"{args.data}/labels.txt", encoding="utf8") if l.strip()]
    k = len(names)
    train, ytrain = read(f"{args.data}/train.tsv")
    dev, _ = read(f"{args.data}/dev.tsv")
    y = onehot(ytrain, k)
    held = np.array([int(x) for x in open(args.holdout).read().split()])
    mask = np.ones(len(train), bool)
    mask[held] = False
    fit = np.nonzero(mask)[0]

    start = time.time()
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=args.min_df,
                          max_features=args.max_terms or None)
    x = vec.fit_transform(train)
    x_dev = vec.transform(dev)
    best = None
    for c in [1.0, 2.0, 4.0, 8.0]:
        t = time.time()
        model = OneVsRestClassifier(LogisticRegression(C=c, solver="liblinear", max_iter=1000))
        model.fit(x[fit], y[fit])
        p_held = model.predict_proba(x[held])
        cuts = [best_threshold(p_held[:, j], y[held][:, j]) for j in range(k)]
        held_f1 = np.mean([f for _, f in cuts if f is not None])
        print(f"  scikit-learn C={c}: held-out macro-F1 {held_f1:.3f} ({time.time() - t:.0f}s)",
              file=sys.stderr)
        if best is None or held_f1 > best[0]:
            best = (held_f1, c, model, np.array([t for t, _ in cuts]))
    held_f1, c, model, thresholds = best
    p_dev = model.predict_proba(x_dev)
    strict = p_dev >= thresholds
    loose = strict.copy()
    none = ~strict.any(1)
    loose[none, np.argmax(p_dev[none] / np.maximum(thresholds, 1e-6), 1)] = True
    print(f"  scikit-learn: vocabulary {len(vec.vocabulary_)}, C={c}, {time.time() - start:.0f}s",
          file=sys.stderr)

    def rows(pred):
        return ";".join(",".join(str(j) for j in np.nonzero(r)[0]) for r in pred)

    with open(args.out, "w") as f:
        f.write(f"TfidfVectorizer + LogisticRegression (C={c}), tuned thresholds\t{rows(strict)}\n")
        f.write(f"TfidfVectorizer + LogisticRegression (C={c}), at least one label\t{rows(loose)}\n")


if __name__ == "__main__":
    main()
