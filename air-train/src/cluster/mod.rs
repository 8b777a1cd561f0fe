//! Running beyond one process: which process this is, read from the launcher that started it
//! ([`ProcessEnv`]: Slurm, Open MPI, a Kubernetes Indexed Job or torchrun-style variables),
//! Slurm host lists, [`TcpCollective`], the collective across processes, and (feature
//! `kubernetes`) the manifests that run a training Job or a serving Deployment on Kubernetes.

mod hostlist;
#[cfg(feature = "kubernetes")]
pub mod kubernetes;
mod launch;
mod tcp;
mod wire;

pub use hostlist::expand_hostlist;
pub use launch::{DEFAULT_COORDINATOR_PORT, Launcher, PORT_VARIABLE, ProcessEnv};
pub use tcp::TcpCollective;
