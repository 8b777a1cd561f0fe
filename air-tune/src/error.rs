use air_train::TrainError;

/// Everything that can go wrong in air-tune.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TuneError {
    /// A search-space domain has invalid bounds or values.
    #[error("invalid search space at {path}: {domain}: {reason}")]
    InvalidSpace {
        /// Where in the param space (`params.max_depth`).
        path: String,
        /// The domain as written (`randint(9, 1)`).
        domain: String,
        /// What is wrong and what is expected.
        reason: String,
    },
    /// A tuner, searcher or scheduler setting is invalid.
    #[error("invalid {field}: {value}; expected {expected}")]
    InvalidConfig {
        /// The setting.
        field: &'static str,
        /// The offending value.
        value: String,
        /// What is accepted.
        expected: String,
    },
    /// A searcher cannot handle a domain of the space.
    #[error("{searcher} cannot search {path} = {domain}: {hint}")]
    UnsupportedDomain {
        /// The searcher.
        searcher: String,
        /// Where in the param space.
        path: String,
        /// The domain.
        domain: String,
        /// What to do instead.
        hint: String,
    },
    /// `get_best_result` (or another query) found nothing to rank.
    #[error("no result to rank: {reason}")]
    NoResult {
        /// Why.
        reason: String,
    },
    /// An experiment directory cannot be restored.
    #[error("cannot restore the experiment at {path}: {reason}")]
    Restore {
        /// The experiment directory.
        path: String,
        /// Why, and what was expected.
        reason: String,
    },
    /// A trainer-side error surfaced outside a trial (a trial's own failure is in its result).
    #[error(transparent)]
    Train(#[from] TrainError),
    /// The results could not be turned into a frame.
    #[error("building the results frame: {0}")]
    Frame(#[source] air_data::DataError),
}

/// `Result` with [`TuneError`].
pub type Result<T, E = TuneError> = std::result::Result<T, E>;

pub(crate) fn invalid(field: &'static str, value: impl ToString, expected: &str) -> TuneError {
    TuneError::InvalidConfig {
        field,
        value: value.to_string(),
        expected: expected.to_owned(),
    }
}

/// `value` if it is finite and at least `min`, else an error naming `field`.
pub(crate) fn at_least(field: &'static str, value: f64, min: f64) -> Result<f64> {
    if value.is_finite() && value >= min {
        Ok(value)
    } else {
        Err(invalid(field, value, &format!("a finite number ≥ {min}")))
    }
}

/// `value` if it is finite and above `min`, else an error naming `field`.
pub(crate) fn above(field: &'static str, value: f64, min: f64) -> Result<f64> {
    if value.is_finite() && value > min {
        Ok(value)
    } else {
        Err(invalid(
            field,
            value,
            &format!("a finite number above {min}"),
        ))
    }
}
