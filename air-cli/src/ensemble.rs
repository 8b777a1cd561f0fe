//! A serve config's pipelines: ensembles of checkpoints on air-serve's Pipeline API. Every
//! model is a predictor step on the request's rows (they run at the same time), and one more
//! step combines their predictions.

use std::{collections::HashMap, time::Duration};

use air_data::polars::prelude::*;
use air_serve::pipeline::{ExecutionMode, INPUT, Pipeline, PipelineConfig, Step, StepError};
use air_train::PREDICTIONS;

use crate::{
    error::Result,
    registry::Registry,
    serve_config::{COMBINE_STEP, Combine, PipelineSpec},
};

/// Opens every model's checkpoint, builds the graph and deploys it (each model's replicas
/// build their predictors now, so a bad checkpoint fails before the server listens).
pub(crate) fn deploy(
    registry: &Registry,
    spec: &PipelineSpec,
) -> Result<Pipeline<DataFrame, DataFrame>> {
    let mut branches = Vec::new();
    let mut names = Vec::new();
    for model in &spec.models.0 {
        let (ckpt, factory) = registry.open(&model.checkpoint, model.kind.as_deref())?;
        let mut step =
            Step::predictor(&model.name.0, ckpt, factory).with_mode(ExecutionMode::Replicas {
                num_replicas: model.num_replicas.get(),
            });
        if let Some(max) = model.max_batch_size {
            let wait = model
                .batch_wait_timeout_s
                .map_or(Duration::from_millis(10), |s| s.0);
            step = step.with_batching(max, wait);
        }
        branches.push(step.on(INPUT));
        names.push(model.name.0.clone());
    }
    let how = spec.combine;
    let combine = Step::try_new(COMBINE_STEP, move |outputs: Vec<DataFrame>| {
        combine(how, &names, outputs)
    });
    let mut config = PipelineConfig::new(&spec.name.0).with_route_prefix(&spec.route());
    if let Some(n) = spec.max_concurrent_queries {
        config = config.with_max_concurrent_queries(n);
    }
    if let Some(s) = spec.request_timeout_s {
        config = config.with_request_timeout(Some(s.0));
    }
    if let Some(n) = spec.max_request_bytes {
        config = config.with_max_request_bytes(n);
    }
    Ok(combine.on(branches).deploy_with(config)?)
}

/// The answer from the models' outputs (in the order of `names`).
pub(crate) fn combine(
    how: Combine,
    names: &[String],
    outputs: Vec<DataFrame>,
) -> Result<DataFrame, StepError> {
    let rows = outputs.first().map_or(0, DataFrame::height);
    for (name, out) in names.iter().zip(&outputs) {
        if out.height() != rows {
            return Err(StepError::failed(format!(
                "model {name:?} answered {} rows where {:?} answered {rows}; an ensemble's \
                 models must answer one row per input row",
                out.height(),
                names[0]
            )));
        }
    }
    let failed = |e: PolarsError| StepError::failed(e.to_string());
    match how {
        Combine::All => {
            let mut columns = Vec::new();
            for (name, out) in names.iter().zip(&outputs) {
                for c in out.columns() {
                    let mut c = c.clone();
                    c.rename(format!("{name}.{}", c.name()).into());
                    columns.push(c);
                }
            }
            DataFrame::new(rows, columns).map_err(failed)
        }
        Combine::Mean | Combine::Vote => {
            let values: Vec<Vec<Option<f64>>> = names
                .iter()
                .zip(&outputs)
                .map(|(name, out)| numeric_predictions(how, name, out))
                .collect::<Result<_, _>>()?;
            let combined: Vec<Option<f64>> = (0..rows)
                .map(|row| {
                    let column: Option<Vec<f64>> = values.iter().map(|v| v[row]).collect();
                    column.map(|xs| match how {
                        Combine::Mean => xs.iter().sum::<f64>() / xs.len() as f64,
                        _ => vote(&xs),
                    })
                })
                .collect();
            DataFrame::new(rows, vec![Column::new(PREDICTIONS.into(), combined)]).map_err(failed)
        }
    }
}

