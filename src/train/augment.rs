//! Distillation through augmented copies (`--augment N`): a linear *teacher* labels
//! perturbed copies of the training texts, and the projection network learns from them too.
//!
//! The projection network sees a text only through fixed random bits; on a few thousand
//! texts it fits them long before it has learned which n-grams matter. A linear model over
//! the raw TF-IDF n-grams has no such bottleneck (on HWU64 it reaches 87% where the
//! projection network reaches 83%), and distilling it over *more inputs than the training
//! texts* passes on what it knows about n-grams the training texts only hint at (Tang et al.
//! 2019 distil BERT into small networks the same way; here the teacher is linear, so it
//! costs seconds).
//!
//! - **Teacher:** multinomial logistic regression over the pipeline's features, weighted as
//!   the graph weights them ([`crate::features::tfidf_row`]), over a vocabulary of the features seen in the training
//!   examples. Trained on the training examples' targets (seeds and propagated
//!   distributions alike; never on the held-out slice) by per-example SGD in a seeded order,
//!   with a step decaying linearly to zero over [`TEACHER_EPOCHS`] epochs, as fastText does.
//!   One thread, so the result does not depend on the thread count.
//! - **Copies:** for each training example, `N` copies (fewer when `N` times the training
//!   examples would pass [`MAX_COPIES`]) with words (whitespace-separated)
//!   perturbed by a generator seeded from (seed, example, copy): drop each word with
//!   probability 0.15 (half the copies), keep a contiguous span of at least half the words
//!   (three in ten), or swap two neighbouring words (two in ten). Texts of one word have no
//!   copies (nor, for now, do texts written without spaces, such as Chinese).
//! - **Targets:** each copy's target is the teacher's distribution (labels below 0.001 are
//!   dropped and the rest renormalized), weighted as the example it was copied from (a seed's
//!   copy as a seed, a propagated example's with λ and its confidence).

use hashbrown::HashMap;
use rand::rngs::Xoshiro256PlusPlus;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

use super::{shuffle, Example};
use crate::build::Progress;
use crate::features;
use crate::network::softmax;
use crate::text::{Block, TextPipeline};

/// Epochs of the teacher's SGD.
pub(super) const TEACHER_EPOCHS: usize = 10;
/// The teacher's initial step (per example), decaying linearly to zero. Rows have unit
/// L2 norm, so one step moves a text's own logits by at most this times its error.
const TEACHER_LR: f32 = 1.0;
/// Copies made in all, about: a larger corpus gets fewer per text (at least one), since
/// each copy's projected inputs stay in memory (packed four to a byte: 280 MB in all at
/// T·d = 1,120) and the gain is largest where training texts are few.
pub(super) const MAX_COPIES: usize = 1 << 20;
/// Labels below this teacher probability are left out of a copy's target.
const MIN_TARGET: f32 = 1e-3;
/// The teacher's weight matrix holds at most this many floats (256 MiB): past it, features
/// share weight rows by hash (see [`Teacher::fit`]).
const MAX_TEACHER_WEIGHTS: usize = 1 << 26;

/// One text as the teacher sees it: `(weight row, weight)`, in vocabulary order (a row may
/// repeat when features share rows).
type Row = Vec<(u32, f32)>;
/// A feature occurrence count: `(hash, block, count)`.
type Count = (u64, Block, f32);

/// Distinct texts the teacher counts or weighs at a time (in parallel).
const TEACHER_BLOCK: usize = 4096;

/// Every distinct text's [`Row`], end to end in one allocation (a vector per text cost an
/// allocation each, and their memory stayed with the allocator once freed).
#[derive(Debug, Default)]
struct Rows {
    /// Where row `i` ends in `entries` (it starts where row `i − 1` ends).
    ends: Vec<usize>,
    entries: Vec<(u32, f32)>,
}

impl Rows {
    fn push(&mut self, row: &[(u32, f32)]) {
        self.entries.extend_from_slice(row);
        self.ends.push(self.entries.len());
    }

    fn get(&self, i: usize) -> &[(u32, f32)] {
        let start = i.checked_sub(1).map_or(0, |j| self.ends[j]);
        &self.entries[start..self.ends[i]]
    }
}

