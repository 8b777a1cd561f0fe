//! The slice of MLflow's REST API (`/api/2.0/mlflow/...`) the callback needs: experiments by
//! name, runs created, found by tag and ended, batches of metrics, params and tags, and files
//! uploaded through the tracking server's artifact proxy (`mlflow-artifacts:` URIs).

use std::{path::Path, thread, time::Duration};

use reqwest::{
    Method, StatusCode, Url,
    blocking::{Client as Http, RequestBuilder},
};
use serde_json::{Value, json};

/// MLflow's limits per `runs/log-batch` request.
const MAX_METRICS_PER_BATCH: usize = 1000;
const MAX_PARAMS_PER_BATCH: usize = 100;
const MAX_TAGS_PER_BATCH: usize = 100;
const MAX_ENTRIES_PER_BATCH: usize = 1000;
/// Attempts at a request that did not reach the server or found it overloaded; the waits
/// between them double from the first.
const ATTEMPTS: u32 = 3;
const FIRST_RETRY_WAIT: Duration = Duration::from_millis(200);

/// A failed call.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// Nothing answered (connection refused, DNS, TLS): the request was not delivered.
    #[error("no MLflow server answers at {url}: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with an error.
    #[error("MLflow refused {method} {url} ({status} {code}): {message}")]
    Rejected {
        method: Method,
        url: String,
        status: StatusCode,
        code: String,
        message: String,
    },
    /// The request or its answer failed on the way (a timeout, a cut connection, a body that is
    /// not MLflow's JSON).
    #[error("MLflow request {url} failed: {source}")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The answer lacks what MLflow's API promises.
    #[error("MLflow answered {url} without {missing}")]
    Unexpected { url: String, missing: &'static str },
    /// The experiment exists but is deleted (in MLflow's trash).
    #[error(
        "MLflow experiment `{name}` is deleted: restore it (`mlflow experiments restore \
         --experiment-id {id}`) or set another experiment_name"
    )]
    ExperimentDeleted { name: String, id: String },
    /// A checkpoint to upload could not be read, or written to the artifact root.
    #[error("copying checkpoint {location} to MLflow's artifacts: {source}")]
    Checkpoint {
        location: String,
        #[source]
        source: Box<air_checkpoint::CheckpointError>,
    },
    /// The run's artifact root is a kind of store this callback cannot write.
    #[error(
        "the run's artifact root {root} is neither the tracking server's proxy \
         (`mlflow-artifacts:`) nor a store AIR writes (local, s3://, gs://, az://); start \
         `mlflow server` with `--artifacts-destination` to proxy artifacts"
    )]
    ArtifactStore { root: String },
    /// A local file to upload could not be read.
    #[error("reading {path} to upload it to MLflow: {source}")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl ApiError {
    /// The request never reached a server.
    pub(crate) fn is_unreachable(&self) -> bool {
        matches!(self, Self::Unreachable { .. })
    }

    fn code(&self) -> Option<&str> {
        match self {
            Self::Rejected { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// A run as the callback needs it.
#[derive(Debug, Clone)]
pub(crate) struct RunInfo {
    pub(crate) id: String,
    pub(crate) artifact_uri: String,
}

/// One metric value at a step.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Metric {
    pub(crate) key: String,
    pub(crate) value: f64,
    pub(crate) timestamp_ms: i64,
    pub(crate) step: i64,
}

/// How a run ended (or that it runs again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunStatus {
    Running,
    Finished,
    Failed,
}

impl RunStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Running => "RUNNING",
            Self::Finished => "FINISHED",
            Self::Failed => "FAILED",
        }
    }
}

/// A tracking server's REST API.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    http: Http,
    /// The tracking URI, ending with `/` so relative joins keep its path.
    base: Url,
}

impl Client {
    pub(crate) fn new(http: Http, mut base: Url) -> Self {
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        Self { http, base }
    }

    /// The experiment named `name`, created (with `tags`) when missing.
    pub(crate) fn experiment_id(
        &self,
        name: &str,
        tags: &[(String, String)],
    ) -> Result<String, ApiError> {
        match self.get_experiment(name) {
            Err(e) if e.code() == Some("RESOURCE_DOES_NOT_EXIST") => {}
            found => return found,
        }
        let body = json!({ "name": name, "tags": tag_list(tags) });
        match self.call(Method::POST, "experiments/create", &[], Some(&body)) {
            Ok(v) => string_at(&v, "experiment_id", self.url("experiments/create")),
            // Created by another process since: use theirs.
            Err(e) if e.code() == Some("RESOURCE_ALREADY_EXISTS") => self.get_experiment(name),
            Err(e) => Err(e),
        }
    }

