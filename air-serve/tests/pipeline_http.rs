//! Pipelines served over HTTP: the answer equals the in-process one, bad input gets a JSON
//! error naming the problem (and the step), the server stays up; predictor steps (a GBDT
//! ensemble) and dynamic `Value`s.

mod common;

use std::{num::NonZeroUsize, time::Duration};

use air_data::polars::prelude::*;
use air_serve::{
    DeploymentConfig, PredictorDeployment, ServeConfig, Server,
    pipeline::{ExecutionMode, Frames, INPUT, Json, PipelineConfig, Step, StepError, Value},
};
use air_train::{FromCheckpoint, Predictor, gbdt::GbdtPredictor};
use common::{breast_cancer, gbdt_checkpoint, get, post, scaled_gbdt_checkpoint};
use serde_json::json;

fn checked_pipeline(mode: ExecutionMode) -> air_serve::pipeline::Pipeline<i64, i64> {
    let add_one = Step::new("add_one", |x: i64| x + 1);
    let square = Step::new("square", |x: i64| x * x).with_mode(mode);
    let check = Step::try_new("check", |x: i64| {
        if x == 49 {
            panic!("seven squared");
        }
        if x > 1000 {
            return Err(StepError::bad_input(format!("{x} is over 1000")));
        }
        Ok(x)
    })
    .with_mode(mode);
    let config =
        PipelineConfig::new("checked").with_max_request_bytes(NonZeroUsize::new(64).unwrap());
    check
        .on(square.on(add_one.on(INPUT)))
        .deploy_with(config)
        .unwrap()
}

#[test]
fn http_answers_like_the_handle_and_bad_input_gets_a_clear_error() {
    for mode in [
        ExecutionMode::Local,
        ExecutionMode::Replicas { num_replicas: 2 },
    ] {
        let pipeline = checked_pipeline(mode);
        let server = Server::new(ServeConfig::new().with_port(0))
            .with_pipeline(&pipeline, Json)
            .unwrap()
            .start()
            .unwrap();
        let url = format!("{}/checked", server.url());
        for x in [1, 5, -3] {
            let (status, body) = post(&url, &x.to_string());
            assert_eq!(status, 200, "{body}");
            assert_eq!(body, json!(pipeline.call(x).unwrap()), "{mode:?}");
        }
        let cases = [
            ("not json", 400, "malformed_json", "line 1"),
            ("\"seven\"", 422, "wrong_input", "i64"),
            (
                "40",
                422,
                "step_rejected_input",
                "step \"check\": bad input: 1681 is over 1000",
            ),
            (
                "6",
                500,
                "step_panicked",
                "step \"check\" panicked: seven squared",
            ),
            (&"1".repeat(100), 413, "too_large", "over 64 bytes"),
        ];
        for (body, status, kind, text) in cases {
            let (got, answer) = post(&url, body);
            assert_eq!(got, status, "{body}: {answer}");
            assert_eq!(answer["error"], kind, "{answer}");
            let message = answer["message"].as_str().unwrap();
            assert!(message.contains(text), "{message}");
            // The server stays up: the next good request succeeds.
            assert_eq!(post(&url, "2"), (200, json!(9)));
        }
        let (_, metrics) = get(&format!("{}/-/metrics", server.url()));
        for line in [
            // 3 in-process calls, 3 + 5 HTTP requests.
            "air_serve_requests_total{deployment=\"checked\",code=\"200\"} 11",
            "air_serve_requests_total{deployment=\"checked\",code=\"422\"} 2",
            "air_serve_step_calls_total{deployment=\"checked\",step=\"square\"} 13",
            "air_serve_step_errors_total{deployment=\"checked\",step=\"check\"} 2",
            "air_serve_step_latency_seconds_count{deployment=\"checked\",step=\"add_one\"} 13",
        ] {
            assert!(metrics.contains(line), "{line} not in\n{metrics}");
        }
        let (_, doc) = get(&format!("{}/openapi.json", server.url()));
        let doc: serde_json::Value = serde_json::from_str(&doc).unwrap();
        let op = &doc["paths"]["/checked"]["post"];
        assert_eq!(op["operationId"], "call_checked");
        assert!(
            op["description"]
                .as_str()
                .unwrap()
                .contains("add_one, square, check")
        );
        server.shutdown().unwrap();
        // The server is gone; the pipeline still answers in-process.
        assert_eq!(pipeline.call(2).unwrap(), 9);
    }
}

