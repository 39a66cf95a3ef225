"""Sending a claimed share to the client.

The bytes are opened before the download is counted, so a storage failure costs the
recipient nothing; then the claim; then the response: streamed by the app (with the WSGI
server's sendfile for local files), or handed to nginx with X-Accel-Redirect.
"""

import logging
from urllib.parse import quote

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.http import FileResponse, HttpRequest, HttpResponse

from . import ratelimits, services
from .clients import SYSTEM, Actor, actor_from_request
from .exceptions import ShareGone, StorageUnavailable, WrongPassword
from .filenames import attachment_disposition
from .models import Share
from .tokens import token_hash

logger = logging.getLogger(__name__)

BLOCK_SIZE = 256 * 1024


class _TrackedFile(File):
    """The stored file, which reports how the download ended once the response closes it.

    FileResponse closes the file when the WSGI server closes the response: the transfer
    finished or the client went away. The file position then tells which, on the read()
    path and on the server's sendfile path alike (both advance it by what was sent).
    After the last allowed download, the service then deletes the bytes.
    """

    def __init__(self, file: File, share: Share, actor: Actor) -> None:
        super().__init__(file, name=share.storage_name)
        self._share_id = share.pk
        self._size = share.size
        self._actor = actor
        self._reported = False

    def close(self) -> None:
        try:
            position = self.file.tell()
        except (AttributeError, OSError, ValueError):
            position = 0
        try:
            super().close()
        finally:
            if not self._reported:
                self._reported = True
                services.share_download_finished(
                    share_id=self._share_id, completed=position >= self._size, actor=self._actor
                )


def storage_says_missing(exc: BaseException) -> bool:
    """Whether a storage error means "no such file": local, or an S3 error code."""
    if isinstance(exc, FileNotFoundError):
        return True
    error = getattr(exc, "response", None) or {}
    return error.get("Error", {}).get("Code") in {"NoSuchKey", "404", "NotFound"}


def open_stored(share: Share) -> File:
    """A readable stream of the share's bytes, never loaded whole into memory."""
    try:
        stored = default_storage.open(share.storage_name, "rb")
        s3_object = getattr(stored, "obj", None)
        if s3_object is not None:
            # django-storages' S3File would first copy the whole object into a spooled
            # temporary file (in memory up to AWS_S3_MAX_MEMORY_SIZE, which defaults to no
            # limit); the object's body streams straight from S3 instead.
            return File(s3_object.get()["Body"], name=share.storage_name)
        return stored
    except Exception as exc:
        if not storage_says_missing(exc):
            logger.error("Could not open share %s in storage: %s", share.pk, exc)
            raise StorageUnavailable() from exc
        share.refresh_from_db()
        if share.is_available:
            # Bytes lost behind our back: the reconciler marks such rows purged.
            logger.error("Share %s has no bytes in storage.", share.pk)
        # Otherwise this request lost a race: the last download deleted the bytes after
        # this one was authorized. Either way nothing is counted.
        raise ShareGone() from None


def download_request(request: HttpRequest, *, share_token: str, password: str) -> HttpResponse:
    """download_response for a client's request, within its rate limits: downloads per
    client, and wrong passwords per client and share (so guessing one share's password is
    slow while the real recipient elsewhere is not locked out)."""
    password_scope = token_hash(share_token)[:16]
    ratelimits.count(request, "download")
    ratelimits.check(request, "password", password_scope)
    try:
        return download_response(
            share_token=share_token, password=password, actor=actor_from_request(request)
        )
    except WrongPassword:
        ratelimits.count(request, "password", password_scope)
        raise


def download_response(*, share_token: str, password: str, actor: Actor = SYSTEM) -> HttpResponse:
    """Authorize, open the bytes, take one download, and answer with the attachment."""
    share = services.share_authorize(share_token=share_token, password=password, actor=actor)
    if settings.DOWNLOAD_OFFLOAD == "nginx":
        if not default_storage.exists(share.storage_name):
            logger.error("Share %s has no bytes in storage.", share.pk)
            raise ShareGone()
        share = services.share_claim_authorized(share=share, actor=actor)
        return _offload_response(share)
    stream = open_stored(share)
    try:
        share = services.share_claim_authorized(share=share, actor=actor)
    except BaseException:
        stream.close()
        raise
    response = FileResponse(
        _TrackedFile(stream, share, actor), content_type="application/octet-stream"
    )
    response.block_size = BLOCK_SIZE
    response.headers["Content-Length"] = str(share.size)
    _attachment_headers(response, share)
    return response


def _offload_response(share: Share) -> HttpResponse:
    # nginx serves the file from an `internal` location; the bytes are deleted by the task
    # enqueued with the claim (unlinking a file nginx already has open is safe).
    response = HttpResponse(content_type="application/octet-stream")
    response.headers["X-Accel-Redirect"] = settings.DOWNLOAD_OFFLOAD_LOCATION + quote(
        share.storage_name
    )
    _attachment_headers(response, share)
    return response


def _attachment_headers(response: HttpResponse, share: Share) -> None:
    response.headers["Content-Disposition"] = attachment_disposition(share.name)
    response.headers["X-Content-Type-Options"] = "nosniff"
    # If a browser ever renders it anyway, it is in a sandbox with no script and no origin.
    response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
