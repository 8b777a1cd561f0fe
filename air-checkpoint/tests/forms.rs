//! Round trips between every pair of local forms keep every file byte for byte.

mod common;

use std::{
    collections::BTreeMap,
    sync::atomic::{AtomicUsize, Ordering},
};

use air_checkpoint::{Checkpoint, CheckpointForm, StorageOptions};
use common::{read_tree, to_vecs, write_foreign_tree};
use serde_json::{Map, Value, json};
use tempfile::TempDir;

#[derive(Debug, Clone, Copy)]
enum Form {
    Dict,
    Directory,
    FileUri,
    MemoryUri,
}

const FORMS: [Form; 4] = [Form::Dict, Form::Directory, Form::FileUri, Form::MemoryUri];

fn unique() -> usize {
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Writes `ckpt` in `form` and opens it again from there.
fn move_to(ckpt: &Checkpoint, form: Form, tmp: &TempDir) -> Checkpoint {
    let n = unique();
    match form {
        Form::Dict => {
            let mut c = Checkpoint::from_dict(ckpt.to_dict().unwrap()).unwrap();
            c.set_metadata(ckpt.metadata().clone());
            c
        }
        Form::Directory => {
            let path = tmp.path().join(format!("dir-{n}"));
            ckpt.to_directory(&path).unwrap();
            Checkpoint::from_directory(&path).unwrap()
        }
        Form::FileUri => {
            let uri = format!("file://{}/uri-{n}", tmp.path().display());
            ckpt.to_uri(&uri).unwrap();
            Checkpoint::from_uri(&uri).unwrap()
        }
        Form::MemoryUri => {
            let uri = format!("memory://forms/run/checkpoint_{n:06}");
            ckpt.to_uri_with(&uri, &StorageOptions::new()).unwrap();
            let c = Checkpoint::from_uri(&uri).unwrap();
            assert_eq!(c.uri(), Some(uri.as_str()));
            c
        }
    }
}

fn metadata() -> Map<String, Value> {
    json!({"framework": "mlflow", "epoch": 7, "score": 0.25})
        .as_object()
        .unwrap()
        .clone()
}

#[test]
fn every_pair_of_forms_round_trips_a_foreign_directory_with_additions() {
    let tmp = TempDir::new().unwrap();
    let mut expected = write_foreign_tree(&tmp.path().join("mlflow-model"));
    let mut origin = Checkpoint::from_directory(tmp.path().join("mlflow-model")).unwrap();
    assert!(
        origin.metadata().is_empty(),
        "a foreign directory has no metadata"
    );
    assert_eq!(to_vecs(origin.to_dict().unwrap()), expected);

    origin
        .put_bytes("extra/added.bin", vec![0u8, 159, 146, 150])
        .unwrap();
    expected.insert("extra/added.bin".to_owned(), vec![0u8, 159, 146, 150]);
    origin.set_metadata(metadata());

    for a in FORMS {
        for b in FORMS {
            let there = move_to(&origin, a, &tmp);
            let back = move_to(&there, b, &tmp);
            assert_eq!(to_vecs(back.to_dict().unwrap()), expected, "{a:?} -> {b:?}");
            assert_eq!(back.metadata(), &metadata(), "{a:?} -> {b:?}");
            let out = tmp.path().join(format!("final-{}", unique()));
            back.to_directory(&out).unwrap();
            assert_eq!(
                read_tree(&out),
                expected,
                "{a:?} -> {b:?} -> directory on disk"
            );
            back.verify().unwrap();
        }
    }
}

#[test]
fn added_entries_along_the_way_survive_each_hop() {
    let tmp = TempDir::new().unwrap();
    let mut ckpt = Checkpoint::from_dict([("a.bin", vec![1u8])]).unwrap();
    let mut expected: BTreeMap<String, Vec<u8>> = [("a.bin".to_owned(), vec![1u8])].into();
    for (i, form) in FORMS.into_iter().cycle().take(8).enumerate() {
        let name = format!("hop{i}/file.txt");
        ckpt.put_bytes(name.clone(), format!("hop {i}")).unwrap();
        expected.insert(name, format!("hop {i}").into_bytes());
        ckpt = move_to(&ckpt, form, &tmp);
        assert!(
            matches!(form, Form::Dict) || !ckpt.is_modified(),
            "freshly opened from {form:?}"
        );
        assert_eq!(
            to_vecs(ckpt.to_dict().unwrap()),
            expected,
            "after hop {i} to {form:?}"
        );
    }
}

#[test]
fn entries_listing_sizes_and_typed_helpers() {
    let mut ckpt = Checkpoint::new();
    assert!(ckpt.is_empty());
    ckpt.put_json("config.json", &json!({"lr": 0.1})).unwrap();
    ckpt.put_bytes("b/weights.bin", vec![0u8; 1000]).unwrap();
    ckpt.set_metadata_value("epoch", &12u32).unwrap();
    ckpt.update_metadata(json!({"tag": "best"}).as_object().unwrap().clone());

    let names: Vec<_> = ckpt
        .entries()
        .into_iter()
        .map(|e| (e.name, e.size))
        .collect();
    assert_eq!(
        names,
        vec![
            ("b/weights.bin".to_owned(), 1000),
            (
                "config.json".to_owned(),
                ckpt.get_bytes("config.json").unwrap().len() as u64
            )
        ]
    );
    assert_eq!(ckpt.len(), 2);
    assert_eq!(
        ckpt.size_bytes(),
        1000 + ckpt.get_bytes("config.json").unwrap().len() as u64
    );
    assert_eq!(
        ckpt.get_json::<Value>("config.json").unwrap(),
        json!({"lr": 0.1})
    );
    assert_eq!(ckpt.metadata_value::<u32>("epoch").unwrap(), Some(12));
    assert_eq!(
        ckpt.metadata_value::<String>("tag").unwrap().as_deref(),
        Some("best")
    );
    assert_eq!(ckpt.metadata_value::<u32>("absent").unwrap(), None);
    assert!(
        ckpt.metadata_value::<u32>("tag").is_err(),
        "a string is not a u32"
    );

    assert!(ckpt.remove("config.json"));
    assert!(!ckpt.remove("config.json"));
    assert!(!ckpt.contains("config.json"));
    let err = ckpt.get_bytes("config.json").unwrap_err().to_string();
    assert!(
        err.contains("\"config.json\"") && err.contains("b/weights.bin"),
        "{err}"
    );
}

#[test]
fn stored_entries_can_be_overridden_and_removed_before_writing() {
    let tmp = TempDir::new().unwrap();
    let src = tmp.path().join("src");
    Checkpoint::from_dict([("keep", "k"), ("replace", "old"), ("drop", "d")])
        .unwrap()
        .to_directory(&src)
        .unwrap();
    let mut ckpt = Checkpoint::from_directory(&src).unwrap();
    ckpt.put_bytes("replace", "new").unwrap();
    assert!(ckpt.remove("drop"));
    let out = tmp.path().join("out");
    ckpt.to_directory(&out).unwrap();
    let expected: BTreeMap<String, Vec<u8>> = [
        ("keep".to_owned(), b"k".to_vec()),
        ("replace".to_owned(), b"new".to_vec()),
    ]
    .into();
    assert_eq!(read_tree(&out), expected);
    // The source directory was not touched.
    assert_eq!(read_tree(&src).len(), 3);
}

#[test]
fn as_directory_reuses_a_local_checkpoint_and_copies_otherwise() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("ckpt");
    Checkpoint::from_dict([("w", "1")])
        .unwrap()
        .to_directory(&dir)
        .unwrap();
    let local = Checkpoint::from_directory(&dir).unwrap();
    assert_eq!(local.form(), CheckpointForm::Directory(&dir));
    let guard = local.as_directory().unwrap();
    assert_eq!(guard.path(), dir.as_path());
    assert!(!guard.is_temporary());
    drop(guard);
    assert!(dir.exists(), "a reused directory is not deleted");

    let mut changed = local.clone();
    changed.put_bytes("x", "2").unwrap();
    let guard = changed.as_directory().unwrap();
    assert!(guard.is_temporary());
    assert_eq!(read_tree(&guard).len(), 2);
    let path = guard.path().to_owned();
    drop(guard);
    assert!(!path.exists(), "a temporary copy is removed on drop");

    let mem = Checkpoint::from_dict([("w", "1")]).unwrap();
    let kept = mem.to_temp_directory().unwrap();
    assert_eq!(read_tree(&kept).len(), 1);
    std::fs::remove_dir_all(kept).unwrap();
}