#[test]
fn a_pipeline_and_a_deployment_share_a_server_but_not_a_route() {
    let pipeline = Step::new("echo", |v: Value| v).on(INPUT).deploy().unwrap();
    let deployment = PredictorDeployment::new(
        DeploymentConfig::new("gbdt"),
        gbdt_checkpoint(),
        GbdtPredictor::from_checkpoint,
    );
    let clash = Server::new(ServeConfig::new().with_port(0))
        .with_pipeline(&pipeline, Json)
        .unwrap()
        .with_deployment(PredictorDeployment::new(
            DeploymentConfig::new("pipeline"),
            gbdt_checkpoint(),
            GbdtPredictor::from_checkpoint,
        ))
        .unwrap_err();
    assert!(
        clash
            .to_string()
            .contains("not used by pipeline at /pipeline"),
        "{clash}"
    );
    let server = Server::new(ServeConfig::new().with_port(0))
        .with_deployment(deployment)
        .unwrap()
        .with_pipeline(&pipeline, Json)
        .unwrap()
        .start()
        .unwrap();
    let (_, routes) = get(&format!("{}/-/routes", server.url()));
    let routes: serde_json::Value = serde_json::from_str(&routes).unwrap();
    assert_eq!(routes, json!({"/gbdt": "gbdt", "/pipeline": "pipeline"}));
    let body = json!({"any": ["json", 1]});
    assert_eq!(
        post(&format!("{}/pipeline", server.url()), &body.to_string()),
        (200, body)
    );
}

/// Every row of the breast cancer data but its label.
fn features() -> DataFrame {
    breast_cancer().to_polars().unwrap().drop("target").unwrap()
}

