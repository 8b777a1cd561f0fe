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
    sync::{Arc, Mutex, Weak},
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
#[derive(Debug)]
struct FileLog {
    /// The file's name in each trial's directory.
    file: &'static str,
    trials: Mutex<HashMap<String, TrialLog>>,
    /// Rows wait in memory until [`FileLog::flush`] (or a trial's end) instead of being
    /// written one by one; see [`ResultFiles`].
    batched: bool,
}

/// What a trial's file lacks of its rows.
#[derive(Debug, Default)]
enum Unwritten {
    #[default]
    Nothing,
    /// These bytes, appended.
    Tail(String),
    /// The file must be written whole (a new CSV column, a first row over an old file, an
    /// object store, or a failed write).
    Whole,
}

/// Above this many bytes waiting, a batched file is written at once.
const BATCH_BYTES: usize = 64 * 1024;

/// A trial's metrics file: its header (CSV) and its rows as written.
#[derive(Debug)]
struct TrialLog {
    /// The file's name in `dir`.
    file: &'static str,
    dir: RunDir,
    /// The file's first line (CSV's column names; empty for JSON lines).
    head: String,
    /// The rows as written: an object store gets the file whole, and a new CSV column widens
    /// every row. Text, not parsed results: appending a row copies its bytes once.
    body: String,
    /// Where each row of `body` ends.
    row_ends: Vec<usize>,
    /// CSV's columns.
    header: Vec<String>,
    /// The file, kept open for appending while the trial runs (local directories only):
    /// a result costs one `write`, not an open, a write and a close.
    appender: Option<std::fs::File>,
    /// The file is known to be absent or empty (`on_trial_start` saw to it): the first row
    /// can be appended with its header instead of the file being written whole.
    emptied: bool,
    /// What the file lacks (batched logs only; an unbatched one writes every row at once).
    unwritten: Unwritten,
    /// `on_trial_start` has been called (a later call may find rows of the earlier start).
    started: bool,
}

impl TrialLog {
    fn new(file: &'static str, dir: RunDir) -> Self {
        Self {
            file,
            dir,
            head: String::new(),
            body: String::new(),
            row_ends: Vec::new(),
            header: Vec::new(),
            appender: None,
            emptied: false,
            unwritten: Unwritten::Nothing,
            started: false,
        }
    }

    /// Whether this is the first start of a trial whose directory was just made (no file
    /// can be there to replace); marks the trial started.
    fn first_start(&mut self) -> bool {
        let first = !self.started && self.dir.made_empty();
        self.started = true;
        first
    }

    /// Keeps `rows` (a resumed trial's history, formatted) as the file's rows.
    fn reset(&mut self, rows: impl Iterator<Item = String>) {
        self.body.clear();
        self.row_ends.clear();
        for r in rows {
            self.body.push_str(&r);
            self.row_ends.push(self.body.len());
        }
    }

    /// Adds `row` after the file's rows, and writes what the file lacks unless `batched`
    /// (then only above [`BATCH_BYTES`]). Written means in the file (the OS's page cache):
    /// appended where the directory is local (with the head when the file starts empty),
    /// the whole file to an object store.
    fn push_row(&mut self, row: &str, batched: bool) -> Result<()> {
        let first = self.row_ends.is_empty();
        self.body.push_str(row);
        self.row_ends.push(self.body.len());
        if first && !self.emptied {
            // Whatever an earlier run left is replaced.
            self.unwritten = Unwritten::Whole;
        } else {
            let tail = if first { self.head.as_str() } else { "" };
            match &mut self.unwritten {
                Unwritten::Whole => {}
                Unwritten::Tail(bytes) => {
                    bytes.push_str(tail);
                    bytes.push_str(row);
                }
                nothing @ Unwritten::Nothing => *nothing = Unwritten::Tail(format!("{tail}{row}")),
            }
        }
        let waiting = match &self.unwritten {
            Unwritten::Tail(bytes) => bytes.len(),
            _ => 0,
        };
        if batched && waiting < BATCH_BYTES {
            return Ok(());
        }
        self.flush()
    }

    /// The file is to be written whole (its rows changed), now unless `batched`.
    fn replace(&mut self, batched: bool) -> Result<()> {
        self.unwritten = Unwritten::Whole;
        if batched { Ok(()) } else { self.flush() }
    }

