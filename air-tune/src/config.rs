//! `TuneConfig`, `Mode`, and how closures and trainers become trainables.

use std::{fmt, num::NonZeroUsize, sync::Arc, time::Duration};

use air_data::Dataset;
use air_train::{
    DataParallelTrainer, DatasetsToSplit, LoopError, RunConfig, ScalingConfig, Session,
    TrainResult, Trainable, TrialInfo,
};
use serde_json::{Value, json};

use crate::{
    error::{Result, invalid},
    schedule::TrialScheduler,
    search::Searcher,
};

/// Whether lower or higher values of the metric are better: the same enum a run's
/// [`CheckpointConfig`](air_train::CheckpointConfig) ranks checkpoints with.
pub use air_train::Mode;

pub use air_train::Resources;

/// How the experiment searches (Ray's `TuneConfig`).
pub struct TuneConfig {
    pub(crate) metric: Option<String>,
    pub(crate) mode: Option<Mode>,
    pub(crate) num_samples: usize,
    pub(crate) max_concurrent_trials: Option<usize>,
    pub(crate) search_alg: Option<Box<dyn Searcher>>,
    pub(crate) scheduler: Option<Box<dyn TrialScheduler>>,
    pub(crate) time_budget: Option<Duration>,
    pub(crate) seed: Option<u64>,
    pub(crate) total_resources: Option<Resources>,
    pub(crate) resources_per_trial: Option<Resources>,
    pub(crate) result_files: bool,
    pub(crate) state_period: Option<Duration>,
    pub(crate) executor: crate::TrialExecutor,
}

impl fmt::Debug for TuneConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TuneConfig")
            .field("metric", &self.metric)
            .field("mode", &self.mode)
            .field("num_samples", &self.num_samples)
            .field("max_concurrent_trials", &self.max_concurrent_trials)
            .field("search_alg", &self.search_alg.as_ref().map(|s| s.name()))
            .field("scheduler", &self.scheduler.as_ref().map(|s| s.name()))
            .field("time_budget", &self.time_budget)
            .field("seed", &self.seed)
            .field("executor", &self.executor)
            .finish_non_exhaustive()
    }
}

impl Default for TuneConfig {
    /// Ray's defaults: one sample, random/grid search, FIFO, no metric.
    fn default() -> Self {
        Self {
            metric: None,
            mode: None,
            num_samples: 1,
            max_concurrent_trials: None,
            search_alg: None,
            scheduler: None,
            time_budget: None,
            seed: None,
            total_resources: None,
            resources_per_trial: None,
            result_files: true,
            state_period: None,
            executor: crate::TrialExecutor::Threads,
        }
    }
}

impl TuneConfig {
    /// Ray's defaults (see [`Default`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// The metric searchers and schedulers optimise, and the default of
    /// [`crate::ResultGrid::best_result`].
    pub fn with_metric(mut self, metric: &str, mode: Mode) -> Self {
        self.metric = Some(metric.to_owned());
        self.mode = Some(mode);
        self
    }

    /// Samples per grid point (with a model-based searcher, the number of trials).
    pub fn with_num_samples(mut self, n: NonZeroUsize) -> Self {
        self.num_samples = n.get();
        self
    }

    /// At most this many trials run at once (default: as many as resources allow).
    pub fn with_max_concurrent_trials(mut self, n: NonZeroUsize) -> Self {
        self.max_concurrent_trials = Some(n.get());
        self
    }

    /// The searcher (default: [`crate::BasicVariantGenerator`]).
    pub fn with_search_alg(mut self, s: impl Searcher + 'static) -> Self {
        self.search_alg = Some(Box::new(s));
        self
    }

    /// The scheduler (default: [`crate::Fifo`]).
    pub fn with_scheduler(mut self, s: impl TrialScheduler + 'static) -> Self {
        self.scheduler = Some(Box::new(s));
        self
    }

    /// Stops every trial once the experiment has run this long (trials stop at their next
    /// report).
    pub fn with_time_budget(mut self, budget: Duration) -> Self {
        self.time_budget = Some(budget);
        self
    }

    /// Makes sampling reproducible (otherwise a seed is drawn and saved with the experiment).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// What the pool has (default: the machine's cores, no GPU).
    pub fn with_total_resources(mut self, r: Resources) -> Self {
        self.total_resources = Some(r);
        self
    }

    /// What each trial reserves, overriding the trainable's own (Ray's `tune.with_resources`).
    pub fn with_resources_per_trial(mut self, r: Resources) -> Self {
        self.resources_per_trial = Some(r);
        self
    }

    /// Whether trials write `result.json` and `progress.csv` (Ray's CSV and JSON loggers;
    /// default true).
    pub fn with_result_files(mut self, on: bool) -> Self {
        self.result_files = on;
        self
    }

