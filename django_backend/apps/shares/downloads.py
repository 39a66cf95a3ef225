"""Sending a claimed share to the client.

The claim service authorizes, opens the bytes and takes the download; this module turns
the claim into the response: streamed by the app (with the WSGI server's sendfile for local
files), or handed to nginx with X-Accel-Redirect.
"""

import contextlib
import io
import logging
from urllib.parse import quote

from django.conf import settings
from django.core.files import File
from django.http import FileResponse, HttpRequest, HttpResponse

from apps.common import ratelimits

from .clients import SYSTEM, Actor, actor_from_request
from .exceptions import WrongPassword
from .filenames import attachment_disposition
from .models import Share
from .services.lifecycle import share_claim, share_download_finished
from .tokens import token_hash

logger = logging.getLogger(__name__)

BLOCK_SIZE = 256 * 1024


class _TrackedFile(File):
    """The stored file, which reports how the download ended once the response closes it.

    FileResponse closes the file when the WSGI server closes the response: the transfer
    finished or the client went away. How far the transfer got is the furthest position the
    file reached: read() advances it on the app's own path; on the server's sendfile path,
    socket.sendfile() seeks the file to the end of what it sent (gunicorn then seeks it
    back to where it started, so the position at close alone would say "nothing sent").
    After the last allowed download, the service then deletes the bytes.
    """

    def __init__(self, file: File, share: Share, actor: Actor) -> None:
        super().__init__(file, name=share.storage_name)
        self._share_id = share.pk
        self._size = share.size
        self._actor = actor
        self._furthest = 0
        self._reported = False

    def read(self, *args, **kwargs) -> bytes:
        data = self.file.read(*args, **kwargs)
        with contextlib.suppress(AttributeError, OSError, ValueError):
            self._furthest = max(self._furthest, self.file.tell())
        return data

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        position = self.file.seek(offset, whence)
        # Only an absolute seek tells how far a transfer got: FileResponse measures the
        # file with a seek to its end before anything is sent.
        if whence == io.SEEK_SET:
            self._furthest = max(self._furthest, position)
        return position

    def close(self) -> None:
        try:
            super().close()
        finally:
            if not self._reported:
                self._reported = True
                share_download_finished(
                    share_id=self._share_id,
                    completed=self._furthest >= self._size,
                    actor=self._actor,
                )


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
    """Claim one download and answer with the attachment."""
    offload = settings.DOWNLOAD_OFFLOAD == "nginx"
    claimed = share_claim(
        share_token=share_token, password=password, actor=actor, open_bytes=not offload
    )
    share = claimed.share
    if offload:
        return _offload_response(share)
    response = FileResponse(
        _TrackedFile(claimed.stream, share, actor), content_type="application/octet-stream"
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
