//! [`TimeLimit`]: truncates episodes after a number of steps (gymnasium's wrapper).

use super::{
    base::{Env, Info, Transition},
    space::{Action, Space},
};
use crate::error::Result;

/// Wraps an environment so that its episodes are truncated (`truncated = true`) at the
/// `max_episode_steps`-th step after a reset, unless they terminated first.
#[derive(Debug)]
pub struct TimeLimit<E> {
    env: E,
    max_episode_steps: usize,
    elapsed: usize,
}

impl<E: Env> TimeLimit<E> {
    /// `env`, truncated after `max_episode_steps` steps.
    pub fn new(env: E, max_episode_steps: usize) -> Self {
        Self {
            env,
            max_episode_steps,
            elapsed: 0,
        }
    }

    /// The limit.
    pub fn max_episode_steps(&self) -> usize {
        self.max_episode_steps
    }

    /// The wrapped environment.
    pub fn inner(&self) -> &E {
        &self.env
    }
}

impl<E: Env> Env for TimeLimit<E> {
    fn name(&self) -> &str {
        self.env.name()
    }

    fn observation_space(&self) -> &Space {
        self.env.observation_space()
    }

    fn action_space(&self) -> &Space {
        self.env.action_space()
    }

    fn reset(&mut self, seed: Option<u64>) -> (Vec<f32>, Info) {
        self.elapsed = 0;
        self.env.reset(seed)
    }

    fn step(&mut self, action: &Action) -> Result<Transition> {
        let mut t = self.env.step(action)?;
        self.elapsed += 1;
        if self.elapsed >= self.max_episode_steps {
            t.truncated = true;
        }
        Ok(t)
    }

    fn state(&self) -> Vec<f64> {
        self.env.state()
    }

    fn set_state(&mut self, state: &[f64]) -> Result<()> {
        self.env.set_state(state)
    }
}
