//! Trial schedulers: they look at results and return a [`Decision`]; the tuner carries it out.

mod hyperband;
mod pbt;

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
};

use air_train::Metrics;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use hyperband::HyperBand;
pub use pbt::{ExploreFn, Pbt};

use crate::{
    Mode,
    error::{Result, TuneError, above, at_least, invalid},
    search::score_of,
    space::variant_rng,
    trial::{Trial, TrialStatus, TrialTable},
};

/// What to do with a trial after one of its results.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Decision {
    /// Keep training.
    Continue,
    /// Stop now; resume later from the latest checkpoint when the scheduler picks it.
    Pause,
    /// Stop for good (not an error).
    Stop,
    /// Stop, then restart from trial `source`'s latest checkpoint with `config`
    /// (Population Based Training's exploit and explore).
    Exploit {
        /// The better trial whose checkpoint is cloned.
        source: String,
        /// The perturbed config.
        config: Value,
    },
}

/// Decides, result by result, which trials go on (Ray's `TrialScheduler`).
pub trait TrialScheduler: Send + fmt::Debug {
    /// The name saved with the experiment.
    fn name(&self) -> String;

    /// Receives the tune config's metric and mode (used unless the scheduler has its own).
    fn setup(&mut self, metric: Option<&str>, mode: Option<Mode>, seed: u64) -> Result<()>;

    /// A trial was created.
    fn on_trial_add(&mut self, trials: &TrialTable, trial: &Trial) {
        let _ = (trials, trial);
    }

    /// A result of a running trial (already in `trial.history()`).
    fn on_trial_result(&mut self, trials: &TrialTable, trial: &Trial, result: &Metrics)
    -> Decision;

    /// A trial ended: finished (`Some(last result)`) or failed for good (`None`).
    fn on_trial_complete(&mut self, trials: &TrialTable, trial: &Trial, result: Option<&Metrics>) {
        let _ = (trials, trial, result);
    }

    /// Which of the pending or paused trials (`candidates`, in creation order) runs next;
    /// `None` waits. FIFO by default: pending first, then paused.
    fn choose_trial_to_run(&mut self, trials: &TrialTable, candidates: &[&str]) -> Option<String> {
        candidates
            .iter()
            .find(|id| {
                trials
                    .get(id)
                    .is_some_and(|t| t.status() == TrialStatus::Pending)
            })
            .or_else(|| candidates.first())
            .map(|s| (*s).to_owned())
    }

    /// The searcher will create no more trials (brackets waiting to fill up can stop
    /// waiting).
    fn on_search_finished(&mut self, trials: &TrialTable) {
        let _ = trials;
    }

    /// State saved with the experiment.
    fn save_state(&self) -> Value {
        Value::Null
    }

    /// Restores [`TrialScheduler::save_state`]'s output (after `setup`).
    fn restore_state(&mut self, state: &Value) -> Result<()> {
        let _ = state;
        Ok(())
    }
}

fn metric_mode(
    who: &str,
    own: &Option<(String, Mode)>,
    metric: Option<&str>,
    mode: Option<Mode>,
) -> Result<(String, Mode)> {
    if let Some(mm) = own {
        return Ok(mm.clone());
    }
    match (metric, mode) {
        (Some(m), Some(mode)) => Ok((m.to_owned(), mode)),
        _ => Err(invalid(
            "metric/mode",
            format!("unset for {who}"),
            "TuneConfig::with_metric(name, mode) or the scheduler's own with_metric",
        )),
    }
}

fn time_of(result: &Metrics, attr: &str) -> Option<f64> {
    result.get(attr).and_then(Value::as_f64)
}

/// Runs every trial to completion, in order (Ray's `FIFOScheduler`, the default).
#[derive(Debug, Default, Clone, Copy)]
pub struct Fifo;

impl TrialScheduler for Fifo {
    fn name(&self) -> String {
        "FIFOScheduler".to_owned()
    }

    fn setup(&mut self, _: Option<&str>, _: Option<Mode>, _: u64) -> Result<()> {
        Ok(())
    }

    fn on_trial_result(&mut self, _: &TrialTable, _: &Trial, _: &Metrics) -> Decision {
        Decision::Continue
    }
}

