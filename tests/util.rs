//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (where `corpora/` and `graphs/` live).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A file of the repository.
pub fn repo(rel: &str) -> PathBuf {
    root().join(rel)
}

/// Runs the built `sprig` binary with `args` in `dir`.
pub fn sprig(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sprig"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the sprig binary runs")
}

/// Runs the built `sprig` binary with `args` in `dir`, `input` on its standard input.
pub fn sprig_with_stdin(dir: &Path, args: &[&str], input: &[u8]) -> Output {
    use std::io::Write as _;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_sprig"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the sprig binary runs");
    let mut stdin = child.stdin.take().expect("piped");
    // A command that stops early (an error) closes its end: the rest is not wanted.
    let _ = stdin.write_all(input);
    drop(stdin);
    child.wait_with_output().expect("the sprig binary ends")
}

/// `train` flags for a fast run (one epoch, no augmented copies), for tests of what train
/// accepts and reports rather than of what it learns.
pub const QUICK_TRAIN: [&str; 4] = ["--epochs", "1", "--augment", "0"];

/// A run that must succeed, or the test fails with its stderr.
fn succeeded(dir: &Path, args: &[&str]) -> Output {
    let out = sprig(dir, args);
    assert!(
        out.status.success(),
        "sprig {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// stdout of a run that must succeed.
pub fn ok(dir: &Path, args: &[&str]) -> String {
    String::from_utf8(succeeded(dir, args).stdout).expect("UTF-8 stdout")
}

/// stderr of a run that must succeed (its notes and warnings).
pub fn ok_stderr(dir: &Path, args: &[&str]) -> String {
    String::from_utf8(succeeded(dir, args).stderr).expect("UTF-8 stderr")
}

/// stderr of a run that must fail with exit code 2 and one line.
pub fn fails(dir: &Path, args: &[&str]) -> String {
    let out = sprig(dir, args);
    assert_eq!(
        out.status.code(),
        Some(2),
        "sprig {args:?} should fail with 2; stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8(out.stderr).expect("UTF-8 stderr");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    err
}

/// Builds the tiny corpus (`corpora/tiny/intents.jsonl`) into `dir/out` with the default,
/// quiet `sprig graph`; returns the corpus's path for the commands that read it too.
pub fn tiny_graph(dir: &Path, out: &str) -> String {
    let corpus = repo("corpora/tiny/intents.jsonl").display().to_string();
    ok(dir, &["graph", "-q", "--corpus", &corpus, "--out", out]);
    corpus
}

/// Builds `graphs/toy` (edges and seeds) into `dir/out` with `sprig graph`; returns the
/// edge-list and seed-file paths for commands that rebuild it.
pub fn toy_graph(dir: &Path, out: &str) -> (String, String) {
    let edges = repo("graphs/toy/edges.tsv").display().to_string();
    let seeds = repo("graphs/toy/seeds.tsv").display().to_string();
    ok(
        dir,
        &[
            "graph", "-q", "--edges", &edges, "--seeds", &seeds, "--out", out,
        ],
    );
    (edges, seeds)
}

/// Builds `dir/edges.tsv` with `dir/seeds.tsv` (as they are at the time) into `dir/g.graph`.
pub fn edges_graph(dir: &Path) {
    let args = [
        "graph",
        "--edges",
        "edges.tsv",
        "--seeds",
        "seeds.tsv",
        "--out",
        "g.graph",
    ];
    ok(dir, &args);
}
