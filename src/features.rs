//! Ingest a corpus into distinct text nodes and their TF-IDF feature rows.
//!
//! One streaming pass over the corpus: records are read in batches, tokenized and hashed in
//! parallel, then folded in input order (so the result does not depend on the thread count).
//! Records whose normalized token sequence is identical share one node: chat corpora repeat
//! "ok" and "thanks!" thousands of times, and separate nodes for them would form cliques that
//! point only at each other (the SwDA lesson of the peer baselines). Every record
//! keeps its line, id and label, and maps to its node.
//!
//! Weights are TF-IDF: `tf` is the count (or `1 + ln(count)` with sublinear tf), and
//! `idf = ln((1 + n) / (1 + df)) + 1` over the `n` distinct texts (scikit-learn's smoothed
//! idf). Each row is L2-normalized per block (words, chars), the char block is scaled by
//! `char_weight`, and the row is L2-normalized again, so every non-empty row has norm 1 and a
//! dot product is a cosine.
//!
//! Memory: the records' lines and ids, one copy of each distinct text, and one sparse row per
//! distinct text; the file itself is never held.

use std::path::Path;

use hashbrown::HashMap;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::control::Flow;
use crate::corpus::{CorpusOptions, CorpusReader, Record};
use crate::error::{Error, Result};
use crate::graph::RecordRef;
use crate::text::{Block, FeatureScratch, TextPipeline, Tokens};

/// A sparse row-major matrix: one row per node, columns are feature ids sorted ascending.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeatureMatrix {
    /// Row offsets (`rows + 1`).
    pub offsets: Vec<u64>,
    /// Feature ids, sorted within each row.
    pub features: Vec<u32>,
    /// Weights, in lock step with `features`.
    pub values: Vec<f32>,
    /// Number of feature ids (columns).
    pub n_features: usize,
}

impl FeatureMatrix {
    /// Number of rows.
    pub fn n_rows(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// Feature ids and weights of row `r`.
    ///
    /// # Panics
    /// If `r >= n_rows()`, or the offsets do not cut `features` and `values` into rows.
    #[inline]
    pub fn row(&self, r: usize) -> (&[u32], &[f32]) {
        let (a, b) = (self.offsets[r] as usize, self.offsets[r + 1] as usize);
        (&self.features[a..b], &self.values[a..b])
    }
}

/// Dot product of two rows with sorted feature ids (a merge). The summation order is fixed
/// (ascending feature id), so the same pair always gives the same bits.
#[inline]
pub fn sparse_dot(a: (&[u32], &[f32]), b: (&[u32], &[f32])) -> f32 {
    let (af, av) = a;
    let (bf, bv) = b;
    let (mut i, mut j) = (0, 0);
    let mut sum = 0.0f32;
    while i < af.len() && j < bf.len() {
        match af[i].cmp(&bf[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                sum += av[i] * bv[j];
                i += 1;
                j += 1;
            }
        }
    }
    sum
}

/// Which features keep their place in the rows, by document frequency.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DfFilter {
    /// Drop features seen in fewer distinct texts than this (default 1: keep all).
    pub min_df: u32,
    /// Drop features seen in more than this fraction of distinct texts (default 1: keep all).
    pub max_df: f64,
}

impl Default for DfFilter {
    fn default() -> Self {
        Self {
            min_df: 1,
            max_df: 1.0,
        }
    }
}

impl DfFilter {
    /// Checks the ranges.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`].
    pub fn validate(&self) -> Result<()> {
        if !(self.max_df > 0.0 && self.max_df <= 1.0) {
            return Err(Error::config(
                "max_df",
                format!("{} is not in (0, 1]", self.max_df),
            ));
        }
        Ok(())
    }

    /// Whether a feature of document frequency `df` among `n` texts is kept.
    pub(crate) fn keeps(&self, df: u32, n: usize) -> bool {
        df >= self.min_df && (df as f64) <= self.max_df * n as f64
    }
}

