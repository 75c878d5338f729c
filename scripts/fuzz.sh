#!/usr/bin/env bash
# Builds the cargo-fuzz targets in fuzz/ and runs each one for a while.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]    (default 60 s, all targets)
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`). The stable
# toolchain takes cargo-fuzz's -Z flags (sanitizer, coverage) with
# RUSTC_BOOTSTRAP=1. Each target starts from its committed seeds in
# fuzz/corpus/<target>/ and keeps what it finds in fuzz/work/<target>/
# (ignored by git). A crash leaves its input in fuzz/artifacts/<target>/;
# replay it with `cargo fuzz run <target> <file>` in fuzz/.
# Prints, per target, libFuzzer's final stat line (executions, coverage)
# and whether it crashed; exits non-zero if any did.
set -uo pipefail
cd "$(dirname "$0")/../fuzz"

secs=${1:-60}
shift || true
if ! command -v cargo-fuzz >/dev/null; then
    echo "cargo-fuzz is not installed: cargo install cargo-fuzz --locked" >&2
    exit 2
fi
export RUSTC_BOOTSTRAP=1
# Debug assertions: arithmetic overflow is a finding too.
build=(--debug-assertions)
cargo fuzz build "${build[@]}" || exit 1
if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

mkdir -p work
status=0
summary=()
for t in "${targets[@]}"; do
    mkdir -p "work/$t" "corpus/$t"
    log="work/$t.log"
    echo "== $t: ${secs}s"
    cargo fuzz run "${build[@]}" "$t" "work/$t" "corpus/$t" -- \
        -max_total_time="$secs" -max_len=4096 -print_final_stats=1 >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -1)
    if [ $rc -eq 0 ]; then
        verdict="ok"
    else
        status=1
        artifact=$(sed -n 's/.*Test unit written to //p' "$log" | tail -1)
        reason=$(grep -m1 -E 'panicked at|ERROR: (AddressSanitizer|libFuzzer)' "$log")
        verdict="CRASHED (exit $rc) ${artifact:-} ${reason:-}"
        grep -A4 -m1 'panicked at' "$log" | sed 's/^/    /'
    fi
    echo "   ${last:-no stat line}"
    summary+=("$(printf '%-18s %12s execs  %s' "$t" "${execs:-?}" "$verdict")")
done
echo
echo "== summary (${secs}s per target; logs in fuzz/work/<target>.log)"
printf '%s\n' "${summary[@]}"
exit $status
