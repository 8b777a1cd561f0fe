//! Bayesian optimisation with a Gaussian process (Ray's `BayesOptSearch`, after the
//! `bayes_opt` package's defaults).

use std::{collections::BTreeMap, sync::Arc};

use air_train::Metrics;
use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    SearchContext, Searcher, Suggestion, config_from, numeric_dims, restore_err, score_of,
};
use crate::{
    Mode,
    error::{Result, invalid},
    space::{Domain, Numeric, ParamPath, Space, normal, variant_rng},
    stats::{norm_cdf, norm_pdf},
};

/// The acquisition function maximised to pick the next point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Acquisition {
    /// Upper confidence bound μ + κσ (bayes_opt's default, κ = 2.576).
    Ucb {
        /// Exploration weight.
        kappa: f64,
    },
    /// Expected improvement over the best seen plus ξ.
    Ei {
        /// Exploration margin.
        xi: f64,
    },
    /// Probability of improvement over the best seen plus ξ.
    Poi {
        /// Exploration margin.
        xi: f64,
    },
}

/// Gaussian-process Bayesian optimisation over continuous and integer domains.
///
/// The first `random_search_steps` (10) configs are random. After that the GP is fitted to the
/// completed trials: inputs scaled to the unit cube (log domains in log space), scores
/// standardised, a Matérn ν=5/2 kernel whose length scale maximises the marginal likelihood
/// (a log grid over 0.01–10), noise 1e-6. The next point maximises the acquisition (UCB with
/// κ = 2.576 by default) over 2,000 random points, then a local search around the 5 best. Integer
/// and quantised domains are rounded after the pick; `choice`, `grid_search` and `randn` are
/// refused (use [`super::TpeSearch`]).
#[derive(Debug)]
pub struct BayesOptSearch {
    random_search_steps: usize,
    acquisition: Acquisition,
    space: Option<Arc<Space>>,
    dims: Vec<(ParamPath, Domain, Numeric)>,
    state: GpState,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct GpState {
    seed: u64,
    count: u64,
    metric: String,
    mode: Option<Mode>,
    live: BTreeMap<String, Vec<f64>>,
    /// Unit-cube inputs and scores (higher is better).
    observations: Vec<(Vec<f64>, f64)>,
}

impl Default for BayesOptSearch {
    fn default() -> Self {
        Self {
            random_search_steps: 10,
            acquisition: Acquisition::Ucb { kappa: 2.576 },
            space: None,
            dims: Vec::new(),
            state: GpState::default(),
        }
    }
}

impl BayesOptSearch {
    /// bayes_opt's defaults: 10 random steps, UCB with κ = 2.576.
    pub fn new() -> Self {
        Self::default()
    }

    /// Random configs before the GP is used.
    pub fn with_random_search_steps(mut self, n: usize) -> Self {
        self.random_search_steps = n;
        self
    }

    /// The acquisition function (κ, ξ finite and ≥ 0, checked by `setup`).
    pub fn with_acquisition(mut self, a: Acquisition) -> Self {
        self.acquisition = a;
        self
    }

    fn to_unit(n: &Numeric, x: f64) -> f64 {
        let (lo, hi, log) = bounds(n);
        let x = if log {
            x.max(f64::MIN_POSITIVE).ln()
        } else {
            x
        };
        ((x - lo) / (hi - lo)).clamp(0.0, 1.0)
    }

    fn from_unit(n: &Numeric, u: f64) -> f64 {
        let (lo, hi, log) = bounds(n);
        let x = lo + u.clamp(0.0, 1.0) * (hi - lo);
        if log { x.exp() } else { x }
    }

