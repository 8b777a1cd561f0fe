//! Estimators implemented here rather than taken from smartcore, because smartcore's are far
//! slower than scikit-learn's on ordinary tables (`benches/programs/sklearn_bench.rs`, 20k × 20:
//! Gaussian NB fit 9.4 s vs 0.006 s, kNN prediction 874 vs 39k rows/s, k-means fit 5.3 s vs
//! 0.16 s). Each follows scikit-learn's definition, so the fixtures compare them exactly.

use rand::{RngExt, SeedableRng, rngs::StdRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Rows of queries per parallel task.
const QUERY_CHUNK: usize = 64;

/// Squared Euclidean distance, summed in four independent lanes so the loop vectorises (one
/// running sum is a dependency chain the compiler may not reorder). No `mul_add`: without an
/// FMA target feature it is a library call, ten times slower here.
#[allow(clippy::suboptimal_flops)]
pub(crate) fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    let mut lanes = [0.0f64; 4];
    let (a4, b4) = (a.chunks_exact(4), b.chunks_exact(4));
    let tail: f64 = a4
        .remainder()
        .iter()
        .zip(b4.remainder())
        .map(|(x, y)| (x - y) * (x - y))
        .sum();
    for (x, y) in a4.zip(b4) {
        for l in 0..4 {
            let d = x[l] - y[l];
            lanes[l] += d * d;
        }
    }
    (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]) + tail
}

/// Gaussian naive Bayes (scikit-learn's `GaussianNB`): per-class means and variances, the
/// variances widened by `var_smoothing` × the largest feature variance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct GaussianNb {
    theta: Vec<Vec<f64>>,
    var: Vec<Vec<f64>>,
    log_prior: Vec<f64>,
}

impl GaussianNb {
    /// `codes` are class indices `0..k`; `priors` (one per class) replace the frequencies.
    pub(crate) fn fit(
        x: &[f64],
        cols: usize,
        codes: &[u32],
        k: usize,
        priors: Option<&[f64]>,
        var_smoothing: f64,
    ) -> Self {
        let mut count = vec![0.0f64; k];
        let mut sum = vec![vec![0.0f64; cols]; k];
        for (row, &c) in x.chunks_exact(cols).zip(codes) {
            let c = c as usize;
            count[c] += 1.0;
            for (s, v) in sum[c].iter_mut().zip(row) {
                *s += v;
            }
        }
        let theta: Vec<Vec<f64>> = sum
            .iter()
            .zip(&count)
            .map(|(s, n)| s.iter().map(|v| v / n.max(1.0)).collect())
            .collect();
        // Two passes (mean, then squared deviations) as numpy's var does, for its precision.
        let mut var = vec![vec![0.0f64; cols]; k];
        for (row, &c) in x.chunks_exact(cols).zip(codes) {
            let c = c as usize;
            for ((s, v), m) in var[c].iter_mut().zip(row).zip(&theta[c]) {
                *s += (v - m) * (v - m);
            }
        }
        let n = count.iter().sum::<f64>().max(1.0);
        let mut all_mean = vec![0.0; cols];
        for row in x.chunks_exact(cols) {
            for (m, v) in all_mean.iter_mut().zip(row) {
                *m += v / n;
            }
        }
        let mut all_var = vec![0.0; cols];
        for row in x.chunks_exact(cols) {
            for ((s, v), m) in all_var.iter_mut().zip(row).zip(&all_mean) {
                *s += (v - m) * (v - m) / n;
            }
        }
        let epsilon = var_smoothing * all_var.iter().copied().fold(0.0, f64::max);
        for (v, c) in var.iter_mut().zip(&count) {
            for s in v.iter_mut() {
                *s = *s / c.max(1.0) + epsilon;
            }
        }
        let log_prior = match priors {
            Some(p) => p.iter().map(|v| v.ln()).collect(),
            None => count.iter().map(|c| (c / n).ln()).collect(),
        };
        Self {
            theta,
            var,
            log_prior,
        }
    }

    /// The most likely class index of each row (the lowest index on ties).
    pub(crate) fn predict(&self, x: &[f64], cols: usize) -> Vec<u32> {
        let norm: Vec<f64> = self
            .var
            .iter()
            .map(|v| {
                -0.5 * v
                    .iter()
                    .map(|s| (2.0 * std::f64::consts::PI * s).ln())
                    .sum::<f64>()
            })
            .collect();
        x.chunks_exact(cols)
            .map(|row| {
                let mut best = (0u32, f64::NEG_INFINITY);
                for (c, ((theta, var), (lp, nm))) in self
                    .theta
                    .iter()
                    .zip(&self.var)
                    .zip(self.log_prior.iter().zip(&norm))
                    .enumerate()
                {
                    let quad: f64 = row
                        .iter()
                        .zip(theta)
                        .zip(var)
                        .map(|((v, m), s)| (v - m) * (v - m) / s)
                        .sum();
                    let ll = 0.5f64.mul_add(-quad, lp + nm);
                    if ll > best.1 {
                        best = (u32::try_from(c).unwrap_or(0), ll);
                    }
                }
                best.0
            })
            .collect()
    }
}

