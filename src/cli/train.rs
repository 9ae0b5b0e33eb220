//! `sprig train`: corpus (+ propagated labels) → `.sprig` projection model.

use std::io::BufReader;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use anyhow::Context;
use sprig::corpus::{CorpusReader, Record};
use sprig::model::{ModelKind, Predictor, ProjectionModel};
use sprig::network::Quantization;
use sprig::projection::{Coefficients, ProjectionConfig, Projector, Scheme};
use sprig::seeds::{read_seed_file, record_seeds};
use sprig::text::{TextPipeline, Tokens};
use sprig::train::{
    train_scored, Calibration, Confidence, JointConfig, LrSchedule, TrainConfig, TrainSet, Trained,
};

use super::progress::Bars;
use super::{CorpusArgs, TextArgs};

/// A held-out accuracy this far below the linear teacher's gets a warning.
const TEACHER_GAP: f64 = 0.2;

fn defaults() -> TrainConfig {
    TrainConfig::default()
}

fn projection() -> ProjectionConfig {
    ProjectionConfig::default()
}

/// Train a projection model on a corpus's seed labels and, with --labels, the labels
/// `sprig propagate` spread over it.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Ctrl-C (or SIGTERM, or SIGHUP) during the epochs stops training after the \
    epoch and writes the model of the best epoch so far (exit code 130); a second one quits \
    without it."
)]
pub struct Args {
    /// Corpus file (the one the graph was built from, when --labels is given).
    #[arg(long)]
    corpus: PathBuf,
    /// Propagated labels (JSONL from `sprig propagate`), joined on the record line. Without
    /// it, the model is trained on the corpus's own labels only.
    #[arg(long)]
    labels: Option<PathBuf>,
    /// Seed file (as `sprig graph --seeds` / `sprig propagate --seeds` take it): its labels
    /// train as seeds, in place of the corpus labels of the records it names.
    #[arg(long)]
    seeds: Option<PathBuf>,
    /// Output `.sprig` model file (written atomically).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    corpus_fields: CorpusArgs,
    /// Skip bad records (counted, the first five reported on stderr) instead of stopping at
    /// the first.
    #[arg(long)]
    skip_invalid: bool,
    /// Model kind: a dense network, or a bucket → labels table (no multiply at all; its
    /// scores are vote shares, not calibrated).
    #[arg(long, value_enum, default_value_t = defaults().kind)]
    kind: ModelKind,
    /// T: projection hash functions.
    #[arg(long, default_value_t = projection().functions)]
    functions: u32,
    /// d: bits per function, at most 32 (64 for binary coefficients). SGNN's 14 by default;
    /// 28 with `--hidden 64` is the same size, predicts about 5% slower, and measured −0.7
    /// to +0.6 points against the default (see benches/README.md).
    #[arg(long, default_value_t = projection().bits)]
    bits: u32,
    /// Hyperplane coefficients: ternary {-1,0,1} or binary ±1 (the dense schemes). The
    /// sketch scheme is ternary (one ±1 per function, zeros elsewhere) and refuses binary.
    #[arg(long, value_enum, default_value_t = projection().coefficients)]
    coefficients: Coefficients,
    /// Let every function see all features (default: half word, half char features).
    #[arg(long)]
    unstructured: bool,
    /// How hashes give the projection's coefficients: sparse ±1 on one bit per function
    /// (sketch), or dense hyperplanes from one hash per function or per pair of functions.
    #[arg(long, value_enum, default_value_t = projection().scheme)]
    scheme: Scheme,
    /// Seed of the projection's hash functions.
    #[arg(long, default_value_t = projection().seed)]
    projection_seed: u64,
    /// Hidden layer widths, comma-separated (e.g. 256,256); networks only [default: 128].
    #[arg(long, value_delimiter = ',')]
    hidden: Option<Vec<usize>>,
    /// Epoch cap. Without a held-out slice (a small labelled set), the default cap is
    /// raised to make 3,000 optimizer steps; a cap given here is kept. Networks only
    /// [default: 60].
    #[arg(long)]
    epochs: Option<usize>,
    /// Stop after this many epochs without a better held-out score. Networks only
    /// [default: 8].
    #[arg(long)]
    patience: Option<usize>,
    /// Adam learning rate. Networks only [default: 0.001].
    #[arg(long)]
    lr: Option<f32>,
    /// How the learning rate moves over the run: constant, or cosine annealing from --lr
    /// down to nearly 0 at the epoch cap. Networks only [default: constant].
    #[arg(long, value_enum)]
    lr_schedule: Option<LrSchedule>,
    /// Examples per mini-batch. Networks only [default: 64].
    #[arg(long)]
    batch: Option<usize>,
    /// λ: weight of propagated (soft) labels against seeds (with --labels); 0: seeds alone.
    #[arg(long, default_value_t = defaults().soft_weight, requires = "labels")]
    lambda: f32,
    /// Skip propagated labels whose confidence is below this (with --labels).
    #[arg(long, default_value_t = defaults().min_confidence, requires = "labels")]
    min_confidence: f32,
    /// Confidence of a propagated label: 1 − unknown mass, or the top score (with --labels).
    #[arg(long, value_enum, default_value_t = defaults().confidence, requires = "labels")]
    confidence: Confidence,
    /// Share of the labelled records held out for early stopping, in [0, 0.5] (0: none).
    /// By default only propagated labels are held out (0.1 of them, when that is at least
    /// 200 records): trained on gold labels alone (seeds, or no --labels), every epoch runs,
    /// which measured better; a share given here holds out gold labels too. Networks only
    /// [default: 0.1].
    #[arg(long)]
    validation: Option<f32>,
    /// Seed of initialization, shuffling and the held-out split. Networks only [default: 1].
    #[arg(long)]
    seed: Option<u64>,
    /// Input dropout: share of the projection bits zeroed per training example and epoch.
    /// Networks only [default: 0.5].
    #[arg(long)]
    input_dropout: Option<f32>,
    /// Decay per step of the moving average of the weights that is kept and exported (0: off).
    /// Networks only [default: 0.998].
    #[arg(long)]
    ema: Option<f32>,
    /// Distil a linear teacher through N perturbed copies of each training text (0: off);
    /// at 4, training takes about three times as long as without copies. Networks only
    /// [default: 4].
    #[arg(long)]
    augment: Option<usize>,
    /// How weights are stored: int4 (first layer 4-bit, later layers 8-bit, one scale per
    /// row), int8, or none (f32). Networks only [default: int4].
    #[arg(long, value_enum, conflicts_with = "float")]
    quantize: Option<Quantization>,
    /// Keep f32 weights: the same as --quantize none. Networks only.
    #[arg(long)]
    float: bool,
    /// How scores are calibrated: temperature (the logits scaled by one factor fitted on the
    /// held-out slice, so that a score of 0.9 is about 90% agreement with the held-out
    /// labels; without one, on a tenth of the propagated labels scored by a second network
    /// trained without them, which doubles the training time; not for gold labels alone
    /// with nothing held out, nor below 300 propagated labels; the answers do not change) or
    /// none (the scores as trained: a model distilled from propagated labels inherits their
    /// softness). Networks only [default: temperature].
    #[arg(long, value_enum)]
    calibration: Option<Calibration>,
    /// Labels kept per bucket (--kind table) [default: 3].
    #[arg(long)]
    table_k: Option<usize>,
    /// Leave out buckets holding fewer than this many texts (--kind table) [default: 1].
    #[arg(long)]
    table_min_texts: Option<usize>,
    /// Train ProjectionNet's joint "trainer" network (hashed n-gram embeddings) alongside
    /// and distil it into the projection network; only the latter is saved.
    #[arg(long)]
    joint: bool,
    /// λ1,λ2,λ3 of the joint loss: trainer, simulation (trainer → projection), ground truth
    /// (`1,1,1` or `1 1 1`).
    #[arg(long, value_delimiter = ',', num_args = 1..=3, default_value = "1,1,1", requires = "joint")]
    joint_lambdas: Vec<f32>,
    /// Embedding width of the joint trainer.
    #[arg(long, default_value_t = JointConfig::default().dim, requires = "joint")]
    joint_dim: usize,
    /// log2 of the joint trainer's embedding rows.
    #[arg(long, default_value_t = JointConfig::default().buckets_log2, requires = "joint")]
    joint_buckets: u32,
    /// SGD step of the joint trainer's embedding rows.
    #[arg(long, default_value_t = JointConfig::default().embedding_lr, requires = "joint")]
    joint_lr: f32,
    #[command(flatten)]
    text: TextArgs,
    #[command(flatten)]
    job: super::JobArgs,
}

