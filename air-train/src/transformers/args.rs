//! [`TrainingArgs`]: the hyperparameters of a `TransformersTrainer` run (HuggingFace
//! `TrainingArguments`' names where they exist), the train loop config a tuner sweeps.

use serde::{Deserialize, Serialize};

use super::{BertConfig, Pooling};
use crate::{TrainError, error::Result};

/// Fine-tuning hyperparameters; every field has a default, and a tuner overrides any of them
/// through `{"train_loop_config": {"learning_rate": …, "num_epochs": …}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainingArgs {
    /// The column of input texts (default `"text"`).
    pub text_column: String,
    /// The column of class labels, integers or strings (default `"label"`).
    pub label_column: String,
    /// Tokens per text after truncation, special tokens included (default 128).
    pub max_length: usize,
    /// Texts per optimizer step on each worker (default 16).
    pub batch_size: usize,
    /// Texts per forward pass when evaluating (default 64).
    pub eval_batch_size: usize,
    /// The peak learning rate of AdamW (default 5e-5).
    pub learning_rate: f64,
    /// Passes over the training data (default 3).
    pub num_epochs: usize,
    /// The share of all steps over which the learning rate rises linearly from 0 to its peak;
    /// it then decays linearly to 0 at the last step (default 0.1).
    pub warmup_ratio: f64,
    /// AdamW's decoupled weight decay (default 0.01).
    pub weight_decay: f64,
    /// Seeds the head's initialisation, the shuffling and dropout (default 42).
    pub seed: u64,
    /// How token states are pooled before the head (default: as the model was pretrained —
    /// its `1_Pooling` config, else mean).
    pub pooling: Option<Pooling>,
}

impl Default for TrainingArgs {
    fn default() -> Self {
        Self {
            text_column: "text".to_owned(),
            label_column: "label".to_owned(),
            max_length: 128,
            batch_size: 16,
            eval_batch_size: 64,
            learning_rate: 5e-5,
            num_epochs: 3,
            warmup_ratio: 0.1,
            weight_decay: 0.01,
            seed: 42,
            pooling: None,
        }
    }
}

impl TrainingArgs {
    /// With these text and label columns.
    pub fn with_columns(mut self, text: &str, label: &str) -> Self {
        self.text_column = text.to_owned();
        self.label_column = label.to_owned();
        self
    }

    /// With this many tokens per text.
    pub fn with_max_length(mut self, tokens: usize) -> Self {
        self.max_length = tokens;
        self
    }

    /// With this many texts per step and worker.
    pub fn with_batch_size(mut self, texts: usize) -> Self {
        self.batch_size = texts;
        self
    }

    /// With this peak learning rate.
    pub fn with_learning_rate(mut self, lr: f64) -> Self {
        self.learning_rate = lr;
        self
    }

    /// With this many epochs.
    pub fn with_num_epochs(mut self, epochs: usize) -> Self {
        self.num_epochs = epochs;
        self
    }

    /// With this warmup share.
    pub fn with_warmup_ratio(mut self, ratio: f64) -> Self {
        self.warmup_ratio = ratio;
        self
    }

    /// With this weight decay.
    pub fn with_weight_decay(mut self, decay: f64) -> Self {
        self.weight_decay = decay;
        self
    }

    /// With this seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Checks every field against the model it will train.
    pub fn validate(&self, model: &BertConfig) -> Result<()> {
        let invalid = |field, value: String, expected: String| {
            Err(TrainError::InvalidConfig {
                field,
                value,
                expected,
            })
        };
        if self.max_length < 2 || self.max_length > model.max_position_embeddings {
            return invalid(
                "max_length",
                self.max_length.to_string(),
                format!(
                    "2 to the model's max_position_embeddings {}",
                    model.max_position_embeddings
                ),
            );
        }
        for (field, value) in [
            ("batch_size", self.batch_size),
            ("eval_batch_size", self.eval_batch_size),
            ("num_epochs", self.num_epochs),
        ] {
            if value == 0 {
                return invalid(field, "0".to_owned(), "at least 1".to_owned());
            }
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return invalid(
                "learning_rate",
                self.learning_rate.to_string(),
                "a positive number such as 5e-5".to_owned(),
            );
        }
        if !(0.0..1.0).contains(&self.warmup_ratio) {
            return invalid(
                "warmup_ratio",
                self.warmup_ratio.to_string(),
                "a share in [0, 1)".to_owned(),
            );
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return invalid(
                "weight_decay",
                self.weight_decay.to_string(),
                "zero or a positive number".to_owned(),
            );
        }
        Ok(())
    }

    /// The learning rate at optimizer step `step` (0-based) of `total`: linear warmup to
    /// [`learning_rate`](Self::learning_rate), then linear decay to 0 (HuggingFace's
    /// `get_linear_schedule_with_warmup`).
    pub fn learning_rate_at(&self, step: u64, total: u64) -> f64 {
        let warmup = (self.warmup_ratio * total as f64).ceil() as u64;
        let lr = self.learning_rate;
        if step < warmup {
            lr * step as f64 / warmup as f64
        } else {
            let left = total.saturating_sub(step) as f64;
            lr * (left / total.saturating_sub(warmup).max(1) as f64).max(0.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_warms_up_then_decays_to_zero() {
        let args = TrainingArgs::default()
            .with_learning_rate(1.0)
            .with_warmup_ratio(0.1);
        assert_eq!(args.learning_rate_at(0, 100), 0.0);
        assert!((args.learning_rate_at(5, 100) - 0.5).abs() < 1e-12);
        assert_eq!(args.learning_rate_at(10, 100), 1.0);
        assert!((args.learning_rate_at(55, 100) - 0.5).abs() < 1e-12);
        assert_eq!(args.learning_rate_at(100, 100), 0.0);
        let flat = args.clone().with_warmup_ratio(0.0);
        assert_eq!(flat.learning_rate_at(0, 4), 1.0);
    }

    #[test]
    fn bad_args_name_the_field() {
        let model = BertConfig::new(100, 8, 1, 2).with_max_position_embeddings(64);
        let cases = [
            (TrainingArgs::default().with_max_length(65), "max_length"),
            (
                TrainingArgs::default()
                    .with_max_length(64)
                    .with_batch_size(0),
                "batch_size",
            ),
            (
                TrainingArgs::default()
                    .with_max_length(64)
                    .with_learning_rate(-1.0),
                "learning_rate",
            ),
            (
                TrainingArgs::default()
                    .with_max_length(64)
                    .with_warmup_ratio(1.0),
                "warmup_ratio",
            ),
        ];
        for (args, field) in cases {
            let e = args.validate(&model).unwrap_err().to_string();
            assert!(e.contains(field), "{e}");
        }
        let unknown: Result<TrainingArgs, _> = serde_json::from_value(serde_json::json!({"lr": 1}));
        assert!(unknown.unwrap_err().to_string().contains("lr"));
    }
}
