//! [`Repeater`]: each config of the wrapped searcher run N times, their results averaged.

use std::{collections::BTreeMap, num::NonZeroUsize};

use air_train::Metrics;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Result, invalid};

use super::{SearchContext, Searcher, Suggestion, restore_err};

/// Runs each config of the wrapped searcher `repeat` times and tells the searcher the mean
/// (Ray's `Repeater`, for noisy objectives); with `set_index` each copy's config gets
/// `"__trial_index__"`.
#[derive(Debug)]
pub struct Repeater {
    inner: Box<dyn Searcher>,
    repeat: usize,
    set_index: bool,
    metric: Option<String>,
    state: RepeaterState,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct RepeaterState {
    /// The group being filled: the inner trial id, its config, how many copies were made.
    current: Option<(String, Value, usize)>,
    /// Trial id → group (inner trial id).
    member_of: BTreeMap<String, String>,
    /// Group → (copies, finished copies' metric values).
    groups: BTreeMap<String, (usize, Vec<f64>, usize)>,
}

impl Repeater {
    /// Repeats every suggestion `repeat` times.
    pub fn new(inner: impl Searcher + 'static, repeat: NonZeroUsize) -> Self {
        Self {
            inner: Box::new(inner),
            repeat: repeat.get(),
            set_index: true,
            metric: None,
            state: RepeaterState::default(),
        }
    }

    /// Whether copies get `"__trial_index__"` in their config (default true).
    pub fn with_set_index(mut self, set_index: bool) -> Self {
        self.set_index = set_index;
        self
    }
}

impl Searcher for Repeater {
    fn name(&self) -> String {
        format!("Repeater({})", self.inner.name())
    }

    fn setup(&mut self, ctx: &SearchContext) -> Result<()> {
        if ctx.metric.is_none() {
            return Err(invalid(
                "metric",
                "none",
                "a metric in the tune config: Repeater averages it",
            ));
        }
        self.metric.clone_from(&ctx.metric);
        self.inner.setup(ctx)
    }

    fn suggest(&mut self, trial_id: &str) -> Suggestion {
        let fresh = match &self.state.current {
            Some((_, _, n)) => *n >= self.repeat,
            None => true,
        };
        if fresh {
            match self.inner.suggest(trial_id) {
                Suggestion::Config(c) => {
                    self.state.current = Some((trial_id.to_owned(), c, 0));
                    self.state
                        .groups
                        .insert(trial_id.to_owned(), (0, Vec::new(), 0));
                }
                other => return other,
            }
        }
        let Some((group, config, n)) = &mut self.state.current else {
            return Suggestion::Finished;
        };
        let mut config = config.clone();
        if self.set_index
            && let Value::Object(m) = &mut config
        {
            m.insert("__trial_index__".to_owned(), Value::from(*n));
        }
        *n += 1;
        self.state
            .member_of
            .insert(trial_id.to_owned(), group.clone());
        if let Some(g) = self.state.groups.get_mut(group.as_str()) {
            g.0 += 1;
        }
        Suggestion::Config(config)
    }

    fn on_trial_complete(&mut self, trial_id: &str, result: Option<&Metrics>, error: bool) {
        let Some(group) = self.state.member_of.remove(trial_id) else {
            return;
        };
        let metric = self.metric.clone().unwrap_or_default();
        let Some(g) = self.state.groups.get_mut(&group) else {
            return;
        };
        g.2 += 1;
        if !error && let Some(v) = result.and_then(|r| r.get(&metric)).and_then(Value::as_f64) {
            g.1.push(v);
        }
        let complete = g.2 >= self.repeat;
        if complete {
            let (_, values, _) = self.state.groups.remove(&group).unwrap_or_default();
            if values.is_empty() {
                self.inner.on_trial_complete(&group, None, true);
            } else {
                let mean = values.iter().sum::<f64>() / values.len() as f64;
                let mut m = Metrics::new();
                m.insert(metric, Value::from(mean));
                self.inner.on_trial_complete(&group, Some(&m), false);
            }
        }
    }

    fn save_state(&self) -> Value {
        serde_json::json!({ "state": self.state, "inner": self.inner.save_state() })
    }

    fn restore_state(&mut self, state: &Value) -> Result<()> {
        self.state = serde_json::from_value(state["state"].clone())
            .map_err(|e| restore_err("Repeater", e))?;
        self.inner.restore_state(&state["inner"])
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::search::test_support::{ctx, drain};
    use crate::{randint, space};

    use crate::search::{BasicVariantGenerator, ConcurrencyLimiter};

    #[test]
    fn limiter_and_repeater() {
        let mut l =
            ConcurrencyLimiter::new(BasicVariantGenerator::new(), NonZeroUsize::new(2).unwrap());
        l.setup(&ctx(space!({"a": randint(0, 10)}), 5, 1)).unwrap();
        assert!(matches!(l.suggest("a"), Suggestion::Config(_)));
        assert!(matches!(l.suggest("b"), Suggestion::Config(_)));
        assert_eq!(l.suggest("c"), Suggestion::Pending);
        l.on_trial_complete("a", None, false);
        assert!(matches!(l.suggest("c"), Suggestion::Config(_)));

        let mut r = Repeater::new(BasicVariantGenerator::new(), NonZeroUsize::new(3).unwrap());
        r.setup(&ctx(space!({"a": randint(0, 1000)}), 2, 1))
            .unwrap();
        let cs = drain(&mut r);
        assert_eq!(cs.len(), 6);
        assert_eq!(cs[0]["a"], cs[2]["a"]);
        assert_eq!(cs[2]["__trial_index__"], json!(2));
        assert_ne!(cs[0]["a"], cs[3]["a"]);
    }
}
