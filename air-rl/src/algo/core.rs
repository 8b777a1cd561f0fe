//! [`Core`]: what every algorithm's learner holds — the policy spec and network on the
//! training device, Adam, the seeded generator, episode and timestep counts — with the
//! checkpoint format they share and greedy evaluation.

use std::num::NonZeroUsize;

use air_checkpoint::Checkpoint;
use air_train::{
    ComputeDevice,
    burn::{
        Backend, DispatchDevice,
        grad_clipping::GradientClippingConfig,
        load_model,
        module::AutodiffModule,
        optim::{Adam, AdamConfig, GradientsParams, Optimizer, adaptor::OptimizerAdaptor},
        tensor::Tensor,
    },
};
use rand::{SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{AlgorithmConfig, episodes::EpisodeStats};
use crate::{
    Result, RlError,
    env::{EnvSpec, Space, VectorEnv},
    evaluate::evaluate_batched,
    policy::{POLICY_ENTRY, Policy, PolicyNet, PolicySpec, save_policy},
};

/// The checkpoint entry the algorithm config is saved under.
pub const ALGORITHM_ENTRY: &str = "algorithm.json";
/// The checkpoint entry the learner's counters are saved under.
pub const LEARNER_STATE_ENTRY: &str = "learner_state.json";

type Optim = OptimizerAdaptor<Adam, PolicyNet<Backend>, Backend>;

/// Counters that continue across a restore.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct LearnerState {
    pub(crate) timesteps_total: u64,
    pub(crate) iteration: u64,
    pub(crate) updates_total: u64,
    pub(crate) episodes: EpisodeStats,
}

/// An environment's observation size and action space, read from a fresh copy.
pub(crate) fn spaces(env: &EnvSpec) -> Result<(usize, Space)> {
    let probe = env.make()?;
    Ok((
        probe.observation_space().dim(),
        probe.action_space().clone(),
    ))
}

/// `per_worker × rollout_workers` copies of `env` stepped on `rollout_workers` threads, reset
/// with `seed`, and their first observations.
pub(crate) fn rollout_envs(
    env: &EnvSpec,
    per_worker: usize,
    rollout_workers: NonZeroUsize,
    seed: u64,
) -> Result<(VectorEnv, Vec<Vec<f32>>)> {
    let copies = NonZeroUsize::new(per_worker * rollout_workers.get()).unwrap_or(NonZeroUsize::MIN);
    let factory = env.factory().clone();
    let mut envs = VectorEnv::new(copies, || factory())?;
    if rollout_workers.get() > 1 {
        envs = envs.with_threads(rollout_workers)?;
    }
    let obs = envs.reset(Some(seed));
    Ok((envs, obs))
}

pub(crate) struct Core {
    pub(crate) spec: PolicySpec,
    pub(crate) net: PolicyNet<Backend>,
    optim: Optim,
    pub(crate) train_device: DispatchDevice,
    pub(crate) infer_device: DispatchDevice,
    pub(crate) rng: StdRng,
    pub(crate) seed: u64,
    pub(crate) state: LearnerState,
    pub(crate) env: Option<EnvSpec>,
}

impl Core {
    pub(crate) fn new(
        spec: PolicySpec,
        seed: u64,
        device: ComputeDevice,
        grad_clip: Option<f64>,
        env: Option<EnvSpec>,
    ) -> Result<Self> {
        spec.validate()?;
        let train_device = device.training_device()?;
        let infer_device = device.inference_device()?;
        let mut rng = StdRng::seed_from_u64(seed);
        let net = spec.init::<Backend>(&mut rng, &train_device);
        let optim = AdamConfig::new()
            .with_epsilon(1e-5)
            .with_grad_clipping(grad_clip.map(|c| GradientClippingConfig::Norm(c as f32)))
            .init();
        Ok(Self {
            spec,
            net,
            optim,
            train_device,
            infer_device,
            rng,
            seed,
            state: LearnerState::default(),
            env,
        })
    }

