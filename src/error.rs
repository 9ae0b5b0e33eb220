//! The library's one error type.
//!
//! Every variant carries what a user needs to act: the file, the line, the field, or the
//! expected and found values. Messages are lowercase and end without a period, so the binary
//! can prefix them with context and print one line.

use std::path::PathBuf;

/// Result alias used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in sprig's library.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The operating system refused a read or a write.
    ///
    /// The message includes the underlying error's, so [`std::error::Error::source`] is
    /// `None` (a reporter that prints the chain, such as `anyhow`'s `{:#}`, would print it
    /// twice); match the variant for the [`std::io::Error`] and its kind.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        error: std::io::Error,
    },
    /// A record of a text input (corpus, seeds, edges, labels) could not be used.
    ///
    /// Fix the line, or pass `--skip-invalid` where the command offers it.
    #[error("{}:{line}: {message}", path.display())]
    Parse {
        /// The file (`-` for standard input).
        path: PathBuf,
        /// 1-based line number where the record starts.
        line: u64,
        /// What was wrong, naming the field.
        message: String,
    },
    /// A CSV/TSV quoted field opens on `line` and never closes: the rest of the input was
    /// read as its text, so nothing after it can be recovered. Unlike [`Error::Parse`], it
    /// ends the read even where invalid records are skipped.
    #[error(
        "{}:{line}: a quoted field opens here and never closes, so lines {line}-{last} would \
         all be its text: a quote inside a field must be doubled (\"\")",
        path.display()
    )]
    UnclosedQuote {
        /// The file (`-` for standard input).
        path: PathBuf,
        /// 1-based line where the field opens.
        line: u64,
        /// The input's last line.
        last: u64,
    },
    /// A CSV/TSV record longer than the 1 MiB cap on a record (sprig reads short texts).
    /// Where it ends is unknown (a quote that never closes is the likely cause), so, like
    /// [`Error::UnclosedQuote`], it ends the read even where invalid records are skipped.
    #[error(
        "{}:{line}: a record longer than {} MiB (sprig reads short texts{})",
        path.display(),
        crate::corpus::MAX_LINE_BYTES >> 20,
        if *.unclosed_quote { "; a quote that never closes?" } else { "" }
    )]
    RecordTooLong {
        /// The file (`-` for standard input).
        path: PathBuf,
        /// 1-based line where the record starts.
        line: u64,
        /// Whether the reader stopped inside a quoted field, with the record's end unknown.
        unclosed_quote: bool,
    },
    /// A distributed run failed: the processes could not connect, disagree on their inputs,
    /// or a worker or process stopped.
    ///
    /// Check that every process was started with the same hosts file, graph and flags
    /// (`--workers` included), and that the ports are free; then start them all again
    /// (timely has no fault tolerance).
    #[error("distributed run failed: {message}")]
    Cluster {
        /// timely's message, or the worker's panic.
        message: String,
    },
    /// A configuration value is out of its valid range.
    #[error("invalid {field}: {reason}")]
    InvalidConfig {
        /// The config struct's field (the `sprig` binary names the flag instead), or the
        /// in-memory input at fault: `seeds`, `examples`, `records`.
        field: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// The corpus (or a labelled file) holds no usable record.
    #[error(
        "{}: holds no record with a usable text{}",
        path.display(),
        match first_skipped {
            Some(first) => format!(" ({skipped} invalid records skipped; the first: {first})"),
            None => String::new(),
        }
    )]
    EmptyCorpus {
        /// The corpus file.
        path: PathBuf,
        /// Invalid records skipped (`--skip-invalid`) before the corpus turned out empty.
        skipped: u64,
        /// The first skipped record's error, naming `file:line`.
        first_skipped: Option<String>,
    },
    /// An edge list names no node (empty, or only blank lines).
    #[error("{}: the edge list holds no edge", path.display())]
    EmptyEdges {
        /// The edge-list file.
        path: PathBuf,
    },
    /// A seed names a record or node that does not exist.
    #[error("{}:{line}: seed names unknown {what} {}{hint}", path.display(), seed_target(.what, .name))]
    UnknownSeedTarget {
        /// The seeds file.
        path: PathBuf,
        /// 1-based line in the seeds file.
        line: u64,
        /// `record line`, `record id` or `node`.
        what: &'static str,
        /// The name or number given.
        name: String,
        /// What was likely meant, as ` (…)`, or empty.
        hint: String,
    },
    /// The file does not start with the expected magic bytes: it is not this kind of artifact.
    #[error("{}: not a sprig {kind} file (magic: expected {expected:?}, found {found:?})", path.display())]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// The artifact kind expected (`graph`, `model`).
        kind: &'static str,
        /// The magic expected.
        expected: String,
        /// The first bytes found, lossily decoded.
        found: String,
    },
    /// The file's format version is outside what this build reads.
    ///
    /// A newer file needs a newer sprig; an older one may need an older sprig to convert it.
    #[error("{}: format version {found} is not supported (this build reads {oldest}..={newest})", path.display())]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version found in the file.
        found: u32,
        /// Oldest readable version.
        oldest: u32,
        /// Newest readable version.
        newest: u32,
    },
    /// The file ends before a structure it declares.
    #[error("{}: truncated: {what} needs {needed} bytes, the file has {len}", path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// What was being read.
        what: String,
        /// Bytes needed.
        needed: u64,
        /// Bytes present.
        len: u64,
    },
    /// The stored checksum does not match the bytes: the file is damaged.
    #[error("{}: checksum mismatch (stored {expected:#010x}, computed {computed:#010x}): the file is damaged", path.display())]
    ChecksumMismatch {
        /// The file.
        path: PathBuf,
        /// CRC32 stored in the file.
        expected: u32,
        /// CRC32 of the bytes read.
        computed: u32,
    },
    /// The JSON header or a section table entry is malformed or inconsistent.
    #[error("{}: bad header: {message}", path.display())]
    BadHeader {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The artifact's contents break an invariant (index out of range, non-finite weight…).
    #[error("{}: corrupt {what}: {message}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The section or structure.
        what: String,
        /// What is wrong.
        message: String,
    },
    /// The caller cancelled the work through [`crate::build::Progress::cancelled`]; nothing
    /// was returned or written.
    #[error("cancelled by the caller")]
    Cancelled,
    /// An operation needs seeds and the input has none.
    #[error("no seeds: label some records (a `label` field or a `__label__` prefix) or give a seed file")]
    NoSeeds,
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            error,
        }
    }

    /// A parse error at `path:line`.
    pub fn parse(path: impl Into<PathBuf>, line: u64, message: impl Into<String>) -> Self {
        Error::Parse {
            path: path.into(),
            line,
            message: message.into(),
        }
    }

    /// The parse error of a record whose text has no token after normalization (`graph`
    /// and `train` refuse it, or skip it with `--skip-invalid`).
    pub fn empty_text(path: impl Into<PathBuf>, line: u64, field: &str) -> Self {
        Error::parse(
            path,
            line,
            format!("field {field:?}: text is empty after normalization"),
        )
    }

    /// The parse error of a record whose id (compared as [`crate::corpus::RecordId::as_plain`])
    /// an earlier record has, at line `first`: `graph` and `train` refuse both alike.
    pub fn duplicate_id(
        path: impl Into<PathBuf>,
        line: u64,
        field: &str,
        id: &crate::corpus::RecordId,
        first: u64,
    ) -> Self {
        Error::parse(
            path,
            line,
            format!(
                "field {field:?}: duplicate id {} (first at line {first})",
                id.0
            ),
        )
    }

    /// A config error.
    pub fn config(field: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidConfig {
            field,
            reason: reason.into(),
        }
    }
}

/// A seed's target as [`Error::UnknownSeedTarget`] shows it: names quoted (so a stray space
/// shows), line numbers bare.
fn seed_target(what: &str, name: &str) -> String {
    if what == "record line" {
        name.to_owned()
    } else {
        format!("{name:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_io_error_prints_its_cause_once_in_a_chain() {
        let e = Error::io(
            "m.sprig",
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        );
        assert_eq!(e.to_string(), "m.sprig: no such file");
        // No source: a reporter that prints every cause (anyhow's `{:#}`) prints it once.
        assert!(std::error::Error::source(&e).is_none());
    }
}
