//! Training sets: the examples [`train`](super::train) fits, with their target
//! distributions and loss weights. [`TrainSet::supervised`] takes the corpus labels (or a seed
//! file's) alone; [`TrainSet::distilled`] joins them with the labels JSONL of `sprig
//! propagate`, checked line by line against the corpus; [`TrainSet::from_propagation`] does
//! the same with the propagation in memory.

use std::io::BufRead;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Confidence, TrainConfig};
use crate::corpus::Record;
use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::propagate::Propagation;

/// The longest line of a labels file [`TrainSet::distilled`] reads: 16 MiB. `sprig
/// propagate` writes each label name twice (`label`, `scores`) for up to K labels (at most
/// 1024) after the record's id, which is up to a 1 MiB corpus line itself: long label names
/// with a large K pass the corpus's 1 MiB limit (a review's 600 KB label name did, at K = 8),
/// and training must read what propagation wrote.
pub const MAX_LABELS_LINE: usize = 16 << 20;

/// One training text with its target distribution.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// The raw text.
    pub text: String,
    /// `(label id, probability)` pairs summing to 1.
    pub target: Vec<(u32, f32)>,
    /// Loss weight: 1 for seeds (their weights' sum for a seed file's), λ · confidence /
    /// mean confidence for propagated labels.
    pub weight: f32,
    /// Whether the label is a seed's (the corpus's label, or a seed file's).
    pub seed: bool,
}

/// Counts of how a train set was assembled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainSetCounts {
    /// Records read.
    pub records: usize,
    /// Examples with a corpus label.
    pub seeds: usize,
    /// Examples with a propagated label.
    pub propagated: usize,
    /// Records skipped because propagation abstained on them.
    pub abstained: usize,
    /// Records skipped for low confidence.
    pub low_confidence: usize,
    /// Labels lines with `"seed": false` on a record that has a corpus label: propagation
    /// did not have it as a seed, so the labels were propagated over another corpus or
    /// another order of it. (The converse is no sign: identical texts share a node, so an
    /// unlabelled copy of a seed's text is a seed too, and a seed's top label can move.)
    #[serde(default, skip_serializing_if = "is_zero")]
    pub seed_disagreements: usize,
    /// Labels lines with `"seed": true` on a record that has no label here and shares no
    /// node with a labelled record: propagation had seeds (from a seed file) that training
    /// was not given, so they train on their propagated labels instead.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub seeds_not_given: usize,
    /// Labels lines with `"seed": true` on a record labelled here whose propagated top label
    /// scores more than twice every label here of its node's records: propagation may have
    /// had a seed file that relabelled it (or its neighbours far outweighed its seeds).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub seeds_relabelled: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Labelled examples and the label names they refer to (sorted).
#[derive(Debug, Clone, PartialEq)]
pub struct TrainSet {
    /// Label names; a target's label id indexes this.
    pub labels: Vec<String>,
    /// The examples, in record order.
    pub examples: Vec<Example>,
    /// How they were assembled.
    pub counts: TrainSetCounts,
}

/// One line of `sprig propagate`'s JSONL as written; [`LabelsLine`] once checked. Feature
/// lines (`--all-nodes`) name a `feature` instead of a `line` and are passed over.
#[derive(Debug, Deserialize)]
struct RawLabelsLine {
    line: Option<u64>,
    /// The feature of a feature node's line (`--all-nodes`).
    #[serde(default)]
    feature: Option<String>,
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(default)]
    seed: Option<bool>,
    /// [`crate::hash::record_hash`] of the record's text, in 8 hexadecimal digits (absent
    /// from files of graphs that do not keep it).
    #[serde(default)]
    text_hash: Option<String>,
    /// Required on record lines: a default would change training (an absent `unknown` read
    /// as 0 made a line fully confident).
    #[serde(default)]
    unknown: Option<f32>,
    #[serde(default)]
    scores: Option<Vec<(String, f32)>>,
}

/// Why a labels line's `text_hash` (`want`) does not match the corpus record it joins
/// (whose text hashes to `got`).
fn stale_labels_message(want: &str, got: u32, record: &Record) -> String {
    const SHOWN: usize = 60;
    let text: String = record.text.chars().take(SHOWN).collect();
    let more = if record.text.chars().count() > SHOWN {
        "…"
    } else {
        ""
    };
    format!(
        "field \"text_hash\": {want}, but the text of corpus line {} ({text:?}{more}) hashes \
         to {got:08x}: these labels were propagated over another corpus, or over another \
         version of this one (run `sprig graph` and `sprig propagate` on it again)",
        record.line
    )
}

/// A record's line of the labels file, checked.
#[derive(Debug)]
struct LabelsLine {
    line: u64,
    /// The record's id as `sprig propagate` wrote it (`None` when absent or null).
    id: Option<serde_json::Value>,
    /// Whether propagation had the record as a seed (`None` when absent).
    seed: Option<bool>,
    unknown: f32,
    scores: Vec<(String, f32)>,
}

/// Checks a labels line's `scores` as `sprig propagate` writes them: labels as the corpus
/// gives them (not empty, no surrounding spaces, no control character), each once; scores
/// in [0, 1] summing to at most 1 (with room for their rounding to 6 decimals). A score out
/// of range is no propagated distribution, and one huge value would silently outweigh every
/// other example through the mean confidence.
fn check_scores(scores: &[(String, f32)], path: &Path, line: u64) -> Result<()> {
    let bad = |what: String| Error::parse(path, line, what);
    let mut total = 0.0f64;
    for (i, (label, score)) in scores.iter().enumerate() {
        crate::corpus::check_label(label, "scores", path, line)?;
        if label.is_empty() || label.trim() != label {
            return Err(bad(format!(
                "field \"scores[{i}][0]\": the label {label:?} is empty or has surrounding \
                 spaces (labels are trimmed, and `sprig propagate` writes them so)"
            )));
        }
        if scores[..i].iter().any(|s| s.0 == *label) {
            return Err(bad(format!(
                "field \"scores[{i}][0]\": the label {label:?} is listed twice"
            )));
        }
        if !(0.0..=1.0 + 1e-4).contains(score) {
            return Err(bad(format!(
                "field \"scores[{i}][1]\": {score} is not a score in [0, 1]"
            )));
        }
        total += f64::from(*score);
    }
    if total > 1.0 + 1e-3 + 1e-6 * scores.len() as f64 {
        return Err(bad(format!(
            "field \"scores\": the scores sum to {total:.6}, more than 1"
        )));
    }
    Ok(())
}

fn label_ids(names: impl Iterator<Item = String>) -> Vec<String> {
    let mut labels: Vec<String> = names.collect();
    labels.sort();
    labels.dedup();
    labels
}

/// Whether a labels file's lines moved against the corpus: the offset `δ ≠ 0` (within ±3
/// lines) at which more than twice as many labelled records find a seed line of their label
/// as at their own line (and at least 3 do), with both counts. A record inserted at the top
/// of a corpus without ids moves every line by one: on the bundled corpus (70 seeds) 70 match
/// at −1 and none in place. Edited labels (seeds dropped, others added) match in place or
/// nowhere, so they never look shifted.
fn shifted(
    records: &[Record],
    hard: &[HardLabels],
    parsed: &[(usize, LabelsLine)],
) -> Option<(i64, usize, usize)> {
    const REACH: i64 = 3;
    let by_line: hashbrown::HashMap<u64, &LabelsLine> =
        parsed.iter().map(|(_, row)| (row.line, row)).collect();
    let mut hits = [0usize; 2 * REACH as usize + 1];
    for (r, h) in records.iter().zip(hard) {
        let Some(h) = h else { continue };
        for delta in -REACH..=REACH {
            let Some(line) = r.line.checked_add_signed(delta) else {
                continue;
            };
            let seed_of_label = by_line.get(&line).is_some_and(|row| {
                row.seed == Some(true)
                    && row
                        .scores
                        .first()
                        .is_some_and(|top| h.iter().any(|l| l.0 == top.0))
            });
            hits[(delta + REACH) as usize] += usize::from(seed_of_label);
        }
    }
    let aligned = hits[REACH as usize];
    (-REACH..=REACH)
        .filter(|&d| d != 0)
        .map(|d| (d, hits[(d + REACH) as usize]))
        .max_by_key(|&(d, n)| (n, -d.abs()))
        .filter(|&(_, n)| n >= 3 && n > 2 * aligned)
        .map(|(d, n)| (d, n, aligned))
}

