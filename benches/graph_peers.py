#!/usr/bin/env python3
"""kNN graph construction: `sprig graph` beside the peer tools, in one run.

What is measured
----------------
For each dataset (and, for SwDA, each train size) the same node set is given to
  * sprig:  `sprig graph --kind knn --k 10 --features u,b --drop-punctuation
             --skip-invalid -q` -- word 1-2-grams, sublinear TF, IDF, L2 rows,
             exact cosine kNN (sprig's equivalent of the peers' "word12").
  * peers:  ../shared/peers/graph_peers.py (unchanged): scikit-learn
             NearestNeighbors(algorithm="brute", metric="cosine", n_jobs=2)
             = exact, and pynndescent NNDescent(n_neighbors=11 | 30) = approximate,
             on TfidfVectorizer "word12" (common.py). Each method runs in its own
             child process.

Node set: graph_peers.py's -- train lines (all, or `subsample_train` = seeds-k10
plus the first lines in FNV order when --max-train N is given) followed by ALL
test lines. This script rebuilds that list with the peers' own common.py and
writes it, in the same order, as JSONL {"text": ...} for sprig.

Figures
  sprig   whole process under /usr/bin/time -v: wall ("Elapsed"), user+sys CPU,
          "Maximum resident set size". That is reading the JSONL, tokenizing,
          TF-IDF, exact kNN, symmetrizing and writing the .graph file. Run
          --sprig-runs times (default 2); the fastest wall is kept (its own RSS
          and CPU are reported with it). The runs' output files must be
          byte-identical.
  peers   from graph_peers.py's JSON: `graph_s` = the kNN build alone (fit +
          kneighbors, or NNDescent + neighbor_graph); `tfidf_s` = loading +
          TfidfVectorizer; `jit_warmup_s` = pynndescent's numba JIT / cache load
          (a 2000-row build in the same process, before the timed one);
          `peak_rss_mib` = ru_maxrss of that child (Python + data + TF-IDF +
          kNN). Peers are run once (they are slow).
Ratios are peer / sprig: time (kNN-only peer time, then peer features+kNN time,
then +numba warm-up for pynndescent) over sprig's whole-process wall; the peer's
kNN-only CPU seconds (all threads) over sprig's whole-process user+sys CPU
seconds (less sensitive to other jobs on a shared machine than wall time); and
peer peak RSS over sprig peak RSS. Comparing the peer's kNN-only time with
sprig's end-to-end time favours the peer.

Differences that the tables keep visible
  * sprig merges records whose normalized text is identical into one node
    ("nodes" < "records"); the peers keep one row per record.
  * sprig's tokenizer (BERT-style pre-tokenizer from the `tokenizers` crate, NFKC,
    lowercase; punctuation-only tokens dropped) is close to, not identical with,
    sklearn's `(?u)\\b\\w+\\b`.
  * texts with no word token left (e.g. "...") are invalid for sprig and skipped
    (--skip-invalid, counted as "skipped"); sklearn keeps them as all-zero rows
    whose neighbours are arbitrary.
  * sprig writes the symmetrized (undirected) kNN graph; the peers' is directed.
  * exactness: sprig's kNN is exact (tested equal to brute force in tests/);
    sklearn brute is the exact reference; pynndescent's tie-aware recall@10
    against sklearn's graph is shown.

Load: the machine is shared. Before each sprig run the 1-minute load average is
read; if above --max-load (1.5) we poll every 20 s up to --load-wait (300 s),
then measure anyway. The same wait is done once before the peers' script.
Load is recorded before every measurement and reported.

    PY=/root/.cache/sprig-peers-venv/bin/python   # the peers' venv (sklearn, pynndescent)
    $PY benches/graph_peers.py --shared ../shared [--datasets snips,swda]
        [--swda-max-train 0,75000] [--methods exact,nnd,nnd30]
        [--sprig target/release/sprig] [--sprig-threads 0[,1]] [--timeout 2400]

Prints one markdown table per (dataset, train size) and a final JSON line.
Stdlib only (plus the peers' venv, used by graph_peers.py and its common.py).
"""
import argparse
import filecmp
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def load1():
    return round(os.getloadavg()[0], 2)


