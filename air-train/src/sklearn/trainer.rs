//! `SklearnTrainer` and `SklearnPredictor`.
//!
//! Like Ray's `SklearnTrainer`, one process fits the estimator on all of `"train"`; the
//! parallelism is inside (forest trees, one-vs-one machines, cross-validation folds and
//! prediction chunks run on rayon). The run machinery (storage, preprocessor, checkpoint,
//! `result.json`) is the [`DataParallelTrainer`]'s with one worker.

use std::num::NonZeroUsize;
use std::{sync::Arc, time::Instant};

use air_checkpoint::Checkpoint;
use air_data::{Dataset, Matrix, Preprocessor, polars::prelude::*, to_f64_matrix, to_f64_vector};
use rand::{SeedableRng, rngs::StdRng, seq::SliceRandom};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{
    model::{Predictions, SklearnModel},
    params::{CvConfig, Estimator, EstimatorKind, Scoring},
};
use crate::{
    DataParallelTrainer, DatasetsToSplit, FromCheckpoint, PREDICTIONS, Predictor, RunConfig,
    ScalingConfig, Session, TrainError, TrainResult, Trainable, Trainer, TrialInfo,
    error::Result,
    predictor::{
        InputStage, LABEL_COLUMN_KEY, PREDICTOR_KIND_KEY, expanded_feature_names, feature_columns,
        features_of, read_model_entry, single_column_frame,
    },
};

/// The checkpoint entry a classical model is saved under.
pub const SKLEARN_MODEL_ENTRY: &str = "sklearn_model.json";
/// The [`PREDICTOR_KIND_KEY`] of a fitted estimator's checkpoint.
pub const PREDICTOR_KIND: &str = "sklearn";

const NAME: &str = "SklearnTrainer";

/// Fits a classical estimator (Ray's `SklearnTrainer`): on `"train"`, scored on every other
/// dataset (`"{dataset}/{metric}"`), with optional k-fold cross-validation on `"train"`
/// (`"cv/test_{metric}_mean"`, `_std`, `_fold{i}`), and the fitted model in the checkpoint.
///
/// ```
/// use air_data::{Dataset, polars::prelude::*};
/// use air_train::{
///     RunConfig, Trainer,
///     sklearn::{CvConfig, Estimator, RandomForestParams, SklearnTrainer},
/// };
///
/// let dir = tempfile::tempdir()?;
/// let x: Vec<f64> = (0..32).map(f64::from).collect();
/// let y: Vec<f64> = x.iter().map(|v| v + 1.0).collect();
/// let train = Dataset::from_polars(df!("x" => x, "y" => y)?);
/// let forest = Estimator::RandomForestRegressor(RandomForestParams::new().with_n_estimators(20));
/// let trainer = SklearnTrainer::new(forest, Some("y"), RunConfig::new(dir.path().to_str().unwrap()))?
///     .with_dataset("train", train)
///     .with_cv(CvConfig::new(4)?.with_shuffle(7));
/// let result = trainer.fit()?.into_result()?;
/// assert!(result.metrics["cv/test_r2_mean"].as_f64().unwrap() > 0.9);
/// assert!(result.checkpoint.is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct SklearnTrainer {
    inner: DataParallelTrainer,
    config: FitLoopConfig,
}

/// What the worker of a [`SklearnTrainer`] fits with: its train loop config. A tuner's trial
/// config merges `estimator` into it; an unknown or misspelled key is an error naming it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FitLoopConfig {
    estimator: Estimator,
    label_column: Option<String>,
    scoring: Vec<Scoring>,
    cv: Option<CvConfig>,
    return_train_score: bool,
}

impl SklearnTrainer {
    /// Fits `estimator` predicting `label_column` (`None` only for k-means).
    pub fn new(estimator: Estimator, label_column: Option<&str>, run: RunConfig) -> Result<Self> {
        estimator.validate()?;
        if label_column.is_none() && estimator.kind() != EstimatorKind::Clusterer {
            return Err(TrainError::InvalidConfig {
                field: "label_column",
                value: "None".to_owned(),
                expected: format!("a label column: {} is supervised", estimator.name()),
            });
        }
        let config = FitLoopConfig {
            estimator,
            label_column: label_column.map(str::to_owned),
            scoring: Vec::new(),
            cv: None,
            return_train_score: false,
        };
        let inner = DataParallelTrainer::new(fit_loop, ScalingConfig::new(NonZeroUsize::MIN), run)
            .with_name(NAME)
            .with_datasets_to_split(DatasetsToSplit::Only(Vec::new()));
        Ok(Self { inner, config }.with_config())
    }

