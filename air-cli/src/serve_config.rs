//! The serve config file (`air serve --config serve.yaml`), in the spirit of Ray Serve's: HTTP
//! options, a list of deployments, each a checkpoint behind a route prefix with its
//! replicas, batching and limits, and a list of pipelines, each an ensemble of checkpoints
//! whose predictions are combined.
//!
//! Every value is checked while the file is read, so an error names the field path, the line
//! and the column: unknown fields, a route prefix without its leading `/`, a zero count, a
//! negative duration, two deployments (or pipelines, or models of a pipeline) with one name or
//! one route prefix.
//!
//! ```yaml
//! http_options:
//!   host: 127.0.0.1        # the default; 0.0.0.0 to listen on every interface
//!   port: 8000
//! deployments:
//!   - name: cancer
//!     checkpoint: s3://models/cancer/checkpoint_000019
//!     route_prefix: /cancer
//!     num_replicas: 2
//!     max_batch_size: 32
//!     batch_wait_timeout_s: 0.005
//! pipelines:
//!   - name: ensemble
//!     combine: mean          # mean | vote | all
//!     models:                # each gets the request's rows, all at the same time
//!       - {name: trees, checkpoint: results/a/checkpoint_000004, num_replicas: 2}
//!       - {name: linear, checkpoint: results/b/checkpoint_000001}
//! ```

use std::{
    collections::BTreeSet,
    fmt,
    net::{IpAddr, Ipv4Addr},
    num::NonZeroUsize,
    time::Duration,
};

use serde::{
    Deserialize, Deserializer,
    de::{self, SeqAccess, Visitor},
};

use crate::error::{CliError, Result};

/// A whole serve config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeFile {
    /// Where and how the server listens.
    #[serde(default)]
    pub http_options: HttpOptions,
    /// The checkpoints it serves one by one.
    #[serde(default)]
    pub deployments: Deployments,
    /// The ensembles it serves.
    #[serde(default)]
    pub pipelines: Pipelines,
}

impl ServeFile {
    /// Reads and checks the file at `path`.
    pub fn from_file(path: &str) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| CliError::Io {
            action: "reading the serve config",
            path: path.to_owned(),
            source,
        })?;
        Self::from_yaml(&text, path)
    }

    /// Reads and checks YAML `text` (from `path`, for errors).
    pub fn from_yaml(text: &str, path: &str) -> Result<Self> {
        let config = |message: String| CliError::Config {
            path: path.to_owned(),
            message,
        };
        let file: Self = serde_yaml_ng::from_str(text).map_err(|e| config(e.to_string()))?;
        if file.deployments.0.is_empty() && file.pipelines.0.is_empty() {
            return Err(config(
                "nothing to serve: list `deployments`, `pipelines` or both".to_owned(),
            ));
        }
        // Each list checked its own; a deployment and a pipeline may still collide.
        for p in &file.pipelines.0 {
            if let Some(d) = file
                .deployments
                .0
                .iter()
                .find(|d| d.name == p.name || d.route() == p.route())
            {
                return Err(config(format!(
                    "pipeline {:?} at {} and deployment {:?} at {} share a name or route prefix; \
                     each needs its own",
                    p.name.0,
                    p.route(),
                    d.name.0,
                    d.route()
                )));
            }
        }
        Ok(file)
    }
}

/// The server's options; each unset one keeps air-serve's default.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpOptions {
    /// The address to bind (127.0.0.1 unless set).
    pub host: Option<IpAddr>,
    /// The port (8000 unless set; 0 picks a free one).
    pub port: Option<u16>,
    /// Threads answering HTTP.
    pub http_threads: Option<NonZeroUsize>,
    /// How long a shutdown waits for in-flight requests.
    pub shutdown_timeout_s: Option<Seconds>,
    /// How long a client may take to send its headers.
    pub header_timeout_s: Option<Seconds>,
    /// How long a client may take to send its body.
    pub body_timeout_s: Option<Seconds>,
    /// How long an idle keep-alive connection stays open.
    pub idle_timeout_s: Option<Seconds>,
    /// Open connections at most.
    pub max_connections: Option<NonZeroUsize>,
}

