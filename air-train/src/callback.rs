//! Callbacks on a run's or an experiment's events (Ray's `Callback` / `LoggerCallback`):
//! a trial starts, reports a result, saves a checkpoint, completes or fails.
//!
//! Register them on [`RunConfig::with_callback`](crate::RunConfig::with_callback). A trainer's
//! `fit` calls them for its one run (the run is the trial); a tuner calls the ones on *its*
//! run config for every trial, on the driver, whichever executor runs the trials.
//!
//! The per-trial `result.json` and `progress.csv` are written by two callbacks of this kind,
//! [`JsonLoggerCallback`] and [`CsvLoggerCallback`], which every run installs first (a tuner
//! with its result files off leaves them out). Their failures fail the run: a result is on disk
//! before anything else learns of it. Failures of the callbacks a user registers are logged
//! as warnings naming the callback and the event, and the run goes on: tracking is not worth a
//! lost training run (a callback that must stop the run can panic).

use std::{
    collections::HashMap,
    fmt,
    io::Write,
    sync::{Arc, Mutex},
};

use serde_json::Value;

use crate::{BoxError, RunDir, error::Result, run::Metrics};

/// The trial an event belongs to. For a trainer's `fit`, the run.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TrialContext {
    /// The trial's id (the run's name outside a tuner).
    pub id: String,
    /// The trial's directory name.
    pub name: String,
    /// The trial's directory: a local path or a URI.
    pub path: String,
    /// The directory of the experiment (a tuner's) or of the run's storage path (a `fit`).
    pub experiment_path: String,
    /// The trial's config (`{}` for a trainer's own run).
    pub config: Value,
}

impl TrialContext {
    /// A context for trial `id` named `name` at `path`, in the experiment at
    /// `experiment_path`, run with `config`.
    pub fn new(id: &str, name: &str, path: &str, experiment_path: &str, config: Value) -> Self {
        Self {
            id: id.to_owned(),
            name: name.to_owned(),
            path: path.to_owned(),
            experiment_path: experiment_path.to_owned(),
            config,
        }
    }
}

/// Receives a run's or an experiment's events. Every method defaults to doing nothing.
///
/// Methods are called from the thread that produced the event (a trial's thread for results),
/// so an implementation is `Send + Sync` and guards its own state.
pub trait Callback: Send + Sync + fmt::Debug {
    /// The name used in warnings about this callback.
    fn name(&self) -> &str {
        "callback"
    }

    /// Trial `trial` starts, or resumes: `history` holds the results it keeps from before
    /// (empty for a fresh start).
    fn on_trial_start(&self, trial: &TrialContext, history: &[Metrics]) -> Result<(), BoxError> {
        let _ = (trial, history);
        Ok(())
    }

    /// Trial `trial` reported `result` (auto-filled keys included: `training_iteration`,
    /// `time_total_s`, `timestamp`, ...).
    fn on_trial_result(&self, trial: &TrialContext, result: &Metrics) -> Result<(), BoxError> {
        let _ = (trial, result);
        Ok(())
    }

    /// Trial `trial` saved checkpoint `name` at `location` (a local path or a URI) with the
    /// report `result`; `on_trial_result` for that report comes right after.
    fn on_checkpoint(
        &self,
        trial: &TrialContext,
        name: &str,
        location: &str,
        result: &Metrics,
    ) -> Result<(), BoxError> {
        let _ = (trial, name, location, result);
        Ok(())
    }

    /// Trial `trial` ended without an error; `last` is its last result.
    fn on_trial_complete(
        &self,
        trial: &TrialContext,
        last: Option<&Metrics>,
    ) -> Result<(), BoxError> {
        let _ = (trial, last);
        Ok(())
    }

    /// Trial `trial` failed with `error` (it may be retried: a retry starts again with
    /// `on_trial_start`).
    fn on_trial_error(&self, trial: &TrialContext, error: &str) -> Result<(), BoxError> {
        let _ = (trial, error);
        Ok(())
    }

    /// The experiment (or a trainer's run) ended.
    fn on_experiment_end(&self, experiment_path: &str) -> Result<(), BoxError> {
        let _ = experiment_path;
        Ok(())
    }
}

/// The callbacks of a run config: compared by identity, never serialised (a config read from
/// JSON has none).
#[derive(Clone, Default)]
pub struct Callbacks(Vec<Arc<dyn Callback>>);

impl Callbacks {
    pub(crate) fn push(&mut self, c: Arc<dyn Callback>) {
        self.0.push(c);
    }