/// The linear teacher: weights `rows × labels`, biases per label.
pub(super) struct Teacher {
    /// Feature hash → vocabulary id.
    vocab: HashMap<u64, u32>,
    /// Weight row per vocabulary id: the id itself, unless the vocabulary is too large.
    row_of: Vec<u32>,
    /// IDF per vocabulary row.
    idf: Vec<f32>,
    /// Block per vocabulary row.
    blocks: Vec<Block>,
    weights: Vec<f32>,
    bias: Vec<f32>,
    n_labels: usize,
    char_weight: f32,
    sublinear: bool,
}

impl Teacher {
    /// Builds the vocabulary and IDF from `train` (indices into `examples`) and fits the
    /// teacher on their targets. When vocabulary × labels would pass
    /// [`MAX_TEACHER_WEIGHTS`] (many labels and a large corpus), features share weight rows
    /// by feature hash, as fastText's buckets do: a weaker teacher rather than a refusal.
    pub(super) fn fit(
        pipeline: &TextPipeline,
        examples: &[Example],
        train: &[usize],
        n_labels: usize,
        seed: u64,
        progress: &dyn Progress,
    ) -> Self {
        Self::fit_within(
            pipeline,
            examples,
            train,
            n_labels,
            seed,
            MAX_TEACHER_WEIGHTS,
            progress,
        )
    }

    fn fit_within(
        pipeline: &TextPipeline,
        examples: &[Example],
        train: &[usize],
        n_labels: usize,
        seed: u64,
        max_weights: usize,
        progress: &dyn Progress,
    ) -> Self {
        let config = pipeline.feature_config();
        let mut vocab: HashMap<u64, u32> = HashMap::new();
        let mut blocks = Vec::new();
        let mut df: Vec<u32> = Vec::new();
        // Identical texts (a corpus's repeated records) are counted as one text and share one
        // weighted row, so the teacher's memory follows the distinct texts (SwDA's train
        // split: 123,619 for 192,390 records). Everything else is per example, as before.
        let (distinct, text_of) = {
            let mut first: HashMap<&str, u32> = HashMap::new();
            let mut distinct: Vec<usize> = Vec::new();
            let text_of: Vec<u32> = train
                .iter()
                .map(|&i| {
                    let next = distinct.len() as u32;
                    let id = *first.entry(examples[i].text.as_str()).or_insert(next);
                    if id == next {
                        distinct.push(i);
                    }
                    id
                })
                .collect();
            (distinct, text_of)
        };
        // Document frequencies count examples: a distinct text counts as often as it occurs.
        let mut occurrences = vec![0u32; distinct.len()];
        for &t in &text_of {
            occurrences[t as usize] += 1;
        }
        // Features are numbered in order of first appearance over the examples, so the
        // vocabulary is the same for any thread count; a text's features first appear at its
        // first occurrence, so the distinct texts in order number them the same way. Their
        // counts are made a block of texts at a time (in parallel) and dropped once counted
        // (they are made again to weigh them below): held for every text at once, they were
        // most of a large corpus's training memory, which the allocator then kept.
        for (b, block) in distinct.chunks(TEACHER_BLOCK).enumerate() {
            let counts: Vec<Vec<Count>> = block
                .par_iter()
                .map(|&i| raw_counts(pipeline, &examples[i].text))
                .collect();
            for (t, counts) in (b * TEACHER_BLOCK..).zip(&counts) {
                for &(h, block, _) in counts {
                    let next = vocab.len() as u32;
                    let id = *vocab.entry(h).or_insert(next);
                    if id == next {
                        df.push(0);
                        blocks.push(block);
                    }
                    df[id as usize] += occurrences[t];
                }
            }
        }
        let n_rows = vocab.len().min((max_weights / n_labels.max(1)).max(1));
        let mut row_of: Vec<u32> = (0..vocab.len() as u32).collect();
        if n_rows < vocab.len() {
            for (&h, &id) in &vocab {
                row_of[id as usize] = (h % n_rows as u64) as u32;
            }
        }
        let idf = features::idf(&df, train.len());
        let mut teacher = Self {
            weights: vec![0.0; n_rows * n_labels],
            vocab,
            row_of,
            idf,
            blocks,
            bias: vec![0.0; n_labels],
            n_labels,
            char_weight: config.char_weight,
            sublinear: config.sublinear_tf,
        };
        let mut rows = Rows::default();
        for block in distinct.chunks(TEACHER_BLOCK) {
            let weighed: Vec<Row> = block
                .par_iter()
                .map(|&i| teacher.weigh(&raw_counts(pipeline, &examples[i].text)))
                .collect();
            for row in &weighed {
                rows.push(row);
            }
        }
        rows.entries.shrink_to_fit();
        teacher.sgd(&rows, &text_of, examples, train, seed, progress);
        teacher
    }