    fn get_experiment(&self, name: &str) -> Result<String, ApiError> {
        let endpoint = "experiments/get-by-name";
        let v = self.call(Method::GET, endpoint, &[("experiment_name", name)], None)?;
        let experiment = &v["experiment"];
        let id = string_at(experiment, "experiment_id", self.url(endpoint))?;
        if experiment["lifecycle_stage"] == "deleted" {
            return Err(ApiError::ExperimentDeleted {
                name: name.to_owned(),
                id,
            });
        }
        Ok(id)
    }

    /// A new run named `name` in the experiment, started at `start_ms`, with `tags`.
    pub(crate) fn create_run(
        &self,
        experiment_id: &str,
        name: &str,
        start_ms: i64,
        tags: &[(String, String)],
    ) -> Result<RunInfo, ApiError> {
        let body = json!({
            "experiment_id": experiment_id,
            "run_name": name,
            "start_time": start_ms,
            "tags": tag_list(tags),
        });
        let v = self.call(Method::POST, "runs/create", &[], Some(&body))?;
        run_info(&v["run"]["info"], self.url("runs/create"))
    }

    /// The experiment's active run whose tags hold every `(key, value)` of `tags`, if any.
    /// A value MLflow's filter syntax cannot quote finds nothing.
    pub(crate) fn find_run(
        &self,
        experiment_id: &str,
        tags: &[(&str, &str)],
    ) -> Result<Option<RunInfo>, ApiError> {
        if tags
            .iter()
            .any(|(k, v)| k.contains('`') || v.contains('\''))
        {
            return Ok(None);
        }
        let filter = tags
            .iter()
            .map(|(k, v)| format!("tags.`{k}` = '{v}'"))
            .collect::<Vec<_>>()
            .join(" and ");
        let body = json!({
            "experiment_ids": [experiment_id],
            "filter": filter,
            "run_view_type": "ACTIVE_ONLY",
            "max_results": 1,
        });
        let v = self.call(Method::POST, "runs/search", &[], Some(&body))?;
        match v["runs"].as_array().and_then(|runs| runs.first()) {
            Some(run) => run_info(&run["info"], self.url("runs/search")).map(Some),
            None => Ok(None),
        }
    }

    /// Sets the run's status, and its end time when it ended.
    pub(crate) fn set_status(
        &self,
        run_id: &str,
        status: RunStatus,
        end_ms: Option<i64>,
    ) -> Result<(), ApiError> {
        let mut body = json!({ "run_id": run_id, "status": status.as_str() });
        if let Some(end) = end_ms {
            body["end_time"] = json!(end);
        }
        self.call(Method::POST, "runs/update", &[], Some(&body))
            .map(drop)
    }

    /// Logs metrics, params and tags, in as many `log-batch` requests as MLflow's limits need.
    pub(crate) fn log_batch(
        &self,
        run_id: &str,
        metrics: &[Metric],
        params: &[(String, String)],
        tags: &[(String, String)],
    ) -> Result<(), ApiError> {
        let (mut metrics, mut params, mut tags) = (metrics, params, tags);
        while !(metrics.is_empty() && params.is_empty() && tags.is_empty()) {
            let n_params = params.len().min(MAX_PARAMS_PER_BATCH);
            let n_tags = tags.len().min(MAX_TAGS_PER_BATCH);
            let n_metrics = metrics
                .len()
                .min(MAX_METRICS_PER_BATCH)
                .min(MAX_ENTRIES_PER_BATCH - n_params - n_tags);
            let body = json!({
                "run_id": run_id,
                "metrics": metrics[..n_metrics].iter().map(metric_json).collect::<Vec<_>>(),
                "params": tag_list(&params[..n_params]),
                "tags": tag_list(&tags[..n_tags]),
            });
            self.call(Method::POST, "runs/log-batch", &[], Some(&body))?;
            metrics = &metrics[n_metrics..];
            params = &params[n_params..];
            tags = &tags[n_tags..];
        }
        Ok(())
    }

