//! [`RunningMeanStd`]: per-dimension mean and variance updated batch by batch (the
//! observation normaliser of PPO), saved with a policy as data.

use serde::{Deserialize, Serialize};

/// Running mean and variance of vectors, merged batch by batch with Chan et al.'s parallel
/// formula, so the result equals the statistics of all vectors seen at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunningMeanStd {
    mean: Vec<f64>,
    var: Vec<f64>,
    count: f64,
}

impl RunningMeanStd {
    /// Statistics of `dim`-vectors, none seen yet.
    pub fn new(dim: usize) -> Self {
        Self {
            mean: vec![0.0; dim],
            var: vec![0.0; dim],
            count: 0.0,
        }
    }

    /// Merges a batch of vectors (each of the same dimension as the statistics).
    pub fn update<V: AsRef<[f32]>>(&mut self, batch: &[V]) {
        let n = batch.len() as f64;
        if n == 0.0 {
            return;
        }
        let dim = self.mean.len();
        let mut mean = vec![0.0; dim];
        for v in batch {
            for (m, x) in mean.iter_mut().zip(v.as_ref()) {
                *m += f64::from(*x) / n;
            }
        }
        let mut var = vec![0.0; dim];
        for v in batch {
            for ((s, x), m) in var.iter_mut().zip(v.as_ref()).zip(&mean) {
                let d = f64::from(*x) - m;
                *s += d * d / n;
            }
        }
        let total = self.count + n;
        for i in 0..dim {
            let delta = mean[i] - self.mean[i];
            let m2 = self.var[i].mul_add(self.count, var[i] * n)
                + delta * delta * self.count * n / total;
            self.mean[i] += delta * n / total;
            self.var[i] = m2 / total;
        }
        self.count = total;
    }

    /// `(x − mean) / sqrt(var + 1e-8)`, clipped to ±`clip`.
    pub fn normalize(&self, x: &[f32], clip: f32) -> Vec<f32> {
        x.iter()
            .zip(self.mean.iter().zip(&self.var))
            .map(|(x, (m, v))| {
                (((f64::from(*x) - m) / (v + 1e-8).sqrt()) as f32).clamp(-clip, clip)
            })
            .collect()
    }

    /// The mean.
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// The (population) variance.
    pub fn var(&self) -> &[f64] {
        &self.var
    }

    /// Vectors seen.
    pub fn count(&self) -> f64 {
        self.count
    }
}
