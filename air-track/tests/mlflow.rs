//! MlflowCallback against a real tracking server (`mlflow server` from PyPI, started here on
//! 127.0.0.1 with a SQLite store and proxied artifacts), everything read back through
//! MLflow's REST API; and against no server at all. `.ci/run` installs MLflow and sets
//! `AIR_REQUIRE_MLFLOW=1`; elsewhere the server test is skipped with a note when MLflow is
//! missing.

use std::{
    net::TcpListener,
    num::NonZeroUsize,
    path::Path,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::Duration,
};

use air_checkpoint::Checkpoint;
use air_track::{Artifacts, MlflowConfig};
use air_train::{Callback, RunConfig, Session, TrainError, TrialContext};
use air_tune::{Mode, ResultGrid, TuneConfig, Tuner, grid_search, space};
use reqwest::blocking::Client;
use serde_json::{Value, json};

/// A tracking server on a free port, stopped on drop.
struct Server {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_server() -> Option<Server> {
    let found = Command::new("python3")
        .args(["-c", "import mlflow.server"])
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var_os("AIR_REQUIRE_MLFLOW").is_none(),
            "AIR_REQUIRE_MLFLOW is set but python3 cannot import mlflow"
        );
        eprintln!("skipped: python3 cannot import mlflow (pip install mlflow)");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
    let child = Command::new("python3")
        .args([
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--workers",
            "1",
        ])
        .args(["--port", &port.to_string()])
        .arg("--backend-store-uri")
        .arg(format!(
            "sqlite:///{}",
            dir.path().join("mlflow.db").display()
        ))
        .arg("--artifacts-destination")
        .arg(dir.path().join("artifacts"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut server = Server {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    };
    // Ready when /health answers (a SQLite store is migrated on first start); a server that
    // exits fails the test with its log.
    let http = Client::new();
    for _ in 0..600 {
        if let Some(status) = server.child.try_wait().unwrap() {
            let log = std::fs::read_to_string(server._dir.path().join("server.log"));
            panic!("mlflow server exited with {status}: {log:?}");
        }
        if http
            .get(format!("{}/health", server.url))
            .send()
            .is_ok_and(|r| r.status().is_success())
        {
            return Some(server);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("mlflow server did not answer /health at {}", server.url);
}

/// MLflow's REST API, for reading back.
struct Api<'a> {
    http: Client,
    server: &'a Server,
}

impl Api<'_> {
    fn get(&self, endpoint: &str, query: &[(&str, &str)]) -> Value {
        let r = self
            .http
            .get(format!("{}/api/2.0/mlflow/{endpoint}", self.server.url))
            .query(query)
            .send()
            .unwrap();
        assert!(r.status().is_success(), "{endpoint}: {}", r.text().unwrap());
        r.json().unwrap()
    }

    fn runs(&self, experiment: &str) -> Vec<Value> {
        let id = self.get(
            "experiments/get-by-name",
            &[("experiment_name", experiment)],
        )["experiment"]["experiment_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let r: Value = self
            .http
            .post(format!("{}/api/2.0/mlflow/runs/search", self.server.url))
            .json(&json!({ "experiment_ids": [id], "max_results": 100 }))
            .send()
            .unwrap()
            .json()
            .unwrap();
        r["runs"].as_array().cloned().unwrap_or_default()
    }

    /// `[[step, value], ...]` of a run's metric, by step.
    fn history(&self, run_id: &str, key: &str) -> Vec<(i64, Value)> {
        let v = self.get(
            "metrics/get-history",
            &[("run_id", run_id), ("metric_key", key)],
        );
        let mut points: Vec<(i64, Value)> = v["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["step"].as_i64().unwrap(), m["value"].clone()))
            .collect();
        points.sort_by_key(|p| p.0);
        points
    }

    fn artifact(&self, artifact_uri: &str, path: &str) -> Vec<u8> {
        let root = artifact_uri.strip_prefix("mlflow-artifacts:").unwrap();
        let r = self
            .http
            .get(format!(
                "{}/api/2.0/mlflow-artifacts/artifacts{root}/{path}",
                self.server.url
            ))
            .send()
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.bytes().unwrap().to_vec()
    }
}

fn tag<'a>(run: &'a Value, key: &str) -> Option<&'a str> {
    run["data"]["tags"]
        .as_array()?
        .iter()
        .find(|t| t["key"] == key)?["value"]
        .as_str()
}

fn param<'a>(run: &'a Value, key: &str) -> Option<&'a str> {
    run["data"]["params"]
        .as_array()?
        .iter()
        .find(|t| t["key"] == key)?["value"]
        .as_str()
}

