//! The `air` binary run as a subprocess: each subcommand's happy path checked against the
//! library doing the same in-process, and its errors (bad arguments, malformed configs, a
//! missing or corrupted checkpoint, an unknown model kind), and a SIGTERM while a request is in
//! flight.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::Duration,
};

use air_checkpoint::Checkpoint;
use air_data::{Dataset, polars::prelude::*};
use air_train::{FromCheckpoint, Predictor, gbdt::GbdtPredictor};
use serde_json::Value;

const CANCER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../examples/data/breast_cancer.csv"
);

fn air(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_air"))
        .args(args)
        .env("AIR_LOG", "warn")
        .output()
        .expect("the air binary runs")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Runs `air` expecting success; its stdout.
fn ok(args: &[&str]) -> String {
    let o = air(args);
    let (out, err) = text(&o);
    assert!(o.status.success(), "air {args:?} failed: {err}\n{out}");
    out
}

/// Runs `air` expecting exit status `code`; its stderr.
fn fails(args: &[&str], code: i32) -> String {
    let o = air(args);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(code), "air {args:?}: {err}\n{out}");
    err
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

fn experiment(dir: &Path, tune: &str) -> PathBuf {
    let path = dir.join("experiment.yaml");
    write(
        &path,
        &format!(
            "trainer:\n  kind: gbdt\n  label_column: target\n  datasets:\n    train: {CANCER}\n  \
             params:\n    objective: BinaryLogistic\n    max_depth: 3\n    eval_metric: \
             [logloss]\n  num_boost_round: 5\nrun:\n  storage_path: {}\n  name: cancer\n{tune}",
            dir.join("results").display()
        ),
    );
    path
}

/// Trains the breast-cancer model through `air train`; the checkpoint directory.
fn trained(dir: &Path) -> String {
    let config = experiment(dir, "");
    let out = ok(&["train", "--config", config.to_str().unwrap()]);
    assert!(
        out.contains("final metrics") && out.contains("train-logloss"),
        "{out}"
    );
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix("checkpoint: "))
        .expect("the checkpoint is printed");
    line.to_owned()
}

fn cancer_rows() -> DataFrame {
    Dataset::read_csv(CANCER).unwrap().to_polars().unwrap()
}

fn in_process(checkpoint: &str, rows: DataFrame) -> Vec<f64> {
    let c = Checkpoint::from_uri(checkpoint).unwrap();
    let p = GbdtPredictor::from_checkpoint(&c).unwrap();
    let out = p.predict(rows).unwrap();
    let col = out
        .column("predictions")
        .unwrap()
        .cast(&DataType::Float64)
        .unwrap();
    col.f64().unwrap().into_no_null_iter().collect()
}

#[test]
fn train_inspect_verify_copy_and_predict() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = trained(dir.path());

    // inspect: the files, the kind, the model, the metadata.
    let out = ok(&["checkpoint", "inspect", &ckpt]);
    for needle in [
        "model.json",
        "predictor kind: gbdt",
        "trees: 5",
        "label_column: target",
    ] {
        assert!(out.contains(needle), "no {needle:?} in:\n{out}");
    }
    let json: Value =
        serde_json::from_str(&ok(&["checkpoint", "inspect", "--json", &ckpt])).unwrap();
    assert_eq!(json["kind"], "gbdt");
    assert_eq!(json["model"]["rounds"], 5);
    assert_eq!(json["model"]["features"], 30);
    assert!(
        json["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["name"] == "model.json")
    );

    // verify, then copy to a file:// URI and verify the copy.
    assert!(ok(&["checkpoint", "verify", &ckpt]).starts_with("ok: "));
    let copy = dir.path().join("copy");
    let copy_uri = format!("file://{}", copy.display());
    ok(&["checkpoint", "copy", &ckpt, &copy_uri]);
    ok(&["checkpoint", "verify", copy.to_str().unwrap()]);
    let a = Checkpoint::from_uri(&ckpt).unwrap().to_dict().unwrap();
    let b = Checkpoint::from_uri(copy.to_str().unwrap())
        .unwrap()
        .to_dict()
        .unwrap();
    assert_eq!(a, b);

    // predict: the file equals the library's predictions, with the kept column.
    let output = dir.path().join("out/predictions.parquet");
    let o = air(&[
        "predict",
        &ckpt,
        CANCER,
        output.to_str().unwrap(),
        "--batch-size",
        "100",
        "--workers",
        "2",
        "--keep",
        "target",
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("wrote 569 predictions"), "{out}");
    // stderr is a pipe here: no progress bar, nothing at all at AIR_LOG=warn.
    assert_eq!(err, "");
    let written = Dataset::read_parquet(output.to_str().unwrap())
        .unwrap()
        .to_polars()
        .unwrap();
    assert_eq!(written.get_column_names(), ["predictions", "target"]);
    let got: Vec<f64> = written
        .column("predictions")
        .unwrap()
        .cast(&DataType::Float64)
        .unwrap()
        .f64()
        .unwrap()
        .into_no_null_iter()
        .collect();
    assert_eq!(got, in_process(&ckpt, cancer_rows()));
    // CSV out, from a directory in.
    let input_dir = dir.path().join("input");
    std::fs::create_dir_all(&input_dir).unwrap();
    std::fs::copy(CANCER, input_dir.join("part-0.csv")).unwrap();
    let csv = dir.path().join("predictions.csv");
    ok(&[
        "predict",
        &ckpt,
        input_dir.to_str().unwrap(),
        csv.to_str().unwrap(),
    ]);
    let back = Dataset::read_csv(csv.to_str().unwrap())
        .unwrap()
        .to_polars()
        .unwrap();
    assert_eq!(back.height(), 569);

    // A file that no longer matches its manifest fails verification, naming it.
    let model = Path::new(&ckpt).join("model.json");
    let mut bytes = std::fs::read(&model).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&model, bytes).unwrap();
    let err = fails(&["checkpoint", "verify", &ckpt], 1);
    assert!(err.contains("model.json"), "{err}");
}

