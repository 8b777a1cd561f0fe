//! The Parzen estimators TPE fits over each parameter: a mixture of truncated normals (one per
//! observation plus a prior kernel over the whole range) for numeric parameters, smoothed
//! frequencies for categorical ones.

use rand::{Rng, RngExt};

use crate::{
    space::Numeric,
    stats::{exp_nonpositive, norm_cdf, norm_cdf_clipped, norm_ppf},
};

/// Entry `i` of Optuna's `default_weights(n)`: flat, with a linear ramp for the oldest
/// `n − 25` observations.
pub(super) fn ramp_weight(n: usize, i: usize) -> f64 {
    if n < 25 || i >= n - 25 {
        return 1.0;
    }
    let (ramp, inv) = (n - 25, 1.0 / n as f64);
    if ramp == 1 {
        inv
    } else {
        inv + (1.0 - inv) * i as f64 / (ramp - 1) as f64
    }
}

/// Optuna's `default_weights`: observation weights in trial order.
pub(super) fn default_weights(n: usize) -> Vec<f64> {
    (0..n).map(|i| ramp_weight(n, i)).collect()
}

/// The categorical estimator's probabilities of the `n` choices: each observation's kernel puts
/// its weight on its choice plus the prior spread evenly.
pub(super) fn categorical_probs(obs: &[f64], n: usize, prior_weight: f64) -> Vec<f64> {
    if obs.is_empty() {
        return vec![1.0 / n as f64; n];
    }
    let kernels = obs.len() + 1;
    let mut w = default_weights(obs.len());
    w.push(prior_weight);
    let total: f64 = w.iter().sum();
    // Every kernel's row is the prior share on each choice, plus 1 on its observation's.
    let share = prior_weight / kernels as f64;
    let row_sum = share * n as f64;
    let mut p = vec![0.0; n];
    for (k, wk) in w.iter().enumerate() {
        let scale = wk / total;
        if k < obs.len() {
            let s = row_sum + 1.0;
            for pc in &mut p {
                *pc += scale * share / s;
            }
            p[(obs[k] as usize).min(n - 1)] += scale / s;
        } else {
            for pc in &mut p {
                *pc += scale * share / row_sum;
            }
        }
    }
    p
}

/// A numeric parameter in the space TPE models it in.
#[derive(Debug, Clone)]
pub(super) struct Scale {
    /// Range in model space.
    pub(super) low: f64,
    pub(super) high: f64,
    /// Bin width for discrete parameters (model space = domain scale then).
    pub(super) step: Option<f64>,
    log: bool,
    int: bool,
}

impl Scale {
    pub(super) fn of(n: &Numeric) -> Self {
        match *n {
            Numeric::Float {
                low,
                high,
                log: true,
                ..
            } => Self {
                low: low.ln(),
                high: high.ln(),
                step: None,
                log: true,
                int: false,
            },
            Numeric::Float {
                low, high, step, ..
            } => Self {
                low,
                high,
                step,
                log: false,
                int: false,
            },
            Numeric::Int {
                low,
                high,
                log: true,
                ..
            } => Self {
                low: (low as f64 - 0.5).ln(),
                high: (high as f64 + 0.5).ln(),
                step: None,
                log: true,
                int: true,
            },
            Numeric::Int {
                low, high, step, ..
            } => Self {
                low: low as f64,
                high: high as f64,
                step: Some(step as f64),
                log: false,
                int: true,
            },
            Numeric::Categorical { n } => Self {
                low: 0.0,
                high: n as f64 - 1.0,
                step: Some(1.0),
                log: false,
                int: true,
            },
        }
    }

    fn step0(&self) -> f64 {
        self.step.unwrap_or(0.0)
    }

    /// Truncation bounds of the kernels.
    pub(super) fn bounds(&self) -> (f64, f64) {
        (
            self.low - self.step0() / 2.0,
            self.high + self.step0() / 2.0,
        )
    }

    pub(super) fn mid(&self) -> f64 {
        0.5 * (self.low + self.high)
    }

    pub(super) fn forward(&self, x: f64) -> f64 {
        if self.log { x.ln() } else { x }
    }

