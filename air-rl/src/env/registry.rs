//! [`make`]: the built-in environments by gymnasium's names, with their time limits.

use super::{
    Acrobot, CartPole, MountainCar, MountainCarContinuous, Pendulum, TimeLimit, base::Env,
};
use crate::error::{Result, RlError};

/// The built-in environments: (name, episode step limit).
pub const ENVIRONMENTS: [(&str, usize); 5] = [
    ("CartPole-v1", 500),
    ("MountainCar-v0", 200),
    ("MountainCarContinuous-v0", 999),
    ("Pendulum-v1", 200),
    ("Acrobot-v1", 500),
];

/// A built-in environment by its gymnasium name, with gymnasium's time limit
/// (`gymnasium.make`). An unknown name lists the known ones.
///
/// ```
/// use air_rl::env::{Action, make};
///
/// let mut env = make("CartPole-v1")?;
/// let (obs, _) = env.reset(Some(42));
/// assert_eq!(obs.len(), 4);
/// let step = env.step(&Action::Discrete(1))?;
/// assert_eq!(step.reward, 1.0);
/// assert!(make("CartPole-v0").is_err());
/// # Ok::<(), air_rl::RlError>(())
/// ```
pub fn make(name: &str) -> Result<Box<dyn Env>> {
    let limit = |env: Box<dyn Env>, steps| Box::new(TimeLimit::new(env, steps)) as Box<dyn Env>;
    let (_, steps) = ENVIRONMENTS
        .iter()
        .find(|(n, _)| *n == name)
        .ok_or_else(|| RlError::UnknownEnv {
            name: name.to_owned(),
            known: ENVIRONMENTS.iter().map(|(n, _)| (*n).to_owned()).collect(),
        })?;
    let env: Box<dyn Env> = match name {
        "CartPole-v1" => Box::new(CartPole::new()),
        "MountainCar-v0" => Box::new(MountainCar::new()),
        "MountainCarContinuous-v0" => Box::new(MountainCarContinuous::new()),
        "Pendulum-v1" => Box::new(Pendulum::new()),
        _ => Box::new(Acrobot::new()),
    };
    Ok(limit(env, *steps))
}