    fn pick(&self, rng: &mut dyn Rng) -> Vec<f64> {
        let d = self.dims.len();
        let obs = &self.state.observations;
        if obs.len() < self.random_search_steps.max(1) || d == 0 {
            return (0..d).map(|_| rng.random::<f64>()).collect();
        }
        let gp = Gp::fit(obs);
        let best_y = obs.iter().map(|o| o.1).fold(f64::NEG_INFINITY, f64::max);
        let acq = |u: &[f64]| {
            let (mu, sd) = gp.predict(u);
            let best = gp.standardise(best_y);
            match self.acquisition {
                Acquisition::Ucb { kappa } => mu + kappa * sd,
                Acquisition::Ei { xi } => {
                    let z = (mu - best - xi) / sd.max(1e-12);
                    (mu - best - xi) * norm_cdf(z) + sd * norm_pdf(z)
                }
                Acquisition::Poi { xi } => norm_cdf((mu - best - xi) / sd.max(1e-12)),
            }
        };
        let mut scored: Vec<(f64, Vec<f64>)> = (0..2000)
            .map(|_| {
                let u: Vec<f64> = (0..d).map(|_| rng.random::<f64>()).collect();
                (acq(&u), u)
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut best = scored[0].clone();
        for (mut val, mut u) in scored.into_iter().take(5) {
            let mut step = 0.1;
            while step > 1e-3 {
                let mut improved = false;
                for _ in 0..8 {
                    let cand: Vec<f64> = u
                        .iter()
                        .map(|x| (x + step * normal(rng)).clamp(0.0, 1.0))
                        .collect();
                    let v = acq(&cand);
                    if v > val {
                        (val, u, improved) = (v, cand, true);
                    }
                }
                if !improved {
                    step /= 2.0;
                }
            }
            if val > best.0 {
                best = (val, u);
            }
        }
        best.1
    }
}

fn bounds(n: &Numeric) -> (f64, f64, bool) {
    match *n {
        Numeric::Float { low, high, log, .. } if log => (low.ln(), high.ln(), true),
        Numeric::Float { low, high, .. } => (low, high, false),
        Numeric::Int { low, high, log, .. } if log => {
            ((low as f64 - 0.5).ln(), (high as f64 + 0.5).ln(), true)
        }
        Numeric::Int { low, high, .. } => (low as f64 - 0.5, high as f64 + 0.5, false),
        Numeric::Categorical { n } => (-0.5, n as f64 - 0.5, false),
    }
}

/// A fitted GP over the unit cube.
struct Gp {
    xs: Vec<Vec<f64>>,
    alpha: Vec<f64>,
    chol: Vec<Vec<f64>>,
    length: f64,
    y_mean: f64,
    y_std: f64,
}

fn matern52(a: &[f64], b: &[f64], length: f64) -> f64 {
    let r = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        .sqrt()
        / length;
    let s5 = 5f64.sqrt() * r;
    (1.0 + s5 + 5.0 / 3.0 * r * r) * (-s5).exp()
}

/// Lower Cholesky factor of `k`, or `None` if not positive definite.
fn cholesky(k: &[Vec<f64>]) -> Option<Vec<Vec<f64>>> {
    let n = k.len();
    let mut l = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = (0..j).map(|p| l[i][p] * l[j][p]).sum();
            if i == j {
                let d = k[i][i] - s;
                if d <= 0.0 {
                    return None;
                }
                l[i][j] = d.sqrt();
            } else {
                l[i][j] = (k[i][j] - s) / l[j][j];
            }
        }
    }
    Some(l)
}

fn solve_lower(l: &[Vec<f64>], b: &[f64]) -> Vec<f64> {
    let mut x = vec![0.0; b.len()];
    for i in 0..b.len() {
        let s: f64 = (0..i).map(|j| l[i][j] * x[j]).sum();
        x[i] = (b[i] - s) / l[i][i];
    }
    x
}

fn solve_upper_t(l: &[Vec<f64>], b: &[f64]) -> Vec<f64> {
    let n = b.len();
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        let s: f64 = (i + 1..n).map(|j| l[j][i] * x[j]).sum();
        x[i] = (b[i] - s) / l[i][i];
    }
    x
}

