"""Ray Tune on the workload of benches/programs/tune_bench.rs: N trials of a trivial function trainable
reporting R results each, 2 at a time (1 CPU each on a 2-CPU Ray), default loggers on or off.

    python benches/programs/tune_ray.py --trials 200 --results 10 --loggers on
    TUNE_DISABLE_AUTO_CALLBACK_LOGGERS=1 python benches/programs/tune_ray.py --loggers off ...

Prints trials/s and results/s of `Tuner.fit()` (ray.init excluded).
"""
import argparse
import os
import sys
import tempfile
import time

p = argparse.ArgumentParser()
p.add_argument("--trials", type=int, default=200)
p.add_argument("--results", type=int, default=10)
p.add_argument("--concurrency", type=int, default=2)
p.add_argument("--loggers", choices=["on", "off"], default="on")
a = p.parse_args()
if a.loggers == "off":
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")

import ray  # noqa: E402
from ray import tune  # noqa: E402

R = a.results


def trainable(config):
    for i in range(R):
        tune.report({"score": i})


ray.init(num_cpus=a.concurrency, include_dashboard=False, log_to_driver=False)
storage = tempfile.mkdtemp()
tuner = tune.Tuner(
    trainable,
    param_space={"x": tune.uniform(0, 1)},
    tune_config=tune.TuneConfig(num_samples=a.trials, max_concurrent_trials=a.concurrency),
    run_config=tune.RunConfig(storage_path=storage, name="bench", verbose=0),
)
start = time.time()
grid = tuner.fit()
wall = time.time() - start
n = sum(len(r.metrics_dataframe) for r in grid if r.metrics_dataframe is not None)
print(
    f"ray {ray.__version__} loggers {a.loggers}: {a.trials} trials x {R} results, "
    f"{a.concurrency} concurrent: {wall:.2f} s, {a.trials / wall:.1f} trials/s, "
    f"{a.trials * R / wall:.1f} results/s ({n} results in frames)",
    file=sys.stdout,
)
