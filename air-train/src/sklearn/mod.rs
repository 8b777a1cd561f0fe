//! Classical estimators (scikit-learn's role) over smartcore: typed [`Estimator`] configs with
//! scikit-learn's names and defaults, [`SklearnTrainer`] with optional k-fold
//! cross-validation, and [`SklearnPredictor`].

mod model;
mod native;
mod params;
mod trainer;

pub use model::{Predictions, SKLEARN_FORMAT_VERSION, SklearnModel};
pub use params::{
    Criterion, CvConfig, DecisionTreeParams, DiscreteNbParams, ElasticNetParams, Estimator,
    EstimatorKind, Gamma, GaussianNbParams, KMeansParams, KNeighborsParams, Kernel, KnnWeights,
    LassoParams, LinearRegressionParams, LinearSolver, LogisticRegressionParams,
    RandomForestParams, RidgeParams, RidgeSolver, Scoring, SvcParams, SvrParams,
};
pub use trainer::{
    PREDICTOR_KIND, SKLEARN_MODEL_ENTRY, SklearnPredictor, SklearnTrainer, load_sklearn_model,
};
