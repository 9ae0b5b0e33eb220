//! `sprig propagate`: `.graph` → per-record label distributions (JSONL) or Junto-style TSV.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use sprig::build::Progress;
use sprig::corpus::{CorpusFormat, CorpusOptions, CorpusReader};
use sprig::error::Error;
use sprig::graph::Graph;
use sprig::propagate::{
    check_tsv, propagate_with, seed_class_counts, seed_conflicts, suggest_labels, write_jsonl,
    write_seed_conflicts, write_suggestions, write_tsv, Algorithm, ChangeNorm, ClassPrior,
    IterationStats, Nodes, OutputFormat, Propagation, PropagationConfig,
};
use sprig::seeds::{apply_seed_file, read_seed_file};

use super::progress::Bars;

fn defaults() -> PropagationConfig {
    PropagationConfig::default()
}

/// Spread the graph's seed labels to every node and write one label distribution per record.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The `.graph` file (from `sprig graph`).
    #[arg(long, value_parser = super::artifact_path)]
    graph: PathBuf,
    /// Seeds to add or override: JSONL `{"line"|"id", "label", "weight"?, "suggested"?}` or
    /// TSV `node<TAB>label[<TAB>weight]`; a node it names gets exactly the file's labels.
    /// Lines with `"suggested": true` (from --suggest) are left out of the class priors
    /// estimated from the seeds.
    #[arg(long)]
    seeds: Option<PathBuf>,
    /// Algorithm: expander (Ravi & Diao 2016), mad (Talukdar & Crammer 2009), lp
    /// (Zhu & Ghahramani 2002, as sklearn's LabelPropagation), spreading (Zhou et al. 2004,
    /// as sklearn's LabelSpreading).
    #[arg(long, value_enum, default_value_t = defaults().algorithm)]
    algorithm: Algorithm,
    /// Iteration cap.
    #[arg(long, default_value_t = defaults().iterations)]
    iterations: usize,
    /// Stop once an iteration changes the distributions by less than this (L1, see
    /// --change-norm); 0 always runs --iterations. With max-node, the change of a damped
    /// step is divided by 1 − damping (the log prints the damped change), and an iteration
    /// that gives some node its first label never stops the run.
    #[arg(long, default_value_t = defaults().tolerance)]
    tolerance: f64,
    /// How the change is measured: max-node (largest per-node L1) or sum (over all nodes, as
    /// sklearn's `tol`).
    #[arg(long, value_enum, default_value_t = defaults().change_norm)]
    change_norm: ChangeNorm,
    /// K: labels kept per node at every iteration (Expander's streaming approximation:
    /// memory O(K) per node); the rest of the mass moves to `unknown`. With more labels than
    /// K, results differ from untruncated propagation (lp and spreading then differ from
    /// scikit-learn): give K ≥ the label count for exact results. [default: 8; with
    /// --prior or --prior-from, the label count up to 64, since class priors cannot raise
    /// a label truncated away]
    #[arg(long)]
    top_k: Option<usize>,
    /// μ1, weight of the seed fit (expander, mad) [default: 1].
    #[arg(long, visible_alias = "seed-weight")]
    mu1: Option<f64>,
    /// μ2, weight of neighbour smoothness (expander, mad; Junto's MAD example uses 0.01)
    /// [default: 1].
    #[arg(long, visible_alias = "smoothness-weight")]
    mu2: Option<f64>,
    /// μ3, weight of the pull towards `unknown` (expander, mad) [default: 0.01].
    #[arg(long, visible_alias = "prior-weight")]
    mu3: Option<f64>,
    /// Share of its previous distribution an Expander node keeps each step, in [0, 1):
    /// removes the step-to-step alternation of plain Jacobi on bipartite graphs and on very
    /// heavy edges (expander) [default: 0.5 on a bipartite graph or an edge list, 0 on a kNN
    /// graph].
    #[arg(long)]
    damping: Option<f64>,
    /// α of label spreading, in (0, 1) (spreading) [default: 0.2].
    #[arg(long)]
    alpha: Option<f64>,
    /// β of MAD's random-walk probabilities, > 1 (mad) [default: 2].
    #[arg(long)]
    beta: Option<f64>,
    /// Class-balance correction after propagation: cmn (class mass normalization, Zhu et al.
    /// 2003) with priors from the seeds or from --prior, or none. Priors from the seeds count
    /// each seeded node once, split between its labels in proportion to their weights: a
    /// node's weight, or its weights scaled together, never changes them.
    #[arg(long, value_enum, default_value_t = PriorMode::of(&defaults().class_prior))]
    class_prior: PriorMode,
    /// A class prior for cmn, as LABEL=WEIGHT (repeatable; needs cmn, the default, and is
    /// refused with --class-prior none; unnamed labels get 0).
    #[arg(long = "prior", value_name = "LABEL=WEIGHT")]
    priors: Vec<String>,
    /// Class priors for cmn from a labelled sample (JSONL, CSV/TSV or text with labels):
    /// each graph label's share among its labelled lines, with one added to every count.
    /// Read with the fields the graph's corpus was read with, and in its format unless the
    /// sample's name or first bytes say another (lines cut from the corpus serve as they are).
    /// For skewed classes: label a hundred or more randomly drawn lines, not balanced ones
    /// (on SwDA's 41 dialog acts 100 such lines did as well as the true shares; with hundreds
    /// of labels, a label's share needs several lines that carry it, so thousands of lines:
    /// a review's 999 skewed labels gained from 1,000 and 5,000 lines, not 100). On near-balanced
    /// classes the default (seed-estimated) priors are better (benches/README.md).
    #[arg(long, value_name = "FILE", conflicts_with = "priors")]
    prior_from: Option<PathBuf>,
    #[command(flatten)]
    job: super::JobArgs,
    /// Also write feature (non-text) nodes: JSONL objects with "feature" instead of
    /// "line"/"id", or TSV rows after the text nodes.
    #[arg(long)]
    all_nodes: bool,
    /// Output file (written atomically); `-` writes to standard output.
    #[arg(long)]
    out: PathBuf,
    /// Also write the seed nodes whose neighbourhood gives another label the most mass
    /// (each neighbour's other neighbours' labels, the seed itself left out), most
    /// contradicted first, one JSON object a line: `line`, `id`, `records`, `seed`,
    /// `seed_share`, `neighbourhood` (the three largest shares). Wrong seeds are among them;
    /// so are right ones where classes overlap. Their count is noted after every run.
    #[arg(long, value_name = "FILE")]
    check_seeds: Option<PathBuf>,
    /// Also write the unlabelled texts worth labelling next, best first: where the
    /// propagation is least sure, weighted by the records each text and its neighbours stand
    /// for, spread so that no two cover the same records, in the class shares of the priors.
    /// One JSON object a line, a seed file once each `"label": null` is filled in: `line` or
    /// `id`, `label`, `suggested` (true: --seeds leaves these labels out of the class priors
    /// it estimates from the seeds), `guess` (the propagated label) and `guess_score`, `gain`
    /// (the uncertain records a label settles), `records`, `text`. Not for bipartite graphs.
    #[arg(long, value_name = "FILE")]
    suggest: Option<PathBuf>,
    /// How many texts --suggest lists (fewer when fewer texts are uncertain).
    #[arg(long, value_name = "N", default_value_t = 100, requires = "suggest",
          value_parser = clap::value_parser!(u32).range(1..))]
    suggest_count: u32,
    /// Output format: jsonl (one object per record) or tsv (Junto-style
    /// `key<TAB>label score … __DUMMY__ unknown`, one row per node; in labels a space is
    /// written `\s`, and in keys and labels `\`, TAB, LF, CR, NUL and `"` as `\\`, `\t`,
    /// `\n`, `\r`, `\0`, `\"`).
    #[arg(long, value_enum, default_value_t = OutputFormat::Jsonl)]
    format: OutputFormat,
    #[command(flatten)]
    cluster: ClusterArgs,
}

