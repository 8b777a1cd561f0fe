//! [`RunDir`]: one run's or experiment's directory, a local folder or a prefix at a URI, and
//! the run layout inside it (whole files such as `result.json`, `checkpoint_NNNNNN` folders).
//! The trainer writes its runs through it and the tuner its experiments and trials, so the
//! layout and the local-or-remote file I/O are written once.

use std::{collections::BTreeSet, path::PathBuf};

use air_checkpoint::{
    Checkpoint, StorageOptions,
    storage::{self, Resolved, StoreLocation},
};
use futures::TryStreamExt;
use object_store::ObjectStoreExt;

use crate::{TrainError, error::Result};

/// The prefix of every checkpoint folder's name in a run directory.
pub const CHECKPOINT_PREFIX: &str = "checkpoint_";

/// A run's directory: a local folder, or a prefix in an object store (`s3://`, `memory://`, ...).
#[derive(Debug, Clone)]
pub struct RunDir {
    place: Place,
    /// This handle made the (local) directory: it held nothing then.
    made_empty: bool,
}

#[derive(Debug, Clone)]
enum Place {
    Local(PathBuf),
    Store {
        location: StoreLocation,
        options: StorageOptions,
    },
}

impl RunDir {
    /// Directory `name` under `storage_path` (a path or URI), created if local.
    pub fn create(storage_path: &str, name: &str, options: &StorageOptions) -> Result<Self> {
        let mut dir = Self::at(
            &format!("{}/{name}", storage_path.trim_end_matches('/')),
            options,
        )?;
        if let Place::Local(path) = &dir.place {
            // One `mkdir` in the common case (the parent exists); the leaf made here is empty.
            dir.made_empty = match std::fs::create_dir(path) {
                Ok(()) => true,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && path.is_dir() => false,
                Err(_) => {
                    std::fs::create_dir_all(path)
                        .map_err(|e| TrainError::storage(path.display().to_string(), e))?;
                    false
                }
            };
        }
        Ok(dir)
    }

    /// The directory at `uri` (a path or URI) as it is; nothing is created.
    pub fn at(uri: &str, options: &StorageOptions) -> Result<Self> {
        let place = match storage::resolve(uri, options)? {
            Resolved::Local(path) => Place::Local(path),
            Resolved::Store(location) => Place::Store {
                location,
                options: options.clone(),
            },
        };
        Ok(Self {
            place,
            made_empty: false,
        })
    }

    /// Whether this handle made the directory, so that it held no file then (a file's
    /// existence need not be asked).
    pub(crate) fn made_empty(&self) -> bool {
        self.made_empty
    }

    /// The directory as a path or URI (no trailing `/`).
    pub fn path(&self) -> String {
        match &self.place {
            Place::Local(p) => p.display().to_string(),
            Place::Store { location, .. } => location.uri.trim_end_matches('/').to_owned(),
        }
    }

    /// Whether the directory is on the local file system.
    pub fn is_local(&self) -> bool {
        matches!(self.place, Place::Local(_))
    }

    /// Entry `name` as a path or URI.
    pub fn child(&self, name: &str) -> String {
        match &self.place {
            Place::Local(p) => p.join(name).display().to_string(),
            Place::Store { .. } => format!("{}/{name}", self.path()),
        }
    }

