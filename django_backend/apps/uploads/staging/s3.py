"""Staging on S3: a multipart upload for the final key, and a staging object for the tail."""

import contextlib
import os
import tempfile
from datetime import datetime

from django.conf import settings
from django.core.files.storage import default_storage

from apps.shares import storage as share_storage
from apps.shares.exceptions import StorageUnavailable

from ..exceptions import UploadBytesLost, UploadGone
from ..models import Upload
from .common import HASH_CHUNK, STAGING_PREFIX, Progress, logger


def _s3_error_code(exc: BaseException) -> str:
    return (getattr(exc, "response", None) or {}).get("Error", {}).get("Code", "")


class S3Staging:
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
        self._client = S3Staging.client()
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
                Key=S3Staging.key(self._upload.staging_name),
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
                Key=S3Staging.key(self._upload.storage_name),
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
                Key=S3Staging.key(self._upload.staging_name),
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
