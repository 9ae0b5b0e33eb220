//! The artifact container shared by `.graph` and `.sprig` (model) files, and atomic writes.
//!
//! Every binary file sprig writes has this layout (all integers little-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic: `SPRIGGRF` (graph) or `SPRIGMDL` (model) |
//! | 8 | 4 | `format_version`, u32 (one counter per artifact kind, starting at 1) |
//! | 12 | 4 | `header_len`, u32 |
//! | 16 | header_len | header: UTF-8 JSON object |
//! | … | 0–7 | zero padding to an 8-byte boundary: the *data area* starts there |
//! | … | … | sections: raw little-endian arrays, each starting 8-byte aligned |
//! | end − 4 | 4 | CRC32 (IEEE) of every preceding byte |
//!
//! The header always holds a `sections` array of `{name, dtype, shape, offset, len}` where
//! `offset` counts from the start of the data area and `len` is in bytes; `dtype` is one of
//! `u8`, `i8`, `i4` (two to a byte, see [`Dtype::I4`]), `u32`, `u64`, `f32`. Everything else
//! in the header belongs to the artifact kind (configs, label names, counts, crate version,
//! hash name).
//!
//! **Reading** checks, in this order, and stops at the first failure with its own error:
//! magic ([`Error::BadMagic`]), version range ([`Error::UnsupportedVersion`]), header JSON and
//! section table ([`Error::BadHeader`]), that every section lies inside the file
//! ([`Error::Truncated`]), and the CRC ([`Error::ChecksumMismatch`]). Sizes are checked against
//! the file length before anything is allocated, so a header claiming 10¹² nodes costs nothing.
//!
//! No serde binary codec is involved: bincode is unmaintained (RUSTSEC-2025-0141), and raw
//! aligned sections can later be memory-mapped as they are.
//!
//! **Writing** goes through [`write_atomic`]: a temporary file in the target folder, fsync,
//! rename. A reader never sees a half-written file under the final name. Links are followed
//! (the target is replaced, the link kept); devices and FIFOs are written in place, and
//! standard output (`/dev/stdout`, or what it is redirected to) through its descriptor.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Element type of a section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    /// Bytes (UTF-8 blobs).
    U8,
    /// Signed bytes (quantized weights).
    I8,
    /// Signed 4-bit integers (−8..=7, two's complement), two to a byte: element `2i` in
    /// the low nibble of byte `i`, element `2i + 1` in its high nibble; an odd count leaves
    /// the last high nibble 0. The length is ⌈count / 2⌉ bytes.
    I4,
    /// 32-bit unsigned integers (ids).
    U32,
    /// 64-bit unsigned integers (offsets).
    U64,
    /// 32-bit floats.
    F32,
}

impl Dtype {
    /// Bytes taken by `count` elements, `None` on overflow.
    fn bytes(self, count: u64) -> Option<u64> {
        match self {
            Dtype::I4 => Some(count.div_ceil(2)),
            Dtype::U8 | Dtype::I8 => Some(count),
            Dtype::U32 | Dtype::F32 => count.checked_mul(4),
            Dtype::U64 => count.checked_mul(8),
        }
    }
}

/// One entry of the header's section table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionEntry {
    /// Section name, unique within the file.
    pub name: String,
    /// Element type.
    pub dtype: Dtype,
    /// Shape; the product is the element count.
    pub shape: Vec<u64>,
    /// Byte offset from the start of the data area (a multiple of 8).
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
}

/// The values of a [`Dtype::I4`] section, still packed two to a byte (value `2k` in byte
/// `k`'s low nibble, `2k + 1` in its high one): [`Artifact::nibbles`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Nibbles<'a> {
    bytes: &'a [u8],
    count: usize,
}

impl Nibbles<'_> {
    /// How many values.
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// Value `at`, sign-extended from its nibble: shifted to the top of a byte, then
    /// arithmetic-shifted back. Always within −8..=7.
    #[inline]
    pub(crate) fn get(&self, at: usize) -> i8 {
        debug_assert!(at < self.count);
        let b = self.bytes[at / 2];
        ((if at % 2 == 1 { b } else { b << 4 }) as i8) >> 4
    }
}

/// Builds an artifact: sections first, then [`ArtifactWriter::write_to`] (streams the file,
/// hashing as it goes) or [`ArtifactWriter::finish`] (the bytes in memory). Sections borrow
/// their values until then, so that a large graph is never copied into a buffer to be
/// written.
#[derive(Debug, Default)]
pub struct ArtifactWriter<'a> {
    entries: Vec<SectionEntry>,
    sources: Vec<Source<'a>>,
    /// Bytes of the data area so far (padded to 8).
    len: u64,
}

