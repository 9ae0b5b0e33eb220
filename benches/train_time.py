#!/usr/bin/env python3
"""`sprig train` wall time, CPU time and peak RSS of two or more builds, alternated.

Runs every binary on the same corpus and flags, round after round in turn (so that a change
in the machine's load falls on all of them alike), and prints a table: each run's wall and
CPU seconds (user + system of the child, from `os.wait4`), the median per binary, its ratio
to the first binary's median, the peak RSS, and whether every model file is byte-identical
to the first binary's (a speed change that keeps the floats must keep the bytes). Standard
library only.

    python3 benches/train_time.py --sprig OLD NEW --corpus ../shared/corpora/hwu64/train.jsonl \
        [--rounds 3] [--train-args '--seed 1 --epochs 30 --threads 1'] [--json]
"""
import argparse
import filecmp
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time


def run(sprig, corpus, out, flags):
    """One `sprig train`: (wall s, CPU s, peak RSS MiB) of the child alone."""
    cmd = [sprig, "train", "--corpus", corpus, "--out", out, "--quiet"] + flags
    start = time.monotonic()
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.monotonic() - start
    err = child.stderr.read().decode(errors="replace")
    child.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(map(shlex.quote, cmd))} failed:\n{err}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sprig", nargs="+", required=True, help="binaries; the first is the baseline")
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--train-args", default="--seed 1", help="flags for every `sprig train`")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    flags = shlex.split(a.train_args)
    work = a.workdir or tempfile.mkdtemp(prefix="sprig-train-time-")
    os.makedirs(work, exist_ok=True)
    runs = {b: [] for b in range(len(a.sprig))}
    identical = {b: True for b in range(len(a.sprig))}
    for r in range(a.rounds):
        for b, sprig in enumerate(a.sprig):
            out = os.path.join(work, f"m{b}-r{r}.sprig")
            wall, cpu, rss = run(sprig, a.corpus, out, flags)
            runs[b].append({"wall_s": wall, "cpu_s": cpu, "peak_rss_mib": rss})
            base = os.path.join(work, f"m0-r{r}.sprig")
            identical[b] &= filecmp.cmp(base, out, shallow=False)
            print(f"round {r + 1} binary {b}: {wall:.2f} s wall, {cpu:.2f} s CPU", file=sys.stderr)

    rows = []
    base_wall = statistics.median(x["wall_s"] for x in runs[0])
    base_cpu = statistics.median(x["cpu_s"] for x in runs[0])
    for b, sprig in enumerate(a.sprig):
        wall = statistics.median(x["wall_s"] for x in runs[b])
        cpu = statistics.median(x["cpu_s"] for x in runs[b])
        rows.append({
            "sprig": sprig,
            "runs": runs[b],
            "median_wall_s": wall,
            "median_cpu_s": cpu,
            "wall_ratio": wall / base_wall,
            "cpu_ratio": cpu / base_cpu,
            "peak_rss_mib": max(x["peak_rss_mib"] for x in runs[b]),
            "models_identical_to_first": identical[b],
        })
    if a.json:
        print(json.dumps({"corpus": a.corpus, "train_args": a.train_args,
                          "load1_end": os.getloadavg()[0], "binaries": rows}, indent=1))
        return
    print(f"corpus {a.corpus}, flags `{a.train_args}`, {a.rounds} rounds alternated, "
          f"load1 at the end {os.getloadavg()[0]:.2f}\n")
    print("| binary | wall s (each run) | median wall s | ÷ first | median CPU s | ÷ first "
          "| peak RSS MiB | models = first's |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        each = ", ".join(f"{x['wall_s']:.2f}" for x in row["runs"])
        print(f"| `{row['sprig']}` | {each} | {row['median_wall_s']:.2f} | "
              f"{row['wall_ratio']:.2f}× | {row['median_cpu_s']:.2f} | {row['cpu_ratio']:.2f}× | "
              f"{row['peak_rss_mib']:.0f} | {'yes' if row['models_identical_to_first'] else 'NO'} |")


if __name__ == "__main__":
    main()
