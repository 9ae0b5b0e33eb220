//! The one text path: normalization, pre-tokenization and hashed n-gram features.
//!
//! Graph building, training and prediction all call this module, so a text is turned into
//! numbers in exactly one way, and the artifacts record the [`TextConfig`] and
//! [`FeatureConfig`] that made them.
//!
//! 1. **Normalize** with the `tokenizers` crate (no vocabulary, nothing downloaded): NFKC,
//!    then BERT's cleaning, CJK spacing, optional accent stripping and lowercasing, then
//!    [`TextConfig::fold_variants`]. As in BERT:
//!    - cleaning removes control and format characters and private-use ones (Unicode Cc,
//!      Cf, Co: so a zero-width joiner or space goes, `👨‍💻` becomes `👨 💻`, and the
//!      words around a zero-width space join) and makes other white space a plain space;
//!    - "CJK" spacing puts spaces around Han ideographs only: kana, Hangul and Thai runs
//!      stay whole tokens between spaces or punctuation (their character n-grams still see
//!      inside them);
//!    - accent stripping (`strip_accents`, off by default) decomposes the text and removes
//!      every combining mark (Mn): right for Latin, Greek and Cyrillic accents, harmful for
//!      scripts whose vowel signs or voicing marks are Mn (Devanagari, Thai, Japanese
//!      dakuten) and for symbols such as `≠`, and it leaves Hangul decomposed into jamo;
//!    - lowercasing goes character by character (hence the Greek and Turkish folds).
//! 2. **Pre-tokenize**: split on white space, then isolate every punctuation character
//!    (BERT's rule) and every symbol character (Unicode `S*`: emoji, currency, math) as a
//!    token of its own. Punctuation is kept on purpose: a final `?` nearly decides a dialog
//!    act, and an emoji nearly decides a reply intent.
//! 3. **Features**, each family switchable in [`FeatureConfig`]:
//!    word unigrams (`u`), word bigrams (`b`), skip-bigrams `w_i _ w_{i+2}` (`s`) and
//!    character n-grams of boundary-marked words `<word>` (`c`). A feature is the family tag,
//!    then its tokens, joined by the unit separator U+001F, and its id is
//!    [`crate::hash::feature_hash`] (XXH3-64, fixed seed) of those UTF-8 bytes.
//!
//! Features come in two *blocks*, word (`u`, `b`, `s`) and char (`c`); [`crate::features`]
//! normalizes each block separately so that the many character n-grams of a text do not
//! drown its few word n-grams.

use serde::{Deserialize, Serialize};
use tokenizers::normalizers::{BertNormalizer, NFKC};
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::{
    NormalizedString, Normalizer, OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer,
    SplitDelimiterBehavior,
};

use crate::error::{Error, Result};
use crate::hash::{feature_hash, feature_hash_packed};

/// How raw text is normalized and split into tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TextConfig {
    /// Lowercase after NFKC (default true: short chat text is cased inconsistently).
    pub lowercase: bool,
    /// Remove combining accents (`café` → `cafe`): BERT's rule, every combining mark goes
    /// (see the module docs for the scripts it harms). Default false: accents can carry
    /// meaning, and character n-grams already make `café` and `cafe` similar.
    pub strip_accents: bool,
    /// Keep tokens with no letter or digit (punctuation, emoji). Default true: they carry
    /// signal. False matches scikit-learn's default token pattern `\b\w+\b`, which the
    /// peers' benchmarks use.
    pub keep_punctuation: bool,
    /// Fold variants the other steps leave apart (default true for new configs; a header
    /// without the field, written before it existed, reads false so that its model predicts
    /// as before):
    /// - emoji variation selectors (U+FE00–FE0F, U+E0100–E01EF) and skin-tone modifiers
    ///   (U+1F3FB–1F3FF) are dropped: they are combining marks or symbols of their own,
    ///   so `❤️` became `❤` plus an invisible token that every emoji with a selector shared
    ///   (`☀️` and `✔️` were similar, `☀️` and `☀` not quite);
    /// - with `lowercase`, Greek final sigma `ς` becomes `σ` (lowercasing goes character by
    ///   character, so `ΟΔΟΣ` gave `οδοσ` and never met `οδος`) and Turkish `İ` becomes `i`
    ///   (it gave `i` plus a combining dot above).
    ///
    /// Deserializing a config without the field gives false, whatever
    /// [`TextConfig::default`] says: that is how old headers keep their behaviour, so a
    /// config written by hand as JSON should name the field.
    #[serde(default, skip_serializing_if = "is_false")]
    pub fold_variants: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Default for TextConfig {
    fn default() -> Self {
        Self {
            lowercase: true,
            strip_accents: false,
            keep_punctuation: true,
            fold_variants: true,
        }
    }
}

/// Which hashed n-gram families a text yields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeatureConfig {
    /// Word unigrams (family `u`). Default on.
    pub unigrams: bool,
    /// Word bigrams (family `b`). Default on.
    pub bigrams: bool,
    /// Skip-bigrams `w_i _ w_{i+2}` (family `s`), as in Smart Reply's skip-gram features.
    /// Default off: on the intent benchmarks they added little over bigrams.
    pub skip_bigrams: bool,
    /// Smallest character n-gram of `<word>` (family `c`); `0` turns the family off.
    /// Default 3, as in fastText's subwords.
    pub char_min: u32,
    /// Largest character n-gram. Default 4: against 5, 3–4-grams gave higher propagation
    /// accuracy on both intent sets, no consistent change on SwDA, fewer features (measured
    /// 2026-11-28 with `benches/quality.py`, 10 seeds per label, default kNN graph and
    /// propagation; accuracy char_max 5 → 4 on the dev texts, the unlabelled train texts
    /// of the same runs, and test: SNIPS 93.4 → 93.9, 91.9 → 92.6, 91.3 → 91.6; HWU64
    /// 70.0 → 71.0, 69.1 → 69.8, 69.0 → 70.1; SwDA (75k train lines) 9.8 → 9.2,
    /// 7.3 → 7.4, 9.0 → 9.6; see benches/README.md).
    pub char_max: u32,
    /// Weight of the char block relative to the word block after each is L2-normalized
    /// (default 1: equal say). Only used by TF-IDF weighting.
    pub char_weight: f32,
    /// Sublinear term frequency `1 + ln(tf)` instead of raw counts (default true).
    pub sublinear_tf: bool,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        Self {
            unigrams: true,
            bigrams: true,
            skip_bigrams: false,
            char_min: 3,
            char_max: 4,
            char_weight: 1.0,
            sublinear_tf: true,
        }
    }
}

impl FeatureConfig {
    /// The peers' "word12" setting: word unigrams and bigrams only, sublinear TF-IDF.
    pub fn word12() -> Self {
        Self {
            char_min: 0,
            char_max: 0,
            ..Self::default()
        }
    }

