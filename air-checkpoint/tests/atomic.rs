//! Writes are atomic: racing writers leave one complete checkpoint, a failed or killed writer
//! leaves the previous one intact, and readers never see a mix.

mod common;

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use air_checkpoint::Checkpoint;
use common::to_vecs;
use tempfile::TempDir;

/// A checkpoint whose every file carries the writer's id, so a mix is detectable.
fn writer_checkpoint(writer: u8, big: usize) -> Checkpoint {
    Checkpoint::from_dict([
        ("weights/a.bin".to_owned(), vec![writer; big]),
        (
            "weights/b.bin".to_owned(),
            vec![writer.wrapping_add(100); big / 2 + 1],
        ),
        (
            "config.json".to_owned(),
            format!("{{\"writer\": {writer}}}").into_bytes(),
        ),
    ])
    .unwrap()
}

/// The files of the checkpoint at `dest`.
fn read_back(dest: &Path) -> BTreeMap<String, Vec<u8>> {
    to_vecs(Checkpoint::from_directory(dest).unwrap().to_dict().unwrap())
}

fn leftovers(parent: &Path) -> Vec<PathBuf> {
    fs::read_dir(parent)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .contains(".air-tmp-")
        })
        .collect()
}

#[test]
fn racing_writers_leave_one_complete_checkpoint_and_readers_never_see_a_mix() {
    let tmp = TempDir::new().unwrap();
    let dest = tmp.path().join("latest");
    let writers: Vec<Checkpoint> = (0..6).map(|w| writer_checkpoint(w, 200_000)).collect();
    let expected: Vec<BTreeMap<String, Vec<u8>>> = writers
        .iter()
        .map(|c| to_vecs(c.to_dict().unwrap()))
        .collect();
    let done = Arc::new(AtomicBool::new(false));

    std::thread::scope(|scope| {
        let reader = {
            let (dest, expected, done) = (&dest, &expected, done.clone());
            scope.spawn(move || {
                let mut complete_reads = 0;
                // Until the writers are done, and at least once: a test that read nothing
                // would have checked nothing.
                while !done.load(Ordering::Relaxed) || complete_reads == 0 {
                    // A read may fail while a swap happens under it (detected by the manifest),
                    // but a read that succeeds is always one writer's checkpoint, whole.
                    if let Ok(dict) = Checkpoint::from_directory(dest).and_then(|c| c.to_dict()) {
                        let dict = to_vecs(dict);
                        assert!(expected.contains(&dict), "reader saw a mixed checkpoint");
                        complete_reads += 1;
                    }
                }
                complete_reads
            })
        };
        let handles: Vec<_> = writers
            .iter()
            .map(|ckpt| {
                let dest = &dest;
                scope.spawn(move || {
                    for _ in 0..5 {
                        ckpt.to_directory(dest).unwrap();
                    }
                })
            })
            .collect();
        // Every writer is joined before the reader stops, and a writer's failure is reported
        // after that (rather than leaving the reader spinning).
        let written: Vec<_> = handles.into_iter().map(|h| h.join()).collect();
        done.store(true, Ordering::Relaxed);
        let complete_reads = reader.join().unwrap();
        assert!(
            complete_reads >= 1,
            "the reader never read a whole checkpoint"
        );
        for w in written {
            w.expect("a writer failed");
        }
    });

    let result = Checkpoint::from_directory(&dest).unwrap();
    result.verify().unwrap();
    assert!(expected.contains(&to_vecs(result.to_dict().unwrap())));
    assert!(
        leftovers(tmp.path()).is_empty(),
        "temp directories left: {:?}",
        leftovers(tmp.path())
    );
}

#[test]
fn a_failed_write_keeps_the_previous_checkpoint() {
    let tmp = TempDir::new().unwrap();
    let dest = tmp.path().join("ckpt");
    let old = writer_checkpoint(1, 1000);
    old.to_directory(&dest).unwrap();

    // A source that turns out corrupted halfway through the copy.
    let src = tmp.path().join("src");
    writer_checkpoint(2, 1000).to_directory(&src).unwrap();
    let source = Checkpoint::from_directory(&src).unwrap();
    fs::write(src.join("weights/b.bin"), vec![0u8; 501]).unwrap();
    assert!(source.to_directory(&dest).is_err());

    assert_eq!(read_back(&dest), to_vecs(old.to_dict().unwrap()));
    assert!(leftovers(tmp.path()).is_empty());
}

