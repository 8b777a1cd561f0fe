//! [`BurnTrainer`]: Ray's `TorchTrainer` for burn.

use crate::{DataParallelTrainer, RunConfig, ScalingConfig, TrainLoop};

/// Ray's `TorchTrainer` for burn: a [`DataParallelTrainer`] labelled `"BurnTrainer"`, whose
/// workers build their model replica on [`Session::training_device`](crate::Session::training_device), start from rank 0's
/// weights with [`Session::sync_model`](crate::Session::sync_model) and average gradients with
/// [`Session::sync_gradients`](crate::Session::sync_gradients) (see the `train_tabular` example).
#[derive(Debug, Clone, Copy)]
pub struct BurnTrainer;

impl BurnTrainer {
    /// A data-parallel trainer for a burn train loop.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(
        train_loop: impl TrainLoop,
        scaling: ScalingConfig,
        run: RunConfig,
    ) -> DataParallelTrainer {
        DataParallelTrainer::new(train_loop, scaling, run).with_name("BurnTrainer")
    }
}
