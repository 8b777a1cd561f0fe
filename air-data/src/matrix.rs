//! Numeric columns to a contiguous row-major `f32` (tensors, tree learners) or `f64` (classical
//! estimators) matrix.

use polars::prelude::*;
use rayon::prelude::*;

use crate::{
    Dataset,
    dataset::column_not_found,
    error::{DataError, Result},
};

/// A dense row-major matrix (`f32` unless said otherwise): row `r`, column `c` is
/// `data[r * cols + c]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix<T = f32> {
    /// The values, row after row.
    pub data: Vec<T>,
    /// The number of rows.
    pub rows: usize,
    /// The number of columns.
    pub cols: usize,
}

impl<T> Matrix<T> {
    /// Row `r` as a slice.
    pub fn row(&self, r: usize) -> &[T] {
        &self.data[r * self.cols..(r + 1) * self.cols]
    }
}

fn numeric<T: PolarsNumericType>(
    df: &DataFrame,
    name: &str,
    target: &DataType,
) -> Result<ChunkedArray<T>> {
    let column = df
        .column(name)
        .map_err(|_| column_not_found(name, "the matrix", df.schema()))?;
    let dtype = column.dtype();
    if !(dtype.is_primitive_numeric() || dtype.is_bool()) {
        return Err(DataError::non_numeric(column));
    }
    let cast_err = |e| DataError::Polars {
        context: format!("casting column {name:?} to {target}"),
        source: e,
    };
    let cast = column
        .as_materialized_series()
        .cast(target)
        .map_err(cast_err)?;
    let ca = cast.unpack::<T>().map_err(cast_err)?;
    Ok(ca.rechunk().into_owned())
}

fn numeric_f32(df: &DataFrame, name: &str) -> Result<Float32Chunked> {
    numeric::<Float32Type>(df, name, &DataType::Float32)
}

/// An output element of the row-major fill.
pub(crate) trait Element: Copy + Default + Send + Sync + 'static {
    const MISSING: Self;
    const DTYPE: DataType;
    /// The values of a series already cast to [`Self::DTYPE`], nulls as missing.
    fn values(s: &Series) -> PolarsResult<Vec<Self>>;
    fn from_f64(v: f64) -> Self;
    fn from_f32(v: f32) -> Self;
    fn from_i64(v: i64) -> Self;
}

impl Element for f32 {
    const MISSING: Self = f32::NAN;
    const DTYPE: DataType = DataType::Float32;
    fn values(s: &Series) -> PolarsResult<Vec<Self>> {
        Ok(s.f32()?.iter().map(|v| v.unwrap_or(f32::NAN)).collect())
    }
    #[allow(clippy::cast_possible_truncation)]
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    fn from_f32(v: f32) -> Self {
        v
    }
    #[allow(clippy::cast_precision_loss)]
    fn from_i64(v: i64) -> Self {
        v as f32
    }
}

