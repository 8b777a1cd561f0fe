//! Preprocessor throughput (fit + transform, materialised) on a parquet file, next to the same
//! work written by hand as polars expressions.
//!
//! ```text
//! cargo run --release --example gen_synthetic -- --rows 1000000 --out /tmp/synthetic.parquet
//! cargo run --release --example preprocess_bench -- --input /tmp/synthetic.parquet
//! ```
//!
//! With `--in-memory` the file is loaded first and the timings leave the reading out.
//! Expects the synthetic table's columns: floats `f0..f19`, strings `cat_a` and `cat_b`.
//! `benches/programs/preprocess_sklearn.py` runs the same operations with scikit-learn and pandas.

#[path = "../common/timing.rs"]
mod timing;

use timing::median_time;

use air::data::{
    Chain, Concatenator, Dataset, MinMaxScaler, OneHotEncoder, Preprocessor, StandardScaler,
    polars::prelude::*,
};

fn floats(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|j| format!("f{j}")).collect()
}

fn collect(lf: LazyFrame) -> anyhow::Result<DataFrame> {
    Ok(lf.collect()?)
}

/// Hand-written polars: standardise `cols` (population std, zero std -> 1).
fn polars_standard(lf: LazyFrame, cols: &[String]) -> anyhow::Result<LazyFrame> {
    let stats = collect(
        lf.clone().select(
            cols.iter()
                .flat_map(|c| {
                    [
                        col(c.as_str()).mean().alias(format!("m{c}")),
                        col(c.as_str()).std(0).alias(format!("s{c}")),
                    ]
                })
                .collect::<Vec<_>>(),
        ),
    )?;
    let get = |n: String| stats.column(&n).unwrap().f64().unwrap().get(0).unwrap();
    Ok(lf.with_columns(
        cols.iter()
            .map(|c| {
                let s = get(format!("s{c}"));
                ((col(c.as_str()) - lit(get(format!("m{c}"))))
                    / lit(if s == 0.0 { 1.0 } else { s }))
                .alias(c.as_str())
            })
            .collect::<Vec<_>>(),
    ))
}

fn polars_min_max(lf: LazyFrame, cols: &[String]) -> anyhow::Result<LazyFrame> {
    let stats = collect(
        lf.clone().select(
            cols.iter()
                .flat_map(|c| {
                    [
                        col(c.as_str()).min().alias(format!("lo{c}")),
                        col(c.as_str()).max().alias(format!("hi{c}")),
                    ]
                })
                .collect::<Vec<_>>(),
        ),
    )?;
    let get = |n: String| stats.column(&n).unwrap().f64().unwrap().get(0).unwrap();
    Ok(lf.with_columns(
        cols.iter()
            .map(|c| {
                let (lo, hi) = (get(format!("lo{c}")), get(format!("hi{c}")));
                let range = if hi > lo { hi - lo } else { 1.0 };
                ((col(c.as_str()) - lit(lo)) / lit(range)).alias(c.as_str())
            })
            .collect::<Vec<_>>(),
    ))
}

fn polars_one_hot(lf: LazyFrame, cols: &[&str]) -> anyhow::Result<LazyFrame> {
    let mut exprs = Vec::new();
    for c in cols {
        let cats = collect(
            lf.clone()
                .select([col(*c).unique().sort(Default::default())]),
        )?;
        for v in cats.column(c)?.str()?.iter().flatten() {
            exprs.push(
                col(*c)
                    .eq(lit(v))
                    .cast(DataType::Int64)
                    .alias(format!("{c}_{v}")),
            );
        }
    }
    Ok(lf
        .with_columns(exprs)
        .drop(by_name(cols.iter().copied(), true, false)))
}

fn polars_concat(lf: LazyFrame, cols: &[String]) -> anyhow::Result<LazyFrame> {
    let parts: Vec<Expr> = cols
        .iter()
        .map(|c| col(c.as_str()).cast(DataType::Float32))
        .collect();
    Ok(lf
        .with_column(
            concat_list(parts)?
                .cast(DataType::Array(Box::new(DataType::Float32), cols.len()))
                .alias("concat_out"),
        )
        .drop(by_name(cols.iter().map(String::as_str), true, false)))
}

