//! Classical estimators against scikit-learn (`tests/fixtures/sklearn/make_fixtures.py`, same
//! data and parameters). Tolerances, and why they are not all exact, are beside each case.

use air_data::{Dataset, Matrix, to_f64_matrix, to_f64_vector};
use air_train::sklearn::{Estimator, Predictions, Scoring, SklearnModel};
use serde_json::Value;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/sklearn");

struct Split {
    features: Vec<String>,
    x_train: Matrix<f64>,
    y_train: Vec<f64>,
    x_test: Matrix<f64>,
    y_test: Vec<f64>,
}

fn load(name: &str) -> Split {
    let read = |part: &str| {
        Dataset::read_csv(&format!("{DIR}/{name}_{part}.csv"))
            .unwrap()
            .to_polars()
            .unwrap()
    };
    let (train, test) = (read("train"), read("test"));
    let features: Vec<String> = train
        .get_column_names()
        .iter()
        .map(|c| c.to_string())
        .filter(|c| c != "target")
        .collect();
    Split {
        x_train: to_f64_matrix(&train, &features).unwrap(),
        y_train: to_f64_vector(&train, "target").unwrap(),
        x_test: to_f64_matrix(&test, &features).unwrap(),
        y_test: to_f64_vector(&test, "target").unwrap(),
        features,
    }
}

fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(format!("{DIR}/expected.json")).unwrap()).unwrap()
}

fn case(name: &str) -> Value {
    expected()["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no case {name}"))
        .clone()
}

struct Outcome {
    model: SklearnModel,
    ours: Vec<f64>,
    theirs: Vec<f64>,
    our_score: f64,
    their_score: f64,
}

fn run(name: &str) -> Outcome {
    let c = case(name);
    let split = load(c["dataset"].as_str().unwrap());
    let estimator: Estimator = serde_json::from_value(c["params"].clone()).unwrap();
    let model = SklearnModel::fit(
        &estimator,
        &split.x_train,
        Some(&split.y_train),
        split.features.clone(),
        "target",
    )
    .unwrap();
    let ours = model.predict(&split.x_test).unwrap();
    if estimator.default_scoring() == Scoring::Accuracy {
        assert!(matches!(ours, Predictions::Labels(_)));
    }
    let our_score = model
        .score(
            estimator.default_scoring(),
            &split.x_test,
            Some(&split.y_test),
        )
        .unwrap();
    let theirs: Vec<f64> = c["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let out = Outcome {
        model,
        ours: ours.to_f64(),
        theirs,
        our_score,
        their_score: c["score"].as_f64().unwrap(),
    };
    let max_diff = out
        .ours
        .iter()
        .zip(&out.theirs)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    let agree = out
        .ours
        .iter()
        .zip(&out.theirs)
        .filter(|(a, b)| a == b)
        .count();
    eprintln!(
        "{name}: ours {:.6} sklearn {:.6}; max |Δ prediction| {max_diff:.3e}; equal {agree}/{}",
        out.our_score,
        out.their_score,
        out.theirs.len()
    );
    out
}

fn max_rel_diff(ours: &[f64], theirs: &[f64]) -> f64 {
    let scale = theirs
        .iter()
        .map(|v| v.abs())
        .fold(0.0, f64::max)
        .max(1e-12);
    ours.iter()
        .zip(theirs)
        .map(|(a, b)| (a - b).abs() / scale)
        .fold(0.0, f64::max)
}

fn coefficients(o: &Outcome, name: &str) -> (f64, f64) {
    let c = case(name);
    let (coef, intercept) = o.model.linear_coefficients().unwrap();
    let theirs: Vec<f64> = c["coef"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()))
        .collect();
    let their_b: Vec<f64> = c["intercept"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let ours: Vec<f64> = coef.concat();
    let d = (
        max_rel_diff(&ours, &theirs),
        max_rel_diff(&intercept, &their_b),
    );
    eprintln!("{name}: coef rel diff {:.3e}, intercept {:.3e}", d.0, d.1);
    d
}

