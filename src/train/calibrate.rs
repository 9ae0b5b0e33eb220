//! Calibrating a trained network's scores: one softmax temperature fitted on the held-out
//! slice (temperature scaling, Guo et al. 2017, "On calibration of modern neural networks").
//!
//! **Why.** A network distilled from propagated labels learns their softness along with
//! their ranking. Expander spreads a text's mass over several labels: on SNIPS's few-label
//! protocol the top label of a propagated distribution holds 53% of its label mass on
//! average, while 93% of those top labels are right. The model then answered 96% of SNIPS's
//! dev texts right with a mean top score of 0.54, and `predict --threshold 0.5` dropped a
//! third of its answers, 99% of them right (benches/README.md). A fully supervised model,
//! trained on one-hot labels, was already calibrated (expected calibration error 1.3%).
//!
//! **What.** The logits `z` become `β z` for one `β > 0`, chosen to maximize the likelihood
//! of the held-out examples' top labels (a seed's label, or the propagated distribution's
//! top label). The answers keep their order; only the scores move. Against propagated
//! labels, a score estimates how often the model agrees with propagation, which is more
//! often than it is right where propagation is often wrong (benches/README.md).
//!
//! **Nothing held out** (by default with 20 or more seeds a label, since gold labels are
//! not held out, and on corpora too small for a slice of 200): the examples a network
//! trained on say little about its scores on new texts. A network that has learned them
//! all agrees with every one, and a fit on them pushed `β` toward its cap (subsets of
//! 1,200–2,000 texts of HWU64, SwDA and the bundled corpus: expected calibration error
//! 20–43%, against 7–25% cross-fitted; benches/README.md). So the scores are
//! *cross-fitted*: a second network, trained as the model is but without one propagated
//! example in ten, scores that tenth, `β` is fitted there and applied to the model, which
//! trains on everything (scikit-learn's `CalibratedClassifierCV(ensemble=False)` does the
//! same over k folds). It costs a second training; `--calibration none` skips it. A set of
//! gold labels alone with nothing held out is not calibrated: trained on one-hot targets,
//! such a model was calibrated already (SNIPS: expected calibration error 1.3%).
//!
//! **The fit.** `NLL(β) = mean_i [ln Σ_j exp(β z_ij) − β z_iy]` is convex in `β`: its
//! derivative `mean_i [E_p(z_i) − z_iy]` (p the softmax of `β z_i`) rises with `β`, at
//! the rate `mean_i Var_p(z_i)`. Newton steps on the derivative, kept inside a bracket that
//! shrinks by bisection, find the root in about a dozen passes over the slice; `β` stays in
//! `[1 / MAX_SCALE, MAX_SCALE]`, so a slice the network separates perfectly (whose
//! likelihood rises without end) cannot push the scores to exactly 0 and 1. Sums run over
//! fixed chunks and add up in order: the same `β` for any thread count.

use rayon::prelude::*;

use super::fit::{argmax_target, forward_each, Inputs};
use super::{Calibration, Example, TrainSet};
use crate::network::Network;

/// The most propagated examples a cross-fitted calibration holds out (a fixed, evenly
/// spaced tenth of them, up to this many): enough for one parameter, bounded for millions.
pub(super) const CROSS_FIT_MAX: usize = 20_000;

/// One propagated example in this many is held out from the calibration network.
pub(super) const CROSS_FIT_EVERY: usize = 10;

/// The fewest held-out examples a cross-fitted calibration is made from; fewer, and the
/// scores are left as trained: a floor for fitting even one parameter, below which the fit
/// mostly follows which few texts fell in the slice.
pub(super) const CROSS_FIT_MIN: usize = 30;

/// What the scores are calibrated on, and how ([`examples`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Plan {
    /// The held-out slice, scored by the model's own network.
    HeldOut(Vec<usize>),
    /// These propagated examples, scored by a second network trained on every other example
    /// (ascending indices).
    CrossFit(Vec<usize>),
}

/// The examples to calibrate on: the held-out slice `val` if there is one; else every
/// [`CROSS_FIT_EVERY`]-th of the set's propagated examples (at most [`CROSS_FIT_MAX`]), for
/// a second network trained without them to score; none for [`Calibration::None`], a set
/// of one label (whose score is always 1), a set of gold labels alone with nothing held
/// out, or fewer than [`CROSS_FIT_MIN`] to fit on.
pub(super) fn examples(calibration: Calibration, val: &[usize], set: &TrainSet) -> Option<Plan> {
    if calibration == Calibration::None || set.labels.len() < 2 {
        return None;
    }
    if !val.is_empty() {
        return Some(Plan::HeldOut(val.to_vec()));
    }
    let propagated: Vec<usize> = (0..set.examples.len())
        .filter(|&i| !set.examples[i].seed)
        .collect();
    // Evenly spaced over the whole set, so that a corpus sorted by topic is sampled across.
    let step = CROSS_FIT_EVERY.max(propagated.len().div_ceil(CROSS_FIT_MAX));
    let fold: Vec<usize> = propagated
        .into_iter()
        .skip(step / 2)
        .step_by(step)
        .collect();
    (fold.len() >= CROSS_FIT_MIN).then_some(Plan::CrossFit(fold))
}