#[test]
fn a_gbdt_ensemble_with_a_business_rule_matches_the_models_and_http_matches_the_handle() {
    let model = |name: &str, checkpoint| {
        Step::predictor(name, checkpoint, GbdtPredictor::from_checkpoint)
            .with_mode(ExecutionMode::Replicas { num_replicas: 2 })
            .with_batching(NonZeroUsize::new(8).unwrap(), Duration::from_millis(1))
    };
    let plain = model("plain", gbdt_checkpoint());
    let scaled = model("scaled", scaled_gbdt_checkpoint());
    let average = Step::try_new("average", |(a, b): (DataFrame, DataFrame)| {
        let p = |df: &DataFrame| {
            df.column("predictions")?
                .as_materialized_series()
                .cast(&DataType::Float64)
        };
        let mean = ((&p(&a)? + &p(&b)?)? / 2.0).with_name("probability".into());
        Ok::<_, StepError>(DataFrame::new(a.height(), vec![mean.into()])?)
    });
    // Business logic: a label from the averaged probability.
    let label = Step::try_new("label", |df: DataFrame| {
        let labels: Vec<&str> = df
            .column("probability")?
            .f64()?
            .iter()
            .map(|p| {
                if p.unwrap_or(0.0) >= 0.5 {
                    "benign"
                } else {
                    "malignant"
                }
            })
            .collect();
        let mut out = df.clone();
        out.with_column(Column::new("label".into(), labels))?;
        Ok::<_, StepError>(out)
    });
    let ensemble = label
        .on(average.on((plain.on(INPUT), scaled.on(INPUT))))
        .deploy_with(PipelineConfig::new("ensemble"))
        .unwrap();

    let rows = features().slice(0, 40);
    let out = ensemble.call(rows.clone()).unwrap();
    let direct = |ckpt| {
        let p = GbdtPredictor::from_checkpoint(&ckpt)
            .unwrap()
            .predict(rows.clone())
            .unwrap();
        let p = p
            .column("predictions")
            .unwrap()
            .cast(&DataType::Float64)
            .unwrap();
        p.f64().unwrap().to_vec()
    };
    let (a, b) = (direct(gbdt_checkpoint()), direct(scaled_gbdt_checkpoint()));
    let probability = out.column("probability").unwrap().f64().unwrap();
    for i in 0..rows.height() {
        let expected = (a[i].unwrap() + b[i].unwrap()) / 2.0;
        assert!(
            (probability.get(i).unwrap() - expected).abs() < 1e-12,
            "row {i}"
        );
    }

    let server = Server::new(ServeConfig::new().with_port(0))
        .with_pipeline(&ensemble, Frames)
        .unwrap()
        .start()
        .unwrap();
    let url = format!("{}/ensemble", server.url());
    let records: serde_json::Value =
        serde_json::from_slice(&air_serve::records_json(&rows.slice(0, 5))).unwrap();
    let (status, answer) = post(&url, &records.to_string());
    assert_eq!(status, 200, "{answer}");
    let expected: serde_json::Value =
        serde_json::from_slice(&air_serve::records_json(&out.slice(0, 5))).unwrap();
    assert_eq!(answer, expected);
    // A column the models do not know: 422 naming the step and the column.
    let (status, answer) = post(&url, r#"[{"mean radius": 1.0}]"#);
    assert_eq!(status, 422, "{answer}");
    let message = answer["message"].as_str().unwrap();
    assert!(
        message.contains("step \"plain\"") || message.contains("step \"scaled\""),
        "{message}"
    );
    assert_eq!(post(&url, &records.to_string()), (200, expected));
}

#[test]
fn a_predictor_step_on_a_missing_gpu_fails_deploy_naming_the_step() {
    let gpu = Step::predictor_on(
        "gpu_model",
        gbdt_checkpoint(),
        GbdtPredictor::from_checkpoint,
        air_train::ComputeDevice::Cuda { index: 0 },
    );
    match gpu.on(INPUT).deploy() {
        Err(air_serve::ServeError::Pipeline(
            e @ air_serve::pipeline::PipelineError::StepInit { .. },
        )) => {
            let message = e.to_string();
            assert!(message.contains("step \"gpu_model\""), "{message}");
            assert!(message.to_lowercase().contains("cuda"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn dynamic_values_fan_in_json_and_frames() {
    let to_frame = Step::try_new("to_frame", |v: Value| v.into_frame().map(Value::from));
    let count = Step::new("count", |v: Value| {
        Value::from(json!({"records": v.as_json().and_then(|j| j.as_array()).map_or(0, Vec::len)}))
    });
    let combine = Step::new("combine", |vs: Vec<Value>| {
        Value::from(json!(
            vs.into_iter().map(Value::into_json).collect::<Vec<_>>()
        ))
    });
    let p = combine
        .on(vec![to_frame.on(INPUT), count.on(INPUT)])
        .deploy()
        .unwrap();
    let input = json!([{"x": 1.0, "y": "a"}, {"x": 2.0, "y": "b"}]);
    let out = p.call(Value::from(input.clone())).unwrap().into_json();
    assert_eq!(out, json!([input, {"records": 2}]));
    let err = p.call(Value::from(json!(3))).unwrap_err();
    assert_eq!(err.status(), 422, "{err}");
    assert!(err.to_string().contains("step \"to_frame\""), "{err}");
}

#[test]
fn over_http_a_busy_pipeline_answers_503_and_a_slow_one_408() {
    let (started_tx, started) = std::sync::mpsc::channel();
    let (release, gate) = std::sync::mpsc::channel::<()>();
    let (started_tx, gate) = (
        std::sync::Mutex::new(started_tx),
        std::sync::Mutex::new(gate),
    );
    let step = Step::new("gate", move |x: i64| {
        started_tx.lock().unwrap().send(()).unwrap();
        gate.lock().unwrap().recv().unwrap();
        x
    })
    .with_mode(ExecutionMode::Replicas { num_replicas: 1 });
    let config = PipelineConfig::new("slow")
        .with_max_concurrent_queries(NonZeroUsize::new(1).unwrap())
        .with_request_timeout(Some(Duration::from_millis(50)));
    let pipeline = step.on(INPUT).deploy_with(config).unwrap();
    let server = Server::new(ServeConfig::new().with_port(0))
        .with_pipeline(&pipeline, Json)
        .unwrap()
        .start()
        .unwrap();
    let url = format!("{}/slow", server.url());
    let first = {
        let url = url.clone();
        std::thread::spawn(move || post(&url, "1"))
    };
    started.recv().unwrap();
    let (status, answer) = post(&url, "2");
    assert_eq!(
        (status, answer["error"].as_str()),
        (503, Some("overloaded")),
        "{answer}"
    );
    let (status, answer) = first.join().unwrap();
    assert_eq!(
        (status, answer["error"].as_str()),
        (408, Some("timeout")),
        "{answer}"
    );
    release.send(()).unwrap();
    release.send(()).unwrap();
    assert_eq!(post(&url, "3"), (200, json!(3)));
}
