//! The serving benchmarks' model and request: a GBDT trained on the breast cancer data, and
//! one of its records as a JSON body.

#![allow(dead_code, unreachable_pub)] // each benchmark takes its own part

use std::num::NonZeroUsize;

use air_checkpoint::Checkpoint;
use air_data::{Dataset, polars::prelude::*};
use air_train::{
    RunConfig, ScalingConfig, Trainer, Verbosity,
    gbdt::{GbdtParams, GbdtTrainer},
};
use anyhow::Context;

pub fn breast_cancer() -> anyhow::Result<Dataset> {
    Ok(Dataset::read_csv(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/data/breast_cancer.csv"
    ))?)
}

/// A GBDT of `params`, 20 rounds on the breast cancer data, its run under `storage`.
pub fn gbdt_checkpoint(storage: &str, params: GbdtParams) -> anyhow::Result<Checkpoint> {
    let result = GbdtTrainer::new(
        "target",
        params,
        ScalingConfig::new(NonZeroUsize::MIN),
        RunConfig::new(storage).with_verbose(Verbosity::Silent),
    )?
    .with_num_boost_round(20)
    .with_dataset("train", breast_cancer()?)
    .fit()?
    .into_result()?;
    result.checkpoint.context("a checkpoint")
}

/// One record of the breast cancer table as a JSON list.
pub fn request_body() -> anyhow::Result<String> {
    let df = breast_cancer()?.take(1)?.drop("target")?;
    let record: serde_json::Map<String, serde_json::Value> = df
        .columns()
        .iter()
        .map(|c| {
            let v = c.cast(&DataType::Float64)?.f64()?.get(0);
            Ok((c.name().to_string(), serde_json::json!(v)))
        })
        .collect::<PolarsResult<_>>()?;
    Ok(serde_json::json!([record]).to_string())
}
