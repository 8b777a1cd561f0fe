//! [`BatchPredictor`]: a checkpoint's predictor over a whole [`Dataset`], streamed.
//!
//! Three stages joined by bounded channels: a reader cuts the dataset into batches, a
//! preprocessing stage runs the predictor's [`preprocess`](Predictor::preprocess) half (and picks
//! the feature and kept columns), and scoring workers run the model half. A fixed number of
//! tickets bounds the batches alive at once — read, queued, scored or waiting to be put back in
//! order — so memory does not grow with the input, however large.

use std::{
    collections::BTreeMap,
    fmt,
    num::NonZeroUsize,
    panic::{AssertUnwindSafe, catch_unwind},
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicUsize, Ordering},
        mpsc::{Receiver, RecvError, SyncSender, TrySendError, sync_channel},
    },
    thread::JoinHandle,
};

use air_checkpoint::Checkpoint;
use air_data::{Dataset, polars::prelude::*};
use air_train::{ComputeDevice, Predictor, TrainError};
use serde::{Deserialize, Serialize};

use crate::{
    error::{Result, ServeError, invalid, polars_error},
    factory::PredictorFactory,
    panic_message,
};

/// How [`BatchPredictor::predict`] cuts the data and how many workers score it.
///
/// ```
/// use air_serve::PredictOptions;
///
/// let options = PredictOptions::new()
///     .with_batch_size(std::num::NonZeroUsize::new(1024).unwrap())
///     .with_scoring_workers(std::num::NonZeroUsize::new(1).unwrap(), std::num::NonZeroUsize::new(2).unwrap())
///     .with_keep_columns(["id"]);
/// assert_eq!(options.batch_size(), 1024);
/// # Ok::<(), air_serve::ServeError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PredictOptions {
    batch_size: usize,
    min_scoring_workers: usize,
    max_scoring_workers: usize,
    num_gpus_per_worker: usize,
    preprocess_workers: usize,
    feature_columns: Option<Vec<String>>,
    keep_columns: Vec<String>,
}

impl Default for PredictOptions {
    /// Batches of 16,384 rows (Ray's 4,096 leaves a fifth of a CPU model's speed in per-batch
    /// overhead; measured by `benches/programs/batch_predict_bench.rs`), one scoring worker that may
    /// grow to one per core when preprocessing outruns it, one preprocessing worker, no GPU.
    fn default() -> Self {
        Self {
            batch_size: 16_384,
            min_scoring_workers: 1,
            max_scoring_workers: std::thread::available_parallelism().map_or(1, usize::from),
            num_gpus_per_worker: 0,
            preprocess_workers: 1,
            feature_columns: None,
            keep_columns: Vec::new(),
        }
    }
}

impl PredictOptions {
    /// The defaults (see [`Default`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// Rows per batch handed to the model.
    pub fn with_batch_size(mut self, batch_size: NonZeroUsize) -> Self {
        self.batch_size = batch_size.get();
        self
    }

    /// Scoring workers: `min` start, more are added (up to `max`, at least `min`) while the
    /// preprocessed queue is full — Ray's autoscaling actor pool, with threads.
    pub fn with_scoring_workers(mut self, min: NonZeroUsize, max: NonZeroUsize) -> Self {
        self.min_scoring_workers = min.get();
        self.max_scoring_workers = max.get();
        self
    }

    /// GPUs per scoring worker: worker *i* gets CUDA device `i × n` (needs the `cuda` feature
    /// and a device-aware factory, see [`on_device`](crate::on_device)). 0: CPU.
    pub fn with_num_gpus_per_worker(mut self, n: usize) -> Self {
        self.num_gpus_per_worker = n;
        self
    }

    /// Threads of the preprocessing stage.
    pub fn with_preprocess_workers(mut self, n: NonZeroUsize) -> Self {
        self.preprocess_workers = n.get();
        self
    }

    /// Checks the whole set once (also options read from a file): counts of at least 1,
    /// `min_scoring_workers <= max_scoring_workers`. Prediction calls it before reading.
    pub fn validate(&self) -> Result<()> {
        for (field, n) in [
            ("batch_size", self.batch_size),
            ("min_scoring_workers", self.min_scoring_workers),
            ("preprocess_workers", self.preprocess_workers),
        ] {
            if n == 0 {
                return Err(invalid(field, 0, "at least 1"));
            }
        }
        if self.max_scoring_workers < self.min_scoring_workers {
            return Err(invalid(
                "scoring workers",
                format!(
                    "min {}, max {}",
                    self.min_scoring_workers, self.max_scoring_workers
                ),
                "1 <= min_scoring_workers <= max_scoring_workers",
            ));
        }
        Ok(())
    }

