//! The fixed hash functions of sprig.
//!
//! Every hash that reaches a file (feature buckets, projection coefficients, record
//! fingerprints, training's per-epoch keys) is one of the functions here: never a randomized
//! hasher such as the standard library's `RandomState`, whose output changes between
//! processes. (Training's random draws come from xoshiro256++ seeded by SplitMix64, rand's
//! `Xoshiro256PlusPlus`: a specified generator, not a default that may change; they are not
//! hashes.)
//!
//! * [`feature_hash`] is **XXH3-64** (the xxHash 0.8 specification, stable since 2020) with the
//!   seed [`FEATURE_SEED`]. The artifact headers name it as [`HASH_NAME`] with that seed.
//! * [`fnv1a64`] is 64-bit FNV-1a, the hash the peers' `seeds.py` orders lines by in the
//!   shared seed-selection protocol of the benchmarks. sprig itself selects no seeds (the
//!   benchmarks read the protocol's seed files); it is kept, pinned by reference values, for
//!   a program that must pick seeds the way the protocol does.
//!
//! * [`record_hash`] is XXH3-64 with the seed [`RECORD_SEED`], cut to its low 32 bits: the
//!   fingerprint of a record's raw text that a graph keeps and `sprig propagate` writes beside
//!   each record's labels, so that `sprig train` can tell a labels file of another corpus
//!   (or of an older version of this one) from the right one.
//!
//! All are pinned by golden tests below: a change to any is a format change.

/// Name and version of the feature hash, as recorded in artifact headers.
pub const HASH_NAME: &str = "xxh3-64";

/// Seed of the feature hash. Changing it changes every feature id: bump the format version.
pub const FEATURE_SEED: u64 = 0x5350_5249_4701; // "SPRIG" followed by 1

/// How artifact headers name the feature hash: [`HASH_NAME`] and [`FEATURE_SEED`], e.g.
/// `xxh3-64 seed 0x535052494701`.
pub fn header_name() -> String {
    format!("{HASH_NAME} seed {FEATURE_SEED:#x}")
}

/// XXH3-64 of `bytes` with [`FEATURE_SEED`].
#[inline]
pub fn feature_hash(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(bytes, FEATURE_SEED)
}

/// Bytes 8..56 of XXH3's default secret, as little-endian words: the keys of its 4–8-byte
/// (words 0, 1) and 9–16-byte (words 2–5) paths.
pub(crate) const XXH3_SECRET_8_56: [u64; 6] = [
    0x1cad_21f7_2c81_017c,
    0xdb97_9083_e96d_d4de,
    0x1f67_b3b7_a4a4_4072,
    0x78e5_c0cc_4ee6_79cb,
    0x2172_ffcc_7dd0_5a82,
    0x8e24_43f7_7446_08b8,
];

/// XXH3's multiplier of its 4–8-byte finalizer (`PRIME_MX2`).
pub(crate) const XXH3_PRIME_MX2: u64 = 0x9FB2_1C65_1E98_DF25;

/// XXH3's `rrmxmx` finalizer of a keyed 4–8-byte input of length `len`.
#[inline(always)]
pub(crate) fn xxh3_rrmxmx(keyed: u64, len: u64) -> u64 {
    let mut h = keyed ^ keyed.rotate_left(49) ^ keyed.rotate_left(24);
    h = h.wrapping_mul(XXH3_PRIME_MX2);
    h ^= (h >> 35).wrapping_add(len);
    h = h.wrapping_mul(XXH3_PRIME_MX2);
    h ^ (h >> 28)
}

