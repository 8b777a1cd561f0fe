"""`air predict`'s workload done with XGBoost in Python, end to end: read the parquet file,
predict with a booster of the same size as the one `air train` fits in
scripts/bench-predict-cli.sh (binary:logistic, 10 rounds, depth 6, on the first 100,000 rows),
write the predictions (and the kept `id` column) to parquet.

    python3 benches/programs/predict_xgboost.py DATA.parquet OUT.parquet

`--write-data N` writes the synthetic table instead: N rows, `id`, 20 float32 features
`f0..f19` and a 0/1 `label` from a noisy linear rule.
"""
import argparse
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

p = argparse.ArgumentParser()
p.add_argument("data")
p.add_argument("out", nargs="?")
p.add_argument("--write-data", type=int)
a = p.parse_args()
FEATURES = [f"f{i}" for i in range(20)]

if a.write_data:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((a.write_data, 20), dtype=np.float32)
    w = rng.standard_normal(20).astype(np.float32)
    y = ((x @ w + rng.standard_normal(a.write_data).astype(np.float32)) > 0).astype(np.int64)
    cols = {"id": np.arange(a.write_data, dtype=np.int64)}
    cols.update({f: x[:, i] for i, f in enumerate(FEATURES)})
    cols["label"] = y
    pq.write_table(pa.table(cols), a.data, compression="zstd")
    raise SystemExit(0)

import xgboost as xgb  # noqa: E402

train = pq.read_table(a.data).slice(0, 100_000)
dtrain = xgb.DMatrix(np.column_stack([train[f].to_numpy() for f in FEATURES]),
                     label=train["label"].to_numpy())
booster = xgb.train({"objective": "binary:logistic", "max_depth": 6, "eta": 0.3,
                     "tree_method": "hist", "nthread": 2}, dtrain, num_boost_round=10)

start = time.perf_counter()
table = pq.read_table(a.data, columns=["id"] + FEATURES)
x = np.column_stack([table[f].to_numpy() for f in FEATURES])
pred = booster.inplace_predict(x)
pq.write_table(pa.table({"predictions": pred.astype(np.float64), "id": table["id"]}), a.out,
               compression="zstd")
seconds = time.perf_counter() - start
rows = table.num_rows
print(f"xgboost {xgb.__version__} (read parquet, inplace_predict, write parquet): {rows} rows in "
      f"{seconds:.2f} s, {rows / seconds:,.0f} rows/s")