    /// Uploads local file `file` to `path` under a run's artifact root `root`, an
    /// `mlflow-artifacts:` URI served by the tracking server's proxy.
    pub(crate) fn put_proxied_artifact(
        &self,
        root: &str,
        path: &str,
        file: &Path,
    ) -> Result<(), ApiError> {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments
                .pop_if_empty()
                .extend(["api", "2.0", "mlflow-artifacts", "artifacts"])
                .extend(proxied_root(root).split('/').filter(|s| !s.is_empty()))
                .extend(path.split('/').filter(|s| !s.is_empty()));
        }
        self.send(Method::PUT, &url, || {
            let body = std::fs::File::open(file).map_err(|source| ApiError::File {
                path: file.display().to_string(),
                source,
            })?;
            Ok(self.http.put(url.clone()).body(body))
        })
        .map(drop)
    }

    fn url(&self, endpoint: &str) -> Url {
        let mut url = self.base.clone();
        url.set_path(&format!("{}api/2.0/mlflow/{endpoint}", self.base.path()));
        url
    }

    fn call(
        &self,
        method: Method,
        endpoint: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Value, ApiError> {
        let mut url = self.url(endpoint);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        self.send(method.clone(), &url, || {
            let request = self.http.request(method.clone(), url.clone());
            Ok(match body {
                Some(b) => request
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(b.to_string()),
                None => request,
            })
        })
    }

    /// Sends the request `build` makes, again (up to [`ATTEMPTS`]) when it did not arrive or
    /// the server said it is overloaded, and returns the JSON answer.
    fn send(
        &self,
        method: Method,
        url: &Url,
        build: impl Fn() -> Result<RequestBuilder, ApiError>,
    ) -> Result<Value, ApiError> {
        let shown = url.to_string();
        let mut wait = FIRST_RETRY_WAIT;
        let mut attempt = 1;
        loop {
            let error = match build()?.send() {
                Err(source) if source.is_connect() => ApiError::Unreachable {
                    url: shown.clone(),
                    source,
                },
                Err(source) => {
                    return Err(ApiError::Transport { url: shown, source });
                }
                Ok(response) => {
                    let status = response.status();
                    let text = response.text().map_err(|source| ApiError::Transport {
                        url: shown.clone(),
                        source,
                    })?;
                    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    if status.is_success() {
                        return Ok(v);
                    }
                    let error = ApiError::Rejected {
                        method: method.clone(),
                        url: shown.clone(),
                        status,
                        code: v["error_code"].as_str().unwrap_or("").to_owned(),
                        message: v["message"]
                            .as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| text.chars().take(300).collect()),
                    };
                    let overloaded = matches!(status.as_u16(), 429 | 502 | 503 | 504);
                    if !overloaded {
                        return Err(error);
                    }
                    error
                }
            };
            if attempt == ATTEMPTS {
                return Err(error);
            }
            tracing::debug!(%error, attempt, "MLflow request failed; trying again");
            thread::sleep(wait);
            wait *= 2;
            attempt += 1;
        }
    }
}

/// The part of an `mlflow-artifacts:` URI the proxy's path takes: `mlflow-artifacts:/1/abc/
/// artifacts` and `mlflow-artifacts://host:port/1/abc/artifacts` both give `1/abc/artifacts`.
fn proxied_root(root: &str) -> &str {
    let rest = root.strip_prefix("mlflow-artifacts:").unwrap_or(root);
    match rest.strip_prefix("//") {
        Some(with_host) => with_host.find('/').map_or("", |i| &with_host[i..]),
        None => rest,
    }
}

fn tag_list(pairs: &[(String, String)]) -> Vec<Value> {
    pairs
        .iter()
        .map(|(k, v)| json!({ "key": k, "value": v }))
        .collect()
}

/// A metric as MLflow's JSON wants it: non-finite values as the strings protobuf's JSON
/// mapping uses (`serde_json` would write `null`).
fn metric_json(m: &Metric) -> Value {
    let value = if m.value.is_nan() {
        json!("NaN")
    } else if m.value.is_infinite() {
        json!(if m.value > 0.0 {
            "Infinity"
        } else {
            "-Infinity"
        })
    } else {
        json!(m.value)
    };
    json!({ "key": m.key, "value": value, "timestamp": m.timestamp_ms, "step": m.step })
}

fn string_at(v: &Value, key: &'static str, url: Url) -> Result<String, ApiError> {
    v[key]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| ApiError::Unexpected {
            url: url.to_string(),
            missing: key,
        })
}

fn run_info(info: &Value, url: Url) -> Result<RunInfo, ApiError> {
    Ok(RunInfo {
        id: string_at(info, "run_id", url.clone())?,
        artifact_uri: string_at(info, "artifact_uri", url)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxied_roots_drop_the_scheme_and_any_host() {
        assert_eq!(
            proxied_root("mlflow-artifacts:/1/abc/artifacts"),
            "/1/abc/artifacts"
        );
        assert_eq!(
            proxied_root("mlflow-artifacts://h:5000/1/abc/artifacts"),
            "/1/abc/artifacts"
        );
    }

    #[test]
    fn non_finite_metrics_are_strings() {
        let m = |value| Metric {
            key: "loss".into(),
            value,
            timestamp_ms: 1,
            step: 2,
        };
        assert_eq!(metric_json(&m(f64::NAN))["value"], "NaN");
        assert_eq!(metric_json(&m(f64::INFINITY))["value"], "Infinity");
        assert_eq!(metric_json(&m(f64::NEG_INFINITY))["value"], "-Infinity");
        assert_eq!(metric_json(&m(0.5))["value"], 0.5);
    }

    #[test]
    fn endpoints_keep_the_tracking_uris_path() {
        let client = Client::new(Http::new(), Url::parse("http://h:1/mlflow").unwrap());
        assert_eq!(
            client.url("runs/create").as_str(),
            "http://h:1/mlflow/api/2.0/mlflow/runs/create"
        );
    }
}
