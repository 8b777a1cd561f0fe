//! Search cost at hundreds to thousands of sequential trials: `TpeSearch`, `BayesOptSearch` (and
//! random search, the bookkeeping floor) on Branin (2-D), a 5-D mixed space (uniform,
//! log-uniform, integer, categorical, quantised) and that space without its categorical
//! parameter (`numeric`, for the GP), one trial at a time, trials/s and the best value found per
//! seed.
//!
//! ```text
//! cargo run --release --example tpe_bench -- --trials 200,1000,3000 --seeds 5
//! python3 benches/programs/tpe_optuna.py --trials 200,1000,3000 --seeds 5
//! cargo run --release --example tpe_bench -- --searchers bayesopt --problems branin,numeric \
//!     --trials 100,200,500 --driver searcher
//! python3 benches/programs/bayesopt_skopt.py --trials 100,200,500 --seeds 5
//! ```
//!
//! The same problems for Optuna's TPE (in-memory study) are `benches/programs/tpe_optuna.py`,
//! for scikit-optimize's `gp_minimize` `benches/programs/bayesopt_skopt.py`.
//!
//! `--driver tuner` (the default) runs each trial through the `Tuner`, with its trial
//! directories and result files on disk; `--driver searcher` asks and tells the searcher
//! directly, in memory like Optuna's study, which measures the search alone.

// The objectives are written as in the literature and in the Python side, not fused.
#![allow(clippy::suboptimal_flops)]

use std::{num::NonZeroUsize, time::Instant};

use air::{
    train::{RunConfig, Session, TrainError, Verbosity},
    tune::{
        BasicVariantGenerator, BayesOptSearch, Mode, SearchContext, Searcher, Space, Suggestion,
        TpeSearch, TuneConfig, Tuner, choice, loguniform, quniform, randint, space, uniform,
    },
};
use anyhow::Context;
use serde_json::{Value, json};

/// TPE's cost per trial as the history grows.
#[derive(Debug, clap::Parser)]
struct Options {
    /// Trial counts to run (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "200,1000,3000")]
    trials: Vec<usize>,
    /// Seeds per count.
    #[arg(long, default_value_t = 5)]
    seeds: u64,
    /// Searchers to run.
    #[arg(long, value_delimiter = ',', default_value = "tpe,random")]
    searchers: Vec<String>,
    /// Problems to run.
    #[arg(long, value_delimiter = ',', default_value = "branin,mixed")]
    problems: Vec<String>,
    /// What runs the trials.
    #[arg(long, value_enum, default_value_t = Driver::Tuner)]
    driver: Driver,
    /// Where the tuner writes its experiments (default: a temporary directory).
    #[arg(long)]
    storage: Option<std::path::PathBuf>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// What runs the trials.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Driver {
    /// The `Tuner`: trial directories, result files, experiment state.
    Tuner,
    /// The searcher alone, in memory (Optuna's in-memory study does the same).
    Searcher,
}

/// A searcher by its command-line name.
fn searcher(name: &str) -> anyhow::Result<Box<dyn Searcher>> {
    Ok(match name {
        "tpe" => Box::new(TpeSearch::new()),
        "bayesopt" => Box::new(BayesOptSearch::new()),
        "random" => Box::new(BasicVariantGenerator::new()),
        other => anyhow::bail!("unknown searcher {other:?}: tpe, bayesopt or random"),
    })
}

/// Runs `n` trials by asking and telling the searcher; the best value.
fn ask_and_tell(
    mut s: Box<dyn Searcher>,
    space: Space,
    objective: Objective,
    n: usize,
    seed: u64,
) -> anyhow::Result<f64> {
    s.setup(
        &SearchContext::new(space)
            .with_metric("value", Mode::Min)
            .with_num_samples(n)
            .with_seed(seed),
    )?;
    let mut best = f64::INFINITY;
    for i in 0..n {
        let id = format!("t{i}");
        let Suggestion::Config(config) = s.suggest(&id) else {
            anyhow::bail!("the searcher stopped suggesting after {i} trials");
        };
        let value = objective(&config);
        best = best.min(value);
        let mut result = serde_json::Map::new();
        result.insert("value".to_owned(), json!(value));
        s.on_trial_complete(&id, Some(&result), false);
    }
    Ok(best)
}

/// Branin on x ∈ [-5, 10], y ∈ [0, 15]; its minimum is 0.397887.
fn branin(c: &Value) -> f64 {
    let (x, y) = (
        c["x"].as_f64().unwrap_or(0.0),
        c["y"].as_f64().unwrap_or(0.0),
    );
    let pi = std::f64::consts::PI;
    let b = 5.1 / (4.0 * pi * pi);
    let t = 1.0 / (8.0 * pi);
    (y - b * x * x + 5.0 / pi * x - 6.0).powi(2) + 10.0 * (1.0 - t) * x.cos() + 10.0
}

