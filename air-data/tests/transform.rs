//! Transforms, splits and consumption, checked against values computed by hand.

mod common;

use std::{
    collections::BTreeSet,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use air_data::{Agg, BatchOptions, DataError, Dataset, TestSize, polars::prelude::*};
use common::{floats, ids, s, sample};

fn parquet_dataset(rows: usize) -> (tempfile::TempDir, Dataset) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.parquet");
    Dataset::from_polars(sample(rows))
        .write_parquet(s(&path))
        .unwrap();
    let ds = Dataset::read_parquet(s(&path)).unwrap();
    (dir, ds)
}

#[test]
fn map_batches_sees_exact_batches_in_parallel_and_keeps_order() {
    let (_dir, ds) = parquet_dataset(10_007);
    let sizes = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = sizes.clone();
    let mapped = ds
        .map_batches(
            move |df: DataFrame| {
                seen.lock().unwrap().push(df.height());
                df.lazy().with_column(col("id") * lit(10)).collect()
            },
            1000,
        )
        .unwrap();
    let out = mapped.to_polars().unwrap();
    let expected: Vec<i64> = (0..10_007).map(|i| i * 10).collect();
    assert_eq!(ids(&out), expected);
    let mut sizes = sizes.lock().unwrap().clone();
    sizes.sort_unstable();
    assert_eq!(sizes.len(), 11);
    assert_eq!(sizes[0], 7);
    assert!(sizes[1..].iter().all(|&n| n == 1000), "{sizes:?}");
    // Streaming consumption gives the same rows.
    let streamed: Vec<i64> = mapped
        .iter_batches(333)
        .unwrap()
        .flat_map(|b| ids(&b.unwrap()))
        .collect();
    assert_eq!(streamed, expected);
}

#[test]
fn map_batches_may_change_row_counts_and_chain() {
    let ds = Dataset::range(100)
        .map_batches(
            |df: DataFrame| df.lazy().filter((col("id") % lit(2)).eq(lit(0))).collect(),
            7,
        )
        .unwrap()
        .map_batches(|df: DataFrame| Ok::<_, PolarsError>(df), None)
        .unwrap()
        .select_columns(&["id"])
        .limit(10);
    assert_eq!(
        ids(&ds.to_polars().unwrap()),
        (0..20).step_by(2).collect::<Vec<_>>()
    );
    assert_eq!(ds.count().unwrap(), 10);
    // Ops that are not row-local after a map_batches run on the collected output.
    let sorted = ds.sort(&["id"], true).to_polars().unwrap();
    assert_eq!(ids(&sorted)[0], 18);
    let filtered = ds.filter(col("id").gt(lit(10))).to_polars().unwrap();
    assert_eq!(ids(&filtered), [12, 14, 16, 18]);
    assert_eq!(ds.schema().unwrap().len(), 1);
    let err = ds.filter(col("nope").gt(lit(1))).to_polars().unwrap_err();
    assert!(
        matches!(&err, DataError::ColumnNotFound { column, available, .. } if column == "nope" && available == &["id"]),
        "{err:?}"
    );
    let err = ds.select_columns(&["nope"]).to_polars().unwrap_err();
    assert!(matches!(err, DataError::ColumnNotFound { .. }), "{err:?}");
}

#[test]
fn map_batches_errors_and_panics_name_the_batch() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let ds = Dataset::range(100)
        .map_batches(
            move |df: DataFrame| {
                counter.fetch_add(1, Ordering::SeqCst);
                let first = df.column("id")?.i64()?.get(0).unwrap();
                if first == 30 {
                    return Err(PolarsError::ComputeError("bad batch".into()));
                }
                Ok(df)
            },
            10,
        )
        .unwrap();
    let err = ds.to_polars().unwrap_err();
    match &err {
        DataError::UserFunction {
            batch,
            first_row,
            end_row,
            message,
        } => {
            assert_eq!((*batch, *first_row, *end_row), (3, 30, 40), "{err}");
            assert!(message.contains("bad batch"), "{err}");
        }
        other => panic!("expected UserFunction, got {other:?}"),
    }
    let panicking = Dataset::range(10)
        .map_batches(
            |_df: DataFrame| -> Result<DataFrame, PolarsError> { panic!("boom in user code") },
            5,
        )
        .unwrap();
    let err = panicking.to_polars().unwrap_err();
    assert!(err.to_string().contains("boom in user code"), "{err}");
    assert!(matches!(
        Dataset::range(1).map_batches(Ok::<DataFrame, PolarsError>, 0),
        Err(DataError::InvalidArgument { .. })
    ));
}

