//! What can go wrong in a command, each naming the value, what was expected and the way out.

use thiserror::Error;

/// An `air` command's failure.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CliError {
    /// A config file that does not parse or whose values are out of range. The message names
    /// the field path, the line and the column.
    #[error("{path}: {message}")]
    Config {
        /// The file.
        path: String,
        /// What is wrong, where.
        message: String,
    },
    /// A command-line value that does not fit.
    #[error("{option} {value:?}: expected {expected}")]
    Argument {
        /// The option or argument.
        option: &'static str,
        /// What was given.
        value: String,
        /// What fits.
        expected: String,
    },
    /// A checkpoint that cannot be opened, read or written.
    #[error("checkpoint {location}: {source}")]
    Checkpoint {
        /// Where it is.
        location: String,
        /// Why.
        #[source]
        source: Box<air_checkpoint::CheckpointError>,
    },
    /// A checkpoint whose predictor this program does not know.
    #[error(
        "checkpoint {location} holds a {kind:?} model, which this `air` cannot build; it knows \
         {known}{hint}"
    )]
    UnknownKind {
        /// The checkpoint.
        location: String,
        /// Its predictor kind.
        kind: String,
        /// The kinds this program builds.
        known: String,
        /// How to get one that can (an extra sentence, or nothing).
        hint: String,
    },
    /// A checkpoint with no recorded predictor kind and none of the known model files.
    #[error(
        "checkpoint {location} records no predictor kind (metadata key {key:?}) and holds none of \
         the model files {known}; pass --kind KIND"
    )]
    NoKind {
        /// The checkpoint.
        location: String,
        /// The metadata key looked for.
        key: &'static str,
        /// The model files looked for, by kind.
        known: String,
    },
    /// Reading or writing data.
    #[error(transparent)]
    Data(Box<air_data::DataError>),
    /// Building a predictor, training.
    #[error(transparent)]
    Train(Box<air_train::TrainError>),
    /// Serving or batch prediction.
    #[error(transparent)]
    Serve(Box<air_serve::ServeError>),
    /// Tuning.
    #[error(transparent)]
    Tune(Box<air_tune::TuneError>),
    /// A local file or the terminal.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
}

impl CliError {
    /// The process exit status: 2 for a bad argument or config file (as clap's usage errors),
    /// 1 for anything that failed while running.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Config { .. } | Self::Argument { .. } => 2,
            _ => 1,
        }
    }

    pub(crate) fn checkpoint(
        location: &str,
    ) -> impl FnOnce(air_checkpoint::CheckpointError) -> Self {
        let location = location.to_owned();
        move |source| Self::Checkpoint {
            location,
            source: Box::new(source),
        }
    }
}

macro_rules! boxed_from {
    ($($variant:ident($ty:ty)),*) => {$(
        impl From<$ty> for CliError {
            fn from(e: $ty) -> Self {
                Self::$variant(Box::new(e))
            }
        }
    )*};
}
boxed_from!(
    Data(air_data::DataError),
    Train(air_train::TrainError),
    Serve(air_serve::ServeError),
    Tune(air_tune::TuneError)
);

/// A command's result.
pub type Result<T, E = CliError> = std::result::Result<T, E>;
