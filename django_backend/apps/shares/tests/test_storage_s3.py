"""The shares app on S3 storage, against a real S3 API server.

moto's server runs in a subprocess on a loopback port for the whole session; every test
gets a fresh bucket and switches Django's default storage to django-storages' S3Storage,
configured as core/settings.py configures it for STORAGE_BACKEND=s3. Uploads, downloads,
purges, the reconciler and the readiness probe then go over HTTP through boto3, the code
path production takes. The bucket is inspected with a separate boto3 client.
"""

import hashlib
import json
import re
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import boto3
import pytest
import time_machine
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.response import StreamingBody
from django.core.files import File
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import HttpResponseBase
from django.test import Client
from django.utils import timezone
from storages.backends.s3 import S3Storage

from apps.shares.downloads import claim_and_stream
from apps.shares.models import Share, ShareEvent
from apps.shares.services import claims, maintenance
from tests.support.shares import page_download

pytestmark = pytest.mark.django_db

MIB = 1024**2
REGION = "us-east-1"
ACCESS_KEY = "testing"
SECRET_KEY = "testing"
STORAGE_KEY = re.compile(r"shares/[0-9a-f]{32}")
# S3 gives an object uploaded in N parts the ETag "<md5 of the parts' md5s>-N".
MULTIPART_ETAG = re.compile(r'"[0-9a-f]{32}-(\d+)"')
SERVER_START_DEADLINE = 30.0  # seconds; moto usually answers within one or two

CONTENT = b"Quarterly numbers, do not forward.\n" * 40


# --- the S3 server and the bucket --------------------------------------------------------


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _s3_client(endpoint_url: str, **config: object):
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name=REGION,
        config=Config(s3={"addressing_style": "path"}, **config),
    )


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a moto S3 server running in a subprocess for the whole session."""
    port = _free_loopback_port()
    endpoint_url = f"http://127.0.0.1:{port}"
    # Werkzeug logs every request: to a file, since an unread pipe would fill and block.
    log_path = tmp_path_factory.mktemp("moto") / "moto_server.log"
    moto_server = Path(sys.executable).with_name("moto_server")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(moto_server), "-H", "127.0.0.1", "-p", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_answering(process, endpoint_url, log_path)
        yield endpoint_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_answering(process: subprocess.Popen, endpoint_url: str, log_path: Path) -> None:
    probe = _s3_client(
        endpoint_url, connect_timeout=0.5, read_timeout=2, retries={"max_attempts": 1}
    )
    deadline = time.monotonic() + SERVER_START_DEADLINE
    while True:
        if process.poll() is not None:
            pytest.fail(
                f"moto_server exited with {process.returncode}:\n{log_path.read_text()[-2000:]}"
            )
        try:
            probe.list_buckets()
            return
        except (BotoCoreError, ClientError) as exc:
            if time.monotonic() > deadline:
                pytest.fail(
                    f"moto_server did not answer at {endpoint_url} within "
                    f"{SERVER_START_DEADLINE}s ({exc}):\n{log_path.read_text()[-2000:]}"
                )
        time.sleep(0.05)  # poll interval, not a wait for luck: the deadline decides


def use_s3_storage(settings, *, endpoint_url: str, bucket_name: str) -> None:
    """Make S3Storage Django's default storage, with core/settings.py's options."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket_name,
                "access_key": ACCESS_KEY,
                "secret_key": SECRET_KEY,
                "region_name": REGION,
                "endpoint_url": endpoint_url,
                "addressing_style": "path",
                "location": "",
                "default_acl": None,
                "file_overwrite": True,
                "transfer_config": TransferConfig(
                    multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB, max_concurrency=2
                ),
            },
        },
    }
    # Changing STORAGES resets the lazy default_storage (django.test.signals); without
    # that, every test below would silently run against the local file system.
    assert isinstance(default_storage, S3Storage)
    assert default_storage.bucket_name == bucket_name


