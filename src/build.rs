//! Building graphs: from a corpus (kNN or bipartite) or from a weighted edge list.
//!
//! `build_from_corpus` runs the first stage of the pipeline end to end: read the corpus
//! ([`crate::corpus`]), fold it into distinct text nodes with TF-IDF rows
//! ([`crate::features`]), connect them ([`crate::knn`] or text–feature edges), and attach the
//! corpus labels as seeds. `read_edges` imports a Junto-style edge list so that propagation
//! serves any graph, not only text.

use std::io::Write;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use hashbrown::HashMap;
use serde::{Deserialize, Serialize};

use crate::corpus::{
    next_line, open_input, skip_bom, utf8_line, CorpusFormat, CorpusOptions, CorpusReader, Record,
    RecordId,
};
use crate::error::{Error, Result};
use crate::features::{
    ingest_from, ingest_records, tfidf_in_place, DfFilter, FeatureMatrix, Ingested, Skipped,
};
use crate::graph::{symmetric_csr, Graph, GraphKind, GraphParts, RecordRef};
use crate::knn::search;
use crate::seeds::collect_seeds;
use crate::text::{FeatureConfig, TextConfig, TextPipeline};

/// Progress callbacks for long stages; `()` ignores them.
pub trait Progress: Sync {
    /// A stage starts; `total` is its length in `unit`s when known.
    fn stage(&self, _name: &str, _total: Option<u64>, _unit: &str) {}
    /// `n` more units of the current stage are done.
    fn advance(&self, _n: u64) {}
    /// Sets the absolute position of the current stage.
    fn set_position(&self, _n: u64) {}
    /// The current stage is done.
    fn finish_stage(&self) {}
    /// Advice worth a line on stderr before a long stage (the binary prints it).
    fn note(&self, _message: &str) {}
    /// Whether the caller wants the work abandoned: a *cancel* button, a deadline, a
    /// service shutting down. The long calls that take a `Progress` (the graph builds,
    /// [`crate::train::train`]) ask between small pieces of work (a batch of records, 256
    /// kNN queries, a text projected, an epoch) and, once it has said `true`, return
    /// [`Error::Cancelled`] with no result. Default: never.
    ///
    /// To end training early *and keep* the best epoch so far, return `Break` from
    /// `train`'s per-epoch callback instead ([`crate::control`]).
    fn cancelled(&self) -> bool {
        false
    }
}

impl Progress for () {}

/// A caller's [`Progress`] that remembers a cancellation: once the caller's `cancelled` has
/// said `true`, this one says `true` for the rest of the call, so that a stage cut short is
/// never taken for a finished one (even if the caller's flag is reset meanwhile). Its
/// stages may be named after a prefix ([`Latch::prefixed`]).
pub(crate) struct Latch<'a> {
    inner: &'a dyn Progress,
    hit: AtomicBool,
    prefix: &'a str,
}

impl<'a> Latch<'a> {
    pub(crate) fn new(inner: &'a dyn Progress) -> Self {
        Self::prefixed(inner, "")
    }

    /// A latch whose stages reach the caller as `prefix` + their name (training's
    /// cross-fitted calibration network, whose stages are the model's again).
    pub(crate) fn prefixed(inner: &'a dyn Progress, prefix: &'a str) -> Self {
        Latch {
            inner,
            hit: AtomicBool::new(false),
            prefix,
        }
    }

    /// [`Error::Cancelled`] once the caller has cancelled (asking the caller once more).
    pub(crate) fn check(&self) -> Result<()> {
        if self.cancelled() {
            Err(Error::Cancelled)
        } else {
            Ok(())
        }
    }
}

impl Progress for Latch<'_> {
    fn stage(&self, name: &str, total: Option<u64>, unit: &str) {
        if self.prefix.is_empty() {
            self.inner.stage(name, total, unit);
        } else {
            self.inner
                .stage(&format!("{}{name}", self.prefix), total, unit);
        }
    }
    fn advance(&self, n: u64) {
        self.inner.advance(n);
    }
    fn set_position(&self, n: u64) {
        self.inner.set_position(n);
    }
    fn finish_stage(&self) {
        self.inner.finish_stage();
    }
    fn note(&self, message: &str) {
        self.inner.note(message);
    }
    fn cancelled(&self) -> bool {
        if self.hit.load(Ordering::Relaxed) {
            return true;
        }
        let now = self.inner.cancelled();
        if now {
            self.hit.store(true, Ordering::Relaxed);
        }
        now
    }
}

/// `Break` once `progress` is cancelled: for the callbacks of the stages it runs. (A build
/// needs no [`Latch`]: the read and the kNN search both end at the first `Break`.)
pub(crate) fn flow_of(progress: &dyn Progress) -> ControlFlow<()> {
    if progress.cancelled() {
        ControlFlow::Break(())
    } else {
        ControlFlow::Continue(())
    }
}

/// How texts are connected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GraphConfig {
    /// `knn` (default) or `bipartite`.
    pub kind: GraphKind,
    /// Neighbours per text for `knn` (default 10, as in the peers' benchmarks). The union of
    /// both directions makes a text's degree at least this, or the number of texts it shares
    /// a feature with at `min_sim` or above, whichever is smaller.
    pub k: usize,
    /// Smallest cosine kept as a kNN edge (default 0: any shared feature).
    pub min_sim: f32,
    /// Features seen in fewer distinct texts are dropped (default: 1 for knn, 2 for
    /// bipartite, where a feature of one text links nothing).
    pub min_df: Option<u32>,
    /// Features seen in more than this fraction of distinct texts are dropped (default: 1 for
    /// knn, which searches over all features; 0.3 for bipartite, whose feature nodes would
    /// otherwise be hubs joining unrelated texts).
    pub max_df: Option<f64>,
    /// How thorough the kNN search is: exact, or a budget of postings per text (see
    /// [`crate::knn::knn_bounded`]). Default [`MaxScan::Auto`]. A graph's header records
    /// the resolved choice, a budget only: a header without the field was built exact, and
    /// serde reads a missing field as [`MaxScan::Exact`] (configs written before the field
    /// existed were exact), so every value round-trips.
    #[serde(default = "MaxScan::exact", skip_serializing_if = "MaxScan::is_exact")]
    pub max_scan: MaxScan,
}

