//! [`Dataset`]: a lazy plan over polars, plus the parts polars cannot express (user batch
//! functions) as nodes of our own.
//!
//! The plan is a tree of [`Node`]s shared through `Arc`, so cloning a dataset is a pointer copy.
//! When a subtree is pure polars it is lowered to one `LazyFrame` and polars optimises and runs it
//! (projection and predicate pushdown into the scans, its streaming engine for iteration). A
//! `map_batches` node is run by us: batches of its input stream through the user function on
//! rayon's thread pool, a window of batches at a time, in order.

use std::{fmt, sync::Arc};

use polars::prelude::*;
use serde::Serialize;

use crate::{
    error::{DataError, Result},
    exec,
    source::{CsvOptions, FileFormat, FileSource},
};

/// A user function for [`Dataset::map_batches`]: one batch in, one batch out.
///
/// Implemented for every `Fn(DataFrame) -> Result<DataFrame, E>` closure whose error converts to
/// a boxed error (polars' errors, this crate's, `anyhow`'s, `String`).
pub trait BatchFn: Send + Sync + 'static {
    /// Transforms one batch.
    fn call(&self, batch: DataFrame)
    -> Result<DataFrame, Box<dyn std::error::Error + Send + Sync>>;
}

impl<F, E> BatchFn for F
where
    F: Fn(DataFrame) -> Result<DataFrame, E> + Send + Sync + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn call(
        &self,
        batch: DataFrame,
    ) -> Result<DataFrame, Box<dyn std::error::Error + Send + Sync>> {
        self(batch).map_err(Into::into)
    }
}

/// One aggregation of [`GroupedDataset::aggregate`]; output columns are named like Ray's
/// (`count()`, `sum(x)`, `mean(x)`, `std(x)`, `min(x)`, `max(x)`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum Agg {
    /// Rows per group.
    Count,
    /// Sum of a column (nulls ignored).
    Sum(String),
    /// Mean of a column (nulls ignored).
    Mean(String),
    /// Standard deviation with `ddof` delta degrees of freedom (Ray's default is 1).
    Std {
        /// The column.
        column: String,
        /// Delta degrees of freedom.
        ddof: u8,
    },
    /// Minimum of a column.
    Min(String),
    /// Maximum of a column.
    Max(String),
}

impl Agg {
    /// Sum of `column`.
    pub fn sum(column: impl Into<String>) -> Self {
        Self::Sum(column.into())
    }
    /// Mean of `column`.
    pub fn mean(column: impl Into<String>) -> Self {
        Self::Mean(column.into())
    }
    /// Sample standard deviation (ddof 1) of `column`.
    pub fn std(column: impl Into<String>) -> Self {
        Self::Std {
            column: column.into(),
            ddof: 1,
        }
    }
    /// Minimum of `column`.
    pub fn min(column: impl Into<String>) -> Self {
        Self::Min(column.into())
    }
    /// Maximum of `column`.
    pub fn max(column: impl Into<String>) -> Self {
        Self::Max(column.into())
    }

    fn column(&self) -> Option<&str> {
        match self {
            Self::Count => None,
            Self::Sum(c) | Self::Mean(c) | Self::Min(c) | Self::Max(c) => Some(c),
            Self::Std { column, .. } => Some(column),
        }
    }

    fn expr(&self) -> Expr {
        match self {
            Self::Count => len().alias("count()"),
            Self::Sum(c) => col(c.as_str()).sum().alias(format!("sum({c})")),
            Self::Mean(c) => col(c.as_str()).mean().alias(format!("mean({c})")),
            Self::Std { column, ddof } => col(column.as_str())
                .std(*ddof)
                .alias(format!("std({column})")),
            Self::Min(c) => col(c.as_str()).min().alias(format!("min({c})")),
            Self::Max(c) => col(c.as_str()).max().alias(format!("max({c})")),
        }
    }
}

/// How big the test split of [`Dataset::train_test_split`] is.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub enum TestSize {
    /// A fraction of the rows, in (0, 1); the test split gets `ceil(fraction * rows)`.
    Fraction(f64),
    /// An exact number of rows.
    Rows(usize),
}

impl From<f64> for TestSize {
    fn from(fraction: f64) -> Self {
        Self::Fraction(fraction)
    }
}

impl From<usize> for TestSize {
    fn from(rows: usize) -> Self {
        Self::Rows(rows)
    }
}

