//! Helpers shared by the serving tests: a runtime and HTTP client, servers on 127.0.0.1, the
//! breast cancer GBDT checkpoints, and predictors that count, gate or echo their batches.

#![allow(dead_code, unreachable_pub)]

use std::num::NonZeroUsize;
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use air_checkpoint::Checkpoint;
use air_data::{Dataset, StandardScaler, polars::prelude::*};
use air_serve::{
    DeploymentConfig, DeploymentHandle, PredictorDeployment, ServeConfig, Server, ServerHandle,
};
use air_train::{
    Predictor, RunConfig, ScalingConfig, Trainer, Verbosity,
    gbdt::{GbdtParams, GbdtTrainer, Objective},
};
use serde_json::Value;

pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

pub fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(reqwest::Client::new)
}

/// POSTs `body` and returns the status and the JSON answer.
pub async fn post_async(url: String, body: String) -> (u16, Value) {
    let r = client().post(url).body(body).send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

pub fn post(url: &str, body: &str) -> (u16, Value) {
    runtime().block_on(post_async(url.to_owned(), body.to_owned()))
}

pub fn get(url: &str) -> (u16, String) {
    runtime().block_on(async {
        let r = client().get(url).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    })
}

pub fn serve(deployments: Vec<PredictorDeployment>) -> ServerHandle {
    serve_with(ServeConfig::new().with_port(0), deployments)
}

/// A server with `config` (its port should be 0) and `deployments`, started.
pub fn serve_with(config: ServeConfig, deployments: Vec<PredictorDeployment>) -> ServerHandle {
    let mut server = Server::new(config);
    for d in deployments {
        server = server.with_deployment(d).unwrap();
    }
    server.start().unwrap()
}

pub fn frame_of(name: &str, values: Series) -> DataFrame {
    DataFrame::new(
        values.len(),
        vec![values.with_name(name.into()).into_column()],
    )
    .unwrap()
}

pub fn polars(e: PolarsError) -> air_train::TrainError {
    air_train::TrainError::model("test predictor", e)
}

/// Answers every row with the number of rows in its predictor call.
#[derive(Debug)]
pub struct BatchSize;

impl Predictor for BatchSize {
    fn predict(&self, batch: DataFrame) -> air_train::Result<DataFrame> {
        let n = batch.height() as i64;
        Ok(frame_of(
            "predictions",
            Series::new("".into(), vec![n; batch.height()]),
        ))
    }
}

pub fn breast_cancer() -> Dataset {
    Dataset::read_csv(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/data/breast_cancer.csv"
    ))
    .unwrap()
}

/// A GBDT trained on the breast cancer data (5 rounds), cached in memory.
pub fn gbdt_checkpoint() -> Checkpoint {
    static CKPT: OnceLock<Checkpoint> = OnceLock::new();
    CKPT.get_or_init(|| train_gbdt(None)).clone()
}

/// The same with a `StandardScaler` on `mean radius` and `mean texture` saved in it.
pub fn scaled_gbdt_checkpoint() -> Checkpoint {
    static CKPT: OnceLock<Checkpoint> = OnceLock::new();
    CKPT.get_or_init(|| train_gbdt(Some(StandardScaler::new(["mean radius", "mean texture"]))))
        .clone()
}

fn train_gbdt(scaler: Option<StandardScaler>) -> Checkpoint {
    train_in_memory(
        GbdtParams::new(Objective::BinaryLogistic),
        5,
        breast_cancer(),
        scaler,
    )
}

/// A GBDT of `params` trained `rounds` rounds on `data` (label `target`, `scaler` saved as
/// its preprocessor), its checkpoint held in memory.
pub fn train_in_memory(
    params: GbdtParams,
    rounds: usize,
    data: Dataset,
    scaler: Option<StandardScaler>,
) -> Checkpoint {
    let dir = tempfile::tempdir().unwrap();
    let mut trainer = GbdtTrainer::new(
        "target",
        params,
        ScalingConfig::new(NonZeroUsize::MIN),
        RunConfig::new(dir.path().to_str().unwrap()).with_verbose(Verbosity::Silent),
    )
    .unwrap()
    .with_num_boost_round(rounds)
    .with_dataset("train", data);
    if let Some(scaler) = scaler {
        trainer = trainer.with_preprocessor(scaler);
    }
    let ckpt = trainer
        .fit()
        .unwrap()
        .into_result()
        .unwrap()
        .checkpoint
        .unwrap();
    // In memory, so that it outlives the run's temporary directory.
    let mut in_memory = Checkpoint::from_dict(ckpt.to_dict().unwrap()).unwrap();
    in_memory.set_metadata(ckpt.metadata().clone());
    in_memory
}

/// Holds every call until opened; counts calls.
#[derive(Debug, Default)]
pub struct Gate {
    open: Mutex<bool>,
    changed: Condvar,
}

impl Gate {
    pub fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.changed.notify_all();
    }

    /// Returns once the gate is open.
    pub fn wait(&self) {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.changed.wait(open).unwrap();
        }
    }
}

#[derive(Debug)]
pub struct Gated(pub Arc<Gate>);

impl Predictor for Gated {
    fn predict(&self, batch: DataFrame) -> air_train::Result<DataFrame> {
        self.0.wait();
        BatchSize.predict(batch)
    }
}

pub fn gated(config: DeploymentConfig) -> (PredictorDeployment, Arc<Gate>) {
    let gate = Arc::new(Gate::default());
    let g = Arc::clone(&gate);
    let d = PredictorDeployment::new(config, Checkpoint::new(), move |_: &Checkpoint| {
        Ok(Gated(Arc::clone(&g)))
    });
    (d, gate)
}

/// Waits until the deployment has `n` requests in flight.
pub fn wait_in_flight(handle: &DeploymentHandle, n: usize) {
    while handle.stats().in_flight < n {
        std::thread::yield_now();
    }
}
