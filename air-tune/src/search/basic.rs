//! [`BasicVariantGenerator`]: grid points × samples, drawn at random (Ray's default search).

use std::sync::Arc;

use air_train::Metrics;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    error::Result,
    space::{Space, variant_rng},
};

use super::{SearchContext, Searcher, Suggestion, restore_err};

/// Random search over every domain and a full walk over the grid (Ray's default searcher).
///
/// The grid's cross product is repeated `num_samples` times; variant *i* draws its random
/// values from its own stream of the experiment seed, so runs with the same seed suggest the
/// same configs in the same order, and a restored experiment continues the sequence.
#[derive(Debug, Default)]
pub struct BasicVariantGenerator {
    space: Option<Arc<Space>>,
    state: BasicState,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct BasicState {
    seed: u64,
    next: usize,
    total: usize,
    grid: usize,
}

impl BasicVariantGenerator {
    /// Random and grid search.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Searcher for BasicVariantGenerator {
    fn name(&self) -> String {
        "BasicVariantGenerator".to_owned()
    }

    fn setup(&mut self, ctx: &SearchContext) -> Result<()> {
        let (_, grid) = ctx.space.grid();
        self.state = BasicState {
            seed: ctx.seed,
            next: 0,
            total: grid * ctx.num_samples,
            grid,
        };
        self.space = Some(ctx.space.clone());
        Ok(())
    }

    fn suggest(&mut self, _trial_id: &str) -> Suggestion {
        let Some(space) = &self.space else {
            return Suggestion::Finished;
        };
        if self.state.next >= self.state.total {
            return Suggestion::Finished;
        }
        let i = self.state.next;
        self.state.next += 1;
        let mut rng = variant_rng(self.state.seed, 0, i as u64);
        Suggestion::Config(space.variant(i % self.state.grid.max(1), &mut rng))
    }

    fn on_trial_complete(&mut self, _: &str, _: Option<&Metrics>, _: bool) {}

    fn save_state(&self) -> Value {
        serde_json::to_value(&self.state).unwrap_or(Value::Null)
    }

    fn restore_state(&mut self, state: &Value) -> Result<()> {
        self.state = serde_json::from_value(state.clone())
            .map_err(|e| restore_err("BasicVariantGenerator", e))?;
        Ok(())
    }

    fn total_trials(&self, space: &Space, num_samples: usize) -> Option<usize> {
        Some(space.grid().1 * num_samples)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::search::test_support::{ctx, drain};
    use crate::{choice, grid_search, space, uniform};

    #[test]
    fn basic_is_seeded_and_resumable() {
        let sp =
            || space!({"a": uniform(0.0, 1.0), "g": grid_search([1, 2]), "c": choice(["x", "y"])});
        let mut a = BasicVariantGenerator::new();
        a.setup(&ctx(sp(), 3, 42)).unwrap();
        let all = drain(&mut a);
        assert_eq!(all.len(), 6);
        assert_eq!(all.iter().filter(|c| c["g"] == json!(1)).count(), 3);
        let mut b = BasicVariantGenerator::new();
        b.setup(&ctx(sp(), 3, 42)).unwrap();
        assert_eq!(drain(&mut b), all);
        // Save after two suggestions, restore into a fresh generator, get the rest.
        let mut c = BasicVariantGenerator::new();
        c.setup(&ctx(sp(), 3, 42)).unwrap();
        let first: Vec<Value> = (0..2)
            .map(|i| match c.suggest(&i.to_string()) {
                Suggestion::Config(v) => v,
                other => panic!("{other:?}"),
            })
            .collect();
        let saved = c.save_state();
        let mut d = BasicVariantGenerator::new();
        d.setup(&ctx(sp(), 3, 42)).unwrap();
        d.restore_state(&saved).unwrap();
        let rest = drain(&mut d);
        assert_eq!([first, rest].concat(), all);
        let mut e = BasicVariantGenerator::new();
        e.setup(&ctx(sp(), 3, 43)).unwrap();
        assert_ne!(drain(&mut e), all);
    }
}
