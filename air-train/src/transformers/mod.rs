//! Pretrained transformers on burn (feature `transformers`): HuggingFace's place in Ray AIR
//! (`TransformersTrainer`, `TransformersPredictor`).
//!
//! - [`PretrainedModel`]: a BERT-family model read from a HuggingFace or sentence-transformers
//!   directory, a checkpoint or a URI — [`BertConfig`] from `config.json`, [`TextTokenizer`]
//!   (HuggingFace's own tokenizer, the `tokenizers` crate) from `tokenizer.json`, weights from
//!   `model.safetensors` checked tensor by tensor.
//! - [`BertModel`]: the encoder (embeddings, post-norm self-attention layers, exact GELU) on
//!   the workspace's one burn backend, CPU or CUDA; [`Pooling`] and [`normalize`] turn its
//!   states into sentence embeddings.
//! - [`TransformersTrainer`]: fine-tunes the encoder with a classification head
//!   ([`TextClassifier`]) on a dataset's text and label columns, data-parallel, with AdamW,
//!   warmup and linear decay ([`TrainingArgs`]), evaluation each epoch and data-only
//!   checkpoints (HuggingFace's files plus [`TextTask`]).
//! - [`TransformersPredictor`]: a checkpoint's labels and probabilities, or embeddings, for
//!   `BatchPredictor` and `PredictorDeployment`.
//!
//! Checked against HuggingFace: token ids equal the Python tokenizer's and embeddings equal
//! sentence-transformers' (see `air-train/tests/transformers.rs` and its fixture script).

mod args;
mod classifier;
mod config;
mod embeddings;
mod encoder;
mod layer;
mod pooling;
mod predictor;
mod pretrained;
mod task;
mod tokenizer;
mod trainer;
mod weights;

/// The [`PREDICTOR_KIND_KEY`](crate::PREDICTOR_KIND_KEY) of a fine-tuned text classifier's
/// checkpoint.
pub const PREDICTOR_KIND: &str = "transformers";

pub use args::TrainingArgs;
pub use classifier::TextClassifier;
pub use config::{BertConfig, HiddenAct};
pub use embeddings::BertEmbeddings;
pub use encoder::BertModel;
pub use layer::BertLayer;
pub use pooling::{Pooling, normalize};
pub use predictor::{PROBABILITIES, TransformersPredictor};
pub use pretrained::{CONFIG_ENTRY, PretrainedModel, TOKENIZER_ENTRY, WEIGHTS_ENTRY};
pub use task::{LabelType, TASK_ENTRY, TaskKind, TextTask};
pub use tokenizer::{TextTokenizer, TokenBatch};
pub use trainer::TransformersTrainer;
