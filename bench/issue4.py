#!/usr/bin/env python3
"""Issue 4's side-by-side benchmark: pub/sub fan-out, EVALSHA and MULTI/EXEC,
ferrokv against the reference redis-server.

usage: bench/issue4.py [--ours target/release/ferrokv] [--ref redis-server]
                       [--rounds 3] [--pin] [--quick] [--only publish,evalsha,multi]
                       [--out DIR]

Both servers run on free loopback ports at the same time. Each measurement
alternates ours, ref, ours, ref ... (`--rounds` pairs) so machine drift hits
both alike; the table quotes medians, and each ratio is the median of the
per-round ours/ref ratios (as ../shared/bench/compare.py does). With --pin the
servers run on cpu 1 and every client (redis-benchmark and the Python load
generators) on cpu 0.

What is measured:
- publish: 50 raw-socket subscribers on one channel, 2 publisher connections
  pipelining PUBLISH of a 16-byte payload (batches of 50); messages delivered
  per second = (published x 50) / time until the last subscriber byte arrived.
- evalsha P1/P16: redis-benchmark (50 clients) running
  `EVALSHA <sha> 1 key:__rand_int__` of `return redis.call('INCR', KEYS[1])`
  after SCRIPT LOAD on both servers.
- multi P1/P16: 50 connections each sending MULTI SET INCR LPUSH GET ZADD EXEC
  blocks, 1 or 16 transactions per round trip; transactions per second.

--ours takes any redis-server-compatible binary, so `--ours redis-server`
checks the script itself when ferrokv lacks a feature. The output is a
markdown table and, as the last line:
  bench: issue4 ours/ref publish_fanout50=x evalsha_P1=x evalsha_P16=x multi5_P1=x multi5_P16=x
A benchmark a server cannot run (an error reply) shows as n/a and makes the
exit status 1. Runtime: about 2-3 minutes on a 2-core machine (--quick: under
one). At P1 the Python load generator can be the limit for both servers; P16
is the server-bound figure. On a busy machine, redis-server against itself
(--ours redis-server) scatters about +-10% per ratio: that is the noise floor.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import multiprocessing as mp
import os
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = "return redis.call('INCR', KEYS[1])"
SUBSCRIBERS = 50
CHANNEL = b"bench:events"
PAYLOAD = b"p" * 16
CLIENT_CPU, SERVER_CPU = 0, 1


class Unsupported(Exception):
    """The server answered a benchmark's setup or load with an error."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def resp(*args) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def connect(port: int, timeout: float = 30) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_exact(s: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("server closed the connection")
        buf += chunk
    return bytes(buf)


def first_line(reply: bytes) -> str:
    return reply.split(b"\r\n")[0].decode("latin-1")


def pin_client(pin: bool) -> None:
    if pin:
        os.sched_setaffinity(0, {CLIENT_CPU})


class Server:
    def __init__(self, name: str, binary: str, pin: bool):
        self.name, self.port = name, free_port()
        self.dir = tempfile.mkdtemp(prefix=f"bench-issue4-{name}-")
        cmd = [binary, "--port", str(self.port), "--bind", "127.0.0.1",
               "--save", "", "--appendonly", "no", "--dir", self.dir]
        if pin:
            cmd = ["taskset", "-c", str(SERVER_CPU)] + cmd
        self.log = open(os.path.join(self.dir, "log"), "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{name} ({binary}) exited at start: see {self.dir}/log")
            try:
                if self.call("PING") == b"+PONG\r\n":
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise SystemExit(f"{name} did not answer PING in 20 s")

    def call(self, *args) -> bytes:
        """One command on a fresh connection; the reply's first recv."""
        with connect(self.port, timeout=5) as s:
            s.sendall(resp(*args))
            return s.recv(1 << 16)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


# --------------------------------------------------------------------------
# (a) PUBLISH fan-out
# --------------------------------------------------------------------------


def _message_frame() -> bytes:
    return (b"*3\r\n$7\r\nmessage\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n"
            % (len(CHANNEL), CHANNEL, len(PAYLOAD), PAYLOAD))


