//! The training benchmark's workload, shared by `benches/train.rs` and the `train_bench`
//! example: an MLP 20→64→64→1 with binary cross-entropy on the synthetic table's 20 floats
//! (label: `f0 + f1 > 0`), trained one epoch with Adam, either by a bare burn loop or through
//! the `DataParallelTrainer`.

use air::{
    data::{Dataset, Matrix, polars::prelude::*, to_f32_matrix, to_f32_vector},
    train::{
        ComputeDevice, DataParallelTrainer, RunConfig, ScalingConfig, Session, TrainError, Trainer,
        Verbosity,
        burn::Backend,
        burn::{
            module::Module,
            nn::{Linear, LinearConfig, Relu},
            optim::{AdamConfig, GradientsParams, Optimizer},
            tensor::{Tensor, TensorData, backend::Backend as BurnBackend},
        },
    },
};
use std::num::NonZeroUsize;
// burn's derive macros name `burn::...`.
use air::train::burn;
use serde_json::{Value, json};

pub(crate) const FEATURES: usize = 20;
/// Width of both hidden layers (the workload `benches/programs/train_torch.py` repeats).
pub(crate) const HIDDEN: usize = 64;

#[derive(Module, Debug)]
pub(crate) struct Mlp<B: BurnBackend> {
    l1: Linear<B>,
    l2: Linear<B>,
    l3: Linear<B>,
    act: Relu,
}

impl<B: BurnBackend> Mlp<B> {
    pub(crate) fn new(device: &B::Device) -> Self {
        Self {
            l1: LinearConfig::new(FEATURES, HIDDEN).init(device),
            l2: LinearConfig::new(HIDDEN, HIDDEN).init(device),
            l3: LinearConfig::new(HIDDEN, 1).init(device),
            act: Relu::new(),
        }
    }

    fn logits(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let x = self.act.forward(self.l1.forward(x));
        self.l3.forward(self.act.forward(self.l2.forward(x)))
    }
}

fn bce(logits: Tensor<Backend, 2>, y: Tensor<Backend, 2>) -> Tensor<Backend, 1> {
    let log_term = logits.clone().abs().neg().exp().log1p();
    (logits.clone().clamp_min(0.0) - logits * y + log_term).mean()
}

/// The synthetic table with a 0/1 `label` column, in memory.
pub(crate) fn table(rows: u64) -> DataFrame {
    let ds = air::data::synthetic(rows, 0).unwrap();
    ds.with_column(
        "label",
        (col("f0") + col("f1")).gt(lit(0.0)).cast(DataType::Float32),
    )
    .to_polars()
    .unwrap()
}

fn features(df: &DataFrame) -> (Matrix, Vec<f32>) {
    let cols: Vec<String> = (0..FEATURES).map(|j| format!("f{j}")).collect();
    (
        to_f32_matrix(df, &cols).unwrap(),
        to_f32_vector(df, "label").unwrap(),
    )
}

/// One epoch over `(x, y)` in batches of `batch`; `sync` averages gradients (or not).
fn epoch(
    model: Mlp<Backend>,
    x: &Matrix,
    y: &[f32],
    batch: usize,
    device: &burn::DispatchDevice,
    mut sync: impl FnMut(&Mlp<Backend>, GradientsParams) -> Result<GradientsParams, TrainError>,
) -> Result<(Mlp<Backend>, f32), TrainError> {
    let mut model = model;
    let mut optim = AdamConfig::new().init();
    let mut last = 0.0;
    for start in (0..x.rows).step_by(batch) {
        let end = (start + batch).min(x.rows);
        let n = end - start;
        let input = Tensor::<Backend, 2>::from_data(
            TensorData::new(x.data[start * x.cols..end * x.cols].to_vec(), [n, x.cols]),
            device,
        );
        let target = Tensor::<Backend, 2>::from_data(
            TensorData::new(y[start..end].to_vec(), [n, 1]),
            device,
        );
        let loss = bce(model.logits(input), target);
        if end == x.rows {
            last = loss.clone().into_scalar();
        }
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let grads = sync(&model, grads)?;
        model = optim.step(1e-3, model, grads);
    }
    Ok((model, last))
}

/// The bare burn loop on `device`: no trainer, no session, the table already in memory.
pub(crate) fn bare(df: &DataFrame, batch: usize, device: ComputeDevice) -> f32 {
    let device = device.training_device().unwrap();
    let (x, y) = features(df);
    epoch(Mlp::new(&device), &x, &y, batch, &device, |_, g| Ok(g))
        .unwrap()
        .1
}

fn train_loop(config: &Value, session: &mut Session) -> Result<(), TrainError> {
    let batch = config["batch"].as_u64().unwrap() as usize;
    let device = session.training_device()?;
    let model = session.sync_model(Mlp::<Backend>::new(&device))?;
    let (x, y) = features(&session.get_dataset_shard("train")?.to_polars()?);
    let (_, loss) = epoch(model, &x, &y, batch, &device, |m, g| {
        session.sync_gradients(m, g)
    })?;
    session.report(json!({"loss": loss}), None)
}

/// The same epoch through the trainer on `workers` workers, each with batch `batch` (so the
/// global batch is `workers × batch`); on CUDA devices 0.. when `use_gpu`.
pub(crate) fn trainer(
    df: &DataFrame,
    workers: usize,
    batch: usize,
    storage: &str,
    use_gpu: bool,
) -> f32 {
    let result = DataParallelTrainer::new(
        train_loop,
        ScalingConfig::new(NonZeroUsize::new(workers).unwrap())
            .with_use_gpu(use_gpu)
            .unwrap(),
        RunConfig::new(storage).with_verbose(Verbosity::Silent),
    )
    .with_train_loop_config(json!({"batch": batch}))
    .with_dataset("train", Dataset::from_polars(df.clone()))
    .fit()
    .unwrap()
    .into_result()
    .unwrap();
    // Only rank 0 of a multi-process run has metrics; the other ranks' loss is NaN.
    result
        .metrics
        .get("loss")
        .and_then(Value::as_f64)
        .map_or(f32::NAN, |l| l as f32)
}
