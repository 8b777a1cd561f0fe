//! [`Node`]s of the graph, [`INPUT`], and what a step can take as its arguments ([`Args`]).

use std::{fmt, marker::PhantomData, sync::Arc};

use super::{
    Pipeline,
    config::PipelineConfig,
    step::{Erased, ErasedInput, Init, StepConfig},
};

/// What flows between steps: any value that is `Clone` (a node feeding several consumers gives
/// each its own; the last one gets the value itself), `Send` and `Sync`.
pub trait Data: Clone + Send + Sync + 'static {}

impl<T: Clone + Send + Sync + 'static> Data for T {}

/// The placeholder for the pipeline's argument (Ray's `pipeline.INPUT`). A step taking
/// `INPUT` takes the pipeline's input type.
pub const INPUT: Input = Input;

/// The type of [`INPUT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Input;

/// Where a step's argument comes from (opaque: see [`Arg`]).
#[derive(Clone)]
pub struct Dep(pub(crate) Source);

impl fmt::Debug for Dep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Source::Input => f.write_str("INPUT"),
            Source::Node(n) => f.write_str(&n.name),
        }
    }
}

#[derive(Clone)]
pub(crate) enum Source {
    Input,
    Node(Arc<NodeInner>),
}

/// A step applied to its arguments: it yields a `T` when the pipeline is called with an `In`.
/// Clone it to feed several consumers (fan-out): each node runs once per call however many
/// consume it. [`deploy`](Self::deploy) the node the pipeline answers with.
///
/// A node feeds only a step taking its type; anything else does not compile:
///
/// ```compile_fail
/// use air_serve::pipeline::{INPUT, Step};
///
/// let to_text = Step::new("to_text", |x: i64| x.to_string());
/// let double = Step::new("double", |x: i64| x * 2);
/// double.on(to_text.on(INPUT)); // a String node into a step taking i64
/// ```
pub struct Node<In, T> {
    pub(crate) inner: Arc<NodeInner>,
    _types: PhantomData<fn(In) -> T>,
}

impl<In, T> Clone for Node<In, T> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            _types: PhantomData,
        }
    }
}

impl<In, T> fmt::Debug for Node<In, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("step", &self.inner.name)
            .field("inputs", &self.inner.deps.len())
            .finish()
    }
}

/// Builds a step's typed input from its arguments' values, in the order of its deps.
pub(crate) type Gather = Box<dyn Fn(Vec<Erased>) -> ErasedInput + Send + Sync>;

/// A node with its types erased: the step, and where its arguments come from.
pub(crate) struct NodeInner {
    pub(crate) name: String,
    pub(crate) config: StepConfig,
    pub(crate) init: Init,
    pub(crate) deps: Vec<Dep>,
    pub(crate) gather: Gather,
}

impl<In, T> Node<In, T> {
    pub(crate) fn new(inner: NodeInner) -> Self {
        Self {
            inner: Arc::new(inner),
            _types: PhantomData,
        }
    }
}

impl<In: Data, T: Data> Node<In, T> {
    /// Deploys the graph ending here with the default [`PipelineConfig`] (named `pipeline`).
    /// See [`deploy_with`](Self::deploy_with).
    pub fn deploy(&self) -> crate::Result<Pipeline<In, T>> {
        self.deploy_with(PipelineConfig::new("pipeline"))
    }

    /// Checks the graph ending here (every step connected to `INPUT`, valid step configs),
    /// then builds every step's instances — constructors run now, once per replica — and
    /// starts their threads. Each call of the returned [`Pipeline`] evaluates each node once.
    pub fn deploy_with(&self, config: PipelineConfig) -> crate::Result<Pipeline<In, T>> {
        Pipeline::deploy(self, config)
    }
}

/// One argument of a step: [`INPUT`] or a [`Node`].
pub trait Arg<In> {
    /// The value it gives the step.
    type Value: Data;
    #[doc(hidden)]
    fn dep(&self) -> Dep;
}

impl<In: Data> Arg<In> for Input {
    type Value = In;
    fn dep(&self) -> Dep {
        Dep(Source::Input)
    }
}

impl<In, T: Data> Arg<In> for Node<In, T> {
    type Value = T;
    fn dep(&self) -> Dep {
        Dep(Source::Node(Arc::clone(&self.inner)))
    }
}

/// What a step can be applied to: one [`Arg`] (the step takes its value), a tuple of up to
/// eight (the step takes a tuple: fan-in of any types), or a `Vec` of nodes of one type (the
/// step takes a `Vec`: Ray's `*args` combiner).
pub trait Args<In> {
    /// What the step takes.
    type Values: Data;
    #[doc(hidden)]
    fn deps(&self) -> Vec<Dep>;
    #[doc(hidden)]
    fn gather(values: Vec<Erased>) -> Self::Values;
}

/// Takes a value out of its shared cell: the value itself when this was its last consumer, a
/// clone otherwise.
pub(crate) fn take<T: Data>(value: Erased) -> T {
    let typed = value
        .downcast::<T>()
        .unwrap_or_else(|_| unreachable!("nodes are typed, so values downcast"));
    Arc::try_unwrap(typed).unwrap_or_else(|shared| (*shared).clone())
}

impl<In: Data> Args<In> for Input {
    type Values = In;
    fn deps(&self) -> Vec<Dep> {
        vec![Dep(Source::Input)]
    }
    fn gather(values: Vec<Erased>) -> In {
        take(values.into_iter().next().expect("one value per dep"))
    }
}

impl<In, T: Data> Args<In> for Node<In, T> {
    type Values = T;
    fn deps(&self) -> Vec<Dep> {
        vec![self.dep()]
    }
    fn gather(values: Vec<Erased>) -> T {
        take(values.into_iter().next().expect("one value per dep"))
    }
}

impl<In, T: Data> Args<In> for Vec<Node<In, T>> {
    type Values = Vec<T>;
    fn deps(&self) -> Vec<Dep> {
        self.iter().map(Arg::dep).collect()
    }
    fn gather(values: Vec<Erased>) -> Vec<T> {
        values.into_iter().map(take).collect()
    }
}

macro_rules! tuple_args {
    ($($name:ident),+) => {
        impl<In, $($name: Arg<In>),+> Args<In> for ($($name,)+) {
            type Values = ($($name::Value,)+);
            #[allow(non_snake_case)]
            fn deps(&self) -> Vec<Dep> {
                let ($($name,)+) = self;
                vec![$($name.dep()),+]
            }
            fn gather(values: Vec<Erased>) -> Self::Values {
                let mut values = values.into_iter();
                ($(take::<$name::Value>(values.next().expect("one value per dep")),)+)
            }
        }
    };
}

tuple_args!(A, B);
tuple_args!(A, B, C);
tuple_args!(A, B, C, D);
tuple_args!(A, B, C, D, E);
tuple_args!(A, B, C, D, E, F);
tuple_args!(A, B, C, D, E, F, G);
tuple_args!(A, B, C, D, E, F, G, H);
