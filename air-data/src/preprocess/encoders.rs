//! Categorical encoders (ordinal, one-hot, label) and the `Concatenator`.
//!
//! Categories are the sorted distinct non-null values seen by `fit`. Values not seen by `fit`
//! encode to null (ordinal, label) or all zeros (one-hot). Nulls cannot be encoded: `fit` and
//! `transform` fail with a message that says to impute first.

use std::{collections::BTreeMap, sync::Arc};

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use super::{
    NamedPreprocessor, check_columns, check_lazy, impl_preprocessor, impute::json_lit, names,
    reject_nulls,
};
use crate::{
    Dataset,
    dataset::column_not_found,
    error::{DataError, Result},
};

/// Distinct values of one column with their counts, sorted by value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Categories {
    values: Vec<serde_json::Value>,
}

impl Categories {
    /// The values as a polars series of the column's kind.
    fn series(&self, name: &str) -> Series {
        let name: PlSmallStr = name.into();
        if self.values.iter().all(serde_json::Value::is_string) {
            let v: Vec<&str> = self.values.iter().filter_map(|v| v.as_str()).collect();
            Series::new(name, v)
        } else if self.values.iter().all(serde_json::Value::is_boolean) {
            let v: Vec<bool> = self
                .values
                .iter()
                .filter_map(serde_json::Value::as_bool)
                .collect();
            Series::new(name, v)
        } else if self.values.iter().all(|v| v.as_i64().is_some()) {
            let v: Vec<i64> = self
                .values
                .iter()
                .filter_map(serde_json::Value::as_i64)
                .collect();
            Series::new(name, v)
        } else {
            let v: Vec<f64> = self
                .values
                .iter()
                .filter_map(serde_json::Value::as_f64)
                .collect();
            Series::new(name, v)
        }
    }

    fn label(value: &serde_json::Value) -> String {
        match value {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
}

/// Counts of each distinct value of `column`, sorted by value; nulls are an error.
fn value_counts(
    ds: &Dataset,
    column: &str,
    preprocessor: &str,
) -> Result<(Vec<serde_json::Value>, Vec<u64>)> {
    let counted = ds
        .select_columns(&[column])
        .groupby(&[column])
        .count()
        .to_polars()?;
    let values = counted.column(column).expect("grouped column");
    if values.null_count() > 0 {
        return Err(DataError::NullsNotAllowed {
            preprocessor: preprocessor.to_owned(),
            column: column.to_owned(),
        });
    }
    let counts = counted
        .column("count()")
        .and_then(|c| c.cast(&DataType::UInt64))
        .map_err(|e| DataError::Polars {
            context: format!("fitting {preprocessor}"),
            source: e,
        })?;
    let counts: Vec<u64> = counts.u64().expect("cast").into_no_null_iter().collect();
    let values = (0..values.len())
        .map(|i| super::impute::json_of(&values.slice(i as i64, 1)))
        .collect();
    Ok((values, counts))
}

fn encode_expr(column: &str, cats: &Categories, preprocessor: &str) -> Expr {
    let old = cats.series("old");
    let new = Series::new(
        "new".into(),
        (0..cats.values.len() as i64).collect::<Vec<_>>(),
    );
    reject_nulls(column, preprocessor).replace_strict(
        lit(old),
        lit(new),
        Some(lit(NULL).cast(DataType::Int64)),
        Some(DataType::Int64),
    )
}

/// Encodes each column's values as their index among the sorted categories (`Int64`; unseen
/// values become null).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrdinalEncoder {
    columns: Vec<String>,
    stats: Option<BTreeMap<String, Categories>>,
}

impl OrdinalEncoder {
    /// Encodes `columns`.
    pub fn new<S: AsRef<str>>(columns: impl IntoIterator<Item = S>) -> Self {
        Self {
            columns: names(columns),
            stats: None,
        }
    }

    /// The sorted categories of `column`, once fitted.
    pub fn categories(&self, column: &str) -> Option<&[serde_json::Value]> {
        Some(&self.stats.as_ref()?.get(column)?.values)
    }
}

impl OrdinalEncoder {
    fn learn(&self, ds: &Dataset) -> Result<BTreeMap<String, Categories>> {
        check_columns(ds, &self.columns, Self::NAME)?;
        let mut stats = BTreeMap::new();
        for c in &self.columns {
            let (values, _) = value_counts(ds, c, Self::NAME)?;
            stats.insert(c.clone(), Categories { values });
        }
        Ok(stats)
    }