/// The largest factor (and the inverse of the smallest) the logits may be scaled by.
pub(super) const MAX_SCALE: f64 = 16.0;

/// Examples per chunk of the parallel sums (fixed, so that the sums do not depend on the
/// thread count).
const CHUNK: usize = 256;

/// Newton or bisection steps at most; each halves the bracket at worst, and the bracket
/// starts at a ratio of 256.
const MAX_STEPS: usize = 100;

/// The held-out slice's logits and top labels, as the fit reads them.
pub(super) struct Slice {
    /// Row-major, `labels` per example.
    logits: Vec<f32>,
    labels: usize,
    /// Each example's label (an index into its row).
    targets: Vec<u32>,
}

impl Slice {
    /// The logits of `network` on the examples `val` of `examples`, and their top labels.
    pub(super) fn of(
        network: &Network,
        val: &[usize],
        inputs: &Inputs,
        examples: &[Example],
    ) -> Self {
        let labels = network.n_out();
        let rows = forward_each(network, val, inputs, |_, s| s.logits().to_vec());
        Self {
            logits: rows.concat(),
            labels,
            targets: val
                .iter()
                .map(|&i| argmax_target(&examples[i].target))
                .collect(),
        }
    }

    /// A slice from logits given directly (tests).
    #[cfg(test)]
    fn new(logits: Vec<f32>, labels: usize, targets: Vec<u32>) -> Self {
        assert_eq!(logits.len(), labels * targets.len());
        Self {
            logits,
            labels,
            targets,
        }
    }

    /// Mean negative log-likelihood of the targets with the logits scaled by `beta`, and its
    /// first and second derivatives in `beta`.
    pub(super) fn nll(&self, beta: f64) -> (f64, f64, f64) {
        // The tests bound the passes a fit takes.
        #[cfg(test)]
        tests::PASSES.with(|p| p.set(p.get() + 1));
        let n = self.targets.len();
        let parts: Vec<(f64, f64, f64)> = self
            .logits
            .par_chunks(CHUNK * self.labels)
            .zip(self.targets.par_chunks(CHUNK))
            .map(|(rows, targets)| {
                let mut sum = (0.0, 0.0, 0.0);
                for (z, &y) in rows.chunks_exact(self.labels).zip(targets) {
                    let max = z
                        .iter()
                        .fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
                    // Shifted by the largest logit, so that no exponential overflows.
                    let (mut total, mut first, mut second) = (0.0, 0.0, 0.0);
                    for &v in z {
                        let v = f64::from(v) - max;
                        let e = (beta * v).exp();
                        total += e;
                        first += e * v;
                        second += e * v * v;
                    }
                    let mean = first / total;
                    let zy = f64::from(z[y as usize]) - max;
                    sum.0 += total.ln() - beta * zy;
                    sum.1 += mean - zy;
                    sum.2 += (second / total - mean * mean).max(0.0);
                }
                sum
            })
            .collect();
        let total = parts
            .iter()
            .fold((0.0, 0.0, 0.0), |a, p| (a.0 + p.0, a.1 + p.1, a.2 + p.2));
        let n = n.max(1) as f64;
        (total.0 / n, total.1 / n, total.2 / n)
    }

