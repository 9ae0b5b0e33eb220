//! Distillation: texts with hard seed labels and propagated soft labels → [`ProjectionModel`].
//!
//! Stage 5 of the pipeline. [`TrainSet`] joins the corpus records with the labels JSONL of
//! `sprig propagate` (or takes the corpus's own labels only), and [`train`] fits the network
//! on the projected texts, or builds the bucket table ([`ModelKind::Table`]).
//!
//! **Loss** (ProjectionNet, Ravi 2017, with the propagated labels as teacher):
//! `L = Σ_seeds w_v · CE(y_v, p_v) + λ Σ_propagated c_v · CE(Ĉ_v, p_v)`, averaged over the
//! batch, where `w_v` is the seed's weight sum (1 for a corpus label), `Ĉ_v` is the
//! propagated distribution renormalized after dropping the `unknown` mass, and `c_v` its
//! confidence ([`Confidence`]) divided by the mean confidence of the propagated examples (so
//! λ = 1 weighs an average one as a seed). Abstaining records and records below
//! [`TrainConfig::min_confidence`] are left out.
//!
//! **Optimization:** mini-batch Adam over seeded shuffles; early stopping on a held-out slice
//! of the labelled records (seeds when there are at least [`SEEDS_FOR_VALIDATION`] per label,
//! else propagated ones, whose "label" is the teacher's top label), never taking a label's
//! last example. By default only propagated labels are held out, and only a slice of at
//! least [`MIN_HELD_OUT`]: otherwise every epoch runs, and at least [`MIN_STEPS`] steps
//! ([`TrainConfig::hold_out_seeds`], [`TrainConfig::min_steps`]). What is held out, and
//! kept from the best epoch, is an exponential moving average of the weights
//! ([`TrainConfig::ema_decay`]), not the last step's weights.
//!
//! **Distillation through augmented copies** ([`TrainConfig::augment`], `--augment N`): a
//! linear teacher over the raw n-grams labels perturbed copies of the training texts, which
//! join the training side as soft examples (see `augment.rs`).
//!
//! **Calibration** ([`Calibration`], `--calibration`): after training, the exported
//! network's logits are scaled by the one factor that fits the held-out slice's top labels
//! best (or, with nothing held out, a tenth of the propagated labels as a second network
//! trained without them scores them; temperature scaling: see `calibrate.rs`), so that a
//! model distilled from soft propagated labels does not score its answers far below their
//! accuracy.
//!
//! **Joint training** ([`JointConfig`], `--joint`): ProjectionNet's larger trainer network
//! over the raw hashed n-grams learns alongside and teaches the projection network (see
//! `joint.rs`); only the projection network is saved.
//!
//! **Determinism:** each batch is cut into fixed chunks of [`CHUNK`] examples; rayon runs
//! the chunks in parallel, each into its own gradient buffer, and the buffers are summed in
//! chunk order. The model bytes are therefore identical for any thread count.
//!
//! **Layout:** `set.rs` assembles the [`TrainSet`] (corpus labels, seed files, the labels
//! JSONL of `sprig propagate`); `fit.rs` holds the network optimizer's internals (packed
//! inputs, per-chunk gradients and input dropout, the weight average, the held-out slice);
//! `calibrate.rs` the temperature's fit; this file the configuration, the reports,
//! [`train`] itself and the table model's build.

use std::borrow::Cow;
use std::ops::ControlFlow;

use rand::rngs::Xoshiro256PlusPlus;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::build::{Latch, Progress};
use crate::control::Flow;
use crate::error::{Error, Result};
use crate::model::{ModelKind, Predictor, ProjectionModel};
/// The type of [`TrainConfig::quantize`], also here so that a config can be written with
/// this module's names alone.
pub use crate::network::Quantization;
use crate::network::{Adam, Mlp, Network};
use crate::projection::Projector;
use crate::table::{bucket_key, Table};
use augment::Teacher;
// `argmax` only for `joint.rs`, `argmax_target` and `shuffle` for it and `augment.rs` too,
// which reach them as `super::…`.
use fit::{
    argmax, argmax_target, evaluate, held_out, network_accuracy, optimizer_step,
    outputs_are_finite, shuffle, Inputs, Shared, WeightAverage, Worker, DIVERGENCE_SAMPLE,
};

mod augment;
mod calibrate;
mod fit;
mod joint;
mod set;

pub use joint::JointConfig;
use joint::{SparseInputs, Trainer};
pub use set::{Example, TrainSet, TrainSetCounts, MAX_LABELS_LINE};

/// Examples per gradient chunk: the unit of parallel work and of the fixed-order reduction.
pub const CHUNK: usize = 16;

/// Seeds per label (on average) from which the held-out slice is taken from the seeds.
pub const SEEDS_FOR_VALIDATION: usize = 20;

/// The smallest held-out slice early stopping uses; below it, nothing is held out and every
/// epoch runs. An accuracy on fewer examples moves by more than a point per example
/// (its standard error at 80% is about 3 points at 200), so early stopping chased noise
/// (benches/README.md, fourteenth session). Gold labels are not held out by default at
/// all ([`TrainConfig::hold_out_seeds`]); propagated labels' slices (thousands) keep it.
pub const MIN_HELD_OUT: usize = 200;

/// The fewest optimizer steps a training run without a held-out slice takes: the epoch cap
/// is raised to reach it. Seeds alone are a few hundred examples, so 60 epochs were a few
/// hundred steps, and such models were undertrained (SNIPS with 5 seeds a label: 65% after
/// 180 steps, 78% after 1,800; benches/README.md, fourteenth session).
pub const MIN_STEPS: usize = 3000;

/// The widest hidden layer [`TrainConfig::validate`] accepts: far past any on-device model,
/// low enough that a typo cannot ask for hundreds of gigabytes.
pub const MAX_HIDDEN: usize = 4096;

/// The most weights a trained network may have (64 Mi: 256 MiB of `f32`, several copies of
/// which live during training); an on-device model is thousands of times smaller.
pub const MAX_NETWORK_WEIGHTS: usize = 1 << 26;

/// The most epochs [`TrainConfig::validate`] accepts.
pub const MAX_EPOCHS: usize = 100_000;

/// How sure a propagated label is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Confidence {
    /// `1 − unknown`: the mass that reached the node from some seed (Expander's ⊥).
    #[default]
    OneMinusUnknown,
    /// The top label's score.
    Top,
}

/// How the Adam step size moves over a training run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum LrSchedule {
    /// The learning rate at every step.
    Constant,
    /// Cosine annealing (Loshchilov & Hutter 2017, without restarts): step `s` of `S`
    /// planned steps (the epoch cap times the batches of an epoch) takes
    /// `lr · ½ (1 + cos(π s / S))`, from the full rate down to nearly 0 at the cap.
    Cosine,
}

impl LrSchedule {
    /// The schedule of a header that does not name one: the only one that existed then.
    fn unnamed() -> Self {
        LrSchedule::Constant
    }

    /// The step size of step `step` (from 0) of `total`.
    fn rate(self, lr: f32, step: usize, total: usize) -> f32 {
        match self {
            LrSchedule::Constant => lr,
            LrSchedule::Cosine => {
                let x = step as f64 / total.max(1) as f64;
                (f64::from(lr) * 0.5 * (1.0 + (std::f64::consts::PI * x.min(1.0)).cos())) as f32
            }
        }
    }
}

/// How a network's scores are calibrated after training (`calibrate.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Calibration {
    /// The scores as trained.
    None,
    /// The logits times one factor β (a softmax temperature of `1 / β`), fitted to the
    /// held-out slice's top labels by maximum likelihood; the answers do not change, only
    /// their scores. Without a held-out slice, cross-fitted: a second network, trained
    /// without one propagated example in ten, scores them for the fit (a second training;
    /// not done below 300 propagated examples). With gold labels alone and nothing held
    /// out, not fitted (one-hot targets leave a model calibrated already).
    Temperature,
}

impl Calibration {
    /// The calibration of a header that does not name one: models were not calibrated then.
    fn unnamed() -> Self {
        Calibration::None
    }
}

/// The examples a network's scores were calibrated on ([`TrainReport::calibrated_on`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CalibratedOn {
    /// The held-out slice, which training never saw.
    HeldOut,
    /// The propagated examples training learned from (nothing was held out): a network
    /// agrees with them more often than with new texts' labels. Only models written before
    /// [`CalibratedOn::CrossFitted`] say this.
    Propagated,
    /// One propagated example in ten (nothing was held out), scored by a second network
    /// trained as the model was but without them: texts new to it, as a held-out slice is
    /// to the model, which trained on everything.
    CrossFitted,
}

