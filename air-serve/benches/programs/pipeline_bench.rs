//! Pipeline benchmarks: the per-call overhead of each execution mode, a two-GBDT ensemble over
//! HTTP (throughput, and p50/p99 at half of peak), and the image pipeline's images/s with its
//! CNN steps on 1 and 2 replicas.
//!
//! ```text
//! cargo run --release -p air-serve --example pipeline_bench -- [--part overhead|ensemble|image|all]
//!     [--seconds 3] [--connections 16] [--clients 8] [--device cpu|cuda]
//! cargo run --release -p air-serve --example pipeline_bench -- --part ensemble --external 127.0.0.1:8000/ensemble
//! ```
//!
//! `--external` loads another server with the same request (Ray Serve's ensemble, started by
//! `benches/programs/pipeline_ray.py`). `--device cuda` needs `--features cuda`.

#[path = "../common/breast_cancer.rs"]
mod breast_cancer;
#[path = "../common/load.rs"]
mod load;
#[path = "../../examples/vision/mod.rs"]
mod vision;

use std::{
    hint::black_box,
    net::{SocketAddr, ToSocketAddrs},
    num::NonZeroUsize,
    sync::Arc,
    time::{Duration, Instant},
};

use air_data::polars::prelude::*;
use air_serve::{
    ServeConfig, Server,
    pipeline::{ExecutionMode, Frames, INPUT, Node, PipelineConfig, Step, StepError},
};
use air_train::{
    ComputeDevice, FromCheckpoint,
    gbdt::{GbdtParams, GbdtPredictor, Objective},
};
use anyhow::Context;
use breast_cancer::{gbdt_checkpoint, request_body};
use load::{load, post_request};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Part {
    Overhead,
    Ensemble,
    Image,
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Device {
    Cpu,
    Cuda,
}

/// Pipeline overhead, a GBDT ensemble over HTTP, and the image pipeline.
#[derive(Debug, clap::Parser)]
struct Args {
    /// Which benchmark.
    #[arg(long, value_enum, default_value_t = Part::All)]
    part: Part,
    /// Seconds of load per configuration.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Keep-alive connections of the HTTP load generator.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Concurrent in-process callers of the image pipeline.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Where the image pipeline's CNN steps run.
    #[arg(long, value_enum, default_value_t = Device::Cpu)]
    device: Device,
    /// Load this server (`host:port/path`) with the ensemble's request instead of ours.
    #[arg(long)]
    external: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let args: Args = clap::Parser::parse();
    if let Some(target) = &args.external {
        return external(target, &args);
    }
    if matches!(args.part, Part::Overhead | Part::All) {
        overhead()?;
    }
    if matches!(args.part, Part::Ensemble | Part::All) {
        ensemble(&args)?;
    }
    if matches!(args.part, Part::Image | Part::All) {
        image(&args)?;
    }
    Ok(())
}

/// `n` timed calls of `f`, nanoseconds per call (the best of three runs).
fn per_call(n: u64, mut f: impl FnMut(u64)) -> f64 {
    (0..3)
        .map(|_| {
            let start = Instant::now();
            for i in 0..n {
                f(i);
            }
            start.elapsed().as_nanos() as f64 / n as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn chain(mode: ExecutionMode) -> anyhow::Result<air_serve::pipeline::Pipeline<u64, u64>> {
    let step = |name: &str| Step::new(name, |x: u64| black_box(x).wrapping_add(1)).with_mode(mode);
    let node: Node<u64, u64> = step("c").on(step("b").on(step("a").on(INPUT)));
    Ok(node.deploy_with(PipelineConfig::new("chain").with_request_timeout(None))?)
}

fn overhead() -> anyhow::Result<()> {
    println!("== per-call overhead of a 3-step chain of no-ops (one caller, sequential calls)");
    let f = |x: u64| black_box(x).wrapping_add(1);
    let direct = per_call(10_000_000, |i| {
        black_box(f(f(f(i))));
    });
    println!("{:<28} {:>10.1} ns/call", "direct function calls", direct);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    for (label, mode, n) in [
        ("Local", ExecutionMode::Local, 1_000_000),
        ("Tasks", ExecutionMode::Tasks, 100_000),
        (
            "Replicas (1 each)",
            ExecutionMode::Replicas { num_replicas: 1 },
            100_000,
        ),
    ] {
        let p = chain(mode)?;
        let call = per_call(n, |i| {
            black_box(p.call(i).expect("a no-op answers"));
        });
        let call_async = per_call(n, |i| {
            black_box(rt.block_on(p.call_async(i)).expect("a no-op answers"));
        });
        println!(
            "{label:<28} {call:>10.1} ns/call  {:>8.2} µs per step | call_async {call_async:>10.1} ns/call  {:>8.2} µs per step",
            (call - direct) / 3e3,
            (call_async - direct) / 3e3,
        );
    }
    Ok(())
}

/// The averaging step of the ensemble: the mean of the two models' `predictions`.
fn average((a, b): (DataFrame, DataFrame)) -> Result<DataFrame, StepError> {
    let p = |df: &DataFrame| {
        df.column("predictions")?
            .as_materialized_series()
            .cast(&DataType::Float64)
    };
    let mean = ((&p(&a)? + &p(&b)?)? / 2.0).with_name("probability".into());
    Ok(DataFrame::new(a.height(), vec![mean.into()])?)
}

fn ensemble(args: &Args) -> anyhow::Result<()> {
    println!(
        "== two breast cancer GBDTs (20 rounds; depth 6 and depth 3) + averaging, over HTTP on \
         127.0.0.1 ({} connections, {} s per run, one record per request)",
        args.connections, args.seconds
    );
    let dir = tempfile::tempdir()?;
    let storage = dir.path().to_str().context("a UTF-8 temp dir")?;
    let deep = gbdt_checkpoint(storage, GbdtParams::new(Objective::BinaryLogistic))?;
    let shallow = gbdt_checkpoint(
        storage,
        GbdtParams::new(Objective::BinaryLogistic).with_max_depth(3),
    )?;
    let request = Arc::new(post_request("/", &request_body()?));
    header();
    for (replicas, batch) in [(1, 1), (1, 32), (2, 1), (2, 32)] {
        let model = |name: &str, checkpoint| {
            Step::predictor(name, checkpoint, GbdtPredictor::from_checkpoint)
                .with_mode(ExecutionMode::Replicas {
                    num_replicas: replicas,
                })
                .with_batching(NonZeroUsize::new(batch).unwrap(), Duration::ZERO)
        };
        let node = Step::try_new("average", average).on((
            model("deep", deep.clone()).on(INPUT),
            model("shallow", shallow.clone()).on(INPUT),
        ));
        let config = PipelineConfig::new("ensemble")
            .with_route_prefix("/")
            .with_max_concurrent_queries(NonZeroUsize::new(10_000).unwrap());
        let pipeline = node.deploy_with(config)?;
        let server = Server::new(ServeConfig::new().with_port(0))
            .with_pipeline(&pipeline, Frames)?
            .start()?;
        let label = format!(
            "{replicas} replica(s) per model, batch {}",
            if batch == 1 { "off" } else { "≤32" }
        );
        measure(&label, server.addr(), &request, args)?;
        server.shutdown()?;
    }
    Ok(())
}

fn header() {
    println!(
        "{:<40} {:>10} | at half peak: {:>8} {:>8} {:>8}",
        "server", "peak req/s", "req/s", "p50 ms", "p99 ms"
    );
}

fn measure(
    label: &str,
    addr: SocketAddr,
    request: &Arc<Vec<u8>>,
    args: &Args,
) -> anyhow::Result<()> {
    let peak = load(addr, request, args.connections, args.seconds, None)?;
    let mut half = load(
        addr,
        request,
        args.connections,
        args.seconds,
        Some(peak.rate() / 2.0),
    )?;
    anyhow::ensure!(
        peak.errors + half.errors == 0,
        "{label}: {} answers were not 200",
        peak.errors + half.errors
    );
    println!(
        "{label:<40} {:>10.0} | {:>22.0} {:>8.3} {:>8.3}",
        peak.rate(),
        half.rate(),
        half.percentile(0.5).as_secs_f64() * 1e3,
        half.percentile(0.99).as_secs_f64() * 1e3,
    );
    Ok(())
}

/// Loads `host:port/path` with the ensemble's request.
fn external(target: &str, args: &Args) -> anyhow::Result<()> {
    let (host, path) = target
        .split_once('/')
        .map_or((target, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let addr = host
        .to_socket_addrs()?
        .next()
        .with_context(|| format!("no address for {host}"))?;
    let request = Arc::new(post_request(&path, &request_body()?));
    header();
    measure(target, addr, &request, args)
}

fn image(args: &Args) -> anyhow::Result<()> {
    let device = match args.device {
        Device::Cpu => ComputeDevice::Cpu,
        Device::Cuda => ComputeDevice::Cuda { index: 0 },
    };
    println!(
        "== the image pipeline: 720 × 720 PNG → preprocess (Tasks) → two CNNs ({device:?}) → \
         top-5 lists; {} in-process callers, {} s per run",
        args.clients, args.seconds
    );
    let png = vision::png(720, 720, true);
    for replicas in [1, 2] {
        let layout = vision::Layout {
            preprocess: ExecutionMode::Tasks,
            models: ExecutionMode::Replicas {
                num_replicas: replicas,
            },
            device,
        };
        let pipeline = vision::ensemble(layout)
            .deploy_with(PipelineConfig::new("images").with_request_timeout(None))?;
        pipeline.call(png.clone())?; // warm-up
        let end = Instant::now() + Duration::from_secs_f64(args.seconds);
        let start = Instant::now();
        let images: usize = std::thread::scope(|s| {
            let callers: Vec<_> = (0..args.clients)
                .map(|_| {
                    s.spawn(|| {
                        let mut n = 0;
                        while Instant::now() < end {
                            pipeline.call(png.clone()).expect("an image answers");
                            n += 1;
                        }
                        n
                    })
                })
                .collect();
            callers
                .into_iter()
                .map(|c| c.join().expect("a caller"))
                .sum()
        });
        let seconds = start.elapsed().as_secs_f64();
        println!(
            "CNN steps on {replicas} replica(s) each: {:>8.1} images/s ({images} images)",
            images as f64 / seconds
        );
    }
    Ok(())
}
