//! The deterministic synthetic table the benchmarks use.

use polars::prelude::*;
use rand::{RngExt, SeedableRng, rngs::StdRng};

use crate::{Dataset, Result};

const BATCH: usize = 65_536;

/// A lazily generated table of `rows` rows: 20 float columns `f0..f19` (uniform in [0, 1)) and
/// two string columns, `cat_a` (8 levels `a0..a7`) and `cat_b` (50 levels `b00..b49`). The same
/// `rows` and `seed` always give the same table, batch by batch, so it can be written to a file
/// of any size with little memory.
///
/// ```
/// let ds = air_data::synthetic(1000, 0)?;
/// assert_eq!(ds.count()?, 1000);
/// assert_eq!(ds.schema()?.len(), 22);
/// # Ok::<(), air_data::DataError>(())
/// ```
pub fn synthetic(rows: u64, seed: u64) -> Result<Dataset> {
    Dataset::range(rows).map_batches(move |ids: DataFrame| generate(&ids, seed), BATCH)
}

/// One batch, seeded by its first row id so the output does not depend on scheduling.
fn generate(ids: &DataFrame, seed: u64) -> PolarsResult<DataFrame> {
    let n = ids.height();
    let first = ids.column("id")?.i64()?.get(0).unwrap_or(0);
    let first = u64::try_from(first).unwrap_or(0);
    let mut rng = StdRng::seed_from_u64(seed ^ first.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut columns: Vec<Column> = (0..20)
        .map(|j| {
            let values: Vec<f64> = (0..n).map(|_| rng.random::<f64>()).collect();
            Column::new(format!("f{j}").into(), values)
        })
        .collect();
    let cat_a: Vec<String> = (0..n)
        .map(|_| format!("a{}", rng.random_range(0..8u32)))
        .collect();
    let cat_b: Vec<String> = (0..n)
        .map(|_| format!("b{:02}", rng.random_range(0..50u32)))
        .collect();
    columns.push(Column::new("cat_a".into(), cat_a));
    columns.push(Column::new("cat_b".into(), cat_b));
    DataFrame::new(n, columns)
}
