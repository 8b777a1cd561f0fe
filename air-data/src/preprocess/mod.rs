//! Preprocessors: statistics fitted on training data, applied as polars expressions.
//!
//! A [`Preprocessor`] is fitted once (one streaming aggregation over the data where the
//! statistic allows) and then rewrites plans: [`Preprocessor::transform`] appends its
//! expressions to a dataset's lazy plan, [`Preprocessor::transform_batch`] runs the same
//! expressions on one in-memory batch (the serving path). Fitted state saves into a
//! [`Checkpoint`] as versioned JSON and loads back through a registry of type names, so a model's
//! preprocessing travels with it and never runs code from the checkpoint.

mod chain;
mod discretize;
mod encoders;
mod impute;
mod registry;
mod scalers;
mod text;
mod vectorize;

use std::{fmt, sync::Arc};

use air_checkpoint::Checkpoint;
use polars::prelude::*;
use serde::{Deserialize, Serialize};

pub use chain::{BatchMapper, Chain};
pub use discretize::{CustomKBinsDiscretizer, UniformKBinsDiscretizer};
pub use encoders::{
    Categorizer, Concatenator, FloatType, LabelEncoder, OneHotEncoder, OrdinalEncoder,
};
pub use impute::{ImputeStrategy, SimpleImputer};
pub use registry::{register_batch_fn, register_preprocessor, register_tokenizer};
pub use scalers::{
    MaxAbsScaler, MinMaxScaler, Norm, Normalizer, PowerMethod, PowerTransformer,
    QuantileInterpolation, RobustScaler, StandardScaler,
};
pub use text::{TokenFn, Tokenization, Tokenizer};
pub use vectorize::{
    CountVectorizer, FeatureHasher, HashingVectorizer, MultiHotEncoder, VectorOutput,
};

use crate::{
    Dataset,
    dataset::column_not_found,
    error::{DataError, Result},
};

/// The name of the entry a preprocessor is saved under in a checkpoint.
pub const PREPROCESSOR_ENTRY: &str = "preprocessor.json";
/// The version of the saved format; loaders refuse newer versions.
pub const PREPROCESSOR_FORMAT_VERSION: u32 = 1;
const FORMAT_TAG: &str = "air.preprocessor";

/// Whether a preprocessor has its statistics (Ray's `FitStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FitStatus {
    /// Stateless: transforms without fitting.
    NotFittable,
    /// Needs `fit` before `transform`.
    NotFitted,
    /// A [`Chain`] whose stages are fitted only in part.
    PartiallyFitted,
    /// Ready to transform.
    Fitted,
}

/// Copies a boxed preprocessor (a blanket impl covers every `Clone` preprocessor).
pub trait PreprocessorClone {
    /// A boxed copy.
    fn clone_box(&self) -> Box<dyn Preprocessor>;
}

impl<T: Preprocessor + Clone + 'static> PreprocessorClone for T {
    fn clone_box(&self) -> Box<dyn Preprocessor> {
        Box::new(self.clone())
    }
}

