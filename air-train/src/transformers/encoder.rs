//! [`BertModel`]: the embeddings and the encoder layers.

use ::burn::{
    module::Module,
    tensor::{Bool, Int, Tensor, backend::Backend},
};

use super::{
    BertConfig,
    embeddings::BertEmbeddings,
    layer::BertLayer,
    pooling::padding_bias,
    weights::{WeightReader, WeightWriter},
};
use crate::{TrainError, error::Result};

/// A BERT-family encoder (HuggingFace's `BertModel` without its pooler): token ids and an
/// attention mask in, one hidden state per token out.
#[derive(Module, Debug)]
pub struct BertModel<B: Backend> {
    embeddings: BertEmbeddings<B>,
    layers: Vec<BertLayer<B>>,
    #[module(skip)]
    heads: usize,
    #[module(skip)]
    max_positions: usize,
}

/// What a padding key adds to its attention scores: its softmax weight is then exactly 0 in
/// f32, as with HuggingFace's `finfo.min`.
const MASKED_SCORE: f32 = -1e9;

/// Names in a HuggingFace file that are not weights of the encoder: the `position_ids` buffer
/// and the pooler (`BertModel`'s CLS dense layer, which sentence embeddings do not use).
pub(crate) fn not_encoder_weight(name: &str) -> bool {
    name.ends_with("position_ids") || name.contains("pooler.")
}

impl<B: Backend> BertModel<B> {
    /// A randomly initialised encoder on `device`.
    pub fn init(config: &BertConfig, device: &B::Device) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            embeddings: BertEmbeddings::init(config, device),
            layers: (0..config.num_hidden_layers)
                .map(|_| BertLayer::init(config, device))
                .collect(),
            heads: config.num_attention_heads,
            max_positions: config.max_position_embeddings,
        })
    }

    /// The encoder from a reader positioned on HuggingFace's names.
    pub(crate) fn read(
        config: &BertConfig,
        reader: &mut WeightReader<'_>,
        device: &B::Device,
    ) -> Result<Self> {
        config.validate()?;
        let embeddings = BertEmbeddings::read(config, reader, device)?;
        let layers = (0..config.num_hidden_layers)
            .map(|i| BertLayer::read(config, reader, i, device))
            .collect::<Result<_>>()?;
        Ok(Self {
            embeddings,
            layers,
            heads: config.num_attention_heads,
            max_positions: config.max_position_embeddings,
        })
    }

    /// Writes every weight under HuggingFace's names (with `prefix`, e.g. `""`).
    pub(crate) fn write(&self, writer: &mut WeightWriter) {
        self.embeddings.write(writer);
        for (i, layer) in self.layers.iter().enumerate() {
            layer.write(writer, i);
        }
    }

    /// Encoder layers.
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// `[batch, seq]` token ids and a `[batch, seq]` mask (true for real tokens, false for
    /// padding) → `[batch, seq, hidden]` hidden states of the last layer.
    pub fn forward(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Bool>,
    ) -> Result<Tensor<B, 3>> {
        let [_, seq] = input_ids.dims();
        if seq > self.max_positions {
            return Err(TrainError::InvalidData {
                what: "input_ids",
                found: format!("sequences of {seq} tokens"),
                expected: format!(
                    "at most max_position_embeddings = {} tokens; truncate to that length",
                    self.max_positions
                ),
            });
        }
        // Padding keys get a large negative score, added before the softmax (an additive
        // bias rather than the attention op's bool mask, which burn 0.21's dispatch backend
        // rejects on autodiff devices); `[batch, 1, seq, seq]`, broadcast over heads.
        let mut x = self.embeddings.forward(input_ids);
        let bias = padding_bias(attention_mask, MASKED_SCORE, &x);
        for layer in &self.layers {
            x = layer.forward(x, bias.clone());
        }
        Ok(x)
    }
}
