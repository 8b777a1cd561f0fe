//! [`ReplayBuffer`]: a fixed-capacity ring of transitions, sampled uniformly.

use rand::{RngExt, rngs::StdRng};

/// Transitions `(obs, action, reward, next_obs, terminated)`, oldest overwritten first.
#[derive(Debug)]
pub(crate) struct ReplayBuffer {
    dim: usize,
    capacity: usize,
    next: usize,
    len: usize,
    obs: Vec<f32>,
    next_obs: Vec<f32>,
    actions: Vec<i64>,
    rewards: Vec<f32>,
    terminated: Vec<f32>,
}

/// A sampled minibatch, row-major.
#[derive(Debug, Default)]
pub(crate) struct Sample {
    pub(crate) obs: Vec<f32>,
    pub(crate) next_obs: Vec<f32>,
    pub(crate) actions: Vec<i64>,
    pub(crate) rewards: Vec<f32>,
    /// 1 where the episode terminated (no bootstrap), else 0.
    pub(crate) terminated: Vec<f32>,
}

impl ReplayBuffer {
    pub(crate) fn new(capacity: usize, dim: usize) -> Self {
        Self {
            dim,
            capacity,
            next: 0,
            len: 0,
            obs: vec![0.0; capacity * dim],
            next_obs: vec![0.0; capacity * dim],
            actions: vec![0; capacity],
            rewards: vec![0.0; capacity],
            terminated: vec![0.0; capacity],
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn push(
        &mut self,
        obs: &[f32],
        action: usize,
        reward: f64,
        next_obs: &[f32],
        terminated: bool,
    ) {
        let (i, d) = (self.next, self.dim);
        self.obs[i * d..(i + 1) * d].copy_from_slice(obs);
        self.next_obs[i * d..(i + 1) * d].copy_from_slice(next_obs);
        self.actions[i] = action as i64;
        self.rewards[i] = reward as f32;
        self.terminated[i] = if terminated { 1.0 } else { 0.0 };
        self.next = (self.next + 1) % self.capacity;
        self.len = (self.len + 1).min(self.capacity);
    }

    /// `n` transitions drawn uniformly with replacement.
    pub(crate) fn sample(&self, n: usize, rng: &mut StdRng) -> Sample {
        let d = self.dim;
        let mut s = Sample::default();
        for _ in 0..n {
            let i = rng.random_range(0..self.len);
            s.obs.extend_from_slice(&self.obs[i * d..(i + 1) * d]);
            s.next_obs
                .extend_from_slice(&self.next_obs[i * d..(i + 1) * d]);
            s.actions.push(self.actions[i]);
            s.rewards.push(self.rewards[i]);
            s.terminated.push(self.terminated[i]);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn overwrites_the_oldest_and_samples_only_what_it_holds() {
        let mut b = ReplayBuffer::new(3, 1);
        for k in 0..5 {
            b.push(
                &[k as f32],
                k,
                f64::from(k as u8),
                &[k as f32 + 1.0],
                k == 4,
            );
        }
        assert_eq!(b.len(), 3);
        let s = b.sample(200, &mut StdRng::seed_from_u64(0));
        // Transitions 2, 3 and 4 remain; each row's fields belong together.
        assert!(s.obs.iter().all(|o| (2.0..=4.0).contains(o)));
        for ((o, n), t) in s.obs.iter().zip(&s.next_obs).zip(&s.terminated) {
            assert_eq!(*n, o + 1.0);
            assert_eq!(*t == 1.0, *o == 4.0);
        }
    }
}
