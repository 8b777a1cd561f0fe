//! Training across processes next to threads: one epoch of the benchmark MLP (samples/s) and
//! GBDT rounds (s/round) with the `DataParallelTrainer` on 1, 2 and 4 workers — as threads of
//! one process, and as processes joined by `TcpCollective` on loopback (torchrun-style
//! variables, as a launcher sets them).
//!
//! ```text
//! cargo run --release --features burn,gbdt --example process_scaling_bench -- --rows 1000000
//! ```
//!
//! Each figure is rank 0's time inside `fit` (the join, the data preparation and the training;
//! not process start-up or building the table). The program re-runs itself as each rank.

#[path = "../common/train_mlp.rs"]
#[allow(dead_code, reason = "the bare loop is train_bench's")]
mod train_mlp;

use std::{
    net::TcpListener,
    num::NonZeroUsize,
    process::{Command, Stdio},
    time::Instant,
};

use air::{
    data::{
        Dataset,
        polars::prelude::{DataType, col, lit},
    },
    train::{
        RunConfig, ScalingConfig, Trainer, Verbosity,
        gbdt::{GbdtParams, GbdtTrainer, Objective},
    },
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Workload {
    Mlp,
    Gbdt,
}

/// Threads against processes for the MLP and GBDT.
#[derive(Debug, clap::Parser)]
struct Args {
    /// Rows of the synthetic table.
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// MLP batch size per worker.
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// GBDT rounds (depth 6, squared error).
    #[arg(long, default_value_t = 10)]
    rounds: usize,
    /// Worker counts.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
    workers: Vec<usize>,
    /// Run as one rank of this workload (set by the program itself; the rank comes from the
    /// torchrun-style variables).
    #[arg(long, value_enum)]
    child: Option<Workload>,
}

fn gbdt_table(rows: u64) -> Dataset {
    Dataset::from_polars(train_mlp::table(rows)).with_column(
        "y",
        (col("f0") * lit(2.0f32) + col("f1") - col("f2") * col("f3")).cast(DataType::Float32),
    )
}

/// Seconds inside `fit` for `workload` on `workers` workers (threads here, or this process's
/// rank when the variables say so).
fn fit_seconds(workload: Workload, args: &Args, workers: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().display().to_string();
    match workload {
        Workload::Mlp => {
            let df = train_mlp::table(args.rows);
            let start = Instant::now();
            train_mlp::trainer(&df, workers, args.batch, &storage, false);
            start.elapsed().as_secs_f64()
        }
        Workload::Gbdt => {
            let trainer = GbdtTrainer::new(
                "y",
                GbdtParams::new(Objective::SquaredError).with_max_depth(6),
                ScalingConfig::new(NonZeroUsize::new(workers).unwrap()),
                RunConfig::new(storage.as_str()).with_verbose(Verbosity::Silent),
            )
            .unwrap()
            .with_num_boost_round(args.rounds)
            .with_dataset(
                "train",
                gbdt_table(args.rows).drop_columns(&["cat_a", "cat_b"]),
            );
            let start = Instant::now();
            trainer.fit().unwrap().into_result().unwrap();
            start.elapsed().as_secs_f64()
        }
    }
}

/// Rank 0's seconds inside `fit` with `workers` processes.
fn across_processes(workload: Workload, args: &Args, workers: usize) -> f64 {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let me = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..workers)
        .map(|rank| {
            Command::new(&me)
                .args(["--child", &format!("{workload:?}").to_lowercase()])
                .args([
                    "--rows",
                    &args.rows.to_string(),
                    "--batch",
                    &args.batch.to_string(),
                ])
                .args(["--rounds", &args.rounds.to_string()])
                .env("RANK", rank.to_string())
                .env("WORLD_SIZE", workers.to_string())
                .env("MASTER_ADDR", "127.0.0.1")
                .env("MASTER_PORT", port.to_string())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    assert!(outputs.iter().all(|o| o.status.success()));
    String::from_utf8_lossy(&outputs[0].stdout)
        .lines()
        .find_map(|l| l.strip_prefix("SECONDS ")?.parse().ok())
        .unwrap()
}

fn print(workload: Workload, args: &Args, how: &str, workers: usize, seconds: f64) {
    let figure = match workload {
        Workload::Mlp => format!("{:>10.0} samples/s", args.rows as f64 / seconds),
        Workload::Gbdt => format!("{:>10.3} s/round", seconds / args.rounds as f64),
    };
    println!("{workload:?} {how:<10} {workers} worker(s): {seconds:>7.2} s  {figure}");
}

fn main() {
    let args: Args = clap::Parser::parse();
    if let Some(workload) = args.child {
        let world = std::env::var("WORLD_SIZE").unwrap().parse().unwrap();
        println!("SECONDS {}", fit_seconds(workload, &args, world));
        return;
    }
    println!(
        "{} rows; MLP batch {} per worker, 1 epoch; GBDT depth 6, {} rounds; {} cores",
        args.rows,
        args.batch,
        args.rounds,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    for workload in [Workload::Mlp, Workload::Gbdt] {
        for &workers in &args.workers {
            print(
                workload,
                &args,
                "threads",
                workers,
                fit_seconds(workload, &args, workers),
            );
            if workers > 1 {
                let s = across_processes(workload, &args, workers);
                print(workload, &args, "processes", workers, s);
            }
        }
    }
}