/// Four trials: two report three results (a null and a nested value among them) and save a
/// checkpoint; two fail after one result.
fn sweep(storage: &Path, callback: Arc<dyn Callback>) -> ResultGrid {
    Tuner::new(
        |c: &Value, s: &mut Session| -> Result<(), TrainError> {
            let lr = c["lr"].as_f64().unwrap();
            if c["opt"] == "bad" {
                s.report(json!({ "loss": 9.0 }), None)?;
                return Err(TrainError::model("the loop", "diverged"));
            }
            for i in 1..=3 {
                let metrics = json!({
                    "loss": lr * f64::from(i),
                    "val": { "acc": 0.5 + f64::from(i) / 10.0 },
                    // A NaN is null in JSON results: no point at that step.
                    "gnorm": if i == 2 { Value::Null } else { json!(1.0) },
                    "ok": true,
                });
                let checkpoint = (i == 3).then(|| {
                    Checkpoint::from_dict([("model.bin", format!("weights lr={lr}").into_bytes())])
                        .unwrap()
                });
                s.report(metrics, checkpoint)?;
            }
            Ok(())
        },
        space!({ "lr": grid_search([0.5, 0.25]), "opt": grid_search(["adam", "bad"]), "nested": { "depth": 3 } }),
    )
    .with_tune_config(
        TuneConfig::new()
            .with_metric("loss", Mode::Min)
            .with_max_concurrent_trials(NonZeroUsize::new(2).unwrap()),
    )
    .with_run_config(
        RunConfig::new(storage.to_str().unwrap())
            .with_name("sweep")
            .with_shared_callback(callback),
    )
    .fit()
    .unwrap()
}

