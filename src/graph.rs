//! The graph: a symmetric sparse weighted graph over texts (and feature nodes), with the
//! records that map onto it and the seed labels — the whole transductive problem in one value.
//!
//! Storage is a hand-rolled CSR (`u64` row offsets, `u32` neighbour ids, `f32` weights)
//! rather than `sprs::CsMatI<f32, u32>`: the three arrays are exactly the file sections, the
//! propagation sweep indexes them directly, and sprs would add a conversion on load and save
//! without adding an operation we use (we never multiply sparse matrices here). So sprs is
//! not a dependency: it built nothing here and cost eight crates (ndarray among them).
//!
//! **Invariants** (checked by [`Graph::validate`], which every load runs, except where said):
//! - `offsets` has `n + 1` non-decreasing entries from 0 to the edge count;
//! - every neighbour id is `< n`, each row is sorted and has no duplicate and no self-loop;
//! - every weight is finite and `> 0` (kNN graphs: in `(0, 1]` by construction, not checked);
//! - the graph is symmetric: `w(u, v) == w(v, u)` (checked by `--verify` / [`Graph::check_symmetric`]);
//! - records point at text nodes (`< text_nodes`); seeds point at nodes and labels that exist,
//!   sorted by (node, label), one per pair ([`merge_seeds`]).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::corpus::RecordId;
use crate::error::{Error, Result};
use crate::format::{self, Artifact, ArtifactWriter, Expect, SectionStream};

/// Magic bytes of graph files.
pub const GRAPH_MAGIC: &[u8; 8] = b"SPRIGGRF";
/// The graph format version this build writes.
pub const GRAPH_FORMAT_VERSION: u32 = 1;
/// The oldest graph format version this build reads.
pub const GRAPH_OLDEST_VERSION: u32 = 1;

const EXPECT: Expect = Expect {
    kind: "graph",
    magic: GRAPH_MAGIC,
    oldest: GRAPH_OLDEST_VERSION,
    newest: GRAPH_FORMAT_VERSION,
};

/// How a graph was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum GraphKind {
    /// Text–text edges to each text's k most similar texts.
    Knn,
    /// Text–feature edges (Smart Reply's response–feature graph).
    Bipartite,
    /// Imported from a weighted edge list.
    Edges,
}

impl std::fmt::Display for GraphKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            GraphKind::Knn => "knn",
            GraphKind::Bipartite => "bipartite",
            GraphKind::Edges => "edges",
        })
    }
}

/// One input record and the node it maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRef {
    /// 1-based line of the record in its input file.
    pub line: u64,
    /// The record's id, if any (for edge-list graphs: the node name).
    pub id: Option<RecordId>,
    /// Its node.
    pub node: u32,
    /// [`crate::hash::record_hash`] of its raw text, for graphs built from a corpus (`None`
    /// for edge lists, and for graphs written before graphs kept it). `sprig propagate`
    /// writes it beside the record's labels, and `sprig train` checks it against the corpus
    /// it joins them to.
    pub text_hash: Option<u32>,
}

impl crate::corpus::Identified for RecordRef {
    fn line(&self) -> u64 {
        self.line
    }
    fn id(&self) -> Option<&RecordId> {
        self.id.as_ref()
    }
}

/// A seed: node `node` carries label `label` with weight `weight` (> 0).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Seed {
    /// The node.
    pub node: u32,
    /// Index into [`Graph::labels`].
    pub label: u32,
    /// Injection weight (1 unless a seeds file says otherwise).
    pub weight: f32,
}

/// Sorts `seeds` by (node, label) and keeps one seed per pair, with the largest weight: a
/// label given twice (two records of one text, or a corpus label and a seed file's) is one
/// seed, not a heavier one.
pub fn merge_seeds(seeds: &mut Vec<Seed>) {
    seeds.sort_by(|a, b| {
        (a.node, a.label)
            .cmp(&(b.node, b.label))
            .then(b.weight.total_cmp(&a.weight))
    });
    seeds.dedup_by(|later, first| later.node == first.node && later.label == first.label);
}

/// A symmetric sparse graph with its records and seeds. See the module docs for invariants.
/// (`Debug` prints a summary: the arrays run to millions of entries.)
#[derive(Clone, PartialEq)]
pub struct Graph {
    pub(crate) kind: GraphKind,
    pub(crate) offsets: Vec<u64>,
    pub(crate) neighbors: Vec<u32>,
    pub(crate) weights: Vec<f32>,
    pub(crate) keys: Vec<String>,
    pub(crate) text_nodes: usize,
    pub(crate) records: Vec<RecordRef>,
    pub(crate) labels: Vec<String>,
    pub(crate) seeds: Vec<Seed>,
    /// Free-form provenance (configs, source file), stored in the header.
    pub(crate) provenance: serde_json::Value,
    /// The rows `neighbors` and `weights` hold: every row, unless the graph was loaded with
    /// [`Graph::load_rows`].
    pub(crate) rows: std::ops::Range<usize>,
    /// `offsets[rows.start]`: where the held edges start in the whole graph's arrays.
    pub(crate) edge_base: u64,
    /// Every row's figures, kept by [`Graph::load_rows`] for the rows it drops.
    pub(crate) row_stats: Option<RowStats>,
}

/// Per-row figures of a graph that does not hold every row ([`Graph::load_rows`]): what
/// propagation needs of the rows a worker does not sweep.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RowStats {
    /// [`row_figures`]' degree of every node.
    pub(crate) degree: Vec<f64>,
    /// [`row_figures`]' entropy of every node.
    pub(crate) entropy: Vec<f64>,
    /// [`Graph::edge_digest`] of the whole graph.
    pub(crate) edges: u64,
}

/// A row's weighted degree `Σ w`, summed in row order in `f64`.
pub(crate) fn row_degree(ws: &[f32]) -> f64 {
    // From +0.0: an empty `f64` sum is −0.0, which would print as the degree of an isolated
    // node. (Any other row sums to the same bits either way.)
    ws.iter().fold(0.0, |d, &w| d + f64::from(w))
}

/// A row's [`row_degree`] `d` and the entropy, in bits, of its transition probabilities
/// `w / d` (0 for an empty row): what MAD's walk needs. Shared by the whole-graph and the
/// row-by-row ([`Graph::load_rows`]) computations, so that both give the same bits.
pub(crate) fn row_figures(ws: &[f32]) -> (f64, f64) {
    let d = row_degree(ws);
    let h = if d > 0.0 {
        ws.iter()
            .map(|&w| {
                let p = f64::from(w) / d;
                -p * p.log2()
            })
            .sum::<f64>()
            .max(0.0)
    } else {
        0.0
    };
    (d, h)
}

/// The parts of a graph, for [`Graph::from_parts`]. The three CSR arrays hold every edge in
/// both directions; [`undirected_csr`] makes them from a list of edges.
#[derive(Debug, Clone, Default)]
pub struct GraphParts {
    /// Row offsets (`n + 1`).
    pub offsets: Vec<u64>,
    /// Neighbour ids.
    pub neighbors: Vec<u32>,
    /// Edge weights.
    pub weights: Vec<f32>,
    /// One key per node: the text, the feature string, or the edge-list name.
    pub keys: Vec<String>,
    /// Nodes `0..text_nodes` are texts (or named nodes); the rest are feature nodes.
    pub text_nodes: usize,
    /// The input records.
    pub records: Vec<RecordRef>,
    /// Label names, sorted.
    pub labels: Vec<String>,
    /// Seeds ([`Graph::from_parts`] sorts and merges them with [`merge_seeds`]).
    pub seeds: Vec<Seed>,
    /// Provenance for the header.
    pub provenance: serde_json::Value,
}

/// The JSON header of a graph file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GraphHeader {
    /// Always `graph`.
    pub kind: String,
    /// The format version.
    pub format_version: u32,
    /// The sprig version that wrote it.
    pub crate_version: String,
    /// How the graph was made.
    pub graph_kind: GraphKind,
    /// Feature hash name, for reproducing the text path.
    pub hash: String,
    /// Label names in id order.
    pub labels: Vec<String>,
    /// Counts.
    pub counts: GraphCounts,
    /// Configs and source that produced the graph.
    #[serde(default)]
    pub provenance: serde_json::Value,
}

/// Counts stored in the header (and printed by `inspect`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphCounts {
    /// Nodes.
    pub nodes: u64,
    /// Text (or named) nodes.
    pub text_nodes: u64,
    /// Undirected edges.
    pub edges: u64,
    /// Input records.
    pub records: u64,
    /// Seed entries.
    pub seeds: u64,
}

