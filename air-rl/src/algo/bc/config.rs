//! [`BcConfig`]: behaviour cloning's settings.

use serde::{Deserialize, Serialize};

use crate::{Result, algo::check, policy::Activation};

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
        check::learning_rate(self.lr)?;
        check::at_least_one(&[
            ("train_batch_size", self.train_batch_size as u64),
            ("evaluation_duration", self.evaluation_duration as u64),
            ("obs_columns", self.obs_columns.len() as u64),
        ])?;
        check::optional_interval(&[
            ("updates_per_iteration", self.updates_per_iteration),
            ("evaluation_interval", self.evaluation_interval),
        ])?;
        check::hidden_layers(&self.fcnet_hiddens)?;
        check::optional_positive(&[("grad_clip", self.grad_clip)])
    }
}