impl Default for GraphConfig {
    fn default() -> Self {
        Self {
            kind: GraphKind::Knn,
            k: 10,
            min_sim: 0.0,
            min_df: None,
            max_df: None,
            max_scan: MaxScan::Auto,
        }
    }
}

/// The kNN search's thoroughness ([`GraphConfig::max_scan`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MaxScan {
    /// Exact when the exact search is cheap, else a budget of [`AUTO_BUDGET`]: the exact
    /// search's work is projected from [`AUTO_SAMPLES`] texts spread over the corpus
    /// ([`crate::knn::exact_work`]), and the search is exact when that is at most
    /// [`AUTO_EXACT_WORK`], about 5 s of one core. The exact search's time grows with about
    /// the square of the number of distinct texts, and with their length (13.5k short texts:
    /// a second of one core; 20k texts of 25–60 words: 14–45 s; 50k short texts: 15 s), the
    /// budgeted one's about linearly (50k: 2 s, 1M: 3 minutes); on the shared few-label
    /// benchmarks the budget changed propagation accuracy by at most 0.4 points
    /// (benches/README.md). The choice depends on the texts only, never on timing.
    #[default]
    Auto,
    /// Always exact: the graph equals a brute-force scan of every pair.
    Exact,
    /// A budget of this many postings per text (`>= 1`) for the search's first phase; a
    /// search that stays within it ends exact (and may then scan more), one that reaches it
    /// settles for the best candidates found (see [`crate::knn::knn_bounded`]).
    Budget(u64),
}

/// The projected work ([`crate::knn::exact_work`], in postings-equivalents) up to which
/// [`MaxScan::Auto`] searches exactly: measured at 2.2–3.1 ns a unit of one core, about 5 s.
/// It keeps the exact search where its guarantee is cheap (13.5k short texts: 0.36e9; 20k
/// short texts: 1.9e9) and budgets it where it costs tens of seconds (20k texts of 25–60
/// words: 5e9 to 16e9; SwDA's 49.5k utterances: 6.2e9), whatever the count of texts.
pub const AUTO_EXACT_WORK: u64 = 2_000_000_000;

/// Distinct texts above which an explicit `--max-scan` choice gets a note on what it costs.
const EXACT_NOTE_ABOVE: usize = 20_000;

/// The texts whose exact searches [`MaxScan::Auto`] runs to project the whole search's work:
/// enough that the projection was within 10% of the full count on the corpora measured, few
/// enough to cost about 2% of a graph that stays exact.
pub const AUTO_SAMPLES: usize = 256;

/// [`MaxScan::Auto`]'s budget where the exact search is too costly: on 200k distinct texts
/// it found 82% of the exact graph's edges in a tenth of the time, and on SwDA's 49k (where
/// it cuts most searches: 93% of the edges in a quarter of the time) propagation accuracy
/// was that of the exact graph. On long texts it keeps fewer (20k texts of 50-word windows
/// of English prose: 92%).
pub const AUTO_BUDGET: u64 = 16_384;

impl MaxScan {
    /// The budget for the kNN search over `rows` (`k` neighbours, similarity at least
    /// `min_sim`): `None` is exact. [`MaxScan::Auto`] runs a sample of exact searches to
    /// decide.
    pub fn resolve(self, rows: &FeatureMatrix, k: usize, min_sim: f32) -> Option<u64> {
        self.resolve_with(rows, k, min_sim, AUTO_EXACT_WORK)
    }

    /// [`MaxScan::resolve`] with another limit for [`MaxScan::Auto`] (for the tests).
    fn resolve_with(self, rows: &FeatureMatrix, k: usize, min_sim: f32, limit: u64) -> Option<u64> {
        match self {
            MaxScan::Auto => {
                let work = crate::knn::exact_work(rows, k, min_sim, AUTO_SAMPLES, limit);
                (work > limit).then_some(AUTO_BUDGET)
            }
            MaxScan::Exact => None,
            MaxScan::Budget(n) => Some(n),
        }
    }

    fn is_exact(&self) -> bool {
        *self == MaxScan::Exact
    }

    fn exact() -> Self {
        MaxScan::Exact
    }
}

impl GraphConfig {
    /// The document-frequency filter in force for this kind.
    pub fn df_filter(&self) -> DfFilter {
        let bipartite = self.kind == GraphKind::Bipartite;
        DfFilter {
            min_df: self.min_df.unwrap_or(if bipartite { 2 } else { 1 }),
            max_df: self.max_df.unwrap_or(if bipartite { 0.3 } else { 1.0 }),
        }
    }

    /// Checks the ranges.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`].
    pub fn validate(&self) -> Result<()> {
        if self.kind == GraphKind::Edges {
            return Err(Error::config(
                "kind",
                "edges graphs are imported from an edge list (`build::read_edges`; `sprig graph --edges`)",
            ));
        }
        if self.kind == GraphKind::Knn && self.k == 0 {
            return Err(Error::config("k", "must be at least 1"));
        }
        if self.kind == GraphKind::Knn && self.max_scan == MaxScan::Budget(0) {
            return Err(Error::config("max_scan", "must be at least 1"));
        }
        if !(0.0..=1.0).contains(&self.min_sim) {
            return Err(Error::config(
                "min_sim",
                format!("{} is not in [0, 1]", self.min_sim),
            ));
        }
        self.df_filter().validate()
    }
}

/// Everything `build_from_corpus` needs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildConfig {
    /// How to read the corpus.
    pub corpus: CorpusOptions,
    /// Normalization.
    pub text: TextConfig,
    /// Feature families and weighting.
    pub features: FeatureConfig,
    /// Graph kind and its parameters.
    pub graph: GraphConfig,
    /// Skip bad records instead of stopping at the first.
    pub skip_invalid: bool,
}

