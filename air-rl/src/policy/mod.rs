//! Policies: the network ([`PolicyNet`], built from a [`PolicySpec`]), how it is saved in a
//! checkpoint (spec as `policy.json`, weights as `model.mpk`), and [`Policy`], a trained one
//! loaded for acting.

mod network;
pub(crate) mod sample;
mod spec;

use air_checkpoint::Checkpoint;
use air_train::{
    ComputeDevice,
    burn::{Backend, DispatchDevice, load_model, save_model, tensor::Tensor, tensor::TensorData},
};
use rand::{SeedableRng, rngs::StdRng};

pub use network::{Activation, Mlp};
pub use spec::{Head, ObsFilter, PolicyNet, PolicySpec};

use crate::{
    Result, RlError,
    env::{Action, Space},
};

/// The checkpoint entry the [`PolicySpec`] is saved under.
pub const POLICY_ENTRY: &str = "policy.json";

/// How actions are chosen from the policy's output.
#[derive(Debug)]
pub enum ActionSelection {
    /// The most likely action (the mean of a Gaussian, the arg-max of logits or Q-values).
    Greedy,
    /// A draw from the policy's distribution with this generator (greedy for Q-value and
    /// deterministic heads).
    Sample(Box<StdRng>),
}

impl ActionSelection {
    /// Sampling from a generator seeded with `seed`.
    pub fn sample(seed: u64) -> Self {
        Self::Sample(Box::new(StdRng::seed_from_u64(seed)))
    }
}

/// A trained policy, loaded for acting (RLlib's `Policy.compute_actions`).
#[derive(Debug)]
pub struct Policy {
    spec: PolicySpec,
    net: PolicyNet<Backend>,
    device: DispatchDevice,
}

impl Policy {
    /// The policy saved in `checkpoint`, on the CPU.
    pub fn from_checkpoint(checkpoint: &Checkpoint) -> Result<Self> {
        Self::from_checkpoint_on(checkpoint, ComputeDevice::Cpu)
    }

    /// The policy saved in `checkpoint`, on `device`.
    pub fn from_checkpoint_on(checkpoint: &Checkpoint, device: ComputeDevice) -> Result<Self> {
        if !checkpoint.contains(POLICY_ENTRY) {
            return Err(RlError::NotAnRlCheckpoint {
                entries: checkpoint.entries().into_iter().map(|e| e.name).collect(),
            });
        }
        let spec: PolicySpec = checkpoint.get_verified_json(POLICY_ENTRY)?;
        spec.validate()?;
        let device = device.inference_device()?;
        let net = spec.init::<Backend>(&mut StdRng::seed_from_u64(0), &device);
        let net = load_model(net, checkpoint, &device)?;
        Ok(Self { spec, net, device })
    }

    pub(crate) fn new(spec: PolicySpec, net: PolicyNet<Backend>, device: DispatchDevice) -> Self {
        Self { spec, net, device }
    }

    /// What the policy is.
    pub fn spec(&self) -> &PolicySpec {
        &self.spec
    }

    /// The action for each observation, as the environment takes it (a Gaussian draw clipped
    /// to the action space's bounds).
    pub fn compute_actions<V: AsRef<[f32]>>(
        &self,
        observations: &[V],
        selection: &mut ActionSelection,
    ) -> Result<Vec<Action>> {
        let flat = normalized(&self.spec, observations)?;
        let out = forward(&self.net, &self.spec, flat, &self.device, Values::Skip)?;
        Ok((0..observations.len())
            .map(|i| {
                env_action(
                    &self.spec.action_space,
                    &select(&self.spec, &out, i, selection).0,
                )
            })
            .collect())
    }

    /// The greedy action for one observation.
    pub fn compute_action(&self, observation: &[f32]) -> Result<Action> {
        let mut greedy = ActionSelection::Greedy;
        let mut actions = self.compute_actions(&[observation], &mut greedy)?;
        Ok(actions.remove(0))
    }
}

/// Saves `spec` and `net`'s weights into `checkpoint`.
pub(crate) fn save_policy(
    spec: &PolicySpec,
    net: &PolicyNet<Backend>,
    checkpoint: &mut Checkpoint,
) -> Result<()> {
    checkpoint.put_json(POLICY_ENTRY, spec)?;
    save_model(net, checkpoint)?;
    Ok(())
}