/// Records skipped under `--skip-invalid`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Skipped {
    /// How many.
    pub count: u64,
    /// The first few errors by line, as messages naming `file:line`.
    pub first: Vec<String>,
    /// Their lines.
    lines: Vec<u64>,
}

/// A corpus read into nodes, before weighting.
#[derive(Debug, Clone)]
pub struct Ingested {
    /// Every kept record, in input order, with its node.
    pub records: Vec<RecordRef>,
    /// The label of each record (same order), if labelled, as an index into `label_names`
    /// (labels are interned: a corpus repeats a few names millions of times).
    pub record_labels: Vec<Option<u32>>,
    /// Label names in order of first appearance.
    pub label_names: Vec<String>,
    /// The first raw text of each node.
    pub node_texts: Vec<String>,
    /// Raw counts: one row per node, feature ids sorted.
    pub counts: FeatureMatrix,
    /// Block of each feature id.
    pub blocks: Vec<Block>,
    /// Document frequency (distinct texts) of each feature id.
    pub df: Vec<u32>,
    /// Display string of each feature id, when asked for (bipartite graphs).
    pub names: Option<Vec<String>>,
    /// What `--skip-invalid` skipped.
    pub skipped: Skipped,
}

const BATCH: usize = 4096;
/// How many of the skipped records' errors [`Skipped::first`] keeps (the first by line).
pub const SHOW_SKIPPED: usize = 5;

struct Prepared {
    record: Record,
    /// Hash of the normalized token sequence, the identity of a node.
    key: u128,
    /// Feature hashes and blocks of the text, with display strings when asked for.
    features: Vec<(u64, Block)>,
    names: Vec<String>,
    empty: bool,
}

/// Reads `path` and folds it into distinct text nodes with raw feature counts.
///
/// `on_progress(records_read)` is called after each batch; it returns `()`, or a
/// [`ControlFlow`](std::ops::ControlFlow) whose `Break` abandons the read
/// ([`Error::Cancelled`]; see [`crate::control`]).
///
/// # Errors
/// The first bad record ([`Error::Parse`], naming `file:line` and the field) unless
/// `skip_invalid`; [`Error::Parse`] for a duplicate id; [`Error::EmptyCorpus`] if nothing
/// usable remains; I/O errors always; [`Error::Cancelled`] when `on_progress` says `Break`.
pub fn ingest<R: Flow>(
    path: &Path,
    options: &CorpusOptions,
    pipeline: &TextPipeline,
    skip_invalid: bool,
    keep_names: bool,
    on_progress: impl FnMut(u64) -> R,
) -> Result<Ingested> {
    let reader = CorpusReader::open(path, options)?;
    ingest_from(reader, pipeline, skip_invalid, keep_names, on_progress)
}

/// [`ingest`] from an open reader (a file, or records in memory through
/// [`CorpusReader::from_reader`]), with the options it was opened with.
///
/// # Errors
/// As [`ingest`].
pub fn ingest_from<R: Flow>(
    reader: CorpusReader<'_>,
    pipeline: &TextPipeline,
    skip_invalid: bool,
    keep_names: bool,
    on_progress: impl FnMut(u64) -> R,
) -> Result<Ingested> {
    let (path, options) = (reader.path().to_owned(), reader.options().clone());
    ingest_records(
        reader,
        &path,
        &options,
        pipeline,
        skip_invalid,
        keep_names,
        on_progress,
    )
}

