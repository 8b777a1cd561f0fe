//! Estimators and their parameters, with scikit-learn's names and defaults.

use serde::{Deserialize, Serialize};

use crate::{TrainError, error::Result};

/// A classical estimator and its parameters (scikit-learn's class, as typed config).
///
/// Serialised with the estimator's snake-case name under `"estimator"` and the parameters
/// beside it, so a tuner's `{"params": {"alpha": 0.1}}` merges into it:
///
/// ```
/// use air_train::sklearn::{Estimator, RidgeParams};
///
/// let e = Estimator::Ridge(RidgeParams::new().with_alpha(0.5));
/// let json = serde_json::to_value(&e)?;
/// assert_eq!(json["estimator"], "ridge");
/// assert_eq!(json["alpha"], 0.5);
/// assert!(Estimator::Ridge(RidgeParams::new().with_alpha(-1.0)).validate().is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "estimator", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Estimator {
    /// Ordinary least squares (`LinearRegression`).
    LinearRegression(LinearRegressionParams),
    /// L2-penalised least squares (`Ridge`).
    Ridge(RidgeParams),
    /// L1-penalised least squares (`Lasso`).
    Lasso(LassoParams),
    /// L1 + L2 penalised least squares (`ElasticNet`).
    ElasticNet(ElasticNetParams),
    /// L2-penalised logistic regression, multinomial for more than two classes
    /// (`LogisticRegression`).
    LogisticRegression(LogisticRegressionParams),
    /// CART classification tree (`DecisionTreeClassifier`).
    DecisionTreeClassifier(DecisionTreeParams),
    /// CART regression tree (`DecisionTreeRegressor`).
    DecisionTreeRegressor(DecisionTreeParams),
    /// Bagged classification trees (`RandomForestClassifier`).
    RandomForestClassifier(RandomForestParams),
    /// Bagged regression trees (`RandomForestRegressor`).
    RandomForestRegressor(RandomForestParams),
    /// Majority vote of the nearest training rows (`KNeighborsClassifier`).
    #[serde(rename = "k_neighbors_classifier")]
    KNeighborsClassifier(KNeighborsParams),
    /// Mean of the nearest training rows' labels (`KNeighborsRegressor`).
    #[serde(rename = "k_neighbors_regressor")]
    KNeighborsRegressor(KNeighborsParams),
    /// Gaussian naive Bayes (`GaussianNB`).
    #[serde(rename = "gaussian_nb")]
    GaussianNb(GaussianNbParams),
    /// Naive Bayes over non-negative counts (`MultinomialNB`).
    #[serde(rename = "multinomial_nb")]
    MultinomialNb(DiscreteNbParams),
    /// Naive Bayes over binary features (`BernoulliNB`; features > `binarize` are set).
    #[serde(rename = "bernoulli_nb")]
    BernoulliNb(DiscreteNbParams),
    /// Support vector classifier, one-vs-one for more than two classes (`SVC`).
    Svc(SvcParams),
    /// Epsilon support vector regression (`SVR`).
    Svr(SvrParams),
    /// k-means clustering (`KMeans`); needs no label column.
    #[serde(rename = "k_means")]
    KMeans(KMeansParams),
}

/// What an estimator predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EstimatorKind {
    /// A class label (the label column's integer values).
    Classifier,
    /// A real value.
    Regressor,
    /// A cluster index; trained without labels.
    Clusterer,
}

