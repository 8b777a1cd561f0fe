//! # air-data
//!
//! The data layer of AIR for Rust, on [polars]: [`Dataset`], the lazy table that every trainer,
//! tuner and batch predictor consumes (Ray Data's role in Ray AIR).
//!
//! - Create: [`Dataset::read_csv`], [`Dataset::read_parquet`], [`Dataset::read_json`] from a
//!   file, a directory, a glob or a URI (`file://`, `s3://`, `gs://`, `az://`, `memory://`, with
//!   the same [`StorageOptions`] as checkpoints), [`Dataset::from_polars`],
//!   [`Dataset::from_items`], [`Dataset::range`].
//! - Transform: [`Dataset::map_batches`] (a user function over batches, in parallel, order
//!   kept), `filter`, `select_columns`, `drop_columns`, `rename_columns`, `with_column`, `limit`,
//!   `union`, `sort`, `groupby(..).aggregate(..)`, `random_shuffle`, `repartition`.
//! - Split: [`Dataset::train_test_split`], [`Dataset::split`] (worker shards),
//!   [`Dataset::split_at_indices`].
//! - Consume: [`Dataset::iter_batches`] (streaming, bounded memory), `take`, `count`, `schema`,
//!   `show`, `to_polars`, writers, and [`to_f32_matrix`] for tensors and tree learners.
//! - Preprocess: [`Preprocessor`]s fitted on a training dataset and applied as polars
//!   expressions, lazily to datasets or eagerly to one batch ([`StandardScaler`],
//!   [`OneHotEncoder`], [`Chain`], ... checked against scikit-learn), saved into checkpoints as
//!   versioned JSON ([`save_preprocessor`], [`load_preprocessor`]).
//!
//! ```
//! use air_data::{Agg, Dataset, polars::prelude::*};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("scores.parquet");
//! let path = path.to_str().unwrap();
//! Dataset::from_polars(df!(
//!     "team" => ["a", "b", "a", "b"],
//!     "score" => [1.0, 2.0, 3.0, 4.0],
//! )?)
//! .write_parquet(path)?;
//!
//! let ds = Dataset::read_parquet(path)?
//!     .map_batches(|df: DataFrame| df.lazy().with_column(col("score") * lit(10.0)).collect(), 2)?;
//! let means = ds.groupby(&["team"]).aggregate([Agg::mean("score")]).to_polars()?;
//! assert_eq!(means.column("mean(score)")?.f64()?.get(0), Some(20.0));
//!
//! let mut rows = 0;
//! for batch in ds.iter_batches(3)? {
//!     rows += batch?.height();
//! }
//! assert_eq!(rows, 4);
//! # Ok(())
//! # }
//! ```

mod batches;
mod csv_check;
mod csv_fields;
mod dataset;
mod error;
mod exec;
mod matrix;
mod parquet_check;
mod parquet_stats;
mod preprocess;
mod source;
mod synthetic;
mod write;

pub use air_checkpoint::StorageOptions;
pub use batches::{BatchOptions, Batches};
pub use dataset::{Agg, BatchFn, Dataset, GroupedDataset, ShardSizes, TestSize, TrainTestSplit};
pub use error::{DataError, Result};
pub use matrix::{Matrix, to_f32_matrix, to_f32_vector, to_f64_matrix, to_f64_vector};
pub use polars;
pub use preprocess::{
    BatchMapper, Categorizer, Chain, Concatenator, CountVectorizer, CustomKBinsDiscretizer,
    FeatureHasher, FitAggregation, FitStatus, FloatType, HashingVectorizer, ImputeStrategy,
    LabelEncoder, MaxAbsScaler, MinMaxScaler, MultiHotEncoder, NamedPreprocessor, Norm, Normalizer,
    OneHotEncoder, OrdinalEncoder, PREPROCESSOR_ENTRY, PREPROCESSOR_FORMAT_VERSION, PowerMethod,
    PowerTransformer, Preprocessor, PreprocessorClone, QuantileInterpolation, RobustScaler,
    SimpleImputer, StandardScaler, TokenFn, Tokenization, Tokenizer, UniformKBinsDiscretizer,
    VectorOutput, load_preprocessor, preprocessor_from_json, preprocessor_to_json,
    register_batch_fn, register_preprocessor, register_tokenizer, save_preprocessor,
};
pub use source::{CsvOptions, FileFormat, MissingFields};
pub use synthetic::synthetic;
pub use write::write_batches;
