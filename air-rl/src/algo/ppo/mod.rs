//! PPO: [`PpoConfig`] and the [`Ppo`] learner (sampling in [`rollout`], the update in
//! [`update`]).

mod config;
mod rollout;
mod update;

use std::{num::NonZeroUsize, time::Instant};

use air_checkpoint::Checkpoint;
use air_train::ComputeDevice;
use serde_json::{Map, Value, json};

pub use config::{ObservationFilter, PpoConfig};

use super::{
    AlgorithmConfig,
    core::{self, Core},
    episodes::EpisodeStats,
};
use crate::{
    Result,
    env::{EnvSpec, Space},
    policy::{Head, ObsFilter, Policy, PolicySpec},
    rollout::RunningMeanStd,
};

/// A PPO learner: `train()` samples one batch from its environment copies and updates the
/// policy on it (RLlib's `PPO.train()`).
///
/// ```
/// use std::{num::NonZeroUsize, time::Instant};
/// use air_rl::{algo::{Ppo, PpoConfig}, env::EnvSpec};
/// use air_train::ComputeDevice;
///
/// let mut config = PpoConfig::default();
/// config.train_batch_size = 256;
/// config.num_sgd_iter = 2;
/// let mut ppo = Ppo::new(config, EnvSpec::named("CartPole-v1")?, ComputeDevice::Cpu,
///     NonZeroUsize::MIN)?;
/// let metrics = ppo.train()?;
/// assert_eq!(metrics["timesteps_total"], 256);
/// # Ok::<(), air_rl::RlError>(())
/// ```
pub struct Ppo {
    config: PpoConfig,
    core: Core,
    sampler: rollout::Sampler,
}

impl std::fmt::Debug for Ppo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ppo")
            .field("config", &self.config)
            .field("spec", &self.core.spec)
            .finish_non_exhaustive()
    }
}

impl Ppo {
    /// A learner on `env`, its network on `device`, stepping
    /// `num_envs_per_worker × rollout_workers` environment copies on `rollout_workers`
    /// threads.
    pub fn new(
        config: PpoConfig,
        env: EnvSpec,
        device: ComputeDevice,
        rollout_workers: NonZeroUsize,
    ) -> Result<Self> {
        let copies = config.num_envs_per_worker * rollout_workers.get();
        config.validate(copies)?;
        let (observation_dim, action_space) = core::spaces(&env)?;
        let head = match action_space {
            Space::Discrete { .. } => Head::Categorical,
            Space::Box { .. } => Head::Gaussian,
        };
        let obs_filter =
            (config.observation_filter == ObservationFilter::MeanStdFilter).then(|| ObsFilter {
                stats: RunningMeanStd::new(observation_dim),
                clip: 10.0,
            });
        let spec = PolicySpec {
            algorithm: "PPO".to_owned(),
            env: env.registered_name().map(str::to_owned),
            observation_dim,
            action_space,
            hidden: config.fcnet_hiddens.clone(),
            activation: config.fcnet_activation,
            head,
            value_function: true,
            obs_filter,
        };
        let core = Core::new(
            spec,
            config.seed,
            device,
            config.grad_clip,
            Some(env.clone()),
        )?;
        let (envs, obs) = core::rollout_envs(
            &env,
            config.num_envs_per_worker,
            rollout_workers,
            config.seed,
        )?;
        let sampler = rollout::Sampler {
            episodes: EpisodeStats::default().with_copies(envs.len()),
            envs,
            obs,
        };
        Ok(Self {
            config,
            core,
            sampler,
        })
    }

    /// One training iteration: `train_batch_size` environment steps, then `num_sgd_iter`
    /// epochs of minibatch updates. Returns the iteration's metrics: `episode_reward_mean`
    /// (over the last 100 finished episodes), `episode_len_mean`, `timesteps_total`,
    /// `policy_loss`, `vf_loss`, `entropy`, `kl`, `clip_fraction`, `cur_lr`, and wall-clock
    /// timers under `timers/` (`sample_time_ms`, `learn_time_ms`, `learner_samples_per_s`:
    /// samples through forward, backward and Adam per second).
    pub fn train(&mut self) -> Result<Map<String, Value>> {
        let copies = self.sampler.envs.len();
        let fragment = self.config.train_batch_size / copies;
        let sampling = Instant::now();
        let mut batch = self.sampler.collect(
            &mut self.core,
            fragment,
            self.config.gamma,
            self.config.lambda,
        )?;
        let sampled = sampling.elapsed().as_secs_f64();
        let learning = Instant::now();
        let mut metrics = Map::new();
        update::update(&mut self.core, &self.config, &mut batch, &mut metrics);
        let learned = learning.elapsed().as_secs_f64();
        // Wall-clock timers (the only metrics a seed does not fix).
        let samples = (batch.len() * self.config.num_sgd_iter) as f64;
        metrics.insert("timers/sample_time_ms".to_owned(), json!(sampled * 1e3));
        metrics.insert("timers/learn_time_ms".to_owned(), json!(learned * 1e3));
        metrics.insert(
            "timers/learner_samples_per_s".to_owned(),
            json!(samples / learned.max(1e-9)),
        );
        self.sampler.episodes.report("", &mut metrics);
        self.core.state.episodes = self.sampler.episodes.clone();
        metrics.insert(
            "num_env_steps_sampled_this_iter".to_owned(),
            json!(batch.len()),
        );
        let evaluation = self
            .config
            .evaluation_interval
            .map(|i| (i, self.config.evaluation_duration));
        self.core.report(&mut metrics, evaluation)?;
        Ok(metrics)
    }

    /// The current policy, for acting.
    pub fn policy(&self) -> Policy {
        self.core.policy()
    }

    /// The config.
    pub fn config(&self) -> &PpoConfig {
        &self.config
    }

    /// Saves the policy (spec, weights, observation statistics), the config and the counters.
    pub fn save(&self, checkpoint: &mut Checkpoint) -> Result<()> {
        self.core
            .save(&AlgorithmConfig::Ppo(self.config.clone()), checkpoint)
    }

    /// Continues from a checkpoint [`save`](Self::save) wrote (environments start fresh
    /// episodes; Adam's moments start from zero).
    pub fn restore(&mut self, checkpoint: &Checkpoint) -> Result<()> {
        self.core.restore(checkpoint)?;
        let copies = self.sampler.envs.len();
        self.sampler.episodes = self.core.state.episodes.clone().with_copies(copies);
        self.sampler.obs = self
            .sampler
            .envs
            .reset(Some(self.config.seed ^ self.core.state.timesteps_total));
        Ok(())
    }
}
