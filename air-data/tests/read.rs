//! Readers on real files, and the errors bad input gets.

mod common;

use std::fs;

use air_data::{CsvOptions, DataError, Dataset, MissingFields, polars::prelude::*};
use common::{breast_cancer, ids, s, sample};

#[test]
fn reads_the_breast_cancer_csv() {
    let ds = Dataset::read_csv(s(&breast_cancer())).unwrap();
    assert_eq!(ds.count().unwrap(), 569);
    let schema = ds.schema().unwrap();
    assert_eq!(schema.len(), 31);
    assert_eq!(schema.get("mean radius"), Some(&DataType::Float64));
    assert_eq!(schema.get("target"), Some(&DataType::Int64));
    let df = ds.take(2).unwrap();
    assert_eq!(df.height(), 2);
    let radius = df.column("mean radius").unwrap().f64().unwrap();
    assert_eq!(radius.get(0), Some(17.99));
    // Class balance of the sklearn data set: 212 malignant, 357 benign.
    let counts = ds.groupby(&["target"]).count().to_polars().unwrap();
    let n: Vec<u32> = counts
        .column("count()")
        .unwrap()
        .cast(&DataType::UInt32)
        .unwrap()
        .u32()
        .unwrap()
        .into_no_null_iter()
        .collect();
    assert_eq!(n, [212, 357]);
}

#[test]
fn every_format_round_trips_through_files() {
    let dir = tempfile::tempdir().unwrap();
    let df = sample(1000);
    let ds = Dataset::from_polars(df.clone());
    for (name, write, read) in [
        (
            "t.parquet",
            Dataset::write_parquet as fn(&Dataset, &str) -> air_data::Result<usize>,
            Dataset::read_parquet as fn(&str) -> air_data::Result<Dataset>,
        ),
        ("t.csv", Dataset::write_csv, Dataset::read_csv),
        ("t.jsonl", Dataset::write_json, Dataset::read_json),
    ] {
        let path = dir.path().join(name);
        assert_eq!(write(&ds, s(&path)).unwrap(), 1000, "{name}");
        let back = read(s(&path)).unwrap().to_polars().unwrap();
        assert!(back.equals(&df), "{name}: {back}");
    }
    // No temporary files are left next to the outputs.
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
}

#[test]
fn reads_json_arrays_and_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let array = dir.path().join("a.json");
    fs::write(&array, r#"[{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]"#).unwrap();
    let lines = dir.path().join("b.json");
    fs::write(
        &lines,
        "{\"a\": 3, \"b\": \"z\"}\n{\"a\": 4, \"b\": null}\n",
    )
    .unwrap();
    let df = Dataset::read_json(s(&array)).unwrap().to_polars().unwrap();
    assert_eq!(df.shape(), (2, 2));
    // A directory holding both kinds.
    let both = Dataset::read_json(s(dir.path()))
        .unwrap()
        .to_polars()
        .unwrap();
    let a: Vec<i64> = both
        .column("a")
        .unwrap()
        .i64()
        .unwrap()
        .into_no_null_iter()
        .collect();
    assert_eq!(a, [1, 2, 3, 4]);
    assert_eq!(both.column("b").unwrap().null_count(), 1);
}

#[test]
fn reads_directories_and_globs_in_name_order() {
    let dir = tempfile::tempdir().unwrap();
    let df = sample(30);
    for i in 0..3 {
        let part = Dataset::from_polars(df.slice(i * 10, 10));
        part.write_parquet(s(&dir.path().join(format!("part-{i}.parquet"))))
            .unwrap();
    }
    // Files a dataset directory commonly also holds are skipped.
    fs::write(dir.path().join("_SUCCESS"), "").unwrap();
    fs::write(dir.path().join(".part-9.parquet.crc"), "junk").unwrap();
    fs::write(dir.path().join("README.md"), "not data").unwrap();
    let all = Dataset::read_parquet(s(dir.path())).unwrap();
    assert_eq!(ids(&all.to_polars().unwrap()), (0..30).collect::<Vec<_>>());
    let glob = format!("{}/part-[12].parquet", s(dir.path()));
    let some = Dataset::read_parquet(&glob).unwrap();
    assert_eq!(
        ids(&some.to_polars().unwrap()),
        (10..30).collect::<Vec<_>>()
    );
    let file_uri = format!("file://{}", s(dir.path()));
    assert_eq!(
        Dataset::read_parquet(&file_uri).unwrap().count().unwrap(),
        30
    );
}

