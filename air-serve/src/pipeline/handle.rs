//! [`Pipeline`]: a deployed graph, called in-process (blocking or async) and served over HTTP.

use std::{
    fmt,
    marker::PhantomData,
    sync::{Arc, atomic::Ordering, mpsc},
    time::{Duration, Instant},
};

use serde::Serialize;

use super::{
    call::Call,
    config::PipelineConfig,
    graph::Graph,
    node::{Data, Node, take},
    runtime::{Done, Runtime},
    step::{Erased, ExecutionMode},
};
use crate::{
    deployment::Slot,
    error::{Result, ServeError},
};

/// A deployed pipeline (Ray's `Pipeline`, from [`Node::deploy`]): call it with an `In`, get an
/// `Out`. Cheap to clone; when the last clone is dropped (or on [`shutdown`](Self::shutdown))
/// its replica and task threads stop and are joined.
pub struct Pipeline<In, Out> {
    pub(crate) runtime: Arc<Runtime>,
    _types: PhantomData<fn(In) -> Out>,
}

impl<In, Out> Clone for Pipeline<In, Out> {
    fn clone(&self) -> Self {
        Self {
            runtime: Arc::clone(&self.runtime),
            _types: PhantomData,
        }
    }
}

impl<In, Out> fmt::Debug for Pipeline<In, Out> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline")
            .field("config", &self.runtime.config)
            .field("steps", &self.steps())
            .finish()
    }
}

/// One step of a deployed pipeline, as [`Pipeline::steps`] lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct StepStats {
    /// The node's step name (`#2`, `#3`… on later nodes of one step).
    pub name: String,
    /// Where it runs.
    pub mode: ExecutionMode,
    /// The names of the nodes it takes, `INPUT` for the pipeline's input.
    pub inputs: Vec<String>,
    /// Calls run so far (a batch of n counts n).
    pub calls: u64,
    /// Calls that failed or panicked.
    pub errors: u64,
    /// Calls waiting in its queue.
    pub queued: usize,
    /// Its workers running now.
    pub busy: usize,
}

impl<In: Data, Out: Data> Pipeline<In, Out> {
    pub(crate) fn deploy(output: &Node<In, Out>, config: PipelineConfig) -> Result<Self> {
        let graph = Graph::compile(&output.inner)?;
        let runtime = Runtime::start(graph, config)?;
        tracing::info!(
            pipeline = runtime.config.name(),
            steps = runtime.graph.nodes.len(),
            "pipeline deployed"
        );
        Ok(Self {
            runtime: Arc::new(runtime),
            _types: PhantomData,
        })
    }

    /// Runs the pipeline on `input` and waits for its output (blocking: from async code use
    /// [`call_async`](Self::call_async), which does not hold a thread while steps run
    /// elsewhere). Fails with the failing step's name and message when a step fails or
    /// panics; the pipeline goes on serving.
    pub fn call(&self, input: In) -> Result<Out> {
        let started = Instant::now();
        let out = self
            .admit()
            .and_then(|_slot| self.call_blocking(input, started));
        self.record(&out, started.elapsed());
        out
    }

    fn call_blocking(&self, input: In, started: Instant) -> Result<Out> {
        let (tx, rx) = mpsc::channel();
        let done = Done::Blocking(tx);
        let mut call = Call::new(&self.runtime, Arc::new(input));
        let deadline = self.runtime.config.request_timeout().map(|t| started + t);
        loop {
            if let Some(out) = call.advance(&done)? {
                return Ok(take(out));
            }
            // Look for a moment before sleeping: a fast step answers before a wake-up would.
            let early = crate::queue::spin_until(crate::queue::SPIN, || rx.try_recv().ok());
            let (node, outcome) = match (early, deadline) {
                (Some(done), _) => done,
                (None, None) => rx.recv().expect("the call holds a sender"),
                (None, Some(deadline)) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    rx.recv_timeout(left).map_err(|_| self.timeout())?
                }
            };
            call.complete(node, outcome)?;
        }
    }

    /// Runs the pipeline on `input` from async code (Ray left this unimplemented). `Local`
    /// steps run on the calling task; the others run on their threads while the task waits
    /// without blocking.
    pub async fn call_async(&self, input: In) -> Result<Out> {
        let started = Instant::now();
        let out = match self.admit() {
            Ok(_slot) => self.run_async(input).await,
            Err(e) => Err(e),
        };
        self.record(&out, started.elapsed());
        out
    }

    /// Runs a call already admitted, within the request timeout.
    pub(crate) async fn run_async(&self, input: In) -> Result<Out> {
        match self.runtime.config.request_timeout() {
            None => self.call_inner(input).await,
            Some(t) => tokio::time::timeout(t, self.call_inner(input))
                .await
                .map_err(|_| self.timeout())
                .and_then(|r| r),
        }
    }

    async fn call_inner(&self, input: In) -> Result<Out> {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let done = Done::Async(tx);
        let mut call = Call::new(&self.runtime, Arc::new(input) as Erased);
        loop {
            if let Some(out) = call.advance(&done)? {
                return Ok(take(out));
            }
            let (node, outcome) = rx.recv().await.expect("the call holds a sender");
            call.complete(node, outcome)?;
        }
    }
}

impl<In, Out> Pipeline<In, Out> {
    /// The config it was deployed with.
    pub fn config(&self) -> &PipelineConfig {
        &self.runtime.config
    }

    /// Its steps in graph order (each after its inputs; the output last), with their numbers.
    pub fn steps(&self) -> Vec<StepStats> {
        let rt = &self.runtime;
        rt.graph
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let (queued, busy) = rt.queue_state(i);
                StepStats {
                    name: n.name.clone(),
                    mode: n.inner.config.mode(),
                    inputs: n
                        .deps
                        .iter()
                        .map(|d| match d {
                            super::graph::Slot::Input => "INPUT".to_owned(),
                            super::graph::Slot::Node(d) => rt.graph.nodes[*d].name.clone(),
                        })
                        .collect(),
                    calls: rt.step_metrics[i].calls(),
                    errors: rt.step_metrics[i].errors(),
                    queued,
                    busy,
                }
            })
            .collect()
    }

    /// Calls in flight now.
    pub fn in_flight(&self) -> usize {
        self.runtime.in_flight.load(Ordering::Acquire)
    }

    /// Stops taking calls (they fail with [`ServeError::ShutDown`]), lets the workers answer
    /// what is queued, and joins their threads. Other clones see the pipeline shut down.
    pub fn shutdown(&self) {
        self.runtime.shutdown();
    }

    /// Takes an in-flight slot or fails with 503.
    pub(crate) fn admit(&self) -> Result<Slot<'_>> {
        admit(&self.runtime)
    }

    fn record(&self, out: &Result<Out>, elapsed: Duration) {
        let status = out.as_ref().map_or_else(ServeError::status, |_| 200);
        self.runtime.metrics.request(status, elapsed);
    }

    fn timeout(&self) -> ServeError {
        ServeError::Timeout {
            deployment: self.runtime.config.name().to_owned(),
            timeout_ms: self
                .runtime
                .config
                .request_timeout()
                .unwrap_or_default()
                .as_millis(),
        }
    }
}

/// Takes an in-flight slot of `runtime` or fails with 503 (or `ShutDown` once shut down).
pub(crate) fn admit(runtime: &Runtime) -> Result<Slot<'_>> {
    if runtime.is_closed() {
        return Err(runtime.shut_down());
    }
    Slot::take(
        &runtime.in_flight,
        runtime.config.max_concurrent_queries(),
        runtime.config.name(),
    )
}
