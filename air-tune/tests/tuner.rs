//! The Tuner end to end: closures and trainers as trainables, concurrency and resources,
//! failures and retries, schedulers acting on real trials, loggers, results and bad input.

use std::num::NonZeroUsize;
use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use air_checkpoint::Checkpoint;
use air_data::{Dataset, StandardScaler};
use air_train::{
    DataParallelTrainer, FailureConfig, MaxFailures, RunConfig, ScalingConfig, Session, TrainError,
    gbdt::{EvalMetric, GbdtParams, GbdtTrainer, Objective},
};
use air_tune::{
    Asha, BayesOptSearch, ConcurrencyLimiter, HyperBand, MaximumIterationStopper, Mode, Pbt,
    Resources, Scope, TpeSearch, TrialStatus, TuneConfig, Tuner, choice, grid_search, loguniform,
    randint, sample_from, space, uniform,
};
use serde_json::{Value, json};

fn run_config(dir: &tempfile::TempDir, name: &str) -> RunConfig {
    RunConfig::new(dir.path().to_str().unwrap()).with_name(name)
}

/// Reports `loss = (x − 0.3)² + 1/iter` for `iters` iterations, checkpointing each one and
/// resuming from the checkpoint's iteration.
fn curve(config: &Value, session: &mut Session) -> Result<(), TrainError> {
    let x = config["x"].as_f64().unwrap_or(0.0);
    let iters = config["iters"].as_u64().unwrap_or(10);
    let start = match session.get_checkpoint() {
        Some(c) => c.get_json::<Value>("state.json")?["iter"]
            .as_u64()
            .unwrap_or(0),
        None => 0,
    };
    for i in start + 1..=iters {
        let mut ck = Checkpoint::new();
        ck.put_json("state.json", &json!({ "iter": i }))?;
        let loss = (x - 0.3).mul_add(x - 0.3, 1.0 / i as f64);
        session.report(json!({ "loss": loss, "x": x }), Some(ck))?;
    }
    Ok(())
}

#[test]
fn grid_times_samples_seeded_and_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str| {
        Tuner::new(
            |c: &Value, s: &mut Session| s.report(json!({ "score": c["a"].as_f64().unwrap() + c["b"].as_f64().unwrap() }), None),
            space!({
                "a": uniform(0.0, 1.0),
                "b": grid_search([10, 20, 30]),
                "c": { "d": choice(["x", "y"]), "e": sample_from(|c| json!(c["b"].as_i64().unwrap() * 2)) },
            }),
        )
        .with_tune_config(TuneConfig::new().with_num_samples(NonZeroUsize::new(2).unwrap()).with_seed(5))
        .with_run_config(run_config(&dir, name))
        .fit()
        .unwrap()
    };
    let a = run("a");
    assert_eq!(a.len(), 6);
    assert_eq!(a.num_terminated(), 6);
    let configs: Vec<Value> = a.iter().map(|r| r.config.clone()).collect();
    for c in &configs {
        assert_eq!(c["c"]["e"], json!(c["b"].as_i64().unwrap() * 2));
    }
    for b in [10, 20, 30] {
        assert_eq!(configs.iter().filter(|c| c["b"] == json!(b)).count(), 2);
    }
    let b = run("b");
    let again: Vec<Value> = b.iter().map(|r| r.config.clone()).collect();
    assert_eq!(configs, again, "the same seed gives the same configs");
    // Each trial wrote its metrics files under the experiment directory.
    let r = a.get(0).unwrap();
    assert!(std::path::Path::new(&r.path).join("result.json").exists());
    assert!(std::path::Path::new(&r.path).join("progress.csv").exists());
    assert!(
        std::path::Path::new(a.experiment_path())
            .join("experiment_state.json")
            .exists()
    );
    assert_eq!(r.metrics["training_iteration"], json!(1));
    // A reused name is refused: restore it instead.
    let e = Tuner::new(curve, space!({}))
        .with_run_config(run_config(&dir, "a"))
        .fit()
        .unwrap_err()
        .to_string();
    assert!(e.contains("Tuner::restore"), "{e}");
}