/// Where the propagation runs: in this process, or on timely dataflow workers.
#[cfg(feature = "distributed")]
#[derive(Debug, clap::Args)]
struct ClusterArgs {
    /// Propagate on this many timely dataflow worker threads per process, each sweeping its
    /// share of the nodes with the --threads pool (the output is identical to a run without
    /// it). With --hosts, every process runs this many.
    // Signed, as --threads: `-1` gets the range message.
    #[arg(long, value_parser = clap::builder::RangedI64ValueParser::<usize>::new().range(1..=1024))]
    workers: Option<usize>,
    /// Run across processes: a file with one `host:port` per line, one line per process, in
    /// process order. Start the same command, with the same graph and flags, once per
    /// process, each with its own --process; process 0 writes --out.
    #[arg(long, requires = "process", value_name = "FILE")]
    hosts: Option<PathBuf>,
    /// This process's line in --hosts, from 0.
    #[arg(long, requires = "hosts", value_name = "I")]
    process: Option<usize>,
    /// With --hosts: give up, with an error, when the other processes have not all
    /// connected after this many seconds, or when an iteration has not finished after as
    /// many (a process stopped, or an address is another program's); 0: wait for ever.
    #[arg(long, requires = "hosts", value_name = "SECONDS", default_value_t = 300.0,
          value_parser = seconds)]
    connect_timeout: f64,
}

/// A number of seconds: finite and not negative.
#[cfg(feature = "distributed")]
fn seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if (0.0..1e9).contains(&x) => Ok(x),
        _ => Err(format!(
            "expected a number of seconds (0 or more), found {s:?}"
        )),
    }
}

/// Without the `distributed` feature there is nothing to choose.
#[cfg(not(feature = "distributed"))]
#[derive(Debug, clap::Args)]
struct ClusterArgs {}

#[cfg(feature = "distributed")]
use sprig::propagate::Cluster;

/// Without the `distributed` feature no cluster can be named.
#[cfg(not(feature = "distributed"))]
#[derive(Debug)]
enum Cluster {}

impl ClusterArgs {
    /// Reads and checks the flags (before any work): `None` for this process alone.
    fn place(&self) -> anyhow::Result<Option<Cluster>> {
        #[cfg(feature = "distributed")]
        {
            if self.workers.is_none() && self.hosts.is_none() {
                return Ok(None);
            }
            let hosts = match &self.hosts {
                Some(path) => Cluster::read_hosts(path)?,
                None => Vec::new(),
            };
            let cluster = Cluster {
                workers: self.workers.unwrap_or(1),
                hosts,
                process: self.process.unwrap_or(0),
                connect_timeout: (self.connect_timeout > 0.0)
                    .then(|| std::time::Duration::from_secs_f64(self.connect_timeout)),
            };
            cluster.validate()?;
            Ok(Some(cluster))
        }
        #[cfg(not(feature = "distributed"))]
        Ok(None)
    }
}

