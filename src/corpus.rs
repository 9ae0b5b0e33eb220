//! Corpus readers: JSON Lines, CSV, TSV and plain text, streamed one record at a time.
//!
//! [`CorpusReader`] is an iterator of `Result<Record>`: a bad record is an error naming
//! `file:line` and the field, and the caller decides whether to stop or skip it (the CLI's
//! `--skip-invalid`). Nothing is buffered beyond the current record, so memory does not grow
//! with the file.
//!
//! | format | a record | label | id |
//! |---|---|---|---|
//! | `jsonl` | one JSON object per line; blank lines are skipped | `label` field (string or integer; `null` = none) | `id` field (string or integer of at most 64 bits) |
//! | `csv`, `tsv` | one row after the header row (RFC 4180 quoting, strictly: a stray quote is an error) | `label` column (empty = none) | `id` column |
//! | `text` | one line; blank lines are skipped | a leading fastText `__label__NAME ` | none |
//!
//! Field names are configurable ([`CorpusOptions`]). Line numbers are 1-based physical lines
//! of the file (the header row of a CSV is line 1), so they match what an editor shows. A
//! UTF-8 byte-order mark at the start is ignored; CRLF and lone CR line ends count as line ends.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The input formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum CorpusFormat {
    /// JSON Lines.
    Jsonl,
    /// Comma-separated values with a header row.
    Csv,
    /// Tab-separated values with a header row.
    Tsv,
    /// Plain text, one record per line, optional `__label__NAME ` prefix.
    Text,
}

impl std::fmt::Display for CorpusFormat {
    /// The name `--format` takes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CorpusFormat::Jsonl => "jsonl",
            CorpusFormat::Csv => "csv",
            CorpusFormat::Tsv => "tsv",
            CorpusFormat::Text => "text",
        })
    }
}

impl CorpusFormat {
    /// The format a file's extension names: `.jsonl`/`.ndjson`/`.json` → jsonl, `.csv`,
    /// `.tsv`/`.tab`, `.txt`/`.text` → text. `None` for any other name, standard input (`-`)
    /// among them: [`CorpusReader`] then looks at the first non-blank byte (see
    /// [`CorpusFormat::sniff`]), as for `/dev/stdin`.
    pub fn from_path(path: &Path) -> Option<Self> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("jsonl" | "ndjson" | "json") => Some(CorpusFormat::Jsonl),
            Some("csv") => Some(CorpusFormat::Csv),
            Some("tsv" | "tab") => Some(CorpusFormat::Tsv),
            Some("txt" | "text") => Some(CorpusFormat::Text),
            _ => None,
        }
    }

    /// The format of a file whose name does not tell (no extension, `/dev/stdin`, `.dat`):
    /// jsonl when its first non-blank byte opens a JSON object, text otherwise. A plain-text
    /// corpus whose first line starts with `{` needs `--format text`.
    pub fn sniff(head: &[u8]) -> Self {
        // Past a UTF-8 byte-order mark, which the readers skip.
        let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
        match head.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => CorpusFormat::Jsonl,
            _ => CorpusFormat::Text,
        }
    }

    /// The format of `input`, named `path`: its extension's ([`CorpusFormat::from_path`]),
    /// else what its first bytes say ([`CorpusFormat::sniff_reader`]). Returns `input`
    /// whole, the bytes looked at included, for [`CorpusReader::from_reader`] (a pipe too).
    ///
    /// # Errors
    /// [`Error::Io`] if `input` cannot be read.
    pub fn detect<R: BufRead>(path: &Path, input: R) -> Result<(Self, Peeked<R>)> {
        match Self::from_path(path) {
            Some(format) => Ok((format, std::io::Cursor::new(Vec::new()).chain(input))),
            None => Self::sniff_reader(path, input),
        }
    }

    /// What `input`'s first bytes say ([`CorpusFormat::sniff`]), read up to its first
    /// non-blank byte however the input arrives: a pipe may deliver a blank line alone, and
    /// its first chunk would then say text. Returns `input` whole (its first
    /// [`BufRead::fill_buf`] holds at least the bytes looked at).
    ///
    /// # Errors
    /// [`Error::Io`] if `input` cannot be read.
    pub fn sniff_reader<R: BufRead>(path: &Path, mut input: R) -> Result<(Self, Peeked<R>)> {
        let mut head = Vec::new();
        loop {
            let chunk = input.fill_buf().map_err(|e| Error::io(path, e))?;
            let n = chunk.len();
            head.extend_from_slice(chunk);
            input.consume(n);
            let past_bom = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&head);
            let told = past_bom.iter().any(|b| !b.is_ascii_whitespace())
                && !(head.len() < 3 && b"\xEF\xBB\xBF".starts_with(&head));
            // Blank past a line's worth: no corpus starts so (it would be refused as a line
            // anyway), and the bytes are held in memory.
            if n == 0 || told || head.len() > MAX_LINE_BYTES {
                break;
            }
        }
        Ok((Self::sniff(&head), std::io::Cursor::new(head).chain(input)))
    }
}

/// An input whose first bytes were read to tell its format ([`CorpusFormat::detect`]):
/// those bytes, then the rest.
pub type Peeked<R> = std::io::Chain<std::io::Cursor<Vec<u8>>, R>;

/// How to read a corpus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorpusOptions {
    /// The format; `None` guesses from the extension, or from the content when the
    /// extension does not tell ([`CorpusFormat::from_path`]).
    pub format: Option<CorpusFormat>,
    /// Name of the text field or column (default `text`).
    pub text_field: String,
    /// Name of the label field or column (default `label`); empty reads no labels from JSON
    /// Lines, CSV or TSV (a file labelled by a model, whose labels nothing uses).
    pub label_field: String,
    /// Name of the id field or column (default `id`); `None` reads no ids, for files whose
    /// ids nothing uses (an evaluation's test file, a prior sample): what their id field
    /// holds is then never checked.
    pub id_field: Option<String>,
    /// Whether a CSV/TSV header must have the label column: set when its name was given
    /// explicitly, so that a misspelt name is an error rather than a corpus without seeds.
    /// A reading choice, not part of what was read: never serialized.
    #[serde(skip)]
    pub require_label: bool,
    /// Whether a CSV/TSV header must have the id column (as `require_label`).
    #[serde(skip)]
    pub require_id: bool,
}

impl Default for CorpusOptions {
    fn default() -> Self {
        Self {
            format: None,
            text_field: "text".into(),
            label_field: "label".into(),
            id_field: Some("id".into()),
            require_label: false,
            require_id: false,
        }
    }
}

/// A record's identity as given in the input: a string or a number, kept as its JSON text
/// (`"a7"` or `17`) so that it is written back exactly as it came.
///
/// In code, build one with `From`: `RecordId::from("a7")` (a string id; the quotes are
/// added) or `RecordId::from(17u64)`. The field holds the JSON text itself, so
/// `RecordId("a7".into())` is not a valid id: [`crate::build::build_from_records`] refuses
/// it ([`RecordId::is_valid`]).
///
/// With serde it is the JSON value itself (`"a7"`, `17`), as in the files sprig writes;
/// reading one needs a self-describing format (JSON, not postcard).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordId(pub String);

impl From<&str> for RecordId {
    /// A string id.
    fn from(id: &str) -> Self {
        RecordId(serde_json::Value::from(id).to_string())
    }
}

impl From<String> for RecordId {
    /// A string id.
    fn from(id: String) -> Self {
        RecordId::from(id.as_str())
    }
}

impl From<u64> for RecordId {
    /// A number id.
    fn from(id: u64) -> Self {
        RecordId(id.to_string())
    }
}

impl From<i64> for RecordId {
    /// A number id.
    fn from(id: i64) -> Self {
        RecordId(id.to_string())
    }
}

impl Serialize for RecordId {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for RecordId {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        // The kinds of id a corpus may hold: a string or an integer.
        match serde_json::Value::deserialize(deserializer)? {
            v @ serde_json::Value::String(_) => Ok(RecordId(v.to_string())),
            serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => Ok(RecordId(n.to_string())),
            other => Err(serde::de::Error::custom(format!(
                "an id is a string or an integer, not {other}"
            ))),
        }
    }
}

impl RecordId {
    /// The id as a JSON value (`null` if the text is not a valid id: see
    /// [`RecordId::is_valid`]).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.0).unwrap_or(serde_json::Value::Null)
    }

    /// Whether the text is what an id holds: the JSON text of a string or of an integer
    /// (what `From` builds and the corpus readers keep).
    pub fn is_valid(&self) -> bool {
        match serde_json::from_str::<serde_json::Value>(&self.0) {
            Ok(serde_json::Value::String(_)) => true,
            Ok(serde_json::Value::Number(n)) => n.is_i64() || n.is_u64(),
            _ => false,
        }
    }

    /// The id as plain text (a string id without its quotes), used to match seed files.
    pub fn as_plain(&self) -> String {
        match self.to_json() {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        }
    }
}

/// A record as [`IdIndex`] sees it: its line and its id, if it has one.
pub trait Identified {
    /// The 1-based line.
    fn line(&self) -> u64;
    /// The id, if any.
    fn id(&self) -> Option<&RecordId>;
}

impl Identified for Record {
    fn line(&self) -> u64 {
        self.line
    }
    fn id(&self) -> Option<&RecordId> {
        self.id.as_ref()
    }
}

/// The ids of the records kept so far, to refuse an id given twice (as `sprig graph` and
/// `sprig train` do: seed files and labels name a record by its id alone). Ids are compared
/// as seed files name them ([`RecordId::as_plain`]), so `"1"` and `1` are one id.
///
/// Each id is found through a 64-bit hash pointing at the first record that had it (the id
/// itself is compared on a hit), so the index costs about 16 bytes a record, not a second
/// copy of every id.
#[derive(Debug)]
pub struct IdIndex {
    by_hash: hashbrown::HashMap<u64, usize>,
    /// The first line of each id whose hash an earlier, different id has.
    colliding: hashbrown::HashMap<String, u64>,
    /// [`crate::hash::feature_hash`]; the tests give one that collides.
    hash: fn(&[u8]) -> u64,
}

