//! Predictors: a trained model rebuilt from a checkpoint, applied to batches after the
//! checkpoint's preprocessor (Ray's `Predictor` / `TorchPredictor`).

use std::{fmt, sync::Arc};

use air_checkpoint::Checkpoint;
use air_data::{Preprocessor, load_preprocessor, polars::prelude::*};
use serde::de::DeserializeOwned;

use crate::{TrainError, error::Result};

/// The output column of every predictor.
pub const PREDICTIONS: &str = "predictions";

/// Checkpoint metadata: the raw columns of the `"train"` dataset (trainers record it).
pub const TRAIN_COLUMNS_KEY: &str = "train_columns";

/// Checkpoint metadata: the label column (null for an unsupervised model). With
/// [`TRAIN_COLUMNS_KEY`] it gives a predictor its raw input columns; a train loop can set it.
pub const LABEL_COLUMN_KEY: &str = "label_column";

/// Checkpoint metadata: which predictor reads the checkpoint (`"gbdt"`, `"sklearn"`, `"burn"`,
/// `"transformers"`, `"rl"`). The trainers and model savers write it; the `air` command builds
/// its predictor by it.
pub const PREDICTOR_KIND_KEY: &str = "predictor_kind";

/// The raw input columns recorded in `checkpoint`: its train columns without the label, when
/// both keys are present.
pub fn checkpoint_input_columns(checkpoint: &Checkpoint) -> Option<Vec<String>> {
    let metadata = checkpoint.metadata();
    let columns: Vec<String> =
        serde_json::from_value(metadata.get(TRAIN_COLUMNS_KEY)?.clone()).ok()?;
    let label = metadata.get(LABEL_COLUMN_KEY)?.as_str();
    Some(
        columns
            .into_iter()
            .filter(|c| Some(c.as_str()) != label)
            .collect(),
    )
}

/// Predicts a batch (Ray's `Predictor`): the checkpoint's preprocessor runs first, and the
/// output has a [`PREDICTIONS`] column.
///
/// Only [`predict`](Predictor::predict) is required. A predictor with a preprocessor also
/// splits it into [`preprocess`](Predictor::preprocess) and
/// [`predict_preprocessed`](Predictor::predict_preprocessed), so that a batch predictor can run
/// the two on separate stages (the model's stage — a GPU — is then never waiting on
/// preprocessing); `predict(b)` must equal `predict_preprocessed(preprocess(b)?)`.
pub trait Predictor: Send + Sync + fmt::Debug {
    /// Predictions for every row of `batch` (preprocessing included).
    fn predict(&self, batch: DataFrame) -> Result<DataFrame>;

    /// The preprocessing half of [`predict`](Predictor::predict): the batch as the model reads
    /// it. Default: the batch unchanged.
    fn preprocess(&self, batch: DataFrame) -> Result<DataFrame> {
        Ok(batch)
    }

    /// The model half of [`predict`](Predictor::predict), on a batch
    /// [`preprocess`](Predictor::preprocess) returned. Default: `predict`.
    fn predict_preprocessed(&self, batch: DataFrame) -> Result<DataFrame> {
        self.predict(batch)
    }

    /// The raw input columns this predictor reads, when it knows them (servers use them to
    /// reject a request with missing or extra columns by name). Default: unknown.
    fn input_columns(&self) -> Option<Vec<String>> {
        None
    }

    /// The predictor's model as a [`MatrixPredictor`], when it reads named numeric columns as
    /// one `f32` matrix with no preprocessing: a server then parses a request of numbers
    /// straight into the matrix, without a data frame. Default: none.
    fn as_matrix(&self) -> Option<&dyn MatrixPredictor> {
        None
    }
}

/// A model that reads a row-major `f32` matrix of fixed, named numeric columns and needs no
/// preprocessing (a [`GbdtPredictor`](crate::gbdt::GbdtPredictor) without a preprocessor, say):
/// what [`Predictor::as_matrix`] offers. For a frame holding exactly [`columns`](Self::columns),
/// all numeric, `predict(frame)` equals [`predict_matrix`](Self::predict_matrix) of
/// `to_f32_matrix(frame, columns)` as a [`predictions_frame`] (nulls are NaN).
pub trait MatrixPredictor: Send + Sync {
    /// The input columns, in the matrix's column order.
    fn columns(&self) -> &[String];

    /// Predictions for `rows` rows of `data` (row-major, [`columns`](Self::columns) wide).
    fn predict_matrix(&self, data: &[f32], rows: usize) -> Result<MatrixPredictions>;
}

/// What a [`MatrixPredictor`] answers: `rows × width` values, row after row.
#[derive(Debug, Clone, PartialEq)]
pub struct MatrixPredictions {
    /// The values, row after row.
    pub values: Vec<f32>,
    /// Values per row (1: a `Float32` predictions column; more: an array column).
    pub width: usize,
}

impl MatrixPredictions {
    /// The rows.
    pub fn rows(&self) -> usize {
        self.values.len().checked_div(self.width).unwrap_or(0)
    }

    /// The [`PREDICTIONS`] frame `predict` answers for the same rows.
    pub fn into_frame(self) -> Result<DataFrame> {
        let rows = self.rows();
        predictions_frame(self.values, rows, self.width)
    }
}

/// What a framework predictor reads from a checkpoint besides its model: the preprocessor it
/// runs first and the raw input columns recorded at training time.
#[derive(Debug, Clone, Default)]
pub(crate) struct InputStage {
    preprocessor: Option<Arc<dyn Preprocessor>>,
    recorded: Option<Vec<String>>,
}

