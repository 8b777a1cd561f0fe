//! [`TensorBoardCallback`]: each trial's numeric results as TensorBoard scalars, its config as
//! HParams session data, and the experiment's hyperparameters and metrics for the HParams tab.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    path::{Path, PathBuf},
    sync::Mutex,
};

use air_train::{BoxError, Callback, Metrics, TrialContext};
use prost::Message;
use serde_json::Value;

use crate::{
    proto::{
        Experiment, HParamInfo, HParamsPluginData, ListValue, MetricInfo, MetricName, PluginData,
        PluginDataKind, ProtoValue, SessionEndInfo, SessionStartInfo, Summary, SummaryKind,
        SummaryMetadata, SummaryValue, TensorDim, TensorProto, TensorShape, ValueKind,
    },
    tfevents::{EventWriter, now_secs},
    values,
};

/// Writes TensorBoard event files (Ray's `TBXLoggerCallback`).
///
/// - Each trial's directory gets an `events.out.tfevents.*` file: every numeric result key as a
///   scalar at step `training_iteration` (booleans as 0/1), and the trial's config, flattened
///   to dotted names, as the HParams plugin's session start; its end (success or failure) as
///   the session end.
/// - When the experiment ends, its directory gets the HParams experiment summary: every
///   hyperparameter seen (strings and booleans with their values as a discrete domain) and
///   every metric.
///
/// Point TensorBoard at the experiment directory (`tensorboard --logdir DIR`): one run per
/// trial, the HParams tab showing the sweep. Event files are appended as results come, so they
/// need a local directory; an experiment on an object store gets a warning and no event files
/// (TensorBoard reads local copies of them as well).
#[derive(Debug, Default)]
pub struct TensorBoardCallback {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    writers: HashMap<String, EventWriter>,
    hparams: BTreeMap<String, BTreeSet<Discrete>>,
    kinds: BTreeMap<String, i32>,
    metrics: BTreeSet<String>,
}

/// A discrete hyperparameter value, ordered for a stable domain list.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Discrete {
    Bool(bool),
    String(String),
}

const DATA_TYPE_STRING: i32 = 1;
const DATA_TYPE_BOOL: i32 = 2;
const DATA_TYPE_FLOAT64: i32 = 3;
const STATUS_SUCCESS: i32 = 1;
const STATUS_FAILURE: i32 = 2;

impl TensorBoardCallback {
    /// A callback for any number of trials.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn local_dir(location: &str) -> Result<PathBuf, BoxError> {
    air_checkpoint::storage::local_path(location).ok_or_else(|| {
        format!(
            "TensorBoard event files are appended as results come and need a local directory; \
             {location} is not one (set the storage path to a local or mounted directory)"
        )
        .into()
    })
}

/// The HParams plugin's summary carrying `data`, under `tag`.
fn plugin_summary(tag: &str, data: PluginDataKind) -> Summary {
    let content = HParamsPluginData {
        version: 0,
        data: Some(data),
    }
    .encode_to_vec();
    Summary {
        value: vec![SummaryValue {
            tag: tag.to_owned(),
            metadata: Some(SummaryMetadata {
                plugin_data: Some(PluginData {
                    plugin_name: "hparams".to_owned(),
                    content,
                }),
            }),
            // The plugin's null tensor: an empty float vector.
            value: Some(SummaryKind::Tensor(TensorProto {
                dtype: 1,
                tensor_shape: Some(TensorShape {
                    dim: vec![TensorDim { size: 0 }],
                }),
            })),
        }],
    }
}