/// Discrete naive Bayes (scikit-learn's `MultinomialNB` and `BernoulliNB`): smoothed
/// per-class feature log-probabilities, scored with a dot product.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct DiscreteNb {
    /// `[class][feature]` log-probability of the feature (of it being set, for Bernoulli).
    log_p: Vec<Vec<f64>>,
    /// Bernoulli: log(1 − p), and the threshold that makes a feature "set".
    log_not_p: Option<Vec<Vec<f64>>>,
    binarize: f64,
    log_prior: Vec<f64>,
}

impl DiscreteNb {
    /// `binarize`: `None` for multinomial counts, `Some(t)` for Bernoulli (x > t is set).
    pub(crate) fn fit(
        x: &[f64],
        cols: usize,
        codes: &[u32],
        k: usize,
        alpha: f64,
        binarize: Option<f64>,
        priors: Option<&[f64]>,
    ) -> Self {
        let mut count = vec![0.0f64; k];
        let mut fc = vec![vec![0.0f64; cols]; k];
        for (row, &c) in x.chunks_exact(cols).zip(codes) {
            let c = c as usize;
            count[c] += 1.0;
            for (s, v) in fc[c].iter_mut().zip(row) {
                *s += match binarize {
                    Some(t) => f64::from(u8::from(*v > t)),
                    None => *v,
                };
            }
        }
        let (log_p, log_not_p) = match binarize {
            Some(_) => {
                let p: Vec<Vec<f64>> = fc
                    .iter()
                    .zip(&count)
                    .map(|(f, n)| {
                        f.iter()
                            .map(|v| (v + alpha) / 2.0f64.mul_add(alpha, *n))
                            .collect()
                    })
                    .collect();
                (
                    p.iter()
                        .map(|r| r.iter().map(|v| v.ln()).collect())
                        .collect(),
                    Some(
                        p.iter()
                            .map(|r| r.iter().map(|v| (1.0 - v).ln()).collect())
                            .collect(),
                    ),
                )
            }
            None => (
                fc.iter()
                    .map(|f| {
                        let total = alpha.mul_add(cols as f64, f.iter().sum::<f64>());
                        f.iter().map(|v| ((v + alpha) / total).ln()).collect()
                    })
                    .collect(),
                None,
            ),
        };
        let n = count.iter().sum::<f64>().max(1.0);
        let log_prior = match priors {
            Some(p) => p.iter().map(|v| v.ln()).collect(),
            None => count.iter().map(|c| (c / n).ln()).collect(),
        };
        Self {
            log_p,
            log_not_p,
            binarize: binarize.unwrap_or(0.0),
            log_prior,
        }
    }

    /// The most likely class index of each row (the lowest index on ties).
    pub(crate) fn predict(&self, x: &[f64], cols: usize) -> Vec<u32> {
        x.chunks_exact(cols)
            .map(|row| {
                let mut best = (0u32, f64::NEG_INFINITY);
                for (c, lp) in self.log_p.iter().enumerate() {
                    let ll = match &self.log_not_p {
                        Some(lnp) => row
                            .iter()
                            .zip(lp.iter().zip(&lnp[c]))
                            .map(|(v, (a, b))| if *v > self.binarize { *a } else { *b })
                            .sum::<f64>(),
                        None => row.iter().zip(lp).map(|(v, a)| v * a).sum::<f64>(),
                    } + self.log_prior[c];
                    if ll > best.1 {
                        best = (u32::try_from(c).unwrap_or(0), ll);
                    }
                }
                best.0
            })
            .collect()
    }
}

/// Exact k-nearest neighbours by scanning every training row (scikit-learn's `brute`,
/// Euclidean): on tables of a few dozen features a scan beats tree searches.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Neighbours {
    x: Vec<f64>,
    /// Class indices (as numbers) for a classifier, values for a regressor.
    y: Vec<f64>,
    cols: usize,
    k: usize,
    by_distance: bool,
}

