//! [`BertConfig`]: a BERT-family encoder's architecture, read from the model's `config.json`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{TrainError, error::Result};

/// The activation of the encoder's feed-forward block (`hidden_act` in `config.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HiddenAct {
    /// The exact GELU (`0.5 x (1 + erf(x / √2))`): HuggingFace's `"gelu"`.
    Gelu,
    /// ReLU.
    Relu,
}

/// A BERT-family encoder's architecture: the fields of a HuggingFace `config.json` that shape
/// the weights (others, such as `architectures` or `transformers_version`, are ignored).
///
/// Read it with [`BertConfig::from_file`] (or [`BertConfig::from_json`]); build one for a test
/// with [`BertConfig::new`] and the `with_*` setters. [`BertConfig::validate`] runs on every
/// read and before a model is built.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BertConfig {
    /// Tokens in the vocabulary (rows of the word embedding).
    pub vocab_size: usize,
    /// Width of every hidden state.
    pub hidden_size: usize,
    /// Encoder layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer; divides `hidden_size`.
    pub num_attention_heads: usize,
    /// Width of the feed-forward block.
    pub intermediate_size: usize,
    /// Activation of the feed-forward block.
    pub hidden_act: HiddenAct,
    /// Dropout on embeddings and sub-layer outputs while training.
    pub hidden_dropout_prob: f64,
    /// Dropout on attention probabilities in HuggingFace; read for completeness, not applied
    /// (burn's fused attention has no dropout).
    pub attention_probs_dropout_prob: f64,
    /// Longest sequence the position embedding covers.
    pub max_position_embeddings: usize,
    /// Segment (token type) ids.
    pub type_vocab_size: usize,
    /// Epsilon of every layer norm.
    pub layer_norm_eps: f64,
    /// Id of the padding token.
    pub pad_token_id: usize,
}

/// The `config.json` fields kept; every other field is read and dropped.
#[derive(Deserialize)]
struct HfConfig {
    model_type: Option<String>,
    vocab_size: usize,
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    #[serde(default = "default_act")]
    hidden_act: String,
    #[serde(default = "default_dropout")]
    hidden_dropout_prob: f64,
    #[serde(default = "default_dropout")]
    attention_probs_dropout_prob: f64,
    #[serde(default = "default_positions")]
    max_position_embeddings: usize,
    #[serde(default = "default_types")]
    type_vocab_size: usize,
    #[serde(default = "default_eps")]
    layer_norm_eps: f64,
    #[serde(default)]
    pad_token_id: Option<usize>,
    #[serde(default)]
    position_embedding_type: Option<String>,
}

fn default_act() -> String {
    "gelu".to_owned()
}
fn default_dropout() -> f64 {
    0.1
}
fn default_positions() -> usize {
    512
}
fn default_types() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}

/// The model types whose encoders have BERT's layout and weight names.
const BERT_FAMILY: &[&str] = &["bert"];

impl BertConfig {
    /// An encoder of `layers` layers of width `hidden_size` with `heads` heads over a
    /// vocabulary of `vocab_size`; the rest as in BERT (feed-forward 4× wide, GELU, 512
    /// positions, 2 token types, dropout 0.1, epsilon 1e-12, padding id 0).
    pub fn new(vocab_size: usize, hidden_size: usize, layers: usize, heads: usize) -> Self {
        Self {
            vocab_size,
            hidden_size,
            num_hidden_layers: layers,
            num_attention_heads: heads,
            intermediate_size: 4 * hidden_size,
            hidden_act: HiddenAct::Gelu,
            hidden_dropout_prob: 0.1,
            attention_probs_dropout_prob: 0.1,
            max_position_embeddings: 512,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            pad_token_id: 0,
        }
    }

    /// With this feed-forward width.
    pub fn with_intermediate_size(mut self, size: usize) -> Self {
        self.intermediate_size = size;
        self
    }

    /// With this hidden dropout.
    pub fn with_hidden_dropout(mut self, p: f64) -> Self {
        self.hidden_dropout_prob = p;
        self
    }

    /// With this many positions.
    pub fn with_max_position_embeddings(mut self, positions: usize) -> Self {
        self.max_position_embeddings = positions;
        self
    }

