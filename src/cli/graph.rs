//! `sprig graph`: corpus (or edge list) → `.graph`.

use std::path::{Path, PathBuf};

use sprig::build::{build_from_corpus, read_edges, BuildConfig, GraphConfig, MaxScan};
use sprig::corpus::CorpusFormat;
use sprig::graph::GraphKind;
use sprig::seeds::{apply_seed_file, read_seed_file};

use super::progress::Bars;
use super::{CorpusArgs, TextArgs};

/// Build a similarity graph from a corpus, or import a weighted edge list.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["corpus", "edges"])))]
pub struct Args {
    /// Corpus file (`-` reads standard input).
    #[arg(long, conflicts_with = "edges")]
    corpus: Option<PathBuf>,
    /// Import a Junto-style edge list instead: `source<TAB>target[<TAB>weight]`, undirected.
    /// The corpus, text and feature flags do not apply to it.
    #[arg(long, conflicts_with_all = ["TextArgs", "CorpusArgs", "skip_invalid"])]
    edges: Option<PathBuf>,
    /// Seeds to add or override: JSONL `{"line"|"id", "label", "weight"?}` or TSV
    /// `node<TAB>label[<TAB>weight]`.
    #[arg(long)]
    seeds: Option<PathBuf>,
    #[command(flatten)]
    corpus_fields: CorpusArgs,
    /// Skip bad records (counted, the first five reported on stderr) instead of stopping at
    /// the first.
    #[arg(long)]
    skip_invalid: bool,
    /// Graph kind: text–text kNN edges, or text–feature edges (Smart Reply).
    #[arg(long, value_enum, default_value_t = Kind::Knn, conflicts_with = "edges")]
    kind: Kind,
    /// Neighbours per text (knn) [default: 10].
    #[arg(long, conflicts_with = "edges")]
    k: Option<usize>,
    /// Smallest cosine kept as an edge (knn) [default: 0].
    #[arg(long, conflicts_with = "edges")]
    min_sim: Option<f32>,
    /// Drop features seen in fewer than this many texts [default: 1 for knn, 2 for bipartite].
    #[arg(long, conflicts_with = "edges")]
    min_df: Option<u32>,
    /// Drop features seen in more than this fraction of texts [default: 1 for knn, 0.3 for bipartite].
    #[arg(long, conflicts_with = "edges")]
    max_df: Option<f64>,
    /// kNN search: `exact`; N, a budget of N postings per text's search (approximate, for
    /// large corpora or long texts: a search that reaches it settles for the best
    /// candidates found); or `auto`: exact where that is cheap (a sample of 256 texts'
    /// searches projects the whole under about 5 s of one core: short texts up to about
    /// 20,000), 16384 otherwise [default: auto].
    #[arg(long, conflicts_with = "edges", value_parser = parse_max_scan)]
    max_scan: Option<MaxScan>,
    #[command(flatten)]
    text: TextArgs,
    #[command(flatten)]
    job: super::JobArgs,
    /// Output `.graph` file (written atomically).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Kind {
    Knn,
    Bipartite,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    super::set_threads(args.job.threads)?;
    let inputs = [
        ("--corpus", args.corpus.as_deref()),
        ("--edges", args.edges.as_deref()),
        ("--seeds", args.seeds.as_deref()),
    ];
    let inputs: Vec<(&str, &Path)> = inputs
        .into_iter()
        .filter_map(|(flag, p)| p.map(|p| (flag, p)))
        .collect();
    super::check_not_an_input(&args.out, &inputs)?;
    let bars = Bars::new(args.job.quiet);
    let started = std::time::Instant::now();
    // The corpus's format, given or detected (for the notes below).
    let mut format: Option<CorpusFormat> = None;
    let mut graph = if let Some(edges) = &args.edges {
        let (graph, report) = read_edges(edges)?;
        if report.hash_lines > 0 {
            bars.note(&format!(
                "note: {}: {} (a comment line has no TAB)",
                edges.display(),
                super::count(
                    report.hash_lines,
                    "line starting with # was read as an edge",
                    "lines starting with # were read as edges"
                )
            ));
        }
        if report.self_loops + report.zero_weight + report.duplicates > 0 {
            bars.warn(&format!(
                "{}: dropped {} self-loops and {} zero-weight edges; merged {} repeated edges (max weight)",
                edges.display(),
                report.self_loops,
                report.zero_weight,
                report.duplicates
            ));
        }
        graph
    } else {
        let corpus = args
            .corpus
            .as_ref()
            .expect("clap requires --corpus or --edges");
        if args.kind == Kind::Bipartite {
            for (flag, given) in [
                ("--k", args.k.is_some()),
                ("--min-sim", args.min_sim.is_some()),
                ("--max-scan", args.max_scan.is_some()),
            ] {
                if given {
                    anyhow::bail!("{flag} applies to --kind knn, not to --kind bipartite");
                }
            }
        }
        args.text.check_used(Ok(()))?;
        let (text, features) = args.text.configs();
        let config = BuildConfig {
            corpus: args.corpus_fields.options(),
            text,
            features,
            graph: GraphConfig {
                kind: match args.kind {
                    Kind::Knn => GraphKind::Knn,
                    Kind::Bipartite => GraphKind::Bipartite,
                },
                k: args.k.unwrap_or(GraphConfig::default().k),
                min_sim: args.min_sim.unwrap_or(GraphConfig::default().min_sim),
                min_df: args.min_df,
                max_df: args.max_df,
                max_scan: args.max_scan.unwrap_or_default(),
            },
            skip_invalid: args.skip_invalid,
        };
        let built = build_from_corpus(corpus, &config, &bars)?;
        format = Some(built.format);
        if built.skipped.count > 0 {
            bars.warn(&super::skipped_note(
                built.skipped.count,
                &built.skipped.first,
            ));
        }
        built.graph
    };
    if let Some(seeds) = &args.seeds {
        let entries = read_seed_file(seeds)?;
        apply_seed_file(&mut graph, seeds, &entries)?;
        // Otherwise a graph seeded from a file would look like one seeded by its corpus.
        graph.record_provenance("seeds", seeds.display().to_string().into());
        let suggested = entries.iter().filter(|e| e.suggested).count();
        if suggested > 0 {
            // A graph's seeds carry no such mark: propagate would count them in the priors.
            bars.note(&format!(
                "note: {} of {} marked \"suggested\" will count in the class priors that \
                 propagate estimates from the graph's seeds; give the file to `sprig \
                 propagate --seeds` instead, which leaves them out",
                super::count(suggested as u64, "seed", "seeds"),
                seeds.display()
            ));
        }
    }
    // Its errors name the file.
    graph.save(&args.out)?;
    // Identical texts share a node, so differently labelled copies make one node with two
    // seed labels: legal (its distribution splits), but usually a labelling slip.
    let mut torn: Vec<u32> = graph
        .seeds()
        .windows(2)
        .filter(|w| w[0].node == w[1].node && w[0].label != w[1].label)
        .map(|w| w[0].node)
        .collect();
    torn.dedup();
    if let Some(note) = super::case_note(graph.labels()) {
        bars.note(&note);
    }
    if let Some(&first) = torn.first() {
        bars.note(&format!(
            "note: {} seeds of more than one label ({}), e.g. {:?}",
            if torn.len() == 1 {
                "1 node carries".to_owned()
            } else {
                format!("{} nodes carry", torn.len())
            },
            match (&args.edges, &args.seeds) {
                (Some(_), _) => "the seed file labels it more than once",
                // The seed file replaces the seeds of the nodes it names: either may be it.
                (None, Some(_)) =>
                    "the seed file labels it more than once, or identical texts \
                                    are labelled differently",
                (None, None) => "identical texts labelled differently",
            },
            graph.keys()[first as usize]
        ));
    }
    if graph.seeds().is_empty() && args.corpus.is_some() {
        // Often a label column under another name (`--label-field`); propagate would stop.
        bars.note(&if format == Some(CorpusFormat::Text) {
            // Plain text has no fields to name: its labels are line prefixes.
            "note: no line starts with a `__label__NAME ` prefix, so the graph has no seed: \
             prefix the labelled lines, give seeds with --seeds (here or to propagate), or, \
             for a CSV or TSV file read as text, say so with --format"
                .to_owned()
        } else {
            format!(
                "note: no record has a {:?} field or column, so the graph has no seed: name \
                 the label column with --label-field, or give seeds with --seeds (here or to \
                 propagate)",
                args.corpus_fields.options().label_field
            )
        });
    }
    if graph.n_edges() == 0 && graph.n_nodes() > 1 {
        // Written all the same (it is a valid graph), but propagation over it can only keep
        // the seeds: say why before the user finds every other text abstaining.
        bars.note(&format!(
            "note: {} has no edge, so only seeds will get a label: {}",
            args.out.display(),
            if args.edges.is_some() {
                "every line of the edge list is a self-loop or has weight 0"
            } else {
                "no two texts share a feature that passed --min-df/--max-df (or --min-sim)"
            }
        ));
    }
    super::summary(
        &args.out,
        format_args!(
            "{}: {} graph, {}{} ({:.2}s)",
            args.out.display(),
            graph.kind(),
            // An edge list has no records of its own: one per node.
            match graph.kind() {
                GraphKind::Edges => String::new(),
                _ => format!(
                    "{}, ",
                    super::count(graph.records().len() as u64, "record", "records")
                ),
            },
            super::graph_size(&graph),
            started.elapsed().as_secs_f64()
        ),
    )?;
    Ok(())
}

/// `--max-scan`: `auto`, `exact`, or a budget of at least 1.
fn parse_max_scan(s: &str) -> Result<MaxScan, String> {
    match s {
        "auto" => Ok(MaxScan::Auto),
        "exact" => Ok(MaxScan::Exact),
        _ => match s.parse::<u64>() {
            Ok(n) if n >= 1 => Ok(MaxScan::Budget(n)),
            _ => Err(format!(
                "expected auto, exact or a number of postings >= 1, not {s:?}"
            )),
        },
    }
}
