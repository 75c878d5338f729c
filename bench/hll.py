#!/usr/bin/env python3
"""Memory of dense HyperLogLogs, ferrokv against redis-server: RSS growth
per key for N dense HLLs (PFADD of 100 elements with hll-sparse-max-bytes 0,
so every key is promoted at once), on a fresh server each. PFADD/PFCOUNT
throughput is in bench/commands.py.

usage: bench/hll.py [OURS_BIN] [--ref /usr/bin/redis-server] [--pin] [--keys 3000]
"""
import argparse, os, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from commands import Server, resp  # noqa: E402


def memory_per_key(binary, keys, pin):
    s = Server(binary, pin)
    try:
        s.call("CONFIG", "SET", "hll-sparse-max-bytes", "0")
        before = s.rss_kib()
        # 100 elements each: registers on every page of the dense array
        # are written, as a real counter's are.
        s.load([resp("PFADD", "hll:%08d" % i, *["x%d:%d" % (i, j) for j in range(100)])
                 for i in range(keys)], batch=50)
        time.sleep(0.5)
        return (s.rss_kib() - before) * 1024 / keys
    finally:
        s.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ours", nargs="?", default="target/release/ferrokv")
    ap.add_argument("--ref", default="/usr/bin/redis-server")
    ap.add_argument("--pin", action="store_true", help="servers on cpu 1")
    ap.add_argument("--keys", type=int, default=3000)
    a = ap.parse_args()
    spin = "1" if a.pin else None
    mo = memory_per_key(a.ours, a.keys, spin)
    mr = memory_per_key(a.ref, a.keys, spin)
    print(f"memory per dense HLL key: ferrokv {mo:.0f} B, redis {mr:.0f} B, ratio {mo / mr:.3f}")


if __name__ == "__main__":
    sys.exit(main())