/// [`ingest_from`] over any records (`path` and `options`, for messages, as a reader of
/// them would have them).
pub(crate) fn ingest_records<R: Flow>(
    mut reader: impl Iterator<Item = Result<Record>>,
    path: &Path,
    options: &CorpusOptions,
    pipeline: &TextPipeline,
    skip_invalid: bool,
    keep_names: bool,
    mut on_progress: impl FnMut(u64) -> R,
) -> Result<Ingested> {
    let mut out = Ingested {
        records: Vec::new(),
        record_labels: Vec::new(),
        label_names: Vec::new(),
        node_texts: Vec::new(),
        counts: FeatureMatrix {
            offsets: vec![0],
            ..FeatureMatrix::default()
        },
        blocks: Vec::new(),
        df: Vec::new(),
        names: keep_names.then(Vec::new),
        skipped: Skipped::default(),
    };
    let mut node_of_key: HashMap<u128, u32> = HashMap::new();
    let mut feature_of_hash: HashMap<u64, u32> = HashMap::new();
    let mut ids = crate::corpus::IdIndex::default();
    let mut label_ids: HashMap<String, u32> = HashMap::new();
    let mut row: Vec<(u32, u32)> = Vec::new();
    let mut read = 0u64;
    let skip = |skipped: &mut Skipped, e: Error| -> Result<()> {
        // Only a bad record is skipped: not a failed read, nor a quote that never closes
        // (the rest of the input went into its field).
        if !skip_invalid || !matches!(e, Error::Parse { .. }) {
            return Err(e);
        }
        skipped.count += 1;
        // Kept by line: a batch's parse errors are met while it is read, its empty texts
        // and repeated ids after, so that arrival order is not line order.
        let line = match &e {
            Error::Parse { line, .. } => *line,
            _ => u64::MAX,
        };
        let at = skipped.lines.partition_point(|&l| l <= line);
        if at < SHOW_SKIPPED {
            skipped.lines.insert(at, line);
            skipped.first.insert(at, e.to_string());
            skipped.lines.truncate(SHOW_SKIPPED);
            skipped.first.truncate(SHOW_SKIPPED);
        }
        Ok(())
    };
    let mut done = false;
    while !done {
        let mut batch = Vec::with_capacity(BATCH);
        while batch.len() < BATCH {
            match reader.next() {
                None => {
                    done = true;
                    break;
                }
                Some(Ok(r)) => batch.push(r),
                Some(Err(e)) => skip(&mut out.skipped, e)?,
            }
        }
        read += batch.len() as u64;
        let prepared: Vec<Prepared> = batch
            .into_par_iter()
            .map_init(Buffers::default, |buffers, record| {
                prepare(record, pipeline, keep_names, buffers)
            })
            .collect();
        for p in prepared {
            if p.empty {
                skip(
                    &mut out.skipped,
                    Error::empty_text(path, p.record.line, &options.text_field),
                )?;
                continue;
            }
            let field = options.id_field.as_deref().unwrap_or_default();
            if let Err(e) = ids.check(&out.records, &p.record, path, field) {
                skip(&mut out.skipped, e)?;
                continue;
            }
            let next = out.node_texts.len() as u32;
            let node = *node_of_key.entry(p.key).or_insert(next);
            if node == next {
                out.node_texts.push(p.record.text.clone());
                row.clear();
                for (i, &(hash, block)) in p.features.iter().enumerate() {
                    let fresh = out.blocks.len() as u32;
                    let fid = *feature_of_hash.entry(hash).or_insert(fresh);
                    if fid == fresh {
                        out.blocks.push(block);
                        out.df.push(0);
                        if let Some(names) = &mut out.names {
                            names.push(p.names.get(i).cloned().unwrap_or_default());
                        }
                    }
                    row.push((fid, 1));
                }
                row.sort_unstable();
                row.dedup_by(|later, first| {
                    if later.0 == first.0 {
                        first.1 += later.1;
                        true
                    } else {
                        false
                    }
                });
                for &(fid, count) in &row {
                    out.df[fid as usize] += 1;
                    out.counts.features.push(fid);
                    out.counts.values.push(count as f32);
                }
                out.counts.offsets.push(out.counts.features.len() as u64);
            }
            out.records.push(RecordRef {
                line: p.record.line,
                id: p.record.id,
                node,
                text_hash: Some(crate::hash::record_hash(&p.record.text)),
            });
            ids.add(&out.records, out.records.len() - 1);
            out.record_labels.push(p.record.label.map(|l| {
                let next = label_ids.len() as u32;
                *label_ids.entry(l).or_insert_with_key(|name| {
                    out.label_names.push(name.clone());
                    next
                })
            }));
        }
        if on_progress(read).flow().is_break() {
            return Err(Error::Cancelled);
        }
    }
    out.counts.n_features = out.blocks.len();
    if out.records.is_empty() {
        return Err(Error::EmptyCorpus {
            path: path.to_owned(),
            skipped: out.skipped.count,
            first_skipped: out.skipped.first.first().cloned(),
        });
    }
    Ok(out)
}

