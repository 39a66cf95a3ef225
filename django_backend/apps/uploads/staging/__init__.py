"""Where the bytes of an unfinished upload wait, on local disk or in S3.

- Local: one staging file under MEDIA_ROOT/uploads-staging/ (beside shares/, on the same
  filesystem, outside the prefix the reconciler scans). Each PATCH writes at the offsets it
  was given; completion renames the file to the share's storage name: no copy.
- S3: a multipart upload created at creation for the share's final key. Parts are whole
  `part_size` pieces (S3 wants at least 5 MiB but for the last); what a PATCH leaves over,
  less than a part, waits in a staging object under uploads-staging/ until the next PATCH
  takes it back. Completion is CompleteMultipartUpload with the parts the database recorded;
  an abandoned upload is aborted.

The database is the truth about how many bytes count: a writer starts from `upload.offset`
and throws away whatever a request that died had written past it. Nothing here touches the
database; the services record the `Progress` a writer reports.
"""

import contextlib
import hashlib
import os
import stat
from datetime import datetime
from pathlib import Path

from django.core.files.storage import default_storage

from apps.shares import storage as share_storage

from ..models import Upload
from .common import (
    HASH_CHUNK,
    STAGING_PREFIX,
    Progress,
    logger,
    new_staging_name,
    part_size_for,
)
from .local import LocalStaging, LocalWriter
from .s3 import S3Staging, S3Writer

__all__ = [
    "STAGING_PREFIX",
    "LocalWriter",
    "Progress",
    "S3Writer",
    "new_staging_name",
    "part_size_for",
]


def is_s3() -> bool:
    return hasattr(default_storage, "bucket_name")


def backend_for_new_upload() -> str:
    return Upload.Backend.S3 if is_s3() else Upload.Backend.LOCAL


def create(upload: Upload) -> None:
    """Make room for the upload's bytes (before its row is saved: fills s3_upload_id)."""
    if upload.backend == Upload.Backend.S3:
        S3Staging.create(upload)
    else:
        LocalStaging.create(upload)


def open_writer(upload: Upload) -> "LocalWriter | S3Writer":
    """A writer continuing at `upload.offset`. UploadGone if the bytes it had are lost."""
    if upload.backend == Upload.Backend.S3:
        return S3Writer(upload)
    return LocalWriter(upload)


def finalize(upload: Upload) -> None:
    """Put the whole file at `upload.storage_name`. Idempotent: a completion that died after
    this step finds the file there."""
    if upload.backend == Upload.Backend.S3:
        S3Staging.complete(upload)
    else:
        LocalStaging.finalize(upload)


def remove(upload: Upload) -> bool:
    """Delete what an unfinished upload staged; whether that worked (gone already is fine)."""
    try:
        if upload.backend == Upload.Backend.S3:
            S3Staging.abort(upload)
        else:
            Path(default_storage.path(upload.staging_name)).unlink(missing_ok=True)
    except Exception as exc:  # any storage failure: the expiry job tries again
        logger.warning("Could not remove the staged bytes of upload %s: %s", upload.pk, exc)
        return False
    return True


def sha256_of_stored(storage_name: str) -> str:
    """SHA-256 of a stored file, read once in chunks: memory stays flat."""
    hasher = hashlib.sha256()
    with share_storage.open_bytes(storage_name) as stored:
        while chunk := stored.read(HASH_CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()


def remove_orphans(
    *, known_staging: set[str], known_s3_uploads: set[str], older_than: datetime
) -> int:
    """Delete staged bytes that no upload row names, last touched before `older_than`: a
    crash between making room for an upload and saving its row, or a row deleted by hand.
    Local staging files; on S3, staging objects and multipart uploads of the share prefix.
    Returns how many."""
    if is_s3():
        return S3Staging.remove_orphans(
            known_staging=known_staging, known_uploads=known_s3_uploads, older_than=older_than
        )
    removed = 0
    cutoff = older_than.timestamp()
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(default_storage.path(STAGING_PREFIX)):
            if f"{STAGING_PREFIX}{entry.name}" in known_staging:
                continue
            try:
                status = entry.stat(follow_symlinks=False)
                if not stat.S_ISREG(status.st_mode) or status.st_mtime > cutoff:
                    continue
                os.unlink(entry.path)
            except FileNotFoundError:
                continue
            except OSError as exc:
                logger.warning("Could not delete the orphan staging file %s: %s", entry.name, exc)
                continue
            logger.info("Deleted the orphan staging file %s.", entry.name)
            removed += 1
    return removed
