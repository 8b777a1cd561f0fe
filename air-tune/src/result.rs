//! The outcome of an experiment: one [`TrialResult`] per trial, and queries over them.

use air_checkpoint::Checkpoint;
use air_data::{Dataset, polars::prelude::DataFrame};
use air_train::Metrics;
use serde_json::{Map, Value};

use crate::{
    Mode,
    error::{Result, TuneError},
    trial::TrialStatus,
};

/// Which of a trial's results ranks it in [`ResultGrid::get_best_result`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Scope {
    /// The last result (Ray's default).
    #[default]
    Last,
    /// The mean over all results.
    Avg,
    /// The mean of the last 5.
    Last5Avg,
    /// The mean of the last 10.
    Last10Avg,
    /// The best result at any time.
    All,
}

/// One trial's outcome (Ray's `Result` inside a `ResultGrid`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TrialResult {
    /// The trial id.
    pub trial_id: String,
    /// The config it ran with (the last one, after PBT explored).
    pub config: Value,
    /// The last result.
    pub metrics: Metrics,
    /// Every result, in order.
    pub history: Vec<Metrics>,
    /// The latest checkpoint.
    pub checkpoint: Option<Checkpoint>,
    /// The kept checkpoints with their metrics, best first.
    pub best_checkpoints: Vec<(Checkpoint, Metrics)>,
    /// Why the trial failed, if it did.
    pub error: Option<String>,
    /// The trial directory.
    pub path: String,
    /// How it ended.
    pub status: TrialStatus,
}

impl TrialResult {
    fn value(&self, metric: &str, mode: Mode, scope: Scope) -> Option<f64> {
        let vals: Vec<f64> = self
            .history
            .iter()
            .filter_map(|m| m.get(metric).and_then(Value::as_f64))
            .filter(|v| v.is_finite())
            .collect();
        let tail_mean = |n: usize| {
            let t = &vals[vals.len().saturating_sub(n)..];
            (!t.is_empty()).then(|| t.iter().sum::<f64>() / t.len() as f64)
        };
        match scope {
            Scope::Last => self
                .metrics
                .get(metric)
                .and_then(Value::as_f64)
                .filter(|v| v.is_finite())
                .or_else(|| vals.last().copied()),
            Scope::Avg => tail_mean(vals.len()),
            Scope::Last5Avg => tail_mean(5),
            Scope::Last10Avg => tail_mean(10),
            Scope::All => match mode {
                Mode::Max => vals.iter().copied().reduce(f64::max),
                Mode::Min => vals.iter().copied().reduce(f64::min),
            },
        }
    }
}

/// Every trial's result (Ray's `ResultGrid`).
#[derive(Debug, Clone)]
pub struct ResultGrid {
    pub(crate) results: Vec<TrialResult>,
    pub(crate) metric: Option<String>,
    pub(crate) mode: Option<Mode>,
    pub(crate) experiment_path: String,
}

impl ResultGrid {
    /// How many trials.
    pub fn len(&self) -> usize {
        self.results.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.results.is_empty()
    }

    /// Trial `i` in creation order.
    pub fn get(&self, i: usize) -> Option<&TrialResult> {
        self.results.get(i)
    }

