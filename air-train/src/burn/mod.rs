//! Deep learning on [burn] 0.21 (feature `burn`; Ray's `TorchTrainer`/`TorchPredictor`).
//!
//! This module re-exports the whole `burn` crate the workspace is pinned to (so users name the
//! same types, and burn's derive macros find `burn::...` through `use air_train::burn;`), next
//! to the training integration:
//!
//! - [`Backend`]: the one concrete backend, [`::burn::Dispatch`], with the device chosen at run
//!   time from a [`ComputeDevice`](crate::ComputeDevice) (`inference_device`,
//!   `training_device`; CUDA with the `cuda` feature).
//! - [`BurnTrainer`]: a [`DataParallelTrainer`](crate::DataParallelTrainer) whose workers call
//!   [`Session::training_device`](crate::Session::training_device),
//!   [`Session::sync_model`](crate::Session::sync_model) and
//!   [`Session::sync_gradients`](crate::Session::sync_gradients).
//! - [`save_model`]/[`load_model`]: weights in a checkpoint; [`BurnPredictor`] rebuilds a model
//!   from a [`ModelConfig`] saved with [`save_burn_model`].
//! - [`BurnCollective`] (feature `collective`): gradient all-reduce through burn-collective.
//!
//! ```
//! use air_train::{ComputeDevice, burn::{Backend, tensor::Tensor}};
//!
//! // Train on the CPU: an autodiff-enabled flex device, never `DispatchDevice::default()`.
//! let device = ComputeDevice::Cpu.training_device()?;
//! let x = Tensor::<Backend, 1>::from_floats([1.0, 2.0, 3.0], &device).require_grad();
//! let grads = (x.clone() * x.clone()).sum().backward();
//! let dx = x.grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap();
//! assert_eq!(dx, vec![2.0, 4.0, 6.0]);
//! # Ok::<(), air_train::TrainError>(())
//! ```

#[cfg(feature = "collective")]
mod all_reduce;
mod backend_device;
mod predictor;
mod sync;
mod trainer;
mod weights;

pub use ::burn::*;

#[cfg(feature = "collective")]
pub use all_reduce::BurnCollective;
pub use backend_device::Backend;
#[cfg(feature = "cuda")]
pub(crate) use backend_device::check_cuda;
pub use predictor::{
    BurnPredictor, MODEL_CONFIG_ENTRY, ModelConfig, PREDICTOR_KIND, save_burn_model,
};
pub use trainer::BurnTrainer;
pub use weights::{MODEL_ENTRY, load_model, save_model};
