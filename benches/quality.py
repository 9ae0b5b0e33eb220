#!/usr/bin/env python3
"""Propagation quality on the shared few-label protocol, sprig beside the peers.

Not a test and not part of the crate: run it with the peers' Python (it needs scikit-learn
for the metrics and for ../shared/peers/lp_peers.py):

    PY=/root/.cache/sprig-peers-venv/bin/python
    $PY benches/quality.py --data ../shared/corpora/snips ../shared/corpora/hwu64 \
        ../shared/corpora/swda [--peers] [--variant 'NAME;GRAPH FLAGS;PROPAGATE FLAGS' ...]

Protocol (../shared/corpora/README.md): the `seeds-k10.txt` train lines keep their label,
every other train line and every evaluation line (test, or dev with `--split dev`) is
unlabelled. For each dataset the script writes one JSONL corpus: the kept train lines
(SwDA: `--max-train 75000`, the seeds plus the first lines in FNV order, exactly
lp_peers.py's subsample) then the evaluation lines, each with an `id` (`tr:LINE`,
`ev:LINE`) and a `label` on seed lines only. Then, per variant, `sprig graph` and
`sprig propagate --out labels.jsonl`, each under `/usr/bin/time -v` (wall, peak RSS); a
variant's graph is built once and shared by the variants with the same graph flags.
`labels.jsonl` has one line per input record in order; a `null` label is an abstention,
counted as wrong (and counted).

Metrics: accuracy and macro-F1 (scikit-learn) on the unlabelled train lines and on the
evaluation lines. Macro-F1 is over the labels present in the truth or in the predictions,
an abstention being no label (the peers' convention, which has no abstentions).

In a variant's propagate flags, `@train-priors` stands for `--prior LABEL=SHARE` for every
label, SHARE being its share of ALL train lines: the class frequencies the majority-label
baseline knows and the seeds-only protocol does not (for the "known class priors" rows).
`@sample-priors:N` stands for `--prior-from` a file of the labels of N train lines drawn at
random (seeded): what a user gets by labelling N random lines to estimate the class shares
(also outside the seeds-only protocol). `@sample-priors:N:DRAW` draws with random seed DRAW
(default 0); `@sample-priors:N:DRAW:ALPHA` passes the sample's shares with add-ALPHA
smoothing as `--prior` instead (for comparing smoothings; `--prior-from` adds one; ALPHA
`perks` is 1 / the number of labels, a total pseudo-count of one line).

`--peers` also runs ../shared/peers/lp_peers.py on the same data in a subprocess
(LabelSpreading first, so its peak RSS is its own end to end; methods from
`--peer-methods`) and adds the majority-label baseline (most frequent train label,
predicted everywhere). The last stdout line is one JSON object with every number.
"""
import argparse
import collections
import json
import os
import random
import re
import shlex
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# The shared peers folder (lp_peers.py, common.py); SPRIG_PEERS overrides it for a clone
# that does not sit beside ../shared.
PEERS = os.environ.get("SPRIG_PEERS") or os.path.normpath(os.path.join(ROOT, "..", "shared", "peers"))
sys.path.insert(0, PEERS)
from common import TOKEN_PATTERN, read_jsonl, read_seeds, subsample_train  # noqa: E402

ABSTAIN = None
# In a variant's propagate flags, stands for `--prior LABEL=W` for every label, W = the label's
# share of ALL train lines: the class frequencies the majority-label baseline uses, i.e. more
# than the seeds-only protocol gives. For the "known class priors" rows only.
TRAIN_PRIORS = "@train-priors"
SAMPLE_PRIORS = "@sample-priors:"
DEFAULT_MAX_TRAIN = {"swda": 75000}


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def loadavg():
    return round(os.getloadavg()[0], 2)


