//! Binning numeric columns into interval indices (`pandas.cut` semantics, as Ray documents).

use std::collections::BTreeMap;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use super::{
    NamedPreprocessor, aggregate, check_numeric_columns, check_numeric_lazy, impl_preprocessor,
    names, scalar_f64,
};
use crate::{
    Dataset,
    error::{DataError, Result},
};

/// How intervals are closed, shared by both discretizers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Closure {
    /// `(a, b]` when true (pandas' default), `[a, b)` when false.
    right: bool,
    /// With `right`, the first interval also takes its left edge: `[e0, e1]`.
    include_lowest: bool,
}

/// The bin index of `x` among `edges` (k + 1 increasing edges, k bins); values outside the
/// edges (and nulls) give null.
fn bin_expr(x: Expr, edges: &[f64], closure: Closure) -> Expr {
    let k = edges.len() - 1;
    let (first, last) = (edges[0], edges[k]);
    let inner = &edges[1..k];
    let index = if inner.is_empty() {
        lit(0i64)
    } else {
        inner
            .iter()
            .map(|e| {
                if closure.right {
                    x.clone().gt(lit(*e)).cast(DataType::Int64)
                } else {
                    x.clone().gt_eq(lit(*e)).cast(DataType::Int64)
                }
            })
            .reduce(|a, b| a + b)
            .expect("at least one inner edge")
    };
    let inside = if closure.right {
        let low = if closure.include_lowest {
            x.clone().gt_eq(lit(first))
        } else {
            x.clone().gt(lit(first))
        };
        low.and(x.lt_eq(lit(last)))
    } else {
        x.clone().gt_eq(lit(first)).and(x.lt(lit(last)))
    };
    when(inside)
        .then(index)
        .otherwise(lit(NULL).cast(DataType::Int64))
}

fn check_edges(column: &str, edges: &[f64], preprocessor: &str) -> Result<()> {
    if edges.len() < 2 || edges.windows(2).any(|w| w[0] >= w[1] || !w[0].is_finite()) {
        return Err(DataError::InvalidPreprocessor {
            preprocessor: preprocessor.to_owned(),
            reason: format!(
                "bin edges of column {column:?} are {edges:?}: expected at least two finite, \
                 strictly increasing edges"
            ),
        });
    }
    Ok(())
}

fn apply(
    lf: LazyFrame,
    edges: &BTreeMap<String, Vec<f64>>,
    closure: Closure,
    preprocessor: &str,
) -> Result<LazyFrame> {
    let mut lf = lf;
    let columns: Vec<String> = edges.keys().cloned().collect();
    check_numeric_lazy(&mut lf, &columns, preprocessor)?;
    let exprs: Vec<Expr> = edges
        .iter()
        .map(|(c, e)| {
            bin_expr(col(c.as_str()).cast(DataType::Float64), e, closure).alias(c.as_str())
        })
        .collect();
    Ok(lf.with_columns(exprs))
}

/// Bins columns into `bins` intervals of equal width between the fitted min and max, as
/// `pandas.cut(x, bins)` does (the outer edge is widened by 0.1% of the range so the minimum,
/// or with `right = false` the maximum, falls in a bin). Output: the bin index (`Int64`), null
/// outside the fitted range. With `right = false` it equals scikit-learn's
/// `KBinsDiscretizer(strategy="uniform", encode="ordinal")` on the range it was fitted on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UniformKBinsDiscretizer {
    columns: Vec<String>,
    bins: usize,
    closure: Closure,
    edges: Option<BTreeMap<String, Vec<f64>>>,
}

impl UniformKBinsDiscretizer {
    /// `bins` equal-width bins per column (at least 1), right-closed intervals.
    pub fn new<S: AsRef<str>>(columns: impl IntoIterator<Item = S>, bins: usize) -> Result<Self> {
        if bins == 0 {
            return Err(DataError::InvalidPreprocessor {
                preprocessor: "UniformKBinsDiscretizer".to_owned(),
                reason: "bins = 0: expected at least 1".to_owned(),
            });
        }
        Ok(Self {
            columns: names(columns),
            bins,
            closure: Closure {
                right: true,
                include_lowest: false,
            },
            edges: None,
        })
    }

    /// `(a, b]` intervals when true (the default), `[a, b)` when false.
    pub fn with_right(mut self, right: bool) -> Self {
        self.closure.right = right;
        self
    }

    /// Whether the first right-closed interval includes its left edge.
    pub fn with_include_lowest(mut self, include_lowest: bool) -> Self {
        self.closure.include_lowest = include_lowest;
        self
    }

