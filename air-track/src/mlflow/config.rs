//! [`MlflowConfig`]: where the tracking server is and what to send it, read from code, an
//! experiment file or MLflow's own environment variables, and checked once by `build`.

use std::{collections::BTreeMap, time::Duration};

use reqwest::{
    Url,
    header::{AUTHORIZATION, HeaderMap, HeaderValue},
};
use serde::{Deserialize, Serialize};

use super::{MlflowCallback, client::Client};
use crate::TrackError;

/// The variable MLflow's own clients read the tracking URI from.
pub const TRACKING_URI_VAR: &str = "MLFLOW_TRACKING_URI";
/// The variable MLflow's own clients read the experiment's name from.
pub const EXPERIMENT_NAME_VAR: &str = "MLFLOW_EXPERIMENT_NAME";
const TOKEN_VAR: &str = "MLFLOW_TRACKING_TOKEN";
const USERNAME_VAR: &str = "MLFLOW_TRACKING_USERNAME";
const PASSWORD_VAR: &str = "MLFLOW_TRACKING_PASSWORD";

/// Which files go to a run's artifact store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Artifacts {
    /// None: the checkpoints stay where the run saved them, and the run's `air.checkpoint`
    /// tag says where (Ray's `save_artifact=False`).
    #[default]
    Off,
    /// Every checkpoint a trial saves, under `checkpoints/<name>/` in its run's artifacts.
    Checkpoints,
}

/// Settings of an [`MlflowCallback`] (Ray's `MLflowLoggerCallback` arguments).
///
/// ```no_run
/// use air_track::{Artifacts, MlflowConfig};
///
/// let mlflow = MlflowConfig::new()
///     .with_tracking_uri("http://127.0.0.1:5000")
///     .with_experiment_name("churn")
///     .with_tag("team", "growth")
///     .with_artifacts(Artifacts::Checkpoints)
///     .build()?;
/// # Ok::<(), air_track::TrackError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlflowConfig {
    /// The tracking server (`http://HOST:PORT[/PATH]`); unset, `MLFLOW_TRACKING_URI`.
    #[serde(default)]
    pub tracking_uri: Option<String>,
    /// The MLflow experiment the runs go to, created when missing; unset,
    /// `MLFLOW_EXPERIMENT_NAME`, else the name of the experiment's directory.
    #[serde(default)]
    pub experiment_name: Option<String>,
    /// Tags on every run (and on the experiment when it is created).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Which files are uploaded as artifacts.
    #[serde(default)]
    pub artifacts: Artifacts,
    /// How long one request may take.
    #[serde(default = "default_request_timeout_s")]
    pub request_timeout_s: f64,
    /// How long the end of an experiment waits for queued events to reach the server.
    #[serde(default = "default_flush_timeout_s")]
    pub flush_timeout_s: f64,
}

fn default_request_timeout_s() -> f64 {
    10.0
}

fn default_flush_timeout_s() -> f64 {
    60.0
}

impl Default for MlflowConfig {
    fn default() -> Self {
        Self {
            tracking_uri: None,
            experiment_name: None,
            tags: BTreeMap::new(),
            artifacts: Artifacts::default(),
            request_timeout_s: default_request_timeout_s(),
            flush_timeout_s: default_flush_timeout_s(),
        }
    }
}

/// A validated config, as the worker uses it.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) tracking_uri: Url,
    pub(crate) experiment_name: Option<String>,
    pub(crate) tags: Vec<(String, String)>,
    pub(crate) artifacts: Artifacts,
    pub(crate) flush_timeout: Duration,
}

impl MlflowConfig {
    /// Defaults: everything from MLflow's environment variables, no artifacts.
    pub fn new() -> Self {
        Self::default()
    }

    /// The tracking server's address.
    pub fn with_tracking_uri(mut self, uri: impl Into<String>) -> Self {
        self.tracking_uri = Some(uri.into());
        self
    }

    /// The MLflow experiment's name.
    pub fn with_experiment_name(mut self, name: impl Into<String>) -> Self {
        self.experiment_name = Some(name.into());
        self
    }

