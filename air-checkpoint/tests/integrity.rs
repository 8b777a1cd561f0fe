//! Truncated, corrupted, foreign-version and escaping checkpoints are refused by name, and bad
//! destinations are refused before anything is written.

mod common;

use std::{fs, path::Path};

use air_checkpoint::{Checkpoint, CheckpointError, MANIFEST_NAME};
use serde_json::Value;
use tempfile::TempDir;

fn saved(dir: &Path) -> Checkpoint {
    let ckpt = Checkpoint::from_dict([
        ("model/weights.bin", vec![7u8; 4096]),
        ("config.json", br#"{"layers": 3}"#.to_vec()),
    ])
    .unwrap();
    ckpt.to_directory(dir).unwrap();
    ckpt
}

#[test]
fn truncated_entry_is_refused_on_open_naming_it() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("ck");
    saved(&dir);
    let weights = dir.join("model/weights.bin");
    fs::write(&weights, vec![7u8; 100]).unwrap();
    let err = Checkpoint::from_directory(&dir).unwrap_err();
    assert!(
        matches!(&err, CheckpointError::SizeMismatch { name, expected: 4096, found: 100, .. } if name == "model/weights.bin"),
        "{err}"
    );
    assert!(err.to_string().contains("model/weights.bin"));
}

#[test]
fn corrupted_entry_is_refused_when_read_and_never_copied() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("ck");
    saved(&dir);
    let mut bytes = fs::read(dir.join("model/weights.bin")).unwrap();
    bytes[1000] ^= 0xff;
    fs::write(dir.join("model/weights.bin"), bytes).unwrap();

    let ckpt = Checkpoint::from_directory(&dir).unwrap(); // same size: found when read
    let is_bad = |e: &CheckpointError| matches!(e, CheckpointError::ChecksumMismatch { name, .. } if name == "model/weights.bin");
    assert!(is_bad(&ckpt.get_bytes("model/weights.bin").unwrap_err()));
    assert!(is_bad(&ckpt.verify().unwrap_err()));
    assert!(is_bad(&ckpt.to_dict().unwrap_err()));
    assert_eq!(
        ckpt.get_bytes("config.json").unwrap().as_ref(),
        br#"{"layers": 3}"#
    );

    let out = tmp.path().join("copy");
    assert!(is_bad(&ckpt.to_directory(&out).unwrap_err()));
    assert!(
        !out.exists(),
        "a failed copy must not leave a checkpoint behind"
    );
    assert!(is_bad(
        &ckpt.to_uri("memory://integrity/corrupt").unwrap_err()
    ));
    let err = Checkpoint::from_uri("memory://integrity/corrupt").unwrap_err();
    assert!(matches!(err, CheckpointError::Incomplete { .. }), "{err}");
}

#[test]
fn missing_entry_is_refused_naming_it() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("ck");
    saved(&dir);
    fs::remove_file(dir.join("config.json")).unwrap();
    let err = Checkpoint::from_directory(&dir).unwrap_err();
    assert!(
        matches!(&err, CheckpointError::MissingEntry { name, .. } if name == "config.json"),
        "{err}"
    );
}

fn edit_manifest(dir: &Path, edit: impl FnOnce(&mut Value)) {
    let path = dir.join(MANIFEST_NAME);
    let mut manifest: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    edit(&mut manifest);
    fs::write(path, serde_json::to_vec(&manifest).unwrap()).unwrap();
}