/// A fitted transform of a dataset's columns (Ray AIR's `Preprocessor`).
///
/// Implement [`type_name`](Self::type_name), [`fit_status`](Self::fit_status),
/// [`fit`](Self::fit) (if fittable), [`expressions`](Self::expressions) and
/// [`to_config`](Self::to_config); the rest is provided. Give the type a
/// [`NamedPreprocessor::NAME`] (returned by `type_name`) and register it with
/// [`register_preprocessor`] so checkpoints holding it can be loaded.
///
/// ```
/// use air_data::{Dataset, FitStatus, Preprocessor, StandardScaler, polars::prelude::*};
///
/// let train = Dataset::from_polars(df!("x" => [1.0, 2.0, 3.0])?);
/// let mut scaler = StandardScaler::new(["x"]);
/// assert_eq!(scaler.fit_status(), FitStatus::NotFitted);
/// let scaled = scaler.fit_transform(&train)?.to_polars()?;
/// let x: Vec<f64> = scaled.column("x")?.f64()?.into_no_null_iter().collect();
/// let s = (2.0f64 / 3.0).sqrt();
/// assert_eq!(x, [-1.0 / s, 0.0, 1.0 / s]);
/// // The serving path: the same expressions on one batch.
/// let one = scaler.transform_batch(df!("x" => [2.0])?)?;
/// assert_eq!(one.column("x")?.f64()?.get(0), Some(0.0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Preprocessor: PreprocessorClone + Send + Sync + fmt::Debug {
    /// The name this type is registered and saved under (`"StandardScaler"`).
    fn type_name(&self) -> &str;

    /// Whether [`fit`](Self::fit) has run.
    fn fit_status(&self) -> FitStatus;

    /// Computes the statistics from `ds` (a no-op for stateless preprocessors). Fitting again
    /// replaces the statistics.
    fn fit(&mut self, ds: &Dataset) -> Result<()> {
        let _ = ds;
        Ok(())
    }

    /// Appends the transform's expressions to a plan: [`DataError::NotFitted`] before
    /// [`fit`](Self::fit) (never a panic).
    fn expressions(&self, lf: LazyFrame) -> Result<LazyFrame>;

    /// Parameters and fitted state as JSON (what a checkpoint stores).
    fn to_config(&self) -> Result<serde_json::Value>;

    /// The fit as one aggregation, where it is one: the expressions computing the statistics
    /// (each aliased with its column's name, so no two preprocessors' collide over disjoint
    /// columns) and the columns they read, which the transform rewrites in place, row for row,
    /// touching no other column. [`Chain`] fits consecutive such stages over disjoint columns in
    /// one pass over the data. Checks the columns against `schema` (the input's). `None`, the
    /// default: fitting needs [`fit`](Self::fit).
    fn fit_aggregation(&self, schema: &Schema) -> Result<Option<FitAggregation>> {
        let _ = schema;
        Ok(None)
    }

    /// Takes the statistics that [`fit_aggregation`](Self::fit_aggregation)'s expressions
    /// computed: one row, which may hold other preprocessors' columns too. Equivalent to
    /// [`fit`](Self::fit) on the data the aggregation ran over.
    fn fit_from_aggregation(&mut self, stats: &DataFrame) -> Result<()> {
        let _ = stats;
        Err(DataError::InvalidPreprocessor {
            preprocessor: self.type_name().to_owned(),
            reason: "its fit is not one aggregation (fit_aggregation returns None); call fit"
                .to_owned(),
        })
    }

    /// Fails with [`DataError::NotFitted`] unless the preprocessor can transform.
    fn ensure_fitted(&self) -> Result<()> {
        match self.fit_status() {
            FitStatus::Fitted | FitStatus::NotFittable => Ok(()),
            FitStatus::NotFitted | FitStatus::PartiallyFitted => Err(DataError::NotFitted {
                preprocessor: self.type_name().to_owned(),
            }),
        }
    }

    /// The transformed dataset: the expressions appended to its plan, nothing run yet.
    fn transform(&self, ds: &Dataset) -> Result<Dataset> {
        self.ensure_fitted()?;
        let me: Arc<dyn Preprocessor> = Arc::from(self.clone_box());
        let name = self.type_name().to_owned();
        Ok(ds.pipe(&name, true, move |lf| me.expressions(lf)))
    }

    /// The same transform on one in-memory batch (the predictor and serving path). A value of
    /// the wrong type is named with its column, row and value.
    fn transform_batch(&self, df: DataFrame) -> Result<DataFrame> {
        self.ensure_fitted()?;
        let input = df.clone();
        self.expressions(df.lazy())
            .map_err(|e| e.with_value_from(&input))?
            .collect()
            .map_err(|e| DataError::Polars {
                context: format!("{} transform_batch", self.type_name()),
                source: e,
            })
    }

    /// [`fit`](Self::fit) then [`transform`](Self::transform).
    fn fit_transform(&mut self, ds: &Dataset) -> Result<Dataset> {
        self.fit(ds)?;
        self.transform(ds)
    }
}

/// A fit that is one aggregation over the input (see [`Preprocessor::fit_aggregation`]).
#[derive(Debug, Clone)]
pub struct FitAggregation {
    /// The columns read, and rewritten in place by the transform.
    pub columns: Vec<String>,
    /// The statistics, each one value per expression.
    pub exprs: Vec<Expr>,
}

/// A preprocessor type's fixed name: what each instance's
/// [`type_name`](Preprocessor::type_name) returns and what the registry loads it under (one
/// source for both; see [`register_preprocessor`]).
pub trait NamedPreprocessor {
    /// The name (`"StandardScaler"`).
    const NAME: &'static str;
}

