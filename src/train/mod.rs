//! Distillation: texts with hard seed labels and propagated soft labels → [`ProjectionModel`].
//!
//! Stage 5 of the pipeline. [`TrainSet`] joins the corpus records with the labels JSONL of
//! `sprig propagate` (or takes the corpus's own labels only), and [`train`] fits the network
//! on the projected texts, or builds the bucket table ([`ModelKind::Table`]).
//!
//! **Loss** (ProjectionNet, Ravi 2017, with the propagated labels as teacher):
//! `L = Σ_seeds CE(y_v, p_v) + λ Σ_propagated c_v · CE(Ĉ_v, p_v)`, averaged over the batch,
//! where `Ĉ_v` is the propagated distribution renormalized after dropping the `unknown` mass,
//! and `c_v` its confidence ([`Confidence`]) divided by the mean confidence of the propagated
//! examples (so λ = 1 weighs an average one as a seed). Abstaining records and records below
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
//! **Joint training** ([`JointConfig`], `--joint`): ProjectionNet's larger trainer network
//! over the raw hashed n-grams learns alongside and teaches the projection network (see
//! `joint.rs`); only the projection network is saved.
//!
//! **Determinism:** each batch is cut into fixed chunks of [`CHUNK`] examples; rayon runs
//! the chunks in parallel, each into its own gradient buffer, and the buffers are summed in
//! chunk order. The model bytes are therefore identical for any thread count.

use std::borrow::Cow;
use std::io::BufRead;
use std::path::Path;

use rand::rngs::Xoshiro256PlusPlus;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::build::Progress;
use crate::corpus::Record;
use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::model::{ModelKind, Predictor, ProjectionModel};
use crate::network::{Adam, Mlp, MlpScratch, Network, Quantization};
use crate::projection::{ProjectScratch, ProjectionConfig, Projector};
use crate::propagate::Propagation;
use crate::table::{bucket_key, Table};
use crate::text::{FeatureConfig, TextConfig};
use augment::Teacher;

mod augment;
mod joint;

pub use joint::JointConfig;
use joint::{SparseInputs, Trainer, TrainerWorker};

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

/// The training stage's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Network or table. Default network (it measured better; see benches/README.md).
    pub kind: ModelKind,
    /// Hidden layer widths. Default `[128]`: one layer keeps the int8 model under 200 KB at
    /// T·d = 1,120 inputs, about 80 KB with the default 4-bit first layer (SGNN used two
    /// layers of 256, which is 320 KB in int8).
    pub hidden: Vec<usize>,
    /// Epoch cap, `>= 1`. Default 60, so that early stopping, not the cap, ends training:
    /// with input dropout the best held-out epoch was 20–39 on a 2,400-text corpus.
    pub epochs: usize,
    /// Stop after this many epochs without a better held-out score, `>= 1`. Default 8:
    /// with input dropout the held-out score keeps rising, unevenly, for 10–20 epochs.
    pub patience: usize,
    /// Adam step size, `> 0`. Default 1e-3 (Kingma & Ba).
    pub learning_rate: f32,
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

/// One training text with its target distribution.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// The raw text.
    pub text: String,
    /// `(label id, probability)` pairs summing to 1.
    pub target: Vec<(u32, f32)>,
    /// Loss weight: 1 for seeds (their weights' sum for a seed file's), λ · confidence /
    /// mean confidence for propagated labels.
    pub weight: f32,
    /// Whether the label is a seed's (the corpus's label, or a seed file's).
    pub seed: bool,
}

/// Counts of how a train set was assembled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainSetCounts {
    /// Records read.
    pub records: usize,
    /// Examples with a corpus label.
    pub seeds: usize,
    /// Examples with a propagated label.
    pub propagated: usize,
    /// Records skipped because propagation abstained on them.
    pub abstained: usize,
    /// Records skipped for low confidence.
    pub low_confidence: usize,
    /// Labels lines with `"seed": false` on a record that has a corpus label: propagation
    /// did not have it as a seed, so the labels were propagated over another corpus or
    /// another order of it. (The converse is no sign: identical texts share a node, so an
    /// unlabelled copy of a seed's text is a seed too, and a seed's top label can move.)
    #[serde(default, skip_serializing_if = "is_zero")]
    pub seed_disagreements: usize,
    /// Labels lines with `"seed": true` on a record that has no label here and shares no
    /// node with a labelled record: propagation had seeds (from a seed file) that training
    /// was not given, so they train on their propagated labels instead.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub seeds_not_given: usize,
    /// Labels lines with `"seed": true` on a record labelled here whose propagated top label
    /// scores more than twice every label here of its node's records: propagation may have
    /// had a seed file that relabelled it (or its neighbours far outweighed its seeds).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub seeds_relabelled: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Labelled examples and the label names they refer to (sorted).
#[derive(Debug, Clone, PartialEq)]
pub struct TrainSet {
    /// Label names; a target's label id indexes this.
    pub labels: Vec<String>,
    /// The examples, in record order.
    pub examples: Vec<Example>,
    /// How they were assembled.
    pub counts: TrainSetCounts,
}

/// One line of `sprig propagate`'s JSONL as written; [`LabelsLine`] once checked. Feature
/// lines (`--all-nodes`) name a `feature` instead of a `line` and are passed over.
#[derive(Debug, Deserialize)]
struct RawLabelsLine {
    line: Option<u64>,
    /// The feature of a feature node's line (`--all-nodes`).
    #[serde(default)]
    feature: Option<String>,
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(default)]
    seed: Option<bool>,
    /// [`crate::hash::record_hash`] of the record's text, in 8 hexadecimal digits (absent
    /// from files of graphs that do not keep it).
    #[serde(default)]
    text_hash: Option<String>,
    /// Required on record lines: a default would change training (an absent `unknown` read
    /// as 0 made a line fully confident).
    #[serde(default)]
    unknown: Option<f32>,
    #[serde(default)]
    scores: Option<Vec<(String, f32)>>,
}

/// Why a labels line's `text_hash` (`want`) does not match the corpus record it joins
/// (whose text hashes to `got`).
fn stale_labels_message(want: &str, got: u32, record: &Record) -> String {
    const SHOWN: usize = 60;
    let text: String = record.text.chars().take(SHOWN).collect();
    let more = if record.text.chars().count() > SHOWN {
        "…"
    } else {
        ""
    };
    format!(
        "field \"text_hash\": {want}, but the text of corpus line {} ({text:?}{more}) hashes \
         to {got:08x}: these labels were propagated over another corpus, or over another \
         version of this one (run `sprig graph` and `sprig propagate` on it again)",
        record.line
    )
}

/// A record's line of the labels file, checked.
#[derive(Debug)]
struct LabelsLine {
    line: u64,
    /// The record's id as `sprig propagate` wrote it (`None` when absent or null).
    id: Option<serde_json::Value>,
    /// Whether propagation had the record as a seed (`None` when absent).
    seed: Option<bool>,
    unknown: f32,
    scores: Vec<(String, f32)>,
}

/// Checks a labels line's `scores` as `sprig propagate` writes them: labels as the corpus
/// gives them (not empty, no surrounding spaces, no control character), each once; scores
/// in [0, 1] summing to at most 1 (with room for their rounding to 6 decimals). A score out
/// of range is no propagated distribution, and one huge value would silently outweigh every
/// other example through the mean confidence.
fn check_scores(scores: &[(String, f32)], path: &Path, line: u64) -> Result<()> {
    let bad = |what: String| Error::parse(path, line, what);
    let mut total = 0.0f64;
    for (i, (label, score)) in scores.iter().enumerate() {
        crate::corpus::check_label(label, "scores", path, line)?;
        if label.is_empty() || label.trim() != label {
            return Err(bad(format!(
                "field \"scores[{i}][0]\": the label {label:?} is empty or has surrounding \
                 spaces (labels are trimmed, and `sprig propagate` writes them so)"
            )));
        }
        if scores[..i].iter().any(|s| s.0 == *label) {
            return Err(bad(format!(
                "field \"scores[{i}][0]\": the label {label:?} is listed twice"
            )));
        }
        if !(0.0..=1.0 + 1e-4).contains(score) {
            return Err(bad(format!(
                "field \"scores[{i}][1]\": {score} is not a score in [0, 1]"
            )));
        }
        total += f64::from(*score);
    }
    if total > 1.0 + 1e-3 + 1e-6 * scores.len() as f64 {
        return Err(bad(format!(
            "field \"scores\": the scores sum to {total:.6}, more than 1"
        )));
    }
    Ok(())
}

fn label_ids(names: impl Iterator<Item = String>) -> Vec<String> {
    let mut labels: Vec<String> = names.collect();
    labels.sort();
    labels.dedup();
    labels
}

/// Whether a labels file's lines moved against the corpus: the offset `δ ≠ 0` (within ±3
/// lines) at which more than twice as many labelled records find a seed line of their label
/// as at their own line (and at least 3 do), with both counts. A record inserted at the top
/// of a corpus without ids moves every line by one: on the bundled corpus (70 seeds) 70 match
/// at −1 and none in place. Edited labels (seeds dropped, others added) match in place or
/// nowhere, so they never look shifted.
fn shifted(
    records: &[Record],
    hard: &[HardLabels],
    parsed: &[(usize, LabelsLine)],
) -> Option<(i64, usize, usize)> {
    const REACH: i64 = 3;
    let by_line: hashbrown::HashMap<u64, &LabelsLine> =
        parsed.iter().map(|(_, row)| (row.line, row)).collect();
    let mut hits = [0usize; 2 * REACH as usize + 1];
    for (r, h) in records.iter().zip(hard) {
        let Some(h) = h else { continue };
        for delta in -REACH..=REACH {
            let Some(line) = r.line.checked_add_signed(delta) else {
                continue;
            };
            let seed_of_label = by_line.get(&line).is_some_and(|row| {
                row.seed == Some(true)
                    && row
                        .scores
                        .first()
                        .is_some_and(|top| h.iter().any(|l| l.0 == top.0))
            });
            hits[(delta + REACH) as usize] += usize::from(seed_of_label);
        }
    }
    let aligned = hits[REACH as usize];
    (-REACH..=REACH)
        .filter(|&d| d != 0)
        .map(|d| (d, hits[(d + REACH) as usize]))
        .max_by_key(|&(d, n)| (n, -d.abs()))
        .filter(|&(_, n)| n >= 3 && n > 2 * aligned)
        .map(|(d, n)| (d, n, aligned))
}

/// A record's hard labels, `(name, weight)`; `None` for a record without one.
type HardLabels<'a> = Option<Vec<(&'a str, f32)>>;