#[test]
fn a_sweep_reads_back_through_mlflows_api_and_a_resumed_trial_continues_its_run() {
    let Some(server) = start_server() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = MlflowConfig::new()
        .with_tracking_uri(&server.url)
        .with_experiment_name("air-sweep")
        .with_tag("team", "air")
        .with_artifacts(Artifacts::Checkpoints);
    let callback = Arc::new(config.build().unwrap());
    let grid = sweep(dir.path(), callback.clone());
    assert_eq!((grid.len(), grid.num_errors()), (4, 2));
    // 2 × (start, 3 results, checkpoint, end) + 2 × (start, result, end), all taken.
    let delivery = callback.delivery();
    assert_eq!(
        (delivery.sent, delivery.failed, delivery.queued),
        (18, 0, 0)
    );

    let api = Api {
        http: Client::new(),
        server: &server,
    };
    let runs = api.runs("air-sweep");
    assert_eq!(runs.len(), 4);
    for r in &grid {
        let run = runs
            .iter()
            .find(|run| tag(run, "air.trial_id") == Some(r.trial_id.as_str()))
            .unwrap_or_else(|| panic!("no run for trial {}", r.trial_id));
        let id = run["info"]["run_id"].as_str().unwrap();
        let lr = r.config["lr"].as_f64().unwrap();
        assert_eq!(tag(run, "team"), Some("air"));
        assert_eq!(tag(run, "air.trial_path"), Some(r.path.as_str()));
        assert_eq!(param(run, "lr"), Some(lr.to_string().as_str()));
        assert_eq!(param(run, "opt"), r.config["opt"].as_str());
        assert_eq!(param(run, "nested.depth"), Some("3"));
        if r.error.is_some() {
            assert_eq!(run["info"]["status"], "FAILED");
            assert!(tag(run, "air.error").unwrap().contains("diverged"));
            assert_eq!(api.history(id, "loss"), [(1, json!(9.0))]);
            continue;
        }
        assert_eq!(run["info"]["status"], "FINISHED");
        let expected: Vec<(i64, Value)> = (1..=3).map(|i| (i, json!(lr * i as f64))).collect();
        assert_eq!(api.history(id, "loss"), expected);
        assert_eq!(api.history(id, "gnorm"), [(1, json!(1.0)), (3, json!(1.0))]);
        assert_eq!(
            api.history(id, "val/acc"),
            [(1, json!(0.6)), (2, json!(0.7)), (3, json!(0.8))]
        );
        assert_eq!(
            api.history(id, "ok"),
            [(1, json!(1.0)), (2, json!(1.0)), (3, json!(1.0))]
        );
        // The checkpoint: its location as a tag, its files (manifest included) as artifacts.
        let saved = r.checkpoint.as_ref().unwrap().path().unwrap();
        assert_eq!(tag(run, "air.checkpoint"), Some(saved.to_str().unwrap()));
        let name = saved.file_name().unwrap().to_str().unwrap();
        let uri = run["info"]["artifact_uri"].as_str().unwrap();
        let listed = api.get(
            "artifacts/list",
            &[("run_id", id), ("path", &format!("checkpoints/{name}"))],
        );
        let mut files: Vec<&str> = listed["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["path"].as_str().unwrap())
            .collect();
        files.sort_unstable();
        assert_eq!(
            files,
            [
                format!("checkpoints/{name}/{}", air_checkpoint::MANIFEST_NAME),
                format!("checkpoints/{name}/model.bin")
            ]
        );
        assert_eq!(
            api.artifact(uri, &format!("checkpoints/{name}/model.bin")),
            format!("weights lr={lr}").into_bytes()
        );
    }

    // The first trial resumes in "another process" (a fresh callback): its run continues.
    let first = grid.iter().find(|r| r.error.is_none()).unwrap();
    let later = config.build().unwrap();
    let experiment = dir.path().join("sweep");
    let trial = TrialContext::new(
        &first.trial_id,
        first.path.rsplit('/').next().unwrap(),
        &first.path,
        experiment.to_str().unwrap(),
        first.config.clone(),
    );
    later.on_trial_start(&trial, &first.history).unwrap();
    let mut fourth = first.metrics.clone();
    fourth.insert("training_iteration".into(), json!(4));
    fourth.insert("loss".into(), json!(0.01));
    later.on_trial_result(&trial, &fourth).unwrap();
    later.on_trial_complete(&trial, Some(&fourth)).unwrap();
    later
        .on_experiment_end(experiment.to_str().unwrap())
        .unwrap();
    assert_eq!(later.delivery().sent, 3);
    let runs = api.runs("air-sweep");
    assert_eq!(runs.len(), 4, "no second run for the resumed trial");
    let run = runs
        .iter()
        .find(|run| tag(run, "air.trial_id") == Some(first.trial_id.as_str()))
        .unwrap();
    let loss = api.history(run["info"]["run_id"].as_str().unwrap(), "loss");
    assert_eq!(loss.len(), 4);
    assert_eq!(loss[3], (4, json!(0.01)));
    assert_eq!(run["info"]["status"], "FINISHED");
}

#[test]
fn with_no_server_the_sweep_goes_on_and_every_result_stays_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on.
    let url = format!("http://127.0.0.1:{}", free_port());
    let callback = MlflowConfig::new()
        .with_tracking_uri(url)
        .with_artifacts(Artifacts::Checkpoints)
        .build()
        .unwrap();
    let callback = Arc::new(callback);
    let grid = sweep(dir.path(), callback.clone());
    assert_eq!((grid.len(), grid.num_errors()), (4, 2));
    let delivery = callback.delivery();
    assert_eq!(
        (delivery.sent, delivery.failed, delivery.queued),
        (0, 18, 0)
    );
    for r in &grid {
        let lines = std::fs::read_to_string(Path::new(&r.path).join("result.json")).unwrap();
        let expected = if r.error.is_some() { 1 } else { 3 };
        assert_eq!(lines.lines().count(), expected, "{}", r.path);
    }
}

#[test]
fn the_callback_is_made_and_dropped_inside_an_async_runtime() {
    // reqwest's blocking client panics when made or dropped on a runtime's thread; the
    // callback keeps it on its own thread.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let callback = MlflowConfig::new()
            .with_tracking_uri(format!("http://127.0.0.1:{}", free_port()))
            .build()
            .unwrap();
        assert_eq!(callback.delivery().queued, 0);
        drop(callback);
    });
}
