//! A deployed graph: each step's instances where its execution mode puts them (inline, on the
//! task pool, on replica threads), the queues between callers and workers, and teardown.

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
        mpsc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use super::{
    config::PipelineConfig,
    error::{BoxError, PipelineError, StepError},
    graph::Graph,
    step::{Erased, ErasedInput, ErasedModel, ExecutionMode, Init},
};
use crate::{
    error::{Result, ServeError},
    metrics::{Metrics, StepMetrics},
    panic_message,
    queue::{BatchQueue, Queued, SPIN},
};

/// Why a step gave no value.
pub(crate) enum Failure {
    Error(StepError),
    Panic(String),
}

/// What a step's run gives one call.
pub(crate) type Outcome = Result<Erased, Failure>;

/// Where a queued call's outcome goes: the waiting caller's channel, tagged with the node.
#[derive(Clone)]
pub(crate) enum Done {
    Blocking(mpsc::Sender<(usize, Outcome)>),
    Async(tokio::sync::mpsc::UnboundedSender<(usize, Outcome)>),
}

impl Done {
    fn send(&self, node: usize, outcome: Outcome) {
        // A caller that has gone (timed out) no longer wants the value.
        let _ = match self {
            Self::Blocking(tx) => tx.send((node, outcome)).map_err(drop),
            Self::Async(tx) => tx.send((node, outcome)).map_err(drop),
        };
    }

    fn abandoned(&self) -> bool {
        match self {
            Self::Blocking(_) => false,
            Self::Async(tx) => tx.is_closed(),
        }
    }
}

/// One call of a queued step.
pub(crate) struct Job {
    node: usize,
    input: ErasedInput,
    done: Done,
    arrived: Instant,
}

impl Queued for Job {
    fn arrived(&self) -> Instant {
        self.arrived
    }

    fn abandoned(&self) -> bool {
        self.done.abandoned()
    }
}

/// A step whose calls queue: its queue, batching, and (for `Tasks`) its one shared instance.
pub(crate) struct QueuedStep {
    pub(crate) name: String,
    queue: BatchQueue<Job>,
    max_batch_size: usize,
    batch_wait: Duration,
    shared_model: Option<Arc<dyn ErasedModel>>,
    pub(crate) metrics: StepMetrics,
    pub(crate) busy: AtomicUsize,
}

