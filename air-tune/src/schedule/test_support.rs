//! Trials and results for the schedulers' unit tests.

use air_train::Metrics;
use serde_json::json;

use crate::trial::{Trial, TrialStatus};

pub(crate) fn trial(id: &str) -> Trial {
    let mut t = Trial::new(
        id.to_owned(),
        id.to_owned(),
        json!({}),
        String::new(),
        air_train::Resources::new(),
    );
    t.status = TrialStatus::Running;
    t
}

pub(crate) fn result(iter: u64, metric: f64) -> Metrics {
    let mut m = Metrics::new();
    m.insert("training_iteration".into(), json!(iter));
    m.insert("time_total_s".into(), json!(iter as f64));
    m.insert("loss".into(), json!(metric));
    m
}
