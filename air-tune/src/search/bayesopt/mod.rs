//! Bayesian optimisation with a Gaussian process (Ray's `BayesOptSearch`, after the
//! `bayes_opt` package's defaults).

use std::{collections::BTreeMap, sync::Arc};

mod gp;

use air_train::Metrics;
use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use self::gp::{GpCache, LengthSearch};
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
/// over a log grid of 30 scales from 0.01 to 10 (the whole grid while there are fewer than 32
/// observations and whenever they have grown by a quarter since the last scan; in between,
/// a hill-climb from the last choice), noise 1e-6. The next point maximises the acquisition
/// (UCB with κ = 2.576 by default) over 2,000 random points, then a local search around the 5
/// best. Integer and quantised domains are rounded after the pick; `choice`, `grid_search` and
/// `randn` are refused (use [`super::TpeSearch`]).
///
/// The GP's distances and Cholesky factors grow by one row per completed trial (O(n²)) rather
/// than being refactored per suggestion (O(n³) per length scale), and the exact posterior
/// deviation (O(n²)) is computed only for points whose cheap upper bound could win; the pick is
/// the one exhaustive scoring makes.
#[derive(Debug)]
pub struct BayesOptSearch {
    random_search_steps: usize,
    acquisition: Acquisition,
    space: Option<Arc<Space>>,
    dims: Vec<(ParamPath, Domain, Numeric)>,
    state: GpState,
    /// Distances and factors kept between suggestions (rebuilt from `state` on restore).
    cache: GpCache,
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
    /// The length scale's grid index at the last fit (where the next fit's search starts).
    #[serde(default)]
    length_index: Option<usize>,
    /// Observations at the last scan of the whole length-scale grid.
    #[serde(default)]
    scanned_rows: usize,
}