/// Each record's hard labels: the seed file's when it names the record (`seeds[i]` not
/// empty), else the corpus label, else none.
///
/// # Errors
/// [`Error::InvalidConfig`] (`seeds`) for a weight a seed file could not hold (outside
/// `[f32::MIN_POSITIVE, MAX_SEED_WEIGHT]`), an empty label, or a label named twice for one
/// record ([`crate::seeds::record_seeds`] merges those).
fn hard_labels<'a>(
    records: &'a [Record],
    seeds: &'a [Vec<(String, f32)>],
) -> Result<Vec<HardLabels<'a>>> {
    for (s, r) in seeds.iter().zip(records) {
        let bad = |why: String| Error::config("seeds", format!("record of line {}: {why}", r.line));
        for (i, (label, w)) in s.iter().enumerate() {
            if !crate::seeds::is_seed_weight(f64::from(*w)) {
                return Err(bad(format!(
                    "label {label:?} has weight {w}, outside [{:e}, {:e}]",
                    f64::from(f32::MIN_POSITIVE),
                    crate::seeds::MAX_SEED_WEIGHT
                )));
            }
            if label.trim().is_empty() {
                return Err(bad("an empty label".into()));
            }
            if s[..i].iter().any(|(l, _)| l == label) {
                return Err(bad(format!("label {label:?} is named twice")));
            }
        }
    }
    Ok(records
        .iter()
        .enumerate()
        .map(|(i, r)| match seeds.get(i) {
            Some(s) if !s.is_empty() => Some(s.iter().map(|(l, w)| (l.as_str(), *w)).collect()),
            _ => r.label.as_deref().map(|l| vec![(l, 1.0)]),
        })
        .collect())
}

/// A seed's example: its labels' weights, normalized, as the target (one label: 1), and
/// their sum as the loss weight (1 for a corpus label), as a seed's pull in propagation's
/// seed fit grows with its weights.
fn seed_example(r: &Record, hard: &[(&str, f32)], labels: &[String]) -> Example {
    let total: f64 = hard.iter().map(|l| f64::from(l.1)).sum();
    let mut target: Vec<(u32, f32)> = hard
        .iter()
        .map(|(l, w)| (id_of(labels, l), (f64::from(*w) / total) as f32))
        .collect();
    target.sort_by_key(|t| t.0);
    Example {
        text: r.text.clone(),
        target,
        weight: total as f32,
        seed: true,
    }
}

fn id_of(labels: &[String], name: &str) -> u32 {
    labels
        .binary_search_by(|l| l.as_str().cmp(name))
        .expect("labels hold every name") as u32
}

impl TrainSet {
    /// Checks what [`train`] relies on, since the fields are public: at least one label and
    /// one example; every example with a non-empty target of known label ids, finite
    /// probabilities `>= 0` summing to 1 (within 1e-3), and a finite weight `>= 0`, some
    /// weight `> 0`.
    ///
    /// # Errors
    /// [`Error::NoSeeds`] for no label or no example; [`Error::InvalidConfig`] (`examples`)
    /// naming the first bad example, or for weights that are all 0.
    pub fn validate(&self) -> Result<()> {
        if self.examples.is_empty() || self.labels.is_empty() {
            return Err(Error::NoSeeds);
        }
        let n = self.labels.len();
        for (i, ex) in self.examples.iter().enumerate() {
            let bad = |why: String| {
                Error::config(
                    "examples",
                    format!("example {i} ({:?}): {why}", excerpt(&ex.text)),
                )
            };
            if !(ex.weight.is_finite() && ex.weight >= 0.0) {
                return Err(bad(format!("weight {} is not finite and >= 0", ex.weight)));
            }
            if let Some(&(l, _)) = ex.target.iter().find(|t| t.0 as usize >= n) {
                return Err(bad(format!("label id {l} of {n} labels")));
            }
            if let Some(&(_, q)) = ex.target.iter().find(|t| !(t.1.is_finite() && t.1 >= 0.0)) {
                return Err(bad(format!("probability {q} is not finite and >= 0")));
            }
            let total: f32 = ex.target.iter().map(|t| t.1).sum();
            if (total - 1.0).abs() > 1e-3 {
                return Err(bad(format!("target sums to {total}, not 1")));
            }
        }
        if self.examples.iter().all(|ex| ex.weight == 0.0) {
            return Err(Error::config(
                "examples",
                "every example has weight 0: there is nothing to learn from",
            ));
        }
        Ok(())
    }

    /// Fully supervised: every labelled record is a hard example; unlabelled ones are ignored.
    ///
    /// # Errors
    /// [`Error::NoSeeds`] if no record is labelled.
    pub fn supervised(records: &[Record]) -> Result<Self> {
        Self::supervised_with(records, &[])
    }

    /// [`TrainSet::supervised`], with the seed labels of a seed file
    /// ([`crate::seeds::record_seeds`]) in place of the corpus labels of the records it
    /// names, and on records the corpus leaves unlabelled. `seeds` may be empty (no file).
    ///
    /// # Errors
    /// [`Error::NoSeeds`] if no record is labelled; [`Error::InvalidConfig`] (`seeds`) for a
    /// seed weight outside `[f32::MIN_POSITIVE, 1e6]`, an empty label, or a label named twice
    /// for one record.
    pub fn supervised_with(records: &[Record], seeds: &[Vec<(String, f32)>]) -> Result<Self> {
        let hard: Vec<HardLabels> = hard_labels(records, seeds)?;
        let labels = label_ids(hard.iter().flatten().flatten().map(|l| l.0.to_owned()));
        if labels.is_empty() {
            return Err(Error::NoSeeds);
        }
        let examples: Vec<Example> = records
            .iter()
            .zip(&hard)
            .filter_map(|(r, hard)| hard.as_ref().map(|h| seed_example(r, h, &labels)))
            .collect();
        let counts = TrainSetCounts {
            records: records.len(),
            seeds: examples.len(),
            ..TrainSetCounts::default()
        };
        Ok(Self {
            labels,
            examples,
            counts,
        })
    }

    /// Seeds from the corpus labels plus soft targets from a `sprig propagate` labels JSONL,
    /// joined on the record's `line`. Feature rows (no `line`) are ignored. `records` are in
    /// corpus order, as [`crate::corpus::CorpusReader`] gives them.
    ///
    /// # Errors
    /// [`Error::Parse`] naming `path:line` for a bad labels line or one naming a corpus line
    /// that does not exist; [`Error::InvalidConfig`] (`records`) for records out of order;
    /// [`Error::NoSeeds`] if nothing is left to train on.
    pub fn distilled(
        records: &[Record],
        labels_file: &mut dyn BufRead,
        path: &Path,
        config: &TrainConfig,
    ) -> Result<Self> {
        Self::distilled_with(records, &[], labels_file, path, config)
    }