def timed(cmd):
    """Runs cmd under /usr/bin/time -v; returns (wall s, peak RSS MiB, user+sys s, stdout)."""
    p = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(map(shlex.quote, cmd))} failed:\n{p.stderr[-3000:]}")
    err = p.stderr
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", err).group(1)
    parts = [float(x) for x in wall.split(":")]
    secs = 0.0
    for x in parts:
        secs = secs * 60 + x
    rss_kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", err).group(1))
    user = float(re.search(r"User time \(seconds\): ([\d.]+)", err).group(1))
    sys_ = float(re.search(r"System time \(seconds\): ([\d.]+)", err).group(1))
    return round(secs, 2), round(rss_kib / 1024, 1), round(user + sys_, 2), p.stdout.strip()


def metrics(y_true, y_pred):
    from sklearn.metrics import accuracy_score, f1_score

    labels = sorted(set(y_true) | {p for p in y_pred if p is not ABSTAIN})
    pred = ["\x00abstain" if p is ABSTAIN else p for p in y_pred]
    return {
        "acc": round(float(accuracy_score(y_true, pred)), 4),
        "macro_f1": round(float(f1_score(y_true, pred, labels=labels, average="macro",
                                         zero_division=0)), 4),
    }


def prepare(data, split, k, max_train, work):
    (trx, try_) = read_jsonl(os.path.join(data, "train.jsonl"))
    (evx, evy) = read_jsonl(os.path.join(data, f"{split}.jsonl"))
    seeds = read_seeds(data, k)
    keep = subsample_train(trx, seeds, max_train)
    seed_set = set(seeds)
    path = os.path.join(work, "corpus.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        for i in keep:
            o = {"id": f"tr:{i}", "text": trx[i]}
            if i in seed_set:
                o["label"] = try_[i]
            f.write(json.dumps(o, ensure_ascii=False) + "\n")
        for i, t in enumerate(evx):
            f.write(json.dumps({"id": f"ev:{i}", "text": t}, ensure_ascii=False) + "\n")
    return {
        "path": path, "keep": keep, "seed_set": seed_set, "try": try_, "evy": evy,
        "trx": trx, "evx": evx,
        "n_train_total": len(trx), "n_train_used": len(keep), "n_eval": len(evx),
        "n_classes": len(set(try_)), "majority": collections.Counter(try_).most_common(1)[0][0],
        "train_priors": {l: c / len(try_) for l, c in collections.Counter(try_).items()},
    }


def score_output(prep, out_path):
    keep, seed_set, try_, evy = prep["keep"], prep["seed_set"], prep["try"], prep["evy"]
    preds = []
    with open(out_path, encoding="utf-8") as f:
        for line in f:
            o = json.loads(line)
            preds.append((o["id"], o["label"]))
    n = len(keep)
    assert len(preds) == n + len(evy), (len(preds), n, len(evy))
    tr_true, tr_pred, ev_pred = [], [], []
    for j, i in enumerate(keep):
        assert preds[j][0] == f"tr:{i}", preds[j]
        if i not in seed_set:
            tr_true.append(try_[i])
            tr_pred.append(preds[j][1])
    for j in range(len(evy)):
        assert preds[n + j][0] == f"ev:{j}"
        ev_pred.append(preds[n + j][1])
    r = {"eval": metrics(evy, ev_pred), "unlabeled_train": metrics(tr_true, tr_pred)}
    r["eval"]["abstain"] = sum(p is ABSTAIN for p in ev_pred)
    r["unlabeled_train"]["abstain"] = sum(p is ABSTAIN for p in tr_pred)
    return r


def run_sprig(sprig, prep, work, variants, keep_files):
    graphs = {}
    results = []
    for vi, (name, gflags, pflags) in enumerate(variants):
        gkey = " ".join(gflags)
        if gkey not in graphs:
            gpath = os.path.join(work, f"g{len(graphs)}.graph")
            cmd = [sprig, "graph", "--corpus", prep["path"], "--out", gpath, "--quiet"] + gflags
            w, rss, cpu, out = timed(cmd)
            graphs[gkey] = {"path": gpath, "wall_s": w, "peak_rss_mib": rss, "cpu_s": cpu,
                            "summary": out}
            log(f"  graph [{gkey}] {w}s {rss} MiB: {out}")
        g = graphs[gkey]
        opath = os.path.join(work, f"labels{vi}.jsonl")
        flags = []
        for f in pflags:
            if f == TRAIN_PRIORS:
                flags += [f"--prior={l}={w:.6f}" for l, w in sorted(prep["train_priors"].items())]
            elif f.startswith(SAMPLE_PRIORS):
                parts = f[len(SAMPLE_PRIORS):].split(":")
                n, draw = int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
                alpha = parts[2] if len(parts) > 2 else ""
                drawn = random.Random(draw).sample(prep["try"], n)
                if alpha:
                    # The shares computed here with add-ALPHA smoothing over the seeds'
                    # labels, passed as --prior: how another smoothing would do.
                    labels = sorted({prep["try"][i] for i in prep["seed_set"]})
                    counts = collections.Counter(l for l in drawn if l in set(labels))
                    a = 1 / len(labels) if alpha == "perks" else float(alpha)
                    total = sum(counts.values()) + a * len(labels)
                    flags += [f"--prior={l}={(counts[l] + a) / total:.9f}" for l in labels]
                else:
                    sample = os.path.join(work, f"prior-sample-{n}-{draw}.jsonl")
                    with open(sample, "w", encoding="utf-8") as out:
                        for label in drawn:
                            out.write(json.dumps({"text": "-", "label": label}) + "\n")
                    flags += ["--prior-from", sample]
            else:
                flags.append(f)
        cmd = [sprig, "propagate", "--graph", g["path"], "--out", opath, "--quiet"] + flags
        w, rss, cpu, out = timed(cmd)
        r = {"name": name, "graph_flags": gkey, "propagate_flags": " ".join(pflags),
             "graph_wall_s": g["wall_s"], "graph_peak_rss_mib": g["peak_rss_mib"],
             "graph_cpu_s": g["cpu_s"], "graph_summary": g["summary"],
             "propagate_wall_s": w, "propagate_peak_rss_mib": rss, "propagate_cpu_s": cpu,
             "propagate_summary": out, "load1": loadavg()}
        r["total_wall_s"] = round(r["graph_wall_s"] + w, 2)
        r["peak_rss_mib"] = max(r["graph_peak_rss_mib"], rss)
        r.update(score_output(prep, opath))
        if not keep_files:
            os.remove(opath)
        log(f"  {name}: eval acc {r['eval']['acc']:.4f} F1 {r['eval']['macro_f1']:.4f} "
            f"(abstain {r['eval']['abstain']}), unl-train acc {r['unlabeled_train']['acc']:.4f} "
            f"(abstain {r['unlabeled_train']['abstain']}); propagate {w}s")
        results.append(r)
    if not keep_files:
        for g in graphs.values():
            os.remove(g["path"])
    return results


def run_peers(python, data, split, k, max_train, methods):
    if split != "test":
        raise SystemExit("--peers needs --split test (lp_peers.py scores test)")
    cmd = [python, os.path.join(PEERS, "lp_peers.py"), "--data", os.path.abspath(data), "--k", str(k),
           "--methods", methods]
    if max_train:
        cmd += ["--max-train", str(max_train)]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=PEERS)
    if p.returncode != 0:
        raise RuntimeError(f"lp_peers failed:\n{p.stderr[-3000:]}")
    res = json.loads(p.stdout.strip().splitlines()[-1])
    res["process_wall_s"] = round(time.perf_counter() - t0, 2)
    return res