#[test]
fn bad_arguments_and_missing_checkpoints_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere");
    let missing = missing.to_str().unwrap();
    let err = fails(&["checkpoint", "inspect", missing], 1);
    assert!(err.contains("nowhere"), "{err}");
    let err = fails(&["predict", missing, CANCER, "/tmp/x.parquet"], 1);
    assert!(err.contains("nowhere"), "{err}");
    let err = fails(&["serve", missing, "--port", "0"], 1);
    assert!(err.contains("nowhere"), "{err}");
    // clap's usage errors: exit 2.
    let err = fails(&["serve"], 2);
    assert!(
        err.contains("CHECKPOINT") || err.contains("--config"),
        "{err}"
    );
    let err = fails(&["predict", "--batch-size", "0", "a", "b", "c"], 2);
    assert!(err.contains("batch-size"), "{err}");
    fails(&["frobnicate"], 2);
    // An output whose format cannot be told.
    let err = fails(&["predict", missing, CANCER, "/tmp/predictions"], 2);
    assert!(err.contains("OUTPUT") && err.contains(".parquet"), "{err}");
    // A bad log filter is named.
    let o = Command::new(env!("CARGO_BIN_EXE_air"))
        .args(["kinds"])
        .env("AIR_LOG", "info,[[[")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("AIR_LOG"));
    assert_eq!(ok(&["kinds"]), "gbdt\nrl\nsklearn\ntransformers\n");
}

#[test]
fn unknown_and_unbuildable_kinds_list_the_known_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Checkpoint::from_dict([("weights.bin", "x")]).unwrap();
    c.set_metadata_value(air_train::PREDICTOR_KIND_KEY, "onnx")
        .unwrap();
    let onnx = dir.path().join("onnx");
    c.to_directory(&onnx).unwrap();
    let err = fails(&["serve", onnx.to_str().unwrap(), "--port", "0"], 1);
    assert!(
        err.contains("\"onnx\"") && err.contains("gbdt, rl, sklearn, transformers"),
        "{err}"
    );
    // A burn model: known, but its architecture is the user's type.
    let burn = dir.path().join("burn");
    Checkpoint::from_dict([("model_config.json", "{}"), ("model.mpk", "x")])
        .unwrap()
        .to_directory(&burn)
        .unwrap();
    let err = fails(
        &["predict", burn.to_str().unwrap(), CANCER, "/tmp/o.parquet"],
        1,
    );
    assert!(
        err.contains("\"burn\"") && err.contains("main_with"),
        "{err}"
    );
    // Neither a kind nor a model file.
    let bare = dir.path().join("bare");
    Checkpoint::from_dict([("notes.txt", "x")])
        .unwrap()
        .to_directory(&bare)
        .unwrap();
    let err = fails(
        &["predict", bare.to_str().unwrap(), CANCER, "/tmp/o.parquet"],
        1,
    );
    assert!(
        err.contains("--kind") && err.contains("model.json (gbdt)"),
        "{err}"
    );
}

/// A running `air serve`, killed if the test fails.
struct Serving {
    child: Child,
    url: String,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(args: &[&str]) -> Serving {
    let mut child = Command::new(env!("CARGO_BIN_EXE_air"))
        .arg("serve")
        .args(args)
        .env("AIR_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut first = String::new();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    stdout.read_line(&mut first).unwrap();
    let url = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_owned();
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = stdout.read_to_string(&mut rest);
    });
    Serving { child, url }
}

