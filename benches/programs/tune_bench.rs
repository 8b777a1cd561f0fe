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

use std::time::{Duration, Instant};

use air::{
    train::{RunConfig, Session, TrainError, Verbosity},
    tune::{Resources, TuneConfig, Tuner, space, uniform},
};
use anyhow::{Context, bail};
use serde_json::{Value, json};

struct Options {
    trials: usize,
    results: u64,
    concurrency: usize,
    trial_seconds: f64,
    loggers: Vec<bool>,
}

fn main() -> anyhow::Result<()> {
    let mut o = Options {
        trials: 10_000,
        results: 10,
        concurrency: 2,
        trial_seconds: 0.0,
        loggers: vec![true, false],
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--trials" => o.trials = value()?.parse()?,
            "--results" => o.results = value()?.parse()?,
            "--concurrency" => o.concurrency = value()?.parse()?,
            "--trial-seconds" => o.trial_seconds = value()?.parse()?,
            "--loggers" => {
                o.loggers = match value()?.as_str() {
                    "on" => vec![true],
                    "off" => vec![false],
                    "both" => vec![true, false],
                    other => bail!("--loggers takes on, off or both, not {other:?}"),
                }
            }
            "--bench" => {} // passed by `cargo bench`
            other => bail!(
                "unknown argument {other:?} (expected --trials N --results N --concurrency N \
                 --trial-seconds S --loggers on|off|both)"
            ),
        }
    }
    let dir = tempfile::tempdir()?;
    for loggers in o.loggers.clone() {
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
                    .with_num_samples(o.trials)?
                    .with_max_concurrent_trials(o.concurrency)?
                    .with_total_resources(Resources::cpu(o.concurrency as f64))?
                    .with_result_files(loggers)
                    .with_seed(1),
            )
            .with_run_config(
                RunConfig::new(dir.path().to_str().context("utf-8 temp dir")?)
                    .with_name(&format!("bench_{}", if loggers { "on" } else { "off" }))
                    .with_verbose(Verbosity::Silent),
            )
            .fit()?;
        let wall = start.elapsed().as_secs_f64();
        let reported: usize = grid.iter().map(|r| r.history.len()).sum();
        if grid.num_terminated() != o.trials || reported != o.trials * results as usize {
            bail!(
                "{} of {} trials finished with {reported} results",
                grid.num_terminated(),
                o.trials
            );
        }
        let ideal = o.trials as f64 * o.trial_seconds / o.concurrency as f64;
        print!(
            "loggers {:<3}: {} trials × {} results, {} concurrent: {wall:.2} s, {:.0} trials/s, {:.0} results/s",
            if loggers { "on" } else { "off" },
            o.trials,
            results,
            o.concurrency,
            o.trials as f64 / wall,
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
