//! The `sprig` binary, run as a user would.

use crate::util::{edges_graph, fails, ok, ok_stderr, repo};

#[test]
fn the_three_tiny_formats_give_the_same_graph() {
    let dir = tempfile::tempdir().unwrap();
    let mut edges = Vec::new();
    for name in ["intents.jsonl", "intents.csv", "intents.txt"] {
        let corpus = repo("corpora/tiny").join(name);
        let out = dir.path().join(format!("{name}.graph"));
        let summary = ok(
            dir.path(),
            &[
                "graph",
                "--corpus",
                corpus.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "-q",
            ],
        );
        assert!(summary.contains("40 records"), "{summary}");
        assert!(summary.contains("8 seed nodes over 4 labels"), "{summary}");
        edges.push(ok(
            dir.path(),
            &["inspect", out.to_str().unwrap(), "--edges"],
        ));
    }
    assert!(!edges[0].is_empty());
    assert_eq!(edges[0], edges[1]);
    assert_eq!(edges[0], edges[2]);
}

#[test]
fn inspect_reports_unreachable_nodes_of_the_toy_graph() {
    let dir = tempfile::tempdir().unwrap();
    let toy = repo("graphs/toy");
    ok(
        dir.path(),
        &[
            "graph",
            "--edges",
            toy.join("edges.tsv").to_str().unwrap(),
            "--seeds",
            toy.join("seeds.tsv").to_str().unwrap(),
            "--out",
            "toy.graph",
        ],
    );
    // Its summary counts nodes: an edge list names nodes, not texts or records.
    let summary = ok(
        dir.path(),
        &[
            "graph",
            "--edges",
            toy.join("edges.tsv").to_str().unwrap(),
            "--out",
            "bare.graph",
        ],
    );
    assert!(
        summary.starts_with("bare.graph: edges graph, 13 nodes, 24 edges, "),
        "{summary}"
    );
    let json: serde_json::Value = serde_json::from_str(&ok(
        dir.path(),
        &["inspect", "toy.graph", "--json", "--verify"],
    ))
    .unwrap();
    assert_eq!(json["counts"]["nodes"], 13);
    assert_eq!(json["components"], 2);
    assert_eq!(json["unreachable_nodes"], 3);
    assert_eq!(json["labels"], serde_json::json!(["politics", "sports"]));
    assert_eq!(json["verified"], true);
    // Two cliques of five joined by one edge, seeded, and a triangle: degrees 4 and 5 in the
    // cliques, 2 in the triangle (48 ends over 13 nodes).
    assert_eq!(json["seeded_components"], 1);
    assert_eq!(json["largest_component"], 10);
    assert_eq!(json["unreachable_texts"], 3);
    let degree = &json["degree"];
    assert_eq!(
        (&degree["min"], &degree["median"], &degree["max"]),
        (&2.into(), &4.into(), &5.into())
    );
    assert_eq!(degree["isolated"], 0);
    assert!(
        (degree["mean"].as_f64().unwrap() - 48.0 / 13.0).abs() < 1e-12,
        "{degree}"
    );
    let text = ok(dir.path(), &["inspect", "toy.graph"]);
    assert!(text.contains("unreachable: 3 nodes"), "{text}");
    // Seeds counted per label, unequal ones (each label's own, not the others'), and a
    // label that would break the text line's `label=count` layout shown quoted.
    std::fs::write(
        dir.path().join("more.tsv"),
        "a1\tsports\na2\tsports\nb1\tbig news\nc1\tx=y\n",
    )
    .unwrap();
    let edges = toy.join("edges.tsv");
    let edges = edges.to_str().unwrap();
    let more = [
        "graph",
        "--edges",
        edges,
        "--seeds",
        "more.tsv",
        "--out",
        "more.graph",
    ];
    ok(dir.path(), &more);
    let json: serde_json::Value =
        serde_json::from_str(&ok(dir.path(), &["inspect", "more.graph", "--json"])).unwrap();
    assert_eq!(
        json["seeds_per_label"],
        serde_json::json!({"big news": 1, "sports": 2, "x=y": 1})
    );
    let text = ok(dir.path(), &["inspect", "more.graph"]);
    assert!(text.contains("\"big news\"=1"), "{text}");
    assert!(text.contains(" sports=2"), "{text}");
    assert!(text.contains("\"x=y\"=1"), "{text}");
    // The graph-only flags are refused on a model file, each by name.
    let model = repo("tests/fixtures/v1/tiny.sprig");
    for flag in ["--edges", "--verify"] {
        let err = fails(dir.path(), &["inspect", model.to_str().unwrap(), flag]);
        assert!(
            err.contains(&format!("{flag} reads graphs; this is a model file")),
            "{err}"
        );
    }
}

/// Given class priors keep up to 64 labels a node unless `--top-k` says otherwise: a prior
/// cannot raise a label the truncation dropped.
#[test]
fn class_priors_keep_every_label_unless_top_k_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Twelve nodes, all linked; ten seeded with a label each: every label reaches the two
    // unseeded nodes, more than the default K = 8.
    let mut edges = String::new();
    for a in 0..12 {
        for b in a + 1..12 {
            edges += &format!("n{a}\tn{b}\n");
        }
    }
    let seeds: String = (0..10).map(|i| format!("n{i}\tl{i}\n")).collect();
    std::fs::write(d.join("edges.tsv"), edges).unwrap();
    std::fs::write(d.join("seeds.tsv"), seeds).unwrap();
    // The graph of `edges.tsv` and whatever `seeds.tsv` holds at the time.
    let graph = || edges_graph(d);
    graph();
    let priors: Vec<String> = (0..10).map(|i| format!("--prior=l{i}={}", i + 1)).collect();
    let propagate = |out: &str, extra: &[&str]| {
        let mut a = vec!["propagate", "--graph", "g.graph", "--out", out];
        a.extend(priors.iter().map(String::as_str));
        a.extend(extra);
        let err = crate::util::ok_stderr(d, &a);
        (std::fs::read(d.join(out)).unwrap(), err)
    };
    let (default, note) = propagate("default.jsonl", &[]);
    assert!(
        note.contains(
            "note: with class priors, all 10 labels are kept a node (--top-k 10; the default \
             is 8 without priors), so that a prior can raise any of them\n"
        ),
        "{note}"
    );
    let (ten, note) = propagate("ten.jsonl", &["--top-k", "10"]);
    assert_eq!(default, ten);
    // K = the label count drops none: nothing to say.
    assert!(!note.contains("note: "), "{note}");
    // An explicit K is kept, with the note that says what it drops.
    let (eight, note) = propagate("eight.jsonl", &["--top-k", "8"]);
    assert_ne!(default, eight);
    assert!(
        note.contains("--top-k 8 < 10 labels: a label dropped by the top-K truncation"),
        "{note}"
    );
    // Without priors the default K stays 8: no note.
    let mut a = vec!["propagate", "--graph", "g.graph", "--out", "plain.jsonl"];
    a.push("--class-prior=none");
    let note = crate::util::ok_stderr(d, &a);
    assert!(!note.contains("note: "), "{note}");
    // With exactly the default K of labels, the default keeps them all: no note either.
    let seeds: String = (0..8).map(|i| format!("n{i}\tl{i}\n")).collect();
    std::fs::write(d.join("seeds.tsv"), seeds).unwrap();
    graph();
    let mut a = vec![
        "propagate",
        "--graph",
        "g.graph",
        "--out",
        "eight-labels.jsonl",
    ];
    a.extend(priors[..8].iter().map(String::as_str));
    let note = crate::util::ok_stderr(d, &a);
    assert!(!note.contains("note: "), "{note}");
}

/// A seed whose neighbourhood says another label is noted after the run, with its line,
/// and `--check-seeds` lists it; a graph whose seeds agree with their neighbourhoods gets
/// no note and an empty list.
#[test]
fn propagate_notes_the_seeds_their_neighbourhood_contradicts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Two cliques of four (a0–a3, b0–b3) joined by a weak edge a3–b0.
    let mut edges = String::new();
    for side in ["a", "b"] {
        for i in 0..4 {
            for j in i + 1..4 {
                edges += &format!("{side}{i}\t{side}{j}\t1\n");
            }
        }
    }
    edges += "a3\tb0\t0.1\n";
    std::fs::write(d.join("edges.tsv"), edges).unwrap();
    let run = |seeds: &str, check: bool| {
        std::fs::write(d.join("seeds.tsv"), seeds).unwrap();
        edges_graph(d);
        let mut args = vec!["propagate", "--graph", "g.graph", "--out", "labels.jsonl"];
        if check {
            args.extend(["--check-seeds", "check.jsonl"]);
        }
        ok_stderr(d, &args)
    };
    // a2 is seeded "b" among a's seeds.
    let wrong = "a0\tx\na1\tx\nb1\ty\nb2\ty\na2\ty\n";
    let err = run(wrong, false);
    let note = "note: 1 of 5 seed nodes have a neighbourhood that gives another label the most \
                mass (line 2 (id \"a2\") seeded \"y\", around it \"x\" ";
    assert!(err.contains(note), "{err}");
    assert!(
        err.contains("): check their labels; --check-seeds FILE lists them\n"),
        "{err}"
    );
    assert!(!d.join("check.jsonl").exists());
    let err = run(wrong, true);
    assert!(
        err.contains(note) && err.contains("): check their labels\n"),
        "{err}"
    );
    let listed = std::fs::read_to_string(d.join("check.jsonl")).unwrap();
    assert_eq!(listed.lines().count(), 1, "{listed}");
    let v: serde_json::Value = serde_json::from_str(listed.trim()).unwrap();
    // An edge list's records are its nodes, by the line each first appears on.
    assert_eq!(
        (v["line"].as_u64(), v["id"].as_str()),
        (Some(2), Some("a2"))
    );
    assert_eq!(
        (v["records"].as_u64(), v["seed"][0].as_str()),
        (Some(1), Some("y"))
    );
    let hood = v["neighbourhood"].as_array().unwrap();
    assert_eq!(hood[0][0], "x");
    let (top, own) = (
        hood[0][1].as_f64().unwrap(),
        v["seed_share"].as_f64().unwrap(),
    );
    assert!(
        top > 0.5 && own < top && hood[1][1].as_f64() == Some(own),
        "{v}"
    );
    // The labels file is the same with or without the check.
    let with = std::fs::read(d.join("labels.jsonl")).unwrap();
    run(wrong, false);
    assert_eq!(std::fs::read(d.join("labels.jsonl")).unwrap(), with);
    // Every seed agreeing with its neighbourhood: no note, an empty list.
    let err = run("a0\tx\na1\tx\nb1\ty\nb2\ty\n", true);
    assert!(!err.contains("neighbourhood"), "{err}");
    assert_eq!(std::fs::read_to_string(d.join("check.jsonl")).unwrap(), "");
    // The list is an output: not the labels file, not an input.
    let both = [
        "propagate",
        "--graph",
        "g.graph",
        "--out",
        "o.jsonl",
        "--check-seeds",
    ];
    let err = fails(d, &[&both[..], &["o.jsonl"]].concat());
    assert!(
        err.contains("--check-seeds and --out name the same file"),
        "{err}"
    );
    let err = fails(d, &[&both[..], &["g.graph"]].concat());
    assert!(err.contains("g.graph"), "{err}");
}