impl std::fmt::Debug for Graph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Graph")
            .field("kind", &self.kind)
            .field("nodes", &self.n_nodes())
            .field("text_nodes", &self.text_nodes)
            .field("edges", &self.n_edges())
            .field("rows", &self.rows)
            .field("records", &self.records.len())
            .field("labels", &self.labels.len())
            .field("seeds", &self.seeds.len())
            .finish_non_exhaustive()
    }
}

impl Graph {
    /// Builds a graph from its parts and checks every invariant, symmetry included: every
    /// edge must be listed in both directions with the same weight, as propagation assumes
    /// (a one-way edge would pull labels one way only, and the objective would not be the
    /// one minimized). [`undirected_csr`] makes such arrays from a list of edges.
    ///
    /// # Errors
    /// [`Error::Corrupt`] (path `<memory>`) naming the broken invariant.
    pub fn from_parts(kind: GraphKind, parts: GraphParts) -> Result<Self> {
        let g = Self::assemble(kind, parts)?;
        g.check_symmetric(Path::new("<memory>"))?;
        Ok(g)
    }

    /// [`Graph::from_parts`] without the symmetry check: for arrays symmetric by
    /// construction ([`symmetric_csr`]), and for the tests that propagate over one-way edges.
    pub(crate) fn assemble(kind: GraphKind, mut parts: GraphParts) -> Result<Self> {
        merge_seeds(&mut parts.seeds);
        let n = parts.offsets.len().saturating_sub(1);
        let g = Graph {
            kind,
            offsets: parts.offsets,
            neighbors: parts.neighbors,
            weights: parts.weights,
            keys: parts.keys,
            text_nodes: parts.text_nodes,
            records: parts.records,
            labels: parts.labels,
            seeds: parts.seeds,
            provenance: parts.provenance,
            rows: 0..n,
            edge_base: 0,
            row_stats: None,
        };
        g.validate(Path::new("<memory>"))?;
        Ok(g)
    }

    /// How the graph was made.
    pub fn kind(&self) -> GraphKind {
        self.kind
    }