    /// Per-example SGD on the cross-entropy against each example's target, weighted by the
    /// example's weight; `train[r]`'s row is `rows[text_of[r]]`. `progress` advances once
    /// per epoch.
    fn sgd(
        &mut self,
        rows: &Rows,
        text_of: &[u32],
        examples: &[Example],
        train: &[usize],
        seed: u64,
        progress: &dyn Progress,
    ) {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x7EAC_4E85_0000_0001);
        let mut order: Vec<usize> = (0..train.len()).collect();
        let total = (TEACHER_EPOCHS * train.len()).max(1) as f32;
        let mut step = 0usize;
        let (mut z, mut p) = (vec![0.0f32; self.n_labels], vec![0.0f32; self.n_labels]);
        // Steps scale with an example's weight relative to the mean: only the ratios of the
        // weights matter, so λ = 100 (or seed weights of 100) does not become a step size
        // 100 times the one the schedule was set for (measured: teacher held-out accuracy
        // 0.86 → 0.49 on the bundled corpus before this).
        let mean = train
            .iter()
            .map(|&i| f64::from(examples[i].weight))
            .sum::<f64>()
            / train.len().max(1) as f64;
        let inv_mean = if mean > 0.0 { (1.0 / mean) as f32 } else { 1.0 };
        for _ in 0..TEACHER_EPOCHS {
            shuffle(&mut order, &mut rng);
            for &r in &order {
                // With thousands of labels an epoch takes seconds: ask every 1,024 steps.
                // A teacher cut short is never used (the caller checks again).
                if step.is_multiple_of(1024) && progress.cancelled() {
                    return;
                }
                let lr = TEACHER_LR * (1.0 - step as f32 / total);
                step += 1;
                let ex = &examples[train[r]];
                let row = rows.get(text_of[r] as usize);
                self.probabilities(row, &mut z, &mut p);
                for &(label, t) in &ex.target {
                    p[label as usize] -= t;
                }
                // p now holds the gradient of the loss with respect to the logits.
                let scale = lr * (ex.weight * inv_mean);
                for (b, g) in self.bias.iter_mut().zip(&p) {
                    *b -= scale * g;
                }
                for &(f, x) in row {
                    let w = &mut self.weights[f as usize * self.n_labels..][..self.n_labels];
                    for (w, g) in w.iter_mut().zip(&p) {
                        *w -= scale * x * g;
                    }
                }
            }
            progress.advance(1);
        }
    }

    /// The teacher's distribution over labels for a weighted row, via its logits `z`.
    fn probabilities(&self, row: &[(u32, f32)], z: &mut [f32], p: &mut [f32]) {
        z.copy_from_slice(&self.bias);
        for &(f, x) in row {
            let w = &self.weights[f as usize * self.n_labels..][..self.n_labels];
            for (z, w) in z.iter_mut().zip(w) {
                *z += x * w;
            }
        }
        softmax(z, p);
    }

    /// The teacher's target for a new text: labels at or above [`MIN_TARGET`], renormalized.
    pub(super) fn target(&self, pipeline: &TextPipeline, text: &str) -> Vec<(u32, f32)> {
        let (mut z, mut p) = (vec![0.0f32; self.n_labels], vec![0.0f32; self.n_labels]);
        let row = self.weigh(&raw_counts(pipeline, text));
        self.probabilities(&row, &mut z, &mut p);
        // With more than a thousand labels the top one may itself be below the floor.
        let floor = p.iter().copied().fold(0.0f32, f32::max).min(MIN_TARGET);
        let mut target: Vec<(u32, f32)> = p
            .iter()
            .enumerate()
            .filter(|(_, &v)| v >= floor)
            .map(|(l, &v)| (l as u32, v))
            .collect();
        let sum: f32 = target.iter().map(|t| t.1).sum();
        for t in &mut target {
            t.1 /= sum;
        }
        target
    }

    /// The teacher's accuracy against the top label of `examples[idx]`' targets.
    pub(super) fn accuracy(
        &self,
        pipeline: &TextPipeline,
        examples: &[Example],
        idx: &[usize],
    ) -> f64 {
        if idx.is_empty() {
            return 0.0;
        }
        let hits = idx
            .iter()
            .filter(|&&i| {
                let t = self.target(pipeline, &examples[i].text);
                super::argmax_target(&t) == super::argmax_target(&examples[i].target)
            })
            .count();
        hits as f64 / idx.len() as f64
    }

    /// The graph's TF-IDF weights ([`features::tfidf_row`]) of the text's known features,
    /// on their weight rows.
    fn weigh(&self, counts: &[Count]) -> Row {
        let mut known: Vec<(u32, f32)> = counts
            .iter()
            .filter_map(|&(h, _, c)| self.vocab.get(&h).map(|&id| (id, c)))
            .collect();
        known.sort_unstable_by_key(|k| k.0);
        let (ids, raw): (Vec<u32>, Vec<f32>) = known.into_iter().unzip();
        let (ids, weights) = features::tfidf_row(
            &ids,
            &raw,
            &self.idf,
            &self.blocks,
            |_| true,
            self.sublinear,
            self.char_weight,
        );
        ids.into_iter()
            .map(|id| self.row_of[id as usize])
            .zip(weights)
            .collect()
    }
}

