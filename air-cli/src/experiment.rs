//! `air train` and `air tune`: a built-in trainer, its data and run settings, and for tuning
//! a search space, searcher and scheduler, from one YAML file.
//!
//! ```yaml
//! trainer:
//!   kind: gbdt                      # gbdt | sklearn
//!   label_column: target
//!   datasets:                       # name: file, directory, glob or URI (.parquet/.csv/.json)
//!     train: data/train.parquet
//!     valid: data/valid.parquet
//!   params: {objective: "binary:logistic", eval_metric: [logloss]}   # GbdtParams
//!   num_boost_round: 50
//!   num_workers: 2
//! run:                              # RunConfig
//!   storage_path: ./results
//!   name: cancer
//! tune:
//!   metric: valid-logloss
//!   mode: min
//!   num_samples: 20
//!   search_alg: tpe                 # random | tpe | bayesopt
//!   scheduler: {type: asha, max_t: 50, grace_period: 5}
//! param_space:
//!   params:
//!     eta: {loguniform: [0.01, 0.3]}
//!     max_depth: {randint: [2, 9]}
//! callbacks:
//!   - tensorboard                   # event files in each trial's directory
//!   - mlflow:                       # MlflowConfig; unset fields from MLFLOW_* variables
//!       tracking_uri: http://127.0.0.1:5000
//!       experiment_name: cancer
//!       artifacts: checkpoints
//! ```
//!
//! The file is copied into the experiment's directory, so `air tune --restore DIR` needs
//! nothing else.

use std::{collections::BTreeMap, num::NonZeroUsize, sync::Arc};

use air_data::{CsvOptions, Dataset, FileFormat};
use air_track::{MlflowConfig, TrackError};
use air_train::{
    Callback, RunConfig, ScalingConfig, TrainResult, Trainer,
    gbdt::{GbdtParams, GbdtTrainer},
    sklearn::{Estimator, SklearnTrainer},
};
use air_tune::{
    Asha, BasicVariantGenerator, BayesOptSearch, Domain, Fifo, HyperBand, MedianStoppingRule, Mode,
    ResultGrid, Space, TpeSearch, TuneConfig, Tuner,
};
use serde::Deserialize;
use serde_json::Value;

use crate::error::{CliError, Result};

/// The file name the config is saved under in an experiment's directory.
pub(crate) const SAVED_CONFIG: &str = "air_experiment.yaml";

/// A whole experiment file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExperimentFile {
    pub(crate) trainer: TrainerSpec,
    pub(crate) run: RunConfig,
    #[serde(default)]
    pub(crate) tune: Option<TuneSpec>,
    #[serde(default)]
    pub(crate) param_space: Option<serde_json::Map<String, Value>>,
    /// Tracking callbacks on the run (or on every trial of a tuning run).
    #[serde(default)]
    pub(crate) callbacks: Vec<CallbackSpec>,
    /// The callbacks, built when the file is read (so their settings are checked then).
    #[serde(skip)]
    built_callbacks: Vec<Arc<dyn Callback>>,
}

/// A tracking callback named in the file: a name (`tensorboard`), or a one-key mapping from
/// the name to its settings (`mlflow: {...}`).
#[derive(Debug, Clone)]
pub(crate) enum CallbackSpec {
    /// TensorBoard event files in each trial's directory.
    Tensorboard,
    /// Runs on an MLflow tracking server.
    Mlflow(MlflowConfig),
}

const CALLBACK_NAMES: &[&str] = &["tensorboard", "mlflow"];

