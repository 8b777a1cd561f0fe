//! [`TextTokenizer`]: HuggingFace's tokenizer (the `tokenizers` crate, from a model's
//! `tokenizer.json`) with truncation to a maximum length and padding to the longest sequence
//! of each batch.

use std::{fmt, path::Path, sync::Arc};

use ::burn::tensor::{Bool, Int, Tensor, TensorData, backend::Backend};
use tokenizers::{
    PaddingDirection, PaddingParams, PaddingStrategy, Tokenizer, TruncationDirection,
    TruncationParams, TruncationStrategy,
};

use crate::{TrainError, error::Result};

/// A tokenizer read from a `tokenizer.json`, truncating to `max_length` tokens (special
/// tokens included) and padding each batch to its longest sequence.
///
/// Cheap to clone (the vocabulary is shared).
#[derive(Clone)]
pub struct TextTokenizer {
    inner: Arc<Tokenizer>,
    /// The original `tokenizer.json` bytes, saved into checkpoints unchanged.
    json: Arc<[u8]>,
    max_length: usize,
    pad_id: u32,
}

impl fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TextTokenizer")
            .field("vocab_size", &self.vocab_size())
            .field("max_length", &self.max_length)
            .field("pad_id", &self.pad_id)
            .finish()
    }
}

/// A batch of token ids, padded to one length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBatch {
    /// Sequences in the batch.
    pub rows: usize,
    /// Tokens per sequence (the longest sequence's, after truncation).
    pub len: usize,
    /// `rows × len` token ids, row-major, padding included.
    pub ids: Vec<i64>,
    /// `rows × len`: true for real tokens, false for padding.
    pub mask: Vec<bool>,
}

impl TokenBatch {
    /// The ids as a `[rows, len]` tensor and the mask as a `[rows, len]` bool tensor.
    pub fn to_tensors<B: Backend>(
        &self,
        device: &B::Device,
    ) -> (Tensor<B, 2, Int>, Tensor<B, 2, Bool>) {
        let shape = [self.rows, self.len];
        (
            Tensor::from_data(TensorData::new(self.ids.clone(), shape), device),
            Tensor::from_data(TensorData::new(self.mask.clone(), shape), device),
        )
    }

    /// Real tokens of row `row`.
    pub fn row_ids(&self, row: usize) -> Vec<i64> {
        let r = &self.ids[row * self.len..(row + 1) * self.len];
        let m = &self.mask[row * self.len..(row + 1) * self.len];
        r.iter()
            .zip(m)
            .filter(|(_, m)| **m)
            .map(|(i, _)| *i)
            .collect()
    }
}

impl TextTokenizer {
    /// Reads `tokenizer.json` from `path`.
    pub fn from_file(path: impl AsRef<Path>, max_length: usize) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| TrainError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_bytes(&bytes, max_length)
            .map_err(|e| TrainError::model(format!("reading {}", path.display()), e))
    }

    /// Parses the bytes of a `tokenizer.json`.
    pub fn from_bytes(bytes: &[u8], max_length: usize) -> Result<Self> {
        if max_length < 2 {
            return Err(TrainError::InvalidConfig {
                field: "max_length",
                value: max_length.to_string(),
                expected: "at least 2 (room for [CLS] and [SEP])".to_owned(),
            });
        }
        let mut tokenizer = Tokenizer::from_bytes(bytes)
            .map_err(|e| TrainError::model("parsing tokenizer.json", e))?;
        // Padding with the file's pad token (BERT's [PAD]), whatever padding it asked for.
        let (pad_id, pad_token) = match tokenizer.get_padding() {
            Some(p) => (p.pad_id, p.pad_token.clone()),
            None => {
                let token = "[PAD]";
                let id = tokenizer.token_to_id(token).ok_or_else(|| {
                    TrainError::model(
                        "parsing tokenizer.json",
                        "it sets no padding and has no [PAD] token; expected a BERT-family \
                         tokenizer",
                    )
                })?;
                (id, token.to_owned())
            }
        };
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            direction: PaddingDirection::Right,
            pad_to_multiple_of: None,
            pad_id,
            pad_type_id: 0,
            pad_token,
        }));
        tokenizer
            .with_truncation(Some(TruncationParams {
                direction: TruncationDirection::Right,
                max_length,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(|e| TrainError::model("setting the tokenizer's truncation", e))?;
        Ok(Self {
            inner: Arc::new(tokenizer),
            json: bytes.into(),
            max_length,
            pad_id,
        })
    }

    /// The same tokenizer truncating to `max_length` instead.
    pub fn with_max_length(&self, max_length: usize) -> Result<Self> {
        Self::from_bytes(&self.json, max_length)
    }

    /// The longest sequence, in tokens.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// Tokens in the vocabulary, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The `tokenizer.json` this tokenizer was read from.
    pub fn json(&self) -> &[u8] {
        &self.json
    }

    /// Tokenises `texts` (special tokens added), truncated and padded to one length.
    pub fn encode<S: AsRef<str>>(&self, texts: &[S]) -> Result<TokenBatch> {
        let inputs: Vec<&str> = texts.iter().map(AsRef::as_ref).collect();
        let encodings = self
            .inner
            .encode_batch_fast(inputs, true)
            .map_err(|e| TrainError::model("tokenising", e))?;
        let rows = encodings.len();
        let len = encodings.first().map_or(0, |e| e.get_ids().len());
        let mut ids = Vec::with_capacity(rows * len);
        let mut mask = Vec::with_capacity(rows * len);
        for e in &encodings {
            ids.extend(e.get_ids().iter().map(|&i| i64::from(i)));
            mask.extend(e.get_attention_mask().iter().map(|&m| m != 0));
        }
        debug_assert_eq!(ids.len(), rows * len, "padding makes every row one length");
        Ok(TokenBatch {
            rows,
            len,
            ids,
            mask,
        })
    }
}
