//! [`RLPredictor`]: a trained policy as an air-train [`Predictor`] — observations in, actions
//! out — which `PredictorDeployment` serves (Ray AIR's `RLPredictor`).

use std::sync::Mutex;

use air_checkpoint::Checkpoint;
use air_data::{
    polars::prelude::{DataFrame, DataType, Int64Chunked, IntoColumn},
    to_f32_matrix,
};
use air_train::{
    ComputeDevice, FromCheckpoint, PREDICTIONS, Predictor, predictions_frame, single_column_frame,
};

use crate::{
    Result, RlError,
    env::Action,
    frame::list_as_array,
    policy::{ActionSelection, Policy},
};

/// The column a one-dimensional `{"array": [...]}` request arrives in (air-serve's
/// `VALUE_COLUMN`, Ray's `__value__`).
const VALUE_COLUMN: &str = "__value__";

/// Maps observations to actions with a trained policy.
///
/// Observations are read from, in this order:
/// - the columns given to [`with_obs_columns`](Self::with_obs_columns);
/// - a single list or array column: one observation per row (what `{"array": [[...], ...]}`
///   becomes on a server);
/// - a single numeric column of exactly the observation size named `__value__`: one
///   observation (`{"array": obs}`, Ray's serving example);
/// - otherwise every column, in order, one observation per row.
///
/// The output is one `predictions` column: an integer action per row for a discrete action
/// space, a float (or a fixed-size array of them) for a continuous one. Actions are greedy
/// unless [`with_sampling`](Self::with_sampling) is set.
#[derive(Debug)]
pub struct RLPredictor {
    policy: Policy,
    sampling: Option<Mutex<ActionSelection>>,
    obs_columns: Option<Vec<String>>,
}

impl RLPredictor {
    /// The policy in `checkpoint`, on `device`.
    pub fn from_checkpoint_on(checkpoint: &Checkpoint, device: ComputeDevice) -> Result<Self> {
        Ok(Self {
            policy: Policy::from_checkpoint_on(checkpoint, device)?,
            sampling: None,
            obs_columns: None,
        })
    }

    /// Samples actions from the policy's distribution (seeded) instead of taking the greedy
    /// one.
    pub fn with_sampling(mut self, seed: u64) -> Self {
        self.sampling = Some(Mutex::new(ActionSelection::sample(seed)));
        self
    }

    /// Reads observations from these numeric columns, in this order.
    pub fn with_obs_columns<S: AsRef<str>>(mut self, columns: &[S]) -> Self {
        self.obs_columns = Some(columns.iter().map(|c| c.as_ref().to_owned()).collect());
        self
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The observations in `batch`, one per row (see the type's docs for the layouts read).
    pub fn observations(&self, batch: &DataFrame) -> Result<Vec<Vec<f32>>> {
        let dim = self.policy.spec().observation_dim;
        let names: Vec<String> = batch
            .get_column_names()
            .iter()
            .map(|n| n.to_string())
            .collect();
        let matrix = if let Some(columns) = &self.obs_columns {
            to_f32_matrix(batch, columns)?
        } else if let [name] = names.as_slice() {
            let column = batch
                .column(name)
                .map_err(|e| RlError::InvalidObservation {
                    found: e.to_string(),
                    expected: "a column".to_owned(),
                })?;
            match column.dtype() {
                DataType::List(_) => {
                    let mut df = batch.clone();
                    df.with_column(list_as_array(column, Some(dim))?)
                        .map_err(|e| RlError::InvalidObservation {
                            found: e.to_string(),
                            expected: format!("lists of {dim} numbers"),
                        })?;
                    to_f32_matrix(&df, &names)?
                }
                _ if name == VALUE_COLUMN && dim > 1 => {
                    if batch.height() != dim {
                        return Err(RlError::InvalidObservation {
                            found: format!("a 1-D array of {} numbers", batch.height()),
                            expected: format!(
                                "{dim} numbers: {{\"array\": [...]}} with one observation of \
                                 {dim}, or a 2-D array of them"
                            ),
                        });
                    }
                    let m = to_f32_matrix(batch, &names)?;
                    air_data::Matrix {
                        data: m.data,
                        rows: 1,
                        cols: dim,
                    }
                }
                _ => to_f32_matrix(batch, &names)?,
            }
        } else {
            to_f32_matrix(batch, &names)?
        };
        if matrix.cols != dim {
            return Err(RlError::InvalidObservation {
                found: format!(
                    "{} values per observation (columns {names:?}, {} rows)",
                    matrix.cols,
                    batch.height()
                ),
                expected: format!(
                    "{dim} values per observation: {dim} numeric columns, one list or array \
                     column of {dim}, or {{\"array\": [...]}} with {dim} numbers per observation"
                ),
            });
        }
        Ok((0..matrix.rows).map(|r| matrix.row(r).to_vec()).collect())
    }

    /// The action for each row of `batch`.
    pub fn actions(&self, batch: &DataFrame) -> Result<Vec<Action>> {
        let observations = self.observations(batch)?;
        match &self.sampling {
            Some(s) => {
                let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
                self.policy.compute_actions(&observations, &mut s)
            }
            None => self
                .policy
                .compute_actions(&observations, &mut ActionSelection::Greedy),
        }
    }
}

/// Actions as a `predictions` column.
fn actions_frame(actions: &[Action]) -> air_train::Result<DataFrame> {
    let rows = actions.len();
    match actions.first() {
        Some(Action::Continuous(first)) => {
            let width = first.len();
            let values: Vec<f32> = actions
                .iter()
                .flat_map(|a| continuous(a).to_vec())
                .collect();
            predictions_frame(values, rows, width)
        }
        _ => {
            let values = actions
                .iter()
                .map(|a| match a {
                    Action::Discrete(i) => *i as i64,
                    Action::Continuous(_) => 0,
                })
                .collect();
            single_column_frame(
                Int64Chunked::from_vec(PREDICTIONS.into(), values).into_column(),
                rows,
            )
        }
    }
}

fn continuous(a: &Action) -> &[f32] {
    match a {
        Action::Continuous(v) => v,
        Action::Discrete(_) => &[],
    }
}

/// The column [`RLPredictor`]'s preprocessing leaves the observations in.
const OBS_COLUMN: &str = "obs";

impl Predictor for RLPredictor {
    fn predict(&self, batch: DataFrame) -> air_train::Result<DataFrame> {
        actions_frame(&self.actions(&batch)?)
    }

    /// The observations, checked, as one `obs` array column: one row per observation (a
    /// request holding one observation as a 1-D array becomes one row).
    fn preprocess(&self, batch: DataFrame) -> air_train::Result<DataFrame> {
        let observations = self.observations(&batch)?;
        let dim = self.policy.spec().observation_dim;
        crate::policy::check_observations(self.policy.spec(), &observations)?;
        let rows = observations.len();
        let mut frame = predictions_frame(observations.concat(), rows, dim)?;
        frame
            .rename(PREDICTIONS, OBS_COLUMN.into())
            .map_err(|e| air_train::TrainError::model("naming the observations", e))?;
        Ok(frame)
    }

    fn predict_preprocessed(&self, batch: DataFrame) -> air_train::Result<DataFrame> {
        self.predict(batch)
    }
}

impl FromCheckpoint for RLPredictor {
    /// The policy in `checkpoint`, on the CPU.
    fn from_checkpoint(checkpoint: &Checkpoint) -> air_train::Result<Self> {
        Ok(Self::from_checkpoint_on(checkpoint, ComputeDevice::Cpu)?)
    }
}
