//! Pendulum-v1, as gymnasium's `classic_control/pendulum.py` computes it: state in `f64`, the
//! torque `f32` (so `3 / (m l²) × u` is taken in `f32`, as NumPy 2 does), observations
//! `[cos θ, sin θ, θ̇]` in `f32`.

use std::f64::consts::PI;

use rand::RngExt;

use crate::env::{
    Action, Env, Info, Space, Transition,
    base::{EnvRng, check_action, check_state, name_and_spaces},
};
use crate::error::{Result, RlError};

const MAX_SPEED: f64 = 8.0;
const MAX_TORQUE: f32 = 2.0;
const DT: f64 = 0.05;
const G: f64 = 10.0;
const M: f64 = 1.0;
const L: f64 = 1.0;

/// Swing a pendulum up and keep it there: torque in [−2, 2]; the cost is
/// θ² + 0.1 θ̇² + 0.001 u² (θ normalised to [−π, π)). [`make`](crate::env::make) limits it to 200
/// steps (Pendulum-v1).
#[derive(Debug)]
pub struct Pendulum {
    /// θ, θ̇.
    state: Option<[f64; 2]>,
    rng: EnvRng,
    observation_space: Space,
    action_space: Space,
}

impl Pendulum {
    /// The environment, before its first reset.
    pub fn new() -> Self {
        let high = [1.0, 1.0, MAX_SPEED as f32];
        Self {
            state: None,
            rng: EnvRng::new(),
            observation_space: Space::boxed(high.map(|h| -h), high),
            action_space: Space::boxed([-MAX_TORQUE], [MAX_TORQUE]),
        }
    }
}

/// NumPy's floor remainder for a positive divisor.
fn angle_normalize(x: f64) -> f64 {
    (x + PI).rem_euclid(2.0 * PI) - PI
}

fn obs([theta, theta_dot]: [f64; 2]) -> Vec<f32> {
    vec![theta.cos() as f32, theta.sin() as f32, theta_dot as f32]
}

impl Env for Pendulum {
    name_and_spaces!("Pendulum-v1");

    fn reset(&mut self, seed: Option<u64>) -> (Vec<f32>, Info) {
        let rng = self.rng.reseed(seed);
        let theta = rng.random_range(-PI..PI);
        let theta_dot = rng.random_range(-1.0..1.0);
        self.state = Some([theta, theta_dot]);
        (obs([theta, theta_dot]), Info::new())
    }

    fn step(&mut self, action: &Action) -> Result<Transition> {
        check_action(self.name(), &self.action_space, action)?;
        let Action::Continuous(a) = action else {
            unreachable!("checked against a Box")
        };
        let [th, thdot] = self
            .state
            .ok_or_else(|| RlError::NotReset(self.name().to_owned()))?;
        let u = a[0].clamp(-MAX_TORQUE, MAX_TORQUE);
        let n = angle_normalize(th);
        let costs = n * n + 0.1 * (thdot * thdot) + f64::from(0.001f32 * (u * u));
        let torque = f64::from(3.0f32 / (M * L * L) as f32 * u);
        let new_thdot =
            (thdot + (3.0 * G / (2.0 * L) * th.sin() + torque) * DT).clamp(-MAX_SPEED, MAX_SPEED);
        let new_th = th + new_thdot * DT;
        let s = [new_th, new_thdot];
        self.state = Some(s);
        Ok(Transition {
            obs: obs(s),
            reward: -costs,
            terminated: false,
            truncated: false,
            info: Info::new(),
        })
    }

    fn state(&self) -> Vec<f64> {
        self.state.map(Vec::from).unwrap_or_default()
    }

    fn set_state(&mut self, state: &[f64]) -> Result<()> {
        check_state(self.name(), state, 2, "angle, angular velocity")?;
        self.state = Some([state[0], state[1]]);
        Ok(())
    }
}
