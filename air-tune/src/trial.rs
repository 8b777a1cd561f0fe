//! Trials as the tuner tracks them, and the read-only table schedulers look at.

use std::collections::{BTreeSet, HashMap};

use air_train::Resources;

use air_checkpoint::Checkpoint;
use air_train::Metrics;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where a trial is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TrialStatus {
    /// Waiting for resources or its turn.
    Pending,
    /// Running on a thread of the pool.
    Running,
    /// Stopped by its scheduler, to be resumed from its latest checkpoint.
    Paused,
    /// Finished, or stopped early on purpose.
    Terminated,
    /// Failed more often than the failure config allows.
    Error,
}

impl TrialStatus {
    /// Whether the trial will not run again.
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Terminated | Self::Error)
    }
}

/// What the scheduler asked of a running trial, carried out when its run returns.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Pending {
    Stop,
    Pause,
    Exploit { source: String, config: Value },
}

/// One trial: its config, status, results and checkpoints.
#[derive(Debug, Clone)]
pub struct Trial {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) config: Value,
    pub(crate) status: TrialStatus,
    pub(crate) history: Vec<Metrics>,
    /// The last result saved in the experiment state, for a restored trial whose metrics
    /// files are off (otherwise the history's last entry is the last result).
    pub(crate) saved_last_result: Option<Metrics>,
    pub(crate) num_failures: usize,
    pub(crate) error: Option<String>,
    pub(crate) path: String,
    pub(crate) resources: Resources,
    /// The newest checkpoint folder name reported (`checkpoint_000003`).
    pub(crate) checkpoint_dir: Option<String>,
    /// What to resume from when the trial next starts.
    pub(crate) resume: Option<Checkpoint>,
    pub(crate) latest_checkpoint: Option<Checkpoint>,
    pub(crate) best_checkpoints: Vec<(Checkpoint, Metrics)>,
    pub(crate) pending: Option<Pending>,
    /// Whether the trial has run before (its directory may hold old results).
    pub(crate) started_before: bool,
}

impl Trial {
    /// A new pending trial that has never run.
    pub(crate) fn new(
        id: String,
        name: String,
        config: Value,
        path: String,
        resources: Resources,
    ) -> Self {
        Self {
            id,
            name,
            config,
            status: TrialStatus::Pending,
            history: Vec::new(),
            saved_last_result: None,
            num_failures: 0,
            error: None,
            path,
            resources,
            checkpoint_dir: None,
            resume: None,
            latest_checkpoint: None,
            best_checkpoints: Vec::new(),
            pending: None,
            started_before: false,
        }
    }

    /// The trial id (`"a1b2c_00003"`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The trial's directory name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The sampled config.
    pub fn config(&self) -> &Value {
        &self.config
    }

    /// The status.
    pub fn status(&self) -> TrialStatus {
        self.status
    }

    /// Every result reported so far (including those of earlier runs, up to the checkpoint
    /// it resumed from).
    pub fn history(&self) -> &[Metrics] {
        &self.history
    }

    /// The latest result.
    pub fn last_result(&self) -> Option<&Metrics> {
        self.history.last().or(self.saved_last_result.as_ref())
    }

    /// How often the trial failed.
    pub fn num_failures(&self) -> usize {
        self.num_failures
    }

    /// The latest error message.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// Whether a checkpoint has been reported (schedulers that clone trials need one).
    pub fn has_checkpoint(&self) -> bool {
        self.checkpoint_dir.is_some() || self.latest_checkpoint.is_some()
    }

    /// The trial directory (path or URI).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The resources it reserves while running.
    pub fn resources(&self) -> &Resources {
        &self.resources
    }
}

/// Every trial of an experiment, in creation order.
#[derive(Debug, Default)]
pub struct TrialTable {
    pub(crate) trials: Vec<Trial>,
    pub(crate) index: HashMap<String, usize>,
    /// The trials pending or paused, in creation order: what a scheduler may start next,
    /// without a pass over every trial of a long sweep. Kept by [`Self::set_status`].
    waiting: BTreeSet<usize>,
}

impl TrialTable {
    /// The trial with id `id`.
    pub fn get(&self, id: &str) -> Option<&Trial> {
        self.index.get(id).map(|&i| &self.trials[i])
    }

    /// All trials in creation order.
    pub fn iter(&self) -> impl Iterator<Item = &Trial> {
        self.trials.iter()
    }

    /// How many trials there are.
    pub fn len(&self) -> usize {
        self.trials.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.trials.is_empty()
    }

    pub(crate) fn push(&mut self, t: Trial) -> usize {
        let i = self.trials.len();
        self.index.insert(t.id.clone(), i);
        if is_waiting(t.status) {
            self.waiting.insert(i);
        }
        self.trials.push(t);
        i
    }

    /// Sets trial `idx`'s status (the one way the runner changes it, so that the waiting
    /// trials stay known).
    pub(crate) fn set_status(&mut self, idx: usize, status: TrialStatus) {
        self.trials[idx].status = status;
        if is_waiting(status) {
            self.waiting.insert(idx);
        } else {
            self.waiting.remove(&idx);
        }
    }

    /// The trials pending or paused, in creation order.
    pub(crate) fn waiting(&self) -> impl Iterator<Item = usize> + '_ {
        self.waiting.iter().copied()
    }
}

/// Whether a trial in `status` waits to be started.
fn is_waiting(status: TrialStatus) -> bool {
    matches!(status, TrialStatus::Pending | TrialStatus::Paused)
}
