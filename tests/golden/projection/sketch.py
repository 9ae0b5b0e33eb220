#!/usr/bin/env python3
"""Independent implementation of sprig's `sketch` projection, for its golden values.

Computes the projection of "Thank you so much!" under the default text, feature and
projection configs with `scheme = sketch`, from the definitions in src/hash.rs, src/text.rs
and src/projection.rs (not from their code), and prints the values that
`projection::tests::sketch_projection_is_pinned` pins: the first 28 values, and
(sum of all values, number of zeros).

    python3 -m venv /tmp/v && /tmp/v/bin/pip install xxhash && /tmp/v/bin/python sketch.py

Definitions used:
- Text: lowercased, punctuation split off: "thank you so much !" (5 tokens).
- Features: tag byte, then 0x1f before each part. Word block: unigrams `u`, bigrams `b`.
  Char block: `c`, the 3- and 4-grams of "<token>". Hash: XXH3-64, seed 0x535052494701.
  Weight: round(8 * (1 + ln count)) (sublinear TF, integer as in `paired` and `sketch`).
- Functions: T = 80, d = 14, seed 0x5EED; function t's seed is
  mix(seed ^ mix(t + 1)) (SplitMix64's finalizer). Structured: functions 0..40 read word
  features, 40..80 char features. Groups of 4 consecutive functions of a block share the
  hash XXH3-64(le_bytes(feature hash), seed of the group's first function); function i of
  the group reads bits 16i..16i+16 as c: bit ((c & 0x7fff) * d) >> 15, sign - if c >= 0x8000.
- Output: sign of each of the T * d sums.
"""
import math
from collections import Counter

import xxhash

M64 = (1 << 64) - 1
FEATURE_SEED = 0x535052494701
T, D, SEED = 80, 14, 0x5EED


def mix(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def fhash(tag, *parts):
    b = tag.encode() + b"".join(b"\x1f" + p.encode() for p in parts)
    return xxhash.xxh3_64_intdigest(b, seed=FEATURE_SEED)


tokens = "thank you so much !".split()
word, char = Counter(), Counter()
for i, t in enumerate(tokens):
    word[fhash("u", t)] += 1
    if i + 1 < len(tokens):
        word[fhash("b", t, tokens[i + 1])] += 1
for t in tokens:
    w = "<" + t + ">"
    for n in (3, 4):
        for s in range(len(w) - n + 1):
            char[fhash("c", w[s : s + n])] += 1

acc = [0] * (T * D)
for features, functions in ((word, range(0, T // 2)), (char, range(T // 2, T))):
    for h, count in features.items():
        weight = 8 if count == 1 else round(8 * (1 + math.log(count)))
        fs = list(functions)
        for g in range(0, len(fs), 4):
            first = fs[g]
            bits = xxhash.xxh3_64_intdigest(h.to_bytes(8, "little"), seed=mix(SEED ^ mix(first + 1)))
            for i, t in enumerate(fs[g : g + 4]):
                c = (bits >> (16 * i)) & 0xFFFF
                j = ((c & 0x7FFF) * D) >> 15
                acc[t * D + j] += -weight if c & 0x8000 else weight

values = [(a > 0) - (a < 0) for a in acc]
print("head", values[:28])
print("stats", (sum(values), values.count(0)))
