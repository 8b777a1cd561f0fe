//! [`ProcessEnv`]: which process of a multi-process run this one is — rank, world size, local
//! rank and the coordinator's address — read from the launcher that started it.

use std::fmt;

use super::hostlist::expand_hostlist;
use crate::TrainError;

/// The port the coordinator listens on when the launcher gives none (torchrun's default).
pub const DEFAULT_COORDINATOR_PORT: u16 = 29500;

/// Names the coordinator port for launchers without one of their own.
pub const PORT_VARIABLE: &str = "AIR_COORDINATOR_PORT";

/// Which launcher started this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Launcher {
    /// torchrun-style variables, set by torchrun or by hand: `RANK`, `WORLD_SIZE`,
    /// `LOCAL_RANK`, `MASTER_ADDR`, `MASTER_PORT`.
    Torchrun,
    /// `srun`: `SLURM_PROCID`, `SLURM_NTASKS`, `SLURM_LOCALID`, the first host of
    /// `SLURM_STEP_NODELIST` (or `SLURM_JOB_NODELIST`, `SLURM_NODELIST`).
    Slurm,
    /// `mpirun` from Open MPI: `OMPI_COMM_WORLD_RANK`, `_SIZE`, `_LOCAL_RANK`; the coordinator
    /// from `MASTER_ADDR` (Open MPI does not say where rank 0 runs).
    OpenMpi,
    /// A Kubernetes Indexed Job: `JOB_COMPLETION_INDEX`, `AIR_WORLD_SIZE` (the Job's
    /// parallelism) and the pod `0` of the Job behind the headless Service `AIR_SERVICE`
    /// (`<job>-0.<service>`, the job name from `AIR_JOB_NAME` or the pod's `HOSTNAME`).
    KubernetesIndexedJob,
}

impl fmt::Display for Launcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Torchrun => "torchrun-style variables",
            Self::Slurm => "Slurm",
            Self::OpenMpi => "Open MPI",
            Self::KubernetesIndexedJob => "a Kubernetes Indexed Job",
        })
    }
}

/// This process's place in a multi-process run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessEnv {
    /// Who set it.
    pub launcher: Launcher,
    /// This process's rank, `0..world_size`.
    pub rank: usize,
    /// The number of processes.
    pub world_size: usize,
    /// This process's index among those on its host.
    pub local_rank: usize,
    /// The host rank 0 listens on.
    pub coordinator_host: String,
    /// The port rank 0 listens on.
    pub coordinator_port: u16,
}

impl ProcessEnv {
    /// Reads this process's environment: `Ok(None)` when no launcher's variables are set (a
    /// single-process run), an error naming the variable when they are set but unusable.
    pub fn from_env() -> Result<Option<Self>, TrainError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) over any variable source (tests, a launcher's dump).
    /// torchrun-style variables win over the launcher's own (a user may set them inside an
    /// allocation); then Slurm, Open MPI and Kubernetes, in that order.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, TrainError> {
        let vars = Vars(&var);
        if vars.has("RANK") || vars.has("WORLD_SIZE") {
            return vars.torchrun().map(Some);
        }
        if vars.has("SLURM_PROCID") {
            return vars.slurm().map(Some);
        }
        if vars.has("OMPI_COMM_WORLD_RANK") {
            return vars.open_mpi().map(Some);
        }
        if vars.has("JOB_COMPLETION_INDEX") {
            return vars.kubernetes().map(Some);
        }
        Ok(None)
    }

    /// `host:port` of the coordinator.
    pub fn coordinator(&self) -> String {
        format!("{}:{}", self.coordinator_host, self.coordinator_port)
    }
}

/// A [`TrainError::LaunchEnv`].
fn launch_error(variable: &str, value: Option<&str>, expected: impl Into<String>) -> TrainError {
    TrainError::LaunchEnv {
        variable: variable.to_owned(),
        value: value.map_or_else(|| "unset".to_owned(), |v| format!("{v:?}")),
        expected: expected.into(),
    }
}

