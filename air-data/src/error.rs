//! The one error type of this crate.

use std::path::PathBuf;

use polars::prelude::PolarsError;

/// Everything that can go wrong reading, transforming or writing a [`Dataset`](crate::Dataset).
///
/// Each variant names the offending file, column or value and what was expected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// A path or URI names nothing.
    #[error(
        "no such file or directory: {path} (check the path; relative paths resolve against {cwd})"
    )]
    NotFound {
        /// The path as given.
        path: String,
        /// The working directory relative paths were resolved against.
        cwd: String,
    },
    /// A directory or glob matched no file of the expected format.
    #[error("{location} matched no {format} file (expected files ending in {extensions})")]
    NoFiles {
        /// The directory, glob or URI.
        location: String,
        /// The format being read.
        format: &'static str,
        /// The extensions that were looked for.
        extensions: String,
    },
    /// A CSV file has a row that cannot be read.
    #[error("malformed CSV row in {file} at line {line}: {reason}")]
    MalformedCsv {
        /// The file.
        file: String,
        /// The 1-based line number (the header is line 1).
        line: usize,
        /// What is wrong with the row.
        reason: String,
    },
    /// A JSON file cannot be parsed.
    #[error("malformed JSON in {file}: {reason}")]
    MalformedJson {
        /// The file.
        file: String,
        /// What the parser said.
        reason: String,
    },
    /// A parquet file cannot be read.
    #[error("cannot read parquet file {file}: {reason}")]
    MalformedParquet {
        /// The file.
        file: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Files of one dataset disagree on their columns or types.
    #[error(
        "files have different schemas: {file} differs from {first_file}: {difference} \
         (all files of one dataset must have the same columns and types)"
    )]
    SchemaMismatch {
        /// The file whose schema is taken as the reference.
        first_file: String,
        /// The file that differs.
        file: String,
        /// The first difference found.
        difference: String,
    },
    /// Datasets given to `union` disagree on their schemas.
    #[error("cannot union datasets with different schemas: {difference}")]
    UnionSchemaMismatch {
        /// The first difference found.
        difference: String,
    },
    /// A column name that is not in the data.
    #[error("column {column:?} not found in {context}; available columns: [{}]", available.join(", "))]
    ColumnNotFound {
        /// The missing column.
        column: String,
        /// Where it was looked for (the operation).
        context: String,
        /// The columns that exist at that point.
        available: Vec<String>,
    },
    /// A non-numeric column where numbers are required.
    #[error(
        "column {column:?} has type {dtype}{}, expected a numeric (integer, float or boolean) \
         column; send numbers, or encode it first (for example with an OrdinalEncoder or \
         OneHotEncoder)", found.as_ref().map(|(row, value)| format!(" (row {row}: {value})")).unwrap_or_default()
    )]
    NonNumericColumn {
        /// The column.
        column: String,
        /// Its type.
        dtype: String,
        /// The first non-null value of the batch and its 0-based row, when the data is at hand.
        found: Option<(usize, String)>,
    },
    /// An argument out of its valid range.
    #[error("invalid {name} = {value}: {expected}")]
    InvalidArgument {
        /// The argument.
        name: &'static str,
        /// The value given.
        value: String,
        /// What is allowed.
        expected: String,
    },
    /// A user function passed to `map_batches` failed.
    #[error(
        "map_batches function failed on batch {batch} (rows {first_row}..{end_row}): {message}"
    )]
    UserFunction {
        /// The batch index (0-based).
        batch: usize,
        /// The first row of the batch in the function's input.
        first_row: usize,
        /// One past the last row of the batch.
        end_row: usize,
        /// The function's error (or panic message).
        message: String,
    },
    /// A local file could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An object store URI could not be resolved, read or written.
    #[error(transparent)]
    Storage(#[from] air_checkpoint::CheckpointError),
    /// Records given to `from_items` could not be turned into rows.
    #[error("from_items: {reason}")]
    Items {
        /// Why.
        reason: String,
    },
    /// A preprocessor was asked to transform before it was fitted.
    #[error(
        "{preprocessor} is not fitted: call fit (or fit_transform) on the training dataset first"
    )]
    NotFitted {
        /// The preprocessor's type.
        preprocessor: String,
    },
    /// A column holds nulls where a preprocessor cannot take them.
    #[error(
        "{preprocessor}: column {column:?} contains nulls; impute them first (for example with a \
         SimpleImputer in a Chain before it)"
    )]
    NullsNotAllowed {
        /// The preprocessor's type.
        preprocessor: String,
        /// The column.
        column: String,
    },
    /// A preprocessor's configuration is invalid.
    #[error("{preprocessor}: {reason}")]
    InvalidPreprocessor {
        /// The preprocessor's type.
        preprocessor: String,
        /// What is wrong and what is expected.
        reason: String,
    },
    /// A saved preprocessor names a type or function this process has not registered.
    #[error(
        "unknown {kind} {name:?} in a saved preprocessor; known: [{}]. Register it in this \
         process before loading ({hint})",
        known.join(", ")
    )]
    NotRegistered {
        /// "preprocessor" or "batch function".
        kind: &'static str,
        /// The name.
        name: String,
        /// The registered names.
        known: Vec<String>,
        /// How to register.
        hint: &'static str,
    },
    /// A saved preprocessor cannot be read.
    #[error("cannot load the preprocessor saved in the checkpoint: {reason}")]
    PreprocessorFormat {
        /// Why.
        reason: String,
    },
    /// polars reported an error while running the plan.
    #[error("{context}: {source}")]
    Polars {
        /// What was being done.
        context: String,
        /// polars' error.
        #[source]
        source: PolarsError,
    },
}