/// The training stage's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Network or table. Default network (it measured better; see benches/README.md).
    pub kind: ModelKind,
    /// Hidden layer widths. Default `[128]`: one layer keeps the int8 model under 200 KB at
    /// T·d = 1,120 inputs, about 80 KB with the default 4-bit first layer (SGNN used two
    /// layers of 256, which is about 360 KB in int8).
    pub hidden: Vec<usize>,
    /// Epoch cap, `>= 1`. Default 60, so that early stopping, not the cap, ends training:
    /// with input dropout the best held-out epoch was 20–39 on a 2,400-text corpus. Without
    /// a held-out slice (small sets), [`TrainConfig::min_steps`] may raise it: set that to 0
    /// for exactly `epochs`.
    pub epochs: usize,
    /// Stop after this many epochs without a better held-out score, `>= 1`. Default 8:
    /// with input dropout the held-out score keeps rising, unevenly, for 10–20 epochs.
    pub patience: usize,
    /// Adam step size, `> 0`. Default 1e-3 (Kingma & Ba).
    pub learning_rate: f32,
    /// How the step size moves over the run ([`LrSchedule`]; the joint trainer's head
    /// follows it too, its embedding's SGD step does not). Default
    /// [`LrSchedule::Constant`]: cosine annealing measured no better on the dev splits
    /// (training seeds 1–3, fully supervised: HWU64 86.77 → 86.65, SNIPS equal, SwDA 74.08
    /// → 72.34 with seed 1; few-label HWU64 71.72 → 71.47, SNIPS 96.81 → 97.05), though
    /// HWU64's test accuracy rose (83.80 → 84.20); see benches/README.md.
    #[serde(default = "LrSchedule::unnamed")]
    pub lr_schedule: LrSchedule,
    /// Examples per batch, `>= 1`. Default 64.
    pub batch_size: usize,
    /// λ: weight of the propagated (soft) examples against the seeds, in `[0, 1e6]` (a seed
    /// weight's range); 0 trains on the seeds alone (propagated labels are read and counted,
    /// not used). Default 1.
    pub soft_weight: f32,
    /// Propagated records whose confidence is below this are skipped, in `[0, 1]`.
    /// Default 0 (keep every record that does not abstain).
    pub min_confidence: f32,
    /// How confidence is measured. Default `1 − unknown`.
    pub confidence: Confidence,
    /// Share of the labelled pool held out for early stopping, in `[0, 0.5]`; 0 turns
    /// early stopping off, as does a share that would hold out fewer than
    /// `min_held_out` examples. Default 0.1.
    pub validation: f32,
    /// The smallest held-out slice early stopping uses; below it nothing is held out and
    /// every epoch runs. Default [`MIN_HELD_OUT`].
    pub min_held_out: usize,
    /// Whether seeds (gold labels) may be held out for early stopping when the slice comes
    /// from them (fully supervised, or at least [`SEEDS_FOR_VALIDATION`] seeds a label).
    /// Default `false`: measured, early stopping on gold labels ended training too soon on
    /// every set (SNIPS, HWU64 and SwDA fully supervised: +0.3, +0.6 and +1.0 points
    /// without; seeds alone +3 to +10), while on propagated labels it guards against
    /// fitting their noise. `sprig train --validation` sets it.
    pub hold_out_seeds: bool,
    /// Without a held-out slice, the fewest optimizer steps to take: `epochs` is raised to
    /// reach them (0 keeps `epochs` as it is). Default [`MIN_STEPS`].
    pub min_steps: usize,
    /// Seed of initialization, shuffling and the held-out split. Default 1.
    pub seed: u64,
    /// Input dropout: the share of a training example's projection bits zeroed at each
    /// visit (the others scaled by `1 / (1 − p)`), in `[0, 0.9]`. Default 0.5, chosen on
    /// the dev splits among 0, 0.2, 0.4 and 0.5 (projection seeds 1–3, patience 8): HWU64
    /// dev 84.2 → 85.4, SNIPS 97.8 → 97.9. The network otherwise memorizes its fixed
    /// projections within a few epochs; see benches/README.md for test and few-label
    /// figures.
    pub input_dropout: f32,
    /// Decay per step of an exponential moving average of the network's weights (Polyak
    /// averaging), in `[0, 1)`; 0 turns it off. The averaged weights are the ones held out,
    /// kept and exported; training itself steps the live weights. Default 0.998, a horizon of
    /// about 500 steps (2–4 epochs on the shared intent sets): averaging smooths the noisy
    /// steps that input dropout causes. Over projection seeds 1–5, HWU64 test 82.3 → 83.6
    /// and SNIPS 96.4 → 96.6 (dev 85.4 → 85.6 and 97.9 → 98.1); see benches/README.md.
    pub ema_decay: f32,
    /// Augmented copies per training example, labelled by a linear teacher (see
    /// `augment.rs`), at most 64; 0 turns distillation through copies off. Network models
    /// only (a table model is built from the texts themselves). Default 4:
    /// test accuracy rose on every set measured (projection seeds 1–5; benches/README.md):
    /// HWU64 83.6 → 84.0, SNIPS 96.6 → 97.1, few-label HWU64 71.3 → 72.7, the bundled
    /// replies 56.1 → 59.4. Training takes about three times as long, and the projected
    /// inputs of the copies are held in memory (T·d / 4 bytes each), so a corpus of more than
    /// a quarter million training texts gets fewer copies per text (about a million in all).
    pub augment: usize,
    /// How the exported weights are stored ([`Quantization`]). Default
    /// [`Quantization::Int4`]: the first layer in 4 bits, the later ones in 8, one scale per
    /// row (`--quantize`; `--float` keeps `f32`). A header written when this field was a
    /// boolean reads `true` as int8, `false` as none.
    pub quantize: Quantization,
    /// How the exported network's scores are calibrated ([`Calibration`]). Default
    /// [`Calibration::Temperature`]: a model distilled from propagated labels learned their
    /// softness, and scored its answers far below their accuracy (few-label SNIPS dev: 96%
    /// right, mean top score 0.54); see benches/README.md. Network models only.
    #[serde(default = "Calibration::unnamed")]
    pub calibration: Calibration,
    /// Labels kept per bucket of a table model, `>= 1`. Default 3.
    pub table_k: usize,
    /// Buckets holding fewer texts are left out of a table model, `>= 1`. Default 1 (keep
    /// all): on SNIPS at d = 14, dropping one-text buckets shrank the table from 18 to 8 MB
    /// but cost 20 points of few-label accuracy, since they act as nearest-neighbour hits.
    pub table_min_texts: usize,
    /// ProjectionNet's joint trainer ([`JointConfig`]); `None` (default) trains the
    /// projection network alone.
    pub joint: Option<JointConfig>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            kind: ModelKind::Network,
            hidden: vec![128],
            epochs: 60,
            patience: 8,
            learning_rate: 1e-3,
            lr_schedule: LrSchedule::Constant,
            batch_size: 64,
            soft_weight: 1.0,
            min_confidence: 0.0,
            confidence: Confidence::OneMinusUnknown,
            validation: 0.1,
            min_held_out: MIN_HELD_OUT,
            min_steps: MIN_STEPS,
            hold_out_seeds: false,
            seed: 1,
            input_dropout: 0.5,
            ema_decay: 0.998,
            augment: 4,
            quantize: Quantization::default(),
            calibration: Calibration::Temperature,
            table_k: 3,
            table_min_texts: 1,
            joint: None,
        }
    }
}

impl TrainConfig {
    /// Checks the ranges.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the field.
    pub fn validate(&self) -> Result<()> {
        if self.hidden.iter().any(|&w| w == 0 || w > MAX_HIDDEN) || self.hidden.len() > 4 {
            return Err(Error::config(
                "hidden",
                format!("at most 4 layers, each of width 1..={MAX_HIDDEN}"),
            ));
        }
        if self.epochs == 0 || self.epochs > MAX_EPOCHS {
            return Err(Error::config(
                "epochs",
                format!("must be in 1..={MAX_EPOCHS}"),
            ));
        }
        if self.patience == 0 {
            return Err(Error::config("patience", "must be at least 1"));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(Error::config("learning_rate", "must be finite and > 0"));
        }
        if self.batch_size == 0 {
            return Err(Error::config("batch_size", "must be at least 1"));
        }
        // Bounded as a seed's weight is, so that the scaled weights stay finite.
        if !(0.0..=1e6).contains(&self.soft_weight) {
            return Err(Error::config("soft_weight", "must be in [0, 1e6]"));
        }
        if !(0.0..=1.0).contains(&self.min_confidence) {
            return Err(Error::config("min_confidence", "must be in [0, 1]"));
        }
        if !(0.0..=0.5).contains(&self.validation) {
            return Err(Error::config("validation", "must be in [0, 0.5]"));
        }
        if !(0.0..=0.9).contains(&self.input_dropout) {
            return Err(Error::config("input_dropout", "must be in [0, 0.9]"));
        }
        if !(0.0..1.0).contains(&self.ema_decay) {
            return Err(Error::config("ema_decay", "must be in [0, 1)"));
        }
        if self.augment > 64 {
            return Err(Error::config("augment", "at most 64 copies per example"));
        }
        if self.table_k == 0 {
            return Err(Error::config("table_k", "must be at least 1"));
        }
        if self.table_min_texts == 0 {
            return Err(Error::config("table_min_texts", "must be at least 1"));
        }
        if let Some(j) = &self.joint {
            if self.kind == ModelKind::Table {
                return Err(Error::config(
                    "joint",
                    "joint training trains a network; a table model has none",
                ));
            }
            j.validate()?;
        }
        Ok(())
    }
}

/// What one epoch did.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean weighted training loss.
    pub train_loss: f64,
    /// Held-out accuracy against the target's top label (NaN-free: 0 without a held-out slice).
    pub val_accuracy: f64,
    /// Held-out mean loss.
    pub val_loss: f64,
    /// Held-out accuracy of the joint trainer network, when there is one.
    #[serde(default)]
    pub trainer_val_accuracy: Option<f64>,
    /// Held-out examples the two held-out figures are over (0: none, and the figures are
    /// placeholders). Models written before the field read 0.
    #[serde(default)]
    pub held_out: usize,
    /// Whether the epoch is the cross-fitted calibration's second network's
    /// ([`CalibratedOn::CrossFitted`]), not the model's. A `Break` from `on_epoch` on such
    /// an epoch leaves the model's scores uncalibrated. Never in a model's history.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub calibration: bool,
}

/// The training report stored in the model header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    /// The configuration.
    pub config: TrainConfig,
    /// How the examples were assembled.
    pub counts: TrainSetCounts,
    /// Examples trained on.
    pub train_examples: usize,
    /// Examples held out.
    pub val_examples: usize,
    /// Whether the held-out slice came from the seeds (else from propagated labels).
    pub val_from_seeds: bool,
    /// Augmented copies trained on (counted in `train_examples`).
    #[serde(default)]
    pub augmented_examples: usize,
    /// Held-out accuracy of the linear teacher that labelled them.
    #[serde(default)]
    pub teacher_val_accuracy: Option<f64>,
    /// The factor β the exported network's logits were multiplied by to calibrate its
    /// scores ([`Calibration::Temperature`]); `None` when they were not (gold labels alone
    /// and nothing held out, [`Calibration::None`], or a model from before calibration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logit_scale: Option<f64>,
    /// The examples `logit_scale` was fitted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibrated_on: Option<CalibratedOn>,
    /// Epochs run.
    pub epochs_run: usize,
    /// The epoch whose weights were kept.
    pub best_epoch: usize,
    /// Whether the caller's `on_epoch` ended training before its own stopping rule did
    /// ([`crate::control`]). Left out of the model file when false.
    #[serde(default, skip_serializing_if = "crate::control::not_stopped")]
    pub stopped: bool,
    /// Per-epoch statistics: every epoch of a run of at most [`HISTORY_KEPT`] epochs, else
    /// every k-th, the best and the last (the report is stored in the model file, which a
    /// run of thousands of short epochs would otherwise grow by hundreds of KB).
    pub history: Vec<EpochStats>,
}

impl TrainReport {
    /// The report a network model stores ([`ProjectionModel::train_report`], JSON), typed.
    /// `None` for a bucket table's, which has another shape, and for a report this build
    /// does not read. (Here rather than on the model, so that inference does not depend on
    /// the training module.)
    pub fn of(model: &ProjectionModel) -> Option<Self> {
        serde_json::from_value(model.train_report().clone()).ok()
    }
}

/// The most epochs a [`TrainReport`]'s history keeps.
pub const HISTORY_KEPT: usize = 60;

/// At most about [`HISTORY_KEPT`] of `history`'s epochs: every k-th, plus `best` and the
/// last.
fn thinned(history: Vec<EpochStats>, best: usize) -> Vec<EpochStats> {
    let n = history.len();
    if n <= HISTORY_KEPT {
        return history;
    }
    let stride = n.div_ceil(HISTORY_KEPT);
    history
        .into_iter()
        .filter(|s| s.epoch % stride == 0 || s.epoch == best || s.epoch == n)
        .collect()
}

/// Trains a model on `set` that reads text through `projector`, whose text, feature and
/// projection configs the model stores. (For a model distilled from a graph, build the
/// projector from the graph's text and feature configs,
/// [`crate::graph::Graph::text_configs`], so that both see a text alike.)
///
/// `progress` sees one stage per epoch (counted in batches); `on_epoch` is called after each
/// epoch of a network model. It returns `()`, or a [`ControlFlow`]
/// whose `Break` ends training after that epoch, keeping the best epoch so far as the
/// early-stopping rule would ([`crate::control`]; the report's `stopped` says so).
/// [`Progress::cancelled`] is asked between texts, every 1,024 of the linear teacher's steps,
/// and after each epoch: once it says `true`, training is abandoned.
///
/// # Errors
/// [`Error::InvalidConfig`] for a bad config or a bad example ([`TrainSet::validate`], or
/// a text that is empty after normalization); [`Error::NoSeeds`] for an empty train set;
/// [`Error::Cancelled`] when `progress` cancelled it.
pub fn train<R: Flow>(
    set: &TrainSet,
    projector: &Projector,
    config: &TrainConfig,
    progress: &dyn Progress,
    on_epoch: impl FnMut(&EpochStats) -> R,
) -> Result<ProjectionModel> {
    train_scored(set, projector, config, progress, on_epoch).map(|t| t.model)
}

/// A trained model and how the model as built scores on the held-out slice.
#[derive(Debug)]
pub struct Trained {
    /// The model, as [`train`] returns it.
    pub model: ProjectionModel,
    /// Held-out accuracy of the network the model holds, with its weights as stored
    /// (quantized per [`TrainConfig::quantize`]): the figure a user of the model gets. The
    /// epochs' figures ([`EpochStats::val_accuracy`], and the model's training report) are
    /// of the `f32` weights during training. `None` for a table model or without a held-out
    /// slice. Not in the model's header, so that the model's bytes are what they were
    /// before this figure existed.
    pub held_out_accuracy: Option<f64>,
    /// The held-out slice: indices into the train set's examples, ascending (empty for a
    /// table model or without a slice).
    pub held_out: Vec<usize>,
}

/// [`train`], also scoring the model as built on the held-out slice ([`Trained`]).
///
/// # Errors
/// As [`train`].
pub fn train_scored<R: Flow>(
    set: &TrainSet,
    projector: &Projector,
    config: &TrainConfig,
    progress: &dyn Progress,
    mut on_epoch: impl FnMut(&EpochStats) -> R,
) -> Result<Trained> {
    train_dyn(set, projector, config, progress, &mut |s| {
        on_epoch(s).flow()
    })
}

