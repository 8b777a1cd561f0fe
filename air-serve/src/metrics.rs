//! Per-deployment counters and histograms (`prometheus-client`'s), and the server's
//! `/-/metrics` text: at each scrape one collector encodes every deployment's values and the
//! connection counts, each family described once, in the OpenMetrics text format that
//! Prometheus scrapes.

use std::{fmt, time::Duration};

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric, text::encode},
    metrics::{
        MetricType,
        counter::{ConstCounter, Counter},
        gauge::ConstGauge,
        histogram::Histogram,
    },
    registry::Registry,
};

/// Latency bucket bounds, seconds.
const LATENCY_BOUNDS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Batch size bucket bounds, requests.
const BATCH_BOUNDS: [f64; 10] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];
/// The status codes counted one by one; others go under "other" (the 0).
const CODES: [u16; 9] = [200, 400, 404, 408, 413, 422, 500, 503, 0];

/// One deployment's numbers. Clones share the values (each metric is an `Arc` inside).
#[derive(Debug, Clone)]
pub(crate) struct Metrics {
    requests: [Counter; CODES.len()],
    latency: Histogram,
    batch_size: Histogram,
    rows: Counter,
    /// The batch-size histogram's count, which the histogram does not expose.
    batches: Counter,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        Self {
            requests: std::array::from_fn(|_| Counter::default()),
            latency: Histogram::new(LATENCY_BOUNDS),
            batch_size: Histogram::new(BATCH_BOUNDS),
            rows: Counter::default(),
            batches: Counter::default(),
        }
    }

    /// A request answered with `status` after `elapsed`.
    pub(crate) fn request(&self, status: u16, elapsed: Duration) {
        let i = CODES
            .iter()
            .position(|c| *c == status)
            .unwrap_or(CODES.len() - 1);
        self.requests[i].inc();
        self.latency.observe(elapsed.as_secs_f64());
    }

    /// A batch of `requests` requests and `rows` rows went to a replica.
    pub(crate) fn batch(&self, requests: usize, rows: usize) {
        self.batch_size.observe(requests as f64);
        self.rows.inc_by(rows as u64);
        self.batches.inc();
    }

    /// Requests answered with `status` so far.
    pub(crate) fn requests_with(&self, status: u16) -> u64 {
        CODES
            .iter()
            .position(|c| *c == status)
            .map_or(0, |i| self.requests[i].get())
    }

    /// Batches predicted so far.
    pub(crate) fn batches(&self) -> u64 {
        self.batches.get()
    }
}

/// One pipeline step's numbers. Clones share the values.
#[derive(Debug, Clone)]
pub(crate) struct StepMetrics {
    calls: Counter,
    errors: Counter,
    latency: Histogram,
}

impl StepMetrics {
    pub(crate) fn new() -> Self {
        Self {
            calls: Counter::default(),
            errors: Counter::default(),
            latency: Histogram::new(LATENCY_BOUNDS),
        }
    }

    /// A run of `calls` calls (a batch, or one), `errors` of which failed, took `elapsed`.
    pub(crate) fn record(&self, calls: usize, errors: usize, elapsed: Duration) {
        self.calls.inc_by(calls as u64);
        self.errors.inc_by(errors as u64);
        self.latency.observe(elapsed.as_secs_f64());
    }

    /// Calls so far.
    pub(crate) fn calls(&self) -> u64 {
        self.calls.get()
    }

    /// Failed calls so far.
    pub(crate) fn errors(&self) -> u64 {
        self.errors.get()
    }
}

/// One step of a pipeline as a scrape sees it.
#[derive(Debug)]
pub(crate) struct StepSample {
    pub(crate) name: String,
    pub(crate) metrics: StepMetrics,
    pub(crate) queued: i64,
}

