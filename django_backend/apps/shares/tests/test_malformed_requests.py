"""Malformed requests to the JSON API, by class: bodies the parser chokes on, bodies of the
wrong shape, cursors and numbers out of any range. Each answers 400 `invalid` (never 500),
and a download request among them consumes nothing.

Django's test client re-raises an unhandled exception, so a 500 fails these tests loudly.
Malformed HTTP framing (chunked encoding) needs a real server: test_chunked_bodies.py.
"""

import base64
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import HttpResponseBase
from django.test import Client

from apps.accounts.models import User
from apps.accounts.services import api_token_create
from tests.support.api import assert_api_error
from tests.support.shares import stored_files

pytestmark = pytest.mark.django_db

CONTENT = b"the file behind the link\n"


def body_of(response: HttpResponseBase) -> bytes:
    if response.streaming:
        return b"".join(response.streaming_content)
    return response.content


# --- the download request's JSON body ----------------------------------------------------


@pytest.fixture
def share_token(client: Client) -> str:
    response = client.post("/api/v1/shares", {"file": SimpleUploadedFile("notes.txt", CONTENT)})
    assert response.status_code == 201, response.content
    return response.json()["token"]


def assert_still_downloadable(client: Client, share_token: str) -> None:
    """The refused request consumed nothing: the one allowed download is still there."""
    download = client.post(f"/api/v1/shares/{share_token}/download")
    assert download.status_code == 200, download.content
    assert body_of(download) == CONTENT


DEEP = 100_000

UNPARSABLE_JSON_BODIES = [
    pytest.param(b"[" * DEEP + b"]" * DEEP, id="array-nested-100000-deep"),
    pytest.param(b'{"a":' * DEEP + b"1" + b"}" * DEEP, id="object-nested-100000-deep"),
    pytest.param(
        b'{"password": ' + b"[" * DEEP + b"]" * DEEP + b"}", id="password-nested-100000-deep"
    ),
    pytest.param(b"[" * DEEP, id="unclosed-100000-deep"),
    pytest.param(b'{"password": "\xff\xfe"}', id="invalid-utf-8"),
    pytest.param(b'{"password": "x"', id="truncated"),
    pytest.param(b"9" * 5000, id="number-of-5000-digits"),
    pytest.param(b"\x00\x00\x00\x00", id="nul-bytes"),
]


@pytest.mark.parametrize("body", UNPARSABLE_JSON_BODIES)
def test_unparsable_json_download_body_answers_400_and_consumes_nothing(client, share_token, body):
    response = client.post(
        f"/api/v1/shares/{share_token}/download", data=body, content_type="application/json"
    )

    message = assert_api_error(response, 400, "invalid")
    assert "JSON" in message
    assert_still_downloadable(client, share_token)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("[]", id="array"),
        pytest.param('["password"]', id="array-of-the-key"),
        pytest.param('"x"', id="string"),
        pytest.param("3", id="number"),
        pytest.param("null", id="null"),
        pytest.param("true", id="boolean"),
        pytest.param("NaN", id="nan"),
        pytest.param("-Infinity", id="minus-infinity"),
    ],
)
def test_json_download_body_that_is_not_an_object_answers_400_and_consumes_nothing(
    client, share_token, body
):
    """Not taken for "no password": a client that sent something else meant something."""
    response = client.post(
        f"/api/v1/shares/{share_token}/download", data=body, content_type="application/json"
    )

    message = assert_api_error(response, 400, "invalid")
    assert "must be a JSON object" in message
    assert_still_downloadable(client, share_token)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param('{"password": NaN}', id="nan"),
        pytest.param('{"password": 1e999}', id="infinity"),
        pytest.param('{"password": ["s3cret"]}', id="array"),
        pytest.param('{"password": {"value": "s3cret"}}', id="object"),
        pytest.param('{"password": null}', id="null"),
    ],
)
def test_json_password_that_is_not_a_string_answers_400_naming_it(client, share_token, body):
    response = client.post(
        f"/api/v1/shares/{share_token}/download", data=body, content_type="application/json"
    )

    message = assert_api_error(response, 400, "invalid")
    assert "password" in message
    assert_still_downloadable(client, share_token)


def test_json_download_body_over_the_request_size_limit_answers_400(client, settings, share_token):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    body = json.dumps({"password": "", "padding": "x" * 4096})

    response = client.post(
        f"/api/v1/shares/{share_token}/download", data=body, content_type="application/json"
    )

    assert_api_error(response, 400, "invalid")
    assert_still_downloadable(client, share_token)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("", id="empty"),
        pytest.param("{}", id="empty-object"),
        pytest.param('{"password": ""}', id="empty-password"),
        pytest.param('{"password": "", "other": [1, {"deep": null}]}', id="unknown-keys"),
    ],
)
def test_json_download_body_without_a_password_downloads_an_open_share(client, share_token, body):
    response = client.post(
        f"/api/v1/shares/{share_token}/download", data=body, content_type="application/json"
    )

    assert response.status_code == 200
    assert body_of(response) == CONTENT


