use air_checkpoint::CheckpointError;
use air_data::DataError;

/// Everything that can go wrong in air-train.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// A CUDA device was asked for but this build has no CUDA backend.
    #[error(
        "CUDA device {index} requested, but air-train was built without the `cuda` feature; \
         rebuild with `--features cuda` (or set `use_gpu = false` to train on the CPU)"
    )]
    CudaNotCompiled {
        /// The device index that was asked for.
        index: usize,
    },
    /// A CUDA device was asked for and this build has CUDA, but the device cannot be used.
    #[error(
        "CUDA device {index} is not usable: {reason}; check `nvidia-smi` and the driver, lower \
         num_workers to the number of GPUs, or set use_gpu = false"
    )]
    GpuUnavailable {
        /// The device index.
        index: usize,
        /// What the CUDA runtime reported.
        reason: String,
    },
    /// A launcher's environment variable is missing or unusable (a multi-process run).
    #[error("launcher environment: {variable} is {value}; expected {expected}")]
    LaunchEnv {
        /// The variable.
        variable: String,
        /// Its value, quoted, or `unset`.
        value: String,
        /// What it must hold.
        expected: String,
    },
    /// A configuration value is invalid.
    #[error("invalid {field}: {value}; expected {expected}")]
    InvalidConfig {
        /// The field.
        field: &'static str,
        /// The offending value.
        value: String,
        /// What is accepted.
        expected: String,
    },
    /// The data cannot be trained on or predicted from as it is (no rows, a label with one
    /// class, non-finite values, the wrong feature count): a problem of the data, not of the
    /// configuration.
    #[error("unusable {what}: {found}; expected {expected}")]
    InvalidData {
        /// What part of the data (`"label_column"`, `"features"`, `"datasets"`).
        what: &'static str,
        /// What was found.
        found: String,
        /// What is needed.
        expected: String,
    },
    /// A collective operation was misused (mismatched calls or sizes).
    #[error("collective operation failed: {0}")]
    Collective(String),
    /// A peer failed, so the collective operation this worker waited in was abandoned.
    #[error("collective operation abandoned: {0}")]
    CollectiveAborted(String),
    /// `get_dataset_shard` named a dataset the trainer was not given.
    #[error("no dataset named {name:?} was given to the trainer; known: [{}]", known.join(", "))]
    DatasetNotFound {
        /// The name asked for.
        name: String,
        /// The names the trainer has.
        known: Vec<String>,
    },
    /// Reported metrics are not a JSON object of values.
    #[error("invalid metrics {metrics}: {reason}")]
    InvalidMetrics {
        /// The metrics as given.
        metrics: String,
        /// What is wrong.
        reason: String,
    },
    /// The run was told to stop (a stop condition was met, or a tuner's scheduler ended the
    /// trial); the train loop should return it (`?`) and the run ends successfully.
    #[error("the run was stopped: {reason}")]
    Stopped {
        /// Why, in words.
        reason: String,
    },
    /// A worker returned an error or panicked, and the failure budget is spent.
    #[error(
        "training failed: worker {rank} {what} after {failures} failure(s) (max_failures allows \
         {allowed}): {message}"
    )]
    WorkerFailed {
        /// The rank of the first worker that failed.
        rank: usize,
        /// "returned an error" or "panicked".
        what: &'static str,
        /// The worker's message (its error and that error's sources, or the panic message).
        message: String,
        /// The error the worker returned; `None` for a panic.
        #[source]
        source: Option<BoxError>,
        /// Failures so far, this one included.
        failures: usize,
        /// The configured budget, in words.
        allowed: String,
    },
    /// A model could not be built, saved, loaded or run. Build it with [`TrainError::model`].
    #[error("model {context}: {source}")]
    Model {
        /// What was being done.
        context: String,
        /// Why it failed: the underlying error, or a message where there is none.
        source: BoxError,
    },
    /// A weights file does not match the model it is loaded into: a tensor is missing, has
    /// another shape or an unusable dtype, or the file is not readable as weights.
    #[error("weights {file}: tensor {tensor} {problem}")]
    Weights {
        /// The file (a path, a checkpoint entry or a URI).
        file: String,
        /// The tensor's name in the file.
        tensor: String,
        /// What is wrong, with the shapes involved.
        problem: String,
    },
    /// Reading or writing a run's or an experiment's files failed.
    #[error("run storage at {location}: {source}")]
    Storage {
        /// The file, directory or URI.
        location: String,
        /// The underlying error.
        source: BoxError,
    },
    /// The run's directory already holds an earlier run of the same name, and the trainer was
    /// not told to resume it.
    #[error(
        "the run directory {path} already holds a run ({holds}); nothing was changed. To \
         continue it (a relaunched job) use `with_existing_run(ExistingRun::Resume)`, or give \
         this run another name (RunConfig::with_name) or storage path"
    )]
    RunExists {
        /// The run's directory.
        path: String,
        /// What it holds, in words.
        holds: String,
    },
    /// A tuning trial run in a process of its own failed there, or its process was lost.
    #[error("trial process: {0}")]
    TrialProcess(String),
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What the operating system reported.
        source: std::io::Error,
    },
    /// A dataset operation failed.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A checkpoint operation failed.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

/// This crate's result type.
pub type Result<T, E = TrainError> = std::result::Result<T, E>;

/// An underlying error kept as another error's [`source`](std::error::Error::source); a
/// `String` or `&str` converts into one where there is no error value to keep.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

impl TrainError {
    /// A [`TrainError::Model`]: `context` says what was being done, `source` is the underlying
    /// error (kept as the source) or a message.
    pub fn model(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::Model {
            context: context.into(),
            source: source.into(),
        }
    }

    /// A [`TrainError::Storage`] at `location`, keeping `source`.
    pub fn storage(location: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::Storage {
            location: location.into(),
            source: source.into(),
        }
    }
}
