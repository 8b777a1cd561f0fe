//! Predictors as steps: a [`Step`] built from a checkpoint and any
//! [`PredictorFactory`](crate::PredictorFactory), taking and giving tables.

use std::sync::Arc;

use air_checkpoint::Checkpoint;
use air_data::polars::prelude::DataFrame;
use air_train::{ComputeDevice, Predictor};

use super::{
    error::StepError,
    step::{Model, Step},
};
use crate::{deployment::predict_each, factory::PredictorFactory};

/// A predictor as a [`Model`]: a batch of calls is one `predict` on the stacked tables.
struct PredictorModel {
    name: String,
    predictor: Arc<dyn Predictor>,
}

fn step_error(e: crate::ServeError) -> StepError {
    if e.status() == 422 {
        StepError::bad_input(e)
    } else {
        StepError::failed(e)
    }
}

impl Model<DataFrame> for PredictorModel {
    type Output = DataFrame;

    fn call(&self, input: DataFrame) -> Result<DataFrame, StepError> {
        self.call_batch(vec![input])
            .pop()
            .expect("one output per input")
    }

    fn call_batch(&self, inputs: Vec<DataFrame>) -> Vec<Result<DataFrame, StepError>> {
        predict_each(&self.name, &*self.predictor, inputs)
            .into_iter()
            .map(|r| r.map_err(step_error))
            .collect()
    }
}

impl Step<DataFrame, DataFrame> {
    /// A step predicting with what `factory` builds from `checkpoint` (for example
    /// `GbdtPredictor::from_checkpoint`), once per replica at deploy time, on the CPU. Its
    /// input is the table the predictor reads (the checkpoint's preprocessor applies); its
    /// output, the predictor's. With batching, queued calls are stacked into one `predict`.
    /// A table the model cannot take fails the call as bad input (HTTP 422).
    ///
    /// ```
    /// use air_checkpoint::Checkpoint;
    /// use air_data::polars::prelude::*;
    /// use air_serve::pipeline::{INPUT, Step};
    /// use air_train::Predictor;
    ///
    /// #[derive(Debug)]
    /// struct Twice;
    /// impl Predictor for Twice {
    ///     fn predict(&self, batch: DataFrame) -> air_train::Result<DataFrame> {
    ///         let x = batch.column("x").unwrap().as_materialized_series() * 2;
    ///         Ok(DataFrame::new(batch.height(), vec![x.with_name("predictions".into()).into()]).unwrap())
    ///     }
    /// }
    ///
    /// let model = Step::predictor("twice", Checkpoint::new(), |_: &Checkpoint| Ok(Twice));
    /// let pipeline = model.on(INPUT).deploy()?;
    /// let out = pipeline.call(df!("x" => [1.0, 2.0]).unwrap())?;
    /// assert_eq!(out.column("predictions").unwrap().f64().unwrap().get(1), Some(4.0));
    /// # Ok::<(), air_serve::ServeError>(())
    /// ```
    pub fn predictor(name: &str, checkpoint: Checkpoint, factory: impl PredictorFactory) -> Self {
        Self::predictor_on(name, checkpoint, factory, ComputeDevice::Cpu)
    }

    /// As [`predictor`](Self::predictor), with every instance on `device` (a GPU needs a
    /// device-aware factory: [`on_device`](crate::on_device)). A device that is not there
    /// fails `deploy`.
    pub fn predictor_on(
        name: &str,
        checkpoint: Checkpoint,
        factory: impl PredictorFactory,
        device: ComputeDevice,
    ) -> Self {
        let step = name.to_owned();
        Self::try_model(name, move || {
            device.check_available()?;
            let predictor = factory.build(&checkpoint, device)?;
            Ok::<_, air_train::TrainError>(PredictorModel {
                name: step.clone(),
                predictor,
            })
        })
    }
}