impl InputStage {
    pub(crate) fn from_checkpoint(checkpoint: &Checkpoint) -> Result<Self> {
        Ok(Self {
            preprocessor: load_preprocessor(checkpoint)?.map(Arc::from),
            recorded: checkpoint_input_columns(checkpoint),
        })
    }

    pub(crate) fn preprocessor(&self) -> Option<&dyn Preprocessor> {
        self.preprocessor.as_deref()
    }

    /// The preprocessor (if any) applied to `batch`.
    pub(crate) fn apply(&self, batch: DataFrame) -> Result<DataFrame> {
        Ok(match &self.preprocessor {
            Some(p) => p.transform_batch(batch)?,
            None => batch,
        })
    }

    /// The raw input columns of a model reading `features`: the recorded ones, else the
    /// features themselves when there is no preprocessor (one may consume and produce columns
    /// of other names).
    pub(crate) fn input_columns(&self, features: &[String]) -> Option<Vec<String>> {
        if self.recorded.is_some() {
            return self.recorded.clone();
        }
        if self.preprocessor.is_some() || features.is_empty() {
            return None;
        }
        // `expanded_feature_names` of one array column: the raw input is that column.
        let array = features[0].split_once('[').map(|(a, _)| a);
        if let Some(a) = array
            && features
                .iter()
                .enumerate()
                .all(|(j, n)| *n == format!("{a}[{j}]"))
        {
            return Some(vec![a.to_owned()]);
        }
        Some(features.to_vec())
    }
}

/// Builds a predictor from a checkpoint.
pub trait FromCheckpoint: Sized {
    /// Rebuilds from `checkpoint`.
    fn from_checkpoint(checkpoint: &Checkpoint) -> Result<Self>;
}

/// The `predictions` frame of `rows × width` row-major values: a `Float32` column for one
/// output, an `Array(Float32, width)` column for several.
pub fn predictions_frame(values: Vec<f32>, rows: usize, width: usize) -> Result<DataFrame> {
    let column = if width == 1 {
        Float32Chunked::from_vec(PREDICTIONS.into(), values).into_column()
    } else {
        let values = Float32Chunked::from_vec("".into(), values).chunks()[0].clone();
        ArrayChunked::from_aligned_values(
            PREDICTIONS.into(),
            &DataType::Float32,
            width,
            vec![values],
            rows,
        )
        .into_column()
    };
    single_column_frame(column, rows)
}

/// A frame holding only `column` (of `rows` rows): a predictor's output.
pub fn single_column_frame(column: Column, rows: usize) -> Result<DataFrame> {
    DataFrame::new(rows, vec![column]).map_err(|e| polars_error("building predictions", e))
}

/// A polars failure while `context`, as a [`TrainError::Data`].
pub(crate) fn polars_error(context: &str, source: PolarsError) -> TrainError {
    TrainError::Data(air_data::DataError::Polars {
        context: context.to_owned(),
        source,
    })
}

/// A model's feature names for `width` matrix columns read from `features`: the names
/// themselves, or `"{array}[j]"` when one array column gave all `width` values.
pub(crate) fn expanded_feature_names(features: &[String], width: usize) -> Vec<String> {
    if width == features.len() {
        features.to_vec()
    } else {
        (0..width)
            .map(|j| format!("{}[{j}]", features[0]))
            .collect()
    }
}

/// The columns of `batch` that hold a model's `names` (see [`expanded_feature_names`]): the
/// names themselves, or the array column they came from; a missing feature is named.
pub(crate) fn feature_columns(
    batch: &DataFrame,
    names: &[String],
    who: &str,
) -> Result<Vec<String>> {
    if names.iter().all(|n| batch.column(n).is_ok()) {
        return Ok(names.to_vec());
    }
    // Fitted on an array column: its name is the part before "[".
    if let Some(array) = names
        .first()
        .and_then(|n| n.split_once('['))
        .map(|(a, _)| a.to_owned())
        .filter(|a| batch.column(a).is_ok())
    {
        return Ok(vec![array]);
    }
    let missing: Vec<&str> = names
        .iter()
        .filter(|n| batch.column(n).is_err())
        .map(String::as_str)
        .collect();
    Err(TrainError::Data(air_data::DataError::ColumnNotFound {
        column: missing.join(", "),
        context: format!("{who} features"),
        available: batch
            .get_column_names()
            .iter()
            .map(|c| c.to_string())
            .collect(),
    }))
}

/// Reads the JSON model entry `entry` that `saved_by` wrote into a checkpoint; a missing or
/// unreadable entry names the entry and the trainer that writes it.
pub(crate) fn read_model_entry<T: DeserializeOwned>(
    checkpoint: &Checkpoint,
    entry: &str,
    saved_by: &str,
) -> Result<T> {
    checkpoint.get_verified_json(entry).map_err(|e| {
        TrainError::model(
            format!("reading {entry}"),
            format!("{e} (expected a model saved by {saved_by})"),
        )
    })
}

/// The numeric, boolean and array columns other than `label`: what a learner reads as features.
pub(crate) fn features_of(df: &DataFrame, label: &str) -> Vec<String> {
    columns_where(df, label, is_numeric_feature)
}

/// Whether a column of this type is read as numbers (numeric, boolean, arrays of numbers).
pub(crate) fn is_numeric_feature(dtype: &DataType) -> bool {
    dtype.is_primitive_numeric() || dtype.is_bool() || matches!(dtype, DataType::Array(..))
}

/// The columns other than `label` whose type `keep` accepts, in frame order.
pub(crate) fn columns_where(
    df: &DataFrame,
    label: &str,
    keep: impl Fn(&DataType) -> bool,
) -> Vec<String> {
    df.columns()
        .iter()
        .filter(|c| c.name().as_str() != label && keep(c.dtype()))
        .map(|c| c.name().to_string())
        .collect()
}