/// How [`Dataset::train_test_split`] splits (scikit-learn's `train_test_split`): the test
/// size, and whether the rows are shuffled first. A bare test size (`0.3`, `100`) converts
/// into a split without shuffling, Ray's default.
///
/// ```
/// use air_data::TrainTestSplit;
///
/// let last_30_percent = TrainTestSplit::new(0.3);
/// let shuffled = TrainTestSplit::new(0.3).shuffle(7);
/// assert_ne!(last_30_percent, shuffled);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainTestSplit {
    test_size: TestSize,
    shuffle: Shuffle,
}

/// Whether, and how, rows are shuffled before a split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shuffle {
    No,
    Seeded(u64),
    Unseeded,
}

impl TrainTestSplit {
    /// The last `test_size` rows are the test split: a fraction in (0, 1) (the test split gets
    /// `ceil(fraction * rows)`) or a row count.
    pub fn new(test_size: impl Into<TestSize>) -> Self {
        Self {
            test_size: test_size.into(),
            shuffle: Shuffle::No,
        }
    }

    /// Shuffles the rows first with `seed` (the same split every time).
    pub fn shuffle(mut self, seed: u64) -> Self {
        self.shuffle = Shuffle::Seeded(seed);
        self
    }

    /// Shuffles the rows first with a fresh random seed.
    pub fn shuffle_unseeded(mut self) -> Self {
        self.shuffle = Shuffle::Unseeded;
        self
    }
}

impl From<TestSize> for TrainTestSplit {
    fn from(test_size: TestSize) -> Self {
        Self::new(test_size)
    }
}

impl From<f64> for TrainTestSplit {
    fn from(fraction: f64) -> Self {
        Self::new(fraction)
    }
}

impl From<usize> for TrainTestSplit {
    fn from(rows: usize) -> Self {
        Self::new(rows)
    }
}

/// How [`Dataset::split`] sizes its shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardSizes {
    /// Every shard has exactly `rows / n` rows; the remainder is dropped (Ray's `equal=True`,
    /// what data-parallel workers need to stay in lockstep).
    Equal,
    /// Shard sizes differ by at most one and every row is kept.
    Balanced,
}

#[derive(Clone)]
pub(crate) enum Op {
    Filter(Expr),
    Select(Vec<String>),
    Drop(Vec<String>),
    Rename(Vec<(String, String)>),
    WithColumn(String, Expr),
    Slice {
        offset: usize,
        len: usize,
    },
    Sort {
        by: Vec<String>,
        descending: bool,
    },
    GroupBy {
        keys: Vec<String>,
        aggs: Vec<Agg>,
    },
    Shuffle {
        seed: u64,
    },
    Repartition(usize),
    /// A fallible plan rewrite with a name (a preprocessor's expressions); `row_local` ops are
    /// applied batch by batch after a `map_batches`.
    Pipe {
        name: String,
        f: PipeFn,
        row_local: bool,
    },
}

/// A plan rewrite appended by [`Dataset::pipe`].
pub(crate) type PipeFn = Arc<dyn Fn(LazyFrame) -> Result<LazyFrame> + Send + Sync>;

