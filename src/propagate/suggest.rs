//! Texts worth labelling next ([`suggest_labels`]): after a propagation, the unlabelled
//! texts whose labels would settle the most uncertain records around them.
//!
//! **Why.** A few-label user labels more in rounds, and the texts that repay a label are
//! where the propagation is unsure and a label reaches many inputs: a text repeated in a
//! thousand records, or one at the centre of a cluster no seed reaches, more than an
//! outlier or a text next to a seed.
//!
//! **What.** A text node `v` holds `open(v) = r(v) · (1 − (p1 − p2) / P)` uncertain
//! records: `r(v)` the records it stands for (identical texts share a node), `p1 ≥ p2` its
//! two largest propagated scores and `P` the sum of its scores (the margin as shares of the
//! node's label mass: Expander leaves most of a node's mass on `unknown` wherever it is,
//! 85–93% on the bundled corpus, so raw margins are all small alike); a node that abstains
//! is wholly uncertain, a seeded node holds none. Labelling `v` settles its own open records
//! and, of each neighbour `u`'s, the share of `u`'s label that comes from `v`, `w_uv / d_u`
//! (`d_u` the weighted degree of `u`): the **gain**
//!
//! `gain(v) = open(v) + Σ_u (w_uv / d_u) · open(u)`.
//!
//! The texts are chosen greedily: the largest gain first, after which the chosen node's open
//! records become 0 and each neighbour's shrink by that share, `open(u) ·= 1 − w_uv / d_u`,
//! so the next choice goes where this one does not already reach. (Gains only fall as
//! texts are chosen, so the greedy search re-scores a candidate only when it comes to the
//! top: the lazy greedy of Minoux, 1978.) Every quantity is a count of records: nothing is
//! fitted.
//!
//! **Class shares.** Class mass normalization, on by default, reads the seeds' label shares
//! as the class priors, and chosen texts are no sample of the classes: on SNIPS, 70 texts
//! chosen by gain alone put 17 on one intent and none on another, and counted in the priors
//! they took the next propagation's test accuracy from 91.7% to 88.3%. Two things keep the
//! priors: the choices keep the shares the propagation's priors have (the seeds', or those
//! given with `--prior` or `--prior-from`): each label gets its share of `count` (largest
//! remainders), a text counts against its guessed (top) label's, and a text whose guess has
//! filled its share waits until no other candidate is left (one that abstains counts
//! against none); and the file `sprig propagate --suggest` writes marks each line
//! `"suggested": true`, which `sprig propagate --seeds` leaves out of the priors it
//! estimates from the seeds (guesses are not always right, so the labels given still move
//! the shares: from seeds-k5 on SNIPS, 35 chosen labels counted in the priors gave 88.3%,
//! left out 91.7%).
//!
//! **Measured** (benches/README.md, thirty-third session; `benches/suggest.py`, seeds-k10
//! or seeds-k5, the chosen texts given their gold labels, against as many texts drawn at
//! random and labelled in the corpus): on SwDA's dialog acts with priors from 100 random
//! labelled lines (`--prior-from`, the advice for skewed classes), 410 chosen texts took
//! the propagation's test accuracy from 42.7% to 53.1%, against 42.0–45.5% for random ones;
//! on the near-balanced intent sets, against the mean of three random draws, SNIPS +0.6 to
//! +1.7 points and HWU64 −0.9 to +0.6 (5 or 10 more a label), about what the draws differ
//! by. Without priors on SwDA random lines do better: they also tell the class shares, which
//! chosen texts cannot.
//!
//! One step of edges only: a bipartite graph's neighbours are features, which stand for no
//! record, and it is refused.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use rayon::prelude::*;

use super::{ClassPrior, LabelScore, Propagation, PropagationConfig};
use crate::error::{Error, Result};
use crate::graph::{Graph, GraphKind, Seed};

/// A text worth labelling ([`suggest_labels`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Suggestion {
    /// The node.
    pub node: u32,
    /// The uncertain records its label settles, counted when it was chosen (after the
    /// texts chosen before it): non-increasing along the list.
    pub gain: f64,
}

