//! Numeric columns to a contiguous row-major `f32` matrix: the input of tensors and tree learners.

use polars::prelude::*;
use rayon::prelude::*;

use crate::{
    Dataset,
    dataset::column_not_found,
    error::{DataError, Result},
};

/// A dense row-major `f32` matrix: row `r`, column `c` is `data[r * cols + c]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    /// The values, row after row.
    pub data: Vec<f32>,
    /// The number of rows.
    pub rows: usize,
    /// The number of columns.
    pub cols: usize,
}

impl Matrix {
    /// Row `r` as a slice.
    pub fn row(&self, r: usize) -> &[f32] {
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
        return Err(DataError::NonNumericColumn {
            column: name.to_owned(),
            dtype: dtype.to_string(),
        });
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

/// `columns` of `df` as one row-major buffer of `T` (nulls become `missing`), filled in
/// parallel blocks of rows so each thread writes a contiguous part of the output.
pub(crate) fn row_major<T>(
    df: &DataFrame,
    columns: &[String],
    target: &DataType,
    missing: T::Native,
) -> Result<Vec<T::Native>>
where
    T: PolarsNumericType,
{
    let cols: Vec<ChunkedArray<T>> = columns
        .iter()
        .map(|c| numeric::<T>(df, c, target))
        .collect::<Result<_>>()?;
    let rows = df.height();
    let ncols = cols.len();
    // Contiguous slices per column (nulls replaced first where present).
    let owned: Vec<Vec<T::Native>> = cols
        .iter()
        .map(|ca| {
            if ca.null_count() == 0 {
                Vec::new()
            } else {
                ca.iter().map(|v| v.unwrap_or(missing)).collect()
            }
        })
        .collect();
    let slices: Vec<&[T::Native]> = cols
        .iter()
        .zip(&owned)
        .map(|(ca, o)| {
            if o.is_empty() && rows > 0 {
                ca.cont_slice().expect("rechunked without nulls")
            } else {
                o.as_slice()
            }
        })
        .collect();
    let mut data = vec![T::Native::default(); rows * ncols];
    if ncols > 0 {
        const BLOCK: usize = 4096;
        data.par_chunks_mut(BLOCK * ncols)
            .enumerate()
            .for_each(|(b, out)| {
                let start = b * BLOCK;
                let n = out.len() / ncols;
                for (c, src) in slices.iter().enumerate() {
                    let src = &src[start..start + n];
                    for (r, v) in src.iter().enumerate() {
                        out[r * ncols + c] = *v;
                    }
                }
            });
    }
    Ok(data)
}

/// Copies `columns` of `df` into a row-major `f32` matrix; nulls become NaN (the missing value of
/// tree learners). Integer, float and boolean columns are accepted; anything else is a
/// [`DataError::NonNumericColumn`].
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
    let names: Vec<String> = columns.iter().map(|c| c.as_ref().to_owned()).collect();
    let data = row_major::<Float32Type>(df, &names, &DataType::Float32, f32::NAN)?;
    Ok(Matrix {
        data,
        rows: df.height(),
        cols: names.len(),
    })
}

/// Copies one numeric column into a `f32` vector (nulls become NaN): labels for a learner.
pub fn to_f32_vector(df: &DataFrame, column: &str) -> Result<Vec<f32>> {
    let ca = numeric_f32(df, column)?;
    Ok(ca.iter().map(|v| v.unwrap_or(f32::NAN)).collect())
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
