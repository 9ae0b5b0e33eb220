#!/usr/bin/env python3
"""Writes a ~1 GB JSONL corpus for the bounded-memory check (issue: "a 1 GB corpus is ingested
in one streaming pass; peak memory is reported").

It repeats a source corpus (default: SwDA train, 192k utterances) with a fresh id per record
and, on one repetition in four, a varying suffix word, so that the output holds many
duplicate texts (as chat logs do) and a growing number of distinct ones.

    python3 benches/big_corpus.py --source ../shared/corpora/swda/train.jsonl --out /tmp/big.jsonl --gib 1
    /usr/bin/time -v target/release/sprig graph --corpus /tmp/big.jsonl --out /tmp/big.graph
"""
import argparse
import json

SUFFIXES = ["ok", "right", "yeah", "well", "so", "now", "then", "too"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--gib", type=float, default=1.0)
    a = ap.parse_args()
    texts = [json.loads(l)["text"] for l in open(a.source, encoding="utf-8") if l.strip()]
    limit = int(a.gib * (1 << 30))
    written = 0
    rep = 0
    with open(a.out, "w", encoding="utf-8") as out:
        while written < limit:
            for i, t in enumerate(texts):
                if rep % 4 == 3:
                    t = f"{t} {SUFFIXES[(i + rep) % len(SUFFIXES)]}"
                line = json.dumps({"id": f"r{rep}-{i}", "text": t}) + "\n"
                out.write(line)
                written += len(line.encode("utf-8"))
                if written >= limit:
                    break
            rep += 1
    print(json.dumps({"bytes": written, "repetitions": rep}))


if __name__ == "__main__":
    main()
