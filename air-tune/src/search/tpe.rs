//! Tree-structured Parzen Estimator with Optuna's `TPESampler` defaults as the model.

use std::{collections::BTreeMap, num::NonZeroUsize, sync::Arc};

use air_train::Metrics;
use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    SearchContext, Searcher, Suggestion, config_from, numeric_dims, restore_err, score_of,
};
use crate::{
    Mode,
    error::{Result, above, invalid},
    space::{Domain, Numeric, ParamPath, Space, variant_rng},
    stats::{log_sum_exp, norm_cdf, norm_ppf},
};

/// TPE (Bergstra et al. 2011) as Optuna's `TPESampler` runs it by default: the first
/// `n_startup_trials` (10) configs are random; after that each parameter is drawn
/// independently (univariate) from a Parzen estimator of the best `γ(n) = min(⌈0.1 n⌉, 25)`
/// completed trials, picking among `n_ei_candidates` (24) draws the one maximising
/// `log l(x) − log g(x)`. Kernels: a truncated normal per observation with Optuna's bandwidth
/// rule (distance to the farther neighbour, endpoints not considered, "magic clip" to
/// `range / min(100, 1 + n)`), plus a prior kernel (weight 1) over the whole range; observation
/// weights ramp up for old trials once there are more than 25. Log domains are modelled in log
/// space, quantised and integer domains as discrete bins, `choice` as a categorical with the
/// same prior weight.
#[derive(Debug)]
pub struct TpeSearch {
    n_startup_trials: usize,
    n_ei_candidates: usize,
    prior_weight: f64,
    space: Option<Arc<Space>>,
    dims: Vec<(ParamPath, Domain, Numeric)>,
    state: TpeState,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct TpeState {
    seed: u64,
    count: u64,
    metric: String,
    mode: Option<Mode>,
    /// Running trials: their sequence number and numeric picks.
    live: BTreeMap<String, (u64, Vec<f64>)>,
    /// Completed trials: sequence number, picks, loss (lower is better).
    observations: Vec<(u64, Vec<f64>, f64)>,
}

impl Default for TpeSearch {
    fn default() -> Self {
        Self {
            n_startup_trials: 10,
            n_ei_candidates: 24,
            prior_weight: 1.0,
            space: None,
            dims: Vec::new(),
            state: TpeState::default(),
        }
    }
}

impl TpeSearch {
    /// TPE with Optuna's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Random configs before the model is used (Optuna: 10).
    pub fn with_n_startup_trials(mut self, n: usize) -> Self {
        self.n_startup_trials = n;
        self
    }

    /// Candidates drawn from l(x) per parameter (Optuna: 24).
    pub fn with_n_ei_candidates(mut self, n: NonZeroUsize) -> Self {
        self.n_ei_candidates = n.get();
        self
    }

    /// The prior kernel's weight (Optuna: 1.0; positive, checked by `setup`).
    pub fn with_prior_weight(mut self, w: f64) -> Self {
        self.prior_weight = w;
        self
    }

    fn pick(&self, rng: &mut dyn Rng) -> Vec<f64> {
        let obs = &self.state.observations;
        if obs.len() < self.n_startup_trials.max(1) {
            return self
                .dims
                .iter()
                .map(|(_, d, _)| d.encode(&d.sample(rng)).unwrap_or(0.0))
                .collect();
        }
        let n_below = (obs.len() as f64 * 0.1).ceil().min(25.0) as usize;
        let mut by_loss: Vec<usize> = (0..obs.len()).collect();
        by_loss.sort_by(|&a, &b| obs[a].2.total_cmp(&obs[b].2).then(obs[a].0.cmp(&obs[b].0)));
        let mut is_below = vec![false; obs.len()];
        for &i in &by_loss[..n_below] {
            is_below[i] = true;
        }
        // Observations in trial order, so the weight ramp favours recent trials.
        let mut order: Vec<usize> = (0..obs.len()).collect();
        order.sort_by_key(|&i| obs[i].0);
        self.dims
            .iter()
            .enumerate()
            .map(|(j, (_, _, numeric))| {
                let below: Vec<f64> = order
                    .iter()
                    .filter(|&&i| is_below[i])
                    .map(|&i| obs[i].1[j])
                    .collect();
                let above: Vec<f64> = order
                    .iter()
                    .filter(|&&i| !is_below[i])
                    .map(|&i| obs[i].1[j])
                    .collect();
                match numeric {
                    Numeric::Categorical { n } => self.pick_categorical(*n, &below, &above, rng),
                    other => self.pick_numeric(&Scale::of(other), &below, &above, rng),
                }
            })
            .collect()
    }

