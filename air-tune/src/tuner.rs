//! The `Tuner`: runs trials on a pool, feeds results to the searcher, scheduler and stoppers,
//! retries failures, saves the experiment state, and restores it.

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    path::{Path, PathBuf},
    sync::{Arc, Condvar, Mutex, MutexGuard},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use air_checkpoint::{
    Checkpoint, StorageOptions,
    storage::{self, Resolved},
};
use air_train::{
    CheckpointConfig, FailureConfig, Metrics, RunConfig, TrainResult, Trainable, TrialInfo,
    Verbosity,
};
use object_store::ObjectStoreExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    config::{IntoTrainable, Mode, Resources, TuneConfig},
    error::{Result, TuneError},
    result::{ResultGrid, TrialResult},
    schedule::{Decision, Fifo, TrialScheduler},
    search::{BasicVariantGenerator, SearchContext, Searcher, Suggestion},
    space::Space,
    status::StatusTable,
    stopper::Stopper,
    trial::{Pending, Trial, TrialStatus, TrialTable},
};

/// The experiment state file under the experiment directory.
pub const EXPERIMENT_STATE: &str = "experiment_state.json";
const FORMAT: &str = "air-tune-experiment";
const VERSION: u32 = 1;

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
///     .with_tune_config(TuneConfig::new().with_metric("loss", Mode::Min).with_num_samples(8)?.with_seed(1))
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

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SavedTrial {
    id: String,
    name: String,
    config: Value,
    status: TrialStatus,
    num_failures: usize,
    error: Option<String>,
    last_result: Option<Metrics>,
    checkpoint_dir: Option<String>,
    resources: Resources,
    path: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SavedExperiment {
    format: String,
    version: u32,
    experiment_id: String,
    trainable: String,
    metric: Option<String>,
    mode: Option<Mode>,
    num_samples: usize,
    max_concurrent_trials: Option<usize>,
    seed: u64,
    searcher: String,
    searcher_state: Value,
    scheduler: String,
    scheduler_state: Value,
    param_space: Value,
    trials: Vec<SavedTrial>,
    finished: bool,
    timestamp: u64,
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
    pub fn fit(self) -> Result<ResultGrid> {
        Runner::new(self)?.run()
    }
}

/// The experiment's folder under the run's storage path (created when local): a new
/// experiment refuses a folder that already holds one.
fn experiment_dir(
    run: &RunConfig,
    trainable: &dyn Trainable,
    restoring: bool,
    options: &StorageOptions,
) -> Result<String> {
    let storage_path = run.storage_path().trim_end_matches('/').to_owned();
    let name = match run.name() {
        Some(n) => n.to_owned(),
        None => air_train::default_run_name(trainable.trainable_name(), &storage_path),
    };
    let exp_dir = format!("{storage_path}/{name}");
    if !restoring && read_file(&exp_dir, EXPERIMENT_STATE, options)?.is_some() {
        return Err(TuneError::InvalidConfig {
            field: "run_config.name",
            value: exp_dir,
            expected: "a new experiment directory; continue this one with Tuner::restore, or \
                       pick another name"
                .to_owned(),
        });
    }
    tracing::info!(
        experiment = %exp_dir,
        "tuning {}: results go to {exp_dir}",
        trainable.trainable_name()
    );
    if !exp_dir.contains("://") {
        std::fs::create_dir_all(&exp_dir).map_err(|e| TuneError::Storage {
            location: exp_dir.clone(),
            reason: e.to_string(),
        })?;
    }
    Ok(exp_dir)
}

/// What a restored experiment does with its unfinished and failed trials.
#[derive(Debug, Clone, Copy)]
struct RestorePolicy {
    resume_unfinished: bool,
    resume_errored: bool,
    restart_errored: bool,
}

/// Gives the searcher and scheduler their saved state, after checking they are the ones the
/// experiment ran with.
fn restore_into(
    path: &str,
    saved: &SavedExperiment,
    searcher: &mut dyn Searcher,
    scheduler: &mut dyn TrialScheduler,
) -> Result<()> {
    for (kind, want, got) in [
        ("searcher", &saved.searcher, searcher.name()),
        ("scheduler", &saved.scheduler, scheduler.name()),
    ] {
        if *want != got {
            return Err(TuneError::Restore {
                path: path.to_owned(),
                reason: format!(
                    "the experiment ran with {kind} {want}, this tuner has {got}; pass the same \
                     TuneConfig with Tuner::with_tune_config"
                ),
            });
        }
    }
    searcher.restore_state(&saved.searcher_state)?;
    scheduler.restore_state(&saved.scheduler_state)
}

/// A saved trial as the restored experiment runs it (history from its `result.json`,
/// unfinished or failed trials pending again as `policy` says).
fn restored_trial(s: &SavedTrial, policy: RestorePolicy, options: &StorageOptions) -> Trial {
    let mut t = Trial::new(
        s.id.clone(),
        s.name.clone(),
        s.config.clone(),
        s.path.clone(),
        s.resources.clone(),
    );
    t.status = s.status;
    t.history = load_history(&s.path, options);
    t.saved_last_result.clone_from(&s.last_result);
    t.num_failures = s.num_failures;
    t.error.clone_from(&s.error);
    t.checkpoint_dir.clone_from(&s.checkpoint_dir);
    t.started_before = true;
    t.latest_checkpoint = newest_checkpoint(&t.path, t.checkpoint_dir.as_deref());
    match s.status {
        TrialStatus::Terminated => {}
        TrialStatus::Error if policy.resume_errored => {
            t.status = TrialStatus::Pending;
            t.num_failures = 0;
            t.resume = t.latest_checkpoint.clone();
        }
        TrialStatus::Error if policy.restart_errored => {
            t.status = TrialStatus::Pending;
            t.num_failures = 0;
            t.latest_checkpoint = None;
        }
        TrialStatus::Error => {}
        _ if policy.resume_unfinished => {
            t.status = TrialStatus::Pending;
            t.resume = t.latest_checkpoint.clone();
        }
        _ => t.status = TrialStatus::Terminated,
    }
    t
}

/// Where a tuner without a run config writes: `$AIR_STORAGE_PATH`, else `~/air_results`.
fn default_storage() -> String {
    std::env::var("AIR_STORAGE_PATH").unwrap_or_else(|_| {
        let home = std::env::var("HOME").unwrap_or_else(|_| ".".to_owned());
        format!("{home}/air_results")
    })
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn store_err(location: &str) -> impl Fn(String) -> TuneError + '_ {
    move |reason| TuneError::Storage {
        location: location.to_owned(),
        reason,
    }
}

/// Reads file `name` of directory `dir` (a path or URI); `None` if absent.
fn read_file(dir: &str, name: &str, options: &StorageOptions) -> Result<Option<Vec<u8>>> {
    let uri = format!("{}/{name}", dir.trim_end_matches('/'));
    let fail = store_err(&uri);
    match storage::resolve(&uri, options).map_err(|e| fail(e.to_string()))? {
        Resolved::Local(p) => match std::fs::read(&p) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(fail(e.to_string())),
        },
        Resolved::Store(loc) => {
            match storage::block_on(async { loc.store.get(&loc.prefix).await?.bytes().await }) {
                Ok(b) => Ok(Some(b.to_vec())),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(fail(e.to_string())),
            }
        }
    }
}

