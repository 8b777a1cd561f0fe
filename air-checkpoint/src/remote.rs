//! The object store form: listing, verified downloads, streamed (multipart) uploads.

use std::{collections::BTreeMap, path::Path};

use bytes::Bytes;
use futures::StreamExt;
use object_store::{ObjectStoreExt, PutPayload, WriteMultipart};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{
    Result,
    error::io_err,
    manifest::{FileRecord, MANIFEST_NAME, Manifest, Verifier},
    progress::Progress,
    storage::StoreLocation,
};

/// Part size of multipart uploads, and the size up to which a file goes up in one request.
pub(crate) const PART_SIZE: usize = 16 << 20;
/// Parts of one file in flight at once.
const PART_CONCURRENCY: usize = 4;

/// What a checkpoint prefix holds: object sizes by entry name, and whether it has a manifest.
pub(crate) async fn list(loc: &StoreLocation) -> Result<(BTreeMap<String, u64>, bool)> {
    let mut files = BTreeMap::new();
    let mut has_manifest = false;
    let mut objects = loc.store.list(Some(&loc.prefix));
    while let Some(meta) = objects.next().await {
        let meta = meta.map_err(|e| loc.error(e))?;
        let Some(name) = loc.relative_name(&meta.location) else {
            continue;
        };
        if name == MANIFEST_NAME {
            has_manifest = true;
        } else {
            files.insert(name, meta.size);
        }
    }
    Ok((files, has_manifest))
}

/// The manifest's bytes.
pub(crate) async fn get_manifest(loc: &StoreLocation) -> Result<Bytes> {
    get(loc, MANIFEST_NAME).await
}

async fn get(loc: &StoreLocation, name: &str) -> Result<Bytes> {
    let result = loc
        .store
        .get(&loc.child(name))
        .await
        .map_err(|e| loc.error(e))?;
    result.bytes().await.map_err(|e| loc.error(e))
}

/// Reads a whole entry, checking it against the expected record (a bar for a large one).
pub(crate) async fn read_verified(
    loc: &StoreLocation,
    name: &str,
    expected: Option<FileRecord>,
) -> Result<Bytes> {
    let result = loc
        .store
        .get(&loc.child(name))
        .await
        .map_err(|e| loc.error(e))?;
    let progress = Progress::bytes(
        format!("downloading {}/{name}", loc.uri.trim_end_matches('/')),
        result.meta.size,
    );
    let bytes = if progress.is_active() {
        let mut buffer = bytes::BytesMut::with_capacity(result.meta.size as usize);
        let mut chunks = result.into_stream();
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|e| loc.error(e))?;
            progress.inc(chunk.len() as u64);
            buffer.extend_from_slice(&chunk);
        }
        progress.finish();
        buffer.freeze()
    } else {
        result.bytes().await.map_err(|e| loc.error(e))?
    };
    crate::manifest::verify_bytes(name, &loc.uri, expected, &bytes)?;
    Ok(bytes)
}

/// Streams an entry into a local file, hashing on the way.
pub(crate) async fn download_verified(
    loc: &StoreLocation,
    name: &str,
    dst: &Path,
    expected: Option<FileRecord>,
    progress: &Progress,
) -> Result<FileRecord> {
    let mut verifier = Verifier::new(name, &loc.uri, expected);
    let mut output = tokio::fs::File::create(dst).await.map_err(io_err(dst))?;
    let result = loc
        .store
        .get(&loc.child(name))
        .await
        .map_err(|e| loc.error(e))?;
    let mut chunks = result.into_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| loc.error(e))?;
        verifier.update(&chunk);
        output.write_all(&chunk).await.map_err(io_err(dst))?;
        progress.inc(chunk.len() as u64);
    }
    output.flush().await.map_err(io_err(dst))?;
    verifier.finish()
}

/// Writes one entry from memory.
pub(crate) async fn put_bytes(
    loc: &StoreLocation,
    name: &str,
    bytes: Bytes,
    progress: &Progress,
) -> Result<()> {
    let path = loc.child(name);
    let len = bytes.len() as u64;
    if bytes.len() <= PART_SIZE {
        loc.store
            .put(&path, PutPayload::from(bytes))
            .await
            .map_err(|e| loc.error(e))?;
        progress.inc(len);
        return Ok(());
    }
    let upload = loc
        .store
        .put_multipart(&path)
        .await
        .map_err(|e| loc.error(e))?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
    let mut offset = 0;
    while offset < bytes.len() {
        let end = (offset + PART_SIZE).min(bytes.len());
        if let Err(e) = writer.wait_for_capacity(PART_CONCURRENCY).await {
            let _ = writer.abort().await;
            return Err(loc.error(e));
        }
        writer.put(bytes.slice(offset..end));
        progress.inc((end - offset) as u64);
        offset = end;
    }
    writer.finish().await.map_err(|e| loc.error(e))?;
    Ok(())
}