#[test]
fn concurrency_is_bounded_by_max_trials_and_resources() {
    let dir = tempfile::tempdir().unwrap();
    let live = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (l, p) = (live.clone(), peak.clone());
    let trainable = move |_: &Value, s: &mut Session| {
        let now = l.fetch_add(1, Ordering::SeqCst) + 1;
        p.fetch_max(now, Ordering::SeqCst);
        for _ in 0..5 {
            std::thread::yield_now();
            s.report(json!({ "v": 1 }), None)?;
        }
        l.fetch_sub(1, Ordering::SeqCst);
        Ok::<(), TrainError>(())
    };
    let grid = Tuner::new(
        trainable.clone(),
        space!({ "i": grid_search([0, 1, 2, 3, 4, 5]) }),
    )
    .with_tune_config(TuneConfig::new().with_max_concurrent_trials(NonZeroUsize::new(1).unwrap()))
    .with_run_config(run_config(&dir, "one"))
    .fit()
    .unwrap();
    assert_eq!(grid.num_terminated(), 6);
    assert_eq!(peak.load(Ordering::SeqCst), 1);
    // Resources: 3 CPUs per trial in a pool of 4 also means one at a time.
    peak.store(0, Ordering::SeqCst);
    let grid = Tuner::new(trainable, space!({ "i": grid_search([0, 1, 2, 3]) }))
        .with_tune_config(
            TuneConfig::new()
                .with_total_resources(Resources::cpu(4.0))
                .with_resources_per_trial(Resources::cpu(3.0)),
        )
        .with_run_config(run_config(&dir, "res"))
        .fit()
        .unwrap();
    assert_eq!(grid.num_terminated(), 4);
    assert_eq!(peak.load(Ordering::SeqCst), 1);
    // A trial that can never fit is an error naming both sides; the others still run.
    let grid = Tuner::new(
        |_: &Value, s: &mut Session| s.report(json!({}), None),
        space!({ "i": grid_search([1, 2]) }),
    )
    .with_tune_config(
        TuneConfig::new()
            .with_total_resources(Resources::cpu(1.0))
            .with_resources_per_trial(Resources::cpu(2.0)),
    )
    .with_run_config(run_config(&dir, "toobig"))
    .fit()
    .unwrap();
    assert_eq!(grid.num_errors(), 2);
    assert!(
        grid.errors()[0].1.contains("pool has"),
        "{:?}",
        grid.errors()
    );
}

#[test]
fn failing_trials_are_recorded_and_retried() {
    let dir = tempfile::tempdir().unwrap();
    let attempts = Arc::new(Mutex::new(BTreeMap::<String, usize>::new()));
    let seen = attempts.clone();
    let trainable = move |c: &Value, s: &mut Session| -> Result<(), TrainError> {
        let kind = c["kind"].as_str().unwrap_or("").to_owned();
        let n = {
            let mut a = seen.lock().unwrap();
            let n = a.entry(kind.clone()).or_default();
            *n += 1;
            *n
        };
        match kind.as_str() {
            "flaky" if n == 1 => panic!("flaky failure on the first attempt"),
            "broken" => Err(TrainError::InvalidMetrics {
                metrics: "x".into(),
                reason: "always broken".into(),
            }),
            _ => s.report(json!({ "ok": 1 }), None),
        }
    };
    let grid = Tuner::new(
        trainable,
        space!({ "kind": grid_search(["fine", "flaky", "broken"]) }),
    )
    .with_tune_config(TuneConfig::new().with_max_concurrent_trials(NonZeroUsize::new(1).unwrap()))
    .with_run_config(
        run_config(&dir, "fail").with_failure_config(FailureConfig::new(MaxFailures::Limited(1))),
    )
    .fit()
    .unwrap();
    let by_kind: BTreeMap<String, (TrialStatus, Option<String>)> = grid
        .iter()
        .map(|r| {
            (
                r.config["kind"].as_str().unwrap().to_owned(),
                (r.status, r.error.clone()),
            )
        })
        .collect();
    assert_eq!(by_kind["fine"].0, TrialStatus::Terminated);
    assert_eq!(by_kind["flaky"], (TrialStatus::Terminated, None));
    assert_eq!(by_kind["broken"].0, TrialStatus::Error);
    let msg = by_kind["broken"].1.clone().unwrap();
    assert!(msg.contains("always broken"), "{msg}");
    let a = attempts.lock().unwrap();
    assert_eq!((a["fine"], a["flaky"], a["broken"]), (1, 2, 2));
    assert_eq!(grid.errors().len(), 1);
    // The frame has every trial with its status and error.
    let df = grid.get_dataframe().unwrap();
    assert_eq!(df.height(), 3);
    assert!(df.column("config/kind").is_ok() && df.column("error").is_ok());
}

