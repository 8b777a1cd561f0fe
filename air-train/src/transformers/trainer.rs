//! [`TransformersTrainer`]: fine-tunes a pretrained encoder with a classification head on a
//! text dataset (Ray's `TransformersTrainer`), as a [`DataParallelTrainer`] preset.

use std::{collections::HashMap, sync::Arc};

use ::burn::{
    module::AutodiffModule,
    optim::{AdamWConfig, GradientsParams, Optimizer},
    tensor::{Tensor, TensorData, backend::Backend as _},
};
use air_checkpoint::Checkpoint;
use air_data::Dataset;
use rand::{SeedableRng, rngs::StdRng, seq::SliceRandom};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{
    PretrainedModel, TextClassifier, TextTokenizer, TrainingArgs,
    classifier::cross_entropy,
    pretrained::save_files,
    task::{LabelType, TASK_ENTRY, TaskKind, TextTask, string_column},
    weights::WeightWriter,
};
use crate::{
    DataParallelTrainer, RunConfig, ScalingConfig, Session, TrainError, burn::Backend,
    error::Result,
};

/// Where a run is, saved in each checkpoint so that a restart continues after it.
const STATE_ENTRY: &str = "trainer_state.json";

#[derive(Debug, Serialize, Deserialize)]
struct TrainerState {
    /// The last finished epoch (0-based).
    epoch: usize,
    /// Optimizer steps taken so far.
    step: u64,
}

/// Ray's `TransformersTrainer`: fine-tunes a [`PretrainedModel`] plus a linear classification
/// head on the `"train"` dataset's text and label columns, on `num_workers` data-parallel
/// workers (gradients averaged every step), with AdamW, linear warmup and decay.
///
/// Each epoch reports `epoch`, `loss` (the mean training loss), `learning_rate`, `step` and,
/// when an `"evaluation"` dataset is given (`.with_dataset("evaluation", ds)`),
/// `eval_loss` and `eval_accuracy` over all of it; and a checkpoint that is data only —
/// HuggingFace's `config.json`, `tokenizer.json` and `model.safetensors` (head included, as
/// `classifier.*`) plus `transformers.json` (labels, pooling, columns) — which
/// [`TransformersPredictor`](super::TransformersPredictor) serves. A restarted run continues
/// after the newest checkpoint's epoch (AdamW's moments start afresh).
///
/// The classes are the label column's distinct values in the training data, sorted; the head
/// predicts them in that order.
#[derive(Debug, Clone, Copy)]
pub struct TransformersTrainer;

impl TransformersTrainer {
    /// A data-parallel trainer fine-tuning `model` on `train` with `args` (a tuner may
    /// override any field of `args` through `train_loop_config`).
    #[allow(clippy::new_ret_no_self)]
    pub fn new(
        model: PretrainedModel,
        args: TrainingArgs,
        train: Dataset,
        scaling: ScalingConfig,
        run: RunConfig,
    ) -> Result<DataParallelTrainer> {
        args.validate(model.config())?;
        let (labels, label_type) = class_labels(&train, &args.label_column)?;
        let train_loop_config = serde_json::to_value(&args)
            .map_err(|e| TrainError::model("serialising the training args", e))?;
        let model = Arc::new(model);
        let labels = Arc::new(labels);
        let train_loop = move |config: &Value, session: &mut Session| -> Result<()> {
            let args: TrainingArgs =
                serde_json::from_value(config.clone()).map_err(|e| TrainError::InvalidConfig {
                    field: "train_loop_config",
                    value: e.to_string(),
                    expected: "TrainingArgs fields (text_column, label_column, max_length, \
                               batch_size, eval_batch_size, learning_rate, num_epochs, \
                               warmup_ratio, weight_decay, seed, pooling)"
                        .to_owned(),
                })?;
            fine_tune(&model, &args, &labels, label_type, session)
        };
        Ok(DataParallelTrainer::new(train_loop, scaling, run)
            .with_name("TransformersTrainer")
            .with_train_loop_config(train_loop_config)
            .with_dataset("train", train))
    }
}

/// The sorted distinct values of `column` in `train`, and how they are written.
fn class_labels(train: &Dataset, column: &str) -> Result<(Vec<String>, LabelType)> {
    let schema = train.schema()?;
    let dtype = schema.get(column).ok_or_else(|| {
        TrainError::Data(air_data::DataError::ColumnNotFound {
            column: column.to_owned(),
            context: "the TransformersTrainer's label_column".to_owned(),
            available: schema.iter_names().map(|n| n.to_string()).collect(),
        })
    })?;
    let label_type = LabelType::of(column, dtype)?;
    let values = string_column(
        &train.select_columns(&[column]).to_polars()?,
        column,
        "label_column",
    )?;
    let mut labels: Vec<String> = values
        .into_iter()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if label_type == LabelType::Integer {
        labels.sort_by_key(|l| l.parse::<i64>().unwrap_or(i64::MAX));
    }
    if labels.len() < 2 {
        return Err(TrainError::InvalidData {
            what: "label_column",
            found: format!(
                "{} distinct value(s) in column {column:?}: {labels:?}",
                labels.len()
            ),
            expected: "at least 2 classes".to_owned(),
        });
    }
    Ok((labels, label_type))
}

