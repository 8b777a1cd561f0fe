//! GAE against its definition (a sum of discounted TD errors to the episode's end), and the
//! running statistics against the statistics of all data at once.

use air_rl::rollout::{RunningMeanStd, Step, gae};
use rand::{RngExt, SeedableRng, rngs::StdRng};

fn segment(rng: &mut StdRng, n: usize) -> Vec<Step> {
    (0..n)
        .map(|_| {
            let end = rng.random_range(0..10);
            Step {
                reward: rng.random_range(-1.0..1.0),
                value: rng.random_range(-2.0..2.0),
                terminated: end == 0,
                truncated: end == 1,
                truncated_value: rng.random_range(-2.0..2.0),
            }
        })
        .collect()
}

/// A_t = Σ_k (γλ)^k δ_{t+k}, summed to the end of t's episode (or of the segment).
fn naive(steps: &[Step], last_value: f64, gamma: f64, lambda: f64) -> Vec<f64> {
    let delta = |i: usize| {
        let s = &steps[i];
        let next = if s.terminated {
            0.0
        } else if s.truncated {
            s.truncated_value
        } else if i + 1 < steps.len() {
            steps[i + 1].value
        } else {
            last_value
        };
        gamma.mul_add(next, s.reward) - s.value
    };
    (0..steps.len())
        .map(|t| {
            let mut sum = 0.0;
            let mut weight = 1.0;
            for (i, s) in steps.iter().enumerate().skip(t) {
                sum += weight * delta(i);
                if s.terminated || s.truncated {
                    break;
                }
                weight *= gamma * lambda;
            }
            sum
        })
        .collect()
}

#[test]
fn gae_equals_its_definition_across_episode_ends() {
    let mut rng = StdRng::seed_from_u64(1);
    let mut ends = 0;
    for (gamma, lambda) in [(0.99, 0.95), (0.9, 0.0), (0.99, 1.0), (1.0, 0.5)] {
        for _ in 0..20 {
            let steps = segment(&mut rng, 64);
            ends += steps.iter().filter(|s| s.terminated || s.truncated).count();
            let last = rng.random_range(-2.0..2.0);
            let (adv, ret) = gae(&steps, last, gamma, lambda);
            let expected = naive(&steps, last, gamma, lambda);
            for t in 0..steps.len() {
                assert!(
                    (adv[t] - expected[t]).abs() < 1e-9,
                    "γ {gamma} λ {lambda} t {t}"
                );
                assert!((ret[t] - (adv[t] + steps[t].value)).abs() < 1e-12);
            }
        }
    }
    assert!(ends > 100, "the segments crossed episode ends ({ends})");
}

#[test]
fn with_lambda_one_a_terminated_episode_gives_monte_carlo_returns() {
    let rewards = [1.0, 0.5, -0.25, 2.0];
    let steps: Vec<Step> = rewards
        .iter()
        .enumerate()
        .map(|(i, r)| Step {
            reward: *r,
            value: i as f64 * 0.1,
            terminated: i == rewards.len() - 1,
            truncated: false,
            truncated_value: 0.0,
        })
        .collect();
    let (_, returns) = gae(&steps, 123.0, 0.9, 1.0);
    let mut g = 0.0;
    for t in (0..rewards.len()).rev() {
        g = 0.9f64.mul_add(g, rewards[t]);
        assert!(
            (returns[t] - g).abs() < 1e-12,
            "t {t}: {} vs {g}",
            returns[t]
        );
    }
}

#[test]
fn running_statistics_merged_by_batch_equal_the_whole_data() {
    let mut rng = StdRng::seed_from_u64(2);
    let data: Vec<[f32; 3]> = (0..1000)
        .map(|_| {
            [
                rng.random_range(-1.0..1.0),
                rng.random_range(10.0..20.0),
                rng.random_range(-1e3..1e3),
            ]
        })
        .collect();
    let mut stats = RunningMeanStd::new(3);
    let mut start = 0;
    for size in [1, 7, 100, 0, 392, 500] {
        stats.update(&data[start..start + size]);
        start += size;
    }
    assert_eq!(stats.count(), 1000.0);
    for d in 0..3 {
        let mean: f64 = data.iter().map(|v| f64::from(v[d])).sum::<f64>() / 1000.0;
        let var: f64 = data
            .iter()
            .map(|v| (f64::from(v[d]) - mean).powi(2))
            .sum::<f64>()
            / 1000.0;
        assert!(
            (stats.mean()[d] - mean).abs() < 1e-9 * mean.abs().max(1.0),
            "mean {d}"
        );
        assert!(
            (stats.var()[d] - var).abs() < 1e-9 * var.max(1.0),
            "var {d}"
        );
    }
    let z = stats.normalize(&[0.0, 15.0, 1e9], 5.0);
    assert!(z[1].abs() < 0.1 && z[2] == 5.0, "{z:?}");
    let saved = serde_json::to_string(&stats).unwrap();
    assert_eq!(
        serde_json::from_str::<RunningMeanStd>(&saved).unwrap(),
        stats
    );
}
