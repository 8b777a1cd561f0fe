//! What a tracker takes from a trial: its config as flat named values and its results as
//! named numbers, the same for every tracking callback.

use std::collections::BTreeMap;

use air_train::Metrics;
use serde_json::Value;

/// Result keys that are bookkeeping, not metrics worth a chart: the step itself, the wall
/// clock, the trial's id and the last-report flag.
const NOT_SCALARS: [&str; 4] = ["training_iteration", "timestamp", "trial_id", "done"];

/// `config` flattened to dotted names (`{"model": {"depth": 3}}` → `model.depth`). Leaves are
/// kept as they are: numbers, strings, booleans, and lists or nulls for the caller to render.
pub(crate) fn flatten_config(config: &Value) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    flatten_into("", config, &mut out);
    out
}

fn flatten_into(prefix: &str, value: &Value, out: &mut BTreeMap<String, Value>) {
    match value {
        Value::Object(m) => {
            for (k, v) in m {
                let name = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten_into(&name, v, out);
            }
        }
        leaf => {
            out.insert(prefix.to_owned(), leaf.clone());
        }
    }
}

/// The numeric values of a result, booleans as 0/1, nested objects named with `/`
/// (`{"val": {"loss": 0.3}}` → `val/loss`); bookkeeping keys and non-numbers left out.
pub(crate) fn scalars(result: &Metrics) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for (k, v) in result {
        if !NOT_SCALARS.contains(&k.as_str()) {
            scalars_into(k, v, &mut out);
        }
    }
    out
}

fn scalars_into(name: &str, value: &Value, out: &mut Vec<(String, f64)>) {
    match value {
        Value::Number(n) => out.extend(n.as_f64().map(|x| (name.to_owned(), x))),
        Value::Bool(b) => out.push((name.to_owned(), f64::from(u8::from(*b)))),
        Value::Object(m) => {
            for (k, v) in m {
                scalars_into(&format!("{name}/{k}"), v, out);
            }
        }
        _ => {}
    }
}

/// The step a result is charted at: its `training_iteration` (0 when missing).
pub(crate) fn step(result: &Metrics) -> i64 {
    result
        .get("training_iteration")
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn configs_flatten_to_dotted_leaves() {
        let flat = flatten_config(&json!({
            "lr": 0.1, "model": {"depth": 3, "kind": "tree", "tags": [1, 2]}, "on": true
        }));
        let names: Vec<&str> = flat.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            ["lr", "model.depth", "model.kind", "model.tags", "on"]
        );
        assert_eq!(flat["model.tags"], json!([1, 2]));
    }

    #[test]
    fn scalars_skip_bookkeeping_and_name_nested_values_with_slashes() {
        let result: Metrics = serde_json::from_value(json!({
            "loss": 0.5, "ok": true, "name": "x", "training_iteration": 3,
            "timestamp": 17, "done": false, "val": {"acc": 0.75}
        }))
        .unwrap();
        let mut got = scalars(&result);
        got.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            got,
            [
                ("loss".to_owned(), 0.5),
                ("ok".to_owned(), 1.0),
                ("val/acc".to_owned(), 0.75)
            ]
        );
        assert_eq!(step(&result), 3);
    }
}
