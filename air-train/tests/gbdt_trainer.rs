//! `GbdtTrainer`: 1 or N workers grow the same trees; metrics per dataset; checkpoints,
//! resume, predictor.

use air_data::{Dataset, StandardScaler};
use air_train::{
    CheckpointConfig, FromCheckpoint, Predictor, RunConfig, ScalingConfig, Trainable, Trainer,
    TrialInfo, Verbosity,
    gbdt::{
        EvalMetric, GbdtModel, GbdtParams, GbdtPredictor, GbdtTrainer, Objective, load_gbdt_model,
    },
};
use serde_json::json;
use std::num::NonZeroUsize;

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

/// Runs `trainer` and returns its checkpoint.
fn checkpoint_of(trainer: GbdtTrainer) -> air_checkpoint::Checkpoint {
    trainer
        .fit()
        .unwrap()
        .into_result()
        .unwrap()
        .checkpoint
        .unwrap()
}

fn trainer(dir: &std::path::Path, name: &str, workers: usize, rounds: usize) -> GbdtTrainer {
    let (train, valid) = cancer();
    GbdtTrainer::new(
        "target",
        GbdtParams::new(Objective::BinaryLogistic)
            .with_eval_metrics([EvalMetric::Logloss, EvalMetric::Error]),
        ScalingConfig::new(NonZeroUsize::new(workers).unwrap()),
        RunConfig::new(dir.to_str().unwrap())
            .with_name(name)
            .with_verbose(Verbosity::Silent)
            .with_checkpoint_config(CheckpointConfig::new().with_frequency(5)),
    )
    .unwrap()
    .with_num_boost_round(rounds)
    .with_dataset("train", train)
    .with_dataset("valid", valid)
    .with_preprocessor(StandardScaler::new(["mean radius", "mean texture"]))
}

#[test]
fn workers_sum_histograms_and_grow_the_same_trees() {
    let dir = tempfile::tempdir().unwrap();
    let one = trainer(dir.path(), "one", 1, 20)
        .fit()
        .unwrap()
        .into_result()
        .unwrap();
    let three = trainer(dir.path(), "three", 3, 20)
        .fit()
        .unwrap()
        .into_result()
        .unwrap();
    for key in [
        "train-logloss",
        "train-error",
        "valid-logloss",
        "valid-error",
    ] {
        let (a, b) = (
            one.metrics[key].as_f64().unwrap(),
            three.metrics[key].as_f64().unwrap(),
        );
        assert!((a - b).abs() < 1e-6, "{key}: 1 worker {a}, 3 workers {b}");
    }
    // The quick start's numbers (XGBoost 3.2 gives the same on this split).
    assert!((one.metrics["valid-logloss"].as_f64().unwrap() - 0.09502).abs() < 1e-4);
    assert!(1.0 - one.metrics["valid-error"].as_f64().unwrap() >= 0.95);
    let m1 = load_gbdt_model(one.checkpoint.as_ref().unwrap()).unwrap();
    let m3 = load_gbdt_model(three.checkpoint.as_ref().unwrap()).unwrap();
    assert_eq!(m1.num_rounds(), 20);
    assert_eq!(
        m1.trees
            .iter()
            .map(|t| t.feature.clone())
            .collect::<Vec<_>>(),
        m3.trees
            .iter()
            .map(|t| t.feature.clone())
            .collect::<Vec<_>>(),
        "same splits"
    );
    // Checkpoints every 5 rounds and at the end: 4 of them.
    assert_eq!(one.best_checkpoints.len(), 4);
}

