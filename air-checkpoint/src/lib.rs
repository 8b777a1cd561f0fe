//! # air-checkpoint
//!
//! The [`Checkpoint`]: a model as a set of named files plus JSON metadata, the currency every
//! AIR crate trades in. A checkpoint is in one of three forms, and converts between them
//! keeping every file byte for byte:
//!
//! - in memory, a dict of entry name → bytes ([`Checkpoint::from_dict`], [`Checkpoint::to_dict`]);
//! - a local directory ([`Checkpoint::from_directory`], [`Checkpoint::to_directory`],
//!   [`Checkpoint::as_directory`]);
//! - a URI on object storage ([`Checkpoint::from_uri`], [`Checkpoint::to_uri`]): `memory://`,
//!   `file://`, `s3://` (feature `s3`, on by default), `gs://` (feature `gcp`), `az://`
//!   (feature `azure`).
//!
//! Writes are atomic (a temporary sibling renamed into place; what a killed writer leaves is
//! removed by the next write to the same place); a manifest with a format version, sizes and
//! checksums lets readers refuse truncated, corrupted or foreign-version checkpoints with an
//! error naming the bad entry. Loaders read models and preprocessors with
//! [`Checkpoint::get_verified_bytes`], which also refuses files no manifest vouches for (a
//! deleted manifest, a file dropped in later) unless the program opts in with
//! [`Checkpoint::allow_unverified`]. Weights are data: loading a checkpoint never runs code.
//!
//! ```
//! use air_checkpoint::Checkpoint;
//! use serde_json::json;
//!
//! # fn main() -> Result<(), air_checkpoint::CheckpointError> {
//! let mut ckpt = Checkpoint::from_dict([("weights.bin", vec![1u8, 2, 3])])?;
//! ckpt.put_json("config.json", &json!({"hidden": 64}))?;
//! ckpt.set_metadata_value("epoch", &3)?;
//!
//! let dir = tempfile::tempdir().unwrap();
//! ckpt.to_directory(dir.path().join("ckpt"))?;           // atomic write with a manifest
//! ckpt.to_uri("memory://models/run-1/checkpoint_000003")?; // or any object store URI
//!
//! let back = Checkpoint::from_uri("memory://models/run-1/checkpoint_000003")?;
//! assert_eq!(back.get_bytes("weights.bin")?.as_ref(), &[1, 2, 3]);
//! assert_eq!(back.metadata_value::<u32>("epoch")?, Some(3));
//! assert_eq!(back.to_dict()?, ckpt.to_dict()?);
//! # Ok(())
//! # }
//! ```
//!
//! The blocking API works from plain threads and from inside a tokio runtime; async callers
//! can use the `*_async` variants instead.

mod checkpoint;
mod error;
mod local;
mod manifest;
mod name;
pub mod progress;
mod remote;
mod runtime;
pub mod storage;

pub use bytes::Bytes;
pub use checkpoint::{Checkpoint, CheckpointForm, DirectoryGuard, EntryInfo};
pub use error::{CheckpointError, Result};
pub use manifest::{FORMAT_VERSION, MANIFEST_NAME};
pub use storage::StorageOptions;