/// A built graph and what was skipped on the way.
#[derive(Debug, Clone)]
pub struct Built {
    /// The graph, with the corpus labels as seeds.
    pub graph: Graph,
    /// Records skipped under `skip_invalid`.
    pub skipped: Skipped,
    /// The format the corpus was read in (given, or detected).
    pub format: CorpusFormat,
}

/// Builds a graph from the corpus at `path` (see the module docs).
///
/// [`Progress::cancelled`] is asked after each batch of records read and each block of 256
/// kNN queries; once it says `true`, the build is abandoned.
///
/// # Errors
/// Config errors first, then corpus errors ([`Error::Parse`] naming `file:line`),
/// [`Error::EmptyCorpus`]; [`Error::Cancelled`] when `progress` cancelled it.
pub fn build_from_corpus(
    path: &Path,
    config: &BuildConfig,
    progress: &dyn Progress,
) -> Result<Built> {
    build_with(path, || open_input(path), config, progress)
}

/// [`build_from_corpus`] from any reader: a corpus in memory, say
/// `Box::new(jsonl.as_bytes())`. `path` names the input in errors and in the
/// graph's provenance, and picks the format as a file name would (a name without a known
/// extension is sniffed from the content, unless `config.corpus.format` says).
///
/// # Errors
/// As [`build_from_corpus`].
pub fn build_from_reader(
    path: &Path,
    raw: Box<dyn std::io::Read + Send + '_>,
    config: &BuildConfig,
    progress: &dyn Progress,
) -> Result<Built> {
    build_with(path, || Ok(raw), config, progress)
}

/// Builds a graph from records in memory, as [`build_from_corpus`] does from a file:
/// labelled records are the seeds, identical texts share a node, and the graph's records
/// are these, in order (so [`crate::train::TrainSet::from_propagation`] takes the same
/// slice). `config.corpus` is not read (its field names appear in messages only).
///
/// A record's `line` is its number: from 1, rising (`1..=n` for a list of texts), as a
/// file's lines would. A record with no text left after normalization is an error naming
/// it, unless `config.skip_invalid`: it is then left out of the graph's records
/// ([`crate::graph::Graph::records`] names the lines kept; `from_propagation` still takes
/// the whole slice and passes over the others).
///
/// # Errors
/// Config errors; [`Error::InvalidConfig`] (`records`) for lines that do not rise from 1, a
/// text holding a NUL character, an id that is not valid ([`RecordId::is_valid`]; build
/// ids with `RecordId::from`) or a bad label name (blank, or with a control character);
/// then as [`build_from_corpus`], with the path `<memory>`.
pub fn build_from_records(
    records: &[Record],
    config: &BuildConfig,
    progress: &dyn Progress,
) -> Result<Graph> {
    let bad = |i: usize, why: String| Error::config("records", format!("record {i}: {why}"));
    let mut previous = 0;
    for (i, r) in records.iter().enumerate() {
        if r.line <= previous {
            return Err(bad(
                i,
                format!(
                    "line {} after line {previous}: lines must rise, from 1",
                    r.line
                ),
            ));
        }
        previous = r.line;
        if r.text.contains('\0') {
            return Err(bad(i, "the text holds a NUL character".into()));
        }
        if let Some(id) = r.id.as_ref().filter(|id| !id.is_valid()) {
            // `RecordId("t1".into())` holds no JSON: it would print as null, and two of them
            // would be "duplicate" ids.
            return Err(bad(
                i,
                format!(
                    "id {:?} is not the JSON text of a string or an integer (build ids with \
                     RecordId::from)",
                    id.0
                ),
            ));
        }
        if let Some(why) = r
            .label
            .as_deref()
            .and_then(crate::corpus::label_name_problem)
        {
            return Err(bad(i, why));
        }
    }
    let path = Path::new("<memory>");
    let ingest = |pipeline: &TextPipeline, bipartite| {
        let records = records.iter().cloned().map(Ok);
        let on_progress = |n| {
            progress.set_position(n);
            flow_of(progress)
        };
        let skip = config.skip_invalid;
        ingest_records(
            records,
            path,
            &config.corpus,
            pipeline,
            skip,
            bipartite,
            on_progress,
        )
    };
    Ok(build_ingested(path, ingest, config, progress)?.0)
}

/// Both builds from a reader: the configs are checked before the input is opened.
fn build_with<'a>(
    path: &Path,
    open: impl FnOnce() -> Result<Box<dyn std::io::Read + Send + 'a>>,
    config: &BuildConfig,
    progress: &dyn Progress,
) -> Result<Built> {
    let mut format = None;
    let ingest = |pipeline: &TextPipeline, bipartite| {
        let reader = CorpusReader::from_reader(path, open()?, &config.corpus)?;
        format = Some(reader.format());
        ingest_from(reader, pipeline, config.skip_invalid, bipartite, |n| {
            progress.set_position(n);
            flow_of(progress)
        })
    };
    let (graph, skipped) = build_ingested(path, ingest, config, progress)?;
    Ok(Built {
        graph,
        skipped,
        format: format.expect("a corpus read is in a format"),
    })
}

