//! The shared Jacobi sweep: one synchronous pass over all nodes that computes every node's new
//! sparse distribution from the previous iterate, the objective of the previous iterate, and
//! the change. Each algorithm only supplies per-node and per-edge coefficients (a [`Rule`]).
//!
//! **The generic update** for node v (Ŷ_u from the previous iterate, `r` = all mass on ⊥):
//!
//! ```text
//! raw_v = inj_v · Y_v + Σ_{u ∈ N(v)} c_vu · Ŷ_u + prior_v · r        (labels and ⊥ alike)
//! Ŷ_v'  = finish(raw_v)   — divide by M_vv | renormalize | clamp to Y_v
//! Ŷ_v'  = top-K labels of Ŷ_v'; the dropped mass is added to ⊥
//! ```
//!
//! **The generic objective** of an iterate, accumulated in the same pass (f64):
//!
//! ```text
//! J = Σ_v [ A_v ‖Ŷ_v − Y_v‖² + B_v ‖Ŷ_v − ρ_v r‖² + C_v ‖Ŷ_v‖² − q_v Σ_{u ∈ N(v)} c_vu ⟨Ŷ_v, Ŷ_u⟩ ]
//! ```
//!
//! If `s_vu = q_v c_vu` is symmetric and `C_v = Σ_u s_vu`, the last two terms are
//! `Σ_{undirected (u,v)} s_uv ‖Ŷ_u − Ŷ_v‖²`: each undirected edge counted once. (Expander
//! and MAD have `q = 1` and a symmetric `c`; LP's `c = w / d_v` is not symmetric, but its
//! `q c = w` is.)
//!
//! **Determinism.** Nodes are processed in fixed blocks of [`BLOCK`] nodes; within a node,
//! sums run in neighbour (CSR) order; block results are combined in block order. Nothing
//! depends on the number of threads, so output bytes are identical for any `--threads`.

use rayon::prelude::*;

use super::labels::{keep_top_k, write_slots, LabelDistribution, LabelScore, EMPTY};
use crate::graph::{Graph, Seed};

/// Nodes per parallel work unit (fixed, so results do not depend on the thread count).
pub(crate) const BLOCK: usize = 512;

/// How a node's accumulated vector becomes its new distribution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Finish {
    /// Divide by `M_vv` (Expander, MAD). A zero divisor keeps the previous distribution.
    Divide(f64),
    /// Divide by the total mass, labels and ⊥ (label propagation's row renormalization).
    Normalize,
    /// Replace by the node's seed distribution (label propagation's hard clamping).
    Clamp,
}

/// Per-node coefficients of the update and of the objective (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct NodeCoef {
    /// Weight of `Y_v` in the update.
    pub inj: f64,
    /// Weight of `r` (⊥) in the update.
    pub prior: f64,
    /// How the update ends.
    pub finish: Finish,
    /// `A_v`.
    pub obj_seed: f64,
    /// `B_v`.
    pub obj_prior: f64,
    /// `ρ_v`.
    pub rho: f64,
    /// `C_v`.
    pub obj_self: f64,
    /// `q_v`.
    pub qscale: f64,
    /// Weight of the node's own previous distribution in the update (damping; the `Divide`
    /// divisor includes it). 0 for plain Jacobi.
    pub lazy: f64,
}

/// An algorithm, as the sweep sees it.
pub(crate) trait Rule: Sync {
    /// Coefficients of node `v`.
    fn node(&self, v: usize) -> NodeCoef;
    /// `c_vu` for the edge `v → u` of weight `w`.
    fn edge(&self, v: usize, u: usize, w: f32) -> f64;
}

/// Seeds grouped by node: `Y_v` normalized to sum 1, and `a_v`, the node's total seed weight.
#[derive(Debug, Clone)]
pub(crate) struct SeedRows {
    offsets: Vec<u32>,
    entries: Vec<(u32, f64)>,
    mass: Vec<f64>,
}

