use std::{
    collections::BTreeMap,
    fmt,
    ops::Deref,
    path::{Path, PathBuf},
};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Map, Value};
use tempfile::TempDir;

use crate::{
    CheckpointError, Result,
    error::io_err,
    local::{self, Staging},
    manifest::{self, FileRecord, MANIFEST_NAME, Manifest},
    progress::Progress,
    remote, runtime,
    storage::{self, Resolved, StorageOptions, StoreLocation},
};

/// A model as a set of named files plus JSON metadata.
///
/// A checkpoint lives in one of three forms: in memory (a dict of entry name → bytes), in a
/// local directory, or under a URI in object storage. Any conversion between forms keeps every
/// file byte for byte, including files this crate knows nothing about. Entries added with
/// [`put_bytes`](Self::put_bytes) or metadata changes are held in memory until the checkpoint
/// is written somewhere; the source is never modified in place.
///
/// Every checkpoint this crate writes carries a manifest (`.air_checkpoint.json`) with a format
/// version, the metadata, and each file's size and checksum; reading checks them, so truncated,
/// corrupted or foreign-version checkpoints are refused with an error naming the bad entry.
/// Directories without a manifest (say, an MLflow model) are read as they are by
/// [`get_bytes`](Self::get_bytes), but loaders of our own entries (models, preprocessors,
/// configs) read through [`get_verified_bytes`](Self::get_verified_bytes), which refuses a file
/// no manifest vouches for — a deleted manifest or a file dropped into a checkpoint after it was
/// written — unless the program opted in with [`allow_unverified`](Self::allow_unverified).
///
/// Cloning is cheap: in-memory entries are reference-counted.
#[derive(Clone)]
pub struct Checkpoint {
    source: Source,
    /// Entries stored in the source, minus those overridden or removed since.
    stored: BTreeMap<String, Stored>,
    /// Entries held in memory: all of them for the in-memory form.
    added: BTreeMap<String, Bytes>,
    metadata: Map<String, Value>,
    /// Whether anything differs from the source (decides if `as_directory` may reuse it).
    modified: bool,
    /// Whether the source had a manifest (always true for the in-memory form: everything in
    /// it was put there by this process).
    has_manifest: bool,
    /// Whether [`Checkpoint::get_verified_bytes`] may return entries no manifest lists.
    allow_unverified: bool,
}

impl Default for Checkpoint {
    fn default() -> Self {
        Self {
            source: Source::Memory,
            stored: BTreeMap::new(),
            added: BTreeMap::new(),
            metadata: Map::new(),
            modified: false,
            has_manifest: true,
            allow_unverified: false,
        }
    }
}

#[derive(Clone, Default)]
enum Source {
    #[default]
    Memory,
    Directory(PathBuf),
    Store(StoreLocation),
}

#[derive(Clone, Copy)]
struct Stored {
    size: u64,
    /// From the manifest; `None` for files of a foreign (manifest-less) checkpoint.
    record: Option<FileRecord>,
}

/// Below this many bytes, entries are copied on the calling thread alone.
const PARALLEL_BYTES: u64 = 8 << 20;
/// Most entries one conversion moves at once (threads for local copies, requests for stores).
const MAX_PARALLEL: usize = 4;

