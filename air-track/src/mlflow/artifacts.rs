//! A checkpoint as run artifacts: through the tracking server's proxy for `mlflow-artifacts:`
//! roots (the default of `mlflow server`), or written straight to a root our storage layer
//! reaches (a local path, `s3://`, `gs://`, `az://`).

use std::path::{Path, PathBuf};

use air_checkpoint::{Checkpoint, StorageOptions, storage};

use super::client::{ApiError, Client};

/// Copies the checkpoint at `location` to `dest` (a relative path) under a run's artifact
/// root `root`, its manifest included, so the artifact directory is a checkpoint again.
pub(crate) fn upload_checkpoint(
    client: &Client,
    root: &str,
    dest: &str,
    location: &str,
) -> Result<(), ApiError> {
    let checkpoint_err = |source| ApiError::Checkpoint {
        location: location.to_owned(),
        source: Box::new(source),
    };
    let checkpoint = Checkpoint::from_uri(location).map_err(checkpoint_err)?;
    if root.starts_with("mlflow-artifacts:") {
        let dir = checkpoint.as_directory().map_err(checkpoint_err)?;
        for (file, relative) in files_under(dir.path())? {
            client.put_proxied_artifact(root, &format!("{dest}/{relative}"), &file)?;
        }
        return Ok(());
    }
    let target = format!("{}/{dest}", root.trim_end_matches('/'));
    if storage::resolve(&target, &StorageOptions::new()).is_err() {
        return Err(ApiError::ArtifactStore {
            root: root.to_owned(),
        });
    }
    checkpoint
        .to_uri(&target)
        .map_err(|source| ApiError::Checkpoint {
            location: target.clone(),
            source: Box::new(source),
        })
}

/// Every file under `dir` with its `/`-separated path relative to `dir`, sorted.
fn files_under(dir: &Path) -> Result<Vec<(PathBuf, String)>, ApiError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(current) = stack.pop() {
        let read_err = |source| ApiError::File {
            path: current.display().to_string(),
            source,
        };
        for entry in std::fs::read_dir(&current).map_err(read_err)? {
            let path = entry.map_err(read_err)?.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(relative) = path.strip_prefix(dir) {
                let name = relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                out.push((path.clone(), name));
            }
        }
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(out)
}