/// What the experiment state on disk says a trial reported is in the trial's `result.json`
/// (trials that restart, which clears their files, are left out: those with `i % 7 == 3` or
/// `i % 25 == 11`).
fn every_saved_result_is_on_disk(experiment: &std::path::Path) {
    let Ok(bytes) = std::fs::read(experiment.join(air_tune::EXPERIMENT_STATE)) else {
        return;
    };
    let state: Value = serde_json::from_slice(&bytes).unwrap();
    for t in state["trials"].as_array().unwrap() {
        let i = t["config"]["i"].as_u64().unwrap();
        if i % 7 == 3 || i % 25 == 11 || t["last_result"].is_null() {
            continue;
        }
        let path = format!("{}/result.json", t["path"].as_str().unwrap());
        let lines = std::fs::read_to_string(&path).unwrap_or_default();
        let on_disk = lines
            .lines()
            .any(|l| serde_json::from_str::<Value>(l).unwrap() == t["last_result"]);
        assert!(
            on_disk,
            "trial {i}: {} is not in {path}: {lines}",
            t["last_result"]
        );
    }
}

/// Trial threads start the trials after theirs (the controller only starts the first ones
/// and saves): a long sweep of short trials, some failing once and retried, some failing for
/// good, under a concurrency limit and a resource pool, still runs every trial exactly as
/// asked, never more at once than allowed, and leaves every result on disk and every trial
/// in the saved state.
#[test]
fn a_long_sweep_of_short_trials_runs_every_trial_as_asked() {
    let dir = tempfile::tempdir().unwrap();
    let live = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let attempts = Arc::new(Mutex::new(BTreeMap::<u64, usize>::new()));
    let (l, p, a) = (live.clone(), peak.clone(), attempts.clone());
    let experiment = dir.path().join("sweep");
    let trainable = move |c: &Value, s: &mut Session| -> Result<(), TrainError> {
        if c["i"].as_u64().unwrap().is_multiple_of(10) {
            every_saved_result_is_on_disk(&experiment);
        }
        let i = c["i"].as_u64().unwrap();
        let n = {
            let mut a = a.lock().unwrap();
            let n = a.entry(i).or_default();
            *n += 1;
            *n
        };
        let now = l.fetch_add(1, Ordering::SeqCst) + 1;
        p.fetch_max(now, Ordering::SeqCst);
        let out = (|| {
            for r in 0..3 {
                s.report(json!({ "i": i, "r": r }), None)?;
                if r == 1 && (i % 7 == 3 && n == 1 || i % 25 == 11) {
                    return Err(TrainError::InvalidMetrics {
                        metrics: i.to_string(),
                        reason: "failed on purpose".into(),
                    });
                }
            }
            Ok(())
        })();
        l.fetch_sub(1, Ordering::SeqCst);
        out
    };
    let trials: Vec<u64> = (0..150).collect();
    let grid = Tuner::new(trainable, space!({ "i": grid_search(trials) }))
        .with_tune_config(
            TuneConfig::new()
                .with_state_save_period(std::time::Duration::from_millis(1))
                .with_max_concurrent_trials(NonZeroUsize::new(3).unwrap())
                .with_total_resources(Resources::cpu(4.0))
                .with_resources_per_trial(Resources::cpu(1.0)),
        )
        .with_run_config(
            run_config(&dir, "sweep")
                .with_failure_config(FailureConfig::new(MaxFailures::Limited(1))),
        )
        .fit()
        .unwrap();
    assert!(peak.load(Ordering::SeqCst) <= 3);
    // Failing for good: 11, 36, 61, 86, 111, 136 (each tried twice).
    let broken: Vec<u64> = (0..150).filter(|i| i % 25 == 11).collect();
    let attempts = attempts.lock().unwrap();
    for i in 0..150u64 {
        let expected = if i % 7 == 3 || i % 25 == 11 { 2 } else { 1 };
        assert_eq!(attempts[&i], expected, "attempts of trial {i}");
    }
    assert_eq!(grid.len(), 150);
    assert_eq!(grid.num_errors(), broken.len());
    assert_eq!(grid.num_terminated(), 150 - broken.len());
    let state: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("sweep").join(air_tune::EXPERIMENT_STATE)).unwrap(),
    )
    .unwrap();
    let saved = state["trials"].as_array().unwrap();
    assert_eq!(saved.len(), 150);
    for r in grid.iter() {
        let i = r.config["i"].as_u64().unwrap();
        let rows: Vec<u64> = r.history.iter().map(|m| m["r"].as_u64().unwrap()).collect();
        let lines = std::fs::read_to_string(format!("{}/result.json", r.path)).unwrap();
        let in_state = saved
            .iter()
            .find(|t| t["id"] == r.trial_id.as_str())
            .unwrap();
        if broken.contains(&i) {
            assert_eq!(r.status, TrialStatus::Error, "trial {i}");
            assert_eq!(in_state["status"], "ERROR");
        } else {
            // A retried trial restarts from scratch (no checkpoint): its files and history
            // hold the second attempt's three results only.
            assert_eq!(rows, [0, 1, 2], "trial {i}");
            assert_eq!(lines.lines().count(), 3, "trial {i}: {lines}");
            assert_eq!(in_state["status"], "TERMINATED");
            assert_eq!(in_state["last_result"]["r"], 2);
        }
    }
}