/// Where a section's bytes come from.
#[derive(Debug)]
enum Source<'a> {
    Bytes(std::borrow::Cow<'a, [u8]>),
    U32(&'a [u32]),
    U64(std::borrow::Cow<'a, [u64]>),
    F32(&'a [f32]),
    /// The concatenation of these strings' UTF-8.
    Blob(Vec<&'a str>),
}

impl Source<'_> {
    /// Writes the bytes, little-endian, in chunks.
    fn write(&self, w: &mut dyn Write) -> std::io::Result<()> {
        fn each<T: Copy, const N: usize>(
            w: &mut dyn Write,
            values: &[T],
            le: impl Fn(T) -> [u8; N],
        ) -> std::io::Result<()> {
            let mut buf = Vec::with_capacity(1 << 16);
            for chunk in values.chunks((1 << 16) / N) {
                buf.clear();
                buf.extend(chunk.iter().flat_map(|&v| le(v)));
                w.write_all(&buf)?;
            }
            Ok(())
        }
        match self {
            Source::Bytes(b) => w.write_all(b),
            Source::U32(v) => each(w, v, u32::to_le_bytes),
            Source::U64(v) => each(w, v, u64::to_le_bytes),
            Source::F32(v) => each(w, v, f32::to_le_bytes),
            Source::Blob(strings) => strings.iter().try_for_each(|s| w.write_all(s.as_bytes())),
        }
    }
}

impl<'a> ArtifactWriter<'a> {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    fn push(&mut self, name: &str, dtype: Dtype, shape: &[u64], len: u64, source: Source<'a>) {
        debug_assert!(self.entries.iter().all(|e| e.name != name));
        debug_assert_eq!(
            dtype.bytes(shape.iter().product::<u64>()),
            Some(len),
            "section {name:?}"
        );
        self.entries.push(SectionEntry {
            name: name.to_owned(),
            dtype,
            shape: shape.to_vec(),
            offset: self.len,
            len,
        });
        self.sources.push(source);
        self.len += len.div_ceil(8) * 8;
    }

    /// Appends a byte section.
    pub fn add_u8(&mut self, name: &str, values: &'a [u8]) {
        let len = values.len() as u64;
        self.push(name, Dtype::U8, &[len], len, Source::Bytes(values.into()));
    }

    /// Appends a signed-byte section with the given shape.
    pub fn add_i8(&mut self, name: &str, shape: &[u64], values: &[i8]) {
        let bytes: Vec<u8> = values.iter().map(|&v| v as u8).collect();
        let len = bytes.len() as u64;
        self.push(name, Dtype::I8, shape, len, Source::Bytes(bytes.into()));
    }

    /// Appends a 4-bit section with the given shape ([`Dtype::I4`]).
    ///
    /// # Panics
    /// If a value is outside −8..=7 (a bug in the caller: nothing would read it back).
    pub fn add_i4(&mut self, name: &str, shape: &[u64], values: &[i8]) {
        assert!(
            values.iter().all(|v| (-8..=7).contains(v)),
            "4-bit section {name:?} holds a value outside -8..=7"
        );
        let bytes: Vec<u8> = values
            .chunks(2)
            .map(|p| (p[0] as u8 & 0x0f) | ((p.get(1).copied().unwrap_or(0) as u8) << 4))
            .collect();
        let len = bytes.len() as u64;
        self.push(name, Dtype::I4, shape, len, Source::Bytes(bytes.into()));
    }

    /// Appends a `u32` section with the given shape.
    pub fn add_u32(&mut self, name: &str, shape: &[u64], values: &'a [u32]) {
        let len = 4 * values.len() as u64;
        self.push(name, Dtype::U32, shape, len, Source::U32(values));
    }

    /// Appends a `u64` section with the given shape.
    pub fn add_u64(&mut self, name: &str, shape: &[u64], values: &'a [u64]) {
        let len = 8 * values.len() as u64;
        self.push(name, Dtype::U64, shape, len, Source::U64(values.into()));
    }

    /// Appends an `f32` section with the given shape.
    pub fn add_f32(&mut self, name: &str, shape: &[u64], values: &'a [f32]) {
        let len = 4 * values.len() as u64;
        self.push(name, Dtype::F32, shape, len, Source::F32(values));
    }

    /// Appends a list of strings as two sections: `{name}.offsets` (u64, n + 1) and
    /// `{name}.bytes` (the UTF-8 blob, written from the strings themselves).
    pub fn add_strings<S: AsRef<str>>(&mut self, name: &str, strings: &'a [S]) {
        let mut offsets = Vec::with_capacity(strings.len() + 1);
        let mut total = 0u64;
        offsets.push(0u64);
        for s in strings {
            total += s.as_ref().len() as u64;
            offsets.push(total);
        }
        let n = offsets.len() as u64;
        self.push(
            &format!("{name}.offsets"),
            Dtype::U64,
            &[n],
            8 * n,
            Source::U64(offsets.into()),
        );
        let blob = strings.iter().map(AsRef::as_ref).collect();
        self.push(
            &format!("{name}.bytes"),
            Dtype::U8,
            &[total],
            total,
            Source::Blob(blob),
        );
    }

    /// Writes the file to `out`: `header` must be a JSON object; its `sections` key is set
    /// here. The checksum is computed as the bytes go.
    ///
    /// # Errors
    /// Any error of `out`.
    pub fn write_to(
        &self,
        magic: &[u8; 8],
        version: u32,
        mut header: serde_json::Value,
        out: &mut dyn Write,
    ) -> std::io::Result<()> {
        /// A writer that hashes what passes through it.
        struct Hashed<'w> {
            out: &'w mut dyn Write,
            crc: crc32fast::Hasher,
            written: u64,
        }
        impl Write for Hashed<'_> {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                let n = self.out.write(buf)?;
                self.crc.update(&buf[..n]);
                self.written += n as u64;
                Ok(n)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                self.out.flush()
            }
        }
        let obj = header
            .as_object_mut()
            .expect("artifact header must be a JSON object");
        obj.insert(
            "sections".to_owned(),
            serde_json::to_value(&self.entries).expect("section table serializes"),
        );
        let header_bytes = serde_json::to_vec(&header).expect("header serializes");
        let mut w = Hashed {
            out,
            crc: crc32fast::Hasher::new(),
            written: 0,
        };
        let pad = |w: &mut Hashed<'_>| {
            let n = w.written.next_multiple_of(8) - w.written;
            w.write_all(&[0u8; 8][..n as usize])
        };
        w.write_all(magic)?;
        w.write_all(&version.to_le_bytes())?;
        w.write_all(&(header_bytes.len() as u32).to_le_bytes())?;
        w.write_all(&header_bytes)?;
        pad(&mut w)?;
        for source in &self.sources {
            source.write(&mut w)?;
            pad(&mut w)?;
        }
        let crc = w.crc.clone().finalize();
        w.out.write_all(&crc.to_le_bytes())
    }

    /// The file's bytes (see [`ArtifactWriter::write_to`]).
    pub fn finish(self, magic: &[u8; 8], version: u32, header: serde_json::Value) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.len as usize);
        self.write_to(magic, version, header, &mut out)
            .expect("writing to memory cannot fail");
        out
    }
}

/// What a reader expects of a file: its kind, magic and readable version range.
#[derive(Debug, Clone, Copy)]
pub struct Expect {
    /// Human name of the kind (`graph`, `model`).
    pub kind: &'static str,
    /// The magic bytes.
    pub magic: &'static [u8; 8],
    /// Oldest readable format version.
    pub oldest: u32,
    /// Newest readable format version (the one this build writes).
    pub newest: u32,
}

/// What the first bytes of an artifact say, checked: checks 1–4 of the module docs.
struct Layout {
    version: u32,
    header: serde_json::Value,
    sections: Vec<SectionEntry>,
    /// Where the data area starts, from the start of the file.
    data_start: u64,
}

impl Layout {
    /// Checks the magic, the version, the header and the section bounds of a file of `len`
    /// bytes whose first bytes are `bytes`: the whole file, or at least its preamble and
    /// header when it has them (a shorter prefix is reported as truncated or bad magic, as
    /// the whole file would be).
    fn check(path: &Path, bytes: &[u8], len: u64, expect: Expect) -> Result<Self> {
        let truncated = |what: &str, needed: u64| Error::Truncated {
            path: path.to_owned(),
            what: what.to_owned(),
            needed,
            len,
        };
        let bad_header = |message: String| Error::BadHeader {
            path: path.to_owned(),
            message,
        };
        // 1. Magic. A file that stops inside it (an empty one too) is cut short, not
        // another kind of file.
        if bytes.len() < 8 && expect.magic.starts_with(bytes) {
            return Err(truncated("the magic", 8));
        }
        if bytes.len() < 8 || &bytes[..8] != expect.magic {
            let found = &bytes[..bytes.len().min(8)];
            return Err(Error::BadMagic {
                path: path.to_owned(),
                kind: expect.kind,
                expected: String::from_utf8_lossy(expect.magic).into_owned(),
                found: String::from_utf8_lossy(found).into_owned(),
            });
        }
        // 2. Version.
        if bytes.len() < 16 {
            return Err(truncated("the fixed preamble", 16));
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().unwrap());
        if version < expect.oldest || version > expect.newest {
            return Err(Error::UnsupportedVersion {
                path: path.to_owned(),
                found: version,
                oldest: expect.oldest,
                newest: expect.newest,
            });
        }
        // 3. Header.
        let header_len = u64::from(u32::from_le_bytes(bytes[12..16].try_into().unwrap()));
        let header_end = 16 + header_len;
        if header_end + 4 > len {
            return Err(truncated("the header", header_end + 4));
        }
        let header_end = header_end as usize;
        let header: serde_json::Value = serde_json::from_slice(&bytes[16..header_end])
            .map_err(|e| bad_header(format!("invalid JSON: {e}")))?;
        if !header.is_object() {
            return Err(bad_header("not a JSON object".into()));
        }
        let sections: Vec<SectionEntry> = match header.get("sections") {
            Some(v) => serde_json::from_value(v.clone())
                .map_err(|e| bad_header(format!("section table: {e}")))?,
            None => return Err(bad_header("missing the section table".into())),
        };
        let data_start = (header_end as u64).div_ceil(8) * 8;
        // 4. Section bounds, before anything is allocated from them.
        let data_end = len - 4;
        for (i, s) in sections.iter().enumerate() {
            if sections[..i].iter().any(|o| o.name == s.name) {
                return Err(bad_header(format!("section {:?} appears twice", s.name)));
            }
            let count = s
                .shape
                .iter()
                .try_fold(1u64, |acc, &d| acc.checked_mul(d))
                .and_then(|c| s.dtype.bytes(c));
            if count != Some(s.len) {
                return Err(bad_header(format!(
                    "section {:?}: shape {:?} of {:?} does not match its length {}",
                    s.name, s.shape, s.dtype, s.len
                )));
            }
            if s.offset % 8 != 0 {
                return Err(bad_header(format!(
                    "section {:?}: offset {} is not 8-byte aligned",
                    s.name, s.offset
                )));
            }
            let end = data_start
                .checked_add(s.offset)
                .and_then(|x| x.checked_add(s.len));
            match end {
                Some(end) if end <= data_end => {}
                _ => {
                    let needed = end.map_or(u64::MAX, |e| e.saturating_add(4));
                    return Err(truncated(&format!("section {:?}", s.name), needed));
                }
            }
        }
        // Each byte belongs to one section at most: two sections over the same bytes would
        // read one as the other (a crafted file's bias over its scales).
        let mut spans: Vec<(u64, u64, &str)> = sections
            .iter()
            .map(|s| (s.offset, s.offset + s.len, s.name.as_str()))
            .collect();
        spans.sort_unstable();
        if let Some(w) = spans.windows(2).find(|w| w[1].0 < w[0].1) {
            return Err(bad_header(format!(
                "sections {:?} and {:?} overlap",
                w[0].2, w[1].2
            )));
        }
        Ok(Layout {
            version,
            header,
            sections,
            data_start,
        })
    }
}

