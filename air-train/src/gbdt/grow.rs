//! Growing one tree from gradient histograms, depth by depth (XGBoost's `hist` updater with
//! `grow_policy=depthwise`), then pruning splits whose gain is below `gamma` bottom-up.
//!
//! Histograms are built on this worker's rows and summed across workers through `reduce`, so
//! every worker sees the same global histogram and makes the same split decisions.

use rayon::prelude::*;

use super::{
    binning::{Cuts, MISSING},
    model::Tree,
    params::GbdtParams,
};
use crate::error::Result;

/// Sums a buffer across workers in place (the identity for one worker).
pub(crate) type Reduce<'a> = &'a (dyn Fn(&mut [f64]) -> Result<()> + Sync);

const ROW_CHUNK: usize = 8192;
const RT_EPS: f64 = 1e-6;

pub(crate) struct Grower<'a> {
    pub(crate) bins: &'a [u16],
    pub(crate) d: usize,
    pub(crate) cuts: &'a Cuts,
    pub(crate) params: &'a GbdtParams,
    pub(crate) reduce: Reduce<'a>,
}

#[derive(Debug, Clone, Copy)]
struct Split {
    feature: usize,
    /// Present values in bins `0..=left_upto` go left (-1: none do, only missing ones).
    left_upto: i32,
    default_left: bool,
    gain: f64,
    left: (f64, f64),
    right: (f64, f64),
}

struct Pending {
    node: usize,
    rows: Vec<u32>,
    hist: Vec<f64>,
    depth: usize,
}

fn threshold_l1(g: f64, alpha: f64) -> f64 {
    if g > alpha {
        g - alpha
    } else if g < -alpha {
        g + alpha
    } else {
        0.0
    }
}

