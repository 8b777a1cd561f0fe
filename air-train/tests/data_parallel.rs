//! Data-parallel training: N workers on shards equal one worker on the whole batch; sessions,
//! storage, retention, failures and stopping.

use std::num::NonZeroUsize;
use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use air_checkpoint::Checkpoint;
use air_data::{Dataset, polars::prelude::*};
use air_train::{
    CheckpointConfig, DataParallelTrainer, FailureConfig, MaxFailures, Mode, RunConfig,
    ScalingConfig, Session, TrainError, Trainable, Trainer, TrialInfo, Verbosity,
    burn::{Backend, load_model, save_model},
    burn::{
        nn::loss::{MseLoss, Reduction},
        optim::{GradientsParams, Optimizer, SgdConfig},
        tensor::{Tensor, TensorData},
    },
};
use serde_json::{Value, json};

mod common;

use common::{Mlp, frame, rows};

/// Hidden units of the MLP these tests train.
const HIDDEN: usize = 4;

/// The per-worker loop: global batch `global_batch`, split evenly over the workers.
fn train_loop(config: &Value, session: &mut Session) -> Result<(), TrainError> {
    let global: usize = config["global_batch"].as_u64().unwrap() as usize;
    let epochs = config["epochs"].as_u64().unwrap();
    let device = session.training_device()?;
    let mut model = Mlp::<Backend>::new(&device, HIDDEN);
    if let Some(c) = session.get_checkpoint() {
        model = load_model(model, c, &device)?;
    }
    model = session.sync_model(model)?;
    let mut optim = SgdConfig::new().init();
    let batch = global / session.world_size();
    let shard = session.get_dataset_shard("train")?.to_polars()?;
    let m = air_data::to_f32_matrix(&shard, &["x0", "x1", "x2"])?;
    let y = air_data::to_f32_vector(&shard, "y")?;
    for epoch in 0..epochs {
        let mut total = 0.0;
        for start in (0..shard.height()).step_by(batch) {
            let end = (start + batch).min(shard.height());
            let x = Tensor::<Backend, 2>::from_data(
                TensorData::new(m.data[start * 3..end * 3].to_vec(), [end - start, 3]),
                &device,
            );
            let t = Tensor::<Backend, 2>::from_data(
                TensorData::new(y[start..end].to_vec(), [end - start, 1]),
                &device,
            );
            let loss = MseLoss::new().forward(model.forward(x), t, Reduction::Mean);
            total += loss.clone().into_scalar();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            let grads = session.sync_gradients(&model, grads)?;
            model = optim.step(0.05, model, grads);
        }
        let mut ckpt = Checkpoint::new();
        save_model(&model, &mut ckpt)?;
        session.report(json!({"epoch": epoch, "loss": total}), Some(ckpt))?;
    }
    Ok(())
}

fn weights(c: &Checkpoint) -> Vec<f32> {
    common::weights(c, HIDDEN)
}

fn initial_checkpoint() -> Checkpoint {
    let device = air_train::ComputeDevice::Cpu.inference_device().unwrap();
    let mut c = Checkpoint::new();
    save_model(&Mlp::<Backend>::new(&device, HIDDEN), &mut c).unwrap();
    c
}

fn run_config(dir: &std::path::Path, name: &str) -> RunConfig {
    RunConfig::new(dir.to_str().unwrap())
        .with_name(name)
        .with_verbose(Verbosity::Silent)
}

#[test]
fn three_workers_on_shards_equal_one_worker_on_the_global_batch() {
    equivalence(air_train::CollectiveBackend::Local);
}

#[cfg(feature = "collective")]
#[test]
fn burn_collective_trains_the_same_model() {
    equivalence(air_train::CollectiveBackend::Burn);
}