    /// The `β` in `[1 / MAX_SCALE, MAX_SCALE]` that minimizes [`Slice::nll`]; 1 for an
    /// empty slice.
    pub(super) fn fit(&self) -> f64 {
        if self.targets.is_empty() {
            return 1.0;
        }
        let (mut lo, mut hi) = (1.0 / MAX_SCALE, MAX_SCALE);
        // The derivative rises with β: at an end of the range it says whether the minimum
        // lies beyond it.
        if self.nll(hi).1 <= 0.0 {
            return hi;
        }
        if self.nll(lo).1 >= 0.0 {
            return lo;
        }
        let mut beta = 1.0;
        for _ in 0..MAX_STEPS {
            let (_, d1, d2) = self.nll(beta);
            if d1 > 0.0 {
                hi = beta;
            } else {
                lo = beta;
            }
            let newton = beta - d1 / d2;
            // The bracket's ends are in it: a Newton step that lands on `beta` itself, the
            // root to the last bit and now an end, has converged (excluded, it bisected away
            // from the root and took a few dozen more passes back).
            let next = if d2 > 0.0 && newton >= lo && newton <= hi {
                newton
            } else {
                // Outside the bracket (or a flat curve): halve the bracket, geometrically.
                (lo * hi).sqrt()
            };
            if (next - beta).abs() <= 1e-9 * beta {
                return next;
            }
            beta = next;
        }
        beta
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::Xoshiro256PlusPlus;
    use rand::{RngExt, SeedableRng};
    use std::cell::Cell;

    thread_local! {
        /// Calls of [`Slice::nll`] on this thread: the passes over a slice.
        pub(super) static PASSES: Cell<usize> = const { Cell::new(0) };
    }

    /// `n` examples of `labels` random logits whose targets are drawn from the softmax of
    /// `truth` times the logits: the likelihood's maximum is near `truth`.
    fn drawn(n: usize, labels: usize, truth: f64, seed: u64) -> Slice {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut logits = Vec::with_capacity(n * labels);
        let mut targets = Vec::with_capacity(n);
        for _ in 0..n {
            let z: Vec<f32> = (0..labels)
                .map(|_| rng.random_range(-3.0f32..3.0))
                .collect();
            let w: Vec<f64> = z.iter().map(|&v| (truth * f64::from(v)).exp()).collect();
            let mut u = rng.random_range(0.0..w.iter().sum::<f64>());
            let y = w
                .iter()
                .position(|&x| {
                    u -= x;
                    u < 0.0
                })
                .unwrap_or(labels - 1);
            logits.extend(z);
            targets.push(y as u32);
        }
        Slice::new(logits, labels, targets)
    }

    #[test]
    fn the_fit_recovers_the_temperature_the_labels_were_drawn_at() {
        for (truth, labels, seed) in [(0.25, 7, 1), (1.0, 7, 2), (3.0, 64, 3), (6.0, 3, 4)] {
            let beta = drawn(20_000, labels, truth, seed).fit();
            assert!(
                (beta / truth - 1.0).abs() < 0.1,
                "drawn at {truth}, fitted {beta}"
            );
        }
    }

    #[test]
    fn the_fit_is_the_minimum_of_the_likelihood() {
        let slice = drawn(3_000, 5, 2.0, 7);
        let beta = slice.fit();
        let (at, d1, _) = slice.nll(beta);
        assert!(d1.abs() < 1e-9, "derivative {d1} at the fitted {beta}");
        for other in [beta * 0.9, beta * 1.1, 1.0, 1.0 / MAX_SCALE, MAX_SCALE] {
            assert!(at <= slice.nll(other).0, "{beta} is not below {other}");
        }
    }

    /// The root of the likelihood's derivative by plain bisection, run until the bracket's
    /// ends are adjacent floats: slow, but no Newton step to get wrong.
    fn bisected_root(slice: &Slice) -> f64 {
        let (mut lo, mut hi) = (1.0 / MAX_SCALE, MAX_SCALE);
        loop {
            let mid = 0.5 * (lo + hi);
            if mid <= lo || mid >= hi {
                return mid;
            }
            if slice.nll(mid).1 > 0.0 {
                hi = mid;
            } else {
                lo = mid;
            }
        }
    }

    #[test]
    fn newton_finds_the_root_to_the_last_bits_in_a_few_passes() {
        // Logits 30 times wider than `drawn`'s with labels drawn at β = 2/30 of them: at
        // β = 1 the scores are nearly one-hot and the derivative nearly flat, so Newton's
        // first step lands far below the bracket and bisection must take over. There and at
        // 0.25, a last Newton step lands on the root exactly, by then an end of the bracket.
        let mut wide = drawn(2_000, 5, 2.0, 3);
        wide.logits.iter_mut().for_each(|z| *z *= 30.0);
        for (name, slice) in [
            ("drawn at 0.25", drawn(3_000, 7, 0.25, 1)),
            ("drawn at 3", drawn(3_000, 64, 3.0, 3)),
            ("drawn at 6", drawn(3_000, 3, 6.0, 4)),
            ("wide", wide),
        ] {
            PASSES.with(|p| p.set(0));
            let beta = slice.fit();
            let passes = PASSES.with(Cell::get);
            let root = bisected_root(&slice);
            // Newton converges quadratically: its last step leaves no error but rounding's
            // (bisection alone stops within 1e-9 of β, after some 35 passes).
            assert!(
                (beta / root - 1.0).abs() < 1e-12,
                "{name}: fitted {beta}, root {root}"
            );
            assert!(passes <= 15, "{name}: {passes} passes");
        }
    }

    #[test]
    fn the_derivatives_match_finite_differences() {
        let slice = drawn(500, 4, 1.5, 9);
        for beta in [0.3, 1.0, 4.0] {
            let (_, d1, d2) = slice.nll(beta);
            let h = 1e-5;
            let (up, d1_up, _) = slice.nll(beta + h);
            let (down, d1_down, _) = slice.nll(beta - h);
            assert!(
                (d1 - (up - down) / (2.0 * h)).abs() < 1e-6,
                "first at {beta}"
            );
            assert!(
                (d2 - (d1_up - d1_down) / (2.0 * h)).abs() < 1e-6,
                "second at {beta}"
            );
        }
    }

    #[test]
    fn a_separable_slice_stops_at_the_largest_scale_and_an_inverted_one_at_the_smallest() {
        // Every target is the top logit: the likelihood rises with β without end.
        let right = Slice::new(vec![2.0, 0.0, -1.0, 0.5, 3.0, 0.0], 3, vec![0, 1]);
        assert_eq!(right.fit(), MAX_SCALE);
        // Every target is the lowest logit: the flattest scores are the likeliest.
        let wrong = Slice::new(vec![2.0, 0.0, -1.0, 0.5, 3.0, 0.0], 3, vec![2, 2]);
        assert_eq!(wrong.fit(), 1.0 / MAX_SCALE);
    }

    #[test]
    fn the_examples_are_the_held_out_slice_else_a_tenth_of_the_propagated_ones() {
        let example = |seed: bool| Example {
            text: String::new(),
            target: vec![(0, 1.0)],
            weight: 1.0,
            seed,
        };
        // Every third example a seed when `seeds`.
        let set = |n: usize, seeds: bool| TrainSet {
            labels: vec!["a".into(), "b".into()],
            examples: (0..n).map(|i| example(seeds && i % 3 == 0)).collect(),
            counts: Default::default(),
        };
        let t = Calibration::Temperature;
        let big = set(450_000, true);
        assert_eq!(examples(t, &[4, 7], &big), Some(Plan::HeldOut(vec![4, 7])));
        assert_eq!(examples(Calibration::None, &[4, 7], &big), None);
        // 300,000 propagated examples: one in 15 keeps the fold at 20,000.
        let Some(Plan::CrossFit(fold)) = examples(t, &[], &big) else {
            panic!("cross-fitted")
        };
        assert_eq!(fold.len(), CROSS_FIT_MAX);
        assert!(fold.iter().all(|&i| !big.examples[i].seed));
        // The propagated examples are 1, 2, 4, 5, 7, 8, 10, 11, 13, 14, 16, 17, …: the 8th
        // (index 7) is 11, and every 15th after it is 22 or 23 examples further on.
        assert_eq!(&fold[..3], [11, 34, 56]);
        assert!(fold
            .windows(2)
            .all(|w| w[1] - w[0] == 22 || w[1] - w[0] == 23));
        // Fewer: one in ten, from the 6th on.
        let Some(Plan::CrossFit(fold)) = examples(t, &[], &set(300, false)) else {
            panic!("cross-fitted")
        };
        assert_eq!(fold, (5..300).step_by(10).collect::<Vec<_>>());
        assert_eq!(fold.len(), CROSS_FIT_MIN);
        // Too few for the fit; one label; seeds alone: none.
        assert_eq!(examples(t, &[], &set(290, false)), None);
        let one_label = TrainSet {
            labels: vec!["a".into()],
            ..set(300, false)
        };
        assert_eq!(examples(t, &[4, 7], &one_label), None);
        assert_eq!(examples(t, &[], &one_label), None);
        assert_eq!(
            examples(
                t,
                &[],
                &TrainSet {
                    examples: vec![example(true); 500],
                    ..set(0, false)
                }
            ),
            None
        );
    }

    #[test]
    fn an_empty_slice_leaves_the_scores_alone_and_chunks_do_not_move_the_sums() {
        assert_eq!(Slice::new(Vec::new(), 3, Vec::new()).fit(), 1.0);
        // More than one chunk, on a pool of one thread and of four: the same bits.
        let slice = drawn(3 * CHUNK + 17, 6, 1.3, 11);
        let on = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| (slice.fit().to_bits(), slice.nll(0.7).0.to_bits()))
        };
        assert_eq!(on(1), on(4));
    }
}
