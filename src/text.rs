//! The one text path: normalization, pre-tokenization and hashed n-gram features.
//!
//! Graph building, training and prediction all call this module, so a text is turned into
//! numbers in exactly one way, and the artifacts record the [`TextConfig`] and
//! [`FeatureConfig`] that made them.
//!
//! 1. **Normalize** with the `tokenizers` crate (no vocabulary, nothing downloaded): NFKC,
//!    then BERT's cleaning (control characters removed, all white space made a plain space),
//!    CJK characters spaced apart, optional accent stripping, lowercasing.
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
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{
    NormalizedString, Normalizer, OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer,
    SplitDelimiterBehavior,
};

use crate::error::{Error, Result};
use crate::hash::feature_hash;

/// How raw text is normalized and split into tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TextConfig {
    /// Lowercase after NFKC (default true: short chat text is cased inconsistently).
    pub lowercase: bool,
    /// Remove combining accents (`café` → `cafe`). Default false: accents can carry meaning,
    /// and character n-grams already make `café` and `cafe` similar.
    pub strip_accents: bool,
    /// Keep tokens with no letter or digit (punctuation, emoji). Default true: they carry
    /// signal. False matches scikit-learn's default token pattern `\b\w+\b`, which the
    /// peers' benchmarks use.
    pub keep_punctuation: bool,
}

impl Default for TextConfig {
    fn default() -> Self {
        Self {
            lowercase: true,
            strip_accents: false,
            keep_punctuation: true,
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
                format!("{} is below char_min {}", self.char_max, self.char_min),
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

/// The normalizer, pre-tokenizer and feature extractor for one configuration.
pub struct TextPipeline {
    config: TextConfig,
    features: FeatureConfig,
    normalizer: (NFKC, BertNormalizer),
    splitter: (BertPreTokenizer, Split),
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
        // Symbols (emoji, currency, math) become tokens of their own, like punctuation.
        let symbols = Split::new(
            SplitPattern::Regex(r"\p{S}".into()),
            SplitDelimiterBehavior::Isolated,
            false,
        )
        .map_err(|e| Error::config("text", format!("symbol splitter: {e}")))?;
        Ok(Self {
            config: config.clone(),
            features: features.clone(),
            normalizer: (NFKC, bert),
            splitter: (BertPreTokenizer, symbols),
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
    /// usable (only white space or control characters).
    pub fn tokenize(&self, text: &str) -> Vec<String> {
        let mut normalized = NormalizedString::from(text);
        // These normalizers and splitters only fail on regex errors, which the fixed patterns
        // above cannot produce; fall back to plain white-space splitting to stay total.
        if self.normalizer.0.normalize(&mut normalized).is_err()
            || self.normalizer.1.normalize(&mut normalized).is_err()
        {
            return text.split_whitespace().map(str::to_owned).collect();
        }
        let mut pre = PreTokenizedString::from(normalized);
        if self.splitter.0.pre_tokenize(&mut pre).is_err()
            || self.splitter.1.pre_tokenize(&mut pre).is_err()
        {
            return text.split_whitespace().map(str::to_owned).collect();
        }
        pre.get_splits(OffsetReferential::Original, OffsetType::None)
            .into_iter()
            .map(|(s, _, _)| s)
            .filter(|s| !s.trim().is_empty())
            .filter(|s| self.config.keep_punctuation || s.chars().any(char::is_alphanumeric))
            .map(str::to_owned)
            .collect()
    }

    /// Calls `emit(feature, display)` for every feature occurrence of `tokens`, in a fixed
    /// order. `display` builds the human-readable feature string (`u:hello`, `c:<he`) only when
    /// asked, since most callers never need it.
    pub fn for_each_feature<F>(&self, tokens: &[String], mut emit: F)
    where
        F: FnMut(Feature, &dyn Fn() -> String),
    {
        let f = &self.features;
        let mut buf = String::new();
        let mut one = |tag: char, parts: &[&str], block: Block, buf: &mut String| {
            buf.clear();
            buf.push(tag);
            for p in parts {
                buf.push(SEP);
                buf.push_str(p);
            }
            let feature = Feature {
                hash: feature_hash(buf.as_bytes()),
                block,
            };
            let shown = &*buf;
            emit(feature, &|| display(shown));
        };
        for (i, tok) in tokens.iter().enumerate() {
            if f.unigrams {
                one('u', &[tok], Block::Word, &mut buf);
            }
            if f.bigrams && i + 1 < tokens.len() {
                one('b', &[tok, &tokens[i + 1]], Block::Word, &mut buf);
            }
            if f.skip_bigrams && i + 2 < tokens.len() {
                one('s', &[tok, &tokens[i + 2]], Block::Word, &mut buf);
            }
        }
        if f.chars_on() {
            let mut chars: Vec<char> = Vec::new();
            let mut gram = String::new();
            for tok in tokens {
                chars.clear();
                chars.push('<');
                chars.extend(tok.chars());
                chars.push('>');
                let lo = f.char_min as usize;
                let hi = f.char_max as usize;
                for n in lo..=hi {
                    if n > chars.len() {
                        break;
                    }
                    for w in chars.windows(n) {
                        gram.clear();
                        gram.extend(w.iter());
                        one('c', &[&gram], Block::Char, &mut buf);
                    }
                }
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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

    // u:thank, b:thank you, u:you; cross-checked with Python's xxhash (see hash.rs).
    const GOLDEN_FIRST: [u64; 3] = [
        4960143698732704937,
        12705729501201718612,
        11533325229803606817,
    ];

    #[test]
    fn rejects_bad_ranges() {
        let bad = FeatureConfig {
            char_min: 5,
            char_max: 3,
            ..FeatureConfig::default()
        };
        assert!(TextPipeline::new(&TextConfig::default(), &bad).is_err());
    }
}
