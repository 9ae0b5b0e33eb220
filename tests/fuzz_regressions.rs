//! Replays the interesting inputs found by fuzzing (`fuzz/`, see the README's developer
//! section) through the same entry points as the fuzz targets, so plain `cargo test` keeps
//! every one of them fixed.

use sprig::fuzzing;

use crate::util::repo;

fn replay(target: &str, run: fn(&[u8])) -> usize {
    let dir = repo("tests/fuzz").join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        run(&bytes);
        n += 1;
    }
    n
}

#[test]
fn graph_file_inputs_are_refused_or_loaded_cleanly() {
    assert!(replay("graph_file", fuzzing::graph_file) > 0);
}

#[test]
fn corpus_inputs_are_read_or_refused_cleanly() {
    assert!(replay("corpus", fuzzing::corpus) > 0);
}

#[test]
fn edge_list_inputs_are_read_or_refused_cleanly() {
    assert!(replay("edges", fuzzing::edges) > 0);
}

#[test]
fn model_file_inputs_are_refused_or_loaded_cleanly() {
    assert!(replay("model_file", fuzzing::model_file) > 0);
}

#[test]
fn labels_file_inputs_are_joined_or_refused_cleanly() {
    assert!(replay("labels_file", fuzzing::labels_file) > 0);
}

#[test]
fn seed_file_inputs_are_applied_or_refused_cleanly() {
    assert!(replay("seed_file", fuzzing::seed_file) > 0);
}