    /// Writes what the file lacks. A failed write leaves the file owed whole.
    fn flush(&mut self) -> Result<()> {
        let name = self.file;
        let bytes = match std::mem::take(&mut self.unwritten) {
            Unwritten::Nothing => return Ok(()),
            Unwritten::Whole => return self.rewrite(),
            Unwritten::Tail(bytes) => bytes,
        };
        if self.appender.is_none() {
            self.appender = match self.dir.open_append(name) {
                Ok(file) => file,
                Err(e) => {
                    self.unwritten = Unwritten::Whole;
                    return Err(e);
                }
            };
        }
        let Some(file) = &mut self.appender else {
            // An object store cannot append.
            return self.rewrite();
        };
        file.write_all(bytes.as_bytes()).map_err(|e| {
            self.appender = None;
            self.unwritten = Unwritten::Whole;
            crate::TrainError::storage(self.dir.child(name), e)
        })
    }

    /// Replaces the file whole (atomically) with the head and rows; the open appender
    /// pointed at the old file.
    fn rewrite(&mut self) -> Result<()> {
        self.appender = None;
        self.emptied = false;
        let written = self.dir.write(
            self.file,
            format!("{}{}", self.head, self.body).into_bytes(),
        );
        self.unwritten = if written.is_ok() {
            Unwritten::Nothing
        } else {
            Unwritten::Whole
        };
        written
    }
}

impl Drop for TrialLog {
    /// A trial that ended without its logger hearing of it (a panic): the rows it reported
    /// are still written.
    fn drop(&mut self) {
        if let Err(e) = self.flush() {
            tracing::warn!(file = %self.dir.child(self.file), error = %e,
                "the last results could not be written");
        }
    }
}

impl FileLog {
    fn new(file: &'static str, batched: bool) -> Self {
        Self {
            file,
            trials: Mutex::default(),
            batched,
        }
    }

    fn with_trial<T>(
        &self,
        trial: &TrialContext,
        f: impl FnOnce(&mut TrialLog, bool) -> Result<T>,
    ) -> Result<T> {
        let mut trials = self.trials.lock().unwrap_or_else(|p| p.into_inner());
        if !trials.contains_key(&trial.path) {
            let dir = RunDir::at(&trial.path, &air_checkpoint::StorageOptions::new())?;
            trials.insert(trial.path.clone(), TrialLog::new(self.file, dir));
        }
        match trials.get_mut(&trial.path) {
            Some(log) => f(log, self.batched),
            None => unreachable!("inserted above"),
        }
    }

    /// Writes `trial`'s file through `dir`; rows an earlier run of the trial left unwritten
    /// are written first.
    fn adopt(&self, trial: &TrialContext, dir: RunDir) -> Result<()> {
        let mut trials = self.trials.lock().unwrap_or_else(|p| p.into_inner());
        let earlier = trials.insert(trial.path.clone(), TrialLog::new(self.file, dir));
        match earlier {
            Some(mut log) => log.flush(),
            None => Ok(()),
        }
    }

    /// Writes what every trial's file lacks; the first failure, after trying them all.
    fn flush(&self) -> Result<()> {
        let mut trials = self.trials.lock().unwrap_or_else(|p| p.into_inner());
        first_failure(trials.values_mut().map(TrialLog::flush))
    }

    /// Writes what a trial's file lacks, closes it and drops what was kept of it (the trial
    /// ended; a restart calls `on_trial_start` again).
    fn forget(&self, trial: &TrialContext) -> Result<()> {
        let mut trials = self.trials.lock().unwrap_or_else(|p| p.into_inner());
        match trials.remove(&trial.path) {
            Some(mut log) => log.flush(),
            None => Ok(()),
        }
    }
}

/// Runs every one of `results` (none is skipped for an earlier failure); the first failure.
pub(crate) fn first_failure<E>(results: impl IntoIterator<Item = Result<(), E>>) -> Result<(), E> {
    let mut first = Ok(());
    for r in results {
        if first.is_ok() {
            first = r;
        }
    }
    first
}

/// The result files (`result.json`, `progress.csv`) of many trials, written in batches: a
/// trial's rows wait in memory until [`ResultFiles::flush`] or the trial's end, instead of
/// costing two writes each. A tuner shares one among its trials
/// ([`TrialInfo::with_batched_result_files`](crate::TrialInfo::with_batched_result_files))
/// and flushes it before it saves its experiment state, so a result is on disk before the
/// state says it happened. Each trial keeps its own loggers (a result locks only its
/// trial's); this holds them weakly, to flush.
#[derive(Debug, Clone, Default)]
pub struct ResultFiles {
    trials: Arc<Mutex<Vec<LoggerPair>>>,
}