/// Per-thread buffers of [`prepare`]: the tokens and the feature extractor's scratch.
#[derive(Default)]
struct Buffers {
    tokens: Tokens,
    scratch: FeatureScratch,
    key: Vec<u8>,
}

fn prepare(
    record: Record,
    pipeline: &TextPipeline,
    keep_names: bool,
    buffers: &mut Buffers,
) -> Prepared {
    let Buffers {
        tokens,
        scratch,
        key: key_bytes,
    } = buffers;
    pipeline.tokenize_into(&record.text, tokens);
    key_bytes.clear();
    for t in tokens.iter() {
        key_bytes.extend_from_slice(t.as_bytes());
        key_bytes.push(0x1f);
    }
    let key = xxhash_rust::xxh3::xxh3_128_with_seed(key_bytes, crate::hash::FEATURE_SEED);
    let mut features = Vec::new();
    let mut names = Vec::new();
    pipeline.for_each_feature_of(tokens, scratch, |f, show| {
        features.push((f.hash, f.block));
        if keep_names {
            names.push(show());
        }
    });
    Prepared {
        empty: tokens.is_empty(),
        record,
        key,
        features,
        names,
    }
}

/// Smoothed IDF per feature, `ln((1 + n) / (1 + df)) + 1` over `n` documents (scikit-learn's
/// `smooth_idf`).
pub fn idf(df: &[u32], n: usize) -> Vec<f32> {
    df.iter()
        .map(|&d| (((1 + n) as f64 / (1 + d as usize) as f64).ln() + 1.0) as f32)
        .collect()
}

/// One row's TF-IDF weights (see the module docs): `features` (ids indexing `idf` and
/// `blocks`) with their raw `counts`, skipping those `keep` rejects; each block
/// L2-normalized, the char block scaled by `char_weight`, then the row L2-normalized.
/// Zero weights are dropped; the order of `features` is kept.
pub fn tfidf_row(
    features: &[u32],
    counts: &[f32],
    idf: &[f32],
    blocks: &[Block],
    keep: impl Fn(u32) -> bool,
    sublinear_tf: bool,
    char_weight: f32,
) -> (Vec<u32>, Vec<f32>) {
    let (mut f_out, mut v_out) = (features.to_vec(), counts.to_vec());
    let n = tfidf_row_in_place(
        &mut f_out,
        &mut v_out,
        idf,
        blocks,
        keep,
        sublinear_tf,
        char_weight,
    );
    f_out.truncate(n);
    v_out.truncate(n);
    (f_out, v_out)
}

/// [`tfidf_row`] within the row's own storage: the kept features and their weights are
/// moved to the front of `features` and `values` (which hold the raw counts on entry), and
/// their number is returned.
fn tfidf_row_in_place(
    features: &mut [u32],
    values: &mut [f32],
    idf: &[f32],
    blocks: &[Block],
    keep: impl Fn(u32) -> bool,
    sublinear_tf: bool,
    char_weight: f32,
) -> usize {
    let mut norms = [0.0f64; 2];
    let mut n = 0;
    for i in 0..features.len() {
        let (f, c) = (features[i], values[i]);
        if !keep(f) {
            continue;
        }
        let tf = if sublinear_tf { 1.0 + c.ln() } else { c };
        let w = tf * idf[f as usize];
        norms[blocks[f as usize] as usize] += f64::from(w) * f64::from(w);
        features[n] = f;
        values[n] = w;
        n += 1;
    }
    let (features, values) = (&mut features[..n], &mut values[..n]);
    let scale = [
        if norms[0] > 0.0 {
            1.0 / norms[0].sqrt()
        } else {
            0.0
        },
        if norms[1] > 0.0 {
            f64::from(char_weight) / norms[1].sqrt()
        } else {
            0.0
        },
    ];
    let mut total = 0.0f64;
    for (f, v) in features.iter().zip(values.iter_mut()) {
        let s = (f64::from(*v) * scale[blocks[*f as usize] as usize]) as f32;
        *v = s;
        total += f64::from(s) * f64::from(s);
    }
    if total > 0.0 {
        let inv = 1.0 / total.sqrt();
        for v in values.iter_mut() {
            *v = (f64::from(*v) * inv) as f32;
        }
    }
    // A zero weight (char_weight = 0) is no edge: drop it.
    let mut kept = 0;
    for i in 0..n {
        if values[i] > 0.0 {
            features[kept] = features[i];
            values[kept] = values[i];
            kept += 1;
        }
    }
    kept
}