    fn pick_numeric(&self, s: &Scale, below: &[f64], above: &[f64], rng: &mut dyn Rng) -> f64 {
        let to = |xs: &[f64]| xs.iter().map(|&x| s.forward(x)).collect::<Vec<_>>();
        let l = Mixture::fit(&to(below), s, self.prior_weight);
        let g = Mixture::fit(&to(above), s, self.prior_weight);
        let mut best = (f64::NEG_INFINITY, s.mid());
        for _ in 0..self.n_ei_candidates {
            let x = l.sample(s, rng);
            let score = l.log_pdf(x, s) - g.log_pdf(x, s);
            if score > best.0 {
                best = (score, x);
            }
        }
        s.backward(best.1)
    }

    fn pick_categorical(&self, n: usize, below: &[f64], above: &[f64], rng: &mut dyn Rng) -> f64 {
        let pl = categorical_probs(below, n, self.prior_weight);
        let pg = categorical_probs(above, n, self.prior_weight);
        let mut best = (f64::NEG_INFINITY, 0);
        for _ in 0..self.n_ei_candidates {
            let mut u = rng.random::<f64>();
            let mut c = n - 1;
            for (i, p) in pl.iter().enumerate() {
                if u < *p {
                    c = i;
                    break;
                }
                u -= p;
            }
            let score = pl[c].ln() - pg[c].ln();
            if score > best.0 {
                best = (score, c);
            }
        }
        best.1 as f64
    }
}

/// Optuna's `default_weights`: flat, with a linear ramp for the oldest beyond 25.
fn default_weights(n: usize) -> Vec<f64> {
    if n < 25 {
        return vec![1.0; n];
    }
    let ramp = n - 25;
    let mut w: Vec<f64> = (0..ramp)
        .map(|i| {
            if ramp == 1 {
                1.0 / n as f64
            } else {
                1.0 / n as f64 + (1.0 - 1.0 / n as f64) * i as f64 / (ramp - 1) as f64
            }
        })
        .collect();
    w.extend(std::iter::repeat_n(1.0, 25));
    w
}

fn categorical_probs(obs: &[f64], n: usize, prior_weight: f64) -> Vec<f64> {
    if obs.is_empty() {
        return vec![1.0 / n as f64; n];
    }
    let kernels = obs.len() + 1;
    let mut w = default_weights(obs.len());
    w.push(prior_weight);
    let total: f64 = w.iter().sum();
    let mut p = vec![0.0; n];
    for (k, wk) in w.iter().enumerate() {
        let mut row = vec![prior_weight / kernels as f64; n];
        if k < obs.len() {
            row[(obs[k] as usize).min(n - 1)] += 1.0;
        }
        let s: f64 = row.iter().sum();
        for (pc, r) in p.iter_mut().zip(&row) {
            *pc += wk / total * r / s;
        }
    }
    p
}

/// A numeric parameter in the space TPE models it in.
struct Scale {
    /// Range in model space.
    low: f64,
    high: f64,
    /// Bin width for discrete parameters (model space = domain scale then).
    step: Option<f64>,
    log: bool,
    int: bool,
}

impl Scale {
    fn of(n: &Numeric) -> Self {
        match *n {
            Numeric::Float {
                low,
                high,
                log: true,
                ..
            } => Self {
                low: low.ln(),
                high: high.ln(),
                step: None,
                log: true,
                int: false,
            },
            Numeric::Float {
                low, high, step, ..
            } => Self {
                low,
                high,
                step,
                log: false,
                int: false,
            },
            Numeric::Int {
                low,
                high,
                log: true,
                ..
            } => Self {
                low: (low as f64 - 0.5).ln(),
                high: (high as f64 + 0.5).ln(),
                step: None,
                log: true,
                int: true,
            },
            Numeric::Int {
                low, high, step, ..
            } => Self {
                low: low as f64,
                high: high as f64,
                step: Some(step as f64),
                log: false,
                int: true,
            },
            Numeric::Categorical { n } => Self {
                low: 0.0,
                high: n as f64 - 1.0,
                step: Some(1.0),
                log: false,
                int: true,
            },
        }
    }

    fn step0(&self) -> f64 {
        self.step.unwrap_or(0.0)
    }

