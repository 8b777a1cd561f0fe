//! [`GraphBuilder`]: a pipeline assembled by step names, for graphs chosen at run time (read
//! from a config file, picked by a user): every step takes and gives [`Value`]s, and the
//! mistakes a typed graph cannot make — unknown names, cycles, duplicates — are
//! [`PipelineError`]s.

use std::collections::HashMap;

use super::{
    error::PipelineError,
    node::{Dep, Gather, Node, Source, take},
    step::{ErasedInput, Step},
    value::Value,
};

/// The name that stands for the pipeline's input in [`GraphBuilder`].
pub const INPUT_NAME: &str = "INPUT";

/// How a named step takes its inputs.
enum Kind {
    /// Exactly one input.
    One(Step<Value, Value>),
    /// One or more, as a `Vec` in the order given.
    Many(Step<Vec<Value>, Value>),
}

struct Entry {
    kind: Kind,
    inputs: Vec<String>,
}

impl Entry {
    fn name(&self) -> &str {
        match &self.kind {
            Kind::One(s) => s.name(),
            Kind::Many(s) => s.name(),
        }
    }
}

/// A pipeline of [`Value`] steps wired by name; [`build`](Self::build) checks it and gives the
/// output [`Node`] to deploy.
///
/// ```
/// use air_serve::pipeline::{GraphBuilder, Step, Value};
/// use serde_json::json;
///
/// let shout = Step::new("shout", |v: Value| Value::from(json!(v.into_json().to_string().to_uppercase())));
/// let join = Step::new("join", |vs: Vec<Value>| Value::from(json!(vs.len())));
/// let output = GraphBuilder::new()
///     .step(shout, ["INPUT"])
///     .combiner(join, ["shout", "INPUT"])
///     .build()?;
/// assert_eq!(output.deploy()?.call(json!("hi").into())?.into_json(), json!(2));
/// # Ok::<(), air_serve::ServeError>(())
/// ```
#[derive(Default)]
pub struct GraphBuilder {
    entries: Vec<Entry>,
    output: Option<String>,
}

impl std::fmt::Debug for GraphBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphBuilder")
            .field(
                "steps",
                &self
                    .entries
                    .iter()
                    .map(|e| (e.name(), &e.inputs))
                    .collect::<Vec<_>>(),
            )
            .field("output", &self.output)
            .finish()
    }
}

fn names<S: AsRef<str>>(inputs: impl IntoIterator<Item = S>) -> Vec<String> {
    inputs.into_iter().map(|s| s.as_ref().to_owned()).collect()
}

impl GraphBuilder {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a step taking exactly one input: [`INPUT_NAME`] or another step's name.
    pub fn step<S: AsRef<str>>(
        mut self,
        step: Step<Value, Value>,
        inputs: impl IntoIterator<Item = S>,
    ) -> Self {
        self.entries.push(Entry {
            kind: Kind::One(step),
            inputs: names(inputs),
        });
        self
    }

    /// Adds a step taking one or more inputs (steps' names and [`INPUT_NAME`], in any mix) as
    /// a `Vec` in the order given.
    pub fn combiner<S: AsRef<str>>(
        mut self,
        step: Step<Vec<Value>, Value>,
        inputs: impl IntoIterator<Item = S>,
    ) -> Self {
        self.entries.push(Entry {
            kind: Kind::Many(step),
            inputs: names(inputs),
        });
        self
    }

    /// The step whose value the pipeline returns (default: the last step added).
    pub fn output(mut self, step: &str) -> Self {
        self.output = Some(step.to_owned());
        self
    }

