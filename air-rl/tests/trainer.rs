//! RLTrainer through air-train's machinery: reports and checkpoints, stop conditions,
//! resuming, restarts after a failing environment, offline training, trial configs.

use std::{
    num::NonZeroUsize,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use air_data::Dataset;
use air_rl::{
    RLTrainer, RlError,
    algo::{BcConfig, PpoConfig},
    env::{Action, Env, EnvSpec, Info, Space, Transition, make},
    policy::Policy,
};
use air_train::{
    FailureConfig, MaxFailures, RunConfig, ScalingConfig, Trainable, Trainer, TrialInfo, Verbosity,
};
use serde_json::json;

fn small_ppo() -> PpoConfig {
    let mut c = PpoConfig::default();
    c.train_batch_size = 128;
    c.num_envs_per_worker = 4;
    c.sgd_minibatch_size = 64;
    c.num_sgd_iter = 2;
    c
}

fn run(dir: &tempfile::TempDir, name: &str) -> RunConfig {
    RunConfig::new(dir.path().display().to_string())
        .with_name(name)
        .with_verbose(Verbosity::Silent)
}

fn one() -> ScalingConfig {
    ScalingConfig::new(NonZeroUsize::MIN)
}

#[test]
fn fit_reports_every_iteration_with_a_checkpoint_until_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let trainer = RLTrainer::new(
        small_ppo(),
        EnvSpec::named("CartPole-v1").unwrap(),
        ScalingConfig::new(NonZeroUsize::new(2).unwrap()),
        run(&dir, "ppo").with_stop("training_iteration", 3.0),
    );
    let result = trainer.fit().unwrap().into_result().unwrap();
    assert_eq!(result.metrics["training_iteration"], 3);
    assert_eq!(result.metrics["timesteps_total"], 384);
    assert!(result.metrics["episode_reward_mean"].as_f64().unwrap() > 5.0);
    assert_eq!(result.metrics_dataframe().unwrap().height(), 3);
    let checkpoint = result.checkpoint.unwrap();
    for entry in [
        "policy.json",
        "model.mpk",
        "algorithm.json",
        "learner_state.json",
    ] {
        assert!(checkpoint.contains(entry), "{entry}");
    }
    assert_eq!(
        Policy::from_checkpoint(&checkpoint)
            .unwrap()
            .spec()
            .algorithm,
        "PPO"
    );

    // Resuming continues the counts.
    let resumed = RLTrainer::new(
        small_ppo(),
        EnvSpec::named("CartPole-v1").unwrap(),
        one(),
        run(&dir, "ppo_resumed").with_stop("training_iteration", 5.0),
    )
    .with_resume_from_checkpoint(checkpoint);
    let result = resumed.fit().unwrap().into_result().unwrap();
    assert_eq!(result.metrics["training_iteration"], 5);
    assert_eq!(result.metrics["timesteps_total"], 640);
}

#[test]
fn fit_without_a_stop_condition_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let trainer = RLTrainer::new(
        small_ppo(),
        EnvSpec::named("CartPole-v1").unwrap(),
        one(),
        run(&dir, "forever"),
    );
    let err = trainer.fit().unwrap_err();
    assert!(err.to_string().contains("stop condition"), "{err}");
}

/// CartPole that fails once, at its `fail_at`-th step counted over every copy.
struct Flaky {
    inner: Box<dyn Env>,
    steps: Arc<AtomicUsize>,
    fail_at: usize,
}

impl Env for Flaky {
    fn name(&self) -> &str {
        "Flaky"
    }
    fn observation_space(&self) -> &Space {
        self.inner.observation_space()
    }
    fn action_space(&self) -> &Space {
        self.inner.action_space()
    }
    fn reset(&mut self, seed: Option<u64>) -> (Vec<f32>, Info) {
        self.inner.reset(seed)
    }
    fn step(&mut self, action: &Action) -> Result<Transition, RlError> {
        if self.steps.fetch_add(1, Ordering::SeqCst) + 1 == self.fail_at {
            return Err(RlError::NotReset("Flaky (a simulated crash)".to_owned()));
        }
        self.inner.step(action)
    }
    fn state(&self) -> Vec<f64> {
        self.inner.state()
    }
    fn set_state(&mut self, state: &[f64]) -> Result<(), RlError> {
        self.inner.set_state(state)
    }
}

