//! [`MedianStoppingRule`]: stops a trial whose result is below the median of the others.

use std::{
    collections::{BTreeMap, BTreeSet},
    num::NonZeroUsize,
};

use air_train::Metrics;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    Mode,
    error::{Result, TuneError, at_least},
    search::score_of,
    trial::{Trial, TrialTable},
};

use super::{Decision, TrialScheduler, metric_mode, percentile, time_of};

/// Stops a trial whose best result so far is worse than the median of the other trials'
/// running averages at the same time (Ray's `MedianStoppingRule`; defaults
/// `time_attr = "time_total_s"`, `grace_period = 60`, `min_samples_required = 3`,
/// `min_time_slice = 0`, `hard_stop = true`).
#[derive(Debug, Clone)]
pub struct MedianStoppingRule {
    time_attr: String,
    grace_period: f64,
    min_samples_required: usize,
    hard_stop: bool,
    own: Option<(String, Mode)>,
    metric: Option<(String, Mode)>,
    state: MedianState,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct MedianState {
    /// Trial → (time, score) of every result.
    results: BTreeMap<String, Vec<(f64, f64)>>,
    stopped: BTreeSet<String>,
}

impl Default for MedianStoppingRule {
    fn default() -> Self {
        Self {
            time_attr: "time_total_s".to_owned(),
            grace_period: 60.0,
            min_samples_required: 3,
            hard_stop: true,
            own: None,
            metric: None,
            state: MedianState::default(),
        }
    }
}

impl MedianStoppingRule {
    /// The rule with Ray's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    super::time_and_metric_setters!();

    /// No trial stops before this much `time_attr` (≥ 0).
    pub fn with_grace_period(mut self, g: f64) -> Self {
        self.grace_period = g;
        self
    }

    /// How many other trials must have reached the time.
    pub fn with_min_samples_required(mut self, n: NonZeroUsize) -> Self {
        self.min_samples_required = n.get();
        self
    }

    /// Stop (true, Ray's default) or pause (false) a trial below the median.
    pub fn with_hard_stop(mut self, hard: bool) -> Self {
        self.hard_stop = hard;
        self
    }
}

impl TrialScheduler for MedianStoppingRule {
    fn name(&self) -> String {
        "MedianStoppingRule".to_owned()
    }

    fn setup(&mut self, metric: Option<&str>, mode: Option<Mode>, _: u64) -> Result<()> {
        at_least("grace_period", self.grace_period, 0.0)?;
        self.metric = Some(metric_mode("MedianStoppingRule", &self.own, metric, mode)?);
        Ok(())
    }

    fn on_trial_result(&mut self, _: &TrialTable, trial: &Trial, result: &Metrics) -> Decision {
        let Some((metric, mode)) = &self.metric else {
            return Decision::Continue;
        };
        let (Some(t), Some(score)) = (
            time_of(result, &self.time_attr),
            score_of(result, metric, *mode),
        ) else {
            return Decision::Continue;
        };
        self.state
            .results
            .entry(trial.id().to_owned())
            .or_default()
            .push((t, score));
        if t < self.grace_period {
            return Decision::Continue;
        }
        let others: Vec<f64> = self
            .state
            .results
            .iter()
            .filter(|(id, rs)| {
                id.as_str() != trial.id() && rs.last().is_some_and(|(last, _)| *last >= t)
            })
            .map(|(_, rs)| {
                let upto: Vec<f64> = rs.iter().filter(|(x, _)| *x <= t).map(|r| r.1).collect();
                upto.iter().sum::<f64>() / upto.len().max(1) as f64
            })
            .collect();
        if others.len() < self.min_samples_required {
            return Decision::Continue;
        }
        let Some(median) = percentile(&others, 50.0) else {
            return Decision::Continue;
        };
        let best = self.state.results[trial.id()]
            .iter()
            .map(|r| r.1)
            .fold(f64::NEG_INFINITY, f64::max);
        if best < median && t > self.grace_period {
            self.state.stopped.insert(trial.id().to_owned());
            if self.hard_stop {
                Decision::Stop
            } else {
                Decision::Pause
            }
        } else {
            Decision::Continue
        }
    }

    fn save_state(&self) -> Value {
        serde_json::to_value(&self.state).unwrap_or(Value::Null)
    }

    fn restore_state(&mut self, state: &Value) -> Result<()> {
        self.state = serde_json::from_value(state.clone()).map_err(|e| TuneError::Restore {
            path: "scheduler state".to_owned(),
            reason: format!("not a MedianStoppingRule state ({e})"),
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::schedule::test_support::{result, trial};

    #[test]
    fn median_rule_stops_below_median() {
        let mut m = MedianStoppingRule::new()
            .with_grace_period(1.0)
            .with_min_samples_required(NonZeroUsize::new(2).unwrap());
        m.setup(Some("loss"), Some(Mode::Min), 0).unwrap();
        let table = TrialTable::default();
        let ts: Vec<Trial> = (0..3).map(|i| trial(&format!("t{i}"))).collect();
        for it in 1..=3 {
            assert_eq!(
                m.on_trial_result(&table, &ts[0], &result(it, 1.0)),
                Decision::Continue
            );
            assert_eq!(
                m.on_trial_result(&table, &ts[1], &result(it, 2.0)),
                Decision::Continue
            );
        }
        assert_eq!(
            m.on_trial_result(&table, &ts[2], &result(1, 5.0)),
            Decision::Continue
        );
        assert_eq!(
            m.on_trial_result(&table, &ts[2], &result(2, 5.0)),
            Decision::Stop
        );
    }
}
