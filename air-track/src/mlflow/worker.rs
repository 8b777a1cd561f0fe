//! The thread that talks to MLflow. Callback methods only queue events, so a slow or absent
//! server never slows a trial (the tuner calls callbacks under its lock); the worker sends
//! them in order, folding the results that queued up meanwhile into one `log-batch` per run.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
        mpsc::{Receiver, Sender},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use air_train::Metrics;
use serde_json::Value;

use super::{
    Artifacts,
    client::{ApiError, Client, Metric, RunInfo, RunStatus},
    config::Settings,
};
use crate::values;

/// Events taken off the queue at once (their results become one request per run).
const MAX_EVENTS_PER_PASS: usize = 4096;
/// Failures in a row of requests that reached no server before the worker stops trying.
const MAX_UNREACHABLE_IN_A_ROW: u32 = 3;
/// MLflow's limits on a param's key and value (3.x; older servers allow 500 characters).
const MAX_PARAM_KEY: usize = 250;
const MAX_PARAM_VALUE: usize = 6000;
/// MLflow's limit on a tag's value.
const MAX_TAG_VALUE: usize = 8000;

/// Tags that tie a run to its trial (also how a resumed trial finds its run again).
pub(crate) const TRIAL_ID_TAG: &str = "air.trial_id";
pub(crate) const EXPERIMENT_PATH_TAG: &str = "air.experiment_path";
const TRIAL_NAME_TAG: &str = "air.trial_name";
const TRIAL_PATH_TAG: &str = "air.trial_path";
const CHECKPOINT_TAG: &str = "air.checkpoint";
const ERROR_TAG: &str = "air.error";

/// Which trial an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct TrialKey {
    pub(crate) experiment_path: String,
    pub(crate) id: String,
}

/// What the callback queued.
#[derive(Debug)]
pub(crate) enum Event {
    Start {
        key: TrialKey,
        name: String,
        path: String,
        config: Value,
        history: Vec<Metrics>,
    },
    Result {
        key: TrialKey,
        result: Metrics,
    },
    Checkpoint {
        key: TrialKey,
        name: String,
        location: String,
    },
    End {
        key: TrialKey,
        status: RunStatus,
        error: Option<String>,
    },
    /// Answer on the channel once everything queued before has been handled.
    Flush(Sender<()>),
}

/// Events handled, as the callback reports them.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) queued: AtomicU64,
    pub(crate) sent: AtomicU64,
    pub(crate) failed: AtomicU64,
}

pub(crate) struct Worker {
    settings: Settings,
    client: Client,
    counters: Arc<Counters>,
    /// MLflow experiment id per experiment directory.
    experiments: HashMap<String, String>,
    runs: HashMap<TrialKey, RunInfo>,
    unreachable_in_a_row: u32,
    /// Set when the worker gave up on the server: events are then counted as failed.
    gave_up: bool,
}

impl Worker {
    pub(crate) fn new(settings: Settings, client: Client, counters: Arc<Counters>) -> Self {
        Self {
            settings,
            client,
            counters,
            experiments: HashMap::new(),
            runs: HashMap::new(),
            unreachable_in_a_row: 0,
            gave_up: false,
        }
    }

    /// Handles events until the callback is dropped.
    pub(crate) fn run(mut self, queue: Receiver<Event>) {
        while let Ok(first) = queue.recv() {
            let mut events = vec![first];
            while events.len() < MAX_EVENTS_PER_PASS {
                match queue.try_recv() {
                    Ok(e) => events.push(e),
                    Err(_) => break,
                }
            }
            self.handle(events);
        }
    }

    fn handle(&mut self, events: Vec<Event>) {
        // Results wait here until another kind of event (or the end of the pass) sends them,
        // so each run gets one request however many results queued up.
        let mut pending: Vec<(TrialKey, Vec<Metric>, u64)> = Vec::new();
        for event in events {
            match event {
                Event::Result { key, result } => {
                    let metrics = metrics_of(&result);
                    match pending.iter_mut().find(|(k, ..)| *k == key) {
                        Some((_, all, n)) => {
                            all.extend(metrics);
                            *n += 1;
                        }
                        None => pending.push((key, metrics, 1)),
                    }
                }
                other => {
                    self.send_results(&mut pending);
                    self.handle_one(other);
                }
            }
        }
        self.send_results(&mut pending);
    }

    fn send_results(&mut self, pending: &mut Vec<(TrialKey, Vec<Metric>, u64)>) {
        for (key, metrics, n) in pending.drain(..) {
            let Some(run) = self.runs.get(&key).cloned() else {
                self.count(n, false);
                continue;
            };
            let sent = self.attempt("results", &key.id, |c| {
                c.log_batch(&run.id, &metrics, &[], &[])
            });
            self.count(n, sent.is_some());
        }
    }

