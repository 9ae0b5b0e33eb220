#!/usr/bin/env python3
"""Sanity-check the data under corpora/ and graphs/ (stdlib only).

    python3 corpora/check.py

Exits non-zero on the first failed check and prints a summary otherwise.
"""

import collections
import csv
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_BYTES = 165_000


def path(*p):
    return os.path.join(ROOT, *p)


def fail(msg):
    sys.exit(f"FAIL: {msg}")


def read_jsonl(p):
    out = []
    with open(p, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.endswith("\n") or line.strip() == "":
                fail(f"{p}:{n}: empty line or missing final newline")
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                fail(f"{p}:{n}: {e}")
    return out


def check_replies():
    d = ("corpora", "replies")
    corpus = read_jsonl(path(*d, "corpus.jsonl"))
    gold = read_jsonl(path(*d, "corpus.gold.jsonl"))
    test = read_jsonl(path(*d, "test.jsonl"))
    for name in ("corpus.jsonl", "corpus.gold.jsonl", "test.jsonl"):
        size = os.path.getsize(path(*d, name))
        if size > MAX_BYTES:
            fail(f"{name} is {size} bytes")
    if len(corpus) != len(gold):
        fail("corpus and gold differ in length")
    intents = sorted({r["label"] for r in gold})
    seeds = collections.Counter()
    for i, (c, g) in enumerate(zip(corpus, gold), 1):
        if list(c) not in (["id", "text"], ["id", "text", "label"]):
            fail(f"corpus record {i}: keys {list(c)}")
        if list(g) != ["id", "text", "label"]:
            fail(f"gold record {i}: keys {list(g)}")
        if c["id"] != f"r{i:04d}" or g["id"] != c["id"] or g["text"] != c["text"]:
            fail(f"record {i}: id/text mismatch")
        if not c["text"].strip() or "\n" in c["text"]:
            fail(f"record {i}: bad text {c['text']!r}")
        if "label" in c:
            if c["label"] != g["label"]:
                fail(f"record {i}: seed label differs from gold")
            seeds[c["label"]] += 1
    if any(seeds[k] != 5 for k in intents) or len(seeds) != len(intents):
        fail(f"seeds per intent: {dict(seeds)}")
    for r in test:
        if list(r) != ["text", "label"] or r["label"] not in intents:
            fail(f"test record {r}")
    corpus_texts = {r["text"] for r in corpus}
    leak = [r["text"] for r in test if r["text"] in corpus_texts]
    if leak:
        fail(f"test texts found in corpus: {leak[:5]}")
    by_text = collections.defaultdict(set)
    for r in gold:
        by_text[r["text"]].add(r["label"])
    conflicts = {t: l for t, l in by_text.items() if len(l) > 1}
    if conflicts:
        fail(f"same text, different gold labels: {conflicts}")
    dups = sum(n - 1 for n in collections.Counter(r["text"] for r in gold).values() if n > 1)

    cc = collections.Counter(r["label"] for r in gold)
    tc = collections.Counter(r["label"] for r in test)
    print(f"replies: {len(corpus)} corpus records, {sum(seeds.values())} seeds, "
          f"{len(test)} test records, {dups} exact duplicate texts in corpus")
    print(f"  {'intent':<20}{'corpus':>7}{'test':>6}")
    for k in intents:
        print(f"  {k:<20}{cc[k]:>7}{tc[k]:>6}")


def check_tiny():
    d = ("corpora", "tiny")
    j = read_jsonl(path(*d, "intents.jsonl"))
    with open(path(*d, "intents.csv"), encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    with open(path(*d, "intents.txt"), encoding="utf-8") as f:
        lines = f.read().split("\n")
    if lines[-1] != "":
        fail("intents.txt: missing final newline")
    lines = lines[:-1]
    if rows[0] != ["id", "text", "label"]:
        fail(f"intents.csv header {rows[0]}")
    rows = rows[1:]
    if not (len(j) == len(rows) == len(lines)):
        fail(f"tiny lengths differ: {len(j)} {len(rows)} {len(lines)}")
    raw_csv = open(path(*d, "intents.csv"), encoding="utf-8").read()
    if '""' not in raw_csv or not any("," in r[1] for r in rows):
        fail("intents.csv does not exercise quoting")
    for i, (a, b, c) in enumerate(zip(j, rows, lines), 1):
        if a["id"] != f"t{i:02d}" or b[0] != a["id"]:
            fail(f"tiny record {i}: id mismatch")
        label = a.get("label", "")
        if "label" in a and not label:
            fail(f"tiny record {i}: empty label key")
        if c.startswith("__label__"):
            tag, _, text = c.partition(" ")
            txt_label = tag[len("__label__"):]
        else:
            txt_label, text = "", c
        if not (a["text"] == b[1] == text):
            fail(f"tiny record {i}: text differs: {a['text']!r} {b[1]!r} {text!r}")
        if not (label == b[2] == txt_label):
            fail(f"tiny record {i}: label differs: {label!r} {b[2]!r} {txt_label!r}")
    labels = collections.Counter(r["label"] for r in j if "label" in r)
    test = read_jsonl(path(*d, "test.jsonl"))
    tiny_texts = {r["text"] for r in j}
    if any(r["text"] in tiny_texts for r in test):
        fail("tiny test text found in intents")
    if any(r["label"] not in labels for r in test):
        fail("tiny test label unknown")
    print(f"tiny: {len(j)} utterances, labelled {dict(labels)}, {len(test)} test records")


def read_tsv(p, ncols):
    with open(p, encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t") for line in f]
    for r in rows:
        if len(r) != ncols or any(x == "" for x in r):
            fail(f"{p}: bad row {r}")
    return rows


def check_graph(name, gold_file):
    d = ("graphs", name)
    edges = read_tsv(path(*d, "edges.tsv"), 3)
    seeds = read_tsv(path(*d, "seeds.tsv"), 3)
    gold = read_tsv(path(*d, gold_file), 2)
    seen = set()
    for a, b, w in edges:
        key = frozenset((a, b))
        if a == b or key in seen or not float(w) > 0:
            fail(f"{name}: bad or repeated edge {a} {b} {w}")
        seen.add(key)
    nodes = {x for a, b, _ in edges for x in (a, b)}
    gold_map = dict(gold)
    if set(gold_map) != nodes:
        fail(f"{name}: gold nodes differ from edge nodes")
    for n, l, w in seeds:
        if gold_map.get(n) != l or not float(w) > 0:
            fail(f"{name}: seed {n} {l} disagrees with gold")
    print(f"graphs/{name}: {len(nodes)} nodes, {len(edges)} edges, {len(seeds)} seeds, "
          f"gold {dict(collections.Counter(gold_map.values()))}")


def main():
    check_replies()
    check_tiny()
    check_graph("toy", "expected.tsv")
    check_graph("karate", "gold.tsv")
    print("OK")


if __name__ == "__main__":
    main()