def lr_char(prep):
    """LogisticRegression on the seeds, as lp_peers.py's `lr_seeds` (lbfgs, C = 1,
    max_iter 2000; its word tokens, one-letter words included), but on word 1–2-gram +
    char 3–4-gram TF-IDF (sklearn's `char_wb`), the
    kind of features sprig's graph uses: a peer with the same features, so that a margin
    over it is propagation's and not the features'. TF-IDF is fitted on every text in the
    graph (kept train + evaluation lines), as lp_peers fits its own on train + test."""
    import numpy as np
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    keep, seed_set, try_ = prep["keep"], prep["seed_set"], prep["try"]
    texts = [prep["trx"][i] for i in keep] + list(prep["evx"])
    t0 = time.perf_counter()
    word = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True,
                           token_pattern=TOKEN_PATTERN).fit_transform(texts)
    char = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 4),
                           sublinear_tf=True).fit_transform(texts)
    x = hstack([word, char]).tocsr()
    # Each block is L2-normalized; rescale rows to unit norm again, as a single vector.
    x = x.multiply(1 / np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).clip(1e-12))).tocsr()
    rows = [j for j, i in enumerate(keep) if i in seed_set]
    model = LogisticRegression(max_iter=2000).fit(x[rows], [try_[keep[j]] for j in rows])
    n = len(keep)
    ev_pred = list(model.predict(x[n:]))
    unl = [j for j, i in enumerate(keep) if i not in seed_set]
    tr_pred = list(model.predict(x[unl])) if unl else []
    return {"eval": metrics(prep["evy"], ev_pred),
            "unlabeled_train": metrics([try_[keep[j]] for j in unl], tr_pred),
            "wall_s": round(time.perf_counter() - t0, 2)}


