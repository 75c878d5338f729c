"""Issue 3's user stories through redis-py (sync, RESP2 and RESP3): queues on
lists with BLPOP, a priority queue, sessions in hashes, tags in sets, a
leaderboard and a sliding-window rate limiter on sorted sets."""

from __future__ import annotations

import json
import threading
import time

import pytest
import redis


def test_fifo_task_queue_every_job_exactly_once(r, r_factory):
    producers, consumers, per_producer = 4, 4, 2500
    total = producers * per_producer
    received: list[list[dict]] = [[] for _ in range(consumers)]
    errors: list[BaseException] = []

    def produce(p: int) -> None:
        c = r_factory()
        try:
            for i in range(0, per_producer, 50):
                pipe = c.pipeline(transaction=False)
                for j in range(i, i + 50):
                    pipe.rpush("jobs", json.dumps({"producer": p, "n": j}))
                pipe.execute()
        except BaseException as e:  # surfaced below
            errors.append(e)

    def consume(k: int) -> None:
        c = r_factory()
        try:
            while True:
                item = c.blpop("jobs", timeout=1)
                if item is None:
                    return
                received[k].append(json.loads(item[1]))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=consume, args=(k,)) for k in range(consumers)]
    threads += [threading.Thread(target=produce, args=(p,)) for p in range(producers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    jobs = [(j["producer"], j["n"]) for part in received for j in part]
    assert len(jobs) == total
    assert len(set(jobs)) == total
    # Each producer's jobs were consumed in the order they were pushed.
    for part in received:
        for p in range(producers):
            ns = [j["n"] for j in part if j["producer"] == p]
            assert ns == sorted(ns)
    assert r.exists("jobs") == 0


def test_blocked_consumer_wakes_within_milliseconds(r, r_factory):
    consumer = r_factory()
    woke: list[float] = []

    def wait() -> None:
        item = consumer.blpop("wake", timeout=5)
        woke.append(time.monotonic())
        assert item == ("wake", "now") or list(item) == ["wake", "now"]

    t = threading.Thread(target=wait)
    t.start()
    deadline = time.monotonic() + 5
    while int(r.info("clients")["blocked_clients"]) < 1:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    pushed = time.monotonic()
    r.rpush("wake", "now")
    t.join(timeout=5)
    assert woke and woke[0] - pushed < 0.1


def test_blpop_times_out_with_none(r):
    start = time.monotonic()
    assert r.blpop("nothing-here", timeout=0.3) is None
    assert 0.25 <= time.monotonic() - start < 2


def test_priority_queue_with_zadd_and_bzpopmax(r, r_factory):
    r.zadd("tasks", {"low": 1, "urgent": 10, "normal": 5})
    top = r.zpopmax("tasks")
    # redis-py gives [(member, score)] in RESP2 and [member, score] in RESP3.
    assert (top[0][0] if isinstance(top[0], (list, tuple)) else top[0]) == "urgent"
    got = r.bzpopmax("tasks", timeout=1)
    assert got[1] == "normal" and float(got[2]) == 5.0
    r.zpopmax("tasks")
    waiter = r_factory()
    result: list = []
    t = threading.Thread(target=lambda: result.append(waiter.bzpopmax("tasks", timeout=5)))
    t.start()
    time.sleep(0.1)
    r.zadd("tasks", {"late": 7})
    t.join(timeout=5)
    assert result[0][1] == "late"


def test_sessions_in_hashes_with_sliding_expiry(r):
    sid = "session:abc"
    r.hset(sid, mapping={"user": "ada", "role": "admin", "visits": 0})
    r.expire(sid, 60)
    for _ in range(3):
        assert r.hgetall(sid)["user"] == "ada"
        r.hincrby(sid, "visits", 1)
        r.expire(sid, 60)  # renewed on every read
        assert 58 <= r.ttl(sid) <= 60
    assert r.hget(sid, "visits") == "3"
    assert r.delete(sid) == 1  # logout
    assert r.exists(sid) == 0


def test_tags_with_sets(r):
    r.sadd("tags:ada", "python", "redis", "rust")
    r.sadd("tags:bob", "redis", "go")
    assert r.smembers("tags:ada") == {"python", "redis", "rust"}
    assert r.sinter("tags:ada", "tags:bob") == {"redis"}
    assert r.sunion("tags:ada", "tags:bob") == {"python", "redis", "rust", "go"}


def test_leaderboard(r):
    r.zadd("board", {"ada": 100, "bob": 80, "cy": 120})
    r.zincrby("board", 50, "bob")
    top = r.zrevrange("board", 0, 2, withscores=True)
    assert [name for name, _ in top] == ["bob", "cy", "ada"]
    assert [float(s) for _, s in top] == [130.0, 120.0, 100.0]
    assert r.zrank("board", "ada") == 0
    assert r.zrevrank("board", "bob") == 0


def test_sliding_window_rate_limiter_in_one_pipeline(r):
    key, limit, window_ms = "rl:ada", 5, 1000
    allowed = 0
    now = int(time.time() * 1000)
    for i in range(8):
        pipe = r.pipeline(transaction=False)
        pipe.zremrangebyscore(key, 0, now - window_ms)
        pipe.zadd(key, {f"req{i}": now + i})
        pipe.zcard(key)
        pipe.expire(key, 2)
        _, added, count, _ = pipe.execute()
        assert added == 1
        if count <= limit:
            allowed += 1
    assert allowed == limit
    assert r.zcard(key) == 8
    assert 0 < r.ttl(key) <= 2


def test_wrong_type_is_an_error(r):
    r.set("s", "x")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        r.lpush("s", 1)
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        r.blpop("s", timeout=0.1)