impl SeedRows {
    /// Groups `seeds` (sorted by node then label, one per pair: [`crate::graph::merge_seeds`];
    /// a repeated pair would add its weights).
    pub(crate) fn new(n: usize, seeds: &[Seed]) -> Self {
        let mut offsets = vec![0u32; n + 1];
        let mut entries: Vec<(u32, f64)> = Vec::with_capacity(seeds.len());
        let mut mass = vec![0.0f64; n];
        let mut nodes: Vec<u32> = Vec::with_capacity(seeds.len());
        for s in seeds {
            let w = f64::from(s.weight);
            match (nodes.last(), entries.last_mut()) {
                (Some(&last), Some(e)) if last == s.node && e.0 == s.label => e.1 += w,
                _ => {
                    nodes.push(s.node);
                    entries.push((s.label, w));
                }
            }
            mass[s.node as usize] += w;
        }
        for &v in &nodes {
            offsets[v as usize + 1] += 1;
        }
        for i in 0..n {
            offsets[i + 1] += offsets[i];
        }
        for (e, &v) in entries.iter_mut().zip(&nodes) {
            e.1 /= mass[v as usize];
        }
        SeedRows {
            offsets,
            entries,
            mass,
        }
    }

    /// `Y_v`: `(label, share)` pairs summing to 1; empty for a non-seed.
    #[inline]
    pub(crate) fn row(&self, v: usize) -> &[(u32, f64)] {
        &self.entries[self.offsets[v] as usize..self.offsets[v + 1] as usize]
    }

    /// `a_v`: the node's total seed weight (0 for a non-seed).
    #[inline]
    pub(crate) fn mass(&self, v: usize) -> f64 {
        self.mass[v]
    }

    /// Whether `v` is a seed.
    #[inline]
    pub(crate) fn is_seed(&self, v: usize) -> bool {
        self.mass[v] > 0.0
    }

    /// The initial iterate: seeds hold `Y_v` (top-K), other nodes hold `non_seed_unknown` on ⊥.
    pub(crate) fn initial(&self, k: usize, non_seed_unknown: f32) -> LabelDistribution {
        self.initial_of(0..self.mass.len(), k, non_seed_unknown)
    }

    /// [`SeedRows::initial`] of the graph's `nodes`, in that order (a worker's share).
    pub(crate) fn initial_of(
        &self,
        nodes: impl ExactSizeIterator<Item = usize>,
        k: usize,
        non_seed_unknown: f32,
    ) -> LabelDistribution {
        let mut d = LabelDistribution::new(nodes.len(), k, non_seed_unknown);
        let mut cand = Vec::new();
        for (i, v) in nodes.enumerate().filter(|&(_, v)| self.is_seed(v)) {
            cand.clear();
            cand.extend_from_slice(self.row(v));
            let dropped = keep_top_k(&mut cand, k);
            d.set(i, &cand, dropped);
        }
        d
    }
}

/// What one sweep measured.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct SweepStats {
    /// Objective of the previous iterate.
    pub objective: f64,
    /// Largest per-node L1 change (labels and ⊥).
    pub max_change: f64,
    /// Sum of per-node L1 changes.
    pub sum_change: f64,
    /// Nodes that held no label before the sweep and hold one after it: while there are any,
    /// the labels are still reaching new parts of the graph.
    pub reached: u64,
}

/// Per-thread scratch: a dense accumulator over labels with a touched list, and the dense
/// previous distribution of the current node. O(labels) per thread, not per node.
struct Scratch {
    acc: Vec<f64>,
    stamp: Vec<u32>,
    cur: u32,
    touched: Vec<u32>,
    old: Vec<f64>,
    cand: Vec<(u32, f64)>,
}

impl Scratch {
    fn new(n_labels: usize) -> Self {
        Scratch {
            acc: vec![0.0; n_labels],
            stamp: vec![0; n_labels],
            cur: 0,
            touched: Vec::new(),
            old: vec![0.0; n_labels],
            cand: Vec::new(),
        }
    }

