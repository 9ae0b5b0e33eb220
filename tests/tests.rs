//! The one integration-test binary (ripgrep's layout: it links once).

mod util;

mod cli;
mod formats;
mod knn_exact;
mod properties;
