//! `s3://` against a real S3-compatible server (moto) on 127.0.0.1.

mod common;

use std::time::Duration;

use air_checkpoint::{
    Checkpoint, CheckpointError, MANIFEST_NAME, StorageOptions,
    storage::{Resolved, resolve},
};
use common::{create_bucket, free_port, read_tree, s3, to_vecs, write_foreign_tree};
use object_store::{ObjectStoreExt, PutPayload};
use tempfile::TempDir;

#[test]
fn foreign_directory_round_trips_through_s3_byte_for_byte() {
    let Some(opts) = s3() else { return };
    create_bucket(&opts, "roundtrip");
    let tmp = TempDir::new().unwrap();
    let mut expected = write_foreign_tree(&tmp.path().join("model"));
    let mut ckpt = Checkpoint::from_directory(tmp.path().join("model")).unwrap();
    ckpt.put_bytes("added/late.bin", vec![1u8, 2, 3]).unwrap();
    expected.insert("added/late.bin".to_owned(), vec![1, 2, 3]);
    ckpt.set_metadata_value("epoch", &4).unwrap();

    let uri = "s3://roundtrip/runs/exp 1/checkpoint_000004";
    ckpt.to_uri_with(uri, &opts).unwrap();
    let back = Checkpoint::from_uri_with(uri, &opts).unwrap();
    assert_eq!(back.uri(), Some(uri));
    assert_eq!(back.metadata_value::<u32>("epoch").unwrap(), Some(4));
    assert_eq!(to_vecs(back.to_dict().unwrap()), expected);
    back.verify().unwrap();

    // s3 -> directory, s3 -> s3, s3 -> memory:// and back to disk.
    back.to_directory(tmp.path().join("from-s3")).unwrap();
    assert_eq!(read_tree(&tmp.path().join("from-s3")), expected);
    back.to_uri_with("s3://roundtrip/copy", &opts).unwrap();
    let copy = Checkpoint::from_uri_with("s3://roundtrip/copy", &opts).unwrap();
    copy.to_uri("memory://s3test/copy").unwrap();
    Checkpoint::from_uri("memory://s3test/copy")
        .unwrap()
        .to_directory(tmp.path().join("final"))
        .unwrap();
    assert_eq!(read_tree(&tmp.path().join("final")), expected);
}

#[test]
fn large_entries_stream_as_multipart_uploads_and_downloads() {
    let Some(opts) = s3() else { return };
    create_bucket(&opts, "large");
    let tmp = TempDir::new().unwrap();
    // 40 MiB: three parts of the 16 MiB multipart size, with a short last part.
    let big: Vec<u8> = (0..40u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("weights.bin"), &big).unwrap();
    let ckpt = Checkpoint::from_directory(&src).unwrap();
    ckpt.to_uri_with("s3://large/ckpt", &opts).unwrap(); // file -> multipart
    Checkpoint::from_dict([("weights.bin", big.clone())])
        .unwrap()
        .to_uri_with("s3://large/from-memory", &opts)
        .unwrap();

    let back = Checkpoint::from_uri_with("s3://large/ckpt", &opts).unwrap();
    assert_eq!(back.size_bytes(), big.len() as u64);
    back.to_directory(tmp.path().join("down")).unwrap(); // streamed download
    assert!(std::fs::read(tmp.path().join("down/weights.bin")).unwrap() == big);
    back.to_uri_with("s3://large/copy", &opts).unwrap(); // s3 -> s3, streamed
    let copy = Checkpoint::from_uri_with("s3://large/copy", &opts).unwrap();
    assert!(copy.get_bytes("weights.bin").unwrap() == big);
    let from_memory = Checkpoint::from_uri_with("s3://large/from-memory", &opts).unwrap();
    assert!(from_memory.get_bytes("weights.bin").unwrap() == big);
}