impl<'de> Deserialize<'de> for CallbackSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        // A visitor rather than serde's enum forms: YAML would want `!mlflow` tags, and an
        // untagged enum loses the line and column of errors in the settings.
        struct Spec;
        impl<'de> serde::de::Visitor<'de> for Spec {
            type Value = CallbackSpec;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("`tensorboard` or `mlflow: {settings}`")
            }

            fn visit_str<E: serde::de::Error>(
                self,
                v: &str,
            ) -> std::result::Result<Self::Value, E> {
                match v {
                    "tensorboard" => Ok(CallbackSpec::Tensorboard),
                    "mlflow" => Ok(CallbackSpec::Mlflow(MlflowConfig::new())),
                    other => Err(E::unknown_variant(other, CALLBACK_NAMES)),
                }
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                use serde::de::Error as _;
                let Some(name) = map.next_key::<String>()? else {
                    return Err(A::Error::invalid_length(0, &self));
                };
                let spec = match name.as_str() {
                    "mlflow" => CallbackSpec::Mlflow(map.next_value()?),
                    "tensorboard" => {
                        let settings: Option<BTreeMap<String, serde::de::IgnoredAny>> =
                            map.next_value()?;
                        if settings.is_some_and(|s| !s.is_empty()) {
                            return Err(A::Error::custom(
                                "tensorboard takes no settings (its files go in each trial's \
                                 directory)",
                            ));
                        }
                        CallbackSpec::Tensorboard
                    }
                    other => return Err(A::Error::unknown_variant(other, CALLBACK_NAMES)),
                };
                if map.next_key::<serde::de::IgnoredAny>()?.is_some() {
                    return Err(A::Error::custom(
                        "a callback is a mapping with one key, its name",
                    ));
                }
                Ok(spec)
            }
        }
        d.deserialize_any(Spec)
    }
}

impl CallbackSpec {
    fn build(&self) -> std::result::Result<Arc<dyn Callback>, TrackError> {
        Ok(match self {
            Self::Tensorboard => Arc::new(air_track::TensorBoardCallback::new()),
            Self::Mlflow(config) => Arc::new(config.build()?),
        })
    }
}

impl ExperimentFile {
    /// The run config with the file's callbacks on it.
    fn run_config(&self) -> RunConfig {
        let mut run = self.run.clone();
        for c in &self.built_callbacks {
            run = run.with_shared_callback(Arc::clone(c));
        }
        run
    }
}

/// Which trainer, on what data. A flat struct rather than a tagged enum: serde reads a tagged
/// enum through a buffer that loses the line and column of errors inside it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TrainerSpec {
    kind: TrainerKind,
    #[serde(default)]
    label_column: Option<String>,
    datasets: BTreeMap<String, String>,
    /// `GbdtTrainer`'s parameters.
    #[serde(default)]
    params: Option<GbdtParams>,
    #[serde(default)]
    num_boost_round: Option<usize>,
    #[serde(default = "one")]
    num_workers: NonZeroUsize,
    /// `SklearnTrainer`'s estimator.
    #[serde(default)]
    estimator: Option<Estimator>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum TrainerKind {
    Gbdt,
    Sklearn,
}

fn one() -> NonZeroUsize {
    NonZeroUsize::MIN
}

/// How to tune.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TuneSpec {
    metric: String,
    mode: Mode,
    #[serde(default = "one")]
    num_samples: NonZeroUsize,
    #[serde(default)]
    max_concurrent_trials: Option<NonZeroUsize>,
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    search_alg: SearchAlg,
    #[serde(default)]
    scheduler: SchedulerSpec,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
enum SearchAlg {
    #[default]
    Random,
    Tpe,
    Bayesopt,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum SchedulerSpec {
    #[default]
    Fifo,
    Asha {
        #[serde(default)]
        max_t: Option<f64>,
        #[serde(default)]
        grace_period: Option<f64>,
        #[serde(default)]
        reduction_factor: Option<f64>,
    },
    Hyperband {
        #[serde(default)]
        max_t: Option<f64>,
        #[serde(default)]
        reduction_factor: Option<f64>,
    },
    Median {
        #[serde(default)]
        grace_period: Option<f64>,
    },
}

impl ExperimentFile {
    /// Reads and checks the file at `path`; its text is returned too (to save with the
    /// experiment).
    pub(crate) fn from_file(path: &str) -> Result<(Self, String)> {
        let text = std::fs::read_to_string(path).map_err(|source| CliError::Io {
            action: "reading the experiment config",
            path: path.to_owned(),
            source,
        })?;
        let file = Self::from_yaml(&text, path)?;
        Ok((file, text))
    }

    pub(crate) fn from_yaml(text: &str, path: &str) -> Result<Self> {
        let config = |message: String| CliError::Config {
            path: path.to_owned(),
            message,
        };
        let mut file: Self = serde_yaml_ng::from_str(text).map_err(|e| config(e.to_string()))?;
        file.built_callbacks = file
            .callbacks
            .iter()
            .enumerate()
            .map(|(i, c)| {
                c.build()
                    .map_err(|e| config(format!("callbacks[{i}]: {e}")))
            })
            .collect::<Result<_>>()?;
        if let Some(space) = &file.param_space {
            space_of(&Value::Object(space.clone()), "param_space")
                .map_err(|e| config(format!("{e} (see the param_space section)")))?;
        }
        Ok(file)
    }

