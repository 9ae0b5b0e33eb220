//! Test fixtures: small graphs (the committed toy and karate graphs, a star, a bipartite
//! text–feature graph, random graphs for property tests) and the output-invariant checks.

use super::{Algorithm, Propagation};
use crate::corpus::RecordId;
use crate::graph::{symmetric_csr, Graph, GraphKind, GraphParts, RecordRef, Seed};

/// Builds a graph: nodes `0..n_text` are texts (one record each), the rest features.
pub(crate) fn build(
    kind: GraphKind,
    keys: Vec<String>,
    n_text: usize,
    edges: Vec<(u32, u32, f32)>,
    labels: Vec<String>,
    mut seeds: Vec<Seed>,
) -> Graph {
    let (offsets, neighbors, weights) = symmetric_csr(keys.len(), edges);
    seeds.sort_by_key(|s| (s.node, s.label));
    let records = (0..n_text)
        .map(|i| RecordRef {
            line: i as u64 + 1,
            id: Some(RecordId(
                serde_json::Value::from(keys[i].clone()).to_string(),
            )),
            node: i as u32,
            text_hash: None,
        })
        .collect();
    Graph::from_parts(
        kind,
        GraphParts {
            offsets,
            neighbors,
            weights,
            keys,
            text_nodes: n_text,
            records,
            labels,
            seeds,
            provenance: serde_json::Value::Null,
        },
    )
    .unwrap()
}

/// An edge-list graph of `nodes` nodes named `n0`, `n1`, …, with labels `a` (0) and `b`
/// (1) and `seeds` as (node, label) of weight 1.
pub(crate) fn two_labels(nodes: usize, edges: Vec<(u32, u32, f32)>, seeds: &[(u32, u32)]) -> Graph {
    let keys = (0..nodes).map(|i| format!("n{i}")).collect();
    let seeds = seeds
        .iter()
        .map(|&(node, label)| Seed {
            node,
            label,
            weight: 1.0,
        })
        .collect();
    build(
        GraphKind::Edges,
        keys,
        nodes,
        edges,
        vec!["a".into(), "b".into()],
        seeds,
    )
}

/// Parses Junto-style edges (`a<TAB>b<TAB>w`) and seeds (`node<TAB>label[<TAB>w]`) TSV; nodes
/// are numbered in order of first appearance, labels sorted.
pub(crate) fn from_tsv(edges: &str, seeds: &str) -> Graph {
    let mut keys: Vec<String> = Vec::new();
    let id = |k: &str, keys: &mut Vec<String>| match keys.iter().position(|x| x == k) {
        Some(i) => i as u32,
        None => {
            keys.push(k.to_owned());
            keys.len() as u32 - 1
        }
    };
    let mut triplets = Vec::new();
    for line in edges.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split('\t').collect();
        let (a, b) = (id(f[0], &mut keys), id(f[1], &mut keys));
        triplets.push((a, b, f[2].trim().parse::<f32>().unwrap()));
    }
    let rows: Vec<Vec<&str>> = seeds
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split('\t').collect())
        .collect();
    let mut labels: Vec<String> = rows.iter().map(|f| f[1].to_owned()).collect();
    labels.sort();
    labels.dedup();
    let seeds = rows
        .iter()
        .map(|f| Seed {
            node: id(f[0], &mut keys),
            label: labels.binary_search(&f[1].to_owned()).unwrap() as u32,
            weight: f.get(2).map_or(1.0, |w| w.trim().parse().unwrap()),
        })
        .collect();
    let n = keys.len();
    build(GraphKind::Edges, keys, n, triplets, labels, seeds)
}

/// `graphs/toy`: two K5 clusters joined by a weak bridge, plus an unseeded triangle.
pub(crate) fn toy() -> Graph {
    from_tsv(
        include_str!("../../graphs/toy/edges.tsv"),
        include_str!("../../graphs/toy/seeds.tsv"),
    )
}

/// `graphs/toy/expected.tsv`: `(node key, label or None)`.
pub(crate) fn toy_expected() -> Vec<(String, Option<String>)> {
    include_str!("../../graphs/toy/expected.tsv")
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (k, v) = l.split_once('\t').unwrap();
            (k.to_owned(), (v != "-").then(|| v.to_owned()))
        })
        .collect()
}

/// Zachary's karate club (34 nodes, 78 unweighted edges), node `i` = networkx node `i`,
/// seeded with node 0 → "Mr. Hi" and node 33 → "Officer".
pub(crate) fn karate() -> Graph {
    let edges = include_str!("../../graphs/karate/edges.tsv");
    let triplets = edges
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (
                f[0].parse().unwrap(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
            )
        })
        .collect();
    let labels = vec!["Mr. Hi".to_string(), "Officer".to_string()];
    let seeds = vec![
        Seed {
            node: 0,
            label: 0,
            weight: 1.0,
        },
        Seed {
            node: 33,
            label: 1,
            weight: 1.0,
        },
    ];
    build(
        GraphKind::Edges,
        (0..34).map(|i| i.to_string()).collect(),
        34,
        triplets,
        labels,
        seeds,
    )
}

/// networkx's `club` attribute of each karate node (`graphs/karate/gold.tsv`).
pub(crate) fn karate_gold() -> Vec<String> {
    include_str!("../../graphs/karate/gold.tsv")
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split_once('\t').unwrap().1.to_owned())
        .collect()
}

/// A star: hub 0 joined to leaves `1..=leaves`; leaf 1 seeded "x".
pub(crate) fn star(leaves: u32) -> Graph {
    let edges = (1..=leaves).map(|i| (0, i, 1.0)).collect();
    let keys = (0..=leaves).map(|i| format!("s{i}")).collect();
    let seeds = vec![Seed {
        node: 1,
        label: 0,
        weight: 1.0,
    }];
    build(
        GraphKind::Edges,
        keys,
        leaves as usize + 1,
        edges,
        vec!["x".into()],
        seeds,
    )
}

