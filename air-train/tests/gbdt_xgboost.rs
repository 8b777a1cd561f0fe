//! Models trained by Python XGBoost (`tests/fixtures/gbdt/make_fixtures.py`, xgboost 3.2) load
//! here and predict XGBoost's numbers to 1e-6.

use std::path::PathBuf;

use air_data::{Dataset, to_f32_matrix};
use air_train::{GbdtModel, Objective};

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