#[test]
fn resume_trains_only_the_missing_rounds_and_the_predictor_applies_the_preprocessor() {
    let dir = tempfile::tempdir().unwrap();
    let first = trainer(dir.path(), "first", 2, 8)
        .fit()
        .unwrap()
        .into_result()
        .unwrap();
    let resumed = trainer(dir.path(), "resumed", 2, 20)
        .with_resume_from_checkpoint(first.checkpoint.unwrap())
        .fit()
        .unwrap()
        .into_result()
        .unwrap();
    assert_eq!(
        resumed.metrics_dataframe().unwrap().height(),
        12,
        "rounds 9..=20 only"
    );
    let model = load_gbdt_model(resumed.checkpoint.as_ref().unwrap()).unwrap();
    assert_eq!(model.num_rounds(), 20);
    let full = trainer(dir.path(), "full", 2, 20)
        .fit()
        .unwrap()
        .into_result()
        .unwrap();
    let (a, b) = (
        resumed.metrics["valid-logloss"].as_f64().unwrap(),
        full.metrics["valid-logloss"].as_f64().unwrap(),
    );
    assert!((a - b).abs() < 1e-6, "resumed {a} vs straight {b}");

    let predictor = GbdtPredictor::from_checkpoint(full.checkpoint.as_ref().unwrap()).unwrap();
    let (_, valid) = cancer();
    let valid = valid.to_polars().unwrap();
    let labels = air_data::to_f32_vector(&valid, "target").unwrap();
    let out = predictor.predict(valid.drop("target").unwrap()).unwrap();
    let p = out.column("predictions").unwrap().f32().unwrap();
    let correct = p
        .into_no_null_iter()
        .zip(&labels)
        .filter(|(p, y)| (*p > 0.5) == (**y > 0.5))
        .count();
    assert!(correct as f64 / labels.len() as f64 >= 0.95);
}

/// Adds 1 to the first float of a JSON value (a model edited by hand).
fn bump_first_float(v: &mut serde_json::Value) -> bool {
    match v {
        serde_json::Value::Number(n) if n.is_f64() => {
            *v = json!(n.as_f64().unwrap() + 1.0);
            true
        }
        serde_json::Value::Array(items) => items.iter_mut().any(bump_first_float),
        serde_json::Value::Object(map) => map.values_mut().any(bump_first_float),
        _ => false,
    }
}

#[test]
fn the_predictor_refuses_files_the_manifest_does_not_vouch_for() {
    let dir = tempfile::tempdir().unwrap();
    let trained = checkpoint_of(trainer(dir.path(), "t", 1, 3));
    let (_, valid) = cancer();
    let rows = valid.to_polars().unwrap().drop("target").unwrap();
    let expected = GbdtPredictor::from_checkpoint(&trained)
        .unwrap()
        .predict(rows.clone())
        .unwrap();

    // Saved without a preprocessor, then one dropped in: refused, naming the file.
    let mut plain = air_checkpoint::Checkpoint::from_dict(trained.to_dict().unwrap()).unwrap();
    plain.set_metadata(trained.metadata().clone());
    assert!(plain.remove(air_data::PREPROCESSOR_ENTRY));
    let plain_dir = dir.path().join("plain");
    plain.to_directory(&plain_dir).unwrap();
    std::fs::write(
        plain_dir.join(air_data::PREPROCESSOR_ENTRY),
        trained.get_bytes(air_data::PREPROCESSOR_ENTRY).unwrap(),
    )
    .unwrap();
    let opened = air_checkpoint::Checkpoint::from_directory(&plain_dir).unwrap();
    let err = GbdtPredictor::from_checkpoint(&opened).unwrap_err();
    assert!(
        err.to_string().contains("preprocessor.json") && err.to_string().contains("not listed"),
        "{err}"
    );

    // The manifest deleted and the model edited: refused, unless the program opts in.
    let edited = dir.path().join("edited");
    trained.to_directory(&edited).unwrap();
    std::fs::remove_file(edited.join(air_checkpoint::MANIFEST_NAME)).unwrap();
    let model_path = edited.join(air_train::gbdt::GBDT_MODEL_ENTRY);
    let mut model: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&model_path).unwrap()).unwrap();
    assert!(bump_first_float(&mut model));
    std::fs::write(&model_path, serde_json::to_vec(&model).unwrap()).unwrap();
    let opened = air_checkpoint::Checkpoint::from_directory(&edited).unwrap();
    let err = GbdtPredictor::from_checkpoint(&opened).unwrap_err();
    assert!(
        err.to_string().contains("model.json") && err.to_string().contains("allow_unverified"),
        "{err}"
    );
    let trusted = GbdtPredictor::from_checkpoint(&opened.allow_unverified()).unwrap();
    let out = trusted.predict(rows).unwrap();
    assert_eq!(out.height(), expected.height());
    assert_ne!(
        out.column("predictions").unwrap(),
        expected.column("predictions").unwrap(),
        "the edit changes predictions, which is why it must not pass silently"
    );
}

