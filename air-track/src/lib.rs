//! # air-track
//!
//! Experiment tracking for AIR's Train and Tune: callbacks ([`air_train::Callback`]) that
//! send each trial's config and results where data scientists already look.
//!
//! - [`TensorBoardCallback`]: TensorBoard event files (scalars per trial, the HParams plugin's
//!   session and experiment data), written with TensorBoard's own record framing and
//!   protobuf messages and checked by reading them back with TensorBoard's Python reader.
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

mod proto;
mod tensorboard;
mod tfevents;

pub use tensorboard::TensorBoardCallback;
