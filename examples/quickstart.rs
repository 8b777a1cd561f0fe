//! Ray AIR's quick start, end to end, in one process: on the breast cancer table —
//! preprocess, train a gradient-boosted model on 2 data-parallel workers, tune `max_depth` and
//! `eta` over 8 trials with ASHA, batch-predict the validation split from the best checkpoint
//! and print its accuracy, then serve that checkpoint over HTTP on 127.0.0.1, send a few real
//! requests, print the answers and shut the server down. Every stage prints its wall time.
//!
//! ```text
//! cargo run --release --example quickstart [-- STORAGE]
//! ```
//!
//! `STORAGE` is where runs and checkpoints go: a directory (default: a temporary one) or an
//! object-store URI such as `s3://bucket/prefix`.
//!
//! Also a test (`cargo test --example quickstart`).

use std::num::NonZeroUsize;
use std::time::Instant;

#[path = "common/http.rs"]
mod http;

use air::{
    data::{Dataset, StandardScaler, polars::prelude::*},
    serve::{
        BatchPredictor, DeploymentConfig, PredictOptions, PredictorDeployment, ServeConfig, Server,
    },
    train::{
        FromCheckpoint, RunConfig, ScalingConfig, Trainer, Verbosity,
        gbdt::{EvalMetric, GbdtParams, GbdtPredictor, GbdtTrainer, Objective},
    },
    tune::{Asha, Mode, TuneConfig, Tuner, loguniform, randint, space},
};
use anyhow::{Context, ensure};
use http::http_post;

const ROUNDS: usize = 20;

/// What the run produced, for the test.
#[cfg_attr(not(test), allow(dead_code))]
struct Summary {
    accuracy: f64,
    answers: Vec<serde_json::Value>,
}

