"""Streaming upload handling: hash while receiving, stop at MAX_UPLOAD_SIZE, spool to disk.

Every upload, multipart or raw, passes through `ShareUploadHandler`: it never holds a file
in memory, computes the SHA-256 as the bytes arrive, and stops reading the moment the
size limit is passed, deleting what it had spooled.
"""

import hashlib

from django.conf import settings
from django.core.files.uploadedfile import TemporaryUploadedFile
from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler
from django.http import HttpRequest

from .exceptions import InvalidShareOption, TooLarge

RAW_CHUNK_SIZE = 256 * 1024
_TOO_LARGE_FLAG = "_share_upload_too_large"


class UploadTooLarge(StopUpload):
    """Raised by the handler once a file passes MAX_UPLOAD_SIZE."""

    def __init__(self) -> None:
        # Do not read the rest of the body: the request is answered 413 straight away.
        super().__init__(connection_reset=True)


class ShareUploadHandler(TemporaryFileUploadHandler):
    """Spools to a temporary file while hashing and counting against MAX_UPLOAD_SIZE."""

    chunk_size = RAW_CHUNK_SIZE

    def new_file(self, *args, **kwargs) -> None:
        super().new_file(*args, **kwargs)
        self.sha256 = hashlib.sha256()
        self.received = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        self.received += len(raw_data)
        if self.received > settings.MAX_UPLOAD_SIZE:
            self.file.close()  # a NamedTemporaryFile: closing deletes it
            if self.request is not None:
                setattr(self.request, _TOO_LARGE_FLAG, True)
            raise UploadTooLarge()
        self.sha256.update(raw_data)
        self.file.write(raw_data)

    def file_complete(self, file_size: int) -> TemporaryUploadedFile:
        uploaded = super().file_complete(file_size)
        uploaded.sha256 = self.sha256.hexdigest()
        return uploaded


def upload_was_too_large(request: HttpRequest) -> bool:
    return getattr(request, _TOO_LARGE_FLAG, False)


def too_large_error() -> TooLarge:
    from django.template.defaultfilters import filesizeformat

    return TooLarge(
        f"The file is larger than the limit of {filesizeformat(settings.MAX_UPLOAD_SIZE)} "
        f"({settings.MAX_UPLOAD_SIZE} bytes)."
    )


def spool_request_body(
    request: HttpRequest, *, name: str, content_type: str
) -> TemporaryUploadedFile:
    """Read a raw request body (PUT) through the same handler as multipart uploads.

    Raises TooLarge when the body passes MAX_UPLOAD_SIZE.
    """
    handler = ShareUploadHandler(request)
    handler.new_file("file", name, content_type, None)
    stream = _body_stream(request)
    declared = request.META.get("CONTENT_LENGTH")
    received = 0
    try:
        while chunk := _read_body(stream):
            handler.receive_data_chunk(chunk, received)
            received += len(chunk)
    except UploadTooLarge:
        raise too_large_error() from None
    except BaseException:
        handler.file.close()
        raise
    # A client that goes away mid-body leaves a short read, not an error: a truncated file
    # must never become a share.
    if declared and declared.isdigit() and received != int(declared):
        handler.file.close()
        raise InvalidShareOption("body", f"ended after {received} of {declared} bytes.")
    return handler.file_complete(received)


def _read_body(stream) -> bytes:
    """The next piece of a raw body; InvalidShareOption when the client's framing fails."""
    try:
        return stream.read(RAW_CHUNK_SIZE)
    except OSError:  # UnreadablePostError, the WSGI server's "no more data": client left
        raise InvalidShareOption("body", "ended before the upload was complete.") from None
    except Exception:
        # The WSGI server decodes a chunked body as it is read, and raises its own errors
        # (gunicorn: InvalidChunkSize, ChunkMissingTerminator, ...) on broken framing.
        # Only this read is guarded, so nothing of ours is mistaken for the client's.
        raise InvalidShareOption(
            "body", "is malformed: its chunked transfer encoding could not be decoded."
        ) from None


def _body_stream(request: HttpRequest):
    # Django reads CONTENT_LENGTH bytes and treats a missing length as an empty body; a
    # chunked upload (`curl -T - URL` from a pipe) has no length, and the WSGI server has
    # already decoded the chunks into wsgi.input.
    if (
        not request.META.get("CONTENT_LENGTH")
        and "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
    ):
        return request.META["wsgi.input"]
    return request
