//! The algorithms: [`Ppo`] (online, discrete or continuous actions), with their configs under
//! RLlib's names, behind one [`Algorithm`] trait the trainer drives.

mod core;
mod episodes;
mod ppo;
mod schedule;

use std::num::NonZeroUsize;

use air_checkpoint::Checkpoint;
use air_train::ComputeDevice;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use self::core::{ALGORITHM_ENTRY, LEARNER_STATE_ENTRY};
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
}

impl AlgorithmConfig {
    /// The algorithm's name (`"PPO"`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Ppo(_) => "PPO",
        }
    }

    /// Builds the learner.
    pub fn build(
        &self,
        env: Option<&EnvSpec>,
        device: ComputeDevice,
        rollout_workers: NonZeroUsize,
    ) -> Result<Box<dyn Algorithm>> {
        let env = || {
            env.cloned().ok_or_else(|| RlError::InvalidConfig {
                field: "env",
                value: "none".to_owned(),
                expected: format!("an environment: {} trains online", self.name()),
            })
        };
        Ok(match self {
            Self::Ppo(c) => Box::new(Ppo::new(c.clone(), env()?, device, rollout_workers)?),
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

impl Algorithm for Ppo {
    fn train(&mut self) -> Result<Map<String, Value>> {
        Ppo::train(self)
    }
    fn save(&self, checkpoint: &mut Checkpoint) -> Result<()> {
        Ppo::save(self, checkpoint)
    }
    fn restore(&mut self, checkpoint: &Checkpoint) -> Result<()> {
        Ppo::restore(self, checkpoint)
    }
    fn policy(&self) -> Policy {
        Ppo::policy(self)
    }
}
