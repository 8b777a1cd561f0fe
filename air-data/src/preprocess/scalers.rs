//! Numeric scalers and transforms: statistics per column, applied in place as `Float64`.
//!
//! Ray's semantics throughout: nulls are ignored by the statistics and stay null; a zero scale
//! (constant column) divides by 1.

use std::collections::BTreeMap;

use polars::{
    lazy::dsl::{max_horizontal, sum_horizontal},
    prelude::*,
};
use serde::{Deserialize, Serialize};

use super::{NamedPreprocessor, check_numeric_lazy, impl_preprocessor, names, scalar_f64};
use crate::{
    Dataset,
    error::{DataError, Result},
};

/// Per-column `(shift, scale)`: the output is `(x - shift) / scale`.
type Affine = BTreeMap<String, (f64, f64)>;

fn nonzero(scale: Option<f64>) -> f64 {
    match scale {
        Some(s) if s != 0.0 && s.is_finite() => s,
        _ => 1.0,
    }
}

fn apply_affine(lf: LazyFrame, stats: &Affine, preprocessor: &str) -> Result<LazyFrame> {
    let mut lf = lf;
    let columns: Vec<String> = stats.keys().cloned().collect();
    check_numeric_lazy(&mut lf, &columns, preprocessor)?;
    let exprs: Vec<Expr> = stats
        .iter()
        .map(|(c, (shift, scale))| {
            ((col(c.as_str()).cast(DataType::Float64) - lit(*shift)) / lit(*scale))
                .alias(c.as_str())
        })
        .collect();
    Ok(lf.with_columns(exprs))
}

/// Standardises columns: `(x - mean) / std` (Ray's and scikit-learn's `StandardScaler`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StandardScaler {
    columns: Vec<String>,
    ddof: u8,
    stats: Option<Affine>,
}

impl StandardScaler {
    /// Scales `columns` with the population standard deviation (`ddof = 0`, as scikit-learn).
    pub fn new<S: AsRef<str>>(columns: impl IntoIterator<Item = S>) -> Self {
        Self {
            columns: names(columns),
            ddof: 0,
            stats: None,
        }
    }

    /// Delta degrees of freedom of the standard deviation.
    pub fn with_ddof(mut self, ddof: u8) -> Self {
        self.ddof = ddof;
        self
    }

    /// The fitted `(mean, std)` per column (std 0 reported as 1).
    pub fn stats(&self) -> Option<&BTreeMap<String, (f64, f64)>> {
        self.stats.as_ref()
    }
}

impl StandardScaler {
    /// Means and deviations need the data.
    fn stats_from_footers(&self, _: &Dataset) -> Option<DataFrame> {
        None
    }

    fn stat_exprs(&self) -> Result<Vec<Expr>> {
        let mut exprs = Vec::new();
        for c in &self.columns {
            let x = col(c.as_str()).cast(DataType::Float64);
            exprs.push(x.clone().mean().alias(format!("mean({c})")));
            exprs.push(x.std(self.ddof).alias(format!("std({c})")));
        }
        Ok(exprs)
    }

    fn read_stats(&self, df: &DataFrame) -> Result<Affine> {
        let mut stats = Affine::new();
        for c in &self.columns {
            let mean = scalar_f64(df, &format!("mean({c})"))?.unwrap_or(0.0);
            let std = nonzero(scalar_f64(df, &format!("std({c})"))?);
            stats.insert(c.clone(), (mean, std));
        }
        Ok(stats)
    }

    fn apply(&self, lf: LazyFrame, stats: &Affine) -> Result<LazyFrame> {
        apply_affine(lf, stats, Self::NAME)
    }
}

impl_preprocessor!(StandardScaler, "StandardScaler", stats, aggregation);

/// Scales columns to [0, 1]: `(x - min) / (max - min)`.
///
/// Fitted on local parquet files, it takes the minima and maxima from the files' footers where
/// they give exactly what the data would (signed integer and float columns, every row group
/// with statistics and no NaN in it): no data page is read. Otherwise one pass over the data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MinMaxScaler {
    columns: Vec<String>,
    stats: Option<Affine>,
}

