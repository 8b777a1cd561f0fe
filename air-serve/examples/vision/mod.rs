//! The image pipeline of Ray's Pipeline API document, for real: PNG bytes → decode, resize
//! (shorter side to 224), center-crop 224 × 224 and normalise (the `image` crate) → two CNN
//! classifiers on burn of different widths → both top-5 lists; and a business-logic step that
//! picks one model by an attribute of the image. Shared by the `image_pipeline` example, its
//! test and the pipeline benchmark.

#![allow(dead_code, unreachable_pub)] // each user takes its own part

use std::{
    io::Cursor,
    sync::{Arc, OnceLock},
};

use air_checkpoint::Checkpoint;
use air_serve::pipeline::{ExecutionMode, INPUT, Model, Node, Step, StepError};
use air_train::burn::{self, DispatchDevice};
use air_train::{
    ComputeDevice,
    burn::{
        Backend, load_model,
        module::Module,
        nn::{
            Linear, LinearConfig, PaddingConfig2d, Relu,
            conv::{Conv2d, Conv2dConfig},
            pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig},
        },
        save_model,
        tensor::{Tensor, TensorData, activation::softmax, backend::Backend as BurnBackend},
    },
};
use image::{ImageFormat, imageops::FilterType};
use serde::{Deserialize, Serialize};

/// The side of the square the models read.
pub const SIDE: usize = 224;
/// ImageNet's classes.
pub const CLASSES: usize = 1000;
/// torchvision's ImageNet normalisation.
const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];

/// An image ready for the models: 3 × 224 × 224 normalised floats (shared, so fan-out to two
/// models copies nothing), and what the business rule reads of the original.
#[derive(Debug, Clone)]
pub struct Pixels {
    pub chw: Arc<[f32]>,
    /// The original image has colour (some pixel is not grey).
    pub colour: bool,
}

/// Decode, resize the shorter side to 224 (bilinear), center-crop 224 × 224, normalise:
/// torchvision's `Resize(224)`, `CenterCrop(224)`, `ToTensor()`, `Normalize(...)`.
pub fn preprocess(png: Vec<u8>) -> Result<Pixels, StepError> {
    let image = image::load(Cursor::new(&png), ImageFormat::Png).map_err(|e| {
        StepError::bad_input(format!(
            "the body is not a PNG image ({e}); send the image's bytes as the request body"
        ))
    })?;
    let rgb = image.to_rgb8();
    let colour = rgb.pixels().any(|p| p[0] != p[1] || p[1] != p[2]);
    let (w, h) = rgb.dimensions();
    let scale = SIDE as f64 / f64::from(w.min(h));
    let (rw, rh) = (
        ((f64::from(w) * scale).round() as u32).max(SIDE as u32),
        ((f64::from(h) * scale).round() as u32).max(SIDE as u32),
    );
    let resized = image::imageops::resize(&rgb, rw, rh, FilterType::Triangle);
    let (x0, y0) = ((rw - SIDE as u32) / 2, (rh - SIDE as u32) / 2);
    let mut chw = vec![0.0f32; 3 * SIDE * SIDE];
    for y in 0..SIDE {
        for x in 0..SIDE {
            let p = resized.get_pixel(x0 + x as u32, y0 + y as u32);
            for c in 0..3 {
                chw[c * SIDE * SIDE + y * SIDE + x] = (f32::from(p[c]) / 255.0 - MEAN[c]) / STD[c];
            }
        }
    }
    Ok(Pixels {
        chw: chw.into(),
        colour,
    })
}

/// A small CNN: three stride-2 3 × 3 convolutions (`width`, 2 × `width`, 4 × `width`
/// channels) with ReLU, global average pooling, a linear layer to 1000 classes.
#[derive(Module, Debug)]
pub struct Cnn<B: BurnBackend> {
    conv1: Conv2d<B>,
    conv2: Conv2d<B>,
    conv3: Conv2d<B>,
    pool: AdaptiveAvgPool2d,
    head: Linear<B>,
    act: Relu,
}

impl<B: BurnBackend> Cnn<B> {
    pub fn new(width: usize, device: &B::Device) -> Self {
        let conv = |c_in, c_out| {
            Conv2dConfig::new([c_in, c_out], [3, 3])
                .with_stride([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device)
        };
        Self {
            conv1: conv(3, width),
            conv2: conv(width, 2 * width),
            conv3: conv(2 * width, 4 * width),
            pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            head: LinearConfig::new(4 * width, CLASSES).init(device),
            act: Relu::new(),
        }
    }

    /// Class probabilities of a batch `[n, 3, 224, 224]`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        let x = self.act.forward(self.conv1.forward(x));
        let x = self.act.forward(self.conv2.forward(x));
        let x = self.act.forward(self.conv3.forward(x));
        let x = self.pool.forward(x).flatten::<2>(1, 3);
        softmax(self.head.forward(x), 1)
    }
}

/// A checkpoint of a CNN of `width` with weights drawn from `seed` (standing in for the
/// pretrained ResNets of Ray's example, which cannot be downloaded here).
pub fn cnn_checkpoint(width: usize, seed: u64) -> Checkpoint {
    let device = ComputeDevice::Cpu
        .inference_device()
        .expect("the CPU is there");
    <Backend as BurnBackend>::seed(&device, seed);
    let model = Cnn::<Backend>::new(width, &device);
    let mut checkpoint = Checkpoint::new();
    save_model(&model, &mut checkpoint).expect("saving to memory");
    checkpoint
}

/// The five most likely classes and their probabilities (Ray's answer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Top5 {
    pub model: String,
    pub top_5_categories: Vec<usize>,
    pub top_5_scores: Vec<f32>,
}

