#!/usr/bin/env python3
"""Which texts to label next: `sprig propagate --suggest` against other ways to pick them.

    python3 benches/suggest.py --data ../shared/corpora/snips ../shared/corpora/hwu64 [--model]

The shared few-label protocol (seeds-k10: 10 labelled train lines a label) is the start.
Round 0 propagates over the train lines alone (a user's own unlabelled texts; the test
lines are held out, so no pick can be a test text) and picks B = --per-label x labels more
train lines to label, by each strategy:

- `suggest`: the first B texts of `sprig propagate --suggest` (`--suggest-count B`);
- `margin`: the B distinct texts with the smallest margin between their two largest
  propagated scores, as shares of their label mass (uncertainty sampling, without the
  records each text stands for or the spread between picks: the ablation);
- `random`: B distinct unlabelled texts at random (draws 1..--draws);
- `k20` (when --per-label is 10): the seeds-k20 file, i.e. 10 more lines of each label,
  which needs the labels known in advance: a reference, not a strategy a user has.

Each set is then labelled with the gold labels and run through the few-label protocol of
benches/distill.sh (train + test lines in the graph, test unlabelled): the propagation's test
accuracy and macro-F1 (abstaining counts as wrong), and with --model the distilled model's
(`sprig train --labels`, `sprig eval`). SwDA keeps the peers' 75,000-line train subsample.
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# The strategies whose texts are chosen, not drawn: given back as "suggested" seeds.
CHOSEN = ("suggest", "margin")


def run(cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def macro_f1(gold, pred):
    labels = sorted(set(gold))
    f1s = []
    for l in labels:
        tp = sum(1 for g, p in zip(gold, pred) if g == l and p == l)
        fp = sum(1 for g, p in zip(gold, pred) if g != l and p == l)
        fn = sum(1 for g, p in zip(gold, pred) if g == l and p != l)
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(f1s) / len(f1s)


def write_corpus(path, train, keep, labelled, test):
    with open(path, "w") as out:
        for i in keep:
            o = {"id": f"t{i}", "text": train[i]["text"]}
            if i in labelled:
                o["label"] = train[i]["label"]
            out.write(json.dumps(o, ensure_ascii=False) + "\n")
        for j, r in enumerate(test):
            out.write(json.dumps({"id": f"x{j}", "text": r["text"]}, ensure_ascii=False) + "\n")


def margin_order(labels_path):
    """Train ids by normalized margin, smallest first (non-seeds; ties by id)."""
    rows = []
    for line in open(labels_path):
        r = json.loads(line)
        if r["seed"]:
            continue
        s = [x for _, x in r["scores"]]
        total = sum(s)
        m = (s[0] - (s[1] if len(s) > 1 else 0.0)) / total if total > 0 else 0.0
        rows.append((m, int(r["id"][1:])))
    rows.sort()
    return [i for _, i in rows]


def distinct(train, order, seeds, b):
    """The first `b` of `order` whose texts are new (not a seed's, not picked already)."""
    seen = {train[i]["text"] for i in seeds}
    out = []
    for i in order:
        t = train[i]["text"]
        if t in seen:
            continue
        seen.add(t)
        out.append(i)
        if len(out) == b:
            break
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", nargs="+", required=True)
    ap.add_argument("--k", type=int, default=10, help="start from seeds-kK.txt")
    ap.add_argument("--per-label", type=int, default=10)
    ap.add_argument("--draws", type=int, default=3)
    ap.add_argument("--model", action="store_true", help="also train and score the model")
    ap.add_argument("--sprig", default=os.path.join(ROOT, "target", "release", "sprig"))
    ap.add_argument("--peers", default=os.path.join(ROOT, "..", "shared", "peers"))
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--json", action="store_true", help="one JSON object per row on stdout")
    ap.add_argument("--only", default=None, metavar="NAMES",
                    help="comma-separated strategies to run (e.g. suggest,random); all by default")
    ap.add_argument("--prior-sample", type=int, default=0, metavar="N",
                    help="class priors from N random labelled train lines (--prior-from), "
                         "in every propagation: the README's advice for skewed classes")
    args = ap.parse_args()
    sys.path.insert(0, args.peers)
    from common import subsample_train

    sprig = args.sprig
    work = args.workdir or tempfile.mkdtemp(prefix="sprig-suggest-")
    os.makedirs(work, exist_ok=True)
    for data in args.data:
        name = os.path.basename(os.path.normpath(data))
        train = [json.loads(l) for l in open(f"{data}/train.jsonl")]
        test = [json.loads(l) for l in open(f"{data}/test.jsonl")]
        seeds = sorted(int(x) for x in open(f"{data}/seeds-k{args.k}.txt").read().split())
        keep = subsample_train([r["text"] for r in train], seeds, 75000 if name == "swda" else 0)
        n_labels = len({train[i]["label"] for i in seeds})
        b = args.per_label * n_labels
        d = os.path.join(work, name)
        os.makedirs(d, exist_ok=True)
        prop_args = []
        if args.prior_sample:
            sample = random.Random(0).sample(keep, args.prior_sample)
            with open(f"{d}/prior-sample.jsonl", "w") as out:
                for i in sample:
                    out.write(json.dumps({"text": train[i]["text"], "label": train[i]["label"]},
                                         ensure_ascii=False) + "\n")
            prop_args = ["--prior-from", f"{d}/prior-sample.jsonl"]

        # Round 0: the train lines alone, the seeds labelled.
        write_corpus(f"{d}/round0.jsonl", train, keep, set(seeds), [])
        t0 = time.time()
        run([sprig, "graph", "--corpus", f"{d}/round0.jsonl", "--out", f"{d}/round0.graph", "-q"])
        run([sprig, "propagate", "--graph", f"{d}/round0.graph", "--out", f"{d}/round0.labels.jsonl",
             "--suggest", f"{d}/suggest.jsonl", "--suggest-count", str(b), "-q"] + prop_args)
        t_round0 = time.time() - t0
        suggested = [int(json.loads(l)["id"][1:]) for l in open(f"{d}/suggest.jsonl")]
        unlabelled = [i for i in keep if i not in set(seeds)]
        strategies = [("seeds only", [])]
        strategies.append(("suggest", suggested))
        strategies.append(("margin", distinct(train, margin_order(f"{d}/round0.labels.jsonl"), seeds, b)))
        for r in range(1, args.draws + 1):
            order = unlabelled[:]
            random.Random(r).shuffle(order)
            strategies.append((f"random {r}", distinct(train, order, seeds, b)))
        more = f"{data}/seeds-k{args.k + args.per_label}.txt"
        if os.path.exists(more):
            oracle = {int(x) for x in open(more).read().split()}
            strategies.append((f"k{args.k + args.per_label} (oracle)", sorted(oracle - set(seeds))))

        print(f"== {name}: {len(keep)} train lines, {n_labels} labels, {len(seeds)} seeds, "
              f"B = {b}; round 0 (graph + propagate + suggest) {t_round0:.1f} s", file=sys.stderr)
        gold = [r["label"] for r in test]
        if args.only:
            wanted = args.only.split(",")
            strategies = [x for x in strategies if x[0].split(" ")[0] in wanted]
        for label, extra in strategies:
            labelled = set(seeds) | set(extra)
            s = os.path.join(d, label.replace(" ", "_").replace("(", "").replace(")", ""))
            os.makedirs(s, exist_ok=True)
            seeds_args = []
            if label in CHOSEN:
                # Chosen texts go back as `sprig propagate --suggest` wrote them, their
                # labels filled in: a seed file whose lines say "suggested", which the
                # class priors leave out. Random ones are labelled in the corpus, as a
                # user labels lines drawn at random.
                with open(f"{s}/seeds.jsonl", "w") as out:
                    for i in extra:
                        out.write(json.dumps({"id": f"t{i}", "label": train[i]["label"],
                                              "suggested": True}) + "\n")
                seeds_args = ["--seeds", f"{s}/seeds.jsonl"]
                labelled = set(seeds)
            write_corpus(f"{s}/corpus.jsonl", train, keep, labelled, test)
            run([sprig, "graph", "--corpus", f"{s}/corpus.jsonl", "--out", f"{s}/g.graph", "-q"])
            run([sprig, "propagate", "--graph", f"{s}/g.graph", "--out", f"{s}/labels.jsonl", "-q"]
                + prop_args + seeds_args)
            pred = {}
            for line in open(f"{s}/labels.jsonl"):
                r = json.loads(line)
                if r["id"].startswith("x"):
                    pred[int(r["id"][1:])] = r["label"]
            p = [pred[j] for j in range(len(test))]
            acc = sum(g == q for g, q in zip(gold, p)) / len(gold)
            row = {"data": name, "strategy": label, "labelled": len(set(seeds) | set(extra)),
                   "new_texts": len({train[i]["text"] for i in extra}),
                   "prop_acc": acc, "prop_f1": macro_f1(gold, p)}
            if args.model:
                run([sprig, "train", "--corpus", f"{s}/corpus.jsonl", "--labels", f"{s}/labels.jsonl",
                     "--out", f"{s}/m.sprig", "-q"] + seeds_args)
                out = subprocess.run([sprig, "eval", "--model", f"{s}/m.sprig", "--data",
                                      f"{data}/test.jsonl", "--json"], check=True,
                                     capture_output=True, text=True).stdout
                e = json.loads(out)
                row["model_acc"], row["model_f1"] = e["accuracy"], e["macro_f1"]
            if args.json:
                print(json.dumps(row))
            else:
                model = (f"  model {100 * row['model_acc']:.1f} / {100 * row['model_f1']:.1f}"
                         if args.model else "")
                print(f"{name:6} {label:14} labelled {row['labelled']:5}  "
                      f"propagation {100 * acc:.1f} / {100 * row['prop_f1']:.1f}{model}", flush=True)


if __name__ == "__main__":
    main()
