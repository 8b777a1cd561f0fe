//! Count and hash vectorizers: `CountVectorizer`, `HashingVectorizer`, `FeatureHasher` and
//! `MultiHotEncoder`.
//!
//! Each turns a column (text, lists, or a group of columns) into a fixed-length vector of counts.
//! The vector is built by one kernel per batch that fills a dense row-major block in parallel
//! row chunks — the block is exactly the values buffer of a fixed-size `Array` column, and is
//! split into scalar columns when those are asked for. The kernels are row-local, so the
//! streaming engine runs them batch by batch.

use std::{
    collections::{BTreeMap, HashMap},
    hash::Hash,
    sync::Arc,
};

use polars::prelude::*;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{
    NamedPreprocessor, check_columns, impl_preprocessor, names,
    text::{Tokenization, Tokens, bucket, text_column},
};
use crate::{
    Dataset,
    dataset::column_not_found,
    error::{DataError, Result},
};

/// How a vectorizer lays out its features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VectorOutput {
    /// One scalar column per feature, appended after the remaining columns (Ray 2.x's layout:
    /// `{column}_{token}`, `hash_{column}_{i}`, `hash_{i}`, `{column}_{category}`).
    Columns,
    /// One fixed-size `Array` column per input column, appended under the input's name (a
    /// tensor column, what a trainer or `Concatenator` consumes without copying per feature).
    Array,
}

const CHUNK_ROWS: usize = 4096;
const FIT_BATCH_ROWS: usize = 65_536;

/// Fills a row-major `rows × width` block in parallel chunks of rows; `f(first_row, block)`.
fn fill_rows<T: Copy + Default + Send>(
    rows: usize,
    width: usize,
    f: impl Fn(usize, &mut [T]) -> PolarsResult<()> + Sync,
) -> PolarsResult<Vec<T>> {
    let mut data = vec![T::default(); rows * width];
    if width > 0 {
        data.par_chunks_mut(CHUNK_ROWS * width)
            .enumerate()
            .try_for_each(|(i, block)| f(i * CHUNK_ROWS, block))?;
    }
    Ok(data)
}

/// Where one vectorized block goes.
enum Layout<'a> {
    Columns(&'a [String]),
    Array(&'a str),
}

fn block_columns<T>(
    data: Vec<T::Native>,
    rows: usize,
    width: usize,
    layout: Layout<'_>,
) -> Vec<Column>
where
    T: PolarsNumericType,
{
    match layout {
        Layout::Array(name) => {
            let values = ChunkedArray::<T>::from_vec("".into(), data).chunks()[0].clone();
            let array = ArrayChunked::from_aligned_values(
                name.into(),
                &T::get_static_dtype(),
                width,
                vec![values],
                rows,
            );
            vec![array.into_column()]
        }
        Layout::Columns(names) => names
            .par_iter()
            .enumerate()
            .map(|(j, name)| {
                let v: Vec<T::Native> = (0..rows).map(|i| data[i * width + j]).collect();
                ChunkedArray::<T>::from_vec(name.as_str().into(), v).into_column()
            })
            .collect(),
    }
}

/// The fields one vectorized block adds to the schema.
fn block_fields(dtype: &DataType, width: usize, layout: Layout<'_>) -> Vec<Field> {
    match layout {
        Layout::Array(name) => vec![Field::new(
            name.into(),
            DataType::Array(Box::new(dtype.clone()), width),
        )],
        Layout::Columns(names) => names
            .iter()
            .map(|n| Field::new(n.as_str().into(), dtype.clone()))
            .collect(),
    }
}

type Kernel = dyn Fn(&DataFrame) -> PolarsResult<Vec<Column>> + Send + Sync;

/// Replaces the `inputs` columns of every batch by the columns `kernel` builds (declared by
/// `fields`), appended at the end.
fn replace_columns(
    mut lf: LazyFrame,
    inputs: Vec<String>,
    fields: Vec<Field>,
    preprocessor: &'static str,
    kernel: Arc<Kernel>,
) -> Result<LazyFrame> {
    let schema = lf.collect_schema().map_err(|e| DataError::Polars {
        context: format!("{preprocessor}: resolving the input's columns"),
        source: e,
    })?;
    super::check_schema(&schema, &inputs, preprocessor)?;
    let outputs: Vec<String> = fields.iter().map(|f| f.name().to_string()).collect();
    let removed = |n: &str| inputs.iter().any(|c| c == n) || outputs.iter().any(|c| c == n);
    let mut out_schema: Schema = schema
        .iter()
        .filter(|(n, _)| !removed(n.as_str()))
        .map(|(n, d)| (n.clone(), d.clone()))
        .collect();
    for f in fields {
        out_schema.insert(f.name().clone(), f.dtype().clone());
    }
    let out_schema = Arc::new(out_schema);
    let drop: Vec<String> = schema
        .iter_names()
        .filter(|n| removed(n.as_str()))
        .map(|n| n.to_string())
        .collect();
    Ok(lf.map(
        move |df: DataFrame| {
            let new = kernel(&df)?;
            let mut df = df.drop_many(drop.iter().map(String::as_str));
            for c in new {
                df.with_column(c)?;
            }
            Ok(df)
        },
        AllowedOptimizations::STREAMING,
        Some(Arc::new(move |_: &Schema| Ok(out_schema.clone()))),
        Some(preprocessor),
    ))
}

fn nulls_error(preprocessor: &str, column: &str) -> PolarsError {
    PolarsError::ComputeError(
        DataError::NullsNotAllowed {
            preprocessor: preprocessor.to_owned(),
            column: column.to_owned(),
        }
        .to_string()
        .into(),
    )
}

fn to_data_error(preprocessor: &str) -> impl Fn(PolarsError) -> DataError + '_ {
    move |e| DataError::Polars {
        context: format!("fitting {preprocessor}"),
        source: e,
    }
}

