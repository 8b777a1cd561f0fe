//! Population Based Training (Jaderberg et al. 2017, as Ray's `PopulationBasedTraining`).

use std::{collections::BTreeMap, fmt, sync::Arc};

use air_train::Metrics;
use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Decision, TrialScheduler, metric_mode, time_of};
use crate::{
    Mode,
    error::{Result, TuneError, above, at_least, invalid},
    search::score_of,
    space::{Domain, Key, ParamPath, variant_rng},
    trial::{Trial, TrialStatus, TrialTable},
};

/// A custom explore step applied to the perturbed config (Ray's `custom_explore_fn`).
pub type ExploreFn = Arc<dyn Fn(Value) -> Value + Send + Sync>;

#[derive(Debug, Clone)]
enum Mutation {
    Domain(Domain),
    Values(Vec<Value>),
}

/// Population Based Training: every `perturbation_interval` of `time_attr`, a trial in the
/// bottom `quantile_fraction` of the population (by its latest score) is told to
/// [`Decision::Exploit`] a random trial of the top quantile — restart from that trial's latest
/// checkpoint with its config explored: each mutated key is resampled with
/// `resample_probability` (or when its value is not among the listed values), else a listed
/// value moves to a neighbour and a numeric value is multiplied by one of
/// `perturbation_factors` (integers stay integers). Defaults are Ray's: `time_attr =
/// "time_total_s"`, `perturbation_interval = 60`, `burn_in_period = 0`, `quantile_fraction =
/// 0.25`, `resample_probability = 0.25`, factors (1.2, 0.8). A top trial without a checkpoint
/// cannot be cloned; the bottom trial then goes on.
#[derive(Clone)]
pub struct Pbt {
    time_attr: String,
    perturbation_interval: f64,
    burn_in_period: f64,
    quantile_fraction: f64,
    resample_probability: f64,
    factors: (f64, f64),
    /// The mutations as given (dotted path, domain); checked and compiled by `setup`.
    requested: Vec<(String, Domain)>,
    mutations: Vec<(ParamPath, Mutation)>,
    custom_explore: Option<ExploreFn>,
    own: Option<(String, Mode)>,
    metric: Option<(String, Mode)>,
    state: PbtState,
}

impl fmt::Debug for Pbt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pbt")
            .field("time_attr", &self.time_attr)
            .field("perturbation_interval", &self.perturbation_interval)
            .field("quantile_fraction", &self.quantile_fraction)
            .field("mutations", &self.requested)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct PbtState {
    seed: u64,
    draws: u64,
    last_perturbation: BTreeMap<String, f64>,
    last_score: BTreeMap<String, f64>,
    num_perturbations: u64,
}

impl Default for Pbt {
    fn default() -> Self {
        Self {
            time_attr: "time_total_s".to_owned(),
            perturbation_interval: 60.0,
            burn_in_period: 0.0,
            quantile_fraction: 0.25,
            resample_probability: 0.25,
            factors: (1.2, 0.8),
            requested: Vec::new(),
            mutations: Vec::new(),
            custom_explore: None,
            own: None,
            metric: None,
            state: PbtState::default(),
        }
    }
}

fn dotted(path: &str) -> ParamPath {
    ParamPath(path.split('.').map(|k| Key::Field(k.to_owned())).collect())
}

impl Pbt {
    /// PBT with Ray's defaults and no mutations yet.
    pub fn new() -> Self {
        Self::default()
    }

    super::time_and_metric_setters!();

    /// How much `time_attr` passes between perturbations of a trial (> 0).
    pub fn with_perturbation_interval(mut self, v: f64) -> Self {
        self.perturbation_interval = v;
        self
    }

    /// No perturbation before this much `time_attr` (≥ 0).
    pub fn with_burn_in_period(mut self, v: f64) -> Self {
        self.burn_in_period = v;
        self
    }

    /// The share of the population in the top and bottom quantiles (0 < q ≤ 0.5).
    pub fn with_quantile_fraction(mut self, q: f64) -> Self {
        self.quantile_fraction = q;
        self
    }

    /// How often a mutated key is resampled instead of perturbed (0 ≤ p ≤ 1).
    pub fn with_resample_probability(mut self, p: f64) -> Self {
        self.resample_probability = p;
        self
    }

    /// The factors (positive) a numeric value is multiplied by when perturbed.
    pub fn with_perturbation_factors(mut self, up: f64, down: f64) -> Self {
        self.factors = (up, down);
        self
    }

    /// Mutates the key at dotted `path` (`"train_loop_config.lr"`) by resampling `domain` or
    /// perturbing the current value (any domain but `sample_from`).
    pub fn with_mutation(mut self, path: &str, domain: Domain) -> Self {
        self.requested.push((path.to_owned(), domain));
        self
    }