impl Element for f64 {
    const MISSING: Self = f64::NAN;
    const DTYPE: DataType = DataType::Float64;
    fn values(s: &Series) -> PolarsResult<Vec<Self>> {
        Ok(s.f64()?.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
    }
    fn from_f64(v: f64) -> Self {
        v
    }
    fn from_f32(v: f32) -> Self {
        f64::from(v)
    }
    #[allow(clippy::cast_precision_loss)]
    fn from_i64(v: i64) -> Self {
        v as f64
    }
}

/// A column read in place: float and 64-bit integer columns are not copied or cast first.
enum Source {
    F32(Float32Chunked),
    F64(Float64Chunked),
    I64(Int64Chunked),
}

fn source(df: &DataFrame, name: &str) -> Result<Source> {
    let column = df
        .column(name)
        .map_err(|_| column_not_found(name, "the matrix", df.schema()))?;
    let dtype = column.dtype();
    let cast_err = |e| DataError::Polars {
        context: format!("reading column {name:?} as numbers"),
        source: e,
    };
    Ok(match dtype {
        DataType::Float32 => Source::F32(column.f32().map_err(cast_err)?.clone()),
        DataType::Float64 => Source::F64(column.f64().map_err(cast_err)?.clone()),
        DataType::Int64 => Source::I64(column.i64().map_err(cast_err)?.clone()),
        d if d.is_primitive_numeric() || d.is_bool() => Source::F64(
            column
                .cast(&DataType::Float64)
                .map_err(cast_err)?
                .f64()
                .map_err(cast_err)?
                .clone(),
        ),
        _ => return Err(DataError::non_numeric(column)),
    })
}

/// Writes rows `start..start + out.len() / ncols` of one column into column `c` of `out`.
fn fill_column<S, T>(
    out: &mut [T],
    c: usize,
    ncols: usize,
    ca: &ChunkedArray<S>,
    start: usize,
    convert: impl Fn(S::Native) -> T,
) where
    S: PolarsNumericType,
    T: Element,
{
    let end = start + out.len() / ncols;
    let mut offset = 0;
    for arr in ca.downcast_iter() {
        let len = arr.len();
        let (lo, hi) = (start.max(offset), end.min(offset + len));
        if lo < hi {
            let values = &arr.values()[lo - offset..hi - offset];
            let rows = out[(lo - start) * ncols..].chunks_mut(ncols);
            match arr.validity() {
                None => {
                    for (row, v) in rows.zip(values) {
                        row[c] = convert(*v);
                    }
                }
                Some(valid) => {
                    for (i, (row, v)) in rows.zip(values).enumerate() {
                        row[c] = if valid.get_bit(lo - offset + i) {
                            convert(*v)
                        } else {
                            T::MISSING
                        };
                    }
                }
            }
        }
        offset += len;
        if offset >= end {
            break;
        }
    }
}

/// `columns` of `df` as one row-major buffer (nulls become NaN), filled in parallel blocks of
/// rows, each thread writing a contiguous part of the output straight from the columns' own
/// buffers.
pub(crate) fn row_major<T: Element>(df: &DataFrame, columns: &[String]) -> Result<Vec<T>> {
    let sources: Vec<Source> = columns
        .iter()
        .map(|c| source(df, c))
        .collect::<Result<_>>()?;
    let rows = df.height();
    let ncols = sources.len();
    let mut data = vec![T::default(); rows * ncols];
    if ncols > 0 {
        // 1024 rows x the columns stay in cache while every column writes its slot.
        const BLOCK: usize = 1024;
        data.par_chunks_mut(BLOCK * ncols)
            .enumerate()
            .for_each(|(b, out)| {
                let start = b * BLOCK;
                for (c, src) in sources.iter().enumerate() {
                    match src {
                        Source::F32(ca) => fill_column(out, c, ncols, ca, start, T::from_f32),
                        Source::F64(ca) => fill_column(out, c, ncols, ca, start, T::from_f64),
                        Source::I64(ca) => fill_column(out, c, ncols, ca, start, T::from_i64),
                    }
                }
            });
    }
    Ok(data)
}

/// Copies `columns` of `df` into a row-major `f32` matrix; nulls become NaN (the missing value of
/// tree learners). Integer, float and boolean columns are accepted; anything else is a
/// [`DataError::NonNumericColumn`]. A single fixed-size array column (a [`Concatenator`]'s
/// output) gives one matrix row per array.
///
/// [`Concatenator`]: crate::Concatenator
///
/// ```
/// use air_data::{polars::prelude::*, to_f32_matrix};
///
/// let df = df!("a" => [1.0f64, 2.0], "b" => [Some(3i32), None])?;
/// let m = to_f32_matrix(&df, &["a", "b"])?;
/// assert_eq!(m.row(0), [1.0, 3.0]);
/// assert!(m.row(1)[1].is_nan());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn to_f32_matrix<S: AsRef<str>>(df: &DataFrame, columns: &[S]) -> Result<Matrix> {
    to_matrix(df, columns)
}