impl Op {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Filter(_) => "filter",
            Self::Select(_) => "select_columns",
            Self::Drop(_) => "drop_columns",
            Self::Rename(_) => "rename_columns",
            Self::WithColumn(..) => "with_column",
            Self::Slice { .. } => "limit",
            Self::Sort { .. } => "sort",
            Self::GroupBy { .. } => "groupby",
            Self::Shuffle { .. } => "random_shuffle",
            Self::Repartition(_) => "repartition",
            Self::Pipe { .. } => "pipe",
        }
    }

    /// Column names the op needs from its input.
    fn required(&self) -> Vec<&str> {
        match self {
            Self::Select(c) | Self::Drop(c) => c.iter().map(String::as_str).collect(),
            Self::Rename(pairs) => pairs.iter().map(|(old, _)| old.as_str()).collect(),
            Self::Sort { by, .. } => by.iter().map(String::as_str).collect(),
            Self::GroupBy { keys, aggs } => keys
                .iter()
                .map(String::as_str)
                .chain(aggs.iter().filter_map(Agg::column))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Whether the op can run batch by batch on a stream (it looks at one row at a time and
    /// keeps no state across rows other than a row counter).
    pub(crate) fn streams(&self) -> bool {
        match self {
            Self::Select(_) | Self::Drop(_) | Self::Rename(_) | Self::Slice { .. } => true,
            Self::Pipe { row_local, .. } => *row_local,
            _ => false,
        }
    }

    pub(crate) fn check(&self, schema: &Schema) -> Result<()> {
        for column in self.required() {
            if schema.get(column).is_none() {
                return Err(column_not_found(column, self.name(), schema));
            }
        }
        Ok(())
    }

    pub(crate) fn apply(&self, lf: LazyFrame) -> Result<LazyFrame> {
        Ok(match self {
            Self::Filter(e) => lf.filter(e.clone()),
            Self::Select(c) => lf.select(c.iter().map(|c| col(c.as_str())).collect::<Vec<_>>()),
            Self::Drop(c) => lf.drop(by_name(c.iter().map(String::as_str), true, false)),
            Self::Rename(pairs) => lf.rename(
                pairs.iter().map(|(o, _)| o.as_str()),
                pairs.iter().map(|(_, n)| n.as_str()),
                true,
            ),
            Self::WithColumn(name, e) => lf.with_column(e.clone().alias(name.as_str())),
            Self::Slice { offset, len } => lf.slice(
                i64::try_from(*offset).unwrap_or(i64::MAX),
                IdxSize::try_from(*len).unwrap_or(IdxSize::MAX),
            ),
            Self::Sort { by, descending } => lf.sort(
                by.iter().map(String::as_str).collect::<Vec<_>>(),
                SortMultipleOptions::default()
                    .with_order_descending(*descending)
                    .with_nulls_last(true)
                    .with_maintain_order(true),
            ),
            Self::GroupBy { keys, aggs } => {
                let key_exprs: Vec<Expr> = keys.iter().map(|k| col(k.as_str())).collect();
                lf.group_by(key_exprs)
                    .agg(aggs.iter().map(Agg::expr).collect::<Vec<_>>())
                    .sort(
                        keys.iter().map(String::as_str).collect::<Vec<_>>(),
                        SortMultipleOptions::default().with_nulls_last(true),
                    )
            }
            // One permutation gathered across all columns (shuffling each column with the same
            // seed would also keep rows whole, but draws the permutation once per column).
            Self::Shuffle { seed } => {
                let seed = *seed;
                lf.map(
                    move |df: DataFrame| {
                        df.sample_n_literal(df.height(), false, Some(true), Some(seed))
                    },
                    // Columns may be pruned below the shuffle (the permutation depends only on
                    // the row count); filters may not, or they would change which rows land where.
                    AllowedOptimizations::PROJECTION_PUSHDOWN,
                    None,
                    Some("random_shuffle"),
                )
            }
            Self::Repartition(_) => lf,
            Self::Pipe { f, .. } => f(lf)?,
        })
    }
}

pub(crate) fn column_not_found(column: &str, context: &str, schema: &Schema) -> DataError {
    DataError::ColumnNotFound {
        column: column.to_owned(),
        context: context.to_owned(),
        available: schema.iter_names().map(|n| n.to_string()).collect(),
    }
}

/// The nodes of a dataset's plan.
pub(crate) enum Node {
    Frame(LazyFrame),
    Files(FileSource),
    Op {
        input: Dataset,
        op: Op,
    },
    Map {
        input: Dataset,
        f: Arc<dyn BatchFn>,
        batch_size: Option<usize>,
    },
    Union(Vec<Dataset>),
    /// Materialised on first use and shared by every dataset built on it (the splits of a
    /// shuffled `train_test_split` see one shuffle, computed once).
    Cached {
        input: Dataset,
        frame: std::sync::Mutex<Option<DataFrame>>,
    },
}

/// A lazy, cheaply cloned table: the data every trainer, tuner and batch predictor consumes.
///
/// Creating and transforming a dataset reads nothing (readers only list files and compare their
/// schemas); consuming it ([`iter_batches`](Self::iter_batches), [`to_polars`](Self::to_polars),
/// [`count`](Self::count), the writers, ...) runs the plan.
///
/// ```
/// use air_data::{Dataset, polars::prelude::*};
///
/// let ds = Dataset::range(10)
///     .with_column("double", col("id") * lit(2))
///     .filter(col("id").gt_eq(lit(5)));
/// assert_eq!(ds.count()?, 5);
/// let (train, test) = ds.train_test_split(0.2)?;
/// assert_eq!((train.count()?, test.count()?), (4, 1));
/// # Ok::<(), air_data::DataError>(())
/// ```
#[derive(Clone)]
pub struct Dataset {
    pub(crate) node: Arc<Node>,
}

impl fmt::Debug for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.node {
            Node::Frame(_) => write!(f, "from_polars(..)"),
            Node::Files(src) => write!(f, "{src:?}"),
            Node::Op {
                input,
                op: Op::Pipe { name, .. },
            } => write!(f, "{input:?}.{name}(..)"),
            Node::Op { input, op } => write!(f, "{input:?}.{}(..)", op.name()),
            Node::Map {
                input, batch_size, ..
            } => {
                write!(f, "{input:?}.map_batches(batch_size={batch_size:?})")
            }
            Node::Union(children) => f.debug_tuple("union").field(children).finish(),
            Node::Cached { input, .. } => write!(f, "{input:?}.materialize()"),
        }
    }
}