    /// Checks the ranges.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the field.
    pub fn validate(&self) -> Result<()> {
        if self.char_min > 0 && self.char_max < self.char_min {
            return Err(Error::config(
                "char_max",
                format!(
                    "{} is below the smallest char n-gram length, {}",
                    self.char_max, self.char_min
                ),
            ));
        }
        if self.char_max > 16 {
            return Err(Error::config("char_max", "at most 16"));
        }
        if !(self.char_weight.is_finite() && self.char_weight >= 0.0) {
            return Err(Error::config("char_weight", "must be finite and >= 0"));
        }
        if !(self.unigrams || self.bigrams || self.skip_bigrams || self.char_min > 0) {
            return Err(Error::config("features", "every feature family is off"));
        }
        Ok(())
    }

    /// Whether the char family is on.
    pub fn chars_on(&self) -> bool {
        self.char_min > 0
    }
}

/// Which block a feature belongs to (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Block {
    /// Word n-grams and skip-bigrams.
    Word = 0,
    /// Character n-grams.
    Char = 1,
}

/// A hashed feature occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Feature {
    /// [`crate::hash::feature_hash`] of the feature's bytes.
    pub hash: u64,
    /// Its block.
    pub block: Block,
}

const SEP: char = '\u{1f}';

/// The tokens of one text, stored in one reusable buffer (no `String` per token).
///
/// Filled by [`TextPipeline::tokenize_into`]; read by [`TextPipeline::for_each_feature_of`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tokens {
    /// The tokens, concatenated.
    text: String,
    /// The end offset in `text` of each token (its start is the previous end).
    ends: Vec<usize>,
}

impl Tokens {
    /// Removes every token, keeping the buffers.
    pub fn clear(&mut self) {
        self.text.clear();
        self.ends.clear();
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there is no token.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Token `i`.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }

    /// The tokens in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// Appends a token.
    pub fn push(&mut self, token: &str) {
        self.text.push_str(token);
        self.ends.push(self.text.len());
    }

    /// The tokens as owned strings (the form [`TextPipeline::tokenize`] returns).
    pub fn to_vec(&self) -> Vec<String> {
        self.iter().map(str::to_owned).collect()
    }
}

/// Read access to a token sequence, so that one feature extractor serves both `[String]`
/// and [`Tokens`].
trait TokenSeq {
    fn count(&self) -> usize;
    fn token(&self, i: usize) -> &str;
}

impl TokenSeq for [String] {
    fn count(&self) -> usize {
        self.len()
    }
    fn token(&self, i: usize) -> &str {
        &self[i]
    }
}

impl TokenSeq for Tokens {
    fn count(&self) -> usize {
        self.len()
    }
    fn token(&self, i: usize) -> &str {
        self.get(i)
    }
}

/// The normalizer, pre-tokenizer and feature extractor for one configuration.
#[derive(Clone)]
pub struct TextPipeline {
    config: TextConfig,
    features: FeatureConfig,
    normalizer: (NFKC, BertNormalizer),
    /// Splits off punctuation; symbols are split off by [`is_symbol`].
    splitter: BertPreTokenizer,
}

impl std::fmt::Debug for TextPipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextPipeline")
            .field("config", &self.config)
            .field("features", &self.features)
            .finish()
    }
}

impl TextPipeline {
    /// Builds the pipeline.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if the feature config is out of range.
    pub fn new(config: &TextConfig, features: &FeatureConfig) -> Result<Self> {
        features.validate()?;
        let bert = BertNormalizer::new(true, true, Some(config.strip_accents), config.lowercase);
        Ok(Self {
            config: config.clone(),
            features: features.clone(),
            normalizer: (NFKC, bert),
            splitter: BertPreTokenizer,
        })
    }

    /// The text config.
    pub fn text_config(&self) -> &TextConfig {
        &self.config
    }

    /// The feature config.
    pub fn feature_config(&self) -> &FeatureConfig {
        &self.features
    }

    /// Normalizes and splits `text` into tokens. An empty result means the text has nothing
    /// usable (only white space, control, format or private-use characters, or what the
    /// folds drop).
    ///
    /// Same tokens as [`TextPipeline::tokenize_reference`]; see [`TextPipeline::tokenize_into`].
    pub fn tokenize(&self, text: &str) -> Vec<String> {
        let mut tokens = Tokens::default();
        self.tokenize_into(text, &mut tokens);
        tokens.to_vec()
    }

    /// Normalizes and splits `text` into `out` (cleared first), reusing its buffers.
    ///
    /// Text made of ASCII, emoji and common symbols, typographic quotes and dashes, and
    /// Latin-1 letters, the common case, takes an allocation-free path that applies the same
    /// rules as the `tokenizers` normalizer and pre-tokenizer restricted to those characters
    /// (tested against [`TextPipeline::tokenize_reference`]); any other text goes through
    /// `tokenizers`.
    pub fn tokenize_into(&self, text: &str, out: &mut Tokens) {
        out.clear();
        if !self.tokenize_fast(text, out) {
            out.clear();
            self.tokenize_general(text, out);
        }
    }

    /// The fast path, for chat text: ASCII plus emoji and common symbols, the punctuation of
    /// typographic quotes and dashes, and the letters of Latin-1 (`é`, `ñ`, `ç`). Returns
    /// `false`, leaving `out` partial, at the first character outside that set (the caller
    /// then takes the `tokenizers` path). On ASCII the `tokenizers` steps reduce to:
    /// - NFKC, accent stripping and CJK spacing change nothing;
    /// - BERT's cleaning removes the control characters (0x00–0x1F and 0x7F) other than tab,
    ///   line feed and carriage return, so the characters around them join (`a\x01b` is
    ///   `ab`; vertical tab and form feed are control characters, removed, not spaces), and
    ///   makes tab, line feed and carriage return spaces;
    /// - lowercasing is ASCII lowercasing;
    /// - the pre-tokenizer splits on spaces and isolates every ASCII punctuation character
    ///   (which covers every ASCII `\p{S}` symbol, so the symbol splitter adds nothing);
    /// - what remains between splits is letters and digits, so a word token always has an
    ///   alphanumeric character and only punctuation tokens can be dropped by
    ///   `keep_punctuation = false`.
    ///
    /// On the rest of the set:
    /// - the symbols ([`simple_symbol`]) are NFKC-stable, have no case, and are split off
    ///   as tokens of their own, as ASCII punctuation is (by the `\p{S}` splitter or, for the
    ///   quotes and dashes, BERT's punctuation rule);
    /// - the Latin-1 letters are NFKC-stable, lowercase to one Latin-1 letter, and join words;
    ///   with accent stripping on they take the `tokenizers` path (NFD);
    /// - with variant folding on, variation selectors and skin-tone modifiers are dropped, so
    ///   the characters around them join.
    ///
    /// Tested against [`TextPipeline::tokenize_reference`] on every character of the set in
    /// every config, and on random mixes.
    fn tokenize_fast(&self, text: &str, out: &mut Tokens) -> bool {
        let lower = self.config.lowercase;
        let keep_punctuation = self.config.keep_punctuation;
        let mut open = false;
        for c in text.chars() {
            match c {
                '\t' | '\n' | '\r' | ' ' => {
                    if open {
                        out.ends.push(out.text.len());
                        open = false;
                    }
                }
                '\0'..='\x1f' | '\x7f' => {}
                _ if c.is_ascii_punctuation() || simple_symbol(c) => {
                    if open {
                        out.ends.push(out.text.len());
                        open = false;
                    }
                    if keep_punctuation {
                        out.text.push(c);
                        out.ends.push(out.text.len());
                    }
                }
                _ if c.is_ascii() => {
                    out.text
                        .push(if lower { c.to_ascii_lowercase() } else { c });
                    open = true;
                }
                '\u{c0}'..='\u{ff}' if !self.config.strip_accents => {
                    // Every letter of the range (× and ÷ are symbols, matched above)
                    // lowercases to one letter of the range.
                    let c = if lower {
                        c.to_lowercase().next().unwrap_or(c)
                    } else {
                        c
                    };
                    out.text.push(c);
                    open = true;
                }
                '\u{fe00}'..='\u{fe0f}' | '\u{1f3fb}'..='\u{1f3ff}'
                    if self.config.fold_variants => {}
                _ => return false,
            }
        }
        if open {
            out.ends.push(out.text.len());
        }
        true
    }

