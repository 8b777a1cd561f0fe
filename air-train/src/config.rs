//! Run configuration: how many workers, where results go, what to keep, how to survive failures.
//!
//! Every config is plain serde data (so a tuner can merge a JSON trial config into it) and is
//! validated when built and again when a trainer takes it: an invalid combination is an error
//! naming the field, the value and what is expected.

use std::{collections::BTreeMap, num::NonZeroUsize, sync::Arc};

use serde::{Deserialize, Serialize};

use crate::{
    Resources, TrainError,
    callback::{Callback, Callbacks},
};

fn invalid(field: &'static str, value: impl ToString, expected: &str) -> TrainError {
    TrainError::InvalidConfig {
        field,
        value: value.to_string(),
        expected: expected.to_owned(),
    }
}

/// How many workers train and what each one gets (Ray's `ScalingConfig`).
///
/// ```
/// use air_train::{Resources, ScalingConfig};
///
/// let scaling = ScalingConfig::new(std::num::NonZeroUsize::new(3).unwrap()).with_resources_per_worker(Resources::cpu(2.0))?;
/// assert_eq!(scaling.total_resources().cpu, 6.0);
/// // A count of 0 cannot be written; from JSON it is refused by name.
/// let zero: ScalingConfig = serde_json::from_value(serde_json::json!({"num_workers": 0}))?;
/// assert!(zero.validate().unwrap_err().to_string().contains("num_workers"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScalingConfig {
    num_workers: usize,
    #[serde(default)]
    use_gpu: bool,
    #[serde(default)]
    resources_per_worker: Option<Resources>,
    #[serde(default)]
    trainer_resources: Resources,
}

impl ScalingConfig {
    /// `num_workers` workers, on the CPU. (The setters below check what they set; a config
    /// read from JSON is checked by [`validate`](Self::validate).)
    pub fn new(num_workers: NonZeroUsize) -> Self {
        Self {
            num_workers: num_workers.get(),
            use_gpu: false,
            resources_per_worker: None,
            trainer_resources: Resources::new(),
        }
    }

    /// One GPU per worker: worker *i* trains on CUDA device *i* (needs the `cuda` feature).
    pub fn with_use_gpu(mut self, use_gpu: bool) -> Result<Self, TrainError> {
        self.use_gpu = use_gpu;
        self.validate()?;
        Ok(self)
    }

    /// Resources each worker reserves (default: 1 CPU, and 1 GPU with `use_gpu`).
    pub fn with_resources_per_worker(mut self, resources: Resources) -> Result<Self, TrainError> {
        self.resources_per_worker = Some(resources);
        self.validate()?;
        Ok(self)
    }

    /// Resources the trainer itself reserves (Ray's `trainer_resources`).
    pub fn with_trainer_resources(mut self, resources: Resources) -> Result<Self, TrainError> {
        self.trainer_resources = resources;
        self.validate()?;
        Ok(self)
    }

    /// The number of workers.
    pub fn num_workers(&self) -> usize {
        self.num_workers
    }

    /// Whether workers train on GPUs.
    pub fn use_gpu(&self) -> bool {
        self.use_gpu
    }

    /// Per-worker resources, with Ray's defaults filled in (1 CPU; 1 GPU with `use_gpu` when
    /// the given resources name no GPU).
    pub fn worker_resources(&self) -> Resources {
        let mut r = self
            .resources_per_worker
            .clone()
            .unwrap_or_else(|| Resources::cpu(1.0));
        if self.use_gpu && r.gpu == 0.0 && self.resources_per_worker.is_none() {
            r.gpu = 1.0;
        }
        r
    }

    /// Everything the run reserves: the trainer's resources plus every worker's.
    pub fn total_resources(&self) -> Resources {
        let mut total = self.trainer_resources.clone();
        total += &self.worker_resources().times(self.num_workers as f64);
        total
    }

