//! Writers: stream a dataset into one parquet, CSV or JSON-lines file at a path or URI.
//!
//! The file is written to a temporary sibling and renamed into place (local), or written to a
//! local temporary file and uploaded in parts (object stores), so a reader never sees half a
//! file and a failed write leaves any previous file untouched.

use std::{
    fs::File,
    io::{BufWriter, Read, Write},
    path::Path,
    sync::Arc,
};

use air_checkpoint::{
    StorageOptions,
    progress::Progress,
    storage::{self, Resolved, StoreLocation},
};
use object_store::{ObjectStoreExt, WriteMultipart};
use polars::prelude::*;

use crate::{
    Dataset,
    error::{DataError, Result, io_err},
    source::FileFormat,
};

/// Rows per batch handed to a writer.
const WRITE_BATCH_ROWS: usize = 1 << 16;
/// Part size of a file uploaded to a URI (multipart; a failed upload is aborted).
const UPLOAD_CHUNK: usize = 8 << 20;

impl Dataset {
    /// Writes the rows to one parquet file (zstd) at a local path or URI; returns the row count.
    pub fn write_parquet(&self, destination: &str) -> Result<usize> {
        self.write_with(destination, FileFormat::Parquet, &StorageOptions::new())
    }

    /// Writes the rows to one CSV file with a header row; returns the row count.
    pub fn write_csv(&self, destination: &str) -> Result<usize> {
        self.write_with(destination, FileFormat::Csv, &StorageOptions::new())
    }

    /// Writes the rows to one JSON-lines file (one object per row); returns the row count.
    pub fn write_json(&self, destination: &str) -> Result<usize> {
        self.write_with(destination, FileFormat::Json, &StorageOptions::new())
    }

    /// [`write_parquet`](Self::write_parquet) with object store settings.
    pub fn write_parquet_with(&self, destination: &str, storage: &StorageOptions) -> Result<usize> {
        self.write_with(destination, FileFormat::Parquet, storage)
    }

    /// [`write_csv`](Self::write_csv) with object store settings.
    pub fn write_csv_with(&self, destination: &str, storage: &StorageOptions) -> Result<usize> {
        self.write_with(destination, FileFormat::Csv, storage)
    }

    /// [`write_json`](Self::write_json) with object store settings.
    pub fn write_json_with(&self, destination: &str, storage: &StorageOptions) -> Result<usize> {
        self.write_with(destination, FileFormat::Json, storage)
    }

    fn write_with(
        &self,
        destination: &str,
        format: FileFormat,
        storage: &StorageOptions,
    ) -> Result<usize> {
        let mut batches = self.iter_batches(WRITE_BATCH_ROWS)?.peekable();
        // An empty dataset still gets a valid file with its columns.
        let schema = match batches.peek() {
            Some(Ok(first)) => first.schema().clone(),
            Some(Err(_)) => {
                return Err(batches.next().and_then(Result::err).expect("peeked error"));
            }
            None => Arc::new(self.schema()?),
        };
        let progress = Progress::rows(format!("writing {destination}"), None);
        write_batches(batches, &schema, destination, format, storage, &progress)
    }
}

/// Writes a stream of batches to one file of `format` at a local path or URI, as the dataset
/// writers do (parquet with zstd; atomically: a temporary sibling renamed into place, or a
/// multipart upload aborted on failure) — for output produced batch by batch, such as a
/// batch predictor's stream, in bounded memory. Every batch must have `schema`; with no batch
/// the file still holds the columns. Returns the row count; the first `Err` batch stops the
/// write and leaves any previous file untouched.
///
/// `progress` counts the rows written (pass [`Progress::rows`] for a bar on a terminal, or
/// [`Progress::hidden`]); it is finished, or abandoned on an error, when the write ends. An
/// upload to an object store gets a bar of its own when large.
pub fn write_batches(
    batches: impl IntoIterator<Item = Result<DataFrame>>,
    schema: &Schema,
    destination: &str,
    format: FileFormat,
    storage: &StorageOptions,
    progress: &Progress,
) -> Result<usize> {
    let batches = batches.into_iter().inspect(|b| {
        if let Ok(df) = b {
            progress.inc(df.height() as u64);
        }
    });
    progress.conclude(write_to(batches, schema, destination, storage, format))
}