    pub(super) fn backward(&self, x: f64) -> f64 {
        let x = if self.log { x.exp() } else { x };
        if self.int { x.round() } else { x }
    }

    fn snap(&self, x: f64) -> f64 {
        match self.step {
            Some(q) => (self.low + ((x - self.low) / q).round() * q).clamp(self.low, self.high),
            None => x.clamp(self.low, self.high),
        }
    }
}

/// A mixture of truncated normals with Optuna's bandwidths.
#[derive(Debug)]
pub(super) struct Mixture {
    pub(super) weights: Vec<f64>,
    pub(super) mus: Vec<f64>,
    pub(super) sigmas: Vec<f64>,
    /// `weight / mass` per kernel (mass: the kernel's probability inside the truncation bounds).
    w_over_mass: Vec<f64>,
    /// `weight / (mass · σ · √(2π))` per kernel: a continuous kernel's density is this times
    /// `exp(−z² / 2)`, so scoring a candidate takes one `exp` per kernel.
    coef: Vec<f64>,
    inv_sigmas: Vec<f64>,
}

impl Mixture {
    /// The mixture over `obs` (model space), weighted by `default_weights` in the order given
    /// (trial order), plus the prior kernel.
    #[cfg(test)]
    pub(super) fn fit(obs: &[f64], s: &Scale, prior_weight: f64) -> Self {
        let weights = default_weights(obs.len());
        let mut sorted: Vec<(f64, f64)> = obs.iter().copied().zip(weights).collect();
        // Stable: ties keep trial order, as in `from_sorted`'s callers.
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        Self::from_sorted(&sorted, s, prior_weight)
    }

    /// The mixture over observations already sorted by value (ties in trial order), each with
    /// its unnormalised weight, plus the prior kernel: linear in their number.
    pub(super) fn from_sorted(obs: &[(f64, f64)], s: &Scale, prior_weight: f64) -> Self {
        let step0 = s.step0();
        let range = s.high - s.low + step0;
        let prior_mu = s.mid();
        // The prior goes after every observation equal to it (it is the last one added).
        let at = obs.partition_point(|o| o.0 <= prior_mu);
        let m = obs.len() + 1;
        let mut mus = Vec::with_capacity(m);
        let mut weights = Vec::with_capacity(m);
        for &(mu, w) in &obs[..at] {
            mus.push(mu);
            weights.push(w);
        }
        mus.push(prior_mu);
        weights.push(prior_weight);
        for &(mu, w) in &obs[at..] {
            mus.push(mu);
            weights.push(w);
        }
        // Each kernel's bandwidth: the distance to its farther neighbour; the outermost ones
        // ignore the bounds (Optuna's consider_endpoints=False) once there are two observations.
        let (lo_end, hi_end) = (s.low - step0 / 2.0, s.high + step0 / 2.0);
        let left = |i: usize| if i == 0 { lo_end } else { mus[i - 1] };
        let right = |i: usize| if i + 1 == m { hi_end } else { mus[i + 1] };
        let min_sigma = range / 100f64.min(1.0 + m as f64);
        let sigmas: Vec<f64> = (0..m)
            .map(|i| {
                if i == at {
                    return range;
                }
                let sigma = if m >= 2 && i == 0 {
                    right(i) - mus[i]
                } else if m >= 2 && i == m - 1 {
                    mus[i] - left(i)
                } else {
                    (mus[i] - left(i)).max(right(i) - mus[i])
                };
                sigma.clamp(min_sigma, range)
            })
            .collect();
        let total: f64 = weights.iter().sum();
        for w in &mut weights {
            *w /= total;
        }
        let (a, b) = s.bounds();
        let w_over_mass: Vec<f64> = (0..m)
            .map(|k| {
                let (mu, sg) = (mus[k], sigmas[k]);
                weights[k]
                    / (norm_cdf_clipped((b - mu) / sg) - norm_cdf_clipped((a - mu) / sg))
                        .max(1e-300)
            })
            .collect();
        let inv_sqrt_2pi = 1.0 / (2.0 * std::f64::consts::PI).sqrt();
        let coef = w_over_mass
            .iter()
            .zip(&sigmas)
            .map(|(c, sg)| c * inv_sqrt_2pi / sg)
            .collect();
        let inv_sigmas = sigmas.iter().map(|sg| 1.0 / sg).collect();
        Self {
            weights,
            mus,
            sigmas,
            w_over_mass,
            coef,
            inv_sigmas,
        }
    }

