//! `sprig run`: the whole few-label pipeline in one command — graph, propagate, train, eval —
//! through exactly the code paths of the four subcommands, so it shows a new user what each
//! step does and what it gets.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

use super::Cli;

/// The bundled corpus, `--corpus`'s default (relative: found from the repository root).
const DEFAULT_CORPUS: &str = "corpora/replies/corpus.jsonl";
/// The bundled corpus's held-out file, `--test`'s default.
const DEFAULT_TEST: &str = "corpora/replies/test.jsonl";

/// Run graph → propagate → train → eval on a corpus with a few labelled records.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Corpus: every record, with `label` on the few seeds.
    #[arg(long, default_value = DEFAULT_CORPUS)]
    corpus: PathBuf,
    /// Labelled held-out file to evaluate the model on, read with the corpus's --format and
    /// field flags (not its ids). Default paths are relative to the current folder: run from
    /// the repository root.
    #[arg(long, default_value = DEFAULT_TEST)]
    test: PathBuf,
    /// Folder for the graph, the propagated labels, the texts to label next and the model
    /// (created if missing).
    #[arg(long, default_value = "sprig-run")]
    workdir: PathBuf,
    /// More labels, as a seed file (JSONL `{"line"|"id", "label"}` or TSV): the workdir's
    /// suggestions.jsonl with its labels filled in, say, saved under another name. Passed on
    /// to propagate and train, which read its labels as seeds.
    #[arg(long, value_name = "FILE")]
    seeds: Option<PathBuf>,
    /// No progress or informational notes on stderr: passed on to graph, propagate and
    /// train as --quiet. Warnings about input dropped or skipped are still printed.
    #[arg(long, short)]
    quiet: bool,
    /// Skip bad records (reported on stderr) instead of stopping at the first: passed on to
    /// graph, train and eval.
    #[arg(long)]
    skip_invalid: bool,
    /// Format and field names of the corpus and the test file, passed on to the steps that
    /// read them (the id field to graph and train only).
    #[command(flatten)]
    corpus_fields: super::CorpusArgs,
}

/// The files `run` writes into the workdir: the graph, the propagated labels, the texts
/// worth labelling next (`propagate --suggest`), the model.
const OUTPUTS: [&str; 4] = [
    "corpus.graph",
    "labels.jsonl",
    "suggestions.jsonl",
    "model.sprig",
];

pub fn run(args: Args) -> anyhow::Result<()> {
    // Both inputs are checked before any work: a missing test file would otherwise surface
    // only after training, and a workdir holding the corpus would have it overwritten.
    let mut inputs = vec![("--corpus", &args.corpus), ("--test", &args.test)];
    inputs.extend(args.seeds.as_ref().map(|s| ("--seeds", s)));
    for (flag, input) in inputs {
        if input.as_os_str() == "-" {
            // The corpus is read by two steps, and a pipe only once.
            anyhow::bail!("{flag}: run needs a file, not standard input");
        }
        std::fs::File::open(input).with_context(|| {
            // The bundled files' default paths are relative: from elsewhere they are missing,
            // and the bare "No such file" would not say why.
            let bundled = [DEFAULT_CORPUS, DEFAULT_TEST].map(std::path::Path::new);
            let hint = if bundled.contains(&input.as_path()) && !input.exists() {
                // Typed or defaulted alike: say what holds either way.
                " (the bundled file, relative to the current folder: run from the repository \
                 root, or give --corpus and --test)"
            } else {
                ""
            };
            format!("{flag} {}{hint}", input.display())
        })?;
        for name in OUTPUTS {
            let out = args.workdir.join(name);
            super::check_inputs_against(&out, &[(flag, input)])
                .with_context(|| format!("--workdir {}", args.workdir.display()))?;
        }
    }
    if super::same_file(&args.corpus, &args.test) && !args.quiet {
        errln!(
            "note: the test file is the corpus: the model trains on its texts (and its labels \
             are the seeds), so its accuracy measures memory, not generalization"
        );
    }
    if args.workdir.exists() && !args.workdir.is_dir() {
        anyhow::bail!(
            "--workdir {}: exists and is not a folder",
            args.workdir.display()
        );
    }
    check_test_file(&args)?;
    let created = !args.workdir.exists();
    std::fs::create_dir_all(&args.workdir)
        .with_context(|| format!("creating {}", args.workdir.display()))?;
    let result = steps(&args);
    if result.is_err() && created {
        // A step that fails leaves no file (outputs are renamed into place only when whole),
        // so a folder this run created is empty after the first step's failure; remove_dir
        // keeps it if a step got further and wrote something worth looking at.
        let _ = std::fs::remove_dir(&args.workdir);
    }
    result
}

