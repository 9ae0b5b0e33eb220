//! [`PropagationConfig`]: every hyperparameter of the propagation stage, with its paper
//! symbol and where its default comes from.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Which propagation algorithm to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    /// Expander (Ravi & Diao 2016): seed fit + smoothness + pull towards the unknown label,
    /// Jacobi updates, top-K labels per node.
    #[default]
    Expander,
    /// Modified Adsorption (Talukdar & Crammer 2009) with entropy-based random-walk
    /// probabilities.
    Mad,
    /// Label propagation (Zhu & Ghahramani 2002) with scikit-learn's semantics: row-normalized
    /// transitions, hard clamping of seeds, rows renormalized every iteration.
    Lp,
    /// Label spreading (Zhou et al. 2004) with scikit-learn's semantics: symmetric
    /// normalization, soft clamping with `alpha`.
    Spreading,
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Algorithm::Expander => "expander",
            Algorithm::Mad => "mad",
            Algorithm::Lp => "lp",
            Algorithm::Spreading => "spreading",
        })
    }
}

impl std::str::FromStr for Algorithm {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "expander" => Ok(Algorithm::Expander),
            "mad" => Ok(Algorithm::Mad),
            "lp" => Ok(Algorithm::Lp),
            "spreading" => Ok(Algorithm::Spreading),
            _ => Err(Error::config(
                "algorithm",
                format!("unknown algorithm {s:?} (expected expander, mad, lp or spreading)"),
            )),
        }
    }
}

/// How the per-iteration change is measured against [`PropagationConfig::tolerance`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum ChangeNorm {
    /// The largest L1 change of one node's distribution (labels and unknown). Independent of
    /// the graph's size, so one tolerance fits small and large graphs.
    #[default]
    MaxNode,
    /// The sum of L1 changes over all nodes: scikit-learn's rule (`np.abs(Y - Y_prev).sum() <
    /// tol`). Use it with `tolerance = 1e-3` and no class prior (`--class-prior none`) to
    /// reproduce `LabelPropagation` / `LabelSpreading` exactly.
    Sum,
}

/// Correction of the class balance after propagation. The default is
/// [`PropagationConfig`]'s: class mass normalization with priors from the seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ClassPrior {
    /// No correction: the propagated scores are the output.
    None,
    /// Class mass normalization (Zhu, Ghahramani & Lafferty, ICML 2003): label `l`'s scores on
    /// non-seed nodes are multiplied by `q_l / (m_l + L · q_l)`, where `m_l` is the total score
    /// of `l` over the non-seed text nodes, each counted once per input record it stands for
    /// (identical texts share a node), `q_l` its prior (normalized to sum to 1), and `L · q_l`
    /// pseudo-records for `L` labels keep a label of no mass finite; each node's label scores
    /// are then rescaled to their previous total, so `unknown` is unchanged. Seeds are not
    /// modified.
    Cmn {
        /// Prior weight of each label by name (need not sum to 1; missing labels get 0).
        /// `None`: estimated from the seeds, each seeded node counted once and split between
        /// its labels in proportion to their weights (a seed of weight 100 does not outweigh
        /// 100 seeds of weight 1).
        #[serde(default)]
        priors: Option<BTreeMap<String, f64>>,
    },
}

