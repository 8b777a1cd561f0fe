//! Per-feature contributions to each prediction (exact path-dependent TreeSHAP, Lundberg et
//! al. 2018, as XGBoost's `pred_contribs=True` computes it) and the leaf each row reaches in
//! each tree (`pred_leaf=True`).
//!
//! A tree's SHAP values spread the difference between its prediction for a row and its
//! expected prediction (the cover-weighted mean of its leaves) over the features on the row's
//! path: for each leaf, every feature on the path to it gets the leaf's value times the
//! weight of the feature subsets in which the row would reach that leaf, as the subsets'
//! proportions follow the cover (hessian sums) of the branches not taken. Contributions and the
//! bias (base margin plus every tree's expected value) sum to the row's margin.

use rayon::prelude::*;

use super::model::{GbdtModel, Tree};
use crate::error::Result;

/// Rows per parallel task.
const CHUNK: usize = 256;

/// One feature on the path from the root, with the fractions of rows that follow the path
/// when the feature is unknown (`zero`) or known (`one`), and the weight of the subsets.
#[derive(Debug, Clone, Copy, Default)]
struct PathElement {
    feature: i64,
    zero: f64,
    one: f64,
    weight: f64,
}

/// Adds a feature to the path, updating the subset weights.
fn extend(path: &mut Vec<PathElement>, zero: f64, one: f64, feature: i64) {
    let depth = path.len();
    path.push(PathElement {
        feature,
        zero,
        one,
        weight: if depth == 0 { 1.0 } else { 0.0 },
    });
    let d1 = (depth + 1) as f64;
    for i in (0..depth).rev() {
        path[i + 1].weight += one * path[i].weight * (i + 1) as f64 / d1;
        path[i].weight = zero * path[i].weight * (depth - i) as f64 / d1;
    }
}

/// Removes element `index` from the path, undoing its effect on the subset weights.
fn unwind(path: &mut Vec<PathElement>, index: usize) {
    let depth = path.len() - 1;
    let (one, zero) = (path[index].one, path[index].zero);
    let d1 = (depth + 1) as f64;
    let mut next = path[depth].weight;
    for i in (0..depth).rev() {
        if one != 0.0 {
            let w = path[i].weight;
            path[i].weight = next * d1 / ((i + 1) as f64 * one);
            next = w - path[i].weight * zero * (depth - i) as f64 / d1;
        } else {
            path[i].weight = path[i].weight * d1 / (zero * (depth - i) as f64);
        }
    }
    for i in index..depth {
        path[i].feature = path[i + 1].feature;
        path[i].zero = path[i + 1].zero;
        path[i].one = path[i + 1].one;
    }
    path.pop();
}

/// The total subset weight the path would have without element `index`.
fn unwound_sum(path: &[PathElement], index: usize) -> f64 {
    let depth = path.len() - 1;
    let (one, zero) = (path[index].one, path[index].zero);
    let d1 = (depth + 1) as f64;
    let mut next = path[depth].weight;
    let mut total = 0.0;
    for i in (0..depth).rev() {
        if one != 0.0 {
            let w = next * d1 / ((i + 1) as f64 * one);
            total += w;
            next = path[i].weight - w * zero * (depth - i) as f64 / d1;
        } else if zero != 0.0 {
            total += path[i].weight / zero / ((depth - i) as f64 / d1);
        }
    }
    total
}

/// The cover-weighted mean leaf value under each node.
fn mean_values(tree: &Tree) -> Vec<f64> {
    let mut mean = vec![0.0f64; tree.len()];
    // Children come after their parents: a backward pass sees children first.
    for i in (0..tree.len()).rev() {
        if tree.left[i] < 0 {
            mean[i] = f64::from(tree.leaf_value[i]);
        } else {
            let (l, r) = (tree.left[i] as usize, tree.right[i] as usize);
            let (cl, cr) = (f64::from(tree.cover[l]), f64::from(tree.cover[r]));
            let total = cl + cr;
            mean[i] = if total > 0.0 {
                mean[l].mul_add(cl, mean[r] * cr) / total
            } else {
                0.0
            };
        }
    }
    mean
}

