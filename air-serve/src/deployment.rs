//! [`PredictorDeployment`]: replicas of a checkpoint's predictor behind a batching queue, and the
//! in-process [`DeploymentHandle`] that calls them.

use std::{
    fmt,
    num::NonZeroUsize,
    panic::{AssertUnwindSafe, catch_unwind},
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use air_checkpoint::Checkpoint;
use air_data::{Matrix, polars::prelude::*};
use air_train::{ComputeDevice, MatrixPredictions, MatrixPredictor, Predictor};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::{
    adapter::{Adapter, JsonAdapter, RequestError, check_columns},
    error::{Result, ServeError, invalid, polars_error},
    factory::PredictorFactory,
    matrix::{MatrixLayout, extend_f32, predictions_json},
    metrics::Metrics,
    panic_message,
    queue::{BatchQueue, Queued},
    replicas::{INLINE_COST, Replicas},
};

/// How a deployment is served: replicas, batching, limits, route.
///
/// ```
/// use std::{num::NonZeroUsize, time::Duration};
/// use air_serve::DeploymentConfig;
///
/// let config = DeploymentConfig::new("gbdt")
///     .with_num_replicas(NonZeroUsize::new(2).unwrap())
///     .with_batching(NonZeroUsize::new(32).unwrap(), Duration::from_millis(2))
///     .with_max_concurrent_queries(NonZeroUsize::new(64).unwrap());
/// assert_eq!(config.route_prefix(), "/gbdt");
/// # Ok::<(), air_serve::ServeError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentConfig {
    name: String,
    route_prefix: String,
    num_replicas: usize,
    max_batch_size: usize,
    batch_wait_timeout: Duration,
    max_concurrent_queries: usize,
    request_timeout: Option<Duration>,
    max_request_bytes: usize,
    input_columns: Option<Vec<String>>,
    num_gpus_per_replica: usize,
    #[serde(default = "default_run_on_caller_below")]
    run_on_caller_below: Option<Duration>,
}

fn default_run_on_caller_below() -> Option<Duration> {
    Some(INLINE_COST)
}

