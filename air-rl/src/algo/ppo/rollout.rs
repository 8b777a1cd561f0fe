//! One PPO training batch: `fragment` steps of every environment copy with sampled actions,
//! then advantages and value targets by GAE per copy.

use air_train::burn::Backend;
use rand::{SeedableRng, rngs::StdRng};

use crate::{
    Result,
    algo::{core::Core, episodes::EpisodeStats},
    env::{Action, VectorEnv},
    policy::{self, ActionSelection, PolicyNet, Values},
    rollout::{Step, gae},
};

/// A training batch, time-major (`t × copies + i`).
#[derive(Debug, Default)]
pub(crate) struct Batch {
    /// Normalised observations, `observation_dim` per step.
    pub(crate) obs: Vec<f32>,
    /// Discrete actions (one per step) or continuous ones (`action_dim` per step).
    pub(crate) discrete: Vec<i64>,
    pub(crate) continuous: Vec<f32>,
    pub(crate) log_p: Vec<f32>,
    pub(crate) values: Vec<f32>,
    pub(crate) advantages: Vec<f32>,
    pub(crate) returns: Vec<f32>,
}

impl Batch {
    pub(crate) fn len(&self) -> usize {
        self.log_p.len()
    }
}

/// The environments and observations a PPO learner samples from.
pub(crate) struct Sampler {
    pub(crate) envs: VectorEnv,
    pub(crate) obs: Vec<Vec<f32>>,
    pub(crate) episodes: EpisodeStats,
}

struct Raw {
    rewards: Vec<f64>,
    terminated: Vec<bool>,
    truncated: Vec<bool>,
    /// (index in the batch, V(final observation)) of truncated steps.
    truncated_values: Vec<(usize, f64)>,
}

impl Sampler {
    /// Collects `fragment` steps per copy with the learner's current policy, and updates the
    /// observation statistics afterwards (the batch itself is normalised with the statistics
    /// it was sampled with).
    pub(crate) fn collect(
        &mut self,
        core: &mut Core,
        fragment: usize,
        gamma: f64,
        lambda: f64,
    ) -> Result<Batch> {
        let net: PolicyNet<Backend> = air_train::burn::module::AutodiffModule::valid(&core.net);
        let copies = self.envs.len();
        let mut batch = Batch::default();
        let mut raw = Raw {
            rewards: Vec::new(),
            terminated: Vec::new(),
            truncated: Vec::new(),
            truncated_values: Vec::new(),
        };
        let mut seen: Vec<Vec<f32>> = Vec::new();
        let mut final_obs: Vec<(usize, Vec<f32>)> = Vec::new();
        let mut selection = ActionSelection::Sample(Box::new(StdRng::from_rng(&mut core.rng)));
        for t in 0..fragment {
            let flat = policy::normalized(&core.spec, &self.obs)?;
            batch.obs.extend_from_slice(&flat);
            let out = policy::forward(&net, &core.spec, flat, &core.infer_device, Values::Compute)?;
            let mut actions = Vec::with_capacity(copies);
            for i in 0..copies {
                let (action, log_p) = policy::select(&core.spec, &out, i, &mut selection);
                match &action {
                    Action::Discrete(a) => batch.discrete.push(*a as i64),
                    Action::Continuous(v) => batch.continuous.extend(v),
                }
                batch.log_p.push(log_p);
                actions.push(policy::env_action(&core.spec.action_space, &action));
            }
            batch.values.extend(&out.values);
            let step = self.envs.step(&actions)?;
            if core.spec.obs_filter.is_some() {
                seen.append(&mut std::mem::take(&mut self.obs));
            }
            for i in 0..copies {
                let done = step.terminated[i] || step.truncated[i];
                self.episodes.step(i, step.rewards[i], done);
                if step.truncated[i]
                    && !step.terminated[i]
                    && let Some(f) = &step.final_obs[i]
                {
                    final_obs.push((t * copies + i, f.clone()));
                }
            }
            raw.rewards.extend(&step.rewards);
            raw.terminated.extend(&step.terminated);
            raw.truncated.extend(&step.truncated);
            self.obs = step.obs;
        }
        core.state.timesteps_total += (fragment * copies) as u64;
        // Values of the observations after the batch, and of truncated episodes' last ones.
        let mut tail: Vec<Vec<f32>> = self.obs.clone();
        tail.extend(final_obs.iter().map(|(_, o)| o.clone()));
        let flat = policy::normalized(&core.spec, &tail)?;
        let values =
            policy::forward(&net, &core.spec, flat, &core.infer_device, Values::Compute)?.values;
        raw.truncated_values = final_obs
            .iter()
            .zip(&values[copies..])
            .map(|((k, _), v)| (*k, f64::from(*v)))
            .collect();
        advantages(&mut batch, &raw, &values[..copies], copies, gamma, lambda);
        if let Some(filter) = &mut core.spec.obs_filter {
            filter.stats.update(&seen);
        }
        Ok(batch)
    }
}

/// GAE per copy, written back time-major.
fn advantages(batch: &mut Batch, raw: &Raw, last: &[f32], copies: usize, gamma: f64, lambda: f64) {
    let n = batch.len();
    let fragment = n / copies;
    batch.advantages = vec![0.0; n];
    batch.returns = vec![0.0; n];
    let mut truncated_value = vec![0.0; n];
    for (k, v) in &raw.truncated_values {
        truncated_value[*k] = *v;
    }
    for (i, last_value) in last.iter().enumerate().take(copies) {
        let steps: Vec<Step> = (0..fragment)
            .map(|t| {
                let k = t * copies + i;
                Step {
                    reward: raw.rewards[k],
                    value: f64::from(batch.values[k]),
                    terminated: raw.terminated[k],
                    truncated: raw.truncated[k] && !raw.terminated[k],
                    truncated_value: truncated_value[k],
                }
            })
            .collect();
        let (adv, ret) = gae(&steps, f64::from(*last_value), gamma, lambda);
        for t in 0..fragment {
            batch.advantages[t * copies + i] = adv[t] as f32;
            batch.returns[t * copies + i] = ret[t] as f32;
        }
    }
}
