//! TensorBoard's event file: TFRecord framing (length, masked CRC32C of the length, data,
//! masked CRC32C of the data) around serialised `Event` messages, the first one naming the
//! file version.

use std::{
    fs::{File, OpenOptions},
    io::{BufWriter, Write},
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
    time::{SystemTime, UNIX_EPOCH},
};

use prost::Message;

use crate::proto::{Event, EventWhat, Summary};

/// TFRecord's CRC mask: the CRC rotated right by 15 bits plus a constant.
pub(crate) fn masked_crc32c(bytes: &[u8]) -> u32 {
    let crc = crc32c::crc32c(bytes);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// One TFRecord around `data`.
pub(crate) fn record(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc32c(data).to_le_bytes());
    out
}

pub(crate) fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// An open event file; every event is flushed as it is written, so TensorBoard sees results
/// live and a crash loses nothing written.
#[derive(Debug)]
pub(crate) struct EventWriter {
    out: BufWriter<File>,
    path: PathBuf,
}

/// Distinguishes files created in the same second by one process.
static SEQUENCE: AtomicU64 = AtomicU64::new(0);

impl EventWriter {
    /// A new `events.out.tfevents.{secs}.{host}.{pid}.{n}` in `dir` (created if needed).
    pub(crate) fn create(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let secs = now_secs() as u64;
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".to_owned());
        let n = SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(
            "events.out.tfevents.{secs}.{host}.{}.{n}",
            std::process::id()
        ));
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)?;
        let mut w = Self {
            out: BufWriter::new(file),
            path,
        };
        w.write(&Event {
            wall_time: now_secs(),
            step: 0,
            what: Some(EventWhat::FileVersion("brain.Event:2".to_owned())),
        })?;
        Ok(w)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn write(&mut self, event: &Event) -> std::io::Result<()> {
        self.out.write_all(&record(&event.encode_to_vec()))?;
        self.out.flush()
    }

    pub(crate) fn summary(&mut self, step: i64, summary: Summary) -> std::io::Result<()> {
        self.write(&Event {
            wall_time: now_secs(),
            step,
            what: Some(EventWhat::Summary(summary)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_and_its_mask_match_tensorflows() {
        // CRC-32C check value (RFC 3720's "123456789").
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        // TensorBoard's own masked_crc32c gives these (tensorflow_stub.pywrap_tensorflow).
        assert_eq!(masked_crc32c(&[0; 8]), 0x0798_0329);
        assert_eq!(masked_crc32c(b"hello"), 0x191c_1fbb);
        // The framing of an empty record: its length 0 and the mask of that length's CRC.
        let r = record(b"");
        assert_eq!(r.len(), 16);
        assert_eq!(&r[..8], &[0; 8]);
        assert_eq!(
            u32::from_le_bytes(r[8..12].try_into().unwrap()),
            0x0798_0329
        );
    }
}