/// Every build: checks the configs, then `ingest(pipeline, keep feature names)` folds the
/// records into nodes, and the graph is made of them.
fn build_ingested(
    path: &Path,
    ingest: impl FnOnce(&TextPipeline, bool) -> Result<Ingested>,
    config: &BuildConfig,
    progress: &dyn Progress,
) -> Result<(Graph, Skipped)> {
    config.graph.validate()?;
    let pipeline = TextPipeline::new(&config.text, &config.features)?;
    let bipartite = config.graph.kind == GraphKind::Bipartite;
    progress.stage("reading", None, "records");
    let mut ing = ingest(&pipeline, bipartite)?;
    progress.finish_stage();
    let filter = config.graph.df_filter();
    // The raw counts become the weights in their own storage: the largest matrix of the
    // build exists once, through the kNN search (the peak of the build's memory).
    let rows = tfidf_in_place(
        std::mem::take(&mut ing.counts),
        &ing.df,
        &ing.blocks,
        filter,
        config.features.sublinear_tf,
        config.features.char_weight,
    );
    let n_text = rows.n_rows();
    // The config as the header records it: the kNN search resolved for this corpus.
    let mut resolved = GraphConfig {
        max_scan: MaxScan::Exact,
        ..config.graph.clone()
    };
    let mut keys = ing.node_texts;
    let (offsets, neighbors, weights) = match config.graph.kind {
        GraphKind::Bipartite => {
            // Feature nodes follow the text nodes, in feature-id order, kept features only.
            let mut node_of_feature = vec![u32::MAX; rows.n_features];
            let names = ing.names.unwrap_or_default();
            // A block weighted 0 (`--char-weight 0`) gives its features no edge: they are
            // no nodes either, or every one would be an isolated node in the counts.
            let weighted = |f: usize| {
                !(ing.blocks[f] == crate::text::Block::Char && config.features.char_weight == 0.0)
            };
            for (f, &df) in ing.df.iter().enumerate() {
                if filter.keeps(df, n_text) && weighted(f) {
                    node_of_feature[f] = keys.len() as u32;
                    keys.push(names.get(f).cloned().unwrap_or_default());
                }
            }
            let mut triplets = Vec::with_capacity(rows.features.len());
            for r in 0..n_text {
                let (fs, vs) = rows.row(r);
                for (&f, &v) in fs.iter().zip(vs) {
                    triplets.push((r as u32, node_of_feature[f as usize], v.min(1.0)));
                }
            }
            symmetric_csr(keys.len(), triplets)
        }
        _ => {
            let budget = config
                .graph
                .max_scan
                .resolve(&rows, config.graph.k, config.graph.min_sim);
            match (config.graph.max_scan, budget) {
                (MaxScan::Auto, Some(b)) => progress.note(&format!(
                    "note: approximate kNN over {n_text} distinct texts, whose exact search \
                     would take more than about 5 s of one core (projected from \
                     {AUTO_SAMPLES} texts): a budget of {b} postings a text (on 49k short texts \
                     4x faster than exact with 93% of its edges, on 198k 10x with 82%); \
                     `--max-scan exact` for the exact graph"
                )),
                (MaxScan::Exact, _) if n_text > EXACT_NOTE_ABOVE => progress.note(&format!(
                    "note: exact kNN over {n_text} distinct texts: its time grows with about \
                     the square of their number (200k: minutes; 1M: about an hour)"
                )),
                (MaxScan::Budget(b), _) if n_text > EXACT_NOTE_ABOVE => progress.note(&format!(
                    "note: approximate kNN over {n_text} distinct texts (a budget of {b} \
                         postings a text); `--max-scan exact` for the exact graph"
                )),
                _ => {}
            }
            progress.stage("kNN", Some(n_text as u64), "texts");
            let triplets = search(&rows, config.graph.k, config.graph.min_sim, budget, |n| {
                progress.advance(n);
                flow_of(progress)
            })
            .ok_or(Error::Cancelled)?;
            resolved.max_scan = budget.map_or(MaxScan::Exact, MaxScan::Budget);
            progress.finish_stage();
            symmetric_csr(n_text, triplets)
        }
    };
    let (labels, seeds) = collect_seeds(
        ing.records
            .iter()
            .zip(&ing.record_labels)
            .filter_map(|(r, l)| l.map(|l| (r.node, ing.label_names[l as usize].clone(), 1.0f32)))
            .collect::<Vec<_>>(),
    );
    /// What the graph was built from and with, for its header.
    #[derive(Serialize)]
    struct Provenance<'a> {
        source: String,
        corpus: &'a CorpusOptions,
        text: &'a TextConfig,
        features: &'a FeatureConfig,
        graph: &'a GraphConfig,
        df_filter: &'a DfFilter,
        skipped_records: u64,
    }
    // Through the JSON text (`header_value`), so that the configs' f32 values print as given.
    let provenance = crate::format::header_value(&Provenance {
        source: path.display().to_string(),
        corpus: &config.corpus,
        text: &config.text,
        features: &config.features,
        graph: &resolved,
        df_filter: &filter,
        skipped_records: ing.skipped.count,
    });
    let graph = Graph::assemble(
        config.graph.kind,
        GraphParts {
            offsets,
            neighbors,
            weights,
            keys,
            text_nodes: n_text,
            records: ing.records,
            labels,
            seeds,
            provenance,
        },
    )?;
    Ok((graph, ing.skipped))
}

/// What `read_edges` dropped, for the user to see.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EdgeReport {
    /// Lines of the form `a<TAB>a<TAB>w` (self-loops carry no information for propagation).
    pub self_loops: u64,
    /// Edges of weight 0 (no edge).
    pub zero_weight: u64,
    /// Edges given more than once (in either direction); the largest weight is kept.
    pub duplicates: u64,
    /// Lines that start with `#` but hold a TAB, read as edges (a comment has no TAB):
    /// worth a word, since other tools treat every `#` line as a comment.
    pub hash_lines: u64,
}

/// Imports an undirected weighted edge list: `source<TAB>target[<TAB>weight]` per line
/// (weight default 1; blank lines skipped, and `#` comment lines: a line that starts with `#`
/// and holds no TAB, as in seed files, so a node named `#tag` still has its edges). Nodes
/// are numbered in order of first appearance and keep their names (as record ids and node
/// keys). Weights must be finite, `>= 0` and representable in `f32` (a positive weight that
/// would round to 0 is an error); zero-weight edges and self-loops are dropped and counted, a
/// repeated edge keeps its largest weight.
///
/// # Errors
/// [`Error::Parse`] naming the line and field; [`Error::EmptyEdges`] if no node is named.
pub fn read_edges(path: &Path) -> Result<(Graph, EdgeReport)> {
    read_edges_from(path, open_input(path)?)
}

