#!/usr/bin/env python3
"""Recall of the approximate kNN (`sprig graph --max-scan N`) against the exact graph.

Builds the exact kNN graph of a corpus and one graph per `--max-scan` value, with the same
other flags, and prints a table: wall time of each `sprig graph` (the JSON also has the
children's peak RSS so far, a running maximum), edges, and the recall of the exact graph's
edges (each undirected edge once, as `sprig inspect --edges` prints them) and of their total
weight. Standard library only.

    python3 benches/knn_recall.py --corpus CORPUS.jsonl --max-scan 4096 16384 [--json]
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build(sprig, corpus, out, flags):
    cmd = [sprig, "graph", "--corpus", corpus, "--out", out, "--quiet"] + flags
    t = time.monotonic()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.monotonic() - t
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return wall, rss


def edges(sprig, graph):
    out = subprocess.run([sprig, "inspect", "--edges", graph], check=True,
                         capture_output=True, text=True).stdout
    e = {}
    for line in out.splitlines():
        if not line or line.startswith("#"):
            continue
        a, b, w = line.split("\t")
        e[(a, b) if a < b else (b, a)] = float(w)
    return e


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--max-scan", type=int, nargs="+", required=True)
    ap.add_argument("--graph-args", default="", help="other `sprig graph` flags, for every graph")
    ap.add_argument("--sprig", default=os.path.join(ROOT, "target", "release", "sprig"))
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="sprig-knn-recall-")
    flags = a.graph_args.split()
    rows = []
    # The peak RSS of children is a running maximum, so the exact graph (the largest) goes last.
    runs = [(f"--max-scan {n}", ["--max-scan", str(n)]) for n in a.max_scan] + [("exact", ["--max-scan", "exact"])]
    graphs = {}
    for name, extra in runs:
        path = os.path.join(work, f"{len(graphs)}.graph")
        wall, rss = build(a.sprig, a.corpus, path, flags + extra)
        graphs[name] = (path, wall, rss)
        print(f"{name}: {wall:.2f} s", file=sys.stderr)
    exact = edges(a.sprig, graphs["exact"][0])
    total = sum(exact.values())
    for name, (path, wall, rss) in graphs.items():
        e = edges(a.sprig, path)
        shared = [k for k in e if k in exact]
        rows.append({
            "graph": name, "wall_s": round(wall, 2), "peak_rss_mib_so_far": round(rss, 1),
            "edges": len(e),
            "edge_recall": round(len(shared) / max(len(exact), 1), 4),
            "weight_recall": round(sum(exact[k] for k in shared) / total, 4) if total else 1.0,
            "speedup": round(graphs["exact"][1] / wall, 2),
        })
    for path, _, _ in graphs.values():
        os.remove(path)
    os.rmdir(work)
    if a.json:
        print(json.dumps({"corpus": a.corpus, "graph_args": a.graph_args, "rows": rows}))
        return
    print(f"corpus {a.corpus}, graph flags `{a.graph_args}`\n")
    print("| graph | wall s | × exact | edges | edge recall | weight recall |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['graph']} | {r['wall_s']} | {r['speedup']} | {r['edges']:,} | "
              f"{r['edge_recall']:.4f} | {r['weight_recall']:.4f} |")


if __name__ == "__main__":
    main()
