//! ProjectionNet's joint training (Ravi 2017): a larger *trainer* network over the raw hashed
//! n-grams learns alongside the projection network and teaches it.
//!
//! The trainer is fastText-shaped: each feature hash picks one of `2^buckets_log2` embedding
//! rows of width `dim`; a text is the weighted mean of its rows; a linear layer and a softmax
//! give its label distribution `h_θ`. The joint loss per example (weight `w`, target `y`):
//!
//! `w · [λ1 CE(y, h_θ) + λ2 CE(h_θ, h_p) + λ3 CE(y, h_p)]`
//!
//! — trainer loss, projection-simulation (distillation) loss, projection ground-truth loss.
//! In the λ2 term the trainer's distribution is a fixed target (no gradient flows back into
//! the trainer), the usual reading of "learns from the full network". Only the projection
//! network is exported; the trainer is discarded.
//!
//! **Optimization:** the trainer's head uses Adam like the student; its embedding rows use
//! sparse SGD (fastText's choice: dense Adam state over millions of rows would cost more than
//! the whole student), applied in chunk order so the result is still thread-count independent.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::Example;
use crate::error::{Error, Result};
use crate::network::{Adam, Mlp, MlpScratch};
use crate::text::TextPipeline;

/// Settings of the joint trainer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JointConfig {
    /// log2 of the embedding rows, `10..=24`. Default 18 (262,144 rows).
    pub buckets_log2: u32,
    /// Embedding width, `1..=1024`, with `dim · 2^buckets_log2 <= 2^26`. Default 64.
    pub dim: usize,
    /// SGD step of the embedding rows (per example, not averaged), `> 0`. Default 0.1.
    pub embedding_lr: f32,
    /// λ1: trainer loss. Default 1.
    pub trainer_weight: f32,
    /// λ2: projection-simulation (distillation) loss. Default 1.
    pub simulation_weight: f32,
    /// λ3: projection ground-truth loss. Default 1.
    pub ground_truth_weight: f32,
}

impl Default for JointConfig {
    fn default() -> Self {
        Self {
            buckets_log2: 18,
            dim: 64,
            embedding_lr: 0.1,
            trainer_weight: 1.0,
            simulation_weight: 1.0,
            ground_truth_weight: 1.0,
        }
    }
}

impl JointConfig {
    /// Checks the ranges.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the field.
    pub fn validate(&self) -> Result<()> {
        if !(10..=24).contains(&self.buckets_log2) {
            return Err(Error::config("joint.buckets_log2", "must be in 10..=24"));
        }
        if self.dim == 0 || self.dim > 1024 {
            return Err(Error::config("joint.dim", "must be in 1..=1024"));
        }
        // Each flag alone is fine; the table is their product (plus Adam's moments).
        if (self.dim << self.buckets_log2) > MAX_TABLE_FLOATS {
            return Err(Error::config(
                "joint.dim",
                format!(
                    "2^{} buckets × {} dims is past the limit of {MAX_TABLE_FLOATS} floats",
                    self.buckets_log2, self.dim
                ),
            ));
        }
        if !(self.embedding_lr.is_finite() && self.embedding_lr > 0.0) {
            return Err(Error::config(
                "joint.embedding_lr",
                "must be finite and > 0",
            ));
        }
        for (field, v) in [
            ("joint.trainer_weight", self.trainer_weight),
            ("joint.simulation_weight", self.simulation_weight),
            ("joint.ground_truth_weight", self.ground_truth_weight),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::config(field, "must be finite and >= 0"));
            }
        }
        if self.simulation_weight + self.ground_truth_weight <= 0.0 {
            // The projection network (the exported model) learns only through λ2 and λ3.
            return Err(Error::config(
                "joint.simulation_weight",
                "λ2 (simulation) or λ3 (ground truth) must be > 0, or the exported network never learns",
            ));
        }
        Ok(())
    }
}

/// The most floats the trainer's embedding table may hold (2^26: 256 MiB).
pub const MAX_TABLE_FLOATS: usize = 1 << 26;