impl Grower<'_> {
    fn hist_len(&self) -> usize {
        2 * (self.cuts.total_bins() + self.d)
    }

    fn score(&self, g: f64, h: f64) -> f64 {
        let t = threshold_l1(g, self.params.alpha);
        t * t / (h + self.params.lambda)
    }

    fn weight(&self, g: f64, h: f64) -> f64 {
        -threshold_l1(g, self.params.alpha) / (h + self.params.lambda)
    }

    /// The global histogram of `rows`: `(g, h)` per bin, then per feature for missing values.
    fn histogram(&self, rows: &[u32], grad: &[(f32, f32)]) -> Result<Vec<f64>> {
        let len = self.hist_len();
        let (d, total) = (self.d, self.cuts.total_bins());
        let offsets = &self.cuts.offsets;
        let mut hist = rows
            .par_chunks(ROW_CHUNK)
            .fold(
                || vec![0.0f64; len],
                |mut acc, chunk| {
                    for &r in chunk {
                        let r = r as usize;
                        let (g, h) = grad[r];
                        let (g, h) = (f64::from(g), f64::from(h));
                        let row = &self.bins[r * d..(r + 1) * d];
                        for (f, &b) in row.iter().enumerate() {
                            let k = if b == MISSING {
                                total + f
                            } else {
                                offsets[f] + b as usize
                            };
                            acc[2 * k] += g;
                            acc[2 * k + 1] += h;
                        }
                    }
                    acc
                },
            )
            .reduce(
                || vec![0.0f64; len],
                |mut a, b| {
                    a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
                    a
                },
            );
        (self.reduce)(&mut hist)?;
        Ok(hist)
    }

    /// The node's totals (any feature's bins plus its missing slot cover every row once).
    fn totals(&self, hist: &[f64]) -> (f64, f64) {
        let total = self.cuts.total_bins();
        let (mut g, mut h) = (hist[2 * total], hist[2 * total + 1]);
        for k in self.cuts.offsets[0]..self.cuts.offsets[1] {
            g += hist[2 * k];
            h += hist[2 * k + 1];
        }
        (g, h)
    }

    fn best_split(&self, hist: &[f64], features: &[usize]) -> Option<Split> {
        let (g, h) = self.totals(hist);
        let parent = self.score(g, h);
        let mcw = self.params.min_child_weight;
        let total = self.cuts.total_bins();
        let mut best: Option<Split> = None;
        // XGBoost's enumeration: a forward scan with missing values right, then (only when the
        // feature has missing values) a backward scan with them left; a candidate replaces the
        // best only when strictly better, so ties go to the lower feature, then forward.
        for &f in features {
            let hm = hist[2 * (total + f) + 1];
            let start = self.cuts.offsets[f];
            let nb = self.cuts.bins(f);
            let mut consider = |left: (f64, f64), left_upto: i32, default_left: bool| {
                let right = (g - left.0, h - left.1);
                if left.1 < mcw || right.1 < mcw {
                    return;
                }
                let gain = self.score(left.0, left.1) + self.score(right.0, right.1) - parent;
                if best.is_none_or(|s| gain > s.gain) {
                    best = Some(Split {
                        feature: f,
                        left_upto,
                        default_left,
                        gain,
                        left,
                        right,
                    });
                }
            };
            let (mut gl, mut hl) = (0.0, 0.0);
            for b in 0..nb {
                gl += hist[2 * (start + b)];
                hl += hist[2 * (start + b) + 1];
                consider((gl, hl), b as i32, false);
            }
            if hm > 0.0 {
                let (mut gr, mut hr) = (0.0, 0.0);
                for b in (0..nb).rev() {
                    gr += hist[2 * (start + b)];
                    hr += hist[2 * (start + b) + 1];
                    consider((g - gr, h - hr), b as i32 - 1, true);
                }
            }
        }
        best.filter(|s| s.gain > RT_EPS)
    }

    /// Grows a tree on `rows` (this worker's sampled rows) with gradients `grad` (per local
    /// row), splitting only on `features`. Leaf values include the learning rate.
    pub(crate) fn grow(
        &self,
        rows: Vec<u32>,
        grad: &[(f32, f32)],
        features: &[usize],
    ) -> Result<Tree> {
        let mut tree = Tree {
            left: vec![-1],
            right: vec![-1],
            feature: vec![0],
            threshold: vec![0.0],
            default_left: vec![false],
            leaf_value: vec![0.0],
            gain: vec![0.0],
            cover: vec![0.0],
        };
        let mut sums: Vec<(f64, f64)> = vec![(0.0, 0.0)];
        let hist = self.histogram(&rows, grad)?;
        sums[0] = self.totals(&hist);
        let mut level = vec![Pending {
            node: 0,
            rows,
            hist,
            depth: 0,
        }];
        while !level.is_empty() {
            let mut next = Vec::new();
            for p in level {
                let split = if p.depth < self.params.max_depth {
                    self.best_split(&p.hist, features)
                } else {
                    None
                };
                let Some(s) = split else { continue };
                let (l, r) = (tree.left.len(), tree.left.len() + 1);
                for _ in 0..2 {
                    tree.left.push(-1);
                    tree.right.push(-1);
                    tree.feature.push(0);
                    tree.threshold.push(0.0);
                    tree.default_left.push(false);
                    tree.leaf_value.push(0.0);
                    tree.gain.push(0.0);
                    tree.cover.push(0.0);
                }
                sums.push(s.left);
                sums.push(s.right);
                let n = p.node;
                tree.left[n] = l as i32;
                tree.right[n] = r as i32;
                tree.feature[n] = s.feature as u32;
                let cuts = &self.cuts.thresholds[s.feature];
                // Bins 0..=left_upto hold the values below cuts[left_upto]; the scans' end
                // points send every present value one way.
                tree.threshold[n] = match usize::try_from(s.left_upto) {
                    Err(_) => f32::MIN,
                    Ok(u) if u >= cuts.len() => f32::MAX,
                    Ok(u) => cuts[u],
                };
                tree.default_left[n] = s.default_left;
                tree.gain[n] = s.gain as f32;
                let d = self.d;
                let goes_left = |row: u32| {
                    let b = self.bins[row as usize * d + s.feature];
                    if b == MISSING {
                        s.default_left
                    } else {
                        i32::from(b) <= s.left_upto
                    }
                };
                // Partitioned in parallel chunks, concatenated in order (rows stay sorted, so
                // histogram building keeps walking memory forwards).
                let parts: Vec<(Vec<u32>, Vec<u32>)> = p
                    .rows
                    .par_chunks(ROW_CHUNK)
                    .map(|c| c.iter().partition(|&&row| goes_left(row)))
                    .collect();
                let (mut lrows, mut rrows) = (Vec::new(), Vec::new());
                for (l, r) in parts {
                    lrows.extend(l);
                    rrows.extend(r);
                }
                // Build the child with the smaller (global) hessian; the other is the parent's
                // histogram minus it.
                let left_smaller = s.left.1 <= s.right.1;
                let small = self.histogram(if left_smaller { &lrows } else { &rrows }, grad)?;
                let mut other = p.hist;
                other.iter_mut().zip(&small).for_each(|(a, b)| *a -= b);
                let (lh, rh) = if left_smaller {
                    (small, other)
                } else {
                    (other, small)
                };
                next.push(Pending {
                    node: l,
                    rows: lrows,
                    hist: lh,
                    depth: p.depth + 1,
                });
                next.push(Pending {
                    node: r,
                    rows: rrows,
                    hist: rh,
                    depth: p.depth + 1,
                });
            }
            level = next;
        }
        self.prune(&mut tree, 0);
        let eta = self.params.eta;
        for (i, &(g, h)) in sums.iter().enumerate() {
            tree.cover[i] = h as f32;
            if tree.left[i] < 0 {
                tree.leaf_value[i] = (self.weight(g, h) * eta) as f32;
            }
        }
        Ok(tree)
    }

    /// XGBoost's pruning: a split whose children are leaves and whose gain is below `gamma`
    /// becomes a leaf, bottom-up.
    fn prune(&self, tree: &mut Tree, node: usize) {
        if tree.left[node] < 0 {
            return;
        }
        let (l, r) = (tree.left[node] as usize, tree.right[node] as usize);
        self.prune(tree, l);
        self.prune(tree, r);
        if tree.left[l] < 0 && tree.left[r] < 0 && f64::from(tree.gain[node]) < self.params.gamma {
            tree.left[node] = -1;
            tree.right[node] = -1;
            tree.gain[node] = 0.0;
            tree.threshold[node] = 0.0;
        }
    }
}
