//! The tree-ensemble model: XGBoost's structure (binary trees over `f32` thresholds with a
//! default direction for missing values, one output group per class), our versioned JSON form,
//! and prediction.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::forest::Forest;
use crate::{TrainError, error::Result};

/// What the ensemble's raw sum means and how it becomes a prediction (XGBoost's `objective`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Objective {
    /// `reg:squarederror`: the sum is the prediction.
    SquaredError,
    /// `reg:logistic`: a probability for a regression target in [0, 1] (sigmoid of the sum).
    RegLogistic,
    /// `binary:logistic`: the probability of class 1 (sigmoid of the sum).
    BinaryLogistic,
    /// `binary:logitraw`: trained as `binary:logistic`, predicts the raw sum (the log-odds).
    BinaryLogitRaw,
    /// `multi:softprob`: one sum per class, softmax into class probabilities.
    MultiSoftprob {
        /// The number of classes.
        num_class: usize,
    },
    /// `multi:softmax`: trained as `multi:softprob`, predicts the most likely class's index.
    MultiSoftmax {
        /// The number of classes.
        num_class: usize,
    },
    /// `reg:absoluteerror`: L1 loss; trees are grown on its sign gradients and each leaf's value
    /// is then the median residual of its rows (XGBoost's adaptive leaves); the base score is
    /// the labels' median.
    AbsoluteError,
    /// `reg:pseudohubererror`: the pseudo-Huber loss `δ²(√(1 + (z/δ)²) − 1)`.
    PseudoHuber {
        /// `huber_slope` (δ, XGBoost's default 1).
        huber_slope: f64,
    },
    /// `count:poisson`: Poisson regression for counts; the sum is the log of the mean.
    Poisson {
        /// XGBoost's `max_delta_step` of the Poisson objective (default 0.7): the hessian is
        /// `exp(margin + max_delta_step)`, which keeps early steps small.
        max_delta_step: f64,
    },
}

impl Objective {
    /// `count:poisson` with XGBoost's defaults.
    pub const POISSON: Self = Self::Poisson {
        max_delta_step: 0.7,
    };

    /// `reg:pseudohubererror` with XGBoost's default slope.
    pub const PSEUDO_HUBER: Self = Self::PseudoHuber { huber_slope: 1.0 };