#[test]
fn tuning_params_merge_and_bad_input_is_clear() {
    let dir = tempfile::tempdir().unwrap();
    let t = trainer(dir.path(), "base", 1, 5);
    let r = t.run_trial(
        &json!({"params": {"max_depth": 2, "eta": 0.1}, "num_boost_round": 3}),
        &TrialInfo::new("trial_0", "t0").with_storage_path(dir.path().to_str().unwrap()),
    );
    assert!(r.error.is_none(), "{:?}", r.error);
    assert_eq!(r.metrics["training_iteration"], 3);
    let model: GbdtModel = load_gbdt_model(r.checkpoint.as_ref().unwrap()).unwrap();
    assert!(model.trees.iter().all(|t| t.left.len() <= 7), "depth 2");

    let (train, _) = cancer();
    let bad = GbdtTrainer::new(
        "no_such_label",
        GbdtParams::new(Objective::BinaryLogistic),
        ScalingConfig::new(NonZeroUsize::MIN),
        RunConfig::new(dir.path().to_str().unwrap()).with_verbose(Verbosity::Silent),
    )
    .unwrap()
    .with_num_boost_round(3)
    .with_dataset("train", train)
    .fit()
    .unwrap();
    let msg = bad.error.unwrap().to_string();
    assert!(msg.contains("no_such_label"), "{msg}");
    assert!(
        GbdtParams::new(Objective::MultiSoftprob { num_class: 1 })
            .validate()
            .is_err()
    );
}

/// The objectives that predict something else than their margins' width or space, through the
/// trainer on 2 workers and the predictor: `multi:softmax` gives one class index per row,
/// `count:poisson` positive means, `reg:absoluteerror` (median leaves averaged over workers)
/// values close to the median labels; leaf-wise growth runs on the same path.
#[test]
fn other_objectives_train_on_workers_and_predict() {
    use air_data::polars::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let n = 600usize;
    let x: Vec<f64> = (0..n).map(|i| (i % 100) as f64 / 10.0).collect();
    let x2: Vec<f64> = (0..n).map(|i| ((i * 37) % 100) as f64).collect();
    let class: Vec<f64> = x.iter().map(|v| (*v / 3.4).floor().min(2.0)).collect();
    let count: Vec<f64> = x.iter().map(|v| (v / 2.0).floor()).collect();
    let frame = df!("x" => &x, "x2" => &x2, "class" => &class, "count" => &count).unwrap();
    for (label, objective) in [
        ("class", Objective::MultiSoftmax { num_class: 3 }),
        ("count", Objective::POISSON),
        ("count", Objective::AbsoluteError),
        ("count", Objective::PseudoHuber { huber_slope: 2.0 }),
    ] {
        let train = Dataset::from_polars(
            frame
                .drop(if label == "class" { "count" } else { "class" })
                .unwrap(),
        );
        let result = GbdtTrainer::new(
            label,
            GbdtParams::new(objective).with_lossguide(8).with_eta(0.5),
            ScalingConfig::new(NonZeroUsize::new(2).unwrap()),
            RunConfig::new(dir.path().to_str().unwrap())
                .with_name(&objective.xgboost_name().replace(':', "_"))
                .with_verbose(Verbosity::Silent),
        )
        .unwrap()
        .with_num_boost_round(30)
        .with_dataset("train", train.clone())
        .fit()
        .unwrap()
        .into_result()
        .unwrap();
        let predictor =
            GbdtPredictor::from_checkpoint(result.checkpoint.as_ref().unwrap()).unwrap();
        let out = predictor.predict(train.to_polars().unwrap()).unwrap();
        let p = out
            .column("predictions")
            .unwrap()
            .cast(&DataType::Float64)
            .unwrap();
        let p: Vec<f64> = p.f64().unwrap().into_no_null_iter().collect();
        let truth = if label == "class" { &class } else { &count };
        let mean_abs = p.iter().zip(truth).map(|(a, b)| (a - b).abs()).sum::<f64>() / n as f64;
        eprintln!(
            "{}: mean |prediction - label| {mean_abs}",
            objective.xgboost_name()
        );
        assert!(mean_abs < 0.1, "{}: {mean_abs}", objective.xgboost_name());
        if label == "class" {
            assert!(
                p.iter().all(|c| [0.0, 1.0, 2.0].contains(c)),
                "class indices"
            );
        }
    }
}

