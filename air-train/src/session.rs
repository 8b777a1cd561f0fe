//! The session a train loop receives: its rank, device, dataset shards, the checkpoint to
//! resume from, `report`, and the collective that keeps workers in lockstep.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use air_checkpoint::Checkpoint;
use air_data::Dataset;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{
    Collective, ComputeDevice, TrainError,
    error::Result,
    run::{Decision, Metrics, Recorder},
};

/// State shared by the workers of one attempt.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) collective: Arc<dyn Collective>,
    pub(crate) recorder: Arc<Mutex<Recorder>>,
    pub(crate) stop: Mutex<Option<TrainError>>,
    /// Set by the first worker that fails: later failures are its consequences (peers released
    /// from a collective wait), reported as secondary.
    pub(crate) failed: std::sync::atomic::AtomicBool,
}

/// What a worker's train loop can see and do (Ray's `session` / `train.get_context()`).
#[derive(Debug)]
pub struct Session {
    pub(crate) rank: usize,
    pub(crate) local_rank: usize,
    pub(crate) world_size: usize,
    pub(crate) device: ComputeDevice,
    pub(crate) config: Value,
    pub(crate) trial_name: String,
    pub(crate) trial_id: String,
    pub(crate) shards: BTreeMap<String, Dataset>,
    pub(crate) checkpoint: Option<Checkpoint>,
    pub(crate) shared: Arc<Shared>,
    /// Whether `report` has told this worker to stop: an error its loop returns afterwards is
    /// that stop, however the loop wrapped it.
    pub(crate) stop_delivered: bool,
}

impl Session {
    /// Reports metrics (a JSON object; `{}` or `null` is fine) and optionally a checkpoint.
    ///
    /// Every worker must call `report` equally often: it is a barrier that keeps them in
    /// lockstep. Rank 0's metrics and checkpoint are recorded (with `training_iteration`,
    /// `time_this_iter_s`, `time_total_s`, `timestamp` added); other ranks' are ignored. Once
    /// the run's stop condition is met every worker gets [`TrainError::Stopped`] here: return it
    /// (`?`) and the run ends successfully.
    pub fn report(&mut self, metrics: Value, checkpoint: Option<Checkpoint>) -> Result<()> {
        let metrics: Metrics = match metrics {
            Value::Object(m) => m,
            Value::Null => Metrics::new(),
            other => {
                return Err(TrainError::InvalidMetrics {
                    metrics: other.to_string(),
                    reason: "expected a JSON object such as {\"loss\": 0.5}".to_owned(),
                });
            }
        };
        // Rank 0 records and decides; its decision travels in the round every rank joins, so
        // each rank acts on this report's decision, never on a later one.
        let mut stop = Vec::new();
        if self.rank == 0 {
            let decision = self
                .shared
                .recorder
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .record(metrics, checkpoint)?;
            let stopping = matches!(decision, Decision::Stop(_));
            if let Decision::Stop(reason) = decision {
                *self.shared.stop.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some(TrainError::Stopped { reason });
            }
            stop.push(if stopping { 1.0 } else { 0.0 });
        }
        self.shared.collective.broadcast(self.rank, 0, &mut stop)?;
        if stop.first() == Some(&1.0) {
            let reason = match &*self.shared.stop.lock().unwrap_or_else(|p| p.into_inner()) {
                Some(TrainError::Stopped { reason }) => reason.clone(),
                _ => "stopped by rank 0".to_owned(),
            };
            self.stop_delivered = true;
            return Err(TrainError::Stopped { reason });
        }
        Ok(())
    }

    /// The checkpoint to resume from: the latest of this run after a restart, or the trainer's
    /// `resume_from_checkpoint`.
    pub fn get_checkpoint(&self) -> Option<&Checkpoint> {
        self.checkpoint.as_ref()
    }

    /// This worker's shard of dataset `name` (preprocessed; split datasets are cut into
    /// `world_size` equal parts).
    pub fn get_dataset_shard(&self, name: &str) -> Result<&Dataset> {
        self.shards
            .get(name)
            .ok_or_else(|| TrainError::DatasetNotFound {
                name: name.to_owned(),
                known: self.shards.keys().cloned().collect(),
            })
    }

    /// The names of the datasets this worker has.
    pub fn dataset_names(&self) -> Vec<String> {
        self.shards.keys().cloned().collect()
    }

    /// The worker's rank among all workers (0 records results).
    pub fn world_rank(&self) -> usize {
        self.rank
    }

    /// The worker's rank on this machine (its GPU index with `use_gpu`).
    pub fn local_rank(&self) -> usize {
        self.local_rank
    }

    /// The number of workers.
    pub fn world_size(&self) -> usize {
        self.world_size
    }

    /// Where this worker computes.
    pub fn device(&self) -> ComputeDevice {
        self.device
    }

    /// The trial's name (the run name outside a tuner).
    pub fn trial_name(&self) -> &str {
        &self.trial_name
    }

    /// The trial's id.
    pub fn trial_id(&self) -> &str {
        &self.trial_id
    }

    /// The train loop config (after a tuner's trial config is merged in).
    pub fn config(&self) -> &Value {
        &self.config
    }

    /// The train loop config as a typed struct.
    pub fn config_as<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_value(self.config.clone()).map_err(|e| TrainError::InvalidConfig {
            field: "train_loop_config",
            value: self.config.to_string(),
            expected: format!("the train loop's config type ({e})"),
        })
    }

    /// The collective shared with the other workers.
    pub fn collective(&self) -> &dyn Collective {
        self.shared.collective.as_ref()
    }

    /// The collective, as a handle that outlives borrows of the session.
    pub fn collective_handle(&self) -> Arc<dyn Collective> {
        self.shared.collective.clone()
    }
}
