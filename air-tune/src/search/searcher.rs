//! The searcher interface: [`Searcher`], what it is told ([`SearchContext`]) and what it
//! answers ([`Suggestion`]); the numeric view of a space that model-based searchers share.

use std::{collections::BTreeMap, fmt, sync::Arc};

use air_train::Metrics;
use serde_json::Value;

use crate::{
    Mode,
    error::{Result, TuneError, invalid},
    space::{Domain, Numeric, ParamPath, Space},
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

impl SearchContext {
    /// The context of a search over `space` with no metric yet, seed 0 and no sample count:
    /// for driving a searcher without a tuner (ask and tell, tests, benchmarks).
    pub fn new(space: Space) -> Self {
        Self {
            metric: None,
            mode: None,
            space: Arc::new(space),
            num_samples: 0,
            seed: 0,
        }
    }

    /// The metric to optimise and its direction.
    pub fn with_metric(mut self, metric: &str, mode: Mode) -> Self {
        self.metric = Some(metric.to_owned());
        self.mode = Some(mode);
        self
    }

    /// The seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The number of samples the tune config would ask for.
    pub fn with_num_samples(mut self, n: usize) -> Self {
        self.num_samples = n;
        self
    }
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

    /// How many trials the searcher makes by itself over `space` with `num_samples`, when it
    /// knows (the basic generator's grid × samples); `None` (the default): the tuner asks it
    /// for `num_samples` trials.
    fn total_trials(&self, space: &Space, num_samples: usize) -> Option<usize> {
        let _ = (space, num_samples);
        None
    }
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

pub(crate) fn restore_err(what: &str, e: impl fmt::Display) -> TuneError {
    invalid("searcher state", e, &format!("the state saved by {what}"))
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

#[cfg(test)]
mod tests {

    use super::*;

    use crate::{choice, grid_search, space};

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
