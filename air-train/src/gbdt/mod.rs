//! Gradient-boosted trees with XGBoost's model and semantics.
//!
//! Today: the model ([`GbdtModel`]: trees in XGBoost's array layout, a versioned serde form),
//! prediction, and reading XGBoost's own JSON model files, checked against XGBoost's
//! predictions. The histogram booster and `GbdtTrainer` build on this model.

mod model;
mod xgboost_json;

pub use model::{GBDT_FORMAT_VERSION, GbdtModel, Objective, Tree};
