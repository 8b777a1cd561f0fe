//! [`Server`]: deployments over HTTP (axum on a tokio runtime of its own).

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    num::{NonZeroU32, NonZeroUsize},
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Body,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::watch;

use crate::{
    adapter::RequestError,
    connection::{self, ConnectionMetrics, Limits},
    deployment::{DeploymentHandle, PredictorDeployment},
    endpoint::Endpoint,
    error::{Result, ServeError, invalid},
    metrics,
    pipeline::{Codec, Pipeline, PipelineEndpoint},
};

/// Where and how the HTTP server listens, and the limits of its connections.
///
/// ```
/// use std::{num::NonZeroUsize, time::Duration};
/// use air_serve::ServeConfig;
///
/// let config = ServeConfig::new()
///     .with_port(0)
///     .with_http_threads(NonZeroUsize::new(2).unwrap())
///     .with_body_timeout(Duration::from_secs(5))
///     .with_max_connections(NonZeroUsize::new(1000).unwrap());
/// assert_eq!(config.addr().ip().to_string(), "127.0.0.1");
/// config.validate()?;
/// # Ok::<(), air_serve::ServeError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServeConfig {
    host: IpAddr,
    port: u16,
    http_threads: usize,
    shutdown_timeout: Duration,
    header_timeout: Duration,
    idle_timeout: Duration,
    body_timeout: Duration,
    max_connections: usize,
    listen_backlog: u32,
}

impl Default for ServeConfig {
    /// 127.0.0.1:8000 (Ray Serve's), two HTTP threads, 30 s to drain on shutdown; 10 s for a
    /// request's headers, 30 s for its body, keep-alive connections closed after 60 s idle;
    /// at most 10,000 connections, a listen backlog of 4096.
    fn default() -> Self {
        Self {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 8000,
            http_threads: 2,
            shutdown_timeout: Duration::from_secs(30),
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(30),
            max_connections: 10_000,
            listen_backlog: 4096,
        }
    }
}

impl ServeConfig {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// The address to bind (`0.0.0.0` exposes the server beyond this machine).
    pub fn with_host(mut self, host: IpAddr) -> Self {
        self.host = host;
        self
    }

