//! Serving load benchmark on 127.0.0.1: throughput and latency percentiles for a no-op model
//! and the breast cancer GBDT, 1 and 2 replicas, batching off and on, next to a bare axum
//! handler that reads the body and answers a constant (the ceiling).
//!
//! ```text
//! cargo run --release -p air-serve --example serve_bench -- [--seconds 3] [--connections 16] [--runs 5] [--only GBDT]
//! ```
//!
//! For each server: peak throughput with `--connections` closed-loop keep-alive clients, then
//! p50/p99 at half that rate (requests are sent on a fixed schedule; when an answer comes
//! after the next request's scheduled time, that request's latency counts from the schedule, so a
//! stall is not hidden). When `wrk` is on the PATH its
//! peak is printed too. Client and server share this machine's cores.

#[path = "../common/breast_cancer.rs"]
mod breast_cancer;
#[path = "../common/load.rs"]
mod load;

use std::num::NonZeroUsize;
use std::{net::SocketAddr, sync::Arc, time::Duration};

use air_checkpoint::Checkpoint;
use air_data::polars::prelude::*;
use air_serve::{DeploymentConfig, PredictorDeployment, ServeConfig, Server, ServerHandle};
use air_train::{
    FromCheckpoint, Predictor,
    gbdt::{GbdtParams, GbdtPredictor, Objective},
};
use anyhow::Context;
use breast_cancer::{gbdt_checkpoint, request_body};
use load::{load, post_request, wrk_peak};

/// Answers zeros.
#[derive(Debug)]
struct Noop;

impl Predictor for Noop {
    fn predict(&self, batch: DataFrame) -> air_train::Result<DataFrame> {
        let p = Series::new("predictions".into(), vec![0.0f32; batch.height()]);
        DataFrame::new(batch.height(), vec![p.into_column()])
            .map_err(|e| air_train::TrainError::model("noop", e))
    }
}

/// The ceiling: axum reading the body and answering a constant, on a runtime like the
/// server's.
fn bare_axum() -> anyhow::Result<(SocketAddr, tokio::runtime::Runtime)> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let _guard = rt.enter();
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let app = axum::Router::new().route(
        "/",
        axum::routing::post(|body: axum::body::Bytes| async move {
            std::hint::black_box(body);
            (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                r#"[{"predictions":0.0}]"#,
            )
        }),
    );
    rt.spawn(async move { axum::serve(listener, app).await });
    Ok((addr, rt))
}

fn serve(
    name: &str,
    checkpoint: Checkpoint,
    gbdt: bool,
    replicas: usize,
    batch: usize,
    on_replica_threads: bool,
) -> anyhow::Result<ServerHandle> {
    let mut config = DeploymentConfig::new(name)
        .with_route_prefix("/")
        .with_num_replicas(NonZeroUsize::new(replicas).unwrap())
        .with_batching(NonZeroUsize::new(batch).unwrap(), Duration::ZERO)
        .with_max_concurrent_queries(NonZeroUsize::new(1000).unwrap());
    if on_replica_threads {
        config = config.with_run_on_caller_below(None);
    }
    let deployment = if gbdt {
        PredictorDeployment::new(config, checkpoint, GbdtPredictor::from_checkpoint)
    } else {
        PredictorDeployment::new(config, checkpoint, |_: &Checkpoint| Ok(Noop))
    };
    Ok(Server::new(ServeConfig::new().with_port(0))
        .with_deployment(deployment)?
        .start()?)
}

/// Serving throughput and latency at half of peak, next to a bare axum handler.
#[derive(Debug, clap::Parser)]
struct Args {
    /// Seconds of load per configuration.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Keep-alive connections of the load generator.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Only the servers whose label contains this text (e.g. `GBDT`, `axum`, `batch off`).
    #[arg(long)]
    only: Option<String>,
    /// Runs at half of peak per server: the median p50/p99 is printed, and the worst p99 (one
    /// stall of the machine in a run can make a p99 on a shared 2-core VM).
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// Every request on a replica's thread, none on the HTTP workers
    /// (`DeploymentConfig::with_run_on_caller_below(None)`).
    #[arg(long)]
    on_replica_threads: bool,
}

fn main() -> anyhow::Result<()> {
    let Args {
        seconds,
        connections: conns,
        only,
        runs,
        on_replica_threads,
    } = clap::Parser::parse();
    anyhow::ensure!(runs > 0, "--runs {runs}: expected at least 1");
    let chosen = |label: &str| only.as_deref().is_none_or(|o| label.contains(o));
    let dir = tempfile::tempdir()?;
    let storage = dir.path().to_str().context("a UTF-8 temp dir")?;
    let gbdt = gbdt_checkpoint(storage, GbdtParams::new(Objective::BinaryLogistic))?;
    let body = request_body()?;
    let request = Arc::new(post_request("/", &body));
    println!(
        "{conns} connections, {seconds} s per run, one breast cancer record per request ({} bytes)",
        body.len()
    );
    println!(
        "{:<34} {:>10} {:>10} | at half peak ({runs} run(s), medians): {:>8} {:>8} {:>8} {:>12}",
        "server", "peak req/s", "wrk req/s", "req/s", "p50 ms", "p99 ms", "worst p99 ms"
    );
    let measure = |name: &str, addr: SocketAddr| -> anyhow::Result<()> {
        let peak = load(addr, &request, conns, seconds, None)?;
        let wrk = wrk_peak(addr, &body, conns, seconds.ceil() as u64)
            .map_or_else(|| "-".to_owned(), |r| format!("{r:.0}"));
        anyhow::ensure!(
            peak.errors == 0,
            "{name}: {} answers were not 200",
            peak.errors
        );
        // (rate, p50 ms, p99 ms) of each run at half of peak.
        let mut halves = Vec::with_capacity(runs);
        for _ in 0..runs {
            let mut half = load(addr, &request, conns, seconds, Some(peak.rate() / 2.0))?;
            anyhow::ensure!(
                half.errors == 0,
                "{name}: {} answers were not 200",
                half.errors
            );
            halves.push([
                half.rate(),
                half.percentile(0.5).as_secs_f64() * 1e3,
                half.percentile(0.99).as_secs_f64() * 1e3,
            ]);
        }
        let median = |i: usize| {
            let mut v: Vec<f64> = halves.iter().map(|h| h[i]).collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let worst = halves.iter().map(|h| h[2]).fold(0.0, f64::max);
        println!(
            "{name:<34} {:>10.0} {wrk:>10} | {:>39.0} {:>8.3} {:>8.3} {worst:>12.3}",
            peak.rate(),
            median(0),
            median(1),
            median(2),
        );
        Ok(())
    };
    let ceiling = "bare axum (ceiling)";
    if chosen(ceiling) {
        let (addr, rt) = bare_axum()?;
        measure(ceiling, addr)?;
        rt.shutdown_timeout(Duration::from_secs(1));
    }
    for (model, is_gbdt) in [("no-op", false), ("GBDT breast cancer", true)] {
        for (replicas, batch) in [(1, 1), (1, 32), (2, 1), (2, 32)] {
            let label = format!(
                "{model}, {replicas} replica(s), batch {}",
                if batch == 1 { "off" } else { "≤32" }
            );
            if !chosen(&label) {
                continue;
            }
            let server = serve(
                "bench",
                gbdt.clone(),
                is_gbdt,
                replicas,
                batch,
                on_replica_threads,
            )?;
            measure(&label, server.addr())?;
            server.shutdown()?;
        }
    }
    Ok(())
}
