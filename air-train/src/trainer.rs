//! `Trainer`, `Trainable`, `TrainResult` and the `DataParallelTrainer`.

use std::{
    collections::BTreeMap,
    fmt,
    panic::{AssertUnwindSafe, catch_unwind},
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicBool, Ordering},
    },
};

use air_checkpoint::{Checkpoint, StorageOptions};
use air_data::{Dataset, FitStatus, Preprocessor, polars::prelude::DataFrame};
use serde_json::Value;

use crate::{
    Collective, ComputeDevice, LocalCollective, MaxFailures, Resources, RunConfig, ScalingConfig,
    TrainError,
    error::Result,
    run::{Metrics, Recorder, RecorderOptions, RunStorage, default_run_name},
    session::{Session, Shared},
};

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
    /// Every report, one row each.
    pub metrics_dataframe: DataFrame,
    /// The kept checkpoints with their metrics, best first (by the score attribute, else
    /// newest first).
    pub best_checkpoints: Vec<(Checkpoint, Metrics)>,
    /// The trial config the run used (`{}` outside a tuner).
    pub config: Value,
}

impl TrainResult {
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

/// Which [`Collective`] the workers of a run share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CollectiveBackend {
    /// [`LocalCollective`]: worker threads, with abort on failure (the default).
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

/// Runs a train loop on `num_workers` worker threads, each with its own device and its own
/// shard of the data, in lockstep through a [`Collective`] (Ray's `DataParallelTrainer` /
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
///     ScalingConfig::new(2)?,
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
}

#[derive(Clone)]
struct Prepared {
    preprocessor: Option<Arc<dyn Preprocessor>>,
    datasets: BTreeMap<String, Dataset>,
    /// The raw (not preprocessed) columns of `"train"`, recorded in checkpoints.
    train_columns: Option<Vec<String>>,
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
        }
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

    fn prepare(&self) -> Result<Prepared> {
        if let Some(p) = self.prepared.get() {
            return Ok(p.clone());
        }
        // Concurrent tuning trials share one preparation: the first fits and transforms, the
        // others wait for it instead of repeating the work.
        let _guard = PREPARING.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = self.prepared.get() {
            return Ok(p.clone());
        }
        let prepared = prepare_with(&self.datasets, self.preprocessor.as_ref())?;
        Ok(self.prepared.get_or_init(|| prepared).clone())
    }

    /// The preparation for a trial that picks its own preprocessor and/or datasets, made once
    /// per distinct choice and shared by every trial making it.
    fn prepare_variant(&self, variant: &Variant) -> Result<Prepared> {
        let key = serde_json::json!({
            "preprocessor": variant.preprocessor,
            "datasets": variant.datasets,
        })
        .to_string();
        let _guard = PREPARING.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = self
            .variants
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(p.clone());
        }
        let mut datasets = self.datasets.clone();
        for (role, source) in variant.datasets.iter().flatten() {
            let ds = match self
                .dataset_options
                .get(source)
                .or_else(|| self.datasets.get(source))
            {
                Some(ds) => ds.clone(),
                None => read_dataset(source).map_err(|e| TrainError::InvalidConfig {
                    field: "datasets",
                    value: format!("{role:?}: {source:?}"),
                    expected: format!(
                        "a dataset given to the trainer ({}) or a readable .csv/.parquet/.json                          file ({e})",
                        self.dataset_options
                            .keys()
                            .chain(self.datasets.keys())
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                })?,
            };
            datasets.insert(role.clone(), ds);
        }
        let preprocessor: Option<Arc<dyn Preprocessor>> = match &variant.preprocessor {
            None => self.preprocessor.clone(),
            Some(Value::Null) => None,
            Some(json) => Some(Arc::from(
                air_data::preprocessor_from_json(json.clone()).map_err(|e| {
                    TrainError::InvalidConfig {
                        field: "preprocessor",
                        value: json.to_string(),
                        expected: format!(
                            "a preprocessor as air_data::preprocessor_to_json writes it ({e})"
                        ),
                    }
                })?,
            )),
        };
        let prepared = prepare_with(&datasets, preprocessor.as_ref())?;
        self.variants
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, prepared.clone());
        Ok(prepared)
    }
}

