"""Lua scripting through redis-py: Script objects (EVALSHA, then SCRIPT LOAD
and retry), redis-py's Lua-based Lock, reply conversions."""

from __future__ import annotations

import asyncio
import threading

import pytest
from redis.exceptions import LockError, LockNotOwnedError, NoScriptError, ResponseError


def test_script_object_loads_on_noscript_and_runs(r):
    r.script_flush()
    incr_by = r.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    assert incr_by(keys=["n"], args=[5]) == 5
    assert r.script_exists(incr_by.sha) == [True]
    assert incr_by(keys=["n"], args=[2]) == 7
    with pytest.raises(NoScriptError):
        r.evalsha("0" * 40, 0)


def test_script_cache_holds_many_scripts(r):
    """The cache is not bounded by how many handles the Lua binding can keep:
    12,000 distinct scripts all run, then all stay runnable by SHA."""
    r.script_flush()
    pipe = r.pipeline(transaction=False)
    for i in range(12000):
        pipe.eval(f"return {i}", 0)
    assert pipe.execute() == list(range(12000))
    sha = r.script_load("return 11999")
    assert r.evalsha(sha, 0) == 11999
    r.script_flush()
    assert r.script_exists(sha) == [False]


def test_eval_conversions(r):
    assert r.eval("return {1, 'two', 3.9, nil, 5}", 0) == [1, "two", 3]
    assert r.eval("return false", 0) is None
    assert r.eval("return true", 0) == 1
    assert r.eval("return redis.status_reply('FINE')", 0) == "FINE"
    with pytest.raises(ResponseError, match="^My error"):
        r.eval("return redis.error_reply('My error')", 0)
    assert r.eval("return KEYS[2] .. ARGV[1]", 2, "a", "b", "c") == "bc"


def test_redis_call_error_raises_with_script_location(r):
    r.set("s", "text")
    with pytest.raises(ResponseError, match=r"^WRONGTYPE .* script: [0-9a-f]{40}, on @user_script:1\."):
        r.eval("return redis.call('lpush', KEYS[1], 'x')", 1, "s")
    assert r.eval("return redis.pcall('incr', KEYS[1])['err']", 1, "s").startswith("ERR value")


def test_writes_with_flags_and_time_inside_scripts(r):
    r.zadd("z", {"a": 5})
    script = "redis.call('ZADD', KEYS[1], 'GT', ARGV[1], 'a') return redis.call('ZSCORE', KEYS[1], 'a')"
    assert float(r.eval(script, 1, "z", 3)) == 5
    assert float(r.eval(script, 1, "z", 9)) == 9
    assert r.eval("return redis.call('SET', KEYS[1], 'v', 'PX', 60000)", 1, "k") == "OK"
    assert 0 < r.pttl("k") <= 60000
    assert len(r.eval("return redis.call('TIME')", 0)) == 2


def test_undeclared_key_and_sandbox(r):
    r.set("hidden", "42")
    assert r.eval("return redis.call('GET', 'hidden')", 0) == "42"
    with pytest.raises(ResponseError, match="readonly table"):
        r.eval("x = 1", 0)
    with pytest.raises(ResponseError, match="nonexistent global variable 'os'"):
        r.eval("return os.time()", 0)
    assert r.eval("local t = {} for i=1,10000 do t[i]=i end return {pcall(unpack, t)}", 0) == [
        None,
        "too many results to unpack",
    ]


def test_lock_gives_mutual_exclusion_to_eight_threads(r_factory):
    threads, rounds = 8, 25
    errors: list[BaseException] = []

    def worker():
        client = r_factory()
        try:
            for _ in range(rounds):
                with client.lock("counter-lock", timeout=10, blocking_timeout=30, sleep=0.001):
                    value = int(client.get("counter") or 0)
                    client.set("counter", value + 1)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=120)
    assert not errors
    assert int(r_factory().get("counter")) == threads * rounds


