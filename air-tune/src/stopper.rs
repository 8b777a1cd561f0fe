//! Stoppers: end a trial, or the whole experiment, on a condition over results.

use std::{
    collections::{BTreeMap, VecDeque},
    fmt,
    time::{Duration, Instant},
};

use air_train::Metrics;
use serde_json::Value;

use crate::Mode;

/// Decides from results whether a trial, or the experiment, should stop (Ray's `Stopper`).
/// Any `FnMut(&str, &Metrics) -> bool` closure is one (trial id, result → stop this trial).
pub trait Stopper: Send {
    /// Whether trial `trial_id` stops after `result`.
    fn stop_trial(&mut self, trial_id: &str, result: &Metrics) -> bool;

    /// Whether the whole experiment stops (asked after every result and periodically).
    fn stop_all(&mut self) -> bool {
        false
    }
}

impl<F> Stopper for F
where
    F: FnMut(&str, &Metrics) -> bool + Send,
{
    fn stop_trial(&mut self, trial_id: &str, result: &Metrics) -> bool {
        self(trial_id, result)
    }
}

fn metric(result: &Metrics, name: &str) -> Option<f64> {
    result.get(name).and_then(Value::as_f64)
}

/// Stops each trial after `max_iter` results.
#[derive(Debug, Clone)]
pub struct MaximumIterationStopper {
    max_iter: u64,
    seen: BTreeMap<String, u64>,
}

impl MaximumIterationStopper {
    /// Stops trials after `max_iter` results.
    pub fn new(max_iter: u64) -> Self {
        Self {
            max_iter,
            seen: BTreeMap::new(),
        }
    }
}

impl Stopper for MaximumIterationStopper {
    fn stop_trial(&mut self, trial_id: &str, _: &Metrics) -> bool {
        let n = self.seen.entry(trial_id.to_owned()).or_default();
        *n += 1;
        *n >= self.max_iter
    }
}

/// Stops a trial once `metric` reaches `threshold` (≥ for `Mode::Max`, ≤ for `Mode::Min`); a
/// `RunConfig` stop entry `{"metric": value}` is this with `Mode::Max`, as in Ray.
#[derive(Debug, Clone)]
pub struct MetricThresholdStopper {
    metric: String,
    threshold: f64,
    mode: Mode,
}

impl MetricThresholdStopper {
    /// Stops at `threshold`.
    pub fn new(metric: &str, threshold: f64, mode: Mode) -> Self {
        Self {
            metric: metric.to_owned(),
            threshold,
            mode,
        }
    }
}

impl Stopper for MetricThresholdStopper {
    fn stop_trial(&mut self, _: &str, result: &Metrics) -> bool {
        metric(result, &self.metric).is_some_and(|v| match self.mode {
            Mode::Max => v >= self.threshold,
            Mode::Min => v <= self.threshold,
        })
    }
}

fn std_dev(xs: impl Iterator<Item = f64> + Clone) -> f64 {
    let n = xs.clone().count() as f64;
    let mean = xs.clone().sum::<f64>() / n;
    (xs.map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt()
}

/// Stops a trial whose last `num_results` values of `metric` have a standard deviation below
/// `std`, after `grace_period` results (and, if set, once the metric is past
/// `metric_threshold`). Ray's defaults: std 0.01, 4 results, grace 4.
#[derive(Debug, Clone)]
pub struct TrialPlateauStopper {
    metric: String,
    std: f64,
    num_results: usize,
    grace_period: usize,
    metric_threshold: Option<(f64, Mode)>,
    recent: BTreeMap<String, (usize, VecDeque<f64>)>,
}

impl TrialPlateauStopper {
    /// Ray's defaults for `metric`.
    pub fn new(metric: &str) -> Self {
        Self {
            metric: metric.to_owned(),
            std: 0.01,
            num_results: 4,
            grace_period: 4,
            metric_threshold: None,
            recent: BTreeMap::new(),
        }
    }

    /// The standard deviation under which a trial has plateaued.
    pub fn with_std(mut self, std: f64) -> Self {
        self.std = std;
        self
    }

    /// How many recent results are compared (≥ 1).
    pub fn with_num_results(mut self, n: usize) -> Self {
        self.num_results = n.max(1);
        self
    }

    /// Results before the check starts.
    pub fn with_grace_period(mut self, n: usize) -> Self {
        self.grace_period = n;
        self
    }

    /// Only stop once the metric is at least this good.
    pub fn with_metric_threshold(mut self, threshold: f64, mode: Mode) -> Self {
        self.metric_threshold = Some((threshold, mode));
        self
    }
}

impl Stopper for TrialPlateauStopper {
    fn stop_trial(&mut self, trial_id: &str, result: &Metrics) -> bool {
        let Some(v) = metric(result, &self.metric) else {
            return false;
        };
        let (count, recent) = self.recent.entry(trial_id.to_owned()).or_default();
        *count += 1;
        recent.push_back(v);
        while recent.len() > self.num_results {
            recent.pop_front();
        }
        if *count < self.grace_period || recent.len() < self.num_results {
            return false;
        }
        if let Some((t, mode)) = self.metric_threshold {
            let good = match mode {
                Mode::Min => v <= t,
                Mode::Max => v >= t,
            };
            if !good {
                return false;
            }
        }
        std_dev(recent.iter().copied()) < self.std
    }
}

/// Stops the experiment when the `top` best values of `metric` seen so far have a standard
/// deviation at most `std`, for `patience` results in a row. Ray's defaults: std 0.001, top
/// 10, patience 0.
#[derive(Debug, Clone)]
pub struct ExperimentPlateauStopper {
    metric: String,
    mode: Mode,
    std: f64,
    top: usize,
    patience: usize,
    best: Vec<f64>,
    iterations: usize,
    stop: bool,
}

impl ExperimentPlateauStopper {
    /// Ray's defaults for `metric` in `mode`.
    pub fn new(metric: &str, mode: Mode) -> Self {
        Self {
            metric: metric.to_owned(),
            mode,
            std: 0.001,
            top: 10,
            patience: 0,
            best: Vec::new(),
            iterations: 0,
            stop: false,
        }
    }

    /// The spread under which the experiment has plateaued.
    pub fn with_std(mut self, std: f64) -> Self {
        self.std = std;
        self
    }

    /// How many best values are compared (≥ 1).
    pub fn with_top(mut self, top: usize) -> Self {
        self.top = top.max(1);
        self
    }

    /// Plateaued results in a row before stopping.
    pub fn with_patience(mut self, patience: usize) -> Self {
        self.patience = patience;
        self
    }

    fn plateaued(&self) -> bool {
        self.best.len() == self.top && std_dev(self.best.iter().copied()) <= self.std
    }
}

impl Stopper for ExperimentPlateauStopper {
    fn stop_trial(&mut self, _: &str, result: &Metrics) -> bool {
        let Some(v) = metric(result, &self.metric) else {
            return self.stop;
        };
        self.best.push(v);
        match self.mode {
            Mode::Max => self.best.sort_by(|a, b| b.total_cmp(a)),
            Mode::Min => self.best.sort_by(f64::total_cmp),
        }
        self.best.truncate(self.top);
        if self.plateaued() {
            self.iterations += 1;
        } else {
            self.iterations = 0;
        }
        self.stop = self.plateaued() && self.iterations > self.patience;
        self.stop
    }

    fn stop_all(&mut self) -> bool {
        self.stop
    }
}

/// Stops the experiment after `timeout` of wall time (counted from the first check).
#[derive(Debug, Clone)]
pub struct TimeoutStopper {
    timeout: Duration,
    start: Option<Instant>,
}

impl TimeoutStopper {
    /// Stops everything after `timeout`.
    pub fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            start: None,
        }
    }
}

