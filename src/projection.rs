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
//! That is the [`Scheme::PerFunction`] layout, the only one before [`Scheme`] existed. The
//! [`Scheme::Paired`] layout reads two functions from one hash:
//! functions `t` and `t + 1` of the same block share `s_t`'s hash, `t` reading its low 32
//! bits and `t + 1` its high 32 bits (when both fit: d ≤ 16 ternary, d ≤ 32 binary). Every
//! coefficient is still an XXH3 output bit, so functions stay as independent as before, for
//! half the hashing. (A cheaper `splitmix64(feature ⊕ s_t)` was tried and cost 1.5–2 points
//! of HWU64 accuracy: a fixed input difference across functions leaves their bits
//! correlated. The paired layout measured 80.0 ± 1.0 vs 79.9 ± 1.1 on HWU64 over 15
//! projection seeds, 95.9 vs 95.8 on SNIPS over 5; see benches/README.md.)
//!
//! The [`Scheme::Sketch`] layout (the default for new models) uses sparse hyperplanes
//! instead (Li, Hastie & Church's very sparse random projections at their sparsest: a count
//! sketch): for each function, a feature's coefficient is ±1 on one of the d bits and 0 on
//! the others. Four functions of the same block read one hash, 16 bits each: bit
//! `((c & 0x7fff) · d) >> 15`, sign from the top bit. A bit then sums the few features hashed
//! to it rather than every feature of the text, so the network sees single n-grams more
//! directly (measured: see [`Scheme::Sketch`]).
//!
//! **Weights** `w_f` are the feature's count in the text, or `1 + ln(count)` when the feature
//! config asks for sublinear TF. No IDF: that would need a stored vocabulary. The paired and
//! sketch schemes use integers: the count, or `round(8 · (1 + ln(count)))`, so their sums are
//! exact.
//!
//! **Speed.** The dense schemes run function by function with the coefficients of a hash
//! decoded into vector lanes (AVX2 when the CPU has it, chosen at run time); the sketch, which
//! touches one bit per function, goes group by group, with an AVX-512 kernel where the CPU
//! has one (chosen at run time, the same sums as the scalar code). Integer weights up to
//! 255 are counted exactly in byte lanes; other weights are summed in `f32` lanes in the
//! reference order, so `per-function` models project bit for bit as they always did (tested
//! against the table-driven reference implementation).
//!
//! **Structured projections** (SGNN++, Ravi & Kozareva 2019): with `structured` on and both
//! feature blocks present, the first `⌈T/2⌉` functions see only word features and the rest
//! only char features, so the many char n-grams of a text cannot drown its few word n-grams.
//! (A reference prototype measured 0.949 vs 0.927 on SNIPS for this split.)
//!
//! Features are summed in ascending hash order, so the output never depends on the order in
//! which the pipeline emits them, and the float sums are reproducible. The paired and sketch
//! schemes' integer sums do not depend on any order: the sketch counts a text's repeated
//! features with a small hash table instead of a sort, and sums them as they first appear.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::hash::{xxh3_rrmxmx, XXH3_SECRET_8_56};
use crate::network::Kernel;
use crate::text::{Block, FeatureConfig, FeatureScratch, TextConfig, TextPipeline, Tokens};

/// How the hyperplane coefficients are drawn from the hash bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Coefficients {
    /// {−1, 0, +1} with probabilities ¼, ½, ¼ (seq_flow_lite); d ≤ 32.
    #[default]
    Ternary,
    /// ±1 with probability ½ each (SimHash); d ≤ 64.
    Binary,
}

/// How the coefficient bits are drawn from hashes, and how feature weights are summed (see
/// the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Scheme {
    /// One XXH3-64 per (feature, function), `f32` weights.
    ///
    /// The weights (counts, or `1 + ln(count)`) are summed in ascending feature-hash order.
    /// The scheme of every model written before the field existed.
    PerFunction,
    /// One XXH3-64 per (feature, pair of functions), integer weights.
    ///
    /// The low 32 bits give the first function's coefficients, the high 32 bits the
    /// second's (when `d ≤ 16` ternary or `d ≤ 32` binary; otherwise every function has its
    /// own hash, as in `per-function`). Pairs never mix word and char functions. Weights are
    /// integers (counts, or `round(8 · (1 + ln(count)))` for sublinear TF) and the sums are
    /// exact. Half the hashing of `per-function`.
    Paired,
    /// Sparse hyperplanes (a count sketch): for each function, a feature has one non-zero
    /// coefficient, ±1, on one of the d bits. One XXH3-64 per (feature, group of four
    /// functions of the same block), 16 bits a function; integer weights as in `paired`.
    ///
    /// Each bit sums the signed weights of the few features hashed to it instead of all of
    /// the text's features, so single n-grams stay visible to the network. Fully supervised
    /// test accuracy against `paired`, same defaults otherwise: HWU64 81.4 vs 80.1 (mean of
    /// projection seeds 1–10, better on 9 of 10), SwDA 69.1 vs 68.4 (seeds 1–2), SNIPS even;
    /// half the hashing of `paired`, about the same latency (see benches/README.md).
    /// `coefficients` must be ternary (the field's default); the sketch draws its own.
    Sketch,
}

impl Scheme {
    /// The scheme of a header that does not name one: the only scheme that existed then.
    fn unnamed() -> Self {
        Scheme::PerFunction
    }

    fn is_unnamed(&self) -> bool {
        *self == Self::unnamed()
    }
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
    /// How hashes give coefficients ([`Scheme`]). Default [`Scheme::Sketch`]; a header without
    /// the field (written before it existed) reads as [`Scheme::PerFunction`], so old models
    /// predict as they did. [`Scheme::PerFunction`] is not written either, so that a
    /// per-function model stays readable by builds that predate the field; they refuse a
    /// paired model (an unknown field) rather than misread it.
    #[serde(
        default = "Scheme::unnamed",
        skip_serializing_if = "Scheme::is_unnamed"
    )]
    pub scheme: Scheme,
}

impl Default for ProjectionConfig {
    fn default() -> Self {
        Self {
            functions: 80,
            bits: 14,
            seed: 0x5EED,
            coefficients: Coefficients::Ternary,
            structured: true,
            scheme: Scheme::Sketch,
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
        if self.scheme == Scheme::Sketch && self.coefficients != Coefficients::Ternary {
            return Err(Error::config(
                "coefficients",
                "the sketch scheme (the default) draws its own coefficients, ±1 on one bit \
                 per function: binary coefficients need the paired or per-function scheme",
            ));
        }
        if !(1..=max_bits).contains(&self.bits) {
            return Err(Error::config(
                "bits",
                format!(
                    "must be in 1..={max_bits} for {} coefficients, got {}",
                    format!("{:?}", self.coefficients).to_lowercase(),
                    self.bits
                ),
            ));
        }
        Ok(())
    }

    /// How many functions read one hash: two for the paired scheme when both fit in 32
    /// bits, four for the sketch (16 bits each), otherwise one.
    fn functions_per_hash(&self) -> usize {
        match self.scheme {
            Scheme::PerFunction => 1,
            Scheme::Paired => match self.coefficients {
                Coefficients::Ternary if self.bits <= 16 => 2,
                Coefficients::Binary if self.bits <= 32 => 2,
                _ => 1,
            },
            Scheme::Sketch => SKETCH_FUNCTIONS_PER_HASH,
        }
    }
}

/// Reusable buffers of [`Projector::project_with`].
#[derive(Debug, Default, Clone)]
pub struct ProjectScratch {
    tokens: Tokens,
    features: FeatureScratch,
    feats: Vec<(u64, Block)>,
    weighted: Vec<(u64, Block, f32)>,
    /// The weighted features read by the word functions (or by all), and by the char ones.
    word: Vec<(u64, f32)>,
    char: Vec<(u64, f32)>,
    acc: Vec<f32>,
    /// One block's weighted features with integer weights (the sketch).
    ints: Vec<(u64, i32)>,
    /// The hash table that counts the sketch's features: indices into `weighted`.
    slots: Vec<u32>,
    /// One block's features' cells and its functions' sums (AVX-512).
    cells: Vec<u16>,
    sums: Vec<i32>,
}

/// The text path plus the projection: text → T·d ternary values.
#[derive(Debug, Clone)]
pub struct Projector {
    pipeline: TextPipeline,
    config: ProjectionConfig,
    /// Per function: its XXH3 key ([`xxh3_flip`] of its seed) and the block it reads
    /// (`None`: every feature).
    functions: Vec<(u64, Option<Block>)>,
    /// The functions that read word features, and those that read char features.
    word_range: std::ops::Range<usize>,
    char_range: std::ops::Range<usize>,
    /// The hashes a feature needs: one per function, or per pair of functions
    /// ([`Scheme::Paired`]); `word_groups` and `char_groups` index this for each block.
    groups: Vec<Group>,
    word_groups: std::ops::Range<usize>,
    char_groups: std::ops::Range<usize>,
    /// The XXH3 keys of the word and the char block's groups, each padded with zeros to a
    /// multiple of 8: what the AVX-512 sketch kernel loads.
    block_keys: [Vec<u64>; 2],
    sublinear: bool,
}

/// One hash of a feature, and the functions it gives coefficients to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Group {
    /// XXH3 key of the hash: that of function `first`.
    flip: u64,
    /// The first function.
    first: usize,
    /// Functions `first..first + len` read this hash (`len` is 2 for a pair of the paired
    /// scheme, up to 4 for the sketch).
    len: usize,
}

impl Group {
    /// Whether function `first + 1` reads the high 32 bits (the paired scheme). Only the
    /// dense kernels ask; a sketch group's length means four 16-bit chunks, never halves.
    fn paired(&self) -> bool {
        self.len == 2
    }
}