    /// Number of nodes.
    pub fn n_nodes(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Number of text (or named) nodes: nodes `0..n_text_nodes()`.
    pub fn n_text_nodes(&self) -> usize {
        self.text_nodes
    }

    /// Number of undirected edges (each stored twice).
    pub fn n_edges(&self) -> usize {
        (self.offsets[self.n_nodes()] / 2) as usize
    }

    /// The rows this graph holds: `0..n_nodes()`, unless it was loaded with
    /// [`Graph::load_rows`].
    pub fn rows(&self) -> std::ops::Range<usize> {
        self.rows.clone()
    }

    /// Whether the graph holds every row.
    pub fn is_whole(&self) -> bool {
        self.rows == (0..self.n_nodes())
    }

    /// Neighbour ids and weights of `node`, sorted by id.
    ///
    /// # Panics
    /// If `node >= n_nodes()`, or the graph does not hold row `node` ([`Graph::rows`]): a
    /// bug in the caller.
    #[inline]
    pub fn row(&self, node: usize) -> (&[u32], &[f32]) {
        assert!(
            self.rows.contains(&node),
            "{}",
            if node >= self.n_nodes() {
                format!("node {node} is past the graph's {} nodes", self.n_nodes())
            } else {
                format!(
                    "row {node} is not held: this graph holds rows {:?} (Graph::load_rows)",
                    self.rows
                )
            }
        );
        let a = (self.offsets[node] - self.edge_base) as usize;
        let b = (self.offsets[node + 1] - self.edge_base) as usize;
        (&self.neighbors[a..b], &self.weights[a..b])
    }

    /// Weighted degree of `node` (any node, also one whose row the graph does not hold).
    ///
    /// # Panics
    /// If `node >= n_nodes()`.
    pub fn degree(&self, node: usize) -> f64 {
        match &self.row_stats {
            Some(stats) => stats.degree[node],
            None => row_degree(self.row(node).1),
        }
    }

    /// [`row_figures`] of `node` (any node): computed from its row, or kept by
    /// [`Graph::load_rows`].
    pub(crate) fn figures(&self, node: usize) -> (f64, f64) {
        match &self.row_stats {
            Some(stats) => (stats.degree[node], stats.entropy[node]),
            None => row_figures(self.row(node).1),
        }
    }

    /// XXH3-64 of every row's neighbour ids, then of every weight, as little-endian bytes
    /// (the file's two sections): what tells two graphs with the same row lengths and
    /// degrees apart. Kept by [`Graph::load_rows`], which sees every row as it passes.
    pub(crate) fn edge_digest(&self) -> u64 {
        if let Some(stats) = &self.row_stats {
            return stats.edges;
        }
        let mut digest = xxhash_rust::xxh3::Xxh3::new();
        let mut buf = Vec::with_capacity(1 << 16);
        for chunk in self.neighbors.chunks(1 << 14) {
            buf.clear();
            buf.extend(chunk.iter().flat_map(|u| u.to_le_bytes()));
            digest.update(&buf);
        }
        for chunk in self.weights.chunks(1 << 14) {
            buf.clear();
            buf.extend(chunk.iter().flat_map(|w| w.to_le_bytes()));
            digest.update(&buf);
        }
        digest.digest()
    }

    /// Row offsets (`n + 1`), of every row (also those the graph does not hold).
    pub fn offsets(&self) -> &[u64] {
        &self.offsets
    }

    /// All neighbour ids, row after row (of the rows the graph holds).
    pub fn neighbors(&self) -> &[u32] {
        &self.neighbors
    }

    /// All weights, row after row.
    pub fn weights(&self) -> &[f32] {
        &self.weights
    }

    /// Node keys: the first text of a text node, the feature string of a feature node, the
    /// name of an edge-list node.
    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    /// The input records in input order.
    pub fn records(&self) -> &[RecordRef] {
        &self.records
    }

    /// How many input records each text node stands for (identical texts share a node). A
    /// graph without a record map counts every text node once.
    pub fn records_per_text_node(&self) -> Vec<u32> {
        let n = self.n_text_nodes();
        if self.records.is_empty() {
            return vec![1; n];
        }
        let mut times = vec![0u32; n];
        for r in &self.records {
            if let Some(t) = times.get_mut(r.node as usize) {
                *t = t.saturating_add(1);
            }
        }
        times
    }

    /// Label names (sorted; a [`Seed::label`] indexes this).
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// Seeds, sorted by (node, label).
    pub fn seeds(&self) -> &[Seed] {
        &self.seeds
    }

    /// The number of nodes that carry a seed (a node seeded with several labels counts once).
    pub fn seed_nodes(&self) -> usize {
        // Sorted by node: a node's seeds are adjacent.
        self.seeds
            .iter()
            .enumerate()
            .filter(|(i, s)| *i == 0 || self.seeds[i - 1].node != s.node)
            .count()
    }

    /// The first record (in [`Graph::records`] order) of each node, `None` for a node with
    /// no record (a feature node).
    pub fn first_records(&self) -> Vec<Option<&RecordRef>> {
        let mut first = vec![None; self.n_nodes()];
        for r in &self.records {
            first[r.node as usize].get_or_insert(r);
        }
        first
    }

    /// The seeds for a summary: `N seed nodes`, with the count of (node, label) seeds when
    /// some node has several labels, as in `9 seed nodes (10 seed labels)`.
    pub fn seeds_summary(&self) -> String {
        let nodes = self.seed_nodes();
        // Nodes, not records: identical texts share a node, so `train`, which counts records,
        // can count more seeds.
        let seeds = if nodes == 1 {
            "seed node"
        } else {
            "seed nodes"
        };
        if nodes == self.seeds.len() {
            format!("{nodes} {seeds}")
        } else {
            format!("{nodes} {seeds} ({} seed labels)", self.seeds.len())
        }
    }

    /// Provenance stored in the header.
    pub fn provenance(&self) -> &serde_json::Value {
        &self.provenance
    }

    /// The text and feature configs the graph's texts were read with (from its provenance):
    /// what a [`crate::projection::Projector`] needs to read text as the graph did. `None`
    /// for a graph that records none (an edge list, or one assembled in code).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] (`provenance`) if the provenance holds them but not as this
    /// build reads them.
    pub fn text_configs(
        &self,
    ) -> Result<Option<(crate::text::TextConfig, crate::text::FeatureConfig)>> {
        let (Some(text), Some(features)) =
            (self.provenance.get("text"), self.provenance.get("features"))
        else {
            return Ok(None);
        };
        let bad = |what: &str, e: serde_json::Error| {
            Error::config(
                "provenance",
                format!("its {what} config does not read: {e}"),
            )
        };
        Ok(Some((
            serde_json::from_value(text.clone()).map_err(|e| bad("text", e))?,
            serde_json::from_value(features.clone()).map_err(|e| bad("feature", e))?,
        )))
    }

    /// Records `value` under `key` in the provenance (an object; a graph made without one
    /// gets one), e.g. the seed file applied after the build.
    pub fn record_provenance(&mut self, key: &str, value: serde_json::Value) {
        if !self.provenance.is_object() {
            self.provenance = serde_json::Value::Object(serde_json::Map::new());
        }
        self.provenance[key] = value;
    }

    /// Replaces the seeds and the label names they index, merged by [`merge_seeds`]. The
    /// names must be sorted and distinct (label ids follow sorted names, so that outputs
    /// do not depend on the order seeds were given in); [`crate::seeds::collect_seeds`]
    /// makes both from `(node, label name, weight)` triples.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] (`labels`) for an empty label name, one with a control
    /// character, or names out of order or repeated; (`seeds`) if a seed names a node or
    /// label that does not exist or has a weight that is not finite and positive. The graph
    /// is then unchanged.
    pub fn set_seeds(&mut self, labels: Vec<String>, mut seeds: Vec<Seed>) -> Result<()> {
        if let Some(why) = labels
            .iter()
            .find_map(|l| crate::corpus::label_name_problem(l))
        {
            return Err(Error::config("labels", why));
        }
        if let Some(w) = labels.windows(2).find(|w| w[0] >= w[1]) {
            return Err(Error::config(
                "labels",
                format!(
                    "names must be sorted and distinct: {:?} before {:?} (seeds::collect_seeds \
                     sorts them)",
                    w[0], w[1]
                ),
            ));
        }
        merge_seeds(&mut seeds);
        let old = (
            std::mem::replace(&mut self.labels, labels),
            std::mem::replace(&mut self.seeds, seeds),
        );
        if let Err(e) = self.validate(Path::new("<memory>")) {
            (self.labels, self.seeds) = old;
            // The seeds were given, not read from a damaged file.
            return Err(match e {
                Error::Corrupt { message, .. } => Error::config("seeds", message),
                e => e,
            });
        }
        Ok(())
    }

    /// Checks every invariant but symmetry (see the module docs). Runs on every load.
    ///
    /// # Errors
    /// [`Error::Corrupt`] naming the structure and what is wrong.
    pub fn validate(&self, path: &Path) -> Result<()> {
        let corrupt = |what: &str, message: String| Error::Corrupt {
            path: path.to_owned(),
            what: what.to_owned(),
            message,
        };
        let n = self
            .offsets
            .len()
            .checked_sub(1)
            .ok_or_else(|| corrupt("row_offsets", "must hold at least one entry".into()))?;
        // A whole graph holds every edge; a shard ([`Graph::load_rows`]) those of its rows.
        let held = if self.rows.start <= self.rows.end && self.rows.end <= n {
            self.offsets[self.rows.end].checked_sub(self.offsets[self.rows.start])
        } else {
            None
        };
        let whole = self.rows == (0..n);
        if self.offsets[0] != 0
            || (whole && self.offsets[n] != self.neighbors.len() as u64)
            || held != Some(self.neighbors.len() as u64)
            || self.edge_base != self.offsets[self.rows.start.min(n)]
        {
            return Err(corrupt(
                "row_offsets",
                format!(
                    "must run from 0 to the edge count {}, found {}..{}",
                    self.neighbors.len(),
                    self.offsets[0],
                    self.offsets[n]
                ),
            ));
        }
        if self.weights.len() != self.neighbors.len() {
            return Err(corrupt(
                "weights",
                format!(
                    "{} weights for {} edges",
                    self.weights.len(),
                    self.neighbors.len()
                ),
            ));
        }
        if self.keys.len() != n {
            return Err(corrupt(
                "node_keys",
                format!("{} keys for {n} nodes", self.keys.len()),
            ));
        }
        if self.text_nodes > n {
            return Err(corrupt(
                "header",
                format!("{} text nodes of {n}", self.text_nodes),
            ));
        }
        // All offsets first: monotone offsets ending at the edge count keep every row slice
        // in bounds (fuzzing found a file whose second offset pointed past the end).
        if let Some(v) = (0..n).find(|&v| self.offsets[v + 1] < self.offsets[v]) {
            return Err(corrupt("row_offsets", format!("decrease at node {v}")));
        }
        for v in self.rows.clone() {
            let (row, ws) = self.row(v);
            for (i, (&u, &w)) in row.iter().zip(ws).enumerate() {
                if u as usize >= n {
                    return Err(corrupt(
                        "neighbors",
                        format!("node {v} links to {u}, past {n} nodes"),
                    ));
                }
                if u as usize == v {
                    return Err(corrupt("neighbors", format!("self-loop at node {v}")));
                }
                if i > 0 && row[i - 1] >= u {
                    return Err(corrupt(
                        "neighbors",
                        format!("row {v} is not strictly sorted"),
                    ));
                }
                if !(w.is_finite() && w > 0.0) {
                    return Err(corrupt("weights", format!("edge {v}-{u} has weight {w}")));
                }
            }
        }
        // Label ids follow the sorted names (outputs break ties by id as by name, and
        // priors are looked up by binary search); two ids for one name could not be told
        // apart in seeds and outputs.
        if let Some(w) = self.labels.windows(2).find(|w| w[0] >= w[1]) {
            let why = if w[0] == w[1] {
                format!("{:?} is listed twice", w[0])
            } else {
                format!("not sorted: {:?} before {:?}", w[0], w[1])
            };
            return Err(corrupt("labels", why));
        }
        // Outputs write one row per record in this order, and train joins a corpus's
        // records on their line; an edge list's nodes are records of the line where they
        // first appear, two to a line at most.
        let edges = self.kind == GraphKind::Edges;
        if let Some(w) = self
            .records
            .windows(2)
            .find(|w| w[0].line > w[1].line || (w[0].line == w[1].line && !edges))
        {
            return Err(corrupt(
                "records",
                format!("line {} after line {}", w[1].line, w[0].line),
            ));
        }
        for r in &self.records {
            if r.line == 0 {
                return Err(corrupt("records", "line 0 (lines are 1-based)".into()));
            }
            if r.node as usize >= self.text_nodes {
                return Err(corrupt(
                    "records",
                    format!(
                        "line {} maps to node {}, past {} text nodes",
                        r.line, r.node, self.text_nodes
                    ),
                ));
            }
        }
        if let Some(w) = self
            .seeds
            .windows(2)
            .find(|w| (w[0].node, w[0].label) >= (w[1].node, w[1].label))
        {
            return Err(corrupt(
                "seeds",
                format!(
                    "seeds must be sorted by (node, label), one per pair: (node {}, label {}) \
                     then (node {}, label {}); see graph::merge_seeds",
                    w[0].node, w[0].label, w[1].node, w[1].label
                ),
            ));
        }
        for s in &self.seeds {
            if s.node as usize >= n || s.label as usize >= self.labels.len() {
                return Err(corrupt(
                    "seeds",
                    format!("seed (node {}, label {}) out of range", s.node, s.label),
                ));
            }
            if !(s.weight.is_finite() && s.weight > 0.0) {
                return Err(corrupt(
                    "seeds",
                    format!("seed of node {} has weight {}", s.node, s.weight),
                ));
            }
        }
        Ok(())
    }

    /// Checks that every edge appears in both directions with the same weight.
    ///
    /// # Errors
    /// [`Error::Corrupt`] naming the first asymmetric edge.
    pub fn check_symmetric(&self, path: &Path) -> Result<()> {
        if !self.is_whole() {
            return Err(Error::config(
                "graph",
                format!(
                    "holds rows {:?} of {}: symmetry needs every row (Graph::load)",
                    self.rows,
                    self.n_nodes()
                ),
            ));
        }
        for v in 0..self.n_nodes() {
            let (row, ws) = self.row(v);
            for (&u, &w) in row.iter().zip(ws) {
                let (back, bw) = self.row(u as usize);
                match back.binary_search(&(v as u32)) {
                    Ok(i) if bw[i] == w => {}
                    Ok(i) => {
                        return Err(Error::Corrupt {
                            path: path.to_owned(),
                            what: "weights".into(),
                            message: format!("w({v},{u}) = {w} but w({u},{v}) = {}", bw[i]),
                        })
                    }
                    Err(_) => {
                        return Err(Error::Corrupt {
                            path: path.to_owned(),
                            what: "neighbors".into(),
                            message: format!("edge {v}->{u} has no reverse edge"),
                        })
                    }
                }
            }
        }
        Ok(())
    }

    /// The header this graph is saved with.
    pub fn header(&self) -> GraphHeader {
        GraphHeader {
            kind: "graph".into(),
            format_version: GRAPH_FORMAT_VERSION,
            crate_version: env!("CARGO_PKG_VERSION").into(),
            graph_kind: self.kind,
            hash: crate::hash::header_name(),
            labels: self.labels.clone(),
            counts: GraphCounts {
                nodes: self.n_nodes() as u64,
                text_nodes: self.text_nodes as u64,
                edges: self.n_edges() as u64,
                records: self.records.len() as u64,
                seeds: self.seeds.len() as u64,
            },
            provenance: self.provenance.clone(),
        }
    }

    /// Serializes the graph file (see [`crate::format`]).
    ///
    /// # Panics
    /// If the graph does not hold every row ([`Graph::load_rows`]): a shard is not a graph
    /// file.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_to(&mut out)
            .expect("writing to memory cannot fail");
        out
    }

