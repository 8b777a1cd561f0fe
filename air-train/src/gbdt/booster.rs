//! The boosting loop: gradients of the objective, one tree per output group per round,
//! margins updated incrementally on the training rows and on every eval set.

use rand::{RngExt, SeedableRng, rngs::StdRng, seq::SliceRandom};
use rayon::prelude::*;

use super::{
    binning::{BinIndex, BinMatrix, Bins, Cuts},
    grow::{Grower, Grown, Reduce},
    metrics::evaluate,
    model::{GBDT_FORMAT_VERSION, GbdtModel, Objective, Tree},
    params::GbdtParams,
};
use crate::{TrainError, error::Result};

/// Rows for the booster: a row-major `rows × features` matrix (NaN = missing) and labels.
#[derive(Debug, Clone, Copy)]
pub struct BoostData<'a> {
    /// Row-major features.
    pub x: &'a [f32],
    /// The number of rows.
    pub rows: usize,
    /// One label per row (class index for multi-class).
    pub y: &'a [f32],
}

impl BoostData<'_> {
    fn check(&self, d: usize, what: &str, objective: Objective) -> Result<()> {
        let bad = |reason: String| TrainError::model(format!("boosting data {what:?}"), reason);
        if self.x.len() != self.rows * d {
            return Err(bad(format!(
                "{} values for {} rows of {d} features",
                self.x.len(),
                self.rows
            )));
        }
        if self.y.len() != self.rows {
            return Err(bad(format!(
                "{} labels for {} rows",
                self.y.len(),
                self.rows
            )));
        }
        if let Some((i, v)) = self.y.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(bad(format!(
                "label of row {i} is {v}; labels cannot be missing"
            )));
        }
        let first_bad =
            |ok: &dyn Fn(f32) -> bool| self.y.iter().copied().enumerate().find(|(_, v)| !ok(*v));
        match objective {
            o if o.is_logistic() => {
                if let Some((i, v)) = first_bad(&|v| (0.0..=1.0).contains(&v)) {
                    return Err(bad(format!(
                        "label of row {i} is {v}; {} expects labels in [0, 1]",
                        objective.xgboost_name()
                    )));
                }
            }
            Objective::MultiSoftprob { num_class } | Objective::MultiSoftmax { num_class } => {
                if let Some((i, v)) =
                    first_bad(&|v| v.fract() == 0.0 && v >= 0.0 && (v as usize) < num_class)
                {
                    return Err(bad(format!(
                        "label of row {i} is {v}; {} with num_class {num_class} expects class \
                         indices 0..{num_class}",
                        objective.xgboost_name()
                    )));
                }
            }
            Objective::Poisson { .. } => {
                if let Some((i, v)) = first_bad(&|v| v >= 0.0) {
                    return Err(bad(format!(
                        "label of row {i} is {v}; count:poisson expects counts ≥ 0"
                    )));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// One boosting run in progress on this worker's rows.
pub(crate) struct Booster<'a> {
    params: &'a GbdtParams,
    cuts: &'a Cuts,
    d: usize,
    local: BoostData<'a>,
    bins: BinMatrix,
    reduce: Reduce<'a>,
    pub(crate) model: GbdtModel,
    margins: Vec<f32>,
    evals: Vec<(String, BoostData<'a>, Vec<f32>)>,
}

impl<'a> Booster<'a> {
    /// Starts from `init` (resuming) or from the base score.
    pub(crate) fn new(
        params: &'a GbdtParams,
        cuts: &'a Cuts,
        feature_names: Vec<String>,
        local: BoostData<'a>,
        evals: Vec<(String, BoostData<'a>)>,
        reduce: Reduce<'a>,
        init: Option<GbdtModel>,
    ) -> Result<Self> {
        params.validate()?;
        let d = cuts.thresholds.len();
        let objective = params.objective;
        local.check(d, "train", objective)?;
        for (name, e) in &evals {
            e.check(d, name, objective)?;
        }
        let groups = objective.num_groups();
        let model = match init {
            Some(m) => {
                if m.objective != objective || m.num_feature != d {
                    return Err(TrainError::model(
                        "resuming boosting",
                        format!(
                            "the checkpoint's model is {} on {} features; these params train {} on {d}",
                            m.objective.xgboost_name(),
                            m.num_feature,
                            objective.xgboost_name()
                        ),
                    ));
                }
                m
            }
            None => GbdtModel {
                format_version: GBDT_FORMAT_VERSION,
                objective,
                num_feature: d,
                feature_names,
                base_margin: base_margin(params, local, reduce)?,
                trees: Vec::new(),
                tree_group: Vec::new(),
            },
        };
        let margins = model.predict_margin(local.x, local.rows)?;
        let evals = evals
            .into_iter()
            .map(|(name, e)| model.predict_margin(e.x, e.rows).map(|m| (name, e, m)))
            .collect::<Result<_>>()?;
        debug_assert_eq!(margins.len(), local.rows * groups);
        Ok(Self {
            params,
            cuts,
            d,
            bins: cuts.bin_matrix(local.x, local.rows, d),
            local,
            reduce,
            model,
            margins,
            evals,
        })
    }

    /// Rounds already in the model.
    pub(crate) fn rounds_done(&self) -> usize {
        self.model.trees.len() / self.params.objective.num_groups()
    }

    /// The gradient and hessian of every row, one vector per output group (multi-class
    /// probabilities are computed once per row for all groups).
    fn gradients(&self) -> Vec<Vec<(f32, f32)>> {
        let groups = self.params.objective.num_groups();
        let y = self.local.y;
        let m = &self.margins;
        match self.params.objective {
            Objective::MultiSoftprob { .. } | Objective::MultiSoftmax { .. } => {
                let mut all = vec![(0.0f32, 0.0f32); m.len()];
                all.par_chunks_mut(groups)
                    .zip(m.par_chunks(groups))
                    .zip(y.par_iter())
                    .for_each(|((out, row), y)| {
                        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                        let mut sum = 0.0f32;
                        for (o, v) in out.iter_mut().zip(row) {
                            o.0 = (v - max).exp();
                            sum += o.0;
                        }
                        for (k, o) in out.iter_mut().enumerate() {
                            let p = o.0 / sum;
                            let target = if *y as usize == k { 1.0 } else { 0.0 };
                            *o = (p - target, (2.0 * p * (1.0 - p)).max(1e-16));
                        }
                    });
                (0..groups)
                    .map(|g| all.iter().skip(g).step_by(groups).copied().collect())
                    .collect()
            }
            objective => vec![
                (0..self.local.rows)
                    .into_par_iter()
                    .map(|r| objective.gradient(m[r], y[r]))
                    .collect(),
            ],
        }
    }

    /// Adds one round: a tree per output group.
    pub(crate) fn round(&mut self) -> Result<()> {
        let groups = self.params.objective.num_groups();
        let round = self.rounds_done();
        let mut new_trees: Vec<Grown> = Vec::with_capacity(groups);
        for (group, grad) in self.gradients().into_iter().enumerate() {
            let tree_index = (round * groups + group) as u64;
            // Feature sampling is the same on every worker (seeded by the tree only); row
            // sampling is per worker.
            let mut features: Vec<usize> = (0..self.d).collect();
            if self.params.colsample_bytree < 1.0 {
                let mut rng = StdRng::seed_from_u64(
                    self.params.seed ^ (tree_index.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
                );
                features.shuffle(&mut rng);
                let keep = ((self.d as f64 * self.params.colsample_bytree).round() as usize).max(1);
                features.truncate(keep);
                features.sort_unstable();
            }
            let rows: Vec<u32> = if self.params.subsample < 1.0 {
                let mut rng = StdRng::seed_from_u64(
                    self.params.seed.wrapping_add(1)
                        ^ (tree_index.wrapping_mul(0xD1B5_4A32_D192_ED03)),
                );
                (0..self.local.rows as u32)
                    .filter(|_| rng.random::<f64>() < self.params.subsample)
                    .collect()
            } else {
                (0..self.local.rows as u32).collect()
            };
            new_trees.push(match &self.bins {
                BinMatrix::U8(bins) => self.grow(bins, rows, &grad, &features)?,
                BinMatrix::U16(bins) => self.grow(bins, rows, &grad, &features)?,
            });
        }
        if self.params.objective == Objective::AbsoluteError {
            for grown in &mut new_trees {
                self.adapt_leaves(grown)?;
            }
        }
        // Margins move only after every group's gradients were taken from the same round.
        for (group, Grown { tree, leaf_rows }) in new_trees.into_iter().enumerate() {
            add_grown_tree(
                &tree,
                &leaf_rows,
                group,
                groups,
                self.local.x,
                self.d,
                &mut self.margins,
            );
            for (_, e, m) in &mut self.evals {
                add_tree(&tree, group, groups, e.x, self.d, m);
            }
            self.model.trees.push(tree);
            self.model.tree_group.push(group);
        }
        Ok(())
    }

    /// `reg:absoluteerror`'s adaptive leaves (XGBoost's `UpdateTreeLeaf`): each leaf's value
    /// becomes the learning rate times the median of `label − margin` over its rows, averaged
    /// over the workers that have rows there; a leaf no worker has rows in keeps its value.
    fn adapt_leaves(&self, grown: &mut Grown) -> Result<()> {
        let n = grown.tree.len();
        // [sum of medians per node..., workers with rows per node...]
        let mut sums = vec![0.0f64; 2 * n];
        for (leaf, rows) in &grown.leaf_rows {
            if rows.is_empty() {
                continue;
            }
            let residuals: Vec<f32> = rows
                .iter()
                .map(|r| self.local.y[*r as usize] - self.margins[*r as usize])
                .collect();
            sums[*leaf] = f64::from(quantile(residuals, 0.5));
            sums[n + leaf] = 1.0;
        }
        (self.reduce)(&mut sums)?;
        let tree = &mut grown.tree;
        for i in 0..n {
            if tree.left[i] < 0 && sums[n + i] > 0.0 {
                tree.leaf_value[i] = ((sums[i] / sums[n + i]) as f32) * self.params.eta as f32;
            }
        }
        Ok(())
    }

    fn grow<B: BinIndex>(
        &self,
        bins: &Bins<B>,
        rows: Vec<u32>,
        grad: &[(f32, f32)],
        features: &[usize],
    ) -> Result<Grown> {
        Grower {
            bins,
            cuts: self.cuts,
            params: self.params,
            max_delta_step: self.params.tree_max_delta_step(),
            reduce: self.reduce,
        }
        .grow(rows, grad, features)
    }

    /// Every metric on every eval set, named `"{set}-{metric}"`, in set then metric order.
    pub(crate) fn evaluate(&self) -> Vec<(String, f64)> {
        let groups = self.params.objective.num_groups();
        let metrics = self.params.metrics();
        let mut out = Vec::new();
        for (name, e, margins) in &self.evals {
            let mut pred = margins.clone();
            for row in pred.chunks_exact_mut(groups) {
                self.params.objective.transform_row(row);
            }
            let slope = match self.params.objective {
                Objective::PseudoHuber { huber_slope } => huber_slope,
                _ => 1.0,
            };
            for m in &metrics {
                out.push((
                    format!("{name}-{}", m.name()),
                    evaluate(*m, &pred, groups, e.y, slope),
                ));
            }
        }
        out
    }
}

/// Adds a freshly grown tree to the training margins: rows it was grown on take their leaf
/// from the growth's partition (no walk), rows left out by sampling walk the tree.
fn add_grown_tree(
    tree: &Tree,
    leaf_rows: &[(usize, Vec<u32>)],
    group: usize,
    groups: usize,
    x: &[f32],
    d: usize,
    margins: &mut [f32],
) {
    const NOT_GROWN_ON: u32 = u32::MAX;
    let mut leaf_of = vec![NOT_GROWN_ON; margins.len() / groups];
    for (leaf, rows) in leaf_rows {
        for r in rows {
            leaf_of[*r as usize] = *leaf as u32;
        }
    }
    margins
        .par_chunks_mut(groups * 4096)
        .zip(leaf_of.par_chunks(4096))
        .enumerate()
        .for_each(|(chunk, (m, leaves))| {
            for (i, (row_m, leaf)) in m.chunks_exact_mut(groups).zip(leaves).enumerate() {
                let leaf = if *leaf == NOT_GROWN_ON {
                    let r = chunk * 4096 + i;
                    tree.leaf(&x[r * d..(r + 1) * d])
                } else {
                    *leaf as usize
                };
                row_m[group] += tree.leaf_value[leaf];
            }
        });
}

fn add_tree(tree: &Tree, group: usize, groups: usize, x: &[f32], d: usize, margins: &mut [f32]) {
    margins
        .par_chunks_mut(groups * 1024)
        .zip(x.par_chunks(d.max(1) * 1024))
        .for_each(|(m, x)| {
            for (row_m, row) in m.chunks_exact_mut(groups).zip(x.chunks_exact(d.max(1))) {
                row_m[group] += tree.leaf_value[tree.leaf(row)];
            }
        });
}

/// XGBoost's `boost_from_average`: the labels' mean (as a margin), or for multi-class the
/// centred log class frequencies. Sums go through `reduce` so every worker starts alike.
fn base_margin(params: &GbdtParams, data: BoostData<'_>, reduce: Reduce<'_>) -> Result<Vec<f32>> {
    let objective = params.objective;
    let groups = objective.num_groups();
    if let Some(b) = params.base_score {
        return Ok(vec![objective.prob_to_margin(b as f32); groups]);
    }
    match objective {
        Objective::MultiSoftprob { num_class } | Objective::MultiSoftmax { num_class } => {
            let mut counts = vec![0.0f64; num_class];
            for y in data.y {
                counts[*y as usize] += 1.0;
            }
            reduce(&mut counts)?;
            let total: f64 = counts.iter().sum();
            let logs: Vec<f64> = counts
                .iter()
                .map(|c| ((c + 1e-6) / total.max(1.0)).ln())
                .collect();
            let mean = logs.iter().sum::<f64>() / num_class as f64;
            Ok(logs.into_iter().map(|l| (l - mean) as f32).collect())
        }
        Objective::AbsoluteError => {
            // XGBoost: each worker's median, averaged weighted by its rows.
            let mut s = [
                f64::from(quantile(data.y.to_vec(), 0.5)) * data.rows as f64,
                data.rows as f64,
            ];
            if data.rows == 0 {
                s[0] = 0.0;
            }
            reduce(&mut s)?;
            Ok(vec![if s[1] > 0.0 {
                (s[0] / s[1]) as f32
            } else {
                0.0
            }])
        }
        Objective::PseudoHuber { .. } => {
            // XGBoost's `FitIntercept`: one unregularised Newton step from margin 0.
            let mut s = [0.0f64; 2];
            for y in data.y {
                let (g, h) = objective.gradient(0.0, *y);
                s[0] += f64::from(g);
                s[1] += f64::from(h);
            }
            reduce(&mut s)?;
            Ok(vec![if s[1] > 0.0 {
                (-s[0] / s[1]) as f32
            } else {
                0.0
            }])
        }
        _ => {
            let mut s = [
                data.y.iter().map(|v| f64::from(*v)).sum::<f64>(),
                data.rows as f64,
            ];
            reduce(&mut s)?;
            let mean = if s[1] > 0.0 { s[0] / s[1] } else { 0.5 };
            if matches!(objective, Objective::Poisson { .. }) && mean <= 0.0 {
                return Err(TrainError::model(
                    "boosting data \"train\"",
                    "every label is 0; count:poisson needs a positive mean count (or set \
                     base_score)"
                        .to_owned(),
                ));
            }
            Ok(vec![objective.prob_to_margin(mean as f32)])
        }
    }
}

/// XGBoost's `common::Quantile`: the `alpha` quantile of `values` with linear interpolation
/// between order statistics at rank `alpha (n + 1)`; NaN for no values.
pub(crate) fn quantile(mut values: Vec<f32>, alpha: f64) -> f32 {
    let n = values.len() as f64;
    if values.is_empty() {
        return f32::NAN;
    }
    values.sort_by(f32::total_cmp);
    if alpha <= 1.0 / (n + 1.0) {
        return values[0];
    }
    if alpha >= n / (n + 1.0) {
        return values[values.len() - 1];
    }
    let x = alpha * (n + 1.0);
    let k = x.floor() - 1.0;
    let d = (x - 1.0) - k;
    let (v0, v1) = (values[k as usize], values[k as usize + 1]);
    (f64::from(v0) + d * f64::from(v1 - v0)) as f32
}

/// One finished round: its number (from 1) and the eval metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct RoundReport {
    /// Rounds in the model so far.
    pub round: usize,
    /// `("{set}-{metric}", value)` for every eval set and metric.
    pub metrics: Vec<(String, f64)>,
}

/// Trains a booster in this process (the data-parallel form is `GbdtTrainer`).
///
/// `evals` are named eval sets (metrics `"{name}-{metric}"`); `on_round` sees every round and
/// may return `false` to stop. With `early_stopping_rounds`, training stops when the last
/// eval set's last metric has not improved for that many rounds and the model is cut back to
/// its best round.
///
/// ```
/// use air_train::gbdt::{BoostData, GbdtParams, Objective, train_gbdt};
///
/// let x: Vec<f32> = (0..200).map(|i| i as f32).collect();
/// let y: Vec<f32> = x.iter().map(|v| if *v >= 100.0 { 1.0 } else { 0.0 }).collect();
/// let data = BoostData { x: &x, rows: 200, y: &y };
/// let params = GbdtParams::new(Objective::BinaryLogistic);
/// let model = train_gbdt(&params, data, &[("train", data)], 20, |_| true)?;
/// let p = model.predict(&[10.0, 150.0], 2)?;
/// assert!(p[0] < 0.1 && p[1] > 0.9);
/// # Ok::<(), air_train::TrainError>(())
/// ```
pub fn train_gbdt(
    params: &GbdtParams,
    train: BoostData<'_>,
    evals: &[(&str, BoostData<'_>)],
    num_boost_round: usize,
    mut on_round: impl FnMut(&RoundReport) -> bool,
) -> Result<GbdtModel> {
    let d = train.x.len().checked_div(train.rows).unwrap_or(0);
    let cuts = Cuts::fit(
        train.x,
        train.rows,
        d,
        params.max_bin,
        &params.categorical_features,
    )?;
    cuts.check_present(&[])?;
    let identity = |_: &mut [f64]| Ok(());
    let mut booster = Booster::new(
        params,
        &cuts,
        Vec::new(),
        train,
        evals.iter().map(|(n, e)| ((*n).to_owned(), *e)).collect(),
        &identity,
        None,
    )?;
    let mut stopper = EarlyStopper::new(params);
    for _ in 0..num_boost_round {
        booster.round()?;
        let report = RoundReport {
            round: booster.rounds_done(),
            metrics: booster.evaluate(),
        };
        let go_on = on_round(&report);
        if stopper.should_stop(&report) {
            let best = stopper.best_round;
            booster.model.truncate_rounds(best);
            break;
        }
        if !go_on {
            break;
        }
    }
    Ok(booster.model)
}

/// Early stopping on the last reported metric.
pub(crate) struct EarlyStopper {
    rounds: Option<usize>,
    higher_is_better: bool,
    best: Option<f64>,
    pub(crate) best_round: usize,
}

impl EarlyStopper {
    pub(crate) fn new(params: &GbdtParams) -> Self {
        Self {
            rounds: params.early_stopping_rounds,
            higher_is_better: params
                .metrics()
                .last()
                .is_some_and(|m| m.higher_is_better()),
            best: None,
            best_round: 0,
        }
    }

    pub(crate) fn should_stop(&mut self, report: &RoundReport) -> bool {
        let Some(patience) = self.rounds else {
            return false;
        };
        let Some((_, v)) = report.metrics.last() else {
            return false;
        };
        let better = match self.best {
            None => true,
            Some(b) if self.higher_is_better => *v > b,
            Some(b) => *v < b,
        };
        if better {
            self.best = Some(*v);
            self.best_round = report.round;
        }
        report.round - self.best_round >= patience
    }
}