def wait_for_load(max_load, max_wait, poll=20.0):
    """Wait until the 1-minute load is <= max_load (at most max_wait s)."""
    t0 = time.time()
    seen = [load1()]
    while seen[-1] > max_load and time.time() - t0 < max_wait:
        log(f"  load {seen[-1]} > {max_load}, waiting")
        time.sleep(poll)
        seen.append(load1())
    return {"load1": seen[-1], "waited_s": round(time.time() - t0, 1),
            "load1_first": seen[0]}


def parse_time_v(path):
    txt = open(path).read()

    def grab(pat):
        m = re.search(pat, txt)
        return m.group(1) if m else None

    el = grab(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)")
    parts = [float(x) for x in el.split(":")]
    wall = 0.0
    for p in parts:
        wall = wall * 60 + p
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(float(grab(r"User time \(seconds\): (\S+)")) +
                       float(grab(r"System time \(seconds\): (\S+)")), 2),
        "cpu_pct": grab(r"Percent of CPU this job got: (\S+)"),
        "peak_rss_mib": round(int(grab(r"Maximum resident set size \(kbytes\): (\d+)")) / 1024.0, 1),
        "exit": int(grab(r"Exit status: (\d+)")),
    }


def node_texts(common, data_dir, max_train):
    """The exact node list of graph_peers.py: kept train lines, then all test."""
    (trx, _), (tex, _) = common.load(data_dir)
    seeds = common.read_seeds(data_dir, 10) if max_train else []
    keep = common.subsample_train(trx, seeds, max_train)
    return [trx[i] for i in keep] + tex, len(keep), len(tex), len(trx)


def run_sprig(a, corpus, work, threads):
    runs = []
    outs = []
    for r in range(a.sprig_runs):
        ld = wait_for_load(a.max_load, a.load_wait)
        out = os.path.join(work, f"sprig-t{threads}-{r}.graph")
        tfile = os.path.join(work, "time.txt")
        cmd = ["/usr/bin/time", "-v", "-o", tfile, a.sprig, "graph", "--corpus", corpus,
               "--kind", "knn", "--k", str(a.k), "--features", "u,b", "--drop-punctuation",
               "--skip-invalid", "--threads", str(threads), "--out", out, "-q"]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            raise SystemExit(f"sprig failed rc={p.returncode}: {p.stderr[-2000:]}")
        m = parse_time_v(tfile)
        m.update(ld)
        m["load1_end"] = load1()
        log(f"  sprig threads={threads} run {r + 1}: {m}")
        runs.append(m)
        outs.append(out)
    for o in outs[1:]:
        if not filecmp.cmp(outs[0], o, shallow=False):
            raise SystemExit("sprig runs wrote different graphs: " + o)
    info = json.loads(subprocess.run([a.sprig, "inspect", "--json", outs[0]], check=True,
                                     capture_output=True, text=True).stdout)
    best = min(runs, key=lambda m: m["wall_s"])
    res = {"threads": threads, "best": best, "runs": runs,
           "records": info["counts"]["records"], "nodes": info["counts"]["nodes"],
           "edges_undirected": info["counts"]["edges"],
           "skipped": info["provenance"].get("skipped_records"),
           "degree": info["degree"], "components": info["components"],
           "graph_bytes": os.path.getsize(outs[0])}
    for o in outs:
        os.remove(o)
    return res


def run_peers(a, data_dir, max_train):
    ld = wait_for_load(a.max_load, a.load_wait)
    cmd = [a.peers_python, os.path.join(a.peers_dir, "graph_peers.py"), "--data", data_dir,
           "--k", str(a.k), "--max-train", str(max_train), "--methods", a.methods,
           "--timeout", str(a.timeout)]
    log("  running", " ".join(cmd))
    t0 = time.time()
    p = subprocess.run(cmd, cwd=a.peers_dir, stdout=subprocess.PIPE, stderr=sys.stderr, text=True)
    if p.returncode != 0:
        raise SystemExit(f"graph_peers.py failed rc={p.returncode}")
    res = json.loads(p.stdout.strip().splitlines()[-1])
    res["load1_before"] = ld
    res["parent_wall_s"] = round(time.time() - t0, 1)
    return res