/// Asynchronous successive halving (Ray's `ASHAScheduler` / `AsyncHyperBandScheduler`).
///
/// Rungs sit at `grace_period · rf^k` (below `max_t`). The first time a trial's `time_attr`
/// reaches a rung, its score is compared with the `(1 − 1/rf)` quantile of the scores recorded
/// there before it (NaN-aware linear percentile, as numpy's): below the cutoff it stops, then
/// its score joins the rung. Trials stop at `max_t`. Several brackets shift the rungs; a trial
/// joins a bracket with softmax probability of its rung count. Defaults are Ray's:
/// `time_attr = "training_iteration"`, `max_t = 100`, `grace_period = 1`,
/// `reduction_factor = 4`, `brackets = 1`, `stop_last_trials = true`.
#[derive(Debug, Clone)]
pub struct Asha {
    time_attr: String,
    max_t: f64,
    grace_period: f64,
    reduction_factor: f64,
    brackets: usize,
    stop_last_trials: bool,
    own: Option<(String, Mode)>,
    metric: Option<(String, Mode)>,
    state: AshaState,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct AshaState {
    seed: u64,
    /// Per bracket: (milestone, trial → score) from the highest milestone down.
    rungs: Vec<Vec<(f64, BTreeMap<String, f64>)>>,
    bracket_of: BTreeMap<String, usize>,
    added: u64,
}

impl Default for Asha {
    fn default() -> Self {
        Self {
            time_attr: "training_iteration".to_owned(),
            max_t: 100.0,
            grace_period: 1.0,
            reduction_factor: 4.0,
            brackets: 1,
            stop_last_trials: true,
            own: None,
            metric: None,
            state: AshaState::default(),
        }
    }
}

impl Asha {
    /// ASHA with Ray's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// The result key that measures progress (`training_iteration`, `time_total_s`, ...).
    pub fn with_time_attr(mut self, attr: &str) -> Self {
        attr.clone_into(&mut self.time_attr);
        self
    }

    /// Trials stop once `time_attr` reaches this (> 0).
    pub fn with_max_t(mut self, max_t: f64) -> Result<Self> {
        let max_t = above("max_t", max_t, 0.0)?;
        self.max_t = max_t;
        Ok(self)
    }

    /// The first rung (> 0, at most `max_t`).
    pub fn with_grace_period(mut self, g: f64) -> Result<Self> {
        let g = above("grace_period", g, 0.0)?;
        self.grace_period = g;
        Ok(self)
    }

    /// The halving rate (> 1).
    pub fn with_reduction_factor(mut self, rf: f64) -> Result<Self> {
        let rf = above("reduction_factor", rf, 1.0)?;
        self.reduction_factor = rf;
        Ok(self)
    }

    /// The number of brackets (≥ 1).
    pub fn with_brackets(mut self, n: usize) -> Result<Self> {
        if n == 0 {
            return Err(invalid("brackets", 0, "at least 1"));
        }
        self.brackets = n;
        Ok(self)
    }

    /// Whether trials stop at `max_t` (Ray: true).
    pub fn with_stop_last_trials(mut self, stop: bool) -> Self {
        self.stop_last_trials = stop;
        self
    }

    /// Its own metric and mode instead of the tune config's.
    pub fn with_metric(mut self, metric: &str, mode: Mode) -> Self {
        self.own = Some((metric.to_owned(), mode));
        self
    }

    /// The rung milestones of bracket `s`, highest first.
    pub fn milestones(&self, s: usize) -> Vec<f64> {
        let rf = self.reduction_factor;
        let max_rungs =
            ((self.max_t / self.grace_period).ln() / rf.ln() - s as f64 + 1.0).floor() as i64;
        (0..max_rungs.max(0))
            .rev()
            .map(|k| self.grace_period * rf.powi((k + s as i64) as i32))
            .collect()
    }
}

/// numpy's `nanpercentile` with linear interpolation.
pub(crate) fn percentile(values: &[f64], q: f64) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let pos = q / 100.0 * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    Some(v[lo] + (v[hi] - v[lo]) * (pos - lo as f64))
}