impl HttpOptions {
    /// The host, 127.0.0.1 by default.
    pub fn host(&self) -> IpAddr {
        self.host.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
    }
}

/// One deployment.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentSpec {
    /// Its name (metrics, logs, the in-process handle).
    pub name: Name,
    /// The checkpoint: a local directory or a URI.
    pub checkpoint: String,
    /// The predictor kind; by default the one the checkpoint records.
    #[serde(default)]
    pub kind: Option<String>,
    /// Where it answers (`/{name}` unless set).
    #[serde(default)]
    pub route_prefix: Option<RoutePrefix>,
    /// Replicas, each with its own predictor.
    #[serde(default = "one")]
    pub num_replicas: NonZeroUsize,
    /// Requests batched together at most (no batching unless set).
    #[serde(default)]
    pub max_batch_size: Option<NonZeroUsize>,
    /// How long a batch waits to fill (with `max_batch_size`; 10 ms unless set).
    #[serde(default)]
    pub batch_wait_timeout_s: Option<Seconds>,
    /// Requests queued or running at most before a 503.
    #[serde(default)]
    pub max_concurrent_queries: Option<NonZeroUsize>,
    /// How long a request may take before a 408.
    #[serde(default)]
    pub request_timeout_s: Option<Seconds>,
    /// The largest body accepted (413 past it).
    #[serde(default)]
    pub max_request_bytes: Option<NonZeroUsize>,
    /// The columns a request must have, when the checkpoint does not record them.
    #[serde(default)]
    pub input_columns: Option<Vec<String>>,
    /// GPUs each replica's predictor is placed on.
    #[serde(default)]
    pub num_gpus_per_replica: usize,
    /// Requests of a model averaging under this per request run on the HTTP worker when a
    /// replica is free (100 µs unless set; 0: always on a replica's thread).
    #[serde(default)]
    pub run_on_caller_below_s: Option<Seconds>,
}

fn one() -> NonZeroUsize {
    NonZeroUsize::MIN
}

impl DeploymentSpec {
    /// A deployment of `checkpoint` named `name` with every other setting at its default.
    pub fn new(name: &str, checkpoint: &str) -> Self {
        Self {
            name: Name(name.to_owned()),
            checkpoint: checkpoint.to_owned(),
            kind: None,
            route_prefix: None,
            num_replicas: one(),
            max_batch_size: None,
            batch_wait_timeout_s: None,
            max_concurrent_queries: None,
            request_timeout_s: None,
            max_request_bytes: None,
            input_columns: None,
            num_gpus_per_replica: 0,
            run_on_caller_below_s: None,
        }
    }

    /// The route prefix, `/{name}` by default.
    pub fn route(&self) -> String {
        self.route_prefix
            .as_ref()
            .map_or_else(|| format!("/{}", self.name.0), |p| p.0.clone())
    }
}

/// Deployments with distinct names and route prefixes (none when the section is left out, at
/// least one when it is there).
#[derive(Debug, Clone, Default)]
pub struct Deployments(pub Vec<DeploymentSpec>);

impl<'de> Deserialize<'de> for Deployments {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let all = d.deserialize_seq(Served::<DeploymentSpec>::new())?;
        if all.is_empty() {
            return Err(de::Error::custom(
                "no deployments; list at least one (or leave the section out)",
            ));
        }
        Ok(Deployments(all))
    }
}

/// What a server answers at a route: a deployment or a pipeline.
trait Routed: for<'de> Deserialize<'de> {
    /// "deployment" or "pipeline", for errors.
    const WHAT: &'static str;
    fn name(&self) -> &str;
    fn route(&self) -> String;
}

impl Routed for DeploymentSpec {
    const WHAT: &'static str = "deployment";
    fn name(&self) -> &str {
        &self.name.0
    }
    fn route(&self) -> String {
        DeploymentSpec::route(self)
    }
}

impl Routed for PipelineSpec {
    const WHAT: &'static str = "pipeline";
    fn name(&self) -> &str {
        &self.name.0
    }
    fn route(&self) -> String {
        PipelineSpec::route(self)
    }
}