def majority(prep):
    keep, seed_set, try_, evy = prep["keep"], prep["seed_set"], prep["try"], prep["evy"]
    m = prep["majority"]
    tr_true = [try_[i] for i in keep if i not in seed_set]
    return {"eval": metrics(evy, [m] * len(evy)),
            "unlabeled_train": metrics(tr_true, [m] * len(tr_true))}


PEER_NAMES = {
    "spread": "sklearn LabelSpreading knn k=10 (defaults)",
    "prop": "sklearn LabelPropagation knn k=10",
    "spread99": "sklearn LabelSpreading α=0.99 (same kNN)",
    "lr_seeds": "LogisticRegression, seeds only",
    "lr_full": "LogisticRegression, ALL train labels (ceiling, not a peer)",
}


def table(ds, rows, split):
    out = [f"\n### {ds}\n",
           f"| method | {split} acc | {split} macro-F1 | unlabelled-train acc | abstain {split} / train | wall s | peak RSS MiB |",
           "|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append("| {name} | {ea} | {ef} | {ta} | {ab} | {w} | {m} |".format(
            name=r["name"], ea=f"{100 * r['eval']['acc']:.1f}",
            ef=f"{100 * r['eval']['macro_f1']:.1f}",
            ta="—" if r.get("unlabeled_train") is None else f"{100 * r['unlabeled_train']['acc']:.1f}",
            ab=r.get("abstain", "—"), w=r.get("wall", "—"), m=r.get("rss", "—")))
    return "\n".join(out)


