//! The live status table: drawn on stderr when it is a terminal, never in tests or logs. It
//! joins the process's other bars (trial runs, checkpoint transfers).

use std::time::{Duration, Instant};

use air_checkpoint::progress::Progress;
use serde_json::Value;

use crate::trial::{TrialStatus, TrialTable};

const ROWS: usize = 12;

pub(crate) struct StatusTable {
    bar: Progress,
    metric: Option<String>,
    last: Option<Instant>,
}

impl StatusTable {
    pub(crate) fn new(enabled: bool, metric: Option<String>) -> Self {
        let bar = if enabled {
            Progress::text()
        } else {
            Progress::hidden()
        };
        Self {
            bar,
            metric,
            last: None,
        }
    }

    pub(crate) fn draw(&mut self, table: &TrialTable, elapsed: Duration, last: bool) {
        let bar = &self.bar;
        if !bar.is_active() {
            return;
        }
        if !last
            && self
                .last
                .is_some_and(|t| t.elapsed() < Duration::from_millis(500))
        {
            return;
        }
        self.last = Some(Instant::now());
        let mut counts = [0usize; 5];
        for t in table.iter() {
            counts[t.status() as usize] += 1;
        }
        let mut out = format!(
            "== Tune == {:.1} s | {} trials: {} RUNNING, {} PENDING, {} PAUSED, {} TERMINATED, {} ERROR",
            elapsed.as_secs_f64(),
            table.len(),
            counts[TrialStatus::Running as usize],
            counts[TrialStatus::Pending as usize],
            counts[TrialStatus::Paused as usize],
            counts[TrialStatus::Terminated as usize],
            counts[TrialStatus::Error as usize],
        );
        let metric = self.metric.clone().unwrap_or_default();
        let mut rows: Vec<_> = table.iter().collect();
        rows.sort_by_key(|t| t.status() != TrialStatus::Running);
        for t in rows.into_iter().take(ROWS) {
            let last = t.last_result();
            let iter = last
                .and_then(|m| m.get("training_iteration"))
                .map_or_else(String::new, Value::to_string);
            let value = last
                .and_then(|m| m.get(&metric))
                .map_or_else(String::new, |v| match v.as_f64() {
                    Some(f) => format!("{f:.5}"),
                    None => v.to_string(),
                });
            let mut config = t.config().to_string();
            if config.len() > 60 {
                config.truncate(57);
                config.push_str("...");
            }
            out.push_str(&format!(
                "\n  {:<14} {:<10} iter {:>5}  {metric} {value:>10}  {config}",
                t.id(),
                format!("{:?}", t.status()).to_uppercase(),
                iter
            ));
        }
        if table.len() > ROWS {
            out.push_str(&format!("\n  ... {} more", table.len() - ROWS));
        }
        bar.set_message(out);
        if last {
            bar.finish();
        }
    }
}
