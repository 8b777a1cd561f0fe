//! The algorithms: [`Ppo`] (online, discrete or continuous actions), [`Dqn`] (online,
//! discrete actions) and [`Bc`] (offline, from a dataset), with their configs under
//! RLlib's names, behind one [`Algorithm`] trait the trainer drives.

mod bc;
mod check;
mod core;
mod dqn;
mod episodes;
mod ppo;
mod schedule;

use std::num::NonZeroUsize;

use air_checkpoint::Checkpoint;
use air_data::Dataset;
use air_train::ComputeDevice;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use self::core::{ALGORITHM_ENTRY, LEARNER_STATE_ENTRY};
pub use bc::{Bc, BcConfig};
pub use dqn::{Dqn, DqnConfig, TdLoss};
pub use ppo::{ObservationFilter, Ppo, PpoConfig};
pub use schedule::Schedule;

use crate::{Result, RlError, env::EnvSpec, policy::Policy};

/// An algorithm and its settings (Ray's `algorithm="PPO"` with its `config` dict). As JSON:
/// `{"algorithm": "PPO", "lr": 0.0003, ...}`; unknown fields are errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "algorithm")]
#[non_exhaustive]
pub enum AlgorithmConfig {
    /// Proximal policy optimisation.
    #[serde(rename = "PPO")]
    Ppo(PpoConfig),
    /// Deep Q-networks (double DQN by default).
    #[serde(rename = "DQN")]
    Dqn(DqnConfig),
    /// Behaviour cloning from a dataset (offline).
    #[serde(rename = "BC")]
    Bc(BcConfig),
}

impl AlgorithmConfig {
    /// The algorithm's name (`"PPO"`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Ppo(_) => "PPO",
            Self::Dqn(_) => "DQN",
            Self::Bc(_) => "BC",
        }
    }

    /// Whether the algorithm learns from a dataset rather than from an environment.
    pub fn is_offline(&self) -> bool {
        matches!(self, Self::Bc(_))
    }

    /// Builds the learner: online algorithms need `env`, offline ones `dataset` (and use
    /// `env`, when given, for its spaces and for evaluation).
    pub fn build(
        &self,
        env: Option<&EnvSpec>,
        dataset: Option<&Dataset>,
        device: ComputeDevice,
        rollout_workers: NonZeroUsize,
    ) -> Result<Box<dyn Algorithm>> {
        let online_env = || {
            env.cloned().ok_or_else(|| RlError::InvalidConfig {
                field: "env",
                value: "none".to_owned(),
                expected: format!("an environment: {} trains online", self.name()),
            })
        };
        Ok(match self {
            Self::Ppo(c) => Box::new(Ppo::new(c.clone(), online_env()?, device, rollout_workers)?),
            Self::Dqn(c) => Box::new(Dqn::new(c.clone(), online_env()?, device, rollout_workers)?),
            Self::Bc(c) => {
                let dataset = dataset.ok_or_else(|| RlError::InvalidConfig {
                    field: "datasets",
                    value: "no \"train\" dataset".to_owned(),
                    expected: "a \"train\" dataset of logged steps: BC learns offline".to_owned(),
                })?;
                Box::new(Bc::new(c.clone(), dataset, env.cloned(), device)?)
            }
        })
    }
}

impl From<PpoConfig> for AlgorithmConfig {
    fn from(c: PpoConfig) -> Self {
        Self::Ppo(c)
    }
}

/// What a trainer drives: one training iteration at a time, saved to and restored from
/// checkpoints.
pub trait Algorithm: Send + std::fmt::Debug {
    /// One training iteration; its metrics.
    fn train(&mut self) -> Result<Map<String, Value>>;
    /// Saves everything needed to act and to continue training.
    fn save(&self, checkpoint: &mut Checkpoint) -> Result<()>;
    /// Continues from a checkpoint `save` wrote.
    fn restore(&mut self, checkpoint: &Checkpoint) -> Result<()>;
    /// The current policy.
    fn policy(&self) -> Policy;
}

impl From<BcConfig> for AlgorithmConfig {
    fn from(c: BcConfig) -> Self {
        Self::Bc(c)
    }
}

impl From<DqnConfig> for AlgorithmConfig {
    fn from(c: DqnConfig) -> Self {
        Self::Dqn(c)
    }
}

/// Implements [`Algorithm`] by the learner's inherent methods of the same names.
macro_rules! algorithm_by_inherent_methods {
    ($($learner:ty),*) => {$(
        impl Algorithm for $learner {
            fn train(&mut self) -> Result<Map<String, Value>> {
                <$learner>::train(self)
            }
            fn save(&self, checkpoint: &mut Checkpoint) -> Result<()> {
                <$learner>::save(self, checkpoint)
            }
            fn restore(&mut self, checkpoint: &Checkpoint) -> Result<()> {
                <$learner>::restore(self, checkpoint)
            }
            fn policy(&self) -> Policy {
                <$learner>::policy(self)
            }
        }
    )*};
}

algorithm_by_inherent_methods!(Ppo, Dqn, Bc);
