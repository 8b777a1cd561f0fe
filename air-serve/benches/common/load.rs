//! The load generator of the serving benchmarks: closed-loop keep-alive HTTP/1.1 clients (one
//! thread each) at peak, or paced at a fixed rate for latency percentiles.

#![allow(dead_code, unreachable_pub)] // each benchmark takes its own part

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

/// A `POST path` of a JSON `body`, as bytes on the wire.
pub fn post_request(path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// One keep-alive HTTP/1.1 connection (blocking: each client connection is a thread, paced
/// with `thread::sleep`, whose ~60 µs resolution — unlike tokio's 1 ms timer — does not bunch
/// requests).
pub struct Conn {
    stream: TcpStream,
    request: Arc<Vec<u8>>,
    buf: Vec<u8>,
}

impl Conn {
    pub fn open(addr: SocketAddr, request: Arc<Vec<u8>>) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            request,
            buf: Vec::with_capacity(4096),
        })
    }

    /// Sends the request and reads the whole answer; returns the status.
    pub fn call(&mut self) -> anyhow::Result<u16> {
        self.stream.write_all(&self.request)?;
        self.buf.clear();
        loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let head = std::str::from_utf8(&self.buf[..end])?;
                let status: u16 = head
                    .split_whitespace()
                    .nth(1)
                    .context("a status")?
                    .parse()?;
                let header = |name: &str| {
                    head.lines().find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
                    })
                };
                if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
                    // Uvicorn (Ray Serve's proxy) answers in chunks: read to the last one.
                    while find(&self.buf[end..], b"\r\n0\r\n\r\n").is_none() {
                        self.read_more()?;
                    }
                    return Ok(status);
                }
                let length: usize = header("content-length")
                    .context("a content-length or chunked encoding")?
                    .parse()?;
                while self.buf.len() < end + 4 + length {
                    self.read_more()?;
                }
                return Ok(status);
            }
            self.read_more()?;
        }
    }

    fn read_more(&mut self) -> anyhow::Result<()> {
        let mut chunk = [0u8; 4096];
        let n = self.stream.read(&mut chunk)?;
        if n == 0 {
            bail!("the server closed the connection");
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Latencies of one run, and how many answers were not 200.
pub struct Run {
    pub latencies: Vec<Duration>,
    pub errors: usize,
    pub seconds: f64,
}

impl Run {
    pub fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.seconds
    }
    pub fn percentile(&mut self, q: f64) -> Duration {
        self.latencies.sort_unstable();
        let i = ((self.latencies.len() as f64 * q) as usize).min(self.latencies.len() - 1);
        self.latencies[i]
    }
}

/// `conns` connections for `seconds`; each sends one request every `conns / rate` seconds
/// (`rate = None`: as fast as answers come back).
pub fn load(
    addr: SocketAddr,
    request: &Arc<Vec<u8>>,
    conns: usize,
    seconds: f64,
    rate: Option<f64>,
) -> anyhow::Result<Run> {
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(seconds);
    let interval = rate.map(|r| Duration::from_secs_f64(conns as f64 / r));
    let threads: Vec<_> = (0..conns)
        .map(|c| {
            let request = Arc::clone(request);
            std::thread::spawn(move || {
                let mut conn = Conn::open(addr, request)?;
                let mut latencies = Vec::new();
                let mut errors = 0;
                // Spread the connections' schedules over one interval.
                let mut next =
                    start + interval.map_or(Duration::ZERO, |i| i * c as u32 / conns as u32);
                loop {
                    let now = Instant::now();
                    if interval.is_some() && next > now {
                        std::thread::sleep(next - now);
                    }
                    // With a schedule, latency counts from the scheduled time: a request the
                    // server made wait (its previous answer came late) is not hidden.
                    let sent = if interval.is_some() {
                        next
                    } else {
                        Instant::now()
                    };
                    if sent >= end {
                        break;
                    }
                    let status = conn.call()?;
                    latencies.push(sent.elapsed());
                    errors += usize::from(status != 200);
                    if let Some(i) = interval {
                        next += i;
                    }
                }
                anyhow::Ok((latencies, errors))
            })
        })
        .collect();
    let mut run = Run {
        latencies: Vec::new(),
        errors: 0,
        seconds,
    };
    for t in threads {
        let (l, e) = t
            .join()
            .map_err(|_| anyhow::anyhow!("a client thread panicked"))??;
        run.latencies.extend(l);
        run.errors += e;
    }
    Ok(run)
}

pub fn wrk_peak(addr: SocketAddr, body: &str, conns: usize, seconds: u64) -> Option<f64> {
    let script = std::env::temp_dir().join("air_serve_bench.lua");
    let lua = format!(
        "wrk.method = \"POST\"\nwrk.body = {}\nwrk.headers[\"Content-Type\"] = \"application/json\"\n",
        serde_json::to_string(body).ok()?
    );
    std::fs::write(&script, lua).ok()?;
    let out = std::process::Command::new("wrk")
        .args(["-t2", &format!("-c{conns}"), &format!("-d{seconds}s"), "-s"])
        .arg(&script)
        .arg(format!("http://{addr}/"))
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
}