/// [`read_edges`] from any reader; `path` names the input in errors.
///
/// # Errors
/// As [`read_edges`].
pub fn read_edges_from(
    path: &Path,
    raw: Box<dyn std::io::Read + '_>,
) -> Result<(Graph, EdgeReport)> {
    let mut reader = std::io::BufReader::new(raw);
    skip_bom(&mut reader, path)?;
    let mut ids: HashMap<String, u32> = HashMap::new();
    let mut names: Vec<String> = Vec::new();
    let mut first_line: Vec<u64> = Vec::new();
    let mut triplets = Vec::new();
    let mut report = EdgeReport::default();
    let mut buf = Vec::new();
    let mut line = 0u64;
    while next_line(&mut reader, &mut buf, path, &mut line)? {
        let text = utf8_line(&buf, path, line)?;
        // The seed files' comment rule: `#tag<TAB>other<TAB>1` is an edge of node `#tag`
        // (sprig's own `inspect --edges` writes such lines for hashtag texts).
        if text.trim().is_empty() || (text.starts_with('#') && !text.contains('\t')) {
            continue;
        }
        let fields: Vec<&str> = text.split('\t').collect();
        report.hash_lines += u64::from(text.starts_with('#'));
        if !(2..=3).contains(&fields.len()) {
            return Err(Error::parse(
                path,
                line,
                format!(
                    "expected source<TAB>target[<TAB>weight], found {} fields",
                    fields.len()
                ),
            ));
        }
        for (i, name) in fields[..2].iter().enumerate() {
            if name.is_empty() {
                let field = if i == 0 { "source" } else { "target" };
                return Err(Error::parse(
                    path,
                    line,
                    format!("field {field:?} is empty"),
                ));
            }
            if name.contains('\0') {
                return Err(Error::parse(
                    path,
                    line,
                    "node names cannot hold NUL characters",
                ));
            }
        }
        let weight: f64 = match fields.get(2) {
            None => 1.0,
            Some(w) => w.trim().parse().map_err(|_| {
                let hint = if text.starts_with('#') {
                    " (a line starting with # that holds TABs is an edge, not a comment)"
                } else {
                    ""
                };
                Error::parse(
                    path,
                    line,
                    format!("field \"weight\": not a number: {w:?}{hint}"),
                )
            })?,
        };
        // A written value below even f64's range ("1e-400", "-1e-400") parses as ±0: it is
        // no zero weight either.
        let written_nonzero = fields.get(2).is_some_and(|w| {
            w.trim()
                .split(['e', 'E'])
                .next()
                .is_some_and(|m| m.bytes().any(|b| (b'1'..=b'9').contains(&b)))
        });
        let negative = weight < 0.0 || (weight.is_sign_negative() && written_nonzero);
        if !(weight.is_finite() && !negative && weight <= f64::from(f32::MAX)) {
            return Err(Error::parse(
                path,
                line,
                format!(
                    "field \"weight\": expected a number >= 0 and at most f32's largest \
                     (3.4e38), found {}",
                    fields[2].trim()
                ),
            ));
        }
        if (weight > 0.0 || written_nonzero) && weight as f32 == 0.0 {
            // Stored as f32: dropping it as a zero-weight edge would lose an edge the file
            // gives, and keeping it is impossible.
            return Err(Error::parse(
                path,
                line,
                format!(
                    "field \"weight\": {} is positive but below f32's smallest (1.4e-45)",
                    fields[2].trim()
                ),
            ));
        }
        let mut node = |name: &str| -> u32 {
            *ids.entry(name.to_owned()).or_insert_with(|| {
                names.push(name.to_owned());
                first_line.push(line);
                (names.len() - 1) as u32
            })
        };
        let (u, v) = (node(fields[0]), node(fields[1]));
        if u == v {
            report.self_loops += 1;
        } else if weight == 0.0 {
            report.zero_weight += 1;
        } else {
            triplets.push((u.min(v), u.max(v), weight as f32));
        }
    }
    if names.is_empty() {
        return Err(Error::EmptyEdges {
            path: path.to_owned(),
        });
    }
    let before = triplets.len();
    let mut dedup = triplets.clone();
    dedup.sort_by_key(|a| (a.0, a.1));
    dedup.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
    report.duplicates = (before - dedup.len()) as u64;
    let n = names.len();
    let (offsets, neighbors, weights) = symmetric_csr(n, triplets);
    let records = (0..n)
        .map(|i| RecordRef {
            line: first_line[i],
            id: Some(RecordId::from(names[i].as_str())),
            node: i as u32,
            // An edge list names nodes; it has no texts to fingerprint.
            text_hash: None,
        })
        .collect();
    let graph = Graph::assemble(
        GraphKind::Edges,
        GraphParts {
            offsets,
            neighbors,
            weights,
            keys: names,
            text_nodes: n,
            records,
            labels: Vec::new(),
            seeds: Vec::new(),
            provenance: serde_json::json!({ "source": path.display().to_string() }),
        },
    )?;
    Ok((graph, report))
}

