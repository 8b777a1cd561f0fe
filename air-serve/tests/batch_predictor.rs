//! BatchPredictor over every predictor kind: same numbers as the predictor called directly, in
//! input order, bounded memory, worker growth, and errors that name what went wrong.

use std::num::NonZeroUsize;
use std::sync::{
    Arc, Mutex,
    atomic::{AtomicUsize, Ordering},
};

use air_checkpoint::Checkpoint;
use air_data::{Dataset, Preprocessor, StandardScaler, polars::prelude::*, save_preprocessor};
use air_serve::{BatchPredictor, PredictOptions, ServeError};
use air_train::{
    FromCheckpoint, Predictor, RunConfig, Trainer, Verbosity,
    burn::{Backend, BurnPredictor, ModelConfig, save_burn_model},
    burn::{
        nn::{Linear, LinearConfig},
        tensor::Tensor,
    },
    gbdt::GbdtPredictor,
    sklearn::{Estimator, LogisticRegressionParams, SklearnPredictor, SklearnTrainer},
};
use serde::{Deserialize, Serialize};

mod common;
use common::{breast_cancer, scaled_gbdt_checkpoint};

/// The rows with an `id` column (to check order and kept columns) and no label.
fn inputs() -> DataFrame {
    let df = breast_cancer().to_polars().unwrap();
    let n = df.height() as u32;
    let mut df = df.drop("target").unwrap();
    df.with_column(Series::new("id".into(), (0..n).collect::<Vec<u32>>()).into_column())
        .unwrap();
    df
}

fn names(df: &DataFrame) -> Vec<String> {
    df.get_column_names()
        .iter()
        .map(|c| c.to_string())
        .collect()
}

fn run(dir: &tempfile::TempDir) -> RunConfig {
    RunConfig::new(dir.path().to_str().unwrap()).with_verbose(Verbosity::Silent)
}

/// Predictions of `bp` with `options`, checked against `direct` (the predictor on the whole
/// frame) and against the kept id column.
fn check_same(bp: &BatchPredictor, direct: &dyn Predictor, options: PredictOptions) {
    let input = inputs();
    let expected = direct.predict(input.drop("id").unwrap()).unwrap();
    let out = bp
        .predict(
            &Dataset::from_polars(input.clone()),
            &options.with_keep_columns(["id"]),
        )
        .unwrap()
        .to_polars()
        .unwrap();
    assert_eq!(out.height(), input.height());
    assert_eq!(out.column("id").unwrap(), input.column("id").unwrap());
    assert_eq!(
        out.column("predictions").unwrap(),
        expected.column("predictions").unwrap()
    );
}

fn options(batch: usize, workers: usize) -> PredictOptions {
    PredictOptions::new()
        .with_batch_size(NonZeroUsize::new(batch).unwrap())
        .with_scoring_workers(
            NonZeroUsize::new(workers).unwrap(),
            NonZeroUsize::new(workers).unwrap(),
        )
        .with_preprocess_workers(NonZeroUsize::new(2).unwrap())
        .with_feature_columns(names(&inputs().drop("id").unwrap()))
}

#[test]
fn gbdt_predictions_equal_the_predictor_in_input_order() {
    let ckpt = scaled_gbdt_checkpoint();
    let direct = GbdtPredictor::from_checkpoint(&ckpt).unwrap();
    // Behind a preprocessor, the raw input columns come from the checkpoint's metadata.
    let raw = names(&inputs().drop("id").unwrap());
    assert_eq!(direct.input_columns(), Some(raw));
    let bp = BatchPredictor::from_checkpoint(ckpt, GbdtPredictor::from_checkpoint);
    for (batch, workers) in [(7, 1), (7, 2), (100, 2), (10_000, 1)] {
        check_same(&bp, &direct, options(batch, workers));
    }
}

#[test]
fn sklearn_predictions_equal_the_predictor() {
    let dir = tempfile::tempdir().unwrap();
    let trainer = SklearnTrainer::new(
        Estimator::LogisticRegression(LogisticRegressionParams::new()),
        Some("target"),
        run(&dir).with_name("sk"),
    )
    .unwrap()
    .with_dataset("train", breast_cancer())
    .with_preprocessor(StandardScaler::new(
        breast_cancer()
            .columns()
            .unwrap()
            .into_iter()
            .filter(|c| c != "target"),
    ));
    let ckpt = trainer
        .fit()
        .unwrap()
        .into_result()
        .unwrap()
        .checkpoint
        .unwrap();
    let direct = SklearnPredictor::from_checkpoint(&ckpt).unwrap();
    assert_eq!(direct.input_columns().map(|c| c.len()), Some(30));
    let bp = BatchPredictor::from_checkpoint(ckpt, SklearnPredictor::from_checkpoint);
    check_same(&bp, &direct, options(50, 2));
}

/// A linear layer with two outputs: the predictions are an array column.
#[derive(Debug, Serialize, Deserialize)]
struct LinearModel {
    inputs: usize,
}

