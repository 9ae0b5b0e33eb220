//! Text outputs of a propagation: JSONL (one object per input record) and Junto-style TSV
//! (one row per node). Both print floats with exactly 6 decimals and list labels by their
//! *printed* score descending, then by name, leaving out labels whose score prints as
//! `0.000000` (so two scores that print alike are always in name order, and a label listed
//! always has a visible score); outputs are stable enough for golden files. The top label is
//! the first one listed: a node whose every score prints as zero abstains in the file (the
//! [`super::PropagationReport`]'s abstention counts are of nodes with no mass at all).
//!
//! **JSONL**, one line per record of [`Graph::records`], in order:
//!
//! ```text
//! {"line":3,"id":"a7","text_hash":"9b1c0e42","label":"greet","score":0.912000,"unknown":0.010000,"scores":[["greet",0.912000],["bye",0.078000]],"seed":false}
//! ```
//!
//! `label` is the top label (`null` when the node abstains, with `score` 0 and `scores`
//! empty), `id` the record's id as JSON (`null` if none), `seed` whether the record's node
//! carried a seed. `text_hash` is [`crate::hash::record_hash`] of the record's raw text in 8
//! hexadecimal digits, there when the graph keeps it (built from a corpus by this version or
//! a later one): `sprig train` checks it against the corpus it joins the labels to. With [`Nodes::All`], the non-text (feature) nodes follow, with
//! `"feature":"<key>"` in place of `line` and `id`: a feature → label lexicon.
//!
//! **TSV** (Junto's label-file shape), one row per text node in node order (plus feature
//! nodes with [`Nodes::All`]): `key<TAB>label1 score1 label2 score2 … __DUMMY__ unknown`. The
//! unknown mass always comes last, under Junto's dummy label name [`UNKNOWN_LABEL`]. Keys and
//! labels are escaped so a row stays one line and splits on TAB then space: `\` → `\\`,
//! TAB → `\t`, LF → `\n`, CR → `\r`, NUL → `\0`, `"` → `\"` (so no field starts with a
//! quote, and CSV readers such as Python's `csv` module read every field literally), and in
//! labels only, space → `\s`.

use std::fmt::Write as _;
use std::io::{self, Write};

use super::Propagation;
use crate::graph::Graph;

/// The name of the unknown (dummy) label in TSV output, as in Junto.
pub const UNKNOWN_LABEL: &str = "__DUMMY__";

/// Which nodes an output lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Nodes {
    /// The texts only: every record (JSONL) or text node (TSV).
    #[default]
    Texts,
    /// The texts, then the non-text (feature) nodes of a bipartite graph with their keys:
    /// a feature → label lexicon (`--all-nodes`).
    All,
}

/// Output file format of `sprig propagate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// One JSON object per input record.
    #[default]
    Jsonl,
    /// Junto-style `key<TAB>label score …` rows per node.
    Tsv,
}

/// What is wrong with `result` as a propagation of `graph`, if anything: another node count.
fn mismatch(graph: &Graph, result: &Propagation) -> Option<String> {
    let (have, want) = (result.distribution().n_nodes(), graph.n_nodes());
    (have != want).then(|| format!("propagation has {have} nodes but the graph has {want}"))
}

fn check(graph: &Graph, result: &Propagation) -> io::Result<()> {
    match mismatch(graph, result) {
        Some(why) => Err(io::Error::new(io::ErrorKind::InvalidInput, why)),
        None => Ok(()),
    }
}

/// `x` as the outputs print it, in millionths: what `format!("{x:.6}")` shows without its
/// point. `x · 10^6` is exact in `f64` (24 mantissa bits times a 20-bit constant), and the
/// formatter rounds the exact value half to even, as `round_ties_even` does (tested against
/// the formatter on a million values).
fn micros(x: f32) -> u64 {
    (f64::from(x.max(0.0)) * 1e6).round_ties_even() as u64
}

/// A score in millionths, printed with 6 decimals.
struct Micros(u64);

impl std::fmt::Display for Micros {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:06}", self.0 / 1_000_000, self.0 % 1_000_000)
    }
}

