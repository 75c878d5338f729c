#!/usr/bin/env bash
# Runs the AOF kill test (tests/aof_kill.rs) with many kills: 16 client
# threads write with `appendfsync always` (INCR, RPUSH, HSET, XADD,
# MULTI/EXEC, EVAL, an EXECABORTed transaction), the server is SIGKILLed at
# a random moment and restarted in the same directory, and every
# acknowledged write must be present, nothing that failed, every
# transaction and script whole. BGREWRITEAOF runs at random moments, so
# kills also land mid-rewrite.
#
#   scripts/soak_aof_kill.sh [KILLS]            (default 120)
#
# AOF_KILL_SEED reproduces a run (the seed is printed). Prints the test's
# summary (kills, acknowledged writes checked, seconds) or its failure.
set -uo pipefail
cd "$(dirname "$0")/.."
export AOF_KILLS=${1:-120}
cargo test --test aof_kill -- --nocapture 2>&1 \
    | grep -v '^\s*$' | grep -v '^\s*Compiling\|^\s*Running\|^running'
exit "${PIPESTATUS[0]}"
