//! Runs stored at an `s3://` URI on a real S3-compatible server (moto on 127.0.0.1).

#[path = "../../air-checkpoint/tests/common/mod.rs"]
mod s3_harness;

use air_checkpoint::{
    Checkpoint,
    storage::{self, Resolved},
};
use air_train::{
    CheckpointConfig, DataParallelTrainer, RunConfig, ScalingConfig, Session, TrainError, Trainer,
    Verbosity,
};
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use serde_json::{Value, json};
use std::num::NonZeroUsize;

#[test]
fn run_files_checkpoints_and_retention_on_s3() {
    let Some(opts) = s3_harness::s3() else { return };
    s3_harness::create_bucket(&opts, "air-train");
    let trainer = DataParallelTrainer::new(
        |_: &Value, s: &mut Session| -> Result<(), TrainError> {
            for step in 0..4u32 {
                let mut c = Checkpoint::new();
                c.put_json("step.json", &step)?;
                s.report(json!({"step": step}), Some(c))?;
            }
            Ok(())
        },
        ScalingConfig::new(NonZeroUsize::new(2).unwrap()),
        RunConfig::new("s3://air-train/results")
            .with_name("remote")
            .with_verbose(Verbosity::Silent)
            .with_checkpoint_config(
                CheckpointConfig::new().with_num_to_keep(NonZeroUsize::new(2).unwrap()),
            ),
    )
    .with_storage_options(opts.clone());
    let r = trainer.fit().unwrap().into_result().unwrap();
    assert_eq!(r.path, "s3://air-train/results/remote");
    let latest = r.checkpoint.unwrap();
    assert_eq!(
        latest.uri(),
        Some("s3://air-train/results/remote/checkpoint_000003")
    );
    assert_eq!(latest.get_json::<u32>("step.json").unwrap(), 3);
    let Resolved::Store(loc) = storage::resolve("s3://air-train/results/remote", &opts).unwrap()
    else {
        panic!("an object store")
    };
    let names: Vec<String> =
        storage::block_on(loc.store.list(Some(&loc.prefix)).try_collect::<Vec<_>>())
            .unwrap()
            .into_iter()
            .filter_map(|o| loc.relative_name(&o.location))
            .collect();
    let mut tops: Vec<&str> = names.iter().map(|n| n.split('/').next().unwrap()).collect();
    tops.sort_unstable();
    tops.dedup();
    assert_eq!(
        tops,
        [
            "checkpoint_000002",
            "checkpoint_000003",
            "params.json",
            "progress.csv",
            "result.json"
        ]
    );
    let lines = storage::block_on(async {
        let bytes = loc
            .store
            .get(&loc.child("result.json"))
            .await?
            .bytes()
            .await?;
        Ok::<_, object_store::Error>(String::from_utf8(bytes.to_vec()).unwrap())
    })
    .unwrap();
    assert_eq!(lines.lines().count(), 4);
}
