"""Streams through redis-py, sync and asyncio, RESP2 and RESP3: the shapes
redis-py parses, XREAD BLOCK woken by another client, every reader woken."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest


def _entries(reply, key):
    """XREAD's entries for `key`, whichever shape the protocol gave
    (RESP2: a list of [key, entries]; RESP3: a dict key -> entries)."""
    if isinstance(reply, dict):
        return [tuple(e) for e in reply[key][0]]
    return [tuple(e) for k, entries in reply if k == key for e in entries]


def test_add_range_len_delete(r):
    assert r.xadd("s", {"a": "1", "b": "2"}, id="1-1") == "1-1"
    assert r.xadd("s", {"a": "3"}, id="1-*") == "1-2"
    auto = r.xadd("s", {"c": "x"})
    ms, seq = map(int, auto.split("-"))
    assert ms >= int(time.time() * 1000) - 10_000 and seq == 0
    assert r.xlen("s") == 3
    assert r.type("s") == "stream"
    assert r.xrange("s", "-", "+", count=2) == [
        ("1-1", {"a": "1", "b": "2"}),
        ("1-2", {"a": "3"}),
    ]
    assert r.xrevrange("s", "+", "-", count=1) == [(auto, {"c": "x"})]
    assert r.xrange("s", "(1-1", "+")[0][0] == "1-2"
    assert r.xdel("s", "1-2", "9-9") == 1
    assert [e[0] for e in r.xrange("s")] == ["1-1", auto]
    with pytest.raises(Exception, match="equal or smaller"):
        r.xadd("s", {"a": "1"}, id="1-1")
    assert r.xadd("nokey", {"a": "1"}, nomkstream=True) is None
    assert r.exists("nokey") == 0


def test_trimming(r):
    for i in range(1, 251):
        r.xadd("s", {"f": i}, id=f"{i}-0")
    # Approximate: whole nodes of 100 entries only.
    assert r.xtrim("s", maxlen=120, approximate=True) == 100
    assert r.xlen("s") == 150
    assert r.xtrim("s", maxlen=120, approximate=False) == 30
    assert r.xtrim("s", minid="200-0", approximate=False) == 69
    assert r.xrange("s", count=1)[0][0] == "200-0"
    with pytest.raises(Exception, match="LIMIT cannot be used without the special ~"):
        r.xtrim("s", maxlen=1, approximate=False, limit=5)
    # redis-py's XADD trims with `~` by default: nothing goes before a node fills.
    for i in range(1, 12):
        r.xadd("m", {"f": i}, maxlen=10)
    assert r.xlen("m") == 11
    r.xadd("e", {"f": 1}, maxlen=1, approximate=False)
    r.xadd("e", {"f": 2}, maxlen=1, approximate=False)
    assert r.xlen("e") == 1


def test_xinfo_stream_and_xsetid(r):
    r.xadd("s", {"a": "1"}, id="1-0")
    r.xadd("s", {"b": "2"}, id="2-0")
    r.xdel("s", "1-0")
    info = r.xinfo_stream("s")
    assert info["length"] == 1
    assert info["last-generated-id"] == "2-0"
    assert info["max-deleted-entry-id"] == "1-0"
    assert info["entries-added"] == 2
    assert info["recorded-first-entry-id"] == "2-0"
    assert info["groups"] == 0
    assert info["first-entry"] == ("2-0", {"b": "2"})
    assert info["last-entry"] == ("2-0", {"b": "2"})
    assert r.execute_command("XSETID", "s", "5-0", "ENTRIESADDED", 7) in (True, "OK")
    assert r.xadd("s", {"c": "3"}, id="5-*") == "5-1"
    full = r.xinfo_stream("s", full=True)
    assert full["length"] == 2 and len(full["entries"]) == 2


def test_xread_without_block(r):
    r.xadd("a", {"f": "1"}, id="1-0")
    r.xadd("a", {"f": "2"}, id="2-0")
    r.xadd("b", {"g": "3"}, id="3-0")
    got = r.xread({"a": "0-0", "b": "0-0"}, count=1)
    assert _entries(got, "a") == [("1-0", {"f": "1"})]
    assert _entries(got, "b") == [("3-0", {"g": "3"})]
    assert r.xread({"a": "$"}) in (None, [], {})
    assert r.xread({"a": "2-0"}) in (None, [], {})


def test_xread_block_woken_by_xadd_from_another_client(r_factory):
    reader, writer = r_factory(), r_factory()
    writer.xadd("s", {"old": "1"}, id="1-0")
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(reader_for().xread({"s": "$"}, block=5000)))
        for reader_for in [r_factory] * 3
    ]
    for t in threads:
        t.start()
    deadline = time.time() + 5
    while writer.info("clients")["blocked_clients"] < 3:
        assert time.time() < deadline, "readers never blocked"
        time.sleep(0.01)
    writer.xadd("s", {"new": "2"}, id="2-0")
    for t in threads:
        t.join(5)
    # Every reader got the new entry (and only it); none consumed it.
    assert [_entries(g, "s") for g in results] == [[("2-0", {"new": "2"})]] * 3
    assert writer.xlen("s") == 2
    # A timeout answers nil.
    start = time.time()
    assert reader.xread({"s": "$"}, block=150) in (None, [], {})
    assert time.time() - start >= 0.14


async def test_async_readers_all_woken_and_timeout(ar_factory):
    writer = ar_factory()
    readers = [ar_factory() for _ in range(3)]
    await writer.xadd("s", {"x": "0"}, id="1-0")
    waits = [asyncio.create_task(r.xread({"s": "$"}, block=5000)) for r in readers]
    for _ in range(500):
        if (await writer.info("clients"))["blocked_clients"] == 3:
            break
        await asyncio.sleep(0.01)
    await writer.xadd("s", {"y": "1"}, id="2-0")
    got = await asyncio.gather(*waits)
    assert [_entries(g, "s") for g in got] == [[("2-0", {"y": "1"})]] * 3
    assert await readers[0].xread({"s": "2-0"}, block=100) in (None, [], {})
    assert await readers[0].xrevrange("s", "+", "-", count=1) == [("2-0", {"y": "1"})]
    assert await writer.xlen("s") == 2
