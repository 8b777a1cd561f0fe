//! Building blocks of on-policy learning from rollouts: generalised advantage estimation and
//! the running observation statistics PPO normalises with. (PPO itself is not built yet.)

mod gae;
mod running_stats;

pub use gae::{Step, gae};
pub use running_stats::RunningMeanStd;
