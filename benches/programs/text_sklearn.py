"""The text_bench example's operations with scikit-learn + pandas, on the same file.

    python3 benches/programs/text_sklearn.py --input /tmp/docs.parquet

Fit + transform to a dense numpy matrix (what the Rust side materialises), median of three
runs, rows/s. Needs pandas, pyarrow and scikit-learn.
"""

import argparse
import statistics
import time

import pandas as pd
from sklearn.feature_extraction.text import CountVectorizer, HashingVectorizer


def timed(name, rows, fn):
    times = []
    for _ in range(3):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    t = statistics.median(times)
    print(f"{name:<52} {t:7.3f} s {rows / t:12.0f} rows/s")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--input", required=True)
    args = parser.parse_args()
    rows = len(pd.read_parquet(args.input))
    print(f"{args.input}: {rows} documents; scikit-learn, reading the file included; median of 3")

    def count(max_features):
        docs = pd.read_parquet(args.input)["doc"]
        cv = CountVectorizer(tokenizer=str.split, token_pattern=None, lowercase=False,
                             max_features=max_features)
        return cv.fit_transform(docs).toarray()

    def hashing():
        docs = pd.read_parquet(args.input)["doc"]
        hv = HashingVectorizer(n_features=1024, tokenizer=str.split, token_pattern=None,
                               lowercase=False, norm=None, alternate_sign=False)
        return hv.transform(docs).toarray()

    timed("CountVectorizer (max_features 1000, dense)", rows, lambda: count(1000))
    timed("CountVectorizer (max_features 100, dense)", rows, lambda: count(100))
    timed("HashingVectorizer (1024 buckets, dense)", rows, hashing)


if __name__ == "__main__":
    main()
