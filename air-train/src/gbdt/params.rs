//! Booster parameters with XGBoost's names and defaults.

use serde::{Deserialize, Serialize};

use super::model::Objective;
use crate::{TrainError, error::Result};

/// An evaluation metric (XGBoost's `eval_metric`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum EvalMetric {
    /// Root mean squared error.
    Rmse,
    /// Mean absolute error.
    Mae,
    /// Binary negative log-likelihood.
    Logloss,
    /// Binary error rate at threshold 0.5.
    Error,
    /// Area under the ROC curve (ties averaged).
    Auc,
    /// Multi-class negative log-likelihood.
    Mlogloss,
    /// Multi-class error rate.
    Merror,
    /// Mean pseudo-Huber error (`mphe`), with the objective's slope (1 unless the objective is
    /// `reg:pseudohubererror`).
    Mphe,
    /// Poisson negative log-likelihood (`poisson-nloglik`).
    #[serde(rename = "poisson-nloglik")]
    PoissonNloglik,
}

impl EvalMetric {
    /// XGBoost's name, used in reported keys (`valid-logloss`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Rmse => "rmse",
            Self::Mae => "mae",
            Self::Logloss => "logloss",
            Self::Error => "error",
            Self::Auc => "auc",
            Self::Mlogloss => "mlogloss",
            Self::Merror => "merror",
            Self::Mphe => "mphe",
            Self::PoissonNloglik => "poisson-nloglik",
        }
    }

    /// Whether larger is better (for early stopping).
    pub fn higher_is_better(self) -> bool {
        matches!(self, Self::Auc)
    }

    /// XGBoost's default metric for an objective.
    pub fn default_for(objective: Objective) -> Self {
        match objective {
            Objective::SquaredError | Objective::RegLogistic => Self::Rmse,
            Objective::BinaryLogistic => Self::Logloss,
            Objective::BinaryLogitRaw => Self::Auc,
            Objective::MultiSoftprob { .. } | Objective::MultiSoftmax { .. } => Self::Mlogloss,
            Objective::AbsoluteError => Self::Mae,
            Objective::PseudoHuber { .. } => Self::Mphe,
            Objective::Poisson { .. } => Self::PoissonNloglik,
        }
    }
}

/// How a tree grows (XGBoost's `grow_policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GrowPolicy {
    /// Level by level: every node of a depth is split before the next depth (XGBoost's
    /// default).
    #[default]
    Depthwise,
    /// The node with the largest loss reduction is split first, up to `max_leaves` leaves
    /// (LightGBM's leaf-wise growth); `max_depth = 0` leaves the depth unlimited.
    Lossguide,
}

