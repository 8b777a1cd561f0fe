//! RLPredictor: every layout observations arrive in, the output column, sampling, and
//! observations that do not fit.

use std::num::NonZeroUsize;

use air_checkpoint::Checkpoint;
use air_data::polars::prelude::*;
use air_rl::{
    RLPredictor,
    algo::{Ppo, PpoConfig},
    env::{Action, EnvSpec},
};
use air_train::{ComputeDevice, FromCheckpoint, Predictor};

fn checkpoint(env: &str) -> (Checkpoint, air_rl::policy::Policy) {
    let mut c = PpoConfig::default();
    c.train_batch_size = 64;
    c.sgd_minibatch_size = 32;
    let ppo = Ppo::new(
        c,
        EnvSpec::named(env).unwrap(),
        ComputeDevice::Cpu,
        NonZeroUsize::MIN,
    )
    .unwrap();
    let mut checkpoint = Checkpoint::new();
    ppo.save(&mut checkpoint).unwrap();
    (checkpoint, ppo.policy())
}

const OBS: [[f32; 4]; 3] = [
    [0.1, -0.2, 0.05, 0.3],
    [0.0, 0.0, -0.1, -0.4],
    [-0.3, 0.5, 0.2, 0.0],
];

fn expected(policy: &air_rl::policy::Policy) -> Vec<i64> {
    OBS.iter()
        .map(|o| match policy.compute_action(o).unwrap() {
            Action::Discrete(a) => a as i64,
            Action::Continuous(_) => unreachable!(),
        })
        .collect()
}

fn actions(out: &DataFrame) -> Vec<i64> {
    out.column("predictions")
        .unwrap()
        .i64()
        .unwrap()
        .into_no_null_iter()
        .collect()
}

#[test]
fn observations_arrive_as_columns_lists_arrays_or_one_value_column() {
    let (checkpoint, policy) = checkpoint("CartPole-v1");
    let predictor = RLPredictor::from_checkpoint(&checkpoint).unwrap();
    let want = expected(&policy);
    let feature = |j: usize| OBS.iter().map(|o| o[j]).collect::<Vec<f32>>();

    // Named columns, in order.
    let columns =
        df!("x" => feature(0), "v" => feature(1), "theta" => feature(2), "omega" => feature(3))
            .unwrap();
    assert_eq!(actions(&predictor.predict(columns.clone()).unwrap()), want);
    // ... or chosen by name, whatever else the frame holds.
    let mut extra = columns.clone();
    extra
        .with_column(Column::new("id".into(), [7i64, 8, 9]))
        .unwrap();
    let chosen = RLPredictor::from_checkpoint(&checkpoint)
        .unwrap()
        .with_obs_columns(&["x", "v", "theta", "omega"]);
    assert_eq!(actions(&chosen.predict(extra).unwrap()), want);

    // One list column (JSON lines), one array column (`{"array": [[...], ...]}`).
    let lists: Vec<Series> = OBS
        .iter()
        .map(|o| Series::new("".into(), o.to_vec()))
        .collect();
    let list = DataFrame::new(3, vec![Column::new("obs".into(), lists)]).unwrap();
    assert_eq!(actions(&predictor.predict(list.clone()).unwrap()), want);
    let array = list
        .lazy()
        .select([col("obs").cast(DataType::Array(Box::new(DataType::Float32), 4))])
        .collect()
        .unwrap();
    assert_eq!(actions(&predictor.predict(array).unwrap()), want);

    // One observation as a 1-D array (Ray's `{"array": obs}`): four rows of `__value__`.
    let one = df!("__value__" => OBS[1].to_vec()).unwrap();
    let out = predictor.predict(one.clone()).unwrap();
    assert_eq!(actions(&out), vec![want[1]]);
    // Preprocessing folds it into one row, which is what a server batches.
    assert_eq!(predictor.preprocess(one).unwrap().height(), 1);
}

#[test]
fn observations_that_do_not_fit_are_named_errors() {
    let (checkpoint, _) = checkpoint("CartPole-v1");
    let predictor = RLPredictor::from_checkpoint(&checkpoint).unwrap();
    let three = df!("a" => [1.0f32], "b" => [2.0f32], "c" => [3.0f32]).unwrap();
    let err = predictor.predict(three).unwrap_err().to_string();
    assert!(
        err.contains("3 values per observation") && err.contains("expected 4"),
        "{err}"
    );
    let short = df!("__value__" => [0.1f32, 0.2]).unwrap();
    let err = predictor.predict(short).unwrap_err().to_string();
    assert!(err.contains("a 1-D array of 2 numbers"), "{err}");
    let nan = df!("a" => [1.0f32], "b" => [f32::NAN], "c" => [3.0f32], "d" => [0.0f32]).unwrap();
    let err = predictor.predict(nan).unwrap_err().to_string();
    assert!(err.contains("NaN at position 1"), "{err}");
    let text = df!("a" => ["left"], "b" => [1.0f32], "c" => [1.0f32], "d" => [1.0f32]).unwrap();
    assert!(predictor.predict(text).is_err());
    let err = RLPredictor::from_checkpoint(&Checkpoint::new())
        .unwrap_err()
        .to_string();
    assert!(err.contains("not an RL checkpoint"), "{err}");
}

#[test]
fn continuous_actions_come_back_clipped_and_sampling_is_seeded() {
    let (checkpoint, _) = checkpoint("Pendulum-v1");
    let obs = df!("cos" => [1.0f32, 0.0], "sin" => [0.0f32, 1.0], "dot" => [0.0f32, -3.0]).unwrap();
    let greedy = RLPredictor::from_checkpoint(&checkpoint).unwrap();
    let out = greedy.predict(obs.clone()).unwrap();
    let values: Vec<f32> = out
        .column("predictions")
        .unwrap()
        .f32()
        .unwrap()
        .into_no_null_iter()
        .collect();
    assert_eq!(values.len(), 2);
    assert!(
        values.iter().all(|v| (-2.0..=2.0).contains(v)),
        "{values:?}"
    );
    // Sampling: reproducible from its seed, and not the greedy action.
    let draw = |seed| {
        RLPredictor::from_checkpoint(&checkpoint)
            .unwrap()
            .with_sampling(seed)
            .actions(&obs)
            .unwrap()
    };
    assert_eq!(draw(3), draw(3));
    assert_ne!(draw(3), draw(4));
    assert_ne!(draw(3), greedy.actions(&obs).unwrap());
}