/// Checks observations against the policy: the right length, every value finite.
pub(crate) fn check_observations<V: AsRef<[f32]>>(spec: &PolicySpec, obs: &[V]) -> Result<()> {
    for (i, o) in obs.iter().enumerate() {
        let o = o.as_ref();
        if o.len() != spec.observation_dim {
            return Err(RlError::InvalidObservation {
                found: format!("observation {i} has {} values", o.len()),
                expected: format!(
                    "{} values per observation (the policy's observation size)",
                    spec.observation_dim
                ),
            });
        }
        if let Some(j) = o.iter().position(|v| !v.is_finite()) {
            return Err(RlError::InvalidObservation {
                found: format!("observation {i} holds {} at position {j}", o[j]),
                expected: "finite numbers (no NaN or infinity)".to_owned(),
            });
        }
    }
    Ok(())
}

/// Whether a forward pass computes value estimates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Values {
    Compute,
    Skip,
}

/// A forward pass's outputs, row-major on the host.
#[derive(Debug)]
pub(crate) struct Forward {
    /// `[n, output_dim]`.
    pub(crate) out: Vec<f32>,
    pub(crate) out_dim: usize,
    /// `[n]` value estimates, when asked for.
    pub(crate) values: Vec<f32>,
    /// The Gaussian head's log standard deviation.
    pub(crate) log_std: Vec<f32>,
}

/// Observations checked against the spec and normalised by its filter, flattened row-major.
pub(crate) fn normalized<V: AsRef<[f32]>>(
    spec: &PolicySpec,
    observations: &[V],
) -> Result<Vec<f32>> {
    check_observations(spec, observations)?;
    let mut flat = Vec::with_capacity(observations.len() * spec.observation_dim);
    for o in observations {
        match &spec.obs_filter {
            Some(f) => flat.extend(f.apply(o.as_ref())),
            None => flat.extend_from_slice(o.as_ref()),
        }
    }
    Ok(flat)
}

/// Runs `net` (a plain, non-autodiff one) on normalised observations `flat` (row-major,
/// `observation_dim` per row) in one batch.
pub(crate) fn forward(
    net: &PolicyNet<Backend>,
    spec: &PolicySpec,
    flat: Vec<f32>,
    device: &DispatchDevice,
    values: Values,
) -> Result<Forward> {
    let n = flat.len() / spec.observation_dim;
    let x =
        Tensor::<Backend, 2>::from_data(TensorData::new(flat, [n, spec.observation_dim]), device);
    let out = to_vec(net.head(x.clone(), spec.activation).into_data())?;
    let values = match values {
        Values::Compute => to_vec(net.value(x, spec.activation).into_data())?,
        Values::Skip => Vec::new(),
    };
    let log_std = match &net.log_std {
        Some(p) => to_vec(p.val().into_data())?,
        None => Vec::new(),
    };
    Ok(Forward {
        out,
        out_dim: spec.output_dim(),
        values,
        log_std,
    })
}

pub(crate) fn to_vec(data: TensorData) -> Result<Vec<f32>> {
    data.convert::<f32>().to_vec::<f32>().map_err(|e| {
        RlError::Train(air_train::TrainError::model(
            "reading a tensor",
            format!("{e:?}"),
        ))
    })
}

/// Row `i`'s action and, when sampled from a distribution, its log-probability (0 otherwise).
pub(crate) fn select(
    spec: &PolicySpec,
    out: &Forward,
    i: usize,
    selection: &mut ActionSelection,
) -> (Action, f32) {
    let row = &out.out[i * out.out_dim..(i + 1) * out.out_dim];
    match (spec.head, selection) {
        (Head::Categorical, ActionSelection::Sample(rng)) => {
            let (a, lp) = sample::categorical(row, rng);
            (Action::Discrete(a), lp)
        }
        (Head::Categorical | Head::QValues, _) => (Action::Discrete(sample::argmax(row)), 0.0),
        (Head::Gaussian, ActionSelection::Sample(rng)) => {
            let (a, lp) = sample::gaussian(row, &out.log_std, rng);
            (Action::Continuous(a), lp)
        }
        (Head::Gaussian | Head::Deterministic, _) => (
            Action::Continuous(sample::clip_to_space(&spec.action_space, row)),
            0.0,
        ),
    }
}

/// An action as the environment takes it: Gaussian draws clipped to the box (the unclipped
/// draw is what the policy's log-probability is of).
pub(crate) fn env_action(space: &Space, action: &Action) -> Action {
    match action {
        Action::Continuous(v) => Action::Continuous(sample::clip_to_space(space, v)),
        Action::Discrete(a) => Action::Discrete(*a),
    }
}
