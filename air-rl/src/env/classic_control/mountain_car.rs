//! MountainCar-v0 and MountainCarContinuous-v0, as gymnasium's `classic_control` computes them
//! (the discrete one in `f64`; the continuous one in gymnasium's mix: its state becomes `f32`
//! after the first step, and its force term is computed in `f32`).

use rand::RngExt;

use crate::env::{
    Action, Env, Info, Space, Transition,
    base::{EnvRng, check_action, check_state, name_and_spaces},
};
use crate::error::{Result, RlError};

const MIN_POSITION: f64 = -1.2;
const MAX_POSITION: f64 = 0.6;
const MAX_SPEED: f64 = 0.07;

fn spaces() -> Space {
    Space::boxed(
        [MIN_POSITION as f32, -MAX_SPEED as f32],
        [MAX_POSITION as f32, MAX_SPEED as f32],
    )
}

/// A car in a valley: push left (0), nothing (1) or right (2); −1 per step until the car
/// reaches the flag at 0.5. [`make`](crate::env::make) limits it to 200 steps (MountainCar-v0).
#[derive(Debug)]
pub struct MountainCar {
    /// Position, velocity.
    state: Option<[f64; 2]>,
    rng: EnvRng,
    observation_space: Space,
    action_space: Space,
}

impl MountainCar {
    /// The environment, before its first reset.
    pub fn new() -> Self {
        Self {
            state: None,
            rng: EnvRng::new(),
            observation_space: spaces(),
            action_space: Space::Discrete { n: 3 },
        }
    }
}

impl Env for MountainCar {
    name_and_spaces!("MountainCar-v0");

    fn reset(&mut self, seed: Option<u64>) -> (Vec<f32>, Info) {
        let position = self.rng.reseed(seed).random_range(-0.6..-0.4);
        self.state = Some([position, 0.0]);
        (vec![position as f32, 0.0], Info::new())
    }

    fn step(&mut self, action: &Action) -> Result<Transition> {
        check_action(self.name(), &self.action_space, action)?;
        let Action::Discrete(a) = *action else {
            unreachable!("checked against Discrete(3)")
        };
        let [mut position, mut velocity] = self
            .state
            .ok_or_else(|| RlError::NotReset(self.name().to_owned()))?;
        velocity += (a as f64 - 1.0) * 0.001 + (3.0 * position).cos() * -0.0025;
        velocity = velocity.clamp(-MAX_SPEED, MAX_SPEED);
        position += velocity;
        position = position.clamp(MIN_POSITION, MAX_POSITION);
        if position == MIN_POSITION && velocity < 0.0 {
            velocity = 0.0;
        }
        let terminated = position >= 0.5 && velocity >= 0.0;
        self.state = Some([position, velocity]);
        Ok(Transition {
            obs: vec![position as f32, velocity as f32],
            reward: -1.0,
            terminated,
            truncated: false,
            info: Info::new(),
        })
    }

    fn state(&self) -> Vec<f64> {
        self.state.map(Vec::from).unwrap_or_default()
    }

    fn set_state(&mut self, state: &[f64]) -> Result<()> {
        check_state(self.name(), state, 2, "position, velocity")?;
        self.state = Some([state[0], state[1]]);
        Ok(())
    }
}

/// The car with a continuous force in [−1, 1]: +100 at the flag (0.45), −0.1 × force² per
/// step. [`make`](crate::env::make) limits it to 999 steps (MountainCarContinuous-v0).
#[derive(Debug)]
pub struct MountainCarContinuous {
    state: Option<Precision>,
    rng: EnvRng,
    observation_space: Space,
    action_space: Space,
}

/// Gymnasium keeps this environment's state in `f64` after a reset and in `f32` after a step.
#[derive(Debug, Clone, Copy)]
enum Precision {
    F64([f64; 2]),
    F32([f32; 2]),
}

impl MountainCarContinuous {
    /// The environment, before its first reset.
    pub fn new() -> Self {
        Self {
            state: None,
            rng: EnvRng::new(),
            observation_space: spaces(),
            action_space: Space::boxed([-1.0], [1.0]),
        }
    }
}

