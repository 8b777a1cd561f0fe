//! Request bodies to data frames, and predictions back to JSON records.
//!
//! [`JsonAdapter`] (the default) takes records, columns or an array. Any `Fn(&[u8]) -> Result<DataFrame, RequestError>` is an [`Adapter`] too.

use air_data::polars::prelude::*;
use serde_json::Value;

/// The column a bare array's values go in (Ray's name for a tensor column).
pub const VALUE_COLUMN: &str = "__value__";

/// Why a request body is not a batch the deployment can take.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// Not JSON (HTTP 400).
    #[error("malformed JSON at line {line}, column {column}: {message}{hint}")]
    MalformedJson {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        message: String,
        /// A hint for common mistakes (NaN, Infinity), or empty.
        hint: String,
    },
    /// JSON, but none of the accepted forms (HTTP 422).
    #[error(
        "unsupported request body: {reason}; expected a list of records, a dict of columns \
             or {{\"array\": [...], \"shape\": [...], \"dtype\": \"...\"}}"
    )]
    Unsupported {
        /// What is wrong.
        reason: String,
    },
    /// No rows (HTTP 422).
    #[error("empty input: expected at least one row")]
    Empty,
    /// A value of the wrong type (HTTP 422).
    #[error("column {column:?}, row {row}: expected {expected}, found {found}")]
    WrongType {
        /// The column.
        column: String,
        /// The 0-based row.
        row: usize,
        /// What the column holds.
        expected: String,
        /// The value found.
        found: String,
    },
    /// Columns the model needs are absent, or columns it does not know are present (HTTP 422).
    #[error("{}{}expected exactly the columns [{}]",
        list("missing columns", missing), list("unknown columns", extra), expected.join(", "))]
    Columns {
        /// Columns the model reads that the request lacks.
        missing: Vec<String>,
        /// Columns the request has that the model does not read.
        extra: Vec<String>,
        /// The model's input columns.
        expected: Vec<String>,
    },
    /// JSON that does not fit a pipeline's input type (HTTP 422).
    #[error("the body does not fit the pipeline's input {expected}: {reason}")]
    WrongInput {
        /// The input type.
        expected: String,
        /// What did not fit, and where.
        reason: String,
    },
    /// The body is over the deployment's size limit (HTTP 413).
    #[error("request body over {limit} bytes; send smaller batches or raise max_request_bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body's framing is broken: a malformed chunked encoding, or the connection closed
    /// before the declared length arrived (HTTP 400).
    #[error(
        "the request body could not be read after {received} bytes: {reason}; send a \
         Content-Length that matches the body, or well-formed chunks"
    )]
    BodyFraming {
        /// Bytes read before the failure.
        received: usize,
        /// What the HTTP layer reported.
        reason: String,
    },
    /// The body did not arrive within the body timeout (HTTP 408).
    #[error(
        "the request body did not arrive within {timeout_ms} ms ({received} bytes received{}); \
         send the whole body promptly", declared.map(|d| format!(" of {d} declared")).unwrap_or_default()
    )]
    BodyTimeout {
        /// The timeout.
        timeout_ms: u128,
        /// Bytes received in time.
        received: usize,
        /// The declared Content-Length, if any.
        declared: Option<usize>,
    },
}

fn list(what: &str, names: &[String]) -> String {
    if names.is_empty() {
        String::new()
    } else {
        format!("{what} [{}]; ", names.join(", "))
    }
}

impl RequestError {
    /// The HTTP status it answers with.
    pub fn status(&self) -> u16 {
        match self {
            Self::MalformedJson { .. } | Self::BodyFraming { .. } => 400,
            Self::BodyTimeout { .. } => 408,
            Self::TooLarge { .. } => 413,
            _ => 422,
        }
    }

    /// A short machine-readable kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::MalformedJson { .. } => "malformed_json",
            Self::Unsupported { .. } => "unsupported_body",
            Self::Empty => "empty_input",
            Self::WrongType { .. } => "wrong_type",
            Self::Columns { .. } => "wrong_columns",
            Self::WrongInput { .. } => "wrong_input",
            Self::TooLarge { .. } => "too_large",
            Self::BodyFraming { .. } => "malformed_body",
            Self::BodyTimeout { .. } => "body_timeout",
        }
    }

    fn unsupported(reason: impl Into<String>) -> Self {
        Self::Unsupported {
            reason: reason.into(),
        }
    }
}