/// Preprocessors' fit + transform on a parquet file next to hand-written polars.
#[derive(Debug, clap::Parser)]
struct Args {
    /// The parquet file (make one with the gen_synthetic program).
    #[arg(long)]
    input: String,
    /// Timed runs of each; the median is printed.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Read the file once and time the preprocessors on the frame in memory.
    #[arg(long)]
    in_memory: bool,
    /// Time only our preprocessors (the hand-written concatenations take seconds).
    #[arg(long)]
    ours_only: bool,
}

fn main() -> anyhow::Result<()> {
    let Args {
        input,
        repeat,
        in_memory,
        ours_only,
    } = clap::Parser::parse();
    let mut ds = Dataset::read_parquet(&input)?;
    let rows = ds.count()?;
    let loaded = if in_memory {
        let df = ds.to_polars()?;
        ds = Dataset::from_polars(df.clone());
        Some(df)
    } else {
        None
    };
    let scan = || -> anyhow::Result<LazyFrame> {
        Ok(match &loaded {
            Some(df) => df.clone().lazy(),
            None => {
                LazyFrame::scan_parquet(PlRefPath::new(input.as_str()), ScanArgsParquet::default())?
            }
        })
    };
    let all = floats(0..20);
    println!(
        "{input}: {rows} rows; fit + transform, materialised; {}; median of {repeat}",
        if in_memory {
            "data already in memory"
        } else {
            "reading the file included"
        }
    );

    // What the parquet decoder alone costs: every case reads at least this much.
    if !in_memory {
        median_time("read only: every column", rows, repeat, || {
            Ok(collect(scan()?)?.height())
        })?;
        median_time("read only: the 20 float columns", rows, repeat, || {
            Ok(
                collect(scan()?.select(all.iter().map(|c| col(c.as_str())).collect::<Vec<_>>()))?
                    .height(),
            )
        })?;
    }

    // Each case: ours (a fresh preprocessor, fit + transform) next to the same work in polars.
    let compare = |name: &'static str,
                   make: &dyn Fn() -> Box<dyn Preprocessor>,
                   by_hand: &dyn Fn() -> anyhow::Result<usize>|
     -> anyhow::Result<(&'static str, f64, Option<f64>)> {
        let ours = median_time(name, rows, repeat, || {
            Ok(make().fit_transform(&ds)?.to_polars()?.height())
        })?;
        let theirs = if ours_only {
            None
        } else {
            Some(median_time("  polars by hand", rows, repeat, by_hand)?)
        };
        Ok((name, ours, theirs))
    };
    let pairs = [
        compare(
            "StandardScaler (20 floats)",
            &|| Box::new(StandardScaler::new(&all)),
            &|| Ok(collect(polars_standard(scan()?, &all)?)?.height()),
        )?,
        compare(
            "MinMaxScaler (20 floats)",
            &|| Box::new(MinMaxScaler::new(&all)),
            &|| Ok(collect(polars_min_max(scan()?, &all)?)?.height()),
        )?,
        compare(
            "OneHotEncoder (cat_a, cat_b)",
            &|| Box::new(OneHotEncoder::new(["cat_a", "cat_b"])),
            &|| Ok(collect(polars_one_hot(scan()?, &["cat_a", "cat_b"])?)?.height()),
        )?,
        compare(
            "Concatenator (20 floats -> f32 array)",
            &|| Box::new(Concatenator::new().with_include(&all)),
            &|| Ok(collect(polars_concat(scan()?, &all)?)?.height()),
        )?,
        compare(
            "Chain (standard, min-max, one-hot, concat)",
            &|| {
                Box::new(Chain::new(vec![
                    Box::new(StandardScaler::new(floats(0..10))),
                    Box::new(MinMaxScaler::new(floats(10..20))),
                    Box::new(OneHotEncoder::new(["cat_a", "cat_b"])),
                    Box::new(Concatenator::new()),
                ]))
            },
            &|| {
                let lf = polars_standard(scan()?, &floats(0..10))?;
                let lf = polars_min_max(lf, &floats(10..20))?;
                let mut lf = polars_one_hot(lf, &["cat_a", "cat_b"])?;
                let cols: Vec<String> = lf
                    .collect_schema()?
                    .iter_names()
                    .map(|n| n.to_string())
                    .collect();
                Ok(collect(polars_concat(lf, &cols)?)?.height())
            },
        )?,
    ];
    println!();
    for (name, ours, theirs) in pairs {
        if let Some(theirs) = theirs {
            println!("{name:<44} ours / polars by hand: {:.2}x", ours / theirs);
        }
    }
    Ok(())
}
