"""enqueue_on_commit while the broker fails and once it is back, with a real Redis behind a
TCP proxy the test cuts and restores.

The project's app (core.celery.app) caches the broker of the run's settings, so an app of
the project's settings on this broker stands in for it (as in apps/shares/tests/
test_tasks.py), with a queue named after this process; nothing consumes it, the test reads
it. BROKER_RETRY_AFTER is one second here: the breaker's pause passes within the test.
"""

import base64
import json
import logging
import os
from collections.abc import Callable, Iterator

import pytest
import redis
from celery import Celery

import core.celery
from core.celery import breaker, enqueue_on_commit
from tests.support.processes import wait_until
from tests.support.production import require
from tests.support.tcp_proxy import TcpProxy

REDIS_ADDRESS = ("127.0.0.1", 6379)
REDIS_DB = 5  # the Celery tests' database; keys here are named after this process
QUEUE = f"onetimeshare-test-breaker-{os.getpid()}"
TASK = "apps.shares.tasks.purge_share"
DEADLINE = 20.0  # seconds; the pause is one


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis(*REDIS_ADDRESS, db=REDIS_DB, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        require(False, f"Redis is not reachable at {REDIS_ADDRESS}: {exc}")
    client.delete(QUEUE)
    yield client
    client.delete(QUEUE)
    client.close()


@pytest.fixture
def proxy(redis_client) -> Iterator[TcpProxy]:
    with TcpProxy(REDIS_ADDRESS) as proxy:
        yield proxy


@pytest.fixture
def app(proxy, settings, monkeypatch) -> Iterator[Celery]:
    settings.BROKER_RETRY_AFTER = 1
    app = Celery("onetimeshare-breaker-tests", set_as_current=False)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.conf.update(
        broker_url=f"redis://127.0.0.1:{proxy.port}/{REDIS_DB}",
        broker_transport_options={
            "visibility_timeout": 3600,
            "socket_connect_timeout": 1,
            "socket_timeout": 2,
        },
        task_default_queue=QUEUE,
    )
    monkeypatch.setattr(core.celery, "app", app)
    breaker.reset()
    yield app
    breaker.reset()
    app.close()


@pytest.fixture
def enqueue(db, django_capture_on_commit_callbacks) -> Callable[[int], None]:
    """enqueue_on_commit of a purge, and the commit that sends it."""

    def enqueue(share_id: int) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            enqueue_on_commit(TASK, share_id)

    return enqueue


def queued(client: redis.Redis) -> list[int]:
    """The share ids of the purge tasks waiting in this test's queue, oldest first."""
    ids = []
    # kombu pushes to the head of a list; the body is (args, kwargs, embed), base64-encoded.
    for raw in reversed(client.lrange(QUEUE, 0, -1)):
        args, _kwargs, _embed = json.loads(base64.b64decode(json.loads(raw)["body"]))
        ids.append(args[0])
    return ids


@pytest.mark.parametrize("cut", ["refuse", "hang"])
def test_after_a_failed_send_the_broker_is_left_alone_until_the_pause_is_over(
    app, proxy, redis_client, enqueue, caplog, cut
):
    enqueue(1)
    assert queued(redis_client) == [1]

    getattr(proxy, cut)()
    tried = proxy.accepted
    with caplog.at_level(logging.DEBUG, logger="core.celery"):
        enqueue(2)
        tried_once = proxy.accepted
        enqueue(3)
        enqueue(4)

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, caplog.text
    assert f"Could not enqueue {TASK}(2,)" in warnings[0].getMessage()
    assert warnings[0].exc_info is None
    assert breaker.skipped == 2
    # The sends of 3 and 4 did not try: no connection to the broker, refused or accepted.
    assert proxy.accepted == tried_once
    if cut == "hang":
        assert tried_once > tried


def test_once_the_broker_is_back_sends_resume_after_the_pause(
    app, proxy, redis_client, enqueue, caplog
):
    proxy.refuse()
    enqueue(1)
    enqueue(2)
    proxy.forward()

    with caplog.at_level(logging.INFO, logger="core.celery"):
        sent = iter(range(100, 1000))
        # Each try before the pause is over is left out; the first after it goes through.
        wait_until(
            "a send through the restored broker",
            lambda: enqueue(next(sent)) or queued(redis_client),
            DEADLINE,
        )

    assert len(queued(redis_client)) == 1
    assert breaker.skipped == 0
    back = [r.getMessage() for r in caplog.records if "answers again" in r.getMessage()]
    assert len(back) == 1, caplog.text
    enqueue(3)
    assert queued(redis_client)[-1] == 3
