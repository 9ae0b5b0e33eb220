//! Seed files: who is labelled, with what, and how strongly.
//!
//! Two formats: JSON Lines for a `.jsonl`/`.json`/`.ndjson` file or one whose first non-blank
//! character is `{` (standard input included), TSV otherwise:
//!
//! - JSON Lines: `{"line": 12, "label": "thanks"}`, `{"id": "r0042", "label": "thanks",
//!   "weight": 0.5}`. `line` is the 1-based line of a corpus record (as in error messages
//!   and the propagation output); `id` (or `node`) is a record id, or a node name for
//!   edge-list graphs. A line gives one of `line`, `id` and `node`, and each field once.
//!   `"suggested": true` marks a text chosen for labelling (`sprig propagate --suggest`
//!   writes it): its label is left out of the class priors estimated from the seeds. Other
//!   fields (the suggestions' `text`, `guess`, …) are ignored.
//! - TSV (Junto's seed format): `node<TAB>label[<TAB>weight]`. `node` is a record id or node
//!   name; for a corpus without ids it is the 1-based record line.
//!
//! Weight defaults to 1 and must be in `[f32::MIN_POSITIVE, 1e6]`. TSV lines that start
//! with `#` and hold no TAB are comments. A seed file **overrides** the seeds of
//! every node it names (all of that node's earlier seed labels are replaced by the file's)
//! and adds seeds to nodes that had none. A name that matches no record is an error naming
//! the seed file's line.

use std::io::BufRead;
use std::path::Path;

use hashbrown::HashMap;

use crate::corpus::{
    id_value, json_object_fields, label_value, next_line, open_input, skip_bom, utf8_line,
    CorpusFormat, Record, RecordId,
};
use crate::error::{Error, Result};
use crate::graph::{Graph, GraphKind, Seed};

/// What a seed line names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeedTarget {
    /// A 1-based corpus record line.
    Line(u64),
    /// A record id or node name (plain text: a string id without quotes).
    Name(String),
}

/// One line of a seed file.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedEntry {
    /// The record or node.
    pub target: SeedTarget,
    /// The label name.
    pub label: String,
    /// The weight (> 0).
    pub weight: f32,
    /// 1-based line in the seed file.
    pub source_line: u64,
    /// The line says `"suggested": true` (as `sprig propagate --suggest` writes it): a text
    /// chosen for labelling, not drawn at random, so its label says nothing of how common
    /// its class is. `sprig propagate` leaves such seeds out of the class priors it
    /// estimates from the seeds (see `propagate::suggest_labels`).
    pub suggested: bool,
}

/// Reads a seed file (see the module docs for the formats).
///
/// # Errors
/// [`Error::Parse`] naming the line and field; [`Error::Io`].
pub fn read_seed_file(path: &Path) -> Result<Vec<SeedEntry>> {
    read_seeds_from(path, std::io::BufReader::new(open_input(path)?))
}

/// [`read_seed_file`] over an open reader; `path` names it in messages and, by its
/// extension, may say the file is JSON Lines.
pub(crate) fn read_seeds_from(path: &Path, mut reader: impl BufRead) -> Result<Vec<SeedEntry>> {
    skip_bom(&mut reader, path)?;
    // JSON Lines by extension, else by content (standard input, `.txt`, no extension): a
    // TSV node name hardly starts with `{`, and a JSONL line always does.
    let (sniffed, mut reader) = CorpusFormat::sniff_reader(path, reader)?;
    let jsonl = matches!(
        path.extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("jsonl" | "json" | "ndjson")
    ) || sniffed == CorpusFormat::Jsonl;
    let mut buf = Vec::new();
    let mut line = 0u64;
    let mut out = Vec::new();
    while next_line(&mut reader as &mut dyn BufRead, &mut buf, path, &mut line)? {
        let text = utf8_line(&buf, path, line)?;
        // A TSV comment has no TAB: a seed line always has one, even for an id such as `#a`.
        if text.trim().is_empty() || (!jsonl && text.starts_with('#') && !text.contains('\t')) {
            continue;
        }
        out.push(if jsonl {
            json_seed(text, path, line)?
        } else {
            tsv_seed(text, path, line)?
        });
    }
    Ok(out)
}

/// The largest seed weight: weights are relative strengths (1 by default), and past this
/// they would only overflow the propagation's and training's `f32` sums.
pub const MAX_SEED_WEIGHT: f64 = 1e6;

