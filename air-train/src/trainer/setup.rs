//! A run's setup before its workers start: the prepared datasets, and whether it continues an
//! earlier run with the same name ([`ExistingRun`]). Across processes rank 0 decides both
//! (it alone fits the preprocessor and reads the run's directory) and sends the others the
//! fitted preprocessor and the checkpoint to resume from, so every rank starts the same way.

use std::sync::Arc;

use air_checkpoint::Checkpoint;
use air_data::{preprocessor_from_json, preprocessor_to_json};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    prepare::{FromRank0, Variant},
    *,
};
use crate::{
    Collective, TrainError, cluster::TcpCollective, collective::broadcast_bytes, error::Result,
    run_dir::RunDir,
};

/// What the workers start from.
pub(super) struct Setup {
    pub(super) prepared: Prepared,
    /// The earlier run this one continues, if any.
    pub(super) continued: Option<Continued>,
}

/// An earlier run with the same name, continued ([`ExistingRun::Resume`]).
pub(super) struct Continued {
    /// Its newest complete checkpoint (`None`: it had none, so the run starts over).
    pub(super) checkpoint: Option<Checkpoint>,
}

/// What rank 0 sends the other ranks.
#[derive(Serialize, Deserialize)]
struct Message {
    /// The fitted preprocessor; `None` with `own_fit` when it cannot be written as JSON.
    preprocessor: Option<Value>,
    own_fit: bool,
    /// `Some` when the run continues an earlier one: the URI or path of its checkpoint, if any.
    continued: Option<Option<String>>,
}

impl DataParallelTrainer {
    /// Prepares the datasets and looks for an earlier run at `storage_path/name` (plain runs
    /// only: a tuner restores its own trials). Across processes (`cluster`), rank 0 does both
    /// and the others receive the outcome; an error on rank 0 aborts the others with it.
    pub(super) fn setup(
        &self,
        variant: &Variant,
        run_dir: Option<(&str, &str)>,
        cluster: Option<&TcpCollective>,
    ) -> Result<Setup> {
        let on_rank_0 = || -> Result<Setup> {
            let prepared = if variant.preprocessor.is_none() && variant.datasets.is_none() {
                self.prepare()?
            } else {
                self.prepare_variant(variant)?
            };
            let continued = match run_dir {
                Some((storage_path, name)) => self.existing_run(storage_path, name)?,
                None => None,
            };
            Ok(Setup {
                prepared,
                continued,
            })
        };
        let Some(cluster) = cluster else {
            return on_rank_0();
        };
        let rank = cluster.rank();
        if rank != 0 {
            return self.setup_from_rank_0(variant, cluster);
        }
        let setup = match on_rank_0() {
            Ok(s) => s,
            Err(e) => {
                cluster.abort(&format!("rank 0 could not set the run up: {e}"));
                return Err(e);
            }
        };
        let preprocessor = match &setup.prepared.preprocessor {
            None => None,
            Some(p) => match preprocessor_to_json(p.as_ref()) {
                Ok(json) => Some(json),
                Err(e) => {
                    tracing::warn!(
                        "the fitted preprocessor cannot be sent to the other ranks ({e}); each \
                         fits its own copy on \"train\""
                    );
                    None
                }
            },
        };
        let message = Message {
            own_fit: setup.prepared.preprocessor.is_some() && preprocessor.is_none(),
            preprocessor,
            continued: setup.continued.as_ref().map(|c| {
                c.checkpoint
                    .as_ref()
                    .and_then(|k| k.uri().map(str::to_owned).or_else(|| path_of(k)))
            }),
        };
        let bytes = serde_json::to_vec(&message).unwrap_or_default();
        broadcast_bytes(cluster, rank, 0, &bytes)?;
        Ok(setup)
    }

    fn setup_from_rank_0(&self, variant: &Variant, cluster: &TcpCollective) -> Result<Setup> {
        let bytes = broadcast_bytes(cluster, cluster.rank(), 0, &[])?;
        let message: Message = serde_json::from_slice(&bytes).map_err(|e| {
            TrainError::Collective(format!("rank 0's setup message is unreadable: {e}"))
        })?;
        let from = match message.preprocessor {
            Some(json) => FromRank0::Fitted(Arc::from(preprocessor_from_json(json)?)),
            None if message.own_fit => FromRank0::FitOwn,
            None => FromRank0::None,
        };
        Ok(Setup {
            prepared: self.prepare_with_fitted(variant, from)?,
            continued: continued(message.continued, &self.storage_options)?,
        })
    }

    /// The earlier run at `storage_path/name`, if its directory holds reports or checkpoints:
    /// an error unless the trainer resumes such runs.
    fn existing_run(&self, storage_path: &str, name: &str) -> Result<Option<Continued>> {
        let dir = RunDir::at(
            &format!("{}/{name}", storage_path.trim_end_matches('/')),
            &self.storage_options,
        )?;
        let results = dir.exists("result.json")?;
        // A local directory that does not exist yet lists nothing.
        let checkpoints = if dir.is_local() && !std::path::Path::new(&dir.path()).exists() {
            Vec::new()
        } else {
            dir.checkpoint_names()?
        };
        if !results && checkpoints.is_empty() {
            return Ok(None);
        }
        match self.existing_run {
            ExistingRun::Fail => Err(TrainError::RunExists {
                path: dir.path(),
                holds: describe_existing(results, &checkpoints),
            }),
            ExistingRun::Resume => {
                let checkpoint = dir.newest_checkpoint();
                tracing::info!(
                    run = %dir.path(),
                    from = ?checkpoint.as_ref().and_then(path_of),
                    "continuing the run already in the directory"
                );
                Ok(Some(Continued { checkpoint }))
            }
        }
    }
}

fn describe_existing(results: bool, checkpoints: &[String]) -> String {
    let mut parts = Vec::new();
    if results {
        parts.push("result.json".to_owned());
    }
    match checkpoints {
        [] => {}
        [one] => parts.push(one.clone()),
        [.., newest] => parts.push(format!(
            "{} checkpoints, the newest {newest}",
            checkpoints.len()
        )),
    }
    parts.join(", ")
}

fn path_of(checkpoint: &Checkpoint) -> Option<String> {
    checkpoint.path().map(|p| p.display().to_string())
}

fn continued(
    message: Option<Option<String>>,
    options: &StorageOptions,
) -> Result<Option<Continued>> {
    Ok(match message {
        None => None,
        Some(None) => Some(Continued { checkpoint: None }),
        Some(Some(location)) => Some(Continued {
            checkpoint: Some(Checkpoint::from_uri_with(&location, options)?),
        }),
    })
}