impl Dataset {
    fn new(node: Node) -> Self {
        Self {
            node: Arc::new(node),
        }
    }

    fn op(&self, op: Op) -> Self {
        Self::new(Node::Op {
            input: self.clone(),
            op,
        })
    }

    // ----- creation -----

    /// Reads CSV from a file, a directory (every `.csv`/`.tsv`/`.txt` file in it, recursively),
    /// a glob, or a URI (`file://`, `s3://`, `gs://`, `az://`, `memory://`), with a header row
    /// and inferred types.
    pub fn read_csv(location: &str) -> Result<Self> {
        Self::read_csv_with(location, CsvOptions::new())
    }

    /// [`read_csv`](Self::read_csv) with options (separator, header, null strings, storage).
    pub fn read_csv_with(location: &str, options: CsvOptions) -> Result<Self> {
        FileSource::open(location, FileFormat::Csv, options).map(|s| Self::new(Node::Files(s)))
    }

    /// Reads parquet from a file, a directory, a glob or a URI. Remote files are scanned with
    /// ranged requests: only the footer and the row groups and columns a query needs are fetched.
    pub fn read_parquet(location: &str) -> Result<Self> {
        Self::read_parquet_with(location, &air_checkpoint::StorageOptions::new())
    }

    /// [`read_parquet`](Self::read_parquet) with object store settings.
    pub fn read_parquet_with(
        location: &str,
        storage: &air_checkpoint::StorageOptions,
    ) -> Result<Self> {
        let options = CsvOptions::new().with_storage(storage.clone());
        FileSource::open(location, FileFormat::Parquet, options).map(|s| Self::new(Node::Files(s)))
    }

    /// Reads JSON: JSON lines (one object per line) or files holding one array of objects,
    /// told apart by their first character.
    pub fn read_json(location: &str) -> Result<Self> {
        Self::read_json_with(location, &air_checkpoint::StorageOptions::new())
    }

    /// [`read_json`](Self::read_json) with object store settings.
    pub fn read_json_with(
        location: &str,
        storage: &air_checkpoint::StorageOptions,
    ) -> Result<Self> {
        let options = CsvOptions::new().with_storage(storage.clone());
        FileSource::open(location, FileFormat::Json, options).map(|s| Self::new(Node::Files(s)))
    }

    /// Reads files of `format` from a file, a directory, a glob or a URI (what
    /// [`read_csv_with`](Self::read_csv_with), [`read_parquet_with`](Self::read_parquet_with)
    /// and [`read_json_with`](Self::read_json_with) do, chosen at run time; `options` other than
    /// storage apply to CSV only).
    pub fn read_files(location: &str, format: FileFormat, options: CsvOptions) -> Result<Self> {
        FileSource::open(location, format, options).map(|s| Self::new(Node::Files(s)))
    }

    /// Wraps an in-memory polars frame.
    pub fn from_polars(df: DataFrame) -> Self {
        Self::new(Node::Frame(df.lazy()))
    }

    /// Wraps a polars lazy query (any scan or plan polars can build).
    pub fn from_lazy(lf: LazyFrame) -> Self {
        Self::new(Node::Frame(lf))
    }