/// Each example's hashed features: `(row, weight / Σ weights)`, CSR-style.
pub(super) struct SparseInputs {
    offsets: Vec<usize>,
    items: Vec<(u32, f32)>,
}

impl SparseInputs {
    pub(super) fn new(pipeline: &TextPipeline, examples: &[Example], config: &JointConfig) -> Self {
        let mask = (1u64 << config.buckets_log2) - 1;
        let sublinear = pipeline.feature_config().sublinear_tf;
        let rows: Vec<Vec<(u32, f32)>> = examples
            .par_iter()
            .map(|ex| {
                let mut hashes = Vec::new();
                pipeline.for_each_feature(&pipeline.tokenize(&ex.text), |f, _| {
                    hashes.push((f.hash & mask) as u32)
                });
                hashes.sort_unstable();
                let mut row: Vec<(u32, f32)> = Vec::new();
                for h in hashes {
                    match row.last_mut() {
                        Some(last) if last.0 == h => last.1 += 1.0,
                        _ => row.push((h, 1.0)),
                    }
                }
                if sublinear {
                    for r in &mut row {
                        r.1 = 1.0 + r.1.ln();
                    }
                }
                let total: f32 = row.iter().map(|r| r.1).sum();
                if total > 0.0 {
                    for r in &mut row {
                        r.1 /= total;
                    }
                }
                row
            })
            .collect();
        let mut offsets = Vec::with_capacity(rows.len() + 1);
        offsets.push(0);
        let mut items = Vec::new();
        for r in rows {
            items.extend(r);
            offsets.push(items.len());
        }
        Self { offsets, items }
    }

    fn row(&self, i: usize) -> &[(u32, f32)] {
        &self.items[self.offsets[i]..self.offsets[i + 1]]
    }
}

/// The trainer network's parameters and optimizer state.
pub(super) struct Trainer {
    pub(super) config: JointConfig,
    emb: Vec<f32>,
    head: Mlp,
    adam: Adam,
}

/// Per-chunk buffers of the trainer's forward and backward.
#[derive(Default)]
pub(super) struct TrainerWorker {
    h: Vec<f32>,
    dh: Vec<f32>,
    scratch: MlpScratch,
    dlogits: Vec<f32>,
    /// Head gradient (dense, small).
    pub(super) head_grad: Vec<f32>,
    /// Embedding gradients: row ids and `dim` values each, in example order.
    rows: Vec<u32>,
    vals: Vec<f32>,
    pub(super) loss: f64,
}

impl Trainer {
    pub(super) fn new(
        config: &JointConfig,
        n_labels: usize,
        mut next_u64: impl FnMut() -> u64,
    ) -> Result<Self> {
        config.validate()?;
        let n = (1usize << config.buckets_log2) * config.dim;
        // fastText's initialization: uniform in ±1/dim.
        let bound = 1.0 / config.dim as f32;
        let emb = (0..n)
            .map(|_| ((next_u64() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * bound)
            .collect();
        let head = Mlp::new(&[config.dim, n_labels], next_u64)?;
        // The step size comes with each `step`: the student's, on its schedule.
        let adam = Adam::new(head.params().len(), 0.0);
        Ok(Self {
            config: config.clone(),
            emb,
            head,
            adam,
        })
    }

    /// Forward and backward of example `i`; returns the trainer's distribution in
    /// `w.scratch.probs` for the student's λ2 term.
    pub(super) fn example<'w>(
        &self,
        w: &'w mut TrainerWorker,
        inputs: &SparseInputs,
        i: usize,
        ex: &Example,
    ) -> &'w [f32] {
        let dim = self.config.dim;
        if w.head_grad.len() != self.head.params().len() {
            w.head_grad.clear();
            w.head_grad.resize(self.head.params().len(), 0.0);
        }
        w.h.clear();
        w.h.resize(dim, 0.0);
        let row = inputs.row(i);
        for &(f, x) in row {
            let e = &self.emb[f as usize * dim..(f as usize + 1) * dim];
            for (h, &v) in w.h.iter_mut().zip(e) {
                *h += x * v;
            }
        }
        self.head.forward(&w.h, &mut w.scratch);
        let scale = ex.weight * self.config.trainer_weight;
        w.dlogits.clear();
        w.dlogits.extend(w.scratch.probs.iter().map(|&p| scale * p));
        for &(l, q) in &ex.target {
            w.dlogits[l as usize] -= scale * q;
            w.loss -= f64::from(scale * q) * f64::from(w.scratch.probs[l as usize].max(1e-12)).ln();
        }
        // dh = Wᵀ · dlogits, before the head's own backward.
        let (wt, _) = self.head.layer(0);
        w.dh.clear();
        w.dh.resize(dim, 0.0);
        for (li, &d) in w.dlogits.iter().enumerate() {
            for (g, &v) in w.dh.iter_mut().zip(&wt[li * dim..(li + 1) * dim]) {
                *g += d * v;
            }
        }
        self.head
            .backward(&w.h, &w.dlogits, &mut w.scratch, &mut w.head_grad);
        for &(f, x) in row {
            w.rows.push(f);
            w.vals.extend(w.dh.iter().map(|&g| x * g));
        }
        &w.scratch.probs
    }

