//! `sprig inspect`: what a `.graph` file holds, its structure, and whether seeds reach it all.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use petgraph::unionfind::UnionFind;
use serde_json::json;
use sprig::build::write_edges;
use sprig::graph::Graph;

/// Describe a .graph or .sprig file: versions, configs, counts, degrees, components,
/// reachability (graphs); sizes, labels and the training report (models).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The file to inspect.
    #[arg(value_parser = super::artifact_path)]
    file: PathBuf,
    /// Also check that every edge has its reverse with the same weight (the loader already
    /// checks magic, version, header, bounds, CRC and every per-row invariant). Graphs only.
    #[arg(long)]
    verify: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Print the edges as `source<TAB>target<TAB>weight` (each once) instead of a summary.
    /// Graphs only.
    #[arg(long)]
    edges: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    // The file is opened twice (its magic, then its loader): a pipe would lose its first
    // bytes to the first read.
    if let Ok(m) = std::fs::metadata(&args.file) {
        if !m.is_file() {
            anyhow::bail!(
                "{}: inspect needs a regular file, not {}",
                args.file.display(),
                if m.is_dir() {
                    "a folder"
                } else {
                    "a pipe or device"
                }
            );
        }
    }
    // An unreadable file falls through to the graph loader, whose error names the I/O
    // problem; so does one cut short inside the magic (an empty one too), unless what is
    // left of it is a model's: the loader then calls it truncated.
    let magic = super::inspect_model::magic(&args.file);
    let model_magic = sprig::model::MODEL_MAGIC;
    let short_model = |m: &[u8]| {
        m.len() < 8 && model_magic.starts_with(m) && !sprig::graph::GRAPH_MAGIC.starts_with(m)
    };
    let model = |m: &[u8]| sprig::model::ProjectionModel::is_model_file(m) || short_model(m);
    if magic.as_deref().is_some_and(model) {
        if args.edges || args.verify {
            anyhow::bail!(
                "{}: {} reads graphs; this is a model file",
                args.file.display(),
                if args.edges { "--edges" } else { "--verify" }
            );
        }
        return super::inspect_model::run(&args.file, args.json);
    }
    // Neither magic: say what was expected of this command, not only of a graph.
    if magic.is_some_and(|m| !sprig::graph::GRAPH_MAGIC.starts_with(&m)) {
        anyhow::bail!(
            "{}: neither a sprig graph (magic SPRIGGRF) nor a sprig model (SPRIGMDL)",
            args.file.display()
        );
    }
    // The file's own header: its format version and writer, not this build's.
    let (graph, header) = Graph::load_with_header(&args.file)?;
    let mut out = super::Stdout::new();
    if args.edges && args.json {
        anyhow::bail!("--edges prints TSV; drop --json");
    }
    // Before any export: `--edges` writes one weight an edge, and would bake an asymmetric
    // pair into the TSV unnoticed.
    if args.verify {
        graph
            .check_symmetric(&args.file)
            .with_context(|| format!("verifying {}", args.file.display()))?;
    }
    if args.edges {
        write_edges(&graph, &mut out)
            .with_context(|| format!("{}: exporting its edges", args.file.display()))?;
        out.flush()?;
        return Ok(());
    }
    let report = summarize(&graph);
    if args.json {
        let mut obj = json!({
            "file": args.file.display().to_string(),
            "format_version": header.format_version,
            "crate_version": header.crate_version,
            "graph_kind": header.graph_kind,
            "hash": header.hash,
            "counts": header.counts,
            "labels": header.labels,
            "provenance": header.provenance,
        });
        obj.as_object_mut()
            .expect("object")
            .extend(report.as_object().expect("object").clone());
        if args.verify {
            obj["verified"] = json!(true);
        }
        writeln!(out, "{obj}")?;
    } else {
        let c = header.counts;
        writeln!(out, "file:        {}", args.file.display())?;
        writeln!(
            out,
            "format:      SPRIGGRF v{} (sprig {}), {} graph, hash {}",
            header.format_version, header.crate_version, header.graph_kind, header.hash
        )?;
        writeln!(
            out,
            "counts:      {} records, {} nodes ({} texts), {} edges, {}, {}",
            c.records,
            c.nodes,
            c.text_nodes,
            c.edges,
            // As graph and propagate count them: seeded nodes, then (node, label) seeds.
            graph.seeds_summary(),
            super::count(header.labels.len() as u64, "label", "labels")
        )?;
        let d = &report["degree"];
        writeln!(
            out,
            "degree:      min {} median {} mean {:.2} max {}; {} isolated nodes",
            d["min"],
            d["median"],
            d["mean"].as_f64().unwrap_or(0.0),
            d["max"],
            d["isolated"]
        )?;
        writeln!(
            out,
            "components:  {} (largest {} nodes); {} with a seed",
            report["components"], report["largest_component"], report["seeded_components"]
        )?;
        writeln!(
            out,
            "unreachable: {} nodes ({} texts) share no component with a seed",
            report["unreachable_nodes"], report["unreachable_texts"]
        )?;
        let per_label: Vec<String> = report["seeds_per_label"]
            .as_object()
            .map(|m| {
                // A label with a space, `=` or a control character would break the line's
                // `label=count` layout: those are shown quoted and escaped.
                let shown = |k: &str| {
                    if k.chars()
                        .any(|c| c.is_whitespace() || c.is_control() || c == '=' || c == '"')
                    {
                        format!("{k:?}")
                    } else {
                        k.to_owned()
                    }
                };
                m.iter().map(|(k, v)| format!("{}={v}", shown(k))).collect()
            })
            .unwrap_or_default();
        writeln!(out, "seeds:       {}", per_label.join(" "))?;
        writeln!(out, "provenance:  {}", header.provenance)?;
        if args.verify {
            writeln!(out, "verified:    checksum, bounds, rows and symmetry ok")?;
        }
    }
    out.flush()?;
    Ok(())
}