/// A trial's two batched loggers, as [`ResultFiles`] keeps them.
type LoggerPair = (Weak<JsonLoggerCallback>, Weak<CsvLoggerCallback>);

impl ResultFiles {
    /// Batched loggers for any number of trials.
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes every row reported so far; the first failure, after trying every file.
    pub fn flush(&self) -> Result<()> {
        let trials = self.trials.lock().unwrap_or_else(|p| p.into_inner());
        first_failure(trials.iter().flat_map(|(json, csv)| {
            [
                json.upgrade().map_or(Ok(()), |l| l.0.flush()),
                csv.upgrade().map_or(Ok(()), |l| l.0.flush()),
            ]
        }))
    }

    /// Two new batched loggers for `trial`, writing its files through `dir`.
    pub(crate) fn loggers(
        &self,
        trial: &TrialContext,
        dir: &RunDir,
    ) -> Result<Vec<Arc<dyn Callback>>> {
        let json = Arc::new(JsonLoggerCallback(FileLog::new(
            JsonLoggerCallback::FILE,
            true,
        )));
        let csv = Arc::new(CsvLoggerCallback(FileLog::new(
            CsvLoggerCallback::FILE,
            true,
        )));
        json.0.adopt(trial, dir.clone())?;
        csv.0.adopt(trial, dir.clone())?;
        let mut trials = self.trials.lock().unwrap_or_else(|p| p.into_inner());
        // Trials that ended (their loggers dropped) leave.
        trials.retain(|(j, c)| j.strong_count() + c.strong_count() > 0);
        trials.push((Arc::downgrade(&json), Arc::downgrade(&csv)));
        Ok(vec![json, csv])
    }
}

/// Writes every result of a trial as one JSON line of `result.json` in its directory (Ray's
/// `JsonLoggerCallback`), appended as it comes; a resumed trial's file is rewritten with the
/// results it keeps.
#[derive(Debug)]
pub struct JsonLoggerCallback(FileLog);

impl Default for JsonLoggerCallback {
    fn default() -> Self {
        Self(FileLog::new(Self::FILE, false))
    }
}

impl JsonLoggerCallback {
    /// The file name.
    pub const FILE: &'static str = "result.json";

    /// A logger for any number of trials (each its own file).
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes `trial`'s file through `dir` (credentials and all) instead of opening its path.
    pub(crate) fn adopt(&self, trial: &TrialContext, dir: RunDir) -> Result<()> {
        self.0.adopt(trial, dir)
    }
}

/// A result as one JSON line.
fn json_line(m: &Metrics) -> String {
    let mut line = serde_json::to_string(m).unwrap_or_else(|_| "{}".to_owned());
    line.push('\n');
    line
}

impl Callback for JsonLoggerCallback {
    fn name(&self) -> &str {
        "JsonLoggerCallback"
    }

    fn on_trial_start(&self, trial: &TrialContext, history: &[Metrics]) -> Result<(), BoxError> {
        Ok(self.0.with_trial(trial, |log, _| {
            log.reset(history.iter().map(json_line));
            let first = log.first_start();
            if !history.is_empty() || !first && log.dir.exists(Self::FILE)? {
                log.rewrite()?;
            }
            log.emptied = history.is_empty();
            Ok(())
        })?)
    }

    fn on_trial_result(&self, trial: &TrialContext, result: &Metrics) -> Result<(), BoxError> {
        Ok(self.0.with_trial(trial, |log, batched| {
            log.push_row(&json_line(result), batched)
        })?)
    }

    fn on_trial_complete(
        &self,
        trial: &TrialContext,
        _last: Option<&Metrics>,
    ) -> Result<(), BoxError> {
        Ok(self.0.forget(trial)?)
    }

    fn on_trial_error(&self, trial: &TrialContext, _error: &str) -> Result<(), BoxError> {
        Ok(self.0.forget(trial)?)
    }
}

/// Writes every result of a trial as a row of `progress.csv` in its directory (Ray's
/// `CSVLoggerCallback`): one column per key seen so far, the whole file rewritten when a new
/// key appears (earlier rows get an empty field for it).
#[derive(Debug)]
pub struct CsvLoggerCallback(FileLog);

impl Default for CsvLoggerCallback {
    fn default() -> Self {
        Self(FileLog::new(Self::FILE, false))
    }
}

impl CsvLoggerCallback {
    /// The file name.
    pub const FILE: &'static str = "progress.csv";