    fn apply(&self, lf: LazyFrame, stats: &BTreeMap<String, Categories>) -> Result<LazyFrame> {
        let mut lf = lf;
        check_lazy(&mut lf, &self.columns, Self::NAME)?;
        let exprs: Vec<Expr> = stats
            .iter()
            .map(|(c, cats)| encode_expr(c, cats, Self::NAME).alias(c.as_str()))
            .collect();
        Ok(lf.with_columns(exprs))
    }
}

impl_preprocessor!(OrdinalEncoder, "OrdinalEncoder", stats);

/// Replaces each column by one 0/1 `Int64` column per category, named `{column}_{value}`
/// (categories sorted). Unseen values, and values outside the `max_categories` most frequent,
/// encode to all zeros.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OneHotEncoder {
    columns: Vec<String>,
    max_categories: BTreeMap<String, usize>,
    stats: Option<BTreeMap<String, Categories>>,
}

impl OneHotEncoder {
    /// Encodes `columns`, keeping every category.
    pub fn new<S: AsRef<str>>(columns: impl IntoIterator<Item = S>) -> Self {
        Self {
            columns: names(columns),
            max_categories: BTreeMap::new(),
            stats: None,
        }
    }

    /// Keeps only the `max` most frequent categories of `column` (ties to the smaller value).
    pub fn with_max_categories(mut self, column: &str, max: usize) -> Self {
        self.max_categories.insert(column.to_owned(), max);
        self
    }

    /// The output column names, once fitted.
    pub fn output_columns(&self) -> Option<Vec<String>> {
        let stats = self.stats.as_ref()?;
        Some(
            self.columns
                .iter()
                .flat_map(|c| {
                    stats[c]
                        .values
                        .iter()
                        .map(move |v| format!("{c}_{}", Categories::label(v)))
                })
                .collect(),
        )
    }
}

impl OneHotEncoder {
    fn learn(&self, ds: &Dataset) -> Result<BTreeMap<String, Categories>> {
        let schema = check_columns(ds, &self.columns, Self::NAME)?;
        for c in self.max_categories.keys() {
            if !self.columns.contains(c) {
                return Err(column_not_found(c, "OneHotEncoder max_categories", &schema));
            }
        }
        let mut stats = BTreeMap::new();
        for c in &self.columns {
            let (mut values, counts) = value_counts(ds, c, Self::NAME)?;
            if let Some(&max) = self.max_categories.get(c)
                && max < values.len()
            {
                // Most frequent first; the stable sort keeps value order among ties.
                let mut order: Vec<usize> = (0..values.len()).collect();
                order.sort_by(|&a, &b| counts[b].cmp(&counts[a]));
                let mut keep: Vec<usize> = order.into_iter().take(max).collect();
                keep.sort_unstable();
                values = keep.into_iter().map(|i| values[i].clone()).collect();
            }
            stats.insert(c.clone(), Categories { values });
        }
        Ok(stats)
    }

    fn apply(&self, lf: LazyFrame, stats: &BTreeMap<String, Categories>) -> Result<LazyFrame> {
        let mut lf = lf;
        check_lazy(&mut lf, &self.columns, Self::NAME)?;
        let mut exprs = Vec::new();
        for c in &self.columns {
            let checked = reject_nulls(c, Self::NAME);
            for v in &stats[c].values {
                exprs.push(
                    checked
                        .clone()
                        .eq(json_lit(v)?)
                        .cast(DataType::Int64)
                        .alias(format!("{c}_{}", Categories::label(v))),
                );
            }
        }
        Ok(lf.with_columns(exprs).drop(by_name(
            self.columns.iter().map(String::as_str),
            true,
            false,
        )))
    }
}

impl_preprocessor!(OneHotEncoder, "OneHotEncoder", stats);

/// Encodes a label column as the index of its value among the sorted labels (`Int64`; unseen
/// labels become null), with [`inverse_transform_batch`](Self::inverse_transform_batch) back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelEncoder {
    label_column: String,
    stats: Option<Categories>,
}

impl LabelEncoder {
    /// Encodes `label_column`.
    pub fn new(label_column: &str) -> Self {
        Self {
            label_column: label_column.to_owned(),
            stats: None,
        }
    }

    /// The sorted labels, once fitted.
    pub fn classes(&self) -> Option<&[serde_json::Value]> {
        Some(&self.stats.as_ref()?.values)
    }

    fn inverse_expr(&self) -> Result<Expr> {
        let cats = self.stats.as_ref().ok_or_else(|| DataError::NotFitted {
            preprocessor: "LabelEncoder".to_owned(),
        })?;
        let codes = Series::new(
            "codes".into(),
            (0..cats.values.len() as i64).collect::<Vec<_>>(),
        );
        Ok(col(self.label_column.as_str())
            .cast(DataType::Int64)
            .replace_strict(
                lit(codes),
                lit(cats.series("labels")),
                Some(lit(NULL)),
                None::<DataType>,
            )
            .alias(self.label_column.as_str()))
    }

