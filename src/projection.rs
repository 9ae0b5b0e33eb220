//! LSH projection of a text's hashed features into T functions × d ternary bits.
//!
//! This is the input layer of the on-device model (ProjectionNet, Ravi 2017; SGNN, Ravi &
//! Kozareva 2018): no vocabulary and no embedding table, only a seed and two sizes. The text
//! goes through the one text path ([`crate::text::TextPipeline`]), its features are counted,
//! and each bit is the sign of a random hyperplane applied to the weighted feature vector.
//!
//! **Contract.**
//! - *Input:* a text; its feature occurrences `Feature { hash, block }` from the pipeline.
//! - *Parameters:* [`ProjectionConfig`]: T functions, d bits each, a seed, the coefficient
//!   distribution, and whether functions are split by feature block.
//! - *Output:* T·d values in {−1, 0, +1} (`i8`): entry `t·d + j` is
//!   `sign(Σ_f w_f · c(f, t, j))`, 0 when the sum is exactly 0 (no feature: an empty text
//!   projects to all zeros).
//!
//! **Coefficients** are never stored. Function `t` has a seed `s_t` derived from
//! ([`ProjectionConfig::seed`], t) by SplitMix64; the 64 bits
//! `h = hash_with_seed(le_bytes(feature hash), s_t)` (XXH3-64, [`crate::hash::hash_with_seed`])
//! give all d coefficients of that feature for that function:
//! - `ternary` (default, seq_flow_lite's mapping): bits `2j, 2j+1` of `h` give
//!   00 → 0, 01 → +1, 10 → −1, 11 → 0, so d ≤ 32;
//! - `binary` (SimHash): bit `j` of `h` gives +1 if set, else −1, so d ≤ 64.
//!
//! One hash per (feature, function) rather than one per bit, and coefficients read four at a
//! time from a small table, keep the cost at O(features · T) hashes plus
//! O(features · T · d / 4) 4-wide additions. (A cheaper `splitmix64(feature ⊕ s_t)` was tried
//! and cost 1.5–2 points of HWU64 accuracy: a fixed input difference across functions leaves
//! their bits correlated.)
//!
//! **Weights** `w_f` are the feature's count in the text, or `1 + ln(count)` when the feature
//! config asks for sublinear TF. No IDF: that would need a stored vocabulary.
//!
//! **Structured projections** (SGNN++, Ravi & Kozareva 2019): with `structured` on and both
//! feature blocks present, the first `⌈T/2⌉` functions see only word features and the rest
//! only char features, so the many char n-grams of a text cannot drown its few word n-grams.
//! (A reference prototype measured 0.949 vs 0.927 on SNIPS for this split.)
//!
//! Features are summed in ascending hash order, so the output never depends on the order in
//! which the pipeline emits them, and the float sums are reproducible.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::text::{Block, FeatureConfig, FeatureScratch, TextConfig, TextPipeline, Tokens};

/// How the hyperplane coefficients are drawn from the hash bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Coefficients {
    /// {−1, 0, +1} with probabilities ¼, ½, ¼ (seq_flow_lite); d ≤ 32.
    #[default]
    Ternary,
    /// ±1 with probability ½ each (SimHash); d ≤ 64.
    Binary,
}

/// Sizes and seed of the projection. Stored in the model header: nothing else is needed to
/// regenerate every coefficient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProjectionConfig {
    /// T: number of hash functions, `1..=4096`. Default 80 (SGNN).
    pub functions: u32,
    /// d: bits per function, `1..=32` (ternary) or `1..=64` (binary). Default 14 (SGNN).
    pub bits: u32,
    /// Seed from which every function's hash seed is derived. Default 0x5EED.
    pub seed: u64,
    /// Coefficient distribution. Default [`Coefficients::Ternary`].
    pub coefficients: Coefficients,
    /// Split the functions between word and char features (SGNN++). Default true.
    pub structured: bool,
}

impl Default for ProjectionConfig {
    fn default() -> Self {
        Self {
            functions: 80,
            bits: 14,
            seed: 0x5EED,
            coefficients: Coefficients::Ternary,
            structured: true,
        }
    }
}

impl ProjectionConfig {
    /// Output length T·d.
    pub fn dim(&self) -> usize {
        self.functions as usize * self.bits as usize
    }