fn assert_coefficients(o: &Outcome, name: &str, tol: f64) {
    let (coef, intercept) = coefficients(o, name);
    assert!(
        coef <= tol,
        "{name}: coefficients differ by {coef:e} (> {tol:e})"
    );
    assert!(
        intercept <= tol,
        "{name}: intercept differs by {intercept:e} (> {tol:e})"
    );
}

fn agreement(o: &Outcome) -> f64 {
    o.ours.iter().zip(&o.theirs).filter(|(a, b)| a == b).count() as f64 / o.theirs.len() as f64
}

/// Closed-form solutions: equal to rounding.
#[test]
fn least_squares_and_ridge_equal_sklearn() {
    for name in ["linear_regression", "ridge", "ridge_no_intercept"] {
        let o = run(name);
        assert_coefficients(&o, name, 1e-10);
        assert!(max_rel_diff(&o.ours, &o.theirs) < 1e-10, "{name}");
        assert!((o.our_score - o.their_score).abs() < 1e-10, "{name}");
    }
}

/// Same objective, different solvers (smartcore's interior point, scikit-learn's coordinate
/// descent), each run to a tight tolerance: coefficients agree to 1e-5 of the largest.
#[test]
fn lasso_and_elastic_net_reach_sklearns_optimum() {
    for name in ["lasso", "elastic_net"] {
        let o = run(name);
        assert_coefficients(&o, name, 1e-5);
        assert!(max_rel_diff(&o.ours, &o.theirs) < 1e-5, "{name}");
        assert!((o.our_score - o.their_score).abs() < 1e-5, "{name}");
    }
}

/// Same penalised log-likelihood, both L-BFGS: coefficients to 1e-5, identical labels.
#[test]
fn logistic_regression_reaches_sklearns_optimum() {
    for name in ["logistic_binary", "logistic_multinomial"] {
        let o = run(name);
        assert_coefficients(&o, name, 1e-5);
        assert_eq!(o.ours, o.theirs, "{name}");
    }
}

/// Deterministic given the data: identical predictions.
#[test]
fn neighbours_and_naive_bayes_equal_sklearn() {
    for name in [
        "knn_classifier",
        "gaussian_nb",
        "gaussian_nb_cancer",
        "multinomial_nb",
        "bernoulli_nb",
    ] {
        let o = run(name);
        assert_eq!(o.ours, o.theirs, "{name}");
    }
    let o = run("knn_regressor");
    assert!(max_rel_diff(&o.ours, &o.theirs) < 1e-10);
}

/// CART with midpoint thresholds like scikit-learn's, but scikit-learn casts features to
/// float32 and breaks equal-gain ties by a random feature order, so a few test rows near a
/// threshold can land on the other side: at least 95% identical predictions, scores within
/// 0.03 (accuracy) / 0.05 (R²).
#[test]
fn decision_trees_agree_with_sklearn() {
    let o = run("tree_classifier_iris");
    assert_eq!(o.ours, o.theirs);
    let o = run("tree_classifier");
    assert!(agreement(&o) >= 0.95, "{}", agreement(&o));
    assert!((o.our_score - o.their_score).abs() <= 0.03);
    let o = run("tree_regressor");
    assert!(agreement(&o) >= 0.95, "{}", agreement(&o));
    assert!((o.our_score - o.their_score).abs() <= 0.05);
}

/// Bootstrap samples and feature draws come from different generators, so only the quality is
/// comparable: accuracy within 0.03, R² within 0.05.
#[test]
fn random_forests_score_like_sklearn() {
    let o = run("forest_classifier");
    assert!((o.our_score - o.their_score).abs() <= 0.03);
    let o = run("forest_regressor");
    assert!((o.our_score - o.their_score).abs() <= 0.05);
}