    /// Codes back to labels, on a dataset.
    pub fn inverse_transform(&self, ds: &Dataset) -> Result<Dataset> {
        let expr = self.inverse_expr()?;
        Ok(ds.pipe("LabelEncoder.inverse", true, move |lf| {
            Ok(lf.with_column(expr.clone()))
        }))
    }

    /// Codes back to labels, on one batch.
    pub fn inverse_transform_batch(&self, df: DataFrame) -> Result<DataFrame> {
        df.lazy()
            .with_column(self.inverse_expr()?)
            .collect()
            .map_err(|e| DataError::Polars {
                context: "LabelEncoder inverse_transform".to_owned(),
                source: e,
            })
    }
}

impl LabelEncoder {
    fn learn(&self, ds: &Dataset) -> Result<Categories> {
        check_columns(ds, std::slice::from_ref(&self.label_column), Self::NAME)?;
        let (values, _) = value_counts(ds, &self.label_column, Self::NAME)?;
        Ok(Categories { values })
    }

    fn apply(&self, lf: LazyFrame, stats: &Categories) -> Result<LazyFrame> {
        let mut lf = lf;
        check_lazy(
            &mut lf,
            std::slice::from_ref(&self.label_column),
            Self::NAME,
        )?;
        let cats = stats;
        let c = self.label_column.as_str();
        Ok(lf.with_column(encode_expr(c, cats, Self::NAME).alias(c)))
    }
}

impl_preprocessor!(LabelEncoder, "LabelEncoder", stats);

/// The element type of [`Concatenator`]'s output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FloatType {
    /// `f32` (what tensors want).
    F32,
    /// `f64`.
    F64,
}

/// Merges numeric columns into one fixed-size array column (Ray's tensor column) and drops
/// them. Stateless.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Concatenator {
    output_column_name: String,
    include: Option<Vec<String>>,
    exclude: Vec<String>,
    dtype: FloatType,
}

impl Default for Concatenator {
    fn default() -> Self {
        Self::new()
    }
}

impl Concatenator {
    /// Concatenates every column into `concat_out` as `f32`.
    pub fn new() -> Self {
        Self {
            output_column_name: "concat_out".to_owned(),
            include: None,
            exclude: Vec::new(),
            dtype: FloatType::F32,
        }
    }

    /// Only these columns, in this order.
    pub fn with_include<S: AsRef<str>>(mut self, columns: impl IntoIterator<Item = S>) -> Self {
        self.include = Some(names(columns));
        self
    }

    /// All columns but these (for example the label); excluded columns that are absent are
    /// ignored, so a plan that excludes the label also serves batches without it.
    pub fn with_exclude<S: AsRef<str>>(mut self, columns: impl IntoIterator<Item = S>) -> Self {
        self.exclude = names(columns);
        self
    }

    /// The output column's name.
    pub fn with_output_column_name(mut self, name: &str) -> Self {
        self.output_column_name = name.to_owned();
        self
    }

    /// The output's element type.
    pub fn with_dtype(mut self, dtype: FloatType) -> Self {
        self.dtype = dtype;
        self
    }
}

impl Concatenator {
    fn apply(&self, lf: LazyFrame) -> Result<LazyFrame> {
        let mut lf = lf;
        let schema = lf.collect_schema().map_err(|e| DataError::Polars {
            context: "Concatenator: resolving the input's columns".to_owned(),
            source: e,
        })?;
        if let Some(include) = &self.include {
            super::check_schema(&schema, include, "Concatenator include")?;
        }
        // Excluded columns may be absent (Ray's raise_if_missing=False): the label column a
        // training plan excludes is not there when serving.
        let columns: Vec<String> = match &self.include {
            Some(include) => include.clone(),
            None => schema.iter_names().map(|n| n.to_string()).collect(),
        }
        .into_iter()
        .filter(|c| !self.exclude.contains(c))
        .collect();
        for c in &columns {
            let dtype = schema.get(c).expect("checked");
            if !(dtype.is_primitive_numeric() || dtype.is_bool()) {
                return Err(DataError::NonNumericColumn {
                    column: c.clone(),
                    dtype: dtype.to_string(),
                    found: None,
                });
            }
        }
        if columns.is_empty() {
            return Err(DataError::InvalidPreprocessor {
                preprocessor: Self::NAME.to_owned(),
                reason: "no columns left to concatenate (check include/exclude)".to_owned(),
            });
        }
        // The row-major buffer of the matrix helper is exactly the values buffer of a
        // fixed-size-list column, so the output is built in one parallel pass (polars'
        // concat_list + cast takes ten times longer). Row-local, so the streaming engine may
        // run it per morsel.
        let inner = match self.dtype {
            FloatType::F32 => DataType::Float32,
            FloatType::F64 => DataType::Float64,
        };
        let output = self.output_column_name.clone();
        let mut out_schema: Schema = schema
            .iter()
            .filter(|(n, _)| !columns.iter().any(|c| c == n.as_str()) && n.as_str() != output)
            .map(|(n, d)| (n.clone(), d.clone()))
            .collect();
        out_schema.insert(
            output.as_str().into(),
            DataType::Array(Box::new(inner.clone()), columns.len()),
        );
        let out_schema = Arc::new(out_schema);
        let dtype = self.dtype;
        Ok(lf.map(
            move |df: DataFrame| concatenate(df, &columns, &output, dtype),
            AllowedOptimizations::STREAMING,
            Some(Arc::new(move |_: &Schema| Ok(out_schema.clone()))),
            Some(Self::NAME),
        ))
    }
}

