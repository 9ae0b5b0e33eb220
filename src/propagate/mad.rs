//! Modified Adsorption (Talukdar & Crammer, ECML-PKDD 2009), with Junto's update schedule.
//!
//! **Input:** a symmetric graph `W`, seeds (`Y_v` normalized to sum 1). **Parameters:** μ1,
//! μ2, μ3, β, K. **Output:** per node at most K labels and ⊥, renormalized to sum 1 at the
//! end (Junto's evaluation likewise renormalizes; the iterates themselves are MAD's
//! unnormalized scores).
//!
//! **Random-walk probabilities** per node v, from the entropy `H(v)` (bits) of its normalized
//! edge weights `W_vu / d_v`:
//!
//! ```text
//! c_v = log β / log(β + e^{H(v)})          (the paper's form, with the exponential)
//! d_v = (1 − c_v) √H(v) if v is a seed, else 0
//!       (Junto: a seed with d_v = 0 — one neighbour or none — gets c_v = 0.01, d_v = 0.99)
//! z_v = max(c_v + d_v, 1);  p_cont = c_v / z_v;  p_inj = d_v / z_v;  p_abnd = 1 − p_cont − p_inj
//! ```
//!
//! **Low-entropy seeds inject little.** `d_v` grows with `√H(v)`: a seed whose edge weight
//! sits almost all on one neighbour has `H(v)` near 0, so it continues its walk there rather
//! than inject its own label, and Junto's fallback applies only at exactly 0. Adding one edge
//! of weight 1e-9 to a one-neighbour seed thus drops its `p_inj` from 0.99 to about 7e-5, and
//! the seed may take its neighbour's label. That is the published heuristic; use Expander
//! (the default), whose seed term does not depend on the neighbourhood, when seeds must hold.
//!
//! **Which c_v.** The paper writes `log β / log(β + e^{H})`; Junto 1.x drops the `exp`. We
//! implement the paper's form: it is the published algorithm, `c_v < 1` for every node, so
//! every non-seed has `p_abnd > 0` (a node of a seedless component always receives ⊥ mass and
//! abstains, and every row of the system is strictly diagonally dominant); with Junto's form a
//! single-neighbour node gets `c_v = 1` and no abandonment at all.
//!
//! **Objective** (undirected edges once, `W'_uv = (p_u^cont + p_v^cont) W_uv`):
//!
//! ```text
//! C(Ŷ) = Σ_v μ1 p_v^inj ‖Ŷ_v − Y_v‖² + μ2 Σ_{(u,v)} W'_uv ‖Ŷ_u − Ŷ_v‖² + μ3 Σ_v ‖Ŷ_v − p_v^abnd r‖²
//! ```
//!
//! **Update** (Jacobi; the paper's algorithm, Junto's code without the commented-out 0.5):
//!
//! ```text
//! M_vv = μ1 p_v^inj + μ2 Σ_u W'_vu + μ3
//! Ŷ_v ← ( μ1 p_v^inj Y_v + μ2 Σ_u W'_vu Ŷ_u + μ3 p_v^abnd r ) / M_vv,  then top-K (rest → ⊥)
//! ```
//!
//! The initial iterate is `Ŷ = Y` (non-seeds empty), as in the paper. The same argument as
//! for Expander (`2D − M` is positive definite) shows the objective never rises with K ≥ m.

use super::engine::{Finish, NodeCoef, Rule, SeedRows};
use super::PropagationConfig;
use crate::graph::Graph;

/// Per-node random-walk probabilities `(p_inj, p_cont, p_abnd)`.
pub(crate) fn walk_probabilities(graph: &Graph, seeds: &SeedRows, beta: f64) -> Vec<[f64; 3]> {
    (0..graph.n_nodes())
        .map(|v| {
            // The entropy of the row's transition probabilities (a shard keeps it for the
            // rows it dropped).
            let (_, h) = graph.figures(v);
            let mut c = beta.ln() / (beta + h.exp()).ln();
            let mut dv = 0.0;
            if seeds.is_seed(v) {
                dv = (1.0 - c) * h.sqrt();
                if dv == 0.0 {
                    (c, dv) = (0.01, 0.99);
                }
            }
            let z = (c + dv).max(1.0);
            let (cont, inj) = (c / z, dv / z);
            [inj, cont, (1.0 - cont - inj).max(0.0)]
        })
        .collect()
}

