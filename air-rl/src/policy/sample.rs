//! Turning network outputs into actions, in plain Rust on the host: arg-max, categorical and
//! Gaussian sampling with their log-probabilities, and clipping to a box.

use rand::{RngExt, rngs::StdRng};

use crate::env::Space;

/// The index of the largest value (the first on ties).
pub(crate) fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, v) in row.iter().enumerate() {
        if *v > row[best] {
            best = i;
        }
    }
    best
}

/// `log softmax(row)`.
pub(crate) fn log_softmax(row: &[f32]) -> Vec<f32> {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = row.iter().map(|v| (v - max).exp()).sum();
    let log_sum = sum.ln() + max;
    row.iter().map(|v| v - log_sum).collect()
}

/// A draw from the categorical distribution with these logits, and its log-probability.
pub(crate) fn categorical(logits: &[f32], rng: &mut StdRng) -> (usize, f32) {
    let log_p = log_softmax(logits);
    let u: f32 = rng.random();
    let mut cumulative = 0.0;
    for (i, lp) in log_p.iter().enumerate() {
        cumulative += lp.exp();
        if u < cumulative {
            return (i, *lp);
        }
    }
    // Rounding left the sum just under 1: the last action.
    let last = log_p.len() - 1;
    (last, log_p[last])
}

/// A standard normal draw (Box–Muller).
pub(crate) fn standard_normal(rng: &mut StdRng) -> f32 {
    let u1: f32 = rng.random::<f32>().max(f32::MIN_POSITIVE);
    let u2: f32 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

/// ln √(2π).
const HALF_LN_TAU: f32 = 0.918_938_5;

/// A draw from the diagonal Gaussian `N(mean, exp(log_std)²)`, and its log-density.
pub(crate) fn gaussian(mean: &[f32], log_std: &[f32], rng: &mut StdRng) -> (Vec<f32>, f32) {
    let mut log_p = 0.0;
    let action = mean
        .iter()
        .zip(log_std)
        .map(|(m, ls)| {
            let z = standard_normal(rng);
            log_p += -0.5 * z * z - ls - HALF_LN_TAU;
            m + ls.exp() * z
        })
        .collect();
    (action, log_p)
}

/// `v` clipped to a box's bounds (unchanged for a discrete space).
pub(crate) fn clip_to_space(space: &Space, v: &[f32]) -> Vec<f32> {
    match space {
        Space::Box { low, high } => v
            .iter()
            .zip(low.iter().zip(high))
            .map(|(x, (l, h))| x.clamp(*l, *h))
            .collect(),
        Space::Discrete { .. } => v.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn categorical_draws_follow_the_probabilities() {
        let mut rng = StdRng::seed_from_u64(1);
        let logits = [0.0f32, (3.0f32).ln()];
        let ones = (0..20_000)
            .filter(|_| categorical(&logits, &mut rng).0 == 1)
            .count();
        let share = ones as f64 / 20_000.0;
        assert!((share - 0.75).abs() < 0.02, "{share}");
        let (a, lp) = categorical(&logits, &mut rng);
        assert!((lp - log_softmax(&logits)[a]).abs() < 1e-6);
    }

    #[test]
    fn gaussian_log_density_matches_the_formula() {
        let mut rng = StdRng::seed_from_u64(2);
        let (a, lp) = gaussian(&[1.0, -1.0], &[0.0, 0.5], &mut rng);
        let expected: f32 = a
            .iter()
            .zip([(1.0f32, 0.0f32), (-1.0, 0.5)])
            .map(|(x, (m, ls))| {
                let z = (x - m) / ls.exp();
                (-0.5 * z).mul_add(z, -ls) - HALF_LN_TAU
            })
            .sum();
        assert!((lp - expected).abs() < 1e-5, "{lp} vs {expected}");
        let draws: Vec<f32> = (0..20_000).map(|_| standard_normal(&mut rng)).collect();
        let mean = draws.iter().sum::<f32>() / 20_000.0;
        let var = draws.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / 20_000.0;
        assert!(
            mean.abs() < 0.03 && (var - 1.0).abs() < 0.05,
            "{mean} {var}"
        );
    }

    #[test]
    fn argmax_takes_the_first_largest() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, 2.0]), 1);
        assert_eq!(
            clip_to_space(&Space::boxed([-2.0], [2.0]), &[5.0]),
            vec![2.0]
        );
    }
}