    /// Writes the graph file to `out`, section by section from the graph's own arrays (no
    /// copy of the file is made).
    ///
    /// # Errors
    /// Any error of `out`.
    ///
    /// # Panics
    /// As [`Graph::to_bytes`].
    pub fn write_to(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        assert!(
            self.is_whole(),
            "a graph loaded with load_rows ({:?} of {} rows) cannot be saved",
            self.rows,
            self.n_nodes()
        );
        let n = self.n_nodes() as u64;
        let e = self.neighbors.len() as u64;
        let r = self.records.len() as u64;
        let lines: Vec<u64> = self.records.iter().map(|x| x.line).collect();
        let nodes: Vec<u32> = self.records.iter().map(|x| x.node).collect();
        let ids: Vec<&str> = self
            .records
            .iter()
            .map(|x| x.id.as_ref().map_or("", |i| i.0.as_str()))
            .collect();
        // Written only when every record has one; a reader that predates the section skips
        // it (sections are found by name), so the format version stays.
        let text_hashes: Option<Vec<u32>> = self.records.iter().map(|x| x.text_hash).collect();
        let s = self.seeds.len() as u64;
        let sn: Vec<u32> = self.seeds.iter().map(|x| x.node).collect();
        let sl: Vec<u32> = self.seeds.iter().map(|x| x.label).collect();
        let sw: Vec<f32> = self.seeds.iter().map(|x| x.weight).collect();
        let mut w = ArtifactWriter::new();
        w.add_u64("row_offsets", &[n + 1], &self.offsets);
        w.add_u32("neighbors", &[e], &self.neighbors);
        w.add_f32("weights", &[e], &self.weights);
        w.add_strings("node_keys", &self.keys);
        w.add_u64("record_lines", &[r], &lines);
        w.add_u32("record_nodes", &[r], &nodes);
        w.add_strings("record_ids", &ids);
        if let Some(hashes) = text_hashes.as_deref().filter(|h| !h.is_empty()) {
            w.add_u32(TEXT_HASHES, &[r], hashes);
        }
        w.add_u32("seed_nodes", &[s], &sn);
        w.add_u32("seed_labels", &[s], &sl);
        w.add_f32("seed_weights", &[s], &sw);
        let header = serde_json::to_value(self.header()).expect("header serializes");
        w.write_to(GRAPH_MAGIC, GRAPH_FORMAT_VERSION, header, out)
    }

    /// Writes the graph atomically to `path`, streaming it (the peak memory is the graph's).
    ///
    /// # Errors
    /// [`Error::Io`] naming `path`.
    ///
    /// # Panics
    /// As [`Graph::to_bytes`].
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        format::write_atomic(path, |w| self.write_to(w).map_err(|e| Error::io(path, e)))
    }

    /// Reads and verifies a graph file: container checks, then every invariant of
    /// [`Graph::validate`]. The file is read front to back and decoded as it goes, so the
    /// peak memory is the graph's, not the graph's plus the file's.
    ///
    /// # Errors
    /// Any container error of [`crate::format`], or [`Error::Corrupt`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        Ok(Self::read(path.as_ref(), &mut |_| None)?.0)
    }

    /// Reads and verifies a graph file, keeping the edges of the rows `rows(n)` only (`n`
    /// the node count, read first): what a process of a distributed run needs
    /// (`propagate::Cluster::rows`, with the `distributed` feature). Everything else is kept:
    /// every row's offsets, each row's degree and walk entropy (what propagation needs of the
    /// rows it does not sweep, 16 bytes a node), the keys, records, labels and seeds. The
    /// whole file is still read and its checksum verified.
    ///
    /// Such a graph answers [`Graph::row`] for its rows only, propagates only through
    /// `propagate::propagate_distributed` (the `distributed` feature), and cannot be saved.
    ///
    /// # Errors
    /// As [`Graph::load`].
    pub fn load_rows(
        path: impl AsRef<Path>,
        rows: impl FnOnce(usize) -> std::ops::Range<usize>,
    ) -> Result<Self> {
        let mut rows = Some(rows);
        Ok(Self::read(path.as_ref(), &mut |n| rows.take().map(|f| f(n)))?.0)
    }

    /// Reads and verifies a graph file, and returns it with the header as the file holds it
    /// (its format version and the sprig version that wrote it, which [`Graph::header`], the
    /// header this build would write, does not keep).
    ///
    /// # Errors
    /// As [`Graph::load`].
    pub fn load_with_header(path: impl AsRef<Path>) -> Result<(Self, GraphHeader)> {
        Self::read(path.as_ref(), &mut |_| None)
    }

    /// The streaming read of [`Graph::load`] and [`Graph::load_rows`].
    fn read(
        path: &Path,
        rows: &mut dyn FnMut(usize) -> Option<std::ops::Range<usize>>,
    ) -> Result<(Self, GraphHeader)> {
        let mut s = SectionStream::open(path, EXPECT)?;
        let hashes_in_order = s.element_count(TEXT_HASHES).is_none()
            || s.in_order(&["record_ids.bytes", TEXT_HASHES, "seed_nodes"]);
        if !(s.in_order(&SECTION_ORDER) && hashes_in_order) {
            // Another writer's order (or a missing section): read whole, as `from_bytes`
            // would, and cut the rows out afterwards.
            let a = s.into_artifact(EXPECT)?;
            let g = Self::from_artifact(&a)?;
            let g = match rows(g.n_nodes()) {
                Some(r) => g.keep_rows(r),
                None => g,
            };
            return Ok((g, a.header_as()?));
        }
        // Decoded now, judged after the checksum (a damaged header is a damaged file).
        let header = s.header_as::<GraphHeader>();
        let raw = match RawGraph::stream(&mut s, rows) {
            Ok(raw) => raw,
            // The section table led there, and it is only trusted once the checksum is.
            Err(e) => return Err(s.checksum_first(e)),
        };
        // Nothing that can fail is decoded before the checksum says the bytes are the ones
        // written.
        s.finish()?;
        let header = header?;
        Ok((raw.assemble(path, header.clone())?, header))
    }

    /// The graph with the edges of rows `rows` (clamped to the graph) only, and every row's
    /// figures: what [`Graph::load_rows`] keeps, from a whole graph.
    fn keep_rows(mut self, rows: std::ops::Range<usize>) -> Self {
        let rows = clamp_rows(rows, self.n_nodes());
        let (degree, entropy) = (0..self.n_nodes())
            .map(|v| row_figures(self.row(v).1))
            .unzip();
        let edges = self.edge_digest();
        let (a, b) = (self.offsets[rows.start], self.offsets[rows.end]);
        self.neighbors = self.neighbors[a as usize..b as usize].to_vec();
        self.weights = self.weights[a as usize..b as usize].to_vec();
        self.rows = rows;
        self.edge_base = a;
        self.row_stats = Some(RowStats {
            degree,
            entropy,
            edges,
        });
        self
    }

    /// Verifies and decodes the bytes of a graph file; `path` names it in errors.
    ///
    /// # Errors
    /// As [`Graph::load`].
    pub fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<Self> {
        Self::from_artifact(&Artifact::parse(path, bytes, EXPECT)?)
    }

    /// Decodes a verified artifact.
    ///
    /// # Errors
    /// As [`Graph::load`].
    pub fn from_artifact(a: &Artifact) -> Result<Self> {
        let header = a.header_as()?;
        let offsets = a.u64s("row_offsets")?;
        let n = offsets.len().saturating_sub(1);
        RawGraph {
            offsets,
            neighbors: a.u32s("neighbors")?,
            weights: a.f32s("weights")?,
            keys: a.raw_strings("node_keys")?,
            lines: a.u64s("record_lines")?,
            nodes: a.u32s("record_nodes")?,
            ids: a.raw_strings("record_ids")?,
            text_hashes: if a.sections().iter().any(|x| x.name == TEXT_HASHES) {
                Some(a.u32s(TEXT_HASHES)?)
            } else {
                None
            },
            seeds: (
                a.u32s("seed_nodes")?,
                a.u32s("seed_labels")?,
                a.f32s("seed_weights")?,
            ),
            rows: 0..n,
            edge_base: 0,
            row_stats: None,
        }
        .assemble(a.path(), header)
    }
}

