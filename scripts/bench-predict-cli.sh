#!/usr/bin/env bash
# `air predict` end to end next to XGBoost in Python on the same file: a synthetic parquet
# table (ROWS rows, 20 float32 features), a booster of 10 rounds of depth 6 trained on its
# first 100,000 rows (by `air train`, and by XGBoost for the Python side), every row scored
# and written to parquet with the `id` column kept. Prints rows/s and `air predict`'s peak
# resident memory.
#
#   scripts/bench-predict-cli.sh [ROWS]
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-1000000}
dir=$(mktemp -d /tmp/air-predict-bench.XXXXXX)
trap 'rm -rf "$dir"' EXIT
cargo build --quiet --release -p air-cli
air=target/release/air
python3 benches/programs/predict_xgboost.py "$dir/data.parquet" --write-data "$rows"
python3 - "$dir" <<'PY'
import sys, pyarrow.parquet as pq
d = sys.argv[1]
pq.write_table(pq.read_table(f"{d}/data.parquet").slice(0, 100_000).drop(["id"]), f"{d}/train.parquet")
PY
cat >"$dir/train.yaml" <<YAML
trainer:
  kind: gbdt
  label_column: label
  datasets: {train: $dir/train.parquet}
  params: {objective: BinaryLogistic, max_depth: 6, eta: 0.3, eval_metric: [logloss]}
  num_boost_round: 10
run: {storage_path: $dir/results, name: bench}
YAML
ckpt=$("$air" train --config "$dir/train.yaml" | sed -n 's/^checkpoint: //p')
for workers in 1 2; do
  start=$(date +%s.%N)
  /usr/bin/time -f "%M" -o "$dir/rss" "$air" predict "$ckpt" "$dir/data.parquet" "$dir/out.parquet" \
    --keep id --workers "$workers" >/dev/null
  end=$(date +%s.%N)
  python3 -c "import pyarrow.parquet as pq; t = pq.read_table('$dir/out.parquet'); assert t.num_rows == $rows and t.column_names == ['predictions', 'id'], t.schema"
  python3 -c "import sys; s = $end - $start; print(f'air predict --workers $workers: $rows rows in {s:.2f} s, {$rows / s:,.0f} rows/s, peak RSS {int(open(\"$dir/rss\").read()) / 1024:.0f} MiB')"
done
ls -l "$dir/data.parquet" | awk '{printf "input file: %.0f MiB\n", $5 / 1048576}'
python3 benches/programs/predict_xgboost.py "$dir/data.parquet" "$dir/out_xgb.parquet"
# Different boosters (each library's own fit), the same task: their predictions agree closely.
python3 - "$dir" <<'PY'
import sys, numpy as np, pyarrow.parquet as pq
d = sys.argv[1]
a, b = (pq.read_table(f"{d}/{f}")["predictions"].to_numpy() for f in ("out.parquet", "out_xgb.parquet"))
print(f"agreement: mean |air - xgboost| = {np.abs(a - b).mean():.4f}, same class on {((a > .5) == (b > .5)).mean():.1%} of rows")
PY
