//! `SimpleImputer`: fills nulls with a fitted mean or most frequent value, or a constant.

use std::collections::BTreeMap;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use super::{
    FitStatus, NamedPreprocessor, Preprocessor, aggregate, check_columns, check_lazy,
    check_numeric_columns, check_numeric_lazy, names, to_value,
};
use crate::{
    Dataset,
    error::{DataError, Result},
};

/// What [`SimpleImputer`] fills nulls with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ImputeStrategy {
    /// The column's mean (numeric columns).
    Mean,
    /// The column's most frequent value; ties go to the smallest value, as in scikit-learn.
    MostFrequent,
    /// A fixed value (a JSON number, string or boolean); nothing to fit.
    Constant(serde_json::Value),
}

/// Fills nulls (and, in float columns, NaN is left alone: it is a value, not a null).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimpleImputer {
    columns: Vec<String>,
    strategy: ImputeStrategy,
    stats: Option<BTreeMap<String, serde_json::Value>>,
}

impl SimpleImputer {
    /// Imputes `columns` with `strategy`.
    pub fn new<S: AsRef<str>>(
        columns: impl IntoIterator<Item = S>,
        strategy: ImputeStrategy,
    ) -> Self {
        Self {
            columns: names(columns),
            strategy,
            stats: None,
        }
    }

    /// The fitted fill value per column.
    pub fn stats(&self) -> Option<&BTreeMap<String, serde_json::Value>> {
        self.stats.as_ref()
    }
}

/// A polars literal from a JSON scalar.
pub(crate) fn json_lit(value: &serde_json::Value) -> Result<Expr> {
    Ok(match value {
        serde_json::Value::Bool(b) => lit(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => lit(i),
            None => lit(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => lit(s.clone()),
        serde_json::Value::Null => lit(NULL),
        other => {
            return Err(DataError::InvalidPreprocessor {
                preprocessor: "SimpleImputer".to_owned(),
                reason: format!("fill value {other}: expected a number, string or boolean"),
            });
        }
    })
}

/// A JSON scalar from the first value of a column.
pub(crate) fn json_of(column: &Column) -> serde_json::Value {
    match column.get(0) {
        Ok(AnyValue::Boolean(b)) => serde_json::Value::Bool(b),
        Ok(AnyValue::String(s)) => serde_json::Value::String(s.to_owned()),
        Ok(AnyValue::StringOwned(s)) => serde_json::Value::String(s.to_string()),
        Ok(v) if v.is_integer() => v
            .extract::<i64>()
            .map_or(serde_json::Value::Null, serde_json::Value::from),
        Ok(v) => v
            .extract::<f64>()
            .and_then(serde_json::Number::from_f64)
            .map_or(serde_json::Value::Null, serde_json::Value::Number),
        Err(_) => serde_json::Value::Null,
    }
}

impl NamedPreprocessor for SimpleImputer {
    const NAME: &'static str = "SimpleImputer";
}

impl Preprocessor for SimpleImputer {
    fn type_name(&self) -> &str {
        Self::NAME
    }
    fn fit_status(&self) -> FitStatus {
        match (&self.strategy, &self.stats) {
            (ImputeStrategy::Constant(_), _) => FitStatus::NotFittable,
            (_, Some(_)) => FitStatus::Fitted,
            (_, None) => FitStatus::NotFitted,
        }
    }
    fn fit(&mut self, ds: &Dataset) -> Result<()> {
        if self.strategy == ImputeStrategy::Mean {
            check_numeric_columns(ds, &self.columns, Self::NAME)?;
        } else {
            check_columns(ds, &self.columns, Self::NAME)?;
        }
        let mut stats = BTreeMap::new();
        match &self.strategy {
            ImputeStrategy::Constant(_) => return Ok(()),
            ImputeStrategy::Mean => {
                let exprs = self
                    .columns
                    .iter()
                    .map(|c| col(c.as_str()).cast(DataType::Float64).mean())
                    .collect();
                let df = aggregate(ds, exprs, Self::NAME)?;
                for c in &self.columns {
                    stats.insert(c.clone(), json_of(df.column(c).expect("aggregated")));
                }
            }
            ImputeStrategy::MostFrequent => {
                for c in &self.columns {
                    // Counts per value, most frequent first, ties to the smallest value.
                    let counted = ds
                        .select_columns(&[c])
                        .filter(col(c.as_str()).is_not_null())
                        .groupby(&[c])
                        .count()
                        .sort(&["count()"], true)
                        .to_polars()?;
                    let best = counted
                        .lazy()
                        .filter(col("count()").eq(col("count()").max()))
                        .sort([c.as_str()], SortMultipleOptions::default())
                        .limit(1)
                        .collect()
                        .map_err(|e| DataError::Polars {
                            context: "fitting SimpleImputer".to_owned(),
                            source: e,
                        })?;
                    stats.insert(c.clone(), json_of(best.column(c).expect("grouped")));
                }
            }
        }
        self.stats = Some(stats);
        Ok(())
    }
    fn expressions(&self, lf: LazyFrame) -> Result<LazyFrame> {
        let mut lf = lf;
        check_lazy(&mut lf, &self.columns, Self::NAME)?;
        let mut exprs = Vec::with_capacity(self.columns.len());
        for c in &self.columns {
            let value = match (&self.strategy, &self.stats) {
                (ImputeStrategy::Constant(v), _) => v,
                (_, Some(stats)) => &stats[c],
                (_, None) => {
                    return Err(DataError::NotFitted {
                        preprocessor: self.type_name().to_owned(),
                    });
                }
            };
            if value.is_number() {
                // A number filled into strings would make the column strings, silently.
                check_numeric_lazy(&mut lf, std::slice::from_ref(c), Self::NAME)?;
            }
            exprs.push(
                col(c.as_str())
                    .fill_null(json_lit(value)?)
                    .alias(c.as_str()),
            );
        }
        Ok(lf.with_columns(exprs))
    }
    fn to_config(&self) -> Result<serde_json::Value> {
        to_value(self)
    }
}