impl Neighbours {
    pub(crate) fn fit(x: &[f64], cols: usize, y: Vec<f64>, k: usize, by_distance: bool) -> Self {
        Self {
            x: x.to_vec(),
            k: k.min(y.len()).max(1),
            y,
            cols,
            by_distance,
        }
    }

    /// The k nearest training rows of each query row, as (squared distance, index), nearest
    /// first (lower index first among equal distances). Training rows are visited in tiles
    /// that stay in cache while every query of the block scans them.
    fn nearest_block(&self, queries: &[f64]) -> Vec<Vec<(f64, usize)>> {
        const TILE: usize = 256;
        let k = self.k;
        let mut found: Vec<Vec<(f64, usize)>> = queries
            .chunks_exact(self.cols)
            .map(|_| Vec::with_capacity(k + 1))
            .collect();
        for (t, tile) in self.x.chunks(TILE * self.cols).enumerate() {
            for (q, out) in queries.chunks_exact(self.cols).zip(found.iter_mut()) {
                for (j, row) in tile.chunks_exact(self.cols).enumerate() {
                    let d = sq_dist(q, row);
                    if out.len() < k || d < out[k - 1].0 {
                        if out.len() == k {
                            out.pop();
                        }
                        let at = out.partition_point(|(e, _)| *e <= d);
                        out.insert(at, (d, t * TILE + j));
                    }
                }
            }
        }
        found
    }

    /// Neighbour weights: 1, or 1/distance — where a neighbour is at distance 0 only those
    /// count (scikit-learn's rule).
    fn weights(&self, found: &[(f64, usize)]) -> Vec<f64> {
        if !self.by_distance {
            return vec![1.0; found.len()];
        }
        if found.iter().any(|(d, _)| *d == 0.0) {
            return found
                .iter()
                .map(|(d, _)| if *d == 0.0 { 1.0 } else { 0.0 })
                .collect();
        }
        found.iter().map(|(d, _)| 1.0 / d.sqrt()).collect()
    }

    fn each_query<T: Send>(
        &self,
        x: &[f64],
        f: impl Fn(&[(f64, usize)], &[f64]) -> T + Sync,
    ) -> Vec<T> {
        x.par_chunks(QUERY_CHUNK * self.cols)
            .flat_map_iter(|chunk| {
                self.nearest_block(chunk)
                    .into_iter()
                    .map(|found| f(&found, &self.weights(&found)))
                    .collect::<Vec<T>>()
            })
            .collect()
    }

    /// The weighted-majority class index (the lowest index on ties).
    pub(crate) fn classify(&self, x: &[f64], n_classes: usize) -> Vec<u32> {
        self.each_query(x, |found, w| {
            let mut votes = vec![0.0f64; n_classes];
            for ((_, i), w) in found.iter().zip(w) {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let c = self.y[*i] as usize;
                votes[c] += w;
            }
            let mut best = 0;
            for (c, v) in votes.iter().enumerate() {
                if *v > votes[best] {
                    best = c;
                }
            }
            u32::try_from(best).unwrap_or(0)
        })
    }

    /// The weighted mean of the neighbours' values.
    pub(crate) fn regress(&self, x: &[f64]) -> Vec<f64> {
        self.each_query(x, |found, w| {
            let total: f64 = w.iter().sum();
            found
                .iter()
                .zip(w)
                .map(|((_, i), w)| self.y[*i] * w)
                .sum::<f64>()
                / total
        })
    }
}

/// The nearest centroid (lowest index on ties) and the squared distance to it.
pub(crate) fn nearest_centroid(centroids: &[Vec<f64>], r: &[f64]) -> (u32, f64) {
    let mut best = (0u32, f64::INFINITY);
    for (i, c) in centroids.iter().enumerate() {
        let d = sq_dist(c, r);
        if d < best.1 {
            best = (u32::try_from(i).unwrap_or(0), d);
        }
    }
    best
}

