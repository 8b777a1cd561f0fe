//! Preparing a run's datasets: the preprocessor fitted once on `"train"` and applied to
//! every dataset (materialised, or per shard as it streams), a trial's own datasets and
//! preprocessor, and one shard per worker.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use air_data::{Dataset, FitStatus, Preprocessor};
use serde_json::Value;

use super::*;
use crate::{TrainError, error::Result};

#[derive(Clone)]
pub(super) struct Prepared {
    pub(super) preprocessor: Option<Arc<dyn Preprocessor>>,
    /// Transformed and materialised ([`Ingest::Materialize`]), or as given (streamed).
    pub(super) datasets: BTreeMap<String, Dataset>,
    /// The preprocessor each shard still goes through as it streams ([`Ingest::Stream`]).
    pub(super) pending: Option<Arc<dyn Preprocessor>>,
    /// The raw (not preprocessed) columns of `"train"`, recorded in checkpoints.
    pub(super) train_columns: Option<Vec<String>>,
}

impl DataParallelTrainer {
    pub(super) fn prepare(&self) -> Result<Prepared> {
        if let Some(p) = self.prepared.get() {
            return Ok(p.clone());
        }
        // Concurrent tuning trials share one preparation: the first fits and transforms, the
        // others wait for it instead of repeating the work.
        let _guard = PREPARING.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = self.prepared.get() {
            return Ok(p.clone());
        }
        let prepared = prepare_with(&self.datasets, self.preprocessor.as_ref(), self.streams())?;
        Ok(self.prepared.get_or_init(|| prepared).clone())
    }

    /// The preparation of a non-zero rank of a multi-process run, with the preprocessor rank 0
    /// chose ([`FromRank0`]).
    pub(super) fn prepare_with_fitted(
        &self,
        variant: &Variant,
        from: FromRank0,
    ) -> Result<Prepared> {
        let (trainer, variant) = match from {
            FromRank0::FitOwn => (self.clone(), variant.clone()),
            FromRank0::Fitted(p) => (
                self.with_preprocessor_only(Some(p)),
                variant.datasets_only(),
            ),
            FromRank0::None => (self.with_preprocessor_only(None), variant.datasets_only()),
        };
        if variant.preprocessor.is_none() && variant.datasets.is_none() {
            let prepared = trainer.prepare()?;
            // What `fitted_preprocessor` answers on this rank too.
            Ok(self.prepared.get_or_init(|| prepared).clone())
        } else {
            trainer.prepare_variant(&variant)
        }
    }

    fn with_preprocessor_only(&self, preprocessor: Option<Arc<dyn Preprocessor>>) -> Self {
        Self {
            preprocessor,
            prepared: Arc::new(OnceLock::new()),
            ..self.clone()
        }
    }

    /// Whether shards stream from their sources ([`Ingest`]).
    fn streams(&self) -> bool {
        match self.ingest {
            Ingest::Auto => self.process.is_some(),
            Ingest::Materialize => false,
            Ingest::Stream => true,
        }
    }

    /// The preparation for a trial that picks its own preprocessor and/or datasets, made once
    /// per distinct choice and shared by every trial making it.
    pub(super) fn prepare_variant(&self, variant: &Variant) -> Result<Prepared> {
        let key = serde_json::json!({
            "preprocessor": variant.preprocessor,
            "datasets": variant.datasets,
        })
        .to_string();
        let _guard = PREPARING.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = self
            .variants
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(p.clone());
        }
        let mut datasets = self.datasets.clone();
        for (role, source) in variant.datasets.iter().flatten() {
            let ds = match self
                .dataset_options
                .get(source)
                .or_else(|| self.datasets.get(source))
            {
                Some(ds) => ds.clone(),
                None => read_dataset(source).map_err(|e| TrainError::InvalidConfig {
                    field: "datasets",
                    value: format!("{role:?}: {source:?}"),
                    expected: format!(
                        "a dataset given to the trainer ({}) or a readable .csv/.parquet/.json                          file ({e})",
                        self.dataset_options
                            .keys()
                            .chain(self.datasets.keys())
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                })?,
            };
            datasets.insert(role.clone(), ds);
        }
        let preprocessor: Option<Arc<dyn Preprocessor>> = match &variant.preprocessor {
            None => self.preprocessor.clone(),
            Some(Value::Null) => None,
            Some(json) => Some(Arc::from(
                air_data::preprocessor_from_json(json.clone()).map_err(|e| {
                    TrainError::InvalidConfig {
                        field: "preprocessor",
                        value: json.to_string(),
                        expected: format!(
                            "a preprocessor as air_data::preprocessor_to_json writes it ({e})"
                        ),
                    }
                })?,
            )),
        };
        let prepared = prepare_with(&datasets, preprocessor.as_ref(), self.streams())?;
        self.variants
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, prepared.clone());
        Ok(prepared)
    }
}

