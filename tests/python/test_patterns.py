"""How applications really use Redis through redis-py 8, in RESP2 and RESP3.

Every test runs twice (the `protocol` fixture): redis-py 2 sends CLIENT
SETINFO on connect, RESP3 additionally starts with HELLO 3.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from conftest import PASSWORD

NO_RETRY = Retry(NoBackoff(), 0)


# --------------------------------------------------------------------------
# Connecting
# --------------------------------------------------------------------------


def test_handshake_and_ping(r, protocol):
    assert r.ping() is True
    conn = r.connection_pool.get_connection()
    try:
        if protocol == 3:
            meta = conn.handshake_metadata
            proto = meta.get("proto", meta.get(b"proto"))
            assert proto == 3
            assert (meta.get("server") or meta.get(b"server")) in ("redis", b"redis")
    finally:
        r.connection_pool.release(conn)
    # Redis 7.0 has no CLIENT SETINFO: redis-py ignores that error, and the
    # connection must still be usable and in the requested protocol.
    info = r.client_info()
    assert int(info["resp"]) == protocol
    assert "lib-name" not in info


def test_auth_with_password(ferrokv_auth, protocol):
    good = redis.Redis(
        host=ferrokv_auth.host, port=ferrokv_auth.port, password=PASSWORD, protocol=protocol
    )
    try:
        assert good.ping() is True
        assert good.set("k", "v") is True
        assert good.get("k") == b"v"
    finally:
        good.close()

    # Failing handshakes are not retried (the default retries with backoff).
    anonymous = redis.Redis(
        host=ferrokv_auth.host, port=ferrokv_auth.port, protocol=protocol, retry=NO_RETRY
    )
    try:
        with pytest.raises(redis.exceptions.AuthenticationError):
            anonymous.get("k")
    finally:
        anonymous.close()

    wrong = redis.Redis(
        host=ferrokv_auth.host,
        port=ferrokv_auth.port,
        password="nope",
        protocol=protocol,
        retry=NO_RETRY,
    )
    try:
        with pytest.raises(redis.exceptions.AuthenticationError):
            wrong.ping()
    finally:
        wrong.close()


# --------------------------------------------------------------------------
# Caching
# --------------------------------------------------------------------------


def test_cache_aside_with_setex_and_ttl(r):
    computed = []

    def load_user(user_id: int) -> dict:
        key = f"user:{user_id}"
        cached = r.get(key)
        if cached is not None:
            return json.loads(cached)
        value = {"id": user_id, "name": f"user-{user_id}"}
        computed.append(user_id)
        r.setex(key, 300, json.dumps(value))
        return value

    assert load_user(7) == {"id": 7, "name": "user-7"}  # miss
    assert load_user(7) == {"id": 7, "name": "user-7"}  # hit
    assert computed == [7]
    assert 295 <= r.ttl("user:7") <= 300
    assert 295_000 <= r.pttl("user:7") <= 300_000
    assert r.ttl("user:none") == -2
    r.set("plain", "x")
    assert r.ttl("plain") == -1


def cached(client: redis.Redis, ttl: int):
    """A memoizing decorator that stores JSON results with an expiry."""

    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args):
            key = f"cache:{fn.__name__}:{json.dumps(args)}"
            hit = client.get(key)
            if hit is not None:
                return json.loads(hit)
            result = fn(*args)
            client.set(key, json.dumps(result), ex=ttl)
            return result

        return wrapper

    return decorate


def test_caching_decorator(r):
    calls = []

    @cached(r, ttl=60)
    def slow_square(n):
        calls.append(n)
        return {"n": n, "square": n * n}

    assert slow_square(4) == {"n": 4, "square": 16}
    assert slow_square(4) == {"n": 4, "square": 16}
    assert slow_square(5) == {"n": 5, "square": 25}
    assert calls == [4, 5]
    assert slow_square.__name__ == "slow_square"
    key = "cache:slow_square:[4]"
    assert 0 < r.ttl(key) <= 60
    r.delete(key)
    slow_square(4)
    assert calls == [4, 5, 4]


def test_mset_mget(r):
    assert r.mset({"a": "1", "b": "2", "c": "3"}) is True
    assert r.mget(["a", "b", "missing", "c"]) == ["1", "2", None, "3"]
    assert r.mget("a", "c") == ["1", "3"]


# --------------------------------------------------------------------------
# Rate limiting and concurrency
# --------------------------------------------------------------------------


def fixed_window_hit(
    client: redis.Redis, user: str, limit: int, window: int, nx: bool, clock=time.time
) -> bool:
    """One request through a fixed-window limiter; True if allowed."""
    key = f"rl:{user}:{int(clock()) // window}"
    pipe = client.pipeline(transaction=False)
    pipe.incr(key)
    if nx:
        pipe.expire(key, window, nx=True)
        count, _ = pipe.execute()
    else:
        (count,) = pipe.execute()
        if count == 1:
            client.expire(key, window)
    return count <= limit


@pytest.mark.parametrize("nx", [True, False], ids=["expire-nx", "expire-on-first"])
def test_fixed_window_rate_limit_under_16_threads(r, nx):
    threads, per_thread, limit, window = 16, 200, 1000, 3600
    allowed = [0] * threads
    start = time.time()  # frozen, so a window boundary cannot split the test

    def worker(i):
        for _ in range(per_thread):
            if fixed_window_hit(r, "alice", limit, window, nx, clock=lambda: start):
                allowed[i] += 1

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(worker, range(threads)))

    (key,) = r.keys("rl:alice:*")
    assert int(r.get(key)) == threads * per_thread
    assert sum(allowed) == limit
    assert 0 < r.ttl(key) <= window


def test_pipeline_returns_results_in_order(r):
    pipe = r.pipeline(transaction=False)
    pipe.set("p1", "one")
    pipe.incr("counter")
    pipe.get("p1")
    pipe.incrby("counter", 10)
    pipe.get("nope")
    pipe.delete("p1")
    pipe.exists("p1")
    assert pipe.execute() == [True, 1, "one", 11, None, 1, 0]

    pipe = r.pipeline(transaction=False)
    for i in range(500):
        pipe.set(f"k{i}", i)
    for i in range(500):
        pipe.get(f"k{i}")
    results = pipe.execute()
    assert results[:500] == [True] * 500
    assert results[500:] == [str(i) for i in range(500)]


def test_pipeline_reports_errors_in_place(r):
    r.set("s", "not a number")
    pipe = r.pipeline(transaction=False)
    pipe.incr("s")
    pipe.set("t", "ok")
    results = pipe.execute(raise_on_error=False)
    assert isinstance(results[0], redis.exceptions.ResponseError)
    assert str(results[0]) == "value is not an integer or out of range"
    assert results[1] is True


@pytest.mark.parametrize("pool_class", [redis.ConnectionPool, redis.BlockingConnectionPool])
def test_connection_pool_shared_by_50_threads(ferrokv, protocol, pool_class):
    # ConnectionPool opens a connection per busy thread (up to 50);
    # BlockingConnectionPool makes the 50 threads share 10 connections.
    limit = {"max_connections": 10, "timeout": 30} if pool_class is redis.BlockingConnectionPool else {}
    pool = pool_class(
        host=ferrokv.host, port=ferrokv.port, protocol=protocol, decode_responses=True, **limit
    )
    client = redis.Redis(connection_pool=pool)
    errors = []

    def worker(t):
        try:
            for i in range(50):
                key, value = f"t{t}:k{i}", f"value-{t}-{i}-" + "x" * (i * 7)
                client.set(key, value)
                got = client.get(key)
                if got != value:
                    errors.append((key, got))
        except Exception as e:  # surfaced below with the thread's id
            errors.append((t, f"{type(e).__name__}: {e}"))

    try:
        workers = [threading.Thread(target=worker, args=(t,)) for t in range(50)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert errors == []
        assert client.dbsize() == 50 * 50
    finally:
        pool.disconnect()


# --------------------------------------------------------------------------
# Keyspace
# --------------------------------------------------------------------------


def test_scan_iter_returns_every_key(r):
    pipe = r.pipeline(transaction=False)
    for i in range(1500):
        pipe.set(f"user:{i}", i)
    for i in range(300):
        pipe.set(f"other:{i}", i)
    pipe.execute()
    seen = list(r.scan_iter(count=100))
    # SCAN may return a key twice, but never misses one that existed throughout.
    assert set(seen) == {f"user:{i}" for i in range(1500)} | {f"other:{i}" for i in range(300)}
    users = set(r.scan_iter(match="user:*", count=250))
    assert users == {f"user:{i}" for i in range(1500)}
    assert set(r.scan_iter(match="other:1?", count=50)) == {f"other:{i}" for i in range(10, 20)}


def test_expiry_with_px(r):
    assert r.set("short", "lived", px=100) is True
    assert r.get("short") == "lived"
    assert 0 < r.pttl("short") <= 100
    time.sleep(0.25)
    assert r.get("short") is None
    assert r.exists("short") == 0


def test_incrbyfloat(r):
    assert r.incrbyfloat("f", 10.5) == 10.5
    assert r.incrbyfloat("f", 0.1) == pytest.approx(10.6)
    assert r.get("f") == "10.6"
    assert r.incrbyfloat("f", -5) == pytest.approx(5.6)
    r.set("bad", "abc")
    with pytest.raises(redis.exceptions.ResponseError, match="value is not a valid float"):
        r.incrbyfloat("bad", 1)


def test_getex(r):
    r.set("g", "v")
    assert r.getex("g", ex=100) == "v"
    assert 95 <= r.ttl("g") <= 100
    assert r.getex("g", px=5000) == "v"
    assert 4000 <= r.pttl("g") <= 5000
    assert r.getex("g", persist=True) == "v"
    assert r.ttl("g") == -1
    assert r.getex("missing", ex=10) is None


def test_binary_safe_values(r_factory):
    rb = r_factory(decode_responses=False)
    value = b"\x00\r\n\xff binary \r\n\x00" + bytes(range(256))
    key = b"bin\x00key\r\n"
    assert rb.set(key, value) is True
    assert rb.get(key) == value
    assert rb.strlen(key) == len(value)
    assert rb.mget([key, b"x"]) == [value, None]


def test_select_via_db_parameter(r, r_factory):
    db3 = r_factory(db=3)
    db3.set("only-in-3", "yes")
    assert db3.get("only-in-3") == "yes"
    assert r.get("only-in-3") is None
    assert db3.dbsize() == 1
    assert r.dbsize() == 0
    db3.flushdb()
    assert db3.dbsize() == 0


def test_client_setname_getname(r):
    assert r.client_getname() is None
    assert r.client_setname("worker-1") is True
    assert r.client_getname() == "worker-1"
    assert any(c.get("name") == "worker-1" for c in r.client_list())


def test_info_parsing(r):
    r.set("a", 1)
    r.set("b", 2, ex=100)
    info = r.info()
    assert info["redis_version"] == "7.0.15"
    assert isinstance(info["connected_clients"], int) and info["connected_clients"] >= 1
    assert info["db0"]["keys"] == 2
    assert info["db0"]["expires"] == 1
    keyspace = r.info("keyspace")
    assert keyspace == {"db0": {"keys": 2, "expires": 1, "avg_ttl": keyspace["db0"]["avg_ttl"]}}
    server = r.info("server")
    assert server["redis_mode"] == "standalone"
    assert "used_memory" not in server


def test_config_get(r):
    assert r.config_get("maxmemory") == {"maxmemory": "0"}
    # Patterns return every matching parameter.
    assert set(r.config_get("maxmemory*")) >= {"maxmemory", "maxmemory-policy"}


def test_dbsize_flushdb_type_rename_copy(r):
    assert r.dbsize() == 0
    r.set("s", "v")
    r.set("n", 12)
    assert r.dbsize() == 2
    assert r.type("s") == "string"
    assert r.type("missing") == "none"

    assert r.rename("s", "s2") is True
    assert r.get("s") is None and r.get("s2") == "v"
    with pytest.raises(redis.exceptions.ResponseError, match="no such key"):
        r.rename("missing", "x")

    assert r.copy("s2", "s3") is True
    assert r.get("s3") == "v"
    assert r.copy("s2", "s3") is False
    assert r.copy("s2", "s3", replace=True) is True

    assert r.flushdb() is True
    assert r.dbsize() == 0
