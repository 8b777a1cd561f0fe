//! The learners outside a trainer: seeded reproducibility, checkpoints that round-trip and
//! resume, and configuration errors that name what was wrong.

use std::num::NonZeroUsize;

use air_checkpoint::Checkpoint;
use air_data::Dataset;
use air_rl::{
    RlError,
    algo::{
        Algorithm, AlgorithmConfig, Bc, BcConfig, Dqn, DqnConfig, ObservationFilter, Ppo, PpoConfig,
    },
    env::{Action, Env, EnvSpec, Info, Space, Transition, VectorEnv},
    policy::{ActionSelection, Policy},
};
use air_train::ComputeDevice;
use serde_json::{Map, Value, json};

fn small_ppo(seed: u64) -> PpoConfig {
    let mut c = PpoConfig::default();
    c.seed = seed;
    c.train_batch_size = 128;
    c.num_envs_per_worker = 4;
    c.sgd_minibatch_size = 32;
    c.num_sgd_iter = 2;
    c
}

fn small_dqn(seed: u64) -> DqnConfig {
    let mut c = DqnConfig::default();
    c.seed = seed;
    c.learning_starts = 100;
    c.train_freq = 50;
    c.gradient_steps = 5;
    c.timesteps_per_iteration = 200;
    c
}

fn cartpole() -> EnvSpec {
    EnvSpec::named("CartPole-v1").unwrap()
}

fn one() -> NonZeroUsize {
    NonZeroUsize::MIN
}

/// `n` iterations' metrics, wall-clock timers left out.
fn iterations(algo: &mut dyn Algorithm, n: usize) -> Vec<Map<String, Value>> {
    (0..n)
        .map(|_| {
            let mut m = algo.train().unwrap();
            m.retain(|k, _| !k.starts_with("timers/"));
            m
        })
        .collect()
}

fn probe_actions(policy: &Policy, seed: u64) -> Vec<Action> {
    let dim = policy.spec().observation_dim;
    let obs: Vec<Vec<f32>> = (0..16)
        .map(|i| {
            (0..dim)
                .map(|j| ((i * 7 + j * 3) % 11) as f32 / 11.0 - 0.5)
                .collect()
        })
        .collect();
    policy
        .compute_actions(&obs, &mut ActionSelection::sample(seed))
        .unwrap()
}

/// Builds a learner from a seed.
type Build = Box<dyn Fn(u64) -> Box<dyn Algorithm>>;

#[test]
fn same_seed_same_run_for_every_algorithm() {
    let builds: Vec<(&str, Build)> = vec![
        (
            "PPO discrete",
            Box::new(|s| {
                Box::new(Ppo::new(small_ppo(s), cartpole(), ComputeDevice::Cpu, one()).unwrap())
            }),
        ),
        (
            "PPO Gaussian",
            Box::new(|s| {
                let mut c = small_ppo(s);
                c.observation_filter = ObservationFilter::MeanStdFilter;
                let env = EnvSpec::named("Pendulum-v1").unwrap();
                Box::new(Ppo::new(c, env, ComputeDevice::Cpu, one()).unwrap())
            }),
        ),
        (
            "DQN",
            Box::new(|s| {
                Box::new(Dqn::new(small_dqn(s), cartpole(), ComputeDevice::Cpu, one()).unwrap())
            }),
        ),
    ];
    for (name, build) in builds {
        let (mut a, mut b, mut c) = (build(7), build(7), build(8));
        let (ra, rb, rc) = (
            iterations(a.as_mut(), 3),
            iterations(b.as_mut(), 3),
            iterations(c.as_mut(), 3),
        );
        assert_eq!(ra, rb, "{name}: same seed, different metrics");
        assert_eq!(
            probe_actions(&a.policy(), 1),
            probe_actions(&b.policy(), 1),
            "{name}"
        );
        assert_ne!(ra, rc, "{name}: another seed should give another run");
        assert_eq!(
            ra[2]["timesteps_total"],
            json!(if name == "DQN" { 600 } else { 384 }),
            "{name}"
        );
    }
}

