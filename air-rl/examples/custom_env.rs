//! A user environment on air-rl's `Env` trait: a walk on a line from 0 to a goal at ±`size`,
//! with a time limit and vectorised like the built-in ones.
//!
//! ```text
//! cargo run -p air-rl --example custom_env
//! ```

use std::num::NonZeroUsize;

use air_rl::{
    RlError,
    env::{Action, Env, Info, Space, TimeLimit, Transition, VectorEnv},
};

/// Move left (0) or right (1); +1 at the right end, −1 at the left end, 0 otherwise.
#[derive(Debug)]
struct LineWalk {
    size: i64,
    position: Option<i64>,
    observation_space: Space,
    action_space: Space,
}

impl LineWalk {
    fn new(size: i64) -> Self {
        let s = size as f32;
        Self {
            size,
            position: None,
            observation_space: Space::boxed([-s], [s]),
            action_space: Space::Discrete { n: 2 },
        }
    }
}

impl Env for LineWalk {
    fn name(&self) -> &str {
        "LineWalk"
    }

    fn observation_space(&self) -> &Space {
        &self.observation_space
    }

    fn action_space(&self) -> &Space {
        &self.action_space
    }

    fn reset(&mut self, _seed: Option<u64>) -> (Vec<f32>, Info) {
        self.position = Some(0);
        (vec![0.0], Info::new())
    }

    fn step(&mut self, action: &Action) -> Result<Transition, RlError> {
        let invalid = || RlError::InvalidAction {
            env: self.name().to_owned(),
            action: action.to_string(),
            space: self.action_space.to_string(),
        };
        let step = match action {
            Action::Discrete(0) => -1,
            Action::Discrete(1) => 1,
            _ => return Err(invalid()),
        };
        let position = self
            .position
            .ok_or_else(|| RlError::NotReset(self.name().to_owned()))?
            + step;
        self.position = Some(position);
        let terminated = position.abs() >= self.size;
        Ok(Transition {
            obs: vec![position as f32],
            reward: if terminated {
                position.signum() as f64
            } else {
                0.0
            },
            terminated,
            truncated: false,
            info: Info::new(),
        })
    }

    fn state(&self) -> Vec<f64> {
        self.position.map(|p| vec![p as f64]).unwrap_or_default()
    }

    fn set_state(&mut self, state: &[f64]) -> Result<(), RlError> {
        match state {
            [p] if p.fract() == 0.0 && p.abs() < self.size as f64 => {
                self.position = Some(*p as i64);
                Ok(())
            }
            _ => Err(RlError::InvalidState {
                env: self.name().to_owned(),
                state: state.to_vec(),
                expected: format!("one whole number strictly within ±{}", self.size),
            }),
        }
    }
}

fn main() -> Result<(), RlError> {
    // Always right: the goal in `size` steps.
    let mut env = TimeLimit::new(LineWalk::new(5), 100);
    env.reset(None);
    let mut steps = 0;
    let last = loop {
        let t = env.step(&Action::Discrete(1))?;
        steps += 1;
        if t.done() {
            break t;
        }
    };
    println!("always right: reward {} after {steps} steps", last.reward);
    assert!(env.step(&Action::Discrete(7)).is_err());

    // Eight walks with alternating actions never reach an end: the time limit truncates them.
    let mut walks = VectorEnv::new(NonZeroUsize::new(8).unwrap(), || {
        Ok(Box::new(TimeLimit::new(LineWalk::new(5), 20)) as Box<dyn Env>)
    })?;
    walks.reset(Some(0));
    let mut truncated = 0;
    for t in 0..40 {
        let actions = vec![Action::Discrete(t % 2); walks.len()];
        truncated += walks
            .step(&actions)?
            .truncated
            .iter()
            .filter(|t| **t)
            .count();
    }
    println!("{truncated} walks truncated by the 20-step limit in 40 steps");
    assert_eq!(truncated, 16);
    Ok(())
}
