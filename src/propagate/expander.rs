//! Expander (Ravi & Diao, AISTATS 2016): the default algorithm.
//!
//! **Input:** a symmetric graph `w`, seeds (`Y_v` = node v's seed weights normalized to sum
//! 1, `a_v` = their sum). **Parameters:** μ1 (`seed_weight`), μ2 (`smoothness_weight`), μ3
//! (`prior_weight`), K (`top_k`). **Output:** per node, at most K `(label, score)` pairs and
//! an `unknown` mass, summing to 1.
//!
//! **Objective** over vectors `Ŷ_v ∈ R^{m+1}` (m labels and the dummy label ⊥; `r` = all mass
//! on ⊥), each undirected edge counted **once**:
//!
//! ```text
//! J(Ŷ) = Σ_v μ1 a_v ‖Ŷ_v − Y_v‖²  +  μ2 Σ_{undirected (u,v)} w_uv ‖Ŷ_u − Ŷ_v‖²  +  μ3 Σ_v ‖Ŷ_v − r‖²
//! ```
//!
//! This is the Expander objective as restated by Kannan et al. (KDD 2016), with the prior
//! pulling towards ⊥ rather than the uniform distribution, so that a node no seed can reach
//! ends with all its mass on ⊥ and abstains instead of inventing a label.
//!
//! **Update** (Jacobi: every node from the previous iterate, then the buffers swap). Setting
//! `∂J/∂Ŷ_v = 0` with the neighbours fixed gives exactly
//!
//! ```text
//! Ŷ_v ← ( μ1 a_v Y_v + μ2 Σ_u w_vu Ŷ_u + μ3 r ) / ( μ1 a_v + μ2 d_v + μ3 ),   d_v = Σ_u w_vu
//! ```
//!
//! followed by Expander's approximation: keep the K largest labels and add the mass of the
//! others to ⊥ (exact when K ≥ m). Counting each edge once is what makes the μ2 in the update
//! equal the μ2 in the objective; counting both directions would double it (the "0.5·μ2"
//! ambiguity in Junto's sources).
//!
//! **Initial iterate:** seeds at `Y_v`, every other node at `r`. Because `Y_v`, `Ŷ_u` and `r`
//! each sum to 1 and the update is their convex combination, every iterate sums to 1 per
//! node (up to rounding): `Σ_l score + unknown = 1`.
//!
//! **Damping** (`damping` = d): `Ŷ_v ← d Ŷ_v + (1 − d) · (the update above)`, written as the
//! same update with `κ_v = M_vv · d/(1 − d)` times the old `Ŷ_v` added above and below the
//! line. Default: 0.5 on a bipartite graph and on an imported edge list, 0 on a kNN graph
//! (see below and [`PropagationConfig::damping`]).
//!
//! **Monotone objective, damped or not.** With `M = μ1 diag(a) + μ2 L + μ3 I` (`L` the
//! graph Laplacian) and `D = diag(M)`, `J(x) = xᵀMx − 2bᵀx + c` and the Jacobi step is
//! `x' = x − D⁻¹g`, `g = Mx − b`; hence `J(x') − J(x) = −(D⁻¹g)ᵀ (2D − M) (D⁻¹g)`.
//! `2D − M = μ1 diag(a) + μ3 I + μ2 (Deg + W)` and `Deg + W` (the signless Laplacian) is
//! positive semidefinite, so `2D − M` is positive definite whenever every node has
//! `μ1 a_v + μ3 > 0` or an edge: **plain Jacobi never increases J**, on bipartite graphs too.
//! (What bipartite graphs do cause is an eigenvalue of `I − D⁻¹M` near −1, i.e. slowly
//! alternating iterates, not a rising objective; damping replaces `D` by `D + K`, which
//! keeps the step a descent step and moves that eigenvalue to about 0.) The tests check
//! this on the reference graphs, including a bipartite one. The top-K truncation (K < m)
//! is not a descent step and can raise J: measured on 300 random 30-node graphs with 6
//! labels and K = 2, 81 runs had at least one rise (largest +2.9% relative); on the 1M-node
//! benchmark (1,000 labels, K = 8) J falls for 5 iterations, then creeps up by 0.1%. With
//! K < m the iterates could also settle into a cycle that never meets the tolerance; the
//! iteration cap ends such a run. (A review saw an early build do so on the bundled replies
//! corpus, 14 labels, K = 8; the current one converges there in about 600 iterations.)

use super::engine::{Finish, NodeCoef, Rule, SeedRows};
use super::PropagationConfig;
use crate::graph::{Graph, GraphKind};

/// Expander's coefficients.
pub(crate) struct Expander<'a> {
    seeds: &'a SeedRows,
    degree: Vec<f64>,
    mu1: f64,
    mu2: f64,
    mu3: f64,
    /// `d / (1 − d)` for damping `d`: the own-value weight, relative to `M_vv`.
    lazy: f64,
}

impl<'a> Expander<'a> {
    pub(crate) fn new(graph: &Graph, seeds: &'a SeedRows, config: &PropagationConfig) -> Self {
        Expander {
            seeds,
            degree: super::degrees(graph),
            mu1: config.seed_weight,
            mu2: config.smoothness_weight,
            mu3: config.prior_weight,
            lazy: {
                let d = config.damping.unwrap_or(match graph.kind() {
                    GraphKind::Bipartite | GraphKind::Edges => 0.5,
                    _ => 0.0,
                });
                d / (1.0 - d)
            },
        }
    }
}