static PREPARING: Mutex<()> = Mutex::new(());

/// A trial's own choice of preprocessor and datasets.
#[derive(Debug, Default, Clone)]
pub(super) struct Variant {
    pub(super) preprocessor: Option<Value>,
    pub(super) datasets: Option<BTreeMap<String, String>>,
}

impl Variant {
    /// The same datasets, the preprocessor left to the trainer.
    fn datasets_only(&self) -> Self {
        Self {
            preprocessor: None,
            datasets: self.datasets.clone(),
        }
    }
}

/// The preprocessor rank 0 sends the other ranks of a multi-process run.
pub(super) enum FromRank0 {
    /// Fitted by rank 0.
    Fitted(Arc<dyn Preprocessor>),
    /// None: rank 0 has none.
    None,
    /// Rank 0's could not be sent: each rank fits its own.
    FitOwn,
}

fn read_dataset(source: &str) -> std::result::Result<Dataset, String> {
    let lower = source.to_ascii_lowercase();
    let r = if lower.ends_with(".parquet") {
        Dataset::read_parquet(source)
    } else if lower.ends_with(".json") || lower.ends_with(".jsonl") {
        Dataset::read_json(source)
    } else if lower.ends_with(".csv") {
        Dataset::read_csv(source)
    } else {
        return Err("not a registered name, and no .csv/.parquet/.json extension".to_owned());
    };
    r.map_err(|e| e.to_string())
}

/// Fits `preprocessor` on `"train"` (unless already fitted), then applies it to every dataset
/// and materialises the results, or (`streamed`) leaves it to be applied to each shard.
fn prepare_with(
    datasets_in: &BTreeMap<String, Dataset>,
    preprocessor: Option<&Arc<dyn Preprocessor>>,
    streamed: bool,
) -> Result<Prepared> {
    let preprocessor = match preprocessor {
        None => None,
        Some(p)
            if p.fit_status() == FitStatus::NotFitted
                || p.fit_status() == FitStatus::PartiallyFitted =>
        {
            let train = datasets_in
                .get("train")
                .ok_or_else(|| TrainError::DatasetNotFound {
                    name: "train".to_owned(),
                    known: datasets_in.keys().cloned().collect(),
                })?;
            let mut fitted = p.clone_box();
            tracing::info!(
                preprocessor = fitted.type_name(),
                "fitting the preprocessor on \"train\""
            );
            fitted.fit(train)?;
            Some(Arc::<dyn Preprocessor>::from(fitted))
        }
        Some(p) => Some(p.clone()),
    };
    let train_columns = match datasets_in.get("train") {
        Some(ds) => Some(ds.columns()?),
        None => None,
    };
    if streamed {
        return Ok(Prepared {
            pending: preprocessor.clone(),
            preprocessor,
            datasets: datasets_in.clone(),
            train_columns,
        });
    }
    let mut datasets = BTreeMap::new();
    for (name, ds) in datasets_in {
        let ds = match &preprocessor {
            Some(p) => p.transform(ds)?,
            None => ds.clone(),
        };
        // Materialised once: every epoch of every worker (and every trial) reads memory
        // instead of re-running the read and the preprocessing.
        datasets.insert(name.clone(), Dataset::from_polars(ds.to_polars()?));
    }
    Ok(Prepared {
        preprocessor,
        datasets,
        pending: None,
        train_columns,
    })
}

impl DataParallelTrainer {
    /// One map of datasets per worker: the split ones cut into contiguous row ranges (by the
    /// untransformed rows when streaming, so a shard reads only its own rows), the others
    /// whole.
    pub(super) fn shards(&self, prepared: &Prepared) -> Result<Vec<BTreeMap<String, Dataset>>> {
        let n = self.scaling.num_workers();
        let mut per_worker = vec![BTreeMap::new(); n];
        for (name, ds) in &prepared.datasets {
            let split = match &self.datasets_to_split {
                DatasetsToSplit::All => true,
                DatasetsToSplit::Only(names) => names.contains(name),
            };
            if split && n > 1 {
                for (w, shard) in ds
                    .split(n, air_data::ShardSizes::Equal)?
                    .into_iter()
                    .enumerate()
                {
                    per_worker[w].insert(name.clone(), shard);
                }
            } else {
                for w in &mut per_worker {
                    w.insert(name.clone(), ds.clone());
                }
            }
        }
        if let Some(p) = &prepared.pending {
            for shard in per_worker.iter_mut().flat_map(BTreeMap::values_mut) {
                *shard = p.transform(shard)?;
            }
        }
        Ok(per_worker)
    }
}