    /// The input columns handed to the predictor (default: all).
    pub fn with_feature_columns<S: AsRef<str>>(
        mut self,
        columns: impl IntoIterator<Item = S>,
    ) -> Self {
        self.feature_columns = Some(columns.into_iter().map(|c| c.as_ref().to_owned()).collect());
        self
    }

    /// Input columns copied next to the predictions (an id, the label).
    pub fn with_keep_columns<S: AsRef<str>>(
        mut self,
        columns: impl IntoIterator<Item = S>,
    ) -> Self {
        self.keep_columns = columns.into_iter().map(|c| c.as_ref().to_owned()).collect();
        self
    }

    /// Rows per batch.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    fn device(&self, worker: usize) -> ComputeDevice {
        if self.num_gpus_per_worker == 0 {
            ComputeDevice::Cpu
        } else {
            ComputeDevice::Cuda {
                index: worker * self.num_gpus_per_worker,
            }
        }
    }
}

/// Predicts a whole dataset with a checkpoint's model (Ray's `BatchPredictor`).
///
/// ```
/// use air_checkpoint::Checkpoint;
/// use air_data::{Dataset, polars::prelude::*};
/// use air_serve::{BatchPredictor, PredictOptions};
/// use air_train::Predictor;
///
/// /// Doubles column `x`.
/// #[derive(Debug)]
/// struct Double;
/// impl Predictor for Double {
///     fn predict(&self, batch: DataFrame) -> air_train::Result<DataFrame> {
///         let x = batch.column("x").unwrap().as_materialized_series() * 2;
///         Ok(DataFrame::new(batch.height(), vec![x.with_name("predictions".into()).into()]).unwrap())
///     }
/// }
///
/// let bp = BatchPredictor::from_checkpoint(Checkpoint::new(), |_: &Checkpoint| Ok(Double));
/// let ds = Dataset::from_polars(df!("id" => [1, 2, 3], "x" => [1.0, 2.0, 3.0])?);
/// let out = bp.predict(&ds, &PredictOptions::new().with_batch_size(std::num::NonZeroUsize::new(2).unwrap()).with_keep_columns(["id"]))?;
/// let out = out.to_polars()?;
/// assert_eq!(out.get_column_names(), ["predictions", "id"]);
/// assert_eq!(out.column("predictions")?.f64()?.get(2), Some(6.0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct BatchPredictor {
    checkpoint: Checkpoint,
    factory: Arc<dyn PredictorFactory>,
}

impl fmt::Debug for BatchPredictor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchPredictor")
            .field("checkpoint", &self.checkpoint)
            .finish_non_exhaustive()
    }
}

/// One batch in the pipeline, numbered in input order.
type Numbered<T> = (usize, Result<T>);

impl BatchPredictor {
    /// A batch predictor whose workers build their predictor with `factory` from `checkpoint`
    /// (for example `GbdtPredictor::from_checkpoint`).
    pub fn from_checkpoint(checkpoint: Checkpoint, factory: impl PredictorFactory) -> Self {
        Self {
            checkpoint,
            factory: Arc::new(factory),
        }
    }

    /// The checkpoint predicted with.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// Predicts every row of `dataset`: a dataset of `predictions` (plus the kept columns), in
    /// input order. The input is streamed; only the output is held in memory — use
    /// [`predict_batches`](Self::predict_batches) to write it out as it comes instead.
    pub fn predict(&self, dataset: &Dataset, options: &PredictOptions) -> Result<Dataset> {
        let mut out: Option<DataFrame> = None;
        for batch in self.predict_batches(dataset, options)? {
            let batch = batch?;
            match &mut out {
                None => out = Some(batch),
                Some(df) => {
                    df.vstack_mut_owned(batch)
                        .map_err(|e| polars_error("joining prediction batches", e))?;
                }
            }
        }
        let mut df = out.unwrap_or_default();
        df.rechunk_mut_par();
        Ok(Dataset::from_polars(df))
    }

