//! `air predict`: files in, predictions out, streamed through a `BatchPredictor` in bounded
//! memory.

use std::{num::NonZeroUsize, path::Path};

use air_checkpoint::progress::Progress;
use air_data::{
    CsvOptions, Dataset, FileFormat, StorageOptions, polars::prelude::*, write_batches,
};
use air_serve::{BatchPredictor, PredictOptions};

use crate::{
    error::{CliError, Result},
    registry::Registry,
};

/// What to predict, from where to where.
#[derive(Debug, Clone)]
pub(crate) struct PredictJob {
    pub(crate) checkpoint: String,
    pub(crate) input: String,
    pub(crate) output: String,
    pub(crate) input_format: Option<FileFormat>,
    pub(crate) output_format: Option<FileFormat>,
    pub(crate) kind: Option<String>,
    pub(crate) batch_size: NonZeroUsize,
    pub(crate) workers: NonZeroUsize,
    pub(crate) keep: Vec<String>,
}

/// The format of a location: its extension, else (a local directory) the extension of the
/// first data file in it.
fn format_of(location: &str, option: &'static str) -> Result<FileFormat> {
    let found = FileFormat::from_name(location.trim_end_matches('/')).or_else(|| {
        let path = air_checkpoint::storage::local_path(location)?;
        (option == "INPUT" && path.is_dir())
            .then(|| first_format(&path))
            .flatten()
    });
    found.ok_or_else(|| CliError::Argument {
        option,
        value: location.to_owned(),
        expected: "a name ending in .parquet, .csv or .json(l), a directory of such files, or \
                   the format given with --input-format/--output-format"
            .to_owned(),
    })
}

fn first_format(dir: &Path) -> Option<FileFormat> {
    let mut entries: Vec<_> = std::fs::read_dir(dir).ok()?.flatten().collect();
    entries.sort_by_key(std::fs::DirEntry::file_name);
    entries.iter().find_map(|e| {
        let path = e.path();
        if path.is_dir() {
            first_format(&path)
        } else {
            FileFormat::from_name(&e.file_name().to_string_lossy())
        }
    })
}

/// Runs the job; the rows written.
pub(crate) fn run(registry: &Registry, job: &PredictJob) -> Result<usize> {
    let input_format = match job.input_format {
        Some(f) => f,
        None => format_of(&job.input, "INPUT")?,
    };
    let output_format = match job.output_format {
        Some(f) => f,
        None => format_of(&job.output, "OUTPUT")?,
    };
    let (ckpt, factory) = registry.open(&job.checkpoint, job.kind.as_deref())?;
    let dataset = Dataset::read_files(&job.input, input_format, CsvOptions::new())?;
    let input_schema = dataset.schema()?;
    for column in &job.keep {
        if input_schema.get(column).is_none() {
            return Err(CliError::Argument {
                option: "--keep",
                value: column.clone(),
                expected: format!(
                    "one of the input's columns: {}",
                    input_schema
                        .iter_names()
                        .map(|n| n.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
    }
    // Parquet knows its row count from the footers; other formats would need a full pass.
    let total = match input_format {
        FileFormat::Parquet => dataset.count().ok(),
        _ => None,
    };
    let options = PredictOptions::new()
        .with_batch_size(job.batch_size)
        .with_scoring_workers(NonZeroUsize::MIN, job.workers)
        .with_keep_columns(&job.keep);
    let predictor = BatchPredictor::from_checkpoint(ckpt, factory);
    let mut stream = predictor.predict_batches(&dataset, &options)?.peekable();
    let schema = match stream.peek() {
        Some(Ok(first)) => first.schema().as_ref().clone(),
        Some(Err(_)) => {
            return Err(stream
                .next()
                .and_then(Result::err)
                .expect("peeked an error")
                .into());
        }
        // No rows: the file still gets the columns a prediction would have had.
        None => {
            let mut schema = Schema::default();
            schema.insert(air_train::PREDICTIONS.into(), DataType::Float64);
            for k in &job.keep {
                if let Some(dtype) = input_schema.get(k) {
                    schema.insert(k.as_str().into(), dtype.clone());
                }
            }
            schema
        }
    };
    let progress = Progress::rows("predicting", total.map(|n| n as u64));
    // The writer takes data errors; a prediction error is kept here, the write stopped with a
    // stand-in, and the prediction error returned as it was.
    let failed = std::cell::RefCell::new(None);
    let batches = stream.map(|b| match b {
        Ok(df) => Ok(df),
        Err(e) => {
            *failed.borrow_mut() = Some(e);
            Err(air_data::DataError::InvalidArgument {
                name: "batch",
                value: "a failed prediction".to_owned(),
                expected: "predictions".to_owned(),
            })
        }
    });
    let written = write_batches(
        batches,
        &schema,
        &job.output,
        output_format,
        &StorageOptions::new(),
        &progress,
    );
    if let Some(e) = failed.into_inner() {
        return Err(e.into());
    }
    Ok(written?)
}
