"""Real applications on the server, unchanged (issue 4's user stories).

- Celery 5 with the server as broker and result backend: a prefork worker
  subprocess runs 100 tasks, a chain, a group and a chord; stopping and
  restarting it loses no queued task.
- An RQ worker in burst mode runs jobs, records their results and files a
  failing job in the failed registry.
- redis-py's Lock (Lua scripts) gives mutual exclusion to 8 threads.
- An event bus between two "services" over pub/sub: a subscriber thread on
  `pubsub.listen()`, pattern subscriptions, and an asyncio subscriber.

Tests are skipped only when a Python dependency is missing; a server that
lacks a feature makes them fail. Every subprocess runs in its own process
group and is killed in a `finally`, whatever the test's outcome.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import pytest
import redis
import redis.asyncio
from redis.exceptions import LockNotOwnedError

import harness

TESTS_DIR = Path(__file__).resolve().parent


def _require(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (tests/python/requirements.txt)")


def _url(ep: harness.Endpoint) -> str:
    return f"redis://{ep.host}:{ep.port}/0"


# --------------------------------------------------------------------------
# Worker subprocesses
# --------------------------------------------------------------------------


class Worker:
    """A worker command line in its own process group, logging to a file."""

    def __init__(self, argv: list[str], env: dict[str, str]):
        self.argv = argv
        self.env = {**os.environ, **env}
        self.env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(TESTS_DIR), os.environ.get("PYTHONPATH", "")) if p
        )
        self.log = tempfile.NamedTemporaryFile(prefix="ferrokv-worker-", suffix=".log", delete=False)
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Worker":
        self.proc = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=TESTS_DIR,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: children die with it
        )
        return self

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"worker still running after {timeout} s; log:\n{self.log_tail()}")

    def kill(self) -> None:
        """Kills the whole group; safe to call at any time, any number of times."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def log_tail(self, n: int = 20000) -> str:
        self.log.flush()
        return Path(self.log.name).read_bytes()[-n:].decode("utf-8", "replace")

    def close(self) -> None:
        self.kill()
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)


@pytest.fixture
def workers():
    """Makes Worker objects; every one is killed after the test."""
    made: list[Worker] = []

    def make(argv: list[str], env: dict[str, str]) -> Worker:
        w = Worker(argv, env)
        made.append(w)
        return w

    try:
        yield make
    finally:
        for w in made:
            w.close()


# --------------------------------------------------------------------------
# Celery
# --------------------------------------------------------------------------

CELERY_QUEUE = "ferrokv-apps"


@pytest.fixture
def celery_app(ferrokv):
    _require("celery")
    _require("kombu.transport.redis")
    from apps.celery_app import create_app

    app = create_app(_url(ferrokv), CELERY_QUEUE)
    try:
        yield app
    finally:
        app.close()


@pytest.fixture
def celery_worker(ferrokv, workers):
    """Makes (not starts) a prefork worker with 2 processes on CELERY_QUEUE."""
    count = 0

    def make() -> Worker:
        nonlocal count
        count += 1
        argv = [
            sys.executable, "-m", "celery", "-A", "apps.celery_app", "worker",
            "--pool=prefork", "--concurrency=2",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
            "-Q", CELERY_QUEUE, "-n", f"w{count}@ferrokv-test", "--loglevel=INFO",
        ]
        env = {"FERROKV_CELERY_URL": _url(ferrokv), "FERROKV_CELERY_QUEUE": CELERY_QUEUE}
        return workers(argv, env)

    return make


def _get_all(results, timeout: float, *workers: Worker) -> list:
    """Every result's value; on a timeout, the workers' logs explain why."""
    deadline = time.monotonic() + timeout
    values = []
    for res in results:
        left = max(0.1, deadline - time.monotonic())
        try:
            values.append(res.get(timeout=left))
        except Exception as e:  # celery's TimeoutError and task errors alike
            logs = "\n".join(f"--- worker {i + 1} log:\n{w.log_tail()}" for i, w in enumerate(workers))
            pytest.fail(f"result {res.id} failed: {e!r}\n{logs}")
    return values


