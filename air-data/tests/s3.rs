//! Datasets on a real S3-compatible server (moto on 127.0.0.1).

mod common;

use std::{
    io::{Read, Write},
    net::{Shutdown, TcpListener, TcpStream},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use air_checkpoint::storage::{self, Resolved};
use air_data::{CsvOptions, DataError, Dataset};
use common::{ids, s3_harness, sample};
use object_store::ObjectStoreExt;

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

/// A TCP proxy in front of the S3 server that counts the bytes the server sends back.
fn counting_proxy(upstream: &str) -> (String, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let upstream = upstream.trim_start_matches("http://").to_owned();
    let served = Arc::new(AtomicU64::new(0));
    let counter = served.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let (Ok(client), Ok(server)) = (client, TcpStream::connect(&upstream)) else {
                continue;
            };
            let (client2, server2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || pipe(client, server, None));
            let counter = counter.clone();
            std::thread::spawn(move || pipe(server2, client2, Some(counter)));
        }
    });
    (endpoint, served)
}

fn pipe(mut from: TcpStream, mut to: TcpStream, counter: Option<Arc<AtomicU64>>) {
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 || to.write_all(&buf[..n]).is_err() {
            break;
        }
        if let Some(c) = &counter {
            c.fetch_add(n as u64, Ordering::SeqCst);
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

#[test]
fn remote_parquet_is_scanned_not_downloaded_whole() {
    let Some(opts) = s3_harness::s3() else { return };
    s3_harness::create_bucket(&opts, "air-scan");
    let uri = "s3://air-scan/synthetic.parquet";
    air_data::synthetic(200_000, 0)
        .unwrap()
        .write_parquet_with(uri, &opts)
        .unwrap();
    let Resolved::Store(location) = storage::resolve(uri, &opts).unwrap() else {
        panic!("s3 resolves to a store")
    };
    let size = storage::block_on(location.store.head(&location.prefix))
        .unwrap()
        .size;

    let (endpoint, served) = counting_proxy(opts.option("aws_endpoint").unwrap());
    let via_proxy = opts.clone().with_option("aws_endpoint", endpoint);
    let ds = Dataset::read_parquet_with(uri, &via_proxy).unwrap();
    let head = ds.select_columns(&["f3"]).take(10).unwrap();
    assert_eq!(head.shape(), (10, 1));
    let partial = served.load(Ordering::SeqCst);
    eprintln!("take(10) of one column fetched {partial} of {size} bytes");
    assert!(
        partial * 10 < size,
        "reading 10 values of one column fetched {partial} of the file's {size} bytes"
    );
    // The proxy does see whole-file reads.
    assert_eq!(ds.to_polars().unwrap().height(), 200_000);
    assert!(served.load(Ordering::SeqCst) >= size * 9 / 10);
}
