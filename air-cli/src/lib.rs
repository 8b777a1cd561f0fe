//! # air-cli
//!
//! The `air` command: what a platform engineer or data scientist does with AIR without writing
//! a program.
//!
//! ```text
//! air serve CHECKPOINT [--port 8000] [--replicas 2] [--max-batch-size 32 --batch-wait-ms 5]
//! air serve --config serve.yaml
//! air predict CHECKPOINT INPUT OUTPUT [--batch-size 4096] [--workers 2] [--keep id]
//! air checkpoint inspect|verify CHECKPOINT
//! air checkpoint copy FROM TO
//! air train --config experiment.yaml
//! air tune --config experiment.yaml | --restore EXPERIMENT_DIR
//! ```
//!
//! A checkpoint is a local directory or a URI (`s3://`, `gs://`, `az://`, `file://`). Which
//! predictor reads it is the kind its metadata records (`predictor_kind`, written by every
//! trainer), else the kind whose model file it holds; [`Registry`] maps kinds to predictors.
//! A program with models of its own (a burn architecture) builds its own `air` with them
//! registered and [`main_with`].
//!
//! Logs go to stderr, filtered by `AIR_LOG` (tracing's `EnvFilter` syntax; `info` by default).
//! Progress bars are drawn only when stderr is a terminal.

mod args;
mod checkpoint;
mod ensemble;
mod error;
mod experiment;
mod predict;
mod registry;
mod serve;
pub mod serve_config;

use std::{ffi::OsString, io::Write, process::ExitCode};

use clap::Parser;

pub use error::{CliError, Result};
pub use registry::{Registry, Summarize};

use args::{CheckpointCommand, Cli, Command};
use serve_config::{
    DeploymentSpec, Deployments, HttpOptions, Pipelines, RoutePrefix, Seconds, ServeFile,
};

/// The environment variable holding the log filter.
pub const LOG_VARIABLE: &str = "AIR_LOG";

/// Runs the `air` command line of this process with `registry`'s predictor kinds, printing
/// errors on stderr: exit status 0 on success, 2 for a bad argument, config file or
/// environment variable, 1 for a failure while running.
pub fn main_with(registry: Registry) -> ExitCode {
    let cli = match Cli::try_parse_from(std::env::args_os()) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let outcome = init_logging().and_then(|()| run(cli, &registry));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(&e);
            ExitCode::from(e.exit_code())
        }
    }
}

/// Runs one command line (`args` starts with the program name) with `registry`.
pub fn run_args(args: impl IntoIterator<Item = OsString>, registry: &Registry) -> Result<()> {
    let cli = Cli::try_parse_from(args).map_err(|e| CliError::Argument {
        option: "command line",
        value: e.kind().to_string(),
        expected: e.to_string(),
    })?;
    run(cli, registry)
}

/// Prints an error and every cause not already in its text.
fn report(e: &CliError) {
    let mut text = e.to_string();
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "error: {text}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let line = s.to_string();
        if !text.contains(&line) {
            let _ = writeln!(stderr, "  caused by: {line}");
            text.push_str(&line);
        }
        source = s.source();
    }
}

fn init_logging() -> Result<()> {
    let filter = match std::env::var(LOG_VARIABLE) {
        Ok(value) => {
            tracing_subscriber::EnvFilter::try_new(&value).map_err(|e| CliError::Argument {
                option: LOG_VARIABLE,
                value,
                expected: format!("a log filter such as `info` or `warn,air_serve=debug` ({e})"),
            })?
        }
        Err(_) => tracing_subscriber::EnvFilter::new("info"),
    };
    // A second call (tests running several commands in one process) keeps the first.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    Ok(())
}