    /// The `tokenizers` path for every text: the reference the fast path must match.
    pub fn tokenize_reference(&self, text: &str) -> Vec<String> {
        let mut tokens = Tokens::default();
        self.tokenize_general(text, &mut tokens);
        tokens.to_vec()
    }

    /// The `tokenizers` path.
    fn tokenize_general(&self, text: &str, out: &mut Tokens) {
        let mut normalized = NormalizedString::from(text);
        // None of the folded characters is ASCII, so the fast path needs no such step; and
        // each fold rebuilds the string's alignments, so it runs only when needed.
        let fold = self.config.fold_variants;
        let lower = fold && self.config.lowercase;
        let dropped = |c: char| matches!(c, '\u{fe00}'..='\u{fe0f}' | '\u{e0100}'..='\u{e01ef}' | '\u{1f3fb}'..='\u{1f3ff}');
        if fold && text.chars().any(dropped) {
            normalized.filter(|c| !dropped(c));
        }
        // These normalizers and splitters return a `Result` for the regex patterns other
        // pre-tokenizers use; theirs cannot fail. Should one, plain white-space splitting
        // keeps this total.
        if self.normalizer.0.normalize(&mut normalized).is_err() {
            text.split_whitespace().for_each(|t| out.push(t));
            return;
        }
        // After NFKC, which composes a decomposed `I` + U+0307 into `İ` as well.
        if lower && normalized.get().contains('\u{130}') {
            normalized.map(|c| if c == '\u{130}' { 'I' } else { c });
        }
        if self.normalizer.1.normalize(&mut normalized).is_err() {
            text.split_whitespace().for_each(|t| out.push(t));
            return;
        }
        if lower && normalized.get().contains('ς') {
            normalized.map(|c| if c == 'ς' { 'σ' } else { c });
        }
        let mut pre = PreTokenizedString::from(normalized);
        // Symbols (emoji, currency, math) become tokens of their own, like punctuation.
        if self.splitter.pre_tokenize(&mut pre).is_err()
            || pre
                .split(|_, s| s.split(is_symbol, SplitDelimiterBehavior::Isolated))
                .is_err()
        {
            text.split_whitespace().for_each(|t| out.push(t));
            return;
        }
        pre.get_splits(OffsetReferential::Original, OffsetType::None)
            .into_iter()
            .map(|(s, _, _)| s)
            .filter(|s| !s.trim().is_empty())
            .filter(|s| self.config.keep_punctuation || s.chars().any(char::is_alphanumeric))
            .for_each(|t| out.push(t));
    }

    /// Calls `emit(feature, display)` for every feature occurrence of `tokens`, in a fixed
    /// order. `display` builds the human-readable feature string (`u:hello`, `c:<he`) only when
    /// asked, since most callers never need it.
    pub fn for_each_feature<F>(&self, tokens: &[String], emit: F)
    where
        F: FnMut(Feature, &dyn Fn() -> String),
    {
        self.features_of(tokens, &mut FeatureScratch::default(), emit);
    }

    /// [`TextPipeline::for_each_feature`] over [`Tokens`], reusing `scratch`'s buffers: the
    /// same features in the same order.
    pub fn for_each_feature_of<F>(&self, tokens: &Tokens, scratch: &mut FeatureScratch, emit: F)
    where
        F: FnMut(Feature, &dyn Fn() -> String),
    {
        self.features_of(tokens, scratch, emit);
    }

    fn features_of<T, F>(&self, tokens: &T, scratch: &mut FeatureScratch, mut emit: F)
    where
        T: TokenSeq + ?Sized,
        F: FnMut(Feature, &dyn Fn() -> String),
    {
        let f = &self.features;
        let FeatureScratch {
            buf,
            word,
            bounds,
            padded,
        } = scratch;
        let n = tokens.count();
        for i in 0..n {
            let tok = tokens.token(i);
            if f.unigrams {
                emit_parts(&mut emit, b'u', &[tok], Block::Word, buf);
            }
            if f.bigrams && i + 1 < n {
                emit_parts(
                    &mut emit,
                    b'b',
                    &[tok, tokens.token(i + 1)],
                    Block::Word,
                    buf,
                );
            }
            if f.skip_bigrams && i + 2 < n {
                emit_parts(
                    &mut emit,
                    b's',
                    &[tok, tokens.token(i + 2)],
                    Block::Word,
                    buf,
                );
            }
        }
        if f.chars_on() {
            // `c`, then the separator: a char n-gram's first two bytes.
            const CHAR_TAG: u128 = b'c' as u128 | (SEP as u128) << 8;
            let (lo, hi) = (f.char_min as usize, f.char_max as usize);
            for i in 0..n {
                // `<token>` and the byte offset of each of its characters, plus its end, so
                // that an n-gram of characters is one slice.
                word.clear();
                word.push('<');
                word.push_str(tokens.token(i));
                word.push('>');
                // An ASCII token's characters are its bytes: no offsets to list.
                let ascii = word.is_ascii();
                bounds.clear();
                if !ascii {
                    bounds.extend(word.char_indices().map(|(o, _)| o));
                    bounds.push(word.len());
                }
                let chars = if ascii { word.len() } else { bounds.len() - 1 };
                let offset = |k: usize| if ascii { k } else { bounds[k] };
                // The same bytes with 16 zeros after them, so that 16 bytes can be read
                // from the start of any n-gram.
                padded.clear();
                padded.extend_from_slice(word.as_bytes());
                padded.extend_from_slice(&[0; 16]);
                for len in lo..=hi {
                    if len > chars {
                        break;
                    }
                    for start in 0..=chars - len {
                        let (from, to) = (offset(start), offset(start + len));
                        let bytes = to - from;
                        if bytes <= 14 {
                            let raw: [u8; 16] = padded[from..from + 16]
                                .try_into()
                                .expect("16 bytes of padding");
                            let gram = u128::from_le_bytes(raw) & ((1u128 << (8 * bytes)) - 1);
                            emit_packed(&mut emit, CHAR_TAG | gram << 16, bytes + 2, Block::Char);
                        } else {
                            emit_parts(&mut emit, b'c', &[&word[from..to]], Block::Char, buf);
                        }
                    }
                }
            }
        }
    }
}

