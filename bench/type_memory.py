#!/usr/bin/env python3
"""Memory per key of two value shapes, ferrokv against redis-server: RSS
growth per key on a fresh server each.

- a 12 KB dense HyperLogLog (PFADD of 100 elements with
  hll-sparse-max-bytes 0, so every key is promoted at once);
- a 1,000-member geo set (GEOADD of 1,000 points around one city: a sorted
  set in its skiplist encoding).

PFADD/PFCOUNT/GEOADD throughput is in bench/commands.py.

usage: bench/type_memory.py [OURS_BIN] [--ref /usr/bin/redis-server] [--pin]
                            [--hll-keys 3000] [--geo-keys 300]
"""
import argparse, os, random, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from commands import Server, resp  # noqa: E402


def hll_commands(keys):
    # 100 elements each: registers on every page of the dense array are
    # written, as a real counter's are.
    return [resp("PFADD", "hll:%08d" % i, *["x%d:%d" % (i, j) for j in range(100)])
            for i in range(keys)]


def geo_commands(keys):
    rnd = random.Random(7)
    out = []
    for i in range(keys):
        for chunk in range(10):
            args = []
            for j in range(100):
                args += ["%.6f" % (13.4 + rnd.uniform(-0.5, 0.5)),
                         "%.6f" % (52.5 + rnd.uniform(-0.3, 0.3)),
                         "place:%d:%d" % (i, chunk * 100 + j)]
            out.append(resp("GEOADD", "geo:%06d" % i, *args))
    return out


def memory_per_key(binary, commands, keys, pin, setup=()):
    s = Server(binary, pin)
    try:
        for args in setup:
            s.call(*args)
        before = s.rss_kib()
        s.load(commands, batch=50)
        time.sleep(0.5)
        return (s.rss_kib() - before) * 1024 / keys
    finally:
        s.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ours", nargs="?", default="target/release/ferrokv")
    ap.add_argument("--ref", default="/usr/bin/redis-server")
    ap.add_argument("--pin", action="store_true", help="servers on cpu 1")
    ap.add_argument("--hll-keys", type=int, default=3000)
    ap.add_argument("--geo-keys", type=int, default=300)
    a = ap.parse_args()
    spin = "1" if a.pin else None
    cases = [
        ("dense HLL", hll_commands(a.hll_keys), a.hll_keys,
         [("CONFIG", "SET", "hll-sparse-max-bytes", "0")]),
        ("1,000-member geo set", geo_commands(a.geo_keys), a.geo_keys, []),
    ]
    for name, commands, keys, setup in cases:
        mo = memory_per_key(a.ours, commands, keys, spin, setup)
        mr = memory_per_key(a.ref, commands, keys, spin, setup)
        print(f"memory per {name} key: ferrokv {mo:.0f} B, redis {mr:.0f} B, ratio {mo / mr:.3f}")


if __name__ == "__main__":
    sys.exit(main())