/// k-means (scikit-learn's `KMeans` with `init="k-means++"`, one initialisation, Lloyd
/// iterations until the centres move less than `tol` × the mean feature variance in total).
pub(crate) fn kmeans(
    x: &[f64],
    cols: usize,
    k: usize,
    max_iter: usize,
    seed: u64,
) -> Vec<Vec<f64>> {
    let n = x.len() / cols;
    let row = |i: usize| &x[i * cols..(i + 1) * cols];
    let mut rng = StdRng::seed_from_u64(seed);
    // Greedy k-means++: each new centre is the best of 2 + ⌊ln k⌋ candidates drawn in
    // proportion to the squared distance to the nearest centre so far.
    let trials = 2 + (k as f64).ln().floor() as usize;
    let mut centroids = vec![row(rng.random_range(0..n)).to_vec()];
    let mut closest: Vec<f64> = (0..n)
        .into_par_iter()
        .map(|i| sq_dist(row(i), &centroids[0]))
        .collect();
    while centroids.len() < k.min(n) {
        let total: f64 = closest.iter().sum();
        let mut best: Option<(f64, usize, Vec<f64>)> = None;
        for _ in 0..trials {
            let target = rng.random::<f64>() * total;
            let mut acc = 0.0;
            let mut pick = n - 1;
            for (i, d) in closest.iter().enumerate() {
                acc += d;
                if acc > target {
                    pick = i;
                    break;
                }
            }
            let cand = row(pick);
            let updated: Vec<f64> = (0..n)
                .into_par_iter()
                .map(|i| closest[i].min(sq_dist(row(i), cand)))
                .collect();
            let potential: f64 = updated.iter().sum();
            if best.as_ref().is_none_or(|(p, _, _)| potential < *p) {
                best = Some((potential, pick, updated));
            }
        }
        let Some((_, pick, updated)) = best else {
            break;
        };
        centroids.push(row(pick).to_vec());
        closest = updated;
    }
    let mean_var = {
        let mut mean = vec![0.0; cols];
        for i in 0..n {
            for (m, v) in mean.iter_mut().zip(row(i)) {
                *m += v / n as f64;
            }
        }
        let mut var = 0.0;
        for i in 0..n {
            var += sq_dist(row(i), &mean) / n as f64;
        }
        var / cols as f64
    };
    let tol = 1e-4 * mean_var;
    for _ in 0..max_iter {
        let kk = centroids.len();
        let (sums, counts) = x
            .par_chunks(1024 * cols)
            .map(|chunk| {
                let mut sums = vec![0.0f64; kk * cols];
                let mut counts = vec![0usize; kk];
                for r in chunk.chunks_exact(cols) {
                    let c = nearest_centroid(&centroids, r).0 as usize;
                    counts[c] += 1;
                    for (s, v) in sums[c * cols..(c + 1) * cols].iter_mut().zip(r) {
                        *s += v;
                    }
                }
                (sums, counts)
            })
            .reduce(
                || (vec![0.0; kk * cols], vec![0; kk]),
                |(mut a, mut ca), (b, cb)| {
                    a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                    ca.iter_mut().zip(&cb).for_each(|(x, y)| *x += y);
                    (a, ca)
                },
            );
        let mut shift = 0.0;
        for (c, centroid) in centroids.iter_mut().enumerate() {
            if counts[c] == 0 {
                // An empty cluster keeps its centre (it may win rows back next round).
                continue;
            }
            let new: Vec<f64> = sums[c * cols..(c + 1) * cols]
                .iter()
                .map(|s| s / counts[c] as f64)
                .collect();
            shift += sq_dist(centroid, &new);
            *centroid = new;
        }
        if shift <= tol {
            break;
        }
    }
    centroids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbours_follow_sklearns_weighting_rules() {
        let x = [0.0, 1.0, 2.0, 10.0];
        let knn = Neighbours::fit(&x, 1, vec![0.0, 1.0, 2.0, 3.0], 3, true);
        // A query on a training row takes that row's value only.
        assert_eq!(knn.regress(&[1.0]), vec![1.0]);
        // Otherwise 1/d weights: neighbours 0, 1, 2 of 0.5 at 0.5, 0.5, 1.5.
        let w = [2.0, 2.0, 1.0 / 1.5];
        let expected = (2.0f64.mul_add(1.0, w[2] * 2.0)) / (w[0] + w[1] + w[2]);
        assert!((knn.regress(&[0.5])[0] - expected).abs() < 1e-12);
        // Uniform votes tie between classes 0 and 1: the lower class wins.
        let knn = Neighbours::fit(&[0.0, 2.0], 1, vec![1.0, 0.0], 2, false);
        assert_eq!(knn.classify(&[1.0], 2), vec![0]);
    }

    #[test]
    fn kmeans_separates_two_groups() {
        let x: Vec<f64> = (0..20)
            .flat_map(|i| {
                let c = f64::from(i % 2) * 100.0;
                [f64::from(i).mul_add(0.1, c), c]
            })
            .collect();
        let centroids = kmeans(&x, 2, 2, 100, 0);
        let labels: Vec<u32> = x
            .chunks_exact(2)
            .map(|r| nearest_centroid(&centroids, r).0)
            .collect();
        assert!(labels.chunks(2).all(|p| p[0] != p[1]));
        assert!(labels.iter().step_by(2).all(|l| *l == labels[0]));
    }
}
