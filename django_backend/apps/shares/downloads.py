"""Sending a share's bytes: the claim, and the download session it opens.

The claim service authorizes, opens the bytes and takes the download. The page's Download
button then redirects to the session's URL, /d/<session token>, which serves the file with
`Accept-Ranges`, an `ETag` and `If-Range`, so an interrupted download resumes (a browser's
Resume, `curl -C -`); the API's download call streams the bytes at once and names that URL
in `Content-Location`. Every response is one request of the session (services.sessions):
its bytes are reserved first, and when the server closes the response, how far it got
settles the session. Bytes go out through the WSGI server's sendfile for local files, or
through nginx with X-Accel-Redirect.
"""

import io
import logging
import re
from urllib.parse import quote

from django.conf import settings
from django.core.files import File
from django.http import FileResponse, HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.http import http_date, parse_http_date_safe

from apps.common import ratelimits

from . import metrics
from .clients import Actor, actor_from_request
from .exceptions import ShareGone, WrongPassword
from .filenames import attachment_disposition
from .links import absolute_url
from .models import Share
from .services import sessions
from .services.claims import ClaimedShare, share_claim
from .storage import open_bytes
from .tokens import token_hash

logger = logging.getLogger(__name__)

BLOCK_SIZE = 256 * 1024
# One range, as browsers and `curl -C -` ask: `bytes=START-[END]` or `bytes=-SUFFIX`.
SINGLE_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


class _SessionFile(File):
    """The stored bytes of one session request, which settle the session once the response
    closes them: the transfer finished or the client went away.

    How far the transfer got: reads count on the app's own path (local or S3); on the
    server's sendfile path, socket.sendfile() seeks the file to the end of what it sent
    (gunicorn then seeks it back to where it started, so the position at close would say
    "nothing sent"; and FileResponse measures the file with a seek to its end before
    anything is sent, so only absolute seeks count). Reads stop at the end of the range.
    """

    def __init__(self, file: File, request: sessions.SessionRequest, actor: Actor) -> None:
        super().__init__(file, name=request.share.storage_name)
        self._request = request
        self._actor = actor
        self._end = request.start + request.length
        self._position = request.start  # where the next read starts
        self._furthest = request.start
        self._settled = False

    def read(self, size: int = -1) -> bytes:
        left = self._end - self._position
        data = self.file.read(left if size is None or size < 0 else min(size, left))
        self._position += len(data)
        self._furthest = max(self._furthest, self._position)
        return data

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        position = self.file.seek(offset, whence)
        if whence == io.SEEK_SET:
            self._position = position
            self._furthest = max(self._furthest, min(position, self._end))
        return position

    def close(self) -> None:
        try:
            super().close()
        finally:
            if not self._settled:
                self._settled = True
                sessions.session_request_end(
                    request=self._request,
                    sent=self._furthest - self._request.start,
                    actor=self._actor,
                )


@metrics.counts_claims
def claim_request(
    request: HttpRequest, *, share_token: str, password: str, open_bytes: bool
) -> ClaimedShare:
    """share_claim for a client's request, within its rate limits: downloads per client,
    and wrong passwords per client and share (so guessing one share's password is slow
    while the real recipient elsewhere is not locked out)."""
    password_scope = token_hash(share_token)[:16]
    ratelimits.count(request, "download")
    ratelimits.check(request, "password", password_scope)
    try:
        return share_claim(
            share_token=share_token,
            password=password,
            actor=actor_from_request(request),
            open_bytes=open_bytes,
        )
    except WrongPassword:
        ratelimits.count(request, "password", password_scope)
        raise


def session_url(request: HttpRequest, session_token: str) -> str:
    return absolute_url(request, reverse("shares:session", args=[session_token]))


def claim_and_stream(request: HttpRequest, *, share_token: str, password: str) -> HttpResponse:
    """The API's download: claim, then the whole file at once, naming the session's URL
    in Content-Location for a client that needs to resume."""
    offload = settings.DOWNLOAD_OFFLOAD == "nginx"
    claimed = claim_request(
        request, share_token=share_token, password=password, open_bytes=not offload
    )
    try:
        session_request = sessions.session_request_begin(
            session_token=claimed.session_token, start=0, length=claimed.share.size
        )
    except BaseException:
        if claimed.stream is not None:
            claimed.stream.close()
        raise
    if offload:
        response = _offload_response(session_request)
    else:
        response = _file_response(
            request, session_request, claimed.stream, status=200, total=claimed.share.size
        )
    response.headers["Content-Location"] = session_url(request, claimed.session_token)
    return response


