//! Command-line interface: one file per subcommand, each with an `Args` struct (clap derive)
//! and a `run(Args) -> anyhow::Result<()>`. No algorithm lives here: flags become library
//! configs, and the library does the work. Results go to stdout, progress to stderr.

/// `print!` to standard output that returns the write's error instead of panicking: a closed
/// pipe then ends the command quietly (see `main`) and a full disk is an error on stderr.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        anyhow::Context::context(
            write!(std::io::stdout().lock(), $($arg)*),
            "writing to standard output",
        )
    }};
}

/// `println!` that returns the write's error; see `out!`.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        anyhow::Context::context(
            writeln!(std::io::stdout().lock(), $($arg)*),
            "writing to standard output",
        )
    }};
}

/// Buffered standard output whose write errors say where they happened ("writing to
/// standard output: No space left on device"), keeping their kind (a closed pipe stays
/// `BrokenPipe`, which `main` treats as the end of the reader's interest, not an error).
pub(crate) struct Stdout(std::io::BufWriter<std::io::StdoutLock<'static>>);

impl Stdout {
    pub(crate) fn new() -> Self {
        Self(std::io::BufWriter::new(std::io::stdout().lock()))
    }
}

fn on_stdout(e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("writing to standard output: {e}"))
}

impl std::io::Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf).map_err(on_stdout)
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.0.write_all(buf).map_err(on_stdout)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush().map_err(on_stdout)
    }
}

/// `eprintln!` that cannot panic: with stderr closed (`sprig … 2>&1 | head`), a note or a
/// progress line is lost, not the run (`eprintln!` panics on a failed write).
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