/// How uncertain a node with `scores` (sorted by score, descending) is: one minus the margin
/// of its two largest scores as shares of its label mass, in `[0, 1]`; 1 for a node with
/// no label mass.
fn uncertainty(scores: &[LabelScore]) -> f64 {
    let total: f64 = scores.iter().map(|s| f64::from(s.score)).sum();
    if total <= 0.0 {
        return 1.0;
    }
    let p = |i: usize| scores.get(i).map_or(0.0, |s| f64::from(s.score));
    (1.0 - (p(0) - p(1)) / total).clamp(0.0, 1.0)
}

/// Up to `count` unlabelled text nodes of `graph` to label next, best first, chosen from
/// `result`, the propagation of `seeds` with `config` (whose class priors, or the seeds'
/// shares, the choices keep), as the module docs say. Fewer when fewer texts have any
/// uncertain record near them. Deterministic: ties go to the lower node id.
///
/// # Errors
/// [`Error::InvalidConfig`] for a bipartite graph (see the module docs), or given priors
/// that name a label the graph lacks (as [`super::propagate_with`] refuses them).
///
/// # Panics
/// If `result` is not a propagation over `graph` (another node count), or the graph does not
/// hold every row ([`Graph::load_rows`]): bugs in the caller.
pub fn suggest_labels(
    graph: &Graph,
    seeds: &[Seed],
    config: &PropagationConfig,
    result: &Propagation,
    count: usize,
) -> Result<Vec<Suggestion>> {
    if graph.kind() == GraphKind::Bipartite {
        return Err(Error::config(
            "graph",
            "suggestions read a text's neighbours, and a bipartite graph's are features: \
             build a kNN graph (the default) for them",
        ));
    }
    assert!(graph.is_whole(), "a graph that holds every row");
    let dist = result.distribution();
    assert_eq!(
        dist.n_nodes(),
        graph.n_nodes(),
        "a propagation over this graph"
    );
    let n = graph.n_text_nodes();
    let records = graph.records_per_text_node();
    let mut open: Vec<f64> = (0..n)
        .into_par_iter()
        .map(|v| {
            if result.is_seed(v) {
                0.0
            } else {
                f64::from(records[v]) * uncertainty(dist.get(v))
            }
        })
        .collect();
    // The share of `u`'s label that comes from its neighbour along an edge of weight `w`.
    let degree: Vec<f64> = (0..n).into_par_iter().map(|u| graph.degree(u)).collect();
    let share = |u: u32, w: f32| {
        let d = degree[u as usize];
        if d > 0.0 {
            (f64::from(w) / d).min(1.0)
        } else {
            0.0
        }
    };
    let gain = |v: usize, open: &[f64]| {
        let (neighbors, weights) = graph.row(v);
        open[v]
            + neighbors
                .iter()
                .zip(weights)
                .map(|(&u, &w)| share(u, w) * open[u as usize])
                .sum::<f64>()
    };
    let mut heap: BinaryHeap<Candidate> = (0..n)
        .into_par_iter()
        .filter(|&v| !result.is_seed(v) && records[v] > 0)
        .map(|v| Candidate {
            gain: gain(v, &open),
            node: v as u32,
        })
        .filter(|c| c.gain > 0.0)
        .collect::<Vec<_>>()
        .into();
    let mut quota = quotas(&shares(graph, seeds, config)?, count);
    // Candidates whose guessed label had filled its quota: chosen from, without quotas, only
    // when every other candidate is gone.
    let mut deferred: Vec<Candidate> = Vec::new();
    let mut chosen = Vec::with_capacity(count.min(heap.len()));
    while chosen.len() < count {
        let Some(top) = heap.pop().or_else(|| {
            // Quotas are met as far as the guesses allow; the rest by gain alone.
            heap.extend(deferred.drain(..));
            quota.clear();
            heap.pop()
        }) else {
            break;
        };
        let v = top.node as usize;
        // Gains only fall: a candidate re-scored still at the top is the best.
        let now = Candidate {
            gain: gain(v, &open),
            node: top.node,
        };
        if now.gain <= 0.0 {
            continue;
        }
        if heap.peek().is_some_and(|next| *next > now) {
            heap.push(now);
            continue;
        }
        // A node that abstains has no guess to count against a quota.
        if let Some(guess) = dist.top(v) {
            match quota.get_mut(guess.label as usize) {
                Some(0) => {
                    deferred.push(now);
                    continue;
                }
                Some(left) => *left -= 1,
                None => {}
            }
        }
        chosen.push(Suggestion {
            node: now.node,
            gain: now.gain,
        });
        open[v] = 0.0;
        let (neighbors, weights) = graph.row(v);
        for (&u, &w) in neighbors.iter().zip(weights) {
            open[u as usize] *= 1.0 - share(u, w);
        }
    }
    Ok(chosen)
}