static PREPARING: Mutex<()> = Mutex::new(());

/// A trial's own choice of preprocessor and datasets.
#[derive(Debug, Default)]
struct Variant {
    preprocessor: Option<Value>,
    datasets: Option<BTreeMap<String, String>>,
}

fn read_dataset(source: &str) -> std::result::Result<Dataset, String> {
    let lower = source.to_ascii_lowercase();
    let r = if lower.ends_with(".parquet") {
        Dataset::read_parquet(source)
    } else if lower.ends_with(".json") || lower.ends_with(".jsonl") {
        Dataset::read_json(source)
    } else if lower.ends_with(".csv") {
        Dataset::read_csv(source)
    } else {
        return Err("not a registered name, and no .csv/.parquet/.json extension".to_owned());
    };
    r.map_err(|e| e.to_string())
}

/// Fits `preprocessor` on `"train"` (unless already fitted), applies it to every dataset and
/// materialises the results.
fn prepare_with(
    datasets_in: &BTreeMap<String, Dataset>,
    preprocessor: Option<&Arc<dyn Preprocessor>>,
) -> Result<Prepared> {
    let preprocessor = match preprocessor {
        None => None,
        Some(p)
            if p.fit_status() == FitStatus::NotFitted
                || p.fit_status() == FitStatus::PartiallyFitted =>
        {
            let train = datasets_in
                .get("train")
                .ok_or_else(|| TrainError::DatasetNotFound {
                    name: "train".to_owned(),
                    known: datasets_in.keys().cloned().collect(),
                })?;
            let mut fitted = p.clone_box();
            tracing::info!(
                preprocessor = fitted.type_name(),
                "fitting the preprocessor on \"train\""
            );
            fitted.fit(train)?;
            Some(Arc::<dyn Preprocessor>::from(fitted))
        }
        Some(p) => Some(p.clone()),
    };
    let mut datasets = BTreeMap::new();
    for (name, ds) in datasets_in {
        let ds = match &preprocessor {
            Some(p) => p.transform(ds)?,
            None => ds.clone(),
        };
        // Materialised once: every epoch of every worker (and every trial) reads memory
        // instead of re-running the read and the preprocessing.
        datasets.insert(name.clone(), Dataset::from_polars(ds.to_polars()?));
    }
    let train_columns = match datasets_in.get("train") {
        Some(ds) => Some(ds.columns()?),
        None => None,
    };
    Ok(Prepared {
        preprocessor,
        datasets,
        train_columns,
    })
}

impl DataParallelTrainer {
    fn shards(&self, prepared: &Prepared) -> Result<Vec<BTreeMap<String, Dataset>>> {
        let n = self.scaling.num_workers();
        let mut per_worker = vec![BTreeMap::new(); n];
        for (name, ds) in &prepared.datasets {
            let split = match &self.datasets_to_split {
                DatasetsToSplit::All => true,
                DatasetsToSplit::Only(names) => names.contains(name),
            };
            if split && n > 1 {
                for (w, shard) in ds
                    .split(n, air_data::ShardSizes::Equal)?
                    .into_iter()
                    .enumerate()
                {
                    per_worker[w].insert(name.clone(), shard);
                }
            } else {
                for w in &mut per_worker {
                    w.insert(name.clone(), ds.clone());
                }
            }
        }
        Ok(per_worker)
    }

    fn merged(&self, config: &Value) -> Result<(Value, ScalingConfig)> {
        self.merged_variant(config).map(|(l, s, _)| (l, s))
    }

