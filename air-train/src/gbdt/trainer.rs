//! `GbdtTrainer` (Ray's `XGBoostTrainer`) and `GbdtPredictor`.
//!
//! The trainer is a [`DataParallelTrainer`] whose train loop boosts: every worker bins the
//! whole training set with the same cut points, builds gradient histograms on its own slice of
//! rows, and the histograms are summed through the run's [`Collective`](crate::Collective), so
//! one worker or many grow the same trees. Rank 0 evaluates every dataset after each round
//! (metrics `"{dataset}-{metric}"`) and writes the checkpoints.

use std::sync::Arc;

use air_checkpoint::Checkpoint;
use air_data::{Dataset, Preprocessor, polars::prelude::*, to_f32_matrix, to_f32_vector};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{
    binning::Cuts,
    booster::{BoostData, Booster, EarlyStopper, RoundReport},
    forest::Forest,
    model::GbdtModel,
    params::GbdtParams,
};
use crate::{
    DataParallelTrainer, DatasetsToSplit, FromCheckpoint, MatrixPredictions, MatrixPredictor,
    Predictor, RunConfig, ScalingConfig, Session, TrainError, TrainResult, Trainable, Trainer,
    TrialInfo,
    error::Result,
    predictor::{
        InputStage, LABEL_COLUMN_KEY, PREDICTOR_KIND_KEY, columns_where, expanded_feature_names,
        feature_columns, is_numeric_feature, polars_error, read_model_entry,
    },
};

/// The checkpoint entry a boosted model is saved under.
pub const GBDT_MODEL_ENTRY: &str = "model.json";
/// The [`PREDICTOR_KIND_KEY`](crate::PREDICTOR_KIND_KEY) of a boosted model's checkpoint.
pub const PREDICTOR_KIND: &str = "gbdt";

/// Boosting rounds when none are given (XGBoost's `num_boost_round` default).
pub const DEFAULT_NUM_BOOST_ROUND: usize = 10;

/// Gradient-boosted trees on the run machinery (Ray's `XGBoostTrainer`): `datasets` must hold
/// `"train"`; every dataset is evaluated each round.
///
/// ```
/// use air_data::{Dataset, polars::prelude::*};
/// use air_train::{RunConfig, ScalingConfig, Trainer, gbdt::{GbdtParams, GbdtTrainer, Objective}};
///
/// let dir = tempfile::tempdir()?;
/// let x: Vec<f64> = (0..200).map(f64::from).collect();
/// let y: Vec<f64> = x.iter().map(|v| if *v >= 100.0 { 1.0 } else { 0.0 }).collect();
/// let train = Dataset::from_polars(df!("x" => x, "y" => y)?);
/// let trainer = GbdtTrainer::new("y", GbdtParams::new(Objective::BinaryLogistic),
///     ScalingConfig::new(std::num::NonZeroUsize::new(2).unwrap()), RunConfig::new(dir.path().to_str().unwrap()))?
///     .with_num_boost_round(10)
///     .with_dataset("train", train);
/// let result = trainer.fit()?.into_result()?;
/// assert!(result.metrics["train-logloss"].as_f64().unwrap() < 0.1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct GbdtTrainer {
    inner: DataParallelTrainer,
    config: BoostLoopConfig,
}

/// What every worker of a [`GbdtTrainer`] boosts with: its train loop config. A tuner's trial
/// config merges `params` and `num_boost_round` into it; an unknown or misspelled key is an
/// error naming it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BoostLoopConfig {
    label_column: String,
    params: GbdtParams,
    num_boost_round: usize,
    checkpoint_frequency: usize,
    checkpoint_at_end: bool,
}