    /// Hands the loop config to the inner trainer.
    fn with_config(mut self) -> Self {
        let value = serde_json::to_value(&self.config).expect("the loop config is plain data");
        self.inner = self.inner.with_train_loop_config(value);
        self
    }

    /// Adds dataset `name` (`"train"` is fitted on; every other one is scored).
    pub fn with_dataset(mut self, name: &str, ds: Dataset) -> Self {
        self.inner = self.inner.with_dataset(name, ds);
        self
    }

    /// Fitted on `"train"` once, applied to every dataset, saved in the checkpoint.
    pub fn with_preprocessor(mut self, p: impl Preprocessor + 'static) -> Self {
        self.inner = self.inner.with_preprocessor(p);
        self
    }

    /// The metrics reported; default: the estimator's own score (accuracy, R² or inertia).
    /// A metric that does not fit the estimator fails the run before anything is fitted.
    pub fn with_scoring(mut self, scoring: impl IntoIterator<Item = Scoring>) -> Self {
        self.config.scoring = scoring.into_iter().collect();
        self.with_config()
    }

    /// Cross-validates on `"train"` before the final fit.
    pub fn with_cv(mut self, cv: CvConfig) -> Self {
        self.config.cv = Some(cv);
        self.with_config()
    }

    /// Also scores the fitted model on `"train"` (`train/{metric}`).
    pub fn with_return_train_score(mut self) -> Self {
        self.config.return_train_score = true;
        self.with_config()
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
}

impl Trainer for SklearnTrainer {
    fn fit(&self) -> Result<TrainResult> {
        self.inner.fit()
    }
}

impl Trainable for SklearnTrainer {
    fn trainable_name(&self) -> &str {
        NAME
    }

    /// Trial configs look like Ray's: `{"params": {"max_depth": 4}}` sets estimator
    /// parameters (`"estimator": "ridge"` among them switches the estimator).
    fn resources(&self, config: &Value) -> crate::Resources {
        self.inner.resources(&crate::trainer::scaling_part(config))
    }

    fn run_trial(&self, config: &Value, trial: &TrialInfo) -> TrainResult {
        let mut translated = Map::new();
        if let Value::Object(c) = config {
            for (k, v) in c {
                if k == "params" {
                    translated.insert("train_loop_config".to_owned(), json!({ "estimator": v }));
                } else {
                    translated.insert(k.clone(), v.clone());
                }
            }
        }
        let mut result = self.inner.run_trial(&Value::Object(translated), trial);
        result.config = config.clone();
        result
    }
}

fn check_scoring(estimator: &Estimator, scoring: &[Scoring]) -> Result<()> {
    for s in scoring {
        if s.applies_to() != estimator.kind() {
            return Err(TrainError::InvalidConfig {
                field: "scoring",
                value: format!("{} for {}", s.name(), estimator.name()),
                expected: format!(
                    "a metric for this kind of estimator, such as {}",
                    estimator.default_scoring().name()
                ),
            });
        }
    }
    Ok(())
}

struct Data {
    x: Matrix<f64>,
    y: Option<Vec<f64>>,
}

fn read(ds: &Dataset, features: &[String], label: Option<&str>, name: &str) -> Result<Data> {
    let df = ds.to_polars()?;
    let y = match label {
        Some(label) => {
            if df.column(label).is_err() {
                return Err(TrainError::Data(air_data::DataError::ColumnNotFound {
                    column: label.to_owned(),
                    context: format!("{NAME} label_column in dataset {name:?}"),
                    available: df
                        .get_column_names()
                        .iter()
                        .map(|c| c.to_string())
                        .collect(),
                }));
            }
            Some(to_f64_vector(&df, label)?)
        }
        None => None,
    };
    Ok(Data {
        x: to_f64_matrix(&df, features)?,
        y,
    })
}

fn rows_of(x: &Matrix<f64>, idx: &[usize]) -> Matrix<f64> {
    let c = x.cols;
    Matrix {
        data: idx
            .iter()
            .flat_map(|&i| x.data[i * c..(i + 1) * c].iter().copied())
            .collect(),
        rows: idx.len(),
        cols: c,
    }
}

/// Test-row indices of each fold: `KFold`'s sizes (the first n % k folds one row larger).
fn folds(n: usize, cv: &CvConfig) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..n).collect();
    if let Some(seed) = cv.shuffle_seed {
        order.shuffle(&mut StdRng::seed_from_u64(seed));
    }
    let k = cv.n_splits;
    let mut out = Vec::with_capacity(k);
    let mut start = 0;
    for f in 0..k {
        let size = n / k + usize::from(f < n % k);
        out.push(order[start..start + size].to_vec());
        start += size;
    }
    out
}