/// `--suggest` lists unlabelled texts worth labelling, best first, in a file that is a seed
/// file once each `"label": null` is filled in; the labels file is the same with or without
/// it.
#[test]
fn propagate_suggests_texts_to_label_in_a_seed_file_to_fill_in() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let corpus = crate::util::tiny_graph(d, "t.graph");
    let texts: std::collections::HashMap<String, (String, bool)> = std::fs::read_to_string(&corpus)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let id = v["id"].as_str().unwrap().to_owned();
            (
                id,
                (
                    v["text"].as_str().unwrap().to_owned(),
                    v["label"].is_string(),
                ),
            )
        })
        .collect();
    let propagate = |out: &str, extra: &[&str]| {
        let args = [
            &["propagate", "--graph", "t.graph", "--out", out][..],
            extra,
        ]
        .concat();
        ok_stderr(d, &args)
    };
    let err = propagate(
        "l.jsonl",
        &["--suggest", "next.jsonl", "--suggest-count", "5"],
    );
    assert!(
        err.contains("next.jsonl: 5 texts to label next, settling about ")
            && err.contains(
                " uncertain records; fill in their \"label\" and pass the file to --seeds\n"
            ),
        "{err}"
    );
    let listed: Vec<serde_json::Value> = std::fs::read_to_string(d.join("next.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(listed.len(), 5);
    let mut last = f64::INFINITY;
    for v in &listed {
        // Named by id (the corpus has ids), the text it stands for beside it, never a seed.
        let (text, seeded) = &texts[v["id"].as_str().unwrap()];
        assert_eq!(v["text"].as_str(), Some(text.as_str()), "{v}");
        assert!(!seeded, "{v}");
        assert!(v["label"].is_null() && v.get("line").is_none(), "{v}");
        assert!(
            v["guess"].is_string() && v["records"].as_u64() >= Some(1),
            "{v}"
        );
        let gain = v["gain"].as_f64().unwrap();
        assert!(gain > 0.0 && gain <= last, "{v}");
        last = gain;
    }
    let with = std::fs::read(d.join("l.jsonl")).unwrap();
    propagate("l.jsonl", &[]);
    assert_eq!(std::fs::read(d.join("l.jsonl")).unwrap(), with);

    // As written, the file names no label: refused, naming the line.
    let seeds = ["--seeds", "next.jsonl"];
    let err = fails(
        d,
        &[
            &["propagate", "--graph", "t.graph", "--out", "x.jsonl"][..],
            &seeds[..],
        ]
        .concat(),
    );
    assert!(
        err.contains("next.jsonl:1") && err.contains("field \"label\" is null: fill in the label"),
        "{err}"
    );
    // Filled in (here with one label throughout), its texts are seeds, left out of the
    // class priors estimated from the seeds.
    let filled = std::fs::read_to_string(d.join("next.jsonl"))
        .unwrap()
        .replace("\"label\":null", "\"label\":\"thanks\"");
    std::fs::write(d.join("filled.jsonl"), &filled).unwrap();
    let err = propagate("l2.jsonl", &["--seeds", "filled.jsonl"]);
    assert!(
        err.contains(
            "note: the class priors leave out the 5 seeds of filled.jsonl marked \"suggested\""
        ),
        "{err}"
    );
    // Unmarked, the same labels count in the priors, five more "thanks" among eight seeds:
    // other scores. Without class priors the mark changes nothing.
    std::fs::write(
        d.join("unmarked.jsonl"),
        filled.replace("\"suggested\":true,", ""),
    )
    .unwrap();
    let err = propagate("l3.jsonl", &["--seeds", "unmarked.jsonl"]);
    assert!(!err.contains("leave out"), "{err}");
    let read = |f: &str| std::fs::read(d.join(f)).unwrap();
    assert_ne!(read("l2.jsonl"), read("l3.jsonl"));
    for (out, seeds) in [("n2.jsonl", "filled.jsonl"), ("n3.jsonl", "unmarked.jsonl")] {
        let err = propagate(out, &["--seeds", seeds, "--class-prior", "none"]);
        assert!(!err.contains("leave out"), "{err}");
    }
    assert_eq!(read("n2.jsonl"), read("n3.jsonl"));
    // A label that only suggested lines carry keeps their count as its prior, not 0 (which
    // would take it off every other text).
    std::fs::write(
        d.join("new.jsonl"),
        filled.replace("\"label\":\"thanks\"", "\"label\":\"brand_new\""),
    )
    .unwrap();
    propagate("l4.jsonl", &["--seeds", "new.jsonl"]);
    let spread = std::fs::read_to_string(d.join("l4.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["seed"] == false)
        .filter(|v| {
            v["scores"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s[0] == "brand_new")
        })
        .count();
    assert!(spread > 0);
    // With more labels than the default K, priors the seeds imply keep K and its notes as
    // they are (those are for priors a user gives): 10 labels on a path, one more seed marked.
    let path: String = (0..11).map(|i| format!("n{i}\tn{}\t1\n", i + 1)).collect();
    std::fs::write(d.join("edges.tsv"), path).unwrap();
    let ten: String = (0..10).map(|i| format!("n{i}\tl{i}\n")).collect();
    std::fs::write(d.join("seeds.tsv"), ten).unwrap();
    crate::util::edges_graph(d);
    std::fs::write(
        d.join("more.jsonl"),
        "{\"id\":\"n11\",\"label\":\"l0\",\"suggested\":true}\n",
    )
    .unwrap();
    let err = ok_stderr(
        d,
        &[
            "propagate",
            "--graph",
            "g.graph",
            "--out",
            "p.jsonl",
            "--seeds",
            "more.jsonl",
        ],
    );
    assert!(err.contains("leave out the 1 seed of more.jsonl"), "{err}");
    assert!(!err.contains("--top-k"), "{err}");
    // Given to `sprig graph`, whose seeds keep no mark, the file is noted.
    let err = ok_stderr(
        d,
        &[
            "graph",
            "--corpus",
            &corpus,
            "--seeds",
            "filled.jsonl",
            "--out",
            "s.graph",
        ],
    );
    assert!(
        err.contains(
            "note: 5 seeds of filled.jsonl marked \"suggested\" will count in the class priors"
        ),
        "{err}"
    );
    let ids: Vec<&str> = listed.iter().map(|v| v["id"].as_str().unwrap()).collect();
    let mut seen = 0;
    for line in std::fs::read_to_string(d.join("l2.jsonl")).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if ids.contains(&v["id"].as_str().unwrap()) {
            assert_eq!(
                (v["seed"].as_bool(), v["label"].as_str()),
                (Some(true), Some("thanks")),
                "{v}"
            );
            seen += 1;
        }
    }
    assert_eq!(seen, 5);

    // Refused: the same file as --out; a count without --suggest; a bipartite graph (before
    // it propagates).
    let err = fails(
        d,
        &[
            "propagate",
            "--graph",
            "t.graph",
            "--out",
            "o.jsonl",
            "--suggest",
            "o.jsonl",
        ],
    );
    assert!(err.contains("--suggest names the same file"), "{err}");
    let out = crate::util::sprig(
        d,
        &[
            "propagate",
            "--graph",
            "t.graph",
            "--out",
            "o.jsonl",
            "--suggest-count",
            "3",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("required arguments were not provided"),
        "{err}"
    );
    ok(
        d,
        &[
            "graph",
            "-q",
            "--kind",
            "bipartite",
            "--corpus",
            &corpus,
            "--out",
            "b.graph",
        ],
    );
    let err = fails(
        d,
        &[
            "propagate",
            "--graph",
            "b.graph",
            "--out",
            "o.jsonl",
            "--suggest",
            "s.jsonl",
        ],
    );
    assert!(
        err.contains("bipartite") && err.contains("kNN graph"),
        "{err}"
    );
    assert!(!d.join("o.jsonl").exists() && !d.join("s.jsonl").exists());
}

/// The stderr of a `propagate` of `graph` that must fail on its `--prior-from sample`.
fn prior_from_fails(d: &std::path::Path, graph: &str, sample: &str) -> String {
    let args = ["propagate", "--graph", graph, "--prior-from", sample];
    fails(d, &[&args[..], &["--out", "x.jsonl"]].concat())
}

#[test]
fn prior_from_a_labelled_sample_is_its_add_one_shares() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let toy = repo("graphs/toy");
    let edges = toy.join("edges.tsv");
    let seeds = toy.join("seeds.tsv");
    let (edges, seeds) = (edges.to_str().unwrap(), seeds.to_str().unwrap());
    let graph_args = [
        "graph", "--edges", edges, "--seeds", seeds, "--out", "t.graph",
    ];
    ok(d, &graph_args);
    // Nine politics lines, one sports, one of a label the graph does not have (ignored):
    // shares (9 + 1) / 12 and (1 + 1) / 12.
    let mut sample = String::new();
    for i in 0..9 {
        sample += &format!("{{\"text\": \"p{i}\", \"label\": \"politics\"}}\n");
    }
    sample += "{\"text\": \"s\", \"label\": \"sports\"}\n";
    sample += "{\"text\": \"w\", \"label\": \"weather\"}\n";
    sample += "{\"text\": \"unlabelled\"}\n";
    // Its ids are not read: one a corpus would refuse changes nothing.
    sample += "{\"id\": [1, 2], \"text\": \"w2\", \"label\": \"weather\"}\n";
    std::fs::write(d.join("sample.jsonl"), sample).unwrap();
    let propagate = |out: &str, extra: &[&str]| {
        let mut a = vec!["propagate", "--graph", "t.graph", "--out", out, "-q"];
        a.extend(extra);
        ok(d, &a);
        std::fs::read(d.join(out)).unwrap()
    };
    let from = propagate("from.jsonl", &["--prior-from", "sample.jsonl"]);
    let given = propagate(
        "given.jsonl",
        &[
            "--prior",
            "politics=0.8333333333333334",
            "--prior",
            "sports=0.16666666666666666",
        ],
    );
    assert_eq!(from, given);
    assert_ne!(
        from,
        propagate("plain.jsonl", &[]),
        "the priors change the output"
    );
    // A sample whose name says nothing goes by its first bytes: an edge list's file name
    // (`edges.tsv`) is no corpus's to read it as.
    std::fs::write(d.join("sample"), "text,label\np1,politics\n").unwrap();
    let err = prior_from_fails(d, "t.graph", "sample");
    assert!(
        err.contains("read as text (by its first bytes): `__label__LABEL text` lines")
            && !err.contains("graph's corpus"),
        "{err}"
    );
    // The note names the labels the graph lacks most frequent first, then by name: three,
    // and how many more.
    let ignored = |labels: &[&str]| {
        let mut sample = "{\"text\": \"p\", \"label\": \"politics\"}\n".to_owned();
        for l in labels {
            sample += &format!("{{\"text\": \"t\", \"label\": \"{l}\"}}\n");
        }
        std::fs::write(d.join("odd.jsonl"), sample).unwrap();
        let args = ["propagate", "--graph", "t.graph", "--out", "odd.out", "-q"];
        crate::util::ok_stderr(d, &[&args[..], &["--prior-from", "odd.jsonl"]].concat())
    };
    let note = "warning: --prior-from ignores 4 labelled lines of odd.jsonl with a label the \
                graph lacks: \"b\" (2), \"a\" (1), \"c\" (1)";
    let err = ignored(&["c", "b", "a", "b"]);
    assert!(err.contains(&format!("{note}\n")), "{err}");
    let err = ignored(&["c", "b", "a", "b", "d"]);
    assert!(
        err.contains(&format!("{}, and 1 more\n", note.replace('4', "5"))),
        "{err}"
    );
    std::fs::write(
        d.join("none.jsonl"),
        "{\"text\": \"w\", \"label\": \"weather\"}\n",
    )
    .unwrap();
    let err = prior_from_fails(d, "t.graph", "none.jsonl");
    assert!(
        err.contains("none.jsonl") && err.contains("--prior-from"),
        "{err}"
    );
    assert!(!d.join("x.jsonl").exists());
    // A graph built with other field names reads its sample with them too.
    std::fs::write(
        d.join("c.csv"),
        "key,body,intent\nt1,hello there,greet\nt2,thanks a lot,thanks\nt3,hi you,greet\n\
         t4,hello thanks,\nt5,thanks you there,\n",
    )
    .unwrap();
    let fields = [
        "--text-field",
        "body",
        "--label-field",
        "intent",
        "--id-field",
        "key",
    ];
    ok(
        d,
        &[
            &["graph", "--corpus", "c.csv", "--out", "c.graph"][..],
            &fields,
        ]
        .concat(),
    );
    let from_corpus = ["--graph", "c.graph", "--prior-from", "c.csv", "-q"];
    ok(
        d,
        &[&["propagate", "--out", "c.jsonl"][..], &from_corpus].concat(),
    );
    std::fs::write(d.join("plain.csv"), "text,label\nhello,greet\n").unwrap();
    let err = prior_from_fails(d, "c.graph", "plain.csv");
    assert!(
        err.contains("fields the graph was built with (sprig graph --text-field \"body\" --label-field \"intent\")")
            && err.contains("plain.csv:1: header row has no \"body\" column"),
        "{err}"
    );
    // A corpus graph's reader keeps its pointer to the flag (only an edge list's loses it).
    assert!(err.contains("; see --text-field"), "{err}");
    // A plain-text sample has no fields: its `__label__` prefixes serve, whatever the
    // corpus's fields were called, also when only its first bytes tell its format. The
    // CSV's shares (two greet, one thanks) give the CSV's output; others another one (the
    // last two records are not seeds).
    let from_text = |shares: &str, out: &str| {
        std::fs::write(d.join("sample"), shares).unwrap();
        let args = ["--graph", "c.graph", "--prior-from", "sample", "-q"];
        ok(d, &[&["propagate", "--out", out][..], &args].concat());
        std::fs::read(d.join(out)).unwrap()
    };
    let csv_output = std::fs::read(d.join("c.jsonl")).unwrap();
    let same = "__label__greet hi\n__label__thanks thx\n__label__greet yo\n";
    assert_eq!(from_text(same, "t.jsonl"), csv_output);
    let reversed = "__label__thanks hi\n__label__greet thx\n__label__thanks yo\n";
    assert_ne!(from_text(reversed, "r.jsonl"), csv_output);
}

#[test]
fn prior_from_reads_its_sample_as_the_graphs_corpus_was_read() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A CSV named `.txt`, read with --format csv; the sample is its first 12 lines.
    let csv = std::fs::read_to_string(repo("corpora/tiny/intents.csv")).unwrap();
    std::fs::write(d.join("data.txt"), &csv).unwrap();
    ok(
        d,
        &[
            "graph", "-q", "--corpus", "data.txt", "--format", "csv", "--out", "g.graph",
        ],
    );
    let head: String = csv.lines().take(12).map(|l| format!("{l}\n")).collect();
    std::fs::write(d.join("sample.txt"), &head).unwrap();
    let propagate = |sample: &str, out: &str| {
        let args = ["propagate", "--graph", "g.graph", "--prior-from", sample];
        crate::util::sprig(d, &[&args[..], &["--out", out]].concat())
    };
    let run = propagate("sample.txt", "o.jsonl");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    // The same lines named `.csv` give the same priors, hence the same output.
    std::fs::write(d.join("sample.csv"), &head).unwrap();
    assert!(propagate("sample.csv", "c.jsonl").status.success());
    assert_eq!(
        std::fs::read(d.join("o.jsonl")).unwrap(),
        std::fs::read(d.join("c.jsonl")).unwrap()
    );
    // The same records as JSONL are read as JSONL, by the name or, without an extension, by
    // the first bytes; the CSV lines without an extension are read as the corpus was.
    let jsonl = std::fs::read_to_string(repo("corpora/tiny/intents.jsonl")).unwrap();
    let jsonl: String = jsonl.lines().take(11).map(|l| format!("{l}\n")).collect();
    for (sample, lines) in [
        ("sample.jsonl", &jsonl),
        ("sample-jsonl", &jsonl),
        ("sample-csv", &head),
    ] {
        std::fs::write(d.join(sample), lines).unwrap();
        let run = propagate(sample, "other.jsonl");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(run.status.success(), "{sample}: {stderr}");
        assert_eq!(
            std::fs::read(d.join("o.jsonl")).unwrap(),
            std::fs::read(d.join("other.jsonl")).unwrap(),
            "{sample}"
        );
    }

    // Labels the graph lacks are ignored with a note: how many, which, and a case slip.
    let mut sample = head.clone();
    sample += "t90,hi,Greeting\nt91,yo,Greeting\nt92,hm,weather\n";
    std::fs::write(d.join("slips.txt"), &sample).unwrap();
    // A warning: --quiet does not silence it.
    let run = crate::util::sprig(
        d,
        &[
            "propagate",
            "--graph",
            "g.graph",
            "--prior-from",
            "slips.txt",
            "--out",
            "s.jsonl",
            "-q",
        ],
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "warning: --prior-from ignores 3 labelled lines of slips.txt with a label the graph \
             lacks: \"Greeting\" (2), \"weather\" (1) (\"Greeting\" differs from the \
             graph's \"greeting\" only in case)"
        ),
        "{stderr}"
    );
    // With none of the graph's labels, the message says how the file was read.
    std::fs::write(
        d.join("none.txt"),
        "id,text,label\nt1,hi,Greeting\nt2,yo,\n",
    )
    .unwrap();
    let err = prior_from_fails(d, "g.graph", "none.txt");
    assert!(
        err.contains(
            "none.txt: --prior-from needs lines labelled with the graph's labels; none is (read \
             as csv (the --format of the graph's corpus, which has this extension too) with \
             text field \"text\" and label field \"label\": 2 records, 1 labelled, with \
             labels the graph lacks: \"Greeting\" (1)) (\"Greeting\" differs from the \
             graph's \"greeting\" only in case)"
        ),
        "{err}"
    );

    // `--prior LABEL = WEIGHT`: both sides trimmed.
    crate::util::toy_graph(d, "toy.graph");
    let priors = |a: &str, b: &str, out: &str| {
        let args = [
            "propagate",
            "-q",
            "--graph",
            "toy.graph",
            "--prior",
            a,
            "--prior",
            b,
        ];
        ok(d, &[&args[..], &["--out", out]].concat());
        std::fs::read(d.join(out)).unwrap()
    };
    assert_eq!(
        priors("sports = 0.9", " politics=0.1", "spaced.jsonl"),
        priors("sports=0.9", "politics=0.1", "tight.jsonl")
    );
    // An edge list has no corpus fields: the advice says what a sample looks like.
    std::fs::write(d.join("body.csv"), "body,intent\nhi,sports\n").unwrap();
    let err = prior_from_fails(d, "toy.graph", "body.csv");
    assert!(
        err.contains("--prior-from on an edge-list graph reads a labelled sample")
            && err.contains("body.csv:1: header row has no \"text\" column")
            && !err.contains("--text-field"),
        "{err}"
    );
    // A sample without a label column says so, not that none of its lines is labelled.
    std::fs::write(d.join("unlabelled.csv"), "text\nhi\n").unwrap();
    let err = prior_from_fails(d, "toy.graph", "unlabelled.csv");
    assert!(
        err.contains("unlabelled.csv:1: header row has no \"label\" column"),
        "{err}"
    );
}