const CHILD_ENV: &str = "AIR_CHECKPOINT_KILL_TEST_DEST";

/// Runs as the child of `a_killed_writer_leaves_no_partial_checkpoint`: writes big checkpoints
/// to the destination until killed.
#[test]
fn killed_writer_child() {
    let Some(dest) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let mut writer = 0u8;
    loop {
        writer = writer.wrapping_add(1);
        writer_checkpoint(writer, 8 << 20)
            .to_directory(&dest)
            .unwrap();
    }
}

/// Starts a writer child, kills it with SIGKILL after `delay`, and waits for it.
fn kill_writer_after(dest: &Path, delay: Duration) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "killed_writer_child", "--nocapture"])
        .env(CHILD_ENV, dest)
        .spawn()
        .unwrap();
    std::thread::sleep(delay);
    child.kill().unwrap(); // SIGKILL: no destructor, no cleanup runs
    child.wait().unwrap();
}

#[cfg(unix)]
#[test]
fn the_next_write_removes_what_killed_writers_left_and_spares_live_writers() {
    let tmp = TempDir::new().unwrap();
    let dest = tmp.path().join("ckpt");
    // Kill writers until one dies mid-write (most do: writing is most of their loop).
    let mut attempts = 0;
    while leftovers(tmp.path()).is_empty() {
        attempts += 1;
        assert!(attempts <= 50, "no writer was ever killed mid-write");
        kill_writer_after(&dest, Duration::from_millis(20 + 10 * attempts));
    }
    let dead = leftovers(tmp.path());
    // A live writer's folder: its lock is held (by another open file, as another process's
    // would be).
    let live = tmp.path().join(".ckpt.air-tmp-live");
    fs::create_dir(&live).unwrap();
    fs::write(live.join("half.bin"), [1u8; 10]).unwrap();
    let lock = fs::File::open(&live).unwrap();
    lock.lock().unwrap();
    // Another destination's leftovers are not this write's business.
    let other = tmp.path().join(".other.air-tmp-x");
    fs::create_dir(&other).unwrap();

    let ckpt = writer_checkpoint(9, 1000);
    ckpt.to_directory(&dest).unwrap();
    assert_eq!(read_back(&dest), to_vecs(ckpt.to_dict().unwrap()));
    for d in &dead {
        assert!(
            !d.exists(),
            "a dead writer's folder is left: {}",
            d.display()
        );
    }
    let mut left = leftovers(tmp.path());
    left.sort();
    let mut expected = vec![live.clone(), other.clone()];
    expected.sort();
    assert_eq!(left, expected);
    assert!(
        live.join("half.bin").exists(),
        "the live writer's files were touched"
    );
    // Once the live writer is gone, the next write cleans its folder too.
    drop(lock);
    ckpt.to_directory(&dest).unwrap();
    assert!(!live.exists());
    assert!(other.exists());
}

/// The writer id recorded in the checkpoint at `dest`, after checking that it is one writer's
/// whole checkpoint.
fn whole_checkpoint_writer(dest: &Path, big: usize) -> u8 {
    let ckpt = Checkpoint::from_directory(dest).expect("destination holds a complete checkpoint");
    ckpt.verify().expect("every file matches the manifest");
    let dict = to_vecs(ckpt.to_dict().unwrap());
    let writer =
        serde_json::from_slice::<serde_json::Value>(&dict["config.json"]).unwrap()["writer"]
            .as_u64()
            .unwrap() as u8;
    assert_eq!(
        dict,
        to_vecs(writer_checkpoint(writer, big).to_dict().unwrap())
    );
    writer
}

#[cfg(unix)]
#[test]
fn a_killed_writer_leaves_no_partial_checkpoint() {
    let tmp = TempDir::new().unwrap();
    let dest = tmp.path().join("ckpt");
    // Writer 0's checkpoint is there first, so every kill below is checked against a
    // destination that must hold a whole checkpoint: writer 0's, or a later one, never a mix.
    writer_checkpoint(0, 8 << 20).to_directory(&dest).unwrap();
    let mut replaced = false;
    let mut attempts = 0u64;
    // Kill writers at growing delays until one has replaced writer 0 (so a completed write by a
    // killed process was seen too); check the destination after every kill.
    while !replaced {
        attempts += 1;
        assert!(attempts <= 50, "no killed writer ever completed a write");
        kill_writer_after(&dest, Duration::from_millis(5 + 20 * attempts));
        replaced = whole_checkpoint_writer(&dest, 8 << 20) != 0;
    }
}