#[test]
fn blocking_api_works_inside_a_tokio_runtime_and_async_api_matches() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let ckpt = Checkpoint::from_dict([("w", "in runtime")]).unwrap();
        ckpt.to_uri("memory://rt/a").unwrap();
        let back = Checkpoint::from_uri_async("memory://rt/a", &StorageOptions::new())
            .await
            .unwrap();
        assert_eq!(back.to_dict_async().await.unwrap(), ckpt.to_dict().unwrap());
        back.to_uri_async("memory://rt/b", &StorageOptions::new())
            .await
            .unwrap();
        let tmp = TempDir::new().unwrap();
        Checkpoint::from_uri("memory://rt/b")
            .unwrap()
            .to_directory_async(tmp.path().join("c"))
            .await
            .unwrap();
        assert_eq!(
            read_tree(&tmp.path().join("c")),
            to_vecs(ckpt.to_dict().unwrap())
        );
    });
}

#[test]
fn rewriting_a_uri_checkpoint_removes_objects_the_new_one_lacks() {
    let uri = "memory://overwrite/ckpt";
    Checkpoint::from_dict([("a", "1"), ("old/b", "2")])
        .unwrap()
        .to_uri(uri)
        .unwrap();
    Checkpoint::from_dict([("a", "3"), ("c", "4")])
        .unwrap()
        .to_uri(uri)
        .unwrap();
    let back = Checkpoint::from_uri(uri).unwrap();
    let names: Vec<_> = back.entries().into_iter().map(|e| e.name).collect();
    assert_eq!(names, vec!["a", "c"]);
    assert_eq!(back.get_bytes("a").unwrap().as_ref(), b"3");
}