    /// A logger for any number of trials (each its own file).
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes `trial`'s file through `dir` instead of opening its path.
    pub(crate) fn adopt(&self, trial: &TrialContext, dir: RunDir) -> Result<()> {
        self.0.adopt(trial, dir)
    }
}

impl Callback for CsvLoggerCallback {
    fn name(&self) -> &str {
        "CsvLoggerCallback"
    }

    fn on_trial_start(&self, trial: &TrialContext, history: &[Metrics]) -> Result<(), BoxError> {
        Ok(self.0.with_trial(trial, |log, _| {
            log.header.clear();
            for m in history {
                for k in m.keys() {
                    if !log.header.contains(k) {
                        log.header.push(k.clone());
                    }
                }
            }
            log.head = if history.is_empty() {
                String::new()
            } else {
                csv_head(&log.header)
            };
            let header = std::mem::take(&mut log.header);
            log.reset(history.iter().map(|m| csv_row(&header, m)));
            log.header = header;
            // A file left from an earlier start is replaced (or emptied, so that the first
            // result starts it again by appending).
            let first = log.first_start();
            if !history.is_empty() || !first && log.dir.exists(Self::FILE)? {
                log.rewrite()?;
            }
            log.emptied = history.is_empty();
            Ok(())
        })?)
    }

    fn on_trial_result(&self, trial: &TrialContext, result: &Metrics) -> Result<(), BoxError> {
        Ok(self.0.with_trial(trial, |log, batched| {
            let before = log.header.len();
            for k in result.keys() {
                if !log.header.contains(k) {
                    log.header.push(k.clone());
                }
            }
            let added = log.header.len() - before;
            if added > 0 {
                log.head = csv_head(&log.header);
            }
            let row = csv_row(&log.header, result);
            if added == 0 || log.row_ends.is_empty() {
                return log.push_row(&row, batched);
            }
            // A new column: every earlier row gets an empty field for it, the file is
            // written whole.
            let pad = ",".repeat(added);
            let mut body = String::with_capacity(log.body.len() + log.row_ends.len() * added);
            let mut ends = Vec::with_capacity(log.row_ends.len() + 1);
            let mut start = 0;
            for &end in &log.row_ends {
                body.push_str(&log.body[start..end - 1]);
                body.push_str(&pad);
                body.push('\n');
                ends.push(body.len());
                start = end;
            }
            body.push_str(&row);
            ends.push(body.len());
            (log.body, log.row_ends) = (body, ends);
            log.replace(batched)
        })?)
    }

    fn on_trial_complete(
        &self,
        trial: &TrialContext,
        _last: Option<&Metrics>,
    ) -> Result<(), BoxError> {
        Ok(self.0.forget(trial)?)
    }

    fn on_trial_error(&self, trial: &TrialContext, _error: &str) -> Result<(), BoxError> {
        Ok(self.0.forget(trial)?)
    }
}

/// Appends `text` as a CSV field (quoted when it holds a separator, a quote or a line
/// break).
fn push_csv_text(out: &mut String, text: &str) {
    if text.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(text);
    }
}

/// Appends a CSV field for `v` (empty for none or null).
fn push_csv_field(out: &mut String, v: Option<&Value>) {
    use std::fmt::Write as _;
    match v {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => push_csv_text(out, s),
        Some(n @ (Value::Number(_) | Value::Bool(_))) => {
            // Neither holds a character that needs quoting.
            let _ = write!(out, "{n}");
        }
        Some(other) => push_csv_text(out, &other.to_string()),
    }
}

/// A result's CSV row (with its line break) under `header`.
fn csv_row(header: &[String], m: &Metrics) -> String {
    let mut out = String::with_capacity(16 * header.len());
    for (i, h) in header.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_csv_field(&mut out, m.get(h));
    }
    out.push('\n');
    out
}