impl DeploymentConfig {
    /// A deployment called `name` (letters, digits, `-`, `_`), served at `/{name}` by one
    /// replica; requests that arrive while a replica is busy are merged (up to 16, no waiting);
    /// 100 queries in flight per replica; 60 s timeout; 10 MiB bodies. The setters only set;
    /// [`validate`](Self::validate) checks the whole config once, when it is deployed.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            route_prefix: format!("/{name}"),
            num_replicas: 1,
            max_batch_size: 16,
            batch_wait_timeout: Duration::ZERO,
            max_concurrent_queries: 100,
            request_timeout: Some(Duration::from_secs(60)),
            max_request_bytes: 10 << 20,
            input_columns: None,
            num_gpus_per_replica: 0,
            run_on_caller_below: default_run_on_caller_below(),
        }
    }

    /// The HTTP path the deployment answers `POST` on (`"/"` for the root).
    pub fn with_route_prefix(mut self, prefix: &str) -> Self {
        self.route_prefix = prefix.to_owned();
        self
    }

    /// Model instances, each on its own thread.
    pub fn with_num_replicas(mut self, n: NonZeroUsize) -> Self {
        self.num_replicas = n.get();
        self
    }

    /// Dynamic batching: a replica takes up to `max_batch_size` queued requests as one
    /// predictor call, waiting at most `wait` after the first for more to arrive (Ray's
    /// `@serve.batch`). `max_batch_size = 1` turns batching off.
    pub fn with_batching(mut self, max_batch_size: NonZeroUsize, wait: Duration) -> Self {
        self.max_batch_size = max_batch_size.get();
        self.batch_wait_timeout = wait;
        self
    }

    /// Queries in flight per replica; beyond `num_replicas ×` this, requests are answered 503
    /// at once instead of queueing without bound.
    pub fn with_max_concurrent_queries(mut self, n: NonZeroUsize) -> Self {
        self.max_concurrent_queries = n.get();
        self
    }

    /// Time from a request's arrival (over HTTP: once its body is in; the body has the
    /// server's `body_timeout`) to its answer, after which it is answered 408 (None: no limit).
    /// A batch already running is not interrupted.
    pub fn with_request_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Largest accepted body; larger ones are answered 413.
    pub fn with_max_request_bytes(mut self, bytes: NonZeroUsize) -> Self {
        self.max_request_bytes = bytes.get();
        self
    }

    /// The exact input columns; a request with other columns is answered 422 naming them.
    /// Default: the predictor's [`input_columns`](Predictor::input_columns) when it knows them.
    pub fn with_input_columns<S: AsRef<str>>(
        mut self,
        columns: impl IntoIterator<Item = S>,
    ) -> Self {
        self.input_columns = Some(columns.into_iter().map(|c| c.as_ref().to_owned()).collect());
        self
    }

    /// GPUs per replica: replica *i* gets CUDA device `i × n` (a device-aware factory is needed,
    /// see [`on_device`](crate::on_device)). 0: CPU.
    pub fn with_num_gpus_per_replica(mut self, n: usize) -> Self {
        self.num_gpus_per_replica = n;
        self
    }

    /// Requests of a model whose running average per request is under `limit` run on the
    /// caller's thread (the server's HTTP worker, or an in-process caller) when a replica is
    /// free and nothing is queued, instead of being handed to the replica's thread and back:
    /// two thread wake-ups saved per request. Default 100 µs, short enough not to hold an async
    /// worker; `None` (or zero): always on a replica's thread. GPU replicas always predict on
    /// their own threads.
    pub fn with_run_on_caller_below(mut self, limit: Option<Duration>) -> Self {
        self.run_on_caller_below = limit;
        self
    }

    /// Checks the whole config (also one read from a file): the name, the route prefix, counts
    /// of at least 1, a timeout above zero, distinct input columns. Deploying calls it.
    pub fn validate(&self) -> Result<()> {
        validate_name(&self.name)?;
        validate_route_prefix(&self.route_prefix)?;
        for (field, n) in [
            ("num_replicas", self.num_replicas),
            ("max_batch_size", self.max_batch_size),
            ("max_concurrent_queries", self.max_concurrent_queries),
            ("max_request_bytes", self.max_request_bytes),
        ] {
            if n == 0 {
                return Err(invalid(field, 0, "at least 1"));
            }
        }
        if self.request_timeout == Some(Duration::ZERO) {
            return Err(invalid(
                "request_timeout",
                "0 s",
                "a duration above zero, or none for no limit",
            ));
        }
        if let Some(cols) = &self.input_columns {
            let mut seen = std::collections::BTreeSet::new();
            if let Some(dup) = cols.iter().find(|c| !seen.insert(c.as_str())) {
                return Err(invalid(
                    "input_columns",
                    format!("{dup:?} twice"),
                    "distinct column names",
                ));
            }
        }
        Ok(())
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The route prefix.
    pub fn route_prefix(&self) -> &str {
        &self.route_prefix
    }

    /// The replicas.
    pub fn num_replicas(&self) -> usize {
        self.num_replicas
    }

    /// Requests in flight before 503s.
    pub fn max_in_flight(&self) -> usize {
        self.num_replicas * self.max_concurrent_queries
    }

    /// Largest accepted body.
    pub fn max_request_bytes(&self) -> usize {
        self.max_request_bytes
    }

    /// The request timeout.
    pub fn request_timeout(&self) -> Option<Duration> {
        self.request_timeout
    }

    fn device(&self, replica: usize) -> ComputeDevice {
        if self.num_gpus_per_replica == 0 {
            ComputeDevice::Cpu
        } else {
            ComputeDevice::Cuda {
                index: replica * self.num_gpus_per_replica,
            }
        }
    }
}

/// Checks a deployment's (or a pipeline's) name: letters, digits, `-` and `_`.
pub(crate) fn validate_name(name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        return Err(invalid(
            "deployment name",
            format!("{name:?}"),
            "a non-empty name of letters, digits, '-' and '_'",
        ));
    }
    Ok(())
}

/// Checks a route prefix: `/` or a path outside the server's own routes.
pub(crate) fn validate_route_prefix(prefix: &str) -> Result<()> {
    let ok = prefix.starts_with('/')
        && (prefix == "/" || !prefix.ends_with('/'))
        && !prefix.starts_with("/-/")
        && prefix != "/openapi.json"
        && !prefix.contains(['{', '}', '*', ' ']);
    if !ok {
        return Err(invalid(
            "route_prefix",
            format!("{prefix:?}"),
            "\"/\" or a path starting with '/', not ending with '/', without {}, * or \
             spaces, outside /-/ and /openapi.json",
        ));
    }
    Ok(())
}

