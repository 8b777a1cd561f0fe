//! Explaining a parquet read error by the file behind it.
//!
//! polars reports a broken parquet file with the decoder's message and no file name. After a
//! failed read, each file's frame is checked — the `PAR1` magic at both ends, the footer
//! length, the footer itself — to name the file and say what is wrong with it in words.

use std::{
    io::{Cursor, Read, Seek, SeekFrom},
    path::Path,
};

use polars::prelude::*;

use crate::DataError;

const MAGIC: &[u8; 4] = b"PAR1";
/// Header magic + footer length + footer magic.
const MIN_LEN: usize = 12;

/// What is wrong with `bytes` (the whole file `file`) as parquet, if anything.
pub(crate) fn check_bytes(file: &str, bytes: &[u8]) -> Option<DataError> {
    let tail = &bytes[bytes.len().saturating_sub(8)..];
    check_frame(
        file,
        bytes.len() as u64,
        &bytes[..bytes.len().min(256)],
        tail,
    )
    .or_else(|| {
        let decoded = ParquetReader::new(Cursor::new(bytes)).num_rows();
        decoded.err().map(|e| corrupted_footer(file, &e))
    })
}

/// What is wrong with the local parquet file `path`, if anything: its first and last bytes,
/// then its footer (the data pages are not read).
pub(crate) fn check_file(path: &Path) -> Option<DataError> {
    let file = path.display().to_string();
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    let mut head = vec![0u8; len.min(256) as usize];
    f.read_exact(&mut head).ok()?;
    let mut tail = vec![0u8; len.min(8) as usize];
    f.seek(SeekFrom::End(-(tail.len() as i64))).ok()?;
    f.read_exact(&mut tail).ok()?;
    f.rewind().ok()?;
    check_frame(&file, len, &head, &tail).or_else(|| {
        let decoded = ParquetReader::new(f).num_rows();
        decoded.err().map(|e| corrupted_footer(&file, &e))
    })
}

fn corrupted_footer(file: &str, e: &PolarsError) -> DataError {
    DataError::MalformedParquet {
        file: file.to_owned(),
        reason: format!("its footer cannot be decoded ({e}): the file is corrupted"),
    }
}

/// The checks that need only the length, the first bytes and the last 8 bytes.
fn check_frame(file: &str, len: u64, head: &[u8], tail: &[u8]) -> Option<DataError> {
    let bad = |reason: String| {
        Some(DataError::MalformedParquet {
            file: file.to_owned(),
            reason,
        })
    };
    if len == 0 {
        return bad(
            "the file is empty (0 bytes); a parquet file holds at least a header and \
                    a footer: write it again or remove it"
                .to_owned(),
        );
    }
    if &head[..head.len().min(4)] != MAGIC {
        return bad(if looks_like_text(head) {
            format!(
                "it starts with text ({:?}), not parquet's PAR1 magic: a CSV or JSON file with \
                 a parquet name? Read it with read_csv or read_json",
                text_head(head)
            )
        } else {
            "it does not start with parquet's PAR1 magic: not a parquet file".to_owned()
        });
    }
    if len < MIN_LEN as u64 {
        return bad(format!(
            "only {len} bytes, fewer than a parquet header and footer take ({MIN_LEN}): the \
             file is truncated"
        ));
    }
    if &tail[4..] != MAGIC {
        return bad(format!(
            "it does not end with parquet's PAR1 magic: the file is truncated (its footer, which \
             holds the schema, is missing); {len} bytes are left. Write it again"
        ));
    }
    let footer_len = u64::from(u32::from_le_bytes(tail[..4].try_into().expect("4 bytes")));
    if footer_len > len - MIN_LEN as u64 {
        return bad(format!(
            "its footer claims {footer_len} bytes but the file has only {len}: truncated or \
             corrupted"
        ));
    }
    None
}

fn looks_like_text(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(256)];
    let text = match std::str::from_utf8(head) {
        Ok(t) => t,
        // The cut may split a character.
        Err(e) if e.valid_up_to() + 4 > head.len() => {
            std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return false,
    };
    !text.is_empty()
        && text
            .chars()
            .all(|c| !c.is_control() || c.is_ascii_whitespace())
}

fn text_head(bytes: &[u8]) -> String {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(40)]);
    head.lines().next().unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(bytes: &[u8]) -> String {
        match check_bytes("f.parquet", bytes) {
            Some(DataError::MalformedParquet { reason, .. }) => reason,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn names_what_is_wrong_with_the_frame() {
        assert!(reason(b"").contains("empty"));
        assert!(reason(b"id,x\n1,2\n").contains("CSV or JSON"));
        assert!(reason(&[0xff, 0, 1, 2, 3]).contains("not a parquet file"));
        assert!(reason(b"PAR1abc").contains("truncated"));
        assert!(reason(b"PAR1 some pages ... no footer").contains("does not end"));
        let mut claims = b"PAR1....".to_vec();
        claims.extend_from_slice(&1000u32.to_le_bytes());
        claims.extend_from_slice(b"PAR1");
        assert!(reason(&claims).contains("claims 1000 bytes"));
    }
}
