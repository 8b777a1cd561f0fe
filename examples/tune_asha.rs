//! An ASHA sweep that stops bad trials early: 16 GBDT configs (eta, max_depth, subsample) on
//! the breast cancer table, 64 boosting rounds each at most, ASHA on `valid-logloss` with rungs
//! at 4, 16 and 64 rounds. Prints how many rounds ran against the 16 × 64 a FIFO sweep runs.
//!
//! ```text
//! cargo run --release --example tune_asha
//! ```
//!
//! Also a test (`cargo test --example tune_asha`).

use std::num::NonZeroUsize;
use std::time::Instant;

use air::{
    data::Dataset,
    train::{
        RunConfig, ScalingConfig,
        gbdt::{EvalMetric, GbdtParams, GbdtTrainer, Objective},
    },
    tune::{Asha, Mode, TuneConfig, Tuner, loguniform, randint, space, uniform},
};

const TRIALS: usize = 16;
const ROUNDS: u64 = 64;

/// Runs the sweep; returns (rounds run, best valid-logloss).
fn run(storage: &str) -> anyhow::Result<(u64, f64)> {
    let data = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/data/breast_cancer.csv"
    );
    let (train, valid) = Dataset::read_csv(data)?.train_test_split(0.3)?;
    let trainer = GbdtTrainer::new(
        "target",
        GbdtParams::new(Objective::BinaryLogistic).with_eval_metrics([EvalMetric::Logloss]),
        ScalingConfig::new(NonZeroUsize::MIN),
        RunConfig::new(storage),
    )?
    .with_num_boost_round(ROUNDS as usize)
    .with_dataset("train", train)
    .with_dataset("valid", valid);
    let start = Instant::now();
    let grid = Tuner::new(
        trainer,
        space!({ "params": {
            "eta": loguniform(1e-3, 0.5),
            "max_depth": randint(1, 9),
            "subsample": uniform(0.5, 1.0),
        } }),
    )
    .with_tune_config(
        TuneConfig::new()
            .with_metric("valid-logloss", Mode::Min)
            .with_num_samples(NonZeroUsize::new(TRIALS).unwrap())
            .with_seed(42)
            .with_scheduler(
                Asha::new()
                    .with_max_t(ROUNDS as f64)
                    .with_grace_period(4.0)
                    .with_reduction_factor(4.0),
            ),
    )
    .with_run_config(RunConfig::new(storage).with_name("asha_sweep"))
    .fit()?;
    let rounds: u64 = grid
        .iter()
        .map(|r| r.metrics["training_iteration"].as_u64().unwrap_or(0))
        .sum();
    let budget = TRIALS as u64 * ROUNDS;
    let best = grid.best_result()?;
    let best_loss = best.metrics["valid-logloss"].as_f64().unwrap_or(f64::NAN);
    println!(
        "{} trials in {:.2} s: {rounds} of {budget} rounds run ({:.0}% saved by ASHA)",
        grid.len(),
        start.elapsed().as_secs_f64(),
        100.0 * (1.0 - rounds as f64 / budget as f64)
    );
    for r in &grid {
        println!(
            "  {}  rounds {:>2}  valid-logloss {:.4}  {}",
            r.trial_id,
            r.metrics["training_iteration"],
            r.metrics["valid-logloss"].as_f64().unwrap_or(f64::NAN),
            r.config["params"]
        );
    }
    println!(
        "Best: valid-logloss {best_loss:.4} with {}",
        best.config["params"]
    );
    Ok((rounds, best_loss))
}

#[cfg_attr(test, allow(dead_code))]
fn main() -> anyhow::Result<()> {
    run(&std::env::temp_dir()
        .join("air_results")
        .display()
        .to_string())?;
    Ok(())
}

#[test]
fn asha_saves_most_of_the_rounds() {
    let dir = tempfile::tempdir().unwrap();
    let (rounds, best) = run(dir.path().to_str().unwrap()).unwrap();
    assert!(rounds < TRIALS as u64 * ROUNDS / 2, "{rounds}");
    assert!(best < 0.2, "{best}");
}