#[test]
fn column_ops() {
    let ds = Dataset::from_polars(sample(6));
    let out = ds
        .rename_columns(&[("x", "y")])
        .with_column("z", col("y") * lit(2.0))
        .drop_columns(&["cat"])
        .filter(col("id").lt(lit(3)))
        .to_polars()
        .unwrap();
    assert_eq!(out.get_column_names(), ["id", "y", "z"]);
    let z: Vec<f64> = out
        .column("z")
        .unwrap()
        .f64()
        .unwrap()
        .into_no_null_iter()
        .collect();
    assert_eq!(z, [0.0, 1.0, 2.0]);
    let both = ds.union(&[ds.limit(2)]);
    assert_eq!(both.count().unwrap(), 8);
    let err = ds
        .union(&[ds.select_columns(&["id"])])
        .to_polars()
        .unwrap_err();
    assert!(
        matches!(err, DataError::UnionSchemaMismatch { .. }),
        "{err:?}"
    );
}

#[test]
fn sort_and_groupby_aggregate() {
    let df = df!(
        "k" => ["b", "a", "b", "a", "c"],
        "v" => [1.0, 2.0, 3.0, 4.0, 5.0],
    )
    .unwrap();
    let ds = Dataset::from_polars(df);
    let sorted = ds.sort(&["v"], true).to_polars().unwrap();
    let v: Vec<f64> = sorted
        .column("v")
        .unwrap()
        .f64()
        .unwrap()
        .into_no_null_iter()
        .collect();
    assert_eq!(v, [5.0, 4.0, 3.0, 2.0, 1.0]);
    let agg = ds
        .groupby(&["k"])
        .aggregate([
            Agg::Count,
            Agg::sum("v"),
            Agg::mean("v"),
            Agg::std("v"),
            Agg::min("v"),
            Agg::max("v"),
        ])
        .to_polars()
        .unwrap();
    assert_eq!(
        agg.get_column_names(),
        [
            "k", "count()", "sum(v)", "mean(v)", "std(v)", "min(v)", "max(v)"
        ]
    );
    let get = |name: &str| floats(&agg, name);
    assert_eq!(get("count()"), [Some(2.0), Some(2.0), Some(1.0)]);
    assert_eq!(get("sum(v)"), [Some(6.0), Some(4.0), Some(5.0)]);
    assert_eq!(get("mean(v)"), [Some(3.0), Some(2.0), Some(5.0)]);
    // sample std of {2, 4} and {1, 3} is sqrt(2); one value has none.
    assert_eq!(get("std(v)"), [Some(2f64.sqrt()), Some(2f64.sqrt()), None]);
    assert_eq!(get("min(v)"), [Some(2.0), Some(1.0), Some(5.0)]);
    assert_eq!(get("max(v)"), [Some(4.0), Some(3.0), Some(5.0)]);
}

#[test]
fn random_shuffle_is_a_seeded_permutation_keeping_rows_whole() {
    let (_dir, ds) = parquet_dataset(5000);
    let a = ds.random_shuffle(Some(42)).to_polars().unwrap();
    let b = ds.random_shuffle(Some(42)).to_polars().unwrap();
    let c = ds.random_shuffle(Some(43)).to_polars().unwrap();
    assert!(a.equals(&b));
    assert_ne!(ids(&a), ids(&c));
    let mut sorted = ids(&a);
    assert_ne!(sorted, (0..5000).collect::<Vec<_>>());
    sorted.sort_unstable();
    assert_eq!(sorted, (0..5000).collect::<Vec<_>>());
    // Every row still has its own x (= id / 2) and category.
    let x = a.column("x").unwrap().f64().unwrap();
    let cat = a.column("cat").unwrap().str().unwrap();
    for (i, id) in ids(&a).into_iter().enumerate() {
        assert_eq!(x.get(i), Some(id as f64 * 0.5));
        assert_eq!(cat.get(i), Some(["a", "b", "c"][id as usize % 3]));
    }
}

