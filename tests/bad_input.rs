//! The adversarial input matrix: every reader meets empty, blank, broken, odd and extreme
//! files, and answers with a precise error (exit 2, one line naming file, line and field) or a
//! documented behaviour. Never a panic (exit 101), never NaN in an output, and a failed command
//! leaves no output file behind.

use std::path::Path;
use std::process::Output;

use crate::util::sprig;

/// Runs `args` in a fresh folder holding `files`; returns the folder and the output.
fn run(files: &[(&str, Vec<u8>)], args: &[&str]) -> (tempfile::TempDir, Output) {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    let out = sprig(dir.path(), args);
    assert_ne!(
        out.status.code(),
        Some(101),
        "panic on {args:?}: {}",
        stderr(&out)
    );
    (dir, out)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts a failure with `needle` in its one-line message and no output file left.
fn refused(files: &[(&str, Vec<u8>)], args: &[&str], needle: &str) {
    let (dir, out) = run(files, args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{args:?} should fail: {err}");
    assert!(
        err.contains(needle),
        "{args:?}: expected {needle:?} in {err:?}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for n in &names {
        assert!(
            files.iter().any(|(f, _)| f == n),
            "{args:?} left {n} behind (files: {names:?})"
        );
    }
}

/// Asserts success and returns the folder (for reading outputs).
fn accepted(files: &[(&str, Vec<u8>)], args: &[&str]) -> (tempfile::TempDir, String) {
    let (dir, out) = run(files, args);
    assert!(out.status.success(), "{args:?} failed: {}", stderr(&out));
    (dir, stdout(&out) + &stderr(&out))
}

/// Runs a command that succeeds and prints one JSON object: the object and the stderr.
fn json_of(files: &[(&str, Vec<u8>)], args: &[&str]) -> (serde_json::Value, String) {
    let (_dir, out) = run(files, args);
    assert!(out.status.success(), "{args:?} failed: {}", stderr(&out));
    (serde_json::from_str(&stdout(&out)).unwrap(), stderr(&out))
}

fn file(name: &str, contents: &str) -> (&'static str, Vec<u8>) {
    (
        Box::leak(name.to_owned().into_boxed_str()),
        contents.as_bytes().to_vec(),
    )
}

fn bytes(name: &str, contents: &[u8]) -> (&'static str, Vec<u8>) {
    (
        Box::leak(name.to_owned().into_boxed_str()),
        contents.to_vec(),
    )
}

const GRAPH: [&str; 4] = ["graph", "--corpus", "c", "--out"];

fn graph_args(corpus: &str) -> Vec<&str> {
    let mut a = GRAPH.to_vec();
    a[2] = corpus;
    a.push("out.graph");
    a
}

fn no_nan(dir: &Path, name: &str) {
    let text = std::fs::read_to_string(dir.join(name)).unwrap();
    for bad in ["NaN", "nan", "inf"] {
        assert!(!text.contains(bad), "{name} holds {bad}: {text}");
    }
}

#[test]
fn empty_and_blank_corpora_are_refused_in_every_format() {
    for name in ["c.jsonl", "c.txt", "c.csv", "c.tsv"] {
        refused(&[file(name, "")], &graph_args(name), "holds no record");
    }
    refused(
        &[file("c.jsonl", "\n \n\t\n")],
        &graph_args("c.jsonl"),
        "holds no record",
    );
    refused(
        &[file("c.txt", "\r\n\r\n")],
        &graph_args("c.txt"),
        "holds no record",
    );
    refused(
        &[file("c.csv", "text,label\n")],
        &graph_args("c.csv"),
        "holds no record",
    );
    // Texts that normalize to nothing are errors naming the line.
    refused(
        &[file(
            "c.jsonl",
            "{\"text\":\"ok\"}\n{\"text\":\"\\u0007 \"}\n",
        )],
        &graph_args("c.jsonl"),
        "c.jsonl:2: field \"text\": text is empty after normalization",
    );
}

#[test]
fn broken_bytes_are_refused_with_their_line() {
    refused(
        &[bytes(
            "c.jsonl",
            b"{\"text\":\"ok\"}\n{\"text\":\"\xff\xfe\"}\n",
        )],
        &graph_args("c.jsonl"),
        "c.jsonl:2: invalid UTF-8",
    );
    refused(
        &[bytes("c.txt", b"ok\nbad \xc3\x28 byte\n")],
        &graph_args("c.txt"),
        "c.txt:2: invalid UTF-8",
    );
    refused(
        &[bytes("c.csv", b"text\nok\n\xff\n")],
        &graph_args("c.csv"),
        "c.csv:3: field \"text\": invalid UTF-8",
    );
    refused(
        &[bytes("c.jsonl", b"{\"text\":\"a\\u0000b\"}\n")],
        &graph_args("c.jsonl"),
        "c.jsonl:1: field \"text\": contains a NUL character",
    );
    refused(
        &[bytes("c.txt", b"a\0b\n")],
        &graph_args("c.txt"),
        "c.txt:1: field \"text\": contains a NUL",
    );
}

#[test]
fn bom_and_crlf_are_read_as_plain_text() {
    let lf = "{\"text\":\"hello there\",\"label\":\"hi\"}\n{\"text\":\"hello you\"}\n";
    let crlf_bom = format!("\u{feff}{}", lf.replace('\n', "\r\n"));
    let (dir, _) = accepted(
        &[file("lf.jsonl", lf), file("crlf.jsonl", &crlf_bom)],
        &["graph", "--corpus", "lf.jsonl", "--out", "lf.graph", "-q"],
    );
    let out = sprig(
        dir.path(),
        &[
            "graph",
            "--corpus",
            "crlf.jsonl",
            "--out",
            "crlf.graph",
            "-q",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let a = sprig(dir.path(), &["inspect", "lf.graph", "--edges"]).stdout;
    let b = sprig(dir.path(), &["inspect", "crlf.graph", "--edges"]).stdout;
    assert!(!a.is_empty());
    assert_eq!(a, b, "a BOM and CRLF change nothing");
    let csv = "\u{feff}text,label\r\n\"hello, there\",hi\r\nhello you,\r\n";
    let (_, summary) = accepted(
        &[file("c.csv", csv)],
        &["graph", "--corpus", "c.csv", "--out", "g.graph"],
    );
    assert!(
        summary.contains("2 records") && summary.contains("1 seed node over 1 label"),
        "{summary}"
    );
}

#[test]
fn malformed_and_mistyped_json_names_line_and_field() {
    let cases = [
        ("{\"text\": \"a\"\n", "c.jsonl:1: malformed JSON"),
        (
            "[\"a\"]\n",
            "c.jsonl:1: expected a JSON object, found an array",
        ),
        (
            "{\"text\": 7}\n",
            "c.jsonl:1: field \"text\": expected a string, found a number",
        ),
        (
            "{\"text\": null}\n",
            "c.jsonl:1: field \"text\": expected a string, found null",
        ),
        ("{\"txt\": \"a\"}\n", "c.jsonl:1: missing field \"text\""),
        // A JSON map keeps the last copy of a key: a read field twice is refused instead.
        (
            "{\"text\": \"a\", \"label\": \"x\", \"label\": null}\n",
            "c.jsonl:1: unexpected JSON at column 35: field \"label\" appears twice",
        ),
        // The first line of a pretty-printed array of records.
        (
            "[ {\"text\": \"a\"},\n  {\"text\": \"b\"} ]\n",
            "c.jsonl:1: expected a JSON object, found an array (JSON Lines hold one object per line",
        ),
        (
            "{\"text\": \"a\", \"label\": [\"x\"]}\n",
            "c.jsonl:1: field \"label\": expected a string or an integer",
        ),
        (
            "{\"text\": \"a\", \"label\": \"\"}\n",
            "c.jsonl:1: field \"label\": empty label",
        ),
        (
            "{\"text\": \"a\", \"id\": true}\n",
            "c.jsonl:1: field \"id\": expected a string or a number",
        ),
        // Floating point would rewrite it (`1e2` as `100.0`) or merge two ids past 2^64.
        (
            "{\"text\": \"a\", \"id\": 1e2}\n",
            "c.jsonl:1: field \"id\": the number 100.0 is not an integer of at most 64 bits",
        ),
        (
            "{\"text\": \"a\", \"id\": 123456789012345678901234}\n",
            "write it as a string",
        ),
        (
            "{\"id\": 7, \"text\": \"a\"}\n{\"id\": \"7\", \"text\": \"b\"}\n",
            "c.jsonl:2: field \"id\": duplicate id \"7\" (first at line 1)",
        ),
        (
            "{\"id\": 1, \"text\": \"a\"}\n{\"id\": 1, \"text\": \"b\"}\n",
            "c.jsonl:2: field \"id\": duplicate id 1 (first at line 1)",
        ),
    ];
    for (contents, needle) in cases {
        refused(&[file("c.jsonl", contents)], &graph_args("c.jsonl"), needle);
    }
    refused(
        &[file("c.csv", "text,label\na,b,c\n")],
        &graph_args("c.csv"),
        "c.csv:2: row has 3 fields",
    );
    refused(
        &[file("c.csv", "body\nhello\n")],
        &graph_args("c.csv"),
        "c.csv:1: header row has no \"text\" column",
    );
    refused(
        &[file("c.txt", "__label__ hi\n")],
        &graph_args("c.txt"),
        "c.txt:1: empty __label__ prefix",
    );
}

/// A JSON Lines record of exactly `bytes` bytes (line end excluded), its text words.
fn record_of(bytes: usize) -> String {
    let (open, close) = ("{\"text\":\"", "\"}");
    let words = ["alpha", "beta", "gamma", "delta", "omega"];
    let mut text = String::with_capacity(bytes);
    let mut i = 0usize;
    while text.len() < bytes {
        text.push_str(words[i % words.len()]);
        text.push(' ');
        i = i.wrapping_mul(31).wrapping_add(7);
    }
    text.truncate(bytes - open.len() - close.len());
    format!("{open}{text}{close}")
}

#[test]
fn a_line_past_one_mebibyte_is_refused_or_skipped_and_one_within_it_is_read() {
    const MIB: usize = 1 << 20;
    let seed = "{\"text\":\"alpha beta\",\"label\":\"x\"}";
    // The cap counts the line's bytes without its line end (CRLF here).
    let corpus = format!("{}\r\n{}\r\n{seed}\r\n", record_of(MIB), record_of(MIB + 1));
    let files = [file("c.jsonl", &corpus)];
    let graph = [
        "graph",
        "--corpus",
        "c.jsonl",
        "--features",
        "u,b",
        "--out",
        "g.graph",
    ];
    let too_long = "c.jsonl:2: line longer than 1 MiB";
    refused(&files, &graph, too_long);
    let (_, log) = accepted(&files, &[&graph[..], &["--skip-invalid"]].concat());
    assert!(log.contains("2 records, 2 nodes"), "{log}");
    assert!(
        log.contains(&format!("skipped 1 invalid record; the first: {too_long}")),
        "{log}"
    );
    // A CSV record past the cap: refused by its line, --skip-invalid or not (where it ends
    // is unknown: most often a quote that never closes). The cap is the same as a line's:
    // one byte over is refused, a record of exactly 1 MiB read.
    let csv_graph = ["graph", "--corpus", "c.csv", "--out", "g.graph"];
    for (csv, line) in [
        (format!("text,label\nhi,x\n\"{}\n", "a".repeat(2 * MIB)), 3),
        (format!("text,label\nhi,x\n{},\nok,y\n", "a".repeat(MIB)), 3),
        (
            format!("text,label\nhi,x\n\"a\nb{}\",y\n", "a".repeat(MIB - 5)),
            3,
        ),
    ] {
        for extra in [&[][..], &["--skip-invalid"]] {
            refused(
                &[file("c.csv", &csv)],
                &[&csv_graph[..], extra].concat(),
                &format!("c.csv:{line}: a record longer than 1 MiB"),
            );
        }
    }
    let exact = format!("text,label\nhi,x\n{},\nok,y\n", "a".repeat(MIB - 1));
    let (_, log) = accepted(&[file("c.csv", &exact)], &csv_graph);
    assert!(log.contains("3 records"), "{log}");
    // predict: an error naming the line, or an abstention with --skip-invalid.
    let model = crate::util::repo("tests/fixtures/v1/tiny.sprig");
    let input = format!("hello there\n{}\nthank you\n", "x".repeat(2 * MIB));
    let predict = |extra: &[&str]| {
        let args = [&["predict", "--model", model.to_str().unwrap()], extra].concat();
        crate::util::sprig_with_stdin(Path::new("."), &args, input.as_bytes())
    };
    let out = predict(&[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("standard input line 2: longer than 1 MiB"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        stdout(&out).lines().count(),
        1,
        "the answer before the line"
    );
    let out = predict(&["--skip-invalid", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let answers: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(answers.len(), 3, "one answer per input line");
    assert_eq!(answers[1], serde_json::json!({"text": null, "labels": []}));
    assert_eq!(answers[2]["text"], "thank you");
    assert!(
        stderr(&out).contains("1 line longer than 1 MiB, answered with an abstention"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn seeds_files_are_checked_line_by_line() {
    let corpus = file(
        "c.jsonl",
        "{\"id\":\"a\",\"text\":\"hi there\"}\n{\"id\":\"b\",\"text\":\"hi you\"}\n",
    );
    let cases = [
        (
            "s.tsv",
            "zz\tx\n",
            "s.tsv:1: seed names unknown record id \"zz\"",
        ),
        ("s.tsv", "a\tx\tNaN\n", "s.tsv:1: field \"weight\""),
        ("s.tsv", "a\tx\tinf\n", "s.tsv:1: field \"weight\""),
        ("s.tsv", "a\tx\t-1\n", "s.tsv:1: field \"weight\""),
        ("s.tsv", "a\tx\t0\n", "s.tsv:1: field \"weight\""),
        // Finite, but 0 or infinite once stored as a 32-bit float.
        ("s.tsv", "a\tx\t1e-50\n", "s.tsv:1: field \"weight\""),
        (
            "s.jsonl",
            "{\"id\":\"a\",\"label\":\"x\",\"weight\":1e39}\n",
            "s.jsonl:1: field \"weight\"",
        ),
        ("s.tsv", "a\n", "s.tsv:1: expected node<TAB>label"),
        (
            "s.jsonl",
            "{\"line\": 9, \"label\": \"x\"}\n",
            "s.jsonl:1: seed names unknown record line 9",
        ),
        (
            "s.jsonl",
            "{\"id\": \"a\"}\n",
            "s.jsonl:1: missing field \"label\"",
        ),
        (
            "s.jsonl",
            "{\"id\": \"a\", \"label\": 1.5}\n",
            "s.jsonl:1: field \"label\"",
        ),
        ("s.jsonl", "nope\n", "s.jsonl:1: malformed JSON"),
    ];
    for (name, contents, needle) in cases {
        refused(
            &[corpus.clone(), file(name, contents)],
            &[
                "graph", "--corpus", "c.jsonl", "--seeds", name, "--out", "g.graph",
            ],
            needle,
        );
    }
}

#[test]
fn edge_lists_reject_bad_weights_and_drop_loops_and_zeros() {
    for (w, needle) in [
        ("NaN", "field \"weight\""),
        ("inf", "field \"weight\""),
        ("-0.5", "field \"weight\""),
        ("abc", "field \"weight\": not a number"),
    ] {
        refused(
            &[file("e.tsv", &format!("a\tb\t1\nb\tc\t{w}\n"))],
            &["graph", "--edges", "e.tsv", "--out", "g.graph"],
            &format!("e.tsv:2: {needle}"),
        );
    }
    refused(
        &[file("e.tsv", "")],
        &["graph", "--edges", "e.tsv", "--out", "g.graph"],
        "e.tsv: the edge list holds no edge",
    );
    // Corpus, text and feature flags say nothing about an edge list: refused, not ignored.
    for flag in [
        &["--char-max", "5"][..],
        &["--no-lowercase"],
        &["--text-field", "t"],
    ] {
        let mut args = vec!["graph", "--edges", "e.tsv", "--out", "g.graph"];
        args.extend(flag);
        let (_dir, out) = run(&[file("e.tsv", "a\tb\n")], &args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("'--edges <EDGES>' cannot be used with"),
            "{err}"
        );
        assert!(err.contains(flag[0]), "{err}");
    }
    let (dir, log) = accepted(
        &[
            file("e.tsv", "a\tb\t1\nb\tb\t1\nb\tc\t0\nd\te\t0.5\n"),
            file("s.tsv", "a\tx\n"),
        ],
        &[
            "graph", "--edges", "e.tsv", "--seeds", "s.tsv", "--out", "g.graph",
        ],
    );
    assert!(
        log.contains("dropped 1 self-loops and 1 zero-weight edges"),
        "{log}"
    );
    // c has no edge left and d-e form a component without seeds: all three abstain.
    let out = sprig(
        dir.path(),
        &["propagate", "--graph", "g.graph", "--out", "l.jsonl", "-q"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    no_nan(dir.path(), "l.jsonl");
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(dir.path().join("l.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let label = |id: &str| lines.iter().find(|l| l["id"] == id).unwrap()["label"].clone();
    assert_eq!(label("b"), "x");
    for id in ["c", "d", "e"] {
        assert!(label(id).is_null(), "{id} abstains");
    }
    // Each kind of dropped or merged line is counted alone (a sum of the three decides
    // whether to warn), and a clean list gets no word at all: no warning, no note of `#`
    // lines, of torn seeds (two seeds of two labels on two nodes are not one node's) or of
    // a missing edge.
    for (edges, warning) in [
        (
            "a\tb\t1\nb\tb\t1\n",
            "dropped 1 self-loops and 0 zero-weight edges; merged 0",
        ),
        (
            "a\tb\t1\nb\tc\t0\n",
            "dropped 0 self-loops and 1 zero-weight edges; merged 0",
        ),
        (
            "a\tb\t1\nb\ta\t2\n",
            "dropped 0 self-loops and 0 zero-weight edges; merged 1",
        ),
        (
            "a\tb\t1\nb\tb\t1\na\tb\t2\n",
            "dropped 1 self-loops and 0 zero-weight edges; merged 1",
        ),
        ("a\tb\t1\nb\tc\t0.5\n", ""),
    ] {
        let args = [
            "graph", "--edges", "e.tsv", "--seeds", "s.tsv", "--out", "g.graph",
        ];
        let (_dir, out) = run(
            &[file("e.tsv", edges), file("s.tsv", "a\tx\nb\ty\n")],
            &args,
        );
        assert!(out.status.success(), "{edges:?}: {}", stderr(&out));
        let err = stderr(&out);
        if warning.is_empty() {
            assert_eq!(err, "", "{edges:?}");
        } else {
            assert!(err.contains(warning), "{edges:?}: {err}");
        }
    }
}

#[test]
fn a_graph_without_seeds_cannot_be_propagated() {
    let (dir, _) = accepted(
        &[file("e.tsv", "a\tb\n")],
        &["graph", "--edges", "e.tsv", "--out", "g.graph"],
    );
    let out = sprig(
        dir.path(),
        &["propagate", "--graph", "g.graph", "--out", "l.jsonl"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no seeds"), "{}", stderr(&out));
    assert!(!dir.path().join("l.jsonl").exists());
}

#[test]
fn odd_labels_round_trip_through_the_outputs() {
    // Control characters would break predict's and eval's one-line answers: refused, with
    // the line and field.
    for bad in ["tab\there", "new\nline"] {
        let corpus = format!(
            "{{\"text\":\"hi\"}}\n{}\n",
            serde_json::json!({"text": "hello", "label": bad})
        );
        refused(
            &[file("c.jsonl", &corpus)],
            &["graph", "--corpus", "c.jsonl", "--out", "g.graph"],
            "c.jsonl:2: field \"label\"",
        );
    }
    let labels = ["two words", "=eq", "ünïcødé 😀", "quote\"back\\slash"];
    let mut corpus = String::new();
    for (i, l) in labels.iter().enumerate() {
        corpus.push_str(
            &serde_json::json!({"text": format!("text number {i} shared"), "label": l}).to_string(),
        );
        corpus.push('\n');
    }
    corpus.push_str("{\"text\": \"text number shared\"}\n");
    let (dir, _) = accepted(
        &[file("c.jsonl", &corpus)],
        &["graph", "--corpus", "c.jsonl", "--out", "g.graph", "-q"],
    );
    for format in ["jsonl", "tsv"] {
        let out = sprig(
            dir.path(),
            &[
                "propagate",
                "--graph",
                "g.graph",
                "--format",
                format,
                "--out",
                "l.out",
                "-q",
            ],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        no_nan(dir.path(), "l.out");
        let text = std::fs::read_to_string(dir.path().join("l.out")).unwrap();
        assert_eq!(text.lines().count(), 5, "one line per record: {text}");
        if format == "jsonl" {
            for (i, line) in text.lines().take(4).enumerate() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                assert_eq!(v["label"], labels[i], "seed {i} keeps its exact label");
            }
        }
    }
    // A label named as TSV names the unknown mass: TSV refuses it, JSONL writes it.
    let corpus = "{\"text\": \"hi there\", \"label\": \"__DUMMY__\"}\n{\"text\": \"hi you\"}\n";
    let (dir, _) = accepted(
        &[file("c.jsonl", corpus)],
        &["graph", "--corpus", "c.jsonl", "--out", "g.graph", "-q"],
    );
    let propagate = |format: &str| {
        let args = ["propagate", "--graph", "g.graph", "--out", "l.out", "-q"];
        sprig(dir.path(), &[&args[..], &["--format", format]].concat())
    };
    let out = propagate("tsv");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("a label is named __DUMMY__"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("l.out").exists());
    let out = propagate("jsonl");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(dir.path().join("l.out")).unwrap();
    assert!(text.contains("\"label\":\"__DUMMY__\""), "{text}");
}

#[test]
fn one_label_and_ten_thousand_labels_both_work() {
    let (dir, _) = accepted(
        &[file("e.tsv", "a\tb\nb\tc\n"), file("s.tsv", "a\tonly\n")],
        &[
            "graph", "--edges", "e.tsv", "--seeds", "s.tsv", "--out", "g.graph", "-q",
        ],
    );
    let out = sprig(
        dir.path(),
        &["propagate", "--graph", "g.graph", "--out", "l.jsonl", "-q"],
    );
    assert!(out.status.success());
    let text = std::fs::read_to_string(dir.path().join("l.jsonl")).unwrap();
    assert!(
        text.lines().all(|l| l.contains("\"label\":\"only\"")),
        "{text}"
    );
    // A sample's add-one share of the only label is all of the prior: 2 / 2, not 0.
    std::fs::write(dir.path().join("sample.txt"), "__label__only hi\n").unwrap();
    let args = ["propagate", "--graph", "g.graph", "--out", "p.jsonl", "-q"];
    let out = sprig(
        dir.path(),
        &[&args[..], &["--prior-from", "sample.txt"]].concat(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let prior = std::fs::read_to_string(dir.path().join("p.jsonl")).unwrap();
    assert_eq!(prior, text);

    // A ring of 20,000 nodes, every other one seeded with a label of its own.
    let n = 20_000;
    let mut edges = String::new();
    let mut seeds = String::new();
    for i in 0..n {
        edges.push_str(&format!("n{i}\tn{}\t1\n", (i + 1) % n));
        if i % 2 == 0 {
            seeds.push_str(&format!("n{i}\tlabel{i}\n"));
        }
    }
    let (dir, _) = accepted(
        &[file("e.tsv", &edges), file("s.tsv", &seeds)],
        &[
            "graph", "--edges", "e.tsv", "--seeds", "s.tsv", "--out", "g.graph", "-q",
        ],
    );
    let info: serde_json::Value =
        serde_json::from_slice(&sprig(dir.path(), &["inspect", "g.graph", "--json"]).stdout)
            .unwrap();
    assert_eq!(info["labels"].as_array().unwrap().len(), 10_000);
    let out = sprig(
        dir.path(),
        &[
            "propagate",
            "--graph",
            "g.graph",
            "--top-k",
            "4",
            "--out",
            "l.jsonl",
            "-q",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    no_nan(dir.path(), "l.jsonl");
    let text = std::fs::read_to_string(dir.path().join("l.jsonl")).unwrap();
    assert_eq!(text.lines().count(), n);
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(
            v["scores"].as_array().unwrap().len() <= 4,
            "top-k bounds every node: {line}"
        );
    }
}

#[test]
fn damaged_graphs_are_refused_by_every_reader() {
    let (dir, _) = accepted(
        &[file("e.tsv", "a\tb\n"), file("s.tsv", "a\tx\n")],
        &[
            "graph", "--edges", "e.tsv", "--seeds", "s.tsv", "--out", "g.graph", "-q",
        ],
    );
    let good = std::fs::read(dir.path().join("g.graph")).unwrap();
    let damaged: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", good[..good.len() - 7].to_vec()),
        ("empty", Vec::new()),
        ("corpus", b"{\"text\": \"not a graph\"}\n".to_vec()),
    ];
    for (what, bytes) in damaged {
        std::fs::write(dir.path().join("bad.graph"), &bytes).unwrap();
        for args in [
            vec!["inspect", "bad.graph"],
            vec!["propagate", "--graph", "bad.graph", "--out", "l.jsonl"],
        ] {
            let out = sprig(dir.path(), &args);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{what} {args:?}: {}",
                stderr(&out)
            );
            assert!(
                stderr(&out).contains("bad.graph"),
                "{what}: {}",
                stderr(&out)
            );
            assert!(!dir.path().join("l.jsonl").exists());
        }
    }
}

#[test]
fn an_output_over_an_input_is_refused_and_the_input_kept() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let corpus = b"{\"text\": \"thanks a lot\", \"label\": \"thanks\"}\n{\"text\": \"see you soon\", \"label\": \"bye\"}\n{\"text\": \"thank you\"}\n";
    std::fs::write(d.join("c.jsonl"), corpus).unwrap();
    // The same file by another name: a symbolic link where the platform has them.
    #[cfg(unix)]
    std::os::unix::fs::symlink("c.jsonl", d.join("link.jsonl")).unwrap();
    #[cfg(not(unix))]
    std::fs::copy(d.join("c.jsonl"), d.join("link.jsonl")).unwrap();
    crate::util::ok(
        d,
        &["graph", "-q", "--corpus", "c.jsonl", "--out", "g.graph"],
    );
    let graph = std::fs::read(d.join("g.graph")).unwrap();
    for args in [
        &["graph", "--corpus", "c.jsonl", "--out", "./c.jsonl"][..],
        &["propagate", "--graph", "g.graph", "--out", "g.graph"],
        &[
            "train",
            "--corpus",
            "c.jsonl",
            "--augment",
            "0",
            "--out",
            "c.jsonl",
        ],
    ] {
        let err = crate::util::fails(d, args);
        assert!(
            err.contains("refusing to write") && err.contains("the same file"),
            "{err}"
        );
    }
    #[cfg(unix)]
    {
        let err = crate::util::fails(d, &["graph", "--corpus", "link.jsonl", "--out", "c.jsonl"]);
        assert!(err.contains("over the input --corpus link.jsonl"), "{err}");
    }
    std::fs::create_dir(d.join("wd")).unwrap();
    std::fs::write(d.join("wd/labels.jsonl"), corpus).unwrap();
    let err = crate::util::fails(
        d,
        &[
            "run",
            "--corpus",
            "wd/labels.jsonl",
            "--test",
            "c.jsonl",
            "--workdir",
            "wd",
        ],
    );
    assert!(err.contains("refusing to write"), "{err}");
    let err = crate::util::fails(
        d,
        &["graph", "--corpus", "-", "--seeds", "-", "--out", "x.graph"],
    );
    assert!(err.contains("given to --corpus and --seeds"), "{err}");
    // A missing test file is found before any work; a first step that fails leaves no folder.
    let err = crate::util::fails(
        d,
        &[
            "run",
            "--corpus",
            "c.jsonl",
            "--test",
            "none.jsonl",
            "--workdir",
            "wd2",
        ],
    );
    assert!(err.contains("--test none.jsonl"), "{err}");
    // The hint about the bundled files' relative paths is for those files only.
    assert!(!err.contains("bundled"), "{err}");
    // So are a test file that eval would refuse and one without a gold label.
    let run_on = |test: &str, workdir: &str| {
        let args = [
            "run",
            "--corpus",
            "c.jsonl",
            "--test",
            test,
            "--workdir",
            workdir,
        ];
        crate::util::fails(d, &args)
    };
    std::fs::write(
        d.join("other.jsonl"),
        "{\"body\": \"hi\", \"label\": \"a\"}\n",
    )
    .unwrap();
    let err = run_on("other.jsonl", "wd5");
    assert!(
        err.contains("--test other.jsonl, read as step 4/4 eval will: other.jsonl:1:")
            && err.contains("\"text\""),
        "{err}"
    );
    std::fs::write(d.join("unlabelled.jsonl"), "{\"text\": \"hi\"}\n").unwrap();
    let err = run_on("unlabelled.jsonl", "wd6");
    assert!(
        err.contains("no record has a label under \"label\""),
        "{err}"
    );
    assert!(!d.join("wd5").exists() && !d.join("wd6").exists());
    std::fs::write(d.join("blank.jsonl"), "{\"text\": \"  \"}\n").unwrap();
    let err = crate::util::fails(
        d,
        &[
            "run",
            "-q",
            "--corpus",
            "blank.jsonl",
            "--test",
            "c.jsonl",
            "--workdir",
            "wd3",
        ],
    );
    assert!(err.contains("step 1/4 graph"), "{err}");
    assert!(!d.join("wd2").exists() && !d.join("wd3").exists());
    // A folder that was there before the run is kept, empty or not.
    std::fs::create_dir(d.join("empty")).unwrap();
    let blank = ["run", "-q", "--corpus", "blank.jsonl", "--test", "c.jsonl"];
    let err = crate::util::fails(d, &[&blank[..], &["--workdir", "empty"]].concat());
    assert!(err.contains("step 1/4 graph"), "{err}");
    assert!(d.join("empty").is_dir());
    // A workdir that is a file is refused as such, before any step.
    std::fs::write(d.join("plain"), "").unwrap();
    let err = crate::util::fails(d, &[&blank[..], &["--workdir", "plain"]].concat());
    assert!(
        err.contains("--workdir plain: exists and is not a folder"),
        "{err}"
    );
    // With --skip-invalid every step that reads records skips the blank one.
    let mut mixed =
        std::fs::read_to_string(crate::util::repo("corpora/tiny/intents.jsonl")).unwrap();
    mixed.push_str("{\"text\": \"  \", \"label\": \"greeting\"}\n");
    std::fs::write(d.join("mixed.jsonl"), &mixed).unwrap();
    let run = [
        "run",
        "-q",
        "--corpus",
        "mixed.jsonl",
        "--test",
        "mixed.jsonl",
        "--workdir",
        "wd4",
    ];
    let err = crate::util::fails(d, &run);
    assert!(
        err.contains("step 1/4 graph") && err.contains("text is empty"),
        "{err}"
    );
    let out = crate::util::sprig(d, &[&run[..], &["--skip-invalid"]].concat());
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("sprig graph --corpus mixed.jsonl") && log.contains("--skip-invalid"),
        "{log}"
    );
    assert!(log.contains("== done"), "{log}");
    assert_eq!(std::fs::read(d.join("c.jsonl")).unwrap(), corpus);
    assert_eq!(std::fs::read(d.join("wd/labels.jsonl")).unwrap(), corpus);
    assert_eq!(std::fs::read(d.join("g.graph")).unwrap(), graph);
}

#[test]
fn a_closed_stdout_ends_a_command_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (edges, seeds) = crate::util::toy_graph(d, "g.graph");
    let graph = [
        "graph", "--edges", &edges, "--seeds", &seeds, "--out", "g2.graph",
    ];
    let propagate = ["propagate", "-q", "--graph", "g.graph", "--out", "l.jsonl"];
    // Both print a summary line on stdout once their file is written.
    for args in [&graph[..], &propagate[..]] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sprig"))
            .args(args)
            .current_dir(d)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Close the reading end before the command writes its first line.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    }
}

#[test]
fn eval_skips_invalid_records_only_when_asked_and_reads_no_ids() {
    let model = crate::util::repo("tests/fixtures/v1/tiny.sprig");
    // Ids a corpus would refuse (an object, a float): a test file's ids serve nothing.
    let data = file(
        "d.jsonl",
        "{\"id\":{\"$oid\":\"5f1\"},\"text\":\"hello there\",\"label\":\"greeting\"}\n\
         {\"text\": 5}\n{\"id\":12.5,\"text\":\"thank you\",\"label\":\"thanks\"}\n",
    );
    let args = [
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--data",
        "d.jsonl",
    ];
    refused(
        std::slice::from_ref(&data),
        &args,
        "d.jsonl:2: field \"text\"",
    );
    let (json, err) = json_of(
        std::slice::from_ref(&data),
        &[&args[..], &["--skip-invalid", "--json"]].concat(),
    );
    assert_eq!(
        (json["examples"].as_u64(), json["invalid_skipped"].as_u64()),
        (Some(2), Some(1))
    );
    let note = "skipped 1 invalid record; the first: d.jsonl:2: field \"text\"";
    assert!(err.contains(note), "{err}");
    refused(
        &[data],
        &[&args[..], &["--id-field", "id"]].concat(),
        "--id-field: `sprig eval` reads no ids",
    );
    // ... and its help does not offer the flag (graph's, which reads ids, does).
    let help = |command: &str| {
        let out = crate::util::sprig(Path::new("."), &[command, "--help"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(!help("eval").contains("--id-field"));
    assert!(help("graph").contains("--id-field"));
}

#[test]
fn a_field_named_for_plain_text_is_refused_and_eval_says_how_it_read_the_file() {
    let lines = file("c.txt", "hello there\nthank you\n");
    for flag in ["--text-field", "--label-field", "--id-field"] {
        refused(
            std::slice::from_ref(&lines),
            &[&graph_args("c.txt")[..], &[flag, "body"]].concat(),
            "c.txt:1: read as plain text (one text per line, an optional `__label__NAME` \
             prefix), which has no field \"body\"",
        );
    }
    // A CSV whose name does not tell its format is sniffed as text (its first byte is not
    // `{`): eval's complaint names the format, not the label field.
    let model = crate::util::repo("tests/fixtures/v1/tiny.sprig");
    let csv = file("d.dat", "text,label\nhello there,greeting\n");
    let args = [
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--data",
        "d.dat",
    ];
    refused(
        std::slice::from_ref(&csv),
        &args,
        "it was read as plain text: if it is CSV, TSV or JSON Lines, say so with --format",
    );
    accepted(&[csv], &[&args[..], &["--format", "csv"]].concat());
}

#[test]
fn predict_stops_at_a_non_utf8_line_unless_told_to_answer_it() {
    let model = crate::util::repo("tests/fixtures/v1/tiny.sprig");
    let predict = |extra: &[&str]| {
        let args = [&["predict", "--model", model.to_str().unwrap()], extra].concat();
        crate::util::sprig_with_stdin(
            Path::new("."),
            &args,
            b"hello there\n\xff\xfe bad\nthank you\n",
        )
    };
    let out = predict(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("standard input line 2: not UTF-8"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        stdout(&out).lines().count(),
        1,
        "the answer before the bad line"
    );
    let out = predict(&["--skip-invalid"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 3, "one answer per input line");
    assert!(
        stderr(&out).contains("1 line not UTF-8"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn standard_input_is_sniffed_like_a_name_without_extension() {
    use crate::util::{repo, sprig_with_stdin};
    let here = Path::new(".");
    // eval: fastText lines and JSON Lines on a pipe score alike (`-` was always read as
    // JSON Lines: a plain-text file failed with "malformed JSON at column 1").
    let model = repo("tests/fixtures/v1/tiny.sprig");
    let eval = ["eval", "--model", model.to_str().unwrap(), "--data", "-"];
    let text = b"__label__thanks thank you so much\n__label__greeting hello there\n";
    let jsonl = b"{\"text\":\"thank you so much\",\"label\":\"thanks\"}\n\
                  {\"text\":\"hello there\",\"label\":\"greeting\"}\n";
    let scores: Vec<String> = [&text[..], &jsonl[..]]
        .into_iter()
        .map(|input| {
            let out = sprig_with_stdin(here, &eval, input);
            assert!(out.status.success(), "{}", stderr(&out));
            stdout(&out)
        })
        .collect();
    assert!(scores[0].contains("examples 2"), "{}", scores[0]);
    assert_eq!(scores[0], scores[1]);
    // graph and train: the tiny corpus's plain-text copy, through a pipe.
    let corpus = std::fs::read(repo("corpora/tiny/intents.txt")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let graph = ["graph", "--corpus", "-", "--out", "g.graph", "-q"];
    let out = sprig_with_stdin(dir.path(), &graph, &corpus);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("40 records"), "{}", stdout(&out));
    let train = ["train", "--corpus", "-", "--out", "m.sprig", "-q"];
    let train = [&train[..], &crate::util::QUICK_TRAIN].concat();
    let out = sprig_with_stdin(dir.path(), &train, &corpus);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(dir.path().join("m.sprig").exists());
}

/// A full disk (Linux's `/dev/full`): every command that writes stops with exit code 2 and
/// one line saying where it could not write, the path named once.
#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_is_one_clear_error_for_every_command_that_writes() {
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let corpus = crate::util::tiny_graph(d, "t.graph");
    let corpus = corpus.as_str();
    let train = ["train", "--corpus", corpus, "--out", "m.sprig", "-q"];
    crate::util::ok(d, &[&train[..], &crate::util::QUICK_TRAIN].concat());
    let run = |args: &[&str]| {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_sprig"))
            .args(args)
            .current_dir(d)
            .stdin(Stdio::null())
            .stdout(full)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        err
    };
    let to_file = "sprig: /dev/full: No space left on device";
    let graph = ["graph", "--corpus", corpus, "--out", "/dev/full", "-q"];
    assert!(run(&graph).starts_with(to_file));
    let propagate = [
        "propagate",
        "--graph",
        "t.graph",
        "--out",
        "/dev/full",
        "-q",
    ];
    assert!(run(&propagate).starts_with(to_file));
    let train = ["train", "--corpus", corpus, "--out", "/dev/full", "-q"];
    assert!(run(&[&train[..], &crate::util::QUICK_TRAIN].concat()).starts_with(to_file));
    let to_stdout = "writing to standard output: No space left on device";
    for args in [
        &["predict", "--model", "m.sprig", "hello"][..],
        &["eval", "--model", "m.sprig", "--data", corpus],
        &["inspect", "t.graph"],
        &["inspect", "m.sprig"],
        &["inspect", "t.graph", "--edges"],
    ] {
        let err = run(args);
        assert!(
            err.starts_with("sprig: ") && err.contains(to_stdout),
            "{args:?}: {err}"
        );
    }
}
