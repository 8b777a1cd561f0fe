//! Transformer throughput on a BERT-family model (all-MiniLM-L6-v2 by default):
//!
//! - training: forward + backward + AdamW step of the encoder with a 2-class head, batches of
//!   `--batch` texts of exactly `--seq` tokens, as a bare burn loop and through
//!   `TransformersTrainer` with 1 and 2 workers (each worker `--batch` texts a step);
//! - inference: sentence embeddings of `--texts` texts of varying length through
//!   `BatchPredictor` with `TransformersPredictor`.
//!
//! `benches/programs/train_torch.py` runs the same workloads with PyTorch and
//! sentence-transformers on the same machine.
//!
//! ```text
//! scripts/fetch-minilm.sh /tmp/minilm
//! MIMALLOC_PURGE_DELAY=-1 cargo run --release --features transformers,serve \
//!     --example transformer_bench -- --model /tmp/minilm
//! ```

#[path = "../common/device.rs"]
mod device;
#[path = "../common/texts.rs"]
mod texts;

use std::{num::NonZeroUsize, path::PathBuf, time::Instant};

use air::{
    data::{Dataset, polars::prelude::*},
    serve::{BatchPredictor, PredictOptions},
    train::{
        FromCheckpoint, RunConfig, ScalingConfig, Trainer, Verbosity,
        burn::{
            Backend,
            optim::{AdamWConfig, GradientsParams, Optimizer},
            tensor::{Tensor, TensorData, activation::log_softmax},
        },
        transformers::{
            PretrainedModel, TextClassifier, TrainingArgs, TransformersPredictor,
            TransformersTrainer,
        },
    },
};
use device::Device;

