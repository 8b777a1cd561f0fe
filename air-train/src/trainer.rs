//! The [`DataParallelTrainer`]: its builder here; the traits every trainer and trainable
//! implements in [`traits`], dataset preparation and sharding in [`prepare`], what a run
//! starts from (and, across processes, what rank 0 tells the others) in [`setup`], trial
//! configs merged into the trainer's in [`trial_config`], and a run's attempts and worker
//! threads in [`workers`].

mod prepare;
mod setup;
mod traits;
mod trial_config;
mod workers;

use std::{
    collections::BTreeMap,
    fmt,
    sync::{Arc, Mutex, OnceLock},
};

use air_checkpoint::{Checkpoint, StorageOptions};
use air_data::{Dataset, Preprocessor};
use serde_json::Value;

use crate::{Resources, RunConfig, ScalingConfig, error::Result};

use prepare::Prepared;
pub use traits::{LoopError, ReportHook, TrainLoop, TrainResult, Trainable, Trainer, TrialInfo};
pub use trial_config::merge_json;
#[cfg(any(feature = "gbdt", feature = "sklearn"))]
pub(crate) use trial_config::scaling_part;

/// Which [`Collective`](crate::Collective) the workers of a run share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CollectiveBackend {
    /// [`LocalCollective`](crate::LocalCollective): worker threads, with abort on failure (the default).
    #[default]
    Local,
    /// [`crate::burn::BurnCollective`] (feature `collective`).
    #[cfg(feature = "collective")]
    Burn,
}

/// Which datasets are cut into one shard per worker.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DatasetsToSplit {
    /// All of them (Ray 2.6+'s default).
    #[default]
    All,
    /// Only these; the others are given whole to every worker.
    Only(Vec<String>),
}

/// How a run's datasets reach its workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Ingest {
    /// [`Materialize`](Ingest::Materialize) when the workers are threads of one process,
    /// [`Stream`](Ingest::Stream) when they are processes (the default).
    #[default]
    Auto,
    /// Read and preprocess every dataset once and hold the result in memory: every epoch of
    /// every worker, and every tuning trial, reads memory. The fastest when the data fits.
    Materialize,
    /// Keep each worker's shard a plan: it is read from its source (only the shard's rows;
    /// parquet row groups outside them are skipped) and preprocessed batch by batch each time
    /// the loop iterates it, so memory holds the batches in flight, not the data. The
    /// preprocessor is still fitted once, by a streaming pass over `"train"`.
    Stream,
}

/// What [`fit`](Trainer::fit) does when the run's directory (`storage_path/name`) already
/// holds reports or checkpoints of an earlier run with the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ExistingRun {
    /// Fail before training, naming the directory and what it holds; nothing in it is touched
    /// (the default).
    #[default]
    Fail,
    /// Continue it, as a job relaunched after a failure does: from its newest complete
    /// checkpoint, with that checkpoint's iteration count, the reports up to it and every
    /// checkpoint already written kept (new ones are numbered after them). Reports made after
    /// that checkpoint are made again. Without a checkpoint the run starts over.
    Resume,
}

