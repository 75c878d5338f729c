"""RDB and DUMP compatibility with the reference redis-server 7.0.15, both ways.

- A dump.rdb written by a live redis-server holding every type in every
  encoding (the `*-max-*` configs tuned to force each one), streams with
  groups and pending entries, functions, deadlines and several databases
  loads in ferrokv with the same DEBUG DIGEST and replies.
- ferrokv's dump.rdb loads into redis-server with the same digest, and
  redis-check-rdb accepts it.
- DUMP payloads from each server RESTORE into the other with the same
  DEBUG DIGEST-VALUE.
- Old formats (Redis 6.2 and before: ziplist, zipmap, quicklist of
  ziplists, RDB 9) from the committed fixtures in tests/fixtures/rdb load.

Skipped when redis-server is not on PATH.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import redis

import harness

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "rdb"

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="redis-server is not on PATH"
)


class Proc:
    """A server in its own directory (kept across restarts until `close`)."""

    def __init__(self, binary: str, workdir: str, extra: list[str] | None = None):
        self.binary = binary
        self.workdir = workdir
        self.extra = extra or []
        self.proc: subprocess.Popen | None = None
        self.port = 0

    def start(self) -> "Proc":
        for _ in range(5):
            self.port = harness.free_port()
            log = open(os.path.join(self.workdir, f"log-{self.port}.txt"), "wb")
            self.proc = subprocess.Popen(
                [
                    self.binary,
                    "--port", str(self.port),
                    "--bind", "127.0.0.1",
                    "--dir", self.workdir,
                    "--save", "",
                    "--appendonly", "no",
                    "--enable-debug-command", "yes",
                    *self.extra,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    if self.client().ping():
                        return self
                except (redis.ConnectionError, redis.ResponseError):
                    time.sleep(0.05)
            self.stop()
        raise RuntimeError(f"{self.binary} did not start in {self.workdir}")

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis(port=self.port, db=db, socket_timeout=20)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture
def workdir():
    d = tempfile.mkdtemp(prefix="ferrokv-rdb-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


# Small thresholds so a few elements already take the large encodings; the
# same on both servers so each converts the same way on load.
SMALL = [
    "--hash-max-listpack-entries", "4",
    "--zset-max-listpack-entries", "4",
    "--set-max-intset-entries", "4",
    "--list-max-listpack-size", "4",
    "--stream-node-max-entries", "3",
]


def fill(r: redis.Redis) -> None:
    """Every type in every encoding, in databases 0, 1 and 9."""
    big = "y" * 100
    r.set("s:int", 42)
    r.set("s:neg", -1234567)
    r.set("s:big", 2**62)
    r.set("s:emb", "hello")
    r.set("s:raw", big)
    r.set("s:lzf", "abc" * 200)
    r.set("s:bin", b"\x00\xff\r\n")
    r.set("s:ttl", "t", ex=10000)
    r.set("s:pttl", "t", px=20000000)
    r.rpush("l:small", "a", 1, -2, 70000, "b")
    r.rpush("l:big", *[f"e{i}" for i in range(50)])
    r.rpush("l:ints", *range(-20, 20))
    r.rpush("l:long", big, big, big)
    r.sadd("set:int", 1, 2, 3)
    r.sadd("set:int64", 1, -(2**40), 2**40)
    r.sadd("set:str", "a", "b", "c")
    r.sadd("set:big", *range(100))
    r.zadd("z:small", {"a": 1, "b": 2.5, "c": -3})
    r.zadd("z:inf", {"a": float("inf"), "b": float("-inf"), "c": 0})
    r.zadd("z:big", {f"m{i}": i / 3 for i in range(30)})
    r.zadd("z:long", {big: 1})
    r.hset("h:small", mapping={"a": 1, "b": "two", "c": -300})
    r.hset("h:big", mapping={f"f{i}": i for i in range(30)})
    r.hset("h:long", mapping={"f": big})
    for i in range(10):
        r.xadd("x:s", {"f": i, "g": "v"}, id=f"{i + 1}-0")
    r.xadd("x:s", {"other": 1}, id="20-1")
    r.xdel("x:s", "3-0")
    r.xgroup_create("x:s", "g1", id="0")
    r.xgroup_create("x:s", "g2", id="$")
    r.xreadgroup("g1", "alice", {"x:s": ">"}, count=3)
    r.xreadgroup("g1", "bob", {"x:s": ">"}, count=2)
    r.xack("x:s", "g1", "1-0")
    r.xadd("x:empty", {"a": 1}, id="5-0")
    r.xdel("x:empty", "5-0")
    r.function_load(
        "#!lua name=lib1\nredis.register_function('f1', function() return 1 end)"
    )
    r.function_load(
        "#!lua name=lib2\n" + "-- padding to make it compress " * 10
        + "\nredis.register_function{function_name='f2', callback=function() return 2 end, flags={'no-writes'}}"
    )
    for db in (1, 9):
        c = redis.Redis(port=r.connection_pool.connection_kwargs["port"], db=db)
        c.set(f"db{db}", db)
        c.hset(f"h{db}", "a", "b")
        c.set(f"ttl{db}", 1, ex=5000)


def observe(r: redis.Redis) -> list:
    out = []
    for k in sorted(r.keys()):
        t = r.type(k)
        out.append((k, t, r.object("encoding", k)))
    out.append(r.lrange("l:small", 0, -1))
    out.append(r.zrange("z:inf", 0, -1, withscores=True))
    out.append(r.xinfo_groups("x:s"))
    out.append(r.xpending("x:s", "g1"))
    out.append(r.xlen("x:empty"))
    out.append(sorted(str(lib) for lib in r.function_list(withcode=True)))
    out.append(r.fcall("f2", 0))
    return out


def digest(r: redis.Redis) -> str:
    return r.execute_command("DEBUG", "DIGEST")


def test_reference_rdb_loads_in_ferrokv(workdir):
    ref = Proc(harness.reference_binary(), workdir, SMALL).start()
    try:
        r = ref.client()
        fill(r)
        want_digest = digest(r)
        want = observe(r)
        ttl = r.pexpiretime("s:pttl")
        assert r.save()
    finally:
        ref.stop()
    fk = Proc(harness.ferrokv_binary(), workdir, SMALL).start()
    try:
        f = fk.client()
        assert digest(f) == want_digest
        assert observe(f) == want
        assert f.pexpiretime("s:pttl") == ttl
        assert fk.client(9).get("db9") == b"9"
    finally:
        fk.stop()


def test_ferrokv_rdb_loads_in_reference_and_passes_check(workdir):
    fk = Proc(harness.ferrokv_binary(), workdir, SMALL).start()
    try:
        f = fk.client()
        fill(f)
        want_digest = digest(f)
        want = observe(f)
        assert f.save()
    finally:
        fk.stop()
    rdb = os.path.join(workdir, "dump.rdb")
    check = subprocess.run(
        ["redis-check-rdb", rdb], capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "RDB looks OK" in check.stdout, check.stdout
    ref = Proc(harness.reference_binary(), workdir, SMALL).start()
    try:
        r = ref.client()
        assert digest(r) == want_digest
        assert observe(r) == want
    finally:
        ref.stop()


def test_dump_payloads_restore_both_ways(workdir):
    d1 = os.path.join(workdir, "a")
    d2 = os.path.join(workdir, "b")
    os.mkdir(d1)
    os.mkdir(d2)
    ref = Proc(harness.reference_binary(), d1, SMALL).start()
    fk = Proc(harness.ferrokv_binary(), d2, SMALL).start()
    try:
        r, f = ref.client(), fk.client()
        fill(r)
        fill(f)
        for k in r.keys():
            for src, dst in ((r, f), (f, r)):
                payload = src.dump(k)
                dst.restore(k + b":copy", 0, payload, replace=True)
                assert src.execute_command("DEBUG", "DIGEST-VALUE", k) == dst.execute_command(
                    "DEBUG", "DIGEST-VALUE", k
                ) or src.pttl(k) != -1, k
                orig = src.execute_command("DEBUG", "DIGEST-VALUE", k)
                copy = dst.execute_command("DEBUG", "DIGEST-VALUE", k + b":copy")
                if src.pttl(k) == -1:
                    assert orig == copy, k
        # The same value dumps to the same bytes on both (single-node and
        # small values, where both servers pick the same layout; a hashtable
        # set lists its members in each server's own hash order).
        for k in ["s:int", "s:emb", "s:lzf", "l:small", "set:int", "z:small",
                  "z:inf", "h:small", "s:bin"]:
            assert r.dump(k) == f.dump(k), k
        # Errors match.
        good = r.dump("s:emb")
        for args in (
            ["RESTORE", "s:emb", "0", good],
            ["RESTORE", "n", "-1", good],
            ["RESTORE", "n", "0", good[:-1] + bytes([good[-1] ^ 1])],
            ["RESTORE", "n", "0", good, "FREQ", "300"],
        ):
            errs = []
            for c in (r, f):
                with pytest.raises(redis.ResponseError) as e:
                    c.execute_command(*args)
                errs.append(str(e.value))
            assert errs[0] == errs[1], args
    finally:
        ref.stop()
        fk.stop()


@pytest.mark.parametrize(
    "name",
    sorted(p.name for p in FIXTURES.glob("*.rdb")) if FIXTURES.exists() else [],
)
def test_old_format_fixtures_load_like_reference(workdir, name):
    """Committed files in pre-7.0 formats: ferrokv loads each exactly as the
    reference does (digest and key listing)."""
    d1 = os.path.join(workdir, "ref")
    d2 = os.path.join(workdir, "fk")
    for d in (d1, d2):
        os.mkdir(d)
        shutil.copy(FIXTURES / name, os.path.join(d, "dump.rdb"))
    ref = Proc(harness.reference_binary(), d1).start()
    try:
        r = ref.client()
        want = (digest(r), sorted(r.keys()), r.dbsize())
    finally:
        ref.stop()
    fk = Proc(harness.ferrokv_binary(), d2).start()
    try:
        f = fk.client()
        assert (digest(f), sorted(f.keys()), f.dbsize()) == want
    finally:
        fk.stop()
