//! Models trained by Python XGBoost (`tests/fixtures/gbdt/make_fixtures.py`, xgboost 3.2) load
//! here and predict XGBoost's numbers to 1e-6.

use std::path::PathBuf;

use air_data::{Dataset, to_f32_matrix};
use air_train::gbdt::{GbdtModel, Objective};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/gbdt")
        .join(name)
}

fn csv(name: &str) -> air_data::polars::prelude::DataFrame {
    Dataset::read_csv(fixture(name).to_str().unwrap())
        .unwrap()
        .to_polars()
        .unwrap()
}

fn check(task: &str, objective: Objective) {
    let model =
        GbdtModel::from_xgboost_json(&std::fs::read(fixture(&format!("xgb_{task}.json"))).unwrap())
            .unwrap();
    assert_eq!(model.objective, objective);
    assert_eq!(model.num_feature, 6);
    assert_eq!(model.feature_names, ["x0", "x1", "x2", "x3", "x4", "x5"]);
    let inputs = csv("inputs.csv");
    let x = to_f32_matrix(&inputs, &model.feature_names).unwrap();
    assert!(
        x.data.iter().any(|v| v.is_nan()),
        "the fixture has missing values"
    );
    let ours = model.predict(&x.data, x.rows).unwrap();
    let theirs = csv(&format!("xgb_{task}_predictions.csv"));
    let groups = objective.num_groups();
    assert_eq!(theirs.width(), groups);
    let mut worst = 0.0f64;
    for g in 0..groups {
        let col = air_data::to_f32_vector(&theirs, &format!("p{g}")).unwrap();
        for (r, want) in col.iter().enumerate() {
            let got = ours[r * groups + g];
            let diff = (f64::from(got) - f64::from(*want)).abs();
            worst = worst.max(diff);
            assert!(
                diff <= 1e-6,
                "{task} row {r} class {g}: ours {got}, XGBoost {want}"
            );
        }
    }
    eprintln!("{task}: largest difference from XGBoost {worst:e}");
}

#[test]
fn regression_binary_and_multiclass_models_predict_like_xgboost() {
    check("reg", Objective::SquaredError);
    check("binary", Objective::BinaryLogistic);
    check("multi", Objective::MultiSoftprob { num_class: 3 });
}

#[test]
fn bad_model_files_are_clear_errors() {
    let err = GbdtModel::from_xgboost_json(b"not json")
        .unwrap_err()
        .to_string();
    assert!(err.contains("save_model"), "{err}");
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("xgb_binary.json")).unwrap()).unwrap();
    v["learner"]["objective"]["name"] = "rank:pairwise".into();
    let err = GbdtModel::from_xgboost_json(v.to_string().as_bytes())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("rank:pairwise") && err.contains("binary:logistic"),
        "{err}"
    );
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("xgb_binary.json")).unwrap()).unwrap();
    v["learner"]["gradient_booster"]["model"]["trees"][0]["left_children"][0] = 99.into();
    let err = GbdtModel::from_xgboost_json(v.to_string().as_bytes())
        .unwrap_err()
        .to_string();
    assert!(err.contains("tree 0") && err.contains("node 0"), "{err}");
    let model =
        GbdtModel::from_xgboost_json(&std::fs::read(fixture("xgb_reg.json")).unwrap()).unwrap();
    let err = model.predict(&[1.0, 2.0], 1).unwrap_err().to_string();
    assert!(err.contains("6 features"), "{err}");
    // Our own serde form round-trips.
    let json = serde_json::to_string(&model).unwrap();
    assert_eq!(serde_json::from_str::<GbdtModel>(&json).unwrap(), model);
}