impl Clone for Box<dyn Preprocessor> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}

/// The saved form: a format tag, a version, the type name and its configuration.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Saved {
    format: String,
    version: u32,
    #[serde(rename = "type")]
    type_name: String,
    config: serde_json::Value,
}

/// A preprocessor as versioned JSON.
pub fn preprocessor_to_json(p: &dyn Preprocessor) -> Result<serde_json::Value> {
    let saved = Saved {
        format: FORMAT_TAG.to_owned(),
        version: PREPROCESSOR_FORMAT_VERSION,
        type_name: p.type_name().to_owned(),
        config: p.to_config()?,
    };
    serde_json::to_value(saved).map_err(|e| DataError::PreprocessorFormat {
        reason: e.to_string(),
    })
}

/// Rebuilds a preprocessor from [`preprocessor_to_json`]'s output (any registered type).
pub fn preprocessor_from_json(value: serde_json::Value) -> Result<Box<dyn Preprocessor>> {
    let saved: Saved =
        serde_json::from_value(value).map_err(|e| DataError::PreprocessorFormat {
            reason: format!("not a saved preprocessor ({e})"),
        })?;
    if saved.format != FORMAT_TAG {
        return Err(DataError::PreprocessorFormat {
            reason: format!("format tag {:?}, expected {FORMAT_TAG:?}", saved.format),
        });
    }
    if saved.version > PREPROCESSOR_FORMAT_VERSION {
        return Err(DataError::PreprocessorFormat {
            reason: format!(
                "format version {} is newer than this build reads ({PREPROCESSOR_FORMAT_VERSION}); \
                 upgrade air-data",
                saved.version
            ),
        });
    }
    registry::construct(&saved.type_name, saved.config)
}

/// Saves a (fitted) preprocessor into `checkpoint` as [`PREPROCESSOR_ENTRY`].
pub fn save_preprocessor(p: &dyn Preprocessor, checkpoint: &mut Checkpoint) -> Result<()> {
    let json = preprocessor_to_json(p)?;
    checkpoint.put_json(PREPROCESSOR_ENTRY, &json)?;
    Ok(())
}

/// Loads the preprocessor saved in `checkpoint`, if it holds one.
pub fn load_preprocessor(checkpoint: &Checkpoint) -> Result<Option<Box<dyn Preprocessor>>> {
    if !checkpoint.contains(PREPROCESSOR_ENTRY) {
        return Ok(None);
    }
    let json: serde_json::Value = checkpoint.get_verified_json(PREPROCESSOR_ENTRY)?;
    preprocessor_from_json(json).map(Some)
}

// ----- helpers shared by the built-ins -----

