#!/usr/bin/env python3
"""PFADD / PFCOUNT throughput and dense-HLL memory, ferrokv against redis-server.

compare.py only runs redis-benchmark's built-in tests (-t), which have no
PF* command, so this runs redis-benchmark with explicit commands against
both servers at the same time, alternating A, B, A, B so machine drift
hits both, and quotes only ratios (ours/ref, higher is better):

  PFADD    PFADD hll __rand_int__   (-r 100000: one key, dense after a while)
  PFCOUNT  PFCOUNT hll              (that key, its cached cardinality)
  PFCOUNT3 PFCOUNT hll h2 h3        (a union: three HLLs merged per call)

Memory: RSS growth per key for N dense HLLs (PFADD of 100 elements with
hll-sparse-max-bytes 0, so every key is promoted at once), on a fresh
server each.

usage: bench/hll.py [OURS_BIN] [--ref /usr/bin/redis-server] [--rounds 3]
                    [--pipelines 1,16] [--pin] [-n 200000] [--keys 3000]
"""
import argparse, csv, io, os, socket, subprocess, sys, tempfile, time

TESTS = {
    "PFADD": ["PFADD", "hll", "__rand_int__"],
    "PFCOUNT": ["PFCOUNT", "hll"],
    "PFCOUNT3": ["PFCOUNT", "hll", "h2", "h3"],
}


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def resp(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Server:
    def __init__(self, binary, pin):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="bench-hll-")
        cmd = [binary, "--port", str(self.port), "--bind", "127.0.0.1",
               "--save", "", "--appendonly", "no", "--dir", self.dir]
        if pin:
            cmd = ["taskset", "-c", pin] + cmd
        self.log = open(os.path.join(self.dir, "log"), "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                if self.call("PING") == b"+PONG\r\n":
                    return
            except OSError:
                time.sleep(0.1)
        raise SystemExit(f"{binary} did not answer PING (see {self.dir}/log)")

    def call(self, *args):
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            s.sendall(resp(*args))
            return s.recv(1 << 16)

    def load(self, commands, batch=200):
        """Sends commands pipelined, reading every reply."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=60) as s:
            f = s.makefile("rb")
            for i in range(0, len(commands), batch):
                chunk = commands[i:i + batch]
                s.sendall(b"".join(chunk))
                for _ in chunk:
                    line = f.readline()
                    if line[:1] == b"-":
                        raise SystemExit(f"error while loading: {line!r}")

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill(); self.proc.wait()


def bench(server, test, pipeline, n, pin):
    cmd = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(server.port), "-c", "50",
           "-n", str(n), "-P", str(pipeline), "-r", "100000", "--csv"] + TESTS[test]
    if pin:
        cmd = ["taskset", "-c", pin] + cmd
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300).stdout
    rows = list(csv.reader(io.StringIO(out)))
    if len(rows) < 2:
        return 0.0
    return float(dict(zip(rows[0], rows[-1])).get("rps", 0) or 0)


def prepare(server):
    """Three dense HLLs for the PFCOUNT tests (hll keeps growing under PFADD)."""
    for key, tag in (("hll", "a"), ("h2", "b"), ("h3", "c")):
        server.load([resp("PFADD", key, *[f"{tag}{i}" for i in range(j, j + 100)])
                     for j in range(0, 20000, 100)])


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
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pipelines", default="1,16")
    ap.add_argument("--pin", action="store_true", help="servers on cpu 1, client on cpu 0")
    ap.add_argument("-n", type=int, default=200000)
    ap.add_argument("--keys", type=int, default=3000)
    a = ap.parse_args()
    spin, cpin = ("1", "0") if a.pin else (None, None)
    ours, ref = Server(a.ours, spin), Server(a.ref, spin)
    try:
        prepare(ours); prepare(ref)
        print("| test | P | ferrokv rps | redis rps | ratio |\n|---|---|---|---|---|")
        for test in TESTS:
            for p in map(int, a.pipelines.split(",")):
                n = a.n * (4 if p > 1 else 1)
                rs_o, rs_r = [], []
                for _ in range(a.rounds):
                    rs_o.append(bench(ours, test, p, n, cpin))
                    rs_r.append(bench(ref, test, p, n, cpin))
                mo, mr = sorted(rs_o)[len(rs_o) // 2], sorted(rs_r)[len(rs_r) // 2]
                print(f"| {test} | {p} | {mo:.0f} | {mr:.0f} | {mo / mr if mr else 0:.2f} |",
                      flush=True)
    finally:
        ours.stop(); ref.stop()
    mo = memory_per_key(a.ours, a.keys, spin)
    mr = memory_per_key(a.ref, a.keys, spin)
    print(f"memory per dense HLL key: ferrokv {mo:.0f} B, redis {mr:.0f} B, ratio {mo / mr:.3f}")


if __name__ == "__main__":
    sys.exit(main())