/// Feature hashes of a text with their blocks and counts, sorted by hash.
fn raw_counts(pipeline: &TextPipeline, text: &str) -> Vec<Count> {
    let mut hashes: Vec<(u64, Block)> = Vec::new();
    pipeline.for_each_feature(&pipeline.tokenize(text), |f, _| {
        hashes.push((f.hash, f.block))
    });
    hashes.sort_unstable_by_key(|h| h.0);
    // Sized exactly: a vector grown by doubling holds up to twice its entries, and a whole
    // block of texts' counts is held at once while the teacher's vocabulary is built.
    let distinct = hashes.windows(2).filter(|w| w[0].0 != w[1].0).count() + 1;
    let mut row: Vec<Count> = Vec::with_capacity(distinct.min(hashes.len()));
    for (h, block) in hashes {
        match row.last_mut() {
            Some(last) if last.0 == h => last.2 += 1.0,
            _ => row.push((h, block, 1.0)),
        }
    }
    row
}

/// The `copy`-th perturbed copy of `text`, or `None` when the text has fewer than two
/// words or the perturbation left it unchanged.
pub(super) fn perturb(text: &str, seed: u64, example: usize, copy: usize) -> Option<String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.len() < 2 {
        return None;
    }
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&(example as u64).to_le_bytes());
    key[8..].copy_from_slice(&(copy as u64).to_le_bytes());
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(crate::hash::hash_with_seed(&key, seed));
    let n = words.len();
    // Uniform in [0, 1) and in 0..n, spelled out so that the copies do not depend on how
    // a `rand` release maps bits to ranges.
    let mut unit = || (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    let kind = unit();
    let out: Vec<&str> = if kind < 0.5 {
        let kept: Vec<&str> = words.iter().copied().filter(|_| unit() >= 0.15).collect();
        if kept.is_empty() {
            vec![words[(unit() * n as f64) as usize]]
        } else {
            kept
        }
    } else if kind < 0.8 {
        let shortest = n.div_ceil(2);
        let len = shortest + (unit() * (n - shortest + 1) as f64) as usize;
        let start = (unit() * (n - len + 1) as f64) as usize;
        words[start..start + len].to_vec()
    } else {
        let mut w = words.clone();
        let i = (unit() * (n - 1) as f64) as usize;
        w.swap(i, i + 1);
        w
    };
    (out != words).then(|| out.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::{FeatureConfig, TextConfig};
    use crate::train::{argmax_target, TrainSet};

    fn pipeline() -> TextPipeline {
        TextPipeline::new(&TextConfig::default(), &FeatureConfig::default()).unwrap()
    }

    /// A teacher fitted on every example of the toy set, with that set, the pipeline and the
    /// examples' indices.
    fn toy_teacher() -> (TrainSet, TextPipeline, Vec<usize>, Teacher) {
        let set = TrainSet::supervised(&crate::train::tests::toy_records()).unwrap();
        let p = pipeline();
        let all: Vec<usize> = (0..set.examples.len()).collect();
        let teacher = Teacher::fit(&p, &set.examples, &all, set.labels.len(), 1, &());
        (set, p, all, teacher)
    }

    #[test]
    fn copies_are_seeded_perturbations_of_the_words() {
        let text = "could you please tell me where the station is";
        let words: Vec<&str> = text.split_whitespace().collect();
        let copies: Vec<String> = (0..40).filter_map(|c| perturb(text, 7, 3, c)).collect();
        assert!(copies.len() >= 30, "most copies change something");
        for (c, copy) in copies.iter().enumerate() {
            assert_ne!(copy, text);
            let mut got: Vec<&str> = copy.split_whitespace().collect();
            assert!(!got.is_empty());
            // Every copy uses the text's own words, each at most as often.
            got.sort_unstable();
            let mut pool = words.clone();
            pool.sort_unstable();
            for w in got {
                let at = pool.iter().position(|p| *p == w);
                assert!(at.is_some(), "copy {c}: {copy:?}");
                pool.remove(at.unwrap());
            }
        }
        let distinct: std::collections::BTreeSet<&String> = copies.iter().collect();
        assert!(distinct.len() > copies.len() / 2, "copies differ");
        // Same (seed, example, copy), same copy; another seed or example, another set.
        let again: Vec<String> = (0..40).filter_map(|c| perturb(text, 7, 3, c)).collect();
        assert_eq!(copies, again);
        let other: Vec<String> = (0..40).filter_map(|c| perturb(text, 8, 3, c)).collect();
        assert_ne!(copies, other);
        assert_ne!(
            copies,
            (0..40)
                .filter_map(|c| perturb(text, 7, 4, c))
                .collect::<Vec<_>>()
        );
        assert_eq!(perturb("hello", 7, 3, 0), None, "one word: no copy");
        assert_eq!(perturb("  ", 7, 3, 0), None);
    }

    /// Identical texts share a count vector, but document frequencies still count examples
    /// (as before the sharing): a text repeated five times among eight examples weighs its
    /// features by the idf of five occurrences.
    #[test]
    fn repeated_texts_count_once_per_example_in_the_document_frequencies() {
        let set = TrainSet::supervised(&crate::train::tests::toy_records()).unwrap();
        let mut examples = set.examples[..3].to_vec();
        for _ in 0..5 {
            examples.push(examples[0].clone());
        }
        let p = pipeline();
        // Not in example order, and leaving one example out, as a held-out slice does.
        let train = [7usize, 0, 2, 5, 3, 6, 4];
        let teacher = Teacher::fit(&p, &examples, &train, set.labels.len(), 1, &());
        let mut df = vec![0u32; teacher.idf.len()];
        for &i in &train {
            for (h, _, _) in raw_counts(&p, &examples[i].text) {
                df[teacher.vocab[&h] as usize] += 1;
            }
        }
        assert!(
            df.iter().any(|&d| d >= 6),
            "the repeated text's features: {df:?}"
        );
        assert_eq!(teacher.idf, features::idf(&df, train.len()));
    }

    #[test]
    fn features_are_numbered_by_first_appearance_across_blocks_of_texts() {
        // More distinct texts than the teacher counts at a time, some repeated (the copies
        // placed after their originals, and training in reverse order, so that a repeat is
        // met first): the ids and document frequencies must be those of one pass over the
        // examples in training order.
        let p = pipeline();
        let words = ["tea", "coffee", "train", "station", "thanks", "later"];
        let n = TEACHER_BLOCK + 300;
        let mut examples: Vec<Example> = (0..n)
            .map(|i| Example {
                text: format!("w{i} {} w{}", words[i % words.len()], i / 7),
                target: vec![((i % 2) as u32, 1.0)],
                weight: 1.0,
                seed: false,
            })
            .collect();
        for i in [5, 17, n - 1, TEACHER_BLOCK, 17] {
            examples.push(examples[i].clone());
        }
        let train: Vec<usize> = (0..examples.len()).rev().collect();
        let teacher = Teacher::fit(&p, &examples, &train, 2, 1, &());
        let (mut ids, mut df) = (HashMap::new(), Vec::new());
        for &i in &train {
            for (h, _, _) in raw_counts(&p, &examples[i].text) {
                let next = ids.len() as u32;
                let id = *ids.entry(h).or_insert(next);
                if id == next {
                    df.push(0u32);
                }
                df[id as usize] += 1;
            }
        }
        assert_eq!(teacher.vocab, ids);
        assert_eq!(teacher.idf, features::idf(&df, train.len()));
    }

    #[test]
    fn rows_give_back_each_row_pushed() {
        let mut rows = Rows::default();
        let pushed: [&[(u32, f32)]; 4] = [&[(3, 0.5), (1, 0.25)], &[], &[(7, 1.0)], &[]];
        for row in pushed {
            rows.push(row);
        }
        for (i, row) in pushed.iter().enumerate() {
            assert_eq!(rows.get(i), *row, "row {i}");
        }
    }

    #[test]
    fn teacher_fits_its_examples_and_gives_distributions() {
        let (set, p, all, teacher) = toy_teacher();
        assert_eq!(teacher.accuracy(&p, &set.examples, &all), 1.0);
        for text in ["thanks so much", "where do we meet", "zzz qqq", ""] {
            let t = teacher.target(&p, text);
            assert!(!t.is_empty(), "{text:?}");
            let sum: f32 = t.iter().map(|x| x.1).sum();
            assert!((sum - 1.0).abs() < 1e-5, "{text:?}: {sum}");
            assert!(t.iter().all(|x| x.1 >= 0.0 && x.1.is_finite()));
        }
        let thanks = set.labels.iter().position(|l| l == "thanks").unwrap() as u32;
        assert_eq!(argmax_target(&teacher.target(&p, "thanks so much")), thanks);
        // Trained on three suffixes of each phrase, it knows the phrases with the other two.
        let (seen, unseen) = all.split_at(36);
        let part = Teacher::fit(&p, &set.examples, seen, set.labels.len(), 1, &());
        let acc = part.accuracy(&p, &set.examples, unseen);
        assert!(acc >= 0.9, "{acc}");
        // Room for 64 weight rows only: features share rows by hash, and it still learns.
        let vocab = teacher.vocab.len();
        let small = Teacher::fit_within(&p, &set.examples, &all, set.labels.len(), 1, 64 * 4, &());
        assert!(vocab > 64, "{vocab}");
        assert_eq!(small.weights.len(), 64 * 4);
        assert!(small.row_of.iter().all(|&r| r < 64));
        assert!(small.accuracy(&p, &set.examples, &all) >= 0.9);
        let t = small.target(&p, "thanks so much");
        assert!((t.iter().map(|x| x.1).sum::<f32>() - 1.0).abs() < 1e-5);
    }

    #[test]
    fn a_vocabulary_that_just_fits_keeps_a_weight_row_per_feature() {
        let set = TrainSet::supervised(&crate::train::tests::toy_records()).unwrap();
        let p = pipeline();
        let all: Vec<usize> = (0..set.examples.len()).collect();
        let n_labels = set.labels.len();
        let vocab = Teacher::fit(&p, &set.examples, &all, n_labels, 1, &())
            .vocab
            .len();
        // Room for exactly the vocabulary's rows, as every teacher under the limit has:
        // no feature shares one (rows are shared by hash only past the limit).
        let exact =
            Teacher::fit_within(&p, &set.examples, &all, n_labels, 1, vocab * n_labels, &());
        assert_eq!(exact.row_of, (0..vocab as u32).collect::<Vec<_>>());
        assert_eq!(exact.weights.len(), vocab * n_labels);
    }

    /// `softmax` in f64.
    fn softmax64(z: &[f64]) -> Vec<f64> {
        let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = z.iter().map(|v| (v - max).exp()).collect();
        let sum: f64 = e.iter().sum();
        e.iter().map(|v| v / sum).collect()
    }

    /// One text twice (so the seeded order cannot matter), both weighing 3. Each step moves
    /// the text's logits by `−lr · (1 + ‖x‖²) · (p − q)` (its bias, then the weight rows of
    /// its features), `lr` falling linearly from 1 towards 0 over the 10 × 2 steps, the
    /// weights divided by their mean. The logits are checked against that recurrence in f64,
    /// not only the top label: the fitted label is the same under a wrong schedule or scale.
    #[test]
    fn the_teacher_takes_decaying_steps_scaled_by_the_relative_weight() {
        let p = pipeline();
        let text = "thanks a lot";
        let q = [0.75, 0.0, 0.25];
        let ex = Example {
            text: text.into(),
            target: vec![(0, 0.75), (2, 0.25)],
            weight: 3.0,
            seed: true,
        };
        let examples = vec![ex.clone(), ex];
        let teacher = Teacher::fit(&p, &examples, &[0, 1], 3, 1, &());
        let row = teacher.weigh(&raw_counts(&p, text));
        // A weight row per feature (none shared), so the weight updates add ‖x‖² exactly.
        let mut ids: Vec<u32> = row.iter().map(|r| r.0).collect();
        ids.dedup();
        assert_eq!(ids.len(), row.len());
        let norm2: f64 = row.iter().map(|&(_, x)| f64::from(x).powi(2)).sum();
        let steps = TEACHER_EPOCHS * examples.len();
        let mut want = [0.0f64; 3];
        for step in 0..steps {
            let lr = f64::from(TEACHER_LR) * (1.0 - step as f64 / steps as f64);
            let p = softmax64(&want);
            for l in 0..3 {
                want[l] -= lr * (1.0 + norm2) * (p[l] - q[l]);
            }
        }
        let (mut z, mut probs) = (vec![0.0f32; 3], vec![0.0f32; 3]);
        teacher.probabilities(&row, &mut z, &mut probs);
        for (got, want) in z.iter().zip(want) {
            assert!(
                (f64::from(*got) - want).abs() < 1e-4 * want.abs().max(1.0),
                "{z:?} instead of {want:?}"
            );
        }
    }

    /// Weights count relative to their mean; with every weight 0 there is no mean to divide
    /// by, and the teacher learns nothing (uniform targets) rather than dividing by 0 (NaN
    /// weights and NaN targets for every copy).
    #[test]
    fn a_teacher_of_zero_weight_examples_learns_nothing() {
        let set = TrainSet::supervised(&crate::train::tests::toy_records()).unwrap();
        let mut examples = set.examples.clone();
        for ex in &mut examples {
            ex.weight = 0.0;
        }
        let p = pipeline();
        let all: Vec<usize> = (0..examples.len()).collect();
        let teacher = Teacher::fit(&p, &examples, &all, 4, 1, &());
        assert!(teacher
            .weights
            .iter()
            .chain(&teacher.bias)
            .all(|&w| w == 0.0));
        let t = teacher.target(&p, "thanks so much");
        assert_eq!(t, [(0, 0.25), (1, 0.25), (2, 0.25), (3, 0.25)]);
    }

    /// A teacher without features: its distribution is the softmax of its biases.
    fn biased(bias: Vec<f32>) -> Teacher {
        Teacher {
            vocab: HashMap::new(),
            row_of: Vec::new(),
            idf: Vec::new(),
            blocks: Vec::new(),
            weights: Vec::new(),
            n_labels: bias.len(),
            bias,
            char_weight: 1.0,
            sublinear: true,
        }
    }

    #[test]
    fn targets_leave_out_labels_under_the_floor_and_renormalize_the_rest() {
        let p = pipeline();
        let teacher = biased([0.9f32, 0.0995, 0.0005].iter().map(|v| v.ln()).collect());
        let t = teacher.target(&p, "any text at all");
        assert_eq!(t.iter().map(|x| x.0).collect::<Vec<_>>(), [0, 1]);
        for (&(_, got), want) in t.iter().zip([0.9 / 0.9995, 0.0995 / 0.9995]) {
            assert!((f64::from(got) - want).abs() < 1e-6, "{t:?}");
        }
        // Past a thousand labels the top one may itself be under the floor: it is kept,
        // with every label as likely.
        let t = biased(vec![0.0; 2000]).target(&p, "any text at all");
        assert_eq!(t.len(), 2000);
        assert!(
            t.iter().all(|x| (x.1 - 1.0 / 2000.0).abs() < 1e-7),
            "{:?}",
            t[0]
        );
    }

    #[test]
    fn teacher_accuracy_is_the_share_of_top_labels_it_agrees_with() {
        let (set, p, all, teacher) = toy_teacher();
        assert_eq!(teacher.accuracy(&p, &set.examples, &all), 1.0);
        // The same texts, the first 12 (one suffix) moved to the next label: those miss.
        let mut moved = set.examples.clone();
        for ex in &mut moved[..12] {
            ex.target = vec![((ex.target[0].0 + 1) % 4, 1.0)];
        }
        assert_eq!(teacher.accuracy(&p, &moved, &all), 48.0 / 60.0);
        assert_eq!(teacher.accuracy(&p, &moved, &all[..12]), 0.0);
        assert_eq!(teacher.accuracy(&p, &moved, &[]), 0.0);
    }

    #[test]
    fn raw_counts_give_each_feature_once_with_its_count_in_hash_order() {
        let p = pipeline();
        let text = "to be or not to be";
        let mut want = std::collections::BTreeMap::<u64, (Block, f32)>::new();
        p.for_each_feature(&p.tokenize(text), |f, _| {
            want.entry(f.hash).or_insert((f.block, 0.0)).1 += 1.0;
        });
        let want: Vec<Count> = want.into_iter().map(|(h, (b, c))| (h, b, c)).collect();
        // "to", "be" and "to be" twice, with their character n-grams.
        assert!(want.iter().any(|c| c.2 == 2.0));
        assert_eq!(raw_counts(&p, text), want);
    }

    #[test]
    fn two_words_are_enough_for_copies() {
        let copies: std::collections::BTreeSet<String> = (0..40)
            .filter_map(|c| perturb("hello there", 7, 3, c))
            .collect();
        // Swapped, or one word left (the other dropped, or a span of half the words).
        assert!(copies.contains("there hello"), "{copies:?}");
        assert!(
            copies
                .iter()
                .all(|c| ["there hello", "hello", "there"].contains(&c.as_str())),
            "{copies:?}"
        );
    }

    /// A thousand copies of ten distinct words, sorted by kind. Of the draws, half drop
    /// words (each with probability 0.15; 20% drop none and 9% leave a contiguous run), three
    /// in ten keep a span of 5 to 10 words (10 is no copy), two in ten swap a neighbouring
    /// pair. Expected: 200 swaps at all 9 places; 250 spans starting at all of 0..=5, plus
    /// 45 contiguous drops; 356 other drops keeping 8.1 words on average. The bounds are
    /// about four standard deviations wide (the copies are seeded: the test is deterministic).
    #[test]
    fn copies_drop_keep_a_span_or_swap_in_the_documented_shares() {
        let text = (0..10)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        let (mut swaps, mut swapped_at) = (0, std::collections::BTreeSet::new());
        let (mut contiguous, mut starts, mut short) = (0, std::collections::BTreeSet::new(), 0);
        let mut dropped: Vec<usize> = Vec::new();
        for c in 0..1000 {
            let Some(copy) = perturb(&text, 11, 5, c) else {
                continue;
            };
            let got: Vec<usize> = copy.split(' ').map(|w| w[1..].parse().unwrap()).collect();
            if got.len() == 10 {
                // Every word in place but one neighbouring pair.
                let i = (0..9).find(|&i| got[i] != i).unwrap();
                let mut want: Vec<usize> = (0..10).collect();
                want.swap(i, i + 1);
                assert_eq!(got, want, "{copy}");
                swaps += 1;
                swapped_at.insert(i);
            } else if got.windows(2).all(|w| w[1] == w[0] + 1) {
                contiguous += 1;
                starts.insert(got[0]);
                short += usize::from(got.len() < 5);
            } else {
                assert!(got.windows(2).all(|w| w[0] < w[1]), "{copy}: out of order");
                dropped.push(got.len());
            }
        }
        assert!((150..=250).contains(&swaps), "{swaps} swaps");
        assert_eq!(swapped_at, (0..9).collect());
        assert!((225..=365).contains(&contiguous), "{contiguous} contiguous");
        assert_eq!(starts, (0..=5).collect(), "spans start anywhere they fit");
        assert!(
            short <= 2,
            "{short} contiguous copies shorter than half the words"
        );
        assert!(
            (280..=430).contains(&dropped.len()),
            "{} drops",
            dropped.len()
        );
        let mean = dropped.iter().sum::<usize>() as f64 / dropped.len() as f64;
        assert!((7.7..=8.4).contains(&mean), "{mean} words kept on average");
    }
}