impl Gp {
    fn fit(obs: &[(Vec<f64>, f64)]) -> Self {
        let n = obs.len() as f64;
        let y_mean = obs.iter().map(|o| o.1).sum::<f64>() / n;
        let var = obs.iter().map(|o| (o.1 - y_mean).powi(2)).sum::<f64>() / n;
        let y_std = if var > 0.0 { var.sqrt() } else { 1.0 };
        let xs: Vec<Vec<f64>> = obs.iter().map(|o| o.0.clone()).collect();
        let ys: Vec<f64> = obs.iter().map(|o| (o.1 - y_mean) / y_std).collect();
        let mut best: Option<(f64, Self)> = None;
        for i in 0..30 {
            let length = 10f64.powf(-2.0 + 3.0 * f64::from(i) / 29.0);
            let mut noise = 1e-6;
            let chol = loop {
                let k: Vec<Vec<f64>> = xs
                    .iter()
                    .enumerate()
                    .map(|(a, xa)| {
                        xs.iter()
                            .enumerate()
                            .map(|(b, xb)| {
                                matern52(xa, xb, length) + if a == b { noise } else { 0.0 }
                            })
                            .collect()
                    })
                    .collect();
                match cholesky(&k) {
                    Some(l) => break l,
                    None => noise *= 10.0,
                }
            };
            let alpha = solve_upper_t(&chol, &solve_lower(&chol, &ys));
            let fit: f64 = ys.iter().zip(&alpha).map(|(y, a)| y * a).sum();
            let logdet: f64 = (0..chol.len()).map(|i| chol[i][i].ln()).sum();
            let lml = -0.5 * fit - logdet;
            if best.as_ref().is_none_or(|(b, _)| lml > *b) {
                best = Some((
                    lml,
                    Self {
                        xs: xs.clone(),
                        alpha,
                        chol,
                        length,
                        y_mean,
                        y_std,
                    },
                ));
            }
        }
        best.map(|(_, g)| g).unwrap_or(Self {
            xs,
            alpha: Vec::new(),
            chol: Vec::new(),
            length: 1.0,
            y_mean,
            y_std,
        })
    }

    fn standardise(&self, y: f64) -> f64 {
        (y - self.y_mean) / self.y_std
    }

    /// Posterior mean and standard deviation (standardised units) at `u`.
    fn predict(&self, u: &[f64]) -> (f64, f64) {
        if self.alpha.is_empty() {
            return (0.0, 1.0);
        }
        let k: Vec<f64> = self
            .xs
            .iter()
            .map(|x| matern52(x, u, self.length))
            .collect();
        let mu: f64 = k.iter().zip(&self.alpha).map(|(a, b)| a * b).sum();
        let v = solve_lower(&self.chol, &k);
        let var = (1.0 - v.iter().map(|x| x * x).sum::<f64>()).max(1e-12);
        (mu, var.sqrt())
    }
}

impl Searcher for BayesOptSearch {
    fn name(&self) -> String {
        "BayesOptSearch".to_owned()
    }

    fn setup(&mut self, ctx: &SearchContext) -> Result<()> {
        let a = self.acquisition;
        let v = match a {
            Acquisition::Ucb { kappa } => kappa,
            Acquisition::Ei { xi } | Acquisition::Poi { xi } => xi,
        };
        if !(v.is_finite() && v >= 0.0) {
            return Err(invalid(
                "acquisition",
                format!("{a:?}"),
                "κ or ξ finite and ≥ 0",
            ));
        }
        let (Some(metric), Some(mode)) = (&ctx.metric, ctx.mode) else {
            return Err(invalid(
                "metric/mode",
                "unset",
                "TuneConfig::with_metric(name, Mode::Min | Mode::Max): the GP models that metric",
            ));
        };
        self.dims = numeric_dims("BayesOptSearch", &ctx.space, false)?;
        self.space = Some(ctx.space.clone());
        self.state = GpState {
            seed: ctx.seed,
            metric: metric.clone(),
            mode: Some(mode),
            ..GpState::default()
        };
        Ok(())
    }

