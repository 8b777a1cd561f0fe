//! [`TransformersPredictor`]: text in, a label and class probabilities (a fine-tuned
//! classifier) or a sentence embedding (an encoder) out (Ray's `TransformersPredictor`).

use std::{fmt, num::NonZeroUsize};

use ::burn::{
    DispatchDevice,
    tensor::{Tensor, activation::softmax},
};
use air_checkpoint::Checkpoint;
use air_data::polars::prelude::*;

use super::{
    BertModel, PretrainedModel, TextClassifier, TextTokenizer, normalize,
    task::{TASK_ENTRY, TaskKind, TextTask, string_column},
};
use crate::{
    ComputeDevice, FromCheckpoint, PREDICTIONS, Predictor, TrainError, burn::Backend,
    error::Result, predictions_frame, predictor::polars_error,
};

/// The column of class probabilities a classifier's predictions carry next to
/// [`PREDICTIONS`]: an `Array(Float32, labels)` in the order of the checkpoint's labels.
pub const PROBABILITIES: &str = "probabilities";

/// Texts per forward pass unless [`TransformersPredictor::with_batch_size`] says otherwise.
const DEFAULT_BATCH: usize = 32;

enum Network {
    Encoder(Box<BertModel<Backend>>),
    Classifier(Box<TextClassifier<Backend>>),
}

/// Predicts from a text column with a transformers checkpoint: a classifier written by
/// `TransformersTrainer` gives [`PREDICTIONS`] (the label, as the label column had it) and
/// [`PROBABILITIES`]; an encoder (a pretrained model directory or checkpoint) gives its
/// sentence embedding as [`PREDICTIONS`] (`Array(Float32, hidden)`).
///
/// Each batch is cut into forward passes of [`with_batch_size`](Self::with_batch_size) texts,
/// grouped by length so that little padding is computed; output rows keep the input order.
pub struct TransformersPredictor {
    network: Network,
    tokenizer: TextTokenizer,
    task: TextTask,
    device: DispatchDevice,
    batch_size: usize,
}

impl fmt::Debug for TransformersPredictor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransformersPredictor")
            .field("task", &self.task)
            .field("tokenizer", &self.tokenizer)
            .field("device", &self.device)
            .field("batch_size", &self.batch_size)
            .finish_non_exhaustive()
    }
}

impl FromCheckpoint for TransformersPredictor {
    fn from_checkpoint(checkpoint: &Checkpoint) -> Result<Self> {
        Self::from_checkpoint_on(checkpoint, ComputeDevice::Cpu)
    }
}

impl TransformersPredictor {
    /// Loads the checkpoint onto `device` (CPU, or a CUDA device with the `cuda` feature). A
    /// checkpoint without `transformers.json` (a plain HuggingFace model) is an embedding
    /// model over the column `"text"`, normalised.
    pub fn from_checkpoint_on(checkpoint: &Checkpoint, device: ComputeDevice) -> Result<Self> {
        let pretrained = PretrainedModel::from_checkpoint(checkpoint)?;
        let task = if checkpoint.contains(TASK_ENTRY) {
            checkpoint
                .get_verified_json::<TextTask>(TASK_ENTRY)
                .map_err(|e| TrainError::model(format!("reading {TASK_ENTRY}"), e))?
        } else {
            embedding_task(&pretrained)
        };
        let pretrained = pretrained.with_max_length(task.max_length)?;
        device.check_available()?;
        let device = device.inference_device()?;
        let network = match &task.kind {
            TaskKind::Embeddings { .. } => Network::Encoder(Box::new(pretrained.encoder(&device)?)),
            TaskKind::Classification { labels, .. } => {
                Network::Classifier(Box::new(TextClassifier::read(
                    pretrained.config(),
                    &mut pretrained.reader()?,
                    labels.len(),
                    task.pooling,
                    &device,
                )?))
            }
        };
        Ok(Self {
            network,
            tokenizer: pretrained.tokenizer().clone(),
            task,
            device,
            batch_size: DEFAULT_BATCH,
        })
    }

    /// An embedding predictor (normalised, over the column `"text"`) for a pretrained model.
    pub fn from_pretrained(pretrained: &PretrainedModel, device: ComputeDevice) -> Result<Self> {
        device.check_available()?;
        let device = device.inference_device()?;
        Ok(Self {
            network: Network::Encoder(Box::new(pretrained.encoder(&device)?)),
            tokenizer: pretrained.tokenizer().clone(),
            task: embedding_task(pretrained),
            device,
            batch_size: DEFAULT_BATCH,
        })
    }