    /// Checks the ranges.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the field.
    pub fn validate(&self) -> Result<()> {
        if !(1..=4096).contains(&self.functions) {
            return Err(Error::config(
                "functions",
                format!("must be in 1..=4096, got {}", self.functions),
            ));
        }
        let max_bits = match self.coefficients {
            Coefficients::Ternary => 32,
            Coefficients::Binary => 64,
        };
        if !(1..=max_bits).contains(&self.bits) {
            return Err(Error::config(
                "bits",
                format!(
                    "must be in 1..={max_bits} for {:?} coefficients, got {}",
                    self.coefficients, self.bits
                ),
            ));
        }
        Ok(())
    }
}

/// Reusable buffers of [`Projector::project_with`].
#[derive(Debug, Default, Clone)]
pub struct ProjectScratch {
    tokens: Tokens,
    features: FeatureScratch,
    feats: Vec<(u64, Block)>,
    weighted: Vec<(u64, Block, f32)>,
    acc: Vec<f32>,
}

/// The text path plus the projection: text → T·d ternary values.
#[derive(Debug)]
pub struct Projector {
    pipeline: TextPipeline,
    config: ProjectionConfig,
    /// Per function: its XXH3 key ([`xxh3_flip`] of its seed) and the block it reads
    /// (`None`: every feature).
    functions: Vec<(u64, Option<Block>)>,
    /// The functions that read word features, and those that read char features.
    word_range: std::ops::Range<usize>,
    char_range: std::ops::Range<usize>,
    sublinear: bool,
}

/// Ternary coefficients of a byte: 4 two-bit codes, low bits first; 01 → +1, 10 → −1,
/// 00 and 11 → 0 (seq_flow_lite's mapping).
static TERNARY: std::sync::LazyLock<Vec<[f32; 4]>> = std::sync::LazyLock::new(|| {
    (0..256u32)
        .map(|byte| {
            std::array::from_fn(|k| {
                let two = (byte >> (2 * k)) & 3;
                (two & 1) as f32 - (two >> 1) as f32
            })
        })
        .collect()
});

/// Binary coefficients of a nibble: bit set → +1, clear → −1, low bits first.
static BINARY: std::sync::LazyLock<Vec<[f32; 4]>> = std::sync::LazyLock::new(|| {
    (0..16u32)
        .map(|nibble| std::array::from_fn(|k| if (nibble >> k) & 1 == 1 { 1.0 } else { -1.0 }))
        .collect()
});

/// XXH3-64's key for 4–8-byte inputs with `seed` (the specification's `bitflip`): bytes
/// 8..24 of the default secret, minus the seed with its low half byte-swapped into the high.
fn xxh3_flip(seed: u64) -> u64 {
    const S8: [u8; 8] = [0x7c, 0x01, 0x81, 0x2c, 0xf7, 0x21, 0xad, 0x1c];
    const S16: [u8; 8] = [0xde, 0xd4, 0x6d, 0xe9, 0x83, 0x90, 0x97, 0xdb];
    let seed = seed ^ (u64::from((seed as u32).swap_bytes()) << 32);
    (u64::from_le_bytes(S8) ^ u64::from_le_bytes(S16)).wrapping_sub(seed)
}

/// `hash_with_seed(&h.to_le_bytes(), seed)` with `flip = xxh3_flip(seed)`: XXH3-64's
/// 4–8-byte path written out, so the per-function key is computed once and the call inlines.
/// Bit-identical to the library call (tested below).
#[inline(always)]
fn xxh3_u64(h: u64, flip: u64) -> u64 {
    let input64 = (h >> 32).wrapping_add(h << 32);
    let mut v = input64 ^ flip;
    v ^= v.rotate_left(49) ^ v.rotate_left(24);
    v = v.wrapping_mul(0x9FB2_1C65_1E98_DF25);
    v ^= (v >> 35).wrapping_add(8);
    v = v.wrapping_mul(0x9FB2_1C65_1E98_DF25);
    v ^ (v >> 28)
}