struct FoldResult {
    test: Vec<f64>,
    train: Vec<f64>,
    fit_time: f64,
}

fn cross_validate(
    estimator: &Estimator,
    data: &Data,
    features: &[String],
    label: &str,
    scoring: &[Scoring],
    cv: &CvConfig,
) -> Result<Vec<FoldResult>> {
    let n = data.x.rows;
    if n < cv.n_splits {
        return Err(TrainError::InvalidConfig {
            field: "cv.n_splits",
            value: cv.n_splits.to_string(),
            expected: format!("at most the {n} rows of \"train\""),
        });
    }
    let test_folds = folds(n, cv);
    let run = |test_idx: &Vec<usize>| -> Result<FoldResult> {
        let mut is_test = vec![false; n];
        test_idx.iter().for_each(|&i| is_test[i] = true);
        let train_idx: Vec<usize> = (0..n).filter(|&i| !is_test[i]).collect();
        let pick = |idx: &[usize]| Data {
            x: rows_of(&data.x, idx),
            y: data.y.as_ref().map(|y| idx.iter().map(|&i| y[i]).collect()),
        };
        let (tr, te) = (pick(&train_idx), pick(test_idx));
        let start = Instant::now();
        let model = SklearnModel::fit(estimator, &tr.x, tr.y.as_deref(), features.to_vec(), label)?;
        let fit_time = start.elapsed().as_secs_f64();
        let score = |d: &Data| -> Result<Vec<f64>> {
            scoring
                .iter()
                .map(|s| model.score(*s, &d.x, d.y.as_deref()))
                .collect()
        };
        Ok(FoldResult {
            test: score(&te)?,
            train: if cv.return_train_score {
                score(&tr)?
            } else {
                Vec::new()
            },
            fit_time,
        })
    };
    if cv.parallel {
        test_folds.par_iter().map(run).collect()
    } else {
        test_folds.iter().map(run).collect()
    }
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
    (mean, var.sqrt())
}