def serve_session(request: HttpRequest, session_token: str) -> HttpResponse:
    """GET or HEAD of a download session: the file, or the one range asked for."""
    session = sessions.session_get(session_token=session_token)
    share = session.share
    size = share.size
    byte_range = _requested_range(request, share)
    if byte_range == "unsatisfiable":
        response = HttpResponse(status=416)
        response.headers["Content-Range"] = f"bytes */{size}"
        _attachment_headers(response, share)
        return response
    start, length = byte_range or (0, size)
    if request.method == "HEAD":
        # Headers only: nothing is reserved, sent or counted. The type is GET's.
        response = HttpResponse(
            status=206 if byte_range else 200, content_type="application/octet-stream"
        )
        response.headers["Content-Length"] = str(length)
        if byte_range:
            response.headers["Content-Range"] = f"bytes {start}-{start + length - 1}/{size}"
        _attachment_headers(response, share)
        return response
    session_request = sessions.session_request_begin(
        session_token=session_token, start=start, length=length
    )
    if settings.DOWNLOAD_OFFLOAD == "nginx":
        # nginx answers the Range itself from the same headers.
        return _offload_response(session_request)
    try:
        stream = open_bytes(share.storage_name, start=start, length=length)
    except BaseException as exc:
        sessions.session_request_end(request=session_request, sent=0, actor=Actor())
        if isinstance(exc, FileNotFoundError):
            raise ShareGone() from None
        raise
    return _file_response(
        request, session_request, stream, status=206 if byte_range else 200, total=size
    )


def _requested_range(request: HttpRequest, share: Share) -> tuple[int, int] | str | None:
    """(start, length) of the one range asked for, "unsatisfiable", or None for the whole
    file: no Range, a Range we don't serve (several ranges, another unit, bad syntax: the
    whole file is a correct answer to those), or an If-Range that no longer matches."""
    header = request.headers.get("Range", "").strip()
    match = SINGLE_RANGE.fullmatch(header.replace(" ", ""))
    if not match or not any(match.groups()):
        return None
    if_range = request.headers.get("If-Range", "").strip()
    if if_range and not _if_range_holds(if_range, share):
        return None
    size = share.size
    first, last = match.groups()
    if first:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
        if start >= size or (last and int(last) < start):
            return "unsatisfiable"
    else:
        suffix = int(last)
        if suffix == 0 or size == 0:
            return "unsatisfiable"
        start, end = max(0, size - suffix), size - 1
    return start, end - start + 1


def _if_range_holds(if_range: str, share: Share) -> bool:
    if if_range.startswith('"'):
        return if_range == _etag(share)  # a strong comparison: no W/ tags match
    modified = parse_http_date_safe(if_range)
    return modified is not None and modified >= int(share.created_at.timestamp())


def _etag(share: Share) -> str:
    # The content's own hash: the same bytes under every session, never reused for others.
    return f'"{share.sha256}"'


def _file_response(
    request: HttpRequest,
    session_request: sessions.SessionRequest,
    stream: File,
    *,
    status: int,
    total: int,
) -> FileResponse:
    share = session_request.share
    response = FileResponse(
        _SessionFile(stream, session_request, actor_from_request(request)),
        content_type="application/octet-stream",
        status=status,
    )
    response.block_size = BLOCK_SIZE
    response.headers["Content-Length"] = str(session_request.length)
    if status == 206:
        last = session_request.start + session_request.length - 1
        response.headers["Content-Range"] = f"bytes {session_request.start}-{last}/{total}"
    _attachment_headers(response, share)
    return response


def _offload_response(session_request: sessions.SessionRequest) -> HttpResponse:
    # nginx serves the file (and any Range) from an `internal` location. It does not tell
    # the app how far it got, so such a session is never known to be complete: its bytes
    # are kept until its window closes, when the purge job deletes them.
    sessions.session_request_handed_off(request=session_request)
    share = session_request.share
    response = HttpResponse(content_type="application/octet-stream")
    response.headers["X-Accel-Redirect"] = settings.DOWNLOAD_OFFLOAD_LOCATION + quote(
        share.storage_name
    )
    _attachment_headers(response, share)
    # nginx says it itself on the whole file (and answers the ranges); the app's copy,
    # which it keeps after the redirect, would make it "bytes, bytes".
    del response.headers["Accept-Ranges"]
    return response


def _attachment_headers(response: HttpResponse, share: Share) -> None:
    response.headers["Content-Disposition"] = attachment_disposition(share.name)
    response.headers["Accept-Ranges"] = "bytes"
    response.headers["ETag"] = _etag(share)
    response.headers["Last-Modified"] = http_date(share.created_at.timestamp())
    response.headers["X-Content-Type-Options"] = "nosniff"
    # If a browser ever renders it anyway, it is in a sandbox with no script and no origin.
    response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
