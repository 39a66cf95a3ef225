"""The uploads' periodic job and counts: expire abandoned uploads and remove their staged
bytes (on disk and on S3); how many uploads are in which state."""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Min, Sum
from django.utils import timezone

from . import staging
from .exceptions import UploadConflict
from .models import Upload, UploadPart
from .services import lease_release, lease_take

logger = logging.getLogger(__name__)


# Uploads the expiry job takes in one run (it runs every PURGE_INTERVAL seconds).
EXPIRE_BATCH_SIZE = 1000


@dataclass(frozen=True)
class ExpireResult:
    uploads: int
    bytes: int
    rows_deleted: int
    orphans: int


def uploads_expire(*, dry_run: bool = False) -> ExpireResult:
    """Remove the staged bytes of every upload left alone for UPLOAD_SESSION_TTL (local
    files, S3 multipart uploads and staging objects) and forget the links of completed
    ones nobody fetched. Rows stay one more TTL, answering 410, then go. Staged bytes that
    no row names (a crash between making room and saving the row) go too.

    Each upload is taken with the same lease as a request, on an expired session only, so
    the job never removes bytes a request is writing, and concurrent runs share the work.
    """
    now = timezone.now()
    uploads = total_bytes = 0
    # A list, not a cursor: each upload is committed on its own (see shares' _ids_and_sizes);
    # a backlog larger than a batch is the next run's.
    for upload in list(Upload.objects.expired(now).order_by("pk")[:EXPIRE_BATCH_SIZE]):
        if dry_run:
            uploads += 1
            total_bytes += 0 if upload.completed_at else upload.offset
            continue
        try:
            lease = lease_take(upload, now=now, expired=True)
        except UploadConflict:
            continue
        removed = upload.completed_at is not None or staging.remove(upload)
        if not removed:
            lease_release(upload, lease)
            continue
        with transaction.atomic():
            Upload.objects.filter(pk=upload.pk, lease_token=lease).update(
                purged_at=now,
                sealed_manage_token="",
                password="",
                lease_token="",
                lease_until=None,
            )
            UploadPart.objects.filter(upload=upload).delete()
        uploads += 1
        total_bytes += 0 if upload.completed_at else upload.offset
        logger.info("Upload %s expired; its staged bytes were removed.", upload.pk)
    past = Upload.objects.filter(purged_at__lt=now - timedelta(seconds=settings.UPLOAD_SESSION_TTL))
    rows_deleted = past.count() if dry_run else past.delete()[1].get("uploads.Upload", 0)
    orphans = 0
    if not dry_run:
        live = Upload.objects.filter(purged_at__isnull=True)
        orphans = staging.remove_orphans(
            known_staging=set(live.values_list("staging_name", flat=True)),
            known_s3_uploads=set(live.values_list("s3_upload_id", flat=True)) - {""},
            older_than=now - timedelta(seconds=settings.UPLOAD_SESSION_TTL),
        )
    return ExpireResult(
        uploads=uploads, bytes=total_bytes, rows_deleted=rows_deleted, orphans=orphans
    )


def uploads_stats() -> dict:
    """Counts by state, bytes staged by unfinished uploads, the oldest unfinished one."""
    now = timezone.now()
    condition = Upload.objects.condition
    stats = Upload.objects.aggregate(
        **{state.value: Count("pk", filter=condition(state, now)) for state in Upload.State},
        total=Count("pk"),
        bytes_staged=Sum("offset", filter=condition(Upload.State.UPLOADING, now)),
        oldest_uploading_created_at=Min(
            "created_at", filter=condition(Upload.State.UPLOADING, now)
        ),
    )
    stats["bytes_staged"] = stats["bytes_staged"] or 0
    return stats