/// The graph at `path`: on a cluster of several processes, with the edges of this
/// process's rows only.
fn load_graph(path: &std::path::Path, place: &Option<Cluster>) -> anyhow::Result<Graph> {
    if let Some(cluster) = place {
        #[cfg(feature = "distributed")]
        return Ok(Graph::load_rows(path, |n| cluster.rows(n))?);
        #[cfg(not(feature = "distributed"))]
        match *cluster {}
    }
    Ok(Graph::load(path)?)
}

/// Keeps the panics of timely's threads (and of the thread that runs them) off stderr from
/// now on, and returns where the first one is kept. timely stops a cluster whose processes
/// do not match (another `--workers`) or that lost one by panicking in each of its threads:
/// a screen of messages from deep inside timely, before the run's own error, which says
/// what to check. That error quotes the first panic instead. Other threads' panics are
/// printed as before.
#[cfg(feature = "distributed")]
fn quiet_timely_panics() -> Arc<std::sync::Mutex<Option<String>>> {
    let first = Arc::new(std::sync::Mutex::new(None));
    let keep = Arc::clone(&first);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("");
        // timely's networking threads have no name, and with no connect timeout the run is
        // on `main`: a panic raised inside timely's own code is one of these too.
        let in_timely = info.location().is_some_and(|l| l.file().contains("timely"));
        if in_timely || name.starts_with("timely") || name == "sprig-cluster" {
            let mut first = keep.lock().unwrap_or_else(|p| p.into_inner());
            if first.is_none() {
                // `panicked at FILE:LINE:COL:\nMESSAGE`, on one line.
                *first = Some(format!(
                    "thread '{name}' {}",
                    info.to_string().replace('\n', " ")
                ));
            }
        } else {
            previous(info);
        }
    }));
    first
}

/// The note on seeds their neighbourhood contradicts: how many, the first few (the most
/// contradicted) by line, and where the full list goes.
fn conflicts_note(
    graph: &Graph,
    conflicts: &[sprig::propagate::SeedConflict],
    listed: bool,
) -> String {
    const SHOWN: usize = 3;
    let first = graph.first_records();
    let names = graph.labels();
    let mut shown: Vec<String> = conflicts
        .iter()
        .take(SHOWN)
        .map(|c| {
            let at = match first[c.node as usize] {
                Some(r) => match &r.id {
                    Some(id) => format!("line {} (id {})", r.line, id.to_json()),
                    None => format!("line {}", r.line),
                },
                None => format!("feature {:?}", graph.keys()[c.node as usize]),
            };
            let seeded: Vec<&str> = c
                .seeded
                .iter()
                .map(|&l| names[l as usize].as_str())
                .collect();
            let top = &c.neighbours[0];
            format!(
                "{at} seeded {:?}, around it {:?} {:.2}",
                seeded.join(","),
                names[top.label as usize],
                top.score
            )
        })
        .collect();
    if conflicts.len() > SHOWN {
        shown.push(format!("and {} more", conflicts.len() - SHOWN));
    }
    format!(
        "note: {} of {} seed nodes have a neighbourhood that gives another label the most \
         mass ({}): check their labels{}",
        conflicts.len(),
        graph.seed_nodes(),
        shown.join("; "),
        if listed {
            ""
        } else {
            "; --check-seeds FILE lists them"
        }
    )
}

/// What keeping every label costs, for the notes that suggest it: the label buffers grow
/// with K (two of K (label, score) pairs a node), and so do the time and the output's lines.
fn top_k_cost(graph: &Graph, config: &PropagationConfig) -> String {
    let all = graph.labels().len().min(sprig::propagate::MAX_TOP_K);
    if all <= 64 {
        return String::new();
    }
    top_k_cost_from(graph, config.top_k, all)
}

/// Above this, the median seed's edges outweigh its seed term so far that Expander's seeds
/// hold their labels weakly and each iteration moves little: `--tolerance` can then stop
/// the run far from where it leads. (A review's 4-cycle of edge weight 3,000, two seeds:
/// "converged" after 16 iterations with half of every node's mass on unknown, against 3% at
/// the fixed point.) Measured: 4–8 on the kNN graphs of SNIPS, HWU64 and the bundled corpus
/// (cosine weights), 3 on `graphs/toy`, 17 on the karate club's unweighted edges.
const WEAK_SEEDS: f64 = 100.0;

