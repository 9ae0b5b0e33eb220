//! The classic algorithms, with scikit-learn's semantics so results can be compared with
//! `sklearn.semi_supervised` (checked against scikit-learn 1.9.1 by the golden test below).
//!
//! **Label propagation** (Zhu & Ghahramani, CMU-CALD-02-107, 2002; sklearn
//! `LabelPropagation`). `P = D⁻¹W` (row-normalized; a zero-degree row stays 0). Start from
//! `Y` (seeds one-hot / their normalized seed weights, other nodes 0). Each iteration:
//! `F ← P F`, divide each row by its sum (a zero sum is left as is), then reset seed rows to
//! `Y_v` (hard clamping). Reported objective: the harmonic energy
//! `Σ_{undirected (u,v)} w_uv ‖F_u − F_v‖²`. The row renormalization is not a step of any
//! quadratic minimization, so this energy is *not* guaranteed to fall monotonically, and it
//! does rise on the bipartite test graph at the first iteration, when unlabeled rows jump from
//! 0 to mass 1; only Expander, MAD and spreading carry that guarantee.
//!
//! **Label spreading** (Zhou, Bousquet, Lal, Weston & Schölkopf, NIPS 2004; sklearn
//! `LabelSpreading`). `S = D^{-1/2} W D^{-1/2}` with zero diagonal. Start from `F = Y`. Each
//! iteration: `F ← α S F + (1 − α) Y` (soft clamping). Reported objective, with
//! `μ = (1 − α)/α`: `Q(F) = Σ_v ‖F_v‖² − Σ_{u,v} S_uv ⟨F_u, F_v⟩ + μ Σ_v ‖F_v − Y_v‖²`. The
//! iteration is the gradient step `F ← F − α ∇Q/2`, and since the eigenvalues of `S` lie in
//! `[−1, 1]`, `α (2 + μ) < 2` makes `Q` fall monotonically.
//!
//! **Both:** after the last iteration every row is divided by its sum (sklearn's final
//! normalization); a node whose row is all zero (no seed reaches it, or degree 0) abstains
//! with `unknown = 1` where sklearn returns a zero row (or NaN for a zero degree in
//! `LabelPropagation`). Stopping: sklearn stops when `Σ |F_t − F_{t−1}| < tol` over the whole
//! matrix; use [`super::ChangeNorm::Sum`] with `tolerance = 1e-3` and `iterations = max_iter`
//! for identical iteration counts. Labels beyond K are truncated into `unknown` as for the
//! other algorithms, so results are exact only with `top_k` ≥ the number of labels; and
//! scikit-learn has no class mass normalization, so turn off the default one
//! ([`super::ClassPrior::None`], `--class-prior none`).

use super::engine::{Finish, NodeCoef, Rule, SeedRows};
use crate::graph::Graph;

/// Label propagation's coefficients.
pub(crate) struct Lp<'a> {
    seeds: &'a SeedRows,
    degree: Vec<f64>,
}

impl<'a> Lp<'a> {
    pub(crate) fn new(graph: &Graph, seeds: &'a SeedRows) -> Self {
        Lp {
            seeds,
            degree: super::degrees(graph),
        }
    }
}

impl Rule for Lp<'_> {
    #[inline]
    fn node(&self, v: usize) -> NodeCoef {
        let d = self.degree[v];
        NodeCoef {
            inj: 0.0,
            prior: 0.0,
            finish: if self.seeds.is_seed(v) {
                Finish::Clamp
            } else {
                Finish::Normalize
            },
            obj_seed: 0.0,
            obj_prior: 0.0,
            rho: 0.0,
            obj_self: d,
            qscale: d,
            lazy: 0.0,
        }
    }

    #[inline]
    fn edge(&self, v: usize, _u: usize, w: f32) -> f64 {
        // Only called for v's own edges, so d_v > 0.
        f64::from(w) / self.degree[v]
    }
}

/// Label spreading's coefficients.
pub(crate) struct Spreading {
    inv_sqrt_degree: Vec<f64>,
    alpha: f64,
}

impl Spreading {
    pub(crate) fn new(graph: &Graph, alpha: f64) -> Self {
        let inv_sqrt_degree = super::degrees(graph)
            .into_iter()
            .map(|d| if d > 0.0 { 1.0 / d.sqrt() } else { 0.0 })
            .collect();
        Spreading {
            inv_sqrt_degree,
            alpha,
        }
    }
}

impl Rule for Spreading {
    #[inline]
    fn node(&self, _v: usize) -> NodeCoef {
        NodeCoef {
            inj: 1.0 - self.alpha,
            prior: 0.0,
            finish: Finish::Divide(1.0),
            obj_seed: (1.0 - self.alpha) / self.alpha,
            obj_prior: 0.0,
            rho: 0.0,
            obj_self: 1.0,
            qscale: 1.0 / self.alpha,
            lazy: 0.0,
        }
    }