/// The class shares the suggestions keep: the class priors `config` gives, or else the
/// seeds' shares (what class mass normalization estimates its priors from); none, and no
/// quotas, without a seed.
fn shares(graph: &Graph, seeds: &[Seed], config: &PropagationConfig) -> Result<Vec<f64>> {
    if let ClassPrior::Cmn { priors: Some(_) } = &config.class_prior {
        return Ok(super::prior::resolve(config, graph.labels(), seeds)?.unwrap_or_default());
    }
    let counts = super::prior::seed_class_counts(graph.labels().len(), seeds);
    let total: f64 = counts.iter().sum();
    Ok(if total > 0.0 {
        counts.iter().map(|c| c / total).collect()
    } else {
        Vec::new()
    })
}

/// `count` split between labels in proportion to `shares` (summing to 1): the floors, then
/// one more to the largest remainders (ties to the lower label id), so the quotas sum to
/// `count`.
fn quotas(shares: &[f64], count: usize) -> Vec<usize> {
    let exact: Vec<f64> = shares.iter().map(|&q| q * count as f64).collect();
    let mut quota: Vec<usize> = exact.iter().map(|&x| x.floor() as usize).collect();
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by(|&a, &b| {
        let (ra, rb) = (exact[a] - exact[a].floor(), exact[b] - exact[b].floor());
        rb.total_cmp(&ra).then(a.cmp(&b))
    });
    let left = count.saturating_sub(quota.iter().sum());
    for &l in order.iter().cycle().take(left) {
        quota[l] += 1;
    }
    quota
}