    /// Truncation bounds of the kernels.
    fn bounds(&self) -> (f64, f64) {
        (
            self.low - self.step0() / 2.0,
            self.high + self.step0() / 2.0,
        )
    }

    fn mid(&self) -> f64 {
        0.5 * (self.low + self.high)
    }

    fn forward(&self, x: f64) -> f64 {
        if self.log { x.ln() } else { x }
    }

    fn backward(&self, x: f64) -> f64 {
        let x = if self.log { x.exp() } else { x };
        if self.int { x.round() } else { x }
    }

    fn snap(&self, x: f64) -> f64 {
        match self.step {
            Some(q) => (self.low + ((x - self.low) / q).round() * q).clamp(self.low, self.high),
            None => x.clamp(self.low, self.high),
        }
    }
}

struct Mixture {
    weights: Vec<f64>,
    mus: Vec<f64>,
    sigmas: Vec<f64>,
    /// `ln(weight / mass)` per kernel (mass: the kernel's probability inside the truncation
    /// bounds): the constant part of its log density.
    log_w_over_mass: Vec<f64>,
    /// `ln(weight / (mass · σ · √(2π)))` per kernel: a continuous kernel's log density is this
    /// minus `z² / 2`, so scoring a candidate takes one `exp` per kernel and no `ln`.
    log_coef: Vec<f64>,
    inv_sigmas: Vec<f64>,
}

impl Mixture {
    fn fit(obs: &[f64], s: &Scale, prior_weight: f64) -> Self {
        let step0 = s.step0();
        let range = s.high - s.low + step0;
        let prior_mu = s.mid();
        let mut with_prior = obs.to_vec();
        with_prior.push(prior_mu);
        let m = with_prior.len();
        let mut idx: Vec<usize> = (0..m).collect();
        idx.sort_by(|&a, &b| with_prior[a].total_cmp(&with_prior[b]));
        let mut ends = Vec::with_capacity(m + 2);
        ends.push(s.low - step0 / 2.0);
        ends.extend(idx.iter().map(|&i| with_prior[i]));
        ends.push(s.high + step0 / 2.0);
        let mut sorted_sigmas: Vec<f64> = (0..m)
            .map(|i| (ends[i + 1] - ends[i]).max(ends[i + 2] - ends[i + 1]))
            .collect();
        if ends.len() >= 4 {
            // Optuna's consider_endpoints=False: the outermost kernels ignore the bounds.
            sorted_sigmas[0] = ends[2] - ends[1];
            sorted_sigmas[m - 1] = ends[m] - ends[m - 1];
        }
        let mut sigmas = vec![0.0; m];
        for (rank, &i) in idx.iter().enumerate() {
            sigmas[i] = sorted_sigmas[rank];
        }
        sigmas.truncate(obs.len());
        let max_sigma = range;
        let min_sigma = range / 100f64.min(1.0 + (obs.len() + 1) as f64);
        for sg in &mut sigmas {
            *sg = sg.clamp(min_sigma, max_sigma);
        }
        let mut mus = obs.to_vec();
        mus.push(prior_mu);
        sigmas.push(range);
        let mut weights = default_weights(obs.len());
        weights.push(prior_weight);
        let total: f64 = weights.iter().sum();
        for w in &mut weights {
            *w /= total;
        }
        let (a, b) = s.bounds();
        let masses: Vec<f64> = mus
            .iter()
            .zip(&sigmas)
            .map(|(mu, sg)| (norm_cdf((b - mu) / sg) - norm_cdf((a - mu) / sg)).max(1e-300))
            .collect();
        let log_w_over_mass: Vec<f64> = weights
            .iter()
            .zip(&masses)
            .map(|(w, mass)| w.ln() - mass.ln())
            .collect();
        let half_ln_2pi = 0.5 * (2.0 * std::f64::consts::PI).ln();
        let log_coef = log_w_over_mass
            .iter()
            .zip(&sigmas)
            .map(|(c, sg)| c - sg.ln() - half_ln_2pi)
            .collect();
        let inv_sigmas = sigmas.iter().map(|sg| 1.0 / sg).collect();
        Self {
            weights,
            mus,
            sigmas,
            log_w_over_mass,
            log_coef,
            inv_sigmas,
        }
    }

