//! Property tests of the request adapter: whatever the body — random bytes, random JSON, or
//! the three accepted forms with random keys, lengths, shapes, dtypes and values — parsing
//! ends with a frame or a 4xx error that names the problem, never a panic or an abort.

use air_serve::{Adapter, JsonAdapter, RequestError};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Numbers at the edges: huge, tiny, negative zero, integers past i64.
fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |x| x.is_finite())
            .prop_map(Value::from),
        Just(json!(0)),
        Just(json!(-0.0)),
        Just(json!(9_223_372_036_854_775_807u64)),
        Just(json!(18_446_744_073_709_551_615u64)),
    ]
}

/// Any JSON value, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        number(),
        "[a-z\\u{e9}\\u{1F600}\"\\\\]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{0,6}", inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Cell values a model column might receive, right or wrong.
fn cell() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => number(),
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::from),
        1 => "[a-z]{0,5}".prop_map(Value::from),
        1 => prop::collection::vec(number(), 0..4).prop_map(Value::from),
        1 => Just(json!({"nested": 1})),
    ]
}

/// Records with keys drawn from a small set (some missing per record) or many distinct keys.
fn records() -> impl Strategy<Value = Value> {
    prop::collection::vec(
        prop::collection::btree_map("(a|b|c|k[0-9]{1,3})", cell(), 0..6),
        0..12,
    )
    .prop_map(|rows| {
        Value::Array(
            rows.into_iter()
                .map(|r| Value::Object(r.into_iter().collect()))
                .collect(),
        )
    })
}

/// Columns of possibly different lengths.
fn columns() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(
        "[a-d]",
        prop_oneof![
            8 => prop::collection::vec(cell(), 0..6).prop_map(Value::from),
            1 => cell(),
        ],
        0..5,
    )
    .prop_map(|m| Value::Object(m.into_iter().collect()))
}

/// Ray's array form with shapes that may disagree with the data or overflow.
fn arrays() -> impl Strategy<Value = Value> {
    let dim = prop_oneof![
        4 => 0u64..5,
        1 => Just(u64::MAX),
        1 => Just(1u64 << 63),
        1 => Just((1u64 << 62) + 1),
        1 => any::<u64>(),
    ];
    let data = prop_oneof![
        prop::collection::vec(number(), 0..9).prop_map(Value::from),
        prop::collection::vec(prop::collection::vec(number(), 0..4), 0..4)
            .prop_map(|rows| json!(rows)),
        json_value(),
    ];
    let shape = prop_oneof![
        3 => prop::collection::vec(dim, 0..4).prop_map(|d| json!(d)),
        1 => Just(json!([-1, 2])),
        1 => Just(json!([1.5])),
        1 => Just(json!("2x2")),
        1 => Just(Value::Null),
    ];
    let dtype = prop_oneof![
        Just(Value::Null),
        Just(json!("float32")),
        Just(json!("float64")),
        Just(json!("int32")),
        Just(json!("int64")),
        Just(json!("complex128")),
        Just(json!(7)),
    ];
    let names = prop_oneof![
        Just(Value::Null),
        prop::collection::vec("[a-c]", 0..4).prop_map(|n| json!(n)),
        Just(json!("a")),
    ];
    (data, shape, dtype, names).prop_map(|(array, shape, dtype, columns)| {
        json!({"array": array, "shape": shape, "dtype": dtype, "columns": columns})
    })
}

/// Checks one body: a non-empty frame, or an error with a 4xx status and a kind.
fn check(body: &[u8]) -> Result<(), TestCaseError> {
    match JsonAdapter.to_frame(body) {
        Ok(df) => {
            prop_assert!(df.height() >= 1, "an empty frame passed: {:?}", df);
            prop_assert!(df.width() >= 1, "a frame without columns passed: {:?}", df);
        }
        Err(e) => check_error(&e)?,
    }
    Ok(())
}

fn check_error(e: &RequestError) -> Result<(), TestCaseError> {
    prop_assert!(
        matches!(e.status(), 400 | 413 | 422),
        "status {} for {}",
        e.status(),
        e
    );
    prop_assert!(!e.kind().is_empty());
    prop_assert!(!e.to_string().is_empty());
    // Messages quote what was sent in short: never the whole body back.
    prop_assert!(e.to_string().len() < 2048, "a long message: {}", e);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes(body in prop::collection::vec(any::<u8>(), 0..200)) {
        check(&body)?;
    }

    #[test]
    fn random_json(value in json_value()) {
        check(value.to_string().as_bytes())?;
    }

    #[test]
    fn record_bodies(value in records()) {
        check(value.to_string().as_bytes())?;
    }

    #[test]
    fn column_bodies(value in columns()) {
        check(value.to_string().as_bytes())?;
    }

    #[test]
    fn array_bodies(value in arrays()) {
        check(value.to_string().as_bytes())?;
    }

    /// Valid bodies cut anywhere are malformed JSON, answered 400.
    #[test]
    fn truncated_bodies(value in records(), cut in any::<prop::sample::Index>()) {
        let text = value.to_string();
        let cut = cut.index(text.len());
        match JsonAdapter.to_frame(&text.as_bytes()[..cut]) {
            Ok(df) => prop_assert!(df.height() >= 1),
            Err(e) => check_error(&e)?,
        }
    }
}

#[test]
fn shapes_past_usize_are_refused_by_name() {
    for body in [
        json!({"array": [1, 2], "shape": [9_223_372_036_854_775_809u64, 2]}),
        // 2^63 + 1 rows of 2 wrap to 2 values: the old check passed, then allocated 2^64 bytes.
        json!({"array": [1, 2], "shape": [9_223_372_036_854_775_809u64, 2u64]}),
        json!({"array": [1, 2, 3, 4], "shape": [4_611_686_018_427_387_904u64, 4]}),
        json!({"array": [1, 2], "shape": [u64::MAX, u64::MAX, 2]}),
    ] {
        let err = JsonAdapter
            .to_frame(body.to_string().as_bytes())
            .unwrap_err();
        assert_eq!(err.status(), 422, "{err}");
        assert!(err.to_string().contains("\"shape\""), "{err}");
    }
    // Zero values: empty, however large the other sizes.
    let err = JsonAdapter
        .to_frame(br#"{"array": [], "shape": [0, 9223372036854775807, 4]}"#)
        .unwrap_err();
    assert_eq!(err, RequestError::Empty);
}

#[test]
fn many_keys_and_sparse_records_are_linear_and_bounded() {
    // One record with 40,000 distinct keys: one column each, parsed in one pass.
    let wide: serde_json::Map<String, Value> =
        (0..40_000).map(|i| (format!("k{i}"), json!(i))).collect();
    let df = JsonAdapter
        .to_frame(json!([wide]).to_string().as_bytes())
        .unwrap();
    assert_eq!(df.shape(), (1, 40_000));
    // ... followed by 100,000 empty records: four billion cells from 40,000 values sent.
    let mut body = json!([wide]).to_string();
    body.pop();
    body.push_str(&",{}".repeat(100_000));
    body.push(']');
    let err = JsonAdapter.to_frame(body.as_bytes()).unwrap_err();
    assert_eq!(err.status(), 422);
    assert!(err.to_string().contains("too sparse"), "{err}");
    // The same number of keys as columns.
    let columns: serde_json::Map<String, Value> =
        (0..40_000).map(|i| (format!("k{i}"), json!([i]))).collect();
    let df = JsonAdapter
        .to_frame(Value::Object(columns).to_string().as_bytes())
        .unwrap();
    assert_eq!(df.shape(), (1, 40_000));
}
