"""Streaming upload handling: hash while receiving, stop at MAX_UPLOAD_SIZE, spool to disk.

Every upload, multipart or raw, passes through `ShareUploadHandler`: it never holds a file
in memory, computes the SHA-256 as the bytes arrive, and stops reading the moment the
size limit is passed, deleting what it had spooled.

The spool is a directory the service owns (FILE_UPLOAD_TEMP_DIR, by default
MEDIA_ROOT/.uploads: on the stored files' filesystem, so that storing an upload is a
rename). A process killed mid-upload cannot delete its spool file; `stale_spools_remove`
does, for the reconciler and the start-up step. Spool files are named by SPOOL_PREFIX and
SPOOL_SUFFIX, so that nothing else in the directory is ever touched, and each is locked
(flock) by the process receiving it, so that a live upload is never taken for a leftover.
"""

import contextlib
import fcntl
import hashlib
import logging
import os
import queue
import stat
import tempfile
import threading
import weakref
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import TemporaryUploadedFile, UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpRequest
from django.utils.translation import gettext

from .exceptions import InvalidShareOption, StorageUnavailable, TooLarge

logger = logging.getLogger(__name__)

# How much of a body is read at a time, raw (PUT) or multipart (Django's parser reads in the
# handler's chunk_size): 1 MiB, gunicorn's largest recv(). gunicorn assembles each read in a
# BytesIO and copies what it read ahead on every read, so 256 KiB reads copied the same
# bytes over and over. 4 MiB reads measured no faster than 1 MiB on a busy 2-core machine
# (bench/transfer.py --compare-uploads) and held three times the memory (35 against 12 MiB
# of growth with the hashing queue below).
RAW_CHUNK_SIZE = 1024 * 1024
# Pieces waiting for the hashing thread. When it falls behind, the request thread waits
# rather than buffering: at most this many pieces (of RAW_CHUNK_SIZE) are held at once.
HASH_QUEUE_DEPTH = 4
SPOOL_PREFIX = "upload-"
SPOOL_SUFFIX = ".part"
_TOO_LARGE_FLAG = "_share_upload_too_large"


def spool_dir() -> Path:
    """FILE_UPLOAD_TEMP_DIR, or MEDIA_ROOT/.uploads when it is not set.

    Decided here rather than in settings: Django's checks want FILE_UPLOAD_TEMP_DIR to exist
    when set, and settings create no folder on the media volume. Nothing but this module
    spools uploads (FILE_UPLOAD_HANDLERS), so nothing else reads the setting.
    """
    if settings.FILE_UPLOAD_TEMP_DIR:
        return Path(settings.FILE_UPLOAD_TEMP_DIR)
    return Path(settings.MEDIA_ROOT) / ".uploads"


class BackgroundSha256:
    """SHA-256 computed by a thread of its own while the caller goes on reading and writing.

    hashlib releases the GIL while it hashes a large buffer, so the hash of one piece runs
    on another core while the request thread receives and writes the next one. The queue
    is bounded (`depth` pieces), so memory stays flat when hashing is the slower side.

    Pass immutable bytes to `update` (a reused buffer would change under the thread).
    `hexdigest()` waits for every piece; `close()` stops the thread without a result, for
    an upload given up. An instance dropped without either still ends its thread (the
    thread holds no reference to it).
    """

    def __init__(self, depth: int = HASH_QUEUE_DEPTH) -> None:
        self._hash = hashlib.sha256()
        self._pieces: queue.Queue[bytes | None] = queue.Queue(maxsize=depth)
        self._thread = threading.Thread(
            target=_hash_pieces, args=(self._hash, self._pieces), name="upload-sha256", daemon=True
        )
        self._thread.start()
        self._finalizer = weakref.finalize(self, self._pieces.put, None)

    def update(self, data: bytes) -> None:
        if not self._finalizer.alive:
            raise ValueError("the hash is finished")
        self._pieces.put(data)

    def hexdigest(self) -> str:
        self.close()
        return self._hash.hexdigest()

    def close(self) -> None:
        self._finalizer()  # the end mark, once
        self._thread.join()


def _hash_pieces(hasher: "hashlib._Hash", pieces: "queue.Queue[bytes | None]") -> None:
    while (data := pieces.get()) is not None:
        hasher.update(data)


class UploadTooLarge(StopUpload):
    """Raised by the handler once a file passes MAX_UPLOAD_SIZE."""

    def __init__(self) -> None:
        # Do not read the rest of the body: the request is answered 413 straight away.
        super().__init__(connection_reset=True)


class SpooledUpload(TemporaryUploadedFile):
    """An upload being received, in a locked file of the spool directory that is deleted
    when closed (or moved into storage, when it becomes a share)."""

    def __init__(
        self, name: str, content_type: str, size: int, charset: str | None, content_type_extra=None
    ) -> None:
        try:
            spool_dir().mkdir(mode=0o700, parents=True, exist_ok=True)
            file = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed with the upload
                prefix=SPOOL_PREFIX, suffix=SPOOL_SUFFIX, dir=spool_dir()
            )
        except OSError as exc:
            logger.error("Could not create an upload spool file in %s: %s", spool_dir(), exc)
            raise StorageUnavailable() from exc
        # Held until the file is closed or its process dies: the sweep passes locked files.
        with contextlib.suppress(OSError):  # a filesystem without locks: the grace remains
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        # UploadedFile's, not TemporaryUploadedFile's: that would open a second file.
        UploadedFile.__init__(self, file, name, content_type, size, charset, content_type_extra)