    fn sample(&self, s: &Scale, rng: &mut dyn Rng) -> f64 {
        let mut u = rng.random::<f64>();
        let mut k = self.weights.len() - 1;
        for (i, w) in self.weights.iter().enumerate() {
            if u < *w {
                k = i;
                break;
            }
            u -= w;
        }
        let (a, b) = s.bounds();
        let (mu, sg) = (self.mus[k], self.sigmas[k]);
        let (ca, cb) = (norm_cdf((a - mu) / sg), norm_cdf((b - mu) / sg));
        let p = ca + (cb - ca) * rng.random::<f64>();
        let x = (mu + sg * norm_ppf(p)).clamp(a, b);
        s.snap(x)
    }

    fn log_pdf(&self, x: f64, s: &Scale) -> f64 {
        match s.step {
            // Continuous: each kernel's log density is `log_coef - z²/2`; the log-sum-exp
            // takes the largest first, then one `exp` per kernel.
            None => {
                let term = |k: usize| {
                    let z = (x - self.mus[k]) * self.inv_sigmas[k];
                    self.log_coef[k] - 0.5 * z * z
                };
                let n = self.mus.len();
                let m = (0..n).map(term).fold(f64::NEG_INFINITY, f64::max);
                if m == f64::NEG_INFINITY {
                    return m;
                }
                m + (0..n).map(|k| (term(k) - m).exp()).sum::<f64>().ln()
            }
            // Quantised: each kernel's mass on the step around `x`.
            Some(q) => {
                let terms: Vec<f64> = (0..self.mus.len())
                    .map(|k| {
                        let (mu, sg) = (self.mus[k], self.sigmas[k]);
                        let p = (norm_cdf((x + q / 2.0 - mu) / sg)
                            - norm_cdf((x - q / 2.0 - mu) / sg))
                        .max(1e-300);
                        self.log_w_over_mass[k] + p.ln()
                    })
                    .collect();
                log_sum_exp(terms.iter().copied())
            }
        }
    }
}

impl Searcher for TpeSearch {
    fn name(&self) -> String {
        "TpeSearch".to_owned()
    }

    fn setup(&mut self, ctx: &SearchContext) -> Result<()> {
        above("prior_weight", self.prior_weight, 0.0)?;
        let (Some(metric), Some(mode)) = (&ctx.metric, ctx.mode) else {
            return Err(invalid(
                "metric/mode",
                "unset",
                "TuneConfig::with_metric(name, Mode::Min | Mode::Max): TPE models that metric",
            ));
        };
        self.dims = numeric_dims("TpeSearch", &ctx.space, true)?;
        self.space = Some(ctx.space.clone());
        self.state = TpeState {
            seed: ctx.seed,
            metric: metric.clone(),
            mode: Some(mode),
            ..TpeState::default()
        };
        Ok(())
    }

    fn suggest(&mut self, trial_id: &str) -> Suggestion {
        let Some(space) = self.space.clone() else {
            return Suggestion::Finished;
        };
        self.state.count += 1;
        let mut rng = variant_rng(self.state.seed, 1, self.state.count);
        let xs = self.pick(&mut rng);
        let config = config_from(&space, &self.dims, &xs);
        // Record what was actually run (after rounding), so the model sees real configs.
        let xs: Vec<f64> = self
            .dims
            .iter()
            .zip(&xs)
            .map(|((p, d, _), x)| p.get(&config).and_then(|v| d.encode(v)).unwrap_or(*x))
            .collect();
        self.state
            .live
            .insert(trial_id.to_owned(), (self.state.count, xs));
        Suggestion::Config(config)
    }

    fn on_trial_complete(&mut self, trial_id: &str, result: Option<&Metrics>, error: bool) {
        let Some((seq, xs)) = self.state.live.remove(trial_id) else {
            return;
        };
        if error {
            return;
        }
        let mode = self.state.mode.unwrap_or(Mode::Min);
        if let Some(score) = result.and_then(|r| score_of(r, &self.state.metric, mode)) {
            self.state.observations.push((seq, xs, -score));
        }
    }

    fn save_state(&self) -> Value {
        serde_json::to_value(&self.state).unwrap_or(Value::Null)
    }