fn check_positive(n: usize, what: &str, preprocessor: &str) -> Result<()> {
    if n == 0 {
        return Err(DataError::InvalidPreprocessor {
            preprocessor: preprocessor.to_owned(),
            reason: format!("{what} is 0; expected at least 1"),
        });
    }
    Ok(())
}

/// Keeps the `max` most frequent keys (ties to the smaller key) of `counts`, sorted.
fn top_sorted<K: Ord + Clone>(counts: HashMap<K, u64>, max: Option<usize>) -> Vec<K> {
    let mut all: Vec<(K, u64)> = counts.into_iter().collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(max) = max
        && max < all.len()
    {
        // Most frequent first; the stable sort keeps key order among ties.
        let mut order: Vec<usize> = (0..all.len()).collect();
        order.sort_by(|&a, &b| all[b].1.cmp(&all[a].1));
        let mut keep: Vec<usize> = order.into_iter().take(max).collect();
        keep.sort_unstable();
        return keep.into_iter().map(|i| all[i].0.clone()).collect();
    }
    all.into_iter().map(|(k, _)| k).collect()
}

fn merge_counts<K: Hash + Eq>(mut a: HashMap<K, u64>, b: HashMap<K, u64>) -> HashMap<K, u64> {
    if a.len() < b.len() {
        return merge_counts(b, a);
    }
    for (k, n) in b {
        *a.entry(k).or_default() += n;
    }
    a
}

/// Token counts of one text column of one batch.
fn count_tokens(
    ca: &StringChunked,
    tokens: &Tokens,
    preprocessor: &str,
) -> PolarsResult<HashMap<String, u64>> {
    if ca.null_count() > 0 {
        return Err(nulls_error(preprocessor, ca.name()));
    }
    let starts: Vec<usize> = (0..ca.len()).step_by(CHUNK_ROWS).collect();
    Ok(starts
        .into_par_iter()
        .map(|start| {
            let part = ca.slice(start as i64, CHUNK_ROWS);
            let mut counts: HashMap<String, u64> = HashMap::new();
            for text in part.iter().flatten() {
                tokens.for_each(text, &mut |t| match counts.get_mut(t) {
                    Some(n) => *n += 1,
                    None => {
                        counts.insert(t.to_owned(), 1);
                    }
                });
            }
            counts
        })
        .reduce(HashMap::new, merge_counts))
}

fn require_strings(schema: &Schema, columns: &[String], preprocessor: &str) -> Result<()> {
    for c in columns {
        let dtype = schema.get(c).expect("checked");
        if !dtype.is_string() {
            return Err(DataError::InvalidPreprocessor {
                preprocessor: preprocessor.to_owned(),
                reason: format!("column {c:?} has type {dtype}, expected a string column"),
            });
        }
    }
    Ok(())
}

