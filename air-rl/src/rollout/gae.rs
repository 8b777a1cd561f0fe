//! Generalised advantage estimation (Schulman et al., 2016), as PPO uses it.

/// One rollout segment of a single environment copy: per step the reward, the value estimate
/// of the observation acted on, and how the step ended.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    /// The step's reward.
    pub reward: f64,
    /// V(s_t), the value estimate of the observation the action was taken in.
    pub value: f64,
    /// The episode terminated at this step: no value after it.
    pub terminated: bool,
    /// The episode was truncated at this step (a time limit): the value after it is
    /// bootstrapped from `truncated_value`, the estimate of the final observation.
    pub truncated: bool,
    /// V(final observation) for a truncated step (ignored otherwise).
    pub truncated_value: f64,
}

/// Advantages and value targets (`advantage + value`) of a segment, given V of the
/// observation after its last step (`last_value`, used when that step did not end its episode).
///
/// δ_t = r_t + γ V(s_{t+1}) − V(s_t), with V(s_{t+1}) = 0 after a termination and the final
/// observation's value after a truncation; A_t = δ_t + γλ A_{t+1}, cut at every episode end.
///
/// ```
/// use air_rl::rollout::{Step, gae};
///
/// let step = |reward, value| Step { reward, value, terminated: false, truncated: false, truncated_value: 0.0 };
/// // One step, then the episode goes on with V = 1: δ = 1 + 0.5 × 1 − 0 = 1.5.
/// let (adv, ret) = gae(&[step(1.0, 0.0)], 1.0, 0.5, 0.9);
/// assert_eq!((adv[0], ret[0]), (1.5, 1.5));
/// ```
pub fn gae(steps: &[Step], last_value: f64, gamma: f64, lambda: f64) -> (Vec<f64>, Vec<f64>) {
    let mut advantages = vec![0.0; steps.len()];
    let mut next_advantage = 0.0;
    let mut next_value = last_value;
    for (t, s) in steps.iter().enumerate().rev() {
        let (bootstrap, carry) = if s.terminated {
            (0.0, 0.0)
        } else if s.truncated {
            (s.truncated_value, 0.0)
        } else {
            (next_value, next_advantage)
        };
        let delta = gamma.mul_add(bootstrap, s.reward) - s.value;
        advantages[t] = (gamma * lambda).mul_add(carry, delta);
        next_advantage = advantages[t];
        next_value = s.value;
    }
    let returns = advantages
        .iter()
        .zip(steps)
        .map(|(a, s)| a + s.value)
        .collect();
    (advantages, returns)
}
