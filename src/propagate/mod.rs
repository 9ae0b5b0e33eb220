//! Label propagation: spreads the seed labels of a [`Graph`] to every node, Expander-style.
//!
//! This is stage 4 of the pipeline: `Graph` (with its seeds) → [`Propagation`] (a sparse
//! [`LabelDistribution`] per node and a [`PropagationReport`]), configured by
//! [`PropagationConfig`]. It touches no file; [`write_jsonl`] and [`write_tsv`] format the
//! result for the CLI.
//!
//! **Contract.**
//! - *Input:* a symmetric graph ([`Graph::from_parts`] checks it; no self-loops, positive
//!   finite weights; text nodes first,
//!   then feature nodes of a bipartite graph, which propagate like any node), seeds
//!   `(node, label, weight > 0)`, a validated config.
//! - *Parameters:* see [`PropagationConfig`] (μ1, μ2, μ3, β, α, K, iterations, tolerance).
//! - *Output:* per node at most K `(label, score)` pairs sorted by score descending then
//!   label id, and an `unknown` mass (the dummy label ⊥).
//!
//! **Invariants of the output** (tested as properties):
//! - every score and `unknown` is finite and `>= 0`; never NaN or infinity;
//! - per node, `Σ scores ≤ 1` and `Σ scores + unknown = 1` (within 1e-5);
//! - a node no seed can reach (including a zero-degree node) holds no label and
//!   `unknown = 1`: it abstains;
//! - the result is bit-identical for any number of threads;
//! - for `expander`, `mad` and `spreading` with K ≥ the number of labels, the objective never
//!   rises between iterations ([`PropagationReport::history`]).
//!
//! **Algorithms** ([`Algorithm`]; the math is in each module's docs):
//! - `expander` (default) — Ravi & Diao, "Large Scale Distributed Semi-Supervised Learning
//!   Using Streaming Approximation", AISTATS 2016: seed fit + smoothness + pull to ⊥, top-K.
//! - `mad` — Talukdar & Crammer, "New Regularized Algorithms for Transductive Learning",
//!   ECML-PKDD 2009: Modified Adsorption with entropy-based walk probabilities.
//! - `lp` — Zhu & Ghahramani, CMU-CALD-02-107, 2002 (scikit-learn `LabelPropagation`).
//! - `spreading` — Zhou et al., "Learning with Local and Global Consistency", NIPS 2004
//!   (scikit-learn `LabelSpreading`).
//!
//! All four share one engine: synchronous Jacobi sweeps (each node's new distribution computed
//! from the previous iterate, then the buffers swap), parallel over fixed blocks of nodes,
//! with per-node sums in neighbour order and top-K ties broken by label id. An optional
//! class-mass normalization ([`ClassPrior::Cmn`]) follows the last iteration. With the
//! `distributed` feature, `propagate_distributed` runs the same sweeps on timely dataflow
//! workers (threads or processes), with bit-identical results.
//!
//! **Adding a variant:** write a `Rule` (per-node and per-edge coefficients of the generic
//! update and objective in `engine.rs`); add an [`Algorithm`] arm and its name (`Display` and
//! `FromStr` in `config.rs`) and an `AnyRule` arm (here); say which of its parameters the
//! CLI accepts (the table of algorithm-specific flags in `cli/propagate.rs`, which refuses a
//! flag an algorithm does not read); and extend the tests' algorithm lists
//! (`testgraphs::ALL`, and the algorithms `tests/distributed.rs` runs on timely workers).
//!
//! # Example
//! ```
//! use sprig::graph::{Graph, GraphKind, GraphParts, RecordRef, Seed};
//! use sprig::propagate::{propagate, PropagationConfig};
//!
//! // A path a — b — c with `a` seeded "x", and an isolated node d.
//! let parts = GraphParts {
//!     offsets: vec![0, 1, 3, 4, 4],
//!     neighbors: vec![1, 0, 2, 1],
//!     weights: vec![1.0; 4],
//!     keys: ["a", "b", "c", "d"].map(String::from).to_vec(),
//!     text_nodes: 4,
//!     records: (0..4).map(|i| RecordRef { line: i + 1, id: None, node: i as u32, text_hash: None }).collect(),
//!     labels: vec!["x".into()],
//!     seeds: vec![Seed { node: 0, label: 0, weight: 1.0 }],
//!     provenance: serde_json::Value::Null,
//! };
//! let graph = Graph::from_parts(GraphKind::Edges, parts)?;
//! let result = propagate(&graph, &PropagationConfig::default())?;
//! let d = result.distribution();
//! assert_eq!(d.top(2).map(|t| t.label), Some(0)); // c is labelled x
//! assert!(d.top(3).is_none() && d.unknown(3) == 1.0); // d abstains
//! # Ok::<(), sprig::Error>(())
//! ```

