#!/usr/bin/env bash
# Runs the replay-digest invariant test (tests/replay_digest.rs) for a long
# time in a release build: rounds of 8 concurrent clients writing every data
# type, then the recorded effect stream replayed into an empty server and
# DEBUG DIGEST compared, until the time is up.
#
#   scripts/soak_replay.sh [SECONDS]            (default 300)
#
# Environment passed through: REPLAY_OPS (operations per client per round,
# default here 5000), REPLAY_SEED (reproduce a run; the seed is printed),
# REPLAY_BLMOVE=0 (leave BLMOVE/BRPOPLPUSH out), REPLAY_WORKERS (recorder
# worker threads, default 4), REPLAY_LIST_KEYS (list keys per database,
# default 8; 2 for heavy contention on lists). Prints the test's summary
# (rounds, operations, effect records, seconds) or its failure report: the
# first keys whose values differ, both values, and the last records that
# named them.
set -uo pipefail
cd "$(dirname "$0")/.."
export REPLAY_SOAK_SECS=${1:-300}
export REPLAY_OPS=${REPLAY_OPS:-5000}
cargo test --release --test replay_digest -- --nocapture 2>&1 \
    | grep -v '^\s*$' | grep -v '^\s*Compiling\|^\s*Running\|^running'
exit "${PIPESTATUS[0]}"
