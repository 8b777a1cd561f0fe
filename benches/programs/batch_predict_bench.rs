//! BatchPredictor throughput on the synthetic table (20 float features), next to the model's
//! own predict (the limit) called on the whole frame and in a plain loop over batches: a GBDT (10 rounds, depth 6) and the tabular
//! starter's MLP (20→64→64→1, untrained weights — speed only), 1 and 2 scoring workers.
//!
//! ```text
//! cargo run --release --example batch_predict_bench -- --rows 1000000 --batch-size 16384 [--device cuda]
//! ```
//!
//! `--stream FILE` instead streams a parquet file written by `gen_synthetic` through the GBDT
//! (trained on `--rows` rows first) and prints the peak anonymous memory next to the file size.

#[path = "../common/device.rs"]
mod device;
#[path = "../../examples/common/tabular.rs"]
#[allow(dead_code)]
mod tabular;

use std::num::NonZeroUsize;
use std::{
    sync::{Arc, Mutex, PoisonError},
    time::Instant,
};

use air::{
    checkpoint::Checkpoint,
    data::{Dataset, polars::prelude::*, to_f32_matrix, to_f32_vector},
    serve::{BatchPredictor, PredictOptions, PredictorFactory, on_device},
    train::{
        ComputeDevice, FromCheckpoint, Predictor,
        burn::{BurnPredictor, ModelConfig, save_burn_model},
        gbdt::{BoostData, GBDT_MODEL_ENTRY, GbdtParams, GbdtPredictor, Objective, train_gbdt},
    },
};
use device::Device;
use tabular::MlpConfig;

/// Best of `reps` timings of `f`, seconds.
fn best_of(reps: usize, mut f: impl FnMut() -> anyhow::Result<usize>) -> anyhow::Result<f64> {
    let mut best = f64::INFINITY;
    for _ in 0..reps {
        let start = Instant::now();
        f()?;
        best = best.min(start.elapsed().as_secs_f64());
    }
    Ok(best)
}

/// BatchPredictor throughput next to the model's own predict.
#[derive(Debug, clap::Parser)]
struct Args {
    /// Rows of the synthetic table.
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// Rows per batch.
    #[arg(long, default_value_t = 16_384)]
    batch_size: usize,
    /// Stream this parquet file (written by `gen_synthetic`) through the GBDT instead.
    #[arg(long)]
    stream: Option<String>,
    /// Where the MLP predicts (the GBDT always runs on the CPU).
    #[arg(long, value_enum, default_value_t = Device::Cpu)]
    device: Device,
}

/// How the BatchPredictor runs: worker counts, and GPUs per worker.
struct Scoring<'a> {
    workers: &'a [usize],
    gpus_per_worker: usize,
}

fn bench(
    name: &str,
    checkpoint: &Checkpoint,
    direct: &dyn Predictor,
    factory: impl PredictorFactory + Clone,
    df: &DataFrame,
    batch_size: usize,
    scoring: &Scoring<'_>,
) -> anyhow::Result<()> {
    let rows = df.height() as f64;
    let whole = best_of(3, || Ok(direct.predict(df.clone())?.height()))?;
    println!(
        "{name:<6} model predict, whole frame in one call:        {:>11.0} rows/s",
        rows / whole
    );
    // The same model called batch by batch in a plain loop: no pipeline, no reordering.
    let looped = best_of(3, || {
        let mut n = 0;
        for offset in (0..df.height()).step_by(batch_size) {
            n += direct
                .predict(df.slice(offset as i64, batch_size))?
                .height();
        }
        Ok(n)
    })?;
    println!(
        "{name:<6} model predict, loop over batches of {batch_size:<7}: {:>11.0} rows/s",
        rows / looped
    );
    let ds = Dataset::from_polars(df.clone());
    let streamed = best_of(3, || {
        let mut n = 0;
        for batch in ds.iter_batches(batch_size)? {
            n += direct.predict(batch?)?.height();
        }
        Ok(n)
    })?;
    println!(
        "{name:<6} model predict, sequential over iter_batches:     {:>11.0} rows/s",
        rows / streamed
    );
    let limit = whole.min(looped);
    for &workers in scoring.workers {
        let bp = BatchPredictor::from_checkpoint(checkpoint.clone(), factory.clone());
        let options = PredictOptions::new()
            .with_batch_size(NonZeroUsize::new(batch_size).unwrap())
            .with_scoring_workers(
                NonZeroUsize::new(workers).unwrap(),
                NonZeroUsize::new(workers).unwrap(),
            )
            .with_num_gpus_per_worker(scoring.gpus_per_worker);
        let s = best_of(3, || Ok(bp.predict(&ds, &options)?.count()?))?;
        println!(
            "{name:<6} BatchPredictor, {workers} worker(s):                   {:>11.0} rows/s \
             ({:.0}% of the faster of the two)",
            rows / s,
            100.0 * limit / s
        );
    }
    Ok(())
}