impl ModelConfig for LinearModel {
    type Model = Linear<Backend>;
    fn init(&self, device: &air_train::burn::DispatchDevice) -> Linear<Backend> {
        LinearConfig::new(self.inputs, 2).init(device)
    }
    fn forward(model: &Linear<Backend>, input: Tensor<Backend, 2>) -> Tensor<Backend, 2> {
        model.forward(input)
    }
}

#[test]
fn burn_predictions_equal_the_predictor() {
    let features = inputs().drop("id").unwrap();
    let config = LinearModel {
        inputs: features.width(),
    };
    let device = air_train::ComputeDevice::Cpu.inference_device().unwrap();
    let mut ckpt = Checkpoint::new();
    save_burn_model(&config, &config.init(&device), &mut ckpt).unwrap();
    let mut scaler = StandardScaler::new(names(&features));
    scaler.fit(&Dataset::from_polars(features)).unwrap();
    save_preprocessor(&scaler, &mut ckpt).unwrap();
    let direct = BurnPredictor::<LinearModel>::from_checkpoint(&ckpt).unwrap();
    let bp = BatchPredictor::from_checkpoint(ckpt, BurnPredictor::<LinearModel>::from_checkpoint);
    check_same(&bp, &direct, options(64, 2));
}

/// Counts batches as the reader produces them and as the model consumes them.
#[derive(Debug, Default)]
struct Counting {
    read: Arc<AtomicUsize>,
    scored: AtomicUsize,
    max_ahead: AtomicUsize,
}

impl Predictor for Counting {
    fn predict(&self, batch: DataFrame) -> air_train::Result<DataFrame> {
        let scored = self.scored.fetch_add(1, Ordering::SeqCst) + 1;
        let ahead = self.read.load(Ordering::SeqCst).saturating_sub(scored);
        self.max_ahead.fetch_max(ahead, Ordering::SeqCst);
        let p = batch.column("x").unwrap().as_materialized_series().clone();
        Ok(DataFrame::new(
            batch.height(),
            vec![p.with_name("predictions".into()).into()],
        )
        .unwrap())
    }
}

#[test]
fn memory_stays_bounded_whatever_the_input_size() {
    let read = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&read);
    // 2,000 batches, generated lazily: a reader that ran ahead would hold them all.
    let ds = Dataset::range(200_000)
        .with_column("x", col("id").cast(DataType::Float64))
        .map_batches(
            move |df: DataFrame| {
                counter.fetch_add(1, Ordering::SeqCst);
                Ok::<_, PolarsError>(df)
            },
            100,
        )
        .unwrap();
    let predictor = Arc::new(Counting {
        read: Arc::clone(&read),
        ..Default::default()
    });
    let p = Arc::clone(&predictor);
    let bp = BatchPredictor::from_checkpoint(Checkpoint::new(), move |_: &Checkpoint| {
        Ok(Shared(Arc::clone(&p)))
    });
    let stream = bp.predict_batches(&ds, &options_plain(100)).unwrap();
    let mut rows = 0;
    let mut last = -1.0;
    for batch in stream {
        let batch = batch.unwrap();
        let p = batch.column("predictions").unwrap().f64().unwrap();
        assert_eq!(p.get(0), Some(last + 1.0), "in order");
        last = p.get(p.len() - 1).unwrap();
        rows += batch.height();
    }
    assert_eq!(rows, 200_000);
    let ahead = predictor.max_ahead.load(Ordering::SeqCst);
    eprintln!("reader ran at most {ahead} batches ahead of the model");
    assert!(ahead <= 64, "the reader ran {ahead} batches ahead");
}

fn options_plain(batch: usize) -> PredictOptions {
    PredictOptions::new()
        .with_batch_size(NonZeroUsize::new(batch).unwrap())
        .with_scoring_workers(NonZeroUsize::new(1).unwrap(), NonZeroUsize::new(2).unwrap())
}

/// A predictor shared between workers (to count across them).
#[derive(Debug)]
struct Shared<P>(Arc<P>);

impl<P: Predictor> Predictor for Shared<P> {
    fn predict(&self, batch: DataFrame) -> air_train::Result<DataFrame> {
        self.0.predict(batch)
    }
    fn preprocess(&self, batch: DataFrame) -> air_train::Result<DataFrame> {
        self.0.preprocess(batch)
    }
    fn predict_preprocessed(&self, batch: DataFrame) -> air_train::Result<DataFrame> {
        self.0.predict_preprocessed(batch)
    }
}

/// The model half waits until five batches were preprocessed. With one preprocessing thread,
/// batch 3 is queued before batch 4 is preprocessed, while the first scorer still holds batch 0
/// and batches 1 and 2 fill the queue (one slot per possible worker): that send finds the queue
/// full, so a second worker must start.
#[derive(Debug, Default)]
struct SlowModel {
    preprocessed: Mutex<usize>,
    more: std::sync::Condvar,
    threads: Mutex<std::collections::HashSet<String>>,
}

