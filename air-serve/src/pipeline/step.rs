//! [`Step`]: a function or a stateful model, with how it runs ([`StepConfig`]); calling
//! [`on`](Step::on) with its inputs makes a node of the graph.

use std::{any::Any, fmt, marker::PhantomData, num::NonZeroUsize, sync::Arc, time::Duration};

use serde::{Deserialize, Serialize};

use super::{
    error::{BoxError, PipelineError, StepError},
    node::{Args, Data, Dep, Gather, Node, NodeInner},
};

/// Where a step runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionMode {
    /// Inline, on the caller's thread (in `call_async`, on the caller's task; when served, on
    /// the server's HTTP threads — keep heavy work on `Tasks` or `Replicas`). One instance.
    /// The cheapest hop: no hand-off between threads.
    Local,
    /// On the pipeline's shared pool of task threads
    /// ([`PipelineConfig::with_task_threads`](super::PipelineConfig::with_task_threads)). One
    /// instance, shared by the pool's threads.
    Tasks,
    /// `num_replicas` instances, each built once on a thread of its own; a call goes to the
    /// first replica free (the least loaded one).
    Replicas {
        /// Instances (at least 1).
        num_replicas: usize,
    },
}

/// How a step runs: its execution mode and its batching.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepConfig {
    mode: ExecutionMode,
    max_batch_size: usize,
    batch_wait_timeout: Duration,
}

impl Default for StepConfig {
    /// `Local`, no batching.
    fn default() -> Self {
        Self {
            mode: ExecutionMode::Local,
            max_batch_size: 1,
            batch_wait_timeout: Duration::ZERO,
        }
    }
}

impl StepConfig {
    /// The execution mode.
    pub fn mode(&self) -> ExecutionMode {
        self.mode
    }

    /// Most calls taken as one batch (1: no batching).
    pub fn max_batch_size(&self) -> usize {
        self.max_batch_size
    }

    /// How long a batch waits after its first call for more.
    pub fn batch_wait_timeout(&self) -> Duration {
        self.batch_wait_timeout
    }

    /// Checks the config: at least one replica, batching only where calls queue.
    pub(crate) fn validate(&self, step: &str) -> Result<(), PipelineError> {
        let invalid = |field, value: String, expected: &str| PipelineError::InvalidStep {
            step: step.to_owned(),
            field,
            value,
            expected: expected.to_owned(),
        };
        if let ExecutionMode::Replicas { num_replicas: 0 } = self.mode {
            return Err(invalid("num_replicas", "0".to_owned(), "at least 1"));
        }
        if self.max_batch_size == 0 {
            return Err(invalid("max_batch_size", "0".to_owned(), "at least 1"));
        }
        if self.mode == ExecutionMode::Local && self.max_batch_size > 1 {
            return Err(invalid(
                "max_batch_size",
                format!("{} in Local mode", self.max_batch_size),
                "1 in Local mode (a Local step runs inline, so calls never queue to be \
                 batched): use Tasks or Replicas to batch",
            ));
        }
        Ok(())
    }
}

/// A stateful step: built at deploy time (once per replica), then called with each input.
/// Implement it for a type holding a model, a lookup table, a connection.
///
/// ```
/// use air_serve::pipeline::{Model, StepError};
///
/// /// Ray's `Adder` step.
/// struct Adder(i64);
///
/// impl Model<i64> for Adder {
///     type Output = i64;
///     fn call(&self, input: i64) -> Result<i64, StepError> {
///         Ok(input + self.0)
///     }
/// }
/// ```
pub trait Model<I>: Send + Sync + 'static {
    /// What a call returns.
    type Output: Data;

    /// One input's output.
    fn call(&self, input: I) -> Result<Self::Output, StepError>;

    /// A batch's outputs, one per input in order (a step with batching gets up to
    /// `max_batch_size` inputs at once). By default each input is called alone; override it
    /// where a batch is cheaper than its parts (a model's forward pass).
    fn call_batch(&self, inputs: Vec<I>) -> Vec<Result<Self::Output, StepError>> {
        inputs.into_iter().map(|i| self.call(i)).collect()
    }
}

