"""A Celery 5 app using the server as broker AND result backend.

The worker subprocess reads the server's URL from FERROKV_CELERY_URL and the
queue from FERROKV_CELERY_QUEUE:

    FERROKV_CELERY_URL=redis://127.0.0.1:6379/0 PYTHONPATH=tests/python \
        celery -A apps.celery_app worker -Q apps --pool=prefork --concurrency=2

The tests build their own client-side app with `create_app(url, queue)`, so
each test talks to its own server without touching process-wide state.
"""

from __future__ import annotations

import os
import time

from celery import Celery

URL_ENV = "FERROKV_CELERY_URL"
QUEUE_ENV = "FERROKV_CELERY_QUEUE"


def add(x: int, y: int) -> int:
    return x + y


def mul(x: int, y: int) -> int:
    return x * y


def tsum(numbers: list[int]) -> int:
    return sum(numbers)


def slow_add(x: int, y: int, delay: float = 0.1) -> int:
    # Long enough that a shutdown catches some of these queued or running.
    time.sleep(delay)
    return x + y


def create_app(url: str, queue: str) -> Celery:
    app = Celery("ferrokv_apps", broker=url, backend=url, set_as_current=False)
    app.conf.update(
        task_default_queue=queue,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        # Reconnect quickly if the server goes away rather than after minutes.
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=10,
        result_expires=600,
        worker_hijack_root_logger=False,
        worker_prefetch_multiplier=4,
        # A worker that dies without its warm shutdown (SIGKILL) leaves its
        # reserved messages unacked: they go back to the queue after this
        # many seconds instead of the default hour. The tasks here take far
        # less, so a live worker never sees a redelivery.
        broker_transport_options={"visibility_timeout": 5, "unacked_restore_interval": 1},
    )

    # shared=False: each app gets its own task objects (the default would
    # register them with every app created later in the same process).
    for fun in (add, mul, tsum, slow_add):
        app.task(name=f"apps.{fun.__name__}", shared=False)(fun)
    return app


app = create_app(
    os.environ.get(URL_ENV, "redis://127.0.0.1:6379/0"),
    os.environ.get(QUEUE_ENV, "apps"),
)
