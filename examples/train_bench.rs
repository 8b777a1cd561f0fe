//! Training throughput: the MLP of `benches/common/train_mlp.rs` for one epoch over the
//! synthetic table, as a bare burn loop and through the `DataParallelTrainer` with 1 and 2
//! workers; prints samples/s and the trainer's overhead over the bare loop.
//!
//! ```text
//! cargo run --release --example train_bench -- --rows 1000000 --batch 256
//! ```

#[path = "../benches/common/train_mlp.rs"]
mod train_mlp;

use std::time::Instant;

use anyhow::{Context, bail};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let (mut rows, mut batch, mut repeat) = (1_000_000u64, 256usize, 3usize);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--rows" => rows = Context::context(value()?.parse::<u64>(), "--rows")?,
            "--batch" => batch = Context::context(value()?.parse::<usize>(), "--batch")?,
            "--repeat" => repeat = Context::context(value()?.parse::<usize>(), "--repeat")?,
            other => bail!("unknown argument {other:?} (expected --rows N --batch N --repeat N)"),
        }
    }
    let df = train_mlp::table(rows);
    let dir = tempfile::tempdir()?;
    let storage = dir.path().display().to_string();
    println!("{rows} rows, batch {batch} per worker, 1 epoch, median of {repeat}");
    let time = |f: &dyn Fn() -> f32| {
        median(
            (0..repeat)
                .map(|_| {
                    let start = Instant::now();
                    let loss = f();
                    assert!(loss.is_finite());
                    start.elapsed().as_secs_f64()
                })
                .collect(),
        )
    };
    let bare = time(&|| train_mlp::bare(&df, batch));
    println!(
        "{:<36} {bare:>7.3} s {:>12.0} samples/s",
        "bare burn loop",
        rows as f64 / bare
    );
    for workers in [1, 2] {
        let t = time(&|| train_mlp::trainer(&df, workers, batch, &storage));
        println!(
            "{:<36} {t:>7.3} s {:>12.0} samples/s  ({:+.1}% vs bare)",
            format!("DataParallelTrainer, {workers} worker(s)"),
            rows as f64 / t,
            (t / bare - 1.0) * 100.0
        );
    }
    Ok(())
}