/// Emits the feature whose bytes are `tag`, then each part after a separator. Up to 16
/// bytes are packed into an integer and hashed there
/// ([`feature_hash_packed`]); longer ones are written to `buf`.
#[inline(always)]
fn emit_parts<F: FnMut(Feature, &dyn Fn() -> String)>(
    emit: &mut F,
    tag: u8,
    parts: &[&str],
    block: Block,
    buf: &mut Vec<u8>,
) {
    let len = 1 + parts.iter().map(|p| 1 + p.len()).sum::<usize>();
    if len <= 16 {
        let mut packed = u128::from(tag);
        let mut at = 1;
        for p in parts {
            packed |= u128::from(SEP as u8) << (8 * at);
            for (i, &b) in p.as_bytes().iter().enumerate() {
                packed |= u128::from(b) << (8 * (at + 1 + i));
            }
            at += 1 + p.len();
        }
        emit_packed(emit, packed, len, block);
    } else {
        buf.clear();
        buf.push(tag);
        for p in parts {
            buf.push(SEP as u8);
            buf.extend_from_slice(p.as_bytes());
        }
        let feature = Feature {
            hash: feature_hash(buf),
            block,
        };
        // Built from whole `str`s and an ASCII separator, so always UTF-8.
        let buf = &*buf;
        emit(feature, &|| {
            display(std::str::from_utf8(buf).unwrap_or_default())
        });
    }
}

/// Emits the feature whose `len` bytes (at most 16) are packed in `packed`, little-endian.
#[inline(always)]
fn emit_packed<F: FnMut(Feature, &dyn Fn() -> String)>(
    emit: &mut F,
    packed: u128,
    len: usize,
    block: Block,
) {
    let feature = Feature {
        hash: feature_hash_packed(packed, len),
        block,
    };
    emit(feature, &|| {
        // Whole `str`s and ASCII bytes, so UTF-8.
        let bytes = packed.to_le_bytes();
        display(std::str::from_utf8(&bytes[..len]).unwrap_or_default())
    });
}

/// The symbols [`TextPipeline::tokenize_fast`] splits off as tokens: `×` and `÷`,
/// dashes and typographic quotes (U+2010, U+2012–2016, U+2018–2023), the miscellaneous
/// symbols and dingbats (U+2600–2775, U+2794–27BF), and the emoji blocks' assigned symbols
/// (U+1F300–1F3FA, U+1F400–1F6D7, U+1F900–1FA53). Left out: the characters NFKC changes
/// (`…`, `₨`), the dingbat digits (U+2776–2793, which join words), and code points not yet
/// assigned (a later Unicode may make them letters or symbols).
fn simple_symbol(c: char) -> bool {
    matches!(
        c,
        '\u{d7}'
            | '\u{f7}'
            | '\u{2010}'
            | '\u{2012}'..='\u{2016}'
            | '\u{2018}'..='\u{2023}'
            | '\u{2600}'..='\u{2775}'
            | '\u{2794}'..='\u{27bf}'
            | '\u{1f300}'..='\u{1f3fa}'
            | '\u{1f400}'..='\u{1f6d7}'
            | '\u{1f900}'..='\u{1fa53}'
    )
}

/// Reusable buffers of [`TextPipeline::for_each_feature_of`].
#[derive(Debug, Clone, Default)]
pub struct FeatureScratch {
    buf: Vec<u8>,
    word: String,
    bounds: Vec<usize>,
    /// `word`'s bytes and 16 zeros.
    padded: Vec<u8>,
}

/// `u\x1fthank` → `u:thank`; `b\x1fthank\x1fyou` → `b:thank you`; skip-bigrams show `_`.
fn display(raw: &str) -> String {
    let mut parts = raw.split(SEP);
    let tag = parts.next().unwrap_or("");
    let rest: Vec<&str> = parts.collect();
    match tag {
        "s" => format!(
            "s:{} _ {}",
            rest.first().unwrap_or(&""),
            rest.get(1).unwrap_or(&"")
        ),
        _ => format!("{tag}:{}", rest.join(" ")),
    }
}

