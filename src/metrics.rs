//! Classification metrics for `sprig eval`: accuracy, per-label precision / recall / F1,
//! macro-F1 and the confusion matrix.
//!
//! Conventions follow scikit-learn's defaults: macro-F1 averages over every label that occurs
//! among the gold or predicted labels, and a ratio with a zero denominator counts as 0.
//! An abstention (no answer) is not a label: it counts against accuracy and against its gold
//! label's recall, and in no label's precision.

use serde::Serialize;

/// Counts of (gold, predicted) label pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Confusion {
    labels: Vec<String>,
    /// `counts[gold][pred]`.
    counts: Vec<Vec<u64>>,
    /// `abstained[gold]`: records of that gold label that got no answer.
    abstained: Vec<u64>,
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

    /// Adds `label` (with an empty row and column) unless it is known.
    fn insert(&mut self, label: &str) {
        if let Err(i) = self.labels.binary_search_by(|l| l.as_str().cmp(label)) {
            self.labels.insert(i, label.to_owned());
            for row in &mut self.counts {
                row.insert(i, 0);
            }
            let n = self.labels.len();
            self.counts.insert(i, vec![0; n]);
            self.abstained.insert(i, 0);
        }
    }

    fn position(&self, label: &str) -> usize {
        self.labels
            .binary_search_by(|l| l.as_str().cmp(label))
            .expect("label inserted before it is looked up")
    }

    /// Records one prediction.
    pub fn add(&mut self, gold: &str, predicted: &str) {
        // Both labels go in before either is looked up: inserting the second shifts every
        // index at or after its place, the first's included.
        self.insert(gold);
        self.insert(predicted);
        let (g, p) = (self.position(gold), self.position(predicted));
        self.counts[g][p] += 1;
    }

    /// Records one abstention: the model gave `gold`'s record no answer.
    pub fn add_abstention(&mut self, gold: &str) {
        self.insert(gold);
        let g = self.position(gold);
        self.abstained[g] += 1;
    }

    /// Abstentions per gold label, in [`Confusion::labels`] order.
    pub fn abstained(&self) -> &[u64] {
        &self.abstained
    }

    /// Labels (sorted).
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// `counts()[gold][pred]`, in [`Confusion::labels`] order.
    pub fn counts(&self) -> &[Vec<u64>] {
        &self.counts
    }

    /// Records scored: predictions and abstentions.
    pub fn total(&self) -> u64 {
        self.counts.iter().flatten().sum::<u64>() + self.abstained.iter().sum::<u64>()
    }

    /// Correct / total (0 when empty).
    pub fn accuracy(&self) -> f64 {
        let correct: u64 = (0..self.labels.len()).map(|i| self.counts[i][i]).sum();
        ratio(correct, self.total())
    }

    /// Per-label scores, in label order.
    pub fn per_label(&self) -> Vec<LabelScores> {
        (0..self.labels.len())
            .map(|i| {
                let tp = self.counts[i][i];
                let gold: u64 = self.counts[i].iter().sum::<u64>() + self.abstained[i];
                let pred: u64 = self.counts.iter().map(|r| r[i]).sum();
                let precision = ratio(tp, pred);
                let recall = ratio(tp, gold);
                let f1 = if precision + recall > 0.0 {
                    2.0 * precision * recall / (precision + recall)
                } else {
                    0.0
                };
                LabelScores {
                    label: self.labels[i].clone(),
                    support: gold,
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

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(c.counts()[2][1], 1);
    }

    #[test]
    fn a_new_predicted_label_sorting_first_does_not_shift_the_gold_row() {
        // Gold "b" goes in first; the predicted "a" then takes index 0 and moves "b" to 1.
        let mut c = Confusion::new();
        c.add("b", "a");
        assert_eq!(c.labels(), ["a", "b"]);
        assert_eq!(c.accuracy(), 0.0);
        assert_eq!(c.counts(), [vec![0, 0], vec![1, 0]]);
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
            for (gi, g) in c.labels().iter().enumerate() {
                for (pi, p) in c.labels().iter().enumerate() {
                    let want = tally.get(&(g.clone(), p.clone())).copied().unwrap_or(0);
                    proptest::prop_assert_eq!(c.counts()[gi][pi], want);
                }
            }
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
        assert_eq!(c.abstained(), [0, 1, 0]);
        assert!((c.macro_f1() - (1.0 + 2.0 / 3.0 + 1.0) / 3.0).abs() < 1e-12);
    }

    #[test]
    fn empty_is_zero_not_nan() {
        let c = Confusion::new();
        assert_eq!(c.accuracy(), 0.0);
        assert_eq!(c.macro_f1(), 0.0);
    }
}