/// [`feature_hash`] of the first `len` bytes of `packed` (little-endian: byte `i` is bits
/// `8i..8i + 8`), for a feature of at most 16 bytes built in a register.
///
/// The XXH3-64 specification's paths for 4–8 and 9–16 bytes, written over the integer, so
/// that the bytes never go through memory: hashing a buffer just written byte by byte made
/// the hash's wide loads wait for those stores (no store-to-load forwarding), a fifth of a
/// `predict`. Lengths 0–3 take [`feature_hash`]. Bit-identical to it (tested below);
/// `len` must be at most 16.
#[inline]
pub fn feature_hash_packed(packed: u128, len: usize) -> u64 {
    debug_assert!(
        len <= 16,
        "a packed feature holds at most 16 bytes, not {len}"
    );
    const S: [u64; 6] = XXH3_SECRET_8_56;
    const PRIME_MX1: u64 = 0x1656_6791_9E37_79F9;
    let seed = FEATURE_SEED;
    // The 64 bits from byte `at` (zeros past byte 16).
    let word = |at: usize| (packed >> (8 * at)) as u64;
    match len {
        4..=8 => {
            let seed = seed ^ (u64::from((seed as u32).swap_bytes()) << 32);
            let first = word(0) as u32;
            let last = word(len - 4) as u32;
            let keyed =
                (u64::from(last) + (u64::from(first) << 32)) ^ (S[0] ^ S[1]).wrapping_sub(seed);
            xxh3_rrmxmx(keyed, len as u64)
        }
        9..=16 => {
            let lo = word(0) ^ (S[2] ^ S[3]).wrapping_add(seed);
            let hi = word(len - 8) ^ (S[4] ^ S[5]).wrapping_sub(seed);
            let product = u128::from(lo) * u128::from(hi);
            let acc = (len as u64)
                .wrapping_add(lo.swap_bytes())
                .wrapping_add(hi)
                .wrapping_add(product as u64 ^ (product >> 64) as u64);
            // XXH3's avalanche.
            let mut h = acc ^ (acc >> 37);
            h = h.wrapping_mul(PRIME_MX1);
            h ^ (h >> 32)
        }
        _ => feature_hash(&packed.to_le_bytes()[..len.min(16)]),
    }
}

/// XXH3-64 of `bytes` with an explicit seed (projection functions use their own seeds).
#[inline]
pub fn hash_with_seed(bytes: &[u8], seed: u64) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(bytes, seed)
}

/// Seed of [`record_hash`]: its own, so that a text's fingerprint is not also a feature id.
pub const RECORD_SEED: u64 = 0x5350_5249_4752; // "SPRIGR"

/// The fingerprint of a record's raw text (as the corpus reader returns it): the low 32 bits
/// of XXH3-64 with [`RECORD_SEED`]. Thirty-two bits are enough for what it is for: a labels
/// file joined to the wrong corpus mismatches on nearly every line, and a single stale line
/// slips through with probability 2⁻³².
#[inline]
pub fn record_hash(text: &str) -> u32 {
    xxhash_rust::xxh3::xxh3_64_with_seed(text.as_bytes(), RECORD_SEED) as u32
}

/// 64-bit FNV-1a over `bytes` (offset basis 0xcbf29ce484222325, prime 0x100000001b3).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_matches_the_reference_values() {
        // The check values published with the peer baselines.
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn xxh3_matches_the_specification() {
        // The published XXH3-64 value of the empty input with seed 0.
        assert_eq!(hash_with_seed(b"", 0), 0x2d06800538d394c2);
    }

    #[test]
    fn packed_feature_hash_is_the_feature_hash() {
        let mut state = 0x1234_5678_9abc_def0u64;
        for _ in 0..2000 {
            let mut bytes = [0u8; 16];
            for b in &mut bytes {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                *b = (state >> 56) as u8;
            }
            for len in 0..=16 {
                // Bytes past `len` must not matter.
                let mut packed = u128::from_le_bytes(bytes);
                let want = feature_hash(&bytes[..len]);
                assert_eq!(feature_hash_packed(packed, len), want, "{len} {bytes:?}");
                if len < 16 {
                    packed &= (1u128 << (8 * len)) - 1;
                    assert_eq!(feature_hash_packed(packed, len), want, "{len} masked");
                }
            }
        }
        let gram = u128::from_le_bytes(*b"c\x1f<he\0\0\0\0\0\0\0\0\0\0\0");
        assert_eq!(feature_hash_packed(gram, 5), GOLDEN[1]);
    }

    #[test]
    fn feature_hash_is_pinned() {
        // Golden values: if these change, every stored feature id changes.
        let got: Vec<u64> = ["u\u{1f}hello", "c\u{1f}<he", "b\u{1f}thank\u{1f}you"]
            .iter()
            .map(|s| feature_hash(s.as_bytes()))
            .collect();
        assert_eq!(got, GOLDEN);
    }

    #[test]
    fn record_hash_is_pinned() {
        // Golden values: if these change, every labels file's fingerprints go stale.
        // Python: `xxhash.xxh3_64_intdigest(s.encode(), seed=0x535052494752) & 0xffffffff`.
        let got: Vec<u32> = ["", "hello", "on my way 🚗"]
            .iter()
            .map(|s| record_hash(s))
            .collect();
        assert_eq!(got, RECORD_GOLDEN);
    }

    const RECORD_GOLDEN: [u32; 3] = [2154244105, 4017205934, 1217188750];

    // Cross-checked with Python's `xxhash.xxh3_64_intdigest(s, seed=0x535052494701)`.
    const GOLDEN: [u64; 3] = [
        10744307383297830038,
        6779524310516226450,
        12705729501201718612,
    ];
}
