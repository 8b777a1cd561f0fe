//! One call of a deployed pipeline: which nodes are ready, their values, and who takes them.
//! The caller drives it — running `Local` steps inline and queueing the others, all ready
//! queued steps at once so that independent branches run concurrently — until the output
//! node is done.

use super::{
    graph::Slot,
    node::NodeInner,
    runtime::{Done, Exec, Failure, Outcome, Runtime, run_model},
    step::Erased,
};
use crate::error::{Result, ServeError};

pub(crate) struct Call<'a> {
    runtime: &'a Runtime,
    input: Option<Erased>,
    input_uses_left: usize,
    /// Each node's value, from when it is done until its last consumer takes it.
    values: Vec<Option<Erased>>,
    /// Per node: consumers that have not taken its value yet.
    uses_left: Vec<usize>,
    /// Per node: arguments whose values are not there yet.
    waiting_for: Vec<usize>,
    ready: Vec<usize>,
    output: Option<Erased>,
}

impl<'a> Call<'a> {
    pub(crate) fn new(runtime: &'a Runtime, input: Erased) -> Self {
        let nodes = &runtime.graph.nodes;
        let waiting_for: Vec<usize> = nodes
            .iter()
            .map(|n| n.deps.iter().filter(|d| matches!(d, Slot::Node(_))).count())
            .collect();
        let uses_left = nodes.iter().map(|n| n.consumers.len()).collect();
        // In reverse, so that `pop` runs them in graph order.
        let ready = (0..nodes.len())
            .rev()
            .filter(|&i| waiting_for[i] == 0)
            .collect();
        Self {
            runtime,
            input: Some(input),
            input_uses_left: runtime.graph.input_uses,
            values: vec![None; nodes.len()],
            uses_left,
            waiting_for,
            ready,
            output: None,
        }
    }

    /// Starts every ready node — queued ones first, then `Local` ones inline — until none is
    /// ready. Returns the output once the output node is done.
    pub(crate) fn advance(&mut self, done: &Done) -> Result<Option<Erased>> {
        loop {
            let ready = std::mem::take(&mut self.ready);
            let runtime = self.runtime;
            let mut local = Vec::new();
            for node in ready.into_iter().rev() {
                match &runtime.execs[node] {
                    Exec::Queued(_) => {
                        let input = self.gather(node);
                        runtime.submit(node, input, done)?;
                    }
                    Exec::Local(model) => local.push((node, model)),
                }
            }
            if local.is_empty() {
                return Ok(self.output.take());
            }
            for (node, model) in local {
                let input = self.gather(node);
                let name = &runtime.graph.nodes[node].name;
                let metrics = &runtime.step_metrics[node];
                let outcome = run_model(name, &**model, vec![input], metrics)
                    .pop()
                    .expect("one outcome per input");
                self.complete(node, outcome)?;
            }
        }
    }

    /// Records node `node`'s outcome: its value for its consumers (those now ready join
    /// `ready`), or the call's error.
    pub(crate) fn complete(&mut self, node: usize, outcome: Outcome) -> Result<()> {
        let value = outcome.map_err(|f| self.error(node, f))?;
        let graph = &self.runtime.graph;
        if node == graph.output() {
            // Nothing consumes the output but the caller.
            self.output = Some(value);
            return Ok(());
        }
        for &c in &graph.nodes[node].consumers {
            self.waiting_for[c] -= 1;
            if self.waiting_for[c] == 0 {
                self.ready.push(c);
            }
        }
        self.values[node] = Some(value);
        Ok(())
    }

    /// Node `node`'s input, built from its arguments' values (moved out by their last
    /// consumer).
    fn gather(&mut self, node: usize) -> super::step::ErasedInput {
        let deps = &self.runtime.graph.nodes[node].deps;
        let mut values = Vec::with_capacity(deps.len());
        for dep in deps {
            let value = match *dep {
                Slot::Input => {
                    self.input_uses_left -= 1;
                    if self.input_uses_left == 0 {
                        self.input.take()
                    } else {
                        self.input.clone()
                    }
                }
                Slot::Node(d) => {
                    self.uses_left[d] -= 1;
                    if self.uses_left[d] == 0 {
                        self.values[d].take()
                    } else {
                        self.values[d].clone()
                    }
                }
            };
            values.push(value.expect("a value is there until its last consumer takes it"));
        }
        let inner: &NodeInner = &self.runtime.graph.nodes[node].inner;
        (inner.gather)(values)
    }

    fn error(&self, node: usize, failure: Failure) -> ServeError {
        let pipeline = self.runtime.config.name().to_owned();
        let step = self.runtime.graph.nodes[node].name.clone();
        match failure {
            Failure::Panic(message) => ServeError::StepPanicked {
                pipeline,
                step,
                message,
            },
            Failure::Error(e) if e.is_bad_input() => ServeError::StepRejected {
                pipeline,
                step,
                source: e.into_source(),
            },
            Failure::Error(e) => ServeError::StepFailed {
                pipeline,
                step,
                source: e.into_source(),
            },
        }
    }
}