impl Default for IdIndex {
    fn default() -> Self {
        Self {
            by_hash: hashbrown::HashMap::new(),
            colliding: hashbrown::HashMap::new(),
            hash: crate::hash::feature_hash,
        }
    }
}

impl IdIndex {
    /// Checks that no record of `kept` (the records kept so far, each added with
    /// [`IdIndex::add`]) has `record`'s id.
    ///
    /// # Errors
    /// [`Error::Parse`] (see [`Error::duplicate_id`]) naming both lines; `path` and `field`
    /// name the corpus and its id field.
    pub fn check(
        &self,
        kept: &[impl Identified],
        record: &impl Identified,
        path: &Path,
        field: &str,
    ) -> Result<()> {
        let Some(id) = record.id() else {
            return Ok(());
        };
        let plain = id.as_plain();
        let first = match self.by_hash.get(&(self.hash)(plain.as_bytes())) {
            None => None,
            Some(&i) if kept[i].id().map(RecordId::as_plain).as_ref() == Some(&plain) => {
                Some(kept[i].line())
            }
            Some(_) => self.colliding.get(&plain).copied(),
        };
        match first {
            Some(first) => Err(Error::duplicate_id(path, record.line(), field, id, first)),
            None => Ok(()),
        }
    }

    /// Adds the id of `kept[index]`, a record [`IdIndex::check`] passed.
    pub fn add(&mut self, kept: &[impl Identified], index: usize) {
        let r = &kept[index];
        let Some(id) = r.id() else {
            return;
        };
        let plain = id.as_plain();
        match self.by_hash.entry((self.hash)(plain.as_bytes())) {
            hashbrown::hash_map::Entry::Vacant(e) => {
                e.insert(index);
            }
            hashbrown::hash_map::Entry::Occupied(_) => {
                self.colliding.entry(plain).or_insert(r.line());
            }
        }
    }
}

/// One input record. (With serde: `{"line", "id", "text", "label"}`, `id` and `label`
/// null when absent.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// 1-based physical line where the record starts.
    pub line: u64,
    /// The id, if the input has one.
    pub id: Option<RecordId>,
    /// The raw text.
    pub text: String,
    /// The label, if labelled.
    pub label: Option<String>,
}

/// Streams the records of one corpus file (or standard input, or any reader: the lifetime
/// is the reader's, `'static` for a file). It is `Send`: it may be opened on one thread and
/// read on another.
pub struct CorpusReader<'a> {
    path: PathBuf,
    options: CorpusOptions,
    format: CorpusFormat,
    inner: Inner<'a>,
}

enum Inner<'a> {
    Lines {
        reader: Box<dyn BufRead + Send + 'a>,
        line: u64,
        buf: Vec<u8>,
        format: CorpusFormat,
    },
    Delimited {
        reader: Box<csv::Reader<Box<dyn Read + Send + 'a>>>,
        text_col: usize,
        label_col: Option<usize>,
        id_col: Option<usize>,
        record: csv::ByteRecord,
        /// The raw bytes from `raw_base` on, for [`check_quotes`] (shared with the [`Tee`]
        /// under the `csv` reader). A mutex, not a `RefCell`, so that a reader can be handed
        /// to another thread; it is never contended (one thread reads at a time).
        raw: Arc<Mutex<Vec<u8>>>,
        raw_base: u64,
        delimiter: u8,
    },
    Done,
}

impl std::fmt::Debug for CorpusReader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CorpusReader")
            .field("path", &self.path)
            .field("options", &self.options)
            .finish()
    }
}

/// Opens a file, or standard input for `-`.
///
/// # Errors
/// [`Error::Io`] naming the path.
pub fn open_input(path: &Path) -> Result<Box<dyn Read + Send>> {
    if path.as_os_str() == "-" {
        Ok(Box::new(std::io::stdin()))
    } else {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        Ok(Box::new(file))
    }
}

/// What a file starting with `head` is, when its first bytes say it is no text at all: a
/// sprig artifact given where a corpus is expected, or a compressed file, which would
/// otherwise be refused for its first invalid UTF-8 byte without saying why. Each magic
/// holds a byte no text holds (a control character, or one that cannot begin a UTF-8
/// character), and a sprig artifact's is followed by its version's 4 little-endian bytes,
/// a NUL among them: no text file is taken for one.
fn not_a_corpus(head: &[u8]) -> Option<&'static str> {
    let version_follows = head.get(8..12).is_some_and(|v| v.contains(&0));
    if version_follows && head.starts_with(crate::graph::GRAPH_MAGIC) {
        return Some("a sprig graph (`sprig graph`'s output)");
    }
    if version_follows && head.starts_with(crate::model::MODEL_MAGIC) {
        return Some("a sprig model (`sprig train`'s output)");
    }
    const MAGICS: [(&[u8], &str); 4] = [
        (
            b"\x1f\x8b",
            "gzip-compressed: decompress it first (`gunzip -k FILE`, or \
             `gunzip -c FILE | sprig ... -` to read standard input)",
        ),
        (
            b"\x28\xb5\x2f\xfd",
            "zstd-compressed: decompress it first (`zstd -d FILE`, or \
             `zstd -dc FILE | sprig ... -` to read standard input)",
        ),
        (
            b"\xfd7zXZ\x00",
            "xz-compressed: decompress it first (`xz -dk FILE`, or \
             `xz -dc FILE | sprig ... -` to read standard input)",
        ),
        (
            b"PK\x03\x04",
            "a zip archive: extract the corpus from it first",
        ),
    ];
    MAGICS
        .iter()
        .find(|(magic, _)| head.starts_with(magic))
        .map(|&(_, what)| what)
}

/// Skips a UTF-8 byte-order mark at the start of `reader`.
pub(crate) fn skip_bom(reader: &mut dyn BufRead, path: &Path) -> Result<()> {
    let head = reader.fill_buf().map_err(|e| Error::io(path, e))?;
    if head.starts_with(b"\xEF\xBB\xBF") {
        reader.consume(3);
    }
    Ok(())
}

/// Turns every line end into LF: CRLF (Windows) and a lone CR (classic Mac OS) alike, so that
/// every reader counts the lines an editor shows. The `csv` crate needs it for CRLF too: it
/// counts a record's line before it reads the LF of the previous record's CRLF, so every CRLF
/// row's line would be one too low (rust-csv issue #395). Line ends inside quoted CSV fields
/// become LFs, which tokenizing treats alike. `sprig predict` reads standard input through it
/// too. It passes on what its reader has as soon as it has it, so a stream is not held up.
pub struct LineEnds<R> {
    inner: R,
    /// The last byte was a CR: an LF right after it belongs to the same line end.
    after_cr: bool,
}

impl<R: BufRead> LineEnds<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            after_cr: false,
        }
    }
}

impl<R: BufRead> Read for LineEnds<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        // Zero bytes would mean the end, so a chunk that was only a CRLF's LF reads on.
        loop {
            let chunk = self.inner.fill_buf()?;
            if chunk.is_empty() {
                return Ok(0);
            }
            let (mut n, mut used) = (0, 0);
            while used < chunk.len() && n < out.len() {
                let b = chunk[used];
                used += 1;
                if std::mem::take(&mut self.after_cr) && b == b'\n' {
                    continue;
                }
                self.after_cr = b == b'\r';
                out[n] = if self.after_cr { b'\n' } else { b };
                n += 1;
            }
            self.inner.consume(used);
            if n > 0 {
                return Ok(n);
            }
        }
    }
}

/// A JSON error of one line of a file: serde's message with the column, without serde's
/// "line 1" (the caller names the file's line; within one line serde always says 1).
pub(crate) fn json_error(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let message = full
        .rfind(" at line ")
        .map_or(full.as_str(), |at| &full[..at]);
    let kind = match e.classify() {
        serde_json::error::Category::Data => "unexpected JSON",
        _ => "malformed JSON",
    };
    format!("{kind} at column {}: {message}", e.column())
}

/// The longest line sprig reads from a corpus, a seed file, an edge list or `predict`'s
/// standard input: 1 MiB, line end excluded. sprig is for short texts, and turning a text
/// into features takes about 60 bytes of memory per byte of text, so one 50 MB line (a
/// file with no line ends, a binary) would take about 3 GB; a line this long is an error
/// naming it (skipped with `--skip-invalid`), and only its first 1 MiB is ever held.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// What [`read_line_bounded`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineRead {
    /// The end of the input: no byte was left.
    End,
    /// A line, now in the buffer with its line end (if it had one).
    Line,
    /// A line longer than the limit: read past up to its line end, the buffer left empty.
    TooLong,
}

