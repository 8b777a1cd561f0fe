//! Trials as processes ([`TrialExecutor::Processes`]): the driver starts each trial as a new
//! process of the same program — a plain child, an `srun` job step under Slurm, or a pod
//! started by `kubectl run -i` — which
//! builds the same [`Tuner`](super::Tuner) and, finding `AIR_TUNE_TRIAL` in its environment,
//! runs that one trial and exits. The trial writes its results and checkpoints to the
//! experiment's storage as a thread's trial does; each report also goes to the driver on
//! standard output, and the driver's scheduler answers on standard input whether it goes on.
//! A process that ends without saying it finished is a failed trial, retried per
//! `FailureConfig` from the newest checkpoint in its directory.

use std::{
    io::{BufRead, BufReader, Write},
    path::PathBuf,
    process::{Command, Stdio},
};

use air_checkpoint::{Checkpoint, StorageOptions};
use air_train::{CheckpointConfig, Metrics, RunDir, TrainError, TrainResult, Trainable, TrialInfo};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::Resources;

/// Where a trial process finds its trial.
pub const TRIAL_VARIABLE: &str = "AIR_TUNE_TRIAL";

/// The start of every protocol line a trial process writes on standard output (other output
/// passes through to the driver's).
const MARK: &str = "\u{1e}air-tune ";

/// Where the trials of an experiment run.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum TrialExecutor {
    /// Threads of this process (the default).
    #[default]
    Threads,
    /// A process per trial.
    Processes(ProcessLauncher),
}

/// How trial processes are started.
#[derive(Debug, Clone)]
pub struct ProcessLauncher {
    engine: Engine,
    program: Option<(PathBuf, Vec<String>)>,
    env: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
enum Engine {
    Local,
    Slurm {
        srun_args: Vec<String>,
    },
    Kubernetes {
        image: String,
        namespace: Option<String>,
        kubectl: PathBuf,
    },
}

/// Tells apart the pods of one driver's trials and their retries.
static LAUNCHES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A pod name from a trial id: a DNS-1123 label, unique per launch.
fn pod_name(trial_id: &str) -> String {
    let launch = LAUNCHES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let id: String = trial_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    format!(
        "air-trial-{}-{launch}-{}",
        id.trim_matches('-'),
        std::process::id()
    )
}

impl ProcessLauncher {
    /// Child processes of this one, on this machine.
    pub fn local() -> Self {
        Self {
            engine: Engine::Local,
            program: None,
            env: Vec::new(),
        }
    }

    /// `srun` job steps (job allocations when the driver runs outside one), one task each
    /// with `--cpus-per-task` set from the trial's CPUs; Slurm places them on its nodes, and
    /// the experiment's storage must be one every node reaches (a shared path or `s3://`).
    pub fn slurm() -> Self {
        Self {
            engine: Engine::Slurm {
                srun_args: Vec::new(),
            },
            program: None,
            env: Vec::new(),
        }
    }

    /// A pod per trial on Kubernetes, started with `kubectl run --rm -i` (whose attached
    /// standard input and output carry the reports and answers) from `image`, which must hold
    /// the program at the path [`with_program`](Self::with_program) gives (by default this
    /// program's path and arguments). The pod asks for the trial's CPUs; the experiment's
    /// storage must be one the pods reach (`s3://`, or a volume in the image's setup).
    pub fn kubernetes(image: &str) -> Self {
        Self {
            engine: Engine::Kubernetes {
                image: image.to_owned(),
                namespace: None,
                kubectl: PathBuf::from("kubectl"),
            },
            program: None,
            env: Vec::new(),
        }
    }

    /// The namespace of the trial pods ([`kubernetes`](Self::kubernetes) only).
    pub fn with_namespace(mut self, namespace: &str) -> Self {
        if let Engine::Kubernetes { namespace: ns, .. } = &mut self.engine {
            *ns = Some(namespace.to_owned());
        }
        self
    }

    /// The `kubectl` to run (a path or a wrapper; [`kubernetes`](Self::kubernetes) only).
    pub fn with_kubectl(mut self, kubectl: impl Into<PathBuf>) -> Self {
        if let Engine::Kubernetes { kubectl: k, .. } = &mut self.engine {
            *k = kubectl.into();
        }
        self
    }

    /// More `srun` options (`--partition=gpu`, `--time=30`); ignored by [`local`](Self::local).
    pub fn with_srun_args<S: AsRef<str>>(mut self, args: &[S]) -> Self {
        if let Engine::Slurm { srun_args } = &mut self.engine {
            srun_args.extend(args.iter().map(|a| a.as_ref().to_owned()));
        }
        self
    }

