//! Acrobot-v1, as gymnasium's `classic_control/acrobot.py` computes it: the "book" dynamics
//! integrated with one RK4 step of 0.2 s in `f64` (the reset state is drawn in `f32`),
//! observations `[cos θ1, sin θ1, cos θ2, sin θ2, θ̇1, θ̇2]` in `f32`.

use std::f64::consts::PI;

use rand::RngExt;

use crate::env::{
    Action, Env, Info, Space, Transition,
    base::{EnvRng, check_action, check_state, name_and_spaces},
};
use crate::error::{Result, RlError};

const DT: f64 = 0.2;
const M1: f64 = 1.0;
const M2: f64 = 1.0;
const L1: f64 = 1.0;
const LC1: f64 = 0.5;
const LC2: f64 = 0.5;
const I1: f64 = 1.0;
const I2: f64 = 1.0;
const G: f64 = 9.8;
const MAX_VEL_1: f64 = 4.0 * PI;
const MAX_VEL_2: f64 = 9.0 * PI;
const TORQUES: [f64; 3] = [-1.0, 0.0, 1.0];

/// Two links hanging down; torque −1, 0 or +1 on the joint between them; −1 per step until the
/// free end swings above the bar. [`make`](crate::env::make) limits it to 500 steps (Acrobot-v1).
#[derive(Debug)]
pub struct Acrobot {
    /// θ1, θ2, θ̇1, θ̇2.
    state: Option<[f64; 4]>,
    rng: EnvRng,
    observation_space: Space,
    action_space: Space,
}

impl Acrobot {
    /// The environment, before its first reset.
    pub fn new() -> Self {
        let high = [1.0, 1.0, 1.0, 1.0, MAX_VEL_1 as f32, MAX_VEL_2 as f32];
        Self {
            state: None,
            rng: EnvRng::new(),
            observation_space: Space::boxed(high.map(|h| -h), high),
            action_space: Space::Discrete { n: 3 },
        }
    }
}

/// The derivatives of `[θ1, θ2, θ̇1, θ̇2, torque]`, each expression in gymnasium's order of
/// operations (floating point sums depend on it).
fn dsdt(s: [f64; 5]) -> [f64; 5] {
    let [theta1, theta2, dtheta1, dtheta2, a] = s;
    let d1 =
        M1 * (LC1 * LC1) + M2 * (L1 * L1 + LC2 * LC2 + 2.0 * L1 * LC2 * theta2.cos()) + I1 + I2;
    let d2 = M2 * (LC2 * LC2 + L1 * LC2 * theta2.cos()) + I2;
    let phi2 = M2 * LC2 * G * (theta1 + theta2 - PI / 2.0).cos();
    let phi1 = -M2 * L1 * LC2 * (dtheta2 * dtheta2) * theta2.sin()
        - 2.0 * M2 * L1 * LC2 * dtheta2 * dtheta1 * theta2.sin()
        + (M1 * LC1 + M2 * L1) * G * (theta1 - PI / 2.0).cos()
        + phi2;
    let ddtheta2 = (a + d2 / d1 * phi1 - M2 * L1 * LC2 * (dtheta1 * dtheta1) * theta2.sin() - phi2)
        / (M2 * (LC2 * LC2) + I2 - (d2 * d2) / d1);
    let ddtheta1 = -(d2 * ddtheta2 + phi1) / d1;
    [dtheta1, dtheta2, ddtheta1, ddtheta2, 0.0]
}

/// `y + h × k`, elementwise.
fn axpy(y: [f64; 5], h: f64, k: [f64; 5]) -> [f64; 5] {
    std::array::from_fn(|i| y[i] + h * k[i])
}

/// One classic Runge–Kutta step over `DT` (gymnasium's `rk4` with `t = [0, dt]`).
fn rk4(y0: [f64; 5]) -> [f64; 4] {
    let dt2 = DT / 2.0;
    let k1 = dsdt(y0);
    let k2 = dsdt(axpy(y0, dt2, k1));
    let k3 = dsdt(axpy(y0, dt2, k2));
    let k4 = dsdt(axpy(y0, DT, k3));
    let h = DT / 6.0;
    std::array::from_fn(|i| y0[i] + h * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]))
}

fn wrap(mut x: f64, m: f64, big_m: f64) -> f64 {
    let diff = big_m - m;
    while x > big_m {
        x -= diff;
    }
    while x < m {
        x += diff;
    }
    x
}

fn obs(s: &[f64; 4]) -> Vec<f32> {
    vec![
        s[0].cos() as f32,
        s[0].sin() as f32,
        s[1].cos() as f32,
        s[1].sin() as f32,
        s[2] as f32,
        s[3] as f32,
    ]
}

impl Env for Acrobot {
    name_and_spaces!("Acrobot-v1");

    fn reset(&mut self, seed: Option<u64>) -> (Vec<f32>, Info) {
        let rng = self.rng.reseed(seed);
        // Drawn in f64 and kept as f32, as gymnasium's `.astype(np.float32)`.
        let s: [f64; 4] = std::array::from_fn(|_| f64::from(rng.random_range(-0.1..0.1f64) as f32));
        self.state = Some(s);
        (obs(&s), Info::new())
    }

    fn step(&mut self, action: &Action) -> Result<Transition> {
        check_action(self.name(), &self.action_space, action)?;
        let Action::Discrete(a) = *action else {
            unreachable!("checked against Discrete(3)")
        };
        let s = self
            .state
            .ok_or_else(|| RlError::NotReset(self.name().to_owned()))?;
        let mut ns = rk4([s[0], s[1], s[2], s[3], TORQUES[a]]);
        ns[0] = wrap(ns[0], -PI, PI);
        ns[1] = wrap(ns[1], -PI, PI);
        ns[2] = ns[2].clamp(-MAX_VEL_1, MAX_VEL_1);
        ns[3] = ns[3].clamp(-MAX_VEL_2, MAX_VEL_2);
        self.state = Some(ns);
        let terminated = -ns[0].cos() - (ns[1] + ns[0]).cos() > 1.0;
        Ok(Transition {
            obs: obs(&ns),
            reward: if terminated { 0.0 } else { -1.0 },
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
            "joint angles θ1, θ2 and angular velocities θ̇1, θ̇2",
        )?;
        self.state = Some([state[0], state[1], state[2], state[3]]);
        Ok(())
    }
}