/// Labels outside an objective's domain are refused naming the row; bad objective params name
/// the field.
#[test]
fn labels_outside_the_objectives_domain_are_clear_errors() {
    use air_train::gbdt::{BoostData, train_gbdt};
    let x = [0.0f32, 1.0, 2.0, 3.0];
    let check = |objective: Objective, y: [f32; 4], expect: &[&str]| {
        let data = BoostData {
            x: &x,
            rows: 4,
            y: &y,
        };
        let err = train_gbdt(&GbdtParams::new(objective), data, &[], 2, |_| true)
            .unwrap_err()
            .to_string();
        for e in expect {
            assert!(err.contains(e), "{err:?} lacks {e:?}");
        }
    };
    check(
        Objective::POISSON,
        [1.0, -2.0, 0.0, 3.0],
        &["row 1", "-2", "count:poisson", "≥ 0"],
    );
    check(
        Objective::POISSON,
        [0.0; 4],
        &["every label is 0", "count:poisson"],
    );
    check(
        Objective::MultiSoftmax { num_class: 3 },
        [0.0, 1.0, 3.0, 2.0],
        &["row 2", "multi:softmax", "0..3"],
    );
    check(
        Objective::BinaryLogitRaw,
        [0.0, 1.0, 2.0, 1.0],
        &["row 2", "[0, 1]"],
    );
    // A feature with no present value, and category codes that are not codes.
    let data_error = |params: GbdtParams, x: &[f32; 4], expect: &[&str]| {
        let data = BoostData {
            x,
            rows: 4,
            y: &[1.0, 2.0, 3.0, 4.0],
        };
        let err = train_gbdt(&params, data, &[], 2, |_| true)
            .unwrap_err()
            .to_string();
        for e in expect {
            assert!(err.contains(e), "{err:?} lacks {e:?}");
        }
    };
    let plain = GbdtParams::new(Objective::SquaredError);
    data_error(
        plain.clone(),
        &[f32::NAN; 4],
        &["f0", "every training value is missing"],
    );
    let codes = [0.0f32, 1.5, 2.0, 1.0];
    data_error(
        plain.clone().with_categorical_features([0]),
        &codes,
        &["feature 0, row 1: 1.5", "category codes"],
    );
    data_error(
        plain.with_categorical_features([3]),
        &codes,
        &["categorical_features", "3"],
    );
    for (params, field) in [
        (
            GbdtParams::new(Objective::PseudoHuber { huber_slope: 0.0 }),
            "huber_slope",
        ),
        (
            GbdtParams::new(Objective::SquaredError).with_max_delta_step(-1.0),
            "max_delta_step",
        ),
        (
            GbdtParams::new(Objective::BinaryLogitRaw).with_eval_metrics([EvalMetric::Logloss]),
            "eval_metric",
        ),
        (
            GbdtParams::new(Objective::SquaredError).with_lossguide(1),
            "max_leaves",
        ),
    ] {
        let err = params.validate().unwrap_err().to_string();
        assert!(err.contains(field), "{err:?} lacks {field:?}");
    }
}