/// Booster parameters (XGBoost's names; defaults are XGBoost's). The setters only set;
/// [`validate`](Self::validate) checks every value at once, and the trainer calls it before
/// any work starts, naming the first bad field.
///
/// ```
/// use air_train::gbdt::{EvalMetric, GbdtParams, Objective};
///
/// let p = GbdtParams::new(Objective::BinaryLogistic)
///     .with_max_depth(4)
///     .with_eta(0.1)
///     .with_eval_metrics([EvalMetric::Logloss, EvalMetric::Error]);
/// assert_eq!(p.max_bin, 256);
/// assert!(p.validate().is_ok());
/// let bad = GbdtParams::new(Objective::SquaredError).with_subsample(0.0);
/// assert!(bad.validate().unwrap_err().to_string().contains("subsample"));
/// // Unlimited depth only for leaf-wise growth.
/// let unlimited = GbdtParams::new(Objective::SquaredError).with_max_depth(0);
/// assert!(unlimited.validate().unwrap_err().to_string().contains("lossguide"));
/// assert!(unlimited.with_lossguide(31).validate().is_ok());
/// # Ok::<(), air_train::TrainError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GbdtParams {
    /// What to fit.
    pub objective: Objective,
    /// Learning rate (shrinkage of each tree's leaf values), in (0, 1].
    pub eta: f64,
    /// Maximum tree depth (≥ 1; with [`GrowPolicy::Lossguide`], 0 means unlimited).
    pub max_depth: usize,
    /// How trees grow.
    pub grow_policy: GrowPolicy,
    /// Maximum leaves per tree; 0: no limit.
    pub max_leaves: usize,
    /// Minimum hessian sum in a child.
    pub min_child_weight: f64,
    /// L2 regularisation of leaf weights.
    pub lambda: f64,
    /// L1 regularisation of leaf weights.
    pub alpha: f64,
    /// Minimum loss reduction to keep a split (`min_split_loss`).
    pub gamma: f64,
    /// The largest leaf weight before the learning rate (XGBoost's tree `max_delta_step`);
    /// 0: unlimited. `None`: XGBoost's default, which is 0, except for `count:poisson`,
    /// where XGBoost gives the trees the objective's `max_delta_step` (0.7).
    pub max_delta_step: Option<f64>,
    /// Fraction of rows sampled for each tree, in (0, 1].
    pub subsample: f64,
    /// Fraction of features sampled for each tree, in (0, 1].
    pub colsample_bytree: f64,
    /// The starting prediction (in prediction space); `None`: estimated from the labels, as
    /// XGBoost's `boost_from_average` does.
    pub base_score: Option<f64>,
    /// Seed of the row and feature sampling.
    pub seed: u64,
    /// Maximum number of histogram bins per feature (2..=65535).
    pub max_bin: usize,
    /// The features (by index) holding category codes (XGBoost's feature type `c`): integers
    /// from 0, NaN for missing. They split on sets of categories, not thresholds.
    pub categorical_features: Vec<usize>,
    /// A categorical feature with fewer categories than this splits one category against the
    /// rest (one-hot); otherwise categories are sorted by their gradient ratio and split
    /// into two groups (XGBoost's partition splits).
    pub max_cat_to_onehot: usize,
    /// The most categories a partition split considers (the largest-weight ones are kept).
    pub max_cat_threshold: usize,
    /// Metrics reported for every eval set; empty: the objective's default.
    pub eval_metric: Vec<EvalMetric>,
    /// Stop when the last eval set's last metric has not improved for this many rounds.
    pub early_stopping_rounds: Option<usize>,
}

impl Default for GbdtParams {
    fn default() -> Self {
        Self::new(Objective::SquaredError)
    }
}

fn range(field: &'static str, v: f64, ok: bool, expected: &str) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(TrainError::InvalidConfig {
            field,
            value: v.to_string(),
            expected: expected.to_owned(),
        })
    }
}

impl GbdtParams {
    /// XGBoost's defaults for `objective`.
    pub fn new(objective: Objective) -> Self {
        Self {
            objective,
            eta: 0.3,
            max_depth: 6,
            grow_policy: GrowPolicy::Depthwise,
            max_leaves: 0,
            min_child_weight: 1.0,
            lambda: 1.0,
            alpha: 0.0,
            gamma: 0.0,
            max_delta_step: None,
            subsample: 1.0,
            colsample_bytree: 1.0,
            base_score: None,
            seed: 0,
            max_bin: 256,
            categorical_features: Vec::new(),
            max_cat_to_onehot: 4,
            max_cat_threshold: 64,
            eval_metric: Vec::new(),
            early_stopping_rounds: None,
        }
    }

    /// Learning rate.
    pub fn with_eta(mut self, eta: f64) -> Self {
        self.eta = eta;
        self
    }

    /// Maximum depth.
    pub fn with_max_depth(mut self, depth: usize) -> Self {
        self.max_depth = depth;
        self
    }