/// Unicode's symbols (general category S: math, currency, modifier and other symbols, emoji
/// among them) as `(first, last)` code point ranges, ascending: what the pattern `\p{S}`
/// matched in `tokenizers`' regex engine (fancy-regex over regex-syntax 0.8) when this table
/// was made from it. Fixed here rather than read from a regex so that a dependency's Unicode
/// update cannot change a text's tokens, and so the predictions of models already trained;
/// and the regex engine was 1.4 MB of an app that only predicts (benches/README.md,
/// thirty-second session). A test checks every code point against the regex.
const SYMBOLS: &[(u32, u32)] = &[
    (0x0024, 0x0024),
    (0x002B, 0x002B),
    (0x003C, 0x003E),
    (0x005E, 0x005E),
    (0x0060, 0x0060),
    (0x007C, 0x007C),
    (0x007E, 0x007E),
    (0x00A2, 0x00A6),
    (0x00A8, 0x00A9),
    (0x00AC, 0x00AC),
    (0x00AE, 0x00B1),
    (0x00B4, 0x00B4),
    (0x00B8, 0x00B8),
    (0x00D7, 0x00D7),
    (0x00F7, 0x00F7),
    (0x02C2, 0x02C5),
    (0x02D2, 0x02DF),
    (0x02E5, 0x02EB),
    (0x02ED, 0x02ED),
    (0x02EF, 0x02FF),
    (0x0375, 0x0375),
    (0x0384, 0x0385),
    (0x03F6, 0x03F6),
    (0x0482, 0x0482),
    (0x058D, 0x058F),
    (0x0606, 0x0608),
    (0x060B, 0x060B),
    (0x060E, 0x060F),
    (0x06DE, 0x06DE),
    (0x06E9, 0x06E9),
    (0x06FD, 0x06FE),
    (0x07F6, 0x07F6),
    (0x07FE, 0x07FF),
    (0x0888, 0x0888),
    (0x09F2, 0x09F3),
    (0x09FA, 0x09FB),
    (0x0AF1, 0x0AF1),
    (0x0B70, 0x0B70),
    (0x0BF3, 0x0BFA),
    (0x0C7F, 0x0C7F),
    (0x0D4F, 0x0D4F),
    (0x0D79, 0x0D79),
    (0x0E3F, 0x0E3F),
    (0x0F01, 0x0F03),
    (0x0F13, 0x0F13),
    (0x0F15, 0x0F17),
    (0x0F1A, 0x0F1F),
    (0x0F34, 0x0F34),
    (0x0F36, 0x0F36),
    (0x0F38, 0x0F38),
    (0x0FBE, 0x0FC5),
    (0x0FC7, 0x0FCC),
    (0x0FCE, 0x0FCF),
    (0x0FD5, 0x0FD8),
    (0x109E, 0x109F),
    (0x1390, 0x1399),
    (0x166D, 0x166D),
    (0x17DB, 0x17DB),
    (0x1940, 0x1940),
    (0x19DE, 0x19FF),
    (0x1B61, 0x1B6A),
    (0x1B74, 0x1B7C),
    (0x1FBD, 0x1FBD),
    (0x1FBF, 0x1FC1),
    (0x1FCD, 0x1FCF),
    (0x1FDD, 0x1FDF),
    (0x1FED, 0x1FEF),
    (0x1FFD, 0x1FFE),
    (0x2044, 0x2044),
    (0x2052, 0x2052),
    (0x207A, 0x207C),
    (0x208A, 0x208C),
    (0x20A0, 0x20C0),
    (0x2100, 0x2101),
    (0x2103, 0x2106),
    (0x2108, 0x2109),
    (0x2114, 0x2114),
    (0x2116, 0x2118),
    (0x211E, 0x2123),
    (0x2125, 0x2125),
    (0x2127, 0x2127),
    (0x2129, 0x2129),
    (0x212E, 0x212E),
    (0x213A, 0x213B),
    (0x2140, 0x2144),
    (0x214A, 0x214D),
    (0x214F, 0x214F),
    (0x218A, 0x218B),
    (0x2190, 0x2307),
    (0x230C, 0x2328),
    (0x232B, 0x2429),
    (0x2440, 0x244A),
    (0x249C, 0x24E9),
    (0x2500, 0x2767),
    (0x2794, 0x27C4),
    (0x27C7, 0x27E5),
    (0x27F0, 0x2982),
    (0x2999, 0x29D7),
    (0x29DC, 0x29FB),
    (0x29FE, 0x2B73),
    (0x2B76, 0x2B95),
    (0x2B97, 0x2BFF),
    (0x2CE5, 0x2CEA),
    (0x2E50, 0x2E51),
    (0x2E80, 0x2E99),
    (0x2E9B, 0x2EF3),
    (0x2F00, 0x2FD5),
    (0x2FF0, 0x2FFF),
    (0x3004, 0x3004),
    (0x3012, 0x3013),
    (0x3020, 0x3020),
    (0x3036, 0x3037),
    (0x303E, 0x303F),
    (0x309B, 0x309C),
    (0x3190, 0x3191),
    (0x3196, 0x319F),
    (0x31C0, 0x31E5),
    (0x31EF, 0x31EF),
    (0x3200, 0x321E),
    (0x322A, 0x3247),
    (0x3250, 0x3250),
    (0x3260, 0x327F),
    (0x328A, 0x32B0),
    (0x32C0, 0x33FF),
    (0x4DC0, 0x4DFF),
    (0xA490, 0xA4C6),
    (0xA700, 0xA716),
    (0xA720, 0xA721),
    (0xA789, 0xA78A),
    (0xA828, 0xA82B),
    (0xA836, 0xA839),
    (0xAA77, 0xAA79),
    (0xAB5B, 0xAB5B),
    (0xAB6A, 0xAB6B),
    (0xFB29, 0xFB29),
    (0xFBB2, 0xFBC2),
    (0xFD40, 0xFD4F),
    (0xFDCF, 0xFDCF),
    (0xFDFC, 0xFDFF),
    (0xFE62, 0xFE62),
    (0xFE64, 0xFE66),
    (0xFE69, 0xFE69),
    (0xFF04, 0xFF04),
    (0xFF0B, 0xFF0B),
    (0xFF1C, 0xFF1E),
    (0xFF3E, 0xFF3E),
    (0xFF40, 0xFF40),
    (0xFF5C, 0xFF5C),
    (0xFF5E, 0xFF5E),
    (0xFFE0, 0xFFE6),
    (0xFFE8, 0xFFEE),
    (0xFFFC, 0xFFFD),
    (0x10137, 0x1013F),
    (0x10179, 0x10189),
    (0x1018C, 0x1018E),
    (0x10190, 0x1019C),
    (0x101A0, 0x101A0),
    (0x101D0, 0x101FC),
    (0x10877, 0x10878),
    (0x10AC8, 0x10AC8),
    (0x10D8E, 0x10D8F),
    (0x1173F, 0x1173F),
    (0x11FD5, 0x11FF1),
    (0x16B3C, 0x16B3F),
    (0x16B45, 0x16B45),
    (0x1BC9C, 0x1BC9C),
    (0x1CC00, 0x1CCEF),
    (0x1CD00, 0x1CEB3),
    (0x1CF50, 0x1CFC3),
    (0x1D000, 0x1D0F5),
    (0x1D100, 0x1D126),
    (0x1D129, 0x1D164),
    (0x1D16A, 0x1D16C),
    (0x1D183, 0x1D184),
    (0x1D18C, 0x1D1A9),
    (0x1D1AE, 0x1D1EA),
    (0x1D200, 0x1D241),
    (0x1D245, 0x1D245),
    (0x1D300, 0x1D356),
    (0x1D6C1, 0x1D6C1),
    (0x1D6DB, 0x1D6DB),
    (0x1D6FB, 0x1D6FB),
    (0x1D715, 0x1D715),
    (0x1D735, 0x1D735),
    (0x1D74F, 0x1D74F),
    (0x1D76F, 0x1D76F),
    (0x1D789, 0x1D789),
    (0x1D7A9, 0x1D7A9),
    (0x1D7C3, 0x1D7C3),
    (0x1D800, 0x1D9FF),
    (0x1DA37, 0x1DA3A),
    (0x1DA6D, 0x1DA74),
    (0x1DA76, 0x1DA83),
    (0x1DA85, 0x1DA86),
    (0x1E14F, 0x1E14F),
    (0x1E2FF, 0x1E2FF),
    (0x1ECAC, 0x1ECAC),
    (0x1ECB0, 0x1ECB0),
    (0x1ED2E, 0x1ED2E),
    (0x1EEF0, 0x1EEF1),
    (0x1F000, 0x1F02B),
    (0x1F030, 0x1F093),
    (0x1F0A0, 0x1F0AE),
    (0x1F0B1, 0x1F0BF),
    (0x1F0C1, 0x1F0CF),
    (0x1F0D1, 0x1F0F5),
    (0x1F10D, 0x1F1AD),
    (0x1F1E6, 0x1F202),
    (0x1F210, 0x1F23B),
    (0x1F240, 0x1F248),
    (0x1F250, 0x1F251),
    (0x1F260, 0x1F265),
    (0x1F300, 0x1F6D7),
    (0x1F6DC, 0x1F6EC),
    (0x1F6F0, 0x1F6FC),
    (0x1F700, 0x1F776),
    (0x1F77B, 0x1F7D9),
    (0x1F7E0, 0x1F7EB),
    (0x1F7F0, 0x1F7F0),
    (0x1F800, 0x1F80B),
    (0x1F810, 0x1F847),
    (0x1F850, 0x1F859),
    (0x1F860, 0x1F887),
    (0x1F890, 0x1F8AD),
    (0x1F8B0, 0x1F8BB),
    (0x1F8C0, 0x1F8C1),
    (0x1F900, 0x1FA53),
    (0x1FA60, 0x1FA6D),
    (0x1FA70, 0x1FA7C),
    (0x1FA80, 0x1FA89),
    (0x1FA8F, 0x1FAC6),
    (0x1FACE, 0x1FADC),
    (0x1FADF, 0x1FAE9),
    (0x1FAF0, 0x1FAF8),
    (0x1FB00, 0x1FB92),
    (0x1FB94, 0x1FBEF),
];

