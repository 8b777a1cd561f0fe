//! Running a trial: its run directory and recorder, attempts retried from the latest
//! checkpoint, and one thread per worker whose first failure releases the others.

use std::{
    collections::BTreeMap,
    panic::{AssertUnwindSafe, catch_unwind},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use air_checkpoint::Checkpoint;
use air_data::Dataset;
use serde_json::Value;

use super::*;
use crate::{
    Collective, ComputeDevice, LocalCollective, MaxFailures, TrainError,
    error::Result,
    panic_message,
    run::{Recorder, RecorderOptions, default_run_name},
    run_dir::RunDir,
    session::{Session, Shared},
};

impl DataParallelTrainer {
    pub(super) fn run_inner(&self, config: &Value, trial: &TrialInfo) -> Result<TrainResult> {
        self.run.validate()?;
        let (loop_config, scaling, variant) = self.merged_variant(config)?;
        if scaling.use_gpu() {
            // Fail before any worker starts when this build cannot reach a GPU at all.
            for index in 0..scaling.num_workers() {
                ComputeDevice::Cuda { index }.check_available()?;
            }
        }
        if let Some(env) = &self.process
            && env.world_size != scaling.num_workers()
        {
            return Err(TrainError::InvalidConfig {
                field: "scaling_config.num_workers",
                value: scaling.num_workers().to_string(),
                expected: format!(
                    "{}, the world size from {}: each process is one worker",
                    env.world_size, env.launcher
                ),
            });
        }
        let trainer = Self {
            scaling,
            ..self.clone()
        };
        let storage_path = trial
            .storage_path
            .as_deref()
            .unwrap_or(self.run.storage_path());
        let name = match (&trial.name, self.run.name()) {
            (Some(n), _) => n.clone(),
            (None, Some(n)) => n.to_owned(),
            (None, None) => default_run_name(&self.name, storage_path),
        };
        // The processes of a run join once, before anything is prepared or written.
        let cluster = match &self.process {
            Some(env) => Some(Arc::new(crate::cluster::TcpCollective::connect(
                env,
                std::time::Duration::from_secs(JOIN_TIMEOUT_S),
            )?)),
            None => None,
        };
        // A tuner names its trials and restores them itself.
        let plain_run = trial
            .name
            .is_none()
            .then_some((storage_path, name.as_str()));
        let setup = trainer.setup(&variant, plain_run, cluster.as_deref())?;
        let prepared = setup.prepared;
        let shards = trainer.shards(&prepared)?;
        let storage = match &self.process {
            // Only rank 0 writes; the others' recorder (which records nothing: only rank 0
            // records reports) lives in memory.
            Some(env) if env.rank != 0 => RunDir::create(
                &format!("memory://air-rank-{}-{}", env.rank, std::process::id()),
                &name,
                &self.storage_options,
            )?,
            _ => RunDir::create(storage_path, &name, &self.storage_options)?,
        };
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
        let context = crate::TrialContext::new(
            &trial_id,
            &name,
            &storage.path(),
            storage_path,
            config.clone(),
        );
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
                batched_files: trial.batched_result_files.clone(),
                // A tuner calls the callbacks of its own run config, on the driver.
                callbacks: if plain_run.is_some() {
                    self.run.callbacks().clone()
                } else {
                    crate::Callbacks::default()
                },
                context,
                label: name.clone(),
            },
        )?;
        let continued = setup.continued.as_ref();
        let resume_from = match continued {
            // The earlier run's own checkpoint, or none (it starts over).
            Some(c) => c.checkpoint.as_ref(),
            None => trial.resume_from.as_ref().or(self.resume_from.as_ref()),
        };
        if let Some(c) = resume_from {
            let iteration = c.metadata_value::<u64>("training_iteration")?.unwrap_or(0);
            let total = c.metadata_value::<f64>("time_total_s")?.unwrap_or(0.0);
            recorder.resume_from(iteration, total);
        }
        if trial.resume_from.is_some() || continued.is_some() {
            recorder.continue_run()?;
        } else {
            recorder.start()?;
        }
        let recorder = Arc::new(Mutex::new(recorder));
        let error = trainer.attempts(
            &loop_config,
            (&name, &trial_id),
            &shards,
            (resume_from, cluster),
            &recorder,
        );
        let mut r = recorder.lock().unwrap_or_else(|p| p.into_inner());
        // The reported rows are on disk before anyone learns the run ended.
        let closed = r.close_files(error.as_ref());
        let error = error.or(closed.err());
        r.finish(error.as_ref());
        let ranked = r.ranked();
        Ok(TrainResult {
            metrics: r.last_metrics().cloned().unwrap_or_default(),
            checkpoint: r.latest_checkpoint().map(|k| k.checkpoint.clone()),
            error,
            path: r.storage().path(),
            history: r.take_history(),
            best_checkpoints: ranked
                .into_iter()
                .map(|k| (k.checkpoint, k.metrics))
                .collect(),
            config: config.clone(),
        })
    }

    /// Attempts until one succeeds or the failure budget is spent: each restart resumes from
    /// the run's latest checkpoint (or `resume_from`). `None` on success, else the final error.
    /// Across processes (`cluster`) there is one attempt: a failure ends every rank, and the
    /// launcher's relaunch resumes from the checkpoint in storage ([`ExistingRun::Resume`]).
    fn attempts(
        &self,
        loop_config: &Value,
        (name, trial_id): (&str, &str),
        shards: &[BTreeMap<String, Dataset>],
        (resume_from, cluster): (
            Option<&Checkpoint>,
            Option<Arc<crate::cluster::TcpCollective>>,
        ),
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
            let collective = cluster.clone().map(|c| c as Arc<dyn Collective>);
            let Err(failure) = self.attempt(
                loop_config,
                (name, trial_id),
                shards,
                resume,
                (collective, recorder),
            ) else {
                return None;
            };
            failures += 1;
            if cluster.is_none() && self.run.failure_config().may_retry(failures) {
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
                source: failure.source,
                failures,
                allowed: match self.run.failure_config().max_failures() {
                    MaxFailures::Limited(n) => format!("{n} restart(s)"),
                    MaxFailures::Unlimited => "unlimited restarts".to_owned(),
                },
            });
        }
    }

    /// One attempt: all workers from `resume`, until they finish or one fails. `cluster` is
    /// the collective of a multi-process run, of which this process runs its own rank.
    fn attempt(
        &self,
        loop_config: &Value,
        (name, trial_id): (&str, &str),
        shards: &[BTreeMap<String, Dataset>],
        resume: Option<Checkpoint>,
        (cluster, recorder): (Option<Arc<dyn Collective>>, &Arc<Mutex<Recorder>>),
    ) -> Result<(), Failure> {
        let n = self.scaling.num_workers();
        // The ranks this process runs: all of them on threads, or its own.
        let (collective, ranks): (Arc<dyn Collective>, Vec<usize>) = match (cluster, &self.process)
        {
            (Some(c), Some(env)) => (c, vec![env.rank]),
            _ => match self.collective {
                CollectiveBackend::Local => (Arc::new(LocalCollective::new(n)), (0..n).collect()),
                #[cfg(feature = "collective")]
                CollectiveBackend::Burn => (
                    Arc::new(crate::burn::BurnCollective::new(n)),
                    (0..n).collect(),
                ),
            },
        };
        let shared = Arc::new(Shared {
            collective: collective.clone(),
            recorder: recorder.clone(),
            stop: Mutex::new(None),
            failed: AtomicBool::new(false),
        });
        let session = |rank: usize| Session {
            rank,
            local_rank: self.process.as_ref().map_or(rank, |e| e.local_rank),
            world_size: n,
            device: ComputeDevice::for_worker(
                self.scaling.use_gpu(),
                self.process.as_ref().map_or(rank, |e| e.local_rank),
            ),
            config: loop_config.clone(),
            trial_name: name.to_owned(),
            trial_id: trial_id.to_owned(),
            shards: shards[rank].clone(),
            checkpoint: resume.clone(),
            shared: shared.clone(),
            stop_delivered: false,
        };
        let outcomes: Vec<Result<(), Failure>> = if let [rank] = ranks[..] {
            // One worker runs on the calling thread (a thread per trial of a sweep of small
            // trials is a measurable share of its time); it catches its own panics.
            vec![run_worker(self.train_loop.as_ref(), session(rank))]
        } else {
            std::thread::scope(|scope| {
                let handles: Vec<_> = ranks
                    .iter()
                    .map(|&rank| {
                        let (session, train_loop) = (session(rank), self.train_loop.clone());
                        std::thread::Builder::new()
                            .name(format!("air-train-worker-{rank}"))
                            .spawn_scoped(scope, move || run_worker(train_loop.as_ref(), session))
                    })
                    .collect();
                if let Some((rank, Err(e))) = ranks.iter().zip(&handles).find(|(_, h)| h.is_err()) {
                    // The workers already started must not wait for one that never will.
                    collective.abort(&format!("worker {rank} could not start: {e}"));
                }
                handles
                    .into_iter()
                    .zip(ranks.iter().copied())
                    .map(|(h, rank)| match h {
                        Ok(h) => h.join().unwrap_or_else(|p| {
                            Err(Failure {
                                rank,
                                what: "panicked",
                                message: panic_message(p.as_ref()),
                                source: None,
                                secondary: false,
                            })
                        }),
                        Err(e) => Err(Failure {
                            rank,
                            what: "returned an error",
                            message: format!("the worker thread could not be started: {e}"),
                            source: Some(e.into()),
                            secondary: false,
                        }),
                    })
                    .collect()
            })
        };
        // Report the failure that caused the others (a peer's abandoned wait is secondary).
        let mut failures: Vec<Failure> = outcomes.into_iter().filter_map(Result::err).collect();
        failures.sort_by_key(|f| (f.secondary, f.rank));
        match failures.into_iter().next() {
            None => Ok(()),
            Some(f) => Err(f),
        }
    }
}

/// How long the processes of a multi-process run may take to find each other.
const JOIN_TIMEOUT_S: u64 = 120;

#[derive(Debug)]
struct Failure {
    rank: usize,
    what: &'static str,
    message: String,
    /// The error the worker returned (a panic has none).
    source: Option<LoopError>,
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
            Some(e),
        )),
        Err(panic) => Some(("panicked", panic_message(panic.as_ref()), false, None)),
    };
    let (what, message, aborted, source) = match failure {
        None => match collective.finish(rank) {
            Ok(()) => return Ok(()),
            Err(e) => {
                let aborted = is_collective_aborted(&e);
                ("returned an error", e.to_string(), aborted, Some(e.into()))
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
        source,
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
