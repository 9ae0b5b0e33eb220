#!/usr/bin/env python3
"""Writes a synthetic corpus with many labels, for how sprig scales in the label dimension.

Each label owns a pool of six made-up words; a text is three words of its label's pool and
three of 2,000 words every label shares, shuffled. So a label is learnable from its own
words alone, and only the number of labels (and of texts per label) makes it hard.

Writes, in OUT:
  corpus.jsonl  NTEXTS / LABELS texts a label, the first SEEDS of each labelled (seeds);
  full.jsonl    the same texts, every one labelled (for fully supervised training, or to
                score propagated labels);
  test.jsonl    two fresh texts a label.

Deterministic (a fixed seed): the same arguments give the same files.

    python3 benches/many_labels.py --labels 2000 --texts 40000 --seeds 3 --out /tmp/L2000
    sprig graph --corpus /tmp/L2000/corpus.jsonl --out /tmp/L2000/g.graph
    sprig propagate --graph /tmp/L2000/g.graph --out /tmp/L2000/labels.jsonl
    sprig train --corpus /tmp/L2000/corpus.jsonl --labels /tmp/L2000/labels.jsonl \
        --augment 0 --epochs 15 --out /tmp/L2000/m.sprig
    sprig eval --model /tmp/L2000/m.sprig --data /tmp/L2000/test.jsonl
"""

import argparse
import json
import os
import random

SYLLABLES = "ka lo mi ne ru ta vo zi pe su ga do fi hu je xo by wa qe ct".split()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--labels", type=int, required=True)
    ap.add_argument("--texts", type=int, required=True, help="corpus texts in all")
    ap.add_argument("--seeds", type=int, default=3, help="labelled texts a label")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    rng = random.Random(42)
    used = set()

    def fresh_word():
        while True:
            w = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
            if w not in used:
                used.add(w)
                return w

    shared = [fresh_word() for _ in range(2000)]
    pools = [[fresh_word() for _ in range(6)] for _ in range(args.labels)]

    def text(label):
        words = rng.sample(pools[label], 3) + rng.sample(shared, 3)
        rng.shuffle(words)
        return " ".join(words)

    def name(label):
        return f"intent_{label:05d}"

    os.makedirs(args.out, exist_ok=True)
    per_label = max(1, args.texts // args.labels)
    with open(os.path.join(args.out, "corpus.jsonl"), "w") as corpus, open(
        os.path.join(args.out, "full.jsonl"), "w"
    ) as full:
        for label in range(args.labels):
            for j in range(per_label):
                t = text(label)
                row = {"text": t, "label": name(label)} if j < args.seeds else {"text": t}
                corpus.write(json.dumps(row) + "\n")
                full.write(json.dumps({"text": t, "label": name(label)}) + "\n")
    with open(os.path.join(args.out, "test.jsonl"), "w") as test:
        for label in range(args.labels):
            for _ in range(2):
                test.write(json.dumps({"text": text(label), "label": name(label)}) + "\n")


if __name__ == "__main__":
    main()