fn read_records(args: &Args, bars: &Bars) -> anyhow::Result<Vec<Record>> {
    let options = args.corpus_fields.options();
    let reader = CorpusReader::open(&args.corpus, &options)?;
    let path = reader.path().to_owned();
    // A text with no token after normalization: `graph` refuses it (or skips it with
    // --skip-invalid), and so does `train`. (A text with tokens but no feature, a single word
    // under `--features b`, also projects to zeros; both accept it, as one text of a
    // corpus whose other texts have features.)
    let (text, features) = args.text.configs();
    let pipeline = TextPipeline::new(&text, &features)?;
    let mut tokens = Tokens::default();
    let mut records = Vec::new();
    let mut skips = super::SkipInvalid::new(args.skip_invalid);
    // Ids must be unique, as `graph` requires: the first record with an id keeps it.
    let mut ids = sprig::corpus::IdIndex::default();
    let id_field = options.id_field.clone().unwrap_or_default();
    for r in reader {
        let r = r.and_then(|r| {
            pipeline.tokenize_into(&r.text, &mut tokens);
            if tokens.is_empty() {
                return Err(sprig::Error::empty_text(&path, r.line, &options.text_field));
            }
            ids.check(&records, &r, &path, &id_field)?;
            Ok(r)
        });
        if let Some(r) = skips.keep(r)? {
            records.push(r);
            ids.add(&records, records.len() - 1);
        }
    }
    if records.is_empty() {
        return Err(sprig::Error::EmptyCorpus {
            path: args.corpus.clone(),
            skipped: skips.count,
            first_skipped: skips.first.into_iter().next(),
        }
        .into());
    }
    if let Some(note) = skips.note() {
        bars.warn(&note);
    }
    Ok(records)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    super::set_threads(args.job.threads)?;
    let mut inputs = vec![("--corpus", args.corpus.as_path())];
    inputs.extend(args.labels.as_deref().map(|p| ("--labels", p)));
    inputs.extend(args.seeds.as_deref().map(|p| ("--seeds", p)));
    super::check_not_an_input(&args.out, &inputs)?;
    check_flags(&args)?;
    let bars = Bars::new(args.job.quiet);
    let started = std::time::Instant::now();
    let (text, features) = args.text.configs();
    let projection = ProjectionConfig {
        functions: args.functions,
        bits: args.bits,
        seed: args.projection_seed,
        coefficients: args.coefficients,
        structured: !args.unstructured,
        scheme: args.scheme,
    };
    let config = train_config(&args);
    config.validate()?;
    projection.validate()?;
    let records = read_records(&args, &bars)?;
    let seeds = match &args.seeds {
        Some(path) => record_seeds(&records, path, &read_seed_file(path)?)?,
        None => Vec::new(),
    };
    let set = match &args.labels {
        None => TrainSet::supervised_with(&records, &seeds)
            .with_context(|| format!("{}: no labelled record", args.corpus.display()))?,
        Some(path) => {
            let file = sprig::corpus::open_input(path)?;
            TrainSet::distilled_with(&records, &seeds, &mut BufReader::new(file), path, &config)?
        }
    };
    // The set holds what training reads: the records need not stay beside it (measured on
    // a million of SwDA's records, `--epochs 1`: peak RSS 912 → 750 MB).
    drop((records, seeds));
    set_notes(&bars, &args, &set, &config);
    // A table is built in one step: nothing to stop early.
    let interrupt = (config.kind == ModelKind::Network).then(super::interrupt::arm);
    // Whether a stop was asked for during the calibration network's epochs, which ends that
    // network only: the model is whole, its scores uncalibrated.
    let mut calibration_cut = false;
    let mut on_epoch = |s: &sprig::train::EpochStats| {
        let trainer = s
            .trainer_val_accuracy
            .map(|a| format!(", trainer {a:.4}"))
            .unwrap_or_default();
        let held_out = if s.held_out == 0 {
            "no held-out slice".to_owned()
        } else {
            format!(
                "held-out accuracy {:.4}, loss {:.4}",
                s.val_accuracy, s.val_loss
            )
        };
        bars.note(&format!(
            "{}epoch {:>3}: train loss {:.4}, {held_out}{trainer}",
            if s.calibration {
                "calibration network, "
            } else {
                ""
            },
            s.epoch,
            s.train_loss
        ));
        let flow = interrupt
            .as_ref()
            .map_or(ControlFlow::Continue(()), |i| i.flow());
        calibration_cut |= s.calibration && flow.is_break();
        flow
    };
    let Trained {
        model,
        held_out_accuracy,
        ..
    } = train_scored(
        &set,
        &Projector::new(&text, &features, &projection)?,
        &config,
        &bars,
        &mut on_epoch,
    )?;
    drop(interrupt);
    let report = model.train_report();
    let interrupted = report["stopped"] == true || calibration_cut;
    if report["stopped"] == true {
        bars.warn(&format!(
            "interrupted: the model written keeps epoch {} of the {} run (exit code 130)",
            report["best_epoch"], report["epochs_run"]
        ));
    } else if calibration_cut {
        bars.warn(
            "interrupted while calibrating: the model written is fully trained, its scores \
             not calibrated (exit code 130)",
        );
    }
    if let (Some(network), Some(teacher)) =
        (held_out_accuracy, report["teacher_val_accuracy"].as_f64())
    {
        // Normally within a few points of each other (HWU64: 84 and 87%). Far below, the
        // projection cannot tell the labels apart (a review's 10,000 labels: 0.4 against
        // 97%), and a user would only find out from a test set.
        // A run cut short has not shown what the network can do: after Ctrl-C the warning
        // above says so, and a network still improving at its last epoch may only need more
        // of them (a review saw the capacity diagnosis after `--epochs 1`, which three epochs
        // made false).
        let still_improving = report["best_epoch"] == report["epochs_run"];
        if network + TEACHER_GAP < teacher && !interrupted {
            let why = format!(
                "its projection and layers cannot tell {} apart (README: Many labels)",
                super::count(set.labels.len() as u64, "label", "labels")
            );
            bars.warn(&if still_improving {
                format!(
                    "the network scores {network:.4} on the held-out slice, far below the \
                     linear teacher's {teacher:.4}, and was still improving at its last epoch \
                     ({}): more epochs (--epochs) may close the gap; if they do not, {why}",
                    report["epochs_run"]
                )
            } else {
                format!(
                    "the network scores {network:.4} on the held-out slice, far below the \
                     linear teacher's {teacher:.4}: {why}; the propagated labels may serve \
                     better"
                )
            });
        }
    }
    // The size from the bytes written, not from the path: `--out -` has none.
    let bytes = model.to_bytes();
    // Its errors name the file.
    sprig::format::write_bytes_atomic(&args.out, &bytes)?;
    let file_bytes = bytes.len();
    let detail = detail(&model, &config, held_out_accuracy);
    super::summary(
        &args.out,
        format_args!(
            "{}: {} model, {}, {}, {}; {} bytes ({:.2}s)",
            args.out.display(),
            model.kind(),
            super::count(set.labels.len() as u64, "label", "labels"),
            super::count(set.examples.len() as u64, "example", "examples"),
            detail,
            file_bytes,
            started.elapsed().as_secs_f64()
        ),
    )?;
    if interrupted {
        // The model is written, and a script (`sprig train … && sprig eval …`) still learns
        // that the run was cut short: 130, as the interrupt's default action would give.
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        std::process::exit(130);
    }
    Ok(())
}

