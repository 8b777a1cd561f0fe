//! The Gaussian process behind [`super::BayesOptSearch`]: a Matérn ν=5/2 kernel over the unit
//! cube with one length scale, chosen from a log grid by the marginal likelihood.
//!
//! Everything grows as trials complete instead of being rebuilt per suggestion: the pairwise
//! squared distances and the Cholesky factors (for the chosen length scale and its two grid
//! neighbours) live in packed lower-triangular rows, and a new observation appends one row to
//! each — O(n²) instead of O(n³). Appending rows one at a time gives bit for bit the factor a
//! factorisation from scratch gives (row `i` reads rows `< i` only), so a searcher restored from
//! its saved observations suggests exactly what the uninterrupted one would.

use crate::stats::exp_nonpositive;

/// Length scales on the grid: 10^-2 … 10^1, log-spaced.
pub(super) const LENGTHS: usize = 30;

/// The grid's `i`th length scale.
pub(super) fn length_at(i: usize) -> f64 {
    10f64.powf((3.0 * i as f64).mul_add(1.0 / (LENGTHS - 1) as f64, -2.0))
}

/// Noise added to the kernel's diagonal, raised tenfold while the factorisation fails.
const NOISE: f64 = 1e-6;

/// The start of row `i` in a packed lower triangle (row `i` holds `i + 1` entries).
const fn row_start(i: usize) -> usize {
    i * (i + 1) / 2
}

/// Σ aᵢbᵢ with four accumulators, so that the loop vectorises.
#[allow(clippy::suboptimal_flops)]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..4 {
            acc[k] += x[k] * y[k];
        }
    }
    let tail: f64 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// Matérn ν=5/2 of a squared distance, for length scale `1 / inv_length`.
#[allow(clippy::suboptimal_flops)]
fn matern52(dist2: f64, inv_length: f64) -> f64 {
    let r = dist2.sqrt() * inv_length;
    let s5 = 5f64.sqrt() * r;
    (1.0 + s5 + 5.0 / 3.0 * r * r) * exp_nonpositive(-s5)
}

/// Squared Euclidean distance.
fn dist2(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// The Cholesky factor of `K + noise·I` for one length scale, in packed rows.
#[derive(Debug, Clone, PartialEq)]
struct Factor {
    index: usize,
    l: Vec<f64>,
    rows: usize,
    noise: f64,
}

impl Factor {
    fn new(index: usize) -> Self {
        Self {
            index,
            l: Vec::new(),
            rows: 0,
            noise: NOISE,
        }
    }

    /// Appends rows until the factor covers `n` observations; when a pivot is not positive,
    /// starts over with ten times the noise (as a factorisation from scratch would).
    fn extend(&mut self, dist2: &[f64], n: usize) {
        let inv_length = 1.0 / length_at(self.index);
        let mut row = Vec::with_capacity(n);
        while self.rows < n {
            let i = self.rows;
            let k = &dist2[row_start(i)..row_start(i + 1)];
            row.clear();
            for j in 0..i {
                let lj = &self.l[row_start(j)..row_start(j + 1)];
                let s = dot(&row[..j], &lj[..j]);
                row.push((matern52(k[j], inv_length) - s) / lj[j]);
            }
            let pivot = 1.0 + self.noise - dot(&row, &row);
            if pivot > 0.0 {
                row.push(pivot.sqrt());
                self.l.extend_from_slice(&row);
                self.rows += 1;
            } else {
                self.noise *= 10.0;
                self.l.clear();
                self.rows = 0;
            }
        }
    }

    /// `z = L⁻¹ b` (forward substitution over the packed rows).
    fn solve_lower(&self, b: &[f64], z: &mut Vec<f64>) {
        z.clear();
        for (i, bi) in b.iter().enumerate().take(self.rows) {
            let li = &self.l[row_start(i)..row_start(i + 1)];
            let v = (bi - dot(&li[..i], z)) / li[i];
            z.push(v);
        }
    }

    /// `x = L⁻ᵀ z` (back substitution, one packed row at a time).
    fn solve_upper_t(&self, mut z: Vec<f64>) -> Vec<f64> {
        for j in (0..self.rows).rev() {
            let lj = &self.l[row_start(j)..row_start(j + 1)];
            z[j] /= lj[j];
            let xj = z[j];
            for (zi, l) in z[..j].iter_mut().zip(&lj[..j]) {
                *zi -= l * xj;
            }
        }
        z
    }

    /// The log marginal likelihood of standardised scores `ys` (constant dropped) and
    /// `L⁻¹ ys`.
    fn log_marginal_likelihood(&self, ys: &[f64]) -> (f64, Vec<f64>) {
        let mut z = Vec::with_capacity(ys.len());
        self.solve_lower(ys, &mut z);
        let log_det: f64 = (0..self.rows)
            .map(|i| self.l[row_start(i + 1) - 1].ln())
            .sum();
        (-0.5 * dot(&z, &z) - log_det, z)
    }
}

/// How the length scale is chosen on a fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LengthSearch {
    /// The whole grid: the maximum of the marginal likelihood over all 30 scales.
    Scan,
    /// Hill-climb the grid from this index: move to the better neighbour while one is better.
    From(usize),
}