/// clap's parser of a score threshold (`predict --threshold`, `eval --thresholds`): a
/// number in [0, 1] (NaN would silently drop every label).
pub(crate) fn unit_interval(s: &str) -> Result<f32, String> {
    // Spaces around it too: `--thresholds "0.5, 0.9"` splits into "0.5" and " 0.9".
    match s.trim().parse::<f32>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        Ok(_) => Err("must be a number in [0, 1]".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// clap's parser of a `.graph` or `.sprig` path. `-`, which the corpus, seed and label
/// options read as standard input, is refused by name: without this, the loader reported a
/// missing file called `-`.
pub(crate) fn artifact_path(s: &str) -> Result<std::path::PathBuf, String> {
    if s == "-" {
        return Err(
            "standard input (`-`) is not accepted for a graph or model: give the file's path"
                .into(),
        );
    }
    Ok(std::path::PathBuf::from(s))
}

/// `n` and the noun for it: `1 line`, `2 lines`.
pub(crate) fn count(n: impl Into<u64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A graph's size as `graph` and `propagate` print it: `N nodes (N texts), N edges, N seeds
/// over N labels`.
pub(crate) fn graph_size(graph: &sprig::graph::Graph) -> String {
    // An edge list's nodes are whatever it names, not texts.
    let texts = match graph.kind() {
        sprig::graph::GraphKind::Edges => String::new(),
        _ => format!(" ({})", count(graph.n_text_nodes() as u64, "text", "texts")),
    };
    format!(
        "{}{texts}, {}, {} over {}",
        count(graph.n_nodes() as u64, "node", "nodes"),
        count(graph.n_edges() as u64, "edge", "edges"),
        graph.seeds_summary(),
        count(graph.labels().len() as u64, "label", "labels"),
    )
}

/// `N line(s) of FILE say(s)`, for notes about a labels file.
pub(crate) fn lines_of_say(n: usize, file: &std::path::Path) -> String {
    let verb = if n == 1 { "says" } else { "say" };
    format!(
        "{} of {} {verb}",
        count(n as u64, "line", "lines"),
        file.display()
    )
}

/// A note when some labels differ only in case (`Billing`, `billing`) or in Unicode form
/// (`café` composed, `café` with a combining accent, which look the same): labels are names,
/// compared exactly (after trimming spaces), so these are different labels, which is rarely
/// what a file that spells one label several ways means.
pub(crate) fn case_note(labels: &[String]) -> Option<String> {
    let fold = |l: &str| {
        let mut n = tokenizers::NormalizedString::from(l);
        n.nfkc();
        n.get().to_lowercase()
    };
    let mut folded: Vec<(String, &str)> = labels.iter().map(|l| (fold(l), l.as_str())).collect();
    folded.sort();
    let clashes: Vec<String> = folded
        .chunk_by(|a, b| a.0 == b.0)
        .filter(|group| group.len() > 1)
        .map(|group| {
            let names: Vec<String> = group.iter().map(|g| format!("{:?}", g.1)).collect();
            names.join(" and ")
        })
        .collect();
    let first = clashes.first()?;
    Some(format!(
        "note: labels that differ only in case or Unicode form are different labels: \
         {first}{} (fix the spelling in the input if they mean one)",
        match clashes.len() {
            1 => String::new(),
            2 => "; one more group too".to_owned(),
            n => format!("; {} more groups too", n - 1),
        }
    ))
}

/// For labels of a file that `known` lacks: ` ({u:?} differs from {whose} {twin:?} only in
/// case)` for the first of `unknown` that matches one of `known` but for case, the likeliest
/// slip (labels are compared exactly, see [`case_note`]).
pub(crate) fn case_twin<'a>(
    unknown: impl IntoIterator<Item = &'a str>,
    known: &[String],
    whose: &str,
) -> Option<String> {
    unknown.into_iter().find_map(|u| {
        let twin = known
            .iter()
            .find(|l| l.to_lowercase() == u.to_lowercase())?;
        Some(format!(
            " ({u:?} differs from {whose} {twin:?} only in case)"
        ))
    })
}

/// `--skip-invalid` for a stream of records: records that fail to parse are counted (the
/// first few errors kept, as `graph` keeps them) and dropped when asked to, else the error
/// stops the command.
pub(crate) struct SkipInvalid {
    skip: bool,
    /// Records dropped.
    pub(crate) count: u64,
    /// The first [`sprig::features::SHOW_SKIPPED`] dropped records' errors.
    pub(crate) first: Vec<String>,
}

impl SkipInvalid {
    pub(crate) fn new(skip: bool) -> Self {
        Self {
            skip,
            count: 0,
            first: Vec::new(),
        }
    }

    /// The record, `None` for one dropped, or the error that stops the command.
    pub(crate) fn keep(
        &mut self,
        record: sprig::Result<sprig::corpus::Record>,
    ) -> anyhow::Result<Option<sprig::corpus::Record>> {
        match record {
            Ok(r) => Ok(Some(r)),
            Err(e @ sprig::Error::Parse { .. }) if self.skip => {
                self.count += 1;
                if self.first.len() < sprig::features::SHOW_SKIPPED {
                    self.first.push(e.to_string());
                }
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The note on what was dropped, if anything was.
    pub(crate) fn note(&self) -> Option<String> {
        (self.count > 0).then(|| skipped_note(self.count, &self.first))
    }
}

/// `skipped N invalid records; the first K: file:line: …; …`, the one wording of every
/// command's `--skip-invalid` warning.
pub(crate) fn skipped_note(count: u64, first: &[String]) -> String {
    format!(
        "skipped {}; {}: {}",
        self::count(count, "invalid record", "invalid records"),
        match first.len() {
            1 => "the first".to_owned(),
            n => format!("the first {n}"),
        },
        first.join("; ")
    )
}

/// Prints a command's summary line: on standard output, unless the command's output file
/// is standard output (`--out /dev/stdout`), where it would mix with the file's bytes.
pub(crate) fn summary(out: &std::path::Path, line: std::fmt::Arguments) -> anyhow::Result<()> {
    if sprig::format::is_stdout(out) {
        errln!("{line}");
        Ok(())
    } else {
        outln!("{line}")
    }
}

mod eval;
mod graph;
mod inspect;
mod inspect_model;
pub(crate) mod interrupt;
mod predict;
mod progress;
mod propagate;
mod run;
mod train;

use std::path::Path;

use clap::{Parser, Subcommand};

/// Graph-based semi-supervised learning on short text.
#[derive(Debug, Parser)]
#[command(name = "sprig", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build a similarity graph from a corpus (or import an edge list).
    Graph(Box<graph::Args>),
    /// Describe a .graph or .sprig file: configs, counts, degrees, components, reachability.
    Inspect(inspect::Args),
    /// Spread seed labels over a .graph (Expander, MAD, LP, spreading) and write them per record.
    Propagate(Box<propagate::Args>),
    /// Train a projection model (.sprig) on seeds and propagated labels.
    Train(Box<train::Args>),
    /// Label texts with a .sprig model (arguments or stdin lines).
    Predict(predict::Args),
    /// Score a .sprig model on a labelled file.
    Eval(eval::Args),
    /// The whole few-label pipeline: graph, propagate, train, eval (the README's first command).
    Run(run::Args),
}

/// Parses the command line (`sprig …`), or exits with clap's message and usage.
pub fn parse() -> Cli {
    use clap::{CommandFactory, FromArgMatches};
    let mut command = negative_numbers(Cli::command());
    let mut matches = command
        .try_get_matches_from_mut(std::env::args_os())
        .unwrap_or_else(|e| negative_count(e).exit());
    Cli::from_arg_matches_mut(&mut matches).unwrap_or_else(|e| e.format(&mut command).exit())
}

/// A negative number given to a flag that counts something (`--top-k -1`) fails the
/// unsigned parse with "invalid digit found in string", which hides what is wrong: say it.
fn negative_count(e: clap::Error) -> clap::Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    use std::error::Error as _;
    let digit = e
        .source()
        .and_then(|s| s.downcast_ref::<std::num::ParseIntError>())
        .is_some_and(|p| *p.kind() == std::num::IntErrorKind::InvalidDigit);
    let (Some(ContextValue::String(arg)), Some(ContextValue::String(value))) = (
        e.get(ContextKind::InvalidArg),
        e.get(ContextKind::InvalidValue),
    ) else {
        return e;
    };
    if e.kind() != ErrorKind::ValueValidation
        || !digit
        || value
            .strip_prefix('-')
            .and_then(|v| v.parse::<u128>().ok())
            .is_none()
    {
        return e;
    }
    clap::Error::raw(
        ErrorKind::ValueValidation,
        format!(
            "invalid value '{value}' for '{arg}': expected a whole number, 0 or more\n\n\
             For more information, try '--help'.\n"
        ),
    )
}

/// Lets every flag that takes a value, in every subcommand, take one that looks like a
/// negative number (`--tolerance -1`). Without it clap reads `-1` as an unknown flag
/// ("unexpected argument '-1' found"), while `--tolerance=-1` reaches the flag's own range
/// check and its message: the two spellings should get the same answer.
fn negative_numbers(command: clap::Command) -> clap::Command {
    command
        .mut_args(|arg| {
            if arg.get_action().takes_values() {
                arg.allow_negative_numbers(true)
            } else {
                arg
            }
        })
        .mut_subcommands(negative_numbers)
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    // Before any work: a mistyped kernel would otherwise be ignored in silence.
    sprig::network::check_kernel_env().map_err(anyhow::Error::msg)?;
    match cli.command {
        Command::Graph(args) => graph::run(*args),
        Command::Inspect(args) => inspect::run(args),
        Command::Propagate(args) => propagate::run(*args),
        Command::Train(args) => train::run(*args),
        Command::Predict(args) => predict::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Run(args) => run::run(args),
    }
}

/// Refuses to write `out` over one of the command's inputs (`(flag, path)` pairs): the output
/// is renamed into place only at the end, so the input would be read whole and then lost.
/// Also refuses standard input (`-`) for two inputs: the second would find it drained.
pub(crate) fn check_not_an_input(out: &Path, inputs: &[(&str, &Path)]) -> anyhow::Result<()> {
    check_inputs_against(out, inputs)?;
    // The output is renamed into place at the end: a missing folder, or a folder where the
    // file should go, would otherwise show up only after all the work.
    if out.is_dir()
        || out
            .as_os_str()
            .to_string_lossy()
            .ends_with(std::path::is_separator)
    {
        anyhow::bail!("--out {}: a folder, not a file name", out.display());
    }
    match out.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => anyhow::bail!(
            "--out {}: the folder {} does not exist",
            out.display(),
            dir.display()
        ),
        _ => Ok(()),
    }
}

/// [`check_not_an_input`] without the output folder check (`run` creates its folder).
pub(crate) fn check_inputs_against(out: &Path, inputs: &[(&str, &Path)]) -> anyhow::Result<()> {
    let stdin: Vec<&str> = inputs
        .iter()
        .filter(|(_, p)| p.as_os_str() == "-")
        .map(|(flag, _)| *flag)
        .collect();
    if stdin.len() > 1 {
        anyhow::bail!(
            "standard input (`-`) is given to {}: it can be read only once",
            stdin.join(" and ")
        );
    }
    for (flag, input) in inputs {
        if input.as_os_str() != "-" && same_file(out, input) {
            anyhow::bail!(
                "refusing to write {} over the input {flag} {} (the same file)",
                out.display(),
                input.display()
            );
        }
    }
    Ok(())
}

/// Whether both paths name one existing file (through links, relative paths or hard links).
pub(crate) fn same_file(a: &Path, b: &Path) -> bool {
    let (Ok(ma), Ok(mb)) = (std::fs::metadata(a), std::fs::metadata(b)) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        ma.dev() == mb.dev() && ma.ino() == mb.ino()
    }
    #[cfg(not(unix))]
    {
        let _ = (ma, mb);
        matches!(
            (std::fs::canonicalize(a), std::fs::canonicalize(b)),
            (Ok(x), Ok(y)) if x == y
        )
    }
}

/// How to read a corpus or labelled file: format and field names, shared by every command
/// that reads records.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct CorpusArgs {
    /// Input format (default: from the extension; a name without a known extension, or `-`
    /// for standard input, is jsonl when its first non-blank character is `{`, else text).
    #[arg(long, value_enum)]
    format: Option<sprig::corpus::CorpusFormat>,
    /// Field or column holding the text.
    #[arg(long, default_value = "text")]
    text_field: String,
    /// Field or column holding the label (a seed for graph and train, the gold label for eval)
    /// [default: label]. A CSV/TSV column named here must exist.
    #[arg(long, value_name = "LABEL_FIELD")]
    label_field: Option<String>,
    /// Field or column holding the record id [default: id]. A CSV/TSV column named here must
    /// exist.
    #[arg(long, value_name = "ID_FIELD")]
    id_field: Option<String>,
}