/// A predictor served from a checkpoint (Ray's `PredictorDeployment`): give it to a
/// [`Server`](crate::Server), or [`start`](Self::start) it alone for in-process calls.
pub struct PredictorDeployment {
    config: DeploymentConfig,
    checkpoint: Checkpoint,
    factory: Arc<dyn PredictorFactory>,
    adapter: Arc<dyn Adapter>,
    /// Whether the adapter is the default [`JsonAdapter`], whose bodies the matrix path may
    /// parse instead.
    json_adapter: bool,
}

impl fmt::Debug for PredictorDeployment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PredictorDeployment")
            .field("config", &self.config)
            .field("checkpoint", &self.checkpoint)
            .finish_non_exhaustive()
    }
}

impl PredictorDeployment {
    /// Serves the predictor `factory` builds from `checkpoint` (for example
    /// `GbdtPredictor::from_checkpoint`) under `config`.
    pub fn new(
        config: DeploymentConfig,
        checkpoint: Checkpoint,
        factory: impl PredictorFactory,
    ) -> Self {
        Self {
            config,
            checkpoint,
            factory: Arc::new(factory),
            adapter: Arc::new(JsonAdapter),
            json_adapter: true,
        }
    }

    /// Replaces the request adapter (default [`JsonAdapter`]).
    pub fn with_adapter(mut self, adapter: impl Adapter) -> Self {
        self.adapter = Arc::new(adapter);
        self.json_adapter = false;
        self
    }

    /// The config.
    pub fn config(&self) -> &DeploymentConfig {
        &self.config
    }

    /// Builds the replicas' predictors and starts their threads; the handle calls them
    /// in-process (a [`Server`](crate::Server) does this for its deployments).
    pub fn start(self) -> Result<DeploymentHandle> {
        self.config.validate()?;
        let predictors = build_all(&self.config, &*self.factory, &self.checkpoint)?;
        let shared = Arc::new(Shared {
            generation: RwLock::new(Arc::new(Generation::new(
                predictors,
                self.checkpoint,
                &self.config,
                0,
            ))),
            queue: BatchQueue::new(Duration::ZERO),
            replicas: Replicas::new(
                self.config.num_replicas,
                self.config
                    .run_on_caller_below
                    .filter(|_| self.config.num_gpus_per_replica == 0),
            ),
            metrics: Metrics::new(),
            in_flight: AtomicUsize::new(0),
            receiving: AtomicUsize::new(0),
            busy: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            config: self.config,
            factory: self.factory,
            adapter: self.adapter,
            json_adapter: self.json_adapter,
            threads: Mutex::new(Vec::new()),
        });
        let mut threads = Vec::new();
        for replica in 0..shared.config.num_replicas {
            let s = Arc::clone(&shared);
            let t = std::thread::Builder::new()
                .name(format!("air-serve-{}-{replica}", shared.config.name))
                .spawn(move || s.run_replica(replica))
                .map_err(|e| ServeError::Io {
                    addr: format!("replica thread of {}", shared.config.name),
                    source: e,
                })?;
            threads.push(t);
        }
        *shared.threads.lock().expect("no panics under this lock") = threads;
        tracing::info!(
            deployment = shared.config.name,
            replicas = shared.config.num_replicas,
            "deployment started"
        );
        Ok(DeploymentHandle { shared })
    }
}

fn build_all(
    config: &DeploymentConfig,
    factory: &dyn PredictorFactory,
    checkpoint: &Checkpoint,
) -> Result<Vec<Arc<dyn Predictor>>> {
    (0..config.num_replicas)
        .map(|r| {
            let device = config.device(r);
            device.check_available()?;
            Ok(factory.build(checkpoint, device)?)
        })
        .collect()
}

/// The predictors of one checkpoint; replaced whole by `reconfigure`.
struct Generation {
    predictors: Vec<Arc<dyn Predictor>>,
    checkpoint: Checkpoint,
    input_columns: Option<Vec<String>>,
    /// The matrix every replica's model reads, when they all offer one whose columns are the
    /// input columns (see [`crate::matrix`]).
    matrix: Option<Arc<MatrixLayout>>,
    version: u64,
}

