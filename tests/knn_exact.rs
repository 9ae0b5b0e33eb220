//! The kNN graph equals brute-force cosine top-k on the bundled 2,400-record corpus.

use sprig::corpus::CorpusOptions;
use sprig::features::{ingest, tfidf, DfFilter};
use sprig::knn::{brute_force, knn};
use sprig::text::{FeatureConfig, TextConfig, TextPipeline};

use crate::util::repo;

fn check(features: FeatureConfig, k: usize, min_sim: f32) {
    let pipeline = TextPipeline::new(&TextConfig::default(), &features).unwrap();
    let ing = ingest(
        &repo("corpora/replies/corpus.jsonl"),
        &CorpusOptions::default(),
        &pipeline,
        false,
        false,
        |_| {},
    )
    .unwrap();
    let rows = tfidf(
        &ing.counts,
        &ing.df,
        &ing.blocks,
        DfFilter::default(),
        features.sublinear_tf,
        features.char_weight,
    );
    assert!(rows.n_rows() >= 2000, "{} distinct texts", rows.n_rows());
    let fast = knn(&rows, k, min_sim, |_| {});
    let slow = brute_force(&rows, k, min_sim);
    assert_eq!(fast.len(), slow.len());
    for (i, (a, b)) in fast.iter().zip(&slow).enumerate() {
        assert_eq!(a, b, "triplet {i} differs: index {a:?}, brute force {b:?}");
    }
}

#[test]
fn knn_equals_brute_force_word_and_char_features() {
    check(FeatureConfig::default(), 10, 0.0);
}

#[test]
fn knn_equals_brute_force_word12_with_min_sim() {
    check(FeatureConfig::word12(), 15, 0.2);
}
