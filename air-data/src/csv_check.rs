//! Finding the malformed row behind a CSV read error.
//!
//! polars reports a parse failure with a byte offset at best; users need the file and line.
//! After a failed read, the file is scanned once more with a small CSV tokenizer that checks
//! every record's field count against the header and every field of a numeric or boolean
//! column against its inferred type.

use std::{
    io::{BufRead, BufReader},
    path::Path,
};

use polars::prelude::*;

use crate::{DataError, source::CsvOptions};

/// What is wrong with the bytes of `path` as UTF-8 text, if anything: an empty file, UTF-16
/// text, or invalid UTF-8, with the line it is on.
pub(crate) fn find_bad_encoding(path: &Path) -> Option<DataError> {
    let file = std::fs::File::open(path).ok()?;
    let malformed = |line: usize, reason: String| DataError::MalformedCsv {
        file: path.display().to_string(),
        line,
        reason,
    };
    if file.metadata().ok()?.len() == 0 {
        return Some(malformed(
            1,
            "the file is empty; expected a header line (or remove the file)".to_owned(),
        ));
    }
    let mut reader = BufReader::new(file);
    let mut buf = Vec::new();
    let mut line = 0;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf).ok()? == 0 {
            return None;
        }
        line += 1;
        if line == 1 && (buf.starts_with(&[0xff, 0xfe]) || buf.starts_with(&[0xfe, 0xff])) {
            return Some(malformed(
                1,
                "the file is UTF-16 text (it starts with a UTF-16 byte order mark); CSV files \
                 are read as UTF-8: convert it (e.g. iconv -f UTF-16 -t UTF-8)"
                    .to_owned(),
            ));
        }
        if let Err(e) = std::str::from_utf8(&buf) {
            let at = e.valid_up_to();
            let bad: Vec<String> = buf[at..buf.len().min(at + 4)]
                .iter()
                .map(|b| format!("{b:#04x}"))
                .collect();
            return Some(malformed(
                line,
                format!(
                    "invalid UTF-8 at column {} (bytes {}); CSV files are read as UTF-8: \
                     convert it (e.g. iconv -f latin1 -t UTF-8)",
                    at + 1,
                    bad.join(" ")
                ),
            ));
        }
    }
}

/// The first malformed record of `path`, if the scan finds one.
pub(crate) fn find_malformed_row(path: &Path, options: &CsvOptions) -> Option<DataError> {
    let schema = LazyCsvReader::new(PlRefPath::new(path.to_string_lossy().as_ref()))
        .with_separator(options.separator())
        .with_has_header(options.has_header())
        .with_infer_schema_length(Some(options.infer_schema_rows()))
        .finish()
        .ok()?
        .collect_schema()
        .ok()?;
    let dtypes: Vec<DataType> = schema.iter_values().cloned().collect();
    let file = std::fs::File::open(path).ok()?;
    let mut records = Records::new(BufReader::new(file), options.separator());
    let malformed = |line: usize, reason: String| DataError::MalformedCsv {
        file: path.display().to_string(),
        line,
        reason,
    };
    if options.has_header() {
        records.next_record()?;
    }
    while let Some((line, fields)) = records.next_record() {
        if fields.len() == 1 && fields[0].is_empty() {
            continue; // blank line
        }
        if fields.len() != dtypes.len() {
            return Some(malformed(
                line,
                format!(
                    "{} fields, expected {} (columns: {})",
                    fields.len(),
                    dtypes.len(),
                    schema
                        .iter_names()
                        .map(|n| n.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        for ((field, dtype), name) in fields.iter().zip(&dtypes).zip(schema.iter_names()) {
            if field.is_empty() || options.is_null_value(field) {
                continue;
            }
            if !parses_as(field, dtype) {
                return Some(malformed(
                    line,
                    format!("value {field:?} in column {name:?} is not a valid {dtype}"),
                ));
            }
        }
    }
    if records.unterminated_quote {
        return Some(malformed(
            records.line,
            "a quoted field is never closed".to_owned(),
        ));
    }
    None
}

fn parses_as(field: &str, dtype: &DataType) -> bool {
    let field = field.trim();
    match dtype {
        DataType::Boolean => {
            field.eq_ignore_ascii_case("true") || field.eq_ignore_ascii_case("false")
        }
        d if d.is_integer() => field.parse::<i128>().is_ok(),
        d if d.is_float() => field.parse::<f64>().is_ok(),
        _ => true,
    }
}

/// A minimal RFC 4180 tokenizer: quoted fields may hold separators, doubled quotes and newlines.
///
/// Kept instead of the `csv` crate on purpose: the defect this scan most often has to name is a
/// quoted field that is never closed, and the `csv` crate ends such a field silently at the end
/// of the input (BurntSushi/rust-csv#252, closed without an opt-in error), so the record would
/// look well-formed. This runs only after polars failed to read the file, never on the read
/// path. (`csv_fields.rs` is the pre-read check; it counts fields without keeping their text.)
struct Records<R> {
    reader: R,
    separator: u8,
    /// The 1-based number of the last line read.
    line: usize,
    unterminated_quote: bool,
}

impl<R: BufRead> Records<R> {
    fn new(reader: R, separator: u8) -> Self {
        Self {
            reader,
            separator,
            line: 0,
            unterminated_quote: false,
        }
    }

    /// The next record with the line it starts on.
    fn next_record(&mut self) -> Option<(usize, Vec<String>)> {
        let mut buf = Vec::new();
        if self.reader.read_until(b'\n', &mut buf).ok()? == 0 {
            return None;
        }
        self.line += 1;
        let start = self.line;
        let mut fields = Vec::new();
        let mut field = Vec::new();
        let mut in_quotes = false;
        let mut i = 0;
        loop {
            if i >= buf.len() {
                if in_quotes {
                    // The quoted field goes on on the next line.
                    let mut more = Vec::new();
                    if self.reader.read_until(b'\n', &mut more).ok()? == 0 {
                        self.unterminated_quote = true;
                        break;
                    }
                    self.line += 1;
                    buf.extend_from_slice(&more);
                    continue;
                }
                break;
            }
            let b = buf[i];
            if in_quotes {
                if b == b'"' {
                    if buf.get(i + 1) == Some(&b'"') {
                        field.push(b'"');
                        i += 1;
                    } else {
                        in_quotes = false;
                    }
                } else {
                    field.push(b);
                }
            } else if b == b'"' && field.is_empty() {
                in_quotes = true;
            } else if b == self.separator {
                fields.push(String::from_utf8_lossy(&field).into_owned());
                field.clear();
            } else if b == b'\n' || b == b'\r' {
                // end of record
            } else {
                field.push(b);
            }
            i += 1;
        }
        fields.push(String::from_utf8_lossy(&field).into_owned());
        Some((start, fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_handles_quotes_and_newlines() {
        let text = "a,b\n\"x,1\",2\n\"multi\nline\",3\n\"q\"\"uote\",4\n";
        let mut r = Records::new(text.as_bytes(), b',');
        assert_eq!(r.next_record().unwrap(), (1, vec!["a".into(), "b".into()]));
        assert_eq!(
            r.next_record().unwrap(),
            (2, vec!["x,1".into(), "2".into()])
        );
        assert_eq!(
            r.next_record().unwrap(),
            (3, vec!["multi\nline".into(), "3".into()])
        );
        assert_eq!(
            r.next_record().unwrap(),
            (5, vec!["q\"uote".into(), "4".into()])
        );
        assert!(r.next_record().is_none());
    }
}
