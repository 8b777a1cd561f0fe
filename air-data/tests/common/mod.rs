//! Helpers shared by air-data's integration tests (each test file includes this module).

#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    missing_debug_implementations
)]

use std::path::{Path, PathBuf};

use air_data::polars::prelude::*;

// The moto S3 server harness of air-checkpoint's tests, shared rather than copied.
#[path = "../../../air-checkpoint/tests/common/mod.rs"]
pub mod s3_harness;

/// The breast cancer CSV of the AIR quick start (569 rows, 30 features + `target`).
pub fn breast_cancer() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/data/breast_cancer.csv")
}

pub fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A small frame with every kind of column the tests need.
pub fn sample(rows: usize) -> DataFrame {
    let x: Vec<f64> = (0..rows).map(|i| i as f64 * 0.5).collect();
    let id: Vec<i64> = (0..rows as i64).collect();
    let cat: Vec<&str> = (0..rows).map(|i| ["a", "b", "c"][i % 3]).collect();
    df!("id" => id, "x" => x, "cat" => cat).unwrap()
}

pub fn ids(df: &DataFrame) -> Vec<i64> {
    df.column("id")
        .unwrap()
        .cast(&DataType::Int64)
        .unwrap()
        .i64()
        .unwrap()
        .into_no_null_iter()
        .collect()
}

/// A column as optional f64s (any numeric type; nulls as None).
pub fn floats(df: &DataFrame, column: &str) -> Vec<Option<f64>> {
    df.column(column)
        .unwrap_or_else(|_| panic!("no column {column} in {:?}", df.get_column_names()))
        .cast(&DataType::Float64)
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .collect()
}