/// One HTTP/1.1 request; (status, body).
fn http(url: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let addr = url.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \
         {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let status = answer[9..12].parse().unwrap();
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn records(rows: &DataFrame, n: usize) -> String {
    let mut head = rows.head(Some(n)).drop("target").unwrap();
    let mut buf = Vec::new();
    JsonWriter::new(&mut buf)
        .with_json_format(JsonFormat::Json)
        .finish(&mut head)
        .unwrap();
    String::from_utf8(buf).unwrap()
}

fn predictions(body: &str) -> Vec<f64> {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| r["predictions"].as_f64().unwrap())
        .collect()
}

#[test]
fn serves_a_checkpoint_and_a_config_of_deployments() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = trained(dir.path());
    let rows = cancer_rows();
    let expected = in_process(&ckpt, rows.drop("target").unwrap().head(Some(3)));

    let server = serve(&[&ckpt, "--port", "0", "--replicas", "2"]);
    let (status, body) = http(&server.url, "POST", "/", &records(&rows, 3));
    assert_eq!(status, 200, "{body}");
    let got = predictions(&body);
    assert_eq!(got.len(), 3);
    for (g, e) in got.iter().zip(&expected) {
        assert!((g - e).abs() < 1e-6, "{got:?} vs {expected:?}");
    }
    // A malformed request is a 4xx; the server stays up.
    assert_eq!(http(&server.url, "POST", "/", "{not json").0, 400);
    assert_eq!(http(&server.url, "GET", "/-/healthz", "").0, 200);
    drop(server);

    // Two deployments and two ensembles from a config file, each at its route. An ensemble of
    // copies of one model answers what the model does (mean and vote alike); `all` answers
    // every model's columns under its name.
    let config = dir.path().join("serve.yaml");
    write(
        &config,
        &format!(
            "http_options:\n  port: 0\ndeployments:\n  - name: plain\n    checkpoint: {ckpt}\n  - \
             name: batched\n    checkpoint: {ckpt}\n    route_prefix: /v1/batched\n    \
             max_batch_size: 8\n    batch_wait_timeout_s: 0.001\npipelines:\n  - name: mean\n    \
             combine: mean\n    models:\n      - {{name: a, checkpoint: {ckpt}, num_replicas: \
             2}}\n      - {{name: b, checkpoint: {ckpt}, max_batch_size: 4}}\n  - name: every\n    \
             route_prefix: /v1/every\n    combine: all\n    models:\n      - {{name: a, \
             checkpoint: {ckpt}}}\n      - {{name: b, checkpoint: {ckpt}}}\n"
        ),
    );
    let server = serve(&["--config", config.to_str().unwrap()]);
    for route in ["/plain", "/v1/batched", "/mean"] {
        let (status, body) = http(&server.url, "POST", route, &records(&rows, 3));
        assert_eq!(status, 200, "{route}: {body}");
        let got = predictions(&body);
        assert_eq!(got.len(), 3);
        for (g, e) in got.iter().zip(&expected) {
            assert!((g - e).abs() < 1e-6, "{route}: {got:?} vs {expected:?}");
        }
    }
    let (status, body) = http(&server.url, "POST", "/v1/every", &records(&rows, 2));
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    for record in answer.as_array().unwrap() {
        assert_eq!(record["a.predictions"], record["b.predictions"], "{body}");
    }
    assert_eq!(answer.as_array().unwrap().len(), 2);
    // A malformed request to a pipeline is a 4xx too.
    assert_eq!(http(&server.url, "POST", "/mean", "{not json").0, 400);
    drop(server);

    // A malformed config names the file, the field and the line; nothing starts.
    write(
        &config,
        &format!("deployments:\n  - name: a\n    checkpoint: {ckpt}\n    num_replicas: zero\n"),
    );
    let err = fails(&["serve", "--config", config.to_str().unwrap()], 2);
    assert!(
        err.contains("serve.yaml") && err.contains("num_replicas") && err.contains("line 4"),
        "{err}"
    );
}

