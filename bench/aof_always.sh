#!/usr/bin/env bash
# Write throughput with the AOF on: ferrokv against redis-server with the
# same settings (`appendonly yes`, `appendfsync always` and `everysec`,
# `aof-use-rdb-preamble no`, no RDB saves), `redis-benchmark -c 50 -P 1 -t
# set,incr`. Runs alternate between the two servers (the order flips each
# round) and the result is the median of the per-round ratios.
#
#   bench/aof_always.sh [ROUNDS] [REQUESTS]     (defaults 5, 50000)
#
# BENCH_DIR: where the AOF directories go (default: a temp dir under the
# repository's target/, on the same disk the project builds on; tmpfs would
# make fsync free). Needs target/release/ferrokv and redis-server,
# redis-benchmark on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
REQUESTS=${2:-50000}
FERROKV=${FERROKV_BIN:-target/release/ferrokv}
REDIS=${REDIS_BIN:-redis-server}
BASE=${BENCH_DIR:-$PWD/target/bench-aof}
PORT_F=${PORT_F:-7391}
PORT_R=${PORT_R:-7392}
mkdir -p "$BASE"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# run_one BIN PORT POLICY -> prints "set incr" requests per second
run_one() {
    local bin=$1 port=$2 policy=$3 dir
    dir=$(mktemp -d "$BASE/run-XXXX")
    "$bin" --port "$port" --bind 127.0.0.1 --dir "$dir" --save '' \
        --appendonly yes --appendfsync "$policy" --aof-use-rdb-preamble no \
        >"$dir/log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    for _ in $(seq 100); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && break
        sleep 0.05
    done
    local out
    out=$(redis-benchmark -p "$port" -c 50 -P 1 -t set,incr -n "$REQUESTS" -q 2>/dev/null | tr '\r' '\n')
    kill "$pid"; wait "$pid" 2>/dev/null || true
    rm -rf "$dir"
    local set incr
    set=$(echo "$out" | grep -o 'SET: [0-9.]*' | tail -1 | awk '{print $2}')
    incr=$(echo "$out" | grep -o 'INCR: [0-9.]*' | tail -1 | awk '{print $2}')
    echo "$set $incr"
}

median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

printf "%-9s %-5s %14s %14s %8s\n" policy test ferrokv_rps redis_rps ratio
for policy in always everysec; do
    set_ratios=(); incr_ratios=(); fs=(); fi_=(); rs=(); ri=()
    for r in $(seq "$ROUNDS"); do
        if (( r % 2 )); then
            f=$(run_one "$FERROKV" "$PORT_F" "$policy"); x=$(run_one "$REDIS" "$PORT_R" "$policy")
        else
            x=$(run_one "$REDIS" "$PORT_R" "$policy"); f=$(run_one "$FERROKV" "$PORT_F" "$policy")
        fi
        read -r f_set f_incr <<<"$f"; read -r r_set r_incr <<<"$x"
        fs+=("$f_set"); fi_+=("$f_incr"); rs+=("$r_set"); ri+=("$r_incr")
        set_ratios+=("$(awk -v a="$f_set" -v b="$r_set" 'BEGIN {printf "%.3f", a/b}')")
        incr_ratios+=("$(awk -v a="$f_incr" -v b="$r_incr" 'BEGIN {printf "%.3f", a/b}')")
        echo "  round $r $policy: ferrokv set $f_set incr $f_incr | redis set $r_set incr $r_incr" >&2
    done
    printf "%-9s %-5s %14s %14s %7sx\n" "$policy" SET \
        "$(printf '%s\n' "${fs[@]}" | median)" "$(printf '%s\n' "${rs[@]}" | median)" \
        "$(printf '%s\n' "${set_ratios[@]}" | median)"
    printf "%-9s %-5s %14s %14s %7sx\n" "$policy" INCR \
        "$(printf '%s\n' "${fi_[@]}" | median)" "$(printf '%s\n' "${ri[@]}" | median)" \
        "$(printf '%s\n' "${incr_ratios[@]}" | median)"
done
