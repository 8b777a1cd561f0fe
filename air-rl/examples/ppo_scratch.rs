use std::{num::NonZeroUsize, time::Instant};
use air_rl::{algo::{Ppo, PpoConfig}, env::EnvSpec};
use air_train::ComputeDevice;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let env = args.get(1).cloned().unwrap_or("CartPole-v1".into());
    let mut config: PpoConfig = serde_json::from_str(args.get(2).map_or("{}", |s| s.as_str()))?;
    config.evaluation_interval = Some(5);
    let mut ppo = Ppo::new(config, EnvSpec::named(&env)?, ComputeDevice::Cpu, NonZeroUsize::MIN)?;
    let t = Instant::now();
    for i in 0..400 {
        let m = ppo.train()?;
        println!("{i} {:.1}s ts={} rew={} len={} eval={} pl={:.4} vf={:.3} ent={:.3} kl={:.4}", t.elapsed().as_secs_f64(), m["timesteps_total"], m["episode_reward_mean"], m["episode_len_mean"], m.get("evaluation/episode_reward_mean").cloned().unwrap_or_default(), m["policy_loss"].as_f64().unwrap(), m["vf_loss"].as_f64().unwrap(), m["entropy"].as_f64().unwrap(), m["kl"].as_f64().unwrap());
        if m.get("evaluation/episode_reward_mean").and_then(|v| v.as_f64()).unwrap_or(0.0) >= 475.0 && env == "CartPole-v1" { break; }
        if m.get("evaluation/episode_reward_mean").and_then(|v| v.as_f64()).unwrap_or(-1e9) >= -200.0 && env == "Pendulum-v1" { break; }
    }
    Ok(())
}
