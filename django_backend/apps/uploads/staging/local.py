"""Staging on local disk: one file under MEDIA_ROOT/uploads-staging/, renamed into place."""

import contextlib
import os
from pathlib import Path

from django.core.files.move import file_move_safe
from django.core.files.storage import default_storage

from apps.shares.exceptions import StorageUnavailable

from ..exceptions import UploadBytesLost
from ..models import Upload
from .common import Progress, logger


class LocalStaging:
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
