//! The bucket table: the predictor of the on-device Smart Reply design (Ravi, "On-device
//! machine intelligence", Google AI blog 2017: projection buckets joined to the graph as
//! nodes; TFLite's `LSH_PROJECTION` in sparse mode followed by `PREDICT`).
//!
//! A text's projection gives one bucket per function `t`: its d signs packed into a code,
//! keyed `t·2^d + code` so buckets of different functions never collide. The table maps each
//! populated bucket to at most k `(label, weight)` pairs: at training time, the weighted mean
//! of the label distributions of the texts that fall in it (the last step of propagation,
//! from texts to buckets). Inference looks up the T buckets (binary search over
//! sorted keys), adds their label weights divided by T, and returns the labels with a
//! positive score. There is no matrix multiply at all.
//!
//! It abstains only when none of the T buckets holds a label, which is rare in practice: a
//! code packs signs with 0 and −1 alike as 0, and with the sparse (sketch) projection a short
//! text leaves most of a function's bits at 0, so the all-zero and one-bit codes of most
//! functions are filled by training texts. Unseen text (`zzzzqqqq`, another script) still
//! lands in filled buckets and gets low scores; deploy a table with `--threshold`.
//!
//! The scores are those vote shares, not probabilities: a text the table knows well may
//! score 0.35 for a right answer. They are not calibrated as a network's are: normalized
//! and sharpened to fit held-out labels, the shares of unknown text, spread over generic
//! buckets, rose from about 0.13 to 0.5–0.98 (benches/README.md, thirty-second session).
//!
//! Building the table is training code (`crate::train`); this module only stores and reads it.

use crate::error::{Error, Result};
use crate::format::{Artifact, ArtifactWriter};
use crate::model::Prediction;
use crate::projection::{ProjectionConfig, Projector};

/// Marks an unused slot of a bucket's k entries.
pub const EMPTY: u32 = u32::MAX;

/// Sorted bucket keys, each with k label slots.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    k: usize,
    keys: Vec<u64>,
    labels: Vec<u32>,
    weights: Vec<f32>,
}

/// Buffers of [`Table::lookup`].
#[derive(Debug, Clone, Default)]
pub struct TableScratch {
    codes: Vec<u64>,
    sums: Vec<f32>,
}

/// The key of function `t`'s bucket `code` with `bits` bits per function.
pub fn bucket_key(t: usize, code: u64, bits: u32) -> u64 {
    ((t as u64) << bits) | code
}

impl Table {
    /// Builds a table from `(key, entries)` pairs; entries beyond k are dropped, missing ones
    /// are padded with [`EMPTY`].
    pub fn new(k: usize, mut buckets: Vec<(u64, Vec<(u32, f32)>)>) -> Self {
        buckets.sort_by_key(|b| b.0);
        let mut keys = Vec::with_capacity(buckets.len());
        let mut labels = Vec::with_capacity(buckets.len() * k);
        let mut weights = Vec::with_capacity(buckets.len() * k);
        for (key, entries) in buckets {
            keys.push(key);
            for i in 0..k {
                let (l, w) = entries.get(i).copied().unwrap_or((EMPTY, 0.0));
                labels.push(l);
                weights.push(w);
            }
        }
        Self {
            k,
            keys,
            labels,
            weights,
        }
    }

    /// Labels kept per bucket.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Populated buckets.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no bucket is populated.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Bytes of keys, labels and weights.
    pub fn size_bytes(&self) -> usize {
        self.keys.len() * 8 + self.labels.len() * 4 + self.weights.len() * 4
    }