/// smartcore's SMO and libsvm stop at tolerance 1e-3 on the same dual: classifiers agree on
/// at least 98% of labels (all of them here), regressors to 1% of the prediction scale.
#[test]
fn support_vector_machines_agree_with_sklearn() {
    for name in ["svc_linear", "svc_rbf_iris"] {
        let o = run(name);
        assert!(agreement(&o) >= 0.98, "{name}: {}", agreement(&o));
        assert!((o.our_score - o.their_score).abs() <= 0.02, "{name}");
    }
    for name in ["svr_linear", "svr_rbf"] {
        let o = run(name);
        assert!(max_rel_diff(&o.ours, &o.theirs) < 1e-2, "{name}");
        assert!((o.our_score - o.their_score).abs() <= 1e-2, "{name}");
    }
}

/// Well-separated blobs: the same partition (up to cluster numbering), centroids and inertia.
#[test]
fn kmeans_finds_sklearns_clusters() {
    let e = expected()["kmeans"].clone();
    let df = Dataset::read_csv(&format!("{DIR}/blobs.csv"))
        .unwrap()
        .to_polars()
        .unwrap();
    let x = to_f64_matrix(&df, &["x0", "x1"]).unwrap();
    let estimator: Estimator = serde_json::from_value(e["params"].clone()).unwrap();
    let model =
        SklearnModel::fit(&estimator, &x, None, vec!["x0".into(), "x1".into()], "").unwrap();
    let Predictions::Labels(ours) = model.predict(&x).unwrap() else {
        panic!("k-means predicts cluster indices");
    };
    let theirs: Vec<i64> = e["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    // Our cluster c is their cluster map[c], the same for every row.
    let mut map = [-1i64; 3];
    for (a, b) in ours.iter().zip(&theirs) {
        let slot = &mut map[*a as usize];
        assert!(*slot == -1 || *slot == *b, "partitions differ");
        *slot = *b;
    }
    let inertia = model.score(Scoring::Inertia, &x, None).unwrap();
    let theirs_inertia = e["inertia"].as_f64().unwrap();
    assert!((inertia - theirs_inertia).abs() / theirs_inertia < 1e-9);
    let centers = model.cluster_centers().unwrap();
    for (c, center) in centers.iter().enumerate() {
        let theirs = &e["centers"][map[c] as usize];
        for (j, v) in center.iter().enumerate() {
            assert!((v - theirs[j].as_f64().unwrap()).abs() < 1e-9);
        }
    }
}

/// `SklearnTrainer` cuts folds like `KFold(5)` and scores like `cross_val_score`.
#[test]
fn cross_validation_equals_cross_val_score() {
    use air_train::{
        RunConfig, Trainer, Verbosity,
        sklearn::{CvConfig, SklearnTrainer},
    };
    let e = expected()["cv"].clone();
    let dir = tempfile::tempdir().unwrap();
    let train = Dataset::read_csv(&format!("{DIR}/diabetes_train.csv")).unwrap();
    let estimator: Estimator = serde_json::from_value(e["params"].clone()).unwrap();
    let result = SklearnTrainer::new(
        estimator,
        Some("target"),
        RunConfig::new(dir.path().to_str().unwrap()).with_verbose(Verbosity::Silent),
    )
    .unwrap()
    .with_dataset("train", train)
    .with_cv(CvConfig::new(5).unwrap())
    .with_scoring([Scoring::R2, Scoring::MeanSquaredError])
    .fit()
    .unwrap()
    .into_result()
    .unwrap();
    for (metric, key) in [("r2", "test_r2"), ("mse", "test_mse")] {
        for (f, theirs) in e[key].as_array().unwrap().iter().enumerate() {
            let ours = result.metrics[&format!("cv/test_{metric}_fold{f}")]
                .as_f64()
                .unwrap();
            let theirs = theirs.as_f64().unwrap();
            assert!(
                (ours - theirs).abs() <= 1e-9 * theirs.abs().max(1.0),
                "{metric} fold {f}: {ours} vs {theirs}"
            );
        }
    }
}
