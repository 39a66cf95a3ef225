"""tuspy (tus-py-client), a tus client nobody here wrote, against the app over real HTTP.

The app runs in threads of this process on the test database (PostgreSQL or SQLite, as the
pass goes; the `app_url` fixture); tuspy speaks to it with requests.
"""

import hashlib
import json
import secrets
from pathlib import Path

import pytest
import requests
from tusclient.client import TusClient
from tusclient.exceptions import TusCommunicationError, TusUploadFailed
from tusclient.storage.filestorage import FileStorage

from apps.shares.models import Share
from apps.uploads.models import Upload

pytestmark = pytest.mark.django_db(transaction=True)

KIB = 1024


@pytest.fixture
def a_file(tmp_path: Path) -> tuple[Path, bytes]:
    content = secrets.token_bytes(700 * KIB + 3)
    path = tmp_path / "Quarterly report (final).pdf"
    path.write_bytes(content)
    return path, content


@pytest.fixture
def tus(app_url: str) -> TusClient:
    return TusClient(f"{app_url}/api/v1/uploads/")


def test_tuspy_uploads_in_checksummed_chunks_with_the_share_options(tus, a_file, app_url):
    path, content = a_file
    uploader = tus.uploader(
        str(path),
        chunk_size=128 * KIB,
        upload_checksum=True,
        metadata={
            "filename": path.name,
            "filetype": "application/pdf",
            "expires_in": "7200",
            "max_downloads": "2",
            "password": "correct horse",
        },
    )

    uploader.upload()

    final = uploader.request
    assert final.status_code == 200
    share_object = json.loads(final.response_content)
    assert final.response_headers["onetimeshare-share-url"] == share_object["url"]
    assert final.response_headers["onetimeshare-manage-url"] == share_object["manage_url"]
    assert share_object["name"] == path.name
    assert share_object["content_type"] == "application/pdf"
    assert share_object["max_downloads"] == 2
    assert share_object["password_required"] is True
    assert share_object["sha256"] == hashlib.sha256(content).hexdigest()
    share = Share.objects.get()
    assert (share.expires_at - share.created_at).total_seconds() == 7200
    download = requests.post(
        f"{app_url}/api/v1/shares/{share_object['token']}/download",
        data={"password": "correct horse"},
        timeout=30,
    )
    assert download.status_code == 200
    assert download.content == content


def test_tuspy_resumes_an_upload_it_stopped_from_its_url_storage(tus, a_file, tmp_path):
    path, content = a_file
    url_storage = FileStorage(str(tmp_path / "tus-urls.json"))
    first = tus.uploader(str(path), chunk_size=100 * KIB, store_url=True, url_storage=url_storage)

    first.upload(stop_at=300 * KIB)

    assert Upload.objects.get().offset == 300 * KIB
    # A new client (after a reload, a crash) finds the URL again by the file's fingerprint.
    again = tus.uploader(str(path), chunk_size=100 * KIB, store_url=True, url_storage=url_storage)
    assert again.url == first.url
    assert again.offset == 300 * KIB
    again.upload()
    assert Share.objects.get().sha256 == hashlib.sha256(content).hexdigest()


def test_tuspy_gets_the_links_once_from_get_after_the_upload(tus, a_file):
    path, content = a_file
    uploader = tus.uploader(str(path), chunk_size=256 * KIB)
    uploader.upload()

    first = requests.get(uploader.url, timeout=30).json()
    second = requests.get(uploader.url, timeout=30).json()

    assert first["status"] == "complete"
    assert first["share"]["sha256"] == hashlib.sha256(content).hexdigest()
    assert first["share"]["manage_url"]
    assert second["share"] is None


def test_tuspy_reports_a_file_over_the_limit_at_creation(tus, a_file, settings):
    path, _ = a_file
    settings.MAX_UPLOAD_SIZE = 100 * KIB
    uploader = tus.uploader(str(path), chunk_size=64 * KIB)

    with pytest.raises(TusCommunicationError) as failure:
        uploader.upload()

    assert failure.value.status_code == 413
    assert Upload.objects.count() == 0


def test_tuspy_fails_cleanly_on_an_expired_upload(tus, a_file, app_url):
    path, _ = a_file
    uploader = tus.uploader(str(path), chunk_size=100 * KIB)
    uploader.upload(stop_at=100 * KIB)
    Upload.objects.update(expires_at="2000-01-01T00:00:00Z")

    with pytest.raises(TusUploadFailed) as failure:
        uploader.upload()

    assert failure.value.status_code == 410
