use burn::DispatchDevice;

use crate::TrainError;

/// The one concrete burn backend of the workspace; the device picks CPU or GPU at run time.
pub type Backend = burn::Dispatch;

/// Where a worker computes, chosen at run time.
///
/// This replaces `DispatchDevice::default()`, which silently picks CUDA whenever the `cuda`
/// feature is compiled in: here the choice is explicit and a GPU that this build cannot use is
/// an error, never a quiet CPU fallback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ComputeDevice {
    /// The pure-Rust flex CPU backend.
    Cpu,
    /// CUDA device number `index` (needs the `cuda` feature).
    Cuda {
        /// The CUDA ordinal of the device.
        index: usize,
    },
}

impl ComputeDevice {
    /// The device of worker `local_rank`: CUDA device `local_rank` when `use_gpu`, else CPU.
    pub fn for_worker(use_gpu: bool, local_rank: usize) -> Self {
        if use_gpu {
            Self::Cuda { index: local_rank }
        } else {
            Self::Cpu
        }
    }

    /// The plain (inference) burn device.
    pub fn inference_device(self) -> Result<DispatchDevice, TrainError> {
        match self {
            Self::Cpu => Ok(DispatchDevice::Flex(Default::default())),
            Self::Cuda { index } => cuda_device(index),
        }
    }

    /// Checks that the device can run a tensor operation: a CUDA device that is absent, or
    /// whose driver cannot be loaded, is [`TrainError::GpuUnavailable`] naming it, not a panic
    /// inside a worker.
    pub fn check_available(self) -> Result<(), TrainError> {
        let device = self.inference_device()?;
        let Self::Cuda { index } = self else {
            return Ok(());
        };
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            burn::tensor::Tensor::<Backend, 1>::zeros([1], &device).into_data()
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

    /// The autodiff-enabled burn device used for training.
    pub fn training_device(self) -> Result<DispatchDevice, TrainError> {
        self.inference_device().map(DispatchDevice::autodiff)
    }
}

#[cfg(feature = "cuda")]
fn cuda_device(index: usize) -> Result<DispatchDevice, TrainError> {
    Ok(DispatchDevice::Cuda(burn::backend::cuda::CudaDevice::new(
        index,
    )))
}

#[cfg(not(feature = "cuda"))]
fn cuda_device(index: usize) -> Result<DispatchDevice, TrainError> {
    Err(TrainError::CudaNotCompiled { index })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_get_cpu_unless_gpu_requested() {
        assert_eq!(ComputeDevice::for_worker(false, 3), ComputeDevice::Cpu);
        assert_eq!(
            ComputeDevice::for_worker(true, 1),
            ComputeDevice::Cuda { index: 1 }
        );
    }

    #[test]
    fn cpu_devices_are_flex() {
        let plain = ComputeDevice::Cpu.inference_device().unwrap();
        assert!(matches!(plain, DispatchDevice::Flex(_)));
        let train = ComputeDevice::Cpu.training_device().unwrap();
        assert!(matches!(train, DispatchDevice::Autodiff(_)));
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_feature_is_a_clear_error() {
        let err = ComputeDevice::Cuda { index: 2 }
            .training_device()
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("CUDA device 2") && msg.contains("--features cuda"),
            "{msg}"
        );
    }
}
