//! # air-train
//!
//! Training for AIR for Rust, Ray Train's role in Ray AIR, on [burn] 0.21 through the one
//! concrete backend [`burn::Dispatch`], with the device chosen at run time.
//!
//! - [`DataParallelTrainer`] runs a train loop on `num_workers` threads, each with its own
//!   device ([`ComputeDevice`]: the flex CPU backend, or CUDA device *i* with the `cuda`
//!   feature) and its own shard of every dataset; [`Session::sync_gradients`] averages
//!   gradients through a [`Collective`] so replicas stay identical.
//! - Runs store params, metrics (`result.json`, `progress.csv`) and `checkpoint_NNNNNN`
//!   folders under a local path or URI ([`RunConfig`], [`CheckpointConfig`]); failed workers
//!   restart from the latest checkpoint ([`FailureConfig`]).
//! - [`Predictor`]s rebuild the model from a checkpoint ([`BurnPredictor`] with a
//!   [`ModelConfig`]) and apply the checkpoint's preprocessor first.
//! - [`GbdtTrainer`] boosts trees with XGBoost's semantics (histograms summed across workers);
//!   [`GbdtPredictor`] also serves models saved by Python XGBoost.
//! - [`SklearnTrainer`] fits classical estimators ([`Estimator`], over smartcore, with
//!   scikit-learn's objectives) with optional k-fold cross-validation; [`SklearnPredictor`].
//!
//! ```
//! use air_train::ComputeDevice;
//! use burn::tensor::Tensor;
//!
//! // Train on the CPU: an autodiff-enabled flex device, never `DispatchDevice::default()`.
//! let device = ComputeDevice::Cpu.training_device()?;
//! let x = Tensor::<air_train::Backend, 1>::from_floats([1.0, 2.0, 3.0], &device).require_grad();
//! let grads = (x.clone() * x.clone()).sum().backward();
//! let dx = x.grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap();
//! assert_eq!(dx, vec![2.0, 4.0, 6.0]);
//! # Ok::<(), air_train::TrainError>(())
//! ```

mod burn_ext;
mod collective;
mod config;
mod device;
mod error;
mod gbdt;
mod predictor;
mod progress;
mod run;
mod session;
mod sklearn;
mod trainer;

pub use burn_ext::{MODEL_ENTRY, load_model, save_model};
#[cfg(feature = "collective")]
pub use collective::BurnCollective;
pub use collective::{Collective, LocalCollective};
pub use config::{
    CheckpointConfig, FailureConfig, MaxFailures, RunConfig, ScalingConfig, ScoreOrder, Verbosity,
};
pub use device::{Backend, ComputeDevice};
pub use error::{Result, TrainError};
pub use gbdt::{
    BoostData, EvalMetric, GBDT_FORMAT_VERSION, GBDT_MODEL_ENTRY, GbdtModel, GbdtParams,
    GbdtPredictor, GbdtTrainer, ImportanceType, Objective, RoundReport, Tree, load_gbdt_model,
    train_gbdt,
};
pub use predictor::{
    BurnPredictor, FromCheckpoint, LABEL_COLUMN_KEY, MODEL_CONFIG_ENTRY, ModelConfig, PREDICTIONS,
    Predictor, TRAIN_COLUMNS_KEY, checkpoint_input_columns, save_burn_model,
};
pub use run::{Metrics, default_run_name};
pub use session::Session;
pub use sklearn::{
    Criterion, CvConfig, DecisionTreeParams, DiscreteNbParams, ElasticNetParams, Estimator,
    EstimatorKind, Gamma, GaussianNbParams, KMeansParams, KNeighborsParams, Kernel, KnnWeights,
    LassoParams, LinearRegressionParams, LinearSolver, LogisticRegressionParams, Predictions,
    RandomForestParams, RidgeParams, RidgeSolver, SKLEARN_FORMAT_VERSION, SKLEARN_MODEL_ENTRY,
    Scoring, SklearnModel, SklearnPredictor, SklearnTrainer, SvcParams, SvrParams,
    load_sklearn_model,
};
pub use trainer::{
    BurnTrainer, CollectiveBackend, DataParallelTrainer, DatasetsToSplit, LoopError, ReportHook,
    TrainLoop, TrainResult, Trainable, Trainer, TrialInfo,
};

/// The burn version this workspace is pinned to, re-exported so users name the same types.
pub use burn;