    /// Checks the combination (also run on configs read from JSON).
    pub fn validate(&self) -> Result<(), TrainError> {
        if self.num_workers == 0 {
            return Err(invalid("num_workers", 0, "at least 1 worker"));
        }
        if let Some(r) = &self.resources_per_worker {
            r.validate("resources_per_worker")?;
        }
        self.trainer_resources.validate("trainer_resources")?;
        if self.use_gpu
            && self
                .resources_per_worker
                .as_ref()
                .is_some_and(|r| r.gpu == 0.0)
        {
            return Err(invalid(
                "resources_per_worker",
                "GPU=0",
                "a positive GPU amount when use_gpu is true (or use_gpu = false)",
            ));
        }
        Ok(())
    }
}

/// Whether lower or higher values of a metric are better: how a run ranks its checkpoints
/// ([`CheckpointConfig::with_score_attribute`]) and how a tuner ranks its trials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Lower is better (a loss).
    Min,
    /// Higher is better (an accuracy).
    Max,
}

/// Which checkpoints a run keeps (Ray's `CheckpointConfig`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CheckpointConfig {
    num_to_keep: Option<NonZeroUsize>,
    checkpoint_score_attribute: Option<String>,
    checkpoint_score_order: Mode,
    checkpoint_frequency: usize,
    checkpoint_at_end: Option<bool>,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        Self {
            num_to_keep: None,
            checkpoint_score_attribute: None,
            // Ray's default order: higher scores are better.
            checkpoint_score_order: Mode::Max,
            checkpoint_frequency: 0,
            checkpoint_at_end: None,
        }
    }
}

impl CheckpointConfig {
    /// Keeps every checkpoint, ranked by recency.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps only the `n` best; the latest is kept too, so a run can resume.
    pub fn with_num_to_keep(mut self, n: NonZeroUsize) -> Self {
        self.num_to_keep = Some(n);
        self
    }

    /// Ranks checkpoints by this reported metric (by recency when unset).
    pub fn with_score_attribute(mut self, attribute: &str, order: Mode) -> Self {
        self.checkpoint_score_attribute = Some(attribute.to_owned());
        self.checkpoint_score_order = order;
        self
    }

    /// For trainers without a user loop (boosting, RL): checkpoint every `n` iterations (0:
    /// never).
    pub fn with_frequency(mut self, n: usize) -> Self {
        self.checkpoint_frequency = n;
        self
    }

    /// For trainers without a user loop: checkpoint when training ends.
    pub fn with_at_end(mut self, at_end: bool) -> Self {
        self.checkpoint_at_end = Some(at_end);
        self
    }

    /// How many to keep (`None`: all).
    pub fn num_to_keep(&self) -> Option<NonZeroUsize> {
        self.num_to_keep
    }

    /// The ranking metric and order.
    pub fn score(&self) -> Option<(&str, Mode)> {
        self.checkpoint_score_attribute
            .as_deref()
            .map(|a| (a, self.checkpoint_score_order))
    }

    /// Iterations between checkpoints of loop-less trainers (0: never).
    pub fn frequency(&self) -> usize {
        self.checkpoint_frequency
    }

    /// Whether loop-less trainers checkpoint at the end (`None`: the trainer decides).
    pub fn at_end(&self) -> Option<bool> {
        self.checkpoint_at_end
    }

    /// Checks the combination.
    pub fn validate(&self) -> Result<(), TrainError> {
        if self.checkpoint_score_attribute.as_deref() == Some("") {
            return Err(invalid(
                "checkpoint_score_attribute",
                "\"\"",
                "a reported metric name",
            ));
        }
        Ok(())
    }
}

/// How many times a failed run restarts from its latest checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MaxFailures {
    /// Up to this many restarts (0: fail on the first error).
    Limited(usize),
    /// Restart forever (Ray's `-1`).
    Unlimited,
}

impl Default for MaxFailures {
    fn default() -> Self {
        Self::Limited(0)
    }
}

/// What to do when a worker fails (Ray's `FailureConfig`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FailureConfig {
    max_failures: MaxFailures,
    fail_fast: bool,
}

