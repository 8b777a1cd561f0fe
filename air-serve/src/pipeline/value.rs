//! [`Value`]: the one dynamic type of a pipeline — JSON or a polars `DataFrame` — for steps
//! that take or give either (heterogeneous fan-in, JSON in and frames out).

use air_data::polars::prelude::DataFrame;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::StepError;
use crate::adapter::{frame_from_json, records_json};

/// JSON or a table. Over HTTP (with [`Json`](super::Json)) a request body is `Value::Json`,
/// and a `Value::Frame` answers as a list of records.
///
/// ```
/// use air_serve::pipeline::Value;
/// use serde_json::json;
///
/// let v = Value::from(json!([{"x": 1.0}, {"x": 2.0}]));
/// let frame = v.clone().into_frame()?;
/// assert_eq!(frame.height(), 2);
/// assert_eq!(Value::from(frame).into_json(), v.into_json());
/// # Ok::<(), air_serve::pipeline::StepError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A JSON value.
    Json(serde_json::Value),
    /// A table.
    Frame(DataFrame),
}

impl Value {
    /// The JSON, if it is JSON.
    pub fn as_json(&self) -> Option<&serde_json::Value> {
        match self {
            Self::Json(v) => Some(v),
            Self::Frame(_) => None,
        }
    }

    /// The table, if it is one.
    pub fn as_frame(&self) -> Option<&DataFrame> {
        match self {
            Self::Frame(df) => Some(df),
            Self::Json(_) => None,
        }
    }

    /// As a table: a frame as is; JSON records, columns or an array as
    /// [`JsonAdapter`](crate::JsonAdapter) reads them (a [`StepError::bad_input`] when the JSON
    /// is none of those).
    pub fn into_frame(self) -> Result<DataFrame, StepError> {
        match self {
            Self::Frame(df) => Ok(df),
            Self::Json(v) => frame_from_json(v).map_err(StepError::bad_input),
        }
    }

    /// As JSON: JSON as is; a frame as a list of records.
    pub fn into_json(self) -> serde_json::Value {
        match self {
            Self::Json(v) => v,
            Self::Frame(df) => {
                serde_json::from_slice(&records_json(&df)).expect("records_json writes valid JSON")
            }
        }
    }
}

impl From<serde_json::Value> for Value {
    fn from(v: serde_json::Value) -> Self {
        Self::Json(v)
    }
}

impl From<DataFrame> for Value {
    fn from(df: DataFrame) -> Self {
        Self::Frame(df)
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Json(v) => v.serialize(serializer),
            Self::Frame(_) => self.clone().into_json().serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde_json::Value::deserialize(deserializer).map(Self::Json)
    }
}
