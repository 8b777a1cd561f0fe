//! [`PretrainedModel`]: a BERT-family model as HuggingFace saves it — `config.json`,
//! `tokenizer.json`, `model.safetensors` (and sentence-transformers' `1_Pooling/config.json`,
//! `sentence_bert_config.json`) — read from a directory, a checkpoint or a URI.

use std::{fmt, path::Path};

use ::burn::tensor::backend::Backend;
use air_checkpoint::Bytes;
use air_checkpoint::Checkpoint;

use super::{
    BertConfig, BertModel, Pooling, TextTokenizer,
    encoder::not_encoder_weight,
    weights::{WeightReader, WeightWriter},
};
use crate::{TrainError, error::Result};

/// The model's architecture (HuggingFace's `config.json`).
pub const CONFIG_ENTRY: &str = "config.json";
/// The tokenizer (HuggingFace's `tokenizer.json`).
pub const TOKENIZER_ENTRY: &str = "tokenizer.json";
/// The weights, under HuggingFace's names (safetensors).
pub const WEIGHTS_ENTRY: &str = "model.safetensors";
/// sentence-transformers' pooling config.
const POOLING_ENTRY: &str = "1_Pooling/config.json";
/// sentence-transformers' `max_seq_length`.
const SENTENCE_CONFIG_ENTRY: &str = "sentence_bert_config.json";

/// Prefixes under which a `BertFor…` file nests the encoder.
pub(crate) const ENCODER_PREFIXES: &[&str] = &["bert.", "model."];
/// A tensor every BERT encoder has, to find the prefix by.
pub(crate) const PROBE_TENSOR: &str = "embeddings.word_embeddings.weight";

/// A pretrained BERT-family model: its config, tokenizer, pooling and weights (not yet on a
/// device). Build the encoder with [`PretrainedModel::encoder`].
///
/// ```no_run
/// use air_train::{ComputeDevice, burn::Backend, transformers::PretrainedModel};
///
/// // A sentence-transformers model directory (see scripts/fetch-minilm.sh).
/// let pretrained = PretrainedModel::from_dir("/models/all-MiniLM-L6-v2")?;
/// let device = ComputeDevice::Cpu.inference_device()?;
/// let encoder = pretrained.encoder::<Backend>(&device)?;
/// let batch = pretrained.tokenizer().encode(&["A man is eating food."])?;
/// let (ids, mask) = batch.to_tensors::<Backend>(&device);
/// let states = encoder.forward(ids, mask.clone())?;
/// let sentence = pretrained.pooling().pool(states, mask); // [1, 384]
/// # Ok::<(), air_train::TrainError>(())
/// ```
#[derive(Clone)]
pub struct PretrainedModel {
    config: BertConfig,
    tokenizer: TextTokenizer,
    pooling: Pooling,
    weights: Bytes,
    source: String,
}

impl fmt::Debug for PretrainedModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PretrainedModel")
            .field("source", &self.source)
            .field("config", &self.config)
            .field("tokenizer", &self.tokenizer)
            .field("pooling", &self.pooling)
            .field("weights_bytes", &self.weights.len())
            .finish()
    }
}

