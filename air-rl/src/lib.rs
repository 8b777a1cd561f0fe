//! # air-rl
//!
//! Reinforcement learning for AIR for Rust, RLlib's role in Ray AIR. It will hold
//! environments (a gymnasium-like `Env` trait with CartPole and friends checked against
//! gymnasium), PPO and DQN on burn, the `RLTrainer` (a `Trainable` the Tuner can run) and the
//! `RLPredictor` that serves a trained policy from a checkpoint.
//!
//! Nothing of it is built yet; the crate exists so the workspace layout and dependency graph
//! (`air-rl` → `air-train`, burn only through air-train's pinned version) are fixed from the
//! start.
//!
//! ```
//! // The crate compiles and links against air-train; its API arrives with the RL issue.
//! use air_rl::air_train;
//! ```

/// The training crate this one builds on, re-exported so users name one version of it.
pub use air_train;