impl GbdtTrainer {
    /// Boosts [`DEFAULT_NUM_BOOST_ROUND`] rounds predicting `label_column` (see
    /// [`with_num_boost_round`](Self::with_num_boost_round)).
    pub fn new(
        label_column: &str,
        params: GbdtParams,
        scaling: ScalingConfig,
        run: RunConfig,
    ) -> Result<Self> {
        params.validate()?;
        let config = BoostLoopConfig {
            label_column: label_column.to_owned(),
            params,
            num_boost_round: DEFAULT_NUM_BOOST_ROUND,
            checkpoint_frequency: run.checkpoint_config().frequency(),
            checkpoint_at_end: run.checkpoint_config().at_end().unwrap_or(true),
        };
        let inner = DataParallelTrainer::new(boost_loop, scaling, run)
            .with_name("GbdtTrainer")
            // Every worker sees all rows (it takes its own slice) so cut points and rank 0's
            // metrics cover the whole data.
            .with_datasets_to_split(DatasetsToSplit::Only(Vec::new()));
        Ok(Self { inner, config }.with_config())
    }

    /// Hands the loop config to the inner trainer.
    fn with_config(mut self) -> Self {
        let value = serde_json::to_value(&self.config).expect("the loop config is plain data");
        self.inner = self.inner.with_train_loop_config(value);
        self
    }

    /// The number of boosting rounds (XGBoost's `num_boost_round`; early stopping may end
    /// sooner).
    pub fn with_num_boost_round(mut self, rounds: usize) -> Self {
        self.config.num_boost_round = rounds;
        self.with_config()
    }

    /// Adds dataset `name` (`"train"` is boosted on; every dataset is evaluated).
    pub fn with_dataset(mut self, name: &str, ds: Dataset) -> Self {
        self.inner = self.inner.with_dataset(name, ds);
        self
    }

    /// A dataset tuning trials may pick by name (`"datasets": {"train": "<name>"}`); see
    /// [`DataParallelTrainer::with_dataset_option`].
    pub fn with_dataset_option(mut self, name: &str, ds: Dataset) -> Self {
        self.inner = self.inner.with_dataset_option(name, ds);
        self
    }

    /// Fitted on `"train"` once, applied to every dataset, saved in every checkpoint.
    pub fn with_preprocessor(mut self, p: impl Preprocessor + 'static) -> Self {
        self.inner = self.inner.with_preprocessor(p);
        self
    }

    /// Continues a model: only the rounds it lacks of `num_boost_round` are trained.
    pub fn with_resume_from_checkpoint(mut self, checkpoint: Checkpoint) -> Self {
        self.inner = self.inner.with_resume_from_checkpoint(checkpoint);
        self
    }

    /// Credentials for a URI storage path.
    pub fn with_storage_options(mut self, options: air_checkpoint::StorageOptions) -> Self {
        self.inner = self.inner.with_storage_options(options);
        self
    }

    /// What to do when the run's directory already holds a run of the same name (see
    /// [`DataParallelTrainer::with_existing_run`]).
    pub fn with_existing_run(mut self, existing: crate::ExistingRun) -> Self {
        self.inner = self.inner.with_existing_run(existing);
        self
    }

    /// How the datasets reach the workers (see [`DataParallelTrainer::with_ingest`]); the
    /// booster bins its shard once either way.
    pub fn with_ingest(mut self, ingest: crate::Ingest) -> Self {
        self.inner = self.inner.with_ingest(ingest);
        self
    }
}

impl Trainer for GbdtTrainer {
    fn fit(&self) -> Result<TrainResult> {
        self.inner.fit()
    }
}

impl Trainable for GbdtTrainer {
    fn trainable_name(&self) -> &str {
        "GbdtTrainer"
    }

    /// Trial configs look like Ray's: `{"params": {"max_depth": 4, "eta": 0.1},
    /// "num_boost_round": 50, "scaling_config": {...}}`.
    fn resources(&self, config: &Value) -> crate::Resources {
        self.inner.resources(&crate::trainer::scaling_part(config))
    }

    fn run_trial(&self, config: &Value, trial: &TrialInfo) -> TrainResult {
        let mut loop_config = serde_json::Map::new();
        let mut translated = serde_json::Map::new();
        if let Value::Object(c) = config {
            for (k, v) in c {
                match k.as_str() {
                    "params" | "num_boost_round" => {
                        loop_config.insert(k.clone(), v.clone());
                    }
                    _ => {
                        translated.insert(k.clone(), v.clone());
                    }
                }
            }
        } else {
            translated.insert("train_loop_config".to_owned(), config.clone());
        }
        if !loop_config.is_empty() {
            translated.insert("train_loop_config".to_owned(), Value::Object(loop_config));
        }
        let mut result = self.inner.run_trial(&Value::Object(translated), trial);
        result.config = config.clone();
        result
    }
}

