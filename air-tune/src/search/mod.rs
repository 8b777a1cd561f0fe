//! Searchers: what config the next trial gets. [`BasicVariantGenerator`] (random and grid),
//! [`TpeSearch`], [`BayesOptSearch`], and the wrappers [`ConcurrencyLimiter`] and [`Repeater`].

mod basic;
mod bayesopt;
mod limiter;
mod repeater;
mod searcher;
#[cfg(test)]
mod test_support;
mod tpe;

pub use basic::BasicVariantGenerator;
pub use bayesopt::{Acquisition, BayesOptSearch};
pub use limiter::ConcurrencyLimiter;
pub use repeater::Repeater;
pub use searcher::{SearchContext, Searcher, Suggestion};
pub(crate) use searcher::{config_from, numeric_dims, restore_err, score_of};
pub use tpe::TpeSearch;
