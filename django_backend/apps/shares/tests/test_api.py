"""The JSON API v1 exactly as shared/design.md §4 defines it.

Every test goes through the whole stack (URL, view, service, database, files in the
per-test MEDIA_ROOT); nothing of ours is mocked. Time is moved with time_machine, never
waited for.
"""

import hashlib
import json
import re
import secrets
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import HttpResponseBase
from django.test import Client

from tests.support.api import SHARE_FIELDS, assert_api_error
from tests.support.shares import stored_files

pytestmark = pytest.mark.django_db


CONTENT = b"Quarterly numbers, do not forward.\n" * 40
NOW = datetime(2030, 3, 1, 12, 0, 0, tzinfo=UTC)
PASSWORD = "correct horse battery staple"

# §4: the public metadata of GET /api/v1/shares/<token>.
META_FIELDS = {
    "name",
    "size",
    "sha256",
    "content_type",
    "expires_at",
    "downloads_remaining",
    "password_required",
}
SECRET_FIELDS = {"token", "url", "manage_token", "manage_url"}
ISO_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z")


def frozen_at(moment: datetime):
    return time_machine.travel(moment, tick=False)


def utc(value: str) -> datetime:
    """A timestamp from the API: UTC ISO 8601 ending in Z, as §4 promises."""
    assert isinstance(value, str)
    assert ISO_UTC.fullmatch(value), f"not UTC ISO 8601 with Z: {value!r}"
    return datetime.fromisoformat(value)


def upload(
    client: Client,
    content: bytes = CONTENT,
    name: str = "report.txt",
    **options: object,
) -> dict:
    """POST /api/v1/shares as multipart; the share object of the 201."""
    data = {"file": SimpleUploadedFile(name, content, content_type="text/plain")}
    data.update({key: str(value) for key, value in options.items()})
    response = client.post("/api/v1/shares", data)
    assert response.status_code == 201, response.content
    assert response["Content-Type"].startswith("application/json")
    return response.json()


def download(client: Client, token: str, **kwargs: object) -> HttpResponseBase:
    return client.post(f"/api/v1/shares/{token}/download", **kwargs)


def body_of(response: HttpResponseBase) -> bytes:
    """The whole body; reading a streamed download to the end also closes it, as a WSGI
    server would (that is when the last download's bytes are deleted)."""
    if response.streaming:
        return b"".join(response.streaming_content)
    return response.content


def assert_downloads(client: Client, token: str, content: bytes = CONTENT, **kwargs) -> None:
    response = download(client, token, **kwargs)
    assert response.status_code == 200, response.content if not response.streaming else ""
    assert body_of(response) == content


# --- creating ----------------------------------------------------------------------------


def test_multipart_upload_answers_201_with_every_field_of_the_share_object(client):
    with frozen_at(NOW):
        share = upload(client, name="report.txt", expires_in=3600, max_downloads=3)

    assert set(share) >= SHARE_FIELDS
    assert isinstance(share["token"], str)
    assert len(share["token"]) >= 16
    assert isinstance(share["manage_token"], str)
    assert len(share["manage_token"]) >= 16
    assert share["token"] != share["manage_token"]
    assert share["url"] == f"http://testserver/s/{share['token']}"
    assert share["manage_url"] == f"http://testserver/m/{share['manage_token']}"
    assert share["name"] == "report.txt"
    assert share["size"] == len(CONTENT)
    assert share["sha256"] == hashlib.sha256(CONTENT).hexdigest()
    assert share["content_type"] == "text/plain"
    assert utc(share["expires_at"]) == NOW + timedelta(seconds=3600)
    assert share["max_downloads"] == 3
    assert share["downloads"] == 0
    assert share["downloads_remaining"] == 3
    assert share["password_required"] is False
    assert share["status"] == "active"


def test_multipart_upload_without_options_uses_the_defaults(client, settings):
    with frozen_at(NOW):
        share = upload(client)

    assert utc(share["expires_at"]) == NOW + timedelta(seconds=settings.DEFAULT_EXPIRES_IN)
    assert share["max_downloads"] == 1
    assert share["downloads_remaining"] == 1


