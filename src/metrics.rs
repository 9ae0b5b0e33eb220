//! Classification metrics for `sprig eval`: accuracy, per-label precision / recall / F1,
//! macro-F1 and the confusion matrix.
//!
//! Conventions follow scikit-learn's defaults: macro-F1 averages over every label that occurs
//! among the gold or predicted labels, and a ratio with a zero denominator counts as 0.
//! An abstention (no answer) is not a label: it counts against accuracy and against its gold
//! label's recall, and in no label's precision.

use std::collections::BTreeMap;

use serde::Serialize;

/// Counts of (gold, predicted) label pairs, kept sparse: a label set of thousands costs
/// the pairs that occur, not the square of its size.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Confusion {
    /// Per label (sorted): its gold, predicted, correct and abstained counts.
    tally: BTreeMap<String, Tally>,
    /// Gold → predicted → count, for the pairs that occur (correct ones included).
    pairs: BTreeMap<String, BTreeMap<String, u64>>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Tally {
    /// Records with this gold label, abstentions included.
    gold: u64,
    /// Answers with this label.
    predicted: u64,
    /// Records with this gold label answered with it.
    correct: u64,
    /// Records with this gold label that got no answer.
    abstained: u64,
}

/// Precision, recall and F1 of one label.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabelScores {
    /// The label.
    pub label: String,
    /// Gold occurrences.
    pub support: u64,
    /// Correct / predicted.
    pub precision: f64,
    /// Correct / gold.
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

impl Confusion {
    /// An empty matrix.
    pub fn new() -> Self {
        Self::default()
    }

    /// `label`'s tally, created empty if new (no allocation when it is known).
    fn tally(&mut self, label: &str) -> &mut Tally {
        if !self.tally.contains_key(label) {
            self.tally.insert(label.to_owned(), Tally::default());
        }
        self.tally.get_mut(label).expect("inserted above")
    }

    /// Records one prediction.
    pub fn add(&mut self, gold: &str, predicted: &str) {
        let g = self.tally(gold);
        g.gold += 1;
        g.correct += u64::from(gold == predicted);
        self.tally(predicted).predicted += 1;
        if !self.pairs.contains_key(gold) {
            self.pairs.insert(gold.to_owned(), BTreeMap::new());
        }
        let row = self.pairs.get_mut(gold).expect("inserted above");
        match row.get_mut(predicted) {
            Some(n) => *n += 1,
            None => {
                row.insert(predicted.to_owned(), 1);
            }
        }
    }

    /// Records one abstention: the model gave `gold`'s record no answer.
    pub fn add_abstention(&mut self, gold: &str) {
        let g = self.tally(gold);
        g.gold += 1;
        g.abstained += 1;
    }

    /// Labels seen, gold or predicted (sorted).
    pub fn labels(&self) -> Vec<&str> {
        self.tally.keys().map(String::as_str).collect()
    }

    /// How many records of gold label `gold` were answered `predicted`.
    pub fn count(&self, gold: &str, predicted: &str) -> u64 {
        self.pairs
            .get(gold)
            .and_then(|row| row.get(predicted))
            .copied()
            .unwrap_or(0)
    }

    /// The (gold, predicted, count) pairs that occur, correct ones included, sorted by gold
    /// then predicted label.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str, u64)> + '_ {
        self.pairs
            .iter()
            .flat_map(|(g, row)| row.iter().map(move |(p, &n)| (g.as_str(), p.as_str(), n)))
    }

    /// Records of gold label `gold` that got no answer.
    pub fn abstained(&self, gold: &str) -> u64 {
        self.tally.get(gold).map_or(0, |t| t.abstained)
    }

    /// The gold labels whose records got no answer, with how many (sorted by label).
    pub fn abstentions(&self) -> impl Iterator<Item = (&str, u64)> + '_ {
        self.tally
            .iter()
            .filter(|(_, t)| t.abstained > 0)
            .map(|(l, t)| (l.as_str(), t.abstained))
    }

    /// Every record counted (answered or not).
    pub fn total(&self) -> u64 {
        self.tally.values().map(|t| t.gold).sum()
    }

    /// Fraction of records whose prediction equals the gold label.
    pub fn accuracy(&self) -> f64 {
        let correct: u64 = self.tally.values().map(|t| t.correct).sum();
        ratio(correct, self.total())
    }

    /// Per-label scores, in label order.
    pub fn per_label(&self) -> Vec<LabelScores> {
        self.tally
            .iter()
            .map(|(label, t)| {
                let precision = ratio(t.correct, t.predicted);
                let recall = ratio(t.correct, t.gold);
                let f1 = if precision + recall > 0.0 {
                    2.0 * precision * recall / (precision + recall)
                } else {
                    0.0
                };
                LabelScores {
                    label: label.clone(),
                    support: t.gold,
                    precision,
                    recall,
                    f1,
                }
            })
            .collect()
    }

    /// Mean F1 over the labels seen (gold or predicted).
    pub fn macro_f1(&self) -> f64 {
        let per = self.per_label();
        if per.is_empty() {
            0.0
        } else {
            per.iter().map(|s| s.f1).sum::<f64>() / per.len() as f64
        }
    }
}

