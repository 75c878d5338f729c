"""maxmemory through redis-py: a cache-aside application on allkeys-lru
keeps working and stays bounded, and under noeviction the OOM error and
the INFO fields match the reference redis-server.

Each test starts its own servers (eviction settings are process-wide).
"""

from __future__ import annotations

import random
import time

import pytest
import redis

import harness

MB = 1024 * 1024
OOM = "command not allowed when used memory > 'maxmemory'."


@pytest.fixture
def start():
    """Starts servers with extra arguments; stops them after the test."""
    started: list[harness.ServerProcess] = []

    def make(binary: str, *extra: str) -> redis.Redis:
        proc = harness.ServerProcess(binary, list(extra)).start()
        started.append(proc)
        return redis.Redis(host=proc.host, port=proc.port, decode_responses=True, socket_timeout=10)

    yield make
    for proc in started:
        proc.stop()


def ours(start, *extra: str) -> redis.Redis:
    if harness.external_target():
        pytest.skip("FERROKV_TEST_TARGET is set: eviction tests start their own servers")
    return start(harness.ferrokv_binary(), *extra)


def load_from_backend(key: str) -> str:
    """The slow source of truth a cache-aside app falls back to."""
    n = int(key.split(":")[1])
    return f"profile-{n}-" + "x" * 900


def test_cache_aside_app_keeps_working_and_stays_bounded(start):
    r = ours(start, "--maxmemory", "6mb", "--maxmemory-policy", "allkeys-lru")
    limit = r.config_get("maxmemory")["maxmemory"]
    assert limit == str(6 * MB)
    rng = random.Random(7)
    hits = misses = 0
    peak = 0
    # 20k distinct ids (about 20 MB of values) behind a 6 MB cache, with
    # a hot tenth of the ids getting most of the reads.
    for step in range(30_000):
        n = rng.randrange(2_000) if rng.random() < 0.8 else rng.randrange(20_000)
        key = f"user:{n}"
        value = r.get(key)
        if value is None:
            misses += 1
            value = load_from_backend(key)
            r.set(key, value, ex=3600)
        else:
            hits += 1
        assert value == load_from_backend(key)
        if step % 1000 == 0:
            peak = max(peak, r.info("memory")["used_memory"])
    info = r.info()
    assert info["evicted_keys"] > 0
    assert max(peak, info["used_memory"]) <= 6 * MB + 512 * 1024
    assert info["maxmemory_policy"] == "allkeys-lru"
    # The hot ids mostly stay cached: well above what a cache holding a
    # random quarter of the ids would give.
    assert hits / (hits + misses) > 0.5, (hits, misses)


def _oom_session(r: redis.Redis) -> list[object]:
    """The same steps against either server: replies or error texts."""
    out: list[object] = []

    def run(*args):
        try:
            out.append(r.execute_command(*args))
        except redis.ResponseError as e:
            out.append(f"error: {e}")

    run("SET", "keep", "v")
    r.config_set("maxmemory", "1")
    run("SET", "k", "v")
    run("APPEND", "keep", "more")
    run("GET", "keep")
    run("EVAL", "#!lua\nreturn 1", "0")
    run("EVAL", "#!lua flags=no-writes\nreturn redis.call('get', 'keep')", "0")
    run("EVAL", "return redis.pcall('set', 'k', 'v')", "0")
    run("DEL", "keep")
    r.config_set("maxmemory", "0")
    run("SET", "k", "v")
    return out


def test_noeviction_oom_error_matches_the_reference(start):
    ref = start(harness.reference_binary())
    got = _oom_session(ours(start))
    want = _oom_session(ref)
    assert got == want
    assert got[1] == f"error: {OOM}"


MEMORY_FIELDS = [
    "used_memory",
    "used_memory_human",
    "used_memory_rss",
    "used_memory_peak",
    "used_memory_peak_human",
    "maxmemory",
    "maxmemory_human",
    "maxmemory_policy",
    "mem_fragmentation_ratio",
    "mem_fragmentation_bytes",
    "lazyfree_pending_objects",
    "lazyfreed_objects",
]


def test_info_fields_are_those_of_the_reference(start):
    args = ("--maxmemory", "100mb", "--maxmemory-policy", "volatile-ttl")
    r = ours(start, *args)
    ref = start(harness.reference_binary(), *args)
    mine, theirs = r.info("memory"), ref.info("memory")
    for name in MEMORY_FIELDS:
        assert name in theirs, name
        assert name in mine, name
    for name in ("maxmemory", "maxmemory_human", "maxmemory_policy"):
        assert mine[name] == theirs[name], name
    assert "evicted_keys" in r.info("stats")
    # used_memory counts allocations: far below RSS when nearly empty,
    # and it grows with the data.
    before = mine["used_memory"]
    assert before < mine["used_memory_rss"]
    r.set("big", "x" * (4 * MB))
    after = r.info("memory")["used_memory"]
    assert after - before >= 4 * MB
    assert r.info("memory")["used_memory_peak"] >= after
    r.delete("big")
    time.sleep(0.05)
    assert r.info("memory")["used_memory"] < after - 3 * MB


def _lfu_session(r: redis.Redis) -> list[object]:
    out: list[object] = []

    def run(*args):
        try:
            out.append(r.execute_command(*args))
        except redis.ResponseError as e:
            out.append(f"error: {e}")

    run("SET", "k", "v")
    run("OBJECT", "FREQ", "k")
    run("GET", "k")
    run("OBJECT", "FREQ", "k")
    run("OBJECT", "IDLETIME", "k")
    run("COPY", "k", "k2")
    run("OBJECT", "FREQ", "k2")
    run("OBJECT", "FREQ", "missing")
    r.config_set("maxmemory-policy", "allkeys-lru")
    run("OBJECT", "FREQ", "k")
    return out


def test_lfu_counters_match_the_reference(start):
    args = ("--maxmemory-policy", "allkeys-lfu")
    got = _lfu_session(ours(start, *args))
    want = _lfu_session(start(harness.reference_binary(), *args))
    assert got == want
    # A new key starts at 5; its first read always counts.
    assert got[1] == 5 and got[3] == 6
