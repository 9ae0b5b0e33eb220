//! Frozen artifacts of every format version still open, and hold what they held.

use std::path::Path;

use sprig::build::{build_from_corpus, read_edges, BuildConfig};
use sprig::graph::Graph;
use sprig::seeds::{apply_seed_file, read_seed_file};

use crate::util::repo;

#[test]
fn v1_toy_graph_opens_and_matches_its_source() {
    let frozen = Graph::load(repo("tests/fixtures/v1/toy.graph")).unwrap();
    let (mut rebuilt, _) = read_edges(Path::new("graphs/toy/edges.tsv")).unwrap();
    let seeds = Path::new("graphs/toy/seeds.tsv");
    apply_seed_file(&mut rebuilt, seeds, &read_seed_file(seeds).unwrap()).unwrap();
    assert_eq!(frozen.n_nodes(), 13);
    assert_eq!(frozen.labels(), ["politics", "sports"]);
    assert_eq!(frozen.offsets(), rebuilt.offsets());
    assert_eq!(frozen.neighbors(), rebuilt.neighbors());
    assert_eq!(frozen.weights(), rebuilt.weights());
    assert_eq!(frozen.keys(), rebuilt.keys());
    assert_eq!(frozen.seeds(), rebuilt.seeds());
    assert_eq!(frozen.records(), rebuilt.records());
}

#[test]
fn v1_tiny_corpus_graph_opens_and_matches_a_rebuild() {
    let frozen = Graph::load(repo("tests/fixtures/v1/tiny.graph")).unwrap();
    // Rebuild with the configs the file records (it was built with the defaults of its day;
    // defaults may change, the text path for a given config may not).
    let recorded = |key: &str| frozen.provenance()[key].clone();
    let config = BuildConfig {
        corpus: serde_json::from_value(recorded("corpus")).unwrap(),
        text: serde_json::from_value(recorded("text")).unwrap(),
        features: serde_json::from_value(recorded("features")).unwrap(),
        graph: serde_json::from_value(recorded("graph")).unwrap(),
        ..BuildConfig::default()
    };
    assert_eq!(config.features.char_max, 5, "the defaults of the day");
    let rebuilt = build_from_corpus(Path::new("corpora/tiny/intents.jsonl"), &config, &())
        .unwrap()
        .graph;
    assert_eq!(frozen.records().len(), 40);
    // While v1 is the current version, the text path must also give the same edges: a change
    // to tokenization or hashing shows up here (and then needs a format version bump).
    assert_eq!(frozen.neighbors(), rebuilt.neighbors());
    assert_eq!(frozen.weights(), rebuilt.weights());
    assert_eq!(frozen.seeds(), rebuilt.seeds());
}

#[test]
fn v1_tiny_model_opens_and_predicts_as_it_did() {
    // The general text path too: texts the folds of newer configs would change.
    predicts_as_it_did(
        "tests/fixtures/v1/tiny.sprig",
        &[
            "tests/fixtures/v1/tiny.sprig.predictions.jsonl",
            "tests/fixtures/v1/tiny.sprig.non-ascii.predictions.jsonl",
        ],
    );
}

/// Format 2: the sketch projection and the 4-bit first layer.
#[test]
fn v2_tiny_model_opens_and_predicts_as_it_did() {
    predicts_as_it_did(
        "tests/fixtures/v2/tiny.sprig",
        &["tests/fixtures/v2/tiny.sprig.predictions.jsonl"],
    );
}

/// Every line of `golden` (what `sprig predict --json --top 4` printed when the model was
/// frozen) is predicted again: same labels in the same order, scores within print precision.
fn predicts_as_it_did(model: &str, golden: &[&str]) {
    let model = sprig::model::ProjectionModel::load(repo(model)).unwrap();
    let mut lines = 0;
    for file in golden {
        for line in std::fs::read_to_string(repo(file)).unwrap().lines() {
            let want: serde_json::Value = serde_json::from_str(line).unwrap();
            let text = want["text"].as_str().unwrap();
            let got = model.predict(text);
            let want_labels = want["labels"].as_array().unwrap();
            assert_eq!(want_labels.len(), got.len().min(4), "{text}");
            for (w, g) in want_labels.iter().zip(&got) {
                assert_eq!(w["label"], model.labels()[g.label as usize], "{text}");
                let score = w["score"].as_f64().unwrap();
                assert!(
                    (score - f64::from(g.score)).abs() < 2e-6,
                    "{text}: {score} vs {}",
                    g.score
                );
            }
            lines += 1;
        }
    }
    assert!(lines >= 4, "golden files hold {lines} lines");
}