#[test]
fn asha_stops_bad_trials_early() {
    let dir = tempfile::tempdir().unwrap();
    let grid = Tuner::new(
        curve,
        space!({ "x": grid_search([0.3, 0.5, 0.9, 1.5, 2.0, 3.0, 4.0, 5.0]), "iters": 27 }),
    )
    .with_tune_config(
        TuneConfig::new()
            .with_metric("loss", Mode::Min)
            .with_max_concurrent_trials(NonZeroUsize::new(1).unwrap())
            .with_scheduler(Asha::new().with_max_t(27.0).with_reduction_factor(3.0)),
    )
    .with_run_config(run_config(&dir, "asha"))
    .fit()
    .unwrap();
    let iters: Vec<u64> = grid
        .iter()
        .map(|r| r.metrics["training_iteration"].as_u64().unwrap())
        .collect();
    // Run one at a time in grid order (best first), every later trial is worse and is cut at
    // its first rung; the best runs to max_t.
    assert_eq!(iters[0], 27);
    assert!(iters[1..].iter().all(|&i| i < 27), "{iters:?}");
    assert!(iters.iter().sum::<u64>() < 27 * 8 / 2, "{iters:?}");
    assert_eq!(grid.best_result().unwrap().config["x"], json!(0.3));
    assert_eq!(grid.num_terminated(), 8);
}

#[test]
fn hyperband_pauses_and_resumes_from_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let grid = Tuner::new(
        curve,
        space!({ "x": grid_search([0.0, 0.3, 0.6, 0.9, 1.2, 1.5, 1.8, 2.1, 2.4]), "iters": 9 }),
    )
    .with_tune_config(
        TuneConfig::new()
            .with_metric("loss", Mode::Min)
            .with_scheduler(HyperBand::new().with_max_t(9.0)),
    )
    .with_run_config(run_config(&dir, "hb"))
    .fit()
    .unwrap();
    assert_eq!(grid.num_terminated(), 9);
    let best = grid.best_result().unwrap();
    assert_eq!(best.config["x"], json!(0.3));
    // The survivors reached max_t through pauses; each resumed where its checkpoint left off,
    // so its history has every iteration exactly once.
    let iters: Vec<u64> = best
        .history
        .iter()
        .map(|m| m["training_iteration"].as_u64().unwrap())
        .collect();
    assert_eq!(iters, (1..=9).collect::<Vec<_>>());
    let cut = grid
        .iter()
        .filter(|r| r.metrics["training_iteration"] == json!(1))
        .count();
    assert_eq!(cut, 6, "⌈9/3⌉ = 3 trials survive the first rung");
}

#[test]
fn pbt_clones_better_trials() {
    let dir = tempfile::tempdir().unwrap();
    let pbt = Pbt::new()
        .with_time_attr("training_iteration")
        .with_perturbation_interval(4.0)
        .with_mutation("x", uniform(0.0, 1.0));
    // One trial at a time: the bad first trial has nobody to copy, the good one is never in
    // the bottom quantile, and the last (worst) one clones the good one at iteration 4.
    let grid = Tuner::new(
        curve,
        space!({ "x": grid_search([3.0, 0.3, 4.0]), "iters": 12 }),
    )
    .with_tune_config(
        TuneConfig::new()
            .with_metric("loss", Mode::Min)
            .with_scheduler(pbt)
            .with_max_concurrent_trials(NonZeroUsize::new(1).unwrap())
            .with_seed(3),
    )
    .with_run_config(run_config(&dir, "pbt"))
    .fit()
    .unwrap();
    assert_eq!(grid.num_terminated(), 3);
    let xs: Vec<f64> = grid
        .iter()
        .map(|r| r.config["x"].as_f64().unwrap())
        .collect();
    assert_eq!(&xs[..2], &[3.0, 0.3]);
    // Explored from 0.3: perturbed by 1.2 or 0.8, or resampled from uniform(0, 1).
    assert!((0.0..=1.0).contains(&xs[2]), "{xs:?}");
    let cloned = grid.get(2).unwrap();
    let iters: Vec<u64> = cloned
        .history
        .iter()
        .map(|m| m["training_iteration"].as_u64().unwrap())
        .collect();
    // Its own 4 iterations, then it resumed from the source's final checkpoint (iteration 12)
    // with nothing left to run.
    assert_eq!(iters, vec![1, 2, 3, 4]);
}

