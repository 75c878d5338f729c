#!/usr/bin/env python3
"""TLS throughput: redis-benchmark `--tls` SET/GET at P1 and P16 against
ferrokv and the reference redis-server, with the same certificates.

usage: bench/tls.py [--ours target/release/ferrokv] [--ref redis-server]
                    [--rounds 3] [-n 200000] [--plain]

Both servers run at the same time on free loopback ports (plain port and
TLS port each, client certificates required as by default). Every
measurement alternates ours, ref, ours, ref ... (`--rounds` pairs) so
machine drift hits both alike; the table quotes the median requests per
second of each and the median of the per-round ours/ref ratios, and each
server's CPU time (user + system, from /proc) per request, which scatters
less than requests per second on a busy machine.

--plain measures the plain ports instead (no TLS): with
`--ref /work/main/target/release/ferrokv` it checks that the connection
code made generic over the stream type did not slow the plain path down.

The certificates (a CA, a server and a client certificate, RSA 2048) are
made with the `openssl` command line tool in a temporary directory. The last
line of output is
  bench: tls ours/ref SET_P1=x GET_P1=x SET_P16=x GET_P16=x
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def make_certs(d: str) -> None:
    """As tests/python/test_tls.py makes them (X.509 v3, RSA 2048)."""
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
            "-out", "ca.crt", "-days", "2", "-subj", "/CN=ferrokv bench CA")
    exts = {"server": "subjectAltName=DNS:localhost,IP:127.0.0.1\n", "client": ""}
    for name, ext in exts.items():
        with open(os.path.join(d, f"{name}.ext"), "w") as f:
            f.write("basicConstraints=CA:FALSE\n" + ext)
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
                "-out", f"{name}.csr", "-subj", f"/CN={name}")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Srv:
    def __init__(self, binary: str, certs: str, workdir: str, tls: bool):
        self.port, self.tls_port = free_port(), free_port()
        c = lambda f: os.path.join(certs, f)  # noqa: E731
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", workdir]
        if tls:
            args += ["--tls-port", str(self.tls_port),
                     "--tls-cert-file", c("server.crt"), "--tls-key-file", c("server.key"),
                     "--tls-ca-cert-file", c("ca.crt")]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(1) == b"+":
                        return
            except OSError:
                time.sleep(0.05)
        raise SystemExit(f"{binary} did not start")

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


def cpu_seconds(pid: int) -> float:
    """The process's user + system CPU time (all threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench(srv: Srv, certs: str, pipeline: int, n: int, tls: bool) -> dict[str, float]:
    args = ["redis-benchmark", "-h", "127.0.0.1", "-c", "50", "-n", str(n),
            "-P", str(pipeline), "-t", "set,get", "--csv"]
    if tls:
        c = lambda f: os.path.join(certs, f)  # noqa: E731
        args += ["-p", str(srv.tls_port), "--tls", "--sni", "localhost",
                 "--cacert", c("ca.crt"), "--cert", c("client.crt"), "--key", c("client.key")]
    else:
        args += ["-p", str(srv.port)]
    cpu0 = cpu_seconds(srv.proc.pid)
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    # Server CPU per request: steadier than requests/s on a busy machine.
    rps = {"cpu_us": (cpu_seconds(srv.proc.pid) - cpu0) / (2 * n) * 1e6}
    for line in out.splitlines():
        cols = [x.strip('"') for x in line.split(",")]
        if len(cols) >= 2 and cols[0] in ("SET", "GET"):
            rps[cols[0]] = float(cols[1])
    return rps


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ours", default=os.path.join(HERE, "..", "target", "release", "ferrokv"))
    ap.add_argument("--ref", default="redis-server")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("-n", type=int, default=200000)
    ap.add_argument("--plain", action="store_true", help="the plain ports, not TLS")
    a = ap.parse_args()
    for tool in ("openssl", "redis-benchmark"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is needed")
    tmp = tempfile.mkdtemp(prefix="ferrokv-bench-tls-")
    try:
        make_certs(tmp)
        ours = Srv(a.ours, tmp, tmp, not a.plain)
        ref = Srv(a.ref, tmp, tmp, not a.plain)
        rows = []
        summary = []
        try:
            for p in (1, 16):
                samples = {"ours": [], "ref": []}
                for _ in range(a.rounds):
                    for who, srv in (("ours", ours), ("ref", ref)):
                        samples[who].append(bench(srv, tmp, p, a.n, not a.plain))
                for cmd in ("SET", "GET"):
                    o = [s[cmd] for s in samples["ours"]]
                    r = [s[cmd] for s in samples["ref"]]
                    ratio = statistics.median(x / y for x, y in zip(o, r))
                    rows.append((f"{cmd} P{p}", statistics.median(o), statistics.median(r), ratio))
                    summary.append(f"{cmd}_P{p}={ratio:.2f}")
                o = [s["cpu_us"] for s in samples["ours"]]
                r = [s["cpu_us"] for s in samples["ref"]]
                ratio = statistics.median(x / y for x, y in zip(o, r))
                rows.append((f"server CPU us/request P{p}", statistics.median(o),
                             statistics.median(r), ratio))
        finally:
            ours.stop()
            ref.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    mode = "plain" if a.plain else "TLS"
    print(f"| {mode}, 50 clients, n={a.n}, {a.rounds} rounds | ours | ref | ours/ref |")
    print("|---|---:|---:|---:|")
    for name, o, r, ratio in rows:
        if name.startswith("server CPU"):
            print(f"| {name} (lower is better) | {o:.3f} | {r:.3f} | {ratio:.2f} |")
        else:
            print(f"| {name} | {o:,.0f} | {r:,.0f} | {ratio:.2f} |")
    print(f"bench: {'plain' if a.plain else 'tls'} ours/ref " + " ".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