impl_preprocessor!(Concatenator, "Concatenator");

fn concatenate(
    mut df: DataFrame,
    columns: &[String],
    output: &str,
    dtype: FloatType,
) -> PolarsResult<DataFrame> {
    let to_polars = |e: DataError| PolarsError::ComputeError(e.to_string().into());
    let rows = df.height();
    let width = columns.len();
    let values: ArrayRef = match dtype {
        FloatType::F32 => {
            let data = crate::matrix::row_major::<f32>(&df, columns).map_err(to_polars)?;
            Float32Chunked::from_vec("".into(), data).chunks()[0].clone()
        }
        FloatType::F64 => {
            let data = crate::matrix::row_major::<f64>(&df, columns).map_err(to_polars)?;
            Float64Chunked::from_vec("".into(), data).chunks()[0].clone()
        }
    };
    let inner = match dtype {
        FloatType::F32 => DataType::Float32,
        FloatType::F64 => DataType::Float64,
    };
    let array = ArrayChunked::from_aligned_values(output.into(), &inner, width, vec![values], rows);
    let drop: Vec<&str> = columns
        .iter()
        .map(String::as_str)
        .filter(|c| *c != output)
        .collect();
    df = df.drop_many(drop);
    df.with_column(array.into_column())?;
    Ok(df)
}

/// Casts string columns to a categorical type whose categories are the sorted distinct values
/// seen by `fit` (polars' `Enum`; what LightGBM-style learners want). Values not seen by `fit`
/// become null.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Categorizer {
    columns: Vec<String>,
    stats: Option<BTreeMap<String, Vec<String>>>,
}

impl Categorizer {
    /// Categorizes `columns` (string columns).
    pub fn new<S: AsRef<str>>(columns: impl IntoIterator<Item = S>) -> Self {
        Self {
            columns: names(columns),
            stats: None,
        }
    }
}

impl Categorizer {
    fn learn(&self, ds: &Dataset) -> Result<BTreeMap<String, Vec<String>>> {
        let schema = check_columns(ds, &self.columns, Self::NAME)?;
        let mut stats = BTreeMap::new();
        for c in &self.columns {
            let dtype = schema.get(c).expect("checked");
            if !dtype.is_string() {
                return Err(DataError::InvalidPreprocessor {
                    preprocessor: Self::NAME.to_owned(),
                    reason: format!("column {c:?} has type {dtype}, expected a string column"),
                });
            }
            let counted = ds
                .select_columns(&[c])
                .filter(col(c.as_str()).is_not_null())
                .groupby(&[c])
                .count()
                .to_polars()?;
            let values: Vec<String> = counted
                .column(c)
                .expect("grouped")
                .str()
                .expect("string column")
                .iter()
                .flatten()
                .map(str::to_owned)
                .collect();
            stats.insert(c.clone(), values);
        }
        Ok(stats)
    }

    fn apply(&self, lf: LazyFrame, stats: &BTreeMap<String, Vec<String>>) -> Result<LazyFrame> {
        let mut lf = lf;
        check_lazy(&mut lf, &self.columns, Self::NAME)?;
        let mut exprs = Vec::new();
        for (c, values) in stats {
            let cats = FrozenCategories::new(values.iter().map(String::as_str)).map_err(|e| {
                DataError::Polars {
                    context: format!("Categorizer: categories of {c:?}"),
                    source: e,
                }
            })?;
            exprs.push(
                col(c.as_str())
                    .cast(DataType::from_frozen_categories(cats))
                    .alias(c.as_str()),
            );
        }
        Ok(lf.with_columns(exprs))
    }
}

impl_preprocessor!(Categorizer, "Categorizer", stats);
