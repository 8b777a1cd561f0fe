//! Classical estimators on Ray AIR's breast cancer data: four scikit-learn-style models, each
//! cross-validated (5 folds on the training split) and scored on the validation split, then
//! the best one batch-predicts the validation split from its checkpoint (the fitted scaler in
//! the checkpoint runs first).
//!
//! ```text
//! cargo run --release --example train_sklearn
//! ```
//!
//! Also a test (`cargo test --example train_sklearn`): the best validation accuracy is at
//! least 0.95.

use air::{
    data::{Dataset, StandardScaler},
    train::{
        FromCheckpoint, Predictor, RunConfig, TrainResult, Trainer, Verbosity,
        sklearn::{
            CvConfig, Estimator, KNeighborsParams, Kernel, LogisticRegressionParams,
            RandomForestParams, Scoring, SklearnPredictor, SklearnTrainer, SvcParams,
        },
    },
};
use anyhow::Context;

fn run(storage: &str) -> anyhow::Result<f64> {
    let data = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/data/breast_cancer.csv"
    );
    let (train, valid) = Dataset::read_csv(data)?.train_test_split(0.3)?;
    // Distances and margins need comparable feature scales: standardise every feature.
    let features: Vec<String> = train
        .schema()?
        .iter_names()
        .map(|n| n.to_string())
        .filter(|n| n != "target")
        .collect();
    let estimators = [
        Estimator::LogisticRegression(LogisticRegressionParams::new().with_c(0.5)),
        Estimator::RandomForestClassifier(RandomForestParams::new().with_n_estimators(100)),
        Estimator::Svc(SvcParams::new().with_kernel(Kernel::Linear)),
        Estimator::KNeighborsClassifier(KNeighborsParams::new().with_n_neighbors(7)),
    ];
    let mut best: Option<(f64, TrainResult)> = None;
    for estimator in estimators {
        let name = estimator.name();
        let result = SklearnTrainer::new(
            estimator,
            Some("target"),
            RunConfig::new(storage)
                .with_name(name)
                .with_verbose(Verbosity::Silent),
        )?
        .with_dataset("train", train.clone())
        .with_dataset("valid", valid.clone())
        .with_preprocessor(StandardScaler::new(features.clone()))
        .with_scoring([Scoring::Accuracy, Scoring::F1])
        .with_cv(CvConfig::new(5)?.with_shuffle(0))
        .fit()?
        .into_result()?;
        let m = &result.metrics;
        let get = |k: &str| m[k].as_f64().unwrap_or(f64::NAN);
        println!(
            "{name:24} cv accuracy {:.4} ± {:.4}  valid accuracy {:.4}  valid f1 {:.4}  fit {:.3} s",
            get("cv/test_accuracy_mean"),
            get("cv/test_accuracy_std"),
            get("valid/accuracy"),
            get("valid/f1"),
            get("fit_time"),
        );
        let score = get("cv/test_accuracy_mean");
        if best.as_ref().is_none_or(|(s, _)| score > *s) {
            best = Some((score, result));
        }
    }
    let (_, best) = best.context("a result")?;
    let predictor = SklearnPredictor::from_checkpoint(&best.checkpoint.context("a checkpoint")?)?;
    let valid = valid.to_polars()?;
    let labels = air::data::to_f64_vector(&valid, "target")?;
    let predictions = predictor.predict(valid.drop("target")?)?;
    let correct = predictions
        .column("predictions")?
        .i64()?
        .into_no_null_iter()
        .zip(&labels)
        .filter(|(p, y)| *p as f64 == **y)
        .count();
    let accuracy = correct as f64 / labels.len() as f64;
    println!(
        "best by cross-validation: {}; validation accuracy {accuracy:.4} on {} rows",
        predictor.model().estimator.name(),
        labels.len()
    );
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
fn best_estimator_reaches_95_percent() {
    let dir = tempfile::tempdir().unwrap();
    assert!(run(dir.path().to_str().unwrap()).unwrap() >= 0.95);
}