    /// The current policy as an inference network.
    pub(crate) fn policy(&self) -> Policy {
        Policy::new(
            self.spec.clone(),
            self.net.valid(),
            self.infer_device.clone(),
        )
    }

    /// One optimiser step on `loss` with learning rate `lr`.
    pub(crate) fn step(&mut self, loss: Tensor<Backend, 1>, lr: f64) {
        let grads = GradientsParams::from_grads(loss.backward(), &self.net);
        self.net = self.optim.step(lr, self.net.clone(), grads);
        self.state.updates_total += 1;
    }

    /// Saves policy, weights, algorithm config and counters.
    pub(crate) fn save(&self, config: &AlgorithmConfig, checkpoint: &mut Checkpoint) -> Result<()> {
        save_policy(&self.spec, &self.net, checkpoint)?;
        checkpoint.put_json(ALGORITHM_ENTRY, config)?;
        checkpoint.set_metadata_value(air_train::PREDICTOR_KIND_KEY, crate::PREDICTOR_KIND)?;
        checkpoint.put_json(LEARNER_STATE_ENTRY, &self.state)?;
        Ok(())
    }

    /// Continues from `checkpoint`: weights, observation statistics and counters (Adam's
    /// moments start again from zero). The policy shape must match this learner's.
    pub(crate) fn restore(&mut self, checkpoint: &Checkpoint) -> Result<()> {
        if !checkpoint.contains(POLICY_ENTRY) {
            return Err(RlError::NotAnRlCheckpoint {
                entries: checkpoint.entries().into_iter().map(|e| e.name).collect(),
            });
        }
        let saved: PolicySpec = checkpoint.get_verified_json(POLICY_ENTRY)?;
        let shape = |s: &PolicySpec| {
            (
                s.observation_dim,
                s.action_space.clone(),
                s.hidden.clone(),
                s.head,
                s.value_function,
            )
        };
        if shape(&saved) != shape(&self.spec) {
            return Err(RlError::InvalidConfig {
                field: "resume checkpoint",
                value: format!(
                    "a policy of {} observations, action space {}, hidden {:?}, head {:?}",
                    saved.observation_dim, saved.action_space, saved.hidden, saved.head
                ),
                expected: format!(
                    "the policy this run trains: {} observations, action space {}, hidden {:?}, \
                     head {:?}",
                    self.spec.observation_dim,
                    self.spec.action_space,
                    self.spec.hidden,
                    self.spec.head
                ),
            });
        }
        self.net = load_model(self.net.clone(), checkpoint, &self.train_device)?;
        self.spec.obs_filter = saved.obs_filter;
        if checkpoint.contains(LEARNER_STATE_ENTRY) {
            self.state = checkpoint.get_verified_json(LEARNER_STATE_ENTRY)?;
        }
        // A different stream after a restore than from the start, the same for every restore
        // of this checkpoint.
        self.rng = StdRng::seed_from_u64(self.seed ^ self.state.timesteps_total.rotate_left(17));
        Ok(())
    }

    /// Counters common to every algorithm, and greedy evaluation episodes when due.
    pub(crate) fn report(
        &mut self,
        metrics: &mut Map<String, Value>,
        evaluation: Option<(usize, usize)>,
    ) -> Result<()> {
        self.state.iteration += 1;
        metrics.insert(
            "timesteps_total".to_owned(),
            json!(self.state.timesteps_total),
        );
        metrics.insert(
            "num_updates_total".to_owned(),
            json!(self.state.updates_total),
        );
        if let (Some((interval, episodes)), Some(env)) = (evaluation, &self.env)
            && self.state.iteration.is_multiple_of(interval as u64)
        {
            // Fresh seeds each evaluation, reproducible from the run's seed.
            let seed = self
                .seed
                .wrapping_mul(1_000_003)
                .wrapping_add(self.state.iteration * 1000);
            let result = evaluate_batched(&self.policy(), env, episodes, seed)?;
            let mut stats = EpisodeStats::default();
            for (r, l) in result.returns.iter().zip(&result.lengths) {
                stats.finish((*r, *l));
            }
            stats.report("evaluation/", metrics);
        }
        Ok(())
    }
}