/// Per record of `graph` (`records` are its records), the graph's seeds of the record's
/// node when no record of that node has a label: the seeds a program or a seed file put on
/// the graph. Empty when there are none.
fn unlabelled_node_seeds(records: &[Record], graph: &Graph) -> Vec<Vec<(String, f32)>> {
    let refs = graph.records();
    let mut labelled = vec![false; graph.n_nodes()];
    for (r, g) in records.iter().zip(refs) {
        if r.label.is_some() {
            labelled[g.node as usize] = true;
        }
    }
    let mut of_node: hashbrown::HashMap<u32, Vec<(String, f32)>> = hashbrown::HashMap::new();
    for s in graph.seeds() {
        if !labelled[s.node as usize] {
            let name = graph.labels()[s.label as usize].clone();
            of_node.entry(s.node).or_default().push((name, s.weight));
        }
    }
    if of_node.is_empty() {
        return Vec::new();
    }
    refs.iter()
        .map(|g| of_node.get(&g.node).cloned().unwrap_or_default())
        .collect()
}

/// A record's hard labels, `(name, weight)`; `None` for a record without one.
type HardLabels<'a> = Option<Vec<(&'a str, f32)>>;

/// Per-record seed lists are one per record, or none.
fn check_seed_lists(records: &[Record], seeds: &[Vec<(String, f32)>]) -> Result<()> {
    if !seeds.is_empty() && seeds.len() != records.len() {
        return Err(Error::config(
            "seeds",
            format!(
                "{} seed lists for {} records: give one per record (empty for none), or none",
                seeds.len(),
                records.len()
            ),
        ));
    }
    Ok(())
}

/// Each record's hard labels: the seed file's when it names the record (`seeds[i]` not
/// empty), else the corpus label, else none.
///
/// # Errors
/// [`Error::InvalidConfig`] (`seeds`) for a weight a seed file could not hold (outside
/// `[f32::MIN_POSITIVE, MAX_SEED_WEIGHT]`), an empty label, or a label named twice for one
/// record ([`crate::seeds::record_seeds`] merges those).
fn hard_labels<'a>(
    records: &'a [Record],
    seeds: &'a [Vec<(String, f32)>],
) -> Result<Vec<HardLabels<'a>>> {
    check_seed_lists(records, seeds)?;
    for r in records {
        if let Some(why) = r
            .label
            .as_deref()
            .and_then(crate::corpus::label_name_problem)
        {
            return Err(Error::config(
                "records",
                format!("record of line {}: {why}", r.line),
            ));
        }
    }
    for (s, r) in seeds.iter().zip(records) {
        let bad = |why: String| Error::config("seeds", format!("record of line {}: {why}", r.line));
        for (i, (label, w)) in s.iter().enumerate() {
            if !crate::seeds::is_seed_weight(f64::from(*w)) {
                return Err(bad(format!(
                    "label {label:?} has weight {w}, outside [{:e}, {:e}]",
                    f64::from(f32::MIN_POSITIVE),
                    crate::seeds::MAX_SEED_WEIGHT
                )));
            }
            if let Some(why) = crate::corpus::label_name_problem(label) {
                return Err(bad(why));
            }
            if s[..i].iter().any(|(l, _)| l == label) {
                return Err(bad(format!("label {label:?} is named twice")));
            }
        }
    }
    Ok(records
        .iter()
        .enumerate()
        .map(|(i, r)| match seeds.get(i) {
            Some(s) if !s.is_empty() => Some(s.iter().map(|(l, w)| (l.as_str(), *w)).collect()),
            _ => r.label.as_deref().map(|l| vec![(l, 1.0)]),
        })
        .collect())
}

/// A seed's example: its labels' weights, normalized, as the target (one label: 1), and
/// their sum as the loss weight (1 for a corpus label), as a seed's pull in propagation's
/// seed fit grows with its weights.
fn seed_example(r: &Record, hard: &[(&str, f32)], labels: &[String]) -> Example {
    let total: f64 = hard.iter().map(|l| f64::from(l.1)).sum();
    let mut target: Vec<(u32, f32)> = hard
        .iter()
        .map(|(l, w)| (id_of(labels, l), (f64::from(*w) / total) as f32))
        .collect();
    target.sort_by_key(|t| t.0);
    Example {
        text: r.text.clone(),
        target,
        weight: total as f32,
        seed: true,
    }
}

fn id_of(labels: &[String], name: &str) -> u32 {
    labels
        .binary_search_by(|l| l.as_str().cmp(name))
        .expect("labels hold every name") as u32
}