/// The force as gymnasium holds it: the `float32` action when within [−1, 1], else the Python
/// float bound it was clipped to (which makes the arithmetic around it `f64`).
#[derive(Debug, Clone, Copy)]
enum Force {
    F32(f32),
    Clipped(f64),
}

impl Force {
    fn of(action: f32) -> Self {
        if action < -1.0 {
            Self::Clipped(-1.0)
        } else if action > 1.0 {
            Self::Clipped(1.0)
        } else {
            Self::F32(action)
        }
    }

    /// `force * power - gravity` in gymnasium's precision (NumPy 2 keeps a `float32` operand
    /// with Python floats in `float32`).
    fn term(self, gravity: f64) -> f64 {
        match self {
            Self::F32(f) => f64::from(f * 0.0015f32 - gravity as f32),
            Self::Clipped(f) => f * 0.0015 - gravity,
        }
    }
}

/// The first step after a reset: the state is `float64`.
fn step_from_f64(position: f64, velocity: f64, force: Force) -> (f64, f64, bool) {
    let gravity = 0.0025 * (3.0 * position).cos();
    let velocity = (velocity + force.term(gravity)).clamp(-MAX_SPEED, MAX_SPEED);
    let position = (position + velocity).clamp(MIN_POSITION, MAX_POSITION);
    let velocity = if position == MIN_POSITION && velocity < 0.0 {
        0.0
    } else {
        velocity
    };
    (position, velocity, position >= 0.45 && velocity >= 0.0)
}

/// Later steps: the state is `float32`; `3 * position` is taken in `f32` before `math.cos`,
/// sums with an `f32` operand stay `f32`, bounds are Python floats.
fn step_from_f32(position: f32, velocity: f32, force: Force) -> (f64, f64, bool) {
    let gravity = 0.0025 * f64::from(3.0f32 * position).cos();
    let mut v = f64::from(velocity + force.term(gravity) as f32);
    v = v.clamp(-MAX_SPEED, MAX_SPEED);
    let narrow_position = f64::from(position + v as f32);
    let p = narrow_position.clamp(MIN_POSITION, MAX_POSITION);
    if p == MIN_POSITION && v < 0.0 {
        v = 0.0;
    }
    // A float32 position compares with 0.45 taken as float32.
    let reached = if p == narrow_position {
        (p as f32) >= 0.45f32
    } else {
        p >= 0.45
    };
    (p, v, reached && v >= 0.0)
}

impl Env for MountainCarContinuous {
    name_and_spaces!("MountainCarContinuous-v0");

    fn reset(&mut self, seed: Option<u64>) -> (Vec<f32>, Info) {
        let position = self.rng.reseed(seed).random_range(-0.6..-0.4);
        self.state = Some(Precision::F64([position, 0.0]));
        (vec![position as f32, 0.0], Info::new())
    }

    fn step(&mut self, action: &Action) -> Result<Transition> {
        check_action(self.name(), &self.action_space, action)?;
        let Action::Continuous(a) = action else {
            unreachable!("checked against a Box")
        };
        let state = self
            .state
            .ok_or_else(|| RlError::NotReset(self.name().to_owned()))?;
        let force = Force::of(a[0]);
        let (position, velocity, terminated) = match state {
            Precision::F64([p, v]) => step_from_f64(p, v, force),
            Precision::F32([p, v]) => step_from_f32(p, v, force),
        };
        let mut reward = if terminated { 100.0 } else { 0.0 };
        reward -= f64::from(a[0]).powi(2) * 0.1;
        let s = [position as f32, velocity as f32];
        self.state = Some(Precision::F32(s));
        Ok(Transition {
            obs: s.to_vec(),
            reward,
            terminated,
            truncated: false,
            info: Info::new(),
        })
    }

    fn state(&self) -> Vec<f64> {
        match self.state {
            Some(Precision::F64(s)) => s.to_vec(),
            Some(Precision::F32(s)) => s.map(f64::from).to_vec(),
            None => Vec::new(),
        }
    }

    fn set_state(&mut self, state: &[f64]) -> Result<()> {
        check_state(self.name(), state, 2, "position, velocity")?;
        self.state = Some(Precision::F64([state[0], state[1]]));
        Ok(())
    }
}