/// Refuses flags that would be ignored (those of the other model kind, or of the linear
/// teacher when none is trained) and a malformed `--joint-lambdas`.
fn check_flags(args: &Args) -> anyhow::Result<()> {
    let table = args.kind == ModelKind::Table;
    for (flag, given, for_table) in [
        ("--hidden", args.hidden.is_some(), false),
        ("--epochs", args.epochs.is_some(), false),
        ("--patience", args.patience.is_some(), false),
        ("--lr", args.lr.is_some(), false),
        ("--lr-schedule", args.lr_schedule.is_some(), false),
        ("--batch", args.batch.is_some(), false),
        ("--validation", args.validation.is_some(), false),
        ("--input-dropout", args.input_dropout.is_some(), false),
        ("--ema", args.ema.is_some(), false),
        ("--seed", args.seed.is_some(), false),
        ("--augment", args.augment.is_some(), false),
        ("--float", args.float, false),
        ("--quantize", args.quantize.is_some(), false),
        ("--calibration", args.calibration.is_some(), false),
        ("--table-k", args.table_k.is_some(), true),
        ("--table-min-texts", args.table_min_texts.is_some(), true),
    ] {
        if given && for_table != table {
            anyhow::bail!(
                "{flag} applies to --kind {}, not to --kind {}",
                if for_table { "table" } else { "network" },
                args.kind
            );
        }
    }
    // The char block's weight reaches only the linear teacher of the augmented copies.
    args.text.check_used(if table {
        Err("--kind table trains no linear teacher")
    } else if args.augment == Some(0) {
        Err("--augment 0 trains no linear teacher")
    } else {
        Ok(())
    })?;
    if args.joint_lambdas.len() != 3 {
        anyhow::bail!(
            "--joint-lambdas takes three values (λ1,λ2,λ3), got {}",
            args.joint_lambdas.len()
        );
    }
    Ok(())
}

