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

#[derive(Debug, Clone)]
struct Split {
    feature: usize,
    /// Present values in bins `0..=left_upto` go left (-1: none do, only missing ones).
    left_upto: i32,
    /// A categorical split: the bins (categories) that go right; every other one goes left.
    right_bins: Option<Vec<usize>>,
    default_left: bool,
    gain: f64,
    left: (f64, f64),
    right: (f64, f64),
}

impl Split {
    /// Whether present values of local bin `b` go left (`nb` value bins; `nb` is the missing
    /// slot).
    fn goes_left(&self, nb: usize) -> Vec<bool> {
        let mut left: Vec<bool> = match &self.right_bins {
            Some(right) => {
                let mut left = vec![true; nb + 1];
                for b in right {
                    left[*b] = false;
                }
                left
            }
            None => (0..=nb).map(|b| b as i32 <= self.left_upto).collect(),
        };
        left[nb] = self.default_left;
        left
    }
}

/// Offers a candidate split: the left child's `(g, h)`, the last bin going left (numeric), where
/// missing values go, and (built only if the candidate is the best so far) the bins going
/// right of a categorical split.
type Consider<'a> = dyn FnMut((f64, f64), i32, bool, &dyn Fn() -> Option<Vec<usize>>) + 'a;

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
    /// XGBoost's split evaluator's `CalcGain`: the loss reduction a node's statistics allow,
    /// rounded to `f32` where XGBoost rounds it, so near-ties between candidate splits break
    /// as they do in XGBoost.
    #[allow(
        clippy::suboptimal_flops,
        reason = "XGBoost rounds every product and sum; a fused multiply-add would not match it"
    )]
    fn score(&self, g: f64, h: f64) -> f32 {
        let p = self.params;
        if h <= 0.0 {
            0.0
        } else if self.max_delta_step == 0.0 {
            let t = threshold_l1(g, p.alpha);
            (t * t) as f32 / (h + p.lambda) as f32
        } else {
            // With clipped weights the gain is the loss at the clipped weight.
            let w = self.weight(g, h) as f32;
            let (g, h, lambda) = (g as f32, h as f32, p.lambda as f32);
            -(2.0 * g * w + (h + lambda) * w * w)
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
            let missing = hist[start + nb];
            let mut consider =
                |left: (f64, f64),
                 left_upto: i32,
                 default_left: bool,
                 right_bins: &dyn Fn() -> Option<Vec<usize>>| {
                    let right = (g - left.0, h - left.1);
                    if left.1 < mcw || right.1 < mcw {
                        return;
                    }
                    let gain = f64::from(
                        self.score(left.0, left.1) + self.score(right.0, right.1) - parent,
                    );
                    if best.as_ref().is_none_or(|s| gain > s.gain) {
                        best = Some(Split {
                            feature: f,
                            left_upto,
                            right_bins: right_bins(),
                            default_left,
                            gain,
                            left,
                            right,
                        });
                    }
                };
            if self.cuts.categorical[f] {
                self.categorical_candidates(bins, missing, (g, h), &mut consider);
                continue;
            }
            let (mut gl, mut hl) = (0.0, 0.0);
            for (b, s) in bins.iter().enumerate() {
                gl += s[0];
                hl += s[1];
                consider((gl, hl), b as i32, false, &|| None);
            }
            if missing[1] > 0.0 {
                let (mut gr, mut hr) = (0.0, 0.0);
                for (b, s) in bins.iter().enumerate().rev() {
                    gr += s[0];
                    hr += s[1];
                    consider((g - gr, h - hr), b as i32 - 1, true, &|| None);
                }
            }
        }
        best.filter(|s| s.gain > RT_EPS)
    }

    /// XGBoost's categorical candidates for one feature's bins (one per category): with fewer
    /// categories than `max_cat_to_onehot`, each category against the rest, missing values
    /// first with the rest, then with the category; otherwise the categories sorted by their
    /// weight (stable), then every prefix of the first `max_cat_threshold` going right with
    /// missing values left, and every suffix going left with missing values right.
    fn categorical_candidates(
        &self,
        bins: &[[f64; 2]],
        missing: [f64; 2],
        (g, h): (f64, f64),
        consider: &mut Consider<'_>,
    ) {
        let nb = bins.len();
        if nb < self.params.max_cat_to_onehot {
            for (b, s) in bins.iter().enumerate() {
                consider((g - s[0], h - s[1]), -1, true, &|| Some(vec![b]));
                let right = (s[0] + missing[0], s[1] + missing[1]);
                consider((g - right.0, h - right.1), -1, false, &|| Some(vec![b]));
            }
            return;
        }
        let mut sorted: Vec<usize> = (0..nb).collect();
        let key = |b: usize| self.category_weight(bins[b][0], bins[b][1]) as f32;
        // Compared as XGBoost compares them: -0.0 equals 0.0 (a weight that L1 regularisation
        // zeroed), so the stable sort keeps those categories in code order.
        sorted.sort_by(|a, b| {
            key(*a)
                .partial_cmp(&key(*b))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        let n = self.params.max_cat_threshold.min(nb);
        let (mut gr, mut hr) = (0.0, 0.0);
        for j in 0..n.saturating_sub(1) {
            gr += bins[sorted[j]][0];
            hr += bins[sorted[j]][1];
            consider((g - gr, h - hr), -1, true, &|| Some(sorted[..=j].to_vec()));
        }
        let (mut gl, mut hl) = (0.0, 0.0);
        for j in ((nb + 1 - n.max(1))..nb).rev() {
            gl += bins[sorted[j]][0];
            hl += bins[sorted[j]][1];
            consider((gl, hl), -1, false, &|| Some(sorted[..j].to_vec()));
        }
    }

    /// XGBoost's `CalcWeight` with its child-weight check, which orders categories.
    fn category_weight(&self, g: f64, h: f64) -> f64 {
        if h < self.params.min_child_weight || h <= 0.0 {
            return 0.0;
        }
        let w = -threshold_l1(g, self.params.alpha) / (h + self.params.lambda);
        if self.max_delta_step != 0.0 && w.abs() > self.max_delta_step {
            self.max_delta_step.copysign(w)
        } else {
            w
        }
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
                let s = &c.split;
                let (l, r) = (tree.add_leaf(), tree.add_leaf());
                sums.push(s.left);
                sums.push(s.right);
                let n = c.node;
                tree.left[n] = l as i32;
                tree.right[n] = r as i32;
                tree.feature[n] = s.feature as u32;
                let cuts = &self.cuts.thresholds[s.feature];
                if let Some(right) = &s.right_bins {
                    // A categorical split keeps the codes that go right.
                    let mut codes: Vec<u32> = right.iter().map(|b| cuts[*b] as u32).collect();
                    codes.sort_unstable();
                    if tree.categories.is_empty() {
                        tree.categories = vec![None; tree.len()];
                    }
                    tree.categories[n] = Some(codes);
                    tree.threshold[n] = 0.0;
                } else {
                    // Bins 0..=left_upto hold the values below cuts[left_upto]; the scans' end
                    // points send every present value one way.
                    tree.threshold[n] = match usize::try_from(s.left_upto) {
                        Err(_) => f32::MIN,
                        Ok(u) if u >= cuts.len() => f32::MAX,
                        Ok(u) => cuts[u],
                    };
                }
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
                let s = &c.split;
                let goes_left = s.goes_left(self.cuts.bins(s.feature));
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
        let cuts = Cuts::fit(&x, rows, d, 32, &[]).unwrap();
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
