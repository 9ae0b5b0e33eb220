//! Behaviour of the whole propagation stage on the reference graphs.

use super::testgraphs::{self, assert_bounded, assert_monotone, ALL};
use super::*;
use crate::graph::Graph;

fn config(algorithm: Algorithm) -> PropagationConfig {
    PropagationConfig {
        algorithm,
        ..PropagationConfig::default()
    }
}

fn node(g: &Graph, key: &str) -> usize {
    g.keys().iter().position(|k| k == key).unwrap()
}

fn top_name(p: &Propagation, v: usize) -> Option<&str> {
    p.distribution()
        .top(v)
        .map(|t| p.labels()[t.label as usize].as_str())
}

#[test]
fn objective_never_rises_on_the_reference_graphs() {
    let graphs = [
        ("toy", testgraphs::toy()),
        ("karate", testgraphs::karate()),
        ("bipartite", testgraphs::bipartite()),
        ("star", testgraphs::star(7)),
    ];
    for (name, g) in &graphs {
        // Run long past convergence: plain Jacobi, and damped (a proximal step). LP is left
        // out: its row renormalization is not a descent step, and its energy does rise (on
        // the bipartite graph at iteration 1, when unlabeled rows jump from 0 to mass 1).
        let runs = [
            (Algorithm::Expander, Some(0.0)),
            (Algorithm::Expander, Some(0.5)),
            (Algorithm::Mad, None),
            (Algorithm::Spreading, None),
        ];
        for (algorithm, damping) in runs {
            let c = PropagationConfig {
                iterations: 100,
                tolerance: 0.0,
                damping,
                ..config(algorithm)
            };
            let p = propagate(g, &c).unwrap();
            assert_eq!(p.report().history.len(), 100);
            assert_monotone(&p, &format!("{name}/{algorithm}/{damping:?}"));
            let r = p.report();
            assert!(
                r.history.last().unwrap().objective < r.initial_objective,
                "{name}/{algorithm}: objective did not fall"
            );
        }
    }
}

#[test]
fn damping_stops_the_alternation_of_a_heavy_edge() {
    // a (seed L1) —100— f —1— g —1— h —1— d (seed L2). Plain Jacobi swaps a's and f's values
    // every step (an eigenvalue near −1), so f's answer depends on the iteration count's
    // parity; kept at half its previous value, f moves smoothly.
    let g = testgraphs::from_tsv("a\tf\t100\nf\tg\t1\ng\th\t1\nh\td\t1\n", "a\tL1\nd\tL2\n");
    let f = node(&g, "f");
    let score = |iterations: usize, damping: f64| {
        let c = PropagationConfig {
            iterations,
            tolerance: 0.0,
            damping: Some(damping),
            ..PropagationConfig::default()
        };
        let p = propagate(&g, &c).unwrap();
        p.distribution().top(f).map_or(0.0, |t| t.score)
    };
    assert!(
        (score(29, 0.0) - score(30, 0.0)).abs() > 0.5,
        "plain Jacobi alternates"
    );
    assert!(
        (score(29, 0.5) - score(30, 0.5)).abs() < 0.01,
        "damped iterates do not"
    );
}

#[test]
fn a_bipartite_graph_is_damped_unless_told_otherwise() {
    let g = testgraphs::bipartite();
    let run = |damping: Option<f64>| {
        let c = PropagationConfig {
            damping,
            ..PropagationConfig::default()
        };
        propagate(&g, &c).unwrap().report().history.clone()
    };
    assert_eq!(run(None), run(Some(0.5)));
    assert_ne!(run(None), run(Some(0.0)));
}