    /// Mutates the key at `path` among `values` (a neighbour, or a resample; at least one).
    pub fn with_mutation_values<V: Into<Value>>(
        mut self,
        path: &str,
        values: impl IntoIterator<Item = V>,
    ) -> Self {
        let v: Vec<Value> = values.into_iter().map(Into::into).collect();
        self.requested.push((path.to_owned(), Domain::Choice(v)));
        self
    }

    /// Checks every setting and compiles the mutations (what `setup` runs first).
    fn check(&mut self) -> Result<()> {
        above("perturbation_interval", self.perturbation_interval, 0.0)?;
        at_least("burn_in_period", self.burn_in_period, 0.0)?;
        let q = self.quantile_fraction;
        if !(q > 0.0 && q <= 0.5) {
            return Err(invalid("quantile_fraction", q, "a fraction in (0, 0.5]"));
        }
        let p = self.resample_probability;
        if !(0.0..=1.0).contains(&p) {
            return Err(invalid(
                "resample_probability",
                p,
                "a probability in [0, 1]",
            ));
        }
        let (up, down) = self.factors;
        if !(up.is_finite() && down.is_finite() && up > 0.0 && down > 0.0) {
            return Err(invalid(
                "perturbation_factors",
                format!("({up}, {down})"),
                "positive factors",
            ));
        }
        self.mutations.clear();
        for (path, domain) in &self.requested {
            domain
                .validate()
                .map_err(|reason| TuneError::InvalidSpace {
                    path: path.clone(),
                    domain: domain.to_string(),
                    reason,
                })?;
            let m = match domain.clone() {
                Domain::Choice(v) | Domain::Grid(v) => Mutation::Values(v),
                Domain::SampleFrom(_) => {
                    return Err(invalid(
                        "mutation",
                        path,
                        "a domain or a list of values (sample_from has nothing to perturb)",
                    ));
                }
                d => Mutation::Domain(d),
            };
            self.mutations.push((dotted(path), m));
        }
        Ok(())
    }

    /// A function applied to every explored config.
    pub fn with_custom_explore(
        mut self,
        f: impl Fn(Value) -> Value + Send + Sync + 'static,
    ) -> Self {
        self.custom_explore = Some(Arc::new(f));
        self
    }

    /// How many exploits were decided.
    pub fn num_perturbations(&self) -> u64 {
        self.state.num_perturbations
    }

    /// The explored copy of `config`.
    pub(crate) fn explore(&self, config: &Value, rng: &mut dyn Rng) -> Value {
        let mut out = config.clone();
        for (path, m) in &self.mutations {
            let cur = path.get(config).cloned().unwrap_or(Value::Null);
            let resample = rng.random::<f64>() < self.resample_probability;
            let new = match m {
                Mutation::Values(vals) => match vals.iter().position(|v| *v == cur) {
                    Some(i) if !resample => {
                        let j = if rng.random::<bool>() {
                            (i + 1).min(vals.len() - 1)
                        } else {
                            i.saturating_sub(1)
                        };
                        vals[j].clone()
                    }
                    _ => vals[rng.random_range(0..vals.len())].clone(),
                },
                Mutation::Domain(d) => {
                    if resample || !cur.is_number() {
                        d.sample(rng)
                    } else {
                        let f = if rng.random::<bool>() {
                            self.factors.0
                        } else {
                            self.factors.1
                        };
                        let x = cur.as_f64().unwrap_or(0.0) * f;
                        if cur.is_i64() || cur.is_u64() {
                            Value::from(x.round() as i64)
                        } else {
                            Value::from(x)
                        }
                    }
                }
            };
            path.set(&mut out, new);
        }
        match &self.custom_explore {
            Some(f) => f(out),
            None => out,
        }
    }
}

impl TrialScheduler for Pbt {
    fn name(&self) -> String {
        "PopulationBasedTraining".to_owned()
    }

    fn setup(&mut self, metric: Option<&str>, mode: Option<Mode>, seed: u64) -> Result<()> {
        self.check()?;
        if self.mutations.is_empty() && self.custom_explore.is_none() {
            return Err(invalid(
                "hyperparam_mutations",
                "none",
                "with_mutation(...) or with_custom_explore(...): PBT needs something to explore",
            ));
        }
        self.metric = Some(metric_mode(
            "PopulationBasedTraining",
            &self.own,
            metric,
            mode,
        )?);
        self.state = PbtState {
            seed,
            ..PbtState::default()
        };
        Ok(())
    }