def _subscribers(port: int, expected_bytes: int, pin: bool, ready, out) -> None:
    """Child process: subscribes 50 sockets, then counts bytes until all arrive."""
    pin_client(pin)
    socks = [connect(port) for _ in range(SUBSCRIBERS)]
    confirm = b"*3\r\n$9\r\nsubscribe\r\n$%d\r\n%s\r\n:1\r\n" % (len(CHANNEL), CHANNEL)
    for s in socks:
        s.sendall(resp(b"SUBSCRIBE", CHANNEL))
    for s in socks:
        got = recv_exact(s, len(confirm))
        if got != confirm:
            s.settimeout(0.2)
            try:  # the rest of an error line, for the report
                got += s.recv(4096)
            except OSError:
                pass
            out.put(("error", first_line(got)))
            ready.set()
            return
    sel = selectors.DefaultSelector()
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    ready.set()
    buf = bytearray(1 << 20)
    total, deadline = 0, time.monotonic() + 120
    while total < expected_bytes and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1):
            try:
                n = key.fileobj.recv_into(buf)
            except BlockingIOError:
                continue
            if n == 0:
                out.put(("error", "a subscriber was disconnected"))
                return
            total += n
    out.put(("done", time.monotonic(), total))


def _publisher(port: int, count: int, batch: int, pin: bool, go, out) -> None:
    """Child process: pipelines `count` PUBLISHes in batches; checks receivers."""
    pin_client(pin)
    with connect(port) as s:
        block = resp(b"PUBLISH", CHANNEL, PAYLOAD) * batch
        reply = b":%d\r\n" % SUBSCRIBERS
        go.wait()
        for _ in range(count // batch):
            s.sendall(block)
            got = recv_exact(s, len(reply) * batch)
            if got != reply * batch:
                out.put(("error", got[:200].decode("latin-1")))
                return
    out.put(("published", count))


def bench_publish(server: Server, pin: bool, quick: bool) -> float:
    publishers, batch = 2, 50
    per_publisher = 10_000 if quick else 60_000
    expected = publishers * per_publisher * SUBSCRIBERS * len(_message_frame())
    ctx = mp.get_context("fork")
    ready, go, out = ctx.Event(), ctx.Event(), ctx.Queue()
    subs = ctx.Process(target=_subscribers, args=(server.port, expected, pin, ready, out))
    subs.start()
    pubs = [ctx.Process(target=_publisher, args=(server.port, per_publisher, batch, pin, go, out))
            for _ in range(publishers)]
    try:
        for p in pubs:
            p.start()
        if not ready.wait(30):
            raise Unsupported("subscribers did not get ready")
        time.sleep(0.2)  # publishers connected and waiting
        start = time.monotonic()
        go.set()
        end = None
        for _ in range(publishers + 1):
            msg = out.get(timeout=150)
            if msg[0] == "error":
                raise Unsupported(msg[1].strip())
            if msg[0] == "done":
                if msg[2] < expected:
                    raise Unsupported(f"only {msg[2]} of {expected} bytes delivered")
                end = msg[1]
        return publishers * per_publisher * SUBSCRIBERS / (end - start)
    finally:
        for p in [subs, *pubs]:
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join()


# --------------------------------------------------------------------------
# (b) EVALSHA through redis-benchmark
# --------------------------------------------------------------------------


def load_script(server: Server) -> str:
    sha = hashlib.sha1(SCRIPT.encode()).hexdigest()
    reply = server.call("SCRIPT", "LOAD", SCRIPT)
    if reply != b"$40\r\n%s\r\n" % sha.encode():
        raise Unsupported(f"SCRIPT LOAD answered {first_line(reply)}")
    return sha


def bench_evalsha(server: Server, pipeline: int, pin: bool, quick: bool) -> float:
    sha = load_script(server)
    n = (50_000 if quick else 150_000) * (4 if pipeline > 1 else 1)
    cmd = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(server.port), "-c", "50",
           "-n", str(n), "-P", str(pipeline), "-r", "100000", "--csv",
           "EVALSHA", sha, "1", "key:__rand_int__"]
    if pin:
        cmd = ["taskset", "-c", str(CLIENT_CPU)] + cmd
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    rows = list(csv.reader(io.StringIO(run.stdout)))
    if len(rows) < 2:
        raise Unsupported(f"redis-benchmark: {(run.stderr or run.stdout).strip()[:200]}")
    rps = float(dict(zip(rows[0], rows[-1])).get("rps", 0) or 0)
    # redis-benchmark counts error replies as requests: check one by hand.
    check = server.call("EVALSHA", sha, "1", "key:check")
    if not check.startswith(b":"):
        raise Unsupported(f"EVALSHA answered {first_line(check)}")
    return rps


