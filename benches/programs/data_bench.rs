//! Dataset throughput on a parquet file, next to the same operation written directly in polars.
//!
//! ```text
//! cargo run --release --example gen_synthetic -- --rows 1000000 --out /tmp/synthetic.parquet
//! cargo run --release --example data_bench -- --input /tmp/synthetic.parquet
//! cargo run --release --example data_bench -- --input /tmp/synthetic.parquet --only iter_batches
//! ```
//!
//! Each operation runs `--repeat` times (default 3) and the median is printed as rows/s. With
//! `--only OP` a single operation runs and the process's peak memory is printed (all resident
//! pages, and anonymous memory alone, sampled), so streaming (`iter_batches`) can be compared
//! with materialising (`read`) on the same file.
//! The float columns are those named `f0`, `f1`, ... in the file. A path ending in `.csv` is
//! read as CSV, anything else as parquet.

#[path = "../common/timing.rs"]
mod timing;

use std::sync::{Arc, Mutex};

use air::data::{Dataset, polars::prelude::*};
use anyhow::bail;
use timing::median_time;

const BATCH: usize = 4096;

struct Bench {
    input: String,
    repeat: usize,
    rows: usize,
    floats: Vec<String>,
}

impl Bench {
    fn run(&self, name: &str, f: impl FnMut() -> anyhow::Result<usize>) -> anyhow::Result<f64> {
        median_time(name, self.rows, self.repeat, f)
    }

    fn is_csv(&self) -> bool {
        self.input.ends_with(".csv")
    }

    fn lazy(&self) -> anyhow::Result<LazyFrame> {
        let path = PlRefPath::new(self.input.as_str());
        Ok(if self.is_csv() {
            LazyCsvReader::new(path).finish()?
        } else {
            LazyFrame::scan_parquet(path, ScanArgsParquet::default())?
        })
    }

    fn dataset(&self) -> anyhow::Result<Dataset> {
        Ok(if self.is_csv() {
            Dataset::read_csv(&self.input)?
        } else {
            Dataset::read_parquet(&self.input)?
        })
    }

    fn ours(&self, op: &str) -> anyhow::Result<f64> {
        let ds = self.dataset()?;
        match op {
            "read" => self.run("read (to_polars)", || Ok(ds.to_polars()?.height())),
            "count" => self.run("read + count", || Ok(self.dataset()?.count()?)),
            "iter_batches" => self.run("iter_batches(4096) full pass", || {
                let mut n = 0;
                for b in ds.iter_batches(BATCH)? {
                    n += b?.height();
                }
                Ok(n)
            }),
            "map_batches" => self.run("map_batches identity (4096)", || {
                let mapped = ds.map_batches(Ok::<DataFrame, PolarsError>, BATCH)?;
                let mut n = 0;
                for b in mapped.iter_batches(BATCH)? {
                    n += b?.height();
                }
                Ok(n)
            }),
            "random_shuffle" => self.run("random_shuffle", || {
                Ok(ds.random_shuffle(Some(1)).to_polars()?.height())
            }),
            "train_test_split" => self.run("train_test_split(0.25, shuffle)", || {
                let (train, test) =
                    ds.train_test_split(air::data::TrainTestSplit::new(0.25).shuffle(1))?;
                Ok(train.to_polars()?.height() + test.to_polars()?.height())
            }),
            "matrix" => self.run("f32 matrix (20 floats)", || {
                Ok(ds.to_f32_matrix(&self.floats)?.rows)
            }),
            other => bail!("unknown op {other:?}"),
        }
    }

