//! air-serve's building blocks: a batch prediction pass next to the model's own predict, one
//! in-process deployment call (queue + replica hop), and a request's JSON in and out.

use std::hint::black_box;
use std::num::NonZeroUsize;

use air::{
    checkpoint::Checkpoint,
    data::{Dataset, polars::prelude::*, to_f32_matrix, to_f32_vector},
    serve::{
        Adapter, BatchPredictor, DeploymentConfig, JsonAdapter, PredictOptions,
        PredictorDeployment, records_json,
    },
    train::{
        FromCheckpoint, Predictor,
        gbdt::{BoostData, GBDT_MODEL_ENTRY, GbdtParams, GbdtPredictor, Objective, train_gbdt},
    },
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const ROWS: u64 = 100_000;

fn gbdt() -> (Checkpoint, DataFrame) {
    let features: Vec<String> = (0..20).map(|j| format!("f{j}")).collect();
    let table = air::data::synthetic(ROWS, 7)
        .unwrap()
        .with_column(
            "y",
            (col("f0") * col("f1")).gt(lit(0.0)).cast(DataType::Float32),
        )
        .to_polars()
        .unwrap();
    let x = to_f32_matrix(&table, &features).unwrap();
    let y = to_f32_vector(&table, "y").unwrap();
    let data = BoostData {
        x: &x.data,
        rows: x.rows,
        y: &y,
    };
    let params = GbdtParams::new(Objective::BinaryLogistic);
    let mut model = train_gbdt(&params, data, &[], 10, |_| true).unwrap();
    model.feature_names.clone_from(&features);
    let mut c = Checkpoint::new();
    c.put_json(GBDT_MODEL_ENTRY, &model).unwrap();
    (
        c,
        table.select(features.iter().map(String::as_str)).unwrap(),
    )
}

fn batch_predict(c: &mut Criterion) {
    let (checkpoint, df) = gbdt();
    let direct = GbdtPredictor::from_checkpoint(&checkpoint).unwrap();
    let ds = Dataset::from_polars(df.clone());
    let bp = BatchPredictor::from_checkpoint(checkpoint, GbdtPredictor::from_checkpoint);
    let options = PredictOptions::new()
        .with_batch_size(NonZeroUsize::new(16_384).unwrap())
        .with_scoring_workers(NonZeroUsize::new(1).unwrap(), NonZeroUsize::new(1).unwrap());
    let mut g = c.benchmark_group("batch_predict_gbdt_100k");
    g.throughput(Throughput::Elements(ROWS));
    g.sample_size(10);
    g.bench_function("model_predict", |b| {
        b.iter(|| black_box(direct.predict(df.clone()).unwrap()));
    });
    g.bench_function("batch_predictor_1_worker", |b| {
        b.iter(|| black_box(bp.predict(&ds, &options).unwrap().count().unwrap()));
    });
    g.finish();
}

/// Answers zeros.
#[derive(Debug)]
struct Noop;

impl Predictor for Noop {
    fn predict(&self, batch: DataFrame) -> air::train::Result<DataFrame> {
        let p = Series::new("predictions".into(), vec![0.0f32; batch.height()]);
        Ok(DataFrame::new(batch.height(), vec![p.into_column()]).unwrap())
    }
}

fn deployment_call(c: &mut Criterion) {
    let handle = PredictorDeployment::new(
        DeploymentConfig::new("noop"),
        Checkpoint::new(),
        |_: &Checkpoint| Ok(Noop),
    )
    .start()
    .unwrap();
    let row = df!("x" => [1.0f64]).unwrap();
    c.bench_function("deployment_handle_call_noop", |b| {
        b.iter(|| black_box(handle.predict(row.clone()).unwrap()));
    });
    handle.shutdown();
}

fn request_json(c: &mut Criterion) {
    let record: serde_json::Map<String, serde_json::Value> = (0..30)
        .map(|j| (format!("feature {j}"), serde_json::json!(j as f64 * 1.25)))
        .collect();
    let body = serde_json::json!([record]).to_string();
    let out = df!("predictions" => [0.25f32]).unwrap();
    c.bench_function("parse_one_30_column_record", |b| {
        b.iter(|| black_box(JsonAdapter.to_frame(body.as_bytes()).unwrap()));
    });
    c.bench_function("write_one_prediction_record", |b| {
        b.iter(|| black_box(records_json(&out)));
    });
}

criterion_group!(benches, batch_predict, deployment_call, request_json);
criterion_main!(benches);
