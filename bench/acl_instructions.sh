#!/bin/bash
# ACL hot-path cost in instructions (deterministic, unlike timings on a
# shared box): the server runs under callgrind for N SET + N GET (P16, 10
# clients), once as the default user and once as a restricted user (20 key
# patterns + category rules); prints both totals and the difference per
# request. Needs valgrind.
BIN=${BIN:-target/release/ferrokv}; P=${P:-7731}; N=${N:-40000}
cd "$(dirname "$0")/.."
out=${TMPDIR:-/tmp}/acl_instructions
mkdir -p "$out"
total() { callgrind_annotate "$1" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'; }
for who in default perf; do
  valgrind --tool=callgrind --callgrind-out-file="$out/$who.out" "$BIN" --port $P --save '' >/dev/null 2>&1 &
  SP=$!
  for _ in $(seq 50); do redis-cli -p $P ping >/dev/null 2>&1 && break; sleep 0.5; done
  pats=""; for i in $(seq 1 19); do pats="$pats ~app$i:*"; done
  redis-cli -p $P ACL SETUSER perf on '>pw' $pats '~key:*' -@all +@read +@write +@connection -@dangerous >/dev/null
  if [ $who = perf ]; then auth="--user perf -a pw"; else auth=""; fi
  redis-benchmark -p $P $auth -t set,get -P 16 -n $N -c 10 -q >/dev/null 2>&1
  redis-cli -p $P shutdown nosave >/dev/null 2>&1; wait $SP
done
d=$(total "$out/default.out"); r=$(total "$out/perf.out")
echo "instructions: default $d restricted $r extra per request $(( (r - d) / (2 * N) ))"
