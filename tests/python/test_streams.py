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


# ---- consumer groups ------------------------------------------------------------


def _group_entries(reply, key):
    """XREADGROUP's entries for `key` (either protocol's shape)."""
    if not reply:
        return []
    return _entries(reply, key)


def test_group_admin_and_introspection_shapes(r):
    r.xadd("s", {"a": "1"}, id="1-0")
    r.xadd("s", {"b": "2"}, id="2-0")
    assert r.xgroup_create("s", "g", id="0") is True
    with pytest.raises(Exception, match="BUSYGROUP"):
        r.xgroup_create("s", "g", id="0")
    assert r.xgroup_create("new", "g", id="$", mkstream=True) is True
    assert r.xgroup_createconsumer("s", "g", "idle-one") == 1
    got = r.xreadgroup("g", "c", {"s": ">"}, count=1)
    assert _group_entries(got, "s") == [("1-0", {"a": "1"})]
    groups = r.xinfo_groups("s")
    assert len(groups) == 1
    g = groups[0]
    assert (g["name"], g["consumers"], g["pending"]) == ("g", 2, 1)
    assert (g["last-delivered-id"], g["entries-read"], g["lag"]) == ("1-0", 1, 1)
    consumers = {c["name"]: c for c in r.xinfo_consumers("s", "g")}
    assert consumers["c"]["pending"] == 1 and consumers["idle-one"]["pending"] == 0
    summary = r.xpending("s", "g")
    assert summary["pending"] == 1 and summary["min"] == "1-0" and summary["max"] == "1-0"
    assert summary["consumers"] == [{"name": "c", "pending": 1}]
    rows = r.xpending_range("s", "g", min="-", max="+", count=10)
    assert [(x["message_id"], x["consumer"], x["times_delivered"]) for x in rows] == [
        ("1-0", "c", 1)
    ]
    full = r.xinfo_stream("s", full=True)
    assert full["groups"][0]["pel-count"] == 1
    assert r.xgroup_setid("s", "g", "0", entries_read=0) is True
    assert r.xgroup_delconsumer("s", "g", "c") == 1
    assert r.xgroup_destroy("s", "g") == 1
    assert r.xinfo_groups("s") == []
    with pytest.raises(Exception, match="NOGROUP"):
        r.xreadgroup("g", "c", {"s": ">"})


def _work(client, name, done, stop_after=None):
    """A worker: takes jobs one at a time, acknowledges each (unless it
    'dies' after `stop_after` jobs, leaving the last one pending)."""
    taken = 0
    while True:
        got = client.xreadgroup("workers", name, {"jobs": ">"}, count=1, block=300)
        entries = _group_entries(got, "jobs")
        if not entries:
            return
        for job_id, fields in entries:
            taken += 1
            if stop_after is not None and taken > stop_after:
                return  # crashed with the job in hand
            done.append((name, fields["n"]))
            client.xack("jobs", "workers", job_id)


def test_worker_pool_with_a_crashed_consumer_and_xautoclaim(r_factory):
    admin = r_factory()
    admin.xgroup_create("jobs", "workers", id="$", mkstream=True)
    for i in range(30):
        admin.xadd("jobs", {"n": str(i)}, id=f"{i + 1}-0")
    done: list[tuple[str, str]] = []
    workers = [
        threading.Thread(target=_work, args=(r_factory(), f"w{i}", done)) for i in range(3)
    ]
    crasher = threading.Thread(target=_work, args=(r_factory(), "crasher", done, 2))
    for t in [crasher, *workers]:
        t.start()
    for t in [crasher, *workers]:
        t.join(15)
    # Everything but the crasher's job in hand was done exactly once.
    assert len(done) == 29 and len({n for _, n in done}) == 29
    summary = admin.xpending("jobs", "workers")
    assert summary["pending"] == 1
    assert summary["consumers"] == [{"name": "crasher", "pending": 1}]
    time.sleep(0.06)
    cursor, claimed, deleted = admin.xautoclaim("jobs", "workers", "rescuer", 50, "0-0")[:3]
    assert cursor == "0-0" and deleted == []
    assert len(claimed) == 1
    job_id, fields = claimed[0]
    assert fields["n"] not in {n for _, n in done}
    rows = admin.xpending_range("jobs", "workers", min="-", max="+", count=5)
    assert rows[0]["consumer"] == "rescuer" and rows[0]["times_delivered"] == 2
    assert admin.xack("jobs", "workers", job_id) == 1
    assert admin.xpending("jobs", "workers")["pending"] == 0
    lag = admin.xinfo_groups("jobs")[0]["lag"]
    assert lag == 0


async def test_async_worker_pool_and_recovery(ar_factory):
    admin = ar_factory()
    await admin.xgroup_create("q", "g", id="$", mkstream=True)
    done: list[str] = []

    async def worker(name, die_after=None):
        client = ar_factory()
        taken = 0
        while True:
            got = await client.xreadgroup("g", name, {"q": ">"}, count=1, block=300)
            entries = _group_entries(got, "q")
            if not entries:
                return
            for job_id, fields in entries:
                taken += 1
                if die_after is not None and taken > die_after:
                    return
                done.append(fields["n"])
                await client.xack("q", "g", job_id)

    tasks = [asyncio.create_task(worker(f"w{i}")) for i in range(2)]
    tasks.append(asyncio.create_task(worker("dies", die_after=1)))
    for _ in range(500):
        if (await admin.info("clients"))["blocked_clients"] == 3:
            break
        await asyncio.sleep(0.01)
    for i in range(20):
        await admin.xadd("q", {"n": str(i)})
    await asyncio.gather(*tasks)
    assert len(done) == 19
    await asyncio.sleep(0.06)
    # redis-py hands back only the claimed ids with JUSTID.
    claimed = await admin.xautoclaim("q", "g", "rescuer", 50, "0", justid=True)
    assert len(claimed) == 1
    rows = await admin.xpending_range("q", "g", "-", "+", 5)
    # JUSTID does not count a delivery.
    assert rows[0]["consumer"] == "rescuer" and rows[0]["times_delivered"] == 1
    assert await admin.xack("q", "g", *claimed) == 1
