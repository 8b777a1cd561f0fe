//! The classic-control environments, each computed as gymnasium's `classic_control` computes it:
//! the same constants, order of operations and precision, so that trajectories match
//! gymnasium's bit for bit (`tests/classic_control.rs`).

mod acrobot;
mod cartpole;
mod mountain_car;
mod pendulum;

pub use acrobot::Acrobot;
pub use cartpole::CartPole;
pub use mountain_car::{MountainCar, MountainCarContinuous};
pub use pendulum::Pendulum;

/// `Default` as `new()`, for environments built without arguments.
macro_rules! default_from_new {
    ($($env:ty),+) => {
        $(impl Default for $env {
            fn default() -> Self {
                Self::new()
            }
        })+
    };
}

default_from_new!(
    Acrobot,
    CartPole,
    MountainCar,
    MountainCarContinuous,
    Pendulum
);
