//! Running beyond one process: which process this is, read from the launcher that started it
//! ([`ProcessEnv`]: Slurm, Open MPI, a Kubernetes Indexed Job or torchrun-style variables),
//! Slurm host lists, and [`TcpCollective`], the collective across processes.

mod hostlist;
mod launch;
mod tcp;
mod wire;

pub use hostlist::expand_hostlist;
pub use launch::{DEFAULT_COORDINATOR_PORT, Launcher, PORT_VARIABLE, ProcessEnv};
pub use tcp::TcpCollective;
