#!/usr/bin/env python3
"""Writes a synthetic corpus with many labels, for how sprig scales in the label dimension.

Each label owns a pool of six made-up words; a text is three words of its label's pool and
three of 2,000 words every label shares, shuffled. So a label is learnable from its own
words alone, and only the number of labels (and of texts per label) makes it hard.

Writes, in OUT:
  corpus.jsonl  NTEXTS / LABELS texts a label, the first SEEDS of each labelled (seeds);
  full.jsonl    the same texts, every one labelled (for fully supervised training, or to
                score propagated labels);
  test.jsonl    two fresh texts a label;
  dev.jsonl     as many other fresh texts;
  train.jsonl, seeds-kSEEDS.txt  full.jsonl again and the seeds' line numbers, the
                layout of ../shared/corpora, so that benches/quality.py runs on OUT.

`--zipf S` skews the labels: label r (from 1) gets a share of the texts proportional to
1 / r^S (at least SEEDS + 1 texts), and test and dev texts are drawn with the same shares,
so class priors matter. `--own N` (default 3) is how many of a text's six words come from
its label's pool: fewer make the labels harder to tell apart.

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
import shutil

SYLLABLES = "ka lo mi ne ru ta vo zi pe su ga do fi hu je xo by wa qe ct".split()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--labels", type=int, required=True)
    ap.add_argument("--texts", type=int, required=True, help="corpus texts in all")
    ap.add_argument("--seeds", type=int, default=3, help="labelled texts a label")
    ap.add_argument("--zipf", type=float, default=0.0, help="label shares ~ 1 / rank^S")
    ap.add_argument("--own", type=int, default=3, choices=range(1, 7),
                    help="words of six from the label's own pool")
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
        words = rng.sample(pools[label], args.own) + rng.sample(shared, 6 - args.own)
        rng.shuffle(words)
        return " ".join(words)

    def name(label):
        return f"intent_{label:05d}"

    os.makedirs(args.out, exist_ok=True)
    shares = [1.0 / (r + 1) ** args.zipf for r in range(args.labels)]
    total = sum(shares)
    if args.zipf:
        counts = [max(args.seeds + 1, round(args.texts * s / total)) for s in shares]
    else:
        counts = [max(1, args.texts // args.labels)] * args.labels
    seeds = []
    with open(os.path.join(args.out, "corpus.jsonl"), "w") as corpus, open(
        os.path.join(args.out, "full.jsonl"), "w"
    ) as full:
        line = 0
        for label in range(args.labels):
            for j in range(counts[label]):
                t = text(label)
                row = {"text": t, "label": name(label)} if j < args.seeds else {"text": t}
                if j < args.seeds:
                    seeds.append(line)
                corpus.write(json.dumps(row) + "\n")
                full.write(json.dumps({"text": t, "label": name(label)}) + "\n")
                line += 1
    shutil.copyfile(os.path.join(args.out, "full.jsonl"), os.path.join(args.out, "train.jsonl"))
    with open(os.path.join(args.out, f"seeds-k{args.seeds}.txt"), "w") as f:
        f.write("\n".join(map(str, seeds)) + "\n")
    for split in ("test", "dev"):
        with open(os.path.join(args.out, f"{split}.jsonl"), "w") as out:
            if args.zipf:
                labels = rng.choices(range(args.labels), weights=shares, k=2 * args.labels)
            else:
                labels = [label for label in range(args.labels) for _ in range(2)]
            for label in labels:
                out.write(json.dumps({"text": text(label), "label": name(label)}) + "\n")


if __name__ == "__main__":
    main()
