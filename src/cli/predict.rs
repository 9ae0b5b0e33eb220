//! `sprig predict`: model + texts → labels, one answer per input line.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use rayon::prelude::*;
use sprig::corpus::{read_line_bounded, CorpusReader, LineRead, RecordId, MAX_LINE_BYTES};
use sprig::model::{Prediction, ProjectionModel, Scratch};

use super::CorpusArgs;

/// `--top`'s parser: a whole number of at least 1 (clap's range parser would print the
/// range as `1..18446744073709551615`).
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "expected a whole number of at least 1, found {s:?}"
        )),
    }
}

/// Label texts with a trained model. Texts come from the arguments, or from standard input
/// (one per line) when there is none or the only one is `-`, or from the records of a corpus
/// file (`--data`). Answers to standard input are written as soon as no further complete
/// line is waiting (so a caller that sends a line and waits gets its answer at once, and a
/// piped file is answered in large writes); an interrupt can drop the answers of lines that
/// were still waiting.
#[derive(Debug, clap::Args)]
// Predict reads no labels: the shared --label-field is refused (by name), not offered.
#[command(mut_arg("label_field", |a| a.hide(true)))]
pub struct Args {
    /// The `.sprig` model file.
    #[arg(long, value_parser = super::artifact_path)]
    model: PathBuf,
    /// Texts to label (none, or `-`: read standard input line by line).
    texts: Vec<String>,
    /// Label the records of a corpus file instead (JSON Lines, CSV/TSV or text, read as
    /// `graph` reads a corpus; `-`: standard input, each record answered as it arrives, where
    /// a file's are answered in parallel batches): one answer per record, in order, each
    /// after the record's line number and a TAB, or with --json
    /// {"line", "id", "text", "labels"}. Labels in the file are not read (`sprig eval`
    /// scores a model on them).
    #[arg(long, conflicts_with = "texts")]
    data: Option<PathBuf>,
    #[command(flatten)]
    corpus_fields: CorpusArgs,
    /// Worker threads for --data (0: one per core; at most 1024). The output is identical
    /// for any count.
    #[arg(long, default_value_t = 0,
          value_parser = clap::builder::RangedI64ValueParser::<usize>::new().range(0..=1024))]
    threads: usize,
    /// Answer standard input lines that are not UTF-8 (their bad bytes replaced by U+FFFD)
    /// and abstain on lines longer than 1 MiB (an empty answer; `"text":null` with --json),
    /// counted on stderr, instead of stopping at the first. With --data: skip bad records
    /// (no answer; counted, the first five reported on stderr).
    #[arg(long)]
    skip_invalid: bool,
    /// Labels per answer (at least 1).
    #[arg(long, default_value_t = 1, value_parser = at_least_one)]
    top: usize,
    /// Drop labels scoring below this, in [0, 1]; an answer left empty abstains (an empty
    /// line, or `"labels":[]` with --json). A text with no feature always abstains. `sprig
    /// eval` shows what 0.5, 0.7 and 0.9 keep on a labelled file (network scores are
    /// calibrated on training's held-out slice: see `train --calibration`).
    #[arg(long, default_value_t = 0.0, value_parser = super::unit_interval)]
    threshold: f32,
    /// One JSON object per input: {"text", "labels": [{"label", "score"}]}.
    #[arg(long)]
    json: bool,
}