impl Generation {
    fn new(
        predictors: Vec<Arc<dyn Predictor>>,
        checkpoint: Checkpoint,
        config: &DeploymentConfig,
        version: u64,
    ) -> Self {
        let input_columns = config
            .input_columns
            .clone()
            .or_else(|| predictors.first().and_then(|p| p.input_columns()));
        let matrix = matrix_layout(&predictors, input_columns.as_deref());
        Self {
            predictors,
            checkpoint,
            input_columns,
            matrix,
            version,
        }
    }
}

/// The layout of the matrix all `predictors` read (the same columns for each), when the input
/// columns, if known, are exactly those.
fn matrix_layout(
    predictors: &[Arc<dyn Predictor>],
    input_columns: Option<&[String]>,
) -> Option<Arc<MatrixLayout>> {
    let columns = predictors.first()?.as_matrix()?.columns();
    if !predictors
        .iter()
        .all(|p| p.as_matrix().is_some_and(|m| m.columns() == columns))
    {
        return None;
    }
    let layout = MatrixLayout::new(columns)?;
    if input_columns.is_some_and(|cols| !layout.same_set(cols)) {
        return None;
    }
    Some(Arc::new(layout))
}

/// What a request asks a replica to predict.
pub(crate) enum Input {
    /// A batch from an adapter or an in-process caller.
    Frame(DataFrame),
    /// Rows parsed straight into the matrix of `layout` (see [`crate::matrix`]).
    Matrix {
        layout: Arc<MatrixLayout>,
        matrix: Matrix<f64>,
    },
}

impl Input {
    fn rows(&self) -> usize {
        match self {
            Self::Frame(f) => f.height(),
            Self::Matrix { matrix, .. } => matrix.rows,
        }
    }
}

/// A replica's answer to an [`Input`].
pub(crate) enum Output {
    Frame(DataFrame),
    Matrix(MatrixPredictions),
}

impl Output {
    /// As the frame `predict` answers.
    fn into_frame(self) -> Result<DataFrame> {
        match self {
            Self::Frame(f) => Ok(f),
            Self::Matrix(p) => Ok(p.into_frame()?),
        }
    }

    /// As JSON records.
    pub(crate) fn to_json(&self) -> Vec<u8> {
        match self {
            Self::Frame(f) => crate::records_json(f),
            Self::Matrix(p) => predictions_json(p),
        }
    }
}

/// A request waiting for a replica.
struct Job {
    input: Input,
    reply: oneshot::Sender<Result<Output>>,
    arrived: Instant,
}

impl Queued for Job {
    fn arrived(&self) -> Instant {
        self.arrived
    }

    fn abandoned(&self) -> bool {
        self.reply.is_closed()
    }
}

struct Shared {
    config: DeploymentConfig,
    factory: Arc<dyn PredictorFactory>,
    adapter: Arc<dyn Adapter>,
    json_adapter: bool,
    generation: RwLock<Arc<Generation>>,
    queue: BatchQueue<Job>,
    replicas: Replicas,
    metrics: Metrics,
    in_flight: AtomicUsize,
    receiving: AtomicUsize,
    busy: AtomicUsize,
    closed: AtomicBool,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    fn current(&self) -> Arc<Generation> {
        Arc::clone(&self.generation.read().expect("no panics under this lock"))
    }

    fn run_replica(&self, replica: usize) {
        let max = self.config.max_batch_size;
        let wait = self.config.batch_wait_timeout;
        while let Some(jobs) = self.queue.next_batch(max, wait) {
            let claim = self.replicas.claim(replica);
            self.run(claim.replica(), jobs);
        }
    }

    /// Predicts `jobs` on `replica` (claimed by the caller), counted as busy, in the metrics
    /// and in the model's running cost.
    fn run(&self, replica: usize, jobs: Vec<Job>) {
        self.busy.fetch_add(1, Ordering::AcqRel);
        let started = Instant::now();
        let generation = self.current();
        let (requests, rows) = (jobs.len(), jobs.iter().map(|j| j.input.rows()).sum());
        self.metrics.batch(requests, rows);
        self.answer(&generation, replica, jobs);
        self.replicas.record(requests, started.elapsed());
        self.busy.fetch_sub(1, Ordering::AcqRel);
    }

