//! `Chain` (preprocessors in sequence) and `BatchMapper` (a named user function on batches).

use std::sync::Arc;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use super::{
    FitStatus, NamedPreprocessor, Preprocessor, preprocessor_from_json, preprocessor_to_json,
    registry,
};
use crate::{
    BatchFn, Dataset,
    error::{DataError, Result},
};

/// Preprocessors applied one after the other; fitting fits each stage on the output of the
/// stages before it.
///
/// ```
/// use air_data::{Chain, Dataset, ImputeStrategy, MinMaxScaler, Preprocessor, SimpleImputer,
///     polars::prelude::*};
///
/// let ds = Dataset::from_polars(df!("x" => [Some(0.0), None, Some(4.0)])?);
/// let mut chain = Chain::new(vec![
///     Box::new(SimpleImputer::new(["x"], ImputeStrategy::Mean)),
///     Box::new(MinMaxScaler::new(["x"])),
/// ]);
/// let out = chain.fit_transform(&ds)?.to_polars()?;
/// let x: Vec<f64> = out.column("x")?.f64()?.into_no_null_iter().collect();
/// assert_eq!(x, [0.0, 0.5, 1.0]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Chain {
    stages: Vec<Box<dyn Preprocessor>>,
}

impl Chain {
    /// A chain of `stages`.
    pub fn new(stages: Vec<Box<dyn Preprocessor>>) -> Self {
        Self { stages }
    }

    /// The stages.
    pub fn stages(&self) -> &[Box<dyn Preprocessor>] {
        &self.stages
    }
}

impl Chain {
    /// Fits the run of stages from `start` whose fits are aggregations over columns disjoint
    /// from the rest of the run, in one pass over `input`; returns where the run ends (`start`
    /// when the stage at `start` is not such a stage).
    fn fit_fused(&mut self, start: usize, input: &Dataset) -> Result<usize> {
        let schema = input.schema()?;
        let mut touched: PlHashSet<String> = PlHashSet::new();
        let mut exprs = Vec::new();
        let mut end = start;
        while let Some(stage) = self.stages.get(end) {
            let Some(agg) = stage.fit_aggregation(&schema)? else {
                break;
            };
            if agg.columns.iter().any(|c| touched.contains(c)) {
                break;
            }
            touched.extend(agg.columns);
            exprs.extend(agg.exprs);
            end += 1;
        }
        if end == start {
            return Ok(start);
        }
        let names: Vec<&str> = self.stages[start..end]
            .iter()
            .map(|s| s.type_name())
            .collect();
        let stats = super::aggregate(input, exprs, &names.join(", "))?;
        for stage in &mut self.stages[start..end] {
            stage.fit_from_aggregation(&stats)?;
        }
        Ok(end)
    }
}

impl NamedPreprocessor for Chain {
    const NAME: &'static str = "Chain";
}

impl Preprocessor for Chain {
    fn type_name(&self) -> &str {
        Self::NAME
    }

    fn fit_status(&self) -> FitStatus {
        let statuses: Vec<FitStatus> = self.stages.iter().map(|s| s.fit_status()).collect();
        let fittable: Vec<FitStatus> = statuses
            .into_iter()
            .filter(|s| *s != FitStatus::NotFittable)
            .collect();
        if fittable.is_empty() {
            FitStatus::NotFittable
        } else if fittable.iter().all(|s| *s == FitStatus::Fitted) {
            FitStatus::Fitted
        } else if fittable.iter().all(|s| *s == FitStatus::NotFitted) {
            FitStatus::NotFitted
        } else {
            FitStatus::PartiallyFitted
        }
    }

    /// Fits each stage on the output of the stages before it. Consecutive stages whose fit is
    /// one aggregation over columns no other stage of the run reads or writes (scalers over
    /// disjoint columns) are fitted together, in one pass over the data: what they read is
    /// what they would have seen one after the other.
    fn fit(&mut self, ds: &Dataset) -> Result<()> {
        let mut current = ds.clone();
        let count = self.stages.len();
        let mut start = 0;
        while start < count {
            let end = self.fit_fused(start, &current)?;
            let end = if end > start {
                end
            } else {
                self.stages[start].fit(&current)?;
                start + 1
            };
            for stage in &self.stages[start..end.min(count - 1)] {
                current = stage.transform(&current)?;
            }
            start = end;
        }
        Ok(())
    }

    fn expressions(&self, lf: LazyFrame) -> Result<LazyFrame> {
        self.stages
            .iter()
            .try_fold(lf, |lf, stage| stage.expressions(lf))
    }