impl Stopper for TimeoutStopper {
    fn stop_trial(&mut self, _: &str, _: &Metrics) -> bool {
        self.stop_all()
    }

    fn stop_all(&mut self) -> bool {
        self.start.get_or_insert_with(Instant::now).elapsed() >= self.timeout
    }
}

/// Stops when any of its stoppers does.
#[derive(Default)]
pub struct CombinedStopper {
    stoppers: Vec<Box<dyn Stopper>>,
}

impl fmt::Debug for CombinedStopper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CombinedStopper({} stoppers)", self.stoppers.len())
    }
}

impl CombinedStopper {
    /// No stoppers yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one.
    pub fn with(mut self, s: impl Stopper + 'static) -> Self {
        self.stoppers.push(Box::new(s));
        self
    }
}

impl Stopper for CombinedStopper {
    fn stop_trial(&mut self, trial_id: &str, result: &Metrics) -> bool {
        // Every stopper sees every result (stateful ones count), then any may stop.
        let decisions: Vec<bool> = self
            .stoppers
            .iter_mut()
            .map(|s| s.stop_trial(trial_id, result))
            .collect();
        decisions.contains(&true)
    }

    fn stop_all(&mut self) -> bool {
        let decisions: Vec<bool> = self.stoppers.iter_mut().map(|s| s.stop_all()).collect();
        decisions.contains(&true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(v: f64) -> Metrics {
        let mut m = Metrics::new();
        m.insert("loss".into(), json!(v));
        m
    }

    #[test]
    fn stoppers() {
        let mut s = MaximumIterationStopper::new(3);
        assert!(!s.stop_trial("a", &m(0.0)) && !s.stop_trial("a", &m(0.0)));
        assert!(!s.stop_trial("b", &m(0.0)));
        assert!(s.stop_trial("a", &m(0.0)));

        let mut s = MetricThresholdStopper::new("loss", 0.1, Mode::Min);
        assert!(!s.stop_trial("a", &m(0.2)) && s.stop_trial("a", &m(0.05)));

        let mut s = TrialPlateauStopper::new("loss");
        let vals = [5.0, 4.0, 3.0, 2.0, 2.001, 2.0, 2.002];
        let stops: Vec<bool> = vals.iter().map(|v| s.stop_trial("a", &m(*v))).collect();
        assert_eq!(stops, vec![false, false, false, false, false, false, true]);

        let mut s = ExperimentPlateauStopper::new("loss", Mode::Min).with_top(3);
        assert!(!s.stop_trial("a", &m(1.0)) && !s.stop_trial("b", &m(1.0)));
        assert!(s.stop_trial("c", &m(1.0)) && s.stop_all());

        let mut s = TimeoutStopper::new(Duration::ZERO);
        assert!(s.stop_all());

        let mut s = CombinedStopper::new()
            .with(MaximumIterationStopper::new(2))
            .with(|_: &str, r: &Metrics| r["loss"] == json!(-1.0));
        assert!(!s.stop_trial("a", &m(0.0)));
        assert!(s.stop_trial("b", &m(-1.0)));
        assert!(s.stop_trial("a", &m(0.0)));
        assert!(!s.stop_all());
    }
}
