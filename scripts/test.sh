#!/usr/bin/env bash
# Runs the whole test suite. Installs the one outside piece the tests need, an S3-compatible
# server (moto, from PyPI), if it is not there yet; the tests start and stop it themselves.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v moto_server >/dev/null 2>&1 && [ -z "${AIR_MOTO_SERVER:-}" ]; then
  echo "== installing moto[server] (the S3-compatible test server) from PyPI"
  python3 -m pip install --quiet --disable-pip-version-check 'moto[server]>=5.1,<6'
  hash -r
fi

# `full`: every feature a machine without a GPU can test (the facade's defaults leave out burn
# and smartcore, and their examples with them).
exec cargo test --workspace --features air/full "$@"