#[cfg(unix)]
#[test]
fn sigterm_drains_the_request_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = trained(dir.path());
    let rows = cancer_rows();
    // A batch that waits 3 s to fill keeps the request in flight until the signal.
    let mut server = serve(&[
        &ckpt,
        "--port",
        "0",
        "--max-batch-size",
        "64",
        "--batch-wait-ms",
        "3000",
    ]);
    let url = server.url.clone();
    let body = records(&rows, 2);
    let request = std::thread::spawn(move || http(&url, "POST", "/", &body));
    // Wait (without a deadline on the answer) until the server counts it in flight.
    loop {
        let (_, metrics) = http(&server.url, "GET", "/-/metrics", "");
        if metrics
            .lines()
            .any(|l| l.starts_with("air_serve_in_flight{") && l.ends_with(" 1"))
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = rustix::process::Pid::from_raw(server.child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let (status, answer) = request.join().unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(predictions(&answer).len(), 2);
    let exit = server.child.wait().unwrap();
    assert!(exit.success(), "air serve ended with {exit}");
}

#[test]
fn tunes_from_a_config_and_restores() {
    let dir = tempfile::tempdir().unwrap();
    let config = experiment(
        dir.path(),
        "tune:\n  metric: train-logloss\n  mode: min\n  num_samples: 3\n  seed: 7\n  \
         max_concurrent_trials: 1\nparam_space:\n  params:\n    objective: BinaryLogistic\n    \
         eval_metric: [logloss]\n    max_depth: {randint: [1, 5]}\n    eta: {loguniform: [0.05, \
         0.5]}\ncallbacks: [tensorboard]\n",
    );
    let out = ok(&["tune", "--config", config.to_str().unwrap()]);
    assert!(out.contains("3 trials, 0 errors"), "{out}");
    let best = out
        .lines()
        .find(|l| l.starts_with("best metrics: "))
        .unwrap()
        .to_owned();
    // The experiment directory holds the config: restoring needs nothing else and finds the
    // same best trial.
    let experiment = dir.path().join("results/cancer");
    assert!(experiment.join("air_experiment.yaml").exists());
    // The tensorboard callback wrote an event file in every trial's directory.
    let trials: Vec<_> = std::fs::read_dir(&experiment)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .collect();
    assert_eq!(trials.len(), 3);
    for t in &trials {
        let events = std::fs::read_dir(t.path())
            .unwrap()
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("events.out.tfevents.")
            })
            .count();
        assert_eq!(events, 1, "{}", t.path().display());
    }
    let again = ok(&["tune", "--restore", experiment.to_str().unwrap()]);
    assert!(again.contains("3 trials"), "{again}");
    assert!(again.contains(&best), "{again}\nvs\n{best}");
    // A malformed space names its path.
    let bad = experiment_bad(dir.path());
    let err = fails(&["tune", "--config", bad.to_str().unwrap()], 2);
    assert!(
        err.contains("param_space.params.eta: loguniform takes a list of 2 numbers"),
        "{err}"
    );
}

fn experiment_bad(dir: &Path) -> PathBuf {
    let sub = dir.join("bad");
    std::fs::create_dir_all(&sub).unwrap();
    experiment(
        &sub,
        "tune:\n  metric: train-logloss\n  mode: min\nparam_space:\n  params:\n    eta: \
         {loguniform: [0.05]}\n",
    )
}

/// Runs `air` with MLflow's variables cleared; exit status, stdout, stderr.
fn air_without_mlflow_env(args: &[&str]) -> (Option<i32>, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_air"))
        .args(args)
        .env("AIR_LOG", "warn")
        .env_remove("MLFLOW_TRACKING_URI")
        .env_remove("MLFLOW_EXPERIMENT_NAME")
        .output()
        .expect("the air binary runs");
    let (out, err) = text(&o);
    (o.status.code(), out, err)
}

#[test]
fn training_goes_on_without_its_mlflow_server_and_mlflow_settings_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on: every event is a warning, the run succeeds.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = experiment(
        dir.path(),
        &format!(
            "callbacks:\n  - tensorboard\n  - mlflow:\n      tracking_uri: http://127.0.0.1:{port}\n      \
             experiment_name: cancer\n      artifacts: checkpoints\n"
        ),
    );
    let (code, out, err) = air_without_mlflow_env(&["train", "--config", config.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}\n{out}");
    assert!(out.contains("final metrics"), "{out}");
    assert!(err.contains("MLflow did not take an event"), "{err}");
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");

    // No tracking URI anywhere: refused before training, naming the variable to set.
    let sub = dir.path().join("no-uri");
    std::fs::create_dir_all(&sub).unwrap();
    let config = experiment(&sub, "callbacks:\n  - mlflow: {experiment_name: cancer}\n");
    let (code, _, err) = air_without_mlflow_env(&["train", "--config", config.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("callbacks[0]") && err.contains("MLFLOW_TRACKING_URI"),
        "{err}"
    );
    assert!(!sub.join("results").exists(), "nothing ran");

    // A misspelt setting names the field and its line.
    let config = experiment(&sub, "callbacks:\n  - mlflow: {tracking_url: http://h:1}\n");
    let (code, _, err) = air_without_mlflow_env(&["train", "--config", config.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("tracking_url") && err.contains("line 15"),
        "{err}"
    );
}
