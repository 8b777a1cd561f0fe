"""The workload of benches/programs/mlflow_bench.rs sent the way Ray's MLflowLoggerCallback
sends it: on the driver, for every result, one `log_metrics` call (one request) on the trial's
run; runs created with their params first and ended at the end.

    python benches/programs/mlflow_python.py --tracking-uri http://127.0.0.1:5077 --trials 10 --results 100

Prints the seconds and results/s, and what a result costs the calling thread.
"""
import argparse
import os
import time

p = argparse.ArgumentParser()
p.add_argument("--tracking-uri", default="http://127.0.0.1:5077")
p.add_argument("--trials", type=int, default=10)
p.add_argument("--results", type=int, default=100)
a = p.parse_args()

os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
import mlflow  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

client = MlflowClient(tracking_uri=a.tracking_uri)
experiment = client.create_experiment(f"py-bench-{os.getpid()}")
start = time.perf_counter()
runs = []
for i in range(a.trials):
    run = client.create_run(experiment, run_name=f"t{i:05d}")
    for k, v in {"lr": 0.01 * (i + 1), "depth": i % 7, "opt": "adam"}.items():
        client.log_param(run.info.run_id, k, v)
    runs.append(run.info.run_id)
for step in range(1, a.results + 1):
    x = float(step)
    for run_id in runs:
        metrics = {"loss": 1.0 / x, "acc": 1.0 - 1.0 / x, "lr": 0.01, "grad_norm": x ** 0.5,
                   "time_this_iter_s": 0.001}
        ts = int(time.time() * 1000)
        client.log_batch(run_id, metrics=[mlflow.entities.Metric(k, v, ts, step)
                                          for k, v in metrics.items()])
for run_id in runs:
    client.set_terminated(run_id)
seconds = time.perf_counter() - start
n = a.trials * a.results
print(f"mlflow {mlflow.__version__} client, one request per result (Ray's way): {a.trials} trials x "
      f"{a.results} results ({n} results, 5 metrics each): {seconds:.2f} s, {n / seconds:.0f} results/s, "
      f"{seconds / n * 1e6:.0f} us per result on the calling thread")
