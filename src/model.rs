//! The on-device model: text path + projection + a small network (or a bucket table), saved
//! as a `.sprig` file, and its prediction API.
//!
//! This is the inference half of the pipeline. It depends only on `text`, `hash`,
//! `projection`, `network`, `table`, `format` and the label-name checks of `corpus`, never on
//! training code, so it can be lifted into its own small crate.
//!
//! **File** (the container of [`crate::format`], magic [`MODEL_MAGIC`], its own version
//! counter starting at 1). The JSON header ([`ModelHeader`]) records everything needed to
//! turn a text into the same numbers as at training time: the text, feature and projection
//! configs, the hash name, the label names (in id order), the layer shapes, plus the crate
//! version and the training report. Sections:
//! - network models: `layer{l}.weight` (`i4`, `i8` or `f32`, shape `[out, in]`, row-major),
//!   `layer{l}.scale` (`f32`, `[out]`, only for `i4` and `i8`), `layer{l}.bias` (`f32`,
//!   `[out]`);
//! - table models: `table.keys` (`u64`, sorted, `t·2^d + code`), `table.labels`
//!   (`u32`, `[keys, k]`), `table.weights` (`f32`, `[keys, k]`).
//!
//! No projection matrix is stored: it is regenerated from the seed and sizes.
//!
//! **Versions.** Version 2 added `i4` weight sections and the header's `layer_weights` (one
//! dtype per layer); in version 1 every layer has the dtype of `weights`. Both are read, and
//! a model is written as version 1 whenever that says everything (int8 or `f32` networks,
//! tables), so that builds that know only version 1 keep reading those; they refuse
//! version 2 files by their version number rather than misread a 4-bit section.
//!
//! **Loading** runs the container checks (magic, version, header, bounds, CRC), then checks
//! every shape against the header and every value for finiteness; a damaged file is refused.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::format::{write_bytes_atomic, Artifact, ArtifactWriter, Dtype, Expect};
use crate::network::{Layer, NetScratch, Network, PackedLayer, Weights};
use crate::projection::{ProjectScratch, ProjectionConfig, Projector};
use crate::table::{Table, TableScratch};
use crate::text::{FeatureConfig, TextConfig};

/// Magic bytes of model files.
pub const MODEL_MAGIC: &[u8; 8] = b"SPRIGMDL";
/// The newest model format version this build writes: models with a 4-bit layer (the
/// default) or layers of mixed dtypes. Others are written as version 1, which builds that
/// predate version 2 still read.
pub const MODEL_FORMAT_VERSION: u32 = 2;
/// The oldest model format version this build reads.
pub const MODEL_OLDEST_VERSION: u32 = 1;

const EXPECT: Expect = Expect {
    kind: "model",
    magic: MODEL_MAGIC,
    oldest: MODEL_OLDEST_VERSION,
    newest: MODEL_FORMAT_VERSION,
};

/// Which predictor sits on top of the projection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// A dense ReLU network and a softmax (ProjectionNet / SGNN).
    #[default]
    Network,
    /// A bucket → top-k labels table (the on-device Smart Reply design).
    Table,
}

impl std::fmt::Display for ModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ModelKind::Network => "network",
            ModelKind::Table => "table",
        })
    }
}

/// The JSON header of a model file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelHeader {
    /// Always `model`.
    pub kind: String,
    /// The format version.
    pub format_version: u32,
    /// The sprig version that wrote it.
    pub crate_version: String,
    /// Network or table.
    pub model_kind: ModelKind,
    /// Feature hash name and seed.
    pub hash: String,
    /// Text normalization.
    pub text: TextConfig,
    /// Feature families.
    pub features: FeatureConfig,
    /// Projection sizes and seed.
    pub projection: ProjectionConfig,
    /// Label names in id order.
    pub labels: Vec<String>,
    /// Layer sizes (input, hidden…, output), network models only.
    #[serde(default)]
    pub layers: Vec<usize>,
    /// The dtype of every layer's weights when they share one (`i8` or `f32`), network
    /// models only; `None` when they differ (see `layer_weights`).
    #[serde(default)]
    pub weights: Option<Dtype>,
    /// Each layer's weight dtype (`i4`, `i8` or `f32`), network models of format version 2
    /// on; empty in version 1, where `weights` holds for all layers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layer_weights: Vec<Dtype>,
    /// Labels kept per bucket, table models only.
    #[serde(default)]
    pub table_k: usize,
    /// Training configuration and report (free-form, for `inspect`).
    #[serde(default)]
    pub train: serde_json::Value,
}

/// The predictor on top of the projection.
#[derive(Debug, Clone, PartialEq)]
pub enum Predictor {
    /// Dense network.
    Network(Network),
    /// Bucket table.
    Table(Table),
}

/// One scored label. (With serde: `{"label": id, "score": s}`; the name is
/// [`ProjectionModel::label_name`]'s.)
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// Label id: an index into [`ProjectionModel::labels`].
    pub label: u32,
    /// In `[0, 1]`. A network's is a softmax probability, calibrated by training on its
    /// held-out slice (unless trained with `--calibration none`): about how often the model
    /// agrees with the labels it was trained on, which were propagated ones in the few-label
    /// setting. A table's is its label's share of the buckets' votes, not a probability, and
    /// runs lower (a right answer may score 0.35). See [`ProjectionModel::predict_top_with`]
    /// for thresholds.
    pub score: f32,
}