/// The propagation stage's configuration. Plain data; [`PropagationConfig::validate`] checks it.
///
/// The defaults are the Expander settings that a reference prototype ran on a symmetrized
/// cosine kNN graph of SNIPS (μ1 = 1, μ2 = 1, μ3 = 0.01, 30 iterations; test accuracy
/// 0.90–0.91, from the project brief's calibration note). Junto's MAD example config uses
/// μ2 = 0.01 and 10 iterations instead; pass those explicitly to reproduce it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PropagationConfig {
    /// The algorithm. Default [`Algorithm::Expander`].
    pub algorithm: Algorithm,
    /// Iteration cap, `>= 1`. Default 30 (calibration note above; scikit-learn's
    /// `LabelSpreading` also defaults to 30; its `LabelPropagation` to 1000).
    pub iterations: usize,
    /// Stop after the first iteration whose change (see [`PropagationConfig::change_norm`])
    /// is below this value, `>= 0` (0: always run `iterations`). Default 1e-4: a node's
    /// distribution moves by less than 1e-4 in L1, below the 6-decimal output precision's
    /// ability to change a ranking in practice. With the default norm the change is the
    /// undamped step's (the damped change divided by `1 − damping`), and no iteration that
    /// gives some node its first label counts as converged.
    ///
    /// A small step is not a small error when edge weights span many orders of magnitude
    /// (a cluster joined by weights of 1e5, seeded through weights of 1): Jacobi moves mass
    /// into such a cluster about 1e-5 of the way per iteration. Keep weights within a few
    /// orders of magnitude of each other, or lower the tolerance.
    pub tolerance: f64,
    /// How the change is measured. Default [`ChangeNorm::MaxNode`].
    pub change_norm: ChangeNorm,
    /// K: labels kept per node (Expander's O(K)-per-node store; Junto's `keepTopKLabels`),
    /// `1..=1024`. Mass of truncated labels moves to `unknown`. Default 8, the middle of
    /// Ravi & Diao's "single digits to tens"; with K >= the number of labels the result is
    /// exact. With given class priors ([`ClassPrior::Cmn`] with `priors`), keep every label
    /// if you can: a prior cannot raise a label truncated away at a node (`sprig propagate`
    /// then defaults to the label count, up to 64; on SwDA's 41 labels, 20.9 → 45.5% dev
    /// accuracy).
    pub top_k: usize,
    /// μ1: weight of the seed-fit term, `> 0`. Default 1 (Ravi & Diao 2016; Talukdar &
    /// Crammer 2009; Junto). Used by `expander` and `mad`.
    pub seed_weight: f64,
    /// μ2: weight of the smoothness term, `>= 0`. Default 1 (calibration note; Junto's MAD
    /// example uses 0.01). Used by `expander` and `mad`.
    pub smoothness_weight: f64,
    /// μ3: weight of the pull towards the unknown label ⊥ (Expander's prior, MAD's
    /// abandonment), `>= 0`. Default 0.01 (Junto; calibration note). Used by `expander` and
    /// `mad`.
    pub prior_weight: f64,
    /// Share of its previous distribution that an Expander node keeps at each step, in
    /// `[0, 1)`: `Ŷ ← d · Ŷ + (1 − d) · (the Jacobi update)`; `0` is plain Jacobi. Still a
    /// descent step on the objective (a proximal Jacobi step).
    ///
    /// On bipartite structure (the text–feature graph, or an edge far heavier than the rest)
    /// plain Jacobi's iterates alternate from one step to the next, so the answer after a
    /// fixed number of iterations depends on its parity; damping removes the alternation (the
    /// lazy random walk's cure for a periodic chain). Default `None`: 0.5 on a bipartite
    /// graph and on an imported edge list (whose structure and weights are anyone's: a path
    /// `a —100— b —100— c` seeded at `a` gave `b` 0.07 after 30 plain iterations and 0.54
    /// after 31), 0 on the kNN graph. Measured with `benches/quality.py` (dev accuracy): on
    /// the kNN graph 0.5 cost 0.1–1.0 points at 30 iterations, and 30 and 31 plain
    /// iterations agree; on the bipartite graph 0.5 gained 0.3 (SNIPS) and 0.1–0.3 (HWU64).
    /// Damping about halves the speed of convergence. Used by `expander`.
    pub damping: Option<f64>,
    /// β of MAD's continuation probability c_v = log β / log(β + e^{H(v)}), `> 1`. Default 2
    /// (Junto's example config). Used by `mad`.
    pub beta: f64,
    /// α of label spreading, the weight of the neighbours against the seeds, in `(0, 1)`.
    /// Default 0.2 (scikit-learn's `LabelSpreading`). Used by `spreading`.
    pub alpha: f64,
    /// Class-balance correction applied after propagation. Default: class mass normalization
    /// with priors estimated from the seeds (`ClassPrior::Cmn { priors: None }`; with the
    /// usual balanced seeds, equal class masses). Without it, labels whose seeds sit next to
    /// hub texts take most of the mass. [`ClassPrior::None`] turns it off.
    ///
    /// Measured 2026-11-28 with `benches/quality.py` (10 seeds per label, default kNN graph;
    /// details in benches/README.md):
    /// - without → with, dev split (accuracy on the dev texts / on the unlabelled train
    ///   texts): SNIPS 92.7 → 93.4 / 91.1 → 91.9, HWU64 69.5 → 70.0 / 68.4 → 69.1, SwDA
    ///   7.3 → 9.8 / 6.3 → 7.3. It never lowered unlabelled-train accuracy on the 8 other
    ///   graphs tried for SNIPS and HWU64 (dev accuracy: 14 of 16 up, one tie, one −0.1) and
    ///   raised dev accuracy on all 9 other graphs tried for SwDA;
    /// - class mass counted per input record instead of per distinct text, test split:
    ///   SwDA 9.6 → 13.3, SNIPS 91.6 → 91.9, HWU64 70.1 → 70.0.
    pub class_prior: ClassPrior,
}