    /// The fitted edges of `column`.
    pub fn edges(&self, column: &str) -> Option<&[f64]> {
        self.edges.as_ref()?.get(column).map(Vec::as_slice)
    }
}

impl UniformKBinsDiscretizer {
    fn learn(&self, ds: &Dataset) -> Result<BTreeMap<String, Vec<f64>>> {
        check_numeric_columns(ds, &self.columns, Self::NAME)?;
        let mut exprs = Vec::new();
        for c in &self.columns {
            let x = col(c.as_str()).cast(DataType::Float64);
            exprs.push(x.clone().min().alias(format!("min({c})")));
            exprs.push(x.max().alias(format!("max({c})")));
        }
        let df = aggregate(ds, exprs, Self::NAME)?;
        let mut edges = BTreeMap::new();
        for c in &self.columns {
            let (Some(mut lo), Some(mut hi)) = (
                scalar_f64(&df, &format!("min({c})"))?,
                scalar_f64(&df, &format!("max({c})"))?,
            ) else {
                return Err(DataError::InvalidPreprocessor {
                    preprocessor: Self::NAME.to_owned(),
                    reason: format!("column {c:?} has no non-null values to fit bins on"),
                });
            };
            let k = self.bins;
            let mut e: Vec<f64>;
            if lo == hi {
                // pandas widens a constant range by 0.1% of its magnitude on both sides.
                let pad = if lo == 0.0 { 0.001 } else { 0.001 * lo.abs() };
                lo -= pad;
                hi += pad;
                e = linspace(lo, hi, k);
            } else {
                e = linspace(lo, hi, k);
                let adjust = (hi - lo) * 0.001;
                if self.closure.right {
                    e[0] -= adjust;
                } else {
                    e[k] += adjust;
                }
            }
            edges.insert(c.clone(), e);
        }
        Ok(edges)
    }

    fn apply(&self, lf: LazyFrame, stats: &BTreeMap<String, Vec<f64>>) -> Result<LazyFrame> {
        apply(lf, stats, self.closure, Self::NAME)
    }
}

impl_preprocessor!(UniformKBinsDiscretizer, "UniformKBinsDiscretizer", edges);

/// `k + 1` evenly spaced points from `lo` to `hi` (numpy's `linspace`: the last point exact).
// Not fused (`mul_add`): numpy computes `i * step + start` with two roundings, and an edge one
// ulp off would move values that sit exactly on it into the neighbouring bin.
#[allow(clippy::suboptimal_flops)]
fn linspace(lo: f64, hi: f64, k: usize) -> Vec<f64> {
    let step = (hi - lo) / k as f64;
    let mut e: Vec<f64> = (0..=k).map(|i| i as f64 * step + lo).collect();
    e[k] = hi;
    e
}

/// Bins columns by user-given edges (stateless): the bin index (`Int64`), null outside.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomKBinsDiscretizer {
    edges: BTreeMap<String, Vec<f64>>,
    closure: Closure,
}

impl CustomKBinsDiscretizer {
    /// The same `edges` (strictly increasing, at least two) for every column.
    pub fn new<S: AsRef<str>>(columns: impl IntoIterator<Item = S>, edges: &[f64]) -> Result<Self> {
        Self::per_column(names(columns).into_iter().map(|c| (c, edges.to_vec())))
    }

    /// Edges per column.
    pub fn per_column(edges: impl IntoIterator<Item = (String, Vec<f64>)>) -> Result<Self> {
        let edges: BTreeMap<String, Vec<f64>> = edges.into_iter().collect();
        for (c, e) in &edges {
            check_edges(c, e, "CustomKBinsDiscretizer")?;
        }
        Ok(Self {
            edges,
            closure: Closure {
                right: true,
                include_lowest: false,
            },
        })
    }

    /// `(a, b]` intervals when true (the default), `[a, b)` when false.
    pub fn with_right(mut self, right: bool) -> Self {
        self.closure.right = right;
        self
    }

    /// Whether the first right-closed interval includes its left edge.
    pub fn with_include_lowest(mut self, include_lowest: bool) -> Self {
        self.closure.include_lowest = include_lowest;
        self
    }
}

impl CustomKBinsDiscretizer {
    fn apply(&self, lf: LazyFrame) -> Result<LazyFrame> {
        apply(lf, &self.edges, self.closure, Self::NAME)
    }
}

impl_preprocessor!(CustomKBinsDiscretizer, "CustomKBinsDiscretizer");
