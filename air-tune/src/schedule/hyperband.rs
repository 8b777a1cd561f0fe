//! Synchronous HyperBand (Li et al. 2018, as Ray's `HyperBandScheduler` runs it).

use std::collections::{BTreeMap, BTreeSet};

use air_train::Metrics;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Decision, TrialScheduler, metric_mode, time_of};
use crate::{
    Mode,
    error::{Result, TuneError, above, at_least},
    search::score_of,
    trial::{Trial, TrialStatus, TrialTable},
};

/// Synchronous HyperBand: trials fill brackets of successive halving (bracket *s* takes
/// `⌈s_max/(s+1)·η^s⌉` trials and starts them at `max_t·η^−s`); a trial that reaches its
/// bracket's milestone pauses until every live trial of the bracket has, then the best
/// `⌈n/η⌉` go on to a milestone η times further and the rest stop. Paused trials resume from
/// their latest checkpoint. Defaults are Ray's: `time_attr = "training_iteration"`,
/// `max_t = 81`, `reduction_factor = 3`, `stop_last_trials = true`.
#[derive(Debug, Clone)]
pub struct HyperBand {
    time_attr: String,
    max_t: f64,
    eta: f64,
    stop_last_trials: bool,
    own: Option<(String, Mode)>,
    metric: Option<(String, Mode)>,
    state: HbState,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct HbState {
    brackets: Vec<Bracket>,
    bracket_of: BTreeMap<String, usize>,
    /// Paused trials allowed to resume.
    resumable: BTreeSet<String>,
    /// No more trials will join: a bracket that is not full halves once its live trials wait.
    search_finished: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Bracket {
    capacity: usize,
    milestone: f64,
    /// Live members (not stopped, not failed).
    live: BTreeSet<String>,
    /// Scores of live members at the current milestone.
    recorded: BTreeMap<String, f64>,
    members: usize,
}

impl Default for HyperBand {
    fn default() -> Self {
        Self {
            time_attr: "training_iteration".to_owned(),
            max_t: 81.0,
            eta: 3.0,
            stop_last_trials: true,
            own: None,
            metric: None,
            state: HbState::default(),
        }
    }
}

impl HyperBand {
    /// HyperBand with Ray's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    super::time_and_metric_setters!();

    /// The most `time_attr` a trial gets (≥ 1).
    pub fn with_max_t(mut self, max_t: f64) -> Self {
        self.max_t = max_t;
        self
    }

    /// η, the halving rate (> 1).
    pub fn with_reduction_factor(mut self, eta: f64) -> Self {
        self.eta = eta;
        self
    }

    fn s_max_1(&self) -> usize {
        (self.max_t.ln() / self.eta.ln()).round() as usize + 1
    }

    fn new_bracket(&self, index: usize) -> Bracket {
        let s_max_1 = self.s_max_1();
        let s = s_max_1 - 1 - index % s_max_1;
        let n0 = (s_max_1 as f64 / (s + 1) as f64 * self.eta.powi(s as i32)).ceil() as usize;
        let r0 = (self.max_t * self.eta.powi(-(s as i32))).floor().max(1.0);
        Bracket {
            capacity: n0.max(1),
            milestone: r0,
            ..Bracket::default()
        }
    }

    /// Halves bracket `b` if every live member reached the milestone (and, unless `force`,
    /// the bracket is full). Returns the trials cut.
    fn try_halve(&mut self, b: usize, force: bool) -> Vec<String> {
        let max_t = self.max_t;
        let eta = self.eta;
        let br = &mut self.state.brackets[b];
        let all_in = !br.live.is_empty() && br.live.iter().all(|t| br.recorded.contains_key(t));
        if !all_in || (!force && br.members < br.capacity) {
            return Vec::new();
        }
        let mut ranked: Vec<(String, f64)> =
            br.recorded.iter().map(|(k, v)| (k.clone(), *v)).collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        let keep = (ranked.len() as f64 / eta).ceil().max(1.0) as usize;
        let cut: Vec<String> = ranked[keep..].iter().map(|r| r.0.clone()).collect();
        for c in &cut {
            br.live.remove(c);
        }
        br.recorded.clear();
        br.milestone = (br.milestone * eta).min(max_t);
        for (t, _) in ranked.into_iter().take(keep) {
            self.state.resumable.insert(t);
        }
        cut
    }
}

impl TrialScheduler for HyperBand {
    fn name(&self) -> String {
        "HyperBandScheduler".to_owned()
    }

    fn setup(&mut self, metric: Option<&str>, mode: Option<Mode>, _: u64) -> Result<()> {
        at_least("max_t", self.max_t, 1.0)?;
        above("reduction_factor", self.eta, 1.0)?;
        self.metric = Some(metric_mode("HyperBandScheduler", &self.own, metric, mode)?);
        self.state = HbState::default();
        Ok(())
    }

    fn on_trial_add(&mut self, _: &TrialTable, trial: &Trial) {
        let need_new = self
            .state
            .brackets
            .last()
            .is_none_or(|b| b.members >= b.capacity);
        if need_new {
            let b = self.new_bracket(self.state.brackets.len());
            self.state.brackets.push(b);
        }
        let i = self.state.brackets.len() - 1;
        let b = &mut self.state.brackets[i];
        b.members += 1;
        b.live.insert(trial.id().to_owned());
        self.state.bracket_of.insert(trial.id().to_owned(), i);
    }

    fn on_trial_result(&mut self, _: &TrialTable, trial: &Trial, result: &Metrics) -> Decision {
        let Some((metric, mode)) = self.metric.clone() else {
            return Decision::Continue;
        };
        let Some(t) = time_of(result, &self.time_attr) else {
            return Decision::Continue;
        };
        if t >= self.max_t && self.stop_last_trials {
            return Decision::Stop;
        }
        let Some(&b) = self.state.bracket_of.get(trial.id()) else {
            return Decision::Continue;
        };
        // It runs, so its promotion is used up (a chosen trial stays resumable until it runs,
        // in case the pool had no room for it).
        self.state.resumable.remove(trial.id());
        let br = &mut self.state.brackets[b];
        if !br.live.contains(trial.id()) {
            return Decision::Stop;
        }
        if t < br.milestone {
            return Decision::Continue;
        }
        let score = score_of(result, &metric, mode).unwrap_or(f64::NEG_INFINITY);
        br.recorded.insert(trial.id().to_owned(), score);
        let cut = self.try_halve(b, false);
        if cut.iter().any(|c| c == trial.id()) {
            return Decision::Stop;
        }
        if self.state.resumable.remove(trial.id()) {
            // Promoted while running: it simply goes on.
            Decision::Continue
        } else {
            Decision::Pause
        }
    }

    fn on_trial_complete(&mut self, _: &TrialTable, trial: &Trial, _: Option<&Metrics>) {
        if let Some(&b) = self.state.bracket_of.get(trial.id()) {
            let br = &mut self.state.brackets[b];
            br.live.remove(trial.id());
            br.recorded.remove(trial.id());
            self.state.resumable.remove(trial.id());
            self.try_halve(b, false);
        }
    }

    fn choose_trial_to_run(&mut self, trials: &TrialTable, candidates: &[&str]) -> Option<String> {
        if let Some(p) = candidates.iter().find(|id| {
            trials
                .get(id)
                .is_some_and(|t| t.status() == TrialStatus::Pending)
        }) {
            return Some((*p).to_owned());
        }
        if let Some(r) = candidates
            .iter()
            .find(|id| self.state.resumable.contains(**id))
        {
            return Some((*r).to_owned());
        }
        // Nothing runs and nothing new will come: halve the brackets that cannot fill up.
        let busy = trials
            .iter()
            .any(|t| matches!(t.status(), TrialStatus::Running | TrialStatus::Pending));
        if self.state.search_finished && !busy && !candidates.is_empty() {
            for b in 0..self.state.brackets.len() {
                self.try_halve(b, true);
            }
            if let Some(r) = candidates
                .iter()
                .find(|id| self.state.resumable.contains(**id))
            {
                return Some((*r).to_owned());
            }
        }
        None
    }

    fn on_search_finished(&mut self, _: &TrialTable) {
        self.state.search_finished = true;
    }

    fn save_state(&self) -> Value {
        serde_json::to_value(&self.state).unwrap_or(Value::Null)
    }

    fn restore_state(&mut self, state: &Value) -> Result<()> {
        self.state = serde_json::from_value(state.clone()).map_err(|e| TuneError::Restore {
            path: "scheduler state".to_owned(),
            reason: format!("not a HyperBandScheduler state ({e})"),
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::test_support::{result, trial};

    #[test]
    fn brackets_halve_synchronously() {
        let mut hb = HyperBand::new().with_max_t(9.0);
        hb.setup(Some("loss"), Some(Mode::Min), 0).unwrap();
        // s_max+1 = 3; the first bracket (s = 2) takes ⌈3/3·9⌉ = 9 trials starting at r = 1.
        assert_eq!(hb.new_bracket(0).capacity, 9);
        assert_eq!(hb.new_bracket(0).milestone, 1.0);
        assert_eq!(hb.new_bracket(2).capacity, 3);
        assert_eq!(hb.new_bracket(2).milestone, 9.0);
        let table = TrialTable::default();
        let ts: Vec<Trial> = (0..9).map(|i| trial(&format!("t{i}"))).collect();
        for t in &ts {
            hb.on_trial_add(&table, t);
        }
        for (i, t) in ts.iter().enumerate().take(8) {
            assert_eq!(
                hb.on_trial_result(&table, t, &result(1, i as f64)),
                Decision::Pause
            );
        }
        // The last one completes the rung: the best ⌈9/3⌉ = 3 (t0, t1, t2) go on; t8 is cut.
        assert_eq!(
            hb.on_trial_result(&table, &ts[8], &result(1, 8.0)),
            Decision::Stop
        );
        let cands: Vec<&str> = ts.iter().map(|t| t.id()).collect();
        let mut table = TrialTable::default();
        for t in &ts {
            let mut t = t.clone();
            t.status = TrialStatus::Paused;
            table.push(t);
        }
        let mut resumed = Vec::new();
        while let Some(r) = hb.choose_trial_to_run(&table, &cands) {
            // Starting it: its first result uses up the promotion.
            let t = table.get(&r).unwrap().clone();
            assert_eq!(
                hb.on_trial_result(&table, &t, &result(2, 0.0)),
                Decision::Continue
            );
            resumed.push(r);
        }
        assert_eq!(resumed, vec!["t0", "t1", "t2"]);
        assert_eq!(
            hb.on_trial_result(&table, &ts[5], &result(2, 0.0)),
            Decision::Stop
        );
        assert_eq!(
            hb.on_trial_result(&table, &ts[0], &result(2, 0.0)),
            Decision::Continue
        );
    }
}
