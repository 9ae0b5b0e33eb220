#!/usr/bin/env python3
"""fastText models trained on all train labels, timed the way sprig's `predict` bench is.

The peers' `fasttext_peers.py` times one cold pass over the test texts. sprig's predict
bench discards a warm-up pass and takes the median over four more, so this script trains
the same models (the peers' own preprocessing, FNV-ordered training file, configs and
quantization recipe, imported from `../shared/peers/fasttext_peers.py`, seed 0 as their
first repeat) and times them the same way: one pass discarded, then the median and p90 of
every `predict` call over four passes. It also prints the median cost of predicting an
empty line: the Python → C++ call and the output layer, fixed costs inside every figure.

    $PY benches/fasttext_warm.py --data ../shared/corpora/snips [--configs default,tutorial]

Prints one JSON object: per config, accuracy and size of the `.bin` and the `.ftz`, and
their warm latencies.
"""
import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS = os.environ.get("SPRIG_PEERS") or os.path.normpath(os.path.join(HERE, "..", "..", "shared", "peers"))


def timed(model, texts, passes=4):
    f = model.f
    calls = [t + "\n" for t in texts]
    for s in calls:  # warm-up, discarded
        f.predict(s, 1, 0.0, "strict")
    lat = []
    for _ in range(passes):
        for s in calls:
            t0 = time.perf_counter_ns()
            f.predict(s, 1, 0.0, "strict")
            lat.append(time.perf_counter_ns() - t0)
    empty = []
    for _ in range(1000):
        t0 = time.perf_counter_ns()
        f.predict("\n", 1, 0.0, "strict")
        empty.append(time.perf_counter_ns() - t0)
    us = np.array(lat) / 1000.0
    return {"median_us": round(float(np.median(us)), 2),
            "p90_us": round(float(np.percentile(us, 90)), 2),
            "empty_call_us": round(float(np.median(empty)) / 1000.0, 2)}


def accuracy(model, texts, gold):
    f = model.f
    hits = 0
    for t, y in zip(texts, gold):
        out = f.predict(t + "\n", 1, 0.0, "strict")
        hits += bool(out) and out[0][1] == y
    return hits / len(gold)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--configs", default="default,tutorial")
    ap.add_argument("--peers", default=PEERS, help="the shared peers folder")
    a = ap.parse_args()
    sys.path.insert(0, a.peers)
    import fasttext
    from common import fnv_order, load
    from fasttext_peers import CONFIGS, lab, prep, write_train

    (trx, try_), (tex, tey) = load(a.data)
    te = [prep(t) for t in tex]
    gold = [lab(y) for y in tey]
    out = {"script": "fasttext_warm", "data": os.path.basename(os.path.normpath(a.data)),
           "load1": os.getloadavg()[0], "configs": {}}
    with tempfile.TemporaryDirectory() as work:
        train = os.path.join(work, "all.txt")
        write_train(train, trx, try_, fnv_order(trx))
        for cfg in a.configs.split(","):
            model = fasttext.train_supervised(input=train, seed=0, verbose=0, **CONFIGS[cfg])
            r = {"bin": {"accuracy": accuracy(model, te, gold)}}
            path = os.path.join(work, "m.bin")
            model.save_model(path)
            r["bin"]["bytes"] = os.path.getsize(path)
            r["bin"].update(timed(model, te))
            model.quantize(input=train, qnorm=True, retrain=True, cutoff=100000, epoch=1)
            path = os.path.join(work, "m.ftz")
            model.save_model(path)
            r["ftz"] = {"accuracy": accuracy(model, te, gold), "bytes": os.path.getsize(path)}
            r["ftz"].update(timed(model, te))
            out["configs"][cfg] = r
            print(f"{cfg}: {r}", file=sys.stderr)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
