//! # air — AIR for Rust
//!
//! Ray AIR's workflow as Rust crates: preprocess data, train, tune, predict in bulk and serve
//! online, in one binary, with every stage speaking the same two currencies: a polars
//! `DataFrame` for data and a `Checkpoint` for models. This facade re-exports each crate behind
//! a cargo feature of the same short name, and air-train's frameworks behind `gbdt`, `sklearn`
//! and `burn` (`collective`, `cuda`). The defaults — `data`, `gbdt`, `tune`, `serve` — are what
//! the quick start needs; `full` turns on everything a CPU machine can test. Depend on single
//! crates (`air-checkpoint`, `air-data`, ...) to pick only what you use.
//!
//! | feature      | crate            | holds                                                |
//! |--------------|------------------|------------------------------------------------------|
//! | `checkpoint` | `air-checkpoint` | `Checkpoint`: files + metadata, memory/dir/URI forms |
//! | `data`       | `air-data`       | `Dataset`, preprocessors (polars)                    |
//! | `train`      | `air-train`      | the training runtime: trainers, session, predictors  |
//! | `gbdt`       | `air-train`      | `air::train::gbdt`: boosted trees, XGBoost models    |
//! | `sklearn`    | `air-train`      | `air::train::sklearn`: classical estimators          |
//! | `burn`       | `air-train`      | `air::train::burn`: deep learning on burn 0.21       |
//! | `tune`       | `air-tune`       | `Tuner`, search spaces, searchers, schedulers        |
//! | `serve`      | `air-serve`      | `BatchPredictor`, `PredictorDeployment`, pipelines   |
//! | `rl`         | `air-rl`         | environments, PPO/DQN/BC, `RLTrainer`, `RLPredictor` |
//! | `track`      | `air-track`      | TensorBoard and MLflow callbacks for Train and Tune  |
//!
//! ```
//! use air::checkpoint::Checkpoint;
//!
//! let ckpt = Checkpoint::from_dict([("model.json", r#"{"trees": []}"#)]).unwrap();
//! ckpt.to_uri("memory://docs/facade").unwrap();
//! assert_eq!(Checkpoint::from_uri("memory://docs/facade").unwrap().len(), 1);
//! ```

#[cfg(feature = "checkpoint")]
#[doc(inline)]
pub use air_checkpoint as checkpoint;
#[cfg(feature = "data")]
#[doc(inline)]
pub use air_data as data;
#[cfg(feature = "rl")]
#[doc(inline)]
pub use air_rl as rl;
#[cfg(feature = "serve")]
#[doc(inline)]
pub use air_serve as serve;
#[cfg(feature = "track")]
#[doc(inline)]
pub use air_track as track;
#[cfg(feature = "train")]
#[doc(inline)]
pub use air_train as train;
#[cfg(feature = "tune")]
#[doc(inline)]
pub use air_tune as tune;
