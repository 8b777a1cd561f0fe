//! [`PipelineConfig`]: a deployed pipeline's name, route, limits and task pool.

use std::{num::NonZeroUsize, time::Duration};

use serde::{Deserialize, Serialize};

use crate::{
    deployment::{validate_name, validate_route_prefix},
    error::{Result, invalid},
};

/// How a pipeline is deployed: its name and route (when served), its limits, and its pool of
/// task threads. The same limits hold for in-process calls and HTTP requests.
///
/// ```
/// use std::{num::NonZeroUsize, time::Duration};
/// use air_serve::pipeline::PipelineConfig;
///
/// let config = PipelineConfig::new("ensemble")
///     .with_max_concurrent_queries(NonZeroUsize::new(256).unwrap())
///     .with_request_timeout(Some(Duration::from_secs(5)));
/// assert_eq!(config.route_prefix(), "/ensemble");
/// config.validate()?;
/// # Ok::<(), air_serve::ServeError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineConfig {
    name: String,
    route_prefix: String,
    max_concurrent_queries: usize,
    request_timeout: Option<Duration>,
    max_request_bytes: usize,
    task_threads: Option<usize>,
}

impl PipelineConfig {
    /// A pipeline called `name` (letters, digits, `-`, `_`), served at `/{name}`; 1,000 calls
    /// in flight; 60 s timeout; 10 MiB bodies; as many task threads as CPUs. The setters only
    /// set; [`validate`](Self::validate) checks the whole config when the pipeline is deployed.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            route_prefix: format!("/{name}"),
            max_concurrent_queries: 1000,
            request_timeout: Some(Duration::from_secs(60)),
            max_request_bytes: 10 << 20,
            task_threads: None,
        }
    }

    /// The HTTP path the pipeline answers `POST` on (`"/"` for the root).
    pub fn with_route_prefix(mut self, prefix: &str) -> Self {
        self.route_prefix = prefix.to_owned();
        self
    }

    /// Calls in flight at once; beyond it, calls fail at once with
    /// [`ServeError::Overloaded`](crate::ServeError::Overloaded) (HTTP 503).
    pub fn with_max_concurrent_queries(mut self, n: NonZeroUsize) -> Self {
        self.max_concurrent_queries = n.get();
        self
    }

    /// Time from a call's start to its answer, after which it fails with
    /// [`ServeError::Timeout`](crate::ServeError::Timeout) (HTTP 408); None: no limit. Steps
    /// already running are not interrupted.
    pub fn with_request_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Largest accepted HTTP body; larger ones are answered 413.
    pub fn with_max_request_bytes(mut self, bytes: NonZeroUsize) -> Self {
        self.max_request_bytes = bytes.get();
        self
    }

    /// Threads of the pool that runs `Tasks` steps (started only if a step uses it). Default:
    /// one per CPU.
    pub fn with_task_threads(mut self, n: NonZeroUsize) -> Self {
        self.task_threads = Some(n.get());
        self
    }

    /// Checks the whole config (also one read from a file): the name, the route prefix,
    /// counts of at least 1, a timeout above zero. Deploying calls it.
    pub fn validate(&self) -> Result<()> {
        validate_name(&self.name)?;
        validate_route_prefix(&self.route_prefix)?;
        for (field, n) in [
            ("max_concurrent_queries", self.max_concurrent_queries),
            ("max_request_bytes", self.max_request_bytes),
            ("task_threads", self.task_threads.unwrap_or(1)),
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

    /// Calls in flight before 503s.
    pub fn max_concurrent_queries(&self) -> usize {
        self.max_concurrent_queries
    }

    /// The request timeout.
    pub fn request_timeout(&self) -> Option<Duration> {
        self.request_timeout
    }

    /// Largest accepted body.
    pub fn max_request_bytes(&self) -> usize {
        self.max_request_bytes
    }

    /// Threads of the task pool.
    pub fn task_threads(&self) -> usize {
        self.task_threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, NonZeroUsize::get))
    }
}
