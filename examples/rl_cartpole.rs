//! RLlib's place in Ray AIR, in Rust: PPO learns CartPole-v1 through `RLTrainer`, the policy
//! is evaluated over 100 greedy episodes, then served over HTTP by `PredictorDeployment` and
//! a client drives a fresh CartPole with the served actions (Ray's `{"array": obs}` requests).
//!
//! ```text
//! cargo run --release --features rl,serve --example rl_cartpole
//! ```
//!
//! Also a test (`cargo test --features rl,serve --example rl_cartpole`).

use std::{num::NonZeroUsize, time::Instant};

#[path = "common/http.rs"]
mod http;

use air::{
    checkpoint::Checkpoint,
    rl::{
        RLPredictor, RLTrainer,
        algo::PpoConfig,
        env::{Action, EnvSpec, make},
        evaluate,
    },
    serve::{DeploymentConfig, PredictorDeployment, ServeConfig, Server},
    train::{CheckpointConfig, FromCheckpoint, RunConfig, ScalingConfig, Trainer, Verbosity},
};
use anyhow::{Context, ensure};
use http::http_post;

/// What a run measured.
#[derive(Debug)]
struct Outcome {
    train_seconds: f64,
    timesteps: u64,
    greedy_mean: f64,
    served_mean: f64,
    bad_request_status: u16,
}

/// PPO's CartPole preset, evaluated greedily every 5 iterations on 20 episodes.
fn ppo_config(seed: u64) -> PpoConfig {
    let mut c = PpoConfig::cartpole();
    c.seed = seed;
    c.evaluation_interval = Some(5);
    c.evaluation_duration = 20;
    c
}

fn train(storage: &str, seed: u64) -> anyhow::Result<(Checkpoint, f64, u64)> {
    let trainer = RLTrainer::new(
        ppo_config(seed),
        EnvSpec::named("CartPole-v1")?,
        ScalingConfig::new(NonZeroUsize::MIN),
        RunConfig::new(storage)
            .with_name("ppo_cartpole")
            // Stop once 20 greedy episodes all reach the 500-step limit (or give up).
            .with_stop("evaluation/episode_reward_mean", 500.0)
            .with_stop("timesteps_total", 300_000.0)
            .with_checkpoint_config(
                CheckpointConfig::new().with_num_to_keep(NonZeroUsize::new(2).unwrap()),
            )
            .with_verbose(Verbosity::Silent),
    );
    let start = Instant::now();
    let result = trainer.fit()?.into_result()?;
    let seconds = start.elapsed().as_secs_f64();
    let timesteps = result.metrics["timesteps_total"].as_u64().unwrap_or(0);
    println!(
        "trained in {seconds:.1} s: {timesteps} env steps, {} iterations, training return {}",
        result.metrics["training_iteration"], result.metrics["episode_reward_mean"]
    );
    Ok((
        result.checkpoint.context("a checkpoint")?,
        seconds,
        timesteps,
    ))
}

/// Serves the policy and plays `episodes` episodes of a fresh CartPole with its answers;
/// the mean return, and the status of a request with an observation of the wrong size.
fn play_served(checkpoint: Checkpoint, episodes: u64) -> anyhow::Result<(f64, u16)> {
    let deployment = PredictorDeployment::new(
        DeploymentConfig::new("RLModel").with_route_prefix("/"),
        checkpoint,
        RLPredictor::from_checkpoint,
    );
    let server = Server::new(ServeConfig::new().with_port(0))
        .with_deployment(deployment)?
        .start()?;
    println!("serving the policy on {}", server.url());
    let mut env = make("CartPole-v1")?;
    let mut total = 0.0;
    for episode in 0..episodes {
        let (mut obs, _) = env.reset(Some(10_000 + episode));
        loop {
            let body = serde_json::json!({ "array": obs }).to_string();
            let (status, answer) = http_post(server.addr(), "/", &body)?;
            ensure!(status == 200, "the server answered {status}: {answer}");
            let answer: serde_json::Value = serde_json::from_str(&answer)?;
            // One record per observation: `[{"predictions": 1}]`.
            let action = answer[0]["predictions"]
                .as_u64()
                .with_context(|| format!("an action in {answer}"))?;
            let t = env.step(&Action::Discrete(action as usize))?;
            total += t.reward;
            obs = t.obs;
            if t.terminated || t.truncated {
                break;
            }
        }
    }
    let (bad_status, answer) = http_post(server.addr(), "/", r#"{"array": [0.1, 0.2]}"#)?;
    println!("a 2-number observation -> {bad_status} {answer}");
    server.shutdown()?;
    Ok((total / episodes as f64, bad_status))
}

fn run(storage: &str, seed: u64, served_episodes: u64) -> anyhow::Result<Outcome> {
    let (checkpoint, train_seconds, timesteps) = train(storage, seed)?;
    let greedy = evaluate(&checkpoint, &EnvSpec::named("CartPole-v1")?, 100)?;
    println!(
        "greedy evaluation: mean return {:.1} over 100 episodes (min {})",
        greedy.mean_return(),
        greedy.returns.iter().copied().fold(f64::INFINITY, f64::min)
    );
    let (served_mean, bad_request_status) = play_served(checkpoint, served_episodes)?;
    println!("served policy: mean return {served_mean:.1} over {served_episodes} episodes");
    Ok(Outcome {
        train_seconds,
        timesteps,
        greedy_mean: greedy.mean_return(),
        served_mean,
        bad_request_status,
    })
}

fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let o = run(&dir.path().display().to_string(), 0, 10)?;
    println!(
        "PPO CartPole-v1: {:.1} s of training, {} env steps; greedy {:.1}, served {:.1} \
         (a malformed observation got HTTP {})",
        o.train_seconds, o.timesteps, o.greedy_mean, o.served_mean, o.bad_request_status
    );
    Ok(())
}

#[test]
fn ppo_solves_cartpole_and_the_served_policy_plays_it() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(&dir.path().display().to_string(), 0, 3).unwrap();
    assert!(o.greedy_mean >= 475.0, "{o:?}");
    assert!(o.served_mean >= 475.0, "{o:?}");
    // Unprocessable: well-formed JSON, but not an observation of CartPole.
    assert_eq!(o.bad_request_status, 422, "{o:?}");
}
