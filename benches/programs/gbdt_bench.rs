//! Gradient boosting speed and memory on a synthetic table, next to XGBoost and LightGBM
//! (`benches/programs/gbdt_compare.py` runs them on the same file, with the same settings).
//!
//! ```text
//! cargo run --release --example gbdt_bench -- --rows 1000000 --features 20 --out /tmp/gbdt_1m.parquet
//! python3 benches/programs/gbdt_compare.py --input /tmp/gbdt_1m.parquet
//! RAYON_NUM_THREADS=1 cargo run --release --example gbdt_bench -- --rows 1000000 --skip-write
//! ```
//!
//! Tasks: regression (`reg:squarederror` on `y_reg`), binary classification
//! (`binary:logistic` on `y_bin`) and 5 classes (`multi:softprob` on `y_multi`); trees grown
//! depth-wise to depth 6 and leaf-wise to 63 leaves; eta 0.3, 256 bins. Seconds per round
//! include binning (as `xgb.train`'s time includes the DMatrix sketch), prediction is rows/s
//! on the training rows, and memory is the peak resident set while training, over the
//! process's size before it.

use std::time::Instant;

use air::{
    data::{Dataset, polars::prelude::*},
    train::gbdt::{BoostData, GbdtParams, Objective, train_gbdt},
};
use rand::{RngExt, SeedableRng, rngs::StdRng};

/// Boosting seconds per round, prediction rows/s and peak memory on a synthetic table.
#[derive(Debug, clap::Parser)]
struct Args {
    /// Rows of the synthetic table.
    #[arg(long, default_value_t = 1_000_000)]
    rows: usize,
    /// Float features.
    #[arg(long, default_value_t = 20)]
    features: usize,
    /// Boosting rounds.
    #[arg(long, default_value_t = 10)]
    rounds: usize,
    /// Where the table is written (for the Python comparison to read).
    #[arg(long, default_value = "/tmp/gbdt.parquet")]
    out: String,
    /// Do not write the table (it is already there).
    #[arg(long)]
    skip_write: bool,
    /// Tasks to run (reg, binary, multi; cat: a high-cardinality categorical column split
    /// natively next to one-hot columns).
    #[arg(long, value_delimiter = ',', default_value = "reg,binary,multi")]
    tasks: Vec<String>,
    /// Categories of the `cat` task's column.
    #[arg(long, default_value_t = 500)]
    categories: usize,
    /// Rows of the `cat` task.
    #[arg(long, default_value_t = 200_000)]
    cat_rows: usize,
}

/// The `cat` task: a column of `k` categories with random effects, plus 4 uniform features;
/// trained natively (category-set splits) and one-hot (one 0/1 column per category), 80/20
/// split, 20 rounds of depth 6. Prints s/round and held-out RMSE for each.
fn categorical_vs_onehot(rows: usize, k: usize) -> anyhow::Result<()> {
    let mut rng = StdRng::seed_from_u64(11);
    let effect: Vec<f32> = (0..k)
        .map(|_| rng.random::<f32>().mul_add(4.0, -2.0))
        .collect();
    let d = 5;
    let mut x = Vec::with_capacity(rows * d);
    let mut y = Vec::with_capacity(rows);
    for _ in 0..rows {
        let c = rng.random_range(0..k);
        let f: [f32; 4] = std::array::from_fn(|_| rng.random::<f32>());
        x.push(c as f32);
        x.extend_from_slice(&f);
        y.push(f[0].mul_add(f[1], effect[c]) + (rng.random::<f32>() - 0.5) / 5.0);
    }
    let train_rows = rows * 4 / 5;
    let onehot: Vec<f32> = x
        .chunks_exact(d)
        .flat_map(|r| {
            let mut row = vec![0.0f32; k + d - 1];
            row[r[0] as usize] = 1.0;
            row[k..].copy_from_slice(&r[1..]);
            row
        })
        .collect();
    println!("{rows} rows, a {k}-category column + 4 floats, 20 rounds, depth 6, 80/20 split");
    for (name, width, data, categorical) in [
        ("native categorical", d, &x, vec![0usize]),
        ("one-hot columns", k + d - 1, &onehot, Vec::new()),
    ] {
        let params = GbdtParams::new(Objective::SquaredError)
            .with_max_depth(6)
            .with_eta(0.3)
            .with_categorical_features(categorical);
        let train = BoostData {
            x: &data[..train_rows * width],
            rows: train_rows,
            y: &y[..train_rows],
        };
        let start = Instant::now();
        let model = train_gbdt(&params, train, &[], 20, |_| true)?;
        let train_s = start.elapsed().as_secs_f64();
        let test_rows = rows - train_rows;
        let p = model.predict(&data[train_rows * width..], test_rows)?;
        let rmse = (p
            .iter()
            .zip(&y[train_rows..])
            .map(|(a, b)| f64::from(a - b).powi(2))
            .sum::<f64>()
            / test_rows as f64)
            .sqrt();
        println!(
            "{name:<20} {width:>5} features   train {:>7.3} s/round   held-out rmse {rmse:.4}",
            train_s / 20.0
        );
    }
    Ok(())
}