/// TF-IDF weighting of raw counts (see the module docs), keeping only the features `filter`
/// keeps. Rows stay sorted by feature id; a row whose features were all dropped is empty.
pub fn tfidf(
    counts: &FeatureMatrix,
    df: &[u32],
    blocks: &[Block],
    filter: DfFilter,
    sublinear_tf: bool,
    char_weight: f32,
) -> FeatureMatrix {
    tfidf_in_place(
        counts.clone(),
        df,
        blocks,
        filter,
        sublinear_tf,
        char_weight,
    )
}

/// [`tfidf`] within the storage of `counts`, which it takes: the build's largest matrix
/// then exists once, not as counts, weighted rows and their concatenation at the same time.
/// Each row is weighted in its own slice (in parallel), then the rows are moved together.
pub fn tfidf_in_place(
    mut counts: FeatureMatrix,
    df: &[u32],
    blocks: &[Block],
    filter: DfFilter,
    sublinear_tf: bool,
    char_weight: f32,
) -> FeatureMatrix {
    let n = counts.n_rows();
    if n == 0 {
        return counts;
    }
    let idf = idf(df, n);
    let keep: Vec<bool> = df.iter().map(|&d| filter.keeps(d, n)).collect();
    let FeatureMatrix {
        offsets,
        features,
        values,
        ..
    } = &mut counts;
    // Every row's slices, split off in order, so that the rows are weighted in parallel.
    let first = offsets[0] as usize;
    let mut rows = Vec::with_capacity(n);
    let (mut fs, mut vs) = (&mut features[first..], &mut values[first..]);
    for w in offsets.windows(2) {
        let len = (w[1] - w[0]) as usize;
        let (f, f_rest) = std::mem::take(&mut fs).split_at_mut(len);
        let (v, v_rest) = std::mem::take(&mut vs).split_at_mut(len);
        rows.push((f, v));
        (fs, vs) = (f_rest, v_rest);
    }
    let kept: Vec<usize> = rows
        .into_par_iter()
        .map(|(f, v)| {
            tfidf_row_in_place(
                f,
                v,
                &idf,
                blocks,
                |f| keep[f as usize],
                sublinear_tf,
                char_weight,
            )
        })
        .collect();
    // Rows only shrink, so each moves to the front of what is left, in order.
    let mut end = 0usize;
    for (r, &k) in kept.iter().enumerate() {
        let start = offsets[r] as usize;
        features.copy_within(start..start + k, end);
        values.copy_within(start..start + k, end);
        offsets[r] = end as u64;
        end += k;
    }
    offsets[n] = end as u64;
    features.truncate(end);
    values.truncate(end);
    features.shrink_to_fit();
    values.shrink_to_fit();
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::{FeatureConfig, TextConfig};

    fn ingest_str(contents: &str, skip: bool) -> Result<Ingested> {
        ingest_with(contents, &FeatureConfig::word12(), skip)
    }

    /// [`ingest_str`] with the features of `features`.
    fn ingest_with(contents: &str, features: &FeatureConfig, skip: bool) -> Result<Ingested> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.jsonl");
        std::fs::write(&path, contents).unwrap();
        let p = TextPipeline::new(&TextConfig::default(), features).unwrap();
        ingest(&path, &CorpusOptions::default(), &p, skip, true, |_| {})
    }

    #[test]
    fn identical_texts_share_a_node_and_keep_their_records() {
        let c = "{\"text\":\"Thanks!\",\"label\":\"t\"}\n{\"text\":\"thanks !\"}\n{\"text\":\"hello\"}\n";
        let ing = ingest_str(c, false).unwrap();
        assert_eq!(ing.node_texts, vec!["Thanks!", "hello"]);
        let nodes: Vec<u32> = ing.records.iter().map(|r| r.node).collect();
        assert_eq!(nodes, vec![0, 0, 1]);
        assert_eq!(ing.record_labels[0], Some(0));
        assert_eq!(ing.label_names, vec!["t"]);
        assert_eq!(ing.counts.n_rows(), 2);
        let names = ing.names.unwrap();
        assert_eq!(names[..3], ["u:thanks", "b:thanks !", "u:!"]);
    }

    #[test]
    fn empty_texts_and_duplicate_ids_are_errors_or_skipped() {
        let c = "{\"text\":\"  \"}\n{\"id\":1,\"text\":\"a\"}\n{\"id\":1,\"text\":\"b\"}\n";
        let e = ingest_str(c, false).unwrap_err().to_string();
        assert!(
            e.contains(":1: field \"text\": text is empty after normalization"),
            "{e}"
        );
        let ing = ingest_str(c, true).unwrap();
        assert_eq!(ing.records.len(), 1);
        assert_eq!(ing.skipped.count, 2);
        assert!(ing.skipped.first[1].contains(":3: field \"id\": duplicate id 1 (first at line 2)"));
        // Listed by line, whatever the order they were met in (a malformed line is met while
        // reading, an empty text after its batch).
        let c = "{\"text\":\"ok\"}\n{\"text\":\" \"}\n{bad\n{\"text\":\"\"}\n[1]\n";
        let ing = ingest_str(c, true).unwrap();
        let lines: Vec<&str> = ing
            .skipped
            .first
            .iter()
            .map(|m| m.split(':').nth(1).unwrap())
            .collect();
        assert_eq!((ing.skipped.count, lines), (4, vec!["2", "3", "4", "5"]));
        // A string id and a number id that a seed file would both name `7` are one id.
        let c = "{\"id\":\"7\",\"text\":\"a\"}\n{\"id\":7,\"text\":\"b\"}\n";
        let e = ingest_str(c, false).unwrap_err().to_string();
        assert!(
            e.contains(":2: field \"id\": duplicate id 7 (first at line 1)"),
            "{e}"
        );
    }

    #[test]
    fn a_corpus_with_nothing_usable_is_refused() {
        assert!(matches!(
            ingest_str("\n\n", false),
            Err(Error::EmptyCorpus { skipped: 0, .. })
        ));
        // Every record skipped: the error keeps what was skipped, or it would be lost.
        let err = ingest_str("{\"text\": 5}\n{\"x\": 1}\n", true).unwrap_err();
        assert!(matches!(err, Error::EmptyCorpus { skipped: 2, .. }));
        assert!(
            err.to_string()
                .contains("2 invalid records skipped; the first: "),
            "{err}"
        );
        assert!(err.to_string().contains(":1: field \"text\""), "{err}");
    }

    #[test]
    fn tfidf_rows_have_unit_norm_and_rare_features_weigh_more() {
        let c = "{\"text\":\"a b\"}\n{\"text\":\"a c\"}\n{\"text\":\"a d\"}\n";
        let ing = ingest_str(c, false).unwrap();
        let m = tfidf(
            &ing.counts,
            &ing.df,
            &ing.blocks,
            DfFilter::default(),
            true,
            1.0,
        );
        for r in 0..m.n_rows() {
            let norm: f32 = m.row(r).1.iter().map(|v| v * v).sum();
            assert!((norm - 1.0).abs() < 1e-5);
        }
        let (_, v) = m.row(0); // u:a, b:a b, u:b
        assert!(v[0] < v[2], "the shared 'a' weighs less than the rare 'b'");
        let cut = tfidf(
            &ing.counts,
            &ing.df,
            &ing.blocks,
            DfFilter {
                min_df: 1,
                max_df: 0.5,
            },
            true,
            1.0,
        );
        assert_eq!(cut.row(0).0.len(), 2, "'a' is in every text and is cut");
    }

    #[test]
    fn weighting_in_place_gives_every_row_its_own_weights() {
        // The in-place weighting moves each row to the front of what is left once rows have
        // shrunk: rows that lose their common features (to `max_df`), their char block (to
        // `char_weight` 0) or everything, between rows that keep all, must each end up
        // exactly as the row weighted alone.
        let c = "{\"text\":\"the cat\"}\n{\"text\":\"the\"}\n{\"text\":\"a dog barks\"}\n\
                 {\"text\":\"the the cat sat\"}\n{\"text\":\"zebra\"}\n";
        let ing = ingest_with(c, &FeatureConfig::default(), false).unwrap();
        let n = ing.counts.n_rows();
        for (max_df, char_weight) in [(1.0, 1.0), (0.5, 1.0), (0.5, 0.0), (1.0, 0.0)] {
            let filter = DfFilter { min_df: 1, max_df };
            let m = tfidf_in_place(
                ing.counts.clone(),
                &ing.df,
                &ing.blocks,
                filter,
                true,
                char_weight,
            );
            assert_eq!(m.n_rows(), n);
            assert_eq!(m.n_features, ing.counts.n_features);
            let idf = idf(&ing.df, n);
            let mut total = 0;
            for r in 0..n {
                let (fs, cs) = ing.counts.row(r);
                let keep = |f: u32| filter.keeps(ing.df[f as usize], n);
                let want = tfidf_row(fs, cs, &idf, &ing.blocks, keep, true, char_weight);
                let (f, v) = m.row(r);
                assert_eq!(
                    (f, v),
                    (&want.0[..], &want.1[..]),
                    "row {r} {max_df} {char_weight}"
                );
                total += f.len();
            }
            assert_eq!(m.features.len(), total, "no entry past the last row");
            assert_eq!(m.values.len(), total);
            // "the" is in 3 of 5 texts: cut at 0.5, which with the char block weighted 0
            // empties the second row; the third keeps its words.
            if (max_df, char_weight) == (0.5, 0.0) {
                assert!(m.row(1).0.is_empty());
                assert!(!m.row(2).0.is_empty());
            }
        }
        // A matrix built by hand may start its first row past entries no row holds.
        let mut shifted = ing.counts.clone();
        shifted.features.insert(0, 0);
        shifted.values.insert(0, 7.0);
        shifted.offsets.iter_mut().for_each(|o| *o += 1);
        let weigh = |m: FeatureMatrix| {
            tfidf_in_place(m, &ing.df, &ing.blocks, DfFilter::default(), true, 1.0)
        };
        assert_eq!(weigh(shifted), weigh(ing.counts.clone()));
    }

    /// `max_df` is a fraction of the texts: 0 (or less) would keep no feature and more than
    /// 1 means nothing, so both are refused; 1 (keep all) and small fractions are not.
    #[test]
    fn max_df_must_be_a_fraction_in_zero_one() {
        let filter = |max_df| DfFilter { min_df: 1, max_df };
        for good in [1.0, 0.5, 1e-9] {
            assert!(filter(good).validate().is_ok(), "{good}");
        }
        for bad in [0.0, -0.5, 1.5, f64::NAN] {
            let e = filter(bad).validate().unwrap_err();
            assert!(
                matches!(
                    e,
                    Error::InvalidConfig {
                        field: "max_df",
                        ..
                    }
                ),
                "{bad}: {e}"
            );
        }
    }
}
