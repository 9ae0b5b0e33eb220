//! What happens after the last iteration: every node's distribution is renormalized to sum 1
//! (scikit-learn's final normalization; MAD's renormalization with ⊥), and optionally the
//! class masses are corrected (class mass normalization, Zhu, Ghahramani & Lafferty, ICML
//! 2003).

use rayon::prelude::*;

use super::engine::{SeedRows, BLOCK};
use super::labels::{by_score, write_slots, LabelDistribution, EMPTY};
use super::{ClassPrior, PropagationConfig};
use crate::error::{Error, Result};
use crate::graph::Seed;

/// The priors `q_l` (summing to 1) if class mass normalization is configured: the given
/// ones, or estimated from the seeds. The estimate counts each seeded node once and splits
/// that one count between the node's labels in proportion to their weights: a weight is a
/// confidence (Expander's pull) or a share between one node's labels (`lp`, `spreading`,
/// `mad`), never a class frequency, so one seed of weight 100 must not outweigh a hundred
/// seeds of weight 1 (a review found one such seed turning a whole cluster to its label).
/// Seeds are per node (identical texts share one, and a label given to several of its
/// records is one seed), so the estimate counts distinct seeded texts, while
/// [`class_mass_normalize`] counts the mass per input record: with many identical labelled
/// records, pass the priors (`--prior`, `--prior-from`) instead.
///
/// `seeds` must be merged ([`crate::graph::merge_seeds`]): sorted by node, so that a node's
/// seeds are adjacent.
///
/// # Errors
/// [`Error::InvalidConfig`] (`class_prior`) if a given prior names a label the graph lacks.
pub(crate) fn resolve(
    config: &PropagationConfig,
    labels: &[String],
    seeds: &[Seed],
) -> Result<Option<Vec<f64>>> {
    let ClassPrior::Cmn { priors } = &config.class_prior else {
        return Ok(None);
    };
    let mut q = vec![0.0f64; labels.len()];
    match priors {
        Some(given) => {
            for (name, &p) in given {
                let l = labels
                    .binary_search(name)
                    .map_err(|_| Error::config("class_prior", format!("unknown label {name:?}")))?;
                q[l] = p;
            }
        }
        None => q = seed_class_counts(labels.len(), seeds),
    }
    // Relative to the largest first, so that priors near f64's limits (1e308 each, whose
    // sum overflows) keep their ratios.
    let max = q.iter().copied().fold(0.0f64, f64::max);
    if max <= 0.0 {
        return Err(Error::config(
            "class_prior",
            "priors of the graph's labels are all 0",
        ));
    }
    q.iter_mut().for_each(|x| *x /= max);
    let total: f64 = q.iter().sum();
    q.iter_mut().for_each(|x| *x /= total);
    Ok(Some(q))
}

/// How many seeded nodes of `seeds` carry each of `n_labels` labels: what class mass
/// normalization's priors are estimated from when none are given. Each seeded node counts
/// once, split between its labels in proportion to their weights (see
/// [`super::ClassPrior::Cmn`]). `seeds` must be merged ([`crate::graph::merge_seeds`]), as a
/// graph's are.
///
/// # Panics
/// If a seed's label is not below `n_labels`.
pub fn seed_class_counts(n_labels: usize, seeds: &[Seed]) -> Vec<f64> {
    let mut q = vec![0.0f64; n_labels];
    for node in seeds.chunk_by(|a, b| a.node == b.node) {
        // With one label of weight w this adds w / w = 1 exactly: unit-weight, one-label
        // seeds give the counts they always gave, bit for bit.
        let total: f64 = node.iter().map(|s| f64::from(s.weight)).sum();
        for s in node {
            q[s.label as usize] += f64::from(s.weight) / total;
        }
    }
    q
}

/// Divides every node's labels and unknown by their total; an empty node gets `unknown = 1`.
pub(crate) fn normalize(dist: &mut LabelDistribution) {
    rescale(dist, |_, _| false);
}