/// [`train_scored`] with the callback behind a reference: the cross-fitted calibration
/// trains its second network through this too, with a callback of another type.
fn train_dyn(
    set: &TrainSet,
    projector: &Projector,
    config: &TrainConfig,
    progress: &dyn Progress,
    on_epoch: &mut dyn FnMut(&EpochStats) -> ControlFlow<()>,
) -> Result<Trained> {
    config.validate()?;
    set.validate()?;
    let latch = Latch::new(progress);
    let progress: &dyn Progress = &latch;
    let (text, features, projection) = (
        projector.pipeline().text_config(),
        projector.pipeline().feature_config(),
        projector.config(),
    );
    progress.stage("projecting", Some(set.examples.len() as u64), "texts");
    let mut inputs = Inputs::project_counted(projector, &set.examples, progress);
    progress.finish_stage();
    latch.check()?;
    refuse_empty_texts(projector, &inputs, set)?;
    if config.kind == ModelKind::Table {
        let table = build_table(projector, &inputs, set, config)?;
        // Only the fields a table is built from: the network's (layers, epochs, quantization
        // and the rest) would describe a model that was never trained.
        let report = serde_json::json!({
            "config": {
                "kind": config.kind,
                "table_k": config.table_k,
                "table_min_texts": config.table_min_texts,
            },
            "counts": set.counts,
        });
        let model = ProjectionModel::new(
            text,
            features,
            projection,
            set.labels.clone(),
            Predictor::Table(table),
            report,
        )?;
        return Ok(Trained {
            model,
            held_out_accuracy: None,
            held_out: Vec::new(),
        });
    }
    // One generator, drawn in a fixed order (the network's initialization, the held-out
    // slice, the joint trainer's initialization, then each epoch's shuffle): the model bytes
    // depend on that order.
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(config.seed);
    let mut mlp = new_network(projector.dim(), set.labels.len(), config, &mut rng)?;
    let split = Split::choose(set, &inputs, config, &mut rng);
    let mut train_idx = split.train;
    let val = split.val;

    // Distillation through augmented copies: they join the training side only.
    let mut teacher_val_accuracy = None;
    let examples: Cow<'_, [Example]> = if config.augment > 0 {
        let (copies, accuracy) =
            augmented_copies(projector, set, &train_idx, &val, config, progress);
        latch.check()?;
        teacher_val_accuracy = accuracy;
        progress.stage("projecting copies", None, "texts");
        inputs.extend_projected(projector, &copies, &());
        progress.finish_stage();
        train_idx.extend(set.examples.len()..set.examples.len() + copies.len());
        Cow::Owned(set.examples.iter().cloned().chain(copies).collect())
    } else {
        Cow::Borrowed(&set.examples)
    };
    let joint = match &config.joint {
        Some(j) => {
            progress.stage("hashing", None, "texts");
            let sparse = SparseInputs::new(projector.pipeline(), &examples, j);
            progress.finish_stage();
            let trainer = Trainer::new(j, set.labels.len(), || rng.next_u64())?;
            Some((trainer, sparse))
        }
        None => None,
    };

    let data = Data {
        inputs: &inputs,
        examples: &examples,
        val: &val,
    };
    let (history, best_epoch, stopped) = fit(
        &mut mlp,
        &data,
        &mut train_idx,
        joint,
        config,
        &mut rng,
        progress,
        &mut |s| {
            if latch.cancelled() {
                ControlFlow::Break(())
            } else {
                on_epoch(s)
            }
        },
    );
    latch.check()?;
    // Only a far too large step gets here; never write a model that predicts NaN. Finite
    // weights can still overflow the logits, so a sample of examples is run through too.
    let sample: Vec<usize> = train_idx
        .iter()
        .chain(&val)
        .copied()
        .step_by(((train_idx.len() + val.len()) / DIVERGENCE_SAMPLE).max(1))
        .collect();
    if !mlp.params().iter().all(|p| p.is_finite()) || !outputs_are_finite(&mlp, &sample, &inputs) {
        return Err(Error::config(
            "learning_rate",
            format!(
                "training diverged (non-finite weights or outputs) at learning rate {}: a \
                 smaller learning rate, or smaller loss weights (λ, the joint trainer's \
                 λ1–λ3) if they were raised, keeps it finite",
                config.learning_rate
            ),
        ));
    }
    let network = Network::from_mlp(&mlp, config.quantize);
    // Calibrated as stored: the quantized network's logits are the ones scaled.
    let calibration = match calibrate::examples(config.calibration, &val, set) {
        Some(calibrate::Plan::HeldOut(idx)) => {
            let beta = calibrate::Slice::of(&network, &idx, &inputs, &examples).fit() as f32;
            Some((CalibratedOn::HeldOut, beta))
        }
        // A run its caller stopped is wanted now, not after a second training.
        Some(calibrate::Plan::CrossFit(fold)) if !stopped => {
            cross_fitted(set, projector, config, &fold, &inputs, progress, on_epoch)?
                .map(|beta| (CalibratedOn::CrossFitted, beta))
        }
        _ => None,
    };
    let network = match calibration {
        Some((_, beta)) => network.with_logits_scaled(beta),
        None => network,
    };
    let report = TrainReport {
        config: config.clone(),
        counts: set.counts,
        train_examples: train_idx.len(),
        val_examples: val.len(),
        val_from_seeds: split.from_seeds,
        augmented_examples: examples.len() - set.examples.len(),
        teacher_val_accuracy,
        logit_scale: calibration.map(|(_, beta)| f64::from(beta)),
        calibrated_on: calibration.map(|(on, _)| on),
        epochs_run: history.len(),
        best_epoch,
        stopped,
        history: thinned(history, best_epoch),
    };
    // The float weights' figure chose the best epoch; quantization moves the answers a
    // little, and what the user gets is the quantized network.
    let held_out_accuracy =
        (!val.is_empty()).then(|| network_accuracy(&network, &val, &inputs, &examples));
    let model = ProjectionModel::new(
        text,
        features,
        projection,
        set.labels.clone(),
        Predictor::Network(network),
        crate::format::header_value(&report),
    )?;
    Ok(Trained {
        model,
        held_out_accuracy,
        held_out: val,
    })
}

/// The factor β cross-fitted on `fold` ([`CalibratedOn::CrossFitted`]): a second network,
/// trained as `config` says (uncalibrated) on every other example of `set`, scores the
/// fold's examples, whose rows of `inputs` are the set's. Its epochs reach `on_epoch`
/// marked [`EpochStats::calibration`]; `None` when `on_epoch` stopped it.
fn cross_fitted(
    set: &TrainSet,
    projector: &Projector,
    config: &TrainConfig,
    fold: &[usize],
    inputs: &Inputs,
    progress: &dyn Progress,
    on_epoch: &mut dyn FnMut(&EpochStats) -> ControlFlow<()>,
) -> Result<Option<f32>> {
    let rest = TrainSet {
        labels: set.labels.clone(),
        examples: set
            .examples
            .iter()
            .enumerate()
            .filter(|(i, _)| fold.binary_search(i).is_err())
            .map(|(_, e)| e.clone())
            .collect(),
        counts: set.counts,
    };
    let second = TrainConfig {
        calibration: Calibration::None,
        ..config.clone()
    };
    progress.note(&format!(
        "calibrating the scores: a second network, trained without {} of the propagated \
         labels, scores them",
        fold.len()
    ));
    let mut stopped = false;
    let trained = train_dyn(
        &rest,
        projector,
        &second,
        &Latch::prefixed(progress, "calibration network: "),
        &mut |s| {
            let flow = on_epoch(&EpochStats {
                calibration: true,
                ..*s
            });
            stopped |= flow.is_break();
            flow
        },
    )?;
    if stopped {
        return Ok(None);
    }
    let Predictor::Network(network) = trained.model.predictor() else {
        unreachable!("a network config trains a network")
    };
    Ok(Some(
        calibrate::Slice::of(network, fold, inputs, &set.examples).fit() as f32,
    ))
}

