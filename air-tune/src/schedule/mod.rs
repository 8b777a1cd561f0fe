//! Trial schedulers: they look at results and return a [`Decision`]; the tuner carries it out.

mod asha;
mod fifo;
mod hyperband;
mod median;
mod pbt;
mod scheduler;
#[cfg(test)]
mod test_support;

pub use asha::Asha;
pub use fifo::Fifo;
pub use hyperband::HyperBand;
pub use median::MedianStoppingRule;
pub use pbt::{ExploreFn, Pbt};
pub use scheduler::{Decision, TrialScheduler};
pub(crate) use scheduler::{metric_mode, percentile, time_and_metric_setters, time_of};
