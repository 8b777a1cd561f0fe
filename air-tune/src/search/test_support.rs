//! Contexts and a drain for the searchers' unit tests.

use std::sync::Arc;

use serde_json::Value;

use super::{SearchContext, Searcher, Suggestion};
use crate::{Mode, space::Space};

pub(crate) fn ctx(space: Space, num_samples: usize, seed: u64) -> SearchContext {
    SearchContext {
        metric: Some("score".into()),
        mode: Some(Mode::Max),
        space: Arc::new(space),
        num_samples,
        seed,
    }
}

pub(crate) fn drain(s: &mut dyn Searcher) -> Vec<Value> {
    let mut out = Vec::new();
    while let Suggestion::Config(c) = s.suggest(&format!("t{}", out.len())) {
        out.push(c);
    }
    out
}
