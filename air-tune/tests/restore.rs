//! An experiment killed with SIGKILL mid-run is restored: finished trials keep their results
//! and are not run again, interrupted ones resume from their latest checkpoint.

use std::num::NonZeroUsize;
use std::{
    io::Write,
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use air_checkpoint::Checkpoint;
use air_train::{RunConfig, Session, TrainError};
use air_tune::{Mode, TrialStatus, TuneConfig, Tuner, space, uniform};
use serde_json::{Value, json};

const CHILD_ENV: &str = "AIR_TUNE_RESTORE_CHILD_DIR";
const ITERS: u64 = 10;
const GATE: u64 = 5;

/// Checkpoints every iteration and logs each start; in the child process, trials 2 and 3 stop
/// making progress after iteration 5 (they wait to be killed).
fn trainable(
    dir: String,
) -> impl Fn(&Value, &mut Session) -> Result<(), TrainError> + Send + Sync + Clone {
    move |config: &Value, session: &mut Session| {
        let start = match session.get_checkpoint() {
            Some(c) => c.get_json::<Value>("state.json")?["iter"]
                .as_u64()
                .unwrap_or(0),
            None => 0,
        };
        let index: u64 = session
            .trial_id()
            .rsplit('_')
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(Path::new(&dir).join("starts.log"))
            .map_err(|e| TrainError::InvalidMetrics {
                metrics: e.to_string(),
                reason: "log".into(),
            })?;
        // One write per line: concurrent trials append whole lines.
        let _ = log.write_all(format!("{index} {start}\n").as_bytes());
        let gated = std::env::var(CHILD_ENV).is_ok() && index >= 2;
        for i in start + 1..=ITERS {
            let mut ck = Checkpoint::new();
            ck.put_json("state.json", &json!({ "iter": i }))?;
            let x = config["x"].as_f64().unwrap_or(0.0);
            session.report(json!({ "loss": x / i as f64 }), Some(ck))?;
            if gated && i == GATE {
                // Wait here until the parent kills this process.
                loop {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
        Ok(())
    }
}

fn tuner(dir: &str) -> Tuner {
    Tuner::new(
        trainable(dir.to_owned()),
        space!({ "x": uniform(0.0, 1.0) }),
    )
    .with_tune_config(
        TuneConfig::new()
            .with_metric("loss", Mode::Min)
            .with_num_samples(NonZeroUsize::new(4).unwrap())
            .with_max_concurrent_trials(NonZeroUsize::new(2).unwrap())
            .with_seed(9),
    )
    .with_run_config(RunConfig::new(dir).with_name("exp"))
}

/// The child: runs the experiment until the parent kills it.
#[test]
fn restore_child_experiment() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let _ = tuner(&dir).fit();
}

fn state(dir: &str) -> Option<Value> {
    let bytes = std::fs::read(Path::new(dir).join("exp/experiment_state.json")).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[test]
fn restore_after_sigkill() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap().to_owned();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "restore_child_experiment",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &dir)
        .spawn()
        .unwrap();
    // Wait (bounded) until trials 0 and 1 are finished and 2 and 3 have checkpointed
    // iteration 5 and wait at the gate.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        assert!(
            Instant::now() < deadline,
            "the child never reached the gate"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the child exited early"
        );
        if let Some(s) = state(&dir) {
            let trials = s["trials"].as_array().cloned().unwrap_or_default();
            let done = trials
                .iter()
                .filter(|t| t["status"] == "TERMINATED")
                .count();
            let gated = trials
                .iter()
                .filter(|t| t["status"] == "RUNNING" && t["checkpoint_dir"] == "checkpoint_000004")
                .count();
            if done == 2 && gated == 2 {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let exp = format!("{dir}/exp");
    assert!(Tuner::can_restore(&exp));
    let grid = Tuner::restore(
        &exp,
        trainable(dir.clone()),
        space!({ "x": uniform(0.0, 1.0) }),
    )
    .unwrap()
    .with_tune_config(
        TuneConfig::new()
            .with_metric("loss", Mode::Min)
            .with_num_samples(NonZeroUsize::new(4).unwrap()),
    )
    .fit()
    .unwrap();
    assert_eq!(grid.len(), 4);
    for r in &grid {
        assert_eq!(r.status, TrialStatus::Terminated, "{}", r.trial_id);
        let iters: Vec<u64> = r
            .history
            .iter()
            .map(|m| m["training_iteration"].as_u64().unwrap())
            .collect();
        assert_eq!(iters, (1..=ITERS).collect::<Vec<_>>(), "{}", r.trial_id);
        let ck = r.checkpoint.as_ref().unwrap();
        assert_eq!(
            ck.get_json::<Value>("state.json").unwrap()["iter"],
            json!(ITERS)
        );
    }
    // Trials 0 and 1 ran once; 2 and 3 started from scratch, then from their checkpoint.
    let log = std::fs::read_to_string(Path::new(&dir).join("starts.log")).unwrap();
    let mut starts: Vec<&str> = log.lines().collect();
    starts.sort();
    assert_eq!(starts, vec!["0 0", "1 0", "2 0", "2 5", "3 0", "3 5"]);
    // The restored experiment is finished: restoring it again (metric and mode come from the
    // saved state) runs nothing and returns the same results.
    let again = Tuner::restore(
        &exp,
        trainable(dir.clone()),
        space!({ "x": uniform(0.0, 1.0) }),
    )
    .unwrap()
    .fit()
    .unwrap();
    assert_eq!(again.num_terminated(), 4);
    assert_eq!(
        again.best_result().unwrap().trial_id,
        grid.best_result().unwrap().trial_id
    );
    assert_eq!(
        std::fs::read_to_string(Path::new(&dir).join("starts.log")).unwrap(),
        log
    );
}