/// The sections of a graph file, in the order sprig writes them (and the streaming reader
/// reads them).
const SECTION_ORDER: [&str; 12] = [
    "row_offsets",
    "neighbors",
    "weights",
    "node_keys.offsets",
    "node_keys.bytes",
    "record_lines",
    "record_nodes",
    "record_ids.offsets",
    "record_ids.bytes",
    "seed_nodes",
    "seed_labels",
    "seed_weights",
];

/// The optional section of the records' text hashes, written between `record_ids.bytes` and
/// `seed_nodes`.
const TEXT_HASHES: &str = "record_text_hashes";

/// `rows` within `0..n`, empty when backwards.
fn clamp_rows(rows: std::ops::Range<usize>, n: usize) -> std::ops::Range<usize> {
    let start = rows.start.min(n);
    start..rows.end.min(n).max(start)
}

/// A graph file's sections: numbers decoded, strings still raw (offsets and bytes; their
/// checks can fail, so the streaming reader leaves them until the checksum is verified).
struct RawGraph {
    offsets: Vec<u64>,
    neighbors: Vec<u32>,
    weights: Vec<f32>,
    keys: (Vec<u64>, Vec<u8>),
    lines: Vec<u64>,
    nodes: Vec<u32>,
    ids: (Vec<u64>, Vec<u8>),
    /// The records' text hashes, if the file has them.
    text_hashes: Option<Vec<u32>>,
    /// Seed nodes, labels and weights.
    seeds: (Vec<u32>, Vec<u32>, Vec<f32>),
    rows: std::ops::Range<usize>,
    edge_base: u64,
    row_stats: Option<RowStats>,
}

impl RawGraph {
    /// Reads every section of `s`, keeping the edges of rows `rows(n)` only when it names
    /// some (and every row's figures then).
    fn stream(
        s: &mut SectionStream,
        rows: &mut dyn FnMut(usize) -> Option<std::ops::Range<usize>>,
    ) -> Result<Self> {
        let offsets = s.u64s("row_offsets")?;
        let n = offsets.len().saturating_sub(1);
        let pick = rows(n);
        // Rows are cut out only where the offsets can cut them: monotone from 0 to the edge
        // count. Otherwise the file is damaged (checksum) or invalid (`validate`), and
        // reading it whole reports which, as `load` does.
        let edges = s.element_count("neighbors");
        let cuttable = offsets.first() == Some(&0)
            && offsets.windows(2).all(|w| w[0] <= w[1])
            && offsets.last().copied() == edges
            && s.element_count("weights") == edges;
        let (neighbors, weights, row_stats, rows, edge_base) =
            match pick.filter(|_| cuttable).map(|r| clamp_rows(r, n)) {
                Some(rows) => {
                    let held = offsets[rows.start]..offsets[rows.end];
                    let mut digest = xxhash_rust::xxh3::Xxh3::new();
                    let neighbors =
                        s.u32s_digested("neighbors", Some(held.clone()), &mut digest)?;
                    let mut stats = RowStats {
                        degree: Vec::with_capacity(n),
                        entropy: Vec::with_capacity(n),
                        edges: 0,
                    };
                    let weights =
                        s.f32_rows("weights", &offsets, rows.clone(), &mut digest, |_, ws| {
                            let (d, h) = row_figures(ws);
                            stats.degree.push(d);
                            stats.entropy.push(h);
                        })?;
                    stats.edges = digest.digest();
                    (neighbors, weights, Some(stats), rows, held.start)
                }
                None => {
                    let neighbors = s.u32s("neighbors", None)?;
                    (neighbors, s.f32s("weights", None)?, None, 0..n, 0)
                }
            };
        Ok(RawGraph {
            offsets,
            neighbors,
            weights,
            keys: s.raw_strings("node_keys")?,
            lines: s.u64s("record_lines")?,
            nodes: s.u32s("record_nodes", None)?,
            ids: s.raw_strings("record_ids")?,
            text_hashes: match s.element_count(TEXT_HASHES) {
                Some(_) => Some(s.u32s(TEXT_HASHES, None)?),
                None => None,
            },
            seeds: (
                s.u32s("seed_nodes", None)?,
                s.u32s("seed_labels", None)?,
                s.f32s("seed_weights", None)?,
            ),
            rows,
            edge_base,
            row_stats,
        })
    }

    /// The graph, checked by [`Graph::validate`]; `path` names the file in errors.
    fn assemble(self, path: &Path, header: GraphHeader) -> Result<Graph> {
        let RawGraph {
            offsets,
            neighbors,
            weights,
            keys,
            lines,
            nodes,
            ids,
            text_hashes,
            seeds: (sn, sl, sw),
            rows,
            edge_base,
            row_stats,
        } = self;
        let keys = format::decode_strings(path, "node_keys", &keys.0, &keys.1)?;
        let ids = format::decode_strings(path, "record_ids", &ids.0, &ids.1)?;
        let corrupt = |what: &str, message: String| Error::Corrupt {
            path: path.to_owned(),
            what: what.to_owned(),
            message,
        };
        if lines.len() != nodes.len()
            || ids.len() != nodes.len()
            || text_hashes.as_ref().is_some_and(|h| h.len() != nodes.len())
        {
            return Err(corrupt(
                "records",
                "record sections differ in length".into(),
            ));
        }
        let mut text_hashes = text_hashes.map(Vec::into_iter);
        let records: Vec<RecordRef> = lines
            .into_iter()
            .zip(nodes)
            .zip(ids)
            .map(|((line, node), id)| RecordRef {
                line,
                id: (!id.is_empty()).then_some(RecordId(id)),
                node,
                text_hash: text_hashes.as_mut().and_then(Iterator::next),
            })
            .collect();
        if sn.len() != sl.len() || sn.len() != sw.len() {
            return Err(corrupt("seeds", "seed sections differ in length".into()));
        }
        // The header's counts are what `inspect` prints: they must be the sections'.
        let held = GraphCounts {
            nodes: offsets.len().saturating_sub(1) as u64,
            text_nodes: header.counts.text_nodes,
            edges: offsets.last().map_or(0, |e| e / 2),
            records: records.len() as u64,
            seeds: sn.len() as u64,
        };
        if held != header.counts {
            return Err(corrupt(
                "header",
                format!(
                    "its counts ({:?}) are not those of the sections ({held:?})",
                    header.counts
                ),
            ));
        }
        let mut seeds: Vec<Seed> = sn
            .into_iter()
            .zip(sl)
            .zip(sw)
            .map(|((node, label), weight)| Seed {
                node,
                label,
                weight,
            })
            .collect();
        // Merged as every writer merges them, so that a file from a version that stored
        // them otherwise still loads (with one weight per (node, label), as propagation now
        // reads them).
        merge_seeds(&mut seeds);
        let text_nodes = usize::try_from(header.counts.text_nodes)
            .map_err(|_| corrupt("header", "text node count overflows".into()))?;
        let g = Graph {
            kind: header.graph_kind,
            offsets,
            neighbors,
            weights,
            keys,
            text_nodes,
            records,
            labels: header.labels,
            seeds,
            provenance: header.provenance,
            rows,
            edge_base,
            row_stats,
        };
        g.validate(path)?;
        Ok(g)
    }
}