mod check;
mod classic;
mod config;
#[cfg(feature = "distributed")]
pub mod distributed;
mod engine;
mod expander;
mod labels;
mod mad;
pub(crate) mod output;
mod prior;
#[cfg(test)]
mod properties;
mod suggest;
#[cfg(test)]
pub(crate) mod testgraphs;
#[cfg(test)]
mod tests;

use std::ops::ControlFlow;
use std::time::Instant;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use check::{seed_conflicts, SeedConflict, CONFLICT_MARGIN};
pub use config::{
    Algorithm, ChangeNorm, ClassPrior, PropagationConfig, MAX_ITERATIONS, MAX_MU, MAX_TOP_K,
};
#[cfg(feature = "distributed")]
pub use distributed::{propagate_distributed, Cluster};
pub use labels::{LabelDistribution, LabelScore};
pub use output::{
    abstains_in_output, check_tsv, write_jsonl, write_seed_conflicts, write_suggestions, write_tsv,
    Nodes, OutputFormat, UNKNOWN_LABEL,
};
pub use prior::seed_class_counts;
pub use suggest::{suggest_labels, Suggestion};

use crate::control::Flow;
use crate::error::{Error, Result};
use crate::graph::{Graph, Seed};
use engine::SeedRows;

/// One iteration's measurements.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IterationStats {
    /// 1-based iteration number.
    pub iteration: usize,
    /// Largest L1 change of one node's distribution (labels and unknown) in this iteration.
    pub max_change: f64,
    /// Sum over nodes of the L1 changes (scikit-learn's convergence measure).
    pub sum_change: f64,
    /// The algorithm's objective after this iteration (see each algorithm's docs).
    pub objective: f64,
}

/// How a propagation run went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PropagationReport {
    /// The algorithm that ran.
    pub algorithm: Algorithm,
    /// Iterations run.
    pub iterations: usize,
    /// Whether the change fell below the tolerance before the iteration cap (see
    /// [`PropagationConfig::tolerance`]).
    pub converged: bool,
    /// Whether the caller's callback ended the run ([`crate::control`]). Left out of what is
    /// written when false.
    #[serde(default, skip_serializing_if = "crate::control::not_stopped")]
    pub stopped: bool,
    /// Objective of the initial iterate.
    pub initial_objective: f64,
    /// Per-iteration change and objective, in order.
    pub history: Vec<IterationStats>,
    /// Nodes (texts and features) that hold no label.
    pub abstaining_nodes: usize,
    /// Text nodes that hold no label.
    pub abstaining_texts: usize,
    /// Wall time of the propagation, in seconds.
    pub seconds: f64,
}

/// The result of [`propagate`]: a label distribution per node, and the run's report.
/// (`Debug` prints a summary and the report.)
#[derive(Clone)]
pub struct Propagation {
    distribution: LabelDistribution,
    labels: Vec<String>,
    seed: Vec<bool>,
    report: PropagationReport,
}

impl std::fmt::Debug for Propagation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Propagation")
            .field("distribution", &self.distribution)
            .field("labels", &self.labels.len())
            .field("seeds", &self.seed.iter().filter(|&&s| s).count())
            .field("report", &self.report)
            .finish()
    }
}

