//! Per-deployment counters and histograms, written in the Prometheus text format.

use std::{
    fmt::Write,
    sync::atomic::{AtomicU64, Ordering::Relaxed},
    time::Duration,
};

/// Latency bucket bounds, seconds.
const LATENCY_BOUNDS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Batch size bucket bounds, requests.
const BATCH_BOUNDS: [f64; 10] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];
/// The status codes counted one by one; others go under "other".
const CODES: [u16; 9] = [200, 400, 404, 408, 413, 422, 500, 503, 0];

#[derive(Debug)]
struct Histogram<const N: usize> {
    bounds: &'static [f64; N],
    buckets: [AtomicU64; N],
    count: AtomicU64,
    /// Sum in millionths of the unit, to stay atomic.
    sum_micro: AtomicU64,
}

impl<const N: usize> Histogram<N> {
    fn new(bounds: &'static [f64; N]) -> Self {
        Self {
            bounds,
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum_micro: AtomicU64::new(0),
        }
    }

    fn observe(&self, v: f64) {
        if let Some(i) = self.bounds.iter().position(|b| v <= *b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_micro.fetch_add((v * 1e6) as u64, Relaxed);
    }

    fn write(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (b, n) in self.bounds.iter().zip(&self.buckets) {
            cumulative += n.load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{b}\"}} {cumulative}");
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
        let sum = self.sum_micro.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
}

/// One deployment's numbers.
#[derive(Debug)]
pub(crate) struct Metrics {
    requests: [AtomicU64; CODES.len()],
    latency: Histogram<{ LATENCY_BOUNDS.len() }>,
    batch_size: Histogram<{ BATCH_BOUNDS.len() }>,
    rows: AtomicU64,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        Self {
            requests: std::array::from_fn(|_| AtomicU64::new(0)),
            latency: Histogram::new(&LATENCY_BOUNDS),
            batch_size: Histogram::new(&BATCH_BOUNDS),
            rows: AtomicU64::new(0),
        }
    }

    /// A request answered with `status` after `elapsed`.
    pub(crate) fn request(&self, status: u16, elapsed: Duration) {
        let i = CODES
            .iter()
            .position(|c| *c == status)
            .unwrap_or(CODES.len() - 1);
        self.requests[i].fetch_add(1, Relaxed);
        self.latency.observe(elapsed.as_secs_f64());
    }

    /// A batch of `requests` requests and `rows` rows went to a replica.
    pub(crate) fn batch(&self, requests: usize, rows: usize) {
        self.batch_size.observe(requests as f64);
        self.rows.fetch_add(rows as u64, Relaxed);
    }

    /// Requests answered with `status` so far.
    pub(crate) fn requests_with(&self, status: u16) -> u64 {
        CODES
            .iter()
            .position(|c| *c == status)
            .map_or(0, |i| self.requests[i].load(Relaxed))
    }

    /// Batches predicted so far.
    pub(crate) fn batches(&self) -> u64 {
        self.batch_size.count.load(Relaxed)
    }

    /// The Prometheus text of this deployment; `gauges` are (name, help, value).
    pub(crate) fn write(&self, out: &mut String, deployment: &str, gauges: &[(&str, &str, f64)]) {
        let labels = format!("deployment=\"{}\"", escape(deployment));
        for (code, n) in CODES.iter().zip(&self.requests) {
            let code = if *code == 0 {
                "other".to_owned()
            } else {
                code.to_string()
            };
            let _ = writeln!(
                out,
                "air_serve_requests_total{{{labels},code=\"{code}\"}} {}",
                n.load(Relaxed)
            );
        }
        self.latency
            .write(out, "air_serve_request_latency_seconds", &labels);
        self.batch_size.write(out, "air_serve_batch_size", &labels);
        let _ = writeln!(
            out,
            "air_serve_rows_total{{{labels}}} {}",
            self.rows.load(Relaxed)
        );
        for (name, _, v) in gauges {
            let _ = writeln!(out, "air_serve_{name}{{{labels}}} {v}");
        }
    }
}

/// The `# HELP`/`# TYPE` header lines, written once for all deployments.
pub(crate) fn header(out: &mut String, gauges: &[(&str, &str)]) {
    let families: [(&str, &str, &str); 4] = [
        (
            "air_serve_requests_total",
            "counter",
            "Requests answered, by HTTP status code.",
        ),
        (
            "air_serve_request_latency_seconds",
            "histogram",
            "Time from request arrival to answer.",
        ),
        (
            "air_serve_batch_size",
            "histogram",
            "Requests merged into one predictor call.",
        ),
        ("air_serve_rows_total", "counter", "Rows predicted."),
    ];
    for (name, kind, help) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }
    for (name, help) in gauges {
        let _ = writeln!(
            out,
            "# HELP air_serve_{name} {help}\n# TYPE air_serve_{name} gauge"
        );
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative() {
        let m = Metrics::new();
        m.request(200, Duration::from_micros(300));
        m.request(200, Duration::from_millis(3));
        m.request(503, Duration::from_micros(10));
        m.batch(3, 30);
        let mut out = String::new();
        m.write(&mut out, "d", &[("queue_depth", "", 2.0)]);
        assert!(out.contains("air_serve_requests_total{deployment=\"d\",code=\"200\"} 2"));
        assert!(out.contains("air_serve_requests_total{deployment=\"d\",code=\"503\"} 1"));
        assert!(out.contains(
            "air_serve_request_latency_seconds_bucket{deployment=\"d\",le=\"0.0005\"} 2"
        ));
        assert!(
            out.contains(
                "air_serve_request_latency_seconds_bucket{deployment=\"d\",le=\"0.005\"} 3"
            )
        );
        assert!(out.contains("air_serve_batch_size_bucket{deployment=\"d\",le=\"4\"} 1"));
        assert!(out.contains("air_serve_rows_total{deployment=\"d\"} 30"));
        assert!(out.contains("air_serve_queue_depth{deployment=\"d\"} 2"));
    }
}
