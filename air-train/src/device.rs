//! [`ComputeDevice`]: where a worker computes, chosen at run time.

use crate::TrainError;

/// Where a worker computes, chosen at run time.
///
/// This replaces burn's `DispatchDevice::default()`, which silently picks CUDA whenever the
/// `cuda` feature is compiled in: here the choice is explicit and a GPU that this build cannot
/// use is an error, never a quiet CPU fallback. With the `burn` feature,
/// `inference_device`/`training_device` turn it into a burn device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ComputeDevice {
    /// The CPU (burn's pure-Rust flex backend for burn models).
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

    /// Checks that the device can run work: a CUDA device that this build cannot use (no
    /// `cuda` feature), that is absent, or whose driver cannot be loaded is
    /// [`TrainError::CudaNotCompiled`] or [`TrainError::GpuUnavailable`] naming it, not a
    /// panic inside a worker.
    pub fn check_available(self) -> Result<(), TrainError> {
        match self {
            Self::Cpu => Ok(()),
            Self::Cuda { index } => check_cuda(index),
        }
    }
}

#[cfg(feature = "cuda")]
fn check_cuda(index: usize) -> Result<(), TrainError> {
    crate::burn::check_cuda(index)
}

#[cfg(not(feature = "cuda"))]
fn check_cuda(index: usize) -> Result<(), TrainError> {
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

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_feature_is_a_clear_error() {
        let err = ComputeDevice::Cuda { index: 2 }
            .check_available()
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("CUDA device 2") && msg.contains("--features cuda"),
            "{msg}"
        );
    }
}
