//! The matrix path (a JSON list of numeric records parsed straight into a GBDT's matrix, the
//! predictions written straight back) answers the same bytes as the general path (a data
//! frame through the adapter, `predict` and `records_json`): for single requests, merged
//! batches, batches mixing both paths, and a request parsed before a reconfigure. Requests run
//! on the caller's thread answer as those run on a replica's thread.

mod common;

use std::{
    num::NonZeroUsize,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use air_checkpoint::Checkpoint;
use air_data::{Dataset, polars::prelude::*};
use air_serve::{DeploymentConfig, JsonAdapter, PredictorDeployment, RequestError, ServerHandle};
use air_train::{
    FromCheckpoint, MatrixPredictions, MatrixPredictor, Predictor,
    gbdt::{GbdtParams, GbdtPredictor, Objective},
};
use common::{Gate, breast_cancer, client, gbdt_checkpoint, runtime, scaled_gbdt_checkpoint};
use serde_json::{Map, Value, json};

/// Calls of each path of a [`Tracked`] predictor, and the threads they ran on.
#[derive(Debug, Default)]
struct Calls {
    frames: AtomicUsize,
    matrices: AtomicUsize,
    threads: Mutex<Vec<String>>,
}

impl Calls {
    fn ran_here(&self) {
        let name = std::thread::current().name().unwrap_or("").to_owned();
        self.threads.lock().unwrap().push(name);
    }
}

/// A GBDT predictor that counts the calls of each path and may hold matrix calls at a gate.
#[derive(Debug)]
struct Tracked {
    inner: GbdtPredictor,
    calls: Arc<Calls>,
    gate: Option<Arc<Gate>>,
}

impl Predictor for Tracked {
    fn predict(&self, batch: DataFrame) -> air_train::Result<DataFrame> {
        self.calls.frames.fetch_add(1, Ordering::SeqCst);
        self.calls.ran_here();
        self.inner.predict(batch)
    }

    fn input_columns(&self) -> Option<Vec<String>> {
        self.inner.input_columns()
    }

    fn as_matrix(&self) -> Option<&dyn MatrixPredictor> {
        self.inner.as_matrix().map(|_| self as &dyn MatrixPredictor)
    }
}

impl MatrixPredictor for Tracked {
    fn columns(&self) -> &[String] {
        self.inner.as_matrix().expect("offered").columns()
    }

    fn predict_matrix(&self, data: &[f32], rows: usize) -> air_train::Result<MatrixPredictions> {
        if let Some(gate) = &self.gate {
            gate.wait();
        }
        self.calls.matrices.fetch_add(1, Ordering::SeqCst);
        self.calls.ran_here();
        self.inner
            .as_matrix()
            .expect("offered")
            .predict_matrix(data, rows)
    }
}

fn tracked(
    checkpoint: &Checkpoint,
    calls: &Arc<Calls>,
    gate: Option<&Arc<Gate>>,
) -> air_train::Result<Tracked> {
    Ok(Tracked {
        inner: GbdtPredictor::from_checkpoint(checkpoint)?,
        calls: Arc::clone(calls),
        gate: gate.cloned(),
    })
}

/// A deployment of `checkpoint` through the matrix path where it applies (`name`, its matrix
/// calls held at `gate` if given) and one forced onto the general path by an adapter that is
/// not the default (`{name}_frames`); batches of up to `batch`.
fn pair(
    name: &str,
    checkpoint: &Checkpoint,
    batch: usize,
    gate: Option<Arc<Gate>>,
) -> (Vec<PredictorDeployment>, Arc<Calls>) {
    let config = |n: &str| {
        DeploymentConfig::new(n)
            .with_max_concurrent_queries(NonZeroUsize::new(1000).unwrap())
            .with_batching(NonZeroUsize::new(batch).unwrap(), Duration::ZERO)
            // Every request on the caller's thread once a cost is known, whatever it is.
            .with_run_on_caller_below(Some(Duration::MAX))
    };
    let calls = Arc::new(Calls::default());
    let c = Arc::clone(&calls);
    let fast =
        PredictorDeployment::new(config(name), checkpoint.clone(), move |ck: &Checkpoint| {
            tracked(ck, &c, gate.as_ref())
        });
    let frames = PredictorDeployment::new(
        config(&format!("{name}_frames")),
        checkpoint.clone(),
        GbdtPredictor::from_checkpoint,
    )
    .with_adapter(|body: &[u8]| -> Result<DataFrame, RequestError> {
        use air_serve::Adapter;
        JsonAdapter.to_frame(body)
    });
    (vec![fast, frames], calls)
}

async fn post_raw(url: String, body: String) -> (u16, String) {
    let r = client().post(url).body(body).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn post(url: &str, body: &str) -> (u16, String) {
    runtime().block_on(post_raw(url.to_owned(), body.to_owned()))
}

/// Rows of the breast cancer features as JSON records (the label dropped).
fn records(rows: usize) -> Vec<Map<String, Value>> {
    let df = breast_cancer().take(rows).unwrap().drop("target").unwrap();
    (0..rows)
        .map(|r| {
            df.columns()
                .iter()
                .map(|c| {
                    let v = c.cast(&DataType::Float64).unwrap().f64().unwrap().get(r);
                    (c.name().to_string(), json!(v))
                })
                .collect()
        })
        .collect()
}

fn body(records: &[Map<String, Value>]) -> String {
    serde_json::to_string(records).unwrap()
}

/// Bodies the matrix path takes: one and several rows, keys in another order, integers,
/// nulls, a column of integers in one record and floats in another, integers at ±2^53.
fn matrix_bodies() -> Vec<String> {
    let rows = records(8);
    let mut out = vec![body(&rows[..1]), body(&rows)];
    // Keys in reverse order (a `Map` writes them sorted).
    let reversed: Vec<String> = rows[2]
        .iter()
        .rev()
        .map(|(k, v)| format!("{}: {v}", json!(k)))
        .collect();
    out.push(format!("[{{{}}}]", reversed.join(", ")));
    let mut ints = rows[3].clone();
    for (i, v) in ints.values_mut().enumerate() {
        *v = json!(v.as_f64().unwrap().round() as i64 * if i % 2 == 0 { 1 } else { -1 });
    }
    out.push(body(&[ints.clone(), rows[4].clone()]));
    let mut nulls = rows[5].clone();
    nulls.insert("mean radius".into(), Value::Null);
    nulls.insert("worst area".into(), Value::Null);
    out.push(body(&[nulls.clone(), rows[6].clone()]));
    let mut all_null = rows[7].clone();
    all_null.values_mut().for_each(|v| *v = Value::Null);
    out.push(body(&[all_null]));
    let mut huge = rows[0].clone();
    huge.insert("mean area".into(), json!(9_007_199_254_740_992i64));
    huge.insert("worst area".into(), json!(-9_007_199_254_740_992i64));
    huge.insert("mean radius".into(), json!(1e300));
    out.push(body(&[huge]));
    out
}

/// Bodies the matrix path leaves to the general path (which answers them, or names what is
/// wrong).
fn general_bodies() -> Vec<String> {
    let rows = records(3);
    let mut missing = rows[0].clone();
    missing.remove("mean radius");
    let mut extra = rows[0].clone();
    extra.insert("id".into(), json!(7));
    let mut text = rows[0].clone();
    text.insert("mean radius".into(), json!("large"));
    let mut boolean = rows[0].clone();
    boolean.insert("mean radius".into(), json!(true));
    let mut huge = rows[0].clone();
    huge.insert("mean area".into(), json!(9_007_199_254_740_993i64));
    let columns: Map<String, Value> = rows[0]
        .iter()
        .map(|(k, v)| (k.clone(), json!([v, v])))
        .collect();
    vec![
        body(&[rows[0].clone(), missing.clone()]), // padded with a null by the general path
        body(&[missing]),
        body(&[extra]),
        body(&[text]),
        body(&[boolean]),
        body(&[huge]),
        serde_json::to_string(&columns).unwrap(),
        "[]".to_owned(),
        "[{}]".to_owned(),
        "{\"array\": [1, 2]}".to_owned(),
        format!("{} trailing", body(&rows[..1])),
        "[{\"mean radius\": NaN}]".to_owned(),
    ]
}

fn multiclass_checkpoint() -> Checkpoint {
    let n = 300;
    let x: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin() * 3.0).collect();
    let y: Vec<f64> = (0..n).map(|i| (i as f64 * 0.11).cos()).collect();
    let label: Vec<i64> = x
        .iter()
        .zip(&y)
        .map(|(a, b)| i64::from(*a > 1.0) + i64::from(*b > 0.5))
        .collect();
    let df = df!("x" => x, "y" => y, "target" => label).unwrap();
    common::train_in_memory(
        GbdtParams::new(Objective::MultiSoftprob { num_class: 3 }),
        4,
        Dataset::from_polars(df),
        None,
    )
}

fn assert_same(server: &ServerHandle, name: &str, body: &str) -> u16 {
    let fast = post(&format!("{}/{name}", server.url()), body);
    let general = post(&format!("{}/{name}_frames", server.url()), body);
    assert_eq!(fast, general, "{name}: {body}");
    fast.0
}

#[test]
fn both_paths_answer_the_same_bytes() {
    let (mut deployments, calls) = pair("binary", &gbdt_checkpoint(), 1, None);
    let (multi, multi_calls) = pair("multi", &multiclass_checkpoint(), 1, None);
    deployments.extend(multi);
    let server = common::serve(deployments);

    for body in matrix_bodies() {
        let before = (
            calls.frames.load(Ordering::SeqCst),
            calls.matrices.load(Ordering::SeqCst),
        );
        assert_eq!(assert_same(&server, "binary", &body), 200, "{body}");
        let after = (
            calls.frames.load(Ordering::SeqCst),
            calls.matrices.load(Ordering::SeqCst),
        );
        assert_eq!(after, (before.0, before.1 + 1), "the matrix path: {body}");
    }
    let mut statuses = Vec::new();
    for body in general_bodies() {
        let matrices = calls.matrices.load(Ordering::SeqCst);
        statuses.push(assert_same(&server, "binary", &body));
        assert_eq!(calls.matrices.load(Ordering::SeqCst), matrices, "{body}");
    }
    assert_eq!(
        statuses,
        [200, 422, 422, 422, 200, 200, 200, 422, 422, 422, 400, 400]
    );
    assert!(calls.frames.load(Ordering::SeqCst) >= 5);

    // Several outputs per row: the probabilities of 3 classes.
    let rows: Vec<Value> = (0..5)
        .map(|i| json!({"x": f64::from(i) - 2.5, "y": if i == 3 { Value::Null } else { json!(i) }}))
        .collect();
    let body = serde_json::to_string(&rows).unwrap();
    assert_eq!(assert_same(&server, "multi", &body), 200);
    assert_eq!(multi_calls.matrices.load(Ordering::SeqCst), 1);
    let answer: Value =
        serde_json::from_str(&post(&format!("{}/multi", server.url()), &body).1).unwrap();
    assert_eq!(answer[0]["predictions"].as_array().unwrap().len(), 3);
    server.shutdown().unwrap();
}

#[test]
fn batches_merge_and_split_alike_on_both_paths() {
    let gate = Arc::new(Gate::default());
    let (deployments, calls) = pair("batched", &gbdt_checkpoint(), 32, Some(Arc::clone(&gate)));
    let server = common::serve(deployments);
    let handle = server.handle("batched").unwrap();
    // Bodies that reach the queue: the matrix ones, and general ones that pass the column
    // check (one of which fails in the model, so the merged frames are predicted one by one).
    let general = general_bodies();
    let mut bodies = matrix_bodies();
    bodies.extend([0, 3, 4, 5, 6].map(|i| general[i].clone()));
    let url = server.url();
    let send = |path: String, body: String| runtime().spawn(post_raw(path, body));
    // The first matrix request holds the replica; the others queue behind it and go as one
    // batch once the gate opens.
    let first = send(format!("{url}/batched"), bodies[0].clone());
    while handle.stats().busy_replicas < 1 {
        std::thread::yield_now();
    }
    let fast: Vec<_> = bodies
        .iter()
        .map(|b| send(format!("{url}/batched"), b.clone()))
        .collect();
    while handle.stats().queued < bodies.len() {
        std::thread::yield_now();
    }
    gate.open();
    let general_answers: Vec<_> = bodies
        .iter()
        .map(|b| send(format!("{url}/batched_frames"), b.clone()))
        .collect();
    runtime().block_on(async {
        assert_eq!(first.await.unwrap().0, 200);
        for ((body, fast), general) in bodies.iter().zip(fast).zip(general_answers) {
            assert_eq!(fast.await.unwrap(), general.await.unwrap(), "{body}");
        }
    });
    assert_eq!(
        calls.matrices.load(Ordering::SeqCst),
        2,
        "the held request, then one merged matrix"
    );
    assert_eq!(handle.stats().batches, 2);
    server.shutdown().unwrap();
}

#[test]
fn a_request_parsed_before_a_reconfigure_is_answered_by_the_new_model() {
    let calls = Arc::new(Calls::default());
    let gate = Arc::new(Gate::default());
    let builds = AtomicUsize::new(0);
    let (c, g) = (Arc::clone(&calls), Arc::clone(&gate));
    // The first predictor holds its matrix calls at the gate; the second, of the scaled
    // checkpoint, has a preprocessor, so it offers no matrix.
    let deployment = PredictorDeployment::new(
        DeploymentConfig::new("swap").with_batching(NonZeroUsize::MIN, Duration::ZERO),
        gbdt_checkpoint(),
        move |ck: &Checkpoint| {
            let first = builds.fetch_add(1, Ordering::SeqCst) == 0;
            tracked(ck, &c, first.then_some(&g))
        },
    );
    let server = common::serve(vec![deployment]);
    let handle = server.handle("swap").unwrap();
    let rows = records(2);
    let (first, second) = (body(&rows[..1]), body(&rows[1..]));
    let url = format!("{}/swap", server.url());
    let a = runtime().spawn(post_raw(url.clone(), first));
    while handle.stats().busy_replicas < 1 {
        std::thread::yield_now();
    }
    let b = runtime().spawn(post_raw(url.clone(), second.clone()));
    while handle.stats().queued < 1 {
        std::thread::yield_now();
    }
    handle.reconfigure(scaled_gbdt_checkpoint()).unwrap();
    gate.open();
    let (a, b) = runtime().block_on(async { (a.await.unwrap(), b.await.unwrap()) });
    assert_eq!(a.0, 200);
    assert_eq!(calls.matrices.load(Ordering::SeqCst), 1, "only the first");
    // The second, parsed into the first model's matrix, went to the scaled model as a frame.
    let scaled = GbdtPredictor::from_checkpoint(&scaled_gbdt_checkpoint()).unwrap();
    let frame = air_serve::frame_from_json(serde_json::from_str(&second).unwrap()).unwrap();
    let expected = air_serve::records_json(&scaled.predict(frame).unwrap());
    assert_eq!(b, (200, String::from_utf8(expected).unwrap()));
    server.shutdown().unwrap();
}

#[test]
fn requests_run_on_the_callers_thread_answer_as_on_a_replicas() {
    let (deployments, calls) = pair("here", &gbdt_checkpoint(), 1, None);
    let server = common::serve(deployments);
    let rows = records(1);
    let mut missing = rows[0].clone();
    missing.remove("mean radius");
    // A matrix body and a frame body (a record with a missing key, padded with a null).
    for body in [body(&rows), body(&[rows[0].clone(), missing])] {
        let answers: Vec<(u16, String)> = (0..4)
            .map(|_| post(&format!("{}/here", server.url()), &body))
            .collect();
        assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
        assert_eq!(answers[0].0, 200);
    }
    // The first request ran on the replica's thread (the model's cost was not known yet); the
    // later ones on the server's HTTP threads (the deployment takes any cost as cheap).
    let threads = calls.threads.lock().unwrap().clone();
    assert_eq!(threads.len(), 8);
    assert_eq!(threads[0], "air-serve-here-0");
    assert!(
        threads[1..].iter().all(|t| t == "air-serve-http"),
        "{threads:?}"
    );
    server.shutdown().unwrap();
}