    /// [`TrainSet::distilled`], with the seed labels of a seed file
    /// ([`crate::seeds::record_seeds`]) in place of the corpus labels of the records it
    /// names, and on records the corpus leaves unlabelled: give the file that `sprig graph
    /// --seeds` or `sprig propagate --seeds` took, so its seeds train as seeds. `seeds` may be
    /// empty (no file).
    ///
    /// # Errors
    /// As [`TrainSet::distilled`], and for `seeds` as [`TrainSet::supervised_with`].
    pub fn distilled_with(
        records: &[Record],
        seeds: &[Vec<(String, f32)>],
        labels_file: &mut dyn BufRead,
        path: &Path,
        config: &TrainConfig,
    ) -> Result<Self> {
        config.validate()?;
        // The join looks lines up by binary search.
        if let Some(w) = records.windows(2).find(|w| w[0].line >= w[1].line) {
            return Err(Error::config(
                "records",
                format!(
                    "records must be in corpus order (increasing line numbers): line {} \
                     comes after line {}",
                    w[1].line, w[0].line
                ),
            ));
        }
        let hard = hard_labels(records, seeds)?;
        let mut parsed: Vec<(usize, LabelsLine)> = Vec::new();
        // Per record, the labels line that labelled it (0: none yet).
        let mut labelled_at = vec![0u64; records.len()];
        let mut bytes = Vec::new();
        let mut buf = String::new();
        let mut line_no = 0u64;
        loop {
            // Bounded as every line sprig reads: a file that is not of lines (a binary
            // passed as --labels) is not held whole.
            let read = crate::corpus::read_line_bounded(
                labels_file,
                &mut bytes,
                crate::corpus::MAX_LINE_BYTES,
            )
            .map_err(|e| Error::io(path, e))?;
            match read {
                crate::corpus::LineRead::End => break,
                crate::corpus::LineRead::TooLong => {
                    return Err(crate::corpus::too_long(path, line_no + 1));
                }
                crate::corpus::LineRead::Line => {}
            }
            line_no += 1;
            buf.clear();
            match std::str::from_utf8(&bytes) {
                Ok(text) => buf.push_str(text),
                // Not text at all (a .graph passed as --labels, say): name the line.
                Err(_) => {
                    return Err(Error::parse(
                        path,
                        line_no,
                        "invalid UTF-8 (expected the JSONL of `sprig propagate`)",
                    ));
                }
            }
            if line_no == 1 && buf.starts_with('\u{feff}') {
                buf.drain(..'\u{feff}'.len_utf8());
            }
            if buf.trim().is_empty() {
                continue;
            }
            // serde would also read an array as the struct, field by field in order.
            if !buf.trim_start().starts_with('{') {
                return Err(Error::parse(
                    path,
                    line_no,
                    "expected a JSON object (the JSONL of `sprig propagate`)",
                ));
            }
            // Through serde_path_to_error, so that a mistyped value names its field.
            let raw: RawLabelsLine = serde_path_to_error::deserialize(
                &mut serde_json::Deserializer::from_str(buf.trim_end()),
            )
            .map_err(|e| {
                let at = e.path().to_string();
                let message = crate::corpus::json_error(e.inner());
                Error::parse(
                    path,
                    line_no,
                    if e.inner().classify() != serde_json::error::Category::Data || at == "." {
                        message
                    } else {
                        format!("field \"{at}\": {message}")
                    },
                )
            })?;
            if raw.line.is_none() && raw.feature.is_some() {
                continue;
            }
            let missing = |field: &str| {
                let hint = if field == "line" {
                    " (or \"feature\", for a feature node)"
                } else {
                    ""
                };
                Error::parse(path, line_no, format!("missing field {field:?}{hint}"))
            };
            let raw_hash = raw.text_hash;
            let row = LabelsLine {
                line: raw.line.ok_or_else(|| missing("line"))?,
                id: raw.id,
                seed: raw.seed,
                unknown: raw.unknown.ok_or_else(|| missing("unknown"))?,
                scores: raw.scores.ok_or_else(|| missing("scores"))?,
            };
            check_scores(&row.scores, path, line_no)?;
            let line = row.line;
            let idx = records
                .binary_search_by_key(&line, |r| r.line)
                .map_err(|_| {
                    Error::parse(
                        path,
                        line_no,
                        format!(
                            "names corpus line {line}, which holds no record (or one skipped \
                             as invalid)"
                        ),
                    )
                })?;
            let bad = |what: &str| Error::parse(path, line_no, what.to_owned());
            // The join is on the line; the id, when both sides have one, proves it is the
            // same corpus (a labels file of another corpus would join silently otherwise).
            if let (Some(want), Some(got)) = (&row.id, &records[idx].id) {
                if *want != got.to_json() {
                    return Err(bad(&format!(
                        "field \"id\": {want} but corpus line {line} has id {}: were these \
                         labels propagated over another corpus?",
                        got.to_json()
                    )));
                }
            }
            if let Some(want) = &raw_hash {
                // As `propagate` writes it: exactly 8 hex digits (`from_str_radix` alone
                // would also take a sign).
                if want.len() != 8 || !want.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(bad(&format!(
                        "field \"text_hash\": {want:?} is not 8 hexadecimal digits"
                    )));
                }
                let got = crate::hash::record_hash(&records[idx].text);
                if u32::from_str_radix(want, 16) != Ok(got) {
                    return Err(bad(&stale_labels_message(want, got, &records[idx])));
                }
            }
            if !(0.0..=1.0 + 1e-4).contains(&row.unknown) {
                return Err(bad("field \"unknown\": must be in [0, 1]"));
            }
            let first = std::mem::replace(&mut labelled_at[idx], line_no);
            if first != 0 {
                return Err(bad(&format!(
                    "corpus line {line} is labelled twice (first on line {first})"
                )));
            }
            parsed.push((idx, row));
        }
        if parsed.is_empty() {
            return Err(Error::parse(
                path,
                line_no.max(1),
                "holds no labels line (expected the JSONL of `sprig propagate`)",
            ));
        }
        Self::join(records, &hard, parsed, path, config)
    }

    /// [`TrainSet::distilled_with`] with the propagated labels in memory: `propagation` ran
    /// over `graph`, which was built from `records` (the same records, in the same order).
    /// The examples are those of the labels file `sprig propagate` writes for it: scores and
    /// `unknown` are rounded to that file's 6 decimals, so a program that keeps everything in
    /// memory trains the same model, byte for byte, as the command line.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] (`records`) if `records` are not the graph's records, or
    /// `propagation` was computed on a graph with another number of nodes; otherwise as
    /// [`TrainSet::distilled`].
    pub fn from_propagation(
        records: &[Record],
        seeds: &[Vec<(String, f32)>],
        graph: &Graph,
        propagation: &Propagation,
        config: &TrainConfig,
    ) -> Result<Self> {
        config.validate()?;
        let refs = graph.records();
        let mismatch = |why: String| Error::config("records", why);
        if refs.len() != records.len() {
            return Err(mismatch(format!(
                "{} records, but the graph was built from {}",
                records.len(),
                refs.len()
            )));
        }
        if let Some((r, g)) = records.iter().zip(refs).find(|(r, g)| r.line != g.line) {
            return Err(mismatch(format!(
                "record of line {} where the graph has line {}: not the graph's records",
                r.line, g.line
            )));
        }
        if let Some((_, g)) = records.iter().zip(refs).find(|(r, g)| {
            g.text_hash
                .is_some_and(|h| h != crate::hash::record_hash(&r.text))
        }) {
            return Err(mismatch(format!(
                "the text of line {} is not the one the graph was built from: not the \
                 graph's records",
                g.line
            )));
        }
        let d = propagation.distribution();
        if d.n_nodes() != graph.n_nodes() {
            return Err(mismatch(format!(
                "the propagation has {} nodes, the graph {}",
                d.n_nodes(),
                graph.n_nodes()
            )));
        }
        // As the labels file prints them, and as `distilled` reads them back.
        let rounded =
            |x: f32| -> f32 { format!("{x:.6}").parse().expect("a formatted float parses") };
        let names = propagation.labels();
        let parsed: Vec<(usize, LabelsLine)> = refs
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let v = r.node as usize;
                let row = LabelsLine {
                    line: r.line,
                    id: None,
                    seed: Some(propagation.is_seed(v)),
                    unknown: rounded(d.unknown(v)),
                    scores: crate::propagate::output::printed_scores(propagation, v)
                        .into_iter()
                        .map(|(label, micros)| (names[label as usize].clone(), micros as f32 / 1e6))
                        .collect(),
                };
                (i, row)
            })
            .collect();
        let source = Path::new("<memory>");
        Self::join(
            records,
            &hard_labels(records, seeds)?,
            parsed,
            source,
            config,
        )
    }

    /// The examples of `records`: the hard labels `hard` where they have one, else the
    /// propagated row `parsed` gives for them (by record index).
    fn join(
        records: &[Record],
        hard: &[HardLabels],
        parsed: Vec<(usize, LabelsLine)>,
        path: &Path,
        config: &TrainConfig,
    ) -> Result<Self> {
        let labels = label_ids(
            hard.iter()
                .flatten()
                .flatten()
                .map(|l| l.0.to_owned())
                .chain(
                    parsed
                        .iter()
                        .flat_map(|(_, r)| r.scores.iter().map(|s| s.0.clone())),
                ),
        );
        // Propagation spreads the seeds' labels, so a labels file that shares none with the
        // records labelled here comes from another corpus (joined on line numbers alone, it
        // would train a model on two unrelated label sets).
        let hard_labels: hashbrown::HashSet<&str> =
            hard.iter().flatten().flatten().map(|l| l.0).collect();
        let propagated = || {
            parsed
                .iter()
                .flat_map(|(_, r)| r.scores.iter().map(|s| s.0.as_str()))
        };
        if !hard_labels.is_empty()
            && propagated().next().is_some()
            && propagated().all(|l| !hard_labels.contains(l))
        {
            let some = |set: Vec<&str>| -> String {
                let mut set = set;
                set.sort_unstable();
                set.dedup();
                let more = if set.len() > 3 { ", …" } else { "" };
                format!("{}{more}", set[..set.len().min(3)].join(", "))
            };
            return Err(Error::config(
                "labels",
                format!(
                    "{}: none of its labels ({}) is a label of the records labelled here ({}): \
                     were these labels propagated over another corpus?",
                    path.display(),
                    some(propagated().collect()),
                    some(hard_labels.iter().copied().collect()),
                ),
            ));
        }
        let mut soft: Vec<Option<&LabelsLine>> = vec![None; records.len()];
        for (idx, row) in &parsed {
            soft[*idx] = Some(row);
        }
        let mut counts = TrainSetCounts {
            records: records.len(),
            ..TrainSetCounts::default()
        };
        let mut examples = Vec::new();
        // The rows of records with a hard label. A `"seed": true` row on a record without
        // one is a seed of a seed file that this set was not given, unless the record shares
        // its node with a labelled record (identical texts share a node, and so a row: its
        // scores and unknown mass, which tell nodes apart as well as a hash would).
        fn row_key(row: &LabelsLine) -> (u32, Vec<(&str, u32)>) {
            let scores = row.scores.iter().map(|(l, s)| (l.as_str(), s.to_bits()));
            (row.unknown.to_bits(), scores.collect())
        }
        // Per such row (node), the labels its records have here: propagation seeded the
        // node with all of them (identical texts labelled differently share it).
        let mut seeded_rows: hashbrown::HashMap<_, Vec<&str>> = hashbrown::HashMap::new();
        for (row, h) in soft.iter().zip(hard) {
            if let (Some(row), Some(h)) = (row, h) {
                let labels = seeded_rows.entry(row_key(row)).or_default();
                labels.extend(h.iter().map(|l| l.0));
            }
        }
        for ((r, row), hard) in records.iter().zip(&soft).zip(hard) {
            if let Some(row) = row {
                let disagrees = row.seed == Some(false) && hard.is_some();
                counts.seed_disagreements += usize::from(disagrees);
                if row.seed == Some(true) {
                    // The labels here of the row's node (a labelled record is always listed).
                    match seeded_rows.get(&row_key(row)) {
                        None => counts.seeds_not_given += 1,
                        Some(here) if hard.is_some() => {
                            // Far below the top, not a near tie that propagation tipped over.
                            let score =
                                |l: &str| row.scores.iter().find(|s| s.0 == l).map_or(0.0, |s| s.1);
                            let top = row.scores.first().map_or(0.0, |s| s.1);
                            let relabelled = top > 0.0 && here.iter().all(|l| score(l) < 0.5 * top);
                            counts.seeds_relabelled += usize::from(relabelled);
                        }
                        Some(_) => {}
                    }
                }
            }
            if let Some(h) = hard {
                examples.push(seed_example(r, h, &labels));
                counts.seeds += 1;
                continue;
            }
            let Some(row) = row else { continue };
            let total: f32 = row.scores.iter().map(|s| s.1).sum();
            if row.scores.is_empty() || total <= 0.0 {
                counts.abstained += 1;
                continue;
            }
            let confidence = match config.confidence {
                Confidence::OneMinusUnknown => (1.0 - row.unknown).clamp(0.0, 1.0),
                Confidence::Top => row.scores.iter().map(|s| s.1).fold(0.0, f32::max),
            };
            if confidence < config.min_confidence || confidence <= 0.0 {
                counts.low_confidence += 1;
                continue;
            }
            let mut target: Vec<(u32, f32)> = row
                .scores
                .iter()
                .filter(|s| s.1 > 0.0)
                .map(|(name, s)| (id_of(&labels, name), s / total))
                .collect();
            target.sort_by_key(|t| t.0);
            counts.propagated += 1;
            // λ = 0: seeds alone. Weightless examples would still cost their augmented
            // copies, and take the held-out slice from labels that do not train.
            if config.soft_weight > 0.0 {
                examples.push(Example {
                    text: r.text.clone(),
                    target,
                    weight: confidence, // rescaled below
                    seed: false,
                });
            }
        }
        if let Some((delta, moved, aligned)) = shifted(records, hard, &parsed) {
            return Err(Error::config(
                "labels",
                format!(
                    "{}: its lines look shifted by {delta:+} against this corpus: {moved} \
                     records labelled here match the seed of their label {} line{} away in \
                     it, only {aligned} their own line (a record inserted or deleted since \
                     propagation?). Propagate again over this corpus, or give records ids",
                    path.display(),
                    delta.unsigned_abs(),
                    if delta.unsigned_abs() == 1 { "" } else { "s" }
                ),
            ));
        }
        // Confidence is relative: scaled by its mean over the propagated examples, then by λ,
        // so that λ = 1 gives an average propagated example the weight of a seed. Expander's
        // `1 − unknown` is small everywhere on large graphs (≈ 0.03 on SNIPS), and absolute
        // weights would let 70 seeds outweigh 13,000 propagated labels. (λ multiplies after
        // the mean: before it, the division cancelled it.)
        let soft: Vec<&mut Example> = examples.iter_mut().filter(|e| !e.seed).collect();
        let mean = soft.iter().map(|e| f64::from(e.weight)).sum::<f64>() / soft.len().max(1) as f64;
        let lambda = f64::from(config.soft_weight);
        for e in soft {
            e.weight = if mean > 0.0 {
                (lambda * f64::from(e.weight) / mean) as f32
            } else {
                0.0
            };
        }
        if examples.is_empty() || labels.is_empty() {
            return Err(Error::NoSeeds);
        }
        Ok(Self {
            labels,
            examples,
            counts,
        })
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
    /// Epochs run.
    pub epochs_run: usize,
    /// The epoch whose weights were kept.
    pub best_epoch: usize,
    /// Per-epoch statistics: every epoch of a run of at most [`HISTORY_KEPT`] epochs, else
    /// every k-th, the best and the last (the report is stored in the model file, which a
    /// run of thousands of short epochs would otherwise grow by hundreds of KB).
    pub history: Vec<EpochStats>,
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

/// An exponential moving average of the weights, started at zero and bias-corrected as
/// Adam corrects its moments, so that early epochs are not pulled towards the random
/// initialization whatever the decay.
struct WeightAverage {
    sum: Vec<f32>,
    /// The live weights while the average is swapped in.
    live: Vec<f32>,
    steps: i32,
}

impl WeightAverage {
    fn new(n: usize) -> Self {
        Self {
            sum: vec![0.0; n],
            live: vec![0.0; n],
            steps: 0,
        }
    }

    fn update(&mut self, params: &[f32], decay: f32) {
        for (s, p) in self.sum.iter_mut().zip(params) {
            *s = decay * *s + (1.0 - decay) * p;
        }
        self.steps = self.steps.saturating_add(1);
    }

    /// Saves the live weights and writes the corrected average over them.
    fn swap_in(&mut self, params: &mut [f32], decay: f32) {
        self.live.copy_from_slice(params);
        if self.steps == 0 {
            return;
        }
        let correction = 1.0 / (1.0 - decay.powi(self.steps));
        for (p, s) in params.iter_mut().zip(&self.sum) {
            *p = s * correction;
        }
    }

    /// Puts the live weights back.
    fn swap_out(&self, params: &mut [f32]) {
        params.copy_from_slice(&self.live);
    }
}

/// The projected inputs of every example, ternary (−1, 0, +1), packed four to a byte, one
/// row per distinct text: training holds a row for every example and augmented copy (with a
/// byte per value, training on SwDA's 192k texts and their copies peaked at 1.58 GB; packed,
/// at 0.72 GB), and a text repeated across records (SwDA's 192k train lines hold 123k
/// distinct texts), or among the augmented copies, is projected and stored once.
struct Inputs {
    dim: usize,
    /// Bytes per row: `dim / 4`, rounded up.
    stride: usize,
    /// Two bits per value, low bits first: 0 → 0, 1 → +1, 2 → −1.
    packed: Vec<u8>,
    /// Each example's row in `packed`.
    of: Vec<u32>,
}

impl Inputs {
    /// Projects every example's text (in parallel, deterministic).
    fn project(projector: &Projector, examples: &[Example]) -> Self {
        Self::project_counted(projector, examples, &())
    }

    /// [`Inputs::project`], advancing `progress` by one per example.
    fn project_counted(
        projector: &Projector,
        examples: &[Example],
        progress: &dyn Progress,
    ) -> Self {
        let dim = projector.dim();
        let stride = dim.div_ceil(4);
        // Distinct texts in order of first appearance, so rows do not depend on hashing.
        let mut row_of: hashbrown::HashMap<&str, u32> = hashbrown::HashMap::new();
        let mut texts: Vec<&str> = Vec::new();
        let of = examples
            .iter()
            .map(|e| {
                *row_of.entry(e.text.as_str()).or_insert_with(|| {
                    texts.push(&e.text);
                    (texts.len() - 1) as u32
                })
            })
            .collect();
        let mut packed = vec![0u8; texts.len() * stride];
        packed
            .par_chunks_mut(stride.max(1))
            .zip(texts.par_iter())
            .for_each_init(
                || (ProjectScratch::default(), vec![0i8; dim]),
                |(s, row), (out, text)| {
                    projector.project_with(s, text, row);
                    progress.advance(1);
                    for (byte, four) in out.iter_mut().zip(row.chunks(4)) {
                        *byte = four.iter().enumerate().fold(0u8, |b, (k, &v)| {
                            b | (match v.signum() {
                                1 => 1u8,
                                -1 => 2,
                                _ => 0,
                            } << (2 * k))
                        });
                    }
                },
            );
        // The repeats, projected with their first occurrence.
        progress.advance((examples.len() - texts.len()) as u64);
        Self {
            dim,
            stride,
            packed,
            of,
        }
    }

    /// Number of examples.
    fn len(&self) -> usize {
        self.of.len()
    }

    /// Example `i`'s row as it is stored: equal bytes, equal inputs.
    fn packed_row(&self, i: usize) -> &[u8] {
        let r = self.of[i] as usize;
        &self.packed[r * self.stride..(r + 1) * self.stride]
    }

    /// Example `i`'s row, unpacked into `row`.
    fn row(&self, i: usize, row: &mut Vec<i8>) {
        const VALUE: [i8; 4] = [0, 1, -1, 0];
        row.clear();
        row.extend(
            self.packed_row(i)
                .iter()
                .flat_map(|&b| (0..4).map(move |k| VALUE[usize::from((b >> (2 * k)) & 3)]))
                .take(self.dim),
        );
    }

    /// Example `i`'s row with input dropout, into `x`: the floats of [`Inputs::row`] then
    /// [`dropped_inputs`], bit for bit, unpacked and masked eight inputs (one generator
    /// output) at a time instead of value by value through two buffers.
    fn dropped_row(&self, i: usize, x: &mut Vec<f32>, keep: u32, epoch_key: u64) {
        // 2-bit codes: 00 → 0, 01 → +1, 10 → −1, 11 → 0 (as in `row`).
        const VALUE: [f32; 4] = [0.0, 1.0, -1.0, 0.0];
        let packed = self.packed_row(i);
        x.clear();
        x.resize(self.dim, 0.0);
        if keep >= 256 {
            for (j, v) in x.iter_mut().enumerate() {
                *v = VALUE[usize::from((packed[j / 4] >> (2 * (j % 4))) & 3)];
            }
            return;
        }
        let scale = 256.0 / keep as f32;
        // The kept values, already scaled: `f32::from(v) * scale` for v = 0, 1, −1.
        let scaled = VALUE.map(|v| v * scale);
        let mut rng = dropout_rng(i, epoch_key);
        let eight = |out: &mut [f32], codes: u16, bytes: [u8; 8]| {
            for (k, (v, b)) in out.iter_mut().zip(bytes).enumerate() {
                let code = usize::from((codes >> (2 * k)) & 3);
                *v = if u32::from(b) < keep {
                    scaled[code]
                } else {
                    0.0
                };
            }
        };
        let mut whole = x.chunks_exact_mut(8);
        for (out, codes) in (&mut whole).zip(packed.chunks_exact(2)) {
            // Eight inputs are two packed bytes; a whole chunk is a loop of fixed length.
            let out: &mut [f32; 8] = out.try_into().expect("8 inputs");
            eight(
                out,
                u16::from_le_bytes([codes[0], codes[1]]),
                rng.next_u64().to_le_bytes(),
            );
        }
        let rest = whole.into_remainder();
        if !rest.is_empty() {
            let at = self.dim / 8 * 2;
            let codes =
                u16::from(packed[at]) | packed.get(at + 1).map_or(0, |&b| u16::from(b) << 8);
            eight(rest, codes, rng.next_u64().to_le_bytes());
        }
    }

    /// Appends `other`'s examples. Their rows are not merged with this one's: the augmented
    /// copies are altered texts, which rarely equal an original (they often equal each other,
    /// and `other` shares those rows already).
    fn append(&mut self, other: Self) {
        debug_assert_eq!(self.dim, other.dim);
        let base = (self.packed.len() / self.stride.max(1)) as u32;
        self.of.extend(other.of.iter().map(|&r| base + r));
        self.packed.extend(other.packed);
    }
}

fn argmax(p: &[f32]) -> u32 {
    p.iter()
        .enumerate()
        .fold((0usize, f32::NEG_INFINITY), |b, (l, &v)| {
            if v > b.1 {
                (l, v)
            } else {
                b
            }
        })
        .0 as u32
}

fn argmax_target(t: &[(u32, f32)]) -> u32 {
    t.iter()
        .fold((u32::MAX, f32::NEG_INFINITY), |best, &(l, p)| {
            if p > best.1 {
                (l, p)
            } else {
                best
            }
        })
        .0
}

/// Per-chunk work buffers.
#[derive(Default)]
struct Worker {
    grad: Vec<f32>,
    /// Per example of the chunk: its activations, inputs and derivative of the loss.
    scratch: Vec<MlpScratch>,
    x: Vec<Vec<f32>>,
    dlogits: Vec<Vec<f32>>,
    loss: f64,
    trainer: TrainerWorker,
}

/// What a chunk reads: the student, its inputs, and the joint trainer if any.
struct Shared<'a> {
    mlp: &'a Mlp,
    inputs: &'a Inputs,
    examples: &'a [Example],
    joint: Option<(&'a Trainer, &'a SparseInputs)>,
    /// Input dropout: the probability in 256ths that a bit is kept (256: no dropout), and
    /// the key of this epoch's masks.
    keep: u32,
    epoch_key: u64,
}

