//! The AIR quick start, as far as the workspace has come.
//!
//! The full flow (preprocess the breast cancer data, train a boosted-tree model, tune it,
//! predict in bulk, serve it) arrives issue by issue. Today this runs what exists: it reads the
//! data set with the workspace's polars, packages the per-class feature means as a checkpoint
//! with metadata, writes it atomically to a directory and to object storage (`memory://`, or
//! any `s3://` URI given as the first argument), reads it back and checks it byte for byte.
//!
//! Run: `cargo run --example quickstart [-- s3://bucket/prefix]`

use std::time::Instant;

use air::{
    checkpoint::Checkpoint,
    data::polars::prelude::{CsvReadOptions, IntoLazy, SerReader, SortMultipleOptions, col},
};
use anyhow::{Context, Result};

const FEATURES: [&str; 3] = ["mean radius", "mean texture", "mean area"];

fn main() -> Result<()> {
    let data_path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/data/breast_cancer.csv"
    );
    let start = Instant::now();
    let df = CsvReadOptions::default()
        .with_has_header(true)
        .try_into_reader_with_file_path(Some(data_path.into()))?
        .finish()
        .with_context(|| format!("reading {data_path}"))?;
    println!(
        "read {} rows x {} columns from {data_path} in {:.1?}",
        df.height(),
        df.width(),
        start.elapsed()
    );

    let means = df
        .clone()
        .lazy()
        .group_by([col("target")])
        .agg(FEATURES.map(|f| col(f).mean()))
        .sort(["target"], SortMultipleOptions::default())
        .collect()?;
    println!("per-class feature means:\n{means}");

    // A checkpoint: the statistics as JSON, the raw CSV as a data file, metadata on the side.
    let mut ckpt = Checkpoint::new();
    let mut class_means = serde_json::Map::new();
    for feature in FEATURES {
        let values: Vec<Option<f64>> = means.column(feature)?.f64()?.iter().collect();
        class_means.insert(feature.to_owned(), serde_json::json!(values));
    }
    ckpt.put_json("class_means.json", &class_means)?;
    ckpt.put_bytes("data/breast_cancer.csv", std::fs::read(data_path)?)?;
    ckpt.set_metadata_value("rows", &df.height())?;
    ckpt.set_metadata_value("source", "examples/data/breast_cancer.csv")?;

    let dir = tempfile::tempdir()?;
    let local = dir.path().join("checkpoint_000000");
    ckpt.to_directory(&local)?;
    let uri = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "memory://quickstart/run/checkpoint_000000".to_owned());
    Checkpoint::from_directory(&local)?
        .to_uri(&uri)
        .with_context(|| format!("writing {uri}"))?;
    let back = Checkpoint::from_uri(&uri)?;
    back.verify()?;
    anyhow::ensure!(
        back.to_dict()? == ckpt.to_dict()?,
        "round trip changed the checkpoint"
    );
    println!(
        "checkpoint: {} entries, {} bytes, metadata {} -> {} -> {uri}: identical",
        back.len(),
        back.size_bytes(),
        serde_json::Value::Object(back.metadata().clone()),
        local.display()
    );
    Ok(())
}