/// Ray's LightGBMTrainer flow: a `Categorizer` turns a 40-category string column into a fixed
/// category list, the booster splits on category sets (no one-hot columns), the checkpoint's
/// predictor categorizes again, and a category never seen in training takes the default side,
/// exactly as a missing value does. A raw string column is refused by name.
#[test]
fn categorized_strings_split_on_category_sets() {
    use air_data::{Categorizer, polars::prelude::*};
    let dir = tempfile::tempdir().unwrap();
    let n = 2000usize;
    let effect = |k: usize| ((k * 7919) % 13) as f64 / 4.0;
    let city: Vec<String> = (0..n).map(|i| format!("c{:02}", (i * 31) % 40)).collect();
    let x: Vec<f64> = (0..n).map(|i| ((i * 17) % 100) as f64 / 100.0).collect();
    let y: Vec<f64> = (0..n).map(|i| effect((i * 31) % 40) + x[i]).collect();
    let train = Dataset::from_polars(df!("city" => &city, "x" => &x, "y" => &y).unwrap());
    let fit = |train: Dataset, with_categorizer: bool| {
        let trainer = GbdtTrainer::new(
            "y",
            GbdtParams::new(Objective::SquaredError)
                .with_lossguide(31)
                .with_eta(0.3),
            ScalingConfig::new(NonZeroUsize::new(1).unwrap()),
            RunConfig::new(dir.path().to_str().unwrap())
                .with_name(if with_categorizer {
                    "categorized"
                } else {
                    "raw"
                })
                .with_verbose(Verbosity::Silent),
        )
        .unwrap()
        .with_num_boost_round(40)
        .with_dataset("train", train);
        if with_categorizer {
            trainer.with_preprocessor(Categorizer::new(["city"])).fit()
        } else {
            trainer.fit()
        }
    };
    let result = fit(train.clone(), true).unwrap().into_result().unwrap();
    let checkpoint = result.checkpoint.as_ref().unwrap();
    let model = load_gbdt_model(checkpoint).unwrap();
    assert_eq!(
        model.num_feature, 2,
        "one feature per column, not one per category"
    );
    let categorical_splits = model
        .trees
        .iter()
        .flat_map(|t| (0..t.len()).filter(move |i| t.category_set(*i).is_some()))
        .count();
    assert!(
        categorical_splits > 10,
        "{categorical_splits} categorical splits"
    );
    // Importance counts categorical splits under their column's name.
    let importance = model.feature_importance(air_train::gbdt::ImportanceType::TotalGain);
    let city_gain = importance
        .iter()
        .find(|(n, _)| n == "city")
        .map(|(_, v)| *v);
    assert!(city_gain.is_some_and(|g| g > 0.0), "{importance:?}");
    let predictor = GbdtPredictor::from_checkpoint(checkpoint).unwrap();
    let predict = |frame: DataFrame| -> Vec<f32> {
        let out = predictor.predict(frame).unwrap();
        out.column("predictions")
            .unwrap()
            .f32()
            .unwrap()
            .into_no_null_iter()
            .collect()
    };
    let p = predict(train.to_polars().unwrap().drop("y").unwrap());
    let rmse = (p
        .iter()
        .zip(&y)
        .map(|(a, b)| (f64::from(*a) - b).powi(2))
        .sum::<f64>()
        / n as f64)
        .sqrt();
    assert!(rmse < 0.05, "training rmse {rmse}");
    // An unseen city and a missing one go the same (default) way.
    let unseen = predict(df!("city" => ["nowhere"], "x" => [0.5]).unwrap());
    let missing = predict(df!("city" => [None::<&str>], "x" => [0.5]).unwrap());
    assert_eq!(unseen, missing);
    // Without the Categorizer, the string column is named in the error.
    let err = fit(train, false)
        .unwrap()
        .into_result()
        .unwrap_err()
        .to_string();
    assert!(err.contains("city") && err.contains("Categorizer"), "{err}");
}

#[test]
fn the_matrix_path_is_offered_without_a_preprocessor_and_predicts_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let scaled = checkpoint_of(trainer(dir.path(), "scaled", 1, 5));
    let with_preprocessor = GbdtPredictor::from_checkpoint(&scaled).unwrap();
    assert!(with_preprocessor.as_matrix().is_none());
    let model = load_gbdt_model(&scaled).unwrap();
    let plain = GbdtPredictor::new(model.clone()).unwrap();
    assert!(plain.clone().with_contributions().as_matrix().is_none());
    assert!(plain.clone().with_leaf_indices().as_matrix().is_none());
    let mut unnamed = model;
    unnamed.feature_names.clear();
    assert!(GbdtPredictor::new(unnamed).unwrap().as_matrix().is_none());

    let matrix = plain.as_matrix().expect("a plain GBDT reads one matrix");
    let (_, valid) = cancer();
    let valid = valid.to_polars().unwrap().drop("target").unwrap();
    let m = air_data::to_f32_matrix(&valid, matrix.columns()).unwrap();
    let by_matrix = matrix.predict_matrix(&m.data, m.rows).unwrap();
    assert_eq!((by_matrix.rows(), by_matrix.width), (valid.height(), 1));
    assert_eq!(
        by_matrix.into_frame().unwrap(),
        plain.predict(valid).unwrap()
    );
}
