#!/usr/bin/env python3
"""Throughput of commands redis-benchmark has no built-in test for, ferrokv
against redis-server, side by side: both servers run at once and the runs
alternate A, B, A, B so machine drift hits both; only medians of ratios are
quoted (ours/ref, higher is better).

  SETBIT     SETBIT bit:__rand_int__ 7 1         (-r 100000; __rand_int__ is zero-padded,
                                                  which a bit offset may not be)
  BITCOUNT   BITCOUNT bits                       (a 12 KB string)
  PFADD      PFADD hll __rand_int__              (one key, dense after a while)
  PFCOUNT    PFCOUNT hll                         (its cached cardinality)
  PFCOUNT3   PFCOUNT hll h2 h3                   (a union: three HLLs merged per call)
  GEOADD     GEOADD geo <lon> <lat> m:__rand_int__
  GEOSEARCH  GEOSEARCH geo FROMLONLAT 13.4 52.5 BYRADIUS 50 km COUNT 10 ASC
             (1,000 points around Berlin)
  SORT       SORT list100                        (a 100-element list of numbers)

usage: bench/commands.py [OURS_BIN] [--ref /usr/bin/redis-server] [--rounds 3]
                         [--pipelines 1,16] [--pin] [-n 100000] [--tests A,B]
"""
import argparse, csv, io, os, random, socket, subprocess, sys, tempfile, time

TESTS = {
    "SETBIT": ["SETBIT", "bit:__rand_int__", "7", "1"],
    "BITCOUNT": ["BITCOUNT", "bits"],
    "PFADD": ["PFADD", "hll", "__rand_int__"],
    "PFCOUNT": ["PFCOUNT", "hll"],
    "PFCOUNT3": ["PFCOUNT", "hll", "h2", "h3"],
    "GEOADD": ["GEOADD", "geo", "13.361389", "38.115556", "m:__rand_int__"],
    "GEOSEARCH": ["GEOSEARCH", "geo", "FROMLONLAT", "13.4", "52.5", "BYRADIUS", "50",
                  "km", "COUNT", "10", "ASC"],
    "SORT": ["SORT", "list100"],
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
        self.dir = tempfile.mkdtemp(prefix="bench-cmds-")
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
    """The keys the read tests use, the same on both servers."""
    rnd = random.Random(7)
    server.load([resp("SETBIT", "bits", rnd.randrange(100000), 1) for _ in range(20000)])
    for key, tag in (("hll", "a"), ("h2", "b"), ("h3", "c")):
        server.load([resp("PFADD", key, *[f"{tag}{i}" for i in range(j, j + 100)])
                     for j in range(0, 20000, 100)])
    server.load([resp("GEOADD", "geo", 13.4 + rnd.uniform(-1, 1), 52.5 + rnd.uniform(-0.6, 0.6),
                      f"p{i}") for i in range(1000)])
    server.call("DEL", "list100")
    server.load([resp("RPUSH", "list100", *[rnd.randrange(10**6) for _ in range(100)])])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ours", nargs="?", default="target/release/ferrokv")
    ap.add_argument("--ref", default="/usr/bin/redis-server")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pipelines", default="1,16")
    ap.add_argument("--pin", action="store_true", help="servers on cpu 1, client on cpu 0")
    ap.add_argument("-n", type=int, default=100000)
    ap.add_argument("--tests", default=",".join(TESTS))
    a = ap.parse_args()
    spin, cpin = ("1", "0") if a.pin else (None, None)
    ours, ref = Server(a.ours, spin), Server(a.ref, spin)
    try:
        prepare(ours); prepare(ref)
        print("| test | P | ferrokv rps | redis rps | ratio |\n|---|---|---|---|---|")
        for test in a.tests.split(","):
            for p in map(int, a.pipelines.split(",")):
                n = a.n * (4 if p > 1 else 1)
                ratios, rs_o, rs_r = [], [], []
                for _ in range(a.rounds):
                    o = bench(ours, test, p, n, cpin)
                    r = bench(ref, test, p, n, cpin)
                    rs_o.append(o); rs_r.append(r)
                    if r:
                        ratios.append(o / r)
                med = lambda v: sorted(v)[len(v) // 2] if v else 0.0
                print(f"| {test} | {p} | {med(rs_o):.0f} | {med(rs_r):.0f} | {med(ratios):.2f} |",
                      flush=True)
    finally:
        ours.stop(); ref.stop()


if __name__ == "__main__":
    sys.exit(main())
