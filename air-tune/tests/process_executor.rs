//! Trials as processes: the same experiment run on threads, as local child processes, as
//! Slurm job steps (when a Slurm controller answers) and as pods through `kubectl run -i` (a
//! stand-in `kubectl`: no cluster is reachable here) finds the same best result, with ASHA
//! stopping the same weak trials; a trial process killed with SIGKILL is retried from its
//! newest checkpoint and finishes; a driver killed with SIGKILL mid-experiment is restored and
//! its trial processes resume from their checkpoints.

#[path = "../../air-train/tests/common/slurm.rs"]
mod slurm;

use std::{num::NonZeroUsize, path::Path};

use air_checkpoint::Checkpoint;
use air_train::{FailureConfig, MaxFailures, RunConfig, Session, TrainError};
use air_tune::{
    Asha, Mode, ProcessLauncher, ResultGrid, TrialExecutor, TrialStatus, TuneConfig, Tuner,
    grid_search, space,
};
use serde_json::{Value, json};

/// Nine iterations of `score = x · i`, resuming from the checkpoint's iteration. The trial
/// with `x = kill_x` (from `AIR_TEST_KILL_X`) kills its own process with SIGKILL at iteration
/// 3 of its first attempt (a marker file in its directory says it has been done).
fn objective(config: &Value, session: &mut Session) -> Result<(), TrainError> {
    let x = config["x"].as_f64().unwrap();
    let start = match session.get_checkpoint() {
        Some(c) => c.get_json::<u64>("iter")?,
        None => 0,
    };
    let kill = std::env::var("AIR_TEST_KILL_X")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        == Some(x);
    for i in start + 1..=9 {
        let mut c = Checkpoint::new();
        c.put_json("iter", &i)?;
        session.report(json!({"score": x * i as f64}), Some(c))?;
        let marker =
            || Path::new(&std::env::var("AIR_TEST_STORAGE").unwrap()).join(format!("killed-{x}"));
        if std::env::var("AIR_TEST_GATE").is_ok() && i == 5 {
            // Wait for the driver to be killed, then end (orphaned trial processes must not
            // outlive the experiment).
            let driver = std::os::unix::process::parent_id();
            while std::os::unix::process::parent_id() == driver {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            return Ok(());
        }
        if kill && i == 3 && !marker().exists() {
            std::fs::write(marker(), b"").unwrap();
            let pid = std::process::id().to_string();
            std::process::Command::new("kill")
                .args(["-9", &pid])
                .status()
                .unwrap();
            std::thread::sleep(std::time::Duration::from_secs(60));
        }
    }
    Ok(())
}

fn tune_config(executor: TrialExecutor) -> TuneConfig {
    TuneConfig::new()
        .with_metric("score", Mode::Max)
        .with_max_concurrent_trials(NonZeroUsize::new(2).unwrap())
        .with_seed(7)
        .with_executor(executor)
}

fn tuner(storage: &str, name: &str, executor: TrialExecutor) -> Tuner {
    Tuner::new(
        objective,
        space!({ "x": grid_search([0.5, 1.0, 3.0, 0.25, 2.0, 1.5]) }),
    )
    .with_tune_config(
        tune_config(executor).with_scheduler(
            Asha::new()
                .with_max_t(9.0)
                .with_grace_period(1.0)
                .with_reduction_factor(3.0),
        ),
    )
    .with_run_config(
        RunConfig::new(storage)
            .with_name(name)
            .with_failure_config(FailureConfig::new(MaxFailures::Limited(1))),
    )
}

/// The trial processes: the same tuner, whose `fit` runs the trial it is given and exits.
#[test]
#[ignore = "a trial process of the tests below"]
fn child_trial() {
    // The trial's storage comes from the driver.
    tuner("unused", "unused", TrialExecutor::Threads)
        .fit()
        .unwrap();
    unreachable!("a trial process exits when its trial ends");
}

fn processes(launcher: ProcessLauncher) -> TrialExecutor {
    TrialExecutor::Processes(launcher.with_program(
        std::env::current_exe().unwrap(),
        &["--ignored", "--exact", "child_trial", "--nocapture"],
    ))
}

/// (best x, best score, iterations per trial in grid order).
fn summary(grid: &ResultGrid) -> (Value, Value, Vec<u64>) {
    assert_eq!(grid.len(), 6);
    assert_eq!(grid.num_errors(), 0, "{:?}", grid.errors());
    let best = grid.best_result().unwrap();
    let iterations = grid
        .iter()
        .map(|r| r.metrics["training_iteration"].as_u64().unwrap())
        .collect();
    (
        best.config["x"].clone(),
        best.metrics["score"].clone(),
        iterations,
    )
}

fn check_against_threads(executor: TrialExecutor) {
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().display().to_string();
    let threads = summary(
        &tuner(&storage, "threads", TrialExecutor::Threads)
            .fit()
            .unwrap(),
    );
    let grid = tuner(&storage, "processes", executor).fit().unwrap();
    let processes = summary(&grid);
    assert_eq!((&processes.0, &processes.1), (&threads.0, &threads.1));
    assert_eq!(processes.0, json!(3.0));
    assert_eq!(processes.1, json!(27.0));
    // ASHA stopped some trials early in both runs; the best one ran to max_t.
    for (label, iterations) in [("threads", &threads.2), ("processes", &processes.2)] {
        assert!(iterations.iter().any(|i| *i < 9), "{label}: {iterations:?}");
    }
    // Each trial process wrote its results to the experiment's storage.
    for r in grid.iter() {
        let lines = std::fs::read_to_string(Path::new(&r.path).join("result.json")).unwrap();
        assert_eq!(
            lines.lines().count() as u64,
            r.metrics["training_iteration"].as_u64().unwrap()
        );
    }
}

#[test]
fn local_trial_processes_find_the_threads_best() {
    check_against_threads(processes(ProcessLauncher::local()));
}

#[test]
fn slurm_job_steps_find_the_threads_best() {
    if !slurm::available() {
        return;
    }
    check_against_threads(processes(
        ProcessLauncher::slurm().with_srun_args(&["--time=5"]),
    ));
}

/// A stand-in for `kubectl run NAME ... -i --env=K=V ... --command -- PROGRAM ARGS` (no cluster
/// is reachable here): it logs its arguments, checks the flags it knows, and runs the program
/// with the variables the flags give, its standard input and output attached as `kubectl -i`
/// attaches the pod's.
const FAKE_KUBECTL: &str = r#"#!/bin/sh
echo "$*" >> "$(dirname "$0")/calls.log"
[ "$1" = run ] || { echo "fake kubectl: $1" >&2; exit 2; }
shift 2
while [ "$1" != "--" ]; do
  case "$1" in
    --env=*) export "${1#--env=}" ;;
    --image=*|--overrides=*|--restart=Never|--rm|-i|--quiet|--command|--namespace=*) ;;
    *) echo "fake kubectl: unexpected $1" >&2; exit 2 ;;
  esac
  shift