    #[inline]
    fn edge(&self, v: usize, u: usize, w: f32) -> f64 {
        self.alpha * f64::from(w) * self.inv_sqrt_degree[v] * self.inv_sqrt_degree[u]
    }
}

#[cfg(test)]
mod tests {
    use crate::graph::{GraphKind, Seed};
    use crate::propagate::{
        propagate, testgraphs, Algorithm, ChangeNorm, ClassPrior, PropagationConfig,
    };

    /// A graph from the golden folder's `<name>.edges.tsv` / `<name>.seeds.tsv` (integer ids).
    fn golden_graph(edges: &str, seeds: &str, n: usize, classes: &[String]) -> crate::graph::Graph {
        let triplets = edges
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                (
                    f[0].parse().unwrap(),
                    f[1].parse().unwrap(),
                    f[2].parse().unwrap(),
                )
            })
            .collect();
        let seeds = seeds
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                let label = classes.iter().position(|c| c == f[1]).unwrap() as u32;
                Seed {
                    node: f[0].parse().unwrap(),
                    label,
                    weight: 1.0,
                }
            })
            .collect();
        let keys = (0..n).map(|i| i.to_string()).collect();
        testgraphs::build(GraphKind::Edges, keys, n, triplets, classes.to_vec(), seeds)
    }

    /// `tests/golden/sklearn/expected.json` was written by `make_expected.py` (scikit-learn
    /// 1.9.1); every case must match to 1e-5, with the same iteration count and the same
    /// argmax, and all-zero sklearn rows must be abstentions here.
    #[test]
    fn lp_and_spreading_match_scikit_learn() {
        let expected: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/golden/sklearn/expected.json")).unwrap();
        let files = |name: &str| match name {
            "karate" => (
                include_str!("../../tests/golden/sklearn/karate.edges.tsv"),
                include_str!("../../tests/golden/sklearn/karate.seeds.tsv"),
            ),
            "random60" => (
                include_str!("../../tests/golden/sklearn/random60.edges.tsv"),
                include_str!("../../tests/golden/sklearn/random60.seeds.tsv"),
            ),
            other => panic!("unknown golden graph {other}"),
        };
        let mut worst = 0.0f64;
        let cases = expected["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 8);
        for case in cases {
            let classes: Vec<String> = serde_json::from_value(case["classes"].clone()).unwrap();
            let dists: Vec<Vec<f64>> =
                serde_json::from_value(case["label_distributions"].clone()).unwrap();
            let (edges, seeds) = files(case["graph"].as_str().unwrap());
            let g = golden_graph(edges, seeds, dists.len(), &classes);
            let config = PropagationConfig {
                algorithm: case["algorithm"].as_str().unwrap().parse().unwrap(),
                alpha: case["alpha"].as_f64().unwrap_or(0.2),
                iterations: case["max_iter"].as_u64().unwrap() as usize,
                tolerance: case["tol"].as_f64().unwrap(),
                change_norm: ChangeNorm::Sum,
                class_prior: ClassPrior::None,
                ..PropagationConfig::default()
            };
            assert!(matches!(
                config.algorithm,
                Algorithm::Lp | Algorithm::Spreading
            ));
            let what = format!("{} {} {:?}", case["graph"], config.algorithm, case["tol"]);
            let p = propagate(&g, &config).unwrap();
            assert_eq!(
                p.report().iterations as u64,
                case["n_iter"].as_u64().unwrap(),
                "{what}: n_iter"
            );
            let d = p.distribution();
            for (v, row) in dists.iter().enumerate() {
                let mut ours = vec![0.0f64; classes.len()];
                for e in d.get(v) {
                    ours[e.label as usize] = f64::from(e.score);
                }
                for (l, (&a, &b)) in ours.iter().zip(row).enumerate() {
                    worst = worst.max((a - b).abs());
                    assert!(
                        (a - b).abs() <= 1e-5,
                        "{what}: node {v} label {l}: ours {a}, sklearn {b}"
                    );
                }
                if row.iter().sum::<f64>() == 0.0 {
                    assert_eq!(
                        (d.get(v).len(), d.unknown(v)),
                        (0, 1.0),
                        "{what}: node {v} abstains"
                    );
                } else {
                    assert!(d.unknown(v) == 0.0, "{what}: node {v}");
                    let want = case["transduction"][v].as_str().unwrap();
                    let top = d.top(v).unwrap();
                    // Compare argmax only where sklearn's is not a near-tie.
                    let mut sorted = row.clone();
                    sorted.sort_by(|a, b| b.total_cmp(a));
                    if sorted.len() < 2 || sorted[0] - sorted[1] > 1e-4 {
                        assert_eq!(classes[top.label as usize], want, "{what}: node {v}");
                    }
                }
            }
        }
        eprintln!("sklearn golden: max abs error {worst:.3e}");
    }
}
