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
    /// Embedding width, `>= 1`. Default 64.
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
        let adam = Adam::new(head.params().len(), 1e-3);
        Ok(Self {
            config: config.clone(),
            emb,
            head,
            adam,
        })
    }

    /// Sets the head's Adam step (the same as the student's).
    pub(super) fn set_lr(&mut self, lr: f32) {
        self.adam.lr = lr;
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
    /// batch), SGD on the embedding rows (per example sums).
    pub(super) fn step<'a>(
        &mut self,
        workers: impl Iterator<Item = &'a TrainerWorker> + Clone,
        batch_len: usize,
        total: &mut Vec<f32>,
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