/// Adds `tree`'s SHAP values for `row` to `phi` (one slot per feature).
fn tree_shap(
    tree: &Tree,
    row: &[f32],
    phi: &mut [f64],
    node: usize,
    mut path: Vec<PathElement>,
    (zero, one, feature): (f64, f64, i64),
) {
    extend(&mut path, zero, one, feature);
    if tree.left[node] < 0 {
        let value = f64::from(tree.leaf_value[node]);
        for i in 1..path.len() {
            let w = unwound_sum(&path, i);
            let e = path[i];
            phi[e.feature as usize] += w * (e.one - e.zero) * value;
        }
        return;
    }
    let (l, r) = (tree.left[node] as usize, tree.right[node] as usize);
    let (hot, cold) = if tree.goes_left(node, row) {
        (l, r)
    } else {
        (r, l)
    };
    let cover = f64::from(tree.cover[node]);
    let fraction = |c: usize| {
        if cover > 0.0 {
            f64::from(tree.cover[c]) / cover
        } else {
            0.0
        }
    };
    let split_feature = i64::from(tree.feature[node]);
    // A feature already on the path is split on again: its earlier element is undone and its
    // fractions carry into this split.
    let (mut incoming_zero, mut incoming_one) = (1.0, 1.0);
    if let Some(k) = path.iter().position(|e| e.feature == split_feature) {
        incoming_zero = path[k].zero;
        incoming_one = path[k].one;
        unwind(&mut path, k);
    }
    tree_shap(
        tree,
        row,
        phi,
        hot,
        path.clone(),
        (fraction(hot) * incoming_zero, incoming_one, split_feature),
    );
    tree_shap(
        tree,
        row,
        phi,
        cold,
        path,
        (fraction(cold) * incoming_zero, 0.0, split_feature),
    );
}

impl GbdtModel {
    /// SHAP values of each row's margin (XGBoost's `pred_contribs=True`): `rows × groups ×
    /// (num_feature + 1)`, row-major; per group, one value per feature, then the bias (the
    /// base margin plus every tree's expected value). Each group's values sum to its margin.
    pub fn predict_contributions(&self, data: &[f32], rows: usize) -> Result<Vec<f32>> {
        self.check_input(data, rows)?;
        let d = self.num_feature;
        let groups = self.objective.num_groups();
        let width = groups * (d + 1);
        let means: Vec<Vec<f64>> = self.trees.iter().map(mean_values).collect();
        let mut out = vec![0.0f32; rows * width];
        out.par_chunks_mut(CHUNK * width)
            .zip(data.par_chunks(CHUNK * d.max(1)))
            .for_each(|(out, data)| {
                let mut phi = vec![0.0f64; width];
                for (o, row) in out.chunks_exact_mut(width).zip(data.chunks_exact(d.max(1))) {
                    phi.fill(0.0);
                    for (g, base) in self.base_margin.iter().enumerate() {
                        phi[g * (d + 1) + d] = f64::from(*base);
                    }
                    for ((tree, &g), mean) in self.trees.iter().zip(&self.tree_group).zip(&means) {
                        let slots = &mut phi[g * (d + 1)..(g + 1) * (d + 1)];
                        slots[d] += mean[0];
                        tree_shap(tree, row, slots, 0, Vec::new(), (1.0, 1.0, -1));
                    }
                    for (o, p) in o.iter_mut().zip(&phi) {
                        *o = *p as f32;
                    }
                }
            });
        Ok(out)
    }

    /// The leaf (node index within its tree) each row reaches in each tree (XGBoost's
    /// `pred_leaf=True`): `rows × trees`, row-major, trees in boosting order.
    pub fn predict_leaf(&self, data: &[f32], rows: usize) -> Result<Vec<u32>> {
        self.check_input(data, rows)?;
        let (d, trees) = (self.num_feature.max(1), self.trees.len());
        let mut out = vec![0u32; rows * trees];
        if trees == 0 {
            return Ok(out);
        }
        out.par_chunks_mut(CHUNK * trees)
            .zip(data.par_chunks(CHUNK * d))
            .for_each(|(out, data)| {
                for (o, row) in out.chunks_exact_mut(trees).zip(data.chunks_exact(d)) {
                    for (slot, tree) in o.iter_mut().zip(&self.trees) {
                        *slot = tree.leaf(row) as u32;
                    }
                }
            });
        Ok(out)
    }
}
