//! All-reduce latency and bandwidth: `TcpCollective` across 2–4 processes on loopback next to
//! `LocalCollective` across as many threads, for 1 KB, 1 MB and 64 MB of `f32` (a mean, as
//! gradient sync does).
//!
//! ```text
//! cargo run --release -p air-train --example collective_bench
//! ```
//!
//! The program re-runs itself as each rank (`--rank R --world N --port P`).

use std::{
    net::TcpListener,
    process::Command,
    sync::Arc,
    thread,
    time::{Duration, Instant},
};

use air_train::{
    Collective, LocalCollective,
    cluster::{ProcessEnv, TcpCollective},
};
use clap::Parser;

#[derive(Debug, Parser)]
struct Args {
    /// Run as this rank (set by the program itself).
    #[arg(long)]
    rank: Option<usize>,
    #[arg(long, default_value_t = 2)]
    world: usize,
    #[arg(long, default_value_t = 0)]
    port: u16,
}

/// (label, f32 values, repetitions).
const SIZES: [(&str, usize, usize); 3] = [
    ("1 KB", 256, 2000),
    ("1 MB", 262_144, 50),
    ("64 MB", 16_777_216, 3),
];

/// Seconds per all-reduce of each size, on `rank` of `c` (after one warm-up each).
fn measure(c: &dyn Collective, rank: usize) -> Vec<f64> {
    SIZES
        .iter()
        .map(|(_, n, reps)| {
            let mut v = vec![rank as f32; *n];
            c.all_reduce_mean(rank, &mut v).unwrap();
            c.barrier(rank).unwrap();
            let start = Instant::now();
            for _ in 0..*reps {
                c.all_reduce_mean(rank, &mut v).unwrap();
            }
            start.elapsed().as_secs_f64() / *reps as f64
        })
        .collect()
}

fn print(kind: &str, world: usize, seconds: &[f64]) {
    for ((label, n, _), s) in SIZES.iter().zip(seconds) {
        let mb = (*n * 4) as f64 / 1e6;
        println!(
            "{kind:<28} {world} ranks  {label:>6}: {:>10.1} µs  {:>8.1} MB/s per rank",
            s * 1e6,
            mb / s
        );
    }
}

fn child(rank: usize, world: usize, port: u16) {
    let env = ProcessEnv::from_vars(|name| match name {
        "RANK" => Some(rank.to_string()),
        "WORLD_SIZE" => Some(world.to_string()),
        "MASTER_ADDR" => Some("127.0.0.1".to_owned()),
        "MASTER_PORT" => Some(port.to_string()),
        _ => None,
    })
    .unwrap()
    .unwrap();
    let c = TcpCollective::connect(&env, Duration::from_secs(30)).unwrap();
    let seconds = measure(&c, rank);
    c.finish(rank).unwrap();
    if rank == 0 {
        print("TcpCollective (processes)", world, &seconds);
    }
}

fn main() {
    let args = Args::parse();
    if let Some(rank) = args.rank {
        child(rank, args.world, args.port);
        return;
    }
    for world in 2..=4 {
        let local = Arc::new(LocalCollective::new(world));
        let seconds: Vec<Vec<f64>> = (0..world)
            .map(|r| {
                let c = local.clone();
                thread::spawn(move || measure(&*c, r))
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect();
        print("LocalCollective (threads)", world, &seconds[0]);
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let me = std::env::current_exe().unwrap();
        let children: Vec<_> = (0..world)
            .map(|r| {
                Command::new(&me)
                    .args(["--rank", &r.to_string(), "--world", &world.to_string()])
                    .args(["--port", &port.to_string()])
                    .spawn()
                    .unwrap()
            })
            .collect();
        for mut c in children {
            assert!(c.wait().unwrap().success());
        }
    }
}
