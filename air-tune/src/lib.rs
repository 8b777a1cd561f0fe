//! # air-tune
//!
//! Hyperparameter tuning for AIR for Rust, Ray Tune's role in Ray AIR. It will hold the
//! `Tuner` (run any `air_train` trainer or closure over a sampled param space), search spaces
//! (`uniform`, `loguniform`, `choice`, `grid_search`, ...), searchers (random/grid, TPE,
//! Bayesian optimisation), schedulers (FIFO, ASHA, HyperBand, median stopping, PBT), stoppers,
//! the `ResultGrid`, and experiment persistence with `Tuner::restore`.
//!
//! Nothing of it is built yet; the crate exists so the workspace layout and dependency graph
//! (`air-tune` → `air-train`) are fixed from the start.
//!
//! ```
//! // The crate compiles and links against air-train; its API arrives with the Tuner issue.
//! use air_tune::air_train;
//! ```

/// The training crate this one builds on, re-exported so users name one version of it.
pub use air_train;
