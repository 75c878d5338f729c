#!/bin/bash
# SAVE and load of the same dataset on redis-server and ferrokv, side by side.
set -u
N=${1:-1000000}
for name in redis ferrokv; do
  bin=$([ $name = redis ] && echo redis-server || echo "$(dirname "$0")/../target/release/ferrokv")
  d=/tmp/rdbperf-$name; rm -rf $d; mkdir -p $d
  port=$([ $name = redis ] && echo 7161 || echo 7162)
  $bin --port $port --dir $d --save '' --appendonly no --enable-debug-command yes > $d/log1 2>&1 &
  pid=$!; sleep 1
  redis-cli -p $port debug populate $N key 32 >/dev/null
  for i in $(seq 0 $((N/100))); do echo "HSET h:$i a 1 b 2 c 3"; echo "ZADD z:$i 1 a 2 b"; echo "RPUSH l:$i a b c d"; done | redis-cli -p $port --pipe >/dev/null
  dig=$(redis-cli -p $port debug digest)
  t0=$(date +%s.%N); redis-cli -p $port save >/dev/null; t1=$(date +%s.%N)
  size=$(stat -c %s $d/dump.rdb)
  kill -9 $pid; wait $pid 2>/dev/null
  t2=$(date +%s.%N)
  $bin --port $port --dir $d --save '' --appendonly no --enable-debug-command yes > $d/log2 2>&1 &
  pid=$!
  until redis-cli -p $port ping 2>/dev/null | grep -q PONG; do sleep 0.02; done
  t3=$(date +%s.%N)
  dig2=$(redis-cli -p $port debug digest)
  kill -9 $pid; wait $pid 2>/dev/null
  echo "$name: save $(echo "$t1-$t0" | bc)s size $size load(start->PONG) $(echo "$t3-$t2" | bc)s digest_same=$([ "$dig" = "$dig2" ] && echo yes || echo no) $(grep -o 'DB loaded from disk: .*' $d/log2)"
done