    /// Clears a worker before a chunk.
    pub(super) fn reset(w: &mut TrainerWorker) {
        w.head_grad.iter_mut().for_each(|g| *g = 0.0);
        w.rows.clear();
        w.vals.clear();
        w.loss = 0.0;
    }

    /// Applies the chunks' gradients in chunk order: Adam on the head (mean over the
    /// batch) with step size `head_lr` (the student's at this step), SGD on the embedding
    /// rows (per example sums).
    pub(super) fn step<'a>(
        &mut self,
        workers: impl Iterator<Item = &'a TrainerWorker> + Clone,
        batch_len: usize,
        total: &mut Vec<f32>,
        head_lr: f32,
    ) {
        let dim = self.config.dim;
        total.clear();
        total.resize(self.head.params().len(), 0.0);
        for w in workers.clone() {
            for (t, g) in total.iter_mut().zip(&w.head_grad) {
                *t += g;
            }
        }
        let inv = 1.0 / batch_len as f32;
        total.iter_mut().for_each(|t| *t *= inv);
        self.adam.lr = head_lr;
        self.adam.step(self.head.params_mut(), total);
        let lr = self.config.embedding_lr;
        for w in workers {
            for (k, &f) in w.rows.iter().enumerate() {
                let e = &mut self.emb[f as usize * dim..(f as usize + 1) * dim];
                for (v, &g) in e.iter_mut().zip(&w.vals[k * dim..(k + 1) * dim]) {
                    *v -= lr * g;
                }
            }
        }
    }

    /// The trainer's top-1 agreement with the targets of `val` (for the report).
    pub(super) fn accuracy(
        &self,
        inputs: &SparseInputs,
        val: &[usize],
        examples: &[Example],
    ) -> f64 {
        if val.is_empty() {
            return 0.0;
        }
        let mut w = TrainerWorker::default();
        let mut correct = 0usize;
        for &i in val {
            let dim = self.config.dim;
            w.h.clear();
            w.h.resize(dim, 0.0);
            for &(f, x) in inputs.row(i) {
                let e = &self.emb[f as usize * dim..(f as usize + 1) * dim];
                for (h, &v) in w.h.iter_mut().zip(e) {
                    *h += x * v;
                }
            }
            self.head.forward(&w.h, &mut w.scratch);
            let best = super::argmax(&w.scratch.probs);
            if best == super::argmax_target(&examples[i].target) {
                correct += 1;
            }
        }
        correct as f64 / val.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::{FeatureConfig, TextConfig};
    use rand::rngs::Xoshiro256PlusPlus;
    use rand::{Rng, SeedableRng};

    /// λ1 and the embedding step other than 1, so that each is seen to scale its own term.
    fn config() -> JointConfig {
        JointConfig {
            buckets_log2: 10,
            dim: 4,
            embedding_lr: 0.5,
            trainer_weight: 2.0,
            ..JointConfig::default()
        }
    }

    fn example(text: &str, target: Vec<(u32, f32)>, weight: f32) -> Example {
        Example {
            text: text.into(),
            target,
            weight,
            seed: true,
        }
    }

    /// Three labels; a text with repeated words (counts above 1), a soft target, and the
    /// first text again under another label (its rows get two examples' gradients).
    fn toy() -> (TextPipeline, Vec<Example>, Trainer, SparseInputs) {
        let pipeline =
            TextPipeline::new(&TextConfig::default(), &FeatureConfig::default()).unwrap();
        let examples = vec![
            example("to be or not to be", vec![(0, 1.0)], 0.5),
            example("hello there", vec![(1, 0.6), (2, 0.4)], 1.5),
            example("to be or not to be", vec![(2, 1.0)], 1.0),
        ];
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
        let trainer = Trainer::new(&config(), 3, || rng.next_u64()).unwrap();
        let sparse = SparseInputs::new(&pipeline, &examples, &config());
        (pipeline, examples, trainer, sparse)
    }

    #[test]
    fn joint_ranges_include_their_bounds() {
        let with = |f: fn(&mut JointConfig)| {
            let mut c = JointConfig::default();
            f(&mut c);
            c.validate().is_ok()
        };
        assert!(with(|_| {}));
        // Width 1 to 1,024, whatever the rows.
        assert!(with(|c| (c.buckets_log2, c.dim) = (10, 1024)));
        assert!(!with(|c| (c.buckets_log2, c.dim) = (10, 1025)));
        assert!(with(|c| c.dim = 1));
        assert!(!with(|c| c.dim = 0));
        assert!(with(|c| (c.buckets_log2, c.dim) = (24, 1)));
        assert!(!with(|c| c.buckets_log2 = 9));
        assert!(!with(|c| c.buckets_log2 = 25));
        // Exactly MAX_TABLE_FLOATS floats is allowed; one more a row is not.
        assert_eq!(4 << 24, MAX_TABLE_FLOATS);
        assert!(with(|c| (c.buckets_log2, c.dim) = (24, 4)));
        assert!(!with(|c| (c.buckets_log2, c.dim) = (24, 5)));
        // The embedding step must move the rows.
        assert!(with(|c| c.embedding_lr = 1e-6));
        assert!(!with(|c| c.embedding_lr = 0.0));
        assert!(!with(|c| c.embedding_lr = f32::INFINITY));
        // Either λ2 or λ3 alone teaches the exported network; λ1 may be 0.
        assert!(with(|c| c.simulation_weight = 0.0));
        assert!(with(|c| c.ground_truth_weight = 0.0));
        assert!(with(|c| c.trainer_weight = 0.0));
        assert!(!with(
            |c| (c.simulation_weight, c.ground_truth_weight) = (0.0, 0.0)
        ));
        assert!(!with(|c| c.trainer_weight = -1.0));
        assert!(!with(|c| c.simulation_weight = f32::NAN));
    }

    #[test]
    fn a_texts_inputs_are_its_hashed_features_weighted_to_sum_to_one() {
        let (pipeline, examples, _, sparse) = toy();
        let mask = (1u64 << config().buckets_log2) - 1;
        for (i, ex) in examples.iter().enumerate() {
            let mut counts = std::collections::BTreeMap::<u32, f32>::new();
            pipeline.for_each_feature(&pipeline.tokenize(&ex.text), |f, _| {
                *counts.entry((f.hash & mask) as u32).or_default() += 1.0;
            });
            // Sublinear term frequencies (the default), divided by their sum.
            let tf: Vec<(u32, f32)> = counts.into_iter().map(|(r, c)| (r, 1.0 + c.ln())).collect();
            let sum: f32 = tf.iter().map(|t| t.1).sum();
            let row = sparse.row(i);
            assert_eq!(row.len(), tf.len(), "{:?}", ex.text);
            for (&(r, x), &(want_r, t)) in row.iter().zip(&tf) {
                assert_eq!(r, want_r);
                assert!((x - t / sum).abs() < 1e-6, "{x} instead of {}", t / sum);
            }
        }
        assert_eq!(sparse.row(0), sparse.row(2));
        assert_ne!(sparse.row(0), sparse.row(1));
        // A text without features has an empty row (no division by a zero sum).
        let empty = SparseInputs::new(&pipeline, &[example("", vec![(0, 1.0)], 1.0)], &config());
        assert!(empty.row(0).is_empty());
    }

    /// Example `i`'s loss alone, as a fresh worker sums it.
    fn loss(trainer: &Trainer, sparse: &SparseInputs, examples: &[Example], i: usize) -> f64 {
        let mut w = TrainerWorker::default();
        trainer.example(&mut w, sparse, i, &examples[i]);
        w.loss
    }

    /// Head parameter `k` (`true`) or embedding value `k` (`false`).
    fn param(t: &mut Trainer, (head, k): (bool, usize)) -> &mut f32 {
        if head {
            &mut t.head.params_mut()[k]
        } else {
            &mut t.emb[k]
        }
    }

    /// The central difference of example `i`'s loss in the parameter `at`.
    fn slope(
        trainer: &mut Trainer,
        at: (bool, usize),
        sparse: &SparseInputs,
        examples: &[Example],
        i: usize,
    ) -> f64 {
        let saved = *param(trainer, at);
        let (up, down) = (saved + 1e-2, saved - 1e-2);
        *param(trainer, at) = up;
        let l_up = loss(trainer, sparse, examples, i);
        *param(trainer, at) = down;
        let l_down = loss(trainer, sparse, examples, i);
        *param(trainer, at) = saved;
        (l_up - l_down) / f64::from(up - down)
    }

    /// The λ2 term's target is the trainer's distribution, and the trainer learns from
    /// the λ1 term's gradient: both checked against the definitions, the gradient by central
    /// differences of the loss the worker sums (a sign or scale slip in either shows).
    #[test]
    fn an_example_gives_the_trainers_distribution_and_the_gradient_of_its_loss() {
        let (_, examples, mut trainer, sparse) = toy();
        let dim = trainer.config.dim;
        let mut largest = (0.0f32, 0.0f32);
        for (i, ex) in examples.iter().enumerate() {
            let mut w = TrainerWorker::default();
            let probs = trainer.example(&mut w, &sparse, i, ex).to_vec();
            // The head on the weighted sum of the text's rows.
            let mut h = vec![0.0f32; dim];
            for &(f, x) in sparse.row(i) {
                for (j, h) in h.iter_mut().enumerate() {
                    *h += x * trainer.emb[f as usize * dim + j];
                }
            }
            let mut s = MlpScratch::default();
            trainer.head.forward(&h, &mut s);
            assert_eq!(probs, s.probs);
            // w · λ1 · CE(q, p), λ1 = 2.
            let want: f64 = ex
                .target
                .iter()
                .map(|&(l, q)| -f64::from(ex.weight * 2.0 * q) * f64::from(probs[l as usize]).ln())
                .sum();
            assert!((w.loss - want).abs() < 1e-6, "{} instead of {want}", w.loss);
            for k in 0..trainer.head.params().len() {
                let fd = slope(&mut trainer, (true, k), &sparse, &examples, i);
                let g = w.head_grad[k];
                assert!(
                    (f64::from(g) - fd).abs() < 1e-3,
                    "head {k}: {g} instead of {fd}"
                );
                largest.0 = largest.0.max(g.abs());
            }
            // One gradient row per input row, in row order.
            let rows: Vec<u32> = sparse.row(i).iter().map(|r| r.0).collect();
            assert_eq!(w.rows, rows);
            assert_eq!(w.vals.len(), rows.len() * dim);
            for (r, &f) in rows.iter().enumerate() {
                for j in 0..dim {
                    let fd = slope(
                        &mut trainer,
                        (false, f as usize * dim + j),
                        &sparse,
                        &examples,
                        i,
                    );
                    let g = w.vals[r * dim + j];
                    assert!(
                        (f64::from(g) - fd).abs() < 1e-3,
                        "row {f}[{j}]: {g} instead of {fd}"
                    );
                    largest.1 = largest.1.max(g.abs());
                }
            }
        }
        // Gradients well above the tolerance, or the comparison would prove little.
        assert!(largest.0 > 0.05 && largest.1 > 0.01, "{largest:?}");
    }

    /// Two chunks (workers), the repeated text in both; then the second alone as a batch of
    /// one. The head takes Adam steps (at the step size given to `step`) on each batch's mean
    /// gradient; the embedding rows take plain SGD steps of every example's gradient, in
    /// chunk order. Two batch sizes, because Adam does not see a constant gradient scale.
    #[test]
    fn a_step_moves_the_head_by_adam_on_the_mean_and_the_rows_by_every_gradient() {
        let (_, examples, mut trainer, sparse) = toy();
        let (dim, lr) = (trainer.config.dim, trainer.config.embedding_lr);
        let (mut a, mut b) = (TrainerWorker::default(), TrainerWorker::default());
        for i in [0, 1] {
            trainer.example(&mut a, &sparse, i, &examples[i]);
        }
        trainer.example(&mut b, &sparse, 2, &examples[2]);
        let mut head = trainer.head.params().to_vec();
        let mut adam = Adam::new(head.len(), 0.05);
        let mut emb = trainer.emb.clone();
        let mut total = Vec::new();
        for (workers, n) in [(vec![&a, &b], 3), (vec![&b], 1)] {
            let mean: Vec<f32> = (0..head.len())
                .map(|k| workers.iter().map(|w| w.head_grad[k]).sum::<f32>() * (1.0 / n as f32))
                .collect();
            adam.step(&mut head, &mean);
            for w in &workers {
                for (r, &f) in w.rows.iter().enumerate() {
                    for j in 0..dim {
                        emb[f as usize * dim + j] -= lr * w.vals[r * dim + j];
                    }
                }
            }
            trainer.step(workers.iter().copied(), n, &mut total, 0.05);
            assert_eq!(trainer.head.params(), &head[..]);
            assert_eq!(trainer.emb, emb);
        }
    }

    /// Workers are reused chunk after chunk: a reset one must sum as a fresh one does.
    #[test]
    fn a_reset_worker_starts_over_as_a_fresh_one() {
        let (_, examples, trainer, sparse) = toy();
        let mut used = TrainerWorker::default();
        for (i, ex) in examples.iter().enumerate() {
            trainer.example(&mut used, &sparse, i, ex);
        }
        Trainer::reset(&mut used);
        let mut fresh = TrainerWorker::default();
        for w in [&mut used, &mut fresh] {
            trainer.example(w, &sparse, 1, &examples[1]);
        }
        assert_eq!(
            (&used.head_grad, &used.rows, &used.vals, used.loss),
            (&fresh.head_grad, &fresh.rows, &fresh.vals, fresh.loss)
        );
    }

    #[test]
    fn the_trainers_accuracy_is_its_top_label_against_the_targets_top_label() {
        let (_, mut examples, trainer, sparse) = toy();
        let top: Vec<u32> = (0..3)
            .map(|i| {
                let mut w = TrainerWorker::default();
                super::super::argmax(trainer.example(&mut w, &sparse, i, &examples[i]))
            })
            .collect();
        // The first agrees; the second's soft target and the third's point elsewhere.
        examples[0].target = vec![(top[0], 1.0)];
        let other = |l: u32| (l + 1) % 3;
        let mut soft = vec![(other(top[1]), 0.7), (top[1], 0.3)];
        soft.sort_unstable_by_key(|t| t.0);
        examples[1].target = soft;
        examples[2].target = vec![(other(top[2]), 1.0)];
        assert_eq!(trainer.accuracy(&sparse, &[0, 1, 2], &examples), 1.0 / 3.0);
        assert_eq!(trainer.accuracy(&sparse, &[0], &examples), 1.0);
        assert_eq!(trainer.accuracy(&sparse, &[1, 2], &examples), 0.0);
        assert_eq!(trainer.accuracy(&sparse, &[], &examples), 0.0);
    }
}