/// Reads the next line (up to and including `\n`) into `buf`, as `read_until` does, but
/// keeps at most about `max` bytes of it: the rest of a longer line is read past without
/// being kept, so that the next call starts at the next line.
///
/// # Errors
/// The reader's error (an interrupted read is retried).
pub fn read_line_bounded(
    reader: &mut dyn BufRead,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<LineRead> {
    buf.clear();
    let (mut any, mut too_long) = (false, false);
    loop {
        let chunk = match reader.fill_buf() {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            break;
        }
        any = true;
        let (used, ended) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        if !too_long {
            buf.extend_from_slice(&chunk[..used]);
            // Past `max` plus a CRLF's two bytes, the line is too long whatever its end.
            if buf.len() > max + 2 {
                too_long = true;
                buf.clear();
            }
        }
        reader.consume(used);
        if ended {
            break;
        }
    }
    let content = buf.strip_suffix(b"\n").unwrap_or(buf);
    let content = content.strip_suffix(b"\r").unwrap_or(content);
    Ok(match (any, too_long || content.len() > max) {
        (false, _) => LineRead::End,
        (true, false) => LineRead::Line,
        (true, true) => {
            buf.clear();
            LineRead::TooLong
        }
    })
}

/// The error of a line longer than `max` bytes (whole MiB).
pub(crate) fn too_long(path: &Path, line: u64, max: usize) -> Error {
    Error::parse(
        path,
        line,
        format!(
            "line longer than {} MiB (sprig reads short texts; is this a file of lines?)",
            max >> 20
        ),
    )
}

/// Reads the next physical line into `buf` without its line end, and counts it in `line`.
/// Returns false at the end. A line longer than [`MAX_LINE_BYTES`] is an [`Error::Parse`]
/// naming it, after which reading goes on at the next line.
pub(crate) fn next_line(
    reader: &mut dyn BufRead,
    buf: &mut Vec<u8>,
    path: &Path,
    line: &mut u64,
) -> Result<bool> {
    let read = read_line_bounded(reader, buf, MAX_LINE_BYTES).map_err(|e| Error::io(path, e))?;
    if read == LineRead::End {
        return Ok(false);
    }
    *line += 1;
    if read == LineRead::TooLong {
        return Err(too_long(path, *line, MAX_LINE_BYTES));
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    }
    Ok(true)
}

/// Decodes a line as UTF-8, or an error naming the byte offset.
pub(crate) fn utf8_line<'a>(buf: &'a [u8], path: &Path, line: u64) -> Result<&'a str> {
    std::str::from_utf8(buf).map_err(|e| {
        Error::parse(
            path,
            line,
            format!("invalid UTF-8 at byte {} of the line", e.valid_up_to()),
        )
    })
}

impl CorpusReader<'static> {
    /// Opens `path` (`-` for standard input).
    ///
    /// # Errors
    /// [`Error::Io`] if it cannot be opened; for CSV/TSV, [`Error::Parse`] if the header row
    /// lacks the text column.
    pub fn open(path: &Path, options: &CorpusOptions) -> Result<Self> {
        Self::from_reader(path, open_input(path)?, options)
    }
}

impl<'a> CorpusReader<'a> {
    /// Reads records from `raw` (which may borrow: `Box::new(text.as_bytes())`, and must be
    /// `Send`, so that the reader is); `path` names the input in errors and picks the format
    /// when `options.format` is `None`.
    ///
    /// # Errors
    /// As [`CorpusReader::open`].
    pub fn from_reader(
        path: &Path,
        raw: Box<dyn Read + Send + 'a>,
        options: &CorpusOptions,
    ) -> Result<Self> {
        let mut buffered = BufReader::with_capacity(1 << 16, raw);
        skip_bom(&mut buffered, path)?;
        let head = buffered.fill_buf().map_err(|e| Error::io(path, e))?;
        if let Some(what) = not_a_corpus(head) {
            let message = format!("{what}, not a corpus of texts");
            return Err(Error::io(
                path,
                std::io::Error::new(std::io::ErrorKind::InvalidData, message),
            ));
        }
        let (format, buffered) = match options.format {
            Some(format) => (format, std::io::Cursor::new(Vec::new()).chain(buffered)),
            None => CorpusFormat::detect(path, buffered)?,
        };
        if format == CorpusFormat::Text {
            // Plain text has no fields: a field named other than the defaults is a mistake
            // (often a CSV read from a pipe, sniffed as text), not something to ignore.
            let default_id = || options.id_field.as_deref() == Some("id");
            let named = [
                (options.text_field != "text").then_some(&options.text_field),
                (options.require_label && options.label_field != "label")
                    .then_some(&options.label_field),
                (options.require_id && !default_id())
                    .then_some(options.id_field.as_ref())
                    .flatten(),
            ];
            if let Some(name) = named.into_iter().flatten().next() {
                return Err(Error::parse(
                    path,
                    1,
                    format!(
                        "read as plain text (one text per line, an optional `__label__NAME` \
                         prefix), which has no field {name:?}: if it is CSV, TSV or JSON Lines, \
                         say so with --format"
                    ),
                ));
            }
        }
        let inner = match format {
            CorpusFormat::Jsonl | CorpusFormat::Text => Inner::Lines {
                reader: Box::new(BufReader::with_capacity(1 << 16, LineEnds::new(buffered))),
                line: 0,
                buf: Vec::new(),
                format,
            },
            CorpusFormat::Csv | CorpusFormat::Tsv => {
                let delimiter = if format == CorpusFormat::Csv {
                    b','
                } else {
                    b'\t'
                };
                let raw = Arc::new(Mutex::new(Vec::new()));
                let tee = Tee {
                    inner: LineEnds::new(buffered),
                    seen: Arc::clone(&raw),
                };
                let mut reader = csv::ReaderBuilder::new()
                    .delimiter(delimiter)
                    .has_headers(true)
                    .flexible(false)
                    .from_reader(Box::new(tee) as Box<dyn Read + Send + 'a>);
                let headers = reader
                    .byte_headers()
                    .map_err(|e| csv_error(path, e))?
                    .clone();
                // The header row's quoting too: `"label"x` would name a column `labelx`.
                let mut raw_base = 0;
                let end = reader.position().byte();
                take_raw(&raw, &mut raw_base, 0, end, |header| {
                    check_quotes(header, delimiter, 1, path)
                })?;
                if headers.is_empty() {
                    return Err(Error::EmptyCorpus {
                        path: path.to_owned(),
                        skipped: 0,
                        first_skipped: None,
                    });
                }
                let find = |name: &str| headers.iter().position(|h| h == name.as_bytes());
                // A column read twice would silently use its first copy.
                // An empty label field reads no labels (`CorpusOptions::label_field`).
                let label_field = Some(&options.label_field).filter(|l| !l.is_empty());
                let named = [Some(&options.text_field), label_field];
                for name in named
                    .into_iter()
                    .chain([options.id_field.as_ref()])
                    .flatten()
                {
                    if headers.iter().filter(|h| *h == name.as_bytes()).count() > 1 {
                        return Err(Error::parse(
                            path,
                            1,
                            format!("header row has the {name:?} column twice"),
                        ));
                    }
                }
                let missing = |name: &str, flag: &str| {
                    let found: Vec<String> = headers
                        .iter()
                        .map(|h| String::from_utf8_lossy(h).into_owned())
                        .collect();
                    Error::parse(
                        path,
                        1,
                        format!("header row has no {name:?} column (found {found:?}); see {flag}"),
                    )
                };
                let Some(text_col) = find(&options.text_field) else {
                    return Err(missing(&options.text_field, "--text-field"));
                };
                for (name, required, flag) in [
                    (label_field, options.require_label, "--label-field"),
                    (options.id_field.as_ref(), options.require_id, "--id-field"),
                ] {
                    match name {
                        Some(name) if required && find(name).is_none() => {
                            return Err(missing(name, flag))
                        }
                        _ => {}
                    }
                }
                Inner::Delimited {
                    reader: Box::new(reader),
                    text_col,
                    label_col: label_field.and_then(|l| find(l)),
                    id_col: options.id_field.as_deref().and_then(find),
                    record: csv::ByteRecord::new(),
                    raw,
                    raw_base,
                    delimiter,
                }
            }
        };
        Ok(Self {
            path: path.to_owned(),
            options: options.clone(),
            format,
            inner,
        })
    }

    /// The format being read: given, or told by the file's name or first byte.
    pub fn format(&self) -> CorpusFormat {
        self.format
    }

    /// The path being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The options it was opened with.
    pub fn options(&self) -> &CorpusOptions {
        &self.options
    }

    fn next_record(&mut self) -> Option<Result<Record>> {
        let path = &self.path;
        let options = &self.options;
        match &mut self.inner {
            Inner::Done => None,
            Inner::Lines {
                reader,
                line,
                buf,
                format,
            } => loop {
                match next_line(reader.as_mut(), buf, path, line) {
                    Err(e) => return Some(Err(e)),
                    Ok(false) => return None,
                    Ok(true) => {}
                }
                let text = match utf8_line(buf, path, *line) {
                    Ok(t) => t,
                    Err(e) => return Some(Err(e)),
                };
                if text.trim().is_empty() {
                    continue;
                }
                return Some(match format {
                    CorpusFormat::Jsonl => parse_json_record(text, path, *line, options),
                    _ => parse_text_record(text, path, *line),
                });
            },
            Inner::Delimited {
                reader,
                text_col,
                label_col,
                id_col,
                record,
                raw,
                raw_base,
                delimiter,
            } => {
                // Where the record starts, for an error that has no position of its own.
                let start_line = reader.position().line();
                let read = reader.read_byte_record(record);
                if let Err(e) = &read {
                    let too_long = match e.kind() {
                        csv::ErrorKind::Io(io) => {
                            io.get_ref().is_some_and(|e| e.is::<RecordTooLong>())
                        }
                        _ => false,
                    };
                    if too_long {
                        // Not skippable: where the record ends is unknown (the likely cause
                        // is a quote that never closes), so the stream ends here.
                        return Some(Err(Error::RecordTooLong {
                            path: path.to_path_buf(),
                            line: start_line,
                            unclosed_quote: true,
                        }));
                    }
                }
                // The record's own bytes, from its start to where the next one starts, for
                // the quote check (of a record whose field count is wrong too: a stray quote
                // is the likely cause, and its line the one to name).
                let position = match &read {
                    Ok(_) => record.position(),
                    Err(e) => e.position(),
                };
                let start = position.map_or(*raw_base, csv::Position::byte);
                let mut line = position.map_or(0, csv::Position::line);
                let end = reader.position().byte();
                let quotes = take_raw(raw, raw_base, start, end, |bytes| {
                    // The `csv` crate starts a record at the blank lines before it: its line
                    // is the first blank one's. Counted past them here.
                    let blank = bytes.iter().take_while(|&&b| b == b'\n').count();
                    line += blank as u64;
                    let own = &bytes[blank..];
                    // The Tee's cap, exactly: it stops only past what it reads ahead.
                    if own.strip_suffix(b"\n").unwrap_or(own).len() > MAX_LINE_BYTES {
                        return Err(Error::RecordTooLong {
                            path: path.to_path_buf(),
                            line,
                            unclosed_quote: false,
                        });
                    }
                    check_quotes(own, *delimiter, line, path)
                });
                match read {
                    Err(e) => Some(Err(quotes.err().unwrap_or_else(|| {
                        match csv_error(path, e) {
                            Error::Parse { path, message, .. } => Error::Parse {
                                path,
                                line,
                                message,
                            },
                            other => other,
                        }
                    }))),
                    Ok(false) => None,
                    Ok(true) => Some(quotes.and_then(|()| {
                        delimited_record(
                            record, line, *text_col, *label_col, *id_col, path, options,
                        )
                    })),
                }
            }
        }
    }
}

impl Iterator for CorpusReader<'_> {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.next_record();
        // An I/O error ends the stream: retrying would loop forever on a broken reader. So
        // does a quote that never closes (the rest of the input is gone into its field), and
        // a record past the cap, whose end is unknown.
        if let Some(Err(
            Error::Io { .. } | Error::UnclosedQuote { .. } | Error::RecordTooLong { .. },
        )) = &item
        {
            self.inner = Inner::Done;
        }
        item
    }
}