/// Turns a request body into the batch a predictor reads.
pub trait Adapter: Send + Sync + 'static {
    /// The batch in `body`.
    fn to_frame(&self, body: &[u8]) -> Result<DataFrame, RequestError>;
}

impl<F> Adapter for F
where
    F: Fn(&[u8]) -> Result<DataFrame, RequestError> + Send + Sync + 'static,
{
    fn to_frame(&self, body: &[u8]) -> Result<DataFrame, RequestError> {
        self(body)
    }
}

/// The default adapter. It takes three JSON forms:
/// - records: `[{"a": 1.0, "b": 2.0}, {"a": 3.0, "b": 4.0}]`;
/// - columns: `{"a": [1.0, 3.0], "b": [2.0, 4.0]}`;
/// - an array (Ray's `json_to_ndarray`): `{"array": [[1, 2], [3, 4]], "shape": [2, 2],
///   "dtype": "float32", "columns": ["a", "b"]}` — `shape`, `dtype` and `columns` optional. A
///   1-D array is one row per element in column [`VALUE_COLUMN`]; a 2-D one gives named columns
///   when `columns` is given, else one fixed-size array column [`VALUE_COLUMN`] (what a burn
///   model reads).
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonAdapter;

impl Adapter for JsonAdapter {
    fn to_frame(&self, body: &[u8]) -> Result<DataFrame, RequestError> {
        let value: Value = serde_json::from_slice(body).map_err(|e| malformed(&e, body))?;
        frame_from_json(value)
    }
}

pub(crate) fn malformed(e: &serde_json::Error, body: &[u8]) -> RequestError {
    let text = String::from_utf8_lossy(body);
    let hint = if ["NaN", "Infinity"].iter().any(|t| text.contains(t)) {
        " (JSON has no NaN or Infinity: send null for a missing value)"
    } else {
        ""
    };
    RequestError::MalformedJson {
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
        hint: hint.to_owned(),
    }
}

