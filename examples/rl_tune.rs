//! Tune sweeps an RL trainer like any other: PPO on CartPole-v1 with three learning rates,
//! trials stopped early by ASHA on `episode_reward_mean` (Ray's
//! `Tuner(RLTrainer, param_space={"config": {"lr": grid_search([...])}})`).
//!
//! ```text
//! cargo run --release --features rl,tune --example rl_tune
//! ```
//!
//! Also a test (`cargo test --features rl,tune --example rl_tune`).

use std::num::NonZeroUsize;
use std::time::Instant;

use air::{
    rl::{RLTrainer, algo::PpoConfig, env::EnvSpec},
    train::{RunConfig, ScalingConfig, Verbosity},
    tune::{Asha, Mode, ResultGrid, TuneConfig, Tuner, grid_search, space},
};

/// Iterations a trial may run (ASHA's `max_t`).
const ITERATIONS: f64 = 40.0;

fn run(storage: &str) -> anyhow::Result<ResultGrid> {
    // The CartPole preset with a constant learning rate, which the sweep sets.
    let mut ppo = PpoConfig::cartpole();
    ppo.lr_schedule = None;
    let trainer = RLTrainer::new(
        ppo,
        EnvSpec::named("CartPole-v1")?,
        ScalingConfig::new(NonZeroUsize::MIN),
        RunConfig::new(storage),
    );
    let start = Instant::now();
    let grid = Tuner::new(
        trainer,
        space!({ "config": { "lr": grid_search([1e-4, 3e-4, 1e-3]) } }),
    )
    .with_tune_config(
        TuneConfig::new()
            .with_metric("episode_reward_mean", Mode::Max)
            .with_scheduler(
                Asha::new()
                    .with_max_t(ITERATIONS)
                    .with_grace_period(10.0)
                    .with_reduction_factor(2.0),
            ),
    )
    .with_run_config(
        RunConfig::new(storage)
            .with_name("ppo_lr_sweep")
            .with_stop("training_iteration", ITERATIONS)
            .with_verbose(Verbosity::Silent),
    )
    .fit()?;
    println!(
        "{} trials in {:.1} s",
        grid.len(),
        start.elapsed().as_secs_f64()
    );
    for r in &grid {
        println!(
            "  lr {:<7} iterations {:>3}  episode_reward_mean {:.1}",
            r.config["config"]["lr"],
            r.metrics["training_iteration"],
            r.metrics["episode_reward_mean"]
                .as_f64()
                .unwrap_or(f64::NAN),
        );
    }
    let best = grid.best_result()?;
    println!(
        "best: lr {} with episode_reward_mean {:.1}",
        best.config["config"]["lr"],
        best.metrics["episode_reward_mean"]
            .as_f64()
            .unwrap_or(f64::NAN)
    );
    Ok(grid)
}

#[cfg_attr(test, allow(dead_code))]
fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    run(&dir.path().display().to_string())?;
    Ok(())
}

#[test]
fn sweeps_three_learning_rates() {
    let dir = tempfile::tempdir().unwrap();
    let grid = run(&dir.path().display().to_string()).unwrap();
    assert_eq!(grid.len(), 3);
    assert_eq!(grid.num_errors(), 0, "{:?}", grid.errors());
    // A random CartPole policy averages ~22; the best learning rate does far better.
    let best = grid.best_result().unwrap();
    let reward = best.metrics["episode_reward_mean"].as_f64().unwrap();
    assert!(reward > 60.0, "best {reward}");
}