    /// Builds a dataset from records. Structs and maps become rows with one column per field;
    /// any other value becomes a row of a single column named `item` (as in Ray).
    pub fn from_items<T: Serialize>(items: &[T]) -> Result<Self> {
        let values: Vec<serde_json::Value> = items
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<_, _>>()
            .map_err(|e| DataError::Items {
                reason: e.to_string(),
            })?;
        if values.is_empty() {
            return Ok(Self::from_polars(DataFrame::empty()));
        }
        let records = values.iter().all(serde_json::Value::is_object);
        let json = if records {
            serde_json::to_vec(&values)
        } else {
            let wrapped: Vec<_> = values
                .into_iter()
                .map(|v| serde_json::json!({ "item": v }))
                .collect();
            serde_json::to_vec(&wrapped)
        }
        .map_err(|e| DataError::Items {
            reason: e.to_string(),
        })?;
        let df = JsonReader::new(std::io::Cursor::new(json))
            .with_json_format(JsonFormat::Json)
            .infer_schema_len(None)
            .finish()
            .map_err(|e| DataError::Items {
                reason: format!("records do not form a table: {e}"),
            })?;
        Ok(Self::from_polars(df))
    }

    /// The integers `0..n` in one `Int64` column named `id`, generated when consumed.
    pub fn range(n: u64) -> Self {
        // A column of n placeholders numbered by polars' row index: nothing is allocated until
        // the plan runs.
        let lf = DataFrame::empty()
            .lazy()
            .select([repeat(lit(false), lit(n)).alias("_")])
            .with_row_index("id", None)
            .select([col("id").cast(DataType::Int64)]);
        Self::new(Node::Frame(lf))
    }

    // ----- transforms -----

    /// Applies `f` to batches of `batch_size` rows (the last may be smaller), in parallel on
    /// rayon's global thread pool, keeping the batches' order in the output. `None` passes whole blocks:
    /// the blocks made by [`repartition`](Self::repartition) or the chunks the source yields.
    ///
    /// Errors and panics in `f` become [`DataError::UserFunction`] with the batch's position.
    pub fn map_batches<F: BatchFn>(
        &self,
        f: F,
        batch_size: impl Into<Option<usize>>,
    ) -> Result<Self> {
        let batch_size = batch_size.into();
        if batch_size == Some(0) {
            return Err(DataError::InvalidArgument {
                name: "batch_size",
                value: "0".to_owned(),
                expected: "at least 1 row, or None for whole blocks".to_owned(),
            });
        }
        Ok(Self::new(Node::Map {
            input: self.clone(),
            f: Arc::new(f),
            batch_size,
        }))
    }

    /// Appends a rewrite of the polars plan (how preprocessors add their expressions). With
    /// `row_local` the rewrite promises to treat each row on its own, so it may be applied batch
    /// by batch where the plan streams through a `map_batches`.
    pub fn pipe<F>(&self, name: &str, row_local: bool, f: F) -> Self
    where
        F: Fn(LazyFrame) -> Result<LazyFrame> + Send + Sync + 'static,
    {
        self.op(Op::Pipe {
            name: name.to_owned(),
            f: Arc::new(f),
            row_local,
        })
    }

    /// Keeps the rows where `predicate` is true (null counts as false).
    pub fn filter(&self, predicate: Expr) -> Self {
        self.op(Op::Filter(predicate))
    }

    /// Keeps only `columns`, in that order.
    pub fn select_columns<S: AsRef<str>>(&self, columns: &[S]) -> Self {
        self.op(Op::Select(
            columns.iter().map(|c| c.as_ref().to_owned()).collect(),
        ))
    }

    /// Removes `columns`.
    pub fn drop_columns<S: AsRef<str>>(&self, columns: &[S]) -> Self {
        self.op(Op::Drop(
            columns.iter().map(|c| c.as_ref().to_owned()).collect(),
        ))
    }

    /// Renames columns, `(old, new)` pairs.
    pub fn rename_columns<S: AsRef<str>, T: AsRef<str>>(&self, pairs: &[(S, T)]) -> Self {
        self.op(Op::Rename(
            pairs
                .iter()
                .map(|(o, n)| (o.as_ref().to_owned(), n.as_ref().to_owned()))
                .collect(),
        ))
    }

    /// Adds (or replaces) column `name` computed by `expr`.
    pub fn with_column(&self, name: &str, expr: Expr) -> Self {
        self.op(Op::WithColumn(name.to_owned(), expr))
    }

