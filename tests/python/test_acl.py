"""ACL through redis-py: its acl_* helpers and username/password clients,
sync and asyncio, RESP2 and RESP3."""

import pytest
import redis
import redis.asyncio


@pytest.fixture(autouse=True)
def clean_users(r):
    yield
    for name in r.acl_users():
        if name != "default":
            r.acl_deluser(name)
    r.acl_log_reset()


def test_setuser_getuser_list(r):
    assert r.acl_setuser(
        "app",
        enabled=True,
        passwords=["+s3cret"],
        keys=["app:*"],
        channels=["news"],
        commands=["+@read", "+@write", "-@dangerous"],
    )
    u = r.acl_getuser("app")
    assert "on" in u["flags"]
    assert u["keys"] in (["~app:*"], "~app:*")
    assert len(u["passwords"]) == 1
    assert r.acl_dryrun("app", "get", "app:1") == "OK"
    assert "flushall" in r.acl_dryrun("app", "flushall")
    assert any(line.startswith("user app on #") for line in r.acl_list())
    assert sorted(r.acl_users()) == ["app", "default"]
    assert r.acl_getuser("nobody") is None


def test_username_password_client_and_whoami(r, r_factory):
    r.acl_setuser("alice", enabled=True, passwords=["+pw"], keys=["a:*"], commands=["+@all"])
    alice = r_factory(username="alice", password="pw")
    assert alice.acl_whoami() == "alice"
    alice.set("a:1", "x")
    assert alice.get("a:1") == "x"
    with pytest.raises(redis.exceptions.NoPermissionError):
        alice.get("b:1")
    with pytest.raises(redis.exceptions.AuthenticationError):
        r_factory(username="alice", password="wrong").ping()


def test_acl_log_shows_denials(r, r_factory):
    r.acl_setuser("bob", enabled=True, nopass=True, keys=["b:*"], commands=["+get"])
    bob = r_factory(username="bob", password="x")
    with pytest.raises(redis.exceptions.NoPermissionError):
        bob.set("b:1", "v")
    with pytest.raises(redis.exceptions.NoPermissionError):
        bob.get("z")
    log = r.acl_log()
    assert [e["reason"] for e in log[:2]] == ["key", "command"]
    assert log[0]["object"] == "z" and log[1]["object"] == "set"
    assert log[0]["username"] == "bob"
    assert log[0]["context"] == "toplevel"
    assert isinstance(log[0]["age-seconds"], float)
    info = log[0]["client-info"]
    assert info["user"] == "bob" if isinstance(info, dict) else "user=bob" in info
    assert r.acl_log_reset()
    assert r.acl_log() == []


def test_deluser_disconnects(r, r_factory):
    r.acl_setuser("gone", enabled=True, passwords=["+p"], commands=["+@all"], keys=["*"])
    c = r_factory(username="gone", password="p", single_connection_client=True)
    assert c.ping()
    assert r.acl_deluser("gone") == 1
    with pytest.raises((redis.exceptions.ConnectionError, redis.exceptions.AuthenticationError)):
        c.ping()


def test_cat_genpass_dryrun(r):
    cats = r.acl_cat()
    assert cats[:3] == ["keyspace", "read", "write"]
    assert "hget" in r.acl_cat("hash")
    assert len(r.acl_genpass()) == 64
    assert len(r.acl_genpass(5)) == 2
    r.acl_setuser("d", enabled=True, nopass=True, keys=["k*"], commands=["+get"])
    assert r.acl_dryrun("d", "get", "k1") == "OK"
    assert r.acl_dryrun("d", "set", "k1", "v") == (
        "This user has no permissions to run the 'set' command"
    )


async def test_asyncio_client_with_username(ar, ar_factory):
    await ar.acl_setuser("aio", enabled=True, passwords=["+pw"], keys=["x*"], commands=["+@all"])
    c = ar_factory(username="aio", password="pw")
    assert await c.acl_whoami() == "aio"
    await c.set("x1", "v")
    with pytest.raises(redis.exceptions.NoPermissionError):
        await c.get("y1")
    for name in await ar.acl_users():
        if name != "default":
            await ar.acl_deluser(name)
