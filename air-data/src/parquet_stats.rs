//! Column minima and maxima from parquet footers: what a min/max fit learns, without reading a
//! data page, when a dataset is exactly local parquet files.
//!
//! Only where the footers answer exactly what the aggregation over the data would: signed
//! integer and float columns (polars' `Int8`..`Int64`, `Float32`, `Float64`), every column chunk
//! with statistics, no NaN bound (writers leave NaN out of min/max, as polars' `min`/`max`
//! ignore it; a NaN bound is an old writer's), at least one non-null value. Anything else —
//! another source, a transformed dataset, a file that cannot be read — is `None`, and the
//! caller aggregates over the data (which reports a broken file by name).

use std::path::Path;

use polars::prelude::*;
use polars_parquet::parquet::{
    metadata::FileMetadata, read::read_metadata, statistics::Statistics,
};

use crate::{
    Dataset,
    dataset::Node,
    source::{FileFormat, Files},
};

/// Each of `columns`' minimum and maximum over the whole dataset, from the files' footers.
pub(crate) fn min_max(ds: &Dataset, columns: &[String]) -> Option<Vec<(f64, f64)>> {
    let Node::Files(source) = &*ds.node else {
        return None;
    };
    let (FileFormat::Parquet, Files::Local(paths)) = (&source.format, &source.files) else {
        return None;
    };
    let schema = ds.schema().ok()?;
    for c in columns {
        let exact = matches!(
            schema.get(c)?,
            DataType::Int8
                | DataType::Int16
                | DataType::Int32
                | DataType::Int64
                | DataType::Float32
                | DataType::Float64
        );
        if !exact {
            return None;
        }
    }
    let mut bounds: Vec<Option<(f64, f64)>> = vec![None; columns.len()];
    for path in paths {
        let metadata = footer(path)?;
        for (c, bound) in columns.iter().zip(&mut bounds) {
            for chunk in column_bounds(&metadata, c)? {
                let Some((lo, hi)) = chunk else { continue };
                *bound = Some(match *bound {
                    Some((a, b)) => (a.min(lo), b.max(hi)),
                    None => (lo, hi),
                });
            }
        }
    }
    bounds.into_iter().collect()
}

fn footer(path: &Path) -> Option<FileMetadata> {
    let mut file = std::fs::File::open(path).ok()?;
    read_metadata(&mut file).ok()
}

/// Column `name`'s bounds in each row group of a file (`None` for a chunk of nulls only);
/// `None` when a chunk's statistics do not say.
fn column_bounds(metadata: &FileMetadata, name: &str) -> Option<Vec<Option<(f64, f64)>>> {
    let mut out = Vec::with_capacity(metadata.row_groups.len());
    for group in &metadata.row_groups {
        let mut chunks = group.columns_under_root_iter(name)?;
        let chunk = chunks.next()?;
        if chunks.next().is_some() {
            return None;
        }
        let stats = chunk.statistics(&metadata.footer_buf)?.ok()?;
        let (lo, hi, nulls) = match &stats {
            Statistics::Int32(s) => (
                s.min_value.map(f64::from),
                s.max_value.map(f64::from),
                s.null_count,
            ),
            Statistics::Int64(s) => (
                s.min_value.map(|v| v as f64),
                s.max_value.map(|v| v as f64),
                s.null_count,
            ),
            Statistics::Float(s) => (
                s.min_value.map(f64::from),
                s.max_value.map(f64::from),
                s.null_count,
            ),
            Statistics::Double(s) => (s.min_value, s.max_value, s.null_count),
            _ => return None,
        };
        match (lo, hi) {
            (Some(lo), Some(hi)) if !lo.is_nan() && !hi.is_nan() => out.push(Some((lo, hi))),
            // No bounds: only nulls, if the null count says so.
            (None, None) if nulls == Some(chunk.num_values()) => out.push(None),
            _ => return None,
        }
    }
    Some(out)
}
