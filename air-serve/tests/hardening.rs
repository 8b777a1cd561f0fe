//! What attackers and careless clients do to a server on 127.0.0.1, and what they get: shapes
//! that overflow, slow and silent senders, idle connections, connection floods, bursts,
//! HTTP/2, broken framing, wrong types, and generated bodies. After each, good requests are
//! still answered.

use std::num::NonZeroUsize;
use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    sync::Arc,
    time::{Duration, Instant},
};

use air_data::polars::prelude::*;
use air_serve::{DeploymentConfig, PredictorDeployment, ServeConfig, ServerHandle};
use air_train::{FromCheckpoint, gbdt::GbdtPredictor};
use proptest::{
    prelude::*,
    strategy::ValueTree,
    test_runner::{Config, TestRunner},
};
use serde_json::{Value, json};

mod common;
use common::*;

/// How long a client waits for an answer before the test fails (never reached when the
/// server behaves; timeouts under test are far shorter).
const CLIENT_PATIENCE: Duration = Duration::from_secs(30);

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(CLIENT_PATIENCE)).unwrap();
    stream
}

/// Reads until the server closes the connection; the text read.
fn read_to_close(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            // A reset after the answer (the server closed with unread input) ends it too.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("no answer and no close within {CLIENT_PATIENCE:?}: {e}"),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Sends `request` on a new connection and reads the whole answer.
fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = connect(addr);
    stream.write_all(request).unwrap();
    read_to_close(&mut stream)
}

