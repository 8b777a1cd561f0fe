//! Preprocessors against scikit-learn: fixtures made by `fixtures/preprocess/make_fixtures.py`
//! (scikit-learn 1.9), compared to 1e-9.

mod common;

use std::path::PathBuf;

use air_data::{
    Dataset, ImputeStrategy, LabelEncoder, MaxAbsScaler, MinMaxScaler, Norm, Normalizer,
    OneHotEncoder, OrdinalEncoder, PowerMethod, PowerTransformer, Preprocessor, RobustScaler,
    SimpleImputer, StandardScaler, polars::prelude::*,
};
use common::{breast_cancer, floats, s};

const NUM: [&str; 4] = [
    "mean radius",
    "mean texture",
    "mean area",
    "worst smoothness",
];

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/preprocess/{name}.csv"))
}

fn expected(name: &str) -> DataFrame {
    Dataset::read_csv(s(&fixture(name)))
        .unwrap()
        .to_polars()
        .unwrap()
}

fn cancer() -> Dataset {
    Dataset::read_csv(s(&breast_cancer())).unwrap()
}

fn mixed() -> Dataset {
    Dataset::read_csv(s(&fixture("mixed"))).unwrap()
}

/// Fits `p` on `ds`, transforms `ds`, and compares `columns` with the fixture.
fn check(mut p: impl Preprocessor, ds: &Dataset, fixture_name: &str, columns: &[&str]) {
    let ours = p.fit_transform(ds).unwrap().to_polars().unwrap();
    let theirs = expected(fixture_name);
    for c in columns {
        let (a, b) = (floats(&ours, c), floats(&theirs, c));
        assert_eq!(a.len(), b.len(), "{fixture_name}/{c}: row counts");
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            match (x, y) {
                (Some(x), Some(y)) => assert!(
                    (x - y).abs() <= 1e-9 * y.abs().max(1.0),
                    "{fixture_name}/{c} row {i}: ours {x}, scikit-learn {y}"
                ),
                (None, None) => {}
                _ => panic!("{fixture_name}/{c} row {i}: ours {x:?}, scikit-learn {y:?}"),
            }
        }
    }
    // The serving path gives the same numbers as the dataset path.
    let batch = p.transform_batch(ds.take(25).unwrap()).unwrap();
    for c in columns {
        assert_eq!(
            floats(&batch, c),
            floats(&ours, c)[..25],
            "{fixture_name}/{c}: batch"
        );
    }
}

#[test]
fn standard_scaler() {
    check(StandardScaler::new(NUM), &cancer(), "standard_scaler", &NUM);
    check(
        StandardScaler::new(["x", "z"]),
        &mixed(),
        "standard_scaler_nulls",
        &["x", "z"],
    );
}

#[test]
fn min_max_and_max_abs_scalers() {
    check(MinMaxScaler::new(NUM), &cancer(), "min_max_scaler", &NUM);
    check(
        MaxAbsScaler::new(["x", "z"]),
        &mixed(),
        "max_abs_scaler",
        &["x", "z"],
    );
}

#[test]
fn robust_scaler() {
    check(RobustScaler::new(NUM), &cancer(), "robust_scaler", &NUM);
    let wide = RobustScaler::new(NUM).with_quantile_range(0.1, 0.9);
    check(wide, &cancer(), "robust_scaler_10_90", &NUM);
}

#[test]
fn normalizer() {
    for (norm, name) in [(Norm::L1, "l1"), (Norm::L2, "l2"), (Norm::Max, "max")] {
        check(
            Normalizer::new(NUM, norm),
            &cancer(),
            &format!("normalizer_{name}"),
            &NUM,
        );
    }
}

#[test]
fn power_transformer() {
    for lam in ["0.5", "0.0", "2.0", "-1.5"] {
        let p =
            PowerTransformer::new(["z"], lam.parse().unwrap(), PowerMethod::YeoJohnson).unwrap();
        check(p, &mixed(), &format!("yeo_johnson_{lam}"), &["z"]);
    }
    for lam in ["0.25", "0.0"] {
        let p = PowerTransformer::new(["mean area"], lam.parse().unwrap(), PowerMethod::BoxCox)
            .unwrap();
        check(p, &cancer(), &format!("box_cox_{lam}"), &["mean area"]);
    }
}

#[test]
fn simple_imputer() {
    check(
        SimpleImputer::new(["x"], ImputeStrategy::Mean),
        &mixed(),
        "imputer_mean",
        &["x"],
    );
    let mut most = SimpleImputer::new(["color_missing", "k"], ImputeStrategy::MostFrequent);
    let ours = most.fit_transform(&mixed()).unwrap().to_polars().unwrap();
    let theirs = expected("imputer_most_frequent");
    assert!(
        ours.column("color_missing")
            .unwrap()
            .equals(theirs.column("color_missing").unwrap())
    );
    assert_eq!(floats(&ours, "k"), floats(&theirs, "k"));
}

#[test]
fn ordinal_one_hot_and_label_encoders() {
    let cols = ["color", "size", "k"];
    check(
        OrdinalEncoder::new(cols),
        &mixed(),
        "ordinal_encoder",
        &cols,
    );
    let one_hot_cols = [
        "color_amber",
        "color_blue",
        "color_green",
        "color_red",
        "size_L",
        "size_M",
        "size_S",
    ];
    check(
        OneHotEncoder::new(["color", "size"]),
        &mixed(),
        "one_hot_encoder",
        &one_hot_cols,
    );
    let mut oh = OneHotEncoder::new(["color", "size"]);
    let out = oh.fit_transform(&mixed()).unwrap().to_polars().unwrap();
    let names: Vec<&str> = out.get_column_names().iter().map(|n| n.as_str()).collect();
    assert_eq!(
        &names[names.len() - 7..],
        one_hot_cols,
        "sorted categories, sources dropped"
    );
    check(
        LabelEncoder::new("color"),
        &mixed(),
        "label_encoder",
        &["color"],
    );
}

