//! The ensemble flattened for prediction: every tree's nodes in one array of 16-byte nodes
//! (threshold or leaf value, feature with the missing direction in its top bit, children), and
//! rows pushed through the trees in blocks of 64. A block's rows walk a tree together, level by
//! level, for as many levels as the tree is deep: a leaf is its own child, so a row that
//! reached one stays there, and the loop has no branch that depends on the data. The 64 walks
//! are independent, so the CPU overlaps their loads.

use rayon::prelude::*;

use super::model::{GbdtModel, in_category_set};

/// The bit of `feature` that sends missing values left.
const DEFAULT_LEFT: u32 = 1 << 31;
/// The bit of `feature` that marks a categorical split (`value`'s bits index `sets`).
const CATEGORICAL: u32 = 1 << 30;
const FEATURE: u32 = !(DEFAULT_LEFT | CATEGORICAL);
/// Rows pushed through one tree before the next.
const BLOCK: usize = 64;
/// Rows per parallel task.
const CHUNK: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq)]
struct Root {
    node: u32,
    group: u32,
    depth: u32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Node {
    /// The threshold (`value < threshold` goes left), or a leaf's value.
    value: f32,
    feature: u32,
    left: u32,
    right: u32,
}

/// A [`GbdtModel`]'s trees in prediction form.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Forest {
    nodes: Vec<Node>,
    /// Each tree's root node, the output group it adds to, and its depth.
    roots: Vec<Root>,
    /// The category sets of categorical splits (codes that go right, sorted).
    sets: Vec<Vec<u32>>,
    base_margin: Vec<f32>,
    num_feature: usize,
}

impl Forest {
    /// Flattens a validated model.
    pub(crate) fn new(model: &GbdtModel) -> Self {
        let mut nodes = Vec::with_capacity(model.trees.iter().map(|t| t.len()).sum());
        let mut roots = Vec::with_capacity(model.trees.len());
        let mut sets = Vec::new();
        for (tree, &group) in model.trees.iter().zip(&model.tree_group) {
            let start = nodes.len() as u32;
            roots.push(Root {
                node: start,
                group: group as u32,
                depth: tree_depth(tree) as u32,
            });
            for i in 0..tree.len() {
                nodes.push(if tree.left[i] < 0 {
                    let me = start + i as u32;
                    Node {
                        value: tree.leaf_value[i],
                        feature: 0,
                        left: me,
                        right: me,
                    }
                } else {
                    let missing = if tree.default_left[i] {
                        DEFAULT_LEFT
                    } else {
                        0
                    };
                    let (value, kind) = match tree.category_set(i) {
                        Some(set) => {
                            sets.push(set.to_vec());
                            (f32::from_bits(sets.len() as u32 - 1), CATEGORICAL)
                        }
                        None => (tree.threshold[i], 0),
                    };
                    Node {
                        value,
                        feature: tree.feature[i] | missing | kind,
                        left: start + tree.left[i] as u32,
                        right: start + tree.right[i] as u32,
                    }
                });
            }
        }
        Self {
            nodes,
            roots,
            sets,
            base_margin: model.base_margin.clone(),
            num_feature: model.num_feature,
        }
    }

    /// Whether a row with value `v` goes left at split `nd`.
    #[inline(always)]
    fn left<const CATEGORIES: bool>(&self, nd: &Node, v: f32) -> bool {
        if CATEGORIES && nd.feature & CATEGORICAL != 0 {
            if v.is_nan() {
                nd.feature & DEFAULT_LEFT != 0
            } else {
                !in_category_set(&self.sets[nd.value.to_bits() as usize], v)
            }
        } else {
            // `|` and `&`, not `||` and `&&`: no branch for the compiler to keep.
            (v < nd.value) | (v.is_nan() & (nd.feature & DEFAULT_LEFT != 0))
        }
    }

    /// Margins of the rows of a row-major block of the model's width (checked by the
    /// caller), into `out` (`rows × groups`). `CATEGORIES`: whether any split is categorical
    /// (without, the walk has no branch on the split kind).
    fn block<const CATEGORIES: bool>(&self, data: &[f32], out: &mut [f32]) {
        let (d, groups) = (self.num_feature.max(1), self.base_margin.len());
        let n = out.len() / groups;
        for o in out.chunks_exact_mut(groups) {
            o.copy_from_slice(&self.base_margin);
        }
        let mut at = [0u32; BLOCK];
        let at = &mut at[..n];
        for root in &self.roots {
            at.fill(root.node);
            for _ in 0..root.depth {
                for (node, row) in at.iter_mut().zip(data.chunks_exact(d)) {
                    let nd = self.nodes[*node as usize];
                    let v = row[(nd.feature & FEATURE) as usize];
                    // A select the compiler turns into a conditional move (the test has no
                    // short-circuit left): which way a row goes is data, and a mispredicted
                    // branch costs more than the whole step.
                    *node = if self.left::<CATEGORIES>(&nd, v) {
                        nd.left
                    } else {
                        nd.right
                    };
                }
            }
            for (o, node) in out.chunks_exact_mut(groups).zip(at.iter()) {
                o[root.group as usize] += self.nodes[*node as usize].value;
            }
        }
    }

    /// Margins (`rows × groups`) of a row-major `rows × num_feature` matrix.
    pub(crate) fn predict_margin(&self, data: &[f32], rows: usize) -> Vec<f32> {
        let (d, groups) = (self.num_feature.max(1), self.base_margin.len());
        let mut out = vec![0.0f32; rows * groups];
        let run = |out: &mut [f32], data: &[f32]| {
            for (o, x) in out.chunks_mut(BLOCK * groups).zip(data.chunks(BLOCK * d)) {
                if self.sets.is_empty() {
                    self.block::<false>(x, o);
                } else {
                    self.block::<true>(x, o);
                }
            }
        };
        if rows <= CHUNK {
            // One chunk: on the caller's thread. Handing it to rayon's pool would add two thread
            // hops to every small request a server predicts.
            run(&mut out, data);
        } else {
            out.par_chunks_mut(CHUNK * groups)
                .zip(data.par_chunks(CHUNK * d))
                .for_each(|(o, x)| run(o, x));
        }
        out
    }
}

/// The number of splits on the longest path from the root.
fn tree_depth(tree: &super::model::Tree) -> usize {
    let mut depth = vec![0usize; tree.len()];
    let mut max = 0;
    // Children come after their parents (checked by validation), so one forward pass works.
    for i in 0..tree.len() {
        if tree.left[i] >= 0 {
            for c in [tree.left[i], tree.right[i]] {
                depth[c as usize] = depth[i] + 1;
                max = max.max(depth[i] + 1);
            }
        }
    }
    max
}