/// A value as the runtime holds it: shared by the step's consumers.
pub(crate) type Erased = Arc<dyn Any + Send + Sync>;
/// A step's input on its way to the step.
pub(crate) type ErasedInput = Box<dyn Any + Send>;

/// A [`Model`] with its types erased, as the runtime calls it.
pub(crate) trait ErasedModel: Send + Sync {
    fn call_batch(&self, inputs: Vec<ErasedInput>) -> Vec<Result<Erased, StepError>>;
}

struct Typed<M, I>(M, PhantomData<fn(I)>);

impl<M: Model<I>, I: 'static> ErasedModel for Typed<M, I> {
    fn call_batch(&self, inputs: Vec<ErasedInput>) -> Vec<Result<Erased, StepError>> {
        let inputs: Vec<I> = inputs
            .into_iter()
            .map(|i| *i.downcast::<I>().expect("the graph checks input types"))
            .collect();
        let erase = |r: Result<M::Output, StepError>| r.map(|o| Arc::new(o) as Erased);
        if inputs.len() == 1 {
            let input = inputs.into_iter().next().expect("one input");
            return vec![erase(self.0.call(input))];
        }
        self.0.call_batch(inputs).into_iter().map(erase).collect()
    }
}

/// Builds a step's instance for a replica (once per replica, at deploy time; 0 for `Local` and
/// `Tasks`).
pub(crate) type Init = Arc<dyn Fn(usize) -> Result<Arc<dyn ErasedModel>, BoxError> + Send + Sync>;

/// A step: a function or a [`Model`] taking `I` and returning `O`, with its name and config.
/// Nothing runs until the pipeline is deployed.
///
/// ```
/// use air_serve::pipeline::{ExecutionMode, INPUT, Step};
///
/// let add_one = Step::new("add_one", |x: i64| x + 1);
/// let double = Step::new("double", |x: i64| x * 2)
///     .with_mode(ExecutionMode::Replicas { num_replicas: 2 });
/// let pipeline = double.on(add_one.on(INPUT)).deploy()?;
/// assert_eq!(pipeline.call(1)?, 4);
/// # Ok::<(), air_serve::ServeError>(())
/// ```
pub struct Step<I, O> {
    name: String,
    config: StepConfig,
    init: Init,
    _types: PhantomData<fn(I) -> O>,
}

impl<I, O> Clone for Step<I, O> {
    fn clone(&self) -> Self {
        Self {
            name: self.name.clone(),
            config: self.config,
            init: Arc::clone(&self.init),
            _types: PhantomData,
        }
    }
}

impl<I, O> fmt::Debug for Step<I, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Step")
            .field("name", &self.name)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A function as a [`Model`].
struct Func<F>(F);

impl<I, O, E, F> Model<I> for Func<F>
where
    F: Fn(I) -> Result<O, E> + Send + Sync + 'static,
    O: Data,
    E: Into<StepError>,
{
    type Output = O;

    fn call(&self, input: I) -> Result<O, StepError> {
        (self.0)(input).map_err(Into::into)
    }
}

impl<I: Data, O: Data> Step<I, O> {
    /// A step running `f` (Ray's `@pipeline.step` on a function).
    pub fn new<F>(name: &str, f: F) -> Self
    where
        F: Fn(I) -> O + Send + Sync + 'static,
    {
        Self::try_new(name, move |i| Ok::<_, StepError>(f(i)))
    }

    /// A step running a fallible `f`; its error fails the call (see [`StepError`]).
    pub fn try_new<F, E>(name: &str, f: F) -> Self
    where
        F: Fn(I) -> Result<O, E> + Send + Sync + 'static,
        E: Into<StepError> + 'static,
    {
        let model: Arc<dyn ErasedModel> = Arc::new(Typed(Func(f), PhantomData));
        Self::from_init(name, Arc::new(move |_| Ok(Arc::clone(&model))))
    }

    /// A stateful step (Ray's `@pipeline.step` on a class): `init` builds the model at deploy
    /// time, once per replica (once for `Local` and `Tasks`), never before.
    pub fn model<M, F>(name: &str, init: F) -> Self
    where
        M: Model<I, Output = O>,
        F: Fn() -> M + Send + Sync + 'static,
    {
        Self::try_model(name, move || Ok::<_, BoxError>(init()))
    }

