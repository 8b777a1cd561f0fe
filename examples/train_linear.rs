//! Ray Train's torch trainer example, in Rust: 200 items `{x, y = 2x + 1}`, a
//! `Linear(1, 15) → ReLU → Linear(15, 1)` model trained with MSE on 3 data-parallel workers,
//! each epoch reported with a checkpoint; then predictions from the last checkpoint.
//!
//! ```text
//! cargo run --release --example train_linear
//! ```
//!
//! Ray's version feeds raw `x` (0..200) to SGD with lr 0.1, which diverges; here a
//! `MinMaxScaler` (saved in the checkpoint, so prediction scales the same way) puts `x` in
//! [0, 1] and Adam fits the line. Doubles as a test (`cargo test --example train_linear`).

use air::{
    checkpoint::Checkpoint,
    data::{Dataset, MinMaxScaler, polars::prelude::*},
    train::{
        CheckpointConfig, DataParallelTrainer, FromCheckpoint, Predictor, RunConfig, ScalingConfig,
        Session, TrainError, Trainer, Verbosity,
        burn::{Backend, BurnPredictor, ModelConfig, save_burn_model},
        burn::{
            module::Module,
            nn::{
                Linear, LinearConfig, Relu,
                loss::{MseLoss, Reduction},
            },
            optim::{AdamConfig, GradientsParams, Optimizer},
            tensor::{Tensor, TensorData, backend::Backend as BurnBackend},
        },
    },
};
use std::num::NonZeroUsize;
// burn's derive macros name `burn::...`: bring the re-exported crate into scope under that name.
use air::train::burn;
use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct NetConfig {
    hidden: usize,
}

#[derive(Module, Debug)]
struct Net<B: BurnBackend> {
    l1: Linear<B>,
    l2: Linear<B>,
    act: Relu,
}

impl ModelConfig for NetConfig {
    type Model = Net<Backend>;

    fn init(&self, device: &burn::DispatchDevice) -> Net<Backend> {
        Net {
            l1: LinearConfig::new(1, self.hidden).init(device),
            l2: LinearConfig::new(self.hidden, 1).init(device),
            act: Relu::new(),
        }
    }

    fn forward(model: &Net<Backend>, x: Tensor<Backend, 2>) -> Tensor<Backend, 2> {
        model.l2.forward(model.act.forward(model.l1.forward(x)))
    }
}

fn train_loop(config: &Value, session: &mut Session) -> Result<(), TrainError> {
    let epochs = config["epochs"].as_u64().unwrap_or(3);
    let batch = config["batch_size"].as_u64().unwrap_or(32) as usize;
    let lr = config["lr"].as_f64().unwrap_or(0.1);
    let net = NetConfig { hidden: 15 };
    let device = session.training_device()?;
    let mut model = session.sync_model(net.init(&device))?;
    let mut optim = AdamConfig::new().init();
    let shard = session.get_dataset_shard("train")?.to_polars()?;
    let x = air::data::to_f32_vector(&shard, "x")?;
    let y = air::data::to_f32_vector(&shard, "y")?;
    for epoch in 0..epochs {
        let mut total = 0.0;
        for start in (0..x.len()).step_by(batch) {
            let end = (start + batch).min(x.len());
            let input = Tensor::<Backend, 2>::from_data(
                TensorData::new(x[start..end].to_vec(), [end - start, 1]),
                &device,
            );
            let target = Tensor::<Backend, 2>::from_data(
                TensorData::new(y[start..end].to_vec(), [end - start, 1]),
                &device,
            );
            let loss =
                MseLoss::new().forward(NetConfig::forward(&model, input), target, Reduction::Mean);
            total += loss.clone().into_scalar() * (end - start) as f32;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            let grads = session.sync_gradients(&model, grads)?;
            model = optim.step(lr, model, grads);
        }
        let mut checkpoint = Checkpoint::new();
        save_burn_model(&net, &model, &mut checkpoint)?;
        session.report(
            json!({"epoch": epoch, "loss": total / x.len() as f32}),
            Some(checkpoint),
        )?;
    }
    Ok(())
}

/// Trains and returns the predictions for x = 50 and x = 150.
fn run(storage: &str, epochs: u64) -> anyhow::Result<Vec<f32>> {
    #[derive(Serialize)]
    struct Item {
        x: f64,
        y: f64,
    }
    let items: Vec<Item> = (0..200)
        .map(|x| Item {
            x: f64::from(x),
            y: 2.0f64.mul_add(f64::from(x), 1.0),
        })
        .collect();
    let trainer = DataParallelTrainer::new(
        train_loop,
        ScalingConfig::new(NonZeroUsize::new(3).unwrap()),
        RunConfig::new(storage)
            .with_name("linear")
            .with_checkpoint_config(
                CheckpointConfig::new().with_num_to_keep(NonZeroUsize::new(2).unwrap()),
            )
            .with_verbose(Verbosity::Progress),
    )
    .with_train_loop_config(json!({"epochs": epochs, "batch_size": 32, "lr": 0.05}))
    .with_dataset(
        "train",
        Dataset::from_items(&items)?.random_shuffle(Some(0)),
    )
    .with_preprocessor(MinMaxScaler::new(["x"]));
    let result = trainer.fit()?.into_result()?;
    println!("Last result: {}", Value::Object(result.metrics.clone()));
    let checkpoint = result.checkpoint.context("a checkpoint")?;
    let predictor =
        BurnPredictor::<NetConfig>::from_checkpoint(&checkpoint)?.with_feature_columns(&["x"]);
    let out = predictor.predict(df!("x" => [50.0, 150.0])?)?;
    let p: Vec<f32> = out
        .column("predictions")?
        .f32()?
        .into_no_null_iter()
        .collect();
    println!("predictions for x = 50, 150: {p:?} (true 101, 301)");
    Ok(p)
}

#[cfg_attr(test, allow(dead_code))]
fn main() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join("air_results");
    run(&dir.display().to_string(), 200)?;
    Ok(())
}

#[test]
fn learns_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = run(dir.path().to_str().unwrap(), 200).unwrap();
    for (got, want) in p.iter().zip([101.0f32, 301.0]) {
        assert!((got - want).abs() / want < 0.05, "{got} vs {want}");
    }
}