@dataclass(frozen=True)
class Bucket:
    """The test's bucket, seen from outside the app."""

    client: object
    name: str

    def object_keys(self, prefix: str = "") -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.name, Prefix=prefix
        )
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.name, Key=key)["Body"].read()

    def etag(self, key: str) -> str:
        return self.client.head_object(Bucket=self.name, Key=key)["ETag"]

    def put(self, key: str, content: bytes) -> None:
        self.client.put_object(Bucket=self.name, Key=key, Body=content)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.name, Key=key)


@pytest.fixture
def bucket(s3_endpoint: str, settings) -> Bucket:
    """A fresh, empty bucket, which is now Django's default storage."""
    name = f"ots-test-{secrets.token_hex(8)}"
    client = _s3_client(s3_endpoint)
    client.create_bucket(Bucket=name)
    use_s3_storage(settings, endpoint_url=s3_endpoint, bucket_name=name)
    return Bucket(client=client, name=name)


# --- talking to the app ------------------------------------------------------------------


def upload(client: Client, via: str, content: bytes = CONTENT, name: str = "report.txt") -> dict:
    """Upload through the API, as multipart POST or as a raw PUT; the share object."""
    if via == "post":
        response = client.post(
            "/api/v1/shares",
            {"file": SimpleUploadedFile(name, content, content_type="text/plain")},
        )
    else:
        response = client.put(
            f"/api/v1/shares/{name}", data=content, content_type="application/octet-stream"
        )
    assert response.status_code == 201, response.content
    return response.json()


def download(client: Client, token: str) -> HttpResponseBase:
    return client.post(f"/api/v1/shares/{token}/download")


def body_of(response: HttpResponseBase) -> bytes:
    """The whole streamed body; reading it to the end also closes the response, as a WSGI
    server would (that is when the last download's bytes are deleted)."""
    assert response.streaming
    return b"".join(response.streaming_content)


def assert_gone(response: HttpResponseBase) -> None:
    assert response.status_code == 410, response.content
    if response["Content-Type"].startswith("application/json"):
        assert json.loads(response.content)["error"]["code"] == "gone"


def share_of(share_object: dict) -> Share:
    return Share.objects.get(name=share_object["name"], sha256=share_object["sha256"])


def event_kinds(share: Share) -> list[str]:
    return list(share.events.order_by("at", "pk").values_list("kind", flat=True))


def innermost_file(file: object) -> object:
    """What a chain of django.core.files.File wrappers finally reads from."""
    while isinstance(file, File):
        file = file.file
    return file


# --- uploads -----------------------------------------------------------------------------


@pytest.mark.parametrize("via", ["post", "put"])
def test_upload_stores_the_exact_bytes_under_a_random_key_not_the_file_name(client, bucket, via):
    share_object = upload(client, via, name="salaries-2030.txt")

    [key] = bucket.object_keys()
    assert STORAGE_KEY.fullmatch(key), key
    assert "salaries" not in key
    assert share_of(share_object).storage_name == key
    assert bucket.read(key) == CONTENT
    assert share_object["sha256"] == hashlib.sha256(CONTENT).hexdigest()
    # Below the threshold it goes up in a single PUT: an ETag without a part count.
    assert not MULTIPART_ETAG.fullmatch(bucket.etag(key))


@pytest.mark.parametrize("via", ["post", "put"])
def test_upload_above_the_multipart_threshold_goes_up_in_parts(client, bucket, via):
    content = secrets.token_bytes(11 * MIB)

    share_object = upload(client, via, content=content, name="video.bin")

    [key] = bucket.object_keys()
    assert STORAGE_KEY.fullmatch(key), key
    etag = bucket.etag(key)
    parts = MULTIPART_ETAG.fullmatch(etag)
    assert parts, f"not a multipart ETag: {etag}"
    assert int(parts.group(1)) == 3  # 5 MiB + 5 MiB + 1 MiB
    assert bucket.read(key) == content
    assert share_object["size"] == len(content)


# --- downloads ---------------------------------------------------------------------------