impl Propagation {
    /// Per-node distributions (node ids as in the graph).
    pub fn distribution(&self) -> &LabelDistribution {
        &self.distribution
    }

    /// Label names; a [`LabelScore::label`] indexes this.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// Whether `node` carried a seed in this run.
    ///
    /// # Panics
    /// If `node` is out of range.
    pub fn is_seed(&self, node: usize) -> bool {
        self.seed[node]
    }

    /// The run's report.
    pub fn report(&self) -> &PropagationReport {
        &self.report
    }
}

/// Propagates the graph's own seeds. See [`propagate_with`].
///
/// # Errors
/// As [`propagate_with`].
pub fn propagate(graph: &Graph, config: &PropagationConfig) -> Result<Propagation> {
    propagate_with(graph, graph.seeds(), config, |_| {})
}

/// Propagates `seeds` (which replace the graph's own; pass `graph.seeds()` plus extra ones to
/// add seeds; a (node, label) pair given twice keeps its largest weight, as in
/// [`crate::graph::merge_seeds`]) over `graph`, calling `on_iteration` once per iteration,
/// in order, as soon as that iteration's objective is known (one sweep later, since the
/// objective of an iterate is accumulated during the next sweep).
///
/// `on_iteration` returns `()`, or a [`ControlFlow`] whose `Break`
/// ends the run with the iterate it was just shown ([`crate::control`]; the report's
/// `stopped` says so).
///
/// # Errors
/// - [`Error::InvalidConfig`] if `config` is invalid, a seed names a node or label outside
///   the graph or has a weight that is not finite and positive, a class prior names an
///   unknown label, or the graph does not hold every row ([`Graph::load_rows`]);
/// - [`Error::NoSeeds`] if `seeds` is empty.
///
/// # Complexity
/// O(iterations · (E · K + n · c log K)) time for E stored edges and `c` candidate labels per
/// node; O(n · K) memory for the two iterates plus O(labels) per thread.
pub fn propagate_with<R: Flow>(
    graph: &Graph,
    seeds: &[Seed],
    config: &PropagationConfig,
    mut on_iteration: impl FnMut(&IterationStats) -> R,
) -> Result<Propagation> {
    let start = Instant::now();
    if !graph.is_whole() {
        return Err(Error::config(
            "graph",
            format!(
                "holds rows {:?} of {} (Graph::load_rows): propagate it on its cluster with \
                 propagate_distributed, or load it whole with Graph::load",
                graph.rows(),
                graph.n_nodes()
            ),
        ));
    }
    let (seed_rows, priors) = prepare(graph, seeds, config)?;
    let algo = Algo::new(graph, &seed_rows, config);
    let n_labels = graph.labels().len();
    let mut sweep = |prev: &LabelDistribution, next: &mut LabelDistribution| {
        let n = graph.n_nodes();
        let blocks = algo.sweep_blocks(graph, &seed_rows, n_labels, prev, next, n);
        Some(engine::combine(&blocks))
    };
    let outcome = iterate(
        &mut sweep,
        seed_rows.initial(config.top_k, algo.init),
        config,
        algo.residual,
        &mut |s| on_iteration(s).flow(),
    )
    .expect("a sweep on one machine never gives up");
    Ok(finish(graph, config, &seed_rows, priors, outcome, start))
}

/// Checks the config and the seeds against the graph; returns the seeds grouped by node and
/// the class priors of [`PropagationConfig::class_prior`].
fn prepare(
    graph: &Graph,
    seeds: &[Seed],
    config: &PropagationConfig,
) -> Result<(SeedRows, Option<Vec<f64>>)> {
    config.validate()?;
    let n = graph.n_nodes();
    let n_labels = graph.labels().len();
    if seeds.is_empty() {
        return Err(Error::NoSeeds);
    }
    for s in seeds {
        if s.node as usize >= n || s.label as usize >= n_labels {
            return Err(Error::config(
                "seeds",
                format!(
                    "seed (node {}, label {}) is outside the graph ({n} nodes, {n_labels} labels)",
                    s.node, s.label
                ),
            ));
        }
        if !(s.weight.is_finite() && s.weight > 0.0) {
            return Err(Error::config(
                "seeds",
                format!("seed of node {} has weight {}", s.node, s.weight),
            ));
        }
    }
    let mut sorted = seeds.to_vec();
    crate::graph::merge_seeds(&mut sorted);
    let seed_rows = SeedRows::new(n, &sorted);
    let priors = prior::resolve(config, graph.labels(), &sorted)?;
    Ok((seed_rows, priors))
}