    fn space(&self) -> Result<Space> {
        let raw = self.param_space.clone().unwrap_or_default();
        space_of(&Value::Object(raw), "param_space").map_err(|message| CliError::Config {
            path: "param_space".to_owned(),
            message,
        })
    }
}

/// A search space from its YAML form: a mapping with one key naming a distribution
/// (`uniform`, `quniform`, `loguniform`, `randint`, `qrandint`, `lograndint`, `randn`,
/// `choice`, `grid_search`) and its arguments as a list is that distribution; any other
/// mapping or list is searched inside; anything else is a constant.
fn space_of(v: &Value, path: &str) -> std::result::Result<Space, String> {
    match v {
        Value::Object(m) if m.len() == 1 => {
            let (name, args) = m.iter().next().expect("one entry");
            match domain(name, args, path)? {
                Some(d) => Ok(Space::Domain(d)),
                None => Ok(Space::object([(
                    name.as_str(),
                    space_of(args, &format!("{path}.{name}"))?,
                )])),
            }
        }
        Value::Object(m) => {
            let mut fields = Vec::with_capacity(m.len());
            for (k, v) in m {
                fields.push((k.as_str(), space_of(v, &format!("{path}.{k}"))?));
            }
            Ok(Space::object(fields))
        }
        Value::Array(a) => {
            let items: std::result::Result<Vec<Space>, String> = a
                .iter()
                .enumerate()
                .map(|(i, v)| space_of(v, &format!("{path}[{i}]")))
                .collect();
            Ok(Space::array(items?))
        }
        other => Ok(Space::Const(other.clone())),
    }
}

fn domain(name: &str, args: &Value, path: &str) -> std::result::Result<Option<Domain>, String> {
    let nums = |n: usize| -> std::result::Result<Vec<f64>, String> {
        let list = args.as_array().filter(|a| a.len() == n);
        let values: Option<Vec<f64>> = list.and_then(|a| a.iter().map(Value::as_f64).collect());
        values.ok_or_else(|| format!("{path}: {name} takes a list of {n} numbers, got {args}"))
    };
    let ints = |n: usize| -> std::result::Result<Vec<i64>, String> {
        let list = args.as_array().filter(|a| a.len() == n);
        let values: Option<Vec<i64>> = list.and_then(|a| a.iter().map(Value::as_i64).collect());
        values.ok_or_else(|| format!("{path}: {name} takes a list of {n} integers, got {args}"))
    };
    let list = || -> std::result::Result<Vec<Value>, String> {
        args.as_array()
            .filter(|a| !a.is_empty())
            .cloned()
            .ok_or_else(|| format!("{path}: {name} takes a non-empty list of values, got {args}"))
    };
    let d = match name {
        "uniform" => nums(2).map(|a| air_tune::uniform(a[0], a[1]))?,
        "quniform" => nums(3).map(|a| air_tune::quniform(a[0], a[1], a[2]))?,
        "loguniform" => nums(2).map(|a| air_tune::loguniform(a[0], a[1]))?,
        "qloguniform" => nums(3).map(|a| air_tune::qloguniform(a[0], a[1], a[2]))?,
        "randn" => nums(2).map(|a| air_tune::randn(a[0], a[1]))?,
        "randint" => ints(2).map(|a| air_tune::randint(a[0], a[1]))?,
        "qrandint" => ints(3).map(|a| air_tune::qrandint(a[0], a[1], a[2]))?,
        "lograndint" => ints(2).map(|a| air_tune::lograndint(a[0], a[1]))?,
        "choice" => air_tune::choice(list()?),
        "grid_search" => air_tune::grid_search(list()?),
        _ => return Ok(None),
    };
    d.validate()
        .map_err(|e| format!("{path}: {name}{args}: {e}"))?;
    Ok(Some(d))
}

fn read(name: &str, location: &str) -> Result<Dataset> {
    let format = FileFormat::from_name(location).ok_or_else(|| CliError::Argument {
        option: "trainer.datasets",
        value: format!("{name}: {location}"),
        expected: "a location whose name ends in .parquet, .csv or .json(l)".to_owned(),
    })?;
    Ok(Dataset::read_files(location, format, CsvOptions::new())?)
}

/// What `air train` and `air tune` run: the trainer built from the file.
enum Built {
    Gbdt(GbdtTrainer),
    Sklearn(SklearnTrainer),
}

fn build(spec: &TrainerSpec, run: RunConfig) -> Result<Built> {
    let misplaced = |field: &str, kind: &str| CliError::Config {
        path: "trainer".to_owned(),
        message: format!("trainer.{field} does not apply to kind {kind}; remove it"),
    };
    Ok(match spec.kind {
        TrainerKind::Gbdt => {
            if spec.estimator.is_some() {
                return Err(misplaced("estimator", "gbdt"));
            }
            let label = spec
                .label_column
                .as_deref()
                .ok_or_else(|| CliError::Config {
                    path: "trainer".to_owned(),
                    message: "trainer.label_column is missing; kind gbdt needs the label column"
                        .to_owned(),
                })?;
            let mut t = GbdtTrainer::new(
                label,
                spec.params.clone().unwrap_or_default(),
                ScalingConfig::new(spec.num_workers),
                run,
            )?;
            if let Some(n) = spec.num_boost_round {
                t = t.with_num_boost_round(n);
            }
            for (name, location) in &spec.datasets {
                t = t.with_dataset(name, read(name, location)?);
            }
            Built::Gbdt(t)
        }
        TrainerKind::Sklearn => {
            if spec.params.is_some() {
                return Err(misplaced("params", "sklearn"));
            }
            if spec.num_boost_round.is_some() {
                return Err(misplaced("num_boost_round", "sklearn"));
            }
            let estimator = spec.estimator.clone().ok_or_else(|| CliError::Config {
                path: "trainer".to_owned(),
                message: "trainer.estimator is missing; kind sklearn needs one, such as \
                          {estimator: ridge, alpha: 1.0}"
                    .to_owned(),
            })?;
            let mut t = SklearnTrainer::new(estimator, spec.label_column.as_deref(), run)?;
            for (name, location) in &spec.datasets {
                t = t.with_dataset(name, read(name, location)?);
            }
            Built::Sklearn(t)
        }
    })
}

/// `air train`: one run; its result.
pub(crate) fn train(file: &ExperimentFile) -> Result<TrainResult> {
    file.run.validate()?;
    let result = match build(&file.trainer, file.run_config())? {
        Built::Gbdt(t) => t.fit()?,
        Built::Sklearn(t) => t.fit()?,
    };
    Ok(result)
}

/// `air tune`: the experiment (new, or restored from `restore`); its results.
pub(crate) fn tune(file: &ExperimentFile, text: &str, restore: Option<&str>) -> Result<ResultGrid> {
    let spec = file.tune.clone().ok_or_else(|| CliError::Config {
        path: "tune".to_owned(),
        message: "an experiment to tune needs a `tune:` section (metric, mode, num_samples)"
            .to_owned(),
    })?;
    let space = file.space()?;
    let mut config = TuneConfig::new()
        .with_metric(&spec.metric, spec.mode)
        .with_num_samples(spec.num_samples);
    if let Some(n) = spec.max_concurrent_trials {
        config = config.with_max_concurrent_trials(n);
    }
    if let Some(seed) = spec.seed {
        config = config.with_seed(seed);
    }
    config = match spec.search_alg {
        SearchAlg::Random => config.with_search_alg(BasicVariantGenerator::new()),
        SearchAlg::Tpe => config.with_search_alg(TpeSearch::new()),
        SearchAlg::Bayesopt => config.with_search_alg(BayesOptSearch::new()),
    };
    config = match spec.scheduler {
        SchedulerSpec::Fifo => config.with_scheduler(Fifo),
        SchedulerSpec::Asha {
            max_t,
            grace_period,
            reduction_factor,
        } => {
            let mut a = Asha::new();
            if let Some(v) = max_t {
                a = a.with_max_t(v);
            }
            if let Some(v) = grace_period {
                a = a.with_grace_period(v);
            }
            if let Some(v) = reduction_factor {
                a = a.with_reduction_factor(v);
            }
            config.with_scheduler(a)
        }
        SchedulerSpec::Hyperband {
            max_t,
            reduction_factor,
        } => {
            let mut h = HyperBand::new();
            if let Some(v) = max_t {
                h = h.with_max_t(v);
            }
            if let Some(v) = reduction_factor {
                h = h.with_reduction_factor(v);
            }
            config.with_scheduler(h)
        }
        SchedulerSpec::Median { grace_period } => {
            let mut m = MedianStoppingRule::new();
            if let Some(v) = grace_period {
                m = m.with_grace_period(v);
            }
            config.with_scheduler(m)
        }
    };
    // Trials write under the tuner's run config; the trainer's own is a placeholder.
    let trainer = build(&file.trainer, file.run.clone())?;
    let tuner = match (restore, trainer) {
        (Some(path), Built::Gbdt(t)) => {
            Tuner::restore(path, t, space)?.with_run_config(restored_run(file, path))
        }
        (Some(path), Built::Sklearn(t)) => {
            Tuner::restore(path, t, space)?.with_run_config(restored_run(file, path))
        }
        (None, Built::Gbdt(t)) => Tuner::new(t, space).with_run_config(file.run_config()),
        (None, Built::Sklearn(t)) => Tuner::new(t, space).with_run_config(file.run_config()),
    };
    if restore.is_none() {
        save_config(&file.run, text)?;
    }
    Ok(tuner.with_tune_config(config).fit()?)
}

/// The run config of the experiment restored from `path`: its storage path and name from the
/// path (where the experiment is now), the rest (callbacks, failure handling) from the file.
fn restored_run(file: &ExperimentFile, path: &str) -> RunConfig {
    let trimmed = path.trim_end_matches('/');
    let (parent, name) = trimmed.rsplit_once('/').unwrap_or((".", trimmed));
    let mut run = RunConfig::new(parent)
        .with_name(name)
        .with_checkpoint_config(file.run.checkpoint_config().clone())
        .with_failure_config(*file.run.failure_config())
        .with_verbose(file.run.verbose());
    for (metric, value) in file.run.stop() {
        run = run.with_stop(metric, *value);
    }
    for c in file.run_config().callbacks().iter() {
        run = run.with_shared_callback(Arc::clone(c));
    }
    run
}

/// The experiment's directory: `storage_path/name`.
pub(crate) fn experiment_dir(run: &RunConfig) -> Option<String> {
    run.name()
        .map(|n| format!("{}/{n}", run.storage_path().trim_end_matches('/')))
}

/// Saves the config text into the experiment's directory (local storage only; an experiment
/// on an object store is restored with `--config` given again).
fn save_config(run: &RunConfig, text: &str) -> Result<()> {
    let Some(dir) = experiment_dir(run) else {
        return Ok(());
    };
    let Some(path) = air_checkpoint::storage::local_path(&dir) else {
        return Ok(());
    };
    let io = |action| {
        let path = path.display().to_string();
        move |source| CliError::Io {
            action,
            path,
            source,
        }
    };
    std::fs::create_dir_all(&path).map_err(io("creating"))?;
    std::fs::write(path.join(SAVED_CONFIG), text).map_err(io("writing into"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spaces_read_distributions_constants_and_nesting() {
        let v: Value = serde_json::json!({
            "params": {
                "eta": {"loguniform": [0.01, 0.3]},
                "max_depth": {"randint": [2, 9]},
                "objective": "binary:logistic",
                "tree_method": {"choice": ["hist"]},
            },
            "num_boost_round": {"grid_search": [10, 20]},
        });
        let space = space_of(&v, "param_space").unwrap();
        assert_eq!(space.domains().len(), 4);
        let e = space_of(&serde_json::json!({"a": {"uniform": [1]}}), "param_space").unwrap_err();
        assert!(
            e.contains("param_space.a: uniform takes a list of 2 numbers"),
            "{e}"
        );
        let e = space_of(&serde_json::json!({"a": {"loguniform": [0, 1]}}), "p").unwrap_err();
        assert!(e.starts_with("p.a: loguniform"), "{e}");
    }

    #[test]
    fn file_errors_name_field_and_line() {
        let e = ExperimentFile::from_yaml(
            "trainer:\n  kind: gbdt\n  label_column: y\n  datasets: {train: a.csv}\n  params:\n    \
             max_dept: 3\nrun:\n  storage_path: /tmp\n",
            "exp.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("max_dept") && e.contains("line 6"), "{e}");
        let e = ExperimentFile::from_yaml(
            "trainer:\n  kind: xgb\n  label_column: y\nrun:\n  storage_path: /tmp\n",
            "exp.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("xgb") && e.contains("line 2"), "{e}");
    }
}