impl QueuedStep {
    /// Runs a batch taken from the queue and sends each call its outcome.
    fn run(&self, model: &dyn ErasedModel, jobs: Vec<Job>) {
        self.busy.fetch_add(1, Ordering::AcqRel);
        let mut inputs = Vec::with_capacity(jobs.len());
        let mut replies = Vec::with_capacity(jobs.len());
        for job in jobs {
            inputs.push(job.input);
            replies.push((job.node, job.done));
        }
        let outcomes = run_model(&self.name, model, inputs, &self.metrics);
        for ((node, done), outcome) in replies.into_iter().zip(outcomes) {
            done.send(node, outcome);
        }
        self.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Calls `model` on a batch, catching a panic: one outcome per input, in order.
pub(crate) fn run_model(
    step: &str,
    model: &dyn ErasedModel,
    inputs: Vec<ErasedInput>,
    metrics: &StepMetrics,
) -> Vec<Outcome> {
    let n = inputs.len();
    let started = Instant::now();
    let outcomes: Vec<Outcome> = match catch_unwind(AssertUnwindSafe(|| model.call_batch(inputs))) {
        Ok(results) if results.len() == n => results
            .into_iter()
            .map(|r| r.map_err(Failure::Error))
            .collect(),
        Ok(results) => {
            let message = format!(
                "call_batch returned {} outputs for {n} inputs; it must return one per input",
                results.len()
            );
            (0..n)
                .map(|_| Err(Failure::Error(StepError::failed(message.clone()))))
                .collect()
        }
        Err(panic) => {
            let message = panic_message(&*panic);
            tracing::warn!(step, message, "a pipeline step panicked");
            (0..n)
                .map(|_| Err(Failure::Panic(message.clone())))
                .collect()
        }
    };
    let errors = outcomes.iter().filter(|o| o.is_err()).count();
    metrics.record(n, errors, started.elapsed());
    outcomes
}

/// How the runtime reaches one node's step.
pub(crate) enum Exec {
    /// Called inline by the caller.
    Local(Arc<dyn ErasedModel>),
    /// Called through its queue by task threads or replicas.
    Queued(Arc<QueuedStep>),
}

/// A ticket on the task pool's queue: "step S has a call waiting".
struct Ticket {
    step: Arc<QueuedStep>,
    arrived: Instant,
}

impl Queued for Ticket {
    fn arrived(&self) -> Instant {
        self.arrived
    }

    fn abandoned(&self) -> bool {
        false
    }
}

/// A deployed graph.
pub(crate) struct Runtime {
    pub(crate) config: PipelineConfig,
    pub(crate) graph: Graph,
    pub(crate) execs: Vec<Exec>,
    /// Per node, in graph order.
    pub(crate) step_metrics: Vec<StepMetrics>,
    /// Calls answered, by status, and their latency (in-process and HTTP alike).
    pub(crate) metrics: Metrics,
    pub(crate) in_flight: AtomicUsize,
    pub(crate) receiving: AtomicUsize,
    closed: AtomicBool,
    pool: Option<Arc<BatchQueue<Ticket>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Runtime {
    /// Builds every step's instances (constructors run now) and starts the pool and replica
    /// threads. On an error, what was started is stopped again.
    pub(crate) fn start(graph: Graph, config: PipelineConfig) -> Result<Self> {
        config.validate()?;
        let uses_pool = graph
            .nodes
            .iter()
            .any(|n| n.inner.config.mode() == ExecutionMode::Tasks);
        let mut runtime = Self {
            step_metrics: graph.nodes.iter().map(|_| StepMetrics::new()).collect(),
            pool: uses_pool.then(|| Arc::new(BatchQueue::new(SPIN))),
            config,
            graph,
            execs: Vec::new(),
            metrics: Metrics::new(),
            in_flight: AtomicUsize::new(0),
            receiving: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            threads: Mutex::new(Vec::new()),
        };
        runtime.start_pool()?;
        for i in 0..runtime.graph.nodes.len() {
            let exec = runtime.start_node(i)?;
            runtime.execs.push(exec);
        }
        Ok(runtime)
    }

    fn spawn(&self, name: String, body: impl FnOnce() + Send + 'static) -> Result<()> {
        let thread = std::thread::Builder::new()
            .name(name.clone())
            .spawn(body)
            .map_err(|e| ServeError::Io {
                addr: name,
                source: e,
            })?;
        self.threads
            .lock()
            .expect("no panics under this lock")
            .push(thread);
        Ok(())
    }

    fn start_pool(&self) -> Result<()> {
        let Some(pool) = &self.pool else {
            return Ok(());
        };
        for t in 0..self.config.task_threads() {
            let pool = Arc::clone(pool);
            self.spawn(
                format!("air-pipeline-{}-task{t}", self.config.name()),
                move || {
                    while let Some(tickets) = pool.next_batch(1, Duration::ZERO) {
                        for ticket in tickets {
                            let step = &ticket.step;
                            let model = step.shared_model.as_deref().expect("a Tasks step has one");
                            // Empty when another worker took this ticket's call in its batch.
                            let jobs = step.queue.try_batch(step.max_batch_size, step.batch_wait);
                            if let Some(jobs) = jobs.filter(|j| !j.is_empty()) {
                                step.run(model, jobs);
                            }
                        }
                    }
                },
            )?;
        }
        Ok(())
    }

    fn start_node(&self, i: usize) -> Result<Exec> {
        let node = &self.graph.nodes[i];
        let config = node.inner.config;
        let init = &node.inner.init;
        let queued = |shared_model| {
            Arc::new(QueuedStep {
                name: node.name.clone(),
                queue: BatchQueue::new(SPIN),
                max_batch_size: config.max_batch_size(),
                batch_wait: config.batch_wait_timeout(),
                shared_model,
                metrics: self.step_metrics[i].clone(),
                busy: AtomicUsize::new(0),
            })
        };
        match config.mode() {
            ExecutionMode::Local => Ok(Exec::Local(build(&node.name, 0, init)?)),
            ExecutionMode::Tasks => Ok(Exec::Queued(queued(Some(build(&node.name, 0, init)?)))),
            ExecutionMode::Replicas { num_replicas } => {
                let step = queued(None);
                self.start_replicas(&step, init, num_replicas)?;
                Ok(Exec::Queued(step))
            }
        }
    }

    /// Starts `n` replica threads of `step`, each building its own instance, and waits until
    /// all are built.
    fn start_replicas(&self, step: &Arc<QueuedStep>, init: &Init, n: usize) -> Result<()> {
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), PipelineError>>();
        for r in 0..n {
            let (step, init, ready) = (Arc::clone(step), Arc::clone(init), ready_tx.clone());
            let name = format!("air-pipeline-{}-{}-{r}", self.config.name(), step.name);
            self.spawn(name, move || {
                let model = match build(&step.name, r, &init) {
                    Ok(model) => {
                        let _ = ready.send(Ok(()));
                        model
                    }
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                drop(ready);
                while let Some(jobs) = step.queue.next_batch(step.max_batch_size, step.batch_wait) {
                    step.run(&*model, jobs);
                }
            })?;
        }
        drop(ready_tx);
        for _ in 0..n {
            let failed = match ready_rx.recv() {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => e,
                Err(_) => PipelineError::StepInit {
                    step: step.name.clone(),
                    replica: 0,
                    source: "a replica thread ended before its instance was built".into(),
                },
            };
            // The replicas already built stop with the queue; `Drop` joins them.
            step.queue.close();
            return Err(failed.into());
        }
        Ok(())
    }

    /// Queues a call of node `node` (a queued step), its outcome sent to `done`.
    pub(crate) fn submit(&self, node: usize, input: ErasedInput, done: &Done) -> Result<()> {
        let Exec::Queued(step) = &self.execs[node] else {
            unreachable!("only queued steps are submitted")
        };
        let job = Job {
            node,
            input,
            done: done.clone(),
            arrived: Instant::now(),
        };
        step.queue.push(job).map_err(|_| self.shut_down())?;
        if let Some(pool) = &self.pool
            && step.shared_model.is_some()
        {
            let ticket = Ticket {
                step: Arc::clone(step),
                arrived: Instant::now(),
            };
            pool.push(ticket).map_err(|_| self.shut_down())?;
        }
        Ok(())
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn shut_down(&self) -> ServeError {
        ServeError::ShutDown(self.config.name().to_owned())
    }

    /// Takes no more calls, lets the workers finish what is queued, and joins their threads.
    pub(crate) fn shutdown(&self) {
        self.closed.store(true, Ordering::Release);
        for exec in &self.execs {
            if let Exec::Queued(step) = exec {
                step.queue.close();
            }
        }
        if let Some(pool) = &self.pool {
            pool.close();
        }
        let threads = std::mem::take(&mut *self.threads.lock().expect("no panics under this lock"));
        for t in threads {
            let _ = t.join();
        }
    }

    /// Calls waiting in step `node`'s queue, and its workers running now.
    pub(crate) fn queue_state(&self, node: usize) -> (usize, usize) {
        match &self.execs[node] {
            Exec::Local(_) => (0, 0),
            Exec::Queued(step) => (step.queue.len(), step.busy.load(Ordering::Acquire)),
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Runs a step's constructor, catching a panic.
fn build(step: &str, replica: usize, init: &Init) -> Result<Arc<dyn ErasedModel>, PipelineError> {
    let fail = |source: BoxError| PipelineError::StepInit {
        step: step.to_owned(),
        replica,
        source,
    };
    match catch_unwind(AssertUnwindSafe(|| init(replica))) {
        Ok(Ok(model)) => Ok(model),
        Ok(Err(e)) => Err(fail(e)),
        Err(panic) => Err(fail(format!("panicked: {}", panic_message(&*panic)).into())),
    }
}