/// Reusable buffers for [`ProjectionModel::predict_with`] and
/// [`ProjectionModel::predict_top_with`], which leave their answer in it: create one per
/// thread (`Scratch::default()`) and keep it across calls, so that predictions stop
/// allocating once it has grown (see [`ProjectionModel::predict_with`] for which text
/// never allocates). It grows to the longest text it has seen and keeps that memory: about
/// 16 KB after short texts, about 67 bytes per byte of the longest text (6.7 MB after a
/// 100 KB one). Replace it with a new one to give that back.
#[derive(Debug, Clone, Default)]
pub struct Scratch {
    project: ProjectScratch,
    input: Vec<i8>,
    net: NetScratch,
    table: TableScratch,
    out: Vec<Prediction>,
}

/// A trained projection model. (`Debug` prints a summary, not the weights.)
///
/// In an app: load it once ([`ProjectionModel::from_slice`] for a model built into the
/// program with `include_bytes!`, [`ProjectionModel::load`] for a file), then ask
/// [`ProjectionModel::predict_top_with`] with `k = 1` for the best answer. A model is
/// immutable once loaded, `Send` and `Sync`: share it between threads by reference or in an
/// `Arc`, with one [`Scratch`] per thread; every thread gets the same answers, bit for bit.
///
/// Memory: a loaded network model holds about a third of a megabyte of heap (335 KB for the
/// default 1,120 × 128 × 14 model of about 80 KB on disk: its first layer expanded into
/// 287 KB of pair columns, the only copy of its weights, and 49 KB for the rest: the later
/// layer, the header, labels and report); loading takes about 1 ms and peaks at about
/// 500 KB (the file's bytes and the columns, which are built from the packed 4-bit section
/// without unpacking the layer whole). A table model keeps about its file's size.
#[derive(Clone)]
pub struct ProjectionModel {
    projector: Projector,
    labels: Vec<String>,
    predictor: Predictor,
    train: serde_json::Value,
}

impl std::fmt::Debug for ProjectionModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectionModel")
            .field("kind", &self.kind())
            .field("projection", self.projector.config())
            .field("labels", &self.labels.len())
            .field("parameter_bytes", &self.parameter_bytes())
            .finish_non_exhaustive()
    }
}

impl ProjectionModel {
    /// Assembles a model and checks that its parts agree.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a bad config; [`Error::Corrupt`] (path `<memory>`) if the
    /// predictor's shapes do not match the projection or the labels.
    pub fn new(
        text: &TextConfig,
        features: &FeatureConfig,
        projection: &ProjectionConfig,
        labels: Vec<String>,
        predictor: Predictor,
        train: serde_json::Value,
    ) -> Result<Self> {
        let projector = Projector::new(text, features, projection)?;
        let model = Self {
            projector,
            labels,
            predictor,
            train,
        };
        let path = Path::new("<memory>");
        // A network read from a file was checked layer by layer as it was read; one
        // assembled in memory (`Network::from_mlp` of diverged weights) is checked here, or
        // it could be saved but not loaded back.
        if let Predictor::Network(net) = &model.predictor {
            if let Some((l, why)) = net
                .layers()
                .iter()
                .enumerate()
                .find_map(|(l, layer)| layer.validate().err().map(|why| (l, why)))
            {
                return Err(Error::Corrupt {
                    path: path.to_owned(),
                    what: "model".into(),
                    message: format!("layer {l}: {why}"),
                });
            }
        }
        model.check(path)?;
        Ok(model)
    }

    fn check(&self, path: &Path) -> Result<()> {
        let corrupt = |message: String| Error::Corrupt {
            path: path.to_owned(),
            what: "model".into(),
            message,
        };
        if self.labels.is_empty() {
            return Err(corrupt("no label".into()));
        }
        // The names training accepts, by the same rule: a control character (a TAB, a
        // newline) would break `predict`'s one answer per line, and an empty or blank name
        // would print as a line starting with its score.
        if let Some(why) = self
            .labels
            .iter()
            .find_map(|l| crate::corpus::label_name_problem(l))
        {
            return Err(corrupt(why));
        }
        if let Some(l) = crate::corpus::repeated_label(&self.labels) {
            return Err(corrupt(format!("label {l:?} is listed twice")));
        }
        match &self.predictor {
            Predictor::Network(net) => {
                if net.n_in() != self.projector.dim() {
                    return Err(corrupt(format!(
                        "the network takes {} inputs but the projection gives {}",
                        net.n_in(),
                        self.projector.dim()
                    )));
                }
                if net.n_out() != self.labels.len() {
                    return Err(corrupt(format!(
                        "the network has {} outputs for {} labels",
                        net.n_out(),
                        self.labels.len()
                    )));
                }
            }
            Predictor::Table(table) => table
                .validate(self.labels.len(), self.projector.config())
                .map_err(corrupt)?,
        }
        Ok(())
    }

    /// Label names in id order.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The name of label `id`.
    ///
    /// # Panics
    /// If `id` is not a label id of this model.
    pub fn label_name(&self, id: u32) -> &str {
        &self.labels[id as usize]
    }

    /// The projector (text path + projection).
    pub fn projector(&self) -> &Projector {
        &self.projector
    }

    /// The predictor.
    pub fn predictor(&self) -> &Predictor {
        &self.predictor
    }

    /// The training configuration and report stored with the model.
    pub fn train_report(&self) -> &serde_json::Value {
        &self.train
    }

    /// Network or table.
    pub fn kind(&self) -> ModelKind {
        match self.predictor {
            Predictor::Network(_) => ModelKind::Network,
            Predictor::Table(_) => ModelKind::Table,
        }
    }

    /// Bytes of the learned parameters (weights, scales, biases, or table entries).
    pub fn parameter_bytes(&self) -> usize {
        match &self.predictor {
            Predictor::Network(n) => n.size_bytes(),
            Predictor::Table(t) => t.size_bytes(),
        }
    }

