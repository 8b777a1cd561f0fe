//! [`EpisodeStats`]: returns and lengths of finished episodes, per environment copy while
//! they run, over the last 100 once they end (RLlib's `metrics_num_episodes_for_smoothing`).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// How many finished episodes the means are over.
const WINDOW: usize = 100;

/// Episode bookkeeping of a set of environment copies.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct EpisodeStats {
    #[serde(skip)]
    running: Vec<(f64, u64)>,
    recent: VecDeque<(f64, u64)>,
    episodes_total: u64,
    #[serde(skip)]
    this_iteration: u64,
}

impl EpisodeStats {
    /// Bookkeeping for `copies` environment copies.
    pub(crate) fn with_copies(mut self, copies: usize) -> Self {
        self.running = vec![(0.0, 0); copies];
        self
    }

    /// Adds copy `i`'s step; `done` ends its episode.
    pub(crate) fn step(&mut self, i: usize, reward: f64, done: bool) {
        let r = &mut self.running[i];
        r.0 += reward;
        r.1 += 1;
        if done {
            let episode = *r;
            self.finish(episode);
            self.running[i] = (0.0, 0);
        }
    }

    /// Records a whole finished episode.
    pub(crate) fn finish(&mut self, episode: (f64, u64)) {
        if self.recent.len() == WINDOW {
            self.recent.pop_front();
        }
        self.recent.push_back(episode);
        self.episodes_total += 1;
        self.this_iteration += 1;
    }

    /// `episode_reward_mean/min/max`, `episode_len_mean`, `episodes_this_iter`,
    /// `episodes_total` (means are `null` before the first episode ends); starts the next
    /// iteration's count.
    pub(crate) fn report(&mut self, prefix: &str, metrics: &mut Map<String, Value>) {
        let n = self.recent.len() as f64;
        let rewards = self.recent.iter().map(|e| e.0);
        let (mean, min, max, len) = if self.recent.is_empty() {
            (Value::Null, Value::Null, Value::Null, Value::Null)
        } else {
            (
                json!(rewards.clone().sum::<f64>() / n),
                json!(rewards.clone().fold(f64::INFINITY, f64::min)),
                json!(rewards.fold(f64::NEG_INFINITY, f64::max)),
                json!(self.recent.iter().map(|e| e.1 as f64).sum::<f64>() / n),
            )
        };
        metrics.insert(format!("{prefix}episode_reward_mean"), mean);
        metrics.insert(format!("{prefix}episode_reward_min"), min);
        metrics.insert(format!("{prefix}episode_reward_max"), max);
        metrics.insert(format!("{prefix}episode_len_mean"), len);
        metrics.insert(
            format!("{prefix}episodes_this_iter"),
            json!(self.this_iteration),
        );
        metrics.insert(
            format!("{prefix}episodes_total"),
            json!(self.episodes_total),
        );
        self.this_iteration = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn means_cover_the_last_hundred_finished_episodes() {
        let mut s = EpisodeStats::default().with_copies(2);
        for e in 0..150 {
            // Copy 0 finishes an episode of return e over 2 steps; copy 1 never finishes.
            s.step(0, f64::from(e), false);
            s.step(0, 0.0, true);
            s.step(1, 1.0, false);
        }
        let mut m = Map::new();
        s.report("", &mut m);
        // Episodes 50..150: mean 99.5, all of length 2.
        assert_eq!(m["episode_reward_mean"], 99.5);
        assert_eq!(m["episode_reward_min"], 50.0);
        assert_eq!(m["episode_len_mean"], 2.0);
        assert_eq!(m["episodes_this_iter"], 150);
        s.report("", &mut m);
        assert_eq!(m["episodes_this_iter"], 0);
        assert_eq!(m["episodes_total"], 150);
    }
}
