use std::path::PathBuf;

use crate::manifest::MANIFEST_NAME;

/// Everything that can go wrong with a checkpoint.
///
/// Each variant names the offending path, URI, entry or value and says what was expected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// `from_directory` was given a path that does not exist.
    #[error("checkpoint directory {} does not exist; expected a directory of checkpoint files", path.display())]
    DirectoryNotFound {
        /// The path that was given.
        path: PathBuf,
    },
    /// A file was given where a directory was expected.
    #[error("{} is a file, not a directory; a checkpoint is a directory of files", path.display())]
    NotADirectory {
        /// The path that was given.
        path: PathBuf,
    },
    /// The destination holds something that is not a checkpoint and would be overwritten.
    #[error(
        "refusing to write a checkpoint to {location}: it is not empty and holds no checkpoint \
         (no {MANIFEST_NAME}); write to a new or empty location, or to an existing checkpoint"
    )]
    DestinationNotEmpty {
        /// The destination directory or URI.
        location: String,
    },
    /// An entry name is not a plain relative path inside the checkpoint.
    #[error(
        "invalid checkpoint entry name {name:?}: {reason}; entry names are relative paths \
         inside the checkpoint, with `/` between folders"
    )]
    InvalidEntryName {
        /// The rejected name.
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A symbolic link in a checkpoint directory points outside it (or at a folder).
    #[error(
        "{} is a symbolic link to {}, outside the checkpoint root {}: links may only point at \
         files inside the checkpoint", path.display(), target.display(), root.display()
    )]
    SymlinkEscapesRoot {
        /// The link.
        path: PathBuf,
        /// Where it points.
        target: PathBuf,
        /// The checkpoint root.
        root: PathBuf,
    },
    /// A symbolic link in a checkpoint directory points at a folder inside it.
    #[error(
        "{} is a symbolic link to the folder {}: links to folders are not followed in a \
         checkpoint (a link to the checkpoint's own folder would never end); replace it with \
         the files, or with links to the files", path.display(), target.display()
    )]
    SymlinkToFolder {
        /// The link.
        path: PathBuf,
        /// The folder it points at.
        target: PathBuf,
    },
    /// An entry was asked for as verified, but the checkpoint has no manifest to vouch for it.
    #[error(
        "checkpoint entry {name:?} in {location} cannot be verified: there is no \
         {MANIFEST_NAME} (the files were not written by air-checkpoint, or the manifest was \
         removed); write the checkpoint again with Checkpoint::to_directory, or, if you trust \
         these files, open it with `.allow_unverified()`"
    )]
    NoManifest {
        /// The entry name.
        name: String,
        /// The checkpoint location.
        location: String,
    },
    /// An entry was asked for as verified, but the manifest does not list it.
    #[error(
        "checkpoint entry {name:?} in {location} is not listed in its manifest {MANIFEST_NAME}: \
         the file was added after the checkpoint was written; remove it, or, if you trust it, \
         open the checkpoint with `.allow_unverified()`"
    )]
    UnlistedEntry {
        /// The entry name.
        name: String,
        /// The checkpoint location.
        location: String,
    },
    /// A requested entry is not in the checkpoint.
    #[error("checkpoint has no entry {name:?}; it has: {available}")]
    EntryNotFound {
        /// The requested name.
        name: String,
        /// The entries the checkpoint does have (truncated when long).
        available: String,
    },
    /// An entry listed in the manifest is not in storage.
    #[error("checkpoint entry {name:?} is listed in the manifest of {location} but is missing")]
    MissingEntry {
        /// The entry name.
        name: String,
        /// The checkpoint location.
        location: String,
    },
    /// An entry does not have the size the manifest records: truncated or overwritten.
    #[error(
        "checkpoint entry {name:?} in {location} is truncated or altered: the manifest records \
         {expected} bytes, storage has {found}"
    )]
    SizeMismatch {
        /// The entry name.
        name: String,
        /// The checkpoint location.
        location: String,
        /// Size recorded in the manifest.
        expected: u64,
        /// Size found.
        found: u64,
    },
    /// An entry's content does not match the manifest's checksum.
    #[error(
        "checkpoint entry {name:?} in {location} is corrupted: its xxh3 checksum is {found}, \
         the manifest records {expected}"
    )]
    ChecksumMismatch {
        /// The entry name.
        name: String,
        /// The checkpoint location.
        location: String,
        /// Checksum recorded in the manifest (hex).
        expected: String,
        /// Checksum of the content read (hex).
        found: String,
    },
    /// The manifest is not valid.
    #[error("checkpoint manifest {MANIFEST_NAME} in {location} is invalid: {reason}")]
    InvalidManifest {
        /// The checkpoint location.
        location: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The checkpoint was written by a newer format version.
    #[error(
        "checkpoint in {location} has format version {found}, this build of air-checkpoint \
         reads versions up to {supported}; upgrade air-checkpoint to read it"
    )]
    UnsupportedVersion {
        /// The checkpoint location.
        location: String,
        /// The version found.
        found: u64,
        /// The newest version this build reads.
        supported: u32,
    },
    /// A writer started this checkpoint and has not finished (or died).
    #[error(
        "checkpoint in {location} is incomplete: a writer started it and did not finish; \
         wait for the writer or write the checkpoint again"
    )]
    Incomplete {
        /// The checkpoint location.
        location: String,
    },
    /// Nothing exists at a checkpoint URI.
    #[error("no checkpoint at {uri}: nothing is stored under that prefix")]
    NotFound {
        /// The URI.
        uri: String,
    },
    /// A URI could not be parsed.
    #[error("invalid checkpoint URI {uri:?}: {reason}")]
    InvalidUri {
        /// The URI.
        uri: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A URI scheme this build cannot handle.
    #[error(
        "unsupported URI scheme {scheme:?} in {uri:?}; this build supports: {supported} \
         (gs:// and az:// need the `gcp` and `azure` features)"
    )]
    UnsupportedScheme {
        /// The scheme.
        scheme: String,
        /// The URI.
        uri: String,
        /// The schemes this build supports.
        supported: String,
    },
    /// A storage option that the backend does not know or cannot parse.
    #[error("invalid storage option {key:?} for {uri}: {reason}")]
    InvalidOption {
        /// The option key.
        key: String,
        /// The URI it was given for.
        uri: String,
        /// What is wrong.
        reason: String,
    },
    /// No credentials could be found for an object store.
    #[error("no credentials for {uri}: {hint}")]
    MissingCredentials {
        /// The URI.
        uri: String,
        /// How to provide credentials.
        hint: String,
    },
    /// The store refused the credentials.
    #[error("access to {uri} denied: {source}; check the credentials and the bucket's permissions")]
    AccessDenied {
        /// The URI.
        uri: String,
        /// The store's error.
        source: object_store::Error,
    },
    /// The storage endpoint could not be reached.
    #[error(
        "cannot reach the storage endpoint for {uri}: {source}; check the endpoint setting \
         (for s3, AWS_ENDPOINT or the `aws_endpoint` option) and that the server is up"
    )]
    Unreachable {
        /// The URI.
        uri: String,
        /// The store's error.
        source: object_store::Error,
    },
    /// Any other object store failure.
    #[error("storage error at {uri}: {source}")]
    Storage {
        /// The URI.
        uri: String,
        /// The store's error.
        source: object_store::Error,
    },
    /// A local file system failure.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A JSON entry or metadata value does not have the requested shape.
    #[error("checkpoint entry {name:?} is not valid JSON for the requested type: {source}")]
    Json {
        /// The entry name (or `metadata.KEY`).
        name: String,
        /// The parse error.
        source: serde_json::Error,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = CheckpointError> = std::result::Result<T, E>;

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> CheckpointError {
    let path = path.into();
    move |source| CheckpointError::Io { path, source }
}
