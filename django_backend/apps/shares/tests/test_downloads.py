"""How a download leaves the app: the WSGI server's sendfile path, or nginx offload."""

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.test import RequestFactory

from apps.shares.models import DownloadSession, Share
from tests.support.shares import page_download, stored_files

pytestmark = pytest.mark.django_db


class RecordingFileWrapper:
    """Stands in for the WSGI server's `wsgi.file_wrapper` (gunicorn's uses sendfile)."""

    def __init__(self, filelike, block_size: int) -> None:
        self.filelike = filelike
        self.block_size = block_size

    def __iter__(self):
        while chunk := self.filelike.read(self.block_size):
            yield chunk

    def close(self) -> None:
        self.filelike.close()


# Calling the WSGI handler fires request_started, which closes old connections: the test
# needs committed data and its own connections.
@pytest.mark.django_db(transaction=True)
def test_a_local_download_reaches_the_wsgi_servers_file_wrapper_unwrapped(make_share, media_root):
    created = make_share(b"sent by the kernel", name="fast.bin")
    environ = RequestFactory().post(f"/api/v1/shares/{created.share_token}/download").environ
    environ["wsgi.file_wrapper"] = RecordingFileWrapper
    statuses = []

    result = WSGIHandler()(environ, lambda status, headers: statuses.append(status))

    # No middleware replaced the stream: the server gets the file itself, with a real file
    # descriptor for sendfile().
    assert statuses == ["200 OK"]
    assert isinstance(result, RecordingFileWrapper)
    assert result.filelike.fileno() > 0
    assert b"".join(result) == b"sent by the kernel"
    result.close()
    assert stored_files(media_root) == []
    assert Share.objects.get().purged_at is not None


def test_with_nginx_offload_the_app_sends_headers_and_no_bytes(client, make_share, settings):
    settings.DOWNLOAD_OFFLOAD = "nginx"
    created = make_share(b"sent by nginx", name="report.pdf")
    storage_name = created.share.storage_name

    response = page_download(client, f"/s/{created.share_token}")

    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["X-Accel-Redirect"] == f"/_protected/{storage_name}"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "no-store" in response.headers["Cache-Control"]
    assert response.headers["Content-Security-Policy"].startswith("sandbox")
    share = Share.objects.get()
    assert share.downloads == 1
    assert page_download(client, f"/s/{created.share_token}").status_code == 410


def test_with_nginx_offload_a_session_range_is_handed_over_with_the_apps_validators(
    client, make_share, settings
):
    # nginx answers the Range itself, after the redirect: it keeps the app's Accept-Ranges
    # and adds its own on the whole file, so the app leaves it out; ETag and Last-Modified
    # it drops, and the template sets them again from these.
    settings.DOWNLOAD_OFFLOAD = "nginx"
    created = make_share(b"0123456789" * 10)
    session_url = client.post(f"/s/{created.share_token}").headers["Location"]

    response = client.get(session_url, HTTP_RANGE="bytes=90-")

    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["X-Accel-Redirect"] == f"/_protected/{created.share.storage_name}"
    assert "Accept-Ranges" not in response.headers
    assert response.headers["ETag"] == f'"{created.share.sha256}"'
    assert "Last-Modified" in response.headers
    assert DownloadSession.objects.get().bytes_served == 10  # the range, reserved


def test_with_nginx_offload_missing_bytes_count_nothing(client, make_share, settings, media_root):
    settings.DOWNLOAD_OFFLOAD = "nginx"
    created = make_share(b"lost")
    (media_root / created.share.storage_name).unlink()

    response = page_download(client, f"/s/{created.share_token}")

    assert response.status_code == 410
    assert Share.objects.get().downloads == 0
