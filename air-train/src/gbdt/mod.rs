//! Gradient-boosted trees with XGBoost's model and semantics.
//!
//! The model ([`GbdtModel`]: trees in XGBoost's array layout, a versioned serde form),
//! prediction, SHAP values and leaf indices, reading XGBoost's JSON and LightGBM's text model
//! files, and the
//! histogram booster ([`train_gbdt`], [`GbdtParams`] with XGBoost's names and defaults;
//! depth-wise or leaf-wise growth).

mod binning;
mod booster;
mod forest;
mod grow;
mod lightgbm_txt;
mod metrics;
mod model;
mod params;
mod shap;
mod trainer;
mod xgboost_json;

pub use booster::{BoostData, RoundReport, train_gbdt};
pub use model::{GBDT_FORMAT_VERSION, GbdtModel, ImportanceType, Objective, Tree};
pub use params::{EvalMetric, GbdtParams, GrowPolicy};
pub use trainer::{
    CONTRIBUTIONS, DEFAULT_NUM_BOOST_ROUND, GBDT_MODEL_ENTRY, GbdtPredictor, GbdtTrainer, LEAVES,
    PREDICTOR_KIND, load_gbdt_model, to_checkpoint,
};