/// Counts `feats` into `weighted` (first-appearance order) with a hash table: open
/// addressing, linear probing, at most half full. A feature hash is an XXH3 output, so its
/// low bits index the table as they are. Returns `false`, leaving `weighted` partial, if the
/// probes exceed a few per feature: only crafted n-grams whose hashes share their low bits
/// get there, and the caller then sorts, so no text costs quadratic time.
fn count_in_table(
    feats: &[(u64, Block)],
    slots: &mut Vec<u32>,
    weighted: &mut Vec<(u64, Block, f32)>,
) -> bool {
    let size = (2 * feats.len()).next_power_of_two().max(16);
    let mask = size - 1;
    let mut budget = 8 * feats.len() + 64;
    slots.clear();
    slots.resize(size, u32::MAX);
    for &(h, b) in feats {
        let mut i = (h as usize ^ b as usize) & mask;
        loop {
            match slots[i] {
                u32::MAX => {
                    slots[i] = weighted.len() as u32;
                    weighted.push((h, b, 1.0));
                    break;
                }
                k => {
                    let e = &mut weighted[k as usize];
                    if e.0 == h && e.1 == b {
                        e.2 += 1.0;
                        break;
                    }
                }
            }
            budget = match budget.checked_sub(1) {
                Some(left) => left,
                None => return false,
            };
            i = (i + 1) & mask;
        }
    }
    true
}

/// Functions per hash of [`Scheme::Sketch`]: 16 bits each (15 for the bit, 1 for the sign).
const SKETCH_FUNCTIONS_PER_HASH: usize = 4;

/// The bit (`< d`) that function `i` of a sketch group gives a feature with hash bits
/// `bits`, and whether its coefficient is −1: from the function's 16 bits `c`, the bit is
/// `((c & 0x7fff) · d) >> 15` (a multiply-shift range reduction) and the sign is `c`'s top
/// bit.
#[inline(always)]
fn sketch_bit(bits: u64, i: usize, d: usize) -> (usize, bool) {
    let c = (bits >> (16 * i)) as u16;
    ((usize::from(c & 0x7fff) * d) >> 15, c & 0x8000 != 0)
}

/// The groups of the functions `range`: `per_hash` consecutive functions from its start,
/// the last group taking what is left.
fn groups_of(
    functions: &[(u64, Option<Block>)],
    range: std::ops::Range<usize>,
    per_hash: usize,
    out: &mut Vec<Group>,
) -> std::ops::Range<usize> {
    let start = out.len();
    let mut t = range.start;
    while t < range.end {
        let len = per_hash.min(range.end - t);
        out.push(Group {
            flip: functions[t].0,
            first: t,
            len,
        });
        t += len;
    }
    start..out.len()
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
    let [s8, s16, ..] = XXH3_SECRET_8_56;
    let seed = seed ^ (u64::from((seed as u32).swap_bytes()) << 32);
    (s8 ^ s16).wrapping_sub(seed)
}

/// `hash_with_seed(&h.to_le_bytes(), seed)` with `flip = xxh3_flip(seed)`: XXH3-64's
/// 4–8-byte path written out, so the per-function key is computed once and the call inlines.
/// Bit-identical to the library call (tested below).
#[inline(always)]
fn xxh3_u64(h: u64, flip: u64) -> u64 {
    let input64 = (h >> 32).wrapping_add(h << 32);
    xxh3_rrmxmx(input64 ^ flip, 8)
}

/// SplitMix64's finalizer: decorrelates the per-function seeds.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Signs of the ternary projections of `list` (weighted features, ascending by hash) for the
/// functions of `groups`, into their places in `out` (all T·d values; d ≤ 32, and d ≤ 16
/// for a paired group).
fn ternary_functions(
    kernel: Kernel,
    groups: &[Group],
    list: &[(u64, f32)],
    d: usize,
    out: &mut [i8],
) {
    match kernel {
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 | Kernel::Avx512 => {
            // Integer weights up to 255 (raw counts, the paired scheme's weights, and the
            // weight 1 of a feature seen once under sublinear TF) are counted exactly in
            // bytes, and in units of the weight when all weights are equal.
            let first = list.first().map_or(1.0, |f| f.1);
            let equal = list.iter().all(|&(_, w)| w == first);
            let integral = list
                .iter()
                .all(|&(_, w)| w.fract() == 0.0 && (1.0..=255.0).contains(&w));
            let units: f64 = if equal {
                list.len() as f64
            } else {
                list.iter().map(|&(_, w)| f64::from(w)).sum()
            };
            let counting = match (integral && units <= f64::from(i16::MAX), equal) {
                (false, _) => avx2::Counting::No,
                (true, false) => avx2::Counting::Weighted,
                (true, true) => avx2::Counting::Equal,
            };
            // SAFETY: both kernels are only chosen when the CPU has AVX2.
            unsafe { avx2::functions(groups, list, d, counting, out) }
        }
        _ => ternary_functions_body(groups, list, d, out),
    }
}

/// The AVX2 kernels of the ternary projection: the same sums as [`ternary_sums`], 8 lanes per
/// register, decoded with masks and compares.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{place, xxh3_u64, Group};
    use crate::network::{entered, Entry};
    use std::arch::x86_64::*;

    /// Signs of the functions of `groups` over `list`, into `out` (see
    /// [`super::ternary_functions`]).
    ///
    /// `counting` (checked by the caller) selects exact byte counts (see [`counts`]) or `f32`
    /// sums computed exactly as [`super::ternary_sums`] does.
    #[target_feature(enable = "avx2")]
    pub(super) fn functions(
        groups: &[Group],
        list: &[(u64, f32)],
        d: usize,
        counting: Counting,
        out: &mut [i8],
    ) {
        entered(Entry::ProjectionFunctionsAvx2);
        let mut signs = [0i8; 32];
        for g in groups {
            let wide = g.paired() || d > 16;
            match (counting, wide) {
                (Counting::Equal, false) => counts::<1, true>(list, g.flip, &mut signs),
                (Counting::Equal, true) => counts::<2, true>(list, g.flip, &mut signs),
                (Counting::Weighted, false) => counts::<1, false>(list, g.flip, &mut signs),
                (Counting::Weighted, true) => counts::<2, false>(list, g.flip, &mut signs),
                (Counting::No, false) => sums::<1>(list, g.flip, &mut signs),
                (Counting::No, true) => sums::<2>(list, g.flip, &mut signs),
            }
            place(g, &signs, d, out);
        }
    }

    /// Lane `k` of the low (high) register of a group tests bit `2k` (`2k + 1`), k < 8, of
    /// the group's 32 hash bits; the second pair of registers covers `k + 8`.
    #[target_feature(enable = "avx2")]
    fn masks() -> [__m256i; 4] {
        let plus = _mm256_setr_epi32(1, 1 << 2, 1 << 4, 1 << 6, 1 << 8, 1 << 10, 1 << 12, 1 << 14);
        let plus_hi = _mm256_slli_epi32::<16>(plus);
        [
            plus,
            _mm256_slli_epi32::<1>(plus),
            plus_hi,
            _mm256_slli_epi32::<1>(plus_hi),
        ]
    }

    /// `f32` sums, in list order: lane `j` adds `(w if +1 bit) − (w if −1 bit)`, which is
    /// exactly `w · c` for `c` ∈ {0, +1, −1} (and `w − w = 0` for the code 11).
    #[target_feature(enable = "avx2")]
    fn sums<const G: usize>(list: &[(u64, f32)], flip: u64, signs: &mut [i8; 32]) {
        let [p0, m0, p1, m1] = masks();
        let mut acc = [[_mm256_setzero_ps(); 2]; G];
        for &(h, w) in list {
            let bits = xxh3_u64(h, flip);
            let w = _mm256_set1_ps(w);
            for (g, acc) in acc.iter_mut().enumerate() {
                let v = _mm256_set1_epi32((bits >> (32 * g)) as u32 as i32);
                for (a, (p, m)) in acc.iter_mut().zip([(p0, m0), (p1, m1)]) {
                    let p = _mm256_cmpeq_epi32(_mm256_and_si256(v, p), p);
                    let m = _mm256_cmpeq_epi32(_mm256_and_si256(v, m), m);
                    let term = _mm256_sub_ps(
                        _mm256_and_ps(_mm256_castsi256_ps(p), w),
                        _mm256_and_ps(_mm256_castsi256_ps(m), w),
                    );
                    *a = _mm256_add_ps(*a, term);
                }
            }
        }
        let zero = _mm256_setzero_ps();
        for (g, acc) in acc.iter().enumerate() {
            for (half, &a) in acc.iter().enumerate() {
                // −1 where a > 0, minus −1 where a < 0: the sign as an `i32` per lane.
                let pos = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_GT_OQ>(a, zero));
                let neg = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_LT_OQ>(a, zero));
                let s = _mm256_sub_epi32(neg, pos);
                let mut lanes = [0i32; 8];
                // SAFETY: `lanes` is 32 writable bytes; the store is unaligned.
                unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), s) };
                for (k, &x) in lanes.iter().enumerate() {
                    signs[16 * g + 8 * half + k] = x as i8;
                }
            }
        }
    }

    /// How [`functions`] sums.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(super) enum Counting {
        /// Every weight is the same integer in `1..=255`, and the list is at most
        /// `i16::MAX` long: count features (the common weight scales no sign).
        Equal,
        /// Every weight is an integer in `1..=255`, summing to at most `i16::MAX`.
        Weighted,
        /// `f32` sums in the reference order.
        No,
    }

    /// Exact integer sums: for each of the 32 bits of a 32-bit half of the hash, a byte lane
    /// counts the weight of the features whose hash has it set (lanes 0–15 the +1 bits `2j`,
    /// lanes 16–31 the −1 bits `2j + 1`), and sum `j` is the difference of two lanes. The
    /// byte lanes are flushed into `i16` differences before the weight they have gathered
    /// could pass 255; the caller keeps the total weight within `i16::MAX`. With `EQUAL`,
    /// every feature counts 1 (all weights are the same positive number, which no sign
    /// depends on). Integer sums below 2^24 are also what the `f32` path computes (every
    /// partial sum is exact), so the signs agree with it.
    #[target_feature(enable = "avx2")]
    fn counts<const G: usize, const EQUAL: bool>(
        list: &[(u64, f32)],
        flip: u64,
        signs: &mut [i8; 32],
    ) {
        // Byte `b` of the low (high) 128-bit half of register `g` reads hash byte
        // `4g + b / 4` and its bit `2 (b % 4)` (`2 (b % 4) + 1`).
        let select = [
            _mm256_setr_epi8(
                0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, //
                0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3,
            ),
            _mm256_setr_epi8(
                4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7, //
                4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7,
            ),
        ];
        let bit = _mm256_setr_epi8(
            1, 4, 16, 64, 1, 4, 16, 64, 1, 4, 16, 64, 1, 4, 16, 64, //
            2, 8, 32, -128, 2, 8, 32, -128, 2, 8, 32, -128, 2, 8, 32, -128,
        );
        let mut acc = [_mm256_setzero_si256(); G];
        let mut diff = [_mm256_setzero_si256(); G];
        let mut pending = 0u32;
        for &(h, w) in list {
            let w8 = if EQUAL { 1 } else { w as u32 };
            if pending + w8 > 255 {
                flush(&mut acc, &mut diff);
                pending = 0;
            }
            pending += w8;
            let bits = xxh3_u64(h, flip);
            // All 8 hash bytes in both 128-bit halves, for the in-half byte shuffle.
            let v = _mm256_set1_epi64x(bits as i64);
            for (g, acc) in acc.iter_mut().enumerate() {
                let set = _mm256_cmpeq_epi8(
                    _mm256_and_si256(_mm256_shuffle_epi8(v, select[g]), bit),
                    bit,
                );
                *acc = if EQUAL {
                    // `set` is −1 where the bit is set.
                    _mm256_sub_epi8(*acc, set)
                } else {
                    _mm256_add_epi8(
                        *acc,
                        _mm256_and_si256(set, _mm256_set1_epi8(w8 as u8 as i8)),
                    )
                };
            }
        }
        flush(&mut acc, &mut diff);
        let ones = _mm_set1_epi8(1);
        for (g, &d) in diff.iter().enumerate() {
            // The saturating pack keeps every sign; `sign(1, x)` is the sign.
            let packed =
                _mm_packs_epi16(_mm256_castsi256_si128(d), _mm256_extracti128_si256::<1>(d));
            let s = _mm_sign_epi8(ones, packed);
            // SAFETY: `signs[16g..16g + 16]` is 16 writable bytes (g < G ≤ 2); unaligned store.
            unsafe { _mm_storeu_si128(signs[16 * g..].as_mut_ptr().cast(), s) };
        }
    }

    /// Adds the byte lanes (+1 counts minus −1 counts) into the `i16` differences and zeroes
    /// them.
    #[target_feature(enable = "avx2")]
    fn flush<const G: usize>(acc: &mut [__m256i; G], diff: &mut [__m256i; G]) {
        for (a, d) in acc.iter_mut().zip(diff.iter_mut()) {
            let plus = _mm256_cvtepu8_epi16(_mm256_castsi256_si128(*a));
            let minus = _mm256_cvtepu8_epi16(_mm256_extracti128_si256::<1>(*a));
            *d = _mm256_add_epi16(*d, _mm256_sub_epi16(plus, minus));
            *a = _mm256_setzero_si256();
        }
    }
}