#[test]
fn repartition_makes_the_blocks_map_batches_sees() {
    let sizes = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = sizes.clone();
    let ds = Dataset::range(10)
        .repartition(3)
        .unwrap()
        .map_batches(
            move |df: DataFrame| {
                seen.lock().unwrap().push(df.height());
                Ok::<_, PolarsError>(df)
            },
            None,
        )
        .unwrap();
    assert_eq!(ids(&ds.to_polars().unwrap()), (0..10).collect::<Vec<_>>());
    let mut sizes = sizes.lock().unwrap().clone();
    sizes.sort_unstable();
    assert_eq!(sizes, [3, 3, 4]);
    assert!(Dataset::range(1).repartition(0).is_err());
}

#[test]
fn train_test_split_by_fraction_rows_and_shuffled() {
    let ds = Dataset::range(100);
    let (train, test) = ds.train_test_split(0.25).unwrap();
    assert_eq!(
        ids(&train.to_polars().unwrap()),
        (0..75).collect::<Vec<_>>()
    );
    assert_eq!(
        ids(&test.to_polars().unwrap()),
        (75..100).collect::<Vec<_>>()
    );
    // sklearn rounds the test size up.
    let (train, test) = Dataset::range(10).train_test_split(0.25).unwrap();
    assert_eq!((train.count().unwrap(), test.count().unwrap()), (7, 3));
    let (_, test) = ds.train_test_split(TestSize::Rows(10)).unwrap();
    assert_eq!(test.count().unwrap(), 10);
    let (train, test) = ds
        .train_test_split(air_data::TrainTestSplit::new(0.3).shuffle(7))
        .unwrap();
    let train_ids: BTreeSet<i64> = ids(&train.to_polars().unwrap()).into_iter().collect();
    let test_ids: BTreeSet<i64> = ids(&test.to_polars().unwrap()).into_iter().collect();
    assert_eq!((train_ids.len(), test_ids.len()), (70, 30));
    assert!(train_ids.is_disjoint(&test_ids));
    assert_ne!(test_ids, (70..100).collect());
    for bad in [
        TestSize::Fraction(0.0),
        TestSize::Fraction(1.0),
        TestSize::Rows(101),
    ] {
        let err = ds.train_test_split(bad).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::InvalidArgument {
                    name: "test_size",
                    ..
                }
            ),
            "{err:?}"
        );
    }
}

#[test]
fn split_into_shards() {
    let ds = Dataset::range(10);
    let shards = ds.split(3, air_data::ShardSizes::Balanced).unwrap();
    let parts: Vec<Vec<i64>> = shards
        .iter()
        .map(|d| ids(&d.to_polars().unwrap()))
        .collect();
    assert_eq!(parts, [vec![0, 1, 2, 3], vec![4, 5, 6], vec![7, 8, 9]]);
    let equal = ds.split(3, air_data::ShardSizes::Equal).unwrap();
    let counts: Vec<usize> = equal.iter().map(|d| d.count().unwrap()).collect();
    assert_eq!(counts, [3, 3, 3]);
    let at = ds.split_at_indices(&[2, 5, 20]).unwrap();
    let parts: Vec<Vec<i64>> = at.iter().map(|d| ids(&d.to_polars().unwrap())).collect();
    assert_eq!(
        parts,
        [vec![0, 1], vec![2, 3, 4], (5..10).collect(), vec![]]
    );
    assert!(ds.split_at_indices(&[5, 2]).is_err());
    assert!(ds.split(0, air_data::ShardSizes::Balanced).is_err());
    // Shards of a map_batches dataset stream too.
    let mapped = ds.map_batches(Ok::<DataFrame, PolarsError>, 4).unwrap();
    let shards = mapped.split(2, air_data::ShardSizes::Equal).unwrap();
    assert_eq!(ids(&shards[1].to_polars().unwrap()), [5, 6, 7, 8, 9]);
}