    /// Predicts `jobs` on `replica` of `generation` and answers each: the frames as one batch,
    /// the matrices of the generation's layout as another. A matrix parsed for another
    /// generation's layout (a reconfigure came in between) goes as the frame of its body.
    fn answer(&self, generation: &Generation, replica: usize, jobs: Vec<Job>) {
        let name = &self.config.name;
        let predictor = &*generation.predictors[replica];
        let model = predictor.as_matrix().zip(generation.matrix.as_deref());
        let (mut frames, mut frame_replies) = (Vec::new(), Vec::new());
        let (mut matrices, mut matrix_replies) = (Vec::new(), Vec::new());
        for job in jobs {
            match job.input {
                Input::Frame(frame) => {
                    frames.push(frame);
                    frame_replies.push(job.reply);
                }
                Input::Matrix { layout, matrix }
                    if model.is_some_and(|(_, current)| {
                        std::ptr::eq(current, &*layout) || *current == *layout
                    }) =>
                {
                    matrices.push(matrix);
                    matrix_replies.push(job.reply);
                }
                Input::Matrix { layout, matrix } => match layout.to_frame(&matrix) {
                    Ok(frame) => {
                        frames.push(frame);
                        frame_replies.push(job.reply);
                    }
                    Err(e) => {
                        let _ = job.reply.send(Err(polars_error("rebuilding a request", e)));
                    }
                },
            }
        }
        if !frames.is_empty() {
            let outs = predict_each(name, predictor, frames);
            for (reply, out) in frame_replies.into_iter().zip(outs) {
                let _ = reply.send(out.map(Output::Frame));
            }
        }
        if let Some((model, _)) = model.filter(|_| !matrices.is_empty()) {
            let outs = predict_matrices(name, model, &matrices);
            for (reply, out) in matrix_replies.into_iter().zip(outs) {
                let _ = reply.send(out.map(Output::Matrix));
            }
        }
    }
}

/// Predicts `matrices` as one matrix and splits the answer, one per matrix; if the merged
/// matrix fails, each is predicted alone, so that one bad request fails only itself (as
/// [`predict_each`] does for frames).
fn predict_matrices(
    deployment: &str,
    model: &dyn MatrixPredictor,
    matrices: &[Matrix<f64>],
) -> Vec<Result<MatrixPredictions>> {
    let alone = |m: &Matrix<f64>| {
        let mut data = Vec::with_capacity(m.data.len());
        extend_f32(&mut data, &m.data);
        predict_matrix_checked(deployment, model, &data, m.rows)
    };
    if let [m] = matrices {
        return vec![alone(m)];
    }
    let rows: usize = matrices.iter().map(|m| m.rows).sum();
    let mut data = Vec::with_capacity(matrices.iter().map(|m| m.data.len()).sum());
    for m in matrices {
        extend_f32(&mut data, &m.data);
    }
    match predict_matrix_checked(deployment, model, &data, rows) {
        Ok(all) => {
            let mut offset = 0;
            matrices
                .iter()
                .map(|m| {
                    let span = offset * all.width..(offset + m.rows) * all.width;
                    offset += m.rows;
                    Ok(MatrixPredictions {
                        values: all.values[span].to_vec(),
                        width: all.width,
                    })
                })
                .collect()
        }
        Err(e) => {
            tracing::debug!(deployment, error = %e, "batch failed; predicting its requests one by one");
            matrices.iter().map(alone).collect()
        }
    }
}

/// The model on `rows` rows of `data`, which must answer `width ≥ 1` values per row.
fn predict_matrix_checked(
    deployment: &str,
    model: &dyn MatrixPredictor,
    data: &[f32],
    rows: usize,
) -> Result<MatrixPredictions> {
    let out = guarded(deployment, || model.predict_matrix(data, rows))?;
    if out.width == 0 || out.values.len() != rows * out.width {
        return Err(ServeError::Predict(air_train::TrainError::model(
            format!("deployment {deployment}"),
            format!(
                "the predictor returned {} values of width {} for {rows} rows",
                out.values.len(),
                out.width
            ),
        )));
    }
    Ok(out)
}

