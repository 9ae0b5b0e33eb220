//! Propagation at scale: a synthetic graph of 1M nodes / 20M undirected edges, 1,000 labels,
//! K = 8, 10 Expander iterations (the brief's target: < 60 s and < 4 GiB on 2 cores).
//!
//! ```sh
//! cargo bench --bench propagate                          # the full 1M / 20M run
//! cargo bench --bench propagate -- --nodes 100000        # smaller
//! /usr/bin/time -v target/release/deps/propagate-<hash>  # peak RSS from the OS
//! ```
//!
//! Options: `--nodes N` (1,000,000), `--degree D` (40: N·D/2 undirected edges), `--labels L`
//! (1,000), `--seeds S` (1% of nodes), `--top-k K` (8), `--iterations T` (10),
//! `--algorithm A` (expander), `--threads P` (0: all cores), `--workers W` (run on W timely
//! dataflow workers in this process instead of the plain engine; needs
//! `--features distributed`; the tests check that its result is the plain engine's, bit for
//! bit, and the objective printed each iteration shows it here), and with
//! it `--hosts FILE --process I` (W workers in each of the processes the file lists, one
//! `host:port` a line; start the bench once per process, each builds the same graph).
//! `--save FILE` writes the synthetic graph and stops; `--graph FILE` reads it instead of
//! building it (with `--hosts`, each process keeps its own rows only, `Graph::load_rows`;
//! `--whole` keeps every row, as before), so that peak RSS measures propagation and loading
//! rather than the build.
//!
//! **The graph.** Node v links to v ± s_j (mod N) for D/2 distinct strides: three quarters
//! short (1..=64, a local, clustered structure like a kNN graph's) and one quarter long random
//! strides (mixing, so labels meet and every node sees many candidate labels). Every node has
//! degree exactly D, the graph is symmetric without self-loops, weights are a hash of the
//! unordered pair in (0, 1]. Seeds: S random nodes with uniform random labels. All randomness
//! comes from a fixed splitmix64 seed.
//!
//! The run checks a cheap result (iteration count, and that sampled nodes' distributions sum
//! to 1) and prints build time, propagation time, per-iteration times and the process's peak
//! RSS (`VmHWM`). Results are logged in `benches/README.md`.

use std::time::Instant;

use rayon::prelude::*;
use sprig::graph::{Graph, GraphKind, GraphParts, Seed};
use sprig::propagate::{propagate_with, Algorithm, IterationStats, PropagationConfig};

struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn pair_weight(a: u64, b: u64) -> f32 {
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    let h = SplitMix(lo.wrapping_mul(0x1000_0000_01B3) ^ hi).next();
    ((h % 1000) + 1) as f32 / 1000.0
}

struct Options {
    nodes: usize,
    degree: usize,
    labels: usize,
    seeds: Option<usize>,
    top_k: usize,
    iterations: usize,
    algorithm: Algorithm,
    threads: usize,
    workers: Option<usize>,
    #[cfg(feature = "distributed")]
    hosts: Vec<String>,
    #[cfg(feature = "distributed")]
    process: usize,
    /// Write the synthetic graph here and stop.
    save: Option<std::path::PathBuf>,
    /// Read the graph from this file instead of building it.
    graph: Option<std::path::PathBuf>,
    /// With `--graph` and `--hosts`: read the whole graph, not only this process's rows.
    whole: bool,
}