/// Refuses a text with no token after normalization, which `graph` and `train` refuse in a
/// file. Only an all-zero input can be one, so only those are tokenized.
fn refuse_empty_texts(projector: &Projector, inputs: &Inputs, set: &TrainSet) -> Result<()> {
    let mut tokens = crate::text::Tokens::default();
    for (i, ex) in set.examples.iter().enumerate() {
        if inputs.packed_row(i).iter().all(|&b| b == 0) {
            projector.pipeline().tokenize_into(&ex.text, &mut tokens);
            if tokens.is_empty() {
                return Err(Error::config(
                    "examples",
                    format!(
                        "example {i} ({:?}): text is empty after normalization",
                        set::excerpt(&ex.text)
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The network `dim → hidden… → labels`, initialized from `rng`.
fn new_network(
    dim: usize,
    labels: usize,
    config: &TrainConfig,
    rng: &mut Xoshiro256PlusPlus,
) -> Result<Mlp> {
    let mut sizes = vec![dim];
    sizes.extend(&config.hidden);
    sizes.push(labels);
    // Each flag is bounded on its own; their product is what gets allocated (several times
    // over: weights, Adam's moments, the average, per-thread gradients).
    let weights: usize = sizes.windows(2).map(|w| w[0] * w[1]).sum();
    if weights > MAX_NETWORK_WEIGHTS {
        return Err(Error::config(
            "hidden",
            format!(
                "a network of {weights} weights ({sizes:?}) is past the limit of \
                 {MAX_NETWORK_WEIGHTS}: fewer projection bits or narrower layers"
            ),
        ));
    }
    Mlp::new(&sizes, || rng.next_u64())
}

/// The examples' split into the held-out slice and the training side.
struct Split {
    /// Held-out examples, ascending.
    val: Vec<usize>,
    /// The other examples, ascending.
    train: Vec<usize>,
    /// Whether the slice was drawn from the seeds (else from the propagated examples).
    from_seeds: bool,
}

impl Split {
    /// The held-out slice: seeds if there are enough of them, else propagated examples; none
    /// when the slice would be too small to judge epochs by more than noise.
    fn choose(
        set: &TrainSet,
        inputs: &Inputs,
        config: &TrainConfig,
        rng: &mut Xoshiro256PlusPlus,
    ) -> Self {
        let n_seeds = set.examples.iter().filter(|e| e.seed).count();
        let from_seeds =
            n_seeds >= SEEDS_FOR_VALIDATION * set.labels.len() || n_seeds == set.examples.len();
        let mut pool: Vec<usize> = (0..set.examples.len())
            .filter(|&i| set.examples[i].seed == from_seeds)
            .collect();
        shuffle(&mut pool, rng);
        let n_val = if pool.len() >= 2 && (config.hold_out_seeds || !from_seeds) {
            ((pool.len() as f64 * f64::from(config.validation)).round() as usize)
                .min(pool.len() / 2)
        } else {
            0
        };
        let n_val = if n_val < config.min_held_out {
            0
        } else {
            n_val
        };
        let val = held_out(
            &pool,
            &set.examples,
            |i| inputs.packed_row(i),
            set.labels.len(),
            n_val,
        );
        let train = (0..set.examples.len())
            .filter(|i| val.binary_search(i).is_err())
            .collect();
        Split {
            val,
            train,
            from_seeds,
        }
    }
}

/// The linear teacher's perturbed copies of the `train_idx` examples, and the teacher's
/// accuracy on the held-out slice (if there is one).
fn augmented_copies(
    projector: &Projector,
    set: &TrainSet,
    train_idx: &[usize],
    val: &[usize],
    config: &TrainConfig,
    progress: &dyn Progress,
) -> (Vec<Example>, Option<f64>) {
    progress.stage(
        "linear teacher",
        Some(augment::TEACHER_EPOCHS as u64),
        "epochs",
    );
    let pipeline = projector.pipeline();
    let teacher = Teacher::fit(
        pipeline,
        &set.examples,
        train_idx,
        set.labels.len(),
        config.seed,
        progress,
    );
    progress.finish_stage();
    if progress.cancelled() {
        return (Vec::new(), None);
    }
    let accuracy = (!val.is_empty()).then(|| teacher.accuracy(pipeline, &set.examples, val));
    let per_example = config
        .augment
        .min((augment::MAX_COPIES / train_idx.len().max(1)).max(1));
    progress.stage("augmented copies", Some(train_idx.len() as u64), "texts");
    let copies: Vec<Example> = train_idx
        .par_iter()
        .flat_map_iter(|&i| {
            progress.advance(1);
            // Cancelled: no more copies (the caller returns an error).
            let per_example = if progress.cancelled() { 0 } else { per_example };
            (0..per_example).filter_map(move |c| {
                augment::perturb(&set.examples[i].text, config.seed, i, c).map(|t| (i, t))
            })
        })
        // A copy weighs what its source weighs: a seed's copies as a seed, a propagated
        // example's as that example (λ and its confidence). Fully supervised, every copy
        // weighs 1 whatever λ says.
        .map(|(i, text)| Example {
            target: teacher.target(pipeline, &text),
            text,
            weight: set.examples[i].weight,
            seed: false,
        })
        .collect();
    progress.finish_stage();
    (copies, accuracy)
}

/// What the epochs read: every example's projected input (the augmented copies' too), and
/// the held-out slice.
struct Data<'a> {
    inputs: &'a Inputs,
    examples: &'a [Example],
    val: &'a [usize],
}

/// Runs the epochs and leaves in `mlp` the weights of the best one (the last, without a
/// held-out slice): the moving average's when there is one. Returns every epoch's figures,
/// the best epoch, and whether `on_epoch` ended the run.
#[allow(clippy::too_many_arguments)]
fn fit(
    mlp: &mut Mlp,
    data: &Data<'_>,
    train_idx: &mut [usize],
    mut joint: Option<(Trainer, SparseInputs)>,
    config: &TrainConfig,
    rng: &mut Xoshiro256PlusPlus,
    progress: &dyn Progress,
    on_epoch: &mut dyn FnMut(&EpochStats) -> ControlFlow<()>,
) -> (Vec<EpochStats>, usize, bool) {
    let (inputs, examples, val) = (data.inputs, data.examples, data.val);
    let mut adam = Adam::new(mlp.params().len(), config.learning_rate);
    let mut head_total = Vec::new();
    let mut workers: Vec<Worker> = Vec::new();
    let mut best = (f64::NEG_INFINITY, f64::INFINITY, 0usize);
    let mut best_params = mlp.params().to_vec();
    let mut history = Vec::new();
    let mut stopped = false;
    // Kept in 256ths, so that a mask costs one random byte per bit.
    let keep = (256.0 * (1.0 - config.input_dropout))
        .round()
        .clamp(1.0, 256.0) as u32;
    let mut average = (config.ema_decay > 0.0).then(|| WeightAverage::new(mlp.params().len()));
    // Without a held-out slice only the epoch cap says when to stop, and on a small set
    // (seeds alone) that was too few steps: the cap is raised to `min_steps` steps.
    let steps_per_epoch = train_idx.len().div_ceil(config.batch_size).max(1);
    let epochs = if val.is_empty() {
        config
            .epochs
            .max(config.min_steps.div_ceil(steps_per_epoch))
            .min(MAX_EPOCHS)
    } else {
        config.epochs
    };
    // The schedule's length: every planned step, whether or not early stopping ends the run
    // before them.
    let planned = epochs * steps_per_epoch;
    let mut steps = 0;
    for epoch in 1..=epochs {
        shuffle(train_idx, rng);
        // From the seed and the epoch, not from `rng`, so that training without dropout
        // draws the same shuffles as before the option existed.
        let epoch_key = crate::hash::hash_with_seed(&(epoch as u64).to_le_bytes(), config.seed);
        let n_batches = train_idx.len().div_ceil(config.batch_size);
        progress.stage(&format!("epoch {epoch}"), Some(n_batches as u64), "batches");
        let mut epoch_loss = 0.0f64;
        for batch in train_idx.chunks(config.batch_size) {
            let chunks: Vec<&[usize]> = batch.chunks(CHUNK).collect();
            if workers.len() < chunks.len() {
                workers.resize_with(chunks.len(), Worker::default);
            }
            let shared = Shared {
                mlp,
                inputs,
                examples,
                joint: joint.as_ref().map(|(t, s)| (t, s)),
                keep,
                epoch_key,
            };
            workers[..chunks.len()]
                .par_iter_mut()
                .zip(chunks.par_iter())
                .for_each(|(w, items)| w.run(&shared, items));
            for w in &workers[..chunks.len()] {
                epoch_loss += w.loss + w.trainer.loss;
            }
            let lr = config
                .lr_schedule
                .rate(config.learning_rate, steps, planned);
            adam.lr = lr;
            steps += 1;
            if let Some((trainer, _)) = &mut joint {
                trainer.step(
                    workers[..chunks.len()].iter().map(|w| &w.trainer),
                    batch.len(),
                    &mut head_total,
                    lr,
                );
            }
            let grads: Vec<&[f32]> = workers[..chunks.len()]
                .iter()
                .map(|w| &w.grad[..])
                .collect();
            optimizer_step(
                mlp.params_mut(),
                &mut adam,
                &grads,
                1.0 / batch.len() as f32,
                average.as_mut().map(|a| (a, config.ema_decay)),
            );
            progress.advance(1);
        }
        progress.finish_stage();
        // Held out, and kept, are the averaged weights; the live ones come back below.
        if let Some(a) = &mut average {
            a.swap_in(mlp.params_mut(), config.ema_decay);
        }
        let (val_accuracy, val_loss) = evaluate(mlp, val, inputs, examples);
        let stats = EpochStats {
            epoch,
            train_loss: epoch_loss / train_idx.len().max(1) as f64,
            val_accuracy,
            val_loss,
            trainer_val_accuracy: joint.as_ref().map(|(t, s)| t.accuracy(s, val, examples)),
            held_out: val.len(),
            calibration: false,
        };
        let flow = on_epoch(&stats);
        history.push(stats);
        // Higher accuracy wins; equal accuracy, lower loss. Without a held-out slice the
        // last epoch wins.
        let better = val_accuracy > best.0 || (val_accuracy == best.0 && val_loss < best.1);
        if val.is_empty() || better {
            best = (val_accuracy, val_loss, epoch);
            best_params.copy_from_slice(mlp.params());
        } else if epoch - best.2 >= config.patience {
            break;
        }
        // After the best epoch's bookkeeping, so that a stop keeps this epoch when it is the
        // best; a stop at the last epoch cuts nothing short.
        if flow.is_break() && epoch < epochs {
            stopped = true;
            break;
        }
        if let Some(a) = &average {
            a.swap_out(mlp.params_mut());
        }
    }
    mlp.params_mut().copy_from_slice(&best_params);
    (history, best.2, stopped)
}

/// The graph-based projection model (the on-device Smart Reply design): the bipartite graph between
/// the texts and their T buckets, with the labels carried one step from the texts (whose
/// targets already come from propagation over the text graph) to the buckets; each bucket
/// keeps its top-k labels.
fn build_table(
    projector: &Projector,
    inputs: &Inputs,
    set: &TrainSet,
    config: &TrainConfig,
) -> Result<Table> {
    let p = projector.config();
    if p.bits + (64 - u64::from(p.functions).leading_zeros()) > 64 {
        return Err(Error::config(
            "bits",
            "too many bits per function for a table key",
        ));
    }
    let n = set.examples.len();
    let mut codes = Vec::new();
    let mut text_keys: Vec<u64> = Vec::with_capacity(n * p.functions as usize);
    let mut row = Vec::new();
    for i in 0..inputs.len() {
        inputs.row(i, &mut row);
        projector.codes(&row, &mut codes);
        text_keys.extend(
            codes
                .iter()
                .enumerate()
                .map(|(t, &c)| bucket_key(t, c, p.bits)),
        );
    }
    let mut sorted = text_keys.clone();
    sorted.sort_unstable();
    let mut keys = Vec::new();
    for run in sorted.chunk_by(|a, b| a == b) {
        if run.len() >= config.table_min_texts {
            keys.push(run[0]);
        }
    }
    // One propagation step, from the texts to their buckets: each bucket takes the
    // weighted mean of its texts' label distributions (weight = the example's loss weight,
    // so seeds count fully and propagated labels by confidence). More steps re-smooth labels
    // the text graph already propagated, over a graph where every text touches T buckets
    // and short texts share generic ones: iterated to convergence (30 Expander sweeps, the
    // first design), every bucket drifted to the global label mass. Dev accuracy, one step
    // against 30 sweeps (texts never in training): SNIPS few-label 91.1 vs 73.6 and fully
    // supervised 93.1 vs 90.1, HWU64 53.1 vs 51.6 and 63.6 vs 63.8; the bundled replies
    // corpus 7.4 → 45.7 (benches/README.md, seventh session).
    let t_total = p.functions as usize;
    let mut sums: Vec<Vec<(u32, f32)>> = vec![Vec::new(); keys.len()];
    for (i, key) in text_keys.iter().enumerate() {
        let Ok(b) = keys.binary_search(key) else {
            continue;
        };
        let ex = &set.examples[i / t_total];
        let sum = &mut sums[b];
        for &(l, q) in &ex.target {
            match sum.iter_mut().find(|e| e.0 == l) {
                Some(e) => e.1 += ex.weight * q,
                None => sum.push((l, ex.weight * q)),
            }
        }
    }
    let buckets: Vec<(u64, Vec<(u32, f32)>)> = keys
        .iter()
        .zip(sums)
        .filter_map(|(&key, mut entries)| {
            // A bucket's entries are its label distribution, so a prediction's score is the
            // share of the T buckets' votes, and `--threshold` reads the same for any corpus.
            entries.retain(|e| e.1 > 0.0);
            let total: f32 = entries.iter().map(|e| e.1).sum();
            entries.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            entries.truncate(config.table_k);
            for e in &mut entries {
                e.1 = (e.1 / total).min(1.0);
            }
            (!entries.is_empty()).then_some((key, entries))
        })
        .collect();
    if buckets.is_empty() {
        // Such a model would abstain on every text.
        return Err(Error::config(
            "table_min_texts",
            format!(
                "no bucket holds {} or more training texts: lower it",
                config.table_min_texts
            ),
        ));
    }
    // A bucket never holds more labels than exist, whatever `table_k` asks for.
    Ok(Table::new(
        config.table_k.min(set.labels.len().max(1)),
        buckets,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::Record;
    use crate::projection::ProjectionConfig;
    use crate::text::{FeatureConfig, TextConfig};

    pub(super) fn rec(line: u64, text: &str, label: Option<&str>) -> Record {
        Record {
            line,
            id: None,
            text: text.into(),
            label: label.map(Into::into),
        }
    }

    /// Four intents, a few phrasings each, repeated with small variations.
    pub(super) fn toy_records() -> Vec<Record> {
        let base = [
            ("hello there", "greeting"),
            ("hi how are you", "greeting"),
            ("hey friend", "greeting"),
            ("thanks a lot", "thanks"),
            ("thank you so much", "thanks"),
            ("many thanks", "thanks"),
            ("see you later", "goodbye"),
            ("bye for now", "goodbye"),
            ("goodbye friend", "goodbye"),
            ("where are you", "where"),
            ("where should we meet", "where"),
            ("what is your location", "where"),
        ];
        let suffixes = ["", "!", " :)", " ok", " pls"];
        let mut out = Vec::new();
        for s in suffixes {
            for (t, l) in base {
                out.push(rec(out.len() as u64 + 1, &format!("{t}{s}"), Some(l)));
            }
        }
        out
    }

    fn small() -> TrainConfig {
        TrainConfig {
            hidden: vec![16],
            epochs: 8,
            batch_size: 8,
            learning_rate: 0.01,
            validation: 0.0,
            // Toy sets: a test that holds out does so however few examples it has (seeds
            // too), and one that does not runs its epochs.
            min_held_out: 1,
            min_steps: 0,
            hold_out_seeds: true,
            ..TrainConfig::default()
        }
    }

    /// `e` as a propagated example of one of 4 labels, with `label` on top: 0.55 on it,
    /// 0.15 on each other (a propagated distribution's softness).
    fn propagated_like(e: Example, label: u32) -> Example {
        Example {
            target: (0..4)
                .map(|j| (j, if j == label { 0.55 } else { 0.15 }))
                .collect(),
            seed: false,
            ..e
        }
    }

    /// A network model's network.
    fn network(m: &ProjectionModel) -> Network {
        match m.predictor() {
            Predictor::Network(n) => n.clone(),
            Predictor::Table(_) => panic!("a network model"),
        }
    }

    /// [`small`] for a bucket-table model.
    fn small_table() -> TrainConfig {
        TrainConfig {
            kind: ModelKind::Table,
            ..small()
        }
    }

    /// The score `preds` give label `l` (0 when it is not among them).
    fn score_of(preds: &[crate::model::Prediction], l: u32) -> f32 {
        preds.iter().find(|p| p.label == l).map_or(0.0, |p| p.score)
    }

    /// The projector of the default text, feature and projection configs.
    fn default_projector() -> Projector {
        Projector::new(
            &TextConfig::default(),
            &FeatureConfig::default(),
            &ProjectionConfig::default(),
        )
        .expect("the default configs are valid")
    }

    /// `train_scored` with the default text, feature and projection configs, no progress,
    /// and `on_epoch` for each epoch's stats.
    fn try_fit_scored<R: Flow>(
        set: &TrainSet,
        config: &TrainConfig,
        on_epoch: impl FnMut(&EpochStats) -> R,
    ) -> Result<Trained> {
        let projector = default_projector();
        train_scored(set, &projector, config, &(), on_epoch)
    }

    /// [`try_fit_scored`]'s model alone, as `train` returns it.
    fn try_fit<R: Flow>(
        set: &TrainSet,
        config: &TrainConfig,
        on_epoch: impl FnMut(&EpochStats) -> R,
    ) -> Result<ProjectionModel> {
        try_fit_scored(set, config, on_epoch).map(|t| t.model)
    }

    fn fit(set: &TrainSet, config: &TrainConfig) -> ProjectionModel {
        try_fit(set, config, |_| {}).unwrap()
    }

    #[test]
    fn a_text_empty_after_normalization_is_refused_as_the_cli_refuses_it() {
        let mut records = toy_records();
        records[3].text = " \u{200b} ".into();
        let set = TrainSet::supervised(&records).unwrap();
        let e = try_fit(&set, &small(), |_| {}).unwrap_err().to_string();
        assert!(
            e.contains("invalid examples: example 3 (")
                && e.contains("text is empty after normalization"),
            "{e}"
        );
        // A text with tokens but no feature (one word, word bigrams only) projects to zeros
        // too, and is accepted, as `sprig train` accepts it.
        records[3].text = "hello".into();
        let set = TrainSet::supervised(&records).unwrap();
        let bigrams = FeatureConfig {
            unigrams: false,
            char_min: 0,
            ..FeatureConfig::default()
        };
        let projector = Projector::new(
            &TextConfig::default(),
            &bigrams,
            &ProjectionConfig::default(),
        )
        .unwrap();
        train(&set, &projector, &small(), &(), |_| {}).unwrap();
    }

    #[test]
    fn learns_the_toy_intents() {
        let set = TrainSet::supervised(&toy_records()).unwrap();
        assert_eq!(set.labels, ["goodbye", "greeting", "thanks", "where"]);
        let model = fit(&set, &small());
        for (text, want) in [("hello there!!", "greeting"), ("thanks so much", "thanks")] {
            let top = model.predict(text)[0];
            assert_eq!(model.label_name(top.label), want, "{text}");
        }
    }

    #[test]
    fn same_bytes_for_one_and_two_threads() {
        let set = TrainSet::supervised(&toy_records()).unwrap();
        let config = TrainConfig {
            validation: 0.2,
            ..small()
        };
        let run =
            |threads: usize| crate::test_util::in_pool(threads, || fit(&set, &config).to_bytes());
        let one = run(1);
        assert_eq!(one, run(2));
        let other_seed = TrainConfig {
            seed: 2,
            ..config.clone()
        };
        assert_ne!(one, fit(&set, &other_seed).to_bytes());
        // Input dropout (on by default) draws its masks per example, not per thread.
        assert!(config.input_dropout > 0.0);
        let no_dropout = TrainConfig {
            input_dropout: 0.0,
            ..config.clone()
        };
        let none = crate::test_util::in_pool(1, || fit(&set, &no_dropout).to_bytes());
        assert_ne!(one, none);
        assert_eq!(
            none,
            crate::test_util::in_pool(2, || fit(&set, &no_dropout).to_bytes())
        );
    }

    #[test]
    fn augmented_copies_train_on_the_teacher_and_keep_determinism() {
        let set = TrainSet::supervised(&toy_records()).unwrap();
        let config = TrainConfig {
            augment: 2,
            validation: 0.2,
            ..small()
        };
        let run = |threads: usize| crate::test_util::in_pool(threads, || fit(&set, &config));
        let model = run(1);
        assert_eq!(model.to_bytes(), run(2).to_bytes());
        let report = TrainReport::of(&model).unwrap();
        // Every toy text has at least two words, and no copy comes from the held-out slice.
        assert!(report.augmented_examples > 0);
        assert!(report.augmented_examples <= 2 * (set.examples.len() - report.val_examples));
        assert_eq!(
            report.train_examples,
            set.examples.len() - report.val_examples + report.augmented_examples
        );
        let teacher = report.teacher_val_accuracy.expect("a held-out slice");
        assert!((0.0..=1.0).contains(&teacher));
        let plain = TrainConfig {
            augment: 0,
            ..config.clone()
        };
        let without = fit(&set, &plain);
        assert_ne!(model.to_bytes(), without.to_bytes());
        let report = TrainReport::of(&without).unwrap();
        assert_eq!(
            (report.augmented_examples, report.teacher_val_accuracy),
            (0, None)
        );
    }

    /// Early stopping on a handful of held-out examples stopped a tiny seed set after one
    /// epoch ("best epoch 1 of 9, held-out accuracy 1.0000 on 1 seeds"): below
    /// `min_held_out` nothing is held out and every epoch runs.
    #[test]
    fn too_small_a_held_out_slice_is_not_taken() {
        let set = TrainSet::supervised(&toy_records()).unwrap();
        let report = |min_held_out: usize| -> TrainReport {
            let config = TrainConfig {
                validation: 0.2,
                min_held_out,
                ..small()
            };
            TrainReport::of(&fit(&set, &config)).unwrap()
        };
        let none = report(MIN_HELD_OUT);
        assert_eq!(none.val_examples, 0);
        assert_eq!((none.epochs_run, none.best_epoch), (8, 8));
        let some = report(1);
        assert!(some.val_examples > 0 && some.val_examples < MIN_HELD_OUT);
        // With nothing held out the epoch cap is raised to `min_steps` optimizer steps, and
        // the stored history of so many epochs is thinned.
        let config = TrainConfig {
            min_steps: 2000,
            ..small()
        };
        let r = TrainReport::of(&fit(&set, &config)).unwrap();
        let per_epoch = r.train_examples.div_ceil(config.batch_size);
        assert_eq!(r.epochs_run, 2000usize.div_ceil(per_epoch));
        assert!(r.epochs_run > 8);
        assert!(r.history.len() <= HISTORY_KEPT + 2 || r.epochs_run <= HISTORY_KEPT);
        assert_eq!(r.history.last().unwrap().epoch, r.epochs_run);
        assert!(r.history.iter().any(|s| s.epoch == r.best_epoch));
    }

    /// An `on_epoch` that returns `Break` ends training after that epoch with the network a
    /// run capped there would give (at a constant rate: the cosine schedule is planned over
    /// the cap, so a run stopped early has not annealed); at the last epoch it cuts nothing
    /// short, and the model bytes are those of a run with a plain callback.
    #[test]
    fn a_callback_that_breaks_ends_training_after_that_epoch() {
        let set = TrainSet::supervised(&toy_records()).unwrap();
        let config = TrainConfig {
            lr_schedule: LrSchedule::Constant,
            ..small()
        };
        let stop_at = |n: usize| {
            move |s: &EpochStats| {
                if s.epoch == n {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            }
        };
        let stopped = try_fit(&set, &config, &mut stop_at(3)).unwrap();
        let capped = fit(
            &set,
            &TrainConfig {
                epochs: 3,
                ..config.clone()
            },
        );
        let report = |m: &ProjectionModel| -> TrainReport { TrainReport::of(m).unwrap() };
        let r = report(&stopped);
        assert!(r.stopped);
        assert_eq!((r.epochs_run, r.best_epoch), (3, 3));
        assert!(!report(&capped).stopped);
        for record in toy_records() {
            assert_eq!(stopped.predict(&record.text), capped.predict(&record.text));
        }

        let plain = fit(&set, &config);
        let last = try_fit(&set, &config, &mut stop_at(report(&plain).epochs_run)).unwrap();
        assert!(!report(&last).stopped);
        assert_eq!(last.to_bytes(), plain.to_bytes());
        assert!(plain.train_report().get("stopped").is_none());
    }

    /// A progress that cancels, in any stage, gives an error and no model, even when the
    /// caller's flag says so only once (a cut-short teacher or projection is never used);
    /// in the epochs, training ends with the epoch that saw it.
    #[test]
    fn a_cancelled_training_returns_no_model() {
        use crate::test_util::{in_pool, CancelIn};
        let set = TrainSet::supervised(&toy_records()).unwrap();
        let config = TrainConfig {
            augment: 2,
            ..small()
        };
        let table = small_table();
        let projector = default_projector();
        let never = CancelIn::new("", u64::MAX, false);
        let model = train(&set, &projector, &config, &never, |_| {}).unwrap();
        assert_eq!(model.to_bytes(), fit(&set, &config).to_bytes());
        for once in [false, true] {
            // (config, stage, its question that cancels, epochs the callback then saw)
            for (config, stage, after, epochs) in [
                (&config, "projecting", 0, 0),
                (&config, "projecting", 5, 0),
                (&config, "linear teacher", 0, 0),
                (&config, "augmented copies", 3, 0),
                (&config, "epoch 1", 0, 0),
                (&config, "epoch 3", 0, 2),
                (&table, "projecting", 0, 0),
            ] {
                let progress = CancelIn::new(stage, after, once);
                let mut seen = 0;
                let got = in_pool(2, || {
                    train(&set, &projector, config, &progress, |_| seen += 1)
                });
                let at = format!("{stage} {after}, once {once}");
                assert!(matches!(got, Err(Error::Cancelled)), "{at}: {got:?}");
                assert!(progress.said(), "{at}");
                assert_eq!(seen, epochs, "{at}");
            }
        }
    }

    #[test]
    fn the_held_out_accuracy_is_the_stored_networks() {
        let set = TrainSet::supervised(&toy_records()).unwrap();
        let projector = default_projector();
        let inputs = Inputs::project_counted(&projector, &set.examples, &());
        let all: Vec<usize> = (0..set.examples.len()).collect();
        for quantize in [Quantization::None, Quantization::Int8, Quantization::Int4] {
            let config = TrainConfig {
                validation: 0.2,
                quantize,
                ..small()
            };
            let trained = try_fit_scored(&set, &config, |_| {}).unwrap();
            let report = TrainReport::of(&trained.model).unwrap();
            assert!(report.val_examples > 0);
            assert_eq!(trained.held_out.len(), report.val_examples);
            let score = trained.held_out_accuracy.expect("a held-out slice");
            // The figure is the stored model's, by its own predictions on the slice.
            let hits = trained
                .held_out
                .iter()
                .filter(|&&i| {
                    let ex = &set.examples[i];
                    trained.model.predict(&ex.text)[0].label == argmax_target(&ex.target)
                })
                .count();
            assert_eq!(
                score,
                hits as f64 / report.val_examples as f64,
                "{quantize:?}"
            );
            // And `network_accuracy` scores what the model predicts, over every example.
            let Predictor::Network(network) = trained.model.predictor() else {
                panic!("a network model");
            };
            let predicted = set
                .examples
                .iter()
                .filter(|ex| {
                    let top = trained.model.predict(&ex.text)[0].label;
                    top == argmax_target(&ex.target)
                })
                .count();
            let want = predicted as f64 / set.examples.len() as f64;
            assert_eq!(
                network_accuracy(network, &all, &inputs, &set.examples),
                want
            );
        }
    }

    #[test]
    fn exports_the_averaged_weights() {
        let set = TrainSet::supervised(&toy_records()).unwrap();
        let config = small();
        assert!(config.ema_decay > 0.0, "on by default");
        let plain = TrainConfig {
            ema_decay: 0.0,
            ..config.clone()
        };
        let averaged = fit(&set, &config);
        // The scores, not the bytes: the header's config differs in any case.
        assert_ne!(scores(&averaged), scores(&fit(&set, &plain)));
        let top = averaged.predict("thanks so much")[0];
        assert_eq!(averaged.label_name(top.label), "thanks");
    }

    /// Every score the model gives the toy texts, as bits: what its weights decide.
    fn scores(model: &ProjectionModel) -> Vec<u32> {
        toy_records()
            .iter()
            .flat_map(|r| model.predict(&r.text))
            .map(|p| p.score.to_bits())
            .collect()
    }

    #[test]
    fn the_schedule_reaches_the_optimizer() {
        let set = TrainSet::supervised(&toy_records()).unwrap();
        let every_epoch = small();
        assert_eq!(every_epoch.lr_schedule, LrSchedule::Constant, "the default");
        let with = |lr_schedule, base: &TrainConfig| {
            scores(&fit(
                &set,
                &TrainConfig {
                    lr_schedule,
                    ..base.clone()
                },
            ))
        };
        let early_stopping = TrainConfig {
            validation: 0.25,
            ..small()
        };
        // With the joint trainer, whose head's step follows the schedule too.
        let joint = TrainConfig {
            joint: Some(JointConfig::default()),
            ..small()
        };
        for base in [&every_epoch, &early_stopping, &joint] {
            assert_ne!(
                with(LrSchedule::Cosine, base),
                with(LrSchedule::Constant, base),
                "{base:?}"
            );
        }
    }

    #[test]
    fn cosine_annealing_falls_from_the_rate_to_zero() {
        let lr = 0.004f32;
        let cosine = |s| LrSchedule::Cosine.rate(lr, s, 100);
        assert_eq!(cosine(0), lr);
        assert!(
            (cosine(50) - lr / 2.0).abs() < 1e-9,
            "half way: half the rate"
        );
        // cos(π/4) = √½: a quarter of the way, (1 + √½) / 2 of the rate.
        let quarter = f64::from(lr) * (1.0 + 0.5f64.sqrt()) / 2.0;
        assert!((f64::from(cosine(25)) - quarter).abs() < 1e-9);
        assert!(
            cosine(100).abs() < 1e-9 && cosine(200).abs() < 1e-9,
            "0 from the cap on"
        );
        assert!(
            (0..100).all(|s| cosine(s + 1) < cosine(s)),
            "falls at every step"
        );
        assert!((0..300).all(|s| LrSchedule::Constant.rate(lr, s, 100) == lr));
        assert_eq!(LrSchedule::Cosine.rate(lr, 0, 0), lr, "no planned step");
    }

    #[test]
    fn a_header_without_a_schedule_was_trained_at_a_constant_rate() {
        let cosine = TrainConfig {
            lr_schedule: LrSchedule::Cosine,
            ..TrainConfig::default()
        };
        let json = serde_json::to_string(&cosine).unwrap();
        assert!(json.contains(r#""lr_schedule":"cosine""#), "{json}");
        let without = json.replace(r#""lr_schedule":"cosine","#, "");
        let old: TrainConfig = serde_json::from_str(&without).unwrap();
        assert_eq!(old, TrainConfig::default(), "{without}");
    }

    #[test]
    fn joint_training_learns_and_is_deterministic() {
        let set = TrainSet::supervised(&toy_records()).unwrap();
        let config = TrainConfig {
            joint: Some(JointConfig {
                buckets_log2: 12,
                dim: 8,
                ..JointConfig::default()
            }),
            validation: 0.2,
            ..small()
        };
        let run = |threads: usize| {
            crate::test_util::in_pool(threads, || {
                let mut trainer_acc = Vec::new();
                let m = try_fit(&set, &config, |s: &EpochStats| {
                    trainer_acc.push(s.trainer_val_accuracy)
                })
                .unwrap();
                assert!(trainer_acc.iter().all(Option::is_some));
                m
            })
        };
        let one = run(1);
        assert_eq!(one.to_bytes(), run(2).to_bytes());
        let top = one.predict("thank you so much")[0];
        assert_eq!(one.label_name(top.label), "thanks");
        assert_ne!(
            one.to_bytes(),
            fit(
                &set,
                &TrainConfig {
                    joint: None,
                    ..config.clone()
                }
            )
            .to_bytes()
        );
    }

    #[test]
    fn a_step_that_overflows_the_outputs_is_refused() {
        // A huge step leaves finite weights whose logits overflow: the model would answer
        // NaN (shown as 0 for every label), so training must fail instead.
        let set = TrainSet::supervised(&toy_records()).unwrap();
        let config = TrainConfig {
            learning_rate: 1e30,
            augment: 0,
            ..small()
        };
        let err = try_fit(&set, &config, |_| {}).unwrap_err();
        assert!(err.to_string().contains("training diverged"), "{err}");
    }

    #[test]
    fn weights_that_teach_nothing_or_overflow_are_refused_by_name() {
        let mut set = TrainSet::supervised(&toy_records()).unwrap();
        for ex in &mut set.examples {
            ex.weight = 0.0;
        }
        let err = set.validate().unwrap_err().to_string();
        assert!(err.contains("every example has weight 0"), "{err}");
        let huge = TrainConfig {
            soft_weight: f32::MAX,
            ..small()
        };
        let err = huge.validate().unwrap_err().to_string();
        assert!(err.starts_with("invalid soft_weight"), "{err}");
    }

    #[test]
    fn a_network_past_the_weight_limit_is_refused_before_allocation() {
        let set = TrainSet::supervised(&toy_records()).unwrap();
        // 4,096 × 32 projection values into 4,096 hidden units: 2^29 weights.
        let projector = Projector::new(
            &TextConfig::default(),
            &FeatureConfig::default(),
            &ProjectionConfig {
                functions: 4096,
                bits: 32,
                scheme: crate::projection::Scheme::Paired,
                ..ProjectionConfig::default()
            },
        )
        .unwrap();
        let err = train(
            &set,
            &projector,
            &TrainConfig {
                hidden: vec![4096],
                augment: 0,
                ..small()
            },
            &(),
            |_| {},
        )
        .unwrap_err();
        assert!(err.to_string().contains("past the limit"), "{err}");
    }

    #[test]
    fn a_table_keeps_at_most_every_label_per_bucket() {
        let set = TrainSet::supervised(&toy_records()).unwrap();
        let huge = fit(
            &set,
            &TrainConfig {
                table_k: 100_000,
                ..small_table()
            },
        );
        let all = fit(
            &set,
            &TrainConfig {
                table_k: set.labels.len(),
                ..small_table()
            },
        );
        // The same table: k capped at the label count, the same buckets (the headers differ
        // only by the table_k asked for).
        let table = |m: &ProjectionModel| match m.predictor() {
            Predictor::Table(t) => (t.k(), t.len()),
            Predictor::Network(_) => panic!("a table model"),
        };
        assert_eq!(table(&huge), (set.labels.len(), table(&all).1));
        assert_eq!(table(&huge), table(&all));
        // No bucket left: a model that always abstains is refused.
        let err = try_fit(
            &set,
            &TrainConfig {
                table_min_texts: 1_000_000,
                ..small_table()
            },
            |_| {},
        )
        .unwrap_err();
        assert!(err.to_string().contains("table_min_texts"), "{err}");
    }

    #[test]
    fn a_bucket_holds_the_weighted_mean_of_its_texts_labels() {
        // Two records of one text (so the same T buckets), a third text elsewhere. Every
        // bucket of "see you soon" holds 1·a + 3·b over a weight of 4, whatever other texts
        // share some of them, as long as none shares all: the prediction is exact only if no
        // step beyond texts → buckets smoothed it.
        let ex = |text: &str, label: u32, weight: f32| Example {
            text: text.into(),
            target: vec![(label, 1.0)],
            weight,
            seed: true,
        };
        let set = TrainSet {
            labels: vec!["a".into(), "b".into(), "c".into()],
            examples: vec![
                ex("see you soon", 0, 1.0),
                ex("see you soon", 1, 3.0),
                ex("completely different words here", 2, 1.0),
            ],
            counts: TrainSetCounts::default(),
        };
        let model = fit(&set, &small_table());
        let preds = model.predict("see you soon");
        let score = |l: u32| score_of(&preds, l);
        // The other text's buckets overlap a few of these (shared generic codes), so the
        // averages over T are close to, and not above, the exact shares.
        assert!(score(1) > 0.7 && score(1) <= 0.75 + 1e-6, "{preds:?}");
        assert!(score(0) > 0.23 && score(0) <= 0.25 + 1e-6, "{preds:?}");
        assert!((score(1) / score(0) - 3.0).abs() < 1e-4, "{preds:?}");
    }

    /// Propagated-style soft targets (0.55 on a text's label, 0.15 on each other) train a
    /// network whose scores are far below its accuracy: the temperature fitted on the
    /// held-out slice raises them towards it, and changes nothing else. With nothing held
    /// out, 60 propagated examples are too few to cross-fit; gold labels alone get none.
    #[test]
    fn calibration_scales_the_logits_on_the_held_out_slice() {
        let supervised = TrainSet::supervised(&toy_records()).unwrap();
        let examples = supervised
            .examples
            .iter()
            .enumerate()
            .map(|(i, e)| {
                // One text in five points to another intent, as noisy propagated labels
                // do: the held-out slice is then not separable, and β is finite.
                propagated_like(e.clone(), (e.target[0].0 + u32::from(i % 5 == 2)) % 4)
            })
            .collect();
        let set = TrainSet {
            examples,
            ..supervised
        };
        let config = TrainConfig {
            validation: 0.3,
            epochs: 60,
            // A toy run takes a few hundred steps: no average over a longer horizon.
            ema_decay: 0.0,
            ..small()
        };
        let trained = try_fit_scored(&set, &config, |_| {}).unwrap();
        let raw = TrainConfig {
            calibration: Calibration::None,
            ..config.clone()
        };
        let plain = try_fit_scored(&set, &raw, |_| {}).unwrap();
        let beta = TrainReport::of(&trained.model)
            .unwrap()
            .logit_scale
            .unwrap();
        assert_eq!(TrainReport::of(&plain.model).unwrap().logit_scale, None);
        assert_eq!(
            network(&trained.model),
            network(&plain.model).with_logits_scaled(beta as f32)
        );
        // The held-out texts: the same answers, scored nearer their accuracy.
        assert_eq!(trained.held_out, plain.held_out);
        let (mut right, mut sharp, mut soft) = (0.0, 0.0, 0.0);
        for &i in &trained.held_out {
            let ex = &set.examples[i];
            let (a, b) = (
                trained.model.predict(&ex.text)[0],
                plain.model.predict(&ex.text)[0],
            );
            assert_eq!(a.label, b.label, "{}", ex.text);
            right += f64::from(u8::from(
                a.label
                    == ex
                        .target
                        .iter()
                        .max_by(|x, y| x.1.total_cmp(&y.1))
                        .unwrap()
                        .0,
            ));
            sharp += f64::from(a.score);
            soft += f64::from(b.score);
        }
        let n = trained.held_out.len() as f64;
        let (accuracy, sharp, soft) = (right / n, sharp / n, soft / n);
        assert!(
            beta > 1.0 && beta < calibrate::MAX_SCALE,
            "soft targets, a sharper model: β = {beta}"
        );
        assert!(
            (sharp - accuracy).abs() < (soft - accuracy).abs(),
            "mean top score {soft} → {sharp}, held-out accuracy {accuracy}"
        );
        assert_eq!(
            TrainReport::of(&trained.model).unwrap().calibrated_on,
            Some(CalibratedOn::HeldOut)
        );
        // Nothing held out, and 60 propagated examples: too few to cross-fit on (a tenth
        // of them is below `CROSS_FIT_MIN`).
        let none_held = TrainConfig {
            validation: 0.0,
            ..config.clone()
        };
        let report = TrainReport::of(&fit(&set, &none_held)).unwrap();
        assert_eq!((report.logit_scale, report.calibrated_on), (None, None));
        // Gold labels alone, nothing held out: nothing to fit on (one-hot targets).
        let gold = TrainSet::supervised(&toy_records()).unwrap();
        let report = TrainReport::of(&fit(&gold, &none_held)).unwrap();
        assert_eq!((report.logit_scale, report.calibrated_on), (None, None));
    }

    /// With nothing held out, a second network trained without one propagated example in
    /// ten scores them for the fit: the model itself still trains on everything (its weights
    /// are the uncalibrated model's), and its scores come out less sharp than a fit on
    /// those examples as the model, which trained on them, scores them. A stop during the
    /// second network's epochs leaves the scores uncalibrated.
    #[test]
    fn nothing_held_out_a_second_network_cross_fits_the_scores() {
        // 360 propagated examples, one in seven pointing to another intent: noisy labels
        // that a network learns by heart but cannot predict for a new text (7 is prime to
        // the 60 texts a copy, so each text's copies disagree).
        let toy = TrainSet::supervised(&toy_records()).unwrap();
        let examples: Vec<Example> = (0..6)
            .flat_map(|k| toy.examples.iter().map(move |e| (k, e)))
            .enumerate()
            .map(|(i, (k, e))| {
                let text = format!("{} v{k}", e.text);
                propagated_like(
                    Example { text, ..e.clone() },
                    (e.target[0].0 + u32::from(i % 7 == 3)) % 4,
                )
            })
            .collect();
        let set = TrainSet { examples, ..toy };
        let config = TrainConfig {
            epochs: 30,
            ema_decay: 0.0,
            ..small()
        };
        let mut epochs = Vec::new();
        let trained = try_fit_scored(&set, &config, |s| epochs.push(s.calibration)).unwrap();
        // The model's 30 epochs, then the second network's 30.
        assert_eq!(epochs, [[false; 30], [true; 30]].concat());
        let report = TrainReport::of(&trained.model).unwrap();
        assert_eq!(report.calibrated_on, Some(CalibratedOn::CrossFitted));
        assert!(report.history.iter().all(|s| !s.calibration));
        let beta = report.logit_scale.unwrap() as f32;
        let raw = TrainConfig {
            calibration: Calibration::None,
            ..config.clone()
        };
        let plain = fit(&set, &raw);
        assert_eq!(
            network(&trained.model),
            network(&plain).with_logits_scaled(beta)
        );
        let Some(calibrate::Plan::CrossFit(fold)) =
            calibrate::examples(config.calibration, &[], &set)
        else {
            panic!("360 propagated examples and nothing held out: cross-fitted")
        };
        let inputs = Inputs::project_counted(&default_projector(), &set.examples, &());
        let in_sample = calibrate::Slice::of(&network(&plain), &fold, &inputs, &set.examples).fit();
        // (×3.1 against ×3.9 when written; a second network trained on the fold too would
        // be the model's network, and fit its factor.)
        assert!(
            f64::from(beta) * 1.1 < in_sample,
            "cross-fitted ×{beta}, in-sample ×{in_sample}"
        );
        // Stopped during the second network's epochs: the model as trained, uncalibrated,
        // and not marked stopped (its own epochs all ran).
        let cut = try_fit(&set, &config, |s: &EpochStats| {
            if s.calibration && s.epoch == 2 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
        let report = TrainReport::of(&cut).unwrap();
        assert_eq!((report.logit_scale, report.calibrated_on), (None, None));
        assert!(!report.stopped);
        assert_eq!(network(&cut), network(&plain));
    }

    #[test]
    fn a_bucket_sums_weight_times_probability_over_texts_sharing_a_label() {
        // One text twice, with soft targets: each of its T buckets holds both examples and
        // nothing else, so the scores are the exact shares. Label 0 gets 2·0.5 + 1·0.25 and
        // label 1 gets 2·0.5 + 1·0.75, of 3: the second text adds to labels the first
        // already put in the bucket, and no probability is 1, so weight and probability
        // must be multiplied, in the first text's entry as in the one it adds to.
        let ex = |target: Vec<(u32, f32)>, weight: f32| Example {
            text: "see you soon".into(),
            target,
            weight,
            seed: false,
        };
        let set = TrainSet {
            labels: vec!["a".into(), "b".into()],
            examples: vec![
                ex(vec![(0, 0.5), (1, 0.5)], 2.0),
                ex(vec![(0, 0.25), (1, 0.75)], 1.0),
            ],
            counts: TrainSetCounts::default(),
        };
        let model = fit(&set, &small_table());
        let preds = model.predict("see you soon");
        let score = |l: u32| score_of(&preds, l);
        assert!((score(0) - 1.25 / 3.0).abs() < 1e-5, "{preds:?}");
        assert!((score(1) - 1.75 / 3.0).abs() < 1e-5, "{preds:?}");
    }

    #[test]
    fn every_bucket_of_a_lone_text_is_kept_and_a_weightless_text_is_dropped() {
        let table_len = |m: &ProjectionModel| match m.predictor() {
            Predictor::Table(t) => t.len(),
            Predictor::Network(_) => panic!("a table model"),
        };
        let ex = |text: &str, label: u32, weight: f32| Example {
            text: text.into(),
            target: vec![(label, 1.0)],
            weight,
            seed: false,
        };
        let config = small_table();
        // One text falls in T buckets, one per function (the keys differ by function): with
        // `table_min_texts` 1 every one of them is kept.
        let lone = TrainSet {
            labels: vec!["a".into()],
            examples: vec![ex("see you soon", 0, 1.0)],
            counts: TrainSetCounts::default(),
        };
        let functions = ProjectionConfig::default().functions as usize;
        assert_eq!(table_len(&fit(&lone, &config)), functions);
        // A text of weight 0 (a propagated label of no confidence) puts nothing in its
        // buckets: they hold no label, and the text's label is never predicted. Kept, its
        // entries would share a total of 0 and each read as a full vote.
        let set = TrainSet {
            labels: vec!["a".into(), "b".into()],
            examples: vec![
                ex("see you soon", 0, 0.0),
                ex("completely different words here", 1, 1.0),
            ],
            counts: TrainSetCounts::default(),
        };
        let model = fit(&set, &config);
        let preds = model.predict("see you soon");
        assert!(preds.iter().all(|p| p.label != 0), "{preds:?}");
        // The other text's T buckets are all that is left.
        assert_eq!(table_len(&model), functions);
    }

    #[test]
    fn a_table_key_holds_the_bits_and_the_function_index_in_64_bits() {
        // A key is the function index above the code's bits: with 3 functions (indices up
        // to 2, two bits), 62 bits per function fill the 64 exactly and 63 do not fit. The
        // refusal names `bits`, before any table is built.
        let set = TrainSet::supervised(&toy_records()).unwrap();
        let config = small_table();
        let refused = |bits: u32| {
            let projection = ProjectionConfig {
                functions: 3,
                bits,
                coefficients: crate::projection::Coefficients::Binary,
                scheme: crate::projection::Scheme::PerFunction,
                ..ProjectionConfig::default()
            };
            let text = (TextConfig::default(), FeatureConfig::default());
            let projector = Projector::new(&text.0, &text.1, &projection).unwrap();
            let trained = train(&set, &projector, &config, &(), |_| {});
            crate::test_util::refused_field(trained.map(|_| ()))
        };
        assert_eq!(refused(62), None);
        assert_eq!(refused(63), Some("bits"));
    }

    #[test]
    fn table_model_predicts_its_seeds() {
        let set = TrainSet::supervised(&toy_records()).unwrap();
        let config = small_table();
        let model = fit(&set, &config);
        assert_eq!(model.kind(), ModelKind::Table);
        let preds = model.predict("thank you so much");
        assert_eq!(model.label_name(preds[0].label), "thanks");
        assert!(preds.iter().all(|p| p.score > 0.0 && p.score <= 1.0));
        // The header records what the table was built with, nothing of a network.
        assert_eq!(
            model.header().train["config"],
            serde_json::json!({"kind": "table", "table_k": 3, "table_min_texts": 1})
        );
    }

    #[test]
    fn a_bad_example_is_an_error_naming_it_not_a_panic() {
        let good = TrainSet::supervised(&toy_records()).unwrap();
        type Spoil = fn(&mut Example);
        let cases: [(Spoil, &str); 5] = [
            (|e| e.target = vec![(99, 1.0)], "label id 99"),
            (|e| e.weight = f32::NAN, "weight NaN"),
            (|e| e.weight = -1.0, "weight -1"),
            (|e| e.target = vec![(0, f32::INFINITY)], "probability inf"),
            (|e| e.target = vec![(0, 0.5)], "sums to 0.5"),
        ];
        for kind in [ModelKind::Network, ModelKind::Table] {
            for (spoil, says) in cases {
                let mut set = good.clone();
                spoil(&mut set.examples[3]);
                let config = TrainConfig { kind, ..small() };
                let err = try_fit(&set, &config, |_| {}).unwrap_err();
                let msg = err.to_string();
                assert!(
                    matches!(
                        err,
                        Error::InvalidConfig {
                            field: "examples",
                            ..
                        }
                    ) && msg.contains("example 3")
                        && msg.contains(says),
                    "{kind:?}: {msg}"
                );
            }
        }
    }

    #[test]
    fn rejects_bad_configs() {
        for bad in [
            TrainConfig {
                epochs: 0,
                ..TrainConfig::default()
            },
            TrainConfig {
                hidden: vec![0],
                ..TrainConfig::default()
            },
            TrainConfig {
                learning_rate: f32::NAN,
                ..TrainConfig::default()
            },
            TrainConfig {
                min_confidence: 2.0,
                ..TrainConfig::default()
            },
            TrainConfig {
                input_dropout: 0.95,
                ..TrainConfig::default()
            },
            TrainConfig {
                augment: 65,
                ..TrainConfig::default()
            },
            TrainConfig {
                ema_decay: 1.0,
                ..TrainConfig::default()
            },
            TrainConfig {
                ema_decay: -0.1,
                ..TrainConfig::default()
            },
            TrainConfig {
                hidden: vec![MAX_HIDDEN + 1],
                ..TrainConfig::default()
            },
            TrainConfig {
                epochs: MAX_EPOCHS + 1,
                ..TrainConfig::default()
            },
            TrainConfig {
                joint: Some(JointConfig {
                    simulation_weight: 0.0,
                    ground_truth_weight: 0.0,
                    ..JointConfig::default()
                }),
                ..TrainConfig::default()
            },
            TrainConfig {
                kind: ModelKind::Table,
                joint: Some(JointConfig::default()),
                ..TrainConfig::default()
            },
            TrainConfig {
                joint: Some(JointConfig {
                    buckets_log2: 24,
                    dim: 1024,
                    ..JointConfig::default()
                }),
                ..TrainConfig::default()
            },
        ] {
            assert!(matches!(bad.validate(), Err(Error::InvalidConfig { .. })));
        }
    }

    /// Each range check of `validate` at its edge: the bound itself is accepted, one step
    /// past it is refused naming that field.
    #[test]
    fn validate_accepts_each_bound_and_refuses_past_it_by_name() {
        let field = |c: TrainConfig| crate::test_util::refused_field(c.validate());
        let d = TrainConfig::default;
        for ok in [
            TrainConfig {
                hidden: vec![MAX_HIDDEN; 4],
                ..d()
            },
            TrainConfig {
                hidden: vec![1],
                epochs: MAX_EPOCHS,
                ..d()
            },
            TrainConfig {
                epochs: 1,
                patience: 1,
                batch_size: 1,
                ..d()
            },
            TrainConfig {
                learning_rate: f32::MIN_POSITIVE,
                soft_weight: 1e6,
                min_confidence: 1.0,
                validation: 0.5,
                input_dropout: 0.9,
                ema_decay: 0.0,
                augment: 64,
                table_k: 1,
                table_min_texts: 1,
                ..d()
            },
            TrainConfig {
                soft_weight: 0.0,
                min_confidence: 0.0,
                validation: 0.0,
                input_dropout: 0.0,
                ema_decay: 0.999_999,
                augment: 0,
                ..d()
            },
        ] {
            assert_eq!(field(ok.clone()), None, "{ok:?}");
        }
        for (bad, name) in [
            (
                TrainConfig {
                    hidden: vec![8; 5],
                    ..d()
                },
                "hidden",
            ),
            (
                TrainConfig {
                    hidden: vec![8, MAX_HIDDEN + 1],
                    ..d()
                },
                "hidden",
            ),
            (
                TrainConfig {
                    epochs: MAX_EPOCHS + 1,
                    ..d()
                },
                "epochs",
            ),
            (TrainConfig { patience: 0, ..d() }, "patience"),
            (
                TrainConfig {
                    learning_rate: 0.0,
                    ..d()
                },
                "learning_rate",
            ),
            (
                TrainConfig {
                    learning_rate: f32::INFINITY,
                    ..d()
                },
                "learning_rate",
            ),
            (
                TrainConfig {
                    batch_size: 0,
                    ..d()
                },
                "batch_size",
            ),
            (
                TrainConfig {
                    soft_weight: -0.001,
                    ..d()
                },
                "soft_weight",
            ),
            (
                TrainConfig {
                    validation: 0.51,
                    ..d()
                },
                "validation",
            ),
            (TrainConfig { augment: 65, ..d() }, "augment"),
            (TrainConfig { table_k: 0, ..d() }, "table_k"),
            (
                TrainConfig {
                    table_min_texts: 0,
                    ..d()
                },
                "table_min_texts",
            ),
        ] {
            assert_eq!(field(bad.clone()), Some(name), "{bad:?}");
        }
    }

    /// A history of more than `HISTORY_KEPT` epochs keeps every k-th epoch (k the smallest
    /// stride that leaves at most `HISTORY_KEPT` of them), the best and the last; a shorter
    /// one is kept whole.
    #[test]
    fn a_long_history_keeps_every_kth_epoch_the_best_and_the_last() {
        let history = |n: usize| -> Vec<EpochStats> {
            (1..=n)
                .map(|epoch| EpochStats {
                    epoch,
                    train_loss: epoch as f64,
                    val_accuracy: 0.0,
                    val_loss: 0.0,
                    trainer_val_accuracy: None,
                    held_out: 0,
                    calibration: false,
                })
                .collect()
        };
        let epochs = |h: Vec<EpochStats>| h.iter().map(|s| s.epoch).collect::<Vec<_>>();
        assert_eq!(thinned(history(HISTORY_KEPT), 5), history(HISTORY_KEPT));
        // 130 epochs: every third (43 of them), then the best (7) and the last (130).
        let mut want: Vec<usize> = (3..=129).step_by(3).collect();
        want.push(7);
        want.push(130);
        want.sort_unstable();
        let kept = thinned(history(130), 7);
        assert_eq!(epochs(kept.clone()), want);
        // The kept epochs' figures are their own.
        assert!(kept.iter().all(|s| s.train_loss == s.epoch as f64));
        // 61 epochs: every other one, and the last (the best, 30, is one of them).
        let mut want: Vec<usize> = (2..=60).step_by(2).collect();
        want.push(61);
        assert_eq!(epochs(thinned(history(61), 30)), want);
    }

    /// The held-out slice: from the seeds when there are `SEEDS_FOR_VALIDATION` a label (or
    /// nothing else), else from the propagated examples; `validation` of that pool but at
    /// most half of it; seeds only when `hold_out_seeds` allows it; nothing below
    /// `min_held_out`. The training side is every other example.
    #[test]
    fn the_held_out_slice_is_drawn_from_the_right_pool_and_sized_by_the_config() {
        let projector = default_projector();
        // Labels "a" and "b": `seeds[l]` seeds and `propagated[l]` propagated examples of
        // each, every text distinct.
        let split = |seeds: [usize; 2], propagated: [usize; 2], config: &TrainConfig| {
            let mut examples = Vec::new();
            for (l, (&s, &p)) in seeds.iter().zip(&propagated).enumerate() {
                for seed in std::iter::repeat_n(true, s).chain(std::iter::repeat_n(false, p)) {
                    let i = examples.len();
                    let other = 1 - l as u32;
                    examples.push(Example {
                        text: format!("w{i} x{i} y{i}"),
                        target: if seed {
                            vec![(l as u32, 1.0)]
                        } else {
                            vec![(l as u32, 0.75), (other, 0.25)]
                        },
                        weight: 1.0,
                        seed,
                    });
                }
            }
            let set = TrainSet {
                labels: vec!["a".into(), "b".into()],
                examples,
                counts: TrainSetCounts::default(),
            };
            let inputs = Inputs::project_counted(&projector, &set.examples, &());
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(config.seed);
            let s = Split::choose(&set, &inputs, config, &mut rng);
            // The two sides partition the examples, each ascending.
            let mut all = [s.val.clone(), s.train.clone()].concat();
            all.sort_unstable();
            assert_eq!(all, (0..set.examples.len()).collect::<Vec<_>>());
            assert!(s.val.is_sorted() && s.train.is_sorted());
            // Every held-out example comes from the pool the split says.
            assert!(s.val.iter().all(|&i| set.examples[i].seed == s.from_seeds));
            (s.val.len(), s.from_seeds)
        };
        let config = |validation: f32, min_held_out: usize, hold_out_seeds: bool| TrainConfig {
            validation,
            min_held_out,
            hold_out_seeds,
            ..TrainConfig::default()
        };
        let propagated_quarter = config(0.25, 1, false);
        // The cases below count on 20 seeds a label.
        const { assert!(SEEDS_FOR_VALIDATION == 20) };
        // 4 or 30 seeds for 2 labels (fewer than 20 a label) beside 40 propagated: a quarter
        // of the propagated ones.
        assert_eq!(split([2, 2], [20, 20], &propagated_quarter), (10, false));
        assert_eq!(split([15, 15], [20, 20], &propagated_quarter), (10, false));
        // 20 seeds a label: from the seeds, if they may be held out at all.
        let seeds_quarter = config(0.25, 1, true);
        assert_eq!(split([20, 20], [5, 5], &seeds_quarter), (10, true));
        assert_eq!(split([20, 20], [5, 5], &propagated_quarter), (0, true));
        // Seeds alone, however few.
        assert_eq!(split([4, 4], [0, 0], &config(0.5, 1, true)), (4, true));
        // A share of one half of an odd pool: at most half of it, rounded down.
        assert_eq!(split([2, 2], [20, 21], &config(0.5, 1, false)), (20, false));
        // `min_held_out` is the smallest slice taken.
        assert_eq!(
            split([2, 2], [20, 20], &config(0.25, 10, false)),
            (10, false)
        );
        assert_eq!(
            split([2, 2], [20, 20], &config(0.25, 11, false)),
            (0, false)
        );
    }

    /// One huge step from the initial weights: the step itself ran on finite outputs, so the
    /// weights are finite, but the outputs they give overflow. The check of the outputs
    /// alone must refuse such a model.
    #[test]
    fn finite_weights_with_overflowing_outputs_are_refused() {
        let set = TrainSet::supervised(&toy_records()).unwrap();
        let config = TrainConfig {
            learning_rate: 1e25,
            epochs: 1,
            batch_size: set.examples.len(),
            augment: 0,
            ..small()
        };
        let err = try_fit(&set, &config, |_| {}).unwrap_err();
        assert!(err.to_string().contains("training diverged"), "{err}");
    }

    /// Each training example gets `augment` copies, less those `perturb` leaves unchanged
    /// (or cannot make), while the corpus is far below `MAX_COPIES` texts. 32 examples, a
    /// power of two as `MAX_COPIES` is.
    #[test]
    fn every_training_example_gets_its_augmented_copies() {
        let set = TrainSet::supervised(&toy_records()[..32]).unwrap();
        let config = TrainConfig {
            augment: 3,
            epochs: 1,
            ..small()
        };
        let model = fit(&set, &config);
        let report = TrainReport::of(&model).unwrap();
        assert_eq!(report.val_examples, 0);
        let want = (0..set.examples.len())
            .flat_map(|i| (0..config.augment).map(move |c| (i, c)))
            .filter(|&(i, c)| augment::perturb(&set.examples[i].text, config.seed, i, c).is_some())
            .count();
        // More than one copy an example on average.
        assert!(want > set.examples.len(), "{want}");
        assert_eq!(report.augmented_examples, want);
    }

    /// Input dropout changes what is learned, and by how much it drops: the trained scores
    /// differ between no dropout, a quarter and a half.
    #[test]
    fn the_input_dropout_rate_reaches_the_masks() {
        let set = TrainSet::supervised(&toy_records()).unwrap();
        let with = |input_dropout: f32| {
            scores(&fit(
                &set,
                &TrainConfig {
                    input_dropout,
                    epochs: 2,
                    augment: 0,
                    ..small()
                },
            ))
        };
        let (none, quarter, half) = (with(0.0), with(0.25), with(0.5));
        assert_ne!(none, quarter);
        assert_ne!(none, half);
        assert_ne!(quarter, half);
    }

    /// The cosine schedule spans every planned step (epochs × batches): the rate falls to 0
    /// only at the cap, so the training loss keeps falling over the later epochs.
    #[test]
    fn a_cosine_run_keeps_learning_until_its_last_epoch() {
        let set = TrainSet::supervised(&toy_records()).unwrap();
        let config = TrainConfig {
            lr_schedule: LrSchedule::Cosine,
            input_dropout: 0.0,
            ema_decay: 0.0,
            learning_rate: 0.002,
            augment: 0,
            ..small()
        };
        let mut losses = Vec::new();
        try_fit(&set, &config, |s: &EpochStats| losses.push(s.train_loss)).unwrap();
        assert_eq!(losses.len(), config.epochs);
        // After the second epoch, each of the next ones still lowers the loss.
        for e in 2..6 {
            assert!(
                losses[e + 1] < losses[e] * 0.99,
                "epoch {}: {losses:?}",
                e + 2
            );
        }
    }

    /// An epoch's training loss is the mean loss of its training examples: at a step too
    /// small to move the weights, the first epoch's is the initial network's mean loss
    /// (every weight 1), as `evaluate` computes it on its own.
    #[test]
    fn an_epochs_train_loss_is_the_mean_loss_of_its_examples() {
        let set = TrainSet::supervised(&toy_records()).unwrap();
        let config = TrainConfig {
            learning_rate: 1e-20,
            input_dropout: 0.0,
            epochs: 1,
            augment: 0,
            ..small()
        };
        let mut losses = Vec::new();
        try_fit(&set, &config, |s: &EpochStats| losses.push(s.train_loss)).unwrap();
        let projector = default_projector();
        let inputs = Inputs::project_counted(&projector, &set.examples, &());
        // The network's initialization is the first draw of the run's generator.
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(config.seed);
        let mlp = new_network(projector.dim(), set.labels.len(), &config, &mut rng).unwrap();
        let all: Vec<usize> = (0..set.examples.len()).collect();
        let (_, want) = evaluate(&mlp, &all, &inputs, &set.examples);
        assert!(want > 0.5, "{want}");
        assert!(
            (losses[0] - want).abs() < 1e-6 * want,
            "{losses:?} instead of {want}"
        );
    }

    /// Early stopping by its definition: the kept epoch has the highest held-out accuracy
    /// and, among the epochs of that accuracy, the lowest held-out loss (the first of
    /// equals); the run ends `patience` epochs after it, or at the cap.
    #[test]
    fn early_stopping_keeps_the_best_epoch_and_waits_patience_epochs() {
        let set = TrainSet::supervised(&toy_records()).unwrap();
        let config = TrainConfig {
            validation: 0.25,
            epochs: 40,
            patience: 3,
            learning_rate: 0.05,
            augment: 0,
            ..small()
        };
        let mut history = Vec::new();
        let model = try_fit(&set, &config, |s: &EpochStats| history.push(*s)).unwrap();
        let report = TrainReport::of(&model).unwrap();
        let top = history
            .iter()
            .map(|s| s.val_accuracy)
            .fold(f64::NEG_INFINITY, f64::max);
        let lowest = history
            .iter()
            .filter(|s| s.val_accuracy == top)
            .map(|s| s.val_loss)
            .fold(f64::INFINITY, f64::min);
        let want = history
            .iter()
            .find(|s| s.val_accuracy == top && s.val_loss == lowest)
            .unwrap()
            .epoch;
        assert_eq!(report.best_epoch, want, "{history:?}");
        assert_eq!(report.epochs_run, history.len());
        assert_eq!(
            report.epochs_run,
            (report.best_epoch + config.patience).min(config.epochs)
        );
        assert!(
            report.epochs_run < config.epochs,
            "early stopping ended the run"
        );
    }
}