/// Whether `w` is a seed weight: in `[f32::MIN_POSITIVE, MAX_SEED_WEIGHT]`. Weights are
/// stored as f32: the low end is f32's smallest normal number (a subnormal or smaller weight
/// would round to 0 or lose its precision). Seed files and seeds built in memory
/// ([`crate::train::TrainSet::supervised_with`]) are held to it alike.
pub(crate) fn is_seed_weight(w: f64) -> bool {
    (f64::from(f32::MIN_POSITIVE)..=MAX_SEED_WEIGHT).contains(&w)
}

fn weight_value(raw: Option<f64>, path: &Path, line: u64) -> Result<f32> {
    let w = raw.unwrap_or(1.0);
    if !is_seed_weight(w) {
        return Err(Error::parse(
            path,
            line,
            format!(
                "field \"weight\": expected a number in [{:e}, {MAX_SEED_WEIGHT:e}], found {}",
                f32::MIN_POSITIVE,
                // Plain for everyday numbers (0, -1, 2.5), scientific for extreme ones.
                if w == 0.0 || (1e-4..1e7).contains(&w.abs()) {
                    format!("{w}")
                } else {
                    format!("{w:e}")
                },
            ),
        ));
    }
    Ok(w as f32)
}

fn json_seed(text: &str, path: &Path, line: u64) -> Result<SeedEntry> {
    // Read field by field, as corpus records are: a field given twice is refused (a JSON
    // map would keep the last copy and seed another node or label without a word).
    let [line_field, id, node, label, weight, suggested] = json_object_fields(
        text,
        [
            Some("line"),
            Some("id"),
            Some("node"),
            Some("label"),
            Some("weight"),
            Some("suggested"),
        ],
        path,
        line,
    )?;
    let suggested = match suggested {
        None | Some(serde_json::Value::Null) => false,
        Some(serde_json::Value::Bool(b)) => b,
        Some(other) => {
            return Err(Error::parse(
                path,
                line,
                format!("field \"suggested\": expected true or false, found {other}"),
            ))
        }
    };
    // One way to name the node: with two, one would be ignored, and it may name another.
    let given: Vec<&str> = [("line", &line_field), ("id", &id), ("node", &node)]
        .iter()
        .filter(|(_, v)| v.is_some())
        .map(|(name, _)| *name)
        .collect();
    if given.len() > 1 {
        return Err(Error::parse(
            path,
            line,
            format!(
                "fields {} name the node twice: give one of \"line\", \"id\" or \"node\"",
                given
                    .iter()
                    .map(|f| format!("{f:?}"))
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
        ));
    }
    let target = match (
        line_field,
        id.map(|v| ("id", v)).or(node.map(|v| ("node", v))),
    ) {
        (Some(l), _) => match l.as_u64() {
            Some(n) if n >= 1 => SeedTarget::Line(n),
            _ => {
                return Err(Error::parse(
                    path,
                    line,
                    format!("field \"line\": expected a line number >= 1, found {l}"),
                ))
            }
        },
        (None, Some((field, value))) => match id_value(Some(&value), field, path, line)? {
            Some(id) => SeedTarget::Name(id.as_plain()),
            None => return Err(Error::parse(path, line, format!("field {field:?} is null"))),
        },
        (None, None) => return Err(Error::parse(path, line, "missing field \"line\" or \"id\"")),
    };
    // A seed needs a label: an empty one is refused here, where the corpus reader's advice
    // (omit the field, or null) would not apply.
    if label
        .as_ref()
        .and_then(|l| l.as_str())
        .is_some_and(|l| l.trim().is_empty())
    {
        return Err(Error::parse(path, line, "field \"label\" is empty"));
    }
    let null = label.as_ref().is_some_and(serde_json::Value::is_null);
    let label = label_value(label.as_ref(), "label", path, line)?.ok_or_else(|| {
        Error::parse(
            path,
            line,
            if null {
                // What `sprig propagate --suggest` writes for the user to fill in.
                "field \"label\" is null: fill in the label, or remove the line"
            } else {
                "missing field \"label\""
            },
        )
    })?;
    let weight = match weight {
        None => 1.0,
        Some(w) => weight_value(
            Some(w.as_f64().ok_or_else(|| {
                Error::parse(
                    path,
                    line,
                    format!("field \"weight\": expected a number, found {w}"),
                )
            })?),
            path,
            line,
        )?,
    };
    Ok(SeedEntry {
        target,
        label,
        weight,
        source_line: line,
        suggested,
    })
}

fn tsv_seed(text: &str, path: &Path, line: u64) -> Result<SeedEntry> {
    let fields: Vec<&str> = text.split('\t').collect();
    if !(2..=3).contains(&fields.len()) {
        return Err(Error::parse(
            path,
            line,
            format!(
                "expected node<TAB>label[<TAB>weight], found {} fields",
                fields.len()
            ),
        ));
    }
    if fields[0].is_empty() {
        return Err(Error::parse(path, line, "field \"node\" is empty"));
    }
    if fields[1].trim().is_empty() {
        return Err(Error::parse(path, line, "field \"label\" is empty"));
    }
    crate::corpus::check_label(fields[1].trim(), "label", path, line)?;
    let weight = match fields.get(2) {
        None => 1.0,
        Some(w) => {
            let parsed: f64 = w.trim().parse().map_err(|_| {
                Error::parse(path, line, format!("field \"weight\": not a number: {w:?}"))
            })?;
            weight_value(Some(parsed), path, line)?
        }
    };
    Ok(SeedEntry {
        target: SeedTarget::Name(fields[0].to_owned()),
        label: fields[1].trim().to_owned(),
        weight,
        source_line: line,
        suggested: false,
    })
}

/// Builds sorted label names and seeds from `(node, label, weight)` triples: label ids follow
/// sorted label names; a repeated (node, label) keeps its largest weight.
pub fn collect_seeds(
    triples: impl IntoIterator<Item = (u32, String, f32)>,
) -> (Vec<String>, Vec<Seed>) {
    let triples: Vec<(u32, String, f32)> = triples.into_iter().collect();
    let mut labels: Vec<String> = triples.iter().map(|t| t.1.clone()).collect();
    labels.sort();
    labels.dedup();
    let id: HashMap<&str, u32> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.as_str(), i as u32))
        .collect();
    let mut seeds: Vec<Seed> = triples
        .iter()
        .map(|(node, label, weight)| Seed {
            node: *node,
            label: id[label.as_str()],
            weight: *weight,
        })
        .collect();
    crate::graph::merge_seeds(&mut seeds);
    drop(id);
    (labels, seeds)
}