impl Expander<'_> {
    /// The damping `d` in use (the config's, or the graph kind's default).
    pub(crate) fn damping(&self) -> f64 {
        self.lazy / (1.0 + self.lazy)
    }
}

impl Rule for Expander<'_> {
    #[inline]
    fn node(&self, v: usize) -> NodeCoef {
        let a = self.mu1 * self.seeds.mass(v);
        let smooth = self.mu2 * self.degree[v];
        NodeCoef {
            inj: a,
            prior: self.mu3,
            // Keeping d of the old value: weight d/(1−d) · M_vv on it, divided by M_vv/(1−d).
            finish: Finish::Divide((a + smooth + self.mu3) * (1.0 + self.lazy)),
            obj_seed: a,
            obj_prior: self.mu3,
            rho: 1.0,
            obj_self: smooth,
            qscale: 1.0,
            lazy: self.lazy * (a + smooth + self.mu3),
        }
    }

    #[inline]
    fn edge(&self, _v: usize, _u: usize, w: f32) -> f64 {
        self.mu2 * f64::from(w)
    }
}

#[cfg(test)]
mod tests {
    use crate::propagate::{propagate, testgraphs, ClassPrior, PropagationConfig};

    /// Solves `A x = b` (dense, small, diagonally dominant) by Gaussian elimination.
    fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Vec<f64> {
        let n = b.len();
        for i in 0..n {
            let (top, rest) = a.split_at_mut(i + 1);
            let pivot = &top[i];
            for (r, row) in rest.iter_mut().enumerate() {
                let f = row[i] / pivot[i];
                for (x, p) in row[i..].iter_mut().zip(&pivot[i..]) {
                    *x -= f * p;
                }
                b[i + 1 + r] -= f * b[i];
            }
        }
        let mut x = vec![0.0; n];
        for i in (0..n).rev() {
            let s: f64 = (i + 1..n).map(|c| a[i][c] * x[c]).sum();
            x[i] = (b[i] - s) / a[i][i];
        }
        x
    }

    /// The iteration converges to the exact minimizer of the documented objective (each
    /// undirected edge once), and the reported objective is that objective's value. (Class
    /// mass normalization, a step after the iterations, is off: it is not part of J.)
    #[test]
    fn converges_to_the_minimizer_of_the_documented_objective() {
        let g = testgraphs::karate();
        let config = PropagationConfig {
            class_prior: ClassPrior::None,
            iterations: 100_000,
            tolerance: 1e-10,
            smoothness_weight: 0.7,
            prior_weight: 0.05,
            seed_weight: 2.0,
            ..PropagationConfig::default()
        };
        let (mu1, mu2, mu3) = (
            config.seed_weight,
            config.smoothness_weight,
            config.prior_weight,
        );
        let p = propagate(&g, &config).unwrap();
        assert!(p.report().converged);
        let n = g.n_nodes();
        // Columns: label 0, label 1, unknown.
        let mut target = vec![[0.0f64; 3]; n];
        let mut a = vec![0.0f64; n];
        for s in g.seeds() {
            target[s.node as usize][s.label as usize] += 1.0;
            a[s.node as usize] += f64::from(s.weight);
        }
        let mut m = vec![vec![0.0f64; n]; n];
        for v in 0..n {
            let (nb, ws) = g.row(v);
            m[v][v] = mu1 * a[v] + mu3;
            for (&u, &w) in nb.iter().zip(ws) {
                m[v][v] += mu2 * f64::from(w);
                m[v][u as usize] -= mu2 * f64::from(w);
            }
        }
        let mut exact = vec![[0.0f64; 3]; n];
        for col in 0..3 {
            let prior = if col == 2 { mu3 } else { 0.0 };
            let b = (0..n)
                .map(|v| mu1 * a[v] * target[v][col] + prior)
                .collect();
            for (v, x) in solve(m.clone(), b).into_iter().enumerate() {
                exact[v][col] = x;
            }
        }
        let d = p.distribution();
        let mut ours = vec![[0.0f64; 3]; n];
        for v in 0..n {
            for e in d.get(v) {
                ours[v][e.label as usize] = f64::from(e.score);
            }
            ours[v][2] = f64::from(d.unknown(v));
            for col in 0..3 {
                assert!(
                    (ours[v][col] - exact[v][col]).abs() < 1e-5,
                    "node {v}: {:?} vs {:?}",
                    ours[v],
                    exact[v]
                );
            }
        }
        // J from its definition, each undirected edge once.
        let sq = |x: &[f64; 3], y: &[f64; 3]| (0..3).map(|i| (x[i] - y[i]).powi(2)).sum::<f64>();
        let r = [0.0, 0.0, 1.0];
        let mut j = 0.0;
        for v in 0..n {
            j += mu1 * a[v] * sq(&ours[v], &target[v]) + mu3 * sq(&ours[v], &r);
            let (nb, ws) = g.row(v);
            for (&u, &w) in nb.iter().zip(ws) {
                if (u as usize) > v {
                    j += mu2 * f64::from(w) * sq(&ours[v], &ours[u as usize]);
                }
            }
        }
        let reported = p.report().history.last().unwrap().objective;
        assert!(
            (reported - j).abs() < 1e-6 * j,
            "reported {reported}, direct {j}"
        );
    }
}