/// A bipartite text–feature graph: 6 texts (0..6), 5 features (6..11). Texts 0–2 share
/// features `u:hi`/`u:hello`, texts 3–5 share `u:bye`/`u:later`, and `u:thanks` links texts
/// 2 and 3 weakly. Seeds: text 0 → greet, text 5 → bye. Text node 6 (an extra, isolated text)
/// has no edge at all.
pub(crate) fn bipartite() -> Graph {
    bipartite_with_orphan("orphan")
}

/// [`bipartite`] with `orphan` as the isolated text's key.
pub(crate) fn bipartite_with_orphan(orphan: &str) -> Graph {
    let keys: Vec<String> = [
        "hi there",
        "hello you",
        "hi hello thanks",
        "thanks bye",
        "bye later",
        "later",
        orphan,
        "u:hi",
        "u:hello",
        "u:thanks",
        "u:bye",
        "u:later",
    ]
    .map(String::from)
    .to_vec();
    let (hi, hello, thanks, bye, later) = (7, 8, 9, 10, 11);
    let edges = vec![
        (0, hi, 0.7),
        (1, hello, 0.7),
        (2, hi, 0.5),
        (2, hello, 0.5),
        (2, thanks, 0.2),
        (3, thanks, 0.2),
        (3, bye, 0.6),
        (4, bye, 0.5),
        (4, later, 0.5),
        (5, later, 1.0),
        (0, hello, 0.3),
    ];
    let seeds = vec![
        Seed {
            node: 0,
            label: 1,
            weight: 1.0,
        },
        Seed {
            node: 5,
            label: 0,
            weight: 1.0,
        },
    ];
    build(
        GraphKind::Bipartite,
        keys,
        7,
        edges,
        vec!["bye".into(), "greet".into()],
        seeds,
    )
}

/// A deterministic random graph from `rng_seed`: `n` nodes, about `m` edges with weights in
/// (0, 1], `labels` labels, `n_seeds` seeds (some nodes get two labels).
pub(crate) fn random(n: usize, m: usize, labels: usize, n_seeds: usize, rng_seed: u64) -> Graph {
    let mut s = rng_seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut next = move || {
        // splitmix64
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut edges = Vec::new();
    for _ in 0..m {
        let (a, b) = ((next() % n as u64) as u32, (next() % n as u64) as u32);
        if a != b {
            edges.push((a, b, ((next() % 1000) + 1) as f32 / 1000.0));
        }
    }
    let mut seeds = Vec::new();
    for i in 0..n_seeds {
        let node = (next() % n as u64) as u32;
        let label = (next() % labels as u64) as u32;
        if seeds
            .iter()
            .any(|s: &Seed| s.node == node && s.label == label)
        {
            continue;
        }
        let weight = if i % 3 == 0 {
            0.5
        } else {
            1.0 + (next() % 3) as f32
        };
        seeds.push(Seed {
            node,
            label,
            weight,
        });
    }
    let names = (0..labels).map(|l| format!("l{l:02}")).collect();
    let n_text = n - n / 4;
    build(
        GraphKind::Knn,
        (0..n).map(|i| format!("n{i}")).collect(),
        n_text,
        edges,
        names,
        seeds,
    )
}

/// Every algorithm.
pub(crate) const ALL: [Algorithm; 4] = [
    Algorithm::Expander,
    Algorithm::Mad,
    Algorithm::Lp,
    Algorithm::Spreading,
];

/// Every output invariant of the module docs that can be checked on one result.
pub(crate) fn assert_bounded(p: &Propagation) {
    let d = p.distribution();
    for v in 0..d.n_nodes() {
        let e = d.get(v);
        let u = d.unknown(v);
        assert!(u.is_finite() && u >= 0.0, "node {v}: unknown {u}");
        assert!(e.len() <= d.top_k());
        let mass: f64 = e.iter().map(|x| f64::from(x.score)).sum();
        for x in e {
            assert!(x.score.is_finite() && x.score > 0.0, "node {v}: {x:?}");
        }
        for w in e.windows(2) {
            assert!(
                w[0].score > w[1].score || (w[0].score == w[1].score && w[0].label < w[1].label),
                "node {v}: order {e:?}"
            );
        }
        assert!(mass <= 1.0 + 1e-5, "node {v}: label mass {mass}");
        assert!(
            (mass + f64::from(u) - 1.0).abs() <= 1e-5,
            "node {v}: total {}",
            mass + f64::from(u)
        );
    }
    for s in &p.report().history {
        assert!(s.objective.is_finite() && s.max_change.is_finite());
    }
}

/// The objective sequence (initial, then after each iteration) never rises beyond rounding.
pub(crate) fn assert_monotone(p: &Propagation, what: &str) {
    let r = p.report();
    let mut prev = r.initial_objective;
    for s in &r.history {
        assert!(
            s.objective <= prev + 1e-9 * prev.abs().max(1.0),
            "{what}: objective rose at iteration {}: {prev} -> {}",
            s.iteration,
            s.objective
        );
        prev = s.objective;
    }
}

/// A result's exact bits, for determinism checks.
pub(crate) fn bits(p: &Propagation) -> Vec<(Vec<(u32, u32)>, u32)> {
    let d = p.distribution();
    (0..d.n_nodes())
        .map(|v| {
            (
                d.get(v)
                    .iter()
                    .map(|e| (e.label, e.score.to_bits()))
                    .collect(),
                d.unknown(v).to_bits(),
            )
        })
        .collect()
}