/// The transform of a text vectorizer: block `b` (input column, feature names) counts each
/// row's tokens into a row of `names.len()` features with `add(b, token, row)`.
fn text_vectorizer(
    lf: LazyFrame,
    blocks: Vec<(String, Vec<String>)>,
    output: VectorOutput,
    tokens: Tokens,
    preprocessor: &'static str,
    add: impl Fn(usize, &str, &mut [i64]) + Send + Sync + 'static,
) -> Result<LazyFrame> {
    let mut fields = Vec::new();
    for (c, names) in &blocks {
        let layout = match output {
            VectorOutput::Columns => Layout::Columns(names),
            VectorOutput::Array => Layout::Array(c),
        };
        fields.extend(block_fields(&DataType::Int64, names.len(), layout));
    }
    let inputs: Vec<String> = blocks.iter().map(|(c, _)| c.clone()).collect();
    let kernel = move |df: &DataFrame| -> PolarsResult<Vec<Column>> {
        let mut out = Vec::new();
        for (b, (c, names)) in blocks.iter().enumerate() {
            let ca = text_column(df.column(c)?, preprocessor)?;
            if ca.null_count() > 0 {
                return Err(nulls_error(preprocessor, c));
            }
            let width = names.len();
            let data = fill_rows::<i64>(df.height(), width, |first, block| {
                let part = ca.slice(first as i64, block.len() / width);
                for (row, text) in block.chunks_exact_mut(width).zip(part.iter().flatten()) {
                    tokens.for_each(text, &mut |t| add(b, t, row));
                }
                Ok(())
            })?;
            let layout = match output {
                VectorOutput::Columns => Layout::Columns(names),
                VectorOutput::Array => Layout::Array(c),
            };
            out.extend(block_columns::<Int64Type>(data, df.height(), width, layout));
        }
        Ok(out)
    };
    replace_columns(lf, inputs, fields, preprocessor, Arc::new(kernel))
}

/// Counts each column's tokens over a vocabulary fitted on the data: the `max_features` most
/// frequent tokens (all by default), sorted, as `Int64` counts (scikit-learn's
/// `CountVectorizer`). Tokens not in the vocabulary are ignored.
///
/// ```
/// use air_data::{CountVectorizer, Dataset, Preprocessor, polars::prelude::*};
///
/// let ds = Dataset::from_polars(df!("text" => ["a b a", "b c"])?);
/// let mut cv = CountVectorizer::new(["text"]);
/// let out = cv.fit_transform(&ds)?.to_polars()?;
/// assert_eq!(out.get_column_names(), ["text_a", "text_b", "text_c"]);
/// let a: Vec<i64> = out.column("text_a")?.i64()?.into_no_null_iter().collect();
/// assert_eq!(a, [2, 0]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CountVectorizer {
    columns: Vec<String>,
    tokenization: Tokenization,
    lowercase: bool,
    max_features: Option<usize>,
    output: VectorOutput,
    stats: Option<BTreeMap<String, Vec<String>>>,
}

impl CountVectorizer {
    /// Vectorizes `columns` with Ray's default tokenization (split on single spaces), case
    /// kept, every token kept, one column per token.
    pub fn new<S: AsRef<str>>(columns: impl IntoIterator<Item = S>) -> Self {
        Self {
            columns: names(columns),
            tokenization: Tokenization::ray(),
            lowercase: false,
            max_features: None,
            output: VectorOutput::Columns,
            stats: None,
        }
    }

    /// How to split.
    pub fn with_tokenization(mut self, tokenization: Tokenization) -> Self {
        self.tokenization = tokenization;
        self
    }

    /// Lowercases before splitting (scikit-learn's default; Ray's is not to).
    pub fn with_lowercase(mut self, lowercase: bool) -> Self {
        self.lowercase = lowercase;
        self
    }

    /// Keeps only the `max` most frequent tokens of each column (ties to the smaller token;
    /// scikit-learn breaks such ties arbitrarily).
    pub fn with_max_features(mut self, max: usize) -> Self {
        self.max_features = Some(max);
        self
    }

    /// Columns or one array column per input.
    pub fn with_output(mut self, output: VectorOutput) -> Self {
        self.output = output;
        self
    }

    /// The sorted vocabulary of `column`, once fitted.
    pub fn vocabulary(&self, column: &str) -> Option<&[String]> {
        Some(self.stats.as_ref()?.get(column)?)
    }
}

impl CountVectorizer {
    fn learn(&self, ds: &Dataset) -> Result<BTreeMap<String, Vec<String>>> {
        const NAME: &str = <CountVectorizer as NamedPreprocessor>::NAME;
        if let Some(max) = self.max_features {
            check_positive(max, "max_features", NAME)?;
        }
        let schema = check_columns(ds, &self.columns, NAME)?;
        require_strings(&schema, &self.columns, NAME)?;
        let tokens = self.tokenization.compile(self.lowercase, NAME)?;
        let mut counts: Vec<HashMap<String, u64>> = vec![HashMap::new(); self.columns.len()];
        for batch in ds
            .select_columns(&self.columns)
            .iter_batches(FIT_BATCH_ROWS)?
        {
            let batch = batch?;
            for (c, acc) in self.columns.iter().zip(counts.iter_mut()) {
                let column = batch.column(c).expect("selected");
                let ca = text_column(column, NAME).map_err(to_data_error(NAME))?;
                let batch_counts = count_tokens(ca, &tokens, NAME).map_err(to_data_error(NAME))?;
                *acc = merge_counts(std::mem::take(acc), batch_counts);
            }
        }
        let mut stats = BTreeMap::new();
        for (c, counts) in self.columns.iter().zip(counts) {
            if counts.is_empty() {
                return Err(DataError::InvalidPreprocessor {
                    preprocessor: NAME.to_owned(),
                    reason: format!(
                        "column {c:?} has no tokens to build a vocabulary from; expected at \
                         least one non-empty text"
                    ),
                });
            }
            stats.insert(c.clone(), top_sorted(counts, self.max_features));
        }
        Ok(stats)
    }

