//! Searchers: what config the next trial gets. [`BasicVariantGenerator`] (random and grid),
//! [`TpeSearch`], [`BayesOptSearch`], and the wrappers [`ConcurrencyLimiter`] and [`Repeater`].

mod bayesopt;
mod tpe;

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    sync::Arc,
};

use air_train::Metrics;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use bayesopt::{Acquisition, BayesOptSearch};
pub use tpe::TpeSearch;

use crate::{
    Mode,
    error::{Result, TuneError, invalid},
    space::{Domain, Numeric, ParamPath, Space, variant_rng},
};

/// What a searcher is told before the first suggestion.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SearchContext {
    /// The metric to optimise (from the tune config).
    pub metric: Option<String>,
    /// Whether lower or higher is better.
    pub mode: Option<Mode>,
    /// The param space.
    pub space: Arc<Space>,
    /// `num_samples` from the tune config.
    pub num_samples: usize,
    /// The experiment's seed (drawn once and saved when the tune config sets none).
    pub seed: u64,
}

/// A searcher's answer to "what should the next trial run?".
#[derive(Debug, Clone, PartialEq)]
pub enum Suggestion {
    /// Run a trial with this config.
    Config(Value),
    /// Nothing now; ask again when a trial completes.
    Pending,
    /// The searcher has nothing more to suggest.
    Finished,
}

/// Suggests configs and learns from results (Ray's `Searcher`).
pub trait Searcher: Send + fmt::Debug {
    /// The name saved with the experiment.
    fn name(&self) -> String;

    /// Receives the metric, mode and space once; refuses a space it cannot search.
    fn setup(&mut self, ctx: &SearchContext) -> Result<()>;

    /// The config for new trial `trial_id`.
    fn suggest(&mut self, trial_id: &str) -> Suggestion;

    /// An intermediate result of a trial.
    fn on_trial_result(&mut self, trial_id: &str, result: &Metrics) {
        let _ = (trial_id, result);
    }

    /// A trial ended: with its last result, or with an error.
    fn on_trial_complete(&mut self, trial_id: &str, result: Option<&Metrics>, error: bool);

    /// The searcher's state, saved with the experiment.
    fn save_state(&self) -> Value;

    /// Restores [`Searcher::save_state`]'s output (after `setup`).
    fn restore_state(&mut self, state: &Value) -> Result<()>;
}

/// The objective of a result, oriented so that higher is better; `None` when the metric is
/// missing or not finite.
pub(crate) fn score_of(result: &Metrics, metric: &str, mode: Mode) -> Option<f64> {
    let v = result.get(metric)?.as_f64()?;
    v.is_finite().then_some(match mode {
        Mode::Max => v,
        Mode::Min => -v,
    })
}

fn restore_err(what: &str, e: impl fmt::Display) -> TuneError {
    invalid("searcher state", e, &format!("the state saved by {what}"))
}

/// Random search over every domain and a full walk over the grid (Ray's default searcher).
///
/// The grid's cross product is repeated `num_samples` times; variant *i* draws its random
/// values from its own stream of the experiment seed, so runs with the same seed suggest the
/// same configs in the same order, and a restored experiment continues the sequence.
#[derive(Debug, Default)]
pub struct BasicVariantGenerator {
    space: Option<Arc<Space>>,
    state: BasicState,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct BasicState {
    seed: u64,
    next: usize,
    total: usize,
    grid: usize,
}

impl BasicVariantGenerator {
    /// Random and grid search.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Searcher for BasicVariantGenerator {
    fn name(&self) -> String {
        "BasicVariantGenerator".to_owned()
    }

    fn setup(&mut self, ctx: &SearchContext) -> Result<()> {
        let (_, grid) = ctx.space.grid();
        self.state = BasicState {
            seed: ctx.seed,
            next: 0,
            total: grid * ctx.num_samples,
            grid,
        };
        self.space = Some(ctx.space.clone());
        Ok(())
    }

