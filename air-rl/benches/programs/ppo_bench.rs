//! PPO's speed: wall time to solve CartPole-v1 for several seeds, and learner throughput
//! (samples through forward, backward and Adam per second) for two network sizes.
//!
//! "Solved": 20 greedy evaluation episodes, run every 5 iterations, average ≥ 475 (their time
//! counts). RLlib's training `episode_return_mean` is not comparable — its new API stack
//! reports 475 after ~16,000 steps, when no 100 finished episodes can average 475 — so both
//! sides are timed on the same evaluation.
//!
//! ```text
//! cargo run --release -p air-rl --example ppo_bench -- --seeds 3
//! cargo run --release -p air-rl --features cuda --example ppo_bench -- --cuda --skip-solve
//! ```
//!
//! `benches/programs/ppo_rllib.py` measures RLlib's PPO the same way.

use std::{num::NonZeroUsize, time::Instant};

use air_rl::{
    algo::{Ppo, PpoConfig},
    env::EnvSpec,
};
use air_train::ComputeDevice;
use clap::Parser;

#[derive(Debug, Parser)]
struct Args {
    /// Seeds to solve CartPole with.
    #[arg(long, default_value_t = 3)]
    seeds: u64,
    /// Give up after this many environment steps.
    #[arg(long, default_value_t = 300_000)]
    max_steps: u64,
    /// Measure the learner on CUDA device 0 (needs `--features cuda`).
    #[arg(long)]
    cuda: bool,
    /// Only measure learner throughput.
    #[arg(long)]
    skip_solve: bool,
}

/// PPO's CartPole preset (as `examples/rl_cartpole.rs` uses it).
fn cartpole(seed: u64) -> PpoConfig {
    let mut c = PpoConfig::cartpole();
    c.seed = seed;
    c.evaluation_interval = Some(5);
    c.evaluation_duration = 20;
    c
}

fn solve(seed: u64, max_steps: u64) -> anyhow::Result<(f64, u64, bool)> {
    let env = EnvSpec::named("CartPole-v1")?;
    let mut ppo = Ppo::new(cartpole(seed), env, ComputeDevice::Cpu, NonZeroUsize::MIN)?;
    let start = Instant::now();
    loop {
        let m = ppo.train()?;
        let steps = m["timesteps_total"].as_u64().unwrap_or(0);
        let reward = m
            .get("evaluation/episode_reward_mean")
            .and_then(serde_json::Value::as_f64)
            .unwrap_or(0.0);
        if reward >= 475.0 || steps >= max_steps {
            return Ok((start.elapsed().as_secs_f64(), steps, reward >= 475.0));
        }
    }
}

fn throughput(device: ComputeDevice, hidden: usize, minibatch: usize) -> anyhow::Result<f64> {
    let mut c = PpoConfig::default();
    c.train_batch_size = 4096;
    c.num_envs_per_worker = 16;
    c.sgd_minibatch_size = minibatch;
    c.num_sgd_iter = 10;
    c.fcnet_hiddens = vec![hidden, hidden];
    let env = EnvSpec::named("CartPole-v1")?;
    let mut ppo = Ppo::new(c, env, device, NonZeroUsize::MIN)?;
    // The first iteration warms up (allocations, kernels); the median of the next three.
    ppo.train()?;
    let mut rates: Vec<f64> = (0..3)
        .map(|_| {
            Ok(ppo.train()?["timers/learner_samples_per_s"]
                .as_f64()
                .unwrap_or(0.0))
        })
        .collect::<anyhow::Result<_>>()?;
    rates.sort_by(f64::total_cmp);
    Ok(rates[1])
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !args.skip_solve {
        let mut times = Vec::new();
        for seed in 0..args.seeds {
            let (seconds, steps, solved) = solve(seed, args.max_steps)?;
            println!(
                "PPO CartPole-v1 seed {seed}: {} in {seconds:.1} s, {steps} env steps",
                if solved {
                    "solved (greedy mean ≥ 475)"
                } else {
                    "NOT solved"
                }
            );
            if solved {
                times.push(seconds);
            }
        }
        times.sort_by(f64::total_cmp);
        let n = times.len();
        let median = (n > 0).then(|| (times[(n - 1) / 2] + times[n / 2]) / 2.0);
        if let Some(median) = median {
            println!(
                "median time to 475: {median:.1} s ({} of {} seeds solved)",
                times.len(),
                args.seeds
            );
        }
    }
    let device = if args.cuda {
        ComputeDevice::Cuda { index: 0 }
    } else {
        ComputeDevice::Cpu
    };
    for (hidden, minibatch) in [(64, 256), (64, 4096), (256, 256), (256, 4096)] {
        let rate = throughput(device, hidden, minibatch)?;
        println!(
            "learner on {device:?}: hidden [{hidden}, {hidden}], minibatch {minibatch}: {rate:.0} samples/s"
        );
    }
    Ok(())
}