def test_celery_tasks_chain_group_chord(celery_app, celery_worker):
    from celery import chain, chord, group

    add = celery_app.tasks["apps.add"]
    mul = celery_app.tasks["apps.mul"]
    tsum = celery_app.tasks["apps.tsum"]
    worker = celery_worker().start()

    results = [add.delay(i, i) for i in range(100)]
    assert _get_all(results, 30, worker) == [2 * i for i in range(100)]

    # ((2 + 2) * 10) + 1: each step's result is the next one's first argument.
    flow = chain(add.s(2, 2), mul.s(10), add.s(1)).apply_async()
    assert _get_all([flow], 15, worker) == [41]
    assert flow.parent.get(timeout=5) == 40

    squares = group(mul.s(i, i) for i in range(10)).apply_async()
    assert _get_all([squares], 15, worker) == [[i * i for i in range(10)]]

    # The chord's header results are joined in the backend, then summed.
    total = chord(add.s(i, i) for i in range(10))(tsum.s())
    assert _get_all([total], 15, worker) == [90]


def _stop_celery(worker: Worker) -> None:
    """Warm shutdown (SIGTERM): running tasks finish, reserved ones go back.

    Celery's prefork pool rarely hangs in its warm shutdown (seen against
    redis-server too, about one run in ten); then the worker is killed and
    the visibility timeout (apps/celery_app.py) brings its reserved messages
    back, so the test still checks that nothing is lost.
    """
    assert worker.proc is not None
    worker.proc.send_signal(signal.SIGTERM)
    try:
        code = worker.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        worker.kill()
        warnings.warn("celery's warm shutdown hung: worker killed")
        return
    assert code == 0, worker.log_tail()


def test_celery_worker_restart_loses_no_task(celery_app, celery_worker, ferrokv):
    add = celery_app.tasks["apps.add"]
    slow_add = celery_app.tasks["apps.slow_add"]
    first = celery_worker().start()

    # Enough slow tasks that the shutdown comes while some run, some are
    # prefetched by the worker, and the rest still wait in the queue.
    before = [slow_add.delay(i, 1000, 0.1) for i in range(30)]
    _get_all(before[:1], 20, first)
    _stop_celery(first)
    done = sum(res.ready() for res in before)
    assert done < len(before), "the worker finished everything: nothing was left queued"

    # Queued while no worker runs: they wait in the server.
    during = [add.delay(i, 2000) for i in range(30)]
    client = redis.Redis(host=ferrokv.host, port=ferrokv.port, socket_timeout=10)
    try:
        assert client.llen(CELERY_QUEUE) >= len(during)
    finally:
        client.close()

    second = celery_worker().start()
    assert _get_all(before, 40, first, second) == [i + 1000 for i in range(30)]
    assert _get_all(during, 20, first, second) == [i + 2000 for i in range(30)]
    _stop_celery(second)


# --------------------------------------------------------------------------
# RQ
# --------------------------------------------------------------------------


def test_rq_burst_worker_results_and_failures(ferrokv, workers):
    _require("rq")
    from rq import Queue
    from rq.job import JobStatus
    from rq.registry import FailedJobRegistry, FinishedJobRegistry

    from apps import rq_jobs

    # RQ stores pickled bytes: its connection must not decode replies.
    conn = redis.Redis(host=ferrokv.host, port=ferrokv.port, socket_timeout=10)
    try:
        queue = Queue("ferrokv-rq", connection=conn)
        sums = [queue.enqueue(rq_jobs.add, i, i) for i in range(20)]
        counted = queue.enqueue(rq_jobs.word_count, "to be or not to be")
        paid = queue.enqueue(rq_jobs.charge, 50)
        declined = queue.enqueue(rq_jobs.charge, 500)
        # Runs only after its dependency finished.
        follow_up = queue.enqueue(rq_jobs.add, 1, 2, depends_on=paid)
        assert follow_up.get_status() == JobStatus.DEFERRED
        assert queue.count == 23  # the deferred job waits outside the queue

        argv = [sys.executable, "-m", "rq.cli", "worker", "--burst", "--url", _url(ferrokv),
                "ferrokv-rq"]
        worker = workers(argv, {}).start()
        assert worker.wait(timeout=40) == 0, worker.log_tail()

        assert queue.count == 0
        for i, job in enumerate(sums):
            assert job.get_status(refresh=True) == JobStatus.FINISHED, worker.log_tail()
            assert job.return_value(refresh=True) == 2 * i
        assert counted.return_value(refresh=True) == {"to": 2, "be": 2, "or": 1, "not": 1}
        assert paid.return_value(refresh=True) == "charged 50"
        assert follow_up.get_status(refresh=True) == JobStatus.FINISHED
        assert follow_up.return_value(refresh=True) == 3

        assert declined.get_status(refresh=True) == JobStatus.FAILED
        failed = FailedJobRegistry(queue=queue)
        assert failed.get_job_ids() == [declined.id]
        assert "PaymentDeclined: amount 500 over the limit" in declined.latest_result().exc_string
        finished = set(FinishedJobRegistry(queue=queue).get_job_ids())
        assert {j.id for j in [*sums, counted, paid, follow_up]} <= finished
        assert declined.id not in finished
    finally:
        conn.close()