    /// The callbacks, in registration order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Callback>> {
        self.0.iter()
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// None registered.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Calls `event` on every callback; a failure is logged as a warning naming the callback
    /// and `what`, and the others still run.
    pub fn notify(&self, what: &str, event: impl Fn(&dyn Callback) -> Result<(), BoxError>) {
        for c in &self.0 {
            if let Err(e) = event(c.as_ref()) {
                tracing::warn!(callback = c.name(), event = what, error = %e,
                    "a callback failed; the run goes on");
            }
        }
    }
}

impl fmt::Debug for Callbacks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|c| c.name()))
            .finish()
    }
}

impl PartialEq for Callbacks {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len() && self.0.iter().zip(&other.0).all(|(a, b)| Arc::ptr_eq(a, b))
    }
}

/// One metrics file per trial, written through the trial's [`RunDir`].
#[derive(Debug, Default)]
struct FileLog {
    trials: Mutex<HashMap<String, TrialLog>>,
}

#[derive(Debug)]
struct TrialLog {
    dir: RunDir,
    rows: Vec<Metrics>,
    header: Vec<String>,
    /// The file, kept open for appending while the trial runs (local directories only):
    /// a result costs one `write`, not an open, a write and a close.
    appender: Option<std::fs::File>,
    /// The file is known to be absent or empty (`on_trial_start` saw to it): the first row
    /// can be appended with its header instead of the file being written whole.
    emptied: bool,
}

impl TrialLog {
    fn new(dir: RunDir) -> Self {
        Self {
            dir,
            rows: Vec::new(),
            header: Vec::new(),
            appender: None,
            emptied: false,
        }
    }

    /// Appends `text` to file `name` (an object store gets the whole file, `whole(rows)`). The
    /// bytes are in the file (the OS's page cache) when this returns, before the tuner records
    /// the result.
    fn append(
        &mut self,
        name: &str,
        text: &str,
        whole: impl FnOnce(&[Metrics]) -> String,
    ) -> Result<()> {
        if self.appender.is_none() {
            self.appender = self.dir.open_append(name)?;
        }
        match &mut self.appender {
            Some(file) => file
                .write_all(text.as_bytes())
                .map_err(|e| crate::TrainError::storage(self.dir.child(name), e)),
            None => {
                let rows = &self.rows;
                self.dir.append(name, text, || whole(rows))
            }
        }
    }

    /// Replaces file `name` whole (atomically); the open appender pointed at the old file.
    fn rewrite(&mut self, name: &str, text: String) -> Result<()> {
        self.appender = None;
        self.dir.write(name, text.into_bytes())
    }
}

impl FileLog {
    fn with_trial<T>(
        &self,
        trial: &TrialContext,
        f: impl FnOnce(&mut TrialLog) -> Result<T>,
    ) -> Result<T> {
        let mut trials = self.trials.lock().unwrap_or_else(|p| p.into_inner());
        let log = match trials.entry(trial.path.clone()) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => v.insert(TrialLog::new(RunDir::at(
                &trial.path,
                &air_checkpoint::StorageOptions::new(),
            )?)),
        };
        f(log)
    }

    fn adopt(&self, trial: &TrialContext, dir: RunDir) {
        let mut trials = self.trials.lock().unwrap_or_else(|p| p.into_inner());
        trials.insert(trial.path.clone(), TrialLog::new(dir));
    }

    /// Closes a trial's file and drops what was kept of it (the trial ended; a restart calls
    /// `on_trial_start` again).
    fn forget(&self, trial: &TrialContext) {
        let mut trials = self.trials.lock().unwrap_or_else(|p| p.into_inner());
        trials.remove(&trial.path);
    }
}

/// Writes every result of a trial as one JSON line of `result.json` in its directory (Ray's
/// `JsonLoggerCallback`), appended as it comes; a resumed trial's file is rewritten with the
/// results it keeps.
#[derive(Debug, Default)]
pub struct JsonLoggerCallback(FileLog);

impl JsonLoggerCallback {
    /// The file name.
    pub const FILE: &'static str = "result.json";

    /// A logger for any number of trials (each its own file).
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes `trial`'s file through `dir` (credentials and all) instead of opening its path.
    pub(crate) fn adopt(&self, trial: &TrialContext, dir: RunDir) {
        self.0.adopt(trial, dir);
    }
}

fn lines<'a>(rows: impl Iterator<Item = &'a Metrics>) -> String {
    rows.map(|m| format!("{}\n", Value::Object(m.clone())))
        .collect()
}

impl Callback for JsonLoggerCallback {
    fn name(&self) -> &str {
        "JsonLoggerCallback"
    }

    fn on_trial_start(&self, trial: &TrialContext, history: &[Metrics]) -> Result<(), BoxError> {
        Ok(self.0.with_trial(trial, |log| {
            log.rows = history.to_vec();
            if !history.is_empty() || log.dir.exists(Self::FILE)? {
                log.rewrite(Self::FILE, lines(history.iter()))?;
            }
            Ok(())
        })?)
    }

