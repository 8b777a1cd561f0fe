//! Training throughput on the synthetic table: the MLP of `common/train_mlp.rs` for one epoch,
//! as a bare burn loop and through the `DataParallelTrainer` with 1 and 2 workers.
//!
//! Rows default to 100,000; set `AIR_BENCH_TRAIN_ROWS` to choose. Run: `cargo bench --bench
//! train`. The `train_bench` example prints samples/s and the trainer's overhead.

#[path = "common/train_mlp.rs"]
mod train_mlp;

use air::train::ComputeDevice;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn bench_train(c: &mut Criterion) {
    let rows: u64 = std::env::var("AIR_BENCH_TRAIN_ROWS")
        .map(|v| v.parse().expect("AIR_BENCH_TRAIN_ROWS is a row count"))
        .unwrap_or(100_000);
    let df = train_mlp::table(rows);
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().display().to_string();
    let mut g = c.benchmark_group("train_epoch");
    g.sample_size(10);
    g.throughput(Throughput::Elements(rows));
    g.bench_function("bare_burn_loop", |b| {
        b.iter(|| train_mlp::bare(&df, 256, ComputeDevice::Cpu))
    });
    for workers in [1, 2] {
        g.bench_function(format!("trainer_{workers}_workers"), |b| {
            b.iter(|| train_mlp::trainer(&df, workers, 256, &storage, false));
        });
    }
    g.finish();
}

criterion_group!(benches, bench_train);
criterion_main!(benches);