    /// XGBoost's name (`"binary:logistic"`, ...).
    pub fn xgboost_name(self) -> &'static str {
        match self {
            Self::SquaredError => "reg:squarederror",
            Self::RegLogistic => "reg:logistic",
            Self::BinaryLogistic => "binary:logistic",
            Self::BinaryLogitRaw => "binary:logitraw",
            Self::MultiSoftprob { .. } => "multi:softprob",
            Self::MultiSoftmax { .. } => "multi:softmax",
            Self::AbsoluteError => "reg:absoluteerror",
            Self::PseudoHuber { .. } => "reg:pseudohubererror",
            Self::Poisson { .. } => "count:poisson",
        }
    }

    /// Trees per round (and margins per row): the number of classes for multi-class, else 1.
    pub fn num_groups(self) -> usize {
        match self {
            Self::MultiSoftprob { num_class } | Self::MultiSoftmax { num_class } => num_class,
            _ => 1,
        }
    }

    /// Predicted values per row: 1 for `multi:softmax` (the class), else
    /// [`num_groups`](Self::num_groups).
    pub fn output_width(self) -> usize {
        match self {
            Self::MultiSoftmax { .. } => 1,
            other => other.num_groups(),
        }
    }

    /// Whether this is a multi-class objective.
    pub(crate) fn is_multiclass(self) -> bool {
        matches!(self, Self::MultiSoftprob { .. } | Self::MultiSoftmax { .. })
    }

    /// Whether the labels are probabilities or 0/1 classes.
    pub(crate) fn is_logistic(self) -> bool {
        matches!(
            self,
            Self::RegLogistic | Self::BinaryLogistic | Self::BinaryLogitRaw
        )
    }

    /// The margin of a base score given in prediction space (`logit` for the logistic ones,
    /// `log` for Poisson; `binary:logitraw` predicts margins, so its base score is one, and
    /// XGBoost estimates it as the labels' mean).
    pub fn prob_to_margin(self, base_score: f32) -> f32 {
        match self {
            Self::RegLogistic | Self::BinaryLogistic => {
                let p = base_score.clamp(1e-16, 1.0 - 1e-7);
                -(1.0 / p - 1.0).ln()
            }
            Self::Poisson { .. } => base_score.ln(),
            _ => base_score,
        }
    }

    /// The gradient and hessian of one row's loss at margin `m` for label `y` (single-output
    /// objectives).
    #[inline]
    #[allow(
        clippy::suboptimal_flops,
        reason = "XGBoost rounds every product and sum; a fused multiply-add would not match it"
    )]
    pub(crate) fn gradient(self, m: f32, y: f32) -> (f32, f32) {
        match self {
            Self::SquaredError => (m - y, 1.0),
            Self::RegLogistic | Self::BinaryLogistic | Self::BinaryLogitRaw => {
                let p = 1.0 / (1.0 + (-m).exp());
                (p - y, (p * (1.0 - p)).max(1e-16))
            }
            Self::AbsoluteError => {
                let z = m - y;
                (f32::from(i8::from(z > 0.0) - i8::from(z < 0.0)), 1.0)
            }
            Self::PseudoHuber { huber_slope } => {
                let slope = huber_slope as f32;
                let z = m - y;
                let scale_sqrt = (1.0 + (z * z) / (slope * slope)).sqrt();
                let scale = slope * slope + z * z;
                (z / scale_sqrt, slope * slope / (scale * scale_sqrt))
            }
            Self::Poisson { max_delta_step } => ((m.exp() - y), (m + max_delta_step as f32).exp()),
            Self::MultiSoftprob { .. } | Self::MultiSoftmax { .. } => {
                unreachable!("multi-class gradients take every group")
            }
        }
    }

    /// Turns one row's margins into what metrics are computed on, in place: probabilities for
    /// the logistic and multi-class objectives (`multi:softmax` included), the mean for
    /// Poisson, the raw margin for `binary:logitraw` and the other regressions.
    pub(crate) fn transform_row(self, margins: &mut [f32]) {
        match self {
            Self::RegLogistic | Self::BinaryLogistic => {
                for m in margins {
                    *m = 1.0 / (1.0 + (-*m).exp());
                }
            }
            Self::Poisson { .. } => {
                for m in margins {
                    *m = m.exp();
                }
            }
            Self::MultiSoftprob { .. } | Self::MultiSoftmax { .. } => {
                let max = margins.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let mut sum = 0.0f32;
                for m in margins.iter_mut() {
                    *m = (*m - max).exp();
                    sum += *m;
                }
                for m in margins {
                    *m /= sum;
                }
            }
            Self::SquaredError
            | Self::BinaryLogitRaw
            | Self::AbsoluteError
            | Self::PseudoHuber { .. } => {}
        }
    }
}

/// One regression tree in XGBoost's array layout: node `i` is a leaf when `left[i] < 0`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    /// Left child of each node (-1 for leaves).
    pub left: Vec<i32>,
    /// Right child of each node (-1 for leaves).
    pub right: Vec<i32>,
    /// The feature a node splits on.
    pub feature: Vec<u32>,
    /// Rows with `value < threshold` go left.
    pub threshold: Vec<f32>,
    /// Where a missing value (NaN) goes.
    pub default_left: Vec<bool>,
    /// The leaf value (the output added to the margin) of leaves.
    pub leaf_value: Vec<f32>,
    /// The loss reduction of each split (0 for leaves): feature importance by gain.
    pub gain: Vec<f32>,
    /// The hessian sum of the rows reaching each node.
    pub cover: Vec<f32>,
    /// Categorical splits: for such a node, the sorted category codes that go right (a present
    /// value outside the set, an unseen or invalid code included, goes left, as in XGBoost);
    /// `None` for numeric splits and leaves. Empty when the tree has no categorical split.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<Option<Vec<u32>>>,
}