/// Lets `f(node, pairs)` rescale each node's `(label, score)` pairs (returning `true` if it
/// did: the label total is then restored), then
/// renormalizes labels + unknown to 1, drops scores that round to 0 in f32, and re-sorts.
fn rescale(dist: &mut LabelDistribution, f: impl Fn(usize, &mut Vec<(u32, f64)>) -> bool + Sync) {
    let k = dist.top_k();
    let (slots, unknown) = dist.raw_mut();
    slots
        .par_chunks_mut(BLOCK * k)
        .zip(unknown.par_chunks_mut(BLOCK))
        .enumerate()
        .for_each_init(Vec::new, |cand, (b, (slots, unknown))| {
            for (i, unk) in unknown.iter_mut().enumerate() {
                let node = &mut slots[i * k..(i + 1) * k];
                cand.clear();
                cand.extend(
                    node.iter()
                        .take_while(|e| e.label != EMPTY.label)
                        .map(|e| (e.label, f64::from(e.score))),
                );
                let mut u = f64::from(*unk);
                let before: f64 = cand.iter().map(|e| e.1).sum();
                if f(b * BLOCK + i, cand) {
                    // Relative to the largest first: rescaled scores can be subnormal (a
                    // tiny prior), and `before / after` would then overflow to infinity.
                    let max = cand.iter().map(|e| e.1).fold(0.0f64, f64::max);
                    if max > 0.0 && max.is_finite() {
                        cand.iter_mut().for_each(|e| e.1 /= max);
                        let after: f64 = cand.iter().map(|e| e.1).sum();
                        cand.iter_mut().for_each(|e| e.1 *= before / after);
                    } else {
                        u += before;
                        cand.clear();
                    }
                }
                let total = u + cand.iter().map(|e| e.1).sum::<f64>();
                if total > 0.0 {
                    u /= total;
                    for e in cand.iter_mut() {
                        e.1 /= total;
                    }
                } else {
                    u = 1.0;
                    cand.clear();
                }
                // Round to f32 first so the order (and its ties) is that of the stored values;
                // a score below f32's range (< 1e-45) is dropped.
                for e in cand.iter_mut() {
                    e.1 = f64::from(e.1 as f32);
                }
                cand.retain(|e| e.1 > 0.0);
                cand.sort_unstable_by(by_score);
                write_slots(node, cand);
                *unk = u as f32;
            }
        });
}

