//! The embedding block: word + position + token-type embeddings, a layer norm and dropout.

use ::burn::{
    module::{Module, Param},
    nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig},
    tensor::{Int, Tensor, backend::Backend},
};

use super::{
    BertConfig,
    weights::{Layout, WeightReader, WeightWriter},
};
use crate::error::Result;

/// Word, position and token-type embeddings summed, then normalised (HuggingFace's
/// `BertEmbeddings`; every sequence is segment 0).
#[derive(Module, Debug)]
pub struct BertEmbeddings<B: Backend> {
    word: Embedding<B>,
    position: Embedding<B>,
    token_type: Embedding<B>,
    norm: LayerNorm<B>,
    dropout: Dropout,
}

/// A layer norm of width `width` with `config`'s epsilon, its weights from `gamma`/`beta`
/// when given.
pub(crate) fn layer_norm<B: Backend>(
    config: &BertConfig,
    width: usize,
    weights: Option<(Tensor<B, 1>, Tensor<B, 1>)>,
    device: &B::Device,
) -> LayerNorm<B> {
    let mut norm = LayerNormConfig::new(width)
        .with_epsilon(config.layer_norm_eps)
        .init(device);
    if let Some((gamma, beta)) = weights {
        norm.gamma = Param::from_tensor(gamma);
        norm.beta = Some(Param::from_tensor(beta));
    }
    norm
}

/// Reads the layer norm `name` (`name.weight`, `name.bias`).
pub(crate) fn read_layer_norm<B: Backend>(
    config: &BertConfig,
    reader: &mut WeightReader<'_>,
    name: &str,
    device: &B::Device,
) -> Result<LayerNorm<B>> {
    let width = config.hidden_size;
    let gamma = reader.tensor(&format!("{name}.weight"), [width], Layout::AsIs, device)?;
    let beta = reader.tensor(&format!("{name}.bias"), [width], Layout::AsIs, device)?;
    Ok(layer_norm(config, width, Some((gamma, beta)), device))
}

/// Writes the layer norm `norm` as `name.weight`, `name.bias`.
pub(crate) fn write_layer_norm<B: Backend>(
    norm: &LayerNorm<B>,
    writer: &mut WeightWriter,
    name: &str,
) {
    writer.put(format!("{name}.weight"), norm.gamma.val(), Layout::AsIs);
    if let Some(beta) = &norm.beta {
        writer.put(format!("{name}.bias"), beta.val(), Layout::AsIs);
    }
}

fn embedding<B: Backend>(weight: Tensor<B, 2>) -> Embedding<B> {
    let [rows, width] = weight.dims();
    let mut e = EmbeddingConfig::new(rows, width).init(&weight.device());
    e.weight = Param::from_tensor(weight);
    e
}

impl<B: Backend> BertEmbeddings<B> {
    /// Randomly initialised embeddings.
    pub(crate) fn init(config: &BertConfig, device: &B::Device) -> Self {
        let h = config.hidden_size;
        Self {
            word: EmbeddingConfig::new(config.vocab_size, h).init(device),
            position: EmbeddingConfig::new(config.max_position_embeddings, h).init(device),
            token_type: EmbeddingConfig::new(config.type_vocab_size, h).init(device),
            norm: layer_norm(config, h, None, device),
            dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
        }
    }

    /// The embeddings under `embeddings.*`.
    pub(crate) fn read(
        config: &BertConfig,
        reader: &mut WeightReader<'_>,
        device: &B::Device,
    ) -> Result<Self> {
        let h = config.hidden_size;
        let mut table = |name: &str, rows: usize| {
            reader
                .tensor::<B, 2>(
                    &format!("embeddings.{name}.weight"),
                    [rows, h],
                    Layout::AsIs,
                    device,
                )
                .map(embedding)
        };
        let word = table("word_embeddings", config.vocab_size)?;
        let position = table("position_embeddings", config.max_position_embeddings)?;
        let token_type = table("token_type_embeddings", config.type_vocab_size)?;
        Ok(Self {
            word,
            position,
            token_type,
            norm: read_layer_norm(config, reader, "embeddings.LayerNorm", device)?,
            dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
        })
    }

    /// Writes the embeddings under HuggingFace's names.
    pub(crate) fn write(&self, writer: &mut WeightWriter) {
        for (name, table) in [
            ("word_embeddings", &self.word),
            ("position_embeddings", &self.position),
            ("token_type_embeddings", &self.token_type),
        ] {
            writer.put(
                format!("embeddings.{name}.weight"),
                table.weight.val(),
                Layout::AsIs,
            );
        }
        write_layer_norm(&self.norm, writer, "embeddings.LayerNorm");
    }

    /// `[batch, seq]` token ids → `[batch, seq, hidden]`.
    pub(crate) fn forward(&self, input_ids: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        let [_, seq] = input_ids.dims();
        let device = input_ids.device();
        let hidden = self.word.weight.dims()[1];
        let positions = Tensor::<B, 1, Int>::arange(0..seq as i64, &device).reshape([1, seq]);
        // Every token is segment 0: add the first token-type row instead of looking it up.
        let segment = self
            .token_type
            .weight
            .val()
            .slice([0..1, 0..hidden])
            .reshape([1, 1, hidden]);
        let x = self.word.forward(input_ids) + self.position.forward(positions) + segment;
        self.dropout.forward(self.norm.forward(x))
    }
}