/// Whether category code `v` is in the sorted set (a negative, fractional or huge value never
/// is).
#[inline]
pub(crate) fn in_category_set(set: &[u32], v: f32) -> bool {
    v >= 0.0
        && v.fract() == 0.0
        && f64::from(v) <= f64::from(u32::MAX)
        && set.binary_search(&(v as u32)).is_ok()
}

impl Tree {
    /// A tree that is one leaf (value 0).
    pub(crate) fn single_leaf() -> Self {
        let mut t = Self {
            left: Vec::new(),
            right: Vec::new(),
            feature: Vec::new(),
            threshold: Vec::new(),
            default_left: Vec::new(),
            leaf_value: Vec::new(),
            gain: Vec::new(),
            cover: Vec::new(),
            categories: Vec::new(),
        };
        t.add_leaf();
        t
    }

    /// Appends a leaf (value 0) and returns its index.
    pub(crate) fn add_leaf(&mut self) -> usize {
        self.left.push(-1);
        self.right.push(-1);
        self.feature.push(0);
        self.threshold.push(0.0);
        self.default_left.push(false);
        self.leaf_value.push(0.0);
        self.gain.push(0.0);
        self.cover.push(0.0);
        if !self.categories.is_empty() {
            self.categories.push(None);
        }
        self.left.len() - 1
    }

    /// The category set of node `n` when it is a categorical split.
    #[inline]
    pub fn category_set(&self, n: usize) -> Option<&[u32]> {
        self.categories.get(n).and_then(|c| c.as_deref())
    }

    /// Whether `row` goes to the left child of split node `n`.
    #[inline]
    pub fn goes_left(&self, n: usize, row: &[f32]) -> bool {
        let v = row[self.feature[n] as usize];
        if v.is_nan() {
            self.default_left[n]
        } else if let Some(set) = self.category_set(n) {
            !in_category_set(set, v)
        } else {
            v < self.threshold[n]
        }
    }

    /// The index of the leaf `row` falls into.
    #[inline]
    pub fn leaf(&self, row: &[f32]) -> usize {
        let mut node = 0usize;
        while self.left[node] >= 0 {
            node = if self.goes_left(node, row) {
                self.left[node]
            } else {
                self.right[node]
            } as usize;
        }
        node
    }

    /// The number of nodes.
    pub fn len(&self) -> usize {
        self.left.len()
    }

    /// Whether the tree has no nodes.
    pub fn is_empty(&self) -> bool {
        self.left.is_empty()
    }

