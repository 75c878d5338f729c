"""Fixtures: a ferrokv per test module, redis-py clients for RESP2 and RESP3,
a password-protected ferrokv, and a reference redis-server.

Environment overrides:
  FERROKV_TEST_TARGET=host:port  use that running server instead of starting
                                 ferrokv (password fixtures are skipped)
  FERROKV_BIN=redis-server       start this binary instead of
                                 target/release/ferrokv (any program with
                                 redis-server's command line)
  FERROKV_REFERENCE_BIN=...      the reference server (default redis-server)
"""

from __future__ import annotations

import sys

import pytest
import redis
import redis.asyncio

import harness

PASSWORD = "s3cret-pass"


class ManagedServer:
    """A server owned by one test module; restarted if a test crashed it."""

    def __init__(self, binary: str, extra: list[str], password: str | None = None):
        self.process = harness.ServerProcess(binary, extra).start()
        self.password = password

    @property
    def endpoint(self) -> harness.Endpoint:
        p = self.process
        return harness.Endpoint(p.host, p.port, p, self.password)

    def check_alive(self) -> str | None:
        """None if running; else the log tail, after starting a fresh one."""
        if self.process.alive():
            return None
        log = self.process.log_tail()
        self.process.stop()
        self.process.start()
        return log

    def stop(self) -> None:
        self.process.stop()


def _owned(binary: str, extra: list[str], password: str | None = None):
    server = ManagedServer(binary, extra, password)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def ferrokv_server():
    """The server under test, shared by one module (None when external)."""
    if harness.external_target():
        yield None
        return
    yield from _owned(harness.ferrokv_binary(), [])


@pytest.fixture(scope="module")
def ferrokv_auth_server():
    if harness.external_target():
        pytest.skip("FERROKV_TEST_TARGET is set: cannot start a server with a password")
    yield from _owned(harness.ferrokv_binary(), ["--requirepass", PASSWORD], PASSWORD)


@pytest.fixture(scope="module")
def reference_server():
    """A real redis-server for differential comparisons."""
    yield from _owned(harness.reference_binary(), [])


def _endpoint(server: ManagedServer | None) -> harness.Endpoint:
    if server is None:
        host, port = harness.external_target()
        return harness.Endpoint(host, port)
    return server.endpoint


def _flushall(ep: harness.Endpoint) -> None:
    conn = harness.RawConnection(ep.host, ep.port)
    try:
        commands = [("AUTH", ep.password)] if ep.password else []
        for command in [*commands, ("FLUSHALL",)]:
            reply = conn.call(*command)
            if reply.raw != b"+OK\r\n":
                pytest.fail(f"{command[0]} before the test failed: {reply.raw!r}", pytrace=False)
    finally:
        conn.close()


def _guard(server: ManagedServer | None):
    """Flushes before a test; after it, fails the test if the server died."""
    if server is not None:
        server.check_alive()
    ep = _endpoint(server)
    _flushall(ep)
    yield ep
    if server is not None:
        log = server.check_alive()
        if log is not None:
            pytest.fail(f"the server died during this test; its log ends with:\n{log}")


@pytest.fixture
def ferrokv(ferrokv_server):
    """Endpoint of a flushed ferrokv; the test fails if it crashes."""
    yield from _guard(ferrokv_server)


@pytest.fixture
def ferrokv_auth(ferrokv_auth_server):
    """Endpoint of a flushed ferrokv started with --requirepass PASSWORD."""
    yield from _guard(ferrokv_auth_server)


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def protocol(request) -> int:
    return request.param


@pytest.fixture
def r_factory(ferrokv, protocol):
    """Makes more sync clients on the flushed server (db=, pools, ...)."""
    made: list[redis.Redis] = []

    def make(**kwargs) -> redis.Redis:
        kwargs.setdefault("decode_responses", True)
        kwargs.setdefault("socket_timeout", 10)
        kwargs.setdefault("protocol", protocol)
        if "connection_pool" not in kwargs:
            kwargs.setdefault("host", ferrokv.host)
            kwargs.setdefault("port", ferrokv.port)
        client = redis.Redis(**kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def r(r_factory) -> redis.Redis:
    """A redis-py client (decode_responses=True) speaking the `protocol`."""
    return r_factory()


@pytest.fixture
async def ar_factory(ferrokv, protocol):
    """Makes redis.asyncio clients on the flushed server; closes them after."""
    made: list[redis.asyncio.Redis] = []

    def make(**kwargs) -> redis.asyncio.Redis:
        kwargs.setdefault("decode_responses", True)
        kwargs.setdefault("socket_timeout", 10)
        kwargs.setdefault("protocol", protocol)
        if "connection_pool" not in kwargs:
            kwargs.setdefault("host", ferrokv.host)
            kwargs.setdefault("port", ferrokv.port)
        client = redis.asyncio.Redis(**kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()


@pytest.fixture
def ar(ar_factory) -> redis.asyncio.Redis:
    """A redis.asyncio client (decode_responses=True) speaking the `protocol`."""
    return ar_factory()


def pytest_sessionfinish(session, exitstatus):
    # A run that collected nothing is a broken harness, never a pass.
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        print("\nno tests ran: treated as a failure", file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