fn equivalence(collective: air_train::CollectiveBackend) {
    let dir = tempfile::tempdir().unwrap();
    let base = rows(96);
    let init = initial_checkpoint();
    let config = json!({"global_batch": 24, "epochs": 3});
    // Three workers get contiguous thirds; worker k's t-th batch is rows 32k + 8t .. + 8. The
    // single worker sees the same 24 rows as its t-th batch.
    let three = DataParallelTrainer::new(
        train_loop,
        ScalingConfig::new(NonZeroUsize::new(3).unwrap()),
        run_config(dir.path(), "three"),
    )
    .with_train_loop_config(config.clone())
    .with_dataset("train", Dataset::from_polars(frame(&base)))
    .with_resume_from_checkpoint(init.clone())
    .with_collective(collective);
    let permuted: Vec<[f32; 4]> = (0..96)
        .map(|p| {
            let (t, rest) = (p / 24, p % 24);
            let (k, j) = (rest / 8, rest % 8);
            base[32 * k + 8 * t + j]
        })
        .collect();
    let one = DataParallelTrainer::new(
        train_loop,
        ScalingConfig::new(NonZeroUsize::MIN),
        run_config(dir.path(), "one"),
    )
    .with_train_loop_config(config)
    .with_dataset("train", Dataset::from_polars(frame(&permuted)))
    .with_resume_from_checkpoint(init.clone());
    let r3 = three.fit().unwrap().into_result().unwrap();
    let r1 = one.fit().unwrap().into_result().unwrap();
    let (w3, w1, w0) = (
        weights(r3.checkpoint.as_ref().unwrap()),
        weights(r1.checkpoint.as_ref().unwrap()),
        weights(&init),
    );
    assert_ne!(w1, w0, "training moved the weights");
    for (i, (a, b)) in w3.iter().zip(&w1).enumerate() {
        assert!(
            (a - b).abs() < 1e-5,
            "weight {i}: 3 workers {a}, 1 worker {b}"
        );
    }
    assert_eq!(r3.metrics["training_iteration"], 3);
    assert_eq!(r3.metrics_dataframe().unwrap().height(), 3);
}