#[test]
fn ppo_reports_rllib_style_metrics_and_improves_a_little() {
    let mut c = small_ppo(0);
    c.train_batch_size = 512;
    c.num_envs_per_worker = 8;
    c.num_sgd_iter = 4;
    c.lr = 1e-3;
    c.evaluation_interval = Some(2);
    c.evaluation_duration = 3;
    let mut ppo = Ppo::new(
        c,
        cartpole(),
        ComputeDevice::Cpu,
        NonZeroUsize::new(2).unwrap(),
    )
    .unwrap();
    let first = ppo.train().unwrap();
    for key in [
        "episode_reward_mean",
        "episode_len_mean",
        "episodes_total",
        "timesteps_total",
        "policy_loss",
        "vf_loss",
        "entropy",
        "kl",
        "cur_lr",
    ] {
        assert!(first.contains_key(key), "missing {key} in {first:?}");
    }
    assert!(!first.contains_key("evaluation/episode_reward_mean"));
    let mut last = first.clone();
    for _ in 0..9 {
        last = ppo.train().unwrap();
    }
    assert!(last["evaluation/episode_reward_mean"].as_f64().unwrap() > 0.0);
    // A random policy averages ~22 steps; ten small iterations already do better.
    let (before, after) = (
        first["episode_reward_mean"].as_f64().unwrap(),
        last["episode_reward_mean"].as_f64().unwrap(),
    );
    assert!(after > before + 10.0, "{before} -> {after}");
    // The entropy of two near-uniform actions starts at ln 2.
    assert!((first["entropy"].as_f64().unwrap() - 2f64.ln()).abs() < 0.05);
}

#[test]
fn a_checkpoint_round_trips_through_a_directory_and_resumes() {
    let mut c = small_ppo(3);
    c.observation_filter = ObservationFilter::MeanStdFilter;
    let pendulum = EnvSpec::named("Pendulum-v1").unwrap();
    let mut ppo = Ppo::new(c.clone(), pendulum.clone(), ComputeDevice::Cpu, one()).unwrap();
    iterations(&mut ppo, 2);
    let mut checkpoint = Checkpoint::new();
    ppo.save(&mut checkpoint).unwrap();
    let dir = tempfile::tempdir().unwrap();
    checkpoint.to_directory(dir.path()).unwrap();
    let loaded = Checkpoint::from_directory(dir.path()).unwrap();

    let policy = Policy::from_checkpoint(&loaded).unwrap();
    assert_eq!(policy.spec(), ppo.policy().spec());
    assert!(policy.spec().obs_filter.as_ref().unwrap().stats.count() >= 256.0);
    assert_eq!(probe_actions(&policy, 5), probe_actions(&ppo.policy(), 5));
    let greedy = policy.compute_action(&[1.0, 0.0, 0.0]).unwrap();
    let Action::Continuous(v) = greedy else {
        panic!("{greedy:?}")
    };
    assert!(v.len() == 1 && (-2.0..=2.0).contains(&v[0]));

    let config: AlgorithmConfig = loaded.get_json(air_rl::algo::ALGORITHM_ENTRY).unwrap();
    assert_eq!(config, AlgorithmConfig::Ppo(c.clone()));
    let mut resumed = Ppo::new(c, pendulum, ComputeDevice::Cpu, one()).unwrap();
    resumed.restore(&loaded).unwrap();
    let m = resumed.train().unwrap();
    assert_eq!(m["timesteps_total"], 384);
    assert_eq!(m["num_updates_total"], 3 * 2 * 4);
}

