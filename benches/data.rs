//! Dataset operations on the synthetic table (20 floats + 2 strings), next to hand-written
//! polars where there is a direct equivalent.
//!
//! Rows default to 1,000,000; set `AIR_BENCH_DATA_ROWS` to choose. Run:
//! `cargo bench --bench data`. The `data_bench` example prints the same figures as rows/s for
//! any parquet file (`--input PATH`).

use std::{hint::black_box, num::NonZeroUsize};

use air::data::{Dataset, polars::prelude::*};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const BATCH: usize = 4096;

fn bench_data(c: &mut Criterion) {
    let rows: u64 = std::env::var("AIR_BENCH_DATA_ROWS")
        .map(|v| v.parse().expect("AIR_BENCH_DATA_ROWS is a row count"))
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("synthetic.parquet");
    let path = path.to_str().unwrap().to_owned();
    air::data::synthetic(rows, 0)
        .unwrap()
        .write_parquet(&path)
        .unwrap();
    let ds = Dataset::read_parquet(&path).unwrap();
    let floats: Vec<String> = (0..20).map(|j| format!("f{j}")).collect();
    let scan = || {
        LazyFrame::scan_parquet(PlRefPath::new(path.as_str()), ScanArgsParquet::default()).unwrap()
    };

    let mut g = c.benchmark_group("data");
    g.sample_size(10);
    g.throughput(Throughput::Elements(rows));
    g.bench_function("read", |b| b.iter(|| black_box(ds.to_polars().unwrap())));
    g.bench_function("read/polars", |b| {
        b.iter(|| black_box(scan().collect().unwrap()))
    });
    g.bench_function("iter_batches_4096", |b| {
        b.iter(|| {
            for batch in ds.iter_batches(BATCH).unwrap() {
                black_box(batch.unwrap());
            }
        })
    });
    g.bench_function("iter_batches_4096/polars", |b| {
        b.iter(|| {
            let batches = scan()
                .collect_batches(Engine::Streaming, true, NonZeroUsize::new(BATCH), false)
                .unwrap();
            for batch in batches {
                black_box(batch.unwrap());
            }
        })
    });
    g.bench_function("map_batches_identity_4096", |b| {
        b.iter(|| {
            let mapped = ds.map_batches(Ok::<DataFrame, PolarsError>, BATCH).unwrap();
            for batch in mapped.iter_batches(BATCH).unwrap() {
                black_box(batch.unwrap());
            }
        })
    });
    g.bench_function("random_shuffle", |b| {
        b.iter(|| black_box(ds.random_shuffle(Some(1)).to_polars().unwrap()))
    });
    g.bench_function("random_shuffle/polars", |b| {
        b.iter(|| {
            let df = scan().collect().unwrap();
            black_box(
                df.sample_n_literal(df.height(), false, Some(true), Some(1))
                    .unwrap(),
            )
        })
    });
    g.bench_function("train_test_split", |b| {
        b.iter(|| {
            let (train, test) = ds
                .train_test_split(air::data::TrainTestSplit::new(0.25).shuffle(1))
                .unwrap();
            black_box((train.to_polars().unwrap(), test.to_polars().unwrap()))
        })
    });
    g.bench_function("f32_matrix", |b| {
        b.iter(|| black_box(ds.to_f32_matrix(&floats).unwrap()))
    });
    g.finish();
}

criterion_group!(benches, bench_data);
criterion_main!(benches);
