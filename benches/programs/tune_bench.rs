//! Tuner bookkeeping overhead: many trials of a trivial trainable, each reporting a few
//! results, with the per-trial loggers (`result.json`, `progress.csv`) on and off; or, with
//! `--trial-seconds`, trials that sleep, to measure overhead over the trials' own work.
//!
//! ```text
//! cargo run --release --example tune_bench -- --trials 10000 --results 10 --concurrency 2
//! cargo run --release --example tune_bench -- --trials 20 --results 10 --trial-seconds 1
//! ```
//!
//! The same workload for Ray Tune is `benches/programs/tune_ray.py`.

use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use air::{
    train::{RunConfig, Session, TrainError, Verbosity},
    tune::{Resources, TuneConfig, Tuner, space, uniform},
};
use anyhow::{Context, bail};
use serde_json::{Value, json};

/// The Tuner's bookkeeping overhead: trials/s and results/s of a trivial trainable.
#[derive(Debug, clap::Parser)]
struct Options {
    /// Trials.
    #[arg(long, default_value = "10000")]
    trials: NonZeroUsize,
    /// Results each trial reports.
    #[arg(long, default_value_t = 10)]
    results: u64,
    /// Trials at once.
    #[arg(long, default_value = "2")]
    concurrency: NonZeroUsize,
    /// Seconds each trial sleeps in all (spread over its results).
    #[arg(long, default_value_t = 0.0)]
    trial_seconds: f64,
    /// Result files (Ray's loggers) on, off, or both in turn.
    #[arg(long, value_enum, default_value_t = Loggers::Both)]
    loggers: Loggers,
    /// Where the experiments are written (default: a temporary directory).
    #[arg(long)]
    storage: Option<std::path::PathBuf>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// Which logger settings run.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Loggers {
    On,
    Off,
    Both,
}

fn main() -> anyhow::Result<()> {
    let o: Options = clap::Parser::parse();
    let logger_settings: &[bool] = match o.loggers {
        Loggers::On => &[true],
        Loggers::Off => &[false],
        Loggers::Both => &[true, false],
    };
    let temp = tempfile::tempdir()?;
    let dir = o.storage.as_deref().unwrap_or(temp.path());
    for &loggers in logger_settings {
        let results = o.results;
        let pause = Duration::from_secs_f64(o.trial_seconds / results.max(1) as f64);
        let trainable = move |_: &Value, session: &mut Session| {
            for i in 0..results {
                if !pause.is_zero() {
                    std::thread::sleep(pause);
                }
                session.report(json!({ "score": i }), None)?;
            }
            Ok::<(), TrainError>(())
        };
        let start = Instant::now();
        let grid = Tuner::new(trainable, space!({ "x": uniform(0.0, 1.0) }))
            .with_tune_config(
                TuneConfig::new()
                    .with_num_samples(o.trials)
                    .with_max_concurrent_trials(o.concurrency)
                    .with_total_resources(Resources::cpu(o.concurrency.get() as f64))
                    .with_result_files(loggers)
                    .with_seed(1),
            )
            .with_run_config(
                RunConfig::new(dir.to_str().context("utf-8 storage path")?)
                    .with_name(&format!("bench_{}", if loggers { "on" } else { "off" }))
                    .with_verbose(Verbosity::Silent),
            )
            .fit()?;
        let wall = start.elapsed().as_secs_f64();
        let reported: usize = grid.iter().map(|r| r.history.len()).sum();
        if grid.num_terminated() != o.trials.get() || reported != o.trials.get() * results as usize
        {
            bail!(
                "{} of {} trials finished with {reported} results",
                grid.num_terminated(),
                o.trials
            );
        }
        let ideal = o.trials.get() as f64 * o.trial_seconds / o.concurrency.get() as f64;
        print!(
            "loggers {:<3}: {} trials × {} results, {} concurrent: {wall:.2} s, {:.0} trials/s, {:.0} results/s",
            if loggers { "on" } else { "off" },
            o.trials,
            results,
            o.concurrency,
            o.trials.get() as f64 / wall,
            reported as f64 / wall
        );
        if ideal > 0.0 {
            print!(
                ", {:.1}% over the trials' own {ideal:.1} s",
                100.0 * (wall / ideal - 1.0)
            );
        }
        println!();
    }
    Ok(())
}