/// Degree statistics, connected components and seed reachability.
fn summarize(graph: &Graph) -> serde_json::Value {
    let n = graph.n_nodes();
    let mut degrees: Vec<usize> = (0..n).map(|v| graph.row(v).0.len()).collect();
    let mut uf = UnionFind::<u32>::new(n);
    for v in 0..n {
        for &u in graph.row(v).0 {
            uf.union(v as u32, u);
        }
    }
    let labels = uf.into_labeling();
    let mut size = vec![0u64; n];
    let mut seeded = vec![false; n];
    for &root in &labels {
        size[root as usize] += 1;
    }
    for s in graph.seeds() {
        seeded[labels[s.node as usize] as usize] = true;
    }
    let components = size.iter().filter(|&&s| s > 0).count();
    let seeded_components = (0..n).filter(|&r| size[r] > 0 && seeded[r]).count();
    let unreachable: Vec<usize> = (0..n).filter(|&v| !seeded[labels[v] as usize]).collect();
    let unreachable_texts = unreachable
        .iter()
        .filter(|&&v| v < graph.n_text_nodes())
        .count();
    let isolated = degrees.iter().filter(|&&d| d == 0).count();
    let mean = if n > 0 {
        degrees.iter().sum::<usize>() as f64 / n as f64
    } else {
        0.0
    };
    degrees.sort_unstable();
    let mut per_label = serde_json::Map::new();
    for (i, name) in graph.labels().iter().enumerate() {
        let count = graph
            .seeds()
            .iter()
            .filter(|s| s.label as usize == i)
            .count();
        per_label.insert(name.clone(), json!(count));
    }
    json!({
        "degree": {
            "min": degrees.first().copied().unwrap_or(0),
            "median": degrees.get(n / 2).copied().unwrap_or(0),
            "mean": mean,
            "max": degrees.last().copied().unwrap_or(0),
            "isolated": isolated,
        },
        "components": components,
        "largest_component": size.iter().max().copied().unwrap_or(0),
        "seeded_components": seeded_components,
        "unreachable_nodes": unreachable.len(),
        "unreachable_texts": unreachable_texts,
        "seeds_per_label": per_label,
    })
}