impl TrialScheduler for Asha {
    fn name(&self) -> String {
        "ASHAScheduler".to_owned()
    }

    fn setup(&mut self, metric: Option<&str>, mode: Option<Mode>, seed: u64) -> Result<()> {
        if self.grace_period > self.max_t {
            return Err(invalid(
                "grace_period",
                self.grace_period,
                &format!("at most max_t ({})", self.max_t),
            ));
        }
        self.metric = Some(metric_mode("ASHAScheduler", &self.own, metric, mode)?);
        self.state = AshaState {
            seed,
            rungs: (0..self.brackets)
                .map(|s| {
                    self.milestones(s)
                        .into_iter()
                        .map(|m| (m, BTreeMap::new()))
                        .collect()
                })
                .collect(),
            ..AshaState::default()
        };
        Ok(())
    }

    fn on_trial_add(&mut self, _: &TrialTable, trial: &Trial) {
        let sizes: Vec<f64> = self.state.rungs.iter().map(|r| r.len() as f64).collect();
        let max = sizes.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let probs: Vec<f64> = sizes.iter().map(|s| (s - max).exp()).collect();
        let total: f64 = probs.iter().sum();
        use rand::RngExt;
        let mut rng = variant_rng(self.state.seed, 3, self.state.added);
        self.state.added += 1;
        let mut u = rng.random::<f64>() * total;
        let mut b = probs.len().saturating_sub(1);
        for (i, p) in probs.iter().enumerate() {
            if u < *p {
                b = i;
                break;
            }
            u -= p;
        }
        self.state.bracket_of.insert(trial.id().to_owned(), b);
    }

    fn on_trial_result(&mut self, _: &TrialTable, trial: &Trial, result: &Metrics) -> Decision {
        let Some((metric, mode)) = &self.metric else {
            return Decision::Continue;
        };
        let (Some(t), Some(raw)) = (time_of(result, &self.time_attr), result.get(metric)) else {
            return Decision::Continue;
        };
        if t >= self.max_t && self.stop_last_trials {
            return Decision::Stop;
        }
        let score = raw.as_f64().map(|v| match mode {
            Mode::Max => v,
            Mode::Min => -v,
        });
        let b = self.state.bracket_of.get(trial.id()).copied().unwrap_or(0);
        let Some(rungs) = self.state.rungs.get_mut(b) else {
            return Decision::Continue;
        };
        let mut decision = Decision::Continue;
        for (milestone, recorded) in rungs.iter_mut() {
            let seen = recorded.contains_key(trial.id());
            if t >= *milestone && seen && !self.stop_last_trials {
                break;
            }
            if t < *milestone || seen {
                continue;
            }
            let values: Vec<f64> = recorded.values().copied().collect();
            let cutoff = percentile(&values, (1.0 - 1.0 / self.reduction_factor) * 100.0);
            if let (Some(c), Some(s)) = (cutoff, score)
                && s < c
            {
                decision = Decision::Stop;
            }
            if let Some(s) = score {
                recorded.insert(trial.id().to_owned(), s);
            }
            break;
        }
        decision
    }

    fn save_state(&self) -> Value {
        serde_json::to_value(&self.state).unwrap_or(Value::Null)
    }

    fn restore_state(&mut self, state: &Value) -> Result<()> {
        self.state = serde_json::from_value(state.clone()).map_err(|e| TuneError::Restore {
            path: "scheduler state".to_owned(),
            reason: format!("not an ASHAScheduler state ({e})"),
        })?;
        Ok(())
    }
}

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

    /// The result key that measures progress.
    pub fn with_time_attr(mut self, attr: &str) -> Self {
        attr.clone_into(&mut self.time_attr);
        self
    }

    /// No trial stops before this much `time_attr` (≥ 0).
    pub fn with_grace_period(mut self, g: f64) -> Result<Self> {
        let g = at_least("grace_period", g, 0.0)?;
        self.grace_period = g;
        Ok(self)
    }

    /// How many other trials must have reached the time (≥ 1).
    pub fn with_min_samples_required(mut self, n: usize) -> Result<Self> {
        if n == 0 {
            return Err(invalid("min_samples_required", 0, "at least 1"));
        }
        self.min_samples_required = n;
        Ok(self)
    }

    /// Stop (true, Ray's default) or pause (false) a trial below the median.
    pub fn with_hard_stop(mut self, hard: bool) -> Self {
        self.hard_stop = hard;
        self
    }

    /// Its own metric and mode instead of the tune config's.
    pub fn with_metric(mut self, metric: &str, mode: Mode) -> Self {
        self.own = Some((metric.to_owned(), mode));
        self
    }
}