#[test]
fn broken_checkpoints_are_named_errors() {
    let err = Policy::from_checkpoint(&Checkpoint::new()).unwrap_err();
    assert!(matches!(err, RlError::NotAnRlCheckpoint { .. }), "{err}");
    assert!(err.to_string().contains("policy.json"), "{err}");

    let ppo = Ppo::new(small_ppo(0), cartpole(), ComputeDevice::Cpu, one()).unwrap();
    let mut checkpoint = Checkpoint::new();
    ppo.save(&mut checkpoint).unwrap();
    let dir = tempfile::tempdir().unwrap();
    checkpoint.to_directory(dir.path()).unwrap();
    let weights = dir.path().join("model.mpk");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    // The truncation is caught when the checkpoint opens (or, past that, when its weights load),
    // naming the entry.
    let err = Checkpoint::from_directory(dir.path())
        .map_err(RlError::from)
        .and_then(|c| Policy::from_checkpoint(&c))
        .unwrap_err();
    assert!(err.to_string().contains("model.mpk"), "{err}");

    // A policy of another shape does not load into a learner.
    let mut wide = small_ppo(0);
    wide.fcnet_hiddens = vec![8];
    let mut other = Ppo::new(wide, cartpole(), ComputeDevice::Cpu, one()).unwrap();
    let err = other.restore(&checkpoint).unwrap_err();
    assert!(err.to_string().contains("hidden [8]"), "{err}");
}

#[test]
fn observations_of_the_wrong_size_or_not_finite_are_refused() {
    let policy = Ppo::new(small_ppo(0), cartpole(), ComputeDevice::Cpu, one())
        .unwrap()
        .policy();
    let err = policy.compute_action(&[0.0, 1.0]).unwrap_err();
    assert!(
        err.to_string().contains("observation 0 has 2 values"),
        "{err}"
    );
    assert!(
        err.to_string().contains("4 values per observation"),
        "{err}"
    );
    let err = policy
        .compute_action(&[0.0, f32::NAN, 0.0, 0.0])
        .unwrap_err();
    assert!(err.to_string().contains("NaN at position 1"), "{err}");
}