/// A model's `predictions` as numbers: the column `mean` and `vote` combine.
fn numeric_predictions(
    how: Combine,
    name: &str,
    out: &DataFrame,
) -> Result<Vec<Option<f64>>, StepError> {
    let wrong = |what: String| {
        StepError::failed(format!(
            "combine: {how:?} needs a numeric {PREDICTIONS:?} column from every model; model \
             {name:?} {what} (use `combine: all` to answer every model's columns)"
        ))
    };
    let column = out
        .column(PREDICTIONS)
        .map_err(|_| wrong(format!("answered the columns {:?}", out.get_column_names())))?;
    if !column.dtype().is_primitive_numeric() && column.dtype() != &DataType::Boolean {
        return Err(wrong(format!("answered it as {}", column.dtype())));
    }
    let floats = column
        .cast(&DataType::Float64)
        .map_err(|e| wrong(format!("answered it as {} ({e})", column.dtype())))?;
    let floats = floats
        .f64()
        .map_err(|e| wrong(e.to_string()))?
        .iter()
        .collect();
    Ok(floats)
}

/// The most common value; a tie goes to the value that appears first.
fn vote(xs: &[f64]) -> f64 {
    let mut counts: HashMap<u64, usize> = HashMap::new();
    for x in xs {
        *counts.entry(x.to_bits()).or_default() += 1;
    }
    let best = counts.values().copied().max().unwrap_or(0);
    xs.iter()
        .copied()
        .find(|x| counts[&x.to_bits()] == best)
        .unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        vec!["a".into(), "b".into(), "c".into()]
    }

    fn predictions(values: &[f64]) -> DataFrame {
        df!(PREDICTIONS => values).unwrap()
    }

    fn column(df: &DataFrame) -> Vec<Option<f64>> {
        df.column(PREDICTIONS)
            .unwrap()
            .f64()
            .unwrap()
            .iter()
            .collect()
    }

    #[test]
    fn mean_and_vote_combine_row_by_row() {
        let outs = || {
            vec![
                predictions(&[1.0, 0.0]),
                predictions(&[0.0, 0.0]),
                predictions(&[1.0, 1.0]),
            ]
        };
        let mean = combine(Combine::Mean, &names(), outs()).unwrap();
        assert_eq!(column(&mean), [Some(2.0 / 3.0), Some(1.0 / 3.0)]);
        let vote = combine(Combine::Vote, &names(), outs()).unwrap();
        assert_eq!(column(&vote), [Some(1.0), Some(0.0)]);
        // A tie goes to the earliest model's value.
        assert_eq!(super::vote(&[2.0, 1.0, 1.0, 2.0]), 2.0);
    }

    #[test]
    fn all_keeps_every_models_columns_under_its_name() {
        let outs = vec![
            predictions(&[1.0]),
            df!(PREDICTIONS => [2.0], "extra" => ["x"]).unwrap(),
            predictions(&[3.0]),
        ];
        let all = combine(Combine::All, &names(), outs).unwrap();
        assert_eq!(
            all.get_column_names(),
            ["a.predictions", "b.predictions", "b.extra", "c.predictions"]
        );
    }

    #[test]
    fn mismatched_rows_and_non_numeric_predictions_are_named() {
        let e = combine(
            Combine::Mean,
            &names(),
            vec![
                predictions(&[1.0]),
                predictions(&[1.0, 2.0]),
                predictions(&[1.0]),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("\"b\" answered 2 rows"), "{e}");
        let e = combine(
            Combine::Vote,
            &names(),
            vec![
                predictions(&[1.0]),
                df!(PREDICTIONS => ["cat"]).unwrap(),
                predictions(&[1.0]),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("model \"b\"") && e.contains("combine: all"),
            "{e}"
        );
    }
}
