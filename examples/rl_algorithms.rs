//! The other acceptance runs of air-rl, each through `RLTrainer`:
//!
//! - `dqn`: double DQN on CartPole-v1 until 20 greedy evaluation episodes all reach 500, then
//!   100 greedy episodes (goal ≥ 475);
//! - `pendulum`: PPO with a Gaussian policy on Pendulum-v1, then 100 greedy episodes
//!   (goal ≥ −250);
//! - `bc`: PPO learns CartPole, its (sampling) policy logs 1,000 episodes to JSON lines, and
//!   behaviour cloning learns from the file read back as a `Dataset` (Ray AIR's offline
//!   example: `read_json` → `RLTrainer(algorithm="BC", datasets={"train": ...})`); goal ≥ 400
//!   over 100 greedy episodes.
//!
//! ```text
//! cargo run --release --features rl --example rl_algorithms -- all
//! ```
//!
//! Each is also a test (`cargo test --features rl --example rl_algorithms`).

use std::{
    io::{BufWriter, Write},
    num::NonZeroUsize,
    time::Instant,
};

use air::{
    checkpoint::Checkpoint,
    data::Dataset,
    rl::{
        RLTrainer,
        algo::{AlgorithmConfig, BcConfig, DqnConfig, PpoConfig},
        env::{Action, EnvSpec, VectorEnv, make},
        evaluate,
        policy::{ActionSelection, Policy},
    },
    train::{CheckpointConfig, RunConfig, ScalingConfig, Trainer, Verbosity},
};
use anyhow::Context;

/// What a run measured.
#[derive(Debug)]
struct Outcome {
    name: &'static str,
    seconds: f64,
    /// Environment steps (online) or samples trained on (offline).
    steps: u64,
    mean_return: f64,
}

impl Outcome {
    fn print(&self) {
        println!(
            "{}: {:.1} s of training, {} {}, mean greedy return {:.1} over 100 episodes",
            self.name,
            self.seconds,
            self.steps,
            if self.name.starts_with("BC") {
                "samples trained on"
            } else {
                "env steps"
            },
            self.mean_return
        );
    }
}

/// Trains until `stop` (or `max_steps`), returning the last checkpoint, seconds and steps.
fn fit(
    storage: &str,
    name: &str,
    algorithm: impl Into<AlgorithmConfig>,
    env: Option<&str>,
    train: Option<Dataset>,
    stop: (&str, f64),
    max_iterations: f64,
) -> anyhow::Result<(Checkpoint, f64, u64)> {
    let run = RunConfig::new(storage)
        .with_name(name)
        .with_stop(stop.0, stop.1)
        .with_stop("training_iteration", max_iterations)
        .with_checkpoint_config(CheckpointConfig::new().with_num_to_keep(NonZeroUsize::MIN))
        .with_verbose(Verbosity::Silent);
    let scaling = ScalingConfig::new(NonZeroUsize::MIN);
    let trainer = match (env, train) {
        (Some(env), None) => RLTrainer::new(algorithm, EnvSpec::named(env)?, scaling, run),
        (Some(env), Some(data)) => RLTrainer::new(algorithm, EnvSpec::named(env)?, scaling, run)
            .with_dataset("train", data),
        (None, Some(data)) => RLTrainer::offline(algorithm, data, scaling, run),
        (None, None) => anyhow::bail!("an environment or a dataset"),
    };
    let start = Instant::now();
    let result = trainer.fit()?.into_result()?;
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "{name}: {} iterations, last metrics: {stop:?} -> {}",
        result.metrics["training_iteration"],
        result.metrics.get(stop.0).cloned().unwrap_or_default()
    );
    let steps = result.metrics["timesteps_total"].as_u64().unwrap_or(0);
    Ok((result.checkpoint.context("a checkpoint")?, seconds, steps))
}

fn greedy_mean(checkpoint: &Checkpoint, env: &str) -> anyhow::Result<f64> {
    Ok(evaluate(checkpoint, &EnvSpec::named(env)?, 100)?.mean_return())
}

fn dqn(storage: &str) -> anyhow::Result<Outcome> {
    let mut c = DqnConfig::default();
    c.evaluation_interval = Some(2);
    c.evaluation_duration = 20;
    let stop = ("evaluation/episode_reward_mean", 500.0);
    let (checkpoint, seconds, env_steps) = fit(
        storage,
        "dqn_cartpole",
        c,
        Some("CartPole-v1"),
        None,
        stop,
        200.0,
    )?;
    Ok(Outcome {
        name: "DQN CartPole-v1",
        seconds,
        steps: env_steps,
        mean_return: greedy_mean(&checkpoint, "CartPole-v1")?,
    })
}

fn pendulum(storage: &str) -> anyhow::Result<Outcome> {
    let mut c = PpoConfig::pendulum();
    c.evaluation_interval = Some(5);
    c.evaluation_duration = 20;
    let stop = ("evaluation/episode_reward_mean", -180.0);
    let (checkpoint, seconds, env_steps) = fit(
        storage,
        "ppo_pendulum",
        c,
        Some("Pendulum-v1"),
        None,
        stop,
        150.0,
    )?;
    Ok(Outcome {
        name: "PPO Pendulum-v1",
        seconds,
        steps: env_steps,
        mean_return: greedy_mean(&checkpoint, "Pendulum-v1")?,
    })
}

