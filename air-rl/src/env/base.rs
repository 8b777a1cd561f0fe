//! [`Env`]: an environment in gymnasium's shape.

use super::space::{Action, Space};
use crate::error::{Result, RlError};

/// Extra information a reset or a step returns (gymnasium's `info` dict).
pub type Info = serde_json::Map<String, serde_json::Value>;

/// What one step returns (gymnasium's `(obs, reward, terminated, truncated, info)`).
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The observation after the step.
    pub obs: Vec<f32>,
    /// The step's reward.
    pub reward: f64,
    /// The episode ended in a terminal state (the pole fell, the goal was reached).
    pub terminated: bool,
    /// The episode was cut short (a time limit).
    pub truncated: bool,
    /// Extra information.
    pub info: Info,
}

impl Transition {
    /// Either ending.
    pub fn done(&self) -> bool {
        self.terminated || self.truncated
    }
}

/// An environment: gymnasium's `reset`/`step` with its spaces, plus `state`/`set_state` so a
/// trajectory can be replayed from a given state. User environments implement it too.
pub trait Env: Send {
    /// The environment's name (`CartPole-v1`).
    fn name(&self) -> &str;
    /// What observations are.
    fn observation_space(&self) -> &Space;
    /// What actions are.
    fn action_space(&self) -> &Space;
    /// Starts an episode. `Some(seed)` reseeds the environment's generator (the same seed
    /// gives the same start); `None` goes on with it.
    fn reset(&mut self, seed: Option<u64>) -> (Vec<f32>, Info);
    /// Applies `action`; an action of the wrong kind or size is an error, never a panic.
    fn step(&mut self, action: &Action) -> Result<Transition>;
    /// The full internal state (at the precision the environment keeps it).
    fn state(&self) -> Vec<f64>;
    /// Sets the internal state, e.g. to replay a recorded trajectory from its start.
    fn set_state(&mut self, state: &[f64]) -> Result<()>;
}

impl Env for Box<dyn Env> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn observation_space(&self) -> &Space {
        (**self).observation_space()
    }
    fn action_space(&self) -> &Space {
        (**self).action_space()
    }
    fn reset(&mut self, seed: Option<u64>) -> (Vec<f32>, Info) {
        (**self).reset(seed)
    }
    fn step(&mut self, action: &Action) -> Result<Transition> {
        (**self).step(action)
    }
    fn state(&self) -> Vec<f64> {
        (**self).state()
    }
    fn set_state(&mut self, state: &[f64]) -> Result<()> {
        (**self).set_state(state)
    }
}

/// Checks `action` against `space` for environment `env` (kind, size, finite values).
pub(crate) fn check_action(env: &str, space: &Space, action: &Action) -> Result<()> {
    if space.fits(action) {
        Ok(())
    } else {
        Err(RlError::InvalidAction {
            env: env.to_owned(),
            action: action.to_string(),
            space: space.to_string(),
        })
    }
}

/// Checks a state for `set_state`: `len` finite numbers.
pub(crate) fn check_state(env: &str, state: &[f64], len: usize, what: &str) -> Result<()> {
    if state.len() == len && state.iter().all(|x| x.is_finite()) {
        Ok(())
    } else {
        Err(RlError::InvalidState {
            env: env.to_owned(),
            state: state.to_vec(),
            expected: format!("{len} finite numbers: {what}"),
        })
    }
}

/// The environment's random generator: reseeded by `reset(Some(seed))`, seeded from the clock
/// when first used without a seed.
#[derive(Debug)]
pub(crate) struct EnvRng(Option<rand::rngs::StdRng>);

impl EnvRng {
    pub(crate) fn new() -> Self {
        Self(None)
    }

    /// The generator after `reset(seed)`.
    pub(crate) fn reseed(&mut self, seed: Option<u64>) -> &mut rand::rngs::StdRng {
        use rand::SeedableRng;
        match seed {
            Some(s) => self.0 = Some(rand::rngs::StdRng::seed_from_u64(s)),
            None if self.0.is_none() => {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64);
                self.0 = Some(rand::rngs::StdRng::seed_from_u64(nanos));
            }
            None => {}
        }
        self.0.as_mut().expect("seeded above")
    }
}

impl std::fmt::Debug for dyn Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env")
            .field("name", &self.name())
            .finish_non_exhaustive()
    }
}

/// The `name`, `observation_space` and `action_space` of an environment whose struct holds
/// `observation_space` and `action_space` fields.
macro_rules! name_and_spaces {
    ($name:literal) => {
        fn name(&self) -> &str {
            $name
        }

        fn observation_space(&self) -> &$crate::env::Space {
            &self.observation_space
        }

        fn action_space(&self) -> &$crate::env::Space {
            &self.action_space
        }
    };
}

pub(crate) use name_and_spaces;