impl CorpusArgs {
    /// The flags given, as arguments for another command: `--format`, the text and label
    /// fields, and the id field, apart (an evaluation does not read ids).
    pub(crate) fn argv(&self) -> [Vec<String>; 3] {
        use clap::ValueEnum;
        let format = self.format.iter().flat_map(|f| {
            let name = f.to_possible_value().expect("no skipped variant");
            ["--format".to_owned(), name.get_name().to_owned()]
        });
        // The default text field is left out, so that the printed commands stay short.
        let mut fields = Vec::new();
        if self.text_field != "text" {
            fields.extend(["--text-field".to_owned(), self.text_field.clone()]);
        }
        if let Some(name) = &self.label_field {
            fields.extend(["--label-field".to_owned(), name.clone()]);
        }
        let id = self
            .id_field
            .iter()
            .flat_map(|name| ["--id-field".to_owned(), name.clone()]);
        [format.collect(), fields, id.collect()]
    }

    /// The reading options of a file whose ids nothing uses (`eval`'s test file): its ids
    /// are not read, so whatever its id field holds is not checked; `--id-field` is refused
    /// rather than ignored.
    pub(crate) fn options_without_ids(
        &self,
        command: &str,
    ) -> anyhow::Result<sprig::corpus::CorpusOptions> {
        if self.id_field.is_some() {
            anyhow::bail!("--id-field: `sprig {command}` reads no ids");
        }
        Ok(sprig::corpus::CorpusOptions {
            id_field: None,
            ..self.options()
        })
    }