    fn restore_state(&mut self, state: &Value) -> Result<()> {
        self.state =
            serde_json::from_value(state.clone()).map_err(|e| restore_err("TpeSearch", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{choice, loguniform, randint, space, uniform};
    use serde_json::json;

    fn run(searcher: &mut dyn Searcher, n: usize, f: impl Fn(&Value) -> f64) -> Vec<f64> {
        (0..n)
            .map(|i| {
                let id = format!("t{i}");
                let Suggestion::Config(c) = searcher.suggest(&id) else {
                    panic!("no config")
                };
                let y = f(&c);
                let mut m = Metrics::new();
                m.insert("loss".into(), json!(y));
                searcher.on_trial_complete(&id, Some(&m), false);
                y
            })
            .collect()
    }

    fn ctx(space: Space, seed: u64) -> SearchContext {
        SearchContext {
            metric: Some("loss".into()),
            mode: Some(Mode::Min),
            space: Arc::new(space),
            num_samples: 0,
            seed,
        }
    }

    #[test]
    fn the_fast_density_equals_the_textbook_one() {
        use crate::stats::norm_pdf;
        let s = Scale::of(&Numeric::Float {
            low: -5.0,
            high: 10.0,
            log: false,
            step: None,
        });
        let obs: Vec<f64> = (0..40).map(|i| -4.0 + f64::from(i) * 0.33).collect();
        let m = Mixture::fit(&obs, &s, 1.0);
        let (a, b) = s.bounds();
        for x in [-5.0, -1.3, 0.0, 2.71, 9.99] {
            let textbook = (0..m.mus.len())
                .map(|k| {
                    let (mu, sg) = (m.mus[k], m.sigmas[k]);
                    let mass = norm_cdf((b - mu) / sg) - norm_cdf((a - mu) / sg);
                    m.weights[k] * norm_pdf((x - mu) / sg) / sg / mass
                })
                .sum::<f64>()
                .ln();
            assert!((m.log_pdf(x, &s) - textbook).abs() < 1e-12, "{x}");
        }
    }

    #[test]
    fn weights_follow_optuna() {
        assert_eq!(default_weights(3), vec![1.0; 3]);
        let w = default_weights(30);
        assert_eq!(w.len(), 30);
        assert!((w[0] - 1.0 / 30.0).abs() < 1e-12 && (w[4] - 1.0).abs() < 1e-12);
        let p = categorical_probs(&[0.0, 0.0], 3, 1.0);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(p[0] > p[1] && (p[1] - p[2]).abs() < 1e-12);
    }

    #[test]
    fn tpe_beats_random_search_on_a_quadratic() {
        let f = |c: &Value| {
            let x = c["x"].as_f64().unwrap();
            let y = c["y"].as_f64().unwrap();
            let k = c["k"].as_i64().unwrap() as f64;
            let opt = if c["c"] == json!("b") { 0.0 } else { 1.0 };
            (x - 0.3).powi(2) + (y.log10() + 3.0).powi(2) + 0.01 * (k - 7.0).powi(2) + opt
        };
        let sp = || space!({"x": uniform(-2.0, 2.0), "y": loguniform(1e-6, 1.0), "k": randint(0, 20), "c": choice(["a", "b", "c"])});
        let (mut tpe_wins, mut tpe_best, mut rnd_best) = (0, 0.0, 0.0);
        for seed in 0..5 {
            let mut tpe = TpeSearch::new();
            tpe.setup(&ctx(sp(), seed)).unwrap();
            let a = run(&mut tpe, 60, f)
                .into_iter()
                .fold(f64::INFINITY, f64::min);
            let mut rnd = super::super::BasicVariantGenerator::new();
            rnd.setup(&SearchContext {
                num_samples: 60,
                ..ctx(sp(), seed)
            })
            .unwrap();
            let b = run(&mut rnd, 60, f)
                .into_iter()
                .fold(f64::INFINITY, f64::min);
            tpe_wins += usize::from(a < b);
            tpe_best += a;
            rnd_best += b;
        }
        assert!(
            tpe_wins >= 4,
            "TPE won {tpe_wins}/5 ({tpe_best} vs {rnd_best})"
        );
        assert!(tpe_best < rnd_best * 0.5, "{tpe_best} vs {rnd_best}");
    }

    #[test]
    fn tpe_state_round_trips() {
        let mut a = TpeSearch::new();
        a.setup(&ctx(space!({"x": uniform(0.0, 1.0)}), 3)).unwrap();
        run(&mut a, 15, |c| c["x"].as_f64().unwrap());
        let saved = a.save_state();
        let mut b = TpeSearch::new();
        b.setup(&ctx(space!({"x": uniform(0.0, 1.0)}), 3)).unwrap();
        b.restore_state(&saved).unwrap();
        assert_eq!(a.suggest("n"), b.suggest("n"));
        let e = TpeSearch::new()
            .setup(&SearchContext {
                metric: None,
                ..ctx(space!({}), 0)
            })
            .unwrap_err();
        assert!(e.to_string().contains("with_metric"), "{e}");
    }
}
