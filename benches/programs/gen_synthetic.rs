//! Writes the deterministic synthetic benchmark table ([`air::data::synthetic`]) to parquet:
//! `--rows` rows of 20 float columns `f0..f19` and two string columns `cat_a` (8 levels) and
//! `cat_b` (50 levels). The same `--rows` and `--seed` always give the same file.
//!
//! ```text
//! cargo run --release --example gen_synthetic -- --rows 1000000 --out /tmp/synthetic.parquet
//! ```
//!
//! Rows are generated and written batch by batch, so memory stays small for any `--rows`. An
//! `--out` path ending in `.csv` gets CSV instead of parquet.

use std::time::Instant;

/// Writes the synthetic benchmark table (20 floats, two categoricals) to parquet or CSV.
#[derive(Debug, clap::Parser)]
struct Args {
    /// Rows to write.
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// The output file (`.csv` writes CSV, anything else parquet).
    #[arg(long)]
    out: String,
    /// The generator's seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn main() -> anyhow::Result<()> {
    let Args { rows, out, seed } = clap::Parser::parse();
    let start = Instant::now();
    let table = air::data::synthetic(rows, seed)?;
    let written = if out.ends_with(".csv") {
        table.write_csv(&out)?
    } else {
        table.write_parquet(&out)?
    };
    println!(
        "wrote {written} rows to {out} in {:.2} s ({} bytes)",
        start.elapsed().as_secs_f64(),
        std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0)
    );
    Ok(())
}