/// The gauges of a deployment at a scrape: (name, help).
pub(crate) const GAUGES: [(&str, &str); 5] = [
    ("air_serve_queue_depth", "Requests waiting for a replica."),
    ("air_serve_in_flight", "Requests being handled."),
    (
        "air_serve_receiving",
        "Requests whose body is still arriving.",
    ),
    ("air_serve_busy_replicas", "Replicas predicting now."),
    ("air_serve_replicas", "Replicas of the deployment."),
];

/// One deployment as a scrape sees it: its name, its metrics, and its [`GAUGES`]' values.
#[derive(Debug)]
pub(crate) struct DeploymentSample {
    pub(crate) name: String,
    pub(crate) metrics: Metrics,
    pub(crate) gauges: [i64; GAUGES.len()],
    /// A pipeline's steps (none for a predictor deployment).
    pub(crate) steps: Vec<StepSample>,
}

/// The server's connection counts at a scrape.
#[derive(Debug)]
pub(crate) struct ConnectionSample {
    pub(crate) accepted: u64,
    pub(crate) refused: u64,
    pub(crate) header_timeouts: u64,
    pub(crate) idle_closed: u64,
    pub(crate) open: i64,
}

/// What one scrape encodes.
#[derive(Debug)]
struct Scrape {
    deployments: Vec<DeploymentSample>,
    connections: ConnectionSample,
}