/// Ray's XGBoost quick start data: our booster against XGBoost 3.2 (`hist`, default params,
/// 20 rounds) on the same 70/30 split.
#[test]
fn breast_cancer_booster_matches_xgboost_quality() {
    use air_train::gbdt::{BoostData, EvalMetric, GbdtParams, train_gbdt};
    let data = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/data/breast_cancer.csv"
    );
    let (train, valid) = Dataset::read_csv(data)
        .unwrap()
        .train_test_split(0.3)
        .unwrap();
    let (train, valid) = (train.to_polars().unwrap(), valid.to_polars().unwrap());
    let features: Vec<String> = train
        .get_column_names()
        .iter()
        .map(|c| c.to_string())
        .filter(|c| c != "target")
        .collect();
    let xt = to_f32_matrix(&train, &features).unwrap();
    let yt = air_data::to_f32_vector(&train, "target").unwrap();
    let xv = to_f32_matrix(&valid, &features).unwrap();
    let yv = air_data::to_f32_vector(&valid, "target").unwrap();
    let params = GbdtParams::new(Objective::BinaryLogistic)
        .with_max_bin(
            std::env::var("MB")
                .map(|v| v.parse().unwrap())
                .unwrap_or(256),
        )
        .with_eval_metrics([EvalMetric::Logloss, EvalMetric::Error]);
    let mut history = Vec::new();
    let t = BoostData {
        x: &xt.data,
        rows: xt.rows,
        y: &yt,
    };
    let v = BoostData {
        x: &xv.data,
        rows: xv.rows,
        y: &yv,
    };
    let model = train_gbdt(&params, t, &[("train", t), ("valid", v)], 20, |r| {
        history.push(r.metrics.clone());
        true
    })
    .unwrap();
    assert_eq!(model.num_rounds(), 20);
    let theirs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("breast_cancer_history.json")).unwrap())
            .unwrap();
    let last = history.last().unwrap();
    let get = |k: &str| last.iter().find(|(n, _)| n == k).unwrap().1;
    let xgb_logloss = theirs["valid"]["logloss"][19].as_f64().unwrap();
    let xgb_error = theirs["valid"]["error"][19].as_f64().unwrap();
    eprintln!(
        "valid logloss ours {:.5} XGBoost {xgb_logloss:.5}; valid error ours {:.5} XGBoost {xgb_error:.5}; train logloss ours {:.5} XGBoost {:.5}",
        get("valid-logloss"),
        get("valid-error"),
        get("train-logloss"),
        theirs["train"]["logloss"][19].as_f64().unwrap()
    );
    assert!(
        1.0 - get("valid-error") >= 0.95,
        "accuracy {}",
        1.0 - get("valid-error")
    );
    assert!(
        get("valid-logloss") <= xgb_logloss * 1.1,
        "logloss {} vs XGBoost {xgb_logloss}",
        get("valid-logloss")
    );
    // The first round starts from the same base score and the same first split statistics.
    let first_ours = history[0]
        .iter()
        .find(|(n, _)| n == "train-logloss")
        .unwrap()
        .1;
    let first_theirs = theirs["train"]["logloss"][0].as_f64().unwrap();
    assert!(
        (first_ours - first_theirs).abs() < 0.02,
        "round 1 train logloss {first_ours} vs {first_theirs}"
    );
}

/// The parity fixtures' three tasks: (name, objective).
const TASKS: [(&str, Objective); 3] = [
    ("reg", Objective::SquaredError),
    ("binary", Objective::BinaryLogistic),
    ("multi", Objective::MultiSoftprob { num_class: 3 }),
];

/// `make_fixtures.py`'s shared booster params (depth 4, eta 0.3, lambda 1, alpha 0.1,
/// gamma 0.05, 64 bins).
fn common_params(objective: Objective) -> air_train::gbdt::GbdtParams {
    air_train::gbdt::GbdtParams::new(objective)
        .with_max_depth(4)
        .with_eta(0.3)
        .with_regularization(1.0, 0.1, 0.05, 1.0)
        .with_max_bin(64)
}

fn parity_data() -> (Vec<f32>, usize) {
    let inputs = csv("train_inputs.csv");
    let columns: Vec<String> = (0..6).map(|j| format!("x{j}")).collect();
    let x = to_f32_matrix(&inputs, &columns).unwrap();
    (x.data, x.rows)
}

/// Trains 12 rounds with `params` on the exact-bin rows and compares the trees' shapes and the
/// predictions with XGBoost's fixture `train_{task}{variant}`.
fn assert_grows_like_xgboost(task: &str, variant: &str, params: &air_train::gbdt::GbdtParams) {
    let (x, rows) = parity_data();
    assert_grows_like_xgboost_on(task, variant, params, &x, rows);
}

