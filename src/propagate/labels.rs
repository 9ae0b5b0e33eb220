//! [`LabelDistribution`]: the sparse per-node label store of Expander — at most K
//! `(label, score)` pairs per node plus one explicit `unknown` mass (MAD's dummy label ⊥).
//!
//! Memory is `n · (8K + 4)` bytes whatever the number of labels: the pairs live in one flat
//! array with a fixed stride of K slots per node, so a node's slots are contiguous (one cache
//! line for K = 8) and nodes can be written in parallel without offsets.
//!
//! **Invariants**
//! - a node's used slots come first, sorted by score descending, then label id ascending;
//!   unused slots hold [`EMPTY`];
//! - every stored score is finite and `> 0`, every `unknown` finite and `>= 0`;
//! - label ids index the graph's sorted label names, so "by label id" is "by name".

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

/// One `(label, score)` pair.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[repr(C)]
pub struct LabelScore {
    /// Index into the graph's label names.
    pub label: u32,
    /// The label's mass at the node.
    pub score: f32,
}

/// The marker of an unused slot.
pub const EMPTY: LabelScore = LabelScore {
    label: u32::MAX,
    score: 0.0,
};

/// Per-node sparse label distributions: at most K labels and an `unknown` mass per node.
/// (`Debug` prints a summary: nodes and K.)
#[derive(Clone, PartialEq)]
pub struct LabelDistribution {
    k: usize,
    slots: Vec<LabelScore>,
    unknown: Vec<f32>,
}

impl std::fmt::Debug for LabelDistribution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LabelDistribution")
            .field("nodes", &self.unknown.len())
            .field("k", &self.k)
            .finish_non_exhaustive()
    }
}

impl LabelDistribution {
    /// `n` nodes with no label and `unknown` mass `unknown` each.
    pub(crate) fn new(n: usize, k: usize, unknown: f32) -> Self {
        LabelDistribution {
            k,
            slots: vec![EMPTY; n * k],
            unknown: vec![unknown; n],
        }
    }

    /// Number of nodes.
    pub fn n_nodes(&self) -> usize {
        self.unknown.len()
    }

    /// K, the most labels a node holds.
    pub fn top_k(&self) -> usize {
        self.k
    }

    /// The labels of `node`, sorted by score descending then label id ascending.
    ///
    /// # Panics
    /// If `node >= n_nodes()`.
    pub fn get(&self, node: usize) -> &[LabelScore] {
        let all = &self.slots[node * self.k..(node + 1) * self.k];
        let used = all
            .iter()
            .position(|e| e.label == EMPTY.label)
            .unwrap_or(self.k);
        &all[..used]
    }

    /// The `unknown` (⊥) mass of `node`.
    ///
    /// # Panics
    /// If `node >= n_nodes()`.
    pub fn unknown(&self, node: usize) -> f32 {
        self.unknown[node]
    }

    /// The best label of `node` and its score, or `None` when the node abstains (holds no
    /// label at all).
    ///
    /// # Panics
    /// If `node >= n_nodes()`.
    pub fn top(&self, node: usize) -> Option<LabelScore> {
        self.get(node).first().copied()
    }

    /// Number of nodes that abstain among `nodes`.
    ///
    /// # Panics
    /// If `nodes.end > n_nodes()`.
    pub fn count_abstaining(&self, nodes: std::ops::Range<usize>) -> usize {
        nodes.filter(|&v| self.top(v).is_none()).count()
    }

    /// The raw slots (stride K) and unknown masses, for the engine.
    pub(crate) fn raw(&self) -> (&[LabelScore], &[f32]) {
        (&self.slots, &self.unknown)
    }

    /// Mutable raw slots (stride K) and unknown masses, for the engine.
    pub(crate) fn raw_mut(&mut self) -> (&mut [LabelScore], &mut [f32]) {
        (&mut self.slots, &mut self.unknown)
    }

    /// Replaces `node`'s labels with `entries` (already sorted by [`by_score`], at most K)
    /// and its unknown mass.
    pub(crate) fn set(&mut self, node: usize, entries: &[(u32, f64)], unknown: f64) {
        let k = self.k;
        write_slots(&mut self.slots[node * k..(node + 1) * k], entries);
        self.unknown[node] = unknown as f32;
    }
}

/// Writes sorted `entries` (at most `slots.len()`) into `slots`, padding with [`EMPTY`].
pub(crate) fn write_slots(slots: &mut [LabelScore], entries: &[(u32, f64)]) {
    debug_assert!(entries.len() <= slots.len());
    for (i, slot) in slots.iter_mut().enumerate() {
        *slot = match entries.get(i) {
            Some(&(label, score)) => LabelScore {
                label,
                score: score as f32,
            },
            None => EMPTY,
        };
    }
}