@pytest.mark.parametrize(
    ("option", "value"),
    [
        pytest.param("max_downloads", lambda s: 1, id="max_downloads-1"),
        pytest.param("max_downloads", lambda s: 100, id="max_downloads-100"),
        pytest.param("expires_in", lambda s: s.MIN_EXPIRES_IN, id="expires_in-min"),
        pytest.param("expires_in", lambda s: s.MAX_EXPIRES_IN, id="expires_in-max"),
    ],
)
def test_options_at_the_edges_of_their_range_are_accepted(client, settings, option, value):
    with frozen_at(NOW):
        share = upload(client, **{option: value(settings)})

    if option == "max_downloads":
        assert share["max_downloads"] == value(settings)
        assert share["downloads_remaining"] == value(settings)
    else:
        assert utc(share["expires_at"]) == NOW + timedelta(seconds=value(settings))


def test_upload_with_a_password_reports_password_required(client):
    share = upload(client, password=PASSWORD)

    assert share["password_required"] is True
    assert PASSWORD not in json.dumps(share)


def test_share_url_from_the_response_opens_the_landing_page(client):
    share = upload(client)

    response = client.get(share["url"])

    assert response.status_code == 200
    assert b"report.txt" in response.content


def test_put_raw_body_with_options_as_query_parameters_answers_201(client):
    with frozen_at(NOW):
        response = client.put(
            "/api/v1/shares/notes.txt?expires_in=600&max_downloads=2",
            data=CONTENT,
            content_type="application/octet-stream",
        )

    assert response.status_code == 201, response.content
    share = response.json()
    assert set(share) >= SHARE_FIELDS
    assert share["name"] == "notes.txt"
    assert share["size"] == len(CONTENT)
    assert share["sha256"] == hashlib.sha256(CONTENT).hexdigest()
    assert utc(share["expires_at"]) == NOW + timedelta(seconds=600)
    assert share["max_downloads"] == 2
    assert share["downloads_remaining"] == 2
    assert share["status"] == "active"
    assert share["url"] == f"http://testserver/s/{share['token']}"
    with frozen_at(NOW + timedelta(seconds=599)):
        assert_downloads(client, share["token"])


def test_put_like_curl_upload_file_stores_the_exact_bytes(client, media_root):
    # `curl -T report.bin URL/` sends the raw body with no Content-Type of its own.
    content = bytes(range(256)) * 100
    response = client.generic("PUT", "/api/v1/shares/report.bin", data=content, content_type="")

    assert response.status_code == 201, response.content
    share = response.json()
    assert share["name"] == "report.bin"
    assert share["size"] == len(content)
    assert share["sha256"] == hashlib.sha256(content).hexdigest()
    [stored] = stored_files(media_root)
    assert stored.read_bytes() == content
    assert_downloads(client, share["token"], content)


def test_put_with_a_password_query_parameter_protects_the_share(client):
    response = client.put(
        f"/api/v1/shares/notes.txt?password={PASSWORD.replace(' ', '+')}",
        data=CONTENT,
        content_type="application/octet-stream",
    )

    assert response.status_code == 201, response.content
    token = response.json()["token"]
    assert response.json()["password_required"] is True
    assert_api_error(download(client, token), 401, "password_required")
    assert_downloads(client, token, data={"password": PASSWORD})


def test_timestamps_stay_utc_with_z_when_the_server_time_zone_is_not_utc(client, settings):
    settings.TIME_ZONE = "America/New_York"
    with frozen_at(NOW):
        share = upload(client, expires_in=3600)
        manage = client.get(f"/api/v1/manage/{share['manage_token']}").json()
        meta = client.get(f"/api/v1/shares/{share['token']}").json()

    for expires_at in (share["expires_at"], manage["expires_at"], meta["expires_at"]):
        assert utc(expires_at) == NOW + timedelta(hours=1)
        assert expires_at.startswith("2030-03-01T13:00:00")


