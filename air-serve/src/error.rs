use air_train::TrainError;

/// Everything that can go wrong in air-serve.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
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
    /// A request body could not be turned into a batch (HTTP 400 or 422).
    #[error("{0}")]
    BadRequest(#[from] crate::adapter::RequestError),
    /// The deployment is at its `max_concurrent_queries` limit (HTTP 503).
    #[error(
        "deployment {deployment:?} is overloaded: {limit} queries in flight \
         (num_replicas × max_concurrent_queries); retry later"
    )]
    Overloaded {
        /// The deployment.
        deployment: String,
        /// The in-flight limit.
        limit: usize,
    },
    /// The request was not answered within the request timeout (HTTP 408).
    #[error("deployment {deployment:?} did not answer within {timeout_ms} ms")]
    Timeout {
        /// The deployment.
        deployment: String,
        /// The timeout.
        timeout_ms: u128,
    },
    /// The deployment is shutting down and takes no new requests (HTTP 503).
    #[error("deployment {0:?} is shut down")]
    ShutDown(String),
    /// No deployment of that name is served.
    #[error("no deployment named {name:?}; served: [{}]", served.join(", "))]
    UnknownDeployment {
        /// The name asked for.
        name: String,
        /// The names served.
        served: Vec<String>,
    },
    /// A replica panicked while predicting (HTTP 500); the replica goes on serving.
    #[error("a replica of {deployment:?} panicked while predicting: {message}")]
    ReplicaPanicked {
        /// The deployment.
        deployment: String,
        /// The panic message.
        message: String,
    },
    /// The predictor failed (HTTP 422 for bad data, 500 otherwise).
    #[error(transparent)]
    Predict(#[from] TrainError),
    /// A pipeline cannot be deployed (see [`PipelineError`](crate::pipeline::PipelineError)).
    #[error(transparent)]
    Pipeline(#[from] crate::pipeline::PipelineError),
    /// A pipeline step refused its input ([`StepError::bad_input`](crate::pipeline::StepError::bad_input);
    /// HTTP 422); the pipeline goes on serving.
    #[error("pipeline {pipeline:?}, step {step:?}: bad input: {source}")]
    StepRejected {
        /// The pipeline.
        pipeline: String,
        /// The step.
        step: String,
        /// The step's error.
        source: crate::pipeline::BoxError,
    },
    /// A pipeline step failed (HTTP 500); the pipeline goes on serving.
    #[error("pipeline {pipeline:?}, step {step:?} failed: {source}")]
    StepFailed {
        /// The pipeline.
        pipeline: String,
        /// The step.
        step: String,
        /// The step's error.
        source: crate::pipeline::BoxError,
    },
    /// A pipeline step panicked (HTTP 500); the pipeline goes on serving.
    #[error("pipeline {pipeline:?}, step {step:?} panicked: {message}")]
    StepPanicked {
        /// The pipeline.
        pipeline: String,
        /// The step.
        step: String,
        /// The panic message.
        message: String,
    },
    /// Binding or serving the socket failed.
    #[error("cannot serve on {addr}: {source}")]
    Io {
        /// The address.
        addr: String,
        /// The error.
        source: std::io::Error,
    },
}

/// This crate's result type.
pub type Result<T, E = ServeError> = std::result::Result<T, E>;

impl ServeError {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> u16 {
        match self {
            Self::InvalidConfig { .. } => 500,
            Self::BadRequest(e) => e.status(),
            Self::Overloaded { .. } | Self::ShutDown(_) => 503,
            Self::Timeout { .. } => 408,
            Self::UnknownDeployment { .. } => 404,
            Self::ReplicaPanicked { .. } | Self::Io { .. } => 500,
            Self::Pipeline(_) | Self::StepFailed { .. } | Self::StepPanicked { .. } => 500,
            Self::StepRejected { .. } => 422,
            // The data did not fit the model (a missing column, a string where a number was
            // expected, a null the model cannot take): the client's to fix.
            Self::Predict(
                TrainError::Data(_)
                | TrainError::InvalidData { .. }
                | TrainError::InvalidConfig { .. },
            ) => 422,
            Self::Predict(_) => 500,
        }
    }

    /// A short machine-readable kind, put in JSON error bodies.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidConfig { .. } => "invalid_config",
            Self::BadRequest(e) => e.kind(),
            Self::Overloaded { .. } => "overloaded",
            Self::Timeout { .. } => "timeout",
            Self::ShutDown(_) => "shut_down",
            Self::UnknownDeployment { .. } => "unknown_deployment",
            Self::ReplicaPanicked { .. } => "replica_panicked",
            Self::Predict(_) => "predict_failed",
            Self::Io { .. } => "io",
            Self::Pipeline(_) => "invalid_pipeline",
            Self::StepRejected { .. } => "step_rejected_input",
            Self::StepFailed { .. } => "step_failed",
            Self::StepPanicked { .. } => "step_panicked",
        }
    }
}

/// A polars failure while `context` (what was being done, e.g. "merging requests into a
/// batch"), as a prediction error.
pub(crate) fn polars_error(
    context: &str,
    source: air_data::polars::prelude::PolarsError,
) -> ServeError {
    ServeError::Predict(TrainError::Data(air_data::DataError::Polars {
        context: context.to_owned(),
        source,
    }))
}

pub(crate) fn invalid(field: &'static str, value: impl ToString, expected: &str) -> ServeError {
    ServeError::InvalidConfig {
        field,
        value: value.to_string(),
        expected: expected.to_owned(),
    }
}