/// Passes bytes on and keeps a copy, so that each CSV record's raw bytes can be checked.
struct Tee<R> {
    inner: R,
    seen: Arc<Mutex<Vec<u8>>>,
}

/// The most bytes a [`Tee`] keeps: the record being read, which [`MAX_LINE_BYTES`] bounds as
/// it bounds a line, plus what the `csv` reader and the Tee read ahead (a chunk each).
const MAX_TEE_BYTES: usize = MAX_LINE_BYTES + (1 << 17);

/// The error a [`Tee`] stops at: a CSV/TSV record longer than [`MAX_LINE_BYTES`].
#[derive(Debug)]
struct RecordTooLong;

impl std::fmt::Display for RecordTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "record longer than {} MiB", MAX_LINE_BYTES >> 20)
    }
}

impl std::error::Error for RecordTooLong {}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let mut seen = lock(&self.seen);
        // The kept bytes are drained record by record: past the cap, one record (or a quote
        // left open, which swallows the rest of the file) would be held whole.
        if seen.len() > MAX_TEE_BYTES {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                RecordTooLong,
            ));
        }
        let n = self.inner.read(out)?;
        seen.extend_from_slice(&out[..n]);
        Ok(n)
    }
}

/// The kept bytes. A panic while they were held can only have been in a `Vec` copy or drain
/// of this module, which leave the buffer whole, so a poisoned lock is taken as it is.
fn lock(raw: &Mutex<Vec<u8>>) -> MutexGuard<'_, Vec<u8>> {
    raw.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Gives `check` the kept bytes `start..end` (absolute offsets; the copy begins at
/// `*base`), then drops every kept byte before `end`: the reader never looks back.
fn take_raw(
    raw: &Mutex<Vec<u8>>,
    base: &mut u64,
    start: u64,
    end: u64,
    check: impl FnOnce(&[u8]) -> Result<()>,
) -> Result<()> {
    let mut seen = lock(raw);
    let len = seen.len();
    let at = |b: u64| usize::try_from(b.saturating_sub(*base)).map_or(len, |i| i.min(len));
    let result = seen.get(at(start)..at(end)).map_or(Ok(()), check);
    let done = at(end);
    seen.drain(..done);
    *base = (*base).max(end);
    result
}

/// Strict quoting (RFC 4180, as Python's `csv` with `strict=True`): a field that opens with
/// `"` must close with `"` right before a delimiter or the line end, and must close at all.
/// The `csv` crate is lenient: it reads `"ok" thanks` as `ok thanks`, and a stray opening
/// quote swallows the rows after it up to the next quote, as text of one record, silently.
/// `raw` is one record's bytes (line ends already LFs), starting on line `line`.
fn check_quotes(raw: &[u8], delimiter: u8, line: u64, path: &Path) -> Result<()> {
    let line_at = |i: usize| line + raw[..i].iter().filter(|&&b| b == b'\n').count() as u64;
    let mut i = 0;
    let mut field_start = true;
    while i < raw.len() {
        if field_start && raw[i] == b'"' {
            let open = i;
            i += 1;
            loop {
                match raw.get(i) {
                    None => {
                        // The rest of the input was read as this field: nothing after it can
                        // be recovered, so this ends the read even under --skip-invalid,
                        // instead of counting one skipped record.
                        return Err(Error::UnclosedQuote {
                            path: path.to_owned(),
                            line: line_at(open),
                            last: line_at(raw.len()) - u64::from(raw.ends_with(b"\n")),
                        });
                    }
                    Some(b'"') if raw.get(i + 1) == Some(&b'"') => i += 2,
                    Some(b'"') => break,
                    Some(_) => i += 1,
                }
            }
            i += 1;
            if let Some(&b) = raw.get(i) {
                if b != delimiter && b != b'\n' {
                    return Err(Error::parse(
                        path,
                        line_at(i),
                        format!(
                            "text follows the closing quote of a field opened on line {}: a \
                             quote inside a quoted field must be doubled (\"\")",
                            line_at(open)
                        ),
                    ));
                }
            }
            field_start = false;
            continue;
        }
        field_start = raw[i] == delimiter || raw[i] == b'\n';
        i += 1;
    }
    Ok(())
}

fn csv_error(path: &Path, e: csv::Error) -> Error {
    let line = e.position().map_or(0, |p| p.line());
    match e.kind() {
        csv::ErrorKind::Io(_) => match e.into_kind() {
            csv::ErrorKind::Io(io) => Error::io(path, io),
            _ => unreachable!("matched Io above"),
        },
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => Error::parse(
            path,
            line,
            format!(
                "row has {len} field{}, the header row has {expected_len}",
                if *len == 1 { "" } else { "s" }
            ),
        ),
        _ => Error::parse(path, line, e.to_string()),
    }
}

fn delimited_record(
    record: &csv::ByteRecord,
    line: u64,
    text_col: usize,
    label_col: Option<usize>,
    id_col: Option<usize>,
    path: &Path,
    options: &CorpusOptions,
) -> Result<Record> {
    let field = |col: usize, name: &str| -> Result<&str> {
        std::str::from_utf8(record.get(col).unwrap_or_default())
            .map_err(|_| Error::parse(path, line, format!("field {name:?}: invalid UTF-8")))
    };
    let text = field(text_col, &options.text_field)?;
    check_text(text, &options.text_field, path, line)?;
    let label = match label_col {
        Some(c) => {
            let l = field(c, &options.label_field)?.trim();
            check_label(l, &options.label_field, path, line)?;
            (!l.is_empty()).then(|| l.to_owned())
        }
        None => None,
    };
    let id = match id_col {
        Some(c) => {
            let name = options
                .id_field
                .as_deref()
                .expect("an id column has a name");
            let raw = field(c, name)?.trim();
            (!raw.is_empty()).then(|| RecordId(serde_json::Value::from(raw).to_string()))
        }
        None => None,
    };
    Ok(Record {
        line,
        id,
        text: text.to_owned(),
        label,
    })
}

/// What is wrong with a label name given in memory, if anything: an empty (or blank) name,
/// or a control character (see [`check_label`]). The readers trim and check the names they
/// read; a program's own names get the same rules where they enter the library, and a
/// loaded model's names too.
pub(crate) fn label_name_problem(name: &str) -> Option<String> {
    if name.trim().is_empty() {
        return Some(format!("label {name:?} is empty"));
    }
    name.chars()
        .find(|c| c.is_control())
        .map(|c| format!("label {name:?} holds a control character ({c:?})"))
}

/// A label name that `labels` (in any order) lists more than once, if any: two outputs of
/// one name could not be told apart.
pub(crate) fn repeated_label(labels: &[String]) -> Option<&str> {
    let mut names: Vec<&str> = labels.iter().map(String::as_str).collect();
    names.sort_unstable();
    names.windows(2).find(|w| w[0] == w[1]).map(|w| w[0])
}

/// A label must print on one line and split cleanly on TABs in `predict`, `eval` and the
/// TSV outputs, so control characters (newline, tab, NUL, …) are refused wherever labels
/// are read: corpus records of every format and seed files.
pub(crate) fn check_label(label: &str, field: &str, path: &Path, line: u64) -> Result<()> {
    match label.chars().find(|c| c.is_control()) {
        Some(c) => Err(Error::parse(
            path,
            line,
            format!("field {field:?}: the label {label:?} holds a control character ({c:?})"),
        )),
        None => Ok(()),
    }
}

fn check_text(text: &str, field: &str, path: &Path, line: u64) -> Result<()> {
    if text.contains('\0') {
        return Err(Error::parse(
            path,
            line,
            format!("field {field:?}: contains a NUL character"),
        ));
    }
    Ok(())
}

fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Reads a label value: a string, or an integer written as a number; `null` means none.
pub(crate) fn label_value(
    v: Option<&serde_json::Value>,
    field: &str,
    path: &Path,
    line: u64,
) -> Result<Option<String>> {
    match v {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) if s.trim().is_empty() => Err(Error::parse(
            path,
            line,
            format!("field {field:?}: empty label (omit the field or use null for none)"),
        )),
        // Trimmed, as CSV/TSV and text labels are: `"billing "` is `billing` in every format.
        Some(serde_json::Value::String(s)) => {
            check_label(s.trim(), field, path, line)?;
            Ok(Some(s.trim().to_owned()))
        }
        Some(serde_json::Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(Some(n.to_string())),
        Some(other) => Err(Error::parse(
            path,
            line,
            format!(
                "field {field:?}: expected a string or an integer, found {}",
                json_type(other)
            ),
        )),
    }
}

/// Reads an id value: a string or an integer of at most 64 bits; `null` means none.
///
/// Other numbers are refused: JSON reading turns them into floating point, which would
/// write `1e2` back as `100.0`, make `7.0` another id than `7`, and make two integers past
/// 2^64 that differ in their last digits one id.
pub(crate) fn id_value(
    v: Option<&serde_json::Value>,
    field: &str,
    path: &Path,
    line: u64,
) -> Result<Option<RecordId>> {
    match v {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(v @ serde_json::Value::String(_)) => Ok(Some(RecordId(v.to_string()))),
        Some(serde_json::Value::Number(n)) if n.is_i64() || n.is_u64() => {
            Ok(Some(RecordId(n.to_string())))
        }
        Some(serde_json::Value::Number(n)) => Err(Error::parse(
            path,
            line,
            format!(
                "field {field:?}: the number {n} is not an integer of at most 64 bits, which \
                 an id must be to be read exactly: write it as a string"
            ),
        )),
        Some(other) => Err(Error::parse(
            path,
            line,
            format!(
                "field {field:?}: expected a string or a number, found {}",
                json_type(other)
            ),
        )),
    }
}

/// The fields of a JSON record that a reader reads (a corpus's text, label and id; a seed
/// line's), by name: a visitor that keeps their values, skips every other field without
/// building it, and refuses a field it reads that appears twice (a JSON map would silently
/// keep the last copy, as a CSV header naming a column twice is refused).
struct RecordFields<'a, const N: usize>([Option<&'a str>; N]);

