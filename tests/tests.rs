//! The one integration-test binary (ripgrep's layout: it links once).

mod util;

mod bad_input;
mod cli;
mod compat;
#[cfg(feature = "distributed")]
mod distributed;
mod embed;
mod formats;
mod fuzz_regressions;
mod kill;
mod knn_exact;
mod model;
mod properties;
