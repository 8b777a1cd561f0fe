//! Model weights in a checkpoint: [`save_model`] and [`load_model`] (full precision, named
//! MessagePack, under [`MODEL_ENTRY`]).

use ::burn::{
    module::Module,
    record::{FullPrecisionSettings, NamedMpkBytesRecorder, Recorder},
    tensor::backend::Backend,
};
use air_checkpoint::Checkpoint;

use crate::{TrainError, error::Result};

/// The checkpoint entry model weights are saved under.
pub const MODEL_ENTRY: &str = "model.mpk";

/// Saves `module`'s weights (full precision, named MessagePack) into `checkpoint` as
/// [`MODEL_ENTRY`].
pub fn save_model<B: Backend, M: Module<B>>(module: &M, checkpoint: &mut Checkpoint) -> Result<()> {
    let bytes = NamedMpkBytesRecorder::<FullPrecisionSettings>::default()
        .record(module.clone().into_record(), ())
        .map_err(|e| TrainError::model("saving weights", e))?;
    checkpoint.put_bytes(MODEL_ENTRY, bytes)?;
    Ok(())
}

/// Loads the weights saved by [`save_model`] into `module` (built with the same architecture)
/// on `device`.
pub fn load_model<B: Backend, M: Module<B>>(
    module: M,
    checkpoint: &Checkpoint,
    device: &B::Device,
) -> Result<M> {
    let bytes = checkpoint.get_verified_bytes(MODEL_ENTRY)?;
    let record = NamedMpkBytesRecorder::<FullPrecisionSettings>::default()
        .load(bytes.to_vec(), device)
        .map_err(|e| {
            TrainError::model(
                format!("loading weights from {MODEL_ENTRY}"),
                format!("{e} (was the checkpoint saved from the same model architecture?)"),
            )
        })?;
    Ok(module.load_record(record))
}