    /// Reads texts from `column` instead of the one saved with the model.
    pub fn with_text_column(mut self, column: &str) -> Self {
        self.task.text_column = column.to_owned();
        self
    }

    /// Texts per forward pass (default 32): larger uses more memory, smaller pads less.
    pub fn with_batch_size(mut self, texts: NonZeroUsize) -> Self {
        self.batch_size = texts.get();
        self
    }

    /// Embeddings: whether to L2-normalise them (default true).
    pub fn with_normalize(mut self, normalize: bool) -> Self {
        if let TaskKind::Embeddings { normalize: n } = &mut self.task.kind {
            *n = normalize;
        }
        self
    }

    /// The task saved with the model.
    pub fn task(&self) -> &TextTask {
        &self.task
    }

    /// The model's outputs for `texts`: `(rows, width, values)`, row-major, in input order —
    /// the embedding, or the class probabilities of a classifier.
    pub fn outputs<S: AsRef<str>>(&self, texts: &[S]) -> Result<(usize, Vec<f32>)> {
        // Longest first, so that each forward pass pads to a similar length.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(texts[i].as_ref().len()));
        let mut width = 0;
        let mut sorted: Vec<f32> = Vec::new();
        for chunk in order.chunks(self.batch_size) {
            let batch: Vec<&str> = chunk.iter().map(|&i| texts[i].as_ref()).collect();
            let tokens = self.tokenizer.encode(&batch)?;
            let (ids, mask) = tokens.to_tensors::<Backend>(&self.device);
            let out: Tensor<Backend, 2> = match (&self.network, &self.task.kind) {
                (Network::Encoder(encoder), TaskKind::Embeddings { normalize: n }) => {
                    let pooled = self
                        .task
                        .pooling
                        .pool(encoder.forward(ids, mask.clone())?, mask);
                    if *n { normalize(pooled) } else { pooled }
                }
                (Network::Classifier(classifier), _) => softmax(classifier.forward(ids, mask)?, 1),
                (Network::Encoder(_), TaskKind::Classification { .. }) => {
                    unreachable!("a classification task always builds a classifier")
                }
            };
            width = out.dims()[1];
            sorted.extend(
                out.into_data()
                    .convert::<f32>()
                    .to_vec::<f32>()
                    .map_err(|e| TrainError::model("reading outputs", format!("{e:?}")))?,
            );
        }
        let mut values = vec![0.0; sorted.len()];
        for (k, &i) in order.iter().enumerate() {
            values[i * width..(i + 1) * width].copy_from_slice(&sorted[k * width..(k + 1) * width]);
        }
        Ok((width, values))
    }

    fn texts(&self, batch: &DataFrame) -> Result<Vec<String>> {
        string_column(batch, &self.task.text_column, "text_column")
    }
}

fn embedding_task(pretrained: &PretrainedModel) -> TextTask {
    TextTask {
        kind: TaskKind::Embeddings { normalize: true },
        pooling: pretrained.pooling(),
        text_column: "text".to_owned(),
        max_length: pretrained.tokenizer().max_length(),
    }
}

impl Predictor for TransformersPredictor {
    fn predict(&self, batch: DataFrame) -> Result<DataFrame> {
        let texts = self.texts(&batch)?;
        let rows = texts.len();
        let (width, values) = self.outputs(&texts)?;
        match &self.task.kind {
            TaskKind::Embeddings { .. } => predictions_frame(values, rows, width),
            kind @ TaskKind::Classification { .. } => {
                let classes: Vec<usize> = values
                    .chunks(width.max(1))
                    .map(|p| {
                        p.iter()
                            .enumerate()
                            .fold((0, f32::NEG_INFINITY), |best, (j, &v)| {
                                if v > best.1 { (j, v) } else { best }
                            })
                            .0
                    })
                    .collect();
                let labels = kind.label_series(&classes)?.into_column();
                let mut probabilities = predictions_frame(values, rows, width)?
                    .drop_in_place(PREDICTIONS)
                    .map_err(|e| polars_error("building probabilities", e))?;
                probabilities.rename(PROBABILITIES.into());
                DataFrame::new(rows, vec![labels, probabilities])
                    .map_err(|e| polars_error("building predictions", e))
            }
        }
    }

    fn input_columns(&self) -> Option<Vec<String>> {
        Some(vec![self.task.text_column.clone()])
    }
}