fn options() -> Options {
    let mut o = Options {
        nodes: 1_000_000,
        degree: 40,
        labels: 1000,
        seeds: None,
        top_k: 8,
        iterations: 10,
        algorithm: Algorithm::Expander,
        threads: 0,
        workers: None,
        #[cfg(feature = "distributed")]
        hosts: Vec::new(),
        #[cfg(feature = "distributed")]
        process: 0,
        save: None,
        graph: None,
        whole: false,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = || {
            args.get(i + 1)
                .cloned()
                .unwrap_or_else(|| panic!("{} needs a value", args[i]))
        };
        let num = || {
            value()
                .parse::<usize>()
                .unwrap_or_else(|e| panic!("{}: {e}", args[i]))
        };
        match args[i].as_str() {
            "--bench" => {
                i += 1;
                continue;
            }
            "--nodes" => o.nodes = num(),
            "--degree" => o.degree = num(),
            "--labels" => o.labels = num(),
            "--seeds" => o.seeds = Some(num()),
            "--top-k" => o.top_k = num(),
            "--iterations" => o.iterations = num(),
            "--threads" => o.threads = num(),
            "--workers" => o.workers = Some(num()),
            "--save" => o.save = Some(value().into()),
            "--graph" => o.graph = Some(value().into()),
            "--whole" => {
                o.whole = true;
                i += 1;
                continue;
            }
            #[cfg(feature = "distributed")]
            "--process" => o.process = num(),
            #[cfg(feature = "distributed")]
            "--hosts" => {
                let path = std::path::PathBuf::from(value());
                o.hosts = sprig::propagate::Cluster::read_hosts(&path).expect("hosts file");
            }
            #[cfg(not(feature = "distributed"))]
            "--process" | "--hosts" => {
                panic!("{} needs `cargo bench --features distributed`", args[i])
            }
            "--algorithm" => o.algorithm = value().parse().expect("algorithm"),
            other => panic!("unknown option {other}"),
        }
        i += 2;
    }
    assert!(
        o.degree.is_multiple_of(2) && o.degree / 2 < o.nodes / 2,
        "degree must be even and < nodes"
    );
    o
}