    fn apply(&self, lf: LazyFrame, stats: &BTreeMap<String, Vec<String>>) -> Result<LazyFrame> {
        const NAME: &str = <CountVectorizer as NamedPreprocessor>::NAME;
        let tokens = self.tokenization.compile(self.lowercase, NAME)?;
        let blocks: Vec<(String, Vec<String>)> = self
            .columns
            .iter()
            .map(|c| {
                (
                    c.clone(),
                    stats[c].iter().map(|t| format!("{c}_{t}")).collect(),
                )
            })
            .collect();
        let indexes: Vec<HashMap<String, usize>> = self
            .columns
            .iter()
            .map(|c| {
                stats[c]
                    .iter()
                    .enumerate()
                    .map(|(i, t)| (t.clone(), i))
                    .collect()
            })
            .collect();
        let add = move |block: usize, token: &str, row: &mut [i64]| {
            if let Some(&j) = indexes[block].get(token) {
                row[j] += 1;
            }
        };
        text_vectorizer(lf, blocks, self.output, tokens, NAME, add)
    }
}

impl_preprocessor!(CountVectorizer, "CountVectorizer", stats);

/// Counts each column's tokens into `num_features` buckets chosen by hashing the token, with no
/// fitting and no vocabulary (scikit-learn's `HashingVectorizer` with `norm=None`; buckets equal
/// scikit-learn's, whose MurmurHash3 this uses). Counts are `Int64`; with
/// [`with_alternate_sign`](Self::with_alternate_sign) a token whose hash is negative subtracts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HashingVectorizer {
    columns: Vec<String>,
    num_features: usize,
    tokenization: Tokenization,
    lowercase: bool,
    alternate_sign: bool,
    output: VectorOutput,
}

impl HashingVectorizer {
    /// Hashes the tokens of `columns` into `num_features` buckets (Ray's defaults: split on
    /// single spaces, case kept, no alternate sign, columns `hash_{column}_{i}`).
    pub fn new<S: AsRef<str>>(
        columns: impl IntoIterator<Item = S>,
        num_features: usize,
    ) -> Result<Self> {
        check_positive(num_features, "num_features", "HashingVectorizer")?;
        Ok(Self {
            columns: names(columns),
            num_features,
            tokenization: Tokenization::ray(),
            lowercase: false,
            alternate_sign: false,
            output: VectorOutput::Columns,
        })
    }

    /// How to split.
    pub fn with_tokenization(mut self, tokenization: Tokenization) -> Self {
        self.tokenization = tokenization;
        self
    }

    /// Lowercases before splitting.
    pub fn with_lowercase(mut self, lowercase: bool) -> Self {
        self.lowercase = lowercase;
        self
    }

    /// Subtracts tokens whose hash is negative, so collisions cancel on average (scikit-learn's
    /// default; Ray's is not to).
    pub fn with_alternate_sign(mut self, alternate_sign: bool) -> Self {
        self.alternate_sign = alternate_sign;
        self
    }

    /// Columns or one array column per input.
    pub fn with_output(mut self, output: VectorOutput) -> Self {
        self.output = output;
        self
    }
}

impl HashingVectorizer {
    fn apply(&self, lf: LazyFrame) -> Result<LazyFrame> {
        const NAME: &str = <HashingVectorizer as NamedPreprocessor>::NAME;
        check_positive(self.num_features, "num_features", NAME)?;
        let tokens = self.tokenization.compile(self.lowercase, NAME)?;
        let blocks: Vec<(String, Vec<String>)> = self
            .columns
            .iter()
            .map(|c| {
                (
                    c.clone(),
                    (0..self.num_features)
                        .map(|i| format!("hash_{c}_{i}"))
                        .collect(),
                )
            })
            .collect();
        let alternate_sign = self.alternate_sign;
        let add = move |_: usize, token: &str, row: &mut [i64]| {
            let (j, sign) = bucket(token, row.len());
            row[j] += if alternate_sign { i64::from(sign) } else { 1 };
        };
        text_vectorizer(lf, blocks, self.output, tokens, NAME, add)
    }
}

impl_preprocessor!(HashingVectorizer, "HashingVectorizer");