fn write_to(
    batches: impl Iterator<Item = Result<DataFrame>>,
    schema: &Schema,
    destination: &str,
    storage: &StorageOptions,
    format: FileFormat,
) -> Result<usize> {
    match storage::resolve(destination, storage)? {
        Resolved::Local(path) => {
            if path.is_dir() {
                return Err(DataError::InvalidArgument {
                    name: "destination",
                    value: destination.to_owned(),
                    expected: "a file path (it is an existing directory)".to_owned(),
                });
            }
            let parent = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
                _ => ".".into(),
            };
            std::fs::create_dir_all(&parent).map_err(io_err("creating", &parent))?;
            let tmp = tempfile::Builder::new()
                .prefix(".air-write-")
                .tempfile_in(&parent)
                .map_err(io_err("creating a temporary file in", &parent))?;
            let rows = write_file(batches, schema, tmp.as_file(), tmp.path(), format)?;
            tmp.persist(&path).map_err(|e| DataError::Io {
                action: "renaming into",
                path: path.clone(),
                source: e.error,
            })?;
            Ok(rows)
        }
        Resolved::Store(location) => {
            let tmp = tempfile::NamedTempFile::new()
                .map_err(io_err("creating a temporary file in", std::env::temp_dir()))?;
            let rows = write_file(batches, schema, tmp.as_file(), tmp.path(), format)?;
            upload(tmp.path(), &location)?;
            Ok(rows)
        }
    }
}

fn write_file(
    batches: impl Iterator<Item = Result<DataFrame>>,
    schema: &Schema,
    file: &File,
    path: &Path,
    format: FileFormat,
) -> Result<usize> {
    let write_err = |e: PolarsError| DataError::Polars {
        context: format!("writing {}", path.display()),
        source: e,
    };
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut rows = 0;
    match format {
        FileFormat::Parquet => {
            let mut writer = ParquetWriter::new(&mut out)
                .with_compression(ParquetCompression::Zstd(None))
                .batched(schema)
                .map_err(write_err)?;
            for batch in batches {
                let batch = batch?;
                rows += batch.height();
                writer.write_batch(&batch).map_err(write_err)?;
            }
            writer.finish().map_err(write_err)?;
        }
        FileFormat::Csv => {
            let mut writer = CsvWriter::new(&mut out)
                .include_header(true)
                .batched(schema)
                .map_err(write_err)?;
            let mut wrote_any = false;
            for batch in batches {
                let batch = batch?;
                rows += batch.height();
                writer.write_batch(&batch).map_err(write_err)?;
                wrote_any = true;
            }
            if !wrote_any {
                writer
                    .write_batch(&DataFrame::empty_with_schema(schema))
                    .map_err(write_err)?;
            }
            writer.finish().map_err(write_err)?;
        }
        FileFormat::Json => {
            let mut writer = polars::io::json::BatchedWriter::new(&mut out);
            for batch in batches {
                let mut batch = batch?;
                rows += batch.height();
                batch.rechunk_mut();
                writer.write_batch(&batch).map_err(write_err)?;
            }
        }
    }
    out.flush().map_err(io_err("writing", path))?;
    file.sync_all().map_err(io_err("syncing", path))?;
    Ok(rows)
}

/// Uploads a local file to the location's prefix in parts; an upload that fails is aborted so
/// no partial object appears.
fn upload(path: &Path, location: &StoreLocation) -> Result<()> {
    let mut file = File::open(path).map_err(io_err("opening", path))?;
    let size = file.metadata().map_or(0, |m| m.len());
    let progress = Progress::bytes(format!("uploading to {}", location.uri), size);
    progress.conclude(upload_from(&mut file, path, location, &progress))
}

fn upload_from(
    file: &mut File,
    path: &Path,
    location: &StoreLocation,
    progress: &Progress,
) -> Result<()> {
    storage::block_on(async {
        let upload = location
            .store
            .put_multipart(&location.prefix)
            .await
            .map_err(|e| location.error(e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, UPLOAD_CHUNK);
        let mut buf = vec![0u8; UPLOAD_CHUNK];
        loop {
            let n = match file.read(&mut buf) {
                Ok(n) => n,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(DataError::Io {
                        action: "reading",
                        path: path.to_owned(),
                        source: e,
                    });
                }
            };
            if n == 0 {
                break;
            }
            if let Err(e) = writer.wait_for_capacity(4).await {
                return Err(location.error(e).into());
            }
            writer.write(&buf[..n]);
            progress.inc(n as u64);
        }
        writer.finish().await.map_err(|e| location.error(e))?;
        Ok(())
    })
}