fn synthetic_graph(o: &Options) -> Graph {
    let n = o.nodes;
    let half = o.degree / 2;
    let mut rng = SplitMix(0x5EED_5EED);
    let mut strides: Vec<u64> = Vec::with_capacity(half);
    let short = (half * 3 / 4).min(64);
    while strides.len() < half {
        let s = if strides.len() < short {
            1 + rng.next() % 64
        } else {
            65 + rng.next() % (n as u64 / 2 - 65)
        };
        if !strides.contains(&s) {
            strides.push(s);
        }
    }
    let d = o.degree;
    let mut neighbors = vec![0u32; n * d];
    let mut weights = vec![0f32; n * d];
    neighbors
        .par_chunks_mut(d)
        .zip(weights.par_chunks_mut(d))
        .enumerate()
        .for_each(|(v, (nb, ws))| {
            let v64 = v as u64;
            let n64 = n as u64;
            for (j, &s) in strides.iter().enumerate() {
                nb[2 * j] = ((v64 + s) % n64) as u32;
                nb[2 * j + 1] = ((v64 + n64 - s) % n64) as u32;
            }
            nb.sort_unstable();
            for (w, &u) in ws.iter_mut().zip(nb.iter()) {
                *w = pair_weight(v64, u64::from(u));
            }
        });
    let offsets = (0..=n as u64).map(|v| v * d as u64).collect();
    let n_seeds = o.seeds.unwrap_or(n / 100).max(1);
    let mut seeds: Vec<Seed> = (0..n_seeds)
        .map(|_| Seed {
            node: (rng.next() % n as u64) as u32,
            label: (rng.next() % o.labels as u64) as u32,
            weight: 1.0,
        })
        .collect();
    seeds.sort_by_key(|s| (s.node, s.label));
    seeds.dedup_by_key(|s| (s.node, s.label));
    let parts = GraphParts {
        offsets,
        neighbors,
        weights,
        keys: (0..n).map(|v| format!("n{v}")).collect(),
        text_nodes: n,
        records: Vec::new(),
        labels: (0..o.labels).map(|l| format!("label{l:04}")).collect(),
        seeds,
        provenance: serde_json::Value::Null,
    };
    Graph::from_parts(GraphKind::Knn, parts).expect("a valid synthetic graph")
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let o = options();
    if o.threads > 0 {
        rayon::ThreadPoolBuilder::new()
            .num_threads(o.threads)
            .build_global()
            .expect("thread pool");
    }
    let t0 = Instant::now();
    let graph = match &o.graph {
        None => synthetic_graph(&o),
        #[cfg(feature = "distributed")]
        Some(path) if !o.hosts.is_empty() && !o.whole => {
            let cluster = sprig::propagate::Cluster {
                workers: o.workers.unwrap_or(1),
                hosts: o.hosts.clone(),
                process: o.process,
                connect_timeout: None,
            };
            Graph::load_rows(path, |n| cluster.rows(n)).expect("graph file")
        }
        Some(path) => Graph::load(path).expect("graph file"),
    };
    if let Some(path) = &o.save {
        graph.save(path).expect("writable graph file");
        println!("wrote {}", path.display());
        return;
    }
    // Shared, not copied, with the timely workers.
    let graph = std::sync::Arc::new(graph);
    let build = t0.elapsed().as_secs_f64();
    println!(
        "graph: {} nodes, {} undirected edges ({} edge entries held here), {} labels, {} seeds; \
         built or read in {build:.2}s on {} threads",
        graph.n_nodes(),
        graph.n_edges(),
        graph.neighbors().len(),
        graph.labels().len(),
        graph.seeds().len(),
        rayon::current_num_threads()
    );
    let config = PropagationConfig {
        algorithm: o.algorithm,
        top_k: o.top_k,
        iterations: o.iterations,
        tolerance: 0.0,
        ..PropagationConfig::default()
    };
    let t1 = Instant::now();
    let last = std::sync::Mutex::new(0.0);
    let progress = move |s: &IterationStats| {
        let now = t1.elapsed().as_secs_f64();
        let mut last = last.lock().unwrap();
        println!(
            "  iteration {:>3}: max change {:.3e}, objective {:.6e} (reported at {now:.2}s, +{:.2}s)",
            s.iteration,
            s.max_change,
            s.objective,
            now - *last
        );
        *last = now;
    };
    let result = match o.workers {
        None => propagate_with(&graph, graph.seeds(), &config, progress).map(Some),
        #[cfg(feature = "distributed")]
        Some(w) => {
            let cluster = sprig::propagate::Cluster {
                workers: w,
                hosts: o.hosts.clone(),
                process: o.process,
                connect_timeout: None,
            };
            println!(
                "on {w} timely workers in each of {} processes (this is process {})",
                o.hosts.len().max(1),
                o.process
            );
            sprig::propagate::propagate_distributed(
                std::sync::Arc::clone(&graph),
                graph.seeds(),
                &config,
                &cluster,
                progress,
            )
        }
        #[cfg(not(feature = "distributed"))]
        Some(_) => panic!("--workers needs `cargo bench --features distributed`"),
    }
    .expect("propagation runs");
    let Some(result) = result else {
        let seconds = t1.elapsed().as_secs_f64();
        println!("propagate: {seconds:.2}s; process 0 holds the result");
        if let Some(kib) = peak_rss_kib() {
            println!(
                "peak RSS: {:.2} GiB ({kib} KiB)",
                kib as f64 / (1024.0 * 1024.0)
            );
        }
        return;
    };
    let seconds = t1.elapsed().as_secs_f64();
    let r = result.report();
    assert_eq!(r.iterations, o.iterations);
    let d = result.distribution();
    for v in (0..graph.n_nodes()).step_by((graph.n_nodes() / 97).max(1)) {
        let mass: f64 =
            d.get(v).iter().map(|e| f64::from(e.score)).sum::<f64>() + f64::from(d.unknown(v));
        assert!((mass - 1.0).abs() < 1e-5, "node {v}: mass {mass}");
    }
    let labelled = graph.n_nodes() - r.abstaining_nodes;
    println!(
        "propagate ({}, K = {}, {} iterations): {seconds:.2}s; {labelled} nodes labelled, {} abstain",
        r.algorithm, o.top_k, r.iterations, r.abstaining_nodes
    );
    if let Some(kib) = peak_rss_kib() {
        println!(
            "peak RSS: {:.2} GiB ({kib} KiB)",
            kib as f64 / (1024.0 * 1024.0)
        );
    }
}