/// The sketch's sums ([`Scheme::Sketch`]) with AVX-512: one feature's hashes for eight
/// groups (32 functions) at once, in 64-bit lanes.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use crate::network::{entered, Entry};
    use std::arch::x86_64::*;

    /// Cells computed before they are added ([`sums`]): 32 KB of `u16`, a few hundred
    /// features at the default sizes.
    const CELLS: usize = 16_384;

    /// XXH3's multiplier for 4–8-byte inputs, as in [`super::xxh3_u64`].
    const PRIME: i64 = crate::hash::XXH3_PRIME_MX2 as i64;

    /// For each feature `(h, w)` of `list` and each function `k < n` of a block, adds `w`
    /// to `sums[k · 2d + c]`, where `c < 2d` is the function's cell of
    /// [`super::Projector::project_sketch`]: `(c16 · 2d) >> 16` of its 16 bits `c16` of the
    /// group hash `xxh3_u64(h, keys[k / 4])`. The same integer sums as the scalar loop.
    ///
    /// # Safety
    /// The CPU must have AVX-512 F, BW and DQ. `keys` holds the block's
    /// group keys padded with anything to a multiple of 8, at least `n.div_ceil(4)` of
    /// them; `n ≥ 1`, `sums.len() == n · 2d` and `n · 2d ≤ 65,536`, so a cell's index fits
    /// 16 bits.
    #[target_feature(enable = "avx512f,avx512bw,avx512dq")]
    pub(super) unsafe fn sums(
        keys: &[u64],
        n: usize,
        d: usize,
        list: &[(u64, i32)],
        cells: &mut Vec<u16>,
        sums: &mut [i32],
    ) {
        entered(Entry::ProjectionSumsAvx512);
        debug_assert!(keys.len().is_multiple_of(8) && keys.len() * 4 >= n);
        debug_assert!(n > 0 && sums.len() == n * 2 * d && n * 2 * d <= 1 << 16);
        let chunks = n.div_ceil(32);
        let two_d = _mm512_set1_epi16(2 * d as i16);
        let prime = _mm512_set1_epi64(PRIME);
        let eight = _mm512_set1_epi64(8);
        // Lane `j` (16-bit) of chunk `c` is function `32c + j`: its cells start at
        // `(32c + j) · 2d` (mod 2^16 for the padding lanes past `n`, never read).
        let lane = _mm512_set_epi16(
            31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10,
            9, 8, 7, 6, 5, 4, 3, 2, 1, 0,
        );
        let base = _mm512_mullo_epi16(lane, two_d);
        // A batch's cells first, then its additions: a 16-bit load from a 64-byte vector
        // store just made waits for the store to retire (no store-to-load forwarding), so
        // reading each feature's cells right after computing them stalled every feature.
        // Batches of at most `CELLS` cells keep the buffer small whatever the text's length.
        let per_feature = chunks * 32;
        let batch = (CELLS / per_feature).max(1);
        for list in list.chunks(batch) {
            cells.clear();
            cells.resize(list.len() * per_feature, 0);
            for (&(h, _), cells) in list.iter().zip(cells.chunks_exact_mut(per_feature)) {
                // XXH3's input for 8 bytes is `(h >> 32) + (h << 32)`: the halves swapped.
                let input = _mm512_set1_epi64(h.rotate_left(32) as i64);
                for (c, cells) in cells.chunks_exact_mut(32).enumerate() {
                    // SAFETY: `keys` holds `8 · chunks` keys (the padding above).
                    let key = unsafe { _mm512_loadu_si512(keys.as_ptr().add(8 * c).cast()) };
                    let mut v = _mm512_xor_si512(input, key);
                    // v ^= rotl(v, 49) ^ rotl(v, 24): 0x96 is the three-way xor.
                    v = _mm512_ternarylogic_epi64::<0x96>(
                        v,
                        _mm512_rol_epi64::<49>(v),
                        _mm512_rol_epi64::<24>(v),
                    );
                    v = _mm512_mullo_epi64(v, prime);
                    v = _mm512_xor_si512(v, _mm512_add_epi64(_mm512_srli_epi64::<35>(v), eight));
                    v = _mm512_mullo_epi64(v, prime);
                    v = _mm512_xor_si512(v, _mm512_srli_epi64::<28>(v));
                    // Lane `4g + i` (16-bit) of the hashes is function `i` of group `g`'s code.
                    let offset = _mm512_add_epi16(base, _mm512_set1_epi16((32 * c * 2 * d) as i16));
                    let index = _mm512_add_epi16(_mm512_mulhi_epu16(v, two_d), offset);
                    // SAFETY: `cells` is 32 `u16`, 64 bytes.
                    unsafe { _mm512_storeu_si512(cells.as_mut_ptr().cast(), index) };
                }
            }
            for (&(_, w), cells) in list.iter().zip(cells.chunks_exact(per_feature)) {
                for (c, cells) in cells.chunks_exact(32).enumerate() {
                    for &i in &cells[..(n - 32 * c).min(32)] {
                        // SAFETY: a valid lane's cell is `k · 2d + (c16 · 2d >> 16)` with
                        // `k < n` and `c16 < 2^16`, so below `n · 2d = sums.len()`.
                        debug_assert!(usize::from(i) < sums.len());
                        unsafe { *sums.get_unchecked_mut(usize::from(i)) += w };
                    }
                }
            }
        }
    }

    /// `out[k · d + j] = sign(sums[k · 2d + j] − sums[k · 2d + d + j])` for every function
    /// `k` and `j < d`: the signs of [`sums`]' sums, 16 bits at a time.
    ///
    /// # Safety
    /// The CPU must have AVX-512 F, BW and DQ; `d ≥ 1`.
    #[target_feature(enable = "avx512f,avx512bw,avx512dq")]
    pub(super) unsafe fn signs(sums: &[i32], d: usize, out: &mut [i8]) {
        entered(Entry::ProjectionSignsAvx512);
        debug_assert!(d >= 1 && sums.len() == 2 * out.len());
        let (one, minus_one) = (_mm512_set1_epi32(1), _mm512_set1_epi32(-1));
        for (acc, out) in sums.chunks_exact(2 * d).zip(out.chunks_exact_mut(d)) {
            for j in (0..d).step_by(16) {
                let mask: __mmask16 = if d - j >= 16 { !0 } else { (1 << (d - j)) - 1 };
                // SAFETY: the mask keeps every load within `acc[j..d]` and `acc[d + j..2d]`,
                // and the store within `out[j..d]` (masked lanes are not touched).
                unsafe {
                    let plus = _mm512_maskz_loadu_epi32(mask, acc.as_ptr().add(j));
                    let minus = _mm512_maskz_loadu_epi32(mask, acc.as_ptr().add(d + j));
                    let diff = _mm512_sub_epi32(plus, minus);
                    let sign = _mm512_min_epi32(_mm512_max_epi32(diff, minus_one), one);
                    _mm512_mask_cvtepi32_storeu_epi8(out.as_mut_ptr().add(j), mask, sign);
                }
            }
        }
    }
}

