//! The timing loop the data benchmark programs share: run a case `repeat` times, check it saw
//! every row, print and return the median.

use std::time::Instant;

/// Runs `f` `repeat` times (it returns the rows it saw, which must be `rows`), prints the
/// median time and rows/s under `name`, and returns the median in seconds.
pub(crate) fn median_time(
    name: &str,
    rows: usize,
    repeat: usize,
    mut f: impl FnMut() -> anyhow::Result<usize>,
) -> anyhow::Result<f64> {
    let mut times = Vec::with_capacity(repeat);
    for _ in 0..repeat.max(1) {
        let start = Instant::now();
        let n = f()?;
        times.push(start.elapsed().as_secs_f64());
        if n != rows {
            anyhow::bail!("{name}: {n} rows, expected {rows}");
        }
    }
    times.sort_by(f64::total_cmp);
    let t = times[times.len() / 2];
    println!("{name:<52} {t:>8.3} s {:>12.0} rows/s", rows as f64 / t);
    Ok(t)
}
