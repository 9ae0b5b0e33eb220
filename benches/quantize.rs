//! One trained network exported three ways: test accuracy in `f32`, int8, and with the 4-bit
//! first layer (the default), and the size of each file.
//!
//! ```sh
//! sprig train --corpus train.jsonl --float --out M.sprig [flags]   # any f32 model
//! cargo bench --bench quantize -- --model M.sprig --data test.jsonl
//! ```
//!
//! Training does not depend on the export, so the three rows are the same network and differ
//! only by rounding; `sprig train --quantize int8|int4` writes files of the same sizes (their
//! training reports name the quantization, where these keep the `f32` model's).

use std::path::PathBuf;

use sprig::corpus::{CorpusOptions, CorpusReader};
use sprig::model::{Predictor, ProjectionModel};
use sprig::network::Quantization;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let (Some(model), Some(data)) = (arg("--model"), arg("--data")) else {
        eprintln!("usage: cargo bench --bench quantize -- --model F32.sprig --data test.jsonl");
        return;
    };
    let model = ProjectionModel::load(PathBuf::from(model)).expect("model loads");
    // Labelled records only: an unlabelled one has no answer to match.
    let records: Vec<_> = CorpusReader::open(&PathBuf::from(&data), &CorpusOptions::default())
        .expect("data opens")
        .map(|r| r.expect("valid record"))
        .filter(|r| r.label.is_some())
        .collect();
    let Predictor::Network(net) = model.predictor() else {
        panic!("a network model is needed");
    };
    let h = model.header();
    println!("| export | accuracy | file bytes |");
    println!("|---|---|---|");
    for q in [Quantization::None, Quantization::Int8, Quantization::Int4] {
        let m = ProjectionModel::new(
            &h.text,
            &h.features,
            &h.projection,
            model.labels().to_vec(),
            Predictor::Network(net.quantized(q)),
            model.train_report().clone(),
        )
        .expect("same shapes");
        let correct = records
            .iter()
            .filter(|r| {
                let p = m.predict(&r.text);
                p.first().map(|p| m.label_name(p.label)) == r.label.as_deref()
            })
            .count();
        println!(
            "| {q:?} | {:.4} | {} |",
            correct as f64 / records.len() as f64,
            m.to_bytes().len()
        );
    }
}