impl TrialScheduler for MedianStoppingRule {
    fn name(&self) -> String {
        "MedianStoppingRule".to_owned()
    }

    fn setup(&mut self, metric: Option<&str>, mode: Option<Mode>, _: u64) -> Result<()> {
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
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn trial(id: &str) -> Trial {
        let mut t = Trial::new(
            id.to_owned(),
            id.to_owned(),
            json!({}),
            String::new(),
            BTreeMap::new(),
        );
        t.status = TrialStatus::Running;
        t
    }

    pub(crate) fn result(iter: u64, metric: f64) -> Metrics {
        let mut m = Metrics::new();
        m.insert("training_iteration".into(), json!(iter));
        m.insert("time_total_s".into(), json!(iter as f64));
        m.insert("loss".into(), json!(metric));
        m
    }

    #[test]
    fn asha_rungs_and_cutoffs_follow_ray() {
        let a = Asha::new();
        assert_eq!(a.milestones(0), vec![64.0, 16.0, 4.0, 1.0]);
        let a = Asha::new()
            .with_max_t(81.0)
            .unwrap()
            .with_reduction_factor(3.0)
            .unwrap();
        // As in Ray, a rung may sit at max_t itself (int(log(81)/log(3) + 1) = 5 rungs).
        assert_eq!(a.milestones(0), vec![81.0, 27.0, 9.0, 3.0, 1.0]);
        assert_eq!(a.milestones(1), vec![81.0, 27.0, 9.0, 3.0]);

        let mut a = Asha::new()
            .with_max_t(10.0)
            .unwrap()
            .with_reduction_factor(2.0)
            .unwrap();
        a.setup(Some("loss"), Some(Mode::Min), 0).unwrap();
        let table = TrialTable::default();
        let ts: Vec<Trial> = (0..4).map(|i| trial(&format!("t{i}"))).collect();
        for t in &ts {
            a.on_trial_add(&table, t);
        }
        // Rung 1: t0 (loss 1) records; t1 (loss 2) is worse than the median of {−1}: stop.
        assert_eq!(
            a.on_trial_result(&table, &ts[0], &result(1, 1.0)),
            Decision::Continue
        );
        assert_eq!(
            a.on_trial_result(&table, &ts[1], &result(1, 2.0)),
            Decision::Stop
        );
        // t2 (0.5) beats the 50th percentile of {−1, −2}.
        assert_eq!(
            a.on_trial_result(&table, &ts[2], &result(1, 0.5)),
            Decision::Continue
        );
        // A second result at the same rung changes nothing.
        assert_eq!(
            a.on_trial_result(&table, &ts[1], &result(1, 9.0)),
            Decision::Continue
        );
        // max_t stops everyone.
        assert_eq!(
            a.on_trial_result(&table, &ts[3], &result(10, 0.0)),
            Decision::Stop
        );
        assert!((percentile(&[1.0, 2.0, 3.0, 4.0], 75.0).unwrap() - 3.25).abs() < 1e-12);
        assert_eq!(percentile(&[f64::NAN], 50.0), None);
        assert!(Asha::new().with_reduction_factor(1.0).is_err());
        let mut bad = Asha::new().with_grace_period(200.0).unwrap();
        assert!(bad.setup(Some("loss"), Some(Mode::Min), 0).is_err());
        assert!(Asha::new().setup(None, None, 0).is_err());
    }

    #[test]
    fn median_rule_stops_below_median() {
        let mut m = MedianStoppingRule::new()
            .with_grace_period(1.0)
            .unwrap()
            .with_min_samples_required(2)
            .unwrap();
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
