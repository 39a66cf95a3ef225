"""Celery: the periodic purge and reconcile jobs, and the delete-bytes safety net.

Configured from Django settings under the CELERY_ namespace. With REDIS_URL set, Redis is
the broker; with nothing set, kombu's filesystem transport under var/ is, so the embedded
default runs a real worker and beat without any server to install.
"""

import logging
import os
import threading
import time

from celery import Celery
from django.conf import settings
from django.db import transaction

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")

app = Celery("onetimeshare")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

logger = logging.getLogger(__name__)


class BrokerBreaker:
    """Stop sending tasks for a while after the broker failed, so that a dead broker costs
    one request one bounded wait per pause, not every request its connect timeout.

    Per process (each gunicorn worker finds out for itself). Once the pause is over, one
    send tries again while the others still skip; its success closes the breaker. The
    tasks sent from requests are safety nets behind work the request did itself, and the
    periodic jobs catch up whatever was not sent.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open_until: float | None = None  # None: closed, sends go through
        self.skipped = 0  # sends left out since the breaker opened

    def allows(self) -> bool:
        """Whether to try sending now; a send left out is counted."""
        with self._lock:
            if self._open_until is None:
                return True
            now = time.monotonic()
            if now < self._open_until:
                self.skipped += 1
                return False
            # This send tries the broker; the others skip until it has an answer.
            self._open_until = now + settings.BROKER_RETRY_AFTER
            return True

    def succeeded(self) -> None:
        with self._lock:
            was_open, skipped = self._open_until is not None, self.skipped
            self._open_until, self.skipped = None, 0
        if was_open:
            logger.info("The broker answers again; %d tasks were not sent meanwhile.", skipped)

    def failed(self, task_name: str, args: tuple, exc: Exception) -> None:
        with self._lock:
            was_closed = self._open_until is None
            self._open_until = time.monotonic() + settings.BROKER_RETRY_AFTER
        pause = settings.BROKER_RETRY_AFTER
        if was_closed:
            logger.warning(
                "Could not enqueue %s%r (%s); no tasks are sent for %d s, the periodic jobs "
                "catch up.",
                task_name,
                args,
                str(exc).rstrip("."),
                pause,
            )
        else:
            logger.info(
                "The broker still fails (%s); no tasks are sent for %d s more.",
                str(exc).rstrip("."),
                pause,
            )

    def reset(self) -> None:
        with self._lock:
            self._open_until, self.skipped = None, 0


breaker = BrokerBreaker()


def enqueue_on_commit(task_name: str, *args: object, countdown: int | None = None) -> None:
    """Send a task once the current transaction commits; never fail or block the caller.

    If the broker is down the request still succeeds: the failure is logged once and sends
    pause (BrokerBreaker), and the periodic jobs catch up. A connection is tried once, not
    retried with a back-off. Tasks are sent by name, so services need not import tasks.
    A countdown must stay far below the broker's visibility timeout (one hour).
    """

    def send() -> None:
        if not breaker.allows():
            logger.debug("Not enqueueing %s%r: the broker failed recently.", task_name, args)
            return
        try:
            with app.producer_or_acquire() as producer:
                # kombu would otherwise retry a refused connection after a 2 s sleep.
                producer.connection.ensure_connection(max_retries=0)
                app.send_task(
                    task_name, args=args, countdown=countdown, retry=False, producer=producer
                )
        except Exception as exc:  # any broker failure; the periodic jobs are the net
            breaker.failed(task_name, args, exc)
        else:
            breaker.succeeded()

    transaction.on_commit(send)