/// Whether `c` is a Unicode symbol ([`SYMBOLS`]).
fn is_symbol(c: char) -> bool {
    let c = c as u32;
    // The last range starting at or before `c`.
    match SYMBOLS.partition_point(|&(first, _)| first <= c) {
        0 => false,
        i => c <= SYMBOLS[i - 1].1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_symbol_table_is_what_the_regex_matched_at_every_code_point() {
        let re = tokenizers::utils::SysRegex::new(r"\p{S}").unwrap();
        let all: String = (0u32..=0x10FFFF).filter_map(char::from_u32).collect();
        let mut matched = std::collections::HashSet::new();
        for (a, b) in re.find_iter(&all) {
            matched.extend(all[a..b].chars());
        }
        assert!(matched.len() > 7_000, "{}", matched.len());
        for c in all.chars() {
            assert_eq!(
                is_symbol(c),
                matched.contains(&c),
                "{c:?} (U+{:04X})",
                c as u32
            );
        }
        // The table is sorted and its ranges apart, so the search is sound.
        assert!(SYMBOLS.windows(2).all(|w| w[0].1 + 1 < w[1].0));
        assert!(SYMBOLS.iter().all(|&(a, b)| a <= b));
    }

    fn pipeline() -> TextPipeline {
        TextPipeline::new(&TextConfig::default(), &FeatureConfig::default()).unwrap()
    }

    #[test]
    fn tokenizes_punctuation_symbols_and_cjk_apart() {
        let p = pipeline();
        assert_eq!(
            p.tokenize("Hey  FRIEND!? ok😂👍"),
            vec!["hey", "friend", "!", "?", "ok", "😂", "👍"]
        );
        assert_eq!(p.tokenize("野口 san"), vec!["野", "口", "san"]);
        assert_eq!(p.tokenize("ﬁne"), vec!["fine"], "NFKC folds ligatures");
        assert_eq!(p.tokenize("Café"), vec!["café"]);
        assert!(p.tokenize(" \t\u{7}\n").is_empty());
    }

    /// Pins the general (`tokenizers`) path on non-ASCII text, which the ASCII golden values
    /// never reach: a `tokenizers` upgrade that changed any of these would change the
    /// features, and so the predictions, of saved models.
    #[test]
    fn non_ascii_tokens_are_pinned() {
        let p = TextPipeline::new(&TextConfig::default(), &FeatureConfig::default()).unwrap();
        let cases: [(&str, &[&str]); 9] = [
            (
                "Ça va? ❤\u{fe0f} merci!!",
                &["ça", "va", "?", "❤", "merci", "!", "!"],
            ),
            ("ΟΔΟΣ οδος", &["οδοσ", "οδοσ"]),
            ("İSTANBUL istanbul", &["istanbul", "istanbul"]),
            (
                "注文をキャンセルしてください",
                &["注", "文", "をキャンセルしてください"],
            ),
            ("спасибо большое 👍🏽", &["спасибо", "большое", "👍"]),
            ("شكرا جزيلا", &["شكرا", "جزيلا"]),
            ("नमस्ते दोस्त", &["नमस\u{94d}त\u{947}", "दोस\u{94d}त"]),
            ("ＡＢＣ１２３！", &["abc123", "!"]),
            ("🇫🇷 👨\u{200d}💻 ok", &["🇫", "🇷", "👨", "💻", "ok"]),
        ];
        for (text, want) in cases {
            assert_eq!(p.tokenize(text), want, "{text:?}");
        }
    }

    #[test]
    fn variants_fold_in_new_configs_and_not_in_old_ones() {
        let p = TextPipeline::new(&TextConfig::default(), &FeatureConfig::default()).unwrap();
        assert_eq!(p.tokenize("❤\u{fe0f}"), p.tokenize("❤"));
        assert_eq!(p.tokenize("☀\u{fe0f} ✔\u{fe0f}"), ["☀", "✔"]);
        assert_eq!(p.tokenize("👍\u{1f3fd}"), ["👍"]);
        // Without lowercasing, sigma and dotted I stay as written.
        let cased = TextConfig {
            lowercase: false,
            ..TextConfig::default()
        };
        let q = TextPipeline::new(&cased, &FeatureConfig::default()).unwrap();
        assert_eq!(q.tokenize("οδος İ"), ["οδος", "İ"]);
        // Decomposed dotted I folds too (NFKC composes it first).
        assert_eq!(p.tokenize("I\u{307}STANBUL"), ["istanbul"]);
        // A header written before the field existed reads it as false: the old tokens.
        let old: TextConfig = serde_json::from_str(
            r#"{"lowercase":true,"strip_accents":false,"keep_punctuation":true}"#,
        )
        .unwrap();
        assert!(!old.fold_variants);
        let o = TextPipeline::new(&old, &FeatureConfig::default()).unwrap();
        assert_eq!(o.tokenize("❤\u{fe0f}"), ["❤", "\u{fe0f}"]);
        assert_eq!(o.tokenize("ΟΔΟΣ οδος"), ["οδοσ", "οδος"]);
        // New configs write the field; old ones are written as they always were.
        assert!(serde_json::to_string(&TextConfig::default())
            .unwrap()
            .contains("\"fold_variants\":true"));
        assert!(!serde_json::to_string(&old)
            .unwrap()
            .contains("fold_variants"));
    }

    #[test]
    fn strips_accents_on_request() {
        let config = TextConfig {
            strip_accents: true,
            ..TextConfig::default()
        };
        let p = TextPipeline::new(&config, &FeatureConfig::default()).unwrap();
        assert_eq!(p.tokenize("Ça va, café"), vec!["ca", "va", ",", "cafe"]);
        let words_only = TextConfig {
            keep_punctuation: false,
            ..TextConfig::default()
        };
        let p = TextPipeline::new(&words_only, &FeatureConfig::default()).unwrap();
        assert_eq!(
            p.tokenize("uh-huh. ok 👍 r2d2!"),
            vec!["uh", "huh", "ok", "r2d2"]
        );
    }

    #[test]
    fn yields_each_family_in_order() {
        let config = FeatureConfig {
            skip_bigrams: true,
            char_min: 3,
            char_max: 4,
            ..FeatureConfig::default()
        };
        let p = TextPipeline::new(&TextConfig::default(), &config).unwrap();
        let tokens = p.tokenize("thank you so");
        let mut shown = Vec::new();
        p.for_each_feature(&tokens, |_, d| shown.push(d()));
        let words: Vec<&str> = shown
            .iter()
            .map(String::as_str)
            .filter(|s| !s.starts_with("c:"))
            .collect();
        assert_eq!(
            words,
            vec![
                "u:thank",
                "b:thank you",
                "s:thank _ so",
                "u:you",
                "b:you so",
                "u:so"
            ]
        );
        assert!(shown.contains(&"c:<th".to_owned()));
        assert!(shown.contains(&"c:<so>".to_owned()));
        assert!(shown.contains(&"c:nk>".to_owned()));
        assert!(
            !shown.iter().any(|s| s == "c:<thank>"),
            "5-grams are off here"
        );
    }

    #[test]
    fn feature_ids_are_pinned() {
        let p = pipeline();
        let tokens = p.tokenize("Thank you!");
        let mut got = Vec::new();
        p.for_each_feature(&tokens, |f, _| got.push(f.hash));
        // 3 unigrams + 2 bigrams; char 3-4-grams of <thank> (5+4), <you> (3+2), <!> (1).
        assert_eq!(got.len(), 5 + 9 + 5 + 1);
        // The first word features, pinned: a change to the text path must show here.
        assert_eq!(&got[..3], &GOLDEN_FIRST);
    }

    #[test]
    fn char_ngrams_are_the_hashes_of_their_bytes() {
        // By their definition: `c`, the separator, then the n-gram of `<token>`'s characters,
        // hashed as bytes; ASCII, multibyte and long (over 14 bytes) n-grams alike.
        let features = FeatureConfig {
            unigrams: false,
            bigrams: false,
            char_min: 1,
            char_max: 6,
            ..FeatureConfig::default()
        };
        let p = TextPipeline::new(&TextConfig::default(), &features).unwrap();
        let tokens: Vec<String> = [
            "ok",
            "café",
            "野口さん",
            "🎉",
            "abcdefghijklmnop",
            "🎉🎉🎉🎉🎉",
        ]
        .iter()
        .map(|t| t.to_string())
        .collect();
        let mut want = Vec::new();
        for t in &tokens {
            let chars: Vec<char> = format!("<{t}>").chars().collect();
            for len in 1..=6 {
                for w in chars.windows(len) {
                    let gram: String = w.iter().collect();
                    want.push(feature_hash(format!("c{SEP}{gram}").as_bytes()));
                }
            }
        }
        let mut got = Vec::new();
        p.for_each_feature(&tokens, |f, _| got.push(f.hash));
        assert_eq!(got, want);
    }

    // u:thank, b:thank you, u:you; cross-checked with Python's xxhash (see hash.rs).
    const GOLDEN_FIRST: [u64; 3] = [
        4960143698732704937,
        12705729501201718612,
        11533325229803606817,
    ];

    /// Every config the fast path reads.
    fn configs() -> Vec<TextConfig> {
        let mut out = Vec::new();
        for lowercase in [true, false] {
            for strip_accents in [false, true] {
                for keep_punctuation in [true, false] {
                    out.push(TextConfig {
                        lowercase,
                        strip_accents,
                        keep_punctuation,
                        fold_variants: true,
                    });
                }
            }
        }
        out
    }

    /// [`configs`], then each with variant folding off.
    fn configs_folded_or_not() -> Vec<TextConfig> {
        let unfolded = configs().into_iter().map(|c| TextConfig {
            fold_variants: false,
            ..c
        });
        configs().into_iter().chain(unfolded).collect()
    }

    /// Tokens and features of the fast path equal those of the `tokenizers` path.
    fn check_fast_path(p: &TextPipeline, text: &str, tokens: &mut Tokens) {
        let want = p.tokenize_reference(text);
        p.tokenize_into(text, tokens);
        assert_eq!(tokens.to_vec(), want, "{text:?}");
        assert_eq!(p.tokenize(text), want, "{text:?}");
        let mut a = Vec::new();
        p.for_each_feature(&want, |f, d| a.push((f, d())));
        let mut b = Vec::new();
        p.for_each_feature_of(tokens, &mut FeatureScratch::default(), |f, d| {
            b.push((f, d()))
        });
        assert_eq!(a, b, "{text:?}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 2000, ..proptest::prelude::ProptestConfig::default()
        })]

        #[test]
        fn ascii_fast_path_matches_tokenizers(
            // Any ASCII: letters of both cases, digits, punctuation, symbols, white space of
            // every kind and every control character, weighted towards the rare classes.
            text in "([a-zA-Z]{1,6}|[0-9]{1,3}|[[:punct:]]|[ \t\n\r\x0b\x0c]{1,2}|[\x00-\x1f\x7f]|[\x00-\x7f]){0,24}",
            config in 0usize..8,
        ) {
            let p = TextPipeline::new(&configs()[config], &FeatureConfig {
                skip_bigrams: true,
                ..FeatureConfig::default()
            }).unwrap();
            check_fast_path(&p, &text, &mut Tokens::default());
        }

        #[test]
        fn latin_emoji_path_matches_tokenizers(
            // ASCII, Latin-1 letters, emoji, skin tones and variation selectors, quotes and
            // dashes, and characters outside the set (an ellipsis, a combining accent, a
            // joiner, CJK) that send the text to the `tokenizers` path.
            text in "([a-zA-Z]{1,4}|[À-ÿ]{1,3}|[😀-🙏]|[☀-➿]|[\u{1f3fb}-\u{1f3ff}]|\u{fe0f}|[‐-‣]|[[:punct:]]|[ \t\n]|\u{2026}|\u{301}|\u{200d}|官){0,16}",
            config in 0usize..8,
        ) {
            let p = TextPipeline::new(&configs()[config], &FeatureConfig::default()).unwrap();
            check_fast_path(&p, &text, &mut Tokens::default());
        }
    }

    #[test]
    fn latin_emoji_path_matches_tokenizers_on_every_character_of_its_set() {
        let mut set: Vec<char> = ('\u{c0}'..='\u{ff}').collect();
        set.extend(['\u{fe0f}', '\u{fe00}', '\u{1f3fb}', '\u{1f3ff}']);
        set.extend(
            (0x2000..0x2800)
                .chain(0x1f300..0x1fb00)
                .filter_map(char::from_u32)
                .filter(|&c| simple_symbol(c)),
        );
        assert!(set.len() > 1800, "{}", set.len());
        let mut tokens = Tokens::default();
        for config in configs_folded_or_not() {
            let p = TextPipeline::new(&config, &FeatureConfig::default()).unwrap();
            for &c in &set {
                for text in [
                    format!("Ab{c}Cd"),
                    format!("{c}"),
                    format!(" {c}{c} x{c}É Ñ{c}!"),
                ] {
                    check_fast_path(&p, &text, &mut tokens);
                }
            }
        }
    }

    #[test]
    fn text_of_the_fast_paths_set_takes_it_and_other_text_does_not() {
        // The set the docs of `tokenize_into` promise the allocation-free path: ASCII, the
        // Latin-1 letters (unless accents are stripped), emoji and common symbols, quotes and
        // dashes, and variation selectors and skin tones (when they are folded).
        let mut out = Tokens::default();
        for config in configs_folded_or_not() {
            let p = TextPipeline::new(&config, &FeatureConfig::default()).unwrap();
            let fast = |text: &str, out: &mut Tokens| {
                out.clear();
                p.tokenize_fast(text, out)
            };
            assert!(fast("Hello, World! r2d2 #1 ~ok~", &mut out), "{config:?}");
            assert!(fast("“ok” — ×2 👍 ☀", &mut out), "{config:?}");
            let latin = "Ça va, CAFÉ? Señor";
            assert_eq!(fast(latin, &mut out), !config.strip_accents, "{config:?}");
            for variant in ["❤\u{fe0f}", "👍\u{1f3fd}", "☀\u{fe0e}"] {
                assert_eq!(fast(variant, &mut out), config.fold_variants, "{config:?}");
            }
            // Outside the set: NFKC changes it, it is a combining mark, or it is not Latin-1.
            for other in ["wait…", "e\u{301}", "ok 官", "łódź", "σ"] {
                assert!(!fast(other, &mut out), "{other:?} {config:?}");
            }
        }
    }

    #[test]
    fn fast_path_matches_tokenizers_on_the_bundled_corpora() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpora");
        let mut lines = Vec::new();
        for dir in std::fs::read_dir(&root).unwrap() {
            let dir = dir.unwrap().path();
            if !dir.is_dir() {
                continue;
            }
            for file in std::fs::read_dir(&dir).unwrap() {
                let file = file.unwrap().path();
                if let Ok(text) = std::fs::read_to_string(&file) {
                    lines.extend(text.lines().map(str::to_owned));
                }
            }
        }
        assert!(lines.len() > 1000, "{} lines", lines.len());
        let mut tokens = Tokens::default();
        for config in configs() {
            let p = TextPipeline::new(&config, &FeatureConfig::default()).unwrap();
            for line in &lines {
                // Whole lines (JSON, CSV) and, for JSONL, the text field itself.
                check_fast_path(&p, line, &mut tokens);
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
                    if let Some(t) = v["text"].as_str() {
                        check_fast_path(&p, t, &mut tokens);
                    }
                }
            }
        }
    }

    #[test]
    fn tokens_reuse_their_buffers() {
        let p = pipeline();
        let mut tokens = Tokens::default();
        p.tokenize_into("Hello, WORLD!", &mut tokens);
        assert_eq!(
            tokens.iter().collect::<Vec<_>>(),
            ["hello", ",", "world", "!"]
        );
        p.tokenize_into("café ok", &mut tokens);
        assert_eq!(tokens.to_vec(), ["café", "ok"]);
        assert!(!tokens.is_empty());
        p.tokenize_into(" \x0b ", &mut tokens);
        assert!(tokens.is_empty());
        assert_eq!(p.tokenize("a\x01b\x0bc\td"), ["abc", "d"]);
    }

    #[test]
    fn rejects_bad_ranges() {
        let bad = FeatureConfig {
            char_min: 5,
            char_max: 3,
            ..FeatureConfig::default()
        };
        assert!(TextPipeline::new(&TextConfig::default(), &bad).is_err());
    }

    #[test]
    fn each_out_of_range_feature_config_names_its_field() {
        let check = |f: FeatureConfig| crate::test_util::refused_field(f.validate());
        let d = FeatureConfig::default;
        let cases = [
            // The char n-gram lengths: a range, of at most 16; off (0) means no range.
            (
                FeatureConfig {
                    char_min: 3,
                    char_max: 2,
                    ..d()
                },
                Some("char_max"),
            ),
            (
                FeatureConfig {
                    char_min: 3,
                    char_max: 3,
                    ..d()
                },
                None,
            ),
            (
                FeatureConfig {
                    char_min: 3,
                    char_max: 16,
                    ..d()
                },
                None,
            ),
            (
                FeatureConfig {
                    char_min: 3,
                    char_max: 17,
                    ..d()
                },
                Some("char_max"),
            ),
            (
                FeatureConfig {
                    char_min: 0,
                    char_max: 0,
                    ..d()
                },
                None,
            ),
            // The char block's weight: finite, not negative.
            (
                FeatureConfig {
                    char_weight: 0.0,
                    ..d()
                },
                None,
            ),
            (
                FeatureConfig {
                    char_weight: -0.5,
                    ..d()
                },
                Some("char_weight"),
            ),
            (
                FeatureConfig {
                    char_weight: f32::NAN,
                    ..d()
                },
                Some("char_weight"),
            ),
            (
                FeatureConfig {
                    char_weight: f32::INFINITY,
                    ..d()
                },
                Some("char_weight"),
            ),
        ];
        for (f, want) in cases {
            assert_eq!(check(f.clone()), want, "{f:?}");
        }
        // At least one family: any one will do.
        let none = FeatureConfig {
            unigrams: false,
            bigrams: false,
            skip_bigrams: false,
            char_min: 0,
            char_max: 0,
            ..d()
        };
        assert_eq!(check(none.clone()), Some("features"));
        for one in [
            FeatureConfig {
                unigrams: true,
                ..none.clone()
            },
            FeatureConfig {
                bigrams: true,
                ..none.clone()
            },
            FeatureConfig {
                skip_bigrams: true,
                ..none.clone()
            },
            FeatureConfig {
                char_min: 1,
                char_max: 1,
                ..none.clone()
            },
        ] {
            assert_eq!(check(one.clone()), None, "{one:?}");
        }
    }

    #[test]
    fn char_min_zero_turns_the_char_family_off() {
        let p = TextPipeline::new(&TextConfig::default(), &FeatureConfig::word12()).unwrap();
        let tokens = p.tokenize("thank you!");
        let mut shown = Vec::new();
        p.for_each_feature(&tokens, |f, d| shown.push((f.block, d())));
        let words = ["u:thank", "b:thank you", "u:you", "b:you !", "u:!"];
        assert_eq!(shown, words.map(|w| (Block::Word, w.to_owned())));
        // Recorded as the CLI's `--features u,b` writes it: no char lengths in a header
        // whose model uses none.
        let w = FeatureConfig::word12();
        assert_eq!((w.char_min, w.char_max), (0, 0));
    }

    #[test]
    fn a_pipeline_gives_back_the_configs_it_was_built_with() {
        // What a model's header records, so not the defaults.
        let text = TextConfig {
            lowercase: false,
            strip_accents: true,
            keep_punctuation: false,
            fold_variants: false,
        };
        let features = FeatureConfig {
            skip_bigrams: true,
            char_min: 2,
            char_max: 5,
            char_weight: 0.5,
            sublinear_tf: false,
            ..FeatureConfig::default()
        };
        let p = TextPipeline::new(&text, &features).unwrap();
        assert_eq!(p.text_config(), &text);
        assert_eq!(p.feature_config(), &features);
        let shown = format!("{p:?}");
        assert!(
            shown.contains(&format!("{text:?}")) && shown.contains(&format!("{features:?}")),
            "{shown}"
        );
    }
}