/// A CNN loaded from its checkpoint, as a pipeline step: a batch of images is one forward
/// pass.
pub struct Classifier {
    name: String,
    model: Cnn<Backend>,
    device: DispatchDevice,
}

impl Classifier {
    pub fn load(
        name: &str,
        width: usize,
        checkpoint: &Checkpoint,
        device: ComputeDevice,
    ) -> air_train::Result<Self> {
        let device = device.inference_device()?;
        let model = load_model(Cnn::new(width, &device), checkpoint, &device)?;
        Ok(Self {
            name: name.to_owned(),
            model,
            device,
        })
    }
}

impl Model<Pixels> for Classifier {
    type Output = Top5;

    fn call(&self, input: Pixels) -> Result<Top5, StepError> {
        self.call_batch(vec![input])
            .pop()
            .expect("one output per input")
    }

    fn call_batch(&self, inputs: Vec<Pixels>) -> Vec<Result<Top5, StepError>> {
        let n = inputs.len();
        let mut data = Vec::with_capacity(n * 3 * SIDE * SIDE);
        for p in &inputs {
            data.extend_from_slice(&p.chw);
        }
        let x = Tensor::<Backend, 4>::from_data(
            TensorData::new(data, [n, 3, SIDE, SIDE]),
            &self.device,
        );
        let probabilities = self.model.forward(x).into_data();
        let probabilities = match probabilities.to_vec::<f32>() {
            Ok(p) => p,
            Err(e) => {
                let message = format!("reading the model's output: {e:?}");
                return (0..n)
                    .map(|_| Err(StepError::failed(message.clone())))
                    .collect();
            }
        };
        probabilities
            .chunks(CLASSES)
            .map(|row| Ok(top5(&self.name, row)))
            .collect()
    }
}

fn top5(model: &str, probabilities: &[f32]) -> Top5 {
    let mut order: Vec<usize> = (0..probabilities.len()).collect();
    order.sort_by(|&a, &b| {
        probabilities[b]
            .total_cmp(&probabilities[a])
            .then(a.cmp(&b))
    });
    order.truncate(5);
    Top5 {
        model: model.to_owned(),
        top_5_scores: order.iter().map(|&i| probabilities[i]).collect(),
        top_5_categories: order,
    }
}

/// The two models: (name, width, seed).
pub const MODELS: [(&str, usize, u64); 2] = [("narrow", 8, 18), ("wide", 16, 34)];

/// How the image pipelines run: the preprocessing step's mode, the models' mode, and the
/// device of the models.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    pub preprocess: ExecutionMode,
    pub models: ExecutionMode,
    pub device: ComputeDevice,
}

impl Default for Layout {
    /// The example's: preprocessing as tasks, each model on two replicas, on the CPU.
    fn default() -> Self {
        Self {
            preprocess: ExecutionMode::Tasks,
            models: ExecutionMode::Replicas { num_replicas: 2 },
            device: ComputeDevice::Cpu,
        }
    }
}

/// The two models' checkpoints, drawn once (burn's generator is global: drawing both under
/// one lock keeps each model the same whatever else runs).
fn checkpoints() -> &'static [Checkpoint; 2] {
    static CHECKPOINTS: OnceLock<[Checkpoint; 2]> = OnceLock::new();
    CHECKPOINTS.get_or_init(|| MODELS.map(|(_, width, seed)| cnn_checkpoint(width, seed)))
}

fn classifier(layout: Layout, index: usize) -> Step<Pixels, Top5> {
    let (name, width, _) = MODELS[index];
    let checkpoint = checkpoints()[index].clone();
    Step::try_model(name, move || {
        Classifier::load(name, width, &checkpoint, layout.device)
    })
    .with_mode(layout.models)
}

fn preprocess_step(layout: Layout) -> Step<Vec<u8>, Pixels> {
    Step::try_new("preprocess", preprocess).with_mode(layout.preprocess)
}

/// PNG bytes → preprocess → both models → both top-5 lists (Ray's `combine_output`).
pub fn ensemble(layout: Layout) -> Node<Vec<u8>, Vec<Top5>> {
    let pixels = preprocess_step(layout).on(INPUT);
    let models: Vec<Node<Vec<u8>, Top5>> = (0..MODELS.len())
        .map(|m| classifier(layout, m).on(pixels.clone()))
        .collect();
    Step::new("combine", |lists: Vec<Top5>| lists).on(models)
}

/// The business rule: colour images go to the wide model, grey ones to the narrow one. The
/// chosen model is called through its own deployed pipeline, so the other one does not run.
pub fn routed(layout: Layout) -> air_serve::Result<Node<Vec<u8>, Top5>> {
    let mut by_name = Vec::new();
    for m in 0..MODELS.len() {
        let model = classifier(layout, m).on(INPUT).deploy()?;
        by_name.push(model);
    }
    let [narrow, wide]: [_; 2] = by_name.try_into().expect("two models");
    let route = Step::try_new("route", move |pixels: Pixels| {
        let model = if pixels.colour { &wide } else { &narrow };
        model.call(pixels).map_err(StepError::failed)
    })
    .with_mode(ExecutionMode::Tasks);
    Ok(route.on(preprocess_step(layout).on(INPUT)))
}

/// A `width` × `height` PNG: a colour gradient, or grey.
pub fn png(width: u32, height: u32, colour: bool) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        let g = ((x * 255) / width.max(1)) as u8;
        if colour {
            image::Rgb([g, ((y * 255) / height.max(1)) as u8, 255 - g])
        } else {
            image::Rgb([g, g, g])
        }
    });
    let mut bytes = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
        .expect("encoding to memory");
    bytes
}
