//! What every trainer and trainable implements, and what a tuner tells a trial.

use std::{fmt, sync::Arc};

use air_checkpoint::Checkpoint;
use air_data::polars::prelude::DataFrame;
use serde_json::Value;

use crate::{Resources, TrainError, error::Result, run::Metrics, session::Session};

/// Called with every recorded report of a trial; returning `false` stops the trial (how a
/// tuning scheduler stops unpromising trials early).
pub type ReportHook = Arc<dyn Fn(&Metrics) -> bool + Send + Sync>;

/// What a tuner tells a trainable about the trial it runs.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct TrialInfo {
    /// The trial's name (its directory name under the storage path).
    pub name: Option<String>,
    /// The trial's id.
    pub id: Option<String>,
    /// Overrides the run config's storage path.
    pub storage_path: Option<String>,
    /// Sees every report; `false` stops the trial.
    pub on_report: Option<ReportHook>,
    /// Continues an earlier run of this trial (paused, or cut off by a crash) from this
    /// checkpoint, in the same trial directory: the metrics log keeps the reports up to the
    /// checkpoint's iteration and new checkpoints are numbered after the existing ones.
    pub resume_from: Option<Checkpoint>,
    /// Writes no `result.json` / `progress.csv` (a tuner with its loggers off); checkpoints
    /// and `params.json` are still written.
    pub no_result_files: bool,
    /// Writes the result files through these shared, batched loggers (a tuner's, flushed
    /// before it saves its state) instead of one row at a time.
    pub batched_result_files: Option<crate::ResultFiles>,
    /// Shows no per-run progress bar (a tuner draws its own status table).
    pub quiet: bool,
    /// Overrides the run config's checkpoint retention (a tuner's run config wins over the
    /// trainer's, as in Ray).
    pub checkpoint_config: Option<crate::CheckpointConfig>,
}

impl fmt::Debug for TrialInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrialInfo")
            .field("name", &self.name)
            .field("id", &self.id)
            .field("storage_path", &self.storage_path)
            .field("on_report", &self.on_report.is_some())
            .field("resume_from", &self.resume_from.is_some())
            .field("no_result_files", &self.no_result_files)
            .field("batched_result_files", &self.batched_result_files.is_some())
            .field("quiet", &self.quiet)
            .field("checkpoint_config", &self.checkpoint_config)
            .finish()
    }
}

impl TrialInfo {
    /// A trial named `name` with id `id`.
    pub fn new(name: &str, id: &str) -> Self {
        Self {
            name: Some(name.to_owned()),
            id: Some(id.to_owned()),
            ..Self::default()
        }
    }

    /// Stores the trial under `storage_path`.
    pub fn with_storage_path(mut self, storage_path: &str) -> Self {
        self.storage_path = Some(storage_path.to_owned());
        self
    }

    /// Calls `hook` with every report; `false` stops the trial.
    pub fn with_on_report(
        mut self,
        hook: impl Fn(&Metrics) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.on_report = Some(Arc::new(hook));
        self
    }

    /// Continues this trial from `checkpoint` (see [`TrialInfo::resume_from`]).
    pub fn with_resume_from(mut self, checkpoint: Option<Checkpoint>) -> Self {
        self.resume_from = checkpoint;
        self
    }

    /// Turns the per-trial `result.json` / `progress.csv` files off (`false`) or on.
    pub fn with_result_files(mut self, write: bool) -> Self {
        self.no_result_files = !write;
        self
    }

    /// Writes the result files through `files` (batched, shared with other trials) instead
    /// of row by row; the caller flushes them ([`ResultFiles::flush`](crate::ResultFiles::flush)).
    pub fn with_batched_result_files(mut self, files: Option<crate::ResultFiles>) -> Self {
        self.batched_result_files = files;
        self
    }

    /// Hides the per-run progress bar.
    pub fn with_quiet(mut self, quiet: bool) -> Self {
        self.quiet = quiet;
        self
    }