/// The batch a JSON value holds (see [`JsonAdapter`]).
pub fn frame_from_json(value: Value) -> Result<DataFrame, RequestError> {
    match value {
        Value::Array(records) => from_records(records),
        Value::Object(mut map) if map.contains_key("array") => {
            let array = map.remove("array").unwrap_or(Value::Null);
            from_array(array, &map)
        }
        Value::Object(map) => from_columns(map),
        other => Err(RequestError::unsupported(format!(
            "the body is a JSON {}",
            json_type(&other)
        ))),
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

/// Most cells a request's records may spread over when keys are missing from some records
/// (padded with nulls): 64 per value sent, or 2^20, whichever is more. Without it, one record
/// with 40,000 keys followed by 100,000 empty records would ask for four billion cells.
fn max_cells(values: usize) -> usize {
    values.saturating_mul(64).max(1 << 20)
}

fn from_records(records: Vec<Value>) -> Result<DataFrame, RequestError> {
    if records.is_empty() {
        return Err(RequestError::Empty);
    }
    let rows = records.len();
    // Keys are collected in one pass (a hash lookup per key: linear in the body); each column
    // keeps only the values sent, with their rows, until it is built.
    let mut index: PlHashMap<String, usize> = PlHashMap::new();
    let mut names: Vec<String> = Vec::new();
    let mut sparse: Vec<Vec<(usize, Value)>> = Vec::new();
    let mut values = 0usize;
    for (i, r) in records.into_iter().enumerate() {
        let Value::Object(map) = r else {
            return Err(RequestError::unsupported(format!(
                "record {i} is a JSON {}, not an object",
                json_type(&r)
            )));
        };
        for (k, v) in map {
            let j = match index.get(&k) {
                Some(&j) => j,
                None => {
                    index.insert(k.clone(), names.len());
                    names.push(k);
                    sparse.push(Vec::new());
                    names.len() - 1
                }
            };
            sparse[j].push((i, v));
            values += 1;
        }
    }
    if names.is_empty() {
        // `[{}]`: rows without a single value.
        return Err(RequestError::Empty);
    }
    let cells = rows.saturating_mul(names.len());
    if cells > max_cells(values) {
        return Err(RequestError::unsupported(format!(
            "the records are too sparse: {rows} records with {} distinct keys make {cells} \
             cells from {values} values sent; send records with the same keys (missing \
             values as null), or the column form",
            names.len()
        )));
    }
    let columns = names
        .iter()
        .zip(sparse)
        .map(|(name, sent)| {
            let mut dense = vec![Value::Null; rows];
            for (row, v) in sent {
                dense[row] = v;
            }
            build_column(name, dense)
        })
        .collect::<Result<Vec<_>, _>>()?;
    frame(rows, columns)
}

fn from_columns(map: serde_json::Map<String, Value>) -> Result<DataFrame, RequestError> {
    if map.is_empty() {
        return Err(RequestError::Empty);
    }
    let mut height = None;
    let mut columns = Vec::with_capacity(map.len());
    for (name, values) in map {
        let Value::Array(values) = values else {
            return Err(RequestError::unsupported(format!(
                "column {name:?} is a JSON {}, not a list of values",
                json_type(&values)
            )));
        };
        match height {
            None => height = Some(values.len()),
            Some(h) if h != values.len() => {
                return Err(RequestError::unsupported(format!(
                    "columns have different lengths ({h} and {} for {name:?})",
                    values.len()
                )));
            }
            Some(_) => {}
        }
        columns.push(build_column(&name, values)?);
    }
    let height = height.unwrap_or(0);
    if height == 0 {
        return Err(RequestError::Empty);
    }
    frame(height, columns)
}

fn frame(height: usize, columns: Vec<Column>) -> Result<DataFrame, RequestError> {
    DataFrame::new(height, columns).map_err(|e| RequestError::unsupported(e.to_string()))
}

/// One column from JSON values: numbers (Int64 when all are integers, else Float64), booleans,
/// strings or equal-length lists of numbers (a fixed-size array); nulls allowed.
fn build_column(name: &str, values: Vec<Value>) -> Result<Column, RequestError> {
    let kind = values.iter().find(|v| !v.is_null()).map(json_type);
    let wrong = |row: usize, expected: &str, v: &Value| RequestError::WrongType {
        column: name.to_owned(),
        row,
        expected: expected.to_owned(),
        found: short(v),
    };
    let name_s: PlSmallStr = name.into();
    Ok(match kind {
        None | Some("number") => {
            if values.iter().all(|v| v.is_null() || v.is_i64()) {
                let mut out = Vec::with_capacity(values.len());
                for (row, v) in values.iter().enumerate() {
                    out.push(match v {
                        Value::Null => None,
                        v => Some(v.as_i64().ok_or_else(|| wrong(row, "an integer", v))?),
                    });
                }
                Series::new(name_s, out).into_column()
            } else {
                let mut out = Vec::with_capacity(values.len());
                for (row, v) in values.iter().enumerate() {
                    out.push(match v {
                        Value::Null => None,
                        v => Some(v.as_f64().ok_or_else(|| wrong(row, "a number", v))?),
                    });
                }
                Series::new(name_s, out).into_column()
            }
        }
        Some("boolean") => {
            let mut out = Vec::with_capacity(values.len());
            for (row, v) in values.iter().enumerate() {
                out.push(match v {
                    Value::Null => None,
                    v => Some(v.as_bool().ok_or_else(|| wrong(row, "a boolean", v))?),
                });
            }
            Series::new(name_s, out).into_column()
        }
        Some("string") => {
            let mut out: Vec<Option<&str>> = Vec::with_capacity(values.len());
            for (row, v) in values.iter().enumerate() {
                out.push(match v {
                    Value::Null => None,
                    v => Some(v.as_str().ok_or_else(|| wrong(row, "a string", v))?),
                });
            }
            Series::new(name_s, out).into_column()
        }
        Some("list") => {
            let width = values
                .iter()
                .find_map(|v| v.as_array().map(Vec::len))
                .unwrap_or(0);
            // Reserve no more than the body can hold: a null row fails below, before growing.
            let mut flat = Vec::with_capacity(values.len().saturating_mul(width).min(1 << 20));
            let expected = format!("a list of {width} numbers");
            for (row, v) in values.iter().enumerate() {
                let items = v
                    .as_array()
                    .filter(|a| a.len() == width)
                    .ok_or_else(|| wrong(row, &expected, v))?;
                for x in items {
                    flat.push(x.as_f64().ok_or_else(|| wrong(row, &expected, v))?);
                }
            }
            array_column(name, flat, values.len(), width, &DataType::Float64)?
        }
        Some(other) => {
            let row = values
                .iter()
                .position(|v| json_type(v) == other)
                .unwrap_or(0);
            return Err(wrong(
                row,
                "a number, boolean, string or list of numbers",
                &values[row],
            ));
        }
    })
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 40 {
        format!("{}...", &s[..s.floor_char_boundary(40)])
    } else {
        s
    }
}

fn array_column(
    name: &str,
    flat: Vec<f64>,
    rows: usize,
    width: usize,
    dtype: &DataType,
) -> Result<Column, RequestError> {
    let values = Series::new("".into(), flat)
        .cast(dtype)
        .map_err(|e| RequestError::unsupported(e.to_string()))?;
    let chunk = values.rechunk().chunks()[0].clone();
    Ok(
        ArrayChunked::from_aligned_values(name.into(), dtype, width, vec![chunk], rows)
            .into_column(),
    )
}

/// Ray's ndarray form.
fn from_array(
    array: Value,
    rest: &serde_json::Map<String, Value>,
) -> Result<DataFrame, RequestError> {
    let mut flat = Vec::new();
    let mut inferred = Vec::new();
    let mut all_ints = true;
    flatten(&array, 0, &mut inferred, &mut flat, &mut all_ints)?;
    let shape: Vec<usize> = match rest.get("shape") {
        None | Some(Value::Null) => inferred,
        Some(Value::Array(dims)) => dims
            .iter()
            .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
            .collect::<Option<_>>()
            .ok_or_else(|| {
                RequestError::unsupported(format!(
                    "\"shape\" must be a list of sizes (non-negative integers), found {}",
                    short(&Value::Array(dims.clone()))
                ))
            })?,
        Some(other) => {
            return Err(RequestError::unsupported(format!(
                "\"shape\" is a JSON {}, not a list of sizes",
                json_type(other)
            )));
        }
    };
    // Sizes come from the client: every product is checked.
    let total = checked_product(&shape).ok_or_else(|| {
        RequestError::unsupported(format!(
            "\"shape\" {shape:?} describes more values than any request can hold; it must \
             describe the {} values of \"array\"",
            flat.len()
        ))
    })?;
    if total != flat.len() {
        return Err(RequestError::unsupported(format!(
            "\"shape\" {shape:?} holds {total} values but \"array\" has {}",
            flat.len()
        )));
    }
    if flat.is_empty() {
        return Err(RequestError::Empty);
    }
    let dtype = match rest.get("dtype").and_then(Value::as_str) {
        None if all_ints => DataType::Int64,
        None => DataType::Float64,
        Some("float32") => DataType::Float32,
        Some("float64") => DataType::Float64,
        Some(d @ ("int32" | "int64")) => {
            if !all_ints {
                return Err(RequestError::unsupported(format!(
                    "dtype {d} but the array holds non-integers"
                )));
            }
            if d == "int32" {
                DataType::Int32
            } else {
                DataType::Int64
            }
        }
        Some(d) => {
            return Err(RequestError::unsupported(format!(
                "dtype {d:?}; expected float32, float64, int32 or int64"
            )));
        }
    };
    // Both divide the non-zero total checked above, so they fit.
    let (rows, width) = match shape.as_slice() {
        [] => (1, 1),
        [n] => (*n, 1),
        [n, rest @ ..] => (*n, checked_product(rest).unwrap_or(usize::MAX)),
    };
    let names: Option<Vec<String>> = match rest.get("columns") {
        None | Some(Value::Null) => None,
        Some(Value::Array(c)) => Some(
            c.iter()
                .map(|n| n.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .ok_or_else(|| RequestError::unsupported("\"columns\" must be a list of names"))?,
        ),
        Some(_) => {
            return Err(RequestError::unsupported(
                "\"columns\" must be a list of names",
            ));
        }
    };
    let cast = |s: Series| {
        s.cast(&dtype)
            .map(Series::into_column)
            .map_err(|e| RequestError::unsupported(e.to_string()))
    };
    let columns = match names {
        Some(names) => {
            if names.len() != width {
                return Err(RequestError::unsupported(format!(
                    "{} column names for {width} values per row",
                    names.len()
                )));
            }
            names
                .iter()
                .enumerate()
                .map(|(j, n)| {
                    let col: Vec<f64> = (0..rows).map(|i| flat[i * width + j]).collect();
                    cast(Series::new(n.into(), col))
                })
                .collect::<Result<Vec<_>, _>>()?
        }
        None if width == 1 => vec![cast(Series::new(VALUE_COLUMN.into(), flat))?],
        None => vec![array_column(VALUE_COLUMN, flat, rows, width, &dtype)?],
    };
    frame(rows, columns)
}

fn checked_product(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

fn flatten(
    v: &Value,
    depth: usize,
    shape: &mut Vec<usize>,
    out: &mut Vec<f64>,
    all_ints: &mut bool,
) -> Result<(), RequestError> {
    match v {
        Value::Array(items) => {
            if shape.len() == depth {
                shape.push(items.len());
            } else if shape.get(depth) != Some(&items.len()) {
                return Err(RequestError::unsupported(
                    "the array is ragged: lists at one depth must have equal lengths",
                ));
            }
            for item in items {
                flatten(item, depth + 1, shape, out, all_ints)?;
            }
            Ok(())
        }
        Value::Number(n) if depth == shape.len() => {
            *all_ints &= n.is_i64();
            out.push(n.as_f64().unwrap_or(f64::NAN));
            Ok(())
        }
        other => Err(RequestError::unsupported(format!(
            "the array holds {} where a number was expected",
            short(other)
        ))),
    }
}

/// Checks a batch's columns against a model's input columns.
pub(crate) fn check_columns(df: &DataFrame, expected: &[String]) -> Result<(), RequestError> {
    let names = df.get_column_names();
    let sent: PlHashSet<&str> = names.iter().map(|n| n.as_str()).collect();
    let known: PlHashSet<&str> = expected.iter().map(String::as_str).collect();
    let missing: Vec<String> = expected
        .iter()
        .filter(|e| !sent.contains(e.as_str()))
        .cloned()
        .collect();
    // A client may send thousands of unknown keys: name the first few.
    const SHOWN: usize = 20;
    let unknown = names.iter().filter(|n| !known.contains(n.as_str()));
    let mut extra: Vec<String> = unknown.clone().take(SHOWN).map(|n| n.to_string()).collect();
    let more = unknown.count().saturating_sub(SHOWN);
    if more > 0 {
        extra.push(format!("... and {more} more"));
    }
    if missing.is_empty() && extra.is_empty() {
        Ok(())
    } else {
        Err(RequestError::Columns {
            missing,
            extra,
            expected: expected.to_vec(),
        })
    }
}

/// `df` as a JSON list of records (`[{"predictions": 0.97}, ...]`); NaN and infinities are
/// written as null, fixed-size and variable lists as JSON lists.
pub fn records_json(df: &DataFrame) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 * df.height() * df.width() + 2);
    out.push(b'[');
    let columns: Vec<(String, &Column)> = df
        .columns()
        .iter()
        .map(|c| {
            (
                serde_json::to_string(c.name().as_str()).unwrap_or_default(),
                c,
            )
        })
        .collect();
    for row in 0..df.height() {
        if row > 0 {
            out.push(b',');
        }
        out.push(b'{');
        for (j, (name, col)) in columns.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            out.extend_from_slice(name.as_bytes());
            out.push(b':');
            write_value(&mut out, &col.get(row).unwrap_or(AnyValue::Null));
        }
        out.push(b'}');
    }
    out.push(b']');
    out
}

fn write_value(out: &mut Vec<u8>, v: &AnyValue<'_>) {
    use std::io::Write;
    match v {
        AnyValue::Null => out.extend_from_slice(b"null"),
        AnyValue::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        AnyValue::Float32(x) => write_float(out, f64::from(*x), Some(*x)),
        AnyValue::Float64(x) => write_float(out, *x, None),
        AnyValue::Int8(x) => write!(out, "{x}").unwrap_or(()),
        AnyValue::Int16(x) => write!(out, "{x}").unwrap_or(()),
        AnyValue::Int32(x) => write!(out, "{x}").unwrap_or(()),
        AnyValue::Int64(x) => write!(out, "{x}").unwrap_or(()),
        AnyValue::UInt8(x) => write!(out, "{x}").unwrap_or(()),
        AnyValue::UInt16(x) => write!(out, "{x}").unwrap_or(()),
        AnyValue::UInt32(x) => write!(out, "{x}").unwrap_or(()),
        AnyValue::UInt64(x) => write!(out, "{x}").unwrap_or(()),
        AnyValue::String(s) => {
            serde_json::to_writer(&mut *out, s).unwrap_or(());
        }
        AnyValue::StringOwned(s) => {
            serde_json::to_writer(&mut *out, s.as_str()).unwrap_or(());
        }
        AnyValue::List(s) | AnyValue::Array(s, _) => {
            out.push(b'[');
            for (i, item) in s.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, &item);
            }
            out.push(b']');
        }
        other => {
            serde_json::to_writer(&mut *out, &other.to_string()).unwrap_or(());
        }
    }
}

