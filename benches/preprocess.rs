//! Preprocessors on the synthetic table (fit + transform, materialised), next to the same work
//! as hand-written polars expressions for the simplest case.
//!
//! Rows default to 1,000,000; set `AIR_BENCH_DATA_ROWS` to choose. Run:
//! `cargo bench --bench preprocess`. The `preprocess_bench` example prints rows/s for any file
//! with the synthetic table's columns, and `benches/programs/preprocess_sklearn.py` the same operations
//! with scikit-learn and pandas.

use std::hint::black_box;

use air::data::{
    Chain, Concatenator, Dataset, MinMaxScaler, OneHotEncoder, Preprocessor, StandardScaler,
    polars::prelude::*,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn floats(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|j| format!("f{j}")).collect()
}

fn bench_preprocess(c: &mut Criterion) {
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
    let all = floats(0..20);

    let mut g = c.benchmark_group("preprocess");
    g.sample_size(10);
    g.throughput(Throughput::Elements(rows));
    g.bench_function("standard_scaler_fit_transform", |b| {
        b.iter(|| {
            let mut p = StandardScaler::new(&all);
            black_box(p.fit_transform(&ds).unwrap().to_polars().unwrap())
        })
    });
    g.bench_function("standard_scaler_fit_transform/polars", |b| {
        b.iter(|| {
            let lf =
                LazyFrame::scan_parquet(PlRefPath::new(path.as_str()), Default::default()).unwrap();
            let stats = lf
                .clone()
                .select(
                    all.iter()
                        .flat_map(|c| {
                            [
                                col(c.as_str()).mean().alias(format!("m{c}")),
                                col(c.as_str()).std(0).alias(format!("s{c}")),
                            ]
                        })
                        .collect::<Vec<_>>(),
                )
                .collect()
                .unwrap();
            let get = |n: String| stats.column(&n).unwrap().f64().unwrap().get(0).unwrap();
            let out = lf
                .with_columns(
                    all.iter()
                        .map(|c| {
                            ((col(c.as_str()) - lit(get(format!("m{c}"))))
                                / lit(get(format!("s{c}"))))
                            .alias(c.as_str())
                        })
                        .collect::<Vec<_>>(),
                )
                .collect()
                .unwrap();
            black_box(out)
        })
    });
    g.bench_function("min_max_scaler_fit_transform", |b| {
        b.iter(|| {
            let mut p = MinMaxScaler::new(&all);
            black_box(p.fit_transform(&ds).unwrap().to_polars().unwrap())
        })
    });
    g.bench_function("one_hot_encoder_fit_transform", |b| {
        b.iter(|| {
            let mut p = OneHotEncoder::new(["cat_a", "cat_b"]);
            black_box(p.fit_transform(&ds).unwrap().to_polars().unwrap())
        })
    });
    g.bench_function("concatenator_f32", |b| {
        b.iter(|| {
            let p = Concatenator::new().with_include(&all);
            black_box(p.transform(&ds).unwrap().to_polars().unwrap())
        })
    });
    g.bench_function("chain_fit_transform", |b| {
        b.iter(|| {
            let mut chain = Chain::new(vec![
                Box::new(StandardScaler::new(floats(0..10))),
                Box::new(MinMaxScaler::new(floats(10..20))),
                Box::new(OneHotEncoder::new(["cat_a", "cat_b"])),
                Box::new(Concatenator::new()),
            ]);
            black_box(chain.fit_transform(&ds).unwrap().to_polars().unwrap())
        })
    });
    g.finish();
}

criterion_group!(benches, bench_preprocess);
criterion_main!(benches);
