//! [`evaluate`]: a policy's returns over whole episodes (greedy actions, seeded resets).

use air_checkpoint::Checkpoint;

use crate::{
    Result,
    env::{Env, EnvSpec},
    policy::{ActionSelection, Policy},
};

/// The returns and lengths of evaluation episodes.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Each episode's return (sum of rewards).
    pub returns: Vec<f64>,
    /// Each episode's length in steps.
    pub lengths: Vec<u64>,
}

impl Evaluation {
    /// The mean return (`NaN` for no episodes).
    pub fn mean_return(&self) -> f64 {
        self.returns.iter().sum::<f64>() / self.returns.len() as f64
    }

    /// The mean length (`NaN` for no episodes).
    pub fn mean_length(&self) -> f64 {
        self.lengths.iter().sum::<u64>() as f64 / self.lengths.len() as f64
    }
}

/// Runs the policy saved in `checkpoint` greedily for `episodes` episodes of fresh copies of
/// `env` (all at once, one batched forward pass per step), episode *k* reset with seed `k`.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use air_rl::{env::EnvSpec, evaluate};
/// let checkpoint = air_checkpoint::Checkpoint::from_directory("/tmp/ppo/checkpoint_000010")?;
/// let result = evaluate(&checkpoint, &EnvSpec::named("CartPole-v1")?, 100)?;
/// println!("mean return {}", result.mean_return());
/// # Ok(()) }
/// ```
pub fn evaluate(checkpoint: &Checkpoint, env: &EnvSpec, episodes: usize) -> Result<Evaluation> {
    let policy = Policy::from_checkpoint(checkpoint)?;
    evaluate_batched(&policy, env, episodes, 0)
}

/// Greedy episodes of `policy` on `episodes` copies of `env` stepped together (episode *k*
/// reset with seed `seed + k`): one batched forward pass per step for all unfinished episodes.
pub(crate) fn evaluate_batched(
    policy: &Policy,
    env: &EnvSpec,
    episodes: usize,
    seed: u64,
) -> Result<Evaluation> {
    let mut envs: Vec<Box<dyn Env>> = (0..episodes).map(|_| env.make()).collect::<Result<_>>()?;
    let mut obs: Vec<Vec<f32>> = envs
        .iter_mut()
        .enumerate()
        .map(|(k, e)| e.reset(Some(seed.wrapping_add(k as u64))).0)
        .collect();
    let mut returns = vec![0.0; episodes];
    let mut lengths = vec![0u64; episodes];
    let mut running: Vec<usize> = (0..episodes).collect();
    while !running.is_empty() {
        let batch: Vec<&Vec<f32>> = running.iter().map(|k| &obs[*k]).collect();
        let actions = policy.compute_actions(&batch, &mut ActionSelection::Greedy)?;
        let mut still = Vec::with_capacity(running.len());
        for (k, action) in running.iter().zip(actions) {
            let t = envs[*k].step(&action)?;
            returns[*k] += t.reward;
            lengths[*k] += 1;
            if !(t.terminated || t.truncated) {
                still.push(*k);
            }
            obs[*k] = t.obs;
        }
        running = still;
    }
    Ok(Evaluation { returns, lengths })
}

/// Runs `policy` for `episodes` episodes of `env`, episode *k* reset with seed `seed + k`.
pub fn evaluate_policy(
    policy: &Policy,
    env: &mut dyn Env,
    episodes: usize,
    seed: u64,
    selection: &mut ActionSelection,
) -> Result<Evaluation> {
    let mut out = Evaluation {
        returns: Vec::with_capacity(episodes),
        lengths: Vec::with_capacity(episodes),
    };
    for k in 0..episodes {
        let (mut obs, _) = env.reset(Some(seed.wrapping_add(k as u64)));
        let (mut total, mut steps) = (0.0, 0u64);
        loop {
            let action = policy.compute_actions(&[&obs], selection)?.remove(0);
            let t = env.step(&action)?;
            total += t.reward;
            steps += 1;
            obs = t.obs;
            if t.terminated || t.truncated {
                break;
            }
        }
        out.returns.push(total);
        out.lengths.push(steps);
    }
    Ok(out)
}
