//! Reading vectors from data frames: list columns as fixed-size arrays.

use air_data::polars::prelude::{Column, DataType};

use crate::{Result, RlError};

/// A list column as a fixed-size array column of `width` (taken from the first row when not
/// known).
pub(crate) fn list_as_array(column: &Column, width: Option<usize>) -> Result<Column> {
    let DataType::List(_) = column.dtype() else {
        return Ok(column.clone());
    };
    let width = match width {
        Some(w) => w,
        None => column
            .list()
            .ok()
            .and_then(|l| l.get_as_series(0))
            .map_or(0, |s| s.len()),
    };
    column
        .cast(&DataType::Array(Box::new(DataType::Float32), width))
        .map_err(|e| RlError::InvalidData {
            what: "observations or actions",
            found: format!(
                "column {:?} has lists of another length than {width} ({e})",
                column.name()
            ),
            expected: format!("every row a list of {width} numbers"),
        })
}