    /// Predicts `dataset` as a stream of output batches in input order; at most a few batches
    /// are alive at any time. Dropping the stream stops the work.
    pub fn predict_batches(
        &self,
        dataset: &Dataset,
        options: &PredictOptions,
    ) -> Result<PredictionStream> {
        options.validate()?;
        let first = self.build(options, 0)?;
        let max_workers = options.max_scoring_workers;
        // Enough tickets to keep every stage busy with one batch in each queue slot.
        let tickets = 2 * (max_workers + options.preprocess_workers) + 2;
        let (ticket_tx, ticket_rx) = sync_channel::<()>(tickets);
        for _ in 0..tickets {
            ticket_tx.send(()).expect("the receiver is alive");
        }
        let (raw_tx, raw_rx) = sync_channel::<Numbered<DataFrame>>(options.preprocess_workers);
        let (ready_tx, ready_rx) = sync_channel::<Numbered<Ready>>(max_workers);
        let (out_tx, out_rx) = sync_channel::<Numbered<DataFrame>>(tickets);
        let mut threads = Vec::new();

        let reader = {
            let dataset = dataset.clone();
            let batch_size = options.batch_size;
            let out_tx = out_tx.clone();
            std::thread::Builder::new()
                .name("air-batch-read".into())
                .spawn(move || read_stage(&dataset, batch_size, &ticket_rx, &raw_tx, &out_tx))
        };
        threads.push(reader.map_err(spawn_error)?);

        let raw_rx = Arc::new(Mutex::new(raw_rx));
        let ready_rx = Arc::new(Mutex::new(ready_rx));
        let pool = Arc::new(ScoringPool {
            factory: Arc::clone(&self.factory),
            checkpoint: self.checkpoint.clone(),
            options: options.clone(),
            input: Arc::downgrade(&ready_rx),
            output: out_tx.clone(),
            started: Arc::new(AtomicUsize::new(0)),
            threads: Arc::new(Mutex::new(Vec::new())),
        });
        let scorers = Arc::clone(&pool.threads);
        let started = Arc::clone(&pool.started);
        for _ in 0..options.preprocess_workers {
            let stage = PreprocessStage {
                predictor: Arc::clone(&first),
                options: options.clone(),
                input: Arc::clone(&raw_rx),
                output: ready_tx.clone(),
                errors: out_tx.clone(),
                pool: Arc::clone(&pool),
            };
            let t = std::thread::Builder::new()
                .name("air-batch-preprocess".into())
                .spawn(move || stage.run())
                .map_err(spawn_error)?;
            threads.push(t);
        }
        drop(ready_tx);
        pool.start(Some(first))?;
        for _ in 1..options.min_scoring_workers {
            pool.start(None)?;
        }
        drop(ready_rx);
        // From here only the stages hold the pool (and its output sender), so the output closes
        // once the last scoring worker and the last preprocessing thread are done.
        drop(pool);
        drop(out_tx);
        Ok(PredictionStream {
            output: Some(out_rx),
            tickets: Some(ticket_tx),
            pending: BTreeMap::new(),
            next: 0,
            done: false,
            threads,
            scorers,
            started,
        })
    }

    fn build(&self, options: &PredictOptions, worker: usize) -> Result<Arc<dyn Predictor>> {
        build_predictor(&*self.factory, &self.checkpoint, options.device(worker))
    }
}

fn build_predictor(
    factory: &dyn PredictorFactory,
    checkpoint: &Checkpoint,
    device: ComputeDevice,
) -> Result<Arc<dyn Predictor>> {
    device.check_available()?;
    Ok(factory.build(checkpoint, device)?)
}

fn spawn_error(e: std::io::Error) -> ServeError {
    ServeError::Predict(TrainError::model("starting a batch prediction thread", e))
}

/// Reads batches while tickets last; an error goes straight to the output.
fn read_stage(
    dataset: &Dataset,
    batch_size: usize,
    tickets: &Receiver<()>,
    raw: &SyncSender<Numbered<DataFrame>>,
    out: &SyncSender<Numbered<DataFrame>>,
) {
    let batches = match dataset.iter_batches(batch_size) {
        Ok(b) => b,
        Err(e) => {
            let _ = out.send((0, Err(ServeError::Predict(e.into()))));
            return;
        }
    };
    let mut batches = batches.enumerate();
    loop {
        // The ticket first: a batch is read only when there is room for it.
        if tickets.recv().is_err() {
            return;
        }
        let Some((i, batch)) = batches.next() else {
            return;
        };
        let failed = batch.is_err();
        let sent = match batch {
            Ok(b) => raw.send((i, Ok(b))).is_ok(),
            Err(e) => out.send((i, Err(ServeError::Predict(e.into())))).is_ok(),
        };
        if !sent || failed {
            return;
        }
    }
}

