//! Single-text latency and batch throughput of `ProjectionModel::predict_top_with` with
//! k = 1: the best label, as the peers time fastText's `predict(text, k=1)`.
//!
//! ```sh
//! cargo bench --bench predict                                   # trains on corpora/replies
//! cargo bench --bench predict -- --model M.sprig --data test.jsonl [--rounds 5]
//! ```
//!
//! Latency: every text of the data file is predicted alone, timed one call at a time, over
//! `--rounds` passes (the first pass is a warm-up and is not counted); the median and p90
//! are printed. Throughput: the whole file predicted in a loop, texts per second. One thread.
//! `SPRIG_KERNEL=portable` (or `avx2`) measures the lesser vector kernels on a CPU that has
//! better ones: the portable code is what an ARM phone or watch runs.

use std::path::{Path, PathBuf};
use std::time::Instant;

use sprig::corpus::{CorpusOptions, CorpusReader};
use sprig::model::{ProjectionModel, Scratch};
use sprig::projection::{ProjectionConfig, Projector};
use sprig::text::{FeatureConfig, TextConfig};
use sprig::train::{train, TrainConfig, TrainSet};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn texts(path: &Path) -> Vec<(String, Option<String>)> {
    CorpusReader::open(path, &CorpusOptions::default())
        .expect("data opens")
        .map(|r| r.expect("valid record"))
        .map(|r| (r.text, r.label))
        .collect()
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let rounds: usize = arg("--rounds")
        .and_then(|r| r.parse().ok())
        .unwrap_or(5)
        .max(2);
    let data = arg("--data")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("corpora/replies/test.jsonl"));
    let model = match arg("--model") {
        Some(m) => ProjectionModel::load(PathBuf::from(m)).expect("model loads"),
        None => {
            let train_path = root.join("corpora/replies/corpus.gold.jsonl");
            let records: Vec<_> = CorpusReader::open(&train_path, &CorpusOptions::default())
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let set = TrainSet::supervised(&records).unwrap();
            train(
                &set,
                &Projector::new(
                    &TextConfig::default(),
                    &FeatureConfig::default(),
                    &ProjectionConfig::default(),
                )
                .unwrap(),
                &TrainConfig::default(),
                &(),
                |_| {},
            )
            .unwrap()
        }
    };
    let items = texts(&data);
    assert!(!items.is_empty());
    let mut scratch = Scratch::default();
    let mut times = Vec::with_capacity(items.len() * rounds);
    let mut correct = 0usize;
    for round in 0..rounds {
        for (text, gold) in &items {
            let start = Instant::now();
            let top = model.predict_top_with(&mut scratch, text, 1)[0];
            let ns = start.elapsed().as_nanos() as u64;
            if round > 0 {
                times.push(ns);
            }
            if round == 0 && gold.as_deref() == Some(model.label_name(top.label)) {
                correct += 1;
            }
        }
    }
    times.sort_unstable();
    let median = times[times.len() / 2];
    let p90 = times[times.len() * 9 / 10];
    let start = Instant::now();
    let mut checksum = 0u64;
    for _ in 0..rounds {
        for (text, _) in &items {
            checksum += u64::from(model.predict_top_with(&mut scratch, text, 1)[0].label);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    // Where the time goes: tokenizing alone, then with the features, then with the projection.
    // Each stage as `predict` runs it (reused buffers), over all rounds after a warm-up pass.
    let stage = |f: &mut dyn FnMut(&str)| {
        for (text, _) in &items {
            f(text);
        }
        let start = Instant::now();
        for _ in 0..rounds {
            for (text, _) in &items {
                f(text);
            }
        }
        start.elapsed().as_nanos() as f64 / (items.len() * rounds) as f64 / 1e3
    };
    let projector = model.projector();
    let mut only = sprig::text::Tokens::default();
    let tokenize = stage(&mut |t| {
        projector.pipeline().tokenize_into(t, &mut only);
        std::hint::black_box(&only);
    });
    let (mut tokens, mut fs) = (
        sprig::text::Tokens::default(),
        sprig::text::FeatureScratch::default(),
    );
    let features = stage(&mut |t| {
        projector.pipeline().tokenize_into(t, &mut tokens);
        projector
            .pipeline()
            .for_each_feature_of(&tokens, &mut fs, |f, _| {
                std::hint::black_box(f);
            });
    });
    let mut ps = sprig::projection::ProjectScratch::default();
    let mut out = vec![0i8; projector.dim()];
    let project = stage(&mut |t| {
        projector.project_with(&mut ps, t, &mut out);
    });
    let per_sec = (items.len() * rounds) as f64 / secs;
    sprig::network::check_kernel_env().expect("a SPRIG_KERNEL this CPU runs");
    let simd = sprig::network::kernel_name();
    println!(
        "model: {} {:?}, projection scheme {:?}, {simd} kernels, {} parameter bytes; data: {} ({} texts, accuracy {:.4})",
        model.kind(),
        model.header().layers,
        model.projector().config().scheme,
        model.parameter_bytes(),
        data.display(),
        items.len(),
        correct as f64 / items.len() as f64
    );
    println!(
        "single-text latency: median {:.1} µs, p90 {:.1} µs; batch throughput {:.0} texts/s (checksum {checksum})",
        median as f64 / 1e3,
        p90 as f64 / 1e3,
        per_sec
    );
    // The predictor alone, on inputs projected beforehand.
    let projected: Vec<Vec<i8>> = items.iter().map(|(t, _)| projector.project(t)).collect();
    let predictor = match model.predictor() {
        sprig::model::Predictor::Network(net) => {
            let mut ns = sprig::network::NetScratch::default();
            let start = Instant::now();
            for _ in 0..rounds {
                for x in &projected {
                    net.forward(x, &mut ns);
                    std::hint::black_box(&ns.probs);
                }
            }
            start.elapsed().as_nanos() as f64 / (projected.len() * rounds) as f64 / 1e3
        }
        sprig::model::Predictor::Table(_) => 0.0,
    };
    println!(
        "mean per text: tokenize {tokenize:.1} µs, tokenize + features {features:.1} µs, tokenize + features + projection {project:.1} µs, network {predictor:.1} µs"
    );
}
