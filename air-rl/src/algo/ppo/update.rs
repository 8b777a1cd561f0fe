//! PPO's update: epochs of shuffled minibatches, each one Adam step on the clipped surrogate,
//! the (optionally clipped) value loss and the entropy bonus.

use air_train::burn::{
    Backend, DispatchDevice,
    tensor::{Int, Tensor, TensorData, activation},
};
use rand::seq::SliceRandom;
use serde_json::{Map, Value, json};

use super::{PpoConfig, rollout::Batch};
use crate::{algo::core::Core, policy::Head};

/// ln √(2π).
const HALF_LN_TAU: f32 = 0.918_938_5;

/// Losses summed over minibatches.
#[derive(Debug, Default)]
struct Totals {
    policy: f64,
    value: f64,
    entropy: f64,
    kl: f64,
    clip_fraction: f64,
    count: f64,
}

/// Runs the update on `batch` and reports the mean losses.
pub(crate) fn update(
    core: &mut Core,
    config: &PpoConfig,
    batch: &mut Batch,
    metrics: &mut Map<String, Value>,
) {
    if config.normalize_advantages {
        normalize(&mut batch.advantages);
    }
    let n = batch.len();
    let lr = config.lr_at(core.state.timesteps_total);
    let mut order: Vec<usize> = (0..n).collect();
    let mut totals = Totals::default();
    for _ in 0..config.num_sgd_iter {
        order.shuffle(&mut core.rng);
        for chunk in order.chunks(config.sgd_minibatch_size) {
            let parts = minibatch_loss(core, config, batch, chunk);
            let loss = parts.policy.clone() + parts.value.clone() * config.vf_loss_coeff
                - parts.entropy.clone() * config.entropy_coeff;
            let scalars = [
                parts.policy,
                parts.value,
                parts.entropy,
                parts.kl,
                parts.clipped,
            ];
            core.step(loss, lr);
            let [p, v, e, k, c] = scalars.map(|t| f64::from(t.into_scalar()));
            totals.policy += p;
            totals.value += v;
            totals.entropy += e;
            totals.kl += k;
            totals.clip_fraction += c;
            totals.count += 1.0;
        }
    }
    let c = totals.count.max(1.0);
    metrics.insert("policy_loss".to_owned(), json!(totals.policy / c));
    metrics.insert("vf_loss".to_owned(), json!(totals.value / c));
    metrics.insert("entropy".to_owned(), json!(totals.entropy / c));
    metrics.insert("kl".to_owned(), json!(totals.kl / c));
    metrics.insert("clip_fraction".to_owned(), json!(totals.clip_fraction / c));
    metrics.insert("cur_lr".to_owned(), json!(lr));
}

fn normalize(x: &mut [f32]) {
    let n = x.len() as f32;
    let mean = x.iter().sum::<f32>() / n;
    let std = (x.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / n).sqrt();
    x.iter_mut().for_each(|v| *v = (*v - mean) / (std + 1e-8));
}

struct LossParts {
    policy: Tensor<Backend, 1>,
    value: Tensor<Backend, 1>,
    entropy: Tensor<Backend, 1>,
    kl: Tensor<Backend, 1>,
    clipped: Tensor<Backend, 1>,
}

fn gather<T: Copy>(src: &[T], rows: &[usize], width: usize) -> Vec<T> {
    let mut out = Vec::with_capacity(rows.len() * width);
    for &r in rows {
        out.extend_from_slice(&src[r * width..(r + 1) * width]);
    }
    out
}

fn vector(v: Vec<f32>, device: &DispatchDevice) -> Tensor<Backend, 1> {
    let n = v.len();
    Tensor::from_data(TensorData::new(v, [n]), device)
}

fn minibatch_loss(core: &Core, config: &PpoConfig, batch: &Batch, rows: &[usize]) -> LossParts {
    let device = &core.train_device;
    let spec = &core.spec;
    let m = rows.len();
    let d = spec.observation_dim;
    let obs = Tensor::<Backend, 2>::from_data(
        TensorData::new(gather(&batch.obs, rows, d), [m, d]),
        device,
    );
    let out = core.net.head(obs.clone(), spec.activation);
    let (log_p, entropy) = match spec.head {
        Head::Gaussian => {
            let k = spec.output_dim();
            let actions = Tensor::<Backend, 2>::from_data(
                TensorData::new(gather(&batch.continuous, rows, k), [m, k]),
                device,
            );
            let log_std = core
                .net
                .log_std
                .as_ref()
                .map(|p| p.val())
                .unwrap_or_else(|| Tensor::zeros([k], device))
                .unsqueeze_dim::<2>(0);
            let z = (actions - out) / log_std.clone().exp().expand([m, k]);
            let log_p = (z.square() * -0.5 - log_std.clone().expand([m, k]) - HALF_LN_TAU)
                .sum_dim(1)
                .flatten::<1>(0, 1);
            let entropy = (log_std + (0.5 + HALF_LN_TAU))
                .sum_dim(1)
                .flatten::<1>(0, 1);
            (log_p, entropy)
        }
        _ => {
            let actions = Tensor::<Backend, 2, Int>::from_data(
                TensorData::new(gather(&batch.discrete, rows, 1), [m, 1]),
                device,
            );
            let lsm = activation::log_softmax(out, 1);
            let log_p = lsm.clone().gather(1, actions).flatten::<1>(0, 1);
            let entropy = (lsm.clone().exp() * lsm)
                .sum_dim(1)
                .flatten::<1>(0, 1)
                .neg()
                .mean();
            (log_p, entropy)
        }
    };
    let old_log_p = vector(gather(&batch.log_p, rows, 1), device);
    let adv = vector(gather(&batch.advantages, rows, 1), device);
    let log_ratio = log_p - old_log_p;
    let ratio = log_ratio.clone().exp();
    let eps = config.clip_param as f32;
    let surrogate =
        (ratio.clone() * adv.clone()).min_pair(ratio.clone().clamp(1.0 - eps, 1.0 + eps) * adv);
    let policy = surrogate.mean().neg();
    let returns = vector(gather(&batch.returns, rows, 1), device);
    let value = core.net.value(obs, spec.activation);
    let value = match config.vf_clip_param {
        Some(c) => {
            let old = vector(gather(&batch.values, rows, 1), device);
            let clipped = old.clone() + (value.clone() - old).clamp(-c as f32, c as f32);
            (value - returns.clone())
                .square()
                .max_pair((clipped - returns).square())
                .mean()
        }
        None => (value - returns).square().mean(),
    };
    // Diagnostics, outside the graph: the approximate KL (k3 estimator) and the share of
    // clipped ratios.
    let r = ratio.detach();
    let kl = ((r.clone() - 1.0) - log_ratio.detach()).mean();
    let clipped = (r - 1.0).abs().greater_elem(eps).float().mean();
    LossParts {
        policy,
        value,
        entropy: entropy.mean(),
        kl,
        clipped,
    }
}
