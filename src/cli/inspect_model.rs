//! `sprig inspect` on a `.sprig` model file: its header (configs, labels, layers, training
//! report) and sizes.

use std::path::Path;

use serde_json::json;
use sprig::model::ProjectionModel;

/// The file's first bytes, at most 8 (its magic, unless it is shorter); `None` if it
/// cannot be read.
pub(crate) fn magic(path: &Path) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut head = Vec::with_capacity(8);
    std::fs::File::open(path)
        .and_then(|f| f.take(8).read_to_end(&mut head))
        .ok()
        .map(|_| head)
}

/// The labels the text report names; `--json` lists every one.
const LABELS_SHOWN: usize = 100;

pub(crate) fn run(path: &Path, json_out: bool) -> anyhow::Result<()> {
    // The file's own header: its format version and writer, not this build's.
    let (model, header) = ProjectionModel::load_with_header(path)?;
    let file_bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    if json_out {
        let mut obj = serde_json::to_value(&header)?;
        obj["file"] = json!(path.display().to_string());
        obj["file_bytes"] = json!(file_bytes);
        obj["parameter_bytes"] = json!(model.parameter_bytes());
        // Not the file's: what this machine predicts with (the same answers on any).
        obj["kernels"] = json!(sprig::network::kernel_name());
        outln!("{obj}")?;
        return Ok(());
    }
    outln!("file            {} ({file_bytes} bytes)", path.display())?;
    outln!(
        "format          model v{} (written by sprig {})",
        header.format_version,
        header.crate_version
    )?;
    outln!("kind            {}", header.model_kind)?;
    outln!("hash            {}", header.hash)?;
    let p = &header.projection;
    // The names the CLI flags and the JSON header use, not Rust's.
    let name = |v: serde_json::Value| v.as_str().map(str::to_owned).unwrap_or_default();
    outln!(
        "projection      {} functions x {} bits = {} ({}, structured {}, scheme {}, seed {:#x})",
        p.functions,
        p.bits,
        p.dim(),
        name(serde_json::json!(p.coefficients)),
        p.structured,
        name(serde_json::json!(p.scheme)),
        p.seed
    )?;
    if !header.layers.is_empty() {
        // One dtype for all layers, or each layer's (the 4-bit default: "i4, i8").
        let dtypes = match header.weights {
            Some(shared) => name(serde_json::json!(shared)),
            None => header
                .layer_weights
                .iter()
                .map(|d| name(serde_json::json!(d)))
                .collect::<Vec<_>>()
                .join(", "),
        };
        outln!("layers          {:?} ({dtypes} weights)", header.layers)?;
    } else {
        outln!("table           k = {}", header.table_k)?;
    }
    outln!("parameters      {} bytes", model.parameter_bytes())?;
    outln!(
        "kernels         {} on this machine (the same answers with any)",
        sprig::network::kernel_name()
    )?;
    // Thousands of names on one line help no one: the first few, and `--json` has them all.
    let shown = &header.labels[..header.labels.len().min(LABELS_SHOWN)];
    outln!(
        "labels ({})     {}{}",
        header.labels.len(),
        shown.join(", "),
        match header.labels.len() - shown.len() {
            0 => String::new(),
            more => format!(", … and {more} more (--json lists them all)"),
        }
    )?;
    outln!("text            {}", serde_json::to_string(&header.text)?)?;
    outln!(
        "features        {}",
        serde_json::to_string(&header.features)?
    )?;
    let t = &header.train;
    if let Some(c) = t.get("counts") {
        outln!("train set       {c}")?;
    }
    if let (Some(best), Some(run)) = (t.get("best_epoch"), t.get("epochs_run")) {
        let stopped = if t["stopped"] == true {
            " (training was interrupted)"
        } else {
            ""
        };
        outln!("epochs          best {best} of {run}{stopped}")?;
    }
    if let Some(c) = t.get("config") {
        outln!("train config    {c}")?;
    }
    Ok(())
}
