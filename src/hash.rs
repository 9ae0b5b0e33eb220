//! The fixed hash functions of sprig.
//!
//! Anything that reaches a file (feature buckets, projection coefficients, seed order) is
//! derived from the functions here and nothing else: never from a randomized hasher such as
//! the standard library's `RandomState`, whose output changes between processes.
//!
//! * [`feature_hash`] is **XXH3-64** (the xxHash 0.8 specification, stable since 2020) with the
//!   seed [`FEATURE_SEED`]. The artifact headers name it as [`HASH_NAME`] with that seed.
//! * [`fnv1a64`] is 64-bit FNV-1a; it orders lines for the shared seed-selection protocol of
//!   the benchmarks (the peers' `seeds.py`), so that sprig picks the same seeds.
//!
//! Both are pinned by golden tests below: a change to either is a format change.

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

/// XXH3-64 of `bytes` with an explicit seed (projection functions use their own seeds).
#[inline]
pub fn hash_with_seed(bytes: &[u8], seed: u64) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(bytes, seed)
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
    fn feature_hash_is_pinned() {
        // Golden values: if these change, every stored feature id changes.
        let got: Vec<u64> = ["u\u{1f}hello", "c\u{1f}<he", "b\u{1f}thank\u{1f}you"]
            .iter()
            .map(|s| feature_hash(s.as_bytes()))
            .collect();
        assert_eq!(got, GOLDEN);
    }

    // Cross-checked with Python's `xxhash.xxh3_64_intdigest(s, seed=0x535052494701)`.
    const GOLDEN: [u64; 3] = [
        10744307383297830038,
        6779524310516226450,
        12705729501201718612,
    ];
}