    /// As [`model`](Self::model), with a constructor that may fail: its error fails `deploy`
    /// ([`PipelineError::StepInit`]).
    pub fn try_model<M, F, E>(name: &str, init: F) -> Self
    where
        M: Model<I, Output = O>,
        F: Fn() -> Result<M, E> + Send + Sync + 'static,
        E: Into<BoxError>,
    {
        Self::try_model_per_replica(name, move |_| init())
    }

    /// As [`try_model`](Self::try_model), with the constructor told which replica it builds
    /// (`0..num_replicas`; 0 for `Local` and `Tasks`): to put replica *i* on GPU *i*, or give
    /// each its own resources.
    ///
    /// ```
    /// use air_serve::pipeline::{ExecutionMode, INPUT, Model, Step, StepError};
    ///
    /// struct Tagged(usize);
    /// impl Model<u32> for Tagged {
    ///     type Output = usize;
    ///     fn call(&self, _: u32) -> Result<usize, StepError> {
    ///         Ok(self.0)
    ///     }
    /// }
    ///
    /// let step = Step::try_model_per_replica("tagged", |replica| Ok::<_, String>(Tagged(replica)))
    ///     .with_mode(ExecutionMode::Replicas { num_replicas: 2 });
    /// let replica = step.on(INPUT).deploy()?.call(7)?;
    /// assert!(replica < 2);
    /// # Ok::<(), air_serve::ServeError>(())
    /// ```
    pub fn try_model_per_replica<M, F, E>(name: &str, init: F) -> Self
    where
        M: Model<I, Output = O>,
        F: Fn(usize) -> Result<M, E> + Send + Sync + 'static,
        E: Into<BoxError>,
    {
        Self::from_init(
            name,
            Arc::new(move |replica| {
                let model = init(replica).map_err(Into::into)?;
                Ok(Arc::new(Typed(model, PhantomData)) as Arc<dyn ErasedModel>)
            }),
        )
    }

    fn from_init(name: &str, init: Init) -> Self {
        Self {
            name: name.to_owned(),
            config: StepConfig::default(),
            init,
            _types: PhantomData,
        }
    }

    /// Where it runs (default [`ExecutionMode::Local`]).
    pub fn with_mode(mut self, mode: ExecutionMode) -> Self {
        self.config.mode = mode;
        self
    }

    /// Dynamic batching (`Tasks` or `Replicas` only): a worker takes up to `max_batch_size`
    /// queued calls as one [`Model::call_batch`], waiting at most `wait` after the first for
    /// more (Ray's `@serve.batch`; as [`DeploymentConfig::with_batching`](crate::DeploymentConfig::with_batching)).
    pub fn with_batching(mut self, max_batch_size: NonZeroUsize, wait: Duration) -> Self {
        self.config.max_batch_size = max_batch_size.get();
        self.config.batch_wait_timeout = wait;
        self
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The config.
    pub fn config(&self) -> &StepConfig {
        &self.config
    }

    /// A node of this step on `deps`, its input built by `gather` (for graphs built by name).
    pub(crate) fn node_on<In>(&self, deps: Vec<Dep>, gather: Gather) -> Node<In, O> {
        Node::new(NodeInner {
            name: self.name.clone(),
            config: self.config,
            init: Arc::clone(&self.init),
            deps,
            gather,
        })
    }

    /// A node running this step on `args`: [`INPUT`](super::INPUT), a node, a tuple of them
    /// (the step takes a tuple), or a `Vec` of nodes (the step takes a `Vec`). Each call of
    /// `on` is a node of its own, with its own instances.
    pub fn on<In, A>(&self, args: A) -> Node<In, O>
    where
        A: Args<In, Values = I>,
    {
        Node::new(NodeInner {
            name: self.name.clone(),
            config: self.config,
            init: Arc::clone(&self.init),
            deps: args.deps(),
            gather: Box::new(|values| Box::new(A::gather(values)) as ErasedInput),
        })
    }
}