    /// Checks shapes, order, label ids and weights.
    ///
    /// # Errors
    /// A message naming what is wrong.
    pub fn validate(
        &self,
        n_labels: usize,
        projection: &ProjectionConfig,
    ) -> std::result::Result<(), String> {
        let t_bits = 64 - u64::from(projection.functions).leading_zeros();
        if projection.bits + t_bits > 64 {
            return Err(format!(
                "{} bits per function and {} functions do not fit a 64-bit key",
                projection.bits, projection.functions
            ));
        }
        if self.k == 0
            || self.labels.len() != self.keys.len() * self.k
            || self.weights.len() != self.labels.len()
        {
            return Err(format!(
                "table of {} keys does not hold k = {} entries each",
                self.keys.len(),
                self.k
            ));
        }
        if self.keys.windows(2).any(|w| w[0] >= w[1]) {
            return Err("table keys are not strictly increasing".into());
        }
        let max_key = bucket_key(projection.functions as usize, 0, projection.bits);
        if self.keys.last().is_some_and(|&k| k >= max_key) {
            return Err("a table key is past the last function".into());
        }
        for (&l, &w) in self.labels.iter().zip(&self.weights) {
            if l != EMPTY && l as usize >= n_labels {
                return Err(format!("label id {l} of {n_labels} labels"));
            }
            if !(w.is_finite() && (0.0..=1.0).contains(&w)) {
                return Err(format!("table weight {w} outside [0, 1]"));
            }
        }
        Ok(())
    }