/// The answer line for `text`; `record`, with `--data`, is the record's line and id.
fn answer(
    model: &ProjectionModel,
    preds: &[Prediction],
    args: &Args,
    text: &str,
    record: Option<(u64, Option<&RecordId>)>,
    buf: &mut String,
) {
    use std::fmt::Write as _;
    buf.clear();
    let kept = preds
        .iter()
        .filter(|p| p.score >= args.threshold)
        .take(args.top);
    if args.json {
        buf.push('{');
        if let Some((line, id)) = record {
            let id = id.map_or(serde_json::Value::Null, RecordId::to_json);
            let _ = write!(buf, "\"line\":{line},\"id\":{id},");
        }
        let _ = write!(
            buf,
            "\"text\":{},\"labels\":[",
            serde_json::to_string(text).expect("a string serializes")
        );
        for (i, p) in kept.enumerate() {
            if i > 0 {
                buf.push(',');
            }
            let _ = write!(
                buf,
                "{{\"label\":{},\"score\":{:.6}}}",
                serde_json::to_string(model.label_name(p.label)).expect("a string serializes"),
                p.score
            );
        }
        buf.push_str("]}");
    } else {
        if let Some((line, _)) = record {
            let _ = write!(buf, "{line}\t");
        }
        for (i, p) in kept.enumerate() {
            if i > 0 {
                buf.push('\t');
            }
            let _ = write!(buf, "{}\t{:.6}", model.label_name(p.label), p.score);
        }
    }
    buf.push('\n');
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let fields = &args.corpus_fields;
    if fields.label_field.is_some() {
        anyhow::bail!("--label-field: `sprig predict` reads no labels (`sprig eval` does)");
    }
    // (clap's `requires` is not enforced on flattened arguments.)
    if args.data.is_none()
        && (fields.format.is_some() || fields.text_field != "text" || fields.id_field.is_some())
    {
        anyhow::bail!(
            "--format, --text-field and --id-field describe the file of --data, which was not \
             given (texts and standard input lines are read whole)"
        );
    }
    if args.data.is_none() && args.threads != 0 {
        anyhow::bail!(
            "--threads applies to --data (texts and standard input lines are answered one at \
             a time, in order)"
        );
    }
    let model = ProjectionModel::load(&args.model)?;
    if let Some(data) = &args.data {
        return label_records(&model, data, &args);
    }
    // Buffered: stdout alone is line-buffered, one write per answer. Answers are flushed
    // whenever the input has nothing more buffered (below), so a caller that waits for an
    // answer gets it, and a file piped in is answered in large writes.
    let mut out = super::Stdout::new();
    let mut scratch = Scratch::default();
    let mut buf = String::new();
    let from_stdin = args.texts.is_empty() || (args.texts.len() == 1 && args.texts[0] == "-");
    if args.texts.len() > 1 && args.texts.iter().any(|t| t == "-") {
        // `-` alone means standard input; among texts it would silently be the text "-".
        anyhow::bail!(
            "`-` (standard input) cannot be mixed with texts: give texts, or `-` alone, or \
             nothing"
        );
    }
    if !from_stdin && args.skip_invalid {
        anyhow::bail!("--skip-invalid applies to standard input, not to texts given as arguments");
    }
    if !from_stdin {
        for text in &args.texts {
            let preds = model.predict_top_with(&mut scratch, text, args.top);
            answer(&model, preds, &args, text, None, &mut buf);
            out.write_all(buf.as_bytes())?;
        }
        out.flush()?;
        return Ok(());
    }
    let stdin = std::io::stdin();
    // Lines end at LF, CRLF or a lone CR, as in corpus files.
    let mut input = std::io::BufReader::new(sprig::corpus::LineEnds::new(stdin.lock()));
    let mut raw = Vec::new();
    let (mut n, mut invalid, mut long) = (0u64, 0u64, 0u64);
    loop {
        // Bounded: one huge line (a file with no line ends) would otherwise be held whole,
        // and its features take about 60 times its size.
        let read = read_line_bounded(&mut input, &mut raw, MAX_LINE_BYTES)
            .context("reading standard input")?;
        if read == LineRead::End {
            break;
        }
        n += 1;
        if read == LineRead::TooLong {
            if !args.skip_invalid {
                anyhow::bail!(
                    "standard input line {n}: longer than {} MiB (sprig reads short texts; \
                     --skip-invalid answers such lines with an abstention)",
                    MAX_LINE_BYTES >> 20
                );
            }
            long += 1;
            // Still one answer per input line: an abstention, naming no text (none was kept).
            buf.clear();
            buf.push_str(if args.json {
                "{\"text\":null,\"labels\":[]}\n"
            } else {
                "\n"
            });
        } else {
            let line = match std::str::from_utf8(&raw) {
                Ok(line) => std::borrow::Cow::Borrowed(line),
                // Decoded with U+FFFD for the bad bytes: the answers stay one per input line.
                Err(_) if args.skip_invalid => {
                    invalid += 1;
                    String::from_utf8_lossy(&raw)
                }
                Err(_) => anyhow::bail!(
                    "standard input line {n}: not UTF-8 (--skip-invalid answers such lines \
                 with their bad bytes replaced)"
                ),
            };
            let mut text = line.trim_end_matches(['\n', '\r']);
            if n == 1 {
                // A byte-order mark (a file saved by some Windows editors) is not part of the text.
                text = text.strip_prefix('\u{feff}').unwrap_or(text);
                if looks_like_a_record(text) {
                    errln!(
                        "warning: standard input line 1 is a JSON object with a \"text\" \
                         field, but each line is labelled as one text, braces and all: for \
                         records, `sprig predict --data FILE` (or `--data -`)"
                    );
                } else if text.starts_with("__label__") {
                    // fastText's labelled lines, which a text corpus also reads as labels.
                    errln!(
                        "warning: standard input line 1 starts with `__label__`, which is \
                         labelled as part of the text: for labelled lines, `sprig predict \
                         --data FILE` (or `--data -`) reads the prefix as the label"
                    );
                }
            }
            let preds = model.predict_top_with(&mut scratch, text, args.top);
            answer(&model, preds, &args, text, None, &mut buf);
        }
        out.write_all(buf.as_bytes())?;
        // Unless a whole line is already waiting, the next read may wait for the caller:
        // flush first. (A partial line waiting counts as none: its end may never come
        // before the caller has read the answers so far. Standard input keeps a buffer of
        // its own below this one, so this can flush while lines are waiting there: that
        // costs a write, never an answer held back.)
        if !input.buffer().contains(&b'\n') {
            out.flush()?;
        }
    }
    out.flush()?;
    if invalid > 0 {
        let lines = super::count(invalid, "line", "lines");
        errln!(
            "warning: standard input: {lines} not UTF-8, answered with U+FFFD for the bad bytes"
        );
    }
    if long > 0 {
        let lines = super::count(long, "line", "lines");
        errln!(
            "warning: standard input: {lines} longer than {} MiB, answered with an abstention",
            MAX_LINE_BYTES >> 20
        );
    }
    Ok(())
}