# --------------------------------------------------------------------------
# redis-py's Lock (Lua: acquire with SET NX PX, extend/release by script)
# --------------------------------------------------------------------------


def test_lock_gives_mutual_exclusion_to_8_threads(r_factory):
    r = r_factory(max_connections=32)
    r.set("counter", 0)
    per_thread, errors = 25, []

    def work():
        try:
            for _ in range(per_thread):
                with r.lock("counter-lock", timeout=5, blocking_timeout=10, sleep=0.005):
                    # Read-modify-write: any overlap loses an increment.
                    value = int(r.get("counter"))
                    r.set("counter", value + 1)
        except Exception as e:  # reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=work, daemon=True) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a thread is stuck on the lock"
    assert errors == []
    assert int(r.get("counter")) == 8 * per_thread
    assert r.exists("counter-lock") == 0


def test_lock_extend_release_and_ownership(r_factory):
    r, other = r_factory(), r_factory()
    lock = r.lock("report-lock", timeout=2)
    assert lock.acquire(blocking=False)
    assert lock.owned() and lock.locked()

    # Someone else cannot take it, nor release it.
    rival = other.lock("report-lock", timeout=2)
    assert rival.acquire(blocking_timeout=0.2) is False
    assert not rival.owned()

    assert lock.extend(10) is True  # adds to the remaining ttl
    assert 10_000 < r.pttl("report-lock") <= 12_000
    assert lock.extend(3, replace_ttl=True) is True
    assert 2_000 < r.pttl("report-lock") <= 3_000
    assert lock.reacquire() is True  # back to the lock's own timeout
    assert 1_000 < r.pttl("report-lock") <= 2_000

    lock.release()
    assert not lock.locked()
    assert rival.acquire(blocking=False)
    rival.release()


def test_lock_expires_and_stale_owner_cannot_release(r_factory):
    r, other = r_factory(), r_factory()
    lock = r.lock("job-lock", timeout=0.2)
    assert lock.acquire(blocking=False)
    time.sleep(0.35)
    assert not lock.locked(), "the lock outlived its timeout"

    # A new owner takes the expired lock; the old one's token no longer matches.
    taker = other.lock("job-lock", timeout=5)
    assert taker.acquire(blocking=False)
    with pytest.raises(LockNotOwnedError):
        lock.extend(1)
    with pytest.raises(LockNotOwnedError):
        lock.release()
    assert taker.owned()
    taker.release()
    assert r.exists("job-lock") == 0


# --------------------------------------------------------------------------
# Pub/sub: an event bus between an "orders" service and a "billing" service
# --------------------------------------------------------------------------


def _events(n: int) -> list[dict]:
    return [{"seq": i, "type": "order.created", "total": i * 3 + 0.5, "items": ["x"] * (i % 4)}
            for i in range(n)]


class Subscriber(threading.Thread):
    """A service that consumes JSON events with `pubsub.listen()`.

    Ready once every subscription is confirmed; stops at {"type": "stop"}.
    """

    def __init__(self, client: redis.Redis, channels=(), patterns=()):
        super().__init__(daemon=True)
        self.pubsub = client.pubsub()
        self.channels, self.patterns = list(channels), list(patterns)
        self.ready = threading.Event()
        self.received: list[tuple[str, str | None, dict]] = []
        self.error: BaseException | None = None

    def run(self):
        try:
            if self.channels:
                self.pubsub.subscribe(*self.channels)
            if self.patterns:
                self.pubsub.psubscribe(*self.patterns)
            confirmations = len(self.channels) + len(self.patterns)
            for message in self.pubsub.listen():
                if message["type"] in ("subscribe", "psubscribe"):
                    confirmations -= 1
                    if confirmations == 0:
                        self.ready.set()
                    continue
                event = json.loads(message["data"])
                if event.get("type") == "stop":
                    return
                self.received.append((message["channel"], message.get("pattern"), event))
        except BaseException as e:  # reported by the test
            self.error = e
        finally:
            self.ready.set()
            self.pubsub.close()

    def finish(self, timeout: float = 15) -> None:
        self.join(timeout)
        assert not self.is_alive(), "the subscriber never got its stop event"
        if self.error is not None:
            raise self.error