#[test]
fn model_based_searchers_and_stoppers_run_real_trials() {
    let dir = tempfile::tempdir().unwrap();
    for (name, tune) in [
        (
            "tpe",
            TuneConfig::new().with_search_alg(ConcurrencyLimiter::new(
                TpeSearch::new().with_n_startup_trials(5),
                NonZeroUsize::new(1).unwrap(),
            )),
        ),
        (
            "bo",
            // One at a time, so the GP's suggestions do not depend on completion order.
            TuneConfig::new()
                .with_search_alg(BayesOptSearch::new().with_random_search_steps(5))
                .with_max_concurrent_trials(NonZeroUsize::new(1).unwrap()),
        ),
    ] {
        let grid = Tuner::new(curve, space!({ "x": uniform(-2.0, 2.0), "iters": 3 }))
            .with_tune_config(
                tune.with_metric("loss", Mode::Min)
                    .with_num_samples(NonZeroUsize::new(15).unwrap())
                    .with_seed(11),
            )
            .with_run_config(run_config(&dir, name))
            .fit()
            .unwrap();
        assert_eq!(grid.len(), 15, "{name}");
        let best = grid
            .get_best_result("loss", Mode::Min, Scope::Last)
            .unwrap();
        assert!(
            (best.config["x"].as_f64().unwrap() - 0.3).abs() < 0.5,
            "{name}: {}",
            best.config
        );
    }
    // A stopper and the run config's stop dict end trials early.
    let grid = Tuner::new(curve, space!({ "x": grid_search([0.0, 5.0]), "iters": 50 }))
        .with_stopper(MaximumIterationStopper::new(4))
        .with_run_config(run_config(&dir, "stop").with_stop("x", 5.0))
        .fit()
        .unwrap();
    let iters: Vec<Value> = grid
        .iter()
        .map(|r| r.metrics["training_iteration"].clone())
        .collect();
    assert_eq!(iters, vec![json!(4), json!(1)]);
}

#[test]
fn trainers_are_trainables_with_merged_configs() {
    let dir = tempfile::tempdir().unwrap();
    let data = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/data/breast_cancer.csv"
    );
    let (train, valid) = Dataset::read_csv(data)
        .unwrap()
        .train_test_split(0.3)
        .unwrap();
    let trainer = GbdtTrainer::new(
        "target",
        GbdtParams::new(Objective::BinaryLogistic)
            .with_eval_metrics([EvalMetric::Logloss, EvalMetric::Error]),
        ScalingConfig::new(NonZeroUsize::new(2).unwrap()),
        RunConfig::new(dir.path().to_str().unwrap()),
    )
    .unwrap()
    .with_num_boost_round(10)
    .with_dataset("train", train)
    .with_dataset("valid", valid)
    .with_preprocessor(StandardScaler::new(["mean radius", "mean texture"]));
    let grid = Tuner::new(
        trainer,
        space!({ "params": { "max_depth": randint(1, 9), "eta": loguniform(0.05, 0.5) } }),
    )
    .with_tune_config(
        TuneConfig::new()
            .with_metric("train-logloss", Mode::Min)
            .with_num_samples(NonZeroUsize::new(5).unwrap())
            .with_seed(2)
            .with_total_resources(Resources::cpu(4.0)),
    )
    .with_run_config(run_config(&dir, "xgb"))
    .fit()
    .unwrap();
    assert_eq!(grid.num_terminated(), 5, "{:?}", grid.errors());
    let best = grid.best_result().unwrap();
    let depth = best.config["params"]["max_depth"].as_i64().unwrap();
    assert!((1..9).contains(&depth));
    assert!(best.metrics["valid-error"].as_f64().unwrap() < 0.1);
    assert!(best.checkpoint.is_some());
    // The depths differ between trials and were used (deeper trees fit train better).
    let mut by_depth: Vec<(i64, f64)> = grid
        .iter()
        .map(|r| {
            (
                r.config["params"]["max_depth"].as_i64().unwrap(),
                r.metrics["train-logloss"].as_f64().unwrap(),
            )
        })
        .collect();
    by_depth.sort_by_key(|d| d.0);
    assert!(by_depth.first().unwrap().0 < by_depth.last().unwrap().0);

    // train_loop_config and scaling_config grid values merge into a DataParallelTrainer.
    let dp = DataParallelTrainer::new(
        |c: &Value, s: &mut Session| {
            s.report(
                json!({ "lr": c["lr"], "world": s.world_size(), "keep": c["keep"] }),
                None,
            )
        },
        ScalingConfig::new(NonZeroUsize::MIN),
        RunConfig::new(dir.path().to_str().unwrap()),
    )
    .with_train_loop_config(json!({ "keep": "me", "lr": 0.0 }));
    let grid = Tuner::new(
        dp,
        space!({
            "train_loop_config": { "lr": choice([0.1, 0.2]) },
            "scaling_config": { "num_workers": grid_search([1, 2]) },
        }),
    )
    .with_tune_config(TuneConfig::new().with_total_resources(Resources::cpu(2.0)))
    .with_run_config(run_config(&dir, "dp"))
    .fit()
    .unwrap();
    let worlds: Vec<Value> = grid.iter().map(|r| r.metrics["world"].clone()).collect();
    assert_eq!(worlds, vec![json!(1), json!(2)]);
    for r in &grid {
        assert_eq!(r.metrics["keep"], json!("me"));
        assert!([json!(0.1), json!(0.2)].contains(&r.metrics["lr"]));
    }
}