/// Writes file `name` of directory `dir` whole (atomically: temp + rename, or one object put).
fn write_file(dir: &str, name: &str, bytes: Vec<u8>, options: &StorageOptions) -> Result<()> {
    let uri = format!("{}/{name}", dir.trim_end_matches('/'));
    let fail = store_err(&uri);
    match storage::resolve(&uri, options).map_err(|e| fail(e.to_string()))? {
        Resolved::Local(p) => {
            let tmp = p.with_file_name(format!(".{name}.tmp"));
            std::fs::write(&tmp, &bytes)
                .and_then(|()| std::fs::rename(&tmp, &p))
                .map_err(|e| fail(e.to_string()))
        }
        Resolved::Store(loc) => storage::block_on(loc.store.put(&loc.prefix, bytes.into()))
            .map(|_| ())
            .map_err(|e| fail(e.to_string())),
    }
}

fn read_state(path: &str, options: &StorageOptions) -> Result<SavedExperiment> {
    let restore_err = |reason: String| TuneError::Restore {
        path: path.to_owned(),
        reason,
    };
    let bytes = read_file(path, EXPERIMENT_STATE, options)?.ok_or_else(|| {
        restore_err(format!(
            "no {EXPERIMENT_STATE} there; pass the experiment directory (storage_path/name)"
        ))
    })?;
    let saved: SavedExperiment = serde_json::from_slice(&bytes).map_err(|e| {
        restore_err(format!(
            "{EXPERIMENT_STATE} is not an air-tune experiment state ({e})"
        ))
    })?;
    if saved.format != FORMAT {
        return Err(restore_err(format!(
            "format {:?}, expected {FORMAT:?}",
            saved.format
        )));
    }
    if saved.version > VERSION {
        return Err(restore_err(format!(
            "state version {} is newer than this air-tune reads ({VERSION}); upgrade air-tune",
            saved.version
        )));
    }
    Ok(saved)
}

