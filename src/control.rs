//! Stopping a long run from its per-step callback, or abandoning it.
//!
//! [`propagate_with`](crate::propagate::propagate_with) calls its callback once per
//! iteration and [`train`](crate::train::train) once per epoch. A callback that returns `()`
//! only watches; one that returns [`ControlFlow`] can end the run early with
//! `ControlFlow::Break(())`: a time budget, a stopping rule of the caller's own, or a user
//! who pressed *cancel*. The run then ends as at its step cap, with a valid result (the
//! iterate the callback saw; the best epoch so far), and its report says that the caller
//! stopped it. To discard the result instead, drop it.
//!
//! ```
//! use std::ops::ControlFlow;
//! use sprig::build::{build_from_records, BuildConfig};
//! use sprig::corpus::Record;
//! use sprig::propagate::{propagate_with, PropagationConfig};
//!
//! let texts = [("thanks a lot", Some("thanks")), ("thanks so much", None), ("many thanks", None)];
//! let records: Vec<Record> = (1..)
//!     .zip(texts)
//!     .map(|(line, (text, label))| Record {
//!         line,
//!         id: None,
//!         text: text.into(),
//!         label: label.map(String::from),
//!     })
//!     .collect();
//! let graph = build_from_records(&records, &BuildConfig::default(), &())?;
//! // Stop after the second iteration, whatever the tolerance says.
//! let config = PropagationConfig { tolerance: 0.0, ..PropagationConfig::default() };
//! let result = propagate_with(&graph, graph.seeds(), &config, |s| {
//!     if s.iteration == 2 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
//! })?;
//! assert_eq!(result.report().iterations, 2);
//! assert!(result.report().stopped);
//! # Ok::<(), sprig::Error>(())
//! ```
//!
//! **Abandoning** a graph build or a training run, which have no partial result worth
//! keeping before their epochs, goes through their [`Progress`](crate::build::Progress)
//! instead: once its `cancelled` says `true` (asked between batches of records, blocks of
//! kNN queries, texts and epochs), the call returns [`Error::Cancelled`](crate::Error) and
//! nothing else. A deadline, say:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use sprig::build::{build_from_records, BuildConfig, Progress};
//! use sprig::corpus::Record;
//!
//! struct Deadline(Instant);
//! impl Progress for Deadline {
//!     fn cancelled(&self) -> bool {
//!         Instant::now() >= self.0
//!     }
//! }
//!
//! let records = vec![Record { line: 1, id: None, text: "thanks a lot".into(), label: None }];
//! // A deadline already past: nothing is built.
//! let result = build_from_records(&records, &BuildConfig::default(), &Deadline(Instant::now()));
//! assert!(matches!(result, Err(sprig::Error::Cancelled)));
//! let in_a_minute = Deadline(Instant::now() + Duration::from_secs(60));
//! assert!(build_from_records(&records, &BuildConfig::default(), &in_a_minute).is_ok());
//! ```

use std::ops::ControlFlow;

/// What a per-step callback returns: `()` (go on) or a [`ControlFlow`] (`Break(())` ends
/// the run after this step). See the [module docs](self).
pub trait Flow {
    /// Whether the run goes on.
    fn flow(self) -> ControlFlow<()>;
}

impl Flow for () {
    fn flow(self) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
}

impl Flow for ControlFlow<()> {
    fn flow(self) -> ControlFlow<()> {
        self
    }
}

/// Whether a report's `stopped` field is false: such a field is left out of what is written,
/// so that artifacts of runs nobody stopped keep their bytes.
pub(crate) fn not_stopped(stopped: &bool) -> bool {
    !*stopped
}