    /// The first `n` rows.
    pub fn limit(&self, n: usize) -> Self {
        self.op(Op::Slice { offset: 0, len: n })
    }

    /// Rows `offset..offset + len`.
    pub(crate) fn slice(&self, offset: usize, len: usize) -> Self {
        self.op(Op::Slice { offset, len })
    }

    /// The rows of `self` followed by those of each of `others` (same columns and types).
    pub fn union(&self, others: &[Dataset]) -> Self {
        let mut children = vec![self.clone()];
        children.extend(others.iter().cloned());
        Self::new(Node::Union(children))
    }

    /// Sorts by `columns` (ties keep their order; nulls last).
    pub fn sort<S: AsRef<str>>(&self, columns: &[S], descending: bool) -> Self {
        self.op(Op::Sort {
            by: columns.iter().map(|c| c.as_ref().to_owned()).collect(),
            descending,
        })
    }

    /// Groups rows by `keys`; finish with [`GroupedDataset::aggregate`].
    pub fn groupby<S: AsRef<str>>(&self, keys: &[S]) -> GroupedDataset {
        GroupedDataset {
            input: self.clone(),
            keys: keys.iter().map(|k| k.as_ref().to_owned()).collect(),
        }
    }

    /// Shuffles all rows. With a seed the order is reproducible; without, a seed is drawn now,
    /// so every consumption of the returned dataset sees the same order.
    pub fn random_shuffle(&self, seed: Option<u64>) -> Self {
        let seed = seed.unwrap_or_else(rand::random);
        self.op(Op::Shuffle { seed })
    }

    /// Regroups the rows into `n` contiguous blocks of near-equal size (the units
    /// `map_batches(f, None)` sees). A barrier: the input is materialised.
    pub fn repartition(&self, n: usize) -> Result<Self> {
        if n == 0 {
            return Err(DataError::InvalidArgument {
                name: "num_blocks",
                value: "0".to_owned(),
                expected: "at least 1".to_owned(),
            });
        }
        Ok(self.op(Op::Repartition(n)))
    }

    // ----- splits -----

    /// Splits into a train and a test dataset ([`TrainTestSplit`]: a test size, and an
    /// optional shuffle first, whose one permutation both splits see, so they are disjoint and
    /// cover every row). Counts the rows.
    pub fn train_test_split(&self, split: impl Into<TrainTestSplit>) -> Result<(Dataset, Dataset)> {
        let TrainTestSplit { test_size, shuffle } = split.into();
        let n = self.count()?;
        let test = match test_size {
            TestSize::Fraction(f) if f > 0.0 && f < 1.0 => {
                // f64 has 53 bits of mantissa; row counts beyond 2^53 are not a concern here.
                #[allow(
                    clippy::cast_possible_truncation,
                    clippy::cast_sign_loss,
                    clippy::cast_precision_loss
                )]
                let rows = (f * n as f64).ceil() as usize;
                rows
            }
            TestSize::Rows(r) if r <= n => r,
            other => {
                return Err(DataError::InvalidArgument {
                    name: "test_size",
                    value: format!("{other:?}"),
                    expected: format!(
                        "a fraction strictly between 0 and 1, or a row count at most the dataset's {n} rows"
                    ),
                });
            }
        };
        let seed = match shuffle {
            Shuffle::No => None,
            Shuffle::Seeded(seed) => Some(Some(seed)),
            Shuffle::Unseeded => Some(None),
        };
        let base = match seed {
            // Shuffled once, when either split is first consumed, and shared by both.
            Some(seed) => Self::new(Node::Cached {
                input: self.random_shuffle(seed),
                frame: std::sync::Mutex::new(None),
            }),
            None => self.clone(),
        };
        Ok((base.slice(0, n - test), base.slice(n - test, test)))
    }

    /// Splits into `n` contiguous shards, one per worker, sized by [`ShardSizes`]. Counts the
    /// rows.
    pub fn split(&self, n: usize, sizes: ShardSizes) -> Result<Vec<Dataset>> {
        if n == 0 {
            return Err(DataError::InvalidArgument {
                name: "n",
                value: "0".to_owned(),
                expected: "at least 1 shard".to_owned(),
            });
        }
        let rows = self.count()?;
        let base = rows / n;
        let extra = match sizes {
            ShardSizes::Equal => 0,
            ShardSizes::Balanced => rows % n,
        };
        let mut offset = 0;
        Ok((0..n)
            .map(|i| {
                let len = base + usize::from(i < extra);
                let shard = self.slice(offset, len);
                offset += len;
                shard
            })
            .collect())
    }

    /// Splits at the given row indices (non-decreasing): `[0, i0), [i0, i1), ..., [ik, end)`.
    /// Indices past the end give empty datasets. Reads nothing.
    pub fn split_at_indices(&self, indices: &[usize]) -> Result<Vec<Dataset>> {
        if let Some(w) = indices.windows(2).find(|w| w[0] > w[1]) {
            return Err(DataError::InvalidArgument {
                name: "indices",
                value: format!("{indices:?}"),
                expected: format!("non-decreasing indices ({} comes after {})", w[1], w[0]),
            });
        }
        let mut out = Vec::with_capacity(indices.len() + 1);
        let mut start = 0;
        for &i in indices {
            out.push(self.slice(start, i - start));
            start = i;
        }
        out.push(self.slice(start, usize::MAX - start));
        Ok(out)
    }

    // ----- consumption -----

    /// Runs the plan and returns every row as one polars frame.
    pub fn to_polars(&self) -> Result<DataFrame> {
        exec::collect(self)
    }

    /// The first `n` rows (reading only as much as needed where the source allows).
    pub fn take(&self, n: usize) -> Result<DataFrame> {
        self.limit(n).to_polars()
    }

    /// The number of rows (parquet answers from its footers, without reading data).
    pub fn count(&self) -> Result<usize> {
        exec::count(self)
    }

    /// The column names and types. For file sources this reads footers or headers only; after a
    /// `map_batches`, the function is run on one row to learn its output.
    pub fn schema(&self) -> Result<Schema> {
        exec::schema(self)
    }

    /// The column names.
    pub fn columns(&self) -> Result<Vec<String>> {
        Ok(self.schema()?.iter_names().map(|n| n.to_string()).collect())
    }

    /// Prints the first `n` rows as a table.
    pub fn show(&self, n: usize) -> Result<()> {
        let df = self.take(n)?;
        println!("{df}");
        Ok(())
    }

    /// The lazy polars plan, when the dataset is pure polars (no `map_batches` in it).
    pub fn to_lazy(&self) -> Result<Option<LazyFrame>> {
        exec::lower(self)
    }
}