    /// Appends the `table.*` sections.
    pub fn write_sections<'a>(&'a self, w: &mut ArtifactWriter<'a>) {
        let n = self.keys.len() as u64;
        w.add_u64("table.keys", &[n], &self.keys);
        w.add_u32("table.labels", &[n, self.k as u64], &self.labels);
        w.add_f32("table.weights", &[n, self.k as u64], &self.weights);
    }

    /// Reads the `table.*` sections (checked later by [`Table::validate`]).
    ///
    /// # Errors
    /// [`Error::BadHeader`] for a missing section or a bad k.
    pub fn read_sections(a: &Artifact, k: usize) -> Result<Self> {
        if k == 0 {
            return Err(Error::BadHeader {
                path: a.path().to_owned(),
                message: "table_k must be >= 1".into(),
            });
        }
        Ok(Self {
            k,
            keys: a.u64s("table.keys")?,
            labels: a.u32s("table.labels")?,
            weights: a.f32s("table.weights")?,
        })
    }

    /// Looks up the buckets of `projected` and pushes every label with a positive averaged
    /// weight into `out` (unsorted).
    pub fn lookup(
        &self,
        projector: &Projector,
        projected: &[i8],
        s: &mut TableScratch,
        out: &mut Vec<Prediction>,
    ) {
        projector.codes(projected, &mut s.codes);
        let bits = projector.config().bits;
        let t_total = s.codes.len().max(1) as f32;
        s.sums.clear();
        for (t, &code) in s.codes.iter().enumerate() {
            if let Ok(i) = self.keys.binary_search(&bucket_key(t, code, bits)) {
                for j in i * self.k..(i + 1) * self.k {
                    let l = self.labels[j];
                    if l == EMPTY {
                        break;
                    }
                    let l = l as usize;
                    if s.sums.len() <= l {
                        s.sums.resize(l + 1, 0.0);
                    }
                    s.sums[l] += self.weights[j] / t_total;
                }
            }
        }
        out.extend(
            s.sums
                .iter()
                .enumerate()
                .filter(|(_, &w)| w > 0.0)
                .map(|(l, &w)| Prediction {
                    label: l as u32,
                    score: w.min(1.0),
                }),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Expect;
    use crate::text::{FeatureConfig, TextConfig};

    /// T = 2 functions of d = 2 bits (keys `t·4 + code`, all below 8), 3 labels, k = 2.
    fn projection() -> ProjectionConfig {
        ProjectionConfig {
            functions: 2,
            bits: 2,
            ..ProjectionConfig::default()
        }
    }

    /// Bucket 1 of function 0 holds labels 2 and 0, bucket 2 of function 1 holds label 2.
    fn table() -> Table {
        Table::new(
            2,
            vec![
                (bucket_key(1, 2, 2), vec![(2, 0.5)]),
                (bucket_key(0, 1, 2), vec![(2, 0.75), (0, 0.25), (1, 0.1)]),
            ],
        )
    }

    #[test]
    fn new_sorts_keys_and_pads_or_cuts_to_k() {
        let t = table();
        assert_eq!((t.k(), t.len(), t.is_empty()), (2, 2, false));
        assert_eq!(t.keys, vec![1, 6]);
        assert_eq!(t.labels, vec![2, 0, 2, EMPTY]);
        assert_eq!(t.weights, vec![0.75, 0.25, 0.5, 0.0]);
        // 2 keys of 8 bytes, 4 labels and 4 weights of 4 bytes.
        assert_eq!(t.size_bytes(), 2 * 8 + 4 * 4 + 4 * 4);
        assert!(Table::new(3, Vec::new()).is_empty());
        assert_eq!(t.validate(3, &projection()), Ok(()));
    }

    /// Each check rejects on its own: a table wrong in exactly one way.
    #[test]
    fn validate_rejects_each_defect_alone() {
        let p = projection();
        let err =
            |t: &Table, n_labels: usize, p: &ProjectionConfig| t.validate(n_labels, p).unwrap_err();
        // 80 functions need 7 bits of key: 57 code bits fit 64 exactly, 58 do not.
        let wide = |bits| ProjectionConfig {
            functions: 80,
            bits,
            ..ProjectionConfig::default()
        };
        assert_eq!(table().validate(3, &wide(57)), Ok(()));
        assert!(err(&table(), 3, &wide(58)).contains("do not fit"));
        assert!(err(&table(), 3, &wide(64)).contains("do not fit"));
        // Shapes: k = 0, labels or weights of the wrong length.
        assert!(err(&Table::new(0, vec![(1, Vec::new())]), 3, &p).contains("k = 0"));
        let mut t = table();
        t.labels.pop();
        t.weights.pop();
        assert!(err(&t, 3, &p).contains("entries each"));
        let mut t = table();
        t.weights.push(0.0);
        assert!(err(&t, 3, &p).contains("entries each"));
        // Key order and range (function 2 is past the last of 2).
        let mut t = table();
        t.keys = vec![6, 1];
        assert!(err(&t, 3, &p).contains("strictly increasing"));
        let t = Table::new(1, vec![(1, Vec::new()), (bucket_key(2, 0, 2), Vec::new())]);
        assert!(err(&t, 3, &p).contains("past the last function"));
        // Label ids: 2 is out of range for 2 labels; an empty slot is never out of range.
        assert!(err(&table(), 2, &p).contains("label id 2 of 2 labels"));
        // Weights outside [0, 1], finite or not.
        for w in [1.5, -0.25, f32::NAN, f32::INFINITY] {
            let t = Table::new(1, vec![(1, vec![(0, w)])]);
            assert!(err(&t, 3, &p).contains("outside [0, 1]"), "{w}");
        }
    }

    #[test]
    fn sections_round_trip() {
        let t = table();
        let mut w = ArtifactWriter::new();
        t.write_sections(&mut w);
        let bytes = w.finish(b"SPRIGTST", 1, serde_json::json!({}));
        let expect = Expect {
            kind: "test",
            magic: b"SPRIGTST",
            oldest: 1,
            newest: 1,
        };
        let a = Artifact::parse(std::path::Path::new("t.bin"), bytes, expect).unwrap();
        assert_eq!(Table::read_sections(&a, 2).unwrap(), t);
        assert!(Table::read_sections(&a, 0).is_err());
    }

    /// Scores are the bucket weights summed over the T functions and divided by T; labels
    /// no bucket holds are left out.
    #[test]
    fn lookup_averages_the_buckets_over_t() {
        let t = table();
        let projector = Projector::new(
            &TextConfig::default(),
            &FeatureConfig::default(),
            &projection(),
        )
        .unwrap();
        let mut s = TableScratch::default();
        let lookup = |projected: &[i8], s: &mut TableScratch| {
            let mut out = Vec::new();
            t.lookup(&projector, projected, s, &mut out);
            out.sort_by_key(|p: &Prediction| p.label);
            out.iter().map(|p| (p.label, p.score)).collect::<Vec<_>>()
        };
        // Codes 1 (function 0) and 2 (function 1): both buckets.
        assert_eq!(
            lookup(&[1, -1, 0, 1], &mut s),
            vec![(0, 0.125), (2, (0.75 + 0.5) / 2.0)]
        );
        // Code 1 for function 0 only (function 1 lands in empty bucket 0).
        assert_eq!(lookup(&[1, 0, 0, 0], &mut s), vec![(0, 0.125), (2, 0.375)]);
        // Function 1's bucket only: labels 0 and 1, below label 2, score 0 and are left out.
        assert_eq!(lookup(&[0, 0, -1, 1], &mut s), vec![(2, 0.25)]);
        // No populated bucket: no label at all.
        assert_eq!(lookup(&[0, 1, 1, 1], &mut s), vec![]);
    }
}