impl PretrainedModel {
    /// Reads a HuggingFace (or sentence-transformers) model directory, trusting its files as
    /// they are (such a directory has no checkpoint manifest).
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        if !dir.join(CONFIG_ENTRY).is_file() {
            return Err(TrainError::model(
                format!("loading a pretrained model from {}", dir.display()),
                format!(
                    "{} has no {CONFIG_ENTRY}; expected a HuggingFace model directory with \
                     {CONFIG_ENTRY}, {TOKENIZER_ENTRY} and {WEIGHTS_ENTRY}",
                    dir.display()
                ),
            ));
        }
        Self::from_checkpoint(&Checkpoint::from_directory(dir)?.allow_unverified())
    }

    /// Reads the model from a checkpoint (one written by [`PretrainedModel::save`] or a
    /// `TransformersTrainer`, or any checkpoint holding the three HuggingFace files).
    pub fn from_checkpoint(checkpoint: &Checkpoint) -> Result<Self> {
        let source = checkpoint
            .path()
            .map(|p| p.display().to_string())
            .or_else(|| checkpoint.uri().map(str::to_owned))
            .unwrap_or_else(|| "an in-memory checkpoint".to_owned());
        for entry in [CONFIG_ENTRY, TOKENIZER_ENTRY, WEIGHTS_ENTRY] {
            if !checkpoint.contains(entry) {
                return Err(TrainError::model(
                    format!("loading a pretrained model from {source}"),
                    format!(
                        "it has no {entry}; expected {CONFIG_ENTRY}, {TOKENIZER_ENTRY} and \
                         {WEIGHTS_ENTRY} (HuggingFace's files)"
                    ),
                ));
            }
        }
        let text = |entry: &str| -> Result<String> {
            let bytes = checkpoint.get_verified_bytes(entry)?;
            String::from_utf8(bytes.to_vec())
                .map_err(|e| TrainError::model(format!("reading {entry} from {source}"), e))
        };
        let config = BertConfig::from_json(&text(CONFIG_ENTRY)?)
            .map_err(|e| TrainError::model(format!("reading {CONFIG_ENTRY} from {source}"), e))?;
        let pooling = if checkpoint.contains(POOLING_ENTRY) {
            Pooling::from_sentence_transformers(&text(POOLING_ENTRY)?).ok_or_else(|| {
                TrainError::model(
                    format!("reading {POOLING_ENTRY} from {source}"),
                    "expected pooling_mode_mean_tokens or pooling_mode_cls_token to be true",
                )
            })?
        } else {
            Pooling::Mean
        };
        let max_length = if checkpoint.contains(SENTENCE_CONFIG_ENTRY) {
            let v: serde_json::Value = checkpoint.get_verified_json(SENTENCE_CONFIG_ENTRY)?;
            v.get("max_seq_length").and_then(serde_json::Value::as_u64)
        } else {
            None
        }
        .map_or(config.max_position_embeddings, |n| n as usize)
        .min(config.max_position_embeddings);
        let tokenizer =
            TextTokenizer::from_bytes(&checkpoint.get_verified_bytes(TOKENIZER_ENTRY)?, max_length)
                .map_err(|e| {
                    TrainError::model(format!("reading {TOKENIZER_ENTRY} from {source}"), e)
                })?;
        if tokenizer.vocab_size() > config.vocab_size {
            return Err(TrainError::model(
                format!("loading a pretrained model from {source}"),
                format!(
                    "{TOKENIZER_ENTRY} has {} tokens but {CONFIG_ENTRY} says vocab_size {}: \
                     the tokenizer belongs to another model",
                    tokenizer.vocab_size(),
                    config.vocab_size
                ),
            ));
        }
        Ok(Self {
            config,
            tokenizer,
            pooling,
            weights: checkpoint.get_verified_bytes(WEIGHTS_ENTRY)?,
            source: format!("{source}/{WEIGHTS_ENTRY}"),
        })
    }

    /// Reads the model from a checkpoint URI (`s3://…`, `file://…`) or a local path.
    pub fn from_uri(uri: &str) -> Result<Self> {
        Self::from_checkpoint(&Checkpoint::from_uri(uri)?)
    }

    /// The architecture.
    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    /// The tokenizer, truncating to the model's `max_seq_length` (or its positions).
    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }

    /// The pooling the model was trained with (mean unless its `1_Pooling` says CLS).
    pub fn pooling(&self) -> Pooling {
        self.pooling
    }

    /// With another tokenizer length.
    pub fn with_max_length(mut self, max_length: usize) -> Result<Self> {
        if max_length > self.config.max_position_embeddings {
            return Err(TrainError::InvalidConfig {
                field: "max_length",
                value: max_length.to_string(),
                expected: format!(
                    "at most the model's max_position_embeddings {}",
                    self.config.max_position_embeddings
                ),
            });
        }
        self.tokenizer = self.tokenizer.with_max_length(max_length)?;
        Ok(self)
    }

    /// A reader over the weights file.
    pub(crate) fn reader(&self) -> Result<WeightReader<'_>> {
        WeightReader::new(
            &self.weights,
            self.source.clone(),
            PROBE_TENSOR,
            ENCODER_PREFIXES,
        )
    }

    /// The encoder with the pretrained weights, on `device`. Every tensor is checked against
    /// the config: a missing one or one of another shape is a [`TrainError::Weights`] naming
    /// it; tensors the encoder does not use (a pooler, a task head) are left out with a
    /// debug-level log.
    pub fn encoder<B: Backend>(&self, device: &B::Device) -> Result<BertModel<B>> {
        let mut reader = self.reader()?;
        let model = BertModel::read(&self.config, &mut reader, device)?;
        let unused = reader.unused(not_encoder_weight);
        if !unused.is_empty() {
            tracing::debug!(source = %self.source, ?unused, "weights the encoder does not use");
        }
        Ok(model)
    }

    /// Saves the config, tokenizer and `encoder`'s weights into `checkpoint` (HuggingFace's
    /// file names, so the checkpoint directory is also a HuggingFace model directory).
    pub fn save<B: Backend>(
        &self,
        encoder: &BertModel<B>,
        checkpoint: &mut Checkpoint,
    ) -> Result<()> {
        let mut writer = WeightWriter::default();
        encoder.write(&mut writer);
        save_files(&self.config, &self.tokenizer, writer, checkpoint)
    }
}

/// Puts `config.json`, `tokenizer.json` and the weights in `writer` into `checkpoint`.
pub(crate) fn save_files(
    config: &BertConfig,
    tokenizer: &TextTokenizer,
    writer: WeightWriter,
    checkpoint: &mut Checkpoint,
) -> Result<()> {
    checkpoint.put_bytes(CONFIG_ENTRY, config.to_json().into_bytes())?;
    checkpoint.put_bytes(TOKENIZER_ENTRY, tokenizer.json().to_vec())?;
    checkpoint.put_bytes(WEIGHTS_ENTRY, writer.into_bytes()?)?;
    Ok(())
}
