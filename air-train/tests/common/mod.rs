//! The small burn MLP and its data that the data-parallel and CUDA tests train: the same
//! model and rows, so a CUDA run is checked against the CPU run of the same thing.
#![allow(dead_code)] // each test crate uses its own part

use air_checkpoint::Checkpoint;
use air_data::polars::prelude::*;
use air_train::burn::{
    Backend, load_model,
    module::Module,
    nn::{Linear, LinearConfig, Relu},
    tensor::{Tensor, backend::Backend as BurnBackend},
};

/// Three inputs, `hidden` ReLU units, one output.
#[derive(Module, Debug)]
pub(crate) struct Mlp<B: BurnBackend> {
    pub(crate) a: Linear<B>,
    pub(crate) b: Linear<B>,
    act: Relu,
}

impl<B: BurnBackend> Mlp<B> {
    pub(crate) fn new(device: &B::Device, hidden: usize) -> Self {
        Self {
            a: LinearConfig::new(3, hidden).init(device),
            b: LinearConfig::new(hidden, 1).init(device),
            act: Relu::new(),
        }
    }

    pub(crate) fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        self.b.forward(self.act.forward(self.a.forward(x)))
    }
}

/// `n` rows `[x0, x1, x2, y]` with y = x0 - 2 x1 + 0.5 x2², noise-free.
pub(crate) fn rows(n: usize) -> Vec<[f32; 4]> {
    (0..n)
        .map(|i| {
            let x0 = (i as f32 * 0.37).sin();
            let x1 = (i as f32 * 0.11).cos();
            let x2 = ((i * 7) % 13) as f32 / 13.0;
            [x0, x1, x2, (0.5 * x2).mul_add(x2, 2.0f32.mul_add(-x1, x0))]
        })
        .collect()
}

/// The rows as columns `x0`, `x1`, `x2`, `y`.
pub(crate) fn frame(rows: &[[f32; 4]]) -> DataFrame {
    df!(
        "x0" => rows.iter().map(|r| r[0]).collect::<Vec<_>>(),
        "x1" => rows.iter().map(|r| r[1]).collect::<Vec<_>>(),
        "x2" => rows.iter().map(|r| r[2]).collect::<Vec<_>>(),
        "y" => rows.iter().map(|r| r[3]).collect::<Vec<_>>(),
    )
    .unwrap()
}

/// Every weight and bias of the MLP in checkpoint `c`, read on the CPU.
pub(crate) fn weights(c: &Checkpoint, hidden: usize) -> Vec<f32> {
    let device = air_train::ComputeDevice::Cpu.inference_device().unwrap();
    let model = load_model(Mlp::<Backend>::new(&device, hidden), c, &device).unwrap();
    [
        model.a.weight.val().into_data(),
        model.a.bias.as_ref().unwrap().val().into_data(),
        model.b.weight.val().into_data(),
        model.b.bias.as_ref().unwrap().val().into_data(),
    ]
    .into_iter()
    .flat_map(|t| t.to_vec::<f32>().unwrap())
    .collect()
}
