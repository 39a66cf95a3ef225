"""tus 1.0.0 conformance of /api/v1/uploads/: core, creation, creation-with-upload,
termination, expiration and checksum, status by status and header by header.

Through the whole stack (URL, view, service, database, files in the per-test MEDIA_ROOT);
nothing of ours is mocked. Time is moved with time_machine, never waited for.
"""

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import time_machine
from django.test import Client

from apps.shares.models import Share
from apps.uploads.models import Upload
from tests.support.api import SHARE_FIELDS, assert_api_error

from .tus import (
    CREATE_URL,
    OFFSET_STREAM,
    TUS,
    checksum,
    create,
    created_path,
    head,
    patch,
)

pytestmark = pytest.mark.django_db

CONTENT = b"The minutes of the board meeting, first draft.\n" * 100
NOW = datetime(2030, 3, 1, 12, 0, 0, tzinfo=UTC)


def staged_files(media_root: Path) -> list[Path]:
    staging = media_root / "uploads-staging"
    return sorted(p for p in staging.iterdir() if p.is_file()) if staging.exists() else []


def stored_share_files(media_root: Path) -> list[Path]:
    shares = media_root / "shares"
    return sorted(p for p in shares.rglob("*") if p.is_file()) if shares.exists() else []


# --- core: OPTIONS, HEAD, PATCH ----------------------------------------------------------


def test_options_announces_version_extensions_size_limit_and_checksums(client, settings):
    settings.MAX_UPLOAD_SIZE = 123456

    response = client.options(CREATE_URL)

    assert response.status_code == 204
    assert response["Tus-Version"] == "1.0.0"
    assert response["Tus-Resumable"] == "1.0.0"
    assert response["Tus-Extension"] == (
        "creation,creation-with-upload,termination,expiration,checksum"
    )
    assert response["Tus-Max-Size"] == "123456"
    assert set(response["Tus-Checksum-Algorithm"].split(",")) == {"sha1", "sha256", "md5"}


def test_options_needs_no_tus_resumable_header_and_answers_on_an_upload_too(client):
    path = created_path(client, 10)

    response = client.options(path)

    assert response.status_code == 204
    assert response["Tus-Version"] == "1.0.0"


def test_head_reports_offset_length_expiry_and_forbids_caching(client):
    with time_machine.travel(NOW, tick=False):
        path = created_path(client, len(CONTENT))
        patch(client, path, 0, CONTENT[:1000])

        response = head(client, path)

    assert response.status_code == 200
    assert response["Upload-Offset"] == "1000"
    assert response["Upload-Length"] == str(len(CONTENT))
    assert response["Cache-Control"] == "no-store"
    assert response["Tus-Resumable"] == "1.0.0"
    assert parsedate_to_datetime(response["Upload-Expires"]) == NOW + timedelta(days=1)
    assert response.content == b""


def test_head_echoes_the_metadata_but_never_the_password(client):
    path = created_path(
        client,
        10,
        metadata={"filename": "plan.pdf", "max_downloads": "3", "password": "hunter2"},
    )

    echoed = head(client, path)["Upload-Metadata"]

    pairs = dict(pair.split(" ") for pair in echoed.split(","))
    assert set(pairs) == {"filename", "expires_in", "max_downloads"}
    assert "password" not in echoed
    assert "aHVudGVyMg" not in echoed  # base64 of the password


def test_patch_appends_at_the_offset_and_answers_204_with_the_new_offset(client, media_root):
    path = created_path(client, len(CONTENT))

    first = patch(client, path, 0, CONTENT[:100])
    second = patch(client, path, 100, CONTENT[100:250])

    assert (first.status_code, first["Upload-Offset"]) == (204, "100")
    assert (second.status_code, second["Upload-Offset"]) == (204, "250")
    assert second["Tus-Resumable"] == "1.0.0"
    assert "Upload-Expires" in second
    [staged] = staged_files(media_root)
    assert staged.read_bytes() == CONTENT[:250]


def test_patch_at_another_offset_is_409_and_changes_nothing(client, media_root):
    path = created_path(client, len(CONTENT))
    patch(client, path, 0, CONTENT[:100])

    for wrong in (0, 50, 101):
        response = patch(client, path, wrong, CONTENT[wrong : wrong + 10])
        assert_api_error(response, 409, "conflict")
        assert response["Tus-Resumable"] == "1.0.0"

    assert head(client, path)["Upload-Offset"] == "100"
    [staged] = staged_files(media_root)
    assert staged.read_bytes() == CONTENT[:100]