    fn handle_one(&mut self, event: Event) {
        let (ok, what, trial) = match event {
            Event::Flush(done) => {
                let _ = done.send(());
                return;
            }
            Event::Start {
                key,
                name,
                path,
                config,
                history,
            } => (
                self.start(&key, &name, &path, &config, &history),
                "trial start",
                key.id,
            ),
            Event::Result { .. } => unreachable!("results are sent in batches"),
            Event::Checkpoint {
                key,
                name,
                location,
            } => (
                self.checkpoint(&key, &name, &location),
                "checkpoint",
                key.id,
            ),
            Event::End { key, status, error } => {
                (self.end(&key, status, error), "trial end", key.id)
            }
        };
        self.count(1, ok);
        tracing::trace!(event = what, trial, sent = ok, "MLflow event");
    }

    fn count(&self, n: u64, sent: bool) {
        let counter = if sent {
            &self.counters.sent
        } else {
            &self.counters.failed
        };
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Runs one exchange with the server, unless the worker gave up on it; a failure is a
    /// warning naming the trial and what was being sent.
    fn attempt<T>(
        &mut self,
        what: &str,
        trial: &str,
        call: impl FnOnce(&Client) -> Result<T, ApiError>,
    ) -> Option<T> {
        if self.gave_up {
            return None;
        }
        match call(&self.client) {
            Ok(v) => {
                self.unreachable_in_a_row = 0;
                Some(v)
            }
            Err(error) => {
                tracing::warn!(trial, sending = what, %error,
                    "MLflow did not take an event; the run goes on (results stay in the trial's \
                     directory)");
                if error.is_unreachable() {
                    self.unreachable_in_a_row += 1;
                    if self.unreachable_in_a_row >= MAX_UNREACHABLE_IN_A_ROW {
                        self.gave_up = true;
                        tracing::warn!(tracking_uri = %self.settings.tracking_uri,
                            "no MLflow server answered {MAX_UNREACHABLE_IN_A_ROW} times in a row; \
                             nothing more is sent to it from this process (results stay in the \
                             trial directories)");
                    }
                }
                None
            }
        }
    }

    fn experiment_id(&mut self, key: &TrialKey) -> Option<String> {
        if let Some(id) = self.experiments.get(&key.experiment_path) {
            return Some(id.clone());
        }
        let name = match &self.settings.experiment_name {
            Some(name) => name.clone(),
            None => directory_name(&key.experiment_path),
        };
        let tags = self.settings.tags.clone();
        let id = self.attempt("experiment", &key.id, |c| c.experiment_id(&name, &tags))?;
        self.experiments
            .insert(key.experiment_path.clone(), id.clone());
        Some(id)
    }

    /// Creates the trial's run, or finds the run of a trial that resumes (in this process or,
    /// by its tags, in an earlier one) and marks it running again.
    fn start(
        &mut self,
        key: &TrialKey,
        name: &str,
        path: &str,
        config: &Value,
        history: &[Metrics],
    ) -> bool {
        let Some(experiment) = self.experiment_id(key) else {
            return false;
        };
        let known = match self.runs.get(key) {
            Some(run) => Some(run.clone()),
            None => {
                let tags = [
                    (TRIAL_ID_TAG, key.id.as_str()),
                    (EXPERIMENT_PATH_TAG, key.experiment_path.as_str()),
                ];
                match self.attempt("run lookup", &key.id, |c| c.find_run(&experiment, &tags)) {
                    Some(found) => found,
                    None => return false,
                }
            }
        };
        if let Some(run) = known {
            let resumed = self.attempt("run status", &key.id, |c| {
                c.set_status(&run.id, RunStatus::Running, None)
            });
            self.runs.insert(key.clone(), run);
            return resumed.is_some();
        }
        let mut tags = self.settings.tags.clone();
        tags.extend([
            (TRIAL_ID_TAG.to_owned(), key.id.clone()),
            (EXPERIMENT_PATH_TAG.to_owned(), key.experiment_path.clone()),
            (TRIAL_NAME_TAG.to_owned(), name.to_owned()),
            (TRIAL_PATH_TAG.to_owned(), path.to_owned()),
        ]);
        let Some(run) = self.attempt("run", &key.id, |c| {
            c.create_run(&experiment, name, now_ms(), &tags)
        }) else {
            return false;
        };
        tracing::debug!(trial = %key.id, run = %run.id, "MLflow run created");
        self.runs.insert(key.clone(), run.clone());
        // A trial resumed from an experiment tracked elsewhere before: its kept results too.
        let metrics: Vec<Metric> = history.iter().flat_map(metrics_of).collect();
        let params = params_of(config);
        self.attempt("params", &key.id, |c| {
            c.log_batch(&run.id, &metrics, &params, &[])
        })
        .is_some()
    }

    fn checkpoint(&mut self, key: &TrialKey, name: &str, location: &str) -> bool {
        let Some(run) = self.runs.get(key).cloned() else {
            return false;
        };
        let tag = [(CHECKPOINT_TAG.to_owned(), location.to_owned())];
        let tagged = self.attempt("checkpoint tag", &key.id, |c| {
            c.log_batch(&run.id, &[], &[], &tag)
        });
        match self.settings.artifacts {
            Artifacts::Off => tagged.is_some(),
            Artifacts::Checkpoints => {
                let dest = format!("checkpoints/{name}");
                let uploaded = self.attempt("checkpoint artifacts", &key.id, |c| {
                    super::artifacts::upload_checkpoint(c, &run.artifact_uri, &dest, location)
                });
                tagged.is_some() && uploaded.is_some()
            }
        }
    }

    fn end(&mut self, key: &TrialKey, status: RunStatus, error: Option<String>) -> bool {
        let Some(run) = self.runs.get(key).cloned() else {
            return false;
        };
        if let Some(error) = error {
            let tag = [(ERROR_TAG.to_owned(), truncate(&error, MAX_TAG_VALUE))];
            self.attempt("error tag", &key.id, |c| {
                c.log_batch(&run.id, &[], &[], &tag)
            });
        }
        self.attempt("run status", &key.id, |c| {
            c.set_status(&run.id, status, Some(now_ms()))
        })
        .is_some()
    }
}

/// A result's metrics at its step and time.
fn metrics_of(result: &Metrics) -> Vec<Metric> {
    let step = values::step(result);
    let timestamp_ms = result
        .get("timestamp")
        .and_then(Value::as_f64)
        .map_or_else(now_ms, |s| (s * 1000.0) as i64);
    values::scalars(result)
        .into_iter()
        .map(|(key, value)| Metric {
            key,
            value,
            timestamp_ms,
            step,
        })
        .collect()
}

/// A trial's config as MLflow params: dotted names, strings as they are, other leaves as
/// JSON, cut to MLflow's lengths (with a warning).
fn params_of(config: &Value) -> Vec<(String, String)> {
    values::flatten_config(config)
        .into_iter()
        .map(|(k, v)| {
            let value = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            if k.chars().count() > MAX_PARAM_KEY || value.chars().count() > MAX_PARAM_VALUE {
                tracing::warn!(param = %k,
                    "an MLflow param is longer than MLflow keeps ({MAX_PARAM_KEY}-character \
                     names, {MAX_PARAM_VALUE}-character values); it is cut");
            }
            (
                truncate(&k, MAX_PARAM_KEY),
                truncate(&value, MAX_PARAM_VALUE),
            )
        })
        .collect()
}

fn truncate(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}

/// The last component of a local path or URI (the experiment's name by default).
fn directory_name(path: &str) -> String {
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or("air")
        .to_owned()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn params_are_strings_cut_to_mlflows_lengths() {
        let long = "x".repeat(MAX_PARAM_VALUE + 10);
        let params = params_of(&json!({"lr": 0.1, "kind": "tree", "deep": {"a": [1, 2]},
            "long": long}));
        assert_eq!(
            params,
            [
                ("deep.a".to_owned(), "[1,2]".to_owned()),
                ("kind".to_owned(), "tree".to_owned()),
                ("long".to_owned(), "x".repeat(MAX_PARAM_VALUE)),
                ("lr".to_owned(), "0.1".to_owned()),
            ]
        );
    }

    #[test]
    fn metrics_take_the_results_step_and_time() {
        let result: Metrics = serde_json::from_value(json!({
            "loss": 0.25, "training_iteration": 4, "timestamp": 1_700_000_000
        }))
        .unwrap();
        assert_eq!(
            metrics_of(&result),
            [Metric {
                key: "loss".into(),
                value: 0.25,
                timestamp_ms: 1_700_000_000_000,
                step: 4
            }]
        );
    }

    #[test]
    fn experiments_are_named_after_their_directory() {
        assert_eq!(directory_name("/tmp/results/sweep"), "sweep");
        assert_eq!(directory_name("s3://b/results/sweep/"), "sweep");
        assert_eq!(directory_name("/"), "air");
    }
}
