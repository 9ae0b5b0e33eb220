//! Seeds their neighbours contradict ([`seed_conflicts`]): after a propagation, a seeded
//! node whose neighbours' labels, weighted by the edges, give the most mass to a label it
//! was not seeded with.
//!
//! **Why.** With a few labelled examples a class, one wrong label is a tenth of its class.
//! Propagation mostly outvotes it around the node (the seed fit is one term beside the
//! node's edges), but training learns the seed as given, and a classifier trained on the
//! seeds alone suffers more: on SNIPS, one seed in ten given a wrong label took logistic
//! regression on the seeds from 88% to 46–72% (benches/README.md). The labels around a wrong
//! seed are mostly another class's, which is what this looks for: a list of seeds worth a
//! second look, most contradicted first.
//!
//! **What.** For a seeded node `v`, each neighbour `u` says what *its other* neighbours
//! hold: `q_u(l) = Σ_{j ≠ v} w_uj · p_j(l)` over `u`'s neighbours `j` other than `v`,
//! divided by its sum over labels (`p_j` the propagated label scores, the `unknown` mass
//! left out). The neighbours' shares are `Σ_u w_vu · q_u(l)`, again divided by their sum.
//! `v` conflicts when the label with the largest share (ties: the lowest label id) is none
//! of its seed labels and holds at least [`CONFLICT_MARGIN`] times the largest share of one
//! of them. Leaving `v` out matters: with a few seeds in a large graph, each seed is most of
//! the label mass its neighbours receive, and their own labels echo it (on SNIPS
//! with one seed in ten wrong, reading the neighbours' labels as they are found 29–43% of
//! the wrong seeds; leaving the seed out, 43–100%, most of them first in the list). Paths
//! longer than two edges still carry some of the seed's own label back. A node whose
//! neighbours see no label mass says nothing either way and is not listed, nor is a node
//! whose every seed label is seeded on no other node (with the node left out, nothing
//! around it could carry that label).
//!
//! A seed listed is not always wrong: where classes overlap (HWU64's 64 intents), correct
//! seeds whose neighbourhood leans to another intent are listed too (64 of 640 with every
//! seed right). The list is for reading, most contradicted first.

use rayon::prelude::*;

use super::{LabelScore, Propagation};
use crate::graph::{Graph, Seed};

/// How many times a seed label's share the neighbourhood's top label must hold for a seed to
/// be listed: a seed on the border of two classes, whose neighbourhood is split about evenly,
/// is not a conflict. Measured on SNIPS and HWU64 with one seed in ten or five given a wrong
/// label, and on their true seeds (benches/README.md, thirty-second session): against no
/// margin (1), 1.25 kept every wrong seed found on SNIPS and dropped the right ones listed
/// (the share of the list that was wrong went from 0.71–0.89 to 1; with every seed right,
/// one listed → none), and listed a third fewer of HWU64's right seeds (97 → 64 of 640)
/// while finding 3–9 points fewer of its wrong ones; at 1.5 and 2 fewer wrong seeds were
/// found still (SNIPS at one in five wrong: 57% → 43% → 7%).
pub const CONFLICT_MARGIN: f32 = 1.25;

/// A seeded node outvoted by its neighbours ([`seed_conflicts`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SeedConflict {
    /// The node.
    pub node: u32,
    /// Its seed labels (indices into the graph's labels), ascending.
    pub seeded: Vec<u32>,
    /// The neighbours' label shares, largest first (ties by label id), summing to 1.
    pub neighbours: Vec<LabelScore>,
    /// The largest share the neighbours give one of the node's seed labels (0 when they
    /// give none).
    pub seed_share: f32,
}

