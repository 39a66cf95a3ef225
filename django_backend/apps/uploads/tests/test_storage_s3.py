"""Resumable uploads on S3 storage: an S3 multipart upload, against a real S3 API server.

The moto server and the per-test bucket are the shares app's fixtures (apps/shares/tests/
test_storage_s3.py, brought in by conftest.py): Django's default storage is
django-storages' S3Storage over HTTP, as with STORAGE_BACKEND=s3. The bucket is inspected
with a separate boto3 client.
"""

import hashlib
import re
import secrets
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from apps.shares.models import Share
from apps.shares.tests.test_storage_s3 import Bucket
from apps.uploads import maintenance
from apps.uploads.models import Upload
from tests.support.api import assert_api_error

from .tus import (
    OFFSET_STREAM,
    TUS,
    HeldBody,
    checksum,
    created_path,
    head,
    patch,
    upload_of,
)

pytestmark = pytest.mark.django_db

MIB = 1024**2
MULTIPART_ETAG = re.compile(r'"[0-9a-f]{32}-(\d+)"')


@pytest.fixture(autouse=True)
def five_mib_parts(settings) -> None:
    settings.AWS_S3_MULTIPART_SIZE = 5 * MIB


def multipart_uploads(bucket: Bucket) -> list[dict]:
    return bucket.client.list_multipart_uploads(Bucket=bucket.name).get("Uploads", [])


def send(client, path: str, content: bytes, pieces: list[int], start: int = 0) -> object:
    """PATCH `content` from `start` in pieces of these sizes; the last response."""
    offset = start
    response = None
    for size in pieces:
        response = patch(client, path, offset, content[offset : offset + size])
        assert response.status_code in {200, 204}, response.content
        offset += size
    return response


def test_an_upload_in_patches_of_any_size_becomes_whole_parts_and_a_small_last_one(client, bucket):
    content = secrets.token_bytes(11 * MIB + 12345)
    path = created_path(client, len(content), metadata={"filename": "video.bin"})

    # Pieces that fall across part boundaries, two of them smaller than a part.
    final = send(client, path, content, [3 * MIB, 4 * MIB, 2 * MIB + 5, 2 * MIB + 12340])

    assert final.status_code == 200
    share_object = final.json()
    assert share_object["sha256"] == hashlib.sha256(content).hexdigest()
    share = Share.objects.get()
    assert bucket.object_keys() == [share.storage_name]
    assert bucket.read(share.storage_name) == content
    # 5 MiB + 5 MiB + the rest: completed as a multipart upload of three parts.
    assert MULTIPART_ETAG.fullmatch(bucket.etag(share.storage_name)).group(1) == "3"
    assert multipart_uploads(bucket) == []


def test_bytes_short_of_a_part_wait_in_a_staging_object_between_patches(client, bucket):
    content = secrets.token_bytes(7 * MIB)
    path = created_path(client, len(content))

    send(client, path, content, [3 * MIB])

    upload = upload_of(path)
    assert (upload.offset, upload.tail_size, upload.parts.count()) == (3 * MIB, 3 * MIB, 0)
    assert bucket.object_keys() == [upload.staging_name]
    assert head(client, path)["Upload-Offset"] == str(3 * MIB)
    [in_progress] = multipart_uploads(bucket)
    assert in_progress["Key"] == upload.storage_name

    send(client, path, content, [3 * MIB], start=3 * MIB)
    upload.refresh_from_db()
    assert (upload.offset, upload.tail_size, upload.parts.count()) == (6 * MIB, MIB, 1)
    final = send(client, path, content, [MIB], start=6 * MIB)
    assert final.json()["sha256"] == hashlib.sha256(content).hexdigest()
    assert bucket.object_keys() == [Share.objects.get().storage_name]


def test_bytes_past_the_recorded_tail_do_not_count(client, bucket):
    content = secrets.token_bytes(6 * MIB)
    path = created_path(client, len(content))
    send(client, path, content, [MIB])
    upload = upload_of(path)
    # A request that died after storing more in the staging object, before recording it.
    bucket.put(upload.staging_name, content[:MIB] + b"never recorded" * 1000)

    final = send(client, path, content, [5 * MIB], start=MIB)

    share = Share.objects.get()
    assert bucket.read(share.storage_name) == content
    assert final.json()["sha256"] == hashlib.sha256(content).hexdigest()


