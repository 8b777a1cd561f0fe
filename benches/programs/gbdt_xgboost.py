"""The gbdt_bench example's training and prediction with XGBoost (tree_method=hist).

    python3 benches/programs/gbdt_xgboost.py --input /tmp/gbdt.parquet --rounds 10

Prints seconds per round and prediction rows/s with 1 thread and with all threads.
Needs pandas, pyarrow and xgboost.
"""

import argparse
import os
import time

import pandas as pd
import xgboost as xgb


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--input", required=True)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    df = pd.read_parquet(args.input)
    features = [f"f{j}" for j in range(20)]
    X = df[features].to_numpy(dtype="float32")
    print(f"{len(df)} rows x 20 features, {args.rounds} rounds, depth 6, max_bin 256, xgboost {xgb.__version__}")
    for threads in [1, os.cpu_count()]:
        for label, objective in [("y_reg", "reg:squarederror"), ("y_bin", "binary:logistic")]:
            params = {"objective": objective, "tree_method": "hist", "max_depth": 6, "eta": 0.3,
                      "max_bin": 256, "nthread": threads}
            start = time.perf_counter()
            dtrain = xgb.DMatrix(X, label=df[label].to_numpy())
            booster = xgb.train(params, dtrain, num_boost_round=args.rounds)
            train_s = time.perf_counter() - start
            dtest = xgb.DMatrix(X, nthread=threads)
            start = time.perf_counter()
            booster.predict(dtest)
            predict_s = time.perf_counter() - start
            print(f"{objective:<18} {threads:>2} thread(s): train {train_s / args.rounds:7.3f} s/round   "
                  f"predict {len(df) / predict_s:12.0f} rows/s")


if __name__ == "__main__":
    main()
