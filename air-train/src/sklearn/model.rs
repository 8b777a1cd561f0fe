//! Fitting, the fitted model's serde form, prediction and scores.
//!
//! smartcore does the fitting. Where its objective differs from scikit-learn's, the problem is
//! rewritten so the optimum is scikit-learn's: ridge, lasso and elastic net are fitted on
//! centred data with the intercept recovered afterwards (smartcore's own intercept handling
//! penalises or ignores it), lasso's α is doubled (smartcore minimises ‖r‖² + λ‖w‖₁ with
//! λ = αn, scikit-learn ‖r‖²/2n + α‖w‖₁), and elastic net is solved as a lasso on the
//! augmented system [X; √λ₂ I]. Linear models, SVMs and k-means keep their coefficients,
//! support vectors or centroids in this crate's own types (smartcore's SVMs borrow their
//! parameters and cannot predict once deserialised); trees, forests, neighbours and naive Bayes
//! keep smartcore's serde form.

use air_data::Matrix;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use smartcore::{
    ensemble::{
        random_forest_classifier::{RandomForestClassifier, RandomForestClassifierParameters},
        random_forest_regressor::{RandomForestRegressor, RandomForestRegressorParameters},
    },
    linalg::basic::{arrays::Array, matrix::DenseMatrix},
    linear::{
        lasso::{Lasso, LassoParameters},
        linear_regression::{
            LinearRegression, LinearRegressionParameters, LinearRegressionSolverName,
        },
        logistic_regression::{LogisticRegression, LogisticRegressionParameters},
        ridge_regression::{RidgeRegression, RidgeRegressionParameters, RidgeRegressionSolverName},
    },
    svm::{
        Kernels,
        svc::{SVC, SVCParameters},
        svr::{SVR, SVRParameters},
    },
    tree::{
        decision_tree_classifier::{
            DecisionTreeClassifier, DecisionTreeClassifierParameters, SplitCriterion,
        },
        decision_tree_regressor::{DecisionTreeRegressor, DecisionTreeRegressorParameters},
    },
};

use super::{
    native::{DiscreteNb, GaussianNb, Neighbours, kmeans, nearest_centroid, sq_dist},
    params::{
        Criterion, DecisionTreeParams, DiscreteNbParams, ElasticNetParams, Estimator,
        EstimatorKind, Gamma, GaussianNbParams, KMeansParams, KNeighborsParams, Kernel, KnnWeights,
        LassoParams, LinearRegressionParams, LinearSolver, LogisticRegressionParams,
        RandomForestParams, RidgeParams, RidgeSolver, Scoring, SvcParams, SvrParams,
    },
};
use crate::{TrainError, error::Result};

/// The version of [`SklearnModel`]'s serde form; newer versions are refused when read.
pub const SKLEARN_FORMAT_VERSION: u32 = 1;
const FORMAT_TAG: &str = "air-sklearn";

type Dm = DenseMatrix<f64>;

/// Rows handed to one prediction task: enough to amortise copying them into a smartcore matrix.
const PREDICT_CHUNK: usize = 2048;

/// A fitted estimator: what it is, the features it was fitted on, the class labels of a
/// classifier, and the fitted state.
#[derive(Debug, Serialize, Deserialize)]
pub struct SklearnModel {
    format: String,
    format_version: u32,
    /// The estimator and the parameters it was fitted with.
    pub estimator: Estimator,
    /// The feature columns, in the order the model reads them.
    pub feature_names: Vec<String>,
    /// A classifier's labels, sorted (predictions are these values); empty otherwise.
    pub classes: Vec<i64>,
    fitted: Fitted,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Fitted {
    Linear {
        coef: Vec<f64>,
        intercept: f64,
    },
    /// One row per class (one row in total for two classes: the greater class's logit).
    Logistic {
        coef: Vec<Vec<f64>>,
        intercept: Vec<f64>,
    },
    TreeClassifier {
        model: DecisionTreeClassifier<f64, u32, Dm, Vec<u32>>,
    },
    TreeRegressor {
        model: DecisionTreeRegressor<f64, f64, Dm, Vec<f64>>,
    },
    ForestClassifier {
        model: RandomForestClassifier<f64, u32, Dm, Vec<u32>>,
    },
    ForestRegressor {
        model: RandomForestRegressor<f64, f64, Dm, Vec<f64>>,
    },
    KnnClassifier {
        model: Neighbours,
    },
    KnnRegressor {
        model: Neighbours,
    },
    GaussianNb {
        model: GaussianNb,
    },
    DiscreteNb {
        model: DiscreteNb,
    },
    /// One machine per pair of classes (one for two classes).
    Svc {
        kernel: ResolvedKernel,
        machines: Vec<SupportVectors>,
    },
    Svr {
        kernel: ResolvedKernel,
        machine: SupportVectors,
    },
    KMeans {
        centroids: Vec<Vec<f64>>,
    },
}

/// A kernel with its γ computed from the training matrix.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ResolvedKernel {
    Linear,
    Rbf { gamma: f64 },
    Poly { degree: f64, gamma: f64, coef0: f64 },
    Sigmoid { gamma: f64, coef0: f64 },
}

impl ResolvedKernel {
    fn apply(self, a: &[f64], b: &[f64]) -> f64 {
        let dot = || dot(a, b);
        match self {
            Self::Linear => dot(),
            Self::Rbf { gamma } => (-gamma * sq_dist(a, b)).exp(),
            Self::Poly {
                degree,
                gamma,
                coef0,
            } => gamma.mul_add(dot(), coef0).powf(degree),
            Self::Sigmoid { gamma, coef0 } => gamma.mul_add(dot(), coef0).tanh(),
        }
    }

