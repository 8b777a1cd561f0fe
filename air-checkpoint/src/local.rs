//! The local directory form: walking a checkpoint directory, verified copies, atomic publish.

use std::{
    collections::BTreeMap,
    fs,
    io::{self, Read, Write},
    path::{Path, PathBuf},
};

use tempfile::TempDir;

use crate::{
    CheckpointError, Result,
    error::io_err,
    manifest::{FileRecord, MANIFEST_NAME, Verifier},
};

/// Copy buffer: large enough that syscall overhead vanishes next to memcpy and hashing.
const COPY_BUFFER: usize = 4 << 20;

/// What a checkpoint directory holds: file sizes by entry name, and the manifest if present.
pub(crate) struct Listing {
    pub(crate) files: BTreeMap<String, u64>,
    pub(crate) manifest: Option<Vec<u8>>,
}

/// Lists a directory's files (recursively) without reading their contents.
pub(crate) fn walk(root: &Path) -> Result<Listing> {
    let meta = match fs::metadata(root) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(CheckpointError::DirectoryNotFound {
                path: root.to_owned(),
            });
        }
        Err(e) => return Err(io_err(root)(e)),
    };
    if !meta.is_dir() {
        return Err(CheckpointError::NotADirectory {
            path: root.to_owned(),
        });
    }
    let canonical_root = fs::canonicalize(root).map_err(io_err(root))?;
    // The manifest is read by path before the walk: the path always names one complete
    // version (writers swap whole directories), while a walk that races a swap can iterate the
    // replaced version as it is deleted and miss its manifest, which would make the directory
    // look foreign and skip verification. With the manifest in hand, any mix is caught.
    let manifest_path = root.join(MANIFEST_NAME);
    let manifest = match fs::read(&manifest_path) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_err(manifest_path)(e)),
    };
    let mut files = BTreeMap::new();
    let mut pending = vec![(root.to_owned(), String::new())];
    while let Some((dir, prefix)) = pending.pop() {
        for entry in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let entry = entry.map_err(io_err(&dir))?;
            let path = entry.path();
            let file_name = entry.file_name();
            let Some(file_name) = file_name.to_str() else {
                return Err(CheckpointError::InvalidEntryName {
                    name: path.display().to_string(),
                    reason: "the file name is not valid UTF-8",
                });
            };
            let name = format!("{prefix}{file_name}");
            let kind = entry.file_type().map_err(io_err(&path))?;
            let meta = if kind.is_symlink() {
                let target = fs::canonicalize(&path).map_err(io_err(&path))?;
                let meta = fs::metadata(&target).map_err(io_err(&target))?;
                if !target.starts_with(&canonical_root) {
                    return Err(CheckpointError::SymlinkEscapesRoot {
                        path,
                        target,
                        root: canonical_root,
                    });
                }
                if meta.is_dir() {
                    return Err(CheckpointError::SymlinkToFolder { path, target });
                }
                meta
            } else {
                entry.metadata().map_err(io_err(&path))?
            };
            if meta.is_dir() {
                pending.push((path, format!("{name}/")));
            } else if meta.is_file() {
                if name != MANIFEST_NAME {
                    crate::name::validate(&name)?;
                    files.insert(name, meta.len());
                }
            } else {
                tracing::warn!(path = %path.display(), "skipping a special file (socket, fifo or device) in a checkpoint directory");
            }
        }
    }
    Ok(Listing { files, manifest })
}

/// Copies `src` to `dst`, hashing on the way and checking against the expected record.
pub(crate) fn copy_verified(
    src: &Path,
    dst: &Path,
    mut verifier: Verifier<'_>,
) -> Result<FileRecord> {
    let mut input = fs::File::open(src).map_err(io_err(src))?;
    let mut output = fs::File::create(dst).map_err(io_err(dst))?;
    let mut buffer = vec![0u8; COPY_BUFFER];
    loop {
        let n = match input.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(src)(e)),
        };
        verifier.update(&buffer[..n]);
        output.write_all(&buffer[..n]).map_err(io_err(dst))?;
    }
    verifier.finish()
}

/// Reads a whole file, checking it against the expected record.
pub(crate) fn read_verified(
    src: &Path,
    name: &str,
    location: &str,
    expected: Option<FileRecord>,
) -> Result<Vec<u8>> {
    let mut input = fs::File::open(src).map_err(io_err(src))?;
    let size = input.metadata().map_err(io_err(src))?.len();
    let mut bytes = Vec::with_capacity(size as usize);
    let mut verifier = Verifier::new(name, location, expected);
    // Hash each chunk right after reading it, while it is still in cache: one pass over
    // memory instead of two.
    loop {
        let start = bytes.len();
        let n = (&mut input)
            .take(COPY_BUFFER as u64)
            .read_to_end(&mut bytes)
            .map_err(io_err(src))?;
        if n == 0 {
            break;
        }
        verifier.update(&bytes[start..]);
    }
    verifier.finish()?;
    Ok(bytes)
}

/// A checkpoint being written: a hidden temp sibling of the destination, published by rename.
///
/// Until [`Staging::publish`], readers of the destination see the old checkpoint (or nothing);
/// dropping an unpublished staging removes the temp directory. The writer holds an exclusive
/// lock (`flock`) on its temp directory while it lives; the kernel releases it when the
/// process dies, even by SIGKILL, so a later writer to the same destination can tell a dead
/// writer's leftover (lockable: removed) from a live writer's folder (locked: left alone).
pub(crate) struct Staging {
    tmp: TempDir,
    dest: PathBuf,
    /// The open temp directory whose lock marks this writer as alive.
    _lock: fs::File,
}