#[test]
fn iter_batches_sizes_drop_last_and_local_shuffle() {
    let (_dir, ds) = parquet_dataset(10_000);
    let sizes: Vec<usize> = ds
        .iter_batches(3000)
        .unwrap()
        .map(|b| b.unwrap().height())
        .collect();
    assert_eq!(sizes, [3000, 3000, 3000, 1000]);
    let sizes: Vec<usize> = ds
        .iter_batches(BatchOptions::new(3000).with_drop_last(true))
        .unwrap()
        .map(|b| b.unwrap().height())
        .collect();
    assert_eq!(sizes, [3000, 3000, 3000]);
    let shuffled = |seed| -> Vec<i64> {
        ds.iter_batches(BatchOptions::new(256).with_local_shuffle(2048, Some(seed)))
            .unwrap()
            .flat_map(|b| {
                let b = b.unwrap();
                assert!(b.height() == 256 || b.height() == 10_000 % 256);
                ids(&b)
            })
            .collect()
    };
    let a = shuffled(1);
    assert_eq!(a, shuffled(1));
    assert_ne!(a, shuffled(2));
    assert_ne!(a, (0..10_000).collect::<Vec<_>>());
    let mut sorted = a.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..10_000).collect::<Vec<_>>());
    // Local: rows move about a buffer's length on average, not across the whole dataset.
    let mean_shift = a
        .iter()
        .enumerate()
        .map(|(i, &id)| (i as i64 - id).abs())
        .sum::<i64>()
        / a.len() as i64;
    assert!(mean_shift < 2048, "{mean_shift}");
    // Dropping the iterator early stops the reader; a new pass starts over.
    let mut it = ds.iter_batches(100).unwrap();
    assert_eq!(ids(&it.next().unwrap().unwrap())[0], 0);
    drop(it);
    assert_eq!(ds.iter_batches(100).unwrap().count(), 100);
    assert!(ds.iter_batches(0).is_err());
}

#[test]
fn matrix_helper_is_row_major_with_nan_for_nulls() {
    let df = df!(
        "a" => [1.0f64, 2.0, 3.0],
        "b" => [Some(10i64), None, Some(30)],
        "flag" => [true, false, true],
        "name" => ["x", "y", "z"],
    )
    .unwrap();
    let ds = Dataset::from_polars(df.clone());
    let m = ds.to_f32_matrix(&["b", "a", "flag"]).unwrap();
    assert_eq!((m.rows, m.cols), (3, 3));
    assert_eq!(m.row(0), [10.0, 1.0, 1.0]);
    assert!(m.row(1)[0].is_nan());
    assert_eq!(&m.row(1)[1..], [2.0, 0.0]);
    assert_eq!(m.row(2), [30.0, 3.0, 1.0]);
    let (x, y) = ds.to_f32_features_and_label(&["a"], "flag").unwrap();
    assert_eq!((x.data, y), (vec![1.0, 2.0, 3.0], vec![1.0, 0.0, 1.0]));
    let err = ds.to_f32_matrix(&["a", "name"]).unwrap_err();
    match &err {
        DataError::NonNumericColumn {
            column,
            dtype,
            found,
        } => {
            assert_eq!((column.as_str(), dtype.as_str()), ("name", "str"), "{err}");
            assert_eq!(found, &Some((0, "\"x\"".to_owned())), "{err}");
            assert!(err.to_string().contains("(row 0: \"x\")"), "{err}");
        }
        other => panic!("expected NonNumericColumn, got {other:?}"),
    }
    // Larger than one parallel block, checked against a plain loop.
    let (_dir, big) = parquet_dataset(10_000);
    let m = big.to_f32_matrix(&["x", "id"]).unwrap();
    for r in (0..10_000).step_by(997) {
        assert_eq!(m.row(r), [r as f32 * 0.5, r as f32]);
    }
}

#[test]
fn consumers_stop_early_and_nothing_runs_before_consumption() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let ds = Dataset::range(100_000)
        .map_batches(
            move |df: DataFrame| {
                counter.fetch_add(1, Ordering::SeqCst);
                Ok::<_, PolarsError>(df)
            },
            100,
        )
        .unwrap();
    let shards = ds.split_at_indices(&[10]).unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "building the plan ran the function"
    );
    assert_eq!(ids(&ds.take(10).unwrap()), (0..10).collect::<Vec<_>>());
    let after_take = calls.load(Ordering::SeqCst);
    // One parallel window of batches at most, not the 1000 batches of the whole input.
    assert!(
        after_take <= 64,
        "take(10) ran the function {after_take} times"
    );
    let first = shards[0].iter_batches(4).unwrap().next().unwrap().unwrap();
    assert_eq!(ids(&first), [0, 1, 2, 3]);
    assert!(calls.load(Ordering::SeqCst) - after_take <= 64);
}
