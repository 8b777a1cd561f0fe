//! Preprocessor semantics (Ray's), errors, checkpoints and sharing.

mod common;

use std::sync::Arc;

use air_checkpoint::Checkpoint;
use air_data::{
    BatchMapper, Chain, Concatenator, DataError, Dataset, FitStatus, FloatType, ImputeStrategy,
    LabelEncoder, MaxAbsScaler, MinMaxScaler, NamedPreprocessor, Norm, Normalizer, OneHotEncoder,
    OrdinalEncoder, PREPROCESSOR_ENTRY, PowerMethod, PowerTransformer, Preprocessor, RobustScaler,
    SimpleImputer, StandardScaler, load_preprocessor, polars::prelude::*, preprocessor_from_json,
    preprocessor_to_json, register_batch_fn, register_preprocessor, save_preprocessor,
};
use common::floats;
use serde::{Deserialize, Serialize};

fn frame() -> DataFrame {
    df!(
        "a" => [Some(1.0), Some(2.0), None, Some(4.0), Some(5.0)],
        "b" => [3.0, 3.0, 3.0, 3.0, 3.0],
        "c" => ["x", "y", "x", "z", "x"],
        "label" => ["no", "yes", "no", "yes", "maybe"],
    )
    .unwrap()
}

#[test]
fn ray_semantics_for_scalers() {
    let ds = Dataset::from_polars(frame());
    // Ray's RobustScaler doc example: X1 = [1..5] -> [-1, -0.5, 0, 0.5, 1].
    let five = Dataset::from_polars(df!("x" => [1.0, 2.0, 3.0, 4.0, 5.0]).unwrap());
    let out = RobustScaler::new(["x"])
        .fit_transform(&five)
        .unwrap()
        .to_polars()
        .unwrap();
    assert_eq!(floats(&out, "x"), [-1.0, -0.5, 0.0, 0.5, 1.0].map(Some));
    // A constant column divides by 1; nulls are ignored by statistics and stay null.
    let out = StandardScaler::new(["a", "b"])
        .fit_transform(&ds)
        .unwrap()
        .to_polars()
        .unwrap();
    assert_eq!(floats(&out, "b"), [Some(0.0); 5]);
    assert_eq!(floats(&out, "a")[2], None);
    let out = MinMaxScaler::new(["a", "b"])
        .fit_transform(&ds)
        .unwrap()
        .to_polars()
        .unwrap();
    assert_eq!(
        floats(&out, "a"),
        [Some(0.0), Some(0.25), None, Some(0.75), Some(1.0)]
    );
    assert_eq!(floats(&out, "b"), [Some(0.0); 5]);
    let zeros = Dataset::from_polars(df!("z" => [0.0, 0.0]).unwrap());
    let out = MaxAbsScaler::new(["z"])
        .fit_transform(&zeros)
        .unwrap()
        .to_polars()
        .unwrap();
    assert_eq!(floats(&out, "z"), [Some(0.0); 2]);
    // Ray's "lower" quantiles are available too.
    let lower = RobustScaler::new(["x"])
        .with_quantile_range(0.1, 0.9)
        .with_interpolation(air_data::QuantileInterpolation::Lower);
    let mut lower = lower;
    lower.fit(&five).unwrap();
    // floor(0.1 * 4) = 0 -> 1.0; floor(0.9 * 4) = 3 -> 4.0; scale 3.
    let out = lower
        .transform_batch(df!("x" => [3.0, 6.0]).unwrap())
        .unwrap();
    assert_eq!(floats(&out, "x"), [Some(0.0), Some(1.0)]);
    // An inverted range is refused when fitting, naming it.
    let e = RobustScaler::new(["x"])
        .with_quantile_range(0.8, 0.2)
        .fit(&five)
        .unwrap_err();
    assert!(e.to_string().contains("quantile_range"), "{e}");
    // A zero row stays zero under every norm.
    let rows = Dataset::from_polars(df!("p" => [0.0, 3.0], "q" => [0.0, -4.0]).unwrap());
    for (norm, expected) in [(Norm::L1, -4.0 / 7.0), (Norm::L2, -0.8), (Norm::Max, -1.0)] {
        let out = Normalizer::new(["p", "q"], norm)
            .transform(&rows)
            .unwrap()
            .to_polars()
            .unwrap();
        assert_eq!(floats(&out, "q"), [Some(0.0), Some(expected)], "{norm:?}");
    }
}

#[test]
fn encoders_handle_unseen_values_and_refuse_nulls() {
    let ds = Dataset::from_polars(frame());
    let unseen = df!(
        "a" => [1.0], "b" => [3.0], "c" => ["new"], "label" => ["never"],
    )
    .unwrap();
    let mut ord = OrdinalEncoder::new(["c"]);
    ord.fit(&ds).unwrap();
    assert_eq!(ord.categories("c").unwrap(), ["x", "y", "z"]);
    let out = ord.transform_batch(unseen.clone()).unwrap();
    assert_eq!(out.column("c").unwrap().null_count(), 1);
    let mut oh = OneHotEncoder::new(["c"]);
    oh.fit(&ds).unwrap();
    let out = oh.transform_batch(unseen.clone()).unwrap();
    for name in ["c_x", "c_y", "c_z"] {
        assert_eq!(floats(&out, name), [Some(0.0)], "{name}");
    }
    assert!(out.column("c").is_err(), "the source column is dropped");
    let mut capped = OneHotEncoder::new(["c"]).with_max_categories("c", 1);
    capped.fit(&ds).unwrap();
    assert_eq!(capped.output_columns().unwrap(), ["c_x"]);
    let mut label = LabelEncoder::new("label");
    label.fit(&ds).unwrap();
    assert_eq!(label.classes().unwrap(), ["maybe", "no", "yes"]);
    let coded = label.transform_batch(frame()).unwrap();
    assert_eq!(floats(&coded, "label"), [1.0, 2.0, 1.0, 2.0, 0.0].map(Some));
    let back = label.inverse_transform_batch(coded).unwrap();
    assert!(
        back.column("label")
            .unwrap()
            .equals(frame().column("label").unwrap())
    );
    assert_eq!(
        label
            .transform_batch(unseen)
            .unwrap()
            .column("label")
            .unwrap()
            .null_count(),
        1
    );

    let nulls = Dataset::from_polars(df!("c" => [Some("x"), None]).unwrap());
    for result in [
        OrdinalEncoder::new(["c"]).fit(&nulls),
        OneHotEncoder::new(["c"]).fit(&nulls),
        LabelEncoder::new("c").fit(&nulls),
    ] {
        let err = result.unwrap_err();
        assert!(matches!(err, DataError::NullsNotAllowed { .. }), "{err:?}");
        assert!(err.to_string().contains("impute them first"), "{err}");
    }
    // Nulls arriving at transform time are refused too, with the same advice.
    let err = ord
        .transform_batch(df!("c" => [Some("x"), None]).unwrap())
        .unwrap_err();
    assert!(err.to_string().contains("impute them first"), "{err}");
    let err = ord.transform(&nulls).unwrap().to_polars().unwrap_err();
    assert!(err.to_string().contains("impute them first"), "{err}");
}

