//! Environments in gymnasium's shape: the [`Env`] trait, [`Space`]s, [`TimeLimit`],
//! [`VectorEnv`], and the five classic-control environments computed as gymnasium's
//! `classic_control` computes them (checked against trajectories gymnasium wrote).

#[allow(
    clippy::suboptimal_flops,
    reason = "gymnasium rounds every product and sum; a fused multiply-add would not match it"
)]
mod acrobot;
mod base;
#[allow(
    clippy::suboptimal_flops,
    reason = "gymnasium rounds every product and sum; a fused multiply-add would not match it"
)]
mod cartpole;
#[allow(
    clippy::suboptimal_flops,
    reason = "gymnasium rounds every product and sum; a fused multiply-add would not match it"
)]
mod mountain_car;
#[allow(
    clippy::suboptimal_flops,
    reason = "gymnasium rounds every product and sum; a fused multiply-add would not match it"
)]
mod pendulum;
mod registry;
mod space;
mod time_limit;
mod vector;

pub use acrobot::Acrobot;
pub use base::{Env, Info, Transition};
pub use cartpole::CartPole;
pub use mountain_car::{MountainCar, MountainCarContinuous};
pub use pendulum::Pendulum;
pub use registry::{ENVIRONMENTS, make};
pub use space::{Action, Space};
pub use time_limit::TimeLimit;
pub use vector::{VectorEnv, VectorStep};
