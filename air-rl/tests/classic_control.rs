//! The classic-control environments replay gymnasium's trajectories (written by
//! `tests/fixtures/classic_control/make_fixtures.py`): from each episode's state after reset,
//! the same actions give every observation to 1e-6, the same rewards, and the same step at
//! which the episode terminated or was truncated.

use air_rl::{
    RlError,
    env::{Action, ENVIRONMENTS, Env, Space, VectorEnv, make},
};
use serde_json::Value;

fn fixtures() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/classic_control/trajectories.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn action(space: &Space, v: &Value) -> Action {
    match space {
        Space::Discrete { .. } => Action::Discrete(v.as_u64().unwrap() as usize),
        Space::Box { .. } => Action::Continuous(floats(v).iter().map(|x| *x as f32).collect()),
    }
}

#[test]
fn every_environment_replays_gymnasiums_trajectories() {
    let fixtures = fixtures();
    let episodes = fixtures["episodes"].as_array().unwrap();
    let mut steps = 0;
    let mut max_diff = 0.0f64;
    let mut seen = std::collections::BTreeSet::new();
    for e in episodes {
        let name = e["env"].as_str().unwrap();
        seen.insert(name.to_owned());
        let mut env = make(name).unwrap();
        env.reset(Some(e["seed"].as_u64().unwrap()));
        env.set_state(&floats(&e["state"])).unwrap();
        let actions = e["actions"].as_array().unwrap();
        for (i, a) in actions.iter().enumerate() {
            let t = env.step(&action(env.action_space(), a)).unwrap();
            let expected = floats(&e["obs"][i]);
            assert_eq!(t.obs.len(), expected.len());
            for (k, (got, want)) in t.obs.iter().zip(&expected).enumerate() {
                max_diff = max_diff.max((f64::from(*got) - want).abs());
                assert!(
                    (f64::from(*got) - want).abs() <= 1e-6,
                    "{name} seed {}: step {i}, obs[{k}] = {got}, gymnasium {want}",
                    e["seed"]
                );
            }
            let reward = e["rewards"][i].as_f64().unwrap();
            assert!(
                (t.reward - reward).abs() <= 1e-6 * reward.abs().max(1.0),
                "{name} step {i}: reward {} vs {reward}",
                t.reward
            );
            assert_eq!(
                t.terminated,
                e["terminated"][i].as_bool().unwrap(),
                "{name} step {i}"
            );
            assert_eq!(
                t.truncated,
                e["truncated"][i].as_bool().unwrap(),
                "{name} step {i}"
            );
            steps += 1;
        }
    }
    assert_eq!(
        seen.len(),
        ENVIRONMENTS.len(),
        "every environment has fixtures"
    );
    assert!(steps > 5000, "{steps} steps replayed");
    eprintln!("{steps} steps replayed; largest observation difference {max_diff:e}");
}

#[test]
fn seeded_resets_are_reproducible_and_within_gymnasiums_bounds() {
    for (name, _) in ENVIRONMENTS {
        let mut a = make(name).unwrap();
        let mut b = make(name).unwrap();
        let (oa, _) = a.reset(Some(7));
        let (ob, _) = b.reset(Some(7));
        assert_eq!(oa, ob, "{name}");
        assert_ne!(
            a.reset(Some(8)).0,
            oa,
            "{name}: another seed, another start"
        );
        let state = a.state();
        let (low, high) = match name {
            "CartPole-v1" => (-0.05, 0.05),
            "Acrobot-v1" => (-0.1, 0.1),
            "Pendulum-v1" => (-std::f64::consts::PI, std::f64::consts::PI),
            _ => (-0.6, 0.0),
        };
        assert!(
            state.iter().all(|s| (low..=high).contains(s)),
            "{name}: {state:?}"
        );
    }
}

#[test]
fn bad_actions_states_and_names_are_clear_errors() {
    let mut env = make("CartPole-v1").unwrap();
    assert!(matches!(
        env.step(&Action::Discrete(0)),
        Err(RlError::NotReset(_))
    ));
    env.reset(Some(0));
    let err = env.step(&Action::Discrete(2)).unwrap_err();
    assert!(
        err.to_string()
            .contains("action 2 is not in the action space Discrete(2)"),
        "{err}"
    );
    let err = env.step(&Action::Continuous(vec![0.5])).unwrap_err();
    assert!(matches!(err, RlError::InvalidAction { .. }), "{err}");
    let mut pendulum = make("Pendulum-v1").unwrap();
    pendulum.reset(Some(0));
    for bad in [vec![f32::NAN], vec![1.0, 2.0]] {
        let err = pendulum.step(&Action::Continuous(bad)).unwrap_err();
        assert!(
            err.to_string().contains("Box(low=[-2.0], high=[2.0])"),
            "{err}"
        );
    }
    let err = env.set_state(&[0.0, 1.0]).unwrap_err();
    assert!(err.to_string().contains("4 finite numbers"), "{err}");
    let err = make("CartPole-v9").unwrap_err();
    assert!(
        err.to_string()
            .contains("known: [CartPole-v1, MountainCar-v0"),
        "{err}"
    );
}

#[test]
fn a_vector_env_equals_its_copies_stepped_alone_on_any_number_of_threads() {
    let n = std::num::NonZeroUsize::new(5).unwrap();
    let policy =
        |obs: &[f32], t: usize| Action::Discrete(usize::from(obs[2] > 0.0 || t.is_multiple_of(7)));
    let run = |threads: usize| {
        let mut v = VectorEnv::new(n, || make("CartPole-v1"))
            .unwrap()
            .with_threads(std::num::NonZeroUsize::new(threads).unwrap())
            .unwrap();
        let mut obs = v.reset(Some(100));
        let mut log = Vec::new();
        for t in 0..300 {
            let actions: Vec<Action> = obs.iter().map(|o| policy(o, t)).collect();
            let s = v.step(&actions).unwrap();
            obs = s.obs.clone();
            log.push(s);
        }
        log
    };
    let one = run(1);
    let mut v = VectorEnv::new(n, || make("CartPole-v1")).unwrap();
    v.reset(Some(0));
    let err = v.step(&[Action::Discrete(0)]).unwrap_err();
    assert!(
        err.to_string()
            .contains("1 actions; expected one per copy: 5"),
        "{err}"
    );
    assert_eq!(one, run(3), "3 threads = 1 thread");
    // Copy 2 alone, replayed with its own seed, matches until its first episode ends.
    let mut alone = make("CartPole-v1").unwrap();
    let (mut obs, _) = alone.reset(Some(102));
    let mut resets = 0;
    for (t, s) in one.iter().enumerate() {
        let step = alone.step(&policy(&obs, t)).unwrap();
        if step.done() {
            assert_eq!(s.final_obs[2].as_deref(), Some(&step.obs[..]));
            resets += 1;
            break;
        }
        assert_eq!(s.obs[2], step.obs, "step {t}");
        obs = step.obs;
    }
    assert_eq!(resets, 1, "copy 2's first episode ended within 300 steps");
    assert!(
        one.iter()
            .map(|s| s.final_obs.iter().flatten().count())
            .sum::<usize>()
            > 5
    );
}