/// Runs a train loop on `num_workers` worker threads, each with its own device and its own
/// shard of the data, in lockstep through a [`Collective`](crate::Collective) (Ray's `DataParallelTrainer` /
/// `TorchTrainer`).
///
/// ```
/// use air_train::{DataParallelTrainer, RunConfig, ScalingConfig, Session, Trainer};
/// use air_data::Dataset;
/// use serde_json::json;
///
/// let dir = tempfile::tempdir()?;
/// let train = Dataset::range(100);
/// let trainer = DataParallelTrainer::new(
///     |_config: &serde_json::Value, session: &mut Session| -> Result<(), air_train::TrainError> {
///         let rows = session.get_dataset_shard("train")?.count()?;
///         for epoch in 0..3 {
///             session.report(json!({"epoch": epoch, "rows": rows}), None)?;
///         }
///         Ok(())
///     },
///     ScalingConfig::new(std::num::NonZeroUsize::new(2).unwrap()),
///     RunConfig::new(dir.path().to_str().unwrap()).with_name("doc"),
/// )
/// .with_dataset("train", train);
/// let result = trainer.fit()?.into_result()?;
/// assert_eq!(result.metrics["training_iteration"], 3);
/// assert_eq!(result.metrics["rows"], 50); // each worker saw half
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct DataParallelTrainer {
    name: String,
    train_loop: Arc<dyn TrainLoop>,
    train_loop_config: Value,
    scaling: ScalingConfig,
    run: RunConfig,
    datasets: BTreeMap<String, Dataset>,
    datasets_to_split: DatasetsToSplit,
    preprocessor: Option<Arc<dyn Preprocessor>>,
    /// The preprocessor fitted on first use and the datasets it produced, shared by clones (so
    /// tuning trials fit and transform once).
    prepared: Arc<OnceLock<Prepared>>,
    /// Preparations of trial variants (`"preprocessor"` / `"datasets"` trial keys), by variant.
    variants: Arc<Mutex<BTreeMap<String, Prepared>>>,
    /// Datasets trials may pick by name with `"datasets": {"train": "<name>"}`.
    dataset_options: BTreeMap<String, Dataset>,
    resume_from: Option<Checkpoint>,
    storage_options: StorageOptions,
    collective: CollectiveBackend,
    /// This process's place when the workers are processes (one rank each), else `None`.
    process: Option<crate::cluster::ProcessEnv>,
    ingest: Ingest,
    existing_run: ExistingRun,
}

impl fmt::Debug for DataParallelTrainer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataParallelTrainer")
            .field("name", &self.name)
            .field("scaling", &self.scaling)
            .field("run", &self.run)
            .field("datasets", &self.datasets.keys().collect::<Vec<_>>())
            .field("preprocessor", &self.preprocessor)
            .finish_non_exhaustive()
    }
}

impl DataParallelTrainer {
    /// Trains with `train_loop` on `scaling.num_workers()` workers; results go where `run` says.
    pub fn new(train_loop: impl TrainLoop, scaling: ScalingConfig, run: RunConfig) -> Self {
        Self {
            name: "DataParallelTrainer".to_owned(),
            train_loop: Arc::new(train_loop),
            train_loop_config: Value::Object(Default::default()),
            scaling,
            run,
            datasets: BTreeMap::new(),
            datasets_to_split: DatasetsToSplit::All,
            preprocessor: None,
            prepared: Arc::new(OnceLock::new()),
            variants: Arc::new(Mutex::new(BTreeMap::new())),
            dataset_options: BTreeMap::new(),
            resume_from: None,
            storage_options: StorageOptions::new(),
            collective: CollectiveBackend::Local,
            process: None,
            ingest: Ingest::Auto,
            existing_run: ExistingRun::Fail,
        }
    }

    /// How the datasets reach the workers: held in memory or streamed from their sources.
    pub fn with_ingest(mut self, ingest: Ingest) -> Self {
        self.ingest = ingest;
        self.prepared = Arc::new(OnceLock::new());
        self
    }

    /// What to do when the run's directory already holds a run of the same name: fail (the
    /// default) or resume it from its newest checkpoint (a relaunched job).
    pub fn with_existing_run(mut self, existing: ExistingRun) -> Self {
        self.existing_run = existing;
        self
    }

    /// Runs this process as one worker of a multi-process run: rank `env.rank` of
    /// `env.world_size` (which must equal `num_workers`), joined through a
    /// [`TcpCollective`](crate::cluster::TcpCollective) at `env`'s coordinator. Rank 0 records
    /// results and checkpoints to the run's storage (a path every process sees, or a URI); the
    /// other ranks write nothing and their `fit` returns the outcome without metrics.
    /// [`fit`](Trainer::fit) does this by itself when a launcher started several processes
    /// ([`ProcessEnv::from_env`](crate::cluster::ProcessEnv::from_env)).
    pub fn with_process_env(mut self, env: crate::cluster::ProcessEnv) -> Self {
        self.process = Some(env);
        self
    }

    /// Which collective the workers use.
    pub fn with_collective(mut self, collective: CollectiveBackend) -> Self {
        self.collective = collective;
        self
    }

