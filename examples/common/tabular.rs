//! The tabular starter's model and train loop, shared by the `train_tabular` and
//! `tune_tabular` examples: an MLP 30→16→16→1 with binary cross-entropy, data parallel, a loss
//! and a checkpoint every epoch.

use air::{
    checkpoint::Checkpoint,
    train::{
        Session, TrainError,
        burn::{Backend, ModelConfig, save_burn_model},
        burn::{
            module::Module,
            nn::{Linear, LinearConfig, Relu},
            optim::{AdamConfig, GradientsParams, Optimizer},
            tensor::{Tensor, TensorData, activation::sigmoid, backend::Backend as BurnBackend},
        },
    },
};
// burn's derive macros name `burn::...`: bring the re-exported crate into scope under that name.
use air::train::burn;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The MLP's architecture; saved in every checkpoint so the predictor can rebuild it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct MlpConfig {
    pub(crate) num_features: usize,
    pub(crate) hidden: usize,
}

#[derive(Module, Debug)]
pub(crate) struct Mlp<B: BurnBackend> {
    l1: Linear<B>,
    l2: Linear<B>,
    l3: Linear<B>,
    act: Relu,
}

impl<B: BurnBackend> Mlp<B> {
    fn logits(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let x = self.act.forward(self.l1.forward(x));
        let x = self.act.forward(self.l2.forward(x));
        self.l3.forward(x)
    }
}

impl ModelConfig for MlpConfig {
    type Model = Mlp<Backend>;

    fn init(&self, device: &burn::DispatchDevice) -> Mlp<Backend> {
        Mlp {
            l1: LinearConfig::new(self.num_features, self.hidden).init(device),
            l2: LinearConfig::new(self.hidden, self.hidden).init(device),
            l3: LinearConfig::new(self.hidden, 1).init(device),
            act: Relu::new(),
        }
    }

    fn forward(model: &Mlp<Backend>, input: Tensor<Backend, 2>) -> Tensor<Backend, 2> {
        sigmoid(model.logits(input))
    }
}

/// Binary cross-entropy on logits, in the numerically stable form
/// `max(x, 0) - x·y + log(1 + e^-|x|)`. (burn 0.21's `BinaryCrossEntropyLoss` takes integer
/// targets, and on the dispatch backend their conversion to floats drops the autodiff wrapper.)
fn bce_with_logits(logits: Tensor<Backend, 2>, targets: Tensor<Backend, 2>) -> Tensor<Backend, 1> {
    let positive = logits.clone().clamp_min(0.0);
    let log_term = logits.clone().abs().neg().exp().log1p();
    (positive - logits * targets + log_term).mean()
}

pub(crate) fn train_loop(config: &Value, session: &mut Session) -> Result<(), TrainError> {
    let batch_size = config["batch_size"].as_u64().unwrap_or(32) as usize;
    let epochs = config["num_epochs"].as_u64().unwrap_or(20);
    let lr = config["lr"].as_f64().unwrap_or(1e-2);
    let model_config = MlpConfig {
        num_features: config["num_features"].as_u64().unwrap_or(30) as usize,
        hidden: 16,
    };
    let device = session.training_device()?;
    // Rank 0's weights, drawn from burn's generator seeded first: the other workers build their
    // replica only once rank 0 is done (the generator is shared by the threads), and
    // `sync_model` gives them rank 0's weights, so a run's initial weights are fixed.
    let seed = config["seed"].as_u64().unwrap_or(0);
    let model = if session.world_rank() == 0 {
        <Backend as BurnBackend>::seed(&device, seed);
        let model = model_config.init(&device);
        session.collective().barrier(0)?;
        model
    } else {
        session.collective().barrier(session.world_rank())?;
        model_config.init(&device)
    };
    let mut model = session.sync_model(model)?;
    let mut optim = AdamConfig::new().init();
    let shard = session.get_dataset_shard("train")?.to_polars()?;
    let x = air::data::to_f32_matrix(&shard, &["concat_out"])?;
    let y = air::data::to_f32_vector(&shard, "target")?;
    for epoch in 0..epochs {
        let (mut total, mut batches) = (0.0, 0);
        for start in (0..x.rows).step_by(batch_size) {
            let end = (start + batch_size).min(x.rows);
            let n = end - start;
            let input = Tensor::<Backend, 2>::from_data(
                TensorData::new(x.data[start * x.cols..end * x.cols].to_vec(), [n, x.cols]),
                &device,
            );
            let target = Tensor::<Backend, 2>::from_data(
                TensorData::new(y[start..end].to_vec(), [n, 1]),
                &device,
            );
            let loss = bce_with_logits(model.logits(input), target);
            total += loss.clone().into_scalar();
            batches += 1;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            let grads = session.sync_gradients(&model, grads)?;
            model = optim.step(lr, model, grads);
        }
        let mut checkpoint = Checkpoint::new();
        save_burn_model(&model_config, &model, &mut checkpoint)?;
        session.report(
            json!({"epoch": epoch, "loss": total / batches.max(1) as f32}),
            Some(checkpoint),
        )?;
    }
    Ok(())
}
