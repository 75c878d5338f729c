"""Pub/Sub through redis-py, sync and asyncio, RESP2 and RESP3: a subscriber
thread receiving JSON events in order, pattern subscriptions, and keyspace
notifications compared with the reference redis-server."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest
import redis
import redis.asyncio


def _wait_subscribed(r: redis.Redis, channel: str, n: int = 1) -> None:
    deadline = time.monotonic() + 5
    while dict(r.pubsub_numsub(channel)).get(channel, 0) < n:
        assert time.monotonic() < deadline, f"nobody subscribed to {channel}"
        time.sleep(0.01)


def test_subscriber_thread_receives_json_events_in_order(r_factory):
    publisher = r_factory()
    subscriber = r_factory()
    events = [{"seq": i, "kind": "order.created", "total": i * 1.5} for i in range(500)]
    received: list[dict] = []

    def listen() -> None:
        ps = subscriber.pubsub(ignore_subscribe_messages=True)
        ps.subscribe("events")
        for msg in ps.listen():
            if msg["type"] != "message":
                continue
            body = json.loads(msg["data"])
            if body == "stop":
                break
            received.append(body)
        ps.close()

    t = threading.Thread(target=listen)
    t.start()
    _wait_subscribed(publisher, "events")
    for e in events:
        assert publisher.publish("events", json.dumps(e)) == 1
    publisher.publish("events", json.dumps("stop"))
    t.join(timeout=30)
    assert not t.is_alive()
    assert received == events


def test_psubscribe_receives_matching_channels(r_factory):
    publisher = r_factory()
    ps = r_factory().pubsub()
    ps.psubscribe("orders.*")
    confirm = ps.get_message(timeout=5)
    assert confirm["type"] == "psubscribe" and confirm["data"] == 1
    assert publisher.pubsub_numpat() == 1
    assert publisher.publish("orders.eu", "o1") == 1
    assert publisher.publish("payments.eu", "p1") == 0
    assert publisher.publish("orders.us", "o2") == 1
    got = []
    while len(got) < 2:
        msg = ps.get_message(timeout=5)
        assert msg is not None, "pattern message missing"
        got.append((msg["type"], msg["pattern"], msg["channel"], msg["data"]))
    assert got == [
        ("pmessage", "orders.*", "orders.eu", "o1"),
        ("pmessage", "orders.*", "orders.us", "o2"),
    ]
    ps.punsubscribe("orders.*")
    assert ps.get_message(timeout=5)["type"] == "punsubscribe"
    ps.close()


def test_pubsub_introspection(r_factory):
    r = r_factory()
    ps = r_factory().pubsub()
    ps.subscribe("a", "b")
    ps.ssubscribe("s")
    for _ in range(3):
        assert ps.get_message(timeout=5) is not None
    assert sorted(r.pubsub_channels()) == ["a", "b"]
    assert r.pubsub_channels("a*") == ["a"]
    assert dict(r.pubsub_numsub("a", "zz")) == {"a": 1, "zz": 0}
    assert r.pubsub_shardchannels() == ["s"]
    assert r.spublish("s", "m") == 1
    msg = ps.get_sharded_message(timeout=5)
    assert (msg["type"], msg["channel"], msg["data"]) == ("smessage", "s", "m")
    ps.close()


async def test_asyncio_subscriber(ar_factory):
    publisher = ar_factory()
    subscriber = ar_factory()
    ps = subscriber.pubsub()
    await ps.subscribe("jobs")
    await ps.psubscribe("orders.*")
    for _ in range(2):
        assert await ps.get_message(timeout=5) is not None
    sent = [json.dumps({"n": i}) for i in range(100)]

    async def consume() -> list[tuple[str, str]]:
        got = []
        while len(got) < 101:
            msg = await ps.get_message(ignore_subscribe_messages=True, timeout=5)
            assert msg is not None, f"stalled after {len(got)} messages"
            got.append((msg["channel"], msg["data"]))
        return got

    consumer = asyncio.create_task(consume())
    for body in sent:
        assert await publisher.publish("jobs", body) == 1
    assert await publisher.publish("orders.1", "o") == 1
    got = await asyncio.wait_for(consumer, 30)
    assert got == [("jobs", b) for b in sent] + [("orders.1", "o")]
    await ps.aclose()


KEYSPACE_SCRIPT = [
    ("SET", "s", "v", "EX", "100"),
    ("SETEX", "s2", "100", "v"),
    ("MSET", "a", "1", "b", "2"),
    ("INCRBY", "a", "5"),
    ("INCRBYFLOAT", "b", "1.5"),
    ("APPEND", "s", "x"),
    ("GETDEL", "s2"),
    ("DEL", "a", "nosuch", "b"),
    ("EXPIRE", "s", "50"),
    ("PERSIST", "s"),
    ("RENAME", "s", "t"),
    ("RPUSH", "l", "a", "b", "c"),
    ("LMOVE", "l", "l2", "LEFT", "RIGHT"),
    ("LPOP", "l", "5"),
    ("HSET", "h", "f", "1"),
    ("HINCRBY", "h", "f", "2"),
    ("HDEL", "h", "f"),
    ("ZADD", "z", "1", "a", "2", "b"),
    ("ZINCRBY", "z", "1", "a"),
    ("ZPOPMIN", "z", "5"),
    ("SADD", "st", "a", "b", "c"),
    ("SREM", "st", "a"),
    ("SADD", "st2", "x"),
    ("SMOVE", "st", "st2", "b"),
    ("SINTERSTORE", "sd", "st", "st2"),
    ("SUNIONSTORE", "sd", "st", "st2"),
    ("SDIFFSTORE", "sd", "sd", "st", "st2"),
    ("SINTERSTORE", "sd2", "nosrc", "st"),
    ("SMOVE", "st2", "fresh", "x"),
    ("SPOP", "st2", "5"),
    ("GET", "nokey"),
    ("MGET", "t", "nokey2"),
    ("EXISTS", "nokey3", "t"),
    ("GETEX", "nokey4"),
    ("OBJECT", "ENCODING", "t"),
    ("EVAL", "return redis.call('HGET', KEYS[1], 'f')", "1", "nohash"),
    ("SET", "gone", "v", "PX", "1"),
]


def _keyspace_events(host: str, port: int, classes: str) -> list[tuple[str, str]]:
    c = redis.Redis(host=host, port=port, decode_responses=True)
    ps = c.pubsub()
    try:
        c.config_set("notify-keyspace-events", classes)
        ps.psubscribe("__key*__:*")
        assert ps.get_message(timeout=5)["type"] == "psubscribe"
        for command in KEYSPACE_SCRIPT:
            c.execute_command(*command)
        time.sleep(0.05)
        c.get("gone")  # lazy expiry, if the active one did not come first
        got = []
        while (msg := ps.get_message(timeout=0.5)) is not None:
            got.append((msg["channel"], msg["data"]))
        return got
    finally:
        c.config_set("notify-keyspace-events", "")
        ps.close()
        c.close()


# `A` leaves out `n` (new keys) and `m` (key misses); KEAmn is everything.
@pytest.mark.parametrize("classes", ["KEA", "KEAmn", "Kgsm", "En$"])
def test_keyspace_notifications_match_reference(ferrokv, reference_server, classes):
    ref = reference_server.endpoint
    redis.Redis(host=ref.host, port=ref.port).flushall()
    redis.Redis(host=ferrokv.host, port=ferrokv.port).flushall()
    ours = _keyspace_events(ferrokv.host, ferrokv.port, classes)
    theirs = _keyspace_events(ref.host, ref.port, classes)
    assert ours == theirs
    if "A" in classes:
        assert ("__keyevent@0__:expired", "gone") in ours
    if "m" in classes:
        assert ("__keyspace@0__:nokey", "keymiss") in ours
    if "n" in classes:
        assert ("__keyevent@0__:new", "st") in ours


def _served_pop_events(host: str, port: int) -> list[tuple[str, str]]:
    c = redis.Redis(host=host, port=port, decode_responses=True)
    blocked = redis.Redis(host=host, port=port, decode_responses=True)
    ps = c.pubsub()
    try:
        c.config_set("notify-keyspace-events", "KEA")
        ps.psubscribe("__key*__:*")
        assert ps.get_message(timeout=5)["type"] == "psubscribe"
        cases = [
            (("BLPOP", "bl", "0"), ("RPUSH", "bl", "a", "b")),
            (("BLMOVE", "src", "dst", "RIGHT", "LEFT", "0"), ("LPUSH", "src", "x")),
            (("BZPOPMIN", "z", "0"), ("ZADD", "z", "1", "a")),
        ]
        for wait, push in cases:
            t = threading.Thread(target=blocked.execute_command, args=wait)
            t.start()
            deadline = time.monotonic() + 5
            while int(c.info("clients")["blocked_clients"]) < 1:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            c.execute_command(*push)
            t.join(timeout=5)
        got = []
        while (msg := ps.get_message(timeout=0.5)) is not None:
            got.append((msg["channel"], msg["data"]))
        return got
    finally:
        c.config_set("notify-keyspace-events", "")
        ps.close()
        c.close()
        blocked.close()


def test_served_blocking_pops_notify_like_reference(ferrokv, reference_server):
    ref = reference_server.endpoint
    redis.Redis(host=ref.host, port=ref.port).flushall()
    ours = _served_pop_events(ferrokv.host, ferrokv.port)
    assert ours == _served_pop_events(ref.host, ref.port)
    assert ("__keyevent@0__:zpopmin", "z") in ours
