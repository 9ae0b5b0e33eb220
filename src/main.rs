//! The `sprig` binary: parses the command line, dispatches to one subcommand, and maps
//! errors to one line on stderr and exit code 2.

mod cli;

use std::io::Write as _;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Ctrl-C, SIGTERM or SIGHUP end the process as their default action would, but first
    // delete the temporary file of an output being written (outputs reach their final name
    // only whole, by a rename; the temporary is all an interrupt could leave behind). During
    // `train`'s epochs the first one stops training after the epoch instead, and the model is
    // written (`cli::interrupt`).
    let _ = ctrlc::set_handler(cli::interrupt::on_signal);
    let args = cli::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // A closed stdout (`sprig predict ... | head`) is not an error, as in ripgrep.
            let broken_pipe = |e: &std::io::Error| e.kind() == std::io::ErrorKind::BrokenPipe;
            if err.chain().any(|c| {
                c.downcast_ref::<std::io::Error>().is_some_and(broken_pipe)
                    || matches!(c.downcast_ref(), Some(sprig::Error::Io { error, .. }) if broken_pipe(error))
            }) {
                return ExitCode::SUCCESS;
            }
            // Not `eprintln!`, which would panic if stderr were closed too.
            let _ = writeln!(std::io::stderr().lock(), "sprig: {}", one_line(&err));
            ExitCode::from(2)
        }
    }
}

/// The command-line flag for a library config field named in
/// [`sprig::Error::InvalidConfig`]: the user typed the flag, not the field. Fields with no
/// flag of their own (seeds from the corpus, the text path) keep their name.
fn flag_of(field: &str) -> Option<&'static str> {
    Some(match field {
        "seed_weight" => "--mu1",
        "smoothness_weight" => "--mu2",
        "prior_weight" => "--mu3",
        "learning_rate" => "--lr",
        "batch_size" => "--batch",
        "epochs" => "--epochs",
        "patience" => "--patience",
        "validation" => "--validation",
        "input_dropout" => "--input-dropout",
        "ema_decay" => "--ema",
        "augment" => "--augment",
        "soft_weight" => "--lambda",
        "labels" => "--labels",
        "min_confidence" => "--min-confidence",
        "hidden" => "--hidden",
        "table_k" => "--table-k",
        "table_min_texts" => "--table-min-texts",
        "joint" => "--joint",
        "joint.dim" => "--joint-dim",
        "joint.embedding_lr" => "--joint-lr",
        "joint.buckets_log2" => "--joint-buckets",
        "joint.trainer_weight" | "joint.simulation_weight" | "joint.ground_truth_weight" => {
            "--joint-lambdas"
        }
        "functions" => "--functions",
        "bits" => "--bits",
        "coefficients" => "--coefficients",
        "features" => "--features",
        "char_max" => "--char-max",
        "char_weight" => "--char-weight",
        "k" => "--k",
        "min_sim" => "--min-sim",
        "max_df" => "--max-df",
        "iterations" => "--iterations",
        "tolerance" => "--tolerance",
        "top_k" => "--top-k",
        "damping" => "--damping",
        "alpha" => "--alpha",
        "beta" => "--beta",
        "algorithm" => "--algorithm",
        "class_prior" => "--class-prior/--prior",
        "kind" => "--kind",
        "workers" => "--workers",
        "process" => "--process",
        _ => return None,
    })
}

/// The error and its causes on one line, without repeating a cause already in the message.
fn one_line(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let s = match cause.downcast_ref::<sprig::Error>() {
            Some(sprig::Error::InvalidConfig { field, reason }) => match flag_of(field) {
                Some(flag) => format!("invalid {flag}: {reason}"),
                None => cause.to_string(),
            },
            _ => cause.to_string(),
        };
        if out.contains(&s) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&s);
    }
    out.replace('\n', " ")
}