class ShareUploadHandler(FileUploadHandler):
    """Spools to the spool directory while hashing and counting against MAX_UPLOAD_SIZE."""

    chunk_size = RAW_CHUNK_SIZE

    def __init__(self, request: HttpRequest | None = None) -> None:
        super().__init__(request)
        # Django's multipart parser reads the body in the handlers' smallest chunk_size: a
        # limit below RAW_CHUNK_SIZE must not let it read that far past the limit.
        self.chunk_size = max(1, min(RAW_CHUNK_SIZE, settings.MAX_UPLOAD_SIZE + 1))

    def new_file(self, *args, **kwargs) -> None:
        super().new_file(*args, **kwargs)
        self.file = SpooledUpload(
            self.file_name, self.content_type, 0, self.charset, self.content_type_extra
        )
        self.sha256 = BackgroundSha256()
        self.received = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        self.received += len(raw_data)
        if self.received > settings.MAX_UPLOAD_SIZE:
            self.discard()
            if self.request is not None:
                setattr(self.request, _TOO_LARGE_FLAG, True)
            raise UploadTooLarge()
        self.sha256.update(raw_data)
        try:
            self.file.write(raw_data)
        except OSError as exc:  # the spool's disk is full or failing: not the client's fault
            self.discard()
            logger.error("Could not write an upload to its spool file: %s", exc)
            raise StorageUnavailable() from exc

    def upload_interrupted(self) -> None:
        # The body ended before the file did (the client hung up): delete what it sent now.
        if hasattr(self, "file"):
            self.discard()

    def discard(self) -> None:
        self.file.close()  # a NamedTemporaryFile: closing deletes it
        self.sha256.close()

    def file_complete(self, file_size: int) -> TemporaryUploadedFile:
        self.file.seek(0)
        self.file.size = file_size
        self.file.sha256 = self.sha256.hexdigest()
        return self.file


EMPTY_FILE_MESSAGE = "is empty (0 bytes): there is nothing to share."


def refuse_empty(file: UploadedFile) -> None:
    """InvalidShareOption for a 0-byte upload: a link to nothing would only puzzle."""
    if not file.size:
        raise InvalidShareOption("file", EMPTY_FILE_MESSAGE)


def discard_spooled(request: HttpRequest) -> None:
    """Close (so delete) the spool files of a multipart upload whose parsing failed, rather
    than leave them to garbage collection, which a traceback's reference cycle delays."""
    for handler in getattr(request, "_upload_handlers", None) or ():
        if isinstance(handler, ShareUploadHandler) and hasattr(handler, "file"):
            handler.discard()


def upload_was_too_large(request: HttpRequest) -> bool:
    return getattr(request, _TOO_LARGE_FLAG, False)


def too_large_error() -> TooLarge:
    from django.template.defaultfilters import filesizeformat

    return TooLarge(
        gettext("The file is larger than the limit of %(limit)s (%(bytes)d bytes).")
        % {"limit": filesizeformat(settings.MAX_UPLOAD_SIZE), "bytes": settings.MAX_UPLOAD_SIZE}
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
        # Never asks for more than one byte past MAX_UPLOAD_SIZE: an oversize body is
        # refused having read at most the limit and a byte.
        while chunk := _read_body(
            stream, min(RAW_CHUNK_SIZE, settings.MAX_UPLOAD_SIZE + 1 - received)
        ):
            handler.receive_data_chunk(chunk, received)
            received += len(chunk)
    except UploadTooLarge:
        raise too_large_error() from None
    except BaseException:
        handler.discard()
        raise
    # A client that goes away mid-body leaves a short read, not an error: a truncated file
    # must never become a share.
    if declared and declared.isdigit() and received != int(declared):
        handler.discard()
        raise InvalidShareOption("body", f"ended after {received} of {declared} bytes.")
    return handler.file_complete(received)


def _read_body(stream, size: int) -> bytes:
    """The next piece of a raw body, up to `size` bytes; InvalidShareOption when the
    client's framing fails."""
    try:
        return stream.read(size)
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


@dataclass(frozen=True)
class SpoolSweep:
    files: int
    bytes: int


def stale_spools_remove(*, older_than: datetime, dry_run: bool = False) -> SpoolSweep:
    """Delete the spool files of uploads that will never finish: last written before
    `older_than` and locked by no process (their upload's process died).

    Only regular files named like spool files are considered, never followed through a
    link: FILE_UPLOAD_TEMP_DIR may be a directory other programs use too.
    """
    cutoff = older_than.timestamp()
    files = total_bytes = 0
    try:
        entries = list(os.scandir(spool_dir()))
    except FileNotFoundError:  # no upload yet
        return SpoolSweep(files=0, bytes=0)
    except OSError as exc:
        # Not for the sweep to stop start-up or the reconciler: uploads will say it (503).
        logger.warning("Could not look into the upload spool %s: %s", spool_dir(), exc)
        return SpoolSweep(files=0, bytes=0)
    for entry in entries:
        if not (entry.name.startswith(SPOOL_PREFIX) and entry.name.endswith(SPOOL_SUFFIX)):
            continue
        try:
            status = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue  # finished or removed meanwhile
        if not stat.S_ISREG(status.st_mode) or status.st_mtime > cutoff:
            continue
        if _remove_unless_locked(Path(entry.path), dry_run=dry_run):
            files += 1
            total_bytes += status.st_size
            logger.info(
                "Reconcile: %s stale upload spool %s (%s bytes)",
                "would delete" if dry_run else "deleted",
                entry.name,
                status.st_size,
            )
    return SpoolSweep(files=files, bytes=total_bytes)


def _remove_unless_locked(path: Path, *, dry_run: bool) -> bool:
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False  # gone meanwhile (stored, or deleted by its upload), or not a file
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # its upload is still being received
        if not dry_run:
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                logger.warning("Could not delete the stale upload spool %s: %s", path, exc)
                return False
        return True
    finally:
        os.close(descriptor)