/// Applies `f` to every entry, on up to [`MAX_PARALLEL`] threads when there is enough data:
/// one core cannot saturate a page-cache copy or a network transfer while also checksumming.
/// Results come back in input order; the first error (in input order) wins.
fn parallel_map<R: Send>(
    entries: &[(&str, Content<'_>)],
    f: impl Fn(&(&str, Content<'_>)) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let total: u64 = entries.iter().map(|(_, c)| c.size()).sum();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_PARALLEL)
        .min(entries.len());
    if threads <= 1 || total < PARALLEL_BYTES {
        return entries.iter().map(&f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let worker = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(entry) = entries.get(i) else {
                break done;
            };
            done.push((i, f(entry)));
        }
    };
    let mut results: Vec<(usize, Result<R>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads).map(|_| scope.spawn(worker)).collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// Which form a checkpoint is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointForm<'a> {
    /// Entries held in memory.
    Memory,
    /// Backed by a local directory.
    Directory(&'a Path),
    /// Backed by an object store URI.
    Uri(&'a str),
}

/// One entry of a checkpoint listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryInfo {
    /// Relative name, `/` between folders.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
}

/// A local directory holding a checkpoint's files, from [`Checkpoint::as_directory`].
///
/// For a checkpoint that already is an unmodified local directory this is that directory
/// itself; otherwise it is a temporary copy that is deleted when the guard drops.
#[derive(Debug)]
pub struct DirectoryGuard {
    path: PathBuf,
    _temp: Option<TempDir>,
}

impl DirectoryGuard {
    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the directory is a temporary copy (deleted on drop).
    pub fn is_temporary(&self) -> bool {
        self._temp.is_some()
    }
}

impl Deref for DirectoryGuard {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for DirectoryGuard {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checkpoint")
            .field("form", &self.form())
            .field("entries", &self.len())
            .field("bytes", &self.size_bytes())
            .field("modified", &self.modified)
            .finish()
    }
}

/// One entry's content, wherever it lives.
enum Content<'a> {
    Memory(&'a Bytes),
    Stored(Stored),
}

impl Checkpoint {
    // ---- construction -------------------------------------------------------------------

    /// An empty in-memory checkpoint (the same as `Checkpoint::default()`).
    pub fn new() -> Self {
        Self::default()
    }

    /// An in-memory checkpoint from entry name → bytes pairs.
    ///
    /// Names are relative paths (`"model/weights.bin"`); names that escape the root, absolute
    /// names and the reserved manifest name are refused.
    pub fn from_dict<I, K, V>(entries: I) -> Result<Self>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<Bytes>,
    {
        let mut checkpoint = Self::new();
        for (name, bytes) in entries {
            checkpoint.put_bytes(name, bytes)?;
        }
        checkpoint.modified = false;
        Ok(checkpoint)
    }

    /// A checkpoint backed by a local directory; nothing is copied.
    ///
    /// The directory is listed (not read) and, if it has a manifest, checked against it: a
    /// missing or wrongly sized file is an error now, a corrupted one when it is read.
    pub fn from_directory(path: impl AsRef<Path>) -> Result<Self> {
        let root = path.as_ref().to_owned();
        let listing = local::walk(&root)?;
        let location = root.display().to_string();
        let has_manifest = listing.manifest.is_some();
        let (stored, metadata) = reconcile(&location, listing.files, listing.manifest.as_deref())?;
        Ok(Self {
            source: Source::Directory(root),
            stored,
            metadata,
            has_manifest,
            ..Self::default()
        })
    }

    /// A checkpoint at a URI (`s3://bucket/path`, `memory://name/path`, `file:///path`, or a
    /// plain local path), configured from the environment.
    pub fn from_uri(uri: &str) -> Result<Self> {
        Self::from_uri_with(uri, &StorageOptions::new())
    }

    /// [`from_uri`](Self::from_uri) with explicit storage options.
    pub fn from_uri_with(uri: &str, options: &StorageOptions) -> Result<Self> {
        match storage::resolve(uri, options)? {
            Resolved::Local(path) => Self::from_directory(path),
            Resolved::Store(loc) => runtime::block_on(Self::open_store(loc)),
        }
    }

    /// [`from_uri_with`](Self::from_uri_with) for async callers.
    pub async fn from_uri_async(uri: &str, options: &StorageOptions) -> Result<Self> {
        match storage::resolve(uri, options)? {
            Resolved::Local(path) => spawn_blocking(move || Self::from_directory(path)).await,
            Resolved::Store(loc) => Self::open_store(loc).await,
        }
    }

    async fn open_store(loc: StoreLocation) -> Result<Self> {
        let (files, has_manifest) = remote::list(&loc).await?;
        if files.is_empty() && !has_manifest {
            return Err(CheckpointError::NotFound { uri: loc.uri });
        }
        let manifest = if has_manifest {
            Some(remote::get_manifest(&loc).await?)
        } else {
            None
        };
        let (stored, metadata) = reconcile(&loc.uri, files, manifest.as_deref())?;
        Ok(Self {
            source: Source::Store(loc),
            stored,
            metadata,
            has_manifest,
            ..Self::default()
        })
    }

    // ---- inspection ---------------------------------------------------------------------

    /// Which form the checkpoint is in.
    pub fn form(&self) -> CheckpointForm<'_> {
        match &self.source {
            Source::Memory => CheckpointForm::Memory,
            Source::Directory(p) => CheckpointForm::Directory(p),
            Source::Store(loc) => CheckpointForm::Uri(&loc.uri),
        }
    }

    /// The local directory backing this checkpoint, if any.
    pub fn path(&self) -> Option<&Path> {
        match &self.source {
            Source::Directory(p) => Some(p),
            _ => None,
        }
    }

    /// The URI backing this checkpoint, if any.
    pub fn uri(&self) -> Option<&str> {
        match &self.source {
            Source::Store(loc) => Some(&loc.uri),
            _ => None,
        }
    }

    /// All entries, sorted by name.
    pub fn entries(&self) -> Vec<EntryInfo> {
        self.contents()
            .map(|(name, c)| EntryInfo {
                name: name.to_owned(),
                size: c.size(),
            })
            .collect()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.stored.len() + self.added.len()
    }

    /// Whether the checkpoint has no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Total size of all entries in bytes.
    pub fn size_bytes(&self) -> u64 {
        self.contents().map(|(_, c)| c.size()).sum()
    }

    /// Whether entry `name` exists.
    pub fn contains(&self, name: &str) -> bool {
        self.added.contains_key(name) || self.stored.contains_key(name)
    }

    /// Whether entries or metadata were changed since the checkpoint was opened.
    pub fn is_modified(&self) -> bool {
        self.modified
    }

    // ---- metadata -----------------------------------------------------------------------

    /// The checkpoint's metadata (a JSON object; empty for foreign directories).
    pub fn metadata(&self) -> &Map<String, Value> {
        &self.metadata
    }

    /// Replaces the metadata.
    pub fn set_metadata(&mut self, metadata: Map<String, Value>) {
        self.metadata = metadata;
        self.modified = true;
    }

    /// Merges `metadata` into the existing metadata, key by key.
    pub fn update_metadata(&mut self, metadata: Map<String, Value>) {
        self.metadata.extend(metadata);
        self.modified = true;
    }

    /// Sets one metadata key to any serializable value.
    pub fn set_metadata_value<T: Serialize + ?Sized>(
        &mut self,
        key: &str,
        value: &T,
    ) -> Result<()> {
        let value = serde_json::to_value(value).map_err(|source| CheckpointError::Json {
            name: format!("metadata.{key}"),
            source,
        })?;
        self.metadata.insert(key.to_owned(), value);
        self.modified = true;
        Ok(())
    }

    /// One metadata key as a typed value (`None` when absent).
    pub fn metadata_value<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        self.metadata
            .get(key)
            .map(|v| {
                T::deserialize(v).map_err(|source| CheckpointError::Json {
                    name: format!("metadata.{key}"),
                    source,
                })
            })
            .transpose()
    }

    // ---- entries ------------------------------------------------------------------------

    /// Adds or replaces entry `name`.
    pub fn put_bytes(&mut self, name: impl Into<String>, bytes: impl Into<Bytes>) -> Result<()> {
        let name = name.into();
        crate::name::validate(&name)?;
        self.stored.remove(&name);
        self.added.insert(name, bytes.into());
        self.modified = true;
        Ok(())
    }

    /// Adds or replaces entry `name` with `value` as pretty-printed JSON.
    pub fn put_json<T: Serialize + ?Sized>(
        &mut self,
        name: impl Into<String>,
        value: &T,
    ) -> Result<()> {
        let name = name.into();
        let bytes = serde_json::to_vec_pretty(value).map_err(|source| CheckpointError::Json {
            name: name.clone(),
            source,
        })?;
        self.put_bytes(name, bytes)
    }

    /// Removes entry `name`; returns whether it existed.
    pub fn remove(&mut self, name: &str) -> bool {
        let existed = self.added.remove(name).is_some() || self.stored.remove(name).is_some();
        self.modified |= existed;
        existed
    }

    /// The bytes of entry `name`, checked against the manifest.
    pub fn get_bytes(&self, name: &str) -> Result<Bytes> {
        match self.content(name)? {
            Content::Memory(bytes) => Ok(bytes.clone()),
            Content::Stored(stored) => self.read_stored(name, stored),
        }
    }

    /// Entry `name` parsed as JSON into `T`.
    pub fn get_json<T: DeserializeOwned>(&self, name: &str) -> Result<T> {
        let bytes = self.get_bytes(name)?;
        parse_json(name, &bytes)
    }

    /// The bytes of entry `name`, which the checkpoint must vouch for: listed in its manifest
    /// (and checked against it), or put there by this process. A file of a directory without
    /// a manifest ([`CheckpointError::NoManifest`]) or one the manifest does not list
    /// ([`CheckpointError::UnlistedEntry`]) is refused, unless
    /// [`allow_unverified`](Self::allow_unverified) was called.
    ///
    /// Loaders of models, preprocessors and configs read through this: a model file edited
    /// after its manifest was deleted, or a `preprocessor.json` dropped into a checkpoint saved
    /// without one, must not silently change predictions.
    pub fn get_verified_bytes(&self, name: &str) -> Result<Bytes> {
        self.check_verified(name)?;
        self.get_bytes(name)
    }

    /// Entry `name` parsed as JSON into `T`, vouched for as by
    /// [`get_verified_bytes`](Self::get_verified_bytes).
    pub fn get_verified_json<T: DeserializeOwned>(&self, name: &str) -> Result<T> {
        let bytes = self.get_verified_bytes(name)?;
        parse_json(name, &bytes)
    }

    /// Whether entry `name` exists and the checkpoint vouches for it (see
    /// [`get_verified_bytes`](Self::get_verified_bytes)).
    pub fn is_verified(&self, name: &str) -> bool {
        self.contains(name) && self.check_verified(name).is_ok()
    }

    /// Whether the checkpoint's source has a manifest (always true in memory).
    pub fn has_manifest(&self) -> bool {
        self.has_manifest
    }

    /// Lets [`get_verified_bytes`](Self::get_verified_bytes) return entries no manifest lists:
    /// for a directory written by another tool (or by hand) whose files you trust. Writing the
    /// checkpoint anywhere records a manifest for every file, after which no opt-in is needed.
    pub fn allow_unverified(mut self) -> Self {
        self.allow_unverified = true;
        self
    }

    fn check_verified(&self, name: &str) -> Result<()> {
        let Some(stored) = self.stored.get(name) else {
            // Held in memory (put by this process) or absent (get_bytes names it).
            return Ok(());
        };
        if stored.record.is_some() || self.allow_unverified {
            return Ok(());
        }
        let location = self.location();
        Err(if self.has_manifest {
            CheckpointError::UnlistedEntry {
                name: name.to_owned(),
                location,
            }
        } else {
            CheckpointError::NoManifest {
                name: name.to_owned(),
                location,
            }
        })
    }

    fn location(&self) -> String {
        match &self.source {
            Source::Memory => "memory".to_owned(),
            Source::Directory(p) => p.display().to_string(),
            Source::Store(loc) => loc.uri.clone(),
        }
    }

    /// Reads every entry and checks it against the manifest (sizes and checksums).
    pub fn verify(&self) -> Result<()> {
        for (name, content) in self.contents() {
            if let Content::Stored(stored) = content {
                self.read_stored(name, stored)?;
            }
        }
        Ok(())
    }

    // ---- conversions --------------------------------------------------------------------

    /// All entries in memory, as entry name → bytes (the manifest is not an entry).
    pub fn to_dict(&self) -> Result<BTreeMap<String, Bytes>> {
        let contents: Vec<(&str, Content<'_>)> = self.contents().collect();
        let entries = parallel_map(&contents, |(name, content)| {
            let bytes = match content {
                Content::Memory(bytes) => (*bytes).clone(),
                Content::Stored(stored) => self.read_stored(name, *stored)?,
            };
            Ok(((*name).to_owned(), bytes))
        })?;
        Ok(entries.into_iter().collect())
    }

    /// [`to_dict`](Self::to_dict) for async callers.
    pub async fn to_dict_async(&self) -> Result<BTreeMap<String, Bytes>> {
        let this = self.clone();
        spawn_blocking(move || this.to_dict()).await
    }

    /// Writes the checkpoint to directory `path`, atomically.
    ///
    /// The files go to a hidden temporary sibling first, which is then renamed into place, so
    /// readers see either the old content of `path` or the complete new checkpoint. `path` may
    /// be absent, empty, or an existing checkpoint (replaced); any other non-empty directory is
    /// refused rather than overwritten.
    pub fn to_directory(&self, path: impl AsRef<Path>) -> Result<()> {
        let dest = path.as_ref();
        if !self.modified
            && matches!(&self.source, Source::Directory(root) if same_path(root, dest))
        {
            return Ok(());
        }
        let staging = Staging::new(dest)?;
        let location = staging.root().display().to_string();
        let contents: Vec<(&str, Content<'_>)> = self.contents().collect();
        let progress = match &self.source {
            Source::Store(loc) => {
                Progress::bytes(format!("downloading {}", loc.uri), self.size_bytes())
            }
            _ => Progress::hidden(),
        };
        let records = progress.conclude(parallel_map(&contents, |(name, content)| {
            let out = staging.entry_path(name)?;
            let record = match content {
                Content::Memory(bytes) => {
                    std::fs::write(&out, bytes).map_err(io_err(&out))?;
                    manifest::verify_bytes(name, &location, None, bytes)?
                }
                Content::Stored(stored) => match &self.source {
                    Source::Directory(root) => local::copy_verified(
                        &root.join(name),
                        &out,
                        manifest::Verifier::new(name, &root.display().to_string(), stored.record),
                    )?,
                    Source::Store(loc) => runtime::block_on(remote::download_verified(
                        loc,
                        name,
                        &out,
                        stored.record,
                        &progress,
                    ))?,
                    Source::Memory => unreachable!("in-memory checkpoints hold no stored entries"),
                },
            };
            Ok(((*name).to_owned(), record))
        }))?;
        let files: BTreeMap<String, FileRecord> = records.into_iter().collect();
        let manifest = Manifest {
            complete: true,
            metadata: self.metadata.clone(),
            files,
        };
        let manifest_path = staging.root().join(MANIFEST_NAME);
        std::fs::write(&manifest_path, manifest.to_json()).map_err(io_err(&manifest_path))?;
        staging.publish()
    }

    /// [`to_directory`](Self::to_directory) for async callers.
    pub async fn to_directory_async(&self, path: impl AsRef<Path>) -> Result<()> {
        let (this, path) = (self.clone(), path.as_ref().to_owned());
        spawn_blocking(move || this.to_directory(path)).await
    }

    /// Writes the checkpoint to a fresh temporary directory that is kept, and returns its path.
    pub fn to_temp_directory(&self) -> Result<PathBuf> {
        let tmp = temp_dir()?;
        self.to_directory(tmp.path())?;
        Ok(tmp.keep())
    }

    /// A local directory with the checkpoint's files: the backing directory itself when the
    /// checkpoint is an unmodified local one (no copy), else a temporary copy removed on drop.
    pub fn as_directory(&self) -> Result<DirectoryGuard> {
        if let (Source::Directory(root), false) = (&self.source, self.modified) {
            return Ok(DirectoryGuard {
                path: root.clone(),
                _temp: None,
            });
        }
        let tmp = temp_dir()?;
        self.to_directory(tmp.path())?;
        Ok(DirectoryGuard {
            path: tmp.path().to_owned(),
            _temp: Some(tmp),
        })
    }

    /// Writes the checkpoint under `uri`, configured from the environment.
    pub fn to_uri(&self, uri: &str) -> Result<()> {
        self.to_uri_with(uri, &StorageOptions::new())
    }

    /// [`to_uri`](Self::to_uri) with explicit storage options.
    ///
    /// Local paths and `file://` URIs get [`to_directory`](Self::to_directory)'s atomic write.
    /// On object stores, where there is no atomic rename, an "incomplete" manifest goes up
    /// first, then the files (large ones as streamed multipart uploads), then the complete
    /// manifest: a reader sees an error, never a partial checkpoint, until the write is done.
    /// Objects of an older checkpoint at the same URI that the new one lacks are deleted.
    pub fn to_uri_with(&self, uri: &str, options: &StorageOptions) -> Result<()> {
        match storage::resolve(uri, options)? {
            Resolved::Local(path) => self.to_directory(path),
            Resolved::Store(loc) => runtime::block_on(self.write_store(&loc)),
        }
    }

    /// [`to_uri_with`](Self::to_uri_with) for async callers.
    pub async fn to_uri_async(&self, uri: &str, options: &StorageOptions) -> Result<()> {
        match storage::resolve(uri, options)? {
            Resolved::Local(path) => self.to_directory_async(path).await,
            Resolved::Store(loc) => self.write_store(&loc).await,
        }
    }

    async fn write_store(&self, dest: &StoreLocation) -> Result<()> {
        let same_place = matches!(&self.source, Source::Store(src) if src.uri == dest.uri);
        if same_place && !self.modified {
            return Ok(());
        }
        let (existing, has_manifest) = remote::list(dest).await?;
        if !existing.is_empty() && !has_manifest {
            return Err(CheckpointError::DestinationNotEmpty {
                location: dest.uri.clone(),
            });
        }
        remote::put_manifest(dest, &Manifest::incomplete()).await?;
        remote::delete_stale(dest, existing.keys().filter(|name| !self.contains(name))).await?;
        // Several entries in flight at once: object store latency, not bandwidth, bounds a
        // checkpoint of many small files.
        // Futures made up front (they start when polled): a closure inside the stream type
        // trips rustc's Send check of higher-ranked lifetimes.
        let progress = Progress::bytes(format!("uploading to {}", dest.uri), self.size_bytes());
        let uploads: Vec<_> = self
            .contents()
            .map(|(name, content)| self.upload_entry(dest, same_place, name, content, &progress))
            .collect();
        let files: BTreeMap<String, FileRecord> = progress.conclude(
            futures::stream::iter(uploads)
                .buffer_unordered(MAX_PARALLEL)
                .try_collect()
                .await,
        )?;
        let manifest = Manifest {
            complete: true,
            metadata: self.metadata.clone(),
            files,
        };
        remote::put_manifest(dest, &manifest).await
    }

    async fn upload_entry(
        &self,
        dest: &StoreLocation,
        same_place: bool,
        name: &str,
        content: Content<'_>,
        progress: &Progress,
    ) -> Result<(String, FileRecord)> {
        let record = match content {
            Content::Memory(bytes) => {
                let record = manifest::verify_bytes(name, &dest.uri, None, bytes)?;
                remote::put_bytes(dest, name, bytes.clone(), progress).await?;
                record
            }
            // Already in place: rewriting an object onto itself is wasted work.
            Content::Stored(Stored {
                record: Some(record),
                ..
            }) if same_place => record,
            Content::Stored(stored) => match &self.source {
                Source::Directory(root) => {
                    let location = root.display().to_string();
                    let verifier = manifest::Verifier::new(name, &location, stored.record);
                    remote::upload_file(dest, name, &root.join(name), verifier, progress).await?
                }
                Source::Store(src) => {
                    remote::copy_between(src, name, dest, stored.record, progress).await?
                }
                Source::Memory => unreachable!("in-memory checkpoints hold no stored entries"),
            },
        };
        Ok((name.to_owned(), record))
    }

    // ---- internals ----------------------------------------------------------------------

    fn contents(&self) -> impl Iterator<Item = (&str, Content<'_>)> {
        // Both maps are sorted and disjoint: merge them so listings come out in name order.
        let mut stored = self.stored.iter().peekable();
        let mut added = self.added.iter().peekable();
        std::iter::from_fn(move || match (stored.peek(), added.peek()) {
            (Some((s, _)), Some((a, _))) if s < a => stored
                .next()
                .map(|(n, s)| (n.as_str(), Content::Stored(*s))),
            (Some(_), None) => stored
                .next()
                .map(|(n, s)| (n.as_str(), Content::Stored(*s))),
            _ => added.next().map(|(n, b)| (n.as_str(), Content::Memory(b))),
        })
    }

    fn content(&self, name: &str) -> Result<Content<'_>> {
        if let Some(bytes) = self.added.get(name) {
            return Ok(Content::Memory(bytes));
        }
        if let Some(stored) = self.stored.get(name) {
            return Ok(Content::Stored(*stored));
        }
        const SHOWN: usize = 20;
        let mut available: Vec<&str> = self.contents().map(|(n, _)| n).take(SHOWN).collect();
        if self.len() > SHOWN {
            available.push("...");
        }
        let available = if available.is_empty() {
            "no entries".to_owned()
        } else {
            available.join(", ")
        };
        Err(CheckpointError::EntryNotFound {
            name: name.to_owned(),
            available,
        })
    }

    fn read_stored(&self, name: &str, stored: Stored) -> Result<Bytes> {
        match &self.source {
            Source::Directory(root) => local::read_verified(
                &root.join(name),
                name,
                &root.display().to_string(),
                stored.record,
            )
            .map(Bytes::from),
            Source::Store(loc) => {
                runtime::block_on(remote::read_verified(loc, name, stored.record))
            }
            Source::Memory => unreachable!("in-memory checkpoints hold no stored entries"),
        }
    }
}

impl Content<'_> {
    fn size(&self) -> u64 {
        match self {
            Content::Memory(bytes) => bytes.len() as u64,
            Content::Stored(stored) => stored.size,
        }
    }
}

/// Checks a listing against the manifest (if any) and returns the stored entries and metadata.
fn reconcile(
    location: &str,
    files: BTreeMap<String, u64>,
    manifest: Option<&[u8]>,
) -> Result<(BTreeMap<String, Stored>, Map<String, Value>)> {
    let Some(manifest) = manifest else {
        let stored = files
            .into_iter()
            .map(|(name, size)| (name, Stored { size, record: None }))
            .collect();
        return Ok((stored, Map::new()));
    };
    let manifest = Manifest::parse(manifest, location)?;
    if !manifest.complete {
        return Err(CheckpointError::Incomplete {
            location: location.to_owned(),
        });
    }
    let mut stored = BTreeMap::new();
    for (name, record) in &manifest.files {
        let size = *files
            .get(name)
            .ok_or_else(|| CheckpointError::MissingEntry {
                name: name.clone(),
                location: location.to_owned(),
            })?;
        if size != record.size {
            return Err(CheckpointError::SizeMismatch {
                name: name.clone(),
                location: location.to_owned(),
                expected: record.size,
                found: size,
            });
        }
        stored.insert(
            name.clone(),
            Stored {
                size,
                record: Some(*record),
            },
        );
    }
    for (name, size) in files {
        if let std::collections::btree_map::Entry::Vacant(slot) = stored.entry(name) {
            tracing::warn!(%location, entry = %slot.key(), "file not in the checkpoint manifest; reading it unverified");
            slot.insert(Stored { size, record: None });
        }
    }
    Ok((stored, manifest.metadata))
}

fn parse_json<T: DeserializeOwned>(name: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|source| CheckpointError::Json {
        name: name.to_owned(),
        source,
    })
}

fn same_path(a: &Path, b: &Path) -> bool {
    a == b
        || matches!((std::fs::canonicalize(a), std::fs::canonicalize(b)), (Ok(x), Ok(y)) if x == y)
}

fn temp_dir() -> Result<TempDir> {
    tempfile::Builder::new()
        .prefix("air-checkpoint-")
        .tempdir()
        .map_err(io_err(std::env::temp_dir()))
}

async fn spawn_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}