/// Reads a list of `T`, refusing a name or route prefix an earlier element took, at that
/// element's line.
struct Served<T>(std::marker::PhantomData<T>);

impl<T> Served<T> {
    fn new() -> Self {
        Self(std::marker::PhantomData)
    }
}

impl<'de, T: Routed> Visitor<'de> for Served<T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a list of {}s", T::WHAT)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Vec<T>, A::Error> {
        let mut names = BTreeSet::new();
        let mut routes = BTreeSet::new();
        let mut all = Vec::new();
        while let Some(spec) = seq.next_element::<T>()? {
            if !names.insert(spec.name().to_owned()) {
                return Err(de::Error::custom(format_args!(
                    "{} name {:?} is used twice; names must differ",
                    T::WHAT,
                    spec.name()
                )));
            }
            let route = spec.route();
            if !routes.insert(route.clone()) {
                return Err(de::Error::custom(format_args!(
                    "route_prefix {route:?} of {} {:?} is taken by an earlier {}; each needs its \
                     own",
                    T::WHAT,
                    spec.name(),
                    T::WHAT
                )));
            }
            all.push(spec);
        }
        Ok(all)
    }
}

/// An ensemble: the request's rows go to every model at once, and their predictions are
/// combined into the answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSpec {
    /// Its name (metrics, logs).
    pub name: Name,
    /// Where it answers (`/{name}` unless set).
    #[serde(default)]
    pub route_prefix: Option<RoutePrefix>,
    /// How the models' predictions become the answer.
    pub combine: Combine,
    /// The models (at least one, distinct names).
    pub models: PipelineModels,
    /// Requests running at most before a 503.
    #[serde(default)]
    pub max_concurrent_queries: Option<NonZeroUsize>,
    /// How long a request may take before a 408.
    #[serde(default)]
    pub request_timeout_s: Option<Seconds>,
    /// The largest body accepted (413 past it).
    #[serde(default)]
    pub max_request_bytes: Option<NonZeroUsize>,
}

impl PipelineSpec {
    /// The route prefix, `/{name}` by default.
    pub fn route(&self) -> String {
        self.route_prefix
            .as_ref()
            .map_or_else(|| format!("/{}", self.name.0), |p| p.0.clone())
    }
}

/// How an ensemble's predictions become its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Combine {
    /// `predictions`: the mean of the models' numeric `predictions`, row by row.
    Mean,
    /// `predictions`: the value most models predicted, row by row (a tie goes to the value of
    /// the earliest model among the tied).
    Vote,
    /// Every model's columns, named `{model}.{column}`.
    All,
}

/// One model of a pipeline: a checkpoint and how its step runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineModel {
    /// Its step's name (per-step metrics, errors, `all`'s column names).
    pub name: Name,
    /// The checkpoint: a local directory or a URI.
    pub checkpoint: String,
    /// The predictor kind; by default the one the checkpoint records.
    #[serde(default)]
    pub kind: Option<String>,
    /// Replicas, each with its own predictor.
    #[serde(default = "one")]
    pub num_replicas: NonZeroUsize,
    /// Calls batched into one prediction at most (no batching unless set).
    #[serde(default)]
    pub max_batch_size: Option<NonZeroUsize>,
    /// How long a batch waits to fill (with `max_batch_size`; 10 ms unless set).
    #[serde(default)]
    pub batch_wait_timeout_s: Option<Seconds>,
}

/// The name of the step that combines an ensemble's predictions (no model may take it).
pub const COMBINE_STEP: &str = "combine";

/// A pipeline's models: at least one, with distinct names.
#[derive(Debug, Clone)]
pub struct PipelineModels(pub Vec<PipelineModel>);

