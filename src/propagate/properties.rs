//! Seeded property tests on random small graphs: output bounds, no NaN, abstention of
//! unreachable nodes, monotone objectives, and bit-identical results for any thread count.

use proptest::prelude::*;

use super::testgraphs::{self, assert_bounded, assert_monotone, bits, ALL};
use super::*;

#[test]
fn identical_output_for_any_thread_count() {
    let g = testgraphs::random(3000, 12000, 12, 200, 11);
    let run = |threads: usize| {
        crate::test_util::in_pool(threads, || {
            let p = propagate(
                &g,
                &PropagationConfig {
                    top_k: 3,
                    ..PropagationConfig::default()
                },
            )
            .unwrap();
            let mut out = Vec::new();
            write_jsonl(&mut out, &g, &p, Nodes::All).unwrap();
            (out, p.report().history.clone())
        })
    };
    let one = run(1);
    assert_eq!(one, run(2));
    assert_eq!(one, run(3));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, rng_seed: proptest::test_runner::RngSeed::Fixed(0x5eed), ..ProptestConfig::default() })]

    #[test]
    fn random_graphs_stay_bounded_deterministic_and_monotone(
        n in 2usize..40,
        density in 0usize..4,
        labels in 1usize..6,
        n_seeds in 1usize..8,
        k in 1usize..5,
        algo in 0usize..4,
        rng in any::<u64>(),
    ) {
        let g = testgraphs::random(n, n * density, labels, n_seeds, rng);
        let c = PropagationConfig { algorithm: ALL[algo], top_k: k, iterations: 40, tolerance: 0.0, ..PropagationConfig::default() };
        let in_pool = |threads: usize| {
            crate::test_util::in_pool(threads, || propagate(&g, &c).unwrap())
        };
        let p1 = in_pool(1);
        let p2 = in_pool(2);
        assert_bounded(&p1);
        prop_assert_eq!(bits(&p1), bits(&p2));
        prop_assert_eq!(&p1.report().history, &p2.report().history);
        if k >= labels && ALL[algo] != Algorithm::Lp {
            assert_monotone(&p1, "random");
        }
        // Nodes no seed reaches abstain.
        let mut reach = vec![false; n];
        let mut stack: Vec<usize> = g.seeds().iter().map(|s| s.node as usize).collect();
        while let Some(v) = stack.pop() {
            if !std::mem::replace(&mut reach[v], true) {
                stack.extend(g.row(v).0.iter().map(|&u| u as usize));
            }
        }
        for (v, &reached) in reach.iter().enumerate() {
            if !reached {
                prop_assert!(p1.distribution().get(v).is_empty());
                prop_assert_eq!(p1.distribution().unknown(v), 1.0);
            }
        }
    }
}
