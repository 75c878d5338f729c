"""redis-py's client-side cache (RESP3 + CLIENT TRACKING): values are served
from the cache until the server's invalidation push drops them."""

from __future__ import annotations

import time

import pytest
import redis

cache_mod = pytest.importorskip("redis.cache")
if not hasattr(cache_mod, "CacheConfig"):
    pytest.skip("this redis-py has no client-side cache", allow_module_level=True)


def _get_calls(r: redis.Redis) -> int:
    stats = r.info("commandstats")
    return int(stats.get("cmdstat_get", {}).get("calls", 0))


@pytest.fixture
def cache_allowed_on_7_0(monkeypatch):
    """redis-py enables its cache only for servers that say 7.4 or later (a
    product choice; Redis 7.0.15 is refused the same way). The protocol it
    uses, CLIENT TRACKING with RESP3 pushes, is 7.0's: lower the gate."""
    from redis.connection import CacheProxyConnection

    monkeypatch.setattr(CacheProxyConnection, "MIN_ALLOWED_VERSION", "7.0.0")


def test_redis_py_client_side_cache_is_invalidated(ferrokv, cache_allowed_on_7_0):
    writer = redis.Redis(host=ferrokv.host, port=ferrokv.port, socket_timeout=10)
    cached = redis.Redis(
        host=ferrokv.host,
        port=ferrokv.port,
        protocol=3,
        cache_config=cache_mod.CacheConfig(),
        socket_timeout=10,
    )
    try:
        writer.set("user:1", "alice")
        writer.config_resetstat()
        assert cached.get("user:1") == b"alice"
        # The second read is answered from the cache: the server saw one GET.
        assert cached.get("user:1") == b"alice"
        assert _get_calls(writer) == 1
        assert cached.get_cache().size == 1

        writer.set("user:1", "bob")
        deadline = time.monotonic() + 5
        while cached.get("user:1") != b"bob":
            assert time.monotonic() < deadline, "the cached value was never invalidated"
            time.sleep(0.01)

        # FLUSHALL drops everything the client cached.
        assert cached.get("user:1") == b"bob"
        writer.flushall()
        deadline = time.monotonic() + 5
        while cached.get("user:1") is not None:
            assert time.monotonic() < deadline, "FLUSHALL did not invalidate the cache"
            time.sleep(0.01)
    finally:
        cached.close()
        writer.close()