fn fit_loop(_: &Value, session: &mut Session) -> Result<()> {
    let FitLoopConfig {
        estimator,
        label_column: label,
        mut scoring,
        cv,
        return_train_score,
    } = session.config_as()?;
    estimator.validate()?;
    if scoring.is_empty() {
        scoring.push(estimator.default_scoring());
    }
    check_scoring(&estimator, &scoring)?;
    let label_name = label.clone().unwrap_or_default();

    let train_ds = session.get_dataset_shard("train")?.clone();
    let features = features_of(&train_ds.to_polars()?.head(Some(1)), &label_name);
    if features.is_empty() {
        return Err(TrainError::InvalidData {
            what: "datasets",
            found: "\"train\"".to_owned(),
            expected: format!("numeric feature columns besides the label {label_name:?}"),
        });
    }
    let train = read(&train_ds, &features, label.as_deref(), "train")?;
    let feature_names = expanded_feature_names(&features, train.x.cols);

    let mut metrics = Map::new();
    if let Some(cv) = &cv {
        let results = cross_validate(
            &estimator,
            &train,
            &feature_names,
            &label_name,
            &scoring,
            cv,
        )?;
        for (s_i, s) in scoring.iter().enumerate() {
            for (part, pick) in [("test", true), ("train", false)] {
                if !pick && !cv.return_train_score {
                    continue;
                }
                let values: Vec<f64> = results
                    .iter()
                    .map(|r| if pick { r.test[s_i] } else { r.train[s_i] })
                    .collect();
                let (mean, std) = mean_std(&values);
                metrics.insert(format!("cv/{part}_{}_mean", s.name()), json!(mean));
                metrics.insert(format!("cv/{part}_{}_std", s.name()), json!(std));
                for (f, v) in values.iter().enumerate() {
                    metrics.insert(format!("cv/{part}_{}_fold{f}", s.name()), json!(v));
                }
            }
        }
        let times: Vec<f64> = results.iter().map(|r| r.fit_time).collect();
        metrics.insert("cv/fit_time_mean".to_owned(), json!(mean_std(&times).0));
    }

    let start = Instant::now();
    let model = SklearnModel::fit(
        &estimator,
        &train.x,
        train.y.as_deref(),
        feature_names.clone(),
        &label_name,
    )?;
    metrics.insert("fit_time".to_owned(), json!(start.elapsed().as_secs_f64()));
    tracing::info!(estimator = estimator.name(), rows = train.x.rows, "fitted");

    let mut names: Vec<String> = session
        .dataset_names()
        .into_iter()
        .filter(|n| n != "train")
        .collect();
    if return_train_score {
        names.insert(0, "train".to_owned());
    }
    for name in names {
        let data = if name == "train" {
            None
        } else {
            let ds = session.get_dataset_shard(&name)?.clone();
            Some(read(&ds, &features, label.as_deref(), &name)?)
        };
        let d = data.as_ref().unwrap_or(&train);
        for s in &scoring {
            let v = model.score(*s, &d.x, d.y.as_deref())?;
            metrics.insert(format!("{name}/{}", s.name()), json!(v));
        }
    }
    let mut checkpoint = Checkpoint::new();
    checkpoint.put_json(SKLEARN_MODEL_ENTRY, &model)?;
    checkpoint.set_metadata_value(PREDICTOR_KIND_KEY, PREDICTOR_KIND)?;
    checkpoint.set_metadata_value(LABEL_COLUMN_KEY, &label)?;
    session.report(Value::Object(metrics), Some(checkpoint))?;
    Ok(())
}

/// The fitted model saved in a checkpoint by [`SklearnTrainer`].
pub fn load_sklearn_model(checkpoint: &Checkpoint) -> Result<SklearnModel> {
    let model: SklearnModel = read_model_entry(checkpoint, SKLEARN_MODEL_ENTRY, "SklearnTrainer")?;
    model.validate()?;
    Ok(model)
}

/// Predicts with a classical model from a checkpoint (Ray's `SklearnPredictor`): the
/// checkpoint's preprocessor runs first, features are read by the names the model was fitted
/// on, and the output is `predictions` (the label column's integer classes for classifiers,
/// cluster indices for k-means, floats for regressors).
#[derive(Debug, Clone)]
pub struct SklearnPredictor {
    model: Arc<SklearnModel>,
    input: InputStage,
}

impl SklearnPredictor {
    /// A predictor for `model`.
    pub fn new(model: SklearnModel) -> Result<Self> {
        model.validate()?;
        Ok(Self {
            model: Arc::new(model),
            input: InputStage::default(),
        })
    }

    /// The model.
    pub fn model(&self) -> &SklearnModel {
        &self.model
    }
}

impl FromCheckpoint for SklearnPredictor {
    fn from_checkpoint(checkpoint: &Checkpoint) -> Result<Self> {
        Ok(Self {
            model: Arc::new(load_sklearn_model(checkpoint)?),
            input: InputStage::from_checkpoint(checkpoint)?,
        })
    }
}

impl Predictor for SklearnPredictor {
    fn predict(&self, batch: DataFrame) -> Result<DataFrame> {
        self.predict_preprocessed(self.preprocess(batch)?)
    }

    fn preprocess(&self, batch: DataFrame) -> Result<DataFrame> {
        self.input.apply(batch)
    }

    fn input_columns(&self) -> Option<Vec<String>> {
        self.input.input_columns(&self.model.feature_names)
    }

    fn predict_preprocessed(&self, batch: DataFrame) -> Result<DataFrame> {
        let cols = feature_columns(&batch, &self.model.feature_names, "SklearnPredictor")?;
        let x = to_f64_matrix(&batch, &cols)?;
        let rows = x.rows;
        let column = match self.model.predict(&x)? {
            Predictions::Labels(v) => Int64Chunked::from_vec(PREDICTIONS.into(), v).into_column(),
            Predictions::Values(v) => Float64Chunked::from_vec(PREDICTIONS.into(), v).into_column(),
        };
        single_column_frame(column, rows)
    }
}