# --- metadata ----------------------------------------------------------------------------


def test_metadata_get_never_consumes_a_download(client):
    share = upload(client)
    url = f"/api/v1/shares/{share['token']}"

    for _ in range(3):
        response = client.get(url)
        assert response.status_code == 200
        meta = response.json()
        assert set(meta) >= META_FIELDS
        assert meta["downloads_remaining"] == 1

    assert_downloads(client, share["token"])


def test_metadata_shows_the_public_fields_and_no_secret(client):
    with frozen_at(NOW):
        share = upload(client, name="report.txt", expires_in=7200, max_downloads=4)
        meta = client.get(f"/api/v1/shares/{share['token']}").json()

    assert meta["name"] == "report.txt"
    assert meta["size"] == len(CONTENT)
    assert meta["sha256"] == hashlib.sha256(CONTENT).hexdigest()
    assert meta["content_type"] == "text/plain"
    assert utc(meta["expires_at"]) == NOW + timedelta(seconds=7200)
    assert meta["downloads_remaining"] == 4
    assert meta["password_required"] is False
    assert not SECRET_FIELDS & set(meta)
    assert share["manage_token"] not in json.dumps(meta)


# --- downloading -------------------------------------------------------------------------


def test_download_returns_the_bytes_as_a_nosniff_octet_stream_attachment(client):
    share = upload(client)

    response = download(client, share["token"])

    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].split(";")[0].strip() == "attachment"
    assert "report.txt" in response["Content-Disposition"]
    assert response["X-Content-Type-Options"] == "nosniff"
    content = body_of(response)
    assert content == CONTENT
    assert hashlib.sha256(content).hexdigest() == share["sha256"]


def test_download_twice_answers_410_gone(client):
    share = upload(client)
    assert_downloads(client, share["token"])

    assert_api_error(download(client, share["token"]), 410, "gone")
    assert_api_error(client.get(f"/api/v1/shares/{share['token']}"), 410, "gone")


def test_last_download_deletes_the_bytes_from_storage(client, media_root):
    share = upload(client)
    assert len(stored_files(media_root)) == 1

    assert_downloads(client, share["token"])

    assert stored_files(media_root) == []


def test_max_downloads_allows_exactly_that_many_downloads(client, media_root):
    share = upload(client, max_downloads=2)
    meta_url = f"/api/v1/shares/{share['token']}"

    assert_downloads(client, share["token"])
    assert client.get(meta_url).json()["downloads_remaining"] == 1
    assert len(stored_files(media_root)) == 1
    assert_downloads(client, share["token"])

    assert_api_error(download(client, share["token"]), 410, "gone")
    assert_api_error(client.get(meta_url), 410, "gone")
    assert stored_files(media_root) == []


# --- passwords ---------------------------------------------------------------------------


@pytest.fixture
def protected_share(client) -> dict:
    return upload(client, password=PASSWORD)


def test_download_without_password_answers_401_and_consumes_nothing(client, protected_share):
    token = protected_share["token"]

    assert_api_error(download(client, token), 401, "password_required")
    assert_api_error(
        download(client, token, data={}, content_type="application/json"),
        401,
        "password_required",
    )

    meta = client.get(f"/api/v1/shares/{token}").json()
    assert meta["downloads_remaining"] == 1
    assert meta["password_required"] is True
    assert_downloads(client, token, data={"password": PASSWORD})


def test_download_with_wrong_password_answers_403_and_consumes_nothing(client, protected_share):
    token = protected_share["token"]

    assert_api_error(download(client, token, data={"password": "wrong"}), 403, "wrong_password")
    assert_api_error(
        download(client, token, data={"password": "wrong"}, content_type="application/json"),
        403,
        "wrong_password",
    )

    assert client.get(f"/api/v1/shares/{token}").json()["downloads_remaining"] == 1
    assert_downloads(client, token, data={"password": PASSWORD}, content_type="application/json")


