//! Serving load benchmark on 127.0.0.1: throughput and latency percentiles for a no-op model
//! and the breast cancer GBDT, 1 and 2 replicas, batching off and on, next to a bare axum
//! handler that reads the body and answers a constant (the ceiling).
//!
//! ```text
//! cargo run --release -p air-serve --example serve_bench -- [--seconds 3] [--connections 16]
//! ```
//!
//! For each server: peak throughput with `--connections` closed-loop keep-alive clients, then
//! p50/p99 at half that rate (requests are sent on a fixed schedule; when an answer comes
//! after the next request's scheduled time, that request's latency counts from the schedule, so a
//! stall is not hidden). When `wrk` is on the PATH its
//! peak is printed too. Client and server share this machine's cores.

use std::num::NonZeroUsize;
use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    sync::Arc,
    time::{Duration, Instant},
};

use air_checkpoint::Checkpoint;
use air_data::{Dataset, polars::prelude::*};
use air_serve::{DeploymentConfig, PredictorDeployment, ServeConfig, Server, ServerHandle};
use air_train::{
    FromCheckpoint, Predictor, RunConfig, ScalingConfig, Trainer, Verbosity,
    gbdt::{GbdtParams, GbdtPredictor, GbdtTrainer, Objective},
};
use anyhow::{Context, bail};

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

fn breast_cancer() -> anyhow::Result<Dataset> {
    Ok(Dataset::read_csv(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/data/breast_cancer.csv"
    ))?)
}

