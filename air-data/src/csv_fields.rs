//! Checking CSV files for what polars reads without complaint: records with fewer fields than
//! the header, and NUL bytes.
//!
//! polars reads a record with too few fields as nulls and gives no sign of it, so a dropped
//! comma silently becomes missing data; and it reads NUL bytes (a file zero-filled by a crash,
//! binary data) as text. Before a plan reads CSV files, each file is scanned once by
//! [`FieldCounter`], a byte-level state machine (quotes, doubled quotes, separators and
//! newlines inside quoted fields) that stops at the first record whose field count differs
//! from the first record's, or at the first NUL byte. Local files are checked once per size
//! and modification time.

/// What the scan found wrong, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Defect {
    /// A record with another number of fields than the first.
    Fields {
        /// The 1-based line the record starts on.
        line: usize,
        /// Fields found.
        found: usize,
        /// Fields of the first record.
        expected: usize,
    },
    /// A NUL byte.
    Nul {
        /// The 1-based line.
        line: usize,
    },
}

impl Defect {
    pub(crate) fn line(&self) -> usize {
        match self {
            Self::Fields { line, .. } | Self::Nul { line } => *line,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Outside quotes.
    Plain,
    /// Inside a quoted field.
    Quoted,
    /// Just after a quote inside a quoted field: a second quote is an escaped quote, anything
    /// else closes the field.
    QuoteInQuoted,
}

/// Counts fields per record over a CSV byte stream fed in chunks of any size.
#[derive(Debug)]
pub(crate) struct FieldCounter {
    separator: u8,
    state: State,
    /// The current line (1-based).
    line: usize,
    /// The line the current record started on.
    record_line: usize,
    /// Fields of the current record so far (separators seen + 1).
    fields: usize,
    /// Whether the current field has no content yet (a quote here opens a quoted field).
    field_start: bool,
    /// Whether the current record has no content yet (blank lines are skipped, as polars does).
    record_empty: bool,
    expected: Option<usize>,
    /// Whether a record with another field count is a defect (NUL bytes always are).
    count_fields: bool,
    /// The bytes the state machine must see outside quotes: separator, newline, quote, CR, NUL.
    special: [bool; 256],
}

impl FieldCounter {
    pub(crate) fn new(separator: u8, count_fields: bool) -> Self {
        Self {
            separator,
            state: State::Plain,
            line: 1,
            record_line: 1,
            fields: 1,
            field_start: true,
            record_empty: true,
            expected: None,
            count_fields,
            special: std::array::from_fn(|b| {
                let b = b as u8;
                matches!(b, b'\n' | b'"' | b'\r' | 0) || b == separator
            }),
        }
    }

    /// Feeds the next chunk; the first record with a different field count ends the check.
    pub(crate) fn feed(&mut self, chunk: &[u8]) -> Result<(), Defect> {
        let special = self.special;
        let mut i = 0;
        while i < chunk.len() {
            // Runs of bytes that change nothing but "this field and record have content" are
            // skipped in a tight loop; the state machine sees only the bytes that matter.
            match self.state {
                State::Plain => {
                    let start = i;
                    while i < chunk.len() && !special[usize::from(chunk[i])] {
                        i += 1;
                    }
                    if i > start {
                        self.field_start = false;
                        self.record_empty = false;
                    }
                }
                State::Quoted => {
                    while i < chunk.len() && !matches!(chunk[i], b'"' | b'\n' | 0) {
                        i += 1;
                    }
                }
                State::QuoteInQuoted => {}
            }
            if let Some(&b) = chunk.get(i) {
                self.byte(b)?;
                i += 1;
            }
        }
        Ok(())
    }

    /// Ends the stream (a last record without a newline is counted).
    pub(crate) fn finish(mut self) -> Result<(), Defect> {
        if self.state == State::QuoteInQuoted {
            self.state = State::Plain;
        }
        self.end_record()
    }

    #[inline]
    fn byte(&mut self, b: u8) -> Result<(), Defect> {
        if b == 0 {
            return Err(Defect::Nul { line: self.line });
        }
        match self.state {
            State::Quoted => {
                if b == b'"' {
                    self.state = State::QuoteInQuoted;
                } else if b == b'\n' {
                    self.line += 1;
                }
                Ok(())
            }
            State::QuoteInQuoted if b == b'"' => {
                self.state = State::Quoted;
                Ok(())
            }
            State::QuoteInQuoted => {
                self.state = State::Plain;
                self.field_start = false;
                self.plain(b)
            }
            State::Plain => self.plain(b),
        }
    }

    #[inline]
    fn plain(&mut self, b: u8) -> Result<(), Defect> {
        if b == self.separator {
            self.fields += 1;
            self.field_start = true;
            self.record_empty = false;
        } else if b == b'\n' {
            self.end_record()?;
            self.line += 1;
            self.record_line = self.line;
        } else if b == b'"' && self.field_start {
            self.state = State::Quoted;
            self.field_start = false;
            self.record_empty = false;
        } else if b != b'\r' {
            self.field_start = false;
            self.record_empty = false;
        }
        Ok(())
    }

    fn end_record(&mut self) -> Result<(), Defect> {
        let fields = std::mem::replace(&mut self.fields, 1);
        let empty = std::mem::replace(&mut self.record_empty, true);
        self.field_start = true;
        if empty {
            return Ok(());
        }
        match self.expected {
            None => {
                self.expected = Some(fields);
                Ok(())
            }
            Some(expected) if expected == fields || !self.count_fields => Ok(()),
            Some(expected) => Err(Defect::Fields {
                line: self.record_line,
                found: fields,
                expected,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, chunk: usize) -> Result<(), Defect> {
        let mut counter = FieldCounter::new(b',', true);
        for piece in text.as_bytes().chunks(chunk.max(1)) {
            counter.feed(piece)?;
        }
        counter.finish()
    }

    #[test]
    fn counts_fields_across_quotes_newlines_and_chunks() {
        let good = "a,b,c\n1,\"x,y\",3\r\n\"multi\nline\",\"q\"\"uote\",\n\n4,5,6";
        for chunk in [1, 2, 3, 7, 1000] {
            assert_eq!(check(good, chunk), Ok(()), "chunk {chunk}");
        }
        let missing = "a,b,c\n1,2,3\n\"multi\nline\",2\n";
        for chunk in [1, 5, 1000] {
            assert_eq!(
                check(missing, chunk),
                Err(Defect::Fields {
                    line: 3,
                    found: 2,
                    expected: 3
                })
            );
        }
        assert_eq!(
            check("a,b\n1,2\n3,4,5", 4),
            Err(Defect::Fields {
                line: 3,
                found: 3,
                expected: 2
            })
        );
        assert_eq!(
            check("a,b\n1,\"x\ny\0\"\n", 2),
            Err(Defect::Nul { line: 3 })
        );
        assert_eq!(check("", 1), Ok(()));
        // A quote inside an unquoted field is content, not a quoted field.
        assert_eq!(check("a,b\nx\"y,2\n", 1), Ok(()));
    }
}
