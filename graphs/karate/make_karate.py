#!/usr/bin/env python3
"""Write Zachary's karate club graph as sprig TSV files.

    python3 -m venv /tmp/nxvenv && /tmp/nxvenv/bin/pip install -q networkx
    /tmp/nxvenv/bin/python graphs/karate/make_karate.py

Writes edges.tsv, seeds.tsv and gold.tsv next to this script.  The graph is
written UNWEIGHTED (weight 1 on every edge): networkx >= 3 attaches
interaction-count weights to the edges, which are deliberately ignored here.
"""

import collections
import os

import networkx as nx

HERE = os.path.dirname(os.path.abspath(__file__))
SEEDS = {0: "Mr. Hi", 33: "Officer"}


def main():
    g = nx.karate_club_graph()
    edges = sorted((min(u, v), max(u, v)) for u, v in g.edges())
    assert g.number_of_nodes() == 34 and sorted(g.nodes()) == list(range(34))
    assert len(edges) == 78 and len(set(edges)) == 78
    for node, label in SEEDS.items():
        assert g.nodes[node]["club"] == label, (node, g.nodes[node]["club"])

    with open(os.path.join(HERE, "edges.tsv"), "w", encoding="utf-8", newline="\n") as f:
        for u, v in edges:
            f.write(f"{u}\t{v}\t1\n")
    with open(os.path.join(HERE, "seeds.tsv"), "w", encoding="utf-8", newline="\n") as f:
        for node, label in SEEDS.items():
            f.write(f"{node}\t{label}\t1\n")
    with open(os.path.join(HERE, "gold.tsv"), "w", encoding="utf-8", newline="\n") as f:
        for node in sorted(g.nodes()):
            f.write(f"{node}\t{g.nodes[node]['club']}\n")

    clubs = collections.Counter(nx.get_node_attributes(g, "club").values())
    print(f"networkx {nx.__version__}: {g.number_of_nodes()} nodes, {len(edges)} edges, clubs {dict(clubs)}")


if __name__ == "__main__":
    main()