    fn smartcore(self) -> Kernels {
        match self {
            Self::Linear => Kernels::linear(),
            Self::Rbf { gamma } => Kernels::rbf().with_gamma(gamma),
            Self::Poly {
                degree,
                gamma,
                coef0,
            } => Kernels::polynomial()
                .with_degree(degree)
                .with_gamma(gamma)
                .with_coef0(coef0),
            Self::Sigmoid { gamma, coef0 } => {
                Kernels::sigmoid().with_gamma(gamma).with_coef0(coef0)
            }
        }
    }
}

/// f(x) = b + Σ wᵢ K(x, svᵢ); for a classifier, `negative`/`positive` are class indices and
/// f(x) > 0 means `positive` (smartcore's convention).
#[derive(Debug, Serialize, Deserialize)]
struct SupportVectors {
    vectors: Vec<Vec<f64>>,
    weights: Vec<f64>,
    bias: f64,
    negative: u32,
    positive: u32,
}

impl SupportVectors {
    fn decision(&self, kernel: ResolvedKernel, x: &[f64]) -> f64 {
        self.vectors
            .iter()
            .zip(&self.weights)
            .map(|(v, w)| w * kernel.apply(x, v))
            .sum::<f64>()
            + self.bias
    }
}

/// What a model predicts for a batch of rows.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Predictions {
    /// Class labels (classifiers) or cluster indices (k-means).
    Labels(Vec<i64>),
    /// Real values (regressors).
    Values(Vec<f64>),
}

