//! CartPole-v1, as gymnasium's `classic_control/cartpole.py` computes it: Euler integration of
//! the Barto–Sutton–Anderson cart-pole in `f64`, observations in `f32`.

use rand::RngExt;

use crate::env::{
    Action, Env, Info, Space, Transition,
    base::{EnvRng, check_action, check_state, name_and_spaces},
};
use crate::error::{Result, RlError};

const GRAVITY: f64 = 9.8;
const MASS_CART: f64 = 1.0;
const MASS_POLE: f64 = 0.1;
const TOTAL_MASS: f64 = MASS_POLE + MASS_CART;
/// Half the pole's length.
const LENGTH: f64 = 0.5;
const POLE_MASS_LENGTH: f64 = MASS_POLE * LENGTH;
const FORCE_MAG: f64 = 10.0;
/// Seconds between state updates.
const TAU: f64 = 0.02;
const THETA_THRESHOLD: f64 = 12.0 * 2.0 * std::f64::consts::PI / 360.0;
const X_THRESHOLD: f64 = 2.4;

/// A pole on a cart: push left (0) or right (1); +1 per step until the pole tilts past 12° or
/// the cart leaves ±2.4. Wrap it in a [`TimeLimit`](crate::env::TimeLimit) of 500 for CartPole-v1
/// ([`make`](crate::env::make) does).
#[derive(Debug)]
pub struct CartPole {
    state: Option<[f64; 4]>,
    steps_beyond_terminated: Option<u32>,
    rng: EnvRng,
    observation_space: Space,
    action_space: Space,
}

impl CartPole {
    /// The environment, before its first reset.
    pub fn new() -> Self {
        let high = [
            (X_THRESHOLD * 2.0) as f32,
            f32::INFINITY,
            (THETA_THRESHOLD * 2.0) as f32,
            f32::INFINITY,
        ];
        Self {
            state: None,
            steps_beyond_terminated: None,
            rng: EnvRng::new(),
            observation_space: Space::boxed(high.map(|h| -h), high),
            action_space: Space::Discrete { n: 2 },
        }
    }
}

fn obs(s: &[f64; 4]) -> Vec<f32> {
    s.iter().map(|&v| v as f32).collect()
}

impl Env for CartPole {
    name_and_spaces!("CartPole-v1");

    fn reset(&mut self, seed: Option<u64>) -> (Vec<f32>, Info) {
        let rng = self.rng.reseed(seed);
        let s: [f64; 4] = std::array::from_fn(|_| rng.random_range(-0.05..0.05));
        self.state = Some(s);
        self.steps_beyond_terminated = None;
        (obs(&s), Info::new())
    }

    fn step(&mut self, action: &Action) -> Result<Transition> {
        check_action(self.name(), &self.action_space, action)?;
        let [x, x_dot, theta, theta_dot] = self
            .state
            .ok_or_else(|| RlError::NotReset(self.name().to_owned()))?;
        let force = if *action == Action::Discrete(1) {
            FORCE_MAG
        } else {
            -FORCE_MAG
        };
        let (sin, cos) = theta.sin_cos();
        let temp = (force + POLE_MASS_LENGTH * (theta_dot * theta_dot) * sin) / TOTAL_MASS;
        let theta_acc = (GRAVITY * sin - cos * temp)
            / (LENGTH * (4.0 / 3.0 - MASS_POLE * (cos * cos) / TOTAL_MASS));
        let x_acc = temp - POLE_MASS_LENGTH * theta_acc * cos / TOTAL_MASS;
        let s = [
            x + TAU * x_dot,
            x_dot + TAU * x_acc,
            theta + TAU * theta_dot,
            theta_dot + TAU * theta_acc,
        ];
        self.state = Some(s);
        let terminated = s[0] < -X_THRESHOLD
            || s[0] > X_THRESHOLD
            || s[2] < -THETA_THRESHOLD
            || s[2] > THETA_THRESHOLD;
        let reward = if !terminated {
            1.0
        } else if let Some(n) = &mut self.steps_beyond_terminated {
            // Stepping on after termination: undefined in gymnasium, which answers 0.
            *n += 1;
            0.0
        } else {
            self.steps_beyond_terminated = Some(0);
            1.0
        };
        Ok(Transition {
            obs: obs(&s),
            reward,
            terminated,
            truncated: false,
            info: Info::new(),
        })
    }

    fn state(&self) -> Vec<f64> {
        self.state.map(Vec::from).unwrap_or_default()
    }

    fn set_state(&mut self, state: &[f64]) -> Result<()> {
        check_state(
            self.name(),
            state,
            4,
            "cart position, cart velocity, pole angle, pole angular velocity",
        )?;
        self.state = Some([state[0], state[1], state[2], state[3]]);
        self.steps_beyond_terminated = None;
        Ok(())
    }
}