impl Estimator {
    /// scikit-learn's class name (`"RandomForestClassifier"`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::LinearRegression(_) => "LinearRegression",
            Self::Ridge(_) => "Ridge",
            Self::Lasso(_) => "Lasso",
            Self::ElasticNet(_) => "ElasticNet",
            Self::LogisticRegression(_) => "LogisticRegression",
            Self::DecisionTreeClassifier(_) => "DecisionTreeClassifier",
            Self::DecisionTreeRegressor(_) => "DecisionTreeRegressor",
            Self::RandomForestClassifier(_) => "RandomForestClassifier",
            Self::RandomForestRegressor(_) => "RandomForestRegressor",
            Self::KNeighborsClassifier(_) => "KNeighborsClassifier",
            Self::KNeighborsRegressor(_) => "KNeighborsRegressor",
            Self::GaussianNb(_) => "GaussianNB",
            Self::MultinomialNb(_) => "MultinomialNB",
            Self::BernoulliNb(_) => "BernoulliNB",
            Self::Svc(_) => "SVC",
            Self::Svr(_) => "SVR",
            Self::KMeans(_) => "KMeans",
        }
    }

    /// Classifier, regressor or clusterer.
    pub fn kind(&self) -> EstimatorKind {
        match self {
            Self::LogisticRegression(_)
            | Self::DecisionTreeClassifier(_)
            | Self::RandomForestClassifier(_)
            | Self::KNeighborsClassifier(_)
            | Self::GaussianNb(_)
            | Self::MultinomialNb(_)
            | Self::BernoulliNb(_)
            | Self::Svc(_) => EstimatorKind::Classifier,
            Self::KMeans(_) => EstimatorKind::Clusterer,
            _ => EstimatorKind::Regressor,
        }
    }

    /// scikit-learn's `score`: accuracy for classifiers, R² for regressors, inertia for
    /// k-means.
    pub fn default_scoring(&self) -> Scoring {
        match self.kind() {
            EstimatorKind::Classifier => Scoring::Accuracy,
            EstimatorKind::Regressor => Scoring::R2,
            EstimatorKind::Clusterer => Scoring::Inertia,
        }
    }

    /// Checks every parameter; the error names the estimator, the field and what is accepted.
    pub fn validate(&self) -> Result<()> {
        let name = self.name();
        let check = |field: &'static str, value: f64, ok: bool, expected: &str| {
            if ok {
                Ok(())
            } else {
                Err(TrainError::InvalidConfig {
                    field,
                    value: format!("{value} ({name})"),
                    expected: expected.to_owned(),
                })
            }
        };
        let positive = |field: &'static str, v: f64| check(field, v, v > 0.0, "a number > 0");
        let non_negative = |field: &'static str, v: f64| check(field, v, v >= 0.0, "a number ≥ 0");
        let count = |field: &'static str, v: usize, min: usize| {
            check(field, v as f64, v >= min, &format!("an integer ≥ {min}"))
        };
        match self {
            Self::LinearRegression(_) => Ok(()),
            Self::Ridge(p) => non_negative("alpha", p.alpha),
            Self::Lasso(p) => {
                non_negative("alpha", p.alpha)?;
                positive("tol", p.tol)?;
                count("max_iter", p.max_iter, 1)
            }
            Self::ElasticNet(p) => {
                non_negative("alpha", p.alpha)?;
                check(
                    "l1_ratio",
                    p.l1_ratio,
                    (0.0..=1.0).contains(&p.l1_ratio),
                    "a number in [0, 1]",
                )?;
                positive("tol", p.tol)?;
                count("max_iter", p.max_iter, 1)
            }
            Self::LogisticRegression(p) => positive("c", p.c),
            Self::DecisionTreeClassifier(p) | Self::DecisionTreeRegressor(p) => {
                p.validate_with(&count)
            }
            Self::RandomForestClassifier(p) | Self::RandomForestRegressor(p) => {
                count("n_estimators", p.n_estimators, 1)?;
                if matches!(self, Self::RandomForestClassifier(_)) {
                    check(
                        "n_estimators",
                        p.n_estimators as f64,
                        p.n_estimators <= usize::from(u16::MAX),
                        "at most 65535 trees for a classifier",
                    )?;
                }
                if let Some(m) = p.max_features {
                    count("max_features", m, 1)?;
                }
                p.tree().validate_with(&count)
            }
            Self::KNeighborsClassifier(p) | Self::KNeighborsRegressor(p) => {
                count("n_neighbors", p.n_neighbors, 1)
            }
            Self::GaussianNb(p) => {
                non_negative("var_smoothing", p.var_smoothing)?;
                match &p.priors {
                    Some(priors) => {
                        let sum: f64 = priors.iter().sum();
                        check(
                            "priors",
                            sum,
                            priors.iter().all(|v| *v >= 0.0) && (sum - 1.0).abs() < 1e-6,
                            "non-negative class priors summing to 1",
                        )
                    }
                    None => Ok(()),
                }
            }
            Self::MultinomialNb(p) | Self::BernoulliNb(p) => {
                non_negative("alpha", p.alpha)?;
                check(
                    "binarize",
                    p.binarize,
                    p.binarize.is_finite(),
                    "a finite threshold",
                )
            }
            Self::Svc(p) => {
                positive("c", p.c)?;
                positive("tol", p.tol)?;
                count("max_epochs", p.max_epochs, 1)?;
                p.kernel.validate()
            }
            Self::Svr(p) => {
                positive("c", p.c)?;
                non_negative("epsilon", p.epsilon)?;
                positive("tol", p.tol)?;
                p.kernel.validate()
            }
            Self::KMeans(p) => {
                count("n_clusters", p.n_clusters, 1)?;
                count("max_iter", p.max_iter, 1)
            }
        }
    }
}

