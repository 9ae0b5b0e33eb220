//! Killed runs never leave a truncated artifact under a final name, and a rerun completes.
//!
//! Real `sprig graph`, `sprig propagate` and `sprig train` processes are stopped with SIGKILL or SIGINT at
//! pseudo-random moments (a fixed-seed generator, so a failure reproduces). After each kill
//! the output path either does not exist or holds a complete artifact identical to an
//! uninterrupted run's, or, for `train` stopped by SIGINT during its epochs, a complete model
//! that says it was stopped. After SIGKILL, leftover hidden temporary files (`.NAME.*.tmp`)
//! are allowed: a killed process cannot remove them, and they never carry a final name.
//! After SIGINT or SIGTERM there are none: the handler deletes them.

use std::io::BufRead as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::ok;

/// A synthetic corpus of short texts big enough that building its graph takes a while.
fn write_corpus(path: &Path, n: usize) {
    let words = [
        "ok", "sure", "thanks", "sorry", "late", "call", "me", "when", "where", "are", "you",
        "see", "soon", "lol", "love", "great", "news", "on", "my", "way", "home", "now", "?", "!",
    ];
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut out = String::new();
    for i in 0..n {
        let len = 2 + (next() % 7) as usize;
        let text: Vec<&str> = (0..len)
            .map(|_| words[(next() % words.len() as u64) as usize])
            .collect();
        let label = if i % 500 == 0 {
            format!(",\"label\":\"l{}\"", (i / 500) % 5)
        } else {
            String::new()
        };
        out.push_str(&format!("{{\"text\":\"{} {i}\"{label}}}\n", text.join(" ")));
    }
    std::fs::write(path, out).unwrap();
}

/// Returns true if the process was stopped before it finished.
fn run_and_kill(dir: &Path, args: &[&str], after: Duration, interrupt: bool) -> bool {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sprig"))
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while start.elapsed() < after {
        if child.try_wait().unwrap().is_some() {
            return false; // finished before the kill
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    if interrupt {
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
    } else {
        let _ = child.kill();
    }
    let status = child.wait().unwrap();
    assert_ne!(status.code(), Some(101), "{args:?} panicked");
    // A process that finished between the last poll and the signal counts as finished.
    !status.success()
}

/// The hidden temporary files (`.NAME.*.tmp`) in `dir`, sorted.
fn temporaries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') && n.ends_with(".tmp"))
        .collect();
    names.sort();
    names
}

/// The three stages' command lines, with their inputs and output named.
fn graph_args(out: &str) -> Vec<&str> {
    vec!["graph", "--corpus", "c.jsonl", "--out", out, "-q"]
}

fn propagate_args<'a>(graph: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "propagate",
        "--graph",
        graph,
        "--iterations",
        "60",
        "--tolerance",
        "0",
        "--out",
        out,
        "-q",
    ]
}

fn train_args<'a>(labels: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "train", "--corpus", "c.jsonl", "--labels", labels, "--epochs", "3", "--out", out, "-q",
    ]
}

/// Runs `args` to completion in `dir` and returns how long it took.
fn timed(dir: &Path, args: &[&str]) -> Duration {
    let t = Instant::now();
    ok(dir, args);
    t.elapsed()
}

