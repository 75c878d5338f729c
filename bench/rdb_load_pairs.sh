#!/bin/bash
# Start-up loads only, redis-server and ferrokv alternating, on the files
# bench/rdb_save_load.sh left in /tmp/rdbperf-{redis,ferrokv} (same data):
# prints each round's times and ratio, then the median ratio. Alternating
# rounds keep a busy machine's noise out of the ratio better than one run.
#   bash bench/rdb_save_load.sh 1000000 && bash bench/rdb_load_pairs.sh 7
set -u
N=${1:-7}
BIN="$(dirname "$0")/../target/release/ferrokv"
for r in $(seq "$N"); do
  for name in redis ferrokv; do
    bin=$([ $name = redis ] && echo redis-server || echo "$BIN")
    d=/tmp/rdbperf-$name; port=$([ $name = redis ] && echo 7161 || echo 7162)
    t0=$(date +%s.%N)
    $bin --port $port --dir $d --save '' --appendonly no > /dev/null 2>&1 &
    pid=$!
    until redis-cli -p $port ping 2>/dev/null | grep -q PONG; do sleep 0.01; done
    t1=$(date +%s.%N); kill -9 $pid; wait $pid 2>/dev/null
    eval "t_$name=$(echo "$t1-$t0" | bc)"
  done
  echo "redis ${t_redis}s ferrokv ${t_ferrokv}s ratio $(echo "scale=3; $t_ferrokv/$t_redis" | bc)"
done | sort -k6 -n | awk '{print; a[NR]=$6} END {print "median ratio", a[int((NR+1)/2)]}'