/// A parsed, verified artifact: its version, JSON header and raw data area.
#[derive(Debug)]
pub struct Artifact {
    path: std::path::PathBuf,
    /// The format version read from the file.
    pub version: u32,
    /// The JSON header (including `sections`).
    pub header: serde_json::Value,
    sections: Vec<SectionEntry>,
    bytes: Vec<u8>,
    data_start: usize,
}

impl Artifact {
    /// Reads and verifies the file at `path`.
    ///
    /// # Errors
    /// [`Error::Io`] if it cannot be read, then the checks listed in the module docs.
    pub fn read(path: &Path, expect: Expect) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::parse(path, bytes, expect)
    }

    /// Verifies `bytes` as the contents of `path` (used for messages only).
    ///
    /// # Errors
    /// The checks listed in the module docs, in that order.
    pub fn parse(path: &Path, bytes: Vec<u8>, expect: Expect) -> Result<Self> {
        let layout = Layout::check(path, &bytes, bytes.len() as u64, expect)?;
        // 5. Checksum.
        let stored = u32::from_le_bytes(bytes[bytes.len() - 4..].try_into().unwrap());
        let computed = crc32fast::hash(&bytes[..bytes.len() - 4]);
        if stored != computed {
            return Err(Error::ChecksumMismatch {
                path: path.to_owned(),
                expected: stored,
                computed,
            });
        }
        Ok(Self {
            path: path.to_owned(),
            version: layout.version,
            header: layout.header,
            sections: layout.sections,
            bytes,
            data_start: layout.data_start as usize,
        })
    }

    /// The file this artifact came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The section table.
    pub fn sections(&self) -> &[SectionEntry] {
        &self.sections
    }

    /// Deserializes the header into `T`.
    ///
    /// # Errors
    /// [`Error::BadHeader`] naming the field that failed.
    pub fn header_as<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_value(self.header.clone()).map_err(|e| Error::BadHeader {
            path: self.path.clone(),
            message: e.to_string(),
        })
    }

    fn section(&self, name: &str, dtype: Dtype) -> Result<(&SectionEntry, &[u8])> {
        let entry = self
            .sections
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| Error::BadHeader {
                path: self.path.clone(),
                message: format!("missing section {name:?}"),
            })?;
        if entry.dtype != dtype {
            return Err(Error::BadHeader {
                path: self.path.clone(),
                message: format!(
                    "section {name:?} has dtype {:?}, expected {dtype:?}",
                    entry.dtype
                ),
            });
        }
        let start = self.data_start + entry.offset as usize;
        Ok((entry, &self.bytes[start..start + entry.len as usize]))
    }

    /// The bytes of a `u8` section.
    ///
    /// # Errors
    /// [`Error::BadHeader`] if the section is missing or of another type.
    pub fn u8s(&self, name: &str) -> Result<&[u8]> {
        Ok(self.section(name, Dtype::U8)?.1)
    }

    /// The values of an `i8` section.
    ///
    /// # Errors
    /// As [`Artifact::u8s`].
    pub fn i8s(&self, name: &str) -> Result<Vec<i8>> {
        Ok(self
            .section(name, Dtype::I8)?
            .1
            .iter()
            .map(|&b| b as i8)
            .collect())
    }

    /// The values of an `i4` section ([`Dtype::I4`]), one `i8` each.
    ///
    /// # Errors
    /// As [`Artifact::u8s`], and [`Error::BadHeader`] if an odd count's unused last nibble
    /// is not 0.
    pub fn i4s(&self, name: &str) -> Result<Vec<i8>> {
        let q = self.nibbles(name)?;
        Ok((0..q.len()).map(|at| q.get(at)).collect())
    }

    /// The values of an `i4` section left packed two to a byte, checked as [`Artifact::i4s`]
    /// checks them: loading plans a 4-bit layer from these without unpacking it whole.
    pub(crate) fn nibbles(&self, name: &str) -> Result<Nibbles<'_>> {
        let (entry, bytes) = self.section(name, Dtype::I4)?;
        let count = entry.shape.iter().product::<u64>() as usize;
        let q = Nibbles { bytes, count };
        // `count` is at most the nibbles of `bytes`: the section's length was checked
        // against its shape.
        if count % 2 == 1 && bytes[count / 2] >> 4 != 0 {
            return Err(Error::BadHeader {
                path: self.path.clone(),
                message: format!("section {name:?}: the unused last nibble is not 0"),
            });
        }
        Ok(q)
    }

    /// The values of a `u32` section.
    ///
    /// # Errors
    /// As [`Artifact::u8s`].
    pub fn u32s(&self, name: &str) -> Result<Vec<u32>> {
        let (_, b) = self.section(name, Dtype::U32)?;
        Ok(b.chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect())
    }

    /// The values of a `u64` section.
    ///
    /// # Errors
    /// As [`Artifact::u8s`].
    pub fn u64s(&self, name: &str) -> Result<Vec<u64>> {
        let (_, b) = self.section(name, Dtype::U64)?;
        Ok(b.chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect())
    }

    /// The values of an `f32` section.
    ///
    /// # Errors
    /// As [`Artifact::u8s`].
    pub fn f32s(&self, name: &str) -> Result<Vec<f32>> {
        let (_, b) = self.section(name, Dtype::F32)?;
        Ok(b.chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect())
    }

    /// The strings written by [`ArtifactWriter::add_strings`], checked for monotone offsets
    /// inside the blob and valid UTF-8.
    ///
    /// # Errors
    /// [`Error::BadHeader`] for a missing section, [`Error::Corrupt`] for bad offsets or UTF-8.
    pub fn strings(&self, name: &str) -> Result<Vec<String>> {
        let (offsets, blob) = self.raw_strings(name)?;
        decode_strings(&self.path, name, &offsets, &blob)
    }

    /// The offsets and bytes of [`Artifact::strings`], not yet decoded.
    ///
    /// # Errors
    /// [`Error::BadHeader`] for a missing section.
    pub fn raw_strings(&self, name: &str) -> Result<(Vec<u64>, Vec<u8>)> {
        let offsets = self.u64s(&format!("{name}.offsets"))?;
        Ok((offsets, self.u8s(&format!("{name}.bytes"))?.to_vec()))
    }
}