    /// The library's reading options.
    pub(crate) fn options(&self) -> sprig::corpus::CorpusOptions {
        sprig::corpus::CorpusOptions {
            format: self.format,
            text_field: self.text_field.clone(),
            label_field: self.label_field.clone().unwrap_or_else(|| "label".into()),
            id_field: Some(self.id_field.clone().unwrap_or_else(|| "id".into())),
            require_label: self.label_field.is_some(),
            require_id: self.id_field.is_some(),
        }
    }
}

/// Text normalization and feature flags, shared by every command that reads text.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct TextArgs {
    /// Feature families: u (word unigrams), b (word bigrams), s (skip-bigrams), c (char n-grams).
    #[arg(long, value_delimiter = ',', default_value = "u,b,c")]
    features: Vec<Family>,
    /// Smallest char n-gram of `<word>` [default: 3]. Needs the `c` family.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=16))]
    char_min: Option<u32>,
    /// Largest char n-gram of `<word>` [default: 4]. Needs the `c` family.
    #[arg(long)]
    char_max: Option<u32>,
    /// Weight of the char block against the word block (each L2-normalized first) in the
    /// TF-IDF rows of the graph and of the linear teacher (`train --augment` > 0); the
    /// projection does not use it [default: 1]. Needs the `c` family.
    #[arg(long)]
    char_weight: Option<f32>,
    /// Raw term counts instead of 1 + ln(count).
    #[arg(long)]
    no_sublinear_tf: bool,
    /// Keep case.
    #[arg(long)]
    no_lowercase: bool,
    /// Strip accents (café → cafe), as BERT does: every combining mark goes, which also
    /// damages Devanagari, Thai and Japanese voicing marks; for Latin-script text.
    #[arg(long)]
    strip_accents: bool,
    /// Drop tokens with no letter or digit (punctuation, emoji), like scikit-learn's `\b\w+\b`.
    #[arg(long)]
    drop_punctuation: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Family {
    U,
    B,
    S,
    C,
}