/// Streams a local file into an entry (multipart when large), hashing on the way.
pub(crate) async fn upload_file(
    loc: &StoreLocation,
    name: &str,
    src: &Path,
    mut verifier: Verifier<'_>,
    progress: &Progress,
) -> Result<FileRecord> {
    let mut input = tokio::fs::File::open(src).await.map_err(io_err(src))?;
    let first = read_chunk(&mut input, src).await?;
    verifier.update(&first);
    let len = first.len() as u64;
    if first.len() < PART_SIZE {
        let record = verifier.finish()?;
        loc.store
            .put(&loc.child(name), PutPayload::from(first))
            .await
            .map_err(|e| loc.error(e))?;
        progress.inc(len);
        return Ok(record);
    }
    let upload = loc
        .store
        .put_multipart(&loc.child(name))
        .await
        .map_err(|e| loc.error(e))?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
    writer.put(first);
    progress.inc(len);
    let outcome: Result<FileRecord> = async {
        loop {
            let chunk = read_chunk(&mut input, src).await?;
            if chunk.is_empty() {
                break verifier.finish();
            }
            verifier.update(&chunk);
            writer
                .wait_for_capacity(PART_CONCURRENCY)
                .await
                .map_err(|e| loc.error(e))?;
            progress.inc(chunk.len() as u64);
            writer.put(chunk);
        }
    }
    .await;
    finish_or_abort(loc, writer, outcome).await
}

/// Streams another store's entry into this one, hashing on the way.
pub(crate) async fn copy_between(
    from: &StoreLocation,
    name: &str,
    to: &StoreLocation,
    expected: Option<FileRecord>,
    progress: &Progress,
) -> Result<FileRecord> {
    // Entries up to a part size are simply read and written; larger ones stream part by part.
    let result = from
        .store
        .get(&from.child(name))
        .await
        .map_err(|e| from.error(e))?;
    if result.meta.size <= PART_SIZE as u64 {
        let bytes = result.bytes().await.map_err(|e| from.error(e))?;
        let record = crate::manifest::verify_bytes(name, &from.uri, expected, &bytes)?;
        put_bytes(to, name, bytes, progress).await?;
        return Ok(record);
    }
    let mut verifier = Verifier::new(name, &from.uri, expected);
    let upload = to
        .store
        .put_multipart(&to.child(name))
        .await
        .map_err(|e| to.error(e))?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
    let mut chunks = result.into_stream();
    let outcome: Result<FileRecord> = async {
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|e| from.error(e))?;
            verifier.update(&chunk);
            writer
                .wait_for_capacity(PART_CONCURRENCY)
                .await
                .map_err(|e| to.error(e))?;
            writer.write(&chunk);
            progress.inc(chunk.len() as u64);
        }
        verifier.finish()
    }
    .await;
    finish_or_abort(to, writer, outcome).await
}

/// Completes a multipart upload if the data was good, else aborts it (no partial object).
async fn finish_or_abort(
    loc: &StoreLocation,
    writer: WriteMultipart,
    outcome: Result<FileRecord>,
) -> Result<FileRecord> {
    match outcome {
        Ok(record) => {
            writer.finish().await.map_err(|e| loc.error(e))?;
            Ok(record)
        }
        Err(e) => {
            let _ = writer.abort().await;
            Err(e)
        }
    }
}

/// Writes the manifest; the complete one goes last, so it is the commit point of a checkpoint.
pub(crate) async fn put_manifest(loc: &StoreLocation, manifest: &Manifest) -> Result<()> {
    put_bytes(
        loc,
        MANIFEST_NAME,
        Bytes::from(manifest.to_json()),
        &Progress::hidden(),
    )
    .await
}

/// Deletes entries under the prefix that the new checkpoint does not have.
pub(crate) async fn delete_stale(
    loc: &StoreLocation,
    stale: impl Iterator<Item = &String>,
) -> Result<()> {
    for name in stale {
        loc.store
            .delete(&loc.child(name))
            .await
            .map_err(|e| loc.error(e))?;
    }
    Ok(())
}

async fn read_chunk(input: &mut tokio::fs::File, src: &Path) -> Result<Bytes> {
    let mut buffer = Vec::with_capacity(PART_SIZE);
    let mut limited = (&mut *input).take(PART_SIZE as u64);
    while limited.read_buf(&mut buffer).await.map_err(io_err(src))? > 0 {}
    Ok(Bytes::from(buffer))
}