#[test]
fn loggers_off_and_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let grid = Tuner::new(curve, space!({ "x": 1.0, "iters": 2 }))
        .with_tune_config(TuneConfig::new().with_result_files(false))
        .with_run_config(run_config(&dir, "quiet"))
        .fit()
        .unwrap();
    let r = grid.get(0).unwrap();
    assert_eq!(r.history.len(), 2);
    assert!(!std::path::Path::new(&r.path).join("result.json").exists());
    assert!(r.checkpoint.is_some());

    let e = Tuner::new(curve, space!({ "params": { "depth": randint(5, 5) } }))
        .with_run_config(run_config(&dir, "bad"))
        .fit()
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("params.depth") && e.contains("randint(5, 5)"),
        "{e}"
    );
    let e = Tuner::new(curve, space!({ "x": grid_search([1, 2]) }))
        .with_tune_config(
            TuneConfig::new()
                .with_metric("loss", Mode::Min)
                .with_search_alg(TpeSearch::new()),
        )
        .with_run_config(run_config(&dir, "tpegrid"))
        .fit()
        .unwrap_err()
        .to_string();
    assert!(e.contains("grid_search") && e.contains("choice"), "{e}");
    let e = Tuner::new(curve, space!({ "x": 1.0 }))
        .with_tune_config(TuneConfig::new().with_scheduler(Asha::new()))
        .with_run_config(run_config(&dir, "nometric"))
        .fit()
        .unwrap_err()
        .to_string();
    assert!(e.contains("with_metric"), "{e}");
    // Checked once when the experiment starts, naming the field.
    let e = Tuner::new(curve, space!({ "x": 1.0 }))
        .with_tune_config(TuneConfig::new().with_total_resources(Resources::cpu(-1.0)))
        .with_run_config(run_config(&dir, "negative"))
        .fit()
        .unwrap_err()
        .to_string();
    assert!(e.contains("total_resources"), "{e}");
    let e = Tuner::restore(
        dir.path().join("nothing").to_str().unwrap(),
        curve,
        space!({}),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("experiment_state.json"), "{e}");
    let no_metric = grid.best_result().unwrap_err().to_string();
    assert!(no_metric.contains("get_best_result"), "{no_metric}");
}