/// MAD's coefficients.
pub(crate) struct Mad {
    /// `(p_inj, p_cont, p_abnd)` per node.
    p: Vec<[f64; 3]>,
    /// `Σ_u W'_vu` per node.
    wdeg: Vec<f64>,
    mu1: f64,
    mu2: f64,
    mu3: f64,
}

impl Mad {
    pub(crate) fn new(graph: &Graph, seeds: &SeedRows, config: &PropagationConfig) -> Self {
        let p = walk_probabilities(graph, seeds, config.beta);
        // For the rows the graph holds: a shard's worker sweeps only those.
        let rows = graph.rows();
        let wdeg = (0..graph.n_nodes())
            .map(|v| {
                if !rows.contains(&v) {
                    return f64::NAN;
                }
                let (nbrs, ws) = graph.row(v);
                nbrs.iter()
                    .zip(ws)
                    .map(|(&u, &w)| (p[v][1] + p[u as usize][1]) * f64::from(w))
                    .sum()
            })
            .collect();
        Mad {
            p,
            wdeg,
            mu1: config.seed_weight,
            mu2: config.smoothness_weight,
            mu3: config.prior_weight,
        }
    }
}

impl Rule for Mad {
    #[inline]
    fn node(&self, v: usize) -> NodeCoef {
        let [inj, _, abnd] = self.p[v];
        let smooth = self.mu2 * self.wdeg[v];
        NodeCoef {
            inj: self.mu1 * inj,
            prior: self.mu3 * abnd,
            finish: Finish::Divide(self.mu1 * inj + smooth + self.mu3),
            obj_seed: self.mu1 * inj,
            obj_prior: self.mu3,
            rho: abnd,
            obj_self: smooth,
            qscale: 1.0,
            lazy: 0.0,
        }
    }

    #[inline]
    fn edge(&self, v: usize, u: usize, w: f32) -> f64 {
        self.mu2 * (self.p[v][1] + self.p[u][1]) * f64::from(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::propagate::testgraphs;

    #[test]
    fn walk_probabilities_are_distributions_and_hubs_abandon_more() {
        let g = testgraphs::star(6);
        let seeds = SeedRows::new(g.n_nodes(), g.seeds());
        let p = walk_probabilities(&g, &seeds, 2.0);
        for q in &p {
            assert!(q.iter().all(|&x| (0.0..=1.0).contains(&x)));
            assert!((q.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
        // Node 0 is the hub (entropy log2 6), node 2 a non-seed leaf (entropy 0).
        assert!(
            p[0][2] > p[2][2],
            "hub abandons more: {:?} vs {:?}",
            p[0],
            p[2]
        );
        // Leaf 1 is a seed with one neighbour: Junto's fallback gives it p_inj = 0.99.
        assert!((p[1][0] - 0.99).abs() < 1e-12);
        // Non-seed leaf: c = ln 2 / ln 3.
        assert!((p[2][1] - 2f64.ln() / 3f64.ln()).abs() < 1e-12);
    }

    /// A seed of more than one bit of entropy injects by the paper's formula:
    /// `d_v = (1 − c_v) √H(v)`, and as `c_v + d_v > 1` both are divided by `z_v = c_v + d_v`,
    /// leaving nothing to abandon.
    #[test]
    fn a_seed_hub_injects_by_its_entropy() {
        let g = testgraphs::from_tsv("h\ta\t1\nh\tb\t1\nh\tc\t1\nh\td\t1\n", "h\tx\n");
        let seeds = SeedRows::new(g.n_nodes(), g.seeds());
        let beta = 2.0f64;
        let p = walk_probabilities(&g, &seeds, beta);
        // Four equal edges: H = log2 4 = 2 bits.
        let h = 2.0f64;
        let c = beta.ln() / (beta + h.exp()).ln();
        let d = (1.0 - c) * h.sqrt();
        assert!(c + d > 1.0);
        let want = [d / (c + d), c / (c + d), 0.0];
        for (got, want) in p[0].iter().zip(want) {
            assert!((got - want).abs() < 1e-12, "{:?} vs {want:?}", p[0]);
        }
    }
}