    /// What a trial process runs: `program` with `args` (by default this program with the
    /// arguments it was started with). It must build the same `Tuner` and call `fit`.
    pub fn with_program<S: AsRef<str>>(mut self, program: impl Into<PathBuf>, args: &[S]) -> Self {
        self.program = Some((
            program.into(),
            args.iter().map(|a| a.as_ref().to_owned()).collect(),
        ));
        self
    }

    /// A variable for every trial process, on top of this process's (which local processes
    /// inherit and `srun` exports; a pod gets only the variables given here).
    pub fn with_env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The command that runs trial `trial` with variables `vars` (and the launcher's).
    fn command(
        &self,
        (trial_name, trial_id): (&str, &str),
        resources: &Resources,
        vars: &[(&str, &str)],
    ) -> Result<Command, String> {
        let (program, args) = match &self.program {
            Some(p) => p.clone(),
            None => (
                std::env::current_exe()
                    .map_err(|e| format!("this program's path is unknown: {e}"))?,
                std::env::args().skip(1).collect(),
            ),
        };
        let cpus = resources
            .amounts()
            .find(|(k, _)| *k == "CPU")
            .map_or(1, |(_, n)| n.ceil().max(1.0) as u64);
        let vars = vars
            .iter()
            .copied()
            .chain(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let mut command = match &self.engine {
            Engine::Local => Command::new(&program),
            Engine::Slurm { srun_args } => {
                let mut c = Command::new("srun");
                c.args(["--exact", "--ntasks=1", "--nodes=1", "--quiet"])
                    .arg(format!("--cpus-per-task={cpus}"))
                    .arg(format!("--job-name={trial_name}"))
                    .args(srun_args)
                    .arg(&program);
                c
            }
            Engine::Kubernetes {
                image,
                namespace,
                kubectl,
            } => {
                let pod = pod_name(trial_id);
                let resources = serde_json::json!({"spec": {"containers": [{
                    "name": pod,
                    "resources": {"requests": {"cpu": cpus.to_string()}},
                }]}});
                let mut c = Command::new(kubectl);
                c.args(["run", &pod, "--restart=Never", "--rm", "-i", "--quiet"])
                    .arg(format!("--image={image}"))
                    .arg(format!("--overrides={resources}"));
                if let Some(ns) = namespace {
                    c.arg(format!("--namespace={ns}"));
                }
                // The pod does not inherit this process's environment: every variable is a flag.
                c.args(vars.map(|(k, v)| format!("--env={k}={v}")))
                    .args(["--command", "--"])
                    .arg(&program)
                    .args(&args);
                return Ok(c);
            }
        };
        command.args(args).envs(vars);
        Ok(command)
    }
}

/// What the driver tells a trial process (the value of [`TRIAL_VARIABLE`]).
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct TrialRequest {
    pub(super) name: String,
    pub(super) id: String,
    pub(super) storage_path: String,
    pub(super) config: Value,
    /// The checkpoint to resume from, as a path or URI.
    pub(super) resume: Option<String>,
    pub(super) checkpoint_config: Option<CheckpointConfig>,
    pub(super) result_files: bool,
}

/// How a trial process ended.
#[derive(Debug, Serialize, Deserialize)]
struct Done {
    error: Option<String>,
    checkpoint: Option<String>,
    best: Vec<(String, Metrics)>,
    path: String,
}

fn location(c: &Checkpoint) -> Option<String> {
    c.uri()
        .map(str::to_owned)
        .or_else(|| c.path().map(|p| p.display().to_string()))
}

/// The trial this process must run, when the driver started it as a trial process.
pub(super) fn trial_request() -> Result<Option<TrialRequest>, TrainError> {
    let Ok(json) = std::env::var(TRIAL_VARIABLE) else {
        return Ok(None);
    };
    serde_json::from_str(&json)
        .map(Some)
        .map_err(|e| TrainError::LaunchEnv {
            variable: TRIAL_VARIABLE.to_owned(),
            value: format!("{} bytes", json.len()),
            expected: format!(
                "the trial a tuner's process executor describes (it set this variable): {e}"
            ),
        })
}

/// Runs the requested trial in this process, talking to the driver over standard output and
/// input, and exits: the rest of the program is the driver's to run.
pub(super) fn run_here(
    trainable: &dyn Trainable,
    request: TrialRequest,
    options: &StorageOptions,
) -> ! {
    let resume = match request
        .resume
        .as_deref()
        .map(|l| Checkpoint::from_uri_with(l, options))
    {
        None => None,
        Some(Ok(c)) => Some(c),
        Some(Err(e)) => {
            say(
                "done",
                &Done {
                    error: Some(format!("the checkpoint to resume from cannot be read: {e}")),
                    checkpoint: None,
                    best: Vec::new(),
                    path: String::new(),
                },
            );
            exit(1)
        }
    };
    let info = TrialInfo::new(&request.name, &request.id)
        .with_storage_path(&request.storage_path)
        .with_on_report(|m: &Metrics| {
            say("report", m);
            // The driver's answer; a closed input (the driver is gone) stops the trial.
            let mut answer = String::new();
            std::io::stdin().lock().read_line(&mut answer).is_ok() && answer.trim() == "go"
        })
        .with_resume_from(resume)
        .with_result_files(request.result_files)
        .with_checkpoint_config(request.checkpoint_config)
        .with_quiet(true);
    let r = trainable.run_trial(&request.config, &info);
    say(
        "done",
        &Done {
            error: r.error.as_ref().map(ToString::to_string),
            checkpoint: r.checkpoint.as_ref().and_then(location),
            best: r
                .best_checkpoints
                .iter()
                .filter_map(|(c, m)| Some((location(c)?, m.clone())))
                .collect(),
            path: r.path,
        },
    );
    exit(0)
}

fn say(kind: &str, value: &impl Serialize) {
    let line = format!(
        "{MARK}{kind} {}\n",
        serde_json::to_string(value).unwrap_or_default()
    );
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(line.as_bytes()).and_then(|()| out.flush());
}

#[allow(clippy::exit, reason = "a trial process ends when its trial does")]
fn exit(code: i32) -> ! {
    std::process::exit(code)
}

/// Starts `request` as a process and runs it to its end: each report goes to `on_result`,
/// whose answer (go on or not) goes back. `Err` with what went wrong when the process could
/// not start or ended without finishing its trial.
pub(super) fn run_process(
    launcher: &ProcessLauncher,
    request: &TrialRequest,
    resources: &Resources,
    options: &StorageOptions,
    mut on_result: impl FnMut(&Metrics) -> bool,
) -> Result<TrainResult, String> {
    let json = serde_json::to_string(request).map_err(|e| e.to_string())?;
    let mut command = launcher.command(
        (&request.name, &request.id),
        resources,
        &[(TRIAL_VARIABLE, &json)],
    )?;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{command:?} could not be started: {e}"))?;
    let (Some(mut input), Some(output)) = (child.stdin.take(), child.stdout.take()) else {
        return Err("the trial process has no standard input or output".to_owned());
    };
    let mut done: Option<Done> = None;
    for line in BufReader::new(output).lines() {
        let Ok(line) = line else { break };
        let Some(message) = line.strip_prefix(MARK) else {
            println!("{line}");
            continue;
        };
        let (kind, body) = message.split_once(' ').unwrap_or((message, ""));
        match kind {
            "report" => {
                let go_on = serde_json::from_str::<Metrics>(body)
                    .map(|m| on_result(&m))
                    .unwrap_or(false);
                let answer: &[u8] = if go_on { b"go\n" } else { b"stop\n" };
                // A process that died before reading the answer is found below.
                let _ = input.write_all(answer).and_then(|()| input.flush());
            }
            "done" => done = serde_json::from_str(body).ok(),
            _ => {}
        }
    }
    drop(input);
    let status = child.wait().map_err(|e| e.to_string())?;
    let Some(done) = done else {
        return Err(format!(
            "the trial process ended ({status}) without finishing its trial: it crashed, was \
             killed, or its node was lost"
        ));
    };
    let open = |l: &str| Checkpoint::from_uri_with(l, options).ok();
    let mut r = TrainResult::failed(
        TrainError::TrialProcess(String::new()),
        request.config.clone(),
    );
    r.error = done.error.map(TrainError::TrialProcess);
    r.checkpoint = done.checkpoint.as_deref().and_then(open);
    r.best_checkpoints = done
        .best
        .iter()
        .filter_map(|(l, m)| Some((open(l)?, m.clone())))
        .collect();
    r.path = done.path;
    Ok(r)
}

/// The newest complete checkpoint in a trial's directory (after its process was lost).
pub(super) fn newest_checkpoint(path: &str, options: &StorageOptions) -> Option<Checkpoint> {
    RunDir::at(path, options).ok()?.newest_checkpoint()
}

/// Where a trial process resumes from: the checkpoint's own location, or (a checkpoint held
/// in memory, such as PBT's copy of another trial's) a copy saved in the trial's directory.
pub(super) fn resume_location(
    checkpoint: &Checkpoint,
    trial_path: &str,
    options: &StorageOptions,
) -> Result<String, TrainError> {
    if let Some(l) = location(checkpoint) {
        return Ok(l);
    }
    let dir = RunDir::at(trial_path, options)?;
    let saved = dir.save_checkpoint("resume_from", checkpoint)?;
    location(&saved).ok_or_else(|| {
        TrainError::TrialProcess(format!(
            "the resume checkpoint saved in {trial_path} has no location"
        ))
    })
}