#[test]
fn one_hot_equals_one_comparison_per_category() {
    // `s_a` is also the output of `s`'s category "a": replaced in place, as with_columns does.
    let train = df!(
        "s" => ["b", "a", "c", "a"],
        "t" => ["x", "y", "x", "x"],
        "s_a" => [9i64, 9, 9, 9],
        "n" => [1.0, 2.0, 3.0, 4.0],
    )
    .unwrap();
    let mut oh = OneHotEncoder::new(["s", "t"]);
    oh.fit(&Dataset::from_polars(train)).unwrap();
    let input = df!(
        "s" => ["a", "unseen", "c", "b", "a"],
        "t" => ["y", "x", "unseen", "x", "y"],
        "s_a" => [1i64, 2, 3, 4, 5],
        "n" => [5.0, 6.0, 7.0, 8.0, 9.0],
    )
    .unwrap();
    let indicators: Vec<Expr> = [("s", "a"), ("s", "b"), ("s", "c"), ("t", "x"), ("t", "y")]
        .into_iter()
        .map(|(c, v)| {
            col(c)
                .eq(lit(v))
                .cast(DataType::Int64)
                .alias(format!("{c}_{v}"))
        })
        .collect();
    let by_hand = input
        .clone()
        .lazy()
        .with_columns(indicators)
        .drop(by_name(["s", "t"], true, false))
        .collect()
        .unwrap();
    let out = oh.transform_batch(input.clone()).unwrap();
    assert!(out.equals_missing(&by_hand), "{out}\n{by_hand}");
    assert_eq!(
        out.get_column_names(),
        ["s_a", "n", "s_b", "s_c", "t_x", "t_y"]
    );
    // Lazily and streamed in batches of two rows: the same rows and schema.
    let transformed = oh.transform(&Dataset::from_polars(input.clone())).unwrap();
    assert_eq!(&transformed.schema().unwrap(), &*by_hand.schema().clone());
    let mut streamed: Option<DataFrame> = None;
    for batch in transformed.iter_batches(2).unwrap() {
        let batch = batch.unwrap();
        match &mut streamed {
            Some(all) => {
                all.vstack_mut(&batch).unwrap();
            }
            None => streamed = Some(batch),
        }
    }
    assert!(streamed.unwrap().equals_missing(&by_hand));
    // A null at transform time is refused, naming the column.
    let err = oh
        .transform_batch(
            df!("s" => ["a", "b"], "t" => [Some("x"), None], "s_a" => [1i64, 2], "n" => [1.0, 2.0])
                .unwrap(),
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("impute them first") && err.contains("\"t\""),
        "{err}"
    );
    // Integer categories take the comparison per category.
    let mut numbers = OneHotEncoder::new(["k"]);
    numbers
        .fit(&Dataset::from_polars(df!("k" => [3i64, 1, 3]).unwrap()))
        .unwrap();
    let out = numbers
        .transform_batch(df!("k" => [1i64, 2, 3]).unwrap())
        .unwrap();
    assert_eq!(out.get_column_names(), ["k_1", "k_3"]);
    assert_eq!(floats(&out, "k_3"), [0.0, 0.0, 1.0].map(Some));
}

#[test]
fn transform_before_fit_and_unknown_columns_are_errors() {
    let ds = Dataset::from_polars(frame());
    let scaler = StandardScaler::new(["a"]);
    assert_eq!(scaler.fit_status(), FitStatus::NotFitted);
    for err in [
        scaler.transform(&ds).unwrap_err(),
        scaler.transform_batch(frame()).unwrap_err(),
    ] {
        assert!(
            matches!(&err, DataError::NotFitted { preprocessor } if preprocessor == "StandardScaler"),
            "{err:?}"
        );
    }
    let err = StandardScaler::new(["nope"]).fit(&ds).unwrap_err();
    assert!(
        matches!(&err, DataError::ColumnNotFound { column, available, .. } if column == "nope" && available.len() == 4),
        "{err:?}"
    );
    // A fitted preprocessor given a batch without its column says which one.
    let mut fitted = StandardScaler::new(["a"]);
    fitted.fit(&ds).unwrap();
    let err = fitted
        .transform_batch(df!("b" => [1.0]).unwrap())
        .unwrap_err();
    assert!(
        matches!(&err, DataError::ColumnNotFound { column, .. } if column == "a"),
        "{err:?}"
    );
}

