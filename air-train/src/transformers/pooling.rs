//! [`Pooling`]: from one hidden state per token to one vector per sequence.

use ::burn::tensor::{Bool, Tensor, TensorData, backend::Backend};
use serde::{Deserialize, Serialize};

/// How a sequence's token states become one vector (sentence-transformers' `1_Pooling`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    /// The mean over real tokens (padding excluded): sentence-transformers' default.
    #[default]
    Mean,
    /// The first token's state (`[CLS]`).
    Cls,
}

impl Pooling {
    /// `[batch, seq, hidden]` states and a `[batch, seq]` mask (true for real tokens) →
    /// `[batch, hidden]`.
    pub fn pool<B: Backend>(self, hidden: Tensor<B, 3>, mask: Tensor<B, 2, Bool>) -> Tensor<B, 2> {
        let [batch, seq, width] = hidden.dims();
        match self {
            Self::Mean => {
                let weights = mask_values(mask, [batch, seq, 1], 1.0, 0.0, &hidden);
                let counts = weights.clone().sum_dim(1).clamp_min(1e-9);
                (hidden * weights)
                    .sum_dim(1)
                    .div(counts)
                    .reshape([batch, width])
            }
            Self::Cls => hidden
                .slice([0..batch, 0..1, 0..width])
                .reshape([batch, width]),
        }
    }

    /// Reads sentence-transformers' `1_Pooling/config.json` text.
    pub(crate) fn from_sentence_transformers(text: &str) -> Option<Self> {
        let v: serde_json::Value = serde_json::from_str(text).ok()?;
        let on = |k: &str| v.get(k).and_then(serde_json::Value::as_bool) == Some(true);
        if on("pooling_mode_mean_tokens") {
            Some(Self::Mean)
        } else if on("pooling_mode_cls_token") {
            Some(Self::Cls)
        } else {
            None
        }
    }
}

/// A `[batch, seq]` bool mask as floats — `real` where true, `padding` where false — in
/// `shape` (the same values, with unit axes added), on `like`'s device.
///
/// On burn 0.21's dispatch backend a bool tensor made on an autodiff device lives on the
/// plain device (bools carry no gradient), and so does a float made from it with
/// `Tensor::float`; mixing that with the model's autodiff tensors panics ("not on the same
/// backend"). So the floats are made from the mask's values, on the model tensor's device.
pub(crate) fn mask_values<B: Backend, const D: usize, const L: usize>(
    mask: Tensor<B, 2, Bool>,
    shape: [usize; D],
    real: f32,
    padding: f32,
    like: &Tensor<B, L>,
) -> Tensor<B, D> {
    let device = like.device();
    let values: Vec<f32> = mask
        .into_data()
        .iter::<bool>()
        .map(|m| if m { real } else { padding })
        .collect();
    Tensor::from_data(TensorData::new(values, shape), &device)
}

/// The additive attention bias of a `[batch, seq]` mask: `[batch, 1, seq, seq]`, 0 for a real
/// key and `masked` for a padding key, the same for every query (and, broadcast, every head),
/// on `like`'s device. Full rows per query so that burn-flex's attention kernel reads it in
/// place instead of expanding it per head.
pub(crate) fn padding_bias<B: Backend, const L: usize>(
    mask: Tensor<B, 2, Bool>,
    masked: f32,
    like: &Tensor<B, L>,
) -> Tensor<B, 4> {
    let [batch, seq] = mask.dims();
    let keys: Vec<bool> = mask.into_data().iter::<bool>().collect();
    let mut values = Vec::with_capacity(batch * seq * seq);
    for row in keys.chunks(seq.max(1)) {
        for _ in 0..seq {
            values.extend(row.iter().map(|&real| if real { 0.0 } else { masked }));
        }
    }
    Tensor::from_data(
        TensorData::new(values, [batch, 1, seq, seq]),
        &like.device(),
    )
}

/// Each row divided by its L2 norm (rows of zeros stay zero).
pub fn normalize<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    let norm = x
        .clone()
        .powf_scalar(2.0)
        .sum_dim(1)
        .sqrt()
        .clamp_min(1e-12);
    x.div(norm)
}
