"""Streaming a claimed share to the client."""

import logging

from django.core.files import File
from django.core.files.storage import default_storage
from django.http import FileResponse

from . import services
from .exceptions import ShareGone
from .filenames import attachment_disposition
from .models import Share

logger = logging.getLogger(__name__)

BLOCK_SIZE = 256 * 1024


class _PurgeOnClose(File):
    """The stored file, which purges the share's bytes once the response has closed it.

    FileResponse closes the file when the WSGI server closes the response (the download
    finished or the client went away), including on the server's sendfile path.
    """

    def __init__(self, file: File, share: Share) -> None:
        super().__init__(file, name=file.name)
        self._share_id = share.pk
        self._last = share.downloads >= share.max_downloads

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self._last:
                self._last = False
                services.share_purge(share_id=self._share_id)


def share_file_response(share: Share) -> FileResponse:
    """An attachment response that streams the bytes in blocks; never rendered inline."""
    try:
        stored = default_storage.open(share.storage_name, "rb")
    except FileNotFoundError:
        # Claimed but the bytes are gone: the reconciler marks such rows purged.
        logger.error("Share %s was claimed but its bytes are missing.", share.pk)
        raise ShareGone() from None
    response = FileResponse(_PurgeOnClose(stored, share), content_type="application/octet-stream")
    response.block_size = BLOCK_SIZE
    response.headers["Content-Length"] = str(share.size)
    response.headers["Content-Disposition"] = attachment_disposition(share.name)
    response.headers["X-Content-Type-Options"] = "nosniff"
    # If a browser ever renders it anyway, it is in a sandbox with no script and no origin.
    response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
