//! The completed trials in the orders TPE reads them in, kept sorted as trials complete so that
//! fitting the estimators is one linear pass instead of a sort per parameter per suggestion.

use super::parzen::{Scale, ramp_weight};

/// One completed trial: its sequence number, its numeric picks, its loss (lower is better).
pub(super) type Observation = (u64, Vec<f64>, f64);

/// Indices into the observations, sorted three ways.
#[derive(Debug, Default)]
pub(super) struct History {
    /// By (loss, sequence): the best first.
    by_loss: Vec<u32>,
    /// By sequence: trial order, for the weight ramp.
    by_seq: Vec<u32>,
    /// Per numeric parameter (empty for categorical ones): (model-space value, sequence,
    /// index) by value, ties in trial order.
    by_value: Vec<Vec<(f64, u64, u32)>>,
}

/// Which estimator an observation feeds and its weight there.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Role {
    pub(super) below: bool,
    pub(super) weight: f64,
}

impl History {
    /// The index of `observations`, for parameters modelled on `scales` (`None`: categorical).
    pub(super) fn new(observations: &[Observation], scales: &[Option<Scale>]) -> Self {
        let mut h = Self {
            by_loss: Vec::new(),
            by_seq: Vec::new(),
            by_value: vec![Vec::new(); scales.len()],
        };
        for i in 0..observations.len() {
            h.insert(observations, i, scales);
        }
        h
    }

    /// Adds `observations[i]`, the newest.
    pub(super) fn insert(
        &mut self,
        observations: &[Observation],
        i: usize,
        scales: &[Option<Scale>],
    ) {
        let (seq, xs, loss) = &observations[i];
        let idx = u32::try_from(i).unwrap_or(u32::MAX);
        let at = self.by_loss.partition_point(|&j| {
            let (s, _, l) = &observations[j as usize];
            l.total_cmp(loss).then(s.cmp(seq)).is_lt()
        });
        self.by_loss.insert(at, idx);
        let at = self
            .by_seq
            .partition_point(|&j| observations[j as usize].0 < *seq);
        self.by_seq.insert(at, idx);
        for ((sorted, scale), &x) in self.by_value.iter_mut().zip(scales).zip(xs) {
            if let Some(scale) = scale {
                let v = scale.forward(x);
                let at =
                    sorted.partition_point(|&(w, s, _)| w.total_cmp(&v).then(s.cmp(seq)).is_lt());
                sorted.insert(at, (v, *seq, idx));
            }
        }
    }

    /// Splits the observations into the best `n_below` and the rest, each weighted by Optuna's
    /// ramp in trial order within its group.
    pub(super) fn roles(&self, n_below: usize) -> Vec<Role> {
        let n = self.by_seq.len();
        let n_below = n_below.min(n);
        let n_above = n - n_below;
        let mut roles = vec![Role::default(); n];
        for &i in &self.by_loss[..n_below] {
            roles[i as usize].below = true;
        }
        let (mut nb, mut na) = (0, 0);
        for &i in &self.by_seq {
            let role = &mut roles[i as usize];
            if role.below {
                role.weight = ramp_weight(n_below, nb);
                nb += 1;
            } else {
                role.weight = ramp_weight(n_above, na);
                na += 1;
            }
        }
        roles
    }

    /// Parameter `dim`'s model-space values of one group, sorted, with their weights.
    pub(super) fn sorted_values(&self, dim: usize, roles: &[Role], below: bool) -> Vec<(f64, f64)> {
        self.by_value[dim]
            .iter()
            .filter_map(|&(v, _, i)| {
                let role = roles[i as usize];
                (role.below == below).then_some((v, role.weight))
            })
            .collect()
    }

    /// The observations' indices in trial order.
    pub(super) fn in_trial_order(&self) -> impl Iterator<Item = usize> + '_ {
        self.by_seq.iter().map(|&i| i as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{search::tpe::parzen::default_weights, space::Numeric};

    #[test]
    fn the_kept_orders_give_what_sorting_from_scratch_gives() {
        let scales = [
            Some(Scale::of(&Numeric::Float {
                low: 0.0,
                high: 1.0,
                log: false,
                step: None,
            })),
            None,
        ];
        // Completion order differs from trial order; losses and values repeat.
        let observations: Vec<Observation> = (0..120u64)
            .map(|i| {
                let seq = (i * 37) % 120;
                let x = ((seq * 7) % 10) as f64 / 10.0;
                (seq, vec![x, (seq % 3) as f64], ((seq * 11) % 13) as f64)
            })
            .collect();
        let h = History::new(&observations, &scales);
        let n_below = 12;
        let roles = h.roles(n_below);
        let mut by_loss: Vec<usize> = (0..observations.len()).collect();
        by_loss.sort_by(|&a, &b| {
            let (oa, ob) = (&observations[a], &observations[b]);
            oa.2.total_cmp(&ob.2).then(oa.0.cmp(&ob.0))
        });
        let mut in_order: Vec<usize> = (0..observations.len()).collect();
        in_order.sort_by_key(|&i| observations[i].0);
        for below in [true, false] {
            let group: Vec<usize> = in_order
                .iter()
                .copied()
                .filter(|i| by_loss[..n_below].contains(i) == below)
                .collect();
            let weights = default_weights(group.len());
            let mut want: Vec<(f64, f64)> = group
                .iter()
                .zip(&weights)
                .map(|(&i, &w)| (observations[i].1[0], w))
                .collect();
            want.sort_by(|a, b| a.0.total_cmp(&b.0));
            assert_eq!(h.sorted_values(0, &roles, below), want, "below: {below}");
        }
        let order: Vec<u64> = h.in_trial_order().map(|i| observations[i].0).collect();
        assert_eq!(order, (0..120).collect::<Vec<_>>());
    }
}
