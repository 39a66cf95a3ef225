"""The Celery tasks, run by a real worker consuming from the real Redis.

The worker runs in a thread of the test process (solo pool), so it uses the same test
database and the per-test MEDIA_ROOT; the tests are transactional so that it sees the rows
they commit. Messages go through Redis (a dedicated database number, and a queue named after
this process, so that test runs side by side never take each other's messages). Nothing is
eager and nothing is waited for blindly: each test polls, with a deadline, for the effect the
task has on files and rows.

The worker's app is one made for this module: the project's Celery settings with that broker
and queue. The project's own app (core.celery.app) keeps the broker of the run's settings:
it caches its connection pools on first use, and Celery offers no public way to point them
elsewhere. So while this module runs, the test app is Celery's current app (the tasks'
.delay() sends through it) and stands in for core.celery.app (enqueue_on_commit, the
services' way to send, looks the app up there each time it sends).
"""

import os
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from celery import Celery, current_app
from celery.contrib.testing.app import setup_default_app
from celery.contrib.testing.worker import TestWorkController, start_worker
from django.db import transaction

import core.celery
from apps.shares import tasks
from apps.shares.models import JobRun, Share, ShareEvent
from apps.shares.services import claims
from core.celery import enqueue_on_commit
from tests.support.processes import wait_until
from tests.support.shares import end_share

BROKER_URL = "redis://127.0.0.1:6379/5"
QUEUE = f"onetimeshare-test-tasks-{os.getpid()}"
DEADLINE = 20.0  # seconds; a task takes milliseconds, this only bounds a broken test


def _delete_queue_keys(client: redis.Redis) -> None:
    # Only this run's keys: another run may be using the same Redis database.
    keys = list(client.scan_iter(match=f"*{QUEUE}*"))
    if keys:
        client.delete(*keys)


def app_on_test_broker() -> Celery:
    """The project's Celery settings, with Redis as the broker and this process's queue."""
    app = Celery("onetimeshare-tests", set_as_current=False)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.conf.update(
        broker_url=BROKER_URL,
        # As core/settings.py configures Redis; the filesystem transport's options do not apply.
        broker_transport_options={
            "visibility_timeout": 3600,
            "socket_connect_timeout": 1,
            "socket_timeout": 2,
        },
        task_default_queue=QUEUE,
        worker_enable_remote_control=False,
    )
    return app


@pytest.fixture(scope="module")
def celery_worker(django_db_setup) -> Iterator[TestWorkController]:
    """A worker thread on this process's queue in Redis, for the whole module."""
    client = redis.Redis.from_url(BROKER_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        pytest.fail(f"These tests need the Redis server at {BROKER_URL}: {exc}")
    app = app_on_test_broker()
    _delete_queue_keys(client)
    try:
        # setup_default_app gives the current and default app back afterwards, which
        # start_worker makes this app.
        with setup_default_app(app), pytest.MonkeyPatch.context() as patch:
            patch.setattr(core.celery, "app", app)
            with start_worker(
                app, pool="solo", perform_ping_check=False, shutdown_timeout=15, queues=[QUEUE]
            ) as worker:
                yield worker
    finally:
        _delete_queue_keys(client)
        client.close()


pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("celery_worker"),
]


def is_purged(share: Share, media_root: Path) -> bool:
    share.refresh_from_db()
    return share.purged_at is not None and not (media_root / share.storage_name).exists()


def test_purge_shares_task_deletes_the_bytes_of_every_ended_share_and_spares_the_active_one(
    make_share, media_root
):
    active = make_share(b"still wanted", name="active.txt").share
    consumed = make_share(b"consumed!", name="consumed.txt").share
    expired = make_share(b"expired bytes", name="expired.txt").share
    revoked = make_share(b"revoked", name="revoked.txt").share
    end_share(consumed, "consumed")
    end_share(expired, "expired")
    end_share(revoked, "revoked")

    tasks.purge_shares.delay()

    # The job records its summary last: once it is there, the run is complete.
    wait_until(
        "purge_shares ran", lambda: JobRun.objects.filter(name="purge_shares").exists(), DEADLINE
    )
    for share in (consumed, expired, revoked):
        assert is_purged(share, media_root), share.name
    assert JobRun.objects.get(name="purge_shares").summary == {
        "shares": 3,
        "bytes": len(b"consumed!") + len(b"expired bytes") + len(b"revoked"),
        "rows_deleted": 0,
    }
    active.refresh_from_db()
    assert active.purged_at is None
    assert (media_root / active.storage_name).read_bytes() == b"still wanted"
    assert active.status == Share.Status.ACTIVE