#[test]
fn toy_graph_matches_its_expected_labels_and_mirror_symmetry() {
    let g = testgraphs::toy();
    for algorithm in ALL {
        let p = propagate(&g, &config(algorithm)).unwrap();
        assert_bounded(&p);
        for (key, want) in testgraphs::toy_expected() {
            let v = node(&g, &key);
            assert_eq!(top_name(&p, v), want.as_deref(), "{algorithm}: node {key}");
            if want.is_none() {
                assert_eq!(
                    p.distribution().unknown(v),
                    1.0,
                    "{algorithm}: {key} abstains"
                );
                assert!(p.distribution().get(v).is_empty());
            }
        }
        for i in 1..=5 {
            let (a, b) = (node(&g, &format!("a{i}")), node(&g, &format!("b{i}")));
            let (da, db) = (p.distribution().get(a), p.distribution().get(b));
            assert_eq!(da.len(), db.len());
            for (x, y) in da.iter().zip(db) {
                assert!(
                    (x.score - y.score).abs() < 1e-6,
                    "{algorithm}: a{i} {da:?} vs b{i} {db:?}"
                );
            }
        }
    }
}

#[test]
fn seeds_keep_their_label_when_mu1_dominates() {
    for g in [
        testgraphs::toy(),
        testgraphs::karate(),
        testgraphs::random(40, 120, 3, 10, 7),
    ] {
        for algorithm in ALL {
            let c = PropagationConfig {
                seed_weight: 100.0,
                ..config(algorithm)
            };
            let p = propagate(&g, &c).unwrap();
            assert_bounded(&p);
            for s in g.seeds() {
                // A node seeded with several labels keeps its heaviest one (if unique).
                let mut mine: Vec<&Seed> = g.seeds().iter().filter(|t| t.node == s.node).collect();
                mine.sort_by(|a, b| b.weight.total_cmp(&a.weight));
                if mine.len() > 1 && mine[0].weight == mine[1].weight {
                    continue;
                }
                let best = mine[0];
                assert!(p.is_seed(s.node as usize));
                assert_eq!(
                    p.distribution().top(s.node as usize).map(|t| t.label),
                    Some(best.label),
                    "{algorithm}: seed node {}",
                    s.node
                );
            }
        }
    }
}

#[test]
fn karate_club_with_two_seeds_recovers_the_split() {
    let g = testgraphs::karate();
    let gold = testgraphs::karate_gold();
    for algorithm in ALL {
        let p = propagate(&g, &config(algorithm)).unwrap();
        let correct = (1..33)
            .filter(|&v| top_name(&p, v) == Some(gold[v].as_str()))
            .count();
        let accuracy = correct as f64 / 32.0;
        eprintln!("karate {algorithm}: {correct}/32 = {accuracy:.3}");
        if algorithm == Algorithm::Expander {
            assert!(accuracy >= 0.9, "default algorithm: {correct}/32");
        }
    }
}

#[test]
fn bipartite_graphs_propagate_through_feature_nodes() {
    let g = testgraphs::bipartite();
    for algorithm in ALL {
        let p = propagate(&g, &config(algorithm)).unwrap();
        assert_bounded(&p);
        assert_eq!(
            top_name(&p, 1),
            Some("greet"),
            "{algorithm}: text 1 via u:hello"
        );
        assert_eq!(
            top_name(&p, 4),
            Some("bye"),
            "{algorithm}: text 4 via u:bye"
        );
        assert_eq!(top_name(&p, node(&g, "u:hi")), Some("greet"), "{algorithm}");
        assert_eq!(
            top_name(&p, 6),
            None,
            "{algorithm}: the edgeless text abstains"
        );
        assert_eq!(p.distribution().unknown(6), 1.0);
        assert_eq!(p.report().abstaining_texts, 1);
    }
}