/// Shortest round-trip form, floats always with a decimal point (1.0, not 1); an f32 is printed
/// as an f32 (0.1, not 0.10000000149011612).
pub(crate) fn write_float(out: &mut Vec<u8>, x: f64, single: Option<f32>) {
    if !x.is_finite() {
        out.extend_from_slice(b"null");
    } else if let Some(s) = single {
        serde_json::to_writer(out, &s).unwrap_or(());
    } else {
        serde_json::to_writer(out, &x).unwrap_or(());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<DataFrame, RequestError> {
        JsonAdapter.to_frame(body.as_bytes())
    }

    #[test]
    fn three_forms_give_the_same_frame() {
        let records = parse(r#"[{"a": 1.5, "b": 2}, {"a": 3.0, "b": 4}]"#).unwrap();
        let columns = parse(r#"{"a": [1.5, 3.0], "b": [2, 4]}"#).unwrap();
        let array = parse(r#"{"array": [[1.5, 2], [3.0, 4]], "columns": ["a", "b"]}"#).unwrap();
        assert_eq!(records.column("a").unwrap().dtype(), &DataType::Float64);
        assert_eq!(records.column("b").unwrap().dtype(), &DataType::Int64);
        assert!(records.equals(&columns));
        assert_eq!(array.shape(), (2, 2));
        assert_eq!(array.column("b").unwrap().f64().unwrap().get(1), Some(4.0));
    }

    #[test]
    fn arrays_follow_ray_shapes() {
        let one = parse(r#"{"array": [40]}"#).unwrap();
        assert_eq!(one.shape(), (1, 1));
        assert_eq!(
            one.column(VALUE_COLUMN).unwrap().i64().unwrap().get(0),
            Some(40)
        );
        let flat =
            parse(r#"{"array": [1, 2, 3, 4], "shape": [2, 2], "dtype": "float32"}"#).unwrap();
        let col = flat.column(VALUE_COLUMN).unwrap();
        assert_eq!(
            col.dtype(),
            &DataType::Array(Box::new(DataType::Float32), 2)
        );
        assert_eq!(flat.height(), 2);
        let err = parse(r#"{"array": [1, 2, 3], "shape": [2, 2]}"#).unwrap_err();
        assert!(err.to_string().contains("holds 4 values"), "{err}");
        let err = parse(r#"{"array": [[1, 2], [3]]}"#).unwrap_err();
        assert!(err.to_string().contains("ragged"), "{err}");
        let err = parse(r#"{"array": [1.5], "dtype": "int64"}"#).unwrap_err();
        assert!(err.to_string().contains("non-integers"), "{err}");
    }

    #[test]
    fn bad_bodies_are_named() {
        let err = parse(r#"[{"a": NaN}]"#).unwrap_err();
        assert_eq!(err.status(), 400);
        assert!(err.to_string().contains("send null"), "{err}");
        assert_eq!(parse("[]").unwrap_err(), RequestError::Empty);
        assert_eq!(parse(r#"{"a": []}"#).unwrap_err(), RequestError::Empty);
        let err = parse(r#"[{"a": 1}, {"a": "x"}]"#).unwrap_err();
        assert!(
            matches!(&err, RequestError::WrongType { column, row: 1, .. } if column == "a"),
            "{err}"
        );
        let err = parse(r#"{"a": [1, 2], "b": [1]}"#).unwrap_err();
        assert!(err.to_string().contains("different lengths"), "{err}");
        assert_eq!(parse("3").unwrap_err().status(), 422);
        let df = parse(r#"[{"a": 1, "c": 2}]"#).unwrap();
        let err = check_columns(&df, &["a".into(), "b".into()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "missing columns [b]; unknown columns [c]; expected exactly the columns [a, b]"
        );
    }

    #[test]
    fn records_round_trip_values() {
        let df =
            parse(r#"[{"p": 0.25, "s": "x", "v": [1, 2]}, {"p": null, "s": "y\"", "v": [3, 4]}]"#)
                .unwrap();
        let json: Value = serde_json::from_slice(&records_json(&df)).unwrap();
        assert_eq!(
            json,
            serde_json::json!([{"p": 0.25, "s": "x", "v": [1.0, 2.0]}, {"p": null, "s": "y\"", "v": [3.0, 4.0]}])
        );
        let f32s =
            DataFrame::new(1, vec![Series::new("p".into(), [0.1f32]).into_column()]).unwrap();
        assert_eq!(records_json(&f32s), br#"[{"p":0.1}]"#);
    }
}
