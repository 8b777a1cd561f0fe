//! [`RlError`]: what can go wrong in air-rl.

/// Everything that can go wrong in air-rl.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RlError {
    /// An action the environment's action space does not contain.
    #[error("{env}: action {action} is not in the action space {space}")]
    InvalidAction {
        /// The environment.
        env: String,
        /// The action given.
        action: String,
        /// The action space.
        space: String,
    },
    /// A state of the wrong size, or not finite.
    #[error("{env}: invalid state {state:?}; expected {expected}")]
    InvalidState {
        /// The environment.
        env: String,
        /// The state given.
        state: Vec<f64>,
        /// What the environment's state is.
        expected: String,
    },
    /// `step` before the first `reset`.
    #[error("{0}: step called before reset; call reset first")]
    NotReset(String),
    /// No environment has this name.
    #[error("no environment named {name:?}; known: [{}]", known.join(", "))]
    UnknownEnv {
        /// The name asked for.
        name: String,
        /// The names known.
        known: Vec<String>,
    },
    /// A configuration value is invalid.
    #[error("invalid {field}: {value}; expected {expected}")]
    InvalidConfig {
        /// The field.
        field: &'static str,
        /// The offending value.
        value: String,
        /// What is accepted.
        expected: String,
    },
    /// Observations that do not fit the policy (wrong size, not finite).
    #[error("invalid observations: {found}; expected {expected}")]
    InvalidObservation {
        /// What was found.
        found: String,
        /// What the policy takes.
        expected: String,
    },
    /// Training data that cannot be used as it is (offline RL).
    #[error("unusable {what}: {found}; expected {expected}")]
    InvalidData {
        /// What part of the data.
        what: &'static str,
        /// What was found.
        found: String,
        /// What is needed.
        expected: String,
    },
    /// A checkpoint without a policy in it.
    #[error(
        "not an RL checkpoint: it has no policy.json (entries: [{}]); expected a checkpoint \
         written by RLTrainer",
        entries.join(", ")
    )]
    NotAnRlCheckpoint {
        /// The entries the checkpoint has.
        entries: Vec<String>,
    },
    /// Training, device or model failures from air-train.
    #[error(transparent)]
    Train(#[from] air_train::TrainError),
    /// Reading or writing a checkpoint failed.
    #[error(transparent)]
    Checkpoint(#[from] air_checkpoint::CheckpointError),
    /// Reading a dataset failed.
    #[error(transparent)]
    Data(#[from] air_data::DataError),
}

impl From<RlError> for air_train::TrainError {
    /// Observation and data problems become [`InvalidData`](air_train::TrainError::InvalidData)
    /// (a bad request, for a server); errors from air-train come back unchanged.
    fn from(e: RlError) -> Self {
        match e {
            RlError::Train(e) => e,
            RlError::Checkpoint(e) => Self::Checkpoint(e),
            RlError::Data(e) => Self::Data(e),
            RlError::InvalidObservation { found, expected } => Self::InvalidData {
                what: "observations",
                found,
                expected,
            },
            RlError::InvalidData {
                what,
                found,
                expected,
            } => Self::InvalidData {
                what,
                found,
                expected,
            },
            other => Self::model("running a policy", other.to_string()),
        }
    }
}

/// This crate's result type.
pub type Result<T, E = RlError> = std::result::Result<T, E>;