fn run(cli: Cli, registry: &Registry) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let io = |source| CliError::Io {
        action: "writing to",
        path: "stdout".to_owned(),
        source,
    };
    match cli.command {
        Command::Serve(a) => {
            let file = match &a.config {
                Some(path) => {
                    let mut file = ServeFile::from_file(&path.display().to_string())?;
                    // Command-line HTTP options win over the file's when given.
                    merge_http(&mut file.http_options, &a)?;
                    file
                }
                None => single(&a)?,
            };
            serve::run(registry, &file, &mut out)
        }
        Command::Predict(a) => {
            let job = predict::PredictJob {
                checkpoint: a.checkpoint,
                input: a.input,
                output: a.output,
                input_format: a.input_format.map(Into::into),
                output_format: a.output_format.map(Into::into),
                kind: a.kind,
                batch_size: a.batch_size,
                workers: a.workers,
                keep: a.keep,
            };
            let rows = predict::run(registry, &job)?;
            writeln!(out, "wrote {rows} predictions to {}", job.output).map_err(io)
        }
        Command::Checkpoint(CheckpointCommand::Inspect { checkpoint, json }) => {
            let c = checkpoint::open(&checkpoint)?;
            let d = checkpoint::describe(registry, &checkpoint, &c);
            if json {
                writeln!(out, "{d:#}").map_err(io)
            } else {
                checkpoint::print_text(&mut out, &d).map_err(io)
            }
        }
        Command::Checkpoint(CheckpointCommand::Verify { checkpoint }) => {
            let n = checkpoint::verify(&checkpoint)?;
            writeln!(out, "ok: {n} files match the manifest of {checkpoint}").map_err(io)
        }
        Command::Checkpoint(CheckpointCommand::Copy { from, to }) => {
            let (files, bytes) = checkpoint::copy(&from, &to)?;
            writeln!(
                out,
                "copied {files} files ({bytes} bytes) from {from} to {to}"
            )
            .map_err(io)
        }
        Command::Train(a) => {
            let (file, _) = experiment::ExperimentFile::from_file(&a.config.display().to_string())?;
            let result = experiment::train(&file)?;
            let result = result.into_result()?;
            let metrics = serde_json::Value::Object(result.metrics.clone());
            writeln!(out, "run {}", result.path).map_err(io)?;
            writeln!(out, "final metrics: {metrics}").map_err(io)?;
            if let Some(c) = &result.checkpoint {
                writeln!(out, "checkpoint: {}", location(c)).map_err(io)?;
            }
            Ok(())
        }
        Command::Tune(a) => {
            let config = match (&a.config, &a.restore) {
                (Some(path), _) => path.display().to_string(),
                (None, Some(dir)) => {
                    format!("{}/{}", dir.trim_end_matches('/'), experiment::SAVED_CONFIG)
                }
                (None, None) => unreachable!("clap requires --config or --restore"),
            };
            let (file, text) = experiment::ExperimentFile::from_file(&config)?;
            let grid = experiment::tune(&file, &text, a.restore.as_deref())?;
            writeln!(
                out,
                "experiment {}: {} trials, {} errors",
                grid.experiment_path(),
                grid.len(),
                grid.num_errors()
            )
            .map_err(io)?;
            let best = grid.best_result()?;
            writeln!(out, "best trial {}: config {}", best.trial_id, best.config).map_err(io)?;
            writeln!(
                out,
                "best metrics: {}",
                serde_json::Value::Object(best.metrics.clone())
            )
            .map_err(io)?;
            if let Some(c) = &best.checkpoint {
                writeln!(out, "best checkpoint: {}", location(c)).map_err(io)?;
            }
            Ok(())
        }
        Command::Kinds => {
            for k in registry.kinds() {
                writeln!(out, "{k}").map_err(io)?;
            }
            Ok(())
        }
    }
}

/// Where a checkpoint is: its URI or directory (empty for one in memory).
fn location(c: &air_checkpoint::Checkpoint) -> String {
    c.uri()
        .map(str::to_owned)
        .or_else(|| c.path().map(|p| p.display().to_string()))
        .unwrap_or_default()
}

fn seconds(option: &'static str, s: f64) -> Result<Seconds> {
    Seconds::try_from(s).map_err(|expected| CliError::Argument {
        option,
        value: s.to_string(),
        expected,
    })
}

fn merge_http(http: &mut HttpOptions, a: &args::ServeArgs) -> Result<()> {
    // Only options given explicitly override; clap's defaults for host and port apply when the
    // file has none.
    if http.host.is_none() {
        http.host = Some(a.host);
    }
    if http.port.is_none() {
        http.port = Some(a.port);
    }
    if a.http_threads.is_some() {
        http.http_threads = a.http_threads;
    }
    if let Some(s) = a.shutdown_timeout_s {
        http.shutdown_timeout_s = Some(seconds("--shutdown-timeout-s", s)?);
    }
    Ok(())
}

/// The serve file of `air serve CHECKPOINT ...`: one deployment.
fn single(a: &args::ServeArgs) -> Result<ServeFile> {
    let checkpoint = a.checkpoint.clone().unwrap_or_default();
    let mut spec = DeploymentSpec::new(&a.name, &checkpoint);
    spec.name =
        serve_config::Name::try_from(a.name.clone()).map_err(|expected| CliError::Argument {
            option: "--name",
            value: a.name.clone(),
            expected,
        })?;
    spec.route_prefix = Some(RoutePrefix::try_from(a.route_prefix.clone()).map_err(
        |expected| CliError::Argument {
            option: "--route-prefix",
            value: a.route_prefix.clone(),
            expected,
        },
    )?);
    spec.kind = a.kind.clone();
    spec.num_replicas = a.replicas;
    spec.max_batch_size = a.max_batch_size;
    if let Some(ms) = a.batch_wait_ms {
        spec.batch_wait_timeout_s = Some(seconds("--batch-wait-ms", ms / 1000.0)?);
    }
    spec.max_concurrent_queries = a.max_concurrent_queries;
    if let Some(s) = a.request_timeout_s {
        spec.request_timeout_s = Some(seconds("--request-timeout-s", s)?);
    }
    let http = HttpOptions {
        host: Some(a.host),
        port: Some(a.port),
        http_threads: a.http_threads,
        shutdown_timeout_s: a
            .shutdown_timeout_s
            .map(|s| seconds("--shutdown-timeout-s", s))
            .transpose()?,
        ..HttpOptions::default()
    };
    Ok(ServeFile {
        http_options: http,
        deployments: Deployments(vec![spec]),
        pipelines: Pipelines::default(),
    })
}