impl MinMaxScaler {
    /// Scales `columns`.
    pub fn new<S: AsRef<str>>(columns: impl IntoIterator<Item = S>) -> Self {
        Self {
            columns: names(columns),
            stats: None,
        }
    }
}

impl MinMaxScaler {
    /// The aggregation's row, from the parquet footers where they answer it (no data read).
    fn stats_from_footers(&self, ds: &Dataset) -> Option<DataFrame> {
        let bounds = crate::parquet_stats::min_max(ds, &self.columns)?;
        let row = self.columns.iter().zip(bounds).flat_map(|(c, (lo, hi))| {
            [
                Column::new(format!("min({c})").into(), [lo]),
                Column::new(format!("max({c})").into(), [hi]),
            ]
        });
        DataFrame::new_infer_height(row.collect()).ok()
    }

    fn stat_exprs(&self) -> Result<Vec<Expr>> {
        let mut exprs = Vec::new();
        for c in &self.columns {
            let x = col(c.as_str()).cast(DataType::Float64);
            exprs.push(x.clone().min().alias(format!("min({c})")));
            exprs.push(x.max().alias(format!("max({c})")));
        }
        Ok(exprs)
    }

    fn read_stats(&self, df: &DataFrame) -> Result<Affine> {
        let mut stats = Affine::new();
        for c in &self.columns {
            let min = scalar_f64(df, &format!("min({c})"))?;
            let max = scalar_f64(df, &format!("max({c})"))?;
            let range = min.zip(max).map(|(lo, hi)| hi - lo);
            stats.insert(c.clone(), (min.unwrap_or(0.0), nonzero(range)));
        }
        Ok(stats)
    }

    fn apply(&self, lf: LazyFrame, stats: &Affine) -> Result<LazyFrame> {
        apply_affine(lf, stats, Self::NAME)
    }
}

impl_preprocessor!(MinMaxScaler, "MinMaxScaler", stats, aggregation);

/// Scales columns by their maximum absolute value: `x / max|x|` (sparsity is kept).
///
/// Fitted from parquet footers where they answer it, as [`MinMaxScaler`] is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MaxAbsScaler {
    columns: Vec<String>,
    stats: Option<Affine>,
}

impl MaxAbsScaler {
    /// Scales `columns`.
    pub fn new<S: AsRef<str>>(columns: impl IntoIterator<Item = S>) -> Self {
        Self {
            columns: names(columns),
            stats: None,
        }
    }
}

impl MaxAbsScaler {
    /// The aggregation's row, from the parquet footers where they answer it (no data read).
    fn stats_from_footers(&self, ds: &Dataset) -> Option<DataFrame> {
        let bounds = crate::parquet_stats::min_max(ds, &self.columns)?;
        let row = self.columns.iter().zip(bounds).map(|(c, (lo, hi))| {
            Column::new(format!("abs_max({c})").into(), [lo.abs().max(hi.abs())])
        });
        DataFrame::new_infer_height(row.collect()).ok()
    }

    fn stat_exprs(&self) -> Result<Vec<Expr>> {
        Ok(self
            .columns
            .iter()
            .map(|c| {
                col(c.as_str())
                    .cast(DataType::Float64)
                    .abs()
                    .max()
                    .alias(format!("abs_max({c})"))
            })
            .collect())
    }

    fn read_stats(&self, df: &DataFrame) -> Result<Affine> {
        let mut stats = Affine::new();
        for c in &self.columns {
            let m = scalar_f64(df, &format!("abs_max({c})"))?;
            stats.insert(c.clone(), (0.0, nonzero(m)));
        }
        Ok(stats)
    }

    fn apply(&self, lf: LazyFrame, stats: &Affine) -> Result<LazyFrame> {
        apply_affine(lf, stats, Self::NAME)
    }
}

impl_preprocessor!(MaxAbsScaler, "MaxAbsScaler", stats, aggregation);

/// How quantiles between two data points are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum QuantileInterpolation {
    /// Linear interpolation (numpy's default, so scikit-learn's `RobustScaler`).
    Linear,
    /// The lower point, index `floor(q * (n - 1))` (Ray's documented `RobustScaler`).
    Lower,
}