    /// The same operations written by hand against polars.
    fn polars(&self, op: &str) -> anyhow::Result<f64> {
        match op {
            "read" => self.run("  polars: scan_parquet().collect()", || {
                Ok(self.lazy()?.collect()?.height())
            }),
            "count" => self.run("  polars: scan + select(len())", || {
                let df = self.lazy()?.select([len()]).collect()?;
                Ok(df
                    .column("len")?
                    .cast(&DataType::UInt64)?
                    .u64()?
                    .get(0)
                    .unwrap_or(0) as usize)
            }),
            // An identity map over streamed batches costs what streaming them costs, so both
            // operations compare with the same loop.
            "iter_batches" | "map_batches" => self.run("  polars: collect_batches(4096)", || {
                let mut n = 0;
                let batches = self.lazy()?.collect_batches(
                    Engine::Streaming,
                    true,
                    std::num::NonZeroUsize::new(BATCH),
                    false,
                )?;
                for b in batches {
                    n += b?.height();
                }
                Ok(n)
            }),
            "random_shuffle" => self.run("  polars: collect + sample_n(shuffle)", || {
                let df = self.lazy()?.collect()?;
                Ok(df
                    .sample_n_literal(df.height(), false, Some(true), Some(1))?
                    .height())
            }),
            "train_test_split" => self.run("  polars: collect + shuffle + slices", || {
                let df = self.lazy()?.collect()?;
                let df = df.sample_n_literal(df.height(), false, Some(true), Some(1))?;
                let test = df.height().div_ceil(4);
                let train = df.slice(0, df.height() - test);
                let test = df.slice((df.height() - test) as i64, test);
                Ok(train.height() + test.height())
            }),
            "matrix" => self.run("  polars: select + cast + loop", || {
                let cols: Vec<Expr> = self
                    .floats
                    .iter()
                    .map(|c| col(c.as_str()).cast(DataType::Float32))
                    .collect();
                let mut df = self.lazy()?.select(cols).collect()?;
                df.rechunk_mut_par();
                let (rows, ncols) = (df.height(), df.width());
                let mut out = vec![0f32; rows * ncols];
                for (j, c) in df.columns().iter().enumerate() {
                    let ca = c.f32()?;
                    for (i, v) in ca.into_no_null_iter().enumerate() {
                        out[i * ncols + j] = v;
                    }
                }
                Ok(out.len() / ncols)
            }),
            other => bail!("unknown op {other:?}"),
        }
    }
}

/// A field of /proc/self/status in MiB (Linux only).
fn status_mib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Samples anonymous resident memory (heap; excludes the page cache of memory-mapped input
/// files, which the kernel can drop at will) every 5 ms and keeps the maximum.
fn track_peak_anon() -> Arc<Mutex<f64>> {
    let peak = Arc::new(Mutex::new(0.0f64));
    let p = peak.clone();
    std::thread::spawn(move || {
        loop {
            if let Some(v) = status_mib("RssAnon:") {
                let mut m = p.lock().unwrap();
                *m = m.max(v);
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    });
    peak
}

/// Dataset operations on a parquet file next to hand-written polars, rows/s.
#[derive(Debug, clap::Parser)]
struct Args {
    /// The parquet file (make one with the gen_synthetic program).
    #[arg(long)]
    input: String,
    /// Timed runs of each operation; the median is printed.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Only this operation (`iter_batches` also prints peak memory).
    #[arg(long)]
    only: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let Args {
        input,
        repeat,
        only,
    } = clap::Parser::parse();
    let bench = Bench {
        input,
        repeat: repeat.max(1),
        rows: 0,
        floats: Vec::new(),
    };
    let ds = bench.dataset()?;
    let rows = ds.count()?;
    let floats: Vec<String> = ds
        .columns()?
        .into_iter()
        .filter(|c| c.starts_with('f') && c[1..].parse::<u32>().is_ok())
        .collect();
    println!(
        "{}: {rows} rows, {} columns ({} floats); {} threads",
        bench.input,
        ds.schema()?.len(),
        floats.len(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let bench = Bench {
        rows,
        floats,
        ..bench
    };
    if let Some(op) = only {
        let peak_anon = track_peak_anon();
        bench.ours(&op)?;
        println!(
            "peak RSS: {:.0} MiB (all resident pages, mapped input included); peak anonymous: {:.0} MiB",
            status_mib("VmHWM:").unwrap_or(f64::NAN),
            *peak_anon.lock().unwrap()
        );
        return Ok(());
    }
    for op in [
        "count",
        "read",
        "iter_batches",
        "map_batches",
        "random_shuffle",
        "train_test_split",
        "matrix",
    ] {
        let ours = bench.ours(op)?;
        let theirs = bench.polars(op)?;
        println!(
            "  -> ours / hand-written polars time: {:.2}x",
            ours / theirs
        );
    }
    Ok(())
}