    pub(super) fn sample(&self, s: &Scale, rng: &mut dyn Rng) -> f64 {
        let mut u = rng.random::<f64>();
        let mut k = self.weights.len() - 1;
        for (i, w) in self.weights.iter().enumerate() {
            if u < *w {
                k = i;
                break;
            }
            u -= w;
        }
        let (a, b) = s.bounds();
        let (mu, sg) = (self.mus[k], self.sigmas[k]);
        let (ca, cb) = (norm_cdf((a - mu) / sg), norm_cdf((b - mu) / sg));
        let p = ca + (cb - ca) * rng.random::<f64>();
        let x = (mu + sg * norm_ppf(p)).clamp(a, b);
        s.snap(x)
    }

    /// The log density at each of `xs` (snapped values for discrete parameters), in one pass
    /// over the kernels. The prior kernel covers the whole range, so no density is zero.
    // `mul_add` is a library call without a target FMA instruction: the inner loops would not
    // vectorise.
    #[allow(clippy::suboptimal_flops)]
    pub(super) fn log_pdf_many(&self, xs: &[f64], s: &Scale) -> Vec<f64> {
        let mut sums = vec![0.0; xs.len()];
        match s.step {
            None => {
                for k in 0..self.mus.len() {
                    let (mu, inv, c) = (self.mus[k], self.inv_sigmas[k], self.coef[k]);
                    for (sum, &x) in sums.iter_mut().zip(xs) {
                        let z = (x - mu) * inv;
                        *sum += c * exp_nonpositive(-0.5 * z * z);
                    }
                }
            }
            // Each kernel's mass on the step around `x`, from its CDF at the bin edges the
            // candidates need (neighbouring candidates share an edge).
            Some(q) => {
                let bin = |x: f64| ((x - s.low) / q).round() as i64;
                let mut edges: Vec<i64> = xs.iter().flat_map(|&x| [bin(x), bin(x) + 1]).collect();
                edges.sort_unstable();
                edges.dedup();
                let slot = |e: i64| edges.partition_point(|&v| v < e);
                let pairs: Vec<(usize, usize)> = xs
                    .iter()
                    .map(|&x| (slot(bin(x)), slot(bin(x) + 1)))
                    .collect();
                let positions: Vec<f64> = edges
                    .iter()
                    .map(|&e| (e as f64 - 0.5).mul_add(q, s.low))
                    .collect();
                let mut cdf = vec![0.0; positions.len()];
                for k in 0..self.mus.len() {
                    let (mu, inv, c) = (self.mus[k], self.inv_sigmas[k], self.w_over_mass[k]);
                    for (v, &e) in cdf.iter_mut().zip(&positions) {
                        *v = norm_cdf_clipped((e - mu) * inv);
                    }
                    for (sum, &(lo, hi)) in sums.iter_mut().zip(&pairs) {
                        *sum += c * (cdf[hi] - cdf[lo]).max(1e-300);
                    }
                }
            }
        }
        sums.into_iter().map(f64::ln).collect()
    }

