//! [`Fifo`]: every trial to completion, in order (the default).

use air_train::Metrics;

use crate::{
    Mode,
    error::Result,
    trial::{Trial, TrialTable},
};

use super::{Decision, TrialScheduler};

/// Runs every trial to completion, in order (Ray's `FIFOScheduler`, the default).
#[derive(Debug, Default, Clone, Copy)]
pub struct Fifo;

impl TrialScheduler for Fifo {
    fn name(&self) -> String {
        "FIFOScheduler".to_owned()
    }

    fn setup(&mut self, _: Option<&str>, _: Option<Mode>, _: u64) -> Result<()> {
        Ok(())
    }

    fn on_trial_result(&mut self, _: &TrialTable, _: &Trial, _: &Metrics) -> Decision {
        Decision::Continue
    }
}