/// A dataset grouped by key columns; see [`Dataset::groupby`].
#[derive(Debug, Clone)]
pub struct GroupedDataset {
    input: Dataset,
    keys: Vec<String>,
}

impl GroupedDataset {
    /// One row per group (sorted by the keys) with the key columns and the aggregations.
    pub fn aggregate(&self, aggs: impl IntoIterator<Item = Agg>) -> Dataset {
        self.input.op(Op::GroupBy {
            keys: self.keys.clone(),
            aggs: aggs.into_iter().collect(),
        })
    }

    /// Rows per group, in a column `count()`.
    pub fn count(&self) -> Dataset {
        self.aggregate([Agg::Count])
    }

    /// Sum of `column` per group.
    pub fn sum(&self, column: &str) -> Dataset {
        self.aggregate([Agg::sum(column)])
    }

    /// Mean of `column` per group.
    pub fn mean(&self, column: &str) -> Dataset {
        self.aggregate([Agg::mean(column)])
    }
}

/// Used by the executor to report polars errors against the dataset's sources.
pub(crate) fn file_sources<'a>(ds: &'a Dataset, out: &mut Vec<&'a FileSource>) {
    match &*ds.node {
        Node::Frame(_) => {}
        Node::Files(src) => out.push(src),
        Node::Op { input, .. } | Node::Map { input, .. } | Node::Cached { input, .. } => {
            file_sources(input, out);
        }
        Node::Union(children) => children.iter().for_each(|c| file_sources(c, out)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datasets_cross_threads() {
        // Trainers hand shards to worker threads and tuners share one dataset across trials.
        fn check<T: Send + Sync + Clone + 'static>() {}
        check::<Dataset>();
        check::<GroupedDataset>();
    }

    #[test]
    fn debug_shows_the_plan() {
        let ds = Dataset::range(3)
            .limit(2)
            .map_batches(Ok::<DataFrame, PolarsError>, 1)
            .unwrap();
        assert_eq!(
            format!("{ds:?}"),
            "from_polars(..).limit(..).map_batches(batch_size=Some(1))"
        );
    }
}
