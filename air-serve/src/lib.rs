//! # air-serve
//!
//! Bulk and online inference for AIR for Rust. It will hold the `BatchPredictor` (streaming
//! prediction over a `Dataset` with separate preprocessing and inference stages), the
//! `PredictorDeployment` (an axum + tokio HTTP server with replicas on dedicated threads,
//! dynamic batching, load shedding, health and Prometheus metrics) and `Pipeline`, a DAG of
//! serving steps.
//!
//! Nothing of it is built yet; the crate exists so the workspace layout and dependency graph
//! (`air-serve` → `air-train`; only this crate sees axum) are fixed from the start.
//!
//! ```
//! // The crate compiles and links against air-train; its API arrives with the serving issue.
//! use air_serve::air_train;
//! ```

/// The training crate this one builds on, re-exported so users name one version of it.
pub use air_train;