struct Matrix {
    x: Vec<f32>,
    rows: usize,
    y: Vec<f32>,
}

fn matrix(ds: &Dataset, features: &[String], label: &str, name: &str) -> Result<Matrix> {
    let df = ds.to_polars()?;
    if df.column(label).is_err() {
        return Err(TrainError::Data(air_data::DataError::ColumnNotFound {
            column: label.to_owned(),
            context: format!("GbdtTrainer label_column in dataset {name:?}"),
            available: df
                .get_column_names()
                .iter()
                .map(|c| c.to_string())
                .collect(),
        }));
    }
    let y = to_f32_vector(&df, label)?;
    let m = to_f32_matrix(&category_codes(df, features)?, features)?;
    Ok(Matrix {
        x: m.data,
        rows: m.rows,
        y,
    })
}

/// The frame with its categorical feature columns (polars `Enum`, what [`Categorizer`]
/// writes) replaced by their category codes (the position in the fixed category list; null for
/// missing or unseen values, which take a split's default side). A `Categorical` feature column
/// is an error: its codes would not be stable between training and serving. (String columns are
/// left to the matrix conversion, whose error names the row and the value.)
///
/// [`Categorizer`]: air_data::Categorizer
fn category_codes(mut df: DataFrame, features: &[String]) -> Result<DataFrame> {
    for name in features {
        let Ok(column) = df.column(name) else {
            continue;
        };
        match column.dtype() {
            DataType::Enum(categories, _) => {
                // Codes by name through the list (polars' physical codes may be 8-bit, a
                // type this build of polars does not compute with).
                let index: std::collections::HashMap<&str, f32> = categories
                    .categories()
                    .values_iter()
                    .enumerate()
                    .map(|(i, c)| (c, i as f32))
                    .collect();
                let names = column
                    .cast(&DataType::String)
                    .map_err(|e| polars_error("reading category codes", e))?;
                let names = names
                    .str()
                    .map_err(|e| polars_error("reading category codes", e))?;
                let codes: Float32Chunked = names
                    .iter()
                    .map(|v| v.and_then(|v| index.get(v).copied()))
                    .collect();
                df.with_column(codes.with_name(name.as_str().into()).into_column())
                    .map_err(|e| polars_error("reading category codes", e))?;
            }
            DataType::Categorical(..) => {
                return Err(TrainError::InvalidData {
                    what: "feature column",
                    found: format!("{name:?} of type {}", column.dtype()),
                    expected: "numbers, or categories with a fixed list (polars Enum): apply \
                               air_data::Categorizer to it first"
                        .to_owned(),
                });
            }
            _ => {}
        }
    }
    Ok(df)
}

/// The feature columns of a frame: numeric, boolean, arrays, and `Enum` categories (string
/// and `Categorical` columns too, so that they are refused by name, not silently left out).
fn gbdt_features(df: &DataFrame, label: &str) -> Vec<String> {
    columns_where(df, label, |dtype| {
        is_numeric_feature(dtype)
            || matches!(
                dtype,
                DataType::Enum(..) | DataType::Categorical(..) | DataType::String
            )
    })
}