@pytest.mark.parametrize(
    ("content_type", "data"),
    [
        pytest.param(
            "application/x-www-form-urlencoded",
            "password=" + PASSWORD.replace(" ", "+"),
            id="urlencoded-form-field",
        ),
        pytest.param(None, {"password": PASSWORD}, id="multipart-form-field"),
        pytest.param("application/json", {"password": PASSWORD}, id="json"),
    ],
)
def test_right_password_opens_the_share(client, protected_share, content_type, data):
    kwargs = {"data": data}
    if content_type:
        kwargs["content_type"] = content_type

    response = download(client, protected_share["token"], **kwargs)

    assert response.status_code == 200
    assert body_of(response) == CONTENT


# --- unknown tokens ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/shares/{token}"),
        ("post", "/api/v1/shares/{token}/download"),
        ("get", "/api/v1/manage/{token}"),
        ("delete", "/api/v1/manage/{token}"),
    ],
)
def test_unknown_token_answers_404_not_found(client, method, path):
    upload(client)  # a share exists; the token is simply not one of its tokens

    response = getattr(client, method)(path.format(token=secrets.token_urlsafe(16)))

    assert_api_error(response, 404, "not_found")


def test_share_token_does_not_open_the_manage_api(client):
    share = upload(client)

    assert_api_error(client.get(f"/api/v1/manage/{share['token']}"), 404, "not_found")
    assert_api_error(client.delete(f"/api/v1/manage/{share['token']}"), 404, "not_found")
    assert_downloads(client, share["token"])


def test_unknown_api_path_answers_404_with_the_error_shape(client):
    assert_api_error(client.get("/api/v1/no-such-thing"), 404, "not_found")


def test_wrong_method_on_an_api_path_answers_405_with_the_error_shape(client):
    response = client.patch("/api/v1/shares")

    assert response.status_code == 405
    assert response["Content-Type"].startswith("application/json"), response.content
    body = json.loads(response.content)
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}


def test_uploads_past_the_rate_limit_answer_429_rate_limited(
    client, settings, media_root, upload_tmp
):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "upload": "2/h"}
    upload(client)
    upload(client)

    response = client.post("/api/v1/shares", {"file": SimpleUploadedFile("third.txt", CONTENT)})

    assert_api_error(response, 429, "rate_limited")
    assert int(response["Retry-After"]) > 0
    assert len(stored_files(media_root)) == 2
    assert stored_files(upload_tmp) == []


# --- managing ----------------------------------------------------------------------------


def test_manage_get_reports_status_downloads_and_timestamps(client):
    with frozen_at(NOW):
        share = upload(client, expires_in=3600)
    manage_url = f"/api/v1/manage/{share['manage_token']}"

    with frozen_at(NOW + timedelta(minutes=1)):
        before = client.get(manage_url)
    with frozen_at(NOW + timedelta(minutes=5)):
        assert_downloads(client, share["token"])
    with frozen_at(NOW + timedelta(minutes=6)):
        after = client.get(manage_url)

    assert before.status_code == 200
    active = before.json()
    assert SHARE_FIELDS | {"consumed_at", "revoked_at"} <= set(active)
    assert active["status"] == "active"
    assert active["downloads"] == 0
    assert active["downloads_remaining"] == 1
    assert active["consumed_at"] is None
    assert active["revoked_at"] is None
    assert active["token"] == share["token"]
    assert active["url"] == share["url"]
    if "created_at" in active:  # not in §4's list, but every timestamp is UTC with Z
        assert utc(active["created_at"]) == NOW

    assert after.status_code == 200
    consumed = after.json()
    assert consumed["status"] == "consumed"
    assert consumed["downloads"] == 1
    assert consumed["downloads_remaining"] == 0
    assert utc(consumed["consumed_at"]) == NOW + timedelta(minutes=5)
    assert consumed["revoked_at"] is None
    assert utc(consumed["expires_at"]) == NOW + timedelta(hours=1)


