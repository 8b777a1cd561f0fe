//! [`PolicySpec`]: everything needed to rebuild a policy besides its weights — saved in a
//! checkpoint as data (`policy.json`), never as code.

use air_train::burn::{
    self,
    module::{Module, Param},
    tensor::{Tensor, backend::Backend},
};
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use super::network::{Activation, Mlp};
use crate::{RlError, env::Space, rollout::RunningMeanStd};

/// What the policy network's output means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Head {
    /// Logits of a categorical distribution over a `Discrete` action space (PPO, BC).
    Categorical,
    /// The mean of a diagonal Gaussian over a `Box` action space, with a learned
    /// state-independent log standard deviation (PPO).
    Gaussian,
    /// One Q-value per discrete action (DQN); the greedy action is the largest.
    QValues,
    /// The action itself, for a `Box` action space (BC regression).
    Deterministic,
}

/// Observation normalisation: `(obs − mean) / std` clipped to ±`clip`, with statistics
/// gathered during training (RLlib's `MeanStdFilter`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObsFilter {
    /// The statistics.
    pub stats: RunningMeanStd,
    /// The clip bound.
    pub clip: f32,
}

impl ObsFilter {
    /// `obs` normalised.
    pub fn apply(&self, obs: &[f32]) -> Vec<f32> {
        self.stats.normalize(obs, self.clip)
    }
}

/// The shape and meaning of a policy: rebuilt from this, its weights load into it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicySpec {
    /// The algorithm that trained it (`"PPO"`, `"DQN"`, `"BC"`).
    pub algorithm: String,
    /// The environment it was trained on, when it has a registered name.
    pub env: Option<String>,
    /// The length of an observation.
    pub observation_dim: usize,
    /// The action space.
    pub action_space: Space,
    /// Hidden layer sizes.
    pub hidden: Vec<usize>,
    /// The activation between hidden layers.
    pub activation: Activation,
    /// What the output means.
    pub head: Head,
    /// Whether a value network sits next to the policy (PPO).
    pub value_function: bool,
    /// Observation normalisation, if the policy uses it.
    pub obs_filter: Option<ObsFilter>,
}

/// The network of a policy: the policy (or Q) network, an optional value network and, for a
/// Gaussian head, the log standard deviation.
#[derive(Module, Debug)]
pub struct PolicyNet<B: Backend> {
    pub(crate) pi: Mlp<B>,
    pub(crate) vf: Option<Mlp<B>>,
    pub(crate) log_std: Option<Param<Tensor<B, 1>>>,
}

impl PolicySpec {
    /// How many numbers the policy network outputs per observation.
    pub fn output_dim(&self) -> usize {
        match (&self.action_space, self.head) {
            (Space::Discrete { n }, _) => *n,
            (Space::Box { low, .. }, _) => low.len(),
        }
    }

    /// Checks that the head fits the action space.
    pub(crate) fn validate(&self) -> crate::Result<()> {
        let fits = matches!(
            (&self.action_space, self.head),
            (Space::Discrete { .. }, Head::Categorical | Head::QValues)
                | (Space::Box { .. }, Head::Gaussian | Head::Deterministic)
        );
        if !fits || self.observation_dim == 0 || self.hidden.contains(&0) {
            return Err(RlError::InvalidConfig {
                field: "policy",
                value: format!(
                    "head {:?} for action space {}, observation size {}, hidden {:?}",
                    self.head, self.action_space, self.observation_dim, self.hidden
                ),
                expected: "a Categorical or QValues head for a Discrete space, a Gaussian or \
                           Deterministic head for a Box, observations of at least one number and \
                           no empty hidden layer"
                    .to_owned(),
            });
        }
        Ok(())
    }

    /// A freshly initialised network on `device`, its weights drawn from `rng`.
    pub(crate) fn init<B: Backend>(&self, rng: &mut StdRng, device: &B::Device) -> PolicyNet<B> {
        let sizes = |out: usize| {
            let mut s = vec![self.observation_dim];
            s.extend(&self.hidden);
            s.push(out);
            s
        };
        // A policy head starts small (near-uniform actions); Q-values and regressions do not.
        let last_scale = match self.head {
            Head::Categorical | Head::Gaussian => 0.01,
            Head::QValues | Head::Deterministic => 1.0,
        };
        let pi = Mlp::new(&sizes(self.output_dim()), last_scale, rng, device);
        let vf = self
            .value_function
            .then(|| Mlp::new(&sizes(1), 1.0, rng, device));
        let log_std = (self.head == Head::Gaussian)
            .then(|| Param::from_tensor(Tensor::zeros([self.output_dim()], device)));
        PolicyNet { pi, vf, log_std }
    }
}

impl<B: Backend> PolicyNet<B> {
    /// The policy output `[n, output_dim]` for normalised observations `[n, observation_dim]`.
    pub(crate) fn head(&self, obs: Tensor<B, 2>, activation: Activation) -> Tensor<B, 2> {
        self.pi.forward(obs, activation)
    }

    /// The value estimates `[n]` (zeros without a value network).
    pub(crate) fn value(&self, obs: Tensor<B, 2>, activation: Activation) -> Tensor<B, 1> {
        match &self.vf {
            Some(vf) => vf.forward(obs, activation).flatten(0, 1),
            None => Tensor::zeros([obs.dims()[0]], &obs.device()),
        }
    }
}
