//! The same DataParallelTrainer run as three threads and as three processes (started with
//! torchrun-style variables, and by a real `srun -n 3` when a Slurm controller answers):
//! identical metrics, and only rank 0 writes to the run's storage.

use std::{
    net::TcpListener,
    num::NonZeroUsize,
    process::{Command, Output},
};

#[path = "common/ranks.rs"]
mod ranks;
#[path = "common/slurm.rs"]
mod slurm;

use ranks::results;

use air_data::{
    Dataset,
    polars::prelude::{DataType, col, lit},
    to_f32_vector,
};
use air_train::{DataParallelTrainer, RunConfig, ScalingConfig, Session, TrainError, Trainer};
use serde_json::{Value, json};

/// Linear regression `y = 2x + 1` by gradient descent, gradients averaged across workers.
fn train_loop(_: &Value, session: &mut Session) -> Result<(), TrainError> {
    let shard = session.get_dataset_shard("train")?.to_polars()?;
    let x = to_f32_vector(&shard, "x")?;
    let y = to_f32_vector(&shard, "y")?;
    let (mut w, mut b) = (0.0f32, 0.0f32);
    for _ in 0..20 {
        let n = x.len() as f32;
        let mut grad = [0.0f32; 3];
        for (xi, yi) in x.iter().zip(&y) {
            let err = w.mul_add(*xi, b) - yi;
            grad[0] += 2.0 * err * xi / n;
            grad[1] += 2.0 * err / n;
            grad[2] += err * err / n;
        }
        let rank = session.world_rank();
        session.collective().all_reduce_mean(rank, &mut grad)?;
        w -= 0.5 * grad[0];
        b -= 0.5 * grad[1];
        session.report(json!({"loss": grad[2], "w": w, "b": b}), None)?;
    }
    Ok(())
}

fn trainer(storage: &str) -> DataParallelTrainer {
    let data = Dataset::range(300)
        .with_column("x", col("id").cast(DataType::Float32) / lit(300.0f32))
        .with_column("y", col("x") * lit(2.0f32) + lit(1.0f32));
    DataParallelTrainer::new(
        train_loop,
        ScalingConfig::new(NonZeroUsize::new(3).unwrap()),
        RunConfig::new(storage).with_name("linear"),
    )
    .with_dataset("train", data)
}

fn last(result: &air_train::TrainResult) -> Value {
    json!({
        "loss": result.metrics["loss"],
        "w": result.metrics["w"],
        "b": result.metrics["b"],
        "iteration": result.metrics["training_iteration"],
    })
}

/// Run as each rank by the tests below: trains (fit finds the launcher by itself) and prints
/// rank 0's last metrics.
#[test]
#[ignore = "a child process of the multi-process tests"]
fn child_trainer() {
    let storage = std::env::var("AIR_TEST_STORAGE").unwrap();
    let result = trainer(&storage).fit().unwrap().into_result().unwrap();
    if result.metrics.contains_key("loss") {
        println!("RESULT {}", last(&result));
    }
}

fn threaded() -> Value {
    let dir = tempfile::tempdir().unwrap();
    let result = trainer(&dir.path().display().to_string())
        .fit()
        .unwrap()
        .into_result()
        .unwrap();
    last(&result)
}

/// The run's storage holds one run, written by rank 0 alone.
fn check_storage(storage: &std::path::Path) {
    let runs: Vec<_> = std::fs::read_dir(storage)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(runs, ["linear"], "{runs:?}");
    let progress = std::fs::read_to_string(storage.join("linear/progress.csv")).unwrap();
    assert_eq!(
        progress.lines().count(),
        21,
        "a header and 20 reports, once:\n{progress}"
    );
}

/// Runs the ignored test `child` as ranks 0..3 of one run, after checking each succeeded.
fn run_ranks(child: &str, storage: &std::path::Path) -> Vec<Output> {
    let outputs = ranks::wait_all_within(
        ranks::spawn_ranks(
            child,
            3,
            &[("AIR_TEST_STORAGE", storage.display().to_string())],
        ),
        std::time::Duration::from_secs(300),
    );
    ranks::assert_all_succeeded(&outputs);
    outputs
}

