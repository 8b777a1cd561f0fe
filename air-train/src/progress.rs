//! The per-run progress bar (iterations and the latest metrics): shown only when stderr is a
//! terminal, the run is not silent and it has lasted a moment, so tests and logs stay quiet.
//! It joins the process's other bars (a tuner's table, checkpoint uploads).

use air_checkpoint::progress::Progress as Bar;
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
    bar: Bar,
}

impl Progress {
    pub(crate) fn new(label: &str, verbose: Verbosity) -> Self {
        let bar = match verbose {
            Verbosity::Silent => Bar::hidden(),
            _ => Bar::iterations(label.to_owned()),
        };
        Self { bar }
    }

    pub(crate) fn update(&self, iteration: u64, metrics: &Metrics) {
        let bar = &self.bar;
        if !bar.is_active() {
            return;
        }
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
        self.bar.finish();
    }
}
