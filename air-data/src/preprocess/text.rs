//! Text: how strings become tokens, the `Tokenizer`, and the hash that maps tokens to buckets.
//!
//! Tokenization is configuration, not code, so a saved vectorizer reloads anywhere: a literal
//! separator, whitespace runs, a regular expression, or a function registered by name with
//! [`register_tokenizer`](super::register_tokenizer). Tokens hash with 32-bit MurmurHash3 (seed
//! 0) exactly as scikit-learn's `HashingVectorizer` and `FeatureHasher` do, so hashed features
//! match scikit-learn bucket for bucket (Ray hashes with SHA-1 instead; its buckets differ).

use std::sync::Arc;

use polars::prelude::*;
use regex::Regex;
use serde::{Deserialize, Serialize};

use super::{NamedPreprocessor, check_lazy, impl_preprocessor, names, registry};
use crate::error::{DataError, Result};

/// How a string is split into tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Tokenization {
    /// Every piece between occurrences of a separator, empty pieces included (Python's
    /// `s.split(sep)`). Ray's default tokenizer is `Split(" ")`.
    Split(String),
    /// Runs of whitespace separate tokens; no empty tokens (Python's `s.split()`).
    Whitespace,
    /// Every non-overlapping match of a regular expression, or of its one capture group if it
    /// has one (scikit-learn's `token_pattern`; its default is [`Tokenization::sklearn`]).
    Pattern(String),
    /// A function registered under this name with
    /// [`register_tokenizer`](super::register_tokenizer).
    Custom(String),
}

impl Tokenization {
    /// Ray's default: split on single spaces.
    pub fn ray() -> Self {
        Self::Split(" ".to_owned())
    }

    /// scikit-learn's default `token_pattern`: words of two or more word characters.
    pub fn sklearn() -> Self {
        Self::Pattern(r"\b\w\w+\b".to_owned())
    }

    /// Checks the configuration (a pattern compiles, a custom name is registered) and returns
    /// the runnable form.
    pub(crate) fn compile(&self, lowercase: bool, preprocessor: &str) -> Result<Tokens> {
        let kind = match self {
            Self::Split(sep) if sep.is_empty() => {
                return Err(DataError::InvalidPreprocessor {
                    preprocessor: preprocessor.to_owned(),
                    reason: "Tokenization::Split needs a non-empty separator (use Whitespace \
                             to split on any whitespace)"
                        .to_owned(),
                });
            }
            Self::Split(sep) => Kind::Split(sep.clone()),
            Self::Whitespace => Kind::Whitespace,
            Self::Pattern(p) => {
                let re = Regex::new(p).map_err(|e| DataError::InvalidPreprocessor {
                    preprocessor: preprocessor.to_owned(),
                    reason: format!("token pattern {p:?} is not a valid regular expression: {e}"),
                })?;
                let group = match re.captures_len() {
                    1 => false,
                    2 => true,
                    n => {
                        return Err(DataError::InvalidPreprocessor {
                            preprocessor: preprocessor.to_owned(),
                            reason: format!(
                                "token pattern {p:?} has {} capture groups; expected at most \
                                 one (the token)",
                                n - 1
                            ),
                        });
                    }
                };
                Kind::Pattern { re, group }
            }
            Self::Custom(name) => Kind::Custom(registry::token_fn(name)?),
        };
        Ok(Tokens { kind, lowercase })
    }
}

/// A tokenization function for [`Tokenization::Custom`]: any
/// `Fn(&str) -> Vec<String> + Send + Sync`.
pub trait TokenFn: Send + Sync + 'static {
    /// The tokens of `text`.
    fn tokens(&self, text: &str) -> Vec<String>;
}

impl<F> TokenFn for F
where
    F: Fn(&str) -> Vec<String> + Send + Sync + 'static,
{
    fn tokens(&self, text: &str) -> Vec<String> {
        self(text)
    }
}

enum Kind {
    Split(String),
    Whitespace,
    Pattern { re: Regex, group: bool },
    Custom(Arc<dyn TokenFn>),
}