    /// File `name`'s bytes, or `None` if it does not exist.
    pub fn read(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let fail = |e: crate::BoxError| TrainError::storage(self.child(name), e);
        match &self.place {
            Place::Local(dir) => match std::fs::read(dir.join(name)) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(fail(e.into())),
            },
            Place::Store { location, .. } => {
                let got = storage::block_on(async {
                    location
                        .store
                        .get(&location.child(name))
                        .await?
                        .bytes()
                        .await
                });
                match got {
                    Ok(b) => Ok(Some(b.to_vec())),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(fail(e.into())),
                }
            }
        }
    }

    /// Writes file `name` whole: a local file is replaced atomically (temporary file and
    /// rename), an object is put in one request.
    pub fn write(&self, name: &str, bytes: Vec<u8>) -> Result<()> {
        let fail = |e: crate::BoxError| TrainError::storage(self.child(name), e);
        match &self.place {
            Place::Local(dir) => {
                let tmp = dir.join(format!(".{name}.tmp"));
                std::fs::write(&tmp, &bytes)
                    .and_then(|()| std::fs::rename(&tmp, dir.join(name)))
                    .map_err(|e| fail(e.into()))
            }
            Place::Store { location, .. } => {
                storage::block_on(location.store.put(&location.child(name), bytes.into()))
                    .map(|_| ())
                    .map_err(|e| fail(e.into()))
            }
        }
    }

    /// File `name` opened for appending (created if missing), in a local directory; `None`
    /// for an object store, which cannot append.
    pub(crate) fn open_append(&self, name: &str) -> Result<Option<std::fs::File>> {
        match &self.place {
            Place::Local(dir) => std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join(name))
                .map(Some)
                .map_err(|e| TrainError::storage(self.child(name), e)),
            Place::Store { .. } => Ok(None),
        }
    }

    /// Removes file `name`; a file that is not there is not an error.
    pub fn remove_file(&self, name: &str) -> Result<()> {
        let fail = |e: crate::BoxError| TrainError::storage(self.child(name), e);
        match &self.place {
            Place::Local(dir) => match std::fs::remove_file(dir.join(name)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(fail(e.into())),
                _ => Ok(()),
            },
            Place::Store { location, .. } => {
                match storage::block_on(location.store.delete(&location.child(name))) {
                    Err(e) if !matches!(e, object_store::Error::NotFound { .. }) => {
                        Err(fail(e.into()))
                    }
                    _ => Ok(()),
                }
            }
        }
    }

    /// Saves `checkpoint` as folder `name` and returns it as read back from there.
    pub fn save_checkpoint(&self, name: &str, checkpoint: &Checkpoint) -> Result<Checkpoint> {
        match &self.place {
            Place::Local(dir) => {
                let path = dir.join(name);
                checkpoint.to_directory(&path)?;
                Ok(Checkpoint::from_directory(&path)?)
            }
            Place::Store { options, .. } => {
                let uri = self.child(name);
                checkpoint.to_uri_with(&uri, options)?;
                Ok(Checkpoint::from_uri_with(&uri, options)?)
            }
        }
    }

    /// Checkpoint folder `name`.
    pub fn checkpoint(&self, name: &str) -> Result<Checkpoint> {
        Ok(match &self.place {
            Place::Local(dir) => Checkpoint::from_directory(dir.join(name))?,
            Place::Store { options, .. } => Checkpoint::from_uri_with(&self.child(name), options)?,
        })
    }

    /// The names of the `checkpoint_*` folders, oldest first.
    pub fn checkpoint_names(&self) -> Result<Vec<String>> {
        let fail = |e: crate::BoxError| TrainError::storage(self.path(), e);
        let mut names: Vec<String> = match &self.place {
            Place::Local(dir) => std::fs::read_dir(dir)
                .map_err(|e| fail(e.into()))?
                .filter_map(|e| e.ok())
                .filter(|e| e.path().is_dir())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with(CHECKPOINT_PREFIX))
                .collect(),
            Place::Store { location, .. } => {
                let objects: Vec<_> = storage::block_on(async {
                    location
                        .store
                        .list(Some(&location.prefix))
                        .try_collect::<Vec<_>>()
                        .await
                })
                .map_err(|e| fail(e.into()))?;
                let mut set = BTreeSet::new();
                for o in objects {
                    if let Some(rel) = location.relative_name(&o.location)
                        && let Some(first) = rel.split('/').next()
                        && first.starts_with(CHECKPOINT_PREFIX)
                    {
                        set.insert(first.to_owned());
                    }
                }
                set.into_iter().collect()
            }
        };
        names.sort();
        Ok(names)
    }

    /// The newest complete checkpoint folder: one that opens (a writer that did not finish
    /// left it marked incomplete, or its files disagree with the manifest) and has a manifest.
    /// Its entries are checked against the manifest when they are read, not here: choosing
    /// does not download or hash whole checkpoints. `None` when there is none or the directory
    /// cannot be listed.
    pub fn newest_checkpoint(&self) -> Option<Checkpoint> {
        let names = self.checkpoint_names().ok()?;
        names.iter().rev().find_map(|n| {
            let c = self.checkpoint(n).ok()?;
            c.has_manifest().then_some(c)
        })
    }

    /// Deletes checkpoint folder `name` and everything in it.
    pub fn delete_checkpoint(&self, name: &str) -> Result<()> {
        let fail = |e: crate::BoxError| TrainError::storage(self.child(name), e);
        match &self.place {
            Place::Local(dir) => {
                std::fs::remove_dir_all(dir.join(name)).map_err(|e| fail(e.into()))
            }
            Place::Store { location, .. } => {
                let prefix = location.child(name);
                storage::block_on(async {
                    let objects: Vec<_> = location.store.list(Some(&prefix)).try_collect().await?;
                    for o in objects {
                        location.store.delete(&o.location).await?;
                    }
                    Ok::<(), object_store::Error>(())
                })
                .map_err(|e| fail(e.into()))
            }
        }
    }

    /// Whether entry `name` exists (remote: only files, asked with one `HEAD`; a local folder
    /// counts too).
    pub fn exists(&self, name: &str) -> Result<bool> {
        match &self.place {
            Place::Local(dir) => Ok(dir.join(name).exists()),
            Place::Store { location, .. } => {
                match storage::block_on(location.store.head(&location.child(name))) {
                    Ok(_) => Ok(true),
                    Err(object_store::Error::NotFound { .. }) => Ok(false),
                    Err(e) => Err(TrainError::storage(self.child(name), e)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_and_memory_directories_read_write_and_list_the_same_way() {
        let tmp = tempfile::tempdir().unwrap();
        let local = tmp.path().display().to_string();
        let options = StorageOptions::default();
        for root in [local.as_str(), "memory://run-dir-test/exp"] {
            let dir = RunDir::create(root, "trial_0", &options).unwrap();
            assert_eq!(dir.is_local(), !root.contains("memory"));
            assert_eq!(dir.read("result.json").unwrap(), None);
            dir.write("result.json", b"{}\n".to_vec()).unwrap();
            if let Some(mut f) = dir.open_append("result.json").unwrap() {
                std::io::Write::write_all(&mut f, b"{}\n").unwrap();
            } else {
                dir.write("result.json", b"{}\n{}\n".to_vec()).unwrap();
            }
            assert_eq!(dir.read("result.json").unwrap().unwrap(), b"{}\n{}\n");
            assert!(dir.exists("result.json").unwrap());
            dir.remove_file("result.json").unwrap();
            dir.remove_file("result.json").unwrap();
            assert!(!dir.exists("result.json").unwrap());
            let mut c = Checkpoint::new();
            c.put_bytes("w", b"1".to_vec()).unwrap();
            for n in ["checkpoint_000001", "checkpoint_000000"] {
                dir.save_checkpoint(n, &c).unwrap();
            }
            assert_eq!(
                dir.checkpoint_names().unwrap(),
                ["checkpoint_000000", "checkpoint_000001"]
            );
            let newest = dir.newest_checkpoint().unwrap();
            assert_eq!(newest.get_bytes("w").unwrap().as_ref(), b"1");
            dir.delete_checkpoint("checkpoint_000001").unwrap();
            assert_eq!(dir.checkpoint_names().unwrap(), ["checkpoint_000000"]);
        }
    }
}