#[test]
fn creates_from_items_and_ranges() {
    #[derive(serde::Serialize)]
    struct Row {
        name: &'static str,
        score: f64,
    }
    let ds = Dataset::from_items(&[
        Row {
            name: "a",
            score: 1.5,
        },
        Row {
            name: "b",
            score: 2.5,
        },
    ])
    .unwrap();
    let df = ds.to_polars().unwrap();
    assert_eq!(df.get_column_names(), ["name", "score"]);
    let plain = Dataset::from_items(&[1, 2, 3])
        .unwrap()
        .to_polars()
        .unwrap();
    assert_eq!(plain.get_column_names(), ["item"]);
    let range = Dataset::range(5).to_polars().unwrap();
    assert_eq!(ids(&range), [0, 1, 2, 3, 4]);
    assert_eq!(Dataset::range(0).count().unwrap(), 0);
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let err = Dataset::read_csv("/no/such/file.csv").unwrap_err();
    assert!(matches!(err, DataError::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("/no/such/file.csv"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("notes.txt"), "x").unwrap();
    let err = Dataset::read_parquet(s(dir.path())).unwrap_err();
    assert!(matches!(err, DataError::NoFiles { .. }), "{err:?}");
    assert!(err.to_string().contains(".parquet"), "{err}");
    let err = Dataset::read_csv(&format!("{}/*.csv", s(dir.path()))).unwrap_err();
    assert!(matches!(err, DataError::NoFiles { .. }), "{err:?}");
}

#[test]
fn a_malformed_csv_row_is_reported_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("a,b,c\n");
    for i in 0..2000 {
        text.push_str(&format!("{i},{}.5,x\n", i * 2));
    }
    // Line 1502: one field too many.
    let mut extra = text.clone();
    let mut lines: Vec<&str> = extra.lines().collect();
    lines[1501] = "7,8.5,x,oops";
    extra = lines.join("\n") + "\n";
    let path = dir.path().join("extra.csv");
    fs::write(&path, &extra).unwrap();
    let err = Dataset::read_csv(s(&path))
        .unwrap()
        .to_polars()
        .unwrap_err();
    match &err {
        DataError::MalformedCsv { file, line, reason } => {
            assert!(file.ends_with("extra.csv"), "{err}");
            assert_eq!(*line, 1502, "{err}");
            assert!(reason.contains("4 fields, expected 3"), "{err}");
        }
        other => panic!("expected MalformedCsv, got {other:?}"),
    }
    // Line 1800: not a number in a float column (beyond the rows types are inferred from).
    let mut lines: Vec<&str> = text.lines().collect();
    lines[1799] = "9,abc,x";
    let bad_number = lines.join("\n") + "\n";
    let path = dir.path().join("number.csv");
    fs::write(&path, bad_number).unwrap();
    // Counting must not succeed where reading fails.
    let ds = Dataset::read_csv(s(&path)).unwrap();
    for err in [ds.count().unwrap_err(), ds.to_polars().unwrap_err()] {
        match &err {
            DataError::MalformedCsv { line, reason, .. } => {
                assert_eq!(*line, 1800, "{err}");
                assert!(
                    reason.contains("\"abc\"") && reason.contains("\"b\""),
                    "{err}"
                );
            }
            other => panic!("expected MalformedCsv, got {other:?}"),
        }
    }
}

#[test]
fn a_csv_row_with_missing_fields_is_an_error_unless_nulls_are_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("short.csv");
    let mut text = String::from("a,b,c\n");
    for i in 0..3000 {
        // Line 2502 lost its last field; a quoted field spanning lines comes before it.
        match i {
            100 => text.push_str("1,\"two\nlines\",x\n"),
            2499 => text.push_str("5,6.5\n"),
            _ => text.push_str(&format!("{i},{i}.5,x\n")),
        }
    }
    fs::write(&path, &text).unwrap();
    let ds = Dataset::read_csv(s(&path)).unwrap();
    let errors = [
        ds.to_polars().unwrap_err(),
        ds.count().unwrap_err(),
        ds.iter_batches(100)
            .and_then(|mut batches| batches.find_map(Result::err).map_or(Ok(()), Err))
            .unwrap_err(),
        ds.filter(col("a").gt(lit(10))).take(5).unwrap_err(),
    ];
    for err in &errors {
        match err {
            DataError::MalformedCsv { file, line, reason } => {
                assert!(file.ends_with("short.csv"), "{err}");
                assert_eq!(*line, 2502, "{err}");
                assert!(reason.contains("2 fields, expected 3"), "{err}");
                assert!(reason.contains("MissingFields::Null"), "{err}");
            }
            other => panic!("expected MalformedCsv, got {other:?}"),
        }
    }
    let nulls = CsvOptions::new().with_missing_fields(MissingFields::Null);
    let df = Dataset::read_csv_with(s(&path), nulls)
        .unwrap()
        .to_polars()
        .unwrap();
    assert_eq!(df.height(), 3000);
    assert_eq!(df.column("c").unwrap().null_count(), 1);
    // The same bytes in an object store are checked as they are fetched.
    air_checkpoint::Checkpoint::from_dict([("short.csv", text.clone().into_bytes())])
        .unwrap()
        .to_uri("memory://air-data-test/short")
        .unwrap();
    let err = Dataset::read_csv("memory://air-data-test/short/short.csv")
        .unwrap()
        .to_polars()
        .unwrap_err();
    assert!(
        matches!(&err, DataError::MalformedCsv { line: 2502, file, .. } if file.ends_with("short.csv")),
        "{err}"
    );
    // A fixed file reads (the check is redone when the file changes).
    fs::write(&path, text.replace("5,6.5\n", "5,6.5,x\n")).unwrap();
    assert_eq!(ds.count().unwrap(), 3000);
}