/// Anonymous resident memory in MiB (heap; not the page cache of the input file).
fn rss_anon_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("RssAnon:"))?.to_owned();
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// Streams a parquet file through the GBDT with `predict_batches`, keeping only a count:
/// prints rows/s and the peak anonymous memory next to the file's size.
fn stream(path: &str, checkpoint: &Checkpoint, batch_size: usize) -> anyhow::Result<()> {
    let peak = Arc::new(Mutex::new(0.0f64));
    let p = Arc::clone(&peak);
    std::thread::spawn(move || {
        loop {
            let v = rss_anon_mib();
            let mut m = p.lock().unwrap_or_else(PoisonError::into_inner);
            *m = m.max(v);
            drop(m);
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    });
    let before = rss_anon_mib();
    let ds = Dataset::read_parquet(path)?;
    let bp = BatchPredictor::from_checkpoint(checkpoint.clone(), GbdtPredictor::from_checkpoint);
    let options = PredictOptions::new()
        .with_batch_size(NonZeroUsize::new(batch_size).unwrap())
        .with_feature_columns((0..20).map(|j| format!("f{j}")));
    let start = Instant::now();
    let mut rows = 0;
    for batch in bp.predict_batches(&ds, &options)? {
        rows += batch?.height();
    }
    let s = start.elapsed().as_secs_f64();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let peak = *peak.lock().unwrap_or_else(PoisonError::into_inner);
    println!(
        "streamed {rows} rows of {path} ({:.0} MiB on disk) in {s:.2} s ({:.0} rows/s): \
         anonymous memory {before:.0} MiB before, peak {peak:.0} MiB",
        std::fs::metadata(path)?.len() as f64 / (1 << 20) as f64,
        rows as f64 / s,
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let Args {
        rows,
        batch_size,
        stream: stream_path,
        device,
    } = clap::Parser::parse();
    let features: Vec<String> = (0..20).map(|j| format!("f{j}")).collect();
    let signal = col("f0") * col("f1") + col("f2").abs() * lit(2.0) + col("f3");
    let table = air::data::synthetic(rows, 7)?
        .with_column("y", signal.gt(lit(0.0)).cast(DataType::Float32))
        .to_polars()?;
    let df = table.select(features.iter().map(String::as_str))?;
    println!(
        "{rows} rows × 20 features, {} rayon threads",
        rayon::current_num_threads()
    );

    // GBDT: 10 rounds on the table itself.
    let x = to_f32_matrix(&table, &features)?;
    let y = to_f32_vector(&table, "y")?;
    let params = GbdtParams::new(Objective::BinaryLogistic).with_max_depth(6);
    let data = BoostData {
        x: &x.data,
        rows: x.rows,
        y: &y,
    };
    let mut model = train_gbdt(&params, data, &[], 10, |_| true)?;
    model.feature_names.clone_from(&features);
    let mut gbdt = Checkpoint::new();
    gbdt.put_json(GBDT_MODEL_ENTRY, &model)?;
    if let Some(path) = stream_path {
        drop((table, df, x, y));
        return stream(&path, &gbdt, batch_size);
    }
    let direct = GbdtPredictor::from_checkpoint(&gbdt)?;
    let cpu = Scoring {
        workers: &[1, 2],
        gpus_per_worker: 0,
    };
    bench(
        "GBDT",
        &gbdt,
        &direct,
        GbdtPredictor::from_checkpoint,
        &df,
        batch_size,
        &cpu,
    )?;

    let config = MlpConfig {
        num_features: 20,
        hidden: 64,
    };
    let mut mlp = Checkpoint::new();
    let cpu_device = ComputeDevice::Cpu.inference_device()?;
    save_burn_model(&config, &config.init(&cpu_device), &mut mlp)?;
    let compute = device.compute()?;
    let scoring = match device {
        Device::Cpu => cpu,
        // One GPU: one scoring worker on it.
        Device::Cuda => Scoring {
            workers: &[1],
            gpus_per_worker: 1,
        },
    };
    println!("MLP on {device:?}");
    let direct = BurnPredictor::<MlpConfig>::from_checkpoint_on(&mlp, compute)?;
    bench(
        "MLP",
        &mlp,
        &direct,
        on_device(BurnPredictor::<MlpConfig>::from_checkpoint_on),
        &df,
        batch_size,
        &scoring,
    )?;
    Ok(())
}