/// The newest complete checkpoint in a local trial directory.
fn newest_checkpoint(trial_dir: &str, recorded: Option<&str>) -> Option<Checkpoint> {
    if trial_dir.contains("://") {
        let name = recorded?;
        return Checkpoint::from_uri(&format!("{trial_dir}/{name}")).ok();
    }
    let mut names: Vec<String> = std::fs::read_dir(trial_dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with("checkpoint_"))
        .collect();
    names.sort();
    names.into_iter().rev().find_map(|n| {
        let c = Checkpoint::from_directory(Path::new(trial_dir).join(&n)).ok()?;
        c.verify().ok()?;
        Some(c)
    })
}

fn load_history(trial_dir: &str, options: &StorageOptions) -> Vec<Metrics> {
    read_file(trial_dir, "result.json", options)
        .ok()
        .flatten()
        .map(|b| {
            String::from_utf8_lossy(&b)
                .lines()
                .filter_map(|l| serde_json::from_str::<Metrics>(l).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// A copy in memory, so the source trial's retention cannot delete it under the clone.
fn in_memory(c: &Checkpoint) -> Option<Checkpoint> {
    let mut m = Checkpoint::from_dict(c.to_dict().ok()?).ok()?;
    m.set_metadata(c.metadata().clone());
    Some(m)
}

enum Outcome {
    Done(Box<TrainResult>),
    Panicked(String),
}

/// Everything trial threads and the controller share, behind one lock.
struct Core {
    table: TrialTable,
    searcher: Box<dyn Searcher>,
    scheduler: Box<dyn TrialScheduler>,
    stopper: Option<Box<dyn Stopper>>,
    stop_dict: Vec<(String, f64)>,
    finished: Vec<(usize, Outcome)>,
    stop_all: bool,
    dirty: bool,
}

impl Core {
    /// A result of trial `idx`, on its own thread: records it and decides whether it goes on.
    fn on_result(&mut self, idx: usize, m: &Metrics) -> bool {
        let t = &mut self.table.trials[idx];
        if let Some(d) = m.get("checkpoint_dir_name").and_then(Value::as_str) {
            t.checkpoint_dir = Some(d.to_owned());
        }
        t.history.push(m.clone());
        self.dirty = true;
        if t.pending.is_some() || self.stop_all {
            return false;
        }
        let id = t.id.clone();
        let mut stop = self
            .stop_dict
            .iter()
            .any(|(k, v)| m.get(k).and_then(Value::as_f64).is_some_and(|x| x >= *v));
        if let Some(s) = &mut self.stopper {
            stop |= s.stop_trial(&id, m);
            if s.stop_all() {
                self.stop_all = true;
                stop = true;
            }
        }
        let decision = self
            .scheduler
            .on_trial_result(&self.table, &self.table.trials[idx], m);
        self.searcher.on_trial_result(&id, m);
        let pending = if stop {
            Some(Pending::Stop)
        } else {
            match decision {
                Decision::Continue => None,
                Decision::Stop => Some(Pending::Stop),
                Decision::Pause => Some(Pending::Pause),
                Decision::Exploit { source, config } => Some(Pending::Exploit { source, config }),
            }
        };
        let go_on = pending.is_none();
        self.table.trials[idx].pending = pending;
        go_on
    }

    fn finish(&mut self, idx: usize, status: TrialStatus) {
        self.table.trials[idx].status = status;
        let t = &self.table.trials[idx];
        let id = t.id.clone();
        let last = t.last_result().cloned();
        match status {
            TrialStatus::Error => {
                self.scheduler.on_trial_complete(&self.table, t, None);
                self.searcher.on_trial_complete(&id, None, true);
                tracing::warn!(trial = %id, error = t.error.as_deref().unwrap_or(""), "trial failed");
            }
            _ => {
                self.scheduler
                    .on_trial_complete(&self.table, t, last.as_ref());
                self.searcher.on_trial_complete(&id, last.as_ref(), false);
                tracing::info!(trial = %id, "trial finished");
            }
        }
    }

    fn complete(&mut self, idx: usize, outcome: Outcome, failure: &FailureConfig) {
        self.dirty = true;
        let stop_all = self.stop_all;
        let t = &mut self.table.trials[idx];
        let error = match outcome {
            Outcome::Done(r) => {
                if let Some(c) = &r.checkpoint {
                    t.latest_checkpoint = Some(c.clone());
                }
                if !r.best_checkpoints.is_empty() {
                    t.best_checkpoints.clone_from(&r.best_checkpoints);
                }
                if !r.path.is_empty() {
                    t.path.clone_from(&r.path);
                }
                r.error.map(|e| e.to_string())
            }
            Outcome::Panicked(msg) => Some(format!("the trainable panicked: {msg}")),
        };
        if let Some(msg) = error {
            t.num_failures += 1;
            t.error = Some(msg.clone());
            t.pending = None;
            if !stop_all && !failure.fail_fast() && failure.may_retry(t.num_failures) {
                tracing::warn!(trial = %t.id, failures = t.num_failures, error = %msg,
                    "trial failed; retrying from its latest checkpoint");
                t.status = TrialStatus::Pending;
                t.resume = t.latest_checkpoint.clone();
            } else {
                if failure.fail_fast() {
                    self.stop_all = true;
                }
                self.finish(idx, TrialStatus::Error);
            }
            return;
        }
        t.error = None;
        match t.pending.take() {
            Some(Pending::Pause) if !stop_all => {
                t.status = TrialStatus::Paused;
                t.resume = t.latest_checkpoint.clone();
            }
            Some(Pending::Exploit { source, config }) if !stop_all => {
                let src = self.table.get(&source).and_then(|s| {
                    let dir = s.checkpoint_dir.as_ref()?;
                    let at = format!("{}/{dir}", s.path);
                    let c = if at.contains("://") {
                        Checkpoint::from_uri(&at).ok()?
                    } else {
                        Checkpoint::from_directory(&at).ok()?
                    };
                    in_memory(&c)
                });
                let t = &mut self.table.trials[idx];
                match src {
                    Some(c) => {
                        t.config = config;
                        t.resume = Some(c);
                    }
                    None => {
                        tracing::warn!(trial = %t.id, source = %source,
                            "PBT: the source checkpoint could not be read; continuing as is");
                        t.resume = t.latest_checkpoint.clone();
                    }
                }
                t.status = TrialStatus::Pending;
            }
            _ => self.finish(idx, TrialStatus::Terminated),
        }
    }

    fn saved_trials(&self) -> Vec<SavedTrial> {
        self.table
            .iter()
            .map(|t| SavedTrial {
                id: t.id.clone(),
                name: t.name.clone(),
                config: t.config.clone(),
                status: t.status,
                num_failures: t.num_failures,
                error: t.error.clone(),
                last_result: t.last_result().cloned(),
                checkpoint_dir: t.checkpoint_dir.clone(),
                resources: t.resources.clone(),
                path: t.path.clone(),
            })
            .collect()
    }
}

type Shared = Arc<(Mutex<Core>, Condvar)>;

fn lock(shared: &Shared) -> MutexGuard<'_, Core> {
    shared.0.lock().unwrap_or_else(|p| p.into_inner())
}

struct Runner {
    trainable: Arc<dyn Trainable>,
    space: Arc<Space>,
    shared: Shared,
    exp_dir: String,
    experiment_id: String,
    metric: Option<String>,
    mode: Option<Mode>,
    num_samples: usize,
    max_concurrent: Option<usize>,
    time_budget: Option<Duration>,
    seed: u64,
    pool: Resources,
    resources_per_trial: Option<Resources>,
    result_files: bool,
    state_period: Option<Duration>,
    failure: FailureConfig,
    checkpoint_config: Option<CheckpointConfig>,
    options: StorageOptions,
    searcher_total: Option<usize>,
    created: usize,
    searcher_done: bool,
    status: StatusTable,
}

impl Runner {
    fn new(tuner: Tuner) -> Result<Self> {
        tuner.space.validate()?;
        tuner.run.validate()?;
        let Tuner {
            trainable,
            space,
            mut tune,
            run,
            stopper,
            restored,
            resume_unfinished,
            resume_errored,
            restart_errored,
            storage_options,
        } = tuner;
        let seed = tune.seed.unwrap_or_else(rand::random);
        let exp_dir = experiment_dir(
            &run,
            trainable.as_ref(),
            restored.is_some(),
            &storage_options,
        )?;
        let mut searcher: Box<dyn Searcher> = tune
            .search_alg
            .take()
            .unwrap_or_else(|| Box::new(BasicVariantGenerator::new()));
        let mut scheduler: Box<dyn TrialScheduler> =
            tune.scheduler.take().unwrap_or_else(|| Box::new(Fifo));
        let ctx = SearchContext {
            metric: tune.metric.clone(),
            mode: tune.mode,
            space: space.clone(),
            num_samples: tune.num_samples,
            seed,
        };
        searcher.setup(&ctx)?;
        scheduler.setup(tune.metric.as_deref(), tune.mode, seed)?;
        let mut table = TrialTable::default();
        let experiment_id = match &restored {
            Some((_, s)) => s.experiment_id.clone(),
            None => format!("{:05x}", seed & 0xF_FFFF),
        };
        if let Some((path, saved)) = &restored {
            let policy = RestorePolicy {
                resume_unfinished,
                resume_errored,
                restart_errored,
            };
            restore_into(path, saved, searcher.as_mut(), scheduler.as_mut())?;
            for t in &saved.trials {
                table.push(restored_trial(t, policy, &storage_options));
            }
        }
        let mut stop_dict: Vec<(String, f64)> =
            run.stop().iter().map(|(k, v)| (k.clone(), *v)).collect();
        stop_dict.sort_by(|a, b| a.0.cmp(&b.0));
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let pool = tune
            .total_resources
            .clone()
            .unwrap_or_else(|| Resources::cpu(cores));
        let created = table.len();
        let searcher_total = searcher.total_trials(&space, tune.num_samples);
        let status = StatusTable::new(run.verbose() != Verbosity::Silent, tune.metric.clone());
        Ok(Self {
            trainable,
            space,
            shared: Arc::new((
                Mutex::new(Core {
                    table,
                    searcher,
                    scheduler,
                    stopper,
                    stop_dict,
                    finished: Vec::new(),
                    stop_all: false,
                    dirty: true,
                }),
                Condvar::new(),
            )),
            exp_dir,
            experiment_id,
            metric: tune.metric,
            mode: tune.mode,
            num_samples: tune.num_samples,
            max_concurrent: tune.max_concurrent_trials,
            time_budget: tune.time_budget,
            seed,
            pool,
            resources_per_trial: tune.resources_per_trial,
            result_files: tune.result_files,
            state_period: tune.state_period,
            failure: *run.failure_config(),
            checkpoint_config: (*run.checkpoint_config() != CheckpointConfig::default())
                .then(|| run.checkpoint_config().clone()),
            options: storage_options,
            searcher_total,
            created,
            searcher_done: false,
            status,
        })
    }

    fn save(&self, core: &Core, finished: bool) -> Result<()> {
        let saved = SavedExperiment {
            format: FORMAT.to_owned(),
            version: VERSION,
            experiment_id: self.experiment_id.clone(),
            trainable: self.trainable.trainable_name().to_owned(),
            metric: self.metric.clone(),
            mode: self.mode,
            num_samples: self.num_samples,
            max_concurrent_trials: self.max_concurrent,
            seed: self.seed,
            searcher: core.searcher.name(),
            searcher_state: core.searcher.save_state(),
            scheduler: core.scheduler.name(),
            scheduler_state: core.scheduler.save_state(),
            param_space: self.space.describe(),
            trials: core.saved_trials(),
            finished,
            timestamp: now_unix(),
        };
        let bytes = serde_json::to_vec(&saved).map_err(|e| TuneError::Storage {
            location: self.exp_dir.clone(),
            reason: e.to_string(),
        })?;
        write_file(&self.exp_dir, EXPERIMENT_STATE, bytes, &self.options)
    }

    fn start(&self, core: &mut Core, idx: usize) {
        let shared = self.shared.clone();
        let t = &mut core.table.trials[idx];
        t.status = TrialStatus::Running;
        t.pending = None;
        match &t.resume {
            Some(c) => {
                let it = c
                    .metadata_value::<u64>("training_iteration")
                    .ok()
                    .flatten()
                    .unwrap_or(0);
                t.history.retain(|m| {
                    m.get("training_iteration")
                        .and_then(Value::as_u64)
                        .is_some_and(|i| i <= it)
                });
            }
            None if t.started_before => {
                // A restart from scratch: the old metrics files would be appended to.
                t.history.clear();
                if !t.path.contains("://") {
                    for f in ["result.json", "progress.csv"] {
                        let _ = std::fs::remove_file(PathBuf::from(&t.path).join(f));
                    }
                }
            }
            None => {}
        }
        t.started_before = true;
        let hook_shared = self.shared.clone();
        let info = TrialInfo::new(&t.name, &t.id)
            .with_storage_path(&self.exp_dir)
            .with_on_report(move |m: &Metrics| lock(&hook_shared).on_result(idx, m))
            .with_resume_from(t.resume.take())
            .with_result_files(self.result_files)
            .with_checkpoint_config(self.checkpoint_config.clone())
            .with_quiet(true);
        let config = t.config.clone();
        let trainable = self.trainable.clone();
        tracing::info!(trial = %t.id, config = %config, "trial started");
        let spawned = std::thread::Builder::new()
            .name(format!("air-tune-{}", t.id))
            .spawn(move || {
                let out = catch_unwind(AssertUnwindSafe(|| trainable.run_trial(&config, &info)));
                let outcome = match out {
                    Ok(r) => Outcome::Done(Box::new(r)),
                    Err(p) => Outcome::Panicked(panic_message(p.as_ref())),
                };
                lock(&shared).finished.push((idx, outcome));
                shared.1.notify_all();
            });
        if let Err(e) = spawned {
            core.finished.push((
                idx,
                Outcome::Panicked(format!("the trial thread could not be started: {e}")),
            ));
        }
    }

    /// Creates the next trial from the searcher; `None` when there is none now.
    fn create(&mut self, core: &mut Core) -> Option<usize> {
        if self.searcher_done {
            return None;
        }
        if self.searcher_total.is_none() && self.created >= self.num_samples {
            self.searcher_done = true;
            return None;
        }
        let id = format!("{}_{:05}", self.experiment_id, self.created);
        match core.searcher.suggest(&id) {
            Suggestion::Config(config) => {
                self.created += 1;
                let name = format!("{}_{id}", self.trainable.trainable_name());
                let resources = self
                    .resources_per_trial
                    .clone()
                    .unwrap_or_else(|| self.trainable.resources(&config));
                let path = format!("{}/{name}", self.exp_dir);
                let idx = core
                    .table
                    .push(Trial::new(id.clone(), name, config, path, resources));
                let Core {
                    table, scheduler, ..
                } = core;
                scheduler.on_trial_add(table, &table.trials[idx]);
                core.dirty = true;
                Some(idx)
            }
            Suggestion::Pending => None,
            Suggestion::Finished => {
                self.searcher_done = true;
                None
            }
        }
    }

    fn run(mut self) -> Result<ResultGrid> {
        let start = Instant::now();
        let mut used = Resources::new();
        let mut running: usize = 0;
        let mut last_save: Option<(Instant, Duration)> = None;
        let shared = self.shared.clone();
        let mut core = lock(&shared);
        loop {
            for (idx, outcome) in std::mem::take(&mut core.finished) {
                running -= 1;
                used -= &core.table.trials[idx].resources;
                core.complete(idx, outcome, &self.failure);
            }
            if self.time_budget.is_some_and(|b| start.elapsed() >= b) && !core.stop_all {
                tracing::info!("time budget reached; stopping every trial");
                core.stop_all = true;
            }
            if let Some(s) = &mut core.stopper
                && s.stop_all()
            {
                core.stop_all = true;
            }
            let mut launched_any = false;
            while !core.stop_all && self.max_concurrent.is_none_or(|m| running < m) {
                let candidates: Vec<String> = core
                    .table
                    .iter()
                    .filter(|t| matches!(t.status, TrialStatus::Pending | TrialStatus::Paused))
                    .map(|t| t.id.clone())
                    .collect();
                let chosen = if candidates.is_empty() {
                    None
                } else {
                    let refs: Vec<&str> = candidates.iter().map(String::as_str).collect();
                    let Core {
                        table, scheduler, ..
                    } = &mut *core;
                    scheduler
                        .choose_trial_to_run(table, &refs)
                        .and_then(|id| table.index.get(&id).copied())
                };
                let was_done = self.searcher_done;
                let Some(idx) = chosen.or_else(|| self.create(&mut core)) else {
                    if self.searcher_done && !was_done {
                        // Schedulers holding trials for more to come can act now.
                        let Core {
                            table, scheduler, ..
                        } = &mut *core;
                        scheduler.on_search_finished(table);
                        continue;
                    }
                    break;
                };
                let need = core.table.trials[idx].resources.clone();
                if !need.fits_within(&Resources::new(), &self.pool) {
                    let msg = format!(
                        "the trial needs {need} but the pool has {}; lower the trial's \
                         resources (num_workers) or raise TuneConfig::with_total_resources",
                        self.pool
                    );
                    core.table.trials[idx].error = Some(msg);
                    core.finish(idx, TrialStatus::Error);
                    continue;
                }
                if !need.fits_within(&used, &self.pool) {
                    break;
                }
                used += &need;
                running += 1;
                launched_any = true;
                self.start(&mut core, idx);
            }
            if running == 0 && core.finished.is_empty() && !launched_any {
                end_waiting_trials(&mut core);
                break;
            }
            let period = self.state_period.unwrap_or_else(|| {
                last_save.map_or(Duration::ZERO, |(_, took)| {
                    (took * 20).max(Duration::from_millis(20))
                })
            });
            if core.dirty && last_save.is_none_or(|(at, _)| at.elapsed() >= period) {
                let t0 = Instant::now();
                self.save(&core, false)?;
                core.dirty = false;
                last_save = Some((Instant::now(), t0.elapsed()));
            }
            self.status.draw(&core.table, start.elapsed(), false);
            if core.finished.is_empty() {
                core = shared
                    .1
                    .wait_timeout(core, Duration::from_millis(250))
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
        }
        self.save(&core, true)?;
        self.status.draw(&core.table, start.elapsed(), true);
        Ok(self.result_grid(&mut core))
    }

    /// Every trial's outcome, its history moved out of the table.
    fn result_grid(&self, core: &mut Core) -> ResultGrid {
        let results = core
            .table
            .trials
            .iter_mut()
            .map(|t| TrialResult {
                trial_id: t.id.clone(),
                config: t.config.clone(),
                // Before the history is moved out: the last result is its last entry.
                metrics: t.last_result().cloned().unwrap_or_default(),
                history: std::mem::take(&mut t.history),
                checkpoint: t
                    .latest_checkpoint
                    .clone()
                    .or_else(|| newest_checkpoint(&t.path, t.checkpoint_dir.as_deref())),
                best_checkpoints: t.best_checkpoints.clone(),
                error: t.error.clone(),
                path: t.path.clone(),
                status: t.status,
            })
            .collect();
        ResultGrid {
            results,
            metric: self.metric.clone(),
            mode: self.mode,
            experiment_path: self.exp_dir.clone(),
        }
    }
}

/// Nothing runs and nothing can start: the trials a scheduler still holds end, terminated.
fn end_waiting_trials(core: &mut Core) {
    let waiting: Vec<usize> = core
        .table
        .iter()
        .enumerate()
        .filter(|(_, t)| matches!(t.status, TrialStatus::Pending | TrialStatus::Paused))
        .map(|(i, _)| i)
        .collect();
    if !waiting.is_empty() && !core.stop_all {
        tracing::warn!(
            trials = waiting.len(),
            "no trial can run any more (the scheduler holds them); ending them"
        );
    }
    for i in waiting {
        core.finish(i, TrialStatus::Terminated);
    }
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

impl TrialResult {
    /// The config value at a dotted path (`"params.max_depth"`).
    pub fn config_value(&self, dotted: &str) -> Option<&Value> {
        dotted.split('.').try_fold(&self.config, |v, k| v.get(k))
    }
}
