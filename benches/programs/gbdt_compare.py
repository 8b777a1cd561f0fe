"""The gbdt_bench example's tasks with XGBoost (tree_method=hist), LightGBM and compiled trees.

    cargo run --release --example gbdt_bench -- --rows 1000000 --features 20 --out /tmp/gbdt_1m.parquet
    python3 benches/programs/gbdt_compare.py --input /tmp/gbdt_1m.parquet

Needs pandas, pyarrow, xgboost, lightgbm, and for compiled trees treelite + tl2cgen (gcc).
Prints, per library, task, growth policy and thread count: seconds per round (the DMatrix /
Dataset construction included, as the Rust side includes its binning), prediction rows/s on
the training rows, and the peak resident set while training over the process's size before
(Linux: the peak is reset through /proc/self/clear_refs). Compiled trees (treelite exports the
XGBoost model to C, tl2cgen compiles it with gcc) predict the same model; compiling is not timed.
"""

import argparse
import os
import tempfile
import time

import lightgbm as lgb
import numpy as np
import pandas as pd
import xgboost as xgb


def rss_mib():
    fields = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value
    kib = lambda k: float(fields[k].split()[0]) / 1024.0
    return kib("VmRSS"), kib("VmHWM")


def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


TASKS = {
    "reg": ("y_reg", "reg:squarederror", "regression", None),
    "binary": ("y_bin", "binary:logistic", "binary", None),
    "multi": ("y_multi", "multi:softprob", "multiclass", 5),
}


def timed(train, predict, rows, rounds):
    reset_peak()
    before, _ = rss_mib()
    start = time.perf_counter()
    model = train()
    train_s = time.perf_counter() - start
    _, peak = rss_mib()
    start = time.perf_counter()
    predict(model)
    predict_s = time.perf_counter() - start
    return model, train_s / rounds, rows / predict_s, peak - before


def line(lib, name, policy, threads, s_round, rows_s, mem):
    mem_text = f"peak +{mem:6.0f} MiB" if mem is not None else ""
    rate = f"train {s_round:7.3f} s/round   " if s_round is not None else " " * 30
    print(f"{lib:<9} {name:<18} {policy:<10} {threads} thr  {rate}predict {rows_s:12.0f} rows/s   {mem_text}",
          flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--input", required=True)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--threads", default=f"1,{os.cpu_count()}")
    parser.add_argument("--tasks", default="reg,binary,multi")
    parser.add_argument("--libraries", default="xgboost,lightgbm,treelite")
    args = parser.parse_args()
    df = pd.read_parquet(args.input)
    features = [c for c in df.columns if c.startswith("f")]
    X = np.ascontiguousarray(df[features].to_numpy(dtype="float32"))
    rows, rounds = len(df), args.rounds
    libraries = args.libraries.split(",")
    print(f"{rows} rows x {len(features)} features, {rounds} rounds, eta 0.3, max_bin 256, "
          f"xgboost {xgb.__version__}, lightgbm {lgb.__version__}")
    for threads in [int(t) for t in args.threads.split(",")]:
        for task in args.tasks.split(","):
            label, xgb_objective, lgb_objective, num_class = TASKS[task]
            y = df[label].to_numpy()
            for policy, xgb_grow, lgb_grow in [
                ("depth 6", {"max_depth": 6}, {"max_depth": 6, "num_leaves": 64}),
                ("63 leaves", {"grow_policy": "lossguide", "max_leaves": 63, "max_depth": 0},
                 {"max_depth": -1, "num_leaves": 63}),
            ]:
                if "xgboost" in libraries or "treelite" in libraries:
                    params = {"objective": xgb_objective, "tree_method": "hist", "eta": 0.3, "max_bin": 256,
                              "nthread": threads, **xgb_grow}
                    if num_class:
                        params["num_class"] = num_class
                    booster, s_round, rows_s, mem = timed(
                        lambda: xgb.train(params, xgb.DMatrix(X, label=y, nthread=threads), num_boost_round=rounds),
                        lambda b: b.inplace_predict(X),
                        rows, rounds)
                    if "xgboost" in libraries:
                        line("xgboost", xgb_objective, policy, threads, s_round, rows_s, mem)
                    if "treelite" in libraries:
                        compiled_line(booster, X, xgb_objective, policy, threads)
                if "lightgbm" in libraries:
                    params = {"objective": lgb_objective, "learning_rate": 0.3, "max_bin": 256, "num_threads": threads,
                              "lambda_l2": 1.0, "min_sum_hessian_in_leaf": 1.0, "min_data_in_leaf": 1,
                              "verbosity": -1, **lgb_grow}
                    if num_class:
                        params["num_class"] = num_class
                    _, s_round, rows_s, mem = timed(
                        lambda: lgb.train(params, lgb.Dataset(X, label=y, params={"max_bin": 256, "verbosity": -1}),
                                          num_boost_round=rounds),
                        lambda b: b.predict(X, num_threads=threads),
                        rows, rounds)
                    line("lightgbm", xgb_objective, policy, threads, s_round, rows_s, mem)


def compiled_line(booster, X, name, policy, threads):
    import tl2cgen
    import treelite

    model = treelite.frontend.from_xgboost(booster)
    with tempfile.TemporaryDirectory() as tmp:
        lib = os.path.join(tmp, "model.so")
        tl2cgen.export_lib(model, toolchain="gcc", libpath=lib, params={"parallel_comp": os.cpu_count()})
        predictor = tl2cgen.Predictor(lib, nthread=threads)
        dmat = tl2cgen.DMatrix(X)
        start = time.perf_counter()
        predictor.predict(dmat)
        rows_s = len(X) / (time.perf_counter() - start)
    line("compiled", name, policy, threads, None, rows_s, None)


if __name__ == "__main__":
    main()
