"""AOF compatibility with redis-server 7.0.15, both ways.

An appendonlydir written by redis-server (`--appendonly yes
--aof-use-rdb-preamble no`, a rewritten base plus an incremental file)
loads in ferrokv with the same DEBUG DIGEST and the same consumer groups;
one written by ferrokv passes `redis-check-aof` and loads in redis-server
with the same digest.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import redis

import harness

AOF_ARGS = [
    "--appendonly", "yes",
    "--appendfsync", "always",
    "--aof-use-rdb-preamble", "no",
    "--enable-debug-command", "yes",
    "--save", "",
]


class Proc:
    def __init__(self, binary: str, workdir: Path):
        self.binary, self.workdir = binary, workdir
        self.port = harness.free_port()
        self.log = workdir / f"{Path(binary).name}.log"
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [binary, "--port", str(self.port), "--bind", "127.0.0.1",
                 "--dir", str(workdir), *AOF_ARGS],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        self.client = redis.Redis(port=self.port, decode_responses=True)
        deadline = time.monotonic() + 20
        while True:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                if self.client.ping():
                    break
            except redis.exceptions.BusyLoadingError:
                pass
            except redis.exceptions.ConnectionError:
                pass
            assert time.monotonic() < deadline, self.log.read_text()
            time.sleep(0.02)

    def rewrite(self) -> None:
        self.client.bgrewriteaof()
        deadline = time.monotonic() + 20
        while self.client.info("persistence")["aof_rewrite_in_progress"]:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert self.client.info("persistence")["aof_last_bgrewrite_status"] == "ok"

    def stop(self) -> None:
        try:
            self.client.shutdown(nosave=True)
        except redis.exceptions.ConnectionError:
            pass
        self.proc.wait(timeout=20)


def write_dataset(c: redis.Redis, part: int) -> None:
    """Every type; `part` 0 before the rewrite, 1 after it."""
    p = f"p{part}:"
    c.set(p + "str", "hello")
    c.set(p + "int", 12345)
    c.set(p + "ttl", "v", ex=10_000)
    c.append(p + "str", " world")
    c.rpush(p + "list", "a", "b", "c")
    c.rpush(p + "biglist", *range(200))
    c.hset(p + "hash", mapping={"f1": "v1", "f2": "v2"})
    c.hset(p + "bighash", mapping={f"f{i}": i for i in range(200)})
    c.sadd(p + "intset", 1, 2, 3)
    c.sadd(p + "bigset", *[f"m{i}" for i in range(200)])
    c.zadd(p + "zset", {"a": 1.5, "b": -2, "c": float("inf")})
    c.zadd(p + "bigzset", {f"m{i}": i / 3 for i in range(200)})
    c.incrbyfloat(p + "float", "1.25")
    for i in range(5):
        c.xadd(p + "stream", {"f": i}, id=f"{i + 1}-1")
    c.xdel(p + "stream", "5-1")
    c.xgroup_create(p + "stream", "grp", id="0")
    c.xreadgroup("grp", "alice", {p + "stream": ">"}, count=2)
    c.xreadgroup("grp", "bob", {p + "stream": ">"}, count=1)
    c.xack(p + "stream", "grp", "1-1")
    c.xgroup_create(p + "empty", "g", id="$", mkstream=True)
    c.execute_command(
        "FUNCTION", "LOAD", "REPLACE",
        f"#!lua name=lib{part}\nredis.register_function('f{part}', function() return 1 end)",
    )
    pipe = c.pipeline(transaction=True)
    pipe.incr(p + "txn")
    pipe.rpush(p + "txnlist", "t")
    pipe.execute()
    c.eval("redis.call('set', KEYS[1], 'a'); return redis.call('incr', KEYS[2])",
           2, p + "scripted", p + "counter")
    c.expire(p + "list", 5000)
    c.delete(p + "gone")
    c.execute_command("SELECT", 2)
    c.set(p + "in2", "two")
    c.execute_command("SELECT", 0)
    c2 = redis.Redis(port=c.connection_pool.connection_kwargs["port"], db=3,
                     decode_responses=True)
    c2.set(p + "in3", "three")
    c2.lpush(p + "list3", "z")


def describe(c: redis.Redis) -> tuple:
    groups = []
    for part in (0, 1):
        key = f"p{part}:stream"
        for g in c.xinfo_groups(key):
            groups.append((key, g["name"], g["pending"], g["last-delivered-id"],
                           g["entries-read"], g["lag"]))
        pending = c.xpending_range(key, "grp", "-", "+", 10)
        groups.append([(x["message_id"], x["consumer"], x["times_delivered"]) for x in pending])
        groups.append(sorted(x["name"] for x in c.xinfo_consumers(key, "grp")))
        info = c.xinfo_stream(key)
        groups.append((info["last-generated-id"], info["entries-added"],
                       info["max-deleted-entry-id"]))
    libs = sorted(lib["library_name"] if isinstance(lib, dict) else lib[1]
                  for lib in c.execute_command("FUNCTION", "LIST"))
    return (c.execute_command("DEBUG", "DIGEST"), groups, libs,
            c.pttl("p0:list") > 4_000_000)


def write_with_rewrite(binary: str, workdir: Path) -> tuple:
    srv = Proc(binary, workdir)
    try:
        write_dataset(srv.client, 0)
        srv.rewrite()
        write_dataset(srv.client, 1)
        return describe(srv.client)
    finally:
        srv.stop()


def load(binary: str, workdir: Path) -> tuple:
    srv = Proc(binary, workdir)
    try:
        return describe(srv.client)
    finally:
        srv.stop()


@pytest.fixture
def dirs():
    a = Path(tempfile.mkdtemp(prefix="ferrokv-aof-a-"))
    b = Path(tempfile.mkdtemp(prefix="ferrokv-aof-b-"))
    yield a, b
    shutil.rmtree(a, ignore_errors=True)
    shutil.rmtree(b, ignore_errors=True)


def manifest(workdir: Path) -> str:
    return (workdir / "appendonlydir" / "appendonly.aof.manifest").read_text()


def test_redis_aof_loads_in_ferrokv(dirs):
    a, b = dirs
    expected = write_with_rewrite(harness.reference_binary(), a)
    assert manifest(a) == ("file appendonly.aof.2.base.aof seq 2 type b\n"
                           "file appendonly.aof.2.incr.aof seq 2 type i\n")
    shutil.copytree(a / "appendonlydir", b / "appendonlydir")
    assert load(harness.ferrokv_binary(), b) == expected


def test_ferrokv_aof_passes_redis_check_aof_and_loads_in_redis(dirs):
    a, b = dirs
    expected = write_with_rewrite(harness.ferrokv_binary(), a)
    assert manifest(a) == ("file appendonly.aof.2.base.aof seq 2 type b\n"
                           "file appendonly.aof.2.incr.aof seq 2 type i\n")
    check = subprocess.run(
        ["redis-check-aof", str(a / "appendonlydir" / "appendonly.aof.manifest")],
        capture_output=True, text=True, timeout=60,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "is valid" in check.stdout, check.stdout
    shutil.copytree(a / "appendonlydir", b / "appendonlydir")
    assert load(harness.reference_binary(), b) == expected