#[test]
fn preprocessors_and_datasets_as_grid_values() {
    use air_data::{MinMaxScaler, preprocessor_to_json};
    let dir = tempfile::tempdir().unwrap();
    let full = Dataset::from_items(
        &(0..100)
            .map(|i| json!({ "a": f64::from(i) }))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let small = Dataset::from_items(
        &(0..10)
            .map(|i| json!({ "a": f64::from(i) }))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let csv = dir.path().join("tiny.csv");
    std::fs::write(&csv, "a\n1\n2\n3\n").unwrap();
    let trainer = DataParallelTrainer::new(
        |_: &Value, s: &mut Session| {
            let df = s.get_dataset_shard("train")?.to_polars()?;
            let col = df
                .column("a")
                .unwrap()
                .cast(&air_data::polars::prelude::DataType::Float64)
                .unwrap();
            let max = col
                .f64()
                .unwrap()
                .into_no_null_iter()
                .fold(f64::NEG_INFINITY, f64::max);
            s.report(json!({ "rows": df.height(), "max": max }), None)
        },
        ScalingConfig::new(NonZeroUsize::MIN),
        RunConfig::new(dir.path().to_str().unwrap()),
    )
    .with_dataset("train", full)
    .with_dataset_option("small", small)
    .with_preprocessor(StandardScaler::new(["a"]));
    let minmax = preprocessor_to_json(&MinMaxScaler::new(["a"])).unwrap();
    let grid = Tuner::new(
        trainer,
        space!({
            "preprocessor": grid_search([minmax, Value::Null]),
            "datasets": { "train": grid_search(["train", "small", csv.to_str().unwrap()]) },
        }),
    )
    .with_run_config(run_config(&dir, "variants"))
    .fit()
    .unwrap();
    assert_eq!(grid.num_terminated(), 6, "{:?}", grid.errors());
    let seen: Vec<(u64, f64)> = grid
        .iter()
        .map(|r| {
            (
                r.metrics["rows"].as_u64().unwrap(),
                r.metrics["max"].as_f64().unwrap(),
            )
        })
        .collect();
    // Grid axes in path order, the first ("datasets") slowest. MinMaxScaler maps every train
    // set's max to 1; no preprocessor leaves the raw values.
    assert_eq!(
        seen,
        vec![
            (100, 1.0),
            (100, 99.0),
            (10, 1.0),
            (10, 9.0),
            (3, 1.0),
            (3, 3.0)
        ]
    );
    // A source that is neither a registered dataset nor a readable file is named.
    let bad = DataParallelTrainer::new(
        |_: &Value, s: &mut Session| s.report(json!({}), None),
        ScalingConfig::new(NonZeroUsize::MIN),
        RunConfig::new(dir.path().to_str().unwrap()),
    )
    .with_dataset("train", Dataset::range(3));
    let grid = Tuner::new(bad, space!({ "datasets": { "train": "nope" } }))
        .with_run_config(run_config(&dir, "badsource"))
        .fit()
        .unwrap();
    let e = grid.errors()[0].1.to_owned();
    assert!(e.contains("\"nope\"") && e.contains("train"), "{e}");
}

#[test]
fn the_tuners_checkpoint_config_wins() {
    let dir = tempfile::tempdir().unwrap();
    let grid = Tuner::new(curve, space!({ "x": 0.3, "iters": 6 }))
        .with_run_config(run_config(&dir, "keep2").with_checkpoint_config(
            air_train::CheckpointConfig::new().with_num_to_keep(NonZeroUsize::new(2).unwrap()),
        ))
        .fit()
        .unwrap();
    let r = grid.get(0).unwrap();
    let mut kept: Vec<String> = std::fs::read_dir(&r.path)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("checkpoint_"))
        .collect();
    kept.sort();
    assert_eq!(kept, vec!["checkpoint_000004", "checkpoint_000005"]);
    assert_eq!(r.best_checkpoints.len(), 2);
}

/// Records every event as `event trial [detail]`.
#[derive(Debug, Default)]
struct Recording(Mutex<Vec<String>>);

impl air_train::Callback for Recording {
    fn name(&self) -> &str {
        "Recording"
    }
    fn on_trial_start(
        &self,
        t: &air_train::TrialContext,
        history: &[air_train::Metrics],
    ) -> Result<(), air_train::BoxError> {
        self.push(format!("start {} {}", t.id, history.len()));
        Ok(())
    }
    fn on_trial_result(
        &self,
        t: &air_train::TrialContext,
        r: &air_train::Metrics,
    ) -> Result<(), air_train::BoxError> {
        // The result is on disk before the callback hears of it.
        let on_disk = std::fs::read_to_string(format!("{}/result.json", t.path)).unwrap();
        assert_eq!(
            on_disk
                .lines()
                .last()
                .map(|l| serde_json::from_str::<Value>(l).unwrap()),
            Some(Value::Object(r.clone()))
        );
        self.push(format!("result {} {}", t.id, r["training_iteration"]));
        Ok(())
    }
    fn on_checkpoint(
        &self,
        t: &air_train::TrialContext,
        name: &str,
        location: &str,
        _: &air_train::Metrics,
    ) -> Result<(), air_train::BoxError> {
        assert!(
            Checkpoint::from_uri(location)
                .unwrap()
                .contains("state.json")
        );
        self.push(format!("checkpoint {} {name}", t.id));
        Ok(())
    }
    fn on_trial_complete(
        &self,
        t: &air_train::TrialContext,
        last: Option<&air_train::Metrics>,
    ) -> Result<(), air_train::BoxError> {
        self.push(format!(
            "complete {} {}",
            t.id,
            last.unwrap()["training_iteration"]
        ));
        Ok(())
    }
    fn on_trial_error(
        &self,
        t: &air_train::TrialContext,
        e: &str,
    ) -> Result<(), air_train::BoxError> {
        self.push(format!("error {} {}", t.id, e.contains("boom")));
        Ok(())
    }
    fn on_experiment_end(&self, _: &str) -> Result<(), air_train::BoxError> {
        self.push("end".to_owned());
        Err("a failing callback is a warning, not a failed experiment".into())
    }
}

impl Recording {
    fn push(&self, e: String) {
        self.0.lock().unwrap().push(e);
    }
}

#[test]
fn callbacks_hear_every_trial_event_on_the_driver_and_fit_runs() {
    let dir = tempfile::tempdir().unwrap();
    let events = Arc::new(Recording::default());
    // Trial x=0.9 fails once at its 2nd report, then resumes from its checkpoint.
    let failed = Arc::new(AtomicUsize::new(0));
    let f = Arc::clone(&failed);
    let grid = Tuner::new(
        move |c: &Value, s: &mut Session| -> Result<(), TrainError> {
            let start = s.get_checkpoint().map_or(0, |c| {
                c.get_json::<Value>("state.json").unwrap()["iter"]
                    .as_u64()
                    .unwrap()
            });
            for i in start + 1..=3 {
                if c["x"] == 0.9 && i == 2 && f.fetch_add(1, Ordering::SeqCst) == 0 {
                    return Err(TrainError::model("the loop", "boom"));
                }
                let mut ck = Checkpoint::new();
                ck.put_json("state.json", &json!({ "iter": i }))?;
                s.report(json!({ "loss": c["x"] }), Some(ck))?;
            }
            Ok(())
        },
        space!({ "x": grid_search([0.1, 0.9]) }),
    )
    .with_tune_config(
        TuneConfig::new()
            .with_metric("loss", Mode::Min)
            .with_max_concurrent_trials(NonZeroUsize::MIN),
    )
    .with_run_config(
        run_config(&dir, "callbacks")
            .with_failure_config(FailureConfig::new(MaxFailures::Limited(1)))
            .with_shared_callback(events.clone()),
    )
    .fit()
    .unwrap();
    assert_eq!(grid.num_errors(), 0);
    let ids: Vec<String> = grid.iter().map(|r| r.trial_id.clone()).collect();
    let (a, b) = (&ids[0], &ids[1]);
    let expected: Vec<String> = [
        format!("start {a} 0"),
        format!("checkpoint {a} checkpoint_000000"),
        format!("result {a} 1"),
        format!("checkpoint {a} checkpoint_000001"),
        format!("result {a} 2"),
        format!("checkpoint {a} checkpoint_000002"),
        format!("result {a} 3"),
        format!("complete {a} 3"),
        format!("start {b} 0"),
        format!("checkpoint {b} checkpoint_000000"),
        format!("result {b} 1"),
        format!("error {b} true"),
        // The retry resumes with the one result it keeps.
        format!("start {b} 1"),
        format!("checkpoint {b} checkpoint_000001"),
        format!("result {b} 2"),
        format!("checkpoint {b} checkpoint_000002"),
        format!("result {b} 3"),
        format!("complete {b} 3"),
        "end".to_owned(),
    ]
    .into();
    assert_eq!(*events.0.lock().unwrap(), expected);

    // A trainer's own fit: the run is the one trial.
    let events = Arc::new(Recording::default());
    let trainer = DataParallelTrainer::new(
        curve,
        ScalingConfig::new(NonZeroUsize::MIN),
        run_config(&dir, "fit").with_shared_callback(events.clone()),
    )
    .with_train_loop_config(json!({ "x": 0.3, "iters": 2 }));
    air_train::Trainer::fit(&trainer)
        .unwrap()
        .into_result()
        .unwrap();
    let got = events.0.lock().unwrap().clone();
    assert_eq!(
        got,
        [
            "start fit 0",
            "checkpoint fit checkpoint_000000",
            "result fit 1",
            "checkpoint fit checkpoint_000001",
            "result fit 2",
            "complete fit 2",
            "end"
        ]
    );
}