impl Predictor for SlowModel {
    fn predict(&self, batch: DataFrame) -> air_train::Result<DataFrame> {
        self.predict_preprocessed(self.preprocess(batch)?)
    }
    fn preprocess(&self, batch: DataFrame) -> air_train::Result<DataFrame> {
        *self.preprocessed.lock().unwrap() += 1;
        self.more.notify_all();
        Ok(batch)
    }
    fn predict_preprocessed(&self, batch: DataFrame) -> air_train::Result<DataFrame> {
        let name = std::thread::current().name().unwrap_or("").to_owned();
        self.threads.lock().unwrap().insert(name);
        let mut n = self.preprocessed.lock().unwrap();
        while *n < 5 {
            n = self.more.wait(n).unwrap();
        }
        drop(n);
        let p = batch.column("id").unwrap().as_materialized_series().clone();
        Ok(DataFrame::new(
            batch.height(),
            vec![p.with_name("predictions".into()).into()],
        )
        .unwrap())
    }
}

#[test]
fn scoring_workers_grow_when_the_model_is_the_bottleneck() {
    let model = Arc::new(SlowModel::default());
    let m = Arc::clone(&model);
    let bp = BatchPredictor::from_checkpoint(Checkpoint::new(), move |_: &Checkpoint| {
        Ok(Shared(Arc::clone(&m)))
    });
    let mut stream = bp
        .predict_batches(&Dataset::range(100), &options_plain(5))
        .unwrap();
    assert_eq!(stream.scoring_workers(), 1);
    let mut rows = 0;
    for b in stream.by_ref() {
        rows += b.unwrap().height();
    }
    assert_eq!(rows, 100);
    assert_eq!(stream.scoring_workers(), 2);
    assert!(model.threads.lock().unwrap().len() >= 2);
}

#[derive(Debug)]
struct Failing {
    panic: bool,
}

impl Predictor for Failing {
    fn predict(&self, batch: DataFrame) -> air_train::Result<DataFrame> {
        let id = batch.column("id").unwrap().i64().unwrap().get(0).unwrap();
        if id >= 50 {
            if self.panic {
                panic!("model blew up at id {id}");
            }
            return Err(air_train::TrainError::model(
                "scoring",
                format!("bad row {id}"),
            ));
        }
        Ok(DataFrame::new(
            batch.height(),
            vec![
                batch
                    .column("id")
                    .unwrap()
                    .clone()
                    .with_name("predictions".into()),
            ],
        )
        .unwrap())
    }
}

#[test]
fn errors_name_what_went_wrong() {
    let ds = Dataset::range(100);
    for panic in [false, true] {
        let bp = BatchPredictor::from_checkpoint(Checkpoint::new(), move |_: &Checkpoint| {
            Ok(Failing { panic })
        });
        let err = bp.predict(&ds, &options_plain(10)).unwrap_err().to_string();
        let expected = if panic {
            "the predictor panicked: model blew up at id "
        } else {
            "bad row "
        };
        assert!(err.contains(expected), "{err}");
    }
    let bp = BatchPredictor::from_checkpoint(Checkpoint::new(), |_: &Checkpoint| {
        Ok(Failing { panic: false })
    });
    let err = bp
        .predict(&ds, &options_plain(10).with_keep_columns(["label"]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("label") && err.contains("keep_columns") && err.contains("id"),
        "{err}"
    );
    // A checkpoint that is not a GBDT one.
    let bp = BatchPredictor::from_checkpoint(Checkpoint::new(), GbdtPredictor::from_checkpoint);
    let err = bp.predict(&ds, &options_plain(10)).unwrap_err().to_string();
    assert!(err.contains("GbdtTrainer"), "{err}");
    // A GPU with a CPU-only factory (and, in a CPU build, no CUDA at all).
    let bp = BatchPredictor::from_checkpoint(Checkpoint::new(), |_: &Checkpoint| {
        Ok(Failing { panic: false })
    });
    let err = bp
        .predict(&ds, &options_plain(10).with_num_gpus_per_worker(1))
        .unwrap_err();
    assert!(matches!(err, ServeError::Predict(_)), "{err}");
    assert!(
        err.to_string().contains("CUDA") || err.to_string().contains("on_device"),
        "{err}"
    );
    // Counts of 0 cannot be set; a maximum below the minimum is refused by name.
    let two = NonZeroUsize::new(2).unwrap();
    let options = PredictOptions::new().with_scoring_workers(two, NonZeroUsize::MIN);
    let e = options.validate().unwrap_err().to_string();
    assert!(e.contains("scoring workers"), "{e}");
}

#[test]
fn empty_input_gives_an_empty_output() {
    let bp = BatchPredictor::from_checkpoint(Checkpoint::new(), |_: &Checkpoint| {
        Ok(Failing { panic: false })
    });
    let out = bp
        .predict(&Dataset::range(0), &options_plain(10))
        .unwrap()
        .to_polars()
        .unwrap();
    assert_eq!(out.height(), 0);
}
