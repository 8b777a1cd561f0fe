//! What the server routes a `POST` to: a predictor deployment or a pipeline, seen alike (name,
//! route, limits, answering a body, metrics, OpenAPI).

use std::{future::Future, pin::Pin, time::Duration};

use utoipa::openapi::path::Operation;

use crate::{
    ServeConfig,
    deployment::{DeploymentHandle, Input, Slot},
    error::Result,
    metrics::DeploymentSample,
};

/// A future answering one request.
pub(crate) type Answer<'a> = Pin<Box<dyn Future<Output = Result<Vec<u8>>> + Send + 'a>>;

/// Bodies larger than this are parsed off the async executor.
pub(crate) const BLOCKING_PARSE_BYTES: usize = 64 << 10;

/// One routed deployment or pipeline.
pub(crate) trait Endpoint: Send + Sync + 'static {
    fn name(&self) -> &str;
    fn route_prefix(&self) -> &str;
    fn max_request_bytes(&self) -> usize;
    /// Counts a request as receiving its body until the guard drops.
    fn receiving(&self) -> Slot<'_>;
    /// Takes an in-flight slot (or 503), turns `body` into the input, runs it, and encodes
    /// the answer.
    fn answer(&self, body: Vec<u8>) -> Answer<'_>;
    /// A request answered with `status` after `elapsed`.
    fn record(&self, status: u16, elapsed: Duration);
    fn sample(&self) -> DeploymentSample;
    fn operation(&self, config: &ServeConfig) -> Operation;
    /// Stops what the server started (a deployment's replicas; a pipeline stops with its
    /// last handle).
    fn stop(&self);
}

impl Endpoint for DeploymentHandle {
    fn name(&self) -> &str {
        self.config().name()
    }

    fn route_prefix(&self) -> &str {
        self.config().route_prefix()
    }

    fn max_request_bytes(&self) -> usize {
        self.config().max_request_bytes()
    }

    fn receiving(&self) -> Slot<'_> {
        DeploymentHandle::receiving(self)
    }

    fn answer(&self, body: Vec<u8>) -> Answer<'_> {
        Box::pin(async move {
            let _slot = self.admit()?;
            if body.len() <= BLOCKING_PARSE_BYTES
                && let Some(input) = self.matrix_input(&body)
            {
                return Ok(self.call(input).await?.to_json());
            }
            let frame = if body.len() > BLOCKING_PARSE_BYTES {
                let h = self.clone();
                tokio::task::spawn_blocking(move || h.adapter().to_frame(&body))
                    .await
                    .map_err(|e| crate::RequestError::Unsupported {
                        reason: format!("parsing failed: {e}"),
                    })??
            } else {
                self.adapter().to_frame(&body)?
            };
            Ok(self.call(Input::Frame(frame)).await?.to_json())
        })
    }

    fn record(&self, status: u16, elapsed: Duration) {
        self.metrics().request(status, elapsed);
    }

    fn sample(&self) -> DeploymentSample {
        self.metrics_sample()
    }

    fn operation(&self, config: &ServeConfig) -> Operation {
        crate::openapi::predict_operation(self, config).build()
    }

    fn stop(&self) {
        self.shutdown();
    }
}
