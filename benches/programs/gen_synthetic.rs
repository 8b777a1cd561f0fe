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

use anyhow::{Context, bail};

fn main() -> anyhow::Result<()> {
    let mut rows: u64 = 1_000_000;
    let mut out = None;
    let mut seed: u64 = 0;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--rows" => rows = value()?.parse().context("--rows")?,
            "--out" => out = Some(value()?),
            "--seed" => seed = value()?.parse().context("--seed")?,
            other => bail!("unknown argument {other:?} (expected --rows N --out PATH [--seed S])"),
        }
    }
    let out = out.context("--out PATH is required")?;
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