    /// Keeps checkpoints by `config` instead of the run config's.
    pub fn with_checkpoint_config(mut self, config: Option<crate::CheckpointConfig>) -> Self {
        self.checkpoint_config = config;
        self
    }
}

/// The outcome of a run (Ray's `Result`).
#[derive(Debug)]
#[non_exhaustive]
pub struct TrainResult {
    /// The last reported metrics, auto-filled keys included.
    pub metrics: Metrics,
    /// The latest checkpoint.
    pub checkpoint: Option<Checkpoint>,
    /// Why the run failed, if it did.
    pub error: Option<TrainError>,
    /// The run's directory (a local path or a URI).
    pub path: String,
    /// Every report, in order (a resumed run's kept reports first); as a frame,
    /// [`Self::metrics_dataframe`].
    pub history: Vec<Metrics>,
    /// The kept checkpoints with their metrics, best first (by the score attribute, else
    /// newest first).
    pub best_checkpoints: Vec<(Checkpoint, Metrics)>,
    /// The trial config the run used (`{}` outside a tuner).
    pub config: Value,
}

impl TrainResult {
    /// The result of a trial that failed before it ran (a config that does not apply, say):
    /// no metrics, no checkpoint, `error` set.
    pub fn failed(error: TrainError, config: Value) -> Self {
        Self {
            metrics: Metrics::new(),
            checkpoint: None,
            error: Some(error),
            path: String::new(),
            history: Vec::new(),
            best_checkpoints: Vec::new(),
            config,
        }
    }

    /// Every report as a polars frame (Ray's `Result.metrics_dataframe`): one row per
    /// report, one column per key, nested values as their JSON text. Built when asked: a
    /// sweep of many small trials does not pay for frames nobody reads.
    pub fn metrics_dataframe(&self) -> Result<DataFrame> {
        crate::run::metrics_frame(&self.history)
    }

    /// `Err` with the run's error if it failed, else the result.
    pub fn into_result(self) -> Result<Self> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self),
        }
    }
}

/// Something that trains and returns a [`TrainResult`] (Ray's `BaseTrainer`).
pub trait Trainer {
    /// Runs training. `Err` means the run could not start (bad config, missing data, storage
    /// unwritable); a run that started and failed returns `Ok` with [`TrainResult::error`] set
    /// (use [`TrainResult::into_result`] to turn that into `Err`).
    fn fit(&self) -> Result<TrainResult>;
}

/// What a tuner runs: a trainer that takes a JSON trial config merged into its own config.
pub trait Trainable: Send + Sync + fmt::Debug {
    /// The name trials are labelled with.
    fn trainable_name(&self) -> &str;

    /// Runs one trial with `config` merged in; every failure is in [`TrainResult::error`].
    fn run_trial(&self, config: &Value, trial: &TrialInfo) -> TrainResult;

    /// What one trial with `config` reserves while it runs (1 CPU unless the trainable says
    /// otherwise; a data-parallel trainer reserves its scaling config's total).
    fn resources(&self, config: &Value) -> Resources {
        let _ = config;
        Resources::cpu(1.0)
    }
}

/// The error a train loop returns.
pub type LoopError = Box<dyn std::error::Error + Send + Sync>;

/// A per-worker train loop: any `Fn(&serde_json::Value, &mut Session) -> Result<(), E>`.
pub trait TrainLoop: Send + Sync + 'static {
    /// Trains, reporting through `session`.
    fn run(&self, config: &Value, session: &mut Session) -> Result<(), LoopError>;
}

impl<F, E> TrainLoop for F
where
    F: Fn(&Value, &mut Session) -> Result<(), E> + Send + Sync + 'static,
    E: Into<LoopError>,
{
    fn run(&self, config: &Value, session: &mut Session) -> Result<(), LoopError> {
        self(config, session).map_err(Into::into)
    }
}