    #[inline]
    fn add(&mut self, label: u32, x: f64) {
        let l = label as usize;
        if self.stamp[l] != self.cur {
            self.stamp[l] = self.cur;
            self.acc[l] = 0.0;
            self.touched.push(label);
        }
        self.acc[l] += x;
    }

    fn next_node(&mut self) {
        if self.cur == u32::MAX {
            self.stamp.fill(0);
            self.cur = 0;
        }
        self.cur += 1;
        self.touched.clear();
    }
}

/// Previous-iterate slots of node `u` (stride `k`), up to the first empty slot.
#[inline]
fn used(slots: &[LabelScore], u: usize, k: usize) -> &[LabelScore] {
    let all = &slots[u * k..(u + 1) * k];
    match all.iter().position(|e| e.label == EMPTY.label) {
        Some(p) => &all[..p],
        None => all,
    }
}

/// Which nodes a sweep's distributions hold, and in what order: every node of the [`Graph`]
/// by its id, or one worker's share (its own nodes, then copies of the neighbours other
/// workers own), numbered locally.
pub(crate) trait Topology: Sync {
    /// Neighbours of local node `v` (graph ids) and the edges' weights, in CSR order.
    fn row(&self, v: usize) -> (&[u32], &[f32]);
    /// The graph's id of local node `v`: the id the rule and the seeds know it by.
    fn global(&self, v: usize) -> usize;
    /// The local id of graph node `u`, one of the neighbours [`Topology::row`] names.
    fn local(&self, u: usize) -> usize;
}

impl Topology for Graph {
    #[inline]
    fn row(&self, v: usize) -> (&[u32], &[f32]) {
        Graph::row(self, v)
    }

    #[inline]
    fn global(&self, v: usize) -> usize {
        v
    }

    #[inline]
    fn local(&self, u: usize) -> usize {
        u
    }
}

/// Sums per-block statistics in block order (the order that makes a sweep's figures the same
/// however its blocks were shared out).
pub(crate) fn combine(blocks: &[SweepStats]) -> SweepStats {
    let mut total = SweepStats::default();
    for b in blocks {
        total.objective += b.objective;
        total.sum_change += b.sum_change;
        total.max_change = total.max_change.max(b.max_change);
        total.reached += b.reached;
    }
    total
}

/// One synchronous Jacobi pass over local nodes `0..updated` of `topology` (the others are
/// only read): reads `prev`, writes `next`, and returns, per block of [`BLOCK`] nodes in
/// order, the objective of `prev` and the change from `prev` to `next`.
///
/// # Complexity
/// O(Σ_v deg(v) · K + n · c log K) time for `c` candidate labels per node; O(labels) scratch
/// per thread.
pub(crate) fn sweep_blocks<T: Topology, R: Rule>(
    topology: &T,
    seeds: &SeedRows,
    rule: &R,
    n_labels: usize,
    prev: &LabelDistribution,
    next: &mut LabelDistribution,
    updated: usize,
) -> Vec<SweepStats> {
    let k = prev.top_k();
    let (pslots, punk) = prev.raw();
    let (nslots, nunk) = next.raw_mut();
    nslots[..updated * k]
        .par_chunks_mut(BLOCK * k)
        .zip(nunk[..updated].par_chunks_mut(BLOCK))
        .enumerate()
        .map_init(
            || Scratch::new(n_labels),
            |s, (b, (out_slots, out_unk))| {
                let mut stats = SweepStats::default();
                for (i, unk) in out_unk.iter_mut().enumerate() {
                    let v = b * BLOCK + i;
                    let out = &mut out_slots[i * k..(i + 1) * k];
                    let was_empty = pslots[v * k].label == EMPTY.label;
                    let (obj, change) =
                        update_node(topology, seeds, rule, k, pslots, punk, v, s, out, unk);
                    stats.objective += obj;
                    stats.sum_change += change;
                    stats.max_change = stats.max_change.max(change);
                    stats.reached += u64::from(was_empty && out[0].label != EMPTY.label);
                }
                stats
            },
        )
        .collect()
}