fn boost_loop(_: &Value, session: &mut Session) -> Result<()> {
    let BoostLoopConfig {
        label_column: label,
        params,
        num_boost_round: rounds,
        checkpoint_frequency: frequency,
        checkpoint_at_end: at_end,
    } = session.config_as()?;
    params.validate()?;
    let (rank, world) = (session.world_rank(), session.world_size());

    let train_ds = session.get_dataset_shard("train")?.clone();
    let head = train_ds.to_polars()?.head(Some(1));
    let features = gbdt_features(&head, &label);
    if let Some(c) = head
        .columns()
        .iter()
        .find(|c| features.iter().any(|f| f == c.name().as_str()) && c.dtype() == &DataType::String)
    {
        return Err(TrainError::InvalidData {
            what: "feature column",
            found: format!("{:?} of type {}", c.name().as_str(), c.dtype()),
            expected: "numbers, or categories with a fixed list (polars Enum): apply \
                       air_data::Categorizer to it first"
                .to_owned(),
        });
    }
    if features.is_empty() {
        return Err(TrainError::InvalidData {
            what: "datasets",
            found: "\"train\"".to_owned(),
            expected: format!("numeric feature columns besides the label {label:?}"),
        });
    }
    let train = matrix(&train_ds, &features, &label, "train")?;
    let d = train.x.len().checked_div(train.rows).unwrap_or(0);
    let feature_names = expanded_feature_names(&features, d);
    // `Enum` columns (one feature each) are categorical, besides the ones the params name.
    let mut params = params;
    params.categorical_features.extend(
        feature_names
            .iter()
            .enumerate()
            .filter(|(_, n)| {
                head.column(n.as_str())
                    .is_ok_and(|c| matches!(c.dtype(), DataType::Enum(..)))
            })
            .map(|(i, _)| i),
    );
    params.categorical_features.sort_unstable();
    params.categorical_features.dedup();
    let cuts = Cuts::fit(
        &train.x,
        train.rows,
        d,
        params.max_bin,
        &params.categorical_features,
    )?;
    cuts.check_present(&feature_names)?;
    let (lo, hi) = (train.rows * rank / world, train.rows * (rank + 1) / world);
    let local = BoostData {
        x: &train.x[lo * d..hi * d],
        rows: hi - lo,
        y: &train.y[lo..hi],
    };
    // Only rank 0 reports metrics, so only it evaluates.
    let mut eval_data: Vec<(String, Matrix)> = Vec::new();
    if rank == 0 {
        let mut names: Vec<String> = vec!["train".to_owned()];
        names.extend(session.dataset_names().into_iter().filter(|n| n != "train"));
        for name in names {
            let ds = session.get_dataset_shard(&name)?.clone();
            let m = if name == "train" {
                Matrix {
                    x: train.x.clone(),
                    rows: train.rows,
                    y: train.y.clone(),
                }
            } else {
                matrix(&ds, &features, &label, &name)?
            };
            eval_data.push((name, m));
        }
    }
    let evals: Vec<(String, BoostData<'_>)> = eval_data
        .iter()
        .map(|(n, m)| {
            (
                n.clone(),
                BoostData {
                    x: &m.x,
                    rows: m.rows,
                    y: &m.y,
                },
            )
        })
        .collect();
    let collective = session.collective_handle();
    let reduce = move |buf: &mut [f64]| collective.all_reduce_sum_f64(rank, buf);
    let init = match session.get_checkpoint() {
        Some(c) if c.contains(GBDT_MODEL_ENTRY) => Some(load_gbdt_model(c)?),
        _ => None,
    };
    let mut booster = Booster::new(&params, &cuts, feature_names, local, evals, &reduce, init)?;
    let mut stopper = EarlyStopper::new(&params);
    let collective = session.collective_handle();
    while booster.rounds_done() < rounds {
        booster.round()?;
        let report = RoundReport {
            round: booster.rounds_done(),
            metrics: if rank == 0 {
                booster.evaluate()
            } else {
                Vec::new()
            },
        };
        // Rank 0 decides early stopping for everyone.
        let mut stop = vec![if rank == 0 && stopper.should_stop(&report) {
            1.0
        } else {
            0.0
        }];
        collective.broadcast(rank, 0, &mut stop)?;
        let stopping = stop.first() == Some(&1.0);
        if stopping {
            let mut best = vec![stopper.best_round as f32];
            collective.broadcast(rank, 0, &mut best)?;
            booster.model.truncate_rounds(best[0] as usize);
        }
        let done = stopping || booster.rounds_done() >= rounds;
        let checkpoint =
            if (done && at_end) || (frequency > 0 && report.round.is_multiple_of(frequency)) {
                let mut c = Checkpoint::new();
                c.put_json(GBDT_MODEL_ENTRY, &booster.model)?;
                c.set_metadata_value(PREDICTOR_KIND_KEY, PREDICTOR_KIND)?;
                c.set_metadata_value(LABEL_COLUMN_KEY, &label)?;
                Some(c)
            } else {
                None
            };
        let mut metrics = serde_json::Map::new();
        for (k, v) in &report.metrics {
            metrics.insert(k.clone(), json!(v));
        }
        if stopping {
            metrics.insert("best_iteration".to_owned(), json!(stopper.best_round));
        }
        session.report(Value::Object(metrics), checkpoint)?;
        if stopping {
            break;
        }
    }
    Ok(())
}

/// A checkpoint holding `model`, and `preprocessor` to run first when it predicts: what
/// [`GbdtPredictor::from_checkpoint`] loads (and what serving and batch prediction take). The
/// one call that brings an outside model in:
///
/// ```no_run
/// use air_train::gbdt::{GbdtModel, to_checkpoint};
///
/// let model = GbdtModel::from_xgboost_json_file("model.json")?;
/// to_checkpoint(&model, None)?.to_directory("/models/xgb")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn to_checkpoint(
    model: &GbdtModel,
    preprocessor: Option<&dyn Preprocessor>,
) -> Result<Checkpoint> {
    model.validate()?;
    let mut checkpoint = Checkpoint::new();
    checkpoint.put_json(GBDT_MODEL_ENTRY, model)?;
    checkpoint.set_metadata_value(PREDICTOR_KIND_KEY, PREDICTOR_KIND)?;
    if let Some(p) = preprocessor {
        air_data::save_preprocessor(p, &mut checkpoint)?;
    }
    Ok(checkpoint)
}

