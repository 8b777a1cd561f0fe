//! The per-run progress bar: shown only when stderr is a terminal and the run is not silent,
//! so tests and logs stay quiet.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

use crate::{Verbosity, run::Metrics};

const AUTO_KEYS: [&str; 6] = [
    "training_iteration",
    "time_this_iter_s",
    "time_total_s",
    "timestamp",
    "trial_id",
    "checkpoint_dir_name",
];

#[derive(Debug)]
pub(crate) struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    pub(crate) fn new(label: &str, verbose: Verbosity) -> Self {
        if verbose == Verbosity::Silent || !std::io::stderr().is_terminal() {
            return Self { bar: None };
        }
        let bar = ProgressBar::new_spinner();
        if let Ok(style) =
            ProgressStyle::with_template("{spinner} {prefix} [{elapsed_precise}] iter {pos} {msg}")
        {
            bar.set_style(style);
        }
        bar.set_prefix(label.to_owned());
        Self { bar: Some(bar) }
    }

    pub(crate) fn update(&self, iteration: u64, metrics: &Metrics) {
        let Some(bar) = &self.bar else { return };
        bar.set_position(iteration);
        let shown: Vec<String> = metrics
            .iter()
            .filter(|(k, _)| !AUTO_KEYS.contains(&k.as_str()))
            .take(4)
            .map(|(k, v)| match v {
                Value::Number(n) => match n.as_f64() {
                    Some(f) if n.is_f64() => format!("{k}={f:.4}"),
                    _ => format!("{k}={n}"),
                },
                other => format!("{k}={other}"),
            })
            .collect();
        bar.set_message(shown.join(" "));
    }

    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}