/// Updates local node `v`: returns its objective term (previous iterate) and its L1 change.
#[allow(clippy::too_many_arguments)]
#[inline]
fn update_node<T: Topology, R: Rule>(
    topology: &T,
    seeds: &SeedRows,
    rule: &R,
    k: usize,
    pslots: &[LabelScore],
    punk: &[f32],
    v: usize,
    s: &mut Scratch,
    out: &mut [LabelScore],
    out_unk: &mut f32,
) -> (f64, f64) {
    let g = topology.global(v);
    let nc = rule.node(g);
    let old = used(pslots, v, k);
    let old_unk = f64::from(punk[v]);
    let y = seeds.row(g);

    // Objective self terms of the previous iterate.
    let mut norm2 = old_unk * old_unk;
    for e in old {
        let x = f64::from(e.score);
        s.old[e.label as usize] = x;
        norm2 += x * x;
    }
    let (mut y_dot, mut y2) = (0.0, 0.0);
    for &(l, yl) in y {
        y_dot += s.old[l as usize] * yl;
        y2 += yl * yl;
    }
    let mut obj = nc.obj_seed * (norm2 - 2.0 * y_dot + y2)
        + nc.obj_prior * (norm2 - 2.0 * nc.rho * old_unk + nc.rho * nc.rho)
        + nc.obj_self * norm2;

    // Neighbour messages, in CSR order.
    s.next_node();
    let (nbrs, ws) = topology.row(v);
    let mut unk = 0.0;
    let mut nb_dot = 0.0;
    for (&u, &w) in nbrs.iter().zip(ws) {
        let c = rule.edge(g, u as usize, w);
        let u = topology.local(u as usize);
        let uu = f64::from(punk[u]);
        let mut dot = old_unk * uu;
        for e in used(pslots, u, k) {
            let x = f64::from(e.score);
            s.add(e.label, c * x);
            dot += s.old[e.label as usize] * x;
        }
        unk += c * uu;
        nb_dot += c * dot;
    }
    obj -= nc.qscale * nb_dot;

    // Injection, prior and the node's own previous value (damping), then finish.
    for &(l, yl) in y {
        s.add(l, nc.inj * yl);
    }
    unk += nc.prior;
    if nc.lazy > 0.0 {
        for e in old {
            s.add(e.label, nc.lazy * f64::from(e.score));
        }
        unk += nc.lazy * old_unk;
    }
    s.cand.clear();
    match nc.finish {
        Finish::Clamp => s.cand.extend_from_slice(y),
        Finish::Divide(m) if m <= 0.0 => {
            // An isolated node with nothing pulling on it keeps its value.
            s.cand
                .extend(old.iter().map(|e| (e.label, f64::from(e.score))));
            unk = old_unk;
        }
        finish => {
            let scale = match finish {
                Finish::Divide(m) => 1.0 / m,
                _ => {
                    let total: f64 =
                        unk + s.touched.iter().map(|&l| s.acc[l as usize]).sum::<f64>();
                    if total > 0.0 {
                        1.0 / total
                    } else {
                        1.0
                    }
                }
            };
            unk *= scale;
            for &l in &s.touched {
                let x = s.acc[l as usize] * scale;
                if x as f32 > 0.0 {
                    s.cand.push((l, x));
                } else {
                    // Below f32's range: keep the (negligible) mass, but on ⊥.
                    unk += x.max(0.0);
                }
            }
        }
    }
    if matches!(nc.finish, Finish::Clamp) {
        unk = 0.0;
    }
    unk += keep_top_k(&mut s.cand, k);
    write_slots(out, &s.cand);
    *out_unk = unk as f32;

    // L1 change between the stored (f32) values.
    let mut change = (f64::from(*out_unk) - old_unk).abs();
    for e in out.iter().take(s.cand.len()) {
        let l = e.label as usize;
        change += (f64::from(e.score) - s.old[l]).abs();
        s.old[l] = 0.0;
    }
    for e in old {
        change += s.old[e.label as usize];
        s.old[e.label as usize] = 0.0;
    }
    (obj, change)
}