impl FailureConfig {
    /// Restarts from the latest checkpoint up to `max_failures` times.
    pub fn new(max_failures: MaxFailures) -> Self {
        Self {
            max_failures,
            fail_fast: false,
        }
    }

    /// Stops every trial of a tuning run at the first failure; needs `max_failures` 0
    /// (checked by [`validate`](Self::validate) when the run starts).
    pub fn with_fail_fast(mut self, fail_fast: bool) -> Self {
        self.fail_fast = fail_fast;
        self
    }

    /// The restart budget.
    pub fn max_failures(&self) -> MaxFailures {
        self.max_failures
    }

    /// Whether the first failure ends a tuning run.
    pub fn fail_fast(&self) -> bool {
        self.fail_fast
    }

    /// Whether a run that has failed `failures` times may restart again.
    pub fn may_retry(&self, failures: usize) -> bool {
        match self.max_failures {
            MaxFailures::Limited(n) => failures <= n,
            MaxFailures::Unlimited => true,
        }
    }

    /// Checks the combination.
    pub fn validate(&self) -> Result<(), TrainError> {
        if self.fail_fast && self.max_failures != MaxFailures::Limited(0) {
            return Err(invalid(
                "fail_fast",
                true,
                "max_failures = 0 with fail_fast (a restarted trial cannot also stop the run)",
            ));
        }
        Ok(())
    }
}

/// How much a run prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verbosity {
    /// Nothing.
    Silent,
    /// A progress bar with the latest metrics when attached to a terminal (the default).
    #[default]
    Progress,
    /// The progress bar and every report as a `tracing` event at info level.
    Detailed,
}

/// Where a run stores its results and how it behaves (Ray's `RunConfig`).
///
/// ```
/// use air_train::{CheckpointConfig, RunConfig, Mode};
///
/// let run = RunConfig::new("/tmp/air_results")
///     .with_name("tabular")
///     .with_checkpoint_config(
///         CheckpointConfig::new().with_num_to_keep(std::num::NonZeroUsize::new(2).unwrap()).with_score_attribute("loss", Mode::Min),
///     )
///     .with_stop("training_iteration", 10.0);
/// assert_eq!(run.name(), Some("tabular"));
/// # Ok::<(), air_train::TrainError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    name: Option<String>,
    storage_path: String,
    #[serde(default)]
    checkpoint_config: CheckpointConfig,
    #[serde(default)]
    failure_config: FailureConfig,
    #[serde(default)]
    stop: BTreeMap<String, f64>,
    #[serde(default)]
    verbose: Verbosity,
    #[serde(skip)]
    callbacks: Callbacks,
}

impl RunConfig {
    /// Results go under `storage_path`: a local directory or a URI (`s3://bucket/prefix`, ...).
    pub fn new(storage_path: impl Into<String>) -> Self {
        Self {
            name: None,
            storage_path: storage_path.into(),
            checkpoint_config: CheckpointConfig::default(),
            failure_config: FailureConfig::default(),
            stop: BTreeMap::new(),
            verbose: Verbosity::default(),
            callbacks: Callbacks::default(),
        }
    }

    /// Adds a callback on the run's events (Ray's `callbacks=[...]`; see [`Callback`]). A
    /// tuner calls the callbacks of its own run config for every trial; a trainer run by a
    /// tuner does not call its own.
    pub fn with_callback(mut self, callback: impl Callback + 'static) -> Self {
        self.callbacks.push(Arc::new(callback));
        self
    }

    /// Adds a callback shared with other run configs (the same object sees both runs).
    pub fn with_shared_callback(mut self, callback: Arc<dyn Callback>) -> Self {
        self.callbacks.push(callback);
        self
    }

    /// The registered callbacks.
    pub fn callbacks(&self) -> &Callbacks {
        &self.callbacks
    }