/// Hashes a group of columns into `num_features` `Float64` features, with no fitting
/// (scikit-learn's `FeatureHasher` on dict rows `{column: value}`): a numeric or boolean column
/// adds its value to the bucket of its name; a string column adds 1 to the bucket of
/// `"{column}={value}"`. Nulls are an error (impute first).
///
/// ```
/// use air_data::{FeatureHasher, Preprocessor, polars::prelude::*};
///
/// let fh = FeatureHasher::new(["clicks", "views"], 4)?;
/// let out = fh.transform_batch(df!("clicks" => [1.0, 2.0], "views" => [3, 4])?)?;
/// assert_eq!(out.width(), 4); // hash_0 .. hash_3
/// let total: f64 = (0..4)
///     .map(|i| out.column(&format!("hash_{i}")).unwrap().f64().unwrap().get(0).unwrap())
///     .sum();
/// assert_eq!(total, 4.0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureHasher {
    columns: Vec<String>,
    num_features: usize,
    alternate_sign: bool,
    output: VectorOutput,
    output_column: String,
}

impl FeatureHasher {
    /// Hashes `columns` into `num_features` columns `hash_{i}` (Ray's layout; no alternate
    /// sign).
    pub fn new<S: AsRef<str>>(
        columns: impl IntoIterator<Item = S>,
        num_features: usize,
    ) -> Result<Self> {
        check_positive(num_features, "num_features", "FeatureHasher")?;
        Ok(Self {
            columns: names(columns),
            num_features,
            alternate_sign: false,
            output: VectorOutput::Columns,
            output_column: "hash".to_owned(),
        })
    }

    /// Subtracts features whose hash is negative (scikit-learn's default; Ray's is not to).
    pub fn with_alternate_sign(mut self, alternate_sign: bool) -> Self {
        self.alternate_sign = alternate_sign;
        self
    }

    /// Columns `hash_{i}`, or one array column (named by
    /// [`with_output_column`](Self::with_output_column), `"hash"` unless set).
    pub fn with_output(mut self, output: VectorOutput) -> Self {
        self.output = output;
        self
    }

    /// Outputs one array column named `name`.
    pub fn with_output_column(mut self, name: &str) -> Self {
        self.output = VectorOutput::Array;
        name.clone_into(&mut self.output_column);
        self
    }
}

/// One input of a [`FeatureHasher`]: a fixed bucket for a number, a hashed one per string.
enum HashedInput {
    Number { bucket: usize, sign: f64 },
    Text,
}

impl FeatureHasher {
    fn apply(&self, mut lf: LazyFrame) -> Result<LazyFrame> {
        const NAME: &str = <FeatureHasher as NamedPreprocessor>::NAME;
        check_positive(self.num_features, "num_features", NAME)?;
        let schema = lf.collect_schema().map_err(|e| DataError::Polars {
            context: format!("{NAME}: resolving the input's columns"),
            source: e,
        })?;
        super::check_schema(&schema, &self.columns, NAME)?;
        let width = self.num_features;
        let sign = |s: i8| {
            if self.alternate_sign {
                f64::from(s)
            } else {
                1.0
            }
        };
        let mut inputs = Vec::new();
        for c in &self.columns {
            let dtype = schema.get(c).expect("checked");
            let input = if dtype.is_string() {
                HashedInput::Text
            } else if dtype.is_primitive_numeric() || dtype.is_bool() {
                let (bucket, s) = bucket(c, width);
                HashedInput::Number {
                    bucket,
                    sign: sign(s),
                }
            } else {
                return Err(DataError::InvalidPreprocessor {
                    preprocessor: NAME.to_owned(),
                    reason: format!(
                        "column {c:?} has type {dtype}, expected a number, boolean or string \
                         column"
                    ),
                });
            };
            inputs.push((c.clone(), input));
        }
        let names: Vec<String> = (0..width).map(|i| format!("hash_{i}")).collect();
        let layout = || match self.output {
            VectorOutput::Columns => Layout::Columns(&names),
            VectorOutput::Array => Layout::Array(&self.output_column),
        };
        let fields = block_fields(&DataType::Float64, width, layout());
        let (output, output_column, alternate_sign) =
            (self.output, self.output_column.clone(), self.alternate_sign);
        let kernel = move |df: &DataFrame| -> PolarsResult<Vec<Column>> {
            enum Values {
                Number(Float64Chunked, usize, f64),
                Text(StringChunked, String),
            }
            let mut values = Vec::new();
            for (c, input) in &inputs {
                let column = df.column(c)?;
                if column.null_count() > 0 {
                    return Err(nulls_error(NAME, c));
                }
                values.push(match input {
                    HashedInput::Number { bucket, sign } => Values::Number(
                        column.cast(&DataType::Float64)?.f64()?.clone(),
                        *bucket,
                        *sign,
                    ),
                    HashedInput::Text => Values::Text(column.str()?.clone(), format!("{c}=")),
                });
            }
            let data = fill_rows::<f64>(df.height(), width, |first, block| {
                let rows = block.len() / width;
                let mut key = String::new();
                for v in &values {
                    match v {
                        Values::Number(ca, bucket, sign) => {
                            let part = ca.slice(first as i64, rows);
                            for (row, x) in block.chunks_exact_mut(width).zip(part.iter().flatten())
                            {
                                row[*bucket] += sign * x;
                            }
                        }
                        Values::Text(ca, prefix) => {
                            let part = ca.slice(first as i64, rows);
                            for (row, s) in block.chunks_exact_mut(width).zip(part.iter().flatten())
                            {
                                key.clear();
                                key.push_str(prefix);
                                key.push_str(s);
                                let (j, s) = bucket(&key, width);
                                row[j] += if alternate_sign { f64::from(s) } else { 1.0 };
                            }
                        }
                    }
                }
                Ok(())
            })?;
            let layout = match output {
                VectorOutput::Columns => Layout::Columns(&names),
                VectorOutput::Array => Layout::Array(&output_column),
            };
            Ok(block_columns::<Float64Type>(
                data,
                df.height(),
                width,
                layout,
            ))
        };
        replace_columns(lf, self.columns.clone(), fields, NAME, Arc::new(kernel))
    }
}

