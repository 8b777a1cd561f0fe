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
