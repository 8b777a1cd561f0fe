//! Model composition: a pipeline is a DAG of steps (Ray Serve's Pipeline API).
//!
//! A [`Step`] is a function or a stateful [`Model`] with its [`ExecutionMode`]; applying it
//! with [`Step::on`] to [`INPUT`], to another node, to a tuple of them or to a `Vec` of nodes
//! makes a [`Node`]; [`Node::deploy`] builds every step's instances and returns a [`Pipeline`]
//! to [`call`](Pipeline::call) (or [`call_async`](Pipeline::call_async)), and to serve over
//! HTTP with [`Server::with_pipeline`](crate::Server::with_pipeline).
//!
//! - Types are checked by the compiler: a step taking `I` accepts only a node yielding `I`.
//!   [`Value`] (JSON or a polars `DataFrame`) is the one dynamic type, for fan-in of
//!   different kinds; [`GraphBuilder`] wires `Value` steps by name (graphs chosen at run
//!   time), where unknown names and cycles are errors.
//! - Each node runs once per call, however many steps consume it (Ray ran it once per
//!   consumer); nodes whose inputs are ready run at once, so independent branches on `Tasks` or
//!   `Replicas` run concurrently.
//! - A failing or panicking step fails that call with the step's name and message; the
//!   pipeline goes on serving.
//! - Constructors run at deploy time, once per replica; dropping the last handle stops and
//!   joins the replicas.
//!
//! ```
//! use air_serve::pipeline::{ExecutionMode, INPUT, Model, Step, StepError};
//!
//! /// Ray's `Adder` step: a class with an init argument.
//! struct Adder(i64);
//! impl Model<i64> for Adder {
//!     type Output = i64;
//!     fn call(&self, x: i64) -> Result<i64, StepError> {
//!         Ok(x + self.0)
//!     }
//! }
//!
//! let adder = Step::model("adder", || Adder(2))
//!     .with_mode(ExecutionMode::Replicas { num_replicas: 2 });
//! let square = Step::new("square", |x: i64| x * x);
//! let both = Step::new("both", |(a, b): (i64, i64)| format!("{a}|{b}"));
//! let added = adder.on(INPUT);
//! let pipeline = both.on((added.clone(), square.on(added))).deploy()?;
//! assert_eq!(pipeline.call(2)?, "4|16");
//! # Ok::<(), air_serve::ServeError>(())
//! ```

mod by_name;
mod call;
mod config;
mod error;
mod graph;
mod handle;
mod http;
mod node;
mod predictor;
mod runtime;
mod step;
mod value;

pub use by_name::{GraphBuilder, INPUT_NAME};
pub use config::PipelineConfig;
pub use error::{BoxError, PipelineError, StepError};
pub use handle::{Pipeline, StepStats};
pub(crate) use http::PipelineEndpoint;
pub use http::{Codec, Frames, Json, RawBytes};
pub use node::{Arg, Args, Data, Dep, INPUT, Input, Node};
pub use step::{ExecutionMode, Model, Step, StepConfig};
pub use value::Value;