    /// The labels with their scores, best first (ties by label id): every label for a
    /// network model (softmax probabilities, summing to 1); for a table model, the labels
    /// its T buckets vote for, scored by their share of the votes (summing to at most 1:
    /// buckets never seen in training vote for nothing).
    ///
    /// Allocation-free once `scratch` has grown (after a first call on a text as long), for
    /// text made of ASCII (control characters and NUL included), the Latin-1 letters (`é`,
    /// `ñ`; when the model does not strip accents), typographic quotes and dashes (`’`, `“`,
    /// `—`), `×`, `÷`, the miscellaneous symbols and dingbats (U+2600–2775, U+2794–27BF), the
    /// emoji of U+1F300–1F3FA, U+1F400–1F6D7 and U+1F900–1FA53, and (when the model folds
    /// variants) variation selectors and skin tones. A text with any other character (other
    /// scripts, Latin letters beyond Latin-1 such as `ł`, combining marks, `…`, a no-break
    /// space, flags, emoji joined by a zero-width joiner such as `👨‍💻`) goes through the
    /// `tokenizers` crate, which allocates: on a short text some 40–150 allocations and
    /// 2–18 KB (peaking at 1–3 KB), and about twice the time; on a long one up to about 5
    /// allocations and 1.1 KB per byte, peaking at up to about 150 bytes per byte of text
    /// (100 KB of Chinese: 500,000 allocations, a 15 MB peak, 42 ms).
    ///
    /// An empty slice means the model abstains: always for a text without a single feature
    /// (empty, or blank after normalization), whose all-zero projection is no evidence at
    /// all; for a table model, when none of its buckets holds a label; and for a network
    /// whose (crafted, extreme) weights overflow to a non-finite probability.
    pub fn predict_with<'s>(&self, scratch: &'s mut Scratch, text: &str) -> &'s [Prediction] {
        self.predict_top_with(scratch, text, usize::MAX)
    }

    /// The `k` best labels of [`ProjectionModel::predict_with`], best first: the same
    /// predictions, without sorting the others (a single answer costs one pass over the
    /// labels instead of a sort of them all, which a model of many labels notices). It
    /// allocates as `predict_with` does.
    ///
    /// The best answer, or none: `predict_top_with(&mut scratch, text, 1).first()`, `None`
    /// when the model abstains. To also turn away text the model does not know, keep an
    /// answer only if its score reaches a threshold: a calibrated network scored text unlike
    /// any in training (`zzzzqqqq`, `lol` on an intent model) 0.21–0.36, so 0.5 turns it
    /// away; `sprig eval --model M --data TEST` prints the share answered and its accuracy at
    /// 0.5, 0.7 and 0.9 (`--thresholds` for others). A table model's vote shares run lower,
    /// so it needs a threshold of its own, read off the same table.
    ///
    /// ```no_run
    /// use sprig::model::{ProjectionModel, Scratch};
    ///
    /// // let model = ProjectionModel::from_slice(include_bytes!("model.sprig"))?;
    /// let model = ProjectionModel::load("model.sprig")?;
    /// let mut scratch = Scratch::default(); // one per thread, kept across calls
    /// let answer = model
    ///     .predict_top_with(&mut scratch, "thx so much!!", 1)
    ///     .first()
    ///     .filter(|p| p.score >= 0.5)
    ///     .map(|p| model.label_name(p.label));
    /// # Ok::<(), sprig::Error>(())
    /// ```
    pub fn predict_top_with<'s>(
        &self,
        scratch: &'s mut Scratch,
        text: &str,
        k: usize,
    ) -> &'s [Prediction] {
        self.score_all(scratch, text);
        let by_rank = |a: &Prediction, b: &Prediction| {
            b.score.total_cmp(&a.score).then(a.label.cmp(&b.label))
        };
        let out = &mut scratch.out;
        if k == 0 {
            out.clear();
        } else if k < out.len() {
            out.select_nth_unstable_by(k - 1, by_rank);
            out.truncate(k);
        }
        out.sort_unstable_by(by_rank);
        &scratch.out
    }

    /// Every label's prediction into `scratch.out`, unsorted (empty: the model abstains).
    fn score_all(&self, scratch: &mut Scratch, text: &str) {
        let dim = self.projector.dim();
        scratch.input.resize(dim, 0);
        let features = self
            .projector
            .project_with(&mut scratch.project, text, &mut scratch.input);
        scratch.out.clear();
        if features == 0 {
            return;
        }
        match &self.predictor {
            Predictor::Network(net) => {
                net.forward(&scratch.input, &mut scratch.net);
                let probs = &scratch.net.probs;
                // Weights are checked finite at load, but extreme (finite) ones can still
                // overflow the sums: such an answer is no answer, so the model abstains.
                if !probs.iter().all(|p| p.is_finite()) {
                    return;
                }
                scratch
                    .out
                    .extend(probs.iter().enumerate().map(|(i, &p)| Prediction {
                        label: i as u32,
                        score: p,
                    }));
            }
            Predictor::Table(table) => {
                table.lookup(
                    &self.projector,
                    &scratch.input,
                    &mut scratch.table,
                    &mut scratch.out,
                );
            }
        }
    }

    /// The labels with their scores, best first, as [`ProjectionModel::predict_with`], in a
    /// new vector. Each call allocates a fresh [`Scratch`]: about twice the time of
    /// [`ProjectionModel::predict_top_with`] on a short text (7.0 against 3.7 µs measured),
    /// which an app predicting more than once should call instead.
    pub fn predict(&self, text: &str) -> Vec<Prediction> {
        self.predict_with(&mut Scratch::default(), text).to_vec()
    }

    /// The header this model is saved with.
    pub fn header(&self) -> ModelHeader {
        let (layers, weights, layer_weights, table_k) = match &self.predictor {
            Predictor::Network(net) => {
                let stored = net.layers();
                let mut sizes = vec![net.n_in()];
                sizes.extend(stored.iter().map(|l| l.n_out));
                let dtypes: Vec<Dtype> = stored
                    .iter()
                    .map(|l| match l.weights {
                        Weights::F32(_) => Dtype::F32,
                        Weights::I8 { .. } => Dtype::I8,
                        Weights::I4 { .. } => Dtype::I4,
                    })
                    .collect();
                let shared = Some(dtypes[0]).filter(|d| dtypes.iter().all(|x| x == d));
                (sizes, shared, dtypes, 0)
            }
            Predictor::Table(t) => (Vec::new(), None, Vec::new(), t.k()),
        };
        // Version 1 says everything when the layers share a dtype it knows (or for a table).
        let v1 = match weights {
            Some(d) => d != Dtype::I4,
            None => layers.is_empty(),
        };
        let (format_version, layer_weights) = if v1 {
            (1, Vec::new())
        } else {
            (MODEL_FORMAT_VERSION, layer_weights)
        };
        let p = self.projector.pipeline();
        ModelHeader {
            kind: "model".into(),
            format_version,
            crate_version: env!("CARGO_PKG_VERSION").into(),
            model_kind: self.kind(),
            hash: crate::hash::header_name(),
            text: p.text_config().clone(),
            features: p.feature_config().clone(),
            projection: self.projector.config().clone(),
            labels: self.labels.clone(),
            layers,
            weights,
            layer_weights,
            table_k,
            train: self.train.clone(),
        }
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        // The writer borrows the `f32` sections: the layers, rebuilt from the network's
        // plans, must outlive it.
        let layers = match &self.predictor {
            Predictor::Network(net) => net.layers(),
            Predictor::Table(_) => Vec::new(),
        };
        let mut w = ArtifactWriter::new();
        match &self.predictor {
            Predictor::Network(_) => {
                for (l, layer) in layers.iter().enumerate() {
                    let shape = [layer.n_out as u64, layer.n_in as u64];
                    match &layer.weights {
                        Weights::F32(v) => w.add_f32(&format!("layer{l}.weight"), &shape, v),
                        Weights::I8 { q, scale } => {
                            w.add_i8(&format!("layer{l}.weight"), &shape, q);
                            w.add_f32(&format!("layer{l}.scale"), &shape[..1], scale);
                        }
                        Weights::I4 { q, scale } => {
                            w.add_i4(&format!("layer{l}.weight"), &shape, q);
                            w.add_f32(&format!("layer{l}.scale"), &shape[..1], scale);
                        }
                    }
                    w.add_f32(&format!("layer{l}.bias"), &shape[..1], &layer.bias);
                }
            }
            Predictor::Table(t) => t.write_sections(&mut w),
        }
        let header = self.header();
        let version = header.format_version;
        w.finish(MODEL_MAGIC, version, crate::format::header_value(&header))
    }

    /// Writes the model atomically.
    ///
    /// # Errors
    /// [`Error::Io`] naming `path`.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        write_bytes_atomic(path.as_ref(), &self.to_bytes())
    }

    /// Reads and verifies a model file.
    ///
    /// # Errors
    /// [`Error::Io`], the container errors of [`crate::format`], [`Error::BadHeader`] for a
    /// header that does not describe a model, [`Error::Corrupt`] for inconsistent contents.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        Ok(Self::from_artifact(&Artifact::read(path.as_ref(), EXPECT)?)?.0)
    }

    /// Reads and verifies a model file, and returns it with the header as the file holds it
    /// (its format version and the sprig version that wrote it, which
    /// [`ProjectionModel::header`], the header this build would write, does not keep).
    ///
    /// # Errors
    /// As [`ProjectionModel::load`].
    pub fn load_with_header(path: impl AsRef<Path>) -> Result<(Self, ModelHeader)> {
        Self::from_artifact(&Artifact::read(path.as_ref(), EXPECT)?)
    }

    /// Parses a model from bytes (`path` is used in messages only).
    ///
    /// # Errors
    /// As [`ProjectionModel::load`].
    pub fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<Self> {
        Ok(Self::from_artifact(&Artifact::parse(path, bytes, EXPECT)?)?.0)
    }

    /// Parses a model held in memory, such as one built into the program with
    /// `include_bytes!("model.sprig")`; errors name it `<memory>`. The bytes are copied
    /// while they are checked and decoded (a model is tens of kilobytes), and not kept.
    ///
    /// # Errors
    /// As [`ProjectionModel::load`].
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        Self::from_bytes(Path::new("<memory>"), bytes.to_vec())
    }

    /// Whether `bytes` start with the model magic (for `inspect`).
    pub fn is_model_file(bytes: &[u8]) -> bool {
        bytes.len() >= 8 && &bytes[..8] == MODEL_MAGIC
    }

    fn from_artifact(a: &Artifact) -> Result<(Self, ModelHeader)> {
        let path = a.path();
        let h: ModelHeader = a.header_as()?;
        let file_header = h.clone();
        let corrupt = |message: String| Error::Corrupt {
            path: path.to_owned(),
            what: "model".into(),
            message,
        };
        if h.kind != "model" {
            return Err(Error::BadHeader {
                path: path.to_owned(),
                message: format!("kind is {:?}, expected \"model\"", h.kind),
            });
        }
        // The header's own copy of the version and the hash that turns n-grams into
        // features: a model made with another hash would load and predict garbage.
        if h.format_version != a.version {
            return Err(corrupt(format!(
                "the header says format version {}, the file's preamble {}",
                h.format_version, a.version
            )));
        }
        if h.hash != crate::hash::header_name() {
            return Err(Error::BadHeader {
                path: path.to_owned(),
                message: format!(
                    "features hashed with {:?}; this build hashes with {:?}",
                    h.hash,
                    crate::hash::header_name()
                ),
            });
        }
        let predictor = match h.model_kind {
            ModelKind::Network => {
                if h.layers.len() < 2 {
                    return Err(corrupt(format!("layer sizes {:?}", h.layers)));
                }
                // Version 1 has one dtype for all layers; version 2 lists them, and its
                // `weights` (when present) must agree.
                let dtypes = if h.layer_weights.is_empty() {
                    vec![h.weights; h.layers.len() - 1]
                } else {
                    let agree = h
                        .weights
                        .is_none_or(|w| h.layer_weights.iter().all(|&d| d == w));
                    if h.layer_weights.len() != h.layers.len() - 1 || !agree {
                        return Err(corrupt(format!(
                            "layer weights {:?} do not fit layers {:?} and weights {:?}",
                            h.layer_weights, h.layers, h.weights
                        )));
                    }
                    h.layer_weights.iter().map(|&d| Some(d)).collect()
                };
                let mut layers = Vec::with_capacity(h.layers.len() - 1);
                // A 4-bit first layer (the default) is planned from the file's bytes: unpacked
                // first, one weight to a byte, it would raise loading's peak by 143 KB.
                let mut packed_first = None;
                for (l, &dtype) in dtypes.iter().enumerate() {
                    let (n_in, n_out) = (h.layers[l], h.layers[l + 1]);
                    // Lengths alone would let `[in, out]` pass for `[out, in]`.
                    for (name, shape) in [
                        (format!("layer{l}.weight"), vec![n_out as u64, n_in as u64]),
                        (format!("layer{l}.bias"), vec![n_out as u64]),
                        (format!("layer{l}.scale"), vec![n_out as u64]),
                    ] {
                        let entry = a.sections().iter().find(|e| e.name == name);
                        if let Some(e) = entry.filter(|e| e.shape != shape) {
                            return Err(corrupt(format!(
                                "section {name:?} has shape {:?}, expected {shape:?}",
                                e.shape
                            )));
                        }
                    }
                    if l == 0 && dtype == Some(Dtype::I4) && a.version >= 2 {
                        packed_first = Some(PackedLayer {
                            n_in,
                            n_out,
                            q: a.nibbles("layer0.weight")?,
                            scale: a.f32s("layer0.scale")?,
                            bias: a.f32s("layer0.bias")?,
                        });
                        continue;
                    }
                    let weights = match dtype {
                        Some(Dtype::I8) => Weights::I8 {
                            q: a.i8s(&format!("layer{l}.weight"))?,
                            scale: a.f32s(&format!("layer{l}.scale"))?,
                        },
                        Some(Dtype::I4) if a.version >= 2 => Weights::I4 {
                            q: a.i4s(&format!("layer{l}.weight"))?,
                            scale: a.f32s(&format!("layer{l}.scale"))?,
                        },
                        Some(Dtype::F32) => Weights::F32(a.f32s(&format!("layer{l}.weight"))?),
                        other => return Err(corrupt(format!("weights dtype {other:?}"))),
                    };
                    layers.push(Layer {
                        n_in,
                        n_out,
                        weights,
                        bias: a.f32s(&format!("layer{l}.bias"))?,
                    });
                }
                let net = match packed_first {
                    Some(first) => Network::with_packed_first(first, layers),
                    None => Network::from_layers(layers),
                };
                Predictor::Network(net.map_err(corrupt)?)
            }
            ModelKind::Table => Predictor::Table(Table::read_sections(a, h.table_k)?),
        };
        let projector =
            Projector::new(&h.text, &h.features, &h.projection).map_err(|e| Error::BadHeader {
                path: path.to_owned(),
                message: e.to_string(),
            })?;
        let model = Self {
            projector,
            labels: h.labels,
            predictor,
            train: h.train,
        };
        model.check(path)?;
        Ok((model, file_header))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::reseal;
    use crate::network::{Mlp, Quantization};
    use rand::rngs::Xoshiro256PlusPlus;
    use rand::{Rng, SeedableRng};

    fn model(quantize: Quantization) -> ProjectionModel {
        model_of(&[32, 6, 3], quantize)
    }

    /// A model whose network has layer sizes `sizes` (32 inputs: 8 functions of 4 bits).
    fn model_of(sizes: &[usize], quantize: Quantization) -> ProjectionModel {
        let projection = ProjectionConfig {
            functions: 8,
            bits: 4,
            ..ProjectionConfig::default()
        };
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
        let mlp = Mlp::new(sizes, || rng.next_u64()).unwrap();
        ProjectionModel::new(
            &TextConfig::default(),
            &FeatureConfig::default(),
            &projection,
            vec!["a".into(), "b".into(), "c".into()],
            Predictor::Network(Network::from_mlp(&mlp, quantize)),
            serde_json::json!({"note": "test"}),
        )
        .unwrap()
    }

    #[test]
    fn debug_prints_a_summary_not_the_weights() {
        let m = model(Quantization::Int8);
        let text = format!("{m:?}");
        assert!(
            text.starts_with("ProjectionModel { kind: Network, projection: ProjectionConfig {")
                && text.contains(&format!(
                    "labels: 3, parameter_bytes: {}",
                    m.parameter_bytes()
                ))
                && text.len() < 400,
            "{text}"
        );
    }

    #[test]
    fn a_network_of_diverged_weights_is_refused_before_it_is_saved() {
        let projection = ProjectionConfig {
            functions: 8,
            bits: 4,
            ..ProjectionConfig::default()
        };
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
        let good = Mlp::new(&[32, 6, 3], || rng.next_u64()).unwrap();
        // A weight (its row's scale carries a NaN when quantized) and a bias (f32 in every
        // form), of the first layer.
        let mut weight = good.clone();
        weight.params_mut()[0] = f32::NAN;
        let mut bias = good;
        bias.params_mut()[32 * 6] = f32::INFINITY;
        for (mlp, quantize, why) in [
            (&weight, Quantization::None, "weights"),
            (&weight, Quantization::Int8, "weights"),
            (&weight, Quantization::Int4, "weights"),
            (&bias, Quantization::Int8, "bias"),
            (&bias, Quantization::Int4, "bias"),
        ] {
            let e = ProjectionModel::new(
                &TextConfig::default(),
                &FeatureConfig::default(),
                &projection,
                vec!["a".into(), "b".into(), "c".into()],
                Predictor::Network(Network::from_mlp(mlp, quantize)),
                serde_json::Value::Null,
            )
            .unwrap_err()
            .to_string();
            let want = format!("corrupt model: layer 0: {why}");
            assert!(e.contains(&want), "{quantize:?}: {e}");
        }
    }

    fn parse(bytes: Vec<u8>) -> Result<ProjectionModel> {
        ProjectionModel::from_bytes(Path::new("m.sprig"), bytes)
    }

    #[test]
    fn round_trips_with_identical_predictions() {
        for quantize in [Quantization::Int4, Quantization::Int8, Quantization::None] {
            let m = model(quantize);
            let back = parse(m.to_bytes()).unwrap();
            assert_eq!(back.predictor(), m.predictor());
            assert_eq!(back.labels(), m.labels());
            assert_eq!(back.train_report(), m.train_report());
            for text in ["hello there", "", "🎉 congrats!!"] {
                assert_eq!(back.predict(text), m.predict(text));
            }
            assert_eq!(back.to_bytes(), m.to_bytes());
            // From a borrowed slice (a model built into the program) alike; a damaged one is
            // refused under the name `<memory>`.
            let bytes = m.to_bytes();
            let borrowed = ProjectionModel::from_slice(&bytes).unwrap();
            assert_eq!(borrowed.to_bytes(), bytes);
            assert_eq!(borrowed.predict("hello there"), m.predict("hello there"));
            let e = ProjectionModel::from_slice(&bytes[..bytes.len() - 1]).unwrap_err();
            assert!(e.to_string().starts_with("<memory>"), "{e}");
        }
    }

    #[test]
    fn a_frozen_model_saves_the_same_projection_header() {
        // Written before the projection scheme existed: saved again, its header must not
        // gain the field, so that the builds of its day can still read what this one writes.
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1/tiny.sprig");
        let bytes = std::fs::read(&path).unwrap();
        let model = ProjectionModel::from_bytes(&path, bytes.clone()).unwrap();
        assert_eq!(
            model.projector().config().scheme,
            crate::projection::Scheme::PerFunction
        );
        let projection = |bytes: Vec<u8>| {
            let a = Artifact::parse(&path, bytes, EXPECT).unwrap();
            a.header_as::<serde_json::Value>().unwrap()["projection"].clone()
        };
        assert_eq!(projection(model.to_bytes()), projection(bytes));
    }

    #[test]
    fn predictions_are_sorted_probabilities() {
        let m = model(Quantization::Int4);
        let p = m.predict("where are you");
        assert_eq!(p.len(), 3);
        assert!(p.windows(2).all(|w| w[0].score >= w[1].score));
        let sum: f32 = p.iter().map(|x| x.score).sum();
        assert!((sum - 1.0).abs() < 1e-5);
        let mut s = Scratch::default();
        assert_eq!(m.predict_with(&mut s, "where are you"), &p[..]);
        // The k best are the first k of the full ranking, for every k.
        for text in ["where are you", "", "ok", "🎉 congrats!!"] {
            let all = m.predict(text);
            for k in 0..=all.len() + 1 {
                let top = m.predict_top_with(&mut s, text, k).to_vec();
                assert_eq!(top, all[..k.min(all.len())], "{text:?} k {k}");
            }
        }
    }

    #[test]
    fn damaged_files_are_refused() {
        let good = model(Quantization::Int4).to_bytes();
        let mut flipped = good.clone();
        let n = flipped.len();
        flipped[n - 20] ^= 1;
        assert!(matches!(
            parse(flipped),
            Err(Error::ChecksumMismatch { .. })
        ));
        assert!(matches!(
            parse(good[..good.len() - 30].to_vec()),
            Err(Error::Truncated { .. })
        ));
        let mut magic = good.clone();
        magic[..8].copy_from_slice(b"SPRIGGRF");
        assert!(matches!(parse(magic), Err(Error::BadMagic { .. })));
        let mut future = good.clone();
        future[8..12].copy_from_slice(&3u32.to_le_bytes());
        assert!(matches!(
            parse(future),
            Err(Error::UnsupportedVersion { found: 3, .. })
        ));
    }

    #[test]
    fn inconsistent_shapes_are_refused() {
        let m = model(Quantization::None);
        // A header whose projection no longer matches the network's input size.
        let text = String::from_utf8_lossy(&m.to_bytes()).into_owned();
        let patched = text
            .replacen("\"functions\":8", "\"functions\":9", 1)
            .into_bytes();
        // Re-seal the CRC so that the shape check, not the checksum, must catch it.
        let mut bytes = patched;
        reseal(&mut bytes);
        assert!(matches!(parse(bytes), Err(Error::Corrupt { .. })));

        // A label listed twice: patched in place (same length), the CRC re-sealed.
        let mut bytes = m.to_bytes();
        let from: &[u8] = b"[\"a\",\"b\",\"c\"]";
        let at = bytes
            .windows(from.len())
            .position(|w| w == from)
            .expect("the header lists the labels");
        bytes[at + from.len() - 3] = b'a';
        reseal(&mut bytes);
        let err = parse(bytes).unwrap_err().to_string();
        assert!(err.contains("listed twice"), "{err}");

        // A label with a TAB, which training refuses: it would break predict's lines.
        let mut bytes = m.to_bytes();
        let to: &[u8] = br#"["a","b\tcc"]"#;
        assert_eq!(to.len(), from.len());
        bytes[at..at + to.len()].copy_from_slice(to);
        reseal(&mut bytes);
        let err = parse(bytes).unwrap_err().to_string();
        assert!(err.contains("control character"), "{err}");

        // An empty label name, which predict would print as a line starting with a TAB.
        let mut bytes = m.to_bytes();
        let to: &[u8] = br#"["","ab","c"]"#;
        assert_eq!(to.len(), from.len());
        bytes[at..at + to.len()].copy_from_slice(to);
        reseal(&mut bytes);
        let err = parse(bytes).unwrap_err().to_string();
        assert!(err.contains(r#"label "" is empty"#), "{err}");
        // A blank one likewise: training trims and refuses it.
        let mut bytes = m.to_bytes();
        let to: &[u8] = br#"[" ","b","c"]"#;
        assert_eq!(to.len(), from.len());
        bytes[at..at + to.len()].copy_from_slice(to);
        reseal(&mut bytes);
        let err = parse(bytes).unwrap_err().to_string();
        assert!(err.contains(r#"label " " is empty"#), "{err}");

        // Scales in another shape than one per output (a crafted file: [out] → [out/2, 2],
        // the same count): rebuilt section by section with the one shape changed.
        let a = Artifact::parse(
            Path::new("m.sprig"),
            model(Quantization::Int8).to_bytes(),
            EXPECT,
        )
        .unwrap();
        let mut f32s = Vec::new();
        let mut i8s = Vec::new();
        for e in a.sections() {
            match e.dtype {
                Dtype::F32 => f32s.push(a.f32s(&e.name).unwrap()),
                Dtype::I8 => i8s.push(a.i8s(&e.name).unwrap()),
                other => panic!("an int8 model has no {other:?} section"),
            }
        }
        let mut w = ArtifactWriter::new();
        let (mut f, mut i) = (0, 0);
        let mut reshaped = None;
        for e in a.sections() {
            let mut shape = e.shape.clone();
            if e.name == "layer0.scale" {
                assert!(shape[0] % 2 == 0);
                shape = vec![shape[0] / 2, 2];
                reshaped = Some(shape.clone());
            }
            if e.dtype == Dtype::F32 {
                w.add_f32(&e.name, &shape, &f32s[f]);
                f += 1;
            } else {
                w.add_i8(&e.name, &shape, &i8s[i]);
                i += 1;
            }
        }
        let err = parse(w.finish(MODEL_MAGIC, a.version, a.header.clone()))
            .unwrap_err()
            .to_string();
        let want = format!("\"layer0.scale\" has shape {:?}", reshaped.unwrap());
        assert!(err.contains(&want), "{err}");
    }

    #[test]
    fn an_overflowing_network_abstains_instead_of_ranking_zeros() {
        // A finite but extreme scale (CRC re-sealed) makes every logit overflow.
        let mut bytes = model(Quantization::Int4).to_bytes();
        let a = Artifact::parse(Path::new("m.sprig"), bytes.clone(), EXPECT).unwrap();
        let scale: Vec<u8> = a
            .f32s("layer0.scale")
            .unwrap()
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let at = bytes
            .windows(scale.len())
            .position(|w| w == scale.as_slice())
            .unwrap();
        for i in 0..scale.len() / 4 {
            bytes[at + 4 * i..at + 4 * i + 4].copy_from_slice(&3e38f32.to_le_bytes());
        }
        reseal(&mut bytes);
        let m = parse(bytes).unwrap();
        let text = "hello there, how are you";
        assert!(m.predict(text).is_empty());
        assert_eq!(model(Quantization::Int4).predict(text).len(), 3);
    }

    /// The load error of a test model whose bytes `from` (same length as `to`) are replaced
    /// by `to`, with the CRC re-sealed: only the loader's own checks can catch the edit.
    fn patched_error(quantize: Quantization, from: &str, to: &str) -> String {
        let mut bytes = model(quantize).to_bytes();
        let at = bytes
            .windows(from.len())
            .position(|w| w == from.as_bytes())
            .unwrap_or_else(|| panic!("{from} in the header"));
        bytes[at..at + to.len()].copy_from_slice(to.as_bytes());
        reseal(&mut bytes);
        parse(bytes).unwrap_err().to_string()
    }

    #[test]
    fn header_fields_the_crc_cannot_vouch_for_are_checked() {
        // Each patch keeps the length, and the CRC is re-sealed: only the loader's own checks
        // stand between the edit and a model that predicts garbage.
        let patched = |from: &str, to: &str| patched_error(Quantization::None, from, to);
        let err = patched("xxh3-64 seed", "xxh3-65 seed");
        assert!(err.contains("features hashed with"), "{err}");
        let err = patched("\"shape\":[6,32]", "\"shape\":[32,6]");
        assert!(err.contains("\"layer0.weight\" has shape [32, 6]"), "{err}");
        let err = patched("\"format_version\":1", "\"format_version\":2");
        assert!(err.contains("header says format version 2"), "{err}");
    }

    #[test]
    fn layer_dtypes_must_match_the_sections_and_each_other() {
        let patched = patched_error;
        // The 4-bit first layer read as bytes: refused by the section's own dtype.
        let err = patched(
            Quantization::Int4,
            "\"layer_weights\":[\"i4\"",
            "\"layer_weights\":[\"i8\"",
        );
        assert!(err.contains("has dtype I4, expected I8"), "{err}");
        // A shared dtype that contradicts the list (`null` and `"i8"` have the same length).
        let err = patched(Quantization::Int4, "\"weights\":null", "\"weights\":\"i8\"");
        assert!(err.contains("do not fit"), "{err}");
        // The default stores the first layer in 4 bits and says so, in format 2; int8 and
        // f32 models stay in format 1, which older builds read.
        let h = model(Quantization::Int4).header();
        assert_eq!((h.format_version, h.weights), (2, None));
        assert_eq!(h.layer_weights, vec![Dtype::I4, Dtype::I8]);
        for (q, dtype) in [
            (Quantization::Int8, Dtype::I8),
            (Quantization::None, Dtype::F32),
        ] {
            let m = model(q);
            let h = m.header();
            assert_eq!((h.format_version, h.weights), (1, Some(dtype)));
            assert!(h.layer_weights.is_empty());
            let a = Artifact::parse(Path::new("m.sprig"), m.to_bytes(), EXPECT).unwrap();
            assert_eq!(a.version, 1);
            assert!(a.header_as::<serde_json::Value>().unwrap()["layer_weights"].is_null());
        }
    }

    #[test]
    fn is_model_file_wants_the_whole_magic() {
        // `inspect` picks the model reader by this: the full 8-byte magic, nothing less.
        assert!(ProjectionModel::is_model_file(
            &model(Quantization::Int8).to_bytes()
        ));
        assert!(ProjectionModel::is_model_file(MODEL_MAGIC));
        assert!(!ProjectionModel::is_model_file(crate::graph::GRAPH_MAGIC));
        // A file cut inside the magic is no model file (and no panic slicing 8 bytes).
        assert!(!ProjectionModel::is_model_file(&MODEL_MAGIC[..7]));
        assert!(!ProjectionModel::is_model_file(b""));
    }

    #[test]
    fn a_network_without_hidden_layer_round_trips() {
        // Layer sizes [in, out]: the fewest a network has (fewer are refused as corrupt).
        let m = model_of(&[32, 3], Quantization::Int4);
        assert_eq!(m.header().layers, vec![32, 3]);
        let back = parse(m.to_bytes()).unwrap();
        assert_eq!(back.predictor(), m.predictor());
        assert_eq!(back.predict("hello there"), m.predict("hello there"));
    }

    /// `bytes` written again section by section, as format `version` with the header
    /// edited by `edit` (a crafted file, as another writer could make it).
    fn rewritten(bytes: Vec<u8>, version: u32, edit: impl Fn(&mut serde_json::Value)) -> Vec<u8> {
        let a = Artifact::parse(Path::new("m.sprig"), bytes, EXPECT).unwrap();
        let (mut f32s, mut i8s, mut i4s) = (Vec::new(), Vec::new(), Vec::new());
        for e in a.sections() {
            match e.dtype {
                Dtype::F32 => f32s.push((e.clone(), a.f32s(&e.name).unwrap())),
                Dtype::I8 => i8s.push((e.clone(), a.i8s(&e.name).unwrap())),
                Dtype::I4 => i4s.push((e.clone(), a.i4s(&e.name).unwrap())),
                other => panic!("a network model has no {other:?} section"),
            }
        }
        let mut w = ArtifactWriter::new();
        for (e, v) in &f32s {
            w.add_f32(&e.name, &e.shape, v);
        }
        for (e, v) in &i8s {
            w.add_i8(&e.name, &e.shape, v);
        }
        for (e, v) in &i4s {
            w.add_i4(&e.name, &e.shape, v);
        }
        let mut header = a.header.clone();
        header["format_version"] = version.into();
        edit(&mut header);
        w.finish(MODEL_MAGIC, version, header)
    }

    #[test]
    fn a_version_2_list_of_dtypes_that_agrees_with_weights_loads() {
        // Format 2 may list the layers' dtypes next to a shared `weights`; when they agree
        // the file is sound (this build writes `weights: null` there, another may not).
        let m = model(Quantization::Int8);
        let bytes = rewritten(m.to_bytes(), 2, |h| {
            h["layer_weights"] = serde_json::json!(["i8", "i8"]);
        });
        let back = parse(bytes).unwrap();
        assert_eq!(back.predictor(), m.predictor());
        assert_eq!(back.predict("where are you"), m.predict("where are you"));
    }

    #[test]
    fn four_bit_weights_in_a_version_1_file_are_refused() {
        // Format 1 predates 4-bit weights: a file that says 1 and holds them is crafted,
        // and builds that read format 1 only would misread it.
        let bytes = rewritten(model(Quantization::Int4).to_bytes(), 1, |_| {});
        let err = parse(bytes).unwrap_err().to_string();
        assert!(err.contains("weights dtype Some(I4)"), "{err}");
    }
}
