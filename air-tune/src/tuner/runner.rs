//! The experiment's run loop: starts trials on the resource pool, hands their results to the
//! searcher, scheduler and stoppers, retries failures, and saves the state as it goes.

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    sync::{Arc, Condvar, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use air_checkpoint::{Checkpoint, StorageOptions};
use air_train::{
    Callbacks, CheckpointConfig, FailureConfig, Metrics, ResultFiles, RunDir, TrainError,
    TrainResult, Trainable, TrialContext, TrialInfo, Verbosity,
};
use serde_json::Value;

use super::{
    Tuner,
    processes::{self, TrialRequest},
    state::{
        EXPERIMENT_STATE, FORMAT, RestorePolicy, SavedExperiment, SavedTrial, VERSION,
        experiment_dir, now_unix, restore_into, restored_trial,
    },
    threads::TrialThreads,
};
use crate::{
    config::{Mode, Resources},
    error::Result,
    result::{ResultGrid, TrialResult},
    schedule::{Decision, Fifo, TrialScheduler},
    search::{BasicVariantGenerator, SearchContext, Searcher, Suggestion},
    space::Space,
    status::StatusTable,
    stopper::Stopper,
    trial::{Pending, Trial, TrialStatus, TrialTable},
};

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

/// What runs one trial on a thread, ending in its outcome.
type TrialJob = Box<dyn FnOnce() -> Outcome + Send>;

/// What the experiment fixes before its first trial: read by whichever thread starts trials.
struct Plan {
    trainable: Arc<dyn Trainable>,
    exp_dir: RunDir,
    experiment_id: String,
    num_samples: usize,
    max_concurrent: Option<usize>,
    time_budget: Option<Duration>,
    /// When the experiment started (for the time budget).
    started: Instant,
    pool: Resources,
    resources_per_trial: Option<Resources>,
    result_files: bool,
    /// The result files of trials on threads of this process, written in batches: flushed
    /// before every state save (trial processes write their own, and with callbacks on the
    /// run config every row is written at once).
    batched_files: Option<ResultFiles>,
    failure: FailureConfig,
    checkpoint_config: Option<CheckpointConfig>,
    options: StorageOptions,
    searcher_total: Option<usize>,
    executor: crate::TrialExecutor,
    /// The threads trials run on (kept between trials).
    threads: TrialThreads,
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
    /// The controller has returned: nothing starts any more.
    closed: bool,
    dirty: bool,
    /// Resources the running trials hold.
    used: Resources,
    running: usize,
    /// Trials created from the searcher (restored ones included).
    created: usize,
    searcher_done: bool,
    /// Credentials for reading other trials' checkpoints (PBT's exploit).
    storage_options: StorageOptions,
    /// The tuner's run config's callbacks, told of every trial's events.
    callbacks: Callbacks,
    experiment_path: String,
}

/// The core, its condition variable (a trial thread that starts nothing wakes the
/// controller), and the plan.
struct Inner {
    core: Mutex<Core>,
    wake: Condvar,
    plan: Plan,
}

type Shared = Arc<Inner>;

fn lock(shared: &Shared) -> MutexGuard<'_, Core> {
    shared.core.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether a step keeps one started trial for the thread that took it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keep {
    /// A trial thread whose trial ended runs the next trial itself: no hand-off, no wake-up.
    One,
    /// The controller hands every started trial to a trial thread.
    None,
}

impl Core {
    /// What the callbacks are told about trial `idx`.
    fn context(&self, idx: usize) -> TrialContext {
        let t = &self.table.trials[idx];
        TrialContext::new(
            &t.id,
            &t.name,
            &t.path,
            &self.experiment_path,
            t.config.clone(),
        )
    }

    /// A result of trial `idx`, on its own thread: records it and decides whether it goes on.
    fn on_result(&mut self, idx: usize, m: &Metrics) -> bool {
        if !self.callbacks.is_empty() {
            let context = self.context(idx);
            if let Some(name) = m.get("checkpoint_dir_name").and_then(Value::as_str) {
                let location = format!("{}/{name}", context.path.trim_end_matches('/'));
                self.callbacks.notify("on_checkpoint", |c| {
                    c.on_checkpoint(&context, name, &location, m)
                });
            }
            self.callbacks
                .notify("on_trial_result", |c| c.on_trial_result(&context, m));
        }
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
        self.table.set_status(idx, status);
        if status == TrialStatus::Terminated && !self.callbacks.is_empty() {
            let context = self.context(idx);
            let last = self.table.trials[idx].last_result().cloned();
            self.callbacks.notify("on_trial_complete", |c| {
                c.on_trial_complete(&context, last.as_ref())
            });
        }
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
            if !self.callbacks.is_empty() {
                let context = self.context(idx);
                self.callbacks
                    .notify("on_trial_error", |c| c.on_trial_error(&context, &msg));
            }
            let t = &mut self.table.trials[idx];
            t.num_failures += 1;
            t.error = Some(msg.clone());
            t.pending = None;
            if !stop_all && !failure.fail_fast() && failure.may_retry(t.num_failures) {
                tracing::warn!(trial = %t.id, failures = t.num_failures, error = %msg,
                    "trial failed; retrying from its latest checkpoint");
                t.resume = t.latest_checkpoint.clone();
                self.table.set_status(idx, TrialStatus::Pending);
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
                t.resume = t.latest_checkpoint.clone();
                self.table.set_status(idx, TrialStatus::Paused);
            }
            Some(Pending::Exploit { source, config }) if !stop_all => {
                let src = self.table.get(&source).and_then(|s| {
                    let name = s.checkpoint_dir.as_ref()?;
                    let dir = RunDir::at(&s.path, &self.storage_options).ok()?;
                    in_memory(&dir.checkpoint(name).ok()?)
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
                self.table.set_status(idx, TrialStatus::Pending);
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

    /// Takes in the trials that ended, then starts what the pool, the concurrency limit and the
    /// scheduler allow. With [`Keep::One`] the first trial started is returned to run on the
    /// calling thread; the others go to trial threads. The second value: whether any started.
    fn step(&mut self, shared: &Shared, keep: Keep) -> (Option<(usize, TrialJob)>, bool) {
        let plan = &shared.plan;
        for (idx, outcome) in std::mem::take(&mut self.finished) {
            self.running -= 1;
            let held = self.table.trials[idx].resources.clone();
            self.used -= &held;
            self.complete(idx, outcome, &plan.failure);
        }
        if plan
            .time_budget
            .is_some_and(|b| plan.started.elapsed() >= b)
            && !self.stop_all
        {
            tracing::info!("time budget reached; stopping every trial");
            self.stop_all = true;
        }
        if let Some(s) = &mut self.stopper
            && s.stop_all()
        {
            self.stop_all = true;
        }
        let mut kept = None;
        let mut launched_any = false;
        while !self.stop_all && !self.closed && plan.max_concurrent.is_none_or(|m| self.running < m)
        {
            let chosen = {
                let Core {
                    table, scheduler, ..
                } = &mut *self;
                let candidates: Vec<&str> = table
                    .waiting()
                    .map(|i| table.trials[i].id.as_str())
                    .collect();
                if candidates.is_empty() {
                    None
                } else {
                    scheduler
                        .choose_trial_to_run(table, &candidates)
                        .and_then(|id| table.index.get(&id).copied())
                }
            };
            let was_done = self.searcher_done;
            let Some(idx) = chosen.or_else(|| self.create(plan)) else {
                if self.searcher_done && !was_done {
                    // Schedulers holding trials for more to come can act now.
                    let Core {
                        table, scheduler, ..
                    } = &mut *self;
                    scheduler.on_search_finished(table);
                    continue;
                }
                break;
            };
            let need = self.table.trials[idx].resources.clone();
            if !need.fits_within(&Resources::new(), &plan.pool) {
                let msg = format!(
                    "the trial needs {need} but the pool has {}; lower the trial's \
                     resources (num_workers) or raise TuneConfig::with_total_resources",
                    plan.pool
                );
                self.table.trials[idx].error = Some(msg);
                self.finish(idx, TrialStatus::Error);
                continue;
            }
            if !need.fits_within(&self.used, &plan.pool) {
                break;
            }
            self.used += &need;
            self.running += 1;
            launched_any = true;
            let job = self.start(shared, idx);
            if keep == Keep::One && kept.is_none() {
                kept = Some((idx, job));
                continue;
            }
            let thread_shared = shared.clone();
            let spawned = plan
                .threads
                .run(Box::new(move || trial_thread(thread_shared, idx, job)));
            if let Err(e) = spawned {
                self.finished.push((
                    idx,
                    Outcome::Panicked(format!("the trial thread could not be started: {e}")),
                ));
            }
        }
        (kept, launched_any)
    }

    /// Marks trial `idx` running and returns what runs it.
    fn start(&mut self, shared: &Shared, idx: usize) -> TrialJob {
        let plan = &shared.plan;
        self.table.set_status(idx, TrialStatus::Running);
        let t = &mut self.table.trials[idx];
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
                if let Ok(dir) = RunDir::at(&t.path, &plan.options) {
                    for f in ["result.json", "progress.csv"] {
                        if let Err(e) = dir.remove_file(f) {
                            tracing::warn!(trial = %t.id, error = %e, "could not clear {f}");
                        }
                    }
                }
            }
            None => {}
        }
        t.started_before = true;
        if !self.callbacks.is_empty() {
            let context = self.context(idx);
            let history = &self.table.trials[idx].history;
            self.callbacks
                .notify("on_trial_start", |c| c.on_trial_start(&context, history));
        }
        let t = &mut self.table.trials[idx];
        let hook_shared = shared.clone();
        let on_result = move |m: &Metrics| lock(&hook_shared).on_result(idx, m);
        let config = t.config.clone();
        tracing::info!(trial = %t.id, config = %config, "trial started");
        trial_job(plan, t, config, on_result)
    }

    /// Creates the next trial from the searcher; `None` when there is none now.
    fn create(&mut self, plan: &Plan) -> Option<usize> {
        if self.searcher_done {
            return None;
        }
        if plan.searcher_total.is_none() && self.created >= plan.num_samples {
            self.searcher_done = true;
            return None;
        }
        let id = format!("{}_{:05}", plan.experiment_id, self.created);
        match self.searcher.suggest(&id) {
            Suggestion::Config(config) => {
                self.created += 1;
                let name = format!("{}_{id}", plan.trainable.trainable_name());
                let resources = plan
                    .resources_per_trial
                    .clone()
                    .unwrap_or_else(|| plan.trainable.resources(&config));
                let path = plan.exp_dir.child(&name);
                let idx = self
                    .table
                    .push(Trial::new(id.clone(), name, config, path, resources));
                let Core {
                    table, scheduler, ..
                } = self;
                scheduler.on_trial_add(table, &table.trials[idx]);
                self.dirty = true;
                Some(idx)
            }
            Suggestion::Pending => None,
            Suggestion::Finished => {
                self.searcher_done = true;
                None
            }
        }
    }
}

/// A trial thread: runs trial `idx`, then takes in its outcome and starts what can start,
/// running the next trial itself while there is one. Wakes the controller when it starts
/// nothing (the experiment may be over, or waits for something only the controller does).
fn trial_thread(shared: Shared, mut idx: usize, mut job: TrialJob) {
    loop {
        let outcome = job();
        let mut core = lock(&shared);
        core.finished.push((idx, outcome));
        let (next, _) = core.step(&shared, Keep::One);
        drop(core);
        match next {
            Some((i, j)) => (idx, job) = (i, j),
            None => {
                shared.wake.notify_all();
                return;
            }
        }
    }
}

/// What runs trial `t` on its thread: the trainable, or (process executor) a process of this
/// program, ending in the trial's outcome.
fn trial_job(
    plan: &Plan,
    t: &mut Trial,
    config: Value,
    on_result: impl Fn(&Metrics) -> bool + Send + Sync + 'static,
) -> TrialJob {
    match &plan.executor {
        crate::TrialExecutor::Processes(launcher) => match trial_request(plan, t) {
            Ok(request) => {
                let (launcher, options) = (launcher.clone(), plan.options.clone());
                let resources = t.resources.clone();
                Box::new(move || {
                    let r = processes::run_process(
                        &launcher, &request, &resources, &options, on_result,
                    );
                    Outcome::Done(Box::new(r.unwrap_or_else(|message| {
                        let mut failed = TrainResult::failed(
                            TrainError::TrialProcess(message),
                            request.config.clone(),
                        );
                        // What the lost process had saved, to retry from.
                        failed.checkpoint =
                            processes::newest_checkpoint(&request_path(&request), &options);
                        failed
                    })))
                })
            }
            Err(e) => {
                let message = e.to_string();
                Box::new(move || Outcome::Panicked(message))
            }
        },
        _ => {
            let info = TrialInfo::new(&t.name, &t.id)
                .with_storage_path(&plan.exp_dir.path())
                .with_on_report(on_result)
                .with_resume_from(t.resume.take())
                .with_result_files(plan.result_files)
                .with_batched_result_files(plan.batched_files.clone())
                .with_checkpoint_config(plan.checkpoint_config.clone())
                .with_quiet(true);
            let trainable = plan.trainable.clone();
            Box::new(move || {
                let out = catch_unwind(AssertUnwindSafe(|| trainable.run_trial(&config, &info)));
                match out {
                    Ok(r) => Outcome::Done(Box::new(r)),
                    Err(p) => Outcome::Panicked(air_train::panic_message(p.as_ref())),
                }
            })
        }
    }
}

/// What a trial process is told: the trial, and where to resume from.
fn trial_request(plan: &Plan, t: &mut Trial) -> std::result::Result<TrialRequest, TrainError> {
    let resume = match t.resume.take() {
        Some(c) => Some(processes::resume_location(&c, &t.path, &plan.options)?),
        None => None,
    };
    Ok(TrialRequest {
        name: t.name.clone(),
        id: t.id.clone(),
        storage_path: plan.exp_dir.path(),
        config: t.config.clone(),
        resume,
        checkpoint_config: plan.checkpoint_config.clone(),
        result_files: plan.result_files,
    })
}

pub(super) struct Runner {
    space: Arc<Space>,
    shared: Shared,
    metric: Option<String>,
    mode: Option<Mode>,
    seed: u64,
    state_period: Option<Duration>,
    status: StatusTable,
}

impl Runner {
    pub(super) fn new(tuner: Tuner) -> Result<Self> {
        tuner.space.validate()?;
        tuner.run.validate()?;
        tuner.tune.validate()?;
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
        let core = Core {
            table,
            searcher,
            scheduler,
            stopper,
            stop_dict,
            finished: Vec::new(),
            stop_all: false,
            closed: false,
            dirty: true,
            used: Resources::new(),
            running: 0,
            created,
            searcher_done: false,
            storage_options: storage_options.clone(),
            callbacks: run.callbacks().clone(),
            experiment_path: exp_dir.path(),
        };
        let plan = Plan {
            trainable,
            exp_dir,
            experiment_id,
            num_samples: tune.num_samples,
            max_concurrent: tune.max_concurrent_trials,
            time_budget: tune.time_budget,
            started: Instant::now(),
            pool,
            resources_per_trial: tune.resources_per_trial,
            result_files: tune.result_files,
            // A callback may read a result's file when it hears of it: with callbacks, rows
            // are written one by one.
            batched_files: (tune.result_files
                && run.callbacks().is_empty()
                && !matches!(tune.executor, crate::TrialExecutor::Processes(_)))
            .then(ResultFiles::new),
            failure: *run.failure_config(),
            checkpoint_config: (*run.checkpoint_config() != CheckpointConfig::default())
                .then(|| run.checkpoint_config().clone()),
            options: storage_options,
            searcher_total,
            executor: tune.executor,
            threads: TrialThreads::new(),
        };
        Ok(Self {
            space,
            shared: Arc::new(Inner {
                core: Mutex::new(core),
                wake: Condvar::new(),
                plan,
            }),
            metric: tune.metric,
            mode: tune.mode,
            seed,
            state_period: tune.state_period,
            status,
        })
    }

    /// Writes the rows the trials' result files lack.
    fn flush_files(&self) -> Result<()> {
        match &self.shared.plan.batched_files {
            Some(files) => Ok(files.flush()?),
            None => Ok(()),
        }
    }

    /// Saves the experiment state, after the result files: a result is on disk before the
    /// state says it happened.
    fn save(&self, core: &Core, finished: bool) -> Result<()> {
        self.flush_files()?;
        let plan = &self.shared.plan;
        let saved = SavedExperiment {
            format: FORMAT.to_owned(),
            version: VERSION,
            experiment_id: plan.experiment_id.clone(),
            trainable: plan.trainable.trainable_name().to_owned(),
            metric: self.metric.clone(),
            mode: self.mode,
            num_samples: plan.num_samples,
            max_concurrent_trials: plan.max_concurrent,
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
        let bytes = serde_json::to_vec(&saved)
            .map_err(|e| TrainError::storage(plan.exp_dir.child(EXPERIMENT_STATE), e))?;
        Ok(plan.exp_dir.write(EXPERIMENT_STATE, bytes)?)
    }

    pub(super) fn run(mut self) -> Result<ResultGrid> {
        let shared = self.shared.clone();
        let (mut core, outcome) = self.control(lock(&shared));
        // Whatever happened, no trial starts after the controller is gone.
        core.closed = true;
        if outcome.is_err() {
            core.stop_all = true;
        }
        outcome?;
        Ok(self.result_grid(&mut core))
    }

    /// The controller: starts the first trials, saves the state as it goes and draws the
    /// status, while trial threads start the trials after theirs; returns when nothing runs and
    /// nothing can start.
    fn control<'a>(
        &mut self,
        mut core: MutexGuard<'a, Core>,
    ) -> (MutexGuard<'a, Core>, Result<()>) {
        let shared = self.shared.clone();
        let started = shared.plan.started;
        let mut last_save: Option<(Instant, Duration)> = None;
        loop {
            let (_, launched_any) = core.step(&shared, Keep::None);
            if core.running == 0 && core.finished.is_empty() && !launched_any {
                end_waiting_trials(&mut core);
                break;
            }
            // Without a set period, wait 20× the last save's duration (at least 20 ms), so that
            // saving the state takes about 5% of the experiment's time.
            let period = self.state_period.unwrap_or_else(|| {
                last_save.map_or(Duration::ZERO, |(_, took)| {
                    (took * 20).max(Duration::from_millis(20))
                })
            });
            let due = last_save.map_or(Duration::ZERO, |(at, _)| {
                period.saturating_sub(at.elapsed())
            });
            if core.dirty && due.is_zero() {
                let t0 = Instant::now();
                if let Err(e) = self.flush_files() {
                    // The trial whose file it is fails with this at its end; the state waits.
                    tracing::warn!(error = %e, "a result file could not be written; \
                        the experiment state is saved once it is");
                } else if let Err(e) = self.save(&core, false) {
                    return (core, Err(e));
                } else {
                    core.dirty = false;
                }
                last_save = Some((Instant::now(), t0.elapsed()));
            }
            self.status.draw(&core.table, started.elapsed(), false);
            if core.finished.is_empty() {
                // Trial threads take in each other's outcomes without waking this: it wakes
                // when a save falls due (trial threads mark the state dirty as they go), for
                // the status, or when a trial thread started nothing.
                let wait = if due.is_zero() { period } else { due }
                    .clamp(Duration::from_millis(1), Duration::from_millis(250));
                core = shared
                    .wake
                    .wait_timeout(core, wait)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
        }
        if let Err(e) = self.save(&core, true) {
            return (core, Err(e));
        }
        self.status.draw(&core.table, started.elapsed(), true);
        let path = &core.experiment_path;
        core.callbacks
            .notify("on_experiment_end", |c| c.on_experiment_end(path));
        (core, Ok(()))
    }

    /// Every trial's outcome, its history moved out of the table.
    fn result_grid(&self, core: &mut Core) -> ResultGrid {
        let plan = &self.shared.plan;
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
                // A trial that never reported a checkpoint has none to look for.
                checkpoint: t.latest_checkpoint.clone().or_else(|| {
                    t.checkpoint_dir.as_ref()?;
                    RunDir::at(&t.path, &plan.options).ok()?.newest_checkpoint()
                }),
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
            experiment_path: plan.exp_dir.path(),
        }
    }
}

/// A trial's directory: its name under the experiment's.
fn request_path(request: &TrialRequest) -> String {
    format!(
        "{}/{}",
        request.storage_path.trim_end_matches('/'),
        request.name
    )
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
