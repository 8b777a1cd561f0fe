//! The matrix path of a deployment whose model reads named numeric columns as one matrix
//! ([`Predictor::as_matrix`](air_train::Predictor::as_matrix)): a JSON list of records holding
//! exactly those columns, all numbers or null, is parsed straight into a row-major matrix, and
//! the predictions are written straight back as JSON — no data frame on the way. Anything else
//! (another form, a missing or unknown key, a string, a list, an integer beyond 2^53) is left
//! to the general path, which answers the same or names what is wrong; the answers of the two
//! paths are the same bytes (tests in `tests/matrix_path.rs`).

use std::fmt;

use air_data::{Matrix, polars::prelude::*};
use air_train::MatrixPredictions;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::adapter::write_float;

/// Integers up to this magnitude are exact in an `f64`, so rounding them to `f32` through it
/// gives what the general path's `Int64` column gives.
const EXACT_INT: u64 = 1 << 53;

/// A model's matrix columns and where each name goes.
#[derive(Debug, PartialEq)]
pub(crate) struct MatrixLayout {
    columns: Vec<String>,
    /// Polars' fast hash map: a key is looked up per value of every request.
    index: PlHashMap<String, usize>,
}

impl MatrixLayout {
    /// The layout of `columns`; `None` when a name repeats.
    pub(crate) fn new(columns: &[String]) -> Option<Self> {
        let index: PlHashMap<String, usize> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| (c.clone(), i))
            .collect();
        (index.len() == columns.len()).then(|| Self {
            columns: columns.to_vec(),
            index,
        })
    }

    /// Whether `names` are exactly these columns, in any order.
    pub(crate) fn same_set(&self, names: &[String]) -> bool {
        names.len() == self.columns.len() && names.iter().all(|n| self.index.contains_key(n))
    }

    /// The matrix a records body holds (`f64`, nulls as NaN), or `None` when the body is not
    /// a non-empty list of records with exactly these columns, all numbers or null.
    pub(crate) fn parse(&self, body: &[u8]) -> Option<Matrix<f64>> {
        let mut de = serde_json::Deserializer::from_slice(body);
        let mut records = Records {
            layout: self,
            data: Vec::with_capacity(self.columns.len()),
            seen: vec![false; self.columns.len()],
            rows: 0,
        };
        (&mut records).deserialize(&mut de).ok()?;
        de.end().ok()?;
        (records.rows > 0).then_some(Matrix {
            data: records.data,
            rows: records.rows,
            cols: self.columns.len(),
        })
    }

    /// `matrix` as the frame the general path would have built from the same body (`Float64`
    /// columns, NaN as null: JSON has no NaN, so a NaN was a null). For a request parsed for
    /// one checkpoint's model and predicted by another's, after a reconfigure.
    pub(crate) fn to_frame(&self, matrix: &Matrix<f64>) -> PolarsResult<DataFrame> {
        let columns = self
            .columns
            .iter()
            .enumerate()
            .map(|(j, name)| {
                let values: Float64Chunked = (0..matrix.rows)
                    .map(|r| Some(matrix.data[r * matrix.cols + j]).filter(|v| !v.is_nan()))
                    .collect();
                values.with_name(name.as_str().into()).into_column()
            })
            .collect();
        DataFrame::new(matrix.rows, columns)
    }
}

/// The seed of the whole body: a list of records.
struct Records<'a> {
    layout: &'a MatrixLayout,
    data: Vec<f64>,
    /// Which columns the record being read has set.
    seen: Vec<bool>,
    rows: usize,
}

impl<'de> DeserializeSeed<'de> for &mut Records<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for &mut Records<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Record(&mut *self))?.is_some() {}
        Ok(())
    }
}

/// The seed of one record: a map of the layout's columns to numbers.
struct Record<'r, 'a>(&'r mut Records<'a>);

impl<'de> DeserializeSeed<'de> for Record<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Record<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a record")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let records = self.0;
        let width = records.layout.columns.len();
        let start = records.data.len();
        records.data.resize(start + width, f64::NAN);
        records.seen.fill(false);
        let mut set = 0;
        // Keys usually come in the same order in every record: try the next column first.
        let mut next = 0;
        while let Some(j) = map.next_key_seed(Key {
            layout: records.layout,
            guess: next,
        })? {
            if std::mem::replace(&mut records.seen[j], true) {
                return Err(de::Error::custom("a repeated key"));
            }
            records.data[start + j] = map.next_value_seed(Number)?;
            set += 1;
            next = j + 1;
        }
        if set != width {
            return Err(de::Error::custom("missing columns"));
        }
        records.rows += 1;
        Ok(())
    }
}

/// A key: its column's position.
struct Key<'a> {
    layout: &'a MatrixLayout,
    guess: usize,
}

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key<'_> {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a column name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<usize, E> {
        if self
            .layout
            .columns
            .get(self.guess)
            .is_some_and(|c| c == key)
        {
            return Ok(self.guess);
        }
        self.layout
            .index
            .get(key)
            .copied()
            .ok_or_else(|| E::custom("an unknown column"))
    }
}

