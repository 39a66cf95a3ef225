"""The periodic jobs: purge the bytes of every ended share, reconcile storage and database.

Each is safe to run at any time and from several places at once (the Celery beat task, the
management command, an operator), and records when it last finished for readiness.
"""

import itertools
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from .. import storage
from ..clients import Actor
from ..models import JobRun, Share, ShareEvent
from .events import share_event_record
from .lifecycle import share_purge

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PurgeResult:
    shares: int
    bytes: int
    rows_deleted: int


def shares_purge(*, dry_run: bool = False) -> PurgeResult:
    """Delete the bytes of every consumed, expired or revoked share still in storage.

    Rows stay, marked purged, for the audit trail; rows purged longer than
    SHARE_RETENTION_DAYS ago are deleted with their events. Each share is purged by a
    conditional update, so concurrent runs never purge one twice.
    """
    shares = total_bytes = 0
    # A share used up moments ago may still be on its way out: with nginx offload, nginx
    # opens the file after the app has answered. Its own purge task, sent with the claim,
    # deletes it PURGE_AFTER_LAST_DOWNLOAD seconds later; this job leaves it until then.
    just_consumed = timezone.now() - timedelta(seconds=settings.PURGE_AFTER_LAST_DOWNLOAD)
    purgeable = Share.objects.purgeable().exclude(consumed_at__gt=just_consumed)
    for share in purgeable.only("pk", "size").iterator():
        if dry_run or share_purge(share_id=share.pk):
            shares += 1
            total_bytes += share.size
    cutoff = timezone.now() - timedelta(days=settings.SHARE_RETENTION_DAYS)
    old_rows = Share.objects.filter(purged_at__lt=cutoff)
    if dry_run:
        rows_deleted = old_rows.count()
    else:
        rows_deleted = old_rows.delete()[1].get("shares.Share", 0)
    result = PurgeResult(shares=shares, bytes=total_bytes, rows_deleted=rows_deleted)
    if not dry_run:
        _job_finished("purge_shares", result)
    return result


@dataclass(frozen=True)
class ReconcileResult:
    orphan_files: int
    orphan_bytes: int
    missing_files: int


def storage_reconcile(*, grace: int | None = None, dry_run: bool = False) -> ReconcileResult:
    """Heal storage and database in both directions after crashes.

    - A file with no row, older than `grace` seconds, is deleted: an upload whose row was
      never committed. The grace period spares uploads between their write and commit.
    - A row whose file is missing is marked purged, so it is never offered again.
    """
    grace = settings.RECONCILE_GRACE_SECONDS if grace is None else grace
    cutoff = timezone.now() - timedelta(seconds=grace)
    orphan_files = orphan_bytes = 0
    for name in _names_without_rows(storage.stored_names()):
        try:
            if default_storage.get_modified_time(name) > cutoff:
                continue
            size = default_storage.size(name)
        except FileNotFoundError:
            continue  # deleted meanwhile
        if dry_run or storage.delete_bytes(name):
            orphan_files += 1
            orphan_bytes += size
            logger.info(
                "Reconcile: %s orphan file %s", "would delete" if dry_run else "deleted", name
            )

    missing = 0
    for share in Share.objects.stored().only("pk", "storage_name").iterator():
        if default_storage.exists(share.storage_name):
            continue
        missing += 1
        if dry_run:
            logger.info("Reconcile: share %s has no file; would mark it purged.", share.pk)
            continue
        with transaction.atomic():
            if Share.objects.filter(pk=share.pk, purged_at__isnull=True).update(
                purged_at=timezone.now()
            ):
                share_event_record(share, ShareEvent.Kind.PURGED, Actor(agent="reconciler"))
        logger.warning("Reconcile: share %s had no file; marked purged.", share.pk)
    result = ReconcileResult(
        orphan_files=orphan_files, orphan_bytes=orphan_bytes, missing_files=missing
    )
    if not dry_run:
        _job_finished("reconcile_storage", result)
    return result


def _job_finished(name: str, result: object) -> None:
    JobRun.objects.update_or_create(
        name=name, defaults={"finished_at": timezone.now(), "summary": result.__dict__}
    )


def _names_without_rows(names: Iterator[str], batch_size: int = 500) -> Iterator[str]:
    """The storage names that no share row claims, one query per batch of names."""
    while batch := list(itertools.islice(names, batch_size)):  # itertools.batched: 3.12+
        known = set(
            Share.objects.filter(storage_name__in=batch).values_list("storage_name", flat=True)
        )
        yield from (name for name in batch if name not in known)
