//! # air-data
//!
//! The data layer of AIR for Rust, built on [polars]. It will hold:
//!
//! - `Dataset`: a lazy polars plan, cheap to clone, with readers (CSV, parquet, JSON, items,
//!   ranges; local paths and `s3://`-style URIs), transforms (`map_batches`, `filter`,
//!   column operations, `random_shuffle`, `repartition`), splits (`train_test_split`,
//!   worker shards) and streaming consumption (`iter_batches`, writers).
//! - `Preprocessor`: Ray AIR's fitted transforms (scalers, encoders, imputers, vectorizers,
//!   discretizers, `Chain`, `BatchMapper`) as polars expressions, saved inside checkpoints.
//!
//! Neither exists yet: this crate currently only fixes the polars version and feature set the
//! whole workspace shares, re-exported as [`polars`] so downstream crates and users name the
//! exact same types.
//!
//! ```
//! use air_data::polars::prelude::*;
//!
//! let df = df!("x" => [1.0f64, 2.0, 3.0]).unwrap();
//! assert_eq!(df.height(), 3);
//! ```

pub use polars;