def parse_variant(s):
    parts = s.split(";")
    if len(parts) != 3:
        raise SystemExit(f"--variant {s!r}: expected 'NAME;GRAPH FLAGS;PROPAGATE FLAGS'")
    return parts[0], shlex.split(parts[1]), shlex.split(parts[2])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", nargs="+", required=True)
    ap.add_argument("--split", default="test", choices=["test", "dev"],
                    help="unlabelled evaluation lines: test (report) or dev (tuning)")
    ap.add_argument("--k", type=int, default=10, help="seeds per class file")
    ap.add_argument("--max-train", type=int, default=None,
                    help="train lines kept (0 = all); default 75000 for swda, all otherwise")
    ap.add_argument("--sprig", default=os.path.join(ROOT, "target", "release", "sprig"))
    ap.add_argument("--graph-args", default="", help="extra `sprig graph` flags (default variant)")
    ap.add_argument("--propagate-args", default="", help="extra `sprig propagate` flags")
    ap.add_argument("--variant", action="append", default=[],
                    help="'NAME;GRAPH FLAGS;PROPAGATE FLAGS' (repeatable; replaces the default variant)")
    ap.add_argument("--peers", action="store_true", help="run lp_peers.py beside sprig")
    ap.add_argument("--lr-char", action="store_true",
                    help="also LogisticRegression on the seeds with word + char TF-IDF (sprig's kind of features)")
    ap.add_argument("--peer-methods", default="spread,prop,spread99,lr_seeds")
    ap.add_argument("--python", default=sys.executable, help="python for lp_peers.py")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--keep-files", action="store_true")
    a = ap.parse_args()

    variants = [parse_variant(v) for v in a.variant] or [
        ("sprig (defaults)" if not (a.graph_args or a.propagate_args) else "sprig",
         shlex.split(a.graph_args), shlex.split(a.propagate_args))]
    report = {"script": "benches/quality.py", "split": a.split, "k": a.k,
              "sprig": a.sprig, "load1_start": loadavg(), "datasets": {}}
    md = []
    for data in a.data:
        ds = os.path.basename(os.path.normpath(data))
        max_train = a.max_train if a.max_train is not None else DEFAULT_MAX_TRAIN.get(ds, 0)
        work = a.workdir or tempfile.mkdtemp(prefix=f"sprig-quality-{ds}-")
        os.makedirs(work, exist_ok=True)
        log(f"{ds}: preparing in {work} (max_train {max_train or 'all'}, split {a.split})")
        prep = prepare(data, a.split, a.k, max_train, work)
        d = {"n_train_total": prep["n_train_total"], "n_train_used": prep["n_train_used"],
             "n_eval": prep["n_eval"], "n_classes": prep["n_classes"],
             "n_seeds": len(prep["seed_set"]), "max_train": max_train}
        d["sprig"] = run_sprig(a.sprig, prep, work, variants, a.keep_files)
        d["majority"] = majority(prep)
        rows = []
        for r in d["sprig"]:
            rows.append({"name": r["name"], "eval": r["eval"],
                         "unlabeled_train": r["unlabeled_train"],
                         "abstain": f"{r['eval']['abstain']} / {r['unlabeled_train']['abstain']}",
                         "wall": f"{r['graph_wall_s']} + {r['propagate_wall_s']}",
                         "rss": max(r["graph_peak_rss_mib"], r["propagate_peak_rss_mib"])})
        if a.peers:
            log(f"{ds}: lp_peers.py ({a.peer_methods})")
            peers = run_peers(a.python, data, a.split, a.k, max_train, a.peer_methods)
            d["peers"] = peers
            for m, r in peers["runs"].items():
                if "test" not in r:
                    continue
                wall = r["fit_s"] + r.get("knn_graph_s", 0)
                if m == a.peer_methods.split(",")[0]:
                    wall = f"{peers['tfidf_s']} + {r['fit_s']}"
                rows.append({"name": PEER_NAMES.get(m, m), "eval": r["test"],
                             "unlabeled_train": r.get("unlabeled_train"), "wall": wall,
                             "rss": r["peak_rss_mib_so_far"] if m == a.peer_methods.split(",")[0] else "—"})
        if a.lr_char:
            log(f"{ds}: LogisticRegression, seeds only, word + char features")
            lc = lr_char(prep)
            d["lr_char"] = lc
            rows.append({"name": "LogisticRegression, seeds only, word 1–2 + char 3–4 TF-IDF",
                         "eval": lc["eval"], "unlabeled_train": lc["unlabeled_train"],
                         "wall": lc["wall_s"], "rss": "—"})
        rows.append({"name": "most frequent train label", **d["majority"]})
        best_peer = max([r["eval"]["acc"] for r in rows[len(d["sprig"]):]
                         if "ALL train" not in r["name"]])
        d["best_peer_eval_acc"] = best_peer
        for r in d["sprig"]:
            r["margin_vs_best_peer_pts"] = round(100 * (r["eval"]["acc"] - best_peer), 2)
        report["datasets"][ds] = d
        md.append(table(ds, rows, a.split))
        md.append(f"\nbest peer {a.split} acc {100 * best_peer:.1f}; sprig margins (points): " +
                  ", ".join(f"{r['name']} {r['margin_vs_best_peer_pts']:+.1f}" for r in d["sprig"]))
    report["load1_end"] = loadavg()
    print("\n".join(md))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
