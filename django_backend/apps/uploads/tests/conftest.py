"""Fixtures of the uploads tests."""

import threading
from collections.abc import Iterator

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler

# The shares app's real S3 API server (moto, in a subprocess) and a fresh bucket per test.
from apps.shares.tests.test_storage_s3 import bucket, s3_endpoint  # noqa: F401


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def app_url(transactional_db) -> Iterator[str]:
    """The app over real HTTP on loopback, served by threads of this process on the test
    database (PostgreSQL or SQLite, as the pass goes), for clients that need a URL.

    Not pytest-django's live_server: its media-files handler cannot start with MEDIA_URL
    None, as the project sets it (uploads are never served as static files).
    """
    server = ThreadedWSGIServer(("127.0.0.1", 0), _QuietHandler, allow_reuse_address=False)
    server.set_app(WSGIHandler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