/// The portable kernel (the compiler vectorizes the 16-lane loops of [`ternary_sums`]).
fn ternary_functions_body(groups: &[Group], list: &[(u64, f32)], d: usize, out: &mut [i8]) {
    let mut s = [0i8; 32];
    for g in groups {
        if g.paired() || d > 16 {
            signs(&ternary_sums::<2>(list, g.flip), &mut s);
        } else {
            signs(&ternary_sums::<1>(list, g.flip), &mut s);
        }
        place(g, &s, d, out);
    }
}

/// The signs of the sums `acc`, into the first `16 · G` of `out`.
fn signs<const G: usize>(acc: &[[f32; 16]; G], out: &mut [i8; 32]) {
    for (o, &a) in out.iter_mut().zip(acc.iter().flatten()) {
        *o = i8::from(a > 0.0) - i8::from(a < 0.0);
    }
}

/// Copies the signs of a group's hash (coefficients 0–15 from its low 32 bits, 16–31 from
/// the high) to its functions: an unpaired function takes the first d, a pair takes
/// 0..d and 16..16 + d.
fn place(g: &Group, signs: &[i8; 32], d: usize, out: &mut [i8]) {
    let t = g.first;
    out[t * d..(t + 1) * d].copy_from_slice(&signs[..d]);
    if g.paired() {
        out[(t + 1) * d..(t + 2) * d].copy_from_slice(&signs[16..16 + d]);
    }
}