impl<'de> Deserialize<'de> for PipelineModels {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Seq;
        impl<'de> Visitor<'de> for Seq {
            type Value = PipelineModels;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of models")
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut names = BTreeSet::new();
                let mut all = Vec::new();
                while let Some(model) = seq.next_element::<PipelineModel>()? {
                    if model.name.0 == COMBINE_STEP {
                        return Err(de::Error::custom(format_args!(
                            "model name {COMBINE_STEP:?} is the combining step's; choose another"
                        )));
                    }
                    if !names.insert(model.name.0.clone()) {
                        return Err(de::Error::custom(format_args!(
                            "model name {:?} is used twice in this pipeline; names must differ",
                            model.name.0
                        )));
                    }
                    all.push(model);
                }
                if all.is_empty() {
                    return Err(de::Error::custom("no models; list at least one"));
                }
                Ok(PipelineModels(all))
            }
        }
        d.deserialize_seq(Seq)
    }
}

/// Pipelines with distinct names and route prefixes.
#[derive(Debug, Clone, Default)]
pub struct Pipelines(pub Vec<PipelineSpec>);

impl<'de> Deserialize<'de> for Pipelines {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_seq(Served::<PipelineSpec>::new())
            .map(Pipelines)
    }
}

/// A deployment name: letters, digits, `-`, `_` and `.`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name(pub String);

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        checked_str(d, "a deployment name")
    }
}

impl TryFrom<String> for Name {
    type Error = String;
    fn try_from(s: String) -> std::result::Result<Self, String> {
        if s.is_empty()
            || !s
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(format!(
                "name {s:?}: expected letters, digits, '-', '_' or '.' (at least one)"
            ));
        }
        Ok(Self(s))
    }
}

/// A route prefix: `/` or `/segment[/segment...]` without a trailing `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePrefix(pub String);

impl<'de> Deserialize<'de> for RoutePrefix {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        checked_str(d, "a route prefix")
    }
}

impl TryFrom<String> for RoutePrefix {
    type Error = String;
    fn try_from(s: String) -> std::result::Result<Self, String> {
        if s == "/" || (s.starts_with('/') && !s.ends_with('/') && !s.contains("//")) {
            Ok(Self(s))
        } else {
            Err(format!(
                "route_prefix {s:?}: expected \"/\" or a path such as \"/models/cancer\" (a \
                 leading '/', no trailing one)"
            ))
        }
    }
}

/// A non-negative, finite number of seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Seconds(pub Duration);

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Seconds;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of seconds")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<Seconds, E> {
                Seconds::try_from(v).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Seconds, E> {
                self.visit_f64(v as f64)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Seconds, E> {
                self.visit_f64(v as f64)
            }
        }
        d.deserialize_f64(V)
    }
}

/// A string checked by `T::try_from` inside the visitor, so the deserializer reports the
/// error at the value's own line and column.
fn checked_str<'de, D, T>(d: D, what: &'static str) -> std::result::Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<String, Error = String>,
{
    struct V<T>(&'static str, std::marker::PhantomData<T>);
    impl<T: TryFrom<String, Error = String>> Visitor<'_> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<T, E> {
            T::try_from(v.to_owned()).map_err(E::custom)
        }
    }
    d.deserialize_str(V(what, std::marker::PhantomData))
}