/// The four steps, each printed as the command it stands for.
fn steps(args: &Args) -> anyhow::Result<()> {
    let path = |name: &str| args.workdir.join(name).display().to_string();
    let corpus = args.corpus.display().to_string();
    let test = args.test.display().to_string();
    let [graph, labels, suggestions, model] = OUTPUTS.map(path);
    let seeds = args.seeds.as_ref().map(|s| s.display().to_string());
    let seeds: Vec<&str> = match &seeds {
        Some(s) => vec!["--seeds", s],
        None => vec![],
    };
    let [format, fields, id] = args.corpus_fields.argv();
    let steps: [(&str, Vec<&str>); 4] = [
        (
            "1/4 graph",
            vec!["graph", "--corpus", &corpus, "--out", &graph],
        ),
        (
            "2/4 propagate",
            [
                &["propagate", "--graph", &graph, "--out", &labels][..],
                &seeds,
                &["--suggest", &suggestions],
            ]
            .concat(),
        ),
        (
            "3/4 train",
            [
                &[
                    "train", "--corpus", &corpus, "--labels", &labels, "--out", &model,
                ][..],
                &seeds,
            ]
            .concat(),
        ),
        ("4/4 eval", vec!["eval", "--model", &model, "--data", &test]),
    ];
    for (name, mut argv) in steps {
        if args.quiet && argv[0] != "eval" {
            argv.push("--quiet");
        }
        // The test file is read with the corpus's format and fields, but never its ids.
        if argv[0] != "propagate" {
            argv.extend(format.iter().chain(&fields).map(String::as_str));
        }
        if argv[0] == "graph" || argv[0] == "train" {
            argv.extend(id.iter().map(String::as_str));
        }
        if args.skip_invalid && argv[0] != "propagate" {
            argv.push("--skip-invalid");
        }
        outln!("== {name}: sprig {}", shell_words(&argv))?;
        let cli = Cli::try_parse_from(std::iter::once("sprig").chain(argv.iter().copied()))
            .with_context(|| format!("step {name}"))?;
        super::run(cli).with_context(|| format!("step {name}"))?;
    }
    // The next round: what a few more labels would do most for.
    let listed = std::fs::read_to_string(&suggestions)
        .map(|s| s.lines().count())
        .unwrap_or(0);
    if listed > 0 {
        outln!(
            "== to label next: {} lists {}; fill in their \"label\", save the file under \
             another name and run again with --seeds FILE",
            shell_words(&[&suggestions]),
            super::count(listed as u64, "text", "texts"),
        )?;
    }
    // An example from the test file, so that it suits whatever corpus the model learnt
    // (a fixed phrase would only suit the bundled one); none if the file gives no short one.
    let example = sample_text(args).map(|text| format!(" {}", shell_words(&[&text])));
    outln!(
        "== done: try `sprig predict --model {}{}` or pipe lines into it",
        shell_words(&[&model]),
        example.unwrap_or_default()
    )?;
    Ok(())
}

/// `words` joined with spaces, each quoted as a POSIX shell needs it (a path with a space,
/// a text with a quote), so that a printed command can be pasted back into a shell.
fn shell_words(words: &[&str]) -> String {
    // Arguments and texts come from the command line or a UTF-8 file line, where a NUL byte
    // cannot occur (and corpus readers refuse it), so quoting cannot fail.
    shlex::try_join(words.iter().copied()).expect("no NUL byte in an argument")
}

/// How step 4 (`eval`) reads the test file: the corpus's format and fields, no ids.
fn test_options(args: &Args) -> sprig::corpus::CorpusOptions {
    sprig::corpus::CorpusOptions {
        id_field: None,
        ..args.corpus_fields.options()
    }
}

/// Reads the test file as step 4 (`eval`) will, so that a field it lacks or a bad record
/// stops the run before the graph, propagation and training rather than after them; at
/// least one record must have a gold label.
fn check_test_file(args: &Args) -> anyhow::Result<()> {
    let options = test_options(args);
    let context = || format!("--test {}, read as step 4/4 eval will", args.test.display());
    let mut skips = super::SkipInvalid::new(args.skip_invalid);
    let mut labelled = false;
    for record in sprig::corpus::CorpusReader::open(&args.test, &options).with_context(context)? {
        if let Some(record) = skips.keep(record).with_context(context)? {
            labelled |= record.label.is_some();
        }
    }
    if !labelled {
        anyhow::bail!(
            "{}: no record has a label under {:?} (the gold labels eval scores against; \
             --label-field names their field or column, for the corpus and the test file \
             alike)",
            context(),
            options.label_field
        );
    }
    Ok(())
}

/// The first text of the test file, if it is short enough to show on one command line.
fn sample_text(args: &Args) -> Option<String> {
    const MAX_CHARS: usize = 60;
    let mut reader = sprig::corpus::CorpusReader::open(&args.test, &test_options(args)).ok()?;
    let text = reader.find_map(Result::ok)?.text;
    let text = text.trim();
    let fits = !text.is_empty() && text.chars().count() <= MAX_CHARS;
    // A line end or another control character would break the printed line.
    (fits && !text.chars().any(char::is_control)).then(|| text.to_owned())
}
