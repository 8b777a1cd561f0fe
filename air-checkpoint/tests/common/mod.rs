//! Helpers shared by the integration tests: file trees and a real S3-compatible server.
#![allow(dead_code, unreachable_pub)]

use std::{
    collections::BTreeMap,
    fs,
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    path::Path,
    process::{Child, Command, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

use air_checkpoint::{MANIFEST_NAME, StorageOptions};

/// A directory laid out like a foreign model (an MLflow model folder): nested folders, an
/// empty file, binary content, a dotfile, a name with spaces.
pub fn write_foreign_tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let binary: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let files: BTreeMap<String, Vec<u8>> = [
        (
            "MLmodel",
            b"flavors:\n  python_function:\n    loader_module: mlflow.sklearn\n".to_vec(),
        ),
        ("conda.yaml", b"name: mlflow-env\n".to_vec()),
        ("model.pkl", binary),
        ("empty.txt", Vec::new()),
        (".hidden", b"dotfile".to_vec()),
        (
            "data/nested/deeper/params.json",
            br#"{"alpha": 0.5}"#.to_vec(),
        ),
        ("data/with space.txt", b"spaces".to_vec()),
        ("metadata/.keep", Vec::new()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    write_tree(root, &files);
    files
}

pub fn write_tree(root: &Path, files: &BTreeMap<String, Vec<u8>>) {
    for (name, bytes) in files {
        let path = root.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, bytes).unwrap();
    }
}

/// Every file under `root` (recursively) except the checkpoint manifest.
pub fn read_tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn visit(dir: &Path, prefix: &str, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let name = format!("{prefix}{}", entry.file_name().to_str().unwrap());
            if entry.file_type().unwrap().is_dir() {
                visit(&entry.path(), &format!("{name}/"), out);
            } else if name != MANIFEST_NAME {
                out.insert(name, fs::read(entry.path()).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    visit(root, "", &mut out);
    out
}

pub fn to_vecs(dict: BTreeMap<String, air_checkpoint::Bytes>) -> BTreeMap<String, Vec<u8>> {
    dict.into_iter().map(|(k, v)| (k, v.to_vec())).collect()
}

/// A moto S3 server on 127.0.0.1, started once per test binary and killed on exit.
pub struct S3Server {
    pub endpoint: String,
    child: Child,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts (once) a moto server and returns options that reach it. Missing moto is a loud
/// failure, never a silent pass: set `AIR_SKIP_S3_TESTS=1` to skip on purpose.
pub fn s3() -> Option<StorageOptions> {
    if std::env::var_os("AIR_SKIP_S3_TESTS").is_some() {
        eprintln!("!!! AIR_SKIP_S3_TESTS is set: S3 tests are SKIPPED, s3:// is NOT tested !!!");
        return None;
    }
    static SERVER: OnceLock<std::sync::Mutex<S3Server>> = OnceLock::new();
    let server = SERVER.get_or_init(|| std::sync::Mutex::new(start_moto()));
    let endpoint = server.lock().unwrap().endpoint.clone();
    Some(
        StorageOptions::new()
            .with_option("aws_endpoint", endpoint)
            .with_option("aws_access_key_id", "testing")
            .with_option("aws_secret_access_key", "testing")
            .with_option("aws_region", "us-east-1")
            .with_max_retries(2)
            .with_retry_timeout(Duration::from_secs(20)),
    )
}

fn start_moto() -> S3Server {
    let program = std::env::var("AIR_MOTO_SERVER").unwrap_or_else(|_| "moto_server".to_owned());
    let port = free_port();
    // The server lives in a static that is never dropped, so a small shell watchdog stops it
    // as soon as this test process is gone (SIGKILL included): no server outlives the tests.
    let watchdog = r#"prog="$1"; port="$2"; parent="$3"
"$prog" -H 127.0.0.1 -p "$port" >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null' EXIT
while kill -0 "$parent" 2>/dev/null && kill -0 "$server" 2>/dev/null; do sleep 0.5; done"#;
    let child = Command::new("sh")
        .args([
            "-c",
            watchdog,
            "moto-watchdog",
            &program,
            &port.to_string(),
            &std::process::id().to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cannot run sh to start the S3 test server");
    if Command::new(&program)
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_err()
    {
        panic!(
            "cannot start the S3 test server `{program}`: not found. Install it with \
             `pip install 'moto[server]'` (`.ci/run` and scripts/test.sh do), point \
             AIR_MOTO_SERVER at it, or set AIR_SKIP_S3_TESTS=1 to skip the S3 tests on purpose"
        );
    }
    let server = S3Server {
        endpoint: format!("http://127.0.0.1:{port}"),
        child,
    };
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(
            Instant::now() < deadline,
            "moto_server did not start listening on {addr} within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    server
}

/// Creates a bucket with a plain S3 `PUT /bucket` (moto accepts unsigned requests).
pub fn create_bucket(options: &StorageOptions, bucket: &str) {
    let endpoint = options.option("aws_endpoint").unwrap();
    let addr = endpoint.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "PUT /{bucket} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "creating bucket {bucket} failed: {response}"
    );
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
