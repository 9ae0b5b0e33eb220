"""Expected outputs of scikit-learn's LabelSpreading / LabelPropagation for sprig's
`lp` and `spreading` algorithms (golden test `propagate::classic::tests`).

Generated with scikit-learn 1.9.1 (numpy 2.4.6, scipy 1.17.1, CPython 3.11) by running,
from the repository root:

    /root/.cache/sprig-peers-venv/bin/python tests/golden/sklearn/make_expected.py

It writes, next to this script:

* ``karate.edges.tsv`` / ``karate.seeds.tsv`` — Zachary's karate club (copied from
  ``graphs/karate/edges.tsv``, unweighted), seeds ``0 -> Mr. Hi``, ``33 -> Officer``;
* ``random60.edges.tsv`` / ``random60.seeds.tsv`` — a random weighted graph on 60 nodes
  (``numpy.random.RandomState(20240601)``): nodes 0..56 each draw 3 neighbours among
  0..56 (weights uniform in [0.05, 1], rounded to float32 so both sides use the same
  numbers), nodes 57..59 form an unseeded triangle; 3 classes ``a``/``b``/``c``, 3 seeds each;
* ``expected.json`` — for each case: graph, algorithm, ``alpha``, ``max_iter``, ``tol``,
  ``classes_``, ``n_iter_``, ``label_distributions_`` and ``transduction_``.

Edges TSV: ``u<TAB>v<TAB>w`` (0-based node ids, each undirected edge once). Seeds TSV:
``node<TAB>label<TAB>1``.

sklearn sees the graph through a callable kernel that returns a copy of the dense affinity
matrix (``X`` is the column of node ids), so its ``_build_graph`` normalizations apply to
exactly our weights. Cases with ``tol = 0`` run exactly ``max_iter`` iterations (the
convergence check ``< 0`` never fires) and pin the iteration semantics; the others use
sklearn's defaults and its whole-matrix L1 stopping rule (sprig: ``change_norm = sum``).
"""

import json
import os
import warnings

import numpy as np
import sklearn
from sklearn.exceptions import ConvergenceWarning
from sklearn.semi_supervised import LabelPropagation, LabelSpreading

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))


def karate():
    edges = []
    with open(os.path.join(ROOT, "graphs", "karate", "edges.tsv")) as f:
        for line in f:
            u, v, w = line.rstrip("\n").split("\t")
            edges.append((int(u), int(v), np.float32(w)))
    return 34, edges, ["Mr. Hi", "Officer"], [(0, "Mr. Hi"), (33, "Officer")]


def random60():
    rng = np.random.RandomState(20240601)
    best = {}
    for u in range(57):
        for v in rng.choice(57, size=3, replace=False):
            v = int(v)
            if v == u:
                continue
            a, b = min(u, v), max(u, v)
            w = np.float32(rng.uniform(0.05, 1.0))
            best[(a, b)] = max(best.get((a, b), np.float32(0)), w)
    for a, b, w in [(57, 58, 1.0), (57, 59, 0.5), (58, 59, 0.25)]:
        best[(a, b)] = np.float32(w)
    edges = sorted((a, b, w) for (a, b), w in best.items())
    nodes = rng.choice(57, size=9, replace=False)
    seeds = [(int(n), "abc"[i % 3]) for i, n in enumerate(nodes)]
    return 60, edges, ["a", "b", "c"], sorted(seeds)


def fmt32(w):
    return "%.9g" % np.float32(w)


def dense(n, edges):
    W = np.zeros((n, n))
    for u, v, w in edges:
        W[u, v] = W[v, u] = float(np.float32(w))
    assert (W.sum(axis=1) > 0).all(), "sklearn's LabelPropagation divides by every row sum"
    return W


def main():
    cases = []
    for name, (n, edges, classes, seeds) in [("karate", karate()), ("random60", random60())]:
        with open(os.path.join(HERE, f"{name}.edges.tsv"), "w") as f:
            for u, v, w in edges:
                f.write(f"{u}\t{v}\t{fmt32(w)}\n")
        with open(os.path.join(HERE, f"{name}.seeds.tsv"), "w") as f:
            for node, label in seeds:
                f.write(f"{node}\t{label}\t1\n")
        W = dense(n, edges)

        def kernel(A, B, W=W):
            return W[np.ix_(A[:, 0].astype(int), B[:, 0].astype(int))]

        X = np.arange(n, dtype=float).reshape(-1, 1)
        y = np.full(n, -1)
        for node, label in seeds:
            y[node] = classes.index(label)
        runs = [
            ("spreading", LabelSpreading, dict(alpha=0.2, max_iter=30, tol=1e-3)),
            ("spreading", LabelSpreading, dict(alpha=0.8, max_iter=50, tol=0.0)),
            ("lp", LabelPropagation, dict(max_iter=1000, tol=1e-3)),
            ("lp", LabelPropagation, dict(max_iter=7, tol=0.0)),
        ]
        for algorithm, cls, params in runs:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model = cls(kernel=kernel, **params).fit(X, y)
            cases.append(
                dict(
                    graph=name,
                    algorithm=algorithm,
                    alpha=params.get("alpha"),
                    max_iter=params["max_iter"],
                    tol=params["tol"],
                    classes=[classes[int(c)] for c in model.classes_],
                    n_iter=int(model.n_iter_),
                    label_distributions=model.label_distributions_.tolist(),
                    transduction=[classes[int(c)] for c in model.transduction_],
                )
            )
    out = dict(sklearn_version=sklearn.__version__, cases=cases)
    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