/// An artifact read front to back, section by section, without holding the file: the
/// reader keeps what the caller asks for and hashes everything it passes, so sections are
/// read in file order ([`SectionStream::in_order`]; a caller reads a file ordered otherwise
/// with [`Artifact::read`]). The same checks as [`Artifact::read`], in the same order, but
/// the checksum is only known at the end: **nothing read is valid before
/// [`SectionStream::finish`] returns `Ok`**. A caller decodes nothing that can fail before
/// then, and passes an error met on the way through [`SectionStream::checksum_first`], so
/// that a damaged file is reported as a checksum mismatch, as [`Artifact::read`] reports it.
/// A pipe is read whole first (it has no length to check the sections against).
pub struct SectionStream {
    path: std::path::PathBuf,
    /// The format version read from the file.
    pub version: u32,
    /// The JSON header (including `sections`).
    pub header: serde_json::Value,
    sections: Vec<SectionEntry>,
    data_start: u64,
    len: u64,
    reader: StreamSource,
    /// Bytes read (and hashed) so far.
    pos: u64,
    crc: crc32fast::Hasher,
}

/// Where a [`SectionStream`] reads: a file, or a pipe's bytes, read whole by
/// [`SectionStream::open`] (a pipe cannot be opened a second time).
enum StreamSource {
    File(std::io::BufReader<std::fs::File>),
    Memory(std::io::Cursor<Vec<u8>>),
}

impl std::io::Read for StreamSource {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            StreamSource::File(r) => r.read(buf),
            StreamSource::Memory(r) => r.read(buf),
        }
    }
}

impl std::io::BufRead for StreamSource {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        match self {
            StreamSource::File(r) => r.fill_buf(),
            StreamSource::Memory(r) => r.fill_buf(),
        }
    }

    fn consume(&mut self, n: usize) {
        match self {
            StreamSource::File(r) => r.consume(n),
            StreamSource::Memory(r) => r.consume(n),
        }
    }
}