def test_a_chunk_failing_its_checksum_leaves_no_part_behind_that_counts(client, bucket):
    content = secrets.token_bytes(11 * MIB)
    path = created_path(client, len(content))

    response = patch(
        client, path, 0, content[: 6 * MIB], headers={"Upload-Checksum": checksum("sha1", b"x")}
    )

    assert_api_error(response, 460, "checksum_mismatch")
    upload = upload_of(path)
    assert (upload.offset, upload.parts.count()) == (0, 0)
    final = send(client, path, content, [6 * MIB, 5 * MIB])
    assert final.status_code == 200
    assert bucket.read(Share.objects.get().storage_name) == content


def test_terminate_aborts_the_multipart_upload_and_deletes_the_staging_object(client, bucket):
    content = secrets.token_bytes(7 * MIB)
    path = created_path(client, len(content))
    send(client, path, content, [6 * MIB])
    assert len(multipart_uploads(bucket)) == 1

    assert client.delete(path, headers=TUS).status_code == 204

    assert multipart_uploads(bucket) == []
    assert bucket.object_keys() == []


def test_an_expired_upload_is_aborted_by_the_job(client, bucket, settings):
    settings.UPLOAD_SESSION_TTL = 3600
    content = secrets.token_bytes(7 * MIB)
    path = created_path(client, len(content))
    send(client, path, content, [6 * MIB])

    with time_machine.travel(timezone.now() + timedelta(hours=1, seconds=1)):
        result = maintenance.uploads_expire()

    assert (result.uploads, result.bytes) == (1, 6 * MIB)
    assert multipart_uploads(bucket) == []
    assert bucket.object_keys() == []
    assert upload_of(path).state == Upload.State.ENDED


def test_multipart_uploads_no_upload_names_are_aborted_once_old(client, bucket, settings):
    settings.UPLOAD_SESSION_TTL = 3600
    path = created_path(client, 10 * MIB)
    orphan = bucket.client.create_multipart_upload(Bucket=bucket.name, Key="shares/" + "a" * 32)
    staging_orphan = "uploads-staging/" + "b" * 32
    bucket.put(staging_orphan, b"left by a crash")

    maintenance.uploads_expire()
    # Too young to be taken for an orphan. (moto reports every multipart upload as begun in
    # 2010, so the same cannot be shown of the multipart upload.)
    assert bucket.object_keys() == [staging_orphan]
    with time_machine.travel(timezone.now() + timedelta(hours=1, minutes=1)):
        # The live upload's session would be expired by now too: keep it alive.
        Upload.objects.filter(pk=upload_of(path).pk).update(
            expires_at=timezone.now() + timedelta(hours=1)
        )
        maintenance.uploads_expire()

    [left] = multipart_uploads(bucket)
    assert left["UploadId"] == upload_of(path).s3_upload_id
    assert left["UploadId"] != orphan["UploadId"]
    assert bucket.object_keys() == []


def test_a_chunked_body_that_breaks_off_after_its_last_byte_completes_whole(client, bucket):
    content = secrets.token_bytes(6 * MIB + 7)
    path = created_path(client, len(content))
    # Every byte arrives, then the chunked framing breaks (no terminating chunk).
    body = HeldBody(content, hold_at=len(content), fail_with=OSError("connection reset"))
    body.release.set()

    response = client.generic(
        "PATCH",
        path,
        headers={**TUS, "Upload-Offset": "0"},
        CONTENT_TYPE=OFFSET_STREAM,
        HTTP_TRANSFER_ENCODING="chunked",
        **{"wsgi.input": body},
    )

    assert_api_error(response, 400, "invalid")
    assert head(client, path)["Upload-Offset"] == str(len(content))
    status = client.get(path).json()
    assert status["status"] == "complete"
    assert status["share"]["sha256"] == hashlib.sha256(content).hexdigest()
    assert bucket.read(Share.objects.get().storage_name) == content