    fn merged_variant(&self, config: &Value) -> Result<(Value, ScalingConfig, Variant)> {
        let Value::Object(trial) = config else {
            return Err(TrainError::InvalidConfig {
                field: "trial config",
                value: config.to_string(),
                expected: "a JSON object".to_owned(),
            });
        };
        let mut loop_config = self.train_loop_config.clone();
        let mut scaling = self.scaling.clone();
        let mut variant = Variant::default();
        for (key, value) in trial {
            match key.as_str() {
                "train_loop_config" => merge_json(&mut loop_config, value),
                "scaling_config" => {
                    let mut s =
                        serde_json::to_value(&scaling).map_err(|e| TrainError::InvalidConfig {
                            field: "scaling_config",
                            value: e.to_string(),
                            expected: "a serialisable config".to_owned(),
                        })?;
                    merge_json(&mut s, value);
                    scaling = serde_json::from_value(s.clone()).map_err(|e| {
                        TrainError::InvalidConfig {
                            field: "scaling_config",
                            value: s.to_string(),
                            expected: format!("ScalingConfig fields ({e})"),
                        }
                    })?;
                    scaling.validate()?;
                }
                "preprocessor" => variant.preprocessor = Some(value.clone()),
                "datasets" => {
                    variant.datasets =
                        Some(serde_json::from_value(value.clone()).map_err(|e| {
                            TrainError::InvalidConfig {
                                field: "datasets",
                                value: value.to_string(),
                                expected: format!(
                                    "an object of dataset role → dataset name or file ({e})"
                                ),
                            }
                        })?);
                }
                other => {
                    return Err(TrainError::InvalidConfig {
                        field: "trial config",
                        value: format!("key {other:?}"),
                        expected: "\"train_loop_config\", \"scaling_config\", \"preprocessor\" \
                                   or \"datasets\""
                            .to_owned(),
                    });
                }
            }
        }
        Ok((loop_config, scaling, variant))
    }

    fn run_inner(&self, config: &Value, trial: &TrialInfo) -> Result<TrainResult> {
        self.run.validate()?;
        let (loop_config, scaling, variant) = self.merged_variant(config)?;
        if scaling.use_gpu() {
            // Fail before any worker starts when this build cannot reach a GPU at all.
            for index in 0..scaling.num_workers() {
                ComputeDevice::Cuda { index }.check_available()?;
            }
        }
        let trainer = Self {
            scaling,
            ..self.clone()
        };
        let prepared = if variant.preprocessor.is_none() && variant.datasets.is_none() {
            trainer.prepare()?
        } else {
            trainer.prepare_variant(&variant)?
        };
        let shards = trainer.shards(&prepared)?;
        let storage_path = trial
            .storage_path
            .as_deref()
            .unwrap_or(self.run.storage_path());
        let name = match (&trial.name, self.run.name()) {
            (Some(n), _) => n.clone(),
            (None, Some(n)) => n.to_owned(),
            (None, None) => default_run_name(&self.name, storage_path),
        };
        let storage = RunStorage::open(storage_path, &name, &self.storage_options)?;
        let params = serde_json::json!({
            "trainer": self.name,
            "train_loop_config": loop_config,
            "scaling_config": trainer.scaling,
            "run_config": self.run,
            "trial_config": config,
            "datasets": self.datasets.keys().collect::<Vec<_>>(),
        });
        storage.write(
            "params.json",
            serde_json::to_vec_pretty(&params).unwrap_or_default(),
        )?;
        let trial_id = trial.id.clone().unwrap_or_else(|| name.clone());
        let mut recorder = Recorder::new(
            storage,
            RecorderOptions {
                checkpoint_config: trial
                    .checkpoint_config
                    .clone()
                    .unwrap_or_else(|| self.run.checkpoint_config().clone()),
                preprocessor: prepared.preprocessor.clone(),
                train_columns: prepared.train_columns.clone(),
                stop: self
                    .run
                    .stop()
                    .iter()
                    .map(|(k, v)| (k.clone(), *v))
                    .collect(),
                trial_id: trial.id.clone(),
                verbose: if trial.quiet {
                    crate::Verbosity::Silent
                } else {
                    self.run.verbose()
                },
                on_report: trial.on_report.clone(),
                result_files: !trial.no_result_files,
                label: name.clone(),
            },
        );
        let resume_from = trial.resume_from.as_ref().or(self.resume_from.as_ref());
        if let Some(c) = resume_from {
            let iteration = c.metadata_value::<u64>("training_iteration")?.unwrap_or(0);
            let total = c.metadata_value::<f64>("time_total_s")?.unwrap_or(0.0);
            recorder.resume_from(iteration, total);
        }
        if trial.resume_from.is_some() {
            recorder.continue_run()?;
        }
        let recorder = Arc::new(Mutex::new(recorder));
        let error = trainer.attempts(
            &loop_config,
            (&name, &trial_id),
            &shards,
            resume_from,
            &recorder,
        );
        let r = recorder.lock().unwrap_or_else(|p| p.into_inner());
        r.finish();
        let ranked = r.ranked();
        Ok(TrainResult {
            metrics: r.last_metrics().cloned().unwrap_or_default(),
            checkpoint: r.latest_checkpoint().map(|k| k.checkpoint.clone()),
            error,
            path: r.storage().path(),
            metrics_dataframe: r.metrics_frame()?,
            best_checkpoints: ranked
                .into_iter()
                .map(|k| (k.checkpoint, k.metrics))
                .collect(),
            config: config.clone(),
        })
    }

