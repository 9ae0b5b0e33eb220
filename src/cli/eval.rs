//! `sprig eval`: model + labelled file → accuracy, macro-F1, per-label scores, confusion.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde_json::json;
use sprig::corpus::CorpusReader;
use sprig::metrics::{Confusion, Reliability, RELIABILITY_BINS};
use sprig::model::{ProjectionModel, Scratch};
use unicode_width::UnicodeWidthStr;

use super::CorpusArgs;

/// Score a model on a labelled file: accuracy, macro-F1, the answers' scores (their mean,
/// their expected calibration error, and what `predict --threshold` 0.5, 0.7 and 0.9 would
/// answer and how accurately: other thresholds with --thresholds), per-label precision /
/// recall / F1 and the confusion matrix (rows: gold, columns: predicted, then abstentions
/// if any; above 64 labels, the 30 most frequent confusions). An abstention counts as a
/// wrong answer and against its gold label's recall; it is no label.
#[derive(Debug, clap::Args)]
// An evaluation reads no ids: the shared --id-field is refused (by name) rather than offered.
#[command(mut_arg("id_field", |a| a.hide(true)))]
pub struct Args {
    /// The `.sprig` model file.
    #[arg(long, value_parser = super::artifact_path)]
    model: PathBuf,
    /// Labelled records (unlabelled ones are skipped and counted).
    #[arg(long)]
    data: PathBuf,
    #[command(flatten)]
    corpus_fields: CorpusArgs,
    /// Skip bad records (counted, the first five reported on stderr) instead of stopping at
    /// the first.
    #[arg(long)]
    skip_invalid: bool,
    /// Score thresholds to report what `predict --threshold` would keep at, comma-separated,
    /// each in [0, 1].
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "0.5,0.7,0.9",
        value_parser = super::unit_interval
    )]
    thresholds: Vec<f32>,
    /// One JSON object with `accuracy` and `macro_f1` at the top level; `confusion` lists
    /// the (gold, predicted) pairs that occur, with their counts; `mean_score`,
    /// `calibration_error` and `thresholds` describe the answers' scores.
    #[arg(long)]
    json: bool,
}

/// Labels up to which the text output prints the whole confusion matrix.
const MATRIX_UP_TO: usize = 64;

/// Confusions listed instead when there are more labels.
const TOP_CONFUSIONS: usize = 30;

