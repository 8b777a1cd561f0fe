//! Ray AIR's XGBoost quick start, in Rust: read the breast cancer CSV, split 70/30, scale two
//! columns, boost 20 rounds on 2 data-parallel workers, print the metrics, then batch-predict
//! the validation split from the checkpoint (its preprocessor runs first).
//!
//! ```text
//! cargo run --release --example train_gbdt
//! ```
//!
//! Also a test (`cargo test --example train_gbdt`): validation accuracy at least 0.95.

use air::{
    data::{Dataset, StandardScaler},
    train::{
        FromCheckpoint, Predictor, RunConfig, ScalingConfig, Trainer, Verbosity,
        gbdt::{EvalMetric, GbdtParams, GbdtPredictor, GbdtTrainer, Objective},
    },
};
use anyhow::Context;
use std::num::NonZeroUsize;

fn run(storage: &str) -> anyhow::Result<f64> {
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
        RunConfig::new(storage)
            .with_name("gbdt")
            .with_verbose(Verbosity::Progress),
    )?
    .with_num_boost_round(20)
    .with_dataset("train", train)
    .with_dataset("valid", valid.clone())
    .with_preprocessor(StandardScaler::new(["mean radius", "mean texture"]));
    let result = trainer.fit()?.into_result()?;
    println!(
        "train-logloss {:.5}  valid-logloss {:.5}  valid-error {:.5}",
        result.metrics["train-logloss"].as_f64().unwrap_or(f64::NAN),
        result.metrics["valid-logloss"].as_f64().unwrap_or(f64::NAN),
        result.metrics["valid-error"].as_f64().unwrap_or(f64::NAN),
    );
    let checkpoint = result.checkpoint.context("a checkpoint")?;
    let predictor = GbdtPredictor::from_checkpoint(&checkpoint)?;
    let valid = valid.to_polars()?;
    let labels = air::data::to_f32_vector(&valid, "target")?;
    let predictions = predictor.predict(valid.drop("target")?)?;
    let p = predictions.column("predictions")?.f32()?;
    let correct = p
        .into_no_null_iter()
        .zip(&labels)
        .filter(|(p, y)| (*p > 0.5) == (**y > 0.5))
        .count();
    let accuracy = correct as f64 / labels.len() as f64;
    println!("validation accuracy {accuracy:.4} on {} rows", labels.len());
    Ok(accuracy)
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
fn quick_start_reaches_95_percent() {
    let dir = tempfile::tempdir().unwrap();
    assert!(run(dir.path().to_str().unwrap()).unwrap() >= 0.95);
}