impl_preprocessor!(FeatureHasher, "FeatureHasher");

/// The elements of a list column as one flat column with per-row offsets into it.
struct Flattened {
    offsets: Vec<usize>,
    values: Series,
}

fn flatten_list(column: &Column, preprocessor: &str) -> PolarsResult<Flattened> {
    let ca = column.list().map_err(|_| {
        PolarsError::ComputeError(
            format!(
                "{preprocessor}: column {:?} has type {}, expected a list column (for example \
                 list[str])",
                column.name(),
                column.dtype()
            )
            .into(),
        )
    })?;
    if ca.null_count() > 0 {
        return Err(nulls_error(preprocessor, column.name()));
    }
    let ca = ca.rechunk();
    let offsets: Vec<usize> = match ca.downcast_iter().next() {
        Some(arr) => arr.offsets().iter().map(|&o| o as usize).collect(),
        None => vec![0],
    };
    let values = ca.get_inner();
    let used = &values.slice(offsets[0] as i64, offsets[offsets.len() - 1] - offsets[0]);
    if used.null_count() > 0 {
        return Err(nulls_error(preprocessor, column.name()));
    }
    Ok(Flattened { offsets, values })
}

/// The keys categories are matched by: strings, or integers of any width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Text,
    Integer,
}

fn key_kind(dtype: &DataType, column: &str, preprocessor: &str) -> Result<KeyKind> {
    match dtype {
        DataType::List(inner) if inner.is_string() => Ok(KeyKind::Text),
        DataType::List(inner) if inner.is_integer() => Ok(KeyKind::Integer),
        other => Err(DataError::InvalidPreprocessor {
            preprocessor: preprocessor.to_owned(),
            reason: format!(
                "column {column:?} has type {other}, expected a list of strings or integers"
            ),
        }),
    }
}

/// Counts per category (`{column}_{category}` columns, or one array column) of list-valued
/// columns: each row's list becomes the number of times each category occurs in it (Ray's
/// `MultiHotEncoder`; scikit-learn's `MultiLabelBinarizer` for lists without repeats).
/// Categories are the sorted distinct elements seen by `fit`, optionally only the
/// `max_categories` most frequent; unseen elements are ignored. Null lists or elements are an
/// error (impute first).
///
/// ```
/// use air_data::{Dataset, MultiHotEncoder, Preprocessor, polars::prelude::*};
///
/// let tags = Series::new("tags".into(), [
///     Series::new("".into(), ["rock", "pop"]),
///     Series::new("".into(), ["jazz", "rock", "rock"]),
/// ]);
/// let ds = Dataset::from_polars(DataFrame::new_infer_height(vec![tags.into()])?);
/// let mut enc = MultiHotEncoder::new(["tags"]);
/// let out = enc.fit_transform(&ds)?.to_polars()?;
/// let row = out.column("tags")?.array()?.get_as_series(1).unwrap();
/// let row: Vec<i64> = row.i64()?.into_no_null_iter().collect();
/// assert_eq!(row, [1, 0, 2]); // jazz, pop, rock
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MultiHotEncoder {
    columns: Vec<String>,
    max_categories: BTreeMap<String, usize>,
    output: VectorOutput,
    stats: Option<BTreeMap<String, Vec<serde_json::Value>>>,
}

impl MultiHotEncoder {
    /// Encodes the list columns `columns`, each into one `Int64` array column in its place
    /// (Ray's layout).
    pub fn new<S: AsRef<str>>(columns: impl IntoIterator<Item = S>) -> Self {
        Self {
            columns: names(columns),
            max_categories: BTreeMap::new(),
            output: VectorOutput::Array,
            stats: None,
        }
    }