    /// Leaf-wise growth up to `max_leaves` leaves (LightGBM's `num_leaves`); set
    /// [`max_depth`](Self::with_max_depth) to 0 for no depth limit, as LightGBM has none.
    pub fn with_lossguide(mut self, max_leaves: usize) -> Self {
        self.grow_policy = GrowPolicy::Lossguide;
        self.max_leaves = max_leaves;
        self
    }

    /// Maximum leaves per tree (0: no limit), with either policy.
    pub fn with_max_leaves(mut self, max_leaves: usize) -> Self {
        self.max_leaves = max_leaves;
        self
    }

    /// Marks features (by index) as categorical: their values are category codes.
    pub fn with_categorical_features(mut self, features: impl IntoIterator<Item = usize>) -> Self {
        self.categorical_features = features.into_iter().collect();
        self.categorical_features.sort_unstable();
        self.categorical_features.dedup();
        self
    }

    /// One-hot splits below this many categories (XGBoost's default 4).
    pub fn with_max_cat_to_onehot(mut self, categories: usize) -> Self {
        self.max_cat_to_onehot = categories;
        self
    }

    /// Clips leaf weights (before the learning rate) to `±step`; 0: unlimited.
    pub fn with_max_delta_step(mut self, step: f64) -> Self {
        self.max_delta_step = Some(step);
        self
    }

    /// The trees' weight limit in effect (see [`max_delta_step`](Self::max_delta_step)).
    pub fn tree_max_delta_step(&self) -> f64 {
        match (self.max_delta_step, self.objective) {
            (Some(step), _) => step,
            (None, Objective::Poisson { max_delta_step }) => max_delta_step,
            (None, _) => 0.0,
        }
    }

    /// Row sampling per tree.
    pub fn with_subsample(mut self, fraction: f64) -> Self {
        self.subsample = fraction;
        self
    }

    /// Feature sampling per tree.
    pub fn with_colsample_bytree(mut self, fraction: f64) -> Self {
        self.colsample_bytree = fraction;
        self
    }

    /// Bins per feature.
    pub fn with_max_bin(mut self, bins: usize) -> Self {
        self.max_bin = bins;
        self
    }

    /// Regularisation: `lambda` (L2), `alpha` (L1), `gamma` (min split loss),
    /// `min_child_weight`.
    pub fn with_regularization(
        mut self,
        lambda: f64,
        alpha: f64,
        gamma: f64,
        min_child_weight: f64,
    ) -> Self {
        (self.lambda, self.alpha, self.gamma, self.min_child_weight) =
            (lambda, alpha, gamma, min_child_weight);
        self
    }

    /// A fixed starting prediction.
    pub fn with_base_score(mut self, base_score: f64) -> Self {
        self.base_score = Some(base_score);
        self
    }

    /// Sampling seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Metrics to report.
    pub fn with_eval_metrics(mut self, metrics: impl IntoIterator<Item = EvalMetric>) -> Self {
        self.eval_metric = metrics.into_iter().collect();
        self
    }

    /// Early stopping on the last eval set's last metric.
    pub fn with_early_stopping_rounds(mut self, rounds: usize) -> Self {
        self.early_stopping_rounds = Some(rounds);
        self
    }

    /// The metrics to report (the objective's default when none are set).
    pub fn metrics(&self) -> Vec<EvalMetric> {
        if self.eval_metric.is_empty() {
            vec![EvalMetric::default_for(self.objective)]
        } else {
            self.eval_metric.clone()
        }
    }

