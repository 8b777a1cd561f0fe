"""The sklearn_bench example's estimators with scikit-learn, on the same file.

    python3 benches/programs/sklearn_bench.py --input /tmp/sklearn.parquet

Prints fit seconds, prediction rows/s and the test score per estimator. Needs pandas,
pyarrow and scikit-learn.
"""

import argparse
import os
import time

import pandas as pd
import sklearn
from sklearn.cluster import KMeans
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--input", required=True)
    args = parser.parse_args()
    df = pd.read_parquet(args.input)
    X = df[[f"f{j}" for j in range(20)]].to_numpy(dtype="float64")
    split = len(df) * 4 // 5
    xtr, xte = X[:split], X[split:]
    y_reg, y_bin = df["y_reg"].to_numpy(), df["y_bin"].to_numpy()
    print(f"{split} train / {len(df) - split} test rows x 20 features, {os.cpu_count()} cpus, "
          f"scikit-learn {sklearn.__version__}")
    svm_rows = min(3000, split)
    cases = [
        (LinearRegression(), y_reg, split, "r2"),
        (Ridge(), y_reg, split, "r2"),
        (LogisticRegression(), y_bin, split, "accuracy"),
        (DecisionTreeClassifier(max_depth=8), y_bin, split, "accuracy"),
        (RandomForestClassifier(n_estimators=50, max_depth=8, n_jobs=-1), y_bin, split, "accuracy"),
        (KNeighborsClassifier(n_jobs=-1), y_bin, split, "accuracy"),
        (GaussianNB(), y_bin, split, "accuracy"),
        (SVC(), y_bin, svm_rows, "accuracy"),
        (KMeans(n_clusters=8, n_init=1), None, split, "inertia"),
    ]
    for model, y, rows, metric in cases:
        start = time.perf_counter()
        if y is None:
            model.fit(xtr[:rows])
        else:
            model.fit(xtr[:rows], y[:rows])
        fit_s = time.perf_counter() - start
        start = time.perf_counter()
        model.predict(xte)
        predict_s = time.perf_counter() - start
        score = -model.score(xte) if y is None else model.score(xte, y[split:])
        print(f"{type(model).__name__:24} fit {rows:>6} rows {fit_s:8.3f} s   "
              f"predict {len(xte) / predict_s:>10.0f} rows/s   {metric} {score:.4f}")


if __name__ == "__main__":
    main()