/// The generator of example `i`'s dropout mask in the epoch of `epoch_key`.
fn dropout_rng(i: usize, epoch_key: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(epoch_key ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Copies example `i`'s inputs into `x`, with input dropout: bit `j` is kept when byte
/// `j % 8` of the `j / 8`-th output of a generator seeded by (`epoch_key`, `i`) is below
/// `keep` (256ths), and scaled by `256 / keep`. The mask depends on the example, not on the
/// thread or chunk that sees it, so training stays identical for any thread count.
#[cfg(test)]
fn dropped_inputs(x: &mut Vec<f32>, inputs: &[i8], i: usize, keep: u32, epoch_key: u64) {
    x.clear();
    if keep >= 256 {
        x.extend(inputs.iter().map(|&v| f32::from(v)));
        return;
    }
    let scale = 256.0 / keep as f32;
    let mut rng = dropout_rng(i, epoch_key);
    for chunk in inputs.chunks(8) {
        let bytes = rng.next_u64().to_le_bytes();
        x.extend(chunk.iter().zip(bytes).map(|(&v, b)| {
            if u32::from(b) < keep {
                f32::from(v) * scale
            } else {
                0.0
            }
        }));
    }
}

impl Worker {
    /// Forward and backward over `items`, accumulating into `self.grad` (and the trainer's
    /// buffers).
    fn run(&mut self, c: &Shared<'_>, items: &[usize]) {
        self.grad.clear();
        self.grad.resize(c.mlp.params().len(), 0.0);
        self.loss = 0.0;
        Trainer::reset(&mut self.trainer);
        let n = items.len();
        if self.scratch.len() < n {
            self.scratch.resize_with(n, MlpScratch::default);
            self.x.resize_with(n, Vec::new);
            self.dlogits.resize_with(n, Vec::new);
        }
        for (&i, x) in items.iter().zip(&mut self.x) {
            c.inputs.dropped_row(i, x, c.keep, c.epoch_key);
        }
        // The chunk's examples side by side: each weight row read once for all of them
        // (the same floats as one example at a time).
        let xs: Vec<&[f32]> = self.x[..n].iter().map(Vec::as_slice).collect();
        c.mlp.forward_many(&xs, &mut self.scratch[..n]);
        for ((&i, scratch), dlogits) in items.iter().zip(&self.scratch).zip(&mut self.dlogits) {
            let ex = &c.examples[i];
            let probs = &scratch.probs;
            // d/dz of w · CE(q, softmax(z)) is w · (p − q).
            let truth = match c.joint {
                Some((t, _)) => ex.weight * t.config.ground_truth_weight,
                None => ex.weight,
            };
            dlogits.clear();
            dlogits.extend(probs.iter().map(|&p| truth * p));
            for &(l, q) in &ex.target {
                dlogits[l as usize] -= truth * q;
                self.loss -= f64::from(truth * q) * f64::from(probs[l as usize].max(1e-12)).ln();
            }
            if let Some((trainer, sparse)) = c.joint {
                // λ2: the trainer's distribution is the target of the projection network.
                let teacher = trainer.example(&mut self.trainer, sparse, i, ex);
                let sim = ex.weight * trainer.config.simulation_weight;
                for ((d, &p), &t) in dlogits.iter_mut().zip(probs).zip(teacher) {
                    *d += sim * (p - t);
                    if t > 0.0 {
                        self.loss -= f64::from(sim * t) * f64::from(p.max(1e-12)).ln();
                    }
                }
            }
        }
        let dls: Vec<&[f32]> = self.dlogits[..n].iter().map(Vec::as_slice).collect();
        c.mlp
            .backward_many(&xs, &dls, &mut self.scratch[..n], &mut self.grad);
    }
}

/// Reusable buffers of [`ForwardScratch::forward`].
#[derive(Default)]
struct ForwardScratch {
    mlp: MlpScratch,
    x: Vec<f32>,
    row: Vec<i8>,
}

impl ForwardScratch {
    /// The network's probabilities for example `i`'s projected inputs, without dropout.
    fn forward(&mut self, mlp: &Mlp, inputs: &Inputs, i: usize) -> &[f32] {
        inputs.row(i, &mut self.row);
        self.x.clear();
        self.x.extend(self.row.iter().map(|&v| f32::from(v)));
        mlp.forward(&self.x, &mut self.mlp);
        &self.mlp.probs
    }
}

/// Held-out accuracy and mean loss (in example order, so the sums are reproducible).
fn evaluate(mlp: &Mlp, val: &[usize], inputs: &Inputs, examples: &[Example]) -> (f64, f64) {
    if val.is_empty() {
        return (0.0, 0.0);
    }
    let per: Vec<(bool, f64)> = val
        .par_iter()
        .map_init(ForwardScratch::default, |s, &i| {
            let ex = &examples[i];
            let probs = s.forward(mlp, inputs, i);
            let loss: f64 = ex
                .target
                .iter()
                .map(|&(l, q)| -f64::from(q) * f64::from(probs[l as usize].max(1e-12)).ln())
                .sum();
            (argmax(probs) == argmax_target(&ex.target), loss)
        })
        .collect();
    let correct = per.iter().filter(|p| p.0).count();
    let loss: f64 = per.iter().map(|p| p.1).sum();
    (correct as f64 / val.len() as f64, loss / val.len() as f64)
}

/// Examples run through the trained network to check that its outputs are finite.
const DIVERGENCE_SAMPLE: usize = 256;

/// Whether the network's probabilities are finite on the examples `idx`.
fn outputs_are_finite(mlp: &Mlp, idx: &[usize], inputs: &Inputs) -> bool {
    let mut s = ForwardScratch::default();
    idx.iter()
        .all(|&i| s.forward(mlp, inputs, i).iter().all(|p| p.is_finite()))
}

/// The first 40 characters of `text`, to name an example in an error.
fn excerpt(text: &str) -> String {
    let mut out: String = text.chars().take(40).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

fn shuffle(v: &mut [usize], rng: &mut Xoshiro256PlusPlus) {
    for i in (1..v.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
}

/// The held-out slice: the first `n_val` examples of `pool` (shuffled) whose input (`key`:
/// the projected row, so texts that differ only in case or in what the tokenizer drops count
/// as one) occurs once among the examples, passing over any whose label (its top target
/// label) would be left without a training example. A repeated input stays on the training
/// side: held out, its twins in training would score the slice on memory, not on new text;
/// held out with all its twins, the slice would fill up with the few most repeated texts
/// (SwDA's "uh-huh."). A rare label's only example held out could not be learned at all.
/// Without repeated inputs or rare labels this is `pool[..n_val]`. Returns sorted indices;
/// fewer than `n_val` only when the pool runs out.
///
/// (Stratifying the slice by label was tried and not kept: fully supervised HWU64 and SNIPS
/// moved within noise, few-label HWU64 dev fell 2.2 points; see benches/README.md.)
fn held_out<'a>(
    pool: &[usize],
    examples: &[Example],
    key: impl Fn(usize) -> &'a [u8],
    n_labels: usize,
    n_val: usize,
) -> Vec<usize> {
    // The label the held-out accuracy scores an example against.
    let top = |i: usize| argmax_target(&examples[i].target) as usize;
    // Training examples each label would keep: all of them, before any is held out.
    let mut left = vec![0usize; n_labels];
    let mut copies: hashbrown::HashMap<&[u8], u32> = hashbrown::HashMap::new();
    for i in 0..examples.len() {
        left[top(i)] += 1;
        *copies.entry(key(i)).or_default() += 1;
    }
    let mut val = Vec::with_capacity(n_val);
    for &i in pool {
        if val.len() == n_val {
            break;
        }
        let l = top(i);
        if copies[key(i)] == 1 && left[l] > 1 {
            left[l] -= 1;
            val.push(i);
        }
    }
    val.sort_unstable();
    val
}

/// Trains a model on `set`.
///
/// `progress` sees one stage per epoch (counted in batches); `on_epoch` is called after each
/// epoch of a network model.
///
/// # Errors
/// [`Error::InvalidConfig`] for a bad config or a bad example ([`TrainSet::validate`]);
/// [`Error::NoSeeds`] for an empty train set.
pub fn train(
    set: &TrainSet,
    text: &TextConfig,
    features: &FeatureConfig,
    projection: &ProjectionConfig,
    config: &TrainConfig,
    progress: &dyn Progress,
    on_epoch: &mut dyn FnMut(&EpochStats),
) -> Result<ProjectionModel> {
    train_scored(set, text, features, projection, config, progress, on_epoch).map(|t| t.model)
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
pub fn train_scored(
    set: &TrainSet,
    text: &TextConfig,
    features: &FeatureConfig,
    projection: &ProjectionConfig,
    config: &TrainConfig,
    progress: &dyn Progress,
    on_epoch: &mut dyn FnMut(&EpochStats),
) -> Result<Trained> {
    config.validate()?;
    set.validate()?;
    let projector = Projector::new(text, features, projection)?;
    progress.stage("projecting", Some(set.examples.len() as u64), "texts");
    let mut inputs = Inputs::project_counted(&projector, &set.examples, progress);
    progress.finish_stage();
    if config.kind == ModelKind::Table {
        let table = build_table(&projector, &inputs, set, config)?;
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
    let dim = projector.dim();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(config.seed);
    let mut sizes = vec![dim];
    sizes.extend(&config.hidden);
    sizes.push(set.labels.len());
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
    let mut mlp = Mlp::new(&sizes, || rng.next_u64())?;

    // The held-out slice: seeds if there are enough of them, else propagated examples.
    let n_seeds = set.examples.iter().filter(|e| e.seed).count();
    let val_from_seeds =
        n_seeds >= SEEDS_FOR_VALIDATION * set.labels.len() || n_seeds == set.examples.len();
    let mut pool: Vec<usize> = (0..set.examples.len())
        .filter(|&i| set.examples[i].seed == val_from_seeds)
        .collect();
    shuffle(&mut pool, &mut rng);
    let n_val = if pool.len() >= 2 && (config.hold_out_seeds || !val_from_seeds) {
        ((pool.len() as f64 * f64::from(config.validation)).round() as usize).min(pool.len() / 2)
    } else {
        0
    };
    // Too small a slice judges epochs by noise: none, then.
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
    let mut train_idx: Vec<usize> = (0..set.examples.len())
        .filter(|i| val.binary_search(i).is_err())
        .collect();

    // Distillation through augmented copies: they join the training side only.
    let mut teacher_val_accuracy = None;
    let examples: Cow<'_, [Example]> = if config.augment > 0 {
        progress.stage(
            "linear teacher",
            Some(augment::TEACHER_EPOCHS as u64),
            "epochs",
        );
        let pipeline = projector.pipeline();
        let teacher = Teacher::fit(
            pipeline,
            &set.examples,
            &train_idx,
            set.labels.len(),
            config.seed,
            progress,
        );
        progress.finish_stage();
        if !val.is_empty() {
            teacher_val_accuracy = Some(teacher.accuracy(pipeline, &set.examples, &val));
        }
        let per_example = config
            .augment
            .min((augment::MAX_COPIES / train_idx.len().max(1)).max(1));
        progress.stage("augmented copies", Some(train_idx.len() as u64), "texts");
        let copies: Vec<Example> = train_idx
            .par_iter()
            .flat_map_iter(|&i| {
                progress.advance(1);
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
        progress.stage("projecting copies", None, "texts");
        inputs.append(Inputs::project(&projector, &copies));
        progress.finish_stage();
        train_idx.extend(set.examples.len()..set.examples.len() + copies.len());
        Cow::Owned(set.examples.iter().cloned().chain(copies).collect())
    } else {
        Cow::Borrowed(&set.examples)
    };

    let mut adam = Adam::new(mlp.params().len(), config.learning_rate);
    let mut joint = match &config.joint {
        Some(j) => {
            progress.stage("hashing", None, "texts");
            let sparse = SparseInputs::new(projector.pipeline(), &examples, j);
            progress.finish_stage();
            let mut trainer = Trainer::new(j, set.labels.len(), || rng.next_u64())?;
            trainer.set_lr(config.learning_rate);
            Some((trainer, sparse))
        }
        None => None,
    };
    let mut head_total = Vec::new();
    let mut workers: Vec<Worker> = Vec::new();
    let mut total = vec![0.0f32; mlp.params().len()];
    let mut best = (f64::NEG_INFINITY, f64::INFINITY, 0usize);
    let mut best_params = mlp.params().to_vec();
    let mut history = Vec::new();
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
    for epoch in 1..=epochs {
        shuffle(&mut train_idx, &mut rng);
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
                mlp: &mlp,
                inputs: &inputs,
                examples: &examples,
                joint: joint.as_ref().map(|(t, s)| (t, s)),
                keep,
                epoch_key,
            };
            workers[..chunks.len()]
                .par_iter_mut()
                .zip(chunks.par_iter())
                .for_each(|(w, items)| w.run(&shared, items));
            total.fill(0.0);
            for w in &workers[..chunks.len()] {
                for (t, g) in total.iter_mut().zip(&w.grad) {
                    *t += g;
                }
                epoch_loss += w.loss + w.trainer.loss;
            }
            if let Some((trainer, _)) = &mut joint {
                trainer.step(
                    workers[..chunks.len()].iter().map(|w| &w.trainer),
                    batch.len(),
                    &mut head_total,
                );
            }
            let inv = 1.0 / batch.len() as f32;
            for t in total.iter_mut() {
                *t *= inv;
            }
            adam.step(mlp.params_mut(), &total);
            if let Some(a) = &mut average {
                a.update(mlp.params(), config.ema_decay);
            }
            progress.advance(1);
        }
        progress.finish_stage();
        // Held out, and kept, are the averaged weights; the live ones come back below.
        if let Some(a) = &mut average {
            a.swap_in(mlp.params_mut(), config.ema_decay);
        }
        let (val_accuracy, val_loss) = evaluate(&mlp, &val, &inputs, &examples);
        let stats = EpochStats {
            epoch,
            train_loss: epoch_loss / train_idx.len().max(1) as f64,
            val_accuracy,
            val_loss,
            trainer_val_accuracy: joint.as_ref().map(|(t, s)| t.accuracy(s, &val, &examples)),
            held_out: val.len(),
        };
        on_epoch(&stats);
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
        if let Some(a) = &average {
            a.swap_out(mlp.params_mut());
        }
    }
    mlp.params_mut().copy_from_slice(&best_params);
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
    let report = TrainReport {
        config: config.clone(),
        counts: set.counts,
        train_examples: train_idx.len(),
        val_examples: val.len(),
        val_from_seeds,
        augmented_examples: examples.len() - set.examples.len(),
        teacher_val_accuracy,
        epochs_run: history.len(),
        best_epoch: best.2,
        history: thinned(history, best.2),
    };
    let network = Network::from_mlp(&mlp, config.quantize);
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

/// Accuracy of `network` (weights as stored) on the examples `val`, against each example's
/// top target label, as [`evaluate`] scores the training weights.
fn network_accuracy(
    network: &Network,
    val: &[usize],
    inputs: &Inputs,
    examples: &[Example],
) -> f64 {
    let correct = val
        .par_iter()
        .map_init(
            || (Vec::new(), crate::network::NetScratch::default()),
            |(row, scratch), &i| {
                inputs.row(i, row);
                network.forward(row, scratch);
                argmax(&scratch.probs) == argmax_target(&examples[i].target)
            },
        )
        .filter(|&hit| hit)
        .count();
    correct as f64 / val.len() as f64
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
                "no bucket holds {} or more training texts: lower --table-min-texts",
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
    use crate::corpus::RecordId;

    #[test]
    fn the_held_out_slice_never_takes_a_labels_last_example() {
        // Labels of 1, 2, 50 and 47 examples; 10 held out of 100.
        let counts = [1usize, 2, 50, 47];
        let examples: Vec<Example> = counts
            .iter()
            .enumerate()
            .flat_map(|(l, &c)| {
                (0..c).map(move |i| Example {
                    text: format!("{l} {i}"),
                    // A runner-up label must not decide which label an example is.
                    target: vec![(l as u32, 0.7), (((l + 1) % 4) as u32, 0.3)],
                    weight: 1.0,
                    seed: true,
                })
            })
            .collect();
        let label = |i: usize| examples[i].target[0].0;
        // Pools that put the rare labels' examples first: they are passed over (label 1 may
        // give one of its two), and the slice still holds 10.
        let mut pool: Vec<usize> = vec![0, 1, 2];
        pool.extend(3..100);
        let text = |i: usize| examples[i].text.as_bytes();
        let val = held_out(&pool, &examples, text, 4, 10);
        assert_eq!(val.len(), 10);
        assert!(!val.contains(&0), "label 0's only example");
        assert_eq!(val.iter().filter(|&&i| label(i) == 1).count(), 1);
        // 0 passed over, 1 taken (label 1 keeps 2), 2 passed over, then 3..=11.
        assert_eq!(val, [1].into_iter().chain(3..12).collect::<Vec<_>>());
        // Without rare labels in front, the slice is the pool's first n_val, as before.
        let mut shuffled: Vec<usize> = (3..100).collect();
        shuffle(&mut shuffled, &mut Xoshiro256PlusPlus::seed_from_u64(3));
        let mut first: Vec<usize> = shuffled[..10].to_vec();
        first.sort_unstable();
        assert_eq!(held_out(&shuffled, &examples, text, 4, 10), first);
        // One example per label: nothing can be held out.
        assert!(held_out(&[0, 1], &examples[..2], text, 4, 1).is_empty());
    }

    #[test]
    fn repeated_texts_stay_on_the_training_side() {
        let ex = |text: &str, label: u32| Example {
            text: text.into(),
            target: vec![(label, 1.0)],
            weight: 1.0,
            seed: true,
        };
        let examples = vec![
            ex("uh-huh", 0), // 0: repeated three times
            ex("yeah", 1),   // 1
            ex("uh-huh", 0), // 2
            ex("okay", 1),   // 3
            ex("right", 0),  // 4
            ex("uh-huh", 0), // 5
            ex("sure", 1),   // 6
            ex("well", 0),   // 7
        ];
        let pool = [0, 2, 1, 4, 5, 6, 3, 7];
        // Keyed by projected input: "Uh-huh" (8) is lowercased into a fourth "uh-huh".
        let mut examples = examples;
        examples.push(ex("Uh-huh", 0));
        let pool: Vec<usize> = [8].into_iter().chain(pool).collect();
        let projector = Projector::new(
            &TextConfig::default(),
            &FeatureConfig::default(),
            &ProjectionConfig::default(),
        )
        .unwrap();
        let inputs = Inputs::project(&projector, &examples);
        let key = |i: usize| inputs.packed_row(i);
        assert_eq!(held_out(&pool, &examples, key, 2, 2), [1, 4]);
        // All that may go: label 0 keeps the repeats of "uh-huh" (and "well" may go), label 1
        // keeps "okay".
        assert_eq!(held_out(&pool, &examples, key, 2, 8), [1, 4, 6, 7]);
        // By raw text, "Uh-huh" would have been held out, beside three twins in training.
        let text = |i: usize| examples[i].text.as_bytes();
        assert_eq!(held_out(&pool, &examples, text, 2, 2), [1, 8]);
    }

    fn rec(line: u64, text: &str, label: Option<&str>) -> Record {
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

    /// `train_scored` with the default text, feature and projection configs, no progress,
    /// and `on_epoch` for each epoch's stats.
    fn try_fit_scored(
        set: &TrainSet,
        config: &TrainConfig,
        on_epoch: &mut dyn FnMut(&EpochStats),
    ) -> Result<Trained> {
        train_scored(
            set,
            &TextConfig::default(),
            &FeatureConfig::default(),
            &ProjectionConfig::default(),
            config,
            &(),
            on_epoch,
        )
    }

    /// [`try_fit_scored`]'s model alone, as `train` returns it.
    fn try_fit(
        set: &TrainSet,
        config: &TrainConfig,
        on_epoch: &mut dyn FnMut(&EpochStats),
    ) -> Result<ProjectionModel> {
        try_fit_scored(set, config, on_epoch).map(|t| t.model)
    }

    fn fit(set: &TrainSet, config: &TrainConfig) -> ProjectionModel {
        try_fit(set, config, &mut |_| {}).unwrap()
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
    fn packed_inputs_unpack_to_the_projection() {
        // Texts repeated within each part (the first part's repeats make it store fewer rows
        // than it has examples, which `append` must account for), and across the parts.
        let mut records = toy_records();
        let (a, b) = (records[0].clone(), records[8].clone());
        records.insert(3, a.clone());
        records.insert(5, a);
        records.push(b);
        let set = TrainSet::supervised(&records).unwrap();
        // 3 × 5 = 15 values a row: the last byte of each row is part-filled.
        let config = ProjectionConfig {
            functions: 3,
            bits: 5,
            ..ProjectionConfig::default()
        };
        let projector =
            Projector::new(&TextConfig::default(), &FeatureConfig::default(), &config).unwrap();
        let mut inputs = Inputs::project(&projector, &set.examples[..7]);
        let first_rows = inputs.packed.len() / inputs.stride;
        assert_eq!(first_rows, 5, "7 examples over 5 distinct texts");
        inputs.append(Inputs::project(&projector, &set.examples[7..]));
        assert_eq!(inputs.len(), set.examples.len());
        let (mut row, mut want) = (Vec::new(), vec![0i8; 15]);
        let mut values = std::collections::BTreeSet::new();
        for (i, ex) in set.examples.iter().enumerate() {
            projector.project_with(&mut ProjectScratch::default(), &ex.text, &mut want);
            inputs.row(i, &mut row);
            assert_eq!(row, want, "{}", ex.text);
            values.extend(row.iter().copied());
        }
        assert_eq!(
            values.len(),
            3,
            "all of −1, 0 and +1 round-trip: {values:?}"
        );
    }

    #[test]
    fn weight_average_is_bias_corrected_and_restores_the_live_weights() {
        let decay = 0.9f32;
        let mut a = WeightAverage::new(2);
        let mut params = [1.0f32, -2.0];
        // Before any step there is nothing to average: the weights stay.
        a.swap_in(&mut params, decay);
        assert_eq!(params, [1.0, -2.0]);
        // One step: the corrected average is that step's weights, not a tenth of them.
        a.update(&params, decay);
        a.swap_in(&mut params, decay);
        assert!((params[0] - 1.0).abs() < 1e-6 && (params[1] + 2.0).abs() < 1e-6);
        a.swap_out(&mut params);
        // A second step at 3.0 and 0.0: weights 0.1·0.9 and 0.1, over 1 − 0.81.
        params = [3.0, 0.0];
        a.update(&params, decay);
        a.swap_in(&mut params, decay);
        let w_old = 0.09 / 0.19;
        let w_new = 0.1 / 0.19;
        assert!(
            (params[0] - (w_old * 1.0 + w_new * 3.0)).abs() < 1e-5,
            "{params:?}"
        );
        assert!((params[1] - (w_old * -2.0)).abs() < 1e-5, "{params:?}");
        a.swap_out(&mut params);
        assert_eq!(params, [3.0, 0.0], "the live weights come back");
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
        let report: TrainReport = serde_json::from_value(model.train_report().clone()).unwrap();
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
        let report: TrainReport = serde_json::from_value(without.train_report().clone()).unwrap();
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
            serde_json::from_value(fit(&set, &config).train_report().clone()).unwrap()
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
        let r: TrainReport =
            serde_json::from_value(fit(&set, &config).train_report().clone()).unwrap();
        let per_epoch = r.train_examples.div_ceil(config.batch_size);
        assert_eq!(r.epochs_run, 2000usize.div_ceil(per_epoch));
        assert!(r.epochs_run > 8);
        assert!(r.history.len() <= HISTORY_KEPT + 2 || r.epochs_run <= HISTORY_KEPT);
        assert_eq!(r.history.last().unwrap().epoch, r.epochs_run);
        assert!(r.history.iter().any(|s| s.epoch == r.best_epoch));
    }

    #[test]
    fn the_held_out_accuracy_is_the_stored_networks() {
        let set = TrainSet::supervised(&toy_records()).unwrap();
        let projector = Projector::new(
            &TextConfig::default(),
            &FeatureConfig::default(),
            &ProjectionConfig::default(),
        )
        .unwrap();
        let inputs = Inputs::project_counted(&projector, &set.examples, &());
        let all: Vec<usize> = (0..set.examples.len()).collect();
        for quantize in [Quantization::None, Quantization::Int8, Quantization::Int4] {
            let config = TrainConfig {
                validation: 0.2,
                quantize,
                ..small()
            };
            let trained = try_fit_scored(&set, &config, &mut |_| {}).unwrap();
            let report: TrainReport =
                serde_json::from_value(trained.model.train_report().clone()).unwrap();
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
        assert_ne!(averaged.to_bytes(), fit(&set, &plain).to_bytes());
        let top = averaged.predict("thanks so much")[0];
        assert_eq!(averaged.label_name(top.label), "thanks");
    }

    #[test]
    fn packed_rows_drop_inputs_as_the_reference_does() {
        // Every way a row can end: whole groups of eight, and a last group with or without
        // its second packed byte.
        for dim in (1..=40).chain([1120, 1123]) {
            packed_rows_drop_inputs_at(dim);
        }
    }

    fn packed_rows_drop_inputs_at(dim: usize) {
        let rows: Vec<Vec<i8>> = (0..5)
            .map(|r| {
                (0..dim)
                    .map(|j| [1, -1, 0, 1, 0][(j * 7 + r) % 5])
                    .collect()
            })
            .collect();
        let stride = dim.div_ceil(4);
        let mut packed = vec![0u8; rows.len() * stride];
        for (row, out) in rows.iter().zip(packed.chunks_mut(stride)) {
            for (j, &v) in row.iter().enumerate() {
                out[j / 4] |= (match v {
                    1 => 1u8,
                    -1 => 2,
                    _ => 0,
                }) << (2 * (j % 4));
            }
        }
        let inputs = Inputs {
            dim,
            stride,
            packed,
            of: vec![0, 1, 2, 3, 4, 2],
        };
        let (mut want, mut got, mut row) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..6 {
            for keep in [1, 77, 128, 255, 256] {
                inputs.row(i, &mut row);
                dropped_inputs(&mut want, &row, i, keep, 42);
                inputs.dropped_row(i, &mut got, keep, 42);
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&want), "dim {dim} example {i} keep {keep}");
            }
        }
    }

    #[test]
    fn input_dropout_masks_per_example_and_rescales() {
        let inputs: Vec<i8> = (0..1120).map(|j| [1, -1, 0, 1][j % 4]).collect();
        let mut x = Vec::new();
        dropped_inputs(&mut x, &inputs, 7, 256, 42);
        assert!(
            x.iter().zip(&inputs).all(|(&a, &b)| a == f32::from(b)),
            "keep all"
        );
        // p = 0.5: 128 of 256.
        dropped_inputs(&mut x, &inputs, 7, 128, 42);
        assert_eq!(x.len(), inputs.len());
        let kept = x
            .iter()
            .zip(&inputs)
            .filter(|(&a, &b)| b != 0 && a != 0.0)
            .count();
        let nonzero = inputs.iter().filter(|&&b| b != 0).count();
        assert!(
            (0.4..0.6).contains(&(kept as f64 / nonzero as f64)),
            "{kept} of {nonzero}"
        );
        for (&a, &b) in x.iter().zip(&inputs) {
            assert!(
                a == 0.0 || a == 2.0 * f32::from(b),
                "kept bits are scaled by 1/(1-p)"
            );
        }
        let again = {
            let mut y = Vec::new();
            dropped_inputs(&mut y, &inputs, 7, 128, 42);
            y
        };
        assert_eq!(x, again, "same example and epoch, same mask");
        let mut other = Vec::new();
        dropped_inputs(&mut other, &inputs, 8, 128, 42);
        assert_ne!(x, other, "another example");
        dropped_inputs(&mut other, &inputs, 7, 128, 43);
        assert_ne!(x, other, "another epoch");
    }

    #[test]
    fn distilled_joins_renormalizes_and_skips() {
        let records = vec![
            rec(1, "hello", Some("greeting")),
            rec(2, "hi there", None),
            rec(4, "thanks", None),
            rec(5, "bye", None),
            rec(6, "what", None),
        ];
        let labels = concat!(
            r#"{"line":1,"label":"greeting","score":1,"unknown":0,"scores":[["greeting",1.0]],"seed":true}"#,
            "\n",
            r#"{"line":2,"label":"greeting","score":0.3,"unknown":0.6,"scores":[["greeting",0.3],["thanks",0.1]],"seed":false}"#,
            "\n",
            "\n",
            r#"{"line":4,"label":"thanks","score":0.05,"unknown":0.9,"scores":[["thanks",0.05],["greeting",0.05]],"seed":false}"#,
            "\n",
            r#"{"line":5,"label":null,"score":0,"unknown":1,"scores":[],"seed":false}"#,
            "\n",
            r#"{"feature":"u:hi","label":"greeting","score":1,"unknown":0,"scores":[["greeting",1.0]],"seed":false}"#,
            "\n",
        );
        let config = TrainConfig {
            min_confidence: 0.2,
            ..TrainConfig::default()
        };
        let set = TrainSet::distilled(
            &records,
            &mut labels.as_bytes(),
            Path::new("l.jsonl"),
            &config,
        )
        .unwrap();
        assert_eq!(set.labels, ["greeting", "thanks"]);
        assert_eq!(set.examples.len(), 2);
        assert!(set.examples[0].seed);
        let soft = &set.examples[1];
        assert_eq!(soft.text, "hi there");
        assert_eq!(soft.target, vec![(0, 0.75), (1, 0.25)]);
        // The only propagated example has the mean confidence: weight λ, for any λ.
        assert!((soft.weight - 1.0).abs() < 1e-6);
        let with_lambda = |lambda: f32| {
            let config = TrainConfig {
                soft_weight: lambda,
                ..config.clone()
            };
            TrainSet::distilled(
                &records,
                &mut labels.as_bytes(),
                Path::new("l.jsonl"),
                &config,
            )
            .unwrap()
        };
        for lambda in [0.25, 3.0] {
            let scaled = with_lambda(lambda);
            assert_eq!(scaled.examples[1].weight, lambda, "λ = {lambda}");
            assert_eq!(scaled.examples[0].weight, 1.0, "a seed's weight is not λ's");
        }
        // λ = 0: the seed alone trains; the propagated record is still counted.
        let seeds_only = with_lambda(0.0);
        assert_eq!(seeds_only.examples.len(), 1);
        assert!(seeds_only.examples[0].seed);
        assert_eq!(seeds_only.counts.propagated, 1);
        let c = set.counts;
        assert_eq!(
            (c.seeds, c.propagated, c.abstained, c.low_confidence),
            (1, 1, 1, 1)
        );
        assert_eq!(c.seed_disagreements, 0);
        // The same file joined to a reordered corpus: line 2's record is labelled there, but
        // the file says it was no seed.
        let shuffled = vec![
            rec(1, "hello", None),
            rec(2, "hi there", Some("greeting")),
            rec(4, "thanks", None),
            rec(5, "bye", None),
            rec(6, "what", None),
        ];
        let set = TrainSet::distilled(
            &shuffled,
            &mut labels.as_bytes(),
            Path::new("l.jsonl"),
            &config,
        )
        .unwrap();
        assert_eq!(
            set.counts.seed_disagreements, 1,
            "line 2: seed false, corpus label"
        );
        assert_eq!(set.counts.seeds_not_given, 1, "line 1: seed true, no label");
    }

    /// A labels line must be what `sprig propagate` writes: each departure is refused with
    /// the file, line and field, not read as a default that silently changes the training.
    #[test]
    fn labels_lines_are_checked_field_by_field() {
        let records = vec![
            rec(1, "hello", Some("greeting")),
            rec(2, "hi there", None),
            rec(3, "bye", Some("farewell")),
        ];
        let good =
            r#"{"line":2,"unknown":0.4,"scores":[["greeting",0.5],["farewell",0.1]],"seed":false}"#;
        let config = TrainConfig::default();
        let run = |second: &str| {
            let file = format!("{good}\n{second}\n");
            TrainSet::distilled(
                &records,
                &mut file.as_bytes(),
                Path::new("l.jsonl"),
                &config,
            )
            .map(|set| set.counts)
            .map_err(|e| e.to_string())
        };
        // Feature lines (`--all-nodes`) are passed over; record lines join.
        let feature =
            r#"{"feature":"u:hi","unknown":0.5,"scores":[["greeting",0.5]],"seed":false}"#;
        assert_eq!(run(feature).unwrap().propagated, 1);
        for (line, want) in [
            (
                r#"[3, null, false, 0.0, [["farewell", 1.0]]]"#,
                "expected a JSON object",
            ),
            (
                r#"{"unknown":0.5,"scores":[["greeting",0.5]]}"#,
                "missing field \"line\"",
            ),
            (
                r#"{"line":null,"unknown":0.5,"scores":[]}"#,
                "missing field \"line\"",
            ),
            (
                r#"{"line":3,"scores":[["farewell",1.0]],"seed":true}"#,
                "missing field \"unknown\"",
            ),
            (
                r#"{"line":3,"unknown":0.0,"seed":true}"#,
                "missing field \"scores\"",
            ),
            (
                r#"{"line":3,"unknown":null,"scores":[]}"#,
                "field \"unknown\"",
            ),
            (
                r#"{"line":3,"unknown":0.0,"scores":[["farewell",1e30]]}"#,
                "field \"scores[0][1]\": 1000000000000000000000000000000 is not a score",
            ),
            (
                r#"{"line":3,"unknown":0.0,"scores":[["farewell",-0.5]]}"#,
                "field \"scores[0][1]\"",
            ),
            (
                r#"{"line":3,"unknown":0.0,"scores":[["farewell",0.7],["greeting",0.6]]}"#,
                "sum to 1.300000",
            ),
            (
                r#"{"line":3,"unknown":0.0,"scores":[[" farewell",1.0]]}"#,
                "field \"scores[0][0]\"",
            ),
            (
                r#"{"line":3,"unknown":0.0,"scores":[["",1.0]]}"#,
                "field \"scores[0][0]\"",
            ),
            (
                r#"{"line":3,"unknown":0.0,"scores":[["a",0.5],["a",0.5]]}"#,
                "field \"scores[1][0]\": the label \"a\" is listed twice",
            ),
            (
                r#"{"line":3,"unknown":1.5,"scores":[]}"#,
                "field \"unknown\": must be in [0, 1]",
            ),
        ] {
            let err = run(line).unwrap_err();
            assert!(
                err.contains("l.jsonl:2") && err.contains(want),
                "{line}: {err}"
            );
        }
        // A byte-order mark before the first line is skipped, as in the other inputs.
        let file = format!("\u{feff}{good}\n");
        let set = TrainSet::distilled(
            &records,
            &mut file.as_bytes(),
            Path::new("l.jsonl"),
            &config,
        );
        assert_eq!(set.unwrap().counts.propagated, 1);
        // Labels that share none with the records labelled here: another corpus's file.
        let other = r#"{"line":2,"unknown":0.0,"scores":[["PlayMusic",1.0]],"seed":false}"#;
        let err = TrainSet::distilled(
            &records,
            &mut other.as_bytes(),
            Path::new("o.jsonl"),
            &config,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("another corpus") && err.contains("PlayMusic"),
            "{err}"
        );
    }

    #[test]
    fn a_seed_file_overrides_and_adds_seeds() {
        let records = vec![
            rec(1, "hello", Some("greeting")),
            rec(2, "hi there", None),
            rec(3, "hello", None),
            rec(4, "thanks", None),
        ];
        // Line 3 shares line 1's node (same row, seed: true): no sign of a missing seed file.
        // Line 4 was a seed of a file; given the file, it trains as one.
        let labels = concat!(
            r#"{"line":1,"label":"greeting","score":1,"unknown":0,"scores":[["greeting",1.0]],"seed":true}"#,
            "\n",
            r#"{"line":2,"label":"greeting","score":0.3,"unknown":0.6,"scores":[["greeting",0.3],["thanks",0.1]],"seed":false}"#,
            "\n",
            r#"{"line":3,"label":"greeting","score":1,"unknown":0,"scores":[["greeting",1.0]],"seed":true}"#,
            "\n",
            r#"{"line":4,"label":"thanks","score":0.9,"unknown":0,"scores":[["thanks",0.9],["greeting",0.1]],"seed":true}"#,
            "\n",
        );
        let config = TrainConfig::default();
        let set = |seeds: &[Vec<(String, f32)>]| {
            let path = Path::new("l.jsonl");
            TrainSet::distilled_with(&records, seeds, &mut labels.as_bytes(), path, &config)
                .unwrap()
        };
        let without = set(&[]);
        assert_eq!(without.counts.seeds_not_given, 1, "line 4 only");
        assert_eq!(without.counts.seeds_relabelled, 0);
        assert_eq!((without.counts.seeds, without.counts.propagated), (1, 3));

        let s = |pairs: &[(&str, f32)]| -> Vec<(String, f32)> {
            pairs.iter().map(|(l, w)| (l.to_string(), *w)).collect()
        };
        let file = [
            s(&[("thanks", 1.0), ("greeting", 3.0)]), // replaces line 1's corpus label
            vec![],
            vec![],
            s(&[("thanks", 0.5)]),
        ];
        let with = set(&file);
        let c = with.counts;
        assert_eq!((c.seeds, c.propagated, c.seeds_not_given), (2, 2, 0));
        assert_eq!(
            c.seeds_relabelled, 0,
            "line 1's top label is among its labels"
        );
        // A file that relabels line 1 as `thanks` alone, which propagation did not see.
        let relabelled = set(&[s(&[("thanks", 1.0)])]);
        assert_eq!(relabelled.counts.seeds_relabelled, 1);
        let e = &with.examples;
        assert!(e[0].seed && e[3].seed && !e[1].seed && !e[2].seed);
        // Weights normalized into the target; their sum is the loss weight.
        assert_eq!(
            (e[0].target.clone(), e[0].weight),
            (vec![(0, 0.75), (1, 0.25)], 4.0)
        );
        assert_eq!((e[3].target.clone(), e[3].weight), (vec![(1, 1.0)], 0.5));
        // The same file without propagated labels.
        let supervised = TrainSet::supervised_with(&records, &file).unwrap();
        assert_eq!(supervised.examples, vec![e[0].clone(), e[3].clone()]);
        // Seeds a program built with weights or labels a seed file could not hold.
        for (bad, why) in [
            (s(&[("thanks", 0.0)]), "has weight 0"),
            (s(&[("thanks", f32::NAN)]), "has weight NaN"),
            (s(&[("thanks", f32::MAX)]), "outside"),
            (s(&[(" ", 1.0)]), "an empty label"),
            (
                s(&[("thanks", 1.0), ("thanks", 2.0)]),
                "\"thanks\" is named twice",
            ),
        ] {
            let e = TrainSet::supervised_with(&records, std::slice::from_ref(&bad)).unwrap_err();
            let e = e.to_string();
            assert!(
                e.contains("invalid seeds: record of line 1") && e.contains(why),
                "{e}"
            );
            let path = Path::new("l.jsonl");
            let distilled =
                TrainSet::distilled_with(&records, &[bad], &mut labels.as_bytes(), path, &config);
            assert!(distilled.unwrap_err().to_string().contains(why));
        }
    }

    #[test]
    fn distilled_names_the_bad_line() {
        let mut records = vec![rec(1, "hello", Some("greeting"))];
        records[0].id = Some(RecordId("\"r1\"".into()));
        let config = TrainConfig::default();
        for (bad, line) in [
            ("{\"line\":1,\"unknown\":0,\"scores\":[[\"a\",-1]]}\n", 1),
            ("\n{\"line\":7,\"unknown\":0,\"scores\":[]}\n", 2),
            ("{\"line\":1,\n", 1),
            // Another corpus's labels: the ids disagree.
            ("{\"line\":1,\"id\":\"r9\",\"unknown\":0,\"scores\":[]}\n", 1),
            (
                "{\"line\":1,\"unknown\":0,\"scores\":[]}\n\n{\"line\":1,\"unknown\":0,\"scores\":[]}\n",
                3,
            ),
            ("\n\n", 2),
        ] {
            let err = TrainSet::distilled(&records, &mut bad.as_bytes(), Path::new("l"), &config)
                .unwrap_err();
            assert!(
                matches!(err, Error::Parse { line: l, .. } if l == line),
                "{bad:?}: {err}"
            );
        }
        let err = TrainSet::distilled(
            &records,
            &mut "{\"line\":1,\"unknown\":0,\"scores\":[[\"a\",\"x\"]]}\n".as_bytes(),
            Path::new("l"),
            &config,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("l:1: field \"scores[0][1]\": unexpected JSON at column"),
            "{err}"
        );
        let err = TrainSet::distilled(&records, &mut &b"\xff\xfe\n"[..], Path::new("l"), &config)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("l:1: invalid UTF-8"), "{err}");
        // A line past the cap, as every line sprig reads: named, not held.
        let long = format!("\n{}\n", "x".repeat(crate::corpus::MAX_LINE_BYTES + 1));
        let err = TrainSet::distilled(&records, &mut long.as_bytes(), Path::new("l"), &config)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("l:2: line longer than 1 MiB"), "{err}");
        assert!(matches!(
            TrainSet::supervised(&[rec(1, "x", None)]),
            Err(Error::NoSeeds)
        ));
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
                let m = try_fit(&set, &config, &mut |s| {
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
        let err = try_fit(&set, &config, &mut |_| {}).unwrap_err();
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
        let err = train(
            &set,
            &TextConfig::default(),
            &FeatureConfig::default(),
            &ProjectionConfig {
                functions: 4096,
                bits: 32,
                scheme: crate::projection::Scheme::Paired,
                ..ProjectionConfig::default()
            },
            &TrainConfig {
                hidden: vec![4096],
                augment: 0,
                ..small()
            },
            &(),
            &mut |_| {},
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
                kind: ModelKind::Table,
                table_k: 100_000,
                ..small()
            },
        );
        let all = fit(
            &set,
            &TrainConfig {
                kind: ModelKind::Table,
                table_k: set.labels.len(),
                ..small()
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
                kind: ModelKind::Table,
                table_min_texts: 1_000_000,
                ..small()
            },
            &mut |_| {},
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
        let model = fit(
            &set,
            &TrainConfig {
                kind: ModelKind::Table,
                ..small()
            },
        );
        let preds = model.predict("see you soon");
        let score = |l: u32| preds.iter().find(|p| p.label == l).map_or(0.0, |p| p.score);
        // The other text's buckets overlap a few of these (shared generic codes), so the
        // averages over T are close to, and not above, the exact shares.
        assert!(score(1) > 0.7 && score(1) <= 0.75 + 1e-6, "{preds:?}");
        assert!(score(0) > 0.23 && score(0) <= 0.25 + 1e-6, "{preds:?}");
        assert!((score(1) / score(0) - 3.0).abs() < 1e-4, "{preds:?}");
    }

    #[test]
    fn table_model_predicts_its_seeds() {
        let set = TrainSet::supervised(&toy_records()).unwrap();
        let config = TrainConfig {
            kind: ModelKind::Table,
            ..small()
        };
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
                let err = try_fit(&set, &config, &mut |_| {}).unwrap_err();
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
}