impl Default for ClassPrior {
    fn default() -> Self {
        ClassPrior::Cmn { priors: None }
    }
}

impl Default for PropagationConfig {
    fn default() -> Self {
        PropagationConfig {
            algorithm: Algorithm::Expander,
            iterations: 30,
            tolerance: 1e-4,
            change_norm: ChangeNorm::MaxNode,
            top_k: 8,
            seed_weight: 1.0,
            smoothness_weight: 1.0,
            prior_weight: 0.01,
            damping: None,
            beta: 2.0,
            alpha: 0.2,
            class_prior: ClassPrior::default(),
        }
    }
}

/// The largest accepted [`PropagationConfig::top_k`].
pub const MAX_TOP_K: usize = 1024;

/// The largest accepted [`PropagationConfig::iterations`]. With the defaults, runs usually
/// stop at the 30-iteration cap; converging to the default tolerance can take hundreds of
/// iterations (about 600 on the bundled corpus), so a cap far above that is a mistake.
pub const MAX_ITERATIONS: usize = 1_000_000;

/// Largest μ1, μ2 or μ3 [`PropagationConfig::validate`] accepts: only their ratios matter, and
/// below this every per-node divisor stays finite.
pub const MAX_MU: f64 = 1e12;

impl PropagationConfig {
    /// Checks every field's range (graph-dependent checks, such as prior label names, happen
    /// in [`crate::propagate::propagate`]).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the first bad field.
    pub fn validate(&self) -> Result<()> {
        if self.iterations == 0 || self.iterations > MAX_ITERATIONS {
            return Err(Error::config(
                "iterations",
                format!("must be in 1..={MAX_ITERATIONS}"),
            ));
        }
        if !(self.tolerance.is_finite() && self.tolerance >= 0.0) {
            return Err(Error::config(
                "tolerance",
                format!("must be finite and >= 0, got {}", self.tolerance),
            ));
        }
        if !(1..=MAX_TOP_K).contains(&self.top_k) {
            return Err(Error::config(
                "top_k",
                format!("must be in 1..={MAX_TOP_K}, got {}", self.top_k),
            ));
        }
        // Only the ratios of μ1, μ2, μ3 matter (scaling all three scales the objective, not
        // its minimizer); the cap keeps every per-node divisor, μ1·a + μ2·deg + μ3 times the
        // damping's 1/(1 − d), finite for any f32 edge weights.
        if !(self.seed_weight > 0.0 && self.seed_weight <= MAX_MU) {
            return Err(Error::config(
                "seed_weight",
                format!("must be > 0 and <= {MAX_MU:e}, got {}", self.seed_weight),
            ));
        }
        for (field, v) in [
            ("smoothness_weight", self.smoothness_weight),
            ("prior_weight", self.prior_weight),
        ] {
            if !(0.0..=MAX_MU).contains(&v) {
                return Err(Error::config(
                    field,
                    format!("must be >= 0 and <= {MAX_MU:e}, got {v}"),
                ));
            }
        }
        if let Some(d) = self.damping {
            if !(0.0..1.0).contains(&d) {
                return Err(Error::config(
                    "damping",
                    format!("must be in [0, 1), got {d}"),
                ));
            }
        }
        if !(self.beta.is_finite() && self.beta > 1.0) {
            return Err(Error::config(
                "beta",
                format!("must be finite and > 1, got {}", self.beta),
            ));
        }
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            return Err(Error::config(
                "alpha",
                format!("must be in (0, 1), got {}", self.alpha),
            ));
        }
        if let ClassPrior::Cmn { priors: Some(p) } = &self.class_prior {
            if p.values().any(|&q| !(q.is_finite() && q >= 0.0)) || p.values().all(|&q| q == 0.0) {
                return Err(Error::config(
                    "class_prior",
                    "priors must be finite, >= 0, and not all 0",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_round_trip_through_json() {
        let c = PropagationConfig::default();
        c.validate().unwrap();
        let json = serde_json::to_string(&c).unwrap();
        let back: PropagationConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);
        let partial: PropagationConfig =
            serde_json::from_str(r#"{"algorithm":"mad","class_prior":{"type":"cmn"}}"#).unwrap();
        assert_eq!(partial.algorithm, Algorithm::Mad);
        assert_eq!(partial.class_prior, ClassPrior::Cmn { priors: None });
        assert_eq!(partial.top_k, 8);
        // One default, whether a program builds the config or only the prior.
        assert_eq!(ClassPrior::default(), c.class_prior);
    }

    #[test]
    fn validate_names_the_bad_field() {
        let bad = |f: fn(&mut PropagationConfig)| {
            let mut c = PropagationConfig::default();
            f(&mut c);
            crate::test_util::refused_field(c.validate()).expect("refused")
        };
        assert_eq!(bad(|c| c.iterations = 0), "iterations");
        assert_eq!(bad(|c| c.iterations = MAX_ITERATIONS + 1), "iterations");
        assert_eq!(bad(|c| c.tolerance = f64::NAN), "tolerance");
        assert_eq!(bad(|c| c.top_k = 0), "top_k");
        assert_eq!(bad(|c| c.seed_weight = 0.0), "seed_weight");
        assert_eq!(bad(|c| c.prior_weight = -1.0), "prior_weight");
        assert_eq!(bad(|c| c.seed_weight = 1e308), "seed_weight");
        assert_eq!(
            bad(|c| c.smoothness_weight = f64::INFINITY),
            "smoothness_weight"
        );
        assert_eq!(bad(|c| c.damping = Some(1.0)), "damping");
        assert_eq!(bad(|c| c.damping = Some(f64::NAN)), "damping");
        assert_eq!(bad(|c| c.beta = 1.0), "beta");
        assert_eq!(bad(|c| c.alpha = 1.0), "alpha");
        assert_eq!(
            bad(|c| c.class_prior = ClassPrior::Cmn {
                priors: Some([("a".to_string(), -1.0)].into())
            }),
            "class_prior"
        );
        assert!("nope".parse::<Algorithm>().is_err());
        assert_eq!("mad".parse::<Algorithm>().unwrap(), Algorithm::Mad);
        // A tolerance below 0 or infinite is refused, not only NaN.
        assert_eq!(bad(|c| c.tolerance = -1e-9), "tolerance");
        assert_eq!(bad(|c| c.tolerance = f64::INFINITY), "tolerance");
        // α's interval is open at 0 too.
        assert_eq!(bad(|c| c.alpha = 0.0), "alpha");
    }

    /// The last value each range accepts passes (the refused neighbours are in
    /// `validate_names_the_bad_field`).
    #[test]
    fn validate_accepts_each_range_up_to_its_bound() {
        let ok = |f: fn(&mut PropagationConfig)| {
            let mut c = PropagationConfig::default();
            f(&mut c);
            c.validate()
        };
        ok(|c| c.iterations = 1).unwrap();
        ok(|c| c.iterations = MAX_ITERATIONS).unwrap();
        ok(|c| c.tolerance = 0.0).unwrap();
        ok(|c| c.top_k = 1).unwrap();
        ok(|c| c.top_k = MAX_TOP_K).unwrap();
        ok(|c| c.seed_weight = MAX_MU).unwrap();
        ok(|c| c.smoothness_weight = 0.0).unwrap();
        ok(|c| c.prior_weight = MAX_MU).unwrap();
        ok(|c| c.damping = Some(0.0)).unwrap();
        ok(|c| c.alpha = 0.999).unwrap();
        ok(|c| {
            c.class_prior = ClassPrior::Cmn {
                priors: Some([("a".to_string(), 0.0), ("b".to_string(), 2.0)].into()),
            }
        })
        .unwrap();
    }

    /// Each algorithm's name is what `Display` writes (the CLI's messages name algorithms
    /// with it) and parses back to the algorithm, the same name serde uses.
    #[test]
    fn algorithm_names_round_trip() {
        for (algorithm, name) in [
            (Algorithm::Expander, "expander"),
            (Algorithm::Mad, "mad"),
            (Algorithm::Lp, "lp"),
            (Algorithm::Spreading, "spreading"),
        ] {
            assert_eq!(algorithm.to_string(), name);
            assert_eq!(name.parse::<Algorithm>().unwrap(), algorithm);
            assert_eq!(serde_json::to_value(algorithm).unwrap(), name);
        }
    }
}