    fn transform(&self, ds: &Dataset) -> Result<Dataset> {
        self.ensure_fitted()?;
        self.stages
            .iter()
            .try_fold(ds.clone(), |ds, stage| stage.transform(&ds))
    }

    fn transform_batch(&self, df: DataFrame) -> Result<DataFrame> {
        self.ensure_fitted()?;
        self.stages
            .iter()
            .try_fold(df, |df, stage| stage.transform_batch(df))
    }

    fn to_config(&self) -> Result<serde_json::Value> {
        let stages = self
            .stages
            .iter()
            .map(|s| preprocessor_to_json(s.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        Ok(serde_json::json!({ "stages": stages }))
    }
}

pub(crate) fn chain_from_config(config: serde_json::Value) -> Result<Box<dyn Preprocessor>> {
    #[derive(Deserialize)]
    struct Config {
        stages: Vec<serde_json::Value>,
    }
    let config: Config =
        serde_json::from_value(config).map_err(|e| DataError::PreprocessorFormat {
            reason: format!("Chain: {e}"),
        })?;
    let stages = config
        .stages
        .into_iter()
        .map(preprocessor_from_json)
        .collect::<Result<Vec<_>>>()?;
    Ok(Box::new(Chain::new(stages)))
}

/// A stateless preprocessor running a user function on batches, registered by name so a
/// checkpoint that uses it can be loaded wherever the same name is registered.
#[derive(Clone, Serialize, Deserialize)]
pub struct BatchMapper {
    name: String,
    batch_size: Option<usize>,
    #[serde(skip)]
    f: Option<Arc<dyn BatchFn>>,
}

impl std::fmt::Debug for BatchMapper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchMapper")
            .field("name", &self.name)
            .field("batch_size", &self.batch_size)
            .finish()
    }
}

impl BatchMapper {
    /// Registers `f` under `name` (see [`register_batch_fn`](super::register_batch_fn)) and
    /// maps batches of `batch_size` rows (`None`: whole blocks) through it.
    pub fn new<F: BatchFn>(name: &str, f: F, batch_size: impl Into<Option<usize>>) -> Self {
        let f: Arc<dyn BatchFn> = Arc::new(f);
        registry::register_batch_arc(name, f.clone());
        Self {
            name: name.to_owned(),
            batch_size: batch_size.into(),
            f: Some(f),
        }
    }

    /// A mapper for a function registered under `name` in this process.
    pub fn by_name(name: &str, batch_size: impl Into<Option<usize>>) -> Result<Self> {
        Ok(Self {
            name: name.to_owned(),
            batch_size: batch_size.into(),
            f: Some(registry::batch_fn(name)?),
        })
    }

    fn function(&self) -> Arc<dyn BatchFn> {
        self.f
            .clone()
            .expect("BatchMapper values are built with their function")
    }
}

impl NamedPreprocessor for BatchMapper {
    const NAME: &'static str = "BatchMapper";
}

impl Preprocessor for BatchMapper {
    fn type_name(&self) -> &str {
        Self::NAME
    }
    fn fit_status(&self) -> FitStatus {
        FitStatus::NotFittable
    }
    fn expressions(&self, lf: LazyFrame) -> Result<LazyFrame> {
        // On a plan the function sees the whole frame as one batch.
        let f = self.function();
        Ok(lf.map(
            move |df: DataFrame| {
                f.call(df)
                    .map_err(|e| PolarsError::ComputeError(e.to_string().into()))
            },
            AllowedOptimizations::empty(),
            None,
            Some(Self::NAME),
        ))
    }
    fn transform(&self, ds: &Dataset) -> Result<Dataset> {
        let f = self.function();
        ds.map_batches(move |df: DataFrame| f.call(df), self.batch_size)
    }
    fn transform_batch(&self, df: DataFrame) -> Result<DataFrame> {
        crate::exec::call_user(self.function().as_ref(), df, 0, 0)
    }
    fn to_config(&self) -> Result<serde_json::Value> {
        super::to_value(self)
    }
}

pub(crate) fn batch_mapper_from_config(config: serde_json::Value) -> Result<Box<dyn Preprocessor>> {
    #[derive(Deserialize)]
    struct Config {
        name: String,
        batch_size: Option<usize>,
    }
    let config: Config =
        serde_json::from_value(config).map_err(|e| DataError::PreprocessorFormat {
            reason: format!("BatchMapper: {e}"),
        })?;
    Ok(Box::new(BatchMapper::by_name(
        &config.name,
        config.batch_size,
    )?))
}
