//! BatchPredictor throughput on the synthetic table (20 float features), next to the model's
//! own predict (the limit) called on the whole frame and in a plain loop over batches: a GBDT (10 rounds, depth 6) and the tabular
//! starter's MLP (20→64→64→1, untrained weights — speed only), 1 and 2 scoring workers.
//!
//! ```text
//! cargo run --release --example batch_predict_bench -- --rows 1000000 --batch-size 65536
//! ```

#[path = "common/tabular.rs"]
#[allow(dead_code)]
mod tabular;

use std::time::Instant;

use air::{
    checkpoint::Checkpoint,
    data::{Dataset, polars::prelude::*, to_f32_matrix, to_f32_vector},
    serve::{BatchPredictor, PredictOptions, PredictorFactory},
    train::{
        BoostData, BurnPredictor, ComputeDevice, FromCheckpoint, GBDT_MODEL_ENTRY, GbdtParams,
        GbdtPredictor, ModelConfig, Objective, Predictor, save_burn_model, train_gbdt,
    },
};
use anyhow::{Context, bail};
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

fn bench(
    name: &str,
    checkpoint: &Checkpoint,
    direct: &dyn Predictor,
    factory: impl PredictorFactory + Clone,
    df: &DataFrame,
    batch_size: usize,
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
            n += direct.predict(df.slice(offset as i64, batch_size))?.height();
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
    for workers in [1, 2] {
        let bp = BatchPredictor::from_checkpoint(checkpoint.clone(), factory.clone());
        let options = PredictOptions::new()
            .with_batch_size(batch_size)?
            .with_scoring_workers(workers, workers)?;
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

fn main() -> anyhow::Result<()> {
    let (mut rows, mut batch_size) = (1_000_000u64, 65_536usize);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--rows" => rows = value()?.parse()?,
            "--batch-size" => batch_size = value()?.parse()?,
            other => bail!("unknown argument {other:?} (expected --rows N --batch-size N)"),
        }
    }
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
    let params = GbdtParams::new(Objective::BinaryLogistic).with_max_depth(6)?;
    let data = BoostData {
        x: &x.data,
        rows: x.rows,
        y: &y,
    };
    let mut model = train_gbdt(&params, data, &[], 10, |_| true)?;
    model.feature_names.clone_from(&features);
    let mut gbdt = Checkpoint::new();
    gbdt.put_json(GBDT_MODEL_ENTRY, &model)?;
    let direct = GbdtPredictor::from_checkpoint(&gbdt)?;
    bench("GBDT", &gbdt, &direct, GbdtPredictor::from_checkpoint, &df, batch_size)?;

    let config = MlpConfig {
        num_features: 20,
        hidden: 64,
    };
    let device = ComputeDevice::Cpu.inference_device()?;
    let mut mlp = Checkpoint::new();
    save_burn_model(&config, &config.init(&device), &mut mlp)?;
    let direct = BurnPredictor::<MlpConfig>::from_checkpoint(&mlp)?;
    bench(
        "MLP",
        &mlp,
        &direct,
        BurnPredictor::<MlpConfig>::from_checkpoint,
        &df,
        batch_size,
    )?;
    Ok(())
}