/// Implements [`NamedPreprocessor`] and [`Preprocessor`] for a built-in, so that the name, the
/// fit status, the `NotFitted` check and the saved config are written once, here:
///
/// - `impl_preprocessor!(Type, "Name", field)`: the fitted state is `field: Option<S>`, learned by the
///   type's `fn learn(&self, &Dataset) -> Result<S>` and used by its
///   `fn apply(&self, LazyFrame, &S) -> Result<LazyFrame>`.
/// - `impl_preprocessor!(Type, "Name", field, aggregation)`: as above, but the statistics are one
///   aggregation over the type's `columns` (numeric): `fn stat_exprs(&self) -> Result<Vec<Expr>>`
///   and `fn read_stats(&self, &DataFrame) -> Result<S>`, so a [`Chain`] can fuse its fit with
///   its neighbours'.
/// - `impl_preprocessor!(Type, "Name")`: nothing to learn (`NotFittable`); the type has
///   `fn apply(&self, LazyFrame) -> Result<LazyFrame>`.
macro_rules! impl_preprocessor {
    ($ty:ty, $name:literal, $state:ident) => {
        $crate::preprocess::impl_preprocessor!(@fitted $ty, $name, $state, {
            fn fit(&mut self, ds: &$crate::Dataset) -> $crate::error::Result<()> {
                self.$state = Some(self.learn(ds)?);
                Ok(())
            }
        });
    };
    ($ty:ty, $name:literal, $state:ident, aggregation) => {
        $crate::preprocess::impl_preprocessor!(@fitted $ty, $name, $state, {
            fn fit(&mut self, ds: &$crate::Dataset) -> $crate::error::Result<()> {
                let schema = ds.schema()?;
                let agg = $crate::preprocess::Preprocessor::fit_aggregation(self, &schema)?
                    .expect("always one aggregation");
                let stats = match self.stats_from_footers(ds) {
                    Some(stats) => stats,
                    None => $crate::preprocess::aggregate(ds, agg.exprs, $name)?,
                };
                self.$state = Some(self.read_stats(&stats)?);
                Ok(())
            }
            fn fit_aggregation(
                &self,
                schema: &::polars::prelude::Schema,
            ) -> $crate::error::Result<Option<$crate::preprocess::FitAggregation>> {
                $crate::preprocess::check_numeric_schema(schema, &self.columns, $name)?;
                Ok(Some($crate::preprocess::FitAggregation {
                    columns: self.columns.clone(),
                    exprs: self.stat_exprs()?,
                }))
            }
            fn fit_from_aggregation(
                &mut self,
                stats: &::polars::prelude::DataFrame,
            ) -> $crate::error::Result<()> {
                self.$state = Some(self.read_stats(stats)?);
                Ok(())
            }
        });
    };
    // What both fitted forms share; `$fit` holds their fitting methods.
    (@fitted $ty:ty, $name:literal, $state:ident, { $($fit:tt)* }) => {
        impl $crate::preprocess::NamedPreprocessor for $ty {
            const NAME: &'static str = $name;
        }

        impl $crate::preprocess::Preprocessor for $ty {
            fn type_name(&self) -> &str {
                $name
            }
            fn fit_status(&self) -> $crate::preprocess::FitStatus {
                match self.$state {
                    Some(_) => $crate::preprocess::FitStatus::Fitted,
                    None => $crate::preprocess::FitStatus::NotFitted,
                }
            }
            $($fit)*
            fn expressions(
                &self,
                lf: ::polars::prelude::LazyFrame,
            ) -> $crate::error::Result<::polars::prelude::LazyFrame> {
                self.apply(lf, $crate::preprocess::fitted(&self.$state, $name)?)
            }
            fn to_config(&self) -> $crate::error::Result<serde_json::Value> {
                $crate::preprocess::to_value(self)
            }
        }
    };
    ($ty:ty, $name:literal) => {
        impl $crate::preprocess::NamedPreprocessor for $ty {
            const NAME: &'static str = $name;
        }

        impl $crate::preprocess::Preprocessor for $ty {
            fn type_name(&self) -> &str {
                $name
            }
            fn fit_status(&self) -> $crate::preprocess::FitStatus {
                $crate::preprocess::FitStatus::NotFittable
            }
            fn expressions(
                &self,
                lf: ::polars::prelude::LazyFrame,
            ) -> $crate::error::Result<::polars::prelude::LazyFrame> {
                self.apply(lf)
            }
            fn to_config(&self) -> $crate::error::Result<serde_json::Value> {
                $crate::preprocess::to_value(self)
            }
        }
    };
}
pub(crate) use impl_preprocessor;

/// Checks that `columns` exist in `ds` and returns its schema.
/// The fitted state of `preprocessor`, or [`DataError::NotFitted`] naming it: what
/// [`Preprocessor::expressions`] reads, which a caller may reach before `fit`.
pub(crate) fn fitted<'a, T>(state: &'a Option<T>, preprocessor: &str) -> Result<&'a T> {
    state.as_ref().ok_or_else(|| DataError::NotFitted {
        preprocessor: preprocessor.to_owned(),
    })
}

pub(crate) fn check_columns(
    ds: &Dataset,
    columns: &[String],
    preprocessor: &str,
) -> Result<Schema> {
    let schema = ds.schema()?;
    check_schema(&schema, columns, preprocessor)?;
    Ok(schema)
}

pub(crate) fn check_schema(schema: &Schema, columns: &[String], preprocessor: &str) -> Result<()> {
    for c in columns {
        if schema.get(c).is_none() {
            return Err(column_not_found(c, preprocessor, schema));
        }
    }
    Ok(())
}

