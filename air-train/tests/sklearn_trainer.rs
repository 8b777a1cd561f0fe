//! `SklearnTrainer` end to end: metrics per dataset, cross-validation keys, the checkpoint and
//! `SklearnPredictor`, tuner trial configs, and bad input.

use air_checkpoint::Checkpoint;
use air_data::{Dataset, LabelEncoder, StandardScaler, polars::prelude::*};
use air_train::{
    FromCheckpoint, Predictor, RunConfig, Trainable, Trainer, TrialInfo, Verbosity,
    sklearn::{
        CvConfig, Estimator, KMeansParams, LogisticRegressionParams, RandomForestParams,
        RidgeParams, SKLEARN_MODEL_ENTRY, Scoring, SklearnPredictor, SklearnTrainer,
        load_sklearn_model,
    },
};
use serde_json::json;

fn cancer() -> (Dataset, Dataset) {
    let data = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/data/breast_cancer.csv"
    );
    Dataset::read_csv(data)
        .unwrap()
        .train_test_split(0.3)
        .unwrap()
}

fn run(dir: &std::path::Path, name: &str) -> RunConfig {
    RunConfig::new(dir.to_str().unwrap())
        .with_name(name)
        .with_verbose(Verbosity::Silent)
}

#[test]
fn fits_scores_checkpoints_and_predicts() {
    let dir = tempfile::tempdir().unwrap();
    let (train, valid) = cancer();
    let forest = Estimator::RandomForestClassifier(
        RandomForestParams::new().with_n_estimators(30).with_seed(3),
    );
    let result = SklearnTrainer::new(forest, Some("target"), run(dir.path(), "forest"))
        .unwrap()
        .with_dataset("train", train)
        .with_dataset("valid", valid.clone())
        .with_preprocessor(StandardScaler::new(["mean radius", "mean texture"]))
        .with_scoring([Scoring::Accuracy, Scoring::F1])
        .with_cv(
            CvConfig::new(3)
                .unwrap()
                .with_shuffle(1)
                .with_return_train_score(),
        )
        .with_return_train_score()
        .fit()
        .unwrap()
        .into_result()
        .unwrap();
    let m = &result.metrics;
    let valid_acc = m["valid/accuracy"].as_f64().unwrap();
    assert!(valid_acc >= 0.93, "{valid_acc}");
    assert!(m["valid/f1"].as_f64().unwrap() >= 0.93);
    assert!(m["train/accuracy"].as_f64().unwrap() >= valid_acc);
    for key in [
        "cv/test_accuracy_mean",
        "cv/test_accuracy_std",
        "cv/test_accuracy_fold0",
        "cv/test_accuracy_fold2",
        "cv/test_f1_mean",
        "cv/train_accuracy_mean",
        "cv/fit_time_mean",
        "fit_time",
    ] {
        assert!(m[key].is_number(), "{key} missing from {m:?}");
    }
    let folds: Vec<f64> = (0..3)
        .map(|f| m[&format!("cv/test_accuracy_fold{f}")].as_f64().unwrap())
        .collect();
    let mean = folds.iter().sum::<f64>() / 3.0;
    assert!((mean - m["cv/test_accuracy_mean"].as_f64().unwrap()).abs() < 1e-12);

    // The checkpoint holds the model and the fitted scaler: the predictor reproduces the score.
    let checkpoint = result.checkpoint.clone().unwrap();
    assert!(checkpoint.contains(SKLEARN_MODEL_ENTRY));
    let predictor = SklearnPredictor::from_checkpoint(&checkpoint).unwrap();
    let df = valid.to_polars().unwrap();
    let predictions = predictor.predict(df.clone()).unwrap();
    let p = predictions.column("predictions").unwrap();
    assert_eq!(p.dtype(), &DataType::Int64);
    let labels = df.column("target").unwrap().cast(&DataType::Int64).unwrap();
    let correct = p
        .i64()
        .unwrap()
        .iter()
        .zip(labels.i64().unwrap().iter())
        .filter(|(a, b)| a == b)
        .count();
    assert!((correct as f64 / df.height() as f64 - valid_acc).abs() < 1e-12);

    // Saved and loaded again, the model predicts the same.
    let saved = dir.path().join("saved");
    checkpoint.to_directory(&saved).unwrap();
    let again =
        SklearnPredictor::from_checkpoint(&Checkpoint::from_directory(&saved).unwrap()).unwrap();
    assert_eq!(again.predict(df).unwrap(), predictions);
}