#[test]
fn broken_files_are_named_with_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.parquet");
    Dataset::from_polars(sample(5000))
        .write_parquet(s(&good))
        .unwrap();
    let bytes = fs::read(&good).unwrap();
    let csv_text = "id,x\n1,2.5\n2,3.5\n";
    // A writer that crashed after the size was extended: the tail is zeros.
    let nul = [csv_text.as_bytes(), &[0u8; 100]].concat();
    let utf16: Vec<u8> = [0xff, 0xfe]
        .into_iter()
        .chain(csv_text.encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated.parquet",
            bytes[..bytes.len() / 2].to_vec(),
            "truncated",
        ),
        (
            "no_footer.parquet",
            bytes[..bytes.len() - 8].to_vec(),
            "does not end with",
        ),
        ("empty.parquet", Vec::new(), "empty"),
        (
            "renamed.parquet",
            csv_text.as_bytes().to_vec(),
            "CSV or JSON",
        ),
        ("nul.csv", nul, "NUL byte"),
        ("utf16.csv", utf16, "UTF-16"),
        (
            "latin1.csv",
            b"id,name\n1,caf\xe9\n".to_vec(),
            "invalid UTF-8",
        ),
        ("empty.csv", Vec::new(), "empty"),
    ];
    for (name, content, what) in &cases {
        let path = dir.path().join(name);
        fs::write(&path, content).unwrap();
        let ds = if name.ends_with(".csv") {
            Dataset::read_csv(s(&path))
        } else {
            Dataset::read_parquet(s(&path))
        };
        let results = match ds {
            Err(e) => vec![e],
            // The schema reads headers and footers only: it may succeed (a sound header), but
            // an error must name the file too.
            Ok(ds) => [
                Some(ds.to_polars().map(|_| ()).expect_err(name)),
                Some(ds.count().map(|_| ()).expect_err(name)),
                ds.schema().err(),
            ]
            .into_iter()
            .flatten()
            .collect(),
        };
        for err in results {
            let text = err.to_string();
            assert!(text.contains(name), "{name}: {text}");
            assert!(text.contains(what), "{name}: {text}");
            assert!(!text.contains("running the dataset plan"), "{name}: {text}");
        }
    }
}