    /// The port (0: any free port; see [`ServerHandle::addr`]).
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Threads of the async executor that parses requests and writes answers (inference runs
    /// on the replicas' own threads).
    pub fn with_http_threads(mut self, n: NonZeroUsize) -> Self {
        self.http_threads = n.get();
        self
    }

    /// How long shutdown waits for in-flight requests.
    pub fn with_shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// How long a client has to send a request's headers, from the connection's start or the
    /// request's first byte; past it the connection is closed without an answer (slow-header
    /// clients hold no connection for long).
    pub fn with_header_timeout(mut self, timeout: Duration) -> Self {
        self.header_timeout = timeout;
        self
    }

    /// How long a keep-alive connection may wait for its next request before it is closed.
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// How long a request's body may take to arrive once its headers are in; past it the
    /// answer is 408. A request counts against a deployment's `max_concurrent_queries` only
    /// once its body is in, so slow senders cannot starve the others.
    pub fn with_body_timeout(mut self, timeout: Duration) -> Self {
        self.body_timeout = timeout;
        self
    }

    /// Most connections open at once; more are answered 503 at once and closed. Each open
    /// connection takes a file descriptor: keep this under the process's limit (`ulimit -n`).
    pub fn with_max_connections(mut self, n: NonZeroUsize) -> Self {
        self.max_connections = n.get();
        self
    }

    /// Connections the kernel queues before the server accepts them (`listen(2)`'s backlog;
    /// Linux caps it at `net.core.somaxconn`, 4096 by default). Clients beyond it wait on SYN
    /// retries, seconds each.
    pub fn with_listen_backlog(mut self, backlog: NonZeroU32) -> Self {
        self.listen_backlog = backlog.get();
        self
    }

    /// Checks the whole config (also one read from a file): counts of at least 1 and timeouts
    /// above zero. [`Server::start`] calls it.
    pub fn validate(&self) -> Result<()> {
        for (field, n) in [
            ("http_threads", self.http_threads),
            ("max_connections", self.max_connections),
            ("listen_backlog", self.listen_backlog as usize),
        ] {
            if n == 0 {
                return Err(invalid(field, 0, "at least 1"));
            }
        }
        for (field, timeout) in [
            ("header_timeout", self.header_timeout),
            ("idle_timeout", self.idle_timeout),
            ("body_timeout", self.body_timeout),
        ] {
            if timeout.is_zero() {
                return Err(invalid(field, "0 s", "a positive duration"));
            }
        }
        Ok(())
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }

    /// The body timeout.
    pub fn body_timeout(&self) -> Duration {
        self.body_timeout
    }

    /// Most connections open at once.
    pub fn max_connections(&self) -> usize {
        self.max_connections
    }

    fn limits(&self) -> Limits {
        Limits {
            header_timeout: self.header_timeout,
            idle_timeout: self.idle_timeout,
            max_connections: self.max_connections,
        }
    }
}

/// One HTTP server for any number of deployments, each under its route prefix (Ray Serve's
/// HTTP proxy).
///
/// Routes: `POST {prefix}` (and `{prefix}/`) per deployment; `GET /-/healthz`, `/-/routes`,
/// `/-/metrics` (Prometheus) and `/openapi.json`.
pub struct Server {
    config: ServeConfig,
    deployments: Vec<PredictorDeployment>,
    /// Pipelines, already deployed.
    pipelines: Vec<Arc<dyn Endpoint>>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("config", &self.config)
            .field("deployments", &self.deployments)
            .field(
                "pipelines",
                &self.pipelines.iter().map(|p| p.name()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Server {
    /// A server with no deployments yet.
    pub fn new(config: ServeConfig) -> Self {
        Self {
            config,
            deployments: Vec::new(),
            pipelines: Vec::new(),
        }
    }

    /// Adds a deployment; its config must be valid ([`DeploymentConfig::validate`](crate::DeploymentConfig::validate)) and its
    /// name and route prefix unused.
    pub fn with_deployment(mut self, deployment: PredictorDeployment) -> Result<Self> {
        let new = deployment.config();
        new.validate()?;
        self.check_unused(new.name(), new.route_prefix())?;
        self.deployments.push(deployment);
        Ok(self)
    }

    /// Serves a deployed pipeline at its config's route prefix: `codec` turns a request body
    /// into its input and its output into the answer ([`Json`](crate::pipeline::Json) for
    /// serde types, [`RawBytes`](crate::pipeline::RawBytes) for bytes in, JSON out). Its
    /// name and route prefix must be unused. HTTP requests and in-process calls of the same
    /// pipeline share its limits; its threads stop when the server and every other handle of
    /// it are gone.
    pub fn with_pipeline<In, Out>(
        mut self,
        pipeline: &Pipeline<In, Out>,
        codec: impl Codec<In, Out>,
    ) -> Result<Self>
    where
        In: crate::pipeline::Data,
        Out: crate::pipeline::Data,
    {
        let config = pipeline.config();
        config.validate()?;
        self.check_unused(config.name(), config.route_prefix())?;
        self.pipelines
            .push(Arc::new(PipelineEndpoint::new(pipeline.clone(), codec)));
        Ok(self)
    }

    fn check_unused(&self, name: &str, prefix: &str) -> Result<()> {
        let used = self
            .deployments
            .iter()
            .map(|d| (d.config().name(), d.config().route_prefix()))
            .chain(self.pipelines.iter().map(|p| (p.name(), p.route_prefix())));
        for (n, p) in used {
            if n == name || p == prefix {
                return Err(invalid(
                    "deployment",
                    format!("{name} at {prefix}"),
                    &format!("a name and route prefix not used by {n} at {p}"),
                ));
            }
        }
        Ok(())
    }

    /// Starts the replicas and the HTTP server; returns once it accepts connections.
    pub fn start(self) -> Result<ServerHandle> {
        self.config.validate()?;
        let addr = self.config.addr();
        let io = |source| ServeError::Io {
            addr: addr.to_string(),
            source,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(self.config.http_threads)
            .thread_name("air-serve-http")
            .enable_all()
            .build()
            .map_err(io)?;
        let listener = {
            let _guard = runtime.enter();
            connection::bind(addr, self.config.listen_backlog).map_err(io)?
        };
        let local = listener.local_addr().map_err(io)?;
        let handles = self
            .deployments
            .into_iter()
            .map(PredictorDeployment::start)
            .collect::<Result<Vec<_>>>()?;
        let endpoints: Vec<Arc<dyn Endpoint>> = handles
            .iter()
            .map(|h| Arc::new(h.clone()) as Arc<dyn Endpoint>)
            .chain(self.pipelines)
            .collect();
        let connections = Arc::new(ConnectionMetrics::default());
        let router = router(&endpoints, &self.config, &connections);
        let (stop_tx, stop_rx) = watch::channel(false);
        let serving = runtime.spawn(connection::accept_loop(
            listener,
            router,
            self.config.limits(),
            stop_rx,
            connections,
        ));
        tracing::info!(%local, endpoints = endpoints.len(), "serving");
        Ok(ServerHandle {
            addr: local,
            handles,
            endpoints,
            stop: Some(stop_tx),
            serving: Some(serving),
            runtime: Some(runtime),
            shutdown_timeout: self.config.shutdown_timeout,
        })
    }
}

/// A running server. [`shutdown`](Self::shutdown) (or dropping it) stops accepting, lets
/// in-flight requests finish, and stops the replicas.
pub struct ServerHandle {
    addr: SocketAddr,
    handles: Vec<DeploymentHandle>,
    endpoints: Vec<Arc<dyn Endpoint>>,
    stop: Option<watch::Sender<bool>>,
    serving: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    runtime: Option<tokio::runtime::Runtime>,
    shutdown_timeout: Duration,
}

impl fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerHandle")
            .field("addr", &self.addr)
            .field("deployments", &self.handles)
            .finish_non_exhaustive()
    }
}

impl ServerHandle {
    /// The bound address (the real port when 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://{addr}`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The in-process handle of deployment `name` (to call it without HTTP, reconfigure it,
    /// read its stats).
    pub fn handle(&self, name: &str) -> Result<DeploymentHandle> {
        self.handles
            .iter()
            .find(|h| h.config().name() == name)
            .cloned()
            .ok_or_else(|| ServeError::UnknownDeployment {
                name: name.to_owned(),
                served: self
                    .handles
                    .iter()
                    .map(|h| h.config().name().to_owned())
                    .collect(),
            })
    }

    /// Stops accepting connections, waits (up to the shutdown timeout) for in-flight requests
    /// to be answered, then stops the replicas. Call from synchronous code.
    pub fn shutdown(mut self) -> Result<()> {
        self.stop_now()
    }

    fn stop_now(&mut self) -> Result<()> {
        let Some(runtime) = self.runtime.take() else {
            return Ok(());
        };
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        let mut result = Ok(());
        if let Some(serving) = self.serving.take() {
            let timeout = self.shutdown_timeout;
            let drained = runtime.block_on(async { tokio::time::timeout(timeout, serving).await });
            match drained {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => {
                    result = Err(ServeError::Io {
                        addr: self.addr.to_string(),
                        source: e,
                    });
                }
                Ok(Err(join)) => tracing::warn!(error = %join, "the HTTP server task failed"),
                Err(_) => tracing::warn!(
                    ?timeout,
                    "in-flight requests did not finish within the shutdown timeout"
                ),
            }
        }
        for e in &self.endpoints {
            e.stop();
        }
        runtime.shutdown_timeout(Duration::from_secs(1));
        tracing::info!(addr = %self.addr, "server stopped");
        result
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        let _ = self.stop_now();
    }
}

/// What a route needs: its endpoint and the server's body timeout.
#[derive(Clone)]
struct Route {
    endpoint: Arc<dyn Endpoint>,
    body_timeout: Duration,
}

fn router(
    endpoints: &[Arc<dyn Endpoint>],
    config: &ServeConfig,
    connections: &Arc<ConnectionMetrics>,
) -> Router {
    let openapi = Arc::new(
        serde_json::to_value(crate::openapi::document(endpoints, config))
            .expect("the OpenAPI model serialises to JSON"),
    );
    let routes: serde_json::Map<String, serde_json::Value> = endpoints
        .iter()
        .map(|e| (e.route_prefix().to_owned(), json!(e.name())))
        .collect();
    let all = endpoints.to_vec();
    let mut router = Router::new()
        .route("/-/healthz", get(|| async { "success" }))
        .route(
            "/-/routes",
            get(move || {
                let routes = routes.clone();
                async move { axum::Json(routes) }
            }),
        )
        .route("/-/metrics", {
            let connections = Arc::clone(connections);
            get(move || {
                let (all, connections) = (all.clone(), Arc::clone(&connections));
                async move { prometheus(&all, &connections) }
            })
        })
        .route(
            "/openapi.json",
            get(move || {
                let doc = Arc::clone(&openapi);
                async move { axum::Json((*doc).clone()) }
            }),
        );
    for e in endpoints {
        let prefix = e.route_prefix().to_owned();
        let route = post(predict_route).with_state(Route {
            endpoint: Arc::clone(e),
            body_timeout: config.body_timeout,
        });
        router = router.route(&prefix, route.clone());
        if prefix != "/" {
            router = router.route(&format!("{prefix}/"), route);
        }
    }
    let known: Vec<String> = endpoints
        .iter()
        .map(|e| e.route_prefix().to_owned())
        .collect();
    router.fallback(move |uri: axum::http::Uri| {
        let known = known.clone();
        async move {
            error_response(
                404,
                "no_route",
                &format!(
                    "no deployment at {}; deployments are at [{}]",
                    uri.path(),
                    known.join(", ")
                ),
            )
        }
    })
}

async fn predict_route(State(route): State<Route>, headers: HeaderMap, body: Body) -> Response {
    let started = Instant::now();
    let result = serve_request(&route, &headers, body).await;
    let (status, response) = match result {
        Ok(bytes) => (
            200,
            ([(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        ),
        Err(e) => (
            e.status(),
            error_response(e.status(), e.kind(), &e.to_string()),
        ),
    };
    route.endpoint.record(status, started.elapsed());
    response
}

async fn serve_request(route: &Route, headers: &HeaderMap, body: Body) -> Result<Vec<u8>> {
    let endpoint = &*route.endpoint;
    let limit = endpoint.max_request_bytes();
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let drain = drain_cap(limit);
    if declared.is_some_and(|n| n > drain) {
        // Too large to be worth reading: answer now (the client may see the connection close
        // before it reads the answer).
        return Err(RequestError::TooLarge { limit }.into());
    }
    // The body first, under its own timeout: a slow sender holds no in-flight slot.
    //
    // Written here rather than with tower-http's `RequestBodyLimitLayer` and `TimeoutLayer`,
    // which cannot say what we say: those answer 413 at once (the client, still sending, then
    // sees a reset instead of the answer; we drain up to `drain_cap` first), time the whole
    // request rather than the body's arrival (so a slow sender would hold a slot), and answer
    // without the JSON error naming the bytes received and declared.
    let mut received = 0;
    let receiving = endpoint.receiving();
    let bytes = tokio::time::timeout(
        route.body_timeout,
        read_body(body, limit, drain, &mut received),
    )
    .await
    .map_err(|_| RequestError::BodyTimeout {
        timeout_ms: route.body_timeout.as_millis(),
        received,
        declared,
    })??;
    drop(receiving);
    endpoint.answer(bytes).await
}

/// How much of a too-large body is read and thrown away before answering 413. Answering before
/// the client finished sending makes the server close a connection the client is still writing
/// to, and the client then sees a reset instead of the 413.
fn drain_cap(limit: usize) -> usize {
    limit.saturating_mul(4).max(1 << 20)
}

/// The body, up to `limit` bytes; past it, reads on (discarding) up to `drain` bytes and
/// answers 413. `received` counts the bytes as they come (for the timeout's message).
async fn read_body(
    mut body: Body,
    limit: usize,
    drain: usize,
    received: &mut usize,
) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| RequestError::BodyFraming {
            received: *received,
            reason: error_chain(&e),
        })?;
        if let Ok(data) = frame.into_data() {
            *received += data.len();
            if *received <= limit {
                buf.extend_from_slice(&data);
            } else if *received > drain {
                break;
            }
        }
    }
    if *received > limit {
        return Err(RequestError::TooLarge { limit }.into());
    }
    Ok(buf)
}

/// An error and its causes, `: `-separated (hyper's body errors say "error reading a body from
/// connection" and keep the reason, e.g. an invalid chunk size, in their source).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

fn error_response(status: u16, kind: &str, message: &str) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = json!({"error": kind, "message": message, "status": status});
    let mut response = (code, axum::Json(body)).into_response();
    if status == 503 {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

fn prometheus(endpoints: &[Arc<dyn Endpoint>], connections: &ConnectionMetrics) -> Response {
    let deployments = endpoints.iter().map(|e| e.sample()).collect();
    let text = metrics::render(deployments, connections.sample());
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response()
}