    /// The run's directory name under the storage path (default: trainer name + timestamp).
    pub fn with_name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    /// Which checkpoints to keep.
    pub fn with_checkpoint_config(mut self, config: CheckpointConfig) -> Self {
        self.checkpoint_config = config;
        self
    }

    /// Restarts on failure.
    pub fn with_failure_config(mut self, config: FailureConfig) -> Self {
        self.failure_config = config;
        self
    }

    /// Stops the run once a report has `metric >= value` (as Ray's `stop` dict); several
    /// conditions stop at the first one met.
    pub fn with_stop(mut self, metric: &str, value: f64) -> Self {
        self.stop.insert(metric.to_owned(), value);
        self
    }

    /// How much to print.
    pub fn with_verbose(mut self, verbose: Verbosity) -> Self {
        self.verbose = verbose;
        self
    }

    /// The run name, if set.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The storage path or URI.
    pub fn storage_path(&self) -> &str {
        &self.storage_path
    }

    /// Checkpoint retention.
    pub fn checkpoint_config(&self) -> &CheckpointConfig {
        &self.checkpoint_config
    }

    /// Failure handling.
    pub fn failure_config(&self) -> &FailureConfig {
        &self.failure_config
    }

    /// Stop conditions.
    pub fn stop(&self) -> &BTreeMap<String, f64> {
        &self.stop
    }

    /// Verbosity.
    pub fn verbose(&self) -> Verbosity {
        self.verbose
    }

    /// Checks every part.
    pub fn validate(&self) -> Result<(), TrainError> {
        if self.storage_path.is_empty() {
            return Err(invalid(
                "storage_path",
                "\"\"",
                "a local directory or a URI such as s3://bucket/prefix",
            ));
        }
        if let Some(name) = &self.name
            && (name.is_empty() || name.contains('/') || name == "." || name == "..")
        {
            return Err(invalid(
                "name",
                format!("{name:?}"),
                "a non-empty directory name without '/'",
            ));
        }
        self.checkpoint_config.validate()?;
        self.failure_config.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_combinations_are_rejected_with_the_field() {
        let err = ScalingConfig::new(NonZeroUsize::new(2).unwrap())
            .with_use_gpu(true)
            .unwrap()
            .with_resources_per_worker(Resources::cpu(1.0))
            .unwrap_err();
        assert!(err.to_string().contains("resources_per_worker"), "{err}");
        assert!(
            ScalingConfig::new(NonZeroUsize::MIN)
                .with_resources_per_worker(Resources::cpu(-1.0))
                .is_err()
        );
        let err = RunConfig::new("/tmp")
            .with_failure_config(FailureConfig::new(MaxFailures::Limited(2)).with_fail_fast(true))
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("fail_fast"), "{err}");
        let zero =
            serde_json::from_value::<CheckpointConfig>(serde_json::json!({"num_to_keep": 0}));
        assert!(zero.unwrap_err().to_string().contains("nonzero"));
        assert!(RunConfig::new("/tmp").with_name("a/b").validate().is_err());
        assert!(RunConfig::new("").validate().is_err());
    }

    #[test]
    fn defaults_follow_ray() {
        let s = ScalingConfig::new(NonZeroUsize::new(2).unwrap())
            .with_use_gpu(true)
            .unwrap();
        assert_eq!(s.worker_resources(), Resources::cpu(1.0).with_gpu(1.0));
        assert_eq!(s.total_resources(), Resources::cpu(2.0).with_gpu(2.0));
        let f = FailureConfig::default();
        assert!(f.may_retry(0) && !f.may_retry(1));
        assert!(FailureConfig::new(MaxFailures::Unlimited).may_retry(1000));
        // JSON from a tuner merges into typed configs.
        let s: ScalingConfig =
            serde_json::from_value(serde_json::json!({"num_workers": 4})).unwrap();
        assert_eq!(s.num_workers(), 4);
        let f: FailureConfig =
            serde_json::from_value(serde_json::json!({"max_failures": "unlimited"})).unwrap();
        assert_eq!(f.max_failures(), MaxFailures::Unlimited);
    }
}