#[test]
fn foreign_unfinished_and_stale_prefixes_are_handled() {
    let Some(opts) = s3() else { return };
    create_bucket(&opts, "states");
    let Resolved::Store(loc) = resolve("s3://states/foreign", &opts).unwrap() else {
        panic!("s3 is a store")
    };
    let put = |name: &str, body: &'static [u8]| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(
            loc.store
                .put(&loc.child(name), PutPayload::from_static(body)),
        )
        .unwrap();
    };

    // Objects put there by another tool read as a foreign checkpoint...
    put("MLmodel", b"flavors: {}");
    let foreign = Checkpoint::from_uri_with("s3://states/foreign", &opts).unwrap();
    assert!(foreign.metadata().is_empty());
    assert_eq!(
        foreign.get_bytes("MLmodel").unwrap().as_ref(),
        b"flavors: {}"
    );
    // ...and are never overwritten.
    let err = Checkpoint::from_dict([("w", "1")])
        .unwrap()
        .to_uri_with("s3://states/foreign", &opts)
        .unwrap_err();
    assert!(
        matches!(err, CheckpointError::DestinationNotEmpty { .. }),
        "{err}"
    );
    assert_eq!(
        Checkpoint::from_uri_with("s3://states/foreign", &opts)
            .unwrap()
            .len(),
        1
    );

    // A writer that died after its first step leaves an "incomplete" marker readers refuse.
    Checkpoint::from_dict([("w", "1")])
        .unwrap()
        .to_uri_with("s3://states/died", &opts)
        .unwrap();
    let Resolved::Store(died) = resolve("s3://states/died", &opts).unwrap() else {
        panic!()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let marker = br#"{"format": "air-checkpoint", "version": 1, "complete": false, "metadata": {}, "files": {}}"#;
    rt.block_on(
        died.store
            .put(&died.child(MANIFEST_NAME), PutPayload::from_static(marker)),
    )
    .unwrap();
    let err = Checkpoint::from_uri_with("s3://states/died", &opts).unwrap_err();
    assert!(matches!(err, CheckpointError::Incomplete { .. }), "{err}");

    // Rewriting a checkpoint removes the objects the new one lacks.
    Checkpoint::from_dict([("a", "1"), ("old/b", "2")])
        .unwrap()
        .to_uri_with("s3://states/ckpt", &opts)
        .unwrap();
    Checkpoint::from_dict([("a", "3")])
        .unwrap()
        .to_uri_with("s3://states/ckpt", &opts)
        .unwrap();
    let names: Vec<_> = Checkpoint::from_uri_with("s3://states/ckpt", &opts)
        .unwrap()
        .entries()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, vec!["a"]);
}

#[test]
fn unreachable_endpoint_is_a_clear_error() {
    let opts = StorageOptions::new()
        .with_option("aws_endpoint", format!("http://127.0.0.1:{}", free_port()))
        .with_option("aws_access_key_id", "k")
        .with_option("aws_secret_access_key", "s")
        .with_max_retries(0)
        .with_retry_timeout(Duration::from_secs(2));
    let err = Checkpoint::from_uri_with("s3://bucket/ckpt", &opts).unwrap_err();
    assert!(matches!(err, CheckpointError::Unreachable { .. }), "{err}");
    assert!(err.to_string().contains("endpoint"), "{err}");
}

#[test]
fn missing_credentials_are_a_clear_error() {
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_some() {
        eprintln!(
            "AWS_ACCESS_KEY_ID is set in the environment: missing-credentials case not checked"
        );
        return;
    }
    let opts = StorageOptions::new()
        .with_option("aws_endpoint", "http://127.0.0.1:9")
        .with_instance_credentials(false);
    let err = Checkpoint::from_uri_with("s3://bucket/ckpt", &opts).unwrap_err();
    assert!(
        matches!(err, CheckpointError::MissingCredentials { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("AWS_ACCESS_KEY_ID"), "{err}");
}

#[test]
fn unknown_options_and_missing_buckets_are_clear_errors() {
    let Some(opts) = s3() else { return };
    let err = Checkpoint::from_uri_with(
        "s3://b/x",
        &opts.clone().with_option("aws_no_such_key", "1"),
    )
    .unwrap_err();
    assert!(
        matches!(err, CheckpointError::InvalidOption { ref key, .. } if key == "aws_no_such_key"),
        "{err}"
    );
    let err = Checkpoint::from_uri_with("s3://bucket-that-does-not-exist/x", &opts).unwrap_err();
    assert!(
        err.to_string().contains("bucket-that-does-not-exist"),
        "{err}"
    );
}