/// [`to_f32_matrix`] in `f64`: for estimators that compute in double precision (scikit-learn's
/// dtype), so nothing is rounded on the way in.
///
/// ```
/// use air_data::{polars::prelude::*, to_f64_matrix};
///
/// let df = df!("a" => [0.1f64, 2.0], "b" => [1i64, 2])?;
/// let m = to_f64_matrix(&df, &["a", "b"])?;
/// assert_eq!(m.row(0), [0.1, 1.0]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn to_f64_matrix<S: AsRef<str>>(df: &DataFrame, columns: &[S]) -> Result<Matrix<f64>> {
    to_matrix(df, columns)
}

fn to_matrix<T: Element, S: AsRef<str>>(df: &DataFrame, columns: &[S]) -> Result<Matrix<T>> {
    let names: Vec<String> = columns.iter().map(|c| c.as_ref().to_owned()).collect();
    if let [name] = names.as_slice()
        && let Ok(column) = df.column(name)
        && let DataType::Array(inner, width) = column.dtype()
    {
        return array_matrix(column, inner, *width);
    }
    let data = row_major::<T>(df, &names)?;
    Ok(Matrix {
        data,
        rows: df.height(),
        cols: names.len(),
    })
}

fn array_matrix<T: Element>(column: &Column, inner: &DataType, width: usize) -> Result<Matrix<T>> {
    if !(inner.is_primitive_numeric() || inner.is_bool()) {
        return Err(DataError::non_numeric(column));
    }
    let err = crate::error::polars_err(format!("reading array column {:?}", column.name()));
    let ca = column.array().map_err(err)?;
    let rows = ca.len();
    let values = if ca.null_count() > 0 {
        // A null array row becomes a row of NaN, like a null scalar.
        let filled = ca
            .amortized_iter()
            .map(|a| match a {
                Some(a) => T::values(&a.as_ref().cast(&T::DTYPE)?),
                None => Ok(vec![T::MISSING; width]),
            })
            .collect::<PolarsResult<Vec<Vec<T>>>>()
            .map_err(crate::error::polars_err("reading an array column"))?;
        filled.concat()
    } else {
        // A fixed-size list's values are sliced along with it: exactly rows × width.
        let inner = ca
            .get_inner()
            .cast(&T::DTYPE)
            .map_err(crate::error::polars_err(
                "casting an array column to floats",
            ))?;
        T::values(&inner).map_err(crate::error::polars_err("reading an array column"))?
    };
    Ok(Matrix {
        data: values,
        rows,
        cols: width,
    })
}

/// Copies one numeric column into a `f32` vector (nulls become NaN): labels for a learner.
pub fn to_f32_vector(df: &DataFrame, column: &str) -> Result<Vec<f32>> {
    let ca = numeric_f32(df, column)?;
    Ok(ca.iter().map(|v| v.unwrap_or(f32::NAN)).collect())
}

/// [`to_f32_vector`] in `f64`.
pub fn to_f64_vector(df: &DataFrame, column: &str) -> Result<Vec<f64>> {
    let ca = numeric::<Float64Type>(df, column, &DataType::Float64)?;
    Ok(ca.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
}

impl Dataset {
    /// Reads `columns` into a row-major `f32` matrix (see [`to_f32_matrix`]); only those columns
    /// are read from the source.
    pub fn to_f32_matrix<S: AsRef<str>>(&self, columns: &[S]) -> Result<Matrix> {
        let df = self.select_columns(columns).to_polars()?;
        to_f32_matrix(&df, columns)
    }

    /// Reads `features` into a matrix and `label` into a vector, in one pass over the data.
    pub fn to_f32_features_and_label<S: AsRef<str>>(
        &self,
        features: &[S],
        label: &str,
    ) -> Result<(Matrix, Vec<f32>)> {
        let mut wanted: Vec<String> = features.iter().map(|f| f.as_ref().to_owned()).collect();
        if !wanted.iter().any(|w| w == label) {
            wanted.push(label.to_owned());
        }
        let df = self.select_columns(&wanted).to_polars()?;
        Ok((to_f32_matrix(&df, features)?, to_f32_vector(&df, label)?))
    }
}
