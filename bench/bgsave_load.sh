#!/bin/bash
# BGSAVE under write load, ferrokv (no fork: store/snapshot.rs) beside redis-server (fork).
# Not a timed test: a measurement to quote. For each server it fills about MB megabytes
# (string values of VALUE bytes), then runs redis-benchmark SET with CLIENTS clients over the
# same keys twice, for the same number of requests:
#   idle: no snapshot;   bgsave: BGSAVE issued again every 50 ms (one runs all the time).
# While each phase runs it samples every 20 ms the server's VmRSS and the proportional set
# size (Pss) of the server plus its children (Redis's fork child shares pages: its RSS alone
# would count them twice). It prints the peaks, the redis-benchmark p99s and the ratios.
#
#   MB=200 bench/bgsave_load.sh            # small, as run in the issue's notes
#   MB=2000 REQ=4000000 bench/bgsave_load.sh
# Knobs: BIN (ours), REF (redis-server), MB, VALUE, CLIENTS, REQ (requests per phase), PORT,
# PIN=1 (servers, and Redis's fork child with them, on cpu 1, the benchmark on cpu 0, as
# compare.py --pin: the snapshot then competes with the server, not with the client).
set -u
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/ferrokv}; REF=${REF:-/usr/bin/redis-server}
MB=${MB:-200}; VALUE=${VALUE:-100}; CLIENTS=${CLIENTS:-50}; PORT=${PORT:-7760}
if [ -n "${PIN:-}" ]; then SPIN=(taskset -c 1); CPIN=(taskset -c 0); else SPIN=(); CPIN=(); fi
KEYS=$(( MB * 1000000 / (VALUE + 60) ))
REQ=${REQ:-$(( KEYS > 1000000 ? KEYS : 1000000 ))}
work=$(mktemp -d /tmp/bgsave_load.XXXXXX)
trap 'rm -rf "$work"' EXIT

kb_rss() { awk '/^VmRSS:/ {print $2}' /proc/$1/status 2>/dev/null || echo 0; }
kb_pss_tree() { # Pss of the process and its children, in kB
  local total=0 p
  for p in $1 $(pgrep -P $1); do
    total=$(( total + $(awk '/^Pss:/ {print $2}' /proc/$p/smaps_rollup 2>/dev/null || echo 0) ))
  done
  echo $total
}

# sample PID OUTFILE: peak VmRSS and peak Pss (kB) until OUTFILE.stop exists.
# Reading smaps_rollup walks the server's page tables under its mmap lock, which
# stalls the server's page faults: with LATENCY_ONLY=1 nothing is sampled, so the
# p99s are the servers' own (memory columns are then meaningless).
sample() {
  local rss=0 pss=0 r p
  while [ ! -e "$2.stop" ]; do
    if [ -n "${LATENCY_ONLY:-}" ]; then rss=1 pss=1; sleep 0.02; continue; fi
    r=$(kb_rss $1); p=$(kb_pss_tree $1)
    [ "$r" -gt "$rss" ] && rss=$r
    [ "$p" -gt "$pss" ] && pss=$p
    sleep 0.02
  done
  echo "$rss $pss" > "$2"
}

p99() { # redis-benchmark --csv output -> p99 (ms) of its one test
  awk -F'","' 'NR==2 {print $7}' "$1"
}

phase() { # phase NAME PID -> "rssKB pssKB p99ms saves"
  local name=$1 pid=$2 saves=0
  rm -f "$work/$name.mem.stop"
  sample $pid "$work/$name.mem" &
  local sp=$!
  "${CPIN[@]}" redis-benchmark -p $PORT -t set -n $REQ -r $KEYS -d $VALUE -c $CLIENTS --csv \
    > "$work/$name.csv" 2>/dev/null &
  local bp=$!
  while kill -0 $bp 2>/dev/null; do
    if [ "$name" = bgsave ]; then
      case "$(redis-cli -p $PORT bgsave 2>&1)" in *started*) saves=$((saves + 1));; esac
    fi
    sleep 0.05
  done
  touch "$work/$name.mem.stop"; wait $sp
  echo "$(cat "$work/$name.mem") $(p99 "$work/$name.csv") $saves"
}

run() { # run LABEL CMD... -> one result line
  local label=$1; shift
  # The previous server's BGSAVEs left a dump.rdb here: start empty.
  rm -f "$work"/dump.rdb "$work"/temp-*.rdb
  "${SPIN[@]}" "$@" --port $PORT --save '' --appendonly no --dir "$work" --enable-debug-command local \
    >"$work/$label.log" 2>&1 &
  for _ in $(seq 100); do redis-cli -p $PORT ping >/dev/null 2>&1 && break; sleep 0.1; done
  # The server's own pid (a packaged redis-server may be a wrapper).
  local pid; pid=$(redis-cli -p $PORT info server | tr -d '\r' | awk -F: '/^process_id:/ {print $2}')
  [ -n "${DEBUG:-}" ] && echo "pid=$pid" >&2
  # Fill: every key of the range, pipelined.
  redis-benchmark -p $PORT -t set -n $(( KEYS * 3 )) -r $KEYS -d $VALUE -c 20 -P 64 -q \
    >/dev/null 2>&1
  local dbsize; dbsize=$(redis-cli -p $PORT dbsize)
  sleep 1
  read -r irss ipss ip99 _ <<< "$(phase idle $pid)"
  # Let the last BGSAVE of redis finish before the measurements are read.
  read -r brss bpss bp99 saves <<< "$(phase bgsave $pid)"
  redis-cli -p $PORT shutdown nosave >/dev/null 2>&1; wait 2>/dev/null
  # The next server must not find this one still answering on the port.
  for _ in $(seq 100); do redis-cli -p $PORT ping >/dev/null 2>&1 || break; sleep 0.1; done
  awk -v l="$label" -v k="$dbsize" -v ir="$irss" -v br="$brss" -v ip="$ipss" -v bp="$bpss" \
      -v i9="$ip99" -v b9="$bp99" -v s="$saves" 'BEGIN {
    printf "| %s | %d | %.0f | %.0f | %.2f | %.0f | %.0f | %.2f | %.3f | %.3f | %.2f | %d |\n",
      l, k, ir/1024, br/1024, br/ir, ip/1024, bp/1024, bp/ip, i9, b9, b9/i9, s }'
}

echo "MB=$MB keys=$KEYS value=$VALUE clients=$CLIENTS requests/phase=$REQ"
echo "| server | keys | RSS idle MB | RSS bgsave MB | ratio | Pss idle MB | Pss bgsave MB | ratio | p99 idle ms | p99 bgsave ms | ratio | BGSAVEs |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
[ -n "${ONLY_REF:-}" ] || run ferrokv "$BIN"
run redis "$REF"
