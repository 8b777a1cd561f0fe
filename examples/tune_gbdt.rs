//! Ray AIR's XGBoost starter tuner, in Rust: the breast cancer CSV split 70/30, StandardScaler
//! on two columns, the GBDT on 2 data-parallel workers, and a Tuner over
//! `{"params": {"max_depth": randint(1, 9)}}` with metric `train-logloss` (min), 5 samples.
//! Prints every trial and the best result with its config.
//!
//! ```text
//! cargo run --release --example tune_gbdt
//! ```
//!
//! Also a test (`cargo test --example tune_gbdt`).

use std::num::NonZeroUsize;
use std::time::Instant;

use air::{
    data::{Dataset, StandardScaler},
    train::{
        RunConfig, ScalingConfig,
        gbdt::{EvalMetric, GbdtParams, GbdtTrainer, Objective},
    },
    tune::{Mode, ResultGrid, TuneConfig, Tuner, randint, space},
};

fn run(storage: &str) -> anyhow::Result<ResultGrid> {
    let data = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/data/breast_cancer.csv"
    );
    let (train, valid) = Dataset::read_csv(data)?.train_test_split(0.3)?;
    let trainer = GbdtTrainer::new(
        "target",
        GbdtParams::new(Objective::BinaryLogistic)
            .with_eval_metrics([EvalMetric::Logloss, EvalMetric::Error]),
        ScalingConfig::new(NonZeroUsize::new(2).unwrap()),
        RunConfig::new(storage),
    )?
    .with_num_boost_round(20)
    .with_dataset("train", train)
    .with_dataset("valid", valid)
    .with_preprocessor(StandardScaler::new(["mean radius", "mean texture"]));
    let start = Instant::now();
    let grid = Tuner::new(
        trainer,
        space!({ "params": { "max_depth": randint(1, 9) } }),
    )
    .with_tune_config(
        TuneConfig::new()
            .with_metric("train-logloss", Mode::Min)
            .with_num_samples(NonZeroUsize::new(5).unwrap()),
    )
    .with_run_config(RunConfig::new(storage).with_name("xgboost_tuner"))
    .fit()?;
    println!(
        "{} trials in {:.2} s",
        grid.len(),
        start.elapsed().as_secs_f64()
    );
    for r in &grid {
        println!(
            "  {}  max_depth {}  train-logloss {:.5}  valid-error {:.4}",
            r.trial_id,
            r.config["params"]["max_depth"],
            r.metrics["train-logloss"].as_f64().unwrap_or(f64::NAN),
            r.metrics["valid-error"].as_f64().unwrap_or(f64::NAN),
        );
    }
    let best = grid.best_result()?;
    println!(
        "Best result: train-logloss {:.5}, valid-error {:.4}, config {}",
        best.metrics["train-logloss"].as_f64().unwrap_or(f64::NAN),
        best.metrics["valid-error"].as_f64().unwrap_or(f64::NAN),
        best.config
    );
    Ok(grid)
}

#[cfg_attr(test, allow(dead_code))]
fn main() -> anyhow::Result<()> {
    let storage = std::env::temp_dir().join("air_results");
    run(&storage.display().to_string())?;
    Ok(())
}

#[test]
fn tunes_max_depth_by_train_logloss() {
    let dir = tempfile::tempdir().unwrap();
    let grid = run(dir.path().to_str().unwrap()).unwrap();
    assert_eq!(grid.num_terminated(), 5);
    let best = grid.best_result().unwrap();
    let lowest = grid
        .iter()
        .map(|r| r.metrics["train-logloss"].as_f64().unwrap())
        .fold(f64::INFINITY, f64::min);
    assert_eq!(best.metrics["train-logloss"].as_f64().unwrap(), lowest);
    for r in &grid {
        let depth = r.config["params"]["max_depth"].as_i64().unwrap();
        assert!((1..9).contains(&depth), "randint(1, 9) drew {depth}");
        assert!(r.checkpoint.is_some());
    }
    assert!(best.metrics["valid-error"].as_f64().unwrap() < 0.1);
}
