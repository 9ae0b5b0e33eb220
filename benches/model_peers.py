#!/usr/bin/env python3
"""The distilled model beside fastText, in one run: accuracy, size and latency.

Not a test and not part of the crate: run it with the peers' Python (fastText and
scikit-learn live there):

    PY=/root/.cache/sprig-peers-venv/bin/python
    $PY benches/model_peers.py --data ../shared/corpora/snips ../shared/corpora/hwu64 \
        [--variant 'NAME;SPRIG TRAIN FLAGS' ...] [--projection-seeds 1 2 3]

For each dataset, fully supervised (all train labels):
  * sprig: `sprig train --corpus train.jsonl` per variant and projection seed, then
    `sprig eval` on test.jsonl (accuracy, macro-F1), the model file's size, and the
    `predict` bench (`cargo bench --bench predict`: single-text `predict_with` latency,
    median and p90 over counted passes, one thread; batch throughput) on the test texts.
  * fastText: `benches/fasttext_warm.py` (the peers' own preprocessing, configs and
    quantization recipe, imported from ../shared/peers/fasttext_peers.py), run just before
    sprig's timings: its `default` and `tutorial` models trained on all train lines, `.bin`
    and quantized `.ftz`, their accuracies and sizes, and their single-text latency timed as
    sprig's bench times it (a warm-up pass discarded, median and p90 over four passes; the
    cost of predicting an empty line, the Python → C++ call plus the output layer, is
    printed as `empty call`).
    (`fasttext_peers.py` times one cold pass, 25–50% slower than warm.)

Ratios printed: sprig latency / the fastest fastText latency (target: ≤ 1), sprig size /
the smallest `.ftz` (target: ≤ 1/3), accuracy difference to the most accurate fastText
model (target: ≥ 0). The latency figures of both tools move between runs on a shared VM;
the load average is printed with them. The last stdout line is one JSON object with every
number.
"""
import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_VARIANTS = ["defaults;", "d28h64;--bits 28 --hidden 64"]


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def run(cmd, **kw):
    log("$", " ".join(shlex.quote(c) for c in cmd))
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


def load():
    return os.getloadavg()[0]


def predict_bench():
    """Builds the predict bench and returns its executable."""
    out = run(["cargo", "bench", "--bench", "predict", "--no-run"], cwd=ROOT)
    m = re.search(r"Executable \S+ \((\S+)\)", out.stderr + out.stdout)
    if not m:
        sys.exit("could not find the predict bench executable in cargo's output")
    return os.path.join(ROOT, m.group(1))


def latency(bench, model, data):
    out = run([bench, "--model", model, "--data", data]).stdout
    m = re.search(r"median ([\d.]+) µs, p90 ([\d.]+) µs; batch throughput (\d+) texts/s", out)
    if not m:
        sys.exit(f"unexpected predict bench output:\n{out}")
    return {"median_us": float(m.group(1)), "p90_us": float(m.group(2)),
            "throughput": int(m.group(3))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", nargs="+", required=True)
    ap.add_argument("--variant", action="append", help="'NAME;SPRIG TRAIN FLAGS'")
    ap.add_argument("--projection-seeds", nargs="+", type=int, default=[1])
    ap.add_argument("--sprig", default=os.path.join(ROOT, "target", "release", "sprig"))
    ap.add_argument("--python", default=sys.executable, help="interpreter for the peers")
    args = ap.parse_args()
    variants = [v.split(";", 1) for v in (args.variant or DEFAULT_VARIANTS)]
    bench = predict_bench()
    results = {"script": "model_peers", "datasets": {}}
    with tempfile.TemporaryDirectory() as work:
        for data in args.data:
            name = os.path.basename(os.path.normpath(data))
            train, test = os.path.join(data, "train.jsonl"), os.path.join(data, "test.jsonl")
            load_ft = load()
            ft = run([args.python, os.path.join(HERE, "fasttext_warm.py"), "--data", data])
            ft = json.loads(ft.stdout.strip().splitlines()[-1])["configs"]
            models = [(f"{cfg} {kind}", m) for cfg, r in ft.items() for kind, m in
                      (("bin", r["bin"]), ("ftz", r["ftz"]))]
            fast = {
                "models": dict(models),
                "accuracy": max(m["accuracy"] for _, m in models),
                "smallest_ftz": min(r["ftz"]["bytes"] for r in ft.values()),
                "fastest_us": min(m["median_us"] for _, m in models),
                "load": load_ft,
            }
            rows = []
            for vname, flags in variants:
                for seed in args.projection_seeds:
                    model = os.path.join(work, f"{name}-{vname}-{seed}.sprig")
                    run([args.sprig, "train", "--corpus", train, "--out", model, "-q",
                         "--projection-seed", str(seed), *shlex.split(flags)])
                    ev = json.loads(run([args.sprig, "eval", "--model", model, "--data", test,
                                         "--json"]).stdout)
                    load_s = load()
                    lat = latency(bench, model, test)
                    rows.append({"variant": vname, "flags": flags, "projection_seed": seed,
                                 "accuracy": ev["accuracy"], "macro_f1": ev["macro_f1"],
                                 "bytes": os.path.getsize(model), **lat, "load": load_s})
            results["datasets"][name] = {"fasttext": fast, "sprig": rows}
            print(f"\n## {name}  (fastText trained on all train lines, load {load_ft:.1f})")
            print("| model | accuracy | size | median | p90 | empty call |")
            print("|---|---|---|---|---|---|")
            for mname, m in models:
                print(f"| fastText {mname} | {100 * m['accuracy']:.2f} | "
                      f"{m['bytes'] / 1e6:.2f} MB | {m['median_us']:.2f} µs | "
                      f"{m['p90_us']:.2f} µs | {m['empty_call_us']:.2f} µs |")
            print("\n| variant | ps | accuracy | macro-F1 | Δ acc vs best fastText | size "
                  "| size / smallest .ftz | median | p90 | median / fastest fastText "
                  "| texts/s | load |")
            print("|---|---|---|---|---|---|---|---|---|---|---|---|")
            for r in rows:
                print(f"| {r['variant']} | {r['projection_seed']} | {100 * r['accuracy']:.2f} "
                      f"| {100 * r['macro_f1']:.2f} "
                      f"| {100 * (r['accuracy'] - fast['accuracy']):+.2f} "
                      f"| {r['bytes'] / 1e3:.0f} KB | {r['bytes'] / fast['smallest_ftz']:.3f} "
                      f"| {r['median_us']:.1f} µs | {r['p90_us']:.1f} µs "
                      f"| {r['median_us'] / fast['fastest_us']:.2f}× "
                      f"| {r['throughput']:,} | {r['load']:.1f} |")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
