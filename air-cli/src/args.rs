//! The command line.

use std::{net::IpAddr, num::NonZeroUsize, path::PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};

/// AIR for Rust: serve, predict, inspect checkpoints, train and tune — without writing a
/// program.
#[derive(Debug, Parser)]
#[command(name = "air", version, about, long_about = None)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Serve a checkpoint over HTTP (POST JSON records to the route), or the deployments of a
    /// config file; SIGINT/SIGTERM drain the requests in flight, then exit.
    Serve(ServeArgs),
    /// Predict every row of CSV/parquet/JSON files (a file, a directory, a glob or a URI) into
    /// a parquet, CSV or JSON file at a path or URI.
    Predict(PredictArgs),
    /// Inspect, verify or copy a checkpoint.
    #[command(subcommand)]
    Checkpoint(CheckpointCommand),
    /// Train a built-in trainer (gbdt, sklearn) from a config file.
    Train(TrainArgs),
    /// Tune a built-in trainer's hyperparameters from a config file, or restore an experiment.
    Tune(TuneArgs),
    /// List the predictor kinds this `air` builds.
    Kinds,
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The checkpoint: a local directory or a URI (s3://, gs://, az://, file://).
    #[arg(required_unless_present = "config")]
    pub(crate) checkpoint: Option<String>,
    /// A serve config file (YAML) of deployments, instead of one checkpoint.
    #[arg(long, conflicts_with_all = ["checkpoint", "name", "route_prefix", "kind", "replicas", "max_batch_size", "batch_wait_ms", "max_concurrent_queries", "request_timeout_s"])]
    pub(crate) config: Option<PathBuf>,
    /// The address to bind (only this machine unless told otherwise).
    #[arg(long, default_value = "127.0.0.1")]
    pub(crate) host: IpAddr,
    /// The port (0 picks a free one; the address is printed).
    #[arg(long, default_value_t = 8000)]
    pub(crate) port: u16,
    /// Threads answering HTTP.
    #[arg(long)]
    pub(crate) http_threads: Option<NonZeroUsize>,
    /// Seconds a shutdown waits for in-flight requests.
    #[arg(long)]
    pub(crate) shutdown_timeout_s: Option<f64>,
    /// The deployment's name.
    #[arg(long, default_value = "model")]
    pub(crate) name: String,
    /// Where the deployment answers.
    #[arg(long, default_value = "/")]
    pub(crate) route_prefix: String,
    /// The predictor kind, when the checkpoint does not record one.
    #[arg(long)]
    pub(crate) kind: Option<String>,
    /// Replicas, each with its own predictor.
    #[arg(long, default_value_t = NonZeroUsize::MIN)]
    pub(crate) replicas: NonZeroUsize,
    /// Batch up to this many requests together (no batching unless set).
    #[arg(long)]
    pub(crate) max_batch_size: Option<NonZeroUsize>,
    /// How long a batch waits to fill, in milliseconds.
    #[arg(long, requires = "max_batch_size")]
    pub(crate) batch_wait_ms: Option<f64>,
    /// Requests queued or running at most before a 503.
    #[arg(long)]
    pub(crate) max_concurrent_queries: Option<NonZeroUsize>,
    /// Seconds a request may take before a 408.
    #[arg(long)]
    pub(crate) request_timeout_s: Option<f64>,
}

/// A file format.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Format {
    Parquet,
    Csv,
    Json,
}

impl From<Format> for air_data::FileFormat {
    fn from(f: Format) -> Self {
        match f {
            Format::Parquet => Self::Parquet,
            Format::Csv => Self::Csv,
            Format::Json => Self::Json,
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct PredictArgs {
    /// The checkpoint: a local directory or a URI.
    pub(crate) checkpoint: String,
    /// The rows: a file, a directory, a glob or a URI.
    pub(crate) input: String,
    /// Where the predictions go: a file path or URI (written whole or not at all).
    pub(crate) output: String,
    /// Rows per batch.
    #[arg(long, default_value = "4096")]
    pub(crate) batch_size: NonZeroUsize,
    /// Scoring workers at most (one predictor each).
    #[arg(long, default_value = "1")]
    pub(crate) workers: NonZeroUsize,
    /// Input columns copied next to the predictions (repeat for several).
    #[arg(long = "keep", value_name = "COLUMN")]
    pub(crate) keep: Vec<String>,
    /// The predictor kind, when the checkpoint does not record one.
    #[arg(long)]
    pub(crate) kind: Option<String>,
    /// The input's format, when its name does not say.
    #[arg(long, value_enum)]
    pub(crate) input_format: Option<Format>,
    /// The output's format, when its name does not say.
    #[arg(long, value_enum)]
    pub(crate) output_format: Option<Format>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum CheckpointCommand {
    /// Files, sizes, metadata, the predictor kind, a model summary and the preprocessor chain.
    Inspect {
        /// The checkpoint: a local directory or a URI.
        checkpoint: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Read every file and check it against the checkpoint's manifest (sizes, checksums).
    Verify {
        /// The checkpoint: a local directory or a URI.
        checkpoint: String,
    },
    /// Copy a checkpoint between any two of: a local directory, file://, s3://, gs://, az://.
    Copy {
        /// Where it is.
        from: String,
        /// Where it goes (an existing checkpoint there is replaced; another non-empty
        /// directory is refused).
        to: String,
    },
}

#[derive(Debug, Args)]
pub(crate) struct TrainArgs {
    /// The experiment config file (YAML).
    #[arg(long)]
    pub(crate) config: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct TuneArgs {
    /// The experiment config file (YAML).
    #[arg(long, required_unless_present = "restore")]
    pub(crate) config: Option<PathBuf>,
    /// Restore the experiment at this directory and finish it (with the config saved in it,
    /// or --config for an experiment on an object store).
    #[arg(long)]
    pub(crate) restore: Option<String>,
}