/// Texts and class indices of `df`; a label outside `labels` is named with its row.
fn examples(
    df: &air_data::polars::prelude::DataFrame,
    args: &TrainingArgs,
    index: &HashMap<&str, usize>,
    dataset: &str,
) -> Result<(Vec<String>, Vec<usize>)> {
    let texts = string_column(df, &args.text_column, "text_column")?;
    let labels = string_column(df, &args.label_column, "label_column")?;
    let classes = labels
        .iter()
        .enumerate()
        .map(|(row, l)| {
            index
                .get(l.as_str())
                .copied()
                .ok_or_else(|| TrainError::InvalidData {
                    what: "label_column",
                    found: format!("label {l:?} at row {row} of the {dataset:?} shard"),
                    expected: format!("one of the training data's classes {:?}", {
                        let mut known: Vec<&&str> = index.keys().collect();
                        known.sort();
                        known
                    }),
                })
        })
        .collect::<Result<_>>()?;
    Ok((texts, classes))
}

/// `[rows, labels]` one-hot targets.
fn one_hot(
    classes: &[usize],
    labels: usize,
    device: &::burn::DispatchDevice,
) -> Tensor<Backend, 2> {
    let mut data = vec![0.0_f32; classes.len() * labels];
    for (row, &c) in classes.iter().enumerate() {
        data[row * labels + c] = 1.0;
    }
    Tensor::from_data(TensorData::new(data, [classes.len(), labels]), device)
}

fn fine_tune(
    pretrained: &PretrainedModel,
    args: &TrainingArgs,
    labels: &[String],
    label_type: LabelType,
    session: &mut Session,
) -> Result<()> {
    args.validate(pretrained.config())?;
    let pretrained = pretrained.clone().with_max_length(args.max_length)?;
    let tokenizer = pretrained.tokenizer().clone();
    let pooling = args.pooling.unwrap_or(pretrained.pooling());
    let device = session.training_device()?;
    let rank = session.world_rank();

    // The model: from the checkpoint being resumed, else the pretrained encoder and a new head
    // (rank 0's, given to every worker).
    let (model, first_epoch, mut step) = match session.get_checkpoint() {
        Some(checkpoint) => {
            let state: TrainerState = checkpoint.get_verified_json(STATE_ENTRY).map_err(|e| {
                TrainError::model(
                    format!("resuming from a checkpoint without {STATE_ENTRY}"),
                    format!("{e} (expected a checkpoint written by TransformersTrainer)"),
                )
            })?;
            let saved = PretrainedModel::from_checkpoint(checkpoint)?;
            let model = TextClassifier::read(
                saved.config(),
                &mut saved.reader()?,
                labels.len(),
                pooling,
                &device,
            )?;
            (model, state.epoch + 1, state.step)
        }
        None => {
            let encoder = pretrained.encoder::<Backend>(&device)?;
            // The head every worker starts from is rank 0's, drawn from burn's generator
            // seeded first; worker threads share that generator, so the others draw only after
            // rank 0 is done (`sync_model` then gives them rank 0's values).
            let head = |device| {
                TextClassifier::new(encoder, pretrained.config(), labels.len(), pooling, device)
            };
            let model = if rank == 0 {
                Backend::seed(&device, args.seed);
                let model = head(&device);
                session.collective().barrier(rank)?;
                model
            } else {
                session.collective().barrier(rank)?;
                head(&device)
            };
            (model, 0, 0)
        }
    };
    let mut model = session.sync_model(model)?;
    // Dropout's stream: one per rank (in worker threads the generator is shared, so a
    // threaded run's dropout masks are not reproducible; a process per rank's are).
    Backend::seed(&device, args.seed.wrapping_add(1 + rank as u64));
    let mut optim = AdamWConfig::new()
        .with_epsilon(1e-8)
        .with_weight_decay(args.weight_decay as f32)
        .init::<Backend, TextClassifier<Backend>>();

    let index: HashMap<&str, usize> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.as_str(), i))
        .collect();
    let columns = [args.text_column.as_str(), args.label_column.as_str()];
    let train = session
        .get_dataset_shard("train")?
        .select_columns(&columns)
        .to_polars()?;
    let (texts, classes) = examples(&train, args, &index, "train")?;
    let evaluation = match session.dataset_names().iter().any(|n| n == "evaluation") {
        true => {
            let df = session
                .get_dataset_shard("evaluation")?
                .select_columns(&columns)
                .to_polars()?;
            Some(examples(&df, args, &index, "evaluation")?)
        }
        false => None,
    };
    if texts.is_empty() {
        return Err(TrainError::InvalidData {
            what: "datasets",
            found: format!("an empty \"train\" shard on worker {rank}"),
            expected: "at least one row per worker".to_owned(),
        });
    }
    // Shards are equal-sized, so every worker takes the same number of steps.
    let steps_per_epoch = texts.len().div_ceil(args.batch_size) as u64;
    let total_steps = steps_per_epoch * args.num_epochs as u64;
    for epoch in first_epoch..args.num_epochs {
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.shuffle(&mut StdRng::seed_from_u64(
            args.seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ rank as u64,
        ));
        let (mut loss_sum, mut batches) = (0.0_f64, 0_u64);
        let mut lr = 0.0;
        for batch in order.chunks(args.batch_size) {
            let batch_texts: Vec<&str> = batch.iter().map(|&i| texts[i].as_str()).collect();
            let batch_classes: Vec<usize> = batch.iter().map(|&i| classes[i]).collect();
            let tokens = tokenizer.encode(&batch_texts)?;
            let (ids, mask) = tokens.to_tensors::<Backend>(&device);
            let logits = model.forward(ids, mask)?;
            let loss = cross_entropy(logits, one_hot(&batch_classes, labels.len(), &device));
            loss_sum += f64::from(loss.clone().into_scalar());
            batches += 1;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            let grads = session.sync_gradients(&model, grads)?;
            lr = args.learning_rate_at(step, total_steps);
            model = optim.step(lr, model, grads);
            step += 1;
        }
        let mut metrics = json!({
            "epoch": epoch,
            "loss": loss_sum / batches.max(1) as f64,
            "learning_rate": lr,
            "step": step,
        });
        if let Some((eval_texts, eval_classes)) = &evaluation {
            let (loss, accuracy) = evaluate(
                &model,
                &tokenizer,
                eval_texts,
                eval_classes,
                labels.len(),
                args,
                session,
            )?;
            metrics["eval_loss"] = loss.into();
            metrics["eval_accuracy"] = accuracy.into();
        }
        let checkpoint = if rank == 0 {
            let task = TextTask {
                kind: TaskKind::Classification {
                    labels: labels.to_vec(),
                    label_type,
                },
                pooling,
                text_column: args.text_column.clone(),
                max_length: args.max_length,
            };
            Some(save_classifier(
                &model,
                &pretrained,
                &tokenizer,
                &task,
                TrainerState { epoch, step },
            )?)
        } else {
            None
        };
        session.report(metrics, checkpoint)?;
    }
    Ok(())
}