/// The least-squares solver of [`Estimator::LinearRegression`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LinearSolver {
    /// Singular value decomposition: handles collinear features (scikit-learn's `lstsq`).
    #[default]
    Svd,
    /// QR decomposition: faster, needs full column rank.
    Qr,
}

/// `with_*` setters that each set one field and return `self`: doc comments, then
/// `with_x(field: Type);`, or `with_x(field: Type) as Some;` for an optional field.
macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident($field:ident: $ty:ty) $(as $wrap:ident)?;)*) => {
        $(
            $(#[$doc])*
            pub fn $name(mut self, $field: $ty) -> Self {
                self.$field = setters!(@wrap $field $($wrap)?);
                self
            }
        )*
    };
    (@wrap $v:ident) => {
        $v
    };
    (@wrap $v:ident $w:ident) => {
        $w($v)
    };
}

/// [`Estimator::LinearRegression`] parameters.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct LinearRegressionParams {
    /// How the least-squares problem is solved.
    pub solver: LinearSolver,
}

impl LinearRegressionParams {
    /// scikit-learn's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    setters! {
        /// Sets the solver.
        with_solver(solver: LinearSolver);
    }
}

/// The linear-system solver of [`Estimator::Ridge`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RidgeSolver {
    /// Cholesky factorisation of XᵀX + αI.
    #[default]
    Cholesky,
    /// Singular value decomposition.
    Svd,
}

/// [`Estimator::Ridge`] parameters: minimises ‖y − Xw − b‖² + α‖w‖² (the intercept is not
/// penalised, as in scikit-learn).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RidgeParams {
    /// Penalty strength (≥ 0).
    pub alpha: f64,
    /// Fit an intercept (on centred data) or force it to 0.
    pub fit_intercept: bool,
    /// How the system is solved.
    pub solver: RidgeSolver,
}

impl Default for RidgeParams {
    fn default() -> Self {
        Self {
            alpha: 1.0,
            fit_intercept: true,
            solver: RidgeSolver::Cholesky,
        }
    }
}

impl RidgeParams {
    /// scikit-learn's defaults (`alpha = 1`).
    pub fn new() -> Self {
        Self::default()
    }

    setters! {
        /// Sets the penalty strength.
        with_alpha(alpha: f64);
        /// Fits an intercept or not.
        with_fit_intercept(fit_intercept: bool);
        /// Sets the solver.
        with_solver(solver: RidgeSolver);
    }
}

/// [`Estimator::Lasso`] parameters: minimises ‖y − Xw − b‖² / (2n) + α‖w‖₁, scikit-learn's
/// objective (solved by smartcore's interior-point method).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LassoParams {
    /// Penalty strength (≥ 0).
    pub alpha: f64,
    /// Fit an intercept (on centred data) or force it to 0.
    pub fit_intercept: bool,
    /// Maximum solver iterations.
    pub max_iter: usize,
    /// Relative duality-gap tolerance of the solver.
    pub tol: f64,
}

impl Default for LassoParams {
    fn default() -> Self {
        Self {
            alpha: 1.0,
            fit_intercept: true,
            max_iter: 1000,
            tol: 1e-4,
        }
    }
}

impl LassoParams {
    /// scikit-learn's defaults (`alpha = 1`).
    pub fn new() -> Self {
        Self::default()
    }

    setters! {
        /// Sets the penalty strength.
        with_alpha(alpha: f64);
        /// Fits an intercept or not.
        with_fit_intercept(fit_intercept: bool);
        /// Sets the iteration budget.
        with_max_iter(max_iter: usize);
        /// Sets the tolerance.
        with_tol(tol: f64);
    }
}

