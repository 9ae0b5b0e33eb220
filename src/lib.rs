//! # sprig
//!
//! Graph-based semi-supervised learning on short text: a large corpus of short messages and a
//! handful of labelled ones become a similarity graph, the labels spread over it
//! Expander-style, and the result is distilled into a tiny projection model.
//!
//! ## The pipeline
//!
//! | stage | entry point | consumes → produces | CLI |
//! |---|---|---|---|
//! | 1. read | [`corpus::CorpusReader`] | JSONL / CSV / TSV / text → [`corpus::Record`]s | `graph` |
//! | 2. featurize | [`features::ingest`], [`features::tfidf`] | records → distinct text nodes, TF-IDF rows | `graph` |
//! | 3. connect | [`build::build_from_corpus`] (or [`build::build_from_reader`], [`build::build_from_records`]), [`knn::knn`], [`build::read_edges`] | rows → [`graph::Graph`] (kNN, exact where cheap, or text–feature) | `graph` |
//! | 4. propagate | [`propagate::propagate`] (on timely dataflow workers: `propagate::propagate_distributed`, feature `distributed`) | graph + seeds → per-node top-K labels | `propagate` |
//! | 5. distill | [`train::TrainSet::from_propagation`] (or a labels file: [`train::TrainSet::distilled`]), [`train::train`] | texts + propagated labels → projection model | `train` |
//! | 6. query | [`model`] | model + text → labels | `predict`, `eval` |
//!
//! Long calls report progress through [`build::Progress`], which can also cancel them, and
//! take per-iteration or per-epoch callbacks that can end them early with a valid result
//! ([`control`]).
//!
//! The stages in between work on plain values. Files come in and go out at the edges: the
//! functions that take a path (reading a corpus, an edge list or a seed file; saving and
//! loading graphs and models) open it through [`corpus`] and [`format`](mod@format), which
//! write atomically. As on the command line, the path `-` means standard input for the
//! readers of corpora, edge lists and seed files, and standard output for saves; graphs and
//! models are loaded from a file only (they are read by sections, not as a stream).
//!
//! ## Invariants
//!
//! 1. **One text path.** Normalization, tokenization and hashed n-grams live in [`text`];
//!    graph building, training and prediction all call it, and every artifact records the
//!    configs that made it.
//! 2. **Fixed hashes.** Features are XXH3-64 with a fixed seed ([`hash`]), pinned by golden
//!    tests; no randomized hasher influences anything written to disk.
//! 3. **Determinism.** The same input, config and seed give byte-identical artifacts, for any
//!    number of threads: parallel work is split in fixed blocks and reduced in a fixed order,
//!    ties are broken by id, label ids follow sorted label names.
//! 4. **Nothing half-written, nothing half-read.** Files are written to a temporary file and
//!    renamed into place; artifacts carry a magic, a format version and a CRC32, and a
//!    damaged one is refused ([`format`](mod@format)).
//! 5. **Abstain, never guess.** A node no seed can reach keeps all its mass on `unknown` and
//!    gets no label; no output ever holds NaN or infinity.
//!
//! ## Example
//!
//! ```
//! use sprig::build::{build_from_records, BuildConfig};
//! use sprig::corpus::Record;
//! use sprig::projection::{ProjectionConfig, Projector};
//! use sprig::propagate::{propagate, PropagationConfig};
//! use sprig::train::{train, TrainConfig, TrainSet};
//!
//! // Texts in memory (a file works the same through `build_from_corpus`); two seeds.
//! let texts = [
//!     ("thanks so much!", Some("thanks")),
//!     ("thank you so much", None),
//!     ("thanks a lot", None),
//!     ("on my way", Some("omw")),
//!     ("omw, on my way now", None),
//!     ("be there soon, on my way", None),
//! ];
//! let records: Vec<Record> = (1..)
//!     .zip(texts)
//!     .map(|(line, (text, label))| Record {
//!         line,
//!         id: None,
//!         text: text.into(),
//!         label: label.map(String::from),
//!     })
//!     .collect();
//!
//! // Build the kNN graph and spread the two seed labels over it.
//! let build = BuildConfig::default();
//! let graph = build_from_records(&records, &build, &())?;
//! let result = propagate(&graph, &PropagationConfig::default())?;
//! // Per record, the top label and score as the labels file prints them (None: abstains).
//! let answers = result.record_labels(&graph)?;
//! assert_eq!(answers[1].map(|(label, _)| label), Some("thanks"));
//! assert_eq!(answers[4].map(|(label, _)| label), Some("omw"));
//!
//! // Distill the seeds and the propagated labels into a model, and query it.
//! let config = TrainConfig::default();
//! let set = TrainSet::from_propagation(&records, &[], &graph, &result, &config)?;
//! // The model reads text as the graph did, through a projection (nothing stored but sizes).
//! let projector = Projector::new(&build.text, &build.features, &ProjectionConfig::default())?;
//! let model = train(&set, &projector, &config, &(), |_| {})?;
//! let best = model.predict("thanks a lot!")[0];
//! assert_eq!(model.label_name(best.label), "thanks");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