#[test]
fn discretizers_match_scikit_learn_and_pandas_cut() {
    use air_data::{CustomKBinsDiscretizer, UniformKBinsDiscretizer};
    let left = UniformKBinsDiscretizer::new(NUM, 5)
        .unwrap()
        .with_right(false);
    check(left.clone(), &cancer(), "kbins_uniform", &NUM);
    check(left, &cancer(), "pandas_cut_uniform_left", &NUM);
    check(
        UniformKBinsDiscretizer::new(NUM, 5).unwrap(),
        &cancer(),
        "pandas_cut_uniform",
        &NUM,
    );
    let custom = CustomKBinsDiscretizer::new(["mean radius"], &[6.981, 10.0, 15.0, 20.0, 25.0])
        .unwrap()
        .with_include_lowest(true);
    check(custom, &cancer(), "pandas_cut_custom", &["mean radius"]);
    assert!(CustomKBinsDiscretizer::new(["x"], &[1.0, 1.0]).is_err());
    assert!(UniformKBinsDiscretizer::new(["x"], 0).is_err());
}

fn texts() -> Dataset {
    Dataset::read_csv(s(&fixture("texts")))
        .unwrap()
        .with_column("tags", col("tags").str().split(lit("|")))
}

/// The fixture's column names, and checks that they are exactly the columns `p` appends.
fn vector_columns(p: &impl Preprocessor, ds: &Dataset, fixture_name: &str) -> Vec<String> {
    let theirs: Vec<String> = expected(fixture_name)
        .get_column_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    let mut p = p.clone_box();
    p.fit(ds).unwrap();
    let names: Vec<String> = p
        .transform(ds)
        .unwrap()
        .columns()
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(
        names[names.len() - theirs.len()..],
        theirs,
        "{fixture_name}: appended columns"
    );
    theirs
}

fn check_vectors(p: impl Preprocessor, ds: &Dataset, fixture_name: &str) {
    let columns = vector_columns(&p, ds, fixture_name);
    let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
    check(p, ds, fixture_name, &columns);
}

#[test]
fn count_vectorizer() {
    use air_data::{CountVectorizer, Tokenization};
    check_vectors(CountVectorizer::new(["text"]), &texts(), "count_vectorizer");
    let sklearn_like = CountVectorizer::new(["text"])
        .with_tokenization(Tokenization::sklearn())
        .with_lowercase(true)
        .with_max_features(10);
    check_vectors(sklearn_like, &texts(), "count_vectorizer_max10");
}

#[test]
fn hashing_vectorizer_and_feature_hasher_match_scikit_learn_buckets() {
    use air_data::{FeatureHasher, HashingVectorizer, Tokenization};
    check_vectors(
        HashingVectorizer::new(["text"], 16).unwrap(),
        &texts(),
        "hashing_vectorizer",
    );
    let signed = HashingVectorizer::new(["text"], 16)
        .unwrap()
        .with_tokenization(Tokenization::sklearn())
        .with_lowercase(true)
        .with_alternate_sign(true);
    check_vectors(signed, &texts(), "hashing_vectorizer_signed");
    let inputs = ["clicks", "score", "city"];
    check_vectors(
        FeatureHasher::new(inputs, 8).unwrap(),
        &texts(),
        "feature_hasher",
    );
    check_vectors(
        FeatureHasher::new(inputs, 8)
            .unwrap()
            .with_alternate_sign(true),
        &texts(),
        "feature_hasher_signed",
    );
    assert!(HashingVectorizer::new(["text"], 0).is_err());
    assert!(FeatureHasher::new(["x"], 0).is_err());
}

#[test]
fn multi_hot_encoder_matches_multi_label_binarizer() {
    use air_data::{MultiHotEncoder, VectorOutput};
    check_vectors(
        MultiHotEncoder::new(["tags"]).with_output(VectorOutput::Columns),
        &texts(),
        "multi_hot",
    );
}

#[test]
fn array_output_holds_the_same_counts_as_columns() {
    use air_data::{CountVectorizer, MultiHotEncoder, VectorOutput};
    let ds = texts();
    let theirs = expected("count_vectorizer");
    let mut cv = CountVectorizer::new(["text"]).with_output(VectorOutput::Array);
    let ours = cv.fit_transform(&ds).unwrap().to_polars().unwrap();
    let arrays = ours.column("text").unwrap().array().unwrap();
    assert_eq!(arrays.width(), theirs.width());
    for (i, row) in arrays.amortized_iter().enumerate() {
        let row: Vec<Option<f64>> = row
            .unwrap()
            .as_ref()
            .cast(&DataType::Float64)
            .unwrap()
            .f64()
            .unwrap()
            .iter()
            .collect();
        let expected: Vec<Option<f64>> = theirs
            .get_column_names()
            .iter()
            .map(|c| floats(&theirs, c)[i])
            .collect();
        assert_eq!(row, expected, "row {i}");
    }
    let mut mh = MultiHotEncoder::new(["tags"]);
    let ours = mh.fit_transform(&ds).unwrap().to_polars().unwrap();
    assert_eq!(
        ours.column("tags").unwrap().dtype(),
        &DataType::Array(Box::new(DataType::Int64), 6)
    );
}