/// The hidden temp siblings of destination folder `name` start with this.
fn temp_prefix(name: &str) -> String {
    format!(".{name}.air-tmp-")
}

impl Staging {
    pub(crate) fn new(dest: &Path) -> Result<Self> {
        check_destination(dest)?;
        let file_name =
            dest.file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| CheckpointError::Io {
                    path: dest.to_owned(),
                    source: io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "destination has no final folder name",
                    ),
                })?;
        let parent = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&parent).map_err(io_err(&parent))?;
        let prefix = temp_prefix(file_name);
        let (tmp, lock) = loop {
            let tmp = tempfile::Builder::new()
                .prefix(&prefix)
                .tempdir_in(&parent)
                .map_err(io_err(&parent))?;
            // A cleaner may take the new folder for a dead writer's before this writer holds
            // its lock: then it is gone (or replaced), and this writer starts over.
            let lock = match fs::File::open(tmp.path()) {
                Ok(lock) => lock,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err(tmp.path())(e)),
            };
            if let Err(e) = lock.lock() {
                // A file system without locks (some network mounts): cleaners cannot take a
                // lock there either, so they leave every temp folder alone.
                tracing::debug!(path = %tmp.path().display(), error = %e, "cannot lock the temp folder; writing without a lock");
                break (tmp, lock);
            }
            if same_file(&lock, tmp.path()) {
                break (tmp, lock);
            }
        };
        remove_stale_temps(&parent, &prefix, tmp.path());
        Ok(Self {
            tmp,
            dest: dest.to_owned(),
            _lock: lock,
        })
    }

    pub(crate) fn root(&self) -> &Path {
        self.tmp.path()
    }

    /// The path to write entry `name` to, with its parent folders created.
    pub(crate) fn entry_path(&self, name: &str) -> Result<PathBuf> {
        let path = self.tmp.path().join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        Ok(path)
    }

    /// Atomically makes the staged directory the destination, replacing an older checkpoint.
    pub(crate) fn publish(self) -> Result<()> {
        match fs::rename(self.tmp.path(), &self.dest) {
            Ok(()) => {
                let _ = self.tmp.keep();
                Ok(())
            }
            Err(e) if self.dest.is_dir() => {
                // Someone (maybe a racing writer) put a directory there: replace it only if it
                // is a checkpoint, then drop the old one with the temp directory.
                tracing::debug!(dest = %self.dest.display(), error = %e, "destination exists, exchanging");
                check_destination(&self.dest)?;
                exchange(self.tmp.path(), &self.dest).map_err(io_err(&self.dest))?;
                Ok(())
            }
            Err(e) => Err(io_err(&self.dest)(e)),
        }
    }
}

/// Whether the open `file` is still what `path` names.
fn same_file(file: &fs::File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), fs::symlink_metadata(path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        path.is_dir()
    }
}

/// Removes the temp folders that writers of the same destination left behind when they died
/// (a SIGKILL skips every destructor): siblings named `prefix*` whose lock nobody holds. A
/// folder whose lock is held belongs to a live writer and is left alone; any failure here is
/// logged and ignored (cleaning up must never fail a write).
fn remove_stale_temps(parent: &Path, prefix: &str, own: &Path) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let path = entry.path();
        // `.old` folders belong to the two-rename fallback of `exchange`, mid-swap.
        if !name.starts_with(prefix) || name.ends_with(".old") || path == own {
            continue;
        }
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let Ok(lock) = fs::File::open(&path) else {
            continue;
        };
        match lock.try_lock() {
            Ok(()) => match fs::remove_dir_all(&path) {
                Ok(()) => {
                    tracing::info!(path = %path.display(), "removed a dead writer's temp folder")
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot remove a dead writer's temp folder")
                }
            },
            Err(fs::TryLockError::WouldBlock) => {
                tracing::debug!(path = %path.display(), "temp folder of a live writer; left alone")
            }
            Err(fs::TryLockError::Error(e)) => {
                tracing::debug!(path = %path.display(), error = %e, "cannot lock a temp folder; left alone")
            }
        }
    }
}

/// A destination may be absent, an empty directory, or a checkpoint (which gets replaced).
fn check_destination(dest: &Path) -> Result<()> {
    match fs::symlink_metadata(dest) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(dest)(e)),
        Ok(m) if !m.is_dir() => Err(CheckpointError::NotADirectory {
            path: dest.to_owned(),
        }),
        Ok(_) => {
            let empty = fs::read_dir(dest).map_err(io_err(dest))?.next().is_none();
            if empty || dest.join(MANIFEST_NAME).is_file() {
                Ok(())
            } else {
                Err(CheckpointError::DestinationNotEmpty {
                    location: dest.display().to_string(),
                })
            }
        }
    }
}

/// Swaps two directories atomically where the OS can (Linux `renameat2(RENAME_EXCHANGE)`),
/// else by two renames (a reader may briefly find nothing, never a partial checkpoint).
fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{CWD, RenameFlags, renameat_with};
        match renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE) {
            Ok(()) => return Ok(()),
            Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => {}
            Err(e) => return Err(e.into()),
        }
    }
    let aside = a.with_extension("old");
    fs::rename(b, &aside)?;
    fs::rename(a, b)?;
    fs::rename(&aside, a)
}