/// Resolves each entry of a seed file to the key of the item it names: `items` gives every
/// item's 1-based line, id and key (a graph node, a record index). Lines are matched to lines;
/// names to ids, or, when no item has an id, to line numbers. `edge_list` says that the items
/// are the nodes of an edge list, named by their ids: a line of an edge list names two nodes,
/// so a seed cannot name one by its line.
///
/// # Errors
/// [`Error::UnknownSeedTarget`] for a name or line that matches no item; [`Error::Parse`] for
/// a line that holds two items, and for any line of an edge list.
fn resolve<'a>(
    path: &Path,
    entries: &[SeedEntry],
    items: impl Iterator<Item = (u64, Option<&'a RecordId>, u32)>,
    edge_list: bool,
) -> Result<Vec<(u32, String, f32)>> {
    // Per line, its key and whether another key shares the line (corpus lines hold one
    // record each, so this is a guard for items a program built).
    let mut by_line: HashMap<u64, (u32, bool)> = HashMap::new();
    let mut by_name: HashMap<String, u32> = HashMap::new();
    for (line, id, key) in items {
        by_line
            .entry(line)
            .and_modify(|e| e.1 |= e.0 != key)
            .or_insert((key, false));
        if let Some(id) = id {
            by_name.insert(id.as_plain(), key);
        }
    }
    let has_ids = !by_name.is_empty();
    let unknown =
        |e: &SeedEntry, what: &'static str, name: String, hint: String| Error::UnknownSeedTarget {
            path: path.to_owned(),
            line: e.source_line,
            what,
            name,
            hint,
        };
    let line_key = |l: u64, e: &SeedEntry| -> Result<u32> {
        if edge_list {
            // An edge-list node's line is the line where it first appears, which holds
            // another node too, and later lines name it again beside others: a line number
            // cannot say which node is meant (it used to pick one silently).
            return Err(Error::parse(
                path,
                e.source_line,
                format!(
                    "line {l}: a line of an edge list holds more than one node, so a seed \
                     cannot name a node by its line: name it, {{\"id\": \"NODE\", ...}} \
                     (JSONL) or NODE<TAB>LABEL (TSV)"
                ),
            ));
        }
        match by_line.get(&l) {
            Some(&(key, false)) => Ok(key),
            Some(&(_, true)) => Err(Error::parse(
                path,
                e.source_line,
                format!("line {l} holds more than one node of the graph: name the node by its id"),
            )),
            None => Err(unknown(e, "record line", l.to_string(), String::new())),
        }
    };
    let mut named: Vec<(u32, String, f32)> = Vec::with_capacity(entries.len());
    for e in entries {
        // What the file readers check, for entries a program built itself.
        weight_value(Some(f64::from(e.weight)), path, e.source_line)?;
        if e.label.trim().is_empty() || e.label.trim() != e.label {
            return Err(Error::parse(
                path,
                e.source_line,
                format!(
                    "field \"label\": {:?} is empty or has spaces around it",
                    e.label
                ),
            ));
        }
        crate::corpus::check_label(&e.label, "label", path, e.source_line)?;
        let key = match &e.target {
            SeedTarget::Line(l) => line_key(*l, e)?,
            SeedTarget::Name(name) => match by_name.get(name) {
                Some(&n) => n,
                None if edge_list => return Err(unknown(e, "node", name.clone(), String::new())),
                None if !has_ids => {
                    let l: u64 = name.parse().map_err(|_| {
                        unknown(
                            e,
                            "record (the corpus has no ids, so give a line number)",
                            name.clone(),
                            String::new(),
                        )
                    })?;
                    line_key(l, e)?
                }
                None => {
                    // Only some records have ids, so names are ids; a number that is the
                    // line of a record was most likely meant as that line.
                    let hint = match name.parse::<u64>() {
                        Ok(l) if by_line.contains_key(&l) => format!(
                            " (records are named by id here, as some have one: to name the \
                             record on line {l}, use JSONL {{\"line\": {l}, \"label\": ...}})"
                        ),
                        _ => String::new(),
                    };
                    return Err(unknown(e, "record id", name.clone(), hint));
                }
            },
        };
        named.push((key, e.label.clone(), e.weight));
    }
    Ok(named)
}

