//! [`BcConfig`]: behaviour cloning's settings.

use serde::{Deserialize, Serialize};

use crate::{Result, RlError, policy::Activation};

/// Behaviour cloning (offline RL, RLlib's `BC`): fits the policy to the actions of a logged
/// dataset — cross-entropy for discrete actions, squared error for continuous ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct BcConfig {
    /// Seeds weights, minibatch order and evaluation.
    pub seed: u64,
    /// Adam's learning rate.
    pub lr: f64,
    /// Minibatch size.
    pub train_batch_size: usize,
    /// Minibatch updates per training iteration (one pass over the data when unset).
    pub updates_per_iteration: Option<usize>,
    /// The observation: one list or array column, or several numeric columns.
    pub obs_columns: Vec<String>,
    /// The action column: integers for a discrete action space, a list or array column (or a
    /// number) for a continuous one.
    pub action_column: String,
    /// Gradient clipping by norm, per parameter tensor (none when unset).
    pub grad_clip: Option<f64>,
    /// Hidden layer sizes.
    pub fcnet_hiddens: Vec<usize>,
    /// Activation between hidden layers.
    pub fcnet_activation: Activation,
    /// Greedy evaluation episodes every this many iterations, when an environment is given
    /// (none when unset).
    pub evaluation_interval: Option<usize>,
    /// Episodes per evaluation.
    pub evaluation_duration: usize,
}

impl Default for BcConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            lr: 1e-3,
            train_batch_size: 256,
            updates_per_iteration: None,
            obs_columns: vec!["obs".to_owned()],
            action_column: "action".to_owned(),
            grad_clip: None,
            fcnet_hiddens: vec![64, 64],
            fcnet_activation: Activation::Tanh,
            evaluation_interval: Some(1),
            evaluation_duration: 10,
        }
    }
}

impl BcConfig {
    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |field: &'static str, value: String, expected: &str| {
            Err(RlError::InvalidConfig {
                field,
                value,
                expected: expected.to_owned(),
            })
        };
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad("lr", self.lr.to_string(), "a positive learning rate");
        }
        if self.train_batch_size == 0 || self.evaluation_duration == 0 {
            return bad(
                "train_batch_size / evaluation_duration",
                format!("{} / {}", self.train_batch_size, self.evaluation_duration),
                "at least 1",
            );
        }
        if self.updates_per_iteration == Some(0) || self.evaluation_interval == Some(0) {
            return bad(
                "updates_per_iteration / evaluation_interval",
                format!(
                    "{:?} / {:?}",
                    self.updates_per_iteration, self.evaluation_interval
                ),
                "at least 1, or null",
            );
        }
        if self.obs_columns.is_empty() {
            return bad("obs_columns", "[]".to_owned(), "at least one column");
        }
        if self.fcnet_hiddens.contains(&0) {
            return bad(
                "fcnet_hiddens",
                format!("{:?}", self.fcnet_hiddens),
                "no empty layer",
            );
        }
        if matches!(self.grad_clip, Some(c) if c.is_nan() || c <= 0.0) {
            return bad(
                "grad_clip",
                format!("{:?}", self.grad_clip),
                "a positive bound, or null",
            );
        }
        Ok(())
    }
}
