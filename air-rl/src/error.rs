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
}

/// This crate's result type.
pub type Result<T, E = RlError> = std::result::Result<T, E>;