    /// A tag on every run.
    pub fn with_tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }

    /// Which files are uploaded.
    pub fn with_artifacts(mut self, artifacts: Artifacts) -> Self {
        self.artifacts = artifacts;
        self
    }

    /// The time limit of one request.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout_s = timeout.as_secs_f64();
        self
    }

    /// How long an experiment's end waits for queued events.
    pub fn with_flush_timeout(mut self, timeout: Duration) -> Self {
        self.flush_timeout_s = timeout.as_secs_f64();
        self
    }

    /// Checks the settings, reads what is unset from MLflow's environment variables
    /// (`MLFLOW_TRACKING_URI`, `MLFLOW_EXPERIMENT_NAME`, and `MLFLOW_TRACKING_TOKEN` or
    /// `MLFLOW_TRACKING_USERNAME`/`_PASSWORD` for authentication) and builds the callback.
    /// Nothing is sent until the first trial starts.
    pub fn build(&self) -> Result<MlflowCallback, TrackError> {
        let raw = match &self.tracking_uri {
            Some(uri) => uri.clone(),
            None => std::env::var(TRACKING_URI_VAR)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or(TrackError::MissingTrackingUri {
                    variable: TRACKING_URI_VAR,
                })?,
        };
        let tracking_uri = parse_tracking_uri(&raw)?;
        let request_timeout = seconds("request_timeout_s", self.request_timeout_s)?;
        let flush_timeout = seconds("flush_timeout_s", self.flush_timeout_s)?;
        let experiment_name = match &self.experiment_name {
            Some(name) if name.trim().is_empty() => {
                return Err(TrackError::InvalidSetting {
                    name: "experiment_name",
                    value: format!("{name:?}"),
                    expected: "a non-empty name (or no setting, for the experiment directory's \
                               name)",
                });
            }
            Some(name) => Some(name.clone()),
            None => std::env::var(EXPERIMENT_NAME_VAR)
                .ok()
                .filter(|v| !v.trim().is_empty()),
        };
        let headers = auth_headers()?;
        let base = tracking_uri.clone();
        // Built (and later dropped) on the callback's own thread: reqwest's blocking client
        // panics when made or dropped inside an async runtime, where a caller may well be.
        let make_client = move || {
            reqwest::blocking::Client::builder()
                .timeout(request_timeout)
                .connect_timeout(request_timeout.min(Duration::from_secs(5)))
                .default_headers(headers)
                .user_agent(concat!("air-track/", env!("CARGO_PKG_VERSION")))
                .build()
                .map(|http| Client::new(http, base))
                .map_err(|source| TrackError::Client { source })
        };
        let settings = Settings {
            tracking_uri: tracking_uri.clone(),
            experiment_name,
            tags: self
                .tags
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            artifacts: self.artifacts,
            flush_timeout,
        };
        MlflowCallback::start(settings, make_client)
    }
}

fn parse_tracking_uri(raw: &str) -> Result<Url, TrackError> {
    let bad = |reason: &str| TrackError::TrackingUri {
        value: raw.to_owned(),
        reason: reason.to_owned(),
    };
    let url = Url::parse(raw).map_err(|e| bad(&e.to_string()))?;
    match url.scheme() {
        "http" | "https" => {}
        "file" => {
            return Err(bad(
                "a file store is written by MLflow's Python client only; serve it with \
                 `mlflow server --backend-store-uri <dir>` and give the server's address",
            ));
        }
        "databricks" => return Err(bad("Databricks workspaces are not supported")),
        other => return Err(bad(&format!("the scheme `{other}` is not HTTP"))),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("it names no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("a tracking URI takes no query or fragment"));
    }
    Ok(url)
}

fn seconds(name: &'static str, value: f64) -> Result<Duration, TrackError> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| TrackError::InvalidSetting {
            name,
            value: value.to_string(),
            expected: "a positive, finite number of seconds",
        })
}

/// `Authorization` from MLflow's variables: a bearer token, else basic credentials.
fn auth_headers() -> Result<HeaderMap, TrackError> {
    let mut headers = HeaderMap::new();
    let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
    let value = match (var(TOKEN_VAR), var(USERNAME_VAR), var(PASSWORD_VAR)) {
        (Some(token), _, _) => Some((TOKEN_VAR, format!("Bearer {token}"))),
        (None, Some(user), password) => {
            use base64::Engine as _;
            let pair = format!("{user}:{}", password.unwrap_or_default());
            let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
            Some((USERNAME_VAR, format!("Basic {encoded}")))
        }
        (None, None, _) => None,
    };
    if let Some((variable, value)) = value {
        let mut header = HeaderValue::from_str(&value).map_err(|_| TrackError::InvalidSetting {
            name: variable,
            value: "(hidden)".to_owned(),
            expected: "visible ASCII characters",
        })?;
        header.set_sensitive(true);
        headers.insert(AUTHORIZATION, header);
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracking_uris_must_be_http_servers() {
        for (uri, says) in [
            ("ftp://h/x", "`ftp` is not HTTP"),
            ("file:///tmp/mlruns", "mlflow server --backend-store-uri"),
            ("databricks", "relative URL"),
            ("http://h:5000/?x=1", "no query"),
        ] {
            let e = parse_tracking_uri(uri).unwrap_err().to_string();
            assert!(e.contains(uri) && e.contains(says), "{uri}: {e}");
        }
        assert!(parse_tracking_uri("https://mlflow.example.com/prefix").is_ok());
    }

    #[test]
    fn timeouts_must_be_positive() {
        let e = MlflowConfig::new()
            .with_tracking_uri("http://127.0.0.1:5000")
            .with_request_timeout(Duration::ZERO)
            .build()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("request_timeout_s") && e.contains("positive"),
            "{e}"
        );
        let e = MlflowConfig::new()
            .with_tracking_uri("http://127.0.0.1:5000")
            .with_experiment_name(" ")
            .build()
            .unwrap_err()
            .to_string();
        assert!(e.contains("experiment_name"), "{e}");
    }

    #[test]
    fn a_config_reads_from_yaml_and_refuses_unknown_fields() {
        let c: MlflowConfig = serde_json::from_str(
            r#"{"tracking_uri": "http://h:1", "artifacts": "checkpoints", "tags": {"a": "b"}}"#,
        )
        .unwrap();
        assert_eq!(c.artifacts, Artifacts::Checkpoints);
        assert_eq!(c.request_timeout_s, 10.0);
        assert!(serde_json::from_str::<MlflowConfig>(r#"{"tracking_url": "x"}"#).is_err());
    }
}
