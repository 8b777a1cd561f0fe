//! # air-tune
//!
//! Hyperparameter tuning for AIR for Rust, Ray Tune's role in Ray AIR.
//!
//! - A param space ([`Space`], written with [`space!`]) nests domains — [`uniform`],
//!   [`quniform`], [`loguniform`], [`qloguniform`], [`randint`] (upper bound exclusive),
//!   [`qrandint`], [`lograndint`], [`randn`], [`qrandn`], [`choice`], [`grid_search`],
//!   [`sample_from`] — anywhere in a JSON-like tree; grid axes form a cross product repeated
//!   `num_samples` times, and a seed makes the whole experiment reproducible.
//! - A [`Tuner`] runs any air-train trainer (the sampled config is merged into its own:
//!   `{"params": {...}}`, `"train_loop_config"`, `"scaling_config"`) or a closure with the
//!   training session, on a pool of threads within the trials' declared resources and
//!   `max_concurrent_trials`, retrying failed trials per the run's `FailureConfig`.
//! - Searchers ([`BasicVariantGenerator`], [`TpeSearch`], [`BayesOptSearch`],
//!   [`ConcurrencyLimiter`], [`Repeater`]), schedulers ([`Fifo`], [`Asha`], [`HyperBand`],
//!   [`MedianStoppingRule`], [`Pbt`]) returning [`Decision`]s, and stoppers.
//! - The experiment state is saved atomically as it runs; [`Tuner::restore`] continues it after
//!   a crash. Results come back as a [`ResultGrid`].
//!
//! ```
//! use air_tune::{Asha, Mode, TuneConfig, Tuner, loguniform, space};
//! use air_train::{RunConfig, Session};
//!
//! let dir = tempfile::tempdir()?;
//! // A trainable: any closure that reports through the session.
//! let train = |config: &serde_json::Value, session: &mut Session| {
//!     let lr = config["lr"].as_f64().unwrap_or(0.1);
//!     let mut loss = 1.0;
//!     for _ in 0..20 {
//!         loss *= 1.0 - lr.min(0.5);
//!         session.report(serde_json::json!({ "loss": loss }), None)?;
//!     }
//!     Ok::<(), air_train::TrainError>(())
//! };
//! let grid = Tuner::new(train, space!({ "lr": loguniform(1e-4, 1e-1) }))
//!     .with_tune_config(
//!         TuneConfig::new()
//!             .with_metric("loss", Mode::Min)
//!             .with_num_samples(std::num::NonZeroUsize::new(6).unwrap())
//!             .with_scheduler(Asha::new().with_max_t(20.0))
//!             .with_seed(7),
//!     )
//!     .with_run_config(RunConfig::new(dir.path().to_str().unwrap()).with_name("lr_sweep"))
//!     .fit()?;
//! let best = grid.best_result()?;
//! println!("best lr {} → loss {}", best.config["lr"], best.metrics["loss"]);
//! assert_eq!(grid.num_errors(), 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// The statistics (TPE's Parzen estimators, the GP, quantiles) read as their formulas; without
// a target FMA feature `f64::mul_add` is a libm call, slower than the plain expression.
#![allow(clippy::suboptimal_flops)]

mod config;
mod error;
mod result;
mod schedule;
mod search;
mod space;
mod stats;
mod status;
mod stopper;
mod trial;
mod tuner;

pub use config::{
    FunctionMarker, FunctionTrainable, IntoTrainable, Mode, Resources, TrainerMarker, TuneConfig,
};
pub use error::{Result, TuneError};
pub use result::{ResultGrid, Scope, TrialResult};
pub use schedule::{
    Asha, Decision, ExploreFn, Fifo, HyperBand, MedianStoppingRule, Pbt, TrialScheduler,
};
pub use search::{
    Acquisition, BasicVariantGenerator, BayesOptSearch, ConcurrencyLimiter, Repeater,
    SearchContext, Searcher, Suggestion, TpeSearch,
};
pub use space::{
    Domain, Key, ParamPath, SampleFn, Space, choice, grid_search, lograndint, loguniform,
    qloguniform, qrandint, qrandn, quniform, randint, randn, sample_from, uniform,
};
pub use stopper::{
    CombinedStopper, ExperimentPlateauStopper, MaximumIterationStopper, MetricThresholdStopper,
    Stopper, TimeoutStopper, TrialPlateauStopper,
};
pub use trial::{Trial, TrialStatus, TrialTable};
pub use tuner::{EXPERIMENT_STATE, ProcessLauncher, TRIAL_VARIABLE, TrialExecutor, Tuner};

/// The training crate this one builds on, re-exported so users name one version of it.
pub use air_train;
