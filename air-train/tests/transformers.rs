//! Pretrained transformers against HuggingFace: the tiny 2-layer model committed under
//! `fixtures/transformers/tiny-bert` (token ids, hidden states and pooled vectors from
//! transformers' `BertModel`), and the real all-MiniLM-L6-v2 when `AIR_MINILM_DIR` points at it
//! (`scripts/fetch-minilm.sh`; token ids and sentence-transformers' embeddings). Fixtures:
//! `fixtures/transformers/make_fixtures.py`.

use std::path::{Path, PathBuf};

use air_checkpoint::Checkpoint;
use air_train::{
    ComputeDevice, TrainError,
    burn::{Backend, tensor::Tensor},
    transformers::{PretrainedModel, normalize},
};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/transformers")
}

fn tiny_dir() -> PathBuf {
    fixtures().join("tiny-bert")
}

fn read_json(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join(name)).unwrap()).unwrap()
}

/// The MiniLM directory, or `None` (test skipped) unless `AIR_REQUIRE_MINILM=1`.
fn minilm_dir() -> Option<PathBuf> {
    match std::env::var_os("AIR_MINILM_DIR") {
        Some(dir) => Some(PathBuf::from(dir)),
        None if std::env::var("AIR_REQUIRE_MINILM").as_deref() == Ok("1") => {
            panic!("AIR_REQUIRE_MINILM=1 but AIR_MINILM_DIR is unset; run scripts/fetch-minilm.sh")
        }
        None => {
            eprintln!("skipped: set AIR_MINILM_DIR (scripts/fetch-minilm.sh DIR)");
            None
        }
    }
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn ids(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Runs the model on every fixture sentence in one padded batch: (token batch, hidden
/// states `[rows, len, hidden]`, mean-pooled `[rows, hidden]`).
fn run(
    model: &PretrainedModel,
    texts: &[String],
) -> (
    air_train::transformers::TokenBatch,
    Vec<f32>,
    Tensor<Backend, 2>,
) {
    let device = ComputeDevice::Cpu.inference_device().unwrap();
    let encoder = model.encoder::<Backend>(&device).unwrap();
    let batch = model.tokenizer().encode(texts).unwrap();
    let (input_ids, mask) = batch.to_tensors::<Backend>(&device);
    let states = encoder.forward(input_ids, mask.clone()).unwrap();
    let flat = states.clone().into_data().to_vec::<f32>().unwrap();
    let pooled = model.pooling().pool(states, mask);
    (batch, flat, pooled)
}

#[test]
fn tiny_bert_matches_huggingface_ids_states_and_pooling() {
    let fixture = read_json("tiny_fixtures.json");
    let cases = fixture["cases"].as_array().unwrap();
    let texts: Vec<String> = cases
        .iter()
        .map(|c| c["text"].as_str().unwrap().to_owned())
        .collect();
    let model = PretrainedModel::from_dir(tiny_dir())
        .unwrap()
        .with_max_length(64)
        .unwrap();
    assert_eq!(model.config().num_hidden_layers, 2);
    let (batch, states, pooled) = run(&model, &texts);
    let hidden = model.config().hidden_size;
    let pooled = pooled.into_data().to_vec::<f32>().unwrap();
    let mut compared = 0;
    for (row, case) in cases.iter().enumerate() {
        let expected_ids = ids(&case["input_ids"]);
        assert_eq!(
            batch.row_ids(row),
            expected_ids,
            "token ids of {:?}",
            case["text"]
        );
        for (t, expected) in case["last_hidden_state"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
        {
            let start = (row * batch.len + t) * hidden;
            let d = max_abs_diff(&states[start..start + hidden], &floats(expected));
            assert!(d < 2e-5, "row {row} token {t}: hidden state differs by {d}");
            compared += 1;
        }
        let d = max_abs_diff(
            &pooled[row * hidden..(row + 1) * hidden],
            &floats(&case["mean_pooled"]),
        );
        assert!(d < 2e-5, "row {row}: mean pooling differs by {d}");
    }
    assert!(compared > 100, "compared {compared} token states");
}

#[test]
fn saved_encoder_reloads_to_the_same_states() {
    let model = PretrainedModel::from_dir(tiny_dir()).unwrap();
    let device = ComputeDevice::Cpu.inference_device().unwrap();
    let encoder = model.encoder::<Backend>(&device).unwrap();
    let mut checkpoint = Checkpoint::new();
    model.save(&encoder, &mut checkpoint).unwrap();
    let dir = tempfile::tempdir().unwrap();
    checkpoint.to_directory(dir.path()).unwrap();
    let reloaded =
        PretrainedModel::from_checkpoint(&Checkpoint::from_directory(dir.path()).unwrap()).unwrap();
    let texts = ["the movie was great".to_owned(), "a sad ending".to_owned()];
    let (_, a, _) = run(&model, &texts);
    let (_, b, _) = run(&reloaded, &texts);
    assert_eq!(a, b);
}

/// A copy of tiny-bert in a temporary directory, with `edit` applied to its files.
fn edited_tiny(edit: impl FnOnce(&Path)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in ["config.json", "tokenizer.json", "model.safetensors"] {
        std::fs::copy(tiny_dir().join(f), dir.path().join(f)).unwrap();
    }
    edit(dir.path());
    dir
}

fn load_error(dir: &Path) -> TrainError {
    let device = ComputeDevice::Cpu.inference_device().unwrap();
    match PretrainedModel::from_dir(dir) {
        Err(e) => e,
        Ok(model) => model.encoder::<Backend>(&device).unwrap_err(),
    }
}

#[test]
fn mismatched_or_missing_weights_name_the_tensor_and_shapes() {
    // A config wider than the weights.
    let wide = edited_tiny(|d| {
        let text = std::fs::read_to_string(d.join("config.json")).unwrap();
        let text = text.replace("\"intermediate_size\": 64", "\"intermediate_size\": 96");
        std::fs::write(d.join("config.json"), text).unwrap();
    });
    let e = load_error(wide.path()).to_string();
    assert!(
        e.contains("encoder.layer.0.intermediate.dense.weight")
            && e.contains("[64, 32]")
            && e.contains("[96, 32]"),
        "{e}"
    );

    // A weights file without one layer norm.
    let missing = edited_tiny(|d| {
        let bytes = std::fs::read(d.join("model.safetensors")).unwrap();
        let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let kept: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
            .tensors()
            .into_iter()
            .filter(|(n, _)| n != "encoder.layer.1.output.LayerNorm.bias")
            .collect();
        let out = safetensors::serialize(kept, None).unwrap();
        std::fs::write(d.join("model.safetensors"), out).unwrap();
    });
    let e = load_error(missing.path()).to_string();
    assert!(
        e.contains("encoder.layer.1.output.LayerNorm.bias") && e.contains("missing"),
        "{e}"
    );

    // Not a safetensors file, not a model directory, a tokenizer from another model.
    let garbage = edited_tiny(|d| std::fs::write(d.join("model.safetensors"), b"nope").unwrap());
    let e = load_error(garbage.path()).to_string();
    assert!(
        e.contains("model.safetensors") && e.contains("safetensors"),
        "{e}"
    );
    let e = load_error(Path::new("/nonexistent/model")).to_string();
    assert!(
        e.contains("/nonexistent/model") && e.contains("config.json"),
        "{e}"
    );
    let small_vocab = edited_tiny(|d| {
        let text = std::fs::read_to_string(d.join("config.json")).unwrap();
        let text = text.replace("\"vocab_size\": 396", "\"vocab_size\": 100");
        std::fs::write(d.join("config.json"), text).unwrap();
    });
    let e = load_error(small_vocab.path()).to_string();
    assert!(
        e.contains("tokenizer.json") && e.contains("vocab_size 100"),
        "{e}"
    );
}

/// Training spells attention out in differentiable ops; inference uses burn's fused op: with
/// dropout off the two give the same states.
#[test]
fn training_and_inference_forward_passes_agree() {
    let dir = edited_tiny(|d| {
        let text = std::fs::read_to_string(d.join("config.json")).unwrap();
        let text = text.replace(
            "\"hidden_dropout_prob\": 0.1",
            "\"hidden_dropout_prob\": 0.0",
        );
        std::fs::write(d.join("config.json"), text).unwrap();
    });
    let model = PretrainedModel::from_dir(dir.path()).unwrap();
    assert_eq!(model.config().hidden_dropout_prob, 0.0);
    let texts = [
        "the movie was great",
        "a sad ending with a boring plot",
        "bad",
    ];
    let states = |device: air_train::burn::DispatchDevice| {
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
    let training = states(ComputeDevice::Cpu.training_device().unwrap());
    let inference = states(ComputeDevice::Cpu.inference_device().unwrap());
    let d = max_abs_diff(&training, &inference);
    assert!(d < 1e-5, "training and inference states differ by {d}");
}

#[test]
fn minilm_matches_sentence_transformers() {
    let Some(dir) = minilm_dir() else { return };
    let fixture = read_json("minilm_fixtures.json");
    let cases = fixture["cases"].as_array().unwrap();
    let texts: Vec<String> = cases
        .iter()
        .map(|c| c["text"].as_str().unwrap().to_owned())
        .collect();
    let model = PretrainedModel::from_dir(&dir).unwrap();
    assert_eq!(
        model.tokenizer().max_length() as u64,
        fixture["max_length"].as_u64().unwrap()
    );
    let (batch, _, pooled) = run(&model, &texts);
    let embeddings = normalize(pooled).into_data().to_vec::<f32>().unwrap();
    let width = model.config().hidden_size;
    for (row, case) in cases.iter().enumerate() {
        assert_eq!(
            batch.row_ids(row),
            ids(&case["input_ids"]),
            "ids of {:?}",
            case["text"]
        );
        let d = max_abs_diff(
            &embeddings[row * width..(row + 1) * width],
            &floats(&case["embedding"]),
        );
        assert!(d < 1e-4, "{:?}: embedding differs by {d}", case["text"]);
    }
    assert_eq!(cases.len(), 12);
}

mod fine_tuning {
    use std::num::NonZeroUsize;

    use air_data::{Dataset, polars::prelude::*};
    use air_train::{
        ExistingRun, FromCheckpoint, Predictor, RunConfig, ScalingConfig, Trainer,
        transformers::{
            LabelType, PROBABILITIES, TaskKind, TrainingArgs, TransformersPredictor,
            TransformersTrainer,
        },
    };
    use serde_json::json;

    use super::*;

    const GOOD: [&str; 6] = [
        "great",
        "wonderful",
        "excellent",
        "superb",
        "lovely",
        "brilliant",
    ];
    const BAD: [&str; 6] = ["terrible", "awful", "horrible", "dreadful", "boring", "bad"];
    const THINGS: [&str; 5] = ["acting", "music", "plot", "story", "script"];

    /// `n` short reviews, alternately good and bad, over the tiny tokenizer's words.
    fn reviews(n: usize, offset: usize) -> DataFrame {
        let (mut text, mut label) = (Vec::new(), Vec::new());
        for i in offset..offset + n {
            let good = i % 2 == 0;
            let word = if good {
                GOOD[i / 2 % 6]
            } else {
                BAD[i / 2 % 6]
            };
            let thing = THINGS[i / 3 % 5];
            text.push(format!("the {thing} was {word} and the film was {word}"));
            label.push(if good { "positive" } else { "negative" });
        }
        df!("text" => text, "label" => label).unwrap()
    }

    fn args() -> TrainingArgs {
        TrainingArgs::default()
            .with_max_length(32)
            .with_batch_size(8)
            .with_learning_rate(3e-3)
            .with_num_epochs(3)
    }

    fn trainer(
        workers: usize,
        args: TrainingArgs,
        storage: &Path,
    ) -> air_train::DataParallelTrainer {
        TransformersTrainer::new(
            PretrainedModel::from_dir(tiny_dir()).unwrap(),
            args,
            Dataset::from_polars(reviews(96, 0)),
            ScalingConfig::new(NonZeroUsize::new(workers).unwrap()),
            RunConfig::new(storage.display().to_string().as_str()).with_name("tiny"),
        )
        .unwrap()
        .with_dataset("evaluation", Dataset::from_polars(reviews(40, 1000)))
    }

    #[test]
    fn fine_tunes_on_two_workers_then_predicts_from_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let result = trainer(2, args().with_num_epochs(5), dir.path())
            .fit()
            .unwrap()
            .into_result()
            .unwrap();
        let accuracy = result.metrics["eval_accuracy"].as_f64().unwrap();
        assert!(
            accuracy >= 0.9,
            "eval accuracy {accuracy}: {:?}",
            result.metrics
        );
        assert_eq!(result.metrics["epoch"], json!(4));
        assert_eq!(result.metrics_dataframe().unwrap().height(), 5);
        // 96 rows over 2 workers, batches of 8: 6 steps an epoch.
        assert_eq!(result.metrics["step"], json!(30));

        let checkpoint = result.checkpoint.unwrap();
        let predictor = TransformersPredictor::from_checkpoint(&checkpoint).unwrap();
        assert_eq!(
            predictor.task().kind,
            TaskKind::Classification {
                labels: vec!["negative".into(), "positive".into()],
                label_type: LabelType::Text
            }
        );
        let eval = reviews(40, 1000);
        let out = predictor.predict(eval.clone()).unwrap();
        let predicted: Vec<&str> = out
            .column("predictions")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .map(Option::unwrap)
            .collect();
        let truth: Vec<&str> = eval
            .column("label")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .map(Option::unwrap)
            .collect();
        let correct = predicted.iter().zip(&truth).filter(|(p, t)| p == t).count();
        assert_eq!(
            correct as f64 / 40.0,
            accuracy,
            "the predictor agrees with the trainer's evaluation"
        );
        let probabilities = air_data::to_f32_matrix(&out, &[PROBABILITIES]).unwrap();
        assert_eq!((probabilities.rows, probabilities.cols), (40, 2));
        for p in probabilities.data.chunks(2) {
            assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        }
        // Forward passes of 3 texts give the same answers as of 32.
        let small = TransformersPredictor::from_checkpoint(&checkpoint)
            .unwrap()
            .with_batch_size(NonZeroUsize::new(3).unwrap());
        let again = small.predict(eval).unwrap();
        assert_eq!(
            again.column("predictions").unwrap(),
            out.column("predictions").unwrap()
        );
    }

    #[test]
    fn a_relaunched_run_resumes_after_its_last_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let first = trainer(1, args().with_num_epochs(2), dir.path())
            .fit()
            .unwrap()
            .into_result()
            .unwrap();
        assert_eq!(first.metrics["epoch"], json!(1));
        let resumed = trainer(1, args().with_num_epochs(3), dir.path())
            .with_existing_run(ExistingRun::Resume)
            .fit()
            .unwrap()
            .into_result()
            .unwrap();
        assert_eq!(resumed.metrics["epoch"], json!(2));
        // 12 steps an epoch; the resumed run took the third epoch's only.
        assert_eq!(resumed.metrics["step"], json!(36));
        let epochs: Vec<i64> = resumed
            .metrics_dataframe()
            .unwrap()
            .column("epoch")
            .unwrap()
            .i64()
            .unwrap()
            .into_no_null_iter()
            .collect();
        assert_eq!(epochs, vec![0, 1, 2]);
    }

    #[test]
    fn bad_columns_and_labels_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let model = || PretrainedModel::from_dir(tiny_dir()).unwrap();
        let scaling = || ScalingConfig::new(NonZeroUsize::new(1).unwrap());
        let run = || RunConfig::new(dir.path().display().to_string().as_str());
        let data = Dataset::from_polars(reviews(8, 0));
        let e = TransformersTrainer::new(
            model(),
            args().with_columns("text", "sentiment"),
            data.clone(),
            scaling(),
            run(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("sentiment") && e.contains("label"), "{e}");
        let floats =
            Dataset::from_polars(df!("text" => ["a", "b"], "label" => [0.5, 1.5]).unwrap());
        let e = TransformersTrainer::new(model(), args(), floats, scaling(), run())
            .unwrap_err()
            .to_string();
        assert!(e.contains("label") && e.contains("f64"), "{e}");
        let one_class =
            Dataset::from_polars(df!("text" => ["a", "b"], "label" => ["x", "x"]).unwrap());
        let e = TransformersTrainer::new(model(), args(), one_class, scaling(), run())
            .unwrap_err()
            .to_string();
        assert!(e.contains("at least 2 classes"), "{e}");
        // An evaluation label the training data never had fails the run, naming it.
        let odd_eval =
            Dataset::from_polars(df!("text" => ["a good film"], "label" => ["neutral"]).unwrap());
        let e = TransformersTrainer::new(
            model(),
            args().with_num_epochs(1),
            data,
            scaling(),
            run().with_name("odd"),
        )
        .unwrap()
        .with_dataset("evaluation", odd_eval)
        .fit()
        .unwrap()
        .into_result()
        .unwrap_err()
        .to_string();
        assert!(e.contains("neutral") && e.contains("positive"), "{e}");
        // The predictor names a missing text column.
        let predictor =
            TransformersPredictor::from_pretrained(&model(), ComputeDevice::Cpu).unwrap();
        let e = predictor
            .predict(df!("review" => ["x"]).unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("text") && e.contains("review"), "{e}");
    }

    #[test]
    fn embedding_predictor_gives_unit_vectors_in_input_order() {
        let model = PretrainedModel::from_dir(tiny_dir()).unwrap();
        let predictor = TransformersPredictor::from_pretrained(&model, ComputeDevice::Cpu)
            .unwrap()
            .with_batch_size(NonZeroUsize::new(2).unwrap());
        let texts = [
            "a",
            "the movie was great and the music was lovely",
            "bad",
            "the plot",
        ];
        let out = predictor.predict(df!("text" => texts).unwrap()).unwrap();
        let m = air_data::to_f32_matrix(&out, &["predictions"]).unwrap();
        assert_eq!((m.rows, m.cols), (4, 32));
        let rows: Vec<&[f32]> = m.data.chunks(32).collect();
        for (text, row) in texts.iter().zip(&rows) {
            let norm: f32 = row.iter().map(|v| v * v).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-5, "{text}: norm {norm}");
            let (_, one) = predictor.outputs(&[*text]).unwrap();
            assert!(max_abs_diff(row, &one) < 1e-5, "{text} alone differs");
        }
    }
}