/// The boosted model saved in a checkpoint by [`GbdtTrainer`] or [`to_checkpoint`].
pub fn load_gbdt_model(checkpoint: &Checkpoint) -> Result<GbdtModel> {
    let model: GbdtModel = read_model_entry(checkpoint, GBDT_MODEL_ENTRY, "GbdtTrainer")?;
    model.validate()?;
    Ok(model)
}

/// Predicts with a boosted model from a checkpoint (Ray's `XGBoostPredictor`): the checkpoint's
/// preprocessor runs first, features are taken by the names the model was trained on, and the
/// output is `predictions` (probabilities for the logistic objectives, an array of class
/// probabilities for multi-class).
#[derive(Debug, Clone)]
pub struct GbdtPredictor {
    model: Arc<GbdtModel>,
    forest: Arc<Forest>,
    input: InputStage,
    contributions: bool,
    leaf_indices: bool,
}

/// The column [`GbdtPredictor::with_contributions`] adds: per row, an array of
/// `groups × (features + 1)` SHAP values (per group, one per feature, then the bias).
pub const CONTRIBUTIONS: &str = "contributions";

/// The column [`GbdtPredictor::with_leaf_indices`] adds: per row, an array of the leaf (node
/// index) reached in each tree.
pub const LEAVES: &str = "leaves";

impl GbdtPredictor {
    /// A predictor for `model` (for example one read with [`GbdtModel::from_xgboost_json`]).
    pub fn new(model: GbdtModel) -> Result<Self> {
        model.validate()?;
        Ok(Self {
            forest: Arc::new(Forest::new(&model)),
            model: Arc::new(model),
            input: InputStage::default(),
            contributions: false,
            leaf_indices: false,
        })
    }

    /// Adds the [`CONTRIBUTIONS`] column: each row's SHAP values (XGBoost's
    /// `pred_contribs=True`), what a deployment serves when its factory asks for them:
    ///
    /// ```no_run
    /// # use air_train::{FromCheckpoint, gbdt::GbdtPredictor};
    /// let factory = |c: &air_checkpoint::Checkpoint| {
    ///     Ok::<_, air_train::TrainError>(GbdtPredictor::from_checkpoint(c)?.with_contributions())
    /// };
    /// ```
    pub fn with_contributions(mut self) -> Self {
        self.contributions = true;
        self
    }

    /// Adds the [`LEAVES`] column: the leaf each row reaches in each tree (XGBoost's
    /// `pred_leaf=True`).
    pub fn with_leaf_indices(mut self) -> Self {
        self.leaf_indices = true;
        self
    }

