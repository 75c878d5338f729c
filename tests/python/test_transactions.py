"""Transactions through redis-py, in RESP2 and RESP3: pipelines with
transaction=True, WATCH-based optimistic locking under contention, and the
MULTI-wrapped sliding-window rate limiter applications use.
"""

from __future__ import annotations

import threading
import time

import pytest
import redis


def test_pipeline_transaction_returns_every_reply(r):
    with r.pipeline(transaction=True) as p:
        p.set("a", 1).incr("a").get("a").rpush("l", "x", "y").lrange("l", 0, -1)
        p.hset("h", mapping={"f": "v"}).hgetall("h")
        assert p.execute() == [True, 2, "2", 2, ["x", "y"], 1, {"f": "v"}]


def test_runtime_error_is_returned_and_the_rest_applies(r):
    r.set("s", "text")
    with r.pipeline(transaction=True) as p:
        p.incr("s").set("t", 1)
        out = p.execute(raise_on_error=False)
    assert isinstance(out[0], redis.ResponseError)
    assert out[1] is True
    assert r.get("t") == "1"


def test_queuing_error_aborts_everything(r):
    with r.pipeline(transaction=True) as p:
        p.set("k", 1)
        p.execute_command("SET", "only-key")
        with pytest.raises(redis.ResponseError):
            p.execute()
    assert r.exists("k") == 0


def test_watch_conflict_raises_watch_error(r_factory):
    r, other = r_factory(), r_factory()
    r.set("balance", 10)
    with r.pipeline() as p:
        p.watch("balance")
        assert int(p.get("balance")) == 10
        other.incrby("balance", 5)
        p.multi()
        p.set("balance", 0)
        with pytest.raises(redis.WatchError):
            p.execute()
    assert r.get("balance") == "15"


def test_sliding_window_rate_limiter(r):
    """ZREMRANGEBYSCORE + ZADD + ZCARD + EXPIRE in one transaction."""
    limit, window_ms = 5, 1000

    def allow(user: str, now_ms: int) -> bool:
        key = f"rate:{user}"
        with r.pipeline(transaction=True) as p:
            p.zremrangebyscore(key, 0, now_ms - window_ms)
            p.zadd(key, {f"{now_ms}-{time.perf_counter_ns()}": now_ms})
            p.zcard(key)
            p.expire(key, window_ms // 1000 + 1)
            _, _, count, _ = p.execute()
        return count <= limit

    start = 1_000_000
    results = [allow("u1", start + i) for i in range(8)]
    assert results == [True] * 5 + [False] * 3
    # Once the window slid past the first requests, calls pass again.
    assert allow("u1", start + window_ms + 10)
    assert allow("u2", start)
    assert 0 < r.ttl("rate:u1") <= 2


def test_optimistic_locking_counter_is_exact(r_factory):
    """8 threads incrementing through GET/SET under WATCH, retrying on conflict."""
    r_factory().set("counter", 0)
    per_thread, threads = 50, 8
    errors: list[BaseException] = []

    def work():
        client = r_factory()
        try:
            for _ in range(per_thread):

                def incr(p):
                    value = int(p.get("counter"))
                    p.multi()
                    p.set("counter", value + 1)

                client.transaction(incr, "counter")
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)
        finally:
            client.close()

    ts = [threading.Thread(target=work) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=60)
    assert not errors, errors
    assert int(r_factory().get("counter")) == per_thread * threads


def test_blocking_pop_inside_transaction_returns_at_once(r):
    t = time.monotonic()
    with r.pipeline(transaction=True) as p:
        p.blpop(["empty"], timeout=0).rpush("empty", "x").blpop(["empty"], timeout=0)
        none, pushed, popped = p.execute()
    assert (none, pushed, list(popped)) == (None, 1, ["empty", "x"])
    assert time.monotonic() - t < 2


def test_push_in_transaction_wakes_a_blocked_client(r_factory):
    r, waiter = r_factory(), r_factory()
    got: list = []
    t = threading.Thread(target=lambda: got.append(waiter.blpop(["jobs"], timeout=5)))
    t.start()
    deadline = time.monotonic() + 5
    while int(r.info("clients")["blocked_clients"]) < 1:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    with r.pipeline(transaction=True) as p:
        p.rpush("jobs", "job-1").set("marker", 1)
        p.execute()
    t.join(timeout=5)
    assert [list(g) for g in got] == [["jobs", "job-1"]]
