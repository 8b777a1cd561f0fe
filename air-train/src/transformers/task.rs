//! [`TextTask`]: what a transformers checkpoint predicts, saved next to the weights as
//! `transformers.json`.

use air_data::polars::prelude::{DataFrame, DataType, NamedFrom, Series};
use serde::{Deserialize, Serialize};

use super::Pooling;
use crate::{TrainError, error::Result};

/// The checkpoint entry holding the [`TextTask`].
pub const TASK_ENTRY: &str = "transformers.json";

/// How the classes of a classifier were written in the label column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelType {
    /// Integers: predictions are an `Int64` column.
    Integer,
    /// Text: predictions are a `String` column.
    Text,
}

/// What the model's output means.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TaskKind {
    /// Sentence embeddings: the pooled states, L2-normalised when `normalize`.
    Embeddings {
        /// Divide each embedding by its norm (sentence-transformers' `normalize_embeddings`).
        normalize: bool,
    },
    /// A text classifier over `labels` (in the head's order).
    Classification {
        /// The classes as they were written in the label column.
        labels: Vec<String>,
        /// Whether they were integers or text.
        label_type: LabelType,
    },
}

/// What a transformers checkpoint holds besides its weights: the task, the pooling, the text
/// column and the tokenizer's length.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextTask {
    /// The task.
    pub kind: TaskKind,
    /// How token states are pooled.
    pub pooling: Pooling,
    /// The input column.
    pub text_column: String,
    /// Tokens per text, special tokens included.
    pub max_length: usize,
}

impl TaskKind {
    /// The prediction column of `classes` (indices into `labels`) for a classifier.
    pub(crate) fn label_series(&self, classes: &[usize]) -> Result<Series> {
        let TaskKind::Classification { labels, label_type } = self else {
            return Err(TrainError::model(
                "predicting labels",
                "the checkpoint is an embedding model, not a classifier",
            ));
        };
        let name = crate::PREDICTIONS.into();
        Ok(match label_type {
            LabelType::Text => Series::new(
                name,
                classes
                    .iter()
                    .map(|&c| labels[c].as_str())
                    .collect::<Vec<_>>(),
            ),
            LabelType::Integer => {
                let values = classes
                    .iter()
                    .map(|&c| labels[c].parse::<i64>())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| TrainError::model("reading the classifier's integer labels", e))?;
                Series::new(name, values)
            }
        })
    }
}

impl LabelType {
    /// The label type of a column of `dtype`, or an error naming the column.
    pub(crate) fn of(column: &str, dtype: &DataType) -> Result<Self> {
        if dtype.is_integer() || dtype.is_bool() {
            Ok(Self::Integer)
        } else if matches!(
            dtype,
            DataType::String | DataType::Categorical(..) | DataType::Enum(..)
        ) {
            Ok(Self::Text)
        } else {
            Err(TrainError::InvalidData {
                what: "label_column",
                found: format!("column {column:?} of type {dtype}"),
                expected: "integer or string class labels".to_owned(),
            })
        }
    }
}

/// The values of `column` as strings, one per row; a missing column names the available ones
/// and a null names its row (`what` says which column role it is).
pub(crate) fn string_column(
    batch: &DataFrame,
    column: &str,
    what: &'static str,
) -> Result<Vec<String>> {
    let values = batch.column(column).map_err(|_| {
        TrainError::Data(air_data::DataError::ColumnNotFound {
            column: column.to_owned(),
            context: format!("the transformers {what}"),
            available: batch
                .get_column_names()
                .iter()
                .map(|c| c.to_string())
                .collect(),
        })
    })?;
    let values = values
        .cast(&DataType::String)
        .map_err(|e| crate::predictor::polars_error(&format!("reading column {column:?}"), e))?;
    let strings = values.str().expect("cast to String");
    strings
        .iter()
        .enumerate()
        .map(|(row, s)| {
            s.map(str::to_owned).ok_or_else(|| TrainError::InvalidData {
                what,
                found: format!("a null in column {column:?} at row {row}"),
                expected: "a value in every row".to_owned(),
            })
        })
        .collect()
}