#[test]
fn newer_format_version_is_refused_with_versions_named() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("ck");
    saved(&dir);
    edit_manifest(&dir, |m| m["version"] = Value::from(2));
    let err = Checkpoint::from_directory(&dir).unwrap_err();
    assert!(
        matches!(
            err,
            CheckpointError::UnsupportedVersion {
                found: 2,
                supported: 1,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn truncated_manifest_and_unfinished_writes_are_refused() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("ck");
    saved(&dir);
    let manifest = fs::read(dir.join(MANIFEST_NAME)).unwrap();
    fs::write(dir.join(MANIFEST_NAME), &manifest[..manifest.len() - 20]).unwrap();
    let err = Checkpoint::from_directory(&dir).unwrap_err();
    assert!(
        matches!(err, CheckpointError::InvalidManifest { .. })
            && err.to_string().contains(MANIFEST_NAME),
        "{err}"
    );

    fs::write(dir.join(MANIFEST_NAME), &manifest).unwrap();
    edit_manifest(&dir, |m| m["complete"] = Value::from(false));
    let err = Checkpoint::from_directory(&dir).unwrap_err();
    assert!(matches!(err, CheckpointError::Incomplete { .. }), "{err}");
}

#[test]
fn manifest_names_that_escape_the_root_are_refused() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("ck");
    saved(&dir);
    edit_manifest(&dir, |m| {
        let files = m["files"].as_object_mut().unwrap();
        let record = files["config.json"].clone();
        files.insert("../../etc/passwd".to_owned(), record);
    });
    let err = Checkpoint::from_directory(&dir).unwrap_err().to_string();
    assert!(
        err.contains("../../etc/passwd") && err.contains("escape"),
        "{err}"
    );
}

#[test]
fn entry_names_that_escape_the_root_are_refused() {
    for bad in ["../evil", "/abs", "a/../../b", MANIFEST_NAME] {
        let err = Checkpoint::from_dict([(bad, "x")]).unwrap_err();
        assert!(
            matches!(err, CheckpointError::InvalidEntryName { .. }),
            "{bad}: {err}"
        );
        let mut ckpt = Checkpoint::new();
        assert!(ckpt.put_bytes(bad, "x").is_err());
    }
}

#[cfg(unix)]
#[test]
fn symlinks_out_of_the_root_are_refused_and_inside_ones_are_files() {
    let tmp = TempDir::new().unwrap();
    let secret = tmp.path().join("secret.txt");
    fs::write(&secret, "outside").unwrap();
    let dir = tmp.path().join("ck");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("real.txt"), "inside").unwrap();
    std::os::unix::fs::symlink(dir.join("real.txt"), dir.join("alias.txt")).unwrap();
    let ckpt = Checkpoint::from_directory(&dir).unwrap();
    assert_eq!(ckpt.get_bytes("alias.txt").unwrap().as_ref(), b"inside");

    std::os::unix::fs::symlink(&secret, dir.join("leak.txt")).unwrap();
    let err = Checkpoint::from_directory(&dir).unwrap_err();
    assert!(
        matches!(err, CheckpointError::SymlinkEscapesRoot { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("leak.txt"), "{err}");
}

#[test]
fn bad_paths_get_their_own_errors() {
    let tmp = TempDir::new().unwrap();
    let err = Checkpoint::from_directory(tmp.path().join("nope")).unwrap_err();
    assert!(
        matches!(err, CheckpointError::DirectoryNotFound { .. })
            && err.to_string().contains("nope"),
        "{err}"
    );

    let file = tmp.path().join("file.txt");
    fs::write(&file, "x").unwrap();
    let err = Checkpoint::from_directory(&file).unwrap_err();
    assert!(
        matches!(err, CheckpointError::NotADirectory { .. }),
        "{err}"
    );
    let err = Checkpoint::new().to_directory(&file).unwrap_err();
    assert!(
        matches!(err, CheckpointError::NotADirectory { .. }),
        "{err}"
    );

    let err = Checkpoint::from_uri("ftp://host/path")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("ftp") && err.contains("s3") && err.contains("memory"),
        "{err}"
    );
    let err = Checkpoint::from_uri("memory://nothing-here/at/all").unwrap_err();
    assert!(matches!(err, CheckpointError::NotFound { .. }), "{err}");
}

#[test]
fn writing_over_a_directory_that_is_not_a_checkpoint_is_refused_untouched() {
    let tmp = TempDir::new().unwrap();
    let home = tmp.path().join("home");
    fs::create_dir_all(&home).unwrap();
    fs::write(home.join("thesis.tex"), "years of work").unwrap();
    let err = Checkpoint::from_dict([("w", "1")])
        .unwrap()
        .to_directory(&home)
        .unwrap_err();
    assert!(
        matches!(err, CheckpointError::DestinationNotEmpty { .. }),
        "{err}"
    );
    assert_eq!(
        fs::read_to_string(home.join("thesis.tex")).unwrap(),
        "years of work"
    );
    assert_eq!(
        fs::read_dir(tmp.path()).unwrap().count(),
        1,
        "no temp sibling left behind"
    );

    Checkpoint::from_dict([("foreign", "f")])
        .unwrap()
        .to_uri("memory://integrity/plain-a")
        .unwrap();
    // An empty directory is fine, and an existing checkpoint is replaced whole.
    let empty = tmp.path().join("empty");
    fs::create_dir_all(&empty).unwrap();
    Checkpoint::from_dict([("w", "1"), ("old", "o")])
        .unwrap()
        .to_directory(&empty)
        .unwrap();
    Checkpoint::from_dict([("w", "2")])
        .unwrap()
        .to_directory(&empty)
        .unwrap();
    let names: Vec<_> = Checkpoint::from_directory(&empty)
        .unwrap()
        .entries()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, vec!["w"]);
}