/// A warning when [`WEAK_SEEDS`] is passed: the median over seed nodes of μ2 · weighted
/// degree against μ1 · seed weight (the two terms of the seed's update that compete).
fn weak_seeds_note(graph: &Graph, config: &PropagationConfig) -> Option<String> {
    if config.algorithm != Algorithm::Expander || config.seed_weight <= 0.0 {
        return None;
    }
    let mut mass: Vec<(u32, f64)> = graph
        .seeds()
        .iter()
        .map(|s| (s.node, f64::from(s.weight)))
        .collect();
    mass.sort_unstable_by_key(|&(v, _)| v);
    mass.dedup_by(|b, a| {
        let same = a.0 == b.0;
        if same {
            a.1 += b.1;
        }
        same
    });
    let mut ratios: Vec<f64> = mass
        .iter()
        .map(|&(v, a)| {
            config.smoothness_weight * graph.degree(v as usize) / (config.seed_weight * a)
        })
        .collect();
    ratios.sort_unstable_by(f64::total_cmp);
    let median = *ratios.get(ratios.len() / 2)?;
    (median > WEAK_SEEDS).then(|| {
        format!(
            "a seed's edges outweigh its seed term {median:.0} times over (median \
             over the seeds of --mu2 × weighted degree against --mu1 × seed weight): the seeds \
             hold their labels weakly and the labels spread slowly, so the run may stop \
             (--tolerance) far from where it leads; scale the edge weights down to about 1, \
             or raise --mu1"
        )
    })
}

/// The default K with class priors: every label of most label sets, a bounded cost for more.
const PRIOR_TOP_K: usize = 64;

/// The label buffers of a propagation keeping `k` labels a node: two iterates of a
/// (label, score) pair of 8 bytes per slot.
fn label_buffer_bytes(graph: &Graph, k: usize) -> usize {
    graph.n_nodes() * k * 16
}

/// " (at a cost: …)" of keeping `to` labels a node instead of `from`.
fn top_k_cost_from(graph: &Graph, from: usize, to: usize) -> String {
    let bytes = |k: usize| {
        let b = label_buffer_bytes(graph, k) as f64;
        match b {
            b if b < 1e6 => format!("{:.0} KB", b / 1e3),
            b if b < 1e9 => format!("{:.0} MB", b / 1e6),
            b => format!("{:.1} GB", b / 1e9),
        }
    };
    format!(
        " (at a cost: label buffers of about {} instead of {} for these nodes, and up to {}x \
         the time and the output's size)",
        bytes(to),
        bytes(from),
        to.div_ceil(from.max(1))
    )
}