/// What [`iterate`] ends with: the last iterate, the initial objective, the history,
/// whether it converged and whether the callback cut it short.
struct Outcome {
    dist: LabelDistribution,
    initial_objective: f64,
    history: Vec<IterationStats>,
    converged: bool,
    stopped: bool,
}

/// The steps after the last iteration (normalization, class mass normalization) and the
/// report.
fn finish(
    graph: &Graph,
    config: &PropagationConfig,
    seed_rows: &SeedRows,
    priors: Option<Vec<f64>>,
    outcome: Outcome,
    start: Instant,
) -> Propagation {
    let n = graph.n_nodes();
    let Outcome {
        mut dist,
        initial_objective,
        history,
        converged,
        stopped,
    } = outcome;
    prior::normalize(&mut dist);
    if let Some(q) = priors {
        prior::class_mass_normalize(&mut dist, seed_rows, &q, &graph.records_per_text_node());
    }
    let report = PropagationReport {
        algorithm: config.algorithm,
        iterations: history.len(),
        converged,
        stopped,
        initial_objective,
        history,
        abstaining_nodes: dist.count_abstaining(0..n),
        abstaining_texts: dist.count_abstaining(0..graph.n_text_nodes()),
        seconds: start.elapsed().as_secs_f64(),
    };
    Propagation {
        distribution: dist,
        labels: graph.labels().to_vec(),
        seed: (0..n).map(|v| seed_rows.is_seed(v)).collect(),
        report,
    }
}

/// An algorithm's rule, with what the iteration needs to know about it.
pub(crate) struct Algo<'a> {
    rule: AnyRule<'a>,
    /// The unknown mass non-seeds start with.
    init: f32,
    /// The factor from the measured change to the undamped step's (see [`iterate`]).
    residual: f64,
}

