"""Celery: the periodic purge and reconcile jobs, and the delete-bytes safety net.

Configured from Django settings under the CELERY_ namespace. With REDIS_URL set, Redis is
the broker; with nothing set, kombu's filesystem transport under var/ is, so the embedded
default runs a real worker and beat without any server to install.
"""

import logging
import os

from celery import Celery
from django.db import transaction

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")

app = Celery("onetimeshare")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

logger = logging.getLogger(__name__)


def enqueue_on_commit(task_name: str, *args: object, countdown: int | None = None) -> None:
    """Send a task once the current transaction commits; never fail or block the caller.

    If the broker is down the request still succeeds: the failure is logged and the
    periodic jobs catch up. Tasks are sent by name, so services need not import tasks.
    A countdown must stay far below the broker's visibility timeout (one hour).
    """

    def send() -> None:
        try:
            app.send_task(task_name, args=args, countdown=countdown, retry=False)
        except Exception as exc:  # any broker failure; the periodic jobs are the net
            logger.warning("Could not enqueue %s%r: %s", task_name, args, exc)

    transaction.on_commit(send)