    /// Keeps only the `max` most frequent categories of `column` (ties to the smaller value).
    pub fn with_max_categories(mut self, column: &str, max: usize) -> Self {
        self.max_categories.insert(column.to_owned(), max);
        self
    }

    /// Array columns or one `{column}_{category}` column per category.
    pub fn with_output(mut self, output: VectorOutput) -> Self {
        self.output = output;
        self
    }

    /// The sorted categories of `column`, once fitted.
    pub fn categories(&self, column: &str) -> Option<&[serde_json::Value]> {
        Some(self.stats.as_ref()?.get(column)?)
    }
}

/// Occurrences of each element of one list column of one batch.
fn count_elements(column: &Column, kind: KeyKind, preprocessor: &str) -> PolarsResult<Counts> {
    let flat = flatten_list(column, preprocessor)?;
    let (start, end) = (flat.offsets[0], flat.offsets[flat.offsets.len() - 1]);
    let used = flat.values.slice(start as i64, end - start);
    Ok(match kind {
        KeyKind::Text => {
            let mut counts: HashMap<String, u64> = HashMap::new();
            for v in used.str()?.iter().flatten() {
                match counts.get_mut(v) {
                    Some(n) => *n += 1,
                    None => {
                        counts.insert(v.to_owned(), 1);
                    }
                }
            }
            Counts::Text(counts)
        }
        KeyKind::Integer => {
            let mut counts: HashMap<i64, u64> = HashMap::new();
            for v in used.cast(&DataType::Int64)?.i64()?.into_no_null_iter() {
                *counts.entry(v).or_default() += 1;
            }
            Counts::Integer(counts)
        }
    })
}

enum Counts {
    Text(HashMap<String, u64>),
    Integer(HashMap<i64, u64>),
}

/// Category → position lookup of one encoded column.
enum CategoryIndex {
    Text(HashMap<String, usize>),
    Integer(HashMap<i64, usize>),
}

impl MultiHotEncoder {
    fn learn(&self, ds: &Dataset) -> Result<BTreeMap<String, Vec<serde_json::Value>>> {
        const NAME: &str = <MultiHotEncoder as NamedPreprocessor>::NAME;
        let schema = check_columns(ds, &self.columns, NAME)?;
        for (c, &max) in &self.max_categories {
            if !self.columns.contains(c) {
                return Err(column_not_found(
                    c,
                    "MultiHotEncoder max_categories",
                    &schema,
                ));
            }
            check_positive(max, "max_categories", NAME)?;
        }
        let kinds: Vec<KeyKind> = self
            .columns
            .iter()
            .map(|c| key_kind(schema.get(c).expect("checked"), c, NAME))
            .collect::<Result<_>>()?;
        let mut totals: Vec<Counts> = kinds
            .iter()
            .map(|k| match k {
                KeyKind::Text => Counts::Text(HashMap::new()),
                KeyKind::Integer => Counts::Integer(HashMap::new()),
            })
            .collect();
        for batch in ds
            .select_columns(&self.columns)
            .iter_batches(FIT_BATCH_ROWS)?
        {
            let batch = batch?;
            for ((c, kind), total) in self.columns.iter().zip(&kinds).zip(totals.iter_mut()) {
                let counts = count_elements(batch.column(c).expect("selected"), *kind, NAME)
                    .map_err(to_data_error(NAME))?;
                *total = match (
                    std::mem::replace(total, Counts::Integer(HashMap::new())),
                    counts,
                ) {
                    (Counts::Text(a), Counts::Text(b)) => Counts::Text(merge_counts(a, b)),
                    (Counts::Integer(a), Counts::Integer(b)) => Counts::Integer(merge_counts(a, b)),
                    _ => unreachable!("one key kind per column"),
                };
            }
        }
        let mut stats = BTreeMap::new();
        for (c, total) in self.columns.iter().zip(totals) {
            let empty = match &total {
                Counts::Text(m) => m.is_empty(),
                Counts::Integer(m) => m.is_empty(),
            };
            if empty {
                return Err(DataError::InvalidPreprocessor {
                    preprocessor: NAME.to_owned(),
                    reason: format!(
                        "column {c:?} has no elements to take categories from; expected at \
                         least one non-empty list"
                    ),
                });
            }
            let max = self.max_categories.get(c).copied();
            let values: Vec<serde_json::Value> = match total {
                Counts::Text(m) => top_sorted(m, max).into_iter().map(Into::into).collect(),
                Counts::Integer(m) => top_sorted(m, max).into_iter().map(Into::into).collect(),
            };
            stats.insert(c.clone(), values);
        }
        Ok(stats)
    }

