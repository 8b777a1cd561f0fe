//! [`BurnCollective`]: the [`Collective`] on burn-collective (feature `collective`).

use std::{fmt, sync::Mutex};

use ::burn::{
    collective::{
        CollectiveConfig, PeerId, ReduceOperation, all_reduce, broadcast, finish_collective,
        register, reset_collective,
    },
    tensor::{Tensor, TensorData, TensorPrimitive},
};

use super::Backend;
use crate::{Collective, TrainError};

/// The [`Collective`] on burn-collective 0.21's local server (feature `collective`): the
/// transport burn's orchestrator extends across processes and nodes.
///
/// Limits, from burn-collective itself: its server is one per process and backend (so one run
/// at a time uses it), and it has no abort — a worker that fails leaves its peers waiting in
/// the next operation, so runs that may fail should use [`LocalCollective`](crate::LocalCollective) (the default).
#[derive(Debug)]
pub struct BurnCollective {
    world_size: usize,
    device: ::burn::DispatchDevice,
    registered: Mutex<Vec<bool>>,
}

fn err(e: impl fmt::Debug) -> TrainError {
    TrainError::Collective(format!("burn-collective: {e:?}"))
}

impl BurnCollective {
    /// A collective for `world_size` ranks on the CPU device; resets burn's local server.
    pub fn new(world_size: usize) -> Self {
        reset_collective::<Backend>();
        Self {
            world_size: world_size.max(1),
            device: ::burn::DispatchDevice::Flex(Default::default()),
            registered: Mutex::new(vec![false; world_size.max(1)]),
        }
    }

    fn ensure_registered(&self, rank: usize) -> Result<(), TrainError> {
        let first = {
            let mut r = self.registered.lock().unwrap_or_else(|p| p.into_inner());
            !std::mem::replace(&mut r[rank], true)
        };
        if first {
            let config = CollectiveConfig::default().with_num_devices(self.world_size);
            register::<Backend>(PeerId::from(rank), self.device.clone(), config).map_err(err)?;
        }
        Ok(())
    }

    fn tensor(&self, values: &[f32]) -> Tensor<Backend, 1> {
        Tensor::from_data(
            TensorData::new(values.to_vec(), [values.len()]),
            &self.device,
        )
    }

    fn values(t: Tensor<Backend, 1>) -> Result<Vec<f32>, TrainError> {
        t.into_data().to_vec::<f32>().map_err(err)
    }
}

impl Collective for BurnCollective {
    fn world_size(&self) -> usize {
        self.world_size
    }

    fn all_reduce_mean(&self, rank: usize, values: &mut [f32]) -> Result<(), TrainError> {
        if self.world_size == 1 {
            return Ok(());
        }
        self.ensure_registered(rank)?;
        let t = self.tensor(values).into_primitive().tensor();
        let out =
            all_reduce::<Backend>(PeerId::from(rank), t, ReduceOperation::Mean).map_err(err)?;
        let out = Self::values(Tensor::from_primitive(TensorPrimitive::Float(out)))?;
        if out.len() != values.len() {
            return Err(TrainError::Collective(format!(
                "all-reduce returned {} values for {}",
                out.len(),
                values.len()
            )));
        }
        values.copy_from_slice(&out);
        Ok(())
    }

    fn all_reduce_sum_f64(&self, rank: usize, values: &mut [f64]) -> Result<(), TrainError> {
        if self.world_size == 1 {
            return Ok(());
        }
        self.ensure_registered(rank)?;
        // burn tensors here are f32: send each value as a high and a low f32 part, whose
        // sums recombine to about 48 bits of precision.
        let hi: Vec<f32> = values.iter().map(|v| *v as f32).collect();
        let lo: Vec<f32> = values
            .iter()
            .zip(&hi)
            .map(|(v, h)| (v - f64::from(*h)) as f32)
            .collect();
        let both: Vec<f32> = hi.into_iter().chain(lo).collect();
        let t = self.tensor(&both).into_primitive().tensor();
        let out =
            all_reduce::<Backend>(PeerId::from(rank), t, ReduceOperation::Sum).map_err(err)?;
        let out = Self::values(Tensor::from_primitive(TensorPrimitive::Float(out)))?;
        let n = values.len();
        for (i, v) in values.iter_mut().enumerate() {
            *v = f64::from(out[i]) + f64::from(out[n + i]);
        }
        Ok(())
    }

    fn broadcast(&self, rank: usize, root: usize, values: &mut Vec<f32>) -> Result<(), TrainError> {
        if self.world_size == 1 {
            return Ok(());
        }
        self.ensure_registered(rank)?;
        let mine = (rank == root).then(|| self.tensor(values).into_primitive().tensor());
        let out = broadcast::<Backend>(PeerId::from(rank), mine).map_err(err)?;
        *values = Self::values(Tensor::from_primitive(TensorPrimitive::Float(out)))?;
        Ok(())
    }

    fn barrier(&self, rank: usize) -> Result<(), TrainError> {
        self.all_reduce_mean(rank, &mut [0.0])
    }

    fn finish(&self, rank: usize) -> Result<(), TrainError> {
        if self.world_size == 1 {
            return Ok(());
        }
        self.barrier(rank)?;
        finish_collective::<Backend>(PeerId::from(rank)).map_err(err)
    }

    fn abort(&self, reason: &str) {
        tracing::error!(
            reason,
            "a worker failed; burn-collective cannot release its peers (use LocalCollective \
             for runs that may fail)"
        );
    }
}