/// The seeded nodes of `seeds` whose neighbours in `graph` give the most label mass in
/// `result` to a label they were not seeded with, by [`CONFLICT_MARGIN`]; most contradicted
/// first (smallest [`SeedConflict::seed_share`], then node id). See the module docs.
///
/// # Panics
/// If `result` is not a propagation over `graph` (another node count), the graph does not
/// hold every row ([`Graph::load_rows`]), or a seed names a node outside it: bugs in the
/// caller ([`super::propagate_with`] refuses such graphs and seeds).
pub fn seed_conflicts(graph: &Graph, seeds: &[Seed], result: &Propagation) -> Vec<SeedConflict> {
    assert!(graph.is_whole(), "a graph that holds every row");
    assert_eq!(
        result.distribution().n_nodes(),
        graph.n_nodes(),
        "a propagation over this graph"
    );
    let mut by_node: Vec<(u32, u32)> = seeds.iter().map(|s| (s.node, s.label)).collect();
    by_node.sort_unstable();
    by_node.dedup();
    let n_labels = graph.labels().len();
    // A label seeded on one node has no other source the neighbourhood could show with
    // the node left out: its only seed cannot be judged (one seed a label would all look
    // contradicted wherever other labels are near).
    let mut seeded_nodes = vec![0u32; n_labels];
    for &(_, l) in &by_node {
        seeded_nodes[l as usize] += 1;
    }
    let nodes: Vec<&[(u32, u32)]> = by_node
        .chunk_by(|a, b| a.0 == b.0)
        .filter(|seeded| seeded.iter().any(|&(_, l)| seeded_nodes[l as usize] > 1))
        .collect();
    let mut conflicts: Vec<SeedConflict> = nodes
        .par_iter()
        .map_init(
            || (vec![0.0f64; n_labels], vec![0.0f64; n_labels]),
            |(sums, q), seeded| conflict(graph, result, seeded, sums, q),
        )
        .flatten()
        .collect();
    conflicts.sort_by(|a, b| {
        a.seed_share
            .total_cmp(&b.seed_share)
            .then(a.node.cmp(&b.node))
    });
    conflicts
}