/// Applies a seed file to `graph`: nodes it names get exactly the file's labels.
///
/// # Errors
/// [`Error::UnknownSeedTarget`] for a name or line that matches no record; [`Error::Parse`]
/// (at the entry's `source_line`) for a weight or label a seed file could not hold.
pub fn apply_seed_file(graph: &mut Graph, path: &Path, entries: &[SeedEntry]) -> Result<()> {
    let items = graph
        .records()
        .iter()
        .map(|r| (r.line, r.id.as_ref(), r.node));
    let named = resolve(path, entries, items, graph.kind() == GraphKind::Edges)?;
    let overridden: hashbrown::HashSet<u32> = named.iter().map(|t| t.0).collect();
    let kept = graph
        .seeds()
        .iter()
        .filter(|s| !overridden.contains(&s.node))
        .map(|s| (s.node, graph.labels()[s.label as usize].clone(), s.weight));
    let (labels, seeds) = collect_seeds(kept.chain(named).collect::<Vec<_>>());
    graph.set_seeds(labels, seeds)
}

/// A seed file's labels per corpus record, for training (`sprig train --seeds`): the same
/// file that `sprig graph --seeds` or `sprig propagate --seeds` took, matched the same way.
/// `labels[i]` holds record `i`'s `(label, weight)` pairs, sorted by label (a label named
/// twice keeps its largest weight), or is empty when the file does not name the record.
///
/// # Errors
/// [`Error::UnknownSeedTarget`] for a name or line that matches no record; [`Error::Parse`]
/// (at the entry's `source_line`) for a weight or label a seed file could not hold.
pub fn record_seeds(
    records: &[Record],
    path: &Path,
    entries: &[SeedEntry],
) -> Result<Vec<Vec<(String, f32)>>> {
    let items = records
        .iter()
        .enumerate()
        .map(|(i, r)| (r.line, r.id.as_ref(), i as u32));
    let mut labels: Vec<Vec<(String, f32)>> = vec![Vec::new(); records.len()];
    for (i, label, weight) in resolve(path, entries, items, false)? {
        let of = &mut labels[i as usize];
        match of.iter_mut().find(|l| l.0 == label) {
            Some(l) => l.1 = l.1.max(weight),
            None => of.push((label, weight)),
        }
    }
    for of in &mut labels {
        of.sort_by(|a, b| a.0.cmp(&b.0));
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, contents: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        (dir, path)
    }

    #[test]
    fn reads_both_formats() {
        let (_d, p) = write("s.tsv", "# comment\na\tsports\nb\tpolitics\t0.5\n");
        let e = read_seed_file(&p).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[1].weight, 0.5);
        assert_eq!(e[1].source_line, 3);
        let (_d, p) = write(
            "s.jsonl",
            "{\"line\": 3, \"label\": \"x\"}\n{\"id\": 7, \"label\": \"y\", \"weight\": 2}\n",
        );
        let e = read_seed_file(&p).unwrap();
        assert_eq!(e[0].target, SeedTarget::Line(3));
        assert_eq!(e[1].target, SeedTarget::Name("7".into()));
    }

    #[test]
    fn suggested_lines_are_marked_and_their_other_fields_ignored() {
        // As `sprig propagate --suggest` writes them, once filled in.
        let (_d, p) = write(
            "next.jsonl",
            "{\"id\":\"r7\",\"label\":\"x\",\"suggested\":true,\"guess\":\"y\",\"gain\":2.5,\"text\":\"hi\"}\n\
             {\"line\":3,\"label\":\"x\",\"suggested\":false}\n\
             {\"line\":4,\"label\":\"x\",\"suggested\":null}\n\
             {\"line\":5,\"label\":\"x\"}\n",
        );
        let e = read_seed_file(&p).unwrap();
        let marks: Vec<bool> = e.iter().map(|e| e.suggested).collect();
        assert_eq!(marks, [true, false, false, false]);
        assert_eq!(
            (&e[0].target, e[0].label.as_str()),
            (&SeedTarget::Name("r7".into()), "x")
        );
        let (_d, p) = write("t.tsv", "a\tx\n");
        assert!(!read_seed_file(&p).unwrap()[0].suggested);
        for (contents, needle) in [
            (
                "{\"line\":1,\"label\":\"x\",\"suggested\":\"yes\"}\n",
                ":1: field \"suggested\": expected true or false, found \"yes\"",
            ),
            // Not filled in: named as such, not as a missing field.
            (
                "{\"line\":1,\"label\":\"x\"}\n{\"line\":2,\"label\":null,\"suggested\":true}\n",
                ":2: field \"label\" is null: fill in the label, or remove the line",
            ),
            ("{\"line\":1}\n", ":1: missing field \"label\""),
        ] {
            let (_d, p) = write("s.jsonl", contents);
            let e = read_seed_file(&p).unwrap_err().to_string();
            assert!(e.contains(needle), "{contents:?}: {e}");
        }
    }

    #[test]
    fn bad_weights_and_shapes_name_the_line() {
        for (contents, needle) in [
            ("a\tx\tnan\n", ":1: field \"weight\""),
            ("a\tx\t-1\n", ":1: field \"weight\""),
            ("a\tx\t0\n", ":1: field \"weight\""),
            ("a\n", ":1: expected node<TAB>label"),
            ("a\t\n", ":1: field \"label\" is empty"),
        ] {
            let (_d, p) = write("s.tsv", contents);
            let e = read_seed_file(&p).unwrap_err().to_string();
            assert!(e.contains(needle), "{contents:?}: {e}");
        }
        let (_d, p) = write("s.jsonl", "{\"line\": 0, \"label\": \"x\"}\n");
        assert!(read_seed_file(&p)
            .unwrap_err()
            .to_string()
            .contains("field \"line\""));
        for (contents, needle) in [
            // Past the cap, and below f32's normal range (printed readably).
            (
                "a\tx\t1e7\n",
                "expected a number in [1.1754944e-38, 1e6], found 1e7",
            ),
            ("a\tx\t1e-40\n", "found 1e-40"),
            ("a\tx\t0\n", "found 0"),
            ("a\tx\t-1.5\n", "found -1.5"),
            (
                "{\"line\": 1, \"label\": \"\"}\n",
                ":1: field \"label\" is empty",
            ),
        ] {
            let (_d, p) = write("s.txt", contents);
            let e = read_seed_file(&p).unwrap_err().to_string();
            assert!(e.contains(needle), "{contents:?}: {e}");
        }
    }

    #[test]
    fn a_jsonl_field_given_twice_or_a_node_named_twice_is_refused() {
        for (contents, needle) in [
            (
                r#"{"id": "t01", "label": "x", "id": "t02"}"#,
                r#"field "id" appears twice"#,
            ),
            (
                r#"{"id":"t01","label":"x","label":"y"}"#,
                r#"field "label" appears twice"#,
            ),
            (
                r#"{"line": 2, "label": "x", "weight": 1, "weight": 9}"#,
                r#"field "weight" appears twice"#,
            ),
            (
                r#"{"id": "t01", "node": "t02", "label": "x"}"#,
                r#"fields "id" and "node" name the node twice"#,
            ),
            (
                r#"{"line": 3, "node": "t02", "label": "x"}"#,
                r#"fields "line" and "node" name the node twice"#,
            ),
            (
                r#"{"line": 3, "id": null, "label": "x"}"#,
                r#""line" and "id""#,
            ),
            (
                r#"["id", "label"]"#,
                "expected a JSON object, found an array",
            ),
        ] {
            let (_d, p) = write(
                "s.jsonl",
                &format!("{{\"id\": \"a\", \"label\": \"x\"}}\n{contents}\n"),
            );
            let e = read_seed_file(&p).unwrap_err().to_string();
            assert!(
                e.contains("s.jsonl:2: ") && e.contains(needle),
                "{contents}: {e}"
            );
        }
        // Fields no seed reads may repeat, and `node` alone names the node as `id` does.
        let (_d, p) = write(
            "s.jsonl",
            "{\"node\": \"n\", \"label\": \"x\", \"note\": 1, \"note\": 2}\n",
        );
        let e = read_seed_file(&p).unwrap();
        assert_eq!(e[0].target, SeedTarget::Name("n".into()));
    }

    #[test]
    fn jsonl_is_sniffed_and_hash_ids_are_not_comments() {
        // No JSONL extension: the first `{` says JSONL.
        for name in ["seeds", "seeds.txt", "seeds.dat"] {
            let (_d, p) = write(name, "\n{\"id\": \"a\", \"label\": \"x\"}\n");
            let e = read_seed_file(&p).unwrap();
            assert_eq!(e[0].target, SeedTarget::Name("a".into()), "{name}");
        }
        // A TSV line starting with `#` is a comment only without a TAB.
        let (_d, p) = write("s.tsv", "# node\tlabel\n#a\tx\n# a note\nb\ty\n");
        let e = read_seed_file(&p).unwrap();
        let names: Vec<_> = e.iter().map(|e| e.target.clone()).collect();
        let name = |n: &str| SeedTarget::Name(n.into());
        assert_eq!(names, [name("# node"), name("#a"), name("b")]);
    }

    #[test]
    fn edge_list_nodes_are_named_never_lined() {
        // Edge list `a5<TAB>b5` on line 11, a5 first seen on line 4: b5's line is 11, and
        // line 11 names a5 too. A line never names an edge-list node, even a line that only
        // one node first appears on.
        let (a5, b5) = (RecordId("\"a5\"".into()), RecordId("\"b5\"".into()));
        let items = || [(4, Some(&a5), 0), (11, Some(&b5), 1)].into_iter();
        for line in [11, 4] {
            let (_d, p) = write(
                "s.jsonl",
                &format!("{{\"line\": {line}, \"label\": \"x\"}}\n"),
            );
            let err = resolve(&p, &read_seed_file(&p).unwrap(), items(), true).unwrap_err();
            let err = err.to_string();
            assert!(
                err.contains(&format!(
                    ":1: line {line}: a line of an edge list holds more than one node"
                )),
                "{err}"
            );
        }
        let (_d, p) = write("s.tsv", "b5\tx\nzz\ty\n");
        let err = resolve(&p, &read_seed_file(&p).unwrap(), items(), true).unwrap_err();
        assert!(
            err.to_string()
                .ends_with(":2: seed names unknown node \"zz\""),
            "{err}"
        );
        let (_d, p) = write("s.tsv", "b5\tx\n");
        let named = resolve(&p, &read_seed_file(&p).unwrap(), items(), true).unwrap();
        assert_eq!(named, [(1, "x".to_owned(), 1.0)]);
    }

    #[test]
    fn collect_sorts_labels_and_keeps_max_weight() {
        let (labels, seeds) = collect_seeds(vec![
            (2, "b".to_string(), 1.0),
            (1, "a".to_string(), 0.5),
            (2, "b".to_string(), 3.0),
        ]);
        assert_eq!(labels, vec!["a", "b"]);
        assert_eq!(seeds.len(), 2);
        assert_eq!(
            (seeds[1].node, seeds[1].label, seeds[1].weight),
            (2, 1, 3.0)
        );
    }

    #[test]
    fn record_seeds_match_lines_ids_and_keep_max_weights() {
        let record = |line: u64, id: Option<&str>| Record {
            line,
            id: id.map(|i| RecordId(i.to_owned())),
            text: format!("text {line}"),
            label: None,
        };
        let with_ids = [record(2, Some("\"a\"")), record(3, Some("7"))];
        let (_d, p) = write(
            "s.jsonl",
            "{\"line\": 3, \"label\": \"y\"}\n{\"id\": \"a\", \"label\": \"x\"}\n\
             {\"id\": 7, \"label\": \"b\", \"weight\": 2}\n{\"id\": \"7\", \"label\": \"b\"}\n",
        );
        let got = record_seeds(&with_ids, &p, &read_seed_file(&p).unwrap()).unwrap();
        assert_eq!(got[0], vec![("x".to_owned(), 1.0)]);
        // Line 3 and id 7 are one record; its labels sorted, `b` at its larger weight.
        assert_eq!(got[1], vec![("b".to_owned(), 2.0), ("y".to_owned(), 1.0)]);

        // Without ids a TSV name is a line number; one that is no record's line is refused.
        let no_ids = [record(1, None), record(4, None)];
        let (_d, p) = write("s.tsv", "4\tx\n");
        let got = record_seeds(&no_ids, &p, &read_seed_file(&p).unwrap()).unwrap();
        assert_eq!(got, vec![vec![], vec![("x".to_owned(), 1.0)]]);
        let (_d, p) = write("s.tsv", "4\tx\n2\ty\n");
        let err = record_seeds(&no_ids, &p, &read_seed_file(&p).unwrap()).unwrap_err();
        assert!(err.to_string().contains(":2:"), "{err}");
        // Only some records have ids: names are ids, and a number that is a record's line
        // gets a hint to name that line in JSONL.
        let some_ids = [record(2, Some("\"a\"")), record(4, None)];
        let (_d, p) = write("s.tsv", "a\tx\n4\tt\n");
        let err = record_seeds(&some_ids, &p, &read_seed_file(&p).unwrap()).unwrap_err();
        assert!(
            err.to_string().ends_with(
                ":2: seed names unknown record id \"4\" (records are named by id here, as \
                 some have one: to name the record on line 4, use JSONL {\"line\": 4, \
                 \"label\": ...})"
            ),
            "{err}"
        );
        let (_d, p) = write("s.tsv", "5\tt\n");
        let err = record_seeds(&some_ids, &p, &read_seed_file(&p).unwrap()).unwrap_err();
        assert!(
            err.to_string()
                .ends_with(":1: seed names unknown record id \"5\""),
            "{err}"
        );
        // Records a program built may share a line (a file's never do): a seed naming that
        // line is ambiguous and refused, not given to the first of them.
        let shared = [record(4, None), record(4, None), record(5, None)];
        let (_d, p) = write("s.tsv", "4\tx\n");
        let err = record_seeds(&shared, &p, &read_seed_file(&p).unwrap()).unwrap_err();
        assert!(
            err.to_string().contains("line 4 holds more than one node"),
            "{err}"
        );
        let (_d, p) = write("s.tsv", "5\tx\n");
        let got = record_seeds(&shared, &p, &read_seed_file(&p).unwrap()).unwrap();
        assert_eq!(got[2], vec![("x".to_owned(), 1.0)]);
        // Entries a program built are checked as a file's would be.
        let entry = |label: &str, weight: f32| SeedEntry {
            target: SeedTarget::Line(4),
            label: label.into(),
            weight,
            source_line: 9,
            suggested: false,
        };
        for (e, why) in [
            (entry("x", f32::NAN), "field \"weight\""),
            (entry("x", -1.0), "field \"weight\""),
            (entry("", 1.0), "is empty"),
            (entry(" x", 1.0), "spaces around it"),
            (entry("a\tb", 1.0), "control character"),
        ] {
            let err = record_seeds(&no_ids, &p, &[e]).unwrap_err().to_string();
            assert!(err.contains(":9: ") && err.contains(why), "{err}");
        }
    }
}