    fn on_trial_result(
        &mut self,
        trials: &TrialTable,
        trial: &Trial,
        result: &Metrics,
    ) -> Decision {
        let Some((metric, mode)) = &self.metric else {
            return Decision::Continue;
        };
        let (Some(t), Some(score)) = (
            time_of(result, &self.time_attr),
            score_of(result, metric, *mode),
        ) else {
            return Decision::Continue;
        };
        let id = trial.id().to_owned();
        self.state.last_score.insert(id.clone(), score);
        if t < self.burn_in_period {
            return Decision::Continue;
        }
        let last = self
            .state
            .last_perturbation
            .get(&id)
            .copied()
            .unwrap_or(0.0);
        if t - last < self.perturbation_interval {
            return Decision::Continue;
        }
        self.state.last_perturbation.insert(id.clone(), t);
        let mut ranked: Vec<(&String, f64)> = self
            .state
            .last_score
            .iter()
            .filter(|(k, _)| {
                trials
                    .get(k)
                    .is_none_or(|t| t.status() != TrialStatus::Error)
            })
            .map(|(k, v)| (k, *v))
            .collect();
        ranked.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(b.0)));
        let n = ranked.len();
        let mut q = (n as f64 * self.quantile_fraction).ceil() as usize;
        if q as f64 > n as f64 / 2.0 {
            q = n / 2;
        }
        if q == 0 || !ranked[..q].iter().any(|(k, _)| **k == id) {
            return Decision::Continue;
        }
        let sources: Vec<String> = ranked[n - q..]
            .iter()
            .map(|(k, _)| (*k).clone())
            .filter(|k| trials.get(k).is_some_and(Trial::has_checkpoint))
            .collect();
        if sources.is_empty() {
            tracing::debug!(trial = %id, "PBT: no top trial has a checkpoint to clone yet");
            return Decision::Continue;
        }
        let mut rng = variant_rng(self.state.seed, 4, self.state.draws);
        self.state.draws += 1;
        let source = sources[rng.random_range(0..sources.len())].clone();
        let Some(src) = trials.get(&source) else {
            return Decision::Continue;
        };
        let config = self.explore(src.config(), &mut rng);
        self.state.num_perturbations += 1;
        tracing::info!(trial = %id, source = %source, "PBT: exploit and explore");
        Decision::Exploit { source, config }
    }

    fn save_state(&self) -> Value {
        serde_json::to_value(&self.state).unwrap_or(Value::Null)
    }

    fn restore_state(&mut self, state: &Value) -> Result<()> {
        self.state = serde_json::from_value(state.clone()).map_err(|e| TuneError::Restore {
            path: "scheduler state".to_owned(),
            reason: format!("not a PopulationBasedTraining state ({e})"),
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::test_support::{result, trial};
    use crate::uniform;
    use serde_json::json;

    #[test]
    fn bottom_trials_exploit_top_ones() {
        let mut pbt = Pbt::new()
            .with_time_attr("training_iteration")
            .with_perturbation_interval(2.0)
            .with_mutation("lr", uniform(0.0, 1.0))
            .with_mutation_values("bs", [16, 32, 64]);
        pbt.setup(Some("loss"), Some(Mode::Min), 1).unwrap();
        let mut table = TrialTable::default();
        for i in 0..4 {
            let mut t = trial(&format!("t{i}"));
            t.config = json!({"lr": 0.5, "bs": 32});
            t.checkpoint_dir = Some("checkpoint_000000".into());
            table.push(t);
        }
        let ids: Vec<String> = table.iter().map(|t| t.id().to_owned()).collect();
        for (i, id) in ids.iter().enumerate() {
            let t = table.get(id).unwrap().clone();
            assert_eq!(
                pbt.on_trial_result(&table, &t, &result(1, i as f64)),
                Decision::Continue
            );
        }
        // At iteration 2 the worst (t3, loss 3) clones the best (t0).
        let t3 = table.get("t3").unwrap().clone();
        match pbt.on_trial_result(&table, &t3, &result(2, 3.0)) {
            Decision::Exploit { source, config } => {
                assert_eq!(source, "t0");
                let lr = config["lr"].as_f64().unwrap();
                assert!((0.0..=1.0).contains(&lr));
                assert!([json!(16), json!(32), json!(64)].contains(&config["bs"]));
            }
            other => panic!("{other:?}"),
        }
        // The best does not move.
        let t0 = table.get("t0").unwrap().clone();
        assert_eq!(
            pbt.on_trial_result(&table, &t0, &result(2, 0.0)),
            Decision::Continue
        );
        assert_eq!(pbt.num_perturbations(), 1);
        assert!(Pbt::new().setup(Some("loss"), Some(Mode::Min), 0).is_err());
    }

    #[test]
    fn explore_perturbs_by_factors() {
        let mut pbt = Pbt::new()
            .with_resample_probability(0.0)
            .with_mutation("a.lr", uniform(0.0, 10.0))
            .with_mutation("n", crate::randint(1, 100));
        // The tuner runs `setup` first: it checks the settings and compiles the mutations.
        pbt.setup(Some("loss"), Some(Mode::Min), 0).unwrap();
        let mut rng = variant_rng(0, 0, 0);
        for _ in 0..50 {
            let c = pbt.explore(&json!({"a": {"lr": 1.0}, "n": 10}), &mut rng);
            let lr = c["a"]["lr"].as_f64().unwrap();
            assert!((lr - 1.2).abs() < 1e-12 || (lr - 0.8).abs() < 1e-12, "{lr}");
            assert!(c["n"] == json!(12) || c["n"] == json!(8), "{c}");
        }
    }
}
