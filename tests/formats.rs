//! Graph files: round trip, and each kind of damage refused with its own error.

use std::path::Path;

use sprig::build::{build_from_corpus, BuildConfig};
use sprig::graph::Graph;
use sprig::Error;

use crate::util::repo;

fn tiny_graph() -> Graph {
    build_from_corpus(
        &repo("corpora/tiny/intents.jsonl"),
        &BuildConfig::default(),
        &(),
    )
    .unwrap()
    .graph
}

fn load_bytes(bytes: &[u8]) -> Result<Graph, Error> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.graph");
    std::fs::write(&path, bytes).unwrap();
    Graph::load(&path)
}

/// Rebuilds a file around an edited header, with a valid CRC.
fn with_header(bytes: &[u8], edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let hl = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[16..16 + hl]).unwrap();
    let data_start = (16 + hl).div_ceil(8) * 8;
    let data = &bytes[data_start..bytes.len() - 4];
    edit(&mut header);
    let h = serde_json::to_vec(&header).unwrap();
    let mut out = bytes[..12].to_vec();
    out.extend_from_slice(&(h.len() as u32).to_le_bytes());
    out.extend_from_slice(&h);
    while !out.len().is_multiple_of(8) {
        out.push(0);
    }
    out.extend_from_slice(data);
    let crc = crc32(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    // The IEEE CRC32, bit by bit: independent of the crate the library uses.
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn saves_and_loads_identically() {
    let g = tiny_graph();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.graph");
    g.save(&path).unwrap();
    assert_eq!(Graph::load(&path).unwrap(), g);
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[..8], b"SPRIGGRF");
    assert_eq!(
        crc32(&bytes[..bytes.len() - 4]).to_le_bytes(),
        bytes[bytes.len() - 4..]
    );
}

#[test]
fn each_kind_of_damage_has_its_own_error() {
    let good = tiny_graph().to_bytes();
    assert!(load_bytes(&good).is_ok());

    let truncated = load_bytes(&good[..good.len() / 2]).unwrap_err();
    assert!(matches!(truncated, Error::Truncated { .. }), "{truncated}");

    let mut flipped = good.clone();
    let at = good.len() - 40;
    flipped[at] ^= 0x01;
    let e = load_bytes(&flipped).unwrap_err();
    assert!(matches!(e, Error::ChecksumMismatch { .. }), "{e}");
    assert!(e.to_string().contains("damaged"));

    let mut magic = good.clone();
    magic[..8].copy_from_slice(b"SPRIGMDL");
    let e = load_bytes(&magic).unwrap_err();
    assert!(matches!(e, Error::BadMagic { .. }), "{e}");
    assert!(e.to_string().contains("not a sprig graph file"));

    let mut future = good.clone();
    future[8..12].copy_from_slice(&99u32.to_le_bytes());
    let e = load_bytes(&future).unwrap_err();
    assert!(
        matches!(
            e,
            Error::UnsupportedVersion {
                found: 99,
                newest: 1,
                ..
            }
        ),
        "{e}"
    );

    let past_end = with_header(&good, |h| {
        h["sections"][1]["offset"] = serde_json::json!(1u64 << 40);
    });
    let e = load_bytes(&past_end).unwrap_err();
    match &e {
        Error::Truncated { what, .. } => assert!(what.contains("neighbors"), "{e}"),
        other => panic!("expected Truncated, got {other}"),
    }

    let bad_index = with_header(&good, |h| {
        h["counts"]["text_nodes"] = serde_json::json!(0);
    });
    let e = load_bytes(&bad_index).unwrap_err();
    assert!(matches!(e, Error::Corrupt { .. }), "{e}");
    // The counts `inspect` prints are the sections' or the file is refused.
    for count in ["nodes", "edges", "records", "seeds"] {
        let wrong = with_header(&good, |h| {
            let c = &mut h["counts"][count];
            *c = serde_json::json!(c.as_u64().unwrap() + 5);
        });
        let e = load_bytes(&wrong).unwrap_err();
        assert!(
            e.to_string().contains("header: its counts (GraphCounts {"),
            "{count}: {e}"
        );
    }
}

#[test]
fn a_missing_file_names_its_path() {
    let e = Graph::load(Path::new("/nonexistent/x.graph")).unwrap_err();
    assert!(e.to_string().starts_with("/nonexistent/x.graph: "), "{e}");
}