/// The labels of `node` as both outputs list them (see the module docs): `(label id, score
/// in millionths)`, zeros left out, by printed score descending then label name.
pub(crate) fn printed_scores(result: &Propagation, node: usize) -> Vec<(u32, u64)> {
    let names = result.labels();
    let mut out: Vec<(u32, u64)> = result
        .distribution()
        .get(node)
        .iter()
        .map(|e| (e.label, micros(e.score)))
        .filter(|&(_, m)| m > 0)
        .collect();
    out.sort_by(|a, b| {
        b.1.cmp(&a.1)
            .then_with(|| names[a.0 as usize].cmp(&names[b.0 as usize]))
    });
    out
}

/// Whether `node` abstains in the outputs: no label at all, or every score printing as
/// `0.000000` (which [`super::PropagationReport`]'s counts, of nodes with no mass, leave out).
pub fn abstains_in_output(result: &Propagation, node: usize) -> bool {
    printed_scores(result, node).is_empty()
}

impl Propagation {
    /// Each record of `graph` (in [`Graph::records`] order) with its top label and score as
    /// the outputs print them: the `label` and `score` of [`write_jsonl`]'s line, the score
    /// rounded to 6 decimals, or `None` where that line says `"label":null` (no label, or
    /// every score printing as 0). Records that share a node share its answer. What a program
    /// gets here is what a user reads in the file, ties included (printed scores, then name).
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] (`propagation`) if this propagation was computed on a
    /// graph with another number of nodes.
    pub fn record_labels(&self, graph: &Graph) -> crate::Result<Vec<Option<(&str, f64)>>> {
        if let Some(why) = mismatch(graph, self) {
            return Err(crate::Error::config("propagation", why));
        }
        let names = self.labels();
        Ok(graph
            .records()
            .iter()
            .map(|r| {
                printed_scores(self, r.node as usize)
                    .first()
                    .map(|&(l, m)| (names[l as usize].as_str(), m as f64 / 1e6))
            })
            .collect())
    }
}

