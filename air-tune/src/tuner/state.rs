//! The experiment directory and the state saved in it (`experiment_state.json`): what a
//! restored experiment reads back, and how its trials continue.

use std::time::{SystemTime, UNIX_EPOCH};

use air_checkpoint::StorageOptions;
use air_train::{Metrics, RunConfig, RunDir, Trainable};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    config::{Mode, Resources},
    error::{Result, TuneError},
    schedule::TrialScheduler,
    search::Searcher,
    trial::{Trial, TrialStatus},
};

/// The experiment state file under the experiment directory.
pub const EXPERIMENT_STATE: &str = "experiment_state.json";
pub(crate) const FORMAT: &str = "air-tune-experiment";
pub(crate) const VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SavedTrial {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) config: Value,
    pub(crate) status: TrialStatus,
    pub(crate) num_failures: usize,
    pub(crate) error: Option<String>,
    pub(crate) last_result: Option<Metrics>,
    pub(crate) checkpoint_dir: Option<String>,
    pub(crate) resources: Resources,
    pub(crate) path: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SavedExperiment {
    pub(crate) format: String,
    pub(crate) version: u32,
    pub(crate) experiment_id: String,
    pub(crate) trainable: String,
    pub(crate) metric: Option<String>,
    pub(crate) mode: Option<Mode>,
    pub(crate) num_samples: usize,
    pub(crate) max_concurrent_trials: Option<usize>,
    pub(crate) seed: u64,
    pub(crate) searcher: String,
    pub(crate) searcher_state: Value,
    pub(crate) scheduler: String,
    pub(crate) scheduler_state: Value,
    pub(crate) param_space: Value,
    pub(crate) trials: Vec<SavedTrial>,
    pub(crate) finished: bool,
    pub(crate) timestamp: u64,
}

/// The experiment's folder under the run's storage path (created when local): a new
/// experiment refuses a folder that already holds one.
pub(crate) fn experiment_dir(
    run: &RunConfig,
    trainable: &dyn Trainable,
    restoring: bool,
    options: &StorageOptions,
) -> Result<RunDir> {
    let storage_path = run.storage_path().trim_end_matches('/').to_owned();
    let name = match run.name() {
        Some(n) => n.to_owned(),
        None => air_train::default_run_name(trainable.trainable_name(), &storage_path),
    };
    // Creating a folder that already holds an experiment changes nothing; refusing it below
    // leaves it as it was.
    let exp_dir = RunDir::create(&storage_path, &name, options)?;
    if !restoring && exp_dir.exists(EXPERIMENT_STATE)? {
        return Err(TuneError::InvalidConfig {
            field: "run_config.name",
            value: exp_dir.path(),
            expected: "a new experiment directory; continue this one with Tuner::restore, or \
                       pick another name"
                .to_owned(),
        });
    }
    tracing::info!(
        experiment = %exp_dir.path(),
        "tuning {}: results go to {}",
        trainable.trainable_name(),
        exp_dir.path()
    );
    Ok(exp_dir)
}

/// What a restored experiment does with its unfinished and failed trials.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RestorePolicy {
    pub(crate) resume_unfinished: bool,
    pub(crate) resume_errored: bool,
    pub(crate) restart_errored: bool,
}

/// Gives the searcher and scheduler their saved state, after checking they are the ones the
/// experiment ran with.
pub(crate) fn restore_into(
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
pub(crate) fn restored_trial(
    s: &SavedTrial,
    policy: RestorePolicy,
    options: &StorageOptions,
) -> Trial {
    let mut t = Trial::new(
        s.id.clone(),
        s.name.clone(),
        s.config.clone(),
        s.path.clone(),
        s.resources.clone(),
    );
    t.status = s.status;
    let dir = RunDir::at(&s.path, options).ok();
    t.history = dir.as_ref().map(load_history).unwrap_or_default();
    t.saved_last_result.clone_from(&s.last_result);
    t.num_failures = s.num_failures;
    t.error.clone_from(&s.error);
    t.checkpoint_dir.clone_from(&s.checkpoint_dir);
    t.started_before = true;
    t.latest_checkpoint = dir.as_ref().and_then(RunDir::newest_checkpoint);
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
pub(crate) fn default_storage() -> String {
    std::env::var("AIR_STORAGE_PATH").unwrap_or_else(|_| {
        let home = std::env::var("HOME").unwrap_or_else(|_| ".".to_owned());
        format!("{home}/air_results")
    })
}

pub(crate) fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub(crate) fn read_state(path: &str, options: &StorageOptions) -> Result<SavedExperiment> {
    let restore_err = |reason: String| TuneError::Restore {
        path: path.to_owned(),
        reason,
    };
    let bytes = RunDir::at(path, options)?
        .read(EXPERIMENT_STATE)?
        .ok_or_else(|| {
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

/// The metrics a trial reported, from its `result.json` (empty when there is none).
pub(crate) fn load_history(trial_dir: &RunDir) -> Vec<Metrics> {
    trial_dir
        .read("result.json")
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