    /// Checks every value.
    pub fn validate(&self) -> Result<()> {
        range(
            "eta",
            self.eta,
            self.eta > 0.0 && self.eta <= 1.0,
            "a learning rate in (0, 1]",
        )?;
        match self.grow_policy {
            GrowPolicy::Depthwise => range(
                "max_depth",
                self.max_depth as f64,
                (1..=64).contains(&self.max_depth),
                "a depth from 1 to 64 (0, unlimited, needs grow_policy lossguide)",
            )?,
            GrowPolicy::Lossguide => range(
                "max_depth",
                self.max_depth as f64,
                self.max_depth <= 64,
                "a depth up to 64, or 0 for unlimited",
            )?,
        }
        if self.max_leaves == 1 {
            return Err(TrainError::InvalidConfig {
                field: "max_leaves",
                value: "1".to_owned(),
                expected: "at least 2 leaves, or 0 for no limit".to_owned(),
            });
        }
        for (field, v) in [
            ("max_cat_to_onehot", self.max_cat_to_onehot),
            ("max_cat_threshold", self.max_cat_threshold),
        ] {
            range(field, v as f64, v >= 1, "at least 1")?;
        }
        if let Some(step) = self.max_delta_step {
            range(
                "max_delta_step",
                step,
                step.is_finite() && step >= 0.0,
                "a finite value ≥ 0 (0: unlimited)",
            )?;
        }
        for (field, v) in [
            ("min_child_weight", self.min_child_weight),
            ("lambda", self.lambda),
            ("alpha", self.alpha),
            ("gamma", self.gamma),
        ] {
            range(field, v, v.is_finite() && v >= 0.0, "a finite value ≥ 0")?;
        }
        for (field, v) in [
            ("subsample", self.subsample),
            ("colsample_bytree", self.colsample_bytree),
        ] {
            range(field, v, v > 0.0 && v <= 1.0, "a fraction in (0, 1]")?;
        }
        range(
            "max_bin",
            self.max_bin as f64,
            (2..=65_535).contains(&self.max_bin),
            "from 2 to 65535 bins",
        )?;
        if self.early_stopping_rounds == Some(0) {
            return Err(TrainError::InvalidConfig {
                field: "early_stopping_rounds",
                value: "0".to_owned(),
                expected: "at least 1 round, or none".to_owned(),
            });
        }
        if let Some(b) = self.base_score {
            range(
                "base_score",
                b,
                b.is_finite(),
                "a finite starting prediction",
            )?;
        }
        match self.objective {
            Objective::MultiSoftprob { num_class } | Objective::MultiSoftmax { num_class }
                if num_class < 2 =>
            {
                return Err(TrainError::InvalidConfig {
                    field: "num_class",
                    value: num_class.to_string(),
                    expected: format!("at least 2 classes for {}", self.objective.xgboost_name()),
                });
            }
            Objective::PseudoHuber { huber_slope } => range(
                "huber_slope",
                huber_slope,
                huber_slope.is_finite() && huber_slope > 0.0,
                "a slope > 0",
            )?,
            Objective::Poisson { max_delta_step } => range(
                "max_delta_step",
                max_delta_step,
                max_delta_step.is_finite() && max_delta_step >= 0.0,
                "a finite value ≥ 0 (XGBoost's default for count:poisson is 0.7)",
            )?,
            _ => {}
        }
        for m in &self.eval_metric {
            let o = self.objective;
            let fits = match m {
                EvalMetric::Mlogloss | EvalMetric::Merror => o.is_multiclass(),
                // binary:logitraw predicts raw margins: only the rank-based metric means the
                // same on them.
                EvalMetric::Auc => matches!(
                    o,
                    Objective::BinaryLogistic | Objective::RegLogistic | Objective::BinaryLogitRaw
                ),
                EvalMetric::Logloss | EvalMetric::Error => {
                    matches!(o, Objective::BinaryLogistic | Objective::RegLogistic)
                }
                EvalMetric::PoissonNloglik => matches!(o, Objective::Poisson { .. }),
                EvalMetric::Rmse | EvalMetric::Mae | EvalMetric::Mphe => {
                    !o.is_multiclass() && o != Objective::BinaryLogitRaw
                }
            };
            if !fits {
                return Err(TrainError::InvalidConfig {
                    field: "eval_metric",
                    value: m.name().to_owned(),
                    expected: format!("a metric for {}", self.objective.xgboost_name()),
                });
            }
        }
        Ok(())
    }
}