/// The distances and factors kept between fits.
#[derive(Debug, Default)]
pub(super) struct GpCache {
    /// Observations' unit-cube inputs, row-major.
    xs: Vec<f64>,
    dims: usize,
    rows: usize,
    /// Pairwise squared distances, packed lower triangle (diagonal included).
    dist2: Vec<f64>,
    /// Factors for the chosen length scale and its neighbours.
    factors: Vec<Factor>,
}

impl GpCache {
    /// Forgets everything (new observations: `setup`, `restore_state`).
    pub(super) fn clear(&mut self) {
        *self = Self::default();
    }

    /// Appends the observations not seen yet.
    fn grow(&mut self, obs: &[(Vec<f64>, f64)]) {
        if let Some((x, _)) = obs.first() {
            self.dims = x.len();
        }
        for (x, _) in &obs[self.rows..] {
            for j in 0..self.rows {
                let xj = &self.xs[j * self.dims..(j + 1) * self.dims];
                self.dist2.push(dist2(x, xj));
            }
            self.dist2.push(0.0);
            self.xs.extend_from_slice(x);
            self.rows += 1;
        }
    }

    /// The factor for grid index `i`, covering every observation.
    fn factor(&mut self, i: usize) -> &Factor {
        let at = match self.factors.iter().position(|f| f.index == i) {
            Some(at) => at,
            None => {
                self.factors.push(Factor::new(i));
                self.factors.len() - 1
            }
        };
        self.factors[at].extend(&self.dist2, self.rows);
        &self.factors[at]
    }