impl<'de, const N: usize> serde::de::DeserializeSeed<'de> for RecordFields<'_, N> {
    type Value = [Option<serde_json::Value>; N];

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        d: D,
    ) -> std::result::Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, const N: usize> serde::de::Visitor<'de> for RecordFields<'_, N> {
    type Value = [Option<serde_json::Value>; N];

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut values: Self::Value = std::array::from_fn(|_| None);
        while let Some(key) = map.next_key::<String>()? {
            // Two roles may share a name (`--label-field text`): each gets the value.
            let roles = || (0..N).filter(|&i| self.0[i] == Some(key.as_str()));
            match roles().next() {
                Some(first) if values[first].is_some() => {
                    return Err(serde::de::Error::custom(format_args!(
                        "field {key:?} appears twice (which one is meant?)"
                    )))
                }
                Some(_) => {
                    let value: serde_json::Value = map.next_value()?;
                    for i in roles() {
                        values[i] = Some(value.clone());
                    }
                }
                None => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(values)
    }
}

/// The values of the fields `names` (`None`: a role with no field) of the JSON object on
/// `text`, line `line` of `path`, in the order of `names`: `None` for a field the object
/// lacks. Other fields are skipped unread.
///
/// # Errors
/// [`Error::Parse`] for a line that is not one JSON object (with a hint for an array of
/// them), or that gives one of `names` twice.
pub(crate) fn json_object_fields<const N: usize>(
    text: &str,
    names: [Option<&str>; N],
    path: &Path,
    line: u64,
) -> Result<[Option<serde_json::Value>; N]> {
    let parse_error = |e: serde_json::Error| Error::parse(path, line, json_error(&e));
    let opening = text.trim_start();
    if !opening.starts_with('{') {
        // Say what the line holds instead. A JSON array is most often a whole `.json`
        // file of records, of which this is the first line.
        let array = opening.starts_with('[');
        let found = match serde_json::from_str::<serde_json::Value>(text) {
            Ok(value) => json_type(&value),
            Err(_) if array => "an array",
            Err(e) => return Err(parse_error(e)),
        };
        let hint = if array {
            " (JSON Lines hold one object per line; `jq -c '.[]'` turns an array of records \
             into that)"
        } else {
            ""
        };
        return Err(Error::parse(
            path,
            line,
            format!("expected a JSON object, found {found}{hint}"),
        ));
    }
    let mut de = serde_json::Deserializer::from_str(text);
    serde::de::DeserializeSeed::deserialize(RecordFields(names), &mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(parse_error)
}

fn parse_json_record(
    text: &str,
    path: &Path,
    line: u64,
    options: &CorpusOptions,
) -> Result<Record> {
    let [text, label, id] = json_object_fields(
        text,
        [
            Some(&options.text_field),
            Some(options.label_field.as_str()).filter(|l| !l.is_empty()),
            options.id_field.as_deref(),
        ],
        path,
        line,
    )?;
    let text = match text {
        Some(serde_json::Value::String(s)) => s,
        Some(other) => {
            return Err(Error::parse(
                path,
                line,
                format!(
                    "field {:?}: expected a string, found {}",
                    options.text_field,
                    json_type(&other)
                ),
            ))
        }
        None => {
            return Err(Error::parse(
                path,
                line,
                format!("missing field {:?}", options.text_field),
            ))
        }
    };
    check_text(&text, &options.text_field, path, line)?;
    Ok(Record {
        line,
        id: match &options.id_field {
            Some(name) => id_value(id.as_ref(), name, path, line)?,
            None => None,
        },
        label: label_value(label.as_ref(), &options.label_field, path, line)?,
        text,
    })
}

const LABEL_PREFIX: &str = "__label__";

fn parse_text_record(text: &str, path: &Path, line: u64) -> Result<Record> {
    check_text(text, "text", path, line)?;
    let trimmed = text.trim_start();
    let (label, rest) = match trimmed.strip_prefix(LABEL_PREFIX) {
        Some(after) => {
            let end = after.find(char::is_whitespace).unwrap_or(after.len());
            let name = &after[..end];
            if name.is_empty() {
                return Err(Error::parse(path, line, "empty __label__ prefix"));
            }
            check_label(name, "__label__", path, line)?;
            let rest = after[end..].trim_start();
            if rest.starts_with(LABEL_PREFIX) {
                return Err(Error::parse(
                    path,
                    line,
                    "more than one __label__ prefix: sprig reads one label per record",
                ));
            }
            (Some(name.to_owned()), rest)
        }
        None => (None, text),
    };
    Ok(Record {
        line,
        id: None,
        text: rest.to_owned(),
        label,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn read(contents: &[u8], name: &str, options: &CorpusOptions) -> Vec<Result<Record>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        File::create(&path).unwrap().write_all(contents).unwrap();
        CorpusReader::open(&path, options).unwrap().collect()
    }

    fn ok(contents: &[u8], name: &str) -> Vec<Record> {
        read(contents, name, &CorpusOptions::default())
            .into_iter()
            .map(|r| r.unwrap())
            .collect()
    }

    #[test]
    fn reads_jsonl_with_ids_labels_bom_and_crlf() {
        let recs = ok(
            b"\xEF\xBB\xBF{\"id\": 7, \"text\": \"hi\", \"label\": \"greet\"}\r\n\r\n{\"text\": \"yo\", \"id\": \"a\"}\n",
            "c.jsonl",
        );
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].line, 1);
        assert_eq!(recs[0].id, Some(RecordId("7".into())));
        assert_eq!(recs[0].label.as_deref(), Some("greet"));
        assert_eq!(recs[1].line, 3);
        assert_eq!(recs[1].id.as_ref().unwrap().as_plain(), "a");
        assert_eq!(recs[1].label, None);
    }

    /// With serde a record's id is the JSON value it was read as, and a record comes back
    /// whole; an id that is neither a string nor an integer is refused.
    #[test]
    fn records_round_trip_through_serde_with_ids_as_json_values() {
        let recs = ok(
            b"{\"id\": 7, \"text\": \"hi\", \"label\": \"greet\"}\n{\"text\": \"yo\", \"id\": \"a\"}\n{\"text\": \"x\"}\n",
            "c.jsonl",
        );
        let json = serde_json::to_string(&recs).unwrap();
        assert_eq!(
            json,
            r#"[{"line":1,"id":7,"text":"hi","label":"greet"},{"line":2,"id":"a","text":"yo","label":null},{"line":3,"id":null,"text":"x","label":null}]"#
        );
        let back: Vec<Record> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, recs);
        for bad in ["1.5", "true", "[1]"] {
            let err = serde_json::from_str::<RecordId>(bad).unwrap_err();
            assert!(err.to_string().contains("a string or an integer"), "{err}");
        }
    }

    #[test]
    fn jsonl_errors_name_line_and_field() {
        let out = read(
            b"{\"text\": 3}\n{\"txt\": \"a\"}\nnot json\n[1]\n{\"text\": \"a\", \"label\": [1]}\n",
            "c.jsonl",
            &CorpusOptions::default(),
        );
        let msgs: Vec<String> = out
            .into_iter()
            .map(|r| r.unwrap_err().to_string())
            .collect();
        assert!(msgs[0].ends_with("c.jsonl:1: field \"text\": expected a string, found a number"));
        assert!(msgs[1].ends_with(":2: missing field \"text\""));
        assert!(msgs[2].contains(":3: malformed JSON"));
        assert!(msgs[3].contains(":4: expected a JSON object, found an array"));
        assert!(msgs[4].contains(":5: field \"label\": expected a string or an integer"));
    }

    #[test]
    fn labels_with_control_characters_are_refused_in_every_format() {
        let first_error = |data: &[u8], name: &str| -> String {
            read(data, name, &CorpusOptions::default())
                .into_iter()
                .find_map(|r| r.err())
                .expect("an error")
                .to_string()
        };
        let e = first_error(b"{\"text\":\"hi\",\"label\":\"a\\nb\"}\n", "c.jsonl");
        assert!(
            e.contains("c.jsonl:1: field \"label\"") && e.contains("control"),
            "{e}"
        );
        let e = first_error(b"text,label\nhi,ok\nhello,\"gre\neting\"\n", "c.csv");
        assert!(
            e.contains("c.csv:3: field \"label\"") && e.contains("control"),
            "{e}"
        );
        let e = first_error(b"__label__a\x01b hi\n", "c.txt");
        assert!(
            e.contains("c.txt:1: field \"__label__\"") && e.contains("control"),
            "{e}"
        );
        // Inner spaces and non-ASCII letters are fine.
        let ok = read(
            b"{\"text\":\"hi\",\"label\":\"say hi \\u00e9\"}\n",
            "c.jsonl",
            &CorpusOptions::default(),
        );
        assert_eq!(
            ok[0].as_ref().unwrap().label.as_deref(),
            Some("say hi \u{e9}")
        );
    }

    #[test]
    fn csv_quotes_are_strict() {
        let errors = |csv: &str| -> Vec<String> {
            read(csv.as_bytes(), "c.csv", &CorpusOptions::default())
                .into_iter()
                .filter_map(|r| r.err().map(|e| e.to_string()))
                .collect()
        };
        // A stray opening quote swallowed rows 3-5 into row 2's text, and `"ok" thanks` read
        // as `ok thanks`: both silently.
        let e = errors(
            "id,text,label\n1,my 5\" screen,bug\n2,\"where is it,shipping\n3,refund,refund\n\
             4,invoice,billing\n5,\"ok\" thanks,\n",
        );
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].contains("c.csv:6: text follows the closing quote of a field opened on line 3"),
            "{e:?}"
        );
        let e = errors("text,label\n\"ok\" thanks,a\n");
        assert!(
            e[0].contains("c.csv:2: text follows the closing quote"),
            "{e:?}"
        );
        // Never closed: the rest of the file was its text, so the read ends there (an error
        // that --skip-invalid does not skip).
        let out = read(
            b"text,label\nfine,a\n\"never closed,b\nmore,c\n",
            "c.csv",
            &CorpusOptions::default(),
        );
        assert_eq!(out.len(), 2);
        let e = out[1].as_ref().unwrap_err();
        assert!(matches!(e, Error::UnclosedQuote { .. }), "{e}");
        assert!(
            e.to_string()
                .contains("c.csv:3: a quoted field opens here and never closes, so lines 3-4"),
            "{e}"
        );
        // The header row is checked too.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.csv");
        std::fs::write(&path, "id,text,\"label\"x\n1,a,b\n").unwrap();
        let e = CorpusReader::open(&path, &CorpusOptions::default()).unwrap_err();
        assert!(
            e.to_string()
                .contains("h.csv:1: text follows the closing quote"),
            "{e}"
        );
        // With --skip-invalid only the broken row goes: the next one reads as written.
        let out = read(
            b"text,label\n\"a\" b,x\nnext,y\n",
            "c.csv",
            &CorpusOptions::default(),
        );
        assert!(out[0].is_err());
        assert_eq!(out[1].as_ref().unwrap().text, "next");
        assert_eq!(out[1].as_ref().unwrap().line, 3);
    }

    #[test]
    fn csv_records_after_blank_lines_keep_their_lines() {
        let recs = ok(b"text,label\na,x\n\n\n\nb,y\n\nd,z\n", "b.csv");
        let lines: Vec<u64> = recs.iter().map(|r| r.line).collect();
        assert_eq!(lines, [2, 6, 8]);
        let out = read(
            b"text,label\na,x\n\n\nb,y,extra\n",
            "b.csv",
            &CorpusOptions::default(),
        );
        let e = out[1].as_ref().unwrap_err().to_string();
        assert!(e.contains("b.csv:5: row has 3 fields"), "{e}");
    }

    #[test]
    fn long_csv_with_quoted_multiline_fields_reads_exactly() {
        // Far past the readers' buffers, so records straddle every chunk boundary; CRLF and
        // LF mixed, quotes doubled, delimiters and line ends inside quoted fields.
        let mut csv = String::from("id,text,label\r\n");
        let mut want = Vec::new();
        let mut line = 2;
        for i in 0..3000 {
            let text = match i % 4 {
                0 => format!("plain text {i}"),
                1 => format!("says \"hi\", then {i}"),
                2 => format!("two\nlines {i}"),
                _ => format!("tab\tand, comma {i} 🙂"),
            };
            let quoted = text.contains(['"', ',', '\n']);
            let field = if quoted {
                format!("\"{}\"", text.replace('"', "\"\""))
            } else {
                text.clone()
            };
            csv += &format!(
                "{i},{field},l{}{}",
                i % 7,
                if i % 2 == 0 { "\r\n" } else { "\n" }
            );
            want.push((line, text.clone()));
            line += 1 + text.matches('\n').count() as u64;
        }
        let recs = ok(csv.as_bytes(), "long.csv");
        let got: Vec<(u64, String)> = recs.into_iter().map(|r| (r.line, r.text)).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn labels_are_trimmed_in_every_format() {
        for (name, contents) in [
            ("w.jsonl", "{\"text\": \"a\", \"label\": \" billing \"}\n"),
            ("w.csv", "text,label\na, billing \n"),
            ("w.tsv", "text\tlabel\na\t billing \n"),
        ] {
            let recs = ok(contents.as_bytes(), name);
            assert_eq!(recs[0].label.as_deref(), Some("billing"), "{name}");
        }
    }

    /// An empty label field reads no labels: not even from a column or key named "", whose
    /// bad values would otherwise stop a run that never uses them (`predict --data`).
    #[test]
    fn an_empty_label_field_reads_no_labels() {
        let options = CorpusOptions {
            label_field: String::new(),
            ..CorpusOptions::default()
        };
        for (name, contents) in [
            (
                "w.jsonl",
                "{\"text\": \"a\", \"\": \"\\u0001\", \"label\": \"x\"}\n",
            ),
            ("w.csv", "text,,label\na,\u{1},x\n"),
            ("w.tsv", "text\t\tlabel\na\t\u{1}\tx\n"),
        ] {
            let out = read(contents.as_bytes(), name, &options);
            let record = out[0].as_ref().expect("no label read, none refused");
            assert_eq!(
                (record.text.as_str(), record.label.as_deref()),
                ("a", None),
                "{name}"
            );
            // The default field reads the same file's label.
            let out = read(contents.as_bytes(), name, &CorpusOptions::default());
            assert_eq!(
                out[0].as_ref().unwrap().label.as_deref(),
                Some("x"),
                "{name}"
            );
        }
    }

    #[test]
    fn invalid_utf8_names_the_line() {
        let out = read(
            b"{\"text\": \"a\"}\n\xff\xfe\n",
            "c.jsonl",
            &CorpusOptions::default(),
        );
        assert!(out[0].is_ok());
        let e = out[1].as_ref().unwrap_err().to_string();
        assert!(e.contains(":2: invalid UTF-8"), "{e}");
    }

    #[test]
    fn reads_csv_with_quotes_and_custom_fields() {
        let options = CorpusOptions {
            text_field: "msg".into(),
            label_field: "intent".into(),
            ..CorpusOptions::default()
        };
        let out: Vec<Record> = read(
            b"intent,msg\nthanks,\"thanks, really\"\n,\"say \"\"hi\"\"\nplease\"\n,ok\n",
            "c.csv",
            &options,
        )
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].text, "thanks, really");
        assert_eq!(out[0].label.as_deref(), Some("thanks"));
        assert_eq!(out[1].text, "say \"hi\"\nplease");
        assert_eq!(out[1].line, 3);
        assert_eq!(
            out[2].line, 5,
            "a quoted newline moves the next record's line"
        );
    }

    #[test]
    fn crlf_csv_rows_keep_their_physical_lines() {
        let out = read(
            b"text,label\r\na,x\r\n\"b\r\nc\",\r\nd,y\r\ne\r\n",
            "c.csv",
            &CorpusOptions::default(),
        );
        let lines: Vec<u64> = out
            .iter()
            .map(|r| r.as_ref().map_or(0, |r| r.line))
            .collect();
        assert_eq!(lines[..3], [2, 3, 5]);
        assert_eq!(out[1].as_ref().unwrap().text, "b\nc");
        let e = out[3].as_ref().unwrap_err().to_string();
        assert!(e.contains("c.csv:6: row has 1 field,"), "{e}");
    }

    proptest::proptest! {
        /// Whatever the chunk boundaries, the adapter turns CRLF and a lone CR into one LF
        /// and keeps every other byte.
        #[test]
        fn line_end_adapter_matches_a_plain_replace(
            bytes in proptest::collection::vec(
                proptest::sample::select(vec![b'\r', b'\n', b'a']), 0..64),
            capacity in 1usize..8,
        ) {
            let reader = std::io::BufReader::with_capacity(capacity, &bytes[..]);
            let mut got = Vec::new();
            LineEnds::new(reader).read_to_end(&mut got).unwrap();
            let want: Vec<u8> = String::from_utf8(bytes.clone())
                .unwrap()
                .replace("\r\n", "\n")
                .replace('\r', "\n")
                .into_bytes();
            proptest::prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn an_id_given_twice_is_found_whatever_the_hashes() {
        let record = |line: u64, id: &str| Record {
            line,
            id: Some(RecordId(id.to_owned())),
            text: String::new(),
            label: None,
        };
        // The real hash, and one under which every id collides.
        for hash in [crate::hash::feature_hash as fn(&[u8]) -> u64, |_| 7] {
            let mut ids = IdIndex {
                hash,
                ..IdIndex::default()
            };
            let mut kept = Vec::new();
            for r in [record(1, "\"a\""), record(2, "7"), record(4, "\"b\"")] {
                ids.check(&kept, &r, Path::new("c"), "id").unwrap();
                kept.push(r);
                ids.add(&kept, kept.len() - 1);
            }
            for (again, first) in [("\"7\"", 2), ("\"a\"", 1), ("\"b\"", 4)] {
                let e = ids.check(&kept, &record(9, again), Path::new("c"), "id");
                let e = e.unwrap_err().to_string();
                assert!(e.contains(&format!("(first at line {first})")), "{e}");
            }
            ids.check(&kept, &record(9, "\"c\""), Path::new("c"), "id")
                .unwrap();
        }
    }

    #[test]
    fn a_name_without_a_known_extension_is_sniffed() {
        let json = b"\xEF\xBB\xBF\n  {\"text\": \"hi\", \"label\": \"greeting\"}\n";
        // Standard input (`-`) too: it has no extension to tell.
        for name in ["data", "corpus.dat", "x.jsonl.bak", "-"] {
            let recs = ok(json, name);
            assert_eq!(recs[0].label.as_deref(), Some("greeting"), "{name}");
            let recs = ok(b"__label__greeting hi\n", name);
            assert_eq!(recs[0].label.as_deref(), Some("greeting"), "{name}");
            assert_eq!(recs[0].text, "hi", "{name}");
        }
        // A known extension wins over the content.
        let recs = ok(b"{\"text\": \"hi\"}\n", "notes.txt");
        assert_eq!(recs[0].text, "{\"text\": \"hi\"}");
        assert_eq!(CorpusFormat::sniff(b""), CorpusFormat::Text);
        // `detect` gives the input back whole, past a byte-order mark; and it reads past
        // blank chunks, as a pipe may deliver them (a reader of 1-byte chunks here).
        let input = std::io::BufReader::new(&json[..]);
        let (got, mut input) = CorpusFormat::detect(Path::new("data"), input).unwrap();
        assert_eq!(got, CorpusFormat::Jsonl);
        let mut back = Vec::new();
        input.read_to_end(&mut back).unwrap();
        assert_eq!(back, json);
        let blank_first = b"\xEF\xBB\xBF\n \r\n{\"text\": \"hi\"}\n";
        let input = std::io::BufReader::with_capacity(1, &blank_first[..]);
        let (got, mut input) = CorpusFormat::detect(Path::new("-"), input).unwrap();
        assert_eq!(got, CorpusFormat::Jsonl);
        let mut back = Vec::new();
        input.read_to_end(&mut back).unwrap();
        assert_eq!(back, blank_first);
        let input = std::io::BufReader::with_capacity(1, &b"\n\n"[..]);
        assert_eq!(
            CorpusFormat::detect(Path::new("-"), input).unwrap().0,
            CorpusFormat::Text
        );
    }

    #[test]
    fn a_line_past_the_limit_is_read_past_and_the_next_one_read() {
        // A tiny buffer, so that lines straddle many fills.
        let input = b"abcd\r\nabcde\nabcdefghijklmnop\nab";
        let mut reader = std::io::BufReader::with_capacity(3, &input[..]);
        let mut buf = Vec::new();
        let mut got = Vec::new();
        loop {
            let read = read_line_bounded(&mut reader, &mut buf, 4).unwrap();
            if read == LineRead::End {
                break;
            }
            got.push((read, String::from_utf8(buf.clone()).unwrap()));
            // What is kept of a long line stays near the limit, not the line's length.
            assert!(buf.capacity() <= 16, "{}", buf.capacity());
        }
        let want = [
            (LineRead::Line, "abcd\r\n"),
            (LineRead::TooLong, ""),
            (LineRead::TooLong, ""),
            (LineRead::Line, "ab"),
        ];
        assert_eq!(got, want.map(|(r, s)| (r, s.to_owned())));
    }

    #[test]
    fn lone_cr_line_ends_are_lines() {
        let recs = ok(
            b"__label__a hello there\r__label__b bye now\rhello friend\r",
            "c.txt",
        );
        let lines: Vec<(u64, &str)> = recs.iter().map(|r| (r.line, r.text.as_str())).collect();
        assert_eq!(
            lines,
            [(1, "hello there"), (2, "bye now"), (3, "hello friend")]
        );
        let recs = ok(b"{\"text\": \"a\"}\r\r{\"text\": \"b\"}\r\n", "c.jsonl");
        assert_eq!((recs[1].line, recs[1].text.as_str()), (3, "b"));
    }

    #[test]
    fn csv_without_text_column_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.tsv");
        std::fs::write(&path, "a\tb\n1\t2\n").unwrap();
        let e = CorpusReader::open(&path, &CorpusOptions::default()).unwrap_err();
        assert!(e
            .to_string()
            .contains(":1: header row has no \"text\" column"));
    }

    #[test]
    fn a_column_named_twice_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.csv");
        std::fs::write(&path, "text,label,text\na,b,c\n").unwrap();
        let e = CorpusReader::open(&path, &CorpusOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with("c.csv:1: header row has the \"text\" column twice"),
            "{e}"
        );
    }

    #[test]
    fn csv_ragged_row_is_an_error() {
        let out = read(b"text,label\na,b\nc\n", "c.csv", &CorpusOptions::default());
        let e = out[1].as_ref().unwrap_err().to_string();
        assert!(
            e.contains(":3: row has 1 field, the header row has 2"),
            "{e}"
        );
    }

    #[test]
    fn reads_plain_text_with_fasttext_labels() {
        let recs = ok(b"__label__thanks thank you\n\nhello there\n", "c.txt");
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].label.as_deref(), Some("thanks"));
        assert_eq!(recs[0].text, "thank you");
        assert_eq!(recs[1].line, 3);
        let out = read(
            b"__label__a __label__b x\n",
            "c.txt",
            &CorpusOptions::default(),
        );
        assert!(out[0].is_err());
    }

    #[test]
    fn nul_bytes_are_refused() {
        let out = read(b"a\0b\n", "c.txt", &CorpusOptions::default());
        assert!(out[0].as_ref().unwrap_err().to_string().contains("NUL"));
    }

    /// A reader of scripted chunks and errors, one per `fill_buf`, then the end.
    struct Scripted {
        steps: std::collections::VecDeque<std::io::Result<Vec<u8>>>,
        chunk: Vec<u8>,
        at: usize,
    }

    impl Scripted {
        fn new(steps: impl IntoIterator<Item = std::io::Result<Vec<u8>>>) -> Self {
            Self {
                steps: steps.into_iter().collect(),
                chunk: Vec::new(),
                at: 0,
            }
        }
    }

    impl BufRead for Scripted {
        fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
            if self.at == self.chunk.len() {
                self.chunk.clear();
                self.at = 0;
                if let Some(step) = self.steps.pop_front() {
                    self.chunk = step?;
                }
            }
            Ok(&self.chunk[self.at..])
        }

        fn consume(&mut self, n: usize) {
            self.at += n;
        }
    }

    impl Read for Scripted {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let chunk = self.fill_buf()?;
            let n = chunk.len().min(out.len());
            out[..n].copy_from_slice(&chunk[..n]);
            self.consume(n);
            Ok(n)
        }
    }

    fn broken() -> std::io::Error {
        std::io::Error::other("broken pipe of the test")
    }

    /// A sprig artifact or a compressed file given as a corpus is named for what it is; a
    /// text that starts with a sprig magic's letters is still a text.
    #[test]
    fn artifacts_and_compressed_files_are_named_not_read_as_text() {
        let read = |bytes: &'static [u8]| {
            let options = CorpusOptions::default();
            CorpusReader::from_reader(Path::new("c.txt"), Box::new(bytes), &options)
                .map(|r| r.map(|x| x.unwrap().text).collect::<Vec<_>>())
                .map_err(|e| e.to_string())
        };
        for (bytes, said) in [
            (&b"SPRIGGRF\x01\x00\x00\x00\x9a\x07"[..], "a sprig graph"),
            (b"SPRIGMDL\x02\x00\x00\x00{\"crate", "a sprig model"),
            (b"\x1f\x8b\x08\x00", "gzip-compressed: decompress it first"),
            (b"\x28\xb5\x2f\xfd\x00", "zstd-compressed"),
            (b"\xfd7zXZ\x00\x00", "xz-compressed"),
            (b"PK\x03\x04\x14\x00", "a zip archive"),
        ] {
            let err = read(bytes).unwrap_err();
            assert!(
                err.starts_with(&format!("c.txt: {said}")) && err.contains("not a corpus"),
                "{err}"
            );
        }
        assert_eq!(
            read(b"SPRIGGRF files are graphs\nSPRIGMDL\n").unwrap(),
            ["SPRIGGRF files are graphs", "SPRIGMDL"]
        );
        assert_eq!(
            read(b"SPRIGMDL files are models\n").unwrap(),
            ["SPRIGMDL files are models"]
        );
    }

    #[test]
    fn detect_reads_no_further_than_it_must() {
        // A pipe may deliver `{` alone and the rest later (here: never, an error): the first
        // non-blank byte tells.
        let input = Scripted::new([Ok(b"{".to_vec()), Err(broken())]);
        let (format, _) = CorpusFormat::detect(Path::new("-"), input).unwrap();
        assert_eq!(format, CorpusFormat::Jsonl);
        // Blanks past a line's worth say text, without reading (and holding) the rest.
        let blanks = (0..2000).map(|_| Ok(vec![b' '; 1000]));
        let input = Scripted::new(blanks.chain([Err(broken())]));
        let (format, _) = CorpusFormat::detect(Path::new("-"), input).unwrap();
        assert_eq!(format, CorpusFormat::Text);
        // Exactly a line's worth is not past it: the next byte still tells.
        let blanks = (0..MAX_LINE_BYTES / 1024).map(|_| Ok(vec![b' '; 1024]));
        let input = Scripted::new(blanks.chain([Ok(b"{".to_vec()), Err(broken())]));
        let (format, _) = CorpusFormat::detect(Path::new("-"), input).unwrap();
        assert_eq!(format, CorpusFormat::Jsonl);
    }

    #[test]
    fn an_interrupted_read_is_retried_and_another_error_returned() {
        let mut reader = Scripted::new([
            Err(std::io::ErrorKind::Interrupted.into()),
            Ok(b"ab\n".to_vec()),
            Err(broken()),
            Ok(b"cd\n".to_vec()),
        ]);
        let mut buf = Vec::new();
        let read = read_line_bounded(&mut reader, &mut buf, 16).unwrap();
        assert_eq!((read, &buf[..]), (LineRead::Line, &b"ab\n"[..]));
        let e = read_line_bounded(&mut reader, &mut buf, 16).unwrap_err();
        assert_eq!(e.to_string(), broken().to_string());
        let read = read_line_bounded(&mut reader, &mut buf, 16).unwrap();
        assert_eq!((read, &buf[..]), (LineRead::Line, &b"cd\n"[..]));
    }

    #[test]
    fn a_long_line_is_held_only_up_to_about_the_limit() {
        // A 10,000-byte line in 100-byte chunks, limit 1,000: the buffer stops growing just
        // past the limit (plus a CRLF and a chunk), however long the line.
        let input = [vec![b'a'; 10_000], b"\nok\n".to_vec()].concat();
        let mut reader = std::io::BufReader::with_capacity(100, &input[..]);
        let mut buf = Vec::new();
        let read = read_line_bounded(&mut reader, &mut buf, 1000).unwrap();
        assert_eq!(read, LineRead::TooLong);
        assert!(buf.capacity() < 2000, "{}", buf.capacity());
        let read = read_line_bounded(&mut reader, &mut buf, 1000).unwrap();
        assert_eq!((read, &buf[..]), (LineRead::Line, &b"ok\n"[..]));
    }

    #[test]
    fn an_io_error_under_a_csv_ends_the_read_as_an_io_error() {
        let raw = Scripted::new([Ok(b"text,label\nhi,x\nyo,".to_vec()), Err(broken())]);
        let options = CorpusOptions {
            format: Some(CorpusFormat::Csv),
            ..CorpusOptions::default()
        };
        let out: Vec<Result<Record>> =
            CorpusReader::from_reader(Path::new("c.csv"), Box::new(raw), &options)
                .unwrap()
                .collect();
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(out[0].as_ref().unwrap().text, "hi");
        assert!(matches!(&out[1], Err(Error::Io { .. })), "{:?}", out[1]);
    }

    #[test]
    fn a_reader_started_on_one_thread_finishes_on_another() {
        // A program may open (and sniff) a corpus on one thread and stream it on a worker:
        // the CSV reader's kept bytes go with it. The header and first record are read here,
        // the rest there, and the quoting check still sees every record.
        let text = b"text,label\nhi,x\n\"yo\" there,y\nlast,z\n".to_vec();
        let options = CorpusOptions::default();
        let mut reader = CorpusReader::from_reader(
            Path::new("c.csv"),
            Box::new(std::io::Cursor::new(text)),
            &options,
        )
        .unwrap();
        assert_eq!(reader.next().unwrap().unwrap().text, "hi");
        let rest = std::thread::spawn(move || reader.collect::<Vec<Result<Record>>>())
            .join()
            .unwrap();
        assert_eq!(rest.len(), 2, "{rest:?}");
        match &rest[0] {
            Err(Error::Parse { line, .. }) => assert_eq!(*line, 3),
            other => panic!("the stray quote on line 3 is refused: {other:?}"),
        }
    }

    #[test]
    fn integer_labels_and_ids_read_as_written() {
        let recs = ok(
            b"{\"text\": \"a\", \"label\": 3, \"id\": -1}\n\
              {\"text\": \"b\", \"label\": -2, \"id\": 18446744073709551615}\n",
            "c.jsonl",
        );
        assert_eq!(recs[0].label.as_deref(), Some("3"));
        assert_eq!(recs[0].id, Some(RecordId("-1".into())));
        assert_eq!(recs[1].label.as_deref(), Some("-2"));
        assert_eq!(recs[1].id, Some(RecordId("18446744073709551615".into())));
        // Other numbers are not labels.
        let out = read(
            b"{\"text\": \"a\", \"label\": 1.5}\n",
            "c.jsonl",
            &CorpusOptions::default(),
        );
        let e = out[0].as_ref().unwrap_err().to_string();
        assert!(
            e.contains(":1: field \"label\": expected a string or an integer, found a number"),
            "{e}"
        );
    }

    #[test]
    fn plain_text_refuses_only_a_field_given_other_than_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.txt");
        std::fs::write(&path, "__label__a hi\n").unwrap();
        let open = |label: &str, require_label: bool, id: Option<&str>, require_id: bool| {
            let options = CorpusOptions {
                label_field: label.into(),
                require_label,
                id_field: id.map(str::to_owned),
                require_id,
                ..CorpusOptions::default()
            };
            CorpusReader::open(&path, &options)
                .map(|r| r.map(|r| r.unwrap().label).collect::<Vec<_>>())
        };
        // The default names given explicitly, or other names only passed on (a graph's
        // fields, for a prior sample): the `__label__` prefix is the label.
        for (label, require_label, id, require_id) in [
            ("label", true, Some("id"), true),
            ("intent", false, Some("key"), false),
            ("label", false, None, true),
        ] {
            let labels = open(label, require_label, id, require_id).unwrap();
            assert_eq!(labels, [Some("a".to_owned())], "{label} {id:?}");
        }
        for (label, id, name) in [
            ("intent", Some("id"), "intent"),
            ("label", Some("key"), "key"),
        ] {
            let e = open(label, true, id, true).unwrap_err().to_string();
            assert!(
                e.contains("c.txt:1: read as plain text")
                    && e.contains(&format!("which has no field {name:?}")),
                "{e}"
            );
        }
        let reader = CorpusReader::open(&path, &CorpusOptions::default()).unwrap();
        assert!(format!("{reader:?}").contains("c.txt"), "{reader:?}");
    }

    #[test]
    fn csv_ids_are_read_as_strings_and_an_empty_one_is_none() {
        let recs = ok(b"id,text\n7,a\n,b\n x y ,c\n", "c.csv");
        let ids: Vec<Option<String>> = recs
            .iter()
            .map(|r| r.id.as_ref().map(RecordId::as_plain))
            .collect();
        assert_eq!(ids, [Some("7".to_owned()), None, Some("x y".to_owned())]);
    }

    /// A doubled quote is one quote of a quoted field's text wherever it stands: the whole
    /// field (a lone `"`), its start, its end. The strict check steps over each pair whole.
    #[test]
    fn doubled_quotes_read_as_one_wherever_they_stand() {
        let recs = ok(
            b"text,label\n\"\"\"\",q\n\"\"\"hi\"\", she said\",x\n\"a \"\"b\"\"\",y\n",
            "c.csv",
        );
        let texts: Vec<&str> = recs.iter().map(|r| r.text.as_str()).collect();
        assert_eq!(texts, ["\"", "\"hi\", she said", "a \"b\""]);
    }

    /// An id may be any integer a corpus holds, negative or past i64, or a string: valid,
    /// and read back from its JSON as written. A fraction or bare text is not an id.
    #[test]
    fn negative_and_past_i64_integer_ids_are_valid_and_read_back() {
        for (id, json) in [
            (RecordId::from(-1i64), "-1"),
            (RecordId::from(u64::MAX), "18446744073709551615"),
            (RecordId::from("a7"), "\"a7\""),
        ] {
            assert!(id.is_valid(), "{id:?}");
            assert_eq!(serde_json::from_str::<RecordId>(json).unwrap(), id);
        }
        assert!(!RecordId("1.5".into()).is_valid());
        assert!(!RecordId("a7".into()).is_valid());
    }

    /// A reader gives back the options it was opened with (what `features::ingest_from`
    /// names fields by in its messages), its path and its format.
    #[test]
    fn a_reader_gives_back_its_options_path_and_format() {
        let options = CorpusOptions {
            text_field: "msg".into(),
            label_field: "intent".into(),
            id_field: Some("key".into()),
            require_label: true,
            ..CorpusOptions::default()
        };
        let csv = &b"key,msg,intent\n1,hi,x\n"[..];
        let reader =
            CorpusReader::from_reader(Path::new("c.csv"), Box::new(csv), &options).unwrap();
        assert_eq!(reader.options(), &options);
        assert_eq!(reader.path(), Path::new("c.csv"));
        assert_eq!(reader.format(), CorpusFormat::Csv);
    }

    /// A CSV record is capped by its own bytes, as a line is: blank lines before one of
    /// exactly the cap do not count against it (within the read-ahead the kept bytes
    /// allow); a quote that never closes is stopped at the cap and named as the likely
    /// cause; a header row past the cap is refused as such.
    #[test]
    fn a_csv_record_is_capped_by_its_own_bytes() {
        let exact = "a".repeat(MAX_LINE_BYTES - 1);
        let blanks = "\n".repeat(16 << 10);
        let csv = format!("text,label\nhi,x\n{blanks}{exact},\nok,y\n");
        let recs = ok(csv.as_bytes(), "c.csv");
        let texts: Vec<&str> = recs.iter().map(|r| r.text.as_str()).collect();
        assert_eq!(texts, ["hi", exact.as_str(), "ok"]);
        let open = format!(
            "text,label\nhi,x\n\"{}\nmore,z\n",
            "a".repeat(2 * MAX_LINE_BYTES)
        );
        let out = read(open.as_bytes(), "c.csv", &CorpusOptions::default());
        assert_eq!(out.len(), 2);
        assert!(
            matches!(
                out[1],
                Err(Error::RecordTooLong {
                    line: 3,
                    unclosed_quote: true,
                    ..
                })
            ),
            "{:?}",
            out[1]
        );
        let header = format!("{},text\nhi\n", "h".repeat(2 * MAX_LINE_BYTES));
        let options = CorpusOptions::default();
        let e =
            CorpusReader::from_reader(Path::new("c.csv"), Box::new(header.as_bytes()), &options)
                .unwrap_err();
        assert!(
            matches!(e, Error::Io { .. }) && e.to_string() == "c.csv: record longer than 1 MiB",
            "{e}"
        );
    }
}