/// The training configuration the flags ask for: the library's defaults where a flag is not
/// given.
fn train_config(args: &Args) -> TrainConfig {
    TrainConfig {
        kind: args.kind,
        hidden: args.hidden.clone().unwrap_or(defaults().hidden),
        epochs: args.epochs.unwrap_or(defaults().epochs),
        patience: args.patience.unwrap_or(defaults().patience),
        learning_rate: args.lr.unwrap_or(defaults().learning_rate),
        lr_schedule: args.lr_schedule.unwrap_or(defaults().lr_schedule),
        batch_size: args.batch.unwrap_or(defaults().batch_size),
        soft_weight: args.lambda,
        min_confidence: args.min_confidence,
        confidence: args.confidence,
        validation: args.validation.unwrap_or(defaults().validation),
        min_held_out: defaults().min_held_out,
        // A share given by hand holds out seeds too, when they are the pool.
        hold_out_seeds: args.validation.is_some(),
        // An epoch count given by hand is kept as given.
        min_steps: if args.epochs.is_some() {
            0
        } else {
            defaults().min_steps
        },
        input_dropout: args.input_dropout.unwrap_or(defaults().input_dropout),
        ema_decay: args.ema.unwrap_or(defaults().ema_decay),
        augment: args.augment.unwrap_or(defaults().augment),
        seed: args.seed.unwrap_or(defaults().seed),
        quantize: match (args.float, args.quantize) {
            (true, _) => Quantization::None,
            (false, q) => q.unwrap_or(defaults().quantize),
        },
        calibration: args.calibration.unwrap_or(defaults().calibration),
        table_k: args.table_k.unwrap_or(defaults().table_k),
        table_min_texts: args.table_min_texts.unwrap_or(defaults().table_min_texts),
        joint: args.joint.then(|| JointConfig {
            buckets_log2: args.joint_buckets,
            dim: args.joint_dim,
            embedding_lr: args.joint_lr,
            trainer_weight: args.joint_lambdas[0],
            simulation_weight: args.joint_lambdas[1],
            ground_truth_weight: args.joint_lambdas[2],
        }),
    }
}