#[test]
fn extra_seeds_replace_the_graphs_and_bad_seeds_are_refused() {
    let g = testgraphs::toy();
    let c1 = node(&g, "c1") as u32;
    let mut seeds = g.seeds().to_vec();
    seeds.push(Seed {
        node: c1,
        label: 0,
        weight: 1.0,
    });
    let p = propagate_with(&g, &seeds, &PropagationConfig::default(), |_| {}).unwrap();
    let label0 = g.labels()[0].as_str();
    assert_eq!(
        top_name(&p, node(&g, "c3")),
        Some(label0),
        "the triangle is now reachable"
    );
    assert!(p.is_seed(c1 as usize));
    // The graph's seeds given again on top of themselves change nothing.
    let twice: Vec<Seed> = g.seeds().iter().chain(g.seeds()).copied().collect();
    let once = propagate(&g, &PropagationConfig::default()).unwrap();
    let again = propagate_with(&g, &twice, &PropagationConfig::default(), |_| {}).unwrap();
    assert_eq!(again.distribution(), once.distribution());

    let err = |seeds: &[Seed]| {
        propagate_with(&g, seeds, &PropagationConfig::default(), |_| {}).unwrap_err()
    };
    assert!(matches!(err(&[]), Error::NoSeeds));
    assert!(matches!(
        err(&[Seed {
            node: 99,
            label: 0,
            weight: 1.0
        }]),
        Error::InvalidConfig { field: "seeds", .. }
    ));
    assert!(matches!(
        err(&[Seed {
            node: 0,
            label: 7,
            weight: 1.0
        }]),
        Error::InvalidConfig { field: "seeds", .. }
    ));
    assert!(matches!(
        err(&[Seed {
            node: 0,
            label: 0,
            weight: f32::NAN
        }]),
        Error::InvalidConfig { field: "seeds", .. }
    ));
    let bad = PropagationConfig {
        top_k: 0,
        ..PropagationConfig::default()
    };
    assert!(matches!(
        propagate(&g, &bad),
        Err(Error::InvalidConfig { field: "top_k", .. })
    ));
}

#[test]
fn report_counts_iterations_and_calls_back_in_order() {
    let g = testgraphs::karate();
    let mut seen = Vec::new();
    let c = PropagationConfig {
        iterations: 2000,
        ..PropagationConfig::default()
    };
    let p = propagate_with(&g, g.seeds(), &c, |s| seen.push(s.iteration)).unwrap();
    let r = p.report();
    assert!(r.converged && r.iterations < 2000);
    assert_eq!(seen, (1..=r.iterations).collect::<Vec<_>>());
    // Karate is an edge list, so Expander damps by 0.5 and convergence is judged on the
    // undamped step: twice the measured change.
    assert!(r.history.last().unwrap().max_change * 2.0 < c.tolerance);
    assert!(r.history[..r.iterations - 1]
        .iter()
        .all(|s| s.max_change * 2.0 >= c.tolerance));
    let capped = propagate(&g, &PropagationConfig { iterations: 3, ..c }).unwrap();
    assert!(!capped.report().converged && capped.report().iterations == 3);
}

