//! Datasets on a real S3-compatible server (moto on 127.0.0.1).

mod common;

use air_data::{CsvOptions, DataError, Dataset};
use common::{ids, s3_harness, sample};

#[test]
fn parquet_csv_and_json_on_s3() {
    let Some(opts) = s3_harness::s3() else { return };
    s3_harness::create_bucket(&opts, "air-data");
    let df = sample(3000);
    for i in 0..3 {
        Dataset::from_polars(df.slice(i * 1000, 1000))
            .write_parquet_with(&format!("s3://air-data/pq/part-{i}.parquet"), &opts)
            .unwrap();
    }
    let ds = Dataset::read_parquet_with("s3://air-data/pq", &opts).unwrap();
    assert_eq!(ds.count().unwrap(), 3000);
    assert_eq!(ids(&ds.to_polars().unwrap()), (0..3000).collect::<Vec<_>>());
    // A projection and a limit read only what they need from the remote files.
    let head = ds.select_columns(&["x"]).take(5).unwrap();
    assert_eq!(head.shape(), (5, 1));
    let glob = Dataset::read_parquet_with("s3://air-data/pq/part-[02].parquet", &opts).unwrap();
    assert_eq!(glob.count().unwrap(), 2000);
    let batches: usize = ds
        .iter_batches(512)
        .unwrap()
        .map(|b| b.unwrap().height())
        .sum();
    assert_eq!(batches, 3000);

    let full = Dataset::from_polars(df.clone());
    full.write_csv_with("s3://air-data/csv/t.csv", &opts)
        .unwrap();
    let csv = Dataset::read_csv_with(
        "s3://air-data/csv/t.csv",
        CsvOptions::new().with_storage(opts.clone()),
    )
    .unwrap();
    assert!(csv.to_polars().unwrap().equals(&df));
    full.write_json_with("s3://air-data/json/t.jsonl", &opts)
        .unwrap();
    let json = Dataset::read_json_with("s3://air-data/json", &opts).unwrap();
    assert!(json.to_polars().unwrap().equals(&df));

    let err = Dataset::read_parquet_with("s3://air-data/nothing-here", &opts).unwrap_err();
    assert!(matches!(err, DataError::NotFound { .. }), "{err:?}");
}
