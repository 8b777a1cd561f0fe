/// Everything that can go wrong in air-train.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// A CUDA device was asked for but this build has no CUDA backend.
    #[error(
        "CUDA device {index} requested, but air-train was built without the `cuda` feature; \
         rebuild with `--features cuda` (or set `use_gpu = false` to train on the CPU)"
    )]
    CudaNotCompiled {
        /// The device index that was asked for.
        index: usize,
    },
}