def test_download_streams_the_object_body_from_s3_and_then_deletes_it(client, bucket):
    content = secrets.token_bytes(11 * MIB)
    share_object = upload(client, "put", content=content, name="video.bin")
    [key] = bucket.object_keys()

    response = download(client, share_object["token"])

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Length"] == str(len(content))
    chunks = list(response.streaming_content)
    assert len(chunks) > 1
    body = b"".join(chunks)
    assert len(body) == len(content)
    assert hashlib.sha256(body).hexdigest() == share_object["sha256"]
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(content).hexdigest()
    # Reading to the end closed the response: the last allowed download deletes the bytes.
    assert key not in bucket.object_keys()
    assert bucket.object_keys() == []
    share = share_of(share_object)
    assert share.downloads == 1
    assert share.consumed_at is not None
    assert share.purged_at is not None
    # The stream's position told the download finished (StreamingBody.tell()).
    assert event_kinds(share)[-2:] == [
        ShareEvent.Kind.DOWNLOAD_COMPLETED,
        ShareEvent.Kind.PURGED,
    ]


def test_download_response_reads_the_get_objects_body_not_a_copy_of_the_object(
    bucket, make_share, rf
):
    # Called below the test client, which re-wraps streaming_content and so drops
    # FileResponse.file_to_stream.
    content = secrets.token_bytes(6 * MIB)
    created = make_share(content, name="video.bin")

    request = rf.post(f"/api/v1/shares/{created.share_token}/download")
    response = claim_and_stream(request, share_token=created.share_token, password="")

    try:
        # The body of the GET itself: django-storages' S3File would first copy the whole
        # object into a temporary file (in memory, by default) before the first byte went out.
        assert isinstance(innermost_file(response.file_to_stream), StreamingBody)
        assert b"".join(response.streaming_content) == content
    finally:
        response.close()  # as the WSGI server does
    assert bucket.object_keys() == []


def test_second_download_answers_410(client, bucket):
    share_object = upload(client, "post")
    assert body_of(download(client, share_object["token"])) == CONTENT

    assert_gone(download(client, share_object["token"]))

    assert share_of(share_object).downloads == 1
    assert bucket.object_keys() == []


def test_revoke_through_the_api_deletes_the_object(client, bucket):
    share_object = upload(client, "post")
    assert len(bucket.object_keys()) == 1

    response = client.delete(f"/api/v1/manage/{share_object['manage_token']}")

    assert response.status_code == 204, response.content
    assert bucket.object_keys() == []
    share = share_of(share_object)
    assert share.revoked_at is not None
    assert share.purged_at is not None
    assert_gone(download(client, share_object["token"]))


# --- purge and reconcile -----------------------------------------------------------------


def test_shares_purge_deletes_objects_of_ended_shares_and_keeps_active_ones(
    settings, bucket, make_share
):
    active = make_share(b"still wanted").share
    settings.PURGE_AFTER_LAST_DOWNLOAD = 0  # no grace for a last download here
    consumed = make_share(b"downloaded once")
    with time_machine.travel(timezone.now() - timedelta(seconds=settings.DOWNLOAD_SESSION_TTL)):
        # Claimed a download session's window ago: the window has closed.
        claims.share_claim(share_token=consumed.share_token, open_bytes=False)
    expired = make_share(b"too late").share
    Share.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    # Revoked, but its bytes were not deleted then (storage was down, say).
    revoked = make_share(b"taken back").share
    Share.objects.filter(pk=revoked.pk).update(revoked_at=timezone.now())
    assert len(bucket.object_keys()) == 4

    result = maintenance.shares_purge()

    assert result.shares == 3
    assert bucket.object_keys() == [active.storage_name]
    for share in (consumed.share, expired, revoked):
        share.refresh_from_db()
        assert share.purged_at is not None, share.status
    active.refresh_from_db()
    assert active.purged_at is None
    assert bucket.read(active.storage_name) == b"still wanted"


