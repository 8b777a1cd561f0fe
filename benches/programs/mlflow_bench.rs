//! MLflow tracking throughput: T trials × R results (5 metrics each) through `MlflowCallback`
//! to a running tracking server — what a trial's thread pays per result (the queueing) and how
//! fast results reach the server (until `on_experiment_end` returns with everything sent).
//!
//! ```text
//! scripts/bench-mlflow.sh                      # starts a server, runs this and the Python side
//! cargo run --release --features track --example mlflow_bench -- \
//!     --tracking-uri http://127.0.0.1:5077 --trials 10 --results 1000
//! ```
//!
//! The same workload the way Ray's `MLflowLoggerCallback` sends it (one `log_metrics` request
//! per result, on the driver) is `benches/programs/mlflow_python.py`.

use std::time::Instant;

use air::{
    track::MlflowConfig,
    train::{Callback, Metrics, TrialContext},
};
use anyhow::{Context, ensure};
use serde_json::json;

/// MlflowCallback throughput against a tracking server.
#[derive(Debug, clap::Parser)]
struct Options {
    /// The tracking server.
    #[arg(long, default_value = "http://127.0.0.1:5077")]
    tracking_uri: String,
    /// Trials (one MLflow run each).
    #[arg(long, default_value_t = 10)]
    trials: usize,
    /// Results per trial.
    #[arg(long, default_value_t = 1000)]
    results: usize,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() -> anyhow::Result<()> {
    let o: Options = clap::Parser::parse();
    let experiment = format!("/tmp/air-mlflow-bench-{}", std::process::id());
    let callback = MlflowConfig::new()
        .with_tracking_uri(&o.tracking_uri)
        .with_experiment_name(format!("air-bench-{}", std::process::id()))
        .build()?;
    let trials: Vec<TrialContext> = (0..o.trials)
        .map(|i| {
            let id = format!("t{i:05}");
            TrialContext::new(
                &id,
                &id,
                &format!("{experiment}/{id}"),
                &experiment,
                json!({ "lr": 0.01 * (i + 1) as f64, "depth": i % 7, "opt": "adam" }),
            )
        })
        .collect();
    let start = Instant::now();
    let mut queueing = 0.0;
    for trial in &trials {
        callback
            .on_trial_start(trial, &[])
            .map_err(anyhow::Error::msg)?;
    }
    for step in 1..=o.results {
        for trial in &trials {
            let x = step as f64;
            let result: Metrics = serde_json::from_value(json!({
                "loss": 1.0 / x, "acc": 1.0 - 1.0 / x, "lr": 0.01, "grad_norm": x.sqrt(),
                "time_this_iter_s": 0.001, "training_iteration": step, "timestamp": 1_700_000_000,
            }))?;
            let t = Instant::now();
            callback
                .on_trial_result(trial, &result)
                .map_err(anyhow::Error::msg)?;
            queueing += t.elapsed().as_secs_f64();
        }
    }
    for trial in &trials {
        callback
            .on_trial_complete(trial, None)
            .map_err(anyhow::Error::msg)?;
    }
    callback
        .on_experiment_end(&experiment)
        .map_err(anyhow::Error::msg)
        .context("flushing to MLflow")?;
    let seconds = start.elapsed().as_secs_f64();
    let d = callback.delivery();
    let results = o.trials * o.results;
    ensure!(
        d.failed == 0 && d.queued == 0,
        "not everything reached MLflow: {d:?}"
    );
    println!(
        "air MlflowCallback: {} trials x {} results ({results} results, {} metrics each): \
         {seconds:.2} s to the server, {:.0} results/s; queueing {:.2} us per result on the \
         trial's thread",
        o.trials,
        o.results,
        5,
        results as f64 / seconds,
        queueing / results as f64 * 1e6,
    );
    Ok(())
}