/// [`Estimator::ElasticNet`] parameters: minimises ‖y − Xw − b‖² / (2n) + α·ρ‖w‖₁ +
/// α(1 − ρ)/2 ‖w‖², scikit-learn's objective (ρ = `l1_ratio`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ElasticNetParams {
    /// Penalty strength (≥ 0).
    pub alpha: f64,
    /// Share of the L1 penalty, in [0, 1].
    pub l1_ratio: f64,
    /// Fit an intercept (on centred data) or force it to 0.
    pub fit_intercept: bool,
    /// Maximum solver iterations.
    pub max_iter: usize,
    /// Relative duality-gap tolerance of the solver.
    pub tol: f64,
}

impl Default for ElasticNetParams {
    fn default() -> Self {
        Self {
            alpha: 1.0,
            l1_ratio: 0.5,
            fit_intercept: true,
            max_iter: 1000,
            tol: 1e-4,
        }
    }
}

impl ElasticNetParams {
    /// scikit-learn's defaults (`alpha = 1`, `l1_ratio = 0.5`).
    pub fn new() -> Self {
        Self::default()
    }

    setters! {
        /// Sets the penalty strength.
        with_alpha(alpha: f64);
        /// Sets the L1 share.
        with_l1_ratio(l1_ratio: f64);
        /// Fits an intercept or not.
        with_fit_intercept(fit_intercept: bool);
        /// Sets the iteration budget.
        with_max_iter(max_iter: usize);
        /// Sets the tolerance.
        with_tol(tol: f64);
    }
}

/// [`Estimator::LogisticRegression`] parameters: L2 penalty ½‖w‖² weighted against `c` times
/// the summed log-loss, intercept unpenalised (scikit-learn's `lbfgs` with `penalty="l2"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogisticRegressionParams {
    /// Inverse regularisation strength (> 0).
    pub c: f64,
}

impl Default for LogisticRegressionParams {
    fn default() -> Self {
        Self { c: 1.0 }
    }
}

impl LogisticRegressionParams {
    /// scikit-learn's defaults (`C = 1`).
    pub fn new() -> Self {
        Self::default()
    }

    setters! {
        /// Sets `C`.
        with_c(c: f64);
    }
}

/// The impurity a classification tree minimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Criterion {
    /// Gini impurity.
    #[default]
    Gini,
    /// Shannon entropy.
    Entropy,
    /// Misclassification rate.
    ClassificationError,
}

/// Tree parameters ([`Estimator::DecisionTreeClassifier`], [`Estimator::DecisionTreeRegressor`];
/// `criterion` only matters for the classifier, regression trees minimise squared error).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DecisionTreeParams {
    /// Impurity of classification splits.
    pub criterion: Criterion,
    /// Maximum depth; `None`: grow until leaves are pure or too small.
    pub max_depth: Option<u16>,
    /// A node with fewer rows is not split (≥ 2).
    pub min_samples_split: usize,
    /// Each leaf keeps at least this many rows (≥ 1).
    pub min_samples_leaf: usize,
    /// Seed of the feature order.
    pub seed: u64,
}

impl Default for DecisionTreeParams {
    fn default() -> Self {
        Self {
            criterion: Criterion::Gini,
            max_depth: None,
            min_samples_split: 2,
            min_samples_leaf: 1,
            seed: 0,
        }
    }
}

impl DecisionTreeParams {
    /// scikit-learn's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    setters! {
        /// Sets the split criterion.
        with_criterion(criterion: Criterion);
        /// Limits the depth.
        with_max_depth(max_depth: u16) as Some;
        /// Sets the smallest node that is split.
        with_min_samples_split(min_samples_split: usize);
        /// Sets the smallest leaf.
        with_min_samples_leaf(min_samples_leaf: usize);
        /// Sets the seed.
        with_seed(seed: u64);
    }

    fn validate_with(
        &self,
        count: &dyn Fn(&'static str, usize, usize) -> Result<()>,
    ) -> Result<()> {
        count("min_samples_split", self.min_samples_split, 2)?;
        count("min_samples_leaf", self.min_samples_leaf, 1)?;
        if let Some(d) = self.max_depth {
            count("max_depth", usize::from(d), 1)?;
        }
        Ok(())
    }
}