/// A preprocessed batch and the input columns kept beside its predictions.
struct Ready {
    batch: DataFrame,
    keep: Option<DataFrame>,
}

struct PreprocessStage {
    predictor: Arc<dyn Predictor>,
    options: PredictOptions,
    input: Arc<Mutex<Receiver<Numbered<DataFrame>>>>,
    output: SyncSender<Numbered<Ready>>,
    errors: SyncSender<Numbered<DataFrame>>,
    pool: Arc<ScoringPool>,
}

impl PreprocessStage {
    fn run(self) {
        loop {
            let next = self.input.lock().expect("no panics under this lock").recv();
            let Ok((i, raw)) = next else { return };
            let ready = raw.and_then(|raw| self.prepare(raw));
            let ready = match ready {
                Ok(r) => r,
                Err(e) => {
                    let _ = self.errors.send((i, Err(e)));
                    return;
                }
            };
            // A full queue means the scorers are the bottleneck: add one if allowed.
            match self.output.try_send((i, Ok(ready))) {
                Ok(()) => {}
                Err(TrySendError::Full(item)) => {
                    if let Err(e) = self.pool.grow() {
                        let _ = self.errors.send((i, Err(e)));
                        return;
                    }
                    if self.output.send(item).is_err() {
                        return;
                    }
                }
                Err(TrySendError::Disconnected(_)) => return,
            }
        }
    }

    fn prepare(&self, raw: DataFrame) -> Result<Ready> {
        let keep = if self.options.keep_columns.is_empty() {
            None
        } else {
            Some(select(&raw, &self.options.keep_columns, "keep_columns")?)
        };
        let input = match &self.options.feature_columns {
            Some(cols) => select(&raw, cols, "feature_columns")?,
            None => raw,
        };
        let predictor = &self.predictor;
        let batch = catch_unwind(AssertUnwindSafe(|| predictor.preprocess(input)))
            .map_err(|p| panicked("preprocessing", &*p))??;
        Ok(Ready { batch, keep })
    }
}

fn panicked(stage: &str, payload: &(dyn std::any::Any + Send)) -> ServeError {
    ServeError::Predict(TrainError::model(
        format!("batch prediction ({stage})"),
        format!("the predictor panicked: {}", panic_message(payload)),
    ))
}

fn select(df: &DataFrame, columns: &[String], option: &str) -> Result<DataFrame> {
    df.select(columns.iter().map(String::as_str)).map_err(|_| {
        let missing: Vec<&str> = columns
            .iter()
            .filter(|c| df.column(c).is_err())
            .map(String::as_str)
            .collect();
        ServeError::Predict(TrainError::Data(air_data::DataError::ColumnNotFound {
            column: missing.join(", "),
            context: format!("BatchPredictor {option}"),
            available: df
                .get_column_names()
                .iter()
                .map(|c| c.to_string())
                .collect(),
        }))
    })
}