impl TryFrom<f64> for Seconds {
    type Error = String;
    fn try_from(s: f64) -> std::result::Result<Self, String> {
        Duration::try_from_secs_f64(s)
            .map(Self)
            .map_err(|_| format!("{s} seconds: expected a finite number of seconds ≥ 0"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(yaml: &str) -> String {
        ServeFile::from_yaml(yaml, "serve.yaml")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn reads_a_full_file_with_defaults() {
        let f = ServeFile::from_yaml(
            "http_options:\n  port: 0\ndeployments:\n  - name: a\n    checkpoint: /m/a\n  - name: \
             b\n    checkpoint: s3://m/b\n    route_prefix: /v1/b\n    num_replicas: 3\n    \
             max_batch_size: 8\n    batch_wait_timeout_s: 0.002\n    run_on_caller_below_s: 0\n",
            "serve.yaml",
        )
        .unwrap();
        assert_eq!(f.http_options.port, Some(0));
        assert_eq!(f.http_options.host().to_string(), "127.0.0.1");
        let [a, b] = f.deployments.0.as_slice() else {
            panic!("two deployments")
        };
        assert_eq!((a.route(), a.num_replicas.get()), ("/a".to_owned(), 1));
        assert_eq!((b.route(), b.num_replicas.get()), ("/v1/b".to_owned(), 3));
        assert_eq!(
            b.batch_wait_timeout_s.map(|s| s.0),
            Some(Duration::from_millis(2))
        );
        assert_eq!(a.run_on_caller_below_s, None);
        assert_eq!(b.run_on_caller_below_s.map(|s| s.0), Some(Duration::ZERO));
    }

    #[test]
    fn errors_name_the_field_and_line() {
        let e = error("deployments:\n  - name: a\n    checkpoint: /m\n    num_replicas: 0\n");
        assert!(e.starts_with("serve.yaml: "), "{e}");
        assert!(e.contains("num_replicas") && e.contains("line 4"), "{e}");
        let e = error("deployments:\n  - name: a\n    checkpoint: /m\n    replicas: 2\n");
        assert!(
            e.contains("unknown field `replicas`") && e.contains("line 4"),
            "{e}"
        );
        let e = error("deployments:\n  - name: a\n    checkpoint: /m\n    route_prefix: cancer\n");
        assert!(
            e.contains("route_prefix \"cancer\"") && e.contains("line 4"),
            "{e}"
        );
        let e = error(
            "deployments:\n  - name: a\n    checkpoint: /m\n  - name: b\n    checkpoint: /n\n    \
             route_prefix: /a\n",
        );
        assert!(
            e.contains("taken by an earlier") && e.contains("line "),
            "{e}"
        );
        let e = error("deployments: []\n");
        assert!(e.contains("at least one"), "{e}");
        let e = error("http_options:\n  port: 0\n");
        assert!(e.contains("nothing to serve"), "{e}");
        let e = error("http_options:\n  port: 70000\ndeployments: []\n");
        assert!(
            e.contains("http_options.port") && e.contains("line 2"),
            "{e}"
        );
        let e = error("deployments:\n  - name: a\n    checkpoint: /m\n    request_timeout_s: -1\n");
        assert!(e.contains("expected a finite number of seconds"), "{e}");
        assert!(
            error("deployments:\n  - name: a b\n    checkpoint: /m\n").contains("name \"a b\"")
        );
    }

    #[test]
    fn reads_pipelines_and_names_their_errors() {
        let f = ServeFile::from_yaml(
            "pipelines:\n  - name: ens\n    combine: vote\n    request_timeout_s: 2\n    \
             models:\n      - {name: a, checkpoint: /m/a, num_replicas: 2, max_batch_size: 4}\n      \
             - {name: b, checkpoint: /m/b}\n",
            "serve.yaml",
        )
        .unwrap();
        assert!(f.deployments.0.is_empty());
        let [p] = f.pipelines.0.as_slice() else {
            panic!("one pipeline")
        };
        assert_eq!((p.route(), p.combine), ("/ens".to_owned(), Combine::Vote));
        assert_eq!(p.models.0[0].num_replicas.get(), 2);
        assert_eq!(p.models.0[1].max_batch_size, None);

        let models = "    models:\n      - {name: a, checkpoint: /m/a}\n";
        let e = error(&format!(
            "pipelines:\n  - name: ens\n    combine: median\n{models}"
        ));
        assert!(e.contains("median") && e.contains("line 3"), "{e}");
        let e = error(
            "pipelines:\n  - name: ens\n    combine: mean\n    models:\n      - {name: a, \
             checkpoint: /m/a}\n      - {name: a, checkpoint: /m/b}\n",
        );
        assert!(e.contains("used twice") && e.contains("line "), "{e}");
        let e = error(
            "pipelines:\n  - name: ens\n    combine: mean\n    models:\n      - {name: \
             combine, checkpoint: /m/a}\n",
        );
        assert!(e.contains("combining step"), "{e}");
        let e = error(&format!(
            "deployments:\n  - name: ens\n    checkpoint: /m\npipelines:\n  - name: ens\n    \
             combine: all\n{models}"
        ));
        assert!(e.contains("share a name or route prefix"), "{e}");
    }
}
