"""Ray AIR's quick start flow on this machine, for `examples/quickstart.rs` to be compared with.

The same stages on the same CSV: read and split 70/30, scale two columns, train XGBoost for 20
rounds on 2 workers, tune max_depth/eta over 8 trials with ASHA, batch-predict the validation
split from the best checkpoint and print its accuracy, serve it with Ray Serve, send 3 requests,
shut down. Prints each stage's wall time (ray.init is counted in the first stage).

    pip install "ray[serve,train,tune,data]" xgboost pandas requests
    python3 benches/programs/quickstart_ray.py
"""

import os
import tempfile
import time

import pandas as pd
import ray
import requests
import xgboost as xgb
from ray import serve, train, tune
from ray.data.preprocessors import StandardScaler
from ray.train import RunConfig, ScalingConfig
from ray.train.xgboost import RayTrainReportCallback, XGBoostTrainer
from ray.tune.integration.ray_train import TuneReportCallback
from ray.tune.schedulers import ASHAScheduler

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROUNDS = 20


class Stage:
    def __init__(self, name):
        self.name, self.start = name, time.perf_counter()

    def done(self):
        print(f"[{time.perf_counter() - self.start:8.3f} s] {self.name}\n", flush=True)


def train_fn(config):
    train_df = train.get_dataset_shard("train").materialize().to_pandas()
    valid_df = train.get_dataset_shard("valid").materialize().to_pandas()
    dtrain = xgb.DMatrix(train_df.drop(columns=["target"]), train_df["target"])
    dvalid = xgb.DMatrix(valid_df.drop(columns=["target"]), valid_df["target"])
    params = {"objective": "binary:logistic", "eval_metric": ["logloss", "error"]}
    params.update(config.get("params", {}))
    xgb.train(
        params,
        dtrain,
        num_boost_round=ROUNDS,
        evals=[(dtrain, "train"), (dvalid, "valid")],
        callbacks=[RayTrainReportCallback()],
    )


@serve.deployment
class Model:
    def __init__(self, booster_json, scaler):
        self.booster = xgb.Booster()
        self.booster.load_model(bytearray(booster_json))
        self.scaler = scaler

    async def __call__(self, request):
        df = self.scaler.transform_batch(pd.DataFrame(await request.json()))
        return [{"predictions": float(p)} for p in self.booster.predict(xgb.DMatrix(df))]


def main():
    total = time.perf_counter()
    storage = tempfile.mkdtemp()
    stage = Stage("read and split (with ray.init)")
    # Ray schedules by logical CPUs: 2 training workers plus Train's controller need 3, so on
    # a 2-core machine the job never starts with num_cpus=2. Oversubscribe as Ray's docs advise.
    ray.init(num_cpus=max(4, os.cpu_count()), include_dashboard=False, logging_level="ERROR")
    ds = ray.data.read_csv(os.path.join(ROOT, "examples/data/breast_cancer.csv"))
    train_ds, valid_ds = ds.train_test_split(test_size=0.3)
    scaler = StandardScaler(columns=["mean radius", "mean texture"])
    scaler = scaler.fit(train_ds)
    train_ds, valid_scaled = scaler.transform(train_ds), scaler.transform(valid_ds)
    print(f"breast cancer: {train_ds.count()} train rows, {valid_ds.count()} validation rows")
    stage.done()

    stage = Stage("train (XGBoost, 2 workers)")
    trainer = XGBoostTrainer(
        train_fn,
        scaling_config=ScalingConfig(num_workers=2),
        datasets={"train": train_ds, "valid": valid_scaled},
        run_config=RunConfig(storage_path=storage, name="train"),
    )
    result = trainer.fit()
    print({k: v for k, v in result.metrics.items() if k.startswith(("train-", "valid-"))})
    stage.done()

    stage = Stage("tune (8 trials, ASHA)")

    # Ray Train 2's trainers are not Tune trainables: each trial is a function that runs a
    # trainer and forwards its reports to Tune (Ray's documented pattern).
    def trial(config):
        XGBoostTrainer(
            train_fn,
            train_loop_config=config,
            scaling_config=ScalingConfig(num_workers=2),
            datasets={"train": train_ds, "valid": valid_scaled},
            run_config=RunConfig(
                storage_path=storage,
                name=f"trial_{tune.get_context().get_trial_id()}",
                callbacks=[TuneReportCallback()],
            ),
        ).fit()

    tuner = tune.Tuner(
        tune.with_resources(trial, {"cpu": 1}),
        param_space={"params": {"max_depth": tune.randint(2, 8), "eta": tune.loguniform(1e-2, 0.5)}},
        tune_config=tune.TuneConfig(
            num_samples=8,
            metric="valid-logloss",
            mode="min",
            scheduler=ASHAScheduler(max_t=ROUNDS, grace_period=2, reduction_factor=3),
            # Each trial's trainer needs 3 more logical CPUs: more trials at once deadlock.
            max_concurrent_trials=1,
        ),
        run_config=tune.RunConfig(storage_path=storage, name="tune"),
    )
    best = tuner.fit().get_best_result()
    print("best:", best.metrics["valid-logloss"], best.config["params"])
    stage.done()

    stage = Stage("batch predict the validation split")
    booster = RayTrainReportCallback.get_model(best.checkpoint)
    booster_json = bytes(booster.save_raw("json"))

    class Predict:
        def __init__(self):
            self.booster = xgb.Booster()
            self.booster.load_model(bytearray(booster_json))

        def __call__(self, batch):
            x = batch.drop(columns=["target"])
            batch["predictions"] = self.booster.predict(xgb.DMatrix(x))
            return batch[["predictions", "target"]]

    out = valid_scaled.map_batches(Predict, batch_format="pandas", concurrency=1).to_pandas()
    acc = ((out["predictions"] > 0.5) == (out["target"] > 0.5)).mean()
    print(f"validation accuracy {acc:.4f} ({len(out)} rows)")
    stage.done()

    stage = Stage("serve, query, shut down")
    serve.run(Model.bind(booster_json, scaler), route_prefix="/")
    rows = valid_ds.take(3)
    for r in rows:
        r.pop("target")
        answer = requests.post("http://127.0.0.1:8000/", json=[r])
        print("POST / ->", answer.status_code, answer.text)
    serve.shutdown()
    stage.done()
    ray.shutdown()
    print(f"quick start done in {time.perf_counter() - total:.2f} s")


if __name__ == "__main__":
    main()
