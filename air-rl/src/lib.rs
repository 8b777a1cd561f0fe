//! # air-rl
//!
//! Reinforcement learning for AIR for Rust, RLlib's role in Ray AIR:
//!
//! - [`env`](mod@env): the [`Env`](env::Env) trait in gymnasium's shape (`reset(seed)`, `step(action)`
//!   → observation, reward, terminated, truncated, info; observation and action
//!   [`Space`](env::Space)s; `state`/`set_state` to replay a trajectory), a
//!   [`TimeLimit`](env::TimeLimit) wrapper, [`VectorEnv`](env::VectorEnv) (N copies with
//!   autoreset, on several threads), and CartPole-v1, MountainCar-v0,
//!   MountainCarContinuous-v0, Pendulum-v1 and Acrobot-v1 computed as gymnasium computes
//!   them ([`env::make`] by name).
//!
//! - [`rollout`]: generalised advantage estimation ([`rollout::gae`], cut at terminations and
//!   bootstrapped at truncations) and [`rollout::RunningMeanStd`] (batch-merged observation
//!   statistics).
//!
//! - [`algo`]: [`Ppo`](algo::Ppo) (categorical or Gaussian policies, GAE, clipped surrogate,
//!   value loss, entropy, minibatch epochs, observation filter), [`Dqn`](algo::Dqn) (double
//!   DQN, replay, target network, ε schedule) and [`Bc`](algo::Bc) (behaviour cloning from a
//!   `Dataset`), on burn, seeded; their configs under RLlib's names in
//!   [`AlgorithmConfig`](algo::AlgorithmConfig).
//!
//! - [`RLTrainer`]: an algorithm as an air-train `Trainer` and a Tune `Trainable` (stop
//!   conditions, a checkpoint per iteration, resume, restarts after failures, trial configs).
//!
//! - [`policy`]: the saved policy ([`PolicySpec`](policy::PolicySpec) as data, weights) and
//!   [`Policy`](policy::Policy) for acting; [`RLPredictor`] (observations in, actions out, served
//!   by air-serve's `PredictorDeployment`); [`evaluate`].
//!
//! ```
//! use air_rl::env::{Action, make};
//!
//! let mut env = make("CartPole-v1")?;
//! let (mut obs, _) = env.reset(Some(0));
//! let mut steps = 0;
//! loop {
//!     // Push the cart the way the pole leans.
//!     let action = Action::Discrete(usize::from(obs[2] > 0.0));
//!     let t = env.step(&action)?;
//!     steps += 1;
//!     obs = t.obs;
//!     if t.terminated || t.truncated {
//!         break;
//!     }
//! }
//! assert!(steps > 20);
//! # Ok::<(), air_rl::RlError>(())
//! ```

pub mod algo;
pub mod env;
mod error;
mod evaluate;
mod frame;
pub mod policy;
mod predictor;
pub mod rollout;
mod trainer;

pub use error::{Result, RlError};

/// The [`PREDICTOR_KIND_KEY`](air_train::PREDICTOR_KIND_KEY) of an algorithm's checkpoint (what
/// [`RLPredictor`] reads).
pub const PREDICTOR_KIND: &str = "rl";
pub use evaluate::{Evaluation, evaluate, evaluate_policy};
pub use predictor::RLPredictor;
pub use trainer::RLTrainer;

/// The training crate this one builds on, re-exported so users name one version of it.
pub use air_train;
