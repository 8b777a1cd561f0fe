//! # air-serve
//!
//! Bulk and online inference from any checkpoint (Ray AIR's `BatchPredictor` and
//! `PredictorDeployment`):
//!
//! - [`BatchPredictor`] streams a [`Dataset`](air_data::Dataset) through a predictor in three
//!   stages (read, preprocess, score) with bounded queues, and returns the predictions in input
//!   order.
//! - [`PredictorDeployment`] serves a predictor over HTTP with a [`Server`] (axum on its own
//!   tokio runtime, HTTP/1.1 only): replicas on dedicated threads, dynamic batching, a 503 past
//!   `max_concurrent_queries`, 413/408 limits, header, body and idle timeouts, a cap on open
//!   connections (503 at once past it), `reconfigure` to a new checkpoint without failed
//!   requests, graceful shutdown, `/-/healthz`, Prometheus `/-/metrics`, `/openapi.json`, and an
//!   in-process [`DeploymentHandle`]. Every bad request gets a 4xx with a JSON body
//!   (`{"error", "message", "status"}`) naming what was wrong; the server stays up.
//!
//! Predictors are built by a [`PredictorFactory`] — any `Fn(&Checkpoint) -> Result<P>`, such as
//! `GbdtPredictor::from_checkpoint`.
//!
//! ```
//! use std::io::{Read, Write};
//! use air_checkpoint::Checkpoint;
//! use air_data::polars::prelude::*;
//! use air_serve::{DeploymentConfig, PredictorDeployment, ServeConfig, Server};
//! use air_train::Predictor;
//!
//! /// Ray's serve test model: adds 2.
//! #[derive(Debug)]
//! struct Adder;
//! impl Predictor for Adder {
//!     fn predict(&self, batch: DataFrame) -> air_train::Result<DataFrame> {
//!         let x = batch.column("__value__").unwrap().as_materialized_series() + 2;
//!         Ok(DataFrame::new(batch.height(), vec![x.with_name("predictions".into()).into()]).unwrap())
//!     }
//! }
//!
//! let deployment = PredictorDeployment::new(
//!     DeploymentConfig::new("adder").with_route_prefix("/"),
//!     Checkpoint::new(),
//!     |_: &Checkpoint| Ok(Adder),
//! );
//! let server = Server::new(ServeConfig::new().with_port(0)).with_deployment(deployment)?.start()?;
//!
//! // A bare HTTP/1.1 request, to show the wire format.
//! let body = r#"{"array": [40]}"#;
//! let mut stream = std::net::TcpStream::connect(server.addr())?;
//! write!(stream, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())?;
//! let mut answer = String::new();
//! stream.read_to_string(&mut answer)?;
//! assert!(answer.ends_with(r#"[{"predictions":42}]"#), "{answer}");
//!
//! server.shutdown()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod adapter;
mod batch;
mod connection;
mod deployment;
mod endpoint;
mod error;
mod factory;
mod matrix;
mod metrics;
mod openapi;
pub mod pipeline;
mod queue;
mod replicas;
mod server;

pub use adapter::{
    Adapter, JsonAdapter, RequestError, VALUE_COLUMN, frame_from_json, records_json,
};
pub use batch::{BatchPredictor, PredictOptions, PredictionStream};
pub use deployment::{DeploymentConfig, DeploymentHandle, DeploymentStats, PredictorDeployment};
pub use error::{Result, ServeError};
pub use factory::{OnDevice, PredictorFactory, on_device};
pub use server::{ServeConfig, Server, ServerHandle};

/// The training crate this one builds on, re-exported so users name one version of it.
pub use air_train;

pub(crate) use air_train::panic_message;