/// The serving path: a batch whose numeric column holds a string or a list.
#[test]
fn a_value_of_the_wrong_type_is_named_never_cast_to_null() {
    let ds = Dataset::from_polars(frame());
    let numeric: Vec<Box<dyn Preprocessor>> = vec![
        Box::new(StandardScaler::new(["a"])),
        Box::new(MinMaxScaler::new(["a"])),
        Box::new(MaxAbsScaler::new(["a"])),
        Box::new(RobustScaler::new(["a"])),
        Box::new(Normalizer::new(["a", "b"], Norm::L2)),
        Box::new(PowerTransformer::new(["a"], 0.5, PowerMethod::YeoJohnson).unwrap()),
        Box::new(air_data::UniformKBinsDiscretizer::new(["a"], 3).unwrap()),
        Box::new(air_data::CustomKBinsDiscretizer::new(["a"], &[0.0, 2.5, 10.0]).unwrap()),
        Box::new(SimpleImputer::new(["a"], ImputeStrategy::Mean)),
        Box::new(Chain::new(vec![
            Box::new(SimpleImputer::new(["a"], ImputeStrategy::Mean)),
            Box::new(StandardScaler::new(["a"])),
        ])),
    ];
    let long = "x".repeat(10 << 20);
    let strings = df!("a" => [Some("1.5"), None, Some("abc")], "b" => [1.0, 2.0, 3.0]).unwrap();
    let big = df!("a" => [long.as_str()], "b" => [1.0]).unwrap();
    let lists = DataFrame::new(
        1,
        vec![
            Series::new("a".into(), [Series::new("".into(), [1.0, 2.0])]).into_column(),
            Series::new("b".into(), [1.0]).into_column(),
        ],
    )
    .unwrap();
    let (mut tried, mut refused_fits) = (0, 0);
    for mut p in numeric {
        p.fit(&ds).unwrap();
        for (batch, row, value) in [
            (&strings, 0, "\"1.5\""),
            (&big, 0, "\"xxxx"),
            (&lists, 0, "[1.0, 2.0]"),
        ] {
            let err = p.transform_batch(batch.clone()).unwrap_err();
            let text = err.to_string();
            let DataError::NonNumericColumn { column, found, .. } = &err else {
                panic!("{}: {err:?}", p.type_name());
            };
            assert!(column == "a" || column == "b", "{}: {text}", p.type_name());
            let (r, v) = found.as_ref().expect("the batch is at hand");
            assert_eq!(*r, row, "{}: {text}", p.type_name());
            assert!(v.starts_with(value), "{}: {text}", p.type_name());
            assert!(
                text.len() < 400,
                "{}: the message holds the whole value",
                p.type_name()
            );
            tried += 1;
        }
        // Fitting on strings is refused the same way (stateless ones do not fit).
        let fitting = p.clone_box().fit(&Dataset::from_polars(strings.clone()));
        match p.fit_status() {
            FitStatus::NotFittable => fitting.unwrap(),
            _ => {
                let err = fitting.unwrap_err();
                assert!(
                    matches!(err, DataError::NonNumericColumn { .. }),
                    "{}: {err}",
                    p.type_name()
                );
                refused_fits += 1;
            }
        }
    }
    assert_eq!((tried, refused_fits), (30, 7));
}

#[test]
fn chain_fits_each_stage_on_the_previous_output() {
    let ds = Dataset::from_polars(frame());
    let mut chain = Chain::new(vec![
        Box::new(SimpleImputer::new(["a"], ImputeStrategy::Mean)),
        Box::new(StandardScaler::new(["a"])),
        Box::new(OneHotEncoder::new(["c"])),
        Box::new(
            Concatenator::new()
                .with_exclude(["label"])
                .with_output_column_name("features"),
        ),
    ]);
    assert_eq!(chain.fit_status(), FitStatus::NotFitted);
    let out = chain.fit_transform(&ds).unwrap().to_polars().unwrap();
    assert_eq!(chain.fit_status(), FitStatus::Fitted);
    assert_eq!(out.get_column_names(), ["label", "features"]);
    assert_eq!(
        out.column("features").unwrap().dtype(),
        &DataType::Array(Box::new(DataType::Float32), 5)
    );
    // The imputed mean is 3, so the scaled value of the null row is exactly 0.
    let row = out.column("features").unwrap().get(2).unwrap();
    let AnyValue::Array(values, 5) = row else {
        panic!("{row:?}")
    };
    assert_eq!(values.get(0).unwrap(), AnyValue::Float32(0.0));
    // A chain with one stage fitted by hand is partially fitted.
    let mut scaler = StandardScaler::new(["a"]);
    scaler.fit(&ds).unwrap();
    let partial = Chain::new(vec![Box::new(scaler), Box::new(MinMaxScaler::new(["b"]))]);
    assert_eq!(partial.fit_status(), FitStatus::PartiallyFitted);
    assert!(matches!(
        partial.transform(&ds),
        Err(DataError::NotFitted { .. })
    ));
    // Stateless stages only: nothing to fit.
    let stateless = Chain::new(vec![Box::new(Normalizer::new(["a", "b"], Norm::L2))]);
    assert_eq!(stateless.fit_status(), FitStatus::NotFittable);
}

/// Fits `stages` one after the other, each on the previous stages' output: what `Chain::fit`
/// did before it fused stages.
fn fit_in_sequence(stages: &mut [Box<dyn Preprocessor>], ds: &Dataset) -> Dataset {
    let mut current = ds.clone();
    for stage in stages.iter_mut() {
        stage.fit(&current).unwrap();
        current = stage.transform(&current).unwrap();
    }
    current
}

