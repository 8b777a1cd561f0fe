//! Tuner bookkeeping: 200 trials of a trivial trainable reporting 10 results each, 2 at a
//! time, with the per-trial loggers on and off (`benches/programs/tune_bench.rs` runs the full
//! 10,000-trial workload and prints trials/s and results/s).

use air::{
    train::{RunConfig, Session, TrainError, Verbosity},
    tune::{Resources, TuneConfig, Tuner, space, uniform},
};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use std::num::NonZeroUsize;

fn experiment(dir: &std::path::Path, name: &str, loggers: bool) {
    let trainable = |_: &Value, session: &mut Session| {
        for i in 0..10 {
            session.report(json!({ "score": i }), None)?;
        }
        Ok::<(), TrainError>(())
    };
    let grid = Tuner::new(trainable, space!({ "x": uniform(0.0, 1.0) }))
        .with_tune_config(
            TuneConfig::new()
                .with_num_samples(NonZeroUsize::new(200).unwrap())
                .with_max_concurrent_trials(NonZeroUsize::new(2).unwrap())
                .with_total_resources(Resources::cpu(2.0))
                .with_result_files(loggers),
        )
        .with_run_config(
            RunConfig::new(dir.to_str().unwrap())
                .with_name(name)
                .with_verbose(Verbosity::Silent),
        )
        .fit()
        .unwrap();
    assert_eq!(grid.num_terminated(), 200);
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut g = c.benchmark_group("tune_200x10");
    g.sample_size(10);
    let mut n = 0;
    for loggers in [true, false] {
        g.bench_function(if loggers { "loggers_on" } else { "loggers_off" }, |b| {
            b.iter(|| {
                n += 1;
                experiment(dir.path(), &format!("run{n}"), loggers);
            });
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