/// Writes the graph's undirected edges as `source<TAB>target<TAB>weight`, each edge once
/// (smaller node first), with node keys as names. Tabs and newlines inside keys are replaced
/// by spaces so the file stays well-formed.
///
/// # Errors
/// I/O errors from `out`; [`std::io::ErrorKind::InvalidInput`] for a graph that does not
/// hold every row ([`Graph::load_rows`]), or whose nodes with edges do not all have distinct
/// names (a text of a bipartite graph that reads like a feature key, `u:hello`): an edge
/// list names its nodes, and read back it would merge them. Nothing is written then.
pub fn write_edges(graph: &Graph, out: &mut dyn Write) -> std::io::Result<()> {
    if !graph.is_whole() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "the graph holds rows {:?} of {}: its edges need every row (Graph::load)",
                graph.rows(),
                graph.n_nodes()
            ),
        ));
    }
    let clean = |s: &str| s.replace(['\t', '\n', '\r'], " ");
    let mut named: HashMap<String, usize> = HashMap::new();
    for v in (0..graph.n_nodes()).filter(|&v| !graph.row(v).0.is_empty()) {
        if let Some(first) = named.insert(clean(&graph.keys()[v]), v) {
            let kind = |v: usize| {
                if v < graph.n_text_nodes() {
                    "text"
                } else {
                    "feature"
                }
            };
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "nodes {first} ({}) and {v} ({}) are both named {:?}: an edge list names \
                     its nodes, so read back they would be one node",
                    kind(first),
                    kind(v),
                    clean(&graph.keys()[v])
                ),
            ));
        }
    }
    for v in 0..graph.n_nodes() {
        let (row, ws) = graph.row(v);
        for (&u, &w) in row.iter().zip(ws) {
            if (u as usize) > v {
                writeln!(
                    out,
                    "{}\t{}\t{}",
                    clean(&graph.keys()[v]),
                    clean(&graph.keys()[u as usize]),
                    w
                )?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{in_pool, CancelIn};

    #[test]
    fn a_cancelled_build_returns_no_graph() {
        let records: Vec<Record> = (1..=700u64)
            .map(|i| Record {
                line: i,
                id: None,
                text: format!("note {i} on topic {}", i % 7),
                label: (i <= 7).then(|| format!("t{}", i % 7)),
            })
            .collect();
        let jsonl: String = records
            .iter()
            .map(|r| {
                format!(
                    "{}\n",
                    serde_json::json!({ "text": r.text, "label": r.label })
                )
            })
            .collect();
        let knn = BuildConfig::default();
        let bipartite = BuildConfig {
            graph: GraphConfig {
                kind: GraphKind::Bipartite,
                ..GraphConfig::default()
            },
            ..BuildConfig::default()
        };
        let from_file = |config: &BuildConfig, progress: &dyn Progress| {
            let reader = Box::new(std::io::Cursor::new(jsonl.clone().into_bytes()));
            build_from_reader(Path::new("<memory>"), reader, config, progress).map(|b| b.graph)
        };
        // A progress that is asked but never cancels changes nothing.
        let never = CancelIn::new("", u64::MAX, false);
        let whole = build_from_records(&records, &knn, &()).unwrap();
        assert_eq!(build_from_records(&records, &knn, &never).unwrap(), whole);
        assert_eq!(from_file(&knn, &never).unwrap(), whole);
        assert!(!never.said());
        // 700 texts: one batch of records, three blocks of kNN queries. `once`: the
        // caller's flag says `true` a single time, and the build still gives nothing.
        for once in [false, true] {
            for (config, stage, after) in [
                (&knn, "reading", 0),
                (&knn, "kNN", 0),
                (&knn, "kNN", 1),
                (&knn, "kNN", 2),
                (&bipartite, "reading", 0),
            ] {
                for from_memory in [true, false] {
                    let progress = CancelIn::new(stage, after, once);
                    let got = in_pool(2, || {
                        if from_memory {
                            build_from_records(&records, config, &progress)
                        } else {
                            from_file(config, &progress)
                        }
                    });
                    let at = format!("{stage} {after}, once {once}, memory {from_memory}");
                    assert!(matches!(got, Err(Error::Cancelled)), "{at}: {got:?}");
                    assert!(progress.said(), "{at}");
                }
            }
        }
    }

    #[test]
    fn records_in_memory_build_the_graph_their_file_would() {
        let record = |line, text: &str, label: Option<&str>| Record {
            line,
            id: None,
            text: text.into(),
            label: label.map(String::from),
        };
        let records = vec![
            record(1, "thanks so much", Some("thanks")),
            record(2, "thank you so much", None),
            record(3, "on my way", Some("omw")),
            record(4, "omw, on my way now", None),
            record(5, "thanks so much", None),
        ];
        let mut jsonl = String::new();
        for r in &records {
            let mut o = serde_json::json!({ "text": r.text });
            if let Some(l) = &r.label {
                o["label"] = l.as_str().into();
            }
            jsonl += &format!("{o}\n");
        }
        for kind in [GraphKind::Knn, GraphKind::Bipartite] {
            let config = BuildConfig {
                graph: GraphConfig {
                    kind,
                    ..GraphConfig::default()
                },
                ..BuildConfig::default()
            };
            let from_memory = build_from_records(&records, &config, &()).unwrap();
            // A borrowed reader (no 'static bound on the input).
            let reader = Box::new(jsonl.as_bytes());
            let from_file = build_from_reader(Path::new("<memory>"), reader, &config, &()).unwrap();
            assert_eq!(from_memory, from_file.graph, "{kind:?}");
            assert_eq!(from_memory.seeds().len(), 2);
        }

        let config = BuildConfig::default();
        let refused = |records: &[Record], why: &str| {
            let e = build_from_records(records, &config, &())
                .unwrap_err()
                .to_string();
            assert!(e.contains(why), "{e}");
        };
        let mut edited = records.clone();
        edited[2].line = 2;
        refused(
            &edited,
            "invalid records: record 2: line 2 after line 2: lines must rise",
        );
        edited[0].line = 0;
        refused(&edited, "record 0: line 0 after line 0");
        let mut edited = records.clone();
        edited[1].text = "a\0b".into();
        refused(&edited, "record 1: the text holds a NUL character");
        edited[1].text = "...".into();
        edited[1].label = Some("a\tb".into());
        refused(
            &edited,
            "record 1: label \"a\\tb\" holds a control character",
        );
        // A text with no feature is named by its line, or left out when asked.
        edited[1].label = None;
        edited[1].text = "  ".into();
        refused(&edited, "<memory>:2: field \"text\"");
        let skip = BuildConfig {
            skip_invalid: true,
            ..BuildConfig::default()
        };
        let g = build_from_records(&edited, &skip, &()).unwrap();
        let lines: Vec<u64> = g.records().iter().map(|r| r.line).collect();
        assert_eq!(lines, [1, 3, 4, 5]);

        // Ids built with `From` are kept as given, strings and numbers; a bare string in the
        // field (no JSON quotes) is refused by name, where it used to become a null id.
        let mut with_ids = records.clone();
        with_ids[0].id = Some(RecordId::from("ticket-1"));
        with_ids[1].id = Some(RecordId::from(7u64));
        with_ids[2].id = Some(RecordId::from(String::from("say \"hi\"")));
        let g = build_from_records(&with_ids, &config, &()).unwrap();
        let ids: Vec<serde_json::Value> = g
            .records()
            .iter()
            .map(|r| {
                r.id.as_ref()
                    .map_or(serde_json::Value::Null, RecordId::to_json)
            })
            .collect();
        assert_eq!(
            ids,
            [
                serde_json::json!("ticket-1"),
                serde_json::json!(7),
                serde_json::json!("say \"hi\""),
                serde_json::Value::Null,
                serde_json::Value::Null
            ]
        );
        with_ids[3].id = Some(RecordId("ticket-4".into()));
        refused(
            &with_ids,
            "record 3: id \"ticket-4\" is not the JSON text of a string or an integer",
        );
        with_ids[3].id = Some(RecordId("1.5".into()));
        refused(&with_ids, "record 3: id \"1.5\" is not the JSON text");
    }

    /// The configs a graph's texts were read with come back typed, through a save and load,
    /// so that a model can read text as the graph did; an edge list has none.
    #[test]
    fn a_graph_gives_back_the_text_configs_it_was_built_with() {
        let records: Vec<Record> = (1..)
            .zip(["Thanks so much", "thank you", "on my way", "omw now"])
            .map(|(line, text)| Record {
                line,
                id: None,
                text: text.into(),
                label: (line == 1).then(|| "thanks".to_owned()),
            })
            .collect();
        let config = BuildConfig {
            text: TextConfig {
                lowercase: false,
                ..TextConfig::default()
            },
            features: FeatureConfig {
                char_max: 5,
                skip_bigrams: true,
                ..FeatureConfig::default()
            },
            ..BuildConfig::default()
        };
        let graph = build_from_records(&records, &config, &()).unwrap();
        let back = Graph::from_bytes(Path::new("g.graph"), graph.to_bytes()).unwrap();
        assert_eq!(
            back.text_configs().unwrap(),
            Some((config.text.clone(), config.features.clone()))
        );
        let edges = "a\tb\t1\n";
        let (g, _) = read_edges_from(Path::new("e.tsv"), Box::new(edges.as_bytes())).unwrap();
        assert_eq!(g.text_configs().unwrap(), None);
        let mut odd = graph;
        odd.record_provenance("features", serde_json::json!({ "char_max": "five" }));
        let e = odd.text_configs().unwrap_err().to_string();
        assert!(e.contains("its feature config does not read"), "{e}");
    }

    #[test]
    fn max_scan_resolves_by_projected_work_and_round_trips_through_serde() {
        // Rows that all share feature 0 (so each search does some work), the others distinct.
        let rows = FeatureMatrix {
            offsets: (0..=30u64).map(|r| 2 * r).collect(),
            features: (0..30u32).flat_map(|r| [0, r + 1]).collect(),
            values: vec![std::f32::consts::FRAC_1_SQRT_2; 60],
            n_features: 31,
        };
        // Auto is exact while the projected work is within the limit, else the budget.
        assert_eq!(MaxScan::Auto.resolve(&rows, 3, 0.0), None);
        assert_eq!(MaxScan::Auto.resolve_with(&rows, 3, 0.0, u64::MAX), None);
        assert_eq!(
            MaxScan::Auto.resolve_with(&rows, 3, 0.0, 10),
            Some(AUTO_BUDGET)
        );
        // "Up to" the limit: a projection equal to it stays exact.
        let work = crate::knn::exact_work(&rows, 3, 0.0, AUTO_SAMPLES, u64::MAX);
        assert_eq!(MaxScan::Auto.resolve_with(&rows, 3, 0.0, work), None);
        assert_eq!(
            MaxScan::Auto.resolve_with(&rows, 3, 0.0, work - 1),
            Some(AUTO_BUDGET)
        );
        assert_eq!(MaxScan::Exact.resolve_with(&rows, 3, 0.0, 0), None);
        assert_eq!(MaxScan::Budget(7).resolve(&rows, 3, 0.0), Some(7));
        for m in [MaxScan::Auto, MaxScan::Exact, MaxScan::Budget(64)] {
            let c = GraphConfig {
                max_scan: m,
                ..GraphConfig::default()
            };
            let json = serde_json::to_value(&c).unwrap();
            assert_eq!(
                json.get("max_scan").is_none(),
                m == MaxScan::Exact,
                "{json}"
            );
            let back: GraphConfig = serde_json::from_value(json).unwrap();
            assert_eq!(back, c);
        }
        let bipartite = GraphConfig {
            kind: GraphKind::Bipartite,
            max_scan: MaxScan::Budget(0),
            ..GraphConfig::default()
        };
        assert!(
            bipartite.validate().is_ok(),
            "bipartite graphs ignore max_scan"
        );
        let knn = GraphConfig {
            max_scan: MaxScan::Budget(0),
            ..GraphConfig::default()
        };
        assert!(knn.validate().is_err());
    }

    #[test]
    fn edge_list_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("e.tsv");
        std::fs::write(&p, "a\tb\t0.5\nb\tc\n# note\nc\tc\t1\nb\ta\t0.7\nd\ta\t0\n").unwrap();
        let (g, report) = read_edges(&p).unwrap();
        assert_eq!(g.keys(), &["a", "b", "c", "d"]);
        assert_eq!(g.n_edges(), 2);
        assert_eq!(g.row(0), (&[1u32][..], &[0.7f32][..]));
        assert_eq!(
            report,
            EdgeReport {
                self_loops: 1,
                zero_weight: 1,
                duplicates: 1,
                hash_lines: 0,
            }
        );
        assert_eq!(g.row(3).0.len(), 0, "d keeps its node with no edge");
        let mut out = Vec::new();
        write_edges(&g, &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "a\tb\t0.7\nb\tc\t1\n");
    }

    #[test]
    fn bad_edges_name_line_and_field() {
        let dir = tempfile::tempdir().unwrap();
        for (contents, needle) in [
            ("a\tb\tNaN\n", ":1: field \"weight\""),
            ("a\tb\tinf\n", ":1: field \"weight\""),
            ("a\tb\t-2\n", ":1: field \"weight\""),
            ("a\tb\tx\n", ":1: field \"weight\": not a number"),
            ("\na b 1\n", ":2: expected source<TAB>target"),
            ("\ta\t1\n", ":1: field \"source\" is empty"),
            (
                "a\tb\t1e39\n",
                ":1: field \"weight\": expected a number >= 0 and at most",
            ),
            (
                "a\tb\t1e-46\n",
                ":1: field \"weight\": 1e-46 is positive but below f32's",
            ),
            (
                "a\tb\t1e-400\n",
                ":1: field \"weight\": 1e-400 is positive but below f32's",
            ),
            (
                "a\tb\t-1e-400\n",
                ":1: field \"weight\": expected a number >= 0",
            ),
        ] {
            let p = dir.path().join("e.tsv");
            std::fs::write(&p, contents).unwrap();
            let e = read_edges(&p).unwrap_err().to_string();
            assert!(e.contains(needle), "{contents:?}: {e}");
        }
        let p = dir.path().join("empty.tsv");
        std::fs::write(&p, "").unwrap();
        assert!(matches!(read_edges(&p), Err(Error::EmptyEdges { .. })));
    }

    #[test]
    fn k_must_be_positive_for_knn_graphs_only() {
        // A kNN graph of 0 neighbours a text has no edge to propagate over; a bipartite
        // graph has no use for k (as for max_scan) and must not be refused for it.
        let knn = GraphConfig {
            k: 0,
            ..GraphConfig::default()
        };
        let err = knn.validate().unwrap_err().to_string();
        assert!(err.contains("at least 1"), "{err}");
        let bipartite = GraphConfig {
            kind: GraphKind::Bipartite,
            k: 0,
            ..GraphConfig::default()
        };
        assert!(bipartite.validate().is_ok());
    }

    /// A prefixed latch names its stages after the prefix and passes the rest on as it is;
    /// a latch without one passes the names as they are.
    #[test]
    fn a_prefixed_latch_names_its_stages_after_the_prefix() {
        #[derive(Default)]
        struct Seen(std::sync::Mutex<Vec<String>>);
        impl Progress for Seen {
            fn stage(&self, name: &str, total: Option<u64>, unit: &str) {
                self.0
                    .lock()
                    .unwrap()
                    .push(format!("{name} {total:?} {unit}"));
            }
            fn note(&self, message: &str) {
                self.0.lock().unwrap().push(message.to_owned());
            }
        }
        let seen = Seen::default();
        Latch::prefixed(&seen, "second: ").stage("epoch 1", Some(3), "batches");
        Latch::new(&seen).stage("epoch 1", None, "batches");
        Latch::prefixed(&seen, "second: ").note("as it is");
        assert_eq!(
            seen.0.into_inner().unwrap(),
            [
                "second: epoch 1 Some(3) batches",
                "epoch 1 None batches",
                "as it is"
            ]
        );
    }

    /// A [`Progress`] that keeps the notes.
    #[derive(Default)]
    struct Notes(std::sync::Mutex<Vec<String>>);

    impl Progress for Notes {
        fn note(&self, message: &str) {
            self.0.lock().unwrap().push(message.to_owned());
        }
    }

    /// The notes of a kNN build over `n` distinct one-word texts.
    fn notes_over(n: usize, max_scan: MaxScan) -> Vec<String> {
        // Word unigrams only, a distinct word a text (letters: no digit folding can merge
        // them): no two texts share a feature, so even 20k searches cost next to nothing.
        let word = |mut i: usize| {
            let mut w = String::from("w");
            loop {
                w.push(char::from(b'a' + (i % 26) as u8));
                i /= 26;
                if i == 0 {
                    return w;
                }
            }
        };
        let corpus: String = (0..n).map(|i| word(i) + "\n").collect();
        let config = BuildConfig {
            corpus: CorpusOptions {
                format: Some(CorpusFormat::Text),
                ..CorpusOptions::default()
            },
            features: FeatureConfig {
                bigrams: false,
                char_min: 0,
                ..FeatureConfig::default()
            },
            graph: GraphConfig {
                max_scan,
                ..GraphConfig::default()
            },
            ..BuildConfig::default()
        };
        let notes = Notes::default();
        let built = build_from_reader(
            Path::new("c.txt"),
            Box::new(std::io::Cursor::new(corpus)),
            &config,
            &notes,
        )
        .unwrap();
        assert_eq!(built.graph.n_text_nodes(), n);
        notes.0.into_inner().unwrap()
    }

    #[test]
    fn knn_builds_over_20k_texts_say_what_they_cost() {
        // Up to 20 000 distinct texts a kNN build is quiet; above, it notes on stderr how
        // its time grows (exact) or that it is approximate (a budget).
        assert_eq!(
            notes_over(EXACT_NOTE_ABOVE, MaxScan::Exact),
            Vec::<String>::new()
        );
        assert_eq!(
            notes_over(EXACT_NOTE_ABOVE, MaxScan::Budget(8)),
            Vec::<String>::new()
        );
        let exact = notes_over(EXACT_NOTE_ABOVE + 1, MaxScan::Exact);
        assert_eq!(exact.len(), 1, "{exact:?}");
        assert!(
            exact[0].starts_with("note: exact kNN over 20001 distinct texts"),
            "{exact:?}"
        );
        let budget = notes_over(EXACT_NOTE_ABOVE + 1, MaxScan::Budget(8));
        assert_eq!(budget.len(), 1, "{budget:?}");
        assert!(
            budget[0]
                .starts_with("note: approximate kNN over 20001 distinct texts (a budget of 8 "),
            "{budget:?}"
        );
        // Auto stays exact where the exact search is cheap, and quietly so.
        assert_eq!(
            notes_over(EXACT_NOTE_ABOVE + 1, MaxScan::Auto),
            Vec::<String>::new()
        );
    }

    #[test]
    fn only_the_same_pair_twice_counts_as_a_repeated_edge() {
        // Edges that share one end (a-b, a-c, b-c) are no repeats: `graph --edges` reports
        // "merged 0 repeated edges". One pair given twice (in either order) is one repeat.
        let read = |text: &'static str| {
            read_edges_from(Path::new("e.tsv"), Box::new(text.as_bytes()))
                .unwrap()
                .1
                .duplicates
        };
        assert_eq!(read("a\tb\na\tc\nb\tc\n"), 0);
        assert_eq!(read("a\tb\na\tc\nb\tc\nc\ta\t2\n"), 1);
    }
}
