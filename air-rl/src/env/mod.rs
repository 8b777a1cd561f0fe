//! Environments in gymnasium's shape: the [`Env`] trait, [`Space`]s, [`TimeLimit`],
//! [`VectorEnv`], and the five classic-control environments computed as gymnasium's
//! `classic_control` computes them (checked against trajectories gymnasium wrote).

mod base;
#[allow(
    clippy::suboptimal_flops,
    reason = "gymnasium rounds every product and sum; a fused multiply-add would not match it"
)]
mod classic_control;
mod factory;
mod registry;
mod space;
mod time_limit;
mod vector;

pub use base::{Env, Info, Transition};
pub use classic_control::{Acrobot, CartPole, MountainCar, MountainCarContinuous, Pendulum};
pub use factory::{EnvFactory, EnvSpec};
pub use registry::{ENVIRONMENTS, make};
pub use space::{Action, Space};
pub use time_limit::TimeLimit;
pub use vector::{VectorEnv, VectorStep};
