#!/usr/bin/env bash
# MLflow tracking throughput, side by side: starts a tracking server on 127.0.0.1 (SQLite
# store, as the tests use), runs benches/programs/mlflow_bench.rs (air's MlflowCallback) and
# benches/programs/mlflow_python.py (MLflow's client, one request per result as Ray's
# callback sends), and stops the server.
#
#   scripts/bench-mlflow.sh [TRIALS] [RESULTS_AIR] [RESULTS_PYTHON]
set -euo pipefail
cd "$(dirname "$0")/.."
trials=${1:-10} results=${2:-1000} py_results=${3:-100}
dir=$(mktemp -d /tmp/air-mlflow-bench.XXXXXX)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m mlflow server --host 127.0.0.1 --port "$port" --workers 1 \
  --backend-store-uri "sqlite:///$dir/mlflow.db" --artifacts-destination "$dir/artifacts" \
  >"$dir/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 600); do
  curl -sf "http://127.0.0.1:$port/health" >/dev/null && break
  kill -0 $server 2>/dev/null || { cat "$dir/server.log" >&2; exit 1; }
  sleep 0.2
done
cargo run --quiet --release --features track --example mlflow_bench -- \
  --tracking-uri "http://127.0.0.1:$port" --trials "$trials" --results "$results"
python3 benches/programs/mlflow_python.py --tracking-uri "http://127.0.0.1:$port" \
  --trials "$trials" --results "$py_results"
