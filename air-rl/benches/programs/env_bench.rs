//! Environment steps per second for each classic-control environment: one copy, and a
//! `VectorEnv` of 16 copies (autoreset) on 1 and 2 threads. Actions are drawn at random from the
//! action space, as `benches/programs/env_gymnasium.py` does for gymnasium.
//!
//! ```text
//! cargo run --release -p air-rl --example env_bench -- [--steps 1000000]
//! python3 benches/programs/env_gymnasium.py --steps 200000
//! ```

use std::{hint::black_box, num::NonZeroUsize, time::Instant};

use air_rl::env::{Action, ENVIRONMENTS, Env, Space, VectorEnv, make};
use rand::{RngExt, SeedableRng, rngs::StdRng};

/// Steps per second of the classic-control environments.
#[derive(Debug, clap::Parser)]
struct Args {
    /// Environment steps per measurement.
    #[arg(long, default_value_t = 1_000_000)]
    steps: usize,
}

fn random_action(space: &Space, rng: &mut StdRng) -> Action {
    match space {
        Space::Discrete { n } => Action::Discrete(rng.random_range(0..*n)),
        Space::Box { low, high } => Action::Continuous(
            low.iter()
                .zip(high)
                .map(|(l, h)| rng.random_range(*l..=*h))
                .collect(),
        ),
    }
}

fn single(name: &str, steps: usize) -> anyhow::Result<f64> {
    let mut env = make(name)?;
    let mut rng = StdRng::seed_from_u64(0);
    env.reset(Some(0));
    let actions: Vec<Action> = (0..4096)
        .map(|_| random_action(env.action_space(), &mut rng))
        .collect();
    let start = Instant::now();
    for i in 0..steps {
        let t = env.step(&actions[i % actions.len()])?;
        if t.done() {
            env.reset(None);
        }
        black_box(&t);
    }
    Ok(steps as f64 / start.elapsed().as_secs_f64())
}

fn vector(name: &str, steps: usize, threads: usize) -> anyhow::Result<f64> {
    let copies = NonZeroUsize::new(16).expect("16");
    let mut envs = VectorEnv::new(copies, || make(name))?
        .with_threads(NonZeroUsize::new(threads).expect("threads ≥ 1"))?;
    envs.reset(Some(0));
    let mut rng = StdRng::seed_from_u64(0);
    let batches: Vec<Vec<Action>> = (0..256)
        .map(|_| {
            (0..copies.get())
                .map(|_| random_action(envs.first().action_space(), &mut rng))
                .collect()
        })
        .collect();
    let rounds = steps / copies.get();
    let start = Instant::now();
    for r in 0..rounds {
        black_box(envs.step(&batches[r % batches.len()])?);
    }
    Ok((rounds * copies.get()) as f64 / start.elapsed().as_secs_f64())
}

fn main() -> anyhow::Result<()> {
    let args: Args = clap::Parser::parse();
    println!(
        "{:<26} {:>14} {:>18} {:>18}",
        "environment", "1 copy steps/s", "16 copies, 1 thread", "16 copies, 2 threads"
    );
    for (name, _) in ENVIRONMENTS {
        println!(
            "{name:<26} {:>14.0} {:>18.0} {:>18.0}",
            single(name, args.steps)?,
            vector(name, args.steps, 1)?,
            vector(name, args.steps, 2)?,
        );
    }
    Ok(())
}