    /// The log density at `x`, kernel by kernel in log space: the reference `log_pdf_many`
    /// is checked against.
    #[cfg(test)]
    pub(super) fn log_pdf_textbook(&self, x: f64, s: &Scale) -> f64 {
        let (a, b) = s.bounds();
        let terms = (0..self.mus.len()).map(|k| {
            let (mu, sg) = (self.mus[k], self.sigmas[k]);
            let log_mass = (norm_cdf((b - mu) / sg) - norm_cdf((a - mu) / sg)).ln();
            let log_p = match s.step {
                None => crate::stats::norm_pdf((x - mu) / sg).ln() - sg.ln(),
                Some(q) => (norm_cdf((x + q / 2.0 - mu) / sg) - norm_cdf((x - q / 2.0 - mu) / sg))
                    .max(1e-300)
                    .ln(),
            };
            self.weights[k].ln() - log_mass + log_p
        });
        crate::stats::log_sum_exp(terms.collect::<Vec<_>>().into_iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn float(low: f64, high: f64, step: Option<f64>) -> Scale {
        Scale::of(&Numeric::Float {
            low,
            high,
            log: false,
            step,
        })
    }

    /// The reference: Optuna's bandwidth rule written index by index over the sorted values.
    fn textbook_sigmas(obs: &[f64], s: &Scale) -> Vec<f64> {
        let step0 = s.step.unwrap_or(0.0);
        let range = s.high - s.low + step0;
        let mut with_prior = obs.to_vec();
        with_prior.push(s.mid());
        let m = with_prior.len();
        let mut idx: Vec<usize> = (0..m).collect();
        idx.sort_by(|&a, &b| with_prior[a].total_cmp(&with_prior[b]));
        let mut ends = vec![s.low - step0 / 2.0];
        ends.extend(idx.iter().map(|&i| with_prior[i]));
        ends.push(s.high + step0 / 2.0);
        let mut sorted: Vec<f64> = (0..m)
            .map(|i| (ends[i + 1] - ends[i]).max(ends[i + 2] - ends[i + 1]))
            .collect();
        if m >= 2 {
            sorted[0] = ends[2] - ends[1];
            sorted[m - 1] = ends[m] - ends[m - 1];
        }
        let min_sigma = range / 100f64.min(1.0 + m as f64);
        let mut out: Vec<f64> = idx
            .iter()
            .zip(&sorted)
            .map(|(&i, &sg)| {
                if i == m - 1 {
                    range
                } else {
                    sg.clamp(min_sigma, range)
                }
            })
            .collect();
        out.sort_by(f64::total_cmp);
        out
    }

    #[test]
    fn bandwidths_follow_optuna() {
        let s = float(-5.0, 10.0, None);
        for obs in [
            vec![],
            vec![1.0],
            vec![9.0, -4.0],
            (0..40).map(|i| -4.0 + f64::from(i) * 0.33).collect(),
            vec![2.5, 2.5, 2.5, 7.0, -5.0, 10.0],
        ] {
            let m = Mixture::fit(&obs, &s, 1.0);
            let mut got = m.sigmas.clone();
            got.sort_by(f64::total_cmp);
            let want = textbook_sigmas(&obs, &s);
            assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-12, "{obs:?}: {got:?} vs {want:?}");
            }
            assert!((m.weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn the_fast_density_equals_the_textbook_one() {
        let cases = [
            (
                float(-5.0, 10.0, None),
                vec![-5.0, -1.3, 0.0, 2.71, 9.99, 10.0],
            ),
            (
                float(0.0, 1.0, Some(0.1)),
                vec![0.0, 0.1, 0.3, 0.3, 0.7, 1.0],
            ),
            (
                Scale::of(&Numeric::Int {
                    low: 0,
                    high: 9,
                    log: false,
                    step: 1,
                }),
                vec![0.0, 4.0, 5.0, 9.0],
            ),
        ];
        for (s, xs) in cases {
            let span = s.high - s.low;
            let obs: Vec<f64> = (0..300)
                .map(|i| {
                    let u = (f64::from(i) * 0.618_033_988_749_895).fract();
                    let x = s.low + span * u * u;
                    s.step.map_or(x, |q| s.low + ((x - s.low) / q).round() * q)
                })
                .collect();
            let m = Mixture::fit(&obs, &s, 1.0);
            let fast = m.log_pdf_many(&xs, &s);
            for (x, f) in xs.iter().zip(&fast) {
                let textbook = m.log_pdf_textbook(*x, &s);
                assert!((f - textbook).abs() < 1e-9, "{x}: {f} vs {textbook}");
            }
        }
    }

    #[test]
    fn categorical_probabilities_sum_to_one_and_favour_what_was_seen() {
        assert_eq!(default_weights(3), vec![1.0; 3]);
        let w = default_weights(30);
        assert_eq!(w.len(), 30);
        assert!((w[0] - 1.0 / 30.0).abs() < 1e-12 && (w[4] - 1.0).abs() < 1e-12);
        let p = categorical_probs(&[0.0, 0.0], 3, 1.0);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(p[0] > p[1] && (p[1] - p[2]).abs() < 1e-12);
    }
}
