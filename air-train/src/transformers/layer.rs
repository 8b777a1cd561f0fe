//! One encoder layer: multi-head self-attention and a feed-forward block, each followed by a
//! residual connection and a layer norm (post-norm, as BERT).

use ::burn::{
    module::{Module, Param},
    nn::{Dropout, DropoutConfig, LayerNorm, Linear, LinearConfig},
    tensor::{
        Tensor,
        activation::{gelu, relu, softmax},
        backend::Backend,
        module::attention,
        ops::AttentionModuleOptions,
    },
};

use super::{
    BertConfig, HiddenAct,
    embeddings::{layer_norm, read_layer_norm, write_layer_norm},
    weights::{Layout, WeightReader, WeightWriter},
};
use crate::error::Result;

/// One BERT encoder layer (HuggingFace's `BertLayer`).
#[derive(Module, Debug)]
pub struct BertLayer<B: Backend> {
    query: Linear<B>,
    key: Linear<B>,
    value: Linear<B>,
    attention_output: Linear<B>,
    attention_norm: LayerNorm<B>,
    intermediate: Linear<B>,
    output: Linear<B>,
    output_norm: LayerNorm<B>,
    dropout: Dropout,
    #[module(skip)]
    heads: usize,
    #[module(skip)]
    act: HiddenAct,
}

fn linear<B: Backend>(weight: Tensor<B, 2>, bias: Tensor<B, 1>) -> Linear<B> {
    let [input, output] = weight.dims();
    let mut l = LinearConfig::new(input, output).init(&weight.device());
    l.weight = Param::from_tensor(weight);
    l.bias = Some(Param::from_tensor(bias));
    l
}

fn read_linear<B: Backend>(
    reader: &mut WeightReader<'_>,
    name: &str,
    input: usize,
    output: usize,
    device: &B::Device,
) -> Result<Linear<B>> {
    let weight = reader.tensor(
        &format!("{name}.weight"),
        [input, output],
        Layout::Transposed,
        device,
    )?;
    let bias = reader.tensor(&format!("{name}.bias"), [output], Layout::AsIs, device)?;
    Ok(linear(weight, bias))
}

pub(crate) fn write_linear<B: Backend>(l: &Linear<B>, writer: &mut WeightWriter, name: &str) {
    writer.put(format!("{name}.weight"), l.weight.val(), Layout::Transposed);
    if let Some(bias) = &l.bias {
        writer.put(format!("{name}.bias"), bias.val(), Layout::AsIs);
    }
}

/// The HuggingFace names of a layer's linear maps: (ours, theirs under `encoder.layer.N.`).
const LINEARS: [&str; 6] = [
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "intermediate.dense",
    "output.dense",
];

impl<B: Backend> BertLayer<B> {
    /// A randomly initialised layer.
    pub(crate) fn init(config: &BertConfig, device: &B::Device) -> Self {
        let (h, f) = (config.hidden_size, config.intermediate_size);
        let l = |i, o| LinearConfig::new(i, o).init(device);
        Self {
            query: l(h, h),
            key: l(h, h),
            value: l(h, h),
            attention_output: l(h, h),
            attention_norm: layer_norm(config, h, None, device),
            intermediate: l(h, f),
            output: l(f, h),
            output_norm: layer_norm(config, h, None, device),
            dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
            heads: config.num_attention_heads,
            act: config.hidden_act,
        }
    }

    /// Layer `index` under `encoder.layer.{index}.*`.
    pub(crate) fn read(
        config: &BertConfig,
        reader: &mut WeightReader<'_>,
        index: usize,
        device: &B::Device,
    ) -> Result<Self> {
        let (h, f) = (config.hidden_size, config.intermediate_size);
        let p = format!("encoder.layer.{index}");
        let shapes = [(h, h), (h, h), (h, h), (h, h), (h, f), (f, h)];
        let mut linears = Vec::with_capacity(6);
        for (name, (i, o)) in LINEARS.iter().zip(shapes) {
            linears.push(read_linear(reader, &format!("{p}.{name}"), i, o, device)?);
        }
        let [query, key, value, attention_output, intermediate, output]: [Linear<B>; 6] =
            linears.try_into().expect("six linear maps");
        Ok(Self {
            query,
            key,
            value,
            attention_output,
            attention_norm: read_layer_norm(
                config,
                reader,
                &format!("{p}.attention.output.LayerNorm"),
                device,
            )?,
            intermediate,
            output,
            output_norm: read_layer_norm(config, reader, &format!("{p}.output.LayerNorm"), device)?,
            dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
            heads: config.num_attention_heads,
            act: config.hidden_act,
        })
    }

    /// Writes layer `index` under HuggingFace's names.
    pub(crate) fn write(&self, writer: &mut WeightWriter, index: usize) {
        let p = format!("encoder.layer.{index}");
        let linears = [
            &self.query,
            &self.key,
            &self.value,
            &self.attention_output,
            &self.intermediate,
            &self.output,
        ];
        for (name, l) in LINEARS.iter().zip(linears) {
            write_linear(l, writer, &format!("{p}.{name}"));
        }
        write_layer_norm(
            &self.attention_norm,
            writer,
            &format!("{p}.attention.output.LayerNorm"),
        );
        write_layer_norm(&self.output_norm, writer, &format!("{p}.output.LayerNorm"));
    }

    /// `[batch, seq, hidden]` → `[batch, seq, hidden]`; `bias` (`[batch, 1, seq, seq]`) is
    /// added to every head's attention scores (large and negative where a key is padding).
    pub(crate) fn forward(&self, x: Tensor<B, 3>, bias: Tensor<B, 4>) -> Tensor<B, 3> {
        let [batch, seq, hidden] = x.dims();
        let head = hidden / self.heads;
        let split = |t: Tensor<B, 3>| t.reshape([batch, seq, self.heads, head]).swap_dims(1, 2);
        let q = split(self.query.forward(x.clone()));
        let k = split(self.key.forward(x.clone()));
        let v = split(self.value.forward(x.clone()));
        let context = if B::ad_enabled(&x.device()) {
            // Training: the same attention in differentiable ops. (burn 0.21's dispatch
            // backend rejects an additive bias or a mask in its fused attention op on autodiff
            // devices, and its autodiff falls back to these very ops anyway.)
            let scores = q
                .matmul(k.swap_dims(2, 3))
                .mul_scalar(1.0 / (head as f32).sqrt())
                + bias;
            softmax(scores, 3).matmul(v)
        } else {
            attention(q, k, v, None, Some(bias), AttentionModuleOptions::default())
        };
        let context = context.swap_dims(1, 2).reshape([batch, seq, hidden]);
        let attended = self
            .attention_norm
            .forward(self.dropout.forward(self.attention_output.forward(context)) + x);
        let inner = self.intermediate.forward(attended.clone());
        let inner = match self.act {
            HiddenAct::Gelu => gelu(inner),
            HiddenAct::Relu => relu(inner),
        };
        self.output_norm
            .forward(self.dropout.forward(self.output.forward(inner)) + attended)
    }
}