    /// Attempts until one succeeds or the failure budget is spent: each restart resumes from
    /// the run's latest checkpoint (or `resume_from`). `None` on success, else the final error.
    fn attempts(
        &self,
        loop_config: &Value,
        (name, trial_id): (&str, &str),
        shards: &[BTreeMap<String, Dataset>],
        resume_from: Option<&Checkpoint>,
        recorder: &Arc<Mutex<Recorder>>,
    ) -> Option<TrainError> {
        let mut failures = 0;
        loop {
            let resume = {
                let r = recorder.lock().unwrap_or_else(|p| p.into_inner());
                r.latest_checkpoint()
                    .map(|k| k.checkpoint.clone())
                    .or_else(|| resume_from.cloned())
            };
            let Err(failure) = self.attempt(loop_config, name, trial_id, shards, resume, recorder)
            else {
                return None;
            };
            failures += 1;
            if self.run.failure_config().may_retry(failures) {
                tracing::warn!(
                    failures,
                    rank = failure.rank,
                    message = %failure.message,
                    "worker failed; restarting from the latest checkpoint"
                );
                continue;
            }
            return Some(TrainError::WorkerFailed {
                rank: failure.rank,
                what: failure.what,
                message: failure.message,
                failures,
                allowed: match self.run.failure_config().max_failures() {
                    MaxFailures::Limited(n) => format!("{n} restart(s)"),
                    MaxFailures::Unlimited => "unlimited restarts".to_owned(),
                },
            });
        }
    }

    /// One attempt: all workers from `resume`, until they finish or one fails.
    fn attempt(
        &self,
        loop_config: &Value,
        name: &str,
        trial_id: &str,
        shards: &[BTreeMap<String, Dataset>],
        resume: Option<Checkpoint>,
        recorder: &Arc<Mutex<Recorder>>,
    ) -> Result<(), Failure> {
        let n = self.scaling.num_workers();
        let collective: Arc<dyn Collective> = match self.collective {
            CollectiveBackend::Local => Arc::new(LocalCollective::new(n)),
            #[cfg(feature = "collective")]
            CollectiveBackend::Burn => Arc::new(crate::burn::BurnCollective::new(n)),
        };
        let shared = Arc::new(Shared {
            collective: collective.clone(),
            recorder: recorder.clone(),
            stop: Mutex::new(None),
            failed: AtomicBool::new(false),
        });
        let outcomes: Vec<Result<(), Failure>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..n)
                .map(|rank| {
                    let session = Session {
                        rank,
                        local_rank: rank,
                        world_size: n,
                        device: ComputeDevice::for_worker(self.scaling.use_gpu(), rank),
                        config: loop_config.clone(),
                        trial_name: name.to_owned(),
                        trial_id: trial_id.to_owned(),
                        shards: shards[rank].clone(),
                        checkpoint: resume.clone(),
                        shared: shared.clone(),
                        stop_delivered: false,
                    };
                    let train_loop = self.train_loop.clone();
                    std::thread::Builder::new()
                        .name(format!("air-train-worker-{rank}"))
                        .spawn_scoped(scope, move || run_worker(train_loop.as_ref(), session))
                })
                .collect();
            if let Some((rank, Err(e))) = handles.iter().enumerate().find(|(_, h)| h.is_err()) {
                // The workers already started must not wait for one that never will.
                collective.abort(&format!("worker {rank} could not start: {e}"));
            }
            handles
                .into_iter()
                .enumerate()
                .map(|(rank, h)| match h {
                    Ok(h) => h.join().unwrap_or_else(|p| {
                        Err(Failure {
                            rank,
                            what: "panicked",
                            message: panic_message(p.as_ref()),
                            secondary: false,
                        })
                    }),
                    Err(e) => Err(Failure {
                        rank,
                        what: "returned an error",
                        message: format!("the worker thread could not be started: {e}"),
                        secondary: false,
                    }),
                })
                .collect()
        });
        // Report the failure that caused the others (a peer's abandoned wait is secondary).
        let mut failures: Vec<Failure> = outcomes.into_iter().filter_map(Result::err).collect();
        failures.sort_by_key(|f| (f.secondary, f.rank));
        match failures.into_iter().next() {
            None => Ok(()),
            Some(f) => Err(f),
        }
    }
}