    fn suggest(&mut self, _trial_id: &str) -> Suggestion {
        let Some(space) = &self.space else {
            return Suggestion::Finished;
        };
        if self.state.next >= self.state.total {
            return Suggestion::Finished;
        }
        let i = self.state.next;
        self.state.next += 1;
        let mut rng = variant_rng(self.state.seed, 0, i as u64);
        Suggestion::Config(space.variant(i % self.state.grid.max(1), &mut rng))
    }

    fn on_trial_complete(&mut self, _: &str, _: Option<&Metrics>, _: bool) {}

    fn save_state(&self) -> Value {
        serde_json::to_value(&self.state).unwrap_or(Value::Null)
    }

    fn restore_state(&mut self, state: &Value) -> Result<()> {
        self.state = serde_json::from_value(state.clone())
            .map_err(|e| restore_err("BasicVariantGenerator", e))?;
        Ok(())
    }
}

/// The dimensions a model-based searcher optimises, with their paths, and a check that the
/// space has nothing it cannot model.
pub(crate) fn numeric_dims(
    searcher: &str,
    space: &Space,
    allow_categorical: bool,
) -> Result<Vec<(ParamPath, Domain, Numeric)>> {
    let mut dims = Vec::new();
    for (path, d) in space.domains() {
        let unsupported = |hint: &str| TuneError::UnsupportedDomain {
            searcher: searcher.to_owned(),
            path: path.to_string(),
            domain: d.to_string(),
            hint: hint.to_owned(),
        };
        match (d, d.numeric()) {
            (Domain::SampleFrom(_), _) => {} // resolved after the searcher's picks
            (Domain::Grid(_), _) => {
                return Err(unsupported(
                    "grid_search is only walked by BasicVariantGenerator; use choice() here",
                ));
            }
            (Domain::RandN { .. } | Domain::QRandN { .. }, _) => {
                return Err(unsupported(
                    "a model-based searcher needs bounded domains; use uniform(mean - 3sd, mean + 3sd)",
                ));
            }
            (_, Some(Numeric::Categorical { .. })) if !allow_categorical => {
                return Err(unsupported(
                    "this searcher models continuous and integer domains only; use TpeSearch for choice()",
                ));
            }
            (_, Some(n)) => dims.push((path, d.clone(), n)),
            (_, None) => return Err(unsupported("unsupported domain")),
        }
    }
    Ok(dims)
}

/// Builds the config from one numeric value per dimension (domain scale, or a choice index).
pub(crate) fn config_from(
    space: &Space,
    dims: &[(ParamPath, Domain, Numeric)],
    xs: &[f64],
) -> Value {
    let picks: BTreeMap<&ParamPath, Value> = dims
        .iter()
        .zip(xs)
        .map(|((p, d, _), x)| (p, d.decode(*x)))
        .collect();
    space.build(&mut |path, d| {
        picks
            .get(path)
            .cloned()
            .unwrap_or_else(|| d.sample(&mut rand::rng()))
    })
}

/// Limits how many trials of the wrapped searcher run at once (Ray's `ConcurrencyLimiter`):
/// model-based searchers learn more when fewer trials run blind in parallel.
#[derive(Debug)]
pub struct ConcurrencyLimiter {
    inner: Box<dyn Searcher>,
    max_concurrent: usize,
    live: BTreeSet<String>,
}

impl ConcurrencyLimiter {
    /// At most `max_concurrent` (≥ 1) of `inner`'s trials run at once.
    pub fn new(inner: impl Searcher + 'static, max_concurrent: usize) -> Result<Self> {
        if max_concurrent == 0 {
            return Err(invalid("max_concurrent", 0, "at least 1"));
        }
        Ok(Self {
            inner: Box::new(inner),
            max_concurrent,
            live: BTreeSet::new(),
        })
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
}

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
    /// Repeats every suggestion `repeat` (≥ 1) times.
    pub fn new(inner: impl Searcher + 'static, repeat: usize) -> Result<Self> {
        if repeat == 0 {
            return Err(invalid("repeat", 0, "at least 1"));
        }
        Ok(Self {
            inner: Box::new(inner),
            repeat,
            set_index: true,
            metric: None,
            state: RepeaterState::default(),
        })
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
    use super::*;
    use crate::{choice, grid_search, randint, space, uniform};
    use serde_json::json;

    fn ctx(space: Space, num_samples: usize, seed: u64) -> SearchContext {
        SearchContext {
            metric: Some("score".into()),
            mode: Some(Mode::Max),
            space: Arc::new(space),
            num_samples,
            seed,
        }
    }

    fn drain(s: &mut dyn Searcher) -> Vec<Value> {
        let mut out = Vec::new();
        while let Suggestion::Config(c) = s.suggest(&format!("t{}", out.len())) {
            out.push(c);
        }
        out
    }

    #[test]
    fn basic_is_seeded_and_resumable() {
        let sp =
            || space!({"a": uniform(0.0, 1.0), "g": grid_search([1, 2]), "c": choice(["x", "y"])});
        let mut a = BasicVariantGenerator::new();
        a.setup(&ctx(sp(), 3, 42)).unwrap();
        let all = drain(&mut a);
        assert_eq!(all.len(), 6);
        assert_eq!(all.iter().filter(|c| c["g"] == json!(1)).count(), 3);
        let mut b = BasicVariantGenerator::new();
        b.setup(&ctx(sp(), 3, 42)).unwrap();
        assert_eq!(drain(&mut b), all);
        // Save after two suggestions, restore into a fresh generator, get the rest.
        let mut c = BasicVariantGenerator::new();
        c.setup(&ctx(sp(), 3, 42)).unwrap();
        let first: Vec<Value> = (0..2)
            .map(|i| match c.suggest(&i.to_string()) {
                Suggestion::Config(v) => v,
                other => panic!("{other:?}"),
            })
            .collect();
        let saved = c.save_state();
        let mut d = BasicVariantGenerator::new();
        d.setup(&ctx(sp(), 3, 42)).unwrap();
        d.restore_state(&saved).unwrap();
        let rest = drain(&mut d);
        assert_eq!([first, rest].concat(), all);
        let mut e = BasicVariantGenerator::new();
        e.setup(&ctx(sp(), 3, 43)).unwrap();
        assert_ne!(drain(&mut e), all);
    }

    #[test]
    fn limiter_and_repeater() {
        let mut l = ConcurrencyLimiter::new(BasicVariantGenerator::new(), 2).unwrap();
        l.setup(&ctx(space!({"a": randint(0, 10)}), 5, 1)).unwrap();
        assert!(matches!(l.suggest("a"), Suggestion::Config(_)));
        assert!(matches!(l.suggest("b"), Suggestion::Config(_)));
        assert_eq!(l.suggest("c"), Suggestion::Pending);
        l.on_trial_complete("a", None, false);
        assert!(matches!(l.suggest("c"), Suggestion::Config(_)));
        assert!(ConcurrencyLimiter::new(BasicVariantGenerator::new(), 0).is_err());

        let mut r = Repeater::new(BasicVariantGenerator::new(), 3).unwrap();
        r.setup(&ctx(space!({"a": randint(0, 1000)}), 2, 1))
            .unwrap();
        let cs = drain(&mut r);
        assert_eq!(cs.len(), 6);
        assert_eq!(cs[0]["a"], cs[2]["a"]);
        assert_eq!(cs[2]["__trial_index__"], json!(2));
        assert_ne!(cs[0]["a"], cs[3]["a"]);
    }

    #[test]
    fn model_searchers_refuse_what_they_cannot_model() {
        let e = numeric_dims("TpeSearch", &space!({"g": grid_search([1, 2])}), true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("g = grid_search") && e.contains("choice"), "{e}");
        let e = numeric_dims("BayesOptSearch", &space!({"c": choice([1, 2])}), false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("TpeSearch"), "{e}");
    }
}
