//! The burn device of a [`ComputeDevice`], and [`Backend`]: the one concrete burn backend.

use ::burn::DispatchDevice;

use crate::{ComputeDevice, TrainError};

/// The one concrete burn backend of the workspace; the device picks CPU or GPU at run time.
pub type Backend = ::burn::Dispatch;

impl ComputeDevice {
    /// The plain (inference) burn device (feature `burn`).
    pub fn inference_device(self) -> Result<DispatchDevice, TrainError> {
        match self {
            Self::Cpu => Ok(DispatchDevice::Flex(Default::default())),
            Self::Cuda { index } => cuda_device(index),
        }
    }

    /// The autodiff-enabled burn device used for training (feature `burn`).
    pub fn training_device(self) -> Result<DispatchDevice, TrainError> {
        self.inference_device().map(DispatchDevice::autodiff)
    }
}

#[cfg(feature = "cuda")]
fn cuda_device(index: usize) -> Result<DispatchDevice, TrainError> {
    Ok(DispatchDevice::Cuda(
        ::burn::backend::cuda::CudaDevice::new(index),
    ))
}

#[cfg(not(feature = "cuda"))]
fn cuda_device(index: usize) -> Result<DispatchDevice, TrainError> {
    Err(TrainError::CudaNotCompiled { index })
}

/// Runs one tensor operation on CUDA device `index`: a device that is absent, or whose driver
/// cannot be loaded, is [`TrainError::GpuUnavailable`] (burn panics there).
#[cfg(feature = "cuda")]
pub(crate) fn check_cuda(index: usize) -> Result<(), TrainError> {
    let device = cuda_device(index)?;
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        ::burn::tensor::Tensor::<Backend, 1>::zeros([1], &device).into_data()
    }))
    .map(|_| ())
    .map_err(|payload| TrainError::GpuUnavailable {
        index,
        reason: payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "the CUDA runtime panicked".to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_devices_are_flex() {
        let plain = ComputeDevice::Cpu.inference_device().unwrap();
        assert!(matches!(plain, DispatchDevice::Flex(_)));
        let train = ComputeDevice::Cpu.training_device().unwrap();
        assert!(matches!(train, DispatchDevice::Autodiff(_)));
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_device_without_feature_is_a_clear_error() {
        let err = ComputeDevice::Cuda { index: 2 }
            .training_device()
            .unwrap_err();
        assert!(err.to_string().contains("--features cuda"), "{err}");
    }
}
