//! [`PpoConfig`]: PPO's settings, under RLlib's names, validated once.

use serde::{Deserialize, Serialize};

use crate::{Result, RlError, algo::Schedule, policy::Activation};

/// Whether observations are normalised (RLlib's `observation_filter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ObservationFilter {
    /// Observations as the environment gives them.
    #[default]
    NoFilter,
    /// `(obs − mean) / std`, clipped to ±10, with running statistics saved in the checkpoint.
    MeanStdFilter,
}

/// PPO (Schulman et al., 2017): clipped surrogate objective, GAE, value loss, entropy bonus,
/// minibatch epochs; a categorical policy for `Discrete` actions, a diagonal Gaussian (with a
/// learned state-independent log std) for `Box` actions.
///
/// Defaults suit the classic-control tasks; every field can be set from a JSON trial config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct PpoConfig {
    /// Seeds weights, action sampling, minibatch order and environment resets.
    pub seed: u64,
    /// Adam's learning rate (when `lr_schedule` is not set).
    pub lr: f64,
    /// The learning rate by timestep: `[[0, 3e-4], [100000, 0]]`.
    pub lr_schedule: Option<Schedule>,
    /// Discount.
    pub gamma: f64,
    /// GAE's λ.
    pub lambda: f64,
    /// The surrogate's clip ε.
    pub clip_param: f64,
    /// Clips the value prediction's change from the rollout's to ±this (none when unset).
    pub vf_clip_param: Option<f64>,
    /// The value loss's weight.
    pub vf_loss_coeff: f64,
    /// The entropy bonus's weight.
    pub entropy_coeff: f64,
    /// Environment steps per training iteration (over all copies).
    pub train_batch_size: usize,
    /// Minibatch size of the updates.
    pub sgd_minibatch_size: usize,
    /// Epochs over each training batch.
    pub num_sgd_iter: usize,
    /// Environment copies per rollout worker.
    pub num_envs_per_worker: usize,
    /// Gradient clipping by norm, per parameter tensor (burn's clipping; none when unset).
    pub grad_clip: Option<f64>,
    /// Normalises advantages over each training batch.
    pub normalize_advantages: bool,
    /// Observation normalisation.
    pub observation_filter: ObservationFilter,
    /// Hidden layer sizes of the policy and value networks (separate networks).
    pub fcnet_hiddens: Vec<usize>,
    /// Activation between hidden layers.
    pub fcnet_activation: Activation,
    /// Runs greedy evaluation episodes every this many iterations (none when unset), reported
    /// as `evaluation/episode_reward_mean` and friends.
    pub evaluation_interval: Option<usize>,
    /// Episodes per evaluation.
    pub evaluation_duration: usize,
}

impl Default for PpoConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            lr: 3e-4,
            lr_schedule: None,
            gamma: 0.99,
            lambda: 0.95,
            clip_param: 0.2,
            vf_clip_param: None,
            vf_loss_coeff: 0.5,
            entropy_coeff: 0.0,
            train_batch_size: 2048,
            sgd_minibatch_size: 64,
            num_sgd_iter: 10,
            num_envs_per_worker: 8,
            grad_clip: Some(0.5),
            normalize_advantages: true,
            observation_filter: ObservationFilter::NoFilter,
            fcnet_hiddens: vec![64, 64],
            fcnet_activation: Activation::Tanh,
            evaluation_interval: None,
            evaluation_duration: 10,
        }
    }
}

impl PpoConfig {
    /// Checks every field; `envs` is the number of environment copies, which must divide
    /// `train_batch_size`.
    pub(crate) fn validate(&self, envs: usize) -> Result<()> {
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
        if let Some(s) = &self.lr_schedule {
            s.validate("lr_schedule")?;
        }
        for (field, v) in [("gamma", self.gamma), ("lambda", self.lambda)] {
            if !(0.0..=1.0).contains(&v) {
                return bad(field, v.to_string(), "a value in [0, 1]");
            }
        }
        if !(self.clip_param > 0.0 && self.clip_param.is_finite()) {
            return bad(
                "clip_param",
                self.clip_param.to_string(),
                "a positive ε such as 0.2",
            );
        }
        for (field, v) in [
            ("vf_loss_coeff", self.vf_loss_coeff),
            ("entropy_coeff", self.entropy_coeff),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return bad(field, v.to_string(), "a non-negative weight");
            }
        }
        for (field, v) in [
            ("train_batch_size", self.train_batch_size),
            ("sgd_minibatch_size", self.sgd_minibatch_size),
            ("num_sgd_iter", self.num_sgd_iter),
            ("num_envs_per_worker", self.num_envs_per_worker),
            ("evaluation_duration", self.evaluation_duration),
        ] {
            if v == 0 {
                return bad(field, "0".to_owned(), "at least 1");
            }
        }
        if !self.train_batch_size.is_multiple_of(envs) {
            return bad(
                "train_batch_size",
                self.train_batch_size.to_string(),
                &format!(
                    "a multiple of the number of environment copies ({envs} = \
                     num_envs_per_worker × rollout workers), so every copy steps equally often"
                ),
            );
        }
        if self.sgd_minibatch_size > self.train_batch_size {
            return bad(
                "sgd_minibatch_size",
                self.sgd_minibatch_size.to_string(),
                &format!("at most train_batch_size ({})", self.train_batch_size),
            );
        }
        if self.fcnet_hiddens.contains(&0) {
            return bad(
                "fcnet_hiddens",
                format!("{:?}", self.fcnet_hiddens),
                "no empty layer",
            );
        }
        if matches!(self.grad_clip, Some(c) if c.is_nan() || c <= 0.0)
            || matches!(self.vf_clip_param, Some(c) if c.is_nan() || c <= 0.0)
        {
            return bad(
                "grad_clip / vf_clip_param",
                format!("{:?} / {:?}", self.grad_clip, self.vf_clip_param),
                "a positive bound, or null for none",
            );
        }
        if self.evaluation_interval == Some(0) {
            return bad(
                "evaluation_interval",
                "0".to_owned(),
                "at least 1, or null for none",
            );
        }
        Ok(())
    }

    /// The learning rate at `timestep`.
    pub(crate) fn lr_at(&self, timestep: u64) -> f64 {
        self.lr_schedule
            .as_ref()
            .map_or(self.lr, |s| s.value(timestep))
    }
}
