//! Gradient boosting speed on the synthetic table (20 float features), next to XGBoost
//! (`benches/programs/gbdt_xgboost.py` runs `tree_method=hist` on the same file).
//!
//! ```text
//! cargo run --release --example gbdt_bench -- --rows 1000000 --rounds 10 --out /tmp/gbdt.parquet
//! python3 benches/programs/gbdt_xgboost.py --input /tmp/gbdt.parquet --rounds 10
//! ```
//!
//! Tasks: regression on `y_reg` (reg:squarederror) and classification on `y_bin`
//! (binary:logistic); max_depth 6, eta 0.3, max_bin 256. Prints seconds per round and
//! prediction rows/s.

use std::time::Instant;

use air::{
    data::{Dataset, polars::prelude::*, to_f32_matrix, to_f32_vector},
    train::gbdt::{BoostData, GbdtParams, Objective, train_gbdt},
};

/// Boosting seconds per round and prediction rows/s on a synthetic table.
#[derive(Debug, clap::Parser)]
struct Args {
    /// Rows of the synthetic table.
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// Boosting rounds.
    #[arg(long, default_value_t = 10)]
    rounds: usize,
    /// Where the table is written (for the Python comparison to read).
    #[arg(long, default_value = "/tmp/gbdt.parquet")]
    out: String,
}

fn main() -> anyhow::Result<()> {
    let Args { rows, rounds, out } = clap::Parser::parse();
    // Targets with an interaction and a kink, so trees have work to do.
    let signal =
        col("f0") * col("f1") + col("f2").abs() * lit(2.0) + col("f3") - col("f4") * lit(0.5);
    Dataset::from_polars(
        air::data::synthetic(rows, 7)?
            .with_column("y_reg", signal.clone())
            .with_column("y_bin", signal.gt(lit(0.0)).cast(DataType::Float32))
            .drop_columns(&["cat_a", "cat_b"])
            .to_polars()?,
    )
    .write_parquet(&out)?;
    let df = Dataset::read_parquet(&out)?.to_polars()?;
    let features: Vec<String> = (0..20).map(|j| format!("f{j}")).collect();
    let x = to_f32_matrix(&df, &features)?;
    println!(
        "{rows} rows × 20 features, {rounds} rounds, depth 6, max_bin 256, {} threads",
        rayon::current_num_threads()
    );
    for (label, objective) in [
        ("y_reg", Objective::SquaredError),
        ("y_bin", Objective::BinaryLogistic),
    ] {
        let y = to_f32_vector(&df, label)?;
        let params = GbdtParams::new(objective).with_max_depth(6).with_eta(0.3);
        let data = BoostData {
            x: &x.data,
            rows: x.rows,
            y: &y,
        };
        let start = Instant::now();
        let model = train_gbdt(&params, data, &[], rounds, |_| true)?;
        let train_s = start.elapsed().as_secs_f64();
        let start = Instant::now();
        let p = model.predict(&x.data, x.rows)?;
        let predict_s = start.elapsed().as_secs_f64();
        assert_eq!(p.len(), x.rows);
        println!(
            "{:<18} train {:>7.3} s/round   predict {:>12.0} rows/s",
            objective.xgboost_name(),
            train_s / rounds as f64,
            x.rows as f64 / predict_s
        );
    }
    Ok(())
}
