//! # air-track
//!
//! Experiment tracking for AIR's Train and Tune: callbacks ([`air_train::Callback`]) that
//! send each trial's config and results where data scientists already look.
//!
//! - [`TensorBoardCallback`]: TensorBoard event files (scalars per trial, the HParams plugin's
//!   session and experiment data), written with TensorBoard's own record framing and
//!   protobuf messages and checked by reading them back with TensorBoard's Python reader.
//! - [`MlflowCallback`] (built from an [`MlflowConfig`]): a run per trial on an MLflow tracking
//!   server, over its REST API — the config as params, results as metrics per step, tags,
//!   checkpoints as artifacts — sent from a thread of its own; a server that is down costs
//!   warnings, never the run.
//!
//! ```no_run
//! use air_train::RunConfig;
//! use air_track::TensorBoardCallback;
//!
//! let run = RunConfig::new("/tmp/air_results")
//!     .with_name("sweep")
//!     .with_callback(TensorBoardCallback::new());
//! // Tuner::new(trainer, space).with_run_config(run).fit()?;
//! // then: tensorboard --logdir /tmp/air_results/sweep
//! # let _ = run;
//! ```
//!
//! ```no_run
//! use air_track::{Artifacts, MlflowConfig};
//! use air_train::RunConfig;
//!
//! let mlflow = MlflowConfig::new()
//!     .with_tracking_uri("http://127.0.0.1:5000")   // or MLFLOW_TRACKING_URI
//!     .with_artifacts(Artifacts::Checkpoints)
//!     .build()?;
//! let run = RunConfig::new("/tmp/air_results").with_name("sweep").with_callback(mlflow);
//! # let _ = run;
//! # Ok::<(), air_track::TrackError>(())
//! ```

mod error;
pub mod mlflow;
mod proto;
mod tensorboard;
mod tfevents;
mod values;

pub use error::TrackError;
pub use mlflow::{Artifacts, MlflowCallback, MlflowConfig};
pub use tensorboard::TensorBoardCallback;
