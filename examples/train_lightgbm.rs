//! Ray AIR's LightGBMTrainer example, in Rust: the breast cancer table with a string column,
//! a `Categorizer` that fixes its categories (saved in the checkpoint), LightGBM-style trees
//! (leaf-wise, 15 leaves, no depth limit, learning rate 0.1) that split the categorical column
//! on category sets rather than one-hot columns, on 2 data-parallel workers; then the
//! validation split predicted from the checkpoint, SHAP values included.
//!
//! ```text
//! cargo run --release --example train_lightgbm
//! ```
//!
//! Also a test (`cargo test --example train_lightgbm`): validation accuracy at least 0.95,
//! the categorical column used by category-set splits, SHAP values summing to the margins.

use air::{
    data::{Categorizer, Chain, Dataset, StandardScaler, polars::prelude::*},
    train::{
        FromCheckpoint, Predictor, RunConfig, ScalingConfig, Trainer, Verbosity,
        gbdt::{
            CONTRIBUTIONS, EvalMetric, GbdtParams, GbdtPredictor, GbdtTrainer, Objective,
            load_gbdt_model,
        },
    },
};
use anyhow::Context;
use std::num::NonZeroUsize;

/// What the run found (read by the test).
#[cfg_attr(not(test), allow(dead_code))]
struct Outcome {
    accuracy: f64,
    categorical_splits: usize,
    worst_shap_sum_error: f32,
}

/// The breast cancer table with `categorical_column`: the tumour's size class from its mean
/// radius, in place of the size measurements (radius, perimeter, area), so that size reaches
/// the model only through the string column (Ray's `breast_cancer_with_categorical.csv` adds a
/// string column too).
fn table() -> anyhow::Result<Dataset> {
    let data = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/data/breast_cancer.csv"
    );
    let df = Dataset::read_csv(data)?.to_polars()?;
    let sizes: Vec<&str> = df
        .column("mean radius")?
        .cast(&DataType::Float64)?
        .f64()?
        .into_no_null_iter()
        .map(|r| match r {
            r if r < 12.0 => "small",
            r if r < 15.0 => "medium",
            _ => "large",
        })
        .collect();
    let df = df
        .lazy()
        .with_column(
            lit(Series::new("categorical_column".into(), sizes)).alias("categorical_column"),
        )
        .drop(by_name(
            [
                "mean radius",
                "mean perimeter",
                "mean area",
                "radius error",
                "perimeter error",
                "area error",
                "worst radius",
                "worst perimeter",
                "worst area",
            ],
            true,
            false,
        ))
        .collect()?;
    Ok(Dataset::from_polars(df))
}

fn run(storage: &str) -> anyhow::Result<Outcome> {
    let (train, valid) = table()?.train_test_split(0.3)?;
    // LightGBM-style growth: leaf-wise to 15 leaves, no depth limit, learning rate 0.1; on
    // 400 rows the leaves need a hessian of 1 (LightGBM's min_data_in_leaf plays that role).
    let params = GbdtParams::new(Objective::BinaryLogistic)
        .with_lossguide(15)
        .with_max_depth(0)
        .with_eta(0.1)
        .with_eval_metrics([EvalMetric::Logloss, EvalMetric::Error]);
    let trainer = GbdtTrainer::new(
        "target",
        params,
        ScalingConfig::new(NonZeroUsize::new(2).unwrap()),
        RunConfig::new(storage)
            .with_name("lightgbm")
            .with_verbose(Verbosity::Progress),
    )?
    .with_num_boost_round(100)
    .with_dataset("train", train)
    .with_dataset("valid", valid.clone())
    .with_preprocessor(Chain::new(vec![
        Box::new(Categorizer::new(["categorical_column"])),
        Box::new(StandardScaler::new(["mean texture"])),
    ]));
    let result = trainer.fit()?.into_result()?;
    println!(
        "train-logloss {:.5}  valid-logloss {:.5}  valid-error {:.5}",
        result.metrics["train-logloss"].as_f64().unwrap_or(f64::NAN),
        result.metrics["valid-logloss"].as_f64().unwrap_or(f64::NAN),
        result.metrics["valid-error"].as_f64().unwrap_or(f64::NAN),
    );
    let checkpoint = result.checkpoint.context("a checkpoint")?;
    let model = load_gbdt_model(&checkpoint)?;
    let categorical_splits = model
        .trees
        .iter()
        .map(|t| {
            (0..t.len())
                .filter(|i| t.category_set(*i).is_some())
                .count()
        })
        .sum();
    println!(
        "{} trees, {categorical_splits} splits on categorical_column's categories",
        model.trees.len()
    );
    let predictor = GbdtPredictor::from_checkpoint(&checkpoint)?.with_contributions();
    let valid = valid.to_polars()?;
    let labels = air::data::to_f32_vector(&valid, "target")?;
    let out = predictor.predict(valid.drop("target")?)?;
    let p: Vec<f32> = out
        .column("predictions")?
        .f32()?
        .into_no_null_iter()
        .collect();
    let correct = p
        .iter()
        .zip(&labels)
        .filter(|(p, y)| (**p > 0.5) == (**y > 0.5))
        .count();
    let accuracy = correct as f64 / labels.len() as f64;
    // SHAP values (features, then the bias) add up to the log-odds.
    let contributions = out.column(CONTRIBUTIONS)?.array()?;
    let mut worst_shap_sum_error = 0.0f32;
    for (i, p) in p.iter().enumerate() {
        let row = contributions
            .get_as_series(i)
            .context("a contributions row")?;
        let sum: f32 = row.f32()?.into_no_null_iter().sum();
        let margin = (p / (1.0 - p)).ln();
        worst_shap_sum_error = worst_shap_sum_error.max((sum - margin).abs());
    }
    println!(
        "validation accuracy {accuracy:.4} on {} rows; SHAP sums within {worst_shap_sum_error:.1e} of the log-odds",
        labels.len()
    );
    Ok(Outcome {
        accuracy,
        categorical_splits,
        worst_shap_sum_error,
    })
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
fn lightgbm_style_flow_reaches_95_percent() {
    let dir = tempfile::tempdir().unwrap();
    let outcome = run(dir.path().to_str().unwrap()).unwrap();
    assert!(outcome.accuracy >= 0.95, "accuracy {}", outcome.accuracy);
    assert!(outcome.categorical_splits > 0, "no category-set splits");
    assert!(
        outcome.worst_shap_sum_error < 1e-3,
        "{}",
        outcome.worst_shap_sum_error
    );
}