/// This crate's result type.
pub type Result<T, E = DataError> = std::result::Result<T, E>;

impl DataError {
    /// A [`NonNumericColumn`](Self::NonNumericColumn) naming `column`'s first non-null value and
    /// its row.
    pub(crate) fn non_numeric(column: &polars::prelude::Column) -> Self {
        Self::NonNumericColumn {
            column: column.name().to_string(),
            dtype: column.dtype().to_string(),
            found: first_value(column),
        }
    }

    /// Adds the first offending value from `df` to a [`NonNumericColumn`](Self::NonNumericColumn)
    /// that only knew the schema; other errors pass through.
    pub(crate) fn with_value_from(self, df: &polars::prelude::DataFrame) -> Self {
        match self {
            Self::NonNumericColumn {
                column,
                dtype,
                found: None,
            } => {
                let found = df
                    .column(&column)
                    .ok()
                    .filter(|c| c.dtype().to_string() == dtype)
                    .and_then(first_value);
                Self::NonNumericColumn {
                    column,
                    dtype,
                    found,
                }
            }
            other => other,
        }
    }
}

/// The first non-null value of `column` and its row, short enough for a message.
fn first_value(column: &polars::prelude::Column) -> Option<(usize, String)> {
    let series = column.as_materialized_series();
    let row = (0..series.len()).find(|&i| series.get(i).is_ok_and(|v| !v.is_null()))?;
    let value = series.get(row).ok()?;
    let text = match &value {
        polars::prelude::AnyValue::String(s) => format!("{s:?}"),
        polars::prelude::AnyValue::StringOwned(s) => format!("{:?}", s.as_str()),
        other => other.to_string(),
    };
    const MAX: usize = 60;
    let text = if text.len() > MAX {
        format!(
            "{}... ({} bytes)",
            &text[..text.floor_char_boundary(MAX)],
            text.len()
        )
    } else {
        text
    };
    Some((row, text))
}

pub(crate) fn polars_err(context: impl Into<String>) -> impl FnOnce(PolarsError) -> DataError {
    let context = context.into();
    move |source| DataError::Polars { context, source }
}

pub(crate) fn io_err(
    action: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> DataError {
    let path = path.into();
    move |source| DataError::Io {
        action,
        path,
        source,
    }
}