/// A config leaf as an HParams value: numbers, strings and booleans as they are, anything
/// else (lists, nulls) as its JSON text.
fn hparam_value(value: &Value) -> ProtoValue {
    let kind = match value {
        Value::Number(n) => ValueKind::Number(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => ValueKind::String(s.clone()),
        Value::Bool(b) => ValueKind::Bool(*b),
        other => ValueKind::String(other.to_string()),
    };
    ProtoValue { kind: Some(kind) }
}

impl Callback for TensorBoardCallback {
    fn name(&self) -> &str {
        "TensorBoardCallback"
    }

    fn on_trial_start(&self, trial: &TrialContext, _: &[Metrics]) -> Result<(), BoxError> {
        let dir = local_dir(&trial.path)?;
        let mut writer = EventWriter::create(&dir)?;
        let hparams: BTreeMap<String, ProtoValue> = values::flatten_config(&trial.config)
            .into_iter()
            .map(|(name, v)| (name, hparam_value(&v)))
            .collect();
        let mut state = self.state();
        for (name, v) in &hparams {
            let (kind, discrete) = match &v.kind {
                Some(ValueKind::Number(_)) => (DATA_TYPE_FLOAT64, None),
                Some(ValueKind::Bool(b)) => (DATA_TYPE_BOOL, Some(Discrete::Bool(*b))),
                Some(ValueKind::String(s)) => (DATA_TYPE_STRING, Some(Discrete::String(s.clone()))),
                None => continue,
            };
            state.kinds.insert(name.clone(), kind);
            let domain = state.hparams.entry(name.clone()).or_default();
            domain.extend(discrete);
        }
        writer.summary(
            0,
            plugin_summary(
                "_hparams_/session_start_info",
                PluginDataKind::SessionStartInfo(SessionStartInfo {
                    hparams: hparams.into_iter().collect(),
                    group_name: String::new(),
                    start_time_secs: now_secs(),
                }),
            ),
        )?;
        tracing::debug!(trial = %trial.id, file = %writer.path().display(), "TensorBoard events");
        state.writers.insert(trial.path.clone(), writer);
        Ok(())
    }

    fn on_trial_result(&self, trial: &TrialContext, result: &Metrics) -> Result<(), BoxError> {
        let step = values::step(result);
        let values: Vec<SummaryValue> = values::scalars(result)
            .into_iter()
            .map(|(tag, x)| SummaryValue {
                tag,
                metadata: None,
                value: Some(SummaryKind::SimpleValue(x as f32)),
            })
            .collect();
        let mut state = self.state();
        state.metrics.extend(values.iter().map(|v| v.tag.clone()));
        let Some(writer) = state.writers.get_mut(&trial.path) else {
            return Err(format!("no event file open for trial {}", trial.id).into());
        };
        writer.summary(step, Summary { value: values })?;
        Ok(())
    }

    fn on_trial_complete(&self, trial: &TrialContext, _: Option<&Metrics>) -> Result<(), BoxError> {
        self.end(trial, STATUS_SUCCESS)
    }

    fn on_trial_error(&self, trial: &TrialContext, _: &str) -> Result<(), BoxError> {
        self.end(trial, STATUS_FAILURE)
    }

    fn on_experiment_end(&self, experiment_path: &str) -> Result<(), BoxError> {
        let dir = local_dir(experiment_path)?;
        let state = self.state();
        let hparam_infos = state
            .kinds
            .iter()
            .map(|(name, &kind)| HParamInfo {
                name: name.clone(),
                r#type: kind,
                domain_discrete: (kind != DATA_TYPE_FLOAT64).then(|| ListValue {
                    values: state.hparams[name]
                        .iter()
                        .map(|d| ProtoValue {
                            kind: Some(match d {
                                Discrete::Bool(b) => ValueKind::Bool(*b),
                                Discrete::String(s) => ValueKind::String(s.clone()),
                            }),
                        })
                        .collect(),
                }),
            })
            .collect();
        let metric_infos = state
            .metrics
            .iter()
            .map(|tag| MetricInfo {
                name: Some(MetricName {
                    group: String::new(),
                    tag: tag.clone(),
                }),
            })
            .collect();
        let mut writer = EventWriter::create(Path::new(&dir))?;
        writer.summary(
            0,
            plugin_summary(
                "_hparams_/experiment",
                PluginDataKind::Experiment(Experiment {
                    description: String::new(),
                    time_created_secs: now_secs(),
                    hparam_infos,
                    metric_infos,
                }),
            ),
        )?;
        Ok(())
    }
}

impl TensorBoardCallback {
    fn end(&self, trial: &TrialContext, status: i32) -> Result<(), BoxError> {
        let mut state = self.state();
        let Some(mut writer) = state.writers.remove(&trial.path) else {
            return Ok(());
        };
        writer.summary(
            0,
            plugin_summary(
                "_hparams_/session_end_info",
                PluginDataKind::SessionEndInfo(SessionEndInfo {
                    status,
                    end_time_secs: now_secs(),
                }),
            ),
        )?;
        Ok(())
    }
}