/// A 5-D mixed space; its minimum is 0 (x1 = 1, x2 = 0.01, x3 = 7, x4 = "b", x5 = 0.3).
fn mixed(c: &Value) -> f64 {
    let x1 = c["x1"].as_f64().unwrap_or(0.0);
    let x2 = c["x2"].as_f64().unwrap_or(1.0);
    let x3 = c["x3"].as_f64().unwrap_or(0.0);
    let x5 = c["x5"].as_f64().unwrap_or(0.0);
    let x4 = match c["x4"].as_str() {
        Some("a") => 1.0,
        Some("b") => 0.0,
        _ => 0.5,
    };
    (x1 - 1.0).powi(2)
        + (x2.log10() + 2.0).powi(2)
        + (x3 - 7.0).powi(2) / 10.0
        + x4
        + (x5 - 0.3).powi(2)
}

/// The mixed space without its categorical parameter (a GP takes numeric domains only); its
/// minimum is 0.
fn numeric(c: &Value) -> f64 {
    let x1 = c["x1"].as_f64().unwrap_or(0.0);
    let x2 = c["x2"].as_f64().unwrap_or(1.0);
    let x3 = c["x3"].as_f64().unwrap_or(0.0);
    let x5 = c["x5"].as_f64().unwrap_or(0.0);
    (x1 - 1.0).powi(2) + (x2.log10() + 2.0).powi(2) + (x3 - 7.0).powi(2) / 10.0 + (x5 - 0.3).powi(2)
}

/// An objective: a config's value, to minimise.
type Objective = fn(&Value) -> f64;

fn problem(name: &str) -> anyhow::Result<(Space, Objective)> {
    Ok(match name {
        "branin" => (
            space!({ "x": uniform(-5.0, 10.0), "y": uniform(0.0, 15.0) }),
            branin as Objective,
        ),
        "mixed" => (
            space!({
                "x1": uniform(-5.0, 5.0), "x2": loguniform(1e-3, 1.0), "x3": randint(0, 10),
                "x4": choice(["a", "b", "c"]), "x5": quniform(0.0, 1.0, 0.1)
            }),
            mixed,
        ),
        "numeric" => (
            space!({
                "x1": uniform(-5.0, 5.0), "x2": loguniform(1e-3, 1.0), "x3": randint(0, 10),
                "x5": quniform(0.0, 1.0, 0.1)
            }),
            numeric,
        ),
        other => anyhow::bail!("unknown problem {other:?}: branin, mixed or numeric"),
    })
}

fn main() -> anyhow::Result<()> {
    let o: Options = clap::Parser::parse();
    let temp = tempfile::tempdir()?;
    let dir = o.storage.as_deref().unwrap_or(temp.path());
    let driver = match o.driver {
        Driver::Tuner => "tuner",
        Driver::Searcher => "search",
    };
    for problem_name in &o.problems {
        let (space, objective) = problem(problem_name)?;
        for searcher_name in &o.searchers {
            for &n in &o.trials {
                let mut rates = Vec::new();
                let mut bests = Vec::new();
                for seed in 0..o.seeds {
                    // Refuses an unknown name before any timing.
                    searcher(searcher_name)?;
                    let start = Instant::now();
                    let best = match o.driver {
                        Driver::Searcher => ask_and_tell(
                            searcher(searcher_name)?,
                            space.clone(),
                            objective,
                            n,
                            seed,
                        )?,
                        Driver::Tuner => {
                            let trainable = move |c: &Value, s: &mut Session| {
                                s.report(json!({ "value": objective(c) }), None)?;
                                Ok::<(), TrainError>(())
                            };
                            let config = TuneConfig::new()
                                .with_metric("value", Mode::Min)
                                .with_num_samples(NonZeroUsize::new(n).context("--trials 0")?)
                                .with_max_concurrent_trials(NonZeroUsize::MIN)
                                .with_seed(seed);
                            let config = match searcher_name.as_str() {
                                "tpe" => config.with_search_alg(TpeSearch::new()),
                                "bayesopt" => config.with_search_alg(BayesOptSearch::new()),
                                _ => config.with_search_alg(BasicVariantGenerator::new()),
                            };
                            let grid = Tuner::new(trainable, space.clone())
                                .with_tune_config(config)
                                .with_run_config(
                                    RunConfig::new(dir.to_str().context("utf-8 storage path")?)
                                        .with_name(&format!(
                                            "{problem_name}_{searcher_name}_{n}_{seed}"
                                        ))
                                        .with_verbose(Verbosity::Silent),
                                )
                                .fit()?;
                            grid.best_result()?.metrics["value"]
                                .as_f64()
                                .context("a numeric value")?
                        }
                    };
                    rates.push(n as f64 / start.elapsed().as_secs_f64());
                    bests.push(best);
                }
                let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len() as f64;
                println!(
                    "air {driver} {searcher_name:<6} {problem_name:<6} {n:>5} trials: {:>6.0} trials/s, best \
                     mean {:.4} (per seed {})",
                    mean(&rates),
                    mean(&bests),
                    bests
                        .iter()
                        .map(|b| format!("{b:.4}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                );
            }
        }
    }
    Ok(())
}
