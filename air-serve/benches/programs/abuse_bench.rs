//! What abuse costs a server on 127.0.0.1 (release build; client and server share the cores):
//!
//! - `burst`: `--requests` clients connect and send one request each, all at once, to a
//!   deployment that admits `--admitted` requests in flight and takes `--model-ms` per batch;
//!   prints how many got 200 and 503 and each status's latency percentiles (a 503 should come
//!   back at once, far faster than a 200).
//! - `parse`: the time to answer a record with `--keys` distinct keys, and the same keys as the
//!   column form (parsing must stay linear in the body).
//!
//! ```text
//! cargo run --release -p air-serve --example abuse_bench -- burst [--requests 2000] [--admitted 16] [--model-ms 2]
//! cargo run --release -p air-serve --example abuse_bench -- parse [--keys 40000]
//! ```

use std::num::NonZeroUsize;
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use air_checkpoint::Checkpoint;
use air_data::polars::prelude::{DataFrame, IntoColumn, NamedFrom, Series};
use air_serve::{DeploymentConfig, PredictorDeployment, ServeConfig, Server};
use air_train::Predictor;
use anyhow::bail;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Answers zeros after sleeping `ms` per batch (a model that keeps its replica busy).
#[derive(Debug)]
struct Busy {
    ms: u64,
}

impl Predictor for Busy {
    fn predict(&self, batch: DataFrame) -> air_train::Result<DataFrame> {
        std::thread::sleep(Duration::from_millis(self.ms));
        let p = Series::new("predictions".into(), vec![0.0f32; batch.height()]);
        DataFrame::new(batch.height(), vec![p.into_column()])
            .map_err(|e| air_train::TrainError::model("busy", e))
    }
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

/// One request on its own connection: (status, latency); status 0 when the connection failed.
async fn request(addr: std::net::SocketAddr, raw: Arc<Vec<u8>>) -> (u16, Duration) {
    let started = Instant::now();
    let answer = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(&raw).await?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).await?;
        std::io::Result::Ok(out)
    }
    .await;
    let status = answer
        .ok()
        .and_then(|a| String::from_utf8_lossy(&a).split(' ').nth(1)?.parse().ok())
        .unwrap_or(0);
    (status, started.elapsed())
}

fn post(path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: b\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn burst(requests: usize, admitted: usize, ms: u64) -> anyhow::Result<()> {
    let deployment = PredictorDeployment::new(
        DeploymentConfig::new("busy")
            .with_max_concurrent_queries(NonZeroUsize::new(admitted).unwrap()),
        Checkpoint::new(),
        move |_: &Checkpoint| Ok(Busy { ms }),
    );
    let server = Server::new(ServeConfig::new().with_port(0))
        .with_deployment(deployment)?
        .start()?;
    let addr = server.addr();
    let raw = Arc::new(post("/busy", r#"{"array": [1.0]}"#));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let started = Instant::now();
    let answers = rt.block_on(async {
        let tasks: Vec<_> = (0..requests)
            .map(|_| tokio::spawn(request(addr, Arc::clone(&raw))))
            .collect();
        let mut answers = Vec::with_capacity(requests);
        for t in tasks {
            answers.push(t.await.unwrap_or((0, Duration::ZERO)));
        }
        answers
    });
    let wall = started.elapsed();
    println!(
        "burst: {requests} requests at once, {admitted} admitted in flight, {ms} ms per batch, \
         all answered in {wall:.2?}"
    );
    for status in [200u16, 503, 0] {
        let mut lat: Vec<Duration> = answers
            .iter()
            .filter(|(s, _)| *s == status)
            .map(|(_, l)| *l)
            .collect();
        lat.sort();
        let label = if status == 0 {
            "failed".to_owned()
        } else {
            status.to_string()
        };
        println!(
            "  {label:>6}: {:>5} answers, p50 {:>9.2?}  p99 {:>9.2?}  max {:>9.2?}",
            lat.len(),
            percentile(&lat, 50),
            percentile(&lat, 99),
            lat.last().copied().unwrap_or_default()
        );
    }
    let other = answers
        .iter()
        .filter(|(s, _)| ![200, 503, 0].contains(s))
        .count();
    if other > 0 {
        bail!("{other} answers with another status");
    }
    server.shutdown()?;
    Ok(())
}

fn parse(keys: usize) -> anyhow::Result<()> {
    let deployment = PredictorDeployment::new(
        DeploymentConfig::new("busy"),
        Checkpoint::new(),
        |_: &Checkpoint| Ok(Busy { ms: 0 }),
    );
    let server = Server::new(ServeConfig::new().with_port(0))
        .with_deployment(deployment)?
        .start()?;
    let record: serde_json::Map<String, serde_json::Value> = (0..keys)
        .map(|i| (format!("feature_{i}"), serde_json::json!(i as f64 + 0.5)))
        .collect();
    let columns: serde_json::Map<String, serde_json::Value> = record
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::json!([v])))
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    for (form, body) in [
        ("record", serde_json::json!([record]).to_string()),
        ("columns", serde_json::Value::Object(columns).to_string()),
    ] {
        let raw = Arc::new(post("/busy", &body));
        let mut times = Vec::new();
        for _ in 0..5 {
            let (status, took) = rt.block_on(request(server.addr(), Arc::clone(&raw)));
            if status != 200 {
                bail!("{form}: status {status}");
            }
            times.push(took);
        }
        times.sort();
        println!(
            "parse: one {form} with {keys} keys ({} KiB): median {:.2?} (min {:.2?})",
            body.len() / 1024,
            times[2],
            times[0]
        );
    }
    server.shutdown()?;
    Ok(())
}

/// What abuse costs a server (see the file's docs).
#[derive(Debug, clap::Parser)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Many clients at once against a deployment that admits few: 503 latency.
    Burst {
        /// Clients, one request each.
        #[arg(long, default_value_t = 2000)]
        requests: usize,
        /// Requests the deployment admits in flight.
        #[arg(long, default_value_t = 16)]
        admitted: usize,
        /// Milliseconds the model takes per batch.
        #[arg(long, default_value_t = 2)]
        model_ms: u64,
    },
    /// One record with many distinct keys: parsing time.
    Parse {
        /// Distinct keys.
        #[arg(long, default_value_t = 40_000)]
        keys: usize,
    },
}

fn main() -> anyhow::Result<()> {
    let Args { command } = clap::Parser::parse();
    match command {
        Command::Burst {
            requests,
            admitted,
            model_ms,
        } => burst(requests, admitted, model_ms),
        Command::Parse { keys } => parse(keys),
    }
}
