//! `air serve`: one checkpoint from the command line, or the deployments and pipelines of a
//! config file, served until SIGINT or SIGTERM, then drained.

use std::io::Write;

use air_serve::{
    DeploymentConfig, PredictorDeployment, ServeConfig, Server, ServerHandle, pipeline::Frames,
};
use signal_hook::{
    consts::signal::{SIGINT, SIGTERM},
    iterator::Signals,
};

use crate::{
    ensemble,
    error::{CliError, Result},
    registry::Registry,
    serve_config::{DeploymentSpec, HttpOptions, ServeFile},
};

/// Starts every deployment and pipeline of `file` on one server. Each checkpoint is opened and
/// its predictor built before the server listens, so a missing checkpoint or an unknown kind
/// fails here.
pub(crate) fn start(registry: &Registry, file: &ServeFile) -> Result<ServerHandle> {
    let mut server = Server::new(serve_config(&file.http_options));
    for spec in &file.deployments.0 {
        server = server.with_deployment(deployment(registry, spec)?)?;
    }
    for spec in &file.pipelines.0 {
        server = server.with_pipeline(&ensemble::deploy(registry, spec)?, Frames)?;
    }
    Ok(server.start()?)
}

fn serve_config(http: &HttpOptions) -> ServeConfig {
    let mut c = ServeConfig::new().with_host(http.host());
    if let Some(port) = http.port {
        c = c.with_port(port);
    }
    if let Some(n) = http.http_threads {
        c = c.with_http_threads(n);
    }
    if let Some(s) = http.shutdown_timeout_s {
        c = c.with_shutdown_timeout(s.0);
    }
    if let Some(s) = http.header_timeout_s {
        c = c.with_header_timeout(s.0);
    }
    if let Some(s) = http.body_timeout_s {
        c = c.with_body_timeout(s.0);
    }
    if let Some(s) = http.idle_timeout_s {
        c = c.with_idle_timeout(s.0);
    }
    if let Some(n) = http.max_connections {
        c = c.with_max_connections(n);
    }
    c
}

fn deployment(registry: &Registry, spec: &DeploymentSpec) -> Result<PredictorDeployment> {
    let location = &spec.checkpoint;
    let (ckpt, factory) = registry.open(location, spec.kind.as_deref())?;
    let mut config = DeploymentConfig::new(&spec.name.0)
        .with_route_prefix(&spec.route())
        .with_num_replicas(spec.num_replicas)
        .with_num_gpus_per_replica(spec.num_gpus_per_replica);
    if let Some(max) = spec.max_batch_size {
        let wait = spec
            .batch_wait_timeout_s
            .map_or(std::time::Duration::from_millis(10), |s| s.0);
        config = config.with_batching(max, wait);
    }
    if let Some(n) = spec.max_concurrent_queries {
        config = config.with_max_concurrent_queries(n);
    }
    if let Some(s) = spec.request_timeout_s {
        config = config.with_request_timeout(Some(s.0));
    }
    if let Some(n) = spec.max_request_bytes {
        config = config.with_max_request_bytes(n);
    }
    if let Some(columns) = &spec.input_columns {
        config = config.with_input_columns(columns);
    }
    if let Some(s) = spec.run_on_caller_below_s {
        // Zero: no model is cheaper than that, so every request goes to a replica's thread.
        config = config.with_run_on_caller_below(Some(s.0));
    }
    Ok(PredictorDeployment::new(config, ckpt, factory))
}

/// Serves `file` until SIGINT or SIGTERM, then stops accepting connections and answers the
/// requests in flight (up to the shutdown timeout) before returning.
pub(crate) fn run(registry: &Registry, file: &ServeFile, out: &mut impl Write) -> Result<()> {
    // Registered before the server starts, so a signal that arrives while it starts is not
    // lost (nor does it kill the process the default way).
    let mut signals = Signals::new([SIGINT, SIGTERM]).map_err(|source| CliError::Io {
        action: "installing the SIGINT/SIGTERM handler of",
        path: "air serve".to_owned(),
        source,
    })?;
    let server = start(registry, file)?;
    let url = server.url();
    let announce = |out: &mut dyn Write| -> std::io::Result<()> {
        writeln!(out, "listening on {url}")?;
        for d in &file.deployments.0 {
            writeln!(out, "  {} at {url}{}", d.name.0, d.route())?;
        }
        for p in &file.pipelines.0 {
            writeln!(out, "  {} (pipeline) at {url}{}", p.name.0, p.route())?;
        }
        out.flush()
    };
    announce(out).map_err(|source| CliError::Io {
        action: "writing to",
        path: "stdout".to_owned(),
        source,
    })?;
    let signal = signals.forever().next();
    tracing::info!(?signal, "draining in-flight requests, then stopping");
    server.shutdown()?;
    Ok(())
}