#[test]
fn a_negative_number_reaches_the_flags_range_check() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    crate::util::toy_graph(d, "toy.graph");
    let corpus = repo("corpora/tiny/intents.jsonl").display().to_string();
    let propagate = ["propagate", "--graph", "toy.graph", "--out", "o.jsonl"];
    for (args, needle) in [
        (
            &[&propagate[..], &["--tolerance", "-1"]].concat(),
            "invalid --tolerance: must be finite and >= 0, got -1",
        ),
        (
            &[&propagate[..], &["--damping", "-0.1"]].concat(),
            "invalid --damping",
        ),
        (
            &[&propagate[..], &["--threads", "-1"]].concat(),
            "-1 is not in 0..=1024",
        ),
        // Unsigned flags: the parse's own "invalid digit" would hide the sign.
        (
            &[&propagate[..], &["--top-k", "-1"]].concat(),
            "invalid value '-1' for '--top-k <TOP_K>': expected a whole number, 0 or more",
        ),
        (
            &[&propagate[..], &["--iterations=-30"]].concat(),
            "invalid value '-30' for '--iterations <ITERATIONS>': expected a whole number",
        ),
        (
            &[
                "graph",
                "--corpus",
                &corpus,
                "--out",
                "g.graph",
                "--min-sim",
                "-0.1",
            ][..]
                .to_vec(),
            "invalid --min-sim",
        ),
    ] {
        let out = crate::util::sprig(d, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(needle) && !err.contains("unexpected argument"),
            "{args:?}: {err}"
        );
    }
}

/// Edge weights that dwarf the seed term (μ1) make Expander's seeds weak and its steps tiny,
/// so that the tolerance can stop it far from its fixed point: `propagate` warns, and does
/// not on a graph of ordinary weights, nor for an algorithm without that seed term. The
/// ratio is the median over seed nodes, each node's seed weights summed.
#[test]
fn propagate_warns_when_edge_weights_dwarf_the_seed_term() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cycle = |w: &str| {
        ["a\tb", "b\tc", "c\td", "d\ta"]
            .map(|e| format!("{e}\t{w}\n"))
            .concat()
    };
    std::fs::write(d.join("s.tsv"), "a\tx\nc\ty\n").unwrap();
    let propagate = |extra: &[&str]| {
        let args = ["propagate", "--graph", "g.graph", "--out", "o.jsonl", "-q"];
        crate::util::ok_stderr(d, &[&args[..], extra].concat())
    };
    // Weight 50: the median is 100 exactly, which is not above the threshold. Degree
    // 2 · 3000 against μ1 · 1 warns; the last graph built (3000) serves the checks after the
    // loop.
    for (w, warned) in [("1", false), ("50", false), ("3000", true)] {
        std::fs::write(d.join("e.tsv"), cycle(w)).unwrap();
        ok(
            d,
            &[
                "graph", "--edges", "e.tsv", "--seeds", "s.tsv", "--out", "g.graph", "-q",
            ],
        );
        let err = propagate(&[]);
        assert_eq!(err.contains("outweigh"), warned, "weight {w}: {err}");
        assert_eq!(
            err.contains("warning: a seed's edges outweigh its seed term 6000 times over"),
            warned,
            "weight {w}: {err}"
        );
    }
    // The seed term is Expander's: the other algorithms have none to outweigh.
    for algorithm in ["lp", "mad"] {
        let err = propagate(&["--algorithm", algorithm]);
        assert!(!err.contains("outweigh"), "{algorithm}: {err}");
    }
    // A node seeded twice counts its weights together, and the median is the upper one of
    // two: a's 6000 / (0.5 + 0.25) = 8000 against c's 6000 / 1.
    std::fs::write(d.join("s2.tsv"), "a\tx\t0.5\na\ty\t0.25\nc\ty\t1\n").unwrap();
    let err = propagate(&["--seeds", "s2.tsv"]);
    assert!(
        err.contains("warning: a seed's edges outweigh its seed term 8000 times over"),
        "{err}"
    );
}

/// `-` reads standard input for corpora, seeds and labels, not for a graph or a model: those
/// are refused by name, where the loader used to report a missing file called `-`.
#[test]
fn standard_input_is_refused_by_name_for_graphs_and_models() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for args in [
        &["propagate", "--graph", "-", "--out", "o.jsonl"][..],
        &["predict", "--model", "-", "hello"],
        &["eval", "--model", "-", "--data", "t.jsonl"],
        &["inspect", "-"],
    ] {
        let out = crate::util::sprig(d, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("invalid value '-'")
                && err.contains("standard input (`-`) is not accepted for a graph or model")
                && !err.contains("No such file"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn bad_input_fails_with_file_line_and_field_and_leaves_no_output() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.jsonl"),
        "{\"text\": \"hello\"}\n{\"text\": 42}\n{\"text\": \"bye\"}\n",
    )
    .unwrap();
    let err = fails(
        dir.path(),
        &["graph", "--corpus", "bad.jsonl", "--out", "bad.graph"],
    );
    assert!(
        err.contains("bad.jsonl:2: field \"text\": expected a string, found a number"),
        "{err}"
    );
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "only the input remains: {left:?}");

    let out = crate::util::sprig(
        dir.path(),
        &[
            "graph",
            "--corpus",
            "bad.jsonl",
            "--out",
            "ok.graph",
            "--skip-invalid",
        ],
    );
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("skipped 1 invalid record;"), "{stderr}");
    assert!(stderr.contains("bad.jsonl:2:"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 records"));
}

#[test]
fn seeds_naming_unknown_records_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.tsv"), "t01\tthanks\nnope\tthanks\n").unwrap();
    let corpus = repo("corpora/tiny/intents.jsonl");
    let err = fails(
        dir.path(),
        &[
            "graph",
            "--corpus",
            corpus.to_str().unwrap(),
            "--seeds",
            "s.tsv",
            "--out",
            "g.graph",
        ],
    );
    assert!(
        err.contains("s.tsv:2: seed names unknown record id \"nope\""),
        "{err}"
    );
}

#[test]
fn a_damaged_graph_is_refused_by_inspect() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = repo("corpora/tiny/intents.jsonl");
    ok(
        dir.path(),
        &[
            "graph",
            "--corpus",
            corpus.to_str().unwrap(),
            "--out",
            "g.graph",
            "-q",
        ],
    );
    let path = dir.path().join("g.graph");
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    let err = fails(dir.path(), &["inspect", "g.graph"]);
    assert!(err.contains("checksum mismatch"), "{err}");
}

/// `run` writes the texts worth labelling next and says so; filled in and given back with
/// `--seeds`, they reach propagate and train as seeds.
#[test]
fn run_lists_texts_to_label_next_and_takes_them_back_as_seeds() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let corpus = repo("corpora/tiny/intents.jsonl");
    let test = repo("corpora/tiny/test.jsonl");
    let (corpus, test) = (corpus.to_str().unwrap(), test.to_str().unwrap());
    let run = ["run", "--corpus", corpus, "--test", test, "-q", "--workdir"];
    let out = ok(d, &[&run[..], &["one"]].concat());
    let listed = std::fs::read_to_string(d.join("one/suggestions.jsonl")).unwrap();
    let n = listed.lines().count();
    assert!(n > 0, "{out}");
    assert!(
        out.contains(&format!(
            "== to label next: {} lists {n} texts; fill in their \"label\"",
            d.join("one/suggestions.jsonl").display()
        )) || out.contains(&format!("one/suggestions.jsonl lists {n} texts")),
        "{out}"
    );
    // Filled in, under another name, and given back.
    std::fs::write(
        d.join("labelled.jsonl"),
        listed.replace("\"label\":null", "\"label\":\"thanks\""),
    )
    .unwrap();
    let out = ok(
        d,
        &[&run[..], &["two", "--seeds", "labelled.jsonl"]].concat(),
    );
    for step in ["== 2/4 propagate", "== 3/4 train"] {
        let line = out.lines().find(|l| l.starts_with(step)).unwrap();
        assert!(line.contains("--seeds labelled.jsonl"), "{line}");
    }
    let seeded = std::fs::read_to_string(d.join("two/labels.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| l.contains("\"seed\":true"))
        .count();
    let before = std::fs::read_to_string(d.join("one/labels.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| l.contains("\"seed\":true"))
        .count();
    assert_eq!(seeded, before + n);
    // The workdir's own list cannot be the seeds: it is an output.
    let err = fails(
        d,
        &[&run[..], &["one", "--seeds", "one/suggestions.jsonl"]].concat(),
    );
    assert!(err.contains("--seeds"), "{err}");
}

