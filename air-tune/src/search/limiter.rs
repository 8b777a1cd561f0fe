//! [`ConcurrencyLimiter`]: at most N trials of the wrapped searcher at once.

use std::{collections::BTreeSet, num::NonZeroUsize};

use air_train::Metrics;
use serde_json::Value;

use crate::{error::Result, space::Space};

use super::{SearchContext, Searcher, Suggestion, restore_err};

/// Limits how many trials of the wrapped searcher run at once (Ray's `ConcurrencyLimiter`):
/// model-based searchers learn more when fewer trials run blind in parallel.
#[derive(Debug)]
pub struct ConcurrencyLimiter {
    inner: Box<dyn Searcher>,
    max_concurrent: usize,
    live: BTreeSet<String>,
}

impl ConcurrencyLimiter {
    /// At most `max_concurrent` of `inner`'s trials run at once.
    pub fn new(inner: impl Searcher + 'static, max_concurrent: NonZeroUsize) -> Self {
        Self {
            inner: Box::new(inner),
            max_concurrent: max_concurrent.get(),
            live: BTreeSet::new(),
        }
    }
}

impl Searcher for ConcurrencyLimiter {
    fn name(&self) -> String {
        format!("ConcurrencyLimiter({})", self.inner.name())
    }

    fn setup(&mut self, ctx: &SearchContext) -> Result<()> {
        self.inner.setup(ctx)
    }

    fn suggest(&mut self, trial_id: &str) -> Suggestion {
        if self.live.len() >= self.max_concurrent {
            return Suggestion::Pending;
        }
        let s = self.inner.suggest(trial_id);
        if matches!(s, Suggestion::Config(_)) {
            self.live.insert(trial_id.to_owned());
        }
        s
    }

    fn on_trial_result(&mut self, trial_id: &str, result: &Metrics) {
        self.inner.on_trial_result(trial_id, result);
    }

    fn on_trial_complete(&mut self, trial_id: &str, result: Option<&Metrics>, error: bool) {
        self.live.remove(trial_id);
        self.inner.on_trial_complete(trial_id, result, error);
    }

    fn save_state(&self) -> Value {
        serde_json::json!({ "live": self.live, "inner": self.inner.save_state() })
    }

    fn restore_state(&mut self, state: &Value) -> Result<()> {
        self.live = serde_json::from_value(state["live"].clone())
            .map_err(|e| restore_err("ConcurrencyLimiter", e))?;
        self.inner.restore_state(&state["inner"])
    }

    fn total_trials(&self, space: &Space, num_samples: usize) -> Option<usize> {
        self.inner.total_trials(space, num_samples)
    }
}
