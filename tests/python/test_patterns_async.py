"""The key user patterns through redis.asyncio, in RESP2 and RESP3."""

from __future__ import annotations

import asyncio
import json

import pytest
import redis
import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from conftest import PASSWORD


async def test_handshake_and_ping(ar, protocol):
    assert await ar.ping() is True
    info = await ar.client_info()
    assert int(info["resp"]) == protocol


async def test_auth_with_password(ferrokv_auth, protocol):
    client = redis.asyncio.Redis(
        host=ferrokv_auth.host, port=ferrokv_auth.port, password=PASSWORD, protocol=protocol
    )
    try:
        assert await client.ping() is True
        assert await client.set("k", "v") is True
        assert await client.get("k") == b"v"
    finally:
        await client.aclose()

    anonymous = redis.asyncio.Redis(
        host=ferrokv_auth.host,
        port=ferrokv_auth.port,
        protocol=protocol,
        retry=Retry(NoBackoff(), 0),  # a failing handshake is not retried
    )
    try:
        with pytest.raises(redis.exceptions.AuthenticationError):
            await anonymous.get("k")
    finally:
        await anonymous.aclose()


async def test_gather_100_concurrent_incrs(ar):
    results = await asyncio.gather(*(ar.incr("hits") for _ in range(100)))
    assert sorted(results) == list(range(1, 101))
    assert await ar.get("hits") == "100"


async def test_gather_of_tasks_each_incrementing(ar):
    async def worker():
        for _ in range(20):
            await ar.incrby("total", 3)

    await asyncio.gather(*(worker() for _ in range(50)))
    assert int(await ar.get("total")) == 50 * 20 * 3


async def test_pipeline_in_order(ar):
    async with ar.pipeline(transaction=False) as pipe:
        pipe.set("a", "1")
        pipe.incr("a")
        pipe.get("a")
        pipe.mget("a", "missing")
        pipe.delete("a")
        results = await pipe.execute()
    assert results == [True, 2, "2", ["2", None], 1]


@pytest.mark.parametrize(
    "pool_class", [redis.asyncio.ConnectionPool, redis.asyncio.BlockingConnectionPool]
)
async def test_shared_pool_50_tasks(ferrokv, protocol, ar_factory, pool_class):
    # BlockingConnectionPool makes 50 tasks share 10 connections.
    limit = {"max_connections": 10} if pool_class is redis.asyncio.BlockingConnectionPool else {}
    pool = pool_class(
        host=ferrokv.host, port=ferrokv.port, protocol=protocol, decode_responses=True, **limit
    )
    client = ar_factory(connection_pool=pool)

    async def worker(t):
        for i in range(20):
            key, value = f"t{t}:{i}", f"v{t}-{i}"
            await client.set(key, value)
            got = await client.get(key)
            assert got == value, (key, got)

    try:
        await asyncio.wait_for(asyncio.gather(*(worker(t) for t in range(50))), timeout=60)
        expected = {f"t{t}:{i}" for t in range(50) for i in range(20)}
        assert set(await client.keys("*")) == expected
        assert await client.dbsize() == len(expected)
    finally:
        await pool.disconnect()


async def test_cache_aside_setex(ar):
    async def load(key):
        hit = await ar.get(key)
        if hit is not None:
            return json.loads(hit), True
        value = {"key": key}
        await ar.setex(key, 120, json.dumps(value))
        return value, False

    assert await load("page:1") == ({"key": "page:1"}, False)
    assert await load("page:1") == ({"key": "page:1"}, True)
    assert 115 <= await ar.ttl("page:1") <= 120


async def test_scan_iter(ar):
    await ar.mset({f"k{i}": i for i in range(700)})
    keys = {k async for k in ar.scan_iter(count=64)}
    assert keys == {f"k{i}" for i in range(700)}


async def test_expiry(ar):
    await ar.set("brief", "x", px=100)
    assert await ar.get("brief") == "x"
    await asyncio.sleep(0.25)
    assert await ar.get("brief") is None