/// The output order: score descending, then label id ascending (a total order on distinct
/// labels, so ties never depend on input order or thread count).
#[inline]
pub(crate) fn by_score(a: &(u32, f64), b: &(u32, f64)) -> Ordering {
    b.1.total_cmp(&a.1).then(a.0.cmp(&b.0))
}

/// Keeps the best `k` of `cand` (any order, distinct labels, positive scores), sorted by
/// [`by_score`], and returns the mass of the dropped ones.
///
/// # Complexity
/// O(c + k log k) for `c` candidates (selection, then a sort of the kept ones).
pub(crate) fn keep_top_k(cand: &mut Vec<(u32, f64)>, k: usize) -> f64 {
    let mut dropped = 0.0;
    if cand.len() > k {
        cand.select_nth_unstable_by(k, by_score);
        // The dropped mass must not depend on how the selection permuted them: a sum of
        // integers does not depend on any order (sorting them by label first, as before, was
        // a third of the propagation's time with hundreds of labels a node).
        dropped = match fixed_point_sum(cand[k..].iter().map(|e| e.1)) {
            Some(sum) => sum,
            None => {
                cand[k..].sort_unstable_by_key(|e| e.0);
                cand[k..].iter().map(|e| e.1).sum()
            }
        };
        cand.truncate(k);
    }
    cand.sort_unstable_by(by_score);
    dropped
}

/// Fixed-point unit of [`fixed_point_sum`]: 2⁻⁸⁰.
const EXACT_SCALE: i32 = 80;

