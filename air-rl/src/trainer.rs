//! [`RLTrainer`]: an algorithm as a [`Trainer`] and a tuning [`Trainable`] (Ray AIR's
//! `RLTrainer`), run by air-train's trainer machinery — reports, checkpoints, stop conditions,
//! restarts after failures.

use std::{collections::BTreeMap, num::NonZeroUsize};

use air_checkpoint::Checkpoint;
use air_data::Dataset;
use air_train::{
    DataParallelTrainer, Resources, RunConfig, ScalingConfig, Session, TrainError, TrainResult,
    Trainable, Trainer, TrialInfo,
};
use serde_json::Value;

use crate::{Result, RlError, algo::AlgorithmConfig, env::EnvSpec};

/// Trains an RL algorithm: online on an environment ([`EnvSpec`]) or offline from a `"train"`
/// dataset (BC).
///
/// - `scaling.num_workers()` is the number of rollout workers (threads stepping environment
///   copies, RLlib's `num_workers`); `scaling.use_gpu()` puts the learner on CUDA device 0.
/// - Every iteration reports the algorithm's metrics (`episode_reward_mean`,
///   `episode_len_mean`, `timesteps_total`, losses) and a checkpoint (every
///   `checkpoint_config.frequency` iterations when set).
/// - `fit()` needs a stop condition in `run` (`RunConfig::with_stop("training_iteration",
///   20.0)`, or on any reported metric); under a tuner, the tuner's stop conditions and
///   scheduler end trials.
/// - After a failure the run restarts from its latest checkpoint (per `run`'s failure config);
///   [`with_resume_from_checkpoint`](Self::with_resume_from_checkpoint) continues an earlier
///   run.
/// - As a trainable, trial configs look like Ray's: `{"config": {"lr": 0.001}}` patches the
///   algorithm config, `{"scaling_config": {...}}` the scaling config.
///
/// ```
/// use std::num::NonZeroUsize;
/// use air_rl::{RLTrainer, algo::PpoConfig, env::EnvSpec, policy::Policy};
/// use air_train::{RunConfig, ScalingConfig, Trainer, Verbosity};
///
/// let dir = tempfile::tempdir()?;
/// let mut ppo = PpoConfig::default();
/// ppo.train_batch_size = 256;
/// let trainer = RLTrainer::new(
///     ppo,
///     EnvSpec::named("CartPole-v1")?,
///     ScalingConfig::new(NonZeroUsize::new(2).unwrap()), // two rollout workers
///     RunConfig::new(dir.path().to_str().unwrap())
///         .with_stop("training_iteration", 2.0)
///         .with_verbose(Verbosity::Silent),
/// );
/// let result = trainer.fit()?.into_result()?;
/// assert_eq!(result.metrics["timesteps_total"], 512);
/// let policy = Policy::from_checkpoint(&result.checkpoint.unwrap())?;
/// assert_eq!(policy.spec().algorithm, "PPO");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct RLTrainer {
    algorithm: AlgorithmConfig,
    env: Option<EnvSpec>,
    scaling: ScalingConfig,
    run: RunConfig,
    datasets: BTreeMap<String, Dataset>,
    resume_from: Option<Checkpoint>,
}

impl RLTrainer {
    /// Trains `algorithm` on `env` with `scaling.num_workers()` rollout workers.
    pub fn new(
        algorithm: impl Into<AlgorithmConfig>,
        env: EnvSpec,
        scaling: ScalingConfig,
        run: RunConfig,
    ) -> Self {
        Self {
            algorithm: algorithm.into(),
            env: Some(env),
            scaling,
            run,
            datasets: BTreeMap::new(),
            resume_from: None,
        }
    }

    /// Trains an offline algorithm from `train` alone (no environment: no evaluation
    /// episodes, spaces read from the data).
    pub fn offline(
        algorithm: impl Into<AlgorithmConfig>,
        train: Dataset,
        scaling: ScalingConfig,
        run: RunConfig,
    ) -> Self {
        Self {
            algorithm: algorithm.into(),
            env: None,
            scaling,
            run,
            datasets: BTreeMap::from([("train".to_owned(), train)]),
            resume_from: None,
        }
    }

    /// Adds dataset `name` (`"train"` is what offline algorithms learn from).
    pub fn with_dataset(mut self, name: &str, dataset: Dataset) -> Self {
        self.datasets.insert(name.to_owned(), dataset);
        self
    }

    /// Continues from `checkpoint` (weights, observation statistics, counters).
    pub fn with_resume_from_checkpoint(mut self, checkpoint: Checkpoint) -> Self {
        self.resume_from = Some(checkpoint);
        self
    }

    /// The algorithm config.
    pub fn algorithm(&self) -> &AlgorithmConfig {
        &self.algorithm
    }