pub mod build;
pub mod control;
pub mod corpus;
pub mod error;
pub mod features;
pub mod format;
#[doc(hidden)]
pub mod fuzzing;
pub mod graph;
pub mod hash;
pub mod knn;
pub mod metrics;
pub mod model;
pub mod network;
pub mod projection;
pub mod propagate;
pub mod seeds;
pub mod table;
pub mod text;
pub mod train;

pub use control::Flow;
pub use error::{Error, Result};
pub use model::{ModelKind, Prediction, ProjectionModel, Scratch};
pub use projection::{ProjectionConfig, Projector};
pub use propagate::{
    propagate, propagate_with, Algorithm, LabelDistribution, Propagation, PropagationConfig,
    PropagationReport,
};
pub use train::{TrainConfig, TrainSet};

#[cfg(test)]
pub(crate) mod test_util {
    /// The field a config's `validate` names when it refuses (`None` when it accepts): what
    /// the range tests compare. Any other error is a test failure.
    pub(crate) fn refused_field(result: crate::Result<()>) -> Option<&'static str> {
        match result {
            Ok(()) => None,
            Err(crate::Error::InvalidConfig { field, .. }) => Some(field),
            Err(e) => panic!("not a config error: {e}"),
        }
    }

    /// Runs `f` in a fresh rayon pool of `threads` threads: the determinism tests compare
    /// results across thread counts.
    pub(crate) fn in_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a rayon pool")
            .install(f)
    }

    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Mutex;

    /// A [`crate::build::Progress`] that cancels during the stage whose name starts with
    /// `stage`, from that stage's `after`-th question on. With `once`, it says `true` one
    /// time only, as a caller's flag reset at once would: a run must not take the next
    /// `false` for "go on" after a stage was cut short.
    pub(crate) struct CancelIn {
        stage: &'static str,
        after: u64,
        once: bool,
        current: Mutex<String>,
        asked: AtomicU64,
        said: AtomicBool,
    }

    impl CancelIn {
        pub(crate) fn new(stage: &'static str, after: u64, once: bool) -> Self {
            CancelIn {
                stage,
                after,
                once,
                current: Mutex::new(String::new()),
                asked: AtomicU64::new(0),
                said: AtomicBool::new(false),
            }
        }

        /// Whether it has said `true`.
        pub(crate) fn said(&self) -> bool {
            self.said.load(Ordering::SeqCst)
        }
    }

    impl crate::build::Progress for CancelIn {
        fn stage(&self, name: &str, _total: Option<u64>, _unit: &str) {
            *self.current.lock().unwrap() = name.to_owned();
        }
        fn cancelled(&self) -> bool {
            if !self.current.lock().unwrap().starts_with(self.stage) {
                return false;
            }
            let asked = self.asked.fetch_add(1, Ordering::SeqCst);
            if asked < self.after || (self.once && self.said()) {
                return false;
            }
            self.said.store(true, Ordering::SeqCst);
            true
        }
    }
}