/// A compiled tokenization.
pub(crate) struct Tokens {
    kind: Kind,
    lowercase: bool,
}

impl Tokens {
    /// Calls `f` with each token of `text`, in order.
    pub(crate) fn for_each(&self, text: &str, f: &mut dyn FnMut(&str)) {
        let lowered;
        let text = if self.lowercase {
            lowered = text.to_lowercase();
            lowered.as_str()
        } else {
            text
        };
        match &self.kind {
            Kind::Split(sep) => text.split(sep.as_str()).for_each(f),
            Kind::Whitespace => text.split_whitespace().for_each(f),
            Kind::Pattern { re, group: false } => re.find_iter(text).for_each(|m| f(m.as_str())),
            Kind::Pattern { re, group: true } => re
                .captures_iter(text)
                .for_each(|c| f(c.get(1).map_or("", |m| m.as_str()))),
            Kind::Custom(func) => func.tokens(text).iter().for_each(|t| f(t)),
        }
    }
}

/// 32-bit MurmurHash3 (x86 variant) of `data`, the hash scikit-learn's hashing vectorizers use.
pub(crate) fn murmur3_32(data: &[u8], seed: u32) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mix = |k: u32| k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
    let mut h = seed;
    let mut blocks = data.chunks_exact(4);
    for b in &mut blocks {
        h ^= mix(u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        let mut k = 0u32;
        for (i, &byte) in tail.iter().enumerate() {
            k ^= u32::from(byte) << (8 * i);
        }
        h ^= mix(k);
    }
    // The length is mixed in modulo 2^32, as in the reference implementation.
    h ^= data.len() as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// The bucket in `0..n` and the sign scikit-learn derive from a token's hash.
pub(crate) fn bucket(token: &str, n: usize) -> (usize, i8) {
    let h = murmur3_32(token.as_bytes(), 0) as i32;
    let index = if h == i32::MIN {
        // |i32::MIN| does not fit in an i32; scikit-learn defines the bucket as |h| mod n.
        (2_147_483_648u64 % n as u64) as usize
    } else {
        h.unsigned_abs() as usize % n
    };
    (index, if h >= 0 { 1 } else { -1 })
}

/// Splits string columns into lists of tokens (`List(String)`, in place; nulls stay null).
///
/// ```
/// use air_data::{Preprocessor, Tokenization, Tokenizer, polars::prelude::*};
///
/// let tok = Tokenizer::new(["text"]).with_tokenization(Tokenization::Whitespace);
/// let out = tok.transform_batch(df!("text" => ["the quick  fox"])?)?;
/// let tokens = out.column("text")?.list()?.get_as_series(0).unwrap();
/// let tokens: Vec<&str> = tokens.str()?.iter().flatten().collect();
/// assert_eq!(tokens, ["the", "quick", "fox"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tokenizer {
    columns: Vec<String>,
    tokenization: Tokenization,
    lowercase: bool,
}

impl Tokenizer {
    /// Tokenizes `columns` with Ray's default (split on single spaces), case kept.
    pub fn new<S: AsRef<str>>(columns: impl IntoIterator<Item = S>) -> Self {
        Self {
            columns: names(columns),
            tokenization: Tokenization::ray(),
            lowercase: false,
        }
    }

    /// How to split.
    pub fn with_tokenization(mut self, tokenization: Tokenization) -> Self {
        self.tokenization = tokenization;
        self
    }

    /// Lowercases before splitting.
    pub fn with_lowercase(mut self, lowercase: bool) -> Self {
        self.lowercase = lowercase;
        self
    }
}

impl Tokenizer {
    fn apply(&self, lf: LazyFrame) -> Result<LazyFrame> {
        let mut lf = lf;
        check_lazy(&mut lf, &self.columns, Self::NAME)?;
        let tokens = Arc::new(self.tokenization.compile(self.lowercase, Self::NAME)?);
        let exprs: Vec<Expr> = self
            .columns
            .iter()
            .map(|c| {
                let tokens = tokens.clone();
                col(c.as_str()).map(
                    move |column: Column| tokenize_column(&column, &tokens),
                    |_, field| {
                        Ok(Field::new(
                            field.name().clone(),
                            DataType::List(Box::new(DataType::String)),
                        ))
                    },
                )
            })
            .collect();
        Ok(lf.with_columns(exprs))
    }
}