impl Predictions {
    /// The predictions as numbers.
    pub fn to_f64(&self) -> Vec<f64> {
        match self {
            #[allow(clippy::cast_precision_loss)]
            Self::Labels(v) => v.iter().map(|l| *l as f64).collect(),
            Self::Values(v) => v.clone(),
        }
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        match self {
            Self::Labels(v) => v.len(),
            Self::Values(v) => v.len(),
        }
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn failed(estimator: &Estimator, doing: &str) -> impl Fn(smartcore::error::Failed) -> TrainError {
    let context = format!("{doing} {}", estimator.name());
    move |e| TrainError::model(context.clone(), e)
}

fn dense(x: &[f64], rows: usize, cols: usize) -> Result<Dm> {
    DenseMatrix::new(rows, cols, x.to_vec(), false)
        .map_err(|e| TrainError::model("building a feature matrix", e))
}

fn matrix_values(m: &Dm) -> Vec<f64> {
    let (r, c) = m.shape();
    (0..r)
        .flat_map(|i| (0..c).map(move |j| (i, j)))
        .map(|ij| *m.get(ij))
        .collect()
}

/// A private field of a smartcore model, read through its serde form (its accessors do not
/// expose support vectors or centroids).
fn field<T: serde::de::DeserializeOwned>(model: &impl Serialize, name: &str) -> Result<T> {
    let value = serde_json::to_value(model)
        .map_err(|e| TrainError::model(format!("reading the fitted {name}"), e))?;
    serde_json::from_value(value.get(name).cloned().unwrap_or_default())
        .map_err(|e| TrainError::model(format!("reading the fitted {name}"), e))
}

fn column_means(x: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    let mut means = vec![0.0; cols];
    for row in x.chunks_exact(cols.max(1)).take(rows) {
        for (m, v) in means.iter_mut().zip(row) {
            *m += v;
        }
    }
    means.iter_mut().for_each(|m| *m /= rows.max(1) as f64);
    means
}

/// Centres `x` and `y` when fitting an intercept; the intercept is then ȳ − x̄·w.
struct Centred {
    x: Vec<f64>,
    y: Vec<f64>,
    x_mean: Vec<f64>,
    y_mean: f64,
}

fn centre(x: &[f64], rows: usize, cols: usize, y: &[f64], fit_intercept: bool) -> Centred {
    if !fit_intercept {
        return Centred {
            x: x.to_vec(),
            y: y.to_vec(),
            x_mean: vec![0.0; cols],
            y_mean: 0.0,
        };
    }
    let x_mean = column_means(x, rows, cols);
    let y_mean = y.iter().sum::<f64>() / rows.max(1) as f64;
    let mut xc = x.to_vec();
    for row in xc.chunks_exact_mut(cols.max(1)) {
        for (v, m) in row.iter_mut().zip(&x_mean) {
            *v -= m;
        }
    }
    Centred {
        x: xc,
        y: y.iter().map(|v| v - y_mean).collect(),
        x_mean,
        y_mean,
    }
}

fn linear_from(coef: Vec<f64>, c: &Centred, intercept_extra: f64) -> Fitted {
    let intercept =
        c.y_mean - c.x_mean.iter().zip(&coef).map(|(m, w)| m * w).sum::<f64>() + intercept_extra;
    Fitted::Linear { coef, intercept }
}

/// smartcore counts the root as level 1 (`max_depth = 1` is a single leaf); scikit-learn counts
/// splits (`max_depth = 1` is a stump).
fn smartcore_depth(d: u16) -> u16 {
    d.saturating_add(1)
}

fn criterion(c: Criterion) -> SplitCriterion {
    match c {
        Criterion::Gini => SplitCriterion::Gini,
        Criterion::Entropy => SplitCriterion::Entropy,
        Criterion::ClassificationError => SplitCriterion::ClassificationError,
    }
}

fn resolve_kernel(kernel: Kernel, x: &[f64], cols: usize) -> ResolvedKernel {
    let gamma = |g: Gamma| {
        let n = x.len().max(1) as f64;
        let mean = x.iter().sum::<f64>() / n;
        let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
        g.resolve(cols, var)
    };
    match kernel {
        Kernel::Linear => ResolvedKernel::Linear,
        Kernel::Rbf { gamma: g } => ResolvedKernel::Rbf { gamma: gamma(g) },
        Kernel::Poly {
            degree,
            gamma: g,
            coef0,
        } => ResolvedKernel::Poly {
            degree: f64::from(degree),
            gamma: gamma(g),
            coef0,
        },
        Kernel::Sigmoid { gamma: g, coef0 } => ResolvedKernel::Sigmoid {
            gamma: gamma(g),
            coef0,
        },
    }
}

/// Class labels must be integers (a classifier predicts the label column's own values).
fn encode_classes(y: &[f64], label: &str) -> Result<(Vec<i64>, Vec<u32>)> {
    if let Some(bad) = y.iter().find(|v| !v.is_finite() || v.fract() != 0.0) {
        return Err(TrainError::InvalidData {
            what: "label_column",
            found: format!("{label:?} holds {bad}"),
            expected: "integer class labels without nulls for a classifier (encode string \
                       labels with LabelEncoder first)"
                .to_owned(),
        });
    }
    #[allow(clippy::cast_possible_truncation)]
    let mut classes: Vec<i64> = y.iter().map(|v| *v as i64).collect();
    classes.sort_unstable();
    classes.dedup();
    #[allow(clippy::cast_possible_truncation)]
    let codes = y
        .iter()
        .map(|v| classes.binary_search(&(*v as i64)).unwrap_or(0) as u32)
        .collect();
    Ok((classes, codes))
}

impl SklearnModel {
    /// Fits `estimator` on row-major `x` (one row per sample) and labels `y` (`None` for
    /// k-means). `label` names the label column in errors.
    pub fn fit(
        estimator: &Estimator,
        x: &Matrix<f64>,
        y: Option<&[f64]>,
        feature_names: Vec<String>,
        label: &str,
    ) -> Result<Self> {
        estimator.validate()?;
        let (rows, cols) = (x.rows, x.cols);
        if rows == 0 || cols == 0 {
            return Err(TrainError::InvalidData {
                what: "datasets",
                found: format!("{rows} rows × {cols} feature columns"),
                expected: format!(
                    "at least one row and one feature to fit {}",
                    estimator.name()
                ),
            });
        }
        check_finite(x, &feature_names)?;
        let kind = estimator.kind();
        let y = match (kind, y) {
            (EstimatorKind::Clusterer, _) => Vec::new(),
            (_, Some(y)) => {
                if y.len() != rows {
                    return Err(TrainError::InvalidData {
                        what: "label_column",
                        found: format!("{} labels for {rows} rows", y.len()),
                        expected: "one label per row".to_owned(),
                    });
                }
                y.to_vec()
            }
            (_, None) => {
                return Err(TrainError::InvalidConfig {
                    field: "label_column",
                    value: "none".to_owned(),
                    expected: format!("a label column: {} is supervised", estimator.name()),
                });
            }
        };
        let (classes, codes) = if kind == EstimatorKind::Classifier {
            let (classes, codes) = encode_classes(&y, label)?;
            if classes.len() < 2 {
                return Err(TrainError::InvalidData {
                    what: "label_column",
                    found: format!("{label:?} has the single class {classes:?}"),
                    expected: "at least two classes to fit a classifier".to_owned(),
                });
            }
            (classes, codes)
        } else {
            if let Some(bad) = y.iter().find(|v| !v.is_finite()) {
                return Err(TrainError::InvalidData {
                    what: "label_column",
                    found: format!("{label:?} holds {bad}"),
                    expected: "finite labels without nulls".to_owned(),
                });
            }
            (Vec::new(), Vec::new())
        };
        let inputs = Inputs {
            estimator,
            x,
            rows,
            cols,
            y,
            classes,
            codes,
            feature_names: &feature_names,
        };
        let fitted = match estimator {
            Estimator::LinearRegression(p) => inputs.fit_linear_regression(p)?,
            Estimator::Ridge(p) => inputs.fit_ridge(p)?,
            Estimator::Lasso(p) => inputs.fit_lasso(p)?,
            Estimator::ElasticNet(p) => inputs.fit_elastic_net(p)?,
            Estimator::LogisticRegression(p) => inputs.fit_logistic_regression(p)?,
            Estimator::DecisionTreeClassifier(p) => inputs.fit_decision_tree_classifier(p)?,
            Estimator::DecisionTreeRegressor(p) => inputs.fit_decision_tree_regressor(p)?,
            Estimator::RandomForestClassifier(p) => inputs.fit_random_forest_classifier(p)?,
            Estimator::RandomForestRegressor(p) => inputs.fit_random_forest_regressor(p)?,
            Estimator::KNeighborsClassifier(p) => inputs.fit_k_neighbors_classifier(p)?,
            Estimator::KNeighborsRegressor(p) => inputs.fit_k_neighbors_regressor(p)?,
            Estimator::MultinomialNb(p) | Estimator::BernoulliNb(p) => inputs.fit_discrete_nb(p)?,
            Estimator::GaussianNb(p) => inputs.fit_gaussian_nb(p)?,
            Estimator::Svc(p) => inputs.fit_svc(p)?,
            Estimator::Svr(p) => inputs.fit_svr(p)?,
            Estimator::KMeans(p) => inputs.fit_k_means(p)?,
        };
        let classes = inputs.classes;
        Ok(Self {
            format: FORMAT_TAG.to_owned(),
            format_version: SKLEARN_FORMAT_VERSION,
            estimator: estimator.clone(),
            feature_names,
            classes,
            fitted,
        })
    }

    /// Checks what was read from a checkpoint or file.
    pub fn validate(&self) -> Result<()> {
        if self.format != FORMAT_TAG {
            return Err(TrainError::model(
                "reading a classical model",
                format!(
                    "format tag {:?}, expected {FORMAT_TAG:?} (a model saved by SklearnTrainer)",
                    self.format
                ),
            ));
        }
        if self.format_version > SKLEARN_FORMAT_VERSION {
            return Err(TrainError::model(
                "reading a classical model",
                format!(
                    "format version {} is newer than this build reads ({SKLEARN_FORMAT_VERSION}); \
                     upgrade air-train",
                    self.format_version
                ),
            ));
        }
        Ok(())
    }

    /// The number of features the model reads.
    pub fn num_features(&self) -> usize {
        self.feature_names.len()
    }

    /// A linear model's coefficients and intercept (scikit-learn's `coef_`, `intercept_`);
    /// for logistic regression one row per class (one row for two classes).
    pub fn linear_coefficients(&self) -> Option<(Vec<Vec<f64>>, Vec<f64>)> {
        match &self.fitted {
            Fitted::Linear { coef, intercept } => Some((vec![coef.clone()], vec![*intercept])),
            Fitted::Logistic { coef, intercept } => Some((coef.clone(), intercept.clone())),
            _ => None,
        }
    }

    /// k-means centroids (scikit-learn's `cluster_centers_`).
    pub fn cluster_centers(&self) -> Option<&[Vec<f64>]> {
        match &self.fitted {
            Fitted::KMeans { centroids } => Some(centroids),
            _ => None,
        }
    }

    /// Predicts every row of `x` (in parallel chunks of rows).
    pub fn predict(&self, x: &Matrix<f64>) -> Result<Predictions> {
        let cols = self.num_features();
        if x.cols != cols {
            return Err(TrainError::InvalidData {
                what: "features",
                found: format!("{} columns", x.cols),
                expected: format!(
                    "the {cols} feature columns the model was fitted on: [{}]",
                    self.feature_names.join(", ")
                ),
            });
        }
        check_finite(x, &self.feature_names)?;
        if x.rows == 0 {
            return Ok(match self.estimator.kind() {
                EstimatorKind::Regressor => Predictions::Values(Vec::new()),
                _ => Predictions::Labels(Vec::new()),
            });
        }
        let chunks: Vec<Predictions> = x
            .data
            .par_chunks(PREDICT_CHUNK * cols)
            .map(|chunk| self.predict_chunk(chunk, chunk.len() / cols))
            .collect::<Result<_>>()?;
        Ok(match self.estimator.kind() {
            EstimatorKind::Regressor => Predictions::Values(
                chunks
                    .into_iter()
                    .flat_map(|p| match p {
                        Predictions::Values(v) => v,
                        Predictions::Labels(_) => Vec::new(),
                    })
                    .collect(),
            ),
            _ => Predictions::Labels(
                chunks
                    .into_iter()
                    .flat_map(|p| match p {
                        Predictions::Labels(v) => v,
                        Predictions::Values(_) => Vec::new(),
                    })
                    .collect(),
            ),
        })
    }

    fn predict_chunk(&self, x: &[f64], rows: usize) -> Result<Predictions> {
        let cols = self.num_features();
        let err = failed(&self.estimator, "predicting with");
        let class_of = |codes: Vec<u32>| {
            Predictions::Labels(
                codes
                    .into_iter()
                    .map(|c| {
                        <[i64]>::get(&self.classes, c as usize)
                            .copied()
                            .unwrap_or_default()
                    })
                    .collect(),
            )
        };
        let rows_iter = || x.chunks_exact(cols);
        Ok(match &self.fitted {
            Fitted::Linear { coef, intercept } => {
                Predictions::Values(rows_iter().map(|r| dot(r, coef) + intercept).collect())
            }
            Fitted::Logistic { coef, intercept } => class_of(
                rows_iter()
                    .map(|r| {
                        let z: Vec<f64> = coef
                            .iter()
                            .zip(intercept)
                            .map(|(w, b)| dot(r, w) + b)
                            .collect();
                        if z.len() == 1 {
                            u32::from(z[0] > 0.0)
                        } else {
                            argmax(&z)
                        }
                    })
                    .collect(),
            ),
            Fitted::TreeClassifier { model } => {
                class_of(model.predict(&dense(x, rows, cols)?).map_err(&err)?)
            }
            Fitted::TreeRegressor { model } => {
                Predictions::Values(model.predict(&dense(x, rows, cols)?).map_err(&err)?)
            }
            Fitted::ForestClassifier { model } => {
                class_of(model.predict(&dense(x, rows, cols)?).map_err(&err)?)
            }
            Fitted::ForestRegressor { model } => {
                Predictions::Values(model.predict(&dense(x, rows, cols)?).map_err(&err)?)
            }
            Fitted::KnnClassifier { model } => class_of(model.classify(x, self.classes.len())),
            Fitted::KnnRegressor { model } => Predictions::Values(model.regress(x)),
            Fitted::GaussianNb { model } => class_of(model.predict(x, cols)),
            Fitted::DiscreteNb { model } => class_of(model.predict(x, cols)),
            Fitted::Svc { kernel, machines } => class_of(
                rows_iter()
                    .map(|r| {
                        // One-vs-one vote; ties go to the lowest class, as in libsvm.
                        let mut votes = vec![0u32; self.classes.len()];
                        for m in machines {
                            let winner = if m.decision(*kernel, r) > 0.0 {
                                m.positive
                            } else {
                                m.negative
                            };
                            votes[winner as usize] += 1;
                        }
                        let best = votes.iter().copied().max().unwrap_or(0);
                        u32::try_from(votes.iter().position(|v| *v == best).unwrap_or(0))
                            .unwrap_or(0)
                    })
                    .collect(),
            ),
            Fitted::Svr { kernel, machine } => {
                Predictions::Values(rows_iter().map(|r| machine.decision(*kernel, r)).collect())
            }
            Fitted::KMeans { centroids } => Predictions::Labels(
                rows_iter()
                    .map(|r| i64::from(nearest_centroid(centroids, r).0))
                    .collect(),
            ),
        })
    }

    /// `scoring` of the model on `x` against `y` (`y` is unused by [`Scoring::Inertia`]).
    pub fn score(&self, scoring: Scoring, x: &Matrix<f64>, y: Option<&[f64]>) -> Result<f64> {
        let kind = self.estimator.kind();
        if scoring.applies_to() != kind {
            return Err(TrainError::InvalidConfig {
                field: "scoring",
                value: format!("{} for {}", scoring.name(), self.estimator.name()),
                expected: format!(
                    "a {} metric (default: {})",
                    match kind {
                        EstimatorKind::Classifier => "classification",
                        EstimatorKind::Regressor => "regression",
                        EstimatorKind::Clusterer => "clustering",
                    },
                    self.estimator.default_scoring().name()
                ),
            });
        }
        if scoring == Scoring::Inertia {
            let Fitted::KMeans { centroids } = &self.fitted else {
                return Ok(f64::NAN);
            };
            return Ok(x
                .data
                .par_chunks(self.num_features().max(1))
                .map(|r| nearest_centroid(centroids, r).1)
                .sum());
        }
        let Some(y) = y else {
            return Err(TrainError::InvalidConfig {
                field: "label_column",
                value: "none".to_owned(),
                expected: format!("labels to compute {}", scoring.name()),
            });
        };
        let pred = self.predict(x)?.to_f64();
        Ok(metric(scoring, y, &pred))
    }
}

/// x·w in four lanes (no `mul_add`: a library call without an FMA target feature).
#[allow(clippy::suboptimal_flops)]
fn dot(x: &[f64], w: &[f64]) -> f64 {
    let mut lanes = [0.0f64; 4];
    let (x4, w4) = (x.chunks_exact(4), w.chunks_exact(4));
    let tail: f64 = x4
        .remainder()
        .iter()
        .zip(w4.remainder())
        .map(|(a, b)| a * b)
        .sum();
    for (a, b) in x4.zip(w4) {
        for l in 0..4 {
            lanes[l] += a[l] * b[l];
        }
    }
    (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]) + tail
}

fn check_priors(priors: Option<&[f64]>, classes: usize) -> Result<()> {
    match priors {
        Some(p) if p.len() != classes => Err(TrainError::InvalidConfig {
            field: "priors",
            value: format!("{} priors", p.len()),
            expected: format!("one per class ({classes} classes)"),
        }),
        _ => Ok(()),
    }
}

fn check_finite(x: &Matrix<f64>, names: &[String]) -> Result<()> {
    if let Some(i) = x.data.iter().position(|v| !v.is_finite()) {
        let col = x.cols.max(1);
        return Err(TrainError::InvalidData {
            what: "features",
            found: format!(
                "{} in column {:?}, row {}",
                x.data[i],
                names.get(i % col).map_or("?", String::as_str),
                i / col
            ),
            expected: "finite feature values without nulls (impute first, e.g. SimpleImputer)"
                .to_owned(),
        });
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn lasso(
    x: &[f64],
    rows: usize,
    cols: usize,
    y: &[f64],
    alpha: f64,
    max_iter: usize,
    tol: f64,
) -> std::result::Result<Vec<f64>, smartcore::error::Failed> {
    let xm = DenseMatrix::new(rows, cols, x.to_vec(), false)?;
    let m = Lasso::<f64, f64, Dm, Vec<f64>>::fit(
        &xm,
        &y.to_vec(),
        LassoParameters::default()
            .with_alpha(alpha)
            .with_normalize(false)
            .with_fit_intercept(false)
            .with_max_iter(max_iter)
            .with_tol(tol),
    )?;
    Ok(matrix_values(m.coefficients()))
}

fn argmax(z: &[f64]) -> u32 {
    let mut best = 0;
    for (i, v) in z.iter().enumerate() {
        if *v > z[best] {
            best = i;
        }
    }
    u32::try_from(best).unwrap_or(0)
}

/// A supervised metric of predictions against labels.
pub(crate) fn metric(scoring: Scoring, y: &[f64], pred: &[f64]) -> f64 {
    let n = y.len().max(1) as f64;
    match scoring {
        Scoring::Accuracy => y.iter().zip(pred).filter(|(a, b)| a == b).count() as f64 / n,
        Scoring::F1 => {
            let positive = y.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            f1(y, pred, positive)
        }
        Scoring::F1Macro => {
            let mut labels: Vec<f64> = y.iter().chain(pred).copied().collect();
            labels.sort_by(f64::total_cmp);
            labels.dedup();
            labels.iter().map(|l| f1(y, pred, *l)).sum::<f64>() / labels.len().max(1) as f64
        }
        Scoring::R2 => {
            let mean = y.iter().sum::<f64>() / n;
            let ss_res: f64 = y.iter().zip(pred).map(|(a, b)| (a - b) * (a - b)).sum();
            let ss_tot: f64 = y.iter().map(|a| (a - mean) * (a - mean)).sum();
            if ss_tot == 0.0 {
                // scikit-learn: a perfect fit of constant labels scores 1, anything else 0.
                if ss_res == 0.0 { 1.0 } else { 0.0 }
            } else {
                1.0 - ss_res / ss_tot
            }
        }
        Scoring::MeanSquaredError => {
            y.iter()
                .zip(pred)
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f64>()
                / n
        }
        Scoring::RootMeanSquaredError => metric(Scoring::MeanSquaredError, y, pred).sqrt(),
        Scoring::MeanAbsoluteError => {
            y.iter().zip(pred).map(|(a, b)| (a - b).abs()).sum::<f64>() / n
        }
        Scoring::Inertia => f64::NAN,
    }
}

fn f1(y: &[f64], pred: &[f64], positive: f64) -> f64 {
    let (mut tp, mut fp, mut fneg) = (0.0, 0.0, 0.0);
    for (a, b) in y.iter().zip(pred) {
        match (*a == positive, *b == positive) {
            (true, true) => tp += 1.0,
            (false, true) => fp += 1.0,
            (true, false) => fneg += 1.0,
            (false, false) => {}
        }
    }
    let denom = 2.0f64.mul_add(tp, fp + fneg);
    if denom == 0.0 { 0.0 } else { 2.0 * tp / denom }
}

/// What one fit reads: the estimator, the checked features and the targets.
struct Inputs<'a> {
    estimator: &'a Estimator,
    x: &'a Matrix<f64>,
    rows: usize,
    cols: usize,
    /// Regression targets (empty for a clusterer).
    y: Vec<f64>,
    /// A classifier's sorted class labels, and each row's index into them.
    classes: Vec<i64>,
    codes: Vec<u32>,
    feature_names: &'a [String],
}

impl Inputs<'_> {
    /// The features as smartcore's dense matrix.
    fn xm(&self) -> Result<Dm> {
        dense(&self.x.data, self.rows, self.cols)
    }

    /// Maps smartcore's failure to one naming the estimator.
    fn fit_err(&self) -> impl Fn(smartcore::error::Failed) -> TrainError {
        failed(self.estimator, "fitting")
    }

    fn fit_linear_regression(&self, p: &LinearRegressionParams) -> Result<Fitted> {
        let solver = match p.solver {
            LinearSolver::Svd => LinearRegressionSolverName::SVD,
            LinearSolver::Qr => LinearRegressionSolverName::QR,
        };
        let m = LinearRegression::<f64, f64, Dm, Vec<f64>>::fit(
            &self.xm()?,
            &self.y,
            LinearRegressionParameters::default().with_solver(solver),
        )
        .map_err(self.fit_err())?;
        Ok(Fitted::Linear {
            coef: matrix_values(m.coefficients()),
            intercept: *m.intercept(),
        })
    }

    fn fit_ridge(&self, p: &RidgeParams) -> Result<Fitted> {
        let c = centre(&self.x.data, self.rows, self.cols, &self.y, p.fit_intercept);
        let solver = match p.solver {
            RidgeSolver::Cholesky => RidgeRegressionSolverName::Cholesky,
            RidgeSolver::Svd => RidgeRegressionSolverName::SVD,
        };
        let m = RidgeRegression::<f64, f64, Dm, Vec<f64>>::fit(
            &dense(&c.x, self.rows, self.cols)?,
            &c.y,
            RidgeRegressionParameters::default()
                .with_alpha(p.alpha)
                .with_solver(solver)
                .with_normalize(false),
        )
        .map_err(self.fit_err())?;
        Ok(linear_from(matrix_values(m.coefficients()), &c, 0.0))
    }

    fn fit_lasso(&self, p: &LassoParams) -> Result<Fitted> {
        let c = centre(&self.x.data, self.rows, self.cols, &self.y, p.fit_intercept);
        let coef = lasso(
            &c.x,
            self.rows,
            self.cols,
            &c.y,
            2.0 * p.alpha,
            p.max_iter,
            p.tol,
        )
        .map_err(self.fit_err())?;
        Ok(linear_from(coef, &c, 0.0))
    }

    fn fit_elastic_net(&self, p: &ElasticNetParams) -> Result<Fitted> {
        let c = centre(&self.x.data, self.rows, self.cols, &self.y, p.fit_intercept);
        let n = self.rows as f64;
        let l1 = 2.0 * n * p.alpha * p.l1_ratio;
        let l2 = n * p.alpha * (1.0 - p.l1_ratio);
        // ‖y − Xw‖² + l2‖w‖² = ‖[y; 0] − [X; √l2·I] w‖².
        let mut xa = c.x.clone();
        xa.resize((self.rows + self.cols) * self.cols, 0.0);
        for j in 0..self.cols {
            xa[(self.rows + j) * self.cols + j] = l2.sqrt();
        }
        let mut ya = c.y.clone();
        ya.resize(self.rows + self.cols, 0.0);
        let alpha = l1 / (self.rows + self.cols) as f64;
        let coef = lasso(
            &xa,
            self.rows + self.cols,
            self.cols,
            &ya,
            alpha,
            p.max_iter,
            p.tol,
        )
        .map_err(self.fit_err())?;
        Ok(linear_from(coef, &c, 0.0))
    }

    fn fit_logistic_regression(&self, p: &LogisticRegressionParams) -> Result<Fitted> {
        let m = LogisticRegression::<f64, u32, Dm, Vec<u32>>::fit(
            &self.xm()?,
            &self.codes,
            LogisticRegressionParameters::default().with_alpha(1.0 / p.c),
        )
        .map_err(self.fit_err())?;
        let coef = m.coefficients();
        let (k, d) = coef.shape();
        let flat = matrix_values(coef);
        Ok(Fitted::Logistic {
            coef: (0..k).map(|i| flat[i * d..(i + 1) * d].to_vec()).collect(),
            intercept: matrix_values(m.intercept()),
        })
    }

    fn fit_decision_tree_classifier(&self, p: &DecisionTreeParams) -> Result<Fitted> {
        let mut params = DecisionTreeClassifierParameters::default()
            .with_criterion(criterion(p.criterion))
            .with_min_samples_leaf(p.min_samples_leaf)
            .with_min_samples_split(p.min_samples_split);
        if let Some(d) = p.max_depth {
            params = params.with_max_depth(smartcore_depth(d));
        }
        params.seed = Some(p.seed);
        Ok(Fitted::TreeClassifier {
            model: DecisionTreeClassifier::fit(&self.xm()?, &self.codes, params)
                .map_err(self.fit_err())?,
        })
    }

    fn fit_decision_tree_regressor(&self, p: &DecisionTreeParams) -> Result<Fitted> {
        let mut params = DecisionTreeRegressorParameters::default()
            .with_min_samples_leaf(p.min_samples_leaf)
            .with_min_samples_split(p.min_samples_split);
        if let Some(d) = p.max_depth {
            params = params.with_max_depth(smartcore_depth(d));
        }
        params.seed = Some(p.seed);
        Ok(Fitted::TreeRegressor {
            model: DecisionTreeRegressor::fit(&self.xm()?, &self.y, params)
                .map_err(self.fit_err())?,
        })
    }

    fn fit_random_forest_classifier(&self, p: &RandomForestParams) -> Result<Fitted> {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let m = p
            .max_features
            .unwrap_or(((self.cols as f64).sqrt() as usize).max(1))
            .min(self.cols);
        let mut params = RandomForestClassifierParameters::default()
            .with_criterion(criterion(p.criterion))
            .with_n_trees(u16::try_from(p.n_estimators).unwrap_or(u16::MAX))
            .with_m(m)
            .with_min_samples_leaf(p.min_samples_leaf)
            .with_min_samples_split(p.min_samples_split)
            .with_seed(p.seed);
        if let Some(d) = p.max_depth {
            params = params.with_max_depth(smartcore_depth(d));
        }
        Ok(Fitted::ForestClassifier {
            model: RandomForestClassifier::fit(&self.xm()?, &self.codes, params)
                .map_err(self.fit_err())?,
        })
    }

    fn fit_random_forest_regressor(&self, p: &RandomForestParams) -> Result<Fitted> {
        let mut params = RandomForestRegressorParameters::default()
            .with_n_trees(p.n_estimators)
            .with_m(p.max_features.unwrap_or(self.cols).min(self.cols))
            .with_min_samples_leaf(p.min_samples_leaf)
            .with_min_samples_split(p.min_samples_split)
            .with_seed(p.seed);
        if let Some(d) = p.max_depth {
            params = params.with_max_depth(smartcore_depth(d));
        }
        Ok(Fitted::ForestRegressor {
            model: RandomForestRegressor::fit(&self.xm()?, &self.y, params)
                .map_err(self.fit_err())?,
        })
    }

    fn fit_k_neighbors_classifier(&self, p: &KNeighborsParams) -> Result<Fitted> {
        Ok(Fitted::KnnClassifier {
            model: Neighbours::fit(
                &self.x.data,
                self.cols,
                self.codes.iter().map(|c| f64::from(*c)).collect(),
                p.n_neighbors,
                p.weights == KnnWeights::Distance,
            ),
        })
    }

    fn fit_k_neighbors_regressor(&self, p: &KNeighborsParams) -> Result<Fitted> {
        Ok(Fitted::KnnRegressor {
            model: Neighbours::fit(
                &self.x.data,
                self.cols,
                self.y.clone(),
                p.n_neighbors,
                p.weights == KnnWeights::Distance,
            ),
        })
    }

    fn fit_discrete_nb(&self, p: &DiscreteNbParams) -> Result<Fitted> {
        check_priors(p.priors.as_deref(), self.classes.len())?;
        let bernoulli = matches!(self.estimator, Estimator::BernoulliNb(_));
        if !bernoulli && let Some(bad) = self.x.data.iter().position(|v| *v < 0.0) {
            return Err(TrainError::InvalidData {
                what: "features",
                found: format!(
                    "{} in column {:?}",
                    self.x.data[bad],
                    self.feature_names
                        .get(bad % self.cols)
                        .map_or("?", String::as_str)
                ),
                expected: "non-negative counts for MultinomialNB".to_owned(),
            });
        }
        Ok(Fitted::DiscreteNb {
            model: DiscreteNb::fit(
                &self.x.data,
                self.cols,
                &self.codes,
                self.classes.len(),
                p.alpha,
                bernoulli.then_some(p.binarize),
                p.priors.as_deref(),
            ),
        })
    }

    fn fit_gaussian_nb(&self, p: &GaussianNbParams) -> Result<Fitted> {
        check_priors(p.priors.as_deref(), self.classes.len())?;
        Ok(Fitted::GaussianNb {
            model: GaussianNb::fit(
                &self.x.data,
                self.cols,
                &self.codes,
                self.classes.len(),
                p.priors.as_deref(),
                p.var_smoothing,
            ),
        })
    }

    fn fit_svc(&self, p: &SvcParams) -> Result<Fitted> {
        let kernel = resolve_kernel(p.kernel, &self.x.data, self.cols);
        let k = self.classes.len();
        let pairs: Vec<(u32, u32)> = (0..k)
            .flat_map(|a| (a + 1..k).map(move |b| (a, b)))
            .map(|(a, b)| (u32::try_from(a).unwrap_or(0), u32::try_from(b).unwrap_or(0)))
            .collect();
        // One-vs-one, each pair on its own self.rows; pairs train in parallel.
        let machines = pairs
            .par_iter()
            .map(|&(neg, pos)| {
                let rows_of: Vec<usize> = (0..self.rows)
                    .filter(|&i| self.codes[i] == neg || self.codes[i] == pos)
                    .collect();
                let xs: Vec<f64> = rows_of
                    .iter()
                    .flat_map(|&i| {
                        self.x.data[i * self.cols..(i + 1) * self.cols]
                            .iter()
                            .copied()
                    })
                    .collect();
                let ys: Vec<i32> = rows_of
                    .iter()
                    .map(|&i| i32::from(self.codes[i] == pos))
                    .collect();
                let params = SVCParameters::<f64, i32, Dm, Vec<i32>>::default()
                    .with_c(p.c)
                    .with_tol(p.tol)
                    .with_epoch(p.max_epochs)
                    .with_kernel(kernel.smartcore())
                    .with_seed(Some(p.seed));
                let xs = dense(&xs, rows_of.len(), self.cols)?;
                let svc = SVC::fit(&xs, &ys, &params).map_err(self.fit_err())?;
                Ok(SupportVectors {
                    vectors: field::<Option<Vec<Vec<f64>>>>(&svc, "instances")?.unwrap_or_default(),
                    weights: field::<Option<Vec<f64>>>(&svc, "w")?.unwrap_or_default(),
                    bias: field::<Option<f64>>(&svc, "b")?.unwrap_or_default(),
                    negative: neg,
                    positive: pos,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Fitted::Svc { kernel, machines })
    }

    fn fit_svr(&self, p: &SvrParams) -> Result<Fitted> {
        let kernel = resolve_kernel(p.kernel, &self.x.data, self.cols);
        let params = SVRParameters::default()
            .with_c(p.c)
            .with_eps(p.epsilon)
            .with_tol(p.tol)
            .with_kernel(kernel.smartcore());
        let xs = self.xm()?;
        let svr = SVR::fit(&xs, &self.y, &params).map_err(self.fit_err())?;
        Ok(Fitted::Svr {
            kernel,
            machine: SupportVectors {
                vectors: field::<Option<Vec<Vec<f64>>>>(&svr, "instances")?.unwrap_or_default(),
                weights: field::<Option<Vec<f64>>>(&svr, "w")?.unwrap_or_default(),
                bias: field::<f64>(&svr, "b")?,
                negative: 0,
                positive: 0,
            },
        })
    }

    fn fit_k_means(&self, p: &KMeansParams) -> Result<Fitted> {
        Ok(Fitted::KMeans {
            centroids: kmeans(&self.x.data, self.cols, p.n_clusters, p.max_iter, p.seed),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_match_hand_computed_values() {
        let y = [1.0, 0.0, 1.0, 1.0];
        let p = [1.0, 1.0, 0.0, 1.0];
        assert_eq!(metric(Scoring::Accuracy, &y, &p), 0.5);
        // tp 2, fp 1, fn 1 → 4 / 6.
        assert!((metric(Scoring::F1, &y, &p) - 2.0 / 3.0).abs() < 1e-12);
        // class 0: tp 0 → 0; class 1: 2/3.
        assert!((metric(Scoring::F1Macro, &y, &p) - 1.0 / 3.0).abs() < 1e-12);
        let y = [1.0, 2.0, 3.0];
        let p = [1.0, 2.0, 5.0];
        assert!((metric(Scoring::MeanSquaredError, &y, &p) - 4.0 / 3.0).abs() < 1e-12);
        assert!((metric(Scoring::MeanAbsoluteError, &y, &p) - 2.0 / 3.0).abs() < 1e-12);
        assert!((metric(Scoring::R2, &y, &p) - (1.0 - 4.0 / 2.0)).abs() < 1e-12);
        assert_eq!(metric(Scoring::R2, &[2.0, 2.0], &[2.0, 2.0]), 1.0);
    }

    #[test]
    fn classes_must_be_integers() {
        assert!(encode_classes(&[0.0, 1.5], "y").is_err());
        assert!(encode_classes(&[0.0, f64::NAN], "y").is_err());
        let (classes, codes) = encode_classes(&[5.0, -1.0, 5.0], "y").unwrap();
        assert_eq!(classes, vec![-1, 5]);
        assert_eq!(codes, vec![1, 0, 1]);
    }
}