#[test]
fn files_with_different_schemas_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("1.csv"), "a,b\n1,2\n").unwrap();
    fs::write(dir.path().join("2.csv"), "a,c\n1,2\n").unwrap();
    let err = Dataset::read_csv(s(dir.path())).unwrap_err();
    match &err {
        DataError::SchemaMismatch {
            first_file,
            file,
            difference,
        } => {
            assert!(
                first_file.ends_with("1.csv") && file.ends_with("2.csv"),
                "{err}"
            );
            assert!(difference.contains("\"b\" is missing"), "{err}");
        }
        other => panic!("expected SchemaMismatch, got {other:?}"),
    }
    let dir = tempfile::tempdir().unwrap();
    Dataset::from_polars(df!("a" => [1i64]).unwrap())
        .write_parquet(s(&dir.path().join("1.parquet")))
        .unwrap();
    Dataset::from_polars(df!("a" => ["x"]).unwrap())
        .write_parquet(s(&dir.path().join("2.parquet")))
        .unwrap();
    let err = Dataset::read_parquet(s(dir.path())).unwrap_err();
    assert!(
        err.to_string()
            .contains("column \"a\" has type str, expected i64"),
        "{err}"
    );
}

#[test]
fn an_unknown_column_lists_the_available_ones() {
    let ds = Dataset::read_csv(s(&breast_cancer())).unwrap();
    for result in [
        ds.select_columns(&["mean radius", "mean radiuss"])
            .to_polars(),
        ds.drop_columns(&["nope"]).to_polars(),
        ds.sort(&["nope"], false).to_polars(),
        ds.filter(col("nope").gt(lit(1))).to_polars(),
        ds.with_column("y", col("nope") * lit(2)).to_polars(),
        ds.to_f32_matrix(&["mean radius", "nope"])
            .map(|_| DataFrame::empty()),
    ] {
        let err = result.unwrap_err();
        let DataError::ColumnNotFound {
            column, available, ..
        } = &err
        else {
            panic!("expected ColumnNotFound, got {err:?}");
        };
        assert!(column == "nope" || column == "mean radiuss", "{err}");
        assert_eq!(available.len(), 31, "{err}");
        assert!(err.to_string().contains("mean texture"), "{err}");
    }
}

#[test]
fn csv_options_apply() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("semi.csv");
    fs::write(&path, "1;NA\n2;3\n").unwrap();
    let opts = CsvOptions::new()
        .with_separator(b';')
        .with_has_header(false)
        .with_null_values(["NA"]);
    let df = Dataset::read_csv_with(s(&path), opts)
        .unwrap()
        .to_polars()
        .unwrap();
    assert_eq!(df.shape(), (2, 2));
    assert_eq!(df.columns()[1].null_count(), 1);
}

#[test]
fn memory_uris_read_and_write() {
    let ds = Dataset::from_polars(sample(100));
    ds.write_parquet("memory://air-data-test/dir/a.parquet")
        .unwrap();
    ds.write_csv("memory://air-data-test/dir/b.csv").unwrap();
    let back = Dataset::read_parquet("memory://air-data-test/dir").unwrap();
    assert_eq!(
        ids(&back.to_polars().unwrap()),
        (0..100).collect::<Vec<_>>()
    );
    let csv = Dataset::read_csv("memory://air-data-test/dir/b.csv").unwrap();
    assert_eq!(csv.count().unwrap(), 100);
    let err = Dataset::read_csv("memory://air-data-test/missing").unwrap_err();
    assert!(matches!(err, DataError::NotFound { .. }), "{err:?}");
}
