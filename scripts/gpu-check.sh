#!/usr/bin/env bash
# Everything the project can check only on a CUDA machine, as one command that prints its
# figures: the `cuda` feature's training and prediction tests (air-train/tests/cuda.rs), the
# MLP training benchmark and the batch-prediction benchmark on CUDA device 0, next to the same
# benchmarks on the CPU.
#
#   scripts/gpu-check.sh                # on a CUDA machine with cargo: build, then run
#   scripts/gpu-check.sh build DIR      # build the programs here (no GPU needed) into DIR
#   scripts/gpu-check.sh run DIR        # run programs built by `build` (no cargo needed)
#
# The build needs no CUDA install (burn loads the driver and NVRTC at run time); the run needs
# the NVIDIA driver and NVRTC, found on LD_LIBRARY_PATH or the usual CUDA folders.
set -euo pipefail
cd "$(dirname "$0")/.."

rows=${AIR_GPU_CHECK_ROWS:-1000000}

build() {
  local dir=$1
  mkdir -p "$dir"
  local features=(--release --features cuda)
  echo "== building the CUDA test and benchmarks (release, --features cuda)"
  cargo build "${features[@]}" --example train_bench --example batch_predict_bench
  local test_bin
  test_bin=$(cargo test "${features[@]}" -p air-train --test cuda --no-run --message-format=json 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)
  [ -n "$test_bin" ] || { echo "could not find the built cuda test binary" >&2; exit 1; }
  cp "$test_bin" "$dir/cuda_tests"
  cp target/release/examples/train_bench target/release/examples/batch_predict_bench "$dir/"
  strip "$dir"/* 2>/dev/null || true
  ls -l "$dir"
}

run() {
  local dir=$1
  for lib in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/nvidia/lib64; do
    [ -d "$lib" ] && export LD_LIBRARY_PATH="$lib:${LD_LIBRARY_PATH:-}"
  done
  # NVRTC may come only with Python's CUDA wheels (nvidia-cuda-nvrtc).
  if command -v python3 >/dev/null; then
    for lib in $(python3 -c 'import glob,site; print(" ".join(glob.glob(p + "/nvidia/cu*/lib") + glob.glob(p + "/nvidia/cuda_nvrtc/lib") for p in site.getsitepackages()))' 2>/dev/null | tr -d "[]',"); do
      [ -d "$lib" ] && export LD_LIBRARY_PATH="$lib:${LD_LIBRARY_PATH:-}"
    done
  fi
  echo "== the machine"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
  nproc
  echo "== tests: air-train/tests/cuda.rs on CUDA device 0"
  "$dir/cuda_tests" --test-threads 1
  echo "== MLP training, one epoch, $rows rows (batch 256, then 4096)"
  for batch in 256 4096; do
    "$dir/train_bench" --rows "$rows" --batch "$batch" --repeat 3 --device cuda
    "$dir/train_bench" --rows "$rows" --batch "$batch" --repeat 3 --device cpu
  done
  echo "== batch prediction, $rows rows (MLP 20→64→64→1 on the device, GBDT on the CPU)"
  "$dir/batch_predict_bench" --rows "$rows" --batch-size 16384 --device cuda
  "$dir/batch_predict_bench" --rows "$rows" --batch-size 65536 --device cuda
}

case "${1:-all}" in
  build) build "${2:?usage: gpu-check.sh build DIR}" ;;
  run) run "${2:?usage: gpu-check.sh run DIR}" ;;
  all)
    dir=target/gpu-check
    build "$dir"
    run "$dir"
    ;;
  *) echo "usage: gpu-check.sh [build DIR | run DIR]" >&2; exit 2 ;;
esac