# --------------------------------------------------------------------------
# (c) MULTI/EXEC of 5 commands
# --------------------------------------------------------------------------

MARKER = b"end-of-batch-7d1f"


def _transaction(conn: int) -> bytes:
    k = b"tx:%d" % conn
    return b"".join([
        resp(b"MULTI"),
        resp(b"SET", k + b":s", b"v" * 16),
        resp(b"INCR", k + b":n"),
        resp(b"LPUSH", k + b":l", b"item"),
        resp(b"GET", k + b":s"),
        resp(b"ZADD", k + b":z", b"1", b"member"),
        resp(b"EXEC"),
    ])


def _check_batch(reply: bytes, depth: int) -> str | None:
    """None if `reply` holds `depth` successful transactions (plus the marker)."""
    if reply.count(b"+QUEUED\r\n") != 5 * depth or reply.count(b"*5\r\n") != depth:
        return f"unexpected transaction replies: {reply[:200]!r}"
    if reply.startswith(b"-") or b"\r\n-" in reply:
        return f"error reply: {reply[:200]!r}"
    return None


def _multi_worker(port: int, conns: range, per_conn: int, depth: int, pin: bool, go, out) -> None:
    """Child process: drives its connections with selectors, `depth` tx per trip."""
    pin_client(pin)
    end_reply = b"$%d\r\n%s\r\n" % (len(MARKER), MARKER)
    sel = selectors.DefaultSelector()
    state = {}
    for c in conns:
        s = connect(port)
        batch = _transaction(c) * depth + resp(b"ECHO", MARKER)
        state[s] = [batch, bytearray(), per_conn // depth, True]
    go.wait()
    for s, st in state.items():
        s.sendall(st[0])
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    done, deadline = 0, time.monotonic() + 120
    while done < len(state) and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1):
            s = key.fileobj
            st = state[s]
            try:
                chunk = s.recv(1 << 18)
            except BlockingIOError:
                continue
            if not chunk:
                out.put(("error", "server closed a connection"))
                return
            st[1] += chunk
            if not st[1].endswith(end_reply):
                continue
            if st[3]:  # check every reply of the first round trip
                err = _check_batch(bytes(st[1]), depth)
                if err:
                    out.put(("error", err))
                    return
                st[3] = False
            st[1].clear()
            st[2] -= 1
            if st[2] > 0:
                s.sendall(st[0])  # small; the socket buffer takes it whole
            else:
                sel.unregister(s)
                done += 1
    out.put(("done", time.monotonic()) if done == len(state) else ("error", "timed out"))


def bench_multi(server: Server, depth: int, pin: bool, quick: bool) -> float:
    connections, procs = 50, 2
    per_conn = (600 if quick else 2_000) * (4 if depth > 1 else 1)
    per_conn -= per_conn % depth
    ctx = mp.get_context("fork")
    go, out = ctx.Event(), ctx.Queue()
    shares = [range(i, connections, procs) for i in range(procs)]
    workers = [ctx.Process(target=_multi_worker,
                           args=(server.port, share, per_conn, depth, pin, go, out))
               for share in shares]
    try:
        for w in workers:
            w.start()
        time.sleep(0.3)  # connected and waiting
        start = time.monotonic()
        go.set()
        end = start
        for _ in workers:
            msg = out.get(timeout=150)
            if msg[0] == "error":
                raise Unsupported(msg[1])
            end = max(end, msg[1])
        return connections * per_conn / (end - start)
    finally:
        for w in workers:
            w.join(5)
            if w.is_alive():
                w.kill()
                w.join()


