//! Training throughput: the MLP of `benches/common/train_mlp.rs` for one epoch over the
//! synthetic table, as a bare burn loop and through the `DataParallelTrainer` with 1 and 2
//! workers; prints samples/s and the trainer's overhead over the bare loop.
//!
//! ```text
//! cargo run --release --example train_bench -- --rows 1000000 --batch 256 [--device cuda]
//! ```

#[path = "../common/device.rs"]
mod device;
#[path = "../common/train_mlp.rs"]
mod train_mlp;

use std::time::Instant;

use device::Device;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One epoch of the benchmark MLP, bare and through the trainer.
#[derive(Debug, clap::Parser)]
struct Args {
    /// Rows of the synthetic table.
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// Batch size per worker.
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Timed runs of each; the median is printed.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Where to train.
    #[arg(long, value_enum, default_value_t = Device::Cpu)]
    device: Device,
}

fn main() -> anyhow::Result<()> {
    let Args {
        rows,
        batch,
        repeat,
        device,
    } = clap::Parser::parse();
    let compute = device.compute()?;
    // One GPU: one worker on it.
    let worker_counts: &[usize] = match device {
        Device::Cpu => &[1, 2],
        Device::Cuda => &[1],
    };
    let df = train_mlp::table(rows);
    let dir = tempfile::tempdir()?;
    let storage = dir.path().display().to_string();
    println!("{rows} rows, batch {batch} per worker, 1 epoch, on {device:?}, median of {repeat}");
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
    let bare = time(&|| train_mlp::bare(&df, batch, compute));
    println!(
        "{:<36} {bare:>7.3} s {:>12.0} samples/s",
        "bare burn loop",
        rows as f64 / bare
    );
    for &workers in worker_counts {
        let use_gpu = matches!(device, Device::Cuda);
        let t = time(&|| train_mlp::trainer(&df, workers, batch, &storage, use_gpu));
        println!(
            "{:<36} {t:>7.3} s {:>12.0} samples/s  ({:+.1}% vs bare)",
            format!("DataParallelTrainer, {workers} worker(s)"),
            rows as f64 / t,
            (t / bare - 1.0) * 100.0
        );
    }
    Ok(())
}