@pytest.mark.parametrize(("grace", "deleted"), [(0, True), (3600, False)])
def test_reconcile_deletes_an_object_with_no_row_only_after_the_grace_period(
    bucket, make_share, grace, deleted
):
    kept = make_share(b"has a row").share
    orphan = f"shares/{secrets.token_hex(16)}"
    bucket.put(orphan, b"no row: its upload never committed")

    result = maintenance.storage_reconcile(grace=grace)

    assert result.orphan_files == (1 if deleted else 0)
    assert result.missing_files == 0
    assert (orphan in bucket.object_keys()) is not deleted
    assert kept.storage_name in bucket.object_keys()
    kept.refresh_from_db()
    assert kept.purged_at is None


def test_object_deleted_behind_the_apps_back_answers_410_and_reconcile_marks_it_purged(
    client, bucket
):
    share_object = upload(client, "post")
    [key] = bucket.object_keys()
    bucket.delete(key)

    # Before the reconciler ran: a 410, and nothing counted.
    assert_gone(download(client, share_object["token"]))
    share = share_of(share_object)
    assert share.downloads == 0
    assert share.consumed_at is None
    assert ShareEvent.Kind.DOWNLOAD_STARTED not in event_kinds(share)

    result = maintenance.storage_reconcile(grace=0)

    assert result.missing_files == 1
    share.refresh_from_db()
    assert share.purged_at is not None
    assert event_kinds(share)[-1] == ShareEvent.Kind.PURGED
    assert_gone(client.get(f"/s/{share_object['token']}"))
    assert_gone(client.get(f"/api/v1/shares/{share_object['token']}"))
    assert_gone(download(client, share_object["token"]))
    share.refresh_from_db()
    assert share.downloads == 0


# --- readiness ---------------------------------------------------------------------------


def test_readiness_reports_s3_storage_ok_and_leaves_no_probe_behind(client, bucket):
    response = client.get("/health/ready/")

    assert response.status_code == 200, response.content
    storage = response.json()["checks"]["storage"]
    assert storage["ok"] is True, storage
    assert bucket.object_keys() == []


def test_readiness_answers_503_when_the_bucket_does_not_exist(client, settings, s3_endpoint):
    use_s3_storage(
        settings, endpoint_url=s3_endpoint, bucket_name=f"never-created-{secrets.token_hex(8)}"
    )

    response = client.get("/health/ready/")

    assert response.status_code == 503, response.content
    body = response.json()
    assert body["status"] == "fail"
    assert body["checks"]["storage"]["ok"] is False
    assert "NoSuchBucket" in body["checks"]["storage"]["error"]
    assert body["checks"]["database"]["ok"] is True


def test_an_unreachable_store_answers_503_and_counts_nothing(client, settings, media_root):
    # A closed port: the store is down.
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": "down",
                "access_key": "testing",
                "secret_key": "testing",
                "region_name": "us-east-1",
                "endpoint_url": "http://127.0.0.1:1",
                "addressing_style": "path",
                "file_overwrite": True,
                "client_config": Config(connect_timeout=1, retries={"max_attempts": 1}),
            },
        },
    }

    response = client.post("/api/v1/shares", {"file": SimpleUploadedFile("a.txt", b"abc")})

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable"
    assert Share.objects.count() == 0


def test_a_racer_that_finds_the_object_gone_gets_410_not_503(client, bucket, make_share):
    # The race: a loser is authorized and opens the object (a HEAD that succeeds), then the
    # winner's download deletes it, and the loser's GET fails with S3's NoSuchKey.
    from apps.shares.storage import storage_says_missing

    created = make_share(b"one time", max_downloads=1)
    s3 = boto3.client(
        "s3",
        endpoint_url=default_storage.endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    with pytest.raises(ClientError) as missing:
        s3.get_object(Bucket=default_storage.bucket_name, Key="shares/" + "0" * 32)

    assert storage_says_missing(missing.value)
    assert (
        b"".join(page_download(client, f"/s/{created.share_token}").streaming_content)
        == b"one time"
    )
    assert page_download(client, f"/s/{created.share_token}").status_code == 410
