"""Ray Serve's model composition on this machine, next to `pipeline_bench --part ensemble`.

The same ensemble as the Rust benchmark: two XGBoost models trained here on
examples/data/breast_cancer.csv (20 rounds, depth 6 and depth 3), each a deployment, behind an
ingress deployment that calls both through their handles concurrently and averages the two
probabilities (Ray 2.x's deployment graph, the successor of the Pipeline API). 1 and 2 replicas
per model, without and with @serve.batch (max_batch_size=32, batch_wait_timeout_s=0). Each
deployment asks Ray for 0 CPUs and logs no line per request (Ray would otherwise wait for a third CPU on a 2-core machine;
the processes share the cores as ours do). Each configuration is loaded by the Rust benchmark's own load generator (`--external`), so both
sides are measured by the same client: peak requests/s, then p50/p99 at half of it.

    pip install "ray[serve]" xgboost pandas requests
    cargo build --release -p air-serve --example pipeline_bench
    python3 benches/programs/pipeline_ray.py --seconds 3
"""

import argparse
import asyncio
import json
import os
import subprocess
import time

import pandas as pd
import ray
import requests
import xgboost as xgb
from ray import serve

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Ray's best case: no access log line per request.
QUIET = {"enable_access_log": False, "log_level": "WARNING"}
BENCH = os.path.join(
    os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release/examples/pipeline_bench"
)


@serve.deployment(max_ongoing_requests=1000, ray_actor_options={"num_cpus": 0}, logging_config=QUIET)
class Model:
    def __init__(self, model):
        self.booster = xgb.Booster()
        self.booster.load_model(bytearray(model))

    async def predict(self, records):
        # The Rust client's JSON keys are sorted; the booster wants its training order.
        return self.booster.predict(xgb.DMatrix(pd.DataFrame(records)[self.booster.feature_names])).tolist()


@serve.deployment(max_ongoing_requests=1000, ray_actor_options={"num_cpus": 0}, logging_config=QUIET)
class BatchedModel:
    def __init__(self, model):
        self.booster = xgb.Booster()
        self.booster.load_model(bytearray(model))

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.0)
    async def predict(self, batches):
        sizes = [len(b) for b in batches]
        df = pd.DataFrame([r for b in batches for r in b])[self.booster.feature_names]
        p = self.booster.predict(xgb.DMatrix(df)).tolist()
        out, i = [], 0
        for n in sizes:
            out.append(p[i : i + n])
            i += n
        return out


@serve.deployment(max_ongoing_requests=1000, ray_actor_options={"num_cpus": 0}, logging_config=QUIET)
class Ensemble:
    def __init__(self, deep, shallow):
        self.deep, self.shallow = deep, shallow

    async def __call__(self, request):
        records = await request.json()
        a, b = await asyncio.gather(self.deep.predict.remote(records), self.shallow.predict.remote(records))
        return [{"probability": (x + y) / 2} for x, y in zip(a, b)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--connections", type=int, default=16)
    args = ap.parse_args()
    df = pd.read_csv(os.path.join(ROOT, "examples/data/breast_cancer.csv"))
    x, y = df.drop(columns=["target"]), df["target"]
    models = [
        bytes(xgb.train({"objective": "binary:logistic", "max_depth": d}, xgb.DMatrix(x, y), 20).save_raw("json"))
        for d in (6, 3)
    ]
    body = json.dumps([{k: float(v) for k, v in x.iloc[0].items()}])
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level="ERROR")
    print(f"ray {ray.__version__}, xgboost {xgb.__version__}; {args.connections} connections, {args.seconds} s per run")
    for replicas, batched in [(1, False), (1, True), (2, False), (2, True)]:
        cls = BatchedModel if batched else Model
        app = Ensemble.bind(*[cls.options(num_replicas=replicas).bind(m) for m in models])
        serve.run(app, route_prefix="/ensemble")
        r = requests.post("http://127.0.0.1:8000/ensemble", data=body)
        assert r.status_code == 200, r.text
        time.sleep(1)
        print(f"-- Ray Serve: {replicas} replica(s) per model, batch {'≤32' if batched else 'off'}", flush=True)
        subprocess.run(
            [BENCH, "--external", "127.0.0.1:8000/ensemble", "--seconds", str(args.seconds),
             "--connections", str(args.connections)],
            check=True,
        )
        serve.delete("default")
    serve.shutdown()


if __name__ == "__main__":
    main()
