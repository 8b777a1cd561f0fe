//! CUDA runs (feature `cuda`, needs CUDA device 0 and its driver): the same training and the
//! same predictions as on the CPU. `scripts/gpu-check.sh` runs these on a GPU machine; without
//! the feature this file compiles to nothing, and CI only checks that it compiles.
#![cfg(feature = "cuda")]

use air_checkpoint::Checkpoint;
use air_data::{Dataset, polars::prelude::*};
use air_train::burn;
use air_train::{
    ComputeDevice, DataParallelTrainer, Predictor, RunConfig, ScalingConfig, Session, TrainError,
    Trainer, Verbosity,
    burn::{Backend, BurnPredictor, ModelConfig, load_model, save_burn_model, save_model},
    burn::{
        nn::loss::{MseLoss, Reduction},
        optim::{GradientsParams, Optimizer, SgdConfig},
        tensor::{Distribution, Tensor, TensorData},
    },
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::num::NonZeroUsize;

const GPU: ComputeDevice = ComputeDevice::Cuda { index: 0 };

mod common;

use common::Mlp;

/// Hidden units of the MLP these tests train.
const HIDDEN: usize = 16;

/// The MLP as a [`ModelConfig`], for [`BurnPredictor`].
#[derive(Debug, Clone, Serialize, Deserialize)]
struct MlpConfig {
    hidden: usize,
}

impl ModelConfig for MlpConfig {
    type Model = Mlp<Backend>;
    fn init(&self, device: &burn::DispatchDevice) -> Self::Model {
        Mlp::new(device, self.hidden)
    }
    fn forward(model: &Self::Model, input: Tensor<Backend, 2>) -> Tensor<Backend, 2> {
        model.forward(input)
    }
}

fn frame(n: usize) -> DataFrame {
    common::frame(&common::rows(n))
}

/// Full-batch SGD for `epochs` epochs from the resumed checkpoint; reports the loss.
fn train_loop(config: &Value, session: &mut Session) -> Result<(), TrainError> {
    let device = session.training_device()?;
    let init = session
        .get_checkpoint()
        .expect("resumed from the initial weights");
    let mut model = load_model(Mlp::<Backend>::new(&device, HIDDEN), init, &device)?;
    let mut optim = SgdConfig::new().init();
    let shard = session.get_dataset_shard("train")?.to_polars()?;
    let m = air_data::to_f32_matrix(&shard, &["x0", "x1", "x2"])?;
    let y = air_data::to_f32_vector(&shard, "y")?;
    let rows = shard.height();
    let x = Tensor::<Backend, 2>::from_data(TensorData::new(m.data, [rows, 3]), &device);
    let t = Tensor::<Backend, 2>::from_data(TensorData::new(y, [rows, 1]), &device);
    for epoch in 0..config["epochs"].as_u64().unwrap() {
        let loss = MseLoss::new().forward(model.forward(x.clone()), t.clone(), Reduction::Mean);
        let value = loss.clone().into_scalar();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let grads = session.sync_gradients(&model, grads)?;
        model = optim.step(0.05, model, grads);
        let mut ckpt = Checkpoint::new();
        save_model(&model, &mut ckpt)?;
        session.report(json!({"epoch": epoch, "loss": value}), Some(ckpt))?;
    }
    Ok(())
}

fn weights(c: &Checkpoint) -> Vec<f32> {
    common::weights(c, HIDDEN)
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn device_zero_is_available() {
    GPU.check_available().unwrap();
    let absent = ComputeDevice::Cuda { index: 4096 }.check_available();
    assert!(absent.is_err(), "CUDA device 4096 reported available");
}

#[test]
fn matmul_matches_the_cpu() {
    let cpu = ComputeDevice::Cpu.inference_device().unwrap();
    let gpu = GPU.inference_device().unwrap();
    let a = Tensor::<Backend, 2>::random([256, 128], Distribution::Normal(0.0, 1.0), &cpu);
    let b = Tensor::<Backend, 2>::random([128, 64], Distribution::Normal(0.0, 1.0), &cpu);
    let on_cpu = a
        .clone()
        .matmul(b.clone())
        .into_data()
        .to_vec::<f32>()
        .unwrap();
    let on_gpu = a
        .to_device(&gpu)
        .matmul(b.to_device(&gpu))
        .into_data()
        .to_vec::<f32>()
        .unwrap();
    // Sums of 128 products of unit normals: TF32 or reordered sums differ by ~1e-3 at most.
    let diff = max_abs_diff(&on_cpu, &on_gpu);
    assert!(diff < 2e-2, "CPU and CUDA matmul differ by {diff}");
}

#[test]
fn training_on_cuda_matches_the_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let device = ComputeDevice::Cpu.inference_device().unwrap();
    let mut init = Checkpoint::new();
    save_model(&Mlp::<Backend>::new(&device, HIDDEN), &mut init).unwrap();
    let run = |name: &str, use_gpu: bool| {
        DataParallelTrainer::new(
            train_loop,
            ScalingConfig::new(NonZeroUsize::MIN)
                .with_use_gpu(use_gpu)
                .unwrap(),
            RunConfig::new(dir.path().to_str().unwrap())
                .with_name(name)
                .with_verbose(Verbosity::Silent),
        )
        .with_train_loop_config(json!({"epochs": 30}))
        .with_dataset("train", Dataset::from_polars(frame(512)))
        .with_resume_from_checkpoint(init.clone())
        .fit()
        .unwrap()
        .into_result()
        .unwrap()
    };
    let (cpu, gpu) = (run("cpu", false), run("gpu", true));
    let losses = |r: &air_train::TrainResult| -> Vec<f32> {
        r.metrics_dataframe()
            .unwrap()
            .column("loss")
            .unwrap()
            .cast(&DataType::Float32)
            .unwrap()
            .f32()
            .unwrap()
            .into_no_null_iter()
            .collect()
    };
    let (lc, lg) = (losses(&cpu), losses(&gpu));
    assert_eq!(lc.len(), 30);
    assert!(lg[29] < lg[0] * 0.8, "the CUDA run learned: {lg:?}");
    for (i, (c, g)) in lc.iter().zip(&lg).enumerate() {
        assert!(
            (c - g).abs() <= 1e-3 * c.abs().max(1.0),
            "epoch {i}: CPU loss {c}, CUDA loss {g}"
        );
    }
    let diff = max_abs_diff(
        &weights(cpu.checkpoint.as_ref().unwrap()),
        &weights(gpu.checkpoint.as_ref().unwrap()),
    );
    assert!(diff < 1e-3, "CPU and CUDA weights differ by {diff}");
}

#[test]
fn burn_predictor_on_cuda_matches_the_cpu() {
    let config = MlpConfig { hidden: 64 };
    let device = ComputeDevice::Cpu.inference_device().unwrap();
    let mut ckpt = Checkpoint::new();
    save_burn_model(&config, &config.init(&device), &mut ckpt).unwrap();
    let input = frame(10_000).select(["x0", "x1", "x2"]).unwrap();
    let predict = |device| -> Vec<f32> {
        let p = BurnPredictor::<MlpConfig>::from_checkpoint_on(&ckpt, device).unwrap();
        p.predict(input.clone())
            .unwrap()
            .column("predictions")
            .unwrap()
            .f32()
            .unwrap()
            .into_no_null_iter()
            .collect()
    };
    let (on_cpu, on_gpu) = (predict(ComputeDevice::Cpu), predict(GPU));
    assert_eq!(on_gpu.len(), 10_000);
    let diff = max_abs_diff(&on_cpu, &on_gpu);
    assert!(diff < 1e-3, "CPU and CUDA predictions differ by {diff}");
}

/// The transformer encoder and trainer on CUDA (feature `transformers` too): the tiny
/// committed HuggingFace model gives the CPU's states, and a checkpoint fine-tuned on the GPU
/// predicts on the GPU what it predicts on the CPU.
#[cfg(feature = "transformers")]
mod transformers {
    use std::path::PathBuf;

    use air_train::{
        FromCheckpoint,
        transformers::{PretrainedModel, TrainingArgs, TransformersPredictor, TransformersTrainer},
    };

    use super::*;

    fn tiny() -> PretrainedModel {
        let dir =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/transformers/tiny-bert");
        PretrainedModel::from_dir(dir).unwrap()
    }

    fn reviews(n: usize) -> DataFrame {
        let words = [
            ("great", "positive"),
            ("awful", "negative"),
            ("lovely", "positive"),
            ("boring", "negative"),
        ];
        let (mut text, mut label) = (Vec::new(), Vec::new());
        for i in 0..n {
            let (w, l) = words[i % 4];
            text.push(format!("the story was {w} and the music was {w}"));
            label.push(l);
        }
        df!("text" => text, "label" => label).unwrap()
    }

    #[test]
    fn encoder_states_on_cuda_match_the_cpu() {
        let model = tiny();
        let texts = [
            "the movie was great",
            "a sad ending with a boring plot and dull acting",
        ];
        let states = |device: ComputeDevice| {
            let device = device.inference_device().unwrap();
            let encoder = model.encoder::<Backend>(&device).unwrap();
            let (ids, mask) = model
                .tokenizer()
                .encode(&texts)
                .unwrap()
                .to_tensors::<Backend>(&device);
            encoder
                .forward(ids, mask)
                .unwrap()
                .into_data()
                .to_vec::<f32>()
                .unwrap()
        };
        let diff = max_abs_diff(&states(ComputeDevice::Cpu), &states(GPU));
        assert!(diff < 1e-3, "CPU and CUDA states differ by {diff}");
    }

    #[test]
    fn fine_tuned_on_cuda_predicts_as_on_the_cpu() {
        let dir = tempfile::tempdir().unwrap();
        let result = TransformersTrainer::new(
            tiny(),
            TrainingArgs::default()
                .with_max_length(16)
                .with_batch_size(8)
                .with_learning_rate(3e-3),
            Dataset::from_polars(reviews(64)),
            ScalingConfig::new(NonZeroUsize::new(1).unwrap())
                .with_use_gpu(true)
                .unwrap(),
            RunConfig::new(dir.path().display().to_string().as_str())
                .with_verbose(Verbosity::Silent),
        )
        .unwrap()
        .with_dataset("evaluation", Dataset::from_polars(reviews(16)))
        .fit()
        .unwrap()
        .into_result()
        .unwrap();
        assert_eq!(
            result.metrics["eval_accuracy"].as_f64(),
            Some(1.0),
            "{:?}",
            result.metrics
        );
        let checkpoint = result.checkpoint.unwrap();
        let on_gpu = TransformersPredictor::from_checkpoint_on(&checkpoint, GPU).unwrap();
        let on_cpu = TransformersPredictor::from_checkpoint(&checkpoint).unwrap();
        let batch = reviews(16).drop("label").unwrap();
        let a = on_gpu.predict(batch.clone()).unwrap();
        let b = on_cpu.predict(batch).unwrap();
        assert_eq!(
            a.column("predictions").unwrap(),
            b.column("predictions").unwrap()
        );
    }
}