def test_lock_extend_and_release(r):
    lock = r.lock("res", timeout=5)
    assert lock.acquire(blocking=False)
    assert lock.extend(10)
    assert 5000 < r.pttl("res") <= 15000
    assert lock.reacquire()
    other = r.lock("res", timeout=5)
    assert not other.acquire(blocking=False)
    lock.release()
    assert r.get("res") is None
    with pytest.raises(LockError):  # redis-py knows it holds no token now
        lock.release()
    stolen = r.lock("res2", timeout=5)
    assert stolen.acquire(blocking=False)
    r.set("res2", "someone-else")
    with pytest.raises(LockNotOwnedError):
        stolen.release()


def test_script_kill_when_idle(r):
    with pytest.raises(ResponseError, match="No scripts in execution right now"):
        r.script_kill()


LIBRARY = """#!lua name=pylib
redis.register_function('bump', function(keys, args)
  return redis.call('INCRBY', keys[1], args[1] or 1)
end)
redis.register_function{function_name='peek', callback=function(keys, args)
  return redis.call('GET', keys[1])
end, flags={'no-writes'}, description='reads a key'}
redis.register_function('pair', function(keys, args) return {keys[1], args[1]} end)
"""


def _library_names(libraries) -> list[str]:
    def text(v):
        return v.decode() if isinstance(v, bytes) else v

    out = []
    for lib in libraries:
        d = lib if isinstance(lib, dict) else dict(zip(lib[::2], lib[1::2]))
        out.append(text(d.get("library_name", d.get(b"library_name"))))
    return out


def test_functions_load_fcall_and_fcall_ro(r):
    r.function_flush()
    assert r.function_load(LIBRARY) == "pylib"
    assert _library_names(r.function_list()) == ["pylib"]
    assert r.fcall("bump", 1, "n", 5) == 5
    assert r.fcall("BUMP", 1, "n") == 6
    assert r.fcall_ro("peek", 1, "n") == "6"
    assert r.fcall("pair", 1, "k", "a") == ["k", "a"]
    with pytest.raises(ResponseError, match=r"^Can not execute a script with write flag using \*_ro command\.$"):
        r.fcall_ro("bump", 1, "n")
    with pytest.raises(ResponseError, match="^Function not found$"):
        r.fcall("nope", 0)
    with pytest.raises(ResponseError, match="^Library 'pylib' already exists$"):
        r.function_load(LIBRARY)
    assert r.function_load(LIBRARY, replace=True) == "pylib"
    r.set("s", "text")
    with pytest.raises(ResponseError, match=r"^value is not an integer .* script: bump, on @user_function:3\.$"):
        r.fcall("bump", 1, "s")


def test_functions_dump_restore_and_delete(r):
    r.function_flush()
    r.function_load(LIBRARY)
    payload = r.function_dump()
    assert r.function_delete("pylib")
    assert r.function_list() == []
    assert r.function_restore(payload)
    assert r.fcall("bump", 1, "n", 2) == 2
    with pytest.raises(ResponseError, match="^Library pylib already exists$"):
        r.function_restore(payload)
    assert r.function_restore(payload, "REPLACE")
    assert r.function_restore(payload, "FLUSH")
    assert r.function_dump() == payload
    r.function_flush()
    with pytest.raises(ResponseError, match="^Function not found$"):
        r.fcall("bump", 1, "n")


async def test_functions_asyncio(ar):
    await ar.function_flush()
    assert await ar.function_load(LIBRARY) == "pylib"
    results = await asyncio.gather(*(ar.fcall("bump", 1, "counter", 1) for _ in range(50)))
    assert sorted(results) == list(range(1, 51))
    assert await ar.fcall_ro("peek", 1, "counter") == "50"
    with pytest.raises(ResponseError, match="write flag"):
        await ar.fcall_ro("bump", 1, "counter")
    await ar.function_flush()