/// What the train set holds, on stderr: its counts, and notes on whatever in the labels
/// file or the seeds looks wrong.
fn set_notes(bars: &Bars, args: &Args, set: &TrainSet, config: &TrainConfig) {
    let c = set.counts;
    // The labels-file notes below count lines of it, so they are zero without one.
    let labels_file = args.labels.as_deref().unwrap_or(Path::new(""));
    let joined = c.seeds + c.propagated + c.abstained + c.low_confidence;
    if let (Some(path), true) = (&args.labels, joined < c.records) {
        bars.warn(&format!(
            "{} of {} records have neither a label nor a line in {} (records that \
             `graph --skip-invalid` skipped, or labels propagated over another corpus, or cut \
             short?)",
            c.records - joined,
            c.records,
            path.display()
        ));
    }
    if let Some(note) = super::case_note(&set.labels) {
        bars.note(&note);
    }
    if set.labels.len() == 1 {
        bars.note(&format!(
            "note: one label only ({:?}): the model will give it to every text",
            set.labels[0]
        ));
    }
    if c.seed_disagreements > 0 {
        bars.note(&format!(
            "note: {} \"seed\": false for a record labelled here (by the \
             corpus or --seeds); training uses those labels. Were the labels propagated over \
             another corpus, or another order of it, or with other seeds?",
            super::lines_of_say(c.seed_disagreements, labels_file),
        ));
    }
    if c.seeds_relabelled > 0 {
        bars.note(&format!(
            "note: {} \"seed\": true for a record labelled here whose propagated \
             top label is another label. If propagation took a seed file that relabels them, \
             give it to --seeds too",
            super::lines_of_say(c.seeds_relabelled, labels_file),
        ));
    }
    if c.seeds_not_given > 0 && c.seeds == 0 {
        // Not one label read from the corpus: most likely `graph` read them from a field or
        // column of another name than the one read here.
        bars.warn(&format!(
            "{} \"seed\": true for a record with no label here, and no record of {} has a \
             label as read here (field or column {:?}): if graph read the labels, ids or \
             texts from other fields, give train the same --label-field, --id-field and \
             --text-field; if propagation took a seed file, give it to --seeds too. Until \
             then they train on their propagated labels",
            super::lines_of_say(c.seeds_not_given, labels_file),
            args.corpus.display(),
            args.corpus_fields.options().label_field,
        ));
    } else if c.seeds_not_given > 0 {
        bars.note(&format!(
            "note: {} \"seed\": true for a record with no label here; they train \
             on their propagated labels. If propagation took a seed file, give it to --seeds \
             too, so that its seeds train as seeds",
            super::lines_of_say(c.seeds_not_given, labels_file),
        ));
    }
    bars.note(&format!(
        "{}: {}, {} propagated{}, {} abstaining and {} low-confidence skipped; {}",
        super::count(c.records as u64, "record", "records"),
        super::count(c.seeds as u64, "seed", "seeds"),
        c.propagated,
        if config.soft_weight == 0.0 && c.propagated > 0 {
            " (not trained on: --lambda 0)"
        } else {
            ""
        },
        c.abstained,
        c.low_confidence,
        super::count(set.labels.len() as u64, "label", "labels")
    ));
}

