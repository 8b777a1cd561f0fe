//! [`DqnConfig`]: DQN's settings, under RLlib's names (and SB3's for the training cadence).

use serde::{Deserialize, Serialize};

use crate::{Result, algo::check, policy::Activation};

/// How the temporal-difference error is turned into a loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum TdLoss {
    /// Huber (smooth L1) with δ = 1.
    #[default]
    Huber,
    /// Squared error.
    Mse,
}

/// DQN (Mnih et al., 2015) with double Q-learning (van Hasselt et al., 2016): a replay
/// buffer, a target network copied every `target_network_update_freq` steps, and ε-greedy
/// exploration annealed linearly. Discrete action spaces only.
///
/// Defaults suit CartPole; every field can be set from a JSON trial config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct DqnConfig {
    /// Seeds weights, exploration, replay sampling and environment resets.
    pub seed: u64,
    /// Adam's learning rate.
    pub lr: f64,
    /// Discount.
    pub gamma: f64,
    /// Replay capacity in transitions.
    pub buffer_size: usize,
    /// Environment steps before the first update.
    pub learning_starts: u64,
    /// Transitions per update.
    pub train_batch_size: usize,
    /// Environment steps between rounds of updates.
    pub train_freq: u64,
    /// Updates per round.
    pub gradient_steps: usize,
    /// Environment steps between copies of the online network into the target network.
    pub target_network_update_freq: u64,
    /// Double Q-learning: the online network picks the next action, the target network
    /// values it.
    pub double_q: bool,
    /// ε at the start.
    pub initial_epsilon: f64,
    /// ε after `epsilon_timesteps`.
    pub final_epsilon: f64,
    /// Environment steps over which ε falls linearly.
    pub epsilon_timesteps: u64,
    /// Environment copies per rollout worker.
    pub num_envs_per_worker: usize,
    /// Environment steps per training iteration.
    pub timesteps_per_iteration: u64,
    /// Gradient clipping by norm, per parameter tensor (none when unset).
    pub grad_clip: Option<f64>,
    /// The TD loss.
    pub td_error_loss_fn: TdLoss,
    /// Hidden layer sizes of the Q network.
    pub fcnet_hiddens: Vec<usize>,
    /// Activation between hidden layers.
    pub fcnet_activation: Activation,
    /// Greedy evaluation every this many iterations (none when unset).
    pub evaluation_interval: Option<usize>,
    /// Episodes per evaluation.
    pub evaluation_duration: usize,
}

impl Default for DqnConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            lr: 2.3e-3,
            gamma: 0.99,
            buffer_size: 100_000,
            learning_starts: 1000,
            train_batch_size: 64,
            train_freq: 256,
            gradient_steps: 128,
            target_network_update_freq: 10,
            double_q: true,
            initial_epsilon: 1.0,
            final_epsilon: 0.04,
            epsilon_timesteps: 8000,
            num_envs_per_worker: 1,
            timesteps_per_iteration: 1000,
            grad_clip: Some(10.0),
            td_error_loss_fn: TdLoss::Huber,
            fcnet_hiddens: vec![64, 64],
            fcnet_activation: Activation::Relu,
            evaluation_interval: None,
            evaluation_duration: 10,
        }
    }
}

impl DqnConfig {
    pub(crate) fn validate(&self) -> Result<()> {
        check::learning_rate(self.lr)?;
        check::unit_interval(&[
            ("gamma", self.gamma),
            ("initial_epsilon", self.initial_epsilon),
            ("final_epsilon", self.final_epsilon),
        ])?;
        check::at_least_one(&[
            ("buffer_size", self.buffer_size as u64),
            ("train_batch_size", self.train_batch_size as u64),
            ("train_freq", self.train_freq),
            ("gradient_steps", self.gradient_steps as u64),
            (
                "target_network_update_freq",
                self.target_network_update_freq,
            ),
            ("num_envs_per_worker", self.num_envs_per_worker as u64),
            ("timesteps_per_iteration", self.timesteps_per_iteration),
            ("evaluation_duration", self.evaluation_duration as u64),
        ])?;
        check::hidden_layers(&self.fcnet_hiddens)?;
        check::optional_positive(&[("grad_clip", self.grad_clip)])?;
        check::optional_interval(&[("evaluation_interval", self.evaluation_interval)])
    }

    /// ε at `timestep`.
    pub(crate) fn epsilon(&self, timestep: u64) -> f64 {
        let f = (timestep as f64 / self.epsilon_timesteps as f64).min(1.0);
        (self.final_epsilon - self.initial_epsilon).mul_add(f, self.initial_epsilon)
    }
}