/// Equal-width score bins of [`Reliability::calibration_error`] (Guo et al. 2017's 15).
pub const RELIABILITY_BINS: usize = 15;

/// The thresholds a [`Reliability`] reports by default (`sprig eval --thresholds`).
pub const DEFAULT_THRESHOLDS: [f32; 3] = [0.5, 0.7, 0.9];

/// How well the scores of a model's answers match how often they are right (calibration),
/// and what `predict --threshold` would keep: top scores binned by value, and the answers
/// at or above each of its thresholds. Abstentions have no score and are left out, except
/// as records that no threshold answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Reliability {
    /// Per bin: answers, the sum of their scores, the right ones.
    bins: [(u64, f64, u64); RELIABILITY_BINS],
    /// The thresholds, compared with scores as `predict --threshold` compares them (`f32`).
    thresholds: Vec<f32>,
    /// Per threshold: answers scored at or above it, the right ones.
    kept: Vec<(u64, u64)>,
    /// Every record, answered or not.
    records: u64,
}

impl Default for Reliability {
    /// With [`DEFAULT_THRESHOLDS`].
    fn default() -> Self {
        Self::with_thresholds(&DEFAULT_THRESHOLDS)
    }
}

/// What `predict --threshold t` keeps of an evaluation's records.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AtThreshold {
    /// The threshold, as the shortest decimal of its `f32`.
    pub threshold: f64,
    /// Share of the records answered with a score of at least `threshold`.
    pub answered: f64,
    /// Share of those answers that are right; `None` (`null` in JSON) when there are none,
    /// which an accuracy of 0 would misreport as every answer wrong.
    pub accuracy: Option<f64>,
}

impl Reliability {
    /// No answer yet; [`Reliability::at_thresholds`] will report `thresholds`, in order.
    pub fn with_thresholds(thresholds: &[f32]) -> Self {
        Self {
            bins: [(0, 0.0, 0); RELIABILITY_BINS],
            thresholds: thresholds.to_vec(),
            kept: vec![(0, 0); thresholds.len()],
            records: 0,
        }
    }

    /// Counts an answer scored `score` (in `[0, 1]`), right or not.
    pub fn add(&mut self, score: f32, right: bool) {
        let b =
            ((score.clamp(0.0, 1.0) * RELIABILITY_BINS as f32) as usize).min(RELIABILITY_BINS - 1);
        let bin = &mut self.bins[b];
        *bin = (
            bin.0 + 1,
            bin.1 + f64::from(score),
            bin.2 + u64::from(right),
        );
        for (kept, &t) in self.kept.iter_mut().zip(&self.thresholds) {
            if score >= t {
                *kept = (kept.0 + 1, kept.1 + u64::from(right));
            }
        }
        self.records += 1;
    }

    /// Counts a record that got no answer.
    pub fn add_abstention(&mut self) {
        self.records += 1;
    }

    fn answers(&self) -> u64 {
        self.bins.iter().map(|b| b.0).sum()
    }

    /// Mean top score of the answers (0 without one).
    pub fn mean_score(&self) -> f64 {
        let sum: f64 = self.bins.iter().map(|b| b.1).sum();
        if self.answers() == 0 {
            0.0
        } else {
            sum / self.answers() as f64
        }
    }