#[test]
fn run_chains_the_four_stages_like_the_readme_says() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = repo("corpora/tiny/intents.jsonl");
    let test = repo("corpora/tiny/test.jsonl");
    let run = |test: &std::path::Path, workdir: &str, extra: &[&str]| {
        let mut args = vec![
            "run",
            "--corpus",
            corpus.to_str().unwrap(),
            "--test",
            test.to_str().unwrap(),
            "--workdir",
            workdir,
        ];
        args.extend(extra);
        crate::util::sprig(dir.path(), &args)
    };
    let first = run(&test, "work", &["-q"]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let out = String::from_utf8_lossy(&first.stdout).into_owned();
    for step in [
        "1/4 graph",
        "2/4 propagate",
        "3/4 train",
        "4/4 eval",
        "accuracy",
    ] {
        assert!(out.contains(step), "{step} missing from:\n{out}");
    }
    for file in ["corpus.graph", "labels.jsonl", "model.sprig"] {
        assert!(dir.path().join("work").join(file).exists(), "{file}");
    }
    let predicted = ok(
        dir.path(),
        &[
            "predict",
            "--model",
            "work/model.sprig",
            "thank you so much",
        ],
    );
    assert!(!predicted.trim().is_empty());
    // Evaluated on its own corpus: said, since the accuracy then measures memory.
    let same = run(&corpus, "same", &[]);
    assert!(same.status.success());
    let err = String::from_utf8_lossy(&same.stderr);
    assert!(err.contains("note: the test file is the corpus"), "{err}");
    let other = run(&test, "work2", &[]);
    assert!(!String::from_utf8_lossy(&other.stderr).contains("the test file is the corpus"));

    // The same corpus and test file as CSV under other column names, in files whose names
    // do not tell the format, and the test file without the id column: run passes the
    // format and the text and label fields to every step, the id field to graph and train.
    let d = dir.path();
    as_csv(d, &corpus, "c.data", true);
    as_csv(d, &test, "t.data", false);
    let run = [
        "run",
        "--corpus",
        "c.data",
        "--test",
        "t.data",
        "--workdir",
        "csv",
        "-q",
    ];
    let csv_out = ok(d, &[&run[..], &CSV_FIELDS, &["--id-field", "key"]].concat());
    let eval_step = csv_out
        .lines()
        .find(|l| l.starts_with("== 4/4 eval"))
        .unwrap();
    assert!(
        eval_step.contains("--format csv --text-field body --label-field intent")
            && !eval_step.contains("--id-field"),
        "{csv_out}"
    );
    // eval's summary line: examples, accuracy, macro-F1.
    let scores = |out: &str| {
        out.lines()
            .find(|l| l.starts_with("examples "))
            .map(str::to_owned)
    };
    assert!(scores(&out).is_some(), "{out}");
    assert_eq!(scores(&csv_out), scores(&out));
    // The model header records the source file, so compare what it predicts.
    let predict = |w: &str| {
        let m = format!("{w}/model.sprig");
        ok(
            d,
            &[
                "predict",
                "--model",
                &m,
                "thank you so much",
                "see you later",
                "hm?",
            ],
        )
    };
    assert_eq!(predict("csv"), predict("work"));
}

#[test]
fn a_line_holding_two_edge_list_nodes_cannot_name_a_seed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let edges = repo("graphs/toy/edges.tsv").display().to_string();
    ok(d, &["graph", "-q", "--edges", &edges, "--out", "toy.graph"]);
    // kNN flags mean nothing for an edge list.
    let out = crate::util::sprig(
        d,
        &["graph", "--edges", &edges, "--k", "5", "--out", "x.graph"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be used with"));
    // Line 1 of the edge list is `a1<TAB>a2<TAB>0.9`: two nodes.
    std::fs::write(
        d.join("by_line.jsonl"),
        "{\"line\":1,\"label\":\"sports\"}\n",
    )
    .unwrap();
    let err = fails(
        d,
        &[
            "propagate",
            "--graph",
            "toy.graph",
            "--seeds",
            "by_line.jsonl",
            "--out",
            "l.jsonl",
        ],
    );
    assert!(
        err.contains("by_line.jsonl:1") && err.contains("more than one node"),
        "{err}"
    );
    // Line 11 is `a5<TAB>b5<TAB>0.1`, where only b5 first appears: it used to seed b5.
    // Unknown names are nodes, not record ids.
    for (file, contents, needle) in [
        (
            "line11.jsonl",
            "{\"line\": 11, \"label\": \"x\"}\n",
            "line11.jsonl:1: line 11: a line of an edge list holds more than one node",
        ),
        (
            "zz.tsv",
            "a1\tsports\nzz\tx\n",
            "zz.tsv:2: seed names unknown node \"zz\"",
        ),
    ] {
        std::fs::write(d.join(file), contents).unwrap();
        let args = ["propagate", "--graph", "toy.graph", "--seeds", file];
        let err = fails(d, &[&args[..], &["--out", "l.jsonl"]].concat());
        assert!(err.contains(needle), "{err}");
    }
    std::fs::write(
        d.join("by_id.jsonl"),
        "{\"id\":\"a2\",\"label\":\"sports\"}\n",
    )
    .unwrap();
    ok(
        d,
        &[
            "propagate",
            "-q",
            "--graph",
            "toy.graph",
            "--seeds",
            "by_id.jsonl",
            "--out",
            "l.jsonl",
        ],
    );
    let first = std::fs::read_to_string(d.join("l.jsonl")).unwrap();
    let a2 = first.lines().find(|l| l.contains("\"id\":\"a2\"")).unwrap();
    assert!(a2.contains("\"seed\":true"), "{a2}");
}

#[test]
fn a_graph_without_edges_is_written_with_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let corpus = repo("corpora/tiny/intents.jsonl").display().to_string();
    let out = crate::util::sprig(
        d,
        &[
            "graph", "--corpus", &corpus, "--min-df", "100000", "--out", "g.graph",
        ],
    );
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("g.graph has no edge"), "{err}");
    let out = String::from_utf8_lossy(&out.stdout);
    assert!(out.contains(" 0 edges"), "{out}");
    // One text alone has no other to link to: no edge is missing, and nothing is said.
    std::fs::write(
        d.join("one.jsonl"),
        "{\"text\":\"hello\",\"label\":\"a\"}\n",
    )
    .unwrap();
    let err = ok_stderr(d, &["graph", "--corpus", "one.jsonl", "--out", "one.graph"]);
    assert_eq!(err, "");
}

#[test]
fn a_parameter_of_another_algorithm_is_refused_and_help_defaults_hold() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    crate::util::toy_graph(d, "g.graph");
    let run = |extra: &[&str]| {
        let mut args = vec!["propagate", "-q", "--graph", "g.graph", "--out", "l.jsonl"];
        args.extend(extra);
        args.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let as_str = |v: &[String]| v.iter().map(String::as_str).collect::<Vec<_>>().join(" ");
    for (extra, flag) in [
        (&["--alpha", "0.5"][..], "--alpha"),
        (&["--algorithm", "lp", "--mu2", "0.1"], "--mu2"),
        (&["--algorithm", "mad", "--damping", "0.5"], "--damping"),
        (&["--algorithm", "spreading", "--beta", "3"], "--beta"),
    ] {
        let args = run(extra);
        let err = fails(d, &args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(
            err.contains(&format!("{flag} is a parameter of")),
            "{}: {err}",
            as_str(&args)
        );
    }
    let args = run(&["--algorithm", "spreading", "--alpha", "0.5"]);
    ok(d, &args.iter().map(String::as_str).collect::<Vec<_>>());
    // Class priors are cmn's: with --class-prior none they would be dropped unsaid.
    std::fs::write(
        d.join("s.jsonl"),
        "{\"text\": \"a\", \"label\": \"sports\"}\n",
    )
    .unwrap();
    for extra in [&["--prior", "sports=1"][..], &["--prior-from", "s.jsonl"]] {
        let args = run(&[&["--class-prior", "none"][..], extra].concat());
        let err = fails(d, &args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(
            err.contains(
                "--prior and --prior-from give priors to cmn: they cannot go with --class-prior \
                 none"
            ),
            "{}: {err}",
            as_str(&args)
        );
    }
    // lp and spreading warn when the top-K truncation parts them from scikit-learn.
    let note = |k: &str| {
        let args = [
            "propagate",
            "--graph",
            "g.graph",
            "--out",
            "l.jsonl",
            "--algorithm",
            "lp",
        ];
        let out = crate::util::sprig(d, &[&args[..], &["--top-k", k]].concat());
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stderr).contains("differs from scikit-learn's")
    };
    assert!(note("1"), "2 labels, K = 1");
    assert!(!note("2"));
    // Range errors name the flag the user typed, not the library's field.
    for (extra, want) in [
        (
            &["--mu1", "0"][..],
            "invalid --mu1: must be > 0 and <= 1e12",
        ),
        (&["--mu3", "inf"], "invalid --mu3: must be >= 0 and <= 1e12"),
        (&["--top-k", "0"], "invalid --top-k:"),
    ] {
        let args = run(extra);
        let err = fails(d, &args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(err.contains(want), "{}: {err}", as_str(&args));
    }
    // The defaults the help states are the library's.
    let c = sprig::propagate::PropagationConfig::default();
    help_states_defaults(
        d,
        "propagate",
        &[
            ("--mu1", c.seed_weight.to_string()),
            ("--mu2", c.smoothness_weight.to_string()),
            ("--mu3", c.prior_weight.to_string()),
            ("--alpha", c.alpha.to_string()),
            ("--beta", c.beta.to_string()),
        ],
    );
}

/// `--class-prior` maps to the library's class prior: the default and `cmn` write what
/// [`sprig::propagate::PropagationConfig::default`] gives, `none` what no correction gives
/// (on the tiny corpus, whose seeds are not balanced, the two differ).
#[test]
fn class_prior_flags_give_the_librarys_outputs() {
    use sprig::propagate::{propagate, write_jsonl, ClassPrior, Nodes, PropagationConfig};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    crate::util::tiny_graph(d, "t.graph");
    let graph = sprig::graph::Graph::load(d.join("t.graph")).unwrap();
    let library = |class_prior: ClassPrior| {
        let config = PropagationConfig {
            class_prior,
            ..PropagationConfig::default()
        };
        let mut file = Vec::new();
        write_jsonl(
            &mut file,
            &graph,
            &propagate(&graph, &config).unwrap(),
            Nodes::Texts,
        )
        .unwrap();
        file
    };
    let cli = |extra: &[&str]| {
        let args = ["propagate", "-q", "--graph", "t.graph", "--out", "o.jsonl"];
        ok(d, &[&args[..], extra].concat());
        std::fs::read(d.join("o.jsonl")).unwrap()
    };
    let cmn = library(PropagationConfig::default().class_prior);
    let none = library(ClassPrior::None);
    assert_ne!(cmn, none, "the correction changes the output");
    assert_eq!(cli(&[]), cmn);
    assert_eq!(cli(&["--class-prior", "cmn"]), cmn);
    assert_eq!(cli(&["--class-prior", "none"]), none);
}

/// Checks that `sprig <command> --help` gives each flag's `[default: VALUE]`.
fn help_states_defaults(d: &std::path::Path, command: &str, flags: &[(&str, String)]) {
    let help = ok(d, &[command, "--help"]);
    for (flag, value) in flags {
        let at = help.find(&format!("      {flag} ")).expect(flag);
        let text = &help[at + 6..];
        let end = text[flag.len()..]
            .find("\n      --")
            .map_or(text.len(), |e| e + flag.len());
        let entry = text[..end].replace('\n', " ");
        assert!(
            entry.contains(&format!("[default: {value}]")),
            "{command} {flag}: {entry}"
        );
    }
}

#[test]
fn flags_of_the_other_model_kind_are_refused_and_help_defaults_hold() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let corpus = repo("corpora/tiny/intents.jsonl").display().to_string();
    for (extra, flag) in [
        (&["--kind", "table", "--hidden", "64"][..], "--hidden"),
        (&["--kind", "table", "--float"], "--float"),
        (&["--table-k", "2"], "--table-k"),
        (&["--kind", "table", "--epochs", "3"], "--epochs"),
        (&["--kind", "table", "--lr", "0.1"], "--lr"),
        (&["--kind", "table", "--ema", "0"], "--ema"),
        (&["--kind", "table", "--seed", "3"], "--seed"),
        (
            &["--kind", "table", "--calibration", "none"],
            "--calibration",
        ),
    ] {
        let mut args = vec!["train", "--corpus", &corpus, "--out", "m.sprig"];
        args.extend(extra);
        let err = fails(d, &args);
        assert!(err.contains(&format!("{flag} applies to --kind")), "{err}");
    }
    // Flags of propagated labels need --labels; kNN flags need a kNN graph.
    for args in [
        &[
            "train",
            "--corpus",
            &corpus,
            "--out",
            "m.sprig",
            "--min-confidence",
            "0.5",
        ][..],
        &[
            "train", "--corpus", &corpus, "--out", "m.sprig", "--lambda", "2",
        ],
    ] {
        let out = crate::util::sprig(d, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("required arguments were not provided:\n  --labels"),
            "{err}"
        );
    }
    for flag in [["--k", "3"], ["--min-sim", "0.5"]] {
        let graph = [
            "graph",
            "--corpus",
            &corpus,
            "--kind",
            "bipartite",
            "--out",
            "b.graph",
        ];
        let err = fails(d, &[&graph[..], &flag].concat());
        assert!(
            err.contains(&format!("{} applies to --kind knn", flag[0])),
            "{err}"
        );
    }
    // Char flags without char n-grams, and a char weight nothing reads, are refused too.
    for (args, needle) in [
        (
            &[
                "graph",
                "--corpus",
                &corpus,
                "--out",
                "g.graph",
                "--features",
                "u,b",
                "--char-max",
                "5",
            ][..],
            "--char-max is for char n-grams, and --features has no `c`",
        ),
        (
            &[
                "train",
                "--corpus",
                &corpus,
                "--out",
                "m.sprig",
                "--kind",
                "table",
                "--char-weight",
                "2",
            ],
            "--char-weight would be ignored: --kind table",
        ),
        (
            &[
                "train",
                "--corpus",
                &corpus,
                "--out",
                "m.sprig",
                "--augment",
                "0",
                "--char-weight",
                "2",
            ],
            "--char-weight would be ignored: --augment 0",
        ),
    ] {
        let err = fails(d, args);
        assert!(err.contains(needle), "{err}");
    }
    let f = sprig::text::FeatureConfig::default();
    help_states_defaults(
        d,
        "graph",
        &[
            ("--char-min", f.char_min.to_string()),
            ("--char-max", f.char_max.to_string()),
            ("--char-weight", f.char_weight.to_string()),
            ("--k", sprig::build::GraphConfig::default().k.to_string()),
            (
                "--min-sim",
                sprig::build::GraphConfig::default().min_sim.to_string(),
            ),
        ],
    );
    // The joint trainer's flags need --joint.
    let mut args = vec![
        "train",
        "--corpus",
        &corpus,
        "--out",
        "m.sprig",
        "--joint-dim",
        "8",
    ];
    let out = crate::util::sprig(d, &args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("required arguments were not provided:\n  --joint"),
        "{err}"
    );
    args.push("--joint");
    args.extend(["--epochs", "1", "--augment", "0"]);
    ok(d, &args);
    let c = sprig::train::TrainConfig::default();
    help_states_defaults(
        d,
        "train",
        &[
            ("--hidden", c.hidden[0].to_string()),
            ("--epochs", c.epochs.to_string()),
            ("--patience", c.patience.to_string()),
            ("--lr", c.learning_rate.to_string()),
            (
                "--lr-schedule",
                serde_json::to_value(c.lr_schedule)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_string(),
            ),
            ("--batch", c.batch_size.to_string()),
            ("--validation", c.validation.to_string()),
            ("--input-dropout", c.input_dropout.to_string()),
            ("--ema", c.ema_decay.to_string()),
            ("--seed", c.seed.to_string()),
            ("--augment", c.augment.to_string()),
            (
                "--calibration",
                serde_json::to_value(c.calibration)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_string(),
            ),
            ("--table-k", c.table_k.to_string()),
            ("--table-min-texts", c.table_min_texts.to_string()),
        ],
    );
}

#[test]
fn identical_texts_with_different_labels_get_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("c.jsonl"),
        "{\"text\":\"ok\",\"label\":\"a\"}\n{\"text\":\"ok\",\"label\":\"b\"}\n\
         {\"text\":\"hello there\",\"label\":\"a\"}\n{\"text\":\"ok then\"}\n",
    )
    .unwrap();
    let out = crate::util::sprig(d, &["graph", "--corpus", "c.jsonl", "--out", "g.graph"]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("1 node carries seeds of more than one label"),
        "{err}"
    );
    assert!(err.contains("e.g. \"ok\""), "{err}");
    // Two seeded nodes, one with two labels: the summary counts both ways.
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains("2 seed nodes (3 seed labels) over 2 labels"),
        "{summary}"
    );
}