/// Predicts `frames` as one batch and splits the answer, one per frame. Each frame is
/// preprocessed alone first ([`Predictor::preprocess`]: a request's rows as the model reads
/// them, which may be fewer — one observation sent as a 1-D array, say); the preprocessed
/// frames are merged for one [`Predictor::predict_preprocessed`]. A frame whose preprocessing
/// fails fails only itself; if the merged batch fails, each frame is predicted alone so that
/// one bad request fails only itself. A panic is an error naming `deployment`.
pub(crate) fn predict_each(
    deployment: &str,
    predictor: &dyn Predictor,
    frames: Vec<DataFrame>,
) -> Vec<Result<DataFrame>> {
    let mut prepared: Vec<Result<DataFrame>> = frames
        .into_iter()
        .map(|f| guarded(deployment, || predictor.preprocess(f)))
        .collect();
    let ready: Vec<usize> = (0..prepared.len())
        .filter(|i| prepared[*i].is_ok())
        .collect();
    if ready.len() <= 1 {
        return prepared
            .into_iter()
            .map(|p| p.and_then(|f| predict_checked(deployment, predictor, f)))
            .collect();
    }
    let batch: Vec<DataFrame> = ready
        .iter()
        .map(|i| match &prepared[*i] {
            Ok(f) => f.clone(),
            Err(_) => unreachable!("only prepared frames are batched"),
        })
        .collect();
    let heights: Vec<usize> = batch.iter().map(DataFrame::height).collect();
    match merge(&batch).and_then(|df| predict_checked(deployment, predictor, df)) {
        Ok(out) => {
            let mut offset = 0;
            for (i, n) in ready.into_iter().zip(heights) {
                prepared[i] = Ok(out.slice(offset as i64, n));
                offset += n;
            }
            prepared
        }
        Err(e) => {
            tracing::debug!(deployment, error = %e, "batch failed; predicting its requests one by one");
            prepared
                .into_iter()
                .map(|p| p.and_then(|f| predict_checked(deployment, predictor, f)))
                .collect()
        }
    }
}

/// Runs `f`, turning a panic into an error naming `deployment`.
fn guarded<T>(deployment: &str, f: impl FnOnce() -> air_train::Result<T>) -> Result<T> {
    Ok(
        catch_unwind(AssertUnwindSafe(f)).map_err(|p| ServeError::ReplicaPanicked {
            deployment: deployment.to_owned(),
            message: panic_message(&*p),
        })??,
    )
}

/// The model half on a preprocessed frame, which must answer one row per row.
fn predict_checked(
    deployment: &str,
    predictor: &dyn Predictor,
    frame: DataFrame,
) -> Result<DataFrame> {
    let rows = frame.height();
    let out = guarded(deployment, || predictor.predict_preprocessed(frame))?;
    if out.height() != rows {
        return Err(ServeError::Predict(air_train::TrainError::model(
            format!("deployment {deployment}"),
            format!("the predictor returned {} rows for {rows}", out.height()),
        )));
    }
    Ok(out)
}

fn merge(frames: &[DataFrame]) -> Result<DataFrame> {
    let mut merged = frames[0].clone();
    for frame in &frames[1..] {
        merged
            .vstack_mut(frame)
            .map_err(|e| polars_error("merging requests into a batch", e))?;
    }
    Ok(merged)
}

/// Calls a started deployment in-process (Ray's `DeploymentHandle`): the same queue, batching
/// and limits as HTTP requests. Cheap to clone.
#[derive(Clone)]
pub struct DeploymentHandle {
    shared: Arc<Shared>,
}

impl fmt::Debug for DeploymentHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeploymentHandle")
            .field("name", &self.shared.config.name)
            .finish_non_exhaustive()
    }
}

/// A numbers snapshot of one deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DeploymentStats {
    /// Requests being handled (queued or predicting).
    pub in_flight: usize,
    /// HTTP requests whose body is still arriving (not yet counted in flight).
    pub receiving: usize,
    /// Requests waiting for a replica.
    pub queued: usize,
    /// Replicas predicting now.
    pub busy_replicas: usize,
    /// Batches predicted.
    pub batches: u64,
    /// Requests answered 200.
    pub ok: u64,
    /// Requests answered 503.
    pub overloaded: u64,
    /// The checkpoint version (0 at start, +1 per reconfigure).
    pub version: u64,
}

/// Releases an in-flight (or receiving) slot when dropped (answered, failed or cancelled
/// alike).
pub(crate) struct Slot<'a>(&'a AtomicUsize);