/// Centers on the median and scales by an inter-quantile range:
/// `(x - median) / (q_high - q_low)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RobustScaler {
    columns: Vec<String>,
    quantile_range: (f64, f64),
    interpolation: QuantileInterpolation,
    stats: Option<Affine>,
}

impl RobustScaler {
    /// Scales `columns` by the inter-quartile range (0.25, 0.75), interpolating linearly.
    pub fn new<S: AsRef<str>>(columns: impl IntoIterator<Item = S>) -> Self {
        Self {
            columns: names(columns),
            quantile_range: (0.25, 0.75),
            interpolation: QuantileInterpolation::Linear,
            stats: None,
        }
    }

    /// The quantiles whose distance is the scale; both in [0, 1], low < high (checked when
    /// fitting).
    pub fn with_quantile_range(mut self, low: f64, high: f64) -> Self {
        self.quantile_range = (low, high);
        self
    }

    /// How quantiles are interpolated.
    pub fn with_interpolation(mut self, interpolation: QuantileInterpolation) -> Self {
        self.interpolation = interpolation;
        self
    }
}

impl RobustScaler {
    /// Quantiles need the data.
    fn stats_from_footers(&self, _: &Dataset) -> Option<DataFrame> {
        None
    }

    fn stat_exprs(&self) -> Result<Vec<Expr>> {
        let (low, high) = self.quantile_range;
        if !(0.0..=1.0).contains(&low) || !(0.0..=1.0).contains(&high) || low >= high {
            return Err(DataError::InvalidPreprocessor {
                preprocessor: Self::NAME.to_owned(),
                reason: format!("quantile_range ({low}, {high}): expected 0 <= low < high <= 1"),
            });
        }
        let method = match self.interpolation {
            QuantileInterpolation::Linear => QuantileMethod::Linear,
            QuantileInterpolation::Lower => QuantileMethod::Lower,
        };
        let mut exprs = Vec::new();
        for c in &self.columns {
            let x = col(c.as_str()).cast(DataType::Float64);
            for (name, q) in [("low", low), ("median", 0.5), ("high", high)] {
                exprs.push(
                    x.clone()
                        .quantile(lit(q), method)
                        .alias(format!("{name}({c})")),
                );
            }
        }
        Ok(exprs)
    }

    fn read_stats(&self, df: &DataFrame) -> Result<Affine> {
        let mut stats = Affine::new();
        for c in &self.columns {
            let low = scalar_f64(df, &format!("low({c})"))?;
            let median = scalar_f64(df, &format!("median({c})"))?;
            let high = scalar_f64(df, &format!("high({c})"))?;
            let range = low.zip(high).map(|(l, h)| h - l);
            stats.insert(c.clone(), (median.unwrap_or(0.0), nonzero(range)));
        }
        Ok(stats)
    }

    fn apply(&self, lf: LazyFrame, stats: &Affine) -> Result<LazyFrame> {
        apply_affine(lf, stats, Self::NAME)
    }
}

impl_preprocessor!(RobustScaler, "RobustScaler", stats, aggregation);

/// The norm of [`Normalizer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Norm {
    /// Sum of absolute values.
    L1,
    /// Euclidean length.
    L2,
    /// Largest absolute value.
    Max,
}

/// Scales each row of the given columns to unit norm (stateless; a zero row stays zero).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normalizer {
    columns: Vec<String>,
    norm: Norm,
}

impl Normalizer {
    /// Row-wise normalisation of `columns` by `norm`.
    pub fn new<S: AsRef<str>>(columns: impl IntoIterator<Item = S>, norm: Norm) -> Self {
        Self {
            columns: names(columns),
            norm,
        }
    }
}