/// Whether a line is a JSON object with a `text` string: a corpus record piped in where
/// texts are expected.
fn looks_like_a_record(line: &str) -> bool {
    line.trim_start().starts_with('{')
        && serde_json::from_str::<serde_json::Value>(line)
            .is_ok_and(|v| v.get("text").is_some_and(serde_json::Value::is_string))
}

/// `--data`: one answer per record of a corpus file, in order, with its line (and id).
fn label_records(model: &ProjectionModel, data: &Path, args: &Args) -> anyhow::Result<()> {
    let options = sprig::corpus::CorpusOptions {
        // Labels are not read: a bad one must not stop the run.
        label_field: String::new(),
        ..args.corpus_fields.options()
    };
    super::set_threads(args.threads)?;
    let mut reader = CorpusReader::open(data, &options)?;
    let mut skips = super::SkipInvalid::new(args.skip_invalid);
    let mut out = super::Stdout::new();
    // Records piped in are answered as they come, as texts on stdin are: the process on the
    // other end may wait for an answer before it writes the next record.
    let streaming = data == Path::new("-");
    let batch_len = if streaming { 1 } else { BATCH };
    let mut batch = Vec::with_capacity(batch_len);
    let mut answers = Vec::with_capacity(batch_len);
    loop {
        // A batch of records, answered in parallel and written in order. A record that
        // stops the run still gets the answers of those before it written first.
        batch.clear();
        let mut failed = None;
        for record in reader.by_ref() {
            match skips.keep(record) {
                Ok(Some(r)) => batch.push(r),
                Ok(None) => {}
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
            if batch.len() == batch_len {
                break;
            }
        }
        batch
            .par_iter()
            .map_init(Scratch::default, |scratch, record| {
                let preds = model.predict_top_with(scratch, &record.text, args.top);
                let mut buf = String::new();
                let at = Some((record.line, record.id.as_ref()));
                answer(model, preds, args, &record.text, at, &mut buf);
                buf
            })
            .collect_into_vec(&mut answers);
        for a in &answers {
            out.write_all(a.as_bytes())?;
        }
        if streaming {
            out.flush()?;
        }
        if let Some(e) = failed {
            out.flush()?;
            return Err(e);
        }
        if batch.len() < batch_len {
            break;
        }
    }
    out.flush()?;
    if let Some(note) = skips.note() {
        errln!("warning: {note}");
    }
    Ok(())
}

/// Records `--data` answers at a time, in parallel.
const BATCH: usize = 4096;