impl_preprocessor!(Tokenizer, "Tokenizer");

/// The string view of a text column, or an error naming its type.
pub(crate) fn text_column<'a>(
    column: &'a Column,
    preprocessor: &str,
) -> PolarsResult<&'a StringChunked> {
    column.str().map_err(|_| {
        PolarsError::ComputeError(
            format!(
                "{preprocessor}: column {:?} has type {}, expected a string column",
                column.name(),
                column.dtype()
            )
            .into(),
        )
    })
}

fn tokenize_column(column: &Column, tokens: &Tokens) -> PolarsResult<Column> {
    let ca = text_column(column, "Tokenizer")?;
    let mut builder = ListStringChunkedBuilder::new(column.name().clone(), ca.len(), ca.len() * 4);
    // One arena per row instead of one allocation per token.
    let mut arena = String::new();
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for value in ca.iter() {
        let Some(text) = value else {
            builder.append_null();
            continue;
        };
        arena.clear();
        spans.clear();
        tokens.for_each(text, &mut |t| {
            spans.push((arena.len(), arena.len() + t.len()));
            arena.push_str(t);
        });
        builder.append_values_iter(spans.iter().map(|&(a, b)| &arena[a..b]));
    }
    Ok(builder.finish().into_column())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur3_matches_reference_vectors() {
        // Vectors of the reference implementation (SMHasher's MurmurHash3_x86_32).
        assert_eq!(murmur3_32(b"", 0), 0);
        assert_eq!(murmur3_32(b"", 1), 0x514e_28b7);
        assert_eq!(murmur3_32(b"", 0xffff_ffff), 0x81f1_6f39);
        assert_eq!(murmur3_32(&[0xff, 0xff, 0xff, 0xff], 0), 0x7629_3b50);
        assert_eq!(murmur3_32(&[0x21, 0x43, 0x65, 0x87], 0), 0xf55b_516b);
        assert_eq!(murmur3_32(&[0x21, 0x43, 0x65], 0), 0x7e4a_8634);
        assert_eq!(murmur3_32(&[0x21, 0x43], 0), 0xa0f7_b07a);
        assert_eq!(murmur3_32(&[0x21], 0), 0x7266_1cf4);
        assert_eq!(murmur3_32(b"Hello, world!", 1234), 0xfaf6_cdb3);
    }

    #[test]
    fn tokenizations_follow_python_split_semantics() {
        let run = |t: Tokenization, lower: bool, text: &str| {
            let mut out = Vec::new();
            t.compile(lower, "test")
                .unwrap()
                .for_each(text, &mut |s| out.push(s.to_owned()));
            out
        };
        assert_eq!(run(Tokenization::ray(), false, "a  b"), ["a", "", "b"]);
        assert_eq!(run(Tokenization::ray(), false, ""), [""]);
        assert_eq!(
            run(Tokenization::Whitespace, false, " a \t b\n"),
            ["a", "b"]
        );
        assert!(run(Tokenization::Whitespace, false, "").is_empty());
        assert_eq!(
            run(Tokenization::sklearn(), true, "The cat's a Cat!"),
            ["the", "cat", "cat"]
        );
        assert_eq!(
            run(Tokenization::Pattern(r"(\w+)=".into()), false, "a=1 b=2"),
            ["a", "b"]
        );
        assert!(
            Tokenization::Pattern("(".into())
                .compile(false, "t")
                .is_err()
        );
        assert!(
            Tokenization::Pattern("(a)(b)".into())
                .compile(false, "t")
                .is_err()
        );
        assert!(
            Tokenization::Split(String::new())
                .compile(false, "t")
                .is_err()
        );
    }
}