impl Normalizer {
    fn apply(&self, lf: LazyFrame) -> Result<LazyFrame> {
        let mut lf = lf;
        check_numeric_lazy(&mut lf, &self.columns, Self::NAME)?;
        if self.columns.is_empty() {
            return Ok(lf);
        }
        let xs: Vec<Expr> = self
            .columns
            .iter()
            .map(|c| col(c.as_str()).cast(DataType::Float64))
            .collect();
        let err = |e| DataError::Polars {
            context: Self::NAME.to_owned(),
            source: e,
        };
        let norm = match self.norm {
            Norm::L1 => sum_horizontal(
                xs.iter().map(|x| x.clone().abs()).collect::<Vec<_>>(),
                false,
            )
            .map_err(err)?,
            Norm::L2 => sum_horizontal(
                xs.iter().map(|x| x.clone() * x.clone()).collect::<Vec<_>>(),
                false,
            )
            .map_err(err)?
            .sqrt(),
            Norm::Max => max_horizontal(xs.iter().map(|x| x.clone().abs()).collect::<Vec<_>>())
                .map_err(err)?,
        };
        let norm = when(norm.clone().eq(lit(0.0)))
            .then(lit(1.0))
            .otherwise(norm)
            .alias("__air_norm");
        let names: Vec<&str> = self.columns.iter().map(String::as_str).collect();
        Ok(lf
            .with_column(norm)
            .with_columns(
                xs.into_iter()
                    .zip(&names)
                    .map(|(x, n)| (x / col("__air_norm")).alias(*n))
                    .collect::<Vec<_>>(),
            )
            .drop(by_name(["__air_norm"], true, false)))
    }
}

impl_preprocessor!(Normalizer, "Normalizer");

/// The family of [`PowerTransformer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PowerMethod {
    /// Yeo-Johnson: any real input.
    YeoJohnson,
    /// Box-Cox: positive input only (others become NaN).
    BoxCox,
}

/// Applies a power transform with a given exponent `power` (Ray's `PowerTransformer`: the power
/// is supplied, not fitted; scikit-learn's with `lambdas_` set and `standardize=False`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PowerTransformer {
    columns: Vec<String>,
    power: f64,
    method: PowerMethod,
}

impl PowerTransformer {
    /// Transforms `columns` with exponent `power`.
    pub fn new<S: AsRef<str>>(
        columns: impl IntoIterator<Item = S>,
        power: f64,
        method: PowerMethod,
    ) -> Result<Self> {
        if !power.is_finite() {
            return Err(DataError::InvalidPreprocessor {
                preprocessor: "PowerTransformer".to_owned(),
                reason: format!("power {power}: expected a finite number"),
            });
        }
        Ok(Self {
            columns: names(columns),
            power,
            method,
        })
    }

    fn expr(&self, x: Expr) -> Expr {
        let l = self.power;
        match self.method {
            PowerMethod::YeoJohnson => {
                let pos = if l == 0.0 {
                    x.clone().log1p()
                } else {
                    ((x.clone() + lit(1.0)).pow(lit(l)) - lit(1.0)) / lit(l)
                };
                let neg = if l == 2.0 {
                    -((lit(0.0) - x.clone()).log1p())
                } else {
                    -(((lit(1.0) - x.clone()).pow(lit(2.0 - l)) - lit(1.0)) / lit(2.0 - l))
                };
                when(x.clone().gt_eq(lit(0.0))).then(pos).otherwise(neg)
            }
            PowerMethod::BoxCox => {
                let out = if l == 0.0 {
                    x.clone().log(lit(std::f64::consts::E))
                } else {
                    (x.clone().pow(lit(l)) - lit(1.0)) / lit(l)
                };
                when(x.gt(lit(0.0))).then(out).otherwise(lit(f64::NAN))
            }
        }
    }
}

impl PowerTransformer {
    fn apply(&self, lf: LazyFrame) -> Result<LazyFrame> {
        let mut lf = lf;
        check_numeric_lazy(&mut lf, &self.columns, Self::NAME)?;
        let exprs: Vec<Expr> = self
            .columns
            .iter()
            .map(|c| {
                self.expr(col(c.as_str()).cast(DataType::Float64))
                    .alias(c.as_str())
            })
            .collect();
        Ok(lf.with_columns(exprs))
    }
}

impl_preprocessor!(PowerTransformer, "PowerTransformer");