    /// Expected calibration error of the answers: over [`RELIABILITY_BINS`] equal-width
    /// bins of their scores, the mean gap between a bin's mean score and its share of right
    /// answers, weighted by the bin's answers (Naeini et al. 2015; 0 without an answer).
    pub fn calibration_error(&self) -> f64 {
        let n = self.answers();
        if n == 0 {
            return 0.0;
        }
        self.bins
            .iter()
            .filter(|b| b.0 > 0)
            // A bin's gap times its share of the answers: |sum / count − right / count| ·
            // count / n.
            .map(|&(_, sum, right)| (sum - right as f64).abs())
            .sum::<f64>()
            / n as f64
    }

    /// What each threshold keeps.
    pub fn at_thresholds(&self) -> Vec<AtThreshold> {
        self.thresholds
            .iter()
            .zip(&self.kept)
            .map(|(&threshold, &(kept, right))| AtThreshold {
                // The shortest decimal that reads back as the `f32` (0.7, not 0.69999998…).
                threshold: threshold
                    .to_string()
                    .parse()
                    .unwrap_or(f64::from(threshold)),
                answered: ratio(kept, self.records),
                accuracy: (kept > 0).then(|| ratio(right, kept)),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reliability_matches_hand_counts() {
        let mut r = Reliability::default();
        assert_eq!((r.mean_score(), r.calibration_error()), (0.0, 0.0));
        // Bins 14 (two answers), 8 and 3 of 15, and one record without an answer.
        for (score, right) in [(0.95, true), (0.95, false), (0.55, true), (0.2, false)] {
            r.add(score, right);
        }
        r.add_abstention();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-6;
        assert!(close(r.mean_score(), 2.65 / 4.0), "{}", r.mean_score());
        // |1.9 − 1| + |0.55 − 1| + |0.2 − 0|, over 4 answers.
        assert!(
            close(r.calibration_error(), 1.55 / 4.0),
            "{}",
            r.calibration_error()
        );
        let at = r.at_thresholds();
        let got: Vec<(f64, f64, f64)> = at
            .iter()
            .map(|a| (a.threshold, a.answered, a.accuracy.unwrap()))
            .collect();
        assert_eq!(got[0].0, 0.5);
        assert!(
            close(got[0].1, 0.6) && close(got[0].2, 2.0 / 3.0),
            "{got:?}"
        );
        assert!(close(got[1].1, 0.4) && close(got[1].2, 0.5), "{got:?}");
        assert!(close(got[2].1, 0.4) && close(got[2].2, 0.5), "{got:?}");
        // A score equal to a threshold is kept (as `predict` keeps it), and a score of 1
        // falls in the last bin.
        let mut edge = Reliability::default();
        edge.add(0.7, true);
        edge.add(1.0, true);
        assert_eq!(edge.at_thresholds()[1].answered, 1.0);
        assert!(close(edge.calibration_error(), 0.3 / 2.0));
        // Thresholds of one's own, in the order given.
        let mut own = Reliability::with_thresholds(&[0.96, 0.1]);
        own.add(0.95, true);
        own.add(0.97, false);
        let at = own.at_thresholds();
        assert_eq!(
            (at[0].threshold, at[0].answered, at[0].accuracy),
            (0.96, 0.5, Some(0.0))
        );
        assert_eq!(
            (at[1].threshold, at[1].answered, at[1].accuracy),
            (0.1, 1.0, Some(0.5))
        );
        // Nothing kept: no accuracy at all, not an accuracy of 0.
        let mut none = Reliability::with_thresholds(&[0.99]);
        none.add(0.5, true);
        let at = none.at_thresholds();
        assert_eq!((at[0].answered, at[0].accuracy), (0.0, None));
        // Half right at 0.5: calibrated.
        let mut even = Reliability::default();
        for right in [true, false, true, false] {
            even.add(0.5, right);
        }
        assert_eq!(even.calibration_error(), 0.0);
    }

    #[test]
    fn matches_hand_counts() {
        let mut c = Confusion::new();
        for (g, p) in [("a", "a"), ("a", "b"), ("b", "b"), ("c", "b")] {
            c.add(g, p);
        }
        assert_eq!(c.labels(), ["a", "b", "c"]);
        assert_eq!(c.accuracy(), 0.5);
        let per = c.per_label();
        assert_eq!((per[0].precision, per[0].recall), (1.0, 0.5));
        assert!((per[1].precision - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(per[2].f1, 0.0);
        let f1_a = 2.0 / 3.0;
        let f1_b = 0.5;
        assert!((c.macro_f1() - (f1_a + f1_b) / 3.0).abs() < 1e-12);
        assert_eq!(c.count("c", "b"), 1);
        assert_eq!(c.count("b", "c"), 0);
    }

    #[test]
    fn a_new_predicted_label_sorting_first_does_not_shift_the_gold_row() {
        // Gold "b" goes in first; the predicted "a" then takes index 0 and moves "b" to 1.
        let mut c = Confusion::new();
        c.add("b", "a");
        assert_eq!(c.labels(), ["a", "b"]);
        assert_eq!(c.accuracy(), 0.0);
        assert_eq!(c.pairs().collect::<Vec<_>>(), [("b", "a", 1)]);
    }

    proptest::proptest! {
        /// The matrix equals a plain count of (gold, predicted) pairs, whatever order the
        /// labels first appear in.
        #[test]
        fn counts_equal_a_plain_tally(
            pairs in proptest::collection::vec((0u8..6, 0u8..6), 0..60)
        ) {
            let name = |i: u8| ((b'a' + i) as char).to_string();
            let mut c = Confusion::new();
            let mut tally = std::collections::BTreeMap::new();
            for &(g, p) in &pairs {
                c.add(&name(g), &name(p));
                *tally.entry((name(g), name(p))).or_insert(0u64) += 1;
            }
            for g in c.labels() {
                for p in c.labels() {
                    let want = tally.get(&(g.to_owned(), p.to_owned())).copied().unwrap_or(0);
                    proptest::prop_assert_eq!(c.count(g, p), want);
                }
            }
            let listed: Vec<((String, String), u64)> =
                c.pairs().map(|(g, p, n)| ((g.to_owned(), p.to_owned()), n)).collect();
            proptest::prop_assert_eq!(listed, tally.into_iter().collect::<Vec<_>>());
            let correct = pairs.iter().filter(|(g, p)| g == p).count() as u64;
            proptest::prop_assert_eq!(c.total(), pairs.len() as u64);
            if !pairs.is_empty() {
                proptest::prop_assert_eq!(c.accuracy(), correct as f64 / pairs.len() as f64);
            }
        }
    }

    #[test]
    fn abstentions_cost_accuracy_and_recall_but_are_no_label() {
        let mut c = Confusion::new();
        c.add("a", "a");
        c.add_abstention("a");
        c.add("b", "b");
        // A real label named like eval's old placeholder stays a label of its own.
        c.add("(none)", "(none)");
        assert_eq!(c.labels(), ["(none)", "a", "b"]);
        assert_eq!(c.total(), 4);
        assert_eq!(c.accuracy(), 0.75);
        let per = c.per_label();
        assert_eq!(
            (per[1].precision, per[1].recall, per[1].support),
            (1.0, 0.5, 2)
        );
        assert_eq!(per[0].f1, 1.0);
        assert_eq!(
            c.labels()
                .iter()
                .map(|l| c.abstained(l))
                .collect::<Vec<_>>(),
            [0, 1, 0]
        );
        assert_eq!(c.abstentions().collect::<Vec<_>>(), [("a", 1)]);
        assert!((c.macro_f1() - (1.0 + 2.0 / 3.0 + 1.0) / 3.0).abs() < 1e-12);
    }

    #[test]
    fn thousands_of_labels_cost_the_pairs_that_occur() {
        let mut c = Confusion::new();
        let name = |i: usize| format!("label{i:04}");
        for i in 0..3000 {
            c.add(&name(i), &name(i));
            c.add(&name(i), &name((i + 1) % 3000));
        }
        assert_eq!(c.labels().len(), 3000);
        assert_eq!(c.pairs().count(), 6000);
        assert_eq!(c.accuracy(), 0.5);
        assert_eq!(c.count(&name(2999), &name(0)), 1);
        assert!((c.macro_f1() - 0.5).abs() < 1e-12);
    }

    #[test]
    fn empty_is_zero_not_nan() {
        let c = Confusion::new();
        assert_eq!(c.accuracy(), 0.0);
        assert_eq!(c.macro_f1(), 0.0);
    }
}