/// Writes `"label":…,"score":…,"unknown":…,"scores":[…],"seed":…` for `node`.
fn dist_fields(buf: &mut String, names: &[String], result: &Propagation, node: usize) {
    let entries = printed_scores(result, node);
    match entries.first() {
        Some(&(label, score)) => {
            let _ = write!(
                buf,
                "\"label\":{},\"score\":{}",
                names[label as usize],
                Micros(score)
            );
        }
        None => buf.push_str("\"label\":null,\"score\":0.000000"),
    }
    let unknown = result.distribution().unknown(node);
    let _ = write!(buf, ",\"unknown\":{unknown:.6},\"scores\":[");
    for (i, &(label, score)) in entries.iter().enumerate() {
        if i > 0 {
            buf.push(',');
        }
        let _ = write!(buf, "[{},{}]", names[label as usize], Micros(score));
    }
    let _ = write!(buf, "],\"seed\":{}}}", result.is_seed(node));
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

/// Writes the JSONL output (see the module docs).
///
/// # Errors
/// Whatever `out` returns, or [`io::ErrorKind::InvalidInput`] if `result` was computed on a
/// graph with a different number of nodes.
pub fn write_jsonl(
    out: &mut dyn Write,
    graph: &Graph,
    result: &Propagation,
    nodes: Nodes,
) -> io::Result<()> {
    check(graph, result)?;
    let names: Vec<String> = result.labels().iter().map(|l| json_string(l)).collect();
    let mut buf = String::new();
    for r in graph.records() {
        buf.clear();
        let id =
            r.id.as_ref()
                .map_or_else(|| "null".to_owned(), |id| id.to_json().to_string());
        let _ = write!(buf, "{{\"line\":{},\"id\":{id},", r.line);
        if let Some(h) = r.text_hash {
            let _ = write!(buf, "\"text_hash\":\"{h:08x}\",");
        }
        dist_fields(&mut buf, &names, result, r.node as usize);
        buf.push('\n');
        out.write_all(buf.as_bytes())?;
    }
    if nodes == Nodes::All {
        for v in graph.n_text_nodes()..graph.n_nodes() {
            buf.clear();
            let _ = write!(buf, "{{\"feature\":{},", json_string(&graph.keys()[v]));
            dist_fields(&mut buf, &names, result, v);
            buf.push('\n');
            out.write_all(buf.as_bytes())?;
        }
    }
    out.flush()
}

/// Writes the seed nodes of [`super::seed_conflicts`], one JSON object a line in their
/// order (most contradicted first):
///
/// ```text
/// {"line":12,"id":"r12","records":1,"seed":["RateBook"],"seed_share":0.041000,"neighbourhood":[["PlayMusic",0.912000],["AddToPlaylist",0.047000],["RateBook",0.041000]]}
/// ```
///
/// `line` and `id` are the node's first record's, `records` how many records share the
/// node (repeated texts), `seed` its seed labels, `seed_share` the largest share its
/// neighbourhood gives one of them, `neighbourhood` the three largest shares (6 decimals).
///
/// # Errors
/// Whatever `out` returns, or [`io::ErrorKind::InvalidInput`] if `result` was computed on a
/// graph with a different number of nodes.
pub fn write_seed_conflicts(
    out: &mut dyn Write,
    graph: &Graph,
    result: &Propagation,
    conflicts: &[super::SeedConflict],
) -> io::Result<()> {
    let names = graph.labels();
    node_lines(out, graph, result, conflicts, |buf, c, facts| {
        let node = c.node as usize;
        match facts.first[node] {
            Some(r) => {
                let id =
                    r.id.as_ref()
                        .map_or_else(|| "null".to_owned(), |id| id.to_json().to_string());
                let _ = write!(buf, "{{\"line\":{},\"id\":{id},", r.line);
            }
            // A node with no record (a bipartite graph's feature node, which the library
            // lets a caller seed): named by its key.
            None => {
                let _ = write!(buf, "{{\"feature\":{},", json_string(&graph.keys()[node]));
            }
        }
        let seeded: Vec<String> = c
            .seeded
            .iter()
            .map(|&l| json_string(&names[l as usize]))
            .collect();
        let _ = write!(
            buf,
            "\"records\":{},\"seed\":[{}],\"seed_share\":{},\"neighbourhood\":[",
            facts.records(node),
            seeded.join(","),
            Micros(micros(c.seed_share))
        );
        for (i, s) in c.neighbours.iter().take(3).enumerate() {
            if i > 0 {
                buf.push(',');
            }
            let _ = write!(
                buf,
                "[{},{}]",
                json_string(&names[s.label as usize]),
                Micros(micros(s.score))
            );
        }
        buf.push_str("]}");
    })
}

/// Writes the texts of [`super::suggest_labels`], one JSON object a line in their order
/// (best first), in a shape that is a seed file once each `label` is filled in:
///
/// ```text
/// {"line":57,"label":null,"suggested":true,"guess":"PlayMusic","guess_score":0.412000,"gain":3.250000,"records":2,"text":"play some jazz"}
/// ```
///
/// The node is named as a seed file names it: by its first record's `id` when it has one
/// (an edge list's node name), else by that record's `line`. `suggested` tells `sprig
/// propagate --seeds` to leave the label out of the class priors it estimates from the
/// seeds (a chosen text is no sample of the classes). `guess` is its propagated top
/// label (`null` when it abstains) and `guess_score` that label's score; `gain` the
/// uncertain records its label settles (see [`super::suggest_labels`]); `records` how many
/// records share the node; `text` its text (left out for edge-list graphs, whose `id` is
/// the node's name).
///
/// # Errors
/// Whatever `out` returns, or [`io::ErrorKind::InvalidInput`] if `result` was computed on a
/// graph with a different number of nodes.
pub fn write_suggestions(
    out: &mut dyn Write,
    graph: &Graph,
    result: &Propagation,
    suggestions: &[super::Suggestion],
) -> io::Result<()> {
    let names = graph.labels();
    node_lines(out, graph, result, suggestions, |buf, s, facts| {
        let node = s.node as usize;
        match facts.first[node].and_then(|r| r.id.as_ref()) {
            Some(id) => {
                let _ = write!(buf, "{{\"id\":{},", id.to_json());
            }
            None => {
                let line = facts.first[node].map_or(0, |r| r.line);
                let _ = write!(buf, "{{\"line\":{line},");
            }
        }
        buf.push_str("\"label\":null,\"suggested\":true,");
        match result.distribution().top(node) {
            Some(top) => {
                let _ = write!(
                    buf,
                    "\"guess\":{},\"guess_score\":{},",
                    json_string(&names[top.label as usize]),
                    Micros(micros(top.score))
                );
            }
            None => buf.push_str("\"guess\":null,\"guess_score\":0.000000,"),
        }
        let _ = write!(
            buf,
            "\"gain\":{:.6},\"records\":{}",
            s.gain,
            facts.records(node)
        );
        if graph.kind() != crate::graph::GraphKind::Edges {
            let _ = write!(buf, ",\"text\":{}", json_string(&graph.keys()[node]));
        }
        buf.push('}');
    })
}

/// What the per-node JSONL writers name a node by: its first record (`None` for a node
/// with no record, a bipartite graph's feature node) and how many records it stands for.
struct NodeFacts<'g> {
    first: Vec<Option<&'g crate::graph::RecordRef>>,
    counts: Vec<u32>,
}