/// The conflict of one seeded node (its `(node, label)` pairs), if it has one. `sums` and
/// `q` are zeroed scratch space of one entry a label, left zeroed.
fn conflict(
    graph: &Graph,
    result: &Propagation,
    seeded: &[(u32, u32)],
    sums: &mut [f64],
    q: &mut [f64],
) -> Option<SeedConflict> {
    let node = seeded[0].0;
    let dist = result.distribution();
    let (neighbors, weights) = graph.row(node as usize);
    let mut touched: Vec<u32> = Vec::new();
    let mut q_touched: Vec<u32> = Vec::new();
    for (&u, &w_vu) in neighbors.iter().zip(weights) {
        // What u's other neighbours hold, as shares.
        let (second, w2) = graph.row(u as usize);
        for (&j, &w_uj) in second.iter().zip(w2) {
            if j == node {
                continue;
            }
            for s in dist.get(j as usize) {
                let x = &mut q[s.label as usize];
                if *x == 0.0 {
                    q_touched.push(s.label);
                }
                *x += f64::from(w_uj) * f64::from(s.score);
            }
        }
        let q_total: f64 = q_touched.iter().map(|&l| q[l as usize]).sum();
        for &l in &q_touched {
            if q_total > 0.0 {
                let sum = &mut sums[l as usize];
                if *sum == 0.0 {
                    touched.push(l);
                }
                *sum += f64::from(w_vu) * q[l as usize] / q_total;
            }
            q[l as usize] = 0.0;
        }
        q_touched.clear();
    }
    touched.sort_unstable();
    let total: f64 = touched.iter().map(|&l| sums[l as usize]).sum();
    // Sums of non-negative terms: no label mass around the node, or some.
    let mut shares: Vec<LabelScore> = Vec::with_capacity(touched.len());
    for &l in &touched {
        if total > 0.0 {
            shares.push(LabelScore {
                label: l,
                score: (sums[l as usize] / total) as f32,
            });
        }
        sums[l as usize] = 0.0;
    }
    if shares.is_empty() {
        return None;
    }
    shares.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.label.cmp(&b.label)));
    let seeded: Vec<u32> = seeded.iter().map(|&(_, l)| l).collect();
    if seeded.contains(&shares[0].label) {
        return None;
    }
    let seed_share = shares
        .iter()
        .filter(|s| seeded.contains(&s.label))
        .map(|s| s.score)
        .fold(0.0f32, f32::max);
    if shares[0].score < CONFLICT_MARGIN * seed_share {
        return None;
    }
    Some(SeedConflict {
        node,
        seeded,
        neighbours: shares,
        seed_share,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::GraphKind;
    use crate::propagate::testgraphs::{build, two_labels};
    use crate::propagate::{propagate_with, PropagationConfig};

    /// Two cliques of four (nodes 0–3, 4–7) joined by one weak edge 3–4, and node 8 alone;
    /// labels `a` (0) and `b` (1); `seeds` as (node, label).
    fn two_cliques(seeds: &[(u32, u32)]) -> Graph {
        let mut edges = vec![(3, 4, 0.1)];
        for base in [0u32, 4] {
            for i in 0..4 {
                for j in i + 1..4 {
                    edges.push((base + i, base + j, 1.0));
                }
            }
        }
        two_labels(9, edges, seeds)
    }

    fn conflicts(seeds: &[(u32, u32)]) -> Vec<SeedConflict> {
        let g = two_cliques(seeds);
        let p = propagate_with(&g, g.seeds(), &PropagationConfig::default(), |_| {}).unwrap();
        seed_conflicts(&g, g.seeds(), &p)
    }

    #[test]
    fn a_seed_inside_the_other_class_is_listed() {
        // 0, 1 seeded a; 4, 5 seeded b; 2 seeded b, wrongly: its clique says a.
        let found = conflicts(&[(0, 0), (1, 0), (4, 1), (5, 1), (2, 1)]);
        assert_eq!(found.len(), 1, "{found:?}");
        let c = &found[0];
        assert_eq!((c.node, c.seeded.as_slice()), (2, &[1u32][..]));
        assert_eq!(c.neighbours[0].label, 0);
        assert!(c.neighbours[0].score > 0.5 && c.seed_share < 0.5, "{c:?}");
        let total: f32 = c.neighbours.iter().map(|s| s.score).sum();
        assert!((total - 1.0).abs() < 1e-5, "{total}");
        let own = c.neighbours.iter().find(|s| s.label == 1).unwrap().score;
        assert_eq!(c.seed_share, own);
    }

    #[test]
    fn seeds_their_neighbours_agree_with_are_not_listed() {
        assert!(conflicts(&[(0, 0), (1, 0), (4, 1), (5, 1)]).is_empty());
        // Seeded with both labels, a node agrees with whichever its neighbours favour.
        assert!(conflicts(&[(0, 0), (1, 0), (4, 1), (5, 1), (2, 0), (2, 1)]).is_empty());
        // A label seeded on one node only: nothing else could carry it, so its seed is not
        // judged, though node 2 (b) sits in a's clique.
        assert!(conflicts(&[(0, 0), (1, 0), (2, 1)]).is_empty());
        // A seed with no neighbour (node 8) has no one to disagree with.
        assert!(conflicts(&[(0, 0), (4, 1), (8, 0)]).is_empty());
        assert!(conflicts(&[(0, 0), (4, 1), (8, 1)]).is_empty());
    }

    #[test]
    fn a_seed_whose_neighbourhood_is_split_about_evenly_is_not_listed() {
        // Node 0 seeded b (1) has two neighbours: 1, whose other neighbours are a clique of
        // three nodes seeded a (3–5), and 2, whose other neighbours are a clique seeded b
        // (6–8). The edge to 1 weighs `w`: at 1.1 the neighbourhood leans to a by less than
        // the margin, at 3 by more.
        let listed = |w: f32| {
            let mut edges = vec![(0, 1, w), (0, 2, 1.0)];
            for (hub, first) in [(1, 3), (2, 6)] {
                for i in first..first + 3 {
                    edges.push((hub, i, 1.0));
                    for j in i + 1..first + 3 {
                        edges.push((i, j, 1.0));
                    }
                }
            }
            let seeds =
                [(0, 1), (3, 0), (4, 0), (5, 0), (6, 1), (7, 1), (8, 1)].map(|(node, label)| {
                    Seed {
                        node,
                        label,
                        weight: 1.0,
                    }
                });
            let keys = (0..9).map(|i| format!("n{i}")).collect();
            let labels = vec!["a".into(), "b".into()];
            let g = build(GraphKind::Edges, keys, 9, edges, labels, seeds.to_vec());
            let p = propagate_with(&g, g.seeds(), &PropagationConfig::default(), |_| {}).unwrap();
            seed_conflicts(&g, g.seeds(), &p)
                .into_iter()
                .find(|c| c.node == 0)
        };
        assert_eq!(listed(1.1), None);
        let c = listed(3.0).expect("listed at 3");
        assert_eq!(c.neighbours[0].label, 0);
        assert!(
            c.neighbours[0].score >= CONFLICT_MARGIN * c.seed_share,
            "{c:?}"
        );
    }

    #[test]
    fn the_most_contradicted_come_first_whatever_the_thread_count() {
        // Two wrong seeds: 2 (b beside two a seeds) and 7 (a beside two b seeds, and the
        // bridge to a's clique). Listed by the share their neighbours give their own label,
        // smallest first.
        let seeds = [(0, 0), (1, 0), (4, 1), (5, 1), (2, 1), (7, 0)];
        let found = conflicts(&seeds);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].seed_share <= found[1].seed_share, "{found:?}");
        let mut nodes: Vec<u32> = found.iter().map(|c| c.node).collect();
        nodes.sort_unstable();
        assert_eq!(nodes, [2, 7]);
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| conflicts(&seeds));
        assert_eq!(one, found);
    }
}
