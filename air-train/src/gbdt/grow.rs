//! Growing one tree from gradient histograms (XGBoost's `hist` updater): depth by depth
//! (`grow_policy=depthwise`) or best split first (`lossguide`, LightGBM's leaf-wise growth),
//! with XGBoost's rules for which nodes may split (`max_depth`, `max_leaves`, `gamma`).
//!
//! Histograms are built on this worker's rows and summed across workers through `reduce`, so
//! every worker sees the same global histogram and makes the same split decisions.

use rayon::prelude::*;

use super::{
    binning::{BinIndex, Bins, Cuts},
    model::Tree,
    params::{GbdtParams, GrowPolicy},
};
use crate::error::Result;

/// Sums a buffer across workers in place (the identity for one worker).
pub(crate) type Reduce<'a> = &'a (dyn Fn(&mut [f64]) -> Result<()> + Sync);

/// Below this many rows a histogram or a partition runs on the calling thread.
const MIN_PARALLEL_ROWS: usize = 16_384;
const RT_EPS: f64 = 1e-6;
/// XGBoost's `max_node_batch_size`: depth-wise growth expands at most this many nodes at once.
const MAX_NODE_BATCH: usize = 256;

/// How far ahead of the histogram loop rows are prefetched.
const PREFETCH_ROWS: usize = 16;

/// Hints the CPU to load the cache line holding `value`.
#[inline(always)]
#[allow(unsafe_code)]
fn prefetch<T>(value: &T) {
    // SAFETY: a prefetch is a hint with no effect on memory, valid for any address, and SSE
    // (which provides it) is part of every x86_64 CPU.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
            std::ptr::from_ref(value).cast::<i8>(),
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// A node's gradient and hessian sums per histogram slot.
type Histogram = Vec<[f64; 2]>;

pub(crate) struct Grower<'a, B> {
    pub(crate) bins: &'a Bins<B>,
    pub(crate) cuts: &'a Cuts,
    pub(crate) params: &'a GbdtParams,
    /// The largest leaf weight (before the learning rate); 0: unlimited.
    pub(crate) max_delta_step: f64,
    pub(crate) reduce: Reduce<'a>,
}

