//! Behaviour cloning: [`BcConfig`] and the [`Bc`] learner (dataset reading in [`data`]).

mod config;
mod data;

use air_checkpoint::Checkpoint;
use air_data::Dataset;
use air_train::{
    ComputeDevice,
    burn::{
        Backend,
        tensor::{Int, Tensor, TensorData, activation},
    },
};
use rand::seq::SliceRandom;
use serde_json::{Map, Value, json};

pub use config::BcConfig;

use super::{
    AlgorithmConfig,
    core::{self, Core},
};
use crate::{
    Result,
    env::{EnvSpec, Space},
    policy::{Head, Policy, PolicySpec},
};

/// A behaviour-cloning learner over a dataset of logged steps (RLlib's `BC` with
/// `input="dataset"`): `train()` runs minibatch updates, then (with an environment) greedy
/// evaluation episodes.
pub struct Bc {
    config: BcConfig,
    core: Core,
    data: data::Demonstrations,
    order: Vec<usize>,
    cursor: usize,
}

impl std::fmt::Debug for Bc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bc")
            .field("config", &self.config)
            .field("spec", &self.core.spec)
            .field("rows", &self.data.obs.rows)
            .finish_non_exhaustive()
    }
}

impl Bc {
    /// A learner on `dataset` (columns per `config`); with `env`, its spaces are checked
    /// against the data and evaluation episodes run on it, else the spaces come from the data
    /// (integer actions: `Discrete(max + 1)`; numbers: an unbounded `Box`).
    pub fn new(
        config: BcConfig,
        dataset: &Dataset,
        env: Option<EnvSpec>,
        device: ComputeDevice,
    ) -> Result<Self> {
        config.validate()?;
        let spaces = env.as_ref().map(core::spaces).transpose()?;
        let data = data::read(
            dataset,
            &config.obs_columns,
            &config.action_column,
            spaces.as_ref().map(|(d, s)| (*d, s)),
        )?;
        let action_space = match spaces {
            Some((_, s)) => s,
            None if data.continuous.cols == 0 => Space::Discrete {
                n: data.discrete.iter().max().map_or(1, |m| *m as usize + 1),
            },
            None => Space::boxed(
                vec![f32::NEG_INFINITY; data.continuous.cols],
                vec![f32::INFINITY; data.continuous.cols],
            ),
        };
        let head = match action_space {
            Space::Discrete { .. } => Head::Categorical,
            Space::Box { .. } => Head::Deterministic,
        };
        let spec = PolicySpec {
            algorithm: "BC".to_owned(),
            env: env
                .as_ref()
                .and_then(|e| e.registered_name())
                .map(str::to_owned),
            observation_dim: data.obs.cols,
            action_space,
            hidden: config.fcnet_hiddens.clone(),
            activation: config.fcnet_activation,
            head,
            value_function: false,
            obs_filter: None,
        };
        let core = Core::new(spec, config.seed, device, config.grad_clip, env)?;
        let order = (0..data.obs.rows).collect();
        Ok(Self {
            config,
            core,
            data,
            order,
            cursor: usize::MAX,
        })
    }

    /// One training iteration: `updates_per_iteration` minibatch updates (one pass over the
    /// data by default), then evaluation when due. Reports `policy_loss` (cross-entropy or
    /// squared error), `timesteps_total` (samples trained on) and, with an environment,
    /// `evaluation/episode_reward_mean` (also as `episode_reward_mean`).
    pub fn train(&mut self) -> Result<Map<String, Value>> {
        let rows = self.data.obs.rows;
        let batch = self.config.train_batch_size.min(rows);
        let updates = self
            .config
            .updates_per_iteration
            .unwrap_or_else(|| rows.div_ceil(batch));
        let mut total = 0.0;
        for _ in 0..updates {
            let picked = self.next_rows(batch);
            let loss = self.loss(&picked);
            self.core.step(loss.clone(), self.config.lr);
            total += f64::from(loss.into_scalar());
            self.core.state.timesteps_total += picked.len() as u64;
        }
        let mut metrics = Map::new();
        metrics.insert("policy_loss".to_owned(), json!(total / updates as f64));
        let evaluation = self
            .config
            .evaluation_interval
            .map(|i| (i, self.config.evaluation_duration));
        self.core.report(&mut metrics, evaluation)?;
        for key in ["episode_reward_mean", "episode_len_mean"] {
            if let Some(v) = metrics.get(&format!("evaluation/{key}")).cloned() {
                metrics.insert(key.to_owned(), v);
            }
        }
        Ok(metrics)
    }

    /// The next `n` rows of a shuffled pass, reshuffling when a pass ends.
    fn next_rows(&mut self, n: usize) -> Vec<usize> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            if self.cursor >= self.order.len() {
                self.order.shuffle(&mut self.core.rng);
                self.cursor = 0;
            }
            let take = (n - out.len()).min(self.order.len() - self.cursor);
            out.extend_from_slice(&self.order[self.cursor..self.cursor + take]);
            self.cursor += take;
        }
        out
    }

    fn loss(&self, rows: &[usize]) -> Tensor<Backend, 1> {
        let device = &self.core.train_device;
        let m = rows.len();
        let d = self.data.obs.cols;
        let obs: Vec<f32> = rows
            .iter()
            .flat_map(|r| self.data.obs.row(*r).iter().copied())
            .collect();
        let obs = Tensor::<Backend, 2>::from_data(TensorData::new(obs, [m, d]), device);
        let out = self.core.net.head(obs, self.core.spec.activation);
        match self.core.spec.head {
            Head::Deterministic => {
                let k = self.data.continuous.cols;
                let target: Vec<f32> = rows
                    .iter()
                    .flat_map(|r| self.data.continuous.row(*r).iter().copied())
                    .collect();
                let target =
                    Tensor::<Backend, 2>::from_data(TensorData::new(target, [m, k]), device);
                (out - target).square().mean()
            }
            _ => {
                let actions: Vec<i64> = rows.iter().map(|r| self.data.discrete[*r]).collect();
                let actions =
                    Tensor::<Backend, 2, Int>::from_data(TensorData::new(actions, [m, 1]), device);
                activation::log_softmax(out, 1)
                    .gather(1, actions)
                    .mean()
                    .neg()
            }
        }
    }

    /// The current policy.
    pub fn policy(&self) -> Policy {
        self.core.policy()
    }

    /// The config.
    pub fn config(&self) -> &BcConfig {
        &self.config
    }

    /// Saves the policy, the config and the counters.
    pub fn save(&self, checkpoint: &mut Checkpoint) -> Result<()> {
        self.core
            .save(&AlgorithmConfig::Bc(self.config.clone()), checkpoint)
    }

    /// Continues from a checkpoint [`save`](Self::save) wrote.
    pub fn restore(&mut self, checkpoint: &Checkpoint) -> Result<()> {
        self.core.restore(checkpoint)
    }
}