#[test]
fn labels_differing_only_in_case_get_a_note_in_graph_and_train() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("c.jsonl"),
        "{\"text\":\"refund please\",\"label\":\"Billing\"}\n\
         {\"text\":\"charged twice\",\"label\":\" billing \"}\n\
         {\"text\":\"where is my parcel\",\"label\":\"shipping\"}\n\
         {\"text\":\"parcel is late\"}\n",
    )
    .unwrap();
    for args in [
        &["graph", "--corpus", "c.jsonl", "--out", "g.graph"][..],
        &[
            "train", "--corpus", "c.jsonl", "--out", "m.sprig", "--epochs", "1",
        ][..],
    ] {
        let out = crate::util::sprig(d, args);
        assert!(out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        // The spaces are trimmed (as in CSV), the case is kept and named.
        assert!(
            err.contains(
                "differ only in case or Unicode form are different labels: \"Billing\" and \
                 \"billing\""
            ),
            "{args:?}: {err}"
        );
    }
    // No note when every label is spelt one way.
    std::fs::write(
        d.join("ok.jsonl"),
        "{\"text\":\"a b\",\"label\":\"x\"}\n{\"text\":\"c d\",\"label\":\"y\"}\n",
    )
    .unwrap();
    let out = crate::util::sprig(d, &["graph", "--corpus", "ok.jsonl", "--out", "g.graph"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("differ only in case"));
}

#[test]
fn a_corpus_without_seeds_gets_a_note_naming_the_label_field() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("c.csv"),
        "text,intent\nhello there,greet\nbye now,leave\n",
    )
    .unwrap();
    let note = |extra: &[&str]| {
        let mut args = vec!["graph", "--corpus", "c.csv", "--out", "g.graph"];
        args.extend(extra);
        let out = crate::util::sprig(d, &args);
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stderr).contains("--label-field")
    };
    assert!(note(&[]), "a misnamed label column is pointed out");
    assert!(!note(&["--label-field", "intent"]));
    // A column named explicitly must exist: a typo is an error, not a corpus without seeds.
    for (flag, name) in [("--label-field", "intnet"), ("--id-field", "key")] {
        let err = crate::util::fails(
            d,
            &["graph", "--corpus", "c.csv", "--out", "g.graph", flag, name],
        );
        assert!(
            err.contains(&format!("c.csv:1: header row has no \"{name}\" column"))
                && err.contains("[\"text\", \"intent\"]")
                && err.contains(flag),
            "{err}"
        );
    }
}

#[test]
fn a_seed_file_trains_as_seeds_like_the_corpus_labels_it_replaces() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The tiny corpus twice: as shipped (8 labelled records), and with its labels moved out
    // into a seed file that names their lines.
    let shipped = repo("corpora/tiny/intents.jsonl");
    let (mut bare, mut seeds) = (String::new(), String::new());
    for (i, line) in std::fs::read_to_string(&shipped)
        .unwrap()
        .lines()
        .enumerate()
    {
        let mut record: serde_json::Value = serde_json::from_str(line).unwrap();
        if let Some(label) = record.as_object_mut().unwrap().remove("label") {
            let seed = serde_json::json!({"line": i + 1, "label": label});
            seeds.push_str(&format!("{seed}\n"));
        }
        bare.push_str(&format!("{record}\n"));
    }
    assert_eq!(seeds.lines().count(), 8);
    std::fs::write(d.join("bare.jsonl"), bare).unwrap();
    std::fs::write(d.join("seeds.jsonl"), seeds).unwrap();
    let shipped = shipped.to_str().unwrap();
    let train = |corpus: &str, labels: &str, out: &str, extra: &[&str]| {
        let mut args = vec![
            "train", "--corpus", corpus, "--labels", labels, "--out", out,
        ];
        args.extend(["--epochs", "5", "--augment", "0"]);
        args.extend(extra);
        let run = crate::util::sprig(d, &args);
        assert!(run.status.success(), "{run:?}");
        (
            String::from_utf8_lossy(&run.stderr).into_owned(),
            std::fs::read(d.join(out)).unwrap(),
        )
    };
    ok(d, &["graph", "--corpus", shipped, "--out", "a.graph", "-q"]);
    ok(
        d,
        &["propagate", "--graph", "a.graph", "--out", "a.jsonl", "-q"],
    );
    let (_, from_corpus) = train(shipped, "a.jsonl", "a.sprig", &[]);

    ok(
        d,
        &["graph", "--corpus", "bare.jsonl", "--out", "b.graph", "-q"],
    );
    let propagate = ["propagate", "--graph", "b.graph", "--seeds", "seeds.jsonl"];
    ok(d, &[&propagate[..], &["--out", "b.jsonl", "-q"]].concat());
    assert_eq!(
        std::fs::read(d.join("a.jsonl")).unwrap(),
        std::fs::read(d.join("b.jsonl")).unwrap(),
        "the seed file propagates as the corpus labels do"
    );
    let (note, without) = train("bare.jsonl", "b.jsonl", "b.sprig", &[]);
    assert!(
        note.contains("say \"seed\": true for a record with no label here"),
        "{note}"
    );
    assert!(note.contains("--seeds"), "{note}");
    assert_ne!(without, from_corpus);
    let (quiet, with) = train(
        "bare.jsonl",
        "b.jsonl",
        "c.sprig",
        &["--seeds", "seeds.jsonl"],
    );
    assert!(!quiet.contains("note:"), "{quiet}");
    assert_eq!(
        with, from_corpus,
        "the seed file's model is the corpus labels' model"
    );

    // Labels propagated from half the seed file: the corpus labels the other four records,
    // which that labels file marks `"seed": false` (a note that a missed mutant lost).
    let all = std::fs::read_to_string(d.join("seeds.jsonl")).unwrap();
    let half: String = all.lines().take(4).map(|l| format!("{l}\n")).collect();
    std::fs::write(d.join("half.jsonl"), half).unwrap();
    ok(
        d,
        &[&propagate[..4], &["half.jsonl", "--out", "h.jsonl", "-q"]].concat(),
    );
    let (note, _) = train(shipped, "h.jsonl", "h.sprig", &[]);
    let disagree = "4 lines of h.jsonl say \"seed\": false for a record labelled here";
    assert!(note.contains(disagree), "{note}");

    // A seed file that relabels a corpus seed (line 1 is a greeting in the corpus).
    std::fs::write(d.join("relabel.tsv"), "t01\tthanks\n").unwrap();
    let graph = ["graph", "--corpus", shipped, "--seeds", "relabel.tsv"];
    ok(d, &[&graph[..], &["--out", "r.graph", "-q"]].concat());
    ok(
        d,
        &["propagate", "--graph", "r.graph", "--out", "r.jsonl", "-q"],
    );
    let (note, _) = train(shipped, "r.jsonl", "r.sprig", &[]);
    let moved = "1 line of r.jsonl says \"seed\": true for a record labelled here whose \
                 propagated top label is another label";
    assert!(note.contains(moved), "{note}");
    let (quiet, _) = train(shipped, "r.jsonl", "r.sprig", &["--seeds", "relabel.tsv"]);
    assert!(!quiet.contains("note:"), "{quiet}");
}

