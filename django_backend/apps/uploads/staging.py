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
import logging
import os
import stat
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.core.files.move import file_move_safe
from django.core.files.storage import default_storage

from apps.shares import storage as share_storage
from apps.shares.exceptions import StorageUnavailable

from .exceptions import UploadBytesLost, UploadGone
from .models import Upload

logger = logging.getLogger(__name__)

STAGING_PREFIX = "uploads-staging/"
HASH_CHUNK = 1024 * 1024
MIB = 1024**2
S3_MIN_PART_SIZE = 5 * MIB
S3_MAX_PARTS = 10_000


@dataclass
class Progress:
    """What a writer made durable, for the database to record: the new offset, and on S3
    the parts uploaded since the last report and the bytes waiting in the staging object."""

    offset: int
    tail_size: int = 0
    parts: list[tuple[int, str, int]] = field(default_factory=list)  # (number, ETag, size)


def is_s3() -> bool:
    return hasattr(default_storage, "bucket_name")


def backend_for_new_upload() -> str:
    return Upload.Backend.S3 if is_s3() else Upload.Backend.LOCAL


def part_size_for(length: int) -> int:
    """AWS_S3_MULTIPART_SIZE, grown (by whole MiB) when the file would need more than the
    10,000 parts S3 allows."""
    configured = getattr(settings, "AWS_S3_MULTIPART_SIZE", 8 * MIB)
    needed = -(-length // S3_MAX_PARTS)
    needed = -(-needed // MIB) * MIB
    return max(configured, S3_MIN_PART_SIZE, needed)


def new_staging_name() -> str:
    return share_storage.new_name().replace(share_storage.STORAGE_PREFIX, STAGING_PREFIX, 1)


def create(upload: Upload) -> None:
    """Make room for the upload's bytes (before its row is saved: fills s3_upload_id)."""
    if upload.backend == Upload.Backend.S3:
        _S3.create(upload)
    else:
        _Local.create(upload)


def open_writer(upload: Upload) -> "LocalWriter | S3Writer":
    """A writer continuing at `upload.offset`. UploadGone if the bytes it had are lost."""
    if upload.backend == Upload.Backend.S3:
        return S3Writer(upload)
    return LocalWriter(upload)


def finalize(upload: Upload) -> None:
    """Put the whole file at `upload.storage_name`. Idempotent: a completion that died after
    this step finds the file there."""
    if upload.backend == Upload.Backend.S3:
        _S3.complete(upload)
    else:
        _Local.finalize(upload)


def remove(upload: Upload) -> bool:
    """Delete what an unfinished upload staged; whether that worked (gone already is fine)."""
    try:
        if upload.backend == Upload.Backend.S3:
            _S3.abort(upload)
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


# --- local disk --------------------------------------------------------------------------


class _Local:
    @staticmethod
    def create(upload: Upload) -> None:
        path = Path(default_storage.path(upload.staging_name))
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except OSError as exc:
            logger.error("Could not create the staging file %s: %s", path, exc)
            raise StorageUnavailable() from exc
        os.close(descriptor)

    @staticmethod
    def finalize(upload: Upload) -> None:
        staged = Path(default_storage.path(upload.staging_name))
        stored = Path(default_storage.path(upload.storage_name))
        if not staged.exists():
            if stored.exists():
                return  # moved by a completion that died before it was recorded
            raise UploadBytesLost()
        try:
            stored.parent.mkdir(parents=True, exist_ok=True)
            # A rename on the media filesystem; file_move_safe copies only if MEDIA_ROOT
            # spans filesystems.
            file_move_safe(str(staged), str(stored))
            # The reconciler spares a file with no row for RECONCILE_GRACE_SECONDS after its
            # last change; a rename keeps the time of the last PATCH, maybe hours ago.
            os.utime(stored)
        except OSError as exc:
            logger.error("Could not move upload %s into storage: %s", upload.pk, exc)
            raise StorageUnavailable() from exc


class LocalWriter:
    """Writes a PATCH's bytes into the staging file at their offsets.

    Writing at explicit offsets (pwrite), not appending: a request that outlived its lease
    can only write the bytes the file has at those offsets anyway (a client resends the same
    file), never shift or interleave them.
    """

    def __init__(self, upload: Upload) -> None:
        path = default_storage.path(upload.staging_name)
        try:
            self._fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            raise UploadBytesLost() from None
        except OSError as exc:
            raise StorageUnavailable() from exc
        size = os.fstat(self._fd).st_size
        if size < upload.offset:
            os.close(self._fd)
            logger.error("Upload %s: %s bytes staged, %s recorded.", upload.pk, size, upload.offset)
            raise UploadBytesLost()
        if size > upload.offset:
            # Written by a request that died before it recorded them: they do not count.
            os.ftruncate(self._fd, upload.offset)
        self.position = self._recorded = upload.offset

    def write(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        try:
            while view:
                written = os.pwrite(self._fd, view, self.position)
                self.position += written
                view = view[written:]
        except OSError as exc:
            logger.error("Could not write to a staging file: %s", exc)
            raise StorageUnavailable() from exc

    def checkpoint(self) -> Progress | None:
        """Make what was written durable; None when nothing is new."""
        if self.position == self._recorded:
            return None
        return self.finish(final=False)

    def finish(self, *, final: bool) -> Progress:
        try:
            os.fsync(self._fd)
        except OSError as exc:
            raise StorageUnavailable() from exc
        self._recorded = self.position
        return Progress(offset=self.position)

    def discard(self) -> None:
        """Forget what was written since the last report (the chunk failed its checksum)."""
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, self._recorded)
        self.position = self._recorded

    def close(self) -> None:
        os.close(self._fd)


# --- S3 ----------------------------------------------------------------------------------


def _s3_error_code(exc: BaseException) -> str:
    return (getattr(exc, "response", None) or {}).get("Error", {}).get("Code", "")


class _S3:
    @staticmethod
    def client():
        return default_storage.connection.meta.client

    @staticmethod
    def key(name: str) -> str:
        # The storage's own mapping of a name to a key (AWS_LOCATION, when set, in front).
        return default_storage._normalize_name(name)

    @classmethod
    def create(cls, upload: Upload) -> None:
        try:
            response = cls.client().create_multipart_upload(
                Bucket=default_storage.bucket_name,
                Key=cls.key(upload.storage_name),
                ContentType="application/octet-stream",
                **default_storage.get_object_parameters(upload.storage_name),
            )
        except Exception as exc:
            logger.error("Could not start an S3 multipart upload: %s", exc)
            raise StorageUnavailable() from exc
        upload.s3_upload_id = response["UploadId"]

    @classmethod
    def complete(cls, upload: Upload) -> None:
        parts = [
            {"PartNumber": number, "ETag": etag}
            for number, etag in upload.parts.order_by("number").values_list("number", "etag")
        ]
        client = cls.client()
        try:
            client.complete_multipart_upload(
                Bucket=default_storage.bucket_name,
                Key=cls.key(upload.storage_name),
                UploadId=upload.s3_upload_id,
                MultipartUpload={"Parts": parts},
            )
        except Exception as exc:
            if _s3_error_code(exc) != "NoSuchUpload":
                logger.error("Could not complete the S3 upload of upload %s: %s", upload.pk, exc)
                raise StorageUnavailable() from exc
            # Completed already, by a completion that died before it was recorded?
            if not share_storage.bytes_exist(upload.storage_name):
                raise UploadBytesLost() from None
        with contextlib.suppress(Exception):  # only a leftover; the expiry sweep retries
            default_storage.delete(upload.staging_name)

    @classmethod
    def remove_orphans(
        cls, *, known_staging: set[str], known_uploads: set[str], older_than: datetime
    ) -> int:
        client = cls.client()
        bucket = default_storage.bucket_name
        removed = 0
        pages = client.get_paginator("list_multipart_uploads").paginate(
            Bucket=bucket, Prefix=cls.key(share_storage.STORAGE_PREFIX)
        )
        for page in pages:
            for multipart in page.get("Uploads", []):
                # Initiated long ago: not one of the storage's own uploads of a whole file,
                # which last one request.
                if multipart["UploadId"] in known_uploads or multipart["Initiated"] > older_than:
                    continue
                with contextlib.suppress(Exception):
                    client.abort_multipart_upload(
                        Bucket=bucket, Key=multipart["Key"], UploadId=multipart["UploadId"]
                    )
                    logger.info("Aborted the orphan multipart upload of %s.", multipart["Key"])
                    removed += 1
        prefix = cls.key(STAGING_PREFIX)
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                name = STAGING_PREFIX + item["Key"][len(prefix) :]
                if name in known_staging or item["LastModified"] > older_than:
                    continue
                with contextlib.suppress(Exception):
                    client.delete_object(Bucket=bucket, Key=item["Key"])
                    logger.info("Deleted the orphan staging object %s.", name)
                    removed += 1
        return removed

    @classmethod
    def abort(cls, upload: Upload) -> None:
        if upload.s3_upload_id:
            try:
                cls.client().abort_multipart_upload(
                    Bucket=default_storage.bucket_name,
                    Key=cls.key(upload.storage_name),
                    UploadId=upload.s3_upload_id,
                )
            except Exception as exc:
                if _s3_error_code(exc) != "NoSuchUpload":
                    raise
        default_storage.delete(upload.staging_name)


class S3Writer:
    """Cuts a PATCH's bytes into parts of `part_size` and uploads each as it fills.

    The bytes of the part being filled wait in a temporary file of this request (memory
    stays flat); at the end of a PATCH that does not finish the file they go to the staging
    object, from which the next PATCH, on any process, takes them back. Part boundaries are
    fixed multiples of `part_size`, so a part number always holds the same bytes.
    """

    def __init__(self, upload: Upload) -> None:
        self._upload = upload
        self._client = _S3.client()
        self._part_size = upload.part_size
        recorded = list(upload.parts.values_list("number", "size"))
        self._next_number = len(recorded) + 1
        self._parts_bytes = sum(size for _, size in recorded)
        if self._parts_bytes + upload.tail_size != upload.offset:
            logger.error("Upload %s: its parts do not add up to its offset.", upload.pk)
            raise UploadBytesLost()
        self._unreported: list[tuple[int, str, int]] = []
        self._tail_size = upload.tail_size
        self._buffer = tempfile.TemporaryFile(dir=settings.FILE_UPLOAD_TEMP_DIR or None)  # noqa: SIM115 - closed by close()
        self._buffered = 0
        if upload.tail_size:
            self._load_tail(upload.tail_size)

    @property
    def position(self) -> int:
        return self._parts_bytes + self._buffered

    def _load_tail(self, size: int) -> None:
        try:
            body = self._client.get_object(
                Bucket=default_storage.bucket_name,
                Key=_S3.key(self._upload.staging_name),
                # Only what was recorded: a request that died may have written more.
                Range=f"bytes=0-{size - 1}",
            )["Body"]
            for chunk in body.iter_chunks(HASH_CHUNK):
                self._buffer.write(chunk)
        except Exception as exc:
            if _s3_error_code(exc) in {"NoSuchKey", "InvalidRange"}:
                raise UploadBytesLost() from None
            raise StorageUnavailable() from exc
        self._buffered = self._buffer.tell()
        if self._buffered != size:
            raise UploadBytesLost()

    def write(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        while view:
            room = self._part_size - self._buffered
            piece = view[:room]
            self._buffer.write(piece)
            self._buffered += len(piece)
            view = view[len(piece) :]
            if self._buffered == self._part_size:
                self._upload_part()

    def _upload_part(self) -> None:
        self._buffer.seek(0)
        try:
            response = self._client.upload_part(
                Bucket=default_storage.bucket_name,
                Key=_S3.key(self._upload.storage_name),
                UploadId=self._upload.s3_upload_id,
                PartNumber=self._next_number,
                Body=self._buffer,
                ContentLength=self._buffered,
            )
        except Exception as exc:
            if _s3_error_code(exc) == "NoSuchUpload":
                raise UploadGone("This upload was removed. Start a new upload.") from None
            logger.error("Could not upload part %s to S3: %s", self._next_number, exc)
            raise StorageUnavailable() from exc
        self._unreported.append((self._next_number, response["ETag"], self._buffered))
        self._next_number += 1
        self._parts_bytes += self._buffered
        # The staging object's bytes are in this part now.
        self._tail_size = 0
        self._buffer.seek(0)
        self._buffer.truncate()
        self._buffered = 0

    def checkpoint(self) -> Progress | None:
        """Parts uploaded since the last report. The bytes still buffered are not durable
        yet, so they do not count."""
        if not self._unreported:
            return None
        progress = Progress(offset=self._parts_bytes, tail_size=0, parts=self._unreported)
        self._unreported = []
        return progress

    def finish(self, *, final: bool) -> Progress:
        if final:
            if self._buffered:
                self._upload_part()  # the last part may be smaller than 5 MiB
        elif self._buffered != self._tail_size:
            self._save_tail()
        progress = Progress(offset=self.position, tail_size=self._tail_size, parts=self._unreported)
        self._unreported = []
        return progress

    def _save_tail(self) -> None:
        self._buffer.seek(0)
        try:
            self._client.put_object(
                Bucket=default_storage.bucket_name,
                Key=_S3.key(self._upload.staging_name),
                Body=self._buffer,
                ContentLength=self._buffered,
            )
        except Exception as exc:
            logger.error("Could not store the staging object of an upload: %s", exc)
            raise StorageUnavailable() from exc
        self._buffer.seek(0, os.SEEK_END)
        self._tail_size = self._buffered

    def discard(self) -> None:
        """Forget this request's bytes: its unreported parts are never named at completion
        (the next request uploads the same part numbers again)."""
        self._unreported = []

    def close(self) -> None:
        self._buffer.close()


def remove_orphans(
    *, known_staging: set[str], known_s3_uploads: set[str], older_than: datetime
) -> int:
    """Delete staged bytes that no upload row names, last touched before `older_than`: a
    crash between making room for an upload and saving its row, or a row deleted by hand.
    Local staging files; on S3, staging objects and multipart uploads of the share prefix.
    Returns how many."""
    if is_s3():
        return _S3.remove_orphans(
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
