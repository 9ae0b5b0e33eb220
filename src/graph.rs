//! The graph: a symmetric sparse weighted graph over texts (and feature nodes), with the
//! records that map onto it and the seed labels — the whole transductive problem in one value.
//!
//! Storage is a hand-rolled CSR (`u64` row offsets, `u32` neighbour ids, `f32` weights)
//! rather than `sprs::CsMatI<f32, u32>`: the three arrays are exactly the file sections, the
//! propagation sweep indexes them directly, and sprs would add a conversion on load and save
//! without adding an operation we use (we never multiply sparse matrices here).
//!
//! **Invariants** (checked by [`Graph::validate`], which every load runs):
//! - `offsets` has `n + 1` non-decreasing entries from 0 to the edge count;
//! - every neighbour id is `< n`, each row is sorted and has no duplicate and no self-loop;
//! - every weight is finite and `> 0` (kNN graphs: in `(0, 1]`);
//! - the graph is symmetric: `w(u, v) == w(v, u)` (checked by `--verify` / [`Graph::check_symmetric`]);
//! - records point at text nodes (`< text_nodes`); seeds point at nodes and labels that exist,
//!   sorted by (node, label), one per pair ([`merge_seeds`]).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::corpus::RecordId;
use crate::error::{Error, Result};
use crate::format::{self, Artifact, ArtifactWriter, Expect};

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
#[derive(Debug, Clone, PartialEq)]
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
}

/// The parts of a graph, for [`Graph::from_parts`].
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

impl Graph {
    /// Builds a graph from its parts and checks every invariant but symmetry.
    ///
    /// # Errors
    /// [`Error::Corrupt`] (path `<memory>`) naming the broken invariant.
    pub fn from_parts(kind: GraphKind, mut parts: GraphParts) -> Result<Self> {
        merge_seeds(&mut parts.seeds);
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
        self.neighbors.len() / 2
    }

    /// Neighbour ids and weights of `node`, sorted by id.
    ///
    /// # Panics
    /// If `node >= n_nodes()` (a bug in the caller).
    #[inline]
    pub fn row(&self, node: usize) -> (&[u32], &[f32]) {
        let (a, b) = (self.offsets[node] as usize, self.offsets[node + 1] as usize);
        (&self.neighbors[a..b], &self.weights[a..b])
    }

    /// Weighted degree of `node`.
    pub fn degree(&self, node: usize) -> f64 {
        self.row(node).1.iter().map(|&w| f64::from(w)).sum()
    }

    /// Row offsets (`n + 1`).
    pub fn offsets(&self) -> &[u64] {
        &self.offsets
    }

    /// All neighbour ids, row after row.
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

    /// The seeds for a summary: `N seeds` (seeded nodes), with the count of (node, label)
    /// seeds when some node has several labels, as in `9 seeds (10 seed labels)`.
    pub fn seeds_summary(&self) -> String {
        // Sorted by node: a node's seeds are adjacent.
        let nodes = self
            .seeds
            .iter()
            .enumerate()
            .filter(|(i, s)| *i == 0 || self.seeds[i - 1].node != s.node)
            .count();
        if nodes == self.seeds.len() {
            format!("{nodes} seeds")
        } else {
            format!("{nodes} seeds ({} seed labels)", self.seeds.len())
        }
    }

    /// Provenance stored in the header.
    pub fn provenance(&self) -> &serde_json::Value {
        &self.provenance
    }

    /// Records `value` under `key` in the provenance (an object; a graph made without one
    /// gets one), e.g. the seed file applied after the build.
    pub fn record_provenance(&mut self, key: &str, value: serde_json::Value) {
        if !self.provenance.is_object() {
            self.provenance = serde_json::Value::Object(serde_json::Map::new());
        }
        self.provenance[key] = value;
    }