# --------------------------------------------------------------------------


def median(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[len(xs) // 2] if xs else 0.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ours", default=str(REPO_ROOT / "target" / "release" / "ferrokv"))
    ap.add_argument("--ref", default="redis-server")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pin", action="store_true", help="servers on cpu 1, clients on cpu 0")
    ap.add_argument("--quick", action="store_true", help="smaller counts")
    ap.add_argument("--only", default="publish,evalsha,multi")
    ap.add_argument("--out", default=None, help="also write DIR/issue4.md and DIR/issue4.json")
    a = ap.parse_args()
    binaries = {}
    for name, binary in (("ours", a.ours), ("ref", a.ref)):
        found = shutil.which(binary)
        if not found:
            raise SystemExit(f"--{name} {binary}: not an executable (cargo build --release?)")
        binaries[name] = found
    if shutil.which("redis-benchmark") is None:
        raise SystemExit("redis-benchmark is not on PATH")

    only = set(a.only.split(","))
    cases = []  # (label, key, unit, function(server) -> rate)
    if "publish" in only:
        cases.append((f"PUBLISH fan-out to {SUBSCRIBERS} subscribers", "publish_fanout50",
                      "msgs/s", lambda s: bench_publish(s, a.pin, a.quick)))
    for p in (1, 16):
        if "evalsha" in only:
            cases.append((f"EVALSHA (INCR script) P{p}", f"evalsha_P{p}", "calls/s",
                          lambda s, p=p: bench_evalsha(s, p, a.pin, a.quick)))
    for p in (1, 16):
        if "multi" in only:
            cases.append((f"MULTI/EXEC of 5 commands P{p}", f"multi5_P{p}", "tx/s",
                          lambda s, p=p: bench_multi(s, p, a.pin, a.quick)))

    servers = {}
    try:
        for name in ("ours", "ref"):
            servers[name] = Server(name, binaries[name], a.pin)
        lines = ["| benchmark | ours | ref | ratio |", "|---|---|---|---|"]
        ratios: dict[str, float | None] = {}
        for label, key, unit, fn in cases:
            rates = {"ours": [], "ref": []}
            errors = {}
            for _ in range(a.rounds):
                for name in ("ours", "ref"):
                    if name in errors:
                        continue
                    try:
                        rates[name].append(fn(servers[name]))
                    except Unsupported as e:
                        errors[name] = str(e)
            if errors:
                ratios[key] = None
                why = "; ".join(f"{n}: {e}" for n, e in errors.items())
                lines.append(f"| {label} | | | n/a ({why}) |")
                print(f"{label}: {why}", file=sys.stderr)
                continue
            ratio = median([o / r for o, r in zip(rates["ours"], rates["ref"])])
            ratios[key] = ratio
            lines.append(f"| {label} | {median(rates['ours']):,.0f} {unit} | "
                         f"{median(rates['ref']):,.0f} {unit} | {ratio:.2f} |")
            print(f"{label}: ours {rates['ours']} ref {rates['ref']}", file=sys.stderr)
    finally:
        for s in servers.values():
            s.stop()

    text = "\n".join(lines)
    print(text)
    if a.out:
        os.makedirs(a.out, exist_ok=True)
        Path(a.out, "issue4.md").write_text(text + "\n")
        Path(a.out, "issue4.json").write_text(json.dumps(
            {k: (round(v, 3) if v is not None else None) for k, v in ratios.items()}, indent=1))
    summary = " ".join(f"{k}={v:.2f}" if v is not None else f"{k}=n/a" for k, v in ratios.items())
    print(f"bench: issue4 ours/ref {summary}")
    return 1 if any(v is None for v in ratios.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