def test_purge_share_task_purges_only_the_share_it_names(make_share, media_root):
    named = make_share(b"delete me").share
    other = make_share(b"not asked about").share
    end_share(named, "consumed")
    end_share(other, "consumed")

    tasks.purge_share.delay(named.pk)

    wait_until("the named share purged", lambda: is_purged(named, media_root), DEADLINE)
    assert list(named.events.values_list("kind", flat=True)) == [
        ShareEvent.Kind.CREATED,
        ShareEvent.Kind.PURGED,
    ]
    other.refresh_from_db()
    assert other.purged_at is None
    assert (media_root / other.storage_name).read_bytes() == b"not asked about"


def test_reconcile_storage_task_deletes_an_orphan_file_older_than_the_grace_period(
    make_share, media_root, settings
):
    settings.RECONCILE_GRACE_SECONDS = 60
    kept = make_share(b"has a row").share
    orphan = media_root / "shares" / "0123456789abcdef0123456789abcdef"
    orphan.write_bytes(b"no row")
    two_hours_ago = time.time() - 2 * 3600
    os.utime(orphan, (two_hours_ago, two_hours_ago))

    current_app.send_task("apps.shares.tasks.reconcile_storage")

    wait_until(
        "reconcile ran", lambda: JobRun.objects.filter(name="reconcile_storage").exists(), DEADLINE
    )
    assert not orphan.exists()
    assert JobRun.objects.get(name="reconcile_storage").summary == {
        "orphan_files": 1,
        "orphan_bytes": len(b"no row"),
        "missing_files": 0,
        "stale_spools": 0,
        "stale_spool_bytes": 0,
    }
    assert (media_root / kept.storage_name).read_bytes() == b"has a row"


def test_last_claim_has_the_worker_purge_the_bytes_after_the_countdown_without_a_response(
    make_share, media_root, settings
):
    # The response deletes the bytes when it closes; here there is none (nginx sends the
    # file, or the process died), and the task the claim enqueued is what deletes them,
    # once the download session's window has closed too.
    settings.PURGE_AFTER_LAST_DOWNLOAD = 1
    settings.DOWNLOAD_SESSION_TTL = 1
    created = make_share(b"one time only", max_downloads=1)

    claims.share_claim(share_token=created.share_token, open_bytes=False)

    wait_until("the claimed share purged", lambda: is_purged(created.share, media_root), DEADLINE)
    assert created.share.status == Share.Status.CONSUMED
    events = dict(created.share.events.values_list("kind", "at"))
    waited = events[ShareEvent.Kind.PURGED] - events[ShareEvent.Kind.DOWNLOAD_STARTED]
    assert waited >= timedelta(seconds=1)


def test_enqueue_on_commit_sends_nothing_when_the_transaction_rolls_back(make_share, media_root):
    rolled_back = make_share(b"rolled back").share
    marker = make_share(b"marker").share
    end_share(rolled_back, "consumed")
    end_share(marker, "consumed")

    with transaction.atomic():
        enqueue_on_commit("apps.shares.tasks.purge_share", rolled_back.pk)
        transaction.set_rollback(True)
    enqueue_on_commit("apps.shares.tasks.purge_share", marker.pk)

    # One worker takes the queue in order: had the first message been sent, it would have
    # been handled before the marker's.
    wait_until("the marker share purged", lambda: is_purged(marker, media_root), DEADLINE)
    rolled_back.refresh_from_db()
    assert rolled_back.purged_at is None
    assert (media_root / rolled_back.storage_name).read_bytes() == b"rolled back"


def test_enqueue_on_commit_sends_only_once_the_transaction_commits(make_share, media_root):
    on_commit = make_share(b"sent on commit").share
    marker = make_share(b"marker").share
    end_share(on_commit, "consumed")
    end_share(marker, "consumed")

    with transaction.atomic():
        enqueue_on_commit("apps.shares.tasks.purge_share", on_commit.pk)
        current_app.send_task("apps.shares.tasks.purge_share", args=[marker.pk])
        # The marker was sent at once, behind anything already sent. Its bytes go before
        # its row is updated, so this is observable while the transaction is still open
        # (on SQLite the worker then waits for our write lock to update the row).
        wait_until(
            "the marker's bytes deleted",
            lambda: not (media_root / marker.storage_name).exists(),
            DEADLINE,
        )
        assert (media_root / on_commit.storage_name).read_bytes() == b"sent on commit"

    wait_until(
        "the share purged after the commit", lambda: is_purged(on_commit, media_root), DEADLINE
    )
    assert is_purged(marker, media_root)