impl std::fmt::Debug for SectionStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SectionStream")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("pos", &self.pos)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl SectionStream {
    /// Opens `path` and checks its magic, version, header and section bounds.
    ///
    /// # Errors
    /// [`Error::Io`] if it cannot be read, then checks 1–4 of the module docs.
    pub fn open(path: &Path, expect: Expect) -> Result<Self> {
        use std::io::Read;
        let io = |e| Error::io(path, e);
        let file = std::fs::File::open(path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        // A pipe (`/dev/stdin`, `<(…)`) has no length to check sections against: it is read
        // whole first, as `Artifact::read` reads every file.
        let (len, mut reader) = if meta.is_file() {
            (
                meta.len(),
                StreamSource::File(std::io::BufReader::with_capacity(1 << 20, file)),
            )
        } else {
            let mut bytes = Vec::new();
            std::io::BufReader::new(file)
                .read_to_end(&mut bytes)
                .map_err(io)?;
            (
                bytes.len() as u64,
                StreamSource::Memory(std::io::Cursor::new(bytes)),
            )
        };
        // The preamble, then the header if the file is long enough to hold it (a header
        // length claiming more than the file is refused before anything is allocated).
        let mut prefix = Vec::new();
        (&mut reader)
            .take(16)
            .read_to_end(&mut prefix)
            .map_err(io)?;
        if prefix.len() == 16 && &prefix[..8] == expect.magic {
            let header_len = u64::from(u32::from_le_bytes(prefix[12..16].try_into().unwrap()));
            if 16 + header_len + 4 <= len {
                (&mut reader)
                    .take(header_len)
                    .read_to_end(&mut prefix)
                    .map_err(io)?;
            }
        }
        let layout = Layout::check(path, &prefix, len, expect)?;
        let mut crc = crc32fast::Hasher::new();
        crc.update(&prefix);
        Ok(SectionStream {
            path: path.to_owned(),
            version: layout.version,
            header: layout.header,
            sections: layout.sections,
            data_start: layout.data_start,
            len,
            reader,
            pos: prefix.len() as u64,
            crc,
        })
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Deserializes the header into `T`.
    ///
    /// # Errors
    /// [`Error::BadHeader`] naming the field that failed.
    pub fn header_as<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_value(self.header.clone()).map_err(|e| Error::BadHeader {
            path: self.path.clone(),
            message: e.to_string(),
        })
    }

    /// Reads exactly `buf.len()` bytes, hashing them.
    fn fill(&mut self, buf: &mut [u8]) -> Result<()> {
        use std::io::Read;
        self.reader
            .read_exact(buf)
            .map_err(|e| Error::io(&self.path, e))?;
        self.crc.update(buf);
        self.pos += buf.len() as u64;
        Ok(())
    }

    /// Reads and hashes the bytes up to file offset `to`, keeping none.
    fn skip_to(&mut self, to: u64) -> Result<()> {
        let mut buf = vec![0u8; 1 << 16];
        while self.pos < to {
            let n = (to - self.pos).min(buf.len() as u64) as usize;
            self.fill(&mut buf[..n])?;
        }
        Ok(())
    }

    /// Moves to the start of section `name` (checked to have `dtype`) and returns its entry.
    fn enter(&mut self, name: &str, dtype: Dtype) -> Result<SectionEntry> {
        let bad = |message: String| Error::BadHeader {
            path: self.path.clone(),
            message,
        };
        let entry = self
            .sections
            .iter()
            .find(|s| s.name == name)
            .cloned()
            .ok_or_else(|| bad(format!("missing section {name:?}")))?;
        if entry.dtype != dtype {
            return Err(bad(format!(
                "section {name:?} has dtype {:?}, expected {dtype:?}",
                entry.dtype
            )));
        }
        let start = self.data_start + entry.offset;
        if start < self.pos {
            return Err(bad(format!(
                "section {name:?} starts before a section read earlier: this reader reads \
                 sections in the order sprig writes them"
            )));
        }
        self.skip_to(start)?;
        Ok(entry)
    }

    /// The elements `keep` of section `name`, decoded by `decode` from `size`-byte chunks;
    /// the others are read and hashed, not kept. Every byte of the section also goes to
    /// `digest`, if given.
    fn elements<T>(
        &mut self,
        name: &str,
        dtype: Dtype,
        size: usize,
        keep: Option<std::ops::Range<u64>>,
        decode: fn(&[u8]) -> T,
        mut digest: Option<&mut xxhash_rust::xxh3::Xxh3>,
    ) -> Result<Vec<T>> {
        let entry = self.enter(name, dtype)?;
        let count = entry.len / size as u64;
        let keep = keep.unwrap_or(0..count);
        let keep = keep.start.min(count)..keep.end.min(count);
        let mut out = Vec::with_capacity((keep.end - keep.start) as usize);
        let chunk = (1 << 16) / size;
        let mut buf = vec![0u8; chunk * size];
        let mut at = 0u64;
        while at < count {
            let n = (count - at).min(chunk as u64) as usize;
            self.fill(&mut buf[..n * size])?;
            if let Some(d) = digest.as_deref_mut() {
                d.update(&buf[..n * size]);
            }
            let (lo, hi) = (keep.start.max(at), keep.end.min(at + n as u64));
            if lo < hi {
                let bytes = &buf[((lo - at) as usize) * size..((hi - at) as usize) * size];
                out.extend(bytes.chunks_exact(size).map(decode));
            }
            at += n as u64;
        }
        Ok(out)
    }

    /// The bytes of a `u8` section.
    ///
    /// # Errors
    /// [`Error::BadHeader`] if the section is missing, of another type, or before one read
    /// earlier; [`Error::Io`] if the file cannot be read.
    pub fn u8s(&mut self, name: &str) -> Result<Vec<u8>> {
        self.elements(name, Dtype::U8, 1, None, |b| b[0], None)
    }

    /// The values of a `u32` section; with `keep`, only those at these indices.
    ///
    /// # Errors
    /// As [`SectionStream::u8s`].
    pub fn u32s(&mut self, name: &str, keep: Option<std::ops::Range<u64>>) -> Result<Vec<u32>> {
        self.elements(name, Dtype::U32, 4, keep, le_u32, None)
    }

    /// [`SectionStream::u32s`], feeding the section's bytes (all of them) to `digest`.
    pub(crate) fn u32s_digested(
        &mut self,
        name: &str,
        keep: Option<std::ops::Range<u64>>,
        digest: &mut xxhash_rust::xxh3::Xxh3,
    ) -> Result<Vec<u32>> {
        self.elements(name, Dtype::U32, 4, keep, le_u32, Some(digest))
    }

    /// The values of a `u64` section.
    ///
    /// # Errors
    /// As [`SectionStream::u8s`].
    pub fn u64s(&mut self, name: &str) -> Result<Vec<u64>> {
        let le_u64 = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap());
        self.elements(name, Dtype::U64, 8, None, le_u64, None)
    }

    /// The values of an `f32` section; with `keep`, only those at these indices.
    ///
    /// # Errors
    /// As [`SectionStream::u8s`].
    pub fn f32s(&mut self, name: &str, keep: Option<std::ops::Range<u64>>) -> Result<Vec<f32>> {
        let le_f32 = |b: &[u8]| f32::from_le_bytes(b.try_into().unwrap());
        self.elements(name, Dtype::F32, 4, keep, le_f32, None)
    }

    /// The `f32` section `name` cut into the rows `bounds` gives (`bounds[v]..bounds[v + 1]`
    /// is row `v`; monotone, from 0 to the element count): `each(v, row)` sees every row
    /// in order, `digest` every byte, and the values of rows `keep` are returned.
    ///
    /// # Errors
    /// As [`SectionStream::u8s`], and [`Error::Corrupt`] naming `name` if `bounds` are not
    /// monotone from 0 to the element count.
    pub(crate) fn f32_rows(
        &mut self,
        name: &str,
        bounds: &[u64],
        keep: std::ops::Range<usize>,
        digest: &mut xxhash_rust::xxh3::Xxh3,
        mut each: impl FnMut(usize, &[f32]),
    ) -> Result<Vec<f32>> {
        let entry = self.enter(name, Dtype::F32)?;
        let count = entry.len / 4;
        let monotone = bounds.first() == Some(&0)
            && bounds.last() == Some(&count)
            && bounds.windows(2).all(|w| w[0] <= w[1]);
        if !monotone {
            return Err(Error::Corrupt {
                path: self.path.clone(),
                what: name.to_owned(),
                message: format!("row bounds do not run from 0 to its {count} values"),
            });
        }
        let rows = bounds.len() - 1;
        let keep = keep.start.min(rows)..keep.end.min(rows);
        let mut out = Vec::with_capacity((bounds[keep.end] - bounds[keep.start]) as usize);
        let (mut bytes, mut row) = (Vec::new(), Vec::new());
        for v in 0..rows {
            let n = (bounds[v + 1] - bounds[v]) as usize;
            bytes.resize(4 * n, 0);
            self.fill(&mut bytes)?;
            digest.update(&bytes);
            row.clear();
            row.extend(
                bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes(b.try_into().unwrap())),
            );
            each(v, &row);
            if keep.contains(&v) {
                out.extend_from_slice(&row);
            }
        }
        Ok(out)
    }

    /// The strings written by [`ArtifactWriter::add_strings`], as their offsets and bytes:
    /// [`decode_strings`] them after [`SectionStream::finish`].
    ///
    /// # Errors
    /// As [`SectionStream::u8s`].
    pub fn raw_strings(&mut self, name: &str) -> Result<(Vec<u64>, Vec<u8>)> {
        let offsets = self.u64s(&format!("{name}.offsets"))?;
        let blob = self.u8s(&format!("{name}.bytes"))?;
        Ok((offsets, blob))
    }

    /// The error to report for `error`, met while reading sections: a checksum mismatch if
    /// the file is damaged (the section table that led to `error` is not to be trusted
    /// then, and the whole-file reader reports the mismatch too), else `error` itself.
    pub fn checksum_first(self, error: Error) -> Error {
        match (&error, self.finish()) {
            (Error::Io { .. }, _) | (_, Ok(())) => error,
            (_, Err(mismatch)) => mismatch,
        }
    }

    /// The element count of section `name` by its table entry, if it has one.
    pub fn element_count(&self, name: &str) -> Option<u64> {
        let entry = self.sections.iter().find(|s| s.name == name)?;
        Some(entry.shape.iter().product())
    }

    /// Whether sections `names` lie in the file in this order: what reading them one
    /// after the other needs (sprig writes them so; a file may order them otherwise).
    pub fn in_order(&self, names: &[&str]) -> bool {
        let offsets: Option<Vec<u64>> = names
            .iter()
            .map(|n| Some(self.sections.iter().find(|s| s.name == *n)?.offset))
            .collect();
        offsets.is_some_and(|o| o.windows(2).all(|w| w[0] <= w[1]))
    }

    /// The whole file as an [`Artifact`], for a reader that cannot stream it (sections in
    /// another writer's order): read again from its path, or, for a pipe, which cannot be
    /// read twice, parsed from the bytes [`SectionStream::open`] read (every byte, whatever
    /// this stream has consumed of them).
    ///
    /// # Errors
    /// As [`Artifact::read`].
    pub fn into_artifact(self, expect: Expect) -> Result<Artifact> {
        match self.reader {
            StreamSource::File(_) => Artifact::read(&self.path, expect),
            StreamSource::Memory(bytes) => Artifact::parse(&self.path, bytes.into_inner(), expect),
        }
    }

    /// Reads the rest of the file and checks the checksum (check 5 of the module docs).
    ///
    /// # Errors
    /// [`Error::Io`], or [`Error::ChecksumMismatch`].
    pub fn finish(mut self) -> Result<()> {
        self.skip_to(self.len - 4)?;
        let computed = self.crc.clone().finalize();
        let mut stored = [0u8; 4];
        self.fill(&mut stored)?;
        let stored = u32::from_le_bytes(stored);
        if stored != computed {
            return Err(Error::ChecksumMismatch {
                path: self.path.clone(),
                expected: stored,
                computed,
            });
        }
        Ok(())
    }
}

/// A little-endian `u32` from its 4 bytes.
fn le_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes(b.try_into().unwrap())
}

/// The strings of a section pair written by [`ArtifactWriter::add_strings`], from their
/// offsets and bytes, checked for monotone offsets inside the blob and valid UTF-8.
///
/// # Errors
/// [`Error::Corrupt`] naming `path` and `name`, for bad offsets or UTF-8.
pub fn decode_strings(
    path: &Path,
    name: &str,
    offsets: &[u64],
    blob: &[u8],
) -> Result<Vec<String>> {
    let corrupt = |message: String| Error::Corrupt {
        path: path.to_owned(),
        what: name.to_owned(),
        message,
    };
    if offsets.first() != Some(&0) {
        return Err(corrupt("offsets must start at 0".into()));
    }
    let mut out = Vec::with_capacity(offsets.len().saturating_sub(1));
    for w in offsets.windows(2) {
        if w[1] < w[0] || w[1] > blob.len() as u64 {
            return Err(corrupt(format!(
                "offset {} out of order or past the blob",
                w[1]
            )));
        }
        let s = std::str::from_utf8(&blob[w[0] as usize..w[1] as usize])
            .map_err(|e| corrupt(format!("invalid UTF-8: {e}")))?;
        out.push(s.to_owned());
    }
    Ok(out)
}