/// Prints a stage's wall time.
struct Stage(&'static str, Instant);

impl Stage {
    fn start(name: &'static str) -> Self {
        Self(name, Instant::now())
    }
    fn done(self) {
        println!("[{:>8.3} s] {}\n", self.1.elapsed().as_secs_f64(), self.0);
    }
}

fn run(storage: &str) -> anyhow::Result<Summary> {
    let total = Instant::now();

    let stage = Stage::start("read and split");
    let data = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/data/breast_cancer.csv"
    );
    let (train, valid) = Dataset::read_csv(data)?.train_test_split(0.3)?;
    println!(
        "breast cancer: {} train rows, {} validation rows",
        train.count()?,
        valid.count()?
    );
    stage.done();

    // The preprocessor is fitted on the train split inside the trainer and saved in every
    // checkpoint, so prediction and serving apply the same scaling.
    let stage = Stage::start("train (GBDT, 2 workers)");
    let trainer = GbdtTrainer::new(
        "target",
        GbdtParams::new(Objective::BinaryLogistic)
            .with_eval_metrics([EvalMetric::Logloss, EvalMetric::Error]),
        ScalingConfig::new(NonZeroUsize::new(2).unwrap()),
        RunConfig::new(storage)
            .with_name("quickstart_train")
            .with_verbose(Verbosity::Silent),
    )?
    .with_num_boost_round(ROUNDS)
    .with_dataset("train", train)
    .with_dataset("valid", valid.clone())
    .with_preprocessor(StandardScaler::new(["mean radius", "mean texture"]));
    let result = trainer.clone().fit()?.into_result()?;
    println!(
        "{ROUNDS} rounds: train-logloss {:.4}, valid-logloss {:.4}, valid-error {:.4}",
        result.metrics["train-logloss"].as_f64().unwrap_or(f64::NAN),
        result.metrics["valid-logloss"].as_f64().unwrap_or(f64::NAN),
        result.metrics["valid-error"].as_f64().unwrap_or(f64::NAN),
    );
    stage.done();

    let stage = Stage::start("tune (8 trials, ASHA)");
    let grid = Tuner::new(
        trainer,
        space!({ "params": {
            "max_depth": randint(2, 8),
            "eta": loguniform(1e-2, 0.5),
        } }),
    )
    .with_tune_config(
        TuneConfig::new()
            .with_metric("valid-logloss", Mode::Min)
            .with_num_samples(NonZeroUsize::new(8).unwrap())
            .with_seed(7)
            .with_scheduler(
                Asha::new()
                    .with_max_t(ROUNDS as f64)
                    .with_grace_period(2.0)
                    .with_reduction_factor(3.0),
            ),
    )
    .with_run_config(
        RunConfig::new(storage)
            .with_name("quickstart_tune")
            .with_verbose(Verbosity::Silent),
    )
    .fit()?;
    for r in &grid {
        println!(
            "  {}  rounds {:>2}  valid-logloss {:.4}  {}",
            r.trial_id,
            r.metrics["training_iteration"],
            r.metrics["valid-logloss"].as_f64().unwrap_or(f64::NAN),
            r.config["params"]
        );
    }
    let best = grid.best_result()?;
    println!(
        "best: valid-logloss {:.4} with {}",
        best.metrics["valid-logloss"].as_f64().unwrap_or(f64::NAN),
        best.config["params"]
    );
    let checkpoint = best
        .checkpoint
        .clone()
        .context("the best trial's checkpoint")?;
    stage.done();

    let stage = Stage::start("batch predict the validation split");
    let features: Vec<String> = valid
        .columns()?
        .into_iter()
        .filter(|c| c != "target")
        .collect();
    let predictions =
        BatchPredictor::from_checkpoint(checkpoint.clone(), GbdtPredictor::from_checkpoint)
            .predict(
                &valid,
                &PredictOptions::new()
                    .with_batch_size(NonZeroUsize::new(64).unwrap())
                    .with_feature_columns(&features)
                    .with_keep_columns(["target"]),
            )?
            .to_polars()?;
    let p = predictions.column("predictions")?.f32()?;
    let y = predictions.column("target")?.cast(&DataType::Float64)?;
    let correct = p
        .into_no_null_iter()
        .zip(y.f64()?.into_no_null_iter())
        .filter(|(p, y)| (*p > 0.5) == (*y > 0.5))
        .count();
    let accuracy = correct as f64 / predictions.height() as f64;
    println!(
        "validation accuracy {accuracy:.4} ({correct} of {} rows)",
        predictions.height()
    );
    stage.done();

    let stage = Stage::start("serve, query, shut down");
    let deployment = PredictorDeployment::new(
        DeploymentConfig::new("breast_cancer")
            .with_route_prefix("/")
            .with_num_replicas(NonZeroUsize::new(2).unwrap()),
        checkpoint,
        GbdtPredictor::from_checkpoint,
    );
    let server = Server::new(ServeConfig::new().with_port(0))
        .with_deployment(deployment)?
        .start()?;
    println!("serving on {}", server.url());
    let rows = valid.take(3)?.drop("target")?;
    let mut answers = Vec::new();
    for i in 0..rows.height() {
        let record: serde_json::Map<String, serde_json::Value> = features
            .iter()
            .map(|c| {
                let v = rows.column(c)?.cast(&DataType::Float64)?.f64()?.get(i);
                Ok((c.clone(), serde_json::json!(v)))
            })
            .collect::<PolarsResult<_>>()?;
        let body = serde_json::json!([record]).to_string();
        let (status, answer) = http_post(server.addr(), "/", &body)?;
        println!("POST / ({} bytes) -> {status} {answer}", body.len());
        ensure!(status == 200, "the server answered {status}: {answer}");
        answers.push(serde_json::from_str(&answer)?);
    }
    // The same rows in one column-dict request.
    let columns: serde_json::Map<String, serde_json::Value> = features
        .iter()
        .map(|c| {
            let v: Vec<Option<f64>> = rows
                .column(c)?
                .cast(&DataType::Float64)?
                .f64()?
                .iter()
                .collect();
            Ok((c.clone(), serde_json::json!(v)))
        })
        .collect::<PolarsResult<_>>()?;
    let (status, answer) = http_post(
        server.addr(),
        "/",
        &serde_json::Value::Object(columns).to_string(),
    )?;
    println!("POST / (3 rows as columns) -> {status} {answer}");
    let (status, answer) = http_post(server.addr(), "/", r#"[{"mean radius": "large"}]"#)?;
    println!("POST / (a bad request) -> {status} {answer}");
    server.shutdown()?;
    println!("server shut down");
    stage.done();

    println!("quick start done in {:.2} s", total.elapsed().as_secs_f64());
    Ok(Summary { accuracy, answers })
}

/// Ray AIR's quick start, end to end.
#[derive(Debug, clap::Parser)]
struct Args {
    /// Where runs and checkpoints go: a path or URI (`s3://bucket/prefix`); default: a
    /// temporary directory.
    storage: Option<String>,
}

#[cfg_attr(test, allow(dead_code))]
fn main() -> anyhow::Result<()> {
    let Args { storage } = clap::Parser::parse();
    let dir = tempfile::tempdir()?;
    let storage = storage.unwrap_or_else(|| dir.path().display().to_string());
    run(&storage)?;
    Ok(())
}

#[test]
fn the_quick_start_runs_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let summary = run(dir.path().to_str().unwrap()).unwrap();
    assert!(summary.accuracy >= 0.9, "{}", summary.accuracy);
    assert_eq!(summary.answers.len(), 3);
    for a in &summary.answers {
        let p = a[0]["predictions"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&p), "{a}");
    }
}