/// Forest parameters ([`Estimator::RandomForestClassifier`],
/// [`Estimator::RandomForestRegressor`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RandomForestParams {
    /// Number of trees.
    pub n_estimators: usize,
    /// Impurity of classification splits.
    pub criterion: Criterion,
    /// Maximum depth of each tree.
    pub max_depth: Option<u16>,
    /// A node with fewer rows is not split (≥ 2).
    pub min_samples_split: usize,
    /// Each leaf keeps at least this many rows (≥ 1).
    pub min_samples_leaf: usize,
    /// Features tried per split; `None`: scikit-learn's default, ⌊√d⌋ for the classifier and
    /// all d for the regressor.
    pub max_features: Option<usize>,
    /// Seed of the bootstrap samples and feature draws.
    pub seed: u64,
}

impl Default for RandomForestParams {
    fn default() -> Self {
        Self {
            n_estimators: 100,
            criterion: Criterion::Gini,
            max_depth: None,
            min_samples_split: 2,
            min_samples_leaf: 1,
            max_features: None,
            seed: 0,
        }
    }
}

impl RandomForestParams {
    /// scikit-learn's defaults (100 trees).
    pub fn new() -> Self {
        Self::default()
    }

    setters! {
        /// Sets the number of trees.
        with_n_estimators(n_estimators: usize);
        /// Sets the split criterion.
        with_criterion(criterion: Criterion);
        /// Limits the depth.
        with_max_depth(max_depth: u16) as Some;
        /// Sets the smallest node that is split.
        with_min_samples_split(min_samples_split: usize);
        /// Sets the smallest leaf.
        with_min_samples_leaf(min_samples_leaf: usize);
        /// Sets the features tried per split.
        with_max_features(max_features: usize) as Some;
        /// Sets the seed.
        with_seed(seed: u64);
    }

    fn tree(&self) -> DecisionTreeParams {
        DecisionTreeParams {
            criterion: self.criterion,
            max_depth: self.max_depth,
            min_samples_split: self.min_samples_split,
            min_samples_leaf: self.min_samples_leaf,
            seed: self.seed,
        }
    }
}

/// How neighbours' votes are weighted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum KnnWeights {
    /// Every neighbour counts the same.
    #[default]
    Uniform,
    /// Neighbours count by inverse distance.
    Distance,
}

/// k-nearest-neighbour parameters (Euclidean distance, exact search by scanning the training
/// rows; the training matrix is kept in the model).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct KNeighborsParams {
    /// Number of neighbours (≥ 1).
    pub n_neighbors: usize,
    /// Vote weighting.
    pub weights: KnnWeights,
}

impl Default for KNeighborsParams {
    fn default() -> Self {
        Self {
            n_neighbors: 5,
            weights: KnnWeights::Uniform,
        }
    }
}

impl KNeighborsParams {
    /// scikit-learn's defaults (5 neighbours, uniform weights).
    pub fn new() -> Self {
        Self::default()
    }

    setters! {
        /// Sets the number of neighbours.
        with_n_neighbors(n_neighbors: usize);
        /// Sets the vote weighting.
        with_weights(weights: KnnWeights);
    }
}

/// [`Estimator::GaussianNb`] parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GaussianNbParams {
    /// Class priors in the order of the sorted class labels; `None`: the class frequencies.
    pub priors: Option<Vec<f64>>,
    /// Added to every variance, as a share of the largest feature variance (≥ 0).
    pub var_smoothing: f64,
}

impl Default for GaussianNbParams {
    fn default() -> Self {
        Self {
            priors: None,
            var_smoothing: 1e-9,
        }
    }
}

impl GaussianNbParams {
    /// scikit-learn's defaults (priors from the data).
    pub fn new() -> Self {
        Self::default()
    }

    setters! {
        /// Fixes the class priors.
        with_priors(priors: Vec<f64>) as Some;
        /// Sets the variance smoothing.
        with_var_smoothing(var_smoothing: f64);
    }
}

/// [`Estimator::MultinomialNb`] and [`Estimator::BernoulliNb`] parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DiscreteNbParams {
    /// Additive (Laplace) smoothing (≥ 0).
    pub alpha: f64,
    /// Bernoulli only: a feature is set when its value is greater than this.
    pub binarize: f64,
    /// Class priors in the order of the sorted class labels; `None`: the class frequencies.
    pub priors: Option<Vec<f64>>,
}