    /// Reads a HuggingFace `config.json`.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| TrainError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_json(&text).map_err(|e| match e {
            TrainError::InvalidConfig {
                field,
                value,
                expected,
            } => TrainError::InvalidConfig {
                field,
                value: format!("{value} (in {})", path.display()),
                expected,
            },
            other => other,
        })
    }

    /// Parses the text of a HuggingFace `config.json` (or one written by
    /// [`BertConfig::to_json`]).
    pub fn from_json(text: &str) -> Result<Self> {
        let hf: HfConfig = serde_json::from_str(text).map_err(|e| TrainError::InvalidConfig {
            field: "config.json",
            value: e.to_string(),
            expected: "a HuggingFace model config with vocab_size, hidden_size, \
                           num_hidden_layers, num_attention_heads and intermediate_size"
                .to_owned(),
        })?;
        if let Some(kind) = &hf.model_type
            && !BERT_FAMILY.contains(&kind.as_str())
        {
            return Err(TrainError::InvalidConfig {
                field: "model_type",
                value: format!("{kind:?}"),
                expected: format!("one of {BERT_FAMILY:?} (a BERT-family encoder)"),
            });
        }
        if let Some(kind) = &hf.position_embedding_type
            && kind != "absolute"
        {
            return Err(TrainError::InvalidConfig {
                field: "position_embedding_type",
                value: format!("{kind:?}"),
                expected: "\"absolute\" (relative position embeddings are not supported)"
                    .to_owned(),
            });
        }
        let hidden_act = match hf.hidden_act.as_str() {
            "gelu" => HiddenAct::Gelu,
            "relu" => HiddenAct::Relu,
            other => {
                return Err(TrainError::InvalidConfig {
                    field: "hidden_act",
                    value: format!("{other:?}"),
                    expected: "\"gelu\" or \"relu\"".to_owned(),
                });
            }
        };
        let config = Self {
            vocab_size: hf.vocab_size,
            hidden_size: hf.hidden_size,
            num_hidden_layers: hf.num_hidden_layers,
            num_attention_heads: hf.num_attention_heads,
            intermediate_size: hf.intermediate_size,
            hidden_act,
            hidden_dropout_prob: hf.hidden_dropout_prob,
            attention_probs_dropout_prob: hf.attention_probs_dropout_prob,
            max_position_embeddings: hf.max_position_embeddings,
            type_vocab_size: hf.type_vocab_size,
            layer_norm_eps: hf.layer_norm_eps,
            pad_token_id: hf.pad_token_id.unwrap_or(0),
        };
        config.validate()?;
        Ok(config)
    }

    /// The config as HuggingFace `config.json` text (`model_type: "bert"`), which
    /// [`BertConfig::from_json`] and HuggingFace's `BertConfig` both read.
    pub fn to_json(&self) -> String {
        let mut value = serde_json::to_value(self).expect("a config serialises");
        value["model_type"] = "bert".into();
        value["architectures"] = serde_json::json!(["BertModel"]);
        value["position_embedding_type"] = "absolute".into();
        serde_json::to_string_pretty(&value).expect("a JSON value serialises")
    }

    /// Width of one attention head.
    pub fn head_size(&self) -> usize {
        self.hidden_size / self.num_attention_heads.max(1)
    }

    /// Checks every field: sizes above zero, heads dividing the width, probabilities in
    /// `[0, 1)`, a padding id inside the vocabulary.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err(TrainError::InvalidConfig {
                    field,
                    value: "0".to_owned(),
                    expected: "at least 1".to_owned(),
                });
            }
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(TrainError::InvalidConfig {
                field: "num_attention_heads",
                value: self.num_attention_heads.to_string(),
                expected: format!("a divisor of hidden_size {}", self.hidden_size),
            });
        }
        for (field, p) in [
            ("hidden_dropout_prob", self.hidden_dropout_prob),
            (
                "attention_probs_dropout_prob",
                self.attention_probs_dropout_prob,
            ),
        ] {
            if !(0.0..1.0).contains(&p) {
                return Err(TrainError::InvalidConfig {
                    field,
                    value: p.to_string(),
                    expected: "a probability in [0, 1)".to_owned(),
                });
            }
        }
        if !(self.layer_norm_eps > 0.0 && self.layer_norm_eps.is_finite()) {
            return Err(TrainError::InvalidConfig {
                field: "layer_norm_eps",
                value: self.layer_norm_eps.to_string(),
                expected: "a small positive number such as 1e-12".to_owned(),
            });
        }
        if self.pad_token_id >= self.vocab_size {
            return Err(TrainError::InvalidConfig {
                field: "pad_token_id",
                value: self.pad_token_id.to_string(),
                expected: format!("an id below vocab_size {}", self.vocab_size),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINILM: &str = r#"{
      "_name_or_path": "nreimers/MiniLM-L6-H384-uncased", "architectures": ["BertModel"],
      "attention_probs_dropout_prob": 0.1, "gradient_checkpointing": false, "hidden_act": "gelu",
      "hidden_dropout_prob": 0.1, "hidden_size": 384, "initializer_range": 0.02,
      "intermediate_size": 1536, "layer_norm_eps": 1e-12, "max_position_embeddings": 512,
      "model_type": "bert", "num_attention_heads": 12, "num_hidden_layers": 6, "pad_token_id": 0,
      "position_embedding_type": "absolute", "transformers_version": "4.8.2",
      "type_vocab_size": 2, "use_cache": true, "vocab_size": 30522
    }"#;

    #[test]
    fn reads_minilm_config_and_round_trips() {
        let c = BertConfig::from_json(MINILM).unwrap();
        assert_eq!(
            c,
            BertConfig::new(30522, 384, 6, 12).with_intermediate_size(1536)
        );
        assert_eq!(c.head_size(), 32);
        assert_eq!(BertConfig::from_json(&c.to_json()).unwrap(), c);
    }

    #[test]
    fn bad_configs_name_the_field() {
        let gpt = MINILM.replace("\"bert\"", "\"gpt2\"");
        let e = BertConfig::from_json(&gpt).unwrap_err().to_string();
        assert!(e.contains("model_type") && e.contains("gpt2"), "{e}");
        let heads = MINILM.replace("\"num_attention_heads\": 12", "\"num_attention_heads\": 5");
        let e = BertConfig::from_json(&heads).unwrap_err().to_string();
        assert!(
            e.contains("num_attention_heads") && e.contains("384"),
            "{e}"
        );
        let act = MINILM.replace("\"hidden_act\": \"gelu\"", "\"hidden_act\": \"swish\"");
        let e = BertConfig::from_json(&act).unwrap_err().to_string();
        assert!(e.contains("hidden_act") && e.contains("swish"), "{e}");
        let e = BertConfig::from_json("{\"hidden_size\": 3}")
            .unwrap_err()
            .to_string();
        assert!(e.contains("config.json") && e.contains("vocab_size"), "{e}");
        let e = BertConfig::from_file("/nonexistent/config.json")
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/config.json"), "{e}");
    }
}
