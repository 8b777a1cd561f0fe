//! Serving a pipeline over HTTP: a [`Codec`] turns a body into its input and its output into
//! the answer, and [`PipelineEndpoint`] routes requests to it.

use std::{sync::Arc, time::Duration};

use air_data::polars::prelude::DataFrame;
use serde::{Serialize, de::DeserializeOwned};
use utoipa::openapi::path::Operation;

use super::{
    error::BoxError,
    handle::{Pipeline, admit},
    node::Data,
};
use crate::{
    ServeConfig,
    adapter::{Adapter, JsonAdapter, RequestError, malformed, records_json},
    deployment::Slot,
    endpoint::{Answer, BLOCKING_PARSE_BYTES, Endpoint},
    error::{Result, ServeError},
    metrics::{DeploymentSample, StepSample},
};

/// How an HTTP body becomes a pipeline's input, and its output the answer (JSON).
pub trait Codec<In, Out>: Send + Sync + 'static {
    /// The input in `body`; an error is answered with its status (400 for malformed JSON, 422
    /// for JSON that does not fit).
    fn decode(&self, body: &[u8]) -> Result<In, RequestError>;
    /// The answer's JSON body.
    fn encode(&self, output: &Out) -> Result<Vec<u8>, BoxError>;
    /// The request body's media type (for the OpenAPI document).
    fn media_type(&self) -> &'static str {
        "application/json"
    }
}

/// JSON in and out through serde: the input type's `Deserialize`, the output's `Serialize`
/// (Ray's `json_resolver` adapter). [`Value`](super::Value) takes any JSON.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json;

impl<In, Out> Codec<In, Out> for Json
where
    In: DeserializeOwned + 'static,
    Out: Serialize + 'static,
{
    fn decode(&self, body: &[u8]) -> Result<In, RequestError> {
        serde_json::from_slice(body).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => RequestError::WrongInput {
                expected: std::any::type_name::<In>().to_owned(),
                reason: e.to_string(),
            },
            _ => malformed(&e, body),
        })
    }

    fn encode(&self, output: &Out) -> Result<Vec<u8>, BoxError> {
        Ok(serde_json::to_vec(output)?)
    }
}

/// The body's bytes as the input (an image, a document), JSON out.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawBytes;

impl<Out: Serialize + 'static> Codec<Vec<u8>, Out> for RawBytes {
    fn decode(&self, body: &[u8]) -> Result<Vec<u8>, RequestError> {
        if body.is_empty() {
            return Err(RequestError::Empty);
        }
        Ok(body.to_vec())
    }

    fn encode(&self, output: &Out) -> Result<Vec<u8>, BoxError> {
        Ok(serde_json::to_vec(output)?)
    }

    fn media_type(&self) -> &'static str {
        "application/octet-stream"
    }
}

/// A table in and out, as predictor deployments take and answer it: the body read by
/// [`JsonAdapter`] (records, columns or an array), the answer a list of records.
#[derive(Debug, Clone, Copy, Default)]
pub struct Frames;

impl Codec<DataFrame, DataFrame> for Frames {
    fn decode(&self, body: &[u8]) -> Result<DataFrame, RequestError> {
        let frame = JsonAdapter.to_frame(body)?;
        if frame.height() == 0 {
            return Err(RequestError::Empty);
        }
        Ok(frame)
    }

    fn encode(&self, output: &DataFrame) -> Result<Vec<u8>, BoxError> {
        Ok(records_json(output))
    }
}

/// A served pipeline.
pub(crate) struct PipelineEndpoint<In, Out> {
    pipeline: Pipeline<In, Out>,
    codec: Arc<dyn Codec<In, Out>>,
}

impl<In: Data, Out: Data> PipelineEndpoint<In, Out> {
    pub(crate) fn new(pipeline: Pipeline<In, Out>, codec: impl Codec<In, Out>) -> Self {
        Self {
            pipeline,
            codec: Arc::new(codec),
        }
    }

    async fn run(&self, body: Vec<u8>) -> Result<Vec<u8>> {
        let _slot = admit(&self.pipeline.runtime)?;
        let input = if body.len() > BLOCKING_PARSE_BYTES {
            let codec = Arc::clone(&self.codec);
            tokio::task::spawn_blocking(move || codec.decode(&body))
                .await
                .map_err(|e| RequestError::Unsupported {
                    reason: format!("parsing failed: {e}"),
                })??
        } else {
            self.codec.decode(&body)?
        };
        let output = self.pipeline.run_async(input).await?;
        self.codec
            .encode(&output)
            .map_err(|source| ServeError::StepFailed {
                pipeline: self.name().to_owned(),
                step: "(encoding the answer)".to_owned(),
                source,
            })
    }
}

impl<In: Data, Out: Data> Endpoint for PipelineEndpoint<In, Out> {
    fn name(&self) -> &str {
        self.pipeline.config().name()
    }

    fn route_prefix(&self) -> &str {
        self.pipeline.config().route_prefix()
    }

    fn max_request_bytes(&self) -> usize {
        self.pipeline.config().max_request_bytes()
    }

    fn receiving(&self) -> Slot<'_> {
        Slot::new(&self.pipeline.runtime.receiving)
    }

    fn answer(&self, body: Vec<u8>) -> Answer<'_> {
        Box::pin(self.run(body))
    }

    fn record(&self, status: u16, elapsed: Duration) {
        self.pipeline.runtime.metrics.request(status, elapsed);
    }

    fn sample(&self) -> DeploymentSample {
        let rt = &self.pipeline.runtime;
        let steps = self.pipeline.steps();
        let replicas: usize = steps
            .iter()
            .map(|s| match s.mode {
                super::ExecutionMode::Replicas { num_replicas } => num_replicas,
                _ => 1,
            })
            .sum();
        let queued: usize = steps.iter().map(|s| s.queued).sum();
        let busy: usize = steps.iter().map(|s| s.busy).sum();
        DeploymentSample {
            name: self.name().to_owned(),
            metrics: rt.metrics.clone(),
            // In the order of `metrics::GAUGES`.
            gauges: [
                queued,
                self.pipeline.in_flight(),
                rt.receiving.load(std::sync::atomic::Ordering::Acquire),
                busy,
                replicas,
            ]
            .map(|v| v as i64),
            steps: steps
                .iter()
                .zip(&rt.step_metrics)
                .map(|(s, m)| StepSample {
                    name: s.name.clone(),
                    metrics: m.clone(),
                    queued: s.queued as i64,
                })
                .collect(),
        }
    }

    fn operation(&self, config: &ServeConfig) -> Operation {
        let c = self.pipeline.config();
        let steps: Vec<String> = self.pipeline.steps().into_iter().map(|s| s.name).collect();
        crate::openapi::pipeline_operation(
            crate::openapi::PipelineDoc {
                name: c.name(),
                steps: &steps,
                media_type: self.codec.media_type(),
                input_type: std::any::type_name::<In>(),
                max_in_flight: c.max_concurrent_queries(),
                max_request_bytes: c.max_request_bytes(),
            },
            config,
        )
    }

    fn stop(&self) {
        // The pipeline stops with its last handle: the caller may still hold one.
    }
}
