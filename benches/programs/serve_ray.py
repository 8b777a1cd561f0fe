"""Ray Serve on this machine, for `air-serve/benches/programs/serve_bench.rs` to be compared with.

Serves a no-op model and the breast cancer XGBoost model (20 rounds, trained here on
examples/data/breast_cancer.csv), 1 and 2 replicas, without and with @serve.batch
(max_batch_size=32, batch_wait_timeout_s=0), and loads each with wrk (16 connections, one
breast cancer record per request, the same body as the Rust benchmark). Prints wrk's requests/s
and its p50/p99 latency at that (peak) load.

    pip install "ray[serve]" xgboost pandas
    python3 benches/programs/serve_ray.py --seconds 10
"""

import argparse
import json
import os
import subprocess
import tempfile
import time

import pandas as pd
import ray
import requests
import xgboost as xgb
from ray import serve

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@serve.deployment(max_ongoing_requests=1000)
class Noop:
    async def __call__(self, request):
        await request.json()
        return [{"predictions": 0.0}]


@serve.deployment(max_ongoing_requests=1000)
class NoopBatched:
    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.0)
    async def handle(self, bodies):
        return [[{"predictions": 0.0} for _ in b] for b in bodies]

    async def __call__(self, request):
        return await self.handle(await request.json())


@serve.deployment(max_ongoing_requests=1000)
class Gbdt:
    def __init__(self, model):
        self.booster = xgb.Booster()
        self.booster.load_model(bytearray(model))

    async def __call__(self, request):
        df = pd.DataFrame(await request.json())
        p = self.booster.predict(xgb.DMatrix(df))
        return [{"predictions": float(v)} for v in p]


@serve.deployment(max_ongoing_requests=1000)
class GbdtBatched:
    def __init__(self, model):
        self.booster = xgb.Booster()
        self.booster.load_model(bytearray(model))

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.0)
    async def handle(self, bodies):
        sizes = [len(b) for b in bodies]
        df = pd.DataFrame([r for b in bodies for r in b])
        p = self.booster.predict(xgb.DMatrix(df))
        out, i = [], 0
        for n in sizes:
            out.append([{"predictions": float(v)} for v in p[i : i + n]])
            i += n
        return out

    async def __call__(self, request):
        return await self.handle(await request.json())


def wrk(body, seconds, conns):
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(
            'wrk.method = "POST"\nwrk.body = %s\nwrk.headers["Content-Type"] = "application/json"\n'
            % json.dumps(body)
        )
    out = subprocess.run(
        ["wrk", "-t2", f"-c{conns}", f"-d{seconds}s", "--latency", "-s", f.name, "http://127.0.0.1:8000/"],
        capture_output=True,
        text=True,
    ).stdout
    rate = float(next(l for l in out.splitlines() if l.startswith("Requests/sec:")).split()[1])
    pct = {}
    for l in out.splitlines():
        parts = l.split()
        if len(parts) == 2 and parts[0] in ("50%", "99%"):
            v = parts[1]
            ms = float(v[:-2]) if v.endswith("ms") else float(v[:-2]) / 1e3 if v.endswith("us") else float(v[:-1]) * 1e3
            pct[parts[0]] = ms
    errors = [l for l in out.splitlines() if "Non-2xx" in l or "Socket errors" in l]
    return rate, pct.get("50%"), pct.get("99%"), errors


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=16)
    args = ap.parse_args()
    df = pd.read_csv(os.path.join(ROOT, "examples/data/breast_cancer.csv"))
    x, y = df.drop(columns=["target"]), df["target"]
    booster = xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(x, y), 20)
    model = bytes(booster.save_raw("json"))
    body = json.dumps([{k: float(v) for k, v in x.iloc[0].items()}])
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level="ERROR")
    print(f"ray {ray.__version__}, {args.connections} connections, {args.seconds} s, {len(body)}-byte body")
    models = {
        "no-op": (Noop, NoopBatched, ()),
        "GBDT breast cancer": (Gbdt, GbdtBatched, (model,)),
    }
    for name, (plain, batched_cls, init) in models.items():
        for replicas, batched in [(1, False), (1, True), (2, False), (2, True)]:
            deployment = batched_cls if batched else plain
            serve.run(deployment.options(num_replicas=replicas).bind(*init), route_prefix="/")
            r = requests.post("http://127.0.0.1:8000/", data=body)
            assert r.status_code == 200, r.text
            time.sleep(1)
            rate, p50, p99, errors = wrk(body, args.seconds, args.connections)
            label = f"{name}, {replicas} replica(s), batch {'≤32' if batched else 'off'}"
            print(f"{label:<40} {rate:>9.0f} req/s  p50 {p50} ms  p99 {p99} ms  {' '.join(errors)}")
            serve.delete("default")
    serve.shutdown()


if __name__ == "__main__":
    main()