/// The scoring workers; grows from `min_scoring_workers` towards `max_scoring_workers`.
struct ScoringPool {
    factory: Arc<dyn PredictorFactory>,
    checkpoint: Checkpoint,
    options: PredictOptions,
    /// Weak: the scorers own the queue's receiving end, so that once they are all gone the
    /// preprocessing stage's sends fail instead of blocking for ever.
    input: Weak<Mutex<Receiver<Numbered<Ready>>>>,
    output: SyncSender<Numbered<DataFrame>>,
    started: Arc<AtomicUsize>,
    threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl ScoringPool {
    /// Adds a worker unless at the maximum.
    fn grow(&self) -> Result<()> {
        if self.started.load(Ordering::Acquire) < self.options.max_scoring_workers {
            self.start(None)?;
        }
        Ok(())
    }

    /// Starts worker number `started` with `predictor`, or one built for its device.
    fn start(&self, predictor: Option<Arc<dyn Predictor>>) -> Result<()> {
        let worker = self.started.fetch_add(1, Ordering::AcqRel);
        if worker >= self.options.max_scoring_workers {
            self.started.fetch_sub(1, Ordering::AcqRel);
            return Ok(());
        }
        let Some(input) = self.input.upgrade() else {
            // Every scorer has stopped (an error ended the stream): nothing left to feed.
            return Ok(());
        };
        let predictor = match predictor {
            Some(p) => p,
            None => build_predictor(
                &*self.factory,
                &self.checkpoint,
                self.options.device(worker),
            )?,
        };
        tracing::debug!(worker, "batch prediction: scoring worker started");
        let output = self.output.clone();
        let t = std::thread::Builder::new()
            .name(format!("air-batch-score-{worker}"))
            .spawn(move || score_stage(&*predictor, &input, &output))
            .map_err(spawn_error)?;
        self.threads
            .lock()
            .expect("no panics under this lock")
            .push(t);
        Ok(())
    }
}

fn score_stage(
    predictor: &dyn Predictor,
    input: &Mutex<Receiver<Numbered<Ready>>>,
    output: &SyncSender<Numbered<DataFrame>>,
) {
    loop {
        let next = input.lock().expect("no panics under this lock").recv();
        let Ok((i, ready)) = next else { return };
        let scored = ready.and_then(|r| score(predictor, r));
        let failed = scored.is_err();
        if output.send((i, scored)).is_err() || failed {
            return;
        }
    }
}

fn score(predictor: &dyn Predictor, ready: Ready) -> Result<DataFrame> {
    let rows = ready.batch.height();
    let mut out = catch_unwind(AssertUnwindSafe(|| {
        predictor.predict_preprocessed(ready.batch)
    }))
    .map_err(|p| panicked("scoring", &*p))??;
    if out.height() != rows {
        return Err(ServeError::Predict(TrainError::model(
            "batch prediction",
            format!("the predictor returned {} rows for {rows}", out.height()),
        )));
    }
    if let Some(keep) = ready.keep {
        out.hstack_mut(keep.columns())
            .map_err(|e| polars_error("adding kept columns to prediction batches", e))?;
    }
    Ok(out)
}

/// The output batches of [`BatchPredictor::predict_batches`], in input order.
pub struct PredictionStream {
    output: Option<Receiver<Numbered<DataFrame>>>,
    tickets: Option<SyncSender<()>>,
    pending: BTreeMap<usize, Result<DataFrame>>,
    next: usize,
    done: bool,
    threads: Vec<JoinHandle<()>>,
    scorers: Arc<Mutex<Vec<JoinHandle<()>>>>,
    started: Arc<AtomicUsize>,
}

impl fmt::Debug for PredictionStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PredictionStream")
            .field("next", &self.next)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl PredictionStream {
    /// Scoring workers started so far.
    pub fn scoring_workers(&self) -> usize {
        self.started.load(Ordering::Acquire)
    }
}

impl Iterator for PredictionStream {
    type Item = Result<DataFrame>;

    fn next(&mut self) -> Option<Result<DataFrame>> {
        if self.done {
            return None;
        }
        let output = self.output.as_ref()?;
        loop {
            // An error ends the stream whatever its place: later batches are not waited for.
            if let Some(i) = self
                .pending
                .iter()
                .find_map(|(i, r)| r.is_err().then_some(*i))
            {
                self.done = true;
                return self.pending.remove(&i);
            }
            if let Some(batch) = self.pending.remove(&self.next) {
                self.next += 1;
                if let Some(t) = &self.tickets {
                    let _ = t.send(());
                }
                return Some(batch);
            }
            match output.recv() {
                Ok((i, batch)) => {
                    self.pending.insert(i, batch);
                }
                Err(RecvError) => {
                    self.done = true;
                    return None;
                }
            }
        }
    }
}

impl Drop for PredictionStream {
    fn drop(&mut self) {
        // Closing both ends lets every stage see a disconnected channel and return.
        self.output = None;
        self.tickets = None;
        self.pending.clear();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        // The preprocessing threads are joined, so no scorer is started any more.
        let scorers = std::mem::take(&mut *self.scorers.lock().expect("no panics"));
        for t in scorers {
            let _ = t.join();
        }
    }
}