impl<'a> Slot<'a> {
    /// Counts one more on `counter` until dropped.
    pub(crate) fn new(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::AcqRel);
        Self(counter)
    }

    /// An in-flight slot of `deployment` (a deployment or a pipeline), or 503 when `limit`
    /// are taken.
    pub(crate) fn take(in_flight: &'a AtomicUsize, limit: usize, deployment: &str) -> Result<Self> {
        let prev = in_flight.fetch_add(1, Ordering::AcqRel);
        let slot = Self(in_flight);
        if prev >= limit {
            return Err(ServeError::Overloaded {
                deployment: deployment.to_owned(),
                limit,
            });
        }
        Ok(slot)
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl DeploymentHandle {
    /// The deployment's config.
    pub fn config(&self) -> &DeploymentConfig {
        &self.shared.config
    }

    /// Predicts `batch` (blocking; not for use inside an async runtime — use
    /// [`predict_async`](Self::predict_async) there).
    pub fn predict(&self, batch: DataFrame) -> Result<DataFrame> {
        let started = Instant::now();
        let out = self.predict_blocking(batch).and_then(Output::into_frame);
        self.record(&out, started.elapsed());
        out
    }

    fn predict_blocking(&self, batch: DataFrame) -> Result<Output> {
        let _slot = self.admit()?;
        let input = Input::Frame(batch);
        self.check(&input)?;
        let input = match self.run_here(input) {
            Ok(out) => return out,
            Err(input) => input,
        };
        let rx = self.submit(input)?;
        match self.shared.config.request_timeout {
            None => rx.blocking_recv().map_err(|_| self.shut_down())?,
            Some(t) => {
                // A blocking receive has no timeout: poll the oneshot from a tiny runtime.
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()
                    .map_err(|e| ServeError::Io {
                        addr: "in-process handle".to_owned(),
                        source: e,
                    })?;
                rt.block_on(async { tokio::time::timeout(t, rx).await })
                    .map_err(|_| self.timeout())?
                    .map_err(|_| self.shut_down())?
            }
        }
    }

    /// Predicts `batch` from async code.
    pub async fn predict_async(&self, batch: DataFrame) -> Result<DataFrame> {
        let started = Instant::now();
        let out = match self.admit() {
            Ok(_slot) => self.call(Input::Frame(batch)).await,
            Err(e) => Err(e),
        }
        .and_then(Output::into_frame);
        self.record(&out, started.elapsed());
        out
    }

    fn record(&self, out: &Result<DataFrame>, elapsed: Duration) {
        let status = out.as_ref().map_or_else(ServeError::status, |_| 200);
        self.shared.metrics.request(status, elapsed);
    }

    /// Counts a request as receiving its body until the guard drops.
    pub(crate) fn receiving(&self) -> Slot<'_> {
        Slot::new(&self.shared.receiving)
    }

    /// Takes an in-flight slot or answers 503.
    pub(crate) fn admit(&self) -> Result<Slot<'_>> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(self.shut_down());
        }
        Slot::take(
            &self.shared.in_flight,
            self.shared.config.max_in_flight(),
            &self.shared.config.name,
        )
    }

    /// The input of the matrix path for a JSON `body` (see [`crate::matrix`]), when the
    /// deployment's adapter is the default one, its models read one matrix, and the body is a
    /// list of records of exactly its columns, all numbers or null.
    pub(crate) fn matrix_input(&self, body: &[u8]) -> Option<Input> {
        if !self.shared.json_adapter {
            return None;
        }
        let layout = self.shared.current().matrix.clone()?;
        let matrix = layout.parse(body)?;
        Some(Input::Matrix { layout, matrix })
    }

    /// Queues `input` and waits for its answer within the request timeout (the caller holds a
    /// slot).
    pub(crate) async fn call(&self, input: Input) -> Result<Output> {
        self.check(&input)?;
        let input = match self.run_here(input) {
            Ok(out) => return out,
            Err(input) => input,
        };
        let rx = self.submit(input)?;
        match self.shared.config.request_timeout {
            None => rx.await.map_err(|_| self.shut_down())?,
            Some(t) => tokio::time::timeout(t, rx)
                .await
                .map_err(|_| self.timeout())?
                .map_err(|_| self.shut_down())?,
        }
    }

    /// Refuses an input with no rows or the wrong columns.
    fn check(&self, input: &Input) -> Result<()> {
        if input.rows() == 0 {
            return Err(RequestError::Empty.into());
        }
        // A matrix holds exactly its layout's columns, checked against the input columns.
        if let Input::Frame(batch) = input
            && let Some(expected) = &self.shared.current().input_columns
        {
            check_columns(batch, expected)?;
        }
        Ok(())
    }

    /// Runs `input` on this thread when nothing is queued and a replica is free and cheap (see
    /// [`crate::replicas`]); gives it back otherwise.
    fn run_here(&self, input: Input) -> std::result::Result<Result<Output>, Input> {
        let shared = &self.shared;
        if shared.queue.queued() > 0 {
            return Err(input);
        }
        let Some(claim) = shared.replicas.try_claim() else {
            return Err(input);
        };
        let (reply, mut rx) = oneshot::channel();
        let arrived = Instant::now();
        shared.run(
            claim.replica(),
            vec![Job {
                input,
                reply,
                arrived,
            }],
        );
        Ok(rx
            .try_recv()
            .map_err(|_| self.shut_down())
            .and_then(|out| out))
    }

    /// Queues a checked input for the replicas.
    fn submit(&self, input: Input) -> Result<oneshot::Receiver<Result<Output>>> {
        let (tx, rx) = oneshot::channel();
        let job = Job {
            input,
            reply: tx,
            arrived: Instant::now(),
        };
        self.shared.queue.push(job).map_err(|_| self.shut_down())?;
        Ok(rx)
    }

    pub(crate) fn adapter(&self) -> &dyn Adapter {
        &*self.shared.adapter
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    fn timeout(&self) -> ServeError {
        ServeError::Timeout {
            deployment: self.shared.config.name.clone(),
            timeout_ms: self
                .shared
                .config
                .request_timeout
                .unwrap_or_default()
                .as_millis(),
        }
    }

    fn shut_down(&self) -> ServeError {
        ServeError::ShutDown(self.shared.config.name.clone())
    }

    /// Swaps every replica to a predictor of `checkpoint`. The new predictors are built first
    /// (an error leaves the old ones serving); batches already taken finish on the old ones,
    /// so no request fails because of the swap.
    pub fn reconfigure(&self, checkpoint: Checkpoint) -> Result<()> {
        let shared = &self.shared;
        let predictors = build_all(&shared.config, &*shared.factory, &checkpoint)?;
        let mut generation = shared
            .generation
            .write()
            .expect("no panics under this lock");
        let version = generation.version + 1;
        *generation = Arc::new(Generation::new(
            predictors,
            checkpoint,
            &shared.config,
            version,
        ));
        tracing::info!(deployment = shared.config.name, version, "reconfigured");
        Ok(())
    }

    /// The checkpoint being served.
    pub fn checkpoint(&self) -> Checkpoint {
        self.shared.current().checkpoint.clone()
    }

    /// The input columns requests are checked against, if known.
    pub fn input_columns(&self) -> Option<Vec<String>> {
        self.shared.current().input_columns.clone()
    }

    /// Current numbers.
    pub fn stats(&self) -> DeploymentStats {
        let s = &self.shared;
        DeploymentStats {
            in_flight: s.in_flight.load(Ordering::Acquire),
            receiving: s.receiving.load(Ordering::Acquire),
            queued: s.queue.len(),
            busy_replicas: s.busy.load(Ordering::Acquire),
            batches: s.metrics.batches(),
            ok: s.metrics.requests_with(200),
            overloaded: s.metrics.requests_with(503),
            version: s.current().version,
        }
    }

    /// Prometheus lines of this deployment.
    pub(crate) fn metrics_sample(&self) -> crate::metrics::DeploymentSample {
        let s = self.stats();
        crate::metrics::DeploymentSample {
            name: self.shared.config.name.clone(),
            metrics: self.shared.metrics.clone(),
            // In the order of `metrics::GAUGES`.
            gauges: [
                s.queued,
                s.in_flight,
                s.receiving,
                s.busy_replicas,
                self.shared.config.num_replicas,
            ]
            .map(|v| v as i64),
            steps: Vec::new(),
        }
    }

    /// Stops taking requests, lets the replicas answer what is queued, and joins them.
    /// Other handles of this deployment get 503 from then on.
    pub fn shutdown(&self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.queue.close();
        let threads = std::mem::take(&mut *self.shared.threads.lock().expect("no panics"));
        for t in threads {
            let _ = t.join();
        }
    }
}
