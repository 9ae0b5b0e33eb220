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
//! | 3. connect | [`build::build_from_corpus`], [`knn::knn`], [`build::read_edges`] | rows → [`graph::Graph`] (exact kNN or text–feature) | `graph` |
//! | 4. propagate | [`propagate::propagate`] | graph + seeds → per-node top-K labels | `propagate` |
//! | 5. distill | [`train`] | texts + propagated labels → projection model | `train` |
//! | 6. query | [`model`] | model + text → labels | `predict`, `eval` |
//!
//! The stages in between work on plain values. Files come in and go out at the edges: the
//! functions that take a path (reading a corpus, an edge list or a seed file; saving and
//! loading graphs and models) open it through [`corpus`] and [`format`](mod@format), which
//! write atomically. As on the command line, the path `-` means standard input or output
//! there.
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
//! use std::io::Write;
//! use sprig::build::{build_from_corpus, BuildConfig};
//! use sprig::propagate::{propagate, PropagationConfig};
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("chat.jsonl");
//! let mut f = std::fs::File::create(&path)?;
//! for (text, label) in [
//!     ("thanks so much!", Some("thanks")),
//!     ("thank you so much", None),
//!     ("thanks a lot", None),
//!     ("on my way", Some("omw")),
//!     ("omw, on my way now", None),
//!     ("be there soon, on my way", None),
//! ] {
//!     let mut record = serde_json::json!({ "text": text });
//!     if let Some(l) = label {
//!         record["label"] = l.into();
//!     }
//!     writeln!(f, "{record}")?;
//! }
//! drop(f);
//!
//! let graph = build_from_corpus(&path, &BuildConfig::default(), &())?.graph;
//! let result = propagate(&graph, &PropagationConfig::default())?;
//! let labels = result.labels();
//! let top = |record: usize| {
//!     let node = graph.records()[record].node as usize;
//!     result.distribution().top(node).map(|t| labels[t.label as usize].as_str())
//! };
//! assert_eq!(top(1), Some("thanks"));
//! assert_eq!(top(4), Some("omw"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

pub mod build;
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
    /// Runs `f` in a fresh rayon pool of `threads` threads: the determinism tests compare
    /// results across thread counts.
    pub(crate) fn in_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a rayon pool")
            .install(f)
    }
}