    /// The model.
    pub fn model(&self) -> &GbdtModel {
        &self.model
    }
}

impl FromCheckpoint for GbdtPredictor {
    fn from_checkpoint(checkpoint: &Checkpoint) -> Result<Self> {
        let model = load_gbdt_model(checkpoint)?;
        Ok(Self {
            forest: Arc::new(Forest::new(&model)),
            model: Arc::new(model),
            input: InputStage::from_checkpoint(checkpoint)?,
            contributions: false,
            leaf_indices: false,
        })
    }
}

/// Offered by [`Predictor::as_matrix`] when there is no preprocessor, the model names its
/// features, and neither contributions nor leaf indices are asked for.
impl MatrixPredictor for GbdtPredictor {
    fn columns(&self) -> &[String] {
        &self.model.feature_names
    }

    fn predict_matrix(&self, data: &[f32], rows: usize) -> Result<MatrixPredictions> {
        self.model.check_input(data, rows)?;
        Ok(MatrixPredictions {
            values: self.model.transform(self.forest.predict_margin(data, rows)),
            width: self.model.objective.output_width(),
        })
    }
}

impl Predictor for GbdtPredictor {
    fn predict(&self, batch: DataFrame) -> Result<DataFrame> {
        self.predict_preprocessed(self.preprocess(batch)?)
    }

    fn preprocess(&self, batch: DataFrame) -> Result<DataFrame> {
        self.input.apply(batch)
    }

    fn input_columns(&self) -> Option<Vec<String>> {
        self.input.input_columns(&self.model.feature_names)
    }

    fn as_matrix(&self) -> Option<&dyn MatrixPredictor> {
        let plain = self.input.preprocessor().is_none()
            && !self.contributions
            && !self.leaf_indices
            && !self.model.feature_names.is_empty();
        plain.then_some(self as &dyn MatrixPredictor)
    }

    fn predict_preprocessed(&self, batch: DataFrame) -> Result<DataFrame> {
        let cols = if self.model.feature_names.is_empty() {
            // A model read from XGBoost JSON may carry no names: then XGBoost's own `f{i}`,
            // never "whatever numeric columns the frame has".
            let default: Vec<String> = (0..self.model.num_feature)
                .map(|i| format!("f{i}"))
                .collect();
            feature_columns(&batch, &default, "GbdtPredictor").map_err(|_| {
                TrainError::model(
                    "matching the input's columns",
                    format!(
                        "the model has no feature names, so it reads columns f0..f{} (XGBoost's \
                     default names); the input has {:?}. Name the model's features with \
                     GbdtModel::with_feature_names",
                        self.model.num_feature.saturating_sub(1),
                        batch.get_column_names()
                    ),
                )
            })?
        } else {
            feature_columns(&batch, &self.model.feature_names, "GbdtPredictor")?
        };
        let m = to_f32_matrix(&category_codes(batch, &cols)?, &cols)?;
        let mut frame = self.predict_matrix(&m.data, m.rows)?.into_frame()?;
        if self.contributions {
            let values = self.model.predict_contributions(&m.data, m.rows)?;
            let width = values.len().checked_div(m.rows).unwrap_or(0);
            let values = Float32Chunked::from_vec("".into(), values).chunks()[0].clone();
            let column = ArrayChunked::from_aligned_values(
                CONTRIBUTIONS.into(),
                &DataType::Float32,
                width,
                vec![values],
                m.rows,
            );
            frame
                .with_column(column.into_column())
                .map_err(|e| polars_error("adding contributions", e))?;
        }
        if self.leaf_indices {
            let values = self.model.predict_leaf(&m.data, m.rows)?;
            let values = UInt32Chunked::from_vec("".into(), values).chunks()[0].clone();
            let column = ArrayChunked::from_aligned_values(
                LEAVES.into(),
                &DataType::UInt32,
                self.model.trees.len(),
                vec![values],
                m.rows,
            );
            frame
                .with_column(column.into_column())
                .map_err(|e| polars_error("adding leaf indices", e))?;
        }
        Ok(frame)
    }
}