#[test]
fn run_directory_metrics_and_checkpoint_retention() {
    let dir = tempfile::tempdir().unwrap();
    let trainer = DataParallelTrainer::new(
        |_: &Value, s: &mut Session| -> Result<(), TrainError> {
            // Scores 5, 1, 4, 2, 3: the two best by "score" (max) are iterations 1 and 3.
            for score in [5, 1, 4, 2, 3] {
                let mut c = Checkpoint::new();
                c.put_json("state.json", &json!({"score": score}))?;
                s.report(json!({"score": score}), Some(c))?;
            }
            Ok(())
        },
        ScalingConfig::new(NonZeroUsize::new(2).unwrap()),
        run_config(dir.path(), "keep").with_checkpoint_config(
            CheckpointConfig::new()
                .with_num_to_keep(NonZeroUsize::new(2).unwrap())
                .with_score_attribute("score", Mode::Max),
        ),
    )
    .with_dataset("train", Dataset::range(10))
    .with_preprocessor(air_data::StandardScaler::new(["id"]));
    let r = trainer.fit().unwrap().into_result().unwrap();
    let run = dir.path().join("keep");
    assert_eq!(r.path, run.display().to_string());
    let mut names: Vec<String> = std::fs::read_dir(&run)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    // Best two (iterations 1 and 3) plus the latest (5), which a restart needs.
    assert_eq!(
        names,
        [
            "checkpoint_000000",
            "checkpoint_000002",
            "checkpoint_000004",
            "params.json",
            "progress.csv",
            "result.json"
        ]
    );
    let scores: Vec<i64> = r
        .best_checkpoints
        .iter()
        .map(|(_, m)| m["score"].as_i64().unwrap())
        .collect();
    assert_eq!(scores, [5, 4, 3]);
    let lines = std::fs::read_to_string(run.join("result.json")).unwrap();
    assert_eq!(lines.lines().count(), 5);
    let first: Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    for key in [
        "training_iteration",
        "time_total_s",
        "timestamp",
        "time_this_iter_s",
    ] {
        assert!(first.get(key).is_some(), "{key} auto-filled");
    }
    let csv = std::fs::read_to_string(run.join("progress.csv")).unwrap();
    assert_eq!(csv.lines().count(), 6);
    let header = csv.lines().next().unwrap();
    assert!(
        header.contains("score") && header.contains("training_iteration"),
        "{header}"
    );
    // The fitted preprocessor travels in every checkpoint.
    let p = air_data::load_preprocessor(r.checkpoint.as_ref().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(p.type_name(), "StandardScaler");
    assert_eq!(r.metrics_dataframe().unwrap().height(), 5);
}

#[test]
fn shards_configs_and_session_facts() {
    let dir = tempfile::tempdir().unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let trainer = DataParallelTrainer::new(
        move |config: &Value, s: &mut Session| -> Result<(), TrainError> {
            let train = s.get_dataset_shard("train")?.to_polars()?;
            let valid = s.get_dataset_shard("valid")?.count()?;
            let ids: Vec<i64> = train
                .column("id")
                .unwrap()
                .i64()
                .unwrap()
                .into_no_null_iter()
                .collect();
            seen2.lock().unwrap().push((
                s.world_rank(),
                s.world_size(),
                ids,
                valid,
                config["lr"].clone(),
            ));
            assert!(matches!(
                s.get_dataset_shard("nope"),
                Err(TrainError::DatasetNotFound { .. })
            ));
            s.report(Value::Null, None)?; // empty metrics are legal
            s.report(json!({}), None)?;
            assert!(s.report(json!(3), None).is_err());
            Ok(())
        },
        ScalingConfig::new(NonZeroUsize::new(2).unwrap()),
        run_config(dir.path(), "shards"),
    )
    .with_train_loop_config(json!({"lr": 0.1, "epochs": 2}))
    .with_dataset("train", Dataset::range(7))
    .with_dataset("valid", Dataset::range(4))
    .with_datasets_to_split(air_train::DatasetsToSplit::Only(vec!["train".into()]));
    // As a tuner would run it: a trial config merged into the typed configs.
    let r = trainer.run_trial(
        &json!({"train_loop_config": {"lr": 0.5}, "scaling_config": {"num_workers": 3}}),
        &TrialInfo::new("trial_0", "t0").with_storage_path(dir.path().to_str().unwrap()),
    );
    assert!(r.error.is_none(), "{:?}", r.error);
    let mut seen = seen.lock().unwrap().clone();
    seen.sort_by_key(|s| s.0);
    assert_eq!(seen.len(), 3);
    for (rank, (r_, world, ids, valid, lr)) in seen.iter().enumerate() {
        assert_eq!((*r_, *world, *valid, lr.as_f64()), (rank, 3, 4, Some(0.5)));
        assert_eq!(
            ids.len(),
            2,
            "7 rows over 3 workers: 2 each, the remainder dropped"
        );
    }
    assert_eq!(r.metrics["trial_id"], "t0");
    let bad = trainer.run_trial(
        &json!({"scaling_config": {"num_workers": 0}}),
        &TrialInfo::default(),
    );
    assert!(bad.error.unwrap().to_string().contains("num_workers"));
    let bad = trainer.run_trial(&json!({"lr": 1}), &TrialInfo::default());
    assert!(bad.error.unwrap().to_string().contains("train_loop_config"));
}

#[test]
fn failures_restart_from_the_latest_checkpoint_then_fail_with_the_workers_message() {
    let dir = tempfile::tempdir().unwrap();
    let attempts = Arc::new(AtomicUsize::new(0));
    let a = attempts.clone();
    let flaky = move |_: &Value, s: &mut Session| -> Result<(), TrainError> {
        let start = match s.get_checkpoint() {
            Some(c) => c.get_json::<u64>("step.json")? + 1,
            None => 0,
        };
        if s.world_rank() == 0 {
            a.fetch_add(1, Ordering::SeqCst);
        }
        for step in start..6 {
            if step == 3 && start == 0 && s.world_rank() == 1 {
                panic!("worker 1 lost its GPU");
            }
            let mut c = Checkpoint::new();
            c.put_json("step.json", &step)?;
            s.report(json!({"step": step}), Some(c))?;
        }
        Ok(())
    };
    let run = |max: MaxFailures, name: &str| {
        DataParallelTrainer::new(
            flaky.clone(),
            ScalingConfig::new(NonZeroUsize::new(2).unwrap()),
            run_config(dir.path(), name).with_failure_config(FailureConfig::new(max)),
        )
        .fit()
        .unwrap()
    };
    let r = run(MaxFailures::Limited(1), "retry");
    assert!(r.error.is_none(), "{:?}", r.error);
    assert_eq!(attempts.swap(0, Ordering::SeqCst), 2);
    let steps: Vec<i64> = r
        .metrics_dataframe()
        .unwrap()
        .column("step")
        .unwrap()
        .cast(&DataType::Int64)
        .unwrap()
        .i64()
        .unwrap()
        .into_no_null_iter()
        .collect();
    assert_eq!(
        steps,
        [0, 1, 2, 3, 4, 5],
        "resumed after the last checkpoint"
    );
    assert_eq!(r.metrics["training_iteration"], 6);

    let r = run(MaxFailures::Limited(0), "fail");
    let err = r.error.unwrap();
    let msg = err.to_string();
    assert!(
        matches!(
            err,
            TrainError::WorkerFailed {
                rank: 1,
                what: "panicked",
                ..
            }
        ),
        "{msg}"
    );
    assert!(msg.contains("lost its GPU"), "{msg}");
    // Rank 0 reported step 3 before worker 1 failed on its way there: it is recorded.
    assert_eq!(
        r.metrics["step"], 3,
        "what was reported before the failure is kept"
    );
    assert_eq!(
        r.checkpoint.unwrap().get_json::<u64>("step.json").unwrap(),
        3
    );
}

#[test]
fn stop_conditions_and_diverging_workers() {
    let dir = tempfile::tempdir().unwrap();
    let endless = |_: &Value, s: &mut Session| -> anyhow::Result<()> {
        for i in 0.. {
            s.report(json!({"i": i}), None)?;
        }
        Ok(())
    };
    let r = DataParallelTrainer::new(
        endless,
        ScalingConfig::new(NonZeroUsize::new(2).unwrap()),
        run_config(dir.path(), "stop").with_stop("training_iteration", 4.0),
    )
    .fit()
    .unwrap()
    .into_result()
    .unwrap();
    assert_eq!(r.metrics["training_iteration"], 4);
    // A tuner's scheduler stops a trial through the report hook.
    let r = DataParallelTrainer::new(
        endless,
        ScalingConfig::new(NonZeroUsize::new(2).unwrap()),
        run_config(dir.path(), "hook"),
    )
    .run_trial(
        &json!({}),
        &TrialInfo::new("hooked", "h0").with_on_report(|m| m["i"].as_i64() < Some(2)),
    );
    assert!(r.error.is_none(), "{:?}", r.error);
    assert_eq!(r.metrics["training_iteration"], 3);

    let uneven = |_: &Value, s: &mut Session| -> Result<(), TrainError> {
        let n = if s.world_rank() == 0 { 3 } else { 2 };
        for _ in 0..n {
            s.report(json!({}), None)?;
        }
        Ok(())
    };
    let r = DataParallelTrainer::new(
        uneven,
        ScalingConfig::new(NonZeroUsize::new(2).unwrap()),
        run_config(dir.path(), "uneven"),
    )
    .fit()
    .unwrap();
    let msg = r.error.unwrap().to_string();
    assert!(msg.contains("report equally often"), "{msg}");
}

/// Counts how often it is fitted.
#[derive(Debug, Clone)]
struct CountingScaler {
    inner: air_data::StandardScaler,
}

static FITS: AtomicUsize = AtomicUsize::new(0);

impl air_data::Preprocessor for CountingScaler {
    fn type_name(&self) -> &str {
        "StandardScaler"
    }
    fn fit_status(&self) -> air_data::FitStatus {
        self.inner.fit_status()
    }
    fn fit(&mut self, ds: &Dataset) -> air_data::Result<()> {
        FITS.fetch_add(1, Ordering::SeqCst);
        self.inner.fit(ds)
    }
    fn expressions(&self, lf: LazyFrame) -> air_data::Result<LazyFrame> {
        self.inner.expressions(lf)
    }
    fn to_config(&self) -> air_data::Result<Value> {
        self.inner.to_config()
    }
}

#[test]
fn the_preprocessor_is_fitted_once_and_shared_by_trials_and_gpu_requests_fail_early() {
    let dir = tempfile::tempdir().unwrap();
    let trainer = DataParallelTrainer::new(
        |_: &Value, s: &mut Session| -> Result<(), TrainError> {
            let mean: f64 = s
                .get_dataset_shard("train")?
                .to_polars()?
                .column("id")
                .unwrap()
                .f64()
                .unwrap()
                .mean()
                .unwrap();
            s.report(json!({"mean": mean}), None)
        },
        ScalingConfig::new(NonZeroUsize::MIN),
        run_config(dir.path(), "shared"),
    )
    .with_dataset(
        "train",
        Dataset::range(11).with_column("id", col("id").cast(DataType::Float64)),
    )
    .with_preprocessor(CountingScaler {
        inner: air_data::StandardScaler::new(["id"]),
    });
    for i in 0..3 {
        let r = trainer.clone().run_trial(
            &json!({}),
            &TrialInfo::new(&format!("trial_{i}"), &format!("t{i}"))
                .with_storage_path(dir.path().to_str().unwrap()),
        );
        assert!(r.error.is_none(), "{:?}", r.error);
        assert!(
            r.metrics["mean"].as_f64().unwrap().abs() < 1e-12,
            "scaled data"
        );
    }
    assert_eq!(
        FITS.load(Ordering::SeqCst),
        1,
        "fitted once for three trials"
    );
    assert_eq!(
        trainer.fitted_preprocessor().unwrap().fit_status(),
        air_data::FitStatus::Fitted
    );

    #[cfg(not(feature = "cuda"))]
    {
        let gpu = DataParallelTrainer::new(
            |_: &Value, _: &mut Session| -> Result<(), TrainError> { panic!("must not start") },
            ScalingConfig::new(NonZeroUsize::new(2).unwrap())
                .with_use_gpu(true)
                .unwrap(),
            run_config(dir.path(), "gpu"),
        );
        let err = gpu.fit().unwrap_err();
        assert!(err.to_string().contains("--features cuda"), "{err}");
    }
}

#[test]
fn resume_from_checkpoint_continues_the_count_and_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let counting = |config: &Value, s: &mut Session| -> Result<(), TrainError> {
        let start = match s.get_checkpoint() {
            Some(c) => c.get_json::<u64>("epoch.json")? + 1,
            None => 0,
        };
        for epoch in start..start + config["epochs"].as_u64().unwrap() {
            let mut c = Checkpoint::new();
            c.put_json("epoch.json", &epoch)?;
            s.report(json!({"epoch": epoch}), Some(c))?;
        }
        Ok(())
    };
    let first = DataParallelTrainer::new(
        counting,
        ScalingConfig::new(NonZeroUsize::new(2).unwrap()),
        run_config(dir.path(), "first"),
    )
    .with_train_loop_config(json!({"epochs": 2}))
    .fit()
    .unwrap()
    .into_result()
    .unwrap();
    let resumed = DataParallelTrainer::new(
        counting,
        ScalingConfig::new(NonZeroUsize::new(2).unwrap()),
        run_config(dir.path(), "second"),
    )
    .with_train_loop_config(json!({"epochs": 3}))
    .with_resume_from_checkpoint(first.checkpoint.unwrap())
    .fit()
    .unwrap()
    .into_result()
    .unwrap();
    assert_eq!(resumed.metrics["epoch"], 4);
    assert_eq!(resumed.metrics["training_iteration"], 5, "2 before + 3 now");
    assert_eq!(resumed.metrics_dataframe().unwrap().height(), 3);
}

