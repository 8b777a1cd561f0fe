//! # air-train
//!
//! Training for AIR for Rust, Ray Train's role in Ray AIR. The crate root is the
//! framework-free runtime; each framework is a module behind a feature of the same name:
//!
//! - The runtime: [`DataParallelTrainer`] runs a train loop on `num_workers` threads, each
//!   with its own [`ComputeDevice`] and its own shard of every dataset, in lockstep through a
//!   [`Collective`] ([`Session::report`] is a barrier). Runs store params, metrics
//!   (`result.json`, `progress.csv`) and `checkpoint_NNNNNN` folders under a local path or URI
//!   ([`RunConfig`], [`CheckpointConfig`]); failed workers restart from the latest checkpoint
//!   ([`FailureConfig`]). [`Trainer`] and [`Trainable`] are what a tuner runs; [`Predictor`]
//!   and [`FromCheckpoint`] what batch prediction and serving load.
//! - [`gbdt`] (feature `gbdt`): gradient-boosted trees with XGBoost's semantics
//!   (`GbdtTrainer`: depth-wise or leaf-wise trees, categorical features, histograms summed
//!   across workers; `GbdtPredictor` with SHAP values, which also serves models saved by
//!   XGBoost and LightGBM).
//! - [`sklearn`] (feature `sklearn`): classical estimators over smartcore with scikit-learn's
//!   objectives (`SklearnTrainer`, optional k-fold cross-validation; `SklearnPredictor`).
//! - [`burn`] (feature `burn`): deep learning on burn 0.21 (`BurnTrainer`, `BurnPredictor`,
//!   gradient sync on the session; `cuda` and `collective` features).
//! - `transformers` (feature `transformers`, with `burn`): pretrained BERT-family encoders from
//!   HuggingFace files (`PretrainedModel`, `TransformersTrainer`, `TransformersPredictor`).
//!
//! `gbdt`, `sklearn` and `burn` are on by default; a crate that only needs the runtime (air-serve, air-tune)
//! depends on air-train with `default-features = false`.

mod callback;
pub mod cluster;
mod collective;
mod config;
mod device;
mod error;
// Helpers shared by the framework modules (a predictor's input stage, the predictions frame):
// each is used by some framework, so a build with only some of them leaves some unused.
#[cfg_attr(
    not(all(feature = "gbdt", feature = "sklearn", feature = "burn")),
    allow(dead_code, unused_imports)
)]
mod predictor;
mod progress;
mod resources;
mod run;
mod run_dir;
mod session;
mod trainer;

#[cfg(feature = "burn")]
pub mod burn;
#[cfg(feature = "gbdt")]
pub mod gbdt;
#[cfg(feature = "sklearn")]
pub mod sklearn;
#[cfg(feature = "transformers")]
pub mod transformers;

pub use callback::{
    Callback, Callbacks, CsvLoggerCallback, JsonLoggerCallback, ResultFiles, TrialContext,
};
pub use collective::{Collective, LocalCollective};
pub use config::{
    CheckpointConfig, FailureConfig, MaxFailures, Mode, RunConfig, ScalingConfig, Verbosity,
};
pub use device::ComputeDevice;
pub use error::{BoxError, Result, TrainError};
pub use predictor::{
    FromCheckpoint, LABEL_COLUMN_KEY, MatrixPredictions, MatrixPredictor, PREDICTIONS,
    PREDICTOR_KIND_KEY, Predictor, TRAIN_COLUMNS_KEY, checkpoint_input_columns, predictions_frame,
    single_column_frame,
};
pub use resources::Resources;
pub use run::{Metrics, default_run_name};
pub use run_dir::{CHECKPOINT_PREFIX, RunDir};
pub use session::Session;
pub use trainer::{
    CollectiveBackend, DataParallelTrainer, DatasetsToSplit, ExistingRun, Ingest, LoopError,
    ReportHook, TrainLoop, TrainResult, Trainable, Trainer, TrialInfo, merge_json,
};

/// The text of a caught panic's payload (what `panic!` was given), for the error that reports
/// it: trainers, tuners and servers turn a panicking worker, trial or predictor into an error.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with a non-string payload".to_owned())
}