    /// The label of runs and trials (`"BurnTrainer"`, ...).
    pub fn with_name(mut self, name: &str) -> Self {
        name.clone_into(&mut self.name);
        self
    }

    /// The config every worker's loop receives (a JSON object; a tuner merges trial values
    /// into it).
    pub fn with_train_loop_config(mut self, config: Value) -> Self {
        self.train_loop_config = config;
        self
    }

    /// Adds dataset `name` (`"train"` is the one the preprocessor is fitted on).
    pub fn with_dataset(mut self, name: &str, ds: Dataset) -> Self {
        self.datasets.insert(name.to_owned(), ds);
        self.prepared = Arc::new(OnceLock::new());
        self
    }

    /// Registers a dataset a tuning trial may use in place of one of the trainer's datasets,
    /// by name: `"datasets": {"train": grid_search(["small", "large"])}` (Ray's datasets as
    /// grid values). A trial's `"datasets"` value may also be a file path or URI (CSV, parquet
    /// or JSON lines by extension).
    pub fn with_dataset_option(mut self, name: &str, ds: Dataset) -> Self {
        self.dataset_options.insert(name.to_owned(), ds);
        self
    }

    /// Which datasets are sharded across workers (all by default).
    pub fn with_datasets_to_split(mut self, which: DatasetsToSplit) -> Self {
        self.datasets_to_split = which;
        self
    }

    /// Fitted on `"train"` once (unless already fitted), applied to every dataset, and saved
    /// in every checkpoint.
    pub fn with_preprocessor(mut self, p: impl Preprocessor + 'static) -> Self {
        self.preprocessor = Some(Arc::new(p));
        self.prepared = Arc::new(OnceLock::new());
        self
    }

    /// A shared preprocessor (fitted or not), not copied.
    pub fn with_shared_preprocessor(mut self, p: Arc<dyn Preprocessor>) -> Self {
        self.preprocessor = Some(p);
        self.prepared = Arc::new(OnceLock::new());
        self
    }

    /// Continues from `checkpoint`: workers get it from `Session::get_checkpoint`, and the
    /// iteration count continues from the one saved in it.
    pub fn with_resume_from_checkpoint(mut self, checkpoint: Checkpoint) -> Self {
        self.resume_from = Some(checkpoint);
        self
    }

    /// Credentials and retries for a URI storage path.
    pub fn with_storage_options(mut self, options: StorageOptions) -> Self {
        self.storage_options = options;
        self
    }

    /// The preprocessor after fitting (`None` before the first run or without one).
    pub fn fitted_preprocessor(&self) -> Option<Arc<dyn Preprocessor>> {
        self.prepared.get().and_then(|p| p.preprocessor.clone())
    }
}

impl Trainer for DataParallelTrainer {
    /// Trains on `num_workers` threads, or — when a launcher started several processes (Slurm,
    /// Open MPI, a Kubernetes Indexed Job, torchrun-style variables) — as this process's rank
    /// of them (see [`with_process_env`](DataParallelTrainer::with_process_env)).
    fn fit(&self) -> Result<TrainResult> {
        let detected = match &self.process {
            Some(_) => None,
            None => crate::cluster::ProcessEnv::from_env()?.filter(|env| env.world_size > 1),
        };
        match detected {
            Some(env) => self
                .clone()
                .with_process_env(env)
                .run_inner(&Value::Object(Default::default()), &TrialInfo::default()),
            None => self.run_inner(&Value::Object(Default::default()), &TrialInfo::default()),
        }
    }
}

impl Trainable for DataParallelTrainer {
    fn trainable_name(&self) -> &str {
        &self.name
    }

    fn resources(&self, config: &Value) -> Resources {
        match self.merged(config) {
            Ok((_, scaling)) => scaling.total_resources(),
            Err(_) => self.scaling.total_resources(),
        }
    }

    fn run_trial(&self, config: &Value, trial: &TrialInfo) -> TrainResult {
        self.run_inner(config, trial)
            .unwrap_or_else(|e| TrainResult::failed(e, config.clone()))
    }
}