#[test]
fn a_failing_environment_restarts_the_run_from_its_latest_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let steps = Arc::new(AtomicUsize::new(0));
    let counter = steps.clone();
    // Fails during the third iteration (each takes 128 steps).
    let env = EnvSpec::custom("Flaky", move || {
        Ok(Box::new(Flaky {
            inner: make("CartPole-v1")?,
            steps: counter.clone(),
            fail_at: 300,
        }) as Box<dyn Env>)
    });
    let trainer = RLTrainer::new(
        small_ppo(),
        env.clone(),
        one(),
        run(&dir, "flaky")
            .with_stop("training_iteration", 4.0)
            .with_failure_config(FailureConfig::new(MaxFailures::Limited(1))),
    );
    let result = trainer.fit().unwrap().into_result().unwrap();
    assert_eq!(result.metrics["training_iteration"], 4);
    // Two iterations before the crash, two after the restart from the second checkpoint.
    assert_eq!(result.metrics["timesteps_total"], 512);

    // Without restarts the error surfaces, naming the environment's complaint.
    steps.store(0, Ordering::SeqCst);
    let trainer = RLTrainer::new(
        small_ppo(),
        env,
        one(),
        run(&dir, "flaky_fails").with_stop("training_iteration", 4.0),
    );
    let err = trainer.fit().unwrap().into_result().unwrap_err();
    assert!(err.to_string().contains("simulated crash"), "{err}");
}

#[test]
fn bc_trains_offline_from_a_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = make("CartPole-v1").unwrap();
    let mut rows = Vec::new();
    for e in 0..5 {
        let (mut obs, _) = env.reset(Some(e));
        loop {
            let action = usize::from(obs[3].mul_add(0.5, obs[2]) > 0.0);
            let t = env.step(&Action::Discrete(action)).unwrap();
            rows.push(json!({"obs": obs, "action": action}));
            let done = t.done();
            obs = t.obs;
            if done {
                break;
            }
        }
    }
    let data = Dataset::from_items(&rows).unwrap();
    let trainer = RLTrainer::offline(
        BcConfig::default(),
        data.clone(),
        one(),
        run(&dir, "bc").with_stop("training_iteration", 2.0),
    );
    let result = trainer.fit().unwrap().into_result().unwrap();
    assert!(result.metrics["policy_loss"].as_f64().unwrap() < 0.7);
    // No environment: no evaluation.
    assert!(
        !result
            .metrics
            .contains_key("evaluation/episode_reward_mean")
    );

    // BC without a dataset is a clear error.
    let trainer = RLTrainer::new(
        BcConfig::default(),
        EnvSpec::named("CartPole-v1").unwrap(),
        one(),
        run(&dir, "bc_nodata").with_stop("training_iteration", 1.0),
    );
    let err = trainer.fit().unwrap().into_result().unwrap_err();
    assert!(err.to_string().contains("\"train\" dataset"), "{err}");
}

#[test]
fn trial_configs_patch_the_algorithm_and_bad_ones_fail_the_trial() {
    let dir = tempfile::tempdir().unwrap();
    let trainer = RLTrainer::new(
        small_ppo(),
        EnvSpec::named("CartPole-v1").unwrap(),
        ScalingConfig::new(NonZeroUsize::new(2).unwrap()),
        run(&dir, "trials").with_stop("training_iteration", 1.0),
    );
    assert_eq!(trainer.resources(&json!({})).cpu, 2.0);
    assert_eq!(
        trainer
            .resources(&json!({"scaling_config": {"num_workers": 3}}))
            .cpu,
        3.0
    );
    let trial = TrialInfo::new("t0", "t0").with_storage_path(&dir.path().display().to_string());
    let ok = trainer.run_trial(
        &json!({"config": {"lr": 0.001, "train_batch_size": 256}}),
        &trial,
    );
    assert!(ok.error.is_none(), "{:?}", ok.error);
    assert_eq!(ok.metrics["timesteps_total"], 256);
    assert_eq!(ok.metrics["cur_lr"], 0.001);

    let bad = trainer.run_trial(&json!({"config": {"learning_rate": 0.1}}), &trial);
    let err = bad.error.unwrap().to_string();
    assert!(err.contains("learning_rate"), "{err}");
    let bad = trainer.run_trial(&json!({"params": {}}), &trial);
    assert!(bad.error.unwrap().to_string().contains("\"config\""));
}
