//! [`Mlp`]: the fully connected network every policy is made of, initialised from a seeded
//! generator (not burn's global one), so a seed fixes the initial weights.

use air_train::burn::{
    self,
    module::{Module, Param},
    nn::Linear,
    tensor::{Tensor, TensorData, activation, backend::Backend},
};
use rand::{RngExt, rngs::StdRng};
use serde::{Deserialize, Serialize};

/// The activation between hidden layers (RLlib's `fcnet_activation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// `tanh` (PPO's default).
    #[default]
    Tanh,
    /// `max(0, x)` (DQN's default).
    Relu,
}

/// Linear layers with an activation between them (none after the last).
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    layers: Vec<Linear<B>>,
}

impl<B: Backend> Mlp<B> {
    /// Layers of `sizes[0] → sizes[1] → …`; weights and biases drawn uniformly from
    /// ±1/√fan_in (PyTorch's default), the last layer's scaled by `last_scale` (a small policy
    /// head starts near uniform).
    pub(crate) fn new(
        sizes: &[usize],
        last_scale: f32,
        rng: &mut StdRng,
        device: &B::Device,
    ) -> Self {
        let last = sizes.len().saturating_sub(2);
        let layers = sizes
            .windows(2)
            .enumerate()
            .map(|(i, w)| {
                let scale = if i == last { last_scale } else { 1.0 };
                linear(w[0], w[1], scale, rng, device)
            })
            .collect();
        Self { layers }
    }

    /// The output for a batch of inputs `[n, sizes[0]]`.
    pub(crate) fn forward(&self, mut x: Tensor<B, 2>, activation: Activation) -> Tensor<B, 2> {
        let last = self.layers.len().saturating_sub(1);
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(x);
            if i < last {
                x = match activation {
                    Activation::Tanh => activation::tanh(x),
                    Activation::Relu => activation::relu(x),
                };
            }
        }
        x
    }
}

fn linear<B: Backend>(
    d_in: usize,
    d_out: usize,
    scale: f32,
    rng: &mut StdRng,
    device: &B::Device,
) -> Linear<B> {
    let k = 1.0 / (d_in.max(1) as f32).sqrt();
    let mut draw =
        |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-k..k) * scale).collect() };
    let weight = draw(d_in * d_out);
    let bias = draw(d_out);
    Linear {
        weight: Param::from_tensor(Tensor::from_data(
            TensorData::new(weight, [d_in, d_out]),
            device,
        )),
        bias: Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(bias, [d_out]),
            device,
        ))),
    }
}
