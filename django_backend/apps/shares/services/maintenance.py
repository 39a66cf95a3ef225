"""The periodic jobs: purge the bytes of every ended share, reconcile storage and database.

Each is safe to run at any time and from several places at once (the Celery beat task, the
management command, an operator), and records when it last finished for readiness.
"""

import itertools
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone

from .. import storage, uploads
from ..clients import Actor
from ..models import AbuseReport, DownloadSession, JobRun, Share, ShareEvent, ShareQuerySet
from .events import share_event_record
from .lifecycle import share_purge
from .sessions import sessions_end_expired

logger = logging.getLogger(__name__)

# purge_shares reads ended shares, and deletes rows past retention, this many at a time:
# whatever the backlog (after downtime, or on the day retention first applies), memory is
# that of one batch and each transaction is short.
PURGE_BATCH_SIZE = 1000


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

    It costs what its work costs: shares are read and rows deleted in batches of
    PURGE_BATCH_SIZE through indexes, never loaded as a whole (see _delete_past_retention).
    """
    if not dry_run:
        # First end the download sessions whose window closed: their shares' bytes were
        # kept for them and are purgeable from now on.
        sessions_end_expired()
    shares = total_bytes = 0
    # A share used up moments ago may still be on its way out: with nginx offload, nginx
    # opens the file after the app has answered. Its own purge task, sent with the claim,
    # deletes it PURGE_AFTER_LAST_DOWNLOAD seconds later; this job leaves it until then.
    just_consumed = timezone.now() - timedelta(seconds=settings.PURGE_AFTER_LAST_DOWNLOAD)
    purgeable = Share.objects.purgeable().exclude(consumed_at__gt=just_consumed)
    for share_id, size in _ids_and_sizes(purgeable):
        if dry_run or share_purge(share_id=share_id):
            shares += 1
            total_bytes += size
    cutoff = timezone.now() - timedelta(days=settings.SHARE_RETENTION_DAYS)
    if dry_run:
        rows_deleted = _past_retention(cutoff).count()
    else:
        rows_deleted = _delete_past_retention(cutoff)
    result = PurgeResult(shares=shares, bytes=total_bytes, rows_deleted=rows_deleted)
    if not dry_run:
        _job_finished("purge_shares", result)
    return result


def _ids_and_sizes(
    shares: ShareQuerySet, batch_size: int = PURGE_BATCH_SIZE
) -> Iterator[tuple[int, int]]:
    """(pk, size) of each share of `shares`, read `batch_size` at a time in primary-key
    order.

    Batches rather than one cursor: the caller commits after every share, which a cursor
    held open across commits does not survive well (PostgreSQL materializes a WITH HOLD
    cursor's whole result; SQLite's cursor over rows being updated is undefined). A share
    whose purge failed is not read again in the same run: the next batch starts after it.
    """
    after = 0
    while True:
        batch = list(
            shares.filter(pk__gt=after).order_by("pk").values_list("pk", "size")[:batch_size]
        )
        yield from batch
        if len(batch) < batch_size:
            return
        after = batch[-1][0]


def _delete_past_retention(cutoff: datetime, batch_size: int = PURGE_BATCH_SIZE) -> int:
    """Delete the rows purged before `cutoff` with their events and reports, oldest first,
    `batch_size` shares per transaction, without loading a row. Returns how many shares.

    Not `Share.objects.filter(...).delete()`: Django's collector loads every share it
    deletes, every column, all at once, to cascade to their events and reports in Python;
    a backlog of 33,000 rows took 5 s and 151 MiB that way. Here each batch is five
    statements: the batch's ids (through the share_purged_at index), then one DELETE each
    for events, reports, download sessions and shares. The first three go by their
    querysets' delete(),
    which Django runs as a single DELETE because nothing cascades from them and no signal
    listens (test_maintenance_cost fails should that change); the shares, from which
    events and reports cascade, by a DELETE on their primary keys (`_delete_by_pk`).

    ON DELETE CASCADE in the database would save three statements, but Django 5.2 cannot
    declare it (no db_on_delete), and adding it by hand would need a table rebuild on
    SQLite and leave the two databases behaving differently.
    """
    past_retention = _past_retention(cutoff)
    deleted = 0
    while True:
        with transaction.atomic():
            # SKIP LOCKED (PostgreSQL): runs at the same time take different batches
            # instead of queueing behind each other's. SQLite runs one writer at a time.
            batch = past_retention.select_for_update(skip_locked=True).values_list("pk")
            share_ids = [pk for (pk,) in batch[:batch_size]]
            if not share_ids:
                return deleted
            ShareEvent.objects.filter(share_id__in=share_ids).delete()
            AbuseReport.objects.filter(share_id__in=share_ids).delete()
            DownloadSession.objects.filter(share_id__in=share_ids).delete()
            deleted += _delete_by_pk(Share, share_ids)
        if len(share_ids) < batch_size:
            return deleted


def _past_retention(cutoff: datetime) -> ShareQuerySet:
    """Rows purged before `cutoff`, oldest first: a range of the share_purged_at index."""
    return Share.objects.filter(purged_at__lt=cutoff).order_by("purged_at")


def _delete_by_pk(model: type[Model], pks: list[int]) -> int:
    """DELETE the rows of `model` with these primary keys, as one statement that loads
    nothing; what references them must be gone already. Returns how many were deleted."""
    quote = connection.ops.quote_name
    placeholders = ", ".join(["%s"] * len(pks))
    # Only identifiers from the model's own metadata are formatted in; values are bound.
    sql = (
        f"DELETE FROM {quote(model._meta.db_table)} "  # noqa: S608
        f"WHERE {quote(model._meta.pk.column)} IN ({placeholders})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, pks)
        return cursor.rowcount


@dataclass(frozen=True)
class ReconcileResult:
    orphan_files: int
    orphan_bytes: int
    missing_files: int
    stale_spools: int = 0
    stale_spool_bytes: int = 0


def storage_reconcile(*, grace: int | None = None, dry_run: bool = False) -> ReconcileResult:
    """Heal storage and database in both directions after crashes.

    - A file with no row, older than `grace` seconds, is deleted: an upload whose row was
      never committed. The grace period spares uploads between their write and commit.
    - A row whose file is missing is marked purged, so it is never offered again.
    - An upload spool file last written before the grace period, and locked by no live
      upload, is deleted: its upload's process was killed (see spools_sweep).
    """
    grace = settings.RECONCILE_GRACE_SECONDS if grace is None else grace
    cutoff = timezone.now() - timedelta(seconds=grace)
    spools = spools_sweep(grace=grace, dry_run=dry_run)
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
        orphan_files=orphan_files,
        orphan_bytes=orphan_bytes,
        missing_files=missing,
        stale_spools=spools.files,
        stale_spool_bytes=spools.bytes,
    )
    if not dry_run:
        _job_finished("reconcile_storage", result)
    return result


def spools_sweep(*, grace: int | None = None, dry_run: bool = False) -> uploads.SpoolSweep:
    """Delete the spool files that uploads cut off by a crash left behind, once last written
    more than `grace` seconds ago. A live upload's file is never touched: its process holds
    a lock on it. Part of storage_reconcile, and run alone by the start-up step
    (`reconcile_storage --spools-only`), which must not wait for a storage listing.
    """
    grace = settings.RECONCILE_GRACE_SECONDS if grace is None else grace
    return uploads.stale_spools_remove(
        older_than=timezone.now() - timedelta(seconds=grace), dry_run=dry_run
    )


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
