//! DQN: [`DqnConfig`] and the [`Dqn`] learner (replay in [`replay`]).

mod config;
mod replay;

use std::num::NonZeroUsize;

use air_checkpoint::Checkpoint;
use air_train::{
    ComputeDevice,
    burn::{
        Backend,
        module::AutodiffModule,
        tensor::{Int, Tensor, TensorData},
    },
};
use rand::RngExt;
use serde_json::{Map, Value, json};

pub use config::{DqnConfig, TdLoss};

use super::{
    AlgorithmConfig,
    core::{self, Core},
    episodes::EpisodeStats,
};
use crate::{
    Result, RlError,
    env::{Action, EnvSpec, Space, VectorEnv},
    policy::{self, Head, Policy, PolicyNet, PolicySpec, Values},
};
use replay::ReplayBuffer;

/// A DQN learner: `train()` steps its environments `timesteps_per_iteration` times, learning
/// from replayed transitions as it goes (RLlib's `DQN.train()`).
pub struct Dqn {
    config: DqnConfig,
    core: Core,
    target: PolicyNet<Backend>,
    envs: VectorEnv,
    obs: Vec<Vec<f32>>,
    episodes: EpisodeStats,
    buffer: ReplayBuffer,
    /// Timestep of the last target copy and of the last round of updates.
    last_target: u64,
    last_train: u64,
}

impl std::fmt::Debug for Dqn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dqn")
            .field("config", &self.config)
            .field("spec", &self.core.spec)
            .finish_non_exhaustive()
    }
}