#[test]
fn out_dev_stdout_writes_through_the_descriptor_and_keeps_the_summary_apart() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let corpus = crate::util::tiny_graph(d, "g.graph");
    let corpus = corpus.as_str();
    let graph = std::fs::read(d.join("g.graph")).unwrap();
    // Standard output redirected in append mode (`>> app`) onto a file with content.
    std::fs::write(d.join("app"), "header\n").unwrap();
    let app = std::fs::OpenOptions::new()
        .append(true)
        .open(d.join("app"))
        .unwrap();
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_sprig"))
        .current_dir(d)
        .args(["graph", "--corpus", corpus, "--out", "/dev/stdout", "-q"])
        .stdout(app)
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    // The summary went to stderr; the file holds its old content, then the graph.
    assert!(String::from_utf8_lossy(&run.stderr).contains("/dev/stdout: knn graph"));
    let mut want = b"header\n".to_vec();
    want.extend(&graph);
    assert!(
        std::fs::read(d.join("app")).unwrap() == want,
        "header + graph"
    );
    // `--out -` is standard output too, as `--corpus -` is standard input.
    let run = crate::util::sprig(d, &["graph", "--corpus", corpus, "--out", "-", "-q"]);
    assert!(run.status.success() && run.stdout == graph, "{run:?}");
    assert!(!d.join("-").exists());
    // A model to standard output: the same bytes as to a file, its size in the summary.
    let train = [
        "train",
        "--corpus",
        corpus,
        "--epochs",
        "2",
        "--augment",
        "0",
        "--out",
    ];
    ok(d, &[&train[..], &["m.sprig", "-q"]].concat());
    let run = crate::util::sprig(d, &[&train[..], &["-", "-q"]].concat());
    let model = std::fs::read(d.join("m.sprig")).unwrap();
    assert!(run.status.success() && run.stdout == model, "{run:?}");
    let summary = String::from_utf8_lossy(&run.stderr);
    assert!(
        summary.contains(&format!("; {} bytes", model.len())),
        "{summary}"
    );
}

#[test]
fn hashtag_nodes_quoted_keys_and_folders_survive_the_edge_list_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // `#tag` starts an edge line (it holds TABs); `# note` with no TAB is a comment.
    std::fs::write(
        d.join("e.tsv"),
        "# note\n#blessed\tb\t1\nb\t\"quoted\" key\t1\n\"open\tb\t2\n",
    )
    .unwrap();
    std::fs::write(d.join("s.tsv"), "#blessed\tjoy\n").unwrap();
    let out = crate::util::sprig(
        d,
        &[
            "graph", "--edges", "e.tsv", "--seeds", "s.tsv", "--out", "e.graph",
        ],
    );
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains("4 nodes") && summary.contains("3 edges"),
        "{summary}"
    );
    // Other tools take every `#` line for a comment: the note says this one was an edge.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("1 line starting with # was read as an edge"),
        "{err}"
    );
    // sprig's own edge export reads back as the same graph.
    let exported = ok(d, &["inspect", "e.graph", "--edges"]);
    std::fs::write(d.join("back.tsv"), &exported).unwrap();
    let again = ok(
        d,
        &["graph", "-q", "--edges", "back.tsv", "--out", "back.graph"],
    );
    assert!(
        again.contains("4 nodes") && again.contains("3 edges"),
        "{again}"
    );
    // The TSV output reads field by field with a standard CSV reader (RFC 4180 quoting):
    // no field starts with a quote, so none is taken for a quoted one.
    ok(
        d,
        &[
            "propagate",
            "-q",
            "--graph",
            "e.graph",
            "--format",
            "tsv",
            "--out",
            "l.tsv",
        ],
    );
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b'\t')
        .has_headers(false)
        .flexible(true)
        .from_path(d.join("l.tsv"))
        .unwrap();
    let keys: Vec<String> = reader.records().map(|r| r.unwrap()[0].to_owned()).collect();
    assert_eq!(keys, ["#blessed", "b", "\\\"quoted\\\" key", "\\\"open"]);
    // --all-nodes has nothing to add on a graph without feature nodes.
    let err = fails(
        d,
        &[
            "propagate",
            "--graph",
            "e.graph",
            "--all-nodes",
            "--out",
            "x.jsonl",
        ],
    );
    assert!(
        err.contains("--all-nodes") && err.contains("has none"),
        "{err}"
    );
    // A missing output folder is an error before any work, not after it.
    let err = fails(
        d,
        &["propagate", "--graph", "e.graph", "--out", "nodir/x.jsonl"],
    );
    assert!(err.contains("the folder nodir does not exist"), "{err}");
    // So is a folder where the file should go.
    std::fs::create_dir(d.join("adir")).unwrap();
    let err = fails(d, &["propagate", "--graph", "e.graph", "--out", "adir"]);
    assert!(
        err.contains("--out adir: a folder, not a file name"),
        "{err}"
    );
    let err = fails(d, &["propagate", "--graph", "e.graph", "--out", "nodir/"]);
    assert!(
        err.contains("--out nodir/: a folder, not a file name"),
        "{err}"
    );
}

/// Past 20,000 distinct texts the graph build warns of the exact search's cost, or names
/// the budget it searches with: a note from the library's progress callbacks, which the CLI
/// prints unless `--quiet`.
#[test]
fn a_graph_of_many_texts_notes_how_its_search_scales() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 20,001 distinct texts of three words, sharing the second and third with a few hundred
    // others: a cheap search, past the note's threshold by one.
    let lines: String = (0..20_001)
        .map(|i| format!("w{i} x{} y{}\n", i % 97, i % 89))
        .collect();
    std::fs::write(d.join("many.txt"), lines).unwrap();
    let graph = |extra: &[&str]| {
        let mut args = vec!["graph", "--corpus", "many.txt", "--out", "many.graph"];
        args.extend_from_slice(extra);
        ok_stderr(d, &args)
    };
    let err = graph(&["--max-scan", "exact"]);
    assert!(
        err.contains(
            "note: exact kNN over 20001 distinct texts: its time grows with about the square \
             of their number"
        ),
        "{err}"
    );
    let err = graph(&["--max-scan", "500"]);
    assert!(
        err.contains(
            "note: approximate kNN over 20001 distinct texts (a budget of 500 postings a text)"
        ),
        "{err}"
    );
    assert_eq!(graph(&["--max-scan", "500", "-q"]), "");
}

/// `--max-scan`: a small corpus is searched exactly by default (the same bytes as
/// `--max-scan exact`, and no `max_scan` in the header), a budget is recorded in the header
/// and changes the graph here, and bad values or kinds are refused before any work.
#[test]
fn max_scan_is_exact_on_small_corpora_and_recorded_when_a_budget_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = repo("corpora/replies/corpus.jsonl");
    let corpus = corpus.to_str().unwrap();
    let build = |name: &str, extra: &[&str]| {
        let out = dir.path().join(name);
        let mut args = vec![
            "graph",
            "--corpus",
            corpus,
            "--out",
            out.to_str().unwrap(),
            "-q",
        ];
        args.extend_from_slice(extra);
        ok(dir.path(), &args);
        (std::fs::read(&out).unwrap(), out)
    };
    let (auto, auto_path) = build("auto.graph", &[]);
    let (exact, _) = build("exact.graph", &["--max-scan", "exact"]);
    let (cut, cut_path) = build("cut.graph", &["--max-scan", "64"]);
    let (named, _) = build("named.graph", &["--max-scan", "auto"]);
    assert_eq!(auto, exact, "2,198 texts are searched exactly by default");
    assert_eq!(named, auto, "the default, `auto`, can be given by name");
    assert_ne!(
        auto, cut,
        "a budget of 64 postings cuts searches short here"
    );
    let header = |p: &std::path::Path| ok(dir.path(), &["inspect", "--json", p.to_str().unwrap()]);
    assert!(!header(&auto_path).contains("max_scan"));
    assert!(header(&cut_path).contains(r#""max_scan":{"budget":64}"#));
    // A text-feature graph searches nothing: its header names no search either.
    let (_, bipartite_path) = build("b.graph", &["--kind", "bipartite"]);
    assert!(!header(&bipartite_path).contains("max_scan"));
    for bad in ["0", "-3", "fast"] {
        let bad = &format!("--max-scan={bad}");
        // A usage error: clap's, with its usage lines.
        let out = crate::util::sprig(
            dir.path(),
            &["graph", "--corpus", corpus, "--out", "x.graph", bad],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {err}");
        assert!(
            err.contains("expected auto, exact or a number"),
            "{bad}: {err}"
        );
    }
    let err = fails(
        dir.path(),
        &[
            "graph",
            "--corpus",
            corpus,
            "--out",
            "x.graph",
            "--kind",
            "bipartite",
            "--max-scan",
            "9",
        ],
    );
    assert!(err.contains("--max-scan applies to --kind knn"), "{err}");
    assert!(!dir.path().join("x.graph").exists());
}

/// A text whose scores all print as `0.000000` abstains in the file; the summary says so
/// instead of counting only the texts with no mass at all (a review found "0 of 40 texts
/// abstain" above a file of 40 `"label":null` lines).
#[test]
fn the_summary_counts_the_abstentions_the_file_shows() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    crate::util::tiny_graph(d, "t.graph");
    let flags = ["--mu3", "1e7", "--class-prior", "none", "--quiet"];
    let out = ok(
        d,
        &[
            &["propagate", "--graph", "t.graph", "--out", "o.jsonl"][..],
            &flags,
        ]
        .concat(),
    );
    let file = std::fs::read_to_string(d.join("o.jsonl")).unwrap();
    let nulls = file
        .lines()
        .filter(|l| l.contains("\"label\":null"))
        .count();
    assert_eq!(nulls, 40, "{file}");
    assert!(
        out.contains("0 of 40 texts abstain and 40 more whose every score prints as 0.000000"),
        "{out}"
    );
    let out = ok(
        d,
        &[
            "propagate",
            "--graph",
            "t.graph",
            "--out",
            "p.jsonl",
            "--quiet",
        ],
    );
    assert!(out.contains("0 of 40 texts abstain ("), "{out}");
}

/// `inspect --verify` checks symmetry before `--edges` exports one weight an edge.
#[test]
fn inspect_verifies_a_graph_before_exporting_its_edges() {
    use sprig::graph::{Graph, GraphKind, GraphParts, RecordRef};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // a–b with two different weights: valid (`Graph::validate`), but not symmetric, which
    // `from_parts` refuses; the file is made from a symmetric one, its first weight patched
    // and its checksum sealed again.
    let parts = |weights: Vec<f32>| GraphParts {
        offsets: vec![0, 1, 2],
        neighbors: vec![1, 0],
        weights,
        keys: vec!["a".into(), "b".into()],
        text_nodes: 2,
        records: (0..2)
            .map(|i| RecordRef {
                line: i + 1,
                id: None,
                node: i as u32,
                text_hash: None,
            })
            .collect(),
        labels: vec![],
        seeds: vec![],
        provenance: serde_json::Value::Null,
    };
    let e = Graph::from_parts(GraphKind::Edges, parts(vec![0.45, 0.9])).unwrap_err();
    assert!(
        e.to_string().contains("w(0,1) = 0.45 but w(1,0) = 0.9"),
        "{e}"
    );
    let graph = Graph::from_parts(GraphKind::Edges, parts(vec![0.9, 0.9])).unwrap();
    let mut bytes = graph.to_bytes();
    let at = bytes
        .windows(8)
        .position(|w| w == [0.9f32.to_le_bytes(), 0.9f32.to_le_bytes()].concat())
        .expect("the weights section");
    bytes[at..at + 4].copy_from_slice(&0.45f32.to_le_bytes());
    bytes.truncate(bytes.len() - 4);
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    std::fs::write(d.join("asym.graph"), bytes).unwrap();
    let err = fails(d, &["inspect", "asym.graph", "--edges", "--verify"]);
    assert!(err.contains("w(0,1) = 0.45 but w(1,0) = 0.9"), "{err}");
    // Without --verify the export is what the file holds.
    assert!(ok(d, &["inspect", "asym.graph", "--edges"]).contains("0.45"));
    // A text named like a feature node would merge with it when read back: refused.
    std::fs::write(
        d.join("names.jsonl"),
        "{\"text\":\"u:hello\"}\n{\"text\":\"hello world\"}\n",
    )
    .unwrap();
    ok(
        d,
        &[
            "graph",
            "--corpus",
            "names.jsonl",
            "--kind",
            "bipartite",
            "--min-df",
            "1",
            "--max-df",
            "1",
            "--features",
            "u",
            "--out",
            "n.graph",
            "-q",
        ],
    );
    let out = crate::util::sprig(d, &["inspect", "n.graph", "--edges"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && out.stdout.is_empty()
            && err.contains("n.graph: exporting its edges")
            && err.contains("(text) and ")
            && err.contains("(feature) are both named \"u:hello\""),
        "{err}"
    );
}

/// The notes after `graph` name what the input can actually change: a plain-text corpus has
/// label prefixes, not fields; a seed file can be what gave a node two labels; labels that
/// look alike but differ in Unicode form are pointed out.
#[test]
fn graph_notes_name_the_input_that_can_fix_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let note = |args: &[&str]| {
        let out = crate::util::sprig(d, args);
        assert!(out.status.success(), "{args:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    std::fs::write(d.join("plain.txt"), "ok hello\nfine hello\n").unwrap();
    let err = note(&["graph", "--corpus", "plain.txt", "--out", "g.graph"]);
    assert!(
        err.contains("no line starts with a `__label__NAME ` prefix")
            && !err.contains("--label-field"),
        "{err}"
    );
    std::fs::write(
        d.join("d.jsonl"),
        "{\"text\":\"hello there\"}\n{\"text\":\"hello there\"}\n{\"text\":\"hi you\"}\n",
    )
    .unwrap();
    std::fs::write(d.join("s.tsv"), "1\tb\n1\tc\n").unwrap();
    let err = note(&[
        "graph", "--corpus", "d.jsonl", "--seeds", "s.tsv", "--out", "g.graph",
    ]);
    assert!(
        err.contains("1 node carries seeds of more than one label (the seed file labels it"),
        "{err}"
    );
    std::fs::write(
        d.join("nfd.jsonl"),
        "{\"text\":\"hello a\",\"label\":\"caf\\u00e9\"}\n{\"text\":\"hello b\",\"label\":\"cafe\\u0301\"}\n",
    )
    .unwrap();
    let err = note(&["graph", "--corpus", "nfd.jsonl", "--out", "g.graph"]);
    assert!(
        err.contains(
            "differ only in case or Unicode form are different labels: \"cafe\\u{301}\" and \"café\""
        ),
        "{err}"
    );
}

/// A bipartite graph with the char block weighted 0 has no char feature nodes (they would
/// have no edge, and count as isolated nodes).
#[test]
fn a_block_weighted_zero_gives_no_feature_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let corpus = repo("corpora/tiny/intents.jsonl");
    let nodes = |extra: &[&str]| {
        let mut args = vec![
            "graph",
            "--corpus",
            corpus.to_str().unwrap(),
            "--kind",
            "bipartite",
            "--out",
            "b.graph",
            "-q",
        ];
        args.extend(extra);
        ok(d, &args);
        let v: serde_json::Value =
            serde_json::from_str(&ok(d, &["inspect", "b.graph", "--json"])).unwrap();
        (
            v["counts"]["nodes"].as_u64().unwrap(),
            v["counts"]["edges"].as_u64().unwrap(),
        )
    };
    let (all, edges) = nodes(&[]);
    let (words, word_edges) = nodes(&["--char-weight", "0"]);
    let (word_only, word_only_edges) = nodes(&["--features", "u,b"]);
    assert!(words < all && word_edges < edges, "{words} {all}");
    assert_eq!((words, word_edges), (word_only, word_only_edges));
}

#[test]
fn every_command_names_the_first_five_records_it_skipped_alike() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The tiny corpus with seven bad records after its first line (lines 2 to 8).
    let mut corpus = std::fs::read_to_string(repo("corpora/tiny/intents.jsonl")).unwrap();
    let bad: String = (0..7)
        .map(|i| format!("{{\"text\": {i}, \"label\": \"greeting\"}}\n"))
        .collect();
    corpus.insert_str(corpus.find('\n').unwrap() + 1, &bad);
    std::fs::write(d.join("c.jsonl"), &corpus).unwrap();
    let first: Vec<String> = (2..=6)
        .map(|line| format!("c.jsonl:{line}: field \"text\": expected a string"))
        .collect();
    let stderr = |args: &[&str]| crate::util::ok_stderr(d, args);
    let graph = stderr(&[
        "graph",
        "--corpus",
        "c.jsonl",
        "--out",
        "c.graph",
        "--skip-invalid",
    ]);
    let train = [
        "train",
        "--corpus",
        "c.jsonl",
        "--out",
        "m.sprig",
        "--skip-invalid",
    ];
    let train = stderr(&[&train[..], &crate::util::QUICK_TRAIN].concat());
    let eval = [
        "eval",
        "--model",
        "m.sprig",
        "--data",
        "c.jsonl",
        "--skip-invalid",
    ];
    let eval = stderr(&eval);
    for err in [&graph, &train, &eval] {
        let line = err
            .lines()
            .find(|l| l.starts_with("warning: skipped 7 invalid records; the first 5: "))
            .unwrap_or_else(|| panic!("{err}"));
        // Each of the five named once, in line order; the sixth and seventh are not.
        let at: Vec<usize> = first
            .iter()
            .map(|f| line.find(f.as_str()).unwrap())
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{line}");
        assert!(
            !line.contains("c.jsonl:7:") && !line.contains("c.jsonl:8:"),
            "{line}"
        );
    }
}

#[test]
fn propagate_logs_each_iteration_to_a_log_file_and_quiet_keeps_only_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    crate::util::tiny_graph(d, "t.graph");
    // A class-share sample with a label the graph lacks: a warning.
    std::fs::write(
        d.join("sample.jsonl"),
        "{\"text\":\"hi\",\"label\":\"greeting\"}\n{\"text\":\"x\",\"label\":\"nope\"}\n",
    )
    .unwrap();
    let run = |quiet: bool| {
        let mut args = vec![
            "propagate",
            "--graph",
            "t.graph",
            "--out",
            "l.jsonl",
            "--iterations",
            "3",
            "--prior-from",
            "sample.jsonl",
        ];
        if quiet {
            args.push("-q");
        }
        // stderr is a pipe here, as in a batch job's log: the lines must not vanish into the
        // progress bar, which cannot draw there.
        crate::util::ok_stderr(d, &args)
    };
    let warning = "warning: --prior-from ignores 1 labelled line of sample.jsonl with a label \
                   the graph lacks: \"nope\"";
    let loud = run(false);
    assert!(loud.starts_with("t.graph: "), "{loud}");
    for i in 1..=3 {
        assert!(
            loud.contains(&format!("iteration    {i}: max change ")),
            "{loud}"
        );
    }
    assert!(loud.contains(warning), "{loud}");
    let quiet = run(true);
    assert_eq!(quiet.lines().collect::<Vec<_>>().len(), 1, "{quiet}");
    assert!(quiet.starts_with(warning), "{quiet}");
}