    /// Fits the GP to `obs` (unit-cube inputs, scores with higher better); the posterior and
    /// the chosen grid index. `obs` must extend the observations of the previous fit.
    pub(super) fn fit(&mut self, obs: &[(Vec<f64>, f64)], search: LengthSearch) -> Posterior<'_> {
        if obs.len() < self.rows {
            self.clear();
        }
        self.grow(obs);
        let n = obs.len() as f64;
        let y_mean = obs.iter().map(|o| o.1).sum::<f64>() / n;
        let var = obs.iter().map(|o| (o.1 - y_mean).powi(2)).sum::<f64>() / n;
        let y_std = if var > 0.0 { var.sqrt() } else { 1.0 };
        let ys: Vec<f64> = obs.iter().map(|o| (o.1 - y_mean) / y_std).collect();
        let lml = |cache: &mut Self, i: usize| cache.factor(i).log_marginal_likelihood(&ys);
        let (index, z) = match search {
            LengthSearch::Scan => {
                let mut best: Option<(f64, usize, Vec<f64>)> = None;
                for i in 0..LENGTHS {
                    let (v, z) = lml(self, i);
                    if best.as_ref().is_none_or(|(b, ..)| v > *b) {
                        best = Some((v, i, z));
                    }
                    // Keep only what could be the winner's neighbourhood.
                    let keep = best.as_ref().map_or(0, |b| b.1);
                    self.factors.retain(|f| f.index + 1 >= keep || f.index == i);
                }
                best.map(|(_, i, z)| (i, z)).unwrap_or_default()
            }
            LengthSearch::From(start) => {
                let mut at = start.min(LENGTHS - 1);
                let (mut value, mut z) = lml(self, at);
                loop {
                    let mut moved: Option<(f64, usize, Vec<f64>)> = None;
                    for i in [at.wrapping_sub(1), at + 1] {
                        if i < LENGTHS {
                            let (v, zi) = lml(self, i);
                            if v > value && moved.as_ref().is_none_or(|(b, ..)| v > *b) {
                                moved = Some((v, i, zi));
                            }
                        }
                    }
                    match moved {
                        Some((v, i, zi)) => (value, at, z) = (v, i, zi),
                        None => break,
                    }
                }
                (at, z)
            }
        };
        self.factors.retain(|f| f.index.abs_diff(index) <= 1);
        let at = self
            .factors
            .iter()
            .position(|f| f.index == index)
            .unwrap_or_default();
        let factor = &self.factors[at];
        let alpha = factor.solve_upper_t(z);
        Posterior {
            xs: &self.xs,
            dims: self.dims,
            factor,
            alpha,
            inv_length: 1.0 / length_at(index),
            index,
            y_mean,
            y_std,
        }
    }
}

/// A fitted GP: posterior means and standard deviations in standardised units.
#[derive(Debug)]
pub(super) struct Posterior<'a> {
    xs: &'a [f64],
    dims: usize,
    factor: &'a Factor,
    alpha: Vec<f64>,
    inv_length: f64,
    /// The chosen length scale's grid index.
    pub(super) index: usize,
    y_mean: f64,
    y_std: f64,
}

/// What the posterior says at one point, before the exact standard deviation is known.
#[derive(Debug, Clone, Copy)]
pub(super) struct Estimate {
    /// Posterior mean (exact).
    pub(super) mean: f64,
    /// An upper bound on the posterior standard deviation: the deviation given only the
    /// nearest observation, `√(1 − k²/(1 + noise))`, since conditioning on more points only
    /// lowers the variance.
    pub(super) sd_bound: f64,
}