/// The CSR arrays ([`GraphParts`]' `offsets`, `neighbors` and `weights`) of the undirected
/// graph over nodes `0..n` with the edges `(u, v, weight)`: each edge is stored in both
/// directions, in any order given; an edge given twice (either way round) keeps its larger
/// weight. Deterministic: the arrays depend only on the set of edges, not their order.
///
/// # Errors
/// [`Error::InvalidConfig`] (`edges`) naming the first edge with a node `>= n`, a
/// self-loop, or a weight that is not finite and positive.
pub fn undirected_csr(
    n: usize,
    edges: Vec<(u32, u32, f32)>,
) -> Result<(Vec<u64>, Vec<u32>, Vec<f32>)> {
    if let Some((i, &(u, v, w))) = edges.iter().enumerate().find(|(_, &(u, v, w))| {
        u as usize >= n || v as usize >= n || u == v || !(w.is_finite() && w > 0.0)
    }) {
        let why = if u == v {
            "a self-loop".to_owned()
        } else if u as usize >= n || v as usize >= n {
            format!("a node past the {n} nodes")
        } else {
            "a weight that is not finite and positive".to_owned()
        };
        return Err(Error::config(
            "edges",
            format!("edge {i} ({u}, {v}, {w}) has {why}"),
        ));
    }
    Ok(symmetric_csr(n, edges))
}