    /// The results in creation order.
    pub fn iter(&self) -> std::slice::Iter<'_, TrialResult> {
        self.results.iter()
    }

    /// The experiment directory.
    pub fn experiment_path(&self) -> &str {
        &self.experiment_path
    }

    /// The failed trials' errors, as `(trial id, message)`.
    pub fn errors(&self) -> Vec<(&str, &str)> {
        self.results
            .iter()
            .filter(|r| r.status == TrialStatus::Error)
            .map(|r| (r.trial_id.as_str(), r.error.as_deref().unwrap_or("")))
            .collect()
    }

    /// How many trials failed.
    pub fn num_errors(&self) -> usize {
        self.errors().len()
    }

    /// How many trials finished (or were stopped early on purpose).
    pub fn num_terminated(&self) -> usize {
        self.results
            .iter()
            .filter(|r| r.status == TrialStatus::Terminated)
            .count()
    }

    /// The best trial by the tune config's metric and mode, on its last result.
    pub fn best_result(&self) -> Result<&TrialResult> {
        let (Some(metric), Some(mode)) = (self.metric.as_deref(), self.mode) else {
            return Err(TuneError::NoResult {
                reason: "the tune config set no metric and mode; call get_best_result(metric, \
                         mode, scope)"
                    .to_owned(),
            });
        };
        self.get_best_result(metric, mode, Scope::Last)
    }

    /// The best trial by `metric` in `mode`, judged on `scope`; trials without a finite value
    /// of the metric are skipped.
    pub fn get_best_result(&self, metric: &str, mode: Mode, scope: Scope) -> Result<&TrialResult> {
        self.results
            .iter()
            .filter_map(|r| r.value(metric, mode, scope).map(|v| (v, r)))
            .reduce(|a, b| {
                let better = match mode {
                    Mode::Max => b.0 > a.0,
                    Mode::Min => b.0 < a.0,
                };
                if better { b } else { a }
            })
            .map(|(_, r)| r)
            .ok_or_else(|| {
                let mut known: Vec<String> = self
                    .results
                    .iter()
                    .flat_map(|r| r.metrics.keys().cloned())
                    .collect();
                known.sort();
                known.dedup();
                TuneError::NoResult {
                    reason: format!(
                        "no trial reported a finite {metric:?} ({} trials; reported keys: [{}])",
                        self.results.len(),
                        known.join(", ")
                    ),
                }
            })
    }

    /// One row per trial: its last result, `trial_id`, `status`, `error`, `path`, and the
    /// config flattened into `config/<key>/<subkey>` columns.
    pub fn get_dataframe(&self) -> Result<DataFrame> {
        let rows: Vec<Value> = self
            .results
            .iter()
            .map(|r| {
                let mut row = Map::new();
                for (k, v) in &r.metrics {
                    row.insert(k.clone(), flat_value(v));
                }
                let mut cfg = Map::new();
                flatten("config", &r.config, &mut cfg);
                row.extend(cfg);
                row.insert("trial_id".into(), r.trial_id.clone().into());
                row.insert(
                    "status".into(),
                    serde_json::to_value(r.status).unwrap_or(Value::Null),
                );
                row.insert(
                    "error".into(),
                    r.error.clone().map_or(Value::Null, Value::from),
                );
                row.insert("path".into(), r.path.clone().into());
                Value::Object(row)
            })
            .collect();
        if rows.is_empty() {
            return Ok(DataFrame::empty());
        }
        Dataset::from_items(&rows)
            .and_then(|d| d.to_polars())
            .map_err(TuneError::Frame)
    }
}

impl<'a> IntoIterator for &'a ResultGrid {
    type Item = &'a TrialResult;
    type IntoIter = std::slice::Iter<'a, TrialResult>;

    fn into_iter(self) -> Self::IntoIter {
        self.results.iter()
    }
}

fn flat_value(v: &Value) -> Value {
    match v {
        Value::Object(_) | Value::Array(_) => Value::String(v.to_string()),
        other => other.clone(),
    }
}

fn flatten(prefix: &str, v: &Value, out: &mut Map<String, Value>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, x) in m {
                flatten(&format!("{prefix}/{k}"), x, out);
            }
        }
        other => {
            out.insert(prefix.to_owned(), flat_value(other));
        }
    }
}

impl TrialResult {
    /// The config value at a dotted path (`"params.max_depth"`).
    pub fn config_value(&self, dotted: &str) -> Option<&Value> {
        dotted.split('.').try_fold(&self.config, |v, k| v.get(k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r(id: &str, losses: &[f64]) -> TrialResult {
        let history: Vec<Metrics> = losses
            .iter()
            .map(|l| json!({"loss": l}).as_object().cloned().unwrap())
            .collect();
        TrialResult {
            trial_id: id.into(),
            config: json!({"params": {"max_depth": 3}, "lr": 0.1}),
            metrics: history.last().cloned().unwrap_or_default(),
            history,
            checkpoint: None,
            best_checkpoints: Vec::new(),
            error: None,
            path: format!("/x/{id}"),
            status: TrialStatus::Terminated,
        }
    }

    #[test]
    fn best_by_scope() {
        let grid = ResultGrid {
            results: vec![
                r("a", &[9.0, 1.0, 5.0]),
                r("b", &[4.0, 4.0, 4.0]),
                r("c", &[3.0, 3.0, f64::NAN]),
            ],
            metric: Some("loss".into()),
            mode: Some(Mode::Min),
            experiment_path: "/x".into(),
        };
        let best = |s| {
            grid.get_best_result("loss", Mode::Min, s)
                .unwrap()
                .trial_id
                .clone()
        };
        assert_eq!(best(Scope::Last), "c"); // NaN filtered: c's last finite value is 3
        assert_eq!(best(Scope::All), "a");
        assert_eq!(best(Scope::Avg), "c");
        assert_eq!(
            grid.get_best_result("loss", Mode::Max, Scope::All)
                .unwrap()
                .trial_id,
            "a"
        );
        let e = grid
            .get_best_result("acc", Mode::Max, Scope::Last)
            .unwrap_err();
        assert!(
            e.to_string().contains("\"acc\"") && e.to_string().contains("loss"),
            "{e}"
        );
        let df = grid.get_dataframe().unwrap();
        assert_eq!(df.height(), 3);
        assert!(df.column("config/params/max_depth").is_ok());
        assert!(df.column("trial_id").is_ok());
    }
}
