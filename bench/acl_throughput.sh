#!/bin/bash
# ACL hot-path cost: SET/GET (P16, 50 clients) as a restricted user (20 key patterns + category
# rules) vs the default user on the same server; the order alternates each round; median ratios.
P=${P:-7720}; N=${N:-400000}; R=${R:-8}
cd "$(dirname "$0")/.."
taskset -c 1 target/release/ferrokv --port $P --save '' >/dev/null 2>&1 &
SP=$!; sleep 1
pats=""; for i in $(seq 1 19); do pats="$pats ~app$i:*"; done
redis-cli -p $P ACL SETUSER perf on '>pw' $pats '~key:*' -@all +@read +@write +@connection -@dangerous >/dev/null
run() { taskset -c 0 redis-benchmark -p $P "$@" -t set,get -P 16 -n $N -c 50 --csv 2>/dev/null | grep -E '^"(SET|GET)"' | cut -d, -f2 | tr -d '"' | paste -sd' '; }
for i in $(seq 1 $R); do
  if [ $((i % 2)) -eq 0 ]; then d=$(run); r=$(run --user perf -a pw); else r=$(run --user perf -a pw); d=$(run); fi
  echo "$d $r"
done | awk '{ printf "default %s %s restricted %s %s ratio %.3f %.3f\n", $1, $2, $3, $4, $3/$1, $4/$2 }' > "${TMPDIR:-/tmp}/acl_throughput.out"
cat "${TMPDIR:-/tmp}/acl_throughput.out"
sort -k8 -g "${TMPDIR:-/tmp}/acl_throughput.out" | awk '{a[NR]=$8} END {print "median SET ratio", (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'
sort -k9 -g "${TMPDIR:-/tmp}/acl_throughput.out" | awk '{a[NR]=$9} END {print "median GET ratio", (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'
kill $SP