    fn validate(&self, index: usize, num_feature: usize) -> Result<()> {
        let n = self.left.len();
        let bad = |reason: String| TrainError::model(format!("tree {index}"), reason);
        if n == 0 {
            return Err(bad("has no nodes".to_owned()));
        }
        for (name, len) in [
            ("right", self.right.len()),
            ("feature", self.feature.len()),
            ("threshold", self.threshold.len()),
            ("default_left", self.default_left.len()),
            ("leaf_value", self.leaf_value.len()),
            (
                "categories",
                if self.categories.is_empty() {
                    n
                } else {
                    self.categories.len()
                },
            ),
        ] {
            if len != n {
                return Err(bad(format!("{name} has {len} entries for {n} nodes")));
            }
        }
        for i in 0..n {
            let (l, r) = (self.left[i], self.right[i]);
            if (l < 0) != (r < 0) {
                return Err(bad(format!("node {i} has one child")));
            }
            if l >= 0 {
                // Children come after their parent, so traversal always ends at a leaf.
                if l as usize >= n || r as usize >= n || l as usize <= i || r as usize <= i {
                    return Err(bad(format!(
                        "node {i} has children {l}, {r} outside {}..{n}",
                        i + 1
                    )));
                }
                if self.feature[i] as usize >= num_feature {
                    return Err(bad(format!(
                        "node {i} splits on feature {} of {num_feature}",
                        self.feature[i]
                    )));
                }
                if let Some(set) = self.category_set(i)
                    && !set.is_sorted_by(|a, b| a < b)
                {
                    return Err(bad(format!(
                        "node {i}'s category set is not sorted and distinct"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// What [`GbdtModel::feature_importance`] measures (XGBoost's `importance_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportanceType {
    /// How many splits use the feature.
    Weight,
    /// The average loss reduction of its splits.
    Gain,
    /// The total loss reduction of its splits.
    TotalGain,
    /// The average hessian sum of the rows its splits see.
    Cover,
    /// The total hessian sum.
    TotalCover,
}

/// The saved format's version; loaders refuse newer ones.
pub const GBDT_FORMAT_VERSION: u32 = 1;

/// A trained tree ensemble (XGBoost's `gbtree` booster).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GbdtModel {
    /// Always [`GBDT_FORMAT_VERSION`] when written by this build.
    pub format_version: u32,
    /// How margins become predictions.
    pub objective: Objective,
    /// The number of input features.
    pub num_feature: usize,
    /// Their names (empty when unknown), in input order.
    pub feature_names: Vec<String>,
    /// The starting margin of each output group.
    pub base_margin: Vec<f32>,
    /// The trees, in boosting order.
    pub trees: Vec<Tree>,
    /// The output group (class) each tree adds to.
    pub tree_group: Vec<usize>,
}

impl GbdtModel {
    /// Reads the model file at `path` with `parse`, naming the file in read and parse errors.
    pub(crate) fn read_file(
        path: &std::path::Path,
        parse: impl FnOnce(&[u8]) -> Result<Self>,
    ) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| TrainError::Io {
            path: path.display().to_string(),
            source,
        })?;
        parse(&bytes).map_err(|e| match e {
            TrainError::Model { context, source } => TrainError::Model {
                context: format!("{context} from {}", path.display()),
                source,
            },
            other => other,
        })
    }

    /// Checks the structure (after loading a file).
    pub fn validate(&self) -> Result<()> {
        if self.format_version > GBDT_FORMAT_VERSION {
            return Err(TrainError::model(
                "reading a GBDT model",
                format!(
                    "format version {} is newer than this build reads ({GBDT_FORMAT_VERSION})",
                    self.format_version
                ),
            ));
        }
        let groups = self.objective.num_groups();
        if self.base_margin.len() != groups {
            return Err(TrainError::model(
                "reading a GBDT model",
                format!(
                    "{} base margins for {groups} output group(s)",
                    self.base_margin.len()
                ),
            ));
        }
        if self.tree_group.len() != self.trees.len() {
            return Err(TrainError::model(
                "reading a GBDT model",
                format!(
                    "{} tree groups for {} trees",
                    self.tree_group.len(),
                    self.trees.len()
                ),
            ));
        }
        if let Some(g) = self.tree_group.iter().find(|g| **g >= groups) {
            return Err(TrainError::model(
                "reading a GBDT model",
                format!("a tree adds to group {g} of {groups}"),
            ));
        }
        for (i, t) in self.trees.iter().enumerate() {
            t.validate(i, self.num_feature)?;
        }
        Ok(())
    }

    /// Checks that `data` holds `rows` rows of the model's width.
    pub(crate) fn check_input(&self, data: &[f32], rows: usize) -> Result<()> {
        let d = self.num_feature;
        if data.len() != rows * d {
            return Err(TrainError::model(
                "predicting",
                if rows == 0 {
                    format!("{} values for 0 rows", data.len())
                } else {
                    format!(
                        "{} values for {rows} rows ({:.1} features per row); the model expects \
                         {d} features",
                        data.len(),
                        data.len() as f64 / rows as f64
                    )
                },
            ));
        }
        Ok(())
    }

    /// Raw margins (`rows × groups`, row-major) of a row-major `rows × num_feature` matrix.
    /// (A [`GbdtPredictor`](super::GbdtPredictor) keeps the trees flattened between calls;
    /// this flattens them on every call.)
    pub fn predict_margin(&self, data: &[f32], rows: usize) -> Result<Vec<f32>> {
        self.check_input(data, rows)?;
        Ok(Forest::new(self).predict_margin(data, rows))
    }

    /// Importance of every feature used by a split, in feature order, named by
    /// `feature_names` (or `f{index}`), as XGBoost's `get_score` reports it.
    pub fn feature_importance(&self, kind: ImportanceType) -> Vec<(String, f64)> {
        let mut count = vec![0usize; self.num_feature];
        let mut gain = vec![0.0f64; self.num_feature];
        let mut cover = vec![0.0f64; self.num_feature];
        for tree in &self.trees {
            // Walk from the root: nodes cut off by pruning are not part of the model.
            let mut stack = vec![0usize];
            while let Some(n) = stack.pop() {
                if tree.left[n] < 0 {
                    continue;
                }
                let f = tree.feature[n] as usize;
                count[f] += 1;
                gain[f] += f64::from(tree.gain[n]);
                cover[f] += f64::from(tree.cover[n]);
                stack.push(tree.left[n] as usize);
                stack.push(tree.right[n] as usize);
            }
        }
        (0..self.num_feature)
            .filter(|f| count[*f] > 0)
            .map(|f| {
                let name = self
                    .feature_names
                    .get(f)
                    .cloned()
                    .unwrap_or_else(|| format!("f{f}"));
                let n = count[f] as f64;
                let value = match kind {
                    ImportanceType::Weight => n,
                    ImportanceType::Gain => gain[f] / n,
                    ImportanceType::TotalGain => gain[f],
                    ImportanceType::Cover => cover[f] / n,
                    ImportanceType::TotalCover => cover[f],
                };
                (name, value)
            })
            .collect()
    }

    /// Keeps only the first `rounds` boosting rounds.
    pub fn truncate_rounds(&mut self, rounds: usize) {
        let keep = rounds * self.objective.num_groups();
        self.trees.truncate(keep);
        self.tree_group.truncate(keep);
    }

    /// Boosting rounds in the model.
    pub fn num_rounds(&self) -> usize {
        self.trees.len() / self.objective.num_groups()
    }

    /// Predictions (`rows × output_width`): probabilities for the logistic and softprob
    /// objectives, class indices for `multi:softmax`, means for Poisson.
    pub fn predict(&self, data: &[f32], rows: usize) -> Result<Vec<f32>> {
        Ok(self.transform(self.predict_margin(data, rows)?))
    }

    /// Margins into predictions (`rows × output_width`).
    pub(crate) fn transform(&self, mut margins: Vec<f32>) -> Vec<f32> {
        const CHUNK: usize = 4096;
        let groups = self.objective.num_groups();
        let objective = self.objective;
        if let Objective::MultiSoftmax { .. } = objective {
            // The index of the largest margin (the first on ties, as XGBoost's argmax).
            return margins
                .par_chunks(groups * CHUNK)
                .flat_map_iter(|chunk| {
                    chunk.chunks_exact(groups).map(|row| {
                        row.iter()
                            .enumerate()
                            .fold((0usize, f32::NEG_INFINITY), |(bi, bv), (i, v)| {
                                if *v > bv { (i, *v) } else { (bi, bv) }
                            })
                            .0 as f32
                    })
                })
                .collect();
        }
        let run = |m: &mut [f32]| {
            for row in m.chunks_exact_mut(groups) {
                objective.transform_row(row);
            }
        };
        if margins.len() <= CHUNK * groups {
            run(&mut margins);
        } else {
            margins.par_chunks_mut(CHUNK * groups).for_each(run);
        }
        margins
    }
}
