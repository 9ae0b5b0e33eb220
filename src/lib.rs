//! # sprig
//!
//! Graph-based semi-supervised learning on short text.
#![warn(missing_docs)]

pub mod build;
pub mod corpus;
pub mod error;
pub mod features;
pub mod format;
pub mod graph;
pub mod hash;
pub mod knn;
pub mod propagate;
pub mod seeds;
pub mod text;

pub use error::{Error, Result};
pub use propagate::{
    propagate, propagate_with, Algorithm, LabelDistribution, Propagation, PropagationConfig,
    PropagationReport,
};
