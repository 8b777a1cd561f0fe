//! The scheduler interface: [`TrialScheduler`] and the [`Decision`] it returns.

use std::fmt;

use air_train::Metrics;
use serde_json::Value;

use crate::{
    Mode,
    error::{Result, invalid},
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

pub(crate) fn metric_mode(
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

pub(crate) fn time_of(result: &Metrics, attr: &str) -> Option<f64> {
    result.get(attr).and_then(Value::as_f64)
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

/// The setters every scheduler that follows a time key has: the key that measures progress, and
/// its own metric and mode instead of the tune config's. Expanded inside each one's `impl`.
macro_rules! time_and_metric_setters {
    () => {
        /// The result key that measures progress (`training_iteration`, `time_total_s`, ...).
        pub fn with_time_attr(mut self, attr: &str) -> Self {
            attr.clone_into(&mut self.time_attr);
            self
        }

        /// Its own metric and mode instead of the tune config's.
        pub fn with_metric(mut self, metric: &str, mode: Mode) -> Self {
            self.own = Some((metric.to_owned(), mode));
            self
        }
    };
}
pub(crate) use time_and_metric_setters;