/// The equivalence run's three-worker trainer, starting from `init`.
fn three_workers(dir: &std::path::Path, init: Checkpoint) -> DataParallelTrainer {
    air_train::burn::BurnTrainer::new(
        train_loop,
        ScalingConfig::new(NonZeroUsize::new(3).unwrap()),
        run_config(dir, "three"),
    )
    .with_train_loop_config(json!({"global_batch": 24, "epochs": 3}))
    .with_dataset("train", Dataset::from_polars(frame(&rows(96))))
    .with_resume_from_checkpoint(init)
}

/// Run as each rank by the test below: the three-worker run, its rank in a process of its
/// own; rank 0 prints the trained weights.
#[test]
#[ignore = "a child process of the multi-process test"]
fn child_burn_rank() {
    let storage = std::path::PathBuf::from(std::env::var("AIR_TEST_STORAGE").unwrap());
    let init = Checkpoint::from_directory(std::env::var("AIR_TEST_INIT").unwrap()).unwrap();
    let result = three_workers(&storage, init)
        .fit()
        .unwrap()
        .into_result()
        .unwrap();
    if let Some(c) = &result.checkpoint {
        println!("WEIGHTS {}", serde_json::to_string(&weights(c)).unwrap());
    }
}

#[test]
fn burn_across_three_processes_trains_the_threaded_model() {
    let dir = tempfile::tempdir().unwrap();
    let init = initial_checkpoint();
    init.to_directory(dir.path().join("init")).unwrap();
    let threaded = three_workers(&dir.path().join("threads"), init)
        .fit()
        .unwrap()
        .into_result()
        .unwrap();
    let expected = weights(threaded.checkpoint.as_ref().unwrap());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let children: Vec<_> = (0..3)
        .map(|rank| {
            std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--ignored", "--exact", "child_burn_rank", "--nocapture"])
                .env("RANK", rank.to_string())
                .env("WORLD_SIZE", "3")
                .env("MASTER_ADDR", "127.0.0.1")
                .env("MASTER_PORT", port.to_string())
                .env("AIR_TEST_STORAGE", dir.path().join("processes"))
                .env("AIR_TEST_INIT", dir.path().join("init"))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut printed: Vec<Vec<f32>> = Vec::new();
    for (rank, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "rank {rank}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some(i) = line.find("WEIGHTS ") {
                printed.push(serde_json::from_str(&line[i + 8..]).unwrap());
            }
        }
    }
    assert_eq!(printed.len(), 1, "only rank 0 has the checkpoint");
    for (i, (a, b)) in printed[0].iter().zip(&expected).enumerate() {
        assert!(
            (a - b).abs() < 1e-5,
            "weight {i}: processes {a}, threads {b}"
        );
    }
}