/// A seeded table: features uniform in [0, 1), targets with interactions, a kink and noise.
fn table(rows: usize, d: usize) -> (Vec<f32>, [Vec<f32>; 3]) {
    let mut rng = StdRng::seed_from_u64(7);
    let x: Vec<f32> = (0..rows * d).map(|_| rng.random::<f32>()).collect();
    let mut y_reg = Vec::with_capacity(rows);
    for r in x.chunks_exact(d) {
        let at = |j: usize| r[j % d];
        let noise = rng.random::<f32>() - 0.5;
        let terms = [
            at(0) * at(1),
            2.0 * (at(2) - 0.5).abs(),
            at(3),
            -0.5 * at(4),
            (6.0 * at(5)).sin() * 0.3,
            0.3 * noise,
        ];
        y_reg.push(terms.into_iter().sum::<f32>());
    }
    let mut sorted = y_reg.clone();
    sorted.sort_by(f32::total_cmp);
    let q = |p: f64| sorted[((rows as f64 * p) as usize).min(rows - 1)];
    let (median, quintiles) = (q(0.5), [q(0.2), q(0.4), q(0.6), q(0.8)]);
    let y_bin = y_reg.iter().map(|v| f32::from(*v > median)).collect();
    let y_multi = y_reg
        .iter()
        .map(|v| quintiles.iter().filter(|t| v > t).count() as f32)
        .collect();
    (x, [y_reg, y_bin, y_multi])
}

fn write_table(path: &str, x: &[f32], d: usize, labels: &[Vec<f32>; 3]) -> anyhow::Result<()> {
    let mut columns: Vec<Column> = (0..d)
        .map(|j| {
            let col: Vec<f32> = x.chunks_exact(d).map(|r| r[j]).collect();
            Column::new(format!("f{j}").into(), col)
        })
        .collect();
    for (name, y) in ["y_reg", "y_bin", "y_multi"].into_iter().zip(labels) {
        columns.push(Column::new(name.into(), y.clone()));
    }
    Dataset::from_polars(DataFrame::new(x.len() / d, columns)?).write_parquet(path)?;
    Ok(())
}

/// Resident set size and its peak, in MiB (Linux `/proc/self/status`).
fn rss_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Starts a new peak: the kernel resets `VmHWM` to the current size.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn main() -> anyhow::Result<()> {
    let Args {
        rows,
        features: d,
        rounds,
        out,
        skip_write,
        tasks,
        categories,
        cat_rows,
    } = clap::Parser::parse();
    if tasks == ["cat"] {
        return categorical_vs_onehot(cat_rows, categories);
    }
    let (x, labels) = table(rows, d);
    if !skip_write {
        write_table(&out, &x, d, &labels)?;
    }
    println!(
        "{rows} rows × {d} features, {rounds} rounds, eta 0.3, max_bin 256, {} threads",
        rayon::current_num_threads()
    );
    for task in &tasks {
        let (y, objective) = match task.as_str() {
            "reg" => (&labels[0], Objective::SquaredError),
            "binary" => (&labels[1], Objective::BinaryLogistic),
            "multi" => (&labels[2], Objective::MultiSoftprob { num_class: 5 }),
            "cat" => {
                categorical_vs_onehot(cat_rows, categories)?;
                continue;
            }
            other => anyhow::bail!("unknown task {other:?}; expected reg, binary or multi"),
        };
        for (policy, params) in [
            ("depth 6", GbdtParams::new(objective).with_max_depth(6)),
            (
                "63 leaves",
                GbdtParams::new(objective)
                    .with_lossguide(63)
                    .with_max_depth(0),
            ),
        ] {
            let params = params.with_eta(0.3);
            let data = BoostData { x: &x, rows, y };
            reset_peak();
            let (before, _) = rss_mib();
            let start = Instant::now();
            let model = train_gbdt(&params, data, &[], rounds, |_| true)?;
            let train_s = start.elapsed().as_secs_f64();
            let (_, peak) = rss_mib();
            let start = Instant::now();
            let p = model.predict(&x, rows)?;
            let predict_s = start.elapsed().as_secs_f64();
            assert_eq!(p.len(), rows * objective.num_groups());
            println!(
                "{:<18} {:<10} train {:>7.3} s/round   predict {:>12.0} rows/s   peak +{:>6.0} MiB",
                objective.xgboost_name(),
                policy,
                train_s / rounds as f64,
                rows as f64 / predict_s,
                peak - before
            );
        }
    }
    Ok(())
}
