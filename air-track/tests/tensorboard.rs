//! The event files TensorBoardCallback writes for a real sweep, read back by TensorBoard's own
//! Python reader (`pip install tensorboard`; `.ci/run` installs it and sets
//! `AIR_REQUIRE_TENSORBOARD=1`, elsewhere the test is skipped with a note when it is missing).

use std::{num::NonZeroUsize, process::Command};

use air_track::TensorBoardCallback;
use air_train::{RunConfig, Session, TrainError};
use air_tune::{Mode, TuneConfig, Tuner, grid_search, space};
use serde_json::{Value, json};

fn tensorboard_installed() -> bool {
    let found = Command::new("python3")
        .args(["-c", "import tensorboard"])
        .status()
        .is_ok_and(|s| s.success());
    if !found && std::env::var_os("AIR_REQUIRE_TENSORBOARD").is_some() {
        panic!("AIR_REQUIRE_TENSORBOARD is set but python3 cannot import tensorboard");
    }
    if !found {
        eprintln!("skipped: python3 cannot import tensorboard (pip install tensorboard)");
    }
    found
}

#[test]
fn a_sweep_reads_back_through_tensorboard() {
    if !tensorboard_installed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let grid = Tuner::new(
        |c: &Value, s: &mut Session| -> Result<(), TrainError> {
            let lr = c["lr"].as_f64().unwrap();
            if c["opt"] == "bad" {
                s.report(json!({ "loss": 9.0 }), None)?;
                return Err(TrainError::model("the loop", "diverged"));
            }
            for i in 1..=3 {
                s.report(json!({ "loss": lr * f64::from(i), "ok": true, "note": "text" }), None)?;
            }
            Ok(())
        },
        space!({ "lr": grid_search([0.5, 0.25]), "opt": grid_search(["adam", "bad"]), "nested": { "depth": 3 } }),
    )
    .with_tune_config(
        TuneConfig::new()
            .with_metric("loss", Mode::Min)
            .with_max_concurrent_trials(NonZeroUsize::MIN),
    )
    .with_run_config(
        RunConfig::new(dir.path().to_str().unwrap())
            .with_name("sweep")
            .with_callback(TensorBoardCallback::new()),
    )
    .fit()
    .unwrap();
    assert_eq!(grid.len(), 4);
    assert_eq!(grid.num_errors(), 2);

    let exp = dir.path().join("sweep");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/read_tensorboard.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(&exp)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read: Value = serde_json::from_slice(&out.stdout).unwrap();

    for r in &grid {
        let run = &read["runs"][r.path.rsplit('/').next().unwrap()];
        let lr = r.config["lr"].as_f64().unwrap();
        let start = &run["session_start"];
        assert_eq!(start["lr"], json!(lr), "{run}");
        assert_eq!(start["opt"], r.config["opt"]);
        assert_eq!(start["nested.depth"], json!(3.0));
        let loss = &run["scalars"]["loss"];
        if r.error.is_some() {
            assert_eq!(*loss, json!([[1, 9.0]]));
            assert_eq!(run["session_end"], 2, "failure");
        } else {
            let expected: Vec<Value> = (1..=3)
                .map(|i| json!([i, (lr * f64::from(i)) as f32]))
                .collect();
            assert_eq!(*loss, Value::Array(expected));
            assert_eq!(run["scalars"]["ok"], json!([[1, 1.0], [2, 1.0], [3, 1.0]]));
            assert!(run["scalars"].get("note").is_none());
            assert_eq!(run["session_end"], 1, "success");
        }
    }
    let experiment = &read["experiment"];
    assert_eq!(experiment["hparams"]["opt"], json!(["adam", "bad"]));
    assert_eq!(experiment["types"]["lr"], 3);
    assert_eq!(experiment["types"]["opt"], 1);
    for m in ["loss", "ok", "time_total_s"] {
        assert!(
            experiment["metrics"]
                .as_array()
                .unwrap()
                .contains(&json!(m)),
            "{experiment}"
        );
    }
    assert!(read["records"].as_u64().unwrap() > 20);
}
