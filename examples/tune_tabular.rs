//! Ray AIR's PyTorch tabular starter tuner, in Rust: the MLP of `train_tabular` on the breast
//! cancer table, tuned over `{"train_loop_config": {"lr": loguniform(1e-4, 1e-2)}}` with metric
//! `loss` (min), 5 samples, 2 data-parallel workers per trial.
//!
//! ```text
//! cargo run --release --example tune_tabular [-- --epochs 20]
//! ```
//!
//! Also a test (`cargo test --example tune_tabular`).

#[path = "common/tabular.rs"]
mod tabular;

use std::num::NonZeroUsize;
use std::time::Instant;

use air::{
    data::{Chain, Concatenator, Dataset, FloatType, StandardScaler},
    train::{RunConfig, ScalingConfig, burn::BurnTrainer},
    tune::{Mode, ResultGrid, TuneConfig, Tuner, loguniform, space},
};
use anyhow::Context;
use serde_json::json;

fn run(storage: &str, epochs: u64) -> anyhow::Result<ResultGrid> {
    let data = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/data/breast_cancer.csv"
    );
    let dataset = Dataset::read_csv(data)?;
    let (train, _valid) = dataset.train_test_split(0.3)?;
    let preprocessor = Chain::new(vec![
        Box::new(StandardScaler::new(
            dataset.columns()?.into_iter().filter(|c| c != "target"),
        )),
        Box::new(
            Concatenator::new()
                .with_exclude(["target"])
                .with_dtype(FloatType::F32),
        ),
    ]);
    let trainer = BurnTrainer::new(
        tabular::train_loop,
        ScalingConfig::new(NonZeroUsize::new(2).unwrap()),
        RunConfig::new(storage),
    )
    .with_train_loop_config(json!({ "batch_size": 16, "num_epochs": epochs, "num_features": 30 }))
    .with_dataset("train", train)
    .with_preprocessor(preprocessor);
    let start = Instant::now();
    let grid = Tuner::new(
        trainer,
        space!({ "train_loop_config": { "lr": loguniform(1e-4, 1e-2) } }),
    )
    .with_tune_config(
        TuneConfig::new()
            .with_metric("loss", Mode::Min)
            .with_num_samples(NonZeroUsize::new(5).unwrap())
            .with_seed(0),
    )
    .with_run_config(RunConfig::new(storage).with_name("tabular_tuner"))
    .fit()?;
    println!(
        "{} trials in {:.2} s",
        grid.len(),
        start.elapsed().as_secs_f64()
    );
    for r in &grid {
        println!(
            "  {}  lr {:.6}  loss {:.4}",
            r.trial_id,
            r.config["train_loop_config"]["lr"]
                .as_f64()
                .unwrap_or(f64::NAN),
            r.metrics["loss"].as_f64().unwrap_or(f64::NAN)
        );
    }
    let best = grid.best_result()?;
    println!(
        "Best result: loss {:.4} with lr {} ({} epochs)",
        best.metrics["loss"].as_f64().context("loss")?,
        best.config["train_loop_config"]["lr"],
        epochs
    );
    Ok(grid)
}

/// Ray AIR's tabular starter tuner: `lr` in loguniform(1e-4, 1e-2).
#[derive(Debug, clap::Parser)]
struct Args {
    /// Epochs per trial.
    #[arg(long, default_value_t = 20)]
    epochs: u64,
}

#[cfg_attr(test, allow(dead_code))]
fn main() -> anyhow::Result<()> {
    let Args { epochs } = clap::Parser::parse();
    run(
        &std::env::temp_dir()
            .join("air_results")
            .display()
            .to_string(),
        epochs,
    )?;
    Ok(())
}

#[test]
fn larger_learning_rates_reach_lower_loss() {
    let dir = tempfile::tempdir().unwrap();
    let grid = run(dir.path().to_str().unwrap(), 5).unwrap();
    assert_eq!(grid.num_terminated(), 5);
    // Over few epochs the larger learning rates of the range train further.
    let best = grid.best_result().unwrap();
    let best_lr = best.config["train_loop_config"]["lr"].as_f64().unwrap();
    let mut lrs: Vec<f64> = grid
        .iter()
        .map(|r| r.config["train_loop_config"]["lr"].as_f64().unwrap())
        .collect();
    lrs.sort_by(f64::total_cmp);
    assert!(best_lr > lrs[2], "best lr {best_lr} among {lrs:?}");
    assert!(best.checkpoint.is_some());
}