/// What a loader reads: a checkpoint saved with a model and no preprocessor.
fn saved_model(dir: &Path) -> Checkpoint {
    let ckpt = Checkpoint::from_dict([("model.json", br#"{"w": 1.5}"#.to_vec())]).unwrap();
    ckpt.to_directory(dir).unwrap();
    Checkpoint::from_directory(dir).unwrap()
}

#[test]
fn loaders_refuse_files_no_manifest_vouches_for() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("ck");
    let ckpt = saved_model(&dir);
    assert!(ckpt.has_manifest() && ckpt.is_verified("model.json"));
    assert_eq!(
        ckpt.get_verified_bytes("model.json").unwrap().as_ref(),
        br#"{"w": 1.5}"#
    );

    // A file dropped in after the checkpoint was written: readable as a file, never as ours.
    fs::write(dir.join("preprocessor.json"), "{}").unwrap();
    let ckpt = Checkpoint::from_directory(&dir).unwrap();
    assert!(ckpt.contains("preprocessor.json") && !ckpt.is_verified("preprocessor.json"));
    assert_eq!(ckpt.get_bytes("preprocessor.json").unwrap().as_ref(), b"{}");
    let err = ckpt
        .get_verified_json::<Value>("preprocessor.json")
        .unwrap_err();
    assert!(
        matches!(&err, CheckpointError::UnlistedEntry { name, .. } if name == "preprocessor.json"),
        "{err}"
    );
    assert!(err.to_string().contains("allow_unverified"), "{err}");
    fs::remove_file(dir.join("preprocessor.json")).unwrap();

    // The manifest deleted, then the model edited (same size): nothing can tell, so loaders
    // refuse unless the program opts in.
    fs::remove_file(dir.join(MANIFEST_NAME)).unwrap();
    fs::write(dir.join("model.json"), br#"{"w": 9.5}"#).unwrap();
    let ckpt = Checkpoint::from_directory(&dir).unwrap();
    assert!(!ckpt.has_manifest());
    let err = ckpt.get_verified_bytes("model.json").unwrap_err();
    assert!(
        matches!(&err, CheckpointError::NoManifest { name, .. } if name == "model.json"),
        "{err}"
    );
    assert!(
        err.to_string().contains(&dir.display().to_string()),
        "{err}"
    );
    let trusted = ckpt.clone().allow_unverified();
    assert_eq!(
        trusted.get_verified_bytes("model.json").unwrap().as_ref(),
        br#"{"w": 9.5}"#
    );
    // Written again, every file is listed and no opt-in is needed.
    let again = tmp.path().join("again");
    trusted.to_directory(&again).unwrap();
    let again = Checkpoint::from_directory(&again).unwrap();
    assert!(again.is_verified("model.json"));

    // Entries put by this process are its own.
    let mut ckpt = ckpt;
    ckpt.put_bytes("model.json", "{}").unwrap();
    assert!(ckpt.is_verified("model.json"));
    // Absent entries are named as absent, not as unverified.
    let err = ckpt.get_verified_bytes("nope.json").unwrap_err();
    assert!(
        matches!(err, CheckpointError::EntryNotFound { .. }),
        "{err}"
    );
}

#[cfg(unix)]
#[test]
fn a_link_to_a_folder_is_named_as_such() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("ck");
    saved(&dir);
    std::os::unix::fs::symlink(&dir, dir.join("self")).unwrap();
    let err = Checkpoint::from_directory(&dir).unwrap_err();
    assert!(
        matches!(&err, CheckpointError::SymlinkToFolder { path, .. } if path.ends_with("self")),
        "{err}"
    );
    assert!(!err.to_string().contains("outside"), "{err}");
    fs::remove_file(dir.join("self")).unwrap();
    std::os::unix::fs::symlink(dir.join("model"), dir.join("model-link")).unwrap();
    let err = Checkpoint::from_directory(&dir).unwrap_err();
    assert!(
        matches!(err, CheckpointError::SymlinkToFolder { .. }),
        "{err}"
    );
}