/// burn's CPU backend allocates fresh tensors of tens of MB on every step (the embedding
/// gradient and AdamW's moments of MiniLM are 47 MB each); glibc maps and unmaps such blocks
/// each time, and the page faults cost 5-10% of a step. mimalloc keeps them (and keeps them
/// longer with `MIMALLOC_PURGE_DELAY=-1` in the environment: another few percent).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Transformer training and inference throughput.
#[derive(Debug, clap::Parser)]
struct Args {
    /// The model directory (HuggingFace files).
    #[arg(long)]
    model: PathBuf,
    /// Texts per training step (per worker).
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Tokens per training text.
    #[arg(long, default_value_t = 128)]
    seq: usize,
    /// Timed training steps (after one untimed step).
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// Texts to embed.
    #[arg(long, default_value_t = 2000)]
    texts: usize,
    /// What to run.
    #[arg(long, value_enum, default_value_t = Part::All)]
    part: Part,
    /// Where to compute.
    #[arg(long, value_enum, default_value_t = Device::Cpu)]
    device: Device,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Part {
    Train,
    Embed,
    All,
}

fn main() -> anyhow::Result<()> {
    let args: Args = clap::Parser::parse();
    let compute = args.device.compute()?;
    let model = PretrainedModel::from_dir(&args.model)?;
    println!(
        "{} ({} layers, hidden {}), on {:?}, {} rayon threads",
        args.model.display(),
        model.config().num_hidden_layers,
        model.config().hidden_size,
        args.device,
        rayon::current_num_threads()
    );
    if matches!(args.part, Part::Train | Part::All) {
        train(&args, &model, compute)?;
    }
    if matches!(args.part, Part::Embed | Part::All) {
        embed(&args, &model, compute)?;
    }
    Ok(())
}

fn train(
    args: &Args,
    model: &PretrainedModel,
    compute: air::train::ComputeDevice,
) -> anyhow::Result<()> {
    let model = model.clone().with_max_length(args.seq)?;
    let device = compute.training_device()?;
    let batch: Vec<String> = (0..args.batch)
        .map(|i| texts::long_text(i, args.seq))
        .collect();
    let tokens = model.tokenizer().encode(&batch)?;
    anyhow::ensure!(tokens.len == args.seq, "texts of {} tokens", tokens.len);
    let mut classifier = TextClassifier::new(
        model.encoder::<Backend>(&device)?,
        model.config(),
        2,
        model.pooling(),
        &device,
    );
    let mut optim = AdamWConfig::new().with_epsilon(1e-8).init();
    let mut targets = vec![0.0_f32; args.batch * 2];
    for row in 0..args.batch {
        targets[row * 2 + row % 2] = 1.0;
    }
    let mut timed = 0.0;
    for step in 0..=args.steps {
        let start = Instant::now();
        let (ids, mask) = tokens.to_tensors::<Backend>(&device);
        let logits = classifier.forward(ids, mask)?;
        let target = Tensor::<Backend, 2>::from_data(
            TensorData::new(targets.clone(), [args.batch, 2]),
            &device,
        );
        let loss = (log_softmax(logits, 1) * target).sum().neg() / args.batch as f32;
        let _ = loss.clone().into_scalar();
        let grads = GradientsParams::from_grads(loss.backward(), &classifier);
        classifier = optim.step(2e-5, classifier, grads);
        if step > 0 {
            timed += start.elapsed().as_secs_f64();
        }
    }
    let bare = (args.steps * args.batch) as f64 / timed;
    println!(
        "{:<44} {:>8.1} samples/s  ({:.3} s/step, batch {} × {} tokens)",
        "training: bare burn loop",
        bare,
        timed / args.steps as f64,
        args.batch,
        args.seq
    );
    let storage = tempfile::tempdir()?;
    for workers in [1, 2] {
        // One epoch of `steps + 1` steps per worker; the first step and the setup count too.
        let rows = workers * args.batch * (args.steps + 1);
        let texts: Vec<String> = (0..rows).map(|i| texts::long_text(i, args.seq)).collect();
        let labels: Vec<i64> = (0..rows as i64).map(|i| i % 2).collect();
        let data = Dataset::from_polars(df!("text" => texts, "label" => labels)?);
        let trainer = TransformersTrainer::new(
            model.clone(),
            TrainingArgs::default()
                .with_max_length(args.seq)
                .with_batch_size(args.batch)
                .with_num_epochs(1)
                .with_learning_rate(2e-5),
            data,
            ScalingConfig::new(NonZeroUsize::new(workers).unwrap()),
            RunConfig::new(storage.path().display().to_string().as_str())
                .with_name(&format!("bench-{workers}"))
                .with_verbose(Verbosity::Silent),
        )?;
        let start = Instant::now();
        let result = trainer.fit()?.into_result()?;
        let total = start.elapsed().as_secs_f64();
        let steps = args.steps + 1;
        println!(
            "{:<44} {:>8.1} samples/s  ({:.3} s/step of {} texts; {:.1} s in all, setup and \
             checkpoint included; loss {:.3})",
            format!("training: TransformersTrainer, {workers} worker(s)"),
            rows as f64 / total,
            total / steps as f64,
            workers * args.batch,
            total,
            result.metrics["loss"].as_f64().unwrap_or(f64::NAN)
        );
    }
    Ok(())
}

fn embed(
    args: &Args,
    model: &PretrainedModel,
    compute: air::train::ComputeDevice,
) -> anyhow::Result<()> {
    let texts: Vec<String> = (0..args.texts).map(texts::text).collect();
    let data = Dataset::from_polars(df!("text" => texts.clone())?);
    let predictor = TransformersPredictor::from_pretrained(model, compute)?;
    // Warm-up.
    predictor.outputs(&texts[..32])?;
    let start = Instant::now();
    let (_, direct) = predictor.outputs(&texts)?;
    let direct_s = start.elapsed().as_secs_f64();
    println!(
        "{:<44} {:>8.1} texts/s  ({} texts of 10-60 tokens, 32 per forward pass)",
        "embeddings: TransformersPredictor::outputs",
        args.texts as f64 / direct_s,
        args.texts
    );
    let dir = tempfile::tempdir()?;
    let checkpoint_dir = dir.path().join("minilm");
    let mut checkpoint = air::checkpoint::Checkpoint::new();
    model.save(
        &model.encoder::<Backend>(&compute.inference_device()?)?,
        &mut checkpoint,
    )?;
    checkpoint.to_directory(&checkpoint_dir)?;
    let checkpoint = air::checkpoint::Checkpoint::from_directory(&checkpoint_dir)?;
    let start = Instant::now();
    // One scoring worker: the model's own passes already use every core.
    let one = NonZeroUsize::new(1).unwrap();
    let options = PredictOptions::new()
        .with_batch_size(NonZeroUsize::new(256).unwrap())
        .with_scoring_workers(one, one);
    let out = BatchPredictor::from_checkpoint(checkpoint, TransformersPredictor::from_checkpoint)
        .predict(&data, &options)?
        .to_polars()?;
    let batch_s = start.elapsed().as_secs_f64();
    anyhow::ensure!(out.height() == args.texts && direct.len() == args.texts * 384);
    println!(
        "{:<44} {:>8.1} texts/s  (batches of 256 rows, model loading included)",
        "embeddings: BatchPredictor",
        args.texts as f64 / batch_s
    );
    Ok(())
}