@pytest.mark.parametrize(
    "content_type", ["application/octet-stream", "text/plain", "multipart/form-data; boundary=x"]
)
def test_patch_with_another_content_type_is_415(client, content_type):
    path = created_path(client, 10)

    response = patch(client, path, 0, b"0123456789", content_type=content_type)

    assert_api_error(response, 415, "unsupported_media_type")
    assert head(client, path)["Upload-Offset"] == "0"


@pytest.mark.parametrize("version", [None, "0.2.2", "2.0.0", ""])
def test_a_request_without_tus_1_0_0_is_412_naming_the_version_and_not_processed(client, version):
    path = created_path(client, 10)
    headers = {} if version is None else {"Tus-Resumable": version}

    responses = [
        client.generic(
            "PATCH",
            path,
            data=b"0123456789",
            content_type=OFFSET_STREAM,
            headers={"Upload-Offset": "0", **headers},
        ),
        client.head(path, headers=headers),
        client.delete(path, headers=headers),
        client.post(CREATE_URL, headers={"Upload-Length": "10", **headers}),
    ]

    for response in responses:
        assert response.status_code == 412
        assert response["Tus-Version"] == "1.0.0"
        assert response["Tus-Resumable"] == "1.0.0"
    assert_api_error(responses[0], 412, "unsupported_version")
    assert head(client, path)["Upload-Offset"] == "0"
    assert Upload.objects.count() == 1


def test_an_unknown_upload_is_404_for_every_method(client):
    path = "/api/v1/uploads/" + "A" * 32

    assert_api_error(patch(client, path, 0, b"x"), 404, "not_found")
    assert_api_error(client.delete(path, headers=TUS), 404, "not_found")
    assert_api_error(client.get(path), 404, "not_found")
    response = head(client, path)
    assert response.status_code == 404
    assert "Upload-Offset" not in response
    assert response["Tus-Resumable"] == "1.0.0"


def test_an_expired_upload_is_410_and_cannot_be_resumed(client, settings):
    settings.UPLOAD_SESSION_TTL = 3600
    with time_machine.travel(NOW, tick=False):
        path = created_path(client, len(CONTENT))
        patch(client, path, 0, CONTENT[:100])
    with time_machine.travel(NOW + timedelta(seconds=3600), tick=False):
        assert_api_error(patch(client, path, 100, CONTENT[100:200]), 410, "gone")
        response = head(client, path)
        assert response.status_code == 410
        assert "Upload-Offset" not in response


def test_every_write_moves_the_expiry_on(client, settings):
    settings.UPLOAD_SESSION_TTL = 3600
    with time_machine.travel(NOW, tick=False):
        path = created_path(client, len(CONTENT))
    with time_machine.travel(NOW + timedelta(seconds=3000), tick=False):
        response = patch(client, path, 0, CONTENT[:100])
        assert parsedate_to_datetime(response["Upload-Expires"]) == NOW + timedelta(seconds=6600)
    with time_machine.travel(NOW + timedelta(seconds=6000), tick=False):
        assert patch(client, path, 100, CONTENT[100:200]).status_code == 204


def test_x_http_method_override_turns_a_post_into_a_patch_or_delete(client):
    path = created_path(client, len(CONTENT))

    response = client.generic(
        "POST",
        path,
        data=CONTENT[:10],
        content_type=OFFSET_STREAM,
        headers={**TUS, "Upload-Offset": "0", "X-HTTP-Method-Override": "PATCH"},
    )
    assert (response.status_code, response["Upload-Offset"]) == (204, "10")

    response = client.generic("POST", path, headers={**TUS, "X-HTTP-Method-Override": "DELETE"})
    assert response.status_code == 204
    assert head(client, path).status_code == 404


def test_other_methods_are_405_with_allow(client):
    path = created_path(client, 10)

    response = client.put(path, data=b"x", headers=TUS)

    assert_api_error(response, 405, "invalid")
    assert "PATCH" in response["Allow"]
    assert_api_error(client.get(CREATE_URL), 405, "invalid")


# --- creation ----------------------------------------------------------------------------


def test_post_creates_an_upload_at_an_absolute_location(client):
    response = create(client, len(CONTENT), metadata={"filename": "minutes.txt"})

    assert response.status_code == 201
    assert response["Tus-Resumable"] == "1.0.0"
    location = response["Location"]
    assert location.startswith("http://testserver/api/v1/uploads/")
    assert "Upload-Expires" in response
    assert response["Upload-Offset"] == "0"
    assert head(client, urlsplit(location).path)["Upload-Offset"] == "0"


