//! Entry points shared by the cargo-fuzz targets (`fuzz/`) and the regression tests that
//! replay their interesting inputs (`tests/fuzz_regressions.rs`), so both exercise exactly
//! the same code. Each function must return normally for any input: an `Err` is fine, a
//! panic is a bug.

use std::io::Cursor;
use std::path::Path;

use crate::build::read_edges_from;
use crate::corpus::{CorpusFormat, CorpusOptions, CorpusReader, Record, RecordId};
use crate::graph::Graph;
use crate::text::{FeatureConfig, TextConfig, TextPipeline};
use crate::train::{TrainConfig, TrainSet};

/// Loads `data` as a graph file, once as it is and once with its trailing CRC32 recomputed,
/// so that mutations reach the section decoding and invariant checks behind the checksum.
/// A graph that loads must pass or fail the symmetry check, and must serialize again.
pub fn graph_file(data: &[u8]) {
    graph_bytes(data.to_vec());
    if data.len() >= 4 {
        let mut fixed = data.to_vec();
        let n = fixed.len();
        let crc = crc32fast::hash(&fixed[..n - 4]);
        fixed[n - 4..].copy_from_slice(&crc.to_le_bytes());
        graph_bytes(fixed);
    }
}

fn graph_bytes(data: Vec<u8>) {
    if let Ok(graph) = Graph::from_bytes(Path::new("fuzz.graph"), data) {
        let _ = graph.check_symmetric(Path::new("fuzz.graph"));
        let again = Graph::from_bytes(Path::new("again.graph"), graph.to_bytes())
            .expect("a loaded graph saves and loads again");
        assert_eq!(again.n_nodes(), graph.n_nodes());
    }
}

/// Reads `data` as a corpus in every format and runs each record's text through the text
/// path (normalization, tokenization, every feature family).
pub fn corpus(data: &[u8]) {
    let features = FeatureConfig {
        skip_bigrams: true,
        ..FeatureConfig::default()
    };
    let pipeline = TextPipeline::new(&TextConfig::default(), &features).expect("valid config");
    for format in [
        CorpusFormat::Jsonl,
        CorpusFormat::Csv,
        CorpusFormat::Tsv,
        CorpusFormat::Text,
    ] {
        let options = CorpusOptions {
            format: Some(format),
            ..CorpusOptions::default()
        };
        let raw = Box::new(Cursor::new(data.to_vec()));
        let Ok(reader) = CorpusReader::from_reader(Path::new("fuzz"), raw, &options) else {
            continue;
        };
        for record in reader.flatten() {
            let tokens = pipeline.tokenize(&record.text);
            let mut n = 0usize;
            pipeline.for_each_feature(&tokens, |_, _| n += 1);
        }
    }
}

/// Reads `data` as a weighted edge list; a graph that loads is checked for symmetry.
pub fn edges(data: &[u8]) {
    let raw = Box::new(Cursor::new(data.to_vec()));
    if let Ok((graph, _)) = read_edges_from(Path::new("fuzz.tsv"), raw) {
        graph
            .check_symmetric(Path::new("fuzz.tsv"))
            .expect("an imported graph is symmetric");
    }
}

/// Loads `data` as a model file, as it is and with its CRC32 recomputed; a model that loads
/// must predict finite scores.
pub fn model_file(data: &[u8]) {
    let mut inputs = vec![data.to_vec()];
    if data.len() >= 4 {
        let mut fixed = data.to_vec();
        let n = fixed.len();
        let crc = crc32fast::hash(&fixed[..n - 4]);
        fixed[n - 4..].copy_from_slice(&crc.to_le_bytes());
        inputs.push(fixed);
    }
    for bytes in inputs {
        if let Ok(model) = crate::model::ProjectionModel::from_bytes(Path::new("fuzz.sprig"), bytes)
        {
            for p in model.predict("thanks, see you soon!") {
                assert!(p.score.is_finite(), "a loaded model predicts finite scores");
            }
        }
    }
}

/// The corpus the labels and seed files are read against: [`LABELS_CORPUS`]'s six records,
/// as a JSONL corpus of those lines gives them (lines 1–6, string ids `r1`…`r6`, three
/// labelled).
fn labels_corpus() -> Vec<Record> {
    LABELS_CORPUS
        .iter()
        .enumerate()
        .map(|(i, (text, label))| Record {
            line: i as u64 + 1,
            id: Some(RecordId::from(format!("r{}", i + 1))),
            text: (*text).into(),
            label: label.map(Into::into),
        })
        .collect()
}

/// Texts and corpus labels of the records [`labels_file`] and [`seed_file`] read against.
/// The starting inputs in `tests/fuzz/labels_file/` were written by `sprig graph` and `sprig
/// propagate` on this corpus, so their text hashes match; those in `tests/fuzz/seed_file/`
/// name its records by line and by id.
pub const LABELS_CORPUS: [(&str, Option<&str>); 6] = [
    ("hello there", Some("greeting")),
    ("thank you so much", Some("thanks")),
    ("see you later", Some("goodbye")),
    ("hi, how are you?", None),
    ("thanks a lot!", None),
    ("bye for now", None),
];

/// Reads `data` as a labels file (`sprig train --labels`) against [`LABELS_CORPUS`]. A train
/// set that comes out must pass its own validation: the join may refuse a file, never let
/// a bad target, weight or label name through to training.
pub fn labels_file(data: &[u8]) {
    let records = labels_corpus();
    let mut input = data;
    let config = TrainConfig::default();
    if let Ok(set) = TrainSet::distilled(&records, &mut input, Path::new("fuzz.jsonl"), &config) {
        set.validate()
            .expect("a train set joined from a labels file is valid");
    }
}

/// Reads `data` as a seed file, by content and as JSON Lines (by extension), and applies
/// what parses to [`LABELS_CORPUS`] as `sprig train --seeds` does. A train set that comes out
/// must pass its own validation.
pub fn seed_file(data: &[u8]) {
    let records = labels_corpus();
    for name in ["fuzz.txt", "fuzz.jsonl"] {
        let path = Path::new(name);
        let Ok(entries) = crate::seeds::read_seeds_from(path, data) else {
            continue;
        };
        let Ok(seeds) = crate::seeds::record_seeds(&records, path, &entries) else {
            continue;
        };
        if let Ok(set) = TrainSet::supervised_with(&records, &seeds) {
            set.validate()
                .expect("a train set from a seed file is valid");
        }
    }
}
