//! MLflow tracking over the tracking server's REST API (Ray's `MLflowLoggerCallback`).

mod artifacts;
mod callback;
mod client;
mod config;
mod worker;

pub use callback::{Delivery, MlflowCallback};
pub use config::{Artifacts, EXPERIMENT_NAME_VAR, MlflowConfig, TRACKING_URI_VAR};