fn gbdt_checkpoint(storage: &str) -> anyhow::Result<Checkpoint> {
    let result = GbdtTrainer::new(
        "target",
        GbdtParams::new(Objective::BinaryLogistic),
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
fn request_body() -> anyhow::Result<String> {
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
) -> anyhow::Result<ServerHandle> {
    let config = DeploymentConfig::new(name)
        .with_route_prefix("/")
        .with_num_replicas(NonZeroUsize::new(replicas).unwrap())
        .with_batching(NonZeroUsize::new(batch).unwrap(), Duration::ZERO)
        .with_max_concurrent_queries(NonZeroUsize::new(1000).unwrap());
    let deployment = if gbdt {
        PredictorDeployment::new(config, checkpoint, GbdtPredictor::from_checkpoint)
    } else {
        PredictorDeployment::new(config, checkpoint, |_: &Checkpoint| Ok(Noop))
    };
    Ok(Server::new(ServeConfig::new().with_port(0))
        .with_deployment(deployment)?
        .start()?)
}

/// One keep-alive HTTP/1.1 connection (blocking: each client connection is a thread, paced
/// with `thread::sleep`, whose ~60 µs resolution — unlike tokio's 1 ms timer — does not bunch
/// requests).
struct Conn {
    stream: TcpStream,
    request: Arc<Vec<u8>>,
    buf: Vec<u8>,
}

impl Conn {
    fn open(addr: SocketAddr, request: Arc<Vec<u8>>) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            request,
            buf: Vec::with_capacity(4096),
        })
    }

    /// Sends the request and reads the whole answer; returns the status.
    fn call(&mut self) -> anyhow::Result<u16> {
        self.stream.write_all(&self.request)?;
        self.buf.clear();
        loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let head = std::str::from_utf8(&self.buf[..end])?;
                let status: u16 = head
                    .split_whitespace()
                    .nth(1)
                    .context("a status")?
                    .parse()?;
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .context("a content-length")?;
                while self.buf.len() < end + 4 + length {
                    self.read_more()?;
                }
                return Ok(status);
            }
            self.read_more()?;
        }
    }

    fn read_more(&mut self) -> anyhow::Result<()> {
        let mut chunk = [0u8; 4096];
        let n = self.stream.read(&mut chunk)?;
        if n == 0 {
            bail!("the server closed the connection");
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Latencies of one run, and how many answers were not 200.
struct Run {
    latencies: Vec<Duration>,
    errors: usize,
    seconds: f64,
}

impl Run {
    fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.seconds
    }
    fn percentile(&mut self, q: f64) -> Duration {
        self.latencies.sort_unstable();
        let i = ((self.latencies.len() as f64 * q) as usize).min(self.latencies.len() - 1);
        self.latencies[i]
    }
}

/// `conns` connections for `seconds`; each sends one request every `conns / rate` seconds
/// (`rate = None`: as fast as answers come back).
fn load(
    addr: SocketAddr,
    request: &Arc<Vec<u8>>,
    conns: usize,
    seconds: f64,
    rate: Option<f64>,
) -> anyhow::Result<Run> {
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(seconds);
    let interval = rate.map(|r| Duration::from_secs_f64(conns as f64 / r));
    let threads: Vec<_> = (0..conns)
        .map(|c| {
            let request = Arc::clone(request);
            std::thread::spawn(move || {
                let mut conn = Conn::open(addr, request)?;
                let mut latencies = Vec::new();
                let mut errors = 0;
                // Spread the connections' schedules over one interval.
                let mut next =
                    start + interval.map_or(Duration::ZERO, |i| i * c as u32 / conns as u32);
                loop {
                    let now = Instant::now();
                    if interval.is_some() && next > now {
                        std::thread::sleep(next - now);
                    }
                    // With a schedule, latency counts from the scheduled time: a request the
                    // server made wait (its previous answer came late) is not hidden.
                    let sent = if interval.is_some() {
                        next
                    } else {
                        Instant::now()
                    };
                    if sent >= end {
                        break;
                    }
                    let status = conn.call()?;
                    latencies.push(sent.elapsed());
                    errors += usize::from(status != 200);
                    if let Some(i) = interval {
                        next += i;
                    }
                }
                anyhow::Ok((latencies, errors))
            })
        })
        .collect();
    let mut run = Run {
        latencies: Vec::new(),
        errors: 0,
        seconds,
    };
    for t in threads {
        let (l, e) = t
            .join()
            .map_err(|_| anyhow::anyhow!("a client thread panicked"))??;
        run.latencies.extend(l);
        run.errors += e;
    }
    Ok(run)
}

fn wrk_peak(addr: SocketAddr, body: &str, conns: usize, seconds: u64) -> Option<f64> {
    let script = std::env::temp_dir().join("air_serve_bench.lua");
    let lua = format!(
        "wrk.method = \"POST\"\nwrk.body = {}\nwrk.headers[\"Content-Type\"] = \"application/json\"\n",
        serde_json::to_string(body).ok()?
    );
    std::fs::write(&script, lua).ok()?;
    let out = std::process::Command::new("wrk")
        .args(["-t2", &format!("-c{conns}"), &format!("-d{seconds}s"), "-s"])
        .arg(&script)
        .arg(format!("http://{addr}/"))
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
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
}

fn main() -> anyhow::Result<()> {
    let Args {
        seconds,
        connections: conns,
    } = clap::Parser::parse();
    let dir = tempfile::tempdir()?;
    let gbdt = gbdt_checkpoint(dir.path().to_str().context("a UTF-8 temp dir")?)?;
    let body = request_body()?;
    let request = Arc::new(
        format!(
            "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    );
    println!(
        "{conns} connections, {seconds} s per run, one breast cancer record per request ({} bytes)",
        body.len()
    );
    println!(
        "{:<34} {:>10} {:>10} | at half peak: {:>8} {:>8} {:>8}",
        "server", "peak req/s", "wrk req/s", "req/s", "p50 ms", "p99 ms"
    );
    let measure = |name: &str, addr: SocketAddr| -> anyhow::Result<()> {
        let peak = load(addr, &request, conns, seconds, None)?;
        let wrk = wrk_peak(addr, &body, conns, seconds.ceil() as u64)
            .map_or_else(|| "-".to_owned(), |r| format!("{r:.0}"));
        let mut half = load(addr, &request, conns, seconds, Some(peak.rate() / 2.0))?;
        anyhow::ensure!(
            peak.errors + half.errors == 0,
            "{name}: {} answers were not 200",
            peak.errors + half.errors
        );
        println!(
            "{name:<34} {:>10.0} {wrk:>10} | {:>22.0} {:>8.3} {:>8.3}",
            peak.rate(),
            half.rate(),
            half.percentile(0.5).as_secs_f64() * 1e3,
            half.percentile(0.99).as_secs_f64() * 1e3,
        );
        Ok(())
    };
    let (addr, rt) = bare_axum()?;
    measure("bare axum (ceiling)", addr)?;
    rt.shutdown_timeout(Duration::from_secs(1));
    for (model, is_gbdt) in [("no-op", false), ("GBDT breast cancer", true)] {
        for (replicas, batch) in [(1, 1), (1, 32), (2, 1), (2, 32)] {
            let server = serve("bench", gbdt.clone(), is_gbdt, replicas, batch)?;
            let label = format!(
                "{model}, {replicas} replica(s), batch {}",
                if batch == 1 { "off" } else { "≤32" }
            );
            measure(&label, server.addr())?;
            server.shutdown()?;
        }
    }
    Ok(())
}
