//! The AIR quick start, as far as the workspace has come.
//!
//! The full flow (preprocess the breast cancer data, train a boosted-tree model, tune it,
//! predict in bulk, serve it) arrives issue by issue. Today this runs what exists: it reads the
//! data set as a `Dataset`, splits it into train and validation sets as Ray AIR's quick start
//! does, streams the validation set in batches, packages the per-class feature means of the
//! training set as a checkpoint
//! with metadata, writes it atomically to a directory and to object storage (`memory://`, or
//! any `s3://` URI given as the first argument), reads it back and checks it byte for byte.
//!
//! Run: `cargo run --example quickstart [-- s3://bucket/prefix]`

use std::time::Instant;

use air::{
    checkpoint::Checkpoint,
    data::{Agg, Dataset},
};
use anyhow::{Context, Result};

const FEATURES: [&str; 3] = ["mean radius", "mean texture", "mean area"];

fn main() -> Result<()> {
    let data_path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/data/breast_cancer.csv"
    );
    let start = Instant::now();
    let dataset = Dataset::read_csv(data_path)?;
    let rows = dataset.count()?;
    println!(
        "read {rows} rows x {} columns from {data_path} in {:.1?}",
        dataset.schema()?.len(),
        start.elapsed()
    );
    // Ray AIR's quick start: 30% held out for validation, shuffled with a fixed seed.
    let (train, valid) = dataset.train_test_split(0.3, true, Some(42))?;
    let mut valid_rows = 0;
    for batch in valid.iter_batches(64)? {
        valid_rows += batch?.height();
    }
    println!(
        "train: {} rows, validation: {valid_rows} rows (streamed in batches of 64)",
        train.count()?
    );

    let means = train
        .groupby(&["target"])
        .aggregate(FEATURES.map(Agg::mean))
        .to_polars()?;
    println!("per-class feature means on the training split:\n{means}");

    // A checkpoint: the statistics as JSON, the raw CSV as a data file, metadata on the side.
    let mut ckpt = Checkpoint::new();
    let mut class_means = serde_json::Map::new();
    for feature in FEATURES {
        let values: Vec<Option<f64>> = means
            .column(&format!("mean({feature})"))?
            .f64()?
            .iter()
            .collect();
        class_means.insert(feature.to_owned(), serde_json::json!(values));
    }
    ckpt.put_json("class_means.json", &class_means)?;
    ckpt.put_bytes("data/breast_cancer.csv", std::fs::read(data_path)?)?;
    ckpt.set_metadata_value("rows", &rows)?;
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