/// The four rules, so that a sweep dispatches once, not once per edge.
enum AnyRule<'a> {
    Expander(expander::Expander<'a>),
    Mad(mad::Mad),
    Lp(classic::Lp<'a>),
    Spreading(classic::Spreading),
}

impl<'a> Algo<'a> {
    /// The rule of `config.algorithm` on `graph` and `seeds`.
    fn new(graph: &Graph, seeds: &'a SeedRows, config: &PropagationConfig) -> Self {
        let (rule, init, residual) = match config.algorithm {
            Algorithm::Expander => {
                let rule = expander::Expander::new(graph, seeds, config);
                let residual = 1.0 / (1.0 - rule.damping());
                (AnyRule::Expander(rule), 1.0, residual)
            }
            Algorithm::Mad => (AnyRule::Mad(mad::Mad::new(graph, seeds, config)), 0.0, 1.0),
            Algorithm::Lp => (AnyRule::Lp(classic::Lp::new(graph, seeds)), 0.0, 1.0),
            Algorithm::Spreading => (
                AnyRule::Spreading(classic::Spreading::new(graph, config.alpha)),
                0.0,
                1.0,
            ),
        };
        Algo {
            rule,
            init,
            residual,
        }
    }

    /// [`engine::sweep_blocks`] with this rule.
    fn sweep_blocks<T: engine::Topology>(
        &self,
        topology: &T,
        seeds: &SeedRows,
        n_labels: usize,
        prev: &LabelDistribution,
        next: &mut LabelDistribution,
        updated: usize,
    ) -> Vec<engine::SweepStats> {
        match &self.rule {
            AnyRule::Expander(r) => {
                engine::sweep_blocks(topology, seeds, r, n_labels, prev, next, updated)
            }
            AnyRule::Mad(r) => {
                engine::sweep_blocks(topology, seeds, r, n_labels, prev, next, updated)
            }
            AnyRule::Lp(r) => {
                engine::sweep_blocks(topology, seeds, r, n_labels, prev, next, updated)
            }
            AnyRule::Spreading(r) => {
                engine::sweep_blocks(topology, seeds, r, n_labels, prev, next, updated)
            }
        }
    }
}

/// Weighted degrees `d_v = Σ_u w_vu`, summed in neighbour order.
pub(crate) fn degrees(graph: &Graph) -> Vec<f64> {
    (0..graph.n_nodes())
        .into_par_iter()
        .map(|v| graph.degree(v))
        .collect()
}

/// Runs sweeps until the change falls below the tolerance or the cap, then one more sweep to
/// measure the last iterate's objective. `None` if a sweep gives up (`None`: a distributed
/// run whose workers stop together after one of them failed).
///
/// With [`ChangeNorm::MaxNode`] (sprig's rule) convergence is judged on the undamped step:
/// a damped step `d · x + (1 − d) · F(x)` moves `(1 − d)` times as far as the plain update
/// would, so the change is multiplied by `residual = 1 / (1 − d)` (without it, a damping near
/// 1 would "converge" after one tiny step). And it never converges while a sweep still gives
/// a label to a node that held none: far from the seeds the arriving mass is tiny, and
/// stopping then would leave reachable nodes abstaining. (Mass that underflows `f32` on its
/// way, some 40 hops of spreading's α = 0.2 from any seed, never arrives, so such nodes
/// still abstain.) [`ChangeNorm::Sum`] keeps
/// scikit-learn's rule as it is, to reproduce its results.
fn iterate(
    sweep: &mut dyn FnMut(&LabelDistribution, &mut LabelDistribution) -> Option<engine::SweepStats>,
    init: LabelDistribution,
    config: &PropagationConfig,
    residual: f64,
    on_iteration: &mut dyn FnMut(&IterationStats) -> ControlFlow<()>,
) -> Option<Outcome> {
    let mut prev = init;
    let mut next = prev.clone();
    let mut history: Vec<IterationStats> = Vec::with_capacity(config.iterations.min(1024));
    let mut initial = 0.0;
    let mut pending: Option<IterationStats> = None;
    let mut converged = false;
    let mut finish =
        |pending: &mut Option<IterationStats>, objective: f64, history: &mut Vec<_>| {
            let mut flow = ControlFlow::Continue(());
            if let Some(mut p) = pending.take() {
                p.objective = objective;
                flow = on_iteration(&p);
                history.push(p);
            }
            flow
        };
    for t in 1..=config.iterations {
        let s = sweep(&prev, &mut next)?;
        if t == 1 {
            initial = s.objective;
        }
        if finish(&mut pending, s.objective, &mut history).is_break() {
            // `prev` is the iterate the callback saw; the sweep just made is dropped.
            return Some(Outcome {
                dist: prev,
                initial_objective: initial,
                history,
                converged: false,
                stopped: true,
            });
        }
        std::mem::swap(&mut prev, &mut next);
        pending = Some(IterationStats {
            iteration: t,
            max_change: s.max_change,
            sum_change: s.sum_change,
            objective: f64::NAN,
        });
        let settled = match config.change_norm {
            ChangeNorm::MaxNode => s.max_change * residual < config.tolerance && s.reached == 0,
            ChangeNorm::Sum => s.sum_change < config.tolerance,
        };
        if settled {
            converged = true;
            break;
        }
    }
    let last = sweep(&prev, &mut next)?;
    // The run ends here anyway: a `Break` now cuts nothing short.
    let _ = finish(&mut pending, last.objective, &mut history);
    Some(Outcome {
        dist: prev,
        initial_objective: initial,
        history,
        converged,
        stopped: false,
    })
}
