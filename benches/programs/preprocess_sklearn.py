"""The preprocess_bench example's operations with scikit-learn + pandas, on the same file.

    python3 benches/programs/preprocess_sklearn.py --input /tmp/synthetic.parquet [--in-memory]

Fit + transform, materialised as a pandas frame (or a numpy array for the concatenation),
median of three runs, rows/s. Needs pandas, pyarrow and scikit-learn.
"""

import argparse
import statistics
import time

import numpy as np
import pandas as pd
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, StandardScaler


def timed(name, rows, fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    t = statistics.median(times)
    print(f"{name:<44} {t:7.3f} s {rows / t:12.0f} rows/s")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--input", required=True)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--in-memory", action="store_true", help="load first; time without the read")
    args = parser.parse_args()
    path = args.input
    floats = [f"f{j}" for j in range(20)]
    rows = len(pd.read_parquet(path, columns=["f0"]))
    loaded = pd.read_parquet(path) if args.in_memory else None
    what = "data already in memory" if args.in_memory else "reading the file included"
    print(f"{path}: {rows} rows; scikit-learn + pandas, {what}; median of {args.repeat}")

    def read():
        return loaded.copy() if loaded is not None else pd.read_parquet(path)

    def standard():
        df = read()
        df[floats] = StandardScaler().fit_transform(df[floats])
        return df

    def min_max():
        df = read()
        df[floats] = MinMaxScaler().fit_transform(df[floats])
        return df

    def one_hot():
        df = read()
        enc = OneHotEncoder(sparse_output=False, dtype=np.int64)
        encoded = enc.fit_transform(df[["cat_a", "cat_b"]])
        out = pd.DataFrame(encoded, columns=enc.get_feature_names_out(), index=df.index)
        return pd.concat([df.drop(columns=["cat_a", "cat_b"]), out], axis=1)

    def concat():
        df = read()
        return df[floats].to_numpy(dtype=np.float32)

    def chain():
        df = read()
        df[floats[:10]] = StandardScaler().fit_transform(df[floats[:10]])
        df[floats[10:]] = MinMaxScaler().fit_transform(df[floats[10:]])
        enc = OneHotEncoder(sparse_output=False, dtype=np.int64)
        encoded = enc.fit_transform(df[["cat_a", "cat_b"]])
        df = pd.concat(
            [df.drop(columns=["cat_a", "cat_b"]), pd.DataFrame(encoded, index=df.index)], axis=1
        )
        return df.to_numpy(dtype=np.float32)

    if loaded is None:
        timed("read only: every column", rows, read, args.repeat)
        timed(
            "read only: the 20 float columns",
            rows,
            lambda: pd.read_parquet(path, columns=floats),
            args.repeat,
        )
    timed("StandardScaler (20 floats)", rows, standard, args.repeat)
    timed("MinMaxScaler (20 floats)", rows, min_max, args.repeat)
    timed("OneHotEncoder (cat_a, cat_b)", rows, one_hot, args.repeat)
    timed("Concatenator (20 floats -> f32 array)", rows, concat, args.repeat)
    timed("Chain (standard, min-max, one-hot, concat)", rows, chain, args.repeat)


if __name__ == "__main__":
    main()
