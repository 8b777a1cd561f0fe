//! A tuner's trial config merged into the trainer's own (`train_loop_config`,
//! `scaling_config`, and a trial's own `preprocessor` and `datasets`).

use serde_json::Value;

use super::{prepare::Variant, *};
use crate::{ScalingConfig, TrainError, error::Result};

impl DataParallelTrainer {
    pub(super) fn merged(&self, config: &Value) -> Result<(Value, ScalingConfig)> {
        self.merged_variant(config).map(|(l, s, _)| (l, s))
    }

    pub(super) fn merged_variant(&self, config: &Value) -> Result<(Value, ScalingConfig, Variant)> {
        let Value::Object(trial) = config else {
            return Err(TrainError::InvalidConfig {
                field: "trial config",
                value: config.to_string(),
                expected: "a JSON object".to_owned(),
            });
        };
        let mut loop_config = self.train_loop_config.clone();
        let mut scaling = self.scaling.clone();
        let mut variant = Variant::default();
        for (key, value) in trial {
            match key.as_str() {
                "train_loop_config" => merge_json(&mut loop_config, value),
                "scaling_config" => {
                    let mut s =
                        serde_json::to_value(&scaling).map_err(|e| TrainError::InvalidConfig {
                            field: "scaling_config",
                            value: e.to_string(),
                            expected: "a serialisable config".to_owned(),
                        })?;
                    merge_json(&mut s, value);
                    scaling = serde_json::from_value(s.clone()).map_err(|e| {
                        TrainError::InvalidConfig {
                            field: "scaling_config",
                            value: s.to_string(),
                            expected: format!("ScalingConfig fields ({e})"),
                        }
                    })?;
                    scaling.validate()?;
                }
                "preprocessor" => variant.preprocessor = Some(value.clone()),
                "datasets" => {
                    variant.datasets =
                        Some(serde_json::from_value(value.clone()).map_err(|e| {
                            TrainError::InvalidConfig {
                                field: "datasets",
                                value: value.to_string(),
                                expected: format!(
                                    "an object of dataset role → dataset name or file ({e})"
                                ),
                            }
                        })?);
                }
                other => {
                    return Err(TrainError::InvalidConfig {
                        field: "trial config",
                        value: format!("key {other:?}"),
                        expected: "\"train_loop_config\", \"scaling_config\", \"preprocessor\" \
                                   or \"datasets\""
                            .to_owned(),
                    });
                }
            }
        }
        Ok((loop_config, scaling, variant))
    }
}

/// Only the `"scaling_config"` entry of a trial config (what a wrapping trainer's resources
/// depend on; its other keys mean something to the wrapper only).
#[cfg(any(feature = "gbdt", feature = "sklearn"))]
pub(crate) fn scaling_part(config: &Value) -> Value {
    match config.get("scaling_config") {
        Some(s) => serde_json::json!({ "scaling_config": s }),
        None => serde_json::json!({}),
    }
}

/// Deep-merges `patch` into `base` (objects merge key by key; anything else replaces): how a
/// trial's config is merged into a trainer's, for trainables that merge their own parts.
///
/// ```
/// let mut base = serde_json::json!({"lr": 0.1, "model": {"hidden": 8, "layers": 2}});
/// air_train::merge_json(&mut base, &serde_json::json!({"model": {"hidden": 16}}));
/// assert_eq!(base, serde_json::json!({"lr": 0.1, "model": {"hidden": 16, "layers": 2}}));
/// ```
pub fn merge_json(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                merge_json(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, p) => *b = p.clone(),
    }
}
