"""Lua scripting through redis-py: Script objects (EVALSHA, then SCRIPT LOAD
and retry), redis-py's Lua-based Lock, reply conversions."""

from __future__ import annotations

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