impl Scrape {
    /// One family with one labelled metric per deployment.
    fn per_deployment<M: EncodeMetric>(
        &self,
        encoder: &mut DescriptorEncoder<'_>,
        (name, help, kind): (&str, &str, MetricType),
        metric: impl Fn(&DeploymentSample) -> M,
    ) -> fmt::Result {
        let mut family = encoder.encode_descriptor(name, help, None, kind)?;
        for d in &self.deployments {
            let labels = [("deployment", d.name.as_str())];
            metric(d).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

impl Scrape {
    /// The pipeline step families: one labelled metric per (pipeline, step).
    fn steps(&self, encoder: &mut DescriptorEncoder<'_>) -> fmt::Result {
        type Pick = fn(&StepSample) -> Box<dyn EncodeMetric>;
        let families: [(&str, &str, MetricType, Pick); 4] = [
            (
                "air_serve_step_calls",
                "Calls of a pipeline step (a batch of n counts n).",
                MetricType::Counter,
                |s| Box::new(s.metrics.calls.clone()),
            ),
            (
                "air_serve_step_errors",
                "Calls of a pipeline step that failed or panicked.",
                MetricType::Counter,
                |s| Box::new(s.metrics.errors.clone()),
            ),
            (
                "air_serve_step_latency_seconds",
                "Time a pipeline step took per run (a batch is one run).",
                MetricType::Histogram,
                |s| Box::new(s.metrics.latency.clone()),
            ),
            (
                "air_serve_step_queue_depth",
                "Calls waiting for a pipeline step's workers.",
                MetricType::Gauge,
                |s| Box::new(ConstGauge::new(s.queued)),
            ),
        ];
        if self.deployments.iter().all(|d| d.steps.is_empty()) {
            return Ok(());
        }
        for (name, help, kind, pick) in families {
            let mut family = encoder.encode_descriptor(name, help, None, kind)?;
            for d in &self.deployments {
                for s in &d.steps {
                    let labels = [("deployment", d.name.as_str()), ("step", s.name.as_str())];
                    pick(s).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        Ok(())
    }
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let mut requests = encoder.encode_descriptor(
            "air_serve_requests",
            "Requests answered, by HTTP status code.",
            None,
            MetricType::Counter,
        )?;
        for d in &self.deployments {
            for (code, counter) in CODES.iter().zip(&d.metrics.requests) {
                let code = match code {
                    0 => "other".to_owned(),
                    c => c.to_string(),
                };
                let labels = [("deployment", d.name.as_str()), ("code", code.as_str())];
                counter.encode(requests.encode_family(&labels)?)?;
            }
        }
        let latency = (
            "air_serve_request_latency_seconds",
            "Time from request arrival to answer.",
            MetricType::Histogram,
        );
        self.per_deployment(&mut encoder, latency, |d| d.metrics.latency.clone())?;
        let batch = (
            "air_serve_batch_size",
            "Requests merged into one predictor call.",
            MetricType::Histogram,
        );
        self.per_deployment(&mut encoder, batch, |d| d.metrics.batch_size.clone())?;
        let rows = ("air_serve_rows", "Rows predicted.", MetricType::Counter);
        self.per_deployment(&mut encoder, rows, |d| d.metrics.rows.clone())?;
        for (i, (name, help)) in GAUGES.iter().enumerate() {
            let gauge = (*name, *help, MetricType::Gauge);
            self.per_deployment(&mut encoder, gauge, |d| ConstGauge::new(d.gauges[i]))?;
        }
        self.steps(&mut encoder)?;
        let c = &self.connections;
        for (name, help, v) in [
            (
                "air_serve_connections_accepted",
                "Connections accepted.",
                c.accepted,
            ),
            (
                "air_serve_connections_refused",
                "Connections answered 503 at once because max_connections were open.",
                c.refused,
            ),
            (
                "air_serve_connections_header_timeouts",
                "Connections closed because a request's headers did not arrive in time.",
                c.header_timeouts,
            ),
            (
                "air_serve_connections_idle_closed",
                "Keep-alive connections closed after the idle timeout.",
                c.idle_closed,
            ),
        ] {
            ConstCounter::new(v).encode(encoder.encode_descriptor(
                name,
                help,
                None,
                MetricType::Counter,
            )?)?;
        }
        ConstGauge::new(c.open).encode(encoder.encode_descriptor(
            "air_serve_connections_open",
            "Connections open now.",
            None,
            MetricType::Gauge,
        )?)
    }
}

/// The `/-/metrics` text of these deployments and connections.
pub(crate) fn render(deployments: Vec<DeploymentSample>, connections: ConnectionSample) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Scrape {
        deployments,
        connections,
    }));
    let mut out = String::new();
    encode(&mut out, &registry).expect("writing to a String cannot fail");
    out
}

/// The content type of [`render`]'s text.
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_families_described_once() {
        let m = Metrics::new();
        m.request(200, Duration::from_micros(300));
        m.request(200, Duration::from_millis(3));
        m.request(503, Duration::from_micros(10));
        m.batch(3, 30);
        let sample = |name: &str| DeploymentSample {
            name: name.to_owned(),
            metrics: m.clone(),
            gauges: [2, 0, 0, 0, 1],
            steps: Vec::new(),
        };
        let connections = ConnectionSample {
            accepted: 4,
            refused: 1,
            header_timeouts: 0,
            idle_closed: 0,
            open: 3,
        };
        let out = render(vec![sample("d"), sample("e\"x")], connections);
        for line in [
            "air_serve_requests_total{deployment=\"d\",code=\"200\"} 2",
            "air_serve_requests_total{deployment=\"d\",code=\"503\"} 1",
            "air_serve_request_latency_seconds_bucket{le=\"0.0005\",deployment=\"d\"} 2",
            "air_serve_request_latency_seconds_bucket{le=\"0.005\",deployment=\"d\"} 3",
            "air_serve_batch_size_bucket{le=\"4.0\",deployment=\"d\"} 1",
            "air_serve_rows_total{deployment=\"d\"} 30",
            "air_serve_queue_depth{deployment=\"d\"} 2",
            "air_serve_connections_refused_total 1",
            "air_serve_connections_open 3",
            // Label values are escaped.
            "air_serve_rows_total{deployment=\"e\\\"x\"} 30",
        ] {
            assert!(out.contains(line), "{line} not in\n{out}");
        }
        assert_eq!(
            out.matches("# TYPE air_serve_request_latency_seconds histogram")
                .count(),
            1,
            "{out}"
        );
        assert!(out.ends_with("# EOF\n"));
    }
}
