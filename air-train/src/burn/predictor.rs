//! [`BurnPredictor`]: a burn model rebuilt from a checkpoint's config and weights (Ray's
//! `TorchPredictor`).

use std::{fmt, marker::PhantomData};

use ::burn::{
    module::Module,
    tensor::{Tensor, TensorData},
};
use air_checkpoint::Checkpoint;
use air_data::{Preprocessor, polars::prelude::*, to_f32_matrix};
use serde::{Serialize, de::DeserializeOwned};

use super::{Backend, load_model, save_model};
use crate::{
    ComputeDevice, FromCheckpoint, Predictor, TrainError,
    error::Result,
    predictor::{InputStage, predictions_frame},
};

/// The checkpoint entry a model's config is saved under.
pub const MODEL_CONFIG_ENTRY: &str = "model_config.json";
/// The [`PREDICTOR_KIND_KEY`](crate::PREDICTOR_KIND_KEY) of a burn model's checkpoint (its
/// architecture is a [`ModelConfig`] type of the program that reads it).
pub const PREDICTOR_KIND: &str = "burn";

/// A burn model's architecture as serde data: enough to rebuild it before loading weights.
pub trait ModelConfig: Serialize + DeserializeOwned + Send + Sync + fmt::Debug + 'static {
    /// The model (on the workspace's one backend).
    type Model: Module<Backend> + Sync + fmt::Debug;

    /// A freshly initialised model on `device`.
    fn init(&self, device: &::burn::DispatchDevice) -> Self::Model;

    /// The model's output for a `[rows, features]` input: `[rows, outputs]`.
    fn forward(model: &Self::Model, input: Tensor<Backend, 2>) -> Tensor<Backend, 2>;
}

/// Saves a model's config and weights into `checkpoint` (what [`BurnPredictor`] loads).
pub fn save_burn_model<C: ModelConfig>(
    config: &C,
    model: &C::Model,
    checkpoint: &mut Checkpoint,
) -> Result<()> {
    checkpoint.put_json(MODEL_CONFIG_ENTRY, config)?;
    checkpoint.set_metadata_value(crate::PREDICTOR_KIND_KEY, PREDICTOR_KIND)?;
    save_model(model, checkpoint)
}

/// Predicts with a burn model rebuilt from a checkpoint's config and weights.
pub struct BurnPredictor<C: ModelConfig> {
    config: C,
    model: C::Model,
    device: ::burn::DispatchDevice,
    input: InputStage,
    features: Option<Vec<String>>,
    _config: PhantomData<C>,
}

impl<C: ModelConfig> fmt::Debug for BurnPredictor<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BurnPredictor")
            .field("config", &self.config)
            .field("device", &self.device)
            .field("input", &self.input)
            .field("features", &self.features)
            .finish_non_exhaustive()
    }
}

impl<C: ModelConfig> FromCheckpoint for BurnPredictor<C> {
    fn from_checkpoint(checkpoint: &Checkpoint) -> Result<Self> {
        Self::from_checkpoint_on(checkpoint, ComputeDevice::Cpu)
    }
}

impl<C: ModelConfig> BurnPredictor<C> {
    /// Rebuilds the model on `device` (CPU, or a CUDA device with the `cuda` feature).
    pub fn from_checkpoint_on(checkpoint: &Checkpoint, device: ComputeDevice) -> Result<Self> {
        if !checkpoint.contains(MODEL_CONFIG_ENTRY) {
            return Err(TrainError::model(
                "building a predictor",
                format!(
                    "the checkpoint has no {MODEL_CONFIG_ENTRY}; save the model with \
                     save_burn_model(config, model, checkpoint)"
                ),
            ));
        }
        let config: C = checkpoint
            .get_verified_json(MODEL_CONFIG_ENTRY)
            .map_err(|e| {
                TrainError::model(
                    format!("reading {MODEL_CONFIG_ENTRY}"),
                    format!(
                        "{e} (expected the config type {})",
                        std::any::type_name::<C>()
                    ),
                )
            })?;
        device.check_available()?;
        let device = device.inference_device()?;
        let model = load_model(config.init(&device), checkpoint, &device)?;
        Ok(Self {
            config,
            model,
            device,
            input: InputStage::from_checkpoint(checkpoint)?,
            features: None,
            _config: PhantomData,
        })
    }

    /// The input columns (after preprocessing). Default: the one array column if the batch has
    /// exactly one (a `Concatenator`'s output), else every numeric column.
    pub fn with_feature_columns<S: AsRef<str>>(mut self, columns: &[S]) -> Self {
        self.features = Some(columns.iter().map(|c| c.as_ref().to_owned()).collect());
        self
    }

    /// The model's config.
    pub fn config(&self) -> &C {
        &self.config
    }

    /// The preprocessor loaded from the checkpoint.
    pub fn preprocessor(&self) -> Option<&dyn Preprocessor> {
        self.input.preprocessor()
    }

    fn feature_columns(&self, df: &DataFrame) -> Result<Vec<String>> {
        if let Some(f) = &self.features {
            return Ok(f.clone());
        }
        let arrays: Vec<String> = df
            .columns()
            .iter()
            .filter(|c| matches!(c.dtype(), DataType::Array(..)))
            .map(|c| c.name().to_string())
            .collect();
        if arrays.len() == 1 {
            return Ok(arrays);
        }
        let numeric: Vec<String> = df
            .columns()
            .iter()
            .filter(|c| c.dtype().is_primitive_numeric() || c.dtype().is_bool())
            .map(|c| c.name().to_string())
            .collect();
        if numeric.is_empty() {
            return Err(TrainError::model(
                "choosing the predictor's input",
                format!(
                    "the batch has no numeric or array columns (columns: {:?}); set \
                     with_feature_columns",
                    df.get_column_names()
                ),
            ));
        }
        Ok(numeric)
    }
}

impl<C: ModelConfig> Predictor for BurnPredictor<C> {
    fn predict(&self, batch: DataFrame) -> Result<DataFrame> {
        self.predict_preprocessed(self.preprocess(batch)?)
    }

    fn preprocess(&self, batch: DataFrame) -> Result<DataFrame> {
        self.input.apply(batch)
    }

    fn input_columns(&self) -> Option<Vec<String>> {
        self.input
            .input_columns(self.features.as_deref().unwrap_or_default())
    }

    fn predict_preprocessed(&self, batch: DataFrame) -> Result<DataFrame> {
        let features = self.feature_columns(&batch)?;
        let m = to_f32_matrix(&batch, &features)?;
        let rows = m.rows;
        let input =
            Tensor::<Backend, 2>::from_data(TensorData::new(m.data, [rows, m.cols]), &self.device);
        let output = C::forward(&self.model, input);
        let [out_rows, width] = output.dims();
        let values: Vec<f32> = output
            .into_data()
            .convert::<f32>()
            .to_vec::<f32>()
            .map_err(|e| TrainError::model("reading predictions", format!("{e:?}")))?;
        if out_rows != rows {
            return Err(TrainError::model(
                "predicting",
                format!("the model returned {out_rows} rows for {rows} inputs"),
            ));
        }
        predictions_frame(values, rows, width)
    }
}