/// A callback's `Break` ends the run with the iterate it was shown: the same distribution
/// and history as a run capped at that iteration, and a report that says who stopped it.
#[test]
fn a_callback_that_breaks_ends_the_run_with_the_iterate_it_saw() {
    let g = testgraphs::karate();
    let c = PropagationConfig {
        tolerance: 0.0,
        ..PropagationConfig::default()
    };
    let mut seen = Vec::new();
    let stopped = propagate_with(&g, g.seeds(), &c, |s| {
        seen.push(s.iteration);
        if s.iteration == 2 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .unwrap();
    let capped = propagate(
        &g,
        &PropagationConfig {
            iterations: 2,
            ..c.clone()
        },
    )
    .unwrap();
    assert_eq!(seen, [1, 2]);
    let (s, p) = (stopped.report(), capped.report());
    assert!(s.stopped && !s.converged && s.iterations == 2);
    assert!(!p.stopped);
    assert_eq!(s.history, p.history);
    assert_eq!(s.initial_objective, p.initial_objective);
    assert!(stopped.distribution() == capped.distribution());
    // A run nobody stopped writes no `stopped` field; one that was stopped does.
    let json = |r| serde_json::to_value(r).unwrap();
    assert!(json(p).get("stopped").is_none());
    assert_eq!(json(s)["stopped"], true);

    // A `Break` at the last iteration cuts nothing short.
    let three = PropagationConfig {
        iterations: 3,
        ..c.clone()
    };
    let last = propagate_with(&g, g.seeds(), &three, |s| {
        if s.iteration == 3 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .unwrap();
    let plain = propagate(&g, &three).unwrap();
    assert!(!last.report().stopped && last.report().iterations == 3);
    assert!(last.distribution() == plain.distribution());
}

#[test]
fn top_k_truncation_moves_mass_to_unknown() {
    let g = testgraphs::random(60, 240, 6, 30, 3);
    for algorithm in ALL {
        let c = PropagationConfig {
            top_k: 2,
            ..config(algorithm)
        };
        let p = propagate(&g, &c).unwrap();
        assert_bounded(&p);
        let truncated = (0..g.n_nodes())
            .any(|v| p.distribution().get(v).len() == 2 && p.distribution().unknown(v) > 0.0);
        assert!(
            truncated,
            "{algorithm}: some node holds 2 labels and unknown mass"
        );
    }
}

#[test]
fn class_mass_normalization_follows_the_priors() {
    let g = testgraphs::karate();
    let count = |p: &Propagation, l: u32| {
        (0..34)
            .filter(|&v| p.distribution().top(v).map(|t| t.label) == Some(l))
            .count()
    };
    let plain = propagate(
        &g,
        &PropagationConfig {
            class_prior: ClassPrior::None,
            ..PropagationConfig::default()
        },
    )
    .unwrap();
    let skew = |q: f64| PropagationConfig {
        class_prior: ClassPrior::Cmn {
            priors: Some([("Mr. Hi".to_string(), q), ("Officer".to_string(), 1.0 - q)].into()),
        },
        ..PropagationConfig::default()
    };
    let skew_by = |hi: f64, officer: f64| PropagationConfig {
        class_prior: ClassPrior::Cmn {
            priors: Some([("Mr. Hi".to_string(), hi), ("Officer".to_string(), officer)].into()),
        },
        ..PropagationConfig::default()
    };
    let more_hi = propagate(&g, &skew(0.8)).unwrap();
    let more_officer = propagate(&g, &skew(0.2)).unwrap();
    assert_bounded(&more_hi);
    assert!(
        count(&more_hi, 0) > count(&plain, 0),
        "{} vs {}",
        count(&more_hi, 0),
        count(&plain, 0)
    );
    assert!(count(&more_officer, 1) > count(&plain, 1));
    for v in 0..34 {
        // Unknown mass is untouched, seeds are untouched.
        assert!((plain.distribution().unknown(v) - more_hi.distribution().unknown(v)).abs() < 1e-6);
    }
    assert_eq!(more_hi.distribution().get(0), plain.distribution().get(0));
    // Priors at f64's limits: the ratios count, not the magnitudes (a sum of 1e308s
    // overflowed), and a prior so small that rescaled scores are subnormal still leaves every
    // reachable node a label and a total of 1.
    let huge = propagate(&g, &skew_by(1e308, 1e308)).unwrap();
    let even = propagate(&g, &skew_by(1.0, 1.0)).unwrap();
    assert_eq!(huge.distribution(), even.distribution());
    // (A factor that underflows to 0, as 5e-324 gives, is a prior of 0: a node holding only
    // that label abstains, with unknown 1; `assert_bounded` checks the totals.)
    assert_bounded(
        &propagate(
            &g,
            &PropagationConfig {
                top_k: 1,
                ..skew_by(5e-324, 1.0)
            },
        )
        .unwrap(),
    );
    for (hi, officer) in [(1.0, 1e-308), (1.0, 1e-320)] {
        for k in [1, 2] {
            let config = PropagationConfig {
                top_k: k,
                ..skew_by(hi, officer)
            };
            let p = propagate(&g, &config).unwrap();
            assert_bounded(&p);
            for v in 0..34 {
                let total: f64 = p
                    .distribution()
                    .get(v)
                    .iter()
                    .map(|e| f64::from(e.score))
                    .sum();
                let total = total + f64::from(p.distribution().unknown(v));
                assert!(
                    (total - 1.0).abs() < 1e-5,
                    "{hi}/{officer} K {k}, node {v}: {total}"
                );
                assert!(
                    p.distribution().top(v).is_some(),
                    "{hi}/{officer} K {k}, node {v}"
                );
            }
        }
    }
    let estimated = PropagationConfig {
        class_prior: ClassPrior::Cmn { priors: None },
        ..PropagationConfig::default()
    };
    assert_bounded(&propagate(&g, &estimated).unwrap());
    let unknown = PropagationConfig {
        class_prior: ClassPrior::Cmn {
            priors: Some([("nope".to_string(), 1.0)].into()),
        },
        ..PropagationConfig::default()
    };
    assert!(matches!(
        propagate(&g, &unknown),
        Err(Error::InvalidConfig {
            field: "class_prior",
            ..
        })
    ));
}

/// The last few unlabelled records of a mostly labelled corpus: with one left, class mass
/// normalization used to make its scores all equal (each label's mass was that record's own
/// score), so the first label by name won. It now keeps the order of the scores without it.
#[test]
fn class_mass_normalization_of_a_single_unlabelled_record_keeps_its_order() {
    let gold = testgraphs::karate_gold();
    let labels = {
        let mut l = gold.clone();
        l.sort();
        l.dedup();
        l
    };
    for left in [2, 8, 9, 13, 19, 30, 31] {
        let mut g = testgraphs::karate();
        let seeds = (0..34u32)
            .filter(|&v| v as usize != left)
            .map(|v| crate::graph::Seed {
                node: v,
                label: labels.binary_search(&gold[v as usize]).unwrap() as u32,
                weight: 1.0,
            })
            .collect();
        g.set_seeds(labels.clone(), seeds).unwrap();
        let cmn = propagate(&g, &PropagationConfig::default()).unwrap();
        let none = propagate(
            &g,
            &PropagationConfig {
                class_prior: ClassPrior::None,
                ..PropagationConfig::default()
            },
        )
        .unwrap();
        let (a, b) = (cmn.distribution().get(left), none.distribution().get(left));
        assert_eq!(a.len(), 2, "node {left}: {a:?}");
        assert_eq!(a[0].label, b[0].label, "node {left}: {a:?} against {b:?}");
        assert!(a[0].score > a[1].score + 1e-3, "node {left}: {a:?}");
    }
}

#[test]
fn class_mass_counts_each_record_of_a_shared_node() {
    use crate::graph::{symmetric_csr, GraphKind, GraphParts, RecordRef, Seed};
    // A path a — 1 — 2 — 3 — b: node 2 is equidistant from both seeds. When node 1 (which
    // leans to `a`) stands for 20 identical records, label `a` holds more of the class mass
    // and CMN with equal priors must shrink it: node 2 then leans to `b`.
    let path = |copies_of_1: usize| {
        let edges = (0..4u32).map(|i| (i, i + 1, 1.0)).collect();
        let (offsets, neighbors, weights) = symmetric_csr(5, edges);
        let mut nodes: Vec<u32> = (0..5).collect();
        nodes.extend(std::iter::repeat_n(1, copies_of_1 - 1));
        let records = nodes
            .iter()
            .enumerate()
            .map(|(line, &node)| RecordRef {
                line: line as u64 + 1,
                id: None,
                node,
                text_hash: None,
            })
            .collect();
        Graph::from_parts(
            GraphKind::Knn,
            GraphParts {
                offsets,
                neighbors,
                weights,
                keys: (0..5).map(|i| i.to_string()).collect(),
                text_nodes: 5,
                records,
                labels: vec!["a".into(), "b".into()],
                seeds: vec![
                    Seed {
                        node: 0,
                        label: 0,
                        weight: 1.0,
                    },
                    Seed {
                        node: 4,
                        label: 1,
                        weight: 1.0,
                    },
                ],
                provenance: serde_json::Value::Null,
            },
        )
        .unwrap()
    };
    let score = |p: &Propagation, v: usize, l: u32| {
        p.distribution()
            .get(v)
            .iter()
            .find(|e| e.label == l)
            .map_or(0.0, |e| e.score)
    };
    let once = propagate(&path(1), &PropagationConfig::default()).unwrap();
    assert!(
        (score(&once, 2, 0) - score(&once, 2, 1)).abs() < 1e-6,
        "symmetric"
    );
    let heavy = propagate(&path(20), &PropagationConfig::default()).unwrap();
    assert_bounded(&heavy);
    assert!(
        score(&heavy, 2, 1) > score(&heavy, 2, 0) + 1e-3,
        "b {} vs a {}",
        score(&heavy, 2, 1),
        score(&heavy, 2, 0)
    );
    // Without CMN the records do not matter.
    let none = PropagationConfig {
        class_prior: ClassPrior::None,
        ..PropagationConfig::default()
    };
    let (p1, p20) = (
        propagate(&path(1), &none).unwrap(),
        propagate(&path(20), &none).unwrap(),
    );
    assert_eq!(p1.distribution().get(2), p20.distribution().get(2));
}

#[test]
fn heavy_edges_of_an_edge_list_do_not_make_the_answer_depend_on_parity() {
    // A path is bipartite: plain Jacobi alternates (b: 0.07 after 30 steps, 0.54 after 31).
    let g = testgraphs::from_tsv("a\tb\t100\nb\tc\t100\n", "a\tx\n");
    let score = |iterations: usize, damping: Option<f64>| {
        let c = PropagationConfig {
            iterations,
            tolerance: 0.0,
            damping,
            ..PropagationConfig::default()
        };
        let p = propagate(&g, &c).unwrap();
        let d = p.distribution();
        let top = |v: usize| d.get(v).first().map_or(0.0, |e| e.score);
        (top(1), top(2))
    };
    let ((b30, c30), (b31, _)) = (score(30, None), score(31, None));
    assert!((b30 - b31).abs() < 0.02, "b: {b30} then {b31}");
    assert!(b30 >= c30, "b is nearer the seed than c: {b30} < {c30}");
    // Plain Jacobi, as measured: the alternation the default removes.
    let ((p30, _), (p31, _)) = (score(30, Some(0.0)), score(31, Some(0.0)));
    assert!((p30 - p31).abs() > 0.3, "plain: {p30} then {p31}");
}

#[test]
fn heavy_damping_does_not_pass_for_convergence() {
    // A damping of 0.999999 moves each node a millionth of the way per step: the measured
    // change is tiny from the first step, and only the undamped step shows how far off it is.
    let g = testgraphs::karate();
    let c = PropagationConfig {
        damping: Some(0.999_999),
        iterations: 50,
        ..PropagationConfig::default()
    };
    let r = propagate(&g, &c).unwrap();
    assert!(r.report().history[0].max_change < c.tolerance);
    assert!(!r.report().converged && r.report().iterations == 50);
}

#[test]
fn no_convergence_while_labels_still_reach_new_nodes() {
    // A path seeded at one end: with spreading (α = 0.2) the mass arriving t hops away is
    // about 0.2^t, so the change falls below the tolerance long before the far end holds
    // any label. Every node is reachable, so none may abstain.
    let n = 40;
    let edges: String = (0..n - 1)
        .map(|i| format!("p{i}\tp{}\t1\n", i + 1))
        .collect();
    let g = testgraphs::from_tsv(&edges, "p0\ta\n");
    for algorithm in ALL {
        let c = PropagationConfig {
            iterations: 1000,
            ..config(algorithm)
        };
        let r = propagate(&g, &c).unwrap();
        let abstaining = (0..n)
            .filter(|&v| r.distribution().top(v).is_none())
            .count();
        assert_eq!(abstaining, 0, "{algorithm:?}: {:?}", r.report());
        assert!(r.report().converged, "{algorithm:?}: {:?}", r.report());
    }
    // scikit-learn's rule (the sum norm) stops where scikit-learn would, as before.
    let sklearn = PropagationConfig {
        algorithm: Algorithm::Spreading,
        change_norm: ChangeNorm::Sum,
        tolerance: 1e-3,
        class_prior: ClassPrior::None,
        ..PropagationConfig::default()
    };
    let r = propagate(&g, &sklearn).unwrap();
    assert!(r.report().converged);
    assert!((0..n).any(|v| r.distribution().top(v).is_none()));
}

/// A seed's weight is a confidence, not a class frequency: with the seed-estimated priors
/// (the default), one seed of weight 100 against one of weight 1 must not hand the weaker
/// seed's whole cluster to the stronger one's label, for any algorithm. (The priors used to
/// sum the weights, 100 : 1, and class mass normalization then flipped the politics
/// cluster to sports.)
#[test]
fn a_seed_weight_does_not_set_the_class_priors() {
    let g = testgraphs::from_tsv(
        include_str!("../../graphs/toy/edges.tsv"),
        "a1\tsports\t100\nb1\tpolitics\t1\n",
    );
    for algorithm in ALL {
        let p = propagate(&g, &config(algorithm)).unwrap();
        for (key, label) in testgraphs::toy_expected() {
            assert_eq!(
                top_name(&p, node(&g, &key)),
                label.as_deref(),
                "{algorithm}: node {key}"
            );
        }
    }
}

/// The change a sweep reports is the L1 distance (labels and unknown) between the iterates
/// before and after it, the scores of labels that left a node's top K included.
#[test]
fn the_reported_change_is_the_l1_distance_between_iterates() {
    let g = testgraphs::random(60, 240, 6, 30, 3);
    let n_labels = g.labels().len();
    let run = |iterations| {
        let c = PropagationConfig {
            iterations,
            tolerance: 0.0,
            top_k: 2,
            class_prior: ClassPrior::None,
            ..PropagationConfig::default()
        };
        propagate(&g, &c).unwrap()
    };
    let dense = |p: &Propagation, v: usize| {
        let mut x = vec![0.0f64; n_labels + 1];
        for e in p.distribution().get(v) {
            x[e.label as usize] = f64::from(e.score);
        }
        x[n_labels] = f64::from(p.distribution().unknown(v));
        x
    };
    let mut left = 0.0;
    for t in 1..6 {
        let (before, after) = (run(t), run(t + 1));
        let (mut sum, mut max) = (0.0f64, 0.0f64);
        for v in 0..g.n_nodes() {
            let (a, b) = (dense(&before, v), dense(&after, v));
            let d: f64 = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).sum();
            sum += d;
            max = max.max(d);
            left += (0..n_labels)
                .filter(|&l| a[l] > 0.0 && b[l] == 0.0)
                .map(|l| a[l])
                .sum::<f64>();
        }
        let s = &after.report().history[t];
        assert_eq!(s.iteration, t + 1);
        assert!(
            (s.sum_change - sum).abs() < 1e-5 && (s.max_change - max).abs() < 1e-5,
            "sweep {}: reported {} / {}, measured {sum} / {max}",
            t + 1,
            s.sum_change,
            s.max_change
        );
    }
    assert!(left > 1e-3, "labels left some top K: {left}");
}

/// Mass that underflows f32 on its way never arrives (see `iterate`): on a path longer than
/// the 40-odd hops spreading's mass survives, the far end abstains, and the run converges once
/// labels stop reaching new nodes, without carrying zero scores to the end of the path.
#[test]
fn mass_below_the_range_of_f32_reaches_no_node() {
    let n = 120;
    let edges: String = (0..n - 1)
        .map(|i| format!("p{i}\tp{}\t1\n", i + 1))
        .collect();
    let g = testgraphs::from_tsv(&edges, "p0\ta\n");
    let c = PropagationConfig {
        iterations: 1000,
        ..config(Algorithm::Spreading)
    };
    let p = propagate(&g, &c).unwrap();
    assert_bounded(&p);
    let reached = (0..n)
        .filter(|&v| p.distribution().top(v).is_some())
        .count();
    assert!(
        reached > 10 && reached < n,
        "{reached} nodes hold the label"
    );
    assert!((0..reached).all(|v| p.distribution().top(v).is_some()));
    let r = p.report();
    assert!(r.converged, "{r:?}");
    // The labels reach one more node a sweep: walking the whole path takes n − 1 sweeps.
    assert!(
        r.iterations < n - 1,
        "{} sweeps for {reached} nodes reached",
        r.iterations
    );
}

/// Label propagation reports the harmonic energy `Σ_{undirected (u,v)} w_uv ‖F_u − F_v‖²`
/// of its iterate (classic.rs), each undirected edge once.
#[test]
fn label_propagation_reports_the_harmonic_energy() {
    let g = testgraphs::karate();
    let c = PropagationConfig {
        iterations: 40,
        tolerance: 0.0,
        class_prior: ClassPrior::None,
        ..config(Algorithm::Lp)
    };
    let p = propagate(&g, &c).unwrap();
    let d = p.distribution();
    let n_labels = g.labels().len();
    assert!(d.top_k() >= n_labels);
    let dense = |v: usize| {
        let mut x = vec![0.0f64; n_labels + 1];
        for e in d.get(v) {
            x[e.label as usize] = f64::from(e.score);
        }
        x[n_labels] = f64::from(d.unknown(v));
        x
    };
    assert!((0..g.n_nodes()).all(|v| d.top(v).is_some()));
    let mut energy = 0.0;
    for v in 0..g.n_nodes() {
        let (nb, ws) = g.row(v);
        for (&u, &w) in nb.iter().zip(ws) {
            if u as usize > v {
                let (a, b) = (dense(v), dense(u as usize));
                let sq: f64 = a.iter().zip(&b).map(|(x, y)| (x - y).powi(2)).sum();
                energy += f64::from(w) * sq;
            }
        }
    }
    let reported = p.report().history.last().unwrap().objective;
    assert!(energy > 0.0);
    assert!(
        (reported - energy).abs() < 1e-5 * energy,
        "reported {reported}, harmonic energy {energy}"
    );
}

/// A graph holding some rows only (`Graph::load_rows`) is refused by name, in one sentence.
#[test]
fn a_graph_of_some_rows_only_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.graph");
    testgraphs::karate().save(&path).unwrap();
    let half = Graph::load_rows(&path, |n| 0..n / 2).unwrap();
    let e = propagate(&half, &PropagationConfig::default())
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "invalid graph: holds rows 0..17 of 34 (Graph::load_rows): propagate it on its cluster \
         with propagate_distributed, or load it whole with Graph::load"
    );
}

/// A seed's weight must be finite and positive: 0, a negative weight and infinity are
/// refused as NaN is, whichever half of the check they fail.
#[test]
fn seed_weights_that_are_not_finite_and_positive_are_refused() {
    let g = testgraphs::toy();
    for weight in [0.0, -1.0, f32::INFINITY, f32::NAN] {
        let seeds = [Seed {
            node: 0,
            label: 0,
            weight,
        }];
        let e = propagate_with(&g, &seeds, &PropagationConfig::default(), |_| {}).unwrap_err();
        assert!(
            matches!(e, Error::InvalidConfig { field: "seeds", .. }),
            "weight {weight}: {e}"
        );
    }
}

/// A tolerance of 0 runs every iteration (`PropagationConfig::tolerance`), even past an exact
/// fixed point: on a path a — b seeded at a, label propagation copies a's label to b in one
/// sweep, and every later sweep changes nothing at all, under either norm.
#[test]
fn a_tolerance_of_zero_runs_every_iteration_past_an_exact_fixed_point() {
    let g = testgraphs::from_tsv("a\tb\t1\n", "a\tx\n");
    for change_norm in [ChangeNorm::MaxNode, ChangeNorm::Sum] {
        let c = PropagationConfig {
            iterations: 5,
            tolerance: 0.0,
            change_norm,
            class_prior: ClassPrior::None,
            ..config(Algorithm::Lp)
        };
        let p = propagate(&g, &c).unwrap();
        let r = p.report();
        let changes: Vec<f64> = r.history.iter().map(|s| s.sum_change).collect();
        assert_eq!(changes, [1.0, 0.0, 0.0, 0.0, 0.0], "{change_norm:?}");
        assert!(!r.converged && r.iterations == 5, "{change_norm:?}: {r:?}");
        assert_eq!(top_name(&p, 1), Some("x"));
    }
}

/// `Debug` prints the summary `Propagation` documents: the distribution's summary, the
/// numbers of labels and of seeds (not the vectors), then the report.
#[test]
fn debug_prints_a_summary_and_the_report() {
    // A path a — b — c — d, seeds a and b "x", d "y": 4 nodes, 2 labels, 3 seeds.
    let g = testgraphs::from_tsv("a\tb\t1\nb\tc\t1\nc\td\t1\n", "a\tx\nb\tx\nd\ty\n");
    let p = propagate(&g, &PropagationConfig::default()).unwrap();
    let s = format!("{p:?}");
    let want = "Propagation { distribution: LabelDistribution { nodes: 4, k: 8, .. }, \
                labels: 2, seeds: 3, report: PropagationReport { algorithm: Expander, ";
    assert!(s.starts_with(want), "{s}");
}
