//! The graph a [`Node`](super::Node) ends: its nodes in topological order, checked before
//! anything is built.

use std::{collections::HashMap, sync::Arc};

use super::{
    error::PipelineError,
    node::{NodeInner, Source},
};

/// Where one argument of a node comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    Input,
    Node(usize),
}

/// One node of a checked graph.
pub(crate) struct GraphNode {
    /// Unique in the graph: a step used by several nodes gets `#2`, `#3`… on its later nodes.
    pub(crate) name: String,
    pub(crate) inner: Arc<NodeInner>,
    pub(crate) deps: Vec<Slot>,
    /// The nodes that take this one's value, once per argument.
    pub(crate) consumers: Vec<usize>,
}

/// The nodes in topological order (every node after its inputs), the output last.
pub(crate) struct Graph {
    pub(crate) nodes: Vec<GraphNode>,
    /// How many arguments take the pipeline's input.
    pub(crate) input_uses: usize,
}

impl Graph {
    /// The graph ending at `output`, checked: every step has an input and a valid config.
    /// (Typed nodes cannot form cycles: a node exists only after its inputs.)
    pub(crate) fn compile(output: &Arc<NodeInner>) -> Result<Self, PipelineError> {
        let order = topological(output);
        let index: HashMap<*const NodeInner, usize> = order
            .iter()
            .enumerate()
            .map(|(i, n)| (Arc::as_ptr(n), i))
            .collect();
        let names = unique_names(&order);
        let mut seen = std::collections::HashSet::new();
        if let Some(dup) = names.iter().find(|n| !seen.insert(n.as_str())) {
            return Err(PipelineError::DuplicateName(dup.clone()));
        }
        let mut nodes: Vec<GraphNode> = order
            .iter()
            .zip(names)
            .map(|(inner, name)| GraphNode {
                name,
                inner: Arc::clone(inner),
                deps: Vec::new(),
                consumers: Vec::new(),
            })
            .collect();
        let mut input_uses = 0;
        for i in 0..nodes.len() {
            let inner = Arc::clone(&nodes[i].inner);
            if inner.deps.is_empty() {
                return Err(PipelineError::NotConnected {
                    step: nodes[i].name.clone(),
                });
            }
            inner.config.validate(&nodes[i].name)?;
            for dep in &inner.deps {
                let slot = match &dep.0 {
                    Source::Input => {
                        input_uses += 1;
                        Slot::Input
                    }
                    Source::Node(n) => {
                        let d = index[&Arc::as_ptr(n)];
                        nodes[d].consumers.push(i);
                        Slot::Node(d)
                    }
                };
                nodes[i].deps.push(slot);
            }
        }
        Ok(Self { nodes, input_uses })
    }

    /// The output node's index.
    pub(crate) fn output(&self) -> usize {
        self.nodes.len() - 1
    }
}

/// The nodes reachable from `output`, each after its inputs (depth-first post-order, inputs
/// in argument order), without recursion so that long chains cannot overflow the stack.
fn topological(output: &Arc<NodeInner>) -> Vec<Arc<NodeInner>> {
    let mut order = Vec::new();
    let mut seen: HashMap<*const NodeInner, ()> = HashMap::new();
    // (node, how many of its deps were visited)
    let mut stack: Vec<(Arc<NodeInner>, usize)> = vec![(Arc::clone(output), 0)];
    seen.insert(Arc::as_ptr(output), ());
    while let Some((node, next)) = stack.pop() {
        let child = node.deps[next..].iter().position(|d| match &d.0 {
            Source::Node(n) => !seen.contains_key(&Arc::as_ptr(n)),
            Source::Input => false,
        });
        match child {
            Some(offset) => {
                let Source::Node(n) = &node.deps[next + offset].0 else {
                    unreachable!("position found a node")
                };
                let n = Arc::clone(n);
                seen.insert(Arc::as_ptr(&n), ());
                stack.push((node, next + offset + 1));
                stack.push((n, 0));
            }
            None => order.push(node),
        }
    }
    order
}

/// Step names made unique: the first node of a step keeps its name, later ones get `#2`, `#3`.
fn unique_names(order: &[Arc<NodeInner>]) -> Vec<String> {
    let mut count: HashMap<&str, usize> = HashMap::new();
    order
        .iter()
        .map(|n| {
            let k = count.entry(n.name.as_str()).or_insert(0);
            *k += 1;
            if *k == 1 {
                n.name.clone()
            } else {
                format!("{}#{k}", n.name)
            }
        })
        .collect()
}