def test_the_location_comes_from_site_url_when_set(client, settings):
    settings.SITE_URL = "https://files.example.org"

    response = create(client, 10)

    assert response["Location"].startswith("https://files.example.org/api/v1/uploads/")


def test_the_upload_id_is_a_long_secret_stored_only_as_its_hash(client):
    location = create(client, 10)["Location"]

    upload_id = location.rsplit("/", 1)[-1]
    assert len(upload_id) >= 22  # url-safe base64: 128 bits and more
    assert re.fullmatch(r"[A-Za-z0-9_-]+", upload_id)
    upload = Upload.objects.get()
    assert upload.id_hash == hashlib.sha256(upload_id.encode()).hexdigest()
    assert upload_id not in json.dumps(list(Upload.objects.values()), default=str)


def test_the_creation_url_answers_without_its_trailing_slash(client):
    response = client.generic("POST", "/api/v1/uploads", headers={**TUS, "Upload-Length": "5"})

    assert response.status_code == 201


@pytest.mark.parametrize(
    ("headers", "field"),
    [
        ({}, "Upload-Length"),
        ({"Upload-Length": "-1"}, "Upload-Length"),
        ({"Upload-Length": "ten"}, "Upload-Length"),
        ({"Upload-Defer-Length": "1"}, "Upload-Defer-Length"),
        ({"Upload-Length": "5", "Upload-Metadata": "filename not-base64!"}, "Upload-Metadata"),
        ({"Upload-Length": "5", "Upload-Metadata": "name YQ==,name Yg=="}, "Upload-Metadata"),
        ({"Upload-Length": "5", "Upload-Metadata": "max_downloads dGhyZWU="}, "Upload-Metadata"),
        ({"Upload-Length": "5", "Upload-Metadata": "max_downloads MA=="}, "max_downloads"),
        ({"Upload-Length": "5", "Upload-Metadata": "max_downloads MTAx"}, "max_downloads"),
        ({"Upload-Length": "5", "Upload-Metadata": "expires_in MQ=="}, "expires_in"),
    ],
)
def test_creation_with_bad_headers_or_options_is_400_naming_them(client, headers, field):
    response = client.generic("POST", CREATE_URL, headers={**TUS, **headers})

    message = assert_api_error(response, 400, "invalid")
    assert field in message
    assert response["Tus-Resumable"] == "1.0.0"
    assert Upload.objects.count() == 0


def test_creation_past_max_upload_size_is_413(client, settings, media_root):
    settings.MAX_UPLOAD_SIZE = 1000

    response = create(client, 1001)

    assert_api_error(response, 413, "too_large")
    assert response["Tus-Resumable"] == "1.0.0"
    assert Upload.objects.count() == 0
    assert staged_files(media_root) == []
    assert create(client, 1000).status_code == 201


def test_unknown_metadata_keys_are_ignored(client):
    response = create(client, 5, metadata={"filename": "a.txt", "relativePath": "x/a.txt"})

    assert response.status_code == 201


# --- completion: the share and its links -------------------------------------------------


def test_the_last_patch_creates_the_share_and_returns_its_links(client, media_root):
    path = created_path(
        client,
        len(CONTENT),
        metadata={
            "filename": "minutes.txt",
            "filetype": "text/plain",
            "expires_in": "3600",
            "max_downloads": "2",
            "password": "s3cret",
        },
    )
    patch(client, path, 0, CONTENT[:1000])

    response = patch(client, path, 1000, CONTENT[1000:])

    assert response.status_code == 200
    assert response["Upload-Offset"] == str(len(CONTENT))
    assert response["Tus-Resumable"] == "1.0.0"
    share_object = response.json()
    assert set(share_object) >= SHARE_FIELDS
    assert response["OneTimeShare-Share-Url"] == share_object["url"]
    assert response["OneTimeShare-Manage-Url"] == share_object["manage_url"]
    assert share_object["name"] == "minutes.txt"
    assert share_object["content_type"] == "text/plain"
    assert share_object["size"] == len(CONTENT)
    assert share_object["sha256"] == hashlib.sha256(CONTENT).hexdigest()
    assert share_object["max_downloads"] == 2
    assert share_object["password_required"] is True
    share = Share.objects.get()
    assert Path(media_root / share.storage_name).read_bytes() == CONTENT
    assert staged_files(media_root) == []
    # The link works, with the password given at creation.
    download = client.post(
        f"/api/v1/shares/{share_object['token']}/download", {"password": "s3cret"}
    )
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == CONTENT