/// A node and its (possibly stale) gain, ordered by gain and then by lower node id first.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    gain: f64,
    node: u32,
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Candidate {}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        self.gain
            .total_cmp(&other.gain)
            .then(other.node.cmp(&self.node))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::RecordRef;
    use crate::propagate::testgraphs::two_labels;
    use crate::propagate::{propagate_with, PropagationConfig};
    use crate::test_util::in_pool;

    /// Cliques of four (nodes 4c..4c+3 for clique c), each joined to the next by a weak
    /// edge, labels `a` (0) and `b` (1), `seeds` as (node, label).
    fn cliques(n: u32, seeds: &[(u32, u32)]) -> Graph {
        cut_cliques(n, &[], seeds)
    }

    /// [`cliques`], with each clique of `cuts` not joined to the one before it.
    fn cut_cliques(n: u32, cuts: &[u32], seeds: &[(u32, u32)]) -> Graph {
        let mut edges = Vec::new();
        for c in 0..n {
            let base = 4 * c;
            for i in 0..4 {
                for j in i + 1..4 {
                    edges.push((base + i, base + j, 1.0));
                }
            }
            if c + 1 < n && !cuts.contains(&(c + 1)) {
                edges.push((base + 3, base + 4, 0.05));
            }
        }
        two_labels(4 * n as usize, edges, seeds)
    }

    fn suggest(g: &Graph, count: usize) -> Vec<Suggestion> {
        let config = PropagationConfig::default();
        let p = propagate_with(g, g.seeds(), &config, |_| {}).unwrap();
        suggest_labels(g, g.seeds(), &config, &p, count).unwrap()
    }

    fn nodes(s: &[Suggestion]) -> Vec<u32> {
        s.iter().map(|s| s.node).collect()
    }

    #[test]
    fn the_clique_no_seed_reaches_comes_first_and_seeds_never() {
        // Cliques 0 and 1 seeded a and b; clique 2 is reached only through a weak edge, and
        // clique 3 by nothing: it abstains.
        let g = cut_cliques(4, &[3], &[(0, 0), (4, 1)]);
        let s = suggest(&g, 100);
        assert!((12..16).contains(&s[0].node), "{s:?}");
        assert!(s.iter().all(|x| x.node != 0 && x.node != 4), "{s:?}");
        assert!(s.windows(2).all(|w| w[0].gain >= w[1].gain), "{s:?}");
        assert!(
            s.iter().all(|x| x.gain > 0.0 && x.gain.is_finite()),
            "{s:?}"
        );
        // Every node but the two seeds is uncertain to some degree.
        assert_eq!(s.len(), 14);
        let mut sorted = nodes(&s);
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 14, "no node twice");
    }

    #[test]
    fn a_choice_spreads_to_where_the_last_one_does_not_reach() {
        // Two cliques alike (2, 3) that no seed reaches: the first choice is node 8 (the
        // lowest id of the tie), the second in the other clique, not node 9 beside it.
        let g = cut_cliques(4, &[2, 3], &[(0, 0), (4, 1)]);
        let s = suggest(&g, 3);
        assert_eq!(nodes(&s), [8, 12, 9], "{s:?}");
        // 1 + 3 · 1/3 for each: the first settles its own record and a third of each of its
        // neighbours'; the second's is as large, since the first did not reach it.
        assert!(s[..2].iter().all(|x| (x.gain - 2.0).abs() < 1e-9), "{s:?}");
        // Node 8 settled a third of 9's, 10's and 11's records: 9 has 2/3 open, and a third
        // of 10's and 11's 2/3 each.
        assert!((s[2].gain - 10.0 / 9.0).abs() < 1e-9, "{s:?}");
    }

    #[test]
    fn a_text_repeated_in_many_records_is_worth_more() {
        // Clique 2 is reached by no seed: its nodes tie, and the lowest id comes first.
        let mut g = cut_cliques(3, &[2], &[(0, 0), (4, 1)]);
        assert_eq!(suggest(&g, 1)[0].node, 8);
        // The same graph with node 10 standing for five more records.
        let other = 10;
        for line in 0..5 {
            g.records.push(RecordRef {
                line: 100 + line,
                id: None,
                node: other,
                text_hash: None,
            });
        }
        let s = suggest(&g, 1);
        assert_eq!(s[0].node, other, "{s:?}");
        // 6 records of its own and a third of each neighbour's one: 6 + 3 · 1/3.
        assert!((s[0].gain - 7.0).abs() < 1e-9, "{s:?}");
    }

    #[test]
    fn the_choices_keep_the_class_shares_of_the_seeds() {
        // Clique 0 and 1 seeded a (two seeds each), clique 2 seeded b twice: a holds 2/3 of
        // the seeds. Six choices: 4 guessed a, 2 guessed b, wherever the largest gains are.
        let g = cliques(6, &[(0, 0), (1, 0), (4, 0), (5, 0), (8, 1), (9, 1)]);
        let config = PropagationConfig::default();
        let p = propagate_with(&g, g.seeds(), &config, |_| {}).unwrap();
        let s = suggest_labels(&g, g.seeds(), &config, &p, 6).unwrap();
        let guesses: Vec<u32> = s
            .iter()
            .map(|x| p.distribution().top(x.node as usize).unwrap().label)
            .collect();
        assert_eq!(
            guesses.iter().filter(|&&l| l == 0).count(),
            4,
            "{guesses:?}"
        );
        assert_eq!(
            guesses.iter().filter(|&&l| l == 1).count(),
            2,
            "{guesses:?}"
        );
        // Given priors set the shares instead: a quarter a, three quarters b.
        let given = PropagationConfig {
            class_prior: ClassPrior::Cmn {
                priors: Some([("a".to_owned(), 1.0), ("b".to_owned(), 3.0)].into()),
            },
            ..PropagationConfig::default()
        };
        let p = propagate_with(&g, g.seeds(), &given, |_| {}).unwrap();
        let s = suggest_labels(&g, g.seeds(), &given, &p, 4).unwrap();
        let b = s
            .iter()
            .filter(|x| p.distribution().top(x.node as usize).unwrap().label == 1)
            .count();
        assert_eq!(b, 3, "{s:?}");
        // When the guesses cannot fill a quota, the rest go by gain: asking for every
        // unseeded node gets every one.
        assert_eq!(
            suggest_labels(&g, g.seeds(), &given, &p, 100)
                .unwrap()
                .len(),
            18
        );
    }

    #[test]
    fn quotas_split_the_count_by_largest_remainder() {
        assert_eq!(quotas(&[0.5, 0.25, 0.25], 4), vec![2, 1, 1]);
        assert_eq!(quotas(&[0.5, 0.25, 0.25], 3), vec![1, 1, 1]);
        assert_eq!(quotas(&[0.7, 0.2, 0.1], 3), vec![2, 1, 0]);
        assert_eq!(quotas(&[1.0 / 3.0; 3], 2), vec![1, 1, 0]);
        assert_eq!(quotas(&[0.6, 0.4], 0), vec![0, 0]);
        assert_eq!(quotas(&[0.0, 1.0], 5), vec![0, 5]);
    }

    #[test]
    fn uncertainty_is_one_minus_the_margin_of_the_label_mass() {
        let s = |l: u32, score: f32| LabelScore { label: l, score };
        assert_eq!(uncertainty(&[]), 1.0);
        assert!((uncertainty(&[s(0, 0.1)]) - 0.0).abs() < 1e-12);
        // 0.06 and 0.02 of 0.1: margin 0.4 of the label mass.
        let u = uncertainty(&[s(0, 0.06), s(1, 0.02), s(2, 0.02)]);
        assert!((u - 0.6).abs() < 1e-6, "{u}");
        assert!((uncertainty(&[s(0, 0.3), s(1, 0.3)]) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn the_same_choices_on_any_thread_count() {
        let g = cliques(8, &[(0, 0), (4, 1), (17, 0)]);
        let one = in_pool(1, || suggest(&g, 10));
        let two = in_pool(2, || suggest(&g, 10));
        assert_eq!(one, two);
    }

    #[test]
    fn without_seeds_to_share_by_the_choices_go_by_gain_alone() {
        // The propagation of the seeds, the choices asked with none (a library caller's
        // slip, which must not fail for want of shares): no quotas, and the choices by gain
        // (cliques 2 and 3, which no seed reaches, abstain: no quota would count them).
        let g = cut_cliques(4, &[2, 3], &[(0, 0), (4, 1)]);
        let config = PropagationConfig::default();
        let p = propagate_with(&g, g.seeds(), &config, |_| {}).unwrap();
        let none = suggest_labels(&g, &[], &config, &p, 3).unwrap();
        assert_eq!(nodes(&none), [8, 12, 9]);
    }

    #[test]
    fn a_bipartite_graph_is_refused() {
        let mut g = cliques(2, &[(0, 0), (4, 1)]);
        g.kind = GraphKind::Bipartite;
        let config = PropagationConfig::default();
        let p = propagate_with(&g, g.seeds(), &config, |_| {}).unwrap();
        let err = suggest_labels(&g, g.seeds(), &config, &p, 3).unwrap_err();
        assert!(err.to_string().contains("bipartite"), "{err}");
    }
}