def test_event_bus_subscriber_thread_gets_events_in_order(r_factory):
    billing = Subscriber(r_factory(), channels=["orders"])
    billing.start()
    assert billing.ready.wait(10) and billing.error is None, billing.error

    orders = r_factory()
    events = _events(300)
    for event in events:
        assert orders.publish("orders", json.dumps(event)) == 1
    orders.publish("orders", json.dumps({"type": "stop"}))
    billing.finish()

    assert [e for _, _, e in billing.received] == events
    assert {c for c, _, _ in billing.received} == {"orders"}


def test_event_bus_pattern_subscription(r_factory):
    billing = Subscriber(r_factory(), patterns=["orders.*"])
    audit = Subscriber(r_factory(), channels=["orders.paid"], patterns=["orders.*", "*.paid"])
    for s in (billing, audit):
        s.start()
        assert s.ready.wait(10) and s.error is None, s.error

    orders = r_factory()
    sent = [("orders.created", {"id": 1}), ("orders.paid", {"id": 1}), ("orders", {"id": 2}),
            ("payments.paid", {"id": 3}), ("orders.shipped.eu", {"id": 1}), ("orders.", {"id": 4})]
    # PUBLISH answers how many deliveries it made (one per matching subscription).
    expected_counts = [2, 4, 0, 1, 2, 2]
    for (channel, event), count in zip(sent, expected_counts):
        assert orders.publish(channel, json.dumps(event)) == count, channel
    # Both listeners hear this one through "orders.*".
    orders.publish("orders.stop", json.dumps({"type": "stop"}))
    billing.finish()
    audit.finish()

    assert billing.received == [
        ("orders.created", "orders.*", {"id": 1}),
        ("orders.paid", "orders.*", {"id": 1}),
        ("orders.shipped.eu", "orders.*", {"id": 1}),
        ("orders.", "orders.*", {"id": 4}),
    ]
    # A channel and two patterns matching one message deliver it three times
    # (their relative order is not part of the contract).
    got = audit.received
    assert got[0] == ("orders.created", "orders.*", {"id": 1})
    assert sorted(got[1:4], key=lambda m: m[1] or "") == [
        ("orders.paid", None, {"id": 1}),
        ("orders.paid", "*.paid", {"id": 1}),
        ("orders.paid", "orders.*", {"id": 1}),
    ]
    assert got[4:] == [
        ("payments.paid", "*.paid", {"id": 3}),
        ("orders.shipped.eu", "orders.*", {"id": 1}),
        ("orders.", "orders.*", {"id": 4}),
    ]


async def test_event_bus_asyncio_subscriber(ar_factory):
    sub_client, pub_client = ar_factory(), ar_factory()
    pubsub = sub_client.pubsub()
    await pubsub.subscribe("orders")
    await pubsub.psubscribe("orders.*")
    received: list[tuple[str, str | None, dict]] = []
    ready = asyncio.Event()

    async def consume():
        confirmations = 2
        async for message in pubsub.listen():
            if message["type"] in ("subscribe", "psubscribe"):
                confirmations -= 1
                if confirmations == 0:
                    ready.set()
                continue
            event = json.loads(message["data"])
            if event.get("type") == "stop":
                return
            received.append((message["channel"], message.get("pattern"), event))

    consumer = asyncio.create_task(consume())
    try:
        # Fails at once if the consumer died (e.g. an error reply to SUBSCRIBE).
        waiter = asyncio.create_task(ready.wait())
        await asyncio.wait({waiter, consumer}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if consumer.done():
            consumer.result()
        assert ready.is_set(), "the subscriptions were not confirmed in 10 s"
        events = _events(200)
        for event in events:
            assert await pub_client.publish("orders", json.dumps(event)) == 1
        assert await pub_client.publish("orders.refunded", json.dumps({"id": 9})) == 1
        assert await pub_client.publish("billing.refunded", json.dumps({"id": 10})) == 0
        await pub_client.publish("orders", json.dumps({"type": "stop"}))
        await asyncio.wait_for(consumer, 15)
    finally:
        consumer.cancel()
        await pubsub.aclose()

    assert received == [("orders", None, e) for e in events] + [
        ("orders.refunded", "orders.*", {"id": 9})
    ]