/// `value` as a JSON tree for a header, through its JSON text: `serde_json::to_value` widens
/// an `f32` to the nearest `f64` (`0.998` becomes `0.9980000257492064`), while the text
/// form prints the shortest decimal that reads back as the same `f32`.
///
/// # Panics
/// If `value` does not serialize to JSON (a bug: headers hold plain configs and counts).
pub fn header_value<T: Serialize + ?Sized>(value: &T) -> serde_json::Value {
    let text = serde_json::to_string(value).expect("header values serialize");
    serde_json::from_str(&text).expect("serde_json reads what it writes")
}

/// Writes `path` atomically: `fill` writes into a temporary file in the same folder, which is
/// flushed, fsynced and renamed over `path` only if `fill` succeeds. On any error the
/// temporary file is removed and `path` is untouched.
///
/// A symbolic link is followed: its target is replaced and the link kept. Standard output
/// ([`is_stdout`]: `-`, `/dev/stdout`, or the file or pipe it is redirected to) is written
/// through its descriptor. Another path that is neither a regular file nor missing (a
/// device such as `/dev/null`, a FIFO, a socket) is written directly, as it comes, since a
/// rename would replace the special file itself (as root, even `/dev/null`) and it holds no
/// earlier content to protect.
///
/// # Errors
/// [`Error::Io`] naming `path` (a directory among them), or whatever `fill` returns.
pub fn write_atomic<F>(path: &Path, fill: F) -> Result<()>
where
    F: FnOnce(&mut dyn Write) -> Result<()>,
{
    // Written as they come, no temporary: standard output through the descriptor the
    // process already has (reopening `/dev/stdout` would write at offset 0, losing an `>>`
    // file's content, and renaming would replace the redirected file, with what the shell
    // writes around this command); a device or FIFO by its own name.
    let in_place = |out: &mut dyn Write, fill: F| -> Result<()> {
        let mut writer = std::io::BufWriter::new(out);
        fill(&mut writer)?;
        writer.flush().map_err(|e| Error::io(path, e))
    };
    if is_stdout(path) {
        return in_place(&mut std::io::stdout().lock(), fill);
    }
    // The permissions of the file being replaced, if any: kept, so that replacing a private
    // file (0600) does not make it readable by everyone.
    let mut existing = None;
    let resolved = match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => {
            return Err(Error::io(
                path,
                std::io::Error::new(std::io::ErrorKind::IsADirectory, "is a directory"),
            ))
        }
        Ok(meta) if !meta.is_file() => {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(|e| Error::io(path, e))?;
            return in_place(&mut file, fill);
        }
        Ok(meta) => {
            existing = Some(meta.permissions());
            std::fs::canonicalize(path).map_err(|e| Error::io(path, e))?
        }
        // Missing, or a dangling link: the file to create is the link's target.
        Err(_) => resolve_links(path)?,
    };
    let path = resolved.as_path();
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = format!(".{file_name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    // tempfile creates files private (0600); the artifact this one becomes is an ordinary
    // shareable file, so a new one gets the usual 0644 (less the umask) from the start, and
    // one that replaces a file gets that file's permissions, which its owner chose.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o644));
    }
    // Listed while it exists, for `remove_live_temporaries` on an interrupt; on any return
    // below, `tmp` is renamed or dropped (which deletes it) before the guard unlists it. The
    // list is locked while the file is created, so that an interrupt cannot fall between its
    // creation and its listing (a CI run saw SIGTERM leave a temporary there): the handler
    // waits for the lock and then finds it.
    let (tmp, _listed) = {
        let mut live = live_temporaries();
        let tmp = builder.tempfile_in(dir).map_err(|e| Error::io(path, e))?;
        live.push(tmp.path().to_path_buf());
        let listed = LiveTemporary(tmp.path().to_path_buf());
        (tmp, listed)
    };
    let mut writer = std::io::BufWriter::new(tmp);
    fill(&mut writer)?;
    let tmp = writer
        .into_inner()
        .map_err(|e| Error::io(path, e.into_error()))?;
    // Set on the open file, not at creation: the mode given to open() is cut by the umask,
    // which must not narrow the permissions the replaced file had either.
    if let Some(permissions) = existing {
        tmp.as_file()
            .set_permissions(permissions)
            .map_err(|e| Error::io(path, e))?;
    }
    tmp.as_file().sync_all().map_err(|e| Error::io(path, e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

/// Temporary files of [`write_atomic`] that exist right now.
static LIVE_TEMPORARIES: std::sync::Mutex<Vec<std::path::PathBuf>> =
    std::sync::Mutex::new(Vec::new());

/// A temporary file's place in [`LIVE_TEMPORARIES`], for as long as the guard lives.
struct LiveTemporary(std::path::PathBuf);

impl Drop for LiveTemporary {
    fn drop(&mut self) {
        let mut live = live_temporaries();
        if let Some(i) = live.iter().position(|p| *p == self.0) {
            live.swap_remove(i);
        }
    }
}

fn live_temporaries() -> std::sync::MutexGuard<'static, Vec<std::path::PathBuf>> {
    // A panic while the list was held leaves it valid: take it back.
    LIVE_TEMPORARIES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Deletes the temporary files that [`write_atomic`] calls in progress have open, and keeps
/// the list locked so that no new one starts: for a signal handler that then ends the
/// process (a killed process cannot run destructors, so without it an interrupt during a
/// write leaves a hidden `.NAME.*.tmp` behind). Returns how many were removed.
///
/// Call it only on the way out of the process: from then on every [`write_atomic`] (and so
/// every `save`) of the process blocks forever, by design, so that none can start a new
/// temporary the handler would miss.
pub fn remove_live_temporaries() -> usize {
    let live = live_temporaries();
    let removed = live
        .iter()
        .filter(|p| std::fs::remove_file(p).is_ok())
        .count();
    // Held until the process exits: a write that would start now waits instead.
    std::mem::forget(live);
    removed
}

/// Whether `path` is this process's standard output: `-` (as inputs take `-` for standard
/// input), `/dev/stdout`, or the file, pipe or device it is redirected to (the same device
/// and inode).
pub fn is_stdout(path: &Path) -> bool {
    if path.as_os_str() == "-" {
        return true;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(a), Ok(b)) = (std::fs::metadata(path), std::fs::metadata("/dev/stdout")) {
            return a.dev() == b.dev() && a.ino() == b.ino();
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    false
}

/// `path` with its symbolic links followed to the final target, which need not exist yet (a
/// dangling link names the file to create). Paths that are not links come back unchanged.
fn resolve_links(path: &Path) -> Result<std::path::PathBuf> {
    let mut path = path.to_path_buf();
    // A bound, as the kernel has one (40 on Linux), so a loop of links ends in an error.
    for _ in 0..40 {
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = std::fs::read_link(&path).map_err(|e| Error::io(&path, e))?;
                path = match path.parent() {
                    Some(dir) => dir.join(target),
                    None => target,
                };
            }
            _ => return Ok(path),
        }
    }
    Err(Error::io(
        &path,
        std::io::Error::other("too many levels of symbolic links"),
    ))
}

/// Writes a whole byte buffer atomically (see [`write_atomic`]).
///
/// # Errors
/// [`Error::Io`] naming `path`.
pub fn write_bytes_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic(path, |w| w.write_all(bytes).map_err(|e| Error::io(path, e)))
}