impl Default for DiscreteNbParams {
    fn default() -> Self {
        Self {
            alpha: 1.0,
            binarize: 0.0,
            priors: None,
        }
    }
}

impl DiscreteNbParams {
    /// scikit-learn's defaults (`alpha = 1`, `binarize = 0`).
    pub fn new() -> Self {
        Self::default()
    }

    setters! {
        /// Sets the smoothing.
        with_alpha(alpha: f64);
        /// Sets the Bernoulli threshold.
        with_binarize(binarize: f64);
        /// Fixes the class priors.
        with_priors(priors: Vec<f64>) as Some;
    }
}

/// The kernel coefficient of RBF, polynomial and sigmoid kernels.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Gamma {
    /// 1 / (d · Var(X)) over the training matrix (scikit-learn's default).
    #[default]
    Scale,
    /// 1 / d.
    Auto,
    /// A fixed value (> 0).
    Value(f64),
}

impl Gamma {
    /// The value for a training matrix with `d` features whose values have variance `var`.
    pub fn resolve(self, d: usize, var: f64) -> f64 {
        match self {
            Self::Scale if var > 0.0 => 1.0 / (d as f64 * var),
            Self::Scale | Self::Auto => 1.0 / d.max(1) as f64,
            Self::Value(v) => v,
        }
    }
}

/// An SVM kernel, scikit-learn's definitions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Kernel {
    /// ⟨x, y⟩.
    Linear,
    /// exp(−γ‖x − y‖²).
    Rbf {
        /// γ.
        gamma: Gamma,
    },
    /// (γ⟨x, y⟩ + coef0)^degree.
    Poly {
        /// The degree.
        degree: u32,
        /// γ.
        gamma: Gamma,
        /// The constant term.
        coef0: f64,
    },
    /// tanh(γ⟨x, y⟩ + coef0).
    Sigmoid {
        /// γ.
        gamma: Gamma,
        /// The constant term.
        coef0: f64,
    },
}

impl Default for Kernel {
    fn default() -> Self {
        Self::Rbf {
            gamma: Gamma::Scale,
        }
    }
}

impl Kernel {
    fn validate(&self) -> Result<()> {
        let gamma = match self {
            Self::Linear => return Ok(()),
            Self::Rbf { gamma } | Self::Poly { gamma, .. } | Self::Sigmoid { gamma, .. } => *gamma,
        };
        match gamma {
            Gamma::Value(v) if v.is_nan() || v <= 0.0 => Err(TrainError::InvalidConfig {
                field: "gamma",
                value: v.to_string(),
                expected: "a number > 0, \"scale\" or \"auto\"".to_owned(),
            }),
            _ => Ok(()),
        }
    }
}

/// [`Estimator::Svc`] parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SvcParams {
    /// Regularisation (> 0): the penalty on margin violations.
    pub c: f64,
    /// The kernel.
    pub kernel: Kernel,
    /// Stopping tolerance.
    pub tol: f64,
    /// Passes of the optimiser over the data (smartcore's `epoch`).
    pub max_epochs: usize,
    /// Seed of the optimiser's row order.
    pub seed: u64,
}

impl Default for SvcParams {
    fn default() -> Self {
        Self {
            c: 1.0,
            kernel: Kernel::default(),
            tol: 1e-3,
            max_epochs: 2,
            seed: 0,
        }
    }
}

impl SvcParams {
    /// scikit-learn's defaults (`C = 1`, RBF kernel with `gamma = "scale"`).
    pub fn new() -> Self {
        Self::default()
    }

    setters! {
        /// Sets `C`.
        with_c(c: f64);
        /// Sets the kernel.
        with_kernel(kernel: Kernel);
        /// Sets the tolerance.
        with_tol(tol: f64);
        /// Sets the optimiser's passes.
        with_max_epochs(max_epochs: usize);
        /// Sets the seed.
        with_seed(seed: u64);
    }
}

/// [`Estimator::Svr`] parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SvrParams {
    /// Regularisation (> 0).
    pub c: f64,
    /// Width of the loss-free tube (≥ 0).
    pub epsilon: f64,
    /// The kernel.
    pub kernel: Kernel,
    /// Stopping tolerance.
    pub tol: f64,
}

impl Default for SvrParams {
    fn default() -> Self {
        Self {
            c: 1.0,
            epsilon: 0.1,
            kernel: Kernel::default(),
            tol: 1e-3,
        }
    }
}