impl NodeFacts<'_> {
    /// The records `node` stands for (0 for a feature node).
    fn records(&self, node: usize) -> u32 {
        self.counts.get(node).copied().unwrap_or(0)
    }
}

/// Writes one JSON line per item of `items`, as `line` fills it (without the newline), after
/// checking that `result` is a propagation over `graph`: the frame of the seed check's and
/// the suggestions' writers.
fn node_lines<T>(
    out: &mut dyn Write,
    graph: &Graph,
    result: &Propagation,
    items: &[T],
    mut line: impl FnMut(&mut String, &T, &NodeFacts),
) -> io::Result<()> {
    check(graph, result)?;
    let facts = NodeFacts {
        first: graph.first_records(),
        counts: graph.records_per_text_node(),
    };
    let mut buf = String::new();
    for item in items {
        buf.clear();
        line(&mut buf, item, &facts);
        buf.push('\n');
        out.write_all(buf.as_bytes())?;
    }
    out.flush()
}

/// Escapes a TSV field (see the module docs); `space` also escapes spaces.
fn escape(s: &str, space: bool, buf: &mut String) {
    for c in s.chars() {
        match c {
            '\\' => buf.push_str("\\\\"),
            '\t' => buf.push_str("\\t"),
            '\n' => buf.push_str("\\n"),
            '\r' => buf.push_str("\\r"),
            '\0' => buf.push_str("\\0"),
            '"' => buf.push_str("\\\""),
            ' ' if space => buf.push_str("\\s"),
            c => buf.push(c),
        }
    }
}

/// Whether [`write_tsv`] can write `graph`'s nodes: no label is named [`UNKNOWN_LABEL`]
/// (it would read as the unknown mass, which every row ends with), and, with [`Nodes::All`],
/// no text and feature node share a key (TSV rows carry only a key, so a text such as
/// `u:hi` and the feature `u:hi` would be two rows no reader could tell apart; JSONL marks
/// features). Cheap: callers check it before propagating.
///
/// # Errors
/// [`io::ErrorKind::InvalidData`] naming the label or key.
pub fn check_tsv(graph: &Graph, nodes: Nodes) -> io::Result<()> {
    let invalid = |message: String| Err(io::Error::new(io::ErrorKind::InvalidData, message));
    if graph.labels().iter().any(|l| l == UNKNOWN_LABEL) {
        return invalid(format!(
            "a label is named {UNKNOWN_LABEL}, the TSV name of the unknown mass: rename it, or \
             write JSONL"
        ));
    }
    if nodes == Nodes::All {
        let texts: hashbrown::HashSet<&str> = graph.keys()[..graph.n_text_nodes()]
            .iter()
            .map(String::as_str)
            .collect();
        let features = &graph.keys()[graph.n_text_nodes()..graph.n_nodes()];
        if let Some(k) = features.iter().find(|k| texts.contains(k.as_str())) {
            return invalid(format!(
                "{k:?} is the key of a text node and of a feature node, which TSV rows cannot \
                 tell apart: write JSONL, or leave out --all-nodes"
            ));
        }
    }
    Ok(())
}

