//! PredictorDeployment over real HTTP on 127.0.0.1: Ray's serve test cases, the three body
//! forms on a GBDT model, bad requests, load shedding, timeouts, reconfigure, graceful shutdown,
//! health, metrics and OpenAPI.

use std::num::NonZeroUsize;
use std::time::Duration;

use air_checkpoint::Checkpoint;
use air_data::polars::prelude::*;
use air_serve::{
    DeploymentConfig, PredictorDeployment, RequestError, ServeConfig, ServeError, Server,
};
use air_train::{FromCheckpoint, Predictor, gbdt::GbdtPredictor};
use serde_json::{Value, json};

mod common;
use common::*;

/// Ray's test model: `__value__ + 2`.
#[derive(Debug)]
struct Adder;

impl Predictor for Adder {
    fn predict(&self, batch: DataFrame) -> air_train::Result<DataFrame> {
        let x = batch
            .column("__value__")
            .map_err(polars)?
            .as_materialized_series()
            + 2;
        Ok(frame_of("predictions", x))
    }
}

#[test]
fn ray_adder_answers_42() {
    let d = PredictorDeployment::new(
        DeploymentConfig::new("adder"),
        Checkpoint::new(),
        |_: &Checkpoint| Ok(Adder),
    );
    let server = serve(vec![d]);
    let url = format!("{}/adder", server.url());
    assert_eq!(
        post(&url, r#"{"array": [40]}"#),
        (200, json!([{"predictions": 42}]))
    );
    // The trailing slash too, and a float array.
    assert_eq!(
        post(
            &format!("{url}/"),
            r#"{"array": [40.5], "dtype": "float64"}"#
        ),
        (200, json!([{"predictions": 42.5}]))
    );
    server.shutdown().unwrap();
}

#[test]
fn ray_batching_two_concurrent_requests_share_a_batch() {
    // A wait far longer than the test: the batch closes because it is full, not on time.
    let d = PredictorDeployment::new(
        DeploymentConfig::new("batched")
            .with_batching(NonZeroUsize::new(2).unwrap(), Duration::from_secs(600)),
        Checkpoint::new(),
        |_: &Checkpoint| Ok(BatchSize),
    );
    let server = serve(vec![d]);
    let url = format!("{}/batched", server.url());
    let a = runtime().spawn(post_async(url.clone(), r#"{"array": [1]}"#.into()));
    let b = runtime().spawn(post_async(url, r#"{"array": [2]}"#.into()));
    for r in [a, b] {
        assert_eq!(
            runtime().block_on(r).unwrap(),
            (200, json!([{"predictions": 2}]))
        );
    }
    let stats = server.handle("batched").unwrap().stats();
    assert_eq!((stats.batches, stats.ok), (1, 2));
    server.shutdown().unwrap();
}

/// Folds a request's numbers into one row (their sum) when preprocessing, refusing negative
/// numbers there: a predictor whose rows change between request and model, as RLPredictor's
/// do for one observation sent as a 1-D array.
#[derive(Debug)]
struct SumsEachRequest;

impl Predictor for SumsEachRequest {
    fn predict(&self, batch: DataFrame) -> air_train::Result<DataFrame> {
        self.predict_preprocessed(self.preprocess(batch)?)
    }

    fn preprocess(&self, batch: DataFrame) -> air_train::Result<DataFrame> {
        let x = batch
            .column("__value__")
            .and_then(|c| c.i64())
            .map_err(polars)?;
        if x.into_no_null_iter().any(|v| v < 0) {
            return Err(air_train::TrainError::InvalidData {
                what: "numbers",
                found: "a negative one".to_owned(),
                expected: "non-negative numbers".to_owned(),
            });
        }
        let sum: i64 = x.into_no_null_iter().sum();
        Ok(frame_of("sum", Series::new("".into(), [sum])))
    }

    fn predict_preprocessed(&self, batch: DataFrame) -> air_train::Result<DataFrame> {
        let sum = batch
            .column("sum")
            .map_err(polars)?
            .as_materialized_series()
            .clone();
        Ok(frame_of("predictions", sum))
    }
}

#[test]
fn requests_are_preprocessed_alone_then_batched_so_rows_may_change() {
    let d = PredictorDeployment::new(
        DeploymentConfig::new("sums")
            .with_batching(NonZeroUsize::new(3).unwrap(), Duration::from_secs(600)),
        Checkpoint::new(),
        |_: &Checkpoint| Ok(SumsEachRequest),
    );
    let server = serve(vec![d]);
    let url = format!("{}/sums", server.url());
    let calls = [
        r#"{"array": [1, 2, 3]}"#,
        r#"{"array": [10]}"#,
        r#"{"array": [-1, 5]}"#,
    ];
    let answers: Vec<_> = calls
        .iter()
        .map(|body| runtime().spawn(post_async(url.clone(), (*body).to_owned())))
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| runtime().block_on(h).unwrap())
        .collect();
    assert_eq!(answers[0], (200, json!([{"predictions": 6}])));
    assert_eq!(answers[1], (200, json!([{"predictions": 10}])));
    // The bad request fails alone, at preprocessing, with its reason.
    assert_eq!(answers[2].0, 422, "{:?}", answers[2]);
    assert!(
        answers[2].1.to_string().contains("a negative one"),
        "{:?}",
        answers[2]
    );
    let stats = server.handle("sums").unwrap().stats();
    assert_eq!((stats.batches, stats.ok), (1, 2));
    server.shutdown().unwrap();
}

#[test]
fn gbdt_answers_every_body_form_like_the_predictor() {
    let ckpt = gbdt_checkpoint();
    let direct = GbdtPredictor::from_checkpoint(&ckpt).unwrap();
    let rows = breast_cancer().take(3).unwrap().drop("target").unwrap();
    let expected = direct.predict(rows.clone()).unwrap();
    let expected: Vec<f32> = expected
        .column("predictions")
        .unwrap()
        .f32()
        .unwrap()
        .into_no_null_iter()
        .collect();
    let d = PredictorDeployment::new(
        DeploymentConfig::new("gbdt"),
        ckpt,
        GbdtPredictor::from_checkpoint,
    );
    let server = serve(vec![d]);
    let url = format!("{}/gbdt", server.url());
    let names: Vec<String> = rows
        .get_column_names()
        .iter()
        .map(|c| c.to_string())
        .collect();
    let value = |r: usize, c: &str| rows.column(c).unwrap().f64().unwrap().get(r).unwrap();
    let records: Vec<Value> = (0..3)
        .map(|r| {
            Value::Object(
                names
                    .iter()
                    .map(|c| (c.clone(), json!(value(r, c))))
                    .collect(),
            )
        })
        .collect();
    let columns: serde_json::Map<String, Value> = names
        .iter()
        .map(|c| {
            (
                c.clone(),
                json!((0..3).map(|r| value(r, c)).collect::<Vec<_>>()),
            )
        })
        .collect();
    let array = json!({
        "array": (0..3).map(|r| names.iter().map(|c| value(r, c)).collect::<Vec<_>>()).collect::<Vec<_>>(),
        "columns": names,
    });
    for body in [json!(records), Value::Object(columns), array] {
        let (status, answer) = post(&url, &body.to_string());
        assert_eq!(status, 200, "{answer}");
        // f32 predictions are written in their shortest f32 form, which reads back exactly.
        let got: Vec<f32> = answer
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["predictions"].as_f64().unwrap() as f32)
            .collect();
        assert_eq!(got, expected);
    }
    // The in-process handle gives the same, without HTTP.
    let out = server.handle("gbdt").unwrap().predict(rows).unwrap();
    assert_eq!(out.column("predictions").unwrap().len(), 3);
    server.shutdown().unwrap();
}

/// A deployment whose factory asks for SHAP values and leaf indices answers them next to the
/// prediction, equal to the predictor's own.
#[test]
fn gbdt_serves_contributions_and_leaves_when_asked() {
    use air_train::gbdt::{CONTRIBUTIONS, LEAVES};
    let ckpt = gbdt_checkpoint();
    let build = |c: &Checkpoint| {
        Ok::<_, air_train::TrainError>(
            GbdtPredictor::from_checkpoint(c)?
                .with_contributions()
                .with_leaf_indices(),
        )
    };
    let rows = breast_cancer().take(2).unwrap().drop("target").unwrap();
    let direct = build(&ckpt).unwrap().predict(rows.clone()).unwrap();
    let features = rows.width();
    let d = PredictorDeployment::new(DeploymentConfig::new("explained"), ckpt, build);
    let server = serve(vec![d]);
    let names: Vec<String> = rows
        .get_column_names()
        .iter()
        .map(|c| c.to_string())
        .collect();
    let body = json!({
        "array": (0..2).map(|r| names.iter().map(|c| rows.column(c).unwrap().f64().unwrap().get(r).unwrap()).collect::<Vec<_>>()).collect::<Vec<_>>(),
        "columns": names,
    });
    let (status, answer) = post(&format!("{}/explained", server.url()), &body.to_string());
    assert_eq!(status, 200, "{answer}");
    for r in 0..2 {
        let record = &answer[r];
        let contributions: Vec<f32> = record[CONTRIBUTIONS]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(contributions.len(), features + 1);
        let want = direct
            .column(CONTRIBUTIONS)
            .unwrap()
            .array()
            .unwrap()
            .get_as_series(r)
            .unwrap();
        let want: Vec<f32> = want.f32().unwrap().into_no_null_iter().collect();
        assert_eq!(contributions, want);
        let leaves = record[LEAVES].as_array().unwrap();
        assert!(!leaves.is_empty() && leaves.iter().all(|l| l.as_u64().is_some()));
        assert!(record["predictions"].as_f64().is_some());
    }
    server.shutdown().unwrap();
}

#[test]
fn bad_requests_get_named_errors_and_the_server_stays_up() {
    let d = PredictorDeployment::new(
        DeploymentConfig::new("gbdt").with_max_request_bytes(NonZeroUsize::new(64 << 10).unwrap()),
        gbdt_checkpoint(),
        GbdtPredictor::from_checkpoint,
    );
    let server = serve(vec![d]);
    let url = format!("{}/gbdt", server.url());
    let columns = server.handle("gbdt").unwrap().input_columns().unwrap();
    assert_eq!(columns.len(), 30);
    let good: serde_json::Map<String, Value> =
        columns.iter().map(|c| (c.clone(), json!(1.0))).collect();
    let with = |k: &str, v: Value| {
        let mut r = good.clone();
        r.insert(k.to_owned(), v);
        json!([r]).to_string()
    };
    let cases: Vec<(String, u16, &str, &str)> = vec![
        ("[{\"a\": ".into(), 400, "malformed_json", "line 1"),
        (
            with("mean radius", json!("NAN")).replace("\"NAN\"", "NaN"),
            400,
            "malformed_json",
            "send null",
        ),
        ("[]".into(), 422, "empty_input", "at least one row"),
        ("\"hello\"".into(), 422, "unsupported_body", "JSON string"),
        (
            with("colour", json!(3.0)),
            422,
            "wrong_columns",
            "unknown columns [colour]",
        ),
        (
            {
                let mut r = good.clone();
                r.remove("mean radius");
                json!([r]).to_string()
            },
            422,
            "wrong_columns",
            "missing columns [mean radius]",
        ),
        (
            with("mean radius", json!("big")),
            422,
            "predict_failed",
            "mean radius",
        ),
        ("x".repeat(100 << 10), 413, "too_large", "65536 bytes"),
    ];
    for (body, status, kind, needle) in &cases {
        let (got, answer) = post(&url, body);
        assert_eq!(got, *status, "{answer}");
        assert_eq!(answer["error"], *kind, "{answer}");
        let message = answer["message"].as_str().unwrap();
        assert!(message.contains(needle), "{message:?} lacks {needle:?}");
        // Each bad request leaves the deployment serving.
        let (ok, answer) = post(&url, &json!([good]).to_string());
        assert_eq!(ok, 200, "{answer}");
    }
    let (status, answer) = post(&format!("{}/nothing", server.url()), "[]");
    assert_eq!(status, 404);
    assert!(
        answer["message"].as_str().unwrap().contains("/gbdt"),
        "{answer}"
    );
    server.shutdown().unwrap();
}

#[test]
fn over_max_concurrent_queries_answers_503_at_once() {
    let (d, gate) = gated(
        DeploymentConfig::new("gated").with_max_concurrent_queries(NonZeroUsize::new(1).unwrap()),
    );
    let server = serve(vec![d]);
    let url = format!("{}/gated", server.url());
    let handle = server.handle("gated").unwrap();
    let first = runtime().spawn(post_async(url.clone(), r#"{"array": [1]}"#.into()));
    wait_in_flight(&handle, 1);
    let (status, answer) = post(&url, r#"{"array": [2]}"#);
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["error"], "overloaded");
    // In-process calls share the limit.
    let err = handle
        .predict(frame_of("__value__", Series::new("".into(), [1.0])))
        .unwrap_err();
    assert!(
        matches!(err, ServeError::Overloaded { limit: 1, .. }),
        "{err}"
    );
    gate.open();
    assert_eq!(runtime().block_on(first).unwrap().0, 200);
    assert_eq!(post(&url, r#"{"array": [3]}"#).0, 200);
    let metrics = get(&format!("{}/-/metrics", server.url())).1;
    assert!(
        metrics.contains("air_serve_requests_total{deployment=\"gated\",code=\"503\"} 2"),
        "{metrics}"
    );
    server.shutdown().unwrap();
}

#[test]
fn a_slow_answer_times_out_with_408() {
    let (d, gate) =
        gated(DeploymentConfig::new("slow").with_request_timeout(Some(Duration::from_millis(50))));
    let server = serve(vec![d]);
    let (status, answer) = post(&format!("{}/slow", server.url()), r#"{"array": [1]}"#);
    assert_eq!(status, 408, "{answer}");
    assert!(
        answer["message"].as_str().unwrap().contains("50 ms"),
        "{answer}"
    );
    gate.open();
    server.shutdown().unwrap();
}

/// Predicts the number in the checkpoint's metadata `value`.
#[derive(Debug)]
struct Constant(f64);

fn constant_checkpoint(v: f64) -> Checkpoint {
    let mut c = Checkpoint::new();
    c.set_metadata(
        json!({ "value": v })
            .as_object()
            .unwrap()
            .clone()
            .into_iter()
            .collect(),
    );
    c
}

impl Predictor for Constant {
    fn predict(&self, batch: DataFrame) -> air_train::Result<DataFrame> {
        Ok(frame_of(
            "predictions",
            Series::new("".into(), vec![self.0; batch.height()]),
        ))
    }
}

fn constant(c: &Checkpoint) -> air_train::Result<Constant> {
    let v = c.metadata().get("value").and_then(Value::as_f64);
    v.map(Constant).ok_or_else(|| {
        air_train::TrainError::model("reading the constant", "no value in the metadata")
    })
}

#[test]
fn reconfigure_swaps_the_checkpoint_without_failed_requests() {
    let d = PredictorDeployment::new(
        DeploymentConfig::new("swap").with_num_replicas(NonZeroUsize::new(2).unwrap()),
        constant_checkpoint(1.0),
        constant,
    );
    let server = serve(vec![d]);
    let url = format!("{}/swap", server.url());
    let handle = server.handle("swap").unwrap();
    // Clients hammer the deployment while it is swapped twice.
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            runtime().spawn(async move {
                let mut seen = Vec::new();
                for _ in 0..50 {
                    let (status, answer) = post_async(url.clone(), r#"[{"x": 1}]"#.into()).await;
                    assert_eq!(status, 200, "{answer}");
                    seen.push(answer[0]["predictions"].as_f64().unwrap());
                }
                seen
            })
        })
        .collect();
    handle.reconfigure(constant_checkpoint(2.0)).unwrap();
    // A checkpoint the factory refuses leaves the old predictors serving.
    let err = handle.reconfigure(Checkpoint::new()).unwrap_err();
    assert!(err.to_string().contains("no value"), "{err}");
    handle.reconfigure(constant_checkpoint(3.0)).unwrap();
    for c in clients {
        let seen = runtime().block_on(c).unwrap();
        assert!(seen.iter().all(|v| [1.0, 2.0, 3.0].contains(v)), "{seen:?}");
        // Each client sees the versions in order.
        assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    }
    assert_eq!(post(&url, r#"[{"x": 1}]"#).1, json!([{"predictions": 3.0}]));
    assert_eq!(handle.stats().version, 2);
    server.shutdown().unwrap();
}

#[test]
fn shutdown_drains_in_flight_requests() {
    let (d, gate) = gated(DeploymentConfig::new("drain"));
    let server = serve(vec![d]);
    let url = format!("{}/drain", server.url());
    let handle = server.handle("drain").unwrap();
    let addr = server.addr();
    let in_flight = runtime().spawn(post_async(url, r#"{"array": [1]}"#.into()));
    wait_in_flight(&handle, 1);
    let stopping = std::thread::spawn(move || server.shutdown());
    // The server stops accepting before the request is answered.
    while std::net::TcpStream::connect(addr).is_ok() {
        std::thread::yield_now();
    }
    gate.open();
    assert_eq!(
        runtime().block_on(in_flight).unwrap(),
        (200, json!([{"predictions": 1}]))
    );
    stopping.join().unwrap().unwrap();
    let err = handle
        .predict(frame_of("__value__", Series::new("".into(), [1.0])))
        .unwrap_err();
    assert!(matches!(err, ServeError::ShutDown(_)), "{err}");
}

#[derive(Debug)]
struct PanicsOn13;

impl Predictor for PanicsOn13 {
    fn predict(&self, batch: DataFrame) -> air_train::Result<DataFrame> {
        let x = batch
            .column("__value__")
            .and_then(|c| c.i64())
            .map_err(polars)?;
        assert!(!x.into_no_null_iter().any(|v| v == 13), "unlucky number");
        Adder.predict(batch)
    }
}

#[test]
fn deployments_share_a_server_and_its_endpoints() {
    let adder = PredictorDeployment::new(
        DeploymentConfig::new("adder"),
        Checkpoint::new(),
        |_: &Checkpoint| Ok(Adder),
    );
    let flaky = PredictorDeployment::new(
        DeploymentConfig::new("flaky").with_route_prefix("/models/flaky"),
        Checkpoint::new(),
        |_: &Checkpoint| Ok(PanicsOn13),
    );
    // Names and prefixes are unique per server.
    let dup = Server::new(ServeConfig::new().with_port(0))
        .with_deployment(PredictorDeployment::new(
            DeploymentConfig::new("adder"),
            Checkpoint::new(),
            |_: &Checkpoint| Ok(Adder),
        ))
        .unwrap()
        .with_deployment(PredictorDeployment::new(
            DeploymentConfig::new("adder"),
            Checkpoint::new(),
            |_: &Checkpoint| Ok(Adder),
        ));
    assert!(dup.is_err());
    let server = serve(vec![adder, flaky]);
    let base = server.url();
    assert_eq!(
        post(&format!("{base}/adder"), r#"{"array": [1]}"#).1,
        json!([{"predictions": 3}])
    );
    assert_eq!(
        post(&format!("{base}/models/flaky"), r#"{"array": [1, 2]}"#).1,
        json!([{"predictions": 3}, {"predictions": 4}])
    );
    let (status, answer) = post(&format!("{base}/models/flaky"), r#"{"array": [13]}"#);
    assert_eq!(status, 500);
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("unlucky number"),
        "{answer}"
    );
    assert_eq!(
        post(&format!("{base}/models/flaky"), r#"{"array": [1]}"#).0,
        200
    );

    assert_eq!(get(&format!("{base}/-/healthz")), (200, "success".into()));
    let routes: Value = serde_json::from_str(&get(&format!("{base}/-/routes")).1).unwrap();
    assert_eq!(routes, json!({"/adder": "adder", "/models/flaky": "flaky"}));
    let openapi: Value = serde_json::from_str(&get(&format!("{base}/openapi.json")).1).unwrap();
    // utoipa writes OpenAPI 3.1.
    assert_eq!(openapi["openapi"], "3.1.0");
    let post = &openapi["paths"]["/models/flaky"]["post"];
    assert!(post["responses"]["503"].is_object());
    assert_eq!(
        post["responses"]["503"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Error"
    );
    assert!(openapi["components"]["schemas"]["Error"]["required"].is_array());
    let forms = &post["requestBody"]["content"]["application/json"]["schema"]["oneOf"];
    assert_eq!(forms.as_array().map(Vec::len), Some(3), "{forms}");
    assert!(openapi["paths"]["/-/metrics"]["get"].is_object());
    let metrics = get(&format!("{base}/-/metrics")).1;
    for line in [
        "# TYPE air_serve_request_latency_seconds histogram",
        "air_serve_requests_total{deployment=\"flaky\",code=\"500\"} 1",
        "air_serve_requests_total{deployment=\"flaky\",code=\"200\"} 2",
        "air_serve_request_latency_seconds_count{deployment=\"adder\"} 1",
        "air_serve_batch_size_count{deployment=\"flaky\"} 3",
        "air_serve_replicas{deployment=\"adder\"} 1",
        "air_serve_queue_depth{deployment=\"adder\"} 0",
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
    let err = server.handle("nope").unwrap_err();
    assert!(err.to_string().contains("adder, flaky"), "{err}");
    server.shutdown().unwrap();
}

#[test]
fn a_custom_adapter_turns_any_body_into_a_frame() {
    // Plain text "1,2,3" → one column.
    let d = PredictorDeployment::new(
        DeploymentConfig::new("csv"),
        Checkpoint::new(),
        |_: &Checkpoint| Ok(Adder),
    )
    .with_adapter(|body: &[u8]| {
        let text = std::str::from_utf8(body).map_err(|e| RequestError::Unsupported {
            reason: e.to_string(),
        })?;
        let values = text
            .split(',')
            .map(|v| v.trim().parse::<i64>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| RequestError::Unsupported {
                reason: format!("{e} in {text:?}"),
            })?;
        Ok(frame_of("__value__", Series::new("".into(), values)))
    });
    let server = serve(vec![d]);
    let url = format!("{}/csv", server.url());
    assert_eq!(
        post(&url, "1, 2"),
        (200, json!([{"predictions": 3}, {"predictions": 4}]))
    );
    let (status, answer) = post(&url, "1, x");
    assert_eq!(status, 422);
    assert!(
        answer["message"].as_str().unwrap().contains("\"1, x\""),
        "{answer}"
    );
    server.shutdown().unwrap();
}

#[test]
fn configs_are_validated_and_bind_localhost() {
    let refused = |c: DeploymentConfig, field: &str| {
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains(field), "{field}: {e}");
    };
    refused(DeploymentConfig::new(""), "deployment name");
    refused(DeploymentConfig::new("a b"), "deployment name");
    let c = DeploymentConfig::new("m");
    assert!(c.validate().is_ok());
    refused(c.clone().with_route_prefix("no-slash"), "route_prefix");
    refused(c.clone().with_route_prefix("/-/metrics"), "route_prefix");
    refused(c.clone().with_route_prefix("/trailing/"), "route_prefix");
    refused(
        c.clone().with_request_timeout(Some(Duration::ZERO)),
        "request_timeout",
    );
    refused(
        c.clone().with_input_columns(["a", "b", "a"]),
        "input_columns",
    );
    // Counts of 0 cannot be set; read from a file, they are refused by name.
    let mut json = serde_json::to_value(&c).unwrap();
    json["num_replicas"] = 0.into();
    refused(serde_json::from_value(json).unwrap(), "num_replicas");
    // A server refuses an invalid deployment when it is added.
    let bad = PredictorDeployment::new(
        DeploymentConfig::new("m").with_route_prefix("x"),
        Checkpoint::new(),
        |_: &Checkpoint| -> air_train::Result<Constant> { Ok(Constant(0.0)) },
    );
    let e = Server::new(ServeConfig::new())
        .with_deployment(bad)
        .unwrap_err();
    assert!(e.to_string().contains("route_prefix"), "{e}");
    assert_eq!(ServeConfig::new().addr().to_string(), "127.0.0.1:8000");
    let json = serde_json::to_string(&c).unwrap();
    let back: DeploymentConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(back, c);
}