    /// Where trials run: threads of this process (the default) or a process each, started
    /// locally, as Slurm job steps or as Kubernetes pods ([`TrialExecutor::Processes`](crate::TrialExecutor::Processes)).
    pub fn with_executor(mut self, executor: crate::TrialExecutor) -> Self {
        self.executor = executor;
        self
    }

    /// How often the experiment state is saved at most (default: adaptive, so that saving
    /// takes about 5% of the time).
    pub fn with_state_save_period(mut self, period: Duration) -> Self {
        self.state_period = Some(period);
        self
    }

    /// Checks what the setters could not: resources that are finite and not negative, a
    /// non-empty metric, periods and budgets above zero. [`crate::Tuner::fit`] calls it once.
    pub fn validate(&self) -> Result<()> {
        if let Some(r) = &self.total_resources {
            check_resources("total_resources", r)?;
        }
        if let Some(r) = &self.resources_per_trial {
            check_resources("resources_per_trial", r)?;
        }
        if self.metric.as_deref() == Some("") {
            return Err(invalid("metric", "\"\"", "a reported metric name"));
        }
        for (field, d) in [
            ("time_budget", self.time_budget),
            ("state_save_period", self.state_period),
        ] {
            if d == Some(Duration::ZERO) {
                return Err(invalid(field, "0 s", "a duration above zero, or none"));
            }
        }
        Ok(())
    }
}

fn check_resources(field: &'static str, r: &Resources) -> Result<()> {
    r.validate(field).map_err(|e| match e {
        air_train::TrainError::InvalidConfig {
            value, expected, ..
        } => invalid(field, value, &expected),
        other => other.into(),
    })
}

/// Anything a [`crate::Tuner`] can run: a trainer of air-train, an `Arc<dyn Trainable>`, or a
/// closure `Fn(&Value, &mut Session) -> Result<(), E>` that reports through the session.
pub trait IntoTrainable<M> {
    /// The trainable.
    fn into_trainable(self) -> Arc<dyn Trainable>;
}

/// Marker for [`IntoTrainable`] on trainers.
#[derive(Debug)]
pub enum TrainerMarker {}

/// Marker for [`IntoTrainable`] on closures.
#[derive(Debug)]
pub enum FunctionMarker {}

impl<T: Trainable + 'static> IntoTrainable<TrainerMarker> for T {
    fn into_trainable(self) -> Arc<dyn Trainable> {
        Arc::new(self)
    }
}

impl IntoTrainable<()> for Arc<dyn Trainable> {
    fn into_trainable(self) -> Arc<dyn Trainable> {
        self
    }
}

impl<F, E> IntoTrainable<(FunctionMarker, E)> for F
where
    F: Fn(&Value, &mut Session) -> std::result::Result<(), E> + Send + Sync + 'static,
    E: Into<LoopError>,
{
    fn into_trainable(self) -> Arc<dyn Trainable> {
        Arc::new(FunctionTrainable::new(self))
    }
}

/// A closure as a trainable (Ray's function trainable): it gets the trial config and a
/// one-worker session to `report` through; with [`FunctionTrainable::with_dataset`] (Ray's
/// `tune.with_parameters`) every trial shares the dataset, unsplit and uncopied.
#[derive(Debug, Clone)]
pub struct FunctionTrainable {
    inner: DataParallelTrainer,
    resources: Resources,
}

impl FunctionTrainable {
    /// Wraps `f`.
    pub fn new<F, E>(f: F) -> Self
    where
        F: Fn(&Value, &mut Session) -> std::result::Result<(), E> + Send + Sync + 'static,
        E: Into<LoopError>,
    {
        let scaling = ScalingConfig::new(NonZeroUsize::MIN);
        let run = RunConfig::new(std::env::temp_dir().display().to_string());
        Self {
            inner: DataParallelTrainer::new(f, scaling, run)
                .with_name("trainable")
                .with_datasets_to_split(DatasetsToSplit::Only(Vec::new())),
            resources: Resources::cpu(1.0),
        }
    }

    /// Gives every trial dataset `name` (through `session.get_dataset_shard(name)`).
    pub fn with_dataset(mut self, name: &str, ds: Dataset) -> Self {
        self.inner = self.inner.with_dataset(name, ds);
        self
    }

    /// The label trials are named with.
    pub fn with_name(mut self, name: &str) -> Self {
        self.inner = self.inner.with_name(name);
        self
    }

    /// What each trial reserves (default 1 CPU).
    pub fn with_resources(mut self, r: Resources) -> Result<Self> {
        check_resources("resources", &r)?;
        self.resources = r;
        Ok(self)
    }
}

impl Trainable for FunctionTrainable {
    fn trainable_name(&self) -> &str {
        self.inner.trainable_name()
    }

    fn run_trial(&self, config: &Value, trial: &TrialInfo) -> TrainResult {
        let mut r = self
            .inner
            .run_trial(&json!({ "train_loop_config": config }), trial);
        r.config = config.clone();
        r
    }

    fn resources(&self, _config: &Value) -> Resources {
        self.resources.clone()
    }
}
