#!/usr/bin/env bash
# Crash-safety soak for the journal: SIGKILLs a writer process many times at
# random moments and checks after each kill that every committed record is
# intact, the torn tail is cut, `verify` passes and appends continue.
# The test suite runs the same test with 60 kills.
#
#   tools/journal_crash_soak.sh [KILLS]     # default 2000
set -euo pipefail
cd "$(dirname "$0")/.."
KILLS=${1:-2000}
echo "journal crash soak: $KILLS SIGKILLs (seed: \$TICKWIRE_JOURNAL_SEED or random)" >&2
TICKWIRE_JOURNAL_KILLS=$KILLS cargo test --release --lib -- --nocapture --exact \
  journal::tests::crash_safety_sigkill_child_writer