done
shift
exec "$@"
"#;

#[test]
fn kubernetes_pods_find_the_threads_best() {
    use std::os::unix::fs::PermissionsExt;
    let bin = tempfile::tempdir().unwrap();
    let kubectl = bin.path().join("kubectl");
    std::fs::write(&kubectl, FAKE_KUBECTL).unwrap();
    std::fs::set_permissions(&kubectl, std::fs::Permissions::from_mode(0o755)).unwrap();
    let launcher = ProcessLauncher::kubernetes("registry.example/air:1")
        .with_namespace("ml")
        .with_kubectl(&kubectl);
    check_against_threads(processes(launcher));
    let calls = std::fs::read_to_string(bin.path().join("calls.log")).unwrap();
    assert_eq!(calls.lines().count(), 6, "a pod per trial:\n{calls}");
    for call in calls.lines() {
        let pod = call.split(' ').nth(1).unwrap();
        assert!(
            pod.len() <= 63
                && pod
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{pod} is not a DNS-1123 label"
        );
        assert!(call.contains("--image=registry.example/air:1") && call.contains("--namespace=ml"));
        assert!(call.contains(r#""requests":{"cpu":"1"}"#), "{call}");
        assert!(call.contains("--env=AIR_TUNE_TRIAL={"), "{call}");
    }
}

#[test]
fn a_killed_trial_process_is_retried_from_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().display().to_string();
    let launcher = ProcessLauncher::local()
        .with_env("AIR_TEST_KILL_X", "3")
        .with_env("AIR_TEST_STORAGE", &storage);
    let grid = tuner(&storage, "killed", processes(launcher))
        .fit()
        .unwrap();
    assert!(
        dir.path().join("killed-3").exists(),
        "the trial was killed once"
    );
    let (best_x, best_score, _) = summary(&grid);
    assert_eq!((best_x, best_score), (json!(3.0), json!(27.0)));
    let killed = grid.iter().find(|r| r.config["x"] == json!(3.0)).unwrap();
    assert_eq!(killed.status, TrialStatus::Terminated);
    // Resumed from iteration 3's checkpoint: every iteration reported once.
    let lines = std::fs::read_to_string(Path::new(&killed.path).join("result.json")).unwrap();
    let iterations: Vec<u64> = lines
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["training_iteration"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(iterations, (1..=9).collect::<Vec<_>>());
}

// ----- the driver killed, the experiment restored -----

fn restore_space() -> air_tune::Space {
    space!({ "x": grid_search([0.5, 1.0, 3.0, 2.0]) })
}

/// The driver of the restore test: every trial process waits at iteration 5 until the driver
/// is killed.
#[test]
#[ignore = "the driver process of the restore test"]
fn child_driver() {
    let storage = std::env::var("AIR_TEST_STORAGE").unwrap();
    let launcher = ProcessLauncher::local().with_env("AIR_TEST_GATE", "1");
    let _ = Tuner::new(objective, restore_space())
        .with_tune_config(tune_config(processes(launcher)))
        .with_run_config(RunConfig::new(storage.as_str()).with_name("restored"))
        .fit();
}

fn state(path: &Path) -> Option<Value> {
    serde_json::from_slice(&std::fs::read(path.join("experiment_state.json")).ok()?).ok()
}

#[test]
fn a_killed_driver_is_restored_and_its_trials_resume_in_processes() {
    let dir = tempfile::tempdir().unwrap();
    let exp = dir.path().join("restored");
    let mut driver = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "child_driver", "--nocapture"])
        .env("AIR_TEST_STORAGE", dir.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait (bounded) until two trial processes have checkpointed iteration 5 and wait.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the trials never reached the gate"
        );
        assert!(
            driver.try_wait().unwrap().is_none(),
            "the driver exited early"
        );
        let gated = state(&exp).map_or(0, |s| {
            s["trials"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|t| t["status"] == "RUNNING" && t["checkpoint_dir"] == "checkpoint_000004")
                .count()
        });
        if gated == 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    driver.kill().unwrap(); // SIGKILL
    driver.wait().unwrap();

    let exp = exp.display().to_string();
    assert!(Tuner::can_restore(&exp));
    let grid = Tuner::restore(&exp, objective, restore_space())
        .unwrap()
        .with_tune_config(
            tune_config(processes(ProcessLauncher::local())).with_num_samples(NonZeroUsize::MIN),
        )
        .fit()
        .unwrap();
    assert_eq!(grid.len(), 4);
    for r in grid.iter() {
        assert_eq!(r.status, TrialStatus::Terminated, "{}", r.trial_id);
        let iterations: Vec<u64> = r
            .history
            .iter()
            .map(|m| m["training_iteration"].as_u64().unwrap())
            .collect();
        assert_eq!(iterations, (1..=9).collect::<Vec<_>>(), "{}", r.trial_id);
    }
    let best = grid.best_result().unwrap();
    assert_eq!(
        (&best.config["x"], &best.metrics["score"]),
        (&json!(3.0), &json!(27.0))
    );
}
