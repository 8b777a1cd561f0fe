//! [`Dataset::iter_batches`]: the streaming consumer trainers and batch predictors use.

use polars::prelude::*;
use rand::{RngExt, SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};

use crate::{
    Dataset,
    error::{DataError, Result},
    exec::{self, BatchStream, Rebatch},
};

/// How [`Dataset::iter_batches`] cuts and orders batches.
///
/// ```
/// use air_data::BatchOptions;
///
/// let opts = BatchOptions::new(256).with_drop_last(true).with_local_shuffle(4096, Some(7));
/// assert_eq!(opts.batch_size(), 256);
/// let simple: BatchOptions = 1024.into();
/// assert_eq!(simple.batch_size(), 1024);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchOptions {
    batch_size: usize,
    drop_last: bool,
    local_shuffle_buffer_size: Option<usize>,
    seed: Option<u64>,
}

impl BatchOptions {
    /// Batches of `batch_size` rows, in order, the last one possibly shorter.
    pub fn new(batch_size: usize) -> Self {
        Self {
            batch_size,
            drop_last: false,
            local_shuffle_buffer_size: None,
            seed: None,
        }
    }

    /// Drops a last batch shorter than `batch_size`.
    pub fn with_drop_last(mut self, drop_last: bool) -> Self {
        self.drop_last = drop_last;
        self
    }

    /// Shuffles rows within a sliding buffer of at least `buffer_rows` rows (Ray's
    /// `local_shuffle_buffer_size`): cheaper than a global shuffle, memory stays bounded by the
    /// buffer. `seed` makes the order reproducible.
    pub fn with_local_shuffle(mut self, buffer_rows: usize, seed: Option<u64>) -> Self {
        self.local_shuffle_buffer_size = Some(buffer_rows);
        self.seed = seed;
        self
    }

    /// The batch size.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }
}

impl From<usize> for BatchOptions {
    fn from(batch_size: usize) -> Self {
        Self::new(batch_size)
    }
}

/// The iterator [`Dataset::iter_batches`] returns: each item is one batch or the error that
/// ended the stream. Dropping it early stops reading.
pub struct Batches {
    inner: BatchStream,
}

impl std::fmt::Debug for Batches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Batches")
    }
}

impl Iterator for Batches {
    type Item = Result<DataFrame>;
    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next()
    }
}

impl Dataset {
    /// Streams the rows in batches. Reading, the plan and the consumer overlap; for file
    /// sources only a few batches are in memory at a time.
    ///
    /// ```
    /// use air_data::{BatchOptions, Dataset};
    ///
    /// let ds = Dataset::range(10);
    /// let sizes: Vec<usize> = ds
    ///     .iter_batches(4)?
    ///     .map(|b| b.map(|df| df.height()))
    ///     .collect::<Result<_, _>>()?;
    /// assert_eq!(sizes, [4, 4, 2]);
    /// let full = ds.iter_batches(BatchOptions::new(4).with_drop_last(true))?.count();
    /// assert_eq!(full, 2);
    /// # Ok::<(), air_data::DataError>(())
    /// ```
    pub fn iter_batches(&self, options: impl Into<BatchOptions>) -> Result<Batches> {
        let options = options.into();
        if options.batch_size == 0 {
            return Err(DataError::InvalidArgument {
                name: "batch_size",
                value: "0".to_owned(),
                expected: "at least 1 row".to_owned(),
            });
        }
        let size = options.batch_size;
        let source = exec::stream(self, size)?;
        let inner: BatchStream = match options.local_shuffle_buffer_size {
            None => Box::new(Rebatch::new(source, size, options.drop_last)),
            Some(buffer) => {
                let seed = options.seed.unwrap_or_else(rand::random);
                let shuffled = LocalShuffle {
                    inner: source,
                    buffer: None,
                    min_rows: buffer.max(size),
                    batch_size: size,
                    rng: StdRng::seed_from_u64(seed),
                    exhausted: false,
                    shuffled: false,
                };
                Box::new(Rebatch::new(Box::new(shuffled), size, options.drop_last))
            }
        };
        Ok(Batches { inner })
    }
}

/// Ray's local shuffle: fill a buffer to at least `min_rows`, shuffle it, hand out batches from
/// it until it falls to half, then top it up and shuffle again. Each row is moved about twice.
struct LocalShuffle {
    inner: BatchStream,
    buffer: Option<DataFrame>,
    min_rows: usize,
    batch_size: usize,
    rng: StdRng,
    exhausted: bool,
    shuffled: bool,
}

impl LocalShuffle {
    fn height(&self) -> usize {
        self.buffer.as_ref().map_or(0, DataFrame::height)
    }
}

impl Iterator for LocalShuffle {
    type Item = Result<DataFrame>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.height() < self.min_rows / 2 || !self.shuffled {
            while !self.exhausted && self.height() < self.min_rows {
                match self.inner.next() {
                    Some(Ok(df)) => {
                        let merged = match self.buffer.take() {
                            None => Ok(df),
                            Some(b) => exec::concat_frames(vec![b, df]),
                        };
                        match merged {
                            Ok(m) => self.buffer = Some(m),
                            Err(e) => return Some(Err(e)),
                        }
                        self.shuffled = false;
                    }
                    Some(Err(e)) => return Some(Err(e)),
                    None => self.exhausted = true,
                }
            }
            if !self.shuffled && self.height() > 0 {
                let buffer = self.buffer.take()?;
                let seed = self.rng.random::<u64>();
                match buffer.sample_n_literal(buffer.height(), false, Some(true), Some(seed)) {
                    Ok(s) => self.buffer = Some(s),
                    Err(e) => {
                        return Some(Err(DataError::Polars {
                            context: "local shuffle".to_owned(),
                            source: e,
                        }));
                    }
                }
                self.shuffled = true;
            }
        }
        let buffer = self.buffer.take()?;
        if buffer.height() == 0 {
            return None;
        }
        let n = i64::try_from(self.batch_size.min(buffer.height())).unwrap_or(i64::MAX);
        let (head, tail) = buffer.split_at(n);
        self.buffer = Some(tail);
        Some(Ok(head))
    }
}