#[test]
fn configurations_are_checked_once_with_the_field_named() {
    let mut c = small_ppo(0);
    c.train_batch_size = 130;
    let err = Ppo::new(c, cartpole(), ComputeDevice::Cpu, one()).unwrap_err();
    assert!(err.to_string().contains("train_batch_size"), "{err}");
    assert!(
        err.to_string()
            .contains("multiple of the number of environment copies (4"),
        "{err}"
    );

    let err = Dqn::new(
        small_dqn(0),
        EnvSpec::named("Pendulum-v1").unwrap(),
        ComputeDevice::Cpu,
        one(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("Discrete action space"), "{err}");

    let err = EnvSpec::named("CartPole-v0").unwrap_err();
    assert!(err.to_string().contains("CartPole-v1"), "{err}");

    let err = serde_json::from_value::<AlgorithmConfig>(json!({"algorithm": "PPO", "lrr": 0.1}))
        .unwrap_err();
    assert!(err.to_string().contains("lrr"), "{err}");
    let err = serde_json::from_value::<AlgorithmConfig>(json!({"algorithm": "A3C"})).unwrap_err();
    assert!(err.to_string().contains("PPO"), "{err}");
    let ok: AlgorithmConfig =
        serde_json::from_value(json!({"algorithm": "DQN", "lr": 0.01})).unwrap();
    assert!(matches!(ok, AlgorithmConfig::Dqn(ref d) if d.lr == 0.01));
}

/// Logged CartPole steps of a hand-written expert (push the way the pole falls).
fn expert_steps(episodes: u64) -> Vec<Value> {
    let mut env = air_rl::env::make("CartPole-v1").unwrap();
    let mut rows = Vec::new();
    for e in 0..episodes {
        let (mut obs, _) = env.reset(Some(e));
        loop {
            let action = usize::from(obs[3].mul_add(0.5, obs[2]) > 0.0);
            let t = env.step(&Action::Discrete(action)).unwrap();
            rows.push(json!({"obs": obs, "action": action, "reward": t.reward, "done": t.done()}));
            let done = t.done();
            obs = t.obs;
            if done {
                break;
            }
        }
    }
    rows
}

#[test]
fn bc_clones_a_scripted_expert_and_checks_its_data() {
    let data = Dataset::from_items(&expert_steps(10)).unwrap();
    let mut c = BcConfig::default();
    c.evaluation_duration = 3;
    c.lr = 3e-3;
    let mut bc = Bc::new(c.clone(), &data, Some(cartpole()), ComputeDevice::Cpu).unwrap();
    let mut last = Map::new();
    for _ in 0..15 {
        last = bc.train().unwrap();
    }
    assert!(last["policy_loss"].as_f64().unwrap() < 0.3, "{last:?}");
    assert!(
        last["episode_reward_mean"].as_f64().unwrap() > 150.0,
        "{last:?}"
    );

    // Without an environment the spaces come from the data.
    let offline = Bc::new(c.clone(), &data, None, ComputeDevice::Cpu).unwrap();
    assert_eq!(
        offline.policy().spec().action_space,
        Space::Discrete { n: 2 }
    );

    let bad = Dataset::from_items(&[json!({"obs": [0.0, 0.1, 0.2, 0.3], "action": 2})]).unwrap();
    let err = Bc::new(c.clone(), &bad, Some(cartpole()), ComputeDevice::Cpu).unwrap_err();
    assert!(err.to_string().contains("an integer in 0..2"), "{err}");
    let short = Dataset::from_items(&[json!({"obs": [0.0, 0.1], "action": 1})]).unwrap();
    let err = Bc::new(c.clone(), &short, Some(cartpole()), ComputeDevice::Cpu).unwrap_err();
    assert!(err.to_string().contains("list of 4 numbers"), "{err}");
    let renamed =
        Dataset::from_items(&[json!({"state": [0.0, 0.1, 0.2, 0.3], "action": 1})]).unwrap();
    let err = Bc::new(c, &renamed, Some(cartpole()), ComputeDevice::Cpu).unwrap_err();
    assert!(err.to_string().contains("obs"), "{err}");
}

/// A user environment that trusts its actions (indexes with them unchecked).
struct Trusting {
    obs: Space,
    actions: Space,
}

impl Env for Trusting {
    fn name(&self) -> &str {
        "Trusting"
    }
    fn observation_space(&self) -> &Space {
        &self.obs
    }
    fn action_space(&self) -> &Space {
        &self.actions
    }
    fn reset(&mut self, _seed: Option<u64>) -> (Vec<f32>, Info) {
        (vec![0.0], Info::new())
    }
    fn step(&mut self, action: &Action) -> Result<Transition, RlError> {
        let Action::Discrete(a) = action else {
            panic!("unchecked action {action}")
        };
        let reward = [1.0, 2.0, 3.0][*a];
        Ok(Transition {
            obs: vec![0.0],
            reward,
            terminated: true,
            truncated: false,
            info: Info::new(),
        })
    }
    fn state(&self) -> Vec<f64> {
        Vec::new()
    }
    fn set_state(&mut self, _state: &[f64]) -> Result<(), RlError> {
        Ok(())
    }
}

#[test]
fn a_user_env_is_never_stepped_with_an_action_outside_its_space() {
    let make = || {
        Ok(Box::new(Trusting {
            obs: Space::boxed([-1.0], [1.0]),
            actions: Space::Discrete { n: 3 },
        }) as Box<dyn Env>)
    };
    let mut envs = VectorEnv::new(NonZeroUsize::new(2).unwrap(), make).unwrap();
    envs.reset(Some(0));
    let ok = envs
        .step(&[Action::Discrete(2), Action::Discrete(0)])
        .unwrap();
    assert_eq!(ok.rewards, vec![3.0, 1.0]);
    let err = envs
        .step(&[Action::Discrete(1), Action::Discrete(7)])
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("Trusting: action 7 is not in the action space Discrete(3)"),
        "{err}"
    );
    let err = envs
        .step(&[Action::Continuous(vec![0.5]), Action::Discrete(0)])
        .unwrap_err();
    assert!(err.to_string().contains("Discrete(3)"), "{err}");
}