struct Vars<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Vars<'_> {
    fn get(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.trim().is_empty())
    }

    fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    fn required(&self, name: &str, launcher: Launcher) -> Result<String, TrainError> {
        self.get(name)
            .ok_or_else(|| launch_error(name, None, format!("set by {launcher}")))
    }

    fn number(&self, name: &str, launcher: Launcher) -> Result<usize, TrainError> {
        let v = self.required(name, launcher)?;
        v.trim()
            .parse()
            .map_err(|_| launch_error(name, Some(&v), "a non-negative integer"))
    }

    fn optional_number(&self, name: &str, default: usize) -> Result<usize, TrainError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| launch_error(name, Some(&v), "a non-negative integer")),
        }
    }

    fn port(&self, name: &str) -> Result<u16, TrainError> {
        match self.get(name) {
            None => Ok(DEFAULT_COORDINATOR_PORT),
            Some(v) => match v.trim().parse::<u16>() {
                Ok(p) if p > 0 => Ok(p),
                _ => Err(launch_error(name, Some(&v), "a TCP port, 1 to 65535")),
            },
        }
    }

    /// Rank and world size checked together.
    fn ranks(
        &self,
        launcher: Launcher,
        (rank_var, size_var): (&str, &str),
        size: usize,
    ) -> Result<(usize, usize), TrainError> {
        let rank = self.number(rank_var, launcher)?;
        if size == 0 {
            return Err(launch_error(size_var, Some("0"), "at least 1 process"));
        }
        if rank >= size {
            return Err(launch_error(
                rank_var,
                Some(&rank.to_string()),
                format!("a rank below the world size {size} ({size_var})"),
            ));
        }
        Ok((rank, size))
    }

    fn torchrun(&self) -> Result<ProcessEnv, TrainError> {
        let launcher = Launcher::Torchrun;
        let size = self.number("WORLD_SIZE", launcher)?;
        let (rank, world_size) = self.ranks(launcher, ("RANK", "WORLD_SIZE"), size)?;
        Ok(ProcessEnv {
            launcher,
            rank,
            world_size,
            local_rank: self.optional_number("LOCAL_RANK", 0)?,
            coordinator_host: self.required("MASTER_ADDR", launcher)?,
            coordinator_port: self.port("MASTER_PORT")?,
        })
    }

    fn slurm(&self) -> Result<ProcessEnv, TrainError> {
        let launcher = Launcher::Slurm;
        let size = match self.get("SLURM_STEP_NUM_TASKS") {
            Some(_) => self.number("SLURM_STEP_NUM_TASKS", launcher)?,
            None => self.number("SLURM_NTASKS", launcher)?,
        };
        let (rank, world_size) = self.ranks(launcher, ("SLURM_PROCID", "SLURM_NTASKS"), size)?;
        let (name, list) = [
            "SLURM_STEP_NODELIST",
            "SLURM_JOB_NODELIST",
            "SLURM_NODELIST",
        ]
        .iter()
        .find_map(|n| self.get(n).map(|v| (*n, v)))
        .ok_or_else(|| launch_error("SLURM_STEP_NODELIST", None, "set by srun"))?;
        let hosts = expand_hostlist(&list).map_err(|e| launch_error(name, Some(&list), e))?;
        Ok(ProcessEnv {
            launcher,
            rank,
            world_size,
            local_rank: self.optional_number("SLURM_LOCALID", 0)?,
            coordinator_host: hosts[0].clone(),
            coordinator_port: self.port(PORT_VARIABLE)?,
        })
    }

    fn open_mpi(&self) -> Result<ProcessEnv, TrainError> {
        let launcher = Launcher::OpenMpi;
        let size = self.number("OMPI_COMM_WORLD_SIZE", launcher)?;
        let (rank, world_size) = self.ranks(
            launcher,
            ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"),
            size,
        )?;
        let host = self.get("MASTER_ADDR").ok_or_else(|| {
            launch_error(
                "MASTER_ADDR",
                None,
                "the host of rank 0 (Open MPI does not say where it runs): mpirun -x \
                 MASTER_ADDR=<host of rank 0>",
            )
        })?;
        Ok(ProcessEnv {
            launcher,
            rank,
            world_size,
            local_rank: self.optional_number("OMPI_COMM_WORLD_LOCAL_RANK", 0)?,
            coordinator_host: host,
            coordinator_port: match self.get("MASTER_PORT") {
                Some(_) => self.port("MASTER_PORT")?,
                None => self.port(PORT_VARIABLE)?,
            },
        })
    }

    fn kubernetes(&self) -> Result<ProcessEnv, TrainError> {
        let launcher = Launcher::KubernetesIndexedJob;
        let size = self.number("AIR_WORLD_SIZE", launcher)?;
        let (rank, world_size) =
            self.ranks(launcher, ("JOB_COMPLETION_INDEX", "AIR_WORLD_SIZE"), size)?;
        let service = self.required("AIR_SERVICE", launcher)?;
        let job = match self.get("AIR_JOB_NAME") {
            Some(job) => job,
            None => {
                // An Indexed Job's pod is named `<job>-<index>-<suffix>` and its hostname
                // `<job>-<index>`.
                let host = self.required("HOSTNAME", launcher)?;
                let suffix = format!("-{rank}");
                host.strip_suffix(&suffix)
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        launch_error(
                            "HOSTNAME",
                            Some(&host),
                            format!(
                                "an Indexed Job pod's hostname, <job>{suffix}; or set AIR_JOB_NAME"
                            ),
                        )
                    })?
            }
        };
        Ok(ProcessEnv {
            launcher,
            rank,
            world_size,
            local_rank: 0,
            coordinator_host: format!("{job}-0.{service}"),
            coordinator_port: self.port(PORT_VARIABLE)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<Option<ProcessEnv>, TrainError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        ProcessEnv::from_vars(|n| map.get(n).cloned())
    }

    fn err(vars: &[(&str, &str)]) -> String {
        read(vars).unwrap_err().to_string()
    }

    #[test]
    fn no_launcher_is_a_single_process() {
        assert_eq!(read(&[("HOME", "/root")]).unwrap(), None);
    }

    #[test]
    fn each_launcher_is_read() {
        let torchrun = read(&[
            ("RANK", "2"),
            ("WORLD_SIZE", "4"),
            ("LOCAL_RANK", "0"),
            ("MASTER_ADDR", "10.0.0.1"),
            ("MASTER_PORT", "1234"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!((torchrun.rank, torchrun.world_size), (2, 4));
        assert_eq!(torchrun.coordinator(), "10.0.0.1:1234");

        let slurm = read(&[
            ("SLURM_PROCID", "1"),
            ("SLURM_NTASKS", "3"),
            ("SLURM_LOCALID", "1"),
            ("SLURM_STEP_NODELIST", "gpu[07-08],login"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(slurm.launcher, Launcher::Slurm);
        assert_eq!((slurm.rank, slurm.world_size, slurm.local_rank), (1, 3, 1));
        assert_eq!(slurm.coordinator(), "gpu07:29500");

        let mpi = read(&[
            ("OMPI_COMM_WORLD_RANK", "0"),
            ("OMPI_COMM_WORLD_SIZE", "2"),
            ("MASTER_ADDR", "head"),
            ("AIR_COORDINATOR_PORT", "4000"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            (mpi.launcher, mpi.coordinator()),
            (Launcher::OpenMpi, "head:4000".to_owned())
        );

        let k8s = read(&[
            ("JOB_COMPLETION_INDEX", "3"),
            ("AIR_WORLD_SIZE", "4"),
            ("AIR_SERVICE", "train-svc"),
            ("HOSTNAME", "train-mlp-3"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(k8s.rank, 3);
        assert_eq!(k8s.coordinator(), "train-mlp-0.train-svc:29500");

        // Explicit torchrun variables win inside a Slurm allocation.
        let both = read(&[
            ("SLURM_PROCID", "5"),
            ("RANK", "0"),
            ("WORLD_SIZE", "1"),
            ("MASTER_ADDR", "127.0.0.1"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(both.launcher, Launcher::Torchrun);
    }

    #[test]
    fn misconfigurations_name_the_variable() {
        let e = err(&[("RANK", "0"), ("WORLD_SIZE", "2")]);
        assert!(e.contains("MASTER_ADDR") && e.contains("unset"), "{e}");
        let e = err(&[("RANK", "2"), ("WORLD_SIZE", "2"), ("MASTER_ADDR", "h")]);
        assert!(
            e.contains("RANK") && e.contains("below the world size 2"),
            "{e}"
        );
        let e = err(&[("RANK", "x"), ("WORLD_SIZE", "2"), ("MASTER_ADDR", "h")]);
        assert!(e.contains("RANK") && e.contains("\"x\""), "{e}");
        let e = err(&[
            ("RANK", "0"),
            ("WORLD_SIZE", "2"),
            ("MASTER_ADDR", "h"),
            ("MASTER_PORT", "70000"),
        ]);
        assert!(e.contains("MASTER_PORT") && e.contains("1 to 65535"), "{e}");
        let e = err(&[("SLURM_PROCID", "0"), ("SLURM_NTASKS", "2")]);
        assert!(e.contains("SLURM_STEP_NODELIST"), "{e}");
        let e = err(&[
            ("SLURM_PROCID", "0"),
            ("SLURM_NTASKS", "2"),
            ("SLURM_NODELIST", "node[1-"),
        ]);
        assert!(e.contains("SLURM_NODELIST") && e.contains("bracket"), "{e}");
        let e = err(&[("OMPI_COMM_WORLD_RANK", "0"), ("OMPI_COMM_WORLD_SIZE", "2")]);
        assert!(e.contains("MASTER_ADDR") && e.contains("mpirun -x"), "{e}");
        let e = err(&[("JOB_COMPLETION_INDEX", "0"), ("AIR_WORLD_SIZE", "2")]);
        assert!(e.contains("AIR_SERVICE"), "{e}");
        let e = err(&[
            ("JOB_COMPLETION_INDEX", "1"),
            ("AIR_WORLD_SIZE", "2"),
            ("AIR_SERVICE", "s"),
            ("HOSTNAME", "laptop"),
        ]);
        assert!(e.contains("HOSTNAME") && e.contains("AIR_JOB_NAME"), "{e}");
        let e = err(&[("WORLD_SIZE", "0"), ("RANK", "0"), ("MASTER_ADDR", "h")]);
        assert!(e.contains("at least 1 process"), "{e}");
    }
}