pub fn run(args: Args) -> anyhow::Result<()> {
    let options = args.corpus_fields.options_without_ids("eval")?;
    let model = ProjectionModel::load(&args.model)?;
    let mut confusion = Confusion::new();
    let mut reliability = Reliability::with_thresholds(&args.thresholds);
    let mut scratch = Scratch::default();
    let mut unlabelled = 0u64;
    let mut skips = super::SkipInvalid::new(args.skip_invalid);
    let reader = CorpusReader::open(&args.data, &options)?;
    let format = reader.format();
    for record in reader {
        let Some(record) = skips.keep(record)? else {
            continue;
        };
        let Some(gold) = &record.label else {
            unlabelled += 1;
            continue;
        };
        match model
            .predict_top_with(&mut scratch, &record.text, 1)
            .first()
        {
            Some(p) => {
                let predicted = model.label_name(p.label);
                confusion.add(gold, predicted);
                reliability.add(p.score, predicted == gold);
            }
            None => {
                confusion.add_abstention(gold);
                reliability.add_abstention();
            }
        }
    }
    if let Some(note) = skips.note() {
        // Before any result: a score over fewer records than the file holds must say so.
        errln!("warning: {note}");
    }
    let skipped = skips.count;
    if confusion.total() == 0 {
        if unlabelled > 0 {
            // Most often the gold labels sit under another field or column name, or the
            // file was read as plain text (a pipe whose first byte is not `{`).
            let labelled_how = if format == sprig::corpus::CorpusFormat::Text {
                "a `__label__NAME` prefix (it was read as plain text: if it is CSV, TSV or JSON \
                 Lines, say so with --format)"
                    .to_owned()
            } else {
                format!(
                    "a label under {:?} (name the gold labels' field or column with \
                     --label-field)",
                    options.label_field
                )
            };
            anyhow::bail!(
                "{}: no labelled record to evaluate: none of its {unlabelled} records has \
                 {labelled_how}",
                args.data.display(),
            );
        }
        anyhow::bail!("{}: no labelled record to evaluate", args.data.display());
    }
    // Gold labels the model never learned cannot be predicted: worth a word on stderr, since
    // a renamed label or the wrong model shows up here first.
    let per = confusion.per_label();
    let unknown: Vec<&str> = per
        .iter()
        .filter(|p| p.support > 0 && !model.labels().contains(&p.label))
        .map(|p| p.label.as_str())
        .collect();
    if !unknown.is_empty() {
        // A label that differs from a model label only in case is the likeliest slip.
        let case_twin = super::case_twin(unknown.iter().copied(), model.labels(), "the model's");
        errln!(
            "warning: {} gold label(s) of {} are not among the model's labels: {}{}",
            unknown.len(),
            args.data.display(),
            unknown.join(", "),
            case_twin.unwrap_or_default()
        );
    }
    if args.json {
        let obj = json!({
            "accuracy": confusion.accuracy(),
            "macro_f1": confusion.macro_f1(),
            "mean_score": reliability.mean_score(),
            "calibration_error": reliability.calibration_error(),
            "thresholds": reliability.at_thresholds(),
            "examples": confusion.total(),
            "unlabelled_skipped": unlabelled,
            "invalid_skipped": skipped,
            "model": args.model.display().to_string(),
            "data": args.data.display().to_string(),
            "per_label": per,
            "labels": confusion.labels(),
            // Sparse, so that thousands of labels do not print the square of their number.
            "confusion": confusion
                .pairs()
                .map(|(gold, predicted, count)| json!({
                    "gold": gold, "predicted": predicted, "count": count
                }))
                .collect::<Vec<_>>(),
            "abstained": confusion
                .abstentions()
                .collect::<std::collections::BTreeMap<_, _>>(),
        });
        outln!("{obj}")?;
        return Ok(());
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "examples {}  accuracy {:.4}  macro-F1 {:.4}{}",
        confusion.total(),
        confusion.accuracy(),
        confusion.macro_f1(),
        match (unlabelled, skipped) {
            (0, 0) => String::new(),
            (u, 0) => format!("  ({u} unlabelled skipped)"),
            (0, i) => format!("  ({i} invalid skipped)"),
            (u, i) => format!("  ({u} unlabelled and {i} invalid skipped)"),
        }
    );
    // How far the scores can be read as probabilities, and what `predict --threshold` keeps.
    let _ = writeln!(
        s,
        "top scores: mean {:.4}, expected calibration error {:.4} ({RELIABILITY_BINS} bins)\n\
         --threshold  answered  accuracy",
        reliability.mean_score(),
        reliability.calibration_error(),
    );
    for t in reliability.at_thresholds() {
        // A dash where nothing was answered: there is no accuracy to show.
        let accuracy = t
            .accuracy
            .map_or_else(|| "-".to_owned(), |a| format!("{a:.4}"));
        let _ = writeln!(
            s,
            "{:>11}  {:>7.1}%  {accuracy:>8}",
            t.threshold,
            100.0 * t.answered,
        );
    }
    let width = per
        .iter()
        .map(|p| p.label.width())
        .max()
        .unwrap_or(5)
        .max(5);
    let _ = writeln!(
        s,
        "\n{}  precision  recall      f1  support",
        pad("label", width)
    );
    for p in &per {
        let _ = writeln!(
            s,
            "{}  {:>9.4}  {:>6.4}  {:>6.4}  {:>7}",
            pad(&p.label, width),
            p.precision,
            p.recall,
            p.f1,
            p.support
        );
    }
    let labels = confusion.labels();
    let abstained: Vec<u64> = labels.iter().map(|l| confusion.abstained(l)).collect();
    let any_abstained = abstained.iter().any(|&n| n > 0);
    if labels.len() > MATRIX_UP_TO {
        // A matrix this wide is unreadable: the most frequent confusions instead.
        let mut wrong: Vec<(&str, &str, u64)> =
            confusion.pairs().filter(|(g, p, _)| g != p).collect();
        wrong.sort_by(|a, b| b.2.cmp(&a.2).then((a.0, a.1).cmp(&(b.0, b.1))));
        let _ = writeln!(
            s,
            "\nmost frequent confusions ({} labels: the matrix is in --json; {} of {} \
             confused pairs)",
            labels.len(),
            wrong.len().min(TOP_CONFUSIONS),
            wrong.len()
        );
        for (gold, predicted, n) in wrong.iter().take(TOP_CONFUSIONS) {
            let _ = writeln!(s, "{n:>7}  {gold} → {predicted}");
        }
        let none: u64 = confusion.abstentions().map(|(_, n)| n).sum();
        if none > 0 {
            let _ = writeln!(s, "{none:>7}  abstained");
        }
        out!("{s}")?;
        return Ok(());
    }
    let _ = writeln!(
        s,
        "\nconfusion (rows: gold, columns: predicted, in the order above{})",
        if any_abstained {
            ", then the abstentions"
        } else {
            ""
        }
    );
    // Each cell one space wider than the largest count, so counts never run together.
    let digits = confusion
        .pairs()
        .map(|(_, _, n)| n)
        .chain(abstained.iter().copied())
        .map(|c| c.to_string().len())
        .max()
        .unwrap_or(1);
    let cell = digits.max(4) + 1;
    for (gold, &none) in labels.iter().zip(&abstained) {
        let mut cells: Vec<String> = labels
            .iter()
            .map(|p| format!("{:>cell$}", confusion.count(gold, p)))
            .collect();
        if any_abstained {
            cells.push(format!("{none:>cell$}"));
        }
        let _ = writeln!(s, "{} {}", pad(gold, width), cells.join(""));
    }
    out!("{s}")?;
    Ok(())
}

/// `s` padded with spaces to `width` terminal columns: by display width, not by `char`s, so
/// that CJK and emoji labels (two columns each) keep the table aligned.
fn pad(s: &str, width: usize) -> String {
    format!("{s}{}", " ".repeat(width.saturating_sub(s.width())))
}

#[cfg(test)]
mod tests {
    use super::pad;

    #[test]
    fn labels_are_padded_by_display_width() {
        // Two columns per CJK character and per emoji: the same width as 6 ASCII letters.
        for label in ["意図_0", "😀emoj", "abcdef"] {
            assert_eq!(unicode_width::UnicodeWidthStr::width(label), 6, "{label}");
            assert_eq!(
                unicode_width::UnicodeWidthStr::width(pad(label, 9).as_str()),
                9
            );
        }
        assert_eq!(pad("abcdefghij", 4), "abcdefghij");
    }
}