/// One function's sums of `w · c(f, j)` over `list`, 16 coefficients per group: coefficient
/// `j` of group `g` is read from bits `32g + 2j` (+1) and `32g + 2j + 1` (−1) of the hash.
/// `w − w`, `w − 0` and `0 − w` are exactly `w · c` for the table's `c` ∈ {0, +1, −1}, and the
/// additions run in list order, as in [`Projector::project_reference`].
#[inline(always)]
fn ternary_sums<const G: usize>(list: &[(u64, f32)], flip: u64) -> [[f32; 16]; G] {
    let mut acc = [[0.0f32; 16]; G];
    for &(h, w) in list {
        let bits = xxh3_u64(h, flip);
        for (g, acc) in acc.iter_mut().enumerate() {
            let v = (bits >> (32 * g)) as u32;
            for (j, a) in acc.iter_mut().enumerate() {
                let plus = if v & (1 << (2 * j)) != 0 { w } else { 0.0 };
                let minus = if v & (2 << (2 * j)) != 0 { w } else { 0.0 };
                *a += plus - minus;
            }
        }
    }
    acc
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
        let functions: Vec<(u64, Option<Block>)> = (0..t_total)
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
        let mut groups = Vec::new();
        let per_hash = config.functions_per_hash();
        let word_groups = groups_of(&functions, word_range.clone(), per_hash, &mut groups);
        let char_groups = if split {
            groups_of(&functions, char_range.clone(), per_hash, &mut groups)
        } else {
            word_groups.clone()
        };
        let block_keys = [&word_groups, &char_groups].map(|range| {
            let mut keys: Vec<u64> = groups[range.clone()].iter().map(|g| g.flip).collect();
            keys.resize(keys.len().next_multiple_of(8), 0);
            keys
        });
        Ok(Self {
            pipeline,
            config: config.clone(),
            functions,
            word_range,
            char_range,
            groups,
            word_groups,
            char_groups,
            block_keys,
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

    /// Projects `text` into `out` (length [`Projector::dim`]), reusing `scratch`. Returns
    /// the text's feature count (with repeats): 0 means the projection is all zeros and says
    /// nothing about the text.
    ///
    /// # Panics
    /// If `out.len() != self.dim()` (a bug in the caller).
    pub fn project_with(&self, scratch: &mut ProjectScratch, text: &str, out: &mut [i8]) -> usize {
        assert_eq!(out.len(), self.dim(), "projection output length");
        self.collect_features(scratch, text);
        self.project_features(scratch, out);
        scratch.feats.len()
    }

    /// Tokenizes `text` and leaves its features in `scratch.feats`.
    fn collect_features(&self, scratch: &mut ProjectScratch, text: &str) {
        self.pipeline.tokenize_into(text, &mut scratch.tokens);
        let feats = &mut scratch.feats;
        feats.clear();
        self.pipeline
            .for_each_feature_of(&scratch.tokens, &mut scratch.features, |f, _| {
                feats.push((f.hash, f.block))
            });
    }

    /// Projects `text` into a new vector.
    pub fn project(&self, text: &str) -> Vec<i8> {
        let mut out = vec![0i8; self.dim()];
        self.project_with(&mut ProjectScratch::default(), text, &mut out);
        out
    }

    /// Counts `scratch.feats` and applies the hyperplanes.
    fn project_features(&self, scratch: &mut ProjectScratch, out: &mut [i8]) {
        self.count_features(scratch);
        self.project_counted(scratch, out);
    }

    /// Applies the hyperplanes to the counted features in `scratch.weighted`.
    fn project_counted(&self, scratch: &mut ProjectScratch, out: &mut [i8]) {
        match (self.config.scheme, self.config.coefficients) {
            (Scheme::PerFunction, Coefficients::Ternary) => {
                self.project_ternary(Kernel::detect(), scratch, out)
            }
            (Scheme::PerFunction, Coefficients::Binary) => self.project_reference(scratch, out),
            // The kernels' `f32` sums of integer weights are exact while every partial sum
            // is below 2^24, so they give the paired scheme's exact sums too.
            (Scheme::Paired, Coefficients::Ternary)
                if scratch.weighted.iter().map(|w| f64::from(w.2)).sum::<f64>() < 16_777_216.0 =>
            {
                self.project_ternary(Kernel::detect(), scratch, out)
            }
            (Scheme::Paired, _) => self.project_paired_reference(scratch, out),
            (Scheme::Sketch, _) => self.project_sketch(Kernel::detect(), scratch, out),
        }
    }

    /// Counts `scratch.feats` into `scratch.weighted` with their weights: ascending by
    /// (hash, block) for the schemes whose sums are in that order, in order of first
    /// appearance for the sketch, whose integer sums do not depend on it (a hash table
    /// instead of a sort: about a tenth of a prediction's time).
    fn count_features(&self, scratch: &mut ProjectScratch) {
        let ProjectScratch {
            feats,
            weighted,
            slots,
            ..
        } = scratch;
        weighted.clear();
        if self.config.scheme != Scheme::Sketch || !count_in_table(feats, slots, weighted) {
            weighted.clear();
            feats.sort_unstable();
            for &(h, b) in feats.iter() {
                match weighted.last_mut() {
                    Some(last) if last.0 == h && last.1 == b => last.2 += 1.0,
                    _ => weighted.push((h, b, 1.0)),
                }
            }
        }
        match (self.sublinear, self.config.scheme) {
            (false, _) => {}
            // A count of 1, the common case, keeps its weight without a logarithm: exactly
            // `1 + ln 1 = 1`, and `round(8 · (1 + ln 1)) = 8`.
            (true, Scheme::PerFunction) => {
                for w in weighted.iter_mut().filter(|w| w.2 != 1.0) {
                    w.2 = 1.0 + w.2.ln();
                }
            }
            (true, Scheme::Paired | Scheme::Sketch) => {
                for w in weighted.iter_mut() {
                    w.2 = if w.2 == 1.0 {
                        8.0
                    } else {
                        (8.0 * (1.0 + f64::from(w.2).ln())).round() as f32
                    };
                }
            }
        }
    }

    /// Splits `scratch.weighted` into the features the word functions read
    /// (`scratch.word`: all of them when the functions are not split) and those the char
    /// functions read (`scratch.char`). Returns whether the functions are split.
    fn split_blocks(&self, scratch: &mut ProjectScratch) -> bool {
        let ProjectScratch {
            weighted,
            word,
            char,
            ..
        } = scratch;
        let split = self.word_range != self.char_range;
        word.clear();
        char.clear();
        for &(h, b, w) in weighted.iter() {
            if split && b == Block::Char {
                char.push((h, w));
            } else {
                word.push((h, w));
            }
        }
        split
    }

    /// Ternary coefficients, function by function: every function's d sums are the same
    /// `f32` additions in the same order (ascending feature hash) as in
    /// [`Projector::project_reference`], so the signs are identical; only the layout differs
    /// (16 coefficients side by side in vector lanes, decoded with masks, not a table).
    fn project_ternary(&self, kernel: Kernel, scratch: &mut ProjectScratch, out: &mut [i8]) {
        let split = self.split_blocks(scratch);
        let ProjectScratch { word, char, .. } = scratch;
        let d = self.config.bits as usize;
        ternary_functions(kernel, &self.groups[self.word_groups.clone()], word, d, out);
        if split {
            ternary_functions(kernel, &self.groups[self.char_groups.clone()], char, d, out);
        }
    }

    /// The integer-weight schemes by their definitions: exact `i64` sums, feature by feature
    /// and hash by hash. `add(bits, o, w, sums)` adds a feature of weight `w` to the d sums
    /// of function `o` of a group whose hash is `bits`.
    fn project_exact_reference(
        &self,
        scratch: &ProjectScratch,
        out: &mut [i8],
        add: impl Fn(u64, usize, i64, &mut [i64]),
    ) {
        let d = self.config.bits as usize;
        let mut acc = vec![0i64; self.dim()];
        for &(h, b, w) in scratch.weighted.iter() {
            let groups = match b {
                Block::Word => self.word_groups.clone(),
                Block::Char => self.char_groups.clone(),
            };
            for g in &self.groups[groups] {
                let bits = xxh3_u64(h, g.flip);
                for o in 0..g.len {
                    let t = g.first + o;
                    add(bits, o, w as i64, &mut acc[t * d..(t + 1) * d]);
                }
            }
        }
        for (o, a) in out.iter_mut().zip(&acc) {
            *o = a.signum() as i8;
        }
    }

    /// The paired scheme by its definition: function `o` of a pair reads 32 bits of the hash.
    fn project_paired_reference(&self, scratch: &mut ProjectScratch, out: &mut [i8]) {
        let coefficients = self.config.coefficients;
        self.project_exact_reference(scratch, out, |bits, o, w, sums| {
            let v = bits >> (32 * o);
            for (j, a) in sums.iter_mut().enumerate() {
                let c = match coefficients {
                    Coefficients::Ternary => {
                        ((v >> (2 * j)) & 1) as i64 - ((v >> (2 * j + 1)) & 1) as i64
                    }
                    Coefficients::Binary => 2 * ((v >> j) & 1) as i64 - 1,
                };
                *a += w * c;
            }
        });
    }

    /// The sketch scheme ([`Scheme::Sketch`]): for each feature and each function of its
    /// block, the function's 16 bits `c` of the group's hash add `±w` to bit
    /// `((c & 0x7fff) · d) >> 15` of that function, `−` when `c`'s top bit is set. Exact
    /// integer sums, so no order matters: `i32` when the weights cannot overflow it (any text
    /// under tens of millions of features), else
    /// [`Projector::project_sketch_reference`]. The last group of a block may have fewer
    /// than four functions; it computes four and keeps its own.
    fn project_sketch(&self, kernel: Kernel, scratch: &mut ProjectScratch, out: &mut [i8]) {
        let total: f64 = scratch.weighted.iter().map(|w| f64::from(w.2)).sum();
        let d = self.config.bits as usize;
        // `validate` keeps a ternary d ≤ 32; the check keeps the mask below honest anyway.
        if total > f64::from(i32::MAX) || d > 32 {
            return self.project_sketch_reference(scratch, out);
        }
        let split = self.split_blocks(scratch);
        let ProjectScratch {
            word,
            char,
            ints,
            cells,
            sums,
            ..
        } = scratch;
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (kernel, cells, sums);
        let blocks = [
            (
                self.word_groups.clone(),
                &self.word_range,
                &*word,
                &self.block_keys[0],
            ),
            (
                self.char_groups.clone(),
                &self.char_range,
                &*char,
                &self.block_keys[1],
            ),
        ];
        #[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
        for (groups, functions, list, keys) in &blocks[..1 + usize::from(split)] {
            // The weights as integers once, not once per group.
            ints.clear();
            ints.extend(list.iter().map(|&(h, w)| (h, w as i32)));
            #[cfg(target_arch = "x86_64")]
            if kernel == Kernel::Avx512 {
                let (first, n) = (functions.start, functions.len());
                // A block without functions (T = 1, structured) has nothing to sum.
                if n > 0 && n * 2 * d <= usize::from(u16::MAX) + 1 {
                    sums.clear();
                    sums.resize(n * 2 * d, 0);
                    // SAFETY: `Kernel::Avx512` is only chosen when the CPU has AVX-512 F,
                    // BW and DQ; the sizes are the ones `avx512::sums` asks for.
                    unsafe {
                        avx512::sums(keys, n, d, ints, cells, sums);
                        avx512::signs(sums, d, &mut out[first * d..(first + n) * d]);
                    }
                    continue;
                }
            }
            for g in &self.groups[groups.clone()] {
                // Group by group, so the sums stay in a small local array. A function's
                // positive and negative terms go to separate halves: with `c` its 16 bits,
                // `(c · 2d) >> 16` is `j` when the top (sign) bit is clear and `d + j` when
                // it is set, where `j = ((c & 0x7fff) · d) >> 15` is the bit of
                // [`sketch_bit`], since 32,768 · 2d = d · 2^16. One multiply and shift give
                // the bit and the sign, and the sum is `acc[j] − acc[d + j]` (d ≤ 32: the
                // index is masked, which costs nothing and proves it in bounds).
                let mut acc = [[0i32; 64]; SKETCH_FUNCTIONS_PER_HASH];
                for &(h, w) in ints.iter() {
                    let bits = xxh3_u64(h, g.flip);
                    for (i, acc) in acc.iter_mut().enumerate() {
                        let c = usize::from((bits >> (16 * i)) as u16);
                        acc[((c * 2 * d) >> 16) & 63] += w;
                    }
                }
                for (i, acc) in acc.iter().enumerate().take(g.len) {
                    let t = g.first + i;
                    for (j, o) in out[t * d..(t + 1) * d].iter_mut().enumerate() {
                        *o = (acc[j] - acc[d + j]).signum() as i8;
                    }
                }
            }
        }
    }

    /// The sketch scheme by its definition: one `±w` per function.
    fn project_sketch_reference(&self, scratch: &mut ProjectScratch, out: &mut [i8]) {
        let d = self.config.bits as usize;
        self.project_exact_reference(scratch, out, |bits, i, w, sums| {
            let (j, negative) = sketch_bit(bits, i, d);
            sums[j] += if negative { -w } else { w };
        });
    }

    /// The table-driven projection: feature by feature, function by function. The
    /// definition the vector kernels must match, and the path of binary coefficients.
    fn project_reference(&self, scratch: &mut ProjectScratch, out: &mut [i8]) {
        let ProjectScratch { weighted, acc, .. } = scratch;
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

    fn per_function() -> ProjectionConfig {
        ProjectionConfig {
            scheme: Scheme::PerFunction,
            ..ProjectionConfig::default()
        }
    }

    /// What the golden tests pin: the first two functions' 28 values, and (Σ values, number
    /// of zeros) over all of them.
    fn fingerprint(v: &[i8]) -> (&[i8], (i64, usize)) {
        let sum = v.iter().map(|&x| i64::from(x)).sum();
        let zeros = v.iter().filter(|&&x| x == 0).count();
        (&v[..28], (sum, zeros))
    }

    #[test]
    fn projection_is_pinned() {
        let p = projector(&per_function());
        let v = p.project("Thank you so much!");
        assert_eq!(v.len(), 1120);
        // Golden values: a change to the text path, the hash or the coefficients shows here.
        let (head, stats) = fingerprint(&v);
        assert_eq!(head, GOLDEN_HEAD, "first two functions");
        assert_eq!(stats, GOLDEN_STATS);
    }

    const GOLDEN_HEAD: [i8; 28] = [
        1, -1, -1, -1, 0, -1, -1, 1, 1, 1, 1, 0, 1, 1, 1, -1, -1, -1, -1, -1, -1, 0, 1, 1, -1, -1,
        1, 1,
    ];
    // (Σ values, number of zeros) over all 1,120.
    const GOLDEN_STATS: (i64, usize) = (41, 163);

    #[test]
    fn paired_projection_is_pinned() {
        let p = projector(&ProjectionConfig {
            scheme: Scheme::Paired,
            ..ProjectionConfig::default()
        });
        let v = p.project("Thank you so much!");
        let (head, stats) = fingerprint(&v);
        assert_eq!(head, GOLDEN_PAIRED_HEAD, "first two functions: one hash");
        assert_eq!(stats, GOLDEN_PAIRED_STATS);
        // Function 0 reads the low bits of the hash that function 0 of `per-function` reads
        // in full, so with weights in proportion the two agree on it.
        let per = projector(&per_function()).project("Thank you so much!");
        assert_eq!(v[..14], per[..14]);
    }

    // Cross-checked with an independent Python implementation of the scheme (the `xxhash`
    // package's `xxh3_64_intdigest` for the feature and projection hashes).
    const GOLDEN_PAIRED_HEAD: [i8; 28] = [
        1, -1, -1, -1, 0, -1, -1, 1, 1, 1, 1, 0, 1, 1, -1, 1, 1, 1, -1, -1, -1, -1, -1, 1, 0, 1, 1,
        -1,
    ];
    // (Σ values, number of zeros) over all 1,120.
    const GOLDEN_PAIRED_STATS: (i64, usize) = (10, 160);

    #[test]
    fn sketch_projection_is_pinned() {
        let sketch = ProjectionConfig {
            scheme: Scheme::Sketch,
            ..ProjectionConfig::default()
        };
        assert_eq!(
            ProjectionConfig::default().scheme,
            Scheme::Sketch,
            "the default for new models"
        );
        let v = projector(&sketch).project("Thank you so much!");
        let (head, stats) = fingerprint(&v);
        assert_eq!(head, GOLDEN_SKETCH_HEAD, "first two functions");
        assert_eq!(stats, GOLDEN_SKETCH_STATS);
    }

    // Cross-checked with tests/golden/projection/sketch.py, an independent implementation of
    // the scheme on the text's features (the `xxhash` package's XXH3-64).
    const GOLDEN_SKETCH_HEAD: [i8; 28] = [
        0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 1, 1, 0, 1, 1, 0, -1, -1, 0, -1, 1, 0, 0, 1, 0, 0, -1, 0,
    ];
    // (Σ values, number of zeros) over all 1,120: each of the 40 word functions sees 9
    // features on 14 bits, each char function 34, so many bits are 0.
    const GOLDEN_SKETCH_STATS: (i64, usize) = (-31, 501);

    #[test]
    fn sketch_puts_each_feature_on_one_bit_per_function() {
        // Word unigrams only: "ok" is one feature, so every function has exactly one
        // non-zero bit, and "ok ok" (weight round(8 · (1 + ln 2)) instead of 8) the same one.
        let features = FeatureConfig {
            bigrams: false,
            char_min: 0,
            char_max: 0,
            ..FeatureConfig::default()
        };
        let config = ProjectionConfig {
            functions: 7,
            bits: 9,
            scheme: Scheme::Sketch,
            ..ProjectionConfig::default()
        };
        let p = Projector::new(&TextConfig::default(), &features, &config).unwrap();
        let one = p.project("ok");
        for function in one.chunks_exact(9) {
            assert_eq!(function.iter().filter(|&&x| x != 0).count(), 1, "{one:?}");
        }
        assert_eq!(p.project("ok ok"), one);
        // Groups of four functions per hash: 7 functions are a group of 4 and one of 3.
        let shape: Vec<(usize, usize)> = p.groups.iter().map(|g| (g.first, g.len)).collect();
        assert_eq!(shape, [(0, 4), (4, 3)]);
        // Many features reach every bit 0..d (equal weights of opposite signs can still
        // cancel on one bit of one function), with both signs.
        let many = p.project(&(0..200).map(|i| format!("w{i} ")).collect::<String>());
        for j in 0..9 {
            assert!((0..7).any(|t| many[t * 9 + j] != 0), "bit {j}: {many:?}");
        }
        assert!(many.contains(&1) && many.contains(&-1));
    }

    #[test]
    fn the_counting_table_counts_and_gives_up_on_crafted_collisions() {
        let (mut slots, mut weighted) = (Vec::new(), Vec::new());
        // Random hashes, some repeated, in both blocks: the counts a sort would give.
        let mut feats: Vec<(u64, Block)> = (0..500u64)
            .map(|i| {
                let h = mix(i % 170);
                (h, if i % 3 == 0 { Block::Char } else { Block::Word })
            })
            .collect();
        assert!(count_in_table(&feats, &mut slots, &mut weighted));
        let mut counted = weighted.clone();
        counted.sort_by_key(|e| (e.0, e.1));
        feats.sort_unstable();
        let mut sorted: Vec<(u64, Block, f32)> = Vec::new();
        for &(h, b) in &feats {
            match sorted.last_mut() {
                Some(last) if last.0 == h && last.1 == b => last.2 += 1.0,
                _ => sorted.push((h, b, 1.0)),
            }
        }
        assert_eq!(counted, sorted);
        // Hashes that agree on their low 32 bits all land on one slot: the probes run out
        // and the caller sorts instead.
        let crafted: Vec<(u64, Block)> = (1..=2000u64).map(|i| (i << 32, Block::Word)).collect();
        weighted.clear();
        assert!(!count_in_table(&crafted, &mut slots, &mut weighted));
    }

    #[test]
    fn sketch_fast_sums_match_the_reference() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let corpus = std::fs::read_to_string(root.join("corpora/replies/test.jsonl")).unwrap();
        let mut texts: Vec<String> = corpus
            .lines()
            .take(300)
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["text"].as_str().unwrap().to_owned()
            })
            .collect();
        texts.extend([
            "".to_owned(),
            "ok ".repeat(300),
            "🎉 café ﬁne 野口".to_owned(),
            // Thousands of distinct features: several batches of the AVX-512 kernel.
            (0..1500)
                .map(|i| format!("w{i}"))
                .collect::<Vec<_>>()
                .join(" "),
        ]);
        let shapes = [
            (80, 14, true),
            (9, 1, false),
            (5, 32, true),
            (300, 32, false),
            (2100, 16, true),
            // One function: the char block has none.
            (1, 14, true),
            // n · 2d = 65,536 exactly, the AVX-512 kernel's largest block.
            (2048, 32, true),
            (1024, 32, false),
            // Past it: the scalar loop.
            (4096, 32, false),
        ];
        for (functions, bits, structured) in shapes {
            let config = ProjectionConfig {
                functions,
                bits,
                structured,
                scheme: Scheme::Sketch,
                ..ProjectionConfig::default()
            };
            let p = projector(&config);
            let mut s = ProjectScratch::default();
            for text in &texts {
                p.collect_features(&mut s, text);
                p.count_features(&mut s);
                let mut reference = vec![7i8; p.dim()];
                p.project_sketch_reference(&mut s, &mut reference);
                // The AVX-512 kernel when the CPU has it, and the scalar loop, each into a
                // fresh buffer, so that a kernel that skips an output cannot pass.
                for kernel in Kernel::all() {
                    let mut fast = vec![7i8; p.dim()];
                    p.project_sketch(kernel, &mut s, &mut fast);
                    assert_eq!(fast, reference, "{config:?} {text:?} {kernel:?}");
                }
                assert_eq!(p.project(text), reference);
            }
        }
    }

    #[test]
    fn sketch_refuses_binary_coefficients() {
        let bad = ProjectionConfig {
            scheme: Scheme::Sketch,
            coefficients: Coefficients::Binary,
            ..ProjectionConfig::default()
        };
        let err = bad.validate().unwrap_err().to_string();
        assert!(err.contains("coefficients"), "{err}");
    }

    #[test]
    fn headers_without_a_scheme_read_as_per_function() {
        let mut old = serde_json::to_value(ProjectionConfig::default()).unwrap();
        old.as_object_mut().unwrap().remove("scheme");
        // As written before the field existed: all other fields, or none.
        let back: ProjectionConfig = serde_json::from_value(old.clone()).unwrap();
        assert_eq!(back.scheme, Scheme::PerFunction);
        let empty: ProjectionConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(empty.scheme, Scheme::PerFunction);
        let back: ProjectionConfig = serde_json::from_value(old).unwrap();
        assert_eq!(back.scheme, Scheme::PerFunction);
        let paired = ProjectionConfig {
            scheme: Scheme::Paired,
            ..ProjectionConfig::default()
        };
        let json = serde_json::to_value(&paired).unwrap();
        assert_eq!(json["scheme"], "paired");
        // Per-function configs are written without the field, as before it existed.
        let per = serde_json::to_value(per_function()).unwrap();
        assert!(per.get("scheme").is_none(), "{per}");
        assert_eq!(
            serde_json::from_value::<ProjectionConfig>(json).unwrap(),
            paired
        );
    }

    #[test]
    fn paired_groups_stay_within_a_block() {
        let p = projector(&ProjectionConfig {
            functions: 9,
            scheme: Scheme::Paired,
            ..ProjectionConfig::default()
        });
        // Word functions 0..5: (0, 1), (2, 3), 4; char functions 5..9: (5, 6), (7, 8).
        let shape: Vec<(usize, usize)> = p.groups.iter().map(|g| (g.first, g.len)).collect();
        assert_eq!(shape, [(0, 2), (2, 2), (4, 1), (5, 2), (7, 2)]);
        assert_eq!((p.word_groups.clone(), p.char_groups.clone()), (0..3, 3..5));
        let wide = projector(&ProjectionConfig {
            bits: 17,
            scheme: Scheme::Paired,
            ..ProjectionConfig::default()
        });
        assert!(
            wide.groups.iter().all(|g| !g.paired()),
            "34 bits do not fit a half"
        );
    }

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
            scheme: Scheme::Paired,
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

    /// The reference projection and that of every kernel this CPU runs.
    fn all_paths(p: &Projector, text: &str) -> (Vec<i8>, Vec<(Kernel, Vec<i8>)>) {
        let mut s = ProjectScratch::default();
        p.collect_features(&mut s, text);
        p.count_features(&mut s);
        let mut want = vec![0i8; p.dim()];
        match p.config().scheme {
            Scheme::PerFunction => p.project_reference(&mut s, &mut want),
            Scheme::Paired => p.project_paired_reference(&mut s, &mut want),
            Scheme::Sketch => unreachable!("the sketch has no vector kernel"),
        }
        let got = Kernel::all()
            .into_iter()
            .map(|k| {
                let mut out = vec![7i8; p.dim()];
                p.project_ternary(k, &mut s, &mut out);
                (k, out)
            })
            .collect();
        (want, got)
    }

    #[test]
    fn every_scheme_runs_the_kernels_of_the_kernel_it_is_given() {
        // Every kernel gives the same bits (the tests below), so only this record tells a
        // projection that still reaches its vector code from one whose dispatch fell back to
        // the scalar loops. The dense schemes have an AVX2 kernel; the sketch (the default)
        // an AVX-512 one, and the scalar loop on AVX2.
        use crate::network::{take_entered, Entry, Entry::*};
        let text = "turn the kitchen lights off, please";
        let dense = [
            per_function(),
            ProjectionConfig {
                scheme: Scheme::Paired,
                ..ProjectionConfig::default()
            },
        ];
        for config in dense.iter().chain([&ProjectionConfig::default()]) {
            let p = projector(config);
            let mut s = ProjectScratch::default();
            p.collect_features(&mut s, text);
            p.count_features(&mut s);
            for kernel in Kernel::all() {
                take_entered();
                let mut out = vec![0i8; p.dim()];
                let want: &[Entry] = if config.scheme == Scheme::Sketch {
                    p.project_sketch(kernel, &mut s, &mut out);
                    match kernel {
                        Kernel::Avx512 => &[ProjectionSumsAvx512, ProjectionSignsAvx512],
                        Kernel::Avx2 | Kernel::Portable => &[],
                    }
                } else {
                    p.project_ternary(kernel, &mut s, &mut out);
                    match kernel {
                        Kernel::Avx512 | Kernel::Avx2 => &[ProjectionFunctionsAvx2],
                        Kernel::Portable => &[],
                    }
                };
                assert_eq!(take_entered(), want, "{:?} {kernel:?}", config.scheme);
            }
        }
    }

    fn check_paths(p: &Projector, text: &str) {
        let (want, got) = all_paths(p, text);
        for (kernel, got) in got {
            assert_eq!(got, want, "{kernel:?} {:?} {text:?}", p.config());
        }
        assert_eq!(p.project(text), want);
    }

    /// Projectors over the shapes the kernels distinguish: d up to 16 or up to 32, split or
    /// not, sublinear weights or raw counts, both schemes, odd numbers of functions per block.
    fn kernel_projectors() -> Vec<Projector> {
        let mut out = Vec::new();
        for (functions, bits, scheme) in [
            (80, 14, Scheme::PerFunction),
            (3, 1, Scheme::PerFunction),
            (5, 16, Scheme::PerFunction),
            (4, 17, Scheme::PerFunction),
            (7, 32, Scheme::PerFunction),
            (1, 9, Scheme::PerFunction),
            (80, 14, Scheme::Paired),
            (7, 16, Scheme::Paired),
            (3, 17, Scheme::Paired),
            (1, 5, Scheme::Paired),
        ] {
            for structured in [true, false] {
                for sublinear_tf in [true, false] {
                    let features = FeatureConfig {
                        sublinear_tf,
                        skip_bigrams: !structured,
                        ..FeatureConfig::default()
                    };
                    let config = ProjectionConfig {
                        functions,
                        bits,
                        structured,
                        scheme,
                        ..ProjectionConfig::default()
                    };
                    out.push(Projector::new(&TextConfig::default(), &features, &config).unwrap());
                }
            }
        }
        out
    }

    #[test]
    fn kernels_match_the_reference_projection() {
        let long: String = (0..400).map(|i| format!("w{} ", i % 150)).collect();
        let repeated = "ok ".repeat(300);
        let mut texts = vec![
            "".to_owned(),
            "Thank you so much!".to_owned(),
            "the the the theme there".to_owned(),
            "ok ok".to_owned(),
            "🎉 café ﬁne 野口".to_owned(),
            long,
            repeated,
        ];
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let corpus = std::fs::read_to_string(root.join("corpora/replies/test.jsonl")).unwrap();
        texts.extend(corpus.lines().take(300).map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["text"].as_str().unwrap().to_owned()
        }));
        // More than 255 features of weight 1 (byte lanes flushed), and more than `i16::MAX`
        // (the `f32` path even for integer weights).
        texts.push((0..300).map(|i| format!("v{i} ")).collect());
        let huge: String = (0..17_000).map(|i| format!("x{i} ")).collect();
        let projectors = kernel_projectors();
        for p in &projectors {
            for text in &texts {
                check_paths(p, text);
            }
        }
        for p in projectors.iter().filter(|p| p.config().functions == 80) {
            check_paths(p, &huge);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 300, ..proptest::prelude::ProptestConfig::default()
        })]

        #[test]
        fn kernels_match_the_reference_on_random_texts(
            text in "([a-e]{1,4}|[!?.]| ){0,60}",
            which in 0usize..40,
        ) {
            // A small alphabet, so that features repeat and weights are fractional.
            let projectors = kernel_projectors();
            check_paths(&projectors[which], &text);
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

    #[test]
    fn paired_binary_functions_share_a_hash_up_to_32_bits() {
        // Two functions read one 64-bit hash when both fit in a half: d ≤ 32 binary (one bit
        // a coefficient), d ≤ 16 ternary (two bits).
        let paired = |coefficients, bits| {
            projector(&ProjectionConfig {
                functions: 4,
                bits,
                coefficients,
                structured: false,
                scheme: Scheme::Paired,
                ..ProjectionConfig::default()
            })
        };
        let shape = |p: &Projector| {
            p.groups
                .iter()
                .map(|g| (g.first, g.len))
                .collect::<Vec<_>>()
        };
        let pairs = [(0, 2), (2, 2)];
        let singles = [(0, 1), (1, 1), (2, 1), (3, 1)];
        assert_eq!(shape(&paired(Coefficients::Binary, 33)), singles);
        assert_eq!(shape(&paired(Coefficients::Ternary, 16)), pairs);
        assert_eq!(shape(&paired(Coefficients::Ternary, 17)), singles);
        let p = paired(Coefficients::Binary, 32);
        assert_eq!(shape(&p), pairs);
        // By the definition: one feature of weight 1 gives function 0 the low 32 bits of its
        // hash with function 0's key, and function 1 the high 32 (bit set → +1, clear → −1).
        let h = 0x0123_4567_89ab_cdef;
        let mut s = ProjectScratch {
            weighted: vec![(h, Block::Word, 1.0)],
            ..ProjectScratch::default()
        };
        let mut out = vec![0i8; p.dim()];
        p.project_paired_reference(&mut s, &mut out);
        let bits = xxh3_u64(h, p.functions[0].0);
        let want: Vec<i8> = (0..64)
            .map(|j| if bits >> j & 1 == 1 { 1 } else { -1 })
            .collect();
        assert_eq!(out[..64], want);
    }

    #[test]
    fn paired_weights_past_2_pow_24_take_the_exact_path() {
        // The vector kernels sum in f32, exact only below 2^24. Three features a, b, c (in
        // the kernels' ascending hash order) whose coefficients on one output are +1, +1, -1,
        // weighted 2^24, 1, 2^24: the exact sum is 1, but in f32 2^24 + 1 rounds to 2^24 and
        // the sum ends at 0. The guard must send such a text to the exact reference.
        let p = projector(&ProjectionConfig {
            scheme: Scheme::Paired,
            ..ProjectionConfig::default()
        });
        let counted = |weighted| ProjectScratch {
            weighted,
            ..ProjectScratch::default()
        };
        let signs_of = |weighted: Vec<(u64, Block, f32)>| {
            let mut out = vec![0i8; p.dim()];
            p.project_paired_reference(&mut counted(weighted), &mut out);
            out
        };
        // Each hash's own coefficients, as the signs of its projection alone.
        let alone: Vec<Vec<i8>> = (0..8u64)
            .map(|h| signs_of(vec![(h, Block::Word, 1.0)]))
            .collect();
        let (a, b, c, bit) = (0..8usize)
            .flat_map(|a| (a + 1..8).flat_map(move |b| (b + 1..8).map(move |c| (a, b, c))))
            .find_map(|(a, b, c)| {
                (0..p.dim())
                    .find(|&i| alone[a][i] == 1 && alone[b][i] == 1 && alone[c][i] == -1)
                    .map(|i| (a as u64, b as u64, c as u64, i))
            })
            .expect("eight hashes give such a triple");
        let big = 16_777_216.0;
        let weighted = vec![
            (a, Block::Word, big),
            (b, Block::Word, 1.0),
            (c, Block::Word, big),
        ];
        let exact = signs_of(weighted.clone());
        assert_eq!(exact[bit], 1, "the exact sum is 2^24 + 1 - 2^24");
        let mut s = counted(weighted);
        // Without the guard the kernels would be wrong here: the test can tell.
        let mut rounded = vec![0i8; p.dim()];
        p.project_ternary(Kernel::detect(), &mut s, &mut rounded);
        assert_eq!(rounded[bit], 0, "f32 loses the 1");
        let mut out = vec![7i8; p.dim()];
        p.project_counted(&mut s, &mut out);
        assert_eq!(out, exact);
    }

    #[test]
    fn the_counting_table_gives_up_after_a_few_probes_per_feature() {
        // 64 features on one slot take 0 + 1 + … + 63 = 2,016 probes, far past the budget of
        // 8 a feature (+ 64): the table stops rather than going quadratic.
        let crafted: Vec<(u64, Block)> = (1..=64u64).map(|i| (i << 32, Block::Word)).collect();
        let (mut slots, mut weighted) = (Vec::new(), Vec::new());
        assert!(!count_in_table(&crafted, &mut slots, &mut weighted));
        // Eight of them (28 probes) are within it, and counted.
        weighted.clear();
        assert!(count_in_table(&crafted[..8], &mut slots, &mut weighted));
        assert_eq!(weighted.len(), 8);
    }

    #[test]
    fn counted_features_are_sorted_for_the_dense_schemes_and_complete_for_the_sketch() {
        // The dense schemes' `f32` sums run in ascending (hash, block) order, whatever order
        // the pipeline emits the features in.
        let text = "the cat sat on the mat and the dog sat on the cat";
        for scheme in [Scheme::PerFunction, Scheme::Paired] {
            let p = projector(&ProjectionConfig {
                scheme,
                ..ProjectionConfig::default()
            });
            let mut s = ProjectScratch::default();
            p.collect_features(&mut s, text);
            p.count_features(&mut s);
            assert!(s.weighted.len() > 20, "{scheme:?}");
            let keys: Vec<(u64, Block)> = s.weighted.iter().map(|w| (w.0, w.1)).collect();
            assert!(
                keys.is_sorted() && keys.windows(2).all(|k| k[0] != k[1]),
                "{scheme:?}"
            );
        }
        // The sketch counts in its hash table; when crafted hashes exhaust the table's
        // probes it sorts instead, and still counts every feature: 64 features seen twice
        // each, weight round(8 · (1 + ln 2)) = 14 under sublinear TF (the default).
        let p = projector(&ProjectionConfig::default());
        let mut s = ProjectScratch {
            feats: (1..=64u64)
                .flat_map(|i| [(i << 32, Block::Word); 2])
                .collect(),
            ..ProjectScratch::default()
        };
        p.count_features(&mut s);
        assert_eq!(s.weighted.len(), 64);
        assert!(s.weighted.iter().all(|w| w.2 == 14.0), "{:?}", s.weighted);
    }

    #[test]
    fn codes_set_bit_j_for_a_positive_value_j() {
        let p = projector(&ProjectionConfig {
            functions: 3,
            bits: 3,
            ..ProjectionConfig::default()
        });
        let mut codes = vec![99];
        // Both 0 and −1 leave their bit clear.
        p.codes(&[1, -1, 0, 0, 1, 1, -1, -1, 0], &mut codes);
        assert_eq!(codes, [0b001, 0b110, 0]);
    }

    #[test]
    fn kernels_sum_weights_past_the_16_bit_counters_exactly() {
        // One function of one bit whose coefficient is +1 for every listed feature, so its
        // sum is the total weight. Totals past `i16::MAX` would wrap the kernels' 16-bit
        // counters negative; they must take the `f32` path, exact at these sizes.
        let group = one_bit_function(42);
        let mut plus: Vec<u64> = with_code(&group, 1).take(33_000).collect();
        assert_eq!(plus.len(), 33_000);
        plus.sort_unstable();
        // 33,000 features of weight 1 (equal weights count features), and 130 unequal
        // integer weights summing to 33,149.
        let equal: Vec<(u64, f32)> = plus.iter().map(|&h| (h, 1.0)).collect();
        let mut unequal: Vec<(u64, f32)> = plus[..130].iter().map(|&h| (h, 255.0)).collect();
        unequal[0].1 = 254.0;
        assert_every_kernel_sums_positive(&group, &[&equal, &unequal]);
    }

    /// One function of one bit (`d = 1`: a group of one function, its XXH3 seed `seed`).
    fn one_bit_function(seed: u64) -> [Group; 1] {
        [Group {
            flip: xxh3_flip(seed),
            first: 0,
            len: 1,
        }]
    }

    /// The features whose 2-bit code for `group`'s function is `c` (1: coefficient +1,
    /// 2: −1), in `mix` order, among the first 2^20 candidates (about a quarter match). The
    /// bound matters only when the hash is broken (a constant `xxh3_u64` or `mix` matches
    /// none): the callers then get short lists and fail, where an unbounded search would
    /// hang and hold a test thread that the other, failing tests need.
    fn with_code(group: &[Group; 1], c: u64) -> impl Iterator<Item = u64> {
        let flip = group[0].flip;
        (0u64..1 << 20)
            .map(mix)
            .filter(move |&h| xxh3_u64(h, flip) & 3 == c)
    }

    /// Every kernel projects each list onto `group`'s one bit as +1.
    fn assert_every_kernel_sums_positive(group: &[Group], lists: &[&Vec<(u64, f32)>]) {
        for list in lists {
            for kernel in Kernel::all() {
                let mut out = [7i8];
                ternary_functions(kernel, group, list, 1, &mut out);
                assert_eq!(out, [1], "{kernel:?} {} features", list.len());
            }
        }
    }

    #[test]
    fn per_function_binary_coefficients_are_the_hash_bits() {
        // Per-function binary (SimHash) coefficients take the table-driven path only, which
        // no kernel is compared with: check it against the definition. Coefficient j of
        // function t is +1 when bit j of the function's XXH3-64 of the feature is set, else
        // −1, the function's seed being SplitMix64 of (seed, t) (see the module docs).
        let config = ProjectionConfig {
            functions: 3,
            bits: 64,
            coefficients: Coefficients::Binary,
            structured: false,
            scheme: Scheme::PerFunction,
            ..ProjectionConfig::default()
        };
        let p = projector(&config);
        let hashes = [
            0x0123_4567_89ab_cdefu64,
            0xfedc_ba98_7654_3210,
            0x1111_2222_3333_4444,
        ];
        // The first feature seen twice: weight 1 + ln 2 under sublinear TF (the default),
        // so that no sum of ±weights is 0. Unstructured: the char feature counts too.
        let mut s = ProjectScratch {
            feats: vec![
                (hashes[0], Block::Word),
                (hashes[1], Block::Char),
                (hashes[0], Block::Word),
                (hashes[2], Block::Word),
            ],
            ..ProjectScratch::default()
        };
        let mut out = vec![7i8; p.dim()];
        p.project_features(&mut s, &mut out);
        let weights = [1.0 + 2f64.ln(), 1.0, 1.0];
        for t in 0..3 {
            let seed = mix(config.seed ^ mix(t as u64 + 1));
            let bits: Vec<u64> = hashes
                .iter()
                .map(|h| crate::hash::hash_with_seed(&h.to_le_bytes(), seed))
                .collect();
            for j in 0..64 {
                let sum: f64 = bits
                    .iter()
                    .zip(weights)
                    .map(|(b, w)| if b >> j & 1 == 1 { w } else { -w })
                    .sum();
                let want = if sum > 0.0 { 1 } else { -1 };
                assert_eq!(out[t * 64 + j], want, "function {t}, bit {j}");
            }
        }
    }

    #[test]
    fn repeated_features_are_weighted_by_count_or_sublinear_count_per_scheme() {
        // Feature 5 three times, 7 twice, 9 once (in another block). Each weight is checked
        // against the definition: the count; `1 + ln(count)` for per-function under
        // sublinear TF; `round(8 · (1 + ln(count)))` for the integer schemes.
        let feats = [
            (5, Block::Word),
            (9, Block::Char),
            (5, Block::Word),
            (5, Block::Word),
            (7, Block::Word),
            (7, Block::Word),
        ];
        let weights = |scheme, sublinear_tf| {
            let features = FeatureConfig {
                sublinear_tf,
                ..FeatureConfig::default()
            };
            let config = ProjectionConfig {
                scheme,
                ..ProjectionConfig::default()
            };
            let p = Projector::new(&TextConfig::default(), &features, &config).unwrap();
            let mut s = ProjectScratch {
                feats: feats.to_vec(),
                ..ProjectScratch::default()
            };
            p.count_features(&mut s);
            // The sketch keeps first-appearance order.
            s.weighted.sort_by_key(|w| w.0);
            s.weighted
        };
        let e = |h, b, w: f32| (h, b, w);
        for scheme in [Scheme::PerFunction, Scheme::Paired, Scheme::Sketch] {
            let raw = [
                e(5, Block::Word, 3.0),
                e(7, Block::Word, 2.0),
                e(9, Block::Char, 1.0),
            ];
            assert_eq!(weights(scheme, false), raw, "{scheme:?}");
        }
        let log = [
            e(5, Block::Word, 1.0 + 3f32.ln()),
            e(7, Block::Word, 1.0 + 2f32.ln()),
            e(9, Block::Char, 1.0),
        ];
        assert_eq!(weights(Scheme::PerFunction, true), log);
        // 8 · (1 + ln 3) = 16.79 and 8 · (1 + ln 2) = 13.55.
        let int = [
            e(5, Block::Word, 17.0),
            e(7, Block::Word, 14.0),
            e(9, Block::Char, 8.0),
        ];
        for scheme in [Scheme::Paired, Scheme::Sketch] {
            assert_eq!(weights(scheme, true), int, "{scheme:?}");
        }
    }

    #[test]
    fn the_counting_table_stays_half_empty_and_probes_within_its_budget() {
        // 2,000 distinct random hashes: a table at most half full takes about one probe per
        // feature, far within the budget (a table sized to the features alone would be
        // nearly full, and its probe runs long).
        let random: Vec<(u64, Block)> = (0..2000u64).map(|i| (mix(i), Block::Word)).collect();
        let (mut slots, mut weighted) = (Vec::new(), Vec::new());
        assert!(count_in_table(&random, &mut slots, &mut weighted));
        assert_eq!(weighted.len(), 2000);
        assert!(slots.len() >= 4000, "{}", slots.len());
        // 20 features on one slot take 0 + 1 + … + 19 = 190 probes: within the budget of 8
        // a feature plus 64 (224), so they are still counted in the table.
        let crafted: Vec<(u64, Block)> = (1..=20u64).map(|i| (i << 32, Block::Word)).collect();
        weighted.clear();
        assert!(count_in_table(&crafted, &mut slots, &mut weighted));
        assert_eq!(weighted.len(), 20);
    }

    #[test]
    fn kernels_flush_their_byte_counters_before_they_wrap() {
        // One function of one bit. The vector kernels count integer weights in byte lanes,
        // one lane for the +1 codes and one for the −1 codes, flushed into 16-bit sums before
        // a lane could pass 255. Lists whose +1 weight reaches 256 or more before any −1
        // weight: a lane that wrapped would lose it and flip the sign.
        let group = one_bit_function(7);
        let plus: Vec<u64> = with_code(&group, 1).take(256).collect();
        let minus: Vec<u64> = with_code(&group, 2).take(200).collect();
        assert_eq!((plus.len(), minus.len()), (256, 200));
        // Equal weights (counted as features): 256 − 200 > 0.
        let equal: Vec<(u64, f32)> = plus.iter().chain(&minus).map(|&h| (h, 1.0)).collect();
        // Unequal weights: 200 + 200 − 255 > 0, though 400 mod 256 < 255.
        let unequal = vec![(plus[0], 200.0), (plus[1], 200.0), (minus[0], 255.0)];
        assert_every_kernel_sums_positive(&group, &[&equal, &unequal]);
    }

    #[test]
    fn projector_new_refuses_out_of_range_configs() {
        // `Projector::new` checks the config itself: the kernels index by d and T.
        let new = |config: ProjectionConfig| {
            Projector::new(&TextConfig::default(), &FeatureConfig::default(), &config)
        };
        let binary = |scheme, bits| ProjectionConfig {
            bits,
            coefficients: Coefficients::Binary,
            scheme,
            ..ProjectionConfig::default()
        };
        for (bad, field) in [
            (
                ProjectionConfig {
                    functions: 0,
                    ..ProjectionConfig::default()
                },
                "functions",
            ),
            (
                ProjectionConfig {
                    functions: 4097,
                    ..ProjectionConfig::default()
                },
                "functions",
            ),
            (
                ProjectionConfig {
                    bits: 0,
                    ..ProjectionConfig::default()
                },
                "bits",
            ),
            (
                ProjectionConfig {
                    bits: 33,
                    scheme: Scheme::PerFunction,
                    ..ProjectionConfig::default()
                },
                "bits",
            ),
            (binary(Scheme::Paired, 65), "bits"),
            (binary(Scheme::Sketch, 14), "coefficients"),
        ] {
            match new(bad.clone()) {
                Err(Error::InvalidConfig { field: f, .. }) => assert_eq!(f, field, "{bad:?}"),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        // The edges of the ranges are accepted.
        for good in [
            binary(Scheme::PerFunction, 64),
            ProjectionConfig {
                functions: 4096,
                bits: 32,
                ..ProjectionConfig::default()
            },
        ] {
            assert!(new(good.clone()).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn structured_projections_split_only_when_both_blocks_have_features() {
        // With word features only, or char features only, there is nothing to split: every
        // function reads the one block, exactly as without `structured`.
        let only_words = FeatureConfig {
            char_min: 0,
            char_max: 0,
            ..FeatureConfig::default()
        };
        let only_chars = FeatureConfig {
            unigrams: false,
            bigrams: false,
            skip_bigrams: false,
            ..FeatureConfig::default()
        };
        for features in [only_words, only_chars] {
            for scheme in [Scheme::PerFunction, Scheme::Sketch] {
                let new = |structured| {
                    let config = ProjectionConfig {
                        structured,
                        scheme,
                        ..ProjectionConfig::default()
                    };
                    Projector::new(&TextConfig::default(), &features, &config).unwrap()
                };
                let (on, off) = (new(true), new(false));
                let text = "where are you right now my friend";
                let v = on.project(text);
                assert_eq!(v, off.project(text), "{features:?} {scheme:?}");
                // Both halves of the functions see the text.
                let half = on.dim() / 2;
                assert!(v[..half].iter().any(|&x| x != 0), "{features:?}");
                assert!(v[half..].iter().any(|&x| x != 0), "{features:?}");
            }
        }
    }
}
