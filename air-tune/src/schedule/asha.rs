//! [`Asha`]: asynchronous successive halving.

use std::{collections::BTreeMap, num::NonZeroUsize};

use air_train::Metrics;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    Mode,
    error::{Result, TuneError, above, invalid},
    space::variant_rng,
    trial::{Trial, TrialTable},
};

use super::{Decision, TrialScheduler, metric_mode, percentile, time_of};

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

    super::time_and_metric_setters!();

    /// Trials stop once `time_attr` reaches this (> 0).
    pub fn with_max_t(mut self, max_t: f64) -> Self {
        self.max_t = max_t;
        self
    }

    /// The first rung (> 0, at most `max_t`).
    pub fn with_grace_period(mut self, g: f64) -> Self {
        self.grace_period = g;
        self
    }

    /// The halving rate (> 1).
    pub fn with_reduction_factor(mut self, rf: f64) -> Self {
        self.reduction_factor = rf;
        self
    }

    /// The number of brackets.
    pub fn with_brackets(mut self, n: NonZeroUsize) -> Self {
        self.brackets = n.get();
        self
    }

    /// Whether trials stop at `max_t` (Ray: true).
    pub fn with_stop_last_trials(mut self, stop: bool) -> Self {
        self.stop_last_trials = stop;
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

impl TrialScheduler for Asha {
    fn name(&self) -> String {
        "ASHAScheduler".to_owned()
    }

    fn setup(&mut self, metric: Option<&str>, mode: Option<Mode>, seed: u64) -> Result<()> {
        above("max_t", self.max_t, 0.0)?;
        above("grace_period", self.grace_period, 0.0)?;
        above("reduction_factor", self.reduction_factor, 1.0)?;
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

#[cfg(test)]
mod tests {

    use super::*;
    use crate::schedule::test_support::{result, trial};

    #[test]
    fn asha_rungs_and_cutoffs_follow_ray() {
        let a = Asha::new();
        assert_eq!(a.milestones(0), vec![64.0, 16.0, 4.0, 1.0]);
        let a = Asha::new().with_max_t(81.0).with_reduction_factor(3.0);
        // As in Ray, a rung may sit at max_t itself (int(log(81)/log(3) + 1) = 5 rungs).
        assert_eq!(a.milestones(0), vec![81.0, 27.0, 9.0, 3.0, 1.0]);
        assert_eq!(a.milestones(1), vec![81.0, 27.0, 9.0, 3.0]);

        let mut a = Asha::new().with_max_t(10.0).with_reduction_factor(2.0);
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
        let e = Asha::new()
            .with_reduction_factor(1.0)
            .setup(Some("loss"), Some(Mode::Min), 0)
            .unwrap_err();
        assert!(e.to_string().contains("reduction_factor"), "{e}");
        let mut bad = Asha::new().with_grace_period(200.0);
        assert!(bad.setup(Some("loss"), Some(Mode::Min), 0).is_err());
        assert!(Asha::new().setup(None, None, 0).is_err());
    }
}
