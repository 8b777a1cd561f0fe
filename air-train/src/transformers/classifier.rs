//! [`TextClassifier`]: an encoder, a pooling and a linear head (HuggingFace's
//! `BertForSequenceClassification`, pooled as the encoder was pretrained: mean by default).

use ::burn::{
    module::{Module, Param},
    nn::{Dropout, DropoutConfig, Linear, LinearConfig},
    tensor::{Bool, Int, Tensor, activation::log_softmax, backend::Backend},
};

use super::{
    BertConfig, BertModel, Pooling,
    encoder::not_encoder_weight,
    layer::write_linear,
    weights::{Layout, WeightReader, WeightWriter},
};
use crate::{TrainError, error::Result};

/// The head's weight names in the safetensors file (HuggingFace's).
const HEAD: &str = "classifier";

/// An encoder with a classification head: `[batch, seq]` tokens → `[batch, labels]` logits.
#[derive(Module, Debug)]
pub struct TextClassifier<B: Backend> {
    encoder: BertModel<B>,
    dropout: Dropout,
    head: Linear<B>,
    #[module(skip)]
    pooling: Pooling,
}

impl<B: Backend> TextClassifier<B> {
    /// `encoder` with a freshly initialised head over `labels` classes.
    pub fn new(
        encoder: BertModel<B>,
        config: &BertConfig,
        labels: usize,
        pooling: Pooling,
        device: &B::Device,
    ) -> Self {
        Self {
            encoder,
            dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
            head: LinearConfig::new(config.hidden_size, labels).init(device),
            pooling,
        }
    }

    /// The encoder and the head saved by [`TextClassifier::write`].
    pub(crate) fn read(
        config: &BertConfig,
        reader: &mut WeightReader<'_>,
        labels: usize,
        pooling: Pooling,
        device: &B::Device,
    ) -> Result<Self> {
        let encoder = BertModel::read(config, reader, device)?;
        let weight = reader.tensor::<B, 2>(
            &format!("{HEAD}.weight"),
            [config.hidden_size, labels],
            Layout::Transposed,
            device,
        )?;
        let bias =
            reader.tensor::<B, 1>(&format!("{HEAD}.bias"), [labels], Layout::AsIs, device)?;
        let mut head = LinearConfig::new(config.hidden_size, labels).init(device);
        head.weight = Param::from_tensor(weight);
        head.bias = Some(Param::from_tensor(bias));
        let unused = reader.unused(not_encoder_weight);
        if !unused.is_empty() {
            return Err(TrainError::Weights {
                file: reader.source().to_owned(),
                tensor: unused.join(", "),
                problem: "is not part of a text classifier (encoder and `classifier` head); \
                          the checkpoint holds another kind of model"
                    .to_owned(),
            });
        }
        Ok(Self {
            encoder,
            dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
            head,
            pooling,
        })
    }

    /// Every weight under HuggingFace's names, the head as `classifier.*`.
    pub(crate) fn write(&self, writer: &mut WeightWriter) {
        self.encoder.write(writer);
        write_linear(&self.head, writer, HEAD);
    }

    /// The encoder.
    pub fn encoder(&self) -> &BertModel<B> {
        &self.encoder
    }

    /// Classes.
    pub fn num_labels(&self) -> usize {
        self.head.weight.dims()[1]
    }

    /// `[batch, seq]` token ids and mask → `[batch, labels]` logits.
    pub fn forward(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Bool>,
    ) -> Result<Tensor<B, 2>> {
        let states = self.encoder.forward(input_ids, attention_mask.clone())?;
        let pooled = self.pooling.pool(states, attention_mask);
        Ok(self.head.forward(self.dropout.forward(pooled)))
    }
}

/// Mean cross-entropy of `logits` against one-hot `targets` (`[batch, labels]`, 0/1), and the
/// per-row loss sum (for averaging over a whole dataset).
pub(crate) fn cross_entropy<B: Backend>(
    logits: Tensor<B, 2>,
    targets: Tensor<B, 2>,
) -> Tensor<B, 1> {
    let [rows, _] = logits.dims();
    (log_softmax(logits, 1) * targets)
        .sum()
        .neg()
        .div_scalar(rows.max(1) as f32)
}
