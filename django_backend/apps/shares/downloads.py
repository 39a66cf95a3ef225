"""Streaming a claimed share to the client."""

import logging

from django.core.files import File
from django.core.files.storage import default_storage
from django.http import FileResponse

from . import services
from .clients import SYSTEM, Actor
from .exceptions import ShareGone
from .filenames import attachment_disposition
from .models import Share

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
        super().__init__(file, name=file.name)
        self._share_id = share.pk
        self._size = share.size
        self._actor = actor
        self._reported = False

    def close(self) -> None:
        try:
            position = self.file.tell()
        except (OSError, ValueError):
            position = 0
        try:
            super().close()
        finally:
            if not self._reported:
                self._reported = True
                services.share_download_finished(
                    share_id=self._share_id, completed=position >= self._size, actor=self._actor
                )


def share_file_response(share: Share, actor: Actor = SYSTEM) -> FileResponse:
    """An attachment response that streams the bytes in blocks; never rendered inline."""
    try:
        stored = default_storage.open(share.storage_name, "rb")
    except FileNotFoundError:
        # Claimed but the bytes are gone: the reconciler marks such rows purged.
        logger.error("Share %s was claimed but its bytes are missing.", share.pk)
        raise ShareGone() from None
    response = FileResponse(
        _TrackedFile(stored, share, actor), content_type="application/octet-stream"
    )
    response.block_size = BLOCK_SIZE
    response.headers["Content-Length"] = str(share.size)
    response.headers["Content-Disposition"] = attachment_disposition(share.name)
    response.headers["X-Content-Type-Options"] = "nosniff"
    # If a browser ever renders it anyway, it is in a sandbox with no script and no origin.
    response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