/// Writes the Junto-style TSV output (see the module docs).
///
/// # Errors
/// As [`write_jsonl`] and [`check_tsv`].
pub fn write_tsv(
    out: &mut dyn Write,
    graph: &Graph,
    result: &Propagation,
    nodes: Nodes,
) -> io::Result<()> {
    check(graph, result)?;
    check_tsv(graph, nodes)?;
    let names: Vec<String> = result
        .labels()
        .iter()
        .map(|l| {
            let mut s = String::new();
            escape(l, true, &mut s);
            s
        })
        .collect();
    let end = match nodes {
        Nodes::All => graph.n_nodes(),
        Nodes::Texts => graph.n_text_nodes(),
    };
    let d = result.distribution();
    let mut buf = String::new();
    for v in 0..end {
        buf.clear();
        escape(&graph.keys()[v], false, &mut buf);
        buf.push('\t');
        for (label, score) in printed_scores(result, v) {
            let _ = write!(buf, "{} {} ", names[label as usize], Micros(score));
        }
        let _ = writeln!(buf, "{UNKNOWN_LABEL} {:.6}", d.unknown(v));
        out.write_all(buf.as_bytes())?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::propagate::{propagate, testgraphs, Algorithm, PropagationConfig};

    #[test]
    fn listed_scores_are_ordered_as_printed_and_never_print_as_zero() {
        // Spreading leaves many tiny scores; on 600 nodes some print alike or as 0.000000.
        let g = testgraphs::random(600, 1800, 12, 24, 7);
        let c = PropagationConfig {
            algorithm: Algorithm::Spreading,
            top_k: 12,
            ..PropagationConfig::default()
        };
        let p = propagate(&g, &c).unwrap();
        let (mut ties, mut dropped) = (0, 0);
        for v in 0..g.n_nodes() {
            let raw = p.distribution().get(v);
            dropped += raw
                .iter()
                .filter(|e| format!("{:.6}", e.score) == "0.000000")
                .count();
            let listed = printed_scores(&p, v);
            for w in listed.windows(2) {
                let (a, b) = (&p.labels()[w[0].0 as usize], &p.labels()[w[1].0 as usize]);
                assert!(
                    w[0].1 > w[1].1 || (w[0].1 == w[1].1 && a < b),
                    "node {v}: {listed:?}"
                );
                ties += usize::from(w[0].1 == w[1].1);
            }
            assert!(listed.iter().all(|&(_, m)| m > 0));
            assert_eq!(
                listed.len() + raw.iter().filter(|e| micros(e.score) == 0).count(),
                raw.len()
            );
        }
        assert!(
            ties > 0 && dropped > 0,
            "the graph must exercise both rules: {ties} {dropped}"
        );
        // The JSONL shows exactly that list, and its top label is the first entry; the
        // library's per-record answers are the file's `label` and `score`.
        let mut out = Vec::new();
        write_jsonl(&mut out, &g, &p, Nodes::Texts).unwrap();
        let answers = p.record_labels(&g).unwrap();
        assert_eq!(answers.len(), g.records().len());
        for ((r, line), answer) in g
            .records()
            .iter()
            .zip(String::from_utf8(out).unwrap().lines())
            .zip(&answers)
        {
            let row: serde_json::Value = serde_json::from_str(line).unwrap();
            match answer {
                Some((label, score)) => {
                    assert_eq!(row["label"], *label);
                    assert_eq!(row["score"].as_f64(), Some(*score));
                }
                None => assert!(row["label"].is_null()),
            }
            let listed = printed_scores(&p, r.node as usize);
            let scores = row["scores"].as_array().unwrap();
            assert_eq!(scores.len(), listed.len());
            match listed.first() {
                Some(&(l, _)) => assert_eq!(row["label"], p.labels()[l as usize].as_str()),
                None => assert!(row["label"].is_null()),
            }
        }
    }

    #[test]
    fn suggestions_name_their_node_as_a_seed_file_does() {
        use crate::graph::{GraphKind, RecordRef};
        use crate::propagate::Suggestion;
        // A corpus-like graph: a path a — b — c seeded at a, and d alone (it abstains); b's
        // record has no id, c's has one; d stands for two records.
        let mut g = testgraphs::build(
            GraphKind::Knn,
            ["a", "b", "c", "d"].map(String::from).to_vec(),
            4,
            vec![(0, 1, 1.0), (1, 2, 1.0)],
            vec!["x".into()],
            vec![crate::graph::Seed {
                node: 0,
                label: 0,
                weight: 1.0,
            }],
        );
        g.records[1].id = None;
        g.records.push(RecordRef {
            line: 9,
            id: None,
            node: 3,
            text_hash: None,
        });
        let p = propagate(&g, &PropagationConfig::default()).unwrap();
        let picks = [1, 2, 3].map(|node| Suggestion { node, gain: 0.5 });
        let mut out = Vec::new();
        write_suggestions(&mut out, &g, &p, &picks).unwrap();
        let rows: Vec<serde_json::Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(rows[0]["line"], 2);
        assert!(rows[0].get("id").is_none());
        assert_eq!(rows[1]["id"], "c");
        assert!(rows[1].get("line").is_none());
        assert_eq!(
            (&rows[1]["guess"], &rows[1]["text"]),
            (&"x".into(), &"c".into())
        );
        assert!(rows[1]["guess_score"].as_f64().unwrap() > 0.0);
        // d abstains: no guess; its first record names it, and it stands for two.
        assert!(rows[2]["guess"].is_null() && rows[2]["label"].is_null());
        assert_eq!(
            (rows[2]["id"].as_str(), rows[2]["records"].as_u64()),
            (Some("d"), Some(2))
        );
        assert!(rows.iter().all(|r| r["gain"] == 0.5));
        // An edge list's keys are its ids: no text.
        g.kind = GraphKind::Edges;
        let mut out = Vec::new();
        write_suggestions(&mut out, &g, &p, &picks[1..2]).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!(
                "{{\"id\":\"c\",\"label\":null,\"suggested\":true,\"guess\":\"x\",\"guess_score\":{},\"gain\":0.500000,\"records\":1}}\n",
                rows[1]["guess_score"]
            )
        );
    }

    #[test]
    fn micros_round_as_the_formatter_does() {
        let check = |x: f32| {
            // `+ 0.0` makes a zero positive: which zero `max` returns for ±0 is unspecified
            // (at opt-level 0 it returned -0.0, printed "-0.000000").
            assert_eq!(
                Micros(micros(x)).to_string(),
                format!("{:.6}", x.max(0.0) + 0.0),
                "{x}"
            );
        };
        for x in [
            0.0f32, 4.9e-7, 5e-7, 5.1e-7, 0.1234565, 0.9999996, 1.0, -0.0,
        ] {
            check(x);
        }
        // The floats nearest every half-millionth below 0.002, and a million over [0, 1].
        for m in 0..2000u32 {
            let x = ((f64::from(m) + 0.5) / 1e6) as f32;
            for y in [
                x,
                f32::from_bits(x.to_bits() + 1),
                f32::from_bits(x.to_bits() - 1),
            ] {
                check(y);
            }
        }
        let mut s = 0x9e37_79b9u32;
        for _ in 0..1_000_000 {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            check(f32::from_bits(s % 0x3f80_0001));
        }
    }

    #[test]
    fn jsonl_and_tsv_outputs_have_the_documented_shape() {
        let g = testgraphs::bipartite();
        let p = propagate(&g, &PropagationConfig::default()).unwrap();
        let mut out = Vec::new();
        write_jsonl(&mut out, &g, &p, Nodes::Texts).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), g.records().len());
        let first: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(first["line"], 1);
        assert_eq!(first["id"], "hi there");
        assert_eq!(first["label"], "greet");
        assert_eq!(first["seed"], true);
        assert!(lines[0].starts_with(r#"{"line":1,"id":"hi there","label":"greet","score":"#));
        assert!(
            lines[6].contains(
                r#""label":null,"score":0.000000,"unknown":1.000000,"scores":[],"seed":false"#
            ),
            "{}",
            lines[6]
        );
        let answers = p.record_labels(&g).unwrap();
        assert_eq!(answers[0].map(|a| a.0), Some("greet"));
        assert_eq!(answers[6], None);
        // A propagation of another graph is refused by name, not read past its end.
        let karate = testgraphs::karate();
        let e = p.record_labels(&karate).unwrap_err().to_string();
        assert!(e.contains("invalid propagation: propagation has"), "{e}");
        for write in [write_jsonl, write_tsv] {
            let e = write(&mut Vec::new(), &karate, &p, Nodes::Texts).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
            assert!(e.to_string().contains("propagation has"), "{e}");
        }
        let v: serde_json::Value = serde_json::from_str(lines[2]).unwrap();
        let scores = v["scores"].as_array().unwrap();
        assert!(scores
            .windows(2)
            .all(|w| w[0][1].as_f64() >= w[1][1].as_f64()));

        let mut all = Vec::new();
        write_jsonl(&mut all, &g, &p, Nodes::All).unwrap();
        let all = String::from_utf8(all).unwrap();
        assert_eq!(all.lines().count(), g.n_nodes());
        assert!(all
            .lines()
            .last()
            .unwrap()
            .starts_with(r#"{"feature":"u:later","label":"bye""#));

        let k = testgraphs::karate();
        let pk = propagate(&k, &PropagationConfig::default()).unwrap();
        let mut tsv = Vec::new();
        write_tsv(&mut tsv, &k, &pk, Nodes::Texts).unwrap();
        let tsv = String::from_utf8(tsv).unwrap();
        assert_eq!(tsv.lines().count(), 34);
        let row0 = tsv.lines().next().unwrap();
        assert!(row0.starts_with("0\tMr.\\sHi "), "{row0}");
        assert!(row0.contains(" __DUMMY__ "), "{row0}");
    }

    #[test]
    fn tsv_refuses_a_label_named_like_the_unknown_mass() {
        let g = testgraphs::from_tsv("a\tb\t1\nb\tc\t1\n", "a\t__DUMMY__\nc\tx\n");
        let p = propagate(&g, &PropagationConfig::default()).unwrap();
        let err = write_tsv(&mut Vec::new(), &g, &p, Nodes::Texts).unwrap_err();
        assert!(err.to_string().contains("__DUMMY__"), "{err}");
        // JSONL names the unknown mass by its own field, so the label is harmless there.
        write_jsonl(&mut Vec::new(), &g, &p, Nodes::Texts).unwrap();
    }

    #[test]
    fn tsv_refuses_a_text_keyed_like_a_feature_with_all_nodes() {
        let config = PropagationConfig::default();
        let g = testgraphs::bipartite();
        let p = propagate(&g, &config).unwrap();
        let mut tsv = Vec::new();
        write_tsv(&mut tsv, &g, &p, Nodes::All).unwrap();
        assert_eq!(String::from_utf8(tsv).unwrap().lines().count(), 12);

        let g = testgraphs::bipartite_with_orphan("u:later");
        let p = propagate(&g, &config).unwrap();
        let err = write_tsv(&mut Vec::new(), &g, &p, Nodes::All).unwrap_err();
        assert!(
            err.to_string()
                .contains("\"u:later\" is the key of a text node"),
            "{err}"
        );
        // Text rows alone, and JSONL (which marks features), are unambiguous.
        write_tsv(&mut Vec::new(), &g, &p, Nodes::Texts).unwrap();
        write_jsonl(&mut Vec::new(), &g, &p, Nodes::All).unwrap();
    }
}