fn post_raw(addr: SocketAddr, path: &str, body: &str) -> String {
    raw(
        addr,
        format!(
            "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
}

/// The status code and JSON body of a raw HTTP/1.1 answer.
fn parse(answer: &str) -> (u16, Value) {
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"));
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (
        status,
        serde_json::from_str(body).unwrap_or(Value::String(body.to_owned())),
    )
}

fn metric(server: &ServerHandle, name: &str) -> f64 {
    let text = post_free_get(server.addr(), "/-/metrics");
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no metric {name} in {text}"))
}

fn post_free_get(addr: SocketAddr, path: &str) -> String {
    raw(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

/// A deployment answering each row with its batch's size.
fn counting(config: DeploymentConfig) -> PredictorDeployment {
    PredictorDeployment::new(config, air_checkpoint::Checkpoint::new(), |_: &_| {
        Ok(BatchSize)
    })
}

/// The GBDT of `checkpoint` at `/gbdt`.
fn gbdt(checkpoint: air_checkpoint::Checkpoint) -> PredictorDeployment {
    PredictorDeployment::new(
        DeploymentConfig::new("gbdt"),
        checkpoint,
        GbdtPredictor::from_checkpoint,
    )
}

/// Asserts that a good request is still answered.
fn still_up(addr: SocketAddr, path: &str) {
    let (status, body) = parse(&post_raw(addr, path, r#"{"array": [[1, 2]]}"#));
    assert_eq!(status, 200, "{body}");
}

#[test]
fn shapes_that_overflow_are_422_naming_the_field() {
    let server = serve(vec![counting(DeploymentConfig::new("b"))]);
    let bodies = [
        r#"{"array": [1, 2], "shape": [9223372036854775809, 2]}"#,
        r#"{"array": [1, 2], "shape": [9223372036854775809, 2], "dtype": "float32"}"#,
        r#"{"array": [1, 2, 3, 4], "shape": [4611686018427387904, 4]}"#,
        r#"{"array": [[1, 2]], "shape": [18446744073709551615, 18446744073709551615, 2]}"#,
        r#"{"array": [1, 2], "shape": [-1, 2]}"#,
        r#"{"array": [1, 2], "shape": [1e30, 2]}"#,
        r#"{"array": [1, 2], "shape": "2x1"}"#,
    ];
    for body in bodies {
        let (status, answer) = parse(&post_raw(server.addr(), "/b", body));
        assert_eq!(status, 422, "{body}: {answer}");
        assert!(
            answer["message"].as_str().unwrap().contains("\"shape\""),
            "{body}: {answer}"
        );
        still_up(server.addr(), "/b");
    }
    let (status, answer) = parse(&post_raw(
        server.addr(),
        "/b",
        r#"{"array": [], "shape": [0, 9223372036854775807, 4]}"#,
    ));
    assert_eq!(
        (status, answer["error"].as_str()),
        (422, Some("empty_input"))
    );
    server.shutdown().unwrap();
}

#[test]
fn many_keys_get_a_short_422_and_sparse_records_are_refused() {
    let d = gbdt(gbdt_checkpoint());
    let server = serve(vec![d]);
    let wide: serde_json::Map<String, Value> =
        (0..40_000).map(|i| (format!("k{i}"), json!(i))).collect();
    let (status, answer) = parse(&post_raw(
        server.addr(),
        "/gbdt",
        &json!([wide]).to_string(),
    ));
    assert_eq!(status, 422, "{answer}");
    let message = answer["message"].as_str().unwrap();
    assert!(message.contains("and 39980 more"), "{message}");
    assert!(message.len() < 4096, "{} bytes", message.len());
    let mut sparse = json!([wide]).to_string();
    sparse.pop();
    sparse.push_str(&",{}".repeat(100_000));
    sparse.push(']');
    let (status, answer) = parse(&post_raw(server.addr(), "/gbdt", &sparse));
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["message"].as_str().unwrap().contains("too sparse"),
        "{answer}"
    );
    let rows = breast_cancer().take(1).unwrap().drop("target").unwrap();
    let (status, _) = post(&format!("{}/gbdt", server.url()), &records(&rows));
    assert_eq!(status, 200);
    server.shutdown().unwrap();
}

/// `df` as JSON records.
fn records(df: &DataFrame) -> String {
    String::from_utf8(air_serve::records_json(df)).unwrap()
}

/// Clients that declare a body and send a few bytes of it.
fn slow_senders(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let mut s = connect(addr);
            s.write_all(b"POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n{\"array\":")
                .unwrap();
            s
        })
        .collect()
}

#[test]
fn slow_senders_hold_no_slot_and_get_408() {
    // One request in flight at most: if a slow sender held a slot, the good request would be
    // answered 503 whatever the timing.
    let one =
        || DeploymentConfig::new("b").with_max_concurrent_queries(NonZeroUsize::new(1).unwrap());
    let server = serve_with(ServeConfig::new().with_port(0), vec![counting(one())]);
    let stalled = slow_senders(server.addr(), 8);
    let handle = server.handle("b").unwrap();
    while handle.stats().receiving < 8 {
        std::thread::yield_now();
    }
    for _ in 0..3 {
        still_up(server.addr(), "/b");
    }
    drop(stalled);
    server.shutdown().unwrap();

    // The body timeout answers them 408, naming what arrived.
    let server = serve_with(
        ServeConfig::new()
            .with_port(0)
            .with_body_timeout(Duration::from_millis(300)),
        vec![counting(one())],
    );
    for mut s in slow_senders(server.addr(), 3) {
        let (status, answer) = parse(&read_to_close(&mut s));
        assert_eq!(status, 408, "{answer}");
        assert_eq!(answer["error"], "body_timeout", "{answer}");
        let message = answer["message"].as_str().unwrap();
        assert!(
            message.contains("9 bytes received of 1000 declared"),
            "{message}"
        );
    }
    still_up(server.addr(), "/b");
    assert_eq!(server.handle("b").unwrap().stats().in_flight, 0);
    server.shutdown().unwrap();
}

#[test]
fn silent_slow_header_and_idle_connections_are_closed() {
    let server = serve_with(
        ServeConfig::new()
            .with_port(0)
            .with_header_timeout(Duration::from_millis(300))
            .with_idle_timeout(Duration::from_millis(300)),
        vec![counting(DeploymentConfig::new("b"))],
    );
    // Connected, nothing sent: closed without an answer.
    let mut silent = connect(server.addr());
    assert_eq!(read_to_close(&mut silent), "");
    // Half the headers, then nothing: closed without an answer.
    let mut slow = connect(server.addr());
    slow.write_all(b"POST /b HTTP/1.1\r\nHost: t\r\n").unwrap();
    assert_eq!(read_to_close(&mut slow), "");
    // A keep-alive connection: answered, then closed once idle.
    let mut idle = connect(server.addr());
    let body = r#"{"array": [[1, 2]]}"#;
    write!(
        idle,
        "POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let (status, _) = parse(&read_to_close(&mut idle));
    assert_eq!(status, 200);
    assert_eq!(
        metric(&server, "air_serve_connections_header_timeouts_total"),
        2.0
    );
    assert_eq!(
        metric(&server, "air_serve_connections_idle_closed_total"),
        1.0
    );
    still_up(server.addr(), "/b");
    server.shutdown().unwrap();
}

#[test]
fn connections_past_the_cap_are_answered_503_at_once() {
    let (d, gate) = gated(DeploymentConfig::new("g"));
    let server = serve_with(
        ServeConfig::new()
            .with_port(0)
            .with_max_connections(NonZeroUsize::new(3).unwrap()),
        vec![d],
    );
    let handle = server.handle("g").unwrap();
    let body = r#"{"array": [1]}"#;
    let request = format!(
        "POST /g HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let held: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut s = connect(server.addr());
            s.write_all(request.as_bytes()).unwrap();
            s
        })
        .collect();
    wait_in_flight(&handle, 3);
    for _ in 0..5 {
        let (status, answer) = parse(&raw(server.addr(), request.as_bytes()));
        assert_eq!(status, 503, "{answer}");
        assert!(
            answer["message"]
                .as_str()
                .unwrap()
                .contains("max_connections"),
            "{answer}"
        );
    }
    gate.open();
    for mut s in held {
        assert_eq!(parse(&read_to_close(&mut s)).0, 200);
    }
    assert_eq!(parse(&raw(server.addr(), request.as_bytes())).0, 200);
    assert_eq!(metric(&server, "air_serve_connections_refused_total"), 5.0);
    server.shutdown().unwrap();
}

/// Lets the process open as many files as its hard limit allows (a burst needs two sockets
/// per request in one process).
fn raise_open_files_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    limit.current = limit.maximum;
    let _ = setrlimit(Resource::Nofile, limit);
}

#[test]
fn a_burst_is_refused_at_once_while_admitted_requests_wait() {
    raise_open_files_limit();
    const BURST: usize = 1000;
    const ADMITTED: usize = 8;
    let (d, gate) = gated(
        DeploymentConfig::new("g")
            .with_max_concurrent_queries(NonZeroUsize::new(ADMITTED).unwrap()),
    );
    let server = serve(vec![d]);
    let addr = server.addr();
    let body = r#"{"array": [1]}"#;
    let request = Arc::new(format!(
        "POST /g HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    // Every request is sent at once; an answer is (status, latency, when it arrived).
    let (tx, rx) = std::sync::mpsc::channel::<(u16, Duration, Instant)>();
    let started = Instant::now();
    for _ in 0..BURST {
        let (tx, request) = (tx.clone(), Arc::clone(&request));
        runtime().spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let sent = Instant::now();
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(request.as_bytes()).await.unwrap();
            let mut answer = Vec::new();
            let _ = s.read_to_end(&mut answer).await;
            let (status, _) = parse(&String::from_utf8_lossy(&answer));
            let _ = tx.send((status, sent.elapsed(), Instant::now()));
        });
    }
    // The gate opens only once every refusal is in: success comes after all of them.
    let mut refused = Vec::new();
    while refused.len() < BURST - ADMITTED {
        let (status, latency, _) = rx.recv_timeout(CLIENT_PATIENCE).unwrap();
        assert_eq!(
            status, 503,
            "only refusals can arrive before the gate opens"
        );
        refused.push(latency);
    }
    let opened = Instant::now();
    gate.open();
    let mut admitted = Vec::new();
    while admitted.len() < ADMITTED {
        let (status, latency, at) = rx.recv_timeout(CLIENT_PATIENCE).unwrap();
        assert_eq!(status, 200);
        assert!(at >= opened);
        admitted.push(latency);
    }
    refused.sort();
    admitted.sort();
    assert!(refused.last() < admitted.first());
    println!(
        "burst of {BURST}: 503 p50 {:?} p99 {:?} max {:?}; 200 min {:?}; all in {:?}",
        refused[refused.len() / 2],
        refused[refused.len() * 99 / 100],
        refused.last().unwrap(),
        admitted[0],
        started.elapsed()
    );
    let stats = server.handle("g").unwrap().stats();
    assert_eq!(
        (stats.ok, stats.overloaded),
        (ADMITTED as u64, (BURST - ADMITTED) as u64)
    );
    server.shutdown().unwrap();
}

#[test]
fn http2_is_not_spoken() {
    let server = serve(vec![counting(DeploymentConfig::new("b"))]);
    // Prior knowledge: the connection preface, then an empty SETTINGS frame.
    let mut preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    preface.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    let answer = raw(server.addr(), &preface);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 "),
        "an HTTP/2 answer: {:?}",
        answer.as_bytes()
    );
    // An upgrade request is answered in HTTP/1.1, not switched.
    let body = r#"{"array": [[1, 2]]}"#;
    let answer = raw(
        server.addr(),
        format!(
            "POST /b HTTP/1.1\r\nHost: t\r\nConnection: Upgrade, HTTP2-Settings, close\r\n\
             Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    still_up(server.addr(), "/b");
    server.shutdown().unwrap();
}

#[test]
fn broken_framing_is_400_naming_it() {
    let server = serve(vec![counting(DeploymentConfig::new("b"))]);
    // A chunk size that is not hex.
    let (status, answer) = parse(&raw(
        server.addr(),
        b"POST /b HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    ));
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"], "malformed_body", "{answer}");
    assert!(
        answer["message"].as_str().unwrap().contains("chunk"),
        "{answer}"
    );
    // A declared length the client never sends: it half-closes after 10 bytes.
    let mut s = connect(server.addr());
    s.write_all(b"POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n{\"array\":[")
        .unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let (status, answer) = parse(&read_to_close(&mut s));
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("after 10 bytes"),
        "{answer}"
    );
    still_up(server.addr(), "/b");
    server.shutdown().unwrap();
}

#[test]
fn a_value_of_the_wrong_type_is_422_naming_column_row_and_value() {
    let d = gbdt(scaled_gbdt_checkpoint());
    let server = serve(vec![d]);
    let url = format!("{}/gbdt", server.url());
    let rows = breast_cancer().take(2).unwrap().drop("target").unwrap();
    let good: Vec<Value> = serde_json::from_str(&records(&rows)).unwrap();
    let huge = "x".repeat(5 << 20);
    let mut tried = 0;
    // "mean radius" is scaled; "worst area" goes to the model as it is. In row 0 of a single
    // record the whole column has the wrong type; in row 1 of two, one value has.
    for column in ["mean radius", "worst area"] {
        for (value, shown) in [
            (json!("abc"), "\"abc\""),
            (json!(huge), "\"xxxxxxxxxx"),
            (json!([1.5, 2.5]), "1.5"),
            (json!(true), "true"),
        ] {
            for row in [0, 1] {
                let mut body = good[..=row].to_vec();
                body[row][column] = value.clone();
                let (status, answer) = post(&url, &Value::Array(body).to_string());
                let message = answer["message"].as_str().unwrap_or_default();
                // A column of booleans is a boolean column, which models read as 0/1 (as
                // they do in training); booleans mixed with numbers are a wrong type.
                if value.is_boolean() && row == 0 {
                    assert_eq!(status, 200, "{column} row {row}: {answer}");
                    continue;
                }
                assert_eq!(status, 422, "{column} row {row}: {answer}");
                assert!(message.contains(&format!("\"{column}\"")), "{message}");
                assert!(message.contains(&format!("row {row}")), "{message}");
                assert!(message.contains(shown), "{message}");
                assert!(message.len() < 1024, "{} bytes", message.len());
                tried += 1;
            }
        }
    }
    assert_eq!(tried, 14);
    let (status, _) = post(&url, &Value::Array(good).to_string());
    assert_eq!(status, 200);
    server.shutdown().unwrap();
}

/// Generated bodies through a live server: every answer is 200 or a 4xx with a JSON error
/// body whose status matches, and the server answers good requests after all of them.
#[test]
fn generated_bodies_get_200_or_a_json_4xx() {
    let gbdt = gbdt(scaled_gbdt_checkpoint());
    let server = serve(vec![gbdt, counting(DeploymentConfig::new("b"))]);
    let rows = breast_cancer().take(1).unwrap().drop("target").unwrap();
    let good: Vec<Value> = serde_json::from_str(&records(&rows)).unwrap();
    let names: Vec<String> = good[0].as_object().unwrap().keys().cloned().collect();
    // A good record with one to three fields replaced, removed or added.
    let edit = (
        prop::sample::select(names),
        prop_oneof![
            Just(Value::Null),
            Just(json!("abc")),
            Just(json!([1, 2])),
            Just(json!({"x": 1})),
            Just(json!(true)),
            Just(json!(1e308)),
            Just(json!(-0.0)),
            Just(json!(18_446_744_073_709_551_615u64)),
        ],
        0u8..3,
    );
    let bodies = prop::collection::vec(edit, 1..4).prop_map(move |edits| {
        let mut record = good[0].clone();
        for (name, value, how) in edits {
            let obj = record.as_object_mut().unwrap();
            match how {
                0 => {
                    obj.insert(name, value);
                }
                1 => {
                    obj.remove(&name);
                }
                _ => {
                    obj.insert(format!("{name}!"), value);
                }
            }
        }
        json!([record]).to_string()
    });
    let mut runner = TestRunner::new(Config {
        failure_persistence: None,
        ..Config::default()
    });
    let mut codes = std::collections::BTreeMap::<u16, usize>::new();
    for _ in 0..150 {
        let body = bodies.new_tree(&mut runner).unwrap().current();
        let (status, answer) = parse(&post_raw(server.addr(), "/gbdt", &body));
        *codes.entry(status).or_default() += 1;
        if status != 200 {
            assert!(matches!(status, 400 | 413 | 422), "{status}: {answer}");
            assert_eq!(answer["status"], json!(status), "{answer}");
            assert!(answer["error"].is_string() && answer["message"].is_string());
        }
    }
    // Raw bytes and arbitrary JSON at the array deployment.
    for _ in 0..100 {
        let body = prop::collection::vec(any::<u8>(), 0..64)
            .new_tree(&mut runner)
            .unwrap()
            .current();
        let mut request = format!(
            "POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(&body);
        let (status, answer) = parse(&raw(server.addr(), &request));
        *codes.entry(status).or_default() += 1;
        assert!(matches!(status, 200 | 400 | 422), "{status}: {answer}");
    }
    println!("generated bodies by status: {codes:?}");
    assert!(codes.get(&422).is_some_and(|n| *n > 0) && codes.get(&400).is_some_and(|n| *n > 0));
    still_up(server.addr(), "/b");
    let (status, _) = post(&format!("{}/gbdt", server.url()), &records(&rows));
    assert_eq!(status, 200);
    server.shutdown().unwrap();
}