#[test]
fn killed_runs_leave_no_truncated_artifacts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_corpus(&d.join("c.jsonl"), 6_000);
    // Reference outputs from uninterrupted runs, and how long they take.
    let graph_time = timed(d, &graph_args("ref.graph"));
    let propagate_time = timed(d, &propagate_args("ref.graph", "ref.jsonl"));
    let train_time = timed(d, &train_args("ref.jsonl", "ref.sprig"));
    let ref_model = std::fs::read(d.join("ref.sprig")).unwrap();
    let ref_graph = std::fs::read(d.join("ref.graph")).unwrap();
    let ref_labels = std::fs::read(d.join("ref.jsonl")).unwrap();

    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut kills = 0;
    // The delays are fractions of the reference runs' times, which a loaded machine (other
    // tests run beside this one) makes unreliable: a command whose run ended before its kill
    // gets shorter delays from then on, and the rounds go on until enough kills landed.
    let mut scale = [1.1f64; 3];
    let mut round = 0;
    while kills < 15 && round < 80 {
        round += 1;
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let fraction = (rng >> 33) as f64 / (1u64 << 31) as f64; // in [0, 1)
        let interrupt = round % 4 == 3;
        let kind = round % 3;
        let (args, total, out, reference): (Vec<&str>, Duration, &str, &[u8]) = match kind {
            2 => (
                train_args("ref.jsonl", "m.sprig"),
                train_time,
                "m.sprig",
                &ref_model,
            ),
            0 => (graph_args("g.graph"), graph_time, "g.graph", &ref_graph),
            _ => (
                propagate_args("ref.graph", "l.jsonl"),
                propagate_time,
                "l.jsonl",
                &ref_labels,
            ),
        };
        let _ = std::fs::remove_file(d.join(out));
        let before = temporaries(d);
        if run_and_kill(d, &args, total.mul_f64(scale[kind] * fraction), interrupt) {
            kills += 1;
        } else {
            scale[kind] *= 0.7;
        }
        if interrupt {
            // An interrupt is handled: the temporary of a write in progress is deleted.
            assert_eq!(
                temporaries(d),
                before,
                "round {round}: SIGINT left a temporary"
            );
        }
        if let Ok(bytes) = std::fs::read(d.join(out)) {
            // The first interrupt during `train`'s epochs writes the best epoch so far.
            let stopped = || {
                let model = sprig::ProjectionModel::load(d.join(out)).unwrap();
                model.train_report()["stopped"] == true
            };
            assert!(
                bytes == reference || (kind == 2 && interrupt && stopped()),
                "round {round}: {out} exists but differs from a full run"
            );
        }
    }
    assert!(
        kills >= 15,
        "only {kills} of {round} runs were stopped mid-way: the test lost its teeth"
    );
    // Reruns complete and give the reference bytes.
    ok(d, &graph_args("g.graph"));
    assert!(std::fs::read(d.join("g.graph")).unwrap() == ref_graph);
    ok(d, &propagate_args("g.graph", "l.jsonl"));
    assert!(std::fs::read(d.join("l.jsonl")).unwrap() == ref_labels);
    ok(d, &train_args("l.jsonl", "m.sprig"));
    assert!(std::fs::read(d.join("m.sprig")).unwrap() == ref_model);
}

#[test]
fn an_interrupt_during_a_write_deletes_its_temporary() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_corpus(&d.join("c.jsonl"), 6_000);
    ok(d, &graph_args("g.graph"));
    // Signal the moment the output's temporary appears: the write is in progress.
    let mut caught = 0;
    for signal in ["-INT", "-TERM"].iter().cycle().take(12) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sprig"))
            .args(propagate_args("g.graph", "l.jsonl"))
            .current_dir(d)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        while child.try_wait().unwrap().is_none() {
            if !temporaries(d).is_empty() {
                let pid = child.id().to_string();
                let _ = Command::new("kill").args([*signal, pid.as_str()]).status();
                break;
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        let status = child.wait().unwrap();
        if status.code() == Some(130) {
            caught += 1;
        }
        assert!(
            temporaries(d).is_empty(),
            "{signal} left {:?}",
            temporaries(d)
        );
        let _ = std::fs::remove_file(d.join("l.jsonl"));
    }
    assert!(
        caught >= 3,
        "only {caught} of 12 signals arrived during a write"
    );
}

/// The first Ctrl-C during `train`'s epochs stops training after the epoch and writes the
/// model of the best epoch so far, and the exit code still says the run was interrupted.
#[test]
fn an_interrupt_during_training_writes_the_model_so_far() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_corpus(&d.join("c.jsonl"), 2_000);
    // Hundreds of epochs: far more than the interrupt leaves time for.
    let mut child = Command::new(env!("CARGO_BIN_EXE_sprig"))
        .args(["train", "--corpus", "c.jsonl", "--epochs", "500"])
        .args(["--patience", "500", "--out", "m.sprig"])
        .current_dir(d)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in stderr.by_ref() {
        let line = line.unwrap();
        let second_epoch = line.starts_with("epoch   2:");
        seen.push(line);
        if second_epoch {
            let pid = child.id().to_string();
            assert!(Command::new("kill")
                .args(["-INT", pid.as_str()])
                .status()
                .unwrap()
                .success());
            break;
        }
    }
    seen.extend(stderr.map(Result::unwrap));
    let status = child.wait().unwrap();
    let log = seen.join("\n");
    assert_eq!(status.code(), Some(130), "{log}");
    assert!(log.contains("interrupted"), "{log}");
    let model = sprig::ProjectionModel::load(d.join("m.sprig")).unwrap();
    let report = model.train_report();
    assert_eq!(report["stopped"], true);
    let run = report["epochs_run"].as_u64().unwrap();
    assert!((2..500).contains(&run), "{run} epochs");
    // Nothing is held out here, so the last epoch is the best.
    assert_eq!(report["best_epoch"].as_u64(), Some(run));
    assert!(!model.predict("thanks see you soon").is_empty());
    assert!(temporaries(d).is_empty());
    let shown = ok(d, &["inspect", "m.sprig"]);
    assert!(
        shown.contains(&format!("best {run} of {run} (training was interrupted)")),
        "{shown}"
    );
}