def test_manage_delete_answers_204_and_the_share_link_answers_410(client, media_root):
    with frozen_at(NOW):
        share = upload(client)
    manage_url = f"/api/v1/manage/{share['manage_token']}"
    assert len(stored_files(media_root)) == 1
    revoked_at = NOW + timedelta(minutes=2)

    with frozen_at(revoked_at):
        response = client.delete(manage_url)

    assert response.status_code == 204
    assert response.content == b""
    assert stored_files(media_root) == []
    with frozen_at(revoked_at + timedelta(minutes=1)):
        assert client.get(f"/s/{share['token']}").status_code == 410
        assert_api_error(client.get(f"/api/v1/shares/{share['token']}"), 410, "gone")
        assert_api_error(download(client, share["token"]), 410, "gone")
        revoked = client.get(manage_url).json()
    assert revoked["status"] == "revoked"
    assert utc(revoked["revoked_at"]) == revoked_at
    assert revoked["downloads"] == 0
    assert revoked["downloads_remaining"] == 0


# --- absolute URLs -----------------------------------------------------------------------


def test_site_url_setting_makes_the_absolute_urls(client, settings):
    settings.SITE_URL = "https://files.example.org"

    share = upload(client)
    manage = client.get(f"/api/v1/manage/{share['manage_token']}").json()

    assert share["url"] == f"https://files.example.org/s/{share['token']}"
    assert share["manage_url"] == f"https://files.example.org/m/{share['manage_token']}"
    assert manage["url"] == share["url"]
    assert manage["manage_url"] == share["manage_url"]


def test_without_site_url_the_urls_come_from_the_request(settings):
    settings.SITE_URL = ""

    share = upload(Client(HTTP_HOST="localhost:8000"))

    assert share["url"] == f"http://localhost:8000/s/{share['token']}"
    assert share["manage_url"] == f"http://localhost:8000/m/{share['manage_token']}"


def test_without_site_url_an_https_request_gets_https_urls(settings):
    settings.SITE_URL = ""

    response = Client(HTTP_HOST="localhost").post(
        "/api/v1/shares", {"file": SimpleUploadedFile("report.txt", CONTENT)}, secure=True
    )

    assert response.status_code == 201
    share = response.json()
    assert share["url"] == f"https://localhost/s/{share['token']}"
    assert share["manage_url"] == f"https://localhost/m/{share['manage_token']}"


# --- expiry ------------------------------------------------------------------------------


def test_share_past_its_expiry_answers_410_without_any_cleanup_job(client):
    with frozen_at(NOW):
        share = upload(client, expires_in=3600)
    meta_url = f"/api/v1/shares/{share['token']}"

    with frozen_at(NOW + timedelta(seconds=3599)):
        assert client.get(meta_url).status_code == 200

    with frozen_at(NOW + timedelta(seconds=3600)):
        assert_api_error(client.get(meta_url), 410, "gone")
        assert_api_error(download(client, share["token"]), 410, "gone")
        assert client.get(f"/s/{share['token']}").status_code == 410
        manage = client.get(f"/api/v1/manage/{share['manage_token']}").json()

    assert manage["status"] == "expired"
    assert manage["downloads"] == 0
    assert manage["downloads_remaining"] == 0


# --- the OpenAPI document ----------------------------------------------------------------


def test_openapi_document_is_valid_json_listing_every_call(client):
    response = client.get("/api/v1/openapi.json")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    document = json.loads(response.content)
    assert "openapi" in document
    # Parameter names are the document's business; the paths and methods are the contract.
    operations = {
        (re.sub(r"\{[^}]+\}", "{}", path), method)
        for path, item in document["paths"].items()
        for method in item
    }
    assert {
        ("/api/v1/shares", "post"),
        ("/api/v1/shares/{}", "put"),
        ("/api/v1/shares/{}", "get"),
        ("/api/v1/shares/{}/download", "post"),
        ("/api/v1/manage/{}", "get"),
        ("/api/v1/manage/{}", "delete"),
    } <= operations