    fn suggest(&mut self, trial_id: &str) -> Suggestion {
        let Some(space) = self.space.clone() else {
            return Suggestion::Finished;
        };
        self.state.count += 1;
        let mut rng = variant_rng(self.state.seed, 2, self.state.count);
        let us = self.pick(&mut rng);
        let xs: Vec<f64> = self
            .dims
            .iter()
            .zip(&us)
            .map(|((_, _, n), u)| Self::from_unit(n, *u))
            .collect();
        let config = config_from(&space, &self.dims, &xs);
        let used: Vec<f64> = self
            .dims
            .iter()
            .zip(&xs)
            .map(|((p, d, n), x)| {
                let v = p.get(&config).and_then(|v| d.encode(v)).unwrap_or(*x);
                Self::to_unit(n, v)
            })
            .collect();
        self.state.live.insert(trial_id.to_owned(), used);
        Suggestion::Config(config)
    }

    fn on_trial_complete(&mut self, trial_id: &str, result: Option<&Metrics>, error: bool) {
        let Some(us) = self.state.live.remove(trial_id) else {
            return;
        };
        if error {
            return;
        }
        let mode = self.state.mode.unwrap_or(Mode::Max);
        if let Some(score) = result.and_then(|r| score_of(r, &self.state.metric, mode)) {
            self.state.observations.push((us, score));
        }
    }

    fn save_state(&self) -> Value {
        serde_json::to_value(&self.state).unwrap_or(Value::Null)
    }

    fn restore_state(&mut self, state: &Value) -> Result<()> {
        self.state =
            serde_json::from_value(state.clone()).map_err(|e| restore_err("BayesOptSearch", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{loguniform, randint, space, uniform};
    use serde_json::json;

    #[test]
    fn gp_interpolates_and_optimiser_beats_random() {
        let obs: Vec<(Vec<f64>, f64)> = (0..8)
            .map(|i| {
                let x = f64::from(i) / 7.0;
                (vec![x], (6.0 * x).sin())
            })
            .collect();
        let gp = Gp::fit(&obs);
        for (x, y) in &obs {
            let (mu, sd) = gp.predict(x);
            assert!((mu * gp.y_std + gp.y_mean - y).abs() < 1e-3, "{mu} vs {y}");
            assert!(sd < 1e-2);
        }
        let f = |c: &Value| {
            let x = c["x"].as_f64().unwrap();
            let lr = c["lr"].as_f64().unwrap();
            let k = c["k"].as_i64().unwrap() as f64;
            -((x - 0.7).powi(2) + (lr.log10() + 2.5).powi(2) * 0.5 + 0.02 * (k - 3.0).powi(2))
        };
        let sp =
            || space!({"x": uniform(0.0, 1.0), "lr": loguniform(1e-5, 1e-1), "k": randint(0, 10)});
        let mut wins = 0;
        for seed in 0..4 {
            let ctx = SearchContext {
                metric: Some("score".into()),
                mode: Some(Mode::Max),
                space: Arc::new(sp()),
                num_samples: 30,
                seed,
            };
            let mut best = [f64::NEG_INFINITY; 2];
            let mut bo = BayesOptSearch::new();
            bo.setup(&ctx).unwrap();
            let mut rnd = super::super::BasicVariantGenerator::new();
            rnd.setup(&ctx).unwrap();
            for (k, s) in [&mut bo as &mut dyn Searcher, &mut rnd]
                .into_iter()
                .enumerate()
            {
                for i in 0..30 {
                    let id = format!("t{i}");
                    let Suggestion::Config(c) = s.suggest(&id) else {
                        panic!()
                    };
                    let y = f(&c);
                    best[k] = best[k].max(y);
                    let mut m = Metrics::new();
                    m.insert("score".into(), json!(y));
                    s.on_trial_complete(&id, Some(&m), false);
                }
            }
            wins += usize::from(best[0] > best[1]);
        }
        assert!(wins >= 3, "GP won {wins}/4");
    }
}