/// The CSV header line.
fn csv_head(header: &[String]) -> String {
    let mut out = String::new();
    for (i, h) in header.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_csv_text(&mut out, h);
    }
    out.push('\n');
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

    fn metrics(text: &str) -> Metrics {
        serde_json::from_str(text).unwrap()
    }

    /// The files the two loggers leave after `results` (a resumed trial first keeps `history`).
    fn logged(path: &str, history: &[Metrics], results: &[Metrics]) -> (String, String) {
        let trial = TrialContext::new("t", "t", path, path, Value::Null);
        let (json, csv) = (JsonLoggerCallback::new(), CsvLoggerCallback::new());
        for logger in [&json as &dyn Callback, &csv] {
            logger.on_trial_start(&trial, history).unwrap();
            for r in results {
                logger.on_trial_result(&trial, r).unwrap();
            }
            logger.on_trial_complete(&trial, results.last()).unwrap();
        }
        let dir = RunDir::at(path, &air_checkpoint::StorageOptions::new()).unwrap();
        let read = |f: &str| String::from_utf8(dir.read(f).unwrap().unwrap()).unwrap();
        (
            read(JsonLoggerCallback::FILE),
            read(CsvLoggerCallback::FILE),
        )
    }

    #[test]
    fn loggers_append_widen_and_resume_the_same_on_local_and_object_storage() {
        let tmp = tempfile::tempdir().unwrap();
        let results = [
            metrics(r#"{"a": 1}"#),
            metrics(r#"{"a": 2, "b": "x,y"}"#),
            metrics(r#"{"a": 3}"#),
            metrics(r#"{"a": 4, "c": true}"#),
        ];
        let local = tmp.path().join("trial").display().to_string();
        std::fs::create_dir_all(&local).unwrap();
        // A file an earlier start left is replaced.
        std::fs::write(format!("{local}/progress.csv"), "stale\n").unwrap();
        std::fs::write(format!("{local}/result.json"), "stale\n").unwrap();
        let (json, csv) = logged(&local, &[], &results);
        assert_eq!(
            json,
            "{\"a\":1}\n{\"a\":2,\"b\":\"x,y\"}\n{\"a\":3}\n{\"a\":4,\"c\":true}\n"
        );
        assert_eq!(csv, "a,b,c\n1,,\n2,\"x,y\",\n3,,\n4,,true\n");
        assert_eq!(
            logged("memory://loggers/trial", &[], &results),
            (json.clone(), csv.clone())
        );
        // A resumed trial's files hold its kept history, then what follows.
        let resumed = logged(&local, &results[..2], &results[2..]);
        assert_eq!(resumed, (json.clone(), csv.clone()));
        assert_eq!(
            logged("memory://loggers/resumed", &results[..2], &results[2..]),
            (json, csv)
        );
    }

    /// The files left by batched loggers shared by two trials reporting in turn, flushed after
    /// every `flush_every` results (and at the trials' ends).
    fn logged_batched(
        paths: [&str; 2],
        history: &[Metrics],
        results: &[Metrics],
        flush_every: usize,
    ) -> Vec<(String, String)> {
        let files = ResultFiles::new();
        let trials = paths.map(|p| TrialContext::new(p, p, p, p, Value::Null));
        let options = air_checkpoint::StorageOptions::new();
        let dirs = paths.map(|p| RunDir::at(p, &options).unwrap());
        let mut loggers = Vec::new();
        for (trial, dir) in trials.iter().zip(&dirs) {
            let pair = files.loggers(trial, dir).unwrap();
            for l in &pair {
                l.on_trial_start(trial, history).unwrap();
            }
            loggers.push(pair);
        }
        for (n, r) in results.iter().enumerate() {
            for (trial, pair) in trials.iter().zip(&loggers) {
                for l in pair {
                    l.on_trial_result(trial, r).unwrap();
                }
            }
            if (n + 1) % flush_every == 0 {
                files.flush().unwrap();
            }
        }
        for (trial, pair) in trials.iter().zip(&loggers) {
            for l in pair {
                l.on_trial_complete(trial, results.last()).unwrap();
            }
        }
        let read =
            |dir: &RunDir, f: &str| String::from_utf8(dir.read(f).unwrap().unwrap()).unwrap();
        dirs.iter()
            .map(|d| {
                (
                    read(d, JsonLoggerCallback::FILE),
                    read(d, CsvLoggerCallback::FILE),
                )
            })
            .collect()
    }

    /// Batched loggers leave the same files as row-by-row ones, however often they are
    /// flushed, locally and on an object store, fresh, over stale files and resumed; a row
    /// is in the file after a flush, not before.
    #[test]
    fn batched_result_files_equal_row_by_row_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let results: Vec<Metrics> = (0..9)
            .map(|i| {
                let extra = match i {
                    3 => r#", "b": "x,y""#,
                    7 => r#", "c": true"#,
                    _ => "",
                };
                metrics(&format!(r#"{{"a": {i}{extra}}}"#))
            })
            .collect();
        let local = |name: &str| {
            let p = tmp.path().join(name).display().to_string();
            std::fs::create_dir_all(&p).unwrap();
            p
        };
        for (case, history) in [("fresh", &[][..]), ("resumed", &results[..4])] {
            let rest = &results[history.len()..];
            let expected = logged(&local(&format!("{case}-unbatched")), history, rest);
            for flush_every in [1, 2, 5, 100] {
                let (a, b) = (
                    local(&format!("{case}-{flush_every}-a")),
                    local(&format!("{case}-{flush_every}-b")),
                );
                // A file an earlier start left is replaced.
                std::fs::write(format!("{b}/progress.csv"), "stale\n").unwrap();
                std::fs::write(format!("{b}/result.json"), "stale\n").unwrap();
                let memory = format!("memory://batched/{case}/{flush_every}");
                for files in [
                    logged_batched([&a, &b], history, rest, flush_every),
                    logged_batched(
                        [&memory, &format!("{memory}/b")],
                        history,
                        rest,
                        flush_every,
                    ),
                ] {
                    assert_eq!(
                        files,
                        [expected.clone(), expected.clone()],
                        "{case}, {flush_every}"
                    );
                }
            }
        }
        // Rows wait for the flush; a trial's end writes the rest.
        let path = local("waits");
        let trial = TrialContext::new("w", "w", &path, &path, Value::Null);
        let files = ResultFiles::new();
        let dir = RunDir::at(&path, &air_checkpoint::StorageOptions::new()).unwrap();
        let pair = files.loggers(&trial, &dir).unwrap();
        let lines = || {
            std::fs::read_to_string(format!("{path}/result.json")).map_or(0, |t| t.lines().count())
        };
        for l in &pair {
            l.on_trial_start(&trial, &[]).unwrap();
            l.on_trial_result(&trial, &results[0]).unwrap();
        }
        assert_eq!(lines(), 0);
        files.flush().unwrap();
        assert_eq!(lines(), 1);
        for l in &pair {
            l.on_trial_result(&trial, &results[1]).unwrap();
        }
        assert_eq!(lines(), 1);
        // A row past the batch size is written at once.
        let big = metrics(&format!(r#"{{"a": "{}"}}"#, "x".repeat(BATCH_BYTES)));
        pair[0].on_trial_result(&trial, &big).unwrap();
        assert_eq!(lines(), 3);
        pair[1].on_trial_complete(&trial, None).unwrap();
        let csv = std::fs::read_to_string(format!("{path}/progress.csv")).unwrap();
        assert_eq!(csv, "a\n0\n1\n");
    }
    /// A directory just made holds no file to replace, but a second start of the same trial
    /// (a restart from scratch) replaces what the first one wrote, batched or not.
    #[test]
    fn a_restart_in_a_directory_made_for_the_trial_replaces_the_first_starts_rows() {
        let tmp = tempfile::tempdir().unwrap();
        let options = air_checkpoint::StorageOptions::new();
        let root = tmp.path().display().to_string();
        for (name, files) in [("plain", None), ("batched", Some(ResultFiles::new()))] {
            let dir = RunDir::create(&root, name, &options).unwrap();
            assert!(dir.made_empty());
            assert!(!RunDir::create(&root, name, &options).unwrap().made_empty());
            let trial = TrialContext::new(name, name, &dir.path(), &root, Value::Null);
            let loggers: Vec<Arc<dyn Callback>> = match &files {
                Some(f) => f.loggers(&trial, &dir).unwrap(),
                None => {
                    let (json, csv) = (JsonLoggerCallback::new(), CsvLoggerCallback::new());
                    json.adopt(&trial, dir.clone()).unwrap();
                    csv.adopt(&trial, dir.clone()).unwrap();
                    vec![Arc::new(json), Arc::new(csv)]
                }
            };
            for l in &loggers {
                l.on_trial_start(&trial, &[]).unwrap();
                l.on_trial_result(&trial, &metrics(r#"{"a": 1}"#)).unwrap();
                l.on_trial_result(&trial, &metrics(r#"{"a": 2}"#)).unwrap();
            }
            if let Some(f) = &files {
                f.flush().unwrap();
            }
            for l in &loggers {
                l.on_trial_start(&trial, &[]).unwrap();
                l.on_trial_result(&trial, &metrics(r#"{"a": 3}"#)).unwrap();
                l.on_trial_complete(&trial, None).unwrap();
            }
            let read = |f: &str| String::from_utf8(dir.read(f).unwrap().unwrap()).unwrap();
            assert_eq!(read(JsonLoggerCallback::FILE), "{\"a\":3}\n", "{name}");
            assert_eq!(read(CsvLoggerCallback::FILE), "a\n3\n", "{name}");
        }
    }
}