/// [`assert_grows_like_xgboost`] on rows `x`.
fn assert_grows_like_xgboost_on(
    task: &str,
    variant: &str,
    params: &air_train::gbdt::GbdtParams,
    x: &[f32],
    rows: usize,
) {
    use air_train::gbdt::{BoostData, train_gbdt};
    let y = air_data::to_f32_vector(&csv(&format!("train_{task}_labels.csv")), "y").unwrap();
    let data = BoostData { x, rows, y: &y };
    let model = train_gbdt(params, data, &[], 12, |_| true).unwrap();
    let theirs_model = GbdtModel::from_xgboost_json(
        &std::fs::read(fixture(&format!("train_{task}{variant}_xgb.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(model.base_margin.len(), theirs_model.base_margin.len());
    for (a, b) in model.base_margin.iter().zip(&theirs_model.base_margin) {
        assert!((a - b).abs() < 1e-5, "{task}: base margin {a} vs {b}");
    }
    // (XGBoost saves its float parameters as f32: slope 0.7 comes back as 0.699999988.)
    assert_eq!(
        theirs_model.objective.xgboost_name(),
        params.objective.xgboost_name(),
        "{task}: objective read"
    );
    let ours = model.predict(x, rows).unwrap();
    let imported = theirs_model.predict(x, rows).unwrap();
    let theirs = csv(&format!("train_{task}{variant}_predictions.csv"));
    let width = params.objective.output_width();
    let (mut worst, mut worst_imported) = (0.0f32, 0.0f32);
    for g in 0..width {
        let col = air_data::to_f32_vector(&theirs, &format!("p{g}")).unwrap();
        for (r, want) in col.iter().enumerate() {
            worst = worst.max((ours[r * width + g] - want).abs() / want.abs().max(1.0));
            worst_imported = worst_imported.max((imported[r * width + g] - want).abs());
        }
    }
    assert!(
        worst_imported <= 1e-6,
        "{task}{variant}: XGBoost's own model predicts {worst_imported} away from XGBoost"
    );
    let leaves = |m: &GbdtModel| -> Vec<usize> {
        m.trees
            .iter()
            .map(|t| t.left.iter().filter(|l| **l < 0).count())
            .collect()
    };
    eprintln!(
        "{task}{variant}: largest prediction difference {worst:e}; leaves ours {:?} XGBoost {:?}",
        leaves(&model),
        leaves(&theirs_model)
    );
    assert_eq!(
        leaves(&model),
        leaves(&theirs_model),
        "{task}{variant}: leaves per tree"
    );
    assert!(
        worst < 1e-4,
        "{task}{variant}: predictions differ from XGBoost's by {worst}"
    );
}

/// With few distinct values per feature both boosters bin exactly, so their trees should agree:
/// same params as XGBoost (depth 4, eta 0.3, lambda 1, alpha 0.1, gamma 0.05, missing values),
/// 12 rounds, predictions on the training rows compared.
#[test]
fn booster_grows_xgboosts_trees_when_bins_are_exact() {
    for (task, objective) in TASKS {
        assert_grows_like_xgboost(task, "", &common_params(objective));
    }
}

/// The other objectives grow XGBoost's trees too, and their saved models import: L1 with its
/// adaptive (median) leaves, pseudo-Huber with slope 0.7, Poisson counts, `multi:softmax`'s
/// class indices and `binary:logitraw`'s raw log-odds.
#[test]
fn other_objectives_grow_xgboosts_trees() {
    for (task, objective) in [
        ("absoluteerror", Objective::AbsoluteError),
        ("pseudohuber", Objective::PseudoHuber { huber_slope: 0.7 }),
        ("poisson", Objective::POISSON),
        ("softmax", Objective::MultiSoftmax { num_class: 3 }),
        ("logitraw", Objective::BinaryLogitRaw),
    ] {
        assert_grows_like_xgboost(task, "", &common_params(objective));
    }
}

/// Categorical features split on category sets as XGBoost's do: partition splits (categories
/// sorted by weight) on a 5- and a 30-category column and one-hot splits below
/// `max_cat_to_onehot`, with missing categories, the same trees and predictions.
#[test]
fn categorical_features_grow_xgboosts_trees() {
    let inputs = csv("train_cat_inputs.csv");
    let columns: Vec<String> = ["small", "large", "n0", "n1"].map(String::from).to_vec();
    let x = to_f32_matrix(&inputs, &columns).unwrap();
    for (task, objective, onehot) in [
        ("cat_reg", Objective::SquaredError, 4),
        ("cat_binary", Objective::BinaryLogistic, 4),
        ("cat_onehot", Objective::SquaredError, 8),
    ] {
        let params = common_params(objective)
            .with_categorical_features([0, 1])
            .with_max_cat_to_onehot(onehot);
        assert_grows_like_xgboost_on(task, "", &params, &x.data, x.rows);
    }
}

/// Leaf-wise growth (`grow_policy=lossguide`) picks XGBoost's nodes in XGBoost's order: a leaf
/// budget with no depth limit, and a depth limit that binds first.
#[test]
fn lossguide_grows_xgboosts_trees() {
    for (task, objective) in TASKS {
        let budget = common_params(objective).with_lossguide(7).with_max_depth(0);
        assert_grows_like_xgboost(task, "_leaves", &budget);
        let depth = common_params(objective)
            .with_lossguide(12)
            .with_max_depth(3);
        assert_grows_like_xgboost(task, "_leaves_depth", &depth);
    }
}

/// Early stopping on a validation set stops at XGBoost's round, keeps XGBoost's best iteration,
/// and reports XGBoost's metric values on the way.
#[test]
fn early_stopping_stops_where_xgboost_does() {
    use air_train::gbdt::{BoostData, train_gbdt};
    let (x, rows) = parity_data();
    let d = x.len() / rows;
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("early_stopping.json")).unwrap()).unwrap();
    for (task, objective) in TASKS {
        let y = air_data::to_f32_vector(&csv(&format!("train_{task}_labels.csv")), "y").unwrap();
        let train = BoostData {
            x: &x[..300 * d],
            rows: 300,
            y: &y[..300],
        };
        let valid = BoostData {
            x: &x[300 * d..],
            rows: rows - 300,
            y: &y[300..],
        };
        let params = common_params(objective)
            .with_eta(0.5)
            .with_early_stopping_rounds(4);
        let mut reported: Vec<f64> = Vec::new();
        let model = train_gbdt(&params, train, &[("valid", valid)], 200, |r| {
            reported.push(r.metrics.last().unwrap().1);
            true
        })
        .unwrap();
        let want = &expected[task];
        let best = want["best_iteration"].as_u64().unwrap() as usize;
        assert_eq!(
            reported.len(),
            want["rounds"].as_u64().unwrap() as usize,
            "{task}: rounds trained"
        );
        assert_eq!(
            model.num_rounds(),
            best + 1,
            "{task}: the model keeps the best round"
        );
        let history = want["history"]
            .as_object()
            .unwrap()
            .values()
            .next()
            .unwrap();
        for (round, (ours, theirs)) in reported.iter().zip(history.as_array().unwrap()).enumerate()
        {
            let theirs = theirs.as_f64().unwrap();
            assert!(
                (ours - theirs).abs() <= 1e-5 * theirs.abs().max(1.0),
                "{task}: round {round} metric {ours} vs XGBoost's {theirs}"
            );
        }
    }
}

#[test]
fn feature_importance_matches_xgboosts_get_score() {
    use air_train::gbdt::ImportanceType;
    for task in ["reg", "binary", "multi"] {
        let model = GbdtModel::from_xgboost_json(
            &std::fs::read(fixture(&format!("xgb_{task}.json"))).unwrap(),
        )
        .unwrap();
        let theirs: serde_json::Value = serde_json::from_slice(
            &std::fs::read(fixture(&format!("xgb_{task}_importance.json"))).unwrap(),
        )
        .unwrap();
        for (kind, key) in [
            (ImportanceType::Weight, "weight"),
            (ImportanceType::Gain, "gain"),
            (ImportanceType::TotalGain, "total_gain"),
            (ImportanceType::Cover, "cover"),
        ] {
            let ours = model.feature_importance(kind);
            let want = theirs[key].as_object().unwrap();
            assert_eq!(ours.len(), want.len(), "{task} {key}: features used");
            for (name, v) in ours {
                let w = want[&name].as_f64().unwrap();
                assert!(
                    (v - w).abs() <= 1e-5 * w.abs().max(1.0),
                    "{task} {key} {name}: ours {v}, XGBoost {w}"
                );
            }
        }
    }
}

/// Compares `model`'s predictions, SHAP values and leaf indices on `x` with XGBoost's fixture
/// files `xgb_{task}_{predictions,contributions,leaves}.csv`.
fn assert_explains_like_xgboost(task: &str, model: &GbdtModel, x: &[f32], rows: usize) {
    let pred = model.predict(x, rows).unwrap();
    let theirs = csv(&format!("xgb_{task}_predictions.csv"));
    let width = theirs.width();
    for (j, name) in theirs.get_column_names().iter().enumerate() {
        let col = air_data::to_f32_vector(&theirs, name.as_str()).unwrap();
        for (r, want) in col.iter().enumerate() {
            let got = pred[r * width + j];
            assert!(
                (got - want).abs() <= 1e-6,
                "{task}: row {r} predicts {got}, XGBoost {want}"
            );
        }
    }
    let theirs = csv(&format!("xgb_{task}_contributions.csv"));
    let width = theirs.width();
    let ours = model.predict_contributions(x, rows).unwrap();
    assert_eq!(
        ours.len(),
        rows * width,
        "{task}: rows × groups × (features + 1)"
    );
    let mut worst = 0.0f32;
    for (j, name) in theirs.get_column_names().iter().enumerate() {
        let col = air_data::to_f32_vector(&theirs, name.as_str()).unwrap();
        for (r, want) in col.iter().enumerate() {
            worst = worst.max((ours[r * width + j] - want).abs());
        }
    }
    assert!(
        worst < 1e-5,
        "{task}: contributions differ from XGBoost's by {worst}"
    );
    let margins = model.predict_margin(x, rows).unwrap();
    let groups = model.objective.num_groups();
    for r in 0..rows {
        for g in 0..groups {
            let start = r * width + g * (width / groups);
            let sum: f32 = ours[start..start + width / groups].iter().sum();
            assert!(
                (sum - margins[r * groups + g]).abs() < 1e-4,
                "{task}: row {r} sums to {sum}"
            );
        }
    }
    let leaves = model.predict_leaf(x, rows).unwrap();
    let theirs = csv(&format!("xgb_{task}_leaves.csv"));
    let trees = model.trees.len();
    assert_eq!(theirs.width(), trees);
    for (t, name) in theirs.get_column_names().iter().enumerate() {
        let col = air_data::to_f32_vector(&theirs, name.as_str()).unwrap();
        for (r, want) in col.iter().enumerate() {
            assert_eq!(
                leaves[r * trees + t] as f32,
                *want,
                "{task}: row {r} tree {t}"
            );
        }
    }
}

/// SHAP values (`pred_contribs=True`) and leaf indices (`pred_leaf=True`) equal XGBoost's on
/// its own models, on inputs with missing values; each row's contributions sum to its margin.
#[test]
fn contributions_and_leaves_match_xgboost() {
    let inputs = csv("inputs.csv");
    let columns: Vec<String> = (0..6).map(|j| format!("x{j}")).collect();
    let x = to_f32_matrix(&inputs, &columns).unwrap();
    for task in ["reg", "binary", "multi"] {
        let model =
            GbdtModel::from_xgboost_json_file(fixture(&format!("xgb_{task}.json"))).unwrap();
        assert_explains_like_xgboost(task, &model, &x.data, x.rows);
    }
}

/// Models trained with `enable_categorical=True` (partition splits on a 5- and a 30-category
/// column, one-hot splits with `max_cat_to_onehot` 8, missing categories) import, and predict,
/// explain and index leaves as XGBoost does on category codes.
#[test]
fn categorical_xgboost_models_predict_and_explain_like_xgboost() {
    let inputs = csv("cat_inputs.csv");
    let columns: Vec<String> = ["small", "large", "n0", "n1"].map(String::from).to_vec();
    let x = to_f32_matrix(&inputs, &columns).unwrap();
    for task in ["cat_reg", "cat_binary", "cat_onehot"] {
        let model =
            GbdtModel::from_xgboost_json_file(fixture(&format!("xgb_{task}.json"))).unwrap();
        let categorical = model
            .trees
            .iter()
            .flat_map(|t| (0..t.len()).filter(|i| t.category_set(*i).is_some()))
            .count();
        assert!(
            categorical > 0,
            "{task}: the model should have categorical splits"
        );
        assert_explains_like_xgboost(task, &model, &x.data, x.rows);
        // The model survives our own serde form.
        let back: GbdtModel =
            serde_json::from_str(&serde_json::to_string(&model).unwrap()).unwrap();
        assert_eq!(back, model);
    }
}

/// LightGBM's text models (leaf-wise trees, `<=` thresholds in f64, NaN default directions,
/// categorical bitsets) predict LightGBM's numbers, and their SHAP values equal LightGBM's
/// `pred_contrib` (which weighs paths by row counts, the covers the reader keeps).
#[test]
fn lightgbm_models_predict_and_explain_like_lightgbm() {
    let inputs = csv("inputs.csv");
    let columns: Vec<String> = (0..6).map(|j| format!("x{j}")).collect();
    let x = to_f32_matrix(&inputs, &columns).unwrap();
    let cat_inputs = csv("cat_inputs.csv");
    let cat_columns: Vec<String> = ["small", "large", "n0", "n1"].map(String::from).to_vec();
    let xc = to_f32_matrix(&cat_inputs, &cat_columns).unwrap();
    for (task, objective, data) in [
        ("reg", "reg:squarederror", &x),
        ("binary", "binary:logistic", &x),
        ("multi", "multi:softprob", &x),
        ("poisson", "count:poisson", &x),
        ("cat_reg", "reg:squarederror", &xc),
    ] {
        let model = GbdtModel::from_lightgbm_file(fixture(&format!("lgb_{task}.txt"))).unwrap();
        assert_eq!(model.objective.xgboost_name(), objective);
        let pred = model.predict(&data.data, data.rows).unwrap();
        let theirs = csv(&format!("lgb_{task}_predictions.csv"));
        let width = theirs.width();
        let mut worst = 0.0f64;
        for (j, name) in theirs.get_column_names().iter().enumerate() {
            let col = theirs.column(name.as_str()).unwrap().f64().unwrap().clone();
            for (r, want) in col.into_no_null_iter().enumerate() {
                let got = f64::from(pred[r * width + j]);
                worst = worst.max((got - want).abs() / want.abs().max(1.0));
            }
        }
        assert!(
            worst <= 1e-6,
            "{task}: predictions differ from LightGBM's by {worst:e}"
        );
        let contributions = model.predict_contributions(&data.data, data.rows).unwrap();
        let theirs = csv(&format!("lgb_{task}_contributions.csv"));
        let width = theirs.width();
        assert_eq!(contributions.len(), data.rows * width);
        let mut worst = 0.0f32;
        for (j, name) in theirs.get_column_names().iter().enumerate() {
            let col = air_data::to_f32_vector(&theirs, name.as_str()).unwrap();
            for (r, want) in col.iter().enumerate() {
                worst = worst.max((contributions[r * width + j] - want).abs());
            }
        }
        assert!(
            worst < 1e-5,
            "{task}: SHAP values differ from LightGBM's by {worst}"
        );
    }
}

/// Files that are not LightGBM models, or use what the reader does not support, are errors
/// naming what was found and what was expected.
#[test]
fn bad_lightgbm_files_are_clear_errors() {
    let text = std::fs::read_to_string(fixture("lgb_reg.txt")).unwrap();
    for (edit, expect) in [
        (
            text.replace("version=v4", "version=v9"),
            "version \"v9\" is not supported",
        ),
        (
            text.replace("objective=regression", "objective=lambdarank"),
            "objective \"lambdarank\"",
        ),
        (text.replace("is_linear=0", "is_linear=1"), "linear trees"),
        ("{\"learner\": {}}".to_owned(), "\"tree\" header"),
        (
            text.replacen("left_child=", "left_child=0 ", 1),
            "left_child has",
        ),
    ] {
        let err = GbdtModel::from_lightgbm_text(&edit)
            .unwrap_err()
            .to_string();
        assert!(err.contains(expect), "{err:?} lacks {expect:?}");
    }
    let err = GbdtModel::from_lightgbm_file("/nonexistent/model.txt")
        .unwrap_err()
        .to_string();
    assert!(err.contains("/nonexistent/model.txt"), "{err}");
}
