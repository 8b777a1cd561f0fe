//! # air-train
//!
//! Training for AIR for Rust, Ray Train's role in Ray AIR, on [burn] 0.21 through the one
//! concrete backend [`burn::Dispatch`], with the device chosen at run time.
//!
//! Today the crate holds [`ComputeDevice`], the run-time choice of where a worker computes
//! (the flex CPU backend, or CUDA device *i* with the `cuda` feature), which every trainer
//! and predictor will use. It will hold the `Trainer`/`Trainable` traits, the worker session,
//! the scaling/run/checkpoint/failure configs, data-parallel training with gradient
//! all-reduce, gradient-boosted trees, classical estimators and the `Predictor` trait.
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
mod predictor;
mod progress;
mod run;
mod session;
mod trainer;

pub use burn_ext::{MODEL_ENTRY, load_model, save_model};
pub use collective::{Collective, LocalCollective};
pub use config::{
    CheckpointConfig, FailureConfig, MaxFailures, RunConfig, ScalingConfig, ScoreOrder, Verbosity,
};
pub use device::{Backend, ComputeDevice};
pub use error::{Result, TrainError};
pub use predictor::{
    BurnPredictor, FromCheckpoint, MODEL_CONFIG_ENTRY, ModelConfig, PREDICTIONS, Predictor,
    save_burn_model,
};
pub use run::Metrics;
pub use session::Session;
pub use trainer::{
    DataParallelTrainer, DatasetsToSplit, LoopError, ReportHook, TrainLoop, TrainResult, Trainable,
    Trainer, TrialInfo,
};

/// The burn version this workspace is pinned to, re-exported so users name the same types.
pub use burn;