def test_the_share_object_is_the_one_post_api_v1_shares_returns(client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    direct = client.post(
        "/api/v1/shares", {"file": SimpleUploadedFile("a.txt", b"abc", content_type="text/plain")}
    ).json()
    path = created_path(client, 3, metadata={"filename": "a.txt", "filetype": "text/plain"})
    resumable = patch(client, path, 0, b"abc").json()

    assert set(resumable) == set(direct)
    for field in ("expires_at", "created_at"):
        assert resumable[field].endswith("Z")
    for field in ("name", "size", "sha256", "content_type", "status", "downloads_remaining"):
        assert resumable[field] == direct[field]


def test_the_share_expires_in_counts_from_completion(client):
    with time_machine.travel(NOW, tick=False):
        path = created_path(client, 10, metadata={"expires_in": "600"})
    with time_machine.travel(NOW + timedelta(hours=2), tick=False):
        patch(client, path, 0, b"0123456789")

    assert Share.objects.get().expires_at == NOW + timedelta(hours=2, seconds=600)


def test_get_returns_the_links_once_then_only_the_status(client):
    path = created_path(client, 10, metadata={"filename": "a.txt"})
    before = client.get(path).json()
    final = patch(client, path, 0, b"0123456789").json()

    first = client.get(path)
    second = client.get(path)

    assert before == {
        "status": "uploading",
        "offset": 0,
        "length": 10,
        "expires_at": before["expires_at"],
        "share": None,
    }
    assert first.status_code == 200
    assert first["Cache-Control"] == "no-store"
    assert first.json()["status"] == "complete"
    assert first.json()["share"] == final
    assert second.json()["share"] is None
    assert second.json()["status"] == "complete"
    assert Upload.objects.get().sealed_manage_token == ""


def test_a_completed_upload_keeps_no_readable_token(client):
    path = created_path(client, 10, metadata={"password": "s3cret"})
    share_object = patch(client, path, 0, b"0123456789").json()

    row = json.dumps(list(Upload.objects.values()), default=str)
    assert share_object["manage_token"] not in row
    assert share_object["token"] not in row
    assert Upload.objects.get().password == ""


def test_a_patch_at_the_end_of_a_completed_upload_is_204_without_links(client):
    path = created_path(client, 10)
    patch(client, path, 0, b"0123456789")

    again = patch(client, path, 10, b"")

    assert (again.status_code, again["Upload-Offset"]) == (204, "10")
    assert "OneTimeShare-Share-Url" not in again
    assert_api_error(patch(client, path, 5, b"56789"), 409, "conflict")
    assert Share.objects.count() == 1


def test_a_body_past_upload_length_is_413_and_discarded(client, media_root):
    path = created_path(client, 10)
    patch(client, path, 0, b"01234")

    response = patch(client, path, 5, b"56789abc")

    assert_api_error(response, 413, "too_large")
    assert head(client, path)["Upload-Offset"] == "5"
    assert staged_files(media_root)[0].read_bytes() == b"01234"


def test_an_empty_file_is_refused_at_creation(client, media_root):
    response = create(client, 0, metadata={"filename": "empty.txt"})

    message = assert_api_error(response, 400, "invalid")
    assert "empty" in message
    assert Upload.objects.count() == 0
    assert staged_files(media_root) == []


# --- creation-with-upload ----------------------------------------------------------------


def test_creation_with_upload_stores_the_first_bytes(client):
    response = create(client, len(CONTENT), body=CONTENT[:500])

    assert response.status_code == 201
    assert response["Upload-Offset"] == "500"
    path = urlsplit(response["Location"]).path
    assert head(client, path)["Upload-Offset"] == "500"
    assert patch(client, path, 500, CONTENT[500:]).status_code == 200
    assert Share.objects.get().sha256 == hashlib.sha256(CONTENT).hexdigest()


def test_creation_with_the_whole_file_returns_the_share(client):
    response = create(client, len(CONTENT), body=CONTENT, metadata={"filename": "m.txt"})

    assert response.status_code == 201
    assert response["Location"]
    assert response.json()["sha256"] == hashlib.sha256(CONTENT).hexdigest()
    assert response["OneTimeShare-Manage-Url"] == response.json()["manage_url"]


def test_creation_with_a_body_of_another_type_is_415(client):
    response = client.generic(
        "POST",
        CREATE_URL,
        data=b"abc",
        content_type="text/plain",
        headers={**TUS, "Upload-Length": "3"},
    )

    assert_api_error(response, 415, "unsupported_media_type")
    assert Upload.objects.count() == 0


def test_creation_with_a_body_longer_than_upload_length_is_413(client):
    response = create(client, 3, body=b"abcd")

    assert_api_error(response, 413, "too_large")
    assert Upload.objects.count() == 0


def test_creation_with_a_first_chunk_failing_its_checksum_answers_its_location_at_0(client):
    response = create(
        client, 10, body=b"01234", headers={"Upload-Checksum": checksum("sha1", b"other")}
    )

    assert response.status_code == 201
    assert response["Upload-Offset"] == "0"
    assert head(client, urlsplit(response["Location"]).path)["Upload-Offset"] == "0"


# --- checksum ----------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "md5"])
def test_a_chunk_with_a_matching_checksum_is_stored(client, algorithm):
    path = created_path(client, len(CONTENT))

    response = patch(
        client,
        path,
        0,
        CONTENT[:300],
        headers={"Upload-Checksum": checksum(algorithm, CONTENT[:300])},
    )

    assert (response.status_code, response["Upload-Offset"]) == (204, "300")


def test_a_chunk_failing_its_checksum_is_460_and_discarded(client, media_root):
    path = created_path(client, len(CONTENT))
    patch(client, path, 0, CONTENT[:100])

    response = patch(
        client,
        path,
        100,
        CONTENT[100:300],
        headers={"Upload-Checksum": checksum("sha1", b"something else")},
    )

    assert_api_error(response, 460, "checksum_mismatch")
    assert response.reason_phrase == "Checksum Mismatch"
    assert response["Tus-Resumable"] == "1.0.0"
    assert head(client, path)["Upload-Offset"] == "100"
    assert staged_files(media_root)[0].read_bytes() == CONTENT[:100]
    # Sent again, right this time, it is taken.
    retry = patch(
        client,
        path,
        100,
        CONTENT[100:300],
        headers={"Upload-Checksum": checksum("sha1", CONTENT[100:300])},
    )
    assert (retry.status_code, retry["Upload-Offset"]) == (204, "300")


@pytest.mark.parametrize(
    "value",
    ["crc32 AAAAAA==", "SHA1 Kq5sNclPz7QV2+lfQIuc6R7oRu0=", "sha1 not base64!", "sha1 AAAA"],
)
def test_an_unsupported_or_malformed_checksum_is_400_and_nothing_is_stored(client, value):
    path = created_path(client, 20)

    response = patch(client, path, 0, b"hello world", headers={"Upload-Checksum": value})

    message = assert_api_error(response, 400, "invalid")
    assert "Upload-Checksum" in message
    assert head(client, path)["Upload-Offset"] == "0"


# --- termination -------------------------------------------------------------------------


def test_delete_terminates_the_upload_and_removes_its_bytes(client, media_root):
    path = created_path(client, len(CONTENT))
    patch(client, path, 0, CONTENT[:100])
    assert len(staged_files(media_root)) == 1

    response = client.delete(path, headers=TUS)

    assert response.status_code == 204
    assert response["Tus-Resumable"] == "1.0.0"
    assert staged_files(media_root) == []
    assert Upload.objects.count() == 0
    assert head(client, path).status_code == 404
    assert_api_error(patch(client, path, 100, CONTENT[100:200]), 404, "not_found")


def test_delete_of_a_completed_upload_forgets_it_and_leaves_the_share(client, media_root):
    path = created_path(client, 10)
    patch(client, path, 0, b"0123456789")

    assert client.delete(path, headers=TUS).status_code == 204

    assert Upload.objects.count() == 0
    share = Share.objects.get()
    assert share.status == Share.Status.ACTIVE
    assert len(stored_share_files(media_root)) == 1


# --- who may upload ----------------------------------------------------------------------


def test_anonymous_uploads_can_be_turned_off(client, settings):
    settings.ALLOW_ANONYMOUS_UPLOADS = False

    assert_api_error(create(client, 10), 401, "unauthorized")


def test_a_bad_api_token_is_401(client):
    response = create(client, 10, headers={"Authorization": "Bearer not-a-token"})

    assert_api_error(response, 401, "unauthorized")


def test_a_session_client_must_send_its_csrf_token(django_user_model):
    user = django_user_model.objects.create_user(username="ada", password="pw-long-enough-1")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)

    assert_api_error(create(client, 10), 403, "forbidden")
    client.get("/")  # a page sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    response = create(client, 10, headers={"X-CSRFToken": token})
    assert response.status_code == 201
    assert Upload.objects.get().owner == user