/// Runs the propagation on `place` (or in this process). `None` in a process other than
/// process 0.
fn propagate_at(
    place: &Option<Cluster>,
    graph: &Arc<Graph>,
    config: &PropagationConfig,
    on_iteration: impl Fn(&IterationStats) + Send + Sync + 'static,
) -> anyhow::Result<Option<Propagation>> {
    if let Some(cluster) = place {
        #[cfg(feature = "distributed")]
        {
            let first_panic = quiet_timely_panics();
            return sprig::propagate::propagate_distributed(
                Arc::clone(graph),
                graph.seeds(),
                config,
                cluster,
                on_iteration,
            )
            .map_err(|e| {
                let first = first_panic.lock().unwrap_or_else(|p| p.into_inner()).take();
                match first {
                    Some(p) => anyhow::anyhow!("{e}; the first of its panics: {p}"),
                    None => e.into(),
                }
            });
        }
        #[cfg(not(feature = "distributed"))]
        match *cluster {}
    }
    Ok(Some(propagate_with(
        graph,
        graph.seeds(),
        config,
        on_iteration,
    )?))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum PriorMode {
    None,
    Cmn,
}

impl PriorMode {
    /// The flag value that stands for `prior` (the library default's, for `--help`).
    fn of(prior: &ClassPrior) -> Self {
        match prior {
            ClassPrior::None => PriorMode::None,
            ClassPrior::Cmn { .. } => PriorMode::Cmn,
        }
    }
}

/// The format to read a `--prior-from` sample in, and why (for messages). The sample's
/// name says, as for any corpus, unless it is the kind of name the graph's corpus was read
/// against (`data.txt` read with `--format csv`: `sample.txt`, cut from it, is CSV too). A
/// name that says nothing (`sample`, `/dev/stdin`) is read as the graph's corpus was,
/// unless its first bytes open a JSON object or a `__label__` prefix; with no corpus to go
/// by (an edge list), its first bytes decide.
fn sample_format(
    path: &std::path::Path,
    head: &[u8],
    built: Option<&CorpusOptions>,
    source: Option<&std::path::Path>,
) -> (CorpusFormat, &'static str) {
    let corpus_by_name = source.and_then(CorpusFormat::from_path);
    let recorded = built.and_then(|b| b.format);
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let head = &head[head.iter().take_while(|b| b.is_ascii_whitespace()).count()..];
    match (CorpusFormat::from_path(path), recorded.or(corpus_by_name)) {
        (Some(own), Some(corpus)) if recorded.is_some() && Some(own) == corpus_by_name => (
            corpus,
            "the --format of the graph's corpus, which has this extension too",
        ),
        (Some(own), _) => (own, "by its name"),
        (None, _) if head.starts_with(b"{") => (CorpusFormat::Jsonl, "by its first bytes"),
        (None, _) if head.starts_with(b"__label__") => (CorpusFormat::Text, "by its first bytes"),
        (None, Some(corpus)) => (corpus, "as the graph's corpus was read"),
        (None, None) => (CorpusFormat::sniff(head), "by its first bytes"),
    }
}

/// What `--prior-from` read of its sample: the graph's labels' shares (add-one smoothed, so
/// that a label the sample missed keeps a small prior instead of being zeroed by CMN), and a
/// note on labelled lines it ignored.
struct SamplePriors {
    priors: std::collections::BTreeMap<String, f64>,
    note: Option<String>,
}

/// Each of the graph's labels' share among the labelled records of `path` (see
/// [`SamplePriors`]).
fn sample_priors(path: &std::path::Path, graph: &Graph) -> anyhow::Result<SamplePriors> {
    let labels = graph.labels();
    // The sample is read with the fields (and, see `sample_format`, the format) the graph's
    // corpus was read with, so that a few lines of that corpus serve as they are. An edge
    // list has no corpus: the defaults.
    let built = graph
        .provenance()
        .get("corpus")
        .and_then(|c| serde_json::from_value::<CorpusOptions>(c.clone()).ok());
    // An edge list's source is its edge file, not a corpus: nothing to go by.
    let source = graph
        .provenance()
        .get("source")
        .and_then(|s| s.as_str())
        .filter(|_| graph.kind() != sprig::graph::GraphKind::Edges)
        .map(std::path::Path::new);
    let input = std::io::BufReader::new(sprig::corpus::open_input(path)?);
    // Read to its first non-blank byte, which the first buffer then holds.
    let (_, mut input) = CorpusFormat::sniff_reader(path, input)?;
    let head = std::io::BufRead::fill_buf(&mut input).map_err(|e| Error::io(path, e))?;
    let (format, how) = sample_format(path, head, built.as_ref(), source);
    // A plain-text sample (`__label__NAME` prefixes) has no fields to name, whatever the
    // graph's corpus called them.
    let fields = match format {
        CorpusFormat::Text => CorpusOptions::default(),
        _ => built.clone().unwrap_or_default(),
    };
    let options = CorpusOptions {
        format: Some(format),
        // The sample's ids serve nothing: whatever its id field holds is not checked.
        id_field: None,
        require_label: true,
        ..fields
    };
    let read_as = match format {
        CorpusFormat::Text => format!("read as text ({how}): `__label__LABEL text` lines"),
        _ => format!(
            "read as {format} ({how}) with text field {:?} and label field {:?}",
            options.text_field, options.label_field
        ),
    };
    // What the sample must look like: for a corpus graph, the corpus's own lines; an edge
    // list's nodes have no text, so any labelled lines in a corpus format serve.
    let edge_list = graph.kind() == sprig::graph::GraphKind::Edges;
    let advice = if edge_list {
        "--prior-from on an edge-list graph reads a labelled sample in a corpus format: JSONL \
         {\"text\": ..., \"label\": ...}, CSV/TSV with \"text\" and \"label\" columns, or \
         `__label__LABEL text` lines"
            .to_owned()
    } else {
        format!(
            "--prior-from reads the fields the graph was built with (sprig graph --text-field \
             {:?} --label-field {:?})",
            options.text_field, options.label_field
        )
    };
    let reader = CorpusReader::from_reader(path, Box::new(input), &options)
        .map_err(|e| match e {
            // The reader's "see --text-field" names a flag of `graph` that an edge list
            // cannot take: the advice says what the sample must hold instead.
            Error::Parse {
                path,
                line,
                message,
            } if edge_list => Error::Parse {
                path,
                line,
                message: match message.split_once("; see --") {
                    Some((before, _)) => before.to_owned(),
                    None => message,
                },
            },
            e => e,
        })
        .with_context(|| format!("{advice}; {read_as}"))?;
    let mut counts: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    let mut records = 0u64;
    for record in reader {
        records += 1;
        if let Some(label) = record.with_context(|| read_as.clone())?.label {
            *counts.entry(label).or_default() += 1;
        }
    }
    // Shares among the graph's labels: a label no seed carries cannot be predicted anyway.
    let n: u64 = labels.iter().filter_map(|l| counts.get(l)).sum();
    let labelled: u64 = counts.values().sum();
    let mut ignored: Vec<(&String, u64)> = counts
        .iter()
        .filter(|(l, _)| labels.binary_search(l).is_err())
        .map(|(l, &c)| (l, c))
        .collect();
    // Most frequent first, then by name: the same note on every run.
    ignored.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    if n == 0 {
        bail!(
            "{}: --prior-from needs lines labelled with the graph's labels; none is ({read_as}: \
             {}, {} labelled, {}){}",
            path.display(),
            super::count(records, "record", "records"),
            labelled,
            if ignored.is_empty() {
                "none with a label".to_owned()
            } else {
                format!("with labels the graph lacks: {}", examples(&ignored))
            },
            super::case_twin(ignored.iter().map(|l| l.0.as_str()), labels, "the graph's")
                .unwrap_or_default()
        );
    }
    let note = (!ignored.is_empty()).then(|| {
        let lines: u64 = ignored.iter().map(|l| l.1).sum();
        format!(
            "--prior-from ignores {} of {} with a label the graph lacks: {}{}",
            super::count(lines, "labelled line", "labelled lines"),
            path.display(),
            examples(&ignored),
            super::case_twin(ignored.iter().map(|l| l.0.as_str()), labels, "the graph's")
                .unwrap_or_default()
        )
    });
    let total = (n + labels.len() as u64) as f64;
    Ok(SamplePriors {
        priors: labels
            .iter()
            .map(|l| {
                let c = counts.get(l).copied().unwrap_or(0);
                (l.clone(), (c + 1) as f64 / total)
            })
            .collect(),
        note,
    })
}

/// `"a" (3), "b" (1)` for the first few `(label, count)` pairs, with how many more.
fn examples(labels: &[(&String, u64)]) -> String {
    const SHOWN: usize = 3;
    let mut out: Vec<String> = labels
        .iter()
        .take(SHOWN)
        .map(|(l, c)| format!("{l:?} ({c})"))
        .collect();
    if labels.len() > SHOWN {
        out.push(format!("and {} more", labels.len() - SHOWN));
    }
    out.join(", ")
}

impl Args {
    /// The library config these flags stand for.
    fn config(&self) -> anyhow::Result<PropagationConfig> {
        // While cmn is the default, `none` here was asked for, and priors would be dropped.
        if self.class_prior == PriorMode::None
            && PriorMode::of(&defaults().class_prior) != PriorMode::None
            && (!self.priors.is_empty() || self.prior_from.is_some())
        {
            bail!("--prior and --prior-from give priors to cmn: they cannot go with --class-prior none");
        }
        let class_prior = if !self.priors.is_empty() {
            let mut map = std::collections::BTreeMap::new();
            for p in &self.priors {
                let Some((label, weight)) = p.rsplit_once('=') else {
                    bail!("--prior {p:?}: expected LABEL=WEIGHT");
                };
                let w: f64 = weight
                    .trim()
                    .parse()
                    .with_context(|| format!("--prior {p:?}: bad weight"))?;
                // Trimmed as the weight is (and as labels are everywhere): `sports = 1`.
                let label = label.trim();
                if map.insert(label.to_owned(), w).is_some() {
                    bail!("--prior {label:?} is given twice");
                }
            }
            ClassPrior::Cmn { priors: Some(map) }
        } else if self.class_prior == PriorMode::Cmn {
            ClassPrior::Cmn { priors: None }
        } else {
            ClassPrior::None
        };
        // A parameter of another algorithm would be ignored: say so instead.
        let given = [
            (
                "--mu1",
                self.mu1.is_some(),
                &[Algorithm::Expander, Algorithm::Mad][..],
            ),
            (
                "--mu2",
                self.mu2.is_some(),
                &[Algorithm::Expander, Algorithm::Mad],
            ),
            (
                "--mu3",
                self.mu3.is_some(),
                &[Algorithm::Expander, Algorithm::Mad],
            ),
            ("--damping", self.damping.is_some(), &[Algorithm::Expander]),
            ("--beta", self.beta.is_some(), &[Algorithm::Mad]),
            ("--alpha", self.alpha.is_some(), &[Algorithm::Spreading]),
        ];
        for (flag, set, used_by) in given {
            if set && !used_by.contains(&self.algorithm) {
                let names: Vec<String> = used_by.iter().map(ToString::to_string).collect();
                bail!(
                    "{flag} is a parameter of --algorithm {}, not of {}",
                    names.join(" or "),
                    self.algorithm
                );
            }
        }
        let d = defaults();
        let config = PropagationConfig {
            algorithm: self.algorithm,
            iterations: self.iterations,
            tolerance: self.tolerance,
            change_norm: self.change_norm,
            top_k: self.top_k.unwrap_or(d.top_k),
            seed_weight: self.mu1.unwrap_or(d.seed_weight),
            smoothness_weight: self.mu2.unwrap_or(d.smoothness_weight),
            prior_weight: self.mu3.unwrap_or(d.prior_weight),
            damping: self.damping,
            beta: self.beta.unwrap_or(d.beta),
            alpha: self.alpha.unwrap_or(d.alpha),
            class_prior,
        };
        config.validate()?;
        Ok(config)
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    super::set_threads(args.job.threads)?;
    let mut inputs = vec![("--graph", args.graph.as_path())];
    inputs.extend(args.seeds.as_deref().map(|p| ("--seeds", p)));
    inputs.extend(args.prior_from.as_deref().map(|p| ("--prior-from", p)));
    super::check_not_an_input(&args.out, &inputs)?;
    if let Some(check) = &args.check_seeds {
        super::check_not_an_input(check, &inputs)?;
        if check == &args.out {
            bail!("--check-seeds and --out name the same file");
        }
    }
    if let Some(suggest) = &args.suggest {
        super::check_not_an_input(suggest, &inputs)?;
        if suggest == &args.out || Some(suggest) == args.check_seeds.as_ref() {
            bail!("--suggest names the same file as --out or --check-seeds");
        }
    }
    let mut config = args.config()?;
    let place = args.cluster.place()?;
    #[cfg(feature = "distributed")]
    if args.cluster.hosts.is_some() && sprig::format::is_stdout(&args.out) {
        // timely prints "awaiting connections" to stdout while the processes connect.
        bail!("--hosts needs --out FILE: timely writes connection messages to stdout");
    }
    #[cfg(feature = "distributed")]
    if args.cluster.hosts.is_some() && args.check_seeds.is_some() {
        // Each process holds its own rows only, and a seed's check reads two steps of edges.
        bail!("--check-seeds needs the whole graph in one process: not with --hosts (--workers is fine)");
    }
    #[cfg(feature = "distributed")]
    if args.cluster.hosts.is_some() && args.suggest.is_some() {
        // Each process holds its own rows only, and a text's gain reads its neighbours'.
        bail!(
            "--suggest needs the whole graph in one process: not with --hosts (--workers is fine)"
        );
    }
    let mut graph = load_graph(&args.graph, &place)?;
    if args.suggest.is_some() && graph.kind() == sprig::graph::GraphKind::Bipartite {
        // Before the propagation, which may be long, rather than after it.
        bail!(
            "--suggest reads a text's neighbours, and {} is bipartite (its neighbours are \
             features): build a kNN graph (the default) to get suggestions",
            args.graph.display()
        );
    }
    // The per-label counts of the seeds not chosen by --suggest, when the file holds such
    // lines and the class priors are to be estimated from the seeds.
    let mut drawn_counts = None;
    if let Some(seeds) = &args.seeds {
        let entries = read_seed_file(seeds)?;
        let estimated = matches!(config.class_prior, ClassPrior::Cmn { priors: None })
            && args.prior_from.is_none();
        let (chosen, drawn): (Vec<_>, Vec<_>) = entries.iter().cloned().partition(|e| e.suggested);
        if estimated && !chosen.is_empty() {
            apply_seed_file(&mut graph, seeds, &drawn)?;
            let names = graph.labels().to_vec();
            let counts = seed_class_counts(names.len(), graph.seeds());
            apply_seed_file(&mut graph, seeds, &chosen)?;
            drawn_counts = Some((names, counts, chosen.len()));
        } else {
            apply_seed_file(&mut graph, seeds, &entries)?;
        }
    }
    let nodes = if args.all_nodes {
        Nodes::All
    } else {
        Nodes::Texts
    };
    if nodes == Nodes::All && graph.n_nodes() == graph.n_text_nodes() {
        anyhow::bail!(
            "--all-nodes writes the feature nodes of a bipartite graph, and {} ({} graph) has none",
            args.graph.display(),
            graph.kind()
        );
    }
    if args.format == OutputFormat::Tsv {
        // Checked before the work: the TSV writer checks too, but only at the end.
        check_tsv(&graph, nodes)?;
    }
    let mut prior_note = None;
    if let Some(path) = &args.prior_from {
        let sample = sample_priors(path, &graph)?;
        config.class_prior = ClassPrior::Cmn {
            priors: Some(sample.priors),
        };
        prior_note = sample.note;
    }

    // Given class priors rescale every label's mass after the last iteration, and cannot
    // raise a label the top-K truncation dropped at a node. Measured (benches/README.md,
    // dev splits, priors from 100 random labelled lines, K = 8 → 64): SwDA (41 labels)
    // 20.9 → 45.5% on average over three samples, a skewed 1,000-label corpus 34.7 →
    // 37.0%; HWU64 (64 near-balanced labels, where sample priors are the wrong tool) 66.0 →
    // 64.3%.
    let prior_top_k = (args.top_k.is_none()
        && matches!(config.class_prior, ClassPrior::Cmn { priors: Some(_) })
        && graph.labels().len() > config.top_k)
        .then(|| graph.labels().len().min(PRIOR_TOP_K));
    if let Some(k) = prior_top_k {
        config.top_k = k;
    }
    let bars = Arc::new(Bars::new(args.job.quiet));
    bars.note(&format!(
        "{}: {}; {} for at most {}",
        args.graph.display(),
        super::graph_size(&graph),
        config.algorithm,
        super::count(config.iterations as u64, "iteration", "iterations")
    ));
    if let Some(warning) = prior_note {
        // Input ignored: a warning, which --quiet does not silence.
        bars.warn(&warning);
    }
    if let Some(warning) = weak_seeds_note(&graph, &config) {
        bars.warn(&warning);
    }
    if let Some(k) = prior_top_k {
        bars.note(&format!(
            "note: with class priors, {} a node (--top-k {k}; the default is {} without \
             priors), so that a prior can raise any of them{}",
            if k == graph.labels().len() {
                format!("all {k} labels are kept")
            } else {
                format!("the top {k} of {} labels are kept", graph.labels().len())
            },
            defaults().top_k,
            // The cost matters from megabytes on; "2 KB instead of 2 KB" says nothing.
            if label_buffer_bytes(&graph, k) >= 1_000_000 {
                top_k_cost_from(&graph, defaults().top_k, k)
            } else {
                String::new()
            }
        ));
    }
    if matches!(config.class_prior, ClassPrior::Cmn { priors: Some(_) })
        && config.top_k < graph.labels().len()
    {
        // Measured on SwDA (41 labels, dev split, priors = train label shares): dev accuracy
        // 23.8% with K = 8 against 47.9% with K = 64. A label truncated away during the
        // iterations cannot be raised by its prior afterwards.
        bars.note(&format!(
            "note: --prior with --top-k {} < {} labels: a label dropped by the top-K truncation \
             cannot be restored by its prior; --top-k {} keeps them all{}",
            config.top_k,
            graph.labels().len(),
            graph.labels().len().min(sprig::propagate::MAX_TOP_K),
            top_k_cost(&graph, &config)
        ));
    }
    if matches!(config.algorithm, Algorithm::Lp | Algorithm::Spreading)
        && config.top_k < graph.labels().len()
    {
        // These two promise scikit-learn's numbers, which keep every label.
        bars.note(&format!(
            "note: --top-k {} < {} labels: each iteration keeps every node's top {} labels, so \
             {} differs from scikit-learn's; --top-k {} keeps them all{}",
            config.top_k,
            graph.labels().len(),
            config.top_k,
            config.algorithm,
            graph.labels().len().min(sprig::propagate::MAX_TOP_K),
            top_k_cost(&graph, &config)
        ));
    }
    let graph = Arc::new(graph);
    // Texts chosen for labelling are no sample of the classes: the priors estimated from the
    // seeds count the others only (a label that only chosen texts carry keeps its count among
    // all the seeds, so that it is not zeroed). Set after the top-K default and the notes
    // above, which are for priors a user gives: these are still the seeds' own. Measured
    // (benches/README.md, thirty-third session): 35 chosen labels counted in the priors took
    // SNIPS from 90.7% to 88.3%; left out, 91.7%.
    if let Some((names, drawn, chosen)) = drawn_counts {
        let all = seed_class_counts(graph.labels().len(), graph.seeds());
        let priors: std::collections::BTreeMap<String, f64> = graph
            .labels()
            .iter()
            .zip(&all)
            .map(|(name, &count)| {
                let kept = names.binary_search(name).map_or(0.0, |l| drawn[l]);
                (name.clone(), if kept > 0.0 { kept } else { count })
            })
            .collect();
        config.class_prior = ClassPrior::Cmn {
            priors: Some(priors),
        };
        bars.note(&format!(
            "note: the class priors leave out the {} of {} marked \"suggested\" (chosen \
             for labelling, not drawn at random)",
            super::count(chosen as u64, "seed", "seeds"),
            args.seeds
                .as_ref()
                .expect("chosen seeds come from --seeds")
                .display()
        ));
    }

    bars.stage("propagate", Some(config.iterations as u64), "iterations");
    let progress = Arc::clone(&bars);
    let result = propagate_at(&place, &graph, &config, move |s| {
        progress.note(&format!(
            "iteration {:>4}: max change {:.3e}, total change {:.3e}, objective {:.6e}",
            s.iteration, s.max_change, s.sum_change, s.objective
        ));
        progress.advance(1);
    })
    .with_context(|| format!("propagating over {}", args.graph.display()))?;
    bars.finish_stage();
    let Some(result) = result else {
        // Process 0 writes its own --out; this process's is not used.
        bars.note("done: process 0 of the cluster writes the output");
        return Ok(());
    };

    let out = &args.out;
    sprig::format::write_atomic(out, |w| {
        match args.format {
            OutputFormat::Jsonl => write_jsonl(w, &graph, &result, nodes),
            OutputFormat::Tsv => write_tsv(w, &graph, &result, nodes),
        }
        .map_err(|e| Error::io(out, e))
    })?;

    // A cluster of processes holds only its own rows: no seed's neighbourhood is whole.
    if graph.is_whole() {
        let seeds = graph.seeds();
        let conflicts = seed_conflicts(&graph, seeds, &result);
        if let Some(path) = &args.check_seeds {
            sprig::format::write_atomic(path, |w| {
                write_seed_conflicts(w, &graph, &result, &conflicts).map_err(|e| Error::io(path, e))
            })?;
        }
        if !conflicts.is_empty() {
            bars.note(&conflicts_note(
                &graph,
                &conflicts,
                args.check_seeds.is_some(),
            ));
        }
        if let Some(path) = &args.suggest {
            let suggestions =
                suggest_labels(&graph, seeds, &config, &result, args.suggest_count as usize)?;
            sprig::format::write_atomic(path, |w| {
                write_suggestions(w, &graph, &result, &suggestions).map_err(|e| Error::io(path, e))
            })?;
            let gain: f64 = suggestions.iter().map(|s| s.gain).sum();
            bars.note(&format!(
                "{}: {} to label next, settling about {gain:.0} uncertain records; fill in \
                 their \"label\" and pass the file to --seeds",
                path.display(),
                super::count(suggestions.len() as u64, "text", "texts"),
            ));
        }
    }

    let r = result.report();
    // Texts whose scores are all too small to print abstain in the file too: say so, or the
    // count would disagree with the file.
    let printed = (0..graph.n_text_nodes())
        .filter(|&v| sprig::propagate::abstains_in_output(&result, v))
        .count();
    let faint = match printed.saturating_sub(r.abstaining_texts) {
        0 => String::new(),
        n => format!(
            " and {n} more whose every score prints as 0.000000 (the file shows them abstaining)"
        ),
    };
    super::summary(
        out,
        format_args!(
            "{}: {}, {}, converged: {}, {} of {} texts abstain{faint} ({} of {} nodes), {:.2}s",
            out.display(),
            r.algorithm,
            super::count(r.iterations as u64, "iteration", "iterations"),
            if r.converged { "yes" } else { "no" },
            r.abstaining_texts,
            graph.n_text_nodes(),
            r.abstaining_nodes,
            graph.n_nodes(),
            r.seconds
        ),
    )?;
    Ok(())
}