impl TextArgs {
    /// Refuses the char flags without the `c` family, and `--char-weight` where
    /// `weight_used` says nothing reads it: flags that would be ignored.
    pub(crate) fn check_used(&self, weight_used: Result<(), &str>) -> anyhow::Result<()> {
        let given = [
            ("--char-min", self.char_min.is_some()),
            ("--char-max", self.char_max.is_some()),
            ("--char-weight", self.char_weight.is_some()),
        ];
        if !self.features.contains(&Family::C) {
            if let Some((flag, _)) = given.iter().find(|(_, given)| *given) {
                anyhow::bail!("{flag} is for char n-grams, and --features has no `c`");
            }
        }
        if let (Some(_), Err(why)) = (self.char_weight, weight_used) {
            anyhow::bail!("--char-weight would be ignored: {why}");
        }
        Ok(())
    }

    /// The library configs these flags stand for.
    pub(crate) fn configs(&self) -> (sprig::text::TextConfig, sprig::text::FeatureConfig) {
        let has = |f: Family| self.features.contains(&f);
        let chars = has(Family::C);
        let d = sprig::text::FeatureConfig::default();
        (
            sprig::text::TextConfig {
                lowercase: !self.no_lowercase,
                strip_accents: self.strip_accents,
                keep_punctuation: !self.drop_punctuation,
                fold_variants: true,
            },
            sprig::text::FeatureConfig {
                unigrams: has(Family::U),
                bigrams: has(Family::B),
                skip_bigrams: has(Family::S),
                char_min: if chars {
                    self.char_min.unwrap_or(d.char_min)
                } else {
                    0
                },
                char_max: if chars {
                    self.char_max.unwrap_or(d.char_max)
                } else {
                    0
                },
                char_weight: self.char_weight.unwrap_or(d.char_weight),
                sublinear_tf: !self.no_sublinear_tf,
            },
        )
    }
}

/// Flags shared by the subcommands that do long work.
#[derive(clap::Args, Debug)]
pub(crate) struct JobArgs {
    /// Worker threads (0: one per core; at most 1024). The output is identical for any count.
    // Parsed as a signed number, so that `-1` gets the range message, not "invalid digit".
    #[arg(long, default_value_t = 0,
          value_parser = clap::builder::RangedI64ValueParser::<usize>::new().range(0..=1024))]
    pub(crate) threads: usize,
    /// No progress bars, iteration lines or informational notes on stderr. Warnings about
    /// input dropped or skipped (invalid records skipped with --skip-invalid, records left
    /// without a label, edges dropped) are still printed, and the one-line summary still goes
    /// to stdout.
    #[arg(long, short)]
    pub(crate) quiet: bool,
}

/// Configures rayon's global pool: `0` means one thread per core.
pub(crate) fn set_threads(threads: usize) -> anyhow::Result<()> {
    if threads > 0 {
        // Ignore "already initialized": only the first call in a process counts.
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, FromArgMatches};

    #[test]
    fn negative_numbers_reach_every_subcommands_flags() {
        let command = negative_numbers(Cli::command());
        command.clone().debug_assert();
        let parse = |args: &[&str]| {
            let matches = command
                .clone()
                .try_get_matches_from([&["sprig"][..], args].concat())?;
            Cli::from_arg_matches(&matches)
        };
        let cli = parse(&[
            "propagate",
            "--graph",
            "g",
            "--out",
            "o",
            "--tolerance",
            "-1",
        ])
        .expect("a negative value parses");
        let Command::Propagate(args) = cli.command else {
            panic!("propagate")
        };
        assert_eq!(format!("{args:?}").matches("tolerance: -1.0").count(), 1);
        // A nested flag group (`--threads`) and another subcommand; a value-less flag
        // still refuses a stray `-1`.
        for args in [
            &["graph", "--corpus", "c", "--out", "o", "--min-sim", "-0.1"][..],
            &[
                "propagate",
                "--graph",
                "g",
                "--out",
                "o",
                "--damping",
                "-0.1",
            ],
        ] {
            parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        }
        let threads = parse(&["propagate", "--graph", "g", "--out", "o", "--threads", "-1"])
            .unwrap_err()
            .to_string();
        assert!(threads.contains("-1 is not in 0..=1024"), "{threads}");
        let flag = parse(&["propagate", "--graph", "g", "--out", "o", "-q", "-1"]).unwrap_err();
        assert_eq!(flag.kind(), clap::error::ErrorKind::UnknownArgument);
    }
}