/// A number or null (NaN), as the general path reads it into a matrix.
struct Number;

impl<'de> DeserializeSeed<'de> for Number {
    type Value = f64;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<f64, D::Error> {
        d.deserialize_any(self)
    }
}

impl Visitor<'_> for Number {
    type Value = f64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number or null")
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
        Ok(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
        if v.unsigned_abs() > EXACT_INT {
            return Err(E::custom("an integer beyond 2^53"));
        }
        Ok(v as f64)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
        if v > EXACT_INT {
            return Err(E::custom("an integer beyond 2^53"));
        }
        Ok(v as f64)
    }

    fn visit_unit<E: de::Error>(self) -> Result<f64, E> {
        Ok(f64::NAN)
    }
}

/// `f64` values to the `f32` a model reads, appended to `out`.
#[allow(clippy::cast_possible_truncation)] // rounding to f32 is the point
pub(crate) fn extend_f32(out: &mut Vec<f32>, values: &[f64]) {
    out.extend(values.iter().map(|v| *v as f32));
}

/// `predictions` as JSON records, the bytes [`records_json`](crate::records_json) writes for
/// their frame.
pub(crate) fn predictions_json(predictions: &MatrixPredictions) -> Vec<u8> {
    const KEY: &[u8] = b"{\"predictions\":";
    let width = predictions.width.max(1);
    let mut out = Vec::with_capacity(2 + predictions.rows() * (KEY.len() + 14 * width));
    out.push(b'[');
    for (r, row) in predictions.values.chunks(width).enumerate() {
        if r > 0 {
            out.push(b',');
        }
        out.extend_from_slice(KEY);
        if predictions.width == 1 {
            write_float(&mut out, f64::from(row[0]), Some(row[0]));
        } else {
            out.push(b'[');
            for (i, v) in row.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_float(&mut out, f64::from(*v), Some(*v));
            }
            out.push(b']');
        }
        out.push(b'}');
    }
    out.push(b']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> MatrixLayout {
        MatrixLayout::new(&["a".to_owned(), "b".to_owned()]).unwrap()
    }

    #[test]
    fn records_of_numbers_parse_in_column_order() {
        let m = layout()
            .parse(br#" [{"a": 1, "b": 2.5}, {"b": -3, "a": null}] "#)
            .unwrap();
        assert_eq!((m.rows, m.cols), (2, 2));
        assert_eq!((m.data[0], m.data[1], m.data[3]), (1.0, 2.5, -3.0));
        assert!(m.data[2].is_nan());
    }

    #[test]
    fn anything_else_is_left_to_the_general_path() {
        for body in [
            "[]",
            "[{}]",
            r#"{"a": [1], "b": [2]}"#,
            r#"[{"a": 1}]"#,
            r#"[{"a": 1, "b": 2, "c": 3}]"#,
            r#"[{"a": 1, "a": 2}]"#,
            r#"[{"a": 1, "b": "x"}]"#,
            r#"[{"a": 1, "b": true}]"#,
            r#"[{"a": 1, "b": [2]}]"#,
            r#"[{"a": 1, "b": 9007199254740993}]"#,
            r#"[{"a": 1, "b": -9007199254740993}]"#,
            r#"[{"a": 1, "b": 2}] x"#,
            r#"[{"a": 1, "b": 2}"#,
            r#"[1]"#,
        ] {
            assert!(layout().parse(body.as_bytes()).is_none(), "{body}");
        }
        assert!(
            layout()
                .parse(br#"[{"a": 9007199254740992, "b": -9007199254740992}]"#)
                .is_some()
        );
        assert!(MatrixLayout::new(&["a".to_owned(), "a".to_owned()]).is_none());
    }

    #[test]
    fn predictions_are_written_as_their_frame_is() {
        for (values, width) in [
            (vec![0.1f32, f32::NAN, 3.0, -0.0], 1),
            (vec![0.25, 0.75, f32::INFINITY, 1e-8], 2),
        ] {
            let p = MatrixPredictions { values, width };
            let frame = p.clone().into_frame().unwrap();
            assert_eq!(
                String::from_utf8(predictions_json(&p)).unwrap(),
                String::from_utf8(crate::records_json(&frame)).unwrap()
            );
        }
    }

    #[test]
    fn a_matrix_goes_back_to_the_frame_of_its_body() {
        let l = layout();
        let m = l.parse(br#"[{"a": 1.5, "b": null}]"#).unwrap();
        let frame = l.to_frame(&m).unwrap();
        assert_eq!(frame.column("a").unwrap().f64().unwrap().get(0), Some(1.5));
        assert_eq!(frame.column("b").unwrap().null_count(), 1);
    }
}