#[test]
fn quiet_silences_notes_but_not_warnings_about_dropped_input() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The tiny corpus with one bad record in the middle.
    let mut corpus = std::fs::read_to_string(repo("corpora/tiny/intents.jsonl")).unwrap();
    corpus.insert_str(
        corpus.find('\n').unwrap() + 1,
        "{\"text\": 42, \"label\": \"greeting\"}\n",
    );
    std::fs::write(d.join("c.jsonl"), &corpus).unwrap();
    let stderr = |args: &[&str]| crate::util::ok_stderr(d, args);
    let graph = ["graph", "--corpus", "c.jsonl", "--out", "c.graph"];
    let skipped = "warning: skipped 1 invalid record; the first: c.jsonl:2: field \"text\"";
    for quiet in [&[][..], &["-q"]] {
        let err = stderr(&[&graph[..], &["--skip-invalid"], quiet].concat());
        assert!(err.contains(skipped), "{quiet:?}: {err}");
    }
    ok(
        d,
        &["propagate", "--graph", "c.graph", "--out", "l.jsonl", "-q"],
    );
    // A labels file cut short: the records past its end train on nothing.
    let labels = std::fs::read_to_string(d.join("l.jsonl")).unwrap();
    let short: Vec<&str> = labels.lines().take(30).collect();
    std::fs::write(d.join("short.jsonl"), short.join("\n") + "\n").unwrap();
    let train = [
        "train",
        "--corpus",
        "c.jsonl",
        "--labels",
        "short.jsonl",
        "--skip-invalid",
        "--out",
        "m.sprig",
    ];
    let train = [&train[..], &crate::util::QUICK_TRAIN].concat();
    let unlabelled = "warning: 10 of 40 records have neither a label nor a line in short.jsonl";
    let loud = stderr(&train);
    let quiet = stderr(&[&train[..], &["-q"]].concat());
    for err in [&loud, &quiet] {
        assert!(err.contains(skipped), "{err}");
        assert!(err.contains(unlabelled), "{err}");
    }
    // What -q does silence: the informational count of seeds and labels, the epochs.
    let info = "40 records: ";
    assert!(loud.contains(info) && loud.contains("epoch   1"), "{loud}");
    assert!(!quiet.contains(info) && !quiet.contains("epoch"), "{quiet}");
    assert_eq!(quiet.lines().count(), 2, "{quiet}");
    // run -q passes --quiet on, and the warnings still show.
    let test = repo("corpora/tiny/test.jsonl");
    let run = [
        "run",
        "--corpus",
        "c.jsonl",
        "--test",
        test.to_str().unwrap(),
        "--workdir",
        "w",
        "--skip-invalid",
        "-q",
    ];
    let err = stderr(&run);
    assert_eq!(err.matches(skipped).count(), 2, "graph and train: {err}");
}

#[test]
fn run_prints_commands_a_shell_can_run_again() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let corpus = repo("corpora/tiny/intents.jsonl");
    let test = repo("corpora/tiny/test.jsonl");
    let out = ok(
        d,
        &[
            "run",
            "--corpus",
            corpus.to_str().unwrap(),
            "--test",
            test.to_str().unwrap(),
            "--workdir",
            "w dir",
            "-q",
        ],
    );
    // Each printed command, pasted into a shell, runs (the path with a space stays one
    // argument) and, for eval, prints what the run printed.
    let shell = |command: &str| {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("\"$SPRIG\" {command}"))
            .env("SPRIG", env!("CARGO_BIN_EXE_sprig"))
            .current_dir(d)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{command}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let eval = out
        .lines()
        .find_map(|l| l.strip_prefix("== 4/4 eval: sprig "))
        .unwrap();
    assert!(eval.contains("'w dir/model.sprig'"), "{eval}");
    let scores = shell(eval);
    assert!(out.contains(&scores), "{scores} not in:\n{out}");
    // The closing example: the test file's first text, quoted, answered by the model.
    let done = out.lines().last().unwrap();
    assert_eq!(
        done,
        "== done: try `sprig predict --model 'w dir/model.sprig' 'hey there, friend'` or pipe \
         lines into it"
    );
    let predict = done
        .split('`')
        .nth(1)
        .unwrap()
        .strip_prefix("sprig ")
        .unwrap();
    assert!(shell(predict).starts_with("greeting\t"));

    // Outside the repository root, the default corpus is missing: said why.
    let err = fails(d, &["run"]);
    assert!(
        err.contains(
            "--corpus corpora/replies/corpus.jsonl (the bundled file, relative to the \
             current folder: run from the repository root, or give --corpus and --test)"
        ),
        "{err}"
    );
}

/// The field flags reach the steps that read records (the id field only graph and train, as
/// eval refuses it), the closing example is read as eval reads the test file (without ids),
/// and a first test text too long for one command line is left out of it.
/// The flags that read [`as_csv`]'s files (their ids: `--id-field key`).
const CSV_FIELDS: [&str; 6] = [
    "--format",
    "csv",
    "--text-field",
    "body",
    "--label-field",
    "intent",
];

/// Writes the JSON Lines records of `from` to `d/to` as CSV under other column names:
/// `body` and `intent`, after `key` (each record's `id`) when `ids` is set.
fn as_csv(d: &std::path::Path, from: &std::path::Path, to: &str, ids: bool) {
    let mut csv = csv::Writer::from_path(d.join(to)).unwrap();
    let header = ["key", "body", "intent"];
    csv.write_record(&header[usize::from(!ids)..]).unwrap();
    for line in std::fs::read_to_string(from).unwrap().lines() {
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        let field = |f: &str| r.get(f).and_then(|v| v.as_str()).unwrap_or("").to_owned();
        let row = [field("id"), field("text"), field("label")];
        csv.write_record(&row[usize::from(!ids)..]).unwrap();
    }
    csv.flush().unwrap();
}