/// A grown tree and, for each of its leaves, the rows (of those it was grown on) that reached
/// it: the booster moves their margins without walking the tree.
pub(crate) struct Grown {
    pub(crate) tree: Tree,
    pub(crate) leaf_rows: Vec<(usize, Vec<u32>)>,
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

/// A node waiting to be split (XGBoost's expand entry).
struct Candidate {
    node: usize,
    depth: usize,
    rows: Vec<u32>,
    hist: Histogram,
    split: Split,
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

impl<B: BinIndex> Grower<'_, B> {
    /// XGBoost's `CalcGain`: the loss reduction a node's statistics allow.
    #[allow(
        clippy::suboptimal_flops,
        reason = "XGBoost rounds every product and sum; a fused multiply-add would not match it"
    )]
    fn score(&self, g: f64, h: f64) -> f64 {
        let p = self.params;
        if self.max_delta_step == 0.0 {
            let t = threshold_l1(g, p.alpha);
            t * t / (h + p.lambda)
        } else if h <= 0.0 {
            0.0
        } else {
            // With clipped weights the gain is the loss at the clipped weight, computed in
            // `f32` as XGBoost's split evaluator computes it (near-ties then break alike).
            let w = self.weight(g, h) as f32;
            let (g, h, lambda) = (g as f32, h as f32, p.lambda as f32);
            f64::from(-(2.0 * g * w + (h + lambda) * w * w))
        }
    }

    /// XGBoost's `CalcWeight`: the node's value before the learning rate, clipped to
    /// `max_delta_step` when that is set.
    fn weight(&self, g: f64, h: f64) -> f64 {
        let p = self.params;
        if self.max_delta_step != 0.0 && (h < p.min_child_weight || h <= 0.0) {
            return 0.0;
        }
        let w = -threshold_l1(g, p.alpha) / (h + p.lambda);
        if self.max_delta_step != 0.0 && w.abs() > self.max_delta_step {
            self.max_delta_step.copysign(w)
        } else {
            w
        }
    }

    /// The global histogram of `rows`: `(g, h)` per slot (each feature's bins, then its
    /// missing slot). Rows are split into one block per thread, each summed into its own
    /// histogram, then added.
    fn histogram(&self, rows: &[u32], grad: &[(f32, f32)]) -> Result<Histogram> {
        let len = self.cuts.hist_len();
        let d = self.bins.d;
        let offsets = &self.cuts.offsets[..d];
        let data = &self.bins.row_major;
        let build = |rows: &[u32]| {
            let mut acc = vec![[0.0f64; 2]; len];
            for (i, &r) in rows.iter().enumerate() {
                // A node's rows are scattered through the matrix: ask for a later row's bins
                // and gradient now, so they are in cache when the loop gets there.
                if let Some(&ahead) = rows.get(i + PREFETCH_ROWS) {
                    let ahead = ahead as usize;
                    prefetch(&data[ahead * d]);
                    prefetch(&data[ahead * d + d - 1]);
                    prefetch(&grad[ahead]);
                }
                let r = r as usize;
                let (g, h) = grad[r];
                let (g, h) = (f64::from(g), f64::from(h));
                for (b, off) in data[r * d..(r + 1) * d].iter().zip(offsets) {
                    let slot = &mut acc[off + (*b).into()];
                    slot[0] += g;
                    slot[1] += h;
                }
            }
            acc
        };
        let threads = rayon::current_num_threads();
        let mut hist = if rows.len() < MIN_PARALLEL_ROWS || threads == 1 {
            build(rows)
        } else {
            rows.par_chunks(rows.len().div_ceil(threads))
                .map(build)
                .reduce_with(|mut a, b| {
                    for (x, y) in a.iter_mut().zip(&b) {
                        x[0] += y[0];
                        x[1] += y[1];
                    }
                    a
                })
                .unwrap_or_else(|| vec![[0.0; 2]; len])
        };
        (self.reduce)(hist.as_flattened_mut())?;
        Ok(hist)
    }

    /// The node's totals (any feature's slots cover every row once).
    fn totals(&self, hist: &[[f64; 2]]) -> (f64, f64) {
        hist[self.cuts.offsets[0]..self.cuts.offsets[1]]
            .iter()
            .fold((0.0, 0.0), |(g, h), s| (g + s[0], h + s[1]))
    }

    fn best_split(&self, hist: &[[f64; 2]], features: &[usize]) -> Option<Split> {
        let (g, h) = self.totals(hist);
        let parent = self.score(g, h);
        let mcw = self.params.min_child_weight;
        let mut best: Option<Split> = None;
        // XGBoost's enumeration: a forward scan with missing values right, then (only when the
        // feature has missing values) a backward scan with them left; a candidate replaces the
        // best only when strictly better, so ties go to the lower feature, then forward.
        for &f in features {
            let start = self.cuts.offsets[f];
            let nb = self.cuts.bins(f);
            let bins = &hist[start..start + nb];
            let hm = hist[start + nb][1];
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
            for (b, s) in bins.iter().enumerate() {
                gl += s[0];
                hl += s[1];
                consider((gl, hl), b as i32, false);
            }
            if hm > 0.0 {
                let (mut gr, mut hr) = (0.0, 0.0);
                for (b, s) in bins.iter().enumerate().rev() {
                    gr += s[0];
                    hr += s[1];
                    consider((g - gr, h - hr), b as i32 - 1, true);
                }
            }
        }
        best.filter(|s| s.gain > RT_EPS)
    }

    /// Splits `rows` by `goes_left[bin of feature f]`, keeping each side in row order (so
    /// histogram building keeps walking memory forwards). Branch-free: every row is written to
    /// both sides and only the side it belongs to advances.
    fn partition(&self, rows: &[u32], f: usize, goes_left: &[bool]) -> (Vec<u32>, Vec<u32>) {
        let col = self.bins.column(f);
        let part = |rows: &[u32]| {
            let (mut l, mut r) = (vec![0u32; rows.len()], vec![0u32; rows.len()]);
            let (mut nl, mut nr) = (0usize, 0usize);
            for &row in rows {
                let left = goes_left[col[row as usize].into()];
                l[nl] = row;
                r[nr] = row;
                nl += usize::from(left);
                nr += usize::from(!left);
            }
            l.truncate(nl);
            r.truncate(nr);
            (l, r)
        };
        let threads = rayon::current_num_threads();
        if rows.len() < MIN_PARALLEL_ROWS || threads == 1 {
            return part(rows);
        }
        let parts: Vec<(Vec<u32>, Vec<u32>)> = rows
            .par_chunks(rows.len().div_ceil(threads * 4))
            .map(part)
            .collect();
        let nl = parts.iter().map(|p| p.0.len()).sum();
        let (mut l, mut r) = (Vec::with_capacity(nl), Vec::with_capacity(rows.len() - nl));
        for (pl, pr) in parts {
            l.extend(pl);
            r.extend(pr);
        }
        (l, r)
    }

    /// XGBoost's `IsValidExpandEntry`: whether a candidate may split given the leaves so far.
    fn may_split(&self, c: &Candidate, num_leaves: usize) -> bool {
        let p = self.params;
        c.split.gain >= p.gamma
            && (p.max_depth == 0 || c.depth < p.max_depth)
            && (p.max_leaves == 0 || num_leaves < p.max_leaves)
    }

    /// The next candidates to expand (XGBoost's `Driver::Pop`): depth-wise, every candidate at
    /// the shallowest depth (lowest node first); loss-guided, the one with the largest gain
    /// (ties: the lowest node). Candidates that may not split become leaves; loss-guided growth
    /// stops at the first one.
    fn pop(
        &self,
        queue: &mut Vec<Candidate>,
        num_leaves: &mut usize,
        leaves: &mut Vec<(usize, Vec<u32>)>,
    ) -> Vec<Candidate> {
        let mut out = Vec::new();
        match self.params.grow_policy {
            GrowPolicy::Lossguide => {
                let Some(i) = (0..queue.len()).max_by(|&a, &b| {
                    let (x, y) = (&queue[a], &queue[b]);
                    x.split
                        .gain
                        .total_cmp(&y.split.gain)
                        .then(y.node.cmp(&x.node))
                }) else {
                    return out;
                };
                let c = queue.swap_remove(i);
                if self.may_split(&c, *num_leaves) {
                    *num_leaves += 1;
                    out.push(c);
                } else {
                    leaves.push((c.node, c.rows));
                }
            }
            GrowPolicy::Depthwise => {
                queue.sort_by_key(|c| std::cmp::Reverse(c.node));
                let Some(level) = queue.last().map(|c| c.depth) else {
                    return out;
                };
                let mut popped = 0;
                while popped < MAX_NODE_BATCH && queue.last().is_some_and(|c| c.depth == level) {
                    let Some(c) = queue.pop() else { break };
                    popped += 1;
                    if self.may_split(&c, *num_leaves) {
                        *num_leaves += 1;
                        out.push(c);
                    } else {
                        leaves.push((c.node, c.rows));
                    }
                }
            }
        }
        out
    }

    /// Grows a tree on `rows` (this worker's sampled rows) with gradients `grad` (per local
    /// row), splitting only on `features`. Leaf values include the learning rate.
    pub(crate) fn grow(
        &self,
        rows: Vec<u32>,
        grad: &[(f32, f32)],
        features: &[usize],
    ) -> Result<Grown> {
        let p = self.params;
        let mut tree = Tree::single_leaf();
        let mut sums: Vec<(f64, f64)> = Vec::new();
        let mut leaf_rows: Vec<(usize, Vec<u32>)> = Vec::new();
        let mut queue: Vec<Candidate> = Vec::new();
        let hist = self.histogram(&rows, grad)?;
        sums.push(self.totals(&hist));
        // XGBoost evaluates the root whatever the limits; `may_split` applies them on popping.
        match self.best_split(&hist, features) {
            Some(split) => queue.push(Candidate {
                node: 0,
                depth: 0,
                rows,
                hist,
                split,
            }),
            None => leaf_rows.push((0, rows)),
        }
        let mut num_leaves = 1usize;
        loop {
            let batch = self.pop(&mut queue, &mut num_leaves, &mut leaf_rows);
            if batch.is_empty() {
                break;
            }
            let mut applied = Vec::with_capacity(batch.len());
            for c in batch {
                let s = c.split;
                let (l, r) = (tree.add_leaf(), tree.add_leaf());
                sums.push(s.left);
                sums.push(s.right);
                let n = c.node;
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
                applied.push((c, l, r));
            }
            // Children may split only if the limits leave room after this whole batch.
            let children_may_split = |depth: usize| {
                (p.max_depth == 0 || depth + 1 < p.max_depth)
                    && (p.max_leaves == 0 || num_leaves < p.max_leaves)
            };
            for (c, l, r) in applied {
                let s = c.split;
                let nb = self.cuts.bins(s.feature);
                let goes_left: Vec<bool> = (0..=nb)
                    .map(|b| {
                        if b == nb {
                            s.default_left
                        } else {
                            b as i32 <= s.left_upto
                        }
                    })
                    .collect();
                let (lrows, rrows) = self.partition(&c.rows, s.feature, &goes_left);
                drop(c.rows);
                if !children_may_split(c.depth) {
                    leaf_rows.push((l, lrows));
                    leaf_rows.push((r, rrows));
                    continue;
                }
                // Build the child with the smaller (global) hessian; the other is the parent's
                // histogram minus it.
                let left_smaller = s.left.1 <= s.right.1;
                let small = self.histogram(if left_smaller { &lrows } else { &rrows }, grad)?;
                let mut other = c.hist;
                for (a, b) in other.iter_mut().zip(&small) {
                    a[0] -= b[0];
                    a[1] -= b[1];
                }
                let (lh, rh) = if left_smaller {
                    (small, other)
                } else {
                    (other, small)
                };
                for (node, rows, hist) in [(l, lrows, lh), (r, rrows, rh)] {
                    match self.best_split(&hist, features) {
                        Some(split) => queue.push(Candidate {
                            node,
                            depth: c.depth + 1,
                            rows,
                            hist,
                            split,
                        }),
                        None => leaf_rows.push((node, rows)),
                    }
                }
            }
        }
        leaf_rows.extend(queue.into_iter().map(|c| (c.node, c.rows)));
        let eta = p.eta;
        for (i, &(g, h)) in sums.iter().enumerate() {
            tree.cover[i] = h as f32;
            if tree.left[i] < 0 {
                tree.leaf_value[i] = (self.weight(g, h) * eta) as f32;
            }
        }
        Ok(Grown { tree, leaf_rows })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gbdt::model::Objective;

    /// The same cuts stored as `u8` and as `u16` grow the same trees, with either policy.
    #[test]
    fn narrow_and_wide_bins_grow_the_same_tree() {
        let (rows, d) = (3000usize, 4usize);
        let x: Vec<f32> = (0..rows * d)
            .map(|i| {
                if i % 17 == 0 {
                    f32::NAN
                } else {
                    ((i * 7919) % 1013) as f32 / 1013.0
                }
            })
            .collect();
        let grad: Vec<(f32, f32)> = x
            .chunks_exact(d)
            .map(|r| (r[0].max(0.0).mul_add(3.0, 0.2) - r[1].min(1.0), 1.0))
            .collect();
        let cuts = Cuts::fit(&x, rows, d, 32);
        let narrow: Bins<u8> = Bins::build(&cuts, &x, rows, d);
        let wide: Bins<u16> = Bins::build(&cuts, &x, rows, d);
        let identity = |_: &mut [f64]| Ok(());
        for params in [
            GbdtParams::new(Objective::SquaredError),
            GbdtParams::new(Objective::SquaredError)
                .with_lossguide(9)
                .with_max_depth(0),
        ] {
            let features: Vec<usize> = (0..d).collect();
            let all: Vec<u32> = (0..rows as u32).collect();
            let a = Grower {
                bins: &narrow,
                cuts: &cuts,
                params: &params,
                max_delta_step: 0.0,
                reduce: &identity,
            }
            .grow(all.clone(), &grad, &features)
            .unwrap();
            let b = Grower {
                bins: &wide,
                cuts: &cuts,
                params: &params,
                max_delta_step: 0.0,
                reduce: &identity,
            }
            .grow(all, &grad, &features)
            .unwrap();
            assert!(a.tree.len() > 5, "the tree should split: {:?}", a.tree.left);
            assert_eq!(a.tree, b.tree);
            // Every grown row lands in exactly one leaf, the one the tree sends it to.
            let mut seen = vec![false; rows];
            for (leaf, rows_of_leaf) in &a.leaf_rows {
                for &r in rows_of_leaf {
                    let r = r as usize;
                    assert!(!seen[r]);
                    seen[r] = true;
                    assert_eq!(a.tree.leaf(&x[r * d..(r + 1) * d]), *leaf);
                }
            }
            assert!(seen.iter().all(|s| *s));
        }
    }
}