/// The first 40 characters of `text`, to name an example in an error.
pub(super) fn excerpt(text: &str) -> String {
    let mut out: String = text.chars().take(40).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

impl TrainSet {
    /// Checks what [`train`](super::train) relies on, since the fields are public: at least
    /// one label and one example; label names that are not blank, hold no control character
    /// (they must print on one line of `predict`'s output) and are listed once; every example with a
    /// non-empty target of known label ids, finite probabilities `>= 0` summing to 1 (within
    /// 1e-3), and a finite weight `>= 0`, some weight `> 0`. ([`train`](super::train) also
    /// refuses an example whose text is empty after normalization, which needs the text
    /// config.)
    ///
    /// # Errors
    /// [`Error::NoSeeds`] for no label or no example; [`Error::InvalidConfig`] (`labels`) for
    /// a bad label name, (`examples`) naming the first bad example, or for weights that are
    /// all 0.
    pub fn validate(&self) -> Result<()> {
        if self.examples.is_empty() || self.labels.is_empty() {
            return Err(Error::NoSeeds);
        }
        // Before any work: the model would refuse them only once trained.
        if let Some(why) = self
            .labels
            .iter()
            .find_map(|l| crate::corpus::label_name_problem(l))
        {
            return Err(Error::config("labels", why));
        }
        if let Some(l) = crate::corpus::repeated_label(&self.labels) {
            // The model would refuse it only once trained.
            return Err(Error::config(
                "labels",
                format!("label {l:?} is listed twice"),
            ));
        }
        let n = self.labels.len();
        for (i, ex) in self.examples.iter().enumerate() {
            let bad = |why: String| {
                Error::config(
                    "examples",
                    format!("example {i} ({:?}): {why}", excerpt(&ex.text)),
                )
            };
            if !(ex.weight.is_finite() && ex.weight >= 0.0) {
                return Err(bad(format!("weight {} is not finite and >= 0", ex.weight)));
            }
            if let Some(&(l, _)) = ex.target.iter().find(|t| t.0 as usize >= n) {
                return Err(bad(format!("label id {l} of {n} labels")));
            }
            if let Some(&(_, q)) = ex.target.iter().find(|t| !(t.1.is_finite() && t.1 >= 0.0)) {
                return Err(bad(format!("probability {q} is not finite and >= 0")));
            }
            let total: f32 = ex.target.iter().map(|t| t.1).sum();
            if (total - 1.0).abs() > 1e-3 {
                return Err(bad(format!("target sums to {total}, not 1")));
            }
        }
        if self.examples.iter().all(|ex| ex.weight == 0.0) {
            return Err(Error::config(
                "examples",
                "every example has weight 0: there is nothing to learn from",
            ));
        }
        Ok(())
    }

    /// Fully supervised: every labelled record is a hard example; unlabelled ones are ignored.
    ///
    /// # Errors
    /// [`Error::NoSeeds`] if no record is labelled.
    pub fn supervised(records: &[Record]) -> Result<Self> {
        Self::supervised_with(records, &[])
    }

    /// [`TrainSet::supervised`], with the seed labels of a seed file
    /// ([`crate::seeds::record_seeds`]) in place of the corpus labels of the records it
    /// names, and on records the corpus leaves unlabelled. `seeds` may be empty (no file).
    ///
    /// # Errors
    /// [`Error::NoSeeds`] if no record is labelled; [`Error::InvalidConfig`] (`seeds`) if
    /// `seeds` is neither empty nor one list per record, or for a seed weight outside
    /// `[f32::MIN_POSITIVE, 1e6]`, a blank label or one with a control character, or a label
    /// named twice for one record; (`records`) for such a label on a record.
    pub fn supervised_with(records: &[Record], seeds: &[Vec<(String, f32)>]) -> Result<Self> {
        let hard: Vec<HardLabels> = hard_labels(records, seeds)?;
        let labels = label_ids(hard.iter().flatten().flatten().map(|l| l.0.to_owned()));
        if labels.is_empty() {
            return Err(Error::NoSeeds);
        }
        let examples: Vec<Example> = records
            .iter()
            .zip(&hard)
            .filter_map(|(r, hard)| hard.as_ref().map(|h| seed_example(r, h, &labels)))
            .collect();
        let counts = TrainSetCounts {
            records: records.len(),
            seeds: examples.len(),
            ..TrainSetCounts::default()
        };
        Ok(Self {
            labels,
            examples,
            counts,
        })
    }

    /// Seeds from the corpus labels plus soft targets from a `sprig propagate` labels JSONL,
    /// joined on the record's `line`. Feature rows (no `line`) are ignored. `records` are in
    /// corpus order, as [`crate::corpus::CorpusReader`] gives them.
    ///
    /// # Errors
    /// [`Error::Parse`] naming `path:line` for a bad labels line or one naming a corpus line
    /// that does not exist; [`Error::InvalidConfig`] (`records`) for records out of order;
    /// [`Error::NoSeeds`] if nothing is left to train on.
    pub fn distilled(
        records: &[Record],
        labels_file: &mut dyn BufRead,
        path: &Path,
        config: &TrainConfig,
    ) -> Result<Self> {
        Self::distilled_with(records, &[], labels_file, path, config)
    }

    /// [`TrainSet::distilled`], with the seed labels of a seed file
    /// ([`crate::seeds::record_seeds`]) in place of the corpus labels of the records it
    /// names, and on records the corpus leaves unlabelled: give the file that `sprig graph
    /// --seeds` or `sprig propagate --seeds` took, so its seeds train as seeds. `seeds` may be
    /// empty (no file).
    ///
    /// # Errors
    /// As [`TrainSet::distilled`], and for `seeds` as [`TrainSet::supervised_with`].
    pub fn distilled_with(
        records: &[Record],
        seeds: &[Vec<(String, f32)>],
        labels_file: &mut dyn BufRead,
        path: &Path,
        config: &TrainConfig,
    ) -> Result<Self> {
        config.validate()?;
        // The join looks lines up by binary search.
        if let Some(w) = records.windows(2).find(|w| w[0].line >= w[1].line) {
            return Err(Error::config(
                "records",
                format!(
                    "records must be in corpus order (increasing line numbers): line {} \
                     comes after line {}",
                    w[1].line, w[0].line
                ),
            ));
        }
        let hard = hard_labels(records, seeds)?;
        let mut parsed: Vec<(usize, LabelsLine)> = Vec::new();
        // Per record, the labels line that labelled it (0: none yet).
        let mut labelled_at = vec![0u64; records.len()];
        let mut bytes = Vec::new();
        let mut buf = String::new();
        let mut line_no = 0u64;
        loop {
            // Bounded as every line sprig reads: a file that is not of lines (a binary
            // passed as --labels) is not held whole.
            let read = crate::corpus::read_line_bounded(labels_file, &mut bytes, MAX_LABELS_LINE)
                .map_err(|e| Error::io(path, e))?;
            match read {
                crate::corpus::LineRead::End => break,
                crate::corpus::LineRead::TooLong => {
                    return Err(crate::corpus::too_long(path, line_no + 1, MAX_LABELS_LINE));
                }
                crate::corpus::LineRead::Line => {}
            }
            line_no += 1;
            buf.clear();
            match std::str::from_utf8(&bytes) {
                Ok(text) => buf.push_str(text),
                // Not text at all (a .graph passed as --labels, say): name the line.
                Err(_) => {
                    return Err(Error::parse(
                        path,
                        line_no,
                        "invalid UTF-8 (expected the JSONL of `sprig propagate`)",
                    ));
                }
            }
            if line_no == 1 && buf.starts_with('\u{feff}') {
                buf.drain(..'\u{feff}'.len_utf8());
            }
            if buf.trim().is_empty() {
                continue;
            }
            // serde would also read an array as the struct, field by field in order.
            if !buf.trim_start().starts_with('{') {
                return Err(Error::parse(
                    path,
                    line_no,
                    "expected a JSON object (the JSONL of `sprig propagate`)",
                ));
            }
            // Through serde_path_to_error, so that a mistyped value names its field.
            let raw: RawLabelsLine = serde_path_to_error::deserialize(
                &mut serde_json::Deserializer::from_str(buf.trim_end()),
            )
            .map_err(|e| {
                let at = e.path().to_string();
                let message = crate::corpus::json_error(e.inner());
                Error::parse(
                    path,
                    line_no,
                    if e.inner().classify() != serde_json::error::Category::Data || at == "." {
                        message
                    } else {
                        format!("field \"{at}\": {message}")
                    },
                )
            })?;
            if raw.line.is_none() && raw.feature.is_some() {
                continue;
            }
            let missing = |field: &str| {
                let hint = if field == "line" {
                    " (or \"feature\", for a feature node)"
                } else {
                    ""
                };
                Error::parse(path, line_no, format!("missing field {field:?}{hint}"))
            };
            let raw_hash = raw.text_hash;
            let row = LabelsLine {
                line: raw.line.ok_or_else(|| missing("line"))?,
                id: raw.id,
                seed: raw.seed,
                unknown: raw.unknown.ok_or_else(|| missing("unknown"))?,
                scores: raw.scores.ok_or_else(|| missing("scores"))?,
            };
            check_scores(&row.scores, path, line_no)?;
            let line = row.line;
            let idx = records
                .binary_search_by_key(&line, |r| r.line)
                .map_err(|_| {
                    Error::parse(
                        path,
                        line_no,
                        format!(
                            "names corpus line {line}, which holds no record (or one skipped \
                             as invalid)"
                        ),
                    )
                })?;
            let bad = |what: &str| Error::parse(path, line_no, what.to_owned());
            // The join is on the line; the id, when both sides have one, proves it is the
            // same corpus (a labels file of another corpus would join silently otherwise).
            if let (Some(want), Some(got)) = (&row.id, &records[idx].id) {
                if *want != got.to_json() {
                    return Err(bad(&format!(
                        "field \"id\": {want} but corpus line {line} has id {}: were these \
                         labels propagated over another corpus?",
                        got.to_json()
                    )));
                }
            }
            if let Some(want) = &raw_hash {
                // As `propagate` writes it: exactly 8 hex digits (`from_str_radix` alone
                // would also take a sign).
                if want.len() != 8 || !want.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(bad(&format!(
                        "field \"text_hash\": {want:?} is not 8 hexadecimal digits"
                    )));
                }
                let got = crate::hash::record_hash(&records[idx].text);
                if u32::from_str_radix(want, 16) != Ok(got) {
                    return Err(bad(&stale_labels_message(want, got, &records[idx])));
                }
            }
            if !(0.0..=1.0 + 1e-4).contains(&row.unknown) {
                return Err(bad("field \"unknown\": must be in [0, 1]"));
            }
            let first = std::mem::replace(&mut labelled_at[idx], line_no);
            if first != 0 {
                return Err(bad(&format!(
                    "corpus line {line} is labelled twice (first on line {first})"
                )));
            }
            parsed.push((idx, row));
        }
        if parsed.is_empty() {
            return Err(Error::parse(
                path,
                line_no.max(1),
                "holds no labels line (expected the JSONL of `sprig propagate`)",
            ));
        }
        Self::join(records, &hard, parsed, path, config)
    }

    /// [`TrainSet::distilled_with`] with the propagated labels in memory: `propagation` ran
    /// over `graph`, which was built from `records` (the same records, in the same order;
    /// those the graph left out, with [`crate::build::BuildConfig::skip_invalid`], are passed
    /// over, found by line).
    /// The examples are those of the labels file `sprig propagate` writes for it: scores and
    /// `unknown` are rounded to that file's 6 decimals, so a program that keeps everything in
    /// memory trains the same model, byte for byte, as the command line.
    ///
    /// `seeds` are per-record seed lists, as [`TrainSet::distilled_with`] takes them. When
    /// `seeds` is empty, the graph's own seeds on nodes that no labelled record shares
    /// (seeds given in code with [`Graph::set_seeds`], or from a seed file) train as seeds
    /// on every record of their node, with their weights, instead of on their propagated
    /// labels: what `sprig train --seeds` does with the seed file propagation took.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] (`records`) if `records` do not hold the graph's records, or
    /// `propagation` was computed on a graph with another number of nodes; otherwise as
    /// [`TrainSet::distilled`].
    pub fn from_propagation(
        records: &[Record],
        seeds: &[Vec<(String, f32)>],
        graph: &Graph,
        propagation: &Propagation,
        config: &TrainConfig,
    ) -> Result<Self> {
        config.validate()?;
        let refs = graph.records();
        let mismatch = |why: String| Error::config("records", why);
        // Before the records are narrowed below.
        check_seed_lists(records, seeds)?;
        // A graph built with `skip_invalid` holds fewer records than it was given: the ones
        // it left out are passed over here, found by line (records' lines rise).
        let (kept_records, kept_seeds);
        let (records, seeds) = if records.len() > refs.len() {
            let mut keep = Vec::with_capacity(refs.len());
            let mut next = records.iter().enumerate();
            for g in refs {
                match next.find(|(_, r)| r.line >= g.line) {
                    Some((i, r)) if r.line == g.line => keep.push(i),
                    _ => {
                        return Err(mismatch(format!(
                            "the graph's record of line {} is not among the records: not the \
                             graph's records",
                            g.line
                        )))
                    }
                }
            }
            kept_records = keep.iter().map(|&i| records[i].clone()).collect::<Vec<_>>();
            kept_seeds = if seeds.is_empty() {
                Vec::new()
            } else {
                keep.iter().map(|&i| seeds[i].clone()).collect()
            };
            (&kept_records[..], &kept_seeds[..])
        } else {
            (records, seeds)
        };
        if refs.len() != records.len() {
            return Err(mismatch(format!(
                "{} records, but the graph was built from {}",
                records.len(),
                refs.len()
            )));
        }
        if let Some((r, g)) = records.iter().zip(refs).find(|(r, g)| r.line != g.line) {
            return Err(mismatch(format!(
                "record of line {} where the graph has line {}: not the graph's records",
                r.line, g.line
            )));
        }
        if let Some((_, g)) = records.iter().zip(refs).find(|(r, g)| {
            g.text_hash
                .is_some_and(|h| h != crate::hash::record_hash(&r.text))
        }) {
            return Err(mismatch(format!(
                "the text of line {} is not the one the graph was built from: not the \
                 graph's records",
                g.line
            )));
        }
        let d = propagation.distribution();
        if d.n_nodes() != graph.n_nodes() {
            return Err(mismatch(format!(
                "the propagation has {} nodes, the graph {}",
                d.n_nodes(),
                graph.n_nodes()
            )));
        }
        // As the labels file prints them, and as `distilled` reads them back.
        let rounded =
            |x: f32| -> f32 { format!("{x:.6}").parse().expect("a formatted float parses") };
        let names = propagation.labels();
        let parsed: Vec<(usize, LabelsLine)> = refs
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let v = r.node as usize;
                let row = LabelsLine {
                    line: r.line,
                    id: None,
                    seed: Some(propagation.is_seed(v)),
                    unknown: rounded(d.unknown(v)),
                    scores: crate::propagate::output::printed_scores(propagation, v)
                        .into_iter()
                        .map(|(label, micros)| (names[label as usize].clone(), micros as f32 / 1e6))
                        .collect(),
                };
                (i, row)
            })
            .collect();
        let source = Path::new("<memory>");
        let graph_seeds;
        let seeds = if seeds.is_empty() {
            graph_seeds = unlabelled_node_seeds(records, graph);
            &graph_seeds[..]
        } else {
            seeds
        };
        Self::join(
            records,
            &hard_labels(records, seeds)?,
            parsed,
            source,
            config,
        )
    }

    /// The examples of `records`: the hard labels `hard` where they have one, else the
    /// propagated row `parsed` gives for them (by record index).
    fn join(
        records: &[Record],
        hard: &[HardLabels],
        parsed: Vec<(usize, LabelsLine)>,
        path: &Path,
        config: &TrainConfig,
    ) -> Result<Self> {
        let labels = label_ids(
            hard.iter()
                .flatten()
                .flatten()
                .map(|l| l.0.to_owned())
                .chain(
                    parsed
                        .iter()
                        .flat_map(|(_, r)| r.scores.iter().map(|s| s.0.clone())),
                ),
        );
        // Propagation spreads the seeds' labels, so a labels file that shares none with the
        // records labelled here comes from another corpus (joined on line numbers alone, it
        // would train a model on two unrelated label sets).
        let hard_labels: hashbrown::HashSet<&str> =
            hard.iter().flatten().flatten().map(|l| l.0).collect();
        let propagated = || {
            parsed
                .iter()
                .flat_map(|(_, r)| r.scores.iter().map(|s| s.0.as_str()))
        };
        if !hard_labels.is_empty()
            && propagated().next().is_some()
            && propagated().all(|l| !hard_labels.contains(l))
        {
            let some = |set: Vec<&str>| -> String {
                let mut set = set;
                set.sort_unstable();
                set.dedup();
                let more = if set.len() > 3 { ", …" } else { "" };
                format!("{}{more}", set[..set.len().min(3)].join(", "))
            };
            return Err(Error::config(
                "labels",
                format!(
                    "{}: none of its labels ({}) is a label of the records labelled here ({}): \
                     were these labels propagated over another corpus?",
                    path.display(),
                    some(propagated().collect()),
                    some(hard_labels.iter().copied().collect()),
                ),
            ));
        }
        let mut soft: Vec<Option<&LabelsLine>> = vec![None; records.len()];
        for (idx, row) in &parsed {
            soft[*idx] = Some(row);
        }
        let mut counts = TrainSetCounts {
            records: records.len(),
            ..TrainSetCounts::default()
        };
        let mut examples = Vec::new();
        // The rows of records with a hard label. A `"seed": true` row on a record without
        // one is a seed of a seed file that this set was not given, unless the record shares
        // its node with a labelled record (identical texts share a node, and so a row: its
        // scores and unknown mass, which tell nodes apart as well as a hash would).
        fn row_key(row: &LabelsLine) -> (u32, Vec<(&str, u32)>) {
            let scores = row.scores.iter().map(|(l, s)| (l.as_str(), s.to_bits()));
            (row.unknown.to_bits(), scores.collect())
        }
        // Per such row (node), the labels its records have here: propagation seeded the
        // node with all of them (identical texts labelled differently share it).
        let mut seeded_rows: hashbrown::HashMap<_, Vec<&str>> = hashbrown::HashMap::new();
        for (row, h) in soft.iter().zip(hard) {
            if let (Some(row), Some(h)) = (row, h) {
                let labels = seeded_rows.entry(row_key(row)).or_default();
                labels.extend(h.iter().map(|l| l.0));
            }
        }
        for ((r, row), hard) in records.iter().zip(&soft).zip(hard) {
            if let Some(row) = row {
                let disagrees = row.seed == Some(false) && hard.is_some();
                counts.seed_disagreements += usize::from(disagrees);
                if row.seed == Some(true) {
                    // The labels here of the row's node (a labelled record is always listed).
                    match seeded_rows.get(&row_key(row)) {
                        None => counts.seeds_not_given += 1,
                        Some(here) if hard.is_some() => {
                            // Far below the top, not a near tie that propagation tipped over.
                            let score =
                                |l: &str| row.scores.iter().find(|s| s.0 == l).map_or(0.0, |s| s.1);
                            let top = row.scores.first().map_or(0.0, |s| s.1);
                            let relabelled = top > 0.0 && here.iter().all(|l| score(l) < 0.5 * top);
                            counts.seeds_relabelled += usize::from(relabelled);
                        }
                        Some(_) => {}
                    }
                }
            }
            if let Some(h) = hard {
                examples.push(seed_example(r, h, &labels));
                counts.seeds += 1;
                continue;
            }
            let Some(row) = row else { continue };
            let total: f32 = row.scores.iter().map(|s| s.1).sum();
            if row.scores.is_empty() || total <= 0.0 {
                counts.abstained += 1;
                continue;
            }
            let confidence = match config.confidence {
                Confidence::OneMinusUnknown => (1.0 - row.unknown).clamp(0.0, 1.0),
                Confidence::Top => row.scores.iter().map(|s| s.1).fold(0.0, f32::max),
            };
            if confidence < config.min_confidence || confidence <= 0.0 {
                counts.low_confidence += 1;
                continue;
            }
            let mut target: Vec<(u32, f32)> = row
                .scores
                .iter()
                .filter(|s| s.1 > 0.0)
                .map(|(name, s)| (id_of(&labels, name), s / total))
                .collect();
            target.sort_by_key(|t| t.0);
            counts.propagated += 1;
            // λ = 0: seeds alone. Weightless examples would still cost their augmented
            // copies, and take the held-out slice from labels that do not train.
            if config.soft_weight > 0.0 {
                examples.push(Example {
                    text: r.text.clone(),
                    target,
                    weight: confidence, // rescaled below
                    seed: false,
                });
            }
        }
        if let Some((delta, moved, aligned)) = shifted(records, hard, &parsed) {
            return Err(Error::config(
                "labels",
                format!(
                    "{}: its lines look shifted by {delta:+} against this corpus: {moved} \
                     records labelled here match the seed of their label {} line{} away in \
                     it, only {aligned} their own line (a record inserted or deleted since \
                     propagation?). Propagate again over this corpus, or give records ids",
                    path.display(),
                    delta.unsigned_abs(),
                    if delta.unsigned_abs() == 1 { "" } else { "s" }
                ),
            ));
        }
        // Confidence is relative: scaled by its mean over the propagated examples, then by λ,
        // so that λ = 1 gives an average propagated example the weight of a seed. Expander's
        // `1 − unknown` is small everywhere on large graphs (≈ 0.03 on SNIPS), and absolute
        // weights would let 70 seeds outweigh 13,000 propagated labels. (λ multiplies after
        // the mean: before it, the division cancelled it.)
        let soft: Vec<&mut Example> = examples.iter_mut().filter(|e| !e.seed).collect();
        let mean = soft.iter().map(|e| f64::from(e.weight)).sum::<f64>() / soft.len().max(1) as f64;
        let lambda = f64::from(config.soft_weight);
        for e in soft {
            e.weight = if mean > 0.0 {
                (lambda * f64::from(e.weight) / mean) as f32
            } else {
                0.0
            };
        }
        if examples.is_empty() || labels.is_empty() {
            return Err(Error::NoSeeds);
        }
        Ok(Self {
            labels,
            examples,
            counts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`TrainSet::distilled`] over a labels file held in a string (`l.jsonl` in messages).
    fn distill(records: &[Record], labels: &str, config: &TrainConfig) -> Result<TrainSet> {
        TrainSet::distilled(
            records,
            &mut labels.as_bytes(),
            Path::new("l.jsonl"),
            config,
        )
    }
    use crate::corpus::RecordId;
    use crate::train::tests::rec;

    #[test]
    fn distilled_joins_renormalizes_and_skips() {
        let records = vec![
            rec(1, "hello", Some("greeting")),
            rec(2, "hi there", None),
            rec(4, "thanks", None),
            rec(5, "bye", None),
            rec(6, "what", None),
        ];
        let labels = concat!(
            r#"{"line":1,"label":"greeting","score":1,"unknown":0,"scores":[["greeting",1.0]],"seed":true}"#,
            "\n",
            r#"{"line":2,"label":"greeting","score":0.3,"unknown":0.6,"scores":[["greeting",0.3],["thanks",0.1]],"seed":false}"#,
            "\n",
            "\n",
            r#"{"line":4,"label":"thanks","score":0.05,"unknown":0.9,"scores":[["thanks",0.05],["greeting",0.05]],"seed":false}"#,
            "\n",
            r#"{"line":5,"label":null,"score":0,"unknown":1,"scores":[],"seed":false}"#,
            "\n",
            r#"{"feature":"u:hi","label":"greeting","score":1,"unknown":0,"scores":[["greeting",1.0]],"seed":false}"#,
            "\n",
        );
        let config = TrainConfig {
            min_confidence: 0.2,
            ..TrainConfig::default()
        };
        let set = distill(&records, labels, &config).unwrap();
        assert_eq!(set.labels, ["greeting", "thanks"]);
        assert_eq!(set.examples.len(), 2);
        assert!(set.examples[0].seed);
        let soft = &set.examples[1];
        assert_eq!(soft.text, "hi there");
        assert_eq!(soft.target, vec![(0, 0.75), (1, 0.25)]);
        // The only propagated example has the mean confidence: weight λ, for any λ.
        assert!((soft.weight - 1.0).abs() < 1e-6);
        let with_lambda = |lambda: f32| {
            let config = TrainConfig {
                soft_weight: lambda,
                ..config.clone()
            };
            distill(&records, labels, &config).unwrap()
        };
        for lambda in [0.25, 3.0] {
            let scaled = with_lambda(lambda);
            assert_eq!(scaled.examples[1].weight, lambda, "λ = {lambda}");
            assert_eq!(scaled.examples[0].weight, 1.0, "a seed's weight is not λ's");
        }
        // λ = 0: the seed alone trains; the propagated record is still counted.
        let seeds_only = with_lambda(0.0);
        assert_eq!(seeds_only.examples.len(), 1);
        assert!(seeds_only.examples[0].seed);
        assert_eq!(seeds_only.counts.propagated, 1);
        let c = set.counts;
        assert_eq!(
            (c.seeds, c.propagated, c.abstained, c.low_confidence),
            (1, 1, 1, 1)
        );
        assert_eq!(c.seed_disagreements, 0);
        // The same file joined to a reordered corpus: line 2's record is labelled there, but
        // the file says it was no seed.
        let shuffled = vec![
            rec(1, "hello", None),
            rec(2, "hi there", Some("greeting")),
            rec(4, "thanks", None),
            rec(5, "bye", None),
            rec(6, "what", None),
        ];
        let set = distill(&shuffled, labels, &config).unwrap();
        assert_eq!(
            set.counts.seed_disagreements, 1,
            "line 2: seed false, corpus label"
        );
        assert_eq!(set.counts.seeds_not_given, 1, "line 1: seed true, no label");
    }

    /// A labels line must be what `sprig propagate` writes: each departure is refused with
    /// the file, line and field, not read as a default that silently changes the training.
    #[test]
    fn labels_lines_are_checked_field_by_field() {
        let records = vec![
            rec(1, "hello", Some("greeting")),
            rec(2, "hi there", None),
            rec(3, "bye", Some("farewell")),
        ];
        let good =
            r#"{"line":2,"unknown":0.4,"scores":[["greeting",0.5],["farewell",0.1]],"seed":false}"#;
        let config = TrainConfig::default();
        let run = |second: &str| {
            let file = format!("{good}\n{second}\n");
            distill(&records, &file, &config)
                .map(|set| set.counts)
                .map_err(|e| e.to_string())
        };
        // Feature lines (`--all-nodes`) are passed over; record lines join.
        let feature =
            r#"{"feature":"u:hi","unknown":0.5,"scores":[["greeting",0.5]],"seed":false}"#;
        assert_eq!(run(feature).unwrap().propagated, 1);
        for (line, want) in [
            (
                r#"[3, null, false, 0.0, [["farewell", 1.0]]]"#,
                "expected a JSON object",
            ),
            (
                r#"{"unknown":0.5,"scores":[["greeting",0.5]]}"#,
                "missing field \"line\"",
            ),
            (
                r#"{"line":null,"unknown":0.5,"scores":[]}"#,
                "missing field \"line\"",
            ),
            (
                r#"{"line":3,"scores":[["farewell",1.0]],"seed":true}"#,
                "missing field \"unknown\"",
            ),
            (
                r#"{"line":3,"unknown":0.0,"seed":true}"#,
                "missing field \"scores\"",
            ),
            (
                r#"{"line":3,"unknown":null,"scores":[]}"#,
                "field \"unknown\"",
            ),
            (
                r#"{"line":3,"unknown":0.0,"scores":[["farewell",1e30]]}"#,
                "field \"scores[0][1]\": 1000000000000000000000000000000 is not a score",
            ),
            (
                r#"{"line":3,"unknown":0.0,"scores":[["farewell",-0.5]]}"#,
                "field \"scores[0][1]\"",
            ),
            (
                r#"{"line":3,"unknown":0.0,"scores":[["farewell",0.7],["greeting",0.6]]}"#,
                "sum to 1.300000",
            ),
            (
                r#"{"line":3,"unknown":0.0,"scores":[[" farewell",1.0]]}"#,
                "field \"scores[0][0]\"",
            ),
            (
                r#"{"line":3,"unknown":0.0,"scores":[["",1.0]]}"#,
                "field \"scores[0][0]\"",
            ),
            (
                r#"{"line":3,"unknown":0.0,"scores":[["a",0.5],["a",0.5]]}"#,
                "field \"scores[1][0]\": the label \"a\" is listed twice",
            ),
            (
                r#"{"line":3,"unknown":1.5,"scores":[]}"#,
                "field \"unknown\": must be in [0, 1]",
            ),
        ] {
            let err = run(line).unwrap_err();
            assert!(
                err.contains("l.jsonl:2") && err.contains(want),
                "{line}: {err}"
            );
        }
        // A byte-order mark before the first line is skipped, as in the other inputs.
        let file = format!("\u{feff}{good}\n");
        let set = distill(&records, &file, &config);
        assert_eq!(set.unwrap().counts.propagated, 1);
        // Labels that share none with the records labelled here: another corpus's file.
        let other = r#"{"line":2,"unknown":0.0,"scores":[["PlayMusic",1.0]],"seed":false}"#;
        let err = TrainSet::distilled(
            &records,
            &mut other.as_bytes(),
            Path::new("o.jsonl"),
            &config,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("another corpus") && err.contains("PlayMusic"),
            "{err}"
        );
    }

    #[test]
    fn seeds_set_on_the_graph_train_as_seeds_in_memory() {
        use crate::build::{build_from_reader, BuildConfig};
        use crate::corpus::{CorpusOptions, CorpusReader};
        use crate::graph::Seed;
        let texts = "thanks so much\nthank you so much\non my way\nomw on my way now\n\
                     thanks so much\nbe there soon on my way\n";
        let name = Path::new("chat.txt");
        let reader = || Box::new(std::io::Cursor::new(texts.as_bytes().to_vec()));
        let build = build_from_reader(name, reader(), &BuildConfig::default(), &()).unwrap();
        let mut graph = build.graph;
        let records = CorpusReader::from_reader(name, reader(), &CorpusOptions::default())
            .unwrap()
            .collect::<Result<Vec<_>>>()
            .unwrap();
        // Lines 1 and 5 share a node: both records of it train as seeds.
        let node = |line: u64| {
            graph
                .records()
                .iter()
                .find(|r| r.line == line)
                .unwrap()
                .node
        };
        let seeds = vec![
            Seed {
                node: node(1),
                label: 1,
                weight: 1.0,
            },
            Seed {
                node: node(3),
                label: 0,
                weight: 2.0,
            },
        ];
        graph
            .set_seeds(vec!["omw".into(), "thanks".into()], seeds)
            .unwrap();
        let propagation = crate::propagate::propagate(&graph, &Default::default()).unwrap();
        let config = TrainConfig::default();
        let set = TrainSet::from_propagation(&records, &[], &graph, &propagation, &config).unwrap();
        let c = set.counts;
        assert_eq!(
            (c.seeds, c.propagated, c.seeds_not_given),
            (3, 3, 0),
            "{c:?}"
        );
        let seeded: Vec<_> = set
            .examples
            .iter()
            .filter(|e| e.seed)
            .map(|e| (e.text.as_str(), e.target.clone(), e.weight))
            .collect();
        assert_eq!(
            seeded,
            [
                ("thanks so much", vec![(1, 1.0)], 1.0),
                ("on my way", vec![(0, 1.0)], 2.0),
                ("thanks so much", vec![(1, 1.0)], 1.0),
            ]
        );
        // Explicit seed lists take their place: line 3's seed is then not given (line 5
        // shares line 1's node, labelled here, which is no sign).
        let explicit = vec![
            vec![("thanks".to_owned(), 1.0)],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
        ];
        let set =
            TrainSet::from_propagation(&records, &explicit, &graph, &propagation, &config).unwrap();
        assert_eq!((set.counts.seeds, set.counts.seeds_not_given), (1, 1));
    }

    #[test]
    fn a_seed_file_overrides_and_adds_seeds() {
        let records = vec![
            rec(1, "hello", Some("greeting")),
            rec(2, "hi there", None),
            rec(3, "hello", None),
            rec(4, "thanks", None),
        ];
        // Line 3 shares line 1's node (same row, seed: true): no sign of a missing seed file.
        // Line 4 was a seed of a file; given the file, it trains as one.
        let labels = concat!(
            r#"{"line":1,"label":"greeting","score":1,"unknown":0,"scores":[["greeting",1.0]],"seed":true}"#,
            "\n",
            r#"{"line":2,"label":"greeting","score":0.3,"unknown":0.6,"scores":[["greeting",0.3],["thanks",0.1]],"seed":false}"#,
            "\n",
            r#"{"line":3,"label":"greeting","score":1,"unknown":0,"scores":[["greeting",1.0]],"seed":true}"#,
            "\n",
            r#"{"line":4,"label":"thanks","score":0.9,"unknown":0,"scores":[["thanks",0.9],["greeting",0.1]],"seed":true}"#,
            "\n",
        );
        let config = TrainConfig::default();
        let set = |seeds: &[Vec<(String, f32)>]| {
            let path = Path::new("l.jsonl");
            TrainSet::distilled_with(&records, seeds, &mut labels.as_bytes(), path, &config)
                .unwrap()
        };
        let without = set(&[]);
        assert_eq!(without.counts.seeds_not_given, 1, "line 4 only");
        assert_eq!(without.counts.seeds_relabelled, 0);
        assert_eq!((without.counts.seeds, without.counts.propagated), (1, 3));

        let s = |pairs: &[(&str, f32)]| -> Vec<(String, f32)> {
            pairs.iter().map(|(l, w)| (l.to_string(), *w)).collect()
        };
        let file = [
            s(&[("thanks", 1.0), ("greeting", 3.0)]), // replaces line 1's corpus label
            vec![],
            vec![],
            s(&[("thanks", 0.5)]),
        ];
        let with = set(&file);
        let c = with.counts;
        assert_eq!((c.seeds, c.propagated, c.seeds_not_given), (2, 2, 0));
        assert_eq!(
            c.seeds_relabelled, 0,
            "line 1's top label is among its labels"
        );
        // A file that relabels line 1 as `thanks` alone, which propagation did not see.
        let relabelled = set(&[s(&[("thanks", 1.0)]), vec![], vec![], vec![]]);
        assert_eq!(relabelled.counts.seeds_relabelled, 1);
        // One list per record or none: a shorter list would drop the records past its end.
        let short = TrainSet::supervised_with(&records, &[s(&[("thanks", 1.0)])]).unwrap_err();
        assert!(
            short.to_string().contains("1 seed lists for 4 records"),
            "{short}"
        );
        let e = &with.examples;
        assert!(e[0].seed && e[3].seed && !e[1].seed && !e[2].seed);
        // Weights normalized into the target; their sum is the loss weight.
        assert_eq!(
            (e[0].target.clone(), e[0].weight),
            (vec![(0, 0.75), (1, 0.25)], 4.0)
        );
        assert_eq!((e[3].target.clone(), e[3].weight), (vec![(1, 1.0)], 0.5));
        // The same file without propagated labels.
        let supervised = TrainSet::supervised_with(&records, &file).unwrap();
        assert_eq!(supervised.examples, vec![e[0].clone(), e[3].clone()]);
        // Seeds a program built with weights or labels a seed file could not hold.
        for (bad, why) in [
            (s(&[("thanks", 0.0)]), "has weight 0"),
            (s(&[("thanks", f32::NAN)]), "has weight NaN"),
            (s(&[("thanks", f32::MAX)]), "outside"),
            (s(&[(" ", 1.0)]), "label \" \" is empty"),
            (s(&[("a\tb", 1.0)]), "holds a control character"),
            (
                s(&[("thanks", 1.0), ("thanks", 2.0)]),
                "\"thanks\" is named twice",
            ),
        ] {
            let bad = vec![bad, vec![], vec![], vec![]];
            let e = TrainSet::supervised_with(&records, &bad).unwrap_err();
            let e = e.to_string();
            assert!(
                e.contains("invalid seeds: record of line 1") && e.contains(why),
                "{e}"
            );
            let path = Path::new("l.jsonl");
            let distilled =
                TrainSet::distilled_with(&records, &bad, &mut labels.as_bytes(), path, &config);
            assert!(distilled.unwrap_err().to_string().contains(why));
        }
        // A record a program labelled with a name no reader would pass.
        let mut blank = records.clone();
        blank[1].label = Some(String::new());
        let e = TrainSet::supervised(&blank).unwrap_err().to_string();
        assert!(
            e.contains("invalid records: record of line 2: label \"\" is empty"),
            "{e}"
        );
        // Label names set on the set itself: refused before any training.
        let mut named = TrainSet::supervised(&records).unwrap();
        named.labels[0] = "a\nb".into();
        let e = named.validate().unwrap_err().to_string();
        assert!(
            e.contains("invalid labels: label \"a\\nb\" holds a control"),
            "{e}"
        );
        // Or one name for two outputs, which the trained model would not load.
        let mut twice = TrainSet::supervised(&records).unwrap();
        twice.labels.push(twice.labels[0].clone());
        let e = twice.validate().unwrap_err().to_string();
        assert!(
            e.contains("invalid labels: label") && e.contains("is listed twice"),
            "{e}"
        );
    }

    #[test]
    fn distilled_names_the_bad_line() {
        let mut records = vec![rec(1, "hello", Some("greeting"))];
        records[0].id = Some(RecordId("\"r1\"".into()));
        let config = TrainConfig::default();
        for (bad, line) in [
            ("{\"line\":1,\"unknown\":0,\"scores\":[[\"a\",-1]]}\n", 1),
            ("\n{\"line\":7,\"unknown\":0,\"scores\":[]}\n", 2),
            ("{\"line\":1,\n", 1),
            // Another corpus's labels: the ids disagree.
            ("{\"line\":1,\"id\":\"r9\",\"unknown\":0,\"scores\":[]}\n", 1),
            (
                "{\"line\":1,\"unknown\":0,\"scores\":[]}\n\n{\"line\":1,\"unknown\":0,\"scores\":[]}\n",
                3,
            ),
            ("\n\n", 2),
        ] {
            let err = TrainSet::distilled(&records, &mut bad.as_bytes(), Path::new("l"), &config)
                .unwrap_err();
            assert!(
                matches!(err, Error::Parse { line: l, .. } if l == line),
                "{bad:?}: {err}"
            );
        }
        let err = TrainSet::distilled(
            &records,
            &mut "{\"line\":1,\"unknown\":0,\"scores\":[[\"a\",\"x\"]]}\n".as_bytes(),
            Path::new("l"),
            &config,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("l:1: field \"scores[0][1]\": unexpected JSON at column"),
            "{err}"
        );
        let err = TrainSet::distilled(&records, &mut &b"\xff\xfe\n"[..], Path::new("l"), &config)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("l:1: invalid UTF-8"), "{err}");
        // A line past the labels file's cap (higher than a corpus line's): named, not held.
        let long = format!("\n{}\n", "x".repeat(MAX_LABELS_LINE + 1));
        let err = TrainSet::distilled(&records, &mut long.as_bytes(), Path::new("l"), &config)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("l:2: line longer than 16 MiB"), "{err}");
        assert!(matches!(
            TrainSet::supervised(&[rec(1, "x", None)]),
            Err(Error::NoSeeds)
        ));
    }

    /// `shifted` for records labelled `l0`, `l1`, … at lines 10, 20, … (far enough apart
    /// that no row is within reach of two of them), against labels rows given as `(line, top
    /// label, seed)`.
    fn shift(n: usize, rows: &[(u64, String, Option<bool>)]) -> Option<(i64, usize, usize)> {
        let names: Vec<String> = (0..n).map(|i| format!("l{i}")).collect();
        let records: Vec<Record> = names
            .iter()
            .enumerate()
            .map(|(i, l)| rec(10 * (i as u64 + 1), "text", Some(l)))
            .collect();
        let hard = hard_labels(&records, &[]).unwrap();
        let parsed: Vec<(usize, LabelsLine)> = rows
            .iter()
            .map(|(line, top, seed)| {
                let row = LabelsLine {
                    line: *line,
                    id: None,
                    seed: *seed,
                    unknown: 0.0,
                    scores: vec![(top.clone(), 1.0)],
                };
                (0, row)
            })
            .collect();
        shifted(&records, &hard, &parsed)
    }

    /// The row of record `i` (see `shift`) `delta` lines from it: a seed of its label.
    fn seed_row(i: usize, delta: i64) -> (u64, String, Option<bool>) {
        let line = 10 * (i as i64 + 1) + delta;
        (line as u64, format!("l{i}"), Some(true))
    }

    /// The integration test covers one record inserted at the top (−1, every record moved);
    /// this pins the rest of the rule: either direction, seeds of the record's own label
    /// only, "more than twice as many as in place, and at least 3", the nearest offset on a
    /// tie.
    #[test]
    fn lines_shifted_against_the_corpus_are_told_from_edited_labels() {
        let moved =
            |n: usize, delta: i64| -> Vec<_> { (0..n).map(|i| seed_row(i, delta)).collect() };
        assert_eq!(shift(6, &moved(6, 0)), None, "in place");
        assert_eq!(shift(6, &moved(6, -1)), Some((-1, 6, 0)));
        assert_eq!(
            shift(6, &moved(6, 2)),
            Some((2, 6, 0)),
            "records deleted, not added"
        );
        // Only a seed row of the record's label is a sign: propagated rows, or seeds of
        // another label, a line away are what any corpus has.
        for seed in [Some(false), None] {
            let rows: Vec<_> = moved(6, -1)
                .into_iter()
                .map(|(l, t, _)| (l, t, seed))
                .collect();
            assert_eq!(shift(6, &rows), None, "seed {seed:?}");
        }
        let others: Vec<_> = (0..6)
            .map(|i| (seed_row(i, -1).0, format!("l{}", (i + 1) % 6), Some(true)))
            .collect();
        assert_eq!(shift(6, &others), None, "seeds of other labels");
        // Too few to tell.
        assert_eq!(shift(6, &moved(2, -1)), None);
        assert_eq!(shift(6, &moved(3, -1)), Some((-1, 3, 0)));
        // Edited labels: three seeds kept in place, others added a line off. Twice as many
        // moved as in place is not yet a shift; more is.
        let edited = |off: usize| -> Vec<_> {
            let kept = (0..3).map(|i| seed_row(i, 0));
            kept.chain((3..3 + off).map(|i| seed_row(i, -1))).collect()
        };
        assert_eq!(shift(10, &edited(6)), None);
        assert_eq!(shift(10, &edited(7)), Some((-1, 7, 3)));
        // Rows that match as well at −1 as at +3 (repeated labels do that): the nearer
        // offset is the likelier edit, and the one named.
        let tie: Vec<_> = (0..3)
            .flat_map(|i| [seed_row(i, -1), seed_row(i, 3)])
            .collect();
        assert_eq!(shift(3, &tie), Some((-1, 3, 0)));
    }

    /// `sprig propagate` prints each score rounded to 6 decimals, so a row's printed scores
    /// may sum past 1 by up to half a millionth per label: with the most labels it writes
    /// (`top_k` 1024), 1/1024 each prints as 0.000977 and the row sums to 1.000448.
    #[test]
    fn scores_rounded_up_on_the_most_labels_propagate_writes_are_accepted() {
        let k = crate::propagate::MAX_TOP_K;
        let row = |score: f32| -> Vec<(String, f32)> {
            (0..k).map(|i| (format!("l{i:04}"), score)).collect()
        };
        let path = Path::new("l.jsonl");
        check_scores(&row(0.000977), path, 1).unwrap();
        // Past what rounding explains: refused.
        let err = check_scores(&row(0.00098), path, 1)
            .unwrap_err()
            .to_string();
        assert!(err.contains("sum to 1.003"), "{err}");
    }

    /// As `validate` documents: a set with no example or no label is `NoSeeds`, the error
    /// that says nothing is labelled, not another refusal.
    #[test]
    fn a_set_without_examples_or_labels_is_no_seeds() {
        let set = TrainSet::supervised(&[rec(1, "hello", Some("greeting"))]).unwrap();
        set.validate().unwrap();
        let mut no_examples = set.clone();
        no_examples.examples.clear();
        assert!(matches!(no_examples.validate(), Err(Error::NoSeeds)));
        let mut no_labels = set;
        no_labels.labels.clear();
        assert!(matches!(no_labels.validate(), Err(Error::NoSeeds)));
    }

    /// A labels file can leave nothing to train on: no seeds, and every propagated label
    /// below `min_confidence`, or λ = 0. The label names its scores bring are no examples.
    #[test]
    fn a_labels_file_that_leaves_nothing_to_train_on_is_no_seeds() {
        let records = vec![rec(1, "hello", None), rec(2, "hi there", None)];
        let labels = concat!(
            r#"{"line":1,"unknown":0.9,"scores":[["greeting",0.1]],"seed":false}"#,
            "\n",
            r#"{"line":2,"unknown":0.8,"scores":[["greeting",0.2]],"seed":false}"#,
            "\n",
        );
        for config in [
            TrainConfig {
                min_confidence: 0.5,
                ..TrainConfig::default()
            },
            TrainConfig {
                soft_weight: 0.0,
                ..TrainConfig::default()
            },
        ] {
            let set = distill(&records, labels, &config);
            assert!(matches!(set, Err(Error::NoSeeds)), "{set:?}");
        }
    }

    /// A supervised set counts every record read, the unlabelled ones too, and its seeds
    /// (`sprig train` prints both; `join`'s count of records is checked by the CLI tests).
    #[test]
    fn supervised_counts_hold_every_record_read_and_the_seeds() {
        let records = vec![
            rec(1, "hello", Some("greeting")),
            rec(2, "hi there", None),
            rec(3, "bye", Some("farewell")),
            rec(4, "what", None),
        ];
        let supervised = TrainSet::supervised(&records).unwrap();
        let want = TrainSetCounts {
            records: 4,
            seeds: 2,
            ..TrainSetCounts::default()
        };
        assert_eq!(supervised.counts, want);
    }

    /// "More than twice": a seed whose label scores half its row's top, or a near tie, is
    /// not counted as relabelled; one far below the top is.
    #[test]
    fn a_seed_is_relabelled_only_when_another_label_more_than_doubles_its_own() {
        let records = vec![rec(1, "hello", Some("greeting")), rec(2, "hi there", None)];
        // Line 2 shares `greeting` with the corpus: a file that did not would be refused.
        let other = r#"{"line":2,"unknown":0.5,"scores":[["greeting",0.5]],"seed":false}"#;
        let relabelled = |scores: &str| {
            let line = format!(
                "{{\"line\":1,\"unknown\":0,\"scores\":{scores},\"seed\":true}}\n{other}\n"
            );
            distill(&records, &line, &TrainConfig::default())
                .unwrap()
                .counts
                .seeds_relabelled
        };
        assert_eq!(relabelled(r#"[["greeting",1.0]]"#), 0);
        assert_eq!(
            relabelled(r#"[["thanks",0.4],["greeting",0.3]]"#),
            0,
            "near tie"
        );
        assert_eq!(
            relabelled(r#"[["thanks",0.6],["greeting",0.3]]"#),
            0,
            "twice"
        );
        assert_eq!(relabelled(r#"[["thanks",0.7],["greeting",0.3]]"#), 1);
        assert_eq!(relabelled(r#"[["thanks",1.0]]"#), 1);
    }

    /// Scores of 0 carry no label: a row of nothing else abstains, and the others keep them
    /// out of the target.
    #[test]
    fn zero_scores_abstain_and_stay_out_of_targets() {
        let records = vec![
            rec(1, "hello", Some("greeting")),
            rec(2, "hi there", None),
            rec(3, "hey", None),
        ];
        let labels = concat!(
            r#"{"line":2,"unknown":1,"scores":[["greeting",0.0]],"seed":false}"#,
            "\n",
            r#"{"line":3,"unknown":0.4,"scores":[["greeting",0.6],["thanks",0.0]],"seed":false}"#,
            "\n",
        );
        let set = distill(&records, labels, &TrainConfig::default()).unwrap();
        let c = set.counts;
        assert_eq!(
            (c.seeds, c.propagated, c.abstained, c.low_confidence),
            (1, 1, 1, 0)
        );
        assert_eq!(set.labels, ["greeting", "thanks"]);
        assert_eq!(set.examples[1].text, "hey");
        assert_eq!(set.examples[1].target, vec![(0, 1.0)]);
    }

    /// `min_confidence` skips the records *below* it: at 1, the fully confident ones stay.
    #[test]
    fn a_confidence_equal_to_the_minimum_is_kept() {
        let records = vec![
            rec(1, "hello", Some("greeting")),
            rec(2, "hi there", None),
            rec(3, "hey", None),
        ];
        for (min_confidence, unknown) in [(0.5, 0.5), (1.0, 0.0)] {
            let labels = format!(
                "{{\"line\":2,\"unknown\":{unknown},\"scores\":[[\"greeting\",{}]],\"seed\":false}}\n\
                 {{\"line\":3,\"unknown\":0.75,\"scores\":[[\"greeting\",0.25]],\"seed\":false}}\n",
                1.0 - unknown
            );
            let config = TrainConfig {
                min_confidence,
                ..TrainConfig::default()
            };
            let set = distill(&records, &labels, &config).unwrap();
            let c = set.counts;
            assert_eq!((c.propagated, c.low_confidence), (1, 1), "{min_confidence}");
            assert_eq!(set.examples[1].text, "hi there");
        }
    }

    /// `text_hash` as `sprig propagate` writes it, exactly 8 hexadecimal digits:
    /// `from_str_radix` alone would also take a hash without its leading zero, or with a
    /// sign, which no file of `sprig propagate` holds.
    #[test]
    fn a_text_hash_must_be_eight_hexadecimal_digits() {
        // A text whose hash has a leading zero digit (one in 16 do), so that the bad forms
        // below still name the right value.
        let text = (0..)
            .map(|i| format!("text {i}"))
            .find(|t| crate::hash::record_hash(t) < 1 << 28)
            .unwrap();
        let h = crate::hash::record_hash(&text);
        let records = vec![rec(1, "hello", Some("greeting")), rec(2, &text, None)];
        let run = |hash: &str| {
            let line = format!(
                r#"{{"line":2,"text_hash":"{hash}","unknown":0.5,"scores":[["greeting",0.5]],"seed":false}}"#
            );
            distill(&records, &line, &TrainConfig::default())
                .map(|set| set.counts.propagated)
                .map_err(|e| e.to_string())
        };
        assert_eq!(run(&format!("{h:08x}")), Ok(1));
        for bad in [format!("{h:x}"), format!("+{h:07x}")] {
            let err = run(&bad).unwrap_err();
            assert!(err.contains("is not 8 hexadecimal digits"), "{bad}: {err}");
        }
    }

    /// The counts go into the model's stored report. The three notes' counts are written
    /// only when not zero: an ordinary run's report is the one it was before they existed,
    /// and a noted one keeps them.
    #[test]
    fn counts_store_the_notes_counts_only_when_not_zero() {
        let quiet = TrainSetCounts {
            records: 3,
            seeds: 1,
            propagated: 2,
            ..TrainSetCounts::default()
        };
        let json = serde_json::to_value(quiet).unwrap();
        let mut keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "abstained",
                "low_confidence",
                "propagated",
                "records",
                "seeds"
            ]
        );
        let noted = TrainSetCounts {
            seed_disagreements: 1,
            seeds_not_given: 2,
            seeds_relabelled: 3,
            ..quiet
        };
        let json = serde_json::to_value(noted).unwrap();
        assert_eq!(
            (
                &json["seed_disagreements"],
                &json["seeds_not_given"],
                &json["seeds_relabelled"]
            ),
            (&1.into(), &2.into(), &3.into())
        );
        assert_eq!(
            serde_json::from_value::<TrainSetCounts>(json).unwrap(),
            noted
        );
    }
}