/// PPO's CartPole preset, evaluated like in `rl_cartpole`.
fn cartpole_ppo() -> PpoConfig {
    let mut c = PpoConfig::cartpole();
    c.evaluation_interval = Some(5);
    c.evaluation_duration = 20;
    c
}

/// Plays `episodes` episodes of CartPole with `policy` sampling, on 16 copies at once, and
/// writes every step as a JSON line `{"obs", "action", "reward", "done", "episode"}`.
fn log_episodes(policy: &Policy, episodes: u64, path: &std::path::Path) -> anyhow::Result<u64> {
    let copies = NonZeroUsize::new(16).unwrap();
    let mut envs = VectorEnv::new(copies, || make("CartPole-v1"))?;
    let mut obs = envs.reset(Some(1));
    let mut out = BufWriter::new(std::fs::File::create(path)?);
    let mut selection = ActionSelection::sample(2);
    let mut episode_of: Vec<u64> = (0..16).collect();
    let (mut next_episode, mut finished, mut steps) = (16u64, 0u64, 0u64);
    while finished < episodes {
        let actions = policy.compute_actions(&obs, &mut selection)?;
        let step = envs.step(&actions)?;
        for i in 0..copies.get() {
            let done = step.terminated[i] || step.truncated[i];
            // Episodes started past the quota are not logged (no partial episodes).
            if episode_of[i] < episodes {
                let Action::Discrete(action) = actions[i] else {
                    anyhow::bail!(
                        "CartPole's actions are discrete, the policy gave {}",
                        actions[i]
                    );
                };
                let line = serde_json::json!({
                    "obs": obs[i], "action": action,
                    "reward": step.rewards[i], "done": done, "episode": episode_of[i],
                });
                writeln!(out, "{line}")?;
                steps += 1;
                if done {
                    finished += 1;
                }
            }
            if done {
                episode_of[i] = next_episode;
                next_episode += 1;
            }
        }
        obs = step.obs;
    }
    out.flush()?;
    Ok(steps)
}

fn bc(storage: &str) -> anyhow::Result<Outcome> {
    let stop = ("evaluation/episode_reward_mean", 500.0);
    let (expert, _, _) = fit(
        storage,
        "ppo_expert",
        cartpole_ppo(),
        Some("CartPole-v1"),
        None,
        stop,
        400.0,
    )?;
    let path = std::path::Path::new(storage).join("cartpole_ppo_episodes.jsonl");
    let start = Instant::now();
    let logged = log_episodes(&Policy::from_checkpoint(&expert)?, 1000, &path)?;
    println!(
        "logged 1000 episodes ({logged} steps) to {} in {:.1} s",
        path.display(),
        start.elapsed().as_secs_f64()
    );
    let data = Dataset::read_json(&path.display().to_string())?;
    let mut c = BcConfig::default();
    c.evaluation_duration = 20;
    let stop = ("evaluation/episode_reward_mean", 480.0);
    let (checkpoint, seconds, env_steps) = fit(
        storage,
        "bc_cartpole",
        c,
        Some("CartPole-v1"),
        Some(data),
        stop,
        20.0,
    )?;
    Ok(Outcome {
        name: "BC CartPole-v1 (from 1,000 PPO episodes)",
        seconds,
        steps: env_steps,
        mean_return: greedy_mean(&checkpoint, "CartPole-v1")?,
    })
}

#[cfg_attr(test, allow(dead_code))]
fn main() -> anyhow::Result<()> {
    let which = std::env::args().nth(1).unwrap_or_else(|| "all".to_owned());
    let dir = tempfile::tempdir()?;
    let storage = dir.path().display().to_string();
    let runs: Vec<fn(&str) -> anyhow::Result<Outcome>> = match which.as_str() {
        "dqn" => vec![dqn],
        "pendulum" => vec![pendulum],
        "bc" => vec![bc],
        "all" => vec![dqn, pendulum, bc],
        other => anyhow::bail!("unknown run {other:?}; expected dqn, pendulum, bc or all"),
    };
    for run in runs {
        run(&storage)?.print();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storage() -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let s = dir.path().display().to_string();
        (dir, s)
    }

    #[test]
    fn dqn_solves_cartpole() {
        let (_dir, s) = storage();
        let o = dqn(&s).unwrap();
        assert!(o.mean_return >= 475.0, "{o:?}");
    }

    #[test]
    fn ppo_swings_up_pendulum() {
        let (_dir, s) = storage();
        let o = pendulum(&s).unwrap();
        assert!(o.mean_return >= -250.0, "{o:?}");
    }

    #[test]
    fn bc_clones_ppo_from_logged_episodes() {
        let (_dir, s) = storage();
        let o = bc(&s).unwrap();
        assert!(o.mean_return >= 400.0, "{o:?}");
    }
}
