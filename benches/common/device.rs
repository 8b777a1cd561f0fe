//! `--device` of the benchmark programs that can run on a GPU.

use air::train::ComputeDevice;

/// Where a benchmark computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Device {
    /// The flex CPU backend.
    Cpu,
    /// CUDA device 0 (needs `--features cuda`); one worker runs on it.
    Cuda,
}

impl Device {
    /// The device, checked: a CUDA device this build or machine cannot use is an error here,
    /// before any work starts.
    pub(crate) fn compute(self) -> anyhow::Result<ComputeDevice> {
        let device = match self {
            Self::Cpu => ComputeDevice::Cpu,
            Self::Cuda => ComputeDevice::Cuda { index: 0 },
        };
        device.check_available()?;
        Ok(device)
    }
}
