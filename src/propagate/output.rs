//! Text outputs of a propagation: JSONL (one object per input record) and Junto-style TSV
//! (one row per node). Both print floats with exactly 6 decimals and list labels by score
//! descending then name, so outputs are stable enough for golden files.
//!
//! **JSONL**, one line per record of [`Graph::records`], in order:
//!
//! ```text
//! {"line":3,"id":"a7","label":"greet","score":0.912000,"unknown":0.010000,"scores":[["greet",0.912000],["bye",0.078000]],"seed":false}
//! ```
//!
//! `label` is the top label (`null` when the node abstains, with `score` 0 and `scores`
//! empty), `id` the record's id as JSON (`null` if none), `seed` whether the record's node
//! carried a seed. With `all_nodes`, the non-text (feature) nodes follow, with
//! `"feature":"<key>"` in place of `line` and `id`: a feature → label lexicon.
//!
//! **TSV** (Junto's label-file shape), one row per text node in node order (plus feature
//! nodes with `all_nodes`): `key<TAB>label1 score1 label2 score2 … __DUMMY__ unknown`. The
//! unknown mass always comes last, under Junto's dummy label name [`UNKNOWN_LABEL`]. Keys and
//! labels are escaped so a row stays one line and splits on TAB then space: `\` → `\\`,
//! TAB → `\t`, LF → `\n`, CR → `\r`, and in labels only, space → `\s`.

use std::fmt::Write as _;
use std::io::{self, Write};

use super::Propagation;
use crate::graph::Graph;

/// The name of the unknown (dummy) label in TSV output, as in Junto.
pub const UNKNOWN_LABEL: &str = "__DUMMY__";

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

fn check(graph: &Graph, result: &Propagation) -> io::Result<()> {
    if result.distribution().n_nodes() != graph.n_nodes() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "propagation has {} nodes but the graph has {}",
                result.distribution().n_nodes(),
                graph.n_nodes()
            ),
        ));
    }
    Ok(())
}

/// Writes `"label":…,"score":…,"unknown":…,"scores":[…],"seed":…` for `node`.
fn dist_fields(buf: &mut String, names: &[String], result: &Propagation, node: usize) {
    let d = result.distribution();
    let entries = d.get(node);
    match entries.first() {
        Some(top) => {
            let _ = write!(
                buf,
                "\"label\":{},\"score\":{:.6}",
                names[top.label as usize], top.score
            );
        }
        None => buf.push_str("\"label\":null,\"score\":0.000000"),
    }
    let _ = write!(buf, ",\"unknown\":{:.6},\"scores\":[", d.unknown(node));
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            buf.push(',');
        }
        let _ = write!(buf, "[{},{:.6}]", names[e.label as usize], e.score);
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
    all_nodes: bool,
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
        dist_fields(&mut buf, &names, result, r.node as usize);
        buf.push('\n');
        out.write_all(buf.as_bytes())?;
    }
    if all_nodes {
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

/// Escapes a TSV field (see the module docs); `space` also escapes spaces.
fn escape(s: &str, space: bool, buf: &mut String) {
    for c in s.chars() {
        match c {
            '\\' => buf.push_str("\\\\"),
            '\t' => buf.push_str("\\t"),
            '\n' => buf.push_str("\\n"),
            '\r' => buf.push_str("\\r"),
            ' ' if space => buf.push_str("\\s"),
            c => buf.push(c),
        }
    }
}

/// Whether [`write_tsv`] can write `graph`'s nodes: no label is named [`UNKNOWN_LABEL`]
/// (it would read as the unknown mass, which every row ends with), and, with `all_nodes`,
/// no text and feature node share a key (TSV rows carry only a key, so a text such as
/// `u:hi` and the feature `u:hi` would be two rows no reader could tell apart; JSONL marks
/// features). Cheap: callers check it before propagating.
///
/// # Errors
/// [`io::ErrorKind::InvalidData`] naming the label or key.
pub fn check_tsv(graph: &Graph, all_nodes: bool) -> io::Result<()> {
    let invalid = |message: String| Err(io::Error::new(io::ErrorKind::InvalidData, message));
    if graph.labels().iter().any(|l| l == UNKNOWN_LABEL) {
        return invalid(format!(
            "a label is named {UNKNOWN_LABEL}, the TSV name of the unknown mass: rename it, or \
             write JSONL"
        ));
    }
    if all_nodes {
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
    all_nodes: bool,
) -> io::Result<()> {
    check(graph, result)?;
    check_tsv(graph, all_nodes)?;
    let names: Vec<String> = result
        .labels()
        .iter()
        .map(|l| {
            let mut s = String::new();
            escape(l, true, &mut s);
            s
        })
        .collect();
    let end = if all_nodes {
        graph.n_nodes()
    } else {
        graph.n_text_nodes()
    };
    let d = result.distribution();
    let mut buf = String::new();
    for v in 0..end {
        buf.clear();
        escape(&graph.keys()[v], false, &mut buf);
        buf.push('\t');
        for e in d.get(v) {
            let _ = write!(buf, "{} {:.6} ", names[e.label as usize], e.score);
        }
        let _ = writeln!(buf, "{UNKNOWN_LABEL} {:.6}", d.unknown(v));
        out.write_all(buf.as_bytes())?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::propagate::{propagate, testgraphs, PropagationConfig};

    #[test]
    fn jsonl_and_tsv_outputs_have_the_documented_shape() {
        let g = testgraphs::bipartite();
        let p = propagate(&g, &PropagationConfig::default()).unwrap();
        let mut out = Vec::new();
        write_jsonl(&mut out, &g, &p, false).unwrap();
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
        let v: serde_json::Value = serde_json::from_str(lines[2]).unwrap();
        let scores = v["scores"].as_array().unwrap();
        assert!(scores
            .windows(2)
            .all(|w| w[0][1].as_f64() >= w[1][1].as_f64()));

        let mut all = Vec::new();
        write_jsonl(&mut all, &g, &p, true).unwrap();
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
        write_tsv(&mut tsv, &k, &pk, false).unwrap();
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
        let err = write_tsv(&mut Vec::new(), &g, &p, false).unwrap_err();
        assert!(err.to_string().contains("__DUMMY__"), "{err}");
        // JSONL names the unknown mass by its own field, so the label is harmless there.
        write_jsonl(&mut Vec::new(), &g, &p, false).unwrap();
    }

    #[test]
    fn tsv_refuses_a_text_keyed_like_a_feature_with_all_nodes() {
        let config = PropagationConfig::default();
        let g = testgraphs::bipartite();
        let p = propagate(&g, &config).unwrap();
        let mut tsv = Vec::new();
        write_tsv(&mut tsv, &g, &p, true).unwrap();
        assert_eq!(String::from_utf8(tsv).unwrap().lines().count(), 12);

        let g = testgraphs::bipartite_with_orphan("u:later");
        let p = propagate(&g, &config).unwrap();
        let err = write_tsv(&mut Vec::new(), &g, &p, true).unwrap_err();
        assert!(
            err.to_string()
                .contains("\"u:later\" is the key of a text node"),
            "{err}"
        );
        // Text rows alone, and JSONL (which marks features), are unambiguous.
        write_tsv(&mut Vec::new(), &g, &p, false).unwrap();
        write_jsonl(&mut Vec::new(), &g, &p, true).unwrap();
    }
}