impl Default for BayesOptSearch {
    fn default() -> Self {
        Self {
            random_search_steps: 10,
            acquisition: Acquisition::Ucb { kappa: 2.576 },
            space: None,
            dims: Vec::new(),
            state: GpState::default(),
            cache: GpCache::default(),
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

    /// How the next fit chooses its length scale (and the scan recorded if it scans).
    fn length_search(&mut self) -> LengthSearch {
        let n = self.state.observations.len();
        match self.state.length_index {
            Some(i) if n >= SCAN_BELOW && 4 * n < 5 * self.state.scanned_rows => {
                LengthSearch::From(i)
            }
            _ => {
                self.state.scanned_rows = n;
                LengthSearch::Scan
            }
        }
    }

    /// The next point in the unit cube: random for the first steps, then the acquisition's
    /// maximum over random candidates, refined by a local search around the best five.
    ///
    /// Every candidate's mean and a bound on its deviation cost O(n); the exact deviation,
    /// O(n²), is computed only for candidates whose bound could still beat the fifth best (and,
    /// in the local search, the point being improved). The pick is the one exhaustive scoring
    /// would make.
    fn pick(&mut self, rng: &mut dyn Rng) -> Vec<f64> {
        let d = self.dims.len();
        let n = self.state.observations.len();
        if n < self.random_search_steps.max(1) || d == 0 {
            return (0..d).map(|_| rng.random::<f64>()).collect();
        }
        let search = self.length_search();
        let best_y = self
            .state
            .observations
            .iter()
            .map(|o| o.1)
            .fold(f64::NEG_INFINITY, f64::max);
        let post = self.cache.fit(&self.state.observations, search);
        self.state.length_index = Some(post.index);
        let score = Scorer {
            acquisition: self.acquisition,
            best: post.standardise(best_y),
        };
        let candidates: Vec<f64> = (0..CANDIDATES * d).map(|_| rng.random::<f64>()).collect();
        let (mut k, mut scratch) = (Vec::new(), Vec::new());
        let mut order: Vec<(f64, usize)> = candidates
            .chunks_exact(d)
            .enumerate()
            .map(|(i, u)| {
                let e = post.estimate(u, &mut k);
                (score.bound(e.mean, e.sd_bound), i)
            })
            .collect();
        order.sort_by(|a, b| b.0.total_cmp(&a.0));
        // The best STARTS by exact score, ordered as a stable sort of all of them would be.
        let mut top: Vec<(f64, usize)> = Vec::with_capacity(STARTS + 1);
        for (bound, i) in order {
            if top.len() == STARTS && bound.total_cmp(&top[STARTS - 1].0).is_lt() {
                break;
            }
            let e = post.estimate(&candidates[i * d..(i + 1) * d], &mut k);
            let v = score.exact(e.mean, post.sd(&k, &mut scratch));
            let at = top.partition_point(|&(tv, ti)| tv.total_cmp(&v).then(i.cmp(&ti)).is_gt());
            top.insert(at, (v, i));
            top.truncate(STARTS);
        }
        let mut best = (f64::NEG_INFINITY, Vec::new());
        for (rank, (mut val, i)) in top.into_iter().enumerate() {
            let mut u = candidates[i * d..(i + 1) * d].to_vec();
            if rank == 0 {
                best = (val, u.clone());
            }
            let mut step = 0.1;
            while step > 1e-3 {
                let mut improved = false;
                for _ in 0..8 {
                    let cand: Vec<f64> = u
                        .iter()
                        .map(|x| (x + step * normal(rng)).clamp(0.0, 1.0))
                        .collect();
                    let e = post.estimate(&cand, &mut k);
                    if score.bound(e.mean, e.sd_bound) > val {
                        let v = score.exact(e.mean, post.sd(&k, &mut scratch));
                        if v > val {
                            (val, u, improved) = (v, cand, true);
                        }
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

/// Random candidates scored per suggestion.
const CANDIDATES: usize = 2000;
/// Candidates the local search starts from.
const STARTS: usize = 5;
/// Below this many observations every fit scans the whole length-scale grid; above, a fit
/// scans it again once the observations have grown by a quarter since the last scan and
/// otherwise hill-climbs from the last choice.
const SCAN_BELOW: usize = 32;

/// The acquisition at one point, in the posterior's standardised units.
#[derive(Debug, Clone, Copy)]
struct Scorer {
    acquisition: Acquisition,
    /// The best score seen, standardised.
    best: f64,
}

impl Scorer {
    /// The acquisition for posterior mean `mu` and deviation `sd`.
    fn exact(self, mu: f64, sd: f64) -> f64 {
        let best = self.best;
        match self.acquisition {
            Acquisition::Ucb { kappa } => kappa.mul_add(sd, mu),
            Acquisition::Ei { xi } => {
                let z = (mu - best - xi) / sd.max(1e-12);
                (mu - best - xi).mul_add(norm_cdf(z), sd * norm_pdf(z))
            }
            Acquisition::Poi { xi } => norm_cdf((mu - best - xi) / sd.max(1e-12)),
        }
    }

    /// An upper bound on [`Self::exact`] over every deviation up to `sd_bound`: UCB and EI
    /// grow with the deviation, POI grows with it below the target and is at most 1 above.
    fn bound(self, mu: f64, sd_bound: f64) -> f64 {
        match self.acquisition {
            Acquisition::Poi { xi } if mu - self.best - xi >= 0.0 => 1.0,
            _ => self.exact(mu, sd_bound),
        }
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
        self.cache.clear();
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
        self.cache.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{loguniform, randint, space, uniform};
    use serde_json::json;

    /// `pick` as written before pruning: every candidate scored exactly.
    fn pick_exhaustive(s: &mut BayesOptSearch, rng: &mut dyn Rng) -> Vec<f64> {
        let d = s.dims.len();
        let search = s.length_search();
        let best_y = s
            .state
            .observations
            .iter()
            .map(|o| o.1)
            .fold(f64::NEG_INFINITY, f64::max);
        let post = s.cache.fit(&s.state.observations, search);
        s.state.length_index = Some(post.index);
        let score = Scorer {
            acquisition: s.acquisition,
            best: post.standardise(best_y),
        };
        let acq = |u: &[f64]| {
            let mut k = Vec::new();
            let e = post.estimate(u, &mut k);
            score.exact(e.mean, post.sd(&k, &mut Vec::new()))
        };
        let mut scored: Vec<(f64, Vec<f64>)> = (0..CANDIDATES)
            .map(|_| {
                let u: Vec<f64> = (0..d).map(|_| rng.random::<f64>()).collect();
                (acq(&u), u)
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut best = scored[0].clone();
        for (mut val, mut u) in scored.into_iter().take(STARTS) {
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

    fn searcher(acquisition: Acquisition, seed: u64) -> BayesOptSearch {
        let mut s = BayesOptSearch::new().with_acquisition(acquisition);
        s.setup(&SearchContext {
            metric: Some("score".into()),
            mode: Some(Mode::Max),
            space: Arc::new(
                space!({"a": uniform(0.0, 1.0), "b": uniform(0.0, 1.0), "c": uniform(0.0, 1.0)}),
            ),
            num_samples: 80,
            seed,
        })
        .unwrap();
        s
    }

    #[test]
    fn pruned_pick_equals_exhaustive_pick_and_a_restored_searcher_picks_the_same() {
        let f = |u: &[f64]| {
            -u.iter().map(|x| (x - 0.3).powi(2)).sum::<f64>() + 0.1 * (9.0 * u[0]).sin()
        };
        for acquisition in [
            Acquisition::Ucb { kappa: 2.576 },
            Acquisition::Ei { xi: 0.0 },
            Acquisition::Poi { xi: 0.01 },
        ] {
            let mut warm = searcher(acquisition, 7);
            // Random steps, scans below 32 observations, hill-climbs above, a rescan at 40.
            for i in 0..44 {
                let rng = || variant_rng(7, 2, i);
                let cold = |s: &BayesOptSearch| {
                    let mut c = searcher(acquisition, 7);
                    c.restore_state(&s.save_state()).unwrap();
                    c
                };
                let (mut exhaustive, mut restored) = (cold(&warm), cold(&warm));
                let u = warm.pick(&mut rng());
                if [10, 31, 32, 35, 39, 40, 43].contains(&i) {
                    assert_eq!(
                        u,
                        pick_exhaustive(&mut exhaustive, &mut rng()),
                        "{acquisition:?} trial {i}"
                    );
                    assert_eq!(u, restored.pick(&mut rng()), "{acquisition:?} trial {i}");
                    assert_eq!(warm.state.length_index, restored.state.length_index);
                }
                let y = f(&u);
                warm.state.observations.push((u, y));
            }
        }
    }

    #[test]
    fn gp_interpolates_and_optimiser_beats_random() {
        let obs: Vec<(Vec<f64>, f64)> = (0..8)
            .map(|i| {
                let x = f64::from(i) / 7.0;
                (vec![x], (6.0 * x).sin())
            })
            .collect();
        let mut cache = GpCache::default();
        let gp = cache.fit(&obs, LengthSearch::Scan);
        let mut k = Vec::new();
        for (x, y) in &obs {
            let e = gp.estimate(x, &mut k);
            let sd = gp.sd(&k, &mut Vec::new());
            assert!(
                (e.mean - gp.standardise(*y)).abs() < 1e-3,
                "{} vs {y}",
                e.mean
            );
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
