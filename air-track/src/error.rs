//! Errors of building a tracking callback. Once built, a callback's failures are warnings: a
//! tracking server that is down never stops a training run.

/// Why a tracking callback could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrackError {
    /// The MLflow tracking URI is not one this callback can talk to.
    #[error(
        "MLflow tracking URI `{value}` is not usable: {reason}; expected the http:// or \
         https:// address of a tracking server (`mlflow server --host 127.0.0.1 --port 5000` \
         serves http://127.0.0.1:5000)"
    )]
    TrackingUri {
        /// The URI given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No tracking URI was given and the environment variable that would name one is unset.
    #[error(
        "no MLflow tracking URI: set {variable} (e.g. http://127.0.0.1:5000) or give \
         `tracking_uri` in the config"
    )]
    MissingTrackingUri {
        /// The variable read.
        variable: &'static str,
    },
    /// A setting is out of range.
    #[error("MLflow setting `{name}` = {value} is invalid: expected {expected}")]
    InvalidSetting {
        /// The setting.
        name: &'static str,
        /// Its value.
        value: String,
        /// What it should be.
        expected: &'static str,
    },
    /// The thread that sends events could not be started.
    #[error("starting the MLflow sender thread: {source}")]
    Thread {
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP client could not be built (TLS roots, proxy settings).
    #[error("building the HTTP client for MLflow: {source}")]
    Client {
        /// The client's error.
        #[source]
        source: reqwest::Error,
    },
}