/// Loss and accuracy over every worker's evaluation shard (summed across workers).
fn evaluate(
    model: &TextClassifier<Backend>,
    tokenizer: &TextTokenizer,
    texts: &[String],
    classes: &[usize],
    labels: usize,
    args: &TrainingArgs,
    session: &Session,
) -> Result<(f64, f64)> {
    let model = model.valid();
    let device = session.device().inference_device()?;
    let (mut loss_sum, mut correct) = (0.0_f64, 0.0_f64);
    for (batch_texts, batch_classes) in texts
        .chunks(args.eval_batch_size)
        .zip(classes.chunks(args.eval_batch_size))
    {
        let tokens = tokenizer.encode(batch_texts)?;
        let (ids, mask) = tokens.to_tensors::<Backend>(&device);
        let logits = model.forward(ids, mask)?;
        let n = batch_classes.len() as f64;
        let loss = cross_entropy(logits.clone(), one_hot(batch_classes, labels, &device));
        loss_sum += f64::from(loss.into_scalar()) * n;
        let predicted = logits
            .argmax(1)
            .into_data()
            .convert::<i64>()
            .to_vec::<i64>()
            .map_err(|e| TrainError::model("reading predictions", format!("{e:?}")))?;
        correct += predicted
            .iter()
            .zip(batch_classes)
            .filter(|(p, c)| **p as usize == **c)
            .count() as f64;
    }
    let mut totals = [loss_sum, correct, texts.len() as f64];
    session
        .collective()
        .all_reduce_sum_f64(session.world_rank(), &mut totals)?;
    let n = totals[2].max(1.0);
    Ok((totals[0] / n, totals[1] / n))
}

fn save_classifier(
    model: &TextClassifier<Backend>,
    pretrained: &PretrainedModel,
    tokenizer: &TextTokenizer,
    task: &TextTask,
    state: TrainerState,
) -> Result<Checkpoint> {
    let mut checkpoint = Checkpoint::new();
    let mut writer = WeightWriter::default();
    model.write(&mut writer);
    save_files(pretrained.config(), tokenizer, writer, &mut checkpoint)?;
    checkpoint.put_json(TASK_ENTRY, task)?;
    checkpoint.set_metadata_value(crate::PREDICTOR_KIND_KEY, super::PREDICTOR_KIND)?;
    checkpoint.put_json(STATE_ENTRY, &state)?;
    Ok(checkpoint)
}