def fmt(x, nd=1):
    if x is None:
        return "—"
    if isinstance(x, float):
        return f"{x:,.{nd}f}"
    return f"{x:,}"


def ratio(num, den):
    return round(num / den, 1) if num is not None and den else None


PEER_NAMES = {"exact": "scikit-learn brute cosine, n_jobs=2",
              "nnd": "pynndescent n_neighbors=11",
              "nnd30": "pynndescent n_neighbors=30 (top 11 kept)"}


def table(block):
    """Markdown table for one (dataset, train size) block; fills block['ratios']."""
    sp0 = block["sprig"][0]
    s_wall, s_rss, s_cpu = sp0["best"]["wall_s"], sp0["best"]["peak_rss_mib"], sp0["best"]["cpu_s"]
    pr = block["peers"]
    rows = []
    hdr = ("| method | records → nodes | kNN wall s | features + kNN wall s | + numba warm-up s "
           "| CPU s | peak RSS MiB (TF-IDF alone) | exact? | time ÷ sprig (kNN only / with features / "
           "+ warm-up) | kNN CPU ÷ sprig CPU | RSS ÷ sprig | load1 |")
    rows.append(hdr)
    rows.append("|" + "---|" * (hdr.count("|") - 1))
    for sp in block["sprig"]:
        b = sp["best"]
        t = sp["threads"]
        name = f"**sprig** graph, threads={'0 (all = 2)' if t == 0 else t}"
        rows.append(
            f"| {name} | {fmt(sp['records'])} → {fmt(sp['nodes'])} ({fmt(sp['skipped'])} skipped) "
            f"| — | {fmt(b['wall_s'], 2)} (whole process; runs: "
            f"{', '.join(fmt(r['wall_s'], 2) for r in sp['runs'])}) | — | {fmt(b['cpu_s'], 1)} "
            f"| {fmt(b['peak_rss_mib'])} | yes | {'1 (reference)' if sp is sp0 else fmt(ratio(b['wall_s'], s_wall), 2)} "
            f"| {'1' if sp is sp0 else fmt(ratio(b['cpu_s'], s_cpu), 2)} "
            f"| {'1' if sp is sp0 else fmt(ratio(b['peak_rss_mib'], s_rss), 2)} | {fmt(b['load1'], 2)} |")
    block["ratios"] = {}
    for m, r in pr["runs"].items():
        name = PEER_NAMES.get(m, m)
        if "error" in r:
            rows.append(f"| {name} | {fmt(pr['n_nodes'])} | {r['error']} | | | | | | | | | |")
            continue
        knn = r["graph_s"]
        feat = round(r["tfidf_s"] + knn, 2)
        warm = round(feat + r["jit_warmup_s"], 2) if "jit_warmup_s" in r else None
        exact = "yes (reference)" if m == "exact" else (
            f"no: recall@10 tie-aware {r.get('recall_dist', '—')}, id {r.get('recall_id', '—')}")
        rt = {"knn_only": ratio(knn, s_wall), "with_features": ratio(feat, s_wall),
              "with_warmup": ratio(warm, s_wall), "knn_cpu": ratio(r["graph_cpu_s"], s_cpu),
              "rss": ratio(r["peak_rss_mib"], s_rss)}
        block["ratios"][m] = rt
        zr = pr.get("zero_rows", 0)
        rows.append(
            f"| {name} | {fmt(pr['n_nodes'])} → {fmt(pr['n_nodes'])}"
            f"{f' ({zr} all-zero rows)' if zr else ''} | {fmt(knn, 2)} | {fmt(feat, 2)} "
            f"| {fmt(warm, 2) if warm is not None else '—'}"
            f"{' (warm-up ' + fmt(r['jit_warmup_s'], 1) + ')' if warm is not None else ''} "
            f"| {fmt(r['graph_cpu_s'], 1)} (kNN) | {fmt(r['peak_rss_mib'])} ({fmt(r['rss_after_tfidf_mib'])}) "
            f"| {exact} | {fmt(rt['knn_only'])}× / {fmt(rt['with_features'])}× / "
            f"{fmt(rt['with_warmup']) + '×' if rt['with_warmup'] is not None else '—'} "
            f"| {fmt(rt['knn_cpu'])}× | {fmt(rt['rss'])}× | {fmt(r.get('load1_end'), 2)} (end) |")
    return "\n".join(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", required=True, help="the shared dir (corpora/, peers/)")
    ap.add_argument("--datasets", default="snips,swda")
    ap.add_argument("--swda-max-train", default="0,75000",
                    help="train sizes for swda (0 = all 192,390); other datasets use all")
    ap.add_argument("--methods", default="exact,nnd,nnd30")
    ap.add_argument("--sprig", default="target/release/sprig")
    ap.add_argument("--sprig-threads", default="0", help="comma list; 0 = one per core")
    ap.add_argument("--sprig-runs", type=int, default=2)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--timeout", type=int, default=2400, help="per peer child process, s")
    ap.add_argument("--max-load", type=float, default=1.5)
    ap.add_argument("--load-wait", type=float, default=300)
    ap.add_argument("--peers-python", default=sys.executable)
    ap.add_argument("--json-out", help="also write the final JSON here")
    a = ap.parse_args()
    a.shared = os.path.abspath(a.shared)
    a.sprig = os.path.abspath(a.sprig)
    a.peers_dir = os.path.join(a.shared, "peers")
    sys.path.insert(0, a.peers_dir)
    import common  # the peers' own loader / subsampler

    t_start = time.time()
    out = {"script": "benches/graph_peers.py", "k": a.k, "cmdline": sys.argv,
           "sprig": a.sprig, "load1_start": load1(), "nproc": os.cpu_count(),
           "started": time.strftime("%Y-%m-%d %H:%M:%S"), "blocks": []}
    import hashlib
    with open(a.sprig, "rb") as f:
        out["sprig_sha256"] = hashlib.sha256(f.read()).hexdigest()
    out["sprig_version"] = subprocess.run([a.sprig, "--version"], capture_output=True,
                                          text=True).stdout.strip()
    work = tempfile.mkdtemp(prefix="sprig_graph_peers_")
    try:
        for ds in a.datasets.split(","):
            data = os.path.join(a.shared, "corpora", ds)
            sizes = [int(x) for x in a.swda_max_train.split(",")] if ds == "swda" else [0]
            for mt in sizes:
                log(f"== {ds} max_train={mt}")
                texts, n_tr, n_te, n_tr_all = node_texts(common, data, mt)
                corpus = os.path.join(work, f"{ds}-{mt}.jsonl")
                with open(corpus, "w", encoding="utf-8") as f:
                    for t in texts:
                        f.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")
                block = {"dataset": ds, "max_train": mt, "train_used": n_tr,
                         "train_total": n_tr_all, "test": n_te, "records": len(texts),
                         "distinct_raw_texts": len(set(texts)), "sprig": []}
                for th in [int(x) for x in a.sprig_threads.split(",")]:
                    block["sprig"].append(run_sprig(a, corpus, work, th))
                block["peers"] = run_peers(a, data, mt)
                os.remove(corpus)
                block["table"] = table(block)
                out["blocks"].append(block)
                title = (f"### {ds}: {n_tr:,} train{' (subsampled from ' + format(n_tr_all, ',') + ')' if n_tr < n_tr_all else ''}"
                         f" + {n_te:,} test = {len(texts):,} records "
                         f"({block['distinct_raw_texts']:,} distinct raw texts; "
                         f"{block['peers'].get('n_features', 0):,} sklearn TF-IDF features)")
                print(title + "\n\n" + block["table"] + "\n", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out["total_s"] = round(time.time() - t_start, 1)
    out["load1_end"] = load1()
    s = json.dumps(out)
    if a.json_out:
        with open(a.json_out, "w") as f:
            f.write(s + "\n")
    print(s, flush=True)


if __name__ == "__main__":
    main()
