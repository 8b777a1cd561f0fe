//! How a batch predictor or a deployment builds its predictors from a checkpoint.

use std::sync::Arc;

use air_checkpoint::Checkpoint;
use air_train::{ComputeDevice, Predictor};

/// Builds a [`Predictor`] from a checkpoint on a device: one per scoring worker or replica, and
/// again on `reconfigure`.
///
/// Any `Fn(&Checkpoint) -> air_train::Result<P>` is a factory (`GbdtPredictor::from_checkpoint`,
/// a closure); such a factory builds on the CPU, and asking it for a GPU is an error. For
/// device-aware construction (a burn model on CUDA device *i* for worker *i*) wrap a
/// `Fn(&Checkpoint, ComputeDevice)` in [`on_device`].
pub trait PredictorFactory: Send + Sync + 'static {
    /// A predictor for `checkpoint` on `device`.
    fn build(
        &self,
        checkpoint: &Checkpoint,
        device: ComputeDevice,
    ) -> air_train::Result<Arc<dyn Predictor>>;
}

impl<F, P> PredictorFactory for F
where
    F: Fn(&Checkpoint) -> air_train::Result<P> + Send + Sync + 'static,
    P: Predictor + 'static,
{
    fn build(
        &self,
        checkpoint: &Checkpoint,
        device: ComputeDevice,
    ) -> air_train::Result<Arc<dyn Predictor>> {
        if device != ComputeDevice::Cpu {
            return Err(air_train::TrainError::InvalidConfig {
                field: "num_gpus_per_worker",
                value: format!("{device:?}"),
                expected: "a device-aware factory (air_serve::on_device) to place predictors \
                           on a GPU; this one builds on the CPU"
                    .to_owned(),
            });
        }
        Ok(Arc::new(self(checkpoint)?))
    }
}

/// A factory that places each predictor on the device it is given (see [`PredictorFactory`]).
pub fn on_device<F, P>(f: F) -> OnDevice<F>
where
    F: Fn(&Checkpoint, ComputeDevice) -> air_train::Result<P> + Send + Sync + 'static,
    P: Predictor + 'static,
{
    OnDevice(f)
}

/// See [`on_device`].
#[derive(Debug, Clone)]
pub struct OnDevice<F>(F);

impl<F, P> PredictorFactory for OnDevice<F>
where
    F: Fn(&Checkpoint, ComputeDevice) -> air_train::Result<P> + Send + Sync + 'static,
    P: Predictor + 'static,
{
    fn build(
        &self,
        checkpoint: &Checkpoint,
        device: ComputeDevice,
    ) -> air_train::Result<Arc<dyn Predictor>> {
        Ok(Arc::new((self.0)(checkpoint, device)?))
    }
}