/// The sum of non-negative finite values in fixed point: each value is cut to a multiple of
/// 2⁻⁸⁰ (so one below 8e-25, far under the `f32` precision the masses are stored in, counts
/// as 0), the integers are added exactly, and the total is rounded once to `f64`. The
/// result is the same, bit for bit, in any order. `None` if a value is negative, not finite
/// or 2⁴⁰ or more, or the sum reaches 2⁴⁸ (the masses summed here are at most 1).
fn fixed_point_sum(values: impl Iterator<Item = f64>) -> Option<f64> {
    let mut sum: u128 = 0;
    for v in values {
        if !(0.0..1_099_511_627_776.0).contains(&v) {
            return None;
        }
        let bits = v.to_bits();
        let exp = ((bits >> 52) & 0x7ff) as i32;
        let mantissa = if exp == 0 {
            bits & ((1 << 52) - 1)
        } else {
            (bits & ((1 << 52) - 1)) | (1 << 52)
        };
        // v = mantissa · 2^(max(exp, 1) − 1075); in units of 2^-80 that is a shift by:
        let shift = exp.max(1) - 1075 + EXACT_SCALE;
        sum = sum.checked_add(match shift {
            0.. => u128::from(mantissa) << shift,
            -63..0 => u128::from(mantissa >> -shift),
            _ => 0,
        })?;
    }
    Some(sum as f64 * 2f64.powi(-EXACT_SCALE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_top_k_breaks_ties_by_label_and_returns_dropped_mass() {
        let mut c = vec![(5, 0.2), (1, 0.2), (3, 0.5), (0, 0.05), (2, 0.05)];
        let dropped = keep_top_k(&mut c, 3);
        assert_eq!(c, vec![(3, 0.5), (1, 0.2), (5, 0.2)]);
        assert!((dropped - 0.1).abs() < 1e-12);
        let mut short = vec![(2, 0.1), (1, 0.3)];
        assert_eq!(keep_top_k(&mut short, 3), 0.0);
        assert_eq!(short, vec![(1, 0.3), (2, 0.1)]);
    }

    /// The selection keeps exactly the best K by the output order, sorted, and drops the
    /// mass of the others, whatever order the candidates come in: compared with a full sort,
    /// on ties and on ascending, descending and shuffled candidates.
    #[test]
    fn keep_top_k_equals_a_full_sort_for_every_k_and_order() {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for case in 0..300 {
            let n = 1 + (next() % 60) as usize;
            // Few distinct scores, so that ties by label decide often.
            let levels = 1 + next() % 8;
            let mut cand: Vec<(u32, f64)> = (0..n as u32)
                .map(|l| (l * 3 + 1, (1 + next() % levels) as f64 / 16.0))
                .collect();
            match case % 3 {
                0 => cand.sort_by(|a, b| by_score(b, a)),
                1 => cand.sort_by(by_score),
                _ => {}
            }
            for k in [1, 2, 3, 8, 16, 17, 40, 64] {
                let mut want = cand.clone();
                want.sort_by(by_score);
                let dropped_want: f64 = want[k.min(n)..].iter().map(|e| e.1).sum();
                want.truncate(k);
                let mut got = cand.clone();
                let dropped = keep_top_k(&mut got, k);
                assert_eq!(got, want, "case {case}, k {k}");
                // Multiples of 1/16 add exactly in any order.
                assert_eq!(dropped, dropped_want, "case {case}, k {k}");
            }
        }
    }

    #[test]
    fn fixed_point_sums_do_not_depend_on_order() {
        let mut values: Vec<f64> = (1..200).map(|i| 1.0 / f64::from(i * i * 7 + 3)).collect();
        values.extend([0.0, 1e-30, 5e-324, 0.5, 3.0, 1e9]);
        let want = fixed_point_sum(values.iter().copied()).unwrap();
        let plain: f64 = values.iter().sum();
        assert!((want - plain).abs() <= 1e-12 * plain, "{want} vs {plain}");
        for seed in 0..20u64 {
            let mut v = values.clone();
            // A deterministic shuffle.
            for i in (1..v.len()).rev() {
                let j = (seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add((i as u64).wrapping_mul(1442695040888963407))
                    >> 33) as usize
                    % (i + 1);
                v.swap(i, j);
            }
            assert_eq!(
                fixed_point_sum(v.into_iter()).unwrap().to_bits(),
                want.to_bits()
            );
        }
        assert_eq!(fixed_point_sum([0.25, 0.5].into_iter()), Some(0.75));
        assert_eq!(fixed_point_sum(std::iter::empty()), Some(0.0));
        assert_eq!(fixed_point_sum([1.0, f64::NAN].into_iter()), None);
        assert_eq!(fixed_point_sum([2e12].into_iter()), None);
        assert_eq!(fixed_point_sum(std::iter::repeat_n(1e12, 1000)), None);
        assert_eq!(fixed_point_sum([-1.0].into_iter()), None);
    }

    /// Values under 2⁻²⁸ take the right-shift path: each counts as itself cut down to a
    /// multiple of 2⁻⁸⁰, not as 0.
    #[test]
    fn fixed_point_sum_keeps_tiny_values_down_to_the_unit() {
        let unit = 2f64.powi(-80);
        // 3·2⁻⁷⁵ and 2⁻⁴⁰ are multiples of the unit, so they add exactly.
        let a = 3.0 * 2f64.powi(-75);
        let b = 2f64.powi(-40);
        assert_eq!(fixed_point_sum([a].into_iter()), Some(a));
        assert_eq!(fixed_point_sum([a, b].into_iter()), Some(a + b));
        // 5·2⁻⁸⁰ + 2⁻⁹⁰: the part below the unit is cut off.
        let c = 5.0 * unit + 2f64.powi(-90);
        assert_eq!(fixed_point_sum([c].into_iter()), Some(5.0 * unit));
        // 1e-10 is kept to within one unit.
        let got = fixed_point_sum([1e-10].into_iter()).unwrap();
        assert!(got <= 1e-10 && 1e-10 - got < unit, "{got}");
    }

    #[test]
    fn get_returns_only_used_slots() {
        let mut d = LabelDistribution::new(3, 2, 1.0);
        d.set(1, &[(4, 0.75), (0, 0.25)], 0.0);
        d.set(2, &[(7, 0.5)], 0.5);
        assert!(d.get(0).is_empty() && d.top(0).is_none());
        assert_eq!(d.get(1).len(), 2);
        assert_eq!(
            d.top(2),
            Some(LabelScore {
                label: 7,
                score: 0.5
            })
        );
        assert_eq!(d.unknown(0), 1.0);
        assert_eq!(d.count_abstaining(0..3), 1);
    }

    /// A node abstains when it holds no label, whatever its unknown mass.
    #[test]
    fn count_abstaining_counts_the_nodes_without_a_label_in_the_range() {
        let mut d = LabelDistribution::new(4, 2, 0.0);
        d.set(1, &[(3, 0.5)], 0.5);
        d.set(2, &[], 1.0);
        assert_eq!(d.count_abstaining(0..4), 3);
        assert_eq!(d.count_abstaining(1..2), 0);
        assert_eq!(d.count_abstaining(2..4), 2);
        assert_eq!(d.count_abstaining(0..0), 0);
    }

    /// `Debug` prints the summary the type documents (nodes and K), not the slots.
    #[test]
    fn debug_prints_nodes_and_k() {
        let d = LabelDistribution::new(3, 2, 1.0);
        let s = format!("{d:?}");
        assert!(s.starts_with("LabelDistribution"), "{s}");
        assert!(s.contains("nodes: 3") && s.contains("k: 2"), "{s}");
        assert!(!s.contains("slots"), "{s}");
    }
}