    fn on_trial_result(&self, trial: &TrialContext, result: &Metrics) -> Result<(), BoxError> {
        Ok(self.0.with_trial(trial, |log| {
            let line = format!("{}\n", Value::Object(result.clone()));
            log.append(Self::FILE, &line, |rows| lines(rows.iter().chain([result])))?;
            log.rows.push(result.clone());
            Ok(())
        })?)
    }

    fn on_trial_complete(
        &self,
        trial: &TrialContext,
        _last: Option<&Metrics>,
    ) -> Result<(), BoxError> {
        self.0.forget(trial);
        Ok(())
    }

    fn on_trial_error(&self, trial: &TrialContext, _error: &str) -> Result<(), BoxError> {
        self.0.forget(trial);
        Ok(())
    }
}

/// Writes every result of a trial as a row of `progress.csv` in its directory (Ray's
/// `CSVLoggerCallback`): one column per key seen so far, the whole file rewritten when a new
/// key appears.
#[derive(Debug, Default)]
pub struct CsvLoggerCallback(FileLog);

impl CsvLoggerCallback {
    /// The file name.
    pub const FILE: &'static str = "progress.csv";

    /// A logger for any number of trials (each its own file).
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes `trial`'s file through `dir` instead of opening its path.
    pub(crate) fn adopt(&self, trial: &TrialContext, dir: RunDir) {
        self.0.adopt(trial, dir);
    }
}

impl Callback for CsvLoggerCallback {
    fn name(&self) -> &str {
        "CsvLoggerCallback"
    }

    fn on_trial_start(&self, trial: &TrialContext, history: &[Metrics]) -> Result<(), BoxError> {
        Ok(self.0.with_trial(trial, |log| {
            log.rows = history.to_vec();
            log.header.clear();
            for m in history {
                for k in m.keys() {
                    if !log.header.contains(k) {
                        log.header.push(k.clone());
                    }
                }
            }
            // A file left from an earlier start is replaced (or emptied, so that the first
            // result starts it again by appending).
            if !history.is_empty() || log.dir.exists(Self::FILE)? {
                let all = if history.is_empty() {
                    String::new()
                } else {
                    csv_whole(&log.header, history.iter())
                };
                log.rewrite(Self::FILE, all)?;
            }
            log.emptied = history.is_empty();
            Ok(())
        })?)
    }

    fn on_trial_result(&self, trial: &TrialContext, result: &Metrics) -> Result<(), BoxError> {
        Ok(self.0.with_trial(trial, |log| {
            let mut header = log.header.clone();
            for k in result.keys() {
                if !header.contains(k) {
                    header.push(k.clone());
                }
            }
            let first = log.rows.is_empty() && log.emptied;
            if first || (header == log.header && !log.rows.is_empty()) {
                // The first row brings the header along: the file is absent or empty.
                let text = if first {
                    csv_whole(&header, [result].into_iter())
                } else {
                    csv_row(&header, result)
                };
                log.append(Self::FILE, &text, |rows| {
                    csv_whole(&header, rows.iter().chain([result]))
                })?;
            } else {
                let all = csv_whole(&header, log.rows.iter().chain([result]));
                log.rewrite(Self::FILE, all)?;
            }
            log.header = header;
            log.rows.push(result.clone());
            Ok(())
        })?)
    }

    fn on_trial_complete(
        &self,
        trial: &TrialContext,
        _last: Option<&Metrics>,
    ) -> Result<(), BoxError> {
        self.0.forget(trial);
        Ok(())
    }

    fn on_trial_error(&self, trial: &TrialContext, _error: &str) -> Result<(), BoxError> {
        self.0.forget(trial);
        Ok(())
    }
}

fn csv_field(v: Option<&Value>) -> String {
    let text = match v {
        None | Some(Value::Null) => return String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

fn csv_row(header: &[String], m: &Metrics) -> String {
    let fields: Vec<String> = header.iter().map(|h| csv_field(m.get(h))).collect();
    format!("{}\n", fields.join(","))
}

fn csv_whole<'a>(header: &[String], rows: impl Iterator<Item = &'a Metrics>) -> String {
    let names: Vec<String> = header
        .iter()
        .map(|h| csv_field(Some(&Value::String(h.clone()))))
        .collect();
    let mut out = format!("{}\n", names.join(","));
    for r in rows {
        out.push_str(&csv_row(header, r));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quoting() {
        let m: Metrics = serde_json::from_str(r#"{"a": 1, "b": "x,y", "c": null}"#).unwrap();
        assert_eq!(
            csv_row(&["a".into(), "b".into(), "c".into(), "d".into()], &m),
            "1,\"x,y\",,\n"
        );
    }
}
