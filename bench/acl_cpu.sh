#!/bin/bash
# Server CPU per request (utime+stime from /proc) as default vs restricted user; alternating; medians.
P=${P:-7740}; N=${N:-600000}; R=${R:-8}
cd "$(dirname "$0")/.."
taskset -c 1 target/release/ferrokv --port $P --save '' >/dev/null 2>&1 &
SP=$!; sleep 1
pats=""; for i in $(seq 1 19); do pats="$pats ~app$i:*"; done
redis-cli -p $P ACL SETUSER perf on '>pw' $pats '~key:*' -@all +@read +@write +@connection -@dangerous >/dev/null
ticks() { awk '{print $14+$15}' /proc/$SP/stat; }
run() { local t0=$(ticks); taskset -c 0 redis-benchmark -p $P "$@" -t set,get -P 16 -n $N -c 50 -q >/dev/null 2>&1; echo $(( $(ticks) - t0 )); }
for i in $(seq 1 $R); do
  if [ $((i % 2)) -eq 0 ]; then d=$(run); r=$(run --user perf -a pw); else r=$(run --user perf -a pw); d=$(run); fi
  echo "$d $r"
done | awk '{ printf "default %s restricted %s cpu-ratio %.3f\n", $1, $2, $2/$1 }' > "${TMPDIR:-/tmp}/acl_cpu.out"
cat "${TMPDIR:-/tmp}/acl_cpu.out"; sort -k6 -g "${TMPDIR:-/tmp}/acl_cpu.out" | awk '{a[NR]=$6} END {print "median restricted/default CPU", (a[NR/2]+a[NR/2+1])/2}'
kill $SP