/// Whether a column of `dtype` holds numbers a numeric preprocessor may cast to `Float64`
/// (an all-null column too); strings and lists do not: casting them would turn every value
/// into a silent null.
fn is_numeric(dtype: &DataType) -> bool {
    dtype.is_primitive_numeric() || dtype.is_bool() || dtype.is_null()
}

/// Checks that `columns` exist in `schema` and hold numbers.
pub(crate) fn check_numeric_schema(
    schema: &Schema,
    columns: &[String],
    preprocessor: &str,
) -> Result<()> {
    check_schema(schema, columns, preprocessor)?;
    for c in columns {
        let dtype = schema.get(c).expect("checked above");
        if !is_numeric(dtype) {
            return Err(DataError::NonNumericColumn {
                column: c.clone(),
                dtype: dtype.to_string(),
                found: None,
            });
        }
    }
    Ok(())
}

/// [`check_columns`] for numeric preprocessors: the columns must hold numbers.
pub(crate) fn check_numeric_columns(
    ds: &Dataset,
    columns: &[String],
    preprocessor: &str,
) -> Result<Schema> {
    let schema = ds.schema()?;
    check_numeric_schema(&schema, columns, preprocessor)?;
    Ok(schema)
}

/// [`check_lazy`] for numeric preprocessors: the columns must hold numbers.
pub(crate) fn check_numeric_lazy(
    lf: &mut LazyFrame,
    columns: &[String],
    preprocessor: &str,
) -> Result<()> {
    check_numeric_schema(&*lazy_schema(lf, preprocessor)?, columns, preprocessor)
}

/// Checks the columns of a plan about to be transformed.
pub(crate) fn check_lazy(lf: &mut LazyFrame, columns: &[String], preprocessor: &str) -> Result<()> {
    check_schema(&*lazy_schema(lf, preprocessor)?, columns, preprocessor)
}

fn lazy_schema(lf: &mut LazyFrame, preprocessor: &str) -> Result<SchemaRef> {
    lf.collect_schema().map_err(|e| DataError::Polars {
        context: format!("{preprocessor}: resolving the input's columns"),
        source: e,
    })
}

/// Runs aggregation expressions over the whole dataset in one pass. Pure polars plans use the
/// streaming engine, so files larger than memory are fitted with bounded memory.
pub(crate) fn aggregate(ds: &Dataset, exprs: Vec<Expr>, preprocessor: &str) -> Result<DataFrame> {
    let err = |e| DataError::Polars {
        context: format!("fitting {preprocessor}"),
        source: e,
    };
    match ds.to_lazy()? {
        Some(lf) => lf
            .select(exprs)
            .collect_with_engine(Engine::Streaming)
            .map(|r| r.unwrap_single())
            .map_err(err),
        None => ds.to_polars()?.lazy().select(exprs).collect().map_err(err),
    }
}

/// The value of a one-row aggregation column as f64 (None for null).
pub(crate) fn scalar_f64(df: &DataFrame, name: &str) -> Result<Option<f64>> {
    let c = df
        .column(name)
        .and_then(|c| c.cast(&DataType::Float64))
        .map_err(|e| DataError::Polars {
            context: format!("reading statistic {name}"),
            source: e,
        })?;
    Ok(c.f64().ok().and_then(|ca| ca.get(0)))
}

/// An expression that fails the query with `message` if `column` holds a null, and otherwise
/// passes the column through (encoders cannot encode nulls).
pub(crate) fn reject_nulls(column: &str, preprocessor: &str) -> Expr {
    let message = DataError::NullsNotAllowed {
        preprocessor: preprocessor.to_owned(),
        column: column.to_owned(),
    }
    .to_string();
    col(column).map(
        move |c: Column| {
            if c.null_count() > 0 {
                Err(PolarsError::ComputeError(message.clone().into()))
            } else {
                Ok(c)
            }
        },
        |_, field| Ok(field.clone()),
    )
}

/// Serialises a built-in's config.
pub(crate) fn to_value<T: Serialize>(value: &T) -> Result<serde_json::Value> {
    serde_json::to_value(value).map_err(|e| DataError::PreprocessorFormat {
        reason: e.to_string(),
    })
}

/// Shorthand for column-name lists.
pub(crate) fn names<S: AsRef<str>>(columns: impl IntoIterator<Item = S>) -> Vec<String> {
    columns.into_iter().map(|c| c.as_ref().to_owned()).collect()
}