/// Class mass normalization on non-seed nodes: label `l`'s scores are multiplied by
/// `q_l / m_l`, then each node's label scores are rescaled to their previous total so
/// `unknown` is unchanged. A label with `m_l = 0` keeps factor 1 (no node holds it).
///
/// `m_l` counts, besides the nodes' scores, `L · q_l` for `L` labels: as many pseudo-records
/// as labels, spread by the prior (`q` sums to 1), so that a handful of unlabelled records
/// cannot set the masses alone. With one and a uniform prior, CMN keeps the order of its
/// scores; a skewed prior still pulls them its way, which is what a prior is for.
///
/// `m_l` is the total score of `l` over the non-seed text nodes, each counted once per input
/// record it stands for (`multiplicity`, summed in node order). The prior `q` is a prior over
/// inputs, and identical texts share one node: on SwDA 79k utterances are 49.5k nodes, and
/// the most repeated ones ("uh-huh.", "yeah.") are mostly of two labels. Counting each
/// distinct text once understated those labels' mass, and CMN then boosted them too little
/// (measured: SwDA test accuracy 9.9 → 14.6 with K = 64, benches/README.md).
pub(crate) fn class_mass_normalize(
    dist: &mut LabelDistribution,
    seeds: &SeedRows,
    q: &[f64],
    multiplicity: &[u32],
) {
    let mut mass = vec![0.0f64; q.len()];
    for (v, &times) in multiplicity.iter().enumerate() {
        if times == 0 || seeds.is_seed(v) {
            continue;
        }
        for e in dist.get(v) {
            mass[e.label as usize] += f64::from(times) * f64::from(e.score);
        }
    }
    // Add-one smoothing: as many pseudo-records as there are labels, spread by the prior
    // (one a label when the prior is uniform). With thousands of unlabelled records this moves nothing; with a handful (the
    // last few records of a mostly labelled corpus) it fades CMN out instead of letting
    // their own scores set the masses: with one unlabelled record, every label's mass was
    // that record's score, so `q / m` made all its scores equal, and the tie went to the
    // first label by name (a review found it).
    let pseudo = q.len() as f64;
    for (m, &q) in mass.iter_mut().zip(q) {
        *m += pseudo * q;
    }
    let factor: Vec<f64> = q
        .iter()
        .zip(&mass)
        // Capped: `q / m` overflows for a subnormal mass, and a score (at most its label's
        // mass) times a finite factor stays finite.
        .map(|(&q, &m)| if m > 0.0 { (q / m).min(f64::MAX) } else { 1.0 })
        .collect();
    rescale(dist, |v, cand| {
        if seeds.is_seed(v) {
            return false;
        }
        for e in cand.iter_mut() {
            e.1 *= factor[e.0 as usize];
        }
        true
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(node: u32, label: u32, weight: f32) -> Seed {
        Seed {
            node,
            label,
            weight,
        }
    }

    fn estimated(seeds: &[Seed]) -> Vec<f64> {
        let config = PropagationConfig {
            class_prior: ClassPrior::Cmn { priors: None },
            ..PropagationConfig::default()
        };
        let labels = ["a".to_owned(), "b".to_owned(), "c".to_owned()];
        resolve(&config, &labels, seeds).unwrap().unwrap()
    }

    /// Class mass normalization against the documented formula, on more nodes than one
    /// block of the parallel pass (so that a node's id is checked past the first block),
    /// with seeds of several labels in later blocks and records repeated.
    #[test]
    fn class_mass_normalization_follows_its_formula_in_every_block() {
        let (n, k, labels) = (1300usize, 3usize, 4usize);
        let mut x = 99u64;
        let mut next = |m: u64| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) % m
        };
        let mut dist = LabelDistribution::new(n, k, 1.0);
        for v in 0..n {
            // Up to K distinct labels, scores and unknown summing to 1.
            let held = 1 + next(k as u64) as usize;
            let first = next(labels as u64) as u32;
            let raw: Vec<f64> = (0..held).map(|_| (1 + next(100)) as f64).collect();
            let unknown = next(50) as f64;
            let total = unknown + raw.iter().sum::<f64>();
            let mut entries: Vec<(u32, f64)> = raw
                .iter()
                .enumerate()
                .map(|(j, r)| ((first + j as u32) % labels as u32, r / total))
                .collect();
            entries.sort_unstable_by(by_score);
            dist.set(v, &entries, unknown / total);
        }
        // Seeds in the first block and in later ones, some with two labels.
        let mut seeds = Vec::new();
        for v in [3u32, 700, 1100, 1299] {
            seeds.push(seed(v, 0, 1.0));
            if v > 512 {
                seeds.push(seed(v, 2, 3.0));
            }
        }
        let rows = SeedRows::new(n, &seeds);
        let multiplicity: Vec<u32> = (0..n).map(|v| [1, 1, 2, 0, 5][v % 5]).collect();
        let q = [0.1, 0.2, 0.3, 0.4];

        let mut got = dist.clone();
        class_mass_normalize(&mut got, &rows, &q, &multiplicity);
        let mut plain = dist.clone();
        normalize(&mut plain);

        // m_l: the non-seed nodes' scores times their records, plus L·q_l pseudo-records.
        let mut mass = [0.0f64; 4];
        for (v, &times) in multiplicity.iter().enumerate() {
            if times > 0 && !rows.is_seed(v) {
                for e in dist.get(v) {
                    mass[e.label as usize] += f64::from(times) * f64::from(e.score);
                }
            }
        }
        let factor: Vec<f64> = (0..labels).map(|l| q[l] / (mass[l] + 4.0 * q[l])).collect();
        for v in 0..n {
            let score = |d: &LabelDistribution, l: u32| {
                d.get(v)
                    .iter()
                    .find(|e| e.label == l)
                    .map_or(0.0, |e| f64::from(e.score))
            };
            if rows.is_seed(v) {
                // Seeds keep their distribution (renormalized only).
                assert_eq!(got.get(v), plain.get(v), "seed node {v}");
                assert_eq!(got.unknown(v), plain.unknown(v), "seed node {v}");
                continue;
            }
            // Each label times its factor, rescaled to the node's old label total; unknown
            // unchanged.
            let before: f64 = dist.get(v).iter().map(|e| f64::from(e.score)).sum();
            let after: f64 = dist
                .get(v)
                .iter()
                .map(|e| f64::from(e.score) * factor[e.label as usize])
                .sum();
            assert!((f64::from(got.unknown(v)) - f64::from(dist.unknown(v))).abs() < 1e-6);
            for l in 0..labels as u32 {
                let want = score(&dist, l) * factor[l as usize] * before / after;
                let have = score(&got, l);
                assert!(
                    (want - have).abs() < 1e-6,
                    "node {v} label {l}: {have} vs {want}"
                );
            }
        }
    }

    #[test]
    fn seed_priors_count_nodes_and_split_them_by_weight() {
        // A confidence weight changes nothing: one node per label is 1 : 1 : 0.
        assert_eq!(
            estimated(&[seed(0, 0, 100.0), seed(1, 1, 1.0)]),
            [0.5, 0.5, 0.0]
        );
        // A node of two labels counts once, split 3 : 1 by its weights; with the other
        // node's label that is a : b : c = 0.75 : 0.25 : 1 (doubled weights: the same).
        for w in [1.0, 2.0] {
            assert_eq!(
                estimated(&[seed(0, 0, 3.0 * w), seed(0, 1, w), seed(1, 2, 0.5)]),
                [0.375, 0.125, 0.5]
            );
        }
        // Unit weights, one label a node: the counts of seeded nodes.
        assert_eq!(
            estimated(&[
                seed(0, 0, 1.0),
                seed(1, 0, 1.0),
                seed(2, 0, 1.0),
                seed(3, 2, 1.0)
            ]),
            [0.75, 0.0, 0.25]
        );
    }
}