impl Posterior<'_> {
    /// A score in the standardised units of the posterior.
    pub(super) fn standardise(&self, y: f64) -> f64 {
        (y - self.y_mean) / self.y_std
    }

    /// The kernel between `u` and every observation, into `k`; the mean and the deviation's
    /// bound. O(n·d).
    pub(super) fn estimate(&self, u: &[f64], k: &mut Vec<f64>) -> Estimate {
        k.clear();
        let mut k_max: f64 = 0.0;
        for x in self.xs.chunks_exact(self.dims.max(1)) {
            let v = matern52(dist2(x, u), self.inv_length);
            k_max = k_max.max(v);
            k.push(v);
        }
        let var = 1.0 - k_max * k_max / (1.0 + self.factor.noise);
        Estimate {
            mean: dot(k, &self.alpha),
            // Rounding slack: the exact deviation is computed by other operations.
            sd_bound: var.max(1e-12).sqrt().mul_add(1.0 + 1e-9, 1e-9),
        }
    }

    /// The exact posterior standard deviation from the kernel row `k` of [`Self::estimate`].
    /// O(n²).
    pub(super) fn sd(&self, k: &[f64], scratch: &mut Vec<f64>) -> f64 {
        self.factor.solve_lower(k, scratch);
        (1.0 - dot(scratch, scratch)).max(1e-12).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(n: usize, d: usize) -> Vec<(Vec<f64>, f64)> {
        (0..n)
            .map(|i| {
                let x: Vec<f64> = (0..d)
                    .map(|j| ((i * 7 + j * 3) % 11) as f64 / 10.0 + (i as f64 * 0.013).sin() * 0.05)
                    .collect();
                let y = (6.0 * x[0]).sin() + x.iter().sum::<f64>();
                (x, y)
            })
            .collect()
    }

    #[test]
    fn appended_rows_equal_a_factorisation_from_scratch() {
        let obs = points(40, 3);
        let mut grown = GpCache::default();
        for n in 1..=obs.len() {
            grown.grow(&obs[..n]);
            grown.factor(12);
        }
        let mut scratch = GpCache::default();
        scratch.grow(&obs);
        assert_eq!(grown.factor(12), scratch.factor(12));
        // A matrix that is not positive definite at the base noise (distances that break the
        // triangle inequality: 0–1 and 1–2 coincide, 0–2 far apart) raises the noise, the same
        // whether rows arrive one by one or all at once.
        let dist2 = [0.0, 0.0, 0.0, 100.0, 0.0, 0.0];
        let mut grown = Factor::new(0);
        for n in 1..=3 {
            grown.extend(&dist2, n);
        }
        let mut scratch = Factor::new(0);
        scratch.extend(&dist2, 3);
        assert!(scratch.noise > 0.1, "noise {}", scratch.noise);
        assert_eq!(grown, scratch);
    }

    #[test]
    fn factor_and_solves_match_dense_textbook_cholesky() {
        let obs = points(25, 2);
        let mut cache = GpCache::default();
        cache.grow(&obs);
        let f = cache.factor(15).clone();
        let n = obs.len();
        let inv = 1.0 / length_at(15);
        let k = |a: usize, b: usize| {
            matern52(dist2(&obs[a].0, &obs[b].0), inv) + if a == b { f.noise } else { 0.0 }
        };
        // L·Lᵀ = K.
        for a in 0..n {
            for b in 0..=a {
                let la = &f.l[row_start(a)..row_start(a + 1)];
                let lb = &f.l[row_start(b)..row_start(b + 1)];
                let s: f64 = (0..=b).map(|p| la[p] * lb[p]).sum();
                assert!((s - k(a, b)).abs() < 1e-9, "({a},{b}): {s} vs {}", k(a, b));
            }
        }
        // K·(L⁻ᵀL⁻¹y) = y.
        let ys: Vec<f64> = obs.iter().map(|o| o.1).collect();
        let mut z = Vec::new();
        f.solve_lower(&ys, &mut z);
        let alpha = f.solve_upper_t(z);
        for (a, y) in ys.iter().enumerate() {
            let s: f64 = (0..n).map(|b| k(a, b) * alpha[b]).sum();
            assert!((s - y).abs() < 1e-6, "row {a}: {s} vs {y}");
        }
    }

    #[test]
    fn hill_climbing_finds_the_scan_maximum_and_the_bound_holds() {
        let obs = points(60, 2);
        let mut scan = GpCache::default();
        let best = scan.fit(&obs, LengthSearch::Scan).index;
        for start in [0, 5, best, 20, LENGTHS - 1] {
            let mut climb = GpCache::default();
            assert_eq!(
                climb.fit(&obs, LengthSearch::From(start)).index,
                best,
                "from {start}"
            );
        }
        let post = scan.fit(&obs, LengthSearch::From(best));
        let (mut k, mut s) = (Vec::new(), Vec::new());
        for i in 0..200 {
            let u = [(i as f64 * 0.37).fract(), (i as f64 * 0.61).fract()];
            let e = post.estimate(&u, &mut k);
            let sd = post.sd(&k, &mut s);
            assert!(sd <= e.sd_bound, "{sd} > bound {}", e.sd_bound);
        }
    }
}