def test_form_download_body_with_too_many_fields_answers_400(client, share_token):
    body = "&".join(f"field{number}=x" for number in range(2000))

    response = client.post(
        f"/api/v1/shares/{share_token}/download",
        data=body,
        content_type="application/x-www-form-urlencoded",
    )

    assert_api_error(response, 400, "invalid")
    assert_still_downloadable(client, share_token)


# --- the list of one's shares: its cursor and its limit ----------------------------------


def cursor_of(raw: str | bytes) -> str:
    raw = raw.encode() if isinstance(raw, str) else raw
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.fixture
def bearer(client: Client) -> dict[str, str]:
    """An API token of a user with three shares, as the Authorization header."""
    user = User.objects.create_user("alice", password="a long and unusual passphrase 42")
    header = {"HTTP_AUTHORIZATION": f"Bearer {api_token_create(user=user, name='s').key}"}
    for number in range(3):
        upload = SimpleUploadedFile(f"mine-{number}.txt", CONTENT)
        assert client.post("/api/v1/shares", {"file": upload}, **header).status_code == 201
    return header


BAD_CURSORS = [
    pytest.param(
        cursor_of("2020-01-01T00:00:00+00:00|99999999999999999999999"), id="id-past-int64"
    ),
    pytest.param(cursor_of("2020-01-01T00:00:00+00:00|9223372036854775808"), id="id-2-to-63"),
    pytest.param(cursor_of("2020-01-01T00:00:00+00:00|-1"), id="negative-id"),
    pytest.param(cursor_of("2020-01-01T00:00:00+00:00|NaN"), id="nan-id"),
    pytest.param(cursor_of("2020-01-01T00:00:00|1"), id="naive-datetime"),
    pytest.param(cursor_of("9999-12-31T23:59:59|1"), id="naive-year-9999"),
    # Valid ISO 8601 whose UTC time falls outside the years datetime can hold.
    pytest.param(cursor_of("9999-12-31T23:59:59-14:00|1"), id="year-9999-west-of-utc"),
    pytest.param(cursor_of("0001-01-01T00:00:00+14:00|1"), id="year-1-east-of-utc"),
    pytest.param(cursor_of("10000-01-01T00:00:00+00:00|1"), id="year-10000"),
    pytest.param(cursor_of("2020-13-01T00:00:00+00:00|1"), id="month-13"),
    pytest.param(cursor_of(b"\xff\xfe|1"), id="invalid-utf-8"),
    pytest.param(cursor_of("2020-01-01T00:00:00+00:00"), id="no-id"),
    pytest.param("not base64 at all!", id="not-base64"),
    pytest.param("%FF%FE", id="percent-encoded-bytes"),
    pytest.param("A" * 20_000, id="20000-chars"),
]


@pytest.mark.parametrize("after", BAD_CURSORS)
def test_bad_list_cursor_answers_400_naming_it(client, bearer, after):
    response = client.get("/api/v1/shares", {"after": after}, **bearer)

    message = assert_api_error(response, 400, "invalid")
    assert "after" in message


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        # The far edges of the range datetime holds are cursors like any other.
        pytest.param(
            cursor_of("9999-12-31T23:59:59.999999+00:00|1"),
            ["mine-2.txt", "mine-1.txt", "mine-0.txt"],
            id="end-of-year-9999",
        ),
        pytest.param(cursor_of("0001-01-01T00:00:00+00:00|1"), [], id="start-of-year-1"),
        pytest.param(
            cursor_of("9999-12-31T23:59:59+00:00|9223372036854775807"),
            ["mine-2.txt", "mine-1.txt", "mine-0.txt"],
            id="largest-id",
        ),
    ],
)
def test_list_cursor_at_the_edges_of_the_range_pages_normally(client, bearer, after, expected):
    response = client.get("/api/v1/shares", {"after": after}, **bearer)

    assert response.status_code == 200, response.content
    assert [share["name"] for share in response.json()["shares"]] == expected


@pytest.mark.parametrize(
    "limit",
    ["0", "-1", "101", "99999999999999999999999", "9" * 5000, "NaN", "1e3", "1.5", "", "%00"],
)
def test_list_limit_out_of_range_or_not_a_number_answers_400_naming_it(client, bearer, limit):
    response = client.get(f"/api/v1/shares?limit={limit}", **bearer)

    message = assert_api_error(response, 400, "invalid")
    assert "limit" in message


# --- query parameters of the raw upload -----------------------------------------------------


@pytest.mark.parametrize("field", ["expires_in", "max_downloads"])
@pytest.mark.parametrize(
    "value",
    ["NaN", "inf", "-inf", "1e3", "0x10", "9" * 5000, "-" + "9" * 30, "%00", "%FF", "%EF%BC%99"],
)
def test_put_number_option_that_is_no_number_in_range_answers_400_naming_it(
    client, media_root, upload_tmp, field, value
):
    response = client.put(
        f"/api/v1/shares/notes.txt?{field}={value}",
        data=CONTENT,
        content_type="application/octet-stream",
    )

    message = assert_api_error(response, 400, "invalid")
    assert field in message
    assert stored_files(media_root) == []
    assert stored_files(upload_tmp) == []