#[test]
fn run_passes_each_step_its_flags_and_shows_only_a_short_example() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The tiny corpus as CSV under other column names; the test file without the id
    // column, which the example must not need (a CSV header must hold the --id-field).
    as_csv(d, &repo("corpora/tiny/intents.jsonl"), "c.csv", true);
    as_csv(d, &repo("corpora/tiny/test.jsonl"), "t.csv", false);
    let fields = CSV_FIELDS.join(" ");
    let run = [
        "run",
        "-q",
        "--corpus",
        "c.csv",
        "--test",
        "t.csv",
        "--workdir",
        "w",
    ];
    let out = ok(d, &[&run[..], &CSV_FIELDS, &["--id-field", "key"]].concat());
    let step = |n: &str| {
        let prefix = format!("== {n}: sprig ");
        out.lines()
            .find_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
            .unwrap_or_else(|| panic!("{n} missing from:\n{out}"))
    };
    for n in ["1/4 graph", "3/4 train"] {
        let line = step(n);
        assert!(line.contains(&format!("{fields} --id-field key")), "{line}");
    }
    let propagate = step("2/4 propagate");
    let reads_no_records = !propagate.contains("--format") && !propagate.contains("--id-field");
    assert!(reads_no_records, "{propagate}");
    let eval = step("4/4 eval");
    assert!(eval.ends_with(&fields), "{eval}");
    let example = "--model w/model.sprig 'hey there, friend'` or pipe lines into it\n";
    assert!(out.ends_with(example), "{out}");

    // A first test text over 60 characters: no example. (Without -q, and the test file
    // not being the corpus, no note says it is.)
    let long = "a".repeat(30) + " " + &"b".repeat(30);
    let mut test = format!("{{\"text\": \"{long}\", \"label\": \"greeting\"}}\n");
    test += &std::fs::read_to_string(repo("corpora/tiny/test.jsonl")).unwrap();
    std::fs::write(d.join("long.jsonl"), test).unwrap();
    let corpus = repo("corpora/tiny/intents.jsonl");
    let args = [
        "run",
        "--corpus",
        corpus.to_str().unwrap(),
        "--test",
        "long.jsonl",
        "--workdir",
        "l",
    ];
    let run = crate::util::sprig(d, &args);
    let (out, err) = (
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr),
    );
    assert!(run.status.success(), "{err}");
    assert!(!err.contains("the test file is the corpus"), "{err}");
    assert!(
        out.ends_with("== done: try `sprig predict --model l/model.sprig` or pipe lines into it\n"),
        "{out}"
    );
}

/// A closed stderr (`sprig … 2>&1 | head` after `head` exits) loses notes and messages, not
/// the run: `eprintln!` would panic (exit 101) on the failed write.
#[test]
fn a_closed_stderr_loses_the_notes_not_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Labels that differ only in case: `graph` prints a note about them.
    std::fs::write(
        d.join("c.jsonl"),
        "{\"text\":\"hello there\",\"label\":\"Greet\"}\n\
         {\"text\":\"hi there\",\"label\":\"greet\"}\n{\"text\":\"bye now\"}\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        std::process::Command::new(env!("CARGO_BIN_EXE_sprig"))
            .args(args)
            .current_dir(d)
            .stdout(std::process::Stdio::null())
            .stderr(writer)
            .status()
            .unwrap()
            .code()
    };
    assert_eq!(
        run(&["graph", "--corpus", "c.jsonl", "--out", "c.graph"]),
        Some(0)
    );
    assert!(d.join("c.graph").exists());
    // An error still exits 2, its message lost.
    assert_eq!(
        run(&["graph", "--corpus", "none.jsonl", "--out", "n.graph"]),
        Some(2)
    );
}

#[test]
fn inspect_names_the_first_hundred_labels_of_a_model_and_json_all() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let corpus: String = (0..150)
        .map(|i| format!("{{\"text\":\"word{i} other{i}\",\"label\":\"l{i:03}\"}}\n"))
        .collect();
    std::fs::write(d.join("c.jsonl"), corpus).unwrap();
    let train = ["train", "--corpus", "c.jsonl", "--out", "m.sprig", "-q"];
    ok(d, &[&train[..], &crate::util::QUICK_TRAIN].concat());
    let text = ok(d, &["inspect", "m.sprig"]);
    let line = text
        .lines()
        .find(|l| l.starts_with("labels (150)"))
        .unwrap();
    assert!(
        line.contains("l000, l001, ") && line.contains(", l099, … and 50 more"),
        "{line}"
    );
    assert!(!line.contains("l100"), "{line}");
    let json: serde_json::Value =
        serde_json::from_str(&ok(d, &["inspect", "m.sprig", "--json"])).unwrap();
    assert_eq!(json["labels"].as_array().unwrap().len(), 150);
}

#[test]
fn the_note_that_suggests_keeping_every_label_says_what_it_costs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A chain of 100 nodes, each seeded with its own label: 100 labels, K = 8.
    let edges: String = (0..99).map(|i| format!("n{i}\tn{}\t1\n", i + 1)).collect();
    let seeds: String = (0..100).map(|i| format!("n{i}\tl{i}\n")).collect();
    std::fs::write(d.join("e.tsv"), edges).unwrap();
    std::fs::write(d.join("s.tsv"), seeds).unwrap();
    let graph = [
        "graph", "--edges", "e.tsv", "--seeds", "s.tsv", "--out", "g.graph",
    ];
    ok(d, &graph);
    // Label spreading on the graph just built: its stderr.
    let spreading = |extra: &[&str]| {
        let args = [
            &[
                "propagate",
                "--graph",
                "g.graph",
                "--algorithm",
                "spreading",
            ][..],
            extra,
            &["--out", "l.jsonl"],
        ];
        crate::util::ok_stderr(d, &args.concat())
    };
    let err = spreading(&[]);
    // 100 nodes × K × 16 bytes: 0.16 MB for K = 100, 0.0128 for 8; 12x the time at most.
    assert!(
        err.contains(
            "--top-k 100 keeps them all (at a cost: label buffers of about 160 KB instead of 13 \
             KB for these nodes, and up to 13x the time and the output's size)"
        ),
        "{err}"
    );
    // From a megabyte on the size is in MB: 625 nodes × 100 × 16 bytes is 1 MB exactly.
    let edges: String = (0..624).map(|i| format!("n{i}\tn{}\t1\n", i + 1)).collect();
    std::fs::write(d.join("e.tsv"), edges).unwrap();
    ok(d, &graph);
    let err = spreading(&[]);
    assert!(
        err.contains("(at a cost: label buffers of about 1 MB instead of 80 KB for these nodes"),
        "{err}"
    );
    // And from a gigabyte on in GB: 62,500 nodes × 1,000 labels × 16 bytes (one iteration;
    // the note is about the buffers, not the run).
    let n = 62_500;
    let edges: String = (0..n - 1)
        .map(|i| format!("n{i}\tn{}\t1\n", i + 1))
        .collect();
    let seeds: String = (0..1000).map(|i| format!("n{i}\tl{i}\n")).collect();
    std::fs::write(d.join("e.tsv"), edges).unwrap();
    std::fs::write(d.join("s.tsv"), seeds).unwrap();
    ok(d, &graph);
    let err = spreading(&["--iterations", "1"]);
    assert!(
        err.contains(
            "(at a cost: label buffers of about 1.0 GB instead of 8 MB for these nodes, and up \
             to 125x the time"
        ),
        "{err}"
    );
}

/// Term counts are damped (1 + ln(count)) unless `--no-sublinear-tf` asks for raw counts: a
/// text that repeats a word then lies further from one that says it once. The flag's sense
/// was inverted by a missed mutant, which the provenance and the weights both show.
#[test]
fn term_counts_are_damped_unless_no_sublinear_tf_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("c.txt"), "a a a b\na b\nc d\n").unwrap();
    let edge = |extra: &[&str]| {
        let args = [
            &["graph", "-q", "--corpus", "c.txt", "--out", "g.graph"][..],
            extra,
        ];
        ok(d, &args.concat());
        let provenance = ok(d, &["inspect", "g.graph"]);
        let edges = ok(d, &["inspect", "g.graph", "--edges"]);
        // The one edge: `a a a b` to `a b`.
        let weight: f32 = match edges.trim_end().split('\t').collect::<Vec<_>>()[..] {
            ["a a a b", "a b", w] => w.parse().unwrap(),
            _ => panic!("{edges}"),
        };
        (provenance, weight)
    };
    let (damped, damped_weight) = edge(&[]);
    assert!(damped.contains("\"sublinear_tf\":true"), "{damped}");
    let (raw, raw_weight) = edge(&["--no-sublinear-tf"]);
    assert!(raw.contains("\"sublinear_tf\":false"), "{raw}");
    // 1 + ln 3 ≈ 2.1 against 3 for the repeated word: raw counts weigh it more.
    assert!(
        damped_weight > raw_weight + 0.01,
        "{damped_weight} {raw_weight}"
    );
}

/// `--threads N` builds the worker pool as the command starts, N threads before the corpus
/// is read; without it rayon starts its pool when first needed. Counted in /proc while
/// `graph` waits on a FIFO for its corpus. `--threads` ignored (a missed mutant) leaves the
/// output alone ("identical for any count"), so only the thread count shows it.
#[cfg(target_os = "linux")]
#[test]
fn threads_builds_a_pool_of_that_many_workers_as_the_command_starts() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let threads_while_reading = |extra: &[&str]| {
        let fifo = d.join("c.txt");
        let _ = std::fs::remove_file(&fifo);
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.unwrap().success());
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sprig"))
            .args(["graph", "-q", "--corpus", "c.txt", "--out", "g.graph"])
            .args(extra)
            .current_dir(d)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Opening the writing end waits until sprig opens the reading end: on a thread, so
        // that a sprig that fails first fails the test instead of hanging it.
        let (tx, rx) = std::sync::mpsc::channel();
        let path = fifo.clone();
        std::thread::spawn(move || {
            let _ = tx.send(std::fs::OpenOptions::new().write(true).open(path));
        });
        let Ok(writer) = rx.recv_timeout(std::time::Duration::from_secs(60)) else {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "sprig never read c.txt: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let tasks = std::fs::read_dir(format!("/proc/{}/task", child.id()));
        let n = tasks.unwrap().count();
        let mut writer = writer.unwrap();
        writer.write_all(b"hello there\nhi there\n").unwrap();
        drop(writer);
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        n
    };
    let default = threads_while_reading(&[]);
    assert_eq!(threads_while_reading(&["--threads", "3"]), default + 3);
    assert_eq!(threads_while_reading(&["--threads", "1"]), default + 1);
}

/// Every record of the corpus has a line in the labels file, some abstaining (a text that
/// shares nothing with a seed) and some below --min-confidence: no record is "without a
/// line", so no warning. Missed mutants dropped those two counts from the sum.
#[test]
fn abstaining_and_low_confidence_lines_count_as_lines_of_the_labels_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("c.jsonl"),
        "{\"text\":\"hello there friend\",\"label\":\"greet\"}\n\
         {\"text\":\"hello there pal\"}\n\
         {\"text\":\"bye now friend\",\"label\":\"bye\"}\n\
         {\"text\":\"bye now pal\"}\n\
         {\"text\":\"zzz qqq\"}\n",
    )
    .unwrap();
    ok(
        d,
        &["graph", "--corpus", "c.jsonl", "--out", "g.graph", "-q"],
    );
    ok(
        d,
        &["propagate", "--graph", "g.graph", "--out", "l.jsonl", "-q"],
    );
    let train = [
        "train",
        "--corpus",
        "c.jsonl",
        "--labels",
        "l.jsonl",
        "--min-confidence",
        "0.99",
        "--out",
        "m.sprig",
    ];
    let err = ok_stderr(d, &[&train[..], &crate::util::QUICK_TRAIN].concat());
    // The premise: one abstains, the two unlabelled texts fall below 0.99.
    assert!(
        err.contains("5 records: 2 seeds, 0 propagated, 1 abstaining and 2 low-confidence"),
        "{err}"
    );
    assert!(!err.contains("neither a label nor a line"), "{err}");
}

/// `train` told nothing of the fields `graph` read the labels from finds no seed in the
/// corpus while the labels file marks some: it says which flags to repeat.
#[test]
fn train_names_the_field_flags_when_the_corpus_gives_no_label_the_graph_had() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("t.csv"),
        "body,intent\nwhere is my parcel,shipping\nmy parcel is late,\n\
         refund my money,billing\nrefund the charge please,\nparcel not here yet,\n",
    )
    .unwrap();
    let fields = ["--text-field", "body", "--label-field", "intent"];
    let graph = ["graph", "-q", "--corpus", "t.csv", "--out", "t.graph"];
    ok(d, &[&graph[..], &fields].concat());
    ok(
        d,
        &["propagate", "-q", "--graph", "t.graph", "--out", "l.jsonl"],
    );
    let train = [
        "train", "--corpus", "t.csv", "--labels", "l.jsonl", "--out", "m.sprig",
    ];
    let quick = crate::util::QUICK_TRAIN;
    let said = ok_stderr(d, &[&train[..], &fields[..2], &quick].concat());
    assert!(
        said.contains(
            "warning: 2 lines of l.jsonl say \"seed\": true for a record with no label here, \
             and no record of t.csv has a label as read here (field or column \"label\"): if \
             graph read the labels, ids or texts from other fields, give train the same \
             --label-field, --id-field and --text-field; if propagation took a seed file, give \
             it to --seeds too"
        ),
        "{said}"
    );
    let said = ok_stderr(d, &[&train[..], &fields, &quick].concat());
    assert!(!said.contains("seed\": true"), "{said}");
}