/// The summary line's description of the trained model: the network's layers, best epoch
/// and held-out figures, or the table's size.
fn detail(model: &ProjectionModel, config: &TrainConfig, held_out_accuracy: Option<f64>) -> String {
    let report = model.train_report();
    match model.kind() {
        ModelKind::Network => {
            format!(
                "layers {:?} {}, best epoch {} of {}{}, {}",
                model.header().layers,
                match config.quantize {
                    Quantization::None => "f32",
                    Quantization::Int8 => "int8",
                    Quantization::Int4 => "int4/int8",
                },
                report["best_epoch"],
                report["epochs_run"],
                if report["stopped"] == true {
                    " (interrupted)"
                } else {
                    ""
                },
                if report["val_examples"].as_u64() == Some(0) {
                    // Nothing held out: there is no accuracy to report, only the last epoch.
                    if config.validation == 0.0 {
                        "no held-out slice".to_owned()
                    } else if report["val_from_seeds"].as_bool() == Some(true)
                        && !config.hold_out_seeds
                    {
                        "no held-out slice (gold labels train every epoch; --validation holds \
                         some out)"
                            .to_owned()
                    } else {
                        format!(
                            "no held-out slice (it would hold fewer than {} records)",
                            sprig::train::MIN_HELD_OUT
                        )
                    }
                } else {
                    // The model as written (quantized by default) first: what its user gets.
                    // The epochs scored the f32 weights, which chose the best epoch.
                    let float = report["history"]
                        .as_array()
                        .and_then(|h| {
                            // By epoch number: a long run's history is thinned.
                            let best = &report["best_epoch"];
                            let stats = h.iter().find(|s| &s["epoch"] == best)?;
                            stats["val_accuracy"].as_f64()
                        })
                        .unwrap_or(0.0);
                    format!(
                        "held-out accuracy {:.4} on {} {}{}",
                        held_out_accuracy.unwrap_or(float),
                        report["val_examples"],
                        if report["val_from_seeds"].as_bool() == Some(true) {
                            "seeds"
                        } else {
                            "propagated labels"
                        },
                        if config.quantize == Quantization::None {
                            String::new()
                        } else {
                            format!(" (f32 weights before quantization: {float:.4})")
                        }
                    )
                }
            ) + &match report["teacher_val_accuracy"].as_f64() {
                Some(teacher) => format!(
                    " (linear teacher {teacher:.4}); {} augmented copies",
                    report["augmented_examples"]
                ),
                None if config.augment > 0 => {
                    format!("; {} augmented copies", report["augmented_examples"])
                }
                None => String::new(),
            } + &match report["logit_scale"].as_f64() {
                Some(beta) => format!(
                    "; scores calibrated on {} (logits × {beta:.3})",
                    match report["calibrated_on"].as_str() {
                        Some("propagated") => "the propagated labels it trained on",
                        Some("cross-fitted") => {
                            "a tenth of the propagated labels, by a second network trained \
                             without them"
                        }
                        _ => "the held-out slice",
                    }
                ),
                None => String::new(),
            }
        }
        ModelKind::Table => match model.predictor() {
            Predictor::Table(t) => format!("{} buckets of {} labels", t.len(), t.k()),
            Predictor::Network(_) => unreachable!("a table model holds a table"),
        },
    }
}