#[test]
fn chain_fuses_aggregation_fits_over_disjoint_columns_into_one_pass() {
    let n = 1000;
    let base = df!(
        "a" => (0..n).map(|i| (i % 7 == 3).then_some(i as f64 * 0.5)).collect::<Vec<_>>(),
        "b" => (0..n).map(|i| ((i * 37) % 101) as i64 - 50).collect::<Vec<_>>(),
        "c" => (0..n).map(|i| (i as f64).sin()).collect::<Vec<_>>(),
        "d" => (0..n).map(|i| ((i * 13) % 29) as f32).collect::<Vec<_>>(),
        "cat" => (0..n).map(|i| ["x", "y", "z"][i % 3]).collect::<Vec<_>>(),
    )
    .unwrap();
    // Counts the passes over the data: each one maps a batch of all `n` rows (learning the
    // schema maps one row).
    let passes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = passes.clone();
    let ds = Dataset::from_polars(base)
        .map_batches(
            move |df: DataFrame| {
                if df.height() == n {
                    counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                Ok::<DataFrame, PolarsError>(df)
            },
            n,
        )
        .unwrap();
    let passes_of = |f: &mut dyn FnMut()| {
        let before = passes.load(std::sync::atomic::Ordering::SeqCst);
        f();
        passes.load(std::sync::atomic::Ordering::SeqCst) - before
    };
    let stages = || -> Vec<Box<dyn Preprocessor>> {
        vec![
            // Four aggregation fits over disjoint columns: one pass.
            Box::new(StandardScaler::new(["a", "b"])),
            Box::new(MinMaxScaler::new(["c"])),
            Box::new(MaxAbsScaler::new(["d"])),
            Box::new(RobustScaler::new(["e_absent_until_later"]).with_quantile_range(0.1, 0.9)),
        ]
    };
    // The last stage names a column that does not exist: the fused fit reports it as the
    // stage's own fit would.
    let mut chain = Chain::new(stages());
    let fused = chain.fit(&ds).unwrap_err().to_string();
    let mut alone = RobustScaler::new(["e_absent_until_later"]);
    assert_eq!(fused, alone.fit(&ds).unwrap_err().to_string());

    let stages = || -> Vec<Box<dyn Preprocessor>> {
        vec![
            Box::new(StandardScaler::new(["a", "b"])),
            Box::new(MinMaxScaler::new(["c"])),
            Box::new(MaxAbsScaler::new(["d"])),
            // Reads a column an earlier stage of the run rewrote: a second run, fitted on the
            // standardised `a`.
            Box::new(RobustScaler::new(["a"]).with_quantile_range(0.1, 0.9)),
            // Not an aggregation fit: fitted alone, on the output so far.
            Box::new(OneHotEncoder::new(["cat"])),
            Box::new(MinMaxScaler::new(["b"])),
            Box::new(StandardScaler::new(["c"]).with_ddof(1)),
        ]
    };
    let mut chain = Chain::new(stages());
    let mut sequence = stages();
    let fused_passes = passes_of(&mut || chain.fit(&ds).unwrap());
    let sequence_passes = passes_of(&mut || {
        fit_in_sequence(&mut sequence, &ds);
    });
    // Runs: {Standard, MinMax, MaxAbs}, {Robust}, {OneHot}, {MinMax, Standard}.
    assert_eq!((fused_passes, sequence_passes), (4, 7));
    for (fused, alone) in chain.stages().iter().zip(&sequence) {
        assert_eq!(
            preprocessor_to_json(fused.as_ref()).unwrap(),
            preprocessor_to_json(alone.as_ref()).unwrap()
        );
    }
    let out = chain.transform(&ds).unwrap().to_polars().unwrap();
    let by_hand = sequence
        .iter()
        .try_fold(ds.clone(), |d, s| s.transform(&d))
        .unwrap()
        .to_polars()
        .unwrap();
    assert!(out.equals_missing(&by_hand), "{out}\n{by_hand}");
    // The statistics are the ones of the data each stage sees: MinMax of `b` after one-hot.
    let b = floats(&out, "b");
    let lo = b.iter().flatten().copied().fold(f64::INFINITY, f64::min);
    let hi = b
        .iter()
        .flatten()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    assert_eq!((lo, hi), (0.0, 1.0));
    // A stage fitted alone through the aggregation equals its own fit.
    let mut scaler = StandardScaler::new(["a", "b"]);
    let agg = scaler
        .fit_aggregation(&ds.schema().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(agg.columns, ["a", "b"]);
    let stats = ds
        .to_polars()
        .unwrap()
        .lazy()
        .select(agg.exprs)
        .collect()
        .unwrap();
    scaler.fit_from_aggregation(&stats).unwrap();
    let mut fitted = StandardScaler::new(["a", "b"]);
    fitted.fit(&ds).unwrap();
    assert_eq!(scaler, fitted);
    // A preprocessor without an aggregation fit says so instead of pretending.
    let mut encoder = OneHotEncoder::new(["cat"]);
    assert!(
        encoder
            .fit_aggregation(&ds.schema().unwrap())
            .unwrap()
            .is_none()
    );
    let err = encoder
        .fit_from_aggregation(&stats)
        .unwrap_err()
        .to_string();
    assert!(err.contains("call fit"), "{err}");
}

#[test]
fn categorizer_makes_sorted_categories() {
    let mut cat = air_data::Categorizer::new(["c"]);
    cat.fit(&Dataset::from_polars(frame())).unwrap();
    let out = cat
        .transform_batch(df!("c" => ["z", "x", "new"]).unwrap())
        .unwrap();
    let c = out.column("c").unwrap();
    assert!(matches!(c.dtype(), DataType::Enum(..)), "{:?}", c.dtype());
    assert_eq!(c.null_count(), 1, "unseen values become null");
    let values: Vec<Option<String>> = c
        .cast(&DataType::String)
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|v| v.map(str::to_owned))
        .collect();
    assert_eq!(values, [Some("z".to_owned()), Some("x".to_owned()), None]);
    let err = air_data::Categorizer::new(["a"])
        .fit(&Dataset::from_polars(frame()))
        .unwrap_err();
    assert!(
        err.to_string().contains("expected a string column"),
        "{err}"
    );
}

#[test]
fn concatenator_errors_name_the_column() {
    let ds = Dataset::from_polars(frame());
    let err = Concatenator::new()
        .transform(&ds)
        .unwrap()
        .to_polars()
        .unwrap_err();
    assert!(
        matches!(&err, DataError::NonNumericColumn { column, .. } if column == "c"),
        "{err:?}"
    );
    let err = Concatenator::new()
        .with_include(["a", "missing"])
        .transform_batch(frame())
        .unwrap_err();
    assert!(
        matches!(&err, DataError::ColumnNotFound { column, .. } if column == "missing"),
        "{err:?}"
    );
    // An excluded column that is absent (the label, when serving) is fine.
    let out = Concatenator::new()
        .with_exclude(["c", "label", "not_here"])
        .transform_batch(frame())
        .unwrap();
    assert_eq!(out.get_column_names(), ["c", "label", "concat_out"]);
    let out = Concatenator::new()
        .with_include(["b", "a"])
        .with_dtype(FloatType::F64)
        .transform_batch(frame())
        .unwrap();
    let AnyValue::Array(values, 2) = out.column("concat_out").unwrap().get(0).unwrap() else {
        panic!()
    };
    assert_eq!(
        values.f64().unwrap().iter().collect::<Vec<_>>(),
        [Some(3.0), Some(1.0)]
    );
}

/// Every built-in, fitted, through a checkpoint directory and back: same output.
#[test]
fn fitted_preprocessors_round_trip_through_checkpoints() {
    let ds = Dataset::from_polars(frame());
    register_batch_fn("double_b", |df: DataFrame| {
        df.lazy().with_column(col("b") * lit(2.0)).collect()
    });
    let built_ins: Vec<Box<dyn Preprocessor>> = vec![
        Box::new(StandardScaler::new(["a", "b"]).with_ddof(1)),
        Box::new(MinMaxScaler::new(["a"])),
        Box::new(MaxAbsScaler::new(["a"])),
        Box::new(RobustScaler::new(["a"]).with_quantile_range(0.2, 0.8)),
        Box::new(Normalizer::new(["a", "b"], Norm::L1)),
        Box::new(PowerTransformer::new(["a"], 0.5, PowerMethod::YeoJohnson).unwrap()),
        Box::new(SimpleImputer::new(["a"], ImputeStrategy::Mean)),
        Box::new(SimpleImputer::new(["c"], ImputeStrategy::MostFrequent)),
        Box::new(SimpleImputer::new(
            ["a"],
            ImputeStrategy::Constant(serde_json::json!(-1.0)),
        )),
        Box::new(OrdinalEncoder::new(["c"])),
        Box::new(OneHotEncoder::new(["c"]).with_max_categories("c", 2)),
        Box::new(LabelEncoder::new("label")),
        Box::new(Concatenator::new().with_include(["a", "b"])),
        Box::new(air_data::Categorizer::new(["c"])),
        Box::new(air_data::UniformKBinsDiscretizer::new(["a"], 3).unwrap()),
        Box::new(
            air_data::CustomKBinsDiscretizer::new(["a", "b"], &[0.0, 2.5, 10.0])
                .unwrap()
                .with_right(false),
        ),
        Box::new(BatchMapper::by_name("double_b", 2).unwrap()),
        Box::new(Chain::new(vec![
            Box::new(SimpleImputer::new(["a"], ImputeStrategy::Mean)),
            Box::new(BatchMapper::by_name("double_b", None).unwrap()),
            Box::new(StandardScaler::new(["a", "b"])),
        ])),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (i, mut p) in built_ins.into_iter().enumerate() {
        p.fit(&ds).unwrap();
        let before = p.transform(&ds).unwrap().to_polars().unwrap();
        let mut ckpt = Checkpoint::new();
        save_preprocessor(p.as_ref(), &mut ckpt).unwrap();
        let path = dir.path().join(format!("ckpt-{i}"));
        ckpt.to_directory(&path).unwrap();
        let loaded = load_preprocessor(&Checkpoint::from_directory(&path).unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(loaded.type_name(), p.type_name());
        assert_eq!(loaded.fit_status(), p.fit_status());
        let after = loaded.transform(&ds).unwrap().to_polars().unwrap();
        assert!(
            after.equals_missing(&before),
            "{}: {before} vs {after}",
            p.type_name()
        );
        assert!(
            loaded
                .transform_batch(frame())
                .unwrap()
                .equals_missing(&p.transform_batch(frame()).unwrap())
        );
    }
    assert!(load_preprocessor(&Checkpoint::new()).unwrap().is_none());
}

#[test]
fn loading_unknown_names_and_newer_formats_fails_clearly() {
    let mut scaler = StandardScaler::new(["a"]);
    scaler.fit(&Dataset::from_polars(frame())).unwrap();
    let mut json = preprocessor_to_json(&scaler).unwrap();
    json["type"] = "NoSuchScaler".into();
    let err = preprocessor_from_json(json.clone()).unwrap_err();
    assert!(
        matches!(&err, DataError::NotRegistered { name, known, .. } if name == "NoSuchScaler" && known.contains(&"StandardScaler".to_owned())),
        "{err:?}"
    );
    assert!(err.to_string().contains("register_preprocessor"), "{err}");
    json["type"] = "StandardScaler".into();
    json["version"] = 99.into();
    let err = preprocessor_from_json(json).unwrap_err();
    assert!(err.to_string().contains("newer"), "{err}");
    let mapper = BatchMapper::new("only_here", Ok::<DataFrame, PolarsError>, None);
    let mut json = preprocessor_to_json(&mapper).unwrap();
    json["config"]["name"] = "defined_elsewhere".into();
    let err = preprocessor_from_json(json).unwrap_err();
    assert!(
        matches!(
            &err,
            DataError::NotRegistered {
                kind: "batch function",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("register_batch_fn"), "{err}");
    let mut ckpt = Checkpoint::new();
    ckpt.put_bytes(PREPROCESSOR_ENTRY, b"{not json".to_vec())
        .unwrap();
    assert!(load_preprocessor(&ckpt).is_err());
}

/// A user-defined preprocessor, registered by name, round-trips like the built-ins.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct AddMax {
    column: String,
    max: Option<f64>,
}

impl NamedPreprocessor for AddMax {
    const NAME: &'static str = "AddMax";
}

impl Preprocessor for AddMax {
    fn type_name(&self) -> &str {
        Self::NAME
    }
    fn fit_status(&self) -> FitStatus {
        if self.max.is_some() {
            FitStatus::Fitted
        } else {
            FitStatus::NotFitted
        }
    }
    fn fit(&mut self, ds: &Dataset) -> air_data::Result<()> {
        let df = ds.select_columns(&[&self.column]).to_polars()?;
        self.max = df.column(&self.column).unwrap().f64().unwrap().max();
        Ok(())
    }
    fn expressions(&self, lf: LazyFrame) -> air_data::Result<LazyFrame> {
        let c = self.column.as_str();
        Ok(lf.with_column((col(c) + lit(self.max.unwrap())).alias(c)))
    }
    fn to_config(&self) -> air_data::Result<serde_json::Value> {
        Ok(serde_json::to_value(self).unwrap())
    }
}

#[test]
fn custom_preprocessors_register_by_name() {
    register_preprocessor::<AddMax>();
    let mut p = AddMax {
        column: "a".into(),
        max: None,
    };
    p.fit(&Dataset::from_polars(frame())).unwrap();
    let json = preprocessor_to_json(&p).unwrap();
    let loaded = preprocessor_from_json(json).unwrap();
    let out = loaded.transform_batch(df!("a" => [1.0]).unwrap()).unwrap();
    assert_eq!(floats(&out, "a"), [Some(6.0)]);
}

#[test]
fn fitted_once_shared_across_threads_and_streamed_after_map_batches() {
    let ds = Dataset::range(10_000).with_column("x", col("id").cast(DataType::Float64));
    let mut scaler = MinMaxScaler::new(["x"]);
    scaler.fit(&ds).unwrap();
    let shared: Arc<dyn Preprocessor> = Arc::new(scaler);
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let p = shared.clone();
            let shard = ds.split(4, air_data::ShardSizes::Equal).unwrap()[i].clone();
            std::thread::spawn(move || {
                assert_eq!(p.fit_status(), FitStatus::Fitted);
                let out = p.transform(&shard).unwrap().to_polars().unwrap();
                floats(&out, "x")[0].unwrap()
            })
        })
        .collect();
    let firsts: Vec<f64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    for (got, want) in firsts
        .iter()
        .zip([0.0, 2500.0 / 9999.0, 5000.0 / 9999.0, 7500.0 / 9999.0])
    {
        assert!((got - want).abs() < 1e-15, "{firsts:?}");
    }
    // Row-local transforms stream batch by batch after a map_batches.
    let mapped = ds.map_batches(Ok::<DataFrame, PolarsError>, 1000).unwrap();
    let streamed: usize = shared
        .transform(&mapped)
        .unwrap()
        .iter_batches(512)
        .unwrap()
        .map(|b| b.unwrap().height())
        .sum();
    assert_eq!(streamed, 10_000);
}

#[test]
fn concatenator_streams_and_matches_the_matrix_helper() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.parquet");
    let path = path.to_str().unwrap();
    air_data::synthetic(5000, 3)
        .unwrap()
        .write_parquet(path)
        .unwrap();
    let ds = Dataset::read_parquet(path).unwrap();
    let cols: Vec<String> = (0..20).map(|j| format!("f{j}")).collect();
    let concat = Concatenator::new()
        .with_include(&cols)
        .transform(&ds)
        .unwrap();
    assert_eq!(concat.columns().unwrap(), ["cat_a", "cat_b", "concat_out"]);
    let matrix = ds.to_f32_matrix(&cols).unwrap();
    let mut row = 0;
    for batch in concat.iter_batches(777).unwrap() {
        let batch = batch.unwrap();
        let arrays = batch.column("concat_out").unwrap().array().unwrap().clone();
        for i in 0..batch.height() {
            let values = arrays.get_as_series(i).unwrap();
            let values: Vec<f32> = values.f32().unwrap().into_no_null_iter().collect();
            assert_eq!(values, matrix.row(row));
            row += 1;
        }
        // The array column reads back as the same matrix, also from a slice of the batch.
        let part = batch.slice(3, 5);
        let m = air_data::to_f32_matrix(&part, &["concat_out"]).unwrap();
        assert_eq!((m.rows, m.cols), (part.height(), 20));
        let first = row - batch.height() + 3;
        for r in 0..m.rows {
            assert_eq!(m.row(r), matrix.row(first + r));
        }
    }
    assert_eq!(row, 5000);
}

fn text_frame() -> DataFrame {
    let tags = Series::new(
        "tags".into(),
        [
            Series::new("".into(), ["rock", "pop"]),
            Series::new("".into(), ["jazz"]),
            Series::new("".into(), Vec::<&str>::new()),
            Series::new("".into(), ["rock", "rock"]),
        ],
    );
    let mut df = df!(
        "text" => ["The cat sat", "a dog", "the cat the hat", ""],
        "n" => [1.0, 2.0, 3.0, 4.0],
        "city" => ["oslo", "lima", "oslo", "pune"],
    )
    .unwrap();
    df.with_column(tags.into_column()).unwrap();
    df
}

#[test]
fn text_preprocessors_round_trip_through_checkpoints() {
    use air_data::{
        CountVectorizer, FeatureHasher, HashingVectorizer, MultiHotEncoder, Tokenization,
        Tokenizer, VectorOutput, register_tokenizer,
    };
    register_tokenizer("chars", |s: &str| {
        s.chars()
            .filter(|c| !c.is_whitespace())
            .map(String::from)
            .collect()
    });
    let ds = Dataset::from_polars(text_frame());
    let all: Vec<Box<dyn Preprocessor>> = vec![
        Box::new(Tokenizer::new(["text"])),
        Box::new(
            Tokenizer::new(["text", "city"])
                .with_tokenization(Tokenization::Custom("chars".into()))
                .with_lowercase(true),
        ),
        Box::new(CountVectorizer::new(["text"]).with_max_features(3)),
        Box::new(
            CountVectorizer::new(["text", "city"])
                .with_tokenization(Tokenization::sklearn())
                .with_output(VectorOutput::Array),
        ),
        Box::new(
            HashingVectorizer::new(["text"], 5)
                .unwrap()
                .with_alternate_sign(true),
        ),
        Box::new(
            FeatureHasher::new(["n", "city"], 4)
                .unwrap()
                .with_output_column("h"),
        ),
        Box::new(MultiHotEncoder::new(["tags"]).with_max_categories("tags", 2)),
        Box::new(Chain::new(vec![
            Box::new(CountVectorizer::new(["text"]).with_output(VectorOutput::Array)),
            Box::new(MultiHotEncoder::new(["tags"]).with_output(VectorOutput::Columns)),
        ])),
    ];
    for mut p in all {
        p.fit(&ds).unwrap();
        let before = p.transform(&ds).unwrap().to_polars().unwrap();
        let mut ckpt = Checkpoint::new();
        save_preprocessor(p.as_ref(), &mut ckpt).unwrap();
        let loaded = load_preprocessor(&ckpt).unwrap().unwrap();
        let after = loaded.transform(&ds).unwrap().to_polars().unwrap();
        assert!(
            after.equals_missing(&before),
            "{}: {before} vs {after}",
            p.type_name()
        );
        let batch = loaded.transform_batch(text_frame()).unwrap();
        assert!(batch.equals_missing(&before), "{}: batch", p.type_name());
    }
}

#[test]
fn text_preprocessors_semantics_and_errors() {
    use air_data::{
        CountVectorizer, FeatureHasher, HashingVectorizer, MultiHotEncoder, Tokenization, Tokenizer,
    };
    let ds = Dataset::from_polars(text_frame());
    // Tokenizer keeps nulls; Ray's default splits on single spaces.
    let tok = Tokenizer::new(["text"]);
    let out = tok
        .transform_batch(df!("text" => [Some("a  b"), None]).unwrap())
        .unwrap();
    let lists = out.column("text").unwrap().list().unwrap();
    let first: Vec<String> = lists
        .get_as_series(0)
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .flatten()
        .map(str::to_owned)
        .collect();
    assert_eq!(first, ["a", "", "b"]);
    assert!(lists.get_as_series(1).is_none());

    // Vocabulary: sorted; max_features keeps the most frequent; unseen tokens count nowhere.
    let mut cv = CountVectorizer::new(["text"])
        .with_tokenization(Tokenization::Whitespace)
        .with_lowercase(true)
        .with_max_features(2);
    cv.fit(&ds).unwrap();
    assert_eq!(cv.vocabulary("text").unwrap(), ["cat", "the"]);
    let out = cv
        .transform_batch(df!("text" => ["THE zebra the"]).unwrap())
        .unwrap();
    assert_eq!(floats(&out, "text_the"), [Some(2.0)]);
    assert_eq!(floats(&out, "text_cat"), [Some(0.0)]);

    // Multi-hot counts repeats; an empty list is all zeros; unseen elements are ignored.
    let mut mh = MultiHotEncoder::new(["tags"]).with_output(air_data::VectorOutput::Columns);
    mh.fit(&ds).unwrap();
    let out = mh.transform(&ds).unwrap().to_polars().unwrap();
    assert_eq!(
        floats(&out, "tags_rock"),
        [Some(1.0), Some(0.0), Some(0.0), Some(2.0)]
    );
    assert_eq!(
        floats(&out, "tags_jazz"),
        [Some(0.0), Some(1.0), Some(0.0), Some(0.0)]
    );
    // Integer lists work too.
    let ints = Series::new(
        "ids".into(),
        [
            Series::new("".into(), [3i32, 1]),
            Series::new("".into(), [3i32]),
        ],
    );
    let mut mh = MultiHotEncoder::new(["ids"]);
    mh.fit(&Dataset::from_polars(
        DataFrame::new_infer_height(vec![ints.into_column()]).unwrap(),
    ))
    .unwrap();
    assert_eq!(
        mh.categories("ids").unwrap(),
        [serde_json::json!(1), serde_json::json!(3)]
    );

    // Nulls are refused with the imputation hint; wrong types name the column and the type.
    let nulls = Dataset::from_polars(df!("text" => [Some("a"), None]).unwrap());
    for mut p in [
        Box::new(CountVectorizer::new(["text"])) as Box<dyn Preprocessor>,
        Box::new(HashingVectorizer::new(["text"], 4).unwrap()),
        Box::new(FeatureHasher::new(["text"], 4).unwrap()),
    ] {
        let err = p
            .fit(&nulls)
            .and_then(|()| p.transform(&nulls)?.to_polars().map(|_| ()))
            .unwrap_err();
        assert!(
            err.to_string().contains("impute"),
            "{}: {err}",
            p.type_name()
        );
    }
    let err = CountVectorizer::new(["n"]).fit(&ds).unwrap_err();
    assert!(
        err.to_string().contains("\"n\"") && err.to_string().contains("string"),
        "{err}"
    );
    let err = MultiHotEncoder::new(["city"]).fit(&ds).unwrap_err();
    assert!(err.to_string().contains("list"), "{err}");
    let err = CountVectorizer::new(["missing"]).fit(&ds).unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
    let err = Tokenizer::new(["text"])
        .with_tokenization(Tokenization::Custom("nobody_registered_this".into()))
        .transform(&ds)
        .and_then(|t| t.to_polars())
        .unwrap_err();
    assert!(err.to_string().contains("register_tokenizer"), "{err}");
    let err = Tokenizer::new(["text"])
        .with_tokenization(Tokenization::Pattern("([a-z]".into()))
        .transform_batch(text_frame())
        .unwrap_err();
    assert!(err.to_string().contains("regular expression"), "{err}");
    assert_eq!(
        CountVectorizer::new(["text"])
            .transform(&ds)
            .unwrap_err()
            .to_string(),
        DataError::NotFitted {
            preprocessor: "CountVectorizer".into()
        }
        .to_string()
    );
}

#[test]
fn vectorizers_stream_batch_by_batch() {
    use air_data::HashingVectorizer;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("docs.parquet");
    let words = ["alpha", "beta", "gamma", "delta"];
    let docs: Vec<String> = (0..20_000)
        .map(|i| format!("{} {}", words[i % 4], words[(i / 4) % 4]))
        .collect();
    Dataset::from_polars(df!("doc" => docs).unwrap())
        .write_parquet(path.to_str().unwrap())
        .unwrap();
    let ds = Dataset::read_parquet(path.to_str().unwrap()).unwrap();
    let hv = HashingVectorizer::new(["doc"], 8).unwrap();
    let whole = hv.transform(&ds).unwrap().to_polars().unwrap();
    let mut rows = 0;
    let mut parts = Vec::new();
    for batch in hv.transform(&ds).unwrap().iter_batches(3000).unwrap() {
        let batch = batch.unwrap();
        rows += batch.height();
        parts.push(batch);
    }
    assert_eq!(rows, 20_000);
    let mut streamed = parts.remove(0);
    for p in parts {
        streamed.vstack_mut(&p).unwrap();
    }
    assert!(streamed.equals(&whole));
    // Every document has two tokens.
    let total: f64 = (0..8)
        .map(|i| {
            floats(&whole, &format!("hash_doc_{i}"))
                .iter()
                .flatten()
                .sum::<f64>()
        })
        .sum();
    assert_eq!(total, 40_000.0);
}

#[test]
fn expressions_before_fit_are_not_fitted_errors_never_panics() {
    let unfitted: Vec<Box<dyn Preprocessor>> = vec![
        Box::new(StandardScaler::new(["x"])),
        Box::new(MinMaxScaler::new(["x"])),
        Box::new(MaxAbsScaler::new(["x"])),
        Box::new(RobustScaler::new(["x"])),
        Box::new(OrdinalEncoder::new(["x"])),
        Box::new(OneHotEncoder::new(["x"])),
        Box::new(LabelEncoder::new("x")),
        Box::new(air_data::Categorizer::new(["x"])),
        Box::new(SimpleImputer::new(["x"], ImputeStrategy::Mean)),
        Box::new(air_data::UniformKBinsDiscretizer::new(["x"], 4).unwrap()),
        Box::new(air_data::CountVectorizer::new(["x"])),
        Box::new(air_data::MultiHotEncoder::new(["x"])),
    ];
    for p in unfitted {
        let lf = df!("x" => [1.0, 2.0]).unwrap().lazy();
        let name = p.type_name().to_owned();
        match p.expressions(lf) {
            Err(DataError::NotFitted { preprocessor }) => assert_eq!(preprocessor, name),
            Err(other) => panic!("{name}: expected NotFitted, got {other}"),
            Ok(_) => panic!("{name}: expressions before fit succeeded"),
        }
    }
}

/// Writes `df` as parquet at `path` in row groups of `rows` rows, with or without statistics.
fn write_parquet(df: &mut DataFrame, path: &std::path::Path, rows: usize, statistics: bool) {
    let file = std::fs::File::create(path).unwrap();
    ParquetWriter::new(file)
        .with_row_group_size(Some(rows))
        .with_statistics(if statistics {
            StatisticsOptions::full()
        } else {
            StatisticsOptions::empty()
        })
        .finish(df)
        .unwrap();
}

/// MinMaxScaler and MaxAbsScaler fitted on local parquet files take the minima and maxima from
/// the footers (no data page read): the same fit as over the data, with nulls, a row group of
/// nulls only, negative values and every signed integer and float type, over several files and
/// row groups; a file without statistics, a column with a NaN (no bounds written), an unsigned
/// column or a transformed dataset is aggregated over the data instead, to the same result.
#[test]
fn min_max_fits_from_parquet_footers_equal_fits_over_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let part = |i: i64| {
        let n = 23;
        let f64s: Vec<Option<f64>> = (0..n)
            .map(|r| (r != 3).then_some(((r + i * 100) as f64).mul_add(-0.37, 4.0)))
            .collect();
        // A NaN: polars writes no bounds for its chunk, so this column is read.
        let nan: Vec<f64> = (0..n)
            .map(|r| if r == 5 { f64::NAN } else { r as f64 - 2.5 })
            .collect();
        // The first row group (8 rows) of this column holds nulls only.
        let sparse: Vec<Option<f64>> = (0..n)
            .map(|r| (r >= 8).then_some((r * r + i) as f64))
            .collect();
        df!(
            "f64" => f64s,
            "nan" => nan,
            "sparse" => sparse,
            "f32" => (0..n).map(|r| (r - 11 + i) as f32 * 1.5).collect::<Vec<f32>>(),
            "i8" => (0..n).map(|r| (r - 9) as i8 * (i as i8 + 1)).collect::<Vec<i8>>(),
            "i16" => (0..n).map(|r| (r as i16 - 20) * 300).collect::<Vec<i16>>(),
            "i32" => (0..n).map(|r| r as i32 * 1000 - 7 * i as i32).collect::<Vec<i32>>(),
            "i64" => (0..n).map(|r| (r - 1) * 1_000_000_007 + i).collect::<Vec<i64>>(),
            "u32" => (0..n).map(|r| u32::MAX - r as u32).collect::<Vec<u32>>(),
        )
        .unwrap()
    };
    let files = dir.path().join("files");
    std::fs::create_dir(&files).unwrap();
    let mut whole: Option<DataFrame> = None;
    for i in 0..3 {
        let mut df = part(i);
        write_parquet(&mut df, &files.join(format!("part-{i}.parquet")), 8, true);
        whole = Some(match whole {
            Some(w) => w.vstack(&df).unwrap(),
            None => df,
        });
    }
    let whole = whole.unwrap();
    let in_memory = Dataset::from_polars(whole.clone());
    let on_disk = Dataset::read_parquet(files.to_str().unwrap()).unwrap();
    // A copy whose data pages are all garbage but whose footer is intact: only a fit that
    // reads no data page can succeed on it.
    let broken = dir.path().join("broken.parquet");
    write_parquet(&mut part(0), &broken, 8, true);
    let mut bytes = std::fs::read(&broken).unwrap();
    let len = bytes.len();
    let footer = u32::from_le_bytes(bytes[len - 8..len - 4].try_into().unwrap()) as usize;
    bytes[4..len - 8 - footer].fill(0xAB);
    std::fs::write(&broken, bytes).unwrap();
    let broken = Dataset::read_parquet(broken.to_str().unwrap()).unwrap();
    let without_stats = dir.path().join("plain.parquet");
    write_parquet(&mut whole.clone(), &without_stats, 8, false);
    let without_stats = Dataset::read_parquet(without_stats.to_str().unwrap()).unwrap();

    let signed = ["f64", "sparse", "f32", "i8", "i16", "i32", "i64"];
    let fitted = |p: &mut dyn Preprocessor, ds: &Dataset| {
        p.fit(ds).unwrap();
        preprocessor_to_json(p).unwrap()
    };
    fn min_max(c: &[&str]) -> Box<dyn Preprocessor> {
        Box::new(MinMaxScaler::new(c))
    }
    fn max_abs(c: &[&str]) -> Box<dyn Preprocessor> {
        Box::new(MaxAbsScaler::new(c))
    }
    type Make = fn(&[&str]) -> Box<dyn Preprocessor>;
    for (name, make) in [("MinMaxScaler", min_max as Make), ("MaxAbsScaler", max_abs)] {
        let expected = fitted(make(&signed).as_mut(), &in_memory);
        assert_eq!(fitted(make(&signed).as_mut(), &on_disk), expected, "{name}");
        // The statistics come from the footers: the broken file's data is never read.
        let from_footer = fitted(make(&signed).as_mut(), &broken);
        let first = Dataset::from_polars(part(0));
        assert_eq!(
            from_footer,
            fitted(make(&signed).as_mut(), &first),
            "{name}"
        );
        // Aggregated over the data, to the same fit.
        let filtered = on_disk.filter(lit(true));
        assert_eq!(
            fitted(make(&signed).as_mut(), &filtered),
            expected,
            "{name}"
        );
        assert_eq!(
            fitted(make(&signed).as_mut(), &without_stats),
            expected,
            "{name}"
        );
        let all = [&signed[..], &["nan", "u32"]].concat();
        assert_eq!(
            fitted(make(&all).as_mut(), &on_disk),
            fitted(make(&all).as_mut(), &in_memory),
            "{name}"
        );
        // A column with a NaN or an unsigned one is read, so the broken file's error shows.
        for c in ["nan", "u32"] {
            assert!(make(&[c]).fit(&broken).is_err(), "{name} {c}");
        }
    }
}

