//! The `Tuner` builder: what to tune, over which space, with which search, scheduling and
//! storage; [`Tuner::fit`] hands it to the run loop ([`runner`]), and [`Tuner::restore`]
//! continues a saved experiment ([`state`]).

mod processes;
mod runner;
mod state;
mod threads;

use std::sync::Arc;

use air_checkpoint::StorageOptions;
use air_train::{RunConfig, Trainable};

pub use processes::{ProcessLauncher, TRIAL_VARIABLE, TrialExecutor};
pub use state::EXPERIMENT_STATE;
use state::{SavedExperiment, default_storage, read_state};

use crate::{
    config::{IntoTrainable, TuneConfig},
    error::Result,
    result::ResultGrid,
    space::Space,
    stopper::Stopper,
};

/// Runs a trainable over a param space (Ray's `Tuner`).
///
/// Results go to the run config's storage path ([`with_run_config`](Self::with_run_config)
/// with [`RunConfig::new(path)`](air_train::RunConfig::new)); without one, to
/// `$AIR_STORAGE_PATH`, or `~/air_results` when that is unset. The experiment's first log line
/// (`tracing`, level info) says which folder it writes.
///
/// ```
/// use air_tune::{Mode, TuneConfig, Tuner, space, uniform};
/// use air_train::{RunConfig, Session};
///
/// let dir = tempfile::tempdir()?;
/// let objective = |config: &serde_json::Value, session: &mut Session| {
///     let x = config["x"].as_f64().unwrap_or(0.0);
///     session.report(serde_json::json!({ "loss": (x - 0.3).powi(2) }), None)
/// };
/// let grid = Tuner::new(objective, space!({ "x": uniform(0.0, 1.0) }))
///     .with_tune_config(TuneConfig::new().with_metric("loss", Mode::Min).with_num_samples(std::num::NonZeroUsize::new(8).unwrap()).with_seed(1))
///     .with_run_config(RunConfig::new(dir.path().to_str().unwrap()).with_name("doc"))
///     .fit()?;
/// assert_eq!(grid.len(), 8);
/// let best = grid.best_result()?;
/// assert!(best.metrics["loss"].as_f64().unwrap() < 0.05);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Tuner {
    trainable: Arc<dyn Trainable>,
    space: Arc<Space>,
    tune: TuneConfig,
    run: RunConfig,
    stopper: Option<Box<dyn Stopper>>,
    restored: Option<(String, SavedExperiment)>,
    resume_unfinished: bool,
    resume_errored: bool,
    restart_errored: bool,
    storage_options: StorageOptions,
}

impl std::fmt::Debug for Tuner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tuner")
            .field("trainable", &self.trainable.trainable_name())
            .field("tune", &self.tune)
            .field("run", &self.run)
            .field("restored", &self.restored.as_ref().map(|r| &r.0))
            .finish_non_exhaustive()
    }
}

impl Tuner {
    /// Tunes `trainable` (a trainer, or a closure with the session) over `param_space`.
    pub fn new<M>(trainable: impl IntoTrainable<M>, param_space: Space) -> Self {
        Self {
            trainable: trainable.into_trainable(),
            space: Arc::new(param_space),
            tune: TuneConfig::default(),
            run: RunConfig::new(default_storage()),
            stopper: None,
            restored: None,
            resume_unfinished: true,
            resume_errored: false,
            restart_errored: false,
            storage_options: StorageOptions::new(),
        }
    }

    /// How to search.
    pub fn with_tune_config(mut self, tune: TuneConfig) -> Self {
        self.tune = tune;
        self
    }

    /// Where the experiment goes (`storage_path`/`name`), its failure config (trials are
    /// retried from their latest checkpoint), stop dict (`metric ≥ value` stops a trial) and,
    /// when not the default, the checkpoint retention every trial uses instead of its
    /// trainer's (`num_to_keep`, score attribute).
    pub fn with_run_config(mut self, run: RunConfig) -> Self {
        self.run = run;
        self
    }

    /// A stopper (Ray's `RunConfig(stop=...)` with a `Stopper` or a callable).
    pub fn with_stopper(mut self, s: impl Stopper + 'static) -> Self {
        self.stopper = Some(Box::new(s));
        self
    }

    /// Credentials and retries for a URI storage path.
    pub fn with_storage_options(mut self, options: StorageOptions) -> Self {
        self.storage_options = options;
        self
    }

    /// Whether an experiment directory can be restored (it holds a readable state file).
    pub fn can_restore(path: &str) -> bool {
        read_state(path, &StorageOptions::new()).is_ok()
    }

    /// Continues the experiment saved at `path` (its directory, `storage_path/name`) with the
    /// same trainable and param space: finished trials keep their results, unfinished ones
    /// resume from their latest checkpoint, and the searcher and scheduler continue from their
    /// saved state. A searcher or scheduler other than the defaults must be passed again with
    /// [`Tuner::with_tune_config`] (its state is restored into it).
    pub fn restore<M>(
        path: &str,
        trainable: impl IntoTrainable<M>,
        param_space: Space,
    ) -> Result<Self> {
        let saved = read_state(path, &StorageOptions::new())?;
        let trainable = trainable.into_trainable();
        let tune = TuneConfig {
            metric: saved.metric.clone(),
            mode: saved.mode,
            num_samples: saved.num_samples,
            max_concurrent_trials: saved.max_concurrent_trials,
            seed: Some(saved.seed),
            ..TuneConfig::default()
        };
        let trimmed = path.trim_end_matches('/');
        let (parent, name) = match trimmed.rsplit_once('/') {
            Some((p, n)) => (p.to_owned(), n.to_owned()),
            None => (".".to_owned(), trimmed.to_owned()),
        };
        Ok(Self {
            trainable,
            space: Arc::new(param_space),
            tune,
            run: RunConfig::new(parent).with_name(&name),
            stopper: None,
            restored: Some((trimmed.to_owned(), saved)),
            resume_unfinished: true,
            resume_errored: false,
            restart_errored: false,
            storage_options: StorageOptions::new(),
        })
    }

    /// Resume trials that were pending, running or paused (default true; false ends them).
    pub fn with_resume_unfinished(mut self, on: bool) -> Self {
        self.resume_unfinished = on;
        self
    }

    /// Resume failed trials from their latest checkpoint (default false).
    pub fn with_resume_errored(mut self, on: bool) -> Self {
        self.resume_errored = on;
        self
    }

    /// Restart failed trials from scratch (default false).
    pub fn with_restart_errored(mut self, on: bool) -> Self {
        self.restart_errored = on;
        self
    }

    /// Runs the experiment to the end and returns every trial's result. `Err` only when it
    /// cannot start or its state cannot be saved; failing trials are in the grid.
    ///
    /// In a trial process of [`TrialExecutor::Processes`](crate::TrialExecutor::Processes)
    /// (started by the driver with `AIR_TUNE_TRIAL` set), `fit` runs that one trial and ends
    /// the process.
    pub fn fit(self) -> Result<ResultGrid> {
        if let Some(request) = processes::trial_request()? {
            processes::run_here(self.trainable.as_ref(), request, &self.storage_options);
        }
        runner::Runner::new(self)?.run()
    }
}
