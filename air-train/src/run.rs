//! A run's directory (local or at a URI) and the recorder that writes rank 0's reports into it:
//! the metrics log (`result.json` lines and `progress.csv`), `checkpoint_NNNNNN` folders with
//! the fitted preprocessor in each, and retention by `num_to_keep` and the score attribute.

use std::{
    collections::BTreeSet,
    sync::Arc,
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use air_checkpoint::{Checkpoint, storage};
use air_data::{Dataset, Preprocessor, polars::prelude::DataFrame, save_preprocessor};
use serde_json::{Map, Value};

use crate::{
    CheckpointConfig, Mode, TrainError, Verbosity,
    callback::{Callback, Callbacks, CsvLoggerCallback, JsonLoggerCallback, TrialContext},
    error::Result,
    predictor::TRAIN_COLUMNS_KEY,
    progress::Progress,
    run_dir::RunDir,
};

/// Reported metrics: a JSON object.
pub type Metrics = Map<String, Value>;

/// A checkpoint the run keeps, with the metrics reported alongside it.
#[derive(Debug, Clone)]
pub(crate) struct Kept {
    pub(crate) name: String,
    pub(crate) checkpoint: Checkpoint,
    pub(crate) metrics: Metrics,
    order: usize,
}

/// Writes rank 0's reports.
pub(crate) struct Recorder {
    storage: RunDir,
    checkpoint_config: CheckpointConfig,
    preprocessor: Option<Arc<dyn Preprocessor>>,
    train_columns: Option<Vec<String>>,
    stop: Vec<(String, f64)>,
    trial_id: Option<String>,
    verbose: Verbosity,
    on_report: Option<crate::trainer::ReportHook>,
    /// The result files: their failures fail the run.
    loggers: Vec<Arc<dyn Callback>>,
    /// The user's callbacks: their failures are warnings.
    callbacks: Callbacks,
    context: TrialContext,
    progress: Progress,
    rows: Vec<Metrics>,
    kept: Vec<Kept>,
    checkpoints_written: usize,
    iteration: u64,
    started: Instant,
    last: Instant,
    time_before: f64,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("path", &self.storage.path())
            .field("iteration", &self.iteration)
            .finish_non_exhaustive()
    }
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What the recorder decided after a report.
#[derive(Debug, Clone)]
pub(crate) enum Decision {
    Continue,
    Stop(String),
}

pub(crate) struct RecorderOptions {
    pub(crate) checkpoint_config: CheckpointConfig,
    pub(crate) preprocessor: Option<Arc<dyn Preprocessor>>,
    pub(crate) train_columns: Option<Vec<String>>,
    pub(crate) stop: Vec<(String, f64)>,
    pub(crate) trial_id: Option<String>,
    pub(crate) verbose: Verbosity,
    pub(crate) on_report: Option<crate::trainer::ReportHook>,
    pub(crate) result_files: bool,
    /// The tuner's batched result files, instead of the run's own.
    pub(crate) batched_files: Option<crate::ResultFiles>,
    pub(crate) callbacks: Callbacks,
    pub(crate) context: TrialContext,
    pub(crate) label: String,
}

impl Recorder {
    pub(crate) fn new(storage: RunDir, o: RecorderOptions) -> Result<Self> {
        let now = Instant::now();
        let mut loggers: Vec<Arc<dyn Callback>> = Vec::new();
        match (&o.batched_files, o.result_files) {
            (_, false) => {}
            (Some(files), true) => loggers = files.loggers(&o.context, &storage)?,
            (None, true) => {
                let json = JsonLoggerCallback::new();
                json.adopt(&o.context, storage.clone())?;
                let csv = CsvLoggerCallback::new();
                csv.adopt(&o.context, storage.clone())?;
                loggers.push(Arc::new(json));
                loggers.push(Arc::new(csv));
            }
        }
        Ok(Self {
            storage,
            checkpoint_config: o.checkpoint_config,
            preprocessor: o.preprocessor,
            train_columns: o.train_columns,
            stop: o.stop,
            trial_id: o.trial_id,
            progress: Progress::new(&o.label, o.verbose),
            verbose: o.verbose,
            on_report: o.on_report,
            loggers,
            callbacks: o.callbacks,
            context: o.context,
            rows: Vec::new(),
            kept: Vec::new(),
            checkpoints_written: 0,
            iteration: 0,
            started: now,
            last: now,
            time_before: 0.0,
        })
    }

    pub(crate) fn storage(&self) -> &RunDir {
        &self.storage
    }

    /// Continues the iteration count and clock of a resumed run.
    pub(crate) fn resume_from(&mut self, iteration: u64, time_total_s: f64) {
        self.iteration = iteration;
        self.time_before = time_total_s;
    }

    /// Continues a run whose directory already holds reports and checkpoints (a paused or
    /// crashed tuning trial): keeps the reports up to the resumed iteration, rewrites the
    /// metrics files from them, and numbers new checkpoints after the existing ones.
    pub(crate) fn continue_run(&mut self) -> Result<()> {
        let iteration = self.iteration;
        if let Some(bytes) = self.storage.read("result.json")? {
            self.rows = String::from_utf8_lossy(&bytes)
                .lines()
                .filter_map(|l| serde_json::from_str::<Metrics>(l).ok())
                .filter(|m| {
                    m.get("training_iteration")
                        .and_then(Value::as_u64)
                        .is_some_and(|i| i <= iteration)
                })
                .collect();
        }
        self.checkpoints_written = self
            .storage
            .checkpoint_names()?
            .iter()
            .filter_map(|n| n.strip_prefix("checkpoint_")?.parse::<usize>().ok())
            .map(|i| i + 1)
            .max()
            .unwrap_or(0);
        self.start()
    }

    /// Tells the loggers and callbacks that the run starts (or resumes with the reports kept).
    pub(crate) fn start(&mut self) -> Result<()> {
        for l in &self.loggers {
            l.on_trial_start(&self.context, &self.rows)
                .map_err(|e| logger_error(l.as_ref(), e))?;
        }
        let (context, rows) = (&self.context, &self.rows);
        self.callbacks
            .notify("on_trial_start", |c| c.on_trial_start(context, rows));
        Ok(())
    }

    /// The newest checkpoint written, to restart from.
    pub(crate) fn latest_checkpoint(&self) -> Option<&Kept> {
        self.kept.iter().max_by_key(|k| k.order)
    }

    pub(crate) fn time_total_s(&self) -> f64 {
        self.time_before + self.started.elapsed().as_secs_f64()
    }

    /// Records one report of rank 0.
    pub(crate) fn record(
        &mut self,
        mut metrics: Metrics,
        checkpoint: Option<Checkpoint>,
    ) -> Result<Decision> {
        let now = Instant::now();
        self.iteration += 1;
        let total = self.time_total_s();
        metrics.insert("training_iteration".into(), self.iteration.into());
        metrics.insert(
            "time_this_iter_s".into(),
            (now - self.last).as_secs_f64().into(),
        );
        metrics.insert("time_total_s".into(), total.into());
        metrics.insert("timestamp".into(), now_unix().into());
        if let Some(id) = &self.trial_id {
            metrics.insert("trial_id".into(), id.clone().into());
        }
        self.last = now;
        if let Some(mut checkpoint) = checkpoint {
            if let Some(p) = &self.preprocessor {
                save_preprocessor(p.as_ref(), &mut checkpoint)?;
            }
            // The raw input schema: with it, a predictor behind a preprocessor knows which
            // columns a request must have (see `Predictor::input_columns`).
            if let Some(columns) = &self.train_columns
                && !checkpoint.metadata().contains_key(TRAIN_COLUMNS_KEY)
            {
                checkpoint.set_metadata_value(TRAIN_COLUMNS_KEY, columns)?;
            }
            checkpoint.set_metadata_value("training_iteration", &self.iteration)?;
            checkpoint.set_metadata_value("time_total_s", &total)?;
            let name = format!("checkpoint_{:06}", self.checkpoints_written);
            let saved = self.storage.save_checkpoint(&name, &checkpoint)?;
            metrics.insert("checkpoint_dir_name".into(), name.clone().into());
            let location = self.storage.child(&name);
            let (context, shown) = (&self.context, &metrics);
            self.callbacks.notify("on_checkpoint", |c| {
                c.on_checkpoint(context, &name, &location, shown)
            });
            self.kept.push(Kept {
                name,
                checkpoint: saved,
                metrics: metrics.clone(),
                order: self.checkpoints_written,
            });
            self.checkpoints_written += 1;
            self.retain()?;
        }
        for l in &self.loggers {
            l.on_trial_result(&self.context, &metrics)
                .map_err(|e| logger_error(l.as_ref(), e))?;
        }
        let (context, shown) = (&self.context, &metrics);
        self.callbacks
            .notify("on_trial_result", |c| c.on_trial_result(context, shown));
        if self.verbose == Verbosity::Detailed {
            let shown = Value::Object(metrics.clone()).to_string();
            tracing::info!(iteration = self.iteration, metrics = %shown, "report");
        }
        self.progress.update(self.iteration, &metrics);
        self.rows.push(metrics.clone());
        for (metric, threshold) in &self.stop {
            if let Some(value) = metrics.get(metric).and_then(Value::as_f64)
                && value >= *threshold
            {
                return Ok(Decision::Stop(format!(
                    "stop condition {metric} >= {threshold} met (reported {value})"
                )));
            }
        }
        if let Some(hook) = &self.on_report
            && !hook(&metrics)
        {
            return Ok(Decision::Stop(
                "the tuner's scheduler ended the trial".to_owned(),
            ));
        }
        Ok(Decision::Continue)
    }

    fn score(&self, k: &Kept) -> Option<f64> {
        let (attr, order) = self.checkpoint_config.score()?;
        let v = k.metrics.get(attr).and_then(Value::as_f64)?;
        Some(match order {
            Mode::Max => v,
            Mode::Min => -v,
        })
    }

    /// The kept checkpoints, best first (by score, else by recency; unscored ones last).
    pub(crate) fn ranked(&self) -> Vec<Kept> {
        let mut ranked = self.kept.clone();
        if self.checkpoint_config.score().is_some() {
            ranked.sort_by(|a, b| match (self.score(a), self.score(b)) {
                (Some(x), Some(y)) => y.total_cmp(&x).then(b.order.cmp(&a.order)),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => b.order.cmp(&a.order),
            });
        } else {
            ranked.sort_by_key(|k| std::cmp::Reverse(k.order));
        }
        ranked
    }

    fn retain(&mut self) -> Result<()> {
        let Some(n) = self.checkpoint_config.num_to_keep() else {
            return Ok(());
        };
        let latest = self.latest_checkpoint().map(|k| k.name.clone());
        let keep: BTreeSet<String> = self
            .ranked()
            .into_iter()
            .take(n.get())
            .map(|k| k.name)
            .chain(latest)
            .collect();
        let (kept, dropped): (Vec<Kept>, Vec<Kept>) =
            self.kept.drain(..).partition(|k| keep.contains(&k.name));
        self.kept = kept;
        for k in dropped {
            tracing::debug!(checkpoint = %k.name, "deleting checkpoint beyond num_to_keep");
            self.storage.delete_checkpoint(&k.name)?;
        }
        Ok(())
    }

    /// Every report so far, taken (the run is over).
    pub(crate) fn take_history(&mut self) -> Vec<Metrics> {
        std::mem::take(&mut self.rows)
    }

    pub(crate) fn last_metrics(&self) -> Option<&Metrics> {
        self.rows.last()
    }

    /// Writes the rows the result files still lack and closes them (the run is over): a
    /// failure is the run's.
    pub(crate) fn close_files(&self, error: Option<&TrainError>) -> Result<()> {
        crate::callback::first_failure(self.loggers.iter().map(|l| {
            match error {
                Some(e) => l.on_trial_error(&self.context, &e.to_string()),
                None => l.on_trial_complete(&self.context, self.rows.last()),
            }
            .map_err(|e| logger_error(l.as_ref(), e))
        }))
    }

    /// Ends the run: the progress bar, then the callbacks' last events.
    pub(crate) fn finish(&self, error: Option<&TrainError>) {
        self.progress.finish();
        let context = &self.context;
        match error {
            Some(e) => {
                let text = e.to_string();
                self.callbacks
                    .notify("on_trial_error", |c| c.on_trial_error(context, &text));
            }
            None => {
                let last = self.rows.last();
                self.callbacks
                    .notify("on_trial_complete", |c| c.on_trial_complete(context, last));
            }
        }
        let experiment = &context.experiment_path;
        self.callbacks
            .notify("on_experiment_end", |c| c.on_experiment_end(experiment));
    }
}

/// A result file that could not be written: the run fails with the logger's error.
fn logger_error(logger: &dyn Callback, e: crate::BoxError) -> TrainError {
    match e.downcast::<TrainError>() {
        Ok(e) => *e,
        Err(e) => TrainError::storage(logger.name(), e),
    }
}

/// A default run name: `{trainer}_{YYYY-MM-DD_HH-MM-SS}` in UTC, plus a counter on clashes.
pub fn default_run_name(trainer: &str, storage_path: &str) -> String {
    let secs = now_unix();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    let base = format!(
        "{trainer}_{y:04}-{m:02}-{d:02}_{:02}-{:02}-{:02}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    );
    let Some(root) = storage::local_path(storage_path) else {
        return base;
    };
    let mut name = base.clone();
    let mut i = 1;
    while root.join(&name).exists() {
        name = format!("{base}_{i}");
        i += 1;
    }
    name
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Reports as a polars frame: one row per report, one column per key (nested values as their
/// JSON text).
pub(crate) fn metrics_frame(rows: &[Metrics]) -> Result<DataFrame> {
    if rows.is_empty() {
        return Ok(DataFrame::empty());
    }
    let flat: Vec<Value> = rows
        .iter()
        .map(|m| {
            Value::Object(
                m.iter()
                    .map(|(k, v)| {
                        let v = match v {
                            Value::Object(_) | Value::Array(_) => Value::String(v.to_string()),
                            other => other.clone(),
                        };
                        (k.clone(), v)
                    })
                    .collect(),
            )
        })
        .collect();
    Ok(Dataset::from_items(&flat)?.to_polars()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_413), (2025, 11, 21));
    }
}