#[derive(Debug)]
struct Failure {
    rank: usize,
    what: &'static str,
    message: String,
    secondary: bool,
}

/// Runs one worker's loop to its end, then leaves the collective; a failure releases the peers
/// (`abort`) and is marked secondary when another worker failed first.
fn run_worker(train_loop: &dyn TrainLoop, mut session: Session) -> Result<(), Failure> {
    let rank = session.rank;
    let shared = session.shared.clone();
    let collective = shared.collective.clone();
    let config = session.config.clone();
    let outcome = catch_unwind(AssertUnwindSafe(|| train_loop.run(&config, &mut session)));
    let failure = match outcome {
        Ok(Ok(())) => None,
        // The stop `report` delivered, returned as is or wrapped by the loop's own error type.
        Ok(Err(e)) if session.stop_delivered || chain_has(&e, is_stopped) => None,
        Ok(Err(e)) => Some((
            "returned an error",
            error_chain(e.as_ref()),
            chain_has(&e, is_collective_aborted),
        )),
        Err(panic) => Some(("panicked", panic_message(panic.as_ref()), false)),
    };
    let (what, message, aborted) = match failure {
        None => match collective.finish(rank) {
            Ok(()) => return Ok(()),
            Err(e) => {
                let aborted = is_collective_aborted(&e);
                ("returned an error", e.to_string(), aborted)
            }
        },
        Some(f) => f,
    };
    // The first worker to fail is the cause; later ones (most often peers released from a
    // collective wait by its abort) are its consequences.
    let first = !shared.failed.swap(true, Ordering::SeqCst);
    collective.abort(&format!("worker {rank} {what}: {message}"));
    Err(Failure {
        rank,
        what,
        message,
        secondary: aborted || !first,
    })
}

fn is_stopped(e: &TrainError) -> bool {
    matches!(e, TrainError::Stopped { .. })
}

fn is_collective_aborted(e: &TrainError) -> bool {
    matches!(e, TrainError::CollectiveAborted(_))
}

/// Whether a [`TrainError`] matching `pred` is anywhere in `e`'s source chain.
fn chain_has(e: &LoopError, pred: fn(&TrainError) -> bool) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e.as_ref());
    while let Some(err) = cur {
        if err.downcast_ref::<TrainError>().is_some_and(pred) {
            return true;
        }
        cur = err.source();
    }
    false
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(err) = cur {
        let s = err.to_string();
        if !parts.last().is_some_and(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = err.source();
    }
    parts.join(": ")
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    }
}

/// Only the `"scaling_config"` entry of a trial config (what a wrapping trainer's resources
/// depend on; its other keys mean something to the wrapper only).
#[cfg(any(feature = "gbdt", feature = "sklearn"))]
pub(crate) fn scaling_part(config: &Value) -> Value {
    match config.get("scaling_config") {
        Some(s) => serde_json::json!({ "scaling_config": s }),
        None => serde_json::json!({}),
    }
}

/// Deep-merges `patch` into `base` (objects merge key by key; anything else replaces).
pub(crate) fn merge_json(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                merge_json(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, p) => *b = p.clone(),
    }
}

impl Trainer for DataParallelTrainer {
    fn fit(&self) -> Result<TrainResult> {
        self.run_inner(&Value::Object(Default::default()), &TrialInfo::default())
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
            .unwrap_or_else(|e| TrainResult {
                metrics: Metrics::new(),
                checkpoint: None,
                error: Some(e),
                path: String::new(),
                metrics_dataframe: DataFrame::empty(),
                best_checkpoints: Vec::new(),
                config: config.clone(),
            })
    }
}