/// Builds symmetric CSR arrays from directed `(u, v, w)` triplets: both directions are
/// inserted, duplicates merge with the **max** weight, self-loops must already be gone.
/// Deterministic: the result depends only on the set of triplets, not their order.
pub(crate) fn symmetric_csr(
    n: usize,
    mut triplets: Vec<(u32, u32, f32)>,
) -> (Vec<u64>, Vec<u32>, Vec<f32>) {
    let m = triplets.len();
    triplets.reserve(m);
    for i in 0..m {
        let (u, v, w) = triplets[i];
        triplets.push((v, u, w));
    }
    triplets.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)).then(b.2.total_cmp(&a.2)));
    triplets.dedup_by(|later, first| later.0 == first.0 && later.1 == first.1);
    let mut offsets = vec![0u64; n + 1];
    for &(u, _, _) in &triplets {
        offsets[u as usize + 1] += 1;
    }
    for i in 0..n {
        offsets[i + 1] += offsets[i];
    }
    let neighbors = triplets.iter().map(|t| t.1).collect();
    let weights = triplets.iter().map(|t| t.2).collect();
    (offsets, neighbors, weights)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn triangle_plus_isolated() -> Graph {
        let (offsets, neighbors, weights) = symmetric_csr(
            4,
            vec![(0, 1, 0.5), (1, 2, 1.0), (0, 2, 0.25), (1, 0, 0.75)],
        );
        Graph::from_parts(
            GraphKind::Edges,
            GraphParts {
                offsets,
                neighbors,
                weights,
                keys: vec!["a".into(), "b".into(), "c".into(), "d".into()],
                text_nodes: 4,
                records: (0..4)
                    .map(|i| RecordRef {
                        line: i + 1,
                        id: None,
                        node: i as u32,
                        text_hash: None,
                    })
                    .collect(),
                labels: vec!["x".into()],
                seeds: vec![Seed {
                    node: 0,
                    label: 0,
                    weight: 1.0,
                }],
                provenance: serde_json::json!({}),
            },
        )
        .unwrap()
    }

    #[test]
    fn an_isolated_node_has_degree_plus_zero_and_a_node_past_the_end_is_named() {
        let g = triangle_plus_isolated();
        assert_eq!(g.degree(3).to_bits(), 0.0f64.to_bits());
        let e = std::panic::catch_unwind(|| g.degree(9)).unwrap_err();
        let message = e.downcast_ref::<String>().unwrap();
        assert_eq!(message, "node 9 is past the graph's 4 nodes");
    }

    #[test]
    fn symmetric_csr_merges_with_max_weight() {
        let g = triangle_plus_isolated();
        assert_eq!(g.n_edges(), 3);
        assert_eq!(g.row(0), (&[1u32, 2][..], &[0.75f32, 0.25][..]));
        assert_eq!(g.row(1).1, &[0.75, 1.0]);
        assert_eq!(g.row(3).0.len(), 0);
        g.check_symmetric(Path::new("x")).unwrap();
    }

    #[test]
    fn round_trips_through_bytes() {
        let g = triangle_plus_isolated();
        let bytes = g.to_bytes();
        let a = Artifact::parse(Path::new("g.graph"), bytes, EXPECT).unwrap();
        let back = Graph::from_artifact(&a).unwrap();
        assert_eq!(back, g);
    }

    #[test]
    fn text_hashes_are_kept_only_when_every_record_has_one() {
        let mut g = triangle_plus_isolated();
        let without = g.to_bytes();
        for (i, r) in g.records.iter_mut().enumerate() {
            r.text_hash = Some(i as u32 * 7);
        }
        let bytes = g.to_bytes();
        // One u32 a record, and its entry in the section table.
        assert!(bytes.len() > without.len() + 4 * g.records.len());
        assert_eq!(Graph::from_bytes(Path::new("g.graph"), bytes).unwrap(), g);
        g.records[2].text_hash = None;
        assert_eq!(g.to_bytes().len(), without.len());
        let back = Graph::from_bytes(Path::new("g.graph"), g.to_bytes()).unwrap();
        assert!(back.records().iter().all(|r| r.text_hash.is_none()));
    }

    #[test]
    fn debug_prints_a_summary() {
        assert_eq!(
            format!("{:?}", triangle_plus_isolated()),
            "Graph { kind: Edges, nodes: 4, text_nodes: 4, edges: 3, rows: 0..4, records: 4, \
             labels: 1, seeds: 1, .. }"
        );
    }

    #[test]
    fn from_parts_takes_undirected_edges_only() {
        let parts = |(offsets, neighbors, weights)| GraphParts {
            offsets,
            neighbors,
            weights,
            keys: vec!["a".into(), "b".into(), "c".into()],
            text_nodes: 3,
            ..GraphParts::default()
        };
        // An edge one way only: its reverse is named.
        let one_way = parts((vec![0, 1, 1, 1], vec![1], vec![1.0]));
        let e = Graph::from_parts(GraphKind::Edges, one_way)
            .unwrap_err()
            .to_string();
        assert!(e.contains("edge 0->1 has no reverse edge"), "{e}");
        // The same edge, and another given both ways with two weights, through undirected_csr.
        let edges = vec![(0, 1, 1.0), (1, 2, 0.5), (2, 1, 0.75)];
        let g =
            Graph::from_parts(GraphKind::Edges, parts(undirected_csr(3, edges).unwrap())).unwrap();
        assert_eq!(g.row(1), (&[0, 2][..], &[1.0, 0.75][..]));
        assert_eq!(g.n_edges(), 2);
        for (edge, why) in [
            ((0, 3, 1.0), "edge 1 (0, 3, 1) has a node past the 3 nodes"),
            ((2, 2, 1.0), "edge 1 (2, 2, 1) has a self-loop"),
            (
                (0, 2, 0.0),
                "edge 1 (0, 2, 0) has a weight that is not finite and positive",
            ),
            ((0, 2, f32::NAN), "not finite and positive"),
        ] {
            let e = undirected_csr(3, vec![(0, 1, 1.0), edge])
                .unwrap_err()
                .to_string();
            assert!(e.contains(why), "{e}");
        }
    }

    #[test]
    fn validate_catches_broken_invariants() {
        let mut g = triangle_plus_isolated();
        g.neighbors[0] = 9;
        assert!(g.validate(Path::new("x")).is_err());
        let mut g = triangle_plus_isolated();
        g.weights[0] = f32::NAN;
        assert!(g.validate(Path::new("x")).is_err());
        let mut g = triangle_plus_isolated();
        g.labels = vec!["y".into(), "x".into()];
        let e = g.validate(Path::new("x")).unwrap_err().to_string();
        assert!(e.contains("not sorted: \"y\" before \"x\""), "{e}");
        let mut g = triangle_plus_isolated();
        g.labels = vec!["x".into(), "x".into()];
        assert!(g
            .validate(Path::new("x"))
            .unwrap_err()
            .to_string()
            .contains("listed twice"));
        let mut g = triangle_plus_isolated();
        g.records[2].line = 0;
        assert!(g.validate(Path::new("x")).is_err());
        // Lines fall: refused. An edge list's two nodes of one line share it; texts do not.
        let mut g = triangle_plus_isolated();
        g.records[2].line = 1;
        assert!(g.validate(Path::new("x")).is_err());
        let mut g = triangle_plus_isolated();
        g.records[2].line = 2;
        assert!(g.validate(Path::new("x")).is_ok());
        g.kind = GraphKind::Knn;
        let e = g.validate(Path::new("x")).unwrap_err().to_string();
        assert!(e.contains("line 2 after line 2"), "{e}");
        let mut g = triangle_plus_isolated();
        g.neighbors[0] = 0;
        assert!(g
            .validate(Path::new("x"))
            .unwrap_err()
            .to_string()
            .contains("self-loop"));
        let mut g = triangle_plus_isolated();
        assert!(g
            .set_seeds(
                vec!["x".into()],
                vec![Seed {
                    node: 0,
                    label: 3,
                    weight: 1.0
                }]
            )
            .is_err());
        assert_eq!(
            g.seeds().len(),
            1,
            "a refused change leaves the seeds as they were"
        );
        // Seeds out of order, or twice, break the invariant (loading merges them first).
        let mut g = triangle_plus_isolated();
        g.seeds.push(g.seeds[0]);
        assert!(g
            .validate(Path::new("x"))
            .unwrap_err()
            .to_string()
            .contains("one per pair"));
    }

    #[test]
    fn a_seed_given_twice_is_one_seed_with_its_largest_weight() {
        let seed = |node, label, weight| Seed {
            node,
            label,
            weight,
        };
        let given = vec![
            seed(2, 0, 1.0),
            seed(0, 1, 1.0),
            seed(2, 0, 3.0),
            seed(0, 0, 1.0),
        ];
        let merged = vec![seed(0, 0, 1.0), seed(0, 1, 1.0), seed(2, 0, 3.0)];
        let mut g = triangle_plus_isolated();
        g.set_seeds(vec!["x".into(), "y".into()], given.clone())
            .unwrap();
        assert_eq!(g.seeds(), merged);
        assert_eq!(g.seeds_summary(), "2 seed nodes (3 seed labels)");
        // Names no reader would pass (outputs print a label on one line, TAB-separated),
        // names out of order or twice, and seeds past the nodes or labels are refused as a
        // program's mistake, and the seeds stay as they were.
        let past = vec![seed(7, 0, 1.0)];
        for (labels, seeds, field, why) in [
            (["", "y"], &merged, "labels", "label \"\" is empty"),
            (["a\tb", "y"], &merged, "labels", "control character"),
            (
                ["y", "x"],
                &merged,
                "labels",
                "sorted and distinct: \"y\" before \"x\"",
            ),
            (
                ["x", "x"],
                &merged,
                "labels",
                "sorted and distinct: \"x\" before \"x\"",
            ),
            (["x", "y"], &past, "seeds", "node 7"),
        ] {
            let e = g
                .set_seeds(labels.map(String::from).to_vec(), seeds.clone())
                .unwrap_err();
            assert!(
                matches!(e, Error::InvalidConfig { field: f, .. } if f == field)
                    && e.to_string().contains(why),
                "{e}"
            );
            assert_eq!(
                (g.labels(), g.seeds()),
                (&["x".to_owned(), "y".to_owned()][..], &merged[..])
            );
        }
        let parts = GraphParts {
            offsets: g.offsets.clone(),
            neighbors: g.neighbors.clone(),
            weights: g.weights.clone(),
            keys: g.keys.clone(),
            text_nodes: g.text_nodes,
            records: g.records.clone(),
            labels: g.labels.clone(),
            seeds: given.clone(),
            provenance: serde_json::json!({}),
        };
        assert_eq!(Graph::from_parts(GraphKind::Edges, parts).unwrap(), g);
        // A file holding them unmerged (as no sprig writes them, but an older one might
        // have) loads merged.
        let mut raw = g.clone();
        raw.seeds = given;
        let a = Artifact::parse(Path::new("g.graph"), raw.to_bytes(), EXPECT).unwrap();
        assert_eq!(Graph::from_artifact(&a).unwrap(), g);
    }

    /// A random graph saved to a temporary folder.
    fn saved(n: usize) -> (Graph, tempfile::TempDir, std::path::PathBuf) {
        let mut g = crate::propagate::testgraphs::random(n, 4 * n, 5, n / 20, 11);
        // As a graph built from a corpus: with its texts' hashes (an optional section).
        for r in &mut g.records {
            r.text_hash = Some(crate::hash::record_hash(&format!("text {}", r.line)));
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.graph");
        g.save(&path).unwrap();
        (g, dir, path)
    }

    #[test]
    fn loading_rows_keeps_those_rows_and_every_node_figure() {
        let (g, _dir, path) = saved(700);
        // The streamed file is the one in memory, and reads back as the graph.
        assert_eq!(std::fs::read(&path).unwrap(), g.to_bytes());
        assert_eq!(Graph::load(&path).unwrap(), g);
        let n = g.n_nodes();
        #[allow(clippy::reversed_empty_ranges)] // a backwards request, on purpose
        let wants = [0..n, 0..0, 0..1, 100..350, 350..n, n..n, 690..n + 9, 5..2];
        for want in wants {
            let s = Graph::load_rows(&path, |m| {
                assert_eq!(m, n);
                want.clone()
            })
            .unwrap();
            // Clamped to the graph, and empty when backwards.
            let rows = want.start.min(n)..want.end.min(n).max(want.start.min(n));
            assert_eq!(s.rows(), rows);
            assert_eq!(s.is_whole(), rows == (0..n));
            assert_eq!(
                (s.n_nodes(), s.n_text_nodes(), s.n_edges(), s.offsets()),
                (n, g.n_text_nodes(), g.n_edges(), g.offsets())
            );
            assert_eq!(
                (s.keys(), s.records(), s.labels(), s.seeds(), s.kind()),
                (g.keys(), g.records(), g.labels(), g.seeds(), g.kind())
            );
            for v in rows.clone() {
                assert_eq!(s.row(v), g.row(v));
            }
            let held: usize = rows.clone().map(|v| g.row(v).0.len()).sum();
            assert_eq!((s.neighbors().len(), s.weights().len()), (held, held));
            // Every node's degree and entropy, bit for bit, also for the rows it dropped.
            for v in 0..n {
                let (a, b) = (s.figures(v), g.figures(v));
                assert_eq!(
                    (a.0.to_bits(), a.1.to_bits()),
                    (b.0.to_bits(), b.1.to_bits())
                );
                assert_eq!(s.degree(v).to_bits(), g.degree(v).to_bits());
            }
            assert_eq!(s.edge_digest(), g.edge_digest());
        }
    }

    #[test]
    fn loading_rows_refuses_a_damaged_file_as_loading_it_whole_does() {
        let (g, dir, path) = saved(300);
        let bytes = std::fs::read(&path).unwrap();
        let damaged = dir.path().join("d.graph");
        // The header, the offsets, the neighbours, the weights, a key, the checksum; an
        // offset made to decrease (which cannot cut rows); a truncated file.
        let data = bytes.len() - 4 - (g.n_edges() * 16 + 8 * (g.n_nodes() + 1));
        let spots = [
            20,
            data + 8,
            data + 8 * g.n_nodes() + 100,
            bytes.len() / 2,
            bytes.len() - 2,
        ];
        let mut cases: Vec<Vec<u8>> = spots
            .iter()
            .map(|&i| {
                let mut b = bytes.clone();
                b[i] ^= 0x40;
                b
            })
            .collect();
        cases.push(bytes[..bytes.len() - 9].to_vec());
        // A section's name in the header (the table then lacks "neighbors": a header error
        // if it were trusted before the checksum), and the last row offset made huge but
        // still monotone (no longer the edge count).
        let name = b"\"neighbors\"";
        let at = bytes.windows(name.len()).position(|w| w == name).unwrap();
        let mut renamed = bytes.clone();
        renamed[at + 3] ^= 0x40;
        cases.push(renamed);
        let header_len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
        let data_start = (16 + header_len).div_ceil(8) * 8;
        let mut last = bytes.clone();
        last[data_start + 8 * g.n_nodes() + 5] ^= 0x01;
        cases.push(last);
        for (i, case) in cases.into_iter().enumerate() {
            std::fs::write(&damaged, &case).unwrap();
            let whole = Graph::from_bytes(&damaged, case).unwrap_err().to_string();
            assert_eq!(
                Graph::load(&damaged).unwrap_err().to_string(),
                whole,
                "case {i}"
            );
            let part = Graph::load_rows(&damaged, |n| n / 3..n / 2).unwrap_err();
            assert_eq!(part.to_string(), whole, "case {i}");
        }
    }

    /// A valid file whose sections lie in another order than sprig writes them, and a
    /// graph that comes through a pipe, load as `from_bytes` reads them.
    #[test]
    fn another_section_order_and_a_pipe_load_too() {
        let (g, dir, path) = saved(300);
        let a = Artifact::read(&path, EXPECT).unwrap();
        // The same sections, written in reverse order.
        enum Values {
            U64(Vec<u64>),
            U32(Vec<u32>),
            F32(Vec<f32>),
            U8(Vec<u8>),
        }
        let values: Vec<(&format::SectionEntry, Values)> = a
            .sections()
            .iter()
            .rev()
            .map(|e| {
                let v = match e.dtype {
                    format::Dtype::U64 => Values::U64(a.u64s(&e.name).unwrap()),
                    format::Dtype::U32 => Values::U32(a.u32s(&e.name).unwrap()),
                    format::Dtype::F32 => Values::F32(a.f32s(&e.name).unwrap()),
                    format::Dtype::U8 => Values::U8(a.u8s(&e.name).unwrap().to_vec()),
                    other => panic!("a graph has no {other:?} section"),
                };
                (e, v)
            })
            .collect();
        let mut w = ArtifactWriter::new();
        for (e, v) in &values {
            match v {
                Values::U64(x) => w.add_u64(&e.name, &e.shape, x),
                Values::U32(x) => w.add_u32(&e.name, &e.shape, x),
                Values::F32(x) => w.add_f32(&e.name, &e.shape, x),
                Values::U8(x) => w.add_u8(&e.name, x),
            }
        }
        let reordered = w.finish(GRAPH_MAGIC, a.version, a.header.clone());
        let other = dir.path().join("other.graph");
        std::fs::write(&other, &reordered).unwrap();
        assert_eq!(Graph::from_bytes(&other, reordered).unwrap(), g);
        assert_eq!(Graph::load(&other).unwrap(), g);
        let part = Graph::load_rows(&other, |n| n / 3..n / 2).unwrap();
        let want = Graph::load_rows(&path, |n| n / 3..n / 2).unwrap();
        assert_eq!(part, want);
        // Through a FIFO (a pipe has no length): read whole, then as a file.
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let writer = {
            let (fifo, path) = (fifo.clone(), path.clone());
            std::thread::spawn(move || std::fs::write(&fifo, std::fs::read(&path).unwrap()))
        };
        assert_eq!(Graph::load(&fifo).unwrap(), g);
        writer.join().unwrap().unwrap();
        // The other order through the FIFO: read whole from the bytes the stream read, since
        // a pipe cannot be opened a second time.
        let writer = {
            let (fifo, other) = (fifo.clone(), other.clone());
            std::thread::spawn(move || std::fs::write(&fifo, std::fs::read(&other).unwrap()))
        };
        assert_eq!(Graph::load(&fifo).unwrap(), g);
        writer.join().unwrap().unwrap();
    }

    #[test]
    fn a_graph_without_every_row_is_not_saved_checked_or_propagated_alone() {
        let (_, _dir, path) = saved(300);
        let s = Graph::load_rows(&path, |n| 0..n / 2).unwrap();
        let err = s.check_symmetric(&path).unwrap_err().to_string();
        assert!(err.contains("every row"), "{err}");
        let err = crate::propagate::propagate(&s, &Default::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("load_rows"), "{err}");
        let saved = std::panic::catch_unwind(|| s.to_bytes());
        assert!(saved.is_err(), "a shard is not a graph file");
    }

    /// A file whose checksum holds but whose row offsets cannot cut rows (one decreases, or
    /// the first is not 0): `load_rows` reads it whole, and so refuses it as `load` does,
    /// naming the invariant, not its own row cutting.
    #[test]
    fn loading_rows_refuses_invalid_offsets_as_loading_it_whole_does() {
        let (_, dir, path) = saved(300);
        let bytes = std::fs::read(&path).unwrap();
        let header_len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
        let data_start = (16 + header_len).div_ceil(8) * 8;
        let offset = |b: &[u8], v: usize| {
            let at = data_start + 8 * v;
            u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
        };
        let damaged = dir.path().join("d.graph");
        for (v, value) in [(5, offset(&bytes, 6) + 1), (0, 1)] {
            let mut case = bytes.clone();
            case[data_start + 8 * v..data_start + 8 * v + 8].copy_from_slice(&value.to_le_bytes());
            let n = case.len();
            let crc = crc32fast::hash(&case[..n - 4]);
            case[n - 4..].copy_from_slice(&crc.to_le_bytes());
            std::fs::write(&damaged, &case).unwrap();
            let whole = Graph::from_bytes(&damaged, case).unwrap_err().to_string();
            assert!(whole.contains("row_offsets"), "{whole}");
            assert_eq!(Graph::load(&damaged).unwrap_err().to_string(), whole);
            let part = Graph::load_rows(&damaged, |n| n / 3..n / 2).unwrap_err();
            assert_eq!(part.to_string(), whole, "offset {v}");
        }
    }

    /// A key recorded in the provenance joins the keys already there; a graph made without
    /// an object (or with another value) gets one holding just that key.
    #[test]
    fn recorded_provenance_keeps_what_was_there() {
        let mut g = triangle_plus_isolated();
        g.provenance = serde_json::json!({"corpus": "c.jsonl"});
        g.record_provenance("seeds", "s.tsv".into());
        assert_eq!(
            g.provenance(),
            &serde_json::json!({"corpus": "c.jsonl", "seeds": "s.tsv"})
        );
        for before in [serde_json::Value::Null, serde_json::json!("c.jsonl")] {
            g.provenance = before;
            g.record_provenance("seeds", "s.tsv".into());
            assert_eq!(g.provenance(), &serde_json::json!({"seeds": "s.tsv"}));
        }
    }

    /// Record or seed sections of different lengths (no sprig writes them; the checksum
    /// holds) are refused as such, whichever one is short, instead of being zipped to the
    /// shortest.
    #[test]
    fn record_and_seed_sections_of_different_lengths_are_refused() {
        let (_, dir, path) = saved(40);
        let a = Artifact::read(&path, EXPECT).unwrap();
        let other = dir.path().join("short.graph");
        for short in ["record_ids.offsets", TEXT_HASHES, "seed_labels"] {
            // The same sections, the last value of `short` left out.
            let (mut u64s, mut u32s, mut f32s) = (Vec::new(), Vec::new(), Vec::new());
            for e in a.sections() {
                let cut = usize::from(e.name == short);
                match e.dtype {
                    format::Dtype::U64 => {
                        let v = a.u64s(&e.name).unwrap();
                        u64s.push((e.name.clone(), v[..v.len() - cut].to_vec()));
                    }
                    format::Dtype::U32 => {
                        let v = a.u32s(&e.name).unwrap();
                        u32s.push((e.name.clone(), v[..v.len() - cut].to_vec()));
                    }
                    format::Dtype::F32 => f32s.push((e.name.clone(), a.f32s(&e.name).unwrap())),
                    _ => {}
                }
            }
            let mut w = ArtifactWriter::new();
            for e in a.sections() {
                let len = |n: usize| [n as u64];
                if let Some((_, v)) = u64s.iter().find(|(n, _)| *n == e.name) {
                    w.add_u64(&e.name, &len(v.len()), v);
                } else if let Some((_, v)) = u32s.iter().find(|(n, _)| *n == e.name) {
                    w.add_u32(&e.name, &len(v.len()), v);
                } else if let Some((_, v)) = f32s.iter().find(|(n, _)| *n == e.name) {
                    w.add_f32(&e.name, &len(v.len()), v);
                } else {
                    w.add_u8(&e.name, a.u8s(&e.name).unwrap());
                }
            }
            let bytes = w.finish(GRAPH_MAGIC, a.version, a.header.clone());
            let e = Graph::from_bytes(&other, bytes).unwrap_err().to_string();
            assert!(e.contains("sections differ in length"), "{short}: {e}");
        }
    }
}