/// SplitMix64's finalizer: decorrelates the per-function seeds.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Projector {
    /// Builds the projector.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if a config is out of range.
    pub fn new(
        text: &TextConfig,
        features: &FeatureConfig,
        config: &ProjectionConfig,
    ) -> Result<Self> {
        config.validate()?;
        let pipeline = TextPipeline::new(text, features)?;
        let word_on = features.unigrams || features.bigrams || features.skip_bigrams;
        let split = config.structured && word_on && features.chars_on();
        let t_total = config.functions as usize;
        let word_functions = t_total.div_ceil(2);
        let functions = (0..t_total)
            .map(|t| {
                let seed = xxh3_flip(mix(config.seed ^ mix(t as u64 + 1)));
                let block = if !split {
                    None
                } else if t < word_functions {
                    Some(Block::Word)
                } else {
                    Some(Block::Char)
                };
                (seed, block)
            })
            .collect();
        let (word_range, char_range) = if split {
            (0..word_functions, word_functions..t_total)
        } else {
            (0..t_total, 0..t_total)
        };
        Ok(Self {
            pipeline,
            config: config.clone(),
            functions,
            word_range,
            char_range,
            sublinear: features.sublinear_tf,
        })
    }

    /// The projection config.
    pub fn config(&self) -> &ProjectionConfig {
        &self.config
    }

    /// The text pipeline it projects through.
    pub fn pipeline(&self) -> &TextPipeline {
        &self.pipeline
    }

    /// Output length T·d.
    pub fn dim(&self) -> usize {
        self.config.dim()
    }

    /// Projects `text` into `out` (length [`Projector::dim`]), reusing `scratch`.
    ///
    /// # Panics
    /// If `out.len() != self.dim()` (a bug in the caller).
    pub fn project_with(&self, scratch: &mut ProjectScratch, text: &str, out: &mut [i8]) {
        assert_eq!(out.len(), self.dim(), "projection output length");
        self.pipeline.tokenize_into(text, &mut scratch.tokens);
        let feats = &mut scratch.feats;
        feats.clear();
        self.pipeline
            .for_each_feature_of(&scratch.tokens, &mut scratch.features, |f, _| {
                feats.push((f.hash, f.block))
            });
        self.project_features(scratch, out);
    }

    /// Projects `text` into a new vector.
    pub fn project(&self, text: &str) -> Vec<i8> {
        let mut out = vec![0i8; self.dim()];
        self.project_with(&mut ProjectScratch::default(), text, &mut out);
        out
    }

    /// Counts `scratch.feats` and applies the hyperplanes.
    fn project_features(&self, scratch: &mut ProjectScratch, out: &mut [i8]) {
        let ProjectScratch {
            feats,
            weighted,
            acc,
            ..
        } = scratch;
        feats.sort_unstable();
        weighted.clear();
        for &(h, b) in feats.iter() {
            match weighted.last_mut() {
                Some(last) if last.0 == h && last.1 == b => last.2 += 1.0,
                _ => weighted.push((h, b, 1.0)),
            }
        }
        if self.sublinear {
            for w in weighted.iter_mut() {
                w.2 = 1.0 + w.2.ln();
            }
        }
        let d = self.config.bits as usize;
        // Each function's d sums sit in a lane of `padded` floats, a multiple of 4, so that
        // every group of 4 coefficients is one table row added with one vector operation.
        let padded = d.div_ceil(4) * 4;
        let groups = padded / 4;
        acc.clear();
        acc.resize(self.functions.len() * padded, 0.0);
        let (table, shift) = match self.config.coefficients {
            Coefficients::Ternary => (&*TERNARY, 8),
            Coefficients::Binary => (&*BINARY, 4),
        };
        let mask = (1u64 << shift) - 1;
        for &(h, b, w) in weighted.iter() {
            let range = match b {
                Block::Word => self.word_range.clone(),
                Block::Char => self.char_range.clone(),
            };
            for t in range {
                let bits = xxh3_u64(h, self.functions[t].0);
                let lane = &mut acc[t * padded..(t + 1) * padded];
                for g in 0..groups {
                    let row = &table[((bits >> (g * shift)) & mask) as usize];
                    let a = &mut lane[g * 4..g * 4 + 4];
                    for k in 0..4 {
                        a[k] += w * row[k];
                    }
                }
            }
        }
        for (t, o) in out.chunks_exact_mut(d).enumerate() {
            for (o, &a) in o.iter_mut().zip(&acc[t * padded..t * padded + d]) {
                *o = if a > 0.0 {
                    1
                } else if a < 0.0 {
                    -1
                } else {
                    0
                };
            }
        }
    }

    /// The bucket of each function: its d signs packed as a code (`+1` → bit set), for the
    /// table model. `projected` is an output of [`Projector::project_with`].
    pub fn codes(&self, projected: &[i8], out: &mut Vec<u64>) {
        let d = self.config.bits as usize;
        out.clear();
        out.extend(projected.chunks_exact(d).map(|bits| {
            bits.iter()
                .enumerate()
                .fold(0u64, |code, (j, &b)| code | (u64::from(b > 0) << j))
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn projector(config: &ProjectionConfig) -> Projector {
        Projector::new(&TextConfig::default(), &FeatureConfig::default(), config).unwrap()
    }

    #[test]
    fn projection_is_pinned() {
        let p = projector(&ProjectionConfig::default());
        let v = p.project("Thank you so much!");
        assert_eq!(v.len(), 1120);
        // Golden values: a change to the text path, the hash or the coefficients shows here.
        let head: Vec<i8> = v[..28].to_vec();
        let sum: i64 = v.iter().map(|&x| i64::from(x)).sum();
        let zeros = v.iter().filter(|&&x| x == 0).count();
        assert_eq!(head, GOLDEN_HEAD, "first two functions");
        assert_eq!((sum, zeros), GOLDEN_STATS);
    }

    const GOLDEN_HEAD: [i8; 28] = [
        1, -1, -1, -1, 0, -1, -1, 1, 1, 1, 1, 0, 1, 1, 1, -1, -1, -1, -1, -1, -1, 0, 1, 1, -1, -1,
        1, 1,
    ];
    // (Σ values, number of zeros) over all 1,120.
    const GOLDEN_STATS: (i64, usize) = (41, 163);

    #[test]
    fn empty_text_projects_to_zeros_and_order_does_not_matter() {
        let p = projector(&ProjectionConfig::default());
        assert!(p.project("  ").iter().all(|&x| x == 0));
        let a = p.project("see you soon");
        assert_eq!(a, p.project("see you soon"));
        assert_ne!(a, p.project("soon see you"), "bigrams differ");
        assert!(a.iter().all(|&x| (-1..=1).contains(&x)));
    }

    #[test]
    fn structured_functions_read_one_block() {
        let p = projector(&ProjectionConfig::default());
        // Word features of "ok" and "ok ok" differ only in counts, and so does each char
        // block; a typo changes the char half much more than the word half of a long text.
        let a = p.project("where are you right now my friend");
        let b = p.project("where are you rihgt now my friend");
        let half = p.dim() / 2;
        let diff = |r: std::ops::Range<usize>| r.filter(|&i| a[i] != b[i]).count();
        assert!(diff(0..half) > 0 && diff(half..p.dim()) > 0);
        let unsplit = projector(&ProjectionConfig {
            structured: false,
            ..ProjectionConfig::default()
        });
        assert_ne!(unsplit.project("where are you"), p.project("where are you"));
    }

    #[test]
    fn similar_texts_share_more_bits_than_unrelated_ones() {
        let p = projector(&ProjectionConfig::default());
        let agree = |x: &[i8], y: &[i8]| x.iter().zip(y).filter(|(a, b)| a == b).count();
        let a = p.project("what time is the meeting tomorrow");
        let b = p.project("what time is the meeting today");
        let c = p.project("congrats on the new baby 🎉");
        assert!(agree(&a, &b) > agree(&a, &c) + 100);
    }

    #[test]
    fn binary_coefficients_and_codes() {
        let p = projector(&ProjectionConfig {
            coefficients: Coefficients::Binary,
            bits: 20,
            ..ProjectionConfig::default()
        });
        let v = p.project("on my way");
        // ±1 sums of few features can still cancel, but rarely.
        assert!(v.iter().filter(|&&x| x == 0).count() < v.len() / 5);
        let mut codes = Vec::new();
        p.codes(&v, &mut codes);
        assert_eq!(codes.len(), 80);
        assert!(codes.iter().all(|&c| c < 1 << 20));
        assert_eq!(
            codes[0].count_ones() as usize,
            v[..20].iter().filter(|&&x| x > 0).count()
        );
    }

    #[test]
    fn inlined_xxh3_matches_the_library() {
        let mut h = 0x0123_4567_89ab_cdefu64;
        for i in 0..1000u64 {
            h = mix(h ^ i);
            let seed = mix(i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            assert_eq!(
                xxh3_u64(h, xxh3_flip(seed)),
                crate::hash::hash_with_seed(&h.to_le_bytes(), seed)
            );
        }
    }

    #[test]
    fn rejects_bad_sizes() {
        for bad in [
            ProjectionConfig {
                functions: 0,
                ..ProjectionConfig::default()
            },
            ProjectionConfig {
                bits: 33,
                ..ProjectionConfig::default()
            },
        ] {
            assert!(matches!(bad.validate(), Err(Error::InvalidConfig { .. })));
        }
    }
}