    /// Checks the graph — names unique and known, one input for a one-input step, at least one
    /// for a combiner, no cycle, every step used by the output — and gives its output node.
    pub fn build(self) -> Result<Node<Value, Value>, PipelineError> {
        let mut index = HashMap::new();
        for (i, e) in self.entries.iter().enumerate() {
            if e.name() == INPUT_NAME || index.insert(e.name().to_owned(), i).is_some() {
                return Err(PipelineError::DuplicateName(e.name().to_owned()));
            }
        }
        let known: Vec<String> = self.entries.iter().map(|e| e.name().to_owned()).collect();
        for e in &self.entries {
            check_arity(e)?;
            if let Some(unknown) = e
                .inputs
                .iter()
                .find(|i| *i != INPUT_NAME && !index.contains_key(*i))
            {
                return Err(PipelineError::UnknownInput {
                    step: e.name().to_owned(),
                    input: unknown.clone(),
                    known,
                });
            }
        }
        let output =
            match self.output.clone() {
                Some(name) => *index
                    .get(&name)
                    .ok_or_else(|| PipelineError::UnknownInput {
                        step: "(the output)".to_owned(),
                        input: name.clone(),
                        known: known.clone(),
                    })?,
                None => self.entries.len().checked_sub(1).ok_or_else(|| {
                    PipelineError::NotConnected {
                        step: "(the output of an empty graph)".to_owned(),
                    }
                })?,
            };
        let mut built: Vec<Option<Node<Value, Value>>> = vec![None; self.entries.len()];
        let mut visiting = Vec::new();
        self.resolve(output, &index, &mut built, &mut visiting)?;
        if let Some(unused) = built.iter().position(Option::is_none) {
            return Err(PipelineError::NotUsed {
                step: known[unused].clone(),
                output: known[output].clone(),
            });
        }
        Ok(built[output].take().expect("resolved"))
    }

    /// Builds entry `i`'s node after its inputs' (depth-first; `visiting` is the path, for
    /// reporting a cycle).
    fn resolve(
        &self,
        i: usize,
        index: &HashMap<String, usize>,
        built: &mut Vec<Option<Node<Value, Value>>>,
        visiting: &mut Vec<usize>,
    ) -> Result<(), PipelineError> {
        if built[i].is_some() {
            return Ok(());
        }
        if let Some(at) = visiting.iter().position(|&v| v == i) {
            let mut cycle: Vec<String> = visiting[at..]
                .iter()
                .map(|&v| self.entries[v].name().to_owned())
                .collect();
            cycle.push(self.entries[i].name().to_owned());
            return Err(PipelineError::Cycle { cycle });
        }
        visiting.push(i);
        let entry = &self.entries[i];
        let mut deps = Vec::with_capacity(entry.inputs.len());
        for input in &entry.inputs {
            if input == INPUT_NAME {
                deps.push(Dep(Source::Input));
                continue;
            }
            let j = index[input];
            self.resolve(j, index, built, visiting)?;
            let node = built[j].as_ref().expect("resolved");
            deps.push(Dep(Source::Node(std::sync::Arc::clone(&node.inner))));
        }
        visiting.pop();
        let node = match &entry.kind {
            Kind::One(step) => step.node_on(deps, one()),
            Kind::Many(step) => step.node_on(deps, many()),
        };
        built[i] = Some(node);
        Ok(())
    }
}

fn check_arity(e: &Entry) -> Result<(), PipelineError> {
    let (ok, expected) = match e.kind {
        Kind::One(_) => (
            e.inputs.len() == 1,
            "exactly one input (use a combiner for more)",
        ),
        Kind::Many(_) => (!e.inputs.is_empty(), "at least one input"),
    };
    if ok {
        return Ok(());
    }
    if e.inputs.is_empty() {
        return Err(PipelineError::NotConnected {
            step: e.name().to_owned(),
        });
    }
    Err(PipelineError::Arity {
        step: e.name().to_owned(),
        expected,
        got: e.inputs.len(),
    })
}

fn one() -> Gather {
    Box::new(|values| {
        let value = values.into_iter().next().expect("one value per dep");
        Box::new(take::<Value>(value)) as ErasedInput
    })
}

fn many() -> Gather {
    Box::new(|values| {
        Box::new(
            values
                .into_iter()
                .map(take::<Value>)
                .collect::<Vec<Value>>(),
        )
    })
}