impl Dqn {
    /// A learner on `env` (its action space must be `Discrete`), its network on `device`,
    /// stepping `num_envs_per_worker × rollout_workers` copies.
    pub fn new(
        config: DqnConfig,
        env: EnvSpec,
        device: ComputeDevice,
        rollout_workers: NonZeroUsize,
    ) -> Result<Self> {
        config.validate()?;
        let (observation_dim, action_space) = core::spaces(&env)?;
        if !matches!(action_space, Space::Discrete { .. }) {
            return Err(RlError::InvalidConfig {
                field: "env",
                value: format!("{} with action space {action_space}", env.name()),
                expected: "a Discrete action space: DQN picks among a finite set of actions \
                           (use PPO for Box actions)"
                    .to_owned(),
            });
        }
        let spec = PolicySpec {
            algorithm: "DQN".to_owned(),
            env: env.registered_name().map(str::to_owned),
            observation_dim,
            action_space,
            hidden: config.fcnet_hiddens.clone(),
            activation: config.fcnet_activation,
            head: Head::QValues,
            value_function: false,
            obs_filter: None,
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
        Ok(Self {
            target: core.net.valid(),
            buffer: ReplayBuffer::new(config.buffer_size, observation_dim),
            episodes: EpisodeStats::default().with_copies(envs.len()),
            config,
            core,
            envs,
            obs,
            last_target: 0,
            last_train: 0,
        })
    }

    /// One training iteration of `timesteps_per_iteration` environment steps.
    pub fn train(&mut self) -> Result<Map<String, Value>> {
        let start = self.core.state.timesteps_total;
        let mut losses = (0.0, 0.0, 0usize);
        while self.core.state.timesteps_total - start < self.config.timesteps_per_iteration {
            self.act()?;
            let t = self.core.state.timesteps_total;
            if t >= self.config.learning_starts
                && t - self.last_train >= self.config.train_freq
                && self.buffer.len() >= self.config.train_batch_size
            {
                self.last_train = t;
                for _ in 0..self.config.gradient_steps {
                    let (loss, q) = self.update()?;
                    losses = (losses.0 + loss, losses.1 + q, losses.2 + 1);
                }
            }
            if t - self.last_target >= self.config.target_network_update_freq {
                self.last_target = t;
                self.target = self.core.net.valid();
            }
        }
        let mut metrics = Map::new();
        let n = losses.2.max(1) as f64;
        metrics.insert("td_loss".to_owned(), json!(losses.0 / n));
        metrics.insert("mean_q".to_owned(), json!(losses.1 / n));
        metrics.insert(
            "cur_epsilon".to_owned(),
            json!(self.config.epsilon(self.core.state.timesteps_total)),
        );
        metrics.insert(
            "num_env_steps_sampled_this_iter".to_owned(),
            json!(self.core.state.timesteps_total - start),
        );
        self.episodes.report("", &mut metrics);
        self.core.state.episodes = self.episodes.clone();
        let evaluation = self
            .config
            .evaluation_interval
            .map(|i| (i, self.config.evaluation_duration));
        self.core.report(&mut metrics, evaluation)?;
        Ok(metrics)
    }

    /// One ε-greedy step of every copy, stored in the replay buffer.
    fn act(&mut self) -> Result<()> {
        let epsilon = self.config.epsilon(self.core.state.timesteps_total);
        let net = self.core.net.valid();
        let flat = policy::normalized(&self.core.spec, &self.obs)?;
        let out = policy::forward(
            &net,
            &self.core.spec,
            flat,
            &self.core.infer_device,
            Values::Skip,
        )?;
        let n_actions = out.out_dim;
        let actions: Vec<Action> = (0..self.obs.len())
            .map(|i| {
                if self.core.rng.random::<f64>() < epsilon {
                    Action::Discrete(self.core.rng.random_range(0..n_actions))
                } else {
                    let row = &out.out[i * n_actions..(i + 1) * n_actions];
                    Action::Discrete(policy::sample::argmax(row))
                }
            })
            .collect();
        let step = self.envs.step(&actions)?;
        for (i, action) in actions.iter().enumerate() {
            let Action::Discrete(a) = action else {
                continue;
            };
            let next = step.final_obs[i].as_ref().unwrap_or(&step.obs[i]);
            self.buffer
                .push(&self.obs[i], *a, step.rewards[i], next, step.terminated[i]);
            self.episodes
                .step(i, step.rewards[i], step.terminated[i] || step.truncated[i]);
        }
        self.obs = step.obs;
        self.core.state.timesteps_total += actions.len() as u64;
        Ok(())
    }

    /// One gradient step on a replayed minibatch; (loss, mean Q).
    fn update(&mut self) -> Result<(f64, f64)> {
        let b = self.config.train_batch_size;
        let d = self.core.spec.observation_dim;
        let s = self.buffer.sample(b, &mut self.core.rng);
        let spec = &self.core.spec;
        // Targets, outside the graph.
        let target_q = policy::forward(
            &self.target,
            spec,
            s.next_obs.clone(),
            &self.core.infer_device,
            Values::Skip,
        )?;
        let chooser = if self.config.double_q {
            policy::forward(
                &self.core.net.valid(),
                spec,
                s.next_obs,
                &self.core.infer_device,
                Values::Skip,
            )?
        } else {
            policy::forward(
                &self.target,
                spec,
                s.next_obs,
                &self.core.infer_device,
                Values::Skip,
            )?
        };
        let k = target_q.out_dim;
        let y: Vec<f32> = (0..b)
            .map(|i| {
                let a = policy::sample::argmax(&chooser.out[i * k..(i + 1) * k]);
                let next = target_q.out[i * k + a];
                (self.config.gamma as f32 * (1.0 - s.terminated[i])).mul_add(next, s.rewards[i])
            })
            .collect();
        let device = &self.core.train_device;
        let obs = Tensor::<Backend, 2>::from_data(TensorData::new(s.obs, [b, d]), device);
        let actions =
            Tensor::<Backend, 2, Int>::from_data(TensorData::new(s.actions, [b, 1]), device);
        let y = Tensor::<Backend, 1>::from_data(TensorData::new(y, [b]), device);
        let q = self
            .core
            .net
            .head(obs, spec.activation)
            .gather(1, actions)
            .flatten::<1>(0, 1);
        let error = q.clone() - y;
        let loss = match self.config.td_error_loss_fn {
            TdLoss::Huber => {
                let a = error.abs();
                let quadratic = a.clone().clamp_max(1.0);
                (quadratic.clone() * quadratic.clone() * 0.5 + (a - quadratic)).mean()
            }
            TdLoss::Mse => error.square().mean(),
        };
        let mean_q = q.detach().mean();
        self.core.step(loss.clone(), self.config.lr);
        Ok((
            f64::from(loss.into_scalar()),
            f64::from(mean_q.into_scalar()),
        ))
    }

    /// The current greedy policy.
    pub fn policy(&self) -> Policy {
        self.core.policy()
    }

    /// The config.
    pub fn config(&self) -> &DqnConfig {
        &self.config
    }

    /// Saves the Q network, the config and the counters (not the replay buffer).
    pub fn save(&self, checkpoint: &mut Checkpoint) -> Result<()> {
        self.core
            .save(&AlgorithmConfig::Dqn(self.config.clone()), checkpoint)
    }

    /// Continues from a checkpoint [`save`](Self::save) wrote: the target network starts as
    /// the restored one and the replay buffer empty (it refills before updates resume).
    pub fn restore(&mut self, checkpoint: &Checkpoint) -> Result<()> {
        self.core.restore(checkpoint)?;
        self.target = self.core.net.valid();
        self.buffer = ReplayBuffer::new(self.config.buffer_size, self.core.spec.observation_dim);
        let t = self.core.state.timesteps_total;
        self.last_target = t;
        self.last_train = t;
        self.config.learning_starts = self
            .config
            .learning_starts
            .max(t + self.config.train_batch_size as u64);
        self.episodes = self
            .core
            .state
            .episodes
            .clone()
            .with_copies(self.envs.len());
        self.obs = self.envs.reset(Some(self.config.seed ^ t));
        Ok(())
    }
}