#[test]
fn three_processes_train_like_three_threads() {
    let expected = threaded();
    let dir = tempfile::tempdir().unwrap();
    let all: Vec<Value> = run_ranks("child_trainer", dir.path())
        .iter()
        .flat_map(results)
        .collect();
    assert_eq!(
        all,
        vec![expected],
        "only rank 0 prints, and it matches the threaded run"
    );
    check_storage(dir.path());
}

#[test]
fn srun_tasks_train_like_three_threads() {
    if !slurm::available() {
        return;
    }
    let expected = threaded();
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new("srun")
        .args(["-n", "3", "--overcommit", "--time", "2"])
        .arg(format!(
            "--export=ALL,AIR_COORDINATOR_PORT={port},AIR_TEST_STORAGE={}",
            dir.path().display()
        ))
        .arg(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "child_trainer", "--nocapture"])
        .env_remove("RANK")
        .env_remove("WORLD_SIZE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        results(&out),
        vec![expected],
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    check_storage(dir.path());
}

#[test]
fn the_launchers_world_must_match_num_workers() {
    let env = air_train::cluster::ProcessEnv::from_vars(|name| match name {
        "RANK" => Some("0".to_owned()),
        "WORLD_SIZE" => Some("2".to_owned()),
        "MASTER_ADDR" => Some("127.0.0.1".to_owned()),
        _ => None,
    })
    .unwrap()
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err = trainer(&dir.path().display().to_string())
        .with_process_env(env)
        .fit()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("num_workers") && err.contains("each process is one worker"),
        "{err}"
    );
    assert!(
        err.contains("expected 2, the world size from torchrun-style variables"),
        "{err}"
    );
}

/// GBDT on the breast cancer data, 3 workers summing histograms (f64) each round.
fn gbdt(storage: &str) -> air_train::gbdt::GbdtTrainer {
    use air_train::gbdt::{EvalMetric, GbdtParams, GbdtTrainer, Objective};
    let data = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/data/breast_cancer.csv"
    );
    let (train, valid) = Dataset::read_csv(data)
        .unwrap()
        .train_test_split(0.3)
        .unwrap();
    GbdtTrainer::new(
        "target",
        GbdtParams::new(Objective::BinaryLogistic)
            .with_eval_metrics([EvalMetric::Logloss, EvalMetric::Error]),
        ScalingConfig::new(NonZeroUsize::new(3).unwrap()),
        RunConfig::new(storage).with_name("gbdt"),
    )
    .unwrap()
    .with_num_boost_round(10)
    .with_dataset("train", train)
    .with_dataset("valid", valid)
}

fn gbdt_metrics(result: &air_train::TrainResult) -> Value {
    json!({
        "train-logloss": result.metrics["train-logloss"],
        "valid-logloss": result.metrics["valid-logloss"],
        "valid-error": result.metrics["valid-error"],
    })
}

#[test]
#[ignore = "a child process of the multi-process tests"]
fn child_gbdt() {
    let storage = std::env::var("AIR_TEST_STORAGE").unwrap();
    let result = gbdt(&storage).fit().unwrap().into_result().unwrap();
    if result.metrics.contains_key("train-logloss") {
        println!("RESULT {}", gbdt_metrics(&result));
    }
}

#[test]
fn gbdt_across_processes_grows_the_threaded_trees() {
    let dir = tempfile::tempdir().unwrap();
    let threaded = gbdt(&dir.path().display().to_string())
        .fit()
        .unwrap()
        .into_result()
        .unwrap();
    let expected = gbdt_metrics(&threaded);
    let dir = tempfile::tempdir().unwrap();
    let all: Vec<Value> = run_ranks("child_gbdt", dir.path())
        .iter()
        .flat_map(results)
        .collect();
    // Histograms summed across processes in rank order: the same trees, to the last bit.
    assert_eq!(all, vec![expected]);
}
