#!/usr/bin/env bash
# The README's test command. Sets up everything the test suite needs on a
# fresh machine (idempotent: quick when already set up), then runs it.
#
#   tools/test.sh            # set up + run every test
#   tools/test.sh --setup    # set up only
#
# What it sets up:
#   - Debian packages: curl, prometheus (promtool)
#   - .venv/ (Python venv, git-ignored): TA-Lib (indicator oracle), numpy,
#     pandas (bar oracle), websockets (third-party WebSocket client)
# Then: cargo test (unit, integration, doc tests). Exits non-zero when any
# test fails.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

log() { printf '== %s\n' "$*" >&2; }

# --- Debian packages -------------------------------------------------------
APT_UPDATED=0
need_apt() { # need_apt <command> <package>
  if ! command -v "$1" >/dev/null 2>&1; then
    if [ "$(id -u)" != 0 ]; then
      log "missing $1 (package $2) and not root: install it, then re-run"
      return 1
    fi
    if [ "$APT_UPDATED" = 0 ]; then
      log "apt-get update"
      apt-get update -qq >/dev/null
      APT_UPDATED=1
    fi
    log "apt-get install $2"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
  fi
}

need_apt curl curl                 # tests/server_http.rs (real HTTP client)
need_apt promtool prometheus       # tests/server_metrics.rs (promtool check metrics)

# --- Python venv -----------------------------------------------------------
PY_PKGS=(TA-Lib==0.8.2 numpy pandas websockets)
VENV="$ROOT/.venv"
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import talib, numpy, pandas, websockets' >/dev/null 2>&1; then
  log "pip install ${PY_PKGS[*]}"
  "$VENV/bin/pip" install -q --disable-pip-version-check "${PY_PKGS[@]}"
fi
export TICKWIRE_TEST_PYTHON="$VENV/bin/python"
export TALIB_PYTHON="$VENV/bin/python"

if [ "${1:-}" = "--setup" ]; then
  log "setup done"
  exit 0
fi

# --- Tests -----------------------------------------------------------------
if [ -d "$ROOT/../shared/data/real" ]; then
  log "recorded data found at ../shared/data/real: capture tests run"
else
  log "../shared/data/real absent: capture tests will print SKIPPED"
fi
log "cargo test"
cargo test --locked --all-features -- --test-threads="${TEST_THREADS:-2}"
