//! What a step returns when it fails, and what building or deploying a pipeline can get wrong.

use std::fmt;

/// Any error, boxed (what a step's own error becomes).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A step's failure: its cause, and whether the input was at fault (answered 422 over HTTP)
/// or the step itself (500).
///
/// `?` turns any error (or a `&str`/`String` message) into a [`StepError::failed`]; say
/// [`StepError::bad_input`] when the caller sent something the step cannot take (a corrupt
/// image, a value out of range).
///
/// ```
/// use air_serve::pipeline::StepError;
///
/// fn parse(text: String) -> Result<i64, StepError> {
///     text.trim().parse::<i64>().map_err(StepError::bad_input)
/// }
/// assert!(parse("x".into()).unwrap_err().is_bad_input());
/// ```
#[derive(Debug)]
pub struct StepError {
    fault: Fault,
    source: BoxError,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Input,
    Step,
}

impl StepError {
    /// The input was at fault.
    pub fn bad_input(source: impl Into<BoxError>) -> Self {
        Self {
            fault: Fault::Input,
            source: source.into(),
        }
    }

    /// The step failed on an input it should take.
    pub fn failed(source: impl Into<BoxError>) -> Self {
        Self {
            fault: Fault::Step,
            source: source.into(),
        }
    }

    /// Whether the input was at fault.
    pub fn is_bad_input(&self) -> bool {
        self.fault == Fault::Input
    }

    /// The cause.
    pub fn into_source(self) -> BoxError {
        self.source
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.source.fmt(f)
    }
}

impl<E: Into<BoxError>> From<E> for StepError {
    fn from(e: E) -> Self {
        Self::failed(e)
    }
}

/// A pipeline that cannot be deployed: found when [`deploy`](super::Node::deploy) is called,
/// before any constructor runs (or, for [`StepInit`](Self::StepInit), while they run).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// A step takes no input: it is not connected to `INPUT`.
    #[error(
        "step {step:?} has no input, so nothing connects it to INPUT; give it INPUT or at least \
         one upstream node"
    )]
    NotConnected {
        /// The step.
        step: String,
    },
    /// The steps form a cycle (only a graph built by name can: a typed node exists only after
    /// its inputs).
    #[error("steps form a cycle: {}; a pipeline is a DAG from INPUT to its output", cycle.join(" -> "))]
    Cycle {
        /// The steps around the cycle, the first repeated at the end.
        cycle: Vec<String>,
    },
    /// A step names an input that is not a step of the graph (only a graph built by name can).
    #[error("step {step:?} takes {input:?}, which is neither INPUT nor a step; steps: [{}]", known.join(", "))]
    UnknownInput {
        /// The step.
        step: String,
        /// The name it gave.
        input: String,
        /// The steps defined.
        known: Vec<String>,
    },
    /// A step of a graph built by name takes a number of inputs it cannot take.
    #[error("step {step:?} takes {expected}, but {got} inputs were given")]
    Arity {
        /// The step.
        step: String,
        /// What it takes.
        expected: &'static str,
        /// How many it was given.
        got: usize,
    },
    /// A step of a graph built by name does not lead to the output, so it would never run.
    #[error("step {step:?} is not used by the output {output:?}; remove it or consume its value")]
    NotUsed {
        /// The step.
        step: String,
        /// The output step.
        output: String,
    },
    /// Two steps have the same name (in a graph built by name; typed nodes of one step are
    /// told apart with a `#2`, `#3` suffix, and a name clashing even so is this error too).
    #[error("two steps are named {0:?}; give each step its own name")]
    DuplicateName(String),
    /// A step's config is invalid.
    #[error("step {step:?}: invalid {field}: {value}; expected {expected}")]
    InvalidStep {
        /// The step.
        step: String,
        /// The field.
        field: &'static str,
        /// The offending value.
        value: String,
        /// What is accepted.
        expected: String,
    },
    /// A step's constructor failed or panicked at deploy time.
    #[error("step {step:?}: constructing replica {replica} failed: {source}")]
    StepInit {
        /// The step.
        step: String,
        /// The replica (0 for a step with one instance).
        replica: usize,
        /// The constructor's error (a panic's message for a panic).
        #[source]
        source: BoxError,
    },
}