    /// The data-parallel trainer that runs `algorithm` with `scaling`: one learner worker
    /// reserving a CPU per rollout worker (and a GPU with `use_gpu`).
    fn inner(
        &self,
        algorithm: &AlgorithmConfig,
        scaling: &ScalingConfig,
    ) -> Result<DataParallelTrainer> {
        let rollout_workers = NonZeroUsize::new(scaling.num_workers()).unwrap_or(NonZeroUsize::MIN);
        let mut resources = Resources::cpu(rollout_workers.get() as f64);
        if scaling.use_gpu() {
            resources.gpu = 1.0;
        }
        let learner = ScalingConfig::new(NonZeroUsize::MIN)
            .with_use_gpu(scaling.use_gpu())?
            .with_resources_per_worker(resources)?;
        let env = self.env.clone();
        let every = self.run.checkpoint_config().frequency().max(1) as u64;
        let config = serde_json::to_value(algorithm).map_err(|e| RlError::InvalidConfig {
            field: "config",
            value: format!("{algorithm:?}"),
            expected: format!("a serialisable config ({e})"),
        })?;
        let train_loop = move |config: &Value, session: &mut Session| -> Result<()> {
            train_loop(config, session, env.as_ref(), rollout_workers, every)
        };
        let mut inner = DataParallelTrainer::new(train_loop, learner, self.run.clone())
            .with_name("RLTrainer")
            .with_train_loop_config(config);
        for (name, ds) in &self.datasets {
            inner = inner.with_dataset(name, ds.clone());
        }
        if let Some(c) = &self.resume_from {
            inner = inner.with_resume_from_checkpoint(c.clone());
        }
        Ok(inner)
    }

    /// The algorithm and scaling configs of a trial: `"config"` and `"scaling_config"` merged
    /// into the trainer's.
    fn trial(&self, trial: &Value) -> Result<(AlgorithmConfig, ScalingConfig)> {
        let invalid =
            |field: &'static str, value: String, expected: String| RlError::InvalidConfig {
                field,
                value,
                expected,
            };
        let Value::Object(map) = trial else {
            return Err(invalid(
                "trial config",
                trial.to_string(),
                "a JSON object".to_owned(),
            ));
        };
        let mut algorithm = self.algorithm.clone();
        let mut scaling = self.scaling.clone();
        for (key, patch) in map {
            match key.as_str() {
                "config" => algorithm = patched(&algorithm, patch, "config")?,
                "scaling_config" => {
                    scaling = patched(&scaling, patch, "scaling_config")?;
                    scaling.validate()?;
                }
                other => {
                    return Err(invalid(
                        "trial config",
                        format!("key {other:?}"),
                        "\"config\" (the algorithm's settings) or \"scaling_config\"".to_owned(),
                    ));
                }
            }
        }
        Ok((algorithm, scaling))
    }
}

/// `base` with `patch` merged in, read back as a `T`: unknown or mistyped fields are errors.
fn patched<T: serde::Serialize + serde::de::DeserializeOwned>(
    base: &T,
    patch: &Value,
    field: &'static str,
) -> Result<T> {
    let mut value = serde_json::to_value(base).map_err(|e| RlError::InvalidConfig {
        field,
        value: e.to_string(),
        expected: "a serialisable config".to_owned(),
    })?;
    air_train::merge_json(&mut value, patch);
    serde_json::from_value(value).map_err(|e| RlError::InvalidConfig {
        field,
        value: patch.to_string(),
        expected: format!("fields of the {field} ({e})"),
    })
}

/// The learner's loop: build (or restore), then train, report and checkpoint until the run
/// is stopped.
fn train_loop(
    config: &Value,
    session: &mut Session,
    env: Option<&EnvSpec>,
    rollout_workers: NonZeroUsize,
    checkpoint_every: u64,
) -> Result<()> {
    let algorithm: AlgorithmConfig =
        serde_json::from_value(config.clone()).map_err(|e| RlError::InvalidConfig {
            field: "config",
            value: config.to_string(),
            expected: format!("an algorithm config ({e})"),
        })?;
    let has_train = session.dataset_names().iter().any(|n| n == "train");
    let dataset = if algorithm.is_offline() && has_train {
        Some(session.get_dataset_shard("train")?.clone())
    } else {
        None
    };
    let mut learner = algorithm.build(env, dataset.as_ref(), session.device(), rollout_workers)?;
    if let Some(c) = session.get_checkpoint() {
        learner.restore(c)?;
    }
    for iteration in 1u64.. {
        let metrics = learner.train()?;
        let checkpoint = if iteration % checkpoint_every == 0 {
            let mut c = Checkpoint::new();
            learner.save(&mut c)?;
            Some(c)
        } else {
            None
        };
        session.report(Value::Object(metrics), checkpoint)?;
    }
    Ok(())
}

impl Trainer for RLTrainer {
    fn fit(&self) -> air_train::Result<TrainResult> {
        if self.run.stop().is_empty() {
            return Err(TrainError::InvalidConfig {
                field: "run_config.stop",
                value: "no stop condition".to_owned(),
                expected: "a stop condition, e.g. RunConfig::with_stop(\"training_iteration\", \
                           50.0) or with_stop(\"episode_reward_mean\", 475.0): RL trains until told \
                           to stop"
                    .to_owned(),
            });
        }
        let inner = self.inner(&self.algorithm, &self.scaling)?;
        inner.fit()
    }
}

impl Trainable for RLTrainer {
    fn trainable_name(&self) -> &str {
        "RLTrainer"
    }

    fn resources(&self, config: &Value) -> Resources {
        let scaling = self
            .trial(config)
            .map_or_else(|_| self.scaling.clone(), |(_, s)| s);
        let mut r = Resources::cpu(scaling.num_workers().max(1) as f64);
        if scaling.use_gpu() {
            r.gpu = 1.0;
        }
        r
    }

    fn run_trial(&self, config: &Value, trial: &TrialInfo) -> TrainResult {
        let inner = self
            .trial(config)
            .and_then(|(algorithm, scaling)| self.inner(&algorithm, &scaling));
        let mut result = match inner {
            Ok(inner) => inner.run_trial(&Value::Object(Default::default()), trial),
            Err(e) => TrainResult::failed(e.into(), config.clone()),
        };
        result.config = config.clone();
        result
    }
}