impl SvrParams {
    /// scikit-learn's defaults (`C = 1`, `epsilon = 0.1`, RBF with `gamma = "scale"`).
    pub fn new() -> Self {
        Self::default()
    }

    setters! {
        /// Sets `C`.
        with_c(c: f64);
        /// Sets epsilon.
        with_epsilon(epsilon: f64);
        /// Sets the kernel.
        with_kernel(kernel: Kernel);
        /// Sets the tolerance.
        with_tol(tol: f64);
    }
}

/// [`Estimator::KMeans`] parameters; there is no default cluster count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KMeansParams {
    /// Number of clusters (≥ 1).
    pub n_clusters: usize,
    /// Maximum Lloyd iterations.
    #[serde(default = "default_kmeans_iter")]
    pub max_iter: usize,
    /// Seed of the (greedy) k-means++ initialisation.
    #[serde(default)]
    pub seed: u64,
}

fn default_kmeans_iter() -> usize {
    300
}

impl KMeansParams {
    /// `n_clusters` clusters, scikit-learn's other defaults (300 iterations).
    pub fn new(n_clusters: usize) -> Self {
        Self {
            n_clusters,
            max_iter: default_kmeans_iter(),
            seed: 0,
        }
    }

    setters! {
        /// Sets the iteration budget.
        with_max_iter(max_iter: usize);
        /// Sets the seed.
        with_seed(seed: u64);
    }
}

/// A scoring metric (scikit-learn's `scoring`); reported under its [`Scoring::name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Scoring {
    /// Share of correct labels (classifiers).
    Accuracy,
    /// F1 of the greatest label against the rest (binary classifiers).
    F1,
    /// Unweighted mean of per-class F1 (classifiers).
    F1Macro,
    /// Coefficient of determination (regressors).
    R2,
    /// Mean squared error (regressors).
    MeanSquaredError,
    /// Root mean squared error (regressors).
    RootMeanSquaredError,
    /// Mean absolute error (regressors).
    MeanAbsoluteError,
    /// Sum of squared distances to the nearest centroid (k-means; scikit-learn's `score` is
    /// its negation).
    Inertia,
}

impl Scoring {
    /// The name in reported metrics (`valid/accuracy`, `cv/test_r2_mean`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Accuracy => "accuracy",
            Self::F1 => "f1",
            Self::F1Macro => "f1_macro",
            Self::R2 => "r2",
            Self::MeanSquaredError => "mse",
            Self::RootMeanSquaredError => "rmse",
            Self::MeanAbsoluteError => "mae",
            Self::Inertia => "inertia",
        }
    }

    /// The estimator kind the metric applies to.
    pub fn applies_to(self) -> EstimatorKind {
        match self {
            Self::Accuracy | Self::F1 | Self::F1Macro => EstimatorKind::Classifier,
            Self::Inertia => EstimatorKind::Clusterer,
            _ => EstimatorKind::Regressor,
        }
    }
}

/// k-fold cross-validation on the `"train"` dataset (scikit-learn's `KFold`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CvConfig {
    /// Number of folds (≥ 2).
    pub n_splits: usize,
    /// Shuffle rows before cutting folds; `None`: contiguous folds in row order.
    pub shuffle_seed: Option<u64>,
    /// Fit folds in parallel (rayon) rather than one after another.
    pub parallel: bool,
    /// Also score each fold's training part (`cv/train_*` metrics).
    pub return_train_score: bool,
}

impl CvConfig {
    /// `n_splits` contiguous folds, fitted in parallel.
    pub fn new(n_splits: usize) -> Result<Self> {
        if n_splits < 2 {
            return Err(TrainError::InvalidConfig {
                field: "cv.n_splits",
                value: n_splits.to_string(),
                expected: "at least 2 folds".to_owned(),
            });
        }
        Ok(Self {
            n_splits,
            shuffle_seed: None,
            parallel: true,
            return_train_score: false,
        })
    }

    setters! {
        /// Shuffles rows with `seed` before cutting folds.
        with_shuffle(shuffle_seed: u64) as Some;
        /// Fits folds in parallel or not.
        with_parallel(parallel: bool);
    }

    /// Also reports each fold's training score.
    pub fn with_return_train_score(mut self) -> Self {
        self.return_train_score = true;
        self
    }
}