/// Writes the CRC32 of everything before an artifact's last four bytes into them: a test
/// that edits an artifact's bytes re-seals it, so that the loader's own checks, not the
/// checksum, must catch the edit.
#[cfg(test)]
pub(crate) fn reseal(bytes: &mut [u8]) {
    let n = bytes.len();
    let crc = crc32fast::hash(&bytes[..n - 4]);
    bytes[n - 4..].copy_from_slice(&crc.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPECT: Expect = Expect {
        kind: "test",
        magic: b"SPRIGTST",
        oldest: 1,
        newest: 2,
    };

    fn sample() -> Vec<u8> {
        let mut w = ArtifactWriter::new();
        w.add_u32("ids", &[3], &[1, 2, 3]);
        w.add_f32("weights", &[2], &[0.5, 1.0]);
        w.add_strings("keys", &["a", "ßb", ""]);
        w.finish(b"SPRIGTST", 2, serde_json::json!({"kind": "test"}))
    }

    fn parse(bytes: Vec<u8>) -> Result<Artifact> {
        Artifact::parse(Path::new("x.bin"), bytes, EXPECT)
    }

    #[test]
    fn round_trips_sections() {
        let a = parse(sample()).unwrap();
        assert_eq!(a.version, 2);
        assert_eq!(a.u32s("ids").unwrap(), vec![1, 2, 3]);
        assert_eq!(a.f32s("weights").unwrap(), vec![0.5, 1.0]);
        assert_eq!(a.strings("keys").unwrap(), vec!["a", "ßb", ""]);
        assert!(matches!(a.f32s("ids"), Err(Error::BadHeader { .. })));
    }

    #[test]
    fn four_bit_sections_round_trip_packed() {
        let values: Vec<i8> = vec![-8, 7, -1, 0, 1, 3, -5];
        let mut w = ArtifactWriter::new();
        w.add_i4("q", &[7], &values);
        w.add_i4("empty", &[0], &[]);
        let bytes = w.finish(b"SPRIGTST", 1, serde_json::json!({"kind": "test"}));
        let a = parse(bytes.clone()).unwrap();
        assert_eq!(a.sections()[0].len, 4, "seven nibbles take four bytes");
        assert_eq!(a.i4s("q").unwrap(), values);
        assert!(a.i4s("empty").unwrap().is_empty());
        assert!(matches!(a.i8s("q"), Err(Error::BadHeader { .. })));
        // Low nibble first: -8 = 0x8, 7 = 0x7 → 0x78.
        let start = a.data_start + a.sections()[0].offset as usize;
        assert_eq!(bytes[start], 0x78);
        // A set padding nibble is refused (with the CRC patched, so that the check is the
        // nibble's and not the checksum's).
        let mut dirty = bytes;
        dirty[start + 3] |= 0xf0;
        reseal(&mut dirty);
        let err = parse(dirty).unwrap().i4s("q").unwrap_err();
        assert!(err.to_string().contains("nibble"), "{err}");
    }

    #[test]
    #[should_panic(expected = "outside -8..=7")]
    fn four_bit_sections_refuse_wide_values() {
        ArtifactWriter::new().add_i4("q", &[1], &[8]);
    }

    #[test]
    fn sections_are_aligned() {
        let a = parse(sample()).unwrap();
        assert!(a.data_start.is_multiple_of(8));
        assert!(a.sections().iter().all(|s| s.offset % 8 == 0));
    }

    #[test]
    fn each_damage_has_its_own_error() {
        let good = sample();
        let mut magic = good.clone();
        magic[0] = b'X';
        assert!(matches!(parse(magic), Err(Error::BadMagic { .. })));

        let mut future = good.clone();
        future[8..12].copy_from_slice(&3u32.to_le_bytes());
        assert!(matches!(
            parse(future),
            Err(Error::UnsupportedVersion { found: 3, .. })
        ));

        let truncated = good[..good.len() - 9].to_vec();
        assert!(matches!(parse(truncated), Err(Error::Truncated { .. })));

        let mut flipped = good.clone();
        let n = flipped.len();
        flipped[n - 6] ^= 0x40;
        assert!(matches!(
            parse(flipped),
            Err(Error::ChecksumMismatch { .. })
        ));

        let mut header = good.clone();
        header[16] = b'[';
        assert!(matches!(parse(header), Err(Error::BadHeader { .. })));

        assert!(matches!(parse(Vec::new()), Err(Error::Truncated { .. })));
        assert!(matches!(
            parse(good[..5].to_vec()),
            Err(Error::Truncated { .. })
        ));
        assert!(matches!(
            parse(b"SPRIGX".to_vec()),
            Err(Error::BadMagic { .. })
        ));
    }

    /// A crafted table whose second section points into the first (same length, CRC
    /// re-sealed) would read one section's bytes as another's.
    #[test]
    fn overlapping_sections_are_refused() {
        let mut w = ArtifactWriter::new();
        w.add_f32("scale", &[2], &[0.5, 1.0]);
        w.add_f32("bias", &[2], &[2.0, 3.0]);
        let bytes = w.finish(b"SPRIGTST", 1, serde_json::json!({"kind": "test"}));
        let needle = b"\"offset\":8";
        let at = bytes
            .windows(needle.len())
            .position(|w| w == needle)
            .unwrap();
        let mut sealed = bytes.clone();
        sealed[at + needle.len() - 1] = b'0';
        reseal(&mut sealed);
        let err = parse(sealed).unwrap_err().to_string();
        assert!(
            err.contains("\"scale\" and \"bias\" overlap")
                || err.contains("\"bias\" and \"scale\" overlap"),
            "{err}"
        );
    }

    #[test]
    fn absurd_sizes_are_refused_before_allocation() {
        let mut w = ArtifactWriter::new();
        w.add_u32("ids", &[1], &[7]);
        let header = serde_json::json!({"kind": "test"});
        let bytes = w.finish(b"SPRIGTST", 1, header);
        // Rewrite the section table to claim 10^12 elements.
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let patched = text.replace("\"shape\":[1]", "\"shape\":[1000000000000]");
        let patched = patched.replace("\"len\":4", "\"len\":4000000000000");
        let patched = patched.into_bytes();
        assert!(patched.len() > bytes.len());
        let hl = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
        let grow = patched.len() - bytes.len();
        let mut fixed = patched;
        fixed[12..16].copy_from_slice(&((hl + grow) as u32).to_le_bytes());
        assert!(matches!(
            parse(fixed),
            Err(Error::Truncated { .. }) | Err(Error::BadHeader { .. })
        ));
    }

    #[test]
    fn atomic_write_leaves_nothing_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.bin");
        let err = write_atomic(&path, |w| {
            w.write_all(b"partial").unwrap();
            Err(Error::NoSeeds)
        });
        assert!(err.is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        write_bytes_atomic(&path, b"whole").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"whole");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn replacing_a_file_keeps_its_permissions() {
        use std::os::unix::fs::{symlink, PermissionsExt};
        let dir = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        let set = |p: &Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
        };
        // A private file stays private; a wider one stays wider than the default 0644.
        for m in [0o600, 0o640, 0o664] {
            let path = dir.path().join(format!("out-{m:o}.jsonl"));
            std::fs::write(&path, b"old").unwrap();
            set(&path, m);
            write_bytes_atomic(&path, b"new").unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), b"new");
            assert_eq!(mode(&path), m, "{}", path.display());
        }
        // Through a link: the target's permissions.
        let target = dir.path().join("target.bin");
        std::fs::write(&target, b"old").unwrap();
        set(&target, 0o600);
        symlink(&target, dir.path().join("link.bin")).unwrap();
        write_bytes_atomic(&dir.path().join("link.bin"), b"new").unwrap();
        assert_eq!(mode(&target), 0o600);
        // A new file is an ordinary shareable one (0644 at most: the umask may narrow it).
        let fresh = dir.path().join("fresh.bin");
        write_bytes_atomic(&fresh, b"x").unwrap();
        assert_eq!(mode(&fresh) & !0o644, 0, "{:o}", mode(&fresh));
        assert_ne!(mode(&fresh) & 0o600, 0);
    }

    #[cfg(unix)]
    #[test]
    fn links_are_followed_and_special_files_written_in_place() {
        use std::os::unix::fs::{symlink, FileTypeExt};
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("real")).unwrap();
        // A link to a file: the target gets the bytes, the link stays a link.
        std::fs::write(d.join("real/a.bin"), b"old").unwrap();
        symlink("real/a.bin", d.join("a.bin")).unwrap();
        write_bytes_atomic(&d.join("a.bin"), b"new").unwrap();
        assert!(d.join("a.bin").symlink_metadata().unwrap().is_symlink());
        assert_eq!(std::fs::read(d.join("real/a.bin")).unwrap(), b"new");
        // A dangling link: its target is created.
        symlink("real/b.bin", d.join("b.bin")).unwrap();
        write_bytes_atomic(&d.join("b.bin"), b"b").unwrap();
        assert!(d.join("b.bin").symlink_metadata().unwrap().is_symlink());
        assert_eq!(std::fs::read(d.join("real/b.bin")).unwrap(), b"b");
        // A loop of links is an error, not a hang.
        symlink("c.bin", d.join("c.bin")).unwrap();
        assert!(write_bytes_atomic(&d.join("c.bin"), b"c").is_err());
        // A directory is refused and kept.
        let err = write_bytes_atomic(&d.join("real"), b"x").unwrap_err();
        assert!(err.to_string().contains("is a directory"), "{err}");
        assert!(d.join("real").is_dir());
        // A device is written, not replaced (as root, a rename would replace /dev/null).
        write_bytes_atomic(Path::new("/dev/null"), b"gone").unwrap();
        assert!(std::fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device());
        // A FIFO: its reader gets the bytes, and it stays a FIFO.
        let fifo = d.join("f.bin");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.unwrap().success(), "mkfifo");
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read(fifo).unwrap())
        };
        write_bytes_atomic(&fifo, b"through").unwrap();
        assert_eq!(reader.join().unwrap(), b"through");
        assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
        // Only what was asked for is left: no temporary file anywhere.
        let mut names: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .chain(std::fs::read_dir(d.join("real")).unwrap())
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["a.bin", "a.bin", "b.bin", "b.bin", "c.bin", "f.bin", "real"]
        );
    }

    /// A file that stops right after one part of the preamble is cut short in the next
    /// part, and says how long that part needs the file to be: the magic alone is not a
    /// file of another kind, and a header length is checked against the file.
    #[test]
    fn a_file_cut_between_parts_names_the_part_it_lacks() {
        let good = sample();
        let header_len = u64::from(u32::from_le_bytes(good[12..16].try_into().unwrap()));
        let cut = |n: usize| match parse(good[..n].to_vec()) {
            Err(Error::Truncated {
                what, needed, len, ..
            }) => (what, needed, len),
            other => panic!("{n} bytes: {other:?}"),
        };
        assert_eq!(cut(7), ("the magic".into(), 8, 7));
        assert_eq!(cut(8), ("the fixed preamble".into(), 16, 8));
        assert_eq!(cut(15), ("the fixed preamble".into(), 16, 15));
        let header_end = 16 + header_len as usize;
        for n in [16, header_end, header_end + 3] {
            assert_eq!(cut(n), ("the header".into(), 16 + header_len + 4, n as u64));
        }
    }

    /// The smallest files: no section, the checksum right after the header's padding (or
    /// right after the header, when it ends on the 8-byte boundary).
    #[test]
    fn a_file_without_sections_is_its_header_and_checksum() {
        for pad in 0..8 {
            let header = serde_json::json!({"kind": "test", "pad": "x".repeat(pad)});
            let bytes = ArtifactWriter::new().finish(b"SPRIGTST", 1, header);
            let header_len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
            assert_eq!(bytes.len(), (16 + header_len).next_multiple_of(8) + 4);
            let a = parse(bytes).unwrap();
            assert!(a.sections().is_empty(), "{pad}");
        }
    }

    /// The streaming reader reads a section in 64 KiB chunks: one longer than that (and a
    /// kept range across two chunk boundaries) comes back whole and in order, and the file
    /// still ends where its checksum says.
    #[test]
    fn streamed_sections_longer_than_a_chunk_read_back() {
        let values: Vec<u32> = (0..40_000u32)
            .map(|i| i.wrapping_mul(2_654_435_761))
            .collect();
        let mut w = ArtifactWriter::new();
        w.add_u32("big", &[values.len() as u64], &values);
        w.add_u32("after", &[1], &[7]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.bin");
        std::fs::write(&path, w.finish(b"SPRIGTST", 1, serde_json::json!({}))).unwrap();
        let mut s = SectionStream::open(&path, EXPECT).unwrap();
        assert_eq!(s.u32s("big", None).unwrap(), values);
        assert_eq!(s.u32s("after", None).unwrap(), [7]);
        s.finish().unwrap();
        let mut s = SectionStream::open(&path, EXPECT).unwrap();
        let mut digest = xxhash_rust::xxh3::Xxh3::new();
        let kept = s.u32s_digested("big", Some(10_000..35_000), &mut digest);
        assert_eq!(kept.unwrap(), values[10_000..35_000]);
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(digest.digest(), xxhash_rust::xxh3::xxh3_64(&bytes));
        assert_eq!(s.u32s("after", None).unwrap(), [7]);
        s.finish().unwrap();
    }

    #[test]
    fn string_offsets_out_of_order_or_past_the_blob_are_corrupt() {
        let path = Path::new("x.bin");
        let strings = decode_strings(path, "keys", &[0, 1, 3], b"abc").unwrap();
        assert_eq!(strings, ["a", "bc"]);
        for offsets in [&[0, 3, 1][..], &[0, 4], &[1, 3]] {
            let e = decode_strings(path, "keys", offsets, b"abc").unwrap_err();
            assert!(matches!(e, Error::Corrupt { .. }), "{offsets:?}: {e}");
        }
    }

    /// A replaced file is written beside it under a temporary name and renamed over it: a
    /// shorter content leaves nothing of the old one behind, and a failed write leaves the
    /// old one whole.
    #[test]
    fn a_replaced_file_is_written_beside_it_then_renamed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.bin");
        std::fs::write(&path, b"the old, longer content").unwrap();
        write_atomic(&path, |w| {
            let names: Vec<String> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            assert!(
                names
                    .iter()
                    .any(|n| n.starts_with(".out.bin.") && n.ends_with(".tmp")),
                "{names:?}"
            );
            w.write_all(b"new").map_err(|e| Error::io(&path, e))
        })
        .unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        let err = write_atomic(&path, |w| {
            w.write_all(b"partial").unwrap();
            Err(Error::NoSeeds)
        });
        assert!(err.is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