/// A file pyarrow wrote (`fixtures/parquet_stats/make_fixture.py`): its bounds leave NaN out,
/// as polars' `min`/`max` do, so the footer fit equals the fit over the data, and no data page
/// is read for it; a row group of NaN only has no bounds, so that column is read.
#[test]
fn min_max_fits_from_pyarrow_footers_leave_nan_out_as_the_data_fit_does() {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/parquet_stats/pyarrow_nan.parquet"
    );
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.parquet");
    let mut bytes = std::fs::read(fixture).unwrap();
    let len = bytes.len();
    let footer = u32::from_le_bytes(bytes[len - 8..len - 4].try_into().unwrap()) as usize;
    bytes[4..len - 8 - footer].fill(0xAB);
    std::fs::write(&broken, bytes).unwrap();
    let on_disk = Dataset::read_parquet(fixture).unwrap();
    let in_memory = Dataset::from_polars(on_disk.to_polars().unwrap());
    let broken = Dataset::read_parquet(broken.to_str().unwrap()).unwrap();
    let exact = ["with_nan", "nulls_first", "i32", "i64"];
    let json = |mut p: MinMaxScaler, ds: &Dataset| {
        p.fit(ds).unwrap();
        preprocessor_to_json(&p).unwrap()
    };
    let expected = json(MinMaxScaler::new(exact), &in_memory);
    assert!(expected.to_string().contains("-9.5"), "{expected}");
    assert_eq!(json(MinMaxScaler::new(exact), &on_disk), expected);
    assert_eq!(json(MinMaxScaler::new(exact), &broken), expected);
    let all = [&exact[..], &["nan_group"]].concat();
    assert_eq!(
        json(MinMaxScaler::new(&all), &on_disk),
        json(MinMaxScaler::new(&all), &in_memory)
    );
    assert!(MinMaxScaler::new(["nan_group"]).fit(&broken).is_err());
}