#[test]
fn regressor_and_trial_params() {
    let dir = tempfile::tempdir().unwrap();
    let x: Vec<f64> = (0..60).map(|i| f64::from(i) / 10.0).collect();
    let y: Vec<f64> = x.iter().map(|v| 3.0f64.mul_add(*v, 1.0)).collect();
    let train = Dataset::from_polars(df!("x" => x, "y" => y).unwrap());
    let trainer = SklearnTrainer::new(
        Estimator::Ridge(RidgeParams::new().with_alpha(0.0)),
        Some("y"),
        run(dir.path(), "ridge"),
    )
    .unwrap()
    .with_dataset("train", train.clone())
    .with_dataset("valid", train);
    let exact = trainer.fit().unwrap().into_result().unwrap();
    assert!((exact.metrics["valid/r2"].as_f64().unwrap() - 1.0).abs() < 1e-12);
    let predictor = SklearnPredictor::from_checkpoint(exact.checkpoint.as_ref().unwrap()).unwrap();
    let p = predictor
        .predict(df!("x" => [2.0f64]).unwrap())
        .unwrap()
        .column("predictions")
        .unwrap()
        .f64()
        .unwrap()
        .get(0)
        .unwrap();
    assert!((p - 7.0).abs() < 1e-9);

    // A tuner's trial sets estimator parameters by name: a large alpha shrinks the fit.
    let trial = trainer.run_trial(
        &json!({"params": {"alpha": 1000.0}}),
        &TrialInfo::new("t0", "t0").with_storage_path(dir.path().to_str().unwrap()),
    );
    assert!(trial.error.is_none(), "{:?}", trial.error);
    assert!(trial.metrics["valid/r2"].as_f64().unwrap() < 0.9);
    let model = load_sklearn_model(trial.checkpoint.as_ref().unwrap()).unwrap();
    assert_eq!(
        model.estimator,
        Estimator::Ridge(RidgeParams::new().with_alpha(1000.0))
    );
    // An invalid value is the trial's error, naming the field.
    let bad = trainer.run_trial(
        &json!({"params": {"alpha": -1.0}}),
        &TrialInfo::new("t1", "t1").with_storage_path(dir.path().to_str().unwrap()),
    );
    assert!(bad.error.unwrap().to_string().contains("alpha"));
}

#[test]
fn kmeans_needs_no_label() {
    let dir = tempfile::tempdir().unwrap();
    let mut x = Vec::new();
    let mut y = Vec::new();
    for i in 0..30 {
        let c = f64::from(i % 2) * 10.0;
        x.push(f64::from(i).mul_add(0.01, c));
        y.push(f64::from(i).mul_add(-0.01, c));
    }
    let train = Dataset::from_polars(df!("a" => x, "b" => y).unwrap());
    let result = SklearnTrainer::new(
        Estimator::KMeans(KMeansParams::new(2)),
        None,
        run(dir.path(), "kmeans"),
    )
    .unwrap()
    .with_dataset("train", train.clone())
    .with_return_train_score()
    .fit()
    .unwrap()
    .into_result()
    .unwrap();
    assert!(result.metrics["train/inertia"].as_f64().unwrap() < 1.0);
    let predictor = SklearnPredictor::from_checkpoint(result.checkpoint.as_ref().unwrap()).unwrap();
    let p = predictor.predict(train.to_polars().unwrap()).unwrap();
    let p: Vec<i64> = p
        .column("predictions")
        .unwrap()
        .i64()
        .unwrap()
        .into_no_null_iter()
        .collect();
    assert!(p.chunks(2).all(|pair| pair[0] != pair[1]));
    assert!(p.iter().step_by(2).all(|c| *c == p[0]));
}

fn error_of(trainer: SklearnTrainer) -> String {
    match trainer.fit() {
        Err(e) => e.to_string(),
        Ok(r) => r.error.expect("the run should fail").to_string(),
    }
}