    /// Replaces the seeds (and label names), merged by [`merge_seeds`].
    ///
    /// # Errors
    /// [`Error::Corrupt`] if a seed names a node or label that does not exist or has a
    /// weight that is not finite and positive.
    pub fn set_seeds(&mut self, labels: Vec<String>, mut seeds: Vec<Seed>) -> Result<()> {
        merge_seeds(&mut seeds);
        let old = (
            std::mem::replace(&mut self.labels, labels),
            std::mem::replace(&mut self.seeds, seeds),
        );
        if let Err(e) = self.validate(Path::new("<memory>")) {
            (self.labels, self.seeds) = old;
            return Err(e);
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
        if self.offsets[0] != 0 || self.offsets[n] != self.neighbors.len() as u64 {
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
        for v in 0..n {
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
        let mut names: Vec<&String> = self.labels.iter().collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            // Two ids for one name: seeds and outputs could not tell them apart.
            return Err(corrupt("labels", format!("{:?} is listed twice", w[0])));
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
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = ArtifactWriter::new();
        let n = self.n_nodes() as u64;
        let e = self.neighbors.len() as u64;
        w.add_u64("row_offsets", &[n + 1], &self.offsets);
        w.add_u32("neighbors", &[e], &self.neighbors);
        w.add_f32("weights", &[e], &self.weights);
        w.add_strings("node_keys", &self.keys);
        let r = self.records.len() as u64;
        let lines: Vec<u64> = self.records.iter().map(|x| x.line).collect();
        let nodes: Vec<u32> = self.records.iter().map(|x| x.node).collect();
        let ids: Vec<&str> = self
            .records
            .iter()
            .map(|x| x.id.as_ref().map_or("", |i| i.0.as_str()))
            .collect();
        w.add_u64("record_lines", &[r], &lines);
        w.add_u32("record_nodes", &[r], &nodes);
        w.add_strings("record_ids", &ids);
        let s = self.seeds.len() as u64;
        let sn: Vec<u32> = self.seeds.iter().map(|x| x.node).collect();
        let sl: Vec<u32> = self.seeds.iter().map(|x| x.label).collect();
        let sw: Vec<f32> = self.seeds.iter().map(|x| x.weight).collect();
        w.add_u32("seed_nodes", &[s], &sn);
        w.add_u32("seed_labels", &[s], &sl);
        w.add_f32("seed_weights", &[s], &sw);
        let header = serde_json::to_value(self.header()).expect("header serializes");
        w.finish(GRAPH_MAGIC, GRAPH_FORMAT_VERSION, header)
    }

    /// Writes the graph atomically to `path`.
    ///
    /// # Errors
    /// [`Error::Io`] naming `path`.
    pub fn save(&self, path: &Path) -> Result<()> {
        format::write_bytes_atomic(path, &self.to_bytes())
    }

    /// Reads and verifies a graph file: container checks, then every invariant of
    /// [`Graph::validate`].
    ///
    /// # Errors
    /// Any container error of [`crate::format`], or [`Error::Corrupt`].
    pub fn load(path: &Path) -> Result<Self> {
        let artifact = Artifact::read(path, EXPECT)?;
        Self::from_artifact(&artifact)
    }

    /// Reads and verifies a graph file, and returns it with the header as the file holds it
    /// (its format version and the sprig version that wrote it, which [`Graph::header`], the
    /// header this build would write, does not keep).
    ///
    /// # Errors
    /// As [`Graph::load`].
    pub fn load_with_header(path: &Path) -> Result<(Self, GraphHeader)> {
        let artifact = Artifact::read(path, EXPECT)?;
        Ok((Self::from_artifact(&artifact)?, artifact.header_as()?))
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
        let path = a.path();
        let header: GraphHeader = a.header_as()?;
        let corrupt = |what: &str, message: String| Error::Corrupt {
            path: path.to_owned(),
            what: what.to_owned(),
            message,
        };
        let lines = a.u64s("record_lines")?;
        let nodes = a.u32s("record_nodes")?;
        let ids = a.strings("record_ids")?;
        if lines.len() != nodes.len() || ids.len() != nodes.len() {
            return Err(corrupt(
                "records",
                "record sections differ in length".into(),
            ));
        }
        let records = lines
            .into_iter()
            .zip(nodes)
            .zip(ids)
            .map(|((line, node), id)| RecordRef {
                line,
                id: (!id.is_empty()).then_some(RecordId(id)),
                node,
            })
            .collect();
        let sn = a.u32s("seed_nodes")?;
        let sl = a.u32s("seed_labels")?;
        let sw = a.f32s("seed_weights")?;
        if sn.len() != sl.len() || sn.len() != sw.len() {
            return Err(corrupt("seeds", "seed sections differ in length".into()));
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
            offsets: a.u64s("row_offsets")?,
            neighbors: a.u32s("neighbors")?,
            weights: a.f32s("weights")?,
            keys: a.strings("node_keys")?,
            text_nodes,
            records,
            labels: header.labels,
            seeds,
            provenance: header.provenance,
        };
        g.validate(path)?;
        Ok(g)
    }
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
    fn validate_catches_broken_invariants() {
        let mut g = triangle_plus_isolated();
        g.neighbors[0] = 9;
        assert!(g.validate(Path::new("x")).is_err());
        let mut g = triangle_plus_isolated();
        g.weights[0] = f32::NAN;
        assert!(g.validate(Path::new("x")).is_err());
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
        assert_eq!(g.seeds_summary(), "2 seeds (3 seed labels)");
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
}
