#!/usr/bin/env python3
"""Writes a JSONL corpus of N *distinct* short texts, for the kNN's scaling (`knn_recall.py`,
`sprig graph` at 200k–1M distinct texts), where `big_corpus.py` makes mostly repeats.

Every text of the shared datasets' splits comes first (deduplicated), then pairs of
consecutive SwDA train utterances (a message of two sentences), then SwDA utterances joined
with a pseudo-random other one, until N distinct texts. Standard library only.

    python3 benches/distinct_corpus.py --shared ../shared/corpora --n 200000 --out /tmp/d200k.jsonl
"""
import argparse
import glob
import json
import os


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", required=True, help="the shared corpora folder")
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    seen, texts = set(), []

    def add(t):
        if t not in seen:
            seen.add(t)
            texts.append(t)

    for path in sorted(glob.glob(os.path.join(a.shared, "*", "*.jsonl"))):
        with open(path, encoding="utf-8") as f:
            for line in f:
                add(json.loads(line)["text"])
    with open(os.path.join(a.shared, "swda", "train.jsonl"), encoding="utf-8") as f:
        swda = [json.loads(line)["text"] for line in f]
    for i in range(len(swda) - 1):
        if len(texts) >= a.n:
            break
        add(swda[i] + " " + swda[i + 1])
    j = 0
    while len(texts) < a.n:
        add(swda[j % len(swda)] + " " + swda[(j * 7919 + 13 + j // len(swda)) % len(swda)])
        j += 1
    with open(a.out, "w", encoding="utf-8") as out:
        for k, t in enumerate(texts[: a.n]):
            out.write(json.dumps({"id": str(k), "text": t}) + "\n")


if __name__ == "__main__":
    main()