#[test]
fn bad_input_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let logistic = || Estimator::LogisticRegression(LogisticRegressionParams::new());
    let frame = |label: Series| {
        Dataset::from_polars(
            DataFrame::new(
                4,
                vec![
                    Series::new("x".into(), [1.0f64, 2.0, 3.0, 4.0]).into_column(),
                    label.into_column(),
                ],
            )
            .unwrap(),
        )
    };

    // Supervised without a label column.
    let e = SklearnTrainer::new(logistic(), None, run(dir.path(), "a")).unwrap_err();
    assert!(e.to_string().contains("label column"), "{e}");
    // A metric that does not fit the estimator fails the run, naming it.
    let e = error_of(
        SklearnTrainer::new(logistic(), Some("y"), run(dir.path(), "b"))
            .unwrap()
            .with_dataset("train", frame(Series::new("y".into(), [0i64, 1, 0, 1])))
            .with_scoring([Scoring::R2]),
    );
    assert!(e.contains("r2"), "{e}");
    // The label column is missing.
    let msg = error_of(
        SklearnTrainer::new(logistic(), Some("nope"), run(dir.path(), "c"))
            .unwrap()
            .with_dataset("train", frame(Series::new("y".into(), [0i64, 1, 0, 1]))),
    );
    assert!(msg.contains("nope"), "{msg}");
    // Fractional labels for a classifier.
    let msg = error_of(
        SklearnTrainer::new(logistic(), Some("y"), run(dir.path(), "d"))
            .unwrap()
            .with_dataset(
                "train",
                frame(Series::new("y".into(), [0.5f64, 1.0, 0.0, 1.0])),
            ),
    );
    assert!(msg.contains("LabelEncoder"), "{msg}");
    // String labels: encode them first, then it trains.
    let strings = frame(Series::new("y".into(), ["a", "b", "a", "b"]));
    let msg = error_of(
        SklearnTrainer::new(logistic(), Some("y"), run(dir.path(), "e"))
            .unwrap()
            .with_dataset("train", strings.clone()),
    );
    assert!(msg.contains('y'), "{msg}");
    let ok = SklearnTrainer::new(logistic(), Some("y"), run(dir.path(), "f"))
        .unwrap()
        .with_dataset("train", strings)
        .with_preprocessor(LabelEncoder::new("y"))
        .fit()
        .unwrap();
    assert!(ok.error.is_none(), "{:?}", ok.error);
    // Nulls in a feature.
    let nulls = Dataset::from_polars(
        df!("x" => [Some(1.0f64), None, Some(3.0), Some(4.0)], "y" => [0i64, 1, 0, 1]).unwrap(),
    );
    let msg = error_of(
        SklearnTrainer::new(logistic(), Some("y"), run(dir.path(), "g"))
            .unwrap()
            .with_dataset("train", nulls),
    );
    assert!(msg.contains("\"x\"") && msg.contains("impute"), "{msg}");
    // Invalid parameters are refused at construction.
    let e = SklearnTrainer::new(
        Estimator::LogisticRegression(LogisticRegressionParams::new().with_c(0.0)),
        Some("y"),
        run(dir.path(), "h"),
    )
    .unwrap_err();
    assert!(e.to_string().contains("LogisticRegression"), "{e}");
    assert!(CvConfig::new(1).is_err());
}

#[test]
fn truncated_or_foreign_checkpoints_are_refused() {
    let mut c = Checkpoint::new();
    c.put_bytes(
        SKLEARN_MODEL_ENTRY,
        b"{\"format\": \"air-sklearn\", \"format_ver".to_vec(),
    )
    .unwrap();
    let e = SklearnPredictor::from_checkpoint(&c).unwrap_err();
    assert!(e.to_string().contains(SKLEARN_MODEL_ENTRY), "{e}");
    let e = SklearnPredictor::from_checkpoint(&Checkpoint::new()).unwrap_err();
    assert!(e.to_string().contains("SklearnTrainer"), "{e}");

    // A newer format version is refused with a hint.
    let dir = tempfile::tempdir().unwrap();
    let train = Dataset::from_polars(
        df!("x" => [1.0f64, 2.0, 3.0, 4.0], "y" => [1.0f64, 2.0, 3.0, 4.5]).unwrap(),
    );
    let result = SklearnTrainer::new(
        Estimator::Ridge(RidgeParams::new()),
        Some("y"),
        run(dir.path(), "v"),
    )
    .unwrap()
    .with_dataset("train", train)
    .fit()
    .unwrap()
    .into_result()
    .unwrap();
    let checkpoint = result.checkpoint.unwrap();
    let mut json: serde_json::Value = checkpoint.get_json(SKLEARN_MODEL_ENTRY).unwrap();
    json["format_version"] = json!(99);
    let mut newer = Checkpoint::new();
    newer.put_json(SKLEARN_MODEL_ENTRY, &json).unwrap();
    let e = SklearnPredictor::from_checkpoint(&newer).unwrap_err();
    assert!(e.to_string().contains("upgrade"), "{e}");

    // A batch without the model's features names them.
    let predictor = SklearnPredictor::from_checkpoint(&checkpoint).unwrap();
    let e = predictor
        .predict(df!("z" => [1.0f64]).unwrap())
        .unwrap_err();
    assert!(e.to_string().contains('x'), "{e}");
}