    fn apply(
        &self,
        lf: LazyFrame,
        stats: &BTreeMap<String, Vec<serde_json::Value>>,
    ) -> Result<LazyFrame> {
        const NAME: &str = <MultiHotEncoder as NamedPreprocessor>::NAME;
        let mut fields = Vec::new();
        let mut blocks = Vec::new();
        for c in &self.columns {
            let cats = &stats[c];
            let names: Vec<String> = cats
                .iter()
                .map(|v| match v {
                    serde_json::Value::String(s) => format!("{c}_{s}"),
                    other => format!("{c}_{other}"),
                })
                .collect();
            let layout = match self.output {
                VectorOutput::Columns => Layout::Columns(&names),
                VectorOutput::Array => Layout::Array(c),
            };
            fields.extend(block_fields(&DataType::Int64, cats.len(), layout));
            let index = if cats.iter().all(|v| v.is_i64()) && !cats.is_empty() {
                CategoryIndex::Integer(
                    cats.iter()
                        .enumerate()
                        .map(|(i, v)| (v.as_i64().expect("checked"), i))
                        .collect(),
                )
            } else {
                CategoryIndex::Text(
                    cats.iter()
                        .enumerate()
                        .filter_map(|(i, v)| Some((v.as_str()?.to_owned(), i)))
                        .collect(),
                )
            };
            blocks.push((c.clone(), index, names, cats.len()));
        }
        let output = self.output;
        let kernel = move |df: &DataFrame| -> PolarsResult<Vec<Column>> {
            let mut out = Vec::new();
            for (c, index, names, width) in &blocks {
                let width = *width;
                let flat = flatten_list(df.column(c)?, NAME)?;
                let offsets = &flat.offsets;
                let data = match index {
                    CategoryIndex::Text(index) => {
                        let values = flat.values.str().map_err(|_| {
                            PolarsError::ComputeError(
                                format!(
                                    "{NAME}: column {c:?} was fitted on lists of strings but \
                                     holds {}",
                                    flat.values.dtype()
                                )
                                .into(),
                            )
                        })?;
                        let values = values.rechunk();
                        let arr = values.downcast_iter().next().cloned();
                        fill_rows::<i64>(df.height(), width, |first, block| {
                            let Some(arr) = &arr else { return Ok(()) };
                            for (r, row) in block.chunks_exact_mut(width).enumerate() {
                                let i = first + r;
                                for k in offsets[i]..offsets[i + 1] {
                                    if let Some(&j) = index.get(arr.value(k)) {
                                        row[j] += 1;
                                    }
                                }
                            }
                            Ok(())
                        })?
                    }
                    CategoryIndex::Integer(index) => {
                        let values = flat.values.cast(&DataType::Int64).map_err(|_| {
                            PolarsError::ComputeError(
                                format!(
                                    "{NAME}: column {c:?} was fitted on lists of integers but \
                                     holds {}",
                                    flat.values.dtype()
                                )
                                .into(),
                            )
                        })?;
                        let values = values.i64()?.rechunk();
                        let values: &[i64] = values
                            .downcast_iter()
                            .next()
                            .map_or(&[], |a| a.values().as_slice());
                        fill_rows::<i64>(df.height(), width, |first, block| {
                            for (r, row) in block.chunks_exact_mut(width).enumerate() {
                                let i = first + r;
                                for v in &values[offsets[i]..offsets[i + 1]] {
                                    if let Some(&j) = index.get(v) {
                                        row[j] += 1;
                                    }
                                }
                            }
                            Ok(())
                        })?
                    }
                };
                let layout = match output {
                    VectorOutput::Columns => Layout::Columns(names),
                    VectorOutput::Array => Layout::Array(c),
                };
                out.extend(block_columns::<Int64Type>(data, df.height(), width, layout));
            }
            Ok(out)
        };
        replace_columns(lf, self.columns.clone(), fields, NAME, Arc::new(kernel))
    }
}

impl_preprocessor!(MultiHotEncoder, "MultiHotEncoder", stats);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_sorted_keeps_most_frequent_ties_to_smaller() {
        let counts: HashMap<&str, u64> = [("b", 2), ("a", 2), ("c", 5), ("d", 1)].into();
        assert_eq!(top_sorted(counts.clone(), None), ["a", "b", "c", "d"]);
        assert_eq!(top_sorted(counts.clone(), Some(2)), ["a", "c"]);
        assert_eq!(top_sorted(counts, Some(10)).len(), 4);
    }

    #[test]
    fn fill_rows_covers_every_row_once() {
        let rows = CHUNK_ROWS * 2 + 7;
        let data = fill_rows::<i64>(rows, 3, |first, block| {
            for (r, row) in block.chunks_exact_mut(3).enumerate() {
                row[1] = (first + r) as i64;
            }
            Ok(())
        })
        .unwrap();
        assert!((0..rows).all(|i| data[i * 3 + 1] == i as i64 && data[i * 3] == 0));
    }
}
